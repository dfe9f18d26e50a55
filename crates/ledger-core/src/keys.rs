//! Secret keys that live outside the database: the chain's HMAC keys (one
//! active, older ones kept to verify old events), the pseudonymisation key
//! and the checkpoint signing key.
//!
//! They come from the environment (`LEDGER_HMAC_KEY`, `LEDGER_HMAC_RETIRED_KEYS`,
//! `LEDGER_PSEUDONYM_KEY`, `LEDGER_CHECKPOINT_KEY`, hex;
//! `LEDGER_CHECKPOINT_RETIRED_KEYS`, public keys with their validity) or
//! from a key file (JSON, mode 0600), by default created beside an embedded
//! database.
//!
//! The checkpoint signing key is never derived from another key: auditors
//! hold the HMAC key, so a signing key computed from it would let any of
//! them sign a checkpoint of a forged history. Without one, checkpoint
//! signing is off and the rest of the ledger works.

use std::fmt;
use std::path::{Path, PathBuf};

use hmac::{Hmac, Mac};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use unicode_normalization::UnicodeNormalization;

use crate::domain::{BeneficiaryRef, DomainError};

pub const KEY_BYTES: usize = 32;
/// Longest case id accepted, in characters, after normalisation.
pub const CASE_ID_CHARS_MAX: usize = 64;
/// What a normalised case id may hold: the characters case numbers are
/// made of. Said by every refusal of a case id for what it holds.
pub const CASE_ID_RULE: &str = "may hold only letters A-Z, digits 0-9 and - / _ . (after Unicode NFKC normalisation)";
/// Dashes read as '-' in a case id: U+2010 to U+2015 (hyphen to horizontal
/// bar) and U+2212 (minus sign), which NFKC leaves as they are.
const CASE_ID_DASHES: [char; 7] = ['\u{2010}', '\u{2011}', '\u{2012}', '\u{2013}', '\u{2014}', '\u{2015}', '\u{2212}'];
/// Invisible format characters dropped from a case id: soft hyphen,
/// zero-width space, non-joiner and joiner, word joiner, byte order mark.
const CASE_ID_INVISIBLE: [char; 6] = ['\u{00AD}', '\u{200B}', '\u{200C}', '\u{200D}', '\u{2060}', '\u{FEFF}'];

type HmacSha256 = Hmac<Sha256>;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("{name} must be {KEY_BYTES} bytes written as {} hex characters", KEY_BYTES * 2)]
    BadHex { name: String },
    #[error("key file {path}: {message}")]
    File { path: PathBuf, message: String },
    #[error("no keys: set LEDGER_HMAC_KEY and LEDGER_PSEUDONYM_KEY (64 hex characters each), or LEDGER_KEY_FILE to a key file")]
    Missing,
    #[error("could not draw random bytes for a new key: {0}")]
    Random(String),
    #[error(
        "{name}: each retired checkpoint key is PUBLIC_KEY_HEX@VALID_FROM/VALID_UNTIL, both times RFC 3339 UTC to the second \
         (2026-01-01T00:00:00Z), VALID_FROM may be empty"
    )]
    BadRetiredCheckpointKey { name: String },
    #[error("no checkpoint signing key to rotate: set LEDGER_CHECKPOINT_KEY or use a key file")]
    NoCheckpointKey,
}

/// A checkpoint signing key that signs no more: its public key, kept so
/// that the checkpoints it signed keep verifying, and the period it signed
/// in. A checkpoint under it whose `created_at` is after `valid_until` is
/// not one of the ledger's.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetiredCheckpointKey {
    /// The Ed25519 public key, 64 lower-case hex characters.
    pub public_key: String,
    /// When it began to sign (RFC 3339 UTC to the second), if known.
    #[serde(default)]
    pub valid_from: Option<String>,
    /// When it stopped signing (RFC 3339 UTC to the second).
    pub valid_until: String,
}

impl RetiredCheckpointKey {
    /// Checks the form of every field (the key itself is checked where it
    /// is used as an Ed25519 point).
    pub fn parse(public_key: &str, valid_from: Option<&str>, valid_until: &str) -> Option<Self> {
        let lower_hex =
            public_key.len() == 2 * KEY_BYTES && public_key.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        let times_well_formed = valid_from.is_none_or(is_utc_second) && is_utc_second(valid_until);
        (lower_hex && times_well_formed).then(|| RetiredCheckpointKey {
            public_key: public_key.to_string(),
            valid_from: valid_from.map(str::to_string),
            valid_until: valid_until.to_string(),
        })
    }

