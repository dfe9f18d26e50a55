//! The hash chain: the canonical byte encoding of an event, its SHA-256 hash,
//! and a verifier that walks events in seq order and names the first bad one.
//! The encoding is specified in docs/hash-chain.md.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::Seq;
use crate::keys::{KeyRing, TagError};

/// Tag at the start of every canonical encoding; names the encoding version.
pub const ENCODING_TAG: &[u8] = b"reintegration-ledger/event/v1";
/// `prev_hash` of the first event.
pub const GENESIS_PREV_HASH: [u8; 32] = [0; 32];

/// One event as stored: every field the hash covers, plus hash and tag.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventRecord {
    pub seq: Seq,
    pub id: Uuid,
    /// UTC, RFC 3339 with exactly six fractional digits and `Z`.
    pub recorded_at: String,
    pub actor: String,
    pub event_type: String,
    pub version: u32,
    /// JSON text exactly as hashed.
    pub payload: String,
    #[serde(with = "hex_32")]
    pub prev_hash: [u8; 32],
    #[serde(with = "hex_32")]
    pub hash: [u8; 32],
    pub key_id: String,
    #[serde(with = "hex_32")]
    pub tag: [u8; 32],
}

/// The fields an event's hash covers.
#[derive(Clone, Copy, Debug)]
pub struct HashedFields<'a> {
    pub seq: Seq,
    pub id: Uuid,
    pub recorded_at: &'a str,
    pub actor: &'a str,
    pub event_type: &'a str,
    pub version: u32,
    pub payload: &'a str,
    pub prev_hash: &'a [u8; 32],
}

fn put_text(bytes: &mut Vec<u8>, text: &[u8]) {
    let length = u32::try_from(text.len()).expect("event fields are shorter than 4 GiB");
    bytes.extend_from_slice(&length.to_be_bytes());
    bytes.extend_from_slice(text);
}

/// The canonical encoding: tag, seq (u64 BE), id (16 bytes), then
/// recorded_at, actor, event_type as u32 BE length + UTF-8, version (u32 BE),
/// payload as u32 BE length + UTF-8, prev_hash (32 bytes).
pub fn canonical_bytes(fields: &HashedFields<'_>) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(128 + fields.payload.len());
    put_text(&mut bytes, ENCODING_TAG);
    bytes.extend_from_slice(&fields.seq.to_be_bytes());
    bytes.extend_from_slice(fields.id.as_bytes());
    put_text(&mut bytes, fields.recorded_at.as_bytes());
    put_text(&mut bytes, fields.actor.as_bytes());
    put_text(&mut bytes, fields.event_type.as_bytes());
    bytes.extend_from_slice(&fields.version.to_be_bytes());
    put_text(&mut bytes, fields.payload.as_bytes());
    bytes.extend_from_slice(fields.prev_hash);
    bytes
}

pub fn event_hash(fields: &HashedFields<'_>) -> [u8; 32] {
    Sha256::digest(canonical_bytes(fields)).into()
}

impl EventRecord {
    pub fn hashed_fields(&self) -> HashedFields<'_> {
        HashedFields {
            seq: self.seq,
            id: self.id,
            recorded_at: &self.recorded_at,
            actor: &self.actor,
            event_type: &self.event_type,
            version: self.version,
            payload: &self.payload,
            prev_hash: &self.prev_hash,
        }
    }
}

/// Why verification stopped.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ChainFault {
    #[error("gap: expected seq {expected}, found seq {found}")]
    Gap { expected: Seq, found: Seq },
    #[error("broken link: prev_hash does not equal the hash of seq {previous}")]
    BrokenLink { previous: Seq },
    #[error("hash mismatch: the stored hash is not the hash of the event's fields")]
    HashMismatch,
    #[error("bad tag: {0}")]
    BadTag(TagError),
    #[error("unknown key: {0}")]
    UnknownKey(TagError),
    #[error("unreadable event: {0}")]
    Unreadable(String),
}

/// The first bad event and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("seq {seq}: {fault}")]
pub struct ChainFailure {
    pub seq: Seq,
    pub fault: ChainFault,
}

/// Walks the chain one event at a time, in seq order.
#[derive(Debug)]
pub struct ChainVerifier<'keys> {
    keys: Option<&'keys KeyRing>,
    head_seq: Seq,
    head_hash: [u8; 32],
}

impl<'keys> ChainVerifier<'keys> {
    /// With `keys`, tags are checked too; without, only seq, links and hashes.
    pub fn new(keys: Option<&'keys KeyRing>) -> Self {
        ChainVerifier { keys, head_seq: 0, head_hash: GENESIS_PREV_HASH }
    }

    /// Continues from a trusted point (an earlier verified head).
    pub fn resume(keys: Option<&'keys KeyRing>, head_seq: Seq, head_hash: [u8; 32]) -> Self {
        ChainVerifier { keys, head_seq, head_hash }
    }

    pub fn head(&self) -> (Seq, [u8; 32]) {
        (self.head_seq, self.head_hash)
    }

    pub fn check(&mut self, event: &EventRecord) -> Result<(), ChainFailure> {
        let fail = |fault| ChainFailure { seq: event.seq, fault };
        let expected = self.head_seq + 1;
        if event.seq != expected {
            // A missing event is reported at the seq where it should have been.
            return Err(ChainFailure { seq: expected, fault: ChainFault::Gap { expected, found: event.seq } });
        }
        if event.prev_hash != self.head_hash {
            return Err(fail(ChainFault::BrokenLink { previous: self.head_seq }));
        }
        if event_hash(&event.hashed_fields()) != event.hash {
            return Err(fail(ChainFault::HashMismatch));
        }
        if let Some(keys) = self.keys {
            match keys.verify_tag(&event.key_id, &event.hash, &event.tag) {
                Ok(()) => {}
                Err(error @ TagError::UnknownKey(_)) => return Err(fail(ChainFault::UnknownKey(error))),
                Err(error @ TagError::BadTag(_)) => return Err(fail(ChainFault::BadTag(error))),
            }
        }
        self.head_seq = event.seq;
        self.head_hash = event.hash;
        Ok(())
    }
}

/// Serde helper: 32 bytes as 64 lower-case hex characters.
pub mod hex_32 {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(bytes: &[u8; 32], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(bytes))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<[u8; 32], D::Error> {
        let text = String::deserialize(deserializer)?;
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&text, &mut bytes).map_err(serde::de::Error::custom)?;
        Ok(bytes)
    }
}

#[cfg(test)]
#[path = "chain_tests.rs"]
mod tests;
