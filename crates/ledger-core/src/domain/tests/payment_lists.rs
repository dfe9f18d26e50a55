//! Payment lists: given events, when a command, then events or a refusal.

use uuid::Uuid;

use super::*;
use crate::domain::payment_lists::{
    Confirmation, Delivery, DeliveryStatus, PaymentListEvent, PaymentListRow, PaymentListStatus, Problem,
};
use crate::domain::{Decision, decide_events};

const IMPORTER: &str = "amina";
const APPROVER: &str = "youssef";
const SECOND_APPROVER: &str = "claire";

fn list_id(number: u128) -> Uuid {
    Uuid::from_u128(0x0190_0000_0000_7000_8000_0000_0000_0000 + number)
}

/// A row paid in dirhams at 10 MAD per EUR.
fn row(number: u32, returnee: u8, amount: &str) -> PaymentListRow {
    let paid = (decimal(amount) * decimal("10")).to_string();
    PaymentListRow {
        row: number,
        beneficiary_ref: beneficiary(returnee),
        amount: decimal(amount),
        paid_amount: decimal(&paid),
        paid_currency: currency("MAD"),
        method: PaymentMethod::MobileMoney,
        row_reference: None,
    }
}

fn import(list: Uuid, rows: Vec<PaymentListRow>) -> Command {
    Command::ImportPaymentList {
        list,
        by: IMPORTER.to_string(),
        programme: programme_code(PROGRAMME),
        donor: donor_code(DONOR),
        country: country_code("MA"),
        planned_on: date("2026-02-20"),
        rows,
    }
}

/// Three rows of 100.00, 50.00 and 30.00 EUR.
fn three_rows() -> Vec<PaymentListRow> {
    vec![row(2, 1, "100"), row(3, 2, "50"), row(4, 3, "30")]
}

fn approve(list: Uuid, by: &str, content_hash: &str) -> Command {
    Command::ApprovePaymentList { list, by: by.to_string(), content_hash: content_hash.to_string() }
}

fn reference(list: Uuid, row: usize) -> String {
    format!("REF-{:08X}-{row:06}", list.as_u128() as u32)
}

fn release(list: Uuid, rows: usize) -> Command {
    Command::ReleasePaymentList {
        list,
        by: IMPORTER.to_string(),
        references: (0..rows).map(|row| reference(list, row)).collect(),
    }
}

fn delivered(line: u32, reference: String, amount: &str) -> Confirmation {
    Confirmation {
        line,
        reference,
        delivery: Delivery::Delivered { amount: decimal(amount) },
        delivered_on: date("2026-02-25"),
        provider_transaction_id: format!("TX-{line}"),
    }
}

fn failed(line: u32, reference: String) -> Confirmation {
    Confirmation {
        line,
        reference,
        delivery: Delivery::Failed,
        delivered_on: date("2026-02-25"),
        provider_transaction_id: format!("TX-{line}"),
    }
}

fn confirm(list: Uuid, confirmations: Vec<Confirmation>) -> Command {
    Command::ConfirmPayments { list, by: IMPORTER.to_string(), confirmations }
}

fn cancel(list: Uuid) -> Command {
    Command::CancelPaymentList { list, by: APPROVER.to_string(), reason: "planned twice".to_string() }
}

/// A ledger that records payment list commands (several events each).
struct Lists {
    state: State,
    bodies: Vec<EventBody>,
}

impl Lists {
    fn given(commands: &[Command]) -> Lists {
        let mut lists = Lists { state: State::default(), bodies: Vec::new() };
        for command in commands {
            lists.record(command);
        }
        lists
    }

    fn when(&self, command: &Command) -> Result<Decision, DomainError> {
        decide_events(&self.state, command, None, date(TODAY))
    }

    fn record(&mut self, command: &Command) -> Vec<EventBody> {
        let Decision::Record(bodies) = self.when(command).unwrap_or_else(|error| panic!("given {command:?}: {error}")) else {
            panic!("given {command:?} had nothing to do");
        };
        for body in &bodies {
            let seq = self.state.head_seq + 1;
            self.state.apply(seq, body);
            self.bodies.push(body.clone());
        }
        bodies
    }

