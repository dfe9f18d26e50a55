//! The large ledger the benches build: one programme funded by one donor,
//! allocated to three countries, then cash payments spread over the
//! countries, 24 months and `DISTINCT_RETURNEES` returnees, appended in
//! batches as a busy server would group-commit them.

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ledger_core::domain::types::PaymentMethod;
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, UnitOutcome};
use rust_decimal::Decimal;

pub const PROGRAMME: &str = "BENCH";
pub const DONOR: &str = "EU-BENCH";
pub const COUNTRIES: [&str; 3] = ["MA", "TN", "SN"];
/// Units per append when filling.
pub const BATCH_UNITS: usize = 1_000;
pub const DISTINCT_RETURNEES: usize = 50_000;

/// One command appended by the bench's actor, without idempotency or token.
pub fn unit(command: Command) -> AppendUnit {
    AppendUnit { actor: "bench".to_string(), commands: vec![command], idempotency: None, token_hash: None }
}

fn day(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("bench dates are real days")
}

/// The donor, the programme, its funding and an allocation per country.
pub fn setup_commands() -> Vec<Command> {
    let programme = ProgrammeCode::parse(PROGRAMME).expect("a valid code");
    let donor = DonorCode::parse(DONOR).expect("a valid code");
    let countries: Vec<CountryCode> = COUNTRIES.iter().map(|code| CountryCode::parse(code).expect("a valid country")).collect();
    let mut commands = vec![
        Command::RegisterDonor {
            code: donor.clone(),
            name: "Bench donor".into(),
            kind: "eu_instrument".into(),
            iati_identifier: Some("XI-IATI-BENCH".into()),
        },
        Command::RegisterProgramme {
            code: programme.clone(),
            name: "Bench programme".into(),
            currency: Currency::parse("EUR").expect("a valid currency"),
            countries: countries.clone(),
            implementer: "IOM".into(),
            starts_on: day(2024, 1, 1),
            ends_on: day(2030, 12, 31),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(900_000_000_000, 0),
            currency: None,
            reference: "BENCH".into(),
            committed_on: day(2024, 1, 1),
        },
        Command::ReceiveFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(500_000_000_000, 0),
            currency: None,
            received_on: day(2024, 1, 2),
        },
    ];
    for country in countries {
        commands.push(Command::AllocateBudget {
            programme: programme.clone(),
            donor: donor.clone(),
            country,
            amount: Decimal::new(300_000_000_000, 0),
            currency: None,
        });
    }
    commands
}

/// Payment `index`: 350 EUR paid as 3,815 MAD by mobile money, its
/// country, month and returnee taken in turn.
pub fn payment(keys: &KeyRing, index: usize) -> Command {
    let month = u32::try_from(index % 24).expect("below 24");
    Command::PayCash {
        programme: ProgrammeCode::parse(PROGRAMME).expect("a valid code"),
        donor: DonorCode::parse(DONOR).expect("a valid code"),
        country: CountryCode::parse(COUNTRIES[index % COUNTRIES.len()]).expect("a valid country"),
        beneficiary: keys.pseudonymise(&format!("MA-{}", index % DISTINCT_RETURNEES)).expect("a valid case id"),
        amount: Decimal::new(35_000, 2),
        currency: None,
        paid_amount: Decimal::new(381_500, 2),
        paid_currency: Currency::parse("MAD").expect("a valid currency"),
        method: PaymentMethod::MobileMoney,
        paid_on: day(2024 + i32::try_from(month / 12).expect("small"), month % 12 + 1, 1),
    }
}

/// Appends the units and insists that every one was appended.
pub async fn append_all(appender: &mut Appender, units: &[AppendUnit]) {
    for outcome in appender.append(units).await.expect("the bench database takes appends") {
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "bench command refused: {outcome:?}");
    }
}

/// Appends payments `from..target` in batches of `BATCH_UNITS`; returns
/// the time taken.
pub async fn fill(appender: &mut Appender, keys: &KeyRing, from: usize, target: usize) -> Duration {
    let started = Instant::now();
    let mut next = from;
    while next < target {
        let count = BATCH_UNITS.min(target - next);
        let units: Vec<AppendUnit> = (next..next + count).map(|index| unit(payment(keys, index))).collect();
        append_all(appender, &units).await;
        next += count;
    }
    started.elapsed()
}
