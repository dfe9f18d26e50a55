//! The payment list reads: the lists by programme and status, one list
//! with its approvals and each row's outcome, the provider's instruction
//! file, and the duplicate warnings of an import. Admin, auditor and
//! finance officer read every list; a donor reads the lists of its own
//! budget lines, totals only (no approvals, no rows). The figures come from
//! `projections::payment_lists`.

use std::collections::HashMap;

use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use ledger_core::domain::payment_lists::PaymentListStatus;
use ledger_core::domain::{BeneficiaryRef, Currency, ProgrammeCode};
use ledger_core::store::StoreError;
use projections::payment_lists::{self as lists, EarlierAssistance, PaymentListDetail, PaymentListSummary};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::{Caller, READERS};
use super::error::ApiError;
use super::params::QueryParams;
use crate::payments::instructions::{self, Instruction};
use crate::payments::report::RowProblem;
use crate::tokens::Role;

/// The duplicate window of an import's warnings, in days: a returnee this
/// programme assisted within it of the planned day is a warning.
pub const DUPLICATE_WINDOW_DAYS: u32 = super::reads::DUPLICATE_WINDOW_DAYS_DEFAULT;

/// One approval of a list.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct ApprovalView {
    pub approval: u32,
    /// The token name of the finance officer who approved.
    pub by: String,
    /// UTC, RFC 3339.
    pub at: String,
    pub seq: u64,
}

/// One row of a list and its outcome, by row number: no returnee data.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct OutcomeView {
    pub row: u32,
    /// Held for the row, in the programme's currency.
    pub amount: String,
    /// To pay, in local currency.
    pub paid_amount: String,
    pub paid_currency: String,
    pub method: String,
    pub row_reference: Option<String>,
    /// The payment reference, once released.
    pub reference: Option<String>,
    /// `pending` (no outcome yet), `delivered` or `failed`.
    #[schema(example = "delivered")]
    pub status: String,
    /// What reached the returnee, in local currency.
    pub delivered_amount: Option<String>,
    pub delivered_on: Option<String>,
    pub provider_txn_id: Option<String>,
    /// Charged to the budget line, in the programme's currency.
    pub charged: Option<String>,
    /// Released back to the budget line, in the programme's currency.
    pub released_back: Option<String>,
}

/// A payment list: its budget line, status and totals (in the programme's
/// currency); for every role but donors, its approvals and each row's outcome.
#[derive(Clone, Debug, Serialize, ToSchema)]
pub struct PaymentListView {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    /// `imported`, `approved`, `released`, `closed` or `cancelled`.
    #[schema(example = "imported")]
    pub status: String,
    pub programme: String,
    pub donor: String,
    pub country: String,
    pub currency: String,
    pub planned_on: String,
    pub rows: u32,
    pub total: String,
    pub held: String,
    pub delivered: String,
    pub failed: String,
    pub released_back: String,
    pub approvals_required: u32,
    /// SHA-256 of the list's content, which every approval names.
    pub content_hash: String,
    /// The import's seq.
    pub imported_seq: u64,
    pub imported_at: String,
    /// Not for donors.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub imported_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approvals: Option<Vec<ApprovalView>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outcomes: Option<Vec<OutcomeView>>,
}

#[derive(Serialize, ToSchema)]
pub struct PaymentListsAnswer {
    pub lists: Vec<PaymentListView>,
}

fn text(amount: rust_decimal::Decimal) -> String {
    amount.to_string()
}

fn summary_view(summary: PaymentListSummary) -> PaymentListView {
    PaymentListView {
        id: summary.id,
        status: summary.status.as_str().to_string(),
        programme: summary.programme,
        donor: summary.donor,
        country: summary.country,
        currency: summary.currency.code().to_string(),
        planned_on: summary.planned_on,
        rows: summary.rows,
        total: text(summary.total),
        held: text(summary.held),
        delivered: text(summary.delivered),
        failed: text(summary.failed),
        released_back: text(summary.released_back),
        approvals_required: summary.approvals_required,
        content_hash: summary.content_hash,
        imported_seq: summary.imported_seq,
        imported_at: summary.imported_at,
        imported_by: Some(summary.imported_by),
        approvals: None,
        outcomes: None,
    }
}

