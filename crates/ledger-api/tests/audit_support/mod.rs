//! The harness of the audit tests: a fresh database per test on SQLite and
//! on PostgreSQL, fixed keys, the demo ledger, the real `ledger` binary and
//! the real HTTP server on port 0.
//!
//! The PostgreSQL variants need `LEDGER_TEST_POSTGRES_URL` (say
//! `postgres://postgres@127.0.0.1:5432/test`): each test creates a database
//! `ledger_audit_<uuid>` on that server and drops it afterwards. Without the
//! variable they say so on stderr and pass; with it set, an unreachable
//! server fails them.

// Each test binary uses its own part of the harness.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ledger_api::audit::{self, ExportCheck, ExportReport, TrustedCheckpoint};
use ledger_api::config::Ledger;
use ledger_core::chain::EventRecord;
use ledger_core::checkpoint::SignedCheckpoint;
use ledger_core::keys::KeyRing;
pub use ledger_test_support::{POSTGRES_URL_VARIABLE, test_keys};
use ledger_test_support::{create_postgres_database, drop_postgres_database_blocking, postgres_server_url};

/// Writes a test body once and runs it on both backends, as
/// `NAME::on_sqlite` and `NAME::on_postgres`.
macro_rules! test_on_both_backends {
    ($(#[doc = $doc:literal])* async fn $name:ident($database:ident: TestDatabase) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($database: $crate::audit_support::TestDatabase) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run($crate::audit_support::TestDatabase::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(database) = $crate::audit_support::TestDatabase::postgres().await {
                    run(database).await;
                }
            }
        }
    };
}

/// A fresh, empty database for one test and a scratch directory for its
/// files, both removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    /// The working directory of the test's `ledger` runs and its files.
    pub directory: PathBuf,
    /// The server URL and database name of a PostgreSQL test database.
    postgres: Option<(String, String)>,
}

fn scratch_directory() -> PathBuf {
    let directory = std::env::temp_dir().join(format!("ledger-audit-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory).expect("the temporary directory is writable");
    directory
}

impl TestDatabase {
    /// A new SQLite file `ledger.db` in a directory of its own.
    pub fn sqlite() -> TestDatabase {
        let directory = scratch_directory();
        let url = format!("sqlite://{}", directory.join("ledger.db").display());
        TestDatabase { url, directory, postgres: None }
    }

    /// A new database `ledger_audit_<uuid>` on the server named by
    /// `LEDGER_TEST_POSTGRES_URL`, or `None` (said on stderr) when it is
    /// unset. Panics when it is set and the server cannot be reached.
    pub async fn postgres() -> Option<TestDatabase> {
        let server_url = postgres_server_url()?;
        let (name, url) = create_postgres_database(&server_url, "ledger_audit")
            .await
            .unwrap_or_else(|error| panic!("{POSTGRES_URL_VARIABLE} is set but no test database can be made there: {error}"));
        Some(TestDatabase { url, directory: scratch_directory(), postgres: Some((server_url, name)) })
    }

    pub fn is_postgres(&self) -> bool {
        self.postgres.is_some()
    }

    /// Connects and migrates with the fixed test keys.
    pub async fn open(&self) -> Ledger {
        self.open_with_keys(test_keys()).await
    }

    pub async fn open_with_keys(&self, keys: KeyRing) -> Ledger {
        Ledger::open_with_keys(&self.url, keys).await.unwrap_or_else(|error| panic!("cannot open {}: {error:#}", self.url))
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.directory.join(name)
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.directory);
        if let Some((server_url, name)) = self.postgres.take() {
            drop_postgres_database_blocking(server_url, name);
        }
    }
}

/// A fresh database holding the demo data, appended with the test keys.
/// Removes the triggers that keep events immutable, as an attacker with
/// database rights would.
pub async fn drop_event_triggers(store: &ledger_core::store::Store, database: &TestDatabase) {
    let statements: &[&str] = if database.is_postgres() {
        &["ALTER TABLE events DISABLE TRIGGER USER"]
    } else {
        &["DROP TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete"]
    };
    for statement in statements {
        sqlx::query(statement).execute(store.pool()).await.expect("the attacker may drop the triggers");
    }
}

pub async fn demo_ledger(database: &TestDatabase) -> Ledger {
    let ledger = database.open().await;
    let events = ledger_api::demo::load(&ledger, "demo").await.expect("the demo loads into an empty ledger");
    assert!(events > 40, "the demo holds a realistic history, got {events} events");
    ledger
}

/// The whole chain exported as JSON Lines text.
pub async fn export_text(ledger: &Ledger, after: u64) -> String {
    let mut bytes = Vec::new();
    audit::export_events(&ledger.store, after, &mut bytes, |_| {}).await.expect("the chain exports");
    String::from_utf8(bytes).expect("an export is UTF-8")
}

pub fn split_lines(text: &str) -> Vec<String> {
    text.lines().map(str::to_string).collect()
}

pub fn join_lines(lines: &[String]) -> String {
    lines.iter().map(|line| format!("{line}\n")).collect()
}

pub fn parse_line(line: &str) -> EventRecord {
    serde_json::from_str(line).expect("an export line is an event record")
}

pub fn verify_text(text: &str, check: &ExportCheck) -> ExportReport {
    audit::verify_export(text.as_bytes(), check, |_| {}).expect("reading from memory cannot fail")
}

/// Checks tags with the test keys and, if given, against a checkpoint under the test public key.
pub fn full_check(checkpoint: Option<&SignedCheckpoint>) -> ExportCheck {
    let keys = test_keys();
    ExportCheck {
        hmac_keys: vec![keys.active_hmac.clone()],
        checkpoint: checkpoint.map(|checkpoint| TrustedCheckpoint::Json {
            checkpoint: checkpoint.clone(),
            public_key: audit::public_key(&keys).unwrap(),
        }),
    }
}

// ---------------------------------------------------------------------------
// The real binary.

/// How a `ledger` run gets its keys.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Keys {
    /// From the environment: the fixed test keys.
    Environment,
    /// From the key file beside an embedded database (created on first use).
    KeyFile,
    /// From the environment, the fixed test keys without `LEDGER_CHECKPOINT_KEY`.
    EnvironmentWithoutCheckpointKey,
}

