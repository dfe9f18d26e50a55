//! The chain against an attacker with write access to the database, key
//! rotation, and the privacy of returnees' case ids.

#[macro_use]
mod common;

use common::*;
use ledger_api::config::Ledger;
use ledger_api::demo;
use ledger_core::chain::{ChainFailure, ChainFault, EventRecord, HashedFields, event_hash};
use ledger_core::domain::{EventBody, MoneyEntry, Seq};
use ledger_core::keys::{KeyRing, SecretKey, TagError};
use ledger_core::store::{Backend, Store};
use projections::rebuild::{self, RebuildError};
use sqlx::Row;

/// Loads the demo, checks it verifies, then removes the triggers that keep
/// events immutable, as an attacker with database rights would.
async fn demo_without_triggers(database: &TestDatabase) -> Ledger {
    let ledger = database.open().await;
    let loaded = demo::load(&ledger, ACTOR).await.expect("the demo loads into an empty ledger");
    assert!(loaded > 40, "the demo has enough events to tamper with the middle ({loaded})");
    assert_chain_valid(&ledger.store, &ledger.keys).await;
    let statements: &[&str] = match database.backend {
        Backend::Sqlite => &["DROP TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete"],
        Backend::Postgres => &["ALTER TABLE events DISABLE TRIGGER USER"],
    };
    for statement in statements {
        sqlx::query(statement).execute(ledger.store.pool()).await.expect("the attacker may drop the triggers");
    }
    ledger
}

async fn event(store: &Store, seq: Seq) -> EventRecord {
    store.events_after(seq - 1, 1).await.unwrap().into_iter().next().filter(|event| event.seq == seq).expect("the event exists")
}

async fn set_column(store: &Store, seq: Seq, column: &str, value: String) {
    let sql = format!("UPDATE events SET {column} = $1 WHERE seq = $2");
    let result = sqlx::query(&sql).bind(value).bind(seq as i64).execute(store.pool()).await.expect("the attacker may update");
    assert_eq!(result.rows_affected(), 1);
}

/// The same hex text with its first character changed.
fn flip_first_hex_digit(text: &str) -> String {
    let replacement = if text.starts_with('0') { '1' } else { '0' };
    format!("{replacement}{}", &text[1..])
}

/// Changes one digit of the payload of event `seq`.
async fn change_one_payload_byte(store: &Store, seq: Seq) {
    let original = event(store, seq).await;
    let digit_at = original.payload.find(|character: char| character.is_ascii_digit()).expect("the payload holds a digit");
    let mut bytes = original.payload.into_bytes();
    bytes[digit_at] = b'0' + (bytes[digit_at] - b'0' + 1) % 10;
    set_column(store, seq, "payload", String::from_utf8(bytes).unwrap()).await;
}

/// Changing one byte of a payload is reported at that seq as a hash
/// mismatch, and nothing is rebuilt from such a chain.
async fn a_changed_payload_byte_is_reported_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 35;
    change_one_payload_byte(&ledger.store, seq).await;
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq, fault: ChainFault::HashMismatch });
    // Links and hashes alone catch it too.
    assert_eq!(first_failure(&ledger.store, None).await, ChainFailure { seq, fault: ChainFault::HashMismatch });
    let report = verify(&ledger.store, &ledger.keys).await;
    assert_eq!(report.head_seq, seq - 1, "the report names the last good event");

    let before = snapshot(&ledger.store).await;
    let rebuilt = rebuild::rebuild(&ledger.store, |_| {}).await;
    assert!(matches!(rebuilt, Err(RebuildError::BrokenChain(_))), "a broken chain is not rebuilt from: {rebuilt:?}");
    let checked = rebuild::check(&ledger.store, |_| {}).await;
    assert!(matches!(checked, Err(RebuildError::BrokenChain(_))), "a broken chain is not checked against: {checked:?}");
    assert_eq!(snapshot(&ledger.store).await, before, "a refused rebuild leaves the projections as they were");
}
on_both_backends!(a_changed_payload_byte_is_reported_at_its_seq);

