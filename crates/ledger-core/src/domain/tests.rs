//! Given events, when a command, then events or a refusal.
//!
//! `given` decides and applies commands one after the other (any refusal there
//! is a broken test, so it panics); `when` decides one more command against
//! the result. Seqs count from 1 in the order of the `given` commands.

use std::collections::BTreeMap;
use std::str::FromStr;

use chrono::NaiveDate;
use proptest::prelude::*;
use proptest::strategy::ValueTree;
use rust_decimal::Decimal;

use super::error::DomainError;
use super::events::{EventBody, MoneyEntry, PayloadError};
use super::postings::{Posting, postings, sums_to_zero};
use super::state::{BudgetLine, BudgetLineKey, Funding, State};
use super::types::{
    BeneficiaryRef, CountryCode, Currency, Dimension, DonorCode, Level, Money, PaymentMethod, ProgrammeCode, Seq,
};
use super::{Command, Recipient, ReversalTarget, decide};

mod payment_lists;

// ---------------------------------------------------------------------------
// Harness
// ---------------------------------------------------------------------------

/// A ledger built from commands: the folded state and every recorded body,
/// the body of seq `n` at index `n - 1`.
#[derive(Debug)]
struct Ledger {
    state: State,
    bodies: Vec<EventBody>,
}

fn given(commands: &[Command]) -> Ledger {
    let mut ledger = Ledger { state: State::default(), bodies: Vec::new() };
    for command in commands {
        ledger.record(command);
    }
    ledger
}

impl Ledger {
    /// What a reversal of `seq` targets: the recorded body, or nothing.
    fn target(&self, seq: Seq) -> ReversalTarget {
        let index = usize::try_from(seq).ok().and_then(|seq| seq.checked_sub(1));
        match index.and_then(|index| self.bodies.get(index)) {
            Some(body) => ReversalTarget::Found(Box::new(body.clone())),
            None => ReversalTarget::Missing,
        }
    }

    fn when(&self, command: &Command) -> Result<EventBody, DomainError> {
        self.when_on(command, date(TODAY))
    }

    /// Decides `command` as if recorded on `today`.
    fn when_on(&self, command: &Command, today: NaiveDate) -> Result<EventBody, DomainError> {
        let target = command.reversal_seq().map(|seq| self.target(seq));
        decide(&self.state, command, target.as_ref(), today)
    }

    /// Decides and applies `command`; panics if it is refused.
    fn record(&mut self, command: &Command) -> EventBody {
        let body = self.when(command).unwrap_or_else(|error| panic!("given {command:?} was refused: {error}"));
        let seq = self.state.head_seq + 1;
        self.state.apply(seq, &body);
        self.bodies.push(body.clone());
        body
    }

    fn line(&self, country: &str) -> BudgetLine {
        self.line_of(DONOR, country)
    }

    fn line_of(&self, donor: &str, country: &str) -> BudgetLine {
        self.state.line(&BudgetLineKey {
            programme: programme_code(PROGRAMME),
            donor: donor_code(donor),
            country: country_code(country),
        })
    }

    fn funding(&self) -> Funding {
        self.state.funding(&programme_code(PROGRAMME), &donor_code(DONOR))
    }
}

