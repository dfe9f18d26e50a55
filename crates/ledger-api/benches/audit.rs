//! Figures of the independent audit at a million events: the offline export
//! verifier next to `sha256sum` of the same file, the verifier's peak
//! memory, checkpointing and proofs. Not a timed test: it prints what it
//! measures. Run with `cargo bench -p ledger-api --bench audit`
//! (`LEDGER_BENCH_EVENTS=N` for another size).
//!
//! The export is generated directly with the chain functions and a key
//! ring, without a database: realistic cash payments and in-kind grants,
//! hashed, linked and tagged as the store would.

use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use ledger_api::audit::{self, ExportCheck, TrustedCheckpoint};
use ledger_core::chain::{EventRecord, GENESIS_PREV_HASH, event_hash};
use ledger_core::checkpoint::{self, Checkpoint, SignedCheckpoint};
use ledger_core::keys::{KeyRing, SecretKey};
use ledger_core::merkle::{self, Hash, MerkleTree};
use ledger_core::merkle_stream::MerkleRootBuilder;

/// Events in the generated export unless `LEDGER_BENCH_EVENTS` says otherwise.
const EVENTS_DEFAULT: u64 = 1_000_000;
/// Events of the smaller export whose peak memory is compared.
const SMALL_EXPORT_EVENTS: u64 = 100_000;
/// Inclusion proofs timed at the full size.
const INCLUSION_PROOFS_TIMED: u64 = 10_000;
/// Runs of each timed step; the best is reported (the first warms the page cache).
const RUNS: usize = 3;
const MEGABYTE: f64 = 1_000_000.0;

fn bench_keys() -> KeyRing {
    KeyRing {
        active_hmac: SecretKey::from_bytes([1; 32]),
        retired_hmac: vec![],
        pseudonym: SecretKey::from_bytes([2; 32]),
        checkpoint: Some(SecretKey::from_bytes([3; 32])),
        retired_checkpoint: Vec::new(),
    }
}

/// A payload like the demo's: mostly cash payments, some in-kind grants.
fn payload(seq: u64, keys: &KeyRing) -> (&'static str, String) {
    let beneficiary = keys.pseudonymise(&format!("MA-2023-{seq:08}")).expect("bench case ids are valid");
    let beneficiary = beneficiary.as_str();
    if seq % 5 == 0 {
        let payload = format!(
            "{{\"programme\":\"MOTUSE\",\"donor\":\"EU-AMIF\",\"country\":\"MA\",\"beneficiary_ref\":\"{beneficiary}\",\
             \"level\":\"individual\",\"dimension\":\"economic\",\"category\":\"business_start_up\",\
             \"description\":\"Start-up kit for a tailoring workshop in Beni Mellal\",\"amount\":\"1500.00\",\
             \"currency\":\"EUR\",\"delivered_on\":\"2023-06-01\"}}"
        );
        return ("in_kind_grant_delivered", payload);
    }
    let payload = format!(
        "{{\"programme\":\"MOTUSE\",\"donor\":\"EU-AMIF\",\"country\":\"MA\",\"beneficiary_ref\":\"{beneficiary}\",\
         \"amount\":\"350.00\",\"currency\":\"EUR\",\"paid_amount\":\"3815.00\",\"paid_currency\":\"MAD\",\"rate\":\"10.9\",\
         \"method\":\"bank_transfer\",\"paid_on\":\"2023-04-03\"}}"
    );
    ("cash_reinsertion_paid", payload)
}

/// Writes a valid export of `events` events; returns every event hash.
fn generate_export(path: &Path, events: u64, keys: &KeyRing) -> Vec<Hash> {
    let mut output = BufWriter::with_capacity(1 << 20, std::fs::File::create(path).expect("the bench file is writable"));
    let mut hashes = Vec::with_capacity(events as usize);
    let mut prev_hash = GENESIS_PREV_HASH;
    let mut line = Vec::with_capacity(2_048);
    for seq in 1..=events {
        let (event_type, payload) = payload(seq, keys);
        let micros = seq % 1_000_000;
        let mut event = EventRecord {
            seq,
            id: uuid::Uuid::from_u64_pair(0x0190_0000_0000_7000, seq),
            recorded_at: format!("2026-11-23T18:{:02}:{:02}.{micros:06}Z", (seq / 60_000_000) % 60, (seq / 1_000_000) % 60),
            actor: "finance-officer@iom.int".to_string(),
            event_type: event_type.to_string(),
            version: 1,
            payload,
            prev_hash,
            hash: [0; 32],
            key_id: String::new(),
            tag: [0; 32],
        };
        event.hash = event_hash(&event.hashed_fields());
        (event.key_id, event.tag) = keys.tag(&event.hash);
        line.clear();
        audit::write_export_line(&mut line, &event);
        output.write_all(&line).expect("the bench file is writable");
        prev_hash = event.hash;
        hashes.push(event.hash);
    }
    output.flush().expect("the bench file is writable");
    hashes
}

