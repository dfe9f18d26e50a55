//! PostgreSQL writes as one statement: every table's rows as a
//! data-modifying `WITH` clause that reads them column by column.
//!
//! Each column's values go as one text parameter, joined by `SEPARATOR`,
//! and the statement splits them with `string_to_array` and zips the
//! columns with `unnest`. Splitting on one byte is cheap; reading the same
//! rows from JSON (lexing, unescaping, a key lookup per field) was a third
//! of the statement's time.
//!
//! The text of such a statement depends only on its tables, columns and
//! conflict actions, never on the number of rows: a connection parses and
//! plans it once for each kind of work (cash payments touch the same tables
//! every time), and a whole append costs one round trip.

use std::fmt::Write as _;

use sqlx::AnyConnection;

/// Ends every value of a column parameter. No value written holds it:
/// free text refuses control characters, token names and
/// `Idempotency-Key`s are visible ASCII, and JSON escapes control
/// characters. `Insert::push_row` refuses a value that holds it all the
/// same, rather than write a row split wrongly.
pub const SEPARATOR: char = '\u{1f}';

/// One cell of a row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell<'v> {
    Int(i64),
    Text(&'v str),
}

/// Rows to insert into one table, held column by column.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Insert {
    pub table: &'static str,
    /// ` ON CONFLICT ...`, or empty for rows that are new.
    pub on_conflict: String,
    columns: Vec<Column>,
    rows: usize,
}

#[derive(Clone, Debug, PartialEq, Eq)]
struct Column {
    name: &'static str,
    /// Whether the column holds integers (`bigint`); set by the first row.
    integers: bool,
    /// Every value, each followed by `SEPARATOR`.
    values: String,
}

/// A row `Insert::push_row` cannot write.
#[derive(Debug, thiserror::Error)]
pub enum UnwritableRow {
    #[error("{table}.{column}: a value holds the column separator U+001F")]
    HoldsSeparator { table: &'static str, column: &'static str },
    #[error("{table}.{column}: integers and text in one column")]
    MixedTypes { table: &'static str, column: &'static str },
    #[error("{table}: a row of {cells} cells for {columns} columns")]
    WrongLength { table: &'static str, cells: usize, columns: usize },
}

impl From<UnwritableRow> for sqlx::Error {
    fn from(error: UnwritableRow) -> Self {
        sqlx::Error::Encode(Box::new(error))
    }
}

impl Insert {
    pub fn new(table: &'static str, columns: &[&'static str], on_conflict: String) -> Self {
        let columns = columns.iter().map(|name| Column { name, integers: false, values: String::new() }).collect();
        Insert { table, on_conflict, columns, rows: 0 }
    }

    /// Adds a row, its cells in the order of the columns. Every row must
    /// give each column the same kind of cell as the first row did.
    pub fn push_row<'v>(&mut self, cells: impl IntoIterator<Item = Cell<'v>>) -> Result<(), UnwritableRow> {
        let table = self.table;
        let cells: Vec<Cell<'v>> = cells.into_iter().collect();
        if cells.len() != self.columns.len() {
            return Err(UnwritableRow::WrongLength { table, cells: cells.len(), columns: self.columns.len() });
        }
        for (column, cell) in self.columns.iter().zip(&cells) {
            match cell {
                Cell::Text(text) if text.contains(SEPARATOR) => {
                    return Err(UnwritableRow::HoldsSeparator { table, column: column.name });
                }
                _ if self.rows > 0 && column.integers != matches!(cell, Cell::Int(_)) => {
                    return Err(UnwritableRow::MixedTypes { table, column: column.name });
                }
                _ => {}
            }
        }
        for (column, cell) in self.columns.iter_mut().zip(cells) {
            match cell {
                Cell::Int(number) => {
                    column.integers = true;
                    write!(column.values, "{number}").expect("writing to a String succeeds");
                }
                Cell::Text(text) => column.values.push_str(text),
            }
            column.values.push(SEPARATOR);
        }
        self.rows += 1;
        Ok(())
    }

    pub fn is_empty(&self) -> bool {
        self.rows == 0
    }

    /// The parameters, one per column, in column order.
    pub fn parameters(&self) -> impl Iterator<Item = &str> {
        self.columns.iter().map(|column| column.values.as_str())
    }
}

