//! Concurrent writers: through one group-commit writer, and from two servers
//! (two pools) sharing one database. A budget line is never overspent and
//! the chain never forks.

#[macro_use]
mod common;

use common::*;
use ledger_core::domain::DomainError;
use ledger_core::store::{Backend, Store, StoreError, UnitOutcome, Writer};
use projections::balances;
use sqlx::Row;
use tokio::task::JoinSet;

const LINE: (&str, &str, &str) = ("MOTUSE", "EU-AMIF", "MA");
/// Payments of 100.00 a line of 1,000.00 can take.
const PAYMENTS_FUNDED: usize = 10;
/// Events appended before the race.
const FIXTURE_EVENTS: i64 = 4;

/// A donor, a programme and one budget line of 1,000.00 EUR.
async fn fund_one_line(ledger: &ledger_api::config::Ledger) {
    let mut appender = ledger.appender();
    append_all(
        &mut appender,
        vec![
            register_donor(LINE.1),
            register_programme(LINE.0, "EUR", &["MA", "TN"]),
            commit(LINE.0, LINE.1, "1000.00"),
            allocate(LINE.0, LINE.1, LINE.2, "1000.00"),
        ],
    )
    .await;
}

fn payment(case_number: usize) -> ledger_core::store::AppendUnit {
    unit(vec![pay_cash(&test_keys(), LINE, &format!("MA-RACE-{case_number}"), "100.00", "EUR")])
}

/// How the racing requests ended.
#[derive(Debug, Default)]
struct Tally {
    appended: Vec<u64>,
    refused: usize,
    errors: Vec<String>,
}

impl Tally {
    fn add(&mut self, result: Result<UnitOutcome, StoreError>) {
        match result {
            Ok(UnitOutcome::Appended(receipts)) => self.appended.extend(receipts.iter().map(|receipt| receipt.seq)),
            Ok(UnitOutcome::Refused { index: 0, error: DomainError::OverSpending { .. } }) => self.refused += 1,
            Ok(other) => panic!("a racing payment ended unexpectedly: {other:?}"),
            Err(error) => self.errors.push(error.to_string()),
        }
    }
}

/// The line's available money, the event count, and no fork: every seq and
/// every prev_hash is unique and seqs run 1..=count.
async fn assert_consistent_after_race(store: &Store, tally: &Tally) {
    let appended = tally.appended.len();
    let expected_available = format!("{}.00", 1000 - 100 * appended);
    let balance = balances::programme_balance(store, LINE.0).await.unwrap();
    let morocco = balance.by_country.iter().find(|figures| figures.country == LINE.2).unwrap();
    assert_eq!(morocco.available, expected_available);
    assert_eq!(balance.figures.disbursed.cash, format!("{}.00", 100 * appended));
    for (line, allocated, available) in budget_line_availability(store).await {
        assert!(
            allocated >= 0 && available >= 0,
            "budget line {line} went negative: {allocated} allocated, {available} available"
        );
    }
    let row = sqlx::query(
        "SELECT COUNT(*), COUNT(DISTINCT seq), COUNT(DISTINCT prev_hash), COUNT(DISTINCT hash), MAX(seq) FROM events",
    )
    .fetch_one(store.pool())
    .await
    .unwrap();
    let counts: [i64; 5] = [row.get(0), row.get(1), row.get(2), row.get(3), row.get(4)];
    let events = FIXTURE_EVENTS + appended as i64;
    assert_eq!(counts, [events; 5], "no fork: seqs, prev_hashes and hashes are unique and gapless");
    let mut seqs = tally.appended.clone();
    seqs.sort_unstable();
    seqs.dedup();
    assert_eq!(seqs.len(), appended, "no two payments were given the same seq");
    assert_chain_valid(store, &test_keys()).await;
    assert_projections_equal_a_rebuild(store).await;
}

