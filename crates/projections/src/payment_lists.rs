//! Payment lists on the read side: the decision state loaded from their
//! tables, the lists by programme and status, one list with its approvals
//! and each row's outcome, the provider's instructions, and the earlier
//! assistance of the returnees of a list (duplicate warnings).

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::Arc;

use chrono::NaiveDate;
use ledger_core::domain::payment_lists::{DeliveryStatus, ListRowState, PaymentListState, PaymentListStatus, RowOutcomeState};
use ledger_core::domain::types::{BeneficiaryRef, Currency, PaymentMethod, format_minor_units};
use ledger_core::domain::{BudgetLineKey, CountryCode, DonorCode, FinalPaymentLists, ProgrammeCode, State};
use ledger_core::store::{self, Backend};
use rust_decimal::Decimal;
use sqlx::{AnyConnection, Row};
use uuid::Uuid;

use crate::db::corrupt;

/// Most lists one answer of `payment_lists` holds.
pub const PAYMENT_LISTS_PAGE_MAX: u32 = 1_000;
/// Most final lists whose rows a load of the decision state reads list by
/// list; with more, it reads every row in one query.
const FINAL_LISTS_READ_ONE_BY_ONE_MAX: usize = 16;
/// Most returnees `earlier_assistance` is asked about at once.
pub const ASSISTANCE_QUERY_REFS_MAX: usize = 50_000;

fn parse<T, E: std::fmt::Display>(result: Result<T, E>) -> Result<T, sqlx::Error> {
    result.map_err(|error| corrupt(error.to_string()))
}

fn method_of(text: &str) -> Result<PaymentMethod, sqlx::Error> {
    parse(serde_json::from_value(serde_json::Value::String(text.to_string())))
}

fn count(number: i64) -> Result<u32, sqlx::Error> {
    parse(u32::try_from(number))
}

fn money(minor: i64, currency: Currency) -> Decimal {
    format_minor_units(minor, currency).parse().expect("formatted minor units parse")
}

/// Loads every payment list into the decision state (the lists' holds are
/// already in the budget lines). A list of `known` that the tables hold as
/// final with the same status and hold is taken from there: a final list
/// never changes, so only the open lists, and final ones not known yet, have
/// their approvals and rows read.
pub async fn load_into(connection: &mut AnyConnection, state: &mut State, known: &FinalPaymentLists) -> Result<(), sqlx::Error> {
    let mut lists: HashMap<String, PaymentListState> = HashMap::new();
    let mut kept: Vec<(Uuid, Arc<PaymentListState>)> = Vec::new();
    let sql = "SELECT l.id, l.programme, l.donor, l.country, l.currency, l.imported_by, l.content_hash, \
               l.approvals_required, t.status, t.held FROM payment_lists l JOIN payment_list_totals t ON t.id = l.id";
    for row in sqlx::query(sql).fetch_all(&mut *connection).await? {
        let id: String = row.try_get(0)?;
        let status_text: String = row.try_get(8)?;
        let status = PaymentListStatus::parse(&status_text).ok_or_else(|| corrupt(format!("list status {status_text:?}")))?;
        let held: i64 = row.try_get(9)?;
        let uuid = parse(Uuid::parse_str(&id))?;
        if let Some(list) = known.get(&uuid).filter(|list| status.is_final() && list.status == status && list.held == held) {
            kept.push((uuid, list.clone()));
            continue;
        }
        let line = BudgetLineKey {
            programme: parse(ProgrammeCode::parse(&row.try_get::<String, _>(1)?))?,
            donor: parse(DonorCode::parse(&row.try_get::<String, _>(2)?))?,
            country: parse(CountryCode::parse(&row.try_get::<String, _>(3)?))?,
        };
        let list = PaymentListState {
            line,
            currency: parse(Currency::parse(&row.try_get::<String, _>(4)?))?,
            status,
            imported_by: row.try_get(5)?,
            content_hash: row.try_get(6)?,
            approvals_required: count(row.try_get(7)?)?,
            approvals: Vec::new(),
            rows: Vec::new(),
            by_reference: HashMap::new(),
            held,
        };
        lists.insert(id, list);
    }
    let mut references: HashSet<String> = HashSet::new();
    for (id, list) in kept {
        references.extend(list.by_reference.keys().cloned());
        state.payment_lists.insert(id, list);
    }
    if !lists.is_empty() {
        let approvals = "SELECT list, approved_by FROM payment_list_approvals ORDER BY list, approval";
        for row in sqlx::query(approvals).fetch_all(&mut *connection).await? {
            let id: String = row.try_get(0)?;
            if let Some(list) = lists.get_mut(&id) {
                list.approvals.push(row.try_get(1)?);
            } else if !state.payment_lists.contains_key(&parse(Uuid::parse_str(&id))?) {
                return Err(corrupt(format!("approval of unknown list {id}")));
            }
        }
        load_rows(connection, &mut lists).await?;
    }
    for (id, list) in lists {
        references.extend(list.by_reference.keys().cloned());
        state.payment_lists.insert(parse(Uuid::parse_str(&id))?, Arc::new(list));
    }
    state.payment_references = Arc::new(references);
    Ok(())
}

