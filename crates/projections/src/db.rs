//! Writing changes to the projection tables and reading them back, on both
//! backends through sqlx's `Any` driver.

use std::collections::{BTreeMap, BTreeSet};

use ledger_core::domain::state::ProgrammeInfo;
use ledger_core::domain::{BudgetLine, BudgetLineKey, CountryCode, Currency, DonorCode, Funding, ProgrammeCode, State};
use ledger_core::store::{self, Backend};
use sqlx::{AnyConnection, Row};

use crate::rows::{Changes, Merge, REACH, TABLES, Table, TableChanges, Value};

/// Bind parameters per statement, below SQLite's and PostgreSQL's limits.
pub const STATEMENT_PARAMETERS_MAX: usize = 30_000;
/// Rows per multi-row statement.
pub const STATEMENT_ROWS_MAX: usize = 500;

/// Writes `changes` on top of the stored rows: `Add` columns are added to,
/// `Set` columns replaced. Works the same on an empty table (rebuild).
pub async fn write_changes(connection: &mut AnyConnection, mut changes: Changes) -> Result<(), sqlx::Error> {
    write_changes_of(connection, &mut changes).await
}

/// As `write_changes`, leaving the changes with the caller (to free them
/// elsewhere).
pub async fn write_changes_of(connection: &mut AnyConnection, changes: &mut Changes) -> Result<(), sqlx::Error> {
    let before = read_reach(connection, changes).await?;
    changes.add_reach_totals(&before);
    let tables: Vec<(&Table, &TableChanges)> = TABLES
        .iter()
        .filter_map(|table| changes.rows(table).filter(|rows| !rows.is_empty()).map(|rows| (*table, rows)))
        .collect();
    let parameters: usize = tables.iter().map(|(table, rows)| rows.len() * column_count(table)).sum();
    let fits_one_statement =
        parameters <= STATEMENT_PARAMETERS_MAX && tables.iter().all(|(_, rows)| rows.len() <= STATEMENT_ROWS_MAX);
    if store::backend_of(connection) == Backend::Postgres && tables.len() > 1 && fits_one_statement {
        // One round trip instead of one per table: a group commit of a few
        // requests is bound by round trips, not by the rows.
        return upsert_together(connection, &tables).await;
    }
    for (table, rows) in tables {
        upsert(connection, table, rows).await?;
    }
    Ok(())
}

fn column_count(table: &Table) -> usize {
    table.keys.len() + table.values.len()
}

/// Every table's upsert as a data-modifying `WITH` clause of one statement
/// (PostgreSQL). Each table appears once, so no row is changed twice.
async fn upsert_together(connection: &mut AnyConnection, tables: &[(&Table, &TableChanges)]) -> Result<(), sqlx::Error> {
    let mut clauses = Vec::with_capacity(tables.len());
    let mut first_parameter = 1;
    for (index, (table, rows)) in tables.iter().enumerate() {
        clauses.push(format!("t{index} AS ({})", upsert_sql(table, Backend::Postgres, rows.len(), first_parameter)));
        first_parameter += rows.len() * column_count(table);
    }
    let sql = format!("WITH {} SELECT 1", clauses.join(", "));
    bind_rows(sqlx::query(&sql), tables.iter().flat_map(|(_, rows)| rows.iter())).execute(&mut *connection).await?;
    Ok(())
}

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

/// Binds every row's key columns, then its value columns, in row order.
fn bind_rows<'q>(mut query: AnyQuery<'q>, rows: impl Iterator<Item = (&'q Vec<Value>, &'q Vec<Value>)>) -> AnyQuery<'q> {
    for (key, values) in rows {
        for value in key.iter().chain(values) {
            query = match value {
                Value::Text(text) => query.bind(text.as_str()),
                Value::Int(number) => query.bind(*number),
            };
        }
    }
    query
}

fn upsert_sql(table: &Table, backend: Backend, row_count: usize, first_parameter: usize) -> String {
    let columns: Vec<&str> = table.keys.iter().copied().chain(table.values.iter().map(|(name, _)| *name)).collect();
    let mut sql = format!(
        "INSERT INTO {} ({}) VALUES {}",
        table.name,
        columns.join(", "),
        store::values_list_from(backend, row_count, columns.len(), first_parameter)
    );
    let updates: Vec<String> = table
        .values
        .iter()
        .map(|(name, merge)| match merge {
            Merge::Add => format!("{name} = {}.{name} + excluded.{name}", table.name),
            Merge::Set => format!("{name} = excluded.{name}"),
        })
        .collect();
    sql.push_str(&format!(" ON CONFLICT ({}) DO UPDATE SET {}", table.keys.join(", "), updates.join(", ")));
    sql
}

