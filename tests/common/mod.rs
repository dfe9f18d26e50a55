//! The harness shared by the store and projection tests: a fresh database per
//! test on SQLite and on PostgreSQL, fixed keys, command builders and the
//! checks every test repeats.
//!
//! Each test is written once, as `async fn NAME(database: TestDatabase)`
//! followed by `on_both_backends!(NAME);`, and runs as `NAME::on_sqlite` and
//! `NAME::on_postgres`. The PostgreSQL variant needs
//! `LEDGER_TEST_POSTGRES_URL` (say `postgres://postgres@127.0.0.1:5432/test`);
//! without it, it says so on stderr and passes, so a laptop without
//! PostgreSQL runs the SQLite suite. With it set, an unreachable server fails
//! the test.

// Each test binary uses its own part of the harness.
#![allow(dead_code, unused_macros)]

pub mod payment_lists;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::NaiveDate;
use ledger_api::config::Ledger;
use ledger_core::chain::ChainFailure;
use ledger_core::domain::types::{Dimension, Level, PaymentMethod};
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode, Recipient, Seq};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, Backend, IdempotencyClaim, Receipt, Store, UnitOutcome, VerifyReport};
pub use ledger_test_support::{POSTGRES_URL_VARIABLE, test_keys};
use ledger_test_support::{create_postgres_database, drop_postgres_database_blocking, postgres_server_url};
use projections::balances::{self, ProgrammeBalance, TrialBalance};
use projections::rebuild;
use projections::rows::{TABLES, TableChanges};
use rust_decimal::Decimal;
use sqlx::Row;

/// Who appends in these tests.
pub const ACTOR: &str = "finance-officer@test";
/// Events read in one page when a test reads the whole chain.
pub const TEST_READ_EVENTS_MAX: i64 = 100_000;

/// Runs `async fn NAME(database: TestDatabase)` on both backends, as
/// `NAME::on_sqlite` and `NAME::on_postgres` (the module shares the test's
/// name; functions and modules live in different namespaces). The test stays
/// an ordinary function, so rustfmt formats it.
macro_rules! on_both_backends {
    ($test:ident) => {
        mod $test {
            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                super::$test($crate::common::TestDatabase::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(database) = $crate::common::TestDatabase::postgres().await {
                    super::$test(database).await;
                }
            }
        }
    };
}

/// The same, with the test body written inside the macro:
/// `test_on_both_backends! { async fn NAME(database: TestDatabase) { .. } }`.
macro_rules! test_on_both_backends {
    ($(#[doc = $doc:literal])* async fn $name:ident($database:ident: TestDatabase) $body:block) => {
        $(#[doc = $doc])*
        mod $name {
            #[allow(unused_imports)]
            use super::*;

            async fn run($database: $crate::common::TestDatabase) $body

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_sqlite() {
                run($crate::common::TestDatabase::sqlite()).await;
            }

            #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn on_postgres() {
                if let Some(database) = $crate::common::TestDatabase::postgres().await {
                    run(database).await;
                }
            }
        }
    };
}

/// Where a test database lives, to remove it afterwards.
#[derive(Debug)]
enum Location {
    Sqlite { directory: PathBuf },
    Postgres { server_url: String, name: String },
}

/// A fresh, empty database for one test, removed when dropped.
#[derive(Debug)]
pub struct TestDatabase {
    pub url: String,
    pub backend: Backend,
    location: Location,
}

impl TestDatabase {
    /// A new SQLite file in a directory of its own.
    pub fn sqlite() -> TestDatabase {
        let directory = std::env::temp_dir().join(format!("ledger-test-{}", uuid::Uuid::now_v7().simple()));
        std::fs::create_dir_all(&directory).expect("the temporary directory is writable");
        let url = format!("sqlite://{}", directory.join("ledger.db").display());
        TestDatabase { url, backend: Backend::Sqlite, location: Location::Sqlite { directory } }
    }

    /// A new database on the server named by `LEDGER_TEST_POSTGRES_URL`, or
    /// `None` (said once on stderr) when the variable is unset. Panics when
    /// the variable is set and the server cannot be reached.
    pub async fn postgres() -> Option<TestDatabase> {
        let server_url = postgres_server_url()?;
        Some(Self::create_postgres(server_url).await)
    }

    async fn create_postgres(server_url: String) -> TestDatabase {
        let (name, url) = create_postgres_database(&server_url, "ledger_test")
            .await
            .unwrap_or_else(|error| panic!("{POSTGRES_URL_VARIABLE} is set but no test database can be made there: {error}"));
        TestDatabase { url, backend: Backend::Postgres, location: Location::Postgres { server_url, name } }
    }

    /// Another fresh database on the same backend (for property tests that
    /// need one per case).
    pub async fn another(&self) -> TestDatabase {
        match &self.location {
            Location::Sqlite { .. } => TestDatabase::sqlite(),
            Location::Postgres { server_url, .. } => Self::create_postgres(server_url.clone()).await,
        }
    }

    /// Connects and migrates with the fixed test keys.
    pub async fn open(&self) -> Ledger {
        self.open_with_keys(test_keys()).await
    }

    /// Connects (a new pool each call, as another server would) and migrates.
    pub async fn open_with_keys(&self, keys: KeyRing) -> Ledger {
        Ledger::open_with_keys(&self.url, keys).await.unwrap_or_else(|error| panic!("cannot open {}: {error:#}", self.url))
    }

    /// The SQLite database file, for tests that read its raw bytes.
    pub fn sqlite_file(&self) -> Option<PathBuf> {
        match &self.location {
            Location::Sqlite { directory } => Some(directory.join("ledger.db")),
            Location::Postgres { .. } => None,
        }
    }

    pub fn sqlite_directory(&self) -> Option<&Path> {
        match &self.location {
            Location::Sqlite { directory } => Some(directory),
            Location::Postgres { .. } => None,
        }
    }
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        match &self.location {
            Location::Sqlite { directory } => {
                let _ = std::fs::remove_dir_all(directory);
            }
            Location::Postgres { server_url, name } => drop_postgres_database_blocking(server_url.clone(), name.clone()),
        }
    }
}