    /// `PUBLIC_KEY_HEX@VALID_FROM/VALID_UNTIL` (`VALID_FROM` may be empty).
    fn parse_text(name: &str, text: &str) -> Result<Self, KeyError> {
        let refused = || KeyError::BadRetiredCheckpointKey { name: name.to_string() };
        let (public_key, period) = text.trim().split_once('@').ok_or_else(refused)?;
        let (valid_from, valid_until) = period.split_once('/').ok_or_else(refused)?;
        let valid_from = (!valid_from.is_empty()).then_some(valid_from);
        Self::parse(public_key, valid_from, valid_until).ok_or_else(refused)
    }
}

/// `YYYY-MM-DDTHH:MM:SSZ`, the form of a checkpoint's `created_at`, which
/// orders as text in time order.
pub fn is_utc_second(text: &str) -> bool {
    let bytes = text.as_bytes();
    bytes.len() == 20
        && chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%SZ").is_ok()
        && bytes.iter().enumerate().all(|(position, byte)| match position {
            4 | 7 => *byte == b'-',
            10 => *byte == b'T',
            13 | 16 => *byte == b':',
            19 => *byte == b'Z',
            _ => byte.is_ascii_digit(),
        })
}

/// Why a tag does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagError {
    #[error("unknown key id {0}")]
    UnknownKey(String),
    #[error("tag does not match the hash under key {0}")]
    BadTag(String),
}

/// A 32-byte secret with a public id derived from it.
#[derive(Clone)]
pub struct SecretKey {
    pub id: String,
    secret: [u8; KEY_BYTES],
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(formatter, "SecretKey({}, ..)", self.id)
    }
}

impl SecretKey {
    pub fn from_bytes(secret: [u8; KEY_BYTES]) -> Self {
        let digest = Sha256::new().chain_update(b"reintegration-ledger key id\n").chain_update(secret).finalize();
        SecretKey { id: hex::encode(&digest[..8]), secret }
    }

    pub fn parse_hex(name: &str, text: &str) -> Result<Self, KeyError> {
        let bytes = hex::decode(text.trim()).map_err(|_| KeyError::BadHex { name: name.to_string() })?;
        let secret: [u8; KEY_BYTES] = bytes.try_into().map_err(|_| KeyError::BadHex { name: name.to_string() })?;
        Ok(SecretKey::from_bytes(secret))
    }

    pub fn generate() -> Result<Self, KeyError> {
        let mut secret = [0u8; KEY_BYTES];
        getrandom::getrandom(&mut secret).map_err(|error| KeyError::Random(error.to_string()))?;
        Ok(SecretKey::from_bytes(secret))
    }

    pub fn secret_hex(&self) -> String {
        hex::encode(self.secret)
    }

    pub fn secret(&self) -> &[u8; KEY_BYTES] {
        &self.secret
    }

    fn mac(&self, message: &[u8]) -> [u8; 32] {
        let mut mac = HmacSha256::new_from_slice(&self.secret).expect("HMAC takes keys of any length");
        mac.update(message);
        mac.finalize().into_bytes().into()
    }
}

/// All keys the ledger uses.
#[derive(Clone, Debug)]
pub struct KeyRing {
    pub active_hmac: SecretKey,
    pub retired_hmac: Vec<SecretKey>,
    pub pseudonym: SecretKey,
    /// The Ed25519 seed checkpoints are signed with; `None` when keys come
    /// from the environment without `LEDGER_CHECKPOINT_KEY` (signing is off).
    pub checkpoint: Option<SecretKey>,
    /// Checkpoint keys that signed before, newest last.
    pub retired_checkpoint: Vec<RetiredCheckpointKey>,
}

/// What an HMAC key was once hashed with to make a checkpoint signing key,
/// when no `LEDGER_CHECKPOINT_KEY` was set. Kept only to recognise the
/// checkpoints such a key signed; nothing is signed with one any more.
const DERIVED_CHECKPOINT_KEY_MESSAGE: &[u8] = b"checkpoint signing key";

