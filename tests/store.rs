//! The event store on both backends: the chain it appends, refusals that
//! leave no trace, units that are all or nothing, idempotency and the
//! database's own refusal to change an event.

#[macro_use]
mod common;

use common::*;
use ledger_core::chain::{GENESIS_PREV_HASH, event_hash};
use ledger_core::domain::{Command, DomainError};
use ledger_core::store::{Backend, UNIT_COMMANDS_MAX, UnitOutcome};
use projections::balances;
use sqlx::Row;

/// Seqs run 1, 2, 3... without gaps, each event links to the one before,
/// the chain verifies and `events_after` pages through it.
async fn appending_gives_consecutive_seqs_each_linked_to_the_one_before(database: TestDatabase) {
    let ledger = database.open().await;
    assert_eq!(ledger.store.head().await.unwrap(), (0, GENESIS_PREV_HASH), "an empty ledger has the genesis head");
    let mut appender = ledger.appender();
    let mut receipts = standard_fixture(&mut appender).await;
    let keys = test_keys();
    receipts.push(append_ok(&mut appender, pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-1", "350.00", "EUR")).await);
    receipts.push(append_ok(&mut appender, reverse(receipts.len() as u64)).await);
    // A second appender starts from the database, not from the first one's memory.
    let mut second = ledger.appender();
    receipts.push(append_ok(&mut second, pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "TN"), "TN-1", "300.00", "EUR")).await);
    receipts.push(append_ok(&mut appender, grant_in_kind(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "TN"), "TN-2", "100.00")).await);

    let events = all_events(&ledger.store).await;
    assert_eq!(events.len(), receipts.len());
    let mut previous_hash = GENESIS_PREV_HASH;
    let mut previous_time = String::new();
    for (index, (event, receipt)) in events.iter().zip(&receipts).enumerate() {
        assert_eq!(event.seq, index as u64 + 1, "seqs have no gaps");
        assert_eq!((receipt.seq, receipt.id, receipt.hash.clone()), (event.seq, event.id, hex::encode(event.hash)));
        assert_eq!(event.prev_hash, previous_hash, "seq {} links to the hash of the event before", event.seq);
        assert_eq!(event.hash, event_hash(&event.hashed_fields()), "seq {} stores its own hash", event.seq);
        assert!(event.recorded_at >= previous_time, "recorded times never go backwards");
        previous_hash = event.hash;
        previous_time = event.recorded_at.clone();
    }
    let first_prev: String =
        sqlx::query("SELECT prev_hash FROM events WHERE seq = 1").fetch_one(ledger.store.pool()).await.unwrap().get(0);
    assert_eq!(first_prev, "0".repeat(64), "the first prev_hash is 64 zeros");
    let last = events.last().unwrap();
    assert_eq!(ledger.store.head().await.unwrap(), (last.seq, last.hash));
    let report = verify(&ledger.store, &keys).await;
    assert!(report.is_valid(), "{:?}", report.failure);
    assert_eq!((report.head_seq, report.head_hash), (last.seq, last.hash));

    for page_size in [1, 3, 5, 1000] {
        let mut paged = Vec::new();
        loop {
            let after = paged.last().map_or(0, |event: &ledger_core::chain::EventRecord| event.seq);
            let page = ledger.store.events_after(after, page_size).await.unwrap();
            assert!(page.len() as i64 <= page_size, "a page holds at most {page_size} events");
            if page.is_empty() {
                break;
            }
            let full = page.len() as i64 == page_size;
            paged.extend(page);
            if !full {
                assert_eq!(paged.len(), events.len(), "only the last page is short");
            }
        }
        assert_eq!(paged, events, "pages of {page_size} put together give the whole chain");
    }
    let middle: Vec<u64> = ledger.store.events_after(4, 3).await.unwrap().iter().map(|event| event.seq).collect();
    assert_eq!(middle, vec![5, 6, 7]);
    assert!(ledger.store.events_after(last.seq, 10).await.unwrap().is_empty());
}
on_both_backends!(appending_gives_consecutive_seqs_each_linked_to_the_one_before);

/// A bad request, the refusal it must get, and a test of that refusal.
struct Refusal {
    what: &'static str,
    command: ledger_core::domain::Command,
    expected: fn(&DomainError) -> bool,
}