/// A field too damaged to be read is reported at its seq, with the events
/// before it verified.
async fn an_unreadable_event_is_reported_at_its_seq_after_the_events_before_it(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 30;
    set_column(&ledger.store, seq, "tag", "not a hex tag".to_string()).await;
    let report = verify(&ledger.store, &ledger.keys).await;
    let failure = report.failure.clone().expect("an unreadable event fails verification");
    assert_eq!(failure.seq, seq);
    assert!(matches!(failure.fault, ChainFault::Unreadable(_)), "{failure:?}");
    assert_eq!(report.head_seq, seq - 1, "the report names the last good event");
}
on_both_backends!(an_unreadable_event_is_reported_at_its_seq_after_the_events_before_it);

/// An event tampered with before an unreadable one is the first bad seq.
async fn a_tampered_event_before_an_unreadable_one_is_named_first(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    set_column(&ledger.store, 30, "tag", "not a hex tag".to_string()).await;
    let tampered = 10;
    change_one_payload_byte(&ledger.store, tampered).await;
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq: tampered, fault: ChainFault::HashMismatch }, "the first bad seq is named");
}
on_both_backends!(a_tampered_event_before_an_unreadable_one_is_named_first);

/// A changed stored hash no longer matches the event's fields.
async fn a_changed_stored_hash_is_reported_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 20;
    let original = event(&ledger.store, seq).await;
    set_column(&ledger.store, seq, "hash", flip_first_hex_digit(&hex::encode(original.hash))).await;
    assert_eq!(first_failure(&ledger.store, Some(&ledger.keys)).await, ChainFailure { seq, fault: ChainFault::HashMismatch });
}
on_both_backends!(a_changed_stored_hash_is_reported_at_its_seq);

/// A changed prev_hash breaks the link to the event before.
async fn a_changed_prev_hash_is_a_broken_link_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 25;
    let original = event(&ledger.store, seq).await;
    set_column(&ledger.store, seq, "prev_hash", flip_first_hex_digit(&hex::encode(original.prev_hash))).await;
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq, fault: ChainFault::BrokenLink { previous: seq - 1 } });
}
on_both_backends!(a_changed_prev_hash_is_a_broken_link_at_its_seq);

/// A deleted event is reported as a gap at the seq where it should be.
async fn a_deleted_middle_event_is_a_gap_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 30;
    sqlx::query("DELETE FROM events WHERE seq = $1").bind(seq as i64).execute(ledger.store.pool()).await.unwrap();
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq, fault: ChainFault::Gap { expected: seq, found: seq + 1 } });
}
on_both_backends!(a_deleted_middle_event_is_a_gap_at_its_seq);

/// Swaps the seqs of two events through a free seq.
async fn swap_seqs(store: &Store, first: Seq, second: Seq) {
    let parking = 1_000_000_i64;
    for (from, to) in [(first as i64, parking), (second as i64, first as i64), (parking, second as i64)] {
        sqlx::query("UPDATE events SET seq = $1 WHERE seq = $2").bind(to).bind(from).execute(store.pool()).await.unwrap();
    }
}

/// Reordering events, next to each other or far apart, is caught at the
/// first moved seq.
async fn reordered_events_are_caught_at_the_first_moved_seq(database: TestDatabase) {
    let second_database = database.another().await;
    for ((first, second), database) in [((31, 32), &database), ((12, 40), &second_database)] {
        let ledger = demo_without_triggers(database).await;
        let moved = event(&ledger.store, second).await;
        swap_seqs(&ledger.store, first, second).await;
        assert_eq!(event(&ledger.store, first).await.id, moved.id, "the events were swapped");
        let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
        assert_eq!(failure.seq, first, "swapping {first} and {second} is caught at {first}: {failure:?}");
        assert_eq!(first_failure(&ledger.store, None).await.seq, first);
    }
}
on_both_backends!(reordered_events_are_caught_at_the_first_moved_seq);

/// A changed tag does not verify under the key it names.
async fn a_changed_tag_is_a_bad_tag_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 45;
    let original = event(&ledger.store, seq).await;
    set_column(&ledger.store, seq, "tag", flip_first_hex_digit(&hex::encode(original.tag))).await;
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq, fault: ChainFault::BadTag(TagError::BadTag(original.key_id.clone())) });
    // Without keys only links and hashes are checked: the tag is what needs the key.
    assert!(ledger.store.verify_chain(None, |_| {}).await.unwrap().is_valid());
}
on_both_backends!(a_changed_tag_is_a_bad_tag_at_its_seq);

