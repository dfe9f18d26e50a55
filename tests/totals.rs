//! Every total the ledger keeps stays within `TOTAL_MINOR_UNITS_MAX`: a
//! command that would take one past it is refused and writes nothing, one
//! that takes it up to the limit is accepted, and the balances, the trial
//! balance and a rebuild still agree. On SQLite, a money column refuses a
//! value that is not an integer.

#[macro_use]
mod common;

use std::sync::Arc;

use common::*;
use ledger_api::config::Ledger;
use ledger_core::domain::DomainError;
use ledger_core::domain::types::{AMOUNT_MAJOR_UNITS_MAX, TOTAL_MINOR_UNITS_MAX};
use ledger_core::store::{Appender, Backend, Store, UnitOutcome};
use sqlx::Row;

const PROGRAMME: &str = "DINARS";
const DONOR: &str = "EU-EUTF";
/// The largest amount one entry may carry, in TND (three decimals):
/// 10^15 minor units, so a thousand of them reach the limit.
const LARGEST_TND: &str = "1000000000000.000";

/// How many of the largest entries make up the limit.
fn entries_to_the_limit(minor_units_per_entry: i64) -> usize {
    usize::try_from(TOTAL_MINOR_UNITS_MAX / minor_units_per_entry).expect("a few entries")
}

async fn appender_with_programme(ledger: &ledger_api::config::Ledger, currency: &str) -> Appender {
    let mut appender = ledger.appender();
    append_all(&mut appender, vec![register_donor(DONOR), register_programme(PROGRAMME, currency, &["TN"])]).await;
    appender
}

/// Appends `count` copies of `command`, several to a call.
async fn append_copies(appender: &mut Appender, command: ledger_core::domain::Command, count: usize) {
    let mut left = count;
    while left > 0 {
        let now = left.min(250);
        append_all(appender, vec![command.clone(); now]).await;
        left -= now;
    }
}

/// Asserts that `command` is refused for taking a total past the limit,
/// names `total` and the limit in `currency`, and leaves no trace.
async fn assert_refused_past_the_limit(
    ledger: &ledger_api::config::Ledger,
    appender: &mut Appender,
    command: ledger_core::domain::Command,
    (total, limit_text): (&str, &str),
) {
    let before = snapshot(&ledger.store).await;
    match append_one(appender, command).await {
        UnitOutcome::Refused { error: error @ DomainError::TotalPastLimit { .. }, .. } => {
            let message = error.to_string();
            assert!(message.contains(total), "{message:?} names {total:?}");
            assert!(
                message.contains(&format!("past the most the ledger can hold, {limit_text}")),
                "{message:?} names the limit {limit_text:?}"
            );
        }
        other => panic!("expected a refusal past the limit, got {other:?}"),
    }
    assert_eq!(snapshot(&ledger.store).await, before, "a refused command writes nothing");
}

async fn assert_books_agree(ledger: &ledger_api::config::Ledger) {
    let trial = projections::balances::trial_balance(&ledger.store).await.expect("the trial balance");
    assert!(trial.balanced, "the trial balance is zero: {trial:?}");
    assert_projections_equal_a_rebuild(&ledger.store).await;
    assert_chain_valid(&ledger.store, &ledger.keys).await;
}

async fn commitments_stop_at_the_limit(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = appender_with_programme(&ledger, "TND").await;
    let entries = entries_to_the_limit(AMOUNT_MAJOR_UNITS_MAX * 1_000);
    append_copies(&mut appender, commit(PROGRAMME, DONOR, LARGEST_TND), entries - 1).await;
    // One millime under the limit, then the last millime.
    append_ok(&mut appender, commit(PROGRAMME, DONOR, "999999999999.999")).await;
    let limit = ("the committed total of programme DINARS", "1000000000000000.000 TND");
    assert_refused_past_the_limit(&ledger, &mut appender, commit(PROGRAMME, DONOR, "0.002"), limit).await;
    append_ok(&mut appender, commit(PROGRAMME, DONOR, "0.001")).await;
    assert_refused_past_the_limit(&ledger, &mut appender, commit(PROGRAMME, DONOR, "0.001"), limit).await;
    assert_refused_past_the_limit(&ledger, &mut appender, commit(PROGRAMME, DONOR, LARGEST_TND), limit).await;

    let balance = projections::balances::programme_balance(&ledger.store, PROGRAMME).await.expect("the balance");
    assert_eq!(balance.figures.committed, "1000000000000000.000");
    assert_eq!(balance.figures.unallocated, "1000000000000000.000");
    assert_books_agree(&ledger).await;
}
on_both_backends!(commitments_stop_at_the_limit);

