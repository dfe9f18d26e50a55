//! A statement written as CSV (one tidy table: every figure a row) and as
//! an XLSX workbook (a summary sheet and a by-country sheet, amounts as
//! numbers formatted with the currency's decimals).

use rust_xlsxwriter::{Format, Workbook, XlsxError};

use super::ReportError;
use super::statement::{COUNTRY_COLUMNS, Statement, country_values, format_amount, summary_lines};

/// The media type of an XLSX workbook.
pub const XLSX_CONTENT_TYPE: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";
/// The header of the CSV statement.
pub const CSV_HEADER: [&str; 8] = ["programme", "donor", "currency", "from", "to", "country", "figure", "amount"];

/// The statement as CSV: one row per figure, the summary first (country
/// empty), then each country's detail.
pub fn to_csv(statement: &Statement) -> Result<Vec<u8>, ReportError> {
    let mut writer = csv::Writer::from_writer(Vec::new());
    let write_error = |error: csv::Error| ReportError::Write(error.to_string());
    writer.write_record(CSV_HEADER).map_err(write_error)?;
    let (programme, donor) = (statement.programme.as_str(), statement.donor.as_str());
    let (currency, from, to) = (statement.currency.code(), statement.from.to_string(), statement.to.to_string());
    for (figure, value) in summary_lines(statement) {
        let amount = format_amount(value, statement.currency);
        writer.write_record([programme, donor, currency, &from, &to, "", figure, &amount]).map_err(write_error)?;
    }
    for (country, lines) in &statement.countries {
        for (figure, value) in COUNTRY_COLUMNS.iter().zip(country_values(lines)) {
            let amount = format_amount(value, statement.currency);
            writer.write_record([programme, donor, currency, &from, &to, country, figure, &amount]).map_err(write_error)?;
        }
    }
    writer.into_inner().map_err(|error| ReportError::Write(error.to_string()))
}

/// The number format of amounts in `decimals` decimals: `#,##0.00` for 2.
fn number_format(decimals: u32) -> String {
    match decimals {
        0 => "#,##0".to_string(),
        places => format!("#,##0.{}", "0".repeat(places as usize)),
    }
}

/// A sum of minor units as a spreadsheet number. Spreadsheets hold
/// numbers as binary floating point: exact up to 2^53 minor units
/// (90 trillion EUR), far past any figure of one programme.
fn spreadsheet_number(minor: i128, decimals: u32) -> f64 {
    minor as f64 / 10f64.powi(decimals as i32)
}

/// The statement as an XLSX workbook: sheet "Summary" (the period, then
/// figure and amount per row) and sheet "By country" (a row per country,
/// a column per figure).
pub fn to_xlsx(statement: &Statement) -> Result<Vec<u8>, ReportError> {
    build_xlsx(statement).map_err(|error| ReportError::Write(error.to_string()))
}

fn build_xlsx(statement: &Statement) -> Result<Vec<u8>, XlsxError> {
    let decimals = statement.currency.minor_units();
    let amount = Format::new().set_num_format(number_format(decimals));
    let bold = Format::new().set_bold();
    let mut workbook = Workbook::new();
    let summary = workbook.add_worksheet().set_name("Summary")?;
    let heading = [
        ("programme", statement.programme.as_str().to_string()),
        ("donor", statement.donor.as_str().to_string()),
        ("currency", statement.currency.code().to_string()),
        ("from", statement.from.to_string()),
        ("to", statement.to.to_string()),
    ];
    for (row, (name, value)) in (0u32..).zip(heading) {
        summary.write_string_with_format(row, 0, name, &bold)?;
        summary.write_string(row, 1, value)?;
    }
    let first = 6u32;
    summary.write_string_with_format(first, 0, "figure", &bold)?;
    summary.write_string_with_format(first, 1, "amount", &bold)?;
    for (row, (figure, value)) in (first + 1..).zip(summary_lines(statement)) {
        summary.write_string(row, 0, figure)?;
        summary.write_number_with_format(row, 1, spreadsheet_number(value, decimals), &amount)?;
    }
    summary.set_column_width(0, 30)?;
    summary.set_column_width(1, 20)?;
    let by_country = workbook.add_worksheet().set_name("By country")?;
    by_country.write_string_with_format(0, 0, "country", &bold)?;
    for (column, name) in (1u16..).zip(COUNTRY_COLUMNS) {
        by_country.write_string_with_format(0, column, name, &bold)?;
        by_country.set_column_width(column, 18)?;
    }
    for (row, (country, lines)) in (1u32..).zip(&statement.countries) {
        by_country.write_string(row, 0, country)?;
        for (column, value) in (1u16..).zip(country_values(lines)) {
            by_country.write_number_with_format(row, column, spreadsheet_number(value, decimals), &amount)?;
        }
    }
    workbook.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_are_formatted_with_the_currencys_decimals() {
        assert_eq!(number_format(0), "#,##0");
        assert_eq!(number_format(2), "#,##0.00");
        assert_eq!(number_format(3), "#,##0.000");
        assert_eq!(spreadsheet_number(123_456, 3), 123.456);
        assert_eq!(spreadsheet_number(-35_000, 2), -350.0);
    }
}