/// The rows of `lists` with their references and outcomes: the rows of
/// every open list in one query, those of each final list in one more; or,
/// when many final lists are to be read (the first load), every row at once.
async fn load_rows(connection: &mut AnyConnection, lists: &mut HashMap<String, PaymentListState>) -> Result<(), sqlx::Error> {
    let columns = "SELECT r.list, r.row, r.beneficiary_ref, r.amount, r.paid_amount, r.paid_currency, r.method, \
                   f.reference, o.status, o.delivered_amount, o.delivered_on, o.provider_transaction_id, o.charged \
                   FROM payment_list_rows r \
                   LEFT JOIN payment_references f ON f.list = r.list AND f.row = r.row \
                   LEFT JOIN payment_outcomes o ON o.list = r.list AND o.row = r.row";
    let finals = lists.values().filter(|list| list.status.is_final()).count();
    if finals > FINAL_LISTS_READ_ONE_BY_ONE_MAX {
        for row in sqlx::query(&format!("{columns} ORDER BY r.list, r.row")).fetch_all(&mut *connection).await? {
            let id: String = row.try_get(0)?;
            if lists.contains_key(&id) {
                add_row(lists, &row)?;
            }
        }
        return Ok(());
    }
    if finals < lists.len() {
        let open = format!(
            "{columns} JOIN payment_list_totals t ON t.id = r.list WHERE t.status NOT IN ('closed', 'cancelled') \
             ORDER BY r.list, r.row"
        );
        for row in sqlx::query(&open).fetch_all(&mut *connection).await? {
            add_row(lists, &row)?;
        }
    }
    let finals: Vec<String> = lists.iter().filter(|(_, list)| list.status.is_final()).map(|(id, _)| id.clone()).collect();
    let one = format!("{columns} WHERE r.list = $1 ORDER BY r.row");
    for id in finals {
        for row in sqlx::query(&one).bind(&id).fetch_all(&mut *connection).await? {
            add_row(lists, &row)?;
        }
    }
    Ok(())
}

/// Adds one row of the query of `load_rows` to its list.
fn add_row(lists: &mut HashMap<String, PaymentListState>, row: &sqlx::any::AnyRow) -> Result<(), sqlx::Error> {
    let id: String = row.try_get(0)?;
    let list = lists.get_mut(&id).ok_or_else(|| corrupt(format!("row of unknown list {id}")))?;
    let status: Option<String> = row.try_get(8)?;
    let outcome = match status {
        None => None,
        Some(status) => Some(RowOutcomeState {
            status: if status == "delivered" { DeliveryStatus::Delivered } else { DeliveryStatus::Failed },
            delivered_minor: row.try_get(9)?,
            delivered_on: parse(row.try_get::<String, _>(10)?.parse::<NaiveDate>())?,
            provider_transaction_id: row.try_get(11)?,
            charged_minor: row.try_get(12)?,
        }),
    };
    let reference: Option<String> = row.try_get(7)?;
    if let Some(reference) = &reference {
        list.by_reference.insert(reference.clone(), list.rows.len());
    }
    list.rows.push(ListRowState {
        row: count(row.try_get(1)?)?,
        beneficiary_ref: parse(BeneficiaryRef::parse(&row.try_get::<String, _>(2)?))?,
        amount_minor: row.try_get(3)?,
        paid_minor: row.try_get(4)?,
        paid_currency: parse(Currency::parse(&row.try_get::<String, _>(5)?))?,
        method: method_of(&row.try_get::<String, _>(6)?)?,
        reference,
        outcome,
    });
    Ok(())
}