impl KeyRing {
    pub fn generate() -> Result<Self, KeyError> {
        Ok(KeyRing {
            active_hmac: SecretKey::generate()?,
            retired_hmac: Vec::new(),
            pseudonym: SecretKey::generate()?,
            checkpoint: Some(SecretKey::generate()?),
            retired_checkpoint: Vec::new(),
        })
    }

    /// Makes a new checkpoint signing key; the old one's public key (given
    /// as hex, since this module knows no curve) is kept as retired, valid
    /// until `now`, so that the checkpoints it signed keep verifying.
    pub fn rotate_checkpoint(&mut self, old_public_key_hex: &str, valid_from: Option<&str>, now: &str) -> Result<(), KeyError> {
        if self.checkpoint.is_none() {
            return Err(KeyError::NoCheckpointKey);
        }
        let retired = RetiredCheckpointKey::parse(old_public_key_hex, valid_from, now)
            .ok_or_else(|| KeyError::BadRetiredCheckpointKey { name: "rotate_checkpoint".to_string() })?;
        self.checkpoint = Some(SecretKey::generate()?);
        self.retired_checkpoint.push(retired);
        Ok(())
    }

    /// The Ed25519 seeds that an older version of the ledger derived from
    /// each of these HMAC keys when no checkpoint key was set. Only to
    /// verify the checkpoints signed so; see docs/audit.md for moving off.
    pub fn derived_checkpoint_seeds(&self) -> Vec<[u8; KEY_BYTES]> {
        std::iter::once(&self.active_hmac).chain(&self.retired_hmac).map(|key| key.mac(DERIVED_CHECKPOINT_KEY_MESSAGE)).collect()
    }

    /// The HMAC-SHA256 tag of an event hash under the active key.
    pub fn tag(&self, hash: &[u8; 32]) -> (String, [u8; 32]) {
        (self.active_hmac.id.clone(), self.active_hmac.mac(hash))
    }

    /// Checks a tag in constant time with the key its id names.
    pub fn verify_tag(&self, key_id: &str, hash: &[u8; 32], tag: &[u8]) -> Result<(), TagError> {
        let key = std::iter::once(&self.active_hmac)
            .chain(&self.retired_hmac)
            .find(|key| key.id == key_id)
            .ok_or_else(|| TagError::UnknownKey(key_id.to_string()))?;
        let mut mac = HmacSha256::new_from_slice(&key.secret).expect("HMAC takes keys of any length");
        mac.update(hash);
        mac.verify_slice(tag).map_err(|_| TagError::BadTag(key_id.to_string()))
    }

    /// Makes a new active HMAC key; the old one is kept to verify old events.
    pub fn rotate_hmac(&mut self) -> Result<(), KeyError> {
        let new_key = SecretKey::generate()?;
        let old_key = std::mem::replace(&mut self.active_hmac, new_key);
        self.retired_hmac.push(old_key);
        Ok(())
    }

    /// The beneficiary ref of a case id. Neither the case id nor any part of
    /// it appears in an error.
    /// A keyed fingerprint of a request (for idempotency records): a request
    /// may carry a case id, so a plain hash of it could be reversed by
    /// guessing case ids; under the pseudonymisation key it cannot.
    pub fn request_fingerprint(&self, request: &[u8]) -> [u8; 32] {
        let mut message = b"reintegration-ledger request\n".to_vec();
        message.extend_from_slice(request);
        self.pseudonym.mac(&message)
    }

    pub fn pseudonymise(&self, case_id: &str) -> Result<BeneficiaryRef, DomainError> {
        let normalised = normalise_case_id(case_id)?;
        Ok(BeneficiaryRef::from_digest(self.pseudonym.mac(normalised.as_bytes())))
    }

    /// Reads keys from the environment if `LEDGER_HMAC_KEY` is set, otherwise
    /// from `key_file` (created with fresh keys when `create` and missing).
    pub fn load(key_file: Option<&Path>, create: bool) -> Result<Self, KeyError> {
        if let Ok(active) = std::env::var("LEDGER_HMAC_KEY") {
            return Self::from_env(&active);
        }
        let path = match std::env::var_os("LEDGER_KEY_FILE") {
            Some(path) => PathBuf::from(path),
            None => key_file.ok_or(KeyError::Missing)?.to_path_buf(),
        };
        if path.exists() {
            return Self::read_file(&path);
        }
        if !create {
            return Err(KeyError::File { path, message: "does not exist".to_string() });
        }
        let ring = Self::generate()?;
        ring.write_file(&path)?;
        Ok(ring)
    }

