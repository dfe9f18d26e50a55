//! `ledger witness` followed by a real ledger: its checkpoint notes and
//! consistency proofs are cosigned; a split view, a bad proof, a wrong old
//! size, an unknown origin or another key are refused with the statuses of
//! c2sp.org/tlog-witness, and none changes the witness's state.

#[macro_use]
mod audit_support;

use std::io::{BufRead, BufReader};
use std::sync::Arc;

use audit_support::*;
use base64::Engine as _;
use ledger_api::audit;
use ledger_api::witness::Witness;
use ledger_core::domain::{Command, DonorCode};
use ledger_core::note::{self, CheckpointText, SignedNote};
use ledger_core::store::AppendUnit;
use ledger_core::witness::verify_cosignature;

async fn append_donor(ledger: &ledger_api::config::Ledger, code: &str) {
    let command = Command::RegisterDonor {
        code: DonorCode::parse(code).unwrap(),
        name: format!("Donor {code}"),
        kind: "national_donor".to_string(),
        iati_identifier: None,
    };
    let unit = AppendUnit { actor: "admin@test".to_string(), commands: vec![command], idempotency: None, token_hash: None };
    ledger.appender().append(&[unit]).await.expect("the donor is appended");
}

/// An add-checkpoint body: old size, proof lines, empty line, note.
fn body(old_size: u64, proof: &[String], note: &str) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        let bytes = hex::decode(hash).unwrap();
        body.push_str(&base64::engine::general_purpose::STANDARD.encode(bytes));
        body.push('\n');
    }
    body.push('\n');
    body + note
}

async fn post(client: &reqwest::Client, url: &str, body: String) -> (u16, String, String) {
    let response = client.post(format!("{url}/add-checkpoint")).body(body).send().await.unwrap();
    let status = response.status().as_u16();
    let content_type =
        response.headers().get("content-type").map(|value| value.to_str().unwrap().to_string()).unwrap_or_default();
    (status, content_type, response.text().await.unwrap())
}