fn refusals() -> Vec<Refusal> {
    let keys = test_keys();
    let eur_line = (FIXTURE_EUR, FIXTURE_AMIF, "MA");
    vec![
        Refusal {
            what: "an unknown programme",
            command: allocate("NOPE", FIXTURE_AMIF, "MA", "10.00"),
            expected: |error| matches!(error, DomainError::UnknownProgramme(code) if code == "NOPE"),
        },
        Refusal {
            what: "a cash payment from an unknown programme",
            command: pay_cash(&keys, ("NOPE", FIXTURE_AMIF, "MA"), "CASE-1", "10.00", "EUR"),
            expected: |error| matches!(error, DomainError::UnknownProgramme(code) if code == "NOPE"),
        },
        Refusal {
            what: "an unknown donor",
            command: commit(FIXTURE_EUR, "NOBODY", "10.00"),
            expected: |error| matches!(error, DomainError::UnknownDonor(code) if code == "NOBODY"),
        },
        Refusal {
            what: "a cash payment charged to an unknown donor",
            command: pay_cash(&keys, (FIXTURE_EUR, "NOBODY", "MA"), "CASE-1", "10.00", "EUR"),
            expected: |error| matches!(error, DomainError::UnknownDonor(code) if code == "NOBODY"),
        },
        Refusal {
            what: "an allocation to a country not in the programme",
            command: allocate(FIXTURE_EUR, FIXTURE_AMIF, "ML", "10.00"),
            expected: |error| matches!(error, DomainError::CountryNotInProgramme { programme, country } if programme == "MOTUSE" && country == "ML"),
        },
        Refusal {
            what: "a cash payment in a country not in the programme",
            command: pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "DZ"), "CASE-1", "10.00", "EUR"),
            expected: |error| matches!(error, DomainError::CountryNotInProgramme { country, .. } if country == "DZ"),
        },
        Refusal {
            what: "EUR 1.234",
            command: commit(FIXTURE_EUR, FIXTURE_AMIF, "1.234"),
            expected: |error| matches!(error, DomainError::TooManyDecimals { currency: "EUR", minor_units: 2, .. }),
        },
        Refusal {
            what: "a cash payment of EUR 10.005",
            command: pay_cash(&keys, eur_line, "CASE-1", "10.005", "EUR"),
            expected: |error| matches!(error, DomainError::TooManyDecimals { currency: "EUR", minor_units: 2, .. }),
        },
        Refusal {
            what: "XOF 10.5",
            command: commit(FIXTURE_XOF, FIXTURE_BMZ, "10.5"),
            expected: |error| matches!(error, DomainError::TooManyDecimals { currency: "XOF", minor_units: 0, .. }),
        },
        Refusal {
            what: "a cash payment of XOF 10.5",
            command: pay_cash(&keys, (FIXTURE_XOF, FIXTURE_BMZ, "SN"), "CASE-1", "10.5", "XOF"),
            expected: |error| matches!(error, DomainError::TooManyDecimals { currency: "XOF", .. }),
        },
        Refusal {
            what: "a zero commitment",
            command: commit(FIXTURE_EUR, FIXTURE_AMIF, "0.00"),
            expected: |error| matches!(error, DomainError::NotPositive { .. }),
        },
        Refusal {
            what: "a zero cash payment",
            command: pay_cash(&keys, eur_line, "CASE-1", "0", "EUR"),
            expected: |error| matches!(error, DomainError::NotPositive { .. }),
        },
        Refusal {
            what: "a negative allocation",
            command: allocate(FIXTURE_EUR, FIXTURE_AMIF, "MA", "-5.00"),
            expected: |error| matches!(error, DomainError::NotPositive { .. }),
        },
        Refusal {
            what: "a negative receipt",
            command: receive(FIXTURE_EUR, FIXTURE_AMIF, "-0.01"),
            expected: |error| matches!(error, DomainError::NotPositive { .. }),
        },
        Refusal {
            what: "an allocation above the unallocated commitments",
            command: allocate(FIXTURE_EUR, FIXTURE_AMIF, "SN", "4000.01"),
            expected: |error| {
                matches!(error, DomainError::OverAllocation { available, requested, .. }
                    if *available == amount("4000.00") && *requested == amount("4000.01"))
            },
        },
        Refusal {
            what: "a cash payment above the budget line",
            command: pay_cash(&keys, eur_line, "CASE-1", "4000.01", "EUR"),
            expected: |error| {
                matches!(error, DomainError::OverSpending { line, available, .. }
                    if line == "MOTUSE/EU-AMIF/MA" && *available == amount("4000.00"))
            },
        },
        Refusal {
            what: "an in-kind grant above the budget line",
            command: grant_in_kind(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "TN"), "CASE-2", "500.01"),
            expected: |error| {
                matches!(error, DomainError::OverSpending { line, available, .. }
                    if line == "MOTUSE/EU-AMIF/TN" && *available == amount("500.00"))
            },
        },
        Refusal {
            what: "a reallocation above what the line has left",
            command: reallocate(FIXTURE_EUR, FIXTURE_AMIF, ("TN", "SN"), "500.01"),
            expected: |error| matches!(error, DomainError::OverSpending { line, .. } if line == "MOTUSE/EU-AMIF/TN"),
        },
        Refusal {
            what: "reversing an entry a second time",
            command: reverse(11),
            expected: |error| matches!(error, DomainError::AlreadyReversed { seq: 11 }),
        },
        Refusal {
            what: "reversing a donor registration",
            command: reverse(1),
            expected: |error| matches!(error, DomainError::NotReversible { seq: 1, event_type } if event_type == "donor_registered"),
        },
        Refusal {
            what: "reversing a reversal",
            command: reverse(12),
            expected: |error| matches!(error, DomainError::NotReversible { seq: 12, event_type } if event_type == "entry_reversed"),
        },
        Refusal {
            what: "reversing an unknown seq",
            command: reverse(999),
            expected: |error| matches!(error, DomainError::UnknownSeq(999)),
        },
        Refusal { what: "reversing seq 0", command: reverse(0), expected: |error| matches!(error, DomainError::UnknownSeq(0)) },
        Refusal {
            what: "reversing an allocation already spent",
            command: reverse(9),
            expected: |error| matches!(error, DomainError::ReversalWouldGoNegative { seq: 9, .. }),
        },
    ]
}

