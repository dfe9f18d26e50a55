//! Cross-crate tests of the ledger. They live beside this crate's manifest:
//! `store.rs`, `concurrency.rs`, `integrity.rs` and `projections.rs`, each
//! run on SQLite and on PostgreSQL through the harness in `common/mod.rs`.