async fn receipts_stop_at_the_limit(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = appender_with_programme(&ledger, "TND").await;
    let entries = entries_to_the_limit(AMOUNT_MAJOR_UNITS_MAX * 1_000);
    append_copies(&mut appender, receive(PROGRAMME, DONOR, LARGEST_TND), entries).await;
    let limit = ("the received total of programme DINARS", "1000000000000000.000 TND");
    assert_refused_past_the_limit(&ledger, &mut appender, receive(PROGRAMME, DONOR, "0.001"), limit).await;

    let balance = projections::balances::programme_balance(&ledger.store, PROGRAMME).await.expect("the balance");
    assert_eq!(balance.figures.received, "1000000000000000.000");
    assert_eq!(balance.figures.cash_position, "1000000000000000.000");
    assert_books_agree(&ledger).await;
}
on_both_backends!(receipts_stop_at_the_limit);

/// What cash payments delivered in one local currency is a total too: one
/// euro charged may be paid as the largest amount of dinars of Kuwait.
async fn local_currency_paid_stops_at_the_limit(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = appender_with_programme(&ledger, "EUR").await;
    let entries = entries_to_the_limit(AMOUNT_MAJOR_UNITS_MAX * 1_000);
    let funds = format!("{}.00", entries + 1);
    append_all(&mut appender, vec![commit(PROGRAMME, DONOR, &funds), allocate(PROGRAMME, DONOR, "TN", &funds)]).await;
    let payment = |paid: &str| pay_cash_local(&ledger.keys, (PROGRAMME, DONOR, "TN"), "TN-2024-0001", "1.00", (paid, "KWD"));
    append_copies(&mut appender, payment(LARGEST_TND), entries).await;
    let limit = ("the KWD paid in TN by programme DINARS", "1000000000000000.000 KWD");
    assert_refused_past_the_limit(&ledger, &mut appender, payment("0.001"), limit).await;
    assert_books_agree(&ledger).await;
}
on_both_backends!(local_currency_paid_stops_at_the_limit);

