//! The payment provider's confirmation file: a CSV with the columns
//! `reference, status, delivered_amount, delivered_on, provider_txn_id`
//! (any order, read as strictly as a payment list). `status` is
//! `delivered` or `failed`. A delivered row gives the amount delivered in
//! the row's local currency (less than instructed for a partial delivery);
//! a failed row leaves it empty (or 0). Every row gives the day and the
//! provider's transaction id. Each row becomes a [`Confirmation`] or
//! problems by row and column.

use std::collections::HashMap;

use chrono::NaiveDate;
use rust_decimal::Decimal;

use super::cells;
use super::references::PaymentReference;
use super::report::{Report, RowProblem};
use super::table::{self, ColumnSpec, FileError};
use crate::http::input;

/// Most rows a confirmation file may have: a whole list's.
pub const CONFIRMATION_ROWS_MAX: usize = super::list_file::PAYMENT_LIST_ROWS_MAX;
/// Largest confirmation file, in bytes.
pub const CONFIRMATION_BODY_BYTES_MAX: usize = super::list_file::PAYMENT_LIST_BODY_BYTES_MAX;
/// Longest provider transaction id, in characters.
pub const PROVIDER_TXN_ID_CHARS_MAX: usize = 100;

pub const CONFIRMATION_COLUMNS: [ColumnSpec; 5] = [
    ColumnSpec { name: "reference", required: true },
    ColumnSpec { name: "status", required: true },
    ColumnSpec { name: "delivered_amount", required: true },
    ColumnSpec { name: "delivered_on", required: true },
    ColumnSpec { name: "provider_txn_id", required: true },
];

/// What the provider says became of one row: delivered, wholly or in
/// part, with the amount in the row's local currency (its decimals are
/// checked against the row's currency, which only the list knows); or failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Delivery {
    Delivered { amount: Decimal },
    Failed,
}

/// One row of a confirmation file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub row: u32,
    pub line: u64,
    pub reference: PaymentReference,
    pub delivery: Delivery,
    /// The day the money was delivered, or the provider gave up.
    pub delivered_on: NaiveDate,
    pub provider_txn_id: String,
}

/// Reads a confirmation file: a malformed file is a [`FileError`]; a
/// well-formed one gives its rows, or the report of its problems (a
/// reference given twice in one file among them).
pub fn read(bytes: &[u8]) -> Result<Result<Vec<Confirmation>, Report>, FileError> {
    let records = table::read(bytes, &CONFIRMATION_COLUMNS, CONFIRMATION_ROWS_MAX)?;
    let mut problems = Vec::new();
    let mut confirmations = Vec::with_capacity(records.len());
    let mut first_row_of: HashMap<PaymentReference, u32> = HashMap::new();
    for record in &records {
        let reported = problems.len();
        let reference = match record.cell(0) {
            None => Err("is empty: give the payment reference of the instruction file".to_string()),
            Some(text) => PaymentReference::parse(text)
                .ok_or_else(|| "is not a payment reference of the list's instruction file (26 letters and digits)".to_string()),
        };
        let reference = kept(record, &mut problems, "reference", reference);
        let delivery = match delivery(record) {
            Ok(delivery) => Some(delivery),
            Err((column, message)) => kept(record, &mut problems, column, Err(message)),
        };
        let delivered_on = cells::required(record.cell(3), "the day of the delivery (or of the failure)").and_then(cells::day);
        let delivered_on = kept(record, &mut problems, "delivered_on", delivered_on);
        let provider_txn_id = cells::required(record.cell(4), "the provider's transaction id")
            .and_then(|text| cells::free_text(text, PROVIDER_TXN_ID_CHARS_MAX));
        let provider_txn_id = kept(record, &mut problems, "provider_txn_id", provider_txn_id);
        let Some(reference) = reference else { continue };
        if let Some(first) = first_row_of.get(&reference) {
            let message = format!("is given again (first in row {first}): one row per reference");
            problems.push(RowProblem::at(record.row, Some(record.line), "reference", message));
            continue;
        }
        first_row_of.insert(reference.clone(), record.row);
        if let (Some(delivery), Some(delivered_on), Some(provider_txn_id), true) =
            (delivery, delivered_on, provider_txn_id, problems.len() == reported)
        {
            confirmations.push(Confirmation {
                row: record.row,
                line: record.line,
                reference,
                delivery,
                delivered_on,
                provider_txn_id,
            });
        }
    }
    if problems.is_empty() { Ok(Ok(confirmations)) } else { Ok(Err(Report { errors: problems, warnings: Vec::new() })) }
}

