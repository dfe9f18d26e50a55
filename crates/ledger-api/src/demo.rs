//! Demo data drawn from public programme descriptions (amounts invented),
//! appended through the same path as every user's request.

use chrono::NaiveDate;
use ledger_core::domain::types::{Dimension, Level, PaymentMethod};
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode, Recipient};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, UnitOutcome};
use rust_decimal::Decimal;

use crate::config::Ledger;

fn date(text: &str) -> NaiveDate {
    text.parse().expect("demo dates are valid")
}

fn amount(text: &str) -> Decimal {
    text.parse().expect("demo amounts are valid")
}

fn donor(code: &str) -> DonorCode {
    DonorCode::parse(code).expect("demo codes are valid")
}

fn programme(code: &str) -> ProgrammeCode {
    ProgrammeCode::parse(code).expect("demo codes are valid")
}

fn country(code: &str) -> CountryCode {
    CountryCode::parse(code).expect("demo countries are valid")
}

fn currency(code: &str) -> Currency {
    Currency::parse(code).expect("demo currencies are valid")
}

fn register_donor(code: &str, name: &str, kind: &str) -> Command {
    Command::RegisterDonor { code: donor(code), name: name.to_string(), kind: kind.to_string(), iati_identifier: None }
}

fn register_programme(code: &str, name: &str, implementer: &str, countries: &[&str], period: (&str, &str)) -> Command {
    Command::RegisterProgramme {
        code: programme(code),
        name: name.to_string(),
        currency: currency("EUR"),
        countries: countries.iter().map(|code| country(code)).collect(),
        implementer: implementer.to_string(),
        starts_on: date(period.0),
        ends_on: date(period.1),
        approvals_required: None,
    }
}

fn commit(programme_code: &str, donor_code: &str, value: &str, reference: &str, on: &str) -> Command {
    Command::CommitFunding {
        programme: programme(programme_code),
        donor: donor(donor_code),
        amount: amount(value),
        currency: None,
        reference: reference.to_string(),
        committed_on: date(on),
    }
}

fn receive(programme_code: &str, donor_code: &str, value: &str, on: &str) -> Command {
    Command::ReceiveFunding {
        programme: programme(programme_code),
        donor: donor(donor_code),
        amount: amount(value),
        currency: None,
        received_on: date(on),
    }
}

fn allocate(programme_code: &str, donor_code: &str, country_code: &str, value: &str) -> Command {
    Command::AllocateBudget {
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        amount: amount(value),
        currency: None,
    }
}

/// A cash payment: (programme, donor, country), case id, EUR charged, local amount and currency, method, date.
struct Cash<'a> {
    line: (&'a str, &'a str, &'a str),
    case_id: &'a str,
    charged: &'a str,
    paid: (&'a str, &'a str),
    method: PaymentMethod,
    on: &'a str,
}

fn pay(keys: &KeyRing, cash: Cash<'_>) -> Command {
    Command::PayCash {
        programme: programme(cash.line.0),
        donor: donor(cash.line.1),
        country: country(cash.line.2),
        beneficiary: keys.pseudonymise(cash.case_id).expect("demo case ids are valid"),
        amount: amount(cash.charged),
        currency: None,
        paid_amount: amount(cash.paid.0),
        paid_currency: currency(cash.paid.1),
        method: cash.method,
        paid_on: date(cash.on),
    }
}

/// An in-kind grant: (programme, donor, country), recipient, level, dimension, category, description, EUR, date.
fn grant(
    line: (&str, &str, &str),
    recipient: Recipient,
    (level, dimension): (Level, Dimension),
    (category, description): (&str, &str),
    value: &str,
    on: &str,
) -> Command {
    Command::DeliverInKind {
        programme: programme(line.0),
        donor: donor(line.1),
        country: country(line.2),
        recipient,
        level,
        dimension,
        category: category.to_string(),
        description: description.to_string(),
        amount: amount(value),
        currency: None,
        delivered_on: date(on),
    }
}

fn registrations() -> Vec<Command> {
    vec![
        register_donor("EU-EUTF", "EU Emergency Trust Fund for Africa", "eu_instrument"),
        register_donor("EU-AMIF", "EU Asylum, Migration and Integration Fund", "eu_instrument"),
        register_donor("EU-DEVCO", "European Commission DG DEVCO", "eu_instrument"),
        register_donor("BMZ", "German Federal Ministry for Economic Cooperation and Development", "national_donor"),
        register_programme(
            "MOTUSE",
            "MoTuSe: reintegration in Morocco, Tunisia and Senegal",
            "IOM",
            &["MA", "TN", "SN"],
            ("2023-01-01", "2026-12-31"),
        ),
        register_programme(
            "EUIOM-JI-NA",
            "EU-IOM Joint Initiative North Africa",
            "IOM",
            &["DZ", "EG", "LY", "MA", "TN"],
            ("2018-08-15", "2021-12-31"),
        ),
        register_programme(
            "RADA",
            "Reintegration Assistance and Development in Afghanistan",
            "IOM",
            &["AF"],
            ("2017-09-01", "2021-08-31"),
        ),
        register_programme("SA-PILOT", "Southern Africa reintegration pilot", "IOM", &["MW", "MZ"], ("2019-01-01", "2021-06-30")),
    ]
}