/// A list's figures, amounts in the programme's currency.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentListSummary {
    pub id: Uuid,
    pub programme: String,
    pub donor: String,
    pub country: String,
    pub currency: Currency,
    pub planned_on: String,
    pub status: PaymentListStatus,
    pub rows: u32,
    pub total: Decimal,
    /// Still held on the budget line.
    pub held: Decimal,
    /// Charged for delivered rows (cash reinsertion payments).
    pub delivered: Decimal,
    /// The amounts of failed rows.
    pub failed: Decimal,
    /// Released from the hold without a charge: failed rows, what partly
    /// delivered rows did not use, rows of a cancelled list.
    pub released_back: Decimal,
    pub approvals: u32,
    pub approvals_required: u32,
    pub imported_by: String,
    pub imported_seq: u64,
    pub imported_at: String,
    pub content_hash: String,
    /// The seq of the list's latest event.
    pub updated_seq: u64,
}

/// One approval of a list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApprovalRecord {
    pub approval: u32,
    pub by: String,
    pub at: String,
    pub seq: u64,
}

/// One row of a list and its outcome, by row number. No beneficiary ref:
/// this is what the edge shows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RowRecord {
    pub row: u32,
    pub amount: Decimal,
    pub paid_amount: Decimal,
    pub paid_currency: Currency,
    pub method: PaymentMethod,
    pub row_reference: Option<String>,
    /// Once released.
    pub reference: Option<String>,
    /// Once confirmed.
    pub outcome: Option<OutcomeRecord>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OutcomeRecord {
    pub status: DeliveryStatus,
    /// In the row's local currency.
    pub delivered_amount: Decimal,
    pub delivered_on: String,
    pub provider_transaction_id: String,
    pub charged: Decimal,
    pub released: Decimal,
    pub confirmed_seq: u64,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PaymentListDetail {
    pub summary: PaymentListSummary,
    pub approvals: Vec<ApprovalRecord>,
    pub rows: Vec<RowRecord>,
}

const SUMMARY_COLUMNS: &str = "l.id, l.programme, l.donor, l.country, l.currency, l.planned_on, t.status, l.rows, l.total, \
     t.held, t.delivered, t.failed, t.released_back, t.approvals, l.approvals_required, l.imported_by, l.imported_seq, \
     l.imported_at, l.content_hash, t.updated_seq";

fn summary_of(row: &sqlx::any::AnyRow) -> Result<PaymentListSummary, sqlx::Error> {
    let currency = parse(Currency::parse(&row.try_get::<String, _>(4)?))?;
    let status_text: String = row.try_get(6)?;
    let amount = |index: usize| -> Result<Decimal, sqlx::Error> { Ok(money(row.try_get(index)?, currency)) };
    Ok(PaymentListSummary {
        id: parse(Uuid::parse_str(&row.try_get::<String, _>(0)?))?,
        programme: row.try_get(1)?,
        donor: row.try_get(2)?,
        country: row.try_get(3)?,
        currency,
        planned_on: row.try_get(5)?,
        status: PaymentListStatus::parse(&status_text).ok_or_else(|| corrupt(format!("list status {status_text:?}")))?,
        rows: count(row.try_get(7)?)?,
        total: amount(8)?,
        held: amount(9)?,
        delivered: amount(10)?,
        failed: amount(11)?,
        released_back: amount(12)?,
        approvals: count(row.try_get(13)?)?,
        approvals_required: count(row.try_get(14)?)?,
        imported_by: row.try_get(15)?,
        imported_seq: parse(u64::try_from(row.try_get::<i64, _>(16)?))?,
        imported_at: row.try_get(17)?,
        content_hash: row.try_get(18)?,
        updated_seq: parse(u64::try_from(row.try_get::<i64, _>(19)?))?,
    })
}

/// The lists of `programme` (every programme when `None`) in `status`
/// (any when `None`), oldest first, at most `limit` (capped at
/// `PAYMENT_LISTS_PAGE_MAX`) after the list imported at `after_seq`.
pub async fn payment_lists(
    connection: &mut AnyConnection,
    programme: Option<&str>,
    status: Option<PaymentListStatus>,
    after_seq: u64,
    limit: u32,
) -> Result<Vec<PaymentListSummary>, sqlx::Error> {
    let sql = format!(
        "SELECT {SUMMARY_COLUMNS} FROM payment_lists l JOIN payment_list_totals t ON t.id = l.id \
         WHERE ($1 = '' OR l.programme = $1) AND ($2 = '' OR t.status = $2) AND l.imported_seq > $3 \
         ORDER BY l.imported_seq LIMIT $4"
    );
    let rows = sqlx::query(&sql)
        .bind(programme.unwrap_or_default())
        .bind(status.map(|status| status.as_str()).unwrap_or_default())
        .bind(i64::try_from(after_seq).unwrap_or(i64::MAX))
        .bind(i64::from(limit.min(PAYMENT_LISTS_PAGE_MAX)))
        .fetch_all(&mut *connection)
        .await?;
    rows.iter().map(summary_of).collect()
}

/// The figures of one list, if it exists.
pub async fn payment_list_summary(connection: &mut AnyConnection, id: Uuid) -> Result<Option<PaymentListSummary>, sqlx::Error> {
    let sql = format!("SELECT {SUMMARY_COLUMNS} FROM payment_lists l JOIN payment_list_totals t ON t.id = l.id WHERE l.id = $1");
    let row = sqlx::query(&sql).bind(id.to_string()).fetch_optional(&mut *connection).await?;
    row.as_ref().map(summary_of).transpose()
}

/// One list with its approvals and each row's outcome, if it exists.
pub async fn payment_list(connection: &mut AnyConnection, id: Uuid) -> Result<Option<PaymentListDetail>, sqlx::Error> {
    let Some(summary) = payment_list_summary(connection, id).await? else { return Ok(None) };
    let mut approvals = Vec::new();
    let sql =
        "SELECT approval, approved_by, approved_at, approved_seq FROM payment_list_approvals WHERE list = $1 ORDER BY approval";
    for row in sqlx::query(sql).bind(id.to_string()).fetch_all(&mut *connection).await? {
        approvals.push(ApprovalRecord {
            approval: count(row.try_get(0)?)?,
            by: row.try_get(1)?,
            at: row.try_get(2)?,
            seq: parse(u64::try_from(row.try_get::<i64, _>(3)?))?,
        });
    }
    let rows = row_records(connection, id, summary.currency).await?;
    Ok(Some(PaymentListDetail { summary, approvals, rows }))
}

async fn row_records(connection: &mut AnyConnection, id: Uuid, currency: Currency) -> Result<Vec<RowRecord>, sqlx::Error> {
    let sql = "SELECT r.row, r.amount, r.paid_amount, r.paid_currency, r.method, r.row_reference, f.reference, \
               o.status, o.delivered_amount, o.delivered_on, o.provider_transaction_id, o.charged, o.released, o.confirmed_seq \
               FROM payment_list_rows r \
               LEFT JOIN payment_references f ON f.list = r.list AND f.row = r.row \
               LEFT JOIN payment_outcomes o ON o.list = r.list AND o.row = r.row \
               WHERE r.list = $1 ORDER BY r.row";
    let mut records = Vec::new();
    for row in sqlx::query(sql).bind(id.to_string()).fetch_all(&mut *connection).await? {
        let paid_currency = parse(Currency::parse(&row.try_get::<String, _>(3)?))?;
        let row_reference: String = row.try_get(5)?;
        let status: Option<String> = row.try_get(7)?;
        let outcome = match status {
            None => None,
            Some(status) => Some(OutcomeRecord {
                status: if status == "delivered" { DeliveryStatus::Delivered } else { DeliveryStatus::Failed },
                delivered_amount: money(row.try_get(8)?, paid_currency),
                delivered_on: row.try_get(9)?,
                provider_transaction_id: row.try_get(10)?,
                charged: money(row.try_get(11)?, currency),
                released: money(row.try_get(12)?, currency),
                confirmed_seq: parse(u64::try_from(row.try_get::<i64, _>(13)?))?,
            }),
        };
        records.push(RowRecord {
            row: count(row.try_get(0)?)?,
            amount: money(row.try_get(1)?, currency),
            paid_amount: money(row.try_get(2)?, paid_currency),
            paid_currency,
            method: method_of(&row.try_get::<String, _>(4)?)?,
            row_reference: (!row_reference.is_empty()).then_some(row_reference),
            reference: row.try_get(6)?,
            outcome,
        });
    }
    Ok(records)
}

/// One line of the provider's instruction file: no personal data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Instruction {
    pub row: u32,
    pub reference: String,
    /// To pay, in local currency.
    pub amount: Decimal,
    pub currency: Currency,
    pub method: PaymentMethod,
}

