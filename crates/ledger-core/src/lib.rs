//! The reintegration assistance ledger's core: the pure domain model, the hash
//! chain, keys, Merkle proofs and the event store.
//!
//! `domain`, `chain`, `merkle`, `merkle_stream`, `checkpoint`, `note` and `witness` are pure and synchronous: they
//! import neither sqlx nor tokio. Only `store` touches the database.

pub mod chain;
pub mod checkpoint;
pub mod domain;
pub mod keys;
pub mod merkle;
pub mod merkle_stream;
pub mod note;
pub mod store;
pub mod witness;
