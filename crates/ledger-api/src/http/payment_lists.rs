//! The payment list routes: import (CSV or JSON), approvals, release, the
//! provider's instruction file, confirmations, cancellation, and the reads.
//! Files are read in `payments`; the lifecycle, money and four-eyes rules
//! are the domain's (`ledger_core::domain::payment_lists`). A refused file
//! is a 422 with its report by row (problem+json, or CSV with
//! `Accept: text/csv`); a transition the list's status, its approvals or
//! four-eyes refuse is a 409 naming why, as every conflict of the ledger.

use std::collections::HashMap;

use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use ledger_core::domain::payment_lists::{self as domain_lists, Delivery};
use ledger_core::domain::{Command, CountryCode, DomainError, DonorCode, ProgrammeCode};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};
use uuid::Uuid;

use super::AppState;
use super::auth::WriteCaller;
use super::error::{ApiError, FileRefusal};
use super::params::QueryParams;
use super::payment_list_reads::{self, PaymentListView};
use super::writes::{self, Appended, CommandOutcome};
use crate::payments::confirmation_file::{self, CONFIRMATION_BODY_BYTES_MAX};
use crate::payments::list_file::{self, ListRow, PAYMENT_LIST_BODY_BYTES_MAX};
use crate::payments::references;
use crate::payments::report::{Report, RowProblem};
use crate::payments::table::FileError;
use crate::tokens::Role;

/// Largest body of an approval or a cancellation (a JSON object of one
/// field): room for a reason of 500 characters written as JSON escapes.
pub const TRANSITION_BODY_BYTES_MAX: usize = 64 * 1024;

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ImportQuery {
    /// The programme's code.
    #[param(value_type = String)]
    pub programme: String,
    /// The donor of the budget line.
    #[param(value_type = String)]
    pub donor: String,
    /// The country of the budget line (ISO 3166-1 alpha-2).
    #[param(value_type = String)]
    pub country: String,
    /// The day the payments are planned for.
    #[serde(deserialize_with = "super::params::planned_on")]
    #[param(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub planned_on: NaiveDate,
}

/// The answer to an import.
#[derive(Serialize, ToSchema)]
pub struct Imported {
    #[schema(value_type = String, format = Uuid)]
    pub id: Uuid,
    #[schema(example = "imported")]
    pub status: String,
    pub rows: u32,
    /// Sum of the rows' amounts, in the programme's currency.
    #[schema(example = "1600.00")]
    pub total: String,
    /// What the list holds on its budget line.
    #[schema(example = "1600.00")]
    pub held: String,
    /// Not refusals: returnees already assisted by another programme, or by
    /// this one within the duplicate window, by row.
    pub warnings: Vec<RowProblem>,
    /// The import event.
    pub event: Appended,
}

/// The answer to a transition: the events it recorded (none for a
/// confirmation file sent again) and the list's figures as they now stand
/// (its approvals and rows are read with `GET /v1/payment-lists/{id}`).
#[derive(Serialize, ToSchema)]
pub struct Transition {
    pub events: Vec<Appended>,
    pub list: PaymentListView,
}

/// A payment list as JSON: the rows of the CSV file, each field a string.
#[derive(ToSchema)]
pub struct PaymentListRequest {
    pub rows: Vec<PaymentListRowRequest>,
}

/// One row of a payment list sent as JSON.
#[derive(ToSchema)]
pub struct PaymentListRowRequest {
    /// The implementer's case number; only its pseudonym is stored.
    #[schema(example = "MA-2026-000201")]
    pub case_id: String,
    /// Charged to the budget line, in the programme's currency.
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "350.00")]
    pub amount: String,
    /// What the returnee is to receive, in `paid_currency`.
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "3815.00")]
    pub paid_amount: String,
    #[schema(example = "MAD")]
    pub paid_currency: String,
    #[schema(example = "mobile_money")]
    pub method: String,
    /// The implementer's own reference for the row: never personal data.
    #[schema(max_length = 64)]
    pub row_reference: Option<String>,
}

/// The optional body of an approval.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalRequest {
    /// The content hash of the list approved (`content_hash` of the list):
    /// the approval is refused if the list is not that content. Left out,
    /// the list's own is named.
    #[serde(default)]
    pub content_hash: Option<String>,
}

/// The optional body of a cancellation.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CancellationRequest {
    /// Why the list is cancelled (one line of text).
    #[serde(default)]
    pub reason: Option<String>,
}

