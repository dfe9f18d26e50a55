//! Faults under the append: a full database, a commit that fails, a lost
//! connection. However the database fails, the writer never acknowledges
//! an event it did not commit, never keeps a connection whose transaction
//! is in doubt, and appends resume once the fault is gone.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use api_support::{TestServer, assert_problem, cash_body, detail};
use common::*;
use ledger_core::domain::Command;
use ledger_core::store::{Appender, Backend, Receipt, StoreError, UnitOutcome};

/// A payment of 1.00 EUR from the fixture's Moroccan budget line.
fn payment(index: usize) -> Command {
    pay_cash(&test_keys(), (FIXTURE_EUR, FIXTURE_AMIF, "MA"), &format!("MA-FAULT-{index}"), "1.00", "EUR")
}

/// Every acknowledged event is stored with the hash it was acknowledged
/// with, and nothing else is.
async fn assert_exactly_these_are_stored(store: &ledger_core::store::Store, acknowledged: &[Receipt]) {
    let stored: Vec<(u64, String)> = all_events(store).await.iter().map(|event| (event.seq, hex::encode(event.hash))).collect();
    let expected: Vec<(u64, String)> = acknowledged.iter().map(|receipt| (receipt.seq, receipt.hash.clone())).collect();
    assert_eq!(stored, expected, "the stored chain is exactly the acknowledged events");
}

test_on_both_backends! {
    /// A commit that fails (here a deferred constraint, set up by the test,
    /// that refuses the transaction at COMMIT) acknowledges nothing, on the
    /// path that takes the chain lock and, on PostgreSQL, on the one-statement
    /// path; the next append starts clean at the next seq.
    async fn a_commit_that_fails_acknowledges_nothing_and_the_next_append_starts_clean(database: TestDatabase) {
        let ledger = database.open().await;
        let mut appender = ledger.appender();
        let mut acknowledged = standard_fixture(&mut appender).await;
        install_commit_fault(&ledger.store, database.backend).await;
        for round in 0..3 {
            set_commit_fault(&ledger.store, true).await;
            let refused = appender.append(&[unit(vec![payment(2 * round)])]).await;
            assert!(refused.is_err(), "round {round}: a failed commit is not acknowledged: {refused:?}");
            assert_exactly_these_are_stored(&ledger.store, &acknowledged).await;
            set_commit_fault(&ledger.store, false).await;
            let receipt = append_ok(&mut appender, payment(2 * round + 1)).await;
            assert_eq!(receipt.seq, acknowledged.last().unwrap().seq + 1, "round {round}: the seq after a failed commit is not used up");
            acknowledged.push(receipt);
            // A second run of the same round goes through the one-statement
            // path on PostgreSQL (the appender's state is current again).
            acknowledged.push(append_ok(&mut appender, payment(100 + round)).await);
        }
        assert_exactly_these_are_stored(&ledger.store, &acknowledged).await;
        // No connection was left inside a transaction: another server takes
        // the chain lock at once.
        let other = database.open().await;
        acknowledged.push(append_ok(&mut other.appender(), payment(1000)).await);
        drop(ledger);
        let reopened = database.open().await;
        assert_exactly_these_are_stored(&reopened.store, &acknowledged).await;
        assert_chain_valid(&reopened.store, &test_keys()).await;
        assert_projections_equal_a_rebuild(&reopened.store).await;
    }
}

/// A test-only trigger that makes every commit that wrote an event fail
/// while `fault_switch` holds a row: a deferred foreign key on SQLite (the
/// transaction stays open after the failed COMMIT), a deferred constraint
/// trigger on PostgreSQL.
async fn install_commit_fault(store: &ledger_core::store::Store, backend: Backend) {
    let statements: &[&str] = match backend {
        Backend::Sqlite => &[
            "CREATE TABLE fault_switch (active INTEGER NOT NULL)",
            "CREATE TABLE fault_parent (id INTEGER PRIMARY KEY)",
            "CREATE TABLE fault_child (parent INTEGER REFERENCES fault_parent (id) DEFERRABLE INITIALLY DEFERRED)",
            "CREATE TRIGGER fault_at_commit AFTER INSERT ON events WHEN EXISTS (SELECT 1 FROM fault_switch) \
             BEGIN INSERT INTO fault_child (parent) VALUES (42); END",
        ],
        Backend::Postgres => &[
            "CREATE TABLE fault_switch (active INTEGER NOT NULL)",
            "CREATE FUNCTION fault_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN \
             IF EXISTS (SELECT 1 FROM fault_switch) THEN RAISE EXCEPTION 'commit refused by the test'; END IF; \
             RETURN NULL; END $$",
            "CREATE CONSTRAINT TRIGGER fault_at_commit AFTER INSERT ON events DEFERRABLE INITIALLY DEFERRED \
             FOR EACH ROW EXECUTE FUNCTION fault_at_commit()",
        ],
    };
    for statement in statements {
        sqlx::query(statement).execute(store.pool()).await.unwrap_or_else(|error| panic!("{statement}: {error}"));
    }
}