    fn from_env(active: &str) -> Result<Self, KeyError> {
        let variable = |name: &str| std::env::var(name).map_err(|_| KeyError::Missing);
        let retired = std::env::var("LEDGER_HMAC_RETIRED_KEYS").unwrap_or_default();
        let retired_hmac = retired
            .split(',')
            .filter(|text| !text.trim().is_empty())
            .map(|text| SecretKey::parse_hex("LEDGER_HMAC_RETIRED_KEYS", text))
            .collect::<Result<Vec<_>, _>>()?;
        // Never derived from another key: without one, signing is off.
        let checkpoint = match std::env::var("LEDGER_CHECKPOINT_KEY") {
            Ok(text) => Some(SecretKey::parse_hex("LEDGER_CHECKPOINT_KEY", &text)?),
            Err(_) => None,
        };
        let retired_checkpoint = std::env::var("LEDGER_CHECKPOINT_RETIRED_KEYS")
            .unwrap_or_default()
            .split(',')
            .filter(|text| !text.trim().is_empty())
            .map(|text| RetiredCheckpointKey::parse_text("LEDGER_CHECKPOINT_RETIRED_KEYS", text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing {
            active_hmac: SecretKey::parse_hex("LEDGER_HMAC_KEY", active)?,
            retired_hmac,
            pseudonym: SecretKey::parse_hex("LEDGER_PSEUDONYM_KEY", &variable("LEDGER_PSEUDONYM_KEY")?)?,
            checkpoint,
            retired_checkpoint,
        })
    }

    pub fn read_file(path: &Path) -> Result<Self, KeyError> {
        let file_error = |message: String| KeyError::File { path: path.to_path_buf(), message };
        let text = std::fs::read_to_string(path).map_err(|error| file_error(error.to_string()))?;
        let file: KeyFile = serde_json::from_str(&text).map_err(|error| file_error(error.to_string()))?;
        let retired_hmac = file
            .retired_hmac_keys
            .iter()
            .map(|text| SecretKey::parse_hex("retired_hmac_keys", text))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(KeyRing {
            active_hmac: SecretKey::parse_hex("hmac_key", &file.hmac_key)?,
            retired_hmac,
            pseudonym: SecretKey::parse_hex("pseudonym_key", &file.pseudonym_key)?,
            checkpoint: Some(SecretKey::parse_hex("checkpoint_key", &file.checkpoint_key)?),
            retired_checkpoint: file
                .retired_checkpoint_keys
                .into_iter()
                .map(|key| {
                    RetiredCheckpointKey::parse(&key.public_key, key.valid_from.as_deref(), &key.valid_until)
                        .ok_or_else(|| KeyError::BadRetiredCheckpointKey { name: "retired_checkpoint_keys".to_string() })
                })
                .collect::<Result<Vec<_>, _>>()?,
        })
    }

    /// Writes the key file with mode 0600 (owner read and write only). A key
    /// file always holds a checkpoint key of its own.
    pub fn write_file(&self, path: &Path) -> Result<(), KeyError> {
        let checkpoint = self.checkpoint.as_ref().ok_or(KeyError::NoCheckpointKey)?;
        let file = KeyFile {
            hmac_key: self.active_hmac.secret_hex(),
            retired_hmac_keys: self.retired_hmac.iter().map(SecretKey::secret_hex).collect(),
            pseudonym_key: self.pseudonym.secret_hex(),
            checkpoint_key: checkpoint.secret_hex(),
            retired_checkpoint_keys: self.retired_checkpoint.clone(),
        };
        let text = serde_json::to_string_pretty(&file).expect("key files serialize");
        write_private_file(path, text.as_bytes())
            .map_err(|error| KeyError::File { path: path.to_path_buf(), message: error.to_string() })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct KeyFile {
    hmac_key: String,
    #[serde(default)]
    retired_hmac_keys: Vec<String>,
    pseudonym_key: String,
    checkpoint_key: String,
    #[serde(default)]
    retired_checkpoint_keys: Vec<RetiredCheckpointKey>,
}

fn write_private_file(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let temporary = path.with_extension("keys.tmp");
    let mut file = std::fs::OpenOptions::new().write(true).create(true).truncate(true).mode(0o600).open(&temporary)?;
    file.write_all(bytes)?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)
}

/// Normalises a case id, so that one case number written two ways is one
/// returnee: Unicode NFKC (full-width forms become ASCII), Unicode dashes
/// read as '-', invisible format characters and all whitespace dropped,
/// upper case. What is left must keep to `CASE_ID_RULE`. So
/// " mar-2024 0012 ", "MAR-20240012" and "ＭＡＲ‐２０２４００１２" give the
/// same beneficiary ref. A case id already in that form is unchanged, so
/// its pseudonym is the one it always had.
///
/// Each character sent must on its own become one allowed character or
/// nothing, and lie in the Basic Multilingual Plane: a ligature or a sharp s
/// that would become two letters is refused rather than guessed at, and
/// the characters accepted are exactly those of [`case_id_pattern`].
pub fn normalise_case_id(case_id: &str) -> Result<String, DomainError> {
    // As sent, as well as once normalised: each character gives at most
    // one, so the limit on what is sent is the whole rule.
    if case_id.chars().count() > CASE_ID_CHARS_MAX {
        return Err(DomainError::invalid("case_id", format!("is longer than {CASE_ID_CHARS_MAX} characters")));
    }
    if case_id.chars().any(|character| case_id_character(character).is_none()) {
        return Err(DomainError::invalid("case_id", CASE_ID_RULE.to_string()));
    }
    let normalised: String = case_id
        .nfkc()
        .filter(|character| !character.is_whitespace() && !CASE_ID_INVISIBLE.contains(character))
        .map(|character| if CASE_ID_DASHES.contains(&character) { '-' } else { character })
        .flat_map(char::to_uppercase)
        .collect();
    if normalised.is_empty() {
        return Err(DomainError::invalid("case_id", "must not be empty".to_string()));
    }
    if normalised.chars().count() > CASE_ID_CHARS_MAX {
        return Err(DomainError::invalid("case_id", format!("is longer than {CASE_ID_CHARS_MAX} characters")));
    }
    if !normalised.bytes().all(is_case_id_byte) {
        return Err(DomainError::invalid("case_id", CASE_ID_RULE.to_string()));
    }
    Ok(normalised)
}

fn is_case_id_byte(byte: u8) -> bool {
    byte.is_ascii_uppercase() || byte.is_ascii_digit() || matches!(byte, b'-' | b'/' | b'_' | b'.')
}

/// What one character of a case id becomes on its own: `Some(None)`
/// (dropped: a space or an invisible format character), `Some(Some(c))`
/// (one allowed character), or `None` (refused).
fn case_id_character(character: char) -> Option<Option<char>> {
    if u32::from(character) > 0xFFFF {
        return None;
    }
    let mut becomes = std::iter::once(character)
        .nfkc()
        .filter(|character| !character.is_whitespace() && !CASE_ID_INVISIBLE.contains(character))
        .map(|character| if CASE_ID_DASHES.contains(&character) { '-' } else { character })
        .flat_map(char::to_uppercase);
    let Some(first) = becomes.next() else { return Some(None) };
    let single = becomes.next().is_none();
    (single && u8::try_from(first).is_ok_and(is_case_id_byte)).then_some(Some(first))
}

/// The case ids [`normalise_case_id`] accepts, as an ECMA-262 regular
/// expression for the OpenAPI description: characters that are dropped,
/// then at least one that stays, then any of both; at most
/// `CASE_ID_CHARS_MAX` characters as sent.
pub fn case_id_pattern() -> String {
    let (mut dropped, mut kept) = (Vec::new(), Vec::new());
    for code in 0..=0xFFFFu32 {
        let Some(character) = char::from_u32(code) else { continue };
        match case_id_character(character) {
            Some(None) => dropped.push(code),
            Some(Some(_)) => kept.push(code),
            None => {}
        }
    }
    let both: Vec<u32> = {
        let mut both = [dropped.clone(), kept.clone()].concat();
        both.sort_unstable();
        both
    };
    let (dropped, kept, both) = (character_class(&dropped), character_class(&kept), character_class(&both));
    format!("^{dropped}*{kept}{both}*$")
}

/// `[\uXXXX-\uYYYY...]` for sorted code points.
fn character_class(codes: &[u32]) -> String {
    let mut class = String::from("[");
    let mut index = 0;
    while index < codes.len() {
        let start = codes[index];
        let mut end = start;
        while index + 1 < codes.len() && codes[index + 1] == end + 1 {
            index += 1;
            end = codes[index];
        }
        if end == start {
            class.push_str(&format!("\\u{start:04x}"));
        } else {
            class.push_str(&format!("\\u{start:04x}-\\u{end:04x}"));
        }
        index += 1;
    }
    class.push(']');
    class
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ring() -> KeyRing {
        KeyRing {
            active_hmac: SecretKey::from_bytes([1; 32]),
            retired_hmac: vec![],
            pseudonym: SecretKey::from_bytes([2; 32]),
            checkpoint: Some(SecretKey::from_bytes([3; 32])),
            retired_checkpoint: vec![],
        }
    }

    #[test]
    fn a_character_that_would_become_two_or_lies_outside_the_basic_plane_is_refused_not_guessed_at() {
        for case_id in ["STRAßE-1", "ﬁle-1", "\u{1D400}-1", "A\u{301}-1", "٣-1"] {
            let refused = normalise_case_id(case_id).expect_err(case_id);
            assert!(refused.to_string().contains("may hold only"), "{case_id:?}: {refused}");
        }
        assert_eq!(normalise_case_id("ＭＡ‐１\u{200B} 2").unwrap(), "MA-12");
        assert_eq!(normalise_case_id("ma/rab_2024.7").unwrap(), "MA/RAB_2024.7");
    }

    #[test]
    fn the_case_id_pattern_names_exactly_the_characters_that_are_accepted() {
        let pattern = case_id_pattern();
        assert!(pattern.starts_with("^[") && pattern.ends_with("]*$"), "{pattern}");
        // '-' '.' '/' and the digits, the ASCII letters and the full-width
        // letters stay; the space and the zero-width space are dropped.
        for kept in ["\\u002d-\\u0039", "\\u0041-\\u005a", "\\u0061-\\u007a", "\\uff21-\\uff3a"] {
            assert!(pattern.contains(kept), "{kept} is in {pattern}");
        }
        let dropped = pattern.split("]*").next().unwrap();
        assert!(dropped.contains("\\u0020") && dropped.contains("\\u2000-\\u200d"), "{dropped}");
        for code in 0..=0xFFFFu32 {
            let Some(character) = char::from_u32(code) else { continue };
            let alone = normalise_case_id(&format!("A{character}"));
            assert_eq!(alone.is_ok(), case_id_character(character).is_some(), "U+{code:04X}");
        }
    }

    #[test]
    fn the_same_case_id_always_gives_the_same_ref_whatever_its_spacing_and_case() {
        let ring = ring();
        let first = ring.pseudonymise(" mar-2024 0012 ").unwrap();
        assert_eq!(first, ring.pseudonymise("MAR-20240012").unwrap());
        assert_ne!(first, ring.pseudonymise("MAR-20240013").unwrap());
        assert!(!first.as_str().contains("MAR"));
    }

    /// Pseudonyms of case ids already stored never change: these are the
    /// refs the ledger gave under the test key before case ids were
    /// normalised with NFKC and restricted.
    #[test]
    fn ordinary_case_ids_keep_the_pseudonyms_they_always_had() {
        let ring = ring();
        let vectors = [
            ("MA-RAB-2024-0017", "0cb60d885c94083a0d318ed8c4a8973fe2dd339ce931d58a0358811333456482"),
            ("ng-los-2025-0042 ", "c5b17faabfb034ee4d3681b5faaaee5c3989812026c91e3352c24e95a4780e96"),
            (" mar-2024 0012 ", "2c5d916dd23da8bd4938c29810105701701191465af3f9053a5549ea4d1a855a"),
            ("SN/DKR/2023/118", "e58a92b0036e02936decad5c486a40cd3baeef397c0badcd1881e994d79bf426"),
            ("tn_sfx.2022.7", "333b770af954f02f85cf291c25d289884613722e993c918ca63e2568d5b026c0"),
            ("AF-KBL-0001", "767420f7c7a8045748b03d3fb6442e49f8159e9cda1ed8d5a8143b62d112ecb4"),
        ];
        for (case_id, expected) in vectors {
            assert_eq!(ring.pseudonymise(case_id).unwrap().as_str(), expected, "{case_id:?}");
        }
    }

    #[test]
    fn a_case_id_written_with_other_unicode_forms_is_the_same_returnee() {
        let ring = ring();
        let ascii = ring.pseudonymise("MA-RAB-2024-0017").unwrap();
        let written_otherwise = [
            "ＭＡ－ＲＡＢ－２０２４－００１７",
            "ma\u{2010}rab\u{2011}2024\u{2013}0017",
            "MA\u{2212}RAB\u{2014}2024\u{2015}0017",
            "MA-RAB-\u{200B}2024-00\u{200D}17\u{FEFF}",
            "MA-\u{2060}RAB-20\u{00AD}24-0017",
            "\u{3000}MA-RAB-2024-0017\u{00A0}",
        ];
        for case_id in written_otherwise {
            assert_eq!(ring.pseudonymise(case_id).unwrap(), ascii, "{:?}", case_id.escape_unicode().to_string());
        }
        assert_eq!(normalise_case_id("ｔｎ／ｓｆｘ＿２０２２．７").unwrap(), "TN/SFX_2022.7");
    }

    #[test]
    fn a_case_id_holding_other_characters_is_refused_naming_the_rule() {
        let ring = ring();
        for case_id in
            ["MA\u{202E}1", "MA\u{2066}1\u{2069}", "MA-\u{0661}\u{0662}", "MA#1", "MA,1", "DÉPART-1", "MA\u{200E}1", "Ма-1"]
        {
            let error = ring.pseudonymise(case_id).unwrap_err();
            assert_eq!(
                error,
                DomainError::invalid("case_id", CASE_ID_RULE.to_string()),
                "{:?}",
                case_id.escape_unicode().to_string()
            );
            assert_eq!(error.kind(), crate::domain::ErrorKind::Invalid);
        }
        let message = ring.pseudonymise("MA\u{202E}1").unwrap_err().to_string();
        assert_eq!(message, "case_id: may hold only letters A-Z, digits 0-9 and - / _ . (after Unicode NFKC normalisation)");
        assert!(ring.pseudonymise("\u{200B}\u{FEFF}").is_err(), "nothing but invisible characters is empty");
    }

    #[test]
    fn a_bad_case_id_error_never_repeats_the_case_id() {
        let long = "SECRETCASE".repeat(10);
        let message = ring().pseudonymise(&long).unwrap_err().to_string();
        assert!(!message.contains("SECRETCASE"), "{message}");
        assert!(ring().pseudonymise("   ").is_err());
    }

    #[test]
    fn events_tagged_with_a_retired_key_still_verify_after_rotation() {
        let mut ring = ring();
        let hash = [9u8; 32];
        let (old_id, old_tag) = ring.tag(&hash);
        ring.rotate_hmac().unwrap();
        let (new_id, new_tag) = ring.tag(&hash);
        assert_ne!(old_id, new_id);
        assert_eq!(ring.verify_tag(&old_id, &hash, &old_tag), Ok(()));
        assert_eq!(ring.verify_tag(&new_id, &hash, &new_tag), Ok(()));
        assert_eq!(ring.verify_tag(&new_id, &hash, &old_tag), Err(TagError::BadTag(new_id.clone())));
        assert_eq!(ring.verify_tag("0000", &hash, &old_tag), Err(TagError::UnknownKey("0000".to_string())));
    }

    #[test]
    fn a_rotated_checkpoint_key_is_kept_as_retired_with_its_period_and_survives_the_key_file() {
        let mut ring = ring();
        let old_seed = *ring.checkpoint.as_ref().unwrap().secret();
        let old_public = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
        ring.rotate_checkpoint(old_public, Some("2026-01-01T00:00:00Z"), "2026-06-30T12:00:00Z").unwrap();
        assert_ne!(ring.checkpoint.as_ref().unwrap().secret(), &old_seed, "a new key signs");
        let expected = RetiredCheckpointKey::parse(old_public, Some("2026-01-01T00:00:00Z"), "2026-06-30T12:00:00Z").unwrap();
        assert_eq!(ring.retired_checkpoint, vec![expected.clone()]);
        let directory = std::env::temp_dir().join(format!("ledger-checkpoint-keys-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("ledger.db.keys");
        ring.write_file(&path).unwrap();
        let read = KeyRing::read_file(&path).unwrap();
        assert_eq!(read.retired_checkpoint, vec![expected]);
        assert_eq!(read.checkpoint.unwrap().secret(), ring.checkpoint.as_ref().unwrap().secret());
        std::fs::remove_dir_all(&directory).unwrap();
        let mut without = ring.clone();
        without.checkpoint = None;
        assert!(matches!(without.rotate_checkpoint(old_public, None, "2026-06-30T12:00:00Z"), Err(KeyError::NoCheckpointKey)));
        assert!(matches!(without.write_file(&path), Err(KeyError::NoCheckpointKey)));
    }

    #[test]
    fn a_retired_checkpoint_key_is_read_only_in_its_exact_form() {
        let key = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
        let parsed = RetiredCheckpointKey::parse_text("X", &format!("{key}@/2026-06-30T12:00:00Z")).unwrap();
        assert_eq!((parsed.valid_from, parsed.valid_until.as_str()), (None, "2026-06-30T12:00:00Z"));
        let parsed = RetiredCheckpointKey::parse_text("X", &format!("{key}@2026-01-01T00:00:00Z/2026-06-30T12:00:00Z")).unwrap();
        assert_eq!(parsed.valid_from.as_deref(), Some("2026-01-01T00:00:00Z"));
        for bad in [
            key.to_string(),
            format!("{key}@2026-06-30T12:00:00Z"),
            format!("{}@/2026-06-30T12:00:00Z", key.to_uppercase()),
            format!("{}@/2026-06-30T12:00:00Z", &key[2..]),
            format!("{key}@/2026-06-30 12:00:00Z"),
            format!("{key}@/2026-06-30T12:00:00+00:00"),
            format!("{key}@/2026-02-30T12:00:00Z"),
            format!("{key}@x/2026-06-30T12:00:00Z"),
        ] {
            let refused = RetiredCheckpointKey::parse_text("LEDGER_CHECKPOINT_RETIRED_KEYS", &bad).unwrap_err();
            assert!(refused.to_string().starts_with("LEDGER_CHECKPOINT_RETIRED_KEYS: each retired checkpoint key is"), "{bad}");
        }
    }

    /// The seeds an older version derived when no checkpoint key was set:
    /// HMAC-SHA256 under the HMAC key of "checkpoint signing key", for the
    /// active key and each retired one, so their checkpoints stay known.
    #[test]
    fn the_derived_checkpoint_seeds_are_those_an_older_version_signed_with() {
        let mut ring = ring();
        ring.rotate_hmac().unwrap();
        let seeds = ring.derived_checkpoint_seeds();
        assert_eq!(seeds.len(), 2);
        assert_eq!(seeds[1], ring.retired_hmac[0].mac(b"checkpoint signing key"));
        let mut mac = HmacSha256::new_from_slice(&[1; 32]).unwrap();
        mac.update(b"checkpoint signing key");
        assert_eq!(seeds[1].as_slice(), mac.finalize().into_bytes().as_slice());
        assert_ne!(seeds[0], seeds[1]);
    }

    #[test]
    fn a_key_file_is_private_and_reads_back_the_same_keys() {
        use std::os::unix::fs::PermissionsExt;
        let directory = std::env::temp_dir().join(format!("ledger-keys-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        let path = directory.join("ledger.db.keys");
        let mut written = ring();
        written.rotate_hmac().unwrap();
        written.write_file(&path).unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let read = KeyRing::read_file(&path).unwrap();
        assert_eq!(read.active_hmac.id, written.active_hmac.id);
        assert_eq!(read.retired_hmac[0].id, written.retired_hmac[0].id);
        assert_eq!(read.pseudonym.secret(), written.pseudonym.secret());
        std::fs::remove_dir_all(&directory).unwrap();
    }
}