/// The reason recorded when a cancellation gives none.
pub const DEFAULT_CANCELLATION_REASON: &str = "cancelled before payment";

fn is_media(headers: &HeaderMap, media: &str) -> bool {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    content_type.split(';').next().is_some_and(|found| found.trim().eq_ignore_ascii_case(media))
}

/// Whether the report of a refused file is asked for as CSV: `text/csv`
/// named in `Accept` before any JSON type.
fn report_as_csv(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|value| value.to_str().ok()) else { return false };
    for media in accept.split(',') {
        match media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase().as_str() {
            "text/csv" => return true,
            "application/json" | "application/problem+json" => return false,
            _ => {}
        }
    }
    false
}

async fn read_body(body: Body, bytes_max: usize) -> Result<Bytes, ApiError> {
    axum::body::to_bytes(body, bytes_max).await.map_err(|_| ApiError::PayloadTooLarge(bytes_max))
}

/// A file that cannot be read as its kind is refused whole like one with
/// row problems: 422 with a report of one problem, at its line.
fn file_error(error: FileError, as_csv: bool, kind: &str, title: &str) -> ApiError {
    let line = match error {
        FileError::NotUtf8 { line } | FileError::BadQuoting { line, .. } | FileError::WrongCellCount { line, .. } => Some(line),
        _ => None,
    };
    let row = match error {
        FileError::WrongCellCount { row, .. } => Some(row),
        _ => None,
    };
    let problem = RowProblem { row, line, column: None, message: error.to_string() };
    refused(Report { errors: vec![problem], warnings: Vec::new() }, as_csv, kind, title, "nothing was recorded")
}

fn refused(report: Report, as_csv: bool, kind: &str, title: &str, consequence: &str) -> ApiError {
    ApiError::FileRefused(Box::new(FileRefusal { document: report.document(kind, title, consequence), as_csv }))
}

fn refused_list(report: Report, as_csv: bool) -> ApiError {
    refused(report, as_csv, "payment-list-refused", "The payment list was refused", "nothing was recorded and nothing is held")
}

fn refused_confirmation(report: Report, as_csv: bool) -> ApiError {
    refused(report, as_csv, "confirmation-refused", "The confirmation file was refused", "nothing was recorded")
}

/// Reads the rows of an import body, CSV or JSON, or refuses the file.
fn list_rows(
    state: &AppState,
    headers: &HeaderMap,
    bytes: &[u8],
    currency: ledger_core::domain::Currency,
) -> Result<Vec<ListRow>, ApiError> {
    let keys = &state.ledger.keys;
    let rows = if is_media(headers, "text/csv") {
        list_file::rows_from_csv(bytes, keys, currency)
            .map_err(|error| file_error(error, report_as_csv(headers), "payment-list-refused", "The payment list was refused"))?
    } else if is_media(headers, "application/json") {
        let value = super::input::json_with_unique_keys(bytes)?;
        list_file::rows_from_json(&value, keys, currency).map_err(ApiError::BadRequest)?
    } else {
        return Err(ApiError::UnsupportedMediaTypeOf("send the payment list as text/csv or application/json".to_string()));
    };
    rows.map_err(|report| refused_list(report, report_as_csv(headers)))
}

/// Import a payment list for one budget line and hold its total
#[utoipa::path(post, path = "/v1/payment-lists", params(ImportQuery,
        ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: the same key, query and body answer the first answer again")),
    request_body(content(
        (String = "text/csv", example = "case_id,amount,paid_amount,paid_currency,method,row_reference\nMA-2026-000201,350.00,3815.00,MAD,mobile_money,cycle 12/1\n"),
        (PaymentListRequest = "application/json"))),
    responses((status = 201, body = Imported), (status = 422, body = crate::payments::report::RefusalDocument,
        description = "the list was refused whole: every problem by row and column (as CSV with Accept: text/csv); nothing is held")),
    security(("bearer" = [])))]