/// The instructions of a released list, in row order (empty before
/// release); `None` for an unknown list.
pub async fn payment_instructions(connection: &mut AnyConnection, id: Uuid) -> Result<Option<Vec<Instruction>>, sqlx::Error> {
    let exists: Option<String> = sqlx::query_scalar("SELECT id FROM payment_lists WHERE id = $1")
        .bind(id.to_string())
        .fetch_optional(&mut *connection)
        .await?;
    if exists.is_none() {
        return Ok(None);
    }
    let sql = "SELECT r.row, f.reference, r.paid_amount, r.paid_currency, r.method FROM payment_list_rows r \
               JOIN payment_references f ON f.list = r.list AND f.row = r.row WHERE r.list = $1 ORDER BY r.row";
    let mut instructions = Vec::new();
    for row in sqlx::query(sql).bind(id.to_string()).fetch_all(&mut *connection).await? {
        let currency = parse(Currency::parse(&row.try_get::<String, _>(3)?))?;
        instructions.push(Instruction {
            row: count(row.try_get(0)?)?,
            reference: row.try_get(1)?,
            amount: money(row.try_get(2)?, currency),
            currency,
            method: method_of(&row.try_get::<String, _>(4)?)?,
        });
    }
    Ok(Some(instructions))
}

/// Why a returnee of a list is a duplicate warning.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum EarlierAssistance {
    /// Assisted (and not reversed) by another programme.
    OtherProgramme { programme: String },
    /// Assisted by this programme within the window, on this day.
    SameProgrammeWithin { assisted_on: String },
}