/// Each bad request is refused with the right error, and the head, the
/// events, every projection and the idempotency table are as before.
async fn every_refusal_leaves_no_trace(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let keys = test_keys();
    standard_fixture(&mut appender).await;
    let paid = append_ok(&mut appender, pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-1", "100.00", "EUR")).await;
    assert_eq!(paid.seq, 11);
    assert_eq!(append_ok(&mut appender, reverse(11)).await.seq, 12);
    let spent =
        unit_with_key(vec![grant_in_kind(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "TN"), "TN-1", "1500.00")], "spent", "request-1");
    assert!(matches!(append_unit(&mut appender, spent).await, UnitOutcome::Appended(_)));

    for (index, refusal) in refusals().into_iter().enumerate() {
        let before = snapshot(&ledger.store).await;
        let unit = unit_with_key(vec![refusal.command.clone()], &format!("refused-{index}"), "request");
        match append_unit(&mut appender, unit).await {
            UnitOutcome::Refused { index: 0, error } => {
                assert!((refusal.expected)(&error), "{} was refused for the wrong reason: {error:?}", refusal.what);
            }
            other => panic!("{} must be refused, got {other:?}", refusal.what),
        }
        let after = snapshot(&ledger.store).await;
        assert_eq!(after, before, "refusing {} left a trace", refusal.what);
        assert_projections_equal_a_rebuild(&ledger.store).await;
    }
    // A fresh appender loads its state from the projections: the refusals left nothing there either.
    let mut fresh = ledger.appender();
    assert_eq!(append_ok(&mut fresh, allocate(FIXTURE_EUR, FIXTURE_AMIF, "SN", "4000.00")).await.seq, 14);
    assert_chain_valid(&ledger.store, &keys).await;
}
on_both_backends!(every_refusal_leaves_no_trace);

