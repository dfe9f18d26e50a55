//! The hash chain: records built by hand, a verifier that names the first bad
//! seq, and the fixed test vectors published in docs/hash-chain.md.

use uuid::Uuid;

use super::*;
use crate::keys::{KeyRing, SecretKey, TagError};

/// The HMAC key of the test vectors: 32 bytes of 0x01.
const VECTOR_HMAC_KEY: [u8; 32] = [1; 32];

/// The id of `VECTOR_HMAC_KEY`.
const VECTOR_KEY_ID: &str = "045d659a1b67e745";

const VECTOR_1_CANONICAL_HEX: &str = "0000001d7265696e746567726174696f6e2d6c65646765722f6576656e742f763100000000000000010190f1a40000700080000000000000010000001b323032362d30312d30355430393a30303a30302e3030303030305a0000000561646d696e00000010646f6e6f725f7265676973746572656400000001000000557b22636f6465223a2245552d45555446222c226e616d65223a22455520456d657267656e63792054727573742046756e6420666f7220416672696361222c226b696e64223a2265755f696e737472756d656e74227d0000000000000000000000000000000000000000000000000000000000000000";
const VECTOR_1_HASH_HEX: &str = "b7a6fa595ac4d2871eb5fb07d64985fd62fab077f493352c30e5352b40ccae5c";
const VECTOR_1_TAG_HEX: &str = "269710703a199d6e0a377faf6ff3c35559b326cf48e4bc4f10151a0cfd32c4c9";

const VECTOR_2_CANONICAL_HEX: &str = "0000001d7265696e746567726174696f6e2d6c65646765722f6576656e742f763100000000000000020190f1a40000700080000000000000020000001b323032362d30312d30355430393a30303a30312e3030303030305a0000000561646d696e0000001470726f6772616d6d655f7265676973746572656400000001000000937b22636f6465223a224d4f54555345222c226e616d65223a224d6f54755365222c2263757272656e6379223a22455552222c22636f756e7472696573223a5b224d41222c22544e222c22534e225d2c22696d706c656d656e746572223a22494f4d222c227374617274735f6f6e223a22323032332d30312d3031222c22656e64735f6f6e223a22323032362d31322d3331227db7a6fa595ac4d2871eb5fb07d64985fd62fab077f493352c30e5352b40ccae5c";
const VECTOR_2_HASH_HEX: &str = "5d6bd4f302864b63c6688eff418339fd19f58e288d1fc1f9711407d961da7589";
const VECTOR_2_TAG_HEX: &str = "be35b1805ec2d7a7c1cca2c84e5611e25befddc36951133f263b1da757cbc0c8";

const VECTOR_3_CANONICAL_HEX: &str = "0000001d7265696e746567726174696f6e2d6c65646765722f6576656e742f763100000000000000030190f1a40000700080000000000000030000001b323032362d30312d30355430393a30303a30322e3030303030305a0000001166696e616e63652d6f6666696365722d310000001166756e64696e675f636f6d6d6974746564000000010000008d7b2270726f6772616d6d65223a224d4f54555345222c22646f6e6f72223a2245552d45555446222c22616d6f756e74223a22313030303030302e3030222c2263757272656e6379223a22455552222c227265666572656e6365223a225430352d455554462d4e4f412d5245472d3132222c22636f6d6d69747465645f6f6e223a22323032362d30312d3035227d5d6bd4f302864b63c6688eff418339fd19f58e288d1fc1f9711407d961da7589";
const VECTOR_3_HASH_HEX: &str = "b221cb0121a4b723ac7e6468022cb73435dc1c8b6983b5fde42265e359b5b169";
const VECTOR_3_TAG_HEX: &str = "2b4db1b413db21c3a57714413f81a50f3343e6c491df4cc57a4b9aff02cff232";

/// The inputs of one test vector.
struct VectorInput {
    seq: Seq,
    id: &'static str,
    recorded_at: &'static str,
    actor: &'static str,
    event_type: &'static str,
    payload: &'static str,
}

