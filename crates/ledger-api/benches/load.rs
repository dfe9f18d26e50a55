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
//! copies the rows the runs appended to each table that gains a row per
//! cash payment (events, journal, assistance, reach) into a table with the
//! same indexes, one statement per table with no client, no hashing and
//! none of the summed rows; and the event rows again into a table keyed by
//! seq alone, which shows what the unique id, prev_hash and hash cost. No
//! append path can write those rows faster on the same machine, so the
//! floor puts the runs' figures in proportion whatever the machine's speed
//! that day.
//!
//! After each run it prints what the writer did: its group commits (the
//! `append_batch` spans), the requests each carried, how long each took and
//! the share of the run the writer spent in them; and where the machine's
//! CPU went (from `/proc`): the share used by this process (the server and
//! its clients), the share used elsewhere (PostgreSQL, on a quiet machine),
//! the idle share, the first two as CPU time per event, and the rate at
//! which that CPU time per event would keep every core busy.
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
    /// `None` where `/proc` cannot be read.
    cpu: Option<CpuUse>,
}

/// The tables a cash payment to a new returnee adds one row to.
const TABLES_WITH_A_ROW_PER_PAYMENT: [&str; 4] = ["events", "journal", "assistance", "reach"];

/// Clock ticks counted by the kernel: the whole machine's, and this process's.
#[derive(Clone, Copy, Debug)]
struct CpuTicks {
    machine_busy: u64,
    machine_idle: u64,
    process: u64,
}

impl CpuTicks {
    /// Read from `/proc/stat` and `/proc/self/stat`; `None` where there is no `/proc`.
    fn now() -> Option<CpuTicks> {
        let machine = std::fs::read_to_string("/proc/stat").ok()?;
        // cpu user nice system idle iowait irq softirq steal guest guest_nice
        let fields: Vec<u64> =
            machine.lines().next()?.split_whitespace().skip(1).take(8).map(|field| field.parse().ok()).collect::<Option<_>>()?;
        let [user, nice, system, idle, iowait, irq, softirq, steal] = fields.try_into().ok()?;
        let process = std::fs::read_to_string("/proc/self/stat").ok()?;
        // The fields after the command name's closing parenthesis, from the state (field 3) on.
        let after_name: Vec<&str> = process.rsplit_once(')')?.1.split_whitespace().collect();
        let user_time: u64 = after_name.get(11)?.parse().ok()?;
        let system_time: u64 = after_name.get(12)?.parse().ok()?;
        Some(CpuTicks {
            machine_busy: user + nice + system + irq + softirq + steal,
            machine_idle: idle + iowait,
            process: user_time + system_time,
        })
    }
}

/// Where the machine's CPU went during a run, as shares of all its cores' time.
#[derive(Clone, Copy, Debug)]
struct CpuUse {
    this_process: f64,
    elsewhere: f64,
    idle: f64,
}

impl CpuUse {
    fn between(before: Option<CpuTicks>, after: Option<CpuTicks>) -> Option<CpuUse> {
        let (before, after) = (before?, after?);
        let busy = after.machine_busy.saturating_sub(before.machine_busy) as f64;
        let idle = after.machine_idle.saturating_sub(before.machine_idle) as f64;
        let process = after.process.saturating_sub(before.process) as f64;
        let total = (busy + idle).max(1.0);
        Some(CpuUse { this_process: process / total, elsewhere: (busy - process).max(0.0) / total, idle: idle / total })
    }
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

/// One line on where the machine's CPU went during a run, and the rate at
/// which that CPU time per event would use every core.
fn describe_cpu(run: &RunFigures) -> String {
    let cores = std::thread::available_parallelism().map_or(1, |cores| cores.get()) as f64;
    // CPU time per event, in microseconds, of a share of all cores' time.
    let per_event = |share: f64| share * cores * run.elapsed.as_secs_f64() * 1e6 / run.events.max(1) as f64;
    let Some(cpu) = run.cpu else { return "CPU: /proc cannot be read here".to_string() };
    let busy_per_event = per_event(cpu.this_process + cpu.elsewhere);
    format!(
        "CPU of {cores:.0} cores: this process (server and clients) {:.0}%, {:.0} us an event; \
         elsewhere (the database server, the rest of the machine) {:.0}%, {:.0} us an event; idle {:.0}%; \
         all cores busy at that cost would be {:.0} events/s",
        100.0 * cpu.this_process,
        per_event(cpu.this_process),
        100.0 * cpu.elsewhere,
        per_event(cpu.elsewhere),
        100.0 * cpu.idle,
        cores * 1e6 / busy_per_event.max(f64::MIN_POSITIVE),
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
                floor = Some(rows_floor(&url).await);
            }
            drop_postgres_database(&server_url, &name).await?;
            all_figures.push(("postgres", result?));
        }
        Ok(_) => {}
        Err(_) => println!("postgres skipped: {POSTGRES_URL_VARIABLE} is not set"),
    }
    print_figures(&all_figures);
    if let Some(floor) = floor {
        print_floor(&floor?);
    }
    Ok(())
}

