//! The events of a payment list's lifecycle, one per transition, and the
//! list's content hash. Type names and versions are stored with every
//! event: never rename one.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::domain::types::{BeneficiaryRef, CountryCode, Currency, DonorCode, PaymentMethod, ProgrammeCode};

/// One row of a payment list, as imported. Rows never change after import.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListRow {
    /// The row's number in the file it came from (the caller's numbering).
    pub row: u32,
    pub beneficiary_ref: BeneficiaryRef,
    /// Held on the budget line, in the programme's currency.
    pub amount: Decimal,
    /// What the returnee is to receive, in local currency.
    pub paid_amount: Decimal,
    pub paid_currency: Currency,
    pub method: PaymentMethod,
    /// The implementer's own free reference for the row, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row_reference: Option<String>,
}

/// A list imported and its total held on its budget line.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListImported {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub currency: Currency,
    pub planned_on: NaiveDate,
    /// The token name of the finance officer who imported it.
    pub imported_by: String,
    /// Approvals the list needs before release (the programme's number
    /// when the list was imported).
    pub approvals_required: u32,
    /// `content_hash` of the list (hex SHA-256).
    pub content_hash: String,
    /// Sum of the rows' amounts, in the programme's currency: the hold.
    pub total: Decimal,
    pub rows: Vec<PaymentListRow>,
}

/// One approval of a list, naming the content it approves.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListApproved {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub approved_by: String,
    pub content_hash: String,
    /// This approval's number: 1 for the first.
    pub approval: u32,
    pub approvals_required: u32,
}

/// The payment reference issued for one row.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentReference {
    pub row: u32,
    pub reference: String,
}

/// A list released to the payment provider: every row has its reference.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListReleased {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub released_by: String,
    /// One per row, in row order.
    pub references: Vec<PaymentReference>,
}

/// What the provider reported for one row.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeliveryStatus {
    Delivered,
    Failed,
}

impl DeliveryStatus {
    pub fn as_str(&self) -> &'static str {
        match self {
            DeliveryStatus::Delivered => "delivered",
            DeliveryStatus::Failed => "failed",
        }
    }
}

/// The outcome of one row, as recorded.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RowOutcome {
    pub row: u32,
    pub reference: String,
    pub status: DeliveryStatus,
    /// What reached the returnee, in the row's local currency (zero when failed).
    pub delivered_amount: Decimal,
    /// The row's local currency.
    pub delivered_currency: Currency,
    pub delivered_on: NaiveDate,
    pub provider_transaction_id: String,
    /// Charged to the budget line (as a cash reinsertion payment), in the
    /// programme's currency; zero when failed.
    pub charged: Decimal,
    /// Released from the hold back to the budget line's available money:
    /// the row's amount less `charged`.
    pub released: Decimal,
}

/// One part of the provider's confirmation file. The rows' holds are
/// released; the delivered ones are charged by the `cash_reinsertion_paid`
/// events that follow in the same unit (one per delivered row, linked to
/// the list and row).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListConfirmed {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub currency: Currency,
    pub confirmed_by: String,
    pub outcomes: Vec<RowOutcome>,
}

/// A list cancelled: the hold of every row without an outcome is released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListCancelled {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub currency: Currency,
    pub cancelled_by: String,
    pub reason: String,
    /// The rows released, in row order.
    pub rows: Vec<u32>,
    /// Their amounts summed: the hold released.
    pub released: Decimal,
}

/// Every row of a list has an outcome.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentListClosed {
    pub list: Uuid,
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub currency: Currency,
    /// Charged for delivered rows.
    pub delivered: Decimal,
    /// The amounts of failed rows.
    pub failed: Decimal,
    /// Released back without a charge (failed rows and what partly
    /// delivered rows did not use).
    pub released_back: Decimal,
}

/// The number of distinct approvals a programme's lists need from now on.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeApprovalsSet {
    pub programme: ProgrammeCode,
    pub approvals_required: u32,
}