// ---------------------------------------------------------------------------
// Command builders. Codes in tests are always valid; bad amounts are the
// point of some tests, so amounts are parsed from text as given.

pub fn amount(text: &str) -> Decimal {
    text.parse().unwrap_or_else(|_| panic!("{text:?} is a decimal"))
}

pub fn donor(code: &str) -> DonorCode {
    DonorCode::parse(code).expect("test donor codes are valid")
}

pub fn programme(code: &str) -> ProgrammeCode {
    ProgrammeCode::parse(code).expect("test programme codes are valid")
}

pub fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("test country codes are valid")
}

pub fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("test currencies are valid")
}

pub fn date(text: &str) -> NaiveDate {
    text.parse().expect("test dates are valid")
}

pub fn register_donor(code: &str) -> Command {
    Command::RegisterDonor {
        code: donor(code),
        name: format!("Donor {code}"),
        kind: "eu_instrument".to_string(),
        iati_identifier: None,
    }
}

pub fn register_programme(code: &str, currency_code: &str, countries: &[&str]) -> Command {
    Command::RegisterProgramme {
        code: programme(code),
        name: format!("Programme {code}"),
        currency: currency(currency_code),
        countries: countries.iter().map(|code| country(code)).collect(),
        implementer: "IOM".to_string(),
        starts_on: date("2023-01-01"),
        ends_on: date("2026-12-31"),
        approvals_required: None,
    }
}

pub fn commit(programme_code: &str, donor_code: &str, value: &str) -> Command {
    Command::CommitFunding {
        programme: programme(programme_code),
        donor: donor(donor_code),
        amount: amount(value),
        currency: None,
        reference: format!("{programme_code}/{donor_code}/agreement"),
        committed_on: date("2023-01-10"),
    }
}

pub fn receive(programme_code: &str, donor_code: &str, value: &str) -> Command {
    Command::ReceiveFunding {
        programme: programme(programme_code),
        donor: donor(donor_code),
        amount: amount(value),
        currency: None,
        received_on: date("2023-02-01"),
    }
}

pub fn allocate(programme_code: &str, donor_code: &str, country_code: &str, value: &str) -> Command {
    Command::AllocateBudget {
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        amount: amount(value),
        currency: None,
    }
}

pub fn reallocate(programme_code: &str, donor_code: &str, (from, to): (&str, &str), value: &str) -> Command {
    Command::ReallocateBudget {
        programme: programme(programme_code),
        donor: donor(donor_code),
        from_country: country(from),
        to_country: country(to),
        amount: amount(value),
        currency: None,
        reason: "caseload moved".to_string(),
    }
}

/// A cash payment in the programme's currency (paid amount = charged amount).
pub fn pay_cash(
    keys: &KeyRing,
    (programme_code, donor_code, country_code): (&str, &str, &str),
    case_id: &str,
    value: &str,
    paid_currency: &str,
) -> Command {
    pay_cash_local(keys, (programme_code, donor_code, country_code), case_id, value, (value, paid_currency))
}