/// The entry of a money event; panics on any other event.
fn money_entry(body: &EventBody) -> &MoneyEntry {
    match body {
        EventBody::Money(entry) => entry,
        other => panic!("expected a money event, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------
// Values and commands
// ---------------------------------------------------------------------------

/// The day the tests' commands are recorded, after every date they carry.
const TODAY: &str = "2026-03-01";
const PROGRAMME: &str = "MOTUSE";
const DONOR: &str = "EU-EUTF";
const OTHER_DONOR: &str = "BMZ";

fn decimal(text: &str) -> Decimal {
    Decimal::from_str(text).unwrap_or_else(|error| panic!("{text:?} is not a decimal: {error}"))
}

fn date(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).unwrap()
}

fn country_code(code: &str) -> CountryCode {
    CountryCode::parse(code).unwrap()
}

fn donor_code(code: &str) -> DonorCode {
    DonorCode::parse(code).unwrap()
}

fn programme_code(code: &str) -> ProgrammeCode {
    ProgrammeCode::parse(code).unwrap()
}

fn beneficiary(digit: u8) -> BeneficiaryRef {
    BeneficiaryRef::from_digest([digit; 32])
}

fn register_donor(code: &str) -> Command {
    Command::RegisterDonor {
        code: donor_code(code),
        name: format!("donor {code}"),
        kind: "eu_instrument".to_string(),
        iati_identifier: None,
    }
}

fn register_programme_in(code: &str, currency_code: &str, countries: &[&str]) -> Command {
    Command::RegisterProgramme {
        code: programme_code(code),
        name: format!("programme {code}"),
        currency: currency(currency_code),
        countries: countries.iter().map(|country| country_code(country)).collect(),
        implementer: "IOM".to_string(),
        starts_on: date("2023-01-01"),
        ends_on: date("2026-12-31"),
        approvals_required: None,
    }
}

/// MoTuSe: Morocco, Tunisia, Senegal, accounted in EUR.
fn register_programme() -> Command {
    register_programme_in(PROGRAMME, "EUR", &["MA", "TN", "SN"])
}

fn commit_to(programme: &str, donor: &str, amount: &str) -> Command {
    Command::CommitFunding {
        programme: programme_code(programme),
        donor: donor_code(donor),
        amount: decimal(amount),
        currency: None,
        reference: "T05-EUTF-NOA-REG-12".to_string(),
        committed_on: date("2026-01-05"),
    }
}

fn commit(amount: &str) -> Command {
    commit_to(PROGRAMME, DONOR, amount)
}

fn receive(amount: &str) -> Command {
    Command::ReceiveFunding {
        programme: programme_code(PROGRAMME),
        donor: donor_code(DONOR),
        amount: decimal(amount),
        currency: None,
        received_on: date("2026-01-10"),
    }
}

fn allocate_from(donor: &str, country: &str, amount: &str) -> Command {
    Command::AllocateBudget {
        programme: programme_code(PROGRAMME),
        donor: donor_code(donor),
        country: country_code(country),
        amount: decimal(amount),
        currency: None,
    }
}

fn allocate(country: &str, amount: &str) -> Command {
    allocate_from(DONOR, country, amount)
}

fn reallocate(from: &str, to: &str, amount: &str) -> Command {
    Command::ReallocateBudget {
        programme: programme_code(PROGRAMME),
        donor: donor_code(DONOR),
        from_country: country_code(from),
        to_country: country_code(to),
        amount: decimal(amount),
        currency: None,
        reason: "more returnees than planned".to_string(),
    }
}

fn pay_cash_in(country: &str, amount: &str, paid_amount: &str, paid_currency: &str) -> Command {
    Command::PayCash {
        programme: programme_code(PROGRAMME),
        donor: donor_code(DONOR),
        country: country_code(country),
        beneficiary: beneficiary(7),
        amount: decimal(amount),
        currency: None,
        paid_amount: decimal(paid_amount),
        paid_currency: currency(paid_currency),
        method: PaymentMethod::MobileMoney,
        paid_on: date("2026-02-01"),
    }
}

/// A cash payment in Morocco, paid in dirhams at about 10.8 MAD per EUR.
fn pay_cash(amount: &str) -> Command {
    let paid = (decimal(amount) * decimal("10.8")).round_dp(2).to_string();
    pay_cash_in("MA", amount, &paid, "MAD")
}

fn deliver_in_kind(recipient: Recipient, level: Level, amount: &str) -> Command {
    Command::DeliverInKind {
        programme: programme_code(PROGRAMME),
        donor: donor_code(DONOR),
        country: country_code("MA"),
        recipient,
        level,
        dimension: Dimension::Economic,
        category: "business start-up kit".to_string(),
        description: "sewing machine and fabric".to_string(),
        amount: decimal(amount),
        currency: None,
        delivered_on: date("2026-02-15"),
    }
}

fn grant_to_returnee(amount: &str) -> Command {
    deliver_in_kind(Recipient::Beneficiary(beneficiary(7)), Level::Individual, amount)
}

fn grant_to_community(amount: &str) -> Command {
    deliver_in_kind(Recipient::Community("Douar Ouled Ali".to_string()), Level::Community, amount)
}

fn reverse(seq: Seq) -> Command {
    Command::Reverse { seq, reason: "entered twice by mistake".to_string() }
}

/// Seq 1 donor, 2 programme.
fn registered() -> Vec<Command> {
    vec![register_donor(DONOR), register_programme()]
}

/// Seq 1 donor, 2 programme, 3 commitment of 1000.00 EUR, 4 allocation of
/// 500.00 EUR to Morocco.
fn funded() -> Vec<Command> {
    vec![register_donor(DONOR), register_programme(), commit("1000"), allocate("MA", "500")]
}

fn with(mut commands: Vec<Command>, more: impl IntoIterator<Item = Command>) -> Vec<Command> {
    commands.extend(more);
    commands
}

/// Asserts an `Inconsistent` refusal naming `field`.
fn assert_inconsistent(result: Result<EventBody, DomainError>, field: &str) -> String {
    match result {
        Err(DomainError::Inconsistent { field: refused, message }) if refused == field => message,
        other => panic!("expected {field} to be refused as inconsistent, got {other:?}"),
    }
}

/// Asserts an `Invalid` refusal naming `field`.
fn assert_invalid(result: Result<EventBody, DomainError>, field: &str) -> String {
    match result {
        Err(DomainError::Invalid { field: refused, message }) if refused == field => message,
        other => panic!("expected an invalid {field}, got {other:?}"),
    }
}

fn over_spending(line: &str, available: &str, requested: &str) -> DomainError {
    DomainError::OverSpending {
        line: line.to_string(),
        available: decimal(available),
        requested: decimal(requested),
        currency: "EUR",
    }
}

#[test]
fn every_refusal_has_the_kind_its_status_is_mapped_from() {
    use super::error::ErrorKind;
    let amount = Decimal::ONE;
    let text = String::new;
    let cases = [
        (DomainError::invalid("name", text()), ErrorKind::Invalid),
        (DomainError::AmountTooLarge { amount, currency: "EUR" }, ErrorKind::MoneyRule),
        (DomainError::inconsistent("ends_on", text()), ErrorKind::Inconsistent),
        (DomainError::UnknownDonor(text()), ErrorKind::Unknown),
        (DomainError::UnknownProgramme(text()), ErrorKind::Unknown),
        (DomainError::UnknownSeq(1), ErrorKind::Unknown),
        (DomainError::DonorExists(text()), ErrorKind::Conflict),
        (DomainError::ProgrammeExists(text()), ErrorKind::Conflict),
        (DomainError::NotPositive { amount, currency: "EUR" }, ErrorKind::MoneyRule),
        (DomainError::TooManyDecimals { amount, currency: "EUR", minor_units: 2 }, ErrorKind::MoneyRule),
        (DomainError::CountryNotInProgramme { programme: text(), country: text() }, ErrorKind::MoneyRule),
        (DomainError::CurrencyMismatch { programme: text(), expected: "EUR", given: "USD" }, ErrorKind::MoneyRule),
        (
            DomainError::OverAllocation {
                programme: text(),
                donor: text(),
                available: amount,
                requested: amount,
                currency: "EUR",
            },
            ErrorKind::MoneyRule,
        ),
        (DomainError::OverSpending { line: text(), available: amount, requested: amount, currency: "EUR" }, ErrorKind::MoneyRule),
        (
            DomainError::ReversalWouldGoNegative { seq: 1, what: text(), available: amount, requested: amount, currency: "EUR" },
            ErrorKind::MoneyRule,
        ),
        (DomainError::NotReversible { seq: 1, event_type: text() }, ErrorKind::MoneyRule),
        (DomainError::AlreadyReversed { seq: 1 }, ErrorKind::MoneyRule),
        (DomainError::TotalPastLimit { total: text(), requested: amount, limit: amount, currency: "EUR" }, ErrorKind::MoneyRule),
    ];
    for (error, kind) in cases {
        assert_eq!(error.kind(), kind, "{error:?}");
        let message = error.to_string();
        assert!(!message.ends_with('.'), "{message:?} ends with a period");
    }
}

// ---------------------------------------------------------------------------
// Dates
// ---------------------------------------------------------------------------

/// `command` with its date (committed_on, received_on, paid_on or
/// delivered_on) set to `on`.
fn dated(mut command: Command, on: &str) -> Command {
    match &mut command {
        Command::CommitFunding { committed_on: day, .. }
        | Command::ReceiveFunding { received_on: day, .. }
        | Command::PayCash { paid_on: day, .. }
        | Command::DeliverInKind { delivered_on: day, .. } => *day = date(on),
        other => panic!("{other:?} carries no date"),
    }
    command
}

/// Every dated money command, each with the field its date is in.
fn dated_commands() -> [(Command, &'static str); 4] {
    [
        (commit("10"), "committed_on"),
        (receive("10"), "received_on"),
        (pay_cash("10"), "paid_on"),
        (grant_to_returnee("10"), "delivered_on"),
    ]
}

#[test]
fn a_money_event_dated_today_is_accepted_and_one_dated_tomorrow_is_refused() {
    let ledger = given(&funded());
    for (command, field) in dated_commands() {
        assert!(ledger.when_on(&dated(command.clone(), "2026-06-30"), date("2026-06-30")).is_ok(), "{field} today");
        let refused = ledger.when_on(&dated(command, "2026-07-01"), date("2026-06-30"));
        assert_eq!(refused, Err(DomainError::DatedAfterToday { field, date: date("2026-07-01"), today: date("2026-06-30") }));
    }
    let message = DomainError::DatedAfterToday { field: "paid_on", date: date("2026-07-01"), today: date("2026-06-30") };
    assert_eq!(
        message.to_string(),
        "paid_on 2026-07-01 is after today, 2026-06-30 (UTC): nothing may be dated after the day it is recorded"
    );
}

#[test]
fn a_payment_or_grant_on_the_programmes_first_or_last_day_is_accepted() {
    let ledger = given(&funded());
    for (command, field) in dated_commands().into_iter().skip(2) {
        for on in ["2023-01-01", "2026-12-31"] {
            assert!(ledger.when_on(&dated(command.clone(), on), date("2027-01-15")).is_ok(), "{field} {on}");
        }
    }
}

#[test]
fn a_payment_or_grant_dated_before_the_programme_starts_or_after_it_ends_is_refused() {
    let ledger = given(&funded());
    for (command, field) in dated_commands().into_iter().skip(2) {
        for on in ["2022-12-31", "2027-01-01"] {
            let refused = ledger.when_on(&dated(command.clone(), on), date("2027-01-15"));
            assert_eq!(
                refused,
                Err(DomainError::OutsideProgrammeDates {
                    field,
                    date: date(on),
                    programme: PROGRAMME.to_string(),
                    starts_on: date("2023-01-01"),
                    ends_on: date("2026-12-31"),
                }),
                "{field} {on}"
            );
        }
    }
    let refused = ledger.when_on(&dated(pay_cash("10"), "2027-01-01"), date("2027-01-15")).unwrap_err();
    assert_eq!(
        refused.to_string(),
        "paid_on 2027-01-01 is outside programme MOTUSE, which runs from 2023-01-01 to 2026-12-31: date it within the programme"
    );
}

#[test]
fn a_commitment_or_receipt_may_come_before_the_programme_starts_or_after_it_ends() {
    let ledger = given(&funded());
    for (command, field) in dated_commands().into_iter().take(2) {
        for on in ["2022-06-30", "2027-01-01"] {
            assert!(ledger.when_on(&dated(command.clone(), on), date("2027-01-15")).is_ok(), "{field} {on}");
        }
    }
}

#[test]
fn an_allocation_reallocation_or_reversal_carries_no_date_to_check() {
    let mut ledger = given(&with(funded(), [pay_cash("10")]));
    let long_after = date("2040-01-01");
    assert!(ledger.when_on(&allocate("TN", "100"), long_after).is_ok());
    assert!(ledger.when_on(&reallocate("MA", "TN", "100"), long_after).is_ok());
    ledger.record(&reverse(5));
    assert!(ledger.state.reversed.contains(&5));
    // A reversal is decided whatever day it is, even before the reversed payment's date.
    let before = given(&with(funded(), [pay_cash("10")]));
    assert!(before.when_on(&reverse(5), date("2026-01-01")).is_ok());
}

// ---------------------------------------------------------------------------
// Totals
// ---------------------------------------------------------------------------

/// A TND programme (three decimals) committed one millime under the
/// ledger's limit: the largest entry is 10^15 minor units.
fn committed_just_under_the_limit() -> Ledger {
    let mut ledger = given(&[register_donor(DONOR), register_programme_in("DINARS", "TND", &["TN"])]);
    for _ in 0..999 {
        ledger.record(&commit_to("DINARS", DONOR, "1000000000000.000"));
    }
    ledger.record(&commit_to("DINARS", DONOR, "999999999999.999"));
    ledger
}

#[test]
fn a_commitment_taking_the_programme_total_past_the_limit_is_refused_naming_the_limit() {
    let ledger = committed_just_under_the_limit();
    let refused = ledger.when(&commit_to("DINARS", DONOR, "0.002"));
    let expected = DomainError::TotalPastLimit {
        total: "the committed total of programme DINARS".to_string(),
        requested: decimal("0.002"),
        limit: decimal("1000000000000000.000"),
        currency: "TND",
    };
    assert_eq!(refused, Err(expected.clone()));
    assert_eq!(
        expected.to_string(),
        "0.002 TND would take the committed total of programme DINARS past the most the ledger can hold, 1000000000000000.000 TND"
    );
}

#[test]
fn a_commitment_taking_the_programme_total_up_to_the_limit_is_accepted() {
    let mut ledger = committed_just_under_the_limit();
    ledger.record(&commit_to("DINARS", DONOR, "0.001"));
    let totals = ledger.state.programme_totals[&programme_code("DINARS")];
    assert_eq!(totals.committed, super::types::TOTAL_MINOR_UNITS_MAX);
    assert!(matches!(ledger.when(&commit_to("DINARS", DONOR, "0.001")), Err(DomainError::TotalPastLimit { .. })));
}

#[test]
fn a_programme_total_sums_every_donor() {
    let mut ledger = committed_just_under_the_limit();
    ledger.record(&register_donor(OTHER_DONOR));
    let refused = ledger.when(&commit_to("DINARS", OTHER_DONOR, "0.002"));
    assert!(
        matches!(&refused, Err(DomainError::TotalPastLimit { total, .. }) if total == "the committed total of programme DINARS"),
        "{refused:?}"
    );
}

#[test]
fn totals_loaded_from_funding_and_budget_lines_equal_the_folded_ones() {
    let mut ledger = given(&with(funded(), [pay_cash("100"), grant_to_returnee("50"), receive("300")]));
    let folded = ledger.state.programme_totals.clone();
    ledger.state.programme_totals.clear();
    ledger.state.total_programmes().unwrap();
    assert_eq!(ledger.state.programme_totals, folded);
    let totals = folded[&programme_code(PROGRAMME)];
    assert_eq!((totals.committed, totals.received, totals.allocated, totals.disbursed), (100_000, 30_000, 50_000, 15_000));
}

// ---------------------------------------------------------------------------
// Registrations
// ---------------------------------------------------------------------------

#[test]
fn a_registered_donor_is_recorded_with_its_name_and_kind() {
    let ledger = given(&[]);
    let body = ledger.when(&register_donor("EU-EUTF")).unwrap();
    let EventBody::DonorRegistered(event) = body else { panic!("expected a donor registration") };
    assert_eq!(event.code.as_str(), "EU-EUTF");
    assert_eq!(event.name, "donor EU-EUTF");
    assert_eq!(event.kind, "eu_instrument");
}

#[test]
fn registering_a_donor_twice_is_refused() {
    let ledger = given(&[register_donor(DONOR)]);
    assert_eq!(ledger.when(&register_donor(DONOR)), Err(DomainError::DonorExists(DONOR.to_string())));
    assert_eq!(ledger.when(&register_donor(OTHER_DONOR)).map(|body| body.event_type()), Ok("donor_registered"));
}

#[test]
fn registering_a_programme_twice_is_refused() {
    let ledger = given(&registered());
    let again = register_programme_in(PROGRAMME, "USD", &["NG"]);
    assert_eq!(ledger.when(&again), Err(DomainError::ProgrammeExists(PROGRAMME.to_string())));
}

#[test]
fn a_programme_with_no_countries_is_refused() {
    let ledger = given(&[]);
    let message = assert_invalid(ledger.when(&register_programme_in(PROGRAMME, "EUR", &[])), "countries");
    assert!(message.contains("1 to 64"), "{message}");
}

#[test]
fn a_programme_with_more_countries_than_the_limit_is_refused() {
    let countries: Vec<&str> = isocountry::CountryCode::iter().take(65).map(|country| country.alpha2()).collect();
    let ledger = given(&[]);
    assert_invalid(ledger.when(&register_programme_in(PROGRAMME, "EUR", &countries)), "countries");
    assert!(ledger.when(&register_programme_in(PROGRAMME, "EUR", &countries[..64])).is_ok());
}

#[test]
fn a_programme_listing_a_country_twice_is_refused() {
    let ledger = given(&[]);
    let message = assert_inconsistent(ledger.when(&register_programme_in(PROGRAMME, "EUR", &["MA", "TN", "MA"])), "countries");
    assert!(message.contains("MA is listed twice"), "{message}");
}

#[test]
fn a_programme_listing_a_country_once_in_alpha_2_and_once_in_alpha_3_is_refused() {
    let ledger = given(&[]);
    let message = assert_inconsistent(ledger.when(&register_programme_in(PROGRAMME, "EUR", &["TN", "TUN"])), "countries");
    assert!(message.contains("TN is listed twice"), "{message}");
}

#[test]
fn a_programme_ending_before_it_starts_is_refused() {
    let ledger = given(&[]);
    let Command::RegisterProgramme { code, name, currency, countries, implementer, .. } = register_programme() else {
        unreachable!()
    };
    let dated = |starts_on: &str, ends_on: &str| Command::RegisterProgramme {
        code: code.clone(),
        name: name.clone(),
        currency,
        countries: countries.clone(),
        implementer: implementer.clone(),
        starts_on: date(starts_on),
        ends_on: date(ends_on),
        approvals_required: None,
    };
    assert_inconsistent(ledger.when(&dated("2024-01-01", "2023-12-31")), "ends_on");
    assert!(ledger.when(&dated("2024-01-01", "2024-01-01")).is_ok(), "a one-day programme is allowed");
}

#[test]
fn a_donor_with_an_empty_name_or_kind_is_refused() {
    let ledger = given(&[]);
    let unnamed = Command::RegisterDonor {
        code: donor_code(DONOR),
        name: "   ".to_string(),
        kind: "eu_instrument".to_string(),
        iati_identifier: None,
    };
    assert_invalid(ledger.when(&unnamed), "name");
    let kindless =
        Command::RegisterDonor { code: donor_code(DONOR), name: "EUTF".to_string(), kind: String::new(), iati_identifier: None };
    assert_invalid(ledger.when(&kindless), "kind");
}

#[test]
fn a_programme_with_an_empty_name_or_implementer_is_refused() {
    let ledger = given(&[]);
    let Command::RegisterProgramme { code, currency, countries, starts_on, ends_on, .. } = register_programme() else {
        unreachable!()
    };
    let named = |name: &str, implementer: &str| Command::RegisterProgramme {
        code: code.clone(),
        name: name.to_string(),
        currency,
        countries: countries.clone(),
        implementer: implementer.to_string(),
        starts_on,
        ends_on,
        approvals_required: None,
    };
    assert_invalid(ledger.when(&named("", "IOM")), "name");
    assert_invalid(ledger.when(&named("MoTuSe", " \t ")), "implementer");
}

#[test]
fn free_text_is_taken_as_sent_and_refused_when_spaced_too_long_or_holding_control_characters() {
    let ledger = given(&[]);
    let donor = |name: String| Command::RegisterDonor {
        code: donor_code(DONOR),
        name,
        kind: "national".to_string(),
        iati_identifier: None,
    };
    let EventBody::DonorRegistered(event) = ledger.when(&donor("Federal Ministry BMZ".to_string())).unwrap() else {
        unreachable!()
    };
    assert_eq!(event.name, "Federal Ministry BMZ");
    for spaced in ["  BMZ  ", " BMZ", "BMZ ", "\u{a0}BMZ", "BMZ\u{3000}", "\u{feff}BMZ"] {
        let message = assert_invalid(ledger.when(&donor(spaced.to_string())), "name");
        assert_eq!(message, "must not begin or end with a space", "{spaced:?}");
    }
    assert!(ledger.when(&donor("x".repeat(500))).is_ok());
    let message = assert_invalid(ledger.when(&donor("x".repeat(501))), "name");
    assert!(message.contains("500"), "{message}");
    assert_invalid(ledger.when(&donor("bell\u{7}".to_string())), "name");
    assert_invalid(ledger.when(&donor("tab\there".to_string())), "name");
}

#[test]
fn single_line_text_refuses_line_breaks_naming_the_rule() {
    let ledger = given(&[]);
    let donor = |name: &str| Command::RegisterDonor {
        code: donor_code(DONOR),
        name: name.to_string(),
        kind: "national".to_string(),
        iati_identifier: None,
    };
    for name in ["two\nlines", "two\r\nlines", "two\u{2028}lines", "two\u{2029}lines", "two\u{85}lines"] {
        let message = assert_invalid(ledger.when(&donor(name)), "name");
        assert_eq!(message, "must be one line: remove the line breaks", "{name:?}");
    }
}

#[test]
fn free_text_refuses_bidirectional_overrides_and_isolates() {
    let mut ledger = given(&funded());
    ledger.record(&pay_cash("10"));
    for control in super::types::BIDI_CONTROLS {
        let text = format!("paid twice{control} by mistake");
        let reversal = Command::Reverse { seq: 5, reason: text.clone() };
        let message = assert_invalid(ledger.when(&reversal), "reason");
        assert!(message.contains("U+202A to U+202E, U+2066 to U+2069"), "{message}");
        let mut grant = grant_to_returnee("1");
        if let Command::DeliverInKind { description, .. } = &mut grant {
            *description = text.clone();
        }
        assert_invalid(ledger.when(&grant), "description");
    }
    let arabic = Command::Reverse { seq: 5, reason: "دفع مرتين بالخطأ".to_string() };
    assert!(ledger.when(&arabic).is_ok(), "right-to-left text without controls is accepted");
}

#[test]
fn codes_are_taken_exactly_as_sent() {
    assert_eq!(DonorCode::parse("EU-EUTF").unwrap().as_str(), "EU-EUTF");
    assert_eq!(ProgrammeCode::parse("RADA_2").unwrap().as_str(), "RADA_2");
    assert_eq!(ProgrammeCode::parse("2").unwrap().as_str(), "2");
    for text in [" eu-eutf ", "motuse", "Motuse", " MOTUSE", "MOTUSE "] {
        let refused = ProgrammeCode::parse(text).expect_err(text);
        assert!(refused.to_string().contains("upper-case"), "{refused}");
    }
}

#[test]
fn a_code_that_is_empty_too_long_or_holds_other_characters_is_refused() {
    let too_long = "A".repeat(33);
    for text in ["", "  ", "-EUTF", "EU EUTF", "EU.EUTF", "ÉU", too_long.as_str()] {
        assert!(
            matches!(DonorCode::parse(text), Err(DomainError::Invalid { field: "donor", .. })),
            "donor code {text:?} was accepted"
        );
        assert!(
            matches!(ProgrammeCode::parse(text), Err(DomainError::Invalid { field: "programme", .. })),
            "programme code {text:?} was accepted"
        );
    }
    assert!(DonorCode::parse(&"A".repeat(32)).is_ok());
}

#[test]
fn an_alpha_3_country_becomes_alpha_2() {
    assert_eq!(country_code("MAR"), country_code("MA"));
    assert_eq!(country_code("TUN").as_str(), "TN");
    assert_eq!(country_code("SEN").to_string(), "SN");
    let ledger = given(&with(registered(), [commit("1000")]));
    let body = ledger.when(&allocate("SEN", "10")).unwrap();
    assert!(body.payload_json().contains(r#""country":"SN""#), "{}", body.payload_json());
}

#[test]
fn a_country_code_that_is_not_iso_3166_is_refused() {
    for text in ["", "XX", "M", "MOROCCO", "ZZZ", "ma", "Ma", " MA", "MA ", "mar"] {
        assert!(
            matches!(CountryCode::parse(text), Err(DomainError::Invalid { field: "country", .. })),
            "country {text:?} was accepted"
        );
    }
}

#[test]
fn currency_codes_are_taken_exactly_as_sent_and_a_bad_one_is_refused() {
    assert_eq!(currency("EUR").code(), "EUR");
    assert_eq!(currency("TND").minor_units(), 3);
    assert_eq!(currency("XOF").minor_units(), 0);
    for text in ["", "EURO", "ZZZ", "€", "eur", " TND ", "Eur"] {
        assert!(
            matches!(Currency::parse(text), Err(DomainError::Invalid { field: "currency", .. })),
            "currency {text:?} was accepted"
        );
    }
    let message = match Currency::parse("XAU") {
        Err(DomainError::Invalid { field: "currency", message }) => message,
        other => panic!("gold is not a money currency, got {other:?}"),
    };
    assert!(message.contains("no minor units"), "{message}");
}

#[test]
fn a_beneficiary_ref_must_be_64_lower_case_hex_characters() {
    let valid = "ab".repeat(32);
    assert_eq!(BeneficiaryRef::parse(&valid).unwrap().as_str(), valid);
    for text in ["AB".repeat(32), "ab".repeat(31), "zz".repeat(32), String::new()] {
        assert!(
            matches!(BeneficiaryRef::parse(&text), Err(DomainError::Invalid { field: "beneficiary_ref", .. })),
            "{text:?} was accepted"
        );
    }
}

#[test]
fn a_commitment_to_an_unknown_programme_or_from_an_unknown_donor_is_refused() {
    let ledger = given(&registered());
    assert_eq!(ledger.when(&commit_to("RADA", DONOR, "10")), Err(DomainError::UnknownProgramme("RADA".to_string())));
    assert_eq!(ledger.when(&commit_to(PROGRAMME, "BMZ", "10")), Err(DomainError::UnknownDonor("BMZ".to_string())));
}

#[test]
fn every_money_command_naming_an_unknown_donor_is_refused() {
    let ledger = given(&[register_donor(OTHER_DONOR), register_programme()]);
    for command in money_commands() {
        assert_eq!(ledger.when(&command), Err(DomainError::UnknownDonor(DONOR.to_string())), "{command:?}");
    }
}

#[test]
fn every_money_command_naming_an_unknown_programme_is_refused() {
    let ledger = given(&[register_donor(DONOR)]);
    for command in money_commands() {
        assert_eq!(ledger.when(&command), Err(DomainError::UnknownProgramme(PROGRAMME.to_string())), "{command:?}");
    }
}

/// One command of every money kind against MOTUSE / EU-EUTF / MA.
fn money_commands() -> Vec<Command> {
    vec![
        commit("10"),
        receive("10"),
        allocate("MA", "10"),
        reallocate("MA", "TN", "10"),
        pay_cash("10"),
        grant_to_returnee("10"),
        grant_to_community("10"),
    ]
}

/// `command` with its amount stated in `code`.
fn stating(mut command: Command, code: &str) -> Command {
    match &mut command {
        Command::CommitFunding { currency: stated, .. }
        | Command::ReceiveFunding { currency: stated, .. }
        | Command::AllocateBudget { currency: stated, .. }
        | Command::ReallocateBudget { currency: stated, .. }
        | Command::PayCash { currency: stated, .. }
        | Command::DeliverInKind { currency: stated, .. } => *stated = Some(currency(code)),
        other => panic!("{other:?} states no amount"),
    }
    command
}

#[test]
fn a_money_command_stated_in_another_currency_than_the_programme_s_is_refused() {
    let ledger = given(&with(funded(), [allocate("MA", "100")]));
    let mismatch =
        |given: &'static str| DomainError::CurrencyMismatch { programme: PROGRAMME.to_string(), expected: "EUR", given };
    for command in money_commands() {
        assert_eq!(ledger.when(&stating(command.clone(), "USD")), Err(mismatch("USD")), "{command:?}");
        assert_eq!(ledger.when(&stating(command.clone(), "XOF")), Err(mismatch("XOF")), "{command:?}");
        assert_eq!(ledger.when(&stating(command.clone(), "EUR")), ledger.when(&command), "{command:?}");
        assert!(ledger.when(&command).is_ok(), "{command:?}");
    }
    assert_eq!(mismatch("USD").to_string(), "programme MOTUSE is accounted in EUR, not USD");
}

#[test]
fn a_country_outside_the_programme_is_refused_for_every_money_command() {
    let ledger = given(&funded());
    let outside =
        |country: &str| DomainError::CountryNotInProgramme { programme: PROGRAMME.to_string(), country: country.to_string() };
    assert_eq!(ledger.when(&allocate("DZ", "10")), Err(outside("DZ")));
    assert_eq!(ledger.when(&allocate("DZA", "10")), Err(outside("DZ")));
    assert_eq!(ledger.when(&reallocate("DZ", "MA", "10")), Err(outside("DZ")));
    assert_eq!(ledger.when(&reallocate("MA", "EG", "10")), Err(outside("EG")));
    assert_eq!(ledger.when(&pay_cash_in("NG", "10", "10", "EUR")), Err(outside("NG")));
    let Command::DeliverInKind {
        programme, donor, recipient, level, dimension, category, description, amount, delivered_on, ..
    } = grant_to_returnee("10")
    else {
        unreachable!()
    };
    let grant_in_libya = Command::DeliverInKind {
        programme,
        donor,
        country: country_code("LY"),
        recipient,
        level,
        dimension,
        category,
        description,
        amount,
        currency: None,
        delivered_on,
    };
    assert_eq!(ledger.when(&grant_in_libya), Err(outside("LY")));
    assert_eq!(outside("DZ").to_string(), "country DZ does not belong to programme MOTUSE");
}

// ---------------------------------------------------------------------------
// Amounts
// ---------------------------------------------------------------------------

#[test]
fn a_zero_or_negative_amount_is_refused() {
    let ledger = given(&registered());
    for amount in ["0", "0.00", "-5", "-0.01"] {
        assert_eq!(
            ledger.when(&commit(amount)),
            Err(DomainError::NotPositive { amount: decimal(amount), currency: "EUR" }),
            "{amount}"
        );
    }
}

#[test]
fn an_amount_with_more_decimals_than_the_currency_allows_is_refused_not_rounded() {
    let eur = currency("EUR");
    assert_eq!(
        Money::parse(decimal("1.234"), eur),
        Err(DomainError::TooManyDecimals { amount: decimal("1.234"), currency: "EUR", minor_units: 2 })
    );
    assert_eq!(
        Money::parse(decimal("12.5"), currency("XOF")),
        Err(DomainError::TooManyDecimals { amount: decimal("12.5"), currency: "XOF", minor_units: 0 })
    );
    assert!(matches!(Money::parse(decimal("1.2345"), currency("TND")), Err(DomainError::TooManyDecimals { minor_units: 3, .. })));
    let message = Money::parse(decimal("1.234"), eur).unwrap_err().to_string();
    assert!(message.contains("at most 2 decimals"), "{message}");
}

#[test]
fn an_amount_is_carried_at_exactly_the_scale_of_its_currency() {
    let carried = |amount: &str, code: &str| Money::parse(decimal(amount), currency(code)).unwrap().amount.to_string();
    assert_eq!(carried("350", "EUR"), "350.00");
    assert_eq!(carried("350.5", "EUR"), "350.50");
    assert_eq!(carried("1.2300", "EUR"), "1.23", "trailing zeros are not extra decimals");
    assert_eq!(carried("1.234", "TND"), "1.234");
    assert_eq!(carried("12", "TND"), "12.000");
    assert_eq!(carried("12", "XOF"), "12");
    assert_eq!(carried("12.000", "XOF"), "12");
    assert_eq!(Money::parse(decimal("1.234"), currency("TND")).unwrap().minor_units(), 1234);
}

#[test]
fn an_amount_larger_than_a_single_entry_may_carry_is_refused() {
    let eur = currency("EUR");
    assert!(Money::parse(decimal("1000000000000"), eur).is_ok(), "the limit itself is allowed");
    assert_eq!(
        Money::parse(decimal("1000000000000.01"), eur),
        Err(DomainError::AmountTooLarge { amount: decimal("1000000000000.01"), currency: "EUR" })
    );
    assert!(matches!(Money::parse(Decimal::MAX, eur), Err(DomainError::AmountTooLarge { .. })));
    let ledger = given(&registered());
    assert!(matches!(ledger.when(&commit("5000000000000")), Err(DomainError::AmountTooLarge { .. })));
}

#[test]
fn a_commitment_is_recorded_in_the_programme_currency_at_its_scale() {
    let ledger = given(&registered());
    let body = ledger.when(&commit("350")).unwrap();
    let (amount, currency) = money_entry(&body).amount();
    assert_eq!((amount.to_string(), currency.code()), ("350.00".to_string(), "EUR"));
    assert!(body.payload_json().contains(r#""amount":"350.00","currency":"EUR""#), "{}", body.payload_json());
}

#[test]
fn amounts_are_checked_against_the_programme_currency() {
    let ledger = given(&[
        register_donor(DONOR),
        register_programme_in("TN-TND", "TND", &["TN"]),
        register_programme_in("SN-XOF", "XOF", &["SN"]),
    ]);
    let tnd = ledger.when(&commit_to("TN-TND", DONOR, "1.234")).unwrap();
    assert_eq!(money_entry(&tnd).amount().0.to_string(), "1.234");
    assert!(tnd.payload_json().contains(r#""amount":"1.234""#));
    assert_eq!(
        ledger.when(&commit_to("SN-XOF", DONOR, "12.5")),
        Err(DomainError::TooManyDecimals { amount: decimal("12.5"), currency: "XOF", minor_units: 0 })
    );
    assert_eq!(money_entry(&ledger.when(&commit_to("SN-XOF", DONOR, "12")).unwrap()).amount().0.to_string(), "12");
    assert!(matches!(ledger.when(&commit_to(PROGRAMME, DONOR, "1")), Err(DomainError::UnknownProgramme(_))));
}

#[test]
fn a_receipt_is_recorded_and_counted_as_received() {
    let mut ledger = given(&with(registered(), [commit("1000")]));
    let body = ledger.record(&receive("400"));
    assert_eq!(money_entry(&body).event_type(), "funding_received");
    assert_eq!(ledger.funding(), Funding { committed: 100_000, received: 40_000, allocated: 0 });
    assert!(matches!(ledger.when(&receive("0")), Err(DomainError::NotPositive { .. })));
}

// ---------------------------------------------------------------------------
// Allocations
// ---------------------------------------------------------------------------

#[test]
fn allocation_over_the_unallocated_commitments_is_refused() {
    let ledger = given(&funded());
    let refused = ledger.when(&allocate("TN", "500.01"));
    assert_eq!(
        refused,
        Err(DomainError::OverAllocation {
            programme: PROGRAMME.to_string(),
            donor: DONOR.to_string(),
            available: decimal("500.00"),
            requested: decimal("500.01"),
            currency: "EUR",
        })
    );
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("donor EU-EUTF has 500.00 EUR of its commitments to MOTUSE left to allocate"), "{message}");
    assert!(message.contains("500.01 EUR requested"), "{message}");
}

#[test]
fn allocation_exactly_equal_to_what_is_left_is_accepted() {
    let mut ledger = given(&funded());
    ledger.record(&allocate("TN", "500"));
    assert_eq!(ledger.funding().unallocated(), 0);
    assert_eq!(ledger.line("TN").allocated, 50_000);
    let refused = ledger.when(&allocate("SN", "0.01")).unwrap_err();
    assert!(refused.to_string().contains("has 0.00 EUR of its commitments"), "{refused}");
}

#[test]
fn allocation_without_any_commitment_is_refused() {
    let ledger = given(&registered());
    assert!(matches!(
        ledger.when(&allocate("MA", "1")),
        Err(DomainError::OverAllocation { available, .. }) if available == decimal("0.00")
    ));
}

#[test]
fn one_donor_cannot_allocate_another_donors_commitments() {
    let ledger = given(&with(funded(), [register_donor(OTHER_DONOR)]));
    assert_eq!(
        ledger.when(&allocate_from(OTHER_DONOR, "MA", "1")),
        Err(DomainError::OverAllocation {
            programme: PROGRAMME.to_string(),
            donor: OTHER_DONOR.to_string(),
            available: decimal("0.00"),
            requested: decimal("1.00"),
            currency: "EUR",
        })
    );
}

#[test]
fn an_allocation_is_charged_to_its_budget_line_and_to_the_funding() {
    let ledger = given(&funded());
    assert_eq!(ledger.line("MA"), BudgetLine { allocated: 50_000, disbursed_cash: 0, disbursed_in_kind: 0, held: 0 });
    assert_eq!(ledger.funding(), Funding { committed: 100_000, received: 0, allocated: 50_000 });
    assert_eq!(ledger.line("TN"), BudgetLine::default());
}

// ---------------------------------------------------------------------------
// Reallocations
// ---------------------------------------------------------------------------

#[test]
fn reallocation_to_the_same_country_is_refused() {
    let ledger = given(&funded());
    assert_inconsistent(ledger.when(&reallocate("MA", "MA", "10")), "to_country");
    assert_inconsistent(ledger.when(&reallocate("MA", "MAR", "10")), "to_country");
}

#[test]
fn reallocation_over_the_from_line_available_is_refused() {
    let ledger = given(&with(funded(), [pay_cash("380")]));
    let refused = ledger.when(&reallocate("MA", "TN", "120.01"));
    assert_eq!(refused, Err(over_spending("MOTUSE/EU-EUTF/MA", "120.00", "120.01")));
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("budget line MOTUSE/EU-EUTF/MA has 120.00 EUR available"), "{message}");
}

#[test]
fn reallocation_moves_allocation_between_lines() {
    let mut ledger = given(&funded());
    let body = ledger.record(&reallocate("MA", "TN", "200"));
    assert_eq!(money_entry(&body).amount().0.to_string(), "200.00");
    assert_eq!(ledger.line("MA").allocated, 30_000);
    assert_eq!(ledger.line("TN").allocated, 20_000);
    assert_eq!(ledger.funding().allocated, 50_000, "a reallocation leaves the donor's total allocation alone");
    ledger.record(&reallocate("MA", "TN", "300"));
    assert_eq!(ledger.line("MA").allocated, 0);
}

#[test]
fn reallocation_needs_a_reason() {
    let ledger = given(&funded());
    let Command::ReallocateBudget { programme, donor, from_country, to_country, amount, .. } = reallocate("MA", "TN", "1") else {
        unreachable!()
    };
    let reasonless =
        Command::ReallocateBudget { programme, donor, from_country, to_country, amount, currency: None, reason: " ".to_string() };
    assert_invalid(ledger.when(&reasonless), "reason");
}

// ---------------------------------------------------------------------------
// Cash payments
// ---------------------------------------------------------------------------

#[test]
fn disbursement_over_the_budget_line_is_refused() {
    let ledger = given(&with(funded(), [pay_cash("380")]));
    let refused = ledger.when(&pay_cash("120.01"));
    assert_eq!(refused, Err(over_spending("MOTUSE/EU-EUTF/MA", "120.00", "120.01")));
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("budget line MOTUSE/EU-EUTF/MA has 120.00 EUR available"), "{message}");
}

#[test]
fn a_cash_payment_of_exactly_the_available_amount_is_accepted() {
    let mut ledger = given(&with(funded(), [pay_cash("380")]));
    ledger.record(&pay_cash("120"));
    assert_eq!(ledger.line("MA").available(), 0);
    assert_eq!(ledger.when(&pay_cash("0.01")), Err(over_spending("MOTUSE/EU-EUTF/MA", "0.00", "0.01")));
}

#[test]
fn a_cash_payment_from_a_line_with_nothing_allocated_is_refused() {
    let ledger = given(&funded());
    assert_eq!(ledger.when(&pay_cash_in("TN", "1", "3.4", "TND")), Err(over_spending("MOTUSE/EU-EUTF/TN", "0.00", "1.00")));
}

#[test]
fn a_cash_payment_is_charged_to_its_budget_line_as_cash() {
    let mut ledger = given(&funded());
    ledger.record(&pay_cash("350"));
    assert_eq!(ledger.line("MA"), BudgetLine { allocated: 50_000, disbursed_cash: 35_000, disbursed_in_kind: 0, held: 0 });
    assert_eq!(ledger.line("MA").available(), 15_000);
}

#[test]
fn a_cash_payment_in_the_programme_currency_must_pay_the_charged_amount() {
    let ledger = given(&funded());
    let message = assert_inconsistent(ledger.when(&pay_cash_in("MA", "100", "99.99", "EUR")), "paid_amount");
    assert!(message.contains("must equal amount 100.00"), "{message}");
    let MoneyEntry::CashReinsertionPaid(paid) =
        money_entry(&ledger.when(&pay_cash_in("MA", "100", "100.0", "EUR")).unwrap()).clone()
    else {
        unreachable!()
    };
    assert_eq!(paid.rate, Decimal::ONE);
}

#[test]
fn a_cash_payment_records_the_rate_implied_rounded_to_8_decimals() {
    let ledger = given(&funded());
    let rate_of = |amount: &str, paid: &str, paid_currency: &str| {
        let body = ledger.when(&pay_cash_in("MA", amount, paid, paid_currency)).unwrap();
        let EventBody::Money(MoneyEntry::CashReinsertionPaid(event)) = body else { unreachable!() };
        (event.rate.to_string(), event.paid_amount.to_string())
    };
    assert_eq!(rate_of("100", "1085.5", "MAD"), ("10.855".to_string(), "1085.50".to_string()));
    assert_eq!(rate_of("3", "100", "MAD"), ("33.33333333".to_string(), "100.00".to_string()));
    assert_eq!(rate_of("3", "2", "MAD"), ("0.66666667".to_string(), "2.00".to_string()));
    assert_eq!(rate_of("150", "98000", "XOF"), ("653.33333333".to_string(), "98000".to_string()));
    assert_eq!(rate_of("7", "23.457", "TND"), ("3.351".to_string(), "23.457".to_string()));
}

#[test]
fn a_cash_payment_with_more_decimals_than_the_local_currency_allows_is_refused() {
    let ledger = given(&funded());
    assert_eq!(
        ledger.when(&pay_cash_in("MA", "10", "6559.5", "XOF")),
        Err(DomainError::TooManyDecimals { amount: decimal("6559.5"), currency: "XOF", minor_units: 0 })
    );
    assert_eq!(
        ledger.when(&pay_cash_in("MA", "10", "33.4567", "TND")),
        Err(DomainError::TooManyDecimals { amount: decimal("33.4567"), currency: "TND", minor_units: 3 })
    );
    assert_eq!(
        ledger.when(&pay_cash_in("MA", "10", "0", "MAD")),
        Err(DomainError::NotPositive { amount: decimal("0"), currency: "MAD" })
    );
    assert!(matches!(
        ledger.when(&pay_cash_in("MA", "10.001", "108", "MAD")),
        Err(DomainError::TooManyDecimals { currency: "EUR", .. })
    ));
}

// ---------------------------------------------------------------------------
// In-kind grants
// ---------------------------------------------------------------------------

#[test]
fn an_individual_in_kind_grant_names_the_beneficiary_and_is_charged_to_the_line() {
    let mut ledger = given(&funded());
    let body = ledger.record(&grant_to_returnee("125.5"));
    let EventBody::Money(MoneyEntry::InKindGrantDelivered(event)) = body else { unreachable!() };
    assert_eq!(event.beneficiary_ref, Some(beneficiary(7)));
    assert_eq!(event.community, None);
    assert_eq!(event.amount.to_string(), "125.50");
    assert_eq!(ledger.line("MA"), BudgetLine { allocated: 50_000, disbursed_cash: 0, disbursed_in_kind: 12_550, held: 0 });
}

#[test]
fn a_community_or_structural_grant_names_the_community() {
    let mut ledger = given(&funded());
    let body = ledger.record(&grant_to_community("200"));
    let EventBody::Money(MoneyEntry::InKindGrantDelivered(event)) = body else { unreachable!() };
    assert_eq!((event.beneficiary_ref, event.community.as_deref()), (None, Some("Douar Ouled Ali")));
    ledger.record(&deliver_in_kind(Recipient::Community("Commune de Tiznit".to_string()), Level::Structural, "100"));
    assert_eq!(ledger.line("MA").disbursed_in_kind, 30_000);
    assert_eq!(ledger.line("MA").available(), 20_000);
}

#[test]
fn an_in_kind_grant_whose_level_does_not_match_its_recipient_is_refused() {
    let ledger = given(&funded());
    let returnee = || Recipient::Beneficiary(beneficiary(7));
    let community = || Recipient::Community("Douar Ouled Ali".to_string());
    assert_inconsistent(ledger.when(&deliver_in_kind(returnee(), Level::Community, "10")), "level");
    assert_inconsistent(ledger.when(&deliver_in_kind(returnee(), Level::Structural, "10")), "level");
    assert_inconsistent(ledger.when(&deliver_in_kind(community(), Level::Individual, "10")), "level");
}

#[test]
fn an_in_kind_grant_to_an_unnamed_community_or_without_category_or_description_is_refused() {
    let ledger = given(&funded());
    assert_invalid(ledger.when(&deliver_in_kind(Recipient::Community("  ".to_string()), Level::Community, "10")), "community");
    let with_texts = |category: &str, description: &str| {
        let Command::DeliverInKind { programme, donor, country, recipient, level, dimension, amount, delivered_on, .. } =
            grant_to_returnee("10")
        else {
            unreachable!()
        };
        Command::DeliverInKind {
            programme,
            donor,
            country,
            recipient,
            level,
            dimension,
            category: category.to_string(),
            description: description.to_string(),
            amount,
            delivered_on,
            currency: None,
        }
    };
    assert_invalid(ledger.when(&with_texts("", "sewing machine")), "category");
    assert_invalid(ledger.when(&with_texts("start-up kit", "")), "description");
}

#[test]
fn an_in_kind_grant_over_the_budget_line_is_refused() {
    let ledger = given(&with(funded(), [grant_to_returnee("380")]));
    let refused = ledger.when(&grant_to_community("120.01"));
    assert_eq!(refused, Err(over_spending("MOTUSE/EU-EUTF/MA", "120.00", "120.01")));
    assert!(refused.unwrap_err().to_string().contains("budget line MOTUSE/EU-EUTF/MA has 120.00 EUR available"));
    assert!(ledger.when(&grant_to_community("120")).is_ok());
}

#[test]
fn cash_and_in_kind_disbursements_share_the_same_budget_line() {
    let ledger = given(&with(funded(), [pay_cash("300"), grant_to_returnee("150")]));
    assert_eq!(ledger.line("MA").disbursed(), 45_000);
    assert_eq!(ledger.when(&pay_cash("50.01")), Err(over_spending("MOTUSE/EU-EUTF/MA", "50.00", "50.01")));
}

// ---------------------------------------------------------------------------
// Reversals
// ---------------------------------------------------------------------------

#[test]
fn reversing_an_unknown_seq_is_refused() {
    let ledger = given(&funded());
    assert_eq!(ledger.when(&reverse(99)), Err(DomainError::UnknownSeq(99)));
    assert_eq!(ledger.when(&reverse(0)), Err(DomainError::UnknownSeq(0)));
}

#[test]
fn reversing_a_registration_is_refused() {
    let ledger = given(&funded());
    assert_eq!(ledger.when(&reverse(1)), Err(DomainError::NotReversible { seq: 1, event_type: "donor_registered".to_string() }));
    assert_eq!(
        ledger.when(&reverse(2)),
        Err(DomainError::NotReversible { seq: 2, event_type: "programme_registered".to_string() })
    );
}

#[test]
fn reversing_a_reversal_is_refused() {
    let ledger = given(&with(funded(), [pay_cash("10"), reverse(5)]));
    assert_eq!(ledger.when(&reverse(6)), Err(DomainError::NotReversible { seq: 6, event_type: "entry_reversed".to_string() }));
}

#[test]
fn reversing_the_same_entry_twice_is_refused() {
    let ledger = given(&with(funded(), [pay_cash("10"), reverse(5)]));
    assert_eq!(ledger.when(&reverse(5)), Err(DomainError::AlreadyReversed { seq: 5 }));
}

#[test]
fn a_reversal_needs_a_reason() {
    let ledger = given(&with(funded(), [pay_cash("10")]));
    assert_invalid(ledger.when(&Command::Reverse { seq: 5, reason: String::new() }), "reason");
}

#[test]
fn a_reversal_carries_the_whole_entry_it_cancels() {
    let ledger = given(&with(funded(), [pay_cash("10")]));
    let EventBody::EntryReversed(reversal) = ledger.when(&reverse(5)).unwrap() else { panic!("expected a reversal") };
    assert_eq!(reversal.reversed_seq, 5);
    assert_eq!(reversal.reason, "entered twice by mistake");
    assert_eq!(EventBody::Money(reversal.reversed), ledger.bodies[4]);
}

#[test]
fn reversing_a_commitment_that_is_already_allocated_is_refused() {
    let ledger = given(&funded());
    let refused = ledger.when(&reverse(3));
    assert_eq!(
        refused,
        Err(DomainError::ReversalWouldGoNegative {
            seq: 3,
            what: "the unallocated commitments of EU-EUTF to MOTUSE".to_string(),
            available: decimal("500.00"),
            requested: decimal("1000.00"),
            currency: "EUR",
        })
    );
    let message = refused.unwrap_err().to_string();
    assert!(message.contains("500.00 EUR available, 1000.00 EUR to cancel"), "{message}");
}

#[test]
fn reversing_a_commitment_that_the_unallocated_remainder_covers_is_accepted() {
    let mut ledger = given(&with(funded(), [commit("600")]));
    ledger.record(&reverse(3));
    assert_eq!(ledger.funding(), Funding { committed: 60_000, received: 0, allocated: 50_000 });
    assert!(matches!(
        ledger.when(&reverse(5)),
        Err(DomainError::ReversalWouldGoNegative { seq: 5, available, .. }) if available == decimal("100.00")
    ));
}

#[test]
fn reversing_an_allocation_already_spent_is_refused() {
    let ledger = given(&with(funded(), [pay_cash("100")]));
    assert_eq!(
        ledger.when(&reverse(4)),
        Err(DomainError::ReversalWouldGoNegative {
            seq: 4,
            what: "budget line MOTUSE/EU-EUTF/MA".to_string(),
            available: decimal("400.00"),
            requested: decimal("500.00"),
            currency: "EUR",
        })
    );
}

#[test]
fn reversing_an_allocation_moved_away_by_a_reallocation_is_refused() {
    let ledger = given(&with(funded(), [reallocate("MA", "TN", "1")]));
    assert!(matches!(
        ledger.when(&reverse(4)),
        Err(DomainError::ReversalWouldGoNegative { seq: 4, available, .. }) if available == decimal("499.00")
    ));
}

#[test]
fn reversing_an_unspent_allocation_gives_it_back_to_the_commitments() {
    let mut ledger = given(&funded());
    ledger.record(&reverse(4));
    assert_eq!(ledger.line("MA"), BudgetLine::default());
    assert_eq!(ledger.funding().unallocated(), 100_000);
}

#[test]
fn reversing_a_reallocation_whose_to_line_was_spent_is_refused() {
    let ledger = given(&with(funded(), [reallocate("MA", "TN", "200"), pay_cash_in("TN", "150", "500", "TND")]));
    assert_eq!(
        ledger.when(&reverse(5)),
        Err(DomainError::ReversalWouldGoNegative {
            seq: 5,
            what: "budget line MOTUSE/EU-EUTF/TN".to_string(),
            available: decimal("50.00"),
            requested: decimal("200.00"),
            currency: "EUR",
        })
    );
}

#[test]
fn reversing_an_unspent_reallocation_moves_the_money_back() {
    let mut ledger = given(&with(funded(), [reallocate("MA", "TN", "200")]));
    ledger.record(&reverse(5));
    assert_eq!(ledger.line("MA").allocated, 50_000);
    assert_eq!(ledger.line("TN").allocated, 0);
}

#[test]
fn reversing_a_disbursement_restores_the_available_amount() {
    let mut ledger = given(&with(funded(), [pay_cash("380"), grant_to_returnee("120")]));
    assert_eq!(ledger.line("MA").available(), 0);
    ledger.record(&reverse(5));
    assert_eq!(ledger.line("MA").available(), 38_000);
    ledger.record(&reverse(6));
    assert_eq!(ledger.line("MA"), BudgetLine { allocated: 50_000, disbursed_cash: 0, disbursed_in_kind: 0, held: 0 });
    assert!(ledger.when(&pay_cash("500")).is_ok());
}

#[test]
fn reversing_a_receipt_is_accepted() {
    let mut ledger = given(&with(funded(), [receive("300")]));
    let body = ledger.record(&reverse(5));
    assert_eq!(body.event_type(), "entry_reversed");
    assert_eq!(ledger.funding().received, 0);
    assert!(ledger.state.reversed.contains(&5));
}

// ---------------------------------------------------------------------------
// Postings
// ---------------------------------------------------------------------------

/// Seq 5 receipt, 6 reallocation, 7 cash payment in MAD, 8 in-kind grant.
fn every_money_event() -> Vec<Command> {
    with(funded(), [receive("600"), reallocate("MA", "TN", "100"), pay_cash("50"), grant_to_community("25")])
}

#[test]
fn every_money_event_and_its_reversal_has_postings_summing_to_zero_per_currency() {
    // Reversed newest first, so that no reversal is refused.
    let mut ledger = given(&every_money_event());
    for seq in (3..=8).rev() {
        ledger.record(&reverse(seq));
    }
    assert_eq!(ledger.bodies.len(), 14);
    let mut all = Vec::new();
    for body in &ledger.bodies[2..] {
        let posted = postings(body);
        assert!(!posted.is_empty(), "{} yields no postings", body.event_type());
        assert!(sums_to_zero(&posted), "{} does not balance: {posted:?}", body.event_type());
        all.extend(posted);
    }
    assert!(sums_to_zero(&all));
    let mut event_types: Vec<_> = ledger.bodies[2..8].iter().map(|body| body.event_type()).collect();
    event_types.sort_unstable();
    assert_eq!(
        event_types,
        [
            "budget_allocated",
            "budget_reallocated",
            "cash_reinsertion_paid",
            "funding_committed",
            "funding_received",
            "in_kind_grant_delivered"
        ]
    );
}

#[test]
fn a_reversal_mirrors_the_postings_of_the_entry_it_cancels() {
    let mut ledger = given(&every_money_event());
    for seq in (3..=8).rev() {
        let reversal = ledger.record(&reverse(seq));
        let mirrored: Vec<Posting> = postings(&ledger.bodies[seq as usize - 1])
            .into_iter()
            .map(|posting| Posting { amount: -posting.amount, ..posting })
            .collect();
        assert_eq!(postings(&reversal), mirrored, "reversal of seq {seq}");
    }
}

#[test]
fn a_cash_payment_in_local_currency_has_a_balanced_pair_in_that_currency() {
    let ledger = given(&funded());
    let body = ledger.when(&pay_cash_in("MA", "50", "540.25", "MAD")).unwrap();
    let posted = postings(&body);
    let in_dirhams: Vec<&Posting> = posted.iter().filter(|posting| posting.currency.code() == "MAD").collect();
    assert_eq!(in_dirhams.len(), 2, "{posted:?}");
    assert_eq!(in_dirhams[0].account, "local_paid:MOTUSE:MA");
    assert_eq!(in_dirhams[0].amount, 54_025);
    assert_eq!(in_dirhams[1].account, "local_fx:MOTUSE:MA");
    assert_eq!(in_dirhams[1].amount, -54_025);
    let in_euros: i64 = posted.iter().filter(|posting| posting.currency.code() == "EUR").map(|posting| posting.amount).sum();
    assert_eq!(in_euros, 0);
    assert!(posted.iter().any(|posting| posting.account == "spent:MOTUSE:EU-EUTF:MA" && posting.amount == -5_000));
}

#[test]
fn a_cash_payment_in_a_zero_decimal_currency_posts_whole_francs() {
    let ledger = given(&funded());
    let posted = postings(&ledger.when(&pay_cash_in("MA", "150", "98000", "XOF")).unwrap());
    let francs: Vec<i64> =
        posted.iter().filter(|posting| posting.currency.code() == "XOF").map(|posting| posting.amount).collect();
    assert_eq!(francs, [98_000, -98_000]);
}

#[test]
fn registrations_yield_no_postings() {
    let ledger = given(&registered());
    assert!(ledger.bodies.iter().all(|body| postings(body).is_empty()));
}

#[test]
fn postings_that_do_not_balance_in_one_currency_are_detected() {
    let eur = currency("EUR");
    let mad = currency("MAD");
    let posting = |currency, amount| Posting { account: "bank:MOTUSE".to_string(), currency, amount };
    assert!(sums_to_zero(&[]));
    assert!(sums_to_zero(&[posting(eur, 5), posting(eur, -5), posting(mad, 7), posting(mad, -7)]));
    assert!(!sums_to_zero(&[posting(eur, 5), posting(mad, -5)]), "currencies never offset each other");
    assert!(!sums_to_zero(&[posting(eur, i64::MAX), posting(eur, i64::MAX), posting(eur, 2)]));
}

// ---------------------------------------------------------------------------
// Payloads
// ---------------------------------------------------------------------------

/// One body of every event type, the reversal last.
fn one_of_every_event_type() -> Vec<EventBody> {
    let ledger = given(&with(every_money_event(), [grant_to_returnee("10"), reverse(7)]));
    let mut bodies = ledger.bodies;
    bodies.extend(payment_lists::one_of_every_payment_list_event());
    bodies
}

#[test]
fn every_event_type_round_trips_through_its_payload() {
    let bodies = one_of_every_event_type();
    let mut seen: Vec<&str> = bodies.iter().map(EventBody::event_type).collect();
    seen.sort_unstable();
    seen.dedup();
    assert_eq!(seen.len(), super::events::EVENT_TYPES.len(), "{seen:?}");
    for body in &bodies {
        let payload = body.payload_json();
        let parsed = EventBody::parse(body.event_type(), body.version(), &payload)
            .unwrap_or_else(|error| panic!("{} does not read back: {error}", body.event_type()));
        assert_eq!(&parsed, body);
        assert_eq!(parsed.payload_json(), payload, "{} re-serialises differently", body.event_type());
    }
}

#[test]
fn every_event_type_and_version_in_the_catalogue_is_readable() {
    let bodies = one_of_every_event_type();
    for (event_type, version) in super::events::EVENT_TYPES {
        let body = bodies.iter().find(|body| body.event_type() == event_type).unwrap();
        assert_eq!(body.version(), version);
        assert!(EventBody::parse(event_type, version, &body.payload_json()).is_ok(), "{event_type}");
    }
}

#[test]
fn an_unknown_event_type_or_version_is_an_error() {
    let payload = given(&[register_donor(DONOR)]).bodies[0].payload_json();
    assert!(matches!(
        EventBody::parse("donor_renamed", 1, &payload),
        Err(PayloadError::UnknownType { event_type, version: 1 }) if event_type == "donor_renamed"
    ));
    assert!(matches!(EventBody::parse("donor_registered", 2, &payload), Err(PayloadError::UnknownType { version: 2, .. })));
    assert!(matches!(EventBody::parse("donor_registered", 0, &payload), Err(PayloadError::UnknownType { version: 0, .. })));
}

#[test]
fn a_malformed_payload_is_an_error() {
    for payload in ["", "{", "null", "[]", r#"{"code":"EU-EUTF","name":"EUTF"}"#, r#"{"code":7,"name":"EUTF","kind":"x"}"#] {
        assert!(
            matches!(EventBody::parse("donor_registered", 1, payload), Err(PayloadError::Malformed { .. })),
            "{payload:?} was read"
        );
    }
    let bad_currency = r#"{"programme":"MOTUSE","donor":"EU-EUTF","amount":"1.00","currency":"EURO","received_on":"2026-01-10"}"#;
    assert!(matches!(EventBody::parse("funding_received", 1, bad_currency), Err(PayloadError::Malformed { .. })));
    let bad_date = r#"{"programme":"MOTUSE","donor":"EU-EUTF","amount":"1.00","currency":"EUR","received_on":"10/01/2026"}"#;
    assert!(matches!(EventBody::parse("funding_received", 1, bad_date), Err(PayloadError::Malformed { .. })));
}

#[test]
fn a_payload_with_an_unknown_field_is_refused() {
    for body in one_of_every_event_type() {
        let mut object: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&body.payload_json()).unwrap();
        object.insert("note".to_string(), serde_json::Value::from("added later"));
        let payload = serde_json::Value::Object(object).to_string();
        assert!(
            matches!(EventBody::parse(body.event_type(), 1, &payload), Err(PayloadError::Malformed { .. })),
            "{} accepted an unknown field",
            body.event_type()
        );
    }
}

#[test]
fn a_reversal_payload_with_an_unknown_field_in_the_cancelled_entry_is_refused() {
    let bodies = one_of_every_event_type();
    let reversal = bodies.iter().find(|body| body.event_type() == "entry_reversed").unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&reversal.payload_json()).unwrap();
    let mut in_the_entry = value.clone();
    in_the_entry["reversed"]["payload"]["note"] = serde_json::Value::from("added later");
    assert!(
        matches!(EventBody::parse("entry_reversed", 1, &in_the_entry.to_string()), Err(PayloadError::Malformed { .. })),
        "{in_the_entry}"
    );
    value["reversed"]["note"] = serde_json::Value::from("added later");
    assert!(matches!(EventBody::parse("entry_reversed", 1, &value.to_string()), Err(PayloadError::Malformed { .. })), "{value}");
}

#[test]
fn payload_amounts_are_json_strings_never_numbers() {
    let bodies = one_of_every_event_type();
    let cash = bodies.iter().find(|body| body.event_type() == "cash_reinsertion_paid").unwrap();
    let value: serde_json::Value = serde_json::from_str(&cash.payload_json()).unwrap();
    for field in ["amount", "paid_amount", "rate"] {
        assert!(value[field].is_string(), "{field} is {}", value[field]);
    }
    assert_eq!(value["amount"], "50.00");
    assert_eq!(value["paid_amount"], "540.00");
}

// ---------------------------------------------------------------------------
// Properties
// ---------------------------------------------------------------------------

fn property_config() -> ProptestConfig {
    // No regression files: this crate's source tree is not the place for them.
    ProptestConfig { cases: 300, failure_persistence: None, ..ProptestConfig::default() }
}

const CURRENCIES: [&str; 6] = ["EUR", "USD", "TND", "XOF", "MAD", "JPY"];

/// A decimal with up to six decimals, sometimes zero or negative.
fn any_decimal() -> impl Strategy<Value = Decimal> {
    (-1_000_000_000i64..=1_000_000_000_000_000, 0u32..=6).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale))
}

proptest! {
    #![proptest_config(property_config())]

    #[test]
    fn money_parse_never_accepts_more_decimals_than_the_currency_allows(
        amount in any_decimal(),
        code in prop::sample::select(CURRENCIES.to_vec()),
    ) {
        let currency = currency(code);
        let allowed = currency.minor_units();
        match Money::parse(amount, currency) {
            Ok(money) => {
                prop_assert!(amount > Decimal::ZERO);
                prop_assert!(amount.normalize().scale() <= allowed);
                prop_assert_eq!(money.amount, amount, "the value is kept, never rounded");
                prop_assert_eq!(money.amount.scale(), allowed);
                let minor = money.minor_units();
                prop_assert_eq!(Money::from_minor_units(minor, currency), money.amount);
                prop_assert_eq!(Money::parse(Money::from_minor_units(minor, currency), currency), Ok(money));
                prop_assert_eq!(Decimal::from_str(&money.amount.to_string()).unwrap(), amount);
            }
            Err(DomainError::NotPositive { .. }) => prop_assert!(amount <= Decimal::ZERO),
            Err(DomainError::TooManyDecimals { minor_units, .. }) => {
                prop_assert_eq!(minor_units, allowed);
                prop_assert!(amount.normalize().scale() > allowed);
            }
            Err(DomainError::AmountTooLarge { .. }) => prop_assert!(amount > Decimal::from(1_000_000_000_000i64)),
            Err(other) => prop_assert!(false, "unexpected refusal {other:?}"),
        }
    }

    #[test]
    fn minor_units_round_trip_through_money(minor in 1i64..=100_000_000_000_000, code in prop::sample::select(CURRENCIES.to_vec())) {
        let currency = currency(code);
        let amount = Money::from_minor_units(minor, currency);
        match Money::parse(amount, currency) {
            Ok(money) => prop_assert_eq!(money.minor_units(), minor),
            Err(error) => prop_assert!(matches!(error, DomainError::AmountTooLarge { .. }), "{error}"),
        }
    }

    #[test]
    fn any_sequence_of_commands_keeps_every_invariant(steps in any_history()) {
        let mut ledger = Ledger { state: State::default(), bodies: Vec::new() };
        let mut all_postings: Vec<Posting> = Vec::new();
        for step in &steps {
            let command = step.command();
            let before = ledger.state.clone();
            match ledger.when(&command) {
                Ok(body) => {
                    let seq = ledger.state.head_seq + 1;
                    ledger.state.apply(seq, &body);
                    all_postings.extend(postings(&body));
                    ledger.bodies.push(body);
                }
                Err(_) => prop_assert_eq!(&ledger.state, &before, "a refused {:?} changed the state", command),
            }
            prop_assert_eq!(ledger.state.check_invariants(), Ok(()), "after {:?}", command);
            prop_assert!(sums_to_zero(&all_postings), "postings unbalanced after {:?}", command);
            prop_assert_eq!(ledger.state.head_seq, ledger.bodies.len() as Seq);
            prop_assert_eq!(lines_add_up_to_the_funding(&ledger.state), Ok(()), "after {:?}", command);
        }
        assert_balances_match_postings(&ledger, &all_postings);
    }
}

/// The allocations of a (programme, donor) are exactly the sum of its budget
/// lines, and every line is in a country of its programme.
fn lines_add_up_to_the_funding(state: &State) -> Result<(), String> {
    let mut allocated_by_lines: BTreeMap<(String, String), i64> = BTreeMap::new();
    for (key, line) in &state.lines {
        let programme = state.programmes.get(&key.programme).ok_or_else(|| format!("line {key} of an unknown programme"))?;
        if !programme.countries.contains(&key.country) {
            return Err(format!("line {key} is outside its programme"));
        }
        *allocated_by_lines.entry((key.programme.to_string(), key.donor.to_string())).or_default() += line.allocated;
    }
    for ((programme, donor), funding) in &state.funding {
        let by_lines = allocated_by_lines.remove(&(programme.to_string(), donor.to_string())).unwrap_or(0);
        if by_lines != funding.allocated {
            return Err(format!("{programme}/{donor} allocated {} but its lines hold {by_lines}", funding.allocated));
        }
    }
    match allocated_by_lines.into_iter().find(|(_, allocated)| *allocated != 0) {
        Some(((programme, donor), _)) => Err(format!("lines of {programme}/{donor} hold money without funding")),
        None => Ok(()),
    }
}

/// Every budget line's available amount equals what its postings leave on
/// its `budget:` account (a credit, hence the minus).
fn assert_balances_match_postings(ledger: &Ledger, all_postings: &[Posting]) {
    let mut accounts: BTreeMap<&str, i64> = BTreeMap::new();
    for posting in all_postings {
        *accounts.entry(posting.account.as_str()).or_default() += posting.amount;
    }
    for (key, line) in &ledger.state.lines {
        let account = format!("budget:{key}").replace('/', ":");
        assert_eq!(-accounts.get(account.as_str()).copied().unwrap_or(0), line.available(), "{account}");
    }
}

/// One random step; indices pick from small pools so that steps meet.
#[derive(Clone, Debug)]
enum Step {
    RegisterDonor(usize),
    RegisterProgramme(usize),
    Commit { programme: usize, donor: usize, amount: Decimal },
    Receive { programme: usize, donor: usize, amount: Decimal },
    Allocate { programme: usize, donor: usize, country: usize, amount: Decimal },
    Reallocate { programme: usize, donor: usize, from: usize, to: usize, amount: Decimal },
    PayCash { programme: usize, donor: usize, country: usize, amount: Decimal, paid_amount: Decimal, paid_currency: usize },
    DeliverInKind { programme: usize, donor: usize, country: usize, individual: bool, level: Level, amount: Decimal },
    Reverse(Seq),
}

const DONORS: [&str; 2] = ["EU-EUTF", "BMZ"];
/// Code, currency, countries.
const PROGRAMMES: [(&str, &str, &[&str]); 3] =
    [("MOTUSE", "EUR", &["MA", "TN", "SN"]), ("TN-TND", "TND", &["TN", "LY"]), ("SN-XOF", "XOF", &["SN", "ML"])];
const COUNTRY_OUTSIDE_EVERY_PROGRAMME: &str = "DZ";
const PAID_CURRENCIES: [&str; 5] = ["EUR", "TND", "XOF", "MAD", "USD"];

/// Mostly amounts up to `major_max`, sometimes zero, negative, too precise
/// for the currency, or too large for one entry.
fn step_amount(major_max: i64) -> impl Strategy<Value = Decimal> {
    let too_large = Decimal::new(1_000_000_000_000, 0);
    prop_oneof![
        16 => (1..=major_max).prop_map(Decimal::from),
        3 => (1..=major_max * 100, 1u32..=3).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale)),
        1 => (-1_000i64..=0).prop_map(|mantissa| Decimal::new(mantissa, 2)),
        1 => (1i64..=1_000_000, 4u32..=9).prop_map(|(mantissa, scale)| Decimal::new(mantissa, scale)),
        1 => (1i64..=1_000, 0u32..=2).prop_map(move |(extra, scale)| too_large + Decimal::new(extra, scale)),
    ]
}

