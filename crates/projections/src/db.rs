//! Writing changes to the projection tables and reading them back, on both
//! backends through sqlx's `Any` driver.

use std::collections::{BTreeMap, BTreeSet};

use chrono::NaiveDate;

use ledger_core::domain::payment_lists::APPROVALS_REQUIRED_DEFAULT;
use ledger_core::domain::state::ProgrammeInfo;
use ledger_core::domain::{
    BudgetLine, BudgetLineKey, CountryCode, Currency, DonorCode, FinalPaymentLists, Funding, ProgrammeCode, State,
};
use ledger_core::store::one_statement::{self, Cell, Insert};
use ledger_core::store::{self, Backend};
use sqlx::{AnyConnection, Row};

use crate::rows::{Changes, Merge, REACH, TABLES, Table, TableChanges, Value};

/// Bind parameters per statement, below SQLite's limit.
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
    match store::backend_of(connection) {
        // One round trip, whatever the rows: a group commit of a few
        // requests is bound by round trips, not by the rows.
        Backend::Postgres => {
            let inserts = inserts(connection, changes).await?;
            one_statement::write(connection, &inserts).await
        }
        Backend::Sqlite => {
            add_reach_totals(connection, changes).await?;
            for part in &parts_of(changes) {
                write_part(connection, part).await?;
            }
            Ok(())
        }
    }
}

/// The changes as inserts for one PostgreSQL statement, one per part. The
/// statement's text depends on which parts there are, not on their rows,
/// so a steady kind of work (cash payments, say) reuses one parsed and
/// planned statement. Reads the stored reach rows it depends on first.
pub async fn inserts(connection: &mut AnyConnection, changes: &mut Changes) -> Result<Vec<Insert>, sqlx::Error> {
    add_reach_totals(connection, changes).await?;
    let mut inserts = Vec::new();
    for part in parts_of(changes) {
        let mut insert = Insert::new(part.table.name, &columns_of(part.table), on_conflict(part.table, part.write));
        for (key, values) in &part.rows {
            insert.push_row(key.iter().chain(values.iter()).map(|value| match value {
                Value::Int(number) => Cell::Int(*number),
                Value::Text(text) => Cell::Text(text),
            }))?;
        }
        inserts.push(insert);
    }
    Ok(inserts)
}

/// Adds to `changes` the returnees reached per scope, from the stored reach
/// rows of the returnees they touch.
async fn add_reach_totals(connection: &mut AnyConnection, changes: &mut Changes) -> Result<(), sqlx::Error> {
    let before = read_reach(connection, changes).await?;
    changes.add_reach_totals(&before);
    Ok(())
}

/// How the rows of a part are written.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Write {
    /// New rows: inserted without looking for a stored one.
    Insert,
    /// Added to or replacing a stored row (`Merge`), inserted if none.
    Upsert,
}

/// Rows of one table written by one kind of statement.
struct Part<'c> {
    table: &'c Table,
    write: Write,
    rows: Vec<(&'c Vec<Value>, &'c Vec<Value>)>,
}

/// The changes as statements to run: rows an event of the changes creates
/// apart from the others.
fn parts_of(changes: &Changes) -> Vec<Part<'_>> {
    let mut parts = Vec::new();
    for (table, write) in part_kinds() {
        let Some(rows) = changes.rows(table) else { continue };
        let rows: Vec<_> = rows.iter().filter(|(key, _)| changes.creates(table, key) == (write == Write::Insert)).collect();
        if !rows.is_empty() {
            parts.push(Part { table, write, rows });
        }
    }
    parts
}

/// Every kind of part, in the order they are written: the tables in
/// `TABLES` order, created rows before stored ones.
fn part_kinds() -> impl Iterator<Item = (&'static Table, Write)> {
    TABLES.into_iter().flat_map(|table| {
        table.is_keyed_by_creating_seq().then_some((table, Write::Insert)).into_iter().chain([(table, Write::Upsert)])
    })
}

fn column_count(table: &Table) -> usize {
    table.keys.len() + table.values.len()
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

/// The key columns, then the value columns.
fn columns_of(table: &Table) -> Vec<&'static str> {
    table.keys.iter().copied().chain(table.values.iter().map(|(name, _)| *name)).collect()
}