test_on_both_backends! {
    async fn a_witness_cosigns_the_ledgers_checkpoints_and_refuses_a_split_view(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let first = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
        let first_note = audit::checkpoint_note(&ledger, &first).unwrap().format();
        let log_vkey = audit::vkey(&ledger).unwrap();
        let state_file = database.path("witness.state");
        let witness = Arc::new(Witness::open(&state_file, log_vkey.clone(), &database.path("witness.key"), "witness.example/w1").unwrap());
        let witness_vkey = witness.vkey();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, ledger_api::witness::router(witness)).await.unwrap() });
        let client = reqwest::Client::new();

        let (status, content_type, line) = post(&client, &url, body(0, &[], &first_note)).await;
        assert_eq!((status, content_type.as_str()), (200, "text/plain; charset=utf-8"), "{line}");
        let cosigned = SignedNote::parse((first_note.clone() + &line).as_bytes()).unwrap();
        let time = verify_cosignature(&cosigned, &witness_vkey).expect("the cosignature verifies under the witness's vkey");
        assert!(time > 1_700_000_000);
        let state_after_first = std::fs::read_to_string(&state_file).unwrap();

        // A split view: another checkpoint of the same size, signed by the log's key.
        let forged_text = CheckpointText { origin: ledger.origin.clone(), tree_size: first.checkpoint.tree_size, root_hash: [7; 32], extensions: vec![] };
        let forged = note::sign_checkpoint(&forged_text, &audit::signing_key(&ledger.keys).unwrap()).unwrap().format();
        let size = first.checkpoint.tree_size;
        let (status, content_type, answer) = post(&client, &url, body(size, &[], &forged)).await;
        assert_eq!((status, content_type.as_str(), answer.as_str()), (409, "text/x.tlog.size", format!("{size}\n").as_str()));
        assert_eq!(std::fs::read_to_string(&state_file).unwrap(), state_after_first, "a refusal changes nothing");

        append_donor(&ledger, "DANIDA").await;
        append_donor(&ledger, "SIDA").await;
        let second = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
        let second_note = audit::checkpoint_note(&ledger, &second).unwrap().format();
        let mut cache = audit::MerkleCache::default();
        cache.catch_up(&ledger.store, None).await.unwrap();
        let proof = audit::prove_consistency(cache.tree(), size, second.checkpoint.tree_size).unwrap().proof;
        let mut bad_proof = proof.clone();
        bad_proof[0] = "00".repeat(32);
        let other_key = ed25519_dalek::SigningKey::from_bytes(&[5; 32]);
        let other_signed = note::sign_checkpoint(&note::CheckpointText::parse(&SignedNote::parse(second_note.as_bytes()).unwrap().text).unwrap(), &other_key).unwrap().format();
        let other_origin = note::sign_checkpoint(&CheckpointText { origin: "other.example/log".to_string(), ..forged_text.clone() }, &other_key).unwrap().format();
        for (request, expected, what) in [
            (body(second.checkpoint.tree_size + 1, &[], &second_note), 400, "an old size larger than the new"),
            (body(size, &bad_proof, &second_note), 422, "a bad consistency proof"),
            (body(size - 1, &proof, &second_note), 409, "an old size the witness did not cosign"),
            (body(size, &proof, &other_signed), 403, "a checkpoint signed by another key"),
            (body(size, &proof, &other_origin), 404, "an unknown origin"),
            (body(size, &proof, "not a note"), 400, "a malformed note"),
            ("garbage".to_string(), 400, "a malformed body"),
        ] {
            let (status, _, answer) = post(&client, &url, request).await;
            assert_eq!(status, expected, "{what}: {answer}");
            assert_eq!(std::fs::read_to_string(&state_file).unwrap(), state_after_first, "{what} changes nothing");
        }
        let (status, _, line) = post(&client, &url, body(size, &proof, &second_note)).await;
        assert_eq!(status, 200, "{line}");
        let cosigned = SignedNote::parse((second_note + &line).as_bytes()).unwrap();
        assert!(verify_cosignature(&cosigned, &witness_vkey).is_ok());
        assert!(std::fs::read_to_string(&state_file).unwrap().contains(&format!("\"tree_size\": {}", second.checkpoint.tree_size)));
    }
}

/// `ledger witness` creates its key file when missing (mode 0600) and
/// prints its own vkey when it starts.
#[test]
fn the_witness_command_creates_its_key_and_prints_its_vkey() {
    use std::os::unix::fs::PermissionsExt;
    let database = TestDatabase::sqlite();
    let log_vkey =
        note::VerifierKey::new("ledger.example.org/avrr", note::SIGNATURE_TYPE_ED25519, audit::public_key(&test_keys()).unwrap())
            .unwrap()
            .format();
    let args = [
        "witness",
        "--state",
        "w.state",
        "--log-key",
        &log_vkey,
        "--key",
        "w.key",
        "--bind",
        "127.0.0.1:0",
        "--name",
        "donor.example/witness",
    ];
    let mut child =
        ledger_command(&database.directory, None, Keys::KeyFile, &args).stdout(std::process::Stdio::piped()).spawn().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.next().unwrap().unwrap();
    let vkey_line = lines.next().unwrap().unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening.starts_with("witness donor.example/witness listening on http://127.0.0.1:"), "{listening}");
    let vkey = vkey_line.strip_prefix("witness vkey ").unwrap();
    let parsed = note::VerifierKey::parse(vkey).unwrap();
    assert_eq!((parsed.name.as_str(), parsed.signature_type), ("donor.example/witness", note::SIGNATURE_TYPE_COSIGNATURE));
    let mode = std::fs::metadata(database.path("w.key")).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    assert!(!database.path("w.state").exists(), "nothing cosigned yet");
}

