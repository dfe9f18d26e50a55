//! CSV files read strictly (RFC 4180): UTF-8 (a byte order mark is fine),
//! comma-separated, a header row naming the columns, each record with as
//! many cells as the header. A cell holding a comma, a quote or a line
//! break is quoted whole, its quotes written twice; anything else is
//! refused with the line it is on, never guessed at. Empty lines are
//! skipped. No message repeats what a cell holds: a cell may be a case id.

use std::fmt;

/// A column a file may have.
#[derive(Clone, Copy, Debug)]
pub struct ColumnSpec {
    pub name: &'static str,
    pub required: bool,
}

/// A record of the file: its number (1 is the first record under the
/// header), the line of the file it starts on (the header is line 1), and
/// its cells in the order of the [`ColumnSpec`]s (`None` for an optional
/// column the header does not name).
#[derive(Debug)]
pub struct Record {
    pub row: u32,
    pub line: u64,
    pub cells: Vec<Option<String>>,
}

impl Record {
    /// The cell of column `index` of the specs; an empty cell is `None`.
    pub fn cell(&self, index: usize) -> Option<&str> {
        self.cells.get(index).and_then(Option::as_deref).filter(|text| !text.is_empty())
    }
}

/// Why a file as a whole was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum FileError {
    NotUtf8 { line: u64 },
    Empty,
    NoRows,
    TooManyRows { rows_max: usize },
    SemicolonSeparated,
    MissingColumn { name: &'static str, expected: String },
    UnknownColumn { position: usize, expected: String },
    DuplicateColumn { name: &'static str },
    BadQuoting { line: u64, reason: &'static str },
    WrongCellCount { row: u32, line: u64, found: usize, expected: usize },
}

impl fmt::Display for FileError {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FileError::NotUtf8 { line } => {
                write!(formatter, "the file is not UTF-8 text (line {line}); save it as \"CSV UTF-8\"")
            }
            FileError::Empty => write!(formatter, "the file is empty; send a header row and one row per payment"),
            FileError::NoRows => write!(formatter, "the file has a header but no rows; send one row per payment"),
            FileError::TooManyRows { rows_max } => {
                write!(formatter, "the file has more than {rows_max} rows; split it into several lists")
            }
            FileError::SemicolonSeparated => {
                write!(formatter, "the header is separated by semicolons; save the file as CSV with commas between the cells")
            }
            FileError::MissingColumn { name, expected } => {
                write!(formatter, "the header has no column {name}; the first row must name the columns {expected}")
            }
            FileError::UnknownColumn { position, expected } => {
                write!(formatter, "column {position} of the header is not one of {expected}; remove it or name it as one of them")
            }
            FileError::DuplicateColumn { name } => write!(formatter, "the header names the column {name} twice; keep one"),
            FileError::BadQuoting { line, reason } => write!(formatter, "line {line}: {reason}"),
            FileError::WrongCellCount { row, line, found, expected } => write!(
                formatter,
                "row {row} (line {line}) has {found} cells and the header {expected}; every row has one cell per column"
            ),
        }
    }
}

/// Reads `bytes` as a CSV file with the columns `specs` (in any order,
/// each named exactly once, optional ones may be left out), at most
/// `rows_max` records under the header.
pub fn read(bytes: &[u8], specs: &[ColumnSpec], rows_max: usize) -> Result<Vec<Record>, FileError> {
    let text = std::str::from_utf8(bytes).map_err(|error| FileError::NotUtf8 { line: line_of(bytes, error.valid_up_to()) })?;
    let text = text.strip_prefix('\u{FEFF}').unwrap_or(text);
    let mut records = split_records(text, rows_max.saturating_add(1))?.into_iter();
    let (_, header) = records.next().ok_or(FileError::Empty)?;
    let positions = column_positions(&header, specs)?;
    let mut read = Vec::with_capacity(records.len());
    for (index, (line, cells)) in records.enumerate() {
        let row = u32::try_from(index + 1).map_err(|_| FileError::TooManyRows { rows_max })?;
        if cells.len() != header.len() {
            return Err(FileError::WrongCellCount { row, line, found: cells.len(), expected: header.len() });
        }
        let mut cells: Vec<Option<String>> = cells.into_iter().map(Some).collect();
        let ordered = positions.iter().map(|position| position.and_then(|at| cells[at].take())).collect();
        read.push(Record { row, line, cells: ordered });
    }
    if read.is_empty() {
        return Err(FileError::NoRows);
    }
    Ok(read)
}

