//! The decisions of a payment list's lifecycle. Each takes the state and a
//! command's fields and answers the events to record, "nothing to do", or
//! a refusal; none reads a clock (`today` is passed in).

use std::collections::{BTreeSet, HashMap, HashSet};

use chrono::NaiveDate;
use rust_decimal::{Decimal, RoundingStrategy};
use uuid::Uuid;

use super::events::{
    DeliveryStatus, ListHeader, PaymentListApproved, PaymentListCancelled, PaymentListClosed, PaymentListConfirmed,
    PaymentListEvent, PaymentListImported, PaymentListReleased, PaymentListRow, PaymentReference, ProgrammeApprovalsSet,
    RowOutcome, content_hash,
};
use super::state::{ListRowState, PaymentListState, PaymentListStatus};
use super::{
    APPROVALS_REQUIRED_MAX, Confirmation, Delivery, PAYMENT_LIST_ROWS_MAX, PAYMENT_REFERENCE_PATTERN, Problem,
    is_payment_reference,
};
use crate::domain::decide::{Decision, check_country, funding_of, line_key};
use crate::domain::error::DomainError;
use crate::domain::events::{CashReinsertionPaid, EventBody, MoneyEntry, RATE_DECIMALS};
use crate::domain::state::{State, money_text};
use crate::domain::types::{
    BeneficiaryRef, CountryCode, Currency, DonorCode, Money, ProgrammeCode, TOTAL_MINOR_UNITS_MAX, parse_text,
};

/// The fields of an import command.
pub struct ImportRequest<'a> {
    pub list: Uuid,
    pub by: &'a str,
    pub programme: &'a ProgrammeCode,
    pub donor: &'a DonorCode,
    pub country: CountryCode,
    pub planned_on: NaiveDate,
    pub rows: &'a [PaymentListRow],
}

fn list_body(event: PaymentListEvent) -> EventBody {
    EventBody::PaymentList(event)
}

fn list_of(state: &State, list: Uuid) -> Result<&PaymentListState, DomainError> {
    state.payment_lists.get(&list).map(|list| list.as_ref()).ok_or(DomainError::UnknownPaymentList(list))
}

fn refuse_status(list: Uuid, status: PaymentListStatus, action: &'static str) -> DomainError {
    DomainError::PaymentListStatus { list, status: status.as_str(), action }
}

/// Imports a list: every row valid, the same returnee at most once, the
/// total within what the budget line has available. Any problem refuses
/// the whole list, with every problem found.
pub fn import(state: &State, request: &ImportRequest<'_>) -> Result<Decision, DomainError> {
    if state.payment_lists.contains_key(&request.list) {
        return Err(DomainError::PaymentListExists(request.list));
    }
    let (info, _) = funding_of(state, request.programme, request.donor, Decimal::ONE, None)?;
    check_country(info, request.programme, request.country)?;
    let imported_by = parse_text("by", request.by)?;
    if request.rows.is_empty() || request.rows.len() > PAYMENT_LIST_ROWS_MAX {
        return Err(DomainError::invalid("rows", format!("a payment list has 1 to {PAYMENT_LIST_ROWS_MAX} rows")));
    }
    let currency = info.currency;
    let mut problems = Vec::new();
    if !(info.starts_on..=info.ends_on).contains(&request.planned_on) {
        problems.push(Problem::of_list(
            "planned_on",
            format!(
                "{} is outside programme {}, which runs from {} to {}",
                request.planned_on, request.programme, info.starts_on, info.ends_on
            ),
        ));
    }
    let (rows, total) = checked_rows(request.rows, currency, &mut problems);
    let key = line_key(request.programme, request.donor, request.country);
    let available = state.line(&key).available();
    match total {
        Some(total) if total > available => problems.push(Problem::of_list(
            "amount",
            format!(
                "the list's total, {} {currency}, is more than budget line {key} has available, {} {currency}",
                money_text(total, currency),
                money_text(available, currency)
            ),
        )),
        Some(_) => {}
        None => problems.push(Problem::of_list("amount", "the list's total is more than the ledger can hold".to_string())),
    }
    if !problems.is_empty() {
        return Err(DomainError::PaymentListInvalid { problems });
    }
    let total = total.expect("a list without problems has a total");
    let header = ListHeader {
        list: request.list,
        programme: request.programme,
        donor: request.donor,
        country: request.country,
        currency,
        planned_on: request.planned_on,
    };
    let imported = PaymentListImported {
        list: request.list,
        programme: request.programme.clone(),
        donor: request.donor.clone(),
        country: request.country,
        currency,
        planned_on: request.planned_on,
        imported_by,
        approvals_required: info.approvals_required,
        content_hash: content_hash(&header, &rows),
        total: money_text(total, currency),
        rows,
    };
    Ok(Decision::Record(vec![list_body(PaymentListEvent::Imported(imported))]))
}