/// Commitments are large, allocations smaller, disbursements smaller still,
/// so that every kind of step is sometimes accepted and sometimes refused.
const COMMITMENT_MAJOR_MAX: i64 = 200_000;
const ALLOCATION_MAJOR_MAX: i64 = 50_000;
const DISBURSEMENT_MAJOR_MAX: i64 = 5_000;
/// Histories record a few dozen events; reversals aim at those and past them.
const REVERSED_SEQ_MAX: Seq = 40;
/// Country indices past a programme's own countries pick one outside it.
const COUNTRY_INDEX_MAX: usize = 3;

fn any_step() -> impl Strategy<Value = Step> {
    // Skewed towards the first programme, donor and country, so that steps
    // often meet on the same budget lines.
    let programme = prop_oneof![2 => Just(0), 1 => 0..PROGRAMMES.len()];
    let donor = prop_oneof![2 => Just(0), 1 => 0..DONORS.len()];
    let country = prop_oneof![3 => Just(0), 3 => 0..COUNTRY_INDEX_MAX, 1 => Just(COUNTRY_INDEX_MAX)];
    let level = prop::sample::select(vec![Level::Individual, Level::Community, Level::Structural]);
    prop_oneof![
        1 => donor.clone().prop_map(Step::RegisterDonor),
        1 => programme.clone().prop_map(Step::RegisterProgramme),
        3 => (programme.clone(), donor.clone(), step_amount(COMMITMENT_MAJOR_MAX))
            .prop_map(|(programme, donor, amount)| Step::Commit { programme, donor, amount }),
        2 => (programme.clone(), donor.clone(), step_amount(COMMITMENT_MAJOR_MAX))
            .prop_map(|(programme, donor, amount)| Step::Receive { programme, donor, amount }),
        5 => (programme.clone(), donor.clone(), country.clone(), step_amount(ALLOCATION_MAJOR_MAX))
            .prop_map(|(programme, donor, country, amount)| Step::Allocate { programme, donor, country, amount }),
        3 => (programme.clone(), donor.clone(), country.clone(), country.clone(), step_amount(DISBURSEMENT_MAJOR_MAX))
            .prop_map(|(programme, donor, from, to, amount)| Step::Reallocate { programme, donor, from, to, amount }),
        5 => (
            programme.clone(),
            donor.clone(),
            country.clone(),
            step_amount(DISBURSEMENT_MAJOR_MAX),
            step_amount(DISBURSEMENT_MAJOR_MAX * 10),
            0..PAID_CURRENCIES.len(),
        )
            .prop_map(|(programme, donor, country, amount, paid_amount, paid_currency)| Step::PayCash {
                programme,
                donor,
                country,
                amount,
                paid_amount,
                paid_currency,
            }),
        4 => (programme, donor, country, any::<bool>(), level, step_amount(DISBURSEMENT_MAJOR_MAX)).prop_map(
            |(programme, donor, country, individual, level, amount)| Step::DeliverInKind {
                programme,
                donor,
                country,
                individual,
                level,
                amount,
            }
        ),
        4 => (0..=REVERSED_SEQ_MAX).prop_map(Step::Reverse),
    ]
}

