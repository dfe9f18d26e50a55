//! What the tests and benches of every crate share: the fixed test keys and
//! scratch PostgreSQL databases (created with a unique name on a server the
//! caller names, dropped afterwards), and the large ledger of the benches.

pub mod large_ledger;

use std::io::Write;
use std::sync::Once;

use ledger_core::keys::{KeyRing, SecretKey};
use sqlx::Connection;

/// The environment variable naming the PostgreSQL server the tests may
/// create databases on.
pub const POSTGRES_URL_VARIABLE: &str = "LEDGER_TEST_POSTGRES_URL";

/// The PostgreSQL server the tests may use, or `None` when
/// `LEDGER_TEST_POSTGRES_URL` is unset. Then each test binary says once, on
/// standard error and past the test harness's capture, that its PostgreSQL
/// half is skipped and only SQLite runs.
pub fn postgres_server_url() -> Option<String> {
    static SAID: Once = Once::new();
    let url = std::env::var(POSTGRES_URL_VARIABLE).ok();
    if url.is_none() {
        SAID.call_once(|| {
            let program = std::env::args().next().unwrap_or_default();
            let name = std::path::Path::new(&program).file_name().map(|name| name.to_string_lossy().into_owned());
            let _ = writeln!(
                std::io::stderr(),
                "postgres tests skipped in {}: {POSTGRES_URL_VARIABLE} is not set; the SQLite half runs alone",
                name.unwrap_or_default()
            );
        });
    }
    url
}

/// The fixed keys of every test.
pub fn test_keys() -> KeyRing {
    KeyRing {
        active_hmac: SecretKey::from_bytes([1; 32]),
        retired_hmac: vec![],
        pseudonym: SecretKey::from_bytes([2; 32]),
        checkpoint: Some(SecretKey::from_bytes([3; 32])),
        retired_checkpoint: Vec::new(),
    }
}

/// Creates a database named `PREFIX_<uuid v7>` on the server of
/// `server_url`; returns its name and its URL.
pub async fn create_postgres_database(server_url: &str, prefix: &str) -> Result<(String, String), sqlx::Error> {
    let name = format!("{prefix}_{}", uuid::Uuid::now_v7().simple());
    let mut server = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(&format!("CREATE DATABASE \"{name}\"")).execute(&mut server).await?;
    server.close().await?;
    let url = with_database_name(server_url, &name);
    Ok((name, url))
}

/// Drops a database made by [`create_postgres_database`], closing any
/// connection still open to it.
pub async fn drop_postgres_database(server_url: &str, name: &str) -> Result<(), sqlx::Error> {
    let mut server = sqlx::PgConnection::connect(server_url).await?;
    sqlx::query(&format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)")).execute(&mut server).await?;
    server.close().await
}

/// [`drop_postgres_database`], best effort, from a `Drop`: on a thread with
/// its own runtime, since `Drop` cannot await and may run inside a runtime.
pub fn drop_postgres_database_blocking(server_url: String, name: String) {
    let dropping = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime starts");
        if let Err(error) = runtime.block_on(drop_postgres_database(&server_url, &name)) {
            eprintln!("could not drop test database {name}: {error}");
        }
    });
    let _ = dropping.join();
}

/// `postgres://user@host:port/db?options` with `db` replaced by `name`.
pub fn with_database_name(server_url: &str, name: &str) -> String {
    let (without_query, query) = match server_url.split_once('?') {
        Some((base, query)) => (base, Some(query)),
        None => (server_url, None),
    };
    let authority_start = without_query.find("://").map_or(0, |index| index + 3);
    let base = match without_query[authority_start..].find('/') {
        Some(slash) => &without_query[..authority_start + slash],
        None => without_query,
    };
    match query {
        Some(query) => format!("{base}/{name}?{query}"),
        None => format!("{base}/{name}"),
    }
}

/// Whether a bench was asked to run `backend` (`sqlite`, `postgres`): the
/// backends named as its arguments, or every one when none is named.
pub fn bench_backend_wanted(backend: &str) -> bool {
    let named: Vec<String> = std::env::args().skip(1).filter(|argument| !argument.starts_with('-')).collect();
    named.is_empty() || named.iter().any(|name| name == backend)
}

/// The resident memory of this process, in MB, from `/proc` (0 where there
/// is none): what the benches report of a server run in their process.
pub fn resident_megabytes() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kilobytes = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0);
    kilobytes / 1_000.0
}

#[cfg(test)]
mod tests {
    use super::with_database_name;

    #[test]
    fn the_database_name_is_replaced_and_the_options_kept() {
        assert_eq!(with_database_name("postgres://u@h:5432/test", "x"), "postgres://u@h:5432/x");
        assert_eq!(with_database_name("postgres://u@h/test?sslmode=disable", "x"), "postgres://u@h/x?sslmode=disable");
        assert_eq!(with_database_name("postgres://u@h", "x"), "postgres://u@h/x");
    }
}
