//! The independent audit, offline: exports of the demo ledger verified (and,
//! tampered with, refused with the right reason) by the export verifier, the
//! checkpoints the ledger signs, and the real `ledger` binary end to end.

#[macro_use]
mod audit_support;

use audit_support::*;
use ledger_api::audit::{self, AuditError, ExportCheck, ExportFault, TrustedCheckpoint};
use ledger_core::chain::{ChainFault, event_hash};
use ledger_core::checkpoint::{self, Checkpoint, CheckpointError, SignedCheckpoint};
use ledger_core::domain::{Command, DonorCode};
use ledger_core::keys::{SecretKey, TagError};
use ledger_core::merkle_stream::MerkleRootBuilder;
use ledger_core::store::{AppendUnit, UnitOutcome};

/// The seq of the first event of `event_type` in an export.
fn first_seq_of(lines: &[String], event_type: &str) -> u64 {
    lines.iter().map(|line| parse_line(line)).find(|event| event.event_type == event_type).expect("the demo holds this type").seq
}

/// The export's failure, which must exist.
fn failure_of(text: &str, check: &ExportCheck) -> audit::ExportFailure {
    let report = verify_text(text, check);
    report.failure.unwrap_or_else(|| panic!("the export must not verify, but {} events did", report.events))
}

/// The root of the Merkle tree over every event hash of an export.
fn root_of_export(text: &str) -> [u8; 32] {
    let mut roots = MerkleRootBuilder::new();
    for line in text.lines() {
        roots.push(&parse_line(line).hash);
    }
    roots.root()
}

test_on_both_backends! {
    /// An untouched full export verifies: continuity, links, hashes, tags,
    /// and the root of its events equals the checkpoint the ledger signed.
    async fn a_full_export_verifies_with_tags_and_against_a_checkpoint_of_its_size(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let text = export_text(&ledger, 0).await;
        let (head_seq, head_hash) = ledger.store.head().await.unwrap();
        let outcome = audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
        assert!(outcome.created);
        assert_eq!(outcome.checkpoint.checkpoint.tree_size, head_seq);
        assert_eq!(outcome.checkpoint.verify(&audit::public_key(&ledger.keys).unwrap()), Ok(()));

        let report = verify_text(&text, &full_check(Some(&outcome.checkpoint)));
        assert_eq!(report.failure, None);
        assert_eq!((report.events, report.head_seq, report.head_hash), (head_seq, head_seq, head_hash));
        assert!(report.tags_checked);
        assert_eq!(report.checkpoint_size, Some(head_seq));
        assert_eq!(report.bytes, text.len() as u64);
        assert_eq!(root_of_export(&text), outcome.checkpoint.checkpoint.root_hash);

        let without_keys = verify_text(&text, &ExportCheck::default());
        assert!(without_keys.is_valid() && !without_keys.tags_checked);
    }
}

test_on_both_backends! {
    /// Checkpointing an unchanged chain again returns the stored checkpoint;
    /// a grown chain gets a new one, and the latest is the largest.
    async fn a_checkpoint_is_stored_once_per_size_and_the_latest_is_the_largest(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let first = audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
        let again = audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
        assert!(first.created && !again.created);
        assert_eq!(again.checkpoint, first.checkpoint);
        append_donor(&ledger, "DANIDA").await;
        let grown = audit::create_checkpoint(&ledger, |_| {}).await.unwrap();
        assert_eq!(grown.checkpoint.checkpoint.tree_size, first.checkpoint.checkpoint.tree_size + 1);
        assert_eq!(audit::latest_checkpoint(&ledger.store).await.unwrap(), Some(grown.checkpoint.clone()));
        let size = first.checkpoint.checkpoint.tree_size;
        assert_eq!(audit::checkpoint_of_size(&ledger.store, size).await.unwrap(), Some(first.checkpoint));
        assert_eq!(audit::checkpoint_of_size(&ledger.store, size + 5).await.unwrap(), None);
    }
}

test_on_both_backends! {
    /// The ledger never signs a chain that does not verify, nor an empty one.
    async fn a_checkpoint_is_refused_over_an_empty_chain_or_one_that_does_not_verify(database: TestDatabase) {
        let empty = database.open().await;
        assert!(matches!(audit::create_checkpoint(&empty, |_| {}).await, Err(AuditError::EmptyLedger)));
        let ledger = demo_ledger(&database).await;
        let mut other_keys = test_keys();
        other_keys.active_hmac = SecretKey::from_bytes([9; 32]);
        let impostor = database.open_with_keys(other_keys).await;
        match audit::create_checkpoint(&impostor, |_| {}).await {
            Err(AuditError::ChainInvalid(failure)) => {
                assert_eq!(failure.seq, 1);
                assert!(matches!(failure.fault, ChainFault::UnknownKey(_)), "{:?}", failure.fault);
            }
            other => panic!("expected the chain to be refused, got {other:?}"),
        }
        assert_eq!(audit::latest_checkpoint(&ledger.store).await.unwrap(), None);
    }
}

/// Appends one donor registration.
async fn append_donor(ledger: &ledger_api::config::Ledger, code: &str) {
    let command = Command::RegisterDonor {
        code: DonorCode::parse(code).unwrap(),
        name: format!("Donor {code}"),
        kind: "national_donor".to_string(),
        iati_identifier: None,
    };
    let unit = AppendUnit { actor: "admin@test".to_string(), commands: vec![command], idempotency: None, token_hash: None };
    let outcomes = ledger.appender().append(&[unit]).await.unwrap();
    assert!(matches!(outcomes.as_slice(), [UnitOutcome::Appended(_)]), "{outcomes:?}");
}

#[tokio::test]
async fn a_changed_byte_in_a_payload_is_rejected_at_its_line() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let mut lines = split_lines(&export_text(&ledger, 0).await);
    let seq = first_seq_of(&lines, "cash_reinsertion_paid");
    let line = &mut lines[seq as usize - 1];
    assert!(line.contains("350.00"));
    *line = line.replacen("350.00", "350.01", 1);
    let failure = failure_of(&join_lines(&lines), &ExportCheck::default());
    assert_eq!((failure.line, failure.seq), (Some(seq), Some(seq)));
    assert_eq!(failure.fault, ExportFault::Chain(ChainFault::HashMismatch));
    assert!(failure.to_string().starts_with(&format!("line {seq} (seq {seq}): hash mismatch")), "{failure}");
}

