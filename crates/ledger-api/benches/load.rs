//! HTTP load bench: the real server in-process on 127.0.0.1:0 over a fresh
//! database, driven by concurrent keep-alive clients. Prints appends per
//! second and latency percentiles for single-event requests and for batches
//! of cash payments, then checks that the chain still verifies.
//!
//! `cargo bench -p ledger-api --bench load` runs on a fresh SQLite file; with
//! `LEDGER_BENCH_POSTGRES_URL=postgres://user@host:port/db` set it also runs
//! on a fresh database created on that server (and dropped afterwards).
//! Not a test: it asserts only that every request succeeded and the chain
//! verifies. On PostgreSQL it ends with a floor: how fast the server alone
//! copies the event rows the runs appended into a table with the events
//! table's indexes, in one statement with no client, no hashing and no
//! projections. No append path can write event rows faster than that on
//! the same machine, so the floor puts the runs' figures in proportion
//! whatever the machine's speed that day.
//!
//! After each run it prints what the writer did: its group commits (the
//! `append_batch` spans), the requests each carried, how long each took and
//! the share of the run the writer spent in them.
//!
//! `cargo bench -p ledger-api --bench load -- postgres` runs only the
//! backends named.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ledger_api::config::Ledger;
use ledger_api::http::serve_on;
use ledger_api::tokens::{self, Role};
use ledger_test_support::{create_postgres_database, drop_postgres_database, test_keys};
use serde_json::{Value, json};
use sqlx::Connection;
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tracing::span::{Attributes, Id};
use tracing_subscriber::Layer;
use tracing_subscriber::filter::Targets;
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// The environment variable naming the PostgreSQL server the bench may use.
const POSTGRES_URL_VARIABLE: &str = "LEDGER_BENCH_POSTGRES_URL";
/// Concurrent client tasks, each with its own requests in flight one at a time.
const CLIENT_TASKS: usize = 16;
/// Each run stops at its request count or after this long, whichever first.
const RUN_DURATION_MS: u64 = 20_000;
/// Requests of the single-event run, at most.
const SINGLE_REQUESTS_MAX: u64 = 20_000;
/// Requests of the batch run, at most.
const BATCH_REQUESTS_MAX: u64 = 2_000;
/// Cash payments per batch request.
const BATCH_EVENTS: usize = 100;
/// How long one request may take before the bench gives up.
const CLIENT_TIMEOUT_MS: u64 = 60_000;

const PROGRAMME: &str = "BENCH";
const DONOR: &str = "EU-BENCH";

/// What one run measured.
struct RunFigures {
    name: &'static str,
    requests: u64,
    events: u64,
    elapsed: Duration,
    latency_p50: Duration,
    latency_p99: Duration,
    head_seq: u64,
    group_commits: GroupCommits,
}

/// The writer's group commits during a run, from its `append_batch` spans.
#[derive(Clone, Copy, Debug)]
struct GroupCommits {
    count: u64,
    units: u64,
    busy: Duration,
}

static GROUP_COMMITS: Mutex<GroupCommits> = Mutex::new(GroupCommits { count: 0, units: 0, busy: Duration::ZERO });

/// When a group commit's span opened and how many requests it carries.
struct GroupCommitStart {
    at: Instant,
    units: u64,
}

/// Adds every closed `append_batch` span to `GROUP_COMMITS`.
struct GroupCommitLayer;

impl<S: tracing::Subscriber + for<'span> LookupSpan<'span>> Layer<S> for GroupCommitLayer {
    fn on_new_span(&self, attributes: &Attributes<'_>, id: &Id, context: Context<'_, S>) {
        if attributes.metadata().name() != "append_batch" {
            return;
        }
        let mut units = UnitsField(0);
        attributes.record(&mut units);
        if let Some(span) = context.span(id) {
            span.extensions_mut().insert(GroupCommitStart { at: Instant::now(), units: units.0 });
        }
    }

