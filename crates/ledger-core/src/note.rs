//! C2SP signed notes and tlog checkpoints: the formats Go's checksum
//! database, Sigstore and the public witness network verify.
//!
//! A signed note (C2SP `signed-note`) is a UTF-8 text, every line ended by
//! `\n`, then an empty line, then one signature line per signer:
//!
//! ```text
//! — <key name> <base64(key hash (4 bytes) || signature)>\n
//! ```
//!
//! The key hash of an Ed25519 note key (type 0x01) is the first 4 bytes of
//! SHA-256(`key name || 0x0A || 0x01 || public key`); its verifier key is
//! written `<name>+<key hash as 8 hex>+<base64(0x01 || public key)>` (the
//! "vkey"). The text a checkpoint note carries (C2SP `tlog-checkpoint`) is
//! the origin line, the tree size in decimal and the root hash in base64,
//! then optional extension lines.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// The signature type of an Ed25519 note key.
pub const SIGNATURE_TYPE_ED25519: u8 = 0x01;
/// The signature type of a C2SP `tlog-cosignature` v1 key.
pub const SIGNATURE_TYPE_COSIGNATURE: u8 = 0x04;
/// Longest note read, in bytes (a checkpoint with many cosignatures is a
/// few kilobytes).
pub const NOTE_BYTES_MAX: usize = 64 * 1024;
/// Most signature lines read from one note.
pub const NOTE_SIGNATURES_MAX: usize = 100;
/// Longest key name or origin, in bytes.
pub const KEY_NAME_BYTES_MAX: usize = 256;
/// The prefix of every signature line: an em dash (U+2014) and a space.
const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// Why a note, a key or a checkpoint text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    #[error("the note is longer than {NOTE_BYTES_MAX} bytes")]
    TooLong,
    #[error("the note is malformed: {0}")]
    Malformed(&'static str),
    #[error("the note has more than {NOTE_SIGNATURES_MAX} signatures")]
    TooManySignatures,
    #[error("a key name must be 1 to {KEY_NAME_BYTES_MAX} bytes without spaces or '+'")]
    BadKeyName,
    #[error("the verifier key is malformed: {0}")]
    BadVerifierKey(&'static str),
    #[error("the verifier key's hash {found} is not the hash of its name and key, {expected}")]
    WrongKeyHash { found: String, expected: String },
    #[error("the note carries no signature by {name} with key hash {key_hash}")]
    NoSignatureByKey { name: String, key_hash: String },
    #[error("the signature of {name} does not verify over the note's text")]
    InvalidSignature { name: String },
    #[error("the checkpoint text is malformed: {0}")]
    BadCheckpoint(&'static str),
    #[error("{verified} of the required {required} witness cosignatures verify")]
    TooFewCosignatures { verified: usize, required: usize },
    #[error("the checkpoint's origin is {found}, not {expected}")]
    WrongOrigin { found: String, expected: String },
}

/// A key name (also a log's origin): non-empty, at most
/// `KEY_NAME_BYTES_MAX` bytes, no Unicode space, no '+', no control
/// character.
pub fn is_key_name_valid(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= KEY_NAME_BYTES_MAX
        && !name.chars().any(|character| character.is_whitespace() || character == '+' || character.is_control())
}

/// The 4-byte key hash of a note key.
pub fn key_hash(name: &str, signature_type: u8, public_key: &[u8; 32]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update(b"\n")
        .chain_update([signature_type])
        .chain_update(public_key)
        .finalize();
    [digest[0], digest[1], digest[2], digest[3]]
}

/// A verifier key: a name, its key hash, the signature type and the Ed25519 key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VerifierKey {
    pub name: String,
    pub key_hash: [u8; 4],
    pub signature_type: u8,
    pub public_key: VerifyingKey,
}

impl VerifierKey {
    pub fn new(name: &str, signature_type: u8, public_key: VerifyingKey) -> Result<Self, NoteError> {
        if !is_key_name_valid(name) {
            return Err(NoteError::BadKeyName);
        }
        let key_hash = key_hash(name, signature_type, public_key.as_bytes());
        Ok(VerifierKey { name: name.to_string(), key_hash, signature_type, public_key })
    }

    /// Parses `<name>+<8 hex>+<base64(type || key)>`, refusing a key hash
    /// that is not the key's, an unknown type and small-order keys.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let mut parts = text.splitn(3, '+');
        let (Some(name), Some(hash_hex), Some(key_base64)) = (parts.next(), parts.next(), parts.next()) else {
            return Err(NoteError::BadVerifierKey("it must be name+hash+key"));
        };
        if !is_key_name_valid(name) {
            return Err(NoteError::BadKeyName);
        }
        let lower_hex = hash_hex.len() == 8 && hash_hex.bytes().all(|byte| matches!(byte, b'0'..=b'9' | b'a'..=b'f'));
        let mut found_hash = [0u8; 4];
        if !lower_hex || hex::decode_to_slice(hash_hex, &mut found_hash).is_err() {
            return Err(NoteError::BadVerifierKey("the key hash must be 8 lower-case hex characters"));
        }
        let key = BASE64.decode(key_base64).map_err(|_| NoteError::BadVerifierKey("the key is not base64"))?;
        let (signature_type, public_key) = match key.as_slice() {
            [signature_type @ (SIGNATURE_TYPE_ED25519 | SIGNATURE_TYPE_COSIGNATURE), rest @ ..] if rest.len() == 32 => {
                (*signature_type, <[u8; 32]>::try_from(rest).expect("32 bytes"))
            }
            [SIGNATURE_TYPE_ED25519 | SIGNATURE_TYPE_COSIGNATURE, ..] => {
                return Err(NoteError::BadVerifierKey("an ed25519 key is 32 bytes"));
            }
            _ => return Err(NoteError::BadVerifierKey("the key type must be 0x01 (ed25519) or 0x04 (cosignature/v1)")),
        };
        let public_key = VerifyingKey::from_bytes(&public_key).map_err(|_| NoteError::BadVerifierKey("not an ed25519 point"))?;
        if public_key.is_weak() {
            return Err(NoteError::BadVerifierKey("a weak ed25519 point of small order"));
        }
        let verifier = VerifierKey::new(name, signature_type, public_key)?;
        if verifier.key_hash != found_hash {
            return Err(NoteError::WrongKeyHash { found: hash_hex.to_string(), expected: hex::encode(verifier.key_hash) });
        }
        Ok(verifier)
    }

    /// The vkey text.
    pub fn format(&self) -> String {
        let mut key = vec![self.signature_type];
        key.extend_from_slice(self.public_key.as_bytes());
        format!("{}+{}+{}", self.name, hex::encode(self.key_hash), BASE64.encode(key))
    }
}