const VECTOR_INPUTS: [VectorInput; 3] = [
    VectorInput {
        seq: 1,
        id: "0190f1a4-0000-7000-8000-000000000001",
        recorded_at: "2026-01-05T09:00:00.000000Z",
        actor: "admin",
        event_type: "donor_registered",
        payload: r#"{"code":"EU-EUTF","name":"EU Emergency Trust Fund for Africa","kind":"eu_instrument"}"#,
    },
    VectorInput {
        seq: 2,
        id: "0190f1a4-0000-7000-8000-000000000002",
        recorded_at: "2026-01-05T09:00:01.000000Z",
        actor: "admin",
        event_type: "programme_registered",
        payload: r#"{"code":"MOTUSE","name":"MoTuSe","currency":"EUR","countries":["MA","TN","SN"],"implementer":"IOM","starts_on":"2023-01-01","ends_on":"2026-12-31"}"#,
    },
    VectorInput {
        seq: 3,
        id: "0190f1a4-0000-7000-8000-000000000003",
        recorded_at: "2026-01-05T09:00:02.000000Z",
        actor: "finance-officer-1",
        event_type: "funding_committed",
        payload: r#"{"programme":"MOTUSE","donor":"EU-EUTF","amount":"1000000.00","currency":"EUR","reference":"T05-EUTF-NOA-REG-12","committed_on":"2026-01-05"}"#,
    },
];

fn key_ring() -> KeyRing {
    KeyRing {
        active_hmac: SecretKey::from_bytes(VECTOR_HMAC_KEY),
        retired_hmac: vec![],
        pseudonym: SecretKey::from_bytes([2; 32]),
        checkpoint: Some(SecretKey::from_bytes([3; 32])),
        retired_checkpoint: Vec::new(),
    }
}

/// Hashes and tags an event whose hashed fields are already set.
fn seal(mut record: EventRecord, keys: &KeyRing) -> EventRecord {
    record.hash = event_hash(&record.hashed_fields());
    let (key_id, tag) = keys.tag(&record.hash);
    record.key_id = key_id;
    record.tag = tag;
    record
}

fn vector_record(input: &VectorInput, prev_hash: [u8; 32], keys: &KeyRing) -> EventRecord {
    let unsealed = EventRecord {
        seq: input.seq,
        id: Uuid::parse_str(input.id).unwrap(),
        recorded_at: input.recorded_at.to_string(),
        actor: input.actor.to_string(),
        event_type: input.event_type.to_string(),
        version: 1,
        payload: input.payload.to_string(),
        prev_hash,
        hash: [0; 32],
        key_id: String::new(),
        tag: [0; 32],
    };
    seal(unsealed, keys)
}

/// The three test vectors, chained.
fn three_events(keys: &KeyRing) -> Vec<EventRecord> {
    let mut records: Vec<EventRecord> = Vec::new();
    for input in &VECTOR_INPUTS {
        let prev_hash = records.last().map_or(GENESIS_PREV_HASH, |previous| previous.hash);
        records.push(vector_record(input, prev_hash, keys));
    }
    records
}

/// Verifies `records` in the order given; the first failure, if any.
fn verify(keys: Option<&KeyRing>, records: &[EventRecord]) -> Result<(Seq, [u8; 32]), ChainFailure> {
    let mut verifier = ChainVerifier::new(keys);
    for record in records {
        verifier.check(record)?;
    }
    Ok(verifier.head())
}

// ---------------------------------------------------------------------------
// Test vectors
// ---------------------------------------------------------------------------

const VECTOR_CONSTANTS: [(&str, &str, &str); 3] = [
    (VECTOR_1_CANONICAL_HEX, VECTOR_1_HASH_HEX, VECTOR_1_TAG_HEX),
    (VECTOR_2_CANONICAL_HEX, VECTOR_2_HASH_HEX, VECTOR_2_TAG_HEX),
    (VECTOR_3_CANONICAL_HEX, VECTOR_3_HASH_HEX, VECTOR_3_TAG_HEX),
];

#[test]
fn the_key_id_of_the_vector_key_is_pinned() {
    assert_eq!(SecretKey::from_bytes(VECTOR_HMAC_KEY).id, VECTOR_KEY_ID);
    assert_eq!(VECTOR_KEY_ID.len(), 16, "a key id is 8 bytes in hex");
}

#[test]
fn the_test_vectors_reproduce_their_pinned_canonical_bytes_hashes_and_tags() {
    let keys = key_ring();
    let records = three_events(&keys);
    for (record, (canonical, hash, tag)) in records.iter().zip(VECTOR_CONSTANTS) {
        assert_eq!(hex::encode(canonical_bytes(&record.hashed_fields())), canonical, "canonical bytes of seq {}", record.seq);
        assert_eq!(hex::encode(record.hash), hash, "hash of seq {}", record.seq);
        assert_eq!(hex::encode(record.tag), tag, "tag of seq {}", record.seq);
        assert_eq!(record.key_id, VECTOR_KEY_ID);
    }
    assert_eq!(verify(Some(&keys), &records), Ok((3, records[2].hash)));
}