/// The earlier assistance that makes each of `returnees` a duplicate
/// warning for a list of `programme` planned on `planned_on`: assistance by
/// another programme, or by this one within `window_days` of
/// `planned_on`. Reversed assistance does not count. Returnees without
/// earlier assistance are absent from the answer.
pub async fn earlier_assistance(
    connection: &mut AnyConnection,
    programme: &ProgrammeCode,
    returnees: &[BeneficiaryRef],
    planned_on: NaiveDate,
    window_days: u32,
) -> Result<BTreeMap<BeneficiaryRef, BTreeSet<EarlierAssistance>>, sqlx::Error> {
    let mut warnings: BTreeMap<BeneficiaryRef, BTreeSet<EarlierAssistance>> = BTreeMap::new();
    if returnees.is_empty() {
        return Ok(warnings);
    }
    assert!(returnees.len() <= ASSISTANCE_QUERY_REFS_MAX, "ask about at most ASSISTANCE_QUERY_REFS_MAX returnees");
    let sql = match store::backend_of(connection) {
        Backend::Sqlite => {
            "SELECT a.beneficiary_ref, a.programme, a.assisted_on FROM json_each($1) AS k \
             JOIN assistance a ON a.beneficiary_ref = k.value WHERE a.reversed = 0"
        }
        Backend::Postgres => {
            "SELECT a.beneficiary_ref, a.programme, a.assisted_on FROM json_array_elements_text($1::json) AS k(beneficiary_ref) \
             JOIN assistance a ON a.beneficiary_ref = k.beneficiary_ref WHERE a.reversed = 0"
        }
    };
    let references: Vec<&str> = returnees.iter().map(BeneficiaryRef::as_str).collect();
    let references = serde_json::to_string(&references).expect("strings serialize");
    for row in sqlx::query(sql).bind(references).fetch_all(&mut *connection).await? {
        let reference = parse(BeneficiaryRef::parse(&row.try_get::<String, _>(0)?))?;
        let other: String = row.try_get(1)?;
        let assisted_on: String = row.try_get(2)?;
        let warning = if other != programme.as_str() {
            EarlierAssistance::OtherProgramme { programme: other }
        } else {
            let day = parse(assisted_on.parse::<NaiveDate>())?;
            if (planned_on - day).num_days().abs() > i64::from(window_days) {
                continue;
            }
            EarlierAssistance::SameProgrammeWithin { assisted_on }
        };
        warnings.entry(reference).or_default().insert(warning);
    }
    Ok(warnings)
}