/// The rows at their currencies' scale, and their total in minor units
/// (`None` past the ledger's limit); every problem found is pushed.
fn checked_rows(rows: &[PaymentListRow], currency: Currency, problems: &mut Vec<Problem>) -> (Vec<PaymentListRow>, Option<i64>) {
    let mut first_row_of: HashMap<&BeneficiaryRef, u32> = HashMap::new();
    let mut row_numbers = HashSet::new();
    let mut checked = Vec::with_capacity(rows.len());
    let mut total: Option<i64> = Some(0);
    for row in rows {
        if !row_numbers.insert(row.row) {
            problems.push(Problem::of_row(row.row, "row", format!("row number {} is given twice", row.row)));
        }
        if let Some(first) = first_row_of.insert(&row.beneficiary_ref, row.row) {
            problems.push(Problem::of_row(
                row.row,
                "case_id",
                format!("the same returnee as row {first}: a list pays each returnee once"),
            ));
        }
        let amount = Money::parse(row.amount, currency).map_err(|error| Problem::of_row(row.row, "amount", error.to_string()));
        let paid = Money::parse(row.paid_amount, row.paid_currency)
            .map_err(|error| Problem::of_row(row.row, "paid_amount", error.to_string()));
        let row_reference = row
            .row_reference
            .as_deref()
            .map(|text| parse_text("row_reference", text))
            .transpose()
            .map_err(|error| Problem::of_row(row.row, "row_reference", error.to_string()));
        match (amount, paid, row_reference) {
            (Ok(amount), Ok(paid), Ok(row_reference)) => {
                if paid.currency == amount.currency && paid.amount != amount.amount {
                    problems.push(Problem::of_row(
                        row.row,
                        "paid_amount",
                        format!("is in the programme's currency {currency} and must equal amount {}", amount.amount),
                    ));
                }
                total = total.and_then(|sum| sum.checked_add(amount.minor_units())).filter(|sum| *sum <= TOTAL_MINOR_UNITS_MAX);
                checked.push(PaymentListRow {
                    row: row.row,
                    beneficiary_ref: row.beneficiary_ref.clone(),
                    amount: amount.amount,
                    paid_amount: paid.amount,
                    paid_currency: paid.currency,
                    method: row.method,
                    row_reference,
                });
            }
            (amount, paid, row_reference) => {
                problems.extend([amount.err(), paid.err(), row_reference.err()].into_iter().flatten());
            }
        }
    }
    (checked, total)
}

/// One approval: by someone other than the importer and every earlier
/// approver, of exactly the content imported, while the list awaits
/// approvals.
pub fn approve(state: &State, list: Uuid, by: &str, approved_hash: &str) -> Result<Decision, DomainError> {
    let payment_list = list_of(state, list)?;
    if payment_list.status != PaymentListStatus::Imported {
        return Err(refuse_status(list, payment_list.status, "approved"));
    }
    if approved_hash != payment_list.content_hash {
        return Err(DomainError::ContentHashMismatch { list, content_hash: payment_list.content_hash.clone() });
    }
    let approved_by = parse_text("by", by)?;
    if approved_by == payment_list.imported_by {
        return Err(DomainError::SelfApproval { list });
    }
    if payment_list.approvals.contains(&approved_by) {
        return Err(DomainError::ApprovedTwice { list, by: approved_by });
    }
    let approval = u32::try_from(payment_list.approvals.len() + 1).expect("approvals are bounded by APPROVALS_REQUIRED_MAX");
    let approved = PaymentListApproved {
        list,
        programme: payment_list.line.programme.clone(),
        donor: payment_list.line.donor.clone(),
        country: payment_list.line.country,
        approved_by,
        content_hash: payment_list.content_hash.clone(),
        approval,
        approvals_required: payment_list.approvals_required,
    };
    Ok(Decision::Record(vec![list_body(PaymentListEvent::Approved(approved))]))
}