/// 32 tasks pay 100.00 EUR each from a line of 1,000.00 through one
/// writer: exactly 10 are paid, 22 refused, and nothing is left.
async fn thirty_two_payments_through_one_writer_pay_exactly_what_the_line_holds(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let (writer, writer_task) = Writer::spawn(ledger.appender());
    let mut tasks = JoinSet::new();
    for case_number in 0..32 {
        let writer = writer.clone();
        tasks.spawn(async move { writer.append(payment(case_number)).await });
    }
    drop(writer);
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        tally.add(joined.expect("a payment task does not panic"));
    }
    writer_task.await.expect("the writer stops once every handle is dropped");
    assert!(tally.errors.is_empty(), "{:?}", tally.errors);
    assert_eq!(tally.appended.len(), PAYMENTS_FUNDED);
    assert_eq!(tally.refused, 32 - PAYMENTS_FUNDED);
    assert_consistent_after_race(&ledger.store, &tally).await;
    let balance = balances::programme_balance(&ledger.store, LINE.0).await.unwrap();
    assert_eq!(balance.figures.available, "0.00");
}
on_both_backends!(thirty_two_payments_through_one_writer_pay_exactly_what_the_line_holds);

/// Two servers (two pools, each with a writer and with tasks that own an
/// appender) race on one budget line: it is never overspent and the
/// chain never forks. SQLite may answer a request with a busy error, but
/// what it kept is consistent; PostgreSQL must answer every request.
async fn two_servers_racing_on_one_budget_line_never_overspend_it(database: TestDatabase) {
    let servers = [database.open().await, database.open().await];
    fund_one_line(&servers[0]).await;
    let mut tasks = JoinSet::new();
    let mut writer_tasks = Vec::new();
    for (server_number, server) in servers.iter().enumerate() {
        let (writer, writer_task) = Writer::spawn(server.appender());
        writer_tasks.push(writer_task);
        for task in 0..8 {
            let writer = writer.clone();
            let case_number = server_number * 100 + task;
            tasks.spawn(async move { writer.append(payment(case_number)).await });
        }
        for task in 8..16 {
            let mut appender = server.appender();
            let case_number = server_number * 100 + task;
            tasks.spawn(async move {
                let mut outcomes = appender.append(&[payment(case_number)]).await?;
                Ok(outcomes.remove(0))
            });
        }
    }
    let mut tally = Tally::default();
    while let Some(joined) = tasks.join_next().await {
        tally.add(joined.expect("a payment task does not panic"));
    }
    for writer_task in writer_tasks {
        writer_task.await.expect("the writer stops once every handle is dropped");
    }
    if database.backend == Backend::Postgres || tally.errors.is_empty() {
        assert!(tally.errors.is_empty(), "every request gets an answer: {:?}", tally.errors);
        assert_eq!(tally.appended.len(), PAYMENTS_FUNDED, "exactly what the line holds is paid");
        assert_eq!(tally.refused, 32 - PAYMENTS_FUNDED);
    } else {
        assert!(tally.appended.len() <= PAYMENTS_FUNDED, "never overspent: {tally:?}");
        assert!(tally.refused == 0 || tally.appended.len() == PAYMENTS_FUNDED, "refused only once the line is empty: {tally:?}");
    }
    assert_consistent_after_race(&servers[1].store, &tally).await;
}
on_both_backends!(two_servers_racing_on_one_budget_line_never_overspend_it);

/// An appender that keeps its decision state in memory reloads it when
/// another server moved the chain on, so it cannot spend money twice.
async fn an_appender_sees_what_another_server_appended_meanwhile(database: TestDatabase) {
    let first_server = database.open().await;
    let second_server = database.open().await;
    fund_one_line(&first_server).await;
    let mut first = first_server.appender();
    let mut second = second_server.appender();
    let keys = test_keys();
    append_ok(&mut first, pay_cash(&keys, LINE, "MA-1", "600.00", "EUR")).await;
    let outcome = append_one(&mut second, pay_cash(&keys, LINE, "MA-2", "600.00", "EUR")).await;
    assert!(matches!(outcome, UnitOutcome::Refused { error: DomainError::OverSpending { .. }, .. }), "{outcome:?}");
    append_ok(&mut second, pay_cash(&keys, LINE, "MA-3", "300.00", "EUR")).await;
    let outcome = append_one(&mut first, pay_cash(&keys, LINE, "MA-4", "200.00", "EUR")).await;
    assert!(
        matches!(&outcome, UnitOutcome::Refused { error: DomainError::OverSpending { available, .. }, .. } if *available == amount("100.00")),
        "{outcome:?}"
    );
    let receipt = append_ok(&mut first, pay_cash(&keys, LINE, "MA-5", "100.00", "EUR")).await;
    assert_eq!(receipt.seq, 7);
    assert_chain_valid(&first_server.store, &keys).await;
    assert_projections_equal_a_rebuild(&second_server.store).await;
}
on_both_backends!(an_appender_sees_what_another_server_appended_meanwhile);