#[tokio::test]
async fn a_rewritten_tail_passes_the_chain_walk_but_not_the_tags_nor_the_checkpoint() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let original = export_text(&ledger, 0).await;
    let checkpoint = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
    let mut events: Vec<_> = original.lines().map(parse_line).collect();
    let seq = first_seq_of(&split_lines(&original), "cash_reinsertion_paid");
    // Someone with the database but not the HMAC key changes an amount and
    // recomputes every hash from there on; the tags cannot be recomputed.
    let index = seq as usize - 1;
    events[index].payload = events[index].payload.replacen("350.00", "35.00", 1);
    for position in index..events.len() {
        if position > 0 {
            events[position].prev_hash = events[position - 1].hash;
        }
        events[position].hash = event_hash(&events[position].hashed_fields());
    }
    let forged: String = events.iter().map(|event| serde_json::to_string(event).unwrap() + "\n").collect();

    assert!(
        verify_text(&forged, &ExportCheck::default()).is_valid(),
        "a chain walk without keys cannot see a consistent rewrite"
    );
    let failure = failure_of(&forged, &full_check(None));
    assert_eq!(failure.seq, Some(seq));
    assert!(matches!(failure.fault, ExportFault::Chain(ChainFault::BadTag(TagError::BadTag(_)))), "{:?}", failure.fault);
    let without_tags = ExportCheck { hmac_keys: vec![], ..full_check(Some(&checkpoint)) };
    let failure = failure_of(&forged, &without_tags);
    assert!(
        matches!(failure.fault, ExportFault::CheckpointRootMismatch { tree_size, .. } if tree_size == checkpoint.checkpoint.tree_size)
    );
}

#[tokio::test]
async fn a_removed_line_is_rejected_as_a_gap_at_the_missing_seq() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let mut lines = split_lines(&export_text(&ledger, 0).await);
    lines.remove(9);
    let failure = failure_of(&join_lines(&lines), &full_check(None));
    assert_eq!((failure.line, failure.seq), (Some(10), Some(10)));
    assert_eq!(failure.fault, ExportFault::Chain(ChainFault::Gap { expected: 10, found: 11 }));
}

#[tokio::test]
async fn swapped_lines_are_rejected_at_the_first_of_them() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let mut lines = split_lines(&export_text(&ledger, 0).await);
    lines.swap(20, 21);
    let failure = failure_of(&join_lines(&lines), &full_check(None));
    assert_eq!((failure.line, failure.seq), (Some(21), Some(21)));
    assert_eq!(failure.fault, ExportFault::Chain(ChainFault::Gap { expected: 21, found: 22 }));
}

#[tokio::test]
async fn a_truncated_tail_verifies_alone_but_not_against_a_checkpoint_of_the_full_size() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let mut lines = split_lines(&export_text(&ledger, 0).await);
    let full_size = lines.len() as u64;
    let checkpoint = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
    lines.truncate(lines.len() - 3);
    let truncated = join_lines(&lines);
    let alone = verify_text(&truncated, &full_check(None));
    assert!(alone.is_valid(), "a chain walk cannot see a missing tail: {:?}", alone.failure);
    assert_eq!(alone.events, full_size - 3);
    let failure = failure_of(&truncated, &full_check(Some(&checkpoint)));
    assert_eq!((failure.line, failure.seq), (None, Some(full_size - 2)));
    assert_eq!(failure.fault, ExportFault::ShorterThanCheckpoint { events: full_size - 3, tree_size: full_size });
    // A longer export matches a checkpoint of a prefix of it.
    append_donor(&ledger, "DANIDA").await;
    let longer = export_text(&ledger, 0).await;
    assert!(verify_text(&longer, &full_check(Some(&checkpoint))).is_valid());
}

#[tokio::test]
async fn a_forged_checkpoint_is_rejected() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let text = export_text(&ledger, 0).await;
    let genuine = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;

    let mut changed_root = genuine.clone();
    changed_root.checkpoint.root_hash[0] ^= 1;
    let failure = failure_of(&text, &full_check(Some(&changed_root)));
    assert_eq!((failure.line, failure.seq), (None, None));
    assert_eq!(failure.fault, ExportFault::CheckpointSignature(CheckpointError::InvalidSignature));

    let mut changed_size = genuine.clone();
    changed_size.checkpoint.tree_size -= 1;
    let failure = failure_of(&text, &full_check(Some(&changed_size)));
    assert_eq!(failure.fault, ExportFault::CheckpointSignature(CheckpointError::InvalidSignature));

    // Signed by someone else, but relabelled with the ledger's key id.
    let other_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]);
    let mut relabelled = checkpoint::sign(genuine.checkpoint.clone(), &other_key);
    relabelled.key_id = genuine.key_id.clone();
    let failure = failure_of(&text, &full_check(Some(&relabelled)));
    assert_eq!(failure.fault, ExportFault::CheckpointSignature(CheckpointError::InvalidSignature));

    // Genuinely signed by the ledger, but over another history.
    let other_root = Checkpoint::new(genuine.checkpoint.tree_size, [5; 32], "2026-01-01T00:00:00Z").unwrap();
    let signed_other = checkpoint::sign(other_root, &audit::signing_key(&ledger.keys).unwrap());
    let failure = failure_of(&text, &full_check(Some(&signed_other)));
    let size = genuine.checkpoint.tree_size;
    assert_eq!((failure.line, failure.seq), (Some(size), Some(size)));
    assert!(
        matches!(failure.fault, ExportFault::CheckpointRootMismatch { tree_size, .. } if tree_size == size),
        "{:?}",
        failure.fault
    );
}

#[tokio::test]
async fn a_checkpoint_under_a_wrong_public_key_is_rejected() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let text = export_text(&ledger, 0).await;
    let genuine = audit::create_checkpoint(&ledger, |_| {}).await.unwrap().checkpoint;
    let wrong_key = ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key();
    let check = ExportCheck {
        checkpoint: Some(TrustedCheckpoint::Json { checkpoint: genuine.clone(), public_key: wrong_key }),
        ..full_check(None)
    };
    let failure = failure_of(&text, &check);
    assert_eq!(
        failure.fault,
        ExportFault::CheckpointSignature(CheckpointError::KeyIdMismatch {
            checkpoint_key_id: genuine.key_id.clone(),
            verifying_key_id: checkpoint::public_key_id(&wrong_key),
        })
    );
}