/// Runs `ledger ARGS` in the test's directory on its database.
pub fn run_ledger(database: &TestDatabase, keys: Keys, args: &[&str]) -> Output {
    run_ledger_in(&database.directory, Some(&database.url), keys, args)
}

/// Runs `ledger ARGS` in `directory`; without `database_url`, none is set.
pub fn run_ledger_in(directory: &Path, database_url: Option<&str>, keys: Keys, args: &[&str]) -> Output {
    ledger_command(directory, database_url, keys, args).output().expect("the ledger binary runs")
}

/// `ledger ARGS` in `directory`, with only the database and keys the test
/// gives (nothing inherited from the environment), logging warnings only.
pub fn ledger_command(directory: &Path, database_url: Option<&str>, keys: Keys, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_ledger"));
    command.current_dir(directory).args(args).env("LEDGER_LOG", "warn");
    for variable in [
        "LEDGER_DATABASE_URL",
        "LEDGER_HMAC_KEY",
        "LEDGER_HMAC_RETIRED_KEYS",
        "LEDGER_PSEUDONYM_KEY",
        "LEDGER_CHECKPOINT_KEY",
        "LEDGER_CHECKPOINT_RETIRED_KEYS",
        "LEDGER_KEY_FILE",
        "LEDGER_ORIGIN",
    ] {
        command.env_remove(variable);
    }
    if let Some(url) = database_url {
        command.env("LEDGER_DATABASE_URL", url);
    }
    if matches!(keys, Keys::Environment | Keys::EnvironmentWithoutCheckpointKey) {
        let ring = test_keys();
        command.env("LEDGER_HMAC_KEY", ring.active_hmac.secret_hex()).env("LEDGER_PSEUDONYM_KEY", ring.pseudonym.secret_hex());
    }
    if keys == Keys::Environment {
        let seed = test_keys().checkpoint.expect("the test keys sign checkpoints");
        command.env("LEDGER_CHECKPOINT_KEY", seed.secret_hex());
    }
    command
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Asserts the exit code, showing both streams when it differs.
pub fn assert_exit(output: &Output, code: i32, what: &str) {
    assert_eq!(
        output.status.code(),
        Some(code),
        "{what}: expected exit {code}\nstdout: {}\nstderr: {}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A valid export of `events` small events made directly with the chain
/// functions and the test keys, without a database (for exports longer than
/// the demo's).
pub fn generated_export(events: u64) -> String {
    let keys = test_keys();
    let mut prev_hash = ledger_core::chain::GENESIS_PREV_HASH;
    let mut text = Vec::new();
    for seq in 1..=events {
        let mut event = EventRecord {
            seq,
            id: uuid::Uuid::from_u64_pair(7, seq),
            recorded_at: format!("2026-11-23T18:44:10.{seq:06}Z"),
            actor: "finance-officer@test".to_string(),
            event_type: "donor_registered".to_string(),
            version: 1,
            payload: format!("{{\"code\":\"D{seq}\",\"name\":\"Donor \\\"{seq}\\\"\",\"kind\":\"national_donor\"}}"),
            prev_hash,
            hash: [0; 32],
            key_id: String::new(),
            tag: [0; 32],
        };
        event.hash = ledger_core::chain::event_hash(&event.hashed_fields());
        (event.key_id, event.tag) = keys.tag(&event.hash);
        prev_hash = event.hash;
        audit::write_export_line(&mut text, &event);
    }
    String::from_utf8(text).expect("an export is UTF-8")
}