    fn refusal(&self, command: &Command) -> DomainError {
        self.when(command).expect_err("the command is refused")
    }

    fn line(&self) -> BudgetLine {
        self.state.line(&BudgetLineKey {
            programme: programme_code(PROGRAMME),
            donor: donor_code(DONOR),
            country: country_code("MA"),
        })
    }

    fn list(&self, list: Uuid) -> &crate::domain::payment_lists::PaymentListState {
        &self.state.payment_lists[&list]
    }

    fn content_hash(&self, list: Uuid) -> String {
        self.list(list).content_hash.clone()
    }

    /// Imported, approved once and released.
    fn released(list: Uuid) -> Lists {
        let mut lists = Lists::given(&funded());
        lists.record(&import(list, three_rows()));
        let hash = lists.content_hash(list);
        lists.record(&approve(list, APPROVER, &hash));
        lists.record(&release(list, 3));
        lists
    }
}

#[test]
fn an_imported_list_holds_its_total_on_its_budget_line() {
    let mut lists = Lists::given(&funded());
    let bodies = lists.record(&import(list_id(1), three_rows()));
    let [EventBody::PaymentList(PaymentListEvent::Imported(imported))] = bodies.as_slice() else { panic!("{bodies:?}") };
    assert_eq!(imported.total, decimal("180.00"));
    assert_eq!(imported.imported_by, IMPORTER);
    assert_eq!(imported.approvals_required, 1);
    assert_eq!(lists.line().held, 18_000);
    assert_eq!(lists.line().available(), 50_000 - 18_000);
    assert!(postings(&bodies[0]).is_empty(), "a hold is not a posting");
}

#[test]
fn held_money_is_not_available_to_payments_reallocations_reversals_or_other_lists() {
    let mut lists = Lists::given(&with(funded(), [allocate("TN", "100")]));
    lists.record(&import(list_id(1), vec![row(2, 1, "450")]));
    assert_eq!(lists.refusal(&pay_cash("60")), over_spending("MOTUSE/EU-EUTF/MA", "50.00", "60.00"));
    assert!(matches!(lists.refusal(&reallocate("MA", "TN", "60")), DomainError::OverSpending { .. }));
    assert!(matches!(
        decide(&lists.state, &reverse(4), Some(&ReversalTarget::Found(Box::new(lists.bodies[3].clone()))), date(TODAY)),
        Err(DomainError::ReversalWouldGoNegative { .. })
    ));
    let DomainError::PaymentListInvalid { problems } = lists.refusal(&import(list_id(2), vec![row(2, 5, "60")])) else {
        panic!("a second list over what is left is refused")
    };
    assert_eq!(problems.len(), 1);
    assert_eq!((problems[0].row, problems[0].column), (None, "amount"));
    assert!(problems[0].message.contains("50.00 EUR"), "{}", problems[0].message);
    assert!(lists.when(&pay_cash("50")).is_ok(), "what is not held stays available");
}

#[test]
fn a_list_with_problems_is_refused_whole_naming_every_row_and_column() {
    let lists = Lists::given(&funded());
    let mut rows = three_rows();
    rows[0].amount = decimal("10.005");
    rows[1].beneficiary_ref = beneficiary(3);
    rows[2].paid_currency = currency("EUR");
    rows.push(row(5, 9, "0"));
    let DomainError::PaymentListInvalid { problems } = lists.refusal(&import(list_id(1), rows)) else { panic!() };
    let found: Vec<(Option<u32>, &str)> = problems.iter().map(|problem| (problem.row, problem.column)).collect();
    let expected =
        [(Some(2), "amount"), (Some(4), "case_id"), (Some(4), "paid_amount"), (Some(5), "amount"), (Some(5), "paid_amount")];
    assert_eq!(found, expected);
    assert!(problems.iter().all(|problem| !problem.message.is_empty()));
    assert_eq!(lists.line().held, 0);
}

#[test]
fn a_list_over_the_available_money_is_refused_and_holds_nothing() {
    let lists = Lists::given(&funded());
    let refusal = lists.refusal(&import(list_id(1), vec![row(2, 1, "300"), row(3, 2, "300")]));
    let DomainError::PaymentListInvalid { problems } = refusal else { panic!() };
    assert_eq!(
        problems,
        [Problem::of_list(
            "amount",
            "the list's total, 600.00 EUR, is more than budget line MOTUSE/EU-EUTF/MA has available, 500.00 EUR"
        )]
    );
}