#[tokio::test]
async fn a_wrong_hmac_key_is_rejected_and_rotated_keys_verify_together() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let mut rotated = test_keys();
    rotated.rotate_hmac().unwrap();
    let after_rotation = database.open_with_keys(rotated.clone()).await;
    append_donor(&after_rotation, "DANIDA").await;
    let text = export_text(&ledger, 0).await;
    let last_seq = text.lines().count() as u64;

    let wrong = ExportCheck { hmac_keys: vec![SecretKey::from_bytes([9; 32])], checkpoint: None };
    let failure = failure_of(&text, &wrong);
    assert_eq!((failure.line, failure.seq), (Some(1), Some(1)));
    assert!(matches!(failure.fault, ExportFault::Chain(ChainFault::UnknownKey(TagError::UnknownKey(_)))), "{:?}", failure.fault);

    let only_new = ExportCheck { hmac_keys: vec![rotated.active_hmac.clone()], checkpoint: None };
    assert_eq!(failure_of(&text, &only_new).seq, Some(1));
    let only_old = ExportCheck { hmac_keys: vec![test_keys().active_hmac], checkpoint: None };
    assert_eq!(failure_of(&text, &only_old).seq, Some(last_seq), "the event after the rotation needs the new key");
    let both = ExportCheck { hmac_keys: vec![rotated.active_hmac.clone(), test_keys().active_hmac], checkpoint: None };
    assert!(verify_text(&text, &both).is_valid());

    let mut lines = split_lines(&text);
    let mut event = parse_line(&lines[4]);
    event.tag[0] ^= 1;
    lines[4] = serde_json::to_string(&event).unwrap();
    let failure = failure_of(&join_lines(&lines), &both);
    assert_eq!(failure.seq, Some(5));
    assert!(matches!(failure.fault, ExportFault::Chain(ChainFault::BadTag(_))), "{:?}", failure.fault);
}

#[tokio::test]
async fn a_malformed_line_is_rejected_at_that_line_with_the_reason() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let lines = split_lines(&export_text(&ledger, 0).await);
    let with_extra_field = lines[2].replacen("{\"seq\"", "{\"note\":\"added\",\"seq\"", 1);
    let without_tag = {
        let mut object: serde_json::Value = serde_json::from_str(&lines[2]).unwrap();
        object.as_object_mut().unwrap().remove("tag");
        object.to_string()
    };
    let short_hash = lines[2].replacen("\"hash\":\"", "\"hash\":\"ab", 1);
    let cases = [
        ("not json".to_string(), "expected"),
        (String::new(), "EOF"),
        (with_extra_field, "unknown field `note`"),
        (without_tag, "missing field `tag`"),
        (short_hash, "64 lower-case hex characters"),
        (format!("{} {{}}", lines[2]), "trailing characters"),
    ];
    for (replacement, reason) in cases {
        let mut tampered = lines.clone();
        tampered[2] = replacement.clone();
        let failure = failure_of(&join_lines(&tampered), &full_check(None));
        assert_eq!((failure.line, failure.seq), (Some(3), None), "{replacement:?}");
        match &failure.fault {
            ExportFault::Malformed(message) => assert!(message.contains(reason), "{replacement:?}: {message}"),
            other => panic!("{replacement:?}: expected a malformed line, got {other:?}"),
        }
    }
    // An export cut off in the middle of its last line.
    let text = join_lines(&lines);
    let cut = &text[..text.len() - 40];
    let failure = failure_of(cut, &full_check(None));
    assert_eq!(failure.line, Some(lines.len() as u64));
    assert!(matches!(failure.fault, ExportFault::Malformed(_)));
}

#[tokio::test]
async fn an_incremental_export_is_refused_alone_and_verifies_appended_to_the_full_one() {
    let database = TestDatabase::sqlite();
    let ledger = demo_ledger(&database).await;
    let full = export_text(&ledger, 0).await;
    let first_twenty = join_lines(&split_lines(&full)[..20]);
    let incremental = export_text(&ledger, 20).await;
    assert_eq!(first_twenty.clone() + &incremental, full);
    let failure = failure_of(&incremental, &full_check(None));
    assert_eq!((failure.line, failure.seq), (Some(1), Some(1)));
    assert_eq!(failure.fault, ExportFault::DoesNotStartAtOne { found: 21 });
    assert!(verify_text(&(first_twenty + &incremental), &full_check(None)).is_valid());
    assert_eq!(export_text(&ledger, full.lines().count() as u64).await, "", "nothing after the head");
}

/// As docs/audit.md says, an export starts with the line of seq 1, so an
/// empty one is invalid at line 1; and a checkpoint of size 0 proves
/// nothing (docs/merkle.md), so it is refused however good its signature.
#[tokio::test]
async fn an_empty_export_and_a_checkpoint_of_size_zero_are_refused() {
    let keys = test_keys();
    let failure = failure_of("", &full_check(None));
    assert_eq!((failure.line, failure.seq, failure.fault), (Some(1), Some(1), ExportFault::Empty));
    let empty = Checkpoint::new(0, ledger_core::merkle::empty_root(), "2026-01-01T00:00:00Z").unwrap();
    let signed = checkpoint::sign(empty, &audit::signing_key(&keys).unwrap());
    let failure = failure_of("", &full_check(Some(&signed)));
    assert_eq!(failure.fault, ExportFault::CheckpointSignature(CheckpointError::EmptyTree));
    let export = generated_export(2);
    assert_eq!(
        failure_of(&export, &full_check(Some(&signed))).fault,
        ExportFault::CheckpointSignature(CheckpointError::EmptyTree)
    );
    let one = Checkpoint::new(1, [1; 32], "2026-01-01T00:00:00Z").unwrap();
    let signed = checkpoint::sign(one, &audit::signing_key(&keys).unwrap());
    assert_eq!(failure_of("", &full_check(Some(&signed))).fault, ExportFault::Empty);
}

/// Every line, the last included, is ended by a line feed: a last line
/// without one is refused at that line, even when its event is whole.
#[test]
fn an_export_whose_last_line_lacks_its_line_feed_is_refused_at_that_line() {
    let export = generated_export(3);
    assert!(verify_text(&export, &full_check(None)).is_valid());
    let cut = export.strip_suffix('\n').unwrap();
    let failure = failure_of(cut, &full_check(None));
    assert_eq!((failure.line, failure.seq, failure.fault), (Some(3), Some(3), ExportFault::NoLineFeed));
    let report = verify_text(cut, &full_check(None));
    assert_eq!(report.events, 2, "the events before the last line verified");
}

