//! A payment list as the finance team sends it: a CSV file (a header row
//! naming the columns `case_id, amount, paid_amount, paid_currency, method`
//! and optionally `row_reference`, in any order) or the same rows as JSON
//! (`{"rows": [{"case_id": .., ..}]}`). Every row is checked, and each
//! becomes a [`ListRow`] (its case id replaced by the pseudonym) or
//! problems by row and column; a list with any problem is refused whole.

use std::collections::HashMap;

use ledger_core::domain::payment_lists::PaymentListRow;
use ledger_core::domain::types::PaymentMethod;
use ledger_core::domain::{BeneficiaryRef, Currency, DomainError, Money};
use ledger_core::keys::KeyRing;
use serde_json::Value;

use super::cells;
use super::report::{Report, RowProblem};
use super::table::{self, ColumnSpec, FileError};

/// Most rows a list may have: a cycle pays tens of thousands of returnees.
pub const PAYMENT_LIST_ROWS_MAX: usize = 50_000;
/// Largest payment list body, CSV or JSON, in bytes: room for
/// [`PAYMENT_LIST_ROWS_MAX`] rows of about 300 bytes each.
pub const PAYMENT_LIST_BODY_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Longest `row_reference`, in characters.
pub const ROW_REFERENCE_CHARS_MAX: usize = 64;

/// The columns of a payment list, in the order a template writes them.
pub const LIST_COLUMNS: [ColumnSpec; 6] = [
    ColumnSpec { name: "case_id", required: true },
    ColumnSpec { name: "amount", required: true },
    ColumnSpec { name: "paid_amount", required: true },
    ColumnSpec { name: "paid_currency", required: true },
    ColumnSpec { name: "method", required: true },
    ColumnSpec { name: "row_reference", required: false },
];

/// One checked row of a payment list. No raw case id: its pseudonym.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ListRow {
    /// 1 is the first row under the header (or the first of the JSON rows).
    pub row: u32,
    /// The line of the file it starts on (none for JSON).
    pub line: Option<u64>,
    pub beneficiary: BeneficiaryRef,
    /// Charged to the budget line, in the programme's currency.
    pub amount: Money,
    /// What the returnee is to receive, in local currency.
    pub paid: Money,
    pub method: PaymentMethod,
    /// The implementer's own reference for the row (never personal data).
    pub row_reference: Option<String>,
}

impl ListRow {
    /// The row as the domain takes it.
    pub fn to_domain(&self) -> PaymentListRow {
        PaymentListRow {
            row: self.row,
            beneficiary_ref: self.beneficiary.clone(),
            amount: self.amount.amount,
            paid_amount: self.paid.amount,
            paid_currency: self.paid.currency,
            method: self.method,
            row_reference: self.row_reference.clone(),
        }
    }
}

/// The line of the file each row starts on, by row number.
pub fn lines(rows: &[ListRow]) -> HashMap<u32, u64> {
    rows.iter().filter_map(|row| row.line.map(|line| (row.row, line))).collect()
}

/// A row's cells before they are checked, in the order of [`LIST_COLUMNS`].
struct RawRow<'a> {
    row: u32,
    line: Option<u64>,
    cells: [Option<&'a str>; 6],
    /// Columns already reported (a JSON field of the wrong type).
    reported: [bool; 6],
}

/// Reads a CSV payment list: a malformed file is a [`FileError`]; a
/// well-formed one gives its rows, or the report of its problems.
pub fn rows_from_csv(
    bytes: &[u8],
    keys: &KeyRing,
    programme_currency: Currency,
) -> Result<Result<Vec<ListRow>, Report>, FileError> {
    rows_from_csv_with_progress(bytes, keys, programme_currency, |_, _| {})
}

/// Rows checked between two calls of `progress`.
const PROGRESS_ROWS: usize = 1_000;