fn line_of(bytes: &[u8], offset: usize) -> u64 {
    1 + bytes[..offset].iter().filter(|byte| **byte == b'\n').count() as u64
}

fn expected_columns(specs: &[ColumnSpec]) -> String {
    let names: Vec<String> = specs
        .iter()
        .map(|spec| if spec.required { spec.name.to_string() } else { format!("{} (optional)", spec.name) })
        .collect();
    names.join(", ")
}

/// Where each spec's column is in the header.
fn column_positions(header: &[String], specs: &[ColumnSpec]) -> Result<Vec<Option<usize>>, FileError> {
    let expected = expected_columns(specs);
    if header.len() == 1 && header[0].contains(';') {
        return Err(FileError::SemicolonSeparated);
    }
    let mut positions = vec![None; specs.len()];
    for (position, name) in header.iter().enumerate() {
        let Some(index) = specs.iter().position(|spec| spec.name == name) else {
            return Err(FileError::UnknownColumn { position: position + 1, expected });
        };
        if positions[index].replace(position).is_some() {
            return Err(FileError::DuplicateColumn { name: specs[index].name });
        }
    }
    for (spec, position) in specs.iter().zip(&positions) {
        if spec.required && position.is_none() {
            return Err(FileError::MissingColumn { name: spec.name, expected });
        }
    }
    Ok(positions)
}

/// Splits the text into records of cells, each with the line it starts
/// on; at most `records_max` records (more is `TooManyRows`).
fn split_records(text: &str, records_max: usize) -> Result<Vec<(u64, Vec<String>)>, FileError> {
    let mut records = Vec::new();
    let mut chars = text.chars().peekable();
    let mut line: u64 = 1;
    while chars.peek().is_some() {
        let record_line = line;
        let mut cells = Vec::new();
        let mut first_quoted = false;
        loop {
            let (cell, quoted) = read_cell(&mut chars, &mut line)?;
            first_quoted |= quoted && cells.is_empty();
            cells.push(cell);
            match chars.next() {
                Some(',') => continue,
                Some('\r') if chars.peek() == Some(&'\n') => {
                    chars.next();
                }
                Some('\r') => {
                    return Err(FileError::BadQuoting {
                        line,
                        reason: "a carriage return outside quotes must be followed by a line feed",
                    });
                }
                Some('\n') | None => {}
                Some(_) => unreachable!("a cell ends only at a comma, a line break or the end"),
            }
            line += 1;
            break;
        }
        let blank = cells.len() == 1 && cells[0].is_empty() && !first_quoted;
        if !blank {
            if records.len() == records_max {
                return Err(FileError::TooManyRows { rows_max: records_max.saturating_sub(1) });
            }
            records.push((record_line, cells));
        }
    }
    Ok(records)
}

