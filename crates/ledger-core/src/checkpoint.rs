//! Signed checkpoints: an Ed25519 signature over the size and root of the
//! ledger's Merkle tree at a point in time.
//!
//! The signed message is the UTF-8 (in fact ASCII) text
//!
//! ```text
//! reintegration-ledger checkpoint v1\n
//! <tree_size in decimal>\n
//! <root_hash as 64 lower-case hex characters>\n
//! <created_at>\n
//! ```
//!
//! with every line, the last included, ended by a single `\n` (0x0A).
//! `created_at` is RFC 3339 UTC text such as `2026-11-23T18:44:10Z`; it is
//! signed exactly as given and never parsed, but it must be non-empty ASCII
//! without control characters so that the message has exactly four lines.
//!
//! A signed checkpoint travels as a flat JSON object:
//!
//! ```json
//! {"tree_size":12,"root_hash":"<64 hex>","created_at":"2026-11-23T18:44:10Z",
//!  "key_id":"<16 hex>","signature":"<128 hex>"}
//! ```
//!
//! where every hex string is lower-case and `key_id` is the first 16 hex
//! characters of SHA-256 over the signer's 32-byte Ed25519 public key.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use sha2::{Digest, Sha256};

use crate::merkle::Hash;

/// First line of every signed checkpoint message, with its newline.
const CHECKPOINT_MESSAGE_HEADER: &str = "reintegration-ledger checkpoint v1\n";

/// Number of hex characters of a key id.
const KEY_ID_HEX_LENGTH: usize = 16;

/// Why a checkpoint, a key or its text form was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// A `created_at` that is empty or holds non-ASCII or control characters.
    #[error("created_at must be non-empty ascii text without control characters")]
    InvalidCreatedAt,
    /// A hex field of the wrong length, case or alphabet.
    #[error("{field} must be {expected_length} lower-case hex characters")]
    InvalidHex { field: &'static str, expected_length: usize },
    /// Public key bytes that are not a valid Ed25519 point encoding.
    #[error("public key is not a valid ed25519 point")]
    InvalidPublicKey,
    /// A public key of small order, for which signatures prove nothing.
    #[error("public key is a weak ed25519 point of small order")]
    WeakPublicKey,
    /// A checkpoint signed under another key than the one given to verify.
    #[error("checkpoint names key {checkpoint_key_id}, not the verifying key {verifying_key_id}")]
    KeyIdMismatch { checkpoint_key_id: String, verifying_key_id: String },
    /// A checkpoint of the empty tree: every history extends it, so it
    /// proves nothing, and the ledger never signs one.
    #[error("a checkpoint of size 0 proves nothing: the ledger signs checkpoints of at least one event")]
    EmptyTree,
    /// A signature that does not verify over the checkpoint message.
    #[error("checkpoint signature is invalid")]
    InvalidSignature,
    /// A checkpoint note that is malformed or does not verify.
    #[error("{0}")]
    Note(crate::note::NoteError),
    /// The operating system could not supply randomness for a new key.
    #[error("operating system random source failed: {0}")]
    RandomSource(getrandom::Error),
}

/// The signed statement: the tree of the first `tree_size` events has root
/// `root_hash`, as of `created_at`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checkpoint {
    pub tree_size: u64,
    pub root_hash: Hash,
    pub created_at: String,
}

impl Checkpoint {
    /// A checkpoint whose `created_at` is checked to be non-empty ASCII
    /// without control characters.
    pub fn new(tree_size: u64, root_hash: Hash, created_at: impl Into<String>) -> Result<Self, CheckpointError> {
        let checkpoint = Self { tree_size, root_hash, created_at: created_at.into() };
        validate_created_at(&checkpoint.created_at)?;
        Ok(checkpoint)
    }

    /// The exact bytes that are signed (see the module documentation).
    pub fn signed_message(&self) -> Vec<u8> {
        format!("{CHECKPOINT_MESSAGE_HEADER}{}\n{}\n{}\n", self.tree_size, hex::encode(self.root_hash), self.created_at)
            .into_bytes()
    }
}

