//! PostgreSQL writes as one statement: every table's rows as a
//! data-modifying `WITH` clause that reads them from one JSON parameter.
//!
//! The text of such a statement depends only on its tables, columns and
//! conflict actions, never on the number of rows: a connection parses and
//! plans it once for each kind of work (cash payments touch the same tables
//! every time), and a whole append costs one round trip.

use sqlx::AnyConnection;

/// Rows to insert into one table, read from a JSON parameter by
/// `json_populate_recordset`, with the table's own column types.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JsonInsert {
    pub table: &'static str,
    pub columns: Vec<&'static str>,
    /// ` ON CONFLICT ...`, or empty for rows that are new.
    pub on_conflict: String,
    /// A JSON array of objects keyed by column name.
    pub rows: String,
}

/// Where a statement's clauses take the chain lock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Lock {
    /// The caller's transaction holds it already.
    Held,
    /// The statement takes it if its count is still the bound `$1` and
    /// every token of the JSON array `$2` is valid (`tokens_valid`); else
    /// the statement writes nothing and returns no row.
    IfCountIs,
}

/// The text of one statement running `inserts`. With `Lock::IfCountIs` it
/// returns the lock's new count (one row) when it wrote; with `Lock::Held`
/// it returns nothing.
pub(crate) fn statement(inserts: &[JsonInsert], lock: Lock) -> String {
    let mut clauses = Vec::with_capacity(inserts.len() + 1);
    let (first_parameter, guard) = match lock {
        Lock::Held => (1, ""),
        Lock::IfCountIs => {
            clauses.push(format!(
                "locked AS (UPDATE chain_lock SET appends = appends + 1 WHERE id = 1 AND appends = $1 AND {} \
                 RETURNING appends)",
                tokens_valid(2)
            ));
            (3, " WHERE EXISTS (SELECT FROM locked)")
        }
    };
    for (index, insert) in inserts.iter().enumerate() {
        let columns = insert.columns.join(", ");
        clauses.push(format!(
            "w{index} AS (INSERT INTO {table} ({columns}) SELECT {columns} \
             FROM json_populate_recordset(NULL::{table}, ${parameter}::json){guard}{on_conflict})",
            table = insert.table,
            parameter = first_parameter + index,
            on_conflict = insert.on_conflict,
        ));
    }
    let result = match lock {
        Lock::Held => "SELECT 1",
        Lock::IfCountIs => "SELECT appends FROM locked",
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

/// Writes `inserts` in one statement, inside the caller's transaction.
pub async fn write(connection: &mut AnyConnection, inserts: &[JsonInsert]) -> Result<(), sqlx::Error> {
    if inserts.is_empty() {
        return Ok(());
    }
    let sql = statement(inserts, Lock::Held);
    let mut query = sqlx::query(&sql);
    for insert in inserts {
        query = query.bind(insert.rows.as_str());
    }
    query.execute(&mut *connection).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn insert(table: &'static str, on_conflict: &str) -> JsonInsert {
        JsonInsert { table, columns: vec!["a", "b"], on_conflict: on_conflict.to_string(), rows: "[]".to_string() }
    }

    #[test]
    fn a_guarded_statement_takes_the_lock_first_and_makes_every_insert_depend_on_it() {
        let sql = statement(&[insert("x", ""), insert("y", " ON CONFLICT (a) DO NOTHING")], Lock::IfCountIs);
        assert!(sql.starts_with("WITH locked AS (UPDATE chain_lock SET appends = appends + 1 WHERE id = 1 AND appends = $1"));
        assert!(sql.contains(&format!("AND appends = $1 AND {} RETURNING appends)", tokens_valid(2))));
        assert!(sql.contains(
            "w0 AS (INSERT INTO x (a, b) SELECT a, b FROM json_populate_recordset(NULL::x, $3::json) WHERE EXISTS (SELECT FROM locked))"
        ));
        assert!(sql.contains(
            "json_populate_recordset(NULL::y, $4::json) WHERE EXISTS (SELECT FROM locked) ON CONFLICT (a) DO NOTHING)"
        ));
        assert!(sql.ends_with("SELECT appends FROM locked"));
    }

    #[test]
    fn the_text_depends_on_the_tables_not_on_the_rows() {
        let mut many = insert("x", "");
        many.rows = r#"[{"a":1,"b":"z"},{"a":2,"b":"w"}]"#.to_string();
        assert_eq!(statement(&[insert("x", "")], Lock::Held), statement(&[many], Lock::Held));
    }
}
