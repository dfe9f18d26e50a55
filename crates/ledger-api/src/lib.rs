//! The ledger's HTTP API and command line. Only this crate knows HTTP.

pub mod audit;
pub mod cli;
pub mod config;
pub mod cosigning;
pub mod demo;
pub mod http;
pub mod payments;
pub mod reports;
pub mod tiles;
pub mod tokens;
pub mod witness;