async fn set_commit_fault(store: &ledger_core::store::Store, active: bool) {
    let statement = if active { "INSERT INTO fault_switch (active) VALUES (1)" } else { "DELETE FROM fault_switch" };
    sqlx::query(statement).execute(store.pool()).await.expect("the fault switch is set");
}

/// Appends payments one unit at a time until the database refuses one;
/// returns the receipts and the refusal.
async fn append_until_refused(appender: &mut Appender, from: usize) -> (Vec<Receipt>, StoreError) {
    let mut receipts = Vec::new();
    for index in from..from + 2_000 {
        match appender.append(&[unit(vec![payment(index)])]).await {
            Ok(mut outcomes) => match outcomes.remove(0) {
                UnitOutcome::Appended(mut appended) => receipts.push(appended.remove(0)),
                other => panic!("payment {index} was not appended: {other:?}"),
            },
            Err(error) => return (receipts, error),
        }
    }
    panic!("the database never became full")
}

/// A full database (SQLite told it may not grow, as a full disk would)
/// refuses the batch as full; nothing of it is stored, no connection keeps
/// the database locked, and once there is space again appends resume at the
/// next seq, a request resent with its Idempotency-Key is appended once, and
/// everything acknowledged is there after a restart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_database_refuses_the_append_and_appends_resume_once_there_is_space() {
    let database = TestDatabase::sqlite();
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let mut acknowledged = standard_fixture(&mut appender).await;
    let pages: i64 = sqlx::query_scalar("PRAGMA page_count").fetch_one(ledger.store.pool()).await.unwrap();
    ledger.store.limit_sqlite_pages(u32::try_from(pages).unwrap() + 2);
    let (appended, refusal) = append_until_refused(&mut appender, 0).await;
    assert!(matches!(refusal, StoreError::Full(_)), "a full database is reported as full: {refusal:?}");
    acknowledged.extend(appended);
    assert_exactly_these_are_stored(&ledger.store, &acknowledged).await;
    // Still full: refused again, never acknowledged.
    for attempt in 0..3 {
        let again = appender.append(&[unit_with_key(vec![payment(5_000)], "resend-me", "request-5000")]).await;
        assert!(matches!(again, Err(StoreError::Full(_))), "attempt {attempt} on a full database: {again:?}");
    }
    assert_exactly_these_are_stored(&ledger.store, &acknowledged).await;
    // Another process is not locked out by a transaction left open.
    let other = database.open().await;
    let mut lock_taken: i64 = sqlx::query_scalar("SELECT appends FROM chain_lock").fetch_one(other.store.pool()).await.unwrap();
    let mut connection = other.store.pool().acquire().await.unwrap();
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *connection).await.expect("no connection holds the write lock");
    lock_taken += 1;
    sqlx::query("UPDATE chain_lock SET appends = $1").bind(lock_taken).execute(&mut *connection).await.unwrap();
    sqlx::query("COMMIT").execute(&mut *connection).await.unwrap();
    drop(connection);
    // Space again.
    ledger.store.limit_sqlite_pages(0);
    let resent = unit_with_key(vec![payment(5_000)], "resend-me", "request-5000");
    let UnitOutcome::Appended(first) = append_unit(&mut appender, resent.clone()).await else {
        panic!("appended once space is free")
    };
    assert_eq!(first[0].seq, acknowledged.last().unwrap().seq + 1, "no seq was used up by the refused appends");
    acknowledged.extend(first.clone());
    assert_eq!(
        append_unit(&mut appender, resent).await,
        UnitOutcome::Replayed(first),
        "the resent request is not appended twice"
    );
    acknowledged.push(append_ok(&mut appender, payment(5_001)).await);
    drop((appender, ledger, other));
    let reopened = database.open().await;
    assert_exactly_these_are_stored(&reopened.store, &acknowledged).await;
    assert_chain_valid(&reopened.store, &test_keys()).await;
    assert_projections_equal_a_rebuild(&reopened.store).await;
}