test_on_both_backends! {
    /// `serve --witness URL`: the ledger sends its new checkpoints to the
    /// witness and `GET /checkpoint` serves them with the witness's
    /// cosignature after its own signature, and again after the chain grew.
    async fn the_ledger_sends_its_checkpoints_to_the_witness_and_serves_them_cosigned(database: TestDatabase) {
        let mut ledger = demo_ledger(&database).await;
        let witness = Arc::new(Witness::open(&database.path("w.state"), audit::vkey(&ledger).unwrap(), &database.path("w.key"), "witness.example/w1").unwrap());
        let witness_vkey = witness.vkey();
        let witness_listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let witness_url = format!("http://{}", witness_listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(witness_listener, ledger_api::witness::router(witness)).await.unwrap() });
        ledger.witness_urls = vec![witness_url];
        let token = ledger_api::tokens::create(&ledger.store, ledger_api::tokens::Role::Donor, Some("EU-AMIF"), "donor").await.unwrap();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/checkpoint", listener.local_addr().unwrap());
        let serving = ledger_api::http::serve_on(listener, ledger.clone(), None, std::future::pending());
        tokio::spawn(async move { serving.await.unwrap() });
        let client = reqwest::Client::new();
        let log_vkey = audit::vkey(&ledger).unwrap();
        for round in 0..2 {
            if round == 1 {
                append_donor(&ledger, "DANIDA").await;
            }
            let signed = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
            let started = std::time::Instant::now();
            let cosigned = loop {
                let text = client.get(&url).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
                let note = SignedNote::parse(text.as_bytes()).unwrap();
                if note.signatures.len() == 2 {
                    break note;
                }
                assert!(started.elapsed() < std::time::Duration::from_secs(20), "no cosignature came: {text}");
                tokio::time::sleep(std::time::Duration::from_millis(200)).await;
            };
            let text = note::verify_checkpoint(&cosigned, &log_vkey).unwrap();
            assert_eq!(text.tree_size, signed.checkpoint.tree_size);
            assert_eq!(cosigned.signatures[0].name, ledger.origin, "the ledger's own signature first");
            assert!(verify_cosignature(&cosigned, &witness_vkey).is_ok(), "round {round}");
            assert_eq!(ledger_core::witness::require_cosignatures(&cosigned, std::slice::from_ref(&witness_vkey), 1), Ok(1));
        }
        let state = std::fs::read_to_string(database.path("w.state")).unwrap();
        let (size, _) = ledger.store.head().await.unwrap();

        // The offline verifiers require N of a list of witness keys.
        let text = client.get(&url).bearer_auth(&token).send().await.unwrap().text().await.unwrap();
        std::fs::write(database.path("cosigned.note"), &text).unwrap();
        std::fs::write(database.path("export.jsonl"), export_text(&ledger, 0).await).unwrap();
        let other = note::VerifierKey::new("witness.example/w2", note::SIGNATURE_TYPE_COSIGNATURE, ed25519_dalek::SigningKey::from_bytes(&[6; 32]).verifying_key()).unwrap().format();
        let (log, witness) = (log_vkey.format(), witness_vkey.format());
        let verify = |extra: &[&str]| {
            let mut args = vec!["verify", "--export", "export.jsonl", "--checkpoint", "cosigned.note", "--public-key", &log];
            args.extend(extra);
            run_ledger_in(&database.directory, None, Keys::KeyFile, &args)
        };
        assert_exit(&verify(&["--witness-key", &witness]), 0, "cosigned by the one witness required");
        assert_exit(&verify(&["--witness-key", &witness, "--witness-key", &other, "--witnesses-required", "1"]), 0, "1 of 2");
        let too_few = verify(&["--witness-key", &witness, "--witness-key", &other]);
        assert_exit(&too_few, 1, "2 of 2 when one cosigned");
        assert!(stdout(&too_few).contains("1 of the required 2 witness cosignatures verify"), "{}", stdout(&too_few));
        assert_exit(&verify(&["--witness-key", &witness, "--witnesses-required", "2"]), 2, "more required than keys given");
        assert_exit(&verify(&["--witness-key", &log]), 2, "a log key is not a witness key");
        assert!(state.contains(&format!("\"tree_size\": {size}")), "the witness followed the ledger: {state}");
    }
}
