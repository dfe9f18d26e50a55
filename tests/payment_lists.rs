//! Payment lists at the store, on both backends: every transition and
//! refusal, holds against every other use of a budget line, two lists
//! racing for the last money of a line (one writer; two servers on one
//! database), and `verify` and `rebuild --check` after each scenario.

#[macro_use]
mod common;

use common::payment_lists::*;
use common::*;
use ledger_core::domain::DomainError;
use ledger_core::domain::payment_lists::{DeliveryStatus, PaymentListStatus};
use ledger_core::store::{Store, UnitOutcome, Writer};
use projections::payment_lists as read;
use tokio::task::JoinSet;
use uuid::Uuid;

const LINE: (&str, &str, &str) = ("MOTUSE", "EU-AMIF", "MA");

/// A donor, a programme and one budget line of 1,000.00 EUR.
async fn fund_one_line(ledger: &ledger_api::config::Ledger) {
    let mut appender = ledger.appender();
    append_all(
        &mut appender,
        vec![
            register_donor(LINE.1),
            register_programme(LINE.0, "EUR", &["MA", "TN"]),
            commit(LINE.0, LINE.1, "1000.00"),
            allocate(LINE.0, LINE.1, LINE.2, "1000.00"),
        ],
    )
    .await;
}

fn list_id(number: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + number)
}

async fn detail(store: &Store, list: Uuid) -> read::PaymentListDetail {
    let mut connection = store.pool().acquire().await.unwrap();
    read::payment_list(&mut connection, list).await.unwrap().expect("the list is stored")
}

async fn available_minor(store: &Store) -> i64 {
    let lines = budget_line_availability(store).await;
    lines.iter().find(|(line, _, _)| line == "MOTUSE/EU-AMIF/MA").map(|(_, _, available)| *available).unwrap()
}

async fn assert_verified_and_rebuilt(store: &Store) {
    assert_chain_valid(store, &test_keys()).await;
    assert_projections_equal_a_rebuild(store).await;
    let trial = projections::balances::trial_balance(store).await.unwrap();
    assert!(trial.balanced, "{trial:?}");
}

/// Three rows: 100.00 EUR paid 1,080.00 MAD; 50.00 paid 540.00 MAD; 30.00 paid 324.00 MAD.
fn three_rows() -> Vec<ledger_core::domain::payment_lists::PaymentListRow> {
    let keys = test_keys();
    vec![
        list_row(&keys, 2, "MA-CYCLE-1", "100.00", ("1080.00", "MAD")),
        list_row(&keys, 3, "MA-CYCLE-2", "50.00", ("540.00", "MAD")),
        list_row(&keys, 4, "MA-CYCLE-3", "30.00", ("324.00", "MAD")),
    ]
}