    fn on_close(&self, id: Id, context: Context<'_, S>) {
        let Some(span) = context.span(&id) else { return };
        if let Some(start) = span.extensions().get::<GroupCommitStart>() {
            let mut commits = GROUP_COMMITS.lock().expect("the statistics lock is never poisoned");
            commits.count += 1;
            commits.units += start.units;
            commits.busy += start.at.elapsed();
        }
    }
}

/// Reads the `units` field of a span.
struct UnitsField(u64);

impl tracing::field::Visit for UnitsField {
    fn record_u64(&mut self, field: &tracing::field::Field, value: u64) {
        if field.name() == "units" {
            self.0 = value;
        }
    }

    fn record_debug(&mut self, _: &tracing::field::Field, _: &dyn std::fmt::Debug) {}
}

/// Takes the group commits counted since the last call.
fn take_group_commits() -> GroupCommits {
    let mut commits = GROUP_COMMITS.lock().expect("the statistics lock is never poisoned");
    std::mem::replace(&mut *commits, GroupCommits { count: 0, units: 0, busy: Duration::ZERO })
}

/// One line on a run's group commits.
fn describe_group_commits(run: &RunFigures) -> String {
    let commits = run.group_commits;
    let count = commits.count.max(1) as f64;
    format!(
        "{} group commits, {:.1} requests and {:.2} ms each, writer busy {:.0}% of the run",
        commits.count,
        commits.units as f64 / count,
        commits.busy.as_secs_f64() * 1e3 / count,
        100.0 * commits.busy.as_secs_f64() / run.elapsed.as_secs_f64()
    )
}

/// A server started for the bench and the means to stop it.
struct BenchServer {
    base_url: String,
    finance_officer: String,
    auditor: String,
    shutdown: oneshot::Sender<()>,
    serving: tokio::task::JoinHandle<anyhow::Result<()>>,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let writer_spans = Targets::new().with_target("ledger_core::store::writer", tracing::Level::INFO);
    tracing_subscriber::registry().with(GroupCommitLayer.with_filter(writer_spans)).init();
    println!("load bench: {CLIENT_TASKS} client tasks, runs bounded by {RUN_DURATION_MS} ms");
    println!("load average before: {}", load_average());
    let mut all_figures = Vec::new();
    let wanted = ledger_test_support::bench_backend_wanted;

    if wanted("sqlite") {
        all_figures.push(("sqlite", bench_sqlite().await?));
    }
    let mut floor = None;
    match std::env::var(POSTGRES_URL_VARIABLE) {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) = create_postgres_database(&server_url, "ledger_bench").await?;
            let result = bench_backend("postgres", &url).await;
            if result.is_ok() {
                floor = Some(event_rows_floor(&url).await);
            }
            drop_postgres_database(&server_url, &name).await?;
            all_figures.push(("postgres", result?));
        }
        Ok(_) => {}
        Err(_) => println!("postgres skipped: {POSTGRES_URL_VARIABLE} is not set"),
    }
    print_figures(&all_figures);
    if let Some(floor) = floor {
        let (rows, elapsed) = floor?;
        println!(
            "postgres floor: the server alone copies the {rows} event rows into a table like events (same indexes) \
             in {:.2} s, {:.0} rows/s",
            elapsed.as_secs_f64(),
            rows as f64 / elapsed.as_secs_f64()
        );
    }
    Ok(())
}

/// Copies every event row into a new table with the events table's columns
/// and indexes, in one statement on the server, and times it.
async fn event_rows_floor(url: &str) -> anyhow::Result<(u64, Duration)> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    sqlx::query("CREATE TABLE floor_events (LIKE events INCLUDING INDEXES)").execute(&mut connection).await?;
    let started = Instant::now();
    let copied = sqlx::query("INSERT INTO floor_events SELECT * FROM events").execute(&mut connection).await?;
    let elapsed = started.elapsed();
    sqlx::query("DROP TABLE floor_events").execute(&mut connection).await?;
    connection.close().await?;
    Ok((copied.rows_affected(), elapsed))
}