/// A refusal is never decided on a state another server has changed: after
/// the second server adds budget, the first pays from it, although by what
/// the first last saw the line was spent.
async fn a_refusal_is_decided_on_the_current_state(database: TestDatabase) {
    let first_server = database.open().await;
    let second_server = database.open().await;
    fund_one_line(&first_server).await;
    let keys = test_keys();
    let mut first = first_server.appender();
    append_ok(&mut first, pay_cash(&keys, LINE, "MA-1", "1000.00", "EUR")).await;
    let mut second = second_server.appender();
    append_all(&mut second, vec![commit(LINE.0, LINE.1, "500.00"), allocate(LINE.0, LINE.1, LINE.2, "500.00")]).await;
    let receipt = append_ok(&mut first, pay_cash(&keys, LINE, "MA-2", "300.00", "EUR")).await;
    assert_eq!(receipt.seq, 8);
    let outcome = append_one(&mut first, pay_cash(&keys, LINE, "MA-3", "300.00", "EUR")).await;
    assert!(
        matches!(&outcome, UnitOutcome::Refused { error: DomainError::OverSpending { available, .. }, .. } if *available == amount("200.00")),
        "{outcome:?}"
    );
    assert_chain_valid(&first_server.store, &keys).await;
    assert_projections_equal_a_rebuild(&second_server.store).await;
}
on_both_backends!(a_refusal_is_decided_on_the_current_state);

/// Balances, the trial balance and the rebuild check read while a writer
/// appends each see one moment of the chain: the figures match the seq they
/// report, never lagging or leading it.
async fn balances_read_during_appends_match_the_seq_they_report(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let (writer, writer_task) = Writer::spawn(ledger.appender());
    let appending = tokio::spawn(async move {
        let mut payments = JoinSet::new();
        for case_number in 0..60 {
            let writer = writer.clone();
            let command = pay_cash(&test_keys(), LINE, &format!("MA-READ-{case_number}"), "1.00", "EUR");
            payments.spawn(async move { writer.append(unit(vec![command])).await });
        }
        while let Some(joined) = payments.join_next().await {
            let outcome = joined.expect("a payment task does not panic").expect("the database accepts the payment");
            assert!(matches!(outcome, UnitOutcome::Appended(_)), "{outcome:?}");
        }
    });
    let mut reads = 0;
    while reads == 0 || !appending.is_finished() {
        let balance = balances::programme_balance(&ledger.store, LINE.0).await.unwrap();
        let paid = balance.as_of_seq - FIXTURE_EVENTS as u64;
        assert_eq!(balance.figures.disbursed.cash, format!("{paid}.00"), "the balance as of seq {}", balance.as_of_seq);
        assert_eq!(balance.beneficiaries_reached, paid as i64, "returnees reached as of seq {}", balance.as_of_seq);
        let trial = balances::trial_balance(&ledger.store).await.unwrap();
        assert!(trial.balanced, "{trial:?}");
        let report = projections::rebuild::check(&ledger.store, |_| {}).await.unwrap();
        assert_eq!(report.difference, None, "the check as of seq {}", report.events);
        reads += 1;
    }
    appending.await.expect("the appending task does not panic");
    writer_task.await.expect("the writer stops once every handle is dropped");
    let balance = balances::programme_balance(&ledger.store, LINE.0).await.unwrap();
    assert_eq!(balance.figures.disbursed.cash, "60.00");
    assert_chain_valid(&ledger.store, &test_keys()).await;
}
on_both_backends!(balances_read_during_appends_match_the_seq_they_report);