/// How long the server alone took to copy one table's rows.
struct TableFloor {
    /// What was copied: the table's name, or what differs from it.
    name: &'static str,
    rows: u64,
    elapsed: Duration,
}

impl TableFloor {
    fn per_row(&self) -> Duration {
        self.elapsed.div_f64(self.rows.max(1) as f64)
    }
}

/// The floors of one bench database: each table of
/// `TABLES_WITH_A_ROW_PER_PAYMENT` with its indexes, and the events table
/// keyed by seq alone (without its unique id, prev_hash and hash).
struct Floors {
    tables: Vec<TableFloor>,
    events_keyed_by_seq_alone: TableFloor,
}

/// Copies every row of each table of `TABLES_WITH_A_ROW_PER_PAYMENT` into a
/// new table with its columns and indexes, one statement on the server per
/// table, and times each; then the events again into a table keyed by seq
/// alone.
async fn rows_floor(url: &str) -> anyhow::Result<Floors> {
    let mut connection = sqlx::PgConnection::connect(url).await?;
    let mut tables = Vec::with_capacity(TABLES_WITH_A_ROW_PER_PAYMENT.len());
    for table in TABLES_WITH_A_ROW_PER_PAYMENT {
        tables.push(copy_rows(&mut connection, table, table, " INCLUDING INDEXES").await?);
    }
    let events_keyed_by_seq_alone =
        copy_rows(&mut connection, "events", "events, keyed by seq alone", ", PRIMARY KEY (seq)").await?;
    connection.close().await?;
    Ok(Floors { tables, events_keyed_by_seq_alone })
}

/// Creates `floor_<table>` like `table` (`shape` follows `LIKE <table>`:
/// which indexes it gets), times the copy of every row of `table` into it
/// and drops it.
async fn copy_rows(
    connection: &mut sqlx::PgConnection,
    table: &'static str,
    name: &'static str,
    shape: &str,
) -> anyhow::Result<TableFloor> {
    sqlx::query(&format!("CREATE TABLE floor_{table} (LIKE {table}{shape})")).execute(&mut *connection).await?;
    let started = Instant::now();
    let copied = sqlx::query(&format!("INSERT INTO floor_{table} SELECT * FROM {table}")).execute(&mut *connection).await?;
    let elapsed = started.elapsed();
    sqlx::query(&format!("DROP TABLE floor_{table}")).execute(&mut *connection).await?;
    Ok(TableFloor { name, rows: copied.rows_affected(), elapsed })
}

/// Each table's floor, then their sum per payment as the most payments per
/// second the server could write those rows for, and the same with the
/// events keyed by seq alone.
fn print_floor(floors: &Floors) {
    println!("postgres floor: the server alone copies each table's rows into a table like it (same indexes):");
    for floor in floors.tables.iter().chain([&floors.events_keyed_by_seq_alone]) {
        println!(
            "  {:<27} {:>8} rows in {:>6.2} s: {:>7.0} rows/s, {:>5.1} us a row",
            floor.name,
            floor.rows,
            floor.elapsed.as_secs_f64(),
            floor.rows as f64 / floor.elapsed.as_secs_f64(),
            floor.per_row().as_secs_f64() * 1e6
        );
    }
    let per_payment: Duration = floors.tables.iter().map(TableFloor::per_row).sum();
    let events = floors.tables.iter().find(|floor| floor.name == "events").map_or(Duration::ZERO, TableFloor::per_row);
    let per_payment_keyed_by_seq_alone = per_payment - events + floors.events_keyed_by_seq_alone.per_row();
    println!(
        "  a row in each: {:.1} us a payment, at most {:.0} payments/s on the server alone, before the summed rows \
         ({:.0} payments/s with the events keyed by seq alone)",
        per_payment.as_secs_f64() * 1e6,
        1.0 / per_payment.as_secs_f64(),
        1.0 / per_payment_keyed_by_seq_alone.as_secs_f64()
    );
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
    println!("[{backend}] single: {}", describe_cpu(&single));
    figures.push(single);
    let batch = run(&client, &server, "batch of 100 payments", "/v1/batch", BATCH_REQUESTS_MAX, BATCH_EVENTS).await?;
    println!("[{backend}] batch: chain verifies, head seq {}", batch.head_seq);
    println!("[{backend}] batch: {}", describe_group_commits(&batch));
    println!("[{backend}] batch: {}", describe_cpu(&batch));
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
    let cpu_before = CpuTicks::now();
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
    let cpu = CpuUse::between(cpu_before, CpuTicks::now());
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
        cpu,
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