/// Release: every row gets its reference (given in row order), unique in
/// the list and in the ledger; only once the approvals are in.
pub fn release(state: &State, list: Uuid, by: &str, references: &[String]) -> Result<Decision, DomainError> {
    let payment_list = list_of(state, list)?;
    match payment_list.status {
        PaymentListStatus::Approved => {}
        PaymentListStatus::Imported => {
            return Err(DomainError::ApprovalsMissing {
                list,
                approvals: payment_list.approvals.len(),
                required: payment_list.approvals_required,
            });
        }
        status => return Err(refuse_status(list, status, "released")),
    }
    let released_by = parse_text("by", by)?;
    if references.len() != payment_list.rows.len() {
        return Err(DomainError::invalid(
            "references",
            format!(
                "give one reference per row: the list has {} rows, {} references given",
                payment_list.rows.len(),
                references.len()
            ),
        ));
    }
    let mut seen = HashSet::with_capacity(references.len());
    for reference in references {
        if !is_payment_reference(reference) {
            return Err(DomainError::invalid("references", format!("a payment reference matches {PAYMENT_REFERENCE_PATTERN}")));
        }
        if !seen.insert(reference.as_str()) {
            return Err(DomainError::invalid("references", "each row needs its own reference".to_string()));
        }
        if state.payment_references.contains(reference) {
            return Err(DomainError::PaymentReferenceExists);
        }
    }
    let references = payment_list
        .rows
        .iter()
        .zip(references)
        .map(|(row, reference)| PaymentReference { row: row.row, reference: reference.clone() })
        .collect();
    let released = PaymentListReleased {
        list,
        programme: payment_list.line.programme.clone(),
        donor: payment_list.line.donor.clone(),
        country: payment_list.line.country,
        released_by,
        references,
    };
    Ok(Decision::Record(vec![list_body(PaymentListEvent::Released(released))]))
}

/// A part of the provider's confirmation file. Rows already confirmed the
/// same way are passed over (the whole part again: nothing to do); an
/// unknown reference, a row confirmed otherwise before or any invalid field
/// refuses the part, with every problem by line. Each delivered row becomes
/// a cash reinsertion payment linked to the list; when every row has an
/// outcome, the list is closed in the same unit.
pub fn confirm(
    state: &State,
    list: Uuid,
    by: &str,
    confirmations: &[Confirmation],
    today: NaiveDate,
) -> Result<Decision, DomainError> {
    let payment_list = list_of(state, list)?;
    match payment_list.status {
        PaymentListStatus::Released | PaymentListStatus::Closed => {}
        PaymentListStatus::Imported | PaymentListStatus::Approved => return Err(DomainError::NotReleased { list }),
        PaymentListStatus::Cancelled => return Err(refuse_status(list, PaymentListStatus::Cancelled, "confirmed")),
    }
    let confirmed_by = parse_text("by", by)?;
    if confirmations.is_empty() || confirmations.len() > PAYMENT_LIST_ROWS_MAX {
        return Err(DomainError::invalid("confirmations", format!("a confirmation file has 1 to {PAYMENT_LIST_ROWS_MAX} rows")));
    }
    let info = state.programmes.get(&payment_list.line.programme).expect("a list's programme is registered");
    let mut problems = Vec::new();
    let mut outcomes = Vec::new();
    let mut seen = HashMap::new();
    for confirmation in confirmations {
        if let Some(first) = seen.insert(confirmation.reference.as_str(), confirmation.line) {
            problems.push(Problem::of_row(
                confirmation.line,
                "reference",
                format!("is confirmed twice in this file: see row {first}"),
            ));
            continue;
        }
        let Some(&index) = payment_list.by_reference.get(&confirmation.reference) else {
            problems.push(Problem::of_row(confirmation.line, "reference", "is not a payment reference of this list"));
            continue;
        };
        let row = &payment_list.rows[index];
        let dates = (info.starts_on, info.ends_on, today);
        match outcome_of(payment_list.currency, row, confirmation, dates) {
            Err(problem) => problems.push(problem),
            Ok(outcome) => match &row.outcome {
                None => outcomes.push((index, outcome)),
                Some(recorded) if recorded_same(recorded, &outcome, row) => {}
                Some(recorded) => problems.push(Problem::of_row(
                    confirmation.line,
                    "status",
                    format!(
                        "row {} was confirmed {} before, with another outcome: a confirmed row never changes",
                        row.row,
                        recorded.status.as_str()
                    ),
                )),
            },
        }
    }
    if !problems.is_empty() {
        return Err(DomainError::ConfirmationRefused { list, problems });
    }
    if outcomes.is_empty() {
        return Ok(Decision::NothingToDo);
    }
    Ok(Decision::Record(confirmation_events(payment_list, list, confirmed_by, outcomes)))
}

fn recorded_same(recorded: &super::state::RowOutcomeState, outcome: &RowOutcome, row: &ListRowState) -> bool {
    recorded.status == outcome.status
        && recorded.delivered_minor == crate::domain::types::to_minor_units(outcome.delivered_amount, row.paid_currency)
        && recorded.delivered_on == outcome.delivered_on
        && recorded.provider_transaction_id == outcome.provider_transaction_id
}