/// A checkpoint with the Ed25519 signature of its message and the id of the
/// signing key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignedCheckpoint {
    pub checkpoint: Checkpoint,
    pub key_id: String,
    pub signature: [u8; 64],
}

impl SignedCheckpoint {
    /// Checks that `created_at` is well formed, that the checkpoint names
    /// `key`, and that the signature verifies under `key` with Ed25519's
    /// strict rules (`verify_strict`: no weak keys, canonical encodings).
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), CheckpointError> {
        validate_created_at(&self.checkpoint.created_at)?;
        if self.checkpoint.tree_size == 0 {
            return Err(CheckpointError::EmptyTree);
        }
        let verifying_key_id = public_key_id(key);
        if self.key_id != verifying_key_id {
            return Err(CheckpointError::KeyIdMismatch { checkpoint_key_id: self.key_id.clone(), verifying_key_id });
        }
        let signature = Signature::from_bytes(&self.signature);
        key.verify_strict(&self.checkpoint.signed_message(), &signature).map_err(|_| CheckpointError::InvalidSignature)
    }
}

/// Signs `checkpoint` with `key`.
///
/// # Panics
///
/// If `checkpoint.created_at` is empty or holds non-ASCII or control
/// characters: such a checkpoint could never verify, so signing it is a bug
/// of the caller. [`Checkpoint::new`] refuses it with an error instead.
pub fn sign(checkpoint: Checkpoint, key: &SigningKey) -> SignedCheckpoint {
    assert!(
        validate_created_at(&checkpoint.created_at).is_ok(),
        "refusing to sign a checkpoint whose created_at is not non-empty ascii text \
         without control characters"
    );
    let signature = key.sign(&checkpoint.signed_message()).to_bytes();
    let signed = SignedCheckpoint { key_id: public_key_id(&key.verifying_key()), checkpoint, signature };
    assert_eq!(signed.key_id.len(), KEY_ID_HEX_LENGTH);
    signed
}

/// The id of a public key: the first 16 lower-case hex characters of
/// SHA-256 over its 32 bytes.
pub fn public_key_id(key: &VerifyingKey) -> String {
    let digest = Sha256::digest(key.as_bytes());
    let mut key_id = hex::encode(digest);
    key_id.truncate(KEY_ID_HEX_LENGTH);
    key_id
}

/// A public key as 64 lower-case hex characters.
pub fn format_public_key_hex(key: &VerifyingKey) -> String {
    hex::encode(key.as_bytes())
}

/// Parses a public key from exactly 64 lower-case hex characters (nothing
/// is trimmed), refusing invalid and weak (small-order) points.
pub fn parse_public_key_hex(text: &str) -> Result<VerifyingKey, CheckpointError> {
    let bytes: [u8; 32] = decode_lower_hex(text, "public key")?;
    let key = VerifyingKey::from_bytes(&bytes).map_err(|_| CheckpointError::InvalidPublicKey)?;
    if key.is_weak() {
        return Err(CheckpointError::WeakPublicKey);
    }
    Ok(key)
}

/// A signing key as its 32-byte seed in 64 lower-case hex characters.
/// The result is secret.
pub fn format_signing_key_hex(key: &SigningKey) -> String {
    hex::encode(key.to_bytes())
}

/// Parses a signing key from its 32-byte seed in exactly 64 lower-case hex
/// characters (nothing is trimmed). Errors never repeat the text.
pub fn parse_signing_key_hex(text: &str) -> Result<SigningKey, CheckpointError> {
    let seed: [u8; 32] = decode_lower_hex(text, "signing key")?;
    Ok(SigningKey::from_bytes(&seed))
}

/// A new signing key from the operating system's random source.
pub fn generate_signing_key() -> Result<SigningKey, CheckpointError> {
    let mut seed = [0u8; 32];
    getrandom::getrandom(&mut seed).map_err(CheckpointError::RandomSource)?;
    Ok(SigningKey::from_bytes(&seed))
}