/// One signature line: the signer's name, key hash and signature bytes
/// (for a cosignature: the 8-byte timestamp, then the signature).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoteSignature {
    pub name: String,
    pub key_hash: [u8; 4],
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// The line, its `\n` included.
    pub fn line(&self) -> String {
        let mut bytes = self.key_hash.to_vec();
        bytes.extend_from_slice(&self.signature);
        format!("{SIGNATURE_LINE_PREFIX}{} {}\n", self.name, BASE64.encode(bytes))
    }

    fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line
            .strip_prefix(SIGNATURE_LINE_PREFIX)
            .ok_or(NoteError::Malformed("a signature line starts with an em dash and a space"))?;
        let (name, encoded) =
            rest.split_once(' ').ok_or(NoteError::Malformed("a signature line is a name, a space and base64"))?;
        if !is_key_name_valid(name) {
            return Err(NoteError::BadKeyName);
        }
        let bytes = BASE64.decode(encoded).map_err(|_| NoteError::Malformed("a signature is not base64"))?;
        if bytes.len() < 5 {
            return Err(NoteError::Malformed("a signature is a key hash and at least one byte"));
        }
        let key_hash = [bytes[0], bytes[1], bytes[2], bytes[3]];
        Ok(NoteSignature { name: name.to_string(), key_hash, signature: bytes[4..].to_vec() })
    }
}

/// A note: its text (every line ended by `\n`) and its signatures, as read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedNote {
    pub text: String,
    pub signatures: Vec<NoteSignature>,
}