/// As [`rows_from_csv`], calling `progress(rows checked, rows)` as it goes.
pub fn rows_from_csv_with_progress(
    bytes: &[u8],
    keys: &KeyRing,
    programme_currency: Currency,
    mut progress: impl FnMut(u64, u64),
) -> Result<Result<Vec<ListRow>, Report>, FileError> {
    let records = table::read(bytes, &LIST_COLUMNS, PAYMENT_LIST_ROWS_MAX)?;
    let total = records.len() as u64;
    let raws = records.iter().enumerate().map(|(index, record)| {
        if index % PROGRESS_ROWS == 0 {
            progress(index as u64, total);
        }
        RawRow {
            row: record.row,
            line: Some(record.line),
            cells: std::array::from_fn(|index| record.cell(index)),
            reported: [false; 6],
        }
    });
    let checked = check_rows(raws, keys, programme_currency, Vec::new());
    progress(total, total);
    Ok(checked)
}

/// Reads a JSON payment list, `{"rows": [..]}`: each row an object of
/// strings named as the CSV columns. A body of another shape is an `Err`
/// saying so; a field of the wrong type or name is a problem of its row.
pub fn rows_from_json(
    body: &Value,
    keys: &KeyRing,
    programme_currency: Currency,
) -> Result<Result<Vec<ListRow>, Report>, String> {
    let object = body.as_object().filter(|object| object.len() == 1);
    let Some(rows) = object.and_then(|object| object.get("rows")).and_then(Value::as_array) else {
        return Err(
            "the body must be {\"rows\": [..]}: one object per payment, with the fields named as the CSV columns".to_string()
        );
    };
    if rows.is_empty() {
        return Err("rows is empty; send one row per payment".to_string());
    }
    if rows.len() > PAYMENT_LIST_ROWS_MAX {
        return Err(format!("rows has more than {PAYMENT_LIST_ROWS_MAX} rows; split it into several lists"));
    }
    let mut shape_problems = Vec::new();
    let mut raws = Vec::with_capacity(rows.len());
    for (index, value) in rows.iter().enumerate() {
        let row = u32::try_from(index + 1).expect("rows are bounded by PAYMENT_LIST_ROWS_MAX");
        let (cells, reported) = json_cells(row, value, &mut shape_problems);
        raws.push(RawRow { row, line: None, cells, reported });
    }
    Ok(check_rows(raws.into_iter(), keys, programme_currency, shape_problems))
}

type JsonCells<'a> = ([Option<&'a str>; 6], [bool; 6]);

fn json_cells<'a>(row: u32, value: &'a Value, problems: &mut Vec<RowProblem>) -> JsonCells<'a> {
    let (mut cells, mut reported) = ([None; 6], [false; 6]);
    let Some(object) = value.as_object() else {
        problems.push(RowProblem::at(row, None, "row", "must be an object of the columns' names and values"));
        return (cells, [true; 6]);
    };
    for (name, field) in object {
        let Some(index) = LIST_COLUMNS.iter().position(|spec| spec.name == name) else {
            let names: Vec<&str> = LIST_COLUMNS.iter().map(|spec| spec.name).collect();
            problems.push(RowProblem::at(row, None, "row", format!("has a field that is none of {}", names.join(", "))));
            continue;
        };
        match field {
            Value::String(text) => cells[index] = Some(text.as_str()).filter(|text| !text.is_empty()),
            Value::Null if !LIST_COLUMNS[index].required => {}
            _ => {
                problems.push(RowProblem::at(row, None, LIST_COLUMNS[index].name, "must be a string"));
                reported[index] = true;
            }
        }
    }
    (cells, reported)
}

fn check_rows<'a>(
    raws: impl Iterator<Item = RawRow<'a>>,
    keys: &KeyRing,
    programme_currency: Currency,
    mut problems: Vec<RowProblem>,
) -> Result<Vec<ListRow>, Report> {
    let mut rows = Vec::new();
    let mut first_row_of: HashMap<BeneficiaryRef, u32> = HashMap::new();
    for raw in raws {
        let reported = problems.len();
        let checked = check_row(&raw, keys, programme_currency, &mut problems);
        // A case id that repeats is reported even if the row has other problems.
        if let Some(beneficiary) = checked.beneficiary {
            if let Some(first) = first_row_of.get(&beneficiary) {
                let message = format!("the same returnee as row {first}: a list pays each returnee once");
                problems.push(RowProblem::at(raw.row, raw.line, "case_id", message));
            } else {
                first_row_of.insert(beneficiary.clone(), raw.row);
            }
            if let (Some(amount), Some(paid), Some(method), true) =
                (checked.amount, checked.paid, checked.method, problems.len() == reported)
            {
                rows.push(ListRow {
                    row: raw.row,
                    line: raw.line,
                    beneficiary,
                    amount,
                    paid,
                    method,
                    row_reference: checked.row_reference,
                });
            }
        }
    }
    if problems.is_empty() {
        return Ok(rows);
    }
    problems.sort_by_key(|problem| problem.row);
    Err(Report { errors: problems, warnings: Vec::new() })
}