/// The id is the UUID hyphenated in lower case, as docs/audit.md says:
/// upper case, no hyphens, braces or a URN are refused at their line.
#[test]
fn an_id_written_other_than_hyphenated_lower_case_is_refused() {
    let export = generated_export(2);
    let mut lines = split_lines(&export);
    let id = parse_line(&lines[1]).id.hyphenated().to_string();
    let upper_case = "0192ABCD-0000-7000-8000-00000000000A".to_string();
    for written in [upper_case, id.replace('-', ""), format!("{{{id}}}"), format!("urn:uuid:{id}")] {
        lines[1] = split_lines(&export)[1].replacen(&id, &written, 1);
        assert_ne!(lines[1], split_lines(&export)[1]);
        let failure = failure_of(&join_lines(&lines), &full_check(None));
        assert_eq!(failure.line, Some(2), "{written}");
        let ExportFault::Malformed(reason) = failure.fault else { panic!("{written}: not malformed") };
        assert!(reason.contains("id must be a UUID written hyphenated in lower case"), "{written}: {reason}");
    }
}

// ---------------------------------------------------------------------------
// The real binary.

fn signed_checkpoint_file(database: &TestDatabase, name: &str) -> SignedCheckpoint {
    serde_json::from_str(&std::fs::read_to_string(database.path(name)).unwrap()).expect("a signed checkpoint")
}

/// `ledger demo`, `export`, `checkpoint`, then `verify --export` of the file
/// with its key and checkpoint: exit 0; a tampered copy exits 1 naming the
/// line; a missing file exits 2. The embedded database keeps its keys in the
/// key file beside it.
#[tokio::test]
async fn export_then_checkpoint_then_verify_export_exits_0_with_the_real_binary() {
    let database = TestDatabase::sqlite();
    assert_exit(&run_ledger(&database, Keys::KeyFile, &["demo"]), 0, "ledger demo");
    assert_exit(&run_ledger(&database, Keys::KeyFile, &["export", "--out", "export.jsonl"]), 0, "ledger export");
    assert!(!database.path("export.jsonl.partial").exists());
    assert_exit(&run_ledger(&database, Keys::KeyFile, &["checkpoint", "--out", "checkpoint.json"]), 0, "ledger checkpoint");
    let public_key_run = run_ledger(&database, Keys::KeyFile, &["checkpoint", "--public-key"]);
    assert_exit(&public_key_run, 0, "ledger checkpoint --public-key");
    let public_key = stdout(&public_key_run).trim().to_string();
    let key_file: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(database.path("ledger.db.keys")).unwrap()).unwrap();
    let hmac_key = key_file["hmac_key"].as_str().unwrap().to_string();
    let checkpoint = signed_checkpoint_file(&database, "checkpoint.json");
    let export = std::fs::read_to_string(database.path("export.jsonl")).unwrap();
    assert_eq!(checkpoint.checkpoint.tree_size, export.lines().count() as u64);

    let verify = |file: &str, key: &str| {
        let args = ["verify", "--export", file, "--hmac-key", &hmac_key, "--checkpoint", "checkpoint.json", "--public-key", key];
        run_ledger(&database, Keys::KeyFile, &args)
    };
    let valid = verify("export.jsonl", &public_key);
    assert_exit(&valid, 0, "verify --export of an untouched export");
    assert!(
        stdout(&valid).starts_with(&format!("export valid: {} events", checkpoint.checkpoint.tree_size)),
        "{}",
        stdout(&valid)
    );

    let mut lines = split_lines(&export);
    lines[6] = lines[6].replacen("IOM", "ION", 1);
    std::fs::write(database.path("tampered.jsonl"), join_lines(&lines)).unwrap();
    let invalid = verify("tampered.jsonl", &public_key);
    assert_exit(&invalid, 1, "verify --export of a tampered export");
    assert!(stdout(&invalid).contains("INVALID at line 7 (seq 7): hash mismatch"), "{}", stdout(&invalid));

    let other_key = checkpoint::format_public_key_hex(&ed25519_dalek::SigningKey::from_bytes(&[7; 32]).verifying_key());
    let wrong_key = verify("export.jsonl", &other_key);
    assert_exit(&wrong_key, 1, "verify --export under another public key");
    assert!(stdout(&wrong_key).contains("checkpoint does not verify"), "{}", stdout(&wrong_key));

    assert_exit(&verify("missing.jsonl", &public_key), 2, "verify --export of a missing file");
    assert_exit(&verify("export.jsonl", "not-hex"), 2, "verify --export with a malformed public key");
}

/// With keys from the environment and no `LEDGER_CHECKPOINT_KEY`, no
/// signing key is derived from the HMAC key: signing is refused, saying
/// how to set one, and the rest of the ledger works.
#[test]
fn without_a_checkpoint_key_in_the_environment_signing_is_refused_and_the_rest_works() {
    let database = TestDatabase::sqlite();
    let run = |args: &[&str]| run_ledger(&database, Keys::EnvironmentWithoutCheckpointKey, args);
    assert_exit(&run(&["demo"]), 0, "ledger demo");
    assert_exit(&run(&["verify"]), 0, "ledger verify");
    assert_exit(&run(&["export", "--out", "export.jsonl"]), 0, "ledger export");
    let refused = run(&["checkpoint"]);
    assert_exit(&refused, 1, "ledger checkpoint without a signing key");
    assert!(stdout(&refused).contains("checkpoint REFUSED: checkpoint signing is off"), "{}", stdout(&refused));
    assert!(stdout(&refused).contains("set LEDGER_CHECKPOINT_KEY to 64 hex characters"), "{}", stdout(&refused));
    let public_key = run(&["checkpoint", "--public-key"]);
    assert_exit(&public_key, 2, "ledger checkpoint --public-key without a signing key");
    assert!(String::from_utf8_lossy(&public_key.stderr).contains("LEDGER_CHECKPOINT_KEY"));
    let serve = run(&["serve", "--bind", "127.0.0.1:0", "--checkpoint-every", "60"]);
    assert_exit(&serve, 2, "serve --checkpoint-every without a signing key");
    assert!(String::from_utf8_lossy(&serve.stderr).contains("--checkpoint-every: checkpoint signing is off"));
    assert!(!database.path("ledger.db.keys").exists(), "keys from the environment write no key file");
}

