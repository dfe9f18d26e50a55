//! Faults under the append: a full database, a commit that fails, a lost
//! connection. However the database fails, the writer never acknowledges
//! an event it did not commit, never keeps a connection whose transaction
//! is in doubt, and appends resume once the fault is gone.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use api_support::{TestServer, assert_problem, cash_body, detail};
use common::*;
use ledger_api::config::Ledger;
use ledger_core::domain::Command;
use ledger_core::store::{
    ACQUIRE_TIMEOUT_MS, Appender, Backend, COMMIT_IDLE_IN_TRANSACTION_MS, POSTGRES_POOL_CONNECTIONS_MAX, Receipt,
    SETTLE_LOCK_WAIT_MS, SQLITE_POOL_CONNECTIONS_MAX, StoreError, UnitOutcome,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

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

/// At the end of a scenario: exactly the acknowledged events are stored,
/// the chain verifies, and the projections equal a rebuild.
async fn assert_settled(store: &ledger_core::store::Store, acknowledged: &[Receipt]) {
    assert_exactly_these_are_stored(store, acknowledged).await;
    assert_chain_valid(store, &test_keys()).await;
    assert_projections_equal_a_rebuild(store).await;
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
        assert_settled(&reopened.store, &acknowledged).await;
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
    assert_settled(&reopened.store, &acknowledged).await;
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
    assert_settled(&reopened.store, &acknowledged).await;
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

/// A commit whose answer is lost while the commit itself is still on its
/// way to PostgreSQL is settled by what the server then did, never by a
/// guess: a COMMIT that arrives late is waited for and acknowledged; a one
/// statement that arrives after the question was answered writes nothing;
/// a COMMIT that never arrives is rolled back by the server, and the
/// answer is "not written" before the settling wait is over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_still_on_its_way_when_its_answer_is_lost_is_settled_by_what_the_server_did() {
    let Some(database) = TestDatabase::postgres().await else { return };
    let direct = database.open().await;
    let mut acknowledged = standard_fixture(&mut direct.appender()).await;
    let proxy = HoldingProxy::start(&database.url).await;
    let ledger = Ledger::open_with_keys(&proxy.url, test_keys()).await.expect("the ledger opens through the proxy");
    let mut appender = ledger.appender();

    // The path that takes the chain lock (a new appender's first batch):
    // the COMMIT reaches the server 1.5 s after the connection was cut.
    let held = proxy.hold_next(COMMIT_MESSAGE, Some(Duration::from_millis(1_500)));
    let appended = appender.append(&[unit(vec![payment(1)])]).await;
    held.await.expect("the COMMIT was held and then sent on");
    match appended {
        Ok(mut outcomes) => match outcomes.remove(0) {
            UnitOutcome::Appended(receipts) => acknowledged.extend(receipts),
            other => panic!("not appended: {other:?}"),
        },
        Err(error) => panic!("a commit that reached the server late is settled as committed, not {error:?}"),
    }
    assert_exactly_these_are_stored(&direct.store, &acknowledged).await;

    // The one-statement path (the appender's state is current again): the
    // whole statement reaches the server 1.5 s after the cut.
    acknowledged.push(append_ok(&mut appender, payment(2)).await);
    let held = proxy.hold_next(b"WITH locked AS", Some(Duration::from_millis(1_500)));
    let refused = appender.append(&[unit(vec![payment(3)])]).await;
    held.await.expect("the statement was held and then sent on");
    assert!(matches!(refused, Err(StoreError::Unreachable(_))), "the lost statement is reported as not written: {refused:?}");
    // The late statement has run by now: the server answered it.
    assert_exactly_these_are_stored(&direct.store, &acknowledged).await;
    acknowledged.push(append_ok(&mut appender, payment(4)).await);

    // A COMMIT that never arrives: the transaction sits idle on the server,
    // holding the chain lock, until the server rolls it back. Another
    // writer first moves the count on, so that the appender's next batch
    // takes the chain lock and commits with a COMMIT of its own.
    acknowledged.push(append_ok(&mut direct.appender(), payment(5)).await);
    let _held = proxy.hold_next(COMMIT_MESSAGE, None);
    let started = Instant::now();
    let refused = appender.append(&[unit(vec![payment(6)])]).await;
    let waited = started.elapsed();
    assert!(matches!(refused, Err(StoreError::Unreachable(_))), "a COMMIT that never arrived is not written: {refused:?}");
    assert!(
        waited >= Duration::from_millis(COMMIT_IDLE_IN_TRANSACTION_MS) && waited < Duration::from_millis(SETTLE_LOCK_WAIT_MS),
        "the answer waited for the server to end the transaction, and came before the settling wait was over: {waited:?}"
    );
    assert_exactly_these_are_stored(&direct.store, &acknowledged).await;
    acknowledged.push(append_ok(&mut appender, payment(7)).await);

    drop((appender, ledger, proxy));
    assert_settled(&direct.store, &acknowledged).await;
}

/// When the transaction that may have written the batch is still open on
/// the server once the settling wait is over, the outcome is unknown, and
/// said so: here another session holds the chain lock while the one
/// statement of a lost connection waits behind it. When that session ends,
/// the late statement is committed, and the request resent with its
/// Idempotency-Key is answered with that event, not appended again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_whose_transaction_outlasts_the_settling_wait_is_an_unknown_outcome_that_a_resend_settles() {
    let Some(database) = TestDatabase::postgres().await else { return };
    let direct = database.open().await;
    let mut acknowledged = standard_fixture(&mut direct.appender()).await;
    let proxy = HoldingProxy::start(&database.url).await;
    let ledger = Ledger::open_with_keys(&proxy.url, test_keys()).await.expect("the ledger opens through the proxy");
    let mut appender = ledger.appender();
    acknowledged.push(append_ok(&mut appender, payment(1)).await);

    let mut blocker = direct.store.pool().begin().await.unwrap();
    sqlx::query("SELECT appends FROM chain_lock WHERE id = 1 FOR UPDATE").execute(&mut *blocker).await.unwrap();
    let held = proxy.hold_next(b"WITH locked AS", Some(Duration::from_millis(200)));
    let resend = || unit_with_key(vec![payment(2)], "settle-unknown-1", "request-hash-1");
    let unknown = appender.append(&[resend()]).await;
    assert!(matches!(unknown, Err(StoreError::OutcomeUnknown(_))), "the outcome is unknown while the lock is held: {unknown:?}");
    blocker.rollback().await.unwrap();
    held.await.expect("the statement was sent on");

    // The late statement now takes the lock at its count and commits.
    let stored = loop {
        let events = all_events(&direct.store).await;
        if events.len() > acknowledged.len() {
            break events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stored.len(), acknowledged.len() + 1, "the late statement wrote its one event");
    let late = stored.last().unwrap();
    match appender.append(&[resend()]).await.expect("the resend is answered").remove(0) {
        UnitOutcome::Replayed(receipts) => {
            assert_eq!((receipts[0].seq, receipts[0].hash.clone()), (late.seq, hex::encode(late.hash)));
            acknowledged.extend(receipts);
        }
        other => panic!("the resend is answered with the stored event, not {other:?}"),
    }
    drop((appender, ledger, proxy));
    assert_settled(&direct.store, &acknowledged).await;
}

test_on_both_backends! {
    /// A pool whose every connection is in use, waited on until the acquire
    /// timeout, is busy: the database is there, and the caller may retry.
    async fn a_pool_with_every_connection_in_use_is_busy_not_unreachable(database: TestDatabase) {
        let ledger = database.open().await;
        let size = match database.backend {
            Backend::Sqlite => SQLITE_POOL_CONNECTIONS_MAX,
            Backend::Postgres => POSTGRES_POOL_CONNECTIONS_MAX,
        };
        let mut in_use = Vec::new();
        for _ in 0..size {
            in_use.push(ledger.store.acquire().await.expect("the pool has room"));
        }
        let started = Instant::now();
        let refused = ledger.store.acquire().await;
        assert!(matches!(refused, Err(StoreError::Busy(_))), "every connection in use is busy: {refused:?}");
        assert!(started.elapsed() >= Duration::from_millis(ACQUIRE_TIMEOUT_MS), "the acquire waited its timeout first");
        drop(in_use);
        ledger.store.acquire().await.expect("a connection given back is taken again");
    }
}

/// A PostgreSQL server that stops answering (here a proxy that accepts new
/// connections and never answers them) makes a pool with room for another
/// connection time out opening one: that is an unreachable database, not a
/// busy one. Once the server answers again, connections open again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pool_that_cannot_open_a_connection_in_time_is_unreachable_not_busy() {
    let Some(database) = TestDatabase::postgres().await else { return };
    let proxy = HoldingProxy::start(&database.url).await;
    let ledger = Ledger::open_with_keys(&proxy.url, test_keys()).await.expect("the ledger opens through the proxy");
    // Every connection the pool holds is in use, so the next must be opened.
    let mut in_use = Vec::new();
    while ledger.store.pool().num_idle() > 0 || in_use.is_empty() {
        in_use.push(ledger.store.acquire().await.expect("a connection"));
    }
    proxy.silent.store(true, Ordering::SeqCst);
    let refused = ledger.store.acquire().await;
    assert!(matches!(refused, Err(StoreError::Unreachable(_))), "a connection that cannot be opened is unreachable: {refused:?}");
    proxy.silent.store(false, Ordering::SeqCst);
    ledger.store.acquire().await.expect("connections open again once the server answers");
    drop(in_use);
}