async fn upsert(connection: &mut AnyConnection, table: &Table, rows: &TableChanges) -> Result<(), sqlx::Error> {
    let chunk_rows = (STATEMENT_PARAMETERS_MAX / column_count(table)).min(STATEMENT_ROWS_MAX);
    let rows: Vec<(&Vec<Value>, &Vec<Value>)> = rows.iter().collect();
    for chunk in rows.chunks(chunk_rows) {
        let sql = upsert_sql(table, store::backend_of(connection), chunk.len(), 1);
        bind_rows(sqlx::query(&sql), chunk.iter().copied()).execute(&mut *connection).await?;
    }
    Ok(())
}

/// The stored active-disbursement counts of every (scope, returnee) the
/// changes touch. The keys go as one JSON parameter, so the statement is the
/// same whatever their number and its plan is a primary-key lookup per key.
async fn read_reach(connection: &mut AnyConnection, changes: &Changes) -> Result<BTreeMap<Vec<Value>, i64>, sqlx::Error> {
    let mut before = BTreeMap::new();
    let Some(reach) = changes.rows(&REACH) else { return Ok(before) };
    let keys: Vec<serde_json::Value> = reach
        .keys()
        .map(|key| serde_json::json!({ "scope": key[0].to_string(), "beneficiary_ref": key[1].to_string() }))
        .collect();
    let sql = match store::backend_of(connection) {
        Backend::Sqlite => {
            "SELECT r.scope, r.beneficiary_ref, r.disbursements FROM json_each($1) AS k \
             JOIN reach r ON r.scope = json_extract(k.value, '$.scope') \
             AND r.beneficiary_ref = json_extract(k.value, '$.beneficiary_ref')"
        }
        // OFFSET 0 keeps the subquery apart, so the plan stays a key lookup
        // per key even when the planner thinks the table small.
        Backend::Postgres => {
            "SELECT r.scope, r.beneficiary_ref, r.disbursements \
             FROM json_to_recordset($1::json) AS k(scope TEXT, beneficiary_ref TEXT) \
             CROSS JOIN LATERAL (SELECT scope, beneficiary_ref, disbursements FROM reach \
             WHERE reach.scope = k.scope AND reach.beneficiary_ref = k.beneficiary_ref OFFSET 0) AS r"
        }
    };
    let keys = serde_json::Value::Array(keys).to_string();
    for row in sqlx::query(sql).bind(keys).fetch_all(&mut *connection).await? {
        let key = vec![Value::Text(row.try_get("scope")?), Value::Text(row.try_get("beneficiary_ref")?)];
        before.insert(key, row.try_get::<i64, _>("disbursements")?);
    }
    Ok(before)
}

/// Reads a whole projection table, for comparison with a rebuild.
pub async fn read_table(connection: &mut AnyConnection, table: &Table) -> Result<TableChanges, sqlx::Error> {
    let columns: Vec<&str> = table.keys.iter().copied().chain(table.values.iter().map(|(name, _)| *name)).collect();
    let sql = format!("SELECT {} FROM {}", columns.join(", "), table.name);
    let mut rows = TableChanges::new();
    for row in sqlx::query(&sql).fetch_all(&mut *connection).await? {
        let mut values = Vec::with_capacity(columns.len());
        for index in 0..columns.len() {
            let value = match row.try_get::<i64, _>(index) {
                Ok(number) => Value::Int(number),
                Err(_) => Value::Text(row.try_get::<String, _>(index)?),
            };
            values.push(value);
        }
        let row_values = values.split_off(table.keys.len());
        rows.insert(values, row_values);
    }
    Ok(rows)
}

/// Empties every projection table (before a rebuild).
pub async fn clear(connection: &mut AnyConnection) -> Result<(), sqlx::Error> {
    for table in TABLES {
        sqlx::query(&format!("DELETE FROM {}", table.name)).execute(&mut *connection).await?;
    }
    Ok(())
}

/// A secondary index of a projection table, as the database describes it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecondaryIndex {
    pub name: String,
    /// The statement that creates it, as stored by the database.
    pub definition: String,
}