async fn one_whole_cycle_holds_charges_releases_and_closes(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    let list = list_id(1);
    append_by(&mut appender, ACTOR, import_list(list, LINE, three_rows())).await;
    assert_eq!(available_minor(store).await, 100_000 - 18_000);
    let imported = detail(store, list).await;
    assert_eq!((imported.summary.status, imported.summary.held), (PaymentListStatus::Imported, amount("180.00")));
    assert_held_everywhere(store, "180.00", "820.00").await;
    assert_verified_and_rebuilt(store).await;

    let hash = imported.summary.content_hash.clone();
    let refused = append_unit(&mut appender, unit_by(ACTOR, vec![approve_list(list, ACTOR, &hash)])).await;
    assert!(matches!(refused, UnitOutcome::Refused { error: DomainError::SelfApproval { .. }, .. }), "{refused:?}");
    append_by(&mut appender, APPROVER, approve_list(list, APPROVER, &hash)).await;
    let twice = append_unit(&mut appender, unit_by(APPROVER, vec![approve_list(list, APPROVER, &hash)])).await;
    assert!(matches!(twice, UnitOutcome::Refused { error: DomainError::PaymentListStatus { .. }, .. }), "{twice:?}");
    let approved = detail(store, list).await;
    assert_eq!(approved.summary.status, PaymentListStatus::Approved);
    assert_eq!(approved.approvals.iter().map(|approval| approval.by.as_str()).collect::<Vec<_>>(), [APPROVER]);
    assert_verified_and_rebuilt(store).await;

    append_by(&mut appender, ACTOR, release_list(list, 3)).await;
    let mut connection = store.pool().acquire().await.unwrap();
    let instructions = read::payment_instructions(&mut connection, list).await.unwrap().unwrap();
    drop(connection);
    assert_eq!(
        instructions.iter().map(|line| line.amount).collect::<Vec<_>>(),
        [amount("1080.00"), amount("540.00"), amount("324.00")]
    );
    assert_eq!(instructions[0].reference, test_reference(list, 0));
    assert_verified_and_rebuilt(store).await;

    let first_part = vec![delivered(2, test_reference(list, 0), "1080.00"), delivered(3, test_reference(list, 1), "270.00")];
    let receipts = append_by(&mut appender, ACTOR, confirm_list(list, first_part.clone())).await;
    assert_eq!(receipts.len(), 3, "the confirmation and two payments");
    assert_eq!(available_minor(store).await, 100_000 - 10_000 - 2_500 - 3_000);
    let again = append_unit(&mut appender, unit_by(ACTOR, vec![confirm_list(list, first_part.clone())])).await;
    assert_eq!(again, UnitOutcome::Unchanged);
    assert_verified_and_rebuilt(store).await;

    let receipts = append_by(&mut appender, ACTOR, confirm_list(list, vec![failed(2, test_reference(list, 2))])).await;
    assert_eq!(receipts.len(), 2, "the confirmation and the closing");
    let closed = detail(store, list).await;
    assert_eq!(closed.summary.status, PaymentListStatus::Closed);
    let figures = (closed.summary.held, closed.summary.delivered, closed.summary.failed, closed.summary.released_back);
    assert_eq!(figures, (amount("0.00"), amount("125.00"), amount("30.00"), amount("55.00")));
    let outcomes: Vec<(u32, DeliveryStatus)> =
        closed.rows.iter().map(|row| (row.row, row.outcome.as_ref().unwrap().status)).collect();
    assert_eq!(outcomes, [(2, DeliveryStatus::Delivered), (3, DeliveryStatus::Delivered), (4, DeliveryStatus::Failed)]);
    assert_eq!(closed.rows[1].outcome.as_ref().unwrap().charged, amount("25.00"));
    assert_eq!(available_minor(store).await, 100_000 - 12_500);
    let again = append_unit(&mut appender, unit_by(ACTOR, vec![confirm_list(list, first_part)])).await;
    assert_eq!(again, UnitOutcome::Unchanged, "the same part after closing still records nothing");
    let cancel = append_unit(&mut appender, unit(vec![cancel_list(list)])).await;
    assert!(matches!(cancel, UnitOutcome::Refused { error: DomainError::PaymentListStatus { status: "closed", .. }, .. }));
    let balance = projections::balances::programme_balance(store, LINE.0).await.unwrap();
    assert_eq!(balance.figures.disbursed.cash, "125.00");
    assert_held_everywhere(store, "0.00", "875.00").await;
    let statement = statement_of(store).await;
    assert_eq!((statement.closing.held, statement.movements.held, statement.closing.cash), (0, 0, 12_500));
    let organisation = ledger_api::reports::iati::ReportingOrg::parse("XM-DAC-47066", "IOM", "40").unwrap();
    let request = ledger_api::reports::iati::IatiRequest {
        programme: Some(programme(LINE.0)),
        donor: None,
        until: store.head().await.unwrap().0,
        day: chrono::Utc::now().date_naive(),
    };
    let xml = String::from_utf8(ledger_api::reports::iati::iati_file(store, &organisation, &request).await.unwrap()).unwrap();
    assert!(xml.contains(">125.00</value>"), "the delivered rows are the month's cash expenditure: {xml}");
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(one_whole_cycle_holds_charges_releases_and_closes);

/// The statement of the line's donor from the first event to the head.
async fn statement_of(store: &Store) -> ledger_api::reports::statement::Statement {
    let period = ledger_api::reports::statement::Period {
        programme: programme(LINE.0),
        donor: donor(LINE.1),
        from: date("2023-01-01"),
        to: chrono::Utc::now().date_naive(),
    };
    let (head, _) = store.head().await.unwrap();
    ledger_api::reports::statement::statement(store, &period, currency("EUR"), 0, head).await.unwrap()
}

/// `held` and `available` of the line in the programme, donor and country
/// balances and in the statement.
async fn assert_held_everywhere(store: &Store, held: &str, available: &str) {
    let programme_balance = projections::balances::programme_balance(store, LINE.0).await.unwrap();
    assert_eq!((programme_balance.figures.held.as_str(), programme_balance.figures.available.as_str()), (held, available));
    let morocco = programme_balance.by_country.iter().find(|figures| figures.country == LINE.2).unwrap();
    assert_eq!((morocco.held.as_str(), morocco.available.as_str()), (held, available));
    let by_donor = programme_balance.by_donor.iter().find(|figures| figures.donor == LINE.1).unwrap();
    assert_eq!(by_donor.figures.held, held);
    let donor_balance = projections::balances::donor_balance(store, LINE.1).await.unwrap();
    assert_eq!(donor_balance.programmes[0].figures.held, held);
    let country_balance = projections::balances::country_balance(store, LINE.2).await.unwrap();
    assert_eq!(
        (country_balance.programmes[0].held.as_str(), country_balance.programmes[0].available.as_str()),
        (held, available)
    );
    let statement = statement_of(store).await;
    let figures = statement.closing.figures(currency("EUR"));
    assert_eq!((figures.held.as_str(), figures.available.as_str()), (held, available));
    let country = &statement.countries[LINE.2];
    assert_eq!(
        ledger_api::reports::statement::country_values(country)[13..],
        [amount(held).mantissa(), amount(available).mantissa()]
    );
}

async fn a_refused_list_or_confirmation_leaves_no_trace(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    let before = snapshot(store).await;
    let over = list_rows(&test_keys(), "MA-OVER", 11, "100.00", "EUR");
    let refused = append_unit(&mut appender, unit(vec![import_list(list_id(1), LINE, over)])).await;
    let UnitOutcome::Refused { error: DomainError::PaymentListInvalid { problems }, .. } = refused else { panic!("{refused:?}") };
    assert_eq!((problems[0].row, problems[0].column), (None, "amount"));
    let mut twice = list_rows(&test_keys(), "MA-TWICE", 2, "10.00", "EUR");
    twice[1].beneficiary_ref = twice[0].beneficiary_ref.clone();
    let refused = append_unit(&mut appender, unit(vec![import_list(list_id(2), LINE, twice)])).await;
    let UnitOutcome::Refused { error: DomainError::PaymentListInvalid { problems }, .. } = refused else { panic!("{refused:?}") };
    assert_eq!((problems[0].row, problems[0].column), (Some(3), "case_id"));
    assert_eq!(snapshot(store).await, before, "a refused import holds nothing");

    let list = list_id(3);
    released_list(&mut appender, store, list, LINE, list_rows(&test_keys(), "MA-PART", 2, "10.00", "EUR")).await;
    let released = snapshot(store).await;
    let part = vec![delivered(2, test_reference(list, 0), "10.00"), failed(3, "UNKNOWN-REFERENCE-0001".to_string())];
    let refused = append_unit(&mut appender, unit(vec![confirm_list(list, part)])).await;
    let UnitOutcome::Refused { error: DomainError::ConfirmationRefused { problems, .. }, .. } = refused else {
        panic!("{refused:?}")
    };
    assert_eq!((problems[0].row, problems[0].column), (Some(3), "reference"));
    assert_eq!(snapshot(store).await, released, "a refused confirmation records nothing");
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(a_refused_list_or_confirmation_leaves_no_trace);

async fn transitions_out_of_order_are_refused(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    let list = list_id(1);
    append_by(&mut appender, ACTOR, import_list(list, LINE, three_rows())).await;
    let refusal = |outcome: UnitOutcome| match outcome {
        UnitOutcome::Refused { error, .. } => error,
        other => panic!("expected a refusal, got {other:?}"),
    };
    let release_early = refusal(append_unit(&mut appender, unit(vec![release_list(list, 3)])).await);
    assert!(matches!(release_early, DomainError::ApprovalsMissing { approvals: 0, required: 1, .. }));
    let confirm_early =
        refusal(append_unit(&mut appender, unit(vec![confirm_list(list, vec![failed(2, test_reference(list, 0))])])).await);
    assert!(matches!(confirm_early, DomainError::NotReleased { .. }));
    let wrong_hash =
        refusal(append_unit(&mut appender, unit_by(APPROVER, vec![approve_list(list, APPROVER, &"0".repeat(64))])).await);
    assert!(matches!(wrong_hash, DomainError::ContentHashMismatch { .. }));
    append_by(&mut appender, ACTOR, cancel_list(list)).await;
    assert_eq!(available_minor(store).await, 100_000);
    let hash = content_hash_of(store, list).await;
    let approve_cancelled =
        refusal(append_unit(&mut appender, unit_by(APPROVER, vec![approve_list(list, APPROVER, &hash)])).await);
    assert!(matches!(approve_cancelled, DomainError::PaymentListStatus { status: "cancelled", .. }));
    let cancel_again = refusal(append_unit(&mut appender, unit(vec![cancel_list(list)])).await);
    assert!(matches!(cancel_again, DomainError::PaymentListStatus { status: "cancelled", .. }));
    let unknown = refusal(append_unit(&mut appender, unit(vec![cancel_list(list_id(9))])).await);
    assert_eq!(unknown, DomainError::UnknownPaymentList(list_id(9)));
    assert_eq!(detail(store, list).await.summary.released_back, amount("180.00"));
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(transitions_out_of_order_are_refused);

async fn cancelling_a_partly_confirmed_list_releases_the_rest_and_a_new_appender_sees_it(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    let list = list_id(1);
    released_list(&mut appender, store, list, LINE, three_rows()).await;
    append_by(&mut appender, ACTOR, confirm_list(list, vec![delivered(2, test_reference(list, 0), "1080.00")])).await;
    // Another server's appender loads the state from the tables.
    let other = database.open().await;
    let mut other_appender = other.appender();
    let again =
        append_unit(&mut other_appender, unit(vec![confirm_list(list, vec![delivered(2, test_reference(list, 0), "1080.00")])]))
            .await;
    assert_eq!(again, UnitOutcome::Unchanged, "the loaded state knows the row's outcome");
    append_by(&mut other_appender, ACTOR, cancel_list(list)).await;
    assert_eq!(available_minor(store).await, 100_000 - 10_000);
    let cancelled = detail(store, list).await;
    assert_eq!((cancelled.summary.status, cancelled.summary.held), (PaymentListStatus::Cancelled, amount("0.00")));
    assert_eq!(cancelled.summary.released_back, amount("80.00"));
    let late = append_unit(&mut appender, unit(vec![confirm_list(list, vec![failed(3, test_reference(list, 1))])])).await;
    assert!(matches!(late, UnitOutcome::Refused { error: DomainError::PaymentListStatus { .. }, .. }), "{late:?}");
    let before = snapshot(store).await;
    projections::rebuild::rebuild(store, |_| {}).await.unwrap();
    assert_eq!(snapshot(store).await, before, "a rebuild makes the same payment list tables");
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(cancelling_a_partly_confirmed_list_releases_the_rest_and_a_new_appender_sees_it);

/// A list that an appender saw closed is not read again when that appender
/// reloads its state after another server's append: a closed list never
/// changes. The test changes the closed list's stored outcome behind the
/// appender's back: the appender still answers the resent confirmation
/// from what it knew, while a new appender, which reads the tables, sees
/// the change. Once the change is undone, both agree.
async fn a_closed_list_is_kept_across_reloads_and_not_read_again(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    let list = list_id(1);
    let references = released_list(&mut appender, store, list, LINE, three_rows()).await;
    let file = || {
        confirm_list(
            list,
            vec![
                delivered(2, references[0].clone(), "1080.00"),
                failed(3, references[1].clone()),
                delivered(4, references[2].clone(), "324.00"),
            ],
        )
    };
    append_by(&mut appender, ACTOR, file()).await;
    assert_eq!(detail(store, list).await.summary.status, PaymentListStatus::Closed);

    // Another server appends, so the appender's next batch reloads.
    let other = database.open().await;
    append_ok(&mut other.appender(), pay_cash(&test_keys(), LINE, "MA-OTHER-1", "10.00", "EUR")).await;
    let tamper = "UPDATE payment_outcomes SET status = 'failed' WHERE list = $1 AND row = 2";
    sqlx::query(tamper).bind(list.to_string()).execute(store.pool()).await.unwrap();

    let resent = append_unit(&mut appender, unit(vec![file()])).await;
    assert_eq!(resent, UnitOutcome::Unchanged, "the reload kept the closed list as the appender knew it");
    let fresh = database.open().await;
    let read_again = append_unit(&mut fresh.appender(), unit(vec![file()])).await;
    assert!(
        matches!(read_again, UnitOutcome::Refused { .. }),
        "a new appender reads the tables, where the row now failed: {read_again:?}"
    );

    let undo = "UPDATE payment_outcomes SET status = 'delivered' WHERE list = $1 AND row = 2";
    sqlx::query(undo).bind(list.to_string()).execute(store.pool()).await.unwrap();
    assert_eq!(append_unit(&mut database.open().await.appender(), unit(vec![file()])).await, UnitOutcome::Unchanged);
    // The appender's later decisions still hold the other server's payment.
    append_ok(&mut appender, pay_cash(&test_keys(), LINE, "MA-OTHER-2", "10.00", "EUR")).await;
    assert_eq!(available_minor(store).await, 100_000 - 10_000 - 3_000 - 2_000);
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(a_closed_list_is_kept_across_reloads_and_not_read_again);

async fn held_money_is_refused_to_payments_and_reversals(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    append_by(&mut appender, ACTOR, import_list(list_id(1), LINE, list_rows(&test_keys(), "MA-HOLD", 9, "100.00", "EUR"))).await;
    let paid = append_one(&mut appender, pay_cash(&test_keys(), LINE, "MA-CASH-1", "150.00", "EUR")).await;
    assert!(matches!(paid, UnitOutcome::Refused { error: DomainError::OverSpending { .. }, .. }), "{paid:?}");
    let reversed = append_one(&mut appender, reverse(4)).await;
    assert!(matches!(reversed, UnitOutcome::Refused { error: DomainError::ReversalWouldGoNegative { .. }, .. }), "{reversed:?}");
    append_ok(&mut appender, pay_cash(&test_keys(), LINE, "MA-CASH-1", "100.00", "EUR")).await;
    assert_eq!(available_minor(store).await, 0);
    assert_verified_and_rebuilt(store).await;
}
on_both_backends!(held_money_is_refused_to_payments_and_reversals);

/// 600.00 EUR lists, each of six rows of 100.00, from a line of 1,000.00.
fn racing_list(number: u128) -> ledger_core::store::AppendUnit {
    let rows = list_rows(&test_keys(), &format!("MA-RACE-{number}"), 6, "100.00", "EUR");
    unit(vec![import_list(list_id(number), LINE, rows)])
}

/// Exactly one of the racing lists is held; the others are refused for the
/// total; the line is never over-held.
async fn assert_one_list_won(store: &Store, outcomes: Vec<UnitOutcome>) {
    let won = outcomes.iter().filter(|outcome| matches!(outcome, UnitOutcome::Appended(_))).count();
    let refused = outcomes
        .iter()
        .filter(|outcome| matches!(outcome, UnitOutcome::Refused { error: DomainError::PaymentListInvalid { .. }, .. }))
        .count();
    assert_eq!((won, refused), (1, outcomes.len() - 1), "{outcomes:?}");
    assert_eq!(available_minor(store).await, 100_000 - 60_000);
    assert_verified_and_rebuilt(store).await;
}

async fn two_lists_racing_through_one_writer_never_over_hold(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let (writer, writer_task) = Writer::spawn(ledger.appender());
    let mut tasks = JoinSet::new();
    for number in 1..=4 {
        let writer = writer.clone();
        tasks.spawn(async move { writer.append(racing_list(number)).await });
    }
    drop(writer);
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.push(joined.unwrap().expect("the database answers"));
    }
    writer_task.await.unwrap();
    assert_one_list_won(&ledger.store, outcomes).await;
}
on_both_backends!(two_lists_racing_through_one_writer_never_over_hold);

async fn two_servers_racing_with_lists_for_one_line_never_over_hold(database: TestDatabase) {
    let servers = [database.open().await, database.open().await];
    fund_one_line(&servers[0]).await;
    let mut appenders: Vec<_> = servers.iter().map(|server| server.appender()).collect();
    // Each appender decides once, so that it holds a state in memory that
    // the other's list then makes stale: the race is decided on reloads.
    for appender in &mut appenders {
        let warm = append_unit(appender, unit(vec![cancel_list(list_id(99))])).await;
        assert!(matches!(warm, UnitOutcome::Refused { .. }));
    }
    let mut tasks = JoinSet::new();
    for (index, mut appender) in appenders.into_iter().enumerate() {
        tasks.spawn(async move {
            let mut outcomes = Vec::new();
            for attempt in 0..2 {
                let number = (index * 10 + attempt + 1) as u128;
                loop {
                    match appender.append(&[racing_list(number)]).await {
                        Ok(mut answered) => {
                            outcomes.push(answered.remove(0));
                            break;
                        }
                        // SQLite may answer busy to a writer that waited too long.
                        Err(error) if error.to_string().contains("busy") || error.to_string().contains("locked") => continue,
                        Err(error) => panic!("{error}"),
                    }
                }
            }
            outcomes
        });
    }
    let mut outcomes = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        outcomes.extend(joined.unwrap());
    }
    assert_one_list_won(&servers[0].store, outcomes).await;
}
on_both_backends!(two_servers_racing_with_lists_for_one_line_never_over_hold);

async fn earlier_assistance_names_other_programmes_and_this_ones_within_the_window(database: TestDatabase) {
    let ledger = database.open().await;
    fund_one_line(&ledger).await;
    let store = &ledger.store;
    let mut appender = ledger.appender();
    append_all(
        &mut appender,
        vec![
            register_programme("RADA", "EUR", &["MA"]),
            commit("RADA", LINE.1, "100.00"),
            allocate("RADA", LINE.1, "MA", "100.00"),
        ],
    )
    .await;
    let keys = test_keys();
    append_ok(&mut appender, pay_cash(&keys, ("RADA", LINE.1, "MA"), "MA-ELSEWHERE", "10.00", "EUR")).await;
    // Paid by this programme on 2023-05-02 (pay_cash's day).
    append_ok(&mut appender, pay_cash(&keys, LINE, "MA-HERE", "10.00", "EUR")).await;
    let returnees = ["MA-ELSEWHERE", "MA-HERE", "MA-NEW"].map(|case_id| keys.pseudonymise(case_id).unwrap());
    let mut connection = store.pool().acquire().await.unwrap();
    let programme_code = programme(LINE.0);
    let within = read::earlier_assistance(&mut connection, &programme_code, &returnees, date("2023-05-20"), 30).await.unwrap();
    assert_eq!(
        within.get(&returnees[0]).unwrap().iter().collect::<Vec<_>>(),
        [&read::EarlierAssistance::OtherProgramme { programme: "RADA".to_string() }]
    );
    assert_eq!(
        within.get(&returnees[1]).unwrap().iter().collect::<Vec<_>>(),
        [&read::EarlierAssistance::SameProgrammeWithin { assisted_on: "2023-05-02".to_string() }]
    );
    assert!(!within.contains_key(&returnees[2]), "a returnee never assisted is no warning");
    let later = read::earlier_assistance(&mut connection, &programme_code, &returnees, date("2023-09-01"), 30).await.unwrap();
    assert!(!later.contains_key(&returnees[1]), "outside the window this programme's own payment is no warning");
    assert!(later.contains_key(&returnees[0]));
}
on_both_backends!(earlier_assistance_names_other_programmes_and_this_ones_within_the_window);