/// The COMMIT statement as it crosses the wire unprepared (a Parse message
/// of the unnamed statement).
const COMMIT_MESSAGE: &[u8] = b"\0COMMIT\0";

/// A TCP proxy in front of the test's PostgreSQL server that can, once,
/// lose a statement's answer while the statement is still on its way: the
/// client's connection is cut when it sends bytes holding a marker, and
/// those bytes reach the server later (or never), on a server connection
/// kept open meanwhile.
struct HoldingProxy {
    /// The database's URL with the proxy's address, and the statement cache
    /// off, so that every statement's text crosses the wire.
    url: String,
    armed: Arc<Mutex<Option<Hold>>>,
    /// Set: a new connection is accepted and then never answered, as a
    /// server behind a broken network.
    silent: Arc<AtomicBool>,
    accepting: tokio::task::JoinHandle<()>,
}

struct Hold {
    marker: Vec<u8>,
    /// `None`: never sent on.
    delay: Option<Duration>,
    sent_on: tokio::sync::oneshot::Sender<()>,
}

impl HoldingProxy {
    async fn start(database_url: &str) -> HoldingProxy {
        let options: sqlx::postgres::PgConnectOptions = database_url.parse().expect("the test database URL parses");
        let upstream = format!("{}:{}", options.get_host(), options.get_port());
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let address = listener.local_addr().unwrap();
        let (scheme, rest) = database_url.split_once("://").unwrap();
        let (authority, path) = rest.split_once('/').unwrap();
        let user = authority.rsplit_once('@').map(|(user, _)| format!("{user}@")).unwrap_or_default();
        let separator = if path.contains('?') { '&' } else { '?' };
        let url = format!("{scheme}://{user}{address}/{path}{separator}statement-cache-capacity=0");
        let armed: Arc<Mutex<Option<Hold>>> = Arc::default();
        let silent = Arc::new(AtomicBool::new(false));
        let accepting = tokio::spawn({
            let (armed, silent) = (armed.clone(), silent.clone());
            async move {
                let mut unanswered = Vec::new();
                while let Ok((client, _)) = listener.accept().await {
                    if silent.load(Ordering::SeqCst) {
                        unanswered.push(client);
                        continue;
                    }
                    let server = TcpStream::connect(&upstream).await.expect("the proxy reaches PostgreSQL");
                    tokio::spawn(relay(client, server, armed.clone()));
                }
            }
        });
        HoldingProxy { url, armed, silent, accepting }
    }