pub async fn import(
    State(state): State<AppState>,
    caller: WriteCaller,
    QueryParams(query): QueryParams<ImportQuery>,
    headers: HeaderMap,
    uri: axum::http::Uri,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::FinanceOfficer])?;
        let programme = ProgrammeCode::parse(&query.programme)?;
        let donor = DonorCode::parse(&query.donor)?;
        let country = CountryCode::parse(&query.country)?;
        let bytes = read_body(body, PAYMENT_LIST_BODY_BYTES_MAX).await?;
        let currency = payment_list_reads::programme_currency(&state, &programme).await?;
        let rows = list_rows(&state, &headers, &bytes, currency)?;
        let lines = list_file::lines(&rows);
        let request = [
            uri.to_string().as_bytes(),
            b"\n",
            headers.get(header::CONTENT_TYPE).map(HeaderValue::as_bytes).unwrap_or_default(),
            b"\n",
            &bytes,
        ]
        .concat();
        let idempotency = writes::idempotency_claim_of(&state.ledger.keys, &headers, &request)?;
        let warning_rows = payment_list_reads::warning_rows(&rows);
        let command = Command::ImportPaymentList {
            list: Uuid::now_v7(),
            by: caller.principal.name.clone(),
            programme: programme.clone(),
            donor,
            country,
            planned_on: query.planned_on,
            rows: rows.iter().map(ListRow::to_domain).collect(),
        };
        let receipt = match writes::append_command(&state, &caller, command, idempotency).await? {
            CommandOutcome::Recorded(mut receipts) => {
                receipts.pop().ok_or_else(|| ApiError::internal(anyhow::anyhow!("an import gave no receipt")))?
            }
            CommandOutcome::Unchanged => return Err(ApiError::internal(anyhow::anyhow!("an import recorded nothing"))),
            CommandOutcome::Refused(DomainError::PaymentListInvalid { problems }) => {
                return Err(refused_list(Report::from_domain(problems, &lines), report_as_csv(&headers)));
            }
            CommandOutcome::Refused(error) => return Err(error.into()),
        };
        let id = payment_list_reads::list_of_event(&state, receipt.seq).await?;
        let view = payment_list_reads::summary(&state, id).await?;
        let warnings = payment_list_reads::warnings(&state, &programme, query.planned_on, &warning_rows).await?;
        let imported = Imported {
            id,
            status: view.status.clone(),
            rows: view.rows,
            total: view.total.clone(),
            held: view.held.clone(),
            warnings,
            event: writes::appended(receipt),
        };
        Ok((StatusCode::CREATED, axum::Json(imported)).into_response())
    };
    caller.unless_revoked(&state, answer.await).await
}

/// Reads an optional JSON body of a transition: empty is `None`.
async fn optional_json<T: serde::de::DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<(Option<T>, Bytes), ApiError> {
    let bytes = read_body(body, TRANSITION_BODY_BYTES_MAX).await?;
    if bytes.is_empty() {
        return Ok((None, bytes));
    }
    if !is_media(headers, "application/json") {
        return Err(ApiError::UnsupportedMediaType);
    }
    let value = super::input::json_with_unique_keys(&bytes)?;
    if value.is_null() {
        return Ok((None, bytes));
    }
    let parsed = serde_json::from_value(value).map_err(|error| ApiError::BadRequest(format!("body: {error}")))?;
    Ok((Some(parsed), bytes))
}

/// Appends a transition of list `id` and answers with the list as it stands.
async fn transition(
    state: &AppState,
    caller: &WriteCaller,
    headers: &HeaderMap,
    (path, body): (String, &[u8]),
    command: Command,
    refusal: impl FnOnce(DomainError) -> ApiError,
) -> Result<Response, ApiError> {
    let list = command_list(&command);
    let request = [path.as_bytes(), b"\n", body].concat();
    let idempotency = writes::idempotency_claim_of(&state.ledger.keys, headers, &request)?;
    let (status, events) = match writes::append_command(state, caller, command, idempotency).await? {
        CommandOutcome::Recorded(receipts) => (StatusCode::CREATED, receipts.into_iter().map(writes::appended).collect()),
        CommandOutcome::Unchanged => (StatusCode::OK, Vec::new()),
        CommandOutcome::Refused(error) => return Err(refusal(error)),
    };
    let list = payment_list_reads::summary(state, list).await?;
    Ok((status, axum::Json(Transition { events, list })).into_response())
}

fn command_list(command: &Command) -> Uuid {
    match command {
        Command::ApprovePaymentList { list, .. }
        | Command::ReleasePaymentList { list, .. }
        | Command::ConfirmPayments { list, .. }
        | Command::CancelPaymentList { list, .. } => *list,
        _ => unreachable!("only payment list transitions come here"),
    }
}

/// The list of a path, known to the ledger (404 otherwise).
async fn known_list(state: &AppState, id: &str) -> Result<PaymentListView, ApiError> {
    let id = Uuid::parse_str(id).map_err(|_| ApiError::NotFound("no payment list with that id".to_string()))?;
    payment_list_reads::summary(state, id).await
}