/// A unit whose second command is refused appends none of its commands;
/// the units after it in the same call see the state as if it never was.
async fn a_unit_of_several_commands_is_all_or_nothing(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let keys = test_keys();
    standard_fixture(&mut appender).await;
    let before = snapshot(&ledger.store).await;
    let units = vec![
        // Would make SN fundable, then spends more than that: refused as a whole.
        unit(vec![
            allocate(FIXTURE_EUR, FIXTURE_AMIF, "SN", "300.00"),
            pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-1", "400.00", "EUR"),
        ]),
    ];
    let outcomes = appender.append(&units).await.unwrap();
    assert!(
        matches!(&outcomes[..], [UnitOutcome::Refused { index: 1, error: DomainError::OverSpending { .. } }]),
        "{outcomes:?}"
    );
    assert_eq!(snapshot(&ledger.store).await, before, "nothing of the refused unit was kept");

    let units = vec![
        unit(vec![allocate(FIXTURE_EUR, FIXTURE_AMIF, "SN", "100.00")]),
        unit(vec![
            allocate(FIXTURE_EUR, FIXTURE_AMIF, "SN", "300.00"),
            pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-1", "450.00", "EUR"),
            pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-2", "1.00", "EUR"),
        ]),
        // Only fundable if the refused unit's allocation had been kept.
        unit(vec![pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-3", "150.00", "EUR")]),
        unit(vec![
            pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-4", "60.00", "EUR"),
            grant_in_kind(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "SN"), "SN-4", "40.00"),
        ]),
    ];
    let outcomes = appender.append(&units).await.unwrap();
    let seqs = |outcome: &UnitOutcome| match outcome {
        UnitOutcome::Appended(receipts) => receipts.iter().map(|receipt| receipt.seq).collect::<Vec<_>>(),
        other => panic!("expected an appended unit, got {other:?}"),
    };
    assert_eq!(seqs(&outcomes[0]), vec![11]);
    assert!(
        matches!(&outcomes[1], UnitOutcome::Refused { index: 1, error: DomainError::OverSpending { .. } }),
        "{:?}",
        outcomes[1]
    );
    assert!(
        matches!(&outcomes[2], UnitOutcome::Refused { index: 0, error: DomainError::OverSpending { available, .. } } if *available == amount("100.00")),
        "{:?}",
        outcomes[2]
    );
    assert_eq!(seqs(&outcomes[3]), vec![12, 13], "the later unit takes the seqs the refused one did not use");
    assert_eq!(event_count(&ledger.store).await, 13);

    let balance = balances::programme_balance(&ledger.store, FIXTURE_EUR).await.unwrap();
    let senegal = balance.by_country.iter().find(|figures| figures.country == "SN").unwrap();
    assert_eq!(senegal.allocated, "100.00");
    assert_eq!(senegal.disbursed.total, "100.00");
    assert_eq!(senegal.available, "0.00");
    assert_eq!(balance.figures.allocated, "6100.00");
    assert_eq!(balance.as_of_seq, 13);
    assert_chain_valid(&ledger.store, &keys).await;
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(a_unit_of_several_commands_is_all_or_nothing);

/// The same key and request give the first answer again and append
/// nothing; the same key with another request is a conflict; a refused
/// unit claims no key.
async fn an_idempotency_key_answers_a_repeat_and_refuses_a_different_request(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let keys = test_keys();
    standard_fixture(&mut appender).await;
    let payment = || vec![pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-1", "350.00", "EUR")];

    let first = append_unit(&mut appender, unit_with_key(payment(), "key-1", "hash-a")).await;
    let UnitOutcome::Appended(receipts) = first else { panic!("the first request is appended: {first:?}") };
    assert_eq!(receipts.iter().map(|receipt| receipt.seq).collect::<Vec<_>>(), vec![11]);
    let after_first = snapshot(&ledger.store).await;

    let repeat = append_unit(&mut appender, unit_with_key(payment(), "key-1", "hash-a")).await;
    assert_eq!(repeat, UnitOutcome::Replayed(receipts.clone()));
    // A new appender (another server) reads the answer from the database.
    let mut other_server = database.open().await.appender();
    let repeat = append_unit(&mut other_server, unit_with_key(payment(), "key-1", "hash-a")).await;
    assert_eq!(repeat, UnitOutcome::Replayed(receipts.clone()));
    assert_eq!(snapshot(&ledger.store).await, after_first, "a replay appends nothing");

    let different = append_unit(&mut appender, unit_with_key(payment(), "key-1", "hash-b")).await;
    assert_eq!(different, UnitOutcome::IdempotencyConflict);
    assert_eq!(snapshot(&ledger.store).await, after_first, "a conflicting request appends nothing");

    // Keys belong to an actor: another actor may use the same key.
    let mut other_actor = unit_with_key(payment(), "key-1", "hash-a");
    other_actor.actor = "another-officer@test".to_string();
    assert!(matches!(append_unit(&mut appender, other_actor).await, UnitOutcome::Appended(_)));

    // Twice in one batch: the second is a replay of the first.
    let outcomes = appender
        .append(&[
            unit_with_key(payment(), "key-2", "hash-c"),
            unit_with_key(payment(), "key-2", "hash-c"),
            unit_with_key(payment(), "key-2", "hash-d"),
        ])
        .await
        .unwrap();
    let UnitOutcome::Appended(batch_receipts) = &outcomes[0] else { panic!("{outcomes:?}") };
    assert_eq!(outcomes[1], UnitOutcome::Replayed(batch_receipts.clone()));
    assert_eq!(outcomes[2], UnitOutcome::IdempotencyConflict);
    assert_eq!(event_count(&ledger.store).await, 13);

    // Refused: no record, so the same key works once the input is fixed.
    let too_much = vec![pay_cash(&keys, (FIXTURE_EUR, FIXTURE_AMIF, "MA"), "MA-2", "9999.00", "EUR")];
    let refused = append_unit(&mut appender, unit_with_key(too_much, "key-3", "hash-e")).await;
    assert!(matches!(refused, UnitOutcome::Refused { .. }), "{refused:?}");
    let stored: i64 =
        sqlx::query("SELECT COUNT(*) FROM idempotency WHERE key = 'key-3'").fetch_one(ledger.store.pool()).await.unwrap().get(0);
    assert_eq!(stored, 0, "a refused unit stores no idempotency record");
    let same_request = append_unit(&mut appender, unit_with_key(payment(), "key-3", "hash-e")).await;
    assert!(matches!(same_request, UnitOutcome::Appended(_)), "retrying the key after fixing the input works: {same_request:?}");

    let stored: Vec<(String, String, i64)> =
        sqlx::query("SELECT key, request_hash, first_seq FROM idempotency WHERE actor = $1 ORDER BY key")
            .bind(ACTOR)
            .fetch_all(ledger.store.pool())
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1), row.get(2)))
            .collect();
    let expected = vec![
        ("key-1".to_string(), "hash-a".to_string(), 11),
        ("key-2".to_string(), "hash-c".to_string(), 13),
        ("key-3".to_string(), "hash-e".to_string(), 14),
    ];
    assert_eq!(stored, expected);
    assert_chain_valid(&ledger.store, &keys).await;
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(an_idempotency_key_answers_a_repeat_and_refuses_a_different_request);

/// UPDATE and DELETE on the events table (and TRUNCATE on PostgreSQL) are
/// refused by the database itself.
async fn the_database_refuses_to_change_or_delete_an_event(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    standard_fixture(&mut appender).await;
    let before = all_events(&ledger.store).await;
    let mut statements = vec![
        "UPDATE events SET actor = 'attacker' WHERE seq = 3",
        "UPDATE events SET payload = payload || ' ' ",
        "DELETE FROM events WHERE seq = 10",
        "DELETE FROM events",
    ];
    if database.backend == Backend::Postgres {
        statements.push("TRUNCATE events");
        statements.push("TRUNCATE events CASCADE");
    }
    for statement in statements {
        let Err(error) = sqlx::query(statement).execute(ledger.store.pool()).await else {
            panic!("the database must refuse {statement:?}");
        };
        assert!(error.to_string().contains("events are immutable"), "{statement:?} refused for another reason: {error}");
    }
    assert_eq!(all_events(&ledger.store).await, before);
    assert_chain_valid(&ledger.store, &test_keys()).await;
}
on_both_backends!(the_database_refuses_to_change_or_delete_an_event);

/// Text that quoting, escaping or splitting could spoil (quotes, backslashes,
/// commas, braces, the word NULL, letters outside ASCII, and a line break in
/// the request hash: names are single-line) is stored exactly as given, in the events, the projections and the
/// idempotency records, whether the appender knows the head or not; and the
/// chain and a rebuild agree with it.
async fn awkward_text_is_stored_exactly_as_given(database: TestDatabase) {
    let ledger = database.open().await;
    let awkward = "Fonds «Égalité» \"quoted\", back\\slash {braces} NULL, second part, 日本";
    let awkward_request = "Fonds «Égalité» \"quoted\", back\\slash {braces} NULL\nsecond line, 日本";
    let key = r#"key-"with",{quotes}\and NULL"#;
    // The first append takes the lock and reads the head; the second is
    // decided on what the first left in memory (on PostgreSQL, the guarded
    // statement).
    let mut appender = ledger.appender();
    for index in 0..2 {
        let code = format!("AWK-{index}");
        let Command::RegisterDonor { code: donor_code, kind, .. } = register_donor(&code) else { unreachable!() };
        let donor = Command::RegisterDonor { code: donor_code, name: awkward.to_string(), kind, iati_identifier: None };
        let Command::RegisterProgramme { code: programme_code, currency, countries, starts_on, ends_on, .. } =
            register_programme(&code, "EUR", &["MA"])
        else {
            unreachable!()
        };
        let programme = Command::RegisterProgramme {
            code: programme_code,
            name: awkward.to_string(),
            currency,
            countries,
            implementer: awkward.to_string(),
            starts_on,
            ends_on,
            approvals_required: None,
        };
        let outcome =
            append_unit(&mut appender, unit_with_key(vec![donor, programme], &format!("{key}-{index}"), awkward_request)).await;
        assert!(matches!(outcome, UnitOutcome::Appended(_)), "{outcome:?}");
    }
    let pool = ledger.store.pool();
    let texts = |sql: &'static str| async move {
        let rows = sqlx::query(sql).fetch_all(pool).await.unwrap();
        rows.iter().map(|row| row.get::<String, _>(0)).collect::<Vec<_>>()
    };
    assert_eq!(texts("SELECT name FROM donors ORDER BY code").await, [awkward, awkward]);
    assert_eq!(
        texts("SELECT name || '|' || implementer FROM programmes ORDER BY code").await,
        vec![format!("{awkward}|{awkward}"), format!("{awkward}|{awkward}")]
    );
    assert_eq!(texts("SELECT key FROM idempotency ORDER BY key").await, [format!("{key}-0"), format!("{key}-1")]);
    assert_eq!(texts("SELECT request_hash FROM idempotency").await, [awkward_request, awkward_request]);
    let payloads = texts("SELECT payload FROM events ORDER BY seq").await;
    assert_eq!(payloads.len(), 4);
    assert!(payloads.iter().all(|payload| payload.contains(&serde_json::to_string(awkward).unwrap())), "{payloads:?}");
    assert_chain_valid(&ledger.store, &test_keys()).await;
    assert_projections_equal_a_rebuild(&ledger.store).await;
    // A repeat with the same key is answered from the stored record.
    let repeat =
        append_unit(&mut appender, unit_with_key(vec![register_donor("AWK-9")], &format!("{key}-0"), awkward_request)).await;
    assert!(matches!(repeat, UnitOutcome::Replayed(_)), "{repeat:?}");
}
on_both_backends!(awkward_text_is_stored_exactly_as_given);