/// Both runs on a fresh SQLite file, removed afterwards.
async fn bench_sqlite() -> anyhow::Result<Vec<RunFigures>> {
    let directory = std::env::temp_dir().join(format!("ledger-bench-{}", uuid::Uuid::now_v7().simple()));
    std::fs::create_dir_all(&directory)?;
    let sqlite_url = format!("sqlite://{}", directory.join("ledger.db").display());
    let result = bench_backend("sqlite", &sqlite_url).await;
    let _ = std::fs::remove_dir_all(&directory);
    result
}

fn print_figures(all_figures: &[(&str, Vec<RunFigures>)]) {
    println!();
    println!(
        "{:<9} {:<22} {:>9} {:>9} {:>9} {:>11} {:>12} {:>10} {:>10}",
        "backend", "run", "requests", "events", "seconds", "requests/s", "events/s", "p50 ms", "p99 ms"
    );
    for (backend, figures) in all_figures {
        for run in figures {
            let seconds = run.elapsed.as_secs_f64();
            println!(
                "{:<9} {:<22} {:>9} {:>9} {:>9.2} {:>11.0} {:>12.0} {:>10.2} {:>10.2}",
                backend,
                run.name,
                run.requests,
                run.events,
                seconds,
                run.requests as f64 / seconds,
                run.events as f64 / seconds,
                run.latency_p50.as_secs_f64() * 1e3,
                run.latency_p99.as_secs_f64() * 1e3,
            );
        }
    }
    println!("load average after: {}", load_average());
}

/// Both runs on one backend.
async fn bench_backend(backend: &'static str, url: &str) -> anyhow::Result<Vec<RunFigures>> {
    println!("\n[{backend}] preparing a fresh database");
    let server = start_server(url).await?;
    let client = reqwest::Client::builder()
        .timeout(Duration::from_millis(CLIENT_TIMEOUT_MS))
        .pool_max_idle_per_host(CLIENT_TASKS)
        .build()?;
    let mut figures = Vec::with_capacity(2);

    let single = run(&client, &server, "single cash payment", "/v1/payments/cash", SINGLE_REQUESTS_MAX, 1).await?;
    println!("[{backend}] single: chain verifies, head seq {}", single.head_seq);
    println!("[{backend}] single: {}", describe_group_commits(&single));
    figures.push(single);
    let batch = run(&client, &server, "batch of 100 payments", "/v1/batch", BATCH_REQUESTS_MAX, BATCH_EVENTS).await?;
    println!("[{backend}] batch: chain verifies, head seq {}", batch.head_seq);
    println!("[{backend}] batch: {}", describe_group_commits(&batch));
    figures.push(batch);

    drop(client);
    let _ = server.shutdown.send(());
    server.serving.await??;
    Ok(figures)
}

/// Starts the server, registers a donor and a programme, commits and
/// allocates a huge amount and creates the tokens the runs use.
async fn start_server(url: &str) -> anyhow::Result<BenchServer> {
    let ledger = Ledger::open_with_keys(url, test_keys()).await?;
    let admin = tokens::create(&ledger.store, Role::Admin, None, "bench-admin").await?;
    let finance_officer = tokens::create(&ledger.store, Role::FinanceOfficer, None, "bench-finance-officer").await?;
    let auditor = tokens::create(&ledger.store, Role::Auditor, None, "bench-auditor").await?;
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let base_url = format!("http://{}", listener.local_addr()?);
    let (shutdown, signal) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_on(listener, ledger, None, async move {
        let _ = signal.await;
    }));
    let client = reqwest::Client::new();
    let setup = [
        (&admin, "/v1/donors", json!({"code": DONOR, "name": "Bench donor", "kind": "eu_instrument"})),
        (
            &admin,
            "/v1/programmes",
            json!({"code": PROGRAMME, "name": "Bench programme", "currency": "EUR", "countries": ["MA"],
                "implementer": "IOM", "starts_on": "2023-01-01", "ends_on": "2030-12-31"}),
        ),
        (
            &finance_officer,
            "/v1/commitments",
            json!({"programme": PROGRAMME, "donor": DONOR, "amount": "900000000.00", "reference": "bench", "committed_on": "2023-01-10"}),
        ),
        (
            &finance_officer,
            "/v1/allocations",
            json!({"programme": PROGRAMME, "donor": DONOR, "country": "MA", "amount": "900000000.00"}),
        ),
    ];
    for (token, path, body) in setup {
        let response = client.post(format!("{base_url}{path}")).bearer_auth(token).json(&body).send().await?;
        anyhow::ensure!(
            response.status().as_u16() == 201,
            "set-up {path} answered {}: {}",
            response.status(),
            response.text().await?
        );
    }
    Ok(BenchServer { base_url, finance_officer, auditor, shutdown, serving })
}