test_on_both_backends! {
    /// Checkpoints signed with the key an older version derived from the
    /// HMAC key, and with a configured retired key, keep verifying: both
    /// are published with the period they signed in.
    async fn retired_checkpoint_keys_are_published_with_their_validity(database: TestDatabase) {
        let mut keys = test_keys();
        let retired = ed25519_dalek::SigningKey::from_bytes(&[9; 32]);
        let retired_hex = checkpoint::format_public_key_hex(&retired.verifying_key());
        keys.retired_checkpoint.push(
            ledger_core::keys::RetiredCheckpointKey::parse(&retired_hex, None, "2026-03-01T00:00:00Z").unwrap(),
        );
        let ledger = database.open_with_keys(keys.clone()).await;
        append_donor(&ledger, "DANIDA").await;
        append_donor(&ledger, "SIDA").await;
        let mut cache = audit::MerkleCache::default();
        cache.catch_up(&ledger.store, None).await.unwrap();
        let root = |size| cache.tree().root(size).unwrap();
        let derived = ed25519_dalek::SigningKey::from_bytes(&keys.derived_checkpoint_seeds()[0]);
        let old = checkpoint::sign(Checkpoint::new(1, root(1), "2026-01-02T00:00:00Z").unwrap(), &derived);
        audit::store_checkpoint(&ledger.store, &old).await.unwrap();
        let older = checkpoint::sign(Checkpoint::new(2, root(2), "2026-02-02T00:00:00Z").unwrap(), &derived);
        audit::store_checkpoint(&ledger.store, &older).await.unwrap();

        let published = audit::retired_public_keys(&ledger).await.unwrap();
        assert_eq!(published.len(), 2, "{published:?}");
        assert_eq!(published[0].public_key, retired_hex);
        assert_eq!((published[0].valid_from.as_deref(), published[0].valid_until.as_str()), (None, "2026-03-01T00:00:00Z"));
        assert!(!published[0].derived_from_hmac_key);
        let derived_view = &published[1];
        assert!(derived_view.derived_from_hmac_key);
        assert_eq!(derived_view.key_id, old.key_id);
        assert_eq!(derived_view.valid_from.as_deref(), Some("2026-01-02T00:00:00Z"));
        assert_eq!(derived_view.valid_until, "2026-02-02T00:00:00Z");
        let derived_public = checkpoint::parse_public_key_hex(&derived_view.public_key).unwrap();
        assert_eq!(old.verify(&derived_public), Ok(()));
        assert_eq!(older.verify(&derived_public), Ok(()));
        assert_ne!(old.key_id, checkpoint::public_key_id(&audit::public_key(&keys).unwrap()), "the derived key signs no more");
    }
}

/// `ledger checkpoint --format note` writes a C2SP checkpoint note named by
/// `LEDGER_ORIGIN`; `--public-key --format note` prints its vkey; `verify
/// --export` and `verify-proof` take the note with the vkey, and refuse it
/// under a hex key, under another origin's vkey, or changed.
#[tokio::test]
async fn checkpoint_notes_are_written_and_verified_offline_with_the_vkey() {
    let database = TestDatabase::sqlite();
    let run = |args: &[&str]| {
        let mut command = ledger_command(&database.directory, Some(&database.url), Keys::Environment, args);
        command.env("LEDGER_ORIGIN", "ledger.example.org/avrr").output().unwrap()
    };
    assert_exit(&run(&["demo"]), 0, "ledger demo");
    assert_exit(&run(&["export", "--out", "export.jsonl"]), 0, "ledger export");
    assert_exit(&run(&["checkpoint", "--format", "note", "--out", "checkpoint.note"]), 0, "ledger checkpoint --format note");
    let vkey_run = run(&["checkpoint", "--public-key", "--format", "note"]);
    assert_exit(&vkey_run, 0, "ledger checkpoint --public-key --format note");
    let vkey = stdout(&vkey_run).trim().to_string();
    assert!(vkey.starts_with("ledger.example.org/avrr+"), "{vkey}");
    let note = std::fs::read_to_string(database.path("checkpoint.note")).unwrap();
    let events = std::fs::read_to_string(database.path("export.jsonl")).unwrap().lines().count();
    assert!(note.starts_with(&format!("ledger.example.org/avrr\n{events}\n")), "{note}");

    let offline = |args: &[&str]| run_ledger_in(&database.directory, None, Keys::KeyFile, args);
    let verify =
        |key: &str, file: &str| offline(&["verify", "--export", "export.jsonl", "--checkpoint", file, "--public-key", key]);
    let valid = verify(&vkey, "checkpoint.note");
    assert_exit(&valid, 0, "verify --export against the note");
    assert!(stdout(&valid).contains(&format!("the first {events} events match the signed checkpoint")), "{}", stdout(&valid));

    let hex_key = audit::public_key_hex(&test_keys()).unwrap();
    let under_hex = verify(&hex_key, "checkpoint.note");
    assert_exit(&under_hex, 1, "a note under a hex key");
    assert!(stdout(&under_hex).contains("give --public-key as the log's vkey"), "{}", stdout(&under_hex));
    let other_origin = ledger_core::note::VerifierKey::new(
        "ledger.example.org/other",
        ledger_core::note::SIGNATURE_TYPE_ED25519,
        audit::public_key(&test_keys()).unwrap(),
    )
    .unwrap()
    .format();
    let wrong_name = verify(&other_origin, "checkpoint.note");
    assert_exit(&wrong_name, 1, "a note under another origin's vkey");
    assert!(stdout(&wrong_name).contains("no signature by ledger.example.org/other"), "{}", stdout(&wrong_name));
    std::fs::write(database.path("changed.note"), note.replacen(&format!("\n{events}\n"), &format!("\n{}\n", events - 1), 1))
        .unwrap();
    let changed = verify(&vkey, "changed.note");
    assert_exit(&changed, 1, "a changed note");
    assert!(stdout(&changed).contains("does not verify over the note's text"), "{}", stdout(&changed));
    std::fs::write(database.path("garbage.note"), "not a note").unwrap();
    let garbage = verify(&vkey, "garbage.note");
    assert_exit(&garbage, 1, "a malformed note");
    assert!(stdout(&garbage).contains("neither a JSON checkpoint nor a checkpoint note"), "{}", stdout(&garbage));
    assert_exit(&verify("nobody+00000000+AAAA", "checkpoint.note"), 2, "a malformed vkey is a usage error");

    let inclusion = run(&["prove", "--seq", "3"]);
    assert_exit(&inclusion, 0, "prove --seq 3");
    std::fs::write(database.path("inclusion.json"), stdout(&inclusion)).unwrap();
    let proof = offline(&["verify-proof", "--proof", "inclusion.json", "--checkpoint", "checkpoint.note", "--public-key", &vkey]);
    assert_exit(&proof, 0, "verify-proof against the note");
    assert!(stdout(&proof).contains(&format!("signed checkpoints of size {events}")), "{}", stdout(&proof));
}

