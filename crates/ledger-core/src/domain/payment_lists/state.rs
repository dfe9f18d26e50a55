//! What the decision knows of each payment list: its budget line, status,
//! approvals, rows (amounts in minor units), references and outcomes.

use std::collections::HashMap;

use chrono::NaiveDate;

use super::events::{DeliveryStatus, PaymentListEvent};
use crate::domain::state::BudgetLineKey;
use crate::domain::types::{BeneficiaryRef, Currency, PaymentMethod, to_minor_units};

/// Where a list is in its lifecycle.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PaymentListStatus {
    Imported,
    Approved,
    Released,
    Closed,
    Cancelled,
}

impl PaymentListStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            PaymentListStatus::Imported => "imported",
            PaymentListStatus::Approved => "approved",
            PaymentListStatus::Released => "released",
            PaymentListStatus::Closed => "closed",
            PaymentListStatus::Cancelled => "cancelled",
        }
    }

    /// Closed or cancelled: nothing changes the list any more.
    pub fn is_final(&self) -> bool {
        matches!(self, PaymentListStatus::Closed | PaymentListStatus::Cancelled)
    }

    pub fn parse(text: &str) -> Option<Self> {
        [
            PaymentListStatus::Imported,
            PaymentListStatus::Approved,
            PaymentListStatus::Released,
            PaymentListStatus::Closed,
            PaymentListStatus::Cancelled,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// A row's recorded outcome, in minor units.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowOutcomeState {
    pub status: DeliveryStatus,
    /// Local currency minor units.
    pub delivered_minor: i64,
    pub delivered_on: NaiveDate,
    pub provider_transaction_id: String,
    /// Programme currency minor units charged (zero when failed).
    pub charged_minor: i64,
}

/// One row as the decision knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRowState {
    pub row: u32,
    pub beneficiary_ref: BeneficiaryRef,
    /// Programme currency minor units.
    pub amount_minor: i64,
    /// Local currency minor units.
    pub paid_minor: i64,
    pub paid_currency: Currency,
    pub method: PaymentMethod,
    pub reference: Option<String>,
    pub outcome: Option<RowOutcomeState>,
}

/// One payment list as the decision knows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentListState {
    pub line: BudgetLineKey,
    pub currency: Currency,
    pub status: PaymentListStatus,
    pub imported_by: String,
    pub content_hash: String,
    pub approvals_required: u32,
    /// Who approved, in order.
    pub approvals: Vec<String>,
    /// In row order.
    pub rows: Vec<ListRowState>,
    /// Row index by payment reference (once released).
    pub by_reference: HashMap<String, usize>,
    /// Minor units still held.
    pub held: i64,
}

impl PaymentListState {
    /// Whether every row has an outcome.
    pub fn all_rows_have_outcomes(&self) -> bool {
        self.rows.iter().all(|row| row.outcome.is_some())
    }

    /// Folds in an event of this list (not its import).
    pub fn apply(&mut self, event: &PaymentListEvent) {
        match event {
            PaymentListEvent::Imported(_) => unreachable!("an import creates the list"),
            PaymentListEvent::Approved(approved) => {
                self.approvals.push(approved.approved_by.clone());
                if approved.approval >= approved.approvals_required {
                    self.status = PaymentListStatus::Approved;
                }
            }
            PaymentListEvent::Released(released) => {
                let index_of: HashMap<u32, usize> = self.rows.iter().enumerate().map(|(index, row)| (row.row, index)).collect();
                for reference in &released.references {
                    let index = index_of[&reference.row];
                    self.rows[index].reference = Some(reference.reference.clone());
                    self.by_reference.insert(reference.reference.clone(), index);
                }
                self.status = PaymentListStatus::Released;
            }
            PaymentListEvent::Confirmed(confirmed) => {
                for outcome in &confirmed.outcomes {
                    let index = self.by_reference[&outcome.reference];
                    let row = &mut self.rows[index];
                    self.held -= row.amount_minor;
                    row.outcome = Some(RowOutcomeState {
                        status: outcome.status,
                        delivered_minor: to_minor_units(outcome.delivered_amount, row.paid_currency),
                        delivered_on: outcome.delivered_on,
                        provider_transaction_id: outcome.provider_transaction_id.clone(),
                        charged_minor: to_minor_units(outcome.charged, self.currency),
                    });
                }
            }
            PaymentListEvent::Cancelled(cancelled) => {
                self.held -= to_minor_units(cancelled.released, self.currency);
                self.status = PaymentListStatus::Cancelled;
            }
            PaymentListEvent::Closed(_) => self.status = PaymentListStatus::Closed,
        }
    }
}
