//! A payment cycle at the store, on SQLite and, when
//! `LEDGER_BENCH_POSTGRES_URL` names a server, on PostgreSQL: importing,
//! validating and holding a 10,000-row list in one append, and reconciling
//! a 10,000-row confirmation (delivered, partly delivered and failed rows:
//! one event per delivered row, the confirmation and the closing) in one
//! append. Target: under one second each. Then the cost of reloading the
//! decision state after another server's append, with the closed lists
//! read in full (a new appender) and kept (an appender that knew them).
//! Prints figures.
//!
//!     cargo bench -p projections --bench payment_lists
//!     LEDGER_BENCH_POSTGRES_URL=postgres://postgres@127.0.0.1/test cargo bench -p projections --bench payment_lists
//!
//! `cargo bench -p projections --bench payment_lists -- postgres` runs only
//! the backends named (`sqlite`, `postgres`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use ledger_core::domain::payment_lists::{Confirmation, Delivery, PaymentListRow};
use ledger_core::domain::types::PaymentMethod;
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, Store, UnitOutcome};
use projections::LedgerProjector;
use rust_decimal::Decimal;
use uuid::Uuid;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Rows of the list and of its confirmation file.
const LIST_ROWS: u32 = 10_000;
/// Of which failed, and partly delivered (the rest delivered in full).
const FAILED_ROWS: u32 = 500;
const PARTLY_DELIVERED_ROWS: u32 = 500;
/// Cycles measured per backend (each on a new list).
const CYCLES: u32 = 3;

fn unit(actor: &str, command: Command) -> AppendUnit {
    AppendUnit { actor: actor.to_string(), commands: vec![command], idempotency: None, token_hash: None }
}

fn programme() -> ProgrammeCode {
    ProgrammeCode::parse("BENCH").unwrap()
}

fn donor() -> DonorCode {
    DonorCode::parse("EU-BENCH").unwrap()
}

fn country() -> CountryCode {
    CountryCode::parse("MA").unwrap()
}

fn day() -> NaiveDate {
    NaiveDate::from_ymd_opt(2025, 6, 1).unwrap()
}

fn setup_commands() -> Vec<Command> {
    vec![
        Command::RegisterDonor { code: donor(), name: "Bench donor".into(), kind: "eu_instrument".into(), iati_identifier: None },
        Command::RegisterProgramme {
            code: programme(),
            name: "Bench programme".into(),
            currency: Currency::parse("EUR").unwrap(),
            countries: vec![country()],
            implementer: "IOM".into(),
            starts_on: NaiveDate::from_ymd_opt(2025, 1, 1).unwrap(),
            ends_on: NaiveDate::from_ymd_opt(2030, 12, 31).unwrap(),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: programme(),
            donor: donor(),
            amount: Decimal::new(900_000_000, 0),
            currency: None,
            reference: "BENCH".into(),
            committed_on: day(),
        },
        Command::AllocateBudget {
            programme: programme(),
            donor: donor(),
            country: country(),
            amount: Decimal::new(900_000_000, 0),
            currency: None,
        },
    ]
}

fn rows(keys: &KeyRing, cycle: u32) -> Vec<PaymentListRow> {
    (1..=LIST_ROWS)
        .map(|index| PaymentListRow {
            row: index + 1,
            beneficiary_ref: keys.pseudonymise(&format!("MA-{cycle}-{index}")).unwrap(),
            amount: Decimal::new(35_000, 2),
            paid_amount: Decimal::new(381_500, 2),
            paid_currency: Currency::parse("MAD").unwrap(),
            method: PaymentMethod::MobileMoney,
            row_reference: None,
        })
        .collect()
}

fn payment(keys: &KeyRing, number: u32) -> Command {
    Command::PayCash {
        programme: programme(),
        donor: donor(),
        country: country(),
        beneficiary: keys.pseudonymise(&format!("MA-RELOAD-{number}")).unwrap(),
        amount: Decimal::new(35_000, 2),
        currency: None,
        paid_amount: Decimal::new(381_500, 2),
        paid_currency: Currency::parse("MAD").unwrap(),
        method: PaymentMethod::MobileMoney,
        paid_on: day(),
    }
}

fn reference(list: Uuid, index: u32) -> String {
    format!("R{}{index:08}", list.simple())
}

fn confirmations(list: Uuid) -> Vec<Confirmation> {
    (0..LIST_ROWS)
        .map(|index| {
            let delivery = if index < FAILED_ROWS {
                Delivery::Failed
            } else if index < FAILED_ROWS + PARTLY_DELIVERED_ROWS {
                Delivery::Delivered { amount: Decimal::new(200_000, 2) }
            } else {
                Delivery::Delivered { amount: Decimal::new(381_500, 2) }
            };
            Confirmation {
                line: index + 2,
                reference: reference(list, index),
                delivery,
                delivered_on: day(),
                provider_transaction_id: format!("TX-{index}"),
            }
        })
        .collect()
}