#[test]
fn a_list_for_an_unknown_programme_donor_or_country_or_an_existing_id_is_refused() {
    let mut lists = Lists::given(&funded());
    let mut unknown_programme = import(list_id(1), three_rows());
    if let Command::ImportPaymentList { programme, .. } = &mut unknown_programme {
        *programme = programme_code("RADA");
    }
    assert_eq!(lists.refusal(&unknown_programme), DomainError::UnknownProgramme("RADA".to_string()));
    let mut unknown_donor = import(list_id(1), three_rows());
    if let Command::ImportPaymentList { donor, .. } = &mut unknown_donor {
        *donor = donor_code(OTHER_DONOR);
    }
    assert_eq!(lists.refusal(&unknown_donor), DomainError::UnknownDonor(OTHER_DONOR.to_string()));
    let mut other_country = import(list_id(1), three_rows());
    if let Command::ImportPaymentList { country, .. } = &mut other_country {
        *country = country_code("DZ");
    }
    assert!(matches!(lists.refusal(&other_country), DomainError::CountryNotInProgramme { .. }));
    assert!(matches!(lists.refusal(&import(list_id(1), Vec::new())), DomainError::Invalid { field: "rows", .. }));
    lists.record(&import(list_id(1), three_rows()));
    assert_eq!(lists.refusal(&import(list_id(1), three_rows())), DomainError::PaymentListExists(list_id(1)));
}

#[test]
fn the_content_hash_names_the_rows_and_the_list() {
    let mut lists = Lists::given(&with(funded(), [allocate("MA", "100")]));
    lists.record(&import(list_id(1), three_rows()));
    let mut other_rows = three_rows();
    other_rows[2].amount = decimal("31");
    other_rows[2].paid_amount = decimal("310");
    lists.record(&import(list_id(2), other_rows));
    lists.record(&import(list_id(3), three_rows()));
    let hashes = [lists.content_hash(list_id(1)), lists.content_hash(list_id(2)), lists.content_hash(list_id(3))];
    assert_eq!(hashes[0].len(), 64);
    assert_ne!(hashes[0], hashes[1], "another amount is another content");
    assert_ne!(hashes[0], hashes[2], "another list is another content");
}

#[test]
fn an_approval_by_the_importer_twice_by_one_person_or_of_another_content_is_refused() {
    let mut lists = Lists::given(&with(
        registered(),
        [
            Command::SetProgrammeApprovals { programme: programme_code(PROGRAMME), approvals_required: 2 },
            commit("1000"),
            allocate("MA", "500"),
        ],
    ));
    lists.record(&import(list_id(1), three_rows()));
    let hash = lists.content_hash(list_id(1));
    assert_eq!(lists.refusal(&approve(list_id(1), IMPORTER, &hash)), DomainError::SelfApproval { list: list_id(1) });
    let wrong = "0".repeat(64);
    assert_eq!(
        lists.refusal(&approve(list_id(1), APPROVER, &wrong)),
        DomainError::ContentHashMismatch { list: list_id(1), content_hash: hash.clone() }
    );
    lists.record(&approve(list_id(1), APPROVER, &hash));
    assert_eq!(lists.list(list_id(1)).status, PaymentListStatus::Imported, "one of two approvals");
    assert_eq!(
        lists.refusal(&approve(list_id(1), APPROVER, &hash)),
        DomainError::ApprovedTwice { list: list_id(1), by: APPROVER.to_string() }
    );
    assert_eq!(
        lists.refusal(&release(list_id(1), 3)),
        DomainError::ApprovalsMissing { list: list_id(1), approvals: 1, required: 2 }
    );
    let bodies = lists.record(&approve(list_id(1), SECOND_APPROVER, &hash));
    let [EventBody::PaymentList(PaymentListEvent::Approved(approved))] = bodies.as_slice() else { panic!() };
    assert_eq!((approved.approval, approved.approvals_required, approved.approved_by.as_str()), (2, 2, SECOND_APPROVER));
    assert_eq!(lists.list(list_id(1)).status, PaymentListStatus::Approved);
    assert!(matches!(lists.refusal(&approve(list_id(1), "third", &hash)), DomainError::PaymentListStatus { .. }));
}