/// A key id the verifier does not hold is reported as an unknown key.
async fn a_changed_key_id_is_an_unknown_key_at_its_seq(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 12;
    set_column(&ledger.store, seq, "key_id", "00000000deadbeef".to_string()).await;
    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(
        failure,
        ChainFailure { seq, fault: ChainFault::UnknownKey(TagError::UnknownKey("00000000deadbeef".to_string())) }
    );
}
on_both_backends!(a_changed_key_id_is_an_unknown_key_at_its_seq);

/// The payload with the value of its first `"amount"` replaced.
fn with_amount(payload: &str, value: &str) -> String {
    let marker = "\"amount\":\"";
    let start = payload.find(marker).expect("a money payload has an amount") + marker.len();
    let end = start + payload[start..].find('"').expect("the amount is a string");
    format!("{}{value}{}", &payload[..start], &payload[end..])
}

/// An attacker replaces an event by a forged one chained correctly to the
/// event before, but cannot tag it with the ledger's key: caught at that
/// seq with keys, and at the next seq by links alone.
async fn a_forged_event_in_the_middle_is_caught(database: TestDatabase) {
    let ledger = demo_without_triggers(&database).await;
    let seq = 33;
    let original = event(&ledger.store, seq).await;
    assert_eq!(original.event_type, "cash_reinsertion_paid");
    let previous = event(&ledger.store, seq - 1).await;
    let payload = with_amount(&original.payload, "1.00");
    assert_ne!(payload, original.payload);
    let id = uuid::Uuid::now_v7();
    let fields = HashedFields {
        seq,
        id,
        recorded_at: &original.recorded_at,
        actor: &original.actor,
        event_type: &original.event_type,
        version: original.version,
        payload: &payload,
        prev_hash: &previous.hash,
    };
    let hash = event_hash(&fields);
    let attacker = KeyRing { active_hmac: SecretKey::from_bytes([9; 32]), ..test_keys() };
    let (_, tag) = attacker.tag(&hash);
    sqlx::query("DELETE FROM events WHERE seq = $1").bind(seq as i64).execute(ledger.store.pool()).await.unwrap();
    sqlx::query(
        "INSERT INTO events (seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
    )
    .bind(seq as i64)
    .bind(id.to_string())
    .bind(original.recorded_at.clone())
    .bind(original.actor.clone())
    .bind(original.event_type.clone())
    .bind(i64::from(original.version))
    .bind(payload)
    .bind(hex::encode(previous.hash))
    .bind(hex::encode(hash))
    .bind(original.key_id.clone())
    .bind(hex::encode(tag))
    .execute(ledger.store.pool())
    .await
    .expect("the attacker may insert");

    let failure = first_failure(&ledger.store, Some(&ledger.keys)).await;
    assert_eq!(failure, ChainFailure { seq, fault: ChainFault::BadTag(TagError::BadTag(original.key_id.clone())) });
    let failure = first_failure(&ledger.store, None).await;
    assert_eq!(failure, ChainFailure { seq: seq + 1, fault: ChainFault::BrokenLink { previous: seq } });
}
on_both_backends!(a_forged_event_in_the_middle_is_caught);