#[test]
fn the_vector_hashes_are_sha_256_of_the_pinned_bytes_and_link_to_each_other() {
    let mut prev_hash = hex::encode(GENESIS_PREV_HASH);
    for (canonical, hash, _) in VECTOR_CONSTANTS {
        let bytes = hex::decode(canonical).unwrap();
        assert_eq!(hex::encode(sha2::Sha256::digest(&bytes)), hash);
        assert!(canonical.ends_with(&prev_hash), "the canonical bytes end with the previous hash");
        prev_hash = hash.to_string();
    }
}

#[test]
fn the_vector_tags_are_hmac_sha_256_of_the_hash_under_the_key() {
    use hmac::{Hmac, Mac};
    for (_, hash, tag) in VECTOR_CONSTANTS {
        let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&VECTOR_HMAC_KEY).unwrap();
        mac.update(&hex::decode(hash).unwrap());
        assert_eq!(hex::encode(mac.finalize().into_bytes()), tag);
    }
}

#[test]
fn the_vector_payloads_are_what_the_domain_records_for_those_commands() {
    use crate::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode, State, decide};
    let date = |text: &str| chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d").unwrap();
    let commands = [
        Command::RegisterDonor {
            code: DonorCode::parse("EU-EUTF").unwrap(),
            name: "EU Emergency Trust Fund for Africa".to_string(),
            kind: "eu_instrument".to_string(),
            iati_identifier: None,
        },
        Command::RegisterProgramme {
            code: ProgrammeCode::parse("MOTUSE").unwrap(),
            name: "MoTuSe".to_string(),
            currency: Currency::parse("EUR").unwrap(),
            countries: ["MA", "TN", "SN"].iter().map(|country| CountryCode::parse(country).unwrap()).collect(),
            implementer: "IOM".to_string(),
            starts_on: date("2023-01-01"),
            ends_on: date("2026-12-31"),
            approvals_required: None,
        },
        Command::CommitFunding {
            programme: ProgrammeCode::parse("MOTUSE").unwrap(),
            donor: DonorCode::parse("EU-EUTF").unwrap(),
            amount: rust_decimal::Decimal::new(1_000_000, 0),
            currency: None,
            reference: "T05-EUTF-NOA-REG-12".to_string(),
            committed_on: date("2026-01-05"),
        },
    ];
    let mut state = State::default();
    for (command, input) in commands.iter().zip(&VECTOR_INPUTS) {
        let body = decide(&state, command, None, date("2026-01-05")).unwrap();
        assert_eq!(body.event_type(), input.event_type);
        assert_eq!(body.version(), 1);
        assert_eq!(body.payload_json(), input.payload);
        state.apply(input.seq, &body);
    }
}

#[test]
fn the_canonical_encoding_lays_out_every_field_in_order() {
    let input = &VECTOR_INPUTS[0];
    let record = vector_record(input, GENESIS_PREV_HASH, &key_ring());
    let mut expected = Vec::new();
    let text = |expected: &mut Vec<u8>, bytes: &[u8]| {
        expected.extend_from_slice(&(bytes.len() as u32).to_be_bytes());
        expected.extend_from_slice(bytes);
    };
    text(&mut expected, b"reintegration-ledger/event/v1");
    expected.extend_from_slice(&1u64.to_be_bytes());
    expected.extend_from_slice(&[0x01, 0x90, 0xf1, 0xa4, 0, 0, 0x70, 0, 0x80, 0, 0, 0, 0, 0, 0, 0x01]);
    text(&mut expected, input.recorded_at.as_bytes());
    text(&mut expected, input.actor.as_bytes());
    text(&mut expected, input.event_type.as_bytes());
    expected.extend_from_slice(&1u32.to_be_bytes());
    text(&mut expected, input.payload.as_bytes());
    expected.extend_from_slice(&[0; 32]);
    assert_eq!(canonical_bytes(&record.hashed_fields()), expected);
}

#[test]
fn the_payload_is_hashed_byte_for_byte_so_a_reformatted_payload_hashes_differently() {
    let keys = key_ring();
    let original = vector_record(&VECTOR_INPUTS[0], GENESIS_PREV_HASH, &keys);
    let mut reformatted = original.clone();
    reformatted.payload =
        r#"{"code": "EU-EUTF", "name": "EU Emergency Trust Fund for Africa", "kind": "eu_instrument"}"#.to_string();
    let reformatted = seal(reformatted, &keys);
    assert_ne!(reformatted.hash, original.hash);
}