#[test]
fn a_programme_requires_one_approval_unless_it_says_otherwise() {
    let lists = Lists::given(&registered());
    assert_eq!(lists.state.programmes[&programme_code(PROGRAMME)].approvals_required, 1);
    let mut registration = register_programme_in("RADA", "EUR", &["AF"]);
    if let Command::RegisterProgramme { approvals_required, .. } = &mut registration {
        *approvals_required = Some(3);
    }
    let lists = Lists::given(&with(registered(), [registration.clone()]));
    assert_eq!(lists.state.programmes[&programme_code("RADA")].approvals_required, 3);
    if let Command::RegisterProgramme { approvals_required, .. } = &mut registration {
        *approvals_required = Some(0);
    }
    assert!(matches!(
        Lists::given(&registered()).refusal(&registration),
        DomainError::Invalid { field: "approvals_required", .. }
    ));
    let set = |approvals_required| Command::SetProgrammeApprovals { programme: programme_code(PROGRAMME), approvals_required };
    assert!(matches!(lists.refusal(&set(11)), DomainError::Invalid { field: "approvals_required", .. }));
    let unknown = Command::SetProgrammeApprovals { programme: programme_code("NOPE"), approvals_required: 2 };
    assert_eq!(lists.refusal(&unknown), DomainError::UnknownProgramme("NOPE".to_string()));
}

#[test]
fn release_gives_each_row_its_reference_unique_in_the_ledger() {
    let mut lists = Lists::given(&funded());
    lists.record(&import(list_id(1), three_rows()));
    assert!(matches!(
        lists.refusal(&confirm(list_id(1), vec![failed(2, reference(list_id(1), 0))])),
        DomainError::NotReleased { .. }
    ));
    let hash = lists.content_hash(list_id(1));
    lists.record(&approve(list_id(1), APPROVER, &hash));
    assert!(matches!(lists.refusal(&release(list_id(1), 2)), DomainError::Invalid { field: "references", .. }));
    let short = Command::ReleasePaymentList { list: list_id(1), by: IMPORTER.to_string(), references: vec!["A1".to_string(); 3] };
    assert!(matches!(lists.refusal(&short), DomainError::Invalid { field: "references", .. }));
    let repeated =
        Command::ReleasePaymentList { list: list_id(1), by: IMPORTER.to_string(), references: vec![reference(list_id(1), 0); 3] };
    assert!(matches!(lists.refusal(&repeated), DomainError::Invalid { field: "references", .. }));
    lists.record(&release(list_id(1), 3));
    assert_eq!(lists.list(list_id(1)).status, PaymentListStatus::Released);
    assert!(matches!(
        lists.refusal(&approve(list_id(1), SECOND_APPROVER, &hash)),
        DomainError::PaymentListStatus { status: "released", .. }
    ));
    assert!(matches!(lists.refusal(&release(list_id(1), 3)), DomainError::PaymentListStatus { .. }));
    lists.record(&import(list_id(2), vec![row(2, 8, "10")]));
    let hash = lists.content_hash(list_id(2));
    lists.record(&approve(list_id(2), APPROVER, &hash));
    let reused =
        Command::ReleasePaymentList { list: list_id(2), by: IMPORTER.to_string(), references: vec![reference(list_id(1), 1)] };
    assert_eq!(lists.refusal(&reused), DomainError::PaymentReferenceExists);
}