fn detail_view(detail: PaymentListDetail) -> PaymentListView {
    let mut view = summary_view(detail.summary);
    view.approvals = Some(
        detail
            .approvals
            .into_iter()
            .map(|approval| ApprovalView { approval: approval.approval, by: approval.by, at: approval.at, seq: approval.seq })
            .collect(),
    );
    let outcomes = detail.rows.into_iter().map(|row| {
        let outcome = row.outcome.as_ref();
        OutcomeView {
            row: row.row,
            amount: text(row.amount),
            paid_amount: text(row.paid_amount),
            paid_currency: row.paid_currency.code().to_string(),
            method: crate::payments::cells::method_name(row.method).to_string(),
            row_reference: row.row_reference,
            reference: row.reference,
            status: outcome.map_or("pending", |outcome| outcome.status.as_str()).to_string(),
            delivered_amount: outcome.map(|outcome| text(outcome.delivered_amount)),
            delivered_on: outcome.map(|outcome| outcome.delivered_on.clone()),
            provider_txn_id: outcome.map(|outcome| outcome.provider_transaction_id.clone()),
            charged: outcome.map(|outcome| text(outcome.charged)),
            released_back: outcome.map(|outcome| text(outcome.released)),
        }
    });
    view.outcomes = Some(outcomes.collect());
    view
}

/// A list's totals as a donor sees them.
fn for_donor(mut view: PaymentListView) -> PaymentListView {
    view.imported_by = None;
    view.approvals = None;
    view.outcomes = None;
    view
}

async fn connection(state: &AppState) -> Result<sqlx::pool::PoolConnection<sqlx::Any>, ApiError> {
    Ok(state.ledger.store.acquire().await?)
}

fn database(error: sqlx::Error) -> ApiError {
    StoreError::from(error).into()
}

fn no_list() -> ApiError {
    ApiError::NotFound("no payment list with that id".to_string())
}

/// The whole list, for the writes' answers.
pub async fn view(state: &AppState, id: Uuid) -> Result<PaymentListView, ApiError> {
    let mut connection = connection(state).await?;
    let detail = lists::payment_list(&mut connection, id).await.map_err(database)?;
    detail.map(detail_view).ok_or_else(no_list)
}

/// The list's figures without its approvals and rows (cheap at any size),
/// for the answers of the transitions.
pub async fn summary(state: &AppState, id: Uuid) -> Result<PaymentListView, ApiError> {
    let mut connection = connection(state).await?;
    let summary = lists::payment_list_summary(&mut connection, id).await.map_err(database)?;
    summary.map(summary_view).ok_or_else(no_list)
}

/// The programme's currency (404 for an unknown programme).
pub async fn programme_currency(state: &AppState, programme: &ProgrammeCode) -> Result<Currency, ApiError> {
    let code = crate::reports::programme_currency(&state.ledger.store, programme).await?;
    Currency::parse(&code).map_err(|error| ApiError::internal(anyhow::anyhow!("programme currency: {error}")))
}

/// The list an import event created.
pub async fn list_of_event(state: &AppState, seq: u64) -> Result<Uuid, ApiError> {
    let events = state.ledger.store.events_after(seq - 1, 1).await?;
    let payload = events.first().map(|event| event.payload.as_str()).unwrap_or_default();
    let value: serde_json::Value =
        serde_json::from_str(payload).map_err(|error| ApiError::internal(anyhow::anyhow!("import event {seq}: {error}")))?;
    value["list"]
        .as_str()
        .and_then(|text| Uuid::parse_str(text).ok())
        .ok_or_else(|| ApiError::internal(anyhow::anyhow!("event {seq} is not a payment list import")))
}