/// What one row's cells gave; `None` where a cell was refused.
struct CheckedCells {
    beneficiary: Option<BeneficiaryRef>,
    amount: Option<Money>,
    paid: Option<Money>,
    method: Option<PaymentMethod>,
    row_reference: Option<String>,
}

fn check_row(raw: &RawRow<'_>, keys: &KeyRing, programme_currency: Currency, problems: &mut Vec<RowProblem>) -> CheckedCells {
    let [case_id, amount, paid_amount, paid_currency, method, row_reference] = raw.cells;
    let beneficiary = cells::required(case_id, "the implementer's case number").and_then(|text| {
        keys.pseudonymise(text).map_err(|error| match error {
            DomainError::Invalid { message, .. } => message,
            other => other.to_string(),
        })
    });
    let beneficiary = kept(raw, problems, "case_id", beneficiary);
    let what = format!("the amount charged to the budget line, in {programme_currency}");
    let amount =
        kept(raw, problems, "amount", cells::required(amount, &what).and_then(|text| cells::money(text, programme_currency)));
    let currency = cells::required(paid_currency, "the local currency paid").and_then(cells::currency);
    let currency = kept(raw, problems, "paid_currency", currency);
    let paid = match (cells::required(paid_amount, "what the returnee is to receive, in the local currency"), currency) {
        (Ok(text), Some(currency)) => kept(raw, problems, "paid_amount", cells::money(text, currency)),
        (Ok(_), None) => None,
        (Err(message), _) => kept(raw, problems, "paid_amount", Err::<Money, _>(message)),
    };
    let method = kept(raw, problems, "method", cells::required(method, "the payment method").and_then(cells::method));
    let row_reference =
        row_reference.and_then(|text| kept(raw, problems, "row_reference", cells::free_text(text, ROW_REFERENCE_CHARS_MAX)));
    CheckedCells { beneficiary, amount, paid, method, row_reference }
}