#[test]
fn delivered_partly_delivered_and_failed_rows_are_charged_released_and_close_the_list() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    let bodies = lists.record(&confirm(
        list,
        vec![delivered(2, reference(list, 0), "1000"), delivered(3, reference(list, 1), "333.33"), failed(4, reference(list, 2))],
    ));
    let types: Vec<&str> = bodies.iter().map(EventBody::event_type).collect();
    assert_eq!(types, ["payment_list_confirmed", "cash_reinsertion_paid", "cash_reinsertion_paid", "payment_list_closed"]);
    let EventBody::Money(MoneyEntry::CashReinsertionPaid(partly)) = &bodies[2] else { panic!() };
    // 333.33 MAD of 500.00 MAD at 10 MAD per EUR: 33.333 EUR, 33.33 rounded.
    assert_eq!(
        (partly.amount, partly.paid_amount, partly.payment_list, partly.row),
        (decimal("33.33"), decimal("333.33"), Some(list), Some(3))
    );
    let EventBody::PaymentList(PaymentListEvent::Closed(closed)) = &bodies[3] else { panic!() };
    assert_eq!((closed.delivered, closed.failed, closed.released_back), (decimal("133.33"), decimal("30.00"), decimal("46.67")));
    assert_eq!(lists.line().held, 0);
    assert_eq!(lists.line().disbursed_cash, 13_333);
    assert_eq!(lists.line().available(), 50_000 - 13_333);
    assert_eq!(lists.list(list).status, PaymentListStatus::Closed);
    assert!(matches!(lists.refusal(&cancel(list)), DomainError::PaymentListStatus { status: "closed", .. }));
}

#[test]
fn the_same_confirmation_again_has_nothing_to_do_even_once_closed() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    let part = vec![delivered(2, reference(list, 0), "1000"), failed(3, reference(list, 1))];
    lists.record(&confirm(list, part.clone()));
    assert_eq!(lists.list(list).held, 3_000, "the row without an outcome stays held");
    assert_eq!(lists.when(&confirm(list, part.clone())), Ok(Decision::NothingToDo));
    lists.record(&confirm(list, vec![failed(2, reference(list, 2))]));
    assert_eq!(lists.when(&confirm(list, part)), Ok(Decision::NothingToDo));
}

#[test]
fn an_unknown_reference_or_another_outcome_refuses_the_whole_part_by_line() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    lists.record(&confirm(list, vec![delivered(2, reference(list, 0), "1000")]));
    let part = vec![
        failed(2, reference(list, 0)),
        delivered(3, "NOT-A-REFERENCE-OF-IT".to_string(), "5"),
        delivered(4, reference(list, 1), "501"),
        delivered(5, reference(list, 2), "10"),
    ];
    let DomainError::ConfirmationRefused { problems, .. } = lists.refusal(&confirm(list, part)) else { panic!() };
    let found: Vec<(Option<u32>, &str)> = problems.iter().map(|problem| (problem.row, problem.column)).collect();
    assert_eq!(found, [(Some(2), "status"), (Some(3), "reference"), (Some(4), "delivered_amount")]);
    assert_eq!(lists.list(list).held, 8_000, "nothing of the part was taken");
}

#[test]
fn a_delivery_dated_after_today_or_outside_the_programme_is_a_problem_of_its_line() {
    let list = list_id(1);
    let lists = Lists::released(list);
    let mut late = delivered(7, reference(list, 0), "1000");
    late.delivered_on = date("2026-03-02");
    let DomainError::ConfirmationRefused { problems, .. } = lists.refusal(&confirm(list, vec![late])) else { panic!() };
    assert_eq!((problems[0].row, problems[0].column), (Some(7), "delivered_on"));
}

#[test]
fn cancelling_releases_every_row_without_an_outcome_and_ends_the_list() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    lists.record(&confirm(list, vec![delivered(2, reference(list, 0), "1000")]));
    let bodies = lists.record(&cancel(list));
    let [EventBody::PaymentList(PaymentListEvent::Cancelled(cancelled))] = bodies.as_slice() else { panic!() };
    assert_eq!((cancelled.rows.as_slice(), cancelled.released), (&[3, 4][..], decimal("80.00")));
    assert_eq!(lists.line().held, 0);
    assert_eq!(lists.line().available(), 40_000);
    assert!(matches!(lists.refusal(&cancel(list)), DomainError::PaymentListStatus { status: "cancelled", .. }));
    assert!(matches!(lists.refusal(&confirm(list, vec![failed(3, reference(list, 1))])), DomainError::PaymentListStatus { .. }));
    let mut fresh = Lists::given(&funded());
    fresh.record(&import(list_id(2), three_rows()));
    fresh.record(&cancel(list_id(2)));
    let hash = fresh.content_hash(list_id(2));
    assert!(matches!(
        fresh.refusal(&approve(list_id(2), APPROVER, &hash)),
        DomainError::PaymentListStatus { status: "cancelled", .. }
    ));
    assert_eq!(fresh.line().held, 0);
}