fn best_of<T>(runs: usize, mut step: impl FnMut() -> T) -> (Duration, T) {
    let mut best: Option<(Duration, T)> = None;
    for _ in 0..runs {
        let started = Instant::now();
        let result = step();
        let elapsed = started.elapsed();
        if best.as_ref().is_none_or(|(fastest, _)| elapsed < *fastest) {
            best = Some((elapsed, result));
        }
    }
    best.expect("at least one run")
}

fn sign_checkpoint(tree_size: u64, root: Hash, keys: &KeyRing) -> SignedCheckpoint {
    let checkpoint = Checkpoint::new(tree_size, root, "2026-11-23T18:44:10Z").expect("a valid time");
    checkpoint::sign(checkpoint, &audit::signing_key(keys).expect("the bench keys sign"))
}

/// Peak resident memory (kB) of `ledger verify --export` on `path`, from
/// `/usr/bin/time -v`, and whether it exited 0.
fn verifier_peak_memory(path: &Path, checkpoint_file: &Path, keys: &KeyRing) -> Option<(u64, bool)> {
    let time = Path::new("/usr/bin/time");
    if !time.exists() {
        return None;
    }
    let output = Command::new(time)
        .arg("-v")
        .arg(env!("CARGO_BIN_EXE_ledger"))
        .args(["verify", "--export"])
        .arg(path)
        .args(["--hmac-key", &keys.active_hmac.secret_hex(), "--checkpoint"])
        .arg(checkpoint_file)
        .args(["--public-key", &audit::public_key_hex(keys).expect("the bench keys sign")])
        .output()
        .ok()?;
    let stderr = String::from_utf8_lossy(&output.stderr);
    let kilobytes =
        stderr.lines().find_map(|line| line.trim().strip_prefix("Maximum resident set size (kbytes): "))?.trim().parse().ok()?;
    Some((kilobytes, output.status.success()))
}

/// The best time of `program ARGS path`, if it runs and succeeds.
fn hashing_time(program: &str, args: &[&str], path: &Path) -> Option<Duration> {
    let (elapsed, status) =
        best_of(RUNS, || Command::new(program).args(args).arg(path).output().map(|output| output.status.success()));
    matches!(status, Ok(true)).then_some(elapsed)
}

fn main() {
    let events: u64 = std::env::var("LEDGER_BENCH_EVENTS").ok().and_then(|text| text.parse().ok()).unwrap_or(EVENTS_DEFAULT);
    let keys = bench_keys();
    let directory = std::env::temp_dir().join(format!("ledger-audit-bench-{}", std::process::id()));
    std::fs::create_dir_all(&directory).expect("the temporary directory is writable");
    let export = directory.join("export.jsonl");

    let started = Instant::now();
    let hashes = generate_export(&export, events, &keys);
    let bytes = std::fs::metadata(&export).expect("the export exists").len();
    println!("generated export: {events} events, {:.1} MB, in {:.2?}", bytes as f64 / MEGABYTE, started.elapsed());

    let figures = Figures { events, bytes };
    let checkpoint = bench_checkpoint(&hashes, &keys);
    bench_verifier(&figures, &export, &checkpoint, &keys);
    bench_memory(&directory, &export, &hashes, &checkpoint, &keys);
    bench_proofs(&hashes);
    let _ = std::fs::remove_dir_all(&directory);
}

struct Figures {
    events: u64,
    bytes: u64,
}

impl Figures {
    fn rates(&self, elapsed: Duration) -> String {
        let seconds = elapsed.as_secs_f64();
        format!(
            "{:.2?}: {:.0} events/s, {:.0} MB/s",
            elapsed,
            self.events as f64 / seconds,
            self.bytes as f64 / MEGABYTE / seconds
        )
    }
}

/// Checkpointing: the Merkle tree over every event hash, its root, the signature.
fn bench_checkpoint(hashes: &[Hash], keys: &KeyRing) -> SignedCheckpoint {
    let size = hashes.len() as u64;
    let (elapsed, signed) = best_of(RUNS, || {
        let tree = MerkleTree::from_event_hashes(hashes.iter().copied());
        sign_checkpoint(size, tree.root(size).expect("the tree holds its size"), keys)
    });
    println!("checkpoint of {size} events (MerkleTree build + root + Ed25519 signature): {elapsed:.2?}");
    let (elapsed, root) = best_of(RUNS, || {
        let mut roots = MerkleRootBuilder::new();
        hashes.iter().for_each(|hash| roots.push(hash));
        roots.root()
    });
    assert_eq!(root, signed.checkpoint.root_hash, "both ways give the same root");
    println!("root of {size} events with the streaming MerkleRootBuilder: {elapsed:.2?}");
    signed
}