/// Most steps in one random history, after its registrations.
const HISTORY_STEPS_MAX: usize = 120;

/// A random history: some or all of the registrations, in a random order,
/// then random steps (among which more registrations, often refused).
fn any_history() -> impl Strategy<Value = Vec<Step>> {
    let registrations: Vec<Step> =
        (0..DONORS.len()).map(Step::RegisterDonor).chain((0..PROGRAMMES.len()).map(Step::RegisterProgramme)).collect();
    let count = registrations.len();
    let some_registrations = prop_oneof![
        3 => Just(registrations.clone()),
        1 => prop::sample::subsequence(registrations, 0..=count).prop_shuffle(),
    ];
    (some_registrations, prop::collection::vec(any_step(), 1..HISTORY_STEPS_MAX)).prop_map(|(mut history, steps)| {
        history.extend(steps);
        history
    })
}

impl Step {
    fn command(&self) -> Command {
        let programme = |index: usize| programme_code(PROGRAMMES[index].0);
        let donor = |index: usize| donor_code(DONORS[index]);
        // A programme's own country, or one outside it.
        let country = |programme: usize, index: usize| {
            let countries = PROGRAMMES[programme].2;
            country_code(countries.get(index).copied().unwrap_or(COUNTRY_OUTSIDE_EVERY_PROGRAMME))
        };
        match self {
            Step::RegisterDonor(index) => register_donor(DONORS[*index]),
            Step::RegisterProgramme(index) => {
                let (code, currency_code, countries) = PROGRAMMES[*index];
                register_programme_in(code, currency_code, countries)
            }
            Step::Commit { programme: index, donor: donor_index, amount } => Command::CommitFunding {
                programme: programme(*index),
                donor: donor(*donor_index),
                amount: *amount,
                currency: None,
                reference: "agreement".to_string(),
                committed_on: date("2026-01-05"),
            },
            Step::Receive { programme: index, donor: donor_index, amount } => Command::ReceiveFunding {
                programme: programme(*index),
                donor: donor(*donor_index),
                amount: *amount,
                currency: None,
                received_on: date("2026-01-10"),
            },
            Step::Allocate { programme: index, donor: donor_index, country: country_index, amount } => Command::AllocateBudget {
                programme: programme(*index),
                donor: donor(*donor_index),
                country: country(*index, *country_index),
                amount: *amount,
                currency: None,
            },
            Step::Reallocate { programme: index, donor: donor_index, from, to, amount } => Command::ReallocateBudget {
                programme: programme(*index),
                donor: donor(*donor_index),
                from_country: country(*index, *from),
                to_country: country(*index, *to),
                amount: *amount,
                currency: None,
                reason: "needs changed".to_string(),
            },
            Step::PayCash {
                programme: index,
                donor: donor_index,
                country: country_index,
                amount,
                paid_amount,
                paid_currency,
            } => Command::PayCash {
                programme: programme(*index),
                donor: donor(*donor_index),
                country: country(*index, *country_index),
                beneficiary: beneficiary(3),
                amount: *amount,
                currency: None,
                paid_amount: *paid_amount,
                paid_currency: currency(PAID_CURRENCIES[*paid_currency]),
                method: PaymentMethod::CashInHand,
                paid_on: date("2026-02-01"),
            },
            Step::DeliverInKind { programme: index, donor: donor_index, country: country_index, individual, level, amount } => {
                Command::DeliverInKind {
                    programme: programme(*index),
                    donor: donor(*donor_index),
                    country: country(*index, *country_index),
                    recipient: if *individual {
                        Recipient::Beneficiary(beneficiary(4))
                    } else {
                        Recipient::Community("Village".to_string())
                    },
                    level: *level,
                    dimension: Dimension::Social,
                    category: "training".to_string(),
                    description: "vocational training".to_string(),
                    amount: *amount,
                    currency: None,
                    delivered_on: date("2026-02-15"),
                }
            }
            Step::Reverse(seq) => reverse(*seq),
        }
    }
}

#[test]
fn the_random_command_sequences_reach_every_kind_of_event() {
    // Guards the property above against a generator that only produces refusals.
    let mut runner = proptest::test_runner::TestRunner::deterministic();
    let strategy = any_history();
    let mut recorded: std::collections::BTreeSet<&'static str> = std::collections::BTreeSet::new();
    for _ in 0..200 {
        let steps = strategy.new_tree(&mut runner).unwrap().current();
        let mut ledger = Ledger { state: State::default(), bodies: Vec::new() };
        for step in &steps {
            if let Ok(body) = ledger.when(&step.command()) {
                recorded.insert(body.event_type());
                let seq = ledger.state.head_seq + 1;
                ledger.state.apply(seq, &body);
                ledger.bodies.push(body);
            }
        }
    }
    // The generator makes single-event commands; payment lists have their
    // own tests (tests/payment_lists.rs).
    let expected: std::collections::BTreeSet<&str> = super::events::EVENT_TYPES
        .iter()
        .map(|(event_type, _)| *event_type)
        .filter(|event_type| !event_type.starts_with("payment_list_") && *event_type != "programme_approvals_set")
        .collect();
    assert_eq!(recorded, expected);
}