/// The PostgreSQL statement that writes rows column by column keeps every
/// row, whatever its values: one row of empty text, several rows with empty
/// text first and last, negative and large numbers. (SQLite writes with
/// multi-row statements instead; this runs on PostgreSQL only, and says so
/// when `LEDGER_TEST_POSTGRES_URL` is unset.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rows_written_column_by_column_come_back_whole_on_postgres() {
    use ledger_core::store::one_statement::{self, Cell, Insert};
    let Some(database) = TestDatabase::postgres().await else { return };
    let ledger = database.open().await;
    let mut connection = ledger.store.pool().acquire().await.unwrap();
    sqlx::query("CREATE TABLE cells (n BIGINT NOT NULL, t TEXT NOT NULL)").execute(&mut *connection).await.unwrap();
    let cases: [&[(i64, &str)]; 3] =
        [&[(1, "")], &[(-2, ""), (i64::MAX, "two"), (i64::MIN, "")], &[(7, "quote \" , {} NULL \\ été\n")]];
    for rows in cases {
        sqlx::query("DELETE FROM cells").execute(&mut *connection).await.unwrap();
        let mut insert = Insert::new("cells", &["n", "t"], String::new());
        for (number, text) in rows {
            insert.push_row([Cell::Int(*number), Cell::Text(text)]).unwrap();
        }
        one_statement::write(&mut connection, &[insert]).await.unwrap();
        let mut stored: Vec<(i64, String)> = sqlx::query("SELECT n, t FROM cells")
            .fetch_all(&mut *connection)
            .await
            .unwrap()
            .iter()
            .map(|row| (row.get(0), row.get(1)))
            .collect();
        let mut expected: Vec<(i64, String)> = rows.iter().map(|(number, text)| (*number, text.to_string())).collect();
        stored.sort();
        expected.sort();
        assert_eq!(stored, expected);
    }
}