// ---------------------------------------------------------------------------
// Verification
// ---------------------------------------------------------------------------

#[test]
fn three_chained_events_verify() {
    let keys = key_ring();
    let records = three_events(&keys);
    assert_eq!(records[0].prev_hash, GENESIS_PREV_HASH);
    assert_eq!(records[1].prev_hash, records[0].hash);
    assert_eq!(records[2].prev_hash, records[1].hash);
    assert_eq!(verify(Some(&keys), &records), Ok((3, records[2].hash)));
    assert_eq!(verify(None, &records), Ok((3, records[2].hash)));
}

#[test]
fn an_empty_chain_verifies_at_the_genesis_head() {
    assert_eq!(verify(Some(&key_ring()), &[]), Ok((0, GENESIS_PREV_HASH)));
}

#[test]
fn a_changed_payload_byte_is_a_hash_mismatch_at_that_seq() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[1].payload = records[1].payload.replacen("MoTuSe", "MoTuSf", 1);
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 2, fault: ChainFault::HashMismatch }));
    assert_eq!(verify(None, &records), Err(ChainFailure { seq: 2, fault: ChainFault::HashMismatch }));
}

#[test]
fn every_hashed_field_is_covered_by_the_hash() {
    let keys = key_ring();
    let alterations: [fn(&mut EventRecord); 6] = [
        |record| record.id = Uuid::nil(),
        |record| record.recorded_at = "2026-01-05T09:00:01.000001Z".to_string(),
        |record| record.actor = "finance-officer-2".to_string(),
        |record| record.event_type = "donor_registered".to_string(),
        |record| record.version = 2,
        |record| record.payload.push(' '),
    ];
    for alter in alterations {
        let mut records = three_events(&keys);
        alter(&mut records[1]);
        assert_eq!(
            verify(Some(&keys), &records),
            Err(ChainFailure { seq: 2, fault: ChainFault::HashMismatch }),
            "{:?}",
            records[1]
        );
    }
}

#[test]
fn a_changed_prev_hash_is_a_broken_link() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[2].prev_hash[0] ^= 0x01;
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 3, fault: ChainFault::BrokenLink { previous: 2 } }));
}

#[test]
fn a_first_event_not_linked_to_the_genesis_hash_is_a_broken_link() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[0].prev_hash = [0xff; 32];
    let resealed = seal(records[0].clone(), &keys);
    assert_eq!(verify(Some(&keys), &[resealed]), Err(ChainFailure { seq: 1, fault: ChainFault::BrokenLink { previous: 0 } }));
}

#[test]
fn an_event_rewritten_with_a_fresh_hash_fails_its_tag_and_breaks_the_next_link() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[1].payload = records[1].payload.replace("IOM", "GIZ");
    records[1].hash = event_hash(&records[1].hashed_fields());
    assert!(matches!(verify(Some(&keys), &records), Err(ChainFailure { seq: 2, fault: ChainFault::BadTag(_) })));
    assert_eq!(verify(None, &records), Err(ChainFailure { seq: 3, fault: ChainFault::BrokenLink { previous: 2 } }));
}

#[test]
fn a_removed_middle_event_is_a_gap_at_the_missing_seq() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records.remove(1);
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 2, fault: ChainFault::Gap { expected: 2, found: 3 } }));
}

#[test]
fn swapped_events_are_caught_at_the_first_out_of_place_seq() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records.swap(1, 2);
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 2, fault: ChainFault::Gap { expected: 2, found: 3 } }));
}

#[test]
fn swapped_events_renumbered_to_hide_the_swap_break_the_link() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records.swap(1, 2);
    records[1].seq = 2;
    records[2].seq = 3;
    let failure = verify(None, &records).unwrap_err();
    assert_eq!(failure, ChainFailure { seq: 2, fault: ChainFault::BrokenLink { previous: 1 } });
}

#[test]
fn a_repeated_event_is_a_gap() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records.insert(2, records[1].clone());
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 3, fault: ChainFault::Gap { expected: 3, found: 2 } }));
}

#[test]
fn a_bad_tag_is_reported_at_its_seq() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[2].tag[31] ^= 0x80;
    let key_id = VECTOR_KEY_ID.to_string();
    assert_eq!(verify(Some(&keys), &records), Err(ChainFailure { seq: 3, fault: ChainFault::BadTag(TagError::BadTag(key_id)) }));
}

