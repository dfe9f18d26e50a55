//! The event catalogue. Type names and versions are stored with every event:
//! never rename one; add a version and an upcaster in `EventBody::parse`.

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::payment_lists::{PaymentListEvent, ProgrammeApprovalsSet};
use super::types::{BeneficiaryRef, CountryCode, Currency, Dimension, DonorCode, Level, PaymentMethod, ProgrammeCode, Seq};

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DonorRegistered {
    pub code: DonorCode,
    pub name: String,
    pub kind: String,
    /// The donor's IATI organisation identifier, where one was registered.
    /// Absent from the payload when not given, so the payloads (and hashes)
    /// of donors registered before the field existed are unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub iati_identifier: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeRegistered {
    pub code: ProgrammeCode,
    pub name: String,
    pub currency: Currency,
    pub countries: Vec<CountryCode>,
    pub implementer: String,
    pub starts_on: NaiveDate,
    pub ends_on: NaiveDate,
    /// Approvals each payment list of the programme needs, if stated at
    /// registration (otherwise `APPROVALS_REQUIRED_DEFAULT`). Absent from
    /// the payload when not given, so older payloads and hashes are
    /// unchanged.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approvals_required: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingCommitted {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub amount: Decimal,
    pub currency: Currency,
    pub reference: String,
    pub committed_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FundingReceived {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub amount: Decimal,
    pub currency: Currency,
    pub received_on: NaiveDate,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetAllocated {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub amount: Decimal,
    pub currency: Currency,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BudgetReallocated {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub from_country: CountryCode,
    pub to_country: CountryCode,
    pub amount: Decimal,
    pub currency: Currency,
    pub reason: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CashReinsertionPaid {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    pub beneficiary_ref: BeneficiaryRef,
    /// Charged to the budget line, in the programme's currency.
    pub amount: Decimal,
    pub currency: Currency,
    /// What the returnee actually received, in local currency.
    pub paid_amount: Decimal,
    pub paid_currency: Currency,
    /// `paid_amount / amount`, rounded to `RATE_DECIMALS`.
    pub rate: Decimal,
    pub method: PaymentMethod,
    pub paid_on: NaiveDate,
    /// The payment list whose row this payment delivered, if any (absent
    /// from the payload otherwise, so older payloads and hashes are
    /// unchanged). Such a payment is drawn from the list's hold.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_list: Option<uuid::Uuid>,
    /// The row of `payment_list` it delivered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub row: Option<u32>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InKindGrantDelivered {
    pub programme: ProgrammeCode,
    pub donor: DonorCode,
    pub country: CountryCode,
    /// Set for an individual grant, absent for a community or structural one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub beneficiary_ref: Option<BeneficiaryRef>,
    /// Set for a community or structural grant.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub community: Option<String>,
    pub level: Level,
    pub dimension: Dimension,
    pub category: String,
    pub description: String,
    pub amount: Decimal,
    pub currency: Currency,
    pub delivered_on: NaiveDate,
}

/// A money event as embedded, whole, in the reversal that cancels it, so that
/// every projection can be rebuilt from the reversal alone.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "payload", rename_all = "snake_case", deny_unknown_fields)]
pub enum MoneyEntry {
    FundingCommitted(FundingCommitted),
    FundingReceived(FundingReceived),
    BudgetAllocated(BudgetAllocated),
    BudgetReallocated(BudgetReallocated),
    CashReinsertionPaid(CashReinsertionPaid),
    InKindGrantDelivered(InKindGrantDelivered),
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntryReversed {
    pub reversed_seq: Seq,
    pub reason: String,
    pub reversed: MoneyEntry,
}

/// Every kind of event the ledger records.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    DonorRegistered(DonorRegistered),
    ProgrammeRegistered(ProgrammeRegistered),
    Money(MoneyEntry),
    EntryReversed(EntryReversed),
    /// A transition of a payment list's lifecycle.
    PaymentList(PaymentListEvent),
    ProgrammeApprovalsSet(ProgrammeApprovalsSet),
}

/// Decimals kept in the exchange rate implied by a cash payment.
pub const RATE_DECIMALS: u32 = 8;

/// Every event type name the ledger has ever written, with its current version.
pub const EVENT_TYPES: [(&str, u32); 16] = [
    ("donor_registered", 1),
    ("programme_registered", 1),
    ("funding_committed", 1),
    ("funding_received", 1),
    ("budget_allocated", 1),
    ("budget_reallocated", 1),
    ("cash_reinsertion_paid", 1),
    ("in_kind_grant_delivered", 1),
    ("entry_reversed", 1),
    ("payment_list_imported", 1),
    ("payment_list_approved", 1),
    ("payment_list_released", 1),
    ("payment_list_confirmed", 1),
    ("payment_list_cancelled", 1),
    ("payment_list_closed", 1),
    ("programme_approvals_set", 1),
];

#[derive(Debug, thiserror::Error)]
pub enum PayloadError {
    #[error("unknown event type {event_type} version {version}")]
    UnknownType { event_type: String, version: u32 },
    #[error("payload of {event_type} does not parse: {source}")]
    Malformed { event_type: String, source: serde_json::Error },
}

impl MoneyEntry {
    pub fn event_type(&self) -> &'static str {
        match self {
            MoneyEntry::FundingCommitted(_) => "funding_committed",
            MoneyEntry::FundingReceived(_) => "funding_received",
            MoneyEntry::BudgetAllocated(_) => "budget_allocated",
            MoneyEntry::BudgetReallocated(_) => "budget_reallocated",
            MoneyEntry::CashReinsertionPaid(_) => "cash_reinsertion_paid",
            MoneyEntry::InKindGrantDelivered(_) => "in_kind_grant_delivered",
        }
    }

    pub fn programme(&self) -> &ProgrammeCode {
        match self {
            MoneyEntry::FundingCommitted(event) => &event.programme,
            MoneyEntry::FundingReceived(event) => &event.programme,
            MoneyEntry::BudgetAllocated(event) => &event.programme,
            MoneyEntry::BudgetReallocated(event) => &event.programme,
            MoneyEntry::CashReinsertionPaid(event) => &event.programme,
            MoneyEntry::InKindGrantDelivered(event) => &event.programme,
        }
    }

    pub fn donor(&self) -> &DonorCode {
        match self {
            MoneyEntry::FundingCommitted(event) => &event.donor,
            MoneyEntry::FundingReceived(event) => &event.donor,
            MoneyEntry::BudgetAllocated(event) => &event.donor,
            MoneyEntry::BudgetReallocated(event) => &event.donor,
            MoneyEntry::CashReinsertionPaid(event) => &event.donor,
            MoneyEntry::InKindGrantDelivered(event) => &event.donor,
        }
    }

    /// Amount and currency, in the programme's accounting currency.
    pub fn amount(&self) -> (Decimal, Currency) {
        match self {
            MoneyEntry::FundingCommitted(event) => (event.amount, event.currency),
            MoneyEntry::FundingReceived(event) => (event.amount, event.currency),
            MoneyEntry::BudgetAllocated(event) => (event.amount, event.currency),
            MoneyEntry::BudgetReallocated(event) => (event.amount, event.currency),
            MoneyEntry::CashReinsertionPaid(event) => (event.amount, event.currency),
            MoneyEntry::InKindGrantDelivered(event) => (event.amount, event.currency),
        }
    }

    fn payload_json(&self) -> String {
        let result = match self {
            MoneyEntry::FundingCommitted(event) => serde_json::to_string(event),
            MoneyEntry::FundingReceived(event) => serde_json::to_string(event),
            MoneyEntry::BudgetAllocated(event) => serde_json::to_string(event),
            MoneyEntry::BudgetReallocated(event) => serde_json::to_string(event),
            MoneyEntry::CashReinsertionPaid(event) => serde_json::to_string(event),
            MoneyEntry::InKindGrantDelivered(event) => serde_json::to_string(event),
        };
        result.expect("event payloads always serialize")
    }
}

impl EventBody {
    pub fn event_type(&self) -> &'static str {
        match self {
            EventBody::DonorRegistered(_) => "donor_registered",
            EventBody::ProgrammeRegistered(_) => "programme_registered",
            EventBody::Money(entry) => entry.event_type(),
            EventBody::EntryReversed(_) => "entry_reversed",
            EventBody::PaymentList(event) => event.event_type(),
            EventBody::ProgrammeApprovalsSet(_) => "programme_approvals_set",
        }
    }

    pub fn version(&self) -> u32 {
        1
    }

    /// The payload as stored and hashed: JSON, fields in declaration order,
    /// decimals as strings.
    pub fn payload_json(&self) -> String {
        let result = match self {
            EventBody::DonorRegistered(event) => serde_json::to_string(event),
            EventBody::ProgrammeRegistered(event) => serde_json::to_string(event),
            EventBody::Money(entry) => return entry.payload_json(),
            EventBody::EntryReversed(event) => serde_json::to_string(event),
            EventBody::PaymentList(event) => return event.payload_json(),
            EventBody::ProgrammeApprovalsSet(event) => serde_json::to_string(event),
        };
        result.expect("event payloads always serialize")
    }

    /// Reads a stored payload back. This is where upcasters for older
    /// versions go.
    pub fn parse(event_type: &str, version: u32, payload: &str) -> Result<Self, PayloadError> {
        fn read<T: serde::de::DeserializeOwned>(event_type: &str, payload: &str) -> Result<T, PayloadError> {
            serde_json::from_str(payload).map_err(|source| PayloadError::Malformed { event_type: event_type.to_string(), source })
        }
        let body = match (event_type, version) {
            ("donor_registered", 1) => EventBody::DonorRegistered(read(event_type, payload)?),
            ("programme_registered", 1) => EventBody::ProgrammeRegistered(read(event_type, payload)?),
            ("funding_committed", 1) => EventBody::Money(MoneyEntry::FundingCommitted(read(event_type, payload)?)),
            ("funding_received", 1) => EventBody::Money(MoneyEntry::FundingReceived(read(event_type, payload)?)),
            ("budget_allocated", 1) => EventBody::Money(MoneyEntry::BudgetAllocated(read(event_type, payload)?)),
            ("budget_reallocated", 1) => EventBody::Money(MoneyEntry::BudgetReallocated(read(event_type, payload)?)),
            ("cash_reinsertion_paid", 1) => EventBody::Money(MoneyEntry::CashReinsertionPaid(read(event_type, payload)?)),
            ("in_kind_grant_delivered", 1) => EventBody::Money(MoneyEntry::InKindGrantDelivered(read(event_type, payload)?)),
            ("entry_reversed", 1) => EventBody::EntryReversed(read(event_type, payload)?),
            ("payment_list_imported", 1) => EventBody::PaymentList(PaymentListEvent::Imported(read(event_type, payload)?)),
            ("payment_list_approved", 1) => EventBody::PaymentList(PaymentListEvent::Approved(read(event_type, payload)?)),
            ("payment_list_released", 1) => EventBody::PaymentList(PaymentListEvent::Released(read(event_type, payload)?)),
            ("payment_list_confirmed", 1) => EventBody::PaymentList(PaymentListEvent::Confirmed(read(event_type, payload)?)),
            ("payment_list_cancelled", 1) => EventBody::PaymentList(PaymentListEvent::Cancelled(read(event_type, payload)?)),
            ("payment_list_closed", 1) => EventBody::PaymentList(PaymentListEvent::Closed(read(event_type, payload)?)),
            ("programme_approvals_set", 1) => EventBody::ProgrammeApprovalsSet(read(event_type, payload)?),
            _ => return Err(PayloadError::UnknownType { event_type: event_type.to_string(), version }),
        };
        Ok(body)
    }
}