#[test]
fn an_unknown_list_is_refused_for_every_transition() {
    let lists = Lists::given(&funded());
    let unknown = list_id(9);
    for command in
        [approve(unknown, APPROVER, "x"), release(unknown, 1), confirm(unknown, vec![failed(2, "x".repeat(16))]), cancel(unknown)]
    {
        assert_eq!(lists.refusal(&command), DomainError::UnknownPaymentList(unknown));
    }
}

#[test]
fn a_reversed_delivery_returns_its_money_to_the_line_and_leaves_the_list_closed() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    lists.record(&confirm(
        list,
        vec![delivered(2, reference(list, 0), "1000"), failed(3, reference(list, 1)), failed(4, reference(list, 2))],
    ));
    let paid_seq = lists.bodies.iter().position(|body| body.event_type() == "cash_reinsertion_paid").unwrap() as u64 + 1;
    let target = ReversalTarget::Found(Box::new(lists.bodies[paid_seq as usize - 1].clone()));
    let reversal = decide(&lists.state, &reverse(paid_seq), Some(&target), date(TODAY)).unwrap();
    lists.state.apply(lists.state.head_seq + 1, &reversal);
    assert_eq!(lists.line().available(), 50_000);
    assert_eq!(lists.list(list).status, PaymentListStatus::Closed);
}

/// One body of every payment list event type, for the catalogue tests.
pub(super) fn one_of_every_payment_list_event() -> Vec<EventBody> {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    lists.record(&confirm(
        list,
        vec![delivered(2, reference(list, 0), "1000"), failed(3, reference(list, 1)), failed(4, reference(list, 2))],
    ));
    lists.record(&import(list_id(2), three_rows()));
    lists.record(&cancel(list_id(2)));
    lists.record(&Command::SetProgrammeApprovals { programme: programme_code(PROGRAMME), approvals_required: 2 });
    lists
        .bodies
        .into_iter()
        .filter(|body| matches!(body, EventBody::PaymentList(_) | EventBody::ProgrammeApprovalsSet(_)))
        .collect()
}

#[test]
fn a_delivered_row_is_failed_status_free_of_amount() {
    let list = list_id(1);
    let mut lists = Lists::released(list);
    let bodies = lists.record(&confirm(list, vec![failed(3, reference(list, 1))]));
    let EventBody::PaymentList(PaymentListEvent::Confirmed(confirmed)) = &bodies[0] else { panic!() };
    assert_eq!(confirmed.outcomes[0].status, DeliveryStatus::Failed);
    assert_eq!((confirmed.outcomes[0].charged, confirmed.outcomes[0].released), (decimal("0.00"), decimal("50.00")));
}

#[test]
fn the_content_hash_is_the_documented_test_vector() {
    let mut second = row(3, 2, "50");
    second.method = PaymentMethod::CashInHand;
    second.row_reference = Some("BATCH-7".to_string());
    let mut rows = vec![row(2, 1, "100"), second];
    for (row, (amount, paid)) in rows.iter_mut().zip([("100.00", "1080.00"), ("50.00", "540.00")]) {
        (row.amount, row.paid_amount) = (decimal(amount), decimal(paid));
    }
    rows[0].paid_amount = decimal("1080.00");
    let (programme, donor) = (programme_code(PROGRAMME), donor_code(DONOR));
    let header = crate::domain::payment_lists::ListHeader {
        list: Uuid::parse_str("0190f1a4-0000-7000-8000-0000000000aa").unwrap(),
        programme: &programme,
        donor: &donor,
        country: country_code("MA"),
        currency: currency("EUR"),
        planned_on: date("2026-02-20"),
    };
    // docs/hash-chain.md, "Payment list content hash".
    assert_eq!(
        crate::domain::payment_lists::content_hash(&header, &rows),
        "4a6d3d7571d6502394c8a688fa2b0e5e8115cce4d0bec62c191b161b133142cc"
    );
}