fn funding() -> Vec<Command> {
    vec![
        commit("MOTUSE", "EU-AMIF", "1200000.00", "AMIF/2022/MOTUSE/001", "2023-01-10"),
        commit("MOTUSE", "BMZ", "400000.00", "BMZ-2023-ZMR-017", "2023-02-01"),
        receive("MOTUSE", "EU-AMIF", "600000.00", "2023-02-15"),
        receive("MOTUSE", "BMZ", "200000.00", "2023-03-01"),
        allocate("MOTUSE", "EU-AMIF", "MA", "500000.00"),
        allocate("MOTUSE", "EU-AMIF", "TN", "350000.00"),
        allocate("MOTUSE", "EU-AMIF", "SN", "300000.00"),
        allocate("MOTUSE", "BMZ", "SN", "150000.00"),
        commit("EUIOM-JI-NA", "EU-EUTF", "3000000.00", "T05-EUTF-NOA-REG-12", "2018-08-15"),
        receive("EUIOM-JI-NA", "EU-EUTF", "2000000.00", "2018-09-30"),
        allocate("EUIOM-JI-NA", "EU-EUTF", "DZ", "400000.00"),
        allocate("EUIOM-JI-NA", "EU-EUTF", "EG", "600000.00"),
        allocate("EUIOM-JI-NA", "EU-EUTF", "LY", "900000.00"),
        allocate("EUIOM-JI-NA", "EU-EUTF", "MA", "500000.00"),
        allocate("EUIOM-JI-NA", "EU-EUTF", "TN", "400000.00"),
        commit("RADA", "EU-DEVCO", "2500000.00", "DCI-ASIE/2017/RADA", "2017-09-01"),
        receive("RADA", "EU-DEVCO", "1500000.00", "2017-10-15"),
        allocate("RADA", "EU-DEVCO", "AF", "2200000.00"),
        commit("SA-PILOT", "EU-DEVCO", "800000.00", "DEVCO/2019/SAF-PILOT", "2019-01-15"),
        receive("SA-PILOT", "EU-DEVCO", "800000.00", "2019-02-01"),
        allocate("SA-PILOT", "EU-DEVCO", "MW", "400000.00"),
        allocate("SA-PILOT", "EU-DEVCO", "MZ", "350000.00"),
    ]
}

fn payments(keys: &KeyRing) -> Vec<Command> {
    use PaymentMethod::{BankTransfer, CashInHand, MobileMoney};
    let cash = |line, case_id, charged, paid, method, on| pay(keys, Cash { line, case_id, charged, paid, method, on });
    vec![
        cash(("MOTUSE", "EU-AMIF", "MA"), "MA-2023-000101", "350.00", ("3815.00", "MAD"), BankTransfer, "2023-04-03"),
        cash(("MOTUSE", "EU-AMIF", "MA"), "MA-2023-000102", "350.00", ("3815.00", "MAD"), CashInHand, "2023-04-05"),
        cash(("MOTUSE", "EU-AMIF", "TN"), "TN-2023-004411", "300.00", ("1005.450", "TND"), BankTransfer, "2023-04-12"),
        cash(("MOTUSE", "BMZ", "SN"), "SN-2023-DKR-0042", "250.00", ("163989", "XOF"), MobileMoney, "2023-05-02"),
        cash(("MOTUSE", "EU-AMIF", "SN"), "SN-2023-DKR-0043", "250.00", ("163989", "XOF"), MobileMoney, "2023-05-02"),
        cash(("EUIOM-JI-NA", "EU-EUTF", "DZ"), "DZ-2019-0007", "400.00", ("53120.00", "DZD"), CashInHand, "2019-03-11"),
        cash(("EUIOM-JI-NA", "EU-EUTF", "EG"), "EG-2019-1203", "400.00", ("7864.00", "EGP"), BankTransfer, "2019-06-20"),
        // The same returnee assisted by two programmes: the duplicate-assistance view shows it.
        cash(("EUIOM-JI-NA", "EU-EUTF", "MA"), "MA-2023-000101", "300.00", ("3270.00", "MAD"), BankTransfer, "2021-05-17"),
        cash(("RADA", "EU-DEVCO", "AF"), "AF-2018-KBL-5531", "500.00", ("38250.00", "AFN"), CashInHand, "2018-04-09"),
        cash(("SA-PILOT", "EU-DEVCO", "MW"), "MW-2019-0311", "300.00", ("246000.00", "MWK"), MobileMoney, "2019-09-02"),
        cash(("SA-PILOT", "EU-DEVCO", "MZ"), "MZ-2019-0127", "300.00", ("20700.00", "MZN"), MobileMoney, "2019-10-14"),
    ]
}

