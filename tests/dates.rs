//! Dates in the money rules, through the store on both backends: nothing is
//! dated after the day it is recorded (UTC, read by the appender once per
//! unit), and payments and grants fall within their programme's dates,
//! first and last day included. A refusal leaves no trace.

#[macro_use]
mod common;

use chrono::{Days, NaiveDate, Utc};
use common::*;
use ledger_core::domain::{Command, DomainError};
use ledger_core::store::{Appender, UnitOutcome};

const DONOR: &str = "EU-AMIF";
/// Runs from 2023-01-01 to a month after today.
const CURRENT: &str = "CURRENT";
/// Ran from 2023-01-01 to 2024-12-31.
const ENDED: &str = "ENDED";

/// `command` with its date set to `on`.
fn dated(mut command: Command, on: NaiveDate) -> Command {
    match &mut command {
        Command::CommitFunding { committed_on: day, .. }
        | Command::ReceiveFunding { received_on: day, .. }
        | Command::PayCash { paid_on: day, .. }
        | Command::DeliverInKind { delivered_on: day, .. } => *day = on,
        other => panic!("{other:?} carries no date"),
    }
    command
}

fn registered_from_2023(code: &str, ends_on: NaiveDate) -> Command {
    match register_programme(code, "EUR", &["MA"]) {
        Command::RegisterProgramme { code, name, currency, countries, implementer, .. } => Command::RegisterProgramme {
            code,
            name,
            currency,
            countries,
            implementer,
            starts_on: date("2023-01-01"),
            ends_on,
            approvals_required: None,
        },
        _ => unreachable!("register_programme registers a programme"),
    }
}

/// The four dated money commands of `programme`, each with its date field.
fn dated_commands(programme: &str) -> [(Command, &'static str); 4] {
    let keys = test_keys();
    [
        (commit(programme, DONOR, "10.00"), "committed_on"),
        (receive(programme, DONOR, "10.00"), "received_on"),
        (pay_cash(&keys, (programme, DONOR, "MA"), "MA-2023-0001", "10.00", "EUR"), "paid_on"),
        (grant_in_kind(&keys, (programme, DONOR, "MA"), "MA-2023-0002", "10.00"), "delivered_on"),
    ]
}

async fn funded_programmes(appender: &mut Appender, today: NaiveDate) {
    let a_month_on = today.checked_add_days(Days::new(30)).expect("a date");
    append_all(
        appender,
        vec![
            register_donor(DONOR),
            registered_from_2023(CURRENT, a_month_on),
            registered_from_2023(ENDED, date("2024-12-31")),
            commit(CURRENT, DONOR, "1000.00"),
            commit(ENDED, DONOR, "1000.00"),
            allocate(CURRENT, DONOR, "MA", "1000.00"),
            allocate(ENDED, DONOR, "MA", "1000.00"),
        ],
    )
    .await;
}

/// Appends `command`, which must be refused with `expected`, leaving no trace.
async fn assert_refused(ledger: &ledger_api::config::Ledger, appender: &mut Appender, command: Command, expected: DomainError) {
    let before = snapshot(&ledger.store).await;
    match append_one(appender, command).await {
        UnitOutcome::Refused { index: 0, error } => assert_eq!(error, expected),
        other => panic!("expected {expected:?}, got {other:?}"),
    }
    assert_eq!(snapshot(&ledger.store).await, before, "a refusal leaves no trace");
}

async fn a_money_event_dated_today_is_recorded_and_one_dated_tomorrow_is_refused(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let today = Utc::now().date_naive();
    funded_programmes(&mut appender, today).await;
    for (command, field) in dated_commands(CURRENT) {
        append_ok(&mut appender, dated(command.clone(), today)).await;
        // The day is read when the unit is appended; near midnight it may
        // have turned since `today` was read here.
        let recorded_on = Utc::now().date_naive();
        let tomorrow = recorded_on.checked_add_days(Days::new(1)).expect("a date");
        let expected = DomainError::DatedAfterToday { field, date: tomorrow, today: recorded_on };
        assert_refused(&ledger, &mut appender, dated(command, tomorrow), expected).await;
    }
    assert_projections_equal_a_rebuild(&ledger.store).await;
    assert_chain_valid(&ledger.store, &ledger.keys).await;
}
on_both_backends!(a_money_event_dated_today_is_recorded_and_one_dated_tomorrow_is_refused);

async fn payments_and_grants_fall_within_their_programmes_dates(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    funded_programmes(&mut appender, Utc::now().date_naive()).await;
    for (command, field) in dated_commands(ENDED).into_iter().skip(2) {
        for on in ["2023-01-01", "2024-12-31"] {
            append_ok(&mut appender, dated(command.clone(), date(on))).await;
        }
        for on in ["2022-12-31", "2025-01-01"] {
            let expected = DomainError::OutsideProgrammeDates {
                field,
                date: date(on),
                programme: ENDED.to_string(),
                starts_on: date("2023-01-01"),
                ends_on: date("2024-12-31"),
            };
            assert_refused(&ledger, &mut appender, dated(command.clone(), date(on)), expected).await;
        }
    }
    // Commitments and receipts may come before a programme starts or after it ends.
    for (command, _) in dated_commands(ENDED).into_iter().take(2) {
        for on in ["2022-12-31", "2025-01-01"] {
            append_ok(&mut appender, dated(command.clone(), date(on))).await;
        }
    }
    assert_projections_equal_a_rebuild(&ledger.store).await;
    assert_chain_valid(&ledger.store, &ledger.keys).await;
}
on_both_backends!(payments_and_grants_fall_within_their_programmes_dates);