/// Approve a payment list (another finance officer than its importer)
#[utoipa::path(post, path = "/v1/payment-lists/{id}/approvals", request_body = Option<ApprovalRequest>,
    params(("id" = String, Path, description = "the list's id"), ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    responses((status = 201, body = Transition), (status = 409, body = super::error::Problem,
        description = "self-approval, a second approval by the same person, another content hash, or a list no longer open to approval")),
    security(("bearer" = [])))]
pub async fn approve(
    State(state): State<AppState>,
    caller: WriteCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::FinanceOfficer])?;
        let (request, bytes) = optional_json::<ApprovalRequest>(&headers, body).await?;
        let list = known_list(&state, &id).await?;
        let content_hash = request.and_then(|request| request.content_hash).unwrap_or(list.content_hash.clone());
        let command = Command::ApprovePaymentList { list: list.id, by: caller.principal.name.clone(), content_hash };
        transition(
            &state,
            &caller,
            &headers,
            (format!("/v1/payment-lists/{}/approvals", list.id), &bytes),
            command,
            ApiError::from,
        )
        .await
    };
    caller.unless_revoked(&state, answer.await).await
}

/// Cancel a payment list not yet closed: the hold of every row without an outcome is released
#[utoipa::path(post, path = "/v1/payment-lists/{id}/cancel", request_body = Option<CancellationRequest>,
    params(("id" = String, Path, description = "the list's id"), ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    responses((status = 201, body = Transition), (status = 409, body = super::error::Problem, description = "the list is closed or cancelled")),
    security(("bearer" = [])))]
pub async fn cancel(
    State(state): State<AppState>,
    caller: WriteCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::FinanceOfficer])?;
        let (request, bytes) = optional_json::<CancellationRequest>(&headers, body).await?;
        let list = known_list(&state, &id).await?;
        let reason = request.and_then(|request| request.reason).unwrap_or_else(|| DEFAULT_CANCELLATION_REASON.to_string());
        let reason = ledger_core::domain::types::parse_text("reason", &reason)?;
        let command = Command::CancelPaymentList { list: list.id, by: caller.principal.name.clone(), reason };
        transition(&state, &caller, &headers, (format!("/v1/payment-lists/{}/cancel", list.id), &bytes), command, ApiError::from)
            .await
    };
    caller.unless_revoked(&state, answer.await).await
}

/// Release an approved payment list: a payment reference per row
#[utoipa::path(post, path = "/v1/payment-lists/{id}/release",
    params(("id" = String, Path, description = "the list's id"), ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    responses((status = 201, body = Transition), (status = 409, body = super::error::Problem, description = "not approved yet, or not in a status that is released")),
    security(("bearer" = [])))]
pub async fn release(
    State(state): State<AppState>,
    caller: WriteCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::FinanceOfficer])?;
        let bytes = read_body(body, TRANSITION_BODY_BYTES_MAX).await?;
        if !bytes.is_empty() {
            return Err(ApiError::BadRequest("a release has no body".to_string()));
        }
        let list = known_list(&state, &id).await?;
        let references = references::new_references(list.rows as usize)
            .map_err(|error| ApiError::internal(anyhow::anyhow!("no randomness for payment references: {error}")))?;
        let references = references.into_iter().map(|reference| reference.as_str().to_string()).collect();
        let command = Command::ReleasePaymentList { list: list.id, by: caller.principal.name.clone(), references };
        transition(&state, &caller, &headers, (format!("/v1/payment-lists/{}/release", list.id), &bytes), command, ApiError::from)
            .await
    };
    caller.unless_revoked(&state, answer.await).await
}

/// Record the provider's confirmation file (or one part of it)
#[utoipa::path(post, path = "/v1/payment-lists/{id}/confirmations",
    params(("id" = String, Path, description = "the list's id"), ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    request_body(content = String, content_type = "text/csv",
        example = "reference,status,delivered_amount,delivered_on,provider_txn_id\n0K4M7Q2W9XRT5V3B8N6C1D0FHJ,delivered,3815.00,2026-12-03,MM-1\n"),
    responses((status = 201, body = Transition, description = "rows confirmed"), (status = 200, body = Transition, description = "every row was confirmed so already: nothing recorded"),
        (status = 409, body = super::error::Problem, description = "the list is not released"),
        (status = 422, body = crate::payments::report::RefusalDocument, description = "the file was refused whole: every problem by row (as CSV with Accept: text/csv); nothing recorded")),
    security(("bearer" = [])))]