/// A killed database session (as a PostgreSQL restart kills every one)
/// makes the appends on it fail as "unreachable", with nothing stored;
/// the pool replaces the dead connections and appends resume.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_postgres_session_is_unreachable_not_an_internal_error_and_appends_resume() {
    let Some(database) = TestDatabase::postgres().await else { return };
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let mut acknowledged = standard_fixture(&mut appender).await;
    acknowledged.push(append_ok(&mut appender, payment(0)).await);
    let killer = database.open().await;
    let killed: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(killer.store.pool())
    .await
    .unwrap();
    assert!(!killed.is_empty() && killed.iter().all(|&ended| ended), "the ledger's sessions were ended");
    let mut refusals = 0;
    let receipt = loop {
        match appender.append(&[unit(vec![payment(1 + refusals)])]).await {
            Ok(mut outcomes) => match outcomes.remove(0) {
                UnitOutcome::Appended(mut receipts) => break receipts.remove(0),
                other => panic!("not appended: {other:?}"),
            },
            Err(error) => {
                assert!(matches!(error, StoreError::Unreachable(_)), "a killed session is reported as unreachable: {error:?}");
                refusals += 1;
                assert!(refusals <= 20, "the pool never replaced its dead connections");
            }
        }
    };
    assert_eq!(receipt.seq, acknowledged.last().unwrap().seq + 1, "nothing was stored by the refused appends");
    acknowledged.push(receipt);
    drop((appender, ledger, killer));
    let reopened = database.open().await;
    assert_exactly_these_are_stored(&reopened.store, &acknowledged).await;
    assert_chain_valid(&reopened.store, &test_keys()).await;
    assert_projections_equal_a_rebuild(&reopened.store).await;
}

/// Over HTTP, a killed database session (as a PostgreSQL restart gives) is
/// a 503 that says the database cannot be reached and that nothing was
/// recorded, never a 500; the same request resent with its Idempotency-Key
/// is then recorded once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_http_a_lost_database_is_a_503_and_the_resent_request_is_recorded_once() {
    let Some(database) = TestDatabase::postgres().await else { return };
    let server = TestServer::start(&database).await;
    server.register_donor("EU-AMIF").await;
    server.register_programme("MOTUSE", "EUR", &["MA"]).await;
    server.commit_and_allocate("MOTUSE", "EU-AMIF", "1000.00", &[("MA", "500.00")]).await;
    let head = server.head_seq().await;
    let killer = database.open().await;
    let ended: Vec<bool> = sqlx::query_scalar(
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()",
    )
    .fetch_all(killer.store.pool())
    .await
    .unwrap();
    assert!(!ended.is_empty(), "the server's sessions were ended");
    let body = cash_body(("MOTUSE", "EU-AMIF", "MA"), "MA-LOST-1", "10.00", ("10.00", "EUR")).to_string();
    let mut refusals = 0;
    let seq = loop {
        let answer = server.post_with_key(&server.finance_officer, "/v1/payments/cash", "lost-connection-1", &body).await;
        if answer.status == 201 {
            break answer.json()["seq"].as_u64().unwrap();
        }
        assert_problem(&answer, 503, "a write on a killed session");
        let detail = detail(&answer);
        assert!(detail.contains("cannot be reached") && detail.contains("nothing was recorded"), "{detail}");
        assert!(!detail.contains("another writer"), "an unreachable database is not blamed on another writer: {detail}");
        refusals += 1;
        assert!(refusals <= 20, "the server never reconnected");
    };
    assert_eq!(seq, head + 1, "the refused attempts used no seq");
    let again = server.post_with_key(&server.finance_officer, "/v1/payments/cash", "lost-connection-1", &body).await;
    assert_eq!(
        (again.status, again.json()["seq"].as_u64()),
        (201, Some(seq)),
        "the resent request is answered, not appended again"
    );
    assert_eq!(server.head_seq().await, seq);
    server.stop().await;
}