fn bench_verifier(figures: &Figures, export: &Path, checkpoint: &SignedCheckpoint, keys: &KeyRing) {
    let sha256sum = hashing_time("sha256sum", &[], export);
    match sha256sum {
        Some(elapsed) => println!("sha256sum of the export: {}", figures.rates(elapsed)),
        None => println!("sha256sum: not available"),
    }
    // A second reference: OpenSSL uses the CPU's SHA instructions where
    // coreutils' sha256sum may not.
    let openssl = hashing_time("openssl", &["dgst", "-sha256"], export);
    if let Some(elapsed) = openssl {
        println!("openssl dgst -sha256 of the export: {}", figures.rates(elapsed));
    }
    let full = ExportCheck {
        hmac_keys: vec![keys.active_hmac.clone()],
        checkpoint: Some(TrustedCheckpoint::Json {
            checkpoint: checkpoint.clone(),
            public_key: audit::public_key(keys).expect("the bench keys sign"),
        }),
    };
    for (name, check) in [("links and hashes", ExportCheck::default()), ("links, hashes, tags and checkpoint", full)] {
        let (elapsed, report) =
            best_of(RUNS, || audit::verify_export_file(export, &check, |_| {}).expect("the export is readable"));
        assert!(report.is_valid(), "the generated export verifies: {:?}", report.failure);
        assert_eq!(report.events, figures.events);
        let share = |reference: Option<Duration>, tool: &str| {
            reference.map(|reference| format!(", {:.2} of {tool}'s throughput", reference.as_secs_f64() / elapsed.as_secs_f64()))
        };
        let shares = [share(sha256sum, "sha256sum"), share(openssl, "openssl")].into_iter().flatten().collect::<String>();
        println!("verify --export ({name}): {}{shares}", figures.rates(elapsed));
    }
}

/// Peak memory of the real binary on the full export and on a tenth of it:
/// flat memory means the two are about equal.
fn bench_memory(directory: &Path, export: &Path, hashes: &[Hash], checkpoint: &SignedCheckpoint, keys: &KeyRing) {
    let checkpoint_file = directory.join("checkpoint.json");
    std::fs::write(&checkpoint_file, serde_json::to_string(checkpoint).expect("a checkpoint serializes")).expect("writable");
    let small_events = SMALL_EXPORT_EVENTS.min(hashes.len() as u64);
    let small_export: PathBuf = directory.join("small.jsonl");
    let text = std::fs::read_to_string(export).expect("the export is readable");
    let end = text.match_indices('\n').nth(small_events as usize - 1).map_or(text.len(), |(index, _)| index + 1);
    std::fs::write(&small_export, &text[..end]).expect("writable");
    drop(text);
    let small_root =
        MerkleTree::from_event_hashes(hashes[..small_events as usize].iter().copied()).root(small_events).expect("in the tree");
    let small_checkpoint_file = directory.join("small-checkpoint.json");
    let small_checkpoint = sign_checkpoint(small_events, small_root, keys);
    std::fs::write(&small_checkpoint_file, serde_json::to_string(&small_checkpoint).expect("serializes")).expect("writable");
    let runs =
        [(small_events, &small_export, &small_checkpoint_file), (hashes.len() as u64, &export.to_path_buf(), &checkpoint_file)];
    for (events, file, checkpoint_file) in runs {
        match verifier_peak_memory(file, checkpoint_file, keys) {
            Some((kilobytes, valid)) => {
                println!(
                    "peak memory of `ledger verify --export` on {events} events: {:.1} MB (exit 0: {valid})",
                    kilobytes as f64 / 1000.0
                )
            }
            None => println!("peak memory: /usr/bin/time -v is not available"),
        }
    }
}

fn bench_proofs(hashes: &[Hash]) {
    let size = hashes.len() as u64;
    let tree = MerkleTree::from_event_hashes(hashes.iter().copied());
    let root = tree.root(size).expect("the tree holds its size");
    // A fixed stride walks indices all over the tree.
    let stride = size / INCLUSION_PROOFS_TIMED + 7;
    let indices: Vec<u64> = (0..INCLUSION_PROOFS_TIMED).map(|step| (step * stride) % size).collect();
    let started = Instant::now();
    let mut slowest = Duration::ZERO;
    let mut proofs = Vec::with_capacity(indices.len());
    for &index in &indices {
        let one = Instant::now();
        proofs.push(tree.inclusion_proof(index, size).expect("inside the tree"));
        slowest = slowest.max(one.elapsed());
    }
    let average = started.elapsed() / INCLUSION_PROOFS_TIMED as u32;
    for (index, proof) in indices.iter().zip(&proofs) {
        assert_eq!(merkle::verify_inclusion(&hashes[*index as usize], *index, size, proof, &root), Ok(()));
    }
    println!(
        "inclusion proof at {size} events: {average:.2?} on average, {slowest:.2?} at most ({INCLUSION_PROOFS_TIMED} proofs)"
    );
    let started = Instant::now();
    let consistency = tree.consistency_proof(size / 3, size).expect("inside the tree");
    println!("consistency proof from {} to {size} events: {:.2?}", size / 3, started.elapsed());
    let old_root = tree.root(size / 3).expect("inside the tree");
    assert_eq!(merkle::verify_consistency(size / 3, size, &old_root, &root, &consistency), Ok(()));
}
