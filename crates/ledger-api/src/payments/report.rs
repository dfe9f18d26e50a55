//! The validation report of a payment list or a confirmation file: every
//! problem by row number and column, errors (the file is refused whole) and
//! warnings (it is not). A problem never repeats what a cell holds, so the
//! report names no returnee: rows are named by number.

use std::collections::HashMap;

use serde::Serialize;
use utoipa::ToSchema;

/// One problem of a file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RowProblem {
    /// The record's number: 1 is the first row under the header. Absent
    /// for a problem of the whole list (its total).
    pub row: Option<u32>,
    /// The line of the file the row starts on (the header is line 1), as a
    /// spreadsheet numbers it. Absent for a list sent as JSON.
    pub line: Option<u64>,
    /// The column the problem is in, if one.
    #[schema(example = "amount")]
    pub column: Option<String>,
    #[schema(example = "must be more than zero")]
    pub message: String,
}

impl RowProblem {
    pub fn at(row: u32, line: Option<u64>, column: &str, message: impl Into<String>) -> RowProblem {
        RowProblem { row: Some(row), line, column: Some(column.to_string()), message: message.into() }
    }

    /// A problem of the whole list rather than of one row.
    pub fn of_list(column: Option<&str>, message: impl Into<String>) -> RowProblem {
        RowProblem { row: None, line: None, column: column.map(str::to_string), message: message.into() }
    }
}

/// The problems found, errors and warnings, in row order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Report {
    pub errors: Vec<RowProblem>,
    pub warnings: Vec<RowProblem>,
}

/// The answer refusing a file: a problem+json document (RFC 9457) with the
/// report as extension members.
#[derive(Debug, Serialize, ToSchema)]
pub struct RefusalDocument {
    #[schema(example = "urn:ledger:problem:payment-list-refused")]
    pub r#type: String,
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "2 errors in 2 rows; nothing was recorded and nothing is held")]
    pub detail: String,
    pub errors: Vec<RowProblem>,
    pub warnings: Vec<RowProblem>,
}

/// The header of the report as CSV.
pub const REPORT_CSV_HEADER: [&str; 5] = ["row", "line", "column", "severity", "message"];

impl Report {
    /// The domain's problems with a file, with the line of each row.
    pub fn from_domain(problems: Vec<ledger_core::domain::payment_lists::Problem>, lines: &HashMap<u32, u64>) -> Report {
        let errors = problems
            .into_iter()
            .map(|problem| RowProblem {
                row: problem.row,
                line: problem.row.and_then(|row| lines.get(&row).copied()),
                column: Some(problem.column.to_string()),
                message: problem.message,
            })
            .collect();
        Report { errors, warnings: Vec::new() }
    }

    pub fn is_refused(&self) -> bool {
        !self.errors.is_empty()
    }

    /// "3 errors in 2 rows" (problems of the whole list counted apart).
    pub fn summary(&self) -> String {
        let mut rows: Vec<u32> = self.errors.iter().filter_map(|problem| problem.row).collect();
        rows.sort_unstable();
        rows.dedup();
        let errors = self.errors.len();
        let plural = |count: usize, word: &str| if count == 1 { format!("{count} {word}") } else { format!("{count} {word}s") };
        if rows.is_empty() {
            plural(errors, "error")
        } else {
            format!("{} in {}", plural(errors, "error"), plural(rows.len(), "row"))
        }
    }

    pub fn document(self, kind: &str, title: &str, consequence: &str) -> RefusalDocument {
        RefusalDocument {
            r#type: format!("urn:ledger:problem:{kind}"),
            title: title.to_string(),
            status: 422,
            detail: format!("{}; {consequence}", self.summary()),
            errors: self.errors,
            warnings: self.warnings,
        }
    }

    /// The report as CSV, one line per problem (errors first), to open next
    /// to the file it is about.
    pub fn to_csv(&self) -> String {
        let mut writer = csv::Writer::from_writer(Vec::new());
        let mut write = |record: &[&str]| writer.write_record(record).expect("writing CSV into memory does not fail");
        write(&REPORT_CSV_HEADER);
        let problems =
            self.errors.iter().map(|problem| (problem, "error")).chain(self.warnings.iter().map(|problem| (problem, "warning")));
        for (problem, severity) in problems {
            let row = problem.row.map(|row| row.to_string()).unwrap_or_default();
            let line = problem.line.map(|line| line.to_string()).unwrap_or_default();
            write(&[&row, &line, problem.column.as_deref().unwrap_or_default(), severity, &problem.message]);
        }
        let bytes = writer.into_inner().expect("an in-memory writer flushes");
        String::from_utf8(bytes).expect("the report is built from UTF-8 text")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> Report {
        Report {
            errors: vec![
                RowProblem::at(2, Some(3), "amount", "must be more than zero"),
                RowProblem::at(2, Some(3), "method", "must be one of cash_in_hand, mobile_money, bank_transfer"),
                RowProblem::at(5, Some(6), "case_id", "the same returnee as row 1"),
            ],
            warnings: vec![RowProblem::at(4, Some(5), "case_id", "assisted by programme RADA")],
        }
    }

    #[test]
    fn the_summary_counts_errors_and_the_rows_they_are_in() {
        assert_eq!(report().summary(), "3 errors in 2 rows");
        let list_only = Report { errors: vec![RowProblem::of_list(None, "over the budget line")], warnings: vec![] };
        assert_eq!(list_only.summary(), "1 error");
    }

    #[test]
    fn the_report_as_csv_has_one_line_per_problem_errors_first_quoted_where_needed() {
        let csv = report().to_csv();
        let lines: Vec<&str> = csv.lines().collect();
        assert_eq!(lines[0], "row,line,column,severity,message");
        assert_eq!(lines[1], "2,3,amount,error,must be more than zero");
        assert_eq!(lines[2], "2,3,method,error,\"must be one of cash_in_hand, mobile_money, bank_transfer\"");
        assert_eq!(lines[4], "4,5,case_id,warning,assisted by programme RADA");
        assert_eq!(lines.len(), 5);
    }
}