/// The secondary indexes of the projection tables (not those behind a
/// primary key or a unique constraint), read from the database's catalog so
/// that the migrations stay their only definition.
pub async fn secondary_indexes(connection: &mut AnyConnection) -> Result<Vec<SecondaryIndex>, sqlx::Error> {
    let tables: Vec<String> = TABLES.iter().map(|table| format!("'{}'", table.name)).collect();
    let sql = match store::backend_of(connection) {
        Backend::Sqlite => format!(
            "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL AND tbl_name IN ({}) ORDER BY name",
            tables.join(", ")
        ),
        Backend::Postgres => format!(
            "SELECT CAST(indexname AS TEXT), indexdef FROM pg_indexes WHERE schemaname = current_schema() \
             AND tablename IN ({}) AND indexname NOT IN (SELECT conname FROM pg_constraint) ORDER BY indexname",
            tables.join(", ")
        ),
    };
    let rows = sqlx::query(&sql).fetch_all(&mut *connection).await?;
    rows.iter().map(|row| Ok(SecondaryIndex { name: row.try_get(0)?, definition: row.try_get(1)? })).collect()
}

/// Drops `indexes` (a rebuild creates them again once the tables are full:
/// building an index over sorted rows is faster than inserting row by row).
pub async fn drop_indexes(connection: &mut AnyConnection, indexes: &[SecondaryIndex]) -> Result<(), sqlx::Error> {
    for index in indexes {
        sqlx::query(&format!("DROP INDEX {}", index.name)).execute(&mut *connection).await?;
    }
    Ok(())
}

pub async fn create_indexes(connection: &mut AnyConnection, indexes: &[SecondaryIndex]) -> Result<(), sqlx::Error> {
    for index in indexes {
        sqlx::query(&index.definition).execute(&mut *connection).await?;
    }
    Ok(())
}

fn corrupt(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// Loads the decision state from the projection tables.
pub async fn load_state(connection: &mut AnyConnection) -> Result<State, sqlx::Error> {
    let mut state = State::default();
    for row in sqlx::query("SELECT code FROM donors").fetch_all(&mut *connection).await? {
        state.donors.insert(DonorCode::parse(&row.try_get::<String, _>(0)?).map_err(|error| corrupt(error.to_string()))?);
    }
    for row in sqlx::query("SELECT code, currency, countries FROM programmes").fetch_all(&mut *connection).await? {
        let code = ProgrammeCode::parse(&row.try_get::<String, _>(0)?).map_err(|error| corrupt(error.to_string()))?;
        let currency = Currency::parse(&row.try_get::<String, _>(1)?).map_err(|error| corrupt(error.to_string()))?;
        let countries_text: String = row.try_get(2)?;
        let countries = countries_text
            .split(',')
            .map(CountryCode::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|error| corrupt(error.to_string()))?;
        state.programmes.insert(code, ProgrammeInfo { currency, countries });
    }
    let funding_rows =
        sqlx::query("SELECT programme, donor, committed, received, allocated FROM funding").fetch_all(&mut *connection).await?;
    for row in funding_rows {
        let key = (parse_programme(&row, 0)?, parse_donor(&row, 1)?);
        let funding = Funding { committed: row.try_get(2)?, received: row.try_get(3)?, allocated: row.try_get(4)? };
        state.funding.insert(key, funding);
    }
    let line_rows =
        sqlx::query("SELECT programme, donor, country, allocated, disbursed_cash, disbursed_in_kind FROM budget_lines")
            .fetch_all(&mut *connection)
            .await?;
    for row in line_rows {
        let country = CountryCode::parse(&row.try_get::<String, _>(2)?).map_err(|error| corrupt(error.to_string()))?;
        let key = BudgetLineKey { programme: parse_programme(&row, 0)?, donor: parse_donor(&row, 1)?, country };
        let line = BudgetLine { allocated: row.try_get(3)?, disbursed_cash: row.try_get(4)?, disbursed_in_kind: row.try_get(5)? };
        state.lines.insert(key, line);
    }
    for row in sqlx::query("SELECT reversed_seq FROM reversals").fetch_all(&mut *connection).await? {
        let seq: i64 = row.try_get(0)?;
        state.reversed.insert(u64::try_from(seq).map_err(|_| corrupt("negative seq in reversals".to_string()))?);
    }
    state.check_invariants().map_err(corrupt)?;
    Ok(state)
}

fn parse_programme(row: &sqlx::any::AnyRow, index: usize) -> Result<ProgrammeCode, sqlx::Error> {
    ProgrammeCode::parse(&row.try_get::<String, _>(index)?).map_err(|error| corrupt(error.to_string()))
}

fn parse_donor(row: &sqlx::any::AnyRow, index: usize) -> Result<DonorCode, sqlx::Error> {
    DonorCode::parse(&row.try_get::<String, _>(index)?).map_err(|error| corrupt(error.to_string()))
}
