//! How long the reports take on a large ledger: the IATI file and a
//! financial statement of a programme of `LEDGER_BENCH_EVENTS` events
//! (default 1,000,000): the benches' large ledger
//! (`ledger_test_support::large_ledger`), and the donors' web page of it.
//! On SQLite and, when `LEDGER_BENCH_POSTGRES_URL` names a server, on
//! PostgreSQL. Prints figures.
//!
//!     cargo bench -p ledger-api --bench reports [-- sqlite|postgres]

use std::sync::Arc;
use std::time::Instant;

use chrono::Utc;
use ledger_api::http::reports::make_statement;
use ledger_api::reports::iati::{IatiRequest, ReportingOrg, iati_file};
use ledger_api::reports::statement::Period;
use ledger_core::domain::{DonorCode, ProgrammeCode};
use ledger_core::store::{AppendUnit, Appender, Store};
use ledger_test_support::large_ledger;
use projections::LedgerProjector;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

async fn run(name: &str, url: &str, events: usize) {
    println!("== {name}");
    let keys = Arc::new(ledger_test_support::test_keys());
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let mut appender = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let setup: Vec<AppendUnit> = large_ledger::setup_commands().into_iter().map(large_ledger::unit).collect();
    large_ledger::append_all(&mut appender, &setup).await;
    let elapsed = large_ledger::fill(&mut appender, &keys, setup.len(), events).await;
    let (head, _) = store.head().await.unwrap();
    println!("filled to {head} events in {:.1} s", elapsed.as_secs_f64());

    let organisation = ReportingOrg::parse("XM-DAC-47066", "International Organization for Migration", "40").unwrap();
    let today = Utc::now().date_naive();
    let request = IatiRequest {
        programme: Some(ProgrammeCode::parse(large_ledger::PROGRAMME).unwrap()),
        donor: None,
        until: head,
        day: today,
    };
    let started = Instant::now();
    let file = iati_file(&store, &organisation, &request).await.unwrap();
    let transactions = String::from_utf8_lossy(&file).matches("<transaction>").count();
    println!(
        "IATI file of {head} events:      {:.2} s ({} bytes, {transactions} transactions)",
        started.elapsed().as_secs_f64(),
        file.len()
    );
    let period = Period {
        programme: ProgrammeCode::parse(large_ledger::PROGRAMME).unwrap(),
        donor: DonorCode::parse(large_ledger::DONOR).unwrap(),
        from: today,
        to: today,
    };
    let started = Instant::now();
    let statement = make_statement(&store, &period).await.unwrap();
    let csv = ledger_api::reports::statement_files::to_csv(&statement).unwrap();
    let csv_seconds = started.elapsed().as_secs_f64();
    let xlsx = ledger_api::reports::statement_files::to_xlsx(&statement).unwrap();
    println!("statement of {head} events:     {csv_seconds:.2} s (CSV {} bytes; XLSX {} bytes)", csv.len(), xlsx.len());
    page(url, head).await;
    store.pool().close().await;
}

/// The donors' page (`GET /page/programmes`) of the same ledger, through the
/// real server, with a checkpoint of every event: for an auditor (live
/// figures), and for the donor (figures folded to the end of the closed
/// day, the server's clock a day ahead), first and then from the fold the
/// server keeps. The donor's token is made after the server started, so
/// that its first request folds the day itself. Then a second server starts
/// with the token on record: it folds the day ahead, and the donor's first
/// request, sent once that fold had time to end, is answered from it.
async fn page(url: &str, head: u64) {
    let ledger = ledger_api::config::Ledger::open_with_keys(url, ledger_test_support::test_keys()).await.unwrap();
    let started = Instant::now();
    ledger_api::audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
    println!("checkpoint of {head} events:    {:.2} s", started.elapsed().as_secs_f64());
    let auditor =
        ledger_api::tokens::create(&ledger.store, ledger_api::tokens::Role::Auditor, None, "bench-auditor").await.unwrap();
    let (address, stop, server) = start_server(ledger.clone()).await;
    let client = reqwest::Client::new();
    time_page(&client, address, &auditor, head, "auditor").await;
    // Made once the server's start is over: its first look found no donor.
    let donor =
        ledger_api::tokens::create(&ledger.store, ledger_api::tokens::Role::Donor, Some(large_ledger::DONOR), "bench-donor")
            .await
            .unwrap();
    let before = ledger_test_support::resident_megabytes();
    let cold = time_page(&client, address, &donor, head, "donor, first").await;
    // The fold stays in the server's cache for the rest of the day.
    println!(
        "memory of the server with the fold kept: {before:.0} MB before, {:.0} MB after",
        ledger_test_support::resident_megabytes()
    );
    time_page(&client, address, &donor, head, "donor, again").await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
    let (address, stop, server) = start_server(ledger).await;
    tokio::time::sleep(std::time::Duration::from_secs_f64(cold * 2.0 + 5.0)).await;
    time_page(&client, address, &donor, head, "donor, first after a start that folded the day ahead").await;
    let _ = stop.send(());
    server.await.unwrap().unwrap();
}

type Serving = tokio::task::JoinHandle<anyhow::Result<()>>;

/// `ledger serve` on 127.0.0.1, its clock a day ahead.
async fn start_server(ledger: ledger_api::config::Ledger) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>, Serving) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let clock = ledger_api::http::as_of::Clock::days_ahead(1);
    let server = tokio::spawn(ledger_api::http::serve_on_with_clock(listener, ledger, None, clock, async move {
        let _ = stopped.await;
    }));
    (address, stop, server)
}

/// Times one page request; prints and returns the seconds.
async fn time_page(client: &reqwest::Client, address: std::net::SocketAddr, token: &str, head: u64, who: &str) -> f64 {
    let started = Instant::now();
    let answer = client.get(format!("http://{address}/page/programmes")).bearer_auth(token).send().await.unwrap();
    assert_eq!(answer.status(), 200);
    let html = answer.text().await.unwrap();
    assert!(html.contains("data-programme=\"BENCH\"") && html.contains("check-button"), "the page shows the programme");
    let elapsed = started.elapsed().as_secs_f64();
    println!("page of {head} events ({who}): {elapsed:.2} s ({} bytes)", html.len());
    elapsed
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