/// The duplicate warnings of an import's rows, by row.
pub async fn warnings(
    state: &AppState,
    programme: &ProgrammeCode,
    planned_on: chrono::NaiveDate,
    rows: &[(u32, Option<u64>, BeneficiaryRef)],
) -> Result<Vec<RowProblem>, ApiError> {
    let returnees: Vec<BeneficiaryRef> = rows.iter().map(|(_, _, returnee)| returnee.clone()).collect();
    let mut connection = connection(state).await?;
    let mut found = std::collections::BTreeMap::new();
    for chunk in returnees.chunks(lists::ASSISTANCE_QUERY_REFS_MAX) {
        let earlier = lists::earlier_assistance(&mut connection, programme, chunk, planned_on, DUPLICATE_WINDOW_DAYS)
            .await
            .map_err(database)?;
        found.extend(earlier);
    }
    let mut warnings = Vec::new();
    for (row, line, returnee) in rows {
        for assistance in found.get(returnee).into_iter().flatten() {
            let message = match assistance {
                EarlierAssistance::OtherProgramme { programme } => format!("already assisted by programme {programme}"),
                EarlierAssistance::SameProgrammeWithin { assisted_on } => format!(
                    "already assisted by this programme on {assisted_on}, within {DUPLICATE_WINDOW_DAYS} days of the planned day"
                ),
            };
            warnings.push(RowProblem::at(*row, *line, "case_id", message));
        }
    }
    Ok(warnings)
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ListsQuery {
    /// Only the lists of this programme.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    pub programme: Option<String>,
    /// Only the lists in this status.
    #[param(value_type = Option<String>)]
    #[serde(default)]
    pub status: Option<String>,
    /// Only lists imported after this seq (the `imported_seq` of the last list of the previous page).
    #[serde(default, deserialize_with = "super::params::after::optional")]
    #[param(value_type = Option<u64>, minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
}

/// The payment lists, oldest first, a page at a time
#[utoipa::path(get, path = "/v1/payment-lists", params(ListsQuery),
    responses((status = 200, body = PaymentListsAnswer), (status = 403, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn list_payment_lists(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ListsQuery>,
) -> Result<Response, ApiError> {
    let programme = query.programme.as_deref().map(ProgrammeCode::parse).transpose()?;
    let status = match query.status.as_deref() {
        None => None,
        Some(text) => Some(PaymentListStatus::parse(text).ok_or_else(|| {
            ApiError::BadRequest("status must be imported, approved, released, closed or cancelled".to_string())
        })?),
    };
    let donor = donor_scope(&caller)?;
    let closed_day = match donor {
        Some(_) => Some(donor_closed_day(&state).await?),
        None => None,
    };
    let mut connection = connection(&state).await?;
    let summaries = lists::payment_lists(
        &mut connection,
        programme.as_ref().map(ProgrammeCode::as_str),
        status,
        query.after.unwrap_or(0),
        lists::PAYMENT_LISTS_PAGE_MAX,
    )
    .await
    .map_err(database)?;
    let lists = summaries
        .into_iter()
        .filter(|summary| donor.is_none_or(|donor| summary.donor == donor))
        .filter(|summary| closed_day.is_none_or(|seq| summary.updated_seq <= seq))
        .map(|summary| if donor.is_some() { for_donor(summary_view(summary)) } else { summary_view(summary) })
        .collect();
    Ok(axum::Json(PaymentListsAnswer { lists }).into_response())
}

/// The last seq of the last closed UTC day: donors see a list only once
/// its latest change is in a closed day, so that its live figures are the
/// figures of that day, as every other donor read.
async fn donor_closed_day(state: &AppState) -> Result<u64, ApiError> {
    let none = super::as_of::AsOf { as_of_seq: None, as_of: None };
    match super::as_of::resolve(state, Role::Donor, &none).await? {
        super::as_of::Point::Seq(seq, _) => Ok(seq),
        super::as_of::Point::Live => unreachable!("donor figures always stand at a closed day"),
    }
}

/// The donor a caller is kept to (`None`: every list), or 403.
fn donor_scope(caller: &Caller) -> Result<Option<&str>, ApiError> {
    if caller.0.role == Role::Donor {
        let donor = caller.0.donor.as_ref().ok_or_else(|| ApiError::Forbidden("a donor token has no donor".to_string()))?;
        return Ok(Some(donor.as_str()));
    }
    caller.require(&READERS)?;
    Ok(None)
}

/// The list of a path: its id is a UUID the ledger knows (404 otherwise).
fn list_id(text: &str) -> Result<Uuid, ApiError> {
    Uuid::parse_str(text).map_err(|_| no_list())
}

/// One payment list: status, approvals, totals and each row's outcome (donors: totals only)
#[utoipa::path(get, path = "/v1/payment-lists/{id}", params(("id" = String, Path, description = "the list's id")),
    responses((status = 200, body = PaymentListView), (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 422, body = super::error::Problem, description = "a donor asks for a list that changed today (UTC)")),
    security(("bearer" = [])))]
pub async fn payment_list(State(state): State<AppState>, caller: Caller, Path(id): Path<String>) -> Result<Response, ApiError> {
    let donor = donor_scope(&caller)?;
    let id = list_id(&id)?;
    let mut connection = connection(&state).await?;
    if let Some(donor) = donor {
        let summary = lists::payment_list_summary(&mut connection, id).await.map_err(database)?;
        // A donor is told no more of another donor's list than that it is not its own to read.
        let summary = summary.filter(|summary| summary.donor == donor).ok_or_else(no_list)?;
        drop(connection);
        if summary.updated_seq > donor_closed_day(&state).await? {
            return Err(ApiError::NotReached(
                "this list changed today (UTC); donors see a list's figures once the day of its latest change has closed"
                    .to_string(),
            ));
        }
        return Ok(axum::Json(for_donor(summary_view(summary))).into_response());
    }
    let detail = lists::payment_list(&mut connection, id).await.map_err(database)?.ok_or_else(no_list)?;
    Ok(axum::Json(detail_view(detail)).into_response())
}

/// The instruction file for the payment provider: reference, amount, currency, method
#[utoipa::path(get, path = "/v1/payment-lists/{id}/instructions", params(("id" = String, Path, description = "the list's id")),
    responses((status = 200, content_type = "text/csv", body = String, description = "the instruction file, one line per row"),
        (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem),
        (status = 409, body = super::error::Problem, description = "the list is not released, or was cancelled")),
    security(("bearer" = [])))]