impl SignedNote {
    /// Reads a note strictly: UTF-8, no control character but `\n`, a text
    /// of at least one line, an empty line, then at least one signature line.
    pub fn parse(note: &[u8]) -> Result<Self, NoteError> {
        if note.len() > NOTE_BYTES_MAX {
            return Err(NoteError::TooLong);
        }
        let note = std::str::from_utf8(note).map_err(|_| NoteError::Malformed("a note is utf-8"))?;
        if note.chars().any(|character| character.is_control() && character != '\n') {
            return Err(NoteError::Malformed("a note holds no control character but the line feed"));
        }
        if !note.ends_with('\n') {
            return Err(NoteError::Malformed("every line of a note ends with a line feed"));
        }
        let split = note.rfind("\n\n").ok_or(NoteError::Malformed("a note is text, an empty line and signatures"))?;
        let (text, signatures) = (&note[..split + 1], &note[split + 2..]);
        if text.starts_with('\n') {
            return Err(NoteError::Malformed("a note's text is not empty"));
        }
        let lines: Vec<&str> = signatures.split_terminator('\n').collect();
        if lines.is_empty() {
            return Err(NoteError::Malformed("a note carries at least one signature"));
        }
        if lines.len() > NOTE_SIGNATURES_MAX {
            return Err(NoteError::TooManySignatures);
        }
        let signatures = lines.into_iter().map(NoteSignature::parse_line).collect::<Result<Vec<_>, _>>()?;
        Ok(SignedNote { text: text.to_string(), signatures })
    }

    /// The note as sent: text, empty line, signature lines.
    pub fn format(&self) -> String {
        let mut note = self.text.clone();
        note.push('\n');
        for signature in &self.signatures {
            note.push_str(&signature.line());
        }
        note
    }

    /// The signature of `key` (by name and key hash), checked with
    /// Ed25519's strict rules over the text. Other signatures are ignored.
    pub fn verify(&self, key: &VerifierKey) -> Result<(), NoteError> {
        let signature = self.signature_by(key)?;
        let bytes: [u8; 64] =
            signature.signature.as_slice().try_into().map_err(|_| NoteError::InvalidSignature { name: key.name.clone() })?;
        key.public_key
            .verify_strict(self.text.as_bytes(), &Signature::from_bytes(&bytes))
            .map_err(|_| NoteError::InvalidSignature { name: key.name.clone() })
    }

    /// The signature line whose name and key hash are the key's.
    pub fn signature_by(&self, key: &VerifierKey) -> Result<&NoteSignature, NoteError> {
        self.signatures
            .iter()
            .find(|signature| signature.name == key.name && signature.key_hash == key.key_hash)
            .ok_or_else(|| NoteError::NoSignatureByKey { name: key.name.clone(), key_hash: hex::encode(key.key_hash) })
    }
}

/// Signs `text` (which must end with `\n`) as the Ed25519 note key `name`.
pub fn sign(text: &str, name: &str, key: &SigningKey) -> Result<NoteSignature, NoteError> {
    let verifier = VerifierKey::new(name, SIGNATURE_TYPE_ED25519, key.verifying_key())?;
    assert!(text.ends_with('\n'), "a note's text ends with a line feed");
    Ok(NoteSignature {
        name: verifier.name,
        key_hash: verifier.key_hash,
        signature: key.sign(text.as_bytes()).to_bytes().to_vec(),
    })
}

/// The text of a C2SP tlog checkpoint: origin, tree size, root hash, and
/// any extension lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointText {
    pub origin: String,
    pub tree_size: u64,
    pub root_hash: Hash,
    pub extensions: Vec<String>,
}

impl CheckpointText {
    pub fn format(&self) -> String {
        let mut text = format!("{}\n{}\n{}\n", self.origin, self.tree_size, BASE64.encode(self.root_hash));
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        text
    }