/// Events keep verifying with the key they were tagged with after the
/// active key is rotated; a verifier without the old key names the first
/// old event.
async fn events_appended_before_a_key_rotation_keep_verifying_with_the_retired_key(database: TestDatabase) {
    let original_keys = test_keys();
    let ledger = database.open_with_keys(original_keys.clone()).await;
    let mut appender = ledger.appender();
    let before = standard_fixture(&mut appender).await;
    let mut rotated = original_keys.clone();
    rotated.rotate_hmac().expect("a new key can be drawn");
    assert_ne!(rotated.active_hmac.id, original_keys.active_hmac.id);
    let rotated_ledger = with_keys(&ledger, rotated.clone());
    let mut rotated_appender = rotated_ledger.appender();
    let line = (FIXTURE_EUR, FIXTURE_AMIF, "MA");
    let after = [
        append_ok(&mut rotated_appender, pay_cash(&rotated, line, "MA-1", "100.00", "EUR")).await,
        append_ok(&mut rotated_appender, pay_cash(&rotated, line, "MA-2", "100.00", "EUR")).await,
        append_ok(&mut rotated_appender, reverse(before.len() as u64 + 1)).await,
    ];
    assert_eq!(after[0].seq, before.len() as u64 + 1);

    for event in all_events(&ledger.store).await {
        let expected = if event.seq <= before.len() as u64 { &original_keys.active_hmac.id } else { &rotated.active_hmac.id };
        assert_eq!(&event.key_id, expected, "seq {} is tagged with the key active when it was appended", event.seq);
    }
    assert_chain_valid(&ledger.store, &rotated).await;
    assert_eq!(
        rotated.pseudonymise("MA-1").unwrap(),
        original_keys.pseudonymise("MA-1").unwrap(),
        "rotating the chain key keeps beneficiary refs"
    );

    let only_new = KeyRing { retired_hmac: vec![], ..rotated.clone() };
    let failure = first_failure(&ledger.store, Some(&only_new)).await;
    let old_id = original_keys.active_hmac.id.clone();
    assert_eq!(failure, ChainFailure { seq: 1, fault: ChainFault::UnknownKey(TagError::UnknownKey(old_id)) });
    let failure = first_failure(&ledger.store, Some(&original_keys)).await;
    let new_id = rotated.active_hmac.id.clone();
    assert_eq!(failure, ChainFailure { seq: after[0].seq, fault: ChainFault::UnknownKey(TagError::UnknownKey(new_id)) });
}
on_both_backends!(events_appended_before_a_key_rotation_keep_verifying_with_the_retired_key);

/// Case ids as implementers type them, with spacing and case that
/// normalisation removes.
const CASE_IDS: [&str; 4] = ["CASE-SECRET-7731", " case-secret 8842 ", "Mar-2024-Secret-0099", "tn secret 5512"];

/// Every form of a case id that must never be stored, lower-cased: as
/// given (trimmed) and normalised (no whitespace).
fn forbidden_forms() -> Vec<String> {
    let mut forms = Vec::new();
    for case_id in CASE_IDS {
        forms.push(case_id.trim().to_lowercase());
        forms.push(case_id.chars().filter(|character| !character.is_whitespace()).collect::<String>().to_lowercase());
    }
    forms.sort();
    forms.dedup();
    forms
}

/// Pays and grants to the case ids; returns the beneficiary ref of the first.
async fn assist_secret_cases(ledger: &Ledger) -> String {
    let keys = &ledger.keys;
    let mut appender = ledger.appender();
    standard_fixture(&mut appender).await;
    let eur = |country| (FIXTURE_EUR, FIXTURE_AMIF, country);
    let receipts = append_all(
        &mut appender,
        vec![
            pay_cash_local(keys, eur("MA"), CASE_IDS[0], "350.00", ("3815.00", "MAD")),
            pay_cash(keys, (FIXTURE_XOF, FIXTURE_BMZ, "SN"), "case-secret-7731", "163989", "XOF"),
            pay_cash_local(keys, eur("TN"), CASE_IDS[1], "300.00", ("1005.450", "TND")),
            grant_in_kind(keys, eur("MA"), CASE_IDS[2], "1500.00"),
            grant_in_kind(keys, eur("TN"), CASE_IDS[3], "900.00"),
            grant_in_kind(keys, (FIXTURE_XOF, FIXTURE_BMZ, "SN"), CASE_IDS[1], "250000"),
            grant_to_community(eur("MA"), "Beni Mellal cooperative", "2000.00"),
        ],
    )
    .await;
    append_ok(&mut appender, reverse(receipts[2].seq)).await;
    keys.pseudonymise(CASE_IDS[0]).unwrap().to_string()
}

fn assert_no_case_id_in(text: &str, place: &str) {
    for form in forbidden_forms() {
        assert!(!text.contains(&form), "the case id {form:?} was found in {place}");
    }
}

/// The database never holds a case id, in any case or spacing: only its
/// pseudonym.
async fn no_case_id_ever_reaches_the_database(database: TestDatabase) {
    let ledger = database.open().await;
    let reference = assist_secret_cases(&ledger).await;
    match database.backend {
        Backend::Sqlite => {
            ledger.store.pool().close().await;
            drop(ledger);
            let directory = database.sqlite_directory().expect("a SQLite database has a directory");
            let files = read_database_files(directory).await;
            let mut everything = String::new();
            for (name, text) in files {
                assert_no_case_id_in(&text, &name);
                everything.push_str(&text);
            }
            assert!(everything.contains(&reference), "the files read hold the pseudonym");
            assert!(everything.contains("motuse"), "the files read hold the programmes");
        }
        Backend::Postgres => {
            let dump = dump_every_column(&ledger.store).await;
            assert!(dump.contains(&reference), "the dump holds the pseudonym");
            assert!(dump.contains("motuse"), "the dump holds the programmes");
            assert_no_case_id_in(&dump, "the PostgreSQL database");
        }
    }
}
on_both_backends!(no_case_id_ever_reaches_the_database);