pub async fn instructions_file(
    State(state): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::FinanceOfficer])?;
    let id = list_id(&id)?;
    let mut connection = connection(&state).await?;
    let summary = lists::payment_list_summary(&mut connection, id).await.map_err(database)?.ok_or_else(no_list)?;
    if matches!(summary.status, PaymentListStatus::Imported | PaymentListStatus::Approved | PaymentListStatus::Cancelled) {
        return Err(ApiError::Conflict(format!(
            "payment list {id} is {}: its instruction file exists once it is released, and not after a cancellation",
            summary.status.as_str()
        )));
    }
    let rows = lists::payment_instructions(&mut connection, id).await.map_err(database)?.ok_or_else(no_list)?;
    let mut file_rows = Vec::with_capacity(rows.len());
    for row in rows {
        let paid = ledger_core::domain::Money::parse(row.amount, row.currency)
            .map_err(|error| ApiError::internal(anyhow::anyhow!("instruction of row {}: {error}", row.row)))?;
        file_rows.push(Instruction { reference: row.reference, paid, method: row.method });
    }
    let mut response = instructions::write(&file_rows).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    let disposition = format!("attachment; filename=\"payment-list-{id}-instructions.csv\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, value);
    }
    Ok(response)
}

/// Rows of an import for its warnings: (row, line, returnee).
pub fn warning_rows(rows: &[crate::payments::list_file::ListRow]) -> Vec<(u32, Option<u64>, BeneficiaryRef)> {
    rows.iter().map(|row| (row.row, row.line, row.beneficiary.clone())).collect()
}

/// Lines of a file's rows by row number.
pub type Lines = HashMap<u32, u64>;