/// A money column of a SQLite table holds integers only: a float, or the
/// float SQLite makes of an integer sum past 64 bits, is refused.
async fn a_money_column_refuses_a_value_that_is_not_an_integer(database: TestDatabase) {
    let ledger = database.open().await;
    if database.backend != Backend::Sqlite {
        // PostgreSQL's BIGINT refuses both already.
        return;
    }
    let mut appender = appender_with_programme(&ledger, "EUR").await;
    append_ok(&mut appender, commit(PROGRAMME, DONOR, "10.00")).await;
    let pool = ledger.store.pool();
    let real = sqlx::query(
        "INSERT INTO funding (programme, donor, currency, committed, received, allocated) VALUES ('OTHER', 'BMZ', 'EUR', 1.5, 0, 0)",
    )
    .execute(pool)
    .await;
    assert!(real.is_err(), "a REAL in a money column is refused");
    let overflow = sqlx::query("UPDATE funding SET committed = committed + 9223372036854775807").execute(pool).await;
    assert!(overflow.is_err(), "an integer sum past 64 bits is refused");
    let in_account_balances =
        sqlx::query("INSERT INTO account_balances (account, currency, balance) VALUES ('bank:OTHER', 'EUR', 2.5)")
            .execute(pool)
            .await;
    assert!(in_account_balances.is_err(), "a REAL balance is refused");
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(a_money_column_refuses_a_value_that_is_not_an_integer);

/// The SQLite migration that makes the tables STRICT.
const STRICT_TABLES_MIGRATION: i64 = 5;

/// Copies every row of the tables `store` has from the SQLite file at
/// `source`, column by column (the source may have more columns).
async fn copy_rows(store: &Store, source: &std::path::Path) {
    let mut connection = store.pool().acquire().await.expect("a connection");
    sqlx::query(&format!("ATTACH DATABASE '{}' AS source", source.display())).execute(&mut *connection).await.unwrap();
    let tables: Vec<String> = sqlx::query_scalar(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name <> '_sqlx_migrations'",
    )
    .fetch_all(&mut *connection)
    .await
    .unwrap();
    for table in tables {
        let columns: Vec<String> = sqlx::query_scalar(&format!("SELECT name FROM pragma_table_info('{table}')"))
            .fetch_all(&mut *connection)
            .await
            .unwrap();
        let columns = columns.join(", ");
        let sql = format!("INSERT OR REPLACE INTO main.{table} ({columns}) SELECT {columns} FROM source.{table}");
        sqlx::query(&sql).execute(&mut *connection).await.unwrap();
    }
    sqlx::query("DETACH DATABASE source").execute(&mut *connection).await.unwrap();
}

/// A SQLite ledger written before its tables were STRICT keeps every
/// event, figure and index through the migration that makes them so, and
/// goes on appending. (SQLite only: PostgreSQL needs no such migration.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sqlite_ledger_keeps_its_events_and_figures_when_its_tables_become_strict() {
    // The ledger as today's code writes it, on today's schema.
    let current = TestDatabase::sqlite();
    let current_store = Store::connect(&current.url).await.expect("the database opens");
    current_store.migrate().await.expect("the migrations run");
    let keys = test_keys();
    let ledger_on = |store: &Store| Ledger {
        store: store.clone(),
        keys: Arc::new(test_keys()),
        origin: ledger_api::config::DEFAULT_ORIGIN.to_string(),
        witness_urls: Vec::new(),
        reporting_org: None,
    };
    let mut appender = ledger_on(&current_store).appender();
    standard_fixture(&mut appender).await;
    let paid =
        append_ok(&mut appender, pay_cash_local(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-1", "350.00", ("3815.00", "MAD")))
            .await;
    append_ok(&mut appender, grant_in_kind(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "TN"), "TN-1", "120.00")).await;
    append_ok(&mut appender, reverse(paid.seq)).await;
    let expected = snapshot(&current_store).await;
    let indexes = |store: Store| async move {
        sqlx::query("SELECT name FROM sqlite_master WHERE type IN ('index', 'trigger', 'view') AND sql IS NOT NULL ORDER BY name")
            .fetch_all(store.pool())
            .await
            .expect("the schema can be read")
            .iter()
            .map(|row| row.get::<String, _>(0))
            .collect::<Vec<_>>()
    };
    let objects_expected = indexes(current_store.clone()).await;

    // The same rows in a ledger whose tables predate STRICT (and every
    // later migration), copied column by column.
    let database = TestDatabase::sqlite();
    let store = Store::connect(&database.url).await.expect("the database opens");
    let mut before_strict = sqlx::migrate!("../migrations/sqlite");
    let earlier: Vec<_> =
        before_strict.migrations.iter().filter(|migration| migration.version < STRICT_TABLES_MIGRATION).cloned().collect();
    before_strict.migrations = earlier.into();
    before_strict.run(store.pool()).await.expect("the earlier migrations run");
    copy_rows(&store, &current.sqlite_file().expect("a SQLite file")).await;
    let ledger = ledger_on(&store);

    store.migrate().await.expect("the STRICT migration and those after it run");
    assert_eq!(snapshot(&store).await, expected, "every event and figure is kept");
    assert_eq!(indexes(store.clone()).await, objects_expected, "every index, trigger and view is kept");
    let strict: Vec<String> = sqlx::query("SELECT name FROM pragma_table_list WHERE strict = 1 ORDER BY name")
        .fetch_all(store.pool())
        .await
        .expect("the table list can be read")
        .iter()
        .map(|row| row.get(0))
        .collect();
    for table in
        ["events", "funding", "budget_lines", "account_balances", "local_paid", "disbursement_splits", "assistance", "journal"]
    {
        assert!(strict.iter().any(|name| name == table), "{table} is STRICT: {strict:?}");
    }
    assert!(
        sqlx::query("UPDATE events SET actor = 'someone else'").execute(store.pool()).await.is_err(),
        "events stay immutable"
    );
    assert_projections_equal_a_rebuild(&store).await;
    assert_chain_valid(&store, &keys).await;
    let mut fresh = ledger.appender();
    append_ok(&mut fresh, pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-2", "100.00", "EUR")).await;
    assert_projections_equal_a_rebuild(&store).await;
}