/// A cash payment charged `value` and paid `paid` in local currency.
pub fn pay_cash_local(
    keys: &KeyRing,
    (programme_code, donor_code, country_code): (&str, &str, &str),
    case_id: &str,
    value: &str,
    (paid_amount, paid_currency): (&str, &str),
) -> Command {
    Command::PayCash {
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        beneficiary: keys.pseudonymise(case_id).expect("test case ids are valid"),
        amount: amount(value),
        currency: None,
        paid_amount: amount(paid_amount),
        paid_currency: currency(paid_currency),
        method: PaymentMethod::MobileMoney,
        paid_on: date("2023-05-02"),
    }
}

/// An in-kind grant to one returnee.
pub fn grant_in_kind(
    keys: &KeyRing,
    (programme_code, donor_code, country_code): (&str, &str, &str),
    case_id: &str,
    value: &str,
) -> Command {
    Command::DeliverInKind {
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        recipient: Recipient::Beneficiary(keys.pseudonymise(case_id).expect("test case ids are valid")),
        level: Level::Individual,
        dimension: Dimension::Economic,
        category: "business_start_up".to_string(),
        description: "Start-up kit".to_string(),
        amount: amount(value),
        currency: None,
        delivered_on: date("2023-06-01"),
    }
}

/// An in-kind grant to a community.
pub fn grant_to_community(
    (programme_code, donor_code, country_code): (&str, &str, &str),
    community: &str,
    value: &str,
) -> Command {
    Command::DeliverInKind {
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        recipient: Recipient::Community(community.to_string()),
        level: Level::Community,
        dimension: Dimension::Social,
        category: "community_infrastructure".to_string(),
        description: "Classrooms".to_string(),
        amount: amount(value),
        currency: None,
        delivered_on: date("2023-06-01"),
    }
}

pub fn reverse(seq: Seq) -> Command {
    Command::Reverse { seq, reason: "entered by mistake".to_string() }
}

// ---------------------------------------------------------------------------
// Appending.

pub fn unit(commands: Vec<Command>) -> AppendUnit {
    AppendUnit { actor: ACTOR.to_string(), commands, idempotency: None, token_hash: None }
}

pub fn unit_with_key(commands: Vec<Command>, key: &str, request_hash: &str) -> AppendUnit {
    let claim = IdempotencyClaim { key: key.to_string(), request_hash: request_hash.to_string() };
    AppendUnit { actor: ACTOR.to_string(), commands, idempotency: Some(claim), token_hash: None }
}

/// Appends one unit of one command and returns its outcome.
pub async fn append_one(appender: &mut Appender, command: Command) -> UnitOutcome {
    append_unit(appender, unit(vec![command])).await
}

pub async fn append_unit(appender: &mut Appender, unit: AppendUnit) -> UnitOutcome {
    let mut outcomes = appender.append(&[unit]).await.expect("the database accepts the append");
    assert_eq!(outcomes.len(), 1, "one outcome per unit");
    outcomes.remove(0)
}

/// Appends one command that must be accepted; returns its receipt.
pub async fn append_ok(appender: &mut Appender, command: Command) -> Receipt {
    let described = format!("{command:?}");
    match append_one(appender, command).await {
        UnitOutcome::Appended(mut receipts) if receipts.len() == 1 => receipts.remove(0),
        other => panic!("expected {described} to be appended, got {other:?}"),
    }
}

/// Appends commands that must all be accepted, one unit each, in one call.
pub async fn append_all(appender: &mut Appender, commands: Vec<Command>) -> Vec<Receipt> {
    let units: Vec<AppendUnit> = commands.into_iter().map(|command| unit(vec![command])).collect();
    let outcomes = appender.append(&units).await.expect("the database accepts the append");
    outcomes
        .into_iter()
        .zip(&units)
        .map(|(outcome, unit)| match outcome {
            UnitOutcome::Appended(mut receipts) if receipts.len() == 1 => receipts.remove(0),
            other => panic!("expected {:?} to be appended, got {other:?}", unit.commands),
        })
        .collect()
}

/// The standard fixture: two donors, a EUR programme in Morocco, Tunisia and
/// Senegal and an XOF programme in Senegal and Mali, funded and allocated.
pub const FIXTURE_EUR: &str = "MOTUSE";
pub const FIXTURE_XOF: &str = "SAHEL";
pub const FIXTURE_AMIF: &str = "EU-AMIF";
pub const FIXTURE_BMZ: &str = "BMZ";

pub async fn standard_fixture(appender: &mut Appender) -> Vec<Receipt> {
    append_all(
        appender,
        vec![
            register_donor(FIXTURE_AMIF),
            register_donor(FIXTURE_BMZ),
            register_programme(FIXTURE_EUR, "EUR", &["MA", "TN", "SN"]),
            register_programme(FIXTURE_XOF, "XOF", &["SN", "ML"]),
            commit(FIXTURE_EUR, FIXTURE_AMIF, "10000.00"),
            receive(FIXTURE_EUR, FIXTURE_AMIF, "6000.00"),
            commit(FIXTURE_XOF, FIXTURE_BMZ, "5000000"),
            allocate(FIXTURE_EUR, FIXTURE_AMIF, "MA", "4000.00"),
            allocate(FIXTURE_EUR, FIXTURE_AMIF, "TN", "2000.00"),
            allocate(FIXTURE_XOF, FIXTURE_BMZ, "SN", "1000000"),
        ],
    )
    .await
}

