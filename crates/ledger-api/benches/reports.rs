//! How long the reports take on a large ledger: the IATI file and a
//! financial statement of a programme of `LEDGER_BENCH_EVENTS` events
//! (default 1,000,000), built as the projections bench builds its large
//! ledger. On SQLite and, when `LEDGER_BENCH_POSTGRES_URL` names a server,
//! on PostgreSQL. Prints figures.
//!
//!     cargo bench -p ledger-api --bench reports [-- sqlite|postgres]

use std::sync::Arc;
use std::time::Instant;

use chrono::{NaiveDate, Utc};
use ledger_api::http::reports::make_statement;
use ledger_api::reports::iati::{IatiRequest, ReportingOrg, iati_file};
use ledger_api::reports::statement::Period;
use ledger_core::domain::types::PaymentMethod;
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, Store, UnitOutcome};
use projections::LedgerProjector;
use rust_decimal::Decimal;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const BATCH_UNITS: usize = 1_000;
const DISTINCT_RETURNEES: usize = 50_000;
const COUNTRIES: [&str; 3] = ["MA", "TN", "SN"];

fn unit(command: Command) -> AppendUnit {
    AppendUnit { actor: "bench".to_string(), commands: vec![command], idempotency: None, token_hash: None }
}

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn setup_commands() -> Vec<Command> {
    let programme = ProgrammeCode::parse("BENCH").unwrap();
    let donor = DonorCode::parse("EU-BENCH").unwrap();
    let countries: Vec<CountryCode> = COUNTRIES.iter().map(|code| CountryCode::parse(code).unwrap()).collect();
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
            currency: Currency::parse("EUR").unwrap(),
            countries: countries.clone(),
            implementer: "IOM".into(),
            starts_on: day("2024-01-01"),
            ends_on: day("2030-12-31"),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(900_000_000_000, 0),
            currency: None,
            reference: "BENCH".into(),
            committed_on: day("2024-01-01"),
        },
        Command::ReceiveFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(500_000_000_000, 0),
            currency: None,
            received_on: day("2024-01-02"),
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

/// Payments spread over three countries and 24 months.
fn payment(keys: &KeyRing, index: usize) -> Command {
    let month = u32::try_from(index % 24).unwrap();
    Command::PayCash {
        programme: ProgrammeCode::parse("BENCH").unwrap(),
        donor: DonorCode::parse("EU-BENCH").unwrap(),
        country: CountryCode::parse(COUNTRIES[index % COUNTRIES.len()]).unwrap(),
        beneficiary: keys.pseudonymise(&format!("MA-{}", index % DISTINCT_RETURNEES)).unwrap(),
        amount: Decimal::new(35_000, 2),
        currency: None,
        paid_amount: Decimal::new(381_500, 2),
        paid_currency: Currency::parse("MAD").unwrap(),
        method: PaymentMethod::MobileMoney,
        paid_on: NaiveDate::from_ymd_opt(2024 + i32::try_from(month / 12).unwrap(), month % 12 + 1, 1).unwrap(),
    }
}

async fn append_all(appender: &mut Appender, units: &[AppendUnit]) {
    for outcome in appender.append(units).await.unwrap() {
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "bench command refused: {outcome:?}");
    }
}

async fn run(name: &str, url: &str, events: usize) {
    println!("== {name}");
    let keys = Arc::new(ledger_test_support::test_keys());
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let mut appender = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let setup: Vec<AppendUnit> = setup_commands().into_iter().map(unit).collect();
    append_all(&mut appender, &setup).await;
    let started = Instant::now();
    let mut next = setup.len();
    while next < events {
        let count = BATCH_UNITS.min(events - next);
        let units: Vec<AppendUnit> = (next..next + count).map(|index| unit(payment(&keys, index))).collect();
        append_all(&mut appender, &units).await;
        next += count;
    }
    let (head, _) = store.head().await.unwrap();
    println!("filled to {head} events in {:.1} s", started.elapsed().as_secs_f64());

    let organisation = ReportingOrg::parse("XM-DAC-47066", "International Organization for Migration", "40").unwrap();
    let today = Utc::now().date_naive();
    let request = IatiRequest { programme: Some(ProgrammeCode::parse("BENCH").unwrap()), donor: None, until: head, day: today };
    let started = Instant::now();
    let file = iati_file(&store, &organisation, &request).await.unwrap();
    let transactions = String::from_utf8_lossy(&file).matches("<transaction>").count();
    println!(
        "IATI file of {head} events:      {:.2} s ({} bytes, {transactions} transactions)",
        started.elapsed().as_secs_f64(),
        file.len()
    );
    let period = Period {
        programme: ProgrammeCode::parse("BENCH").unwrap(),
        donor: DonorCode::parse("EU-BENCH").unwrap(),
        from: today,
        to: today,
    };
    let started = Instant::now();
    let statement = make_statement(&store, &period).await.unwrap();
    let csv = ledger_api::reports::statement_files::to_csv(&statement).unwrap();
    let csv_seconds = started.elapsed().as_secs_f64();
    let xlsx = ledger_api::reports::statement_files::to_xlsx(&statement).unwrap();
    println!("statement of {head} events:     {csv_seconds:.2} s (CSV {} bytes; XLSX {} bytes)", csv.len(), xlsx.len());
    store.pool().close().await;
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("LEDGER_BENCH_EVENTS").ok().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let wanted = ledger_test_support::bench_backend_wanted;
    if wanted("sqlite") {
        let directory = std::env::temp_dir().join(format!("ledger-reports-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        run("SQLite", &format!("sqlite://{}", directory.join("bench.db").display()), events).await;
        std::fs::remove_dir_all(&directory).unwrap();
    }
    match std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) = ledger_test_support::create_postgres_database(&server_url, "ledger_reports_bench").await.unwrap();
            run("PostgreSQL", &url, events).await;
            ledger_test_support::drop_postgres_database(&server_url, &name).await.unwrap();
        }
        Ok(_) => {}
        Err(_) => println!("== PostgreSQL: skipped (set LEDGER_BENCH_POSTGRES_URL)"),
    }
}
