//! How long a payment cycle's two large requests take over HTTP, through
//! the server `ledger serve` runs: importing, validating and holding a
//! list of `LEDGER_BENCH_ROWS` rows (default 10,000) as CSV, and reconciling
//! a confirmation file of as many rows (one in ten failed, one in ten
//! partly delivered). On SQLite and, when `LEDGER_BENCH_POSTGRES_URL` names
//! a server, on PostgreSQL. Prints figures; the target is under a second each.
//!
//!     cargo bench -p ledger-api --bench payment_lists [-- sqlite|postgres]

use std::time::{Duration, Instant};

use chrono::{NaiveDate, Utc};
use ledger_api::config::Ledger;
use ledger_api::tokens::{self, Role};
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode};
use ledger_core::store::{AppendUnit, UnitOutcome};
use rust_decimal::Decimal;
use tokio::net::TcpListener;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long the bench waits for one answer.
const CLIENT_TIMEOUT_MS: u64 = 120_000;

fn day(text: &str) -> NaiveDate {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap()
}

fn setup_commands() -> Vec<Command> {
    let programme = ProgrammeCode::parse("BENCH").unwrap();
    let donor = DonorCode::parse("EU-BENCH").unwrap();
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
            countries: vec![CountryCode::parse("MA").unwrap()],
            implementer: "IOM".into(),
            starts_on: day("2024-01-01"),
            ends_on: day("2099-12-31"),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: programme.clone(),
            donor: donor.clone(),
            amount: Decimal::new(900_000_000, 0),
            currency: None,
            reference: "BENCH".into(),
            committed_on: day("2024-01-01"),
        },
        Command::AllocateBudget {
            programme,
            donor,
            country: CountryCode::parse("MA").unwrap(),
            amount: Decimal::new(900_000_000, 0),
            currency: None,
        },
    ]
}

fn list_file(rows: usize) -> String {
    let mut file = String::from("case_id,amount,paid_amount,paid_currency,method,row_reference\n");
    for row in 0..rows {
        file.push_str(&format!("MA-BENCH-{row:06},350.00,3815.00,MAD,mobile_money,bench {row}\n"));
    }
    file
}

fn confirmation_file(instructions: &str, today: NaiveDate) -> String {
    let mut file = String::from("reference,status,delivered_amount,delivered_on,provider_txn_id\n");
    for (index, line) in instructions.lines().skip(1).enumerate() {
        let reference = line.split(',').next().unwrap();
        let (status, amount) = match index % 10 {
            0 => ("failed", ""),
            1 => ("delivered", "1907.50"),
            _ => ("delivered", "3815.00"),
        };
        file.push_str(&format!("{reference},{status},{amount},{today},TXN-{index}\n"));
    }
    file
}

struct Client {
    http: reqwest::Client,
    base_url: String,
}

impl Client {
    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        let answer = request.send().await.unwrap();
        (answer.status().as_u16(), answer.text().await.unwrap())
    }

    fn post(&self, token: &str, path: &str) -> reqwest::RequestBuilder {
        self.http.post(format!("{}{path}", self.base_url)).bearer_auth(token)
    }
}

async fn run(name: &str, url: &str, rows: usize) {
    println!("== {name}, {rows} rows");
    let ledger = Ledger::open_with_keys(url, ledger_test_support::test_keys()).await.unwrap();
    let units: Vec<AppendUnit> = setup_commands()
        .into_iter()
        .map(|command| AppendUnit { actor: "bench".into(), commands: vec![command], idempotency: None, token_hash: None })
        .collect();
    for outcome in ledger.appender().append(&units).await.unwrap() {
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "set-up refused: {outcome:?}");
    }
    let importer = tokens::create(&ledger.store, Role::FinanceOfficer, None, "importer").await.unwrap();
    let approver = tokens::create(&ledger.store, Role::FinanceOfficer, None, "approver").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(ledger_api::http::serve_on(listener, ledger.clone(), None, async move {
        let _ = stopped.await;
    }));
    let client =
        Client { http: reqwest::Client::builder().timeout(Duration::from_millis(CLIENT_TIMEOUT_MS)).build().unwrap(), base_url };
    let today = Utc::now().date_naive();

    let file = list_file(rows);
    let path = format!("/v1/payment-lists?programme=BENCH&donor=EU-BENCH&country=MA&planned_on={today}");
    let started = Instant::now();
    let (status, body) = client.send(client.post(&importer, &path).header("content-type", "text/csv").body(file.clone())).await;
    let import_seconds = started.elapsed().as_secs_f64();
    assert_eq!(status, 201, "{body}");
    println!("import, validate and hold:  {import_seconds:.3} s ({} bytes)", file.len());
    let id = serde_json::from_str::<serde_json::Value>(&body).unwrap()["id"].as_str().unwrap().to_string();

    let (status, body) = client.send(client.post(&approver, &format!("/v1/payment-lists/{id}/approvals"))).await;
    assert_eq!(status, 201, "{body}");
    let started = Instant::now();
    let (status, body) = client.send(client.post(&importer, &format!("/v1/payment-lists/{id}/release"))).await;
    assert_eq!(status, 201, "{body}");
    let request = client.http.get(format!("{}/v1/payment-lists/{id}/instructions", client.base_url)).bearer_auth(&importer);
    let (status, instructions) = client.send(request).await;
    assert_eq!(status, 200, "{instructions}");
    println!("release and instructions:   {:.3} s", started.elapsed().as_secs_f64());

    let confirmation = confirmation_file(&instructions, today);
    let started = Instant::now();
    let path = format!("/v1/payment-lists/{id}/confirmations");
    let (status, body) = client.send(client.post(&importer, &path).header("content-type", "text/csv").body(confirmation)).await;
    let confirm_seconds = started.elapsed().as_secs_f64();
    assert_eq!(status, 201, "{}", &body[..body.len().min(2_000)]);
    println!("reconcile the confirmation: {confirm_seconds:.3} s");
    let _ = stop.send(());
    serving.await.unwrap().unwrap();
    ledger.store.pool().close().await;
}

#[tokio::main]
async fn main() {
    let rows: usize = std::env::var("LEDGER_BENCH_ROWS").ok().and_then(|text| text.parse().ok()).unwrap_or(10_000);
    let wanted = ledger_test_support::bench_backend_wanted;
    if wanted("sqlite") {
        let directory = std::env::temp_dir().join(format!("ledger-payment-lists-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        run("SQLite", &format!("sqlite://{}", directory.join("bench.db").display()), rows).await;
        std::fs::remove_dir_all(&directory).unwrap();
    }
    match std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) =
                ledger_test_support::create_postgres_database(&server_url, "ledger_payment_lists_bench").await.unwrap();
            run("PostgreSQL", &url, rows).await;
            ledger_test_support::drop_postgres_database(&server_url, &name).await.unwrap();
        }
        Ok(_) => {}
        Err(_) => println!("== PostgreSQL: skipped (set LEDGER_BENCH_POSTGRES_URL)"),
    }
}