// ---------------------------------------------------------------------------
// Reading and checking.

pub async fn verify(store: &Store, keys: &KeyRing) -> VerifyReport {
    store.verify_chain(Some(keys), |_| {}).await.expect("the chain can be read")
}

pub async fn assert_chain_valid(store: &Store, keys: &KeyRing) {
    let report = verify(store, keys).await;
    assert!(report.is_valid(), "the chain must verify: {:?}", report.failure);
    let (head_seq, head_hash) = store.head().await.expect("the head can be read");
    assert_eq!((report.head_seq, report.head_hash), (head_seq, head_hash), "verification reaches the head");
}

/// The first failure verification reports; panics when the chain verifies.
pub async fn first_failure(store: &Store, keys: Option<&KeyRing>) -> ChainFailure {
    let report = store.verify_chain(keys, |_| {}).await.expect("the chain can be read");
    report.failure.unwrap_or_else(|| panic!("verification must fail, but the chain up to seq {} verified", report.head_seq))
}

pub async fn assert_projections_equal_a_rebuild(store: &Store) {
    let report = rebuild::check(store, |_| {}).await.expect("the check runs");
    assert_eq!(report.difference, None, "live projections must equal a rebuild");
}

pub async fn event_count(store: &Store) -> i64 {
    sqlx::query("SELECT COUNT(*) FROM events").fetch_one(store.pool()).await.expect("events can be counted").get(0)
}

/// Every event, in seq order.
pub async fn all_events(store: &Store) -> Vec<ledger_core::chain::EventRecord> {
    store.events_after(0, TEST_READ_EVENTS_MAX).await.expect("events can be read")
}

/// Every observable figure of a ledger, to show that a refused request left
/// no trace.
#[derive(Debug, PartialEq)]
pub struct LedgerSnapshot {
    pub head: (Seq, [u8; 32]),
    pub event_count: i64,
    pub tables: Vec<(&'static str, TableChanges)>,
    pub idempotency: Vec<(String, String, String, String, i64)>,
    pub programme_balances: Vec<ProgrammeBalance>,
    pub trial_balance: TrialBalance,
}

pub async fn snapshot(store: &Store) -> LedgerSnapshot {
    let mut connection = store.pool().acquire().await.expect("a connection");
    let mut tables = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        let rows = projections::db::read_table(&mut connection, table).await.expect("projection tables can be read");
        tables.push((table.name, rows));
    }
    let idempotency = sqlx::query("SELECT actor, key, request_hash, receipts, first_seq FROM idempotency ORDER BY actor, key")
        .fetch_all(&mut *connection)
        .await
        .expect("the idempotency table can be read")
        .iter()
        .map(|row| (row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)))
        .collect();
    let codes: Vec<String> = sqlx::query("SELECT code FROM programmes ORDER BY code")
        .fetch_all(&mut *connection)
        .await
        .expect("programmes can be read")
        .iter()
        .map(|row| row.get(0))
        .collect();
    drop(connection);
    let mut programme_balances = Vec::with_capacity(codes.len());
    for code in &codes {
        programme_balances.push(balances::programme_balance(store, code).await.expect("the programme balance can be read"));
    }
    LedgerSnapshot {
        head: store.head().await.expect("the head can be read"),
        event_count: event_count(store).await,
        tables,
        idempotency,
        programme_balances,
        trial_balance: balances::trial_balance(store).await.expect("the trial balance can be read"),
    }
}

/// Available money of every budget line, in minor units, from the table.
pub async fn budget_line_availability(store: &Store) -> Vec<(String, i64, i64)> {
    sqlx::query(
        "SELECT programme || '/' || donor || '/' || country AS line, allocated, \
         allocated - disbursed_cash - disbursed_in_kind - held AS available FROM budget_lines ORDER BY line",
    )
    .fetch_all(store.pool())
    .await
    .expect("budget lines can be read")
    .iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect()
}

/// A ledger opened on the same database with other keys.
pub fn with_keys(ledger: &Ledger, keys: KeyRing) -> Ledger {
    Ledger {
        store: ledger.store.clone(),
        keys: Arc::new(keys),
        origin: ledger.origin.clone(),
        witness_urls: Vec::new(),
        reporting_org: ledger.reporting_org.clone(),
    }
}