/// Where a statement's clauses take the chain lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// The caller's transaction holds it already.
    Held,
    /// As `Held`, for the last statement before the append's COMMIT: it
    /// also shortens how long the transaction may then sit idle to
    /// `idle_ms` (`SET LOCAL idle_in_transaction_session_timeout`).
    HeldUntilCommit { idle_ms: u64 },
    /// The statement takes it if its count is still the bound `$1` and
    /// every token of the JSON array `$2` is valid (`tokens_valid`); else
    /// the statement writes nothing and returns no row.
    IfCountIs,
}

/// The text of one statement running `inserts` (those without rows are
/// left out). With `Lock::IfCountIs` it
/// returns the lock's new count (one row) when it wrote; with `Lock::Held`
/// it returns nothing. The parameters after the lock's are those of each
/// insert in turn (`Insert::parameters`).
pub(crate) fn statement(inserts: &[Insert], lock: Lock) -> String {
    let mut clauses = Vec::with_capacity(inserts.len() + 1);
    let (mut parameter, guard) = match lock {
        Lock::Held | Lock::HeldUntilCommit { .. } => (1, ""),
        Lock::IfCountIs => {
            clauses.push(format!(
                "locked AS (UPDATE chain_lock SET appends = appends + 1 WHERE id = 1 AND appends = $1 AND {} \
                 RETURNING appends)",
                tokens_valid(2)
            ));
            (3, " WHERE EXISTS (SELECT FROM locked)")
        }
    };
    for (index, insert) in inserts.iter().filter(|insert| !insert.is_empty()).enumerate() {
        let names: Vec<&str> = insert.columns.iter().map(|column| column.name).collect();
        let names = names.join(", ");
        let arrays: Vec<String> = insert
            .columns
            .iter()
            .map(|column| {
                // The last value's separator leaves an empty element at the
                // end; trimming it keeps a single empty value a row.
                let array = format!("trim_array(string_to_array(${parameter}, chr(31)), 1)");
                parameter += 1;
                if column.integers { format!("CAST({array} AS bigint[])") } else { array }
            })
            .collect();
        clauses.push(format!(
            "w{index} AS (INSERT INTO {table} ({names}) SELECT {names} \
             FROM unnest({arrays}) AS r({names}){guard}{on_conflict})",
            table = insert.table,
            arrays = arrays.join(", "),
            on_conflict = insert.on_conflict,
        ));
    }
    let result = match lock {
        Lock::Held => "SELECT 1".to_string(),
        Lock::HeldUntilCommit { idle_ms } => {
            format!("SELECT 1 FROM (SELECT set_config('idle_in_transaction_session_timeout', '{idle_ms}', true)) AS idle")
        }
        Lock::IfCountIs => "SELECT appends FROM locked".to_string(),
    };
    format!("WITH {} {result}", clauses.join(", "))
}

/// A condition: every token hash of the JSON array parameter `$parameter`
/// (without repeats) is on record and not revoked.
pub(crate) fn tokens_valid(parameter: usize) -> String {
    format!(
        "(SELECT count(*) FROM tokens WHERE revoked_at IS NULL \
         AND token_hash IN (SELECT json_array_elements_text(${parameter}::json))) = json_array_length(${parameter}::json)"
    )
}

/// Binds the parameters of `inserts` in statement order (those without
/// rows are left out, as `statement` leaves them out).
pub(crate) fn bind_all<'q, O>(
    mut query: sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>>,
    inserts: &'q [Insert],
) -> sqlx::query::QueryScalar<'q, sqlx::Any, O, sqlx::any::AnyArguments<'q>> {
    for parameter in inserts.iter().filter(|insert| !insert.is_empty()).flat_map(Insert::parameters) {
        query = query.bind(parameter);
    }
    query
}

/// Writes `inserts` in one statement, inside the caller's transaction.
pub async fn write(connection: &mut AnyConnection, inserts: &[Insert]) -> Result<(), sqlx::Error> {
    write_with(connection, inserts, Lock::Held).await
}

