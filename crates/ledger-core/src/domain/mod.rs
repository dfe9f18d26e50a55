//! The pure domain: validated types, the event catalogue, the decision logic
//! and double-entry postings. Imports neither sqlx nor tokio.

pub mod decide;
pub mod error;
pub mod events;
pub mod payment_lists;
pub mod postings;
pub mod state;
pub mod types;

pub use decide::{Command, Decision, Recipient, ReversalTarget, decide, decide_events};
pub use error::{DomainError, ErrorKind};
pub use events::{EventBody, MoneyEntry};
pub use state::{BudgetLine, BudgetLineKey, FinalPaymentLists, Funding, ProgrammeTotals, State, Total, TotalChange};
pub use types::{BeneficiaryRef, CountryCode, Currency, DonorCode, Money, ProgrammeCode, Seq};

#[cfg(test)]
mod tests;
