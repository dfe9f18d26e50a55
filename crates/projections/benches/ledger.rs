//! Append throughput, balance reads and rebuild time, on SQLite and, when
//! `LEDGER_BENCH_POSTGRES_URL` names a server, on PostgreSQL. Prints figures.
//!
//!     cargo bench -p projections --bench ledger
//!     LEDGER_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/test cargo bench -p projections --bench ledger
//!
//! `LEDGER_BENCH_EVENTS` sets the size of the large ledger (default 1,000,000).
//! `cargo bench -p projections --bench ledger -- postgres` runs only the
//! backends named (`sqlite`, `postgres`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ledger_core::domain::types::PaymentMethod;
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, Store, UnitOutcome};
use projections::LedgerProjector;
use rust_decimal::Decimal;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

const SINGLE_EVENTS: usize = 2_000;
const BATCH_UNITS: usize = 1_000;
const SMALL_LEDGER_EVENTS: usize = 10_000;
const BALANCE_READS: u32 = 2_000;
const DISTINCT_RETURNEES: usize = 50_000;

fn keys() -> Arc<KeyRing> {
    Arc::new(ledger_test_support::test_keys())
}

fn unit(command: Command) -> AppendUnit {
    AppendUnit { actor: "bench".to_string(), commands: vec![command], idempotency: None, token_hash: None }
}

fn setup_commands() -> Vec<Command> {
    let programme = ProgrammeCode::parse("BENCH").unwrap();
    let donor = DonorCode::parse("EU-BENCH").unwrap();
    let country = CountryCode::parse("MA").unwrap();
    vec![
        Command::RegisterDonor {
            code: donor.clone(),
            name: "Bench donor".into(),
            kind: "eu_instrument".into(),
            iati_identifier: None,
        },
        Command::RegisterProgramme {
            code: programme.clone(),
            name: "Bench programme".into(),
            currency: Currency::parse("EUR").unwrap(),
            countries: vec![country],
            implementer: "IOM".into(),
            starts_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            ends_on: NaiveDate::from_ymd_opt(2030, 12, 31).unwrap(),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(900_000_000_000, 0),
            currency: None,
            reference: "BENCH".into(),
            committed_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
        },
        Command::AllocateBudget { programme, donor, country, amount: Decimal::new(900_000_000_000, 0), currency: None },
    ]
}

fn payment(keys: &KeyRing, index: usize) -> Command {
    Command::PayCash {
        programme: ProgrammeCode::parse("BENCH").unwrap(),
        donor: DonorCode::parse("EU-BENCH").unwrap(),
        country: CountryCode::parse("MA").unwrap(),
        beneficiary: keys.pseudonymise(&format!("MA-{}", index % DISTINCT_RETURNEES)).unwrap(),
        amount: Decimal::new(35_000, 2),
        currency: None,
        paid_amount: Decimal::new(381_500, 2),
        paid_currency: Currency::parse("MAD").unwrap(),
        method: PaymentMethod::MobileMoney,
        paid_on: NaiveDate::from_ymd_opt(2025, 6, 1).unwrap(),
    }
}

async fn open_store(url: &str) -> Store {
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    store
}

async fn append_all(appender: &mut Appender, units: &[AppendUnit]) {
    for outcome in appender.append(units).await.unwrap() {
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "bench command refused: {outcome:?}");
    }
}

fn rate(events: usize, elapsed: Duration) -> String {
    format!("{:>9.0} events/s ({events} events in {:.2} s)", events as f64 / elapsed.as_secs_f64(), elapsed.as_secs_f64())
}

/// Fills the ledger up to `target` events in batches; returns the time taken.
async fn fill(appender: &mut Appender, keys: &KeyRing, from: usize, target: usize) -> Duration {
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

async fn time_balance_reads(store: &Store) -> Duration {
    let started = Instant::now();
    for _ in 0..BALANCE_READS {
        let balance = projections::balances::programme_balance(store, "BENCH").await.unwrap();
        assert!(balance.as_of_seq > 0);
    }
    started.elapsed() / BALANCE_READS
}

async fn run(name: &str, url: &str, large_events: usize) {
    println!("== {name}");
    let keys = keys();
    let store = open_store(url).await;
    let mut appender = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let setup: Vec<AppendUnit> = setup_commands().into_iter().map(unit).collect();
    append_all(&mut appender, &setup).await;

    let started = Instant::now();
    for index in 0..SINGLE_EVENTS {
        append_all(&mut appender, &[unit(payment(&keys, index))]).await;
    }
    println!("append, one event per transaction:     {}", rate(SINGLE_EVENTS, started.elapsed()));

    let batched = SMALL_LEDGER_EVENTS - SINGLE_EVENTS - setup.len();
    let elapsed = fill(&mut appender, &keys, SINGLE_EVENTS, SINGLE_EVENTS + batched).await;
    println!("append, {BATCH_UNITS} events per transaction: {}", rate(batched, elapsed));
    let (head, _) = store.head().await.unwrap();
    println!("balance read at {head:>8} events:       {:?} per read", time_balance_reads(&store).await);

    let elapsed = fill(&mut appender, &keys, SMALL_LEDGER_EVENTS, large_events).await;
    println!("filled to {large_events} events:          {}", rate(large_events - SMALL_LEDGER_EVENTS, elapsed));
    let (head, _) = store.head().await.unwrap();
    println!("balance read at {head:>8} events:       {:?} per read", time_balance_reads(&store).await);

    let started = Instant::now();
    let events = projections::rebuild::rebuild(&store, |_| {}).await.unwrap();
    println!("rebuild of {events} events:              {:.2} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let report = projections::rebuild::check(&store, |_| {}).await.unwrap();
    assert_eq!(report.difference, None);
    println!("rebuild --check of {events} events:      {:.2} s", started.elapsed().as_secs_f64());
    let started = Instant::now();
    let verified = store.verify_chain(Some(&keys), |_| {}).await.unwrap();
    assert!(verified.is_valid());
    println!("verify of {events} events:               {:.2} s", started.elapsed().as_secs_f64());
    store.pool().close().await;
}

#[tokio::main]
async fn main() {
    let large_events: usize = std::env::var("LEDGER_BENCH_EVENTS").ok().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let wanted = ledger_test_support::bench_backend_wanted;
    if wanted("sqlite") {
        let directory = std::env::temp_dir().join(format!("ledger-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        run("SQLite", &format!("sqlite://{}", directory.join("bench.db").display()), large_events).await;
        std::fs::remove_dir_all(&directory).unwrap();
    }
    match std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) = ledger_test_support::create_postgres_database(&server_url, "ledger_bench").await.unwrap();
            run("PostgreSQL", &url, large_events).await;
            ledger_test_support::drop_postgres_database(&server_url, &name).await.unwrap();
        }
        Ok(_) => {}
        Err(_) => println!("== PostgreSQL: skipped (set LEDGER_BENCH_POSTGRES_URL)"),
    }
}