#[test]
fn an_unknown_key_id_is_reported_at_its_seq() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[1].key_id = "0000000000000000".to_string();
    assert_eq!(
        verify(Some(&keys), &records),
        Err(ChainFailure { seq: 2, fault: ChainFault::UnknownKey(TagError::UnknownKey("0000000000000000".to_string())) })
    );
}

#[test]
fn a_tag_made_with_another_key_is_a_bad_tag_even_under_the_right_key_id() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    let forger = KeyRing { active_hmac: SecretKey::from_bytes([9; 32]), ..key_ring() };
    records[0].tag = forger.tag(&records[0].hash).1;
    assert!(matches!(verify(Some(&keys), &records), Err(ChainFailure { seq: 1, fault: ChainFault::BadTag(_) })));
}

#[test]
fn without_keys_tags_are_not_checked() {
    let keys = key_ring();
    let mut records = three_events(&keys);
    records[0].tag = [0; 32];
    records[1].key_id = "unknown".to_string();
    assert_eq!(verify(None, &records), Ok((3, records[2].hash)));
    assert!(verify(Some(&keys), &records).is_err());
}

#[test]
fn events_tagged_before_a_key_rotation_still_verify() {
    let mut keys = key_ring();
    let mut records = three_events(&keys);
    keys.rotate_hmac().unwrap();
    let input = VectorInput { seq: 4, id: "0190f1a4-0000-7000-8000-000000000004", ..VECTOR_INPUTS[2] };
    let fourth = vector_record(&input, records[2].hash, &keys);
    assert_ne!(fourth.key_id, records[2].key_id);
    records.push(fourth);
    assert_eq!(verify(Some(&keys), &records), Ok((4, records[3].hash)));
}

#[test]
fn verification_resumes_from_a_trusted_head() {
    let keys = key_ring();
    let records = three_events(&keys);
    let mut verifier = ChainVerifier::resume(Some(&keys), 2, records[1].hash);
    assert_eq!(verifier.check(&records[2]), Ok(()));
    assert_eq!(verifier.head(), (3, records[2].hash));
    let mut wrong_head = ChainVerifier::resume(Some(&keys), 2, records[0].hash);
    assert_eq!(wrong_head.check(&records[2]), Err(ChainFailure { seq: 3, fault: ChainFault::BrokenLink { previous: 2 } }));
}

#[test]
fn a_failed_check_leaves_the_verifier_where_it_was() {
    let keys = key_ring();
    let records = three_events(&keys);
    let mut verifier = ChainVerifier::new(Some(&keys));
    verifier.check(&records[0]).unwrap();
    let mut tampered = records[1].clone();
    tampered.hash[0] ^= 1;
    assert!(verifier.check(&tampered).is_err());
    assert_eq!(verifier.head(), (1, records[0].hash));
    assert_eq!(verifier.check(&records[1]), Ok(()));
}

#[test]
fn a_record_serialises_its_hashes_as_lower_case_hex_and_reads_back() {
    let records = three_events(&key_ring());
    let json = serde_json::to_value(&records[2]).unwrap();
    assert_eq!(json["hash"], VECTOR_3_HASH_HEX);
    assert_eq!(json["prev_hash"], VECTOR_2_HASH_HEX);
    assert_eq!(json["tag"], VECTOR_3_TAG_HEX);
    let read: EventRecord = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(read, records[2]);
    let mut short = json;
    short["hash"] = serde_json::Value::from("abcd");
    assert!(serde_json::from_value::<EventRecord>(short).is_err());
}

#[test]
fn fault_messages_name_the_fault() {
    let failure = |fault| ChainFailure { seq: 7, fault }.to_string();
    assert_eq!(failure(ChainFault::Gap { expected: 7, found: 8 }), "seq 7: gap: expected seq 7, found seq 8");
    assert!(failure(ChainFault::BrokenLink { previous: 6 }).starts_with("seq 7: broken link"));
    assert!(failure(ChainFault::HashMismatch).starts_with("seq 7: hash mismatch"));
    assert!(failure(ChainFault::BadTag(TagError::BadTag("k".to_string()))).starts_with("seq 7: bad tag"));
    assert!(failure(ChainFault::UnknownKey(TagError::UnknownKey("k".to_string()))).starts_with("seq 7: unknown key"));
}