fn cash_payment(case_id: &str) -> Value {
    json!({
        "programme": PROGRAMME,
        "donor": DONOR,
        "country": "MA",
        "case_id": case_id,
        "amount": "1.00",
        "paid_amount": "10.90",
        "paid_currency": "MAD",
        "method": "mobile_money",
        "paid_on": "2023-05-02",
    })
}

/// One run: `CLIENT_TASKS` tasks post to `path` until `requests_max`
/// requests are sent or `RUN_DURATION_MS` has passed; each request carries
/// `events_per_request` payments (a batch when more than one).
async fn run(
    client: &reqwest::Client,
    server: &BenchServer,
    name: &'static str,
    path: &str,
    requests_max: u64,
    events_per_request: usize,
) -> anyhow::Result<RunFigures> {
    let issued = Arc::new(AtomicU64::new(0));
    take_group_commits();
    let started = Instant::now();
    let deadline = started + Duration::from_millis(RUN_DURATION_MS);
    let url = format!("{}{path}", server.base_url);
    let mut tasks = tokio::task::JoinSet::new();
    for task in 0..CLIENT_TASKS {
        let (client, url, token, issued) = (client.clone(), url.clone(), server.finance_officer.clone(), issued.clone());
        tasks.spawn(async move {
            let mut latencies = Vec::new();
            loop {
                let number = issued.fetch_add(1, Ordering::Relaxed);
                if number >= requests_max || Instant::now() >= deadline {
                    return Ok::<_, anyhow::Error>(latencies);
                }
                let case = |index: usize| format!("BENCH-{name}-{task}-{number}-{index}").replace(' ', "-");
                let body = if events_per_request == 1 {
                    cash_payment(&case(0))
                } else {
                    let commands: Vec<Value> = (0..events_per_request)
                        .map(|index| {
                            let mut command = cash_payment(&case(index));
                            command["type"] = json!("cash_payment");
                            command
                        })
                        .collect();
                    json!({ "commands": commands })
                };
                let sent = Instant::now();
                let response = client.post(&url).bearer_auth(&token).json(&body).send().await?;
                let status = response.status().as_u16();
                let text = response.text().await?;
                anyhow::ensure!(status == 201, "{url} answered {status}: {text}");
                latencies.push(sent.elapsed());
            }
        });
    }
    let mut latencies = Vec::new();
    while let Some(result) = tasks.join_next().await {
        latencies.extend(result??);
    }
    let elapsed = started.elapsed();
    let group_commits = take_group_commits();
    latencies.sort_unstable();
    let requests = latencies.len() as u64;
    let verify: Value =
        client.get(format!("{}/v1/verify", server.base_url)).bearer_auth(&server.auditor).send().await?.json().await?;
    assert_eq!(verify["valid"], json!(true), "the chain verifies after {name}: {verify}");
    Ok(RunFigures {
        name,
        requests,
        events: requests * events_per_request as u64,
        elapsed,
        latency_p50: percentile(&latencies, 50),
        latency_p99: percentile(&latencies, 99),
        head_seq: verify["head_seq"].as_u64().unwrap_or_default(),
        group_commits,
    })
}

/// The `percent`th percentile of sorted latencies (nearest rank).
fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank - 1]
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|text| text.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".to_string())
}