/// A batch larger than one INSERT statement is appended whole and in order,
/// and a unit of the most commands allowed is all or nothing too.
async fn a_batch_of_many_hundred_events_is_appended_whole_and_in_order(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    let keys = test_keys();
    standard_fixture(&mut appender).await;
    let line = (FIXTURE_EUR, FIXTURE_AMIF, "MA");
    let cent = |case_number: usize| pay_cash(&keys, line, &format!("MA-BULK-{case_number}"), "0.01", "EUR");

    let units: Vec<_> = (0..900).map(|case_number| unit(vec![cent(case_number)])).collect();
    let outcomes = appender.append(&units).await.unwrap();
    let seqs: Vec<u64> = outcomes
        .iter()
        .flat_map(|outcome| match outcome {
            UnitOutcome::Appended(receipts) => receipts.iter().map(|receipt| receipt.seq).collect::<Vec<_>>(),
            other => panic!("every payment is funded: {other:?}"),
        })
        .collect();
    assert_eq!(seqs, (11..=910).collect::<Vec<u64>>());

    let mut largest: Vec<_> = (900..900 + UNIT_COMMANDS_MAX - 1).map(cent).collect();
    largest.push(pay_cash(&keys, line, "MA-BULK-LAST", "9999.00", "EUR"));
    let before = snapshot(&ledger.store).await;
    let outcome = append_unit(&mut appender, unit(largest.clone())).await;
    assert!(
        matches!(&outcome, UnitOutcome::Refused { index, .. } if *index == UNIT_COMMANDS_MAX - 1),
        "the last command is refused: {outcome:?}"
    );
    assert_eq!(snapshot(&ledger.store).await, before, "nothing of the refused unit was kept");
    largest.pop();
    let UnitOutcome::Appended(receipts) = append_unit(&mut appender, unit(largest)).await else {
        panic!("the unit without its last command is appended");
    };
    assert_eq!(receipts.len(), UNIT_COMMANDS_MAX - 1);
    assert_eq!(receipts.last().unwrap().seq, 910 + UNIT_COMMANDS_MAX as u64 - 1);

    let balance = balances::programme_balance(&ledger.store, FIXTURE_EUR).await.unwrap();
    assert_eq!(balance.figures.disbursed.cash, "18.99");
    assert_eq!(balance.beneficiaries_reached, 1899);
    assert_chain_valid(&ledger.store, &keys).await;
    assert_projections_equal_a_rebuild(&ledger.store).await;
}
on_both_backends!(a_batch_of_many_hundred_events_is_appended_whole_and_in_order);