/// A payment list event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PaymentListEvent {
    Imported(PaymentListImported),
    Approved(PaymentListApproved),
    Released(PaymentListReleased),
    Confirmed(PaymentListConfirmed),
    Cancelled(PaymentListCancelled),
    Closed(PaymentListClosed),
}

impl PaymentListEvent {
    pub fn event_type(&self) -> &'static str {
        match self {
            PaymentListEvent::Imported(_) => "payment_list_imported",
            PaymentListEvent::Approved(_) => "payment_list_approved",
            PaymentListEvent::Released(_) => "payment_list_released",
            PaymentListEvent::Confirmed(_) => "payment_list_confirmed",
            PaymentListEvent::Cancelled(_) => "payment_list_cancelled",
            PaymentListEvent::Closed(_) => "payment_list_closed",
        }
    }

    pub fn list(&self) -> Uuid {
        match self {
            PaymentListEvent::Imported(event) => event.list,
            PaymentListEvent::Approved(event) => event.list,
            PaymentListEvent::Released(event) => event.list,
            PaymentListEvent::Confirmed(event) => event.list,
            PaymentListEvent::Cancelled(event) => event.list,
            PaymentListEvent::Closed(event) => event.list,
        }
    }

    pub fn programme(&self) -> &ProgrammeCode {
        match self {
            PaymentListEvent::Imported(event) => &event.programme,
            PaymentListEvent::Approved(event) => &event.programme,
            PaymentListEvent::Released(event) => &event.programme,
            PaymentListEvent::Confirmed(event) => &event.programme,
            PaymentListEvent::Cancelled(event) => &event.programme,
            PaymentListEvent::Closed(event) => &event.programme,
        }
    }

    pub fn payload_json(&self) -> String {
        let result = match self {
            PaymentListEvent::Imported(event) => serde_json::to_string(event),
            PaymentListEvent::Approved(event) => serde_json::to_string(event),
            PaymentListEvent::Released(event) => serde_json::to_string(event),
            PaymentListEvent::Confirmed(event) => serde_json::to_string(event),
            PaymentListEvent::Cancelled(event) => serde_json::to_string(event),
            PaymentListEvent::Closed(event) => serde_json::to_string(event),
        };
        result.expect("event payloads always serialize")
    }
}

/// What a list's content hash covers, besides its rows.
#[derive(Clone, Copy, Debug)]
pub struct ListHeader<'a> {
    pub list: Uuid,
    pub programme: &'a ProgrammeCode,
    pub donor: &'a DonorCode,
    pub country: CountryCode,
    pub currency: Currency,
    pub planned_on: NaiveDate,
}

/// The list's content hash, hex SHA-256 over its canonical encoding
/// (docs/hash-chain.md, "Payment list content hash"): the line
/// `payment-list/v1`, then the list id, programme, donor, country,
/// currency and planned date, each on its own line, then one line per row
/// in the order given: row number, beneficiary ref, amount, paid amount,
/// paid currency, method and row reference (empty when absent), separated
/// by U+0009 (tab). Amounts are written at their currency's scale, as in
/// the event. Every line ends with U+000A. No field can hold a tab or a
/// line break (free text refuses control characters), so the encoding is
/// unambiguous.
pub fn content_hash(header: &ListHeader<'_>, rows: &[PaymentListRow]) -> String {
    let mut hasher = Sha256::new();
    let header_text = format!(
        "payment-list/v1\n{}\n{}\n{}\n{}\n{}\n{}\n",
        header.list, header.programme, header.donor, header.country, header.currency, header.planned_on
    );
    hasher.update(header_text.as_bytes());
    for row in rows {
        let method = serde_json::to_value(row.method).expect("methods serialize");
        let line = format!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}\n",
            row.row,
            row.beneficiary_ref,
            row.amount,
            row.paid_amount,
            row.paid_currency,
            method.as_str().unwrap_or_default(),
            row.row_reference.as_deref().unwrap_or_default()
        );
        hasher.update(line.as_bytes());
    }
    hex::encode(hasher.finalize())
}