    /// Arms the proxy: the next bytes from a client that hold `marker` are
    /// held. The answer is sent when they have been sent on to the server
    /// and the server's answer read.
    fn hold_next(&self, marker: &[u8], delay: Option<Duration>) -> tokio::sync::oneshot::Receiver<()> {
        let (sent_on, sent) = tokio::sync::oneshot::channel();
        *self.armed.lock().unwrap() = Some(Hold { marker: marker.to_vec(), delay, sent_on });
        sent
    }
}

impl Drop for HoldingProxy {
    fn drop(&mut self) {
        self.accepting.abort();
    }
}

fn contains(bytes: &[u8], part: &[u8]) -> bool {
    bytes.windows(part.len()).any(|window| window == part)
}

async fn relay(client: TcpStream, server: TcpStream, armed: Arc<Mutex<Option<Hold>>>) {
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // The server's answers go to the client until the cut, when this hands
    // the server's side back.
    let (cut, mut cut_signal) = tokio::sync::oneshot::channel::<()>();
    let answers = tokio::spawn(async move {
        let mut buffer = vec![0u8; 64 * 1024];
        loop {
            tokio::select! {
                _ = &mut cut_signal => return Some(server_read),
                read = server_read.read(&mut buffer) => match read {
                    Ok(0) | Err(_) => return None,
                    Ok(read) => {
                        if client_write.write_all(&buffer[..read]).await.is_err() {
                            return None;
                        }
                    }
                },
            }
        }
    });
    let mut buffer = vec![0u8; 64 * 1024];
    // The statement's execution, once its Parse message went by: sqlx
    // prepares a statement (Parse, Describe, Sync), reads the answer, then
    // executes it (Bind, Execute, Sync), and only the execution commits.
    let mut execution: Option<Vec<u8>> = None;
    let (mut held, hold) = loop {
        let read = match client_read.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        let chunk = &buffer[..read];
        if let Some(bind) = &execution {
            if contains(chunk, bind) {
                let hold = armed.lock().unwrap().take().expect("armed until the execution is held");
                break (chunk.to_vec(), hold);
            }
        } else if let Some(hold) = armed.lock().unwrap().as_ref() {
            if let Some(at) = chunk.windows(hold.marker.len()).position(|window| window == hold.marker) {
                // The statement's name ends where its text starts; a Bind
                // message names it after the (empty) portal's name.
                let text = at + usize::from(hold.marker.first() == Some(&0));
                let name_at =
                    chunk[..text].windows(7).rposition(|window| window == b"sqlx_s_").expect("sqlx names its statements");
                execution = Some([&b"\0"[..], &chunk[name_at..text]].concat());
            }
        }
        if server_write.write_all(chunk).await.is_err() {
            return;
        }
    };
    // The rest of what the client sent with it (it then waits for the
    // answer), so that the server gets whole messages.
    while let Ok(Ok(read)) = tokio::time::timeout(Duration::from_millis(100), client_read.read(&mut buffer)).await {
        if read == 0 {
            break;
        }
        held.extend_from_slice(&buffer[..read]);
    }
    // Cut the client off: it sees its connection lost, with no answer.
    let _ = cut.send(());
    let Ok(Some(mut server_read)) = answers.await else { return };
    drop(client_read);
    let Some(delay) = hold.delay else {
        // Never sent on: the server connection stays open until the server
        // ends it.
        let _ = tokio::io::copy(&mut server_read, &mut tokio::io::sink()).await;
        let _ = hold.sent_on.send(());
        return;
    };
    tokio::time::sleep(delay).await;
    if server_write.write_all(&held).await.is_ok() {
        // The server's answer, read and dropped, shows the statement ran.
        let mut answer = [0u8; 4096];
        let _ = tokio::time::timeout(Duration::from_secs(30), server_read.read(&mut answer)).await;
    }
    let _ = hold.sent_on.send(());
}
