//! What serving C2SP tiles costs on a ledger of `LEDGER_BENCH_EVENTS`
//! events (default 1,000,000, the benches' large ledger): the real server
//! (`serve_on`) over the ledger, then
//!
//! - the first tile request after start, which reads every event hash into
//!   the server's Merkle tree, and the server's memory before and after;
//! - sequential requests for full level-0, level-1 and partial level-2
//!   tiles and for entry bundles (each bundle also reads its 256 hashes from
//!   the database and checks them against the tree): latency percentiles;
//! - what a client fetches to prove one event, and a full mirror;
//! - with `wrk` installed (Debian's package), throughput of full level-0
//!   tiles and of entry bundles from that separate client, 16 connections.
//!
//! On SQLite and, when `LEDGER_BENCH_POSTGRES_URL` names a server, on
//! PostgreSQL. Prints figures; asserts only that every request succeeded.
//!
//!     cargo bench -p ledger-api --bench tiles [-- sqlite|postgres]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ledger_api::config::Ledger;
use ledger_api::http::serve_on;
use ledger_api::tiles::{TILE_WIDTH, TilePath};
use ledger_api::tokens::{self, Role};
use ledger_core::store::{AppendUnit, Appender, Store};
use ledger_test_support::large_ledger;
use projections::LedgerProjector;
use tokio::net::TcpListener;
use tokio::sync::oneshot;

/// The allocator the `ledger` binary uses.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Requests of each kind timed one after the other.
const REQUESTS: usize = 2_000;
/// Seconds of each `wrk` run.
const WRK_SECONDS: u32 = 10;

fn percentile(sorted: &[Duration], percent: usize) -> Duration {
    sorted[(sorted.len() * percent / 100).min(sorted.len() - 1)]
}

struct Server {
    base_url: String,
    token: String,
    client: reqwest::Client,
}

impl Server {
    /// Fetches a tile and returns its bytes; panics on anything but 200.
    async fn fetch(&self, path: &TilePath) -> Vec<u8> {
        let url = format!("{}/tile/{}", self.base_url, path.format());
        let response = self.client.get(&url).bearer_auth(&self.token).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 200, "{url}");
        response.bytes().await.unwrap().to_vec()
    }

    /// Times `REQUESTS` sequential fetches of the paths `pick` names.
    async fn time(&self, label: &str, pick: impl Fn(usize) -> TilePath) {
        let mut latencies = Vec::with_capacity(REQUESTS);
        let mut bytes = 0;
        let started = Instant::now();
        for request in 0..REQUESTS {
            let path = pick(request);
            let sent = Instant::now();
            bytes += self.fetch(&path).await.len();
            latencies.push(sent.elapsed());
        }
        let elapsed = started.elapsed();
        latencies.sort();
        println!(
            "{label:<34} p50 {:>7.3} ms  p99 {:>7.3} ms  {:>6.0} requests/s sequential  {} bytes each",
            percentile(&latencies, 50).as_secs_f64() * 1e3,
            percentile(&latencies, 99).as_secs_f64() * 1e3,
            REQUESTS as f64 / elapsed.as_secs_f64(),
            bytes / REQUESTS
        );
    }
}

/// Tiles of each level of a tree of `size` leaves: (full, partial width).
fn tiles_at(size: u64, level: u32) -> (u64, u64) {
    let hashes = size >> (8 * level);
    (hashes / TILE_WIDTH, hashes % TILE_WIDTH)
}

fn wrk(server: &Server, label: &str, path: &str) {
    let output = Command::new("wrk")
        .args(["-t2", "-c16", &format!("-d{WRK_SECONDS}s"), "-H", &format!("Authorization: Bearer {}", server.token)])
        .arg(format!("{}/tile/{path}", server.base_url))
        .output();
    match output {
        Ok(output) if output.status.success() => {
            let text = String::from_utf8_lossy(&output.stdout);
            let figures: Vec<&str> =
                text.lines().filter(|line| line.contains("Requests/sec") || line.contains("Latency")).map(str::trim).collect();
            println!("wrk, 16 connections, {label:<19} {}", figures.join("; "));
        }
        Ok(output) => println!("wrk failed: {}", String::from_utf8_lossy(&output.stderr)),
        Err(_) => println!("wrk, {label}: not run (install Debian's wrk for throughput from a separate client)"),
    }
}