pub async fn confirm(
    State(state): State<AppState>,
    caller: WriteCaller,
    Path(id): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::FinanceOfficer])?;
        if !is_media(&headers, "text/csv") {
            return Err(ApiError::UnsupportedMediaTypeOf("send the confirmation file as text/csv".to_string()));
        }
        let list = known_list(&state, &id).await?;
        let bytes = read_body(body, CONFIRMATION_BODY_BYTES_MAX).await?;
        let as_csv = report_as_csv(&headers);
        let confirmations = confirmation_file::read(&bytes)
            .map_err(|error| file_error(error, as_csv, "confirmation-refused", "The confirmation file was refused"))?
            .map_err(|report| refused_confirmation(report, as_csv))?;
        let lines: HashMap<u32, u64> = confirmations.iter().map(|row| (row.row, row.line)).collect();
        let confirmations = confirmations
            .into_iter()
            .map(|row| domain_lists::Confirmation {
                line: row.row,
                reference: row.reference.as_str().to_string(),
                delivery: match row.delivery {
                    confirmation_file::Delivery::Delivered { amount } => Delivery::Delivered { amount },
                    confirmation_file::Delivery::Failed => Delivery::Failed,
                },
                delivered_on: row.delivered_on,
                provider_transaction_id: row.provider_txn_id,
            })
            .collect();
        let command = Command::ConfirmPayments { list: list.id, by: caller.principal.name.clone(), confirmations };
        let path = format!("/v1/payment-lists/{}/confirmations", list.id);
        let refusal = |error: DomainError| match error {
            DomainError::ConfirmationRefused { problems, .. } => {
                refused_confirmation(Report::from_domain(problems, &lines), as_csv)
            }
            other => other.into(),
        };
        transition(&state, &caller, &headers, (path, &bytes), command, refusal).await
    };
    caller.unless_revoked(&state, answer.await).await
}

/// The body setting a programme's approvals.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ApprovalsRequiredRequest {
    /// Approvals each payment list of the programme needs from now on
    /// (lists already imported keep the number they were imported with).
    #[serde(deserialize_with = "super::input::whole_number")]
    #[schema(minimum = 1, maximum = 10)]
    pub approvals_required: u64,
}

/// Set how many approvals the programme's payment lists need (admin)
#[utoipa::path(post, path = "/v1/programmes/{code}/approvals-required", request_body = ApprovalsRequiredRequest,
    params(("code" = String, Path, description = "the programme's code"), ("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    responses((status = 201, body = Appended)),
    security(("bearer" = [])))]
pub async fn set_approvals_required(
    State(state): State<AppState>,
    caller: WriteCaller,
    Path(code): Path<String>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        caller.require(&[Role::Admin])?;
        let programme = ProgrammeCode::parse(&code)?;
        let (request, value): (ApprovalsRequiredRequest, serde_json::Value) = writes::read_json(&headers, body).await?;
        let approvals_required = approvals_required(request.approvals_required)?;
        let request = format!("/v1/programmes/{programme}/approvals-required\n{value}");
        let idempotency = writes::idempotency_claim_of(&state.ledger.keys, &headers, request.as_bytes())?;
        let command = Command::SetProgrammeApprovals { programme, approvals_required };
        match writes::append_command(&state, &caller, command, idempotency).await? {
            CommandOutcome::Recorded(mut receipts) => {
                let receipt = receipts.pop().ok_or_else(|| ApiError::internal(anyhow::anyhow!("no receipt")))?;
                Ok((StatusCode::CREATED, axum::Json(writes::appended(receipt))).into_response())
            }
            CommandOutcome::Unchanged => Err(ApiError::internal(anyhow::anyhow!("setting approvals recorded nothing"))),
            CommandOutcome::Refused(error) => Err(error.into()),
        }
    };
    caller.unless_revoked(&state, answer.await).await
}

/// A number of approvals as the domain takes it: 1 to `APPROVALS_REQUIRED_MAX`.
pub fn approvals_required(number: u64) -> Result<u32, ApiError> {
    let most = domain_lists::APPROVALS_REQUIRED_MAX;
    u32::try_from(number)
        .ok()
        .filter(|number| (1..=most).contains(number))
        .ok_or_else(|| ApiError::BadRequest(format!("approvals_required must be a whole number from 1 to {most}")))
}