/// Refuses an empty `created_at` or one with non-ASCII or control
/// characters (which include the newline that ends the message's lines).
fn validate_created_at(created_at: &str) -> Result<(), CheckpointError> {
    let well_formed = !created_at.is_empty() && created_at.bytes().all(|byte| byte.is_ascii() && !byte.is_ascii_control());
    if well_formed { Ok(()) } else { Err(CheckpointError::InvalidCreatedAt) }
}

/// Decodes exactly `2 * N` lower-case hex characters.
fn decode_lower_hex<const N: usize>(text: &str, field: &'static str) -> Result<[u8; N], CheckpointError> {
    let invalid = CheckpointError::InvalidHex { field, expected_length: 2 * N };
    let lower_case_hex = text.len() == 2 * N && text.bytes().all(|byte| byte.is_ascii_digit() || (b'a'..=b'f').contains(&byte));
    if !lower_case_hex {
        return Err(invalid);
    }
    let mut bytes = [0u8; N];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| invalid)?;
    Ok(bytes)
}

/// The JSON form of a [`SignedCheckpoint`]: one flat object.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct SignedCheckpointJson {
    tree_size: u64,
    root_hash: String,
    created_at: String,
    key_id: String,
    signature: String,
}

impl From<&SignedCheckpoint> for SignedCheckpointJson {
    fn from(signed: &SignedCheckpoint) -> Self {
        Self {
            tree_size: signed.checkpoint.tree_size,
            root_hash: hex::encode(signed.checkpoint.root_hash),
            created_at: signed.checkpoint.created_at.clone(),
            key_id: signed.key_id.clone(),
            signature: hex::encode(signed.signature),
        }
    }
}

impl TryFrom<SignedCheckpointJson> for SignedCheckpoint {
    type Error = CheckpointError;

    fn try_from(json: SignedCheckpointJson) -> Result<Self, Self::Error> {
        let root_hash: Hash = decode_lower_hex(&json.root_hash, "root_hash")?;
        let signature: [u8; 64] = decode_lower_hex(&json.signature, "signature")?;
        let _: [u8; KEY_ID_HEX_LENGTH / 2] = decode_lower_hex(&json.key_id, "key_id")?;
        Ok(Self { checkpoint: Checkpoint::new(json.tree_size, root_hash, json.created_at)?, key_id: json.key_id, signature })
    }
}

impl Serialize for SignedCheckpoint {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SignedCheckpointJson::from(self).serialize(serializer)
    }
}

impl<'de> Deserialize<'de> for SignedCheckpoint {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let json = SignedCheckpointJson::deserialize(deserializer)?;
        Self::try_from(json).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;

    /// The test seed: the 32 bytes 0x01, 0x02, ..., 0x20.
    const TEST_SEED_HEX: &str = "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f20";
    const TEST_PUBLIC_KEY_HEX: &str = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";
    const TEST_KEY_ID: &str = "65b60673d6ed884b";
    /// Root of the tree over SHA-256("event 1"), ("event 2"), ("event 3").
    const TEST_ROOT_HEX: &str = "1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92";
    const TEST_SIGNATURE_HEX: &str = "354742f4431ace26755c5038cdd97de35fd5cdbd8754a4c06a4e4c1992555bf8\
                                      eef9217bde29f6122b658b9ecfeb2d7cb177a53c3371730397225bbf19050307";

    fn test_signing_key() -> SigningKey {
        let seed: [u8; 32] = std::array::from_fn(|position| position as u8 + 1);
        SigningKey::from_bytes(&seed)
    }

    fn other_signing_key() -> SigningKey {
        SigningKey::from_bytes(&[0x42; 32])
    }

    fn test_checkpoint() -> Checkpoint {
        let tree = MerkleTree::from_event_hashes(["event 1", "event 2", "event 3"].map(|text| Sha256::digest(text).into()));
        Checkpoint::new(3, tree.root(3).unwrap(), "2026-01-01T00:00:00Z").unwrap()
    }