/// The outcome a confirmation gives its row, or the problem with it.
/// A partly delivered row is charged `delivered × amount / paid_amount`
/// (the delivered local amount at the row's implied rate), rounded to the
/// programme currency's decimals, half to even.
fn outcome_of(
    currency: Currency,
    row: &ListRowState,
    confirmation: &Confirmation,
    (starts_on, ends_on, today): (NaiveDate, NaiveDate, NaiveDate),
) -> Result<RowOutcome, Problem> {
    let line = confirmation.line;
    let provider_transaction_id = parse_text("provider_transaction_id", &confirmation.provider_transaction_id)
        .map_err(|error| Problem::of_row(line, "provider_transaction_id", error.to_string()))?;
    if confirmation.delivered_on > today {
        return Err(Problem::of_row(
            line,
            "delivered_on",
            format!("{} is after today, {today} (UTC)", confirmation.delivered_on),
        ));
    }
    if !(starts_on..=ends_on).contains(&confirmation.delivered_on) {
        return Err(Problem::of_row(
            line,
            "delivered_on",
            format!("{} is outside the programme, which runs from {starts_on} to {ends_on}", confirmation.delivered_on),
        ));
    }
    let amount = Money::from_minor_units(row.amount_minor, currency);
    let paid = Money::from_minor_units(row.paid_minor, row.paid_currency);
    let (status, delivered_amount, charged) = match &confirmation.delivery {
        Delivery::Failed => {
            let mut zero = Decimal::ZERO;
            zero.rescale(row.paid_currency.minor_units());
            (DeliveryStatus::Failed, zero, Money::from_minor_units(0, currency))
        }
        Delivery::Delivered { amount: delivered } => {
            let delivered = Money::parse(*delivered, row.paid_currency)
                .map_err(|error| Problem::of_row(line, "delivered_amount", error.to_string()))?;
            if delivered.amount > paid {
                return Err(Problem::of_row(
                    line,
                    "delivered_amount",
                    format!("{} {} is more than the row's {} {}", delivered.amount, row.paid_currency, paid, row.paid_currency),
                ));
            }
            let mut charged = if delivered.amount == paid {
                amount
            } else {
                (delivered.amount * amount / paid)
                    .round_dp_with_strategy(currency.minor_units(), RoundingStrategy::MidpointNearestEven)
            };
            charged.rescale(currency.minor_units());
            if charged <= Decimal::ZERO {
                return Err(Problem::of_row(line, "delivered_amount", format!("is too small to charge anything in {currency}")));
            }
            (DeliveryStatus::Delivered, delivered.amount, charged)
        }
    };
    let reference = confirmation.reference.clone();
    let mut released = amount - charged;
    released.rescale(currency.minor_units());
    let delivered_on = confirmation.delivered_on;
    Ok(RowOutcome {
        row: row.row,
        reference,
        status,
        delivered_amount,
        delivered_currency: row.paid_currency,
        delivered_on,
        provider_transaction_id,
        charged,
        released,
    })
}

/// The confirmation event, one cash reinsertion payment per delivered
/// row, and the list's closing when no row is left without an outcome.
fn confirmation_events(
    payment_list: &PaymentListState,
    list: Uuid,
    confirmed_by: String,
    outcomes: Vec<(usize, RowOutcome)>,
) -> Vec<EventBody> {
    let line = &payment_list.line;
    let currency = payment_list.currency;
    let mut payments = Vec::new();
    for (index, outcome) in &outcomes {
        if outcome.status != DeliveryStatus::Delivered {
            continue;
        }
        let row = &payment_list.rows[*index];
        let rate = (outcome.delivered_amount / outcome.charged)
            .round_dp_with_strategy(RATE_DECIMALS, RoundingStrategy::MidpointNearestEven);
        payments.push(EventBody::Money(MoneyEntry::CashReinsertionPaid(CashReinsertionPaid {
            programme: line.programme.clone(),
            donor: line.donor.clone(),
            country: line.country,
            beneficiary_ref: row.beneficiary_ref.clone(),
            amount: outcome.charged,
            currency,
            paid_amount: outcome.delivered_amount,
            paid_currency: row.paid_currency,
            rate: rate.normalize(),
            method: row.method,
            paid_on: outcome.delivered_on,
            payment_list: Some(list),
            row: Some(row.row),
        })));
    }
    let newly_confirmed: BTreeSet<usize> = outcomes.iter().map(|(index, _)| *index).collect();
    let closes =
        payment_list.rows.iter().enumerate().all(|(index, row)| row.outcome.is_some() || newly_confirmed.contains(&index));
    let confirmed = PaymentListConfirmed {
        list,
        programme: line.programme.clone(),
        donor: line.donor.clone(),
        country: line.country,
        currency,
        confirmed_by,
        outcomes: outcomes.into_iter().map(|(_, outcome)| outcome).collect(),
    };
    let closing = closes.then(|| closing_of(payment_list, list, &confirmed));
    let mut events = Vec::with_capacity(payments.len() + 2);
    events.push(list_body(PaymentListEvent::Confirmed(confirmed)));
    events.extend(payments);
    events.extend(closing.map(|closed| list_body(PaymentListEvent::Closed(closed))));
    events
}