/// `verify --export` and `verify-proof` run on an auditor's machine: they
/// open no database and create no file.
#[test]
fn the_offline_checks_open_no_database() {
    let database = TestDatabase::sqlite();
    std::fs::write(database.path("empty.jsonl"), "").unwrap();
    let output = run_ledger_in(&database.directory, None, Keys::KeyFile, &["verify", "--export", "empty.jsonl"]);
    assert_exit(&output, 1, "verify --export of an empty export");
    assert!(stdout(&output).contains("export INVALID at line 1 (seq 1): the export holds no events"), "{}", stdout(&output));
    std::fs::write(database.path("proof.json"), "{}").unwrap();
    let output = run_ledger_in(&database.directory, None, Keys::KeyFile, &["verify-proof", "--proof", "proof.json"]);
    assert_exit(&output, 1, "verify-proof of an empty object");
    let mut names: Vec<_> = std::fs::read_dir(&database.directory).unwrap().map(|entry| entry.unwrap().file_name()).collect();
    names.sort();
    assert_eq!(names, ["empty.jsonl", "proof.json"], "no database and no key file was created");
    let output = run_ledger_in(&database.directory, None, Keys::KeyFile, &["verify", "--hmac-key", "00"]);
    assert_exit(&output, 2, "--hmac-key without --export is a usage error");
}

/// `ledger prove` prints proofs that `ledger verify-proof` accepts, alone and
/// against checkpoints; a damaged proof or a checkpoint of another size exits 1.
#[tokio::test]
async fn proofs_printed_by_prove_verify_offline_against_checkpoints() {
    let database = TestDatabase::sqlite();
    let run = |args: &[&str]| run_ledger(&database, Keys::Environment, args);
    assert_exit(&run(&["demo"]), 0, "ledger demo");
    assert_exit(&run(&["checkpoint", "--out", "old.json"]), 0, "first checkpoint");
    let old_size = signed_checkpoint_file(&database, "old.json").checkpoint.tree_size;
    append_donor(&database.open().await, "DANIDA").await;
    assert_exit(&run(&["checkpoint", "--out", "new.json"]), 0, "second checkpoint");
    let public_key = audit::public_key_hex(&test_keys()).unwrap();

    let inclusion = run(&["prove", "--seq", "31", "--size", &old_size.to_string()]);
    assert_exit(&inclusion, 0, "prove --seq");
    std::fs::write(database.path("inclusion.json"), stdout(&inclusion)).unwrap();
    let consistency = run(&["prove", "--from", &old_size.to_string(), "--to", &(old_size + 1).to_string()]);
    assert_exit(&consistency, 0, "prove --from --to");
    std::fs::write(database.path("consistency.json"), stdout(&consistency)).unwrap();

    let verify = |proof: &str, checkpoints: &[&str]| {
        let mut args = vec!["verify-proof", "--proof", proof];
        for checkpoint in checkpoints {
            args.extend(["--checkpoint", checkpoint]);
        }
        if !checkpoints.is_empty() {
            args.extend(["--public-key", &public_key]);
        }
        run_ledger_in(&database.directory, None, Keys::KeyFile, &args)
    };
    assert_exit(&verify("inclusion.json", &[]), 0, "inclusion proof alone");
    assert_exit(&verify("inclusion.json", &["old.json"]), 0, "inclusion proof against its checkpoint");
    let other_size = verify("inclusion.json", &["new.json"]);
    assert_exit(&other_size, 1, "inclusion proof against a checkpoint of another size");
    assert!(stdout(&other_size).contains("fetch a proof for size"), "{}", stdout(&other_size));
    assert_exit(&verify("consistency.json", &["old.json", "new.json"]), 0, "consistency proof between two checkpoints");

    let mut damaged: serde_json::Value = serde_json::from_str(&stdout(&inclusion)).unwrap();
    damaged["proof"][0] = serde_json::Value::String("00".repeat(32));
    std::fs::write(database.path("damaged.json"), damaged.to_string()).unwrap();
    let refused = verify("damaged.json", &[]);
    assert_exit(&refused, 1, "a damaged inclusion proof");
    assert!(stdout(&refused).contains("inclusion proof does not lead to the root"), "{}", stdout(&refused));
    assert_exit(&verify("absent.json", &[]), 2, "a missing proof file");
    assert_exit(&run(&["prove", "--seq", "0"]), 2, "seq 0");
    assert_exit(&run(&["prove", "--seq", "5", "--size", "4"]), 2, "a size below the seq");
}

/// Both backends, through the real binary: the demo's export verifies
/// against the checkpoint `ledger checkpoint` signed, and the Merkle root
/// recomputed from the export is the root the database stores.
mod export_of_the_demo_verifies_and_its_root_is_the_databases_checkpoint_root {
    use super::*;