/// Appends one unit that must record `events` events; returns the time.
async fn timed(appender: &mut Appender, unit: AppendUnit, events: usize) -> Duration {
    let started = Instant::now();
    let outcome = appender.append(&[unit]).await.unwrap().remove(0);
    let elapsed = started.elapsed();
    match outcome {
        UnitOutcome::Appended(receipts) => assert_eq!(receipts.len(), events),
        other => panic!("bench unit not appended: {other:?}"),
    }
    elapsed
}

async fn cycle(appender: &mut Appender, store: &Store, keys: &KeyRing, cycle: u32) -> (Duration, Duration) {
    let list = Uuid::now_v7();
    let import = Command::ImportPaymentList {
        list,
        by: "bench-importer".into(),
        programme: programme(),
        donor: donor(),
        country: country(),
        planned_on: day(),
        rows: rows(keys, cycle),
    };
    let imported = timed(appender, unit("bench-importer", import), 1).await;
    let mut connection = store.pool().acquire().await.unwrap();
    let summary = projections::payment_lists::payment_list_summary(&mut connection, list).await.unwrap().unwrap();
    drop(connection);
    let approve = Command::ApprovePaymentList { list, by: "bench-approver".into(), content_hash: summary.content_hash };
    timed(appender, unit("bench-approver", approve), 1).await;
    let references = (0..LIST_ROWS).map(|index| reference(list, index)).collect();
    let release = Command::ReleasePaymentList { list, by: "bench-importer".into(), references };
    timed(appender, unit("bench-importer", release), 1).await;
    let confirm = Command::ConfirmPayments { list, by: "bench-importer".into(), confirmations: confirmations(list) };
    let delivered_events = (LIST_ROWS - FAILED_ROWS) as usize;
    let reconciled = timed(appender, unit("bench-importer", confirm), delivered_events + 2).await;
    (imported, reconciled)
}

async fn run(name: &str, url: &str) {
    println!("== {name}");
    let keys = Arc::new(ledger_test_support::test_keys());
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let mut appender = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let setup: Vec<AppendUnit> = setup_commands().into_iter().map(|command| unit("bench-admin", command)).collect();
    for outcome in appender.append(&setup).await.unwrap() {
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "{outcome:?}");
    }
    for number in 1..=CYCLES {
        let (imported, reconciled) = cycle(&mut appender, &store, &keys, number).await;
        println!(
            "cycle {number}: import+hold of {LIST_ROWS} rows {:.3} s; reconciliation of {LIST_ROWS} rows ({FAILED_ROWS} failed, {PARTLY_DELIVERED_ROWS} partly delivered) {:.3} s",
            imported.as_secs_f64(),
            reconciled.as_secs_f64()
        );
    }
    // Another server's first append reads every list from the tables; this
    // appender, which closed them itself, then reloads without their rows.
    let mut other = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let read_in_full = timed(&mut other, unit("bench-importer", payment(&keys, 1)), 1).await;
    let kept = timed(&mut appender, unit("bench-importer", payment(&keys, 2)), 1).await;
    println!(
        "one payment after another server's append, {CYCLES} closed lists of {LIST_ROWS} rows: \
         state read in full {:.3} s; closed lists kept {:.3} s",
        read_in_full.as_secs_f64(),
        kept.as_secs_f64()
    );
    let started = Instant::now();
    let report = projections::rebuild::check(&store, |_| {}).await.unwrap();
    assert_eq!(report.difference, None);
    println!("rebuild --check:  {:.2} s", started.elapsed().as_secs_f64());
    let verified = store.verify_chain(Some(&keys), |_| {}).await.unwrap();
    assert!(verified.is_valid());
    store.pool().close().await;
}

#[tokio::main]
async fn main() {
    let wanted = ledger_test_support::bench_backend_wanted;
    if wanted("sqlite") {
        let directory = std::env::temp_dir().join(format!("ledger-bench-lists-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        run("SQLite", &format!("sqlite://{}", directory.join("bench.db").display())).await;
        std::fs::remove_dir_all(&directory).unwrap();
    }
    match std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) = ledger_test_support::create_postgres_database(&server_url, "ledger_bench_lists").await.unwrap();
            run("PostgreSQL", &url).await;
            ledger_test_support::drop_postgres_database(&server_url, &name).await.unwrap();
        }
        Ok(_) => {}
        Err(_) => println!("== PostgreSQL: skipped (set LEDGER_BENCH_POSTGRES_URL)"),
    }
}