    fn test_signed_checkpoint() -> SignedCheckpoint {
        sign(test_checkpoint(), &test_signing_key())
    }

    #[test]
    fn signed_message_is_the_exact_text() {
        let message = test_checkpoint().signed_message();
        let expected = format!("reintegration-ledger checkpoint v1\n3\n{TEST_ROOT_HEX}\n2026-01-01T00:00:00Z\n");
        assert_eq!(message, expected.into_bytes());
        assert_eq!(message.len(), 123);
        let empty = Checkpoint::new(0, crate::merkle::empty_root(), "t").unwrap();
        assert!(empty.signed_message().starts_with(b"reintegration-ledger checkpoint v1\n0\ne3b0"));
        let large = Checkpoint::new(u64::MAX, [0xAB; 32], "x").unwrap();
        assert_eq!(
            String::from_utf8(large.signed_message()).unwrap(),
            format!("reintegration-ledger checkpoint v1\n18446744073709551615\n{}\nx\n", "ab".repeat(32))
        );
    }

    #[test]
    fn sign_then_verify_succeeds() {
        let key = test_signing_key();
        let signed = sign(test_checkpoint(), &key);
        assert_eq!(signed.checkpoint, test_checkpoint());
        assert_eq!(signed.key_id, public_key_id(&key.verifying_key()));
        assert_eq!(signed.verify(&key.verifying_key()), Ok(()));
    }

    #[test]
    fn fixed_test_vector_is_reproduced() {
        let key = parse_signing_key_hex(TEST_SEED_HEX).unwrap();
        assert_eq!(key.to_bytes(), test_signing_key().to_bytes());
        assert_eq!(format_public_key_hex(&key.verifying_key()), TEST_PUBLIC_KEY_HEX);
        assert_eq!(public_key_id(&key.verifying_key()), TEST_KEY_ID);
        let signed = test_signed_checkpoint();
        assert_eq!(hex::encode(signed.checkpoint.root_hash), TEST_ROOT_HEX);
        assert_eq!(hex::encode(signed.signature), TEST_SIGNATURE_HEX);
        let public_key = parse_public_key_hex(TEST_PUBLIC_KEY_HEX).unwrap();
        assert_eq!(signed.verify(&public_key), Ok(()));
        assert_eq!(
            serde_json::to_string(&signed).unwrap(),
            format!(
                "{{\"tree_size\":3,\"root_hash\":\"{TEST_ROOT_HEX}\",\
                 \"created_at\":\"2026-01-01T00:00:00Z\",\"key_id\":\"{TEST_KEY_ID}\",\
                 \"signature\":\"{TEST_SIGNATURE_HEX}\"}}"
            )
        );
    }

    #[test]
    fn any_changed_field_is_rejected() {
        let public_key = test_signing_key().verifying_key();
        let signed = test_signed_checkpoint();

        let mut changed = signed.clone();
        changed.checkpoint.tree_size = 4;
        assert_eq!(changed.verify(&public_key), Err(CheckpointError::InvalidSignature));

        let mut changed = signed.clone();
        changed.checkpoint.root_hash[31] ^= 0x01;
        assert_eq!(changed.verify(&public_key), Err(CheckpointError::InvalidSignature));

        let mut changed = signed.clone();
        changed.checkpoint.created_at = "2026-01-01T00:00:01Z".to_owned();
        assert_eq!(changed.verify(&public_key), Err(CheckpointError::InvalidSignature));

        for position in [0, 31, 32, 63] {
            let mut changed = signed.clone();
            changed.signature[position] ^= 0x80;
            assert_eq!(changed.verify(&public_key), Err(CheckpointError::InvalidSignature), "signature byte {position}");
        }

        let mut changed = signed.clone();
        changed.checkpoint.created_at = "2026-01-01T00:00:00Z\n".to_owned();
        assert_eq!(changed.verify(&public_key), Err(CheckpointError::InvalidCreatedAt));
    }