    async fn run(database: TestDatabase) -> String {
        let ledger_run = |args: &[&str]| run_ledger(&database, Keys::Environment, args);
        assert_exit(&ledger_run(&["demo"]), 0, "ledger demo");
        assert_exit(&ledger_run(&["export", "--out", "export.jsonl"]), 0, "ledger export");
        assert_exit(&ledger_run(&["checkpoint", "--out", "checkpoint.json"]), 0, "ledger checkpoint");
        let public_key = stdout(&ledger_run(&["checkpoint", "--public-key"])).trim().to_string();
        let hmac_key = test_keys().active_hmac.secret_hex();
        let args = [
            "verify",
            "--export",
            "export.jsonl",
            "--hmac-key",
            &hmac_key,
            "--checkpoint",
            "checkpoint.json",
            "--public-key",
            &public_key,
        ];
        assert_exit(&run_ledger_in(&database.directory, None, Keys::KeyFile, &args), 0, "verify --export");

        let export = std::fs::read_to_string(database.path("export.jsonl")).unwrap();
        let ledger = database.open().await;
        let stored = audit::latest_checkpoint(&ledger.store).await.unwrap().expect("ledger checkpoint stored one");
        assert_eq!(stored, signed_checkpoint_file(&database, "checkpoint.json"));
        assert_eq!(root_of_export(&export), stored.checkpoint.root_hash);
        let proof =
            audit::consistency_proof_from_store(&ledger, stored.checkpoint.tree_size, stored.checkpoint.tree_size).await.unwrap();
        assert_eq!(proof.to_root, hex::encode(stored.checkpoint.root_hash), "the database's tree has the signed root");
        export
    }