/// An `INSERT` of `row_count` rows of `?` parameters (SQLite), with its
/// conflict action.
fn write_sql(table: &Table, write: Write, row_count: usize) -> String {
    format!(
        "INSERT INTO {} ({}) VALUES {}{}",
        table.name,
        columns_of(table).join(", "),
        store::values_list(row_count, column_count(table)),
        on_conflict(table, write)
    )
}

/// For `Write::Upsert`, the clause that merges a row with the stored one
/// (`Merge`); nothing for new rows.
fn on_conflict(table: &Table, write: Write) -> String {
    if write == Write::Insert {
        return String::new();
    }
    let updates: Vec<String> = table
        .values
        .iter()
        .map(|(name, merge)| match merge {
            Merge::Add => format!("{name} = {}.{name} + excluded.{name}", table.name),
            Merge::Set => format!("{name} = excluded.{name}"),
        })
        .collect();
    format!(" ON CONFLICT ({}) DO UPDATE SET {}", table.keys.join(", "), updates.join(", "))
}

/// Writes a part in statements of at most `STATEMENT_ROWS_MAX` rows (SQLite).
async fn write_part(connection: &mut AnyConnection, part: &Part<'_>) -> Result<(), sqlx::Error> {
    let chunk_rows = (STATEMENT_PARAMETERS_MAX / column_count(part.table)).min(STATEMENT_ROWS_MAX);
    for chunk in part.rows.chunks(chunk_rows) {
        let sql = write_sql(part.table, part.write, chunk.len());
        bind_rows(sqlx::query(&sql), chunk.iter().copied()).execute(&mut *connection).await?;
    }
    Ok(())
}

/// Every stored reach row of each returnee the changes touch: what
/// `Changes::add_reach_totals` needs. The returnees go as one JSON
/// parameter, so the statement is the same whatever their number, and its
/// plan is a key lookup per returnee.
async fn read_reach(connection: &mut AnyConnection, changes: &Changes) -> Result<BTreeMap<Vec<Value>, i64>, sqlx::Error> {
    let mut before = BTreeMap::new();
    let Some(reach) = changes.rows(&REACH) else { return Ok(before) };
    let returnees: BTreeSet<String> = reach.keys().map(|key| key[0].to_string()).collect();
    let sql = match store::backend_of(connection) {
        Backend::Sqlite => {
            "SELECT r.beneficiary_ref, r.programme, r.country, r.disbursements \
             FROM json_each($1) AS k JOIN reach r ON r.beneficiary_ref = k.value"
        }
        // OFFSET 0 keeps the subquery apart, so the plan stays a key lookup
        // per returnee even when the planner thinks the table small.
        Backend::Postgres => {
            "SELECT r.beneficiary_ref, r.programme, r.country, r.disbursements \
             FROM json_array_elements_text($1::json) AS k(beneficiary_ref) \
             CROSS JOIN LATERAL (SELECT beneficiary_ref, programme, country, disbursements FROM reach \
             WHERE reach.beneficiary_ref = k.beneficiary_ref OFFSET 0) AS r"
        }
    };
    let returnees = serde_json::to_string(&returnees).expect("strings serialize");
    for row in sqlx::query(sql).bind(returnees).fetch_all(&mut *connection).await? {
        let key = vec![
            Value::Text(row.try_get("beneficiary_ref")?),
            Value::Text(row.try_get("programme")?),
            Value::Text(row.try_get("country")?),
        ];
        before.insert(key, row.try_get::<i64, _>("disbursements")?);
    }
    Ok(before)
}