/// Another writer (another server, a rebuild) holding the database longer
/// than a writer waits is "busy": the error says so, and the API answers
/// 503 asking for a retry rather than 500.
async fn a_database_held_by_another_writer_is_busy_and_answers_503(database: TestDatabase) {
    use axum::response::IntoResponse;
    use sqlx::Connection;
    // Opened for its migrations, and kept open meanwhile.
    let _ledger = database.open().await;
    let mut holder = sqlx::AnyConnection::connect(&database.url).await.expect("a second connection");
    let mut waiter = sqlx::AnyConnection::connect(&database.url).await.expect("a third connection");
    let take_lock = "UPDATE chain_lock SET appends = appends + 1 WHERE id = 1";
    sqlx::query("BEGIN").execute(&mut holder).await.unwrap();
    sqlx::query(take_lock).execute(&mut holder).await.expect("the holder takes the lock row");
    let give_up_at_once = match database.backend {
        Backend::Sqlite => "PRAGMA busy_timeout = 0",
        Backend::Postgres => "SET lock_timeout = '50ms'",
    };
    sqlx::query(give_up_at_once).execute(&mut waiter).await.unwrap();
    let error = sqlx::query(take_lock).execute(&mut waiter).await.expect_err("the lock is held");

    let store_error = ledger_core::store::StoreError::from(error);
    assert!(matches!(store_error, ledger_core::store::StoreError::Busy(_)), "{store_error:?}");
    let response = ledger_api::http::error::ApiError::from(store_error).into_response();
    assert_eq!(response.status(), 503);
    let body = axum::body::to_bytes(response.into_body(), 1 << 16).await.unwrap();
    let problem: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert!(problem["detail"].as_str().unwrap_or_default().contains("retry"), "{problem}");

    sqlx::query("ROLLBACK").execute(&mut holder).await.unwrap();
    let other = sqlx::query("SELECT 1").execute(&mut waiter).await.map_err(ledger_core::store::StoreError::from);
    assert!(other.is_ok(), "a released database is not busy");
}
on_both_backends!(a_database_held_by_another_writer_is_busy_and_answers_503);

