//! The fold of payment list events into their tables, and their holds into
//! the budget lines.

use ledger_core::chain::EventRecord;
use ledger_core::domain::payment_lists::{DeliveryStatus, PaymentListEvent, PaymentListImported, PaymentListStatus};
use ledger_core::domain::types::to_minor_units;

use super::{
    BUDGET_LINES, Changes, PAYMENT_LIST_APPROVALS, PAYMENT_LIST_ROWS, PAYMENT_LIST_TOTALS, PAYMENT_LISTS, PAYMENT_OUTCOMES,
    PAYMENT_REFERENCES, Value, text,
};

/// A change of a list's totals, in minor units.
#[derive(Default)]
struct TotalsChange {
    held: i64,
    delivered: i64,
    failed: i64,
    released_back: i64,
    approvals: i64,
}

fn int(number: impl Into<i64>) -> Value {
    Value::Int(number.into())
}

impl Changes {
    /// Folds in one payment list event.
    pub(super) fn add_payment_list(&mut self, record: &EventRecord, event: &PaymentListEvent) {
        let seq = i64::try_from(record.seq).expect("seq fits in i64");
        let list = text(event.list());
        let row_key = |row: u32| vec![list.clone(), int(row)];
        let (status, change, currency) = match event {
            PaymentListEvent::Imported(imported) => {
                self.add_import(record, imported);
                let held = to_minor_units(imported.total, imported.currency);
                (PaymentListStatus::Imported, TotalsChange { held, ..TotalsChange::default() }, Some(imported.currency))
            }
            PaymentListEvent::Approved(approved) => {
                self.merge(
                    &PAYMENT_LIST_APPROVALS,
                    vec![list.clone(), text(&approved.approved_by)],
                    vec![int(approved.approval), int(seq), text(&record.recorded_at)],
                );
                let status = if approved.approval >= approved.approvals_required {
                    PaymentListStatus::Approved
                } else {
                    PaymentListStatus::Imported
                };
                (status, TotalsChange { approvals: 1, ..TotalsChange::default() }, None)
            }
            PaymentListEvent::Released(released) => {
                for reference in &released.references {
                    self.merge(&PAYMENT_REFERENCES, row_key(reference.row), vec![text(&reference.reference)]);
                }
                (PaymentListStatus::Released, TotalsChange::default(), None)
            }
            PaymentListEvent::Confirmed(confirmed) => {
                let mut change = TotalsChange::default();
                let currency = confirmed.currency;
                for outcome in &confirmed.outcomes {
                    let charged = to_minor_units(outcome.charged, currency);
                    let released = to_minor_units(outcome.released, currency);
                    change.held -= charged + released;
                    change.released_back += released;
                    match outcome.status {
                        DeliveryStatus::Delivered => change.delivered += charged,
                        DeliveryStatus::Failed => change.failed += released,
                    }
                    let delivered = to_minor_units(outcome.delivered_amount, outcome.delivered_currency);
                    self.merge(
                        &PAYMENT_OUTCOMES,
                        row_key(outcome.row),
                        vec![
                            text(outcome.status.as_str()),
                            int(delivered),
                            text(outcome.delivered_on),
                            text(&outcome.provider_transaction_id),
                            int(charged),
                            int(released),
                            int(seq),
                        ],
                    );
                }
                (PaymentListStatus::Released, change, Some(currency))
            }
            PaymentListEvent::Cancelled(cancelled) => {
                let released = to_minor_units(cancelled.released, cancelled.currency);
                let change = TotalsChange { held: -released, released_back: released, ..TotalsChange::default() };
                (PaymentListStatus::Cancelled, change, Some(cancelled.currency))
            }
            PaymentListEvent::Closed(_) => (PaymentListStatus::Closed, TotalsChange::default(), None),
        };
        self.merge(
            &PAYMENT_LIST_TOTALS,
            vec![list.clone()],
            vec![
                text(event.programme()),
                text(status.as_str()),
                int(change.held),
                int(change.delivered),
                int(change.failed),
                int(change.released_back),
                int(change.approvals),
                int(seq),
            ],
        );
        if let Some(currency) = currency.filter(|_| change.held != 0) {
            let (programme, donor, country) = line_of(event);
            self.merge(
                &BUDGET_LINES,
                vec![programme, donor, country],
                vec![text(currency), int(0), int(0), int(0), int(change.held)],
            );
        }
    }

    fn add_import(&mut self, record: &EventRecord, imported: &PaymentListImported) {
        let seq = i64::try_from(record.seq).expect("seq fits in i64");
        let list = text(imported.list);
        let rows = i64::try_from(imported.rows.len()).expect("rows are bounded");
        self.merge(
            &PAYMENT_LISTS,
            vec![list.clone()],
            vec![
                text(&imported.programme),
                text(&imported.donor),
                text(imported.country),
                text(imported.currency),
                text(imported.planned_on),
                text(&imported.imported_by),
                int(seq),
                text(&record.recorded_at),
                text(&imported.content_hash),
                int(imported.approvals_required),
                int(rows),
                int(to_minor_units(imported.total, imported.currency)),
            ],
        );
        for row in &imported.rows {
            let method = serde_json::to_value(row.method).expect("methods serialize");
            self.merge(
                &PAYMENT_LIST_ROWS,
                vec![list.clone(), int(row.row)],
                vec![
                    text(&row.beneficiary_ref),
                    int(to_minor_units(row.amount, imported.currency)),
                    int(to_minor_units(row.paid_amount, row.paid_currency)),
                    text(row.paid_currency),
                    text(method.as_str().unwrap_or_default()),
                    text(row.row_reference.as_deref().unwrap_or_default()),
                ],
            );
        }
    }
}

/// The budget line of a list event, as key values.
fn line_of(event: &PaymentListEvent) -> (Value, Value, Value) {
    let (donor, country) = match event {
        PaymentListEvent::Imported(event) => (&event.donor, event.country),
        PaymentListEvent::Approved(event) => (&event.donor, event.country),
        PaymentListEvent::Released(event) => (&event.donor, event.country),
        PaymentListEvent::Confirmed(event) => (&event.donor, event.country),
        PaymentListEvent::Cancelled(event) => (&event.donor, event.country),
        PaymentListEvent::Closed(event) => (&event.donor, event.country),
    };
    (text(event.programme()), text(donor), text(country))
}
