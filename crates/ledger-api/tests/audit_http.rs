//! The audit endpoints of the real server on port 0, on both backends: the
//! streaming export, checkpoints, inclusion and consistency proofs, the
//! donor's scope, and checkpoints signed periodically by `ledger serve`.

#[macro_use]
mod audit_support;

use std::io::{BufRead, BufReader};
use std::time::{Duration, Instant};

use audit_support::*;
use ledger_api::audit::{self, TrustedCheckpoint};
use ledger_api::config::Ledger;
use ledger_api::http::serve_on;
use ledger_api::tokens::{self, Role};
use ledger_core::checkpoint::SignedCheckpoint;
use ledger_core::domain::{Command, DonorCode};
use ledger_core::store::AppendUnit;
use reqwest::StatusCode;

/// How long a test waits for the server to sign a periodic checkpoint.
const CHECKPOINT_WAIT_MS: u64 = 20_000;

struct TestApp {
    base_url: String,
    client: reqwest::Client,
    ledger: Ledger,
    auditor: String,
    admin: String,
    finance_officer: String,
    /// A donor token of EU-AMIF, which funds MOTUSE only.
    donor: String,
}

/// The demo ledger served on port 0, with one token per role.
async fn spawn_app(database: &TestDatabase) -> TestApp {
    let ledger = demo_ledger(database).await;
    let token = |role, donor, name| {
        let store = ledger.store.clone();
        async move { tokens::create(&store, role, donor, name).await.expect("the token is created") }
    };
    let auditor = token(Role::Auditor, None, "auditor").await;
    let admin = token(Role::Admin, None, "admin").await;
    let finance_officer = token(Role::FinanceOfficer, None, "finance-officer").await;
    let donor = token(Role::Donor, Some("EU-AMIF"), "donor-eu-amif").await;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("port 0 binds");
    let address = listener.local_addr().unwrap();
    let serving = serve_on(listener, ledger.clone(), None, std::future::pending());
    tokio::spawn(async move { serving.await.expect("the server runs") });
    TestApp {
        base_url: format!("http://{address}"),
        client: reqwest::Client::new(),
        ledger,
        auditor,
        admin,
        finance_officer,
        donor,
    }
}