async fn run(name: &str, url: &str, events: usize) {
    println!("== {name}");
    let keys = Arc::new(ledger_test_support::test_keys());
    let store = Store::connect(url).await.unwrap();
    store.migrate().await.unwrap();
    let mut appender = Appender::new(store.clone(), keys.clone(), Arc::new(LedgerProjector));
    let setup: Vec<AppendUnit> = large_ledger::setup_commands().into_iter().map(large_ledger::unit).collect();
    large_ledger::append_all(&mut appender, &setup).await;
    let elapsed = large_ledger::fill(&mut appender, &keys, setup.len(), events).await;
    let (size, _) = store.head().await.unwrap();
    println!("filled to {size} events in {:.1} s", elapsed.as_secs_f64());
    drop(appender);
    store.pool().close().await;

    let ledger = Ledger::open_with_keys(url, ledger_test_support::test_keys()).await.unwrap();
    let token = tokens::create(&ledger.store, Role::Auditor, None, "bench-auditor").await.unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    let (shutdown, signal) = oneshot::channel::<()>();
    let serving = tokio::spawn(serve_on(listener, ledger, None, async move {
        let _ = signal.await;
    }));
    let server = Server { base_url, token, client: reqwest::Client::new() };

    let before = ledger_test_support::resident_megabytes();
    let started = Instant::now();
    let first = server.fetch(&TilePath { level: Some(0), index: 0, width: TILE_WIDTH }).await;
    assert_eq!(first.len(), 32 * TILE_WIDTH as usize);
    println!(
        "first tile after start:            {:.2} s (reads {size} event hashes into the tree); memory {before:.0} MB -> {:.0} MB",
        started.elapsed().as_secs_f64(),
        ledger_test_support::resident_megabytes()
    );

    let (full_0, _) = tiles_at(size, 0);
    let (full_1, _) = tiles_at(size, 1);
    let (_, partial_2) = tiles_at(size, 2);
    assert!(full_1 > 0 && partial_2 > 0, "the bench needs at least 65,536 events");
    // Spread over the tree so the tiles are not all one cache line.
    let spread = |request: usize, count: u64| (request as u64 * 7_919) % count;
    server
        .time("full level-0 tile", |request| TilePath { level: Some(0), index: spread(request, full_0), width: TILE_WIDTH })
        .await;
    server
        .time("full level-1 tile", |request| TilePath { level: Some(1), index: spread(request, full_1), width: TILE_WIDTH })
        .await;
    server.time("partial level-2 tile", |_| TilePath { level: Some(2), index: 0, width: partial_2 }).await;
    server.time("full entry bundle", |request| TilePath { level: None, index: spread(request, full_0), width: TILE_WIDTH }).await;

    // A client proving one event: the level-0, level-1 and level-2 tiles
    // on its path, each 256 hashes or the partial right edge.
    let (full_total, partial_total) =
        (0..3).map(|level| tiles_at(size, level)).fold((0, 0), |(full, partial), (f, p)| (full + f, partial + p));
    println!(
        "a proof of one event:              3 tiles, at most {} KB; a full mirror: {full_total} full tiles and {} hashes of partial ones, {:.1} MB, and {:.1} MB of entry bundles",
        3 * 32 * TILE_WIDTH / 1_000,
        partial_total,
        (full_total * TILE_WIDTH + partial_total) as f64 * 32.0 / 1e6,
        size as f64 * 34.0 / 1e6
    );

    let middle = TilePath { level: Some(0), index: full_0 / 2, width: TILE_WIDTH }.format();
    wrk(&server, "level-0 tiles:", &middle);
    let bundle = TilePath { level: None, index: full_0 / 2, width: TILE_WIDTH }.format();
    wrk(&server, "entry bundles:", &bundle);

    shutdown.send(()).unwrap();
    serving.await.unwrap().unwrap();
}

#[tokio::main]
async fn main() {
    let events: usize = std::env::var("LEDGER_BENCH_EVENTS").ok().and_then(|text| text.parse().ok()).unwrap_or(1_000_000);
    let wanted = ledger_test_support::bench_backend_wanted;
    if wanted("sqlite") {
        let directory = std::env::temp_dir().join(format!("ledger-tiles-bench-{}", std::process::id()));
        std::fs::create_dir_all(&directory).unwrap();
        run("SQLite", &format!("sqlite://{}", directory.join("bench.db").display()), events).await;
        std::fs::remove_dir_all(&directory).unwrap();
    }
    match std::env::var("LEDGER_BENCH_POSTGRES_URL") {
        Ok(server_url) if wanted("postgres") => {
            let (name, url) = ledger_test_support::create_postgres_database(&server_url, "ledger_tiles_bench").await.unwrap();
            run("PostgreSQL", &url, events).await;
            ledger_test_support::drop_postgres_database(&server_url, &name).await.unwrap();
        }
        Ok(_) => {}
        Err(_) => println!("== PostgreSQL: skipped (set LEDGER_BENCH_POSTGRES_URL)"),
    }
}