/// ledger.db, and ledger.db-wal and ledger.db-shm if left, as lower-case
/// text. The last connection to close may still be folding the WAL into the
/// database and removing it: the files are read again until none vanishes
/// while being read.
async fn read_database_files(directory: &std::path::Path) -> Vec<(String, String)> {
    'attempts: for _ in 0..100 {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(directory).unwrap() {
            let path = entry.unwrap().path();
            let name = path.file_name().unwrap().to_string_lossy().to_string();
            if !name.starts_with("ledger.db") {
                continue;
            }
            match std::fs::read(&path) {
                Ok(bytes) => files.push((name, String::from_utf8_lossy(&bytes).to_lowercase())),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    continue 'attempts;
                }
                Err(error) => panic!("{name} cannot be read: {error}"),
            }
        }
        return files;
    }
    panic!("the database files kept changing while being read");
}

/// Every column of every table of the public schema, as lower-case text.
async fn dump_every_column(store: &Store) -> String {
    let columns: Vec<(String, String)> = sqlx::query(
        "SELECT CAST(table_name AS TEXT), CAST(column_name AS TEXT) FROM information_schema.columns \
         WHERE table_schema = 'public' ORDER BY table_name, column_name",
    )
    .fetch_all(store.pool())
    .await
    .unwrap()
    .iter()
    .map(|row| (row.get(0), row.get(1)))
    .collect();
    assert!(columns.iter().any(|(table, column)| table == "events" && column == "payload"));
    let mut dump = String::new();
    for (table, column) in columns {
        let sql = format!("SELECT CAST(\"{column}\" AS TEXT) FROM \"{table}\"");
        for row in sqlx::query(&sql).fetch_all(store.pool()).await.unwrap() {
            if let Some(value) = row.get::<Option<String>, _>(0) {
                dump.push_str(&value.to_lowercase());
                dump.push('\n');
            }
        }
    }
    dump
}

/// The same returnee assisted by two programmes has the same beneficiary
/// ref in both, whatever the spelling of the case id; another returnee
/// has another.
async fn the_same_case_id_gives_the_same_beneficiary_ref_in_every_programme(database: TestDatabase) {
    let ledger = database.open().await;
    let expected = assist_secret_cases(&ledger).await;
    let mut references = Vec::new();
    for event in all_events(&ledger.store).await {
        let body = EventBody::parse(&event.event_type, event.version, &event.payload).unwrap();
        match body {
            EventBody::Money(MoneyEntry::CashReinsertionPaid(paid)) => {
                references.push((paid.programme.to_string(), paid.beneficiary_ref.to_string()))
            }
            EventBody::Money(MoneyEntry::InKindGrantDelivered(grant)) => {
                if let Some(reference) = grant.beneficiary_ref {
                    references.push((grant.programme.to_string(), reference.to_string()));
                }
            }
            _ => {}
        }
    }
    assert_eq!(references[0], (FIXTURE_EUR.to_string(), expected.clone()));
    assert_eq!(references[1], (FIXTURE_XOF.to_string(), expected.clone()), "the same case id in another programme");
    // " case-secret 8842 " in the EUR and the XOF programme.
    assert_eq!(references[2].1, references[5].1);
    assert_ne!(references[2].0, references[5].0);
    assert_ne!(references[2].1, expected, "another case id gives another ref");
    let distinct: std::collections::BTreeSet<&String> = references.iter().map(|(_, reference)| reference).collect();
    assert_eq!(distinct.len(), CASE_IDS.len());
    for (_, reference) in &references {
        assert!(reference.len() == 64 && reference.bytes().all(|byte| byte.is_ascii_hexdigit()));
    }
}
on_both_backends!(the_same_case_id_gives_the_same_beneficiary_ref_in_every_programme);