/// A unit whose token was revoked is refused in the transaction that would
/// append it, and the other units of its batch go on: whether the appender
/// starts from the database or from its own last batch, and whether the
/// revocation lands before the first append or between two.
async fn a_revoked_token_appends_nothing_and_its_batch_goes_on(database: TestDatabase) {
    let ledger = database.open().await;
    let mut appender = ledger.appender();
    standard_fixture(&mut appender).await;
    let store = &ledger.store;
    let valid = ledger_api::tokens::create(store, ledger_api::tokens::Role::FinanceOfficer, None, "valid").await.unwrap();
    let doomed = ledger_api::tokens::create(store, ledger_api::tokens::Role::FinanceOfficer, None, "doomed").await.unwrap();
    let keys = test_keys();
    let line = (FIXTURE_EUR, FIXTURE_AMIF, "MA");
    let with_token = |token: &str, case_id: &str| {
        let mut unit = unit(vec![pay_cash(&keys, line, case_id, "1.00", "EUR")]);
        unit.token_hash = Some(ledger_api::tokens::hash_token(token));
        unit
    };
    let outcomes = appender.append(&[with_token(&valid, "MA-1"), with_token(&doomed, "MA-2")]).await.unwrap();
    assert!(outcomes.iter().all(|outcome| matches!(outcome, UnitOutcome::Appended(_))), "{outcomes:?}");

    ledger_api::tokens::revoke(store, "doomed").await.unwrap();
    for (what, appender) in [("the appender that knows the head", &mut appender), ("a new appender", &mut ledger.appender())] {
        let head = event_count(store).await;
        let outcomes = appender
            .append(&[with_token(&doomed, "MA-3"), with_token(&valid, "MA-4"), with_token(&doomed, "MA-5")])
            .await
            .unwrap();
        assert!(matches!(outcomes[0], UnitOutcome::TokenRevoked), "{what}: {outcomes:?}");
        assert!(
            matches!(&outcomes[1], UnitOutcome::Appended(receipts) if receipts[0].seq == head as u64 + 1),
            "{what}: {outcomes:?}"
        );
        assert!(matches!(outcomes[2], UnitOutcome::TokenRevoked), "{what}: {outcomes:?}");
        assert_eq!(event_count(store).await, head + 1, "{what}: only the valid token's payment is appended");
        // A batch of revoked units alone writes nothing either.
        let outcomes = appender.append(&[with_token(&doomed, "MA-6")]).await.unwrap();
        assert!(matches!(outcomes[0], UnitOutcome::TokenRevoked), "{what}: {outcomes:?}");
        assert_eq!(event_count(store).await, head + 1, "{what}");
    }
    assert_chain_valid(store, &keys).await;
    assert_projections_equal_a_rebuild(store).await;
}
on_both_backends!(a_revoked_token_appends_nothing_and_its_batch_goes_on);