/// The value of a cell, or `None` with its problem reported (once: a JSON
/// field of the wrong type was reported already).
fn kept<T>(raw: &RawRow<'_>, problems: &mut Vec<RowProblem>, column: &str, result: Result<T, String>) -> Option<T> {
    let already = LIST_COLUMNS.iter().zip(raw.reported).any(|(spec, reported)| reported && spec.name == column);
    match result {
        Ok(value) => Some(value),
        Err(_) if already => None,
        Err(message) => {
            problems.push(RowProblem::at(raw.row, raw.line, column, message));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> KeyRing {
        ledger_test_support::test_keys()
    }

    fn eur() -> Currency {
        Currency::parse("EUR").unwrap()
    }

    fn problems(text: &str) -> Vec<(Option<u32>, Option<u64>, String)> {
        let report = rows_from_csv(text.as_bytes(), &keys(), eur()).unwrap().unwrap_err();
        assert!(report.warnings.is_empty());
        report.errors.into_iter().map(|problem| (problem.row, problem.line, problem.column.unwrap_or_default())).collect()
    }

    #[test]
    fn a_valid_list_gives_one_row_per_payment_with_pseudonyms_and_exact_amounts() {
        let text = "case_id,amount,paid_amount,paid_currency,method,row_reference\n\
                    MA-2024-0001,350.5,3815,MAD,mobile_money,batch 7/1\n\
                    ma-2024-0002,120,1200.000,TND,cash_in_hand,\n";
        let rows = rows_from_csv(text.as_bytes(), &keys(), eur()).unwrap().unwrap();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].beneficiary, keys().pseudonymise("MA-2024-0001").unwrap());
        assert_eq!((rows[0].amount.amount.to_string(), rows[0].paid.amount.to_string()), ("350.50".into(), "3815.00".into()));
        assert_eq!(rows[0].row_reference.as_deref(), Some("batch 7/1"));
        assert_eq!((rows[1].row, rows[1].paid.currency.code(), rows[1].method), (2, "TND", PaymentMethod::CashInHand));
        assert_eq!(rows[1].row_reference, None);
    }

    #[test]
    fn every_row_problem_is_reported_by_row_line_and_column() {
        let text = "method,case_id,amount,paid_amount,paid_currency\n\
                    mobile_money,MA-1,350.00,3815.00,MAD\n\
                    cheque,MA-2,0,3815.001,MAD\n\
                    bank_transfer,,12.345,10,mad\n\
                    cash_in_hand, ma-1,10,10,XOF\n\
                    cash_in_hand,MA-3$,,,\n";
        assert_eq!(
            problems(text),
            vec![
                (Some(2), Some(3), "amount".to_string()),
                (Some(2), Some(3), "paid_amount".to_string()),
                (Some(2), Some(3), "method".to_string()),
                (Some(3), Some(4), "case_id".to_string()),
                (Some(3), Some(4), "amount".to_string()),
                (Some(3), Some(4), "paid_currency".to_string()),
                (Some(4), Some(5), "case_id".to_string()),
                (Some(5), Some(6), "case_id".to_string()),
                (Some(5), Some(6), "amount".to_string()),
                (Some(5), Some(6), "paid_currency".to_string()),
                (Some(5), Some(6), "paid_amount".to_string()),
            ]
        );
    }

    #[test]
    fn the_same_returnee_twice_is_named_by_its_first_row_and_never_by_case_id() {
        let text = "case_id,amount,paid_amount,paid_currency,method\n\
                    MA-SECRET-9,10,10,MAD,cash_in_hand\n\
                    ma-secret-9 ,10,10,MAD,cash_in_hand\n";
        let report = rows_from_csv(text.as_bytes(), &keys(), eur()).unwrap().unwrap_err();
        assert_eq!(report.errors.len(), 1);
        assert_eq!(report.errors[0].message, "the same returnee as row 1: a list pays each returnee once");
        assert_eq!(report.errors[0].row, Some(2));
        let bad =
            "case_id,amount,paid_amount,paid_currency,method\nMA-SECRET-9$,MA-SECRET-9,MA-SECRET-9,MA-SECRET-9,MA-SECRET-9\n";
        let report = rows_from_csv(bad.as_bytes(), &keys(), eur()).unwrap().unwrap_err();
        assert_eq!(report.errors.len(), 4, "paid_amount waits for a valid paid_currency");
        for problem in report.errors {
            assert!(!problem.message.to_uppercase().contains("SECRET"), "{}", problem.message);
        }
    }

    #[test]
    fn a_json_list_is_checked_as_the_csv_is_with_its_shape_problems_by_row() {
        let body = serde_json::json!({"rows": [
            {"case_id": "MA-1", "amount": "10", "paid_amount": "100", "paid_currency": "MAD", "method": "mobile_money", "row_reference": null},
            {"case_id": "MA-2", "amount": 10, "paid_amount": "100", "paid_currency": "MAD", "method": "mobile_money", "colour": "x"},
        ]});
        let report = rows_from_json(&body, &keys(), eur()).unwrap().unwrap_err();
        let columns: Vec<_> = report.errors.iter().map(|problem| (problem.row, problem.column.clone().unwrap())).collect();
        assert_eq!(columns, vec![(Some(2), "amount".to_string()), (Some(2), "row".to_string())]);
        assert_eq!(report.errors[0].message, "must be a string");
        let good = serde_json::json!({"rows": [
            {"case_id": "MA-1", "amount": "10", "paid_amount": "100", "paid_currency": "MAD", "method": "mobile_money"},
        ]});
        assert_eq!(rows_from_json(&good, &keys(), eur()).unwrap().unwrap()[0].beneficiary, keys().pseudonymise("MA-1").unwrap());
        for shape in [serde_json::json!([]), serde_json::json!({"rows": []}), serde_json::json!({"rows": [], "x": 1})] {
            assert!(rows_from_json(&shape, &keys(), eur()).is_err(), "{shape}");
        }
    }
}
