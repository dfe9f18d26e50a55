//! Payment cycles: a list of cash payments imported for one budget line and
//! held on it, approved by others than its importer, released with a
//! payment reference per row, and reconciled from the provider's
//! confirmation file, each row delivered (charged as a cash reinsertion
//! payment), partly delivered (charged at the row's implied rate, the rest
//! released) or failed (released). Pure, like the rest of the domain.

pub mod decide;
pub mod events;
pub mod state;

use chrono::NaiveDate;
use rust_decimal::Decimal;
use serde::Serialize;

pub use events::{
    DeliveryStatus, ListHeader, PaymentListApproved, PaymentListCancelled, PaymentListClosed, PaymentListConfirmed,
    PaymentListEvent, PaymentListImported, PaymentListReleased, PaymentListRow, PaymentReference, ProgrammeApprovalsSet,
    RowOutcome, content_hash,
};
pub use state::{ListRowState, PaymentListState, PaymentListStatus, RowOutcomeState};

/// Most rows one payment list may hold.
pub const PAYMENT_LIST_ROWS_MAX: usize = 50_000;
/// Most approvals a programme may require of a list.
pub const APPROVALS_REQUIRED_MAX: u32 = 10;
/// Approvals a programme requires when it never said.
pub const APPROVALS_REQUIRED_DEFAULT: u32 = 1;
/// Shortest and longest payment reference, in characters.
pub const PAYMENT_REFERENCE_CHARS_MIN: usize = 16;
pub const PAYMENT_REFERENCE_CHARS_MAX: usize = 64;
/// What a payment reference is made of: it must say nothing about the
/// returnee and be hard to guess (the edge draws it at random).
pub const PAYMENT_REFERENCE_PATTERN: &str = "^[A-Za-z0-9_-]{16,64}$";

/// One problem with a row of a file (or with the whole list when `row` is
/// absent), by the caller's row number and the column at fault. Never names
/// a case id.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub row: Option<u32>,
    pub column: &'static str,
    pub message: String,
}

impl Problem {
    pub fn of_row(row: u32, column: &'static str, message: impl Into<String>) -> Self {
        Problem { row: Some(row), column, message: message.into() }
    }

    pub fn of_list(column: &'static str, message: impl Into<String>) -> Self {
        Problem { row: None, column, message: message.into() }
    }
}

/// What the provider reports for one payment reference.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    /// Delivered, `amount` in the row's local currency (less than the
    /// row's paid amount: partly delivered).
    Delivered {
        amount: Decimal,
    },
    Failed,
}

/// One row of a confirmation file, parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    /// The row's number in the confirmation file (the caller's numbering).
    pub line: u32,
    pub reference: String,
    pub delivery: Delivery,
    pub delivered_on: NaiveDate,
    pub provider_transaction_id: String,
}

/// Whether `text` is a well-formed payment reference.
pub fn is_payment_reference(text: &str) -> bool {
    (PAYMENT_REFERENCE_CHARS_MIN..=PAYMENT_REFERENCE_CHARS_MAX).contains(&text.len())
        && text.bytes().all(|byte| byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_')
}