/// The value of a cell, or `None` with its problem reported.
fn kept<T>(record: &table::Record, problems: &mut Vec<RowProblem>, column: &str, result: Result<T, String>) -> Option<T> {
    result.map_err(|message| problems.push(RowProblem::at(record.row, Some(record.line), column, message))).ok()
}

/// The status and the amount delivered; a problem names its column.
fn delivery(record: &table::Record) -> Result<Delivery, (&'static str, String)> {
    let zero = |text: &str| input::plain_decimal(text) == Some(Decimal::ZERO);
    match (record.cell(1), record.cell(2)) {
        (Some("delivered"), Some(text)) => input::plain_decimal(text)
            .filter(|amount| *amount > Decimal::ZERO)
            .map(|amount| Delivery::Delivered { amount })
            .ok_or(("delivered_amount", "is not an amount more than zero like 3815.00 (digits, an optional point)".to_string())),
        (Some("delivered"), None) => {
            Err(("delivered_amount", "is empty: give what was delivered, in the row's local currency".to_string()))
        }
        (Some("failed"), amount) if amount.is_none_or(zero) => Ok(Delivery::Failed),
        (Some("failed"), Some(_)) => {
            Err(("delivered_amount", "must be empty or 0 for a failed row; a partial delivery is delivered".to_string()))
        }
        (Some(_), _) => Err(("status", "must be delivered or failed".to_string())),
        (None, _) => Err(("status", "is empty: give delivered or failed".to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "reference,status,delivered_amount,delivered_on,provider_txn_id\n";

    fn reference(bits: u8) -> String {
        format!("{}{}", "0".repeat(25), char::from(b"0123456789"[usize::from(bits)]))
    }

    #[test]
    fn delivered_partly_delivered_and_failed_rows_are_read() {
        let text = format!(
            "{HEADER}{},delivered,3815.00,2025-03-02,MM-1\n{},delivered,1000,2025-03-02,MM-2\n{},failed,,2025-03-02,MM-3\n{},failed,0,2025-03-03,MM-4\n",
            reference(1),
            reference(2),
            reference(3),
            reference(4).to_lowercase()
        );
        let rows = read(text.as_bytes()).unwrap().unwrap();
        assert_eq!(rows.len(), 4);
        let day = NaiveDate::from_ymd_opt(2025, 3, 2).unwrap();
        assert_eq!(rows[0].delivery, Delivery::Delivered { amount: "3815.00".parse().unwrap() });
        assert_eq!((rows[0].delivered_on, rows[0].provider_txn_id.as_str()), (day, "MM-1"));
        assert_eq!(rows[2].delivery, Delivery::Failed);
        assert_eq!(rows[3].reference.as_str(), reference(4));
        assert_eq!((rows[3].row, rows[3].line), (4, 5));
    }

    #[test]
    fn each_row_problem_is_reported_by_row_and_column() {
        let text = format!(
            "{HEADER}{},delivered,,2025-13-01,\n{},failed,12,2025-03-01,X\nnot-a-reference,sent,1,2025-03-01,X\n{},delivered,1,2025-03-01,X\n",
            reference(1),
            reference(2),
            reference(1),
        );
        let report = read(text.as_bytes()).unwrap().unwrap_err();
        let found: Vec<(u32, String)> =
            report.errors.iter().map(|problem| (problem.row.unwrap(), problem.column.clone().unwrap())).collect();
        let expected = [
            (1, "delivered_amount"),
            (1, "delivered_on"),
            (1, "provider_txn_id"),
            (2, "delivered_amount"),
            (3, "reference"),
            (3, "status"),
            (4, "reference"),
        ];
        assert_eq!(found, expected.map(|(row, column)| (row, column.to_string())).to_vec());
        assert!(report.errors[6].message.contains("first in row 1"), "{}", report.errors[6].message);
        assert!(read(b"reference,status\n").is_err(), "a header without the columns is refused");
    }
}