    /// Reads a checkpoint text: a non-empty origin, a decimal size without
    /// sign or leading zeros, a base64 hash of 32 bytes, extension lines
    /// that are not empty.
    pub fn parse(text: &str) -> Result<Self, NoteError> {
        let lines: Vec<&str> =
            text.strip_suffix('\n').ok_or(NoteError::BadCheckpoint("it ends with a line feed"))?.split('\n').collect();
        let [origin, size, root, extensions @ ..] = lines.as_slice() else {
            return Err(NoteError::BadCheckpoint("it holds an origin, a size and a root hash"));
        };
        if origin.is_empty() {
            return Err(NoteError::BadCheckpoint("the origin is not empty"));
        }
        let canonical =
            !size.is_empty() && size.bytes().all(|byte| byte.is_ascii_digit()) && (*size == "0" || !size.starts_with('0'));
        let tree_size = size
            .parse::<u64>()
            .ok()
            .filter(|_| canonical)
            .ok_or(NoteError::BadCheckpoint("the size is a decimal number without leading zeros"))?;
        let root = BASE64.decode(root).map_err(|_| NoteError::BadCheckpoint("the root hash is base64"))?;
        let root_hash: Hash = root.try_into().map_err(|_| NoteError::BadCheckpoint("the root hash is 32 bytes"))?;
        if extensions.iter().any(|line| line.is_empty()) {
            return Err(NoteError::BadCheckpoint("an extension line is not empty"));
        }
        Ok(CheckpointText {
            origin: origin.to_string(),
            tree_size,
            root_hash,
            extensions: extensions.iter().map(|line| line.to_string()).collect(),
        })
    }
}

/// Verifies a checkpoint note under the log's key (whose name must be the
/// origin) and returns its text.
pub fn verify_checkpoint(note: &SignedNote, log_key: &VerifierKey) -> Result<CheckpointText, NoteError> {
    note.verify(log_key)?;
    let checkpoint = CheckpointText::parse(&note.text)?;
    if checkpoint.origin != log_key.name {
        return Err(NoteError::WrongOrigin { found: checkpoint.origin, expected: log_key.name.clone() });
    }
    Ok(checkpoint)
}