/// As `write`, with the statement's lock clause `lock` (`Held` or
/// `HeldUntilCommit`).
pub(crate) async fn write_with(connection: &mut AnyConnection, inserts: &[Insert], lock: Lock) -> Result<(), sqlx::Error> {
    if inserts.iter().all(Insert::is_empty) {
        return Ok(());
    }
    let sql = statement(inserts, lock);
    let query = bind_all(sqlx::query_scalar::<_, i32>(&sql), inserts);
    query.fetch_optional(&mut *connection).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(table: &'static str, on_conflict: &str) -> Insert {
        let mut insert = Insert::new(table, &["a", "b"], on_conflict.to_string());
        insert.push_row([Cell::Int(1), Cell::Text("z")]).unwrap();
        insert
    }

    #[test]
    fn a_guarded_statement_takes_the_lock_first_and_makes_every_insert_depend_on_it() {
        let sql = statement(&[insert("x", ""), insert("y", " ON CONFLICT (a) DO NOTHING")], Lock::IfCountIs);
        assert!(sql.starts_with("WITH locked AS (UPDATE chain_lock SET appends = appends + 1 WHERE id = 1 AND appends = $1"));
        assert!(sql.contains(&format!("AND appends = $1 AND {} RETURNING appends)", tokens_valid(2))));
        assert!(sql.contains(
            "w0 AS (INSERT INTO x (a, b) SELECT a, b FROM unnest(CAST(trim_array(string_to_array($3, chr(31)), 1) AS bigint[]), \
             trim_array(string_to_array($4, chr(31)), 1)) AS r(a, b) WHERE EXISTS (SELECT FROM locked))"
        ));
        assert!(sql.contains(
            "string_to_array($6, chr(31)), 1)) AS r(a, b) WHERE EXISTS (SELECT FROM locked) ON CONFLICT (a) DO NOTHING)"
        ));
        assert!(sql.ends_with("SELECT appends FROM locked"));
    }

    #[test]
    fn the_last_write_before_a_commit_shortens_the_idle_timeout_in_the_same_statement() {
        let sql = statement(&[insert("x", "")], Lock::HeldUntilCommit { idle_ms: 10_000 });
        assert!(sql.contains("FROM unnest(") && !sql.contains("locked"), "the caller holds the lock: {sql}");
        assert!(
            sql.ends_with("SELECT 1 FROM (SELECT set_config('idle_in_transaction_session_timeout', '10000', true)) AS idle"),
            "{sql}"
        );
    }

    #[test]
    fn the_text_depends_on_the_tables_not_on_the_rows() {
        let mut many = insert("x", "");
        many.push_row([Cell::Int(2), Cell::Text("w")]).unwrap();
        assert_eq!(statement(&[insert("x", "")], Lock::Held), statement(&[many], Lock::Held));
    }

    #[test]
    fn each_column_is_one_parameter_of_its_values_each_ended_by_the_separator() {
        let mut rows = Insert::new("x", &["a", "b"], String::new());
        rows.push_row([Cell::Int(-7), Cell::Text("")]).unwrap();
        rows.push_row([Cell::Int(8), Cell::Text("été, \"quoted\"\n")]).unwrap();
        assert_eq!(rows.parameters().collect::<Vec<_>>(), ["-7\u{1f}8\u{1f}", "\u{1f}été, \"quoted\"\n\u{1f}"]);
    }

    #[test]
    fn a_row_that_would_be_split_wrongly_is_refused() {
        let mut rows = Insert::new("x", &["a", "b"], String::new());
        let refused = rows.push_row([Cell::Int(1), Cell::Text("one\u{1f}two")]);
        assert!(matches!(refused, Err(UnwritableRow::HoldsSeparator { column: "b", .. })), "{refused:?}");
        assert!(matches!(rows.push_row([Cell::Int(1)]), Err(UnwritableRow::WrongLength { cells: 1, .. })));
        let mut rows = Insert::new("x", &["a"], String::new());
        rows.push_row([Cell::Int(1)]).unwrap();
        assert!(matches!(rows.push_row([Cell::Text("1")]), Err(UnwritableRow::MixedTypes { column: "a", .. })));
        assert_eq!(rows.parameters().collect::<Vec<_>>(), ["1\u{1f}"], "a refused row leaves nothing behind");
    }
}
