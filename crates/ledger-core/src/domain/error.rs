//! Why the domain refused a command. Every refusal appends nothing.

use chrono::NaiveDate;
use rust_decimal::Decimal;

use uuid::Uuid;

use super::payment_lists::Problem;
use super::types::Seq;

/// A refused command. `kind()` tells the API layer which status it maps to:
/// `Invalid` 400, `Unknown` 404, `Conflict` 409, `MoneyRule` and
/// `Inconsistent` 422. A payment list's problems (`PaymentListInvalid`,
/// `ConfirmationRefused`) carry every problem by row and column.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    #[error("{field}: {message}")]
    Invalid { field: &'static str, message: String },
    /// Each field is of the right form, but together they contradict each
    /// other (an end before the start, a grant to a community at level
    /// individual).
    #[error("{field}: {message}")]
    Inconsistent { field: &'static str, message: String },
    #[error("amount {amount} {currency} must be strictly positive")]
    NotPositive { amount: Decimal, currency: &'static str },
    #[error(
        "amount {amount} has more decimals than {currency} allows ({minor_units}); send it with at most {minor_units} decimals"
    )]
    TooManyDecimals { amount: Decimal, currency: &'static str, minor_units: u32 },
    #[error("amount {amount} {currency} is larger than a single entry may carry")]
    AmountTooLarge { amount: Decimal, currency: &'static str },
    #[error("unknown donor {0}: register it first")]
    UnknownDonor(String),
    #[error("unknown programme {0}: register it first")]
    UnknownProgramme(String),
    #[error("country {country} does not belong to programme {programme}")]
    CountryNotInProgramme { programme: String, country: String },
    #[error("no event with seq {0}")]
    UnknownSeq(Seq),
    #[error("donor {0} is already registered")]
    DonorExists(String),
    #[error("programme {0} is already registered")]
    ProgrammeExists(String),
    #[error("programme {programme} is accounted in {expected}, not {given}")]
    CurrencyMismatch { programme: String, expected: &'static str, given: &'static str },
    #[error(
        "donor {donor} has {available} {currency} of its commitments to {programme} left to allocate; {requested} {currency} requested"
    )]
    OverAllocation { programme: String, donor: String, available: Decimal, requested: Decimal, currency: &'static str },
    #[error("budget line {line} has {available} {currency} available; {requested} {currency} requested")]
    OverSpending { line: String, available: Decimal, requested: Decimal, currency: &'static str },
    #[error(
        "reversing seq {seq} would leave {what} negative: {available} {currency} available, {requested} {currency} to cancel"
    )]
    ReversalWouldGoNegative { seq: Seq, what: String, available: Decimal, requested: Decimal, currency: &'static str },
    #[error("seq {seq} is a {event_type} event, which is not a money event and cannot be reversed")]
    NotReversible { seq: Seq, event_type: String },
    #[error("seq {seq} was already reversed")]
    AlreadyReversed { seq: Seq },
    #[error("{field} {date} is after today, {today} (UTC): nothing may be dated after the day it is recorded")]
    DatedAfterToday { field: &'static str, date: NaiveDate, today: NaiveDate },
    #[error(
        "{field} {date} is outside programme {programme}, which runs from {starts_on} to {ends_on}: date it within the programme"
    )]
    OutsideProgrammeDates { field: &'static str, date: NaiveDate, programme: String, starts_on: NaiveDate, ends_on: NaiveDate },
    #[error("{requested} {currency} would take {total} past the most the ledger can hold, {limit} {currency}")]
    TotalPastLimit { total: String, requested: Decimal, limit: Decimal, currency: &'static str },
    /// A payment list with problems, every one by row and column; nothing
    /// is held.
    #[error("the payment list is refused, with {} problem(s): fix every row named and send the whole list again", problems.len())]
    PaymentListInvalid { problems: Vec<Problem> },
    #[error("unknown payment list {0}")]
    UnknownPaymentList(Uuid),
    #[error("payment list {0} already exists: choose a new id")]
    PaymentListExists(Uuid),
    /// The list is not in a status that allows the action (`action` is a
    /// past participle: "approved", "released", "confirmed", "cancelled").
    #[error("payment list {list} is {status}: it can no longer be {action}")]
    PaymentListStatus { list: Uuid, status: &'static str, action: &'static str },
    #[error("payment list {list} has content hash {content_hash}: approve the list as it was imported, naming that hash")]
    ContentHashMismatch { list: Uuid, content_hash: String },
    #[error("payment list {list} was imported by you: another finance officer must approve it")]
    SelfApproval { list: Uuid },
    #[error("payment list {list} was already approved by {by}: another finance officer must give the next approval")]
    ApprovedTwice { list: Uuid, by: String },
    #[error("payment list {list} has {approvals} of the {required} approvals it needs: it can be released once approved")]
    ApprovalsMissing { list: Uuid, approvals: usize, required: u32 },
    #[error("payment list {list} is not released yet: confirmations come after release")]
    NotReleased { list: Uuid },
    #[error("a payment reference given is already used in the ledger: draw new references")]
    PaymentReferenceExists,
    /// A confirmation file part refused whole, every problem by row.
    #[error("the confirmation of payment list {list} is refused, with {} problem(s): nothing was recorded; fix every row named and send the file again", problems.len())]
    ConfirmationRefused { list: Uuid, problems: Vec<Problem> },
}

/// The broad class of a refusal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    Invalid,
    Unknown,
    Conflict,
    MoneyRule,
    Inconsistent,
}

impl DomainError {
    pub fn invalid(field: &'static str, message: String) -> Self {
        DomainError::Invalid { field, message }
    }

    pub fn inconsistent(field: &'static str, message: String) -> Self {
        DomainError::Inconsistent { field, message }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::Invalid { .. } => ErrorKind::Invalid,
            DomainError::Inconsistent { .. } => ErrorKind::Inconsistent,
            DomainError::UnknownDonor(_)
            | DomainError::UnknownProgramme(_)
            | DomainError::UnknownSeq(_)
            | DomainError::UnknownPaymentList(_) => ErrorKind::Unknown,
            DomainError::DonorExists(_)
            | DomainError::ProgrammeExists(_)
            | DomainError::PaymentListExists(_)
            | DomainError::PaymentListStatus { .. }
            | DomainError::ContentHashMismatch { .. }
            | DomainError::SelfApproval { .. }
            | DomainError::ApprovedTwice { .. }
            | DomainError::ApprovalsMissing { .. }
            | DomainError::NotReleased { .. }
            | DomainError::PaymentReferenceExists => ErrorKind::Conflict,
            DomainError::PaymentListInvalid { .. } | DomainError::ConfirmationRefused { .. } => ErrorKind::Inconsistent,
            DomainError::NotPositive { .. }
            | DomainError::TooManyDecimals { .. }
            | DomainError::AmountTooLarge { .. }
            | DomainError::CountryNotInProgramme { .. }
            | DomainError::CurrencyMismatch { .. }
            | DomainError::OverAllocation { .. }
            | DomainError::OverSpending { .. }
            | DomainError::ReversalWouldGoNegative { .. }
            | DomainError::NotReversible { .. }
            | DomainError::AlreadyReversed { .. }
            | DomainError::TotalPastLimit { .. }
            | DomainError::DatedAfterToday { .. }
            | DomainError::OutsideProgrammeDates { .. } => ErrorKind::MoneyRule,
        }
    }
}