    #[test]
    fn a_checkpoint_of_size_zero_is_refused_even_when_its_signature_is_good() {
        let key = test_signing_key();
        let empty = sign(Checkpoint::new(0, crate::merkle::empty_root(), "2026-01-01T00:00:00Z").unwrap(), &key);
        assert_eq!(empty.verify(&key.verifying_key()), Err(CheckpointError::EmptyTree));
        assert!(
            key.verifying_key()
                .verify_strict(&empty.checkpoint.signed_message(), &Signature::from_bytes(&empty.signature))
                .is_ok()
        );
    }

    /// A signature whose R is a point of small order (here the identity)
    /// is refused before the equation is checked, as docs/merkle.md says.
    #[test]
    fn a_signature_whose_r_is_of_small_order_is_refused() {
        let mut signed = test_signed_checkpoint();
        signed.signature[..32].copy_from_slice(&{
            let mut identity = [0u8; 32];
            identity[0] = 1;
            identity
        });
        assert_eq!(signed.verify(&test_signing_key().verifying_key()), Err(CheckpointError::InvalidSignature));
    }

    #[test]
    fn another_public_key_is_rejected() {
        let signed = test_signed_checkpoint();
        let other_key = other_signing_key().verifying_key();
        assert_eq!(
            signed.verify(&other_key),
            Err(CheckpointError::KeyIdMismatch {
                checkpoint_key_id: TEST_KEY_ID.to_owned(),
                verifying_key_id: public_key_id(&other_key),
            })
        );
        let mut relabelled = signed;
        relabelled.key_id = public_key_id(&other_key);
        assert_eq!(relabelled.verify(&other_key), Err(CheckpointError::InvalidSignature));
    }

    #[test]
    fn json_round_trip_keeps_every_field() {
        let signed = test_signed_checkpoint();
        let text = serde_json::to_string(&signed).unwrap();
        let parsed: SignedCheckpoint = serde_json::from_str(&text).unwrap();
        assert_eq!(parsed, signed);
        assert_eq!(parsed.verify(&test_signing_key().verifying_key()), Ok(()));
        let pretty = serde_json::to_string_pretty(&signed).unwrap();
        assert_eq!(serde_json::from_str::<SignedCheckpoint>(&pretty).unwrap(), signed);
    }

    /// The JSON text of the test vector with one field's value replaced.
    fn json_with(field: &str, value: serde_json::Value) -> String {
        let mut object = serde_json::to_value(test_signed_checkpoint()).unwrap();
        object[field] = value;
        object.to_string()
    }

    #[test]
    fn malformed_json_is_rejected() {
        let short_root = &TEST_ROOT_HEX[2..];
        let long_signature = format!("{TEST_SIGNATURE_HEX}00");
        let upper_case_root = TEST_ROOT_HEX.to_ascii_uppercase();
        let refused = [
            json_with("root_hash", short_root.into()),
            json_with("root_hash", upper_case_root.into()),
            json_with("root_hash", format!("{}zz", &TEST_ROOT_HEX[2..]).into()),
            json_with("signature", long_signature.into()),
            json_with("signature", TEST_SIGNATURE_HEX[..126].into()),
            json_with("key_id", "65b60673d6ed884".into()),
            json_with("key_id", "65B60673D6ED884B".into()),
            json_with("created_at", "".into()),
            json_with("created_at", "2026-01-01T00:00:00Z\n".into()),
            json_with("created_at", "2026-01-01T00:00:00\u{00e9}".into()),
            json_with("tree_size", (-1).into()),
            json_with("tree_size", "3".into()),
            json_with("unexpected", true.into()),
        ];
        for text in refused {
            assert!(serde_json::from_str::<SignedCheckpoint>(&text).is_err(), "{text}");
        }
        let mut object = serde_json::to_value(test_signed_checkpoint()).unwrap();
        object.as_object_mut().unwrap().remove("key_id");
        assert!(serde_json::from_value::<SignedCheckpoint>(object).is_err());
        let error =
            serde_json::from_str::<SignedCheckpoint>(&json_with("signature", TEST_SIGNATURE_HEX[..126].into())).unwrap_err();
        assert!(error.to_string().contains("signature must be 128 lower-case hex characters"));
    }