/// Reads one cell, up to (not including) the comma or line break after it.
fn read_cell(chars: &mut std::iter::Peekable<std::str::Chars<'_>>, line: &mut u64) -> Result<(String, bool), FileError> {
    let mut cell = String::new();
    if chars.peek() != Some(&'"') {
        while let Some(&character) = chars.peek() {
            match character {
                ',' | '\n' | '\r' => break,
                '"' => {
                    return Err(FileError::BadQuoting {
                        line: *line,
                        reason: "a quote inside a cell: quote the whole cell and write the quote twice (\"\")",
                    });
                }
                _ => cell.push(character),
            }
            chars.next();
        }
        return Ok((cell, false));
    }
    chars.next();
    let opened_on = *line;
    loop {
        match chars.next() {
            None => {
                return Err(FileError::BadQuoting { line: opened_on, reason: "a quoted cell that opens here is never closed" });
            }
            Some('"') if chars.peek() == Some(&'"') => {
                chars.next();
                cell.push('"');
            }
            Some('"') => break,
            Some(character) => {
                if character == '\n' {
                    *line += 1;
                }
                cell.push(character);
            }
        }
    }
    match chars.peek() {
        None | Some(',' | '\n' | '\r') => Ok((cell, true)),
        Some(_) => Err(FileError::BadQuoting {
            line: *line,
            reason: "text after the closing quote of a cell: a quoted cell ends at a comma or the end of the line",
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SPECS: [ColumnSpec; 3] = [
        ColumnSpec { name: "a", required: true },
        ColumnSpec { name: "b", required: true },
        ColumnSpec { name: "c", required: false },
    ];

    fn cells(text: &str) -> Result<Vec<Vec<Option<String>>>, FileError> {
        read(text.as_bytes(), &SPECS, 3).map(|records| records.into_iter().map(|record| record.cells).collect())
    }

    fn some(values: &[&str]) -> Vec<Option<String>> {
        values.iter().map(|value| Some(value.to_string())).collect()
    }

    #[test]
    fn columns_are_read_in_any_order_and_an_optional_one_may_be_left_out() {
        assert_eq!(cells("b,a\n2,1\n").unwrap(), vec![vec![Some("1".into()), Some("2".into()), None]]);
        assert_eq!(cells("c,a,b\r\nz,x,y").unwrap(), vec![some(&["x", "y", "z"])]);
    }

    #[test]
    fn a_byte_order_mark_crlf_blank_lines_and_quoted_cells_are_fine() {
        let text = "\u{FEFF}a,b\r\n\"x,1\",\"say \"\"hi\"\"\"\r\n\r\n\"two\nlines\",\"\"\n\n";
        let records = read(text.as_bytes(), &SPECS, 3).unwrap();
        assert_eq!(records[0].cells, vec![Some("x,1".into()), Some("say \"hi\"".into()), None]);
        assert_eq!(records[1].cells, vec![Some("two\nlines".into()), Some(String::new()), None]);
        assert_eq!((records[0].row, records[0].line), (1, 2));
        assert_eq!((records[1].row, records[1].line), (2, 4));
        assert_eq!(records[1].cell(1), None, "an empty cell is no value");
    }

    #[test]
    fn every_malformed_file_is_refused_with_its_own_reason() {
        let refusal = |text: &[u8]| read(text, &SPECS, 3).unwrap_err();
        assert_eq!(refusal(b""), FileError::Empty);
        assert_eq!(refusal(b"\xEF\xBB\xBF\n\n"), FileError::Empty);
        assert_eq!(refusal(b"a,b\n"), FileError::NoRows);
        assert_eq!(refusal(b"a,b\n1,2\n\xff,2\n"), FileError::NotUtf8 { line: 3 });
        assert_eq!(refusal(b"a;b\n1;2\n"), FileError::SemicolonSeparated);
        assert!(matches!(refusal(b"a\n1\n"), FileError::MissingColumn { name: "b", .. }));
        assert!(matches!(refusal(b"a,b,d\n1,2,3\n"), FileError::UnknownColumn { position: 3, .. }));
        assert_eq!(refusal(b"a,b,a\n1,2,3\n"), FileError::DuplicateColumn { name: "a" });
        assert_eq!(refusal(b"a,b\n1,2,3\n"), FileError::WrongCellCount { row: 1, line: 2, found: 3, expected: 2 });
        assert_eq!(refusal(b"a,b\n1,2\n1\n"), FileError::WrongCellCount { row: 2, line: 3, found: 1, expected: 2 });
        assert!(matches!(refusal(b"a,b\n1,x\"y\n"), FileError::BadQuoting { line: 2, .. }));
        assert!(matches!(refusal(b"a,b\n1,\"xy\"z\n"), FileError::BadQuoting { line: 2, .. }));
        assert!(matches!(refusal(b"a,b\n1,2\n1,\"open\n\n"), FileError::BadQuoting { line: 3, .. }));
        assert!(matches!(refusal(b"a,b\r1,2\n"), FileError::BadQuoting { line: 1, .. }));
        assert_eq!(refusal(b"a,b\n1,2\n1,2\n1,2\n1,2\n"), FileError::TooManyRows { rows_max: 3 });
    }

    #[test]
    fn no_refusal_repeats_what_the_file_holds() {
        for text in ["MA-SECRET-1,b\n1,2\n", "a,b,MA-SECRET-1\n1,2,3\n", "a,b\nMA-SECRET-1,\"x\"y\n", "MA-SECRET-1;b\n"] {
            let message = read(text.as_bytes(), &SPECS, 3).unwrap_err().to_string();
            assert!(!message.contains("SECRET"), "{message}");
        }
    }
}