/// A checkpoint note signed by the log key `origin`.
pub fn sign_checkpoint(checkpoint: &CheckpointText, key: &SigningKey) -> Result<SignedNote, NoteError> {
    let text = checkpoint.format();
    let signature = sign(&text, &checkpoint.origin, key)?;
    Ok(SignedNote { text, signatures: vec![signature] })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn test_key() -> SigningKey {
        SigningKey::from_bytes(&std::array::from_fn(|position| position as u8 + 1))
    }

    fn test_checkpoint() -> CheckpointText {
        CheckpointText { origin: "ledger.example/test".to_string(), tree_size: 3, root_hash: [7; 32], extensions: vec![] }
    }

    fn signed() -> SignedNote {
        sign_checkpoint(&test_checkpoint(), &test_key()).unwrap()
    }

    fn log_key() -> VerifierKey {
        VerifierKey::new("ledger.example/test", SIGNATURE_TYPE_ED25519, test_key().verifying_key()).unwrap()
    }

    #[test]
    fn a_checkpoint_note_reads_back_and_verifies_under_its_vkey() {
        let text = signed().format();
        assert!(
            text.starts_with(&format!("ledger.example/test\n3\n{}\n\n\u{2014} ledger.example/test ", BASE64.encode([7; 32])))
        );
        let parsed = SignedNote::parse(text.as_bytes()).unwrap();
        assert_eq!(parsed, signed());
        let vkey = VerifierKey::parse(&log_key().format()).unwrap();
        assert_eq!(verify_checkpoint(&parsed, &vkey), Ok(test_checkpoint()));
    }

    #[test]
    fn a_signature_over_other_text_or_by_another_key_is_refused() {
        let mut changed = signed();
        changed.text = changed.text.replace("\n3\n", "\n4\n");
        assert_eq!(changed.verify(&log_key()), Err(NoteError::InvalidSignature { name: "ledger.example/test".to_string() }));
        let other =
            VerifierKey::new("ledger.example/test", SIGNATURE_TYPE_ED25519, SigningKey::from_bytes(&[9; 32]).verifying_key())
                .unwrap();
        assert!(matches!(signed().verify(&other), Err(NoteError::NoSignatureByKey { .. })));
        let renamed = VerifierKey::new("ledger.example/other", SIGNATURE_TYPE_ED25519, test_key().verifying_key()).unwrap();
        assert!(matches!(signed().verify(&renamed), Err(NoteError::NoSignatureByKey { .. })));
        let mut forged_id = signed();
        forged_id.signatures[0].signature[0] ^= 1;
        assert!(matches!(forged_id.verify(&log_key()), Err(NoteError::InvalidSignature { .. })));
    }

    #[test]
    fn a_checkpoint_under_the_right_key_but_another_origin_is_refused() {
        let mut checkpoint = test_checkpoint();
        checkpoint.origin = "ledger.example/other".to_string();
        let text = checkpoint.format();
        let note = SignedNote { signatures: vec![sign(&text, "ledger.example/test", &test_key()).unwrap()], text };
        assert!(matches!(verify_checkpoint(&note, &log_key()), Err(NoteError::WrongOrigin { .. })));
    }

    #[test]
    fn malformed_notes_are_refused_with_their_reason() {
        let good = signed().format();
        let cases: Vec<(String, &str)> = vec![
            (good.trim_end().to_string(), "ends with a line feed"),
            (good.replace("\n\n", "\n"), "an empty line and signatures"),
            (good.replace("\u{2014} ", "- "), "em dash"),
            (good.replace("\n3\n", "\n3\r\n"), "control character"),
            (format!("{}\n", good.trim_end().rsplit_once(' ').unwrap().0), "name, a space and base64"),
            (good.replacen("\u{2014} ledger.example/test ", "\u{2014} ledger.example/test !!", 1), "not base64"),
            ("\n\n\u{2014} a AAAAAAA=\n".to_string(), "not empty"),
        ];
        for (note, reason) in cases {
            let refused = SignedNote::parse(note.as_bytes()).unwrap_err();
            assert!(refused.to_string().contains(reason), "{note:?}: {refused}");
        }
        assert_eq!(SignedNote::parse(&vec![b'a'; NOTE_BYTES_MAX + 1]), Err(NoteError::TooLong));
        let many = format!("{}{}", good, signed().signatures[0].line().repeat(NOTE_SIGNATURES_MAX));
        assert_eq!(SignedNote::parse(many.as_bytes()), Err(NoteError::TooManySignatures));
    }

    #[test]
    fn malformed_checkpoint_texts_are_refused() {
        let root = BASE64.encode([7; 32]);
        for text in [
            format!("o\n03\n{root}\n"),
            format!("o\n-3\n{root}\n"),
            format!("o\n\n{root}\n"),
            format!("\n3\n{root}\n"),
            format!("o\n3\n{}\n", BASE64.encode([7; 31])),
            format!("o\n3\n{}\n", hex::encode([7; 32])),
            format!("o\n3\n{root}\n\n"),
            "o\n3\n".to_string(),
            format!("o\n3\n{root}"),
        ] {
            assert!(matches!(CheckpointText::parse(&text), Err(NoteError::BadCheckpoint(_))), "{text:?}");
        }
        let with_extension = CheckpointText::parse(&format!("o\n0\n{root}\nextension\n")).unwrap();
        assert_eq!(with_extension.extensions, ["extension"]);
        assert_eq!(with_extension.format(), format!("o\n0\n{root}\nextension\n"));
    }

    #[test]
    fn malformed_verifier_keys_and_a_wrong_key_id_are_refused() {
        let vkey = log_key().format();
        let (name, rest) = vkey.split_once('+').unwrap();
        let (hash, key) = rest.split_once('+').unwrap();
        let wrong_hash = format!("{name}+00000000+{key}");
        assert!(matches!(VerifierKey::parse(&wrong_hash), Err(NoteError::WrongKeyHash { .. })));
        let weak = format!("{name}+{hash}+{}", BASE64.encode([[1u8].as_slice(), &[1], &[0; 31]].concat()));
        assert!(matches!(VerifierKey::parse(&weak), Err(NoteError::BadVerifierKey(_))));
        for bad in [
            format!("{name}+{hash}"),
            format!("{name}+{}+{key}", hash.to_uppercase()),
            format!("{name}+{hash}+{}", BASE64.encode([[2u8].as_slice(), &[5; 32]].concat())),
            format!("{name}+{hash}+{}", BASE64.encode([1u8; 32])),
            format!("a b+{hash}+{key}"),
        ] {
            assert!(VerifierKey::parse(&bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn key_names_follow_the_rules() {
        assert!(is_key_name_valid("ledger.example/test"));
        for bad in ["", "a b", "a+b", "a\u{00a0}b", "a\tb"] {
            assert!(!is_key_name_valid(bad), "{bad:?}");
        }
        assert!(!is_key_name_valid(&"a".repeat(KEY_NAME_BYTES_MAX + 1)));
    }
}
