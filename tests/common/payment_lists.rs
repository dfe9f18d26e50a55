//! Payment list scenarios at the store: commands, the actors of four-eyes,
//! and a list taken from import to release in one call.

use ledger_core::domain::Command;
use ledger_core::domain::payment_lists::{Confirmation, Delivery, PaymentListRow};
use ledger_core::domain::types::PaymentMethod;
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, Appender, Store, UnitOutcome};
use uuid::Uuid;

use super::{ACTOR, amount, append_unit, country, currency, date, donor, programme};

/// The finance officer who approves what `ACTOR` imports.
pub const APPROVER: &str = "second-finance-officer@test";
/// The day lists are planned and confirmations delivered (within the test
/// programmes, before today).
pub const PAYMENT_DAY: &str = "2026-06-01";

/// A unit of `commands` appended by `actor`.
pub fn unit_by(actor: &str, commands: Vec<Command>) -> AppendUnit {
    AppendUnit { actor: actor.to_string(), commands, idempotency: None, token_hash: None }
}

/// A row for `case_id`, charged `value` and paid `paid` in local currency.
pub fn list_row(
    keys: &KeyRing,
    row: u32,
    case_id: &str,
    value: &str,
    (paid_amount, paid_currency): (&str, &str),
) -> PaymentListRow {
    PaymentListRow {
        row,
        beneficiary_ref: keys.pseudonymise(case_id).expect("test case ids are valid"),
        amount: amount(value),
        paid_amount: amount(paid_amount),
        paid_currency: currency(paid_currency),
        method: PaymentMethod::MobileMoney,
        row_reference: None,
    }
}

/// `count` rows of `value` each, paid in the programme's currency, for case
/// ids `{prefix}-1`, `{prefix}-2`, ...; rows numbered from 2 (the header is
/// row 1).
pub fn list_rows(keys: &KeyRing, prefix: &str, count: u32, value: &str, paid_currency: &str) -> Vec<PaymentListRow> {
    (1..=count).map(|index| list_row(keys, index + 1, &format!("{prefix}-{index}"), value, (value, paid_currency))).collect()
}

/// An import by `ACTOR` for the budget line `(programme, donor, country)`.
pub fn import_list(
    list: Uuid,
    (programme_code, donor_code, country_code): (&str, &str, &str),
    rows: Vec<PaymentListRow>,
) -> Command {
    Command::ImportPaymentList {
        list,
        by: ACTOR.to_string(),
        programme: programme(programme_code),
        donor: donor(donor_code),
        country: country(country_code),
        planned_on: date(PAYMENT_DAY),
        rows,
    }
}

pub fn approve_list(list: Uuid, by: &str, content_hash: &str) -> Command {
    Command::ApprovePaymentList { list, by: by.to_string(), content_hash: content_hash.to_string() }
}

/// The reference a test gives row `index` (0-based) of `list`.
pub fn test_reference(list: Uuid, index: usize) -> String {
    format!("T{}{index:08}", list.simple())
}

pub fn release_list(list: Uuid, rows: usize) -> Command {
    Command::ReleasePaymentList {
        list,
        by: ACTOR.to_string(),
        references: (0..rows).map(|index| test_reference(list, index)).collect(),
    }
}

pub fn delivered(line: u32, reference: String, value: &str) -> Confirmation {
    Confirmation {
        line,
        reference,
        delivery: Delivery::Delivered { amount: amount(value) },
        delivered_on: date(PAYMENT_DAY),
        provider_transaction_id: format!("PROVIDER-{line}"),
    }
}

pub fn failed(line: u32, reference: String) -> Confirmation {
    Confirmation {
        line,
        reference,
        delivery: Delivery::Failed,
        delivered_on: date(PAYMENT_DAY),
        provider_transaction_id: format!("PROVIDER-{line}"),
    }
}

pub fn confirm_list(list: Uuid, confirmations: Vec<Confirmation>) -> Command {
    Command::ConfirmPayments { list, by: ACTOR.to_string(), confirmations }
}

pub fn cancel_list(list: Uuid) -> Command {
    Command::CancelPaymentList { list, by: ACTOR.to_string(), reason: "planned twice".to_string() }
}

/// The content hash of a stored list.
pub async fn content_hash_of(store: &Store, list: Uuid) -> String {
    let mut connection = store.pool().acquire().await.expect("a connection");
    let summary = projections::payment_lists::payment_list_summary(&mut connection, list).await.expect("lists can be read");
    summary.expect("the list is stored").content_hash
}

/// Appends one unit by `actor`; panics unless it was appended.
pub async fn append_by(appender: &mut Appender, actor: &str, command: Command) -> Vec<ledger_core::store::Receipt> {
    let described = format!("{command:?}");
    match append_unit(appender, unit_by(actor, vec![command])).await {
        UnitOutcome::Appended(receipts) => receipts,
        other => panic!("expected {} to be appended, got {other:?}", described.chars().take(300).collect::<String>()),
    }
}

/// Imports `rows` as `list` on `line`, has `APPROVER` approve it and
/// releases it with `test_reference`s. Returns the references in row order.
pub async fn released_list(
    appender: &mut Appender,
    store: &Store,
    list: Uuid,
    line: (&str, &str, &str),
    rows: Vec<PaymentListRow>,
) -> Vec<String> {
    let count = rows.len();
    append_by(appender, ACTOR, import_list(list, line, rows)).await;
    let hash = content_hash_of(store, list).await;
    append_by(appender, APPROVER, approve_list(list, APPROVER, &hash)).await;
    append_by(appender, ACTOR, release_list(list, count)).await;
    (0..count).map(|index| test_reference(list, index)).collect()
}