    #[test]
    fn created_at_is_validated() {
        let root = [0u8; 32];
        assert!(Checkpoint::new(1, root, "2026-11-23T18:44:10Z").is_ok());
        for bad in ["", "2026-11-23T18:44:10Z\n", "2026\r", "tab\there", "caf\u{00e9}", "\u{7f}"] {
            assert_eq!(Checkpoint::new(1, root, bad), Err(CheckpointError::InvalidCreatedAt), "{bad:?}");
        }
    }

    #[test]
    #[should_panic(expected = "refusing to sign")]
    fn signing_a_malformed_created_at_panics() {
        let checkpoint = Checkpoint { tree_size: 1, root_hash: [0; 32], created_at: "line\nbreak".to_owned() };
        let _ = sign(checkpoint, &test_signing_key());
    }

    #[test]
    fn key_hex_helpers_round_trip_and_refuse_bad_input() {
        let key = test_signing_key();
        assert_eq!(format_signing_key_hex(&key), TEST_SEED_HEX);
        let parsed = parse_signing_key_hex(TEST_SEED_HEX).unwrap();
        assert_eq!(parsed.to_bytes(), key.to_bytes());
        assert_eq!(format_public_key_hex(&key.verifying_key()), TEST_PUBLIC_KEY_HEX);
        let public_key = parse_public_key_hex(TEST_PUBLIC_KEY_HEX).unwrap();
        assert_eq!(public_key, key.verifying_key());
        assert!(parse_signing_key_hex(&TEST_SEED_HEX.to_ascii_uppercase()).is_err());
        assert_eq!(
            parse_public_key_hex(&TEST_PUBLIC_KEY_HEX.to_ascii_uppercase()),
            Err(CheckpointError::InvalidHex { field: "public key", expected_length: 64 })
        );
        assert_eq!(
            parse_signing_key_hex(&TEST_SEED_HEX[1..]).unwrap_err(),
            CheckpointError::InvalidHex { field: "signing key", expected_length: 64 }
        );
        assert!(parse_signing_key_hex(&format!("{TEST_SEED_HEX} ")).is_err());
        assert!(parse_public_key_hex("").is_err());
        assert!(parse_public_key_hex(&"g".repeat(64)).is_err());
        // y = 2 is not the y coordinate of any point of the curve.
        let not_a_point = format!("02{}", "00".repeat(31));
        assert_eq!(parse_public_key_hex(&not_a_point), Err(CheckpointError::InvalidPublicKey));
        // y = 1 encodes the identity, a point of small order.
        let identity = format!("01{}", "00".repeat(31));
        assert_eq!(parse_public_key_hex(&identity), Err(CheckpointError::WeakPublicKey));
    }

    #[test]
    fn generated_keys_differ_and_sign() {
        let first = generate_signing_key().unwrap();
        let second = generate_signing_key().unwrap();
        assert_ne!(first.to_bytes(), second.to_bytes());
        let signed = sign(test_checkpoint(), &first);
        assert_eq!(signed.verify(&first.verifying_key()), Ok(()));
        assert!(signed.verify(&second.verifying_key()).is_err());
    }

    #[test]
    fn error_messages_are_lower_case_without_period() {
        let errors = [
            CheckpointError::InvalidCreatedAt,
            CheckpointError::InvalidHex { field: "root_hash", expected_length: 64 },
            CheckpointError::InvalidPublicKey,
            CheckpointError::WeakPublicKey,
            CheckpointError::KeyIdMismatch { checkpoint_key_id: "a".repeat(16), verifying_key_id: "b".repeat(16) },
            CheckpointError::InvalidSignature,
            CheckpointError::EmptyTree,
        ];
        for error in errors {
            let message = error.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert_eq!(message, message.to_lowercase(), "{message}");
        }
    }
}