impl TestApp {
    async fn get(&self, path: &str, token: Option<&str>) -> reqwest::Response {
        let mut request = self.client.get(format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        request.send().await.expect("the server answers")
    }

    async fn get_json(&self, path: &str, token: Option<&str>) -> (StatusCode, serde_json::Value) {
        let response = self.get(path, token).await;
        let status = response.status();
        (status, response.json().await.expect("every answer is JSON"))
    }

    /// The latest checkpoint as served, and the public key as served.
    async fn latest_trusted_checkpoint(&self) -> TrustedCheckpoint {
        let (status, latest) = self.get_json("/v1/checkpoints/latest", Some(&self.auditor)).await;
        assert_eq!(status, StatusCode::OK, "{latest}");
        let checkpoint: SignedCheckpoint = serde_json::from_value(latest).expect("a served checkpoint is a signed checkpoint");
        let (_, key) = self.get_json("/v1/checkpoints/public-key", None).await;
        let public_key = ledger_core::checkpoint::parse_public_key_hex(key["public_key"].as_str().unwrap()).unwrap();
        TrustedCheckpoint::Json { checkpoint, public_key }
    }
}

/// Appends one donor registration directly, as another server would.
async fn append_donor(ledger: &Ledger, code: &str) {
    let command = Command::RegisterDonor {
        code: DonorCode::parse(code).unwrap(),
        name: format!("Donor {code}"),
        kind: "national_donor".to_string(),
        iati_identifier: None,
    };
    let unit = AppendUnit { actor: "admin@test".to_string(), commands: vec![command], idempotency: None, token_hash: None };
    ledger.appender().append(&[unit]).await.expect("the donor is appended");
}

/// The seq of the first event of `event_type` about `programme`.
async fn seq_of(ledger: &Ledger, event_type: &str, programme: &str) -> u64 {
    let export = export_text(ledger, 0).await;
    export
        .lines()
        .map(parse_line)
        .find(|event| {
            let payload: serde_json::Value = serde_json::from_str(&event.payload).unwrap();
            let about = payload.get("programme").or_else(|| payload.pointer("/reversed/payload/programme"));
            event.event_type == event_type && about.and_then(|value| value.as_str()) == Some(programme)
        })
        .unwrap_or_else(|| panic!("the demo holds a {event_type} of {programme}"))
        .seq
}

test_on_both_backends! {
    /// Inclusion proofs served for events of every kind verify against the
    /// root of the latest signed checkpoint; after the chain grows, a proof
    /// for the checkpoint's size still does, and a consistency proof ties
    /// the old checkpoint to the new one.
    async fn inclusion_proofs_from_the_endpoint_verify_against_the_latest_checkpoints_root(database: TestDatabase) {
        let app = spawn_app(&database).await;
        audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap();
        let old = app.latest_trusted_checkpoint().await;
        let size = old.verify().unwrap().0;
        for seq in [1, 2, size / 2, size - 1, size] {
            let (status, proof) = app.get_json(&format!("/v1/proofs/inclusion?seq={seq}"), Some(&app.auditor)).await;
            assert_eq!(status, StatusCode::OK, "{proof}");
            assert_eq!((proof["seq"].as_u64(), proof["size"].as_u64(), proof["leaf_index"].as_u64()), (Some(seq), Some(size), Some(seq - 1)));
            let verdict = audit::verify_proof_document(&proof.to_string(), std::slice::from_ref(&old));
            assert_eq!(verdict.map(|verdict| verdict.checkpoint_sizes), Ok(vec![size]), "seq {seq}");
        }

        append_donor(&app.ledger, "DANIDA").await;
        let (status, grown) = app.get_json("/v1/proofs/inclusion?seq=3", Some(&app.finance_officer)).await;
        assert_eq!((status, grown["size"].as_u64()), (StatusCode::OK, Some(size + 1)), "the cached tree caught up");
        let (status, proof) = app.get_json(&format!("/v1/proofs/inclusion?seq=3&size={size}"), Some(&app.admin)).await;
        assert_eq!(status, StatusCode::OK);
        assert!(audit::verify_proof_document(&proof.to_string(), std::slice::from_ref(&old)).is_ok());

        audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap();
        let new = app.latest_trusted_checkpoint().await;
        assert_eq!(new.verify().unwrap().0, size + 1);
        let (status, consistency) = app.get_json(&format!("/v1/proofs/consistency?from={size}&to={}", size + 1), Some(&app.auditor)).await;
        assert_eq!(status, StatusCode::OK, "{consistency}");
        let verdict = audit::verify_proof_document(&consistency.to_string(), &[old.clone(), new]).unwrap();
        assert_eq!(verdict.checkpoint_sizes, vec![size, size + 1]);

        let mut forged = proof.clone();
        forged["event_hash"] = serde_json::Value::String("ab".repeat(32));
        assert!(audit::verify_proof_document(&forged.to_string(), std::slice::from_ref(&old)).is_err());
    }
}

test_on_both_backends! {
    /// A donor token proves events of the programmes its donor funds,
    /// reversals included, and gets hashes only; any other event is 403.
    async fn a_donor_gets_proofs_of_its_programmes_events_without_payload_and_403_for_any_other(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let own_payment = seq_of(&app.ledger, "cash_reinsertion_paid", "MOTUSE").await;
        let own_reversal = seq_of(&app.ledger, "entry_reversed", "MOTUSE").await;
        for seq in [own_payment, own_reversal] {
            let (status, proof) = app.get_json(&format!("/v1/proofs/inclusion?seq={seq}"), Some(&app.donor)).await;
            assert_eq!(status, StatusCode::OK, "seq {seq}: {proof}");
            let mut fields: Vec<&str> = proof.as_object().unwrap().keys().map(String::as_str).collect();
            fields.sort_unstable();
            assert_eq!(fields, ["event_hash", "leaf_index", "proof", "root", "seq", "size"], "no payload, no beneficiary data");
            assert!(!proof.to_string().contains("beneficiary"));
        }
        let other_programme = seq_of(&app.ledger, "cash_reinsertion_paid", "RADA").await;
        for seq in [other_programme, 1] {
            let (status, problem) = app.get_json(&format!("/v1/proofs/inclusion?seq={seq}"), Some(&app.donor)).await;
            assert_eq!(status, StatusCode::FORBIDDEN, "seq {seq}: {problem}");
            assert!(problem["detail"].as_str().unwrap().contains("programmes it funds"), "{problem}");
        }
        let (status, _) = app.get_json("/v1/proofs/consistency?from=3&to=10", Some(&app.donor)).await;
        assert_eq!(status, StatusCode::OK, "a consistency proof holds hashes only");
        let (status, _) = app.get_json(&format!("/v1/proofs/inclusion?seq={own_payment}"), None).await;
        assert_eq!(status, StatusCode::UNAUTHORIZED);
    }
}

test_on_both_backends! {
    /// `GET /v1/export` streams the same JSON Lines as `ledger export`, for
    /// auditors only.
    async fn the_export_endpoint_streams_the_same_json_lines_as_the_command_line_export(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let response = app.get("/v1/export", Some(&app.auditor)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "application/x-ndjson");
        let body = response.text().await.unwrap();
        assert_eq!(body, export_text(&app.ledger, 0).await);
        assert!(verify_text(&body, &full_check(None)).is_valid());
        let tail = app.get("/v1/export?after=40", Some(&app.auditor)).await.text().await.unwrap();
        assert_eq!(tail, export_text(&app.ledger, 40).await);
        assert_eq!(parse_line(tail.lines().next().unwrap()).seq, 41);
        for token in [&app.finance_officer, &app.admin, &app.donor] {
            assert_eq!(app.get("/v1/export", Some(token)).await.status(), StatusCode::FORBIDDEN);
        }
        assert_eq!(app.get("/v1/export", None).await.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(app.get("/v1/export?after=x", Some(&app.auditor)).await.status(), StatusCode::BAD_REQUEST);
    }
}

test_on_both_backends! {
    /// The public key is public; checkpoints need a token, are found by size,
    /// and are 404 before one is signed or for a size never signed.
    async fn checkpoint_endpoints_answer_by_role_and_size(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let (status, key) = app.get_json("/v1/checkpoints/public-key", None).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(key["public_key"].as_str(), Some(audit::public_key_hex(&test_keys()).unwrap().as_str()));
        let (status, _) = app.get_json("/v1/checkpoints/latest", Some(&app.donor)).await;
        assert_eq!(status, StatusCode::NOT_FOUND, "no checkpoint yet");
        let signed = audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap().checkpoint;
        let size = signed.checkpoint.tree_size;
        for token in [&app.donor, &app.auditor, &app.admin, &app.finance_officer] {
            let (status, latest) = app.get_json("/v1/checkpoints/latest", Some(token)).await;
            assert_eq!(status, StatusCode::OK);
            assert_eq!(serde_json::from_value::<SignedCheckpoint>(latest).unwrap(), signed);
        }
        let (status, by_size) = app.get_json(&format!("/v1/checkpoints/{size}"), Some(&app.donor)).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(serde_json::from_value::<SignedCheckpoint>(by_size).unwrap(), signed);
        assert_eq!(app.get_json("/v1/checkpoints/latest", None).await.0, StatusCode::UNAUTHORIZED);
        assert_eq!(app.get_json("/v1/checkpoints/3", Some(&app.auditor)).await.0, StatusCode::NOT_FOUND);
        let (status, problem) = app.get_json("/v1/checkpoints/three", Some(&app.auditor)).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{problem}");
    }
}

test_on_both_backends! {
    /// Proof requests outside the chain, malformed or contradicting
    /// themselves are refused with the status that names the problem.
    async fn proof_requests_outside_the_chain_are_refused(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let (head, _) = app.ledger.store.head().await.unwrap();
        let cases = [
            ("/v1/proofs/inclusion?seq=0".to_string(), StatusCode::BAD_REQUEST),
            (format!("/v1/proofs/inclusion?seq={}", head + 1), StatusCode::NOT_FOUND),
            (format!("/v1/proofs/inclusion?seq=2&size={}", head + 1), StatusCode::NOT_FOUND),
            // Each parameter well formed, the two contradicting each other.
            ("/v1/proofs/inclusion?seq=5&size=4".to_string(), StatusCode::UNPROCESSABLE_ENTITY),
            ("/v1/proofs/inclusion".to_string(), StatusCode::BAD_REQUEST),
            ("/v1/proofs/consistency?from=0&to=5".to_string(), StatusCode::BAD_REQUEST),
            ("/v1/proofs/consistency?from=6&to=5".to_string(), StatusCode::UNPROCESSABLE_ENTITY),
            (format!("/v1/proofs/consistency?from=5&to={}", head + 1), StatusCode::NOT_FOUND),
        ];
        for (path, expected) in cases {
            let response = app.get(&path, Some(&app.auditor)).await;
            assert_eq!(response.status(), expected, "{path}");
            assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
        }
    }
}

test_on_both_backends! {
    /// A periodic checkpoint is signed when the chain has grown past the
    /// latest one, and only then.
    async fn a_checkpoint_from_the_cached_tree_is_signed_only_when_the_chain_has_grown(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let cache = audit::shared_merkle_cache();
        let (head, _) = ledger.store.head().await.unwrap();
        let first = audit::checkpoint_from_cache(&ledger, &cache).await.unwrap().expect("a first checkpoint");
        assert_eq!(first.checkpoint.tree_size, head);
        let from_full_walk = audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
        assert!(!from_full_walk.created);
        assert_eq!(from_full_walk.checkpoint.checkpoint.root_hash, first.checkpoint.root_hash, "the cached tree and a full walk agree");
        assert_eq!(audit::checkpoint_from_cache(&ledger, &cache).await.unwrap(), None);
        append_donor(&ledger, "DANIDA").await;
        let second = audit::checkpoint_from_cache(&ledger, &cache).await.unwrap().expect("the chain grew");
        assert_eq!(second.checkpoint.tree_size, head + 1);
    }
}

/// `ledger serve --checkpoint-every 1` signs a checkpoint at start and
/// another once the chain has grown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_with_checkpoint_every_signs_checkpoints_as_the_chain_grows() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let (head, _) = ledger.store.head().await.unwrap();
    let arguments = ["serve", "--bind", "127.0.0.1:0", "--checkpoint-every", "1"];
    let mut server = ledger_command(&database.directory, Some(&database.url), Keys::Environment, &arguments)
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("ledger serve starts");
    let mut first_line = String::new();
    BufReader::new(server.stdout.take().unwrap()).read_line(&mut first_line).unwrap();
    assert!(first_line.starts_with("ledger listening on http://"), "{first_line}");

    let waited = wait_for_checkpoint(&ledger, head).await;
    append_donor(&ledger, "DANIDA").await;
    let grown = wait_for_checkpoint(&ledger, head + 1).await;
    server.kill().expect("the server we started stops");
    let _ = server.wait();
    let signed = waited.expect("a checkpoint of the demo is signed at start");
    assert_eq!(signed.verify(&audit::public_key(&test_keys()).unwrap()), Ok(()));
    assert!(grown.is_some(), "a checkpoint is signed after the chain grew");
}

async fn wait_for_checkpoint(ledger: &Ledger, size: u64) -> Option<SignedCheckpoint> {
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(CHECKPOINT_WAIT_MS) {
        if let Some(signed) = audit::checkpoint_of_size(&ledger.store, size).await.unwrap() {
            return Some(signed);
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    None
}

#[tokio::test]
async fn the_openapi_document_lists_the_audit_paths() {
    let database = TestDatabase::sqlite();
    let app = spawn_app(&database).await;
    let (status, document) = app.get_json("/openapi.json", None).await;
    assert_eq!(status, StatusCode::OK);
    for path in [
        "/v1/export",
        "/v1/checkpoints/public-key",
        "/v1/checkpoints/latest",
        "/v1/checkpoints/{size}",
        "/v1/proofs/inclusion",
        "/v1/proofs/consistency",
    ] {
        assert!(document["paths"].get(path).is_some(), "{path} is documented");
    }
}

test_on_both_backends! {
    /// `GET /checkpoint` answers the latest checkpoint as a C2SP checkpoint
    /// note (text/plain), which verifies under the published vkey both here
    /// and with an implementation the ledger did not write; it needs a
    /// token, and is 404 before any checkpoint is signed.
    async fn the_checkpoint_note_verifies_under_the_published_vkey_with_an_independent_implementation(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let response = app.get("/checkpoint", Some(&app.donor)).await;
        assert_eq!(response.status(), StatusCode::NOT_FOUND, "no checkpoint yet");
        assert_eq!(app.get("/checkpoint", None).await.status(), StatusCode::UNAUTHORIZED);
        let signed = audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap().checkpoint;

        let (_, key) = app.get_json("/v1/checkpoints/public-key", None).await;
        let vkey = key["vkey"].as_str().expect("the vkey is published").to_string();
        assert!(vkey.starts_with(&format!("{}+", app.ledger.origin)), "{vkey}");
        let response = app.get("/checkpoint", Some(&app.donor)).await;
        assert_eq!(response.status(), StatusCode::OK);
        assert_eq!(response.headers()["content-type"], "text/plain; charset=utf-8");
        let note_text = response.text().await.unwrap();
        let root = base64_of(&signed.checkpoint.root_hash);
        assert!(note_text.starts_with(&format!("{}\n{}\n{root}\n\n\u{2014} {} ", app.ledger.origin, signed.checkpoint.tree_size, app.ledger.origin)), "{note_text}");

        let parsed = ledger_core::note::SignedNote::parse(note_text.as_bytes()).unwrap();
        let log_key = ledger_core::note::VerifierKey::parse(&vkey).unwrap();
        let text = ledger_core::note::verify_checkpoint(&parsed, &log_key).unwrap();
        assert_eq!((text.tree_size, text.root_hash), (signed.checkpoint.tree_size, signed.checkpoint.root_hash));

        let verifier = signed_note::StandardVerifier::new(&vkey).expect("the independent implementation reads our vkey");
        let theirs = signed_note::Note::from_bytes(note_text.as_bytes()).expect("the independent implementation reads our note");
        let (verified, _) = theirs.verify(&signed_note::VerifierList::new(vec![Box::new(verifier)])).expect("and verifies it");
        assert_eq!(verified.len(), 1);
        assert_eq!(app.get("/checkpoint", Some(&app.donor)).await.text().await.unwrap(), note_text, "the same note every time");
    }
}

fn base64_of(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Tiles fetched from the server, keyed by (level, index, width), read by
/// the independent `tlog_tiles` implementation.
struct FetchedTiles(std::collections::HashMap<(u8, u64, u32), Vec<u8>>);

impl tlog_tiles::TileReader for FetchedTiles {
    fn height(&self) -> u8 {
        8
    }

    fn read_tiles(&self, tiles: &[tlog_tiles::Tile]) -> Result<Vec<Vec<u8>>, tlog_tiles::Error> {
        tiles
            .iter()
            .map(|tile| {
                self.0.get(&(tile.level(), tile.level_index(), tile.width())).cloned().ok_or(tlog_tiles::Error::InvalidTile)
            })
            .collect()
    }

    fn save_tiles(&self, _tiles: &[tlog_tiles::Tile], _data: &[Vec<u8>]) {}
}

/// The C2SP path of a tile, written here from the spec (`x001/x234/067`).
fn tile_path(level: &str, index: u64, width: u64) -> String {
    let mut groups = vec![format!("{:03}", index % 1000)];
    let mut rest = index / 1000;
    while rest > 0 {
        groups.push(format!("x{:03}", rest % 1000));
        rest /= 1000;
    }
    groups.reverse();
    let partial = if width == 256 { String::new() } else { format!(".p/{width}") };
    format!("/tile/{level}/{}{partial}", groups.join("/"))
}

test_on_both_backends! {
    /// An entry bundle is read from the database and each hash checked
    /// against the leaf the server's tree took in: a stored hash changed
    /// behind the server's back is refused, never served.
    async fn an_entry_bundle_whose_stored_hash_was_changed_is_refused(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let (size, _) = app.ledger.store.head().await.unwrap();
        assert!((3..256).contains(&size), "the demo fits in one partial bundle ({size})");
        let path = format!("/tile/entries/000.p/{size}");
        let served = app.get(&path, Some(&app.donor)).await;
        assert_eq!(served.status(), StatusCode::OK);
        let served = served.bytes().await.unwrap();

        drop_event_triggers(&app.ledger.store, &database).await;
        let stored: String =
            sqlx::query_scalar("SELECT hash FROM events WHERE seq = 3").fetch_one(app.ledger.store.pool()).await.unwrap();
        let changed = format!("{}{}", if stored.starts_with('0') { "1" } else { "0" }, &stored[1..]);
        sqlx::query("UPDATE events SET hash = $1 WHERE seq = 3").bind(&changed).execute(app.ledger.store.pool()).await.unwrap();

        let refused = app.get(&path, Some(&app.donor)).await;
        assert_eq!(refused.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(refused.headers()["content-type"], "application/problem+json");
        let level_0 = app.get(&format!("/tile/0/000.p/{size}"), Some(&app.donor)).await;
        assert_eq!(level_0.status(), StatusCode::OK, "the hash tiles come from the checked tree");
        assert_eq!(level_0.bytes().await.unwrap().len(), served.len() / 34 * 32);
    }
}

test_on_both_backends! {
    /// A tile client the ledger did not write (`tlog_tiles`, a port of Go's
    /// `golang.org/x/mod/sumdb/tlog`) authenticates the served tiles against
    /// the signed root and proves inclusion and consistency from them alone;
    /// entry bundles hold the event hashes; full tiles are immutable; bad
    /// paths are 400 and tiles beyond the tree 404.
    async fn an_independent_tile_client_proves_inclusion_and_consistency_from_the_served_tiles(database: TestDatabase) {
        let app = spawn_app(&database).await;
        let (demo_size, _) = app.ledger.store.head().await.unwrap();
        let old = audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap().checkpoint;
        for number in 0..(300 - demo_size) {
            append_donor(&app.ledger, &format!("D{number}")).await;
        }
        let signed = audit::create_checkpoint(&app.ledger, |_| {}).await.unwrap().checkpoint;
        let size = signed.checkpoint.tree_size;
        assert_eq!(size, 300);

        let mut fetched = std::collections::HashMap::new();
        for (level, nodes) in [(0u8, size), (1, size >> 8)] {
            for index in 0..nodes.div_ceil(256) {
                let width = (nodes - index * 256).min(256);
                let response = app.get(&tile_path(&level.to_string(), index, width), Some(&app.donor)).await;
                assert_eq!(response.status(), StatusCode::OK, "level {level} index {index} width {width}");
                assert_eq!(response.headers()["content-type"], "application/octet-stream");
                let cache = if width == 256 { "max-age=31536000, immutable" } else { "no-cache" };
                assert_eq!(response.headers()["cache-control"], cache);
                let bytes = response.bytes().await.unwrap().to_vec();
                assert_eq!(bytes.len() as u64, width * 32);
                fetched.insert((level, index, width as u32), bytes);
            }
        }
        let tiles = FetchedTiles(fetched);
        let reader = tlog_tiles::TileHashReader::new(size, tlog_tiles::Hash(signed.checkpoint.root_hash), &tiles);
        assert_eq!(tlog_tiles::tree_hash(size, &reader).unwrap().0, signed.checkpoint.root_hash);
        let export = export_text(&app.ledger, 0).await;
        let lines: Vec<&str> = export.lines().collect();
        for seq in [1u64, 2, 200, 256, 257, 300] {
            let event_hash = parse_line(lines[seq as usize - 1]).hash;
            let proof = tlog_tiles::prove_record(size, seq - 1, &reader).unwrap();
            let root = tlog_tiles::Hash(signed.checkpoint.root_hash);
            tlog_tiles::check_record(&proof, size, root, seq - 1, tlog_tiles::record_hash(&event_hash)).unwrap();
            let (_, ours) = app.get_json(&format!("/v1/proofs/inclusion?seq={seq}&size={size}"), Some(&app.auditor)).await;
            let theirs: Vec<String> = proof.iter().map(|hash| hex::encode(hash.0)).collect();
            assert_eq!(ours["proof"], serde_json::json!(theirs), "the same path for seq {seq}");
        }
        let old_size = old.checkpoint.tree_size;
        let consistency = tlog_tiles::prove_tree(size, old_size, &reader).unwrap();
        let (old_root, root) = (tlog_tiles::Hash(old.checkpoint.root_hash), tlog_tiles::Hash(signed.checkpoint.root_hash));
        tlog_tiles::check_tree(&consistency, size, root, old_size, old_root).unwrap();

        let response = app.get("/tile/entries/001.p/44", Some(&app.donor)).await;
        assert_eq!(response.status(), StatusCode::OK);
        let bundle = response.bytes().await.unwrap();
        assert_eq!(bundle.len(), 44 * 34);
        for (offset, entry) in bundle.chunks(34).enumerate() {
            assert_eq!(&entry[..2], &[0, 32], "each entry is its u16 length, then 32 bytes");
            assert_eq!(entry[2..], parse_line(lines[256 + offset]).hash, "entry {} is the event hash", 256 + offset);
        }

        for (path, status) in [
            ("/tile/0/001.p/45", StatusCode::NOT_FOUND),
            ("/tile/entries/001", StatusCode::NOT_FOUND),
            ("/tile/1/000", StatusCode::NOT_FOUND),
            ("/tile/0/1", StatusCode::BAD_REQUEST),
            ("/tile/0/x000/001", StatusCode::BAD_REQUEST),
            ("/tile/0/000.p/256", StatusCode::BAD_REQUEST),
            ("/tile/8/000", StatusCode::BAD_REQUEST),
            ("/tile/0/000.p/007", StatusCode::BAD_REQUEST),
        ] {
            let response = app.get(path, Some(&app.donor)).await;
            assert_eq!(response.status(), status, "{path}");
            assert_eq!(response.headers()["content-type"], "application/problem+json", "{path}");
        }
        assert_eq!(app.get("/tile/0/000", None).await.status(), StatusCode::UNAUTHORIZED);
    }
}