/// Reads a whole projection table, for comparison with a rebuild.
pub async fn read_table(connection: &mut AnyConnection, table: &Table) -> Result<TableChanges, sqlx::Error> {
    let columns = columns_of(table);
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

pub(crate) fn corrupt(message: String) -> sqlx::Error {
    sqlx::Error::Decode(message.into())
}

/// Loads the decision state from the projection tables; the final lists of
/// `known` that the tables agree with are taken as they are
/// (`payment_lists::load_into`).
pub async fn load_state(connection: &mut AnyConnection, known: &FinalPaymentLists) -> Result<State, sqlx::Error> {
    let mut state = State::default();
    for row in sqlx::query("SELECT code FROM donors").fetch_all(&mut *connection).await? {
        state.donors.insert(DonorCode::parse(&row.try_get::<String, _>(0)?).map_err(|error| corrupt(error.to_string()))?);
    }
    for row in
        sqlx::query("SELECT code, currency, countries, starts_on, ends_on FROM programmes").fetch_all(&mut *connection).await?
    {
        let code = ProgrammeCode::parse(&row.try_get::<String, _>(0)?).map_err(|error| corrupt(error.to_string()))?;
        let currency = Currency::parse(&row.try_get::<String, _>(1)?).map_err(|error| corrupt(error.to_string()))?;
        let countries_text: String = row.try_get(2)?;
        let countries = countries_text
            .split(',')
            .map(CountryCode::parse)
            .collect::<Result<BTreeSet<_>, _>>()
            .map_err(|error| corrupt(error.to_string()))?;
        let day = |index: usize| -> Result<NaiveDate, sqlx::Error> {
            let text: String = row.try_get(index)?;
            text.parse().map_err(|_| corrupt(format!("programme {code} has an unreadable date {text:?}")))
        };
        let (starts_on, ends_on) = (day(3)?, day(4)?);
        let approvals_required = APPROVALS_REQUIRED_DEFAULT;
        state.programmes.insert(code, ProgrammeInfo { currency, countries, starts_on, ends_on, approvals_required });
    }
    for row in sqlx::query("SELECT programme, approvals_required FROM programme_approvals").fetch_all(&mut *connection).await? {
        let code = parse_programme(&row, 0)?;
        let approvals: i64 = row.try_get(1)?;
        let info = state.programmes.get_mut(&code).ok_or_else(|| corrupt(format!("approvals of unknown programme {code}")))?;
        info.approvals_required =
            u32::try_from(approvals).map_err(|_| corrupt(format!("programme {code} approvals {approvals}")))?;
    }
    let funding_rows =
        sqlx::query("SELECT programme, donor, committed, received, allocated FROM funding").fetch_all(&mut *connection).await?;
    for row in funding_rows {
        let key = (parse_programme(&row, 0)?, parse_donor(&row, 1)?);
        let funding = Funding { committed: row.try_get(2)?, received: row.try_get(3)?, allocated: row.try_get(4)? };
        state.funding.insert(key, funding);
    }
    let line_rows =
        sqlx::query("SELECT programme, donor, country, allocated, disbursed_cash, disbursed_in_kind, held FROM budget_lines")
            .fetch_all(&mut *connection)
            .await?;
    for row in line_rows {
        let country = CountryCode::parse(&row.try_get::<String, _>(2)?).map_err(|error| corrupt(error.to_string()))?;
        let key = BudgetLineKey { programme: parse_programme(&row, 0)?, donor: parse_donor(&row, 1)?, country };
        let line = BudgetLine {
            allocated: row.try_get(3)?,
            disbursed_cash: row.try_get(4)?,
            disbursed_in_kind: row.try_get(5)?,
            held: row.try_get(6)?,
        };
        state.lines.insert(key, line);
    }
    state.total_programmes().map_err(corrupt)?;
    for row in sqlx::query("SELECT programme, country, currency, amount FROM local_paid").fetch_all(&mut *connection).await? {
        let country = CountryCode::parse(&row.try_get::<String, _>(1)?).map_err(|error| corrupt(error.to_string()))?;
        let currency = Currency::parse(&row.try_get::<String, _>(2)?).map_err(|error| corrupt(error.to_string()))?;
        state.local_paid.insert((parse_programme(&row, 0)?, country, currency), row.try_get(3)?);
    }
    for row in sqlx::query("SELECT reversed_seq FROM reversals").fetch_all(&mut *connection).await? {
        let seq: i64 = row.try_get(0)?;
        state.reversed.insert(u64::try_from(seq).map_err(|_| corrupt("negative seq in reversals".to_string()))?);
    }
    crate::payment_lists::load_into(connection, &mut state, known).await?;
    state.check_invariants().map_err(corrupt)?;
    Ok(state)
}

fn parse_programme(row: &sqlx::any::AnyRow, index: usize) -> Result<ProgrammeCode, sqlx::Error> {
    ProgrammeCode::parse(&row.try_get::<String, _>(index)?).map_err(|error| corrupt(error.to_string()))
}

fn parse_donor(row: &sqlx::any::AnyRow, index: usize) -> Result<DonorCode, sqlx::Error> {
    DonorCode::parse(&row.try_get::<String, _>(index)?).map_err(|error| corrupt(error.to_string()))
}