fn grants(keys: &KeyRing) -> Vec<Command> {
    let individual = |case_id: &str| Recipient::Beneficiary(keys.pseudonymise(case_id).expect("demo case ids are valid"));
    let community = |name: &str| Recipient::Community(name.to_string());
    vec![
        grant(
            ("MOTUSE", "EU-AMIF", "MA"),
            individual("MA-2023-000102"),
            (Level::Individual, Dimension::Economic),
            ("business_start_up", "Start-up kit for a tailoring workshop in Beni Mellal"),
            "1500.00",
            "2023-06-01",
        ),
        grant(
            ("MOTUSE", "EU-AMIF", "TN"),
            individual("TN-2023-004411"),
            (Level::Individual, Dimension::Social),
            ("vocational_training", "Six-month welding course in Sfax"),
            "900.00",
            "2023-07-15",
        ),
        grant(
            ("MOTUSE", "BMZ", "SN"),
            individual("SN-2023-DKR-0042"),
            (Level::Individual, Dimension::Psychosocial),
            ("psychosocial_care", "Counselling sessions in Dakar"),
            "400.00",
            "2023-06-20",
        ),
        grant(
            ("RADA", "EU-DEVCO", "AF"),
            community("Balkh province, Mazar-i-Sharif"),
            (Level::Community, Dimension::Economic),
            ("community_infrastructure", "Irrigation canal rehabilitation"),
            "85000.00",
            "2019-05-30",
        ),
        grant(
            ("RADA", "EU-DEVCO", "AF"),
            community("Nangarhar province, Jalalabad"),
            (Level::Community, Dimension::Social),
            ("community_infrastructure", "Primary school classrooms"),
            "120000.00",
            "2019-09-15",
        ),
        grant(
            ("RADA", "EU-DEVCO", "AF"),
            community("Herat province"),
            (Level::Structural, Dimension::Economic),
            ("capacity_building", "Training of provincial labour-market staff"),
            "40000.00",
            "2020-02-10",
        ),
        grant(
            ("SA-PILOT", "EU-DEVCO", "MZ"),
            community("Maputo province, Moamba"),
            (Level::Community, Dimension::Economic),
            ("community_infrastructure", "Market stalls for a returnee cooperative"),
            "25000.00",
            "2020-03-02",
        ),
    ]
}

/// Corrections: one reallocation and one reversal, as a finance team makes them.
fn corrections() -> Vec<Command> {
    vec![
        Command::ReallocateBudget {
            programme: programme("EUIOM-JI-NA"),
            donor: donor("EU-EUTF"),
            from_country: country("LY"),
            to_country: country("TN"),
            amount: amount("150000.00"),
            currency: None,
            reason: "Access to Libya suspended; caseload moved to Tunisia (steering committee, 2020-03)".to_string(),
        },
        Command::Reverse { seq: 0, reason: "Paid twice by mistake: the bank transfer was already made".to_string() },
    ]
}

#[derive(Debug, thiserror::Error)]
pub enum DemoError {
    #[error("the ledger is not empty (head seq {0}): load the demo into a new database")]
    NotEmpty(u64),
    #[error("demo entry {index} was refused: {message}")]
    Refused { index: usize, message: String },
    #[error(transparent)]
    Store(#[from] ledger_core::store::StoreError),
}

/// Loads the demo data into an empty ledger; returns the number of events.
pub async fn load(ledger: &Ledger, actor: &str) -> Result<u64, DemoError> {
    let (head, _) = ledger.store.head().await?;
    if head != 0 {
        return Err(DemoError::NotEmpty(head));
    }
    let keys = &ledger.keys;
    let mut commands = registrations();
    commands.extend(funding());
    commands.extend(payments(keys));
    // A duplicated payment, reversed below.
    commands.push(pay(
        keys,
        Cash {
            line: ("MOTUSE", "EU-AMIF", "MA"),
            case_id: "MA-2023-000102",
            charged: "350.00",
            paid: ("3815.00", "MAD"),
            method: PaymentMethod::BankTransfer,
            on: "2023-04-05",
        },
    ));
    let duplicated_seq = commands.len() as u64;
    commands.extend(grants(keys));
    commands.extend(corrections().into_iter().map(|command| match command {
        Command::Reverse { reason, .. } => Command::Reverse { seq: duplicated_seq, reason },
        other => other,
    }));
    let mut appender: Appender = ledger.appender();
    let units: Vec<AppendUnit> = commands
        .into_iter()
        .map(|command| AppendUnit { actor: actor.to_string(), commands: vec![command], idempotency: None, token_hash: None })
        .collect();
    let outcomes = appender.append(&units).await?;
    for (index, outcome) in outcomes.iter().enumerate() {
        if let UnitOutcome::Refused { error, .. } = outcome {
            return Err(DemoError::Refused { index, message: error.to_string() });
        }
    }
    Ok(outcomes.len() as u64)
}