    /// What two runs of the demo share: everything but ids and times.
    fn history(export: &str) -> Vec<(u64, String, String, u32, String)> {
        export
            .lines()
            .map(parse_line)
            .map(|event| (event.seq, event.actor, event.event_type, event.version, event.payload))
            .collect()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite() {
        run(TestDatabase::sqlite()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_postgres() {
        if let Some(database) = TestDatabase::postgres().await {
            run(database).await;
        }
    }

    /// The same demo history exported from SQLite and from PostgreSQL: the
    /// same events in the same order, each export matching its own checkpoint.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn on_sqlite_and_postgres_the_same_history() {
        let Some(postgres) = TestDatabase::postgres().await else { return };
        let from_postgres = run(postgres).await;
        let from_sqlite = run(TestDatabase::sqlite()).await;
        assert_eq!(history(&from_sqlite), history(&from_postgres));
        assert_ne!(root_of_export(&from_sqlite), root_of_export(&from_postgres), "ids and times differ between runs");
    }
}

// ---------------------------------------------------------------------------
// Exports longer than one batch of the verifier's threads: every answer is
// the one a walk over every line in one thread gives.

/// Lines in the generated export: several of the verifier's batches.
const LONG_EXPORT_EVENTS: u64 = 5_000;

#[test]
fn tampering_at_and_between_batch_boundaries_is_found_at_the_first_bad_line() {
    let lines = split_lines(&generated_export(LONG_EXPORT_EVENTS));
    assert!(verify_text(&join_lines(&lines), &full_check(None)).is_valid());
    for seq in [2, 1_024, 1_025, 1_026, 2_048, 2_049, 4_999, LONG_EXPORT_EVENTS] {
        let index = seq as usize - 1;

        let mut removed = lines.clone();
        removed.remove(index);
        if seq == LONG_EXPORT_EVENTS {
            assert_eq!(failure_of(&join_lines(&removed), &full_check(Some(&checkpoint_of(&lines)))).seq, Some(seq));
        } else {
            let failure = failure_of(&join_lines(&removed), &full_check(None));
            assert_eq!((failure.line, failure.seq), (Some(seq), Some(seq)), "removed {seq}");
            assert_eq!(failure.fault, ExportFault::Chain(ChainFault::Gap { expected: seq, found: seq + 1 }), "removed {seq}");
        }

        let mut changed = lines.clone();
        changed[index] = changed[index].replacen("Donor", "Donar", 1);
        let failure = failure_of(&join_lines(&changed), &full_check(None));
        assert_eq!(
            (failure.line, failure.seq, failure.fault),
            (Some(seq), Some(seq), ExportFault::Chain(ChainFault::HashMismatch))
        );

        // A new event with a valid hash that does not link to the one before.
        let mut relinked = lines.clone();
        let mut event = parse_line(&relinked[index]);
        event.prev_hash[0] ^= 1;
        event.hash = event_hash(&event.hashed_fields());
        relinked[index] = serde_json::to_string(&event).unwrap();
        let failure = failure_of(&join_lines(&relinked), &ExportCheck::default());
        assert_eq!((failure.line, failure.seq), (Some(seq), Some(seq)), "relinked {seq}");
        assert_eq!(failure.fault, ExportFault::Chain(ChainFault::BrokenLink { previous: seq - 1 }), "relinked {seq}");
    }
}

/// A checkpoint over the hashes of an export's lines, signed with the test key.
fn checkpoint_of(lines: &[String]) -> SignedCheckpoint {
    let mut roots = MerkleRootBuilder::new();
    for line in lines {
        roots.push(&parse_line(line).hash);
    }
    let checkpoint = Checkpoint::new(roots.len(), roots.root(), "2026-11-23T18:44:10Z").unwrap();
    checkpoint::sign(checkpoint, &audit::signing_key(&test_keys()).unwrap())
}

#[test]
fn a_checkpoint_inside_a_long_export_is_matched_and_a_wrong_one_is_found_at_its_size() {
    let lines = split_lines(&generated_export(LONG_EXPORT_EVENTS));
    let text = join_lines(&lines);
    for size in [1, 1_023, 1_024, 1_025, 3_000, LONG_EXPORT_EVENTS] {
        let checkpoint = checkpoint_of(&lines[..size as usize]);
        let report = verify_text(&text, &full_check(Some(&checkpoint)));
        assert!(report.is_valid(), "size {size}: {:?}", report.failure);
        assert_eq!(report.events, LONG_EXPORT_EVENTS);
    }
    // A checkpoint of another history, which differs at seq 2501.
    let mut other = lines.clone();
    let mut event = parse_line(&other[2_500]);
    event.hash[0] ^= 1;
    other[2_500] = serde_json::to_string(&event).unwrap();
    let wrong = checkpoint_of(&other[..2_999]);
    let failure = failure_of(&text, &full_check(Some(&wrong)));
    assert!(failure.to_string().starts_with("line 2999 (seq 2999): the root of the first 2999 events"), "{failure}");
    let shorter = join_lines(&lines[..2_000]);
    let failure = failure_of(&shorter, &full_check(Some(&checkpoint_of(&lines))));
    assert_eq!(failure.fault, ExportFault::ShorterThanCheckpoint { events: 2_000, tree_size: LONG_EXPORT_EVENTS });
}

#[test]
fn a_line_longer_than_the_limit_is_refused_after_the_lines_before_it_verify() {
    let mut lines = split_lines(&generated_export(1_500));
    lines[1_200] = format!("\"{}\"", "x".repeat(audit::EXPORT_LINE_BYTES_MAX));
    let failure = failure_of(&join_lines(&lines), &full_check(None));
    assert_eq!((failure.line, failure.fault), (Some(1_201), ExportFault::LineTooLong));
    let mut earlier_fault = lines.clone();
    earlier_fault[300] = "{}".to_string();
    assert_eq!(failure_of(&join_lines(&earlier_fault), &full_check(None)).line, Some(301));
    let report = verify_text(&join_lines(&lines), &full_check(None));
    assert_eq!(report.head_seq, 1_200, "every line before the long one verified");
}

// ---------------------------------------------------------------------------
// The test vectors of docs/audit.md, computed there independently.

const VECTOR_EXPORT: &str = concat!(
    r#"{"seq":1,"id":"01920000-0000-7000-8000-000000000001","recorded_at":"2026-01-01T00:00:00.000000Z","actor":"admin@example.org","event_type":"donor_registered","version":1,"payload":"{\"code\":\"EU-AMIF\",\"name\":\"EU Asylum, Migration and Integration Fund\",\"kind\":\"eu_instrument\"}","prev_hash":"0000000000000000000000000000000000000000000000000000000000000000","hash":"1d9796dc3bf08adcd9a17b1d655aa1b0081e73dc53682ccff237f8adaa709623","key_id":"045d659a1b67e745","tag":"10d09080e3fac5ef68f53c4f901474d5889783fb2101d7202bcd051f2f321e29"}"#,
    "\n",
    r#"{"seq":2,"id":"01920000-0000-7000-8000-000000000002","recorded_at":"2026-01-01T00:00:01.000000Z","actor":"admin@example.org","event_type":"donor_registered","version":1,"payload":"{\"code\":\"BMZ\",\"name\":\"German Federal Ministry for Economic Cooperation and Development\",\"kind\":\"national_donor\"}","prev_hash":"1d9796dc3bf08adcd9a17b1d655aa1b0081e73dc53682ccff237f8adaa709623","hash":"8445da9117f59c6016473ee92dd89a97e2c9b202fc3c0960fdefb192b9be676f","key_id":"045d659a1b67e745","tag":"e8a032f9dde7416996e52eee9ea1af15efa870e542c80b533e7f2c9327ea9452"}"#,
    "\n",
);
const VECTOR_EXPORT_CHECKPOINT: &str = r#"{"tree_size":2,"root_hash":"c5be3456d3bb9295e01cc3e99589ef52878ffa91ae7da4911b58958442279fc3","created_at":"2026-01-01T00:00:02Z","key_id":"65b60673d6ed884b","signature":"caf4b842a60f4ff7fbc4d20a27861d6845c90962b115649d2881c169efa901237934c5b2d53e8e22cd4999e76584dbcbfe30f7cc469cf707501c325bb5204308"}"#;
const VECTOR_PROOFS_CHECKPOINT: &str = r#"{"tree_size":3,"root_hash":"1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92","created_at":"2026-01-01T00:00:00Z","key_id":"65b60673d6ed884b","signature":"354742f4431ace26755c5038cdd97de35fd5cdbd8754a4c06a4e4c1992555bf8eef9217bde29f6122b658b9ecfeb2d7cb177a53c3371730397225bbf19050307"}"#;
const VECTOR_INCLUSION: &str = r#"{"seq":1,"size":3,"leaf_index":0,"event_hash":"fb378474af5953bec611fcb2602c5b61271c1f233b60c0adba76d5d6f47a50c4","root":"1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92","proof":["844a329ebe8751c7fefa6a46cac076e69401ad5b04f8ddd016d23e4a2d8e10e7","a58e5cfdb8779545e435555e821052621a96c1c68a5b9bba82a0d04e0cbb302b"]}"#;
const VECTOR_CONSISTENCY: &str = r#"{"from":2,"to":3,"from_root":"7d1c85e2c580f8311ac22ca0d3f5294d38e6c0331b2cadbdcdff6e18cc11c16b","to_root":"1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92","proof":["a58e5cfdb8779545e435555e821052621a96c1c68a5b9bba82a0d04e0cbb302b"]}"#;
/// The seed 0x01, 0x02, ..., 0x20 of docs/merkle.md's test signing key.
const VECTOR_PUBLIC_KEY: &str = "79b5562e8fe654f94078b112e8a98ba7901f853ae695bed7e0e3910bad049664";

fn vector_checkpoint(text: &str) -> TrustedCheckpoint {
    TrustedCheckpoint::Json {
        checkpoint: serde_json::from_str(text).unwrap(),
        public_key: checkpoint::parse_public_key_hex(VECTOR_PUBLIC_KEY).unwrap(),
    }
}

#[test]
fn the_documented_test_vectors_verify_and_a_changed_byte_does_not() {
    let key = SecretKey::from_bytes([1; 32]);
    assert_eq!(key.id, "045d659a1b67e745");
    let check = ExportCheck { hmac_keys: vec![key.clone()], checkpoint: Some(vector_checkpoint(VECTOR_EXPORT_CHECKPOINT)) };
    let report = verify_text(VECTOR_EXPORT, &check);
    assert!(report.is_valid(), "{:?}", report.failure);
    assert_eq!(hex::encode(report.head_hash), "8445da9117f59c6016473ee92dd89a97e2c9b202fc3c0960fdefb192b9be676f");
    assert_eq!(hex::encode(root_of_export(VECTOR_EXPORT)), "c5be3456d3bb9295e01cc3e99589ef52878ffa91ae7da4911b58958442279fc3");
    let changed = VECTOR_EXPORT.replacen("Asylum", "Asylun", 1);
    assert_eq!(failure_of(&changed, &check).fault, ExportFault::Chain(ChainFault::HashMismatch));

    let proofs_checkpoint = [vector_checkpoint(VECTOR_PROOFS_CHECKPOINT)];
    for proof in [VECTOR_INCLUSION, VECTOR_CONSISTENCY] {
        assert_eq!(audit::verify_proof_document(proof, &proofs_checkpoint).map(|verdict| verdict.checkpoint_sizes), Ok(vec![3]));
        let changed = proof.replacen("a58e5cfd", "a58e5cfe", 1);
        assert!(audit::verify_proof_document(&changed, &proofs_checkpoint).is_err(), "{changed}");
    }
}