/// The closing totals of a list whose last rows `confirmed` confirms.
fn closing_of(payment_list: &PaymentListState, list: Uuid, confirmed: &PaymentListConfirmed) -> PaymentListClosed {
    let currency = payment_list.currency;
    let (mut delivered, mut failed, mut released_back) = (0i64, 0i64, 0i64);
    let mut add = |status: DeliveryStatus, amount: i64, charged: i64| {
        match status {
            DeliveryStatus::Delivered => delivered += charged,
            DeliveryStatus::Failed => failed += amount,
        }
        released_back += amount - charged;
    };
    let charged_of = |outcome: &RowOutcome| crate::domain::types::to_minor_units(outcome.charged, currency);
    let new: HashMap<u32, &RowOutcome> = confirmed.outcomes.iter().map(|outcome| (outcome.row, outcome)).collect();
    for row in &payment_list.rows {
        match (new.get(&row.row), &row.outcome) {
            (Some(outcome), _) => add(outcome.status, row.amount_minor, charged_of(outcome)),
            (None, Some(recorded)) => {
                add(recorded.status, row.amount_minor, recorded.charged_minor);
            }
            (None, None) => unreachable!("a closing list has an outcome for every row"),
        }
    }
    PaymentListClosed {
        list,
        programme: payment_list.line.programme.clone(),
        donor: payment_list.line.donor.clone(),
        country: payment_list.line.country,
        currency,
        delivered: money_text(delivered, currency),
        failed: money_text(failed, currency),
        released_back: money_text(released_back, currency),
    }
}

/// Cancels a list not yet closed: the hold of every row without an
/// outcome is released.
pub fn cancel(state: &State, list: Uuid, by: &str, reason: &str) -> Result<Decision, DomainError> {
    let payment_list = list_of(state, list)?;
    if matches!(payment_list.status, PaymentListStatus::Closed | PaymentListStatus::Cancelled) {
        return Err(refuse_status(list, payment_list.status, "cancelled"));
    }
    let cancelled_by = parse_text("by", by)?;
    let reason = parse_text("reason", reason)?;
    let open: Vec<&ListRowState> = payment_list.rows.iter().filter(|row| row.outcome.is_none()).collect();
    let released: i64 = open.iter().map(|row| row.amount_minor).sum();
    let cancelled = PaymentListCancelled {
        list,
        programme: payment_list.line.programme.clone(),
        donor: payment_list.line.donor.clone(),
        country: payment_list.line.country,
        currency: payment_list.currency,
        cancelled_by,
        reason,
        rows: open.iter().map(|row| row.row).collect(),
        released: money_text(released, payment_list.currency),
    };
    Ok(Decision::Record(vec![list_body(PaymentListEvent::Cancelled(cancelled))]))
}

/// Sets the approvals a programme's lists need from now on (lists already
/// imported keep the number they were imported with).
pub fn set_approvals(state: &State, programme: &ProgrammeCode, approvals_required: u32) -> Result<Decision, DomainError> {
    if !state.programmes.contains_key(programme) {
        return Err(DomainError::UnknownProgramme(programme.to_string()));
    }
    check_approvals_required(approvals_required)?;
    let set = ProgrammeApprovalsSet { programme: programme.clone(), approvals_required };
    Ok(Decision::Record(vec![EventBody::ProgrammeApprovalsSet(set)]))
}

/// A programme requires 1 to `APPROVALS_REQUIRED_MAX` approvals.
pub fn check_approvals_required(approvals_required: u32) -> Result<(), DomainError> {
    if (1..=APPROVALS_REQUIRED_MAX).contains(&approvals_required) {
        Ok(())
    } else {
        Err(DomainError::invalid("approvals_required", format!("a programme requires 1 to {APPROVALS_REQUIRED_MAX} approvals")))
    }
}
