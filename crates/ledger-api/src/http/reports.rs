//! The report endpoints: a programme's financial statement for one donor
//! (CSV, XLSX or JSON, chosen by `Accept`). A report is made whole before
//! the first byte is answered: a refusal is a problem, never a partial file.
//!
//! Donors get what they get everywhere (see `as_of`): figures as of the end
//! of a closed UTC day, of their own funding only, of programmes they fund.

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use ledger_core::domain::{Currency, DonorCode, ProgrammeCode};
use serde::Deserialize;
use utoipa::IntoParams;

use super::AppState;
use super::auth::{Caller, READERS};
use super::error::{ApiError, Problem};
use super::params;
use super::params::QueryParams;
use crate::reports::iati::{self, IatiRequest};
use crate::reports::statement::{self, Period, StatementView};
use crate::reports::statement_files::{self, XLSX_CONTENT_TYPE};
use crate::reports::{self, ReportError};
use crate::tokens::Role;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct StatementQuery {
    /// The programme's code.
    #[param(value_type = String)]
    pub programme: String,
    /// The donor's code (a donor token: its own).
    #[param(value_type = String)]
    pub donor: String,
    /// The first UTC day of the period.
    #[serde(deserialize_with = "params::period_from")]
    #[param(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub from: NaiveDate,
    /// The last UTC day of the period, not before `from`; at most today
    /// (for a donor, at most yesterday).
    #[serde(deserialize_with = "params::period_to")]
    #[param(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub to: NaiveDate,
}

/// The formats a statement is written in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatementFormat {
    Csv,
    Xlsx,
    Json,
}

impl StatementFormat {
    /// The first media type of `Accept` that names a format (`*/*`,
    /// `text/*` or no header: CSV); none is a 406.
    pub fn from_accept(headers: &HeaderMap) -> Result<StatementFormat, ApiError> {
        let Some(accept) = headers.get(header::ACCEPT) else { return Ok(StatementFormat::Csv) };
        let accept = accept.to_str().map_err(|_| ApiError::BadRequest("the Accept header is not ASCII text".to_string()))?;
        for media in accept.split(',') {
            let media_type = media.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
            match media_type.as_str() {
                "text/csv" | "text/*" | "*/*" => return Ok(StatementFormat::Csv),
                XLSX_CONTENT_TYPE => return Ok(StatementFormat::Xlsx),
                "application/json" => return Ok(StatementFormat::Json),
                _ => {}
            }
        }
        Err(ApiError::NotAcceptable(format!("a statement is text/csv, {XLSX_CONTENT_TYPE} or application/json")))
    }
}

/// What a caller may ask: the checks of the module doc, in the order of
/// their statuses (the form of each field, then contradictions, then scope,
/// then what exists).
async fn checked_period(state: &AppState, caller: &Caller, query: &StatementQuery) -> Result<Period, ApiError> {
    let programme = ProgrammeCode::parse(&query.programme)?;
    let donor = DonorCode::parse(&query.donor)?;
    if query.from > query.to {
        return Err(ApiError::Inconsistent(format!("from ({}) is after to ({})", query.from, query.to)));
    }
    let today = state.clock.today();
    let yesterday = today.pred_opt().unwrap_or(today);
    if caller.0.role == Role::Donor {
        if caller.0.donor.as_ref() != Some(&donor) {
            return Err(ApiError::Forbidden("a donor token reads only its own statements".to_string()));
        }
        if query.to > yesterday {
            return Err(ApiError::NotReached(format!(
                "donor figures stand at the end of a closed UTC day: to may be at most {yesterday}"
            )));
        }
        if !reports::donor_funds(&state.ledger.store, &donor, &programme).await? {
            return Err(ApiError::Forbidden(format!("donor {donor} does not fund programme {programme}")));
        }
    } else {
        caller.require(&READERS)?;
        if query.to > today {
            return Err(ApiError::NotReached(format!(
                "to {} is after today ({today}, UTC); the ledger has no figures for it yet",
                query.to
            )));
        }
    }
    Ok(Period { programme, donor, from: query.from, to: query.to })
}

/// Folds the statement of a checked period.
pub async fn make_statement(store: &ledger_core::store::Store, period: &Period) -> Result<statement::Statement, ReportError> {
    let currency = reports::programme_currency(store, &period.programme).await?;
    let currency = Currency::parse(&currency)
        .map_err(|error| ReportError::Corrupt { seq: 0, reason: format!("programme currency: {error}") })?;
    if !reports::donor_exists(store, &period.donor).await? {
        return Err(ReportError::UnknownDonor(period.donor.clone()));
    }
    if !reports::donor_funds(store, &period.donor, &period.programme).await? {
        return Err(ReportError::NotFunded { programme: period.programme.clone(), donor: period.donor.clone() });
    }
    // The period's dates are within 1990..2099, so the day before exists.
    let opening_seq = match period.from.pred_opt() {
        Some(day_before) => reports::last_seq_through(store, day_before).await?,
        None => 0,
    };
    let closing_seq = reports::last_seq_through(store, period.to).await?;
    statement::statement(store, period, currency, opening_seq, closing_seq).await
}

fn attachment(body: Vec<u8>, content_type: &'static str, file_name: String) -> Response {
    let mut response = body.into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    if let Ok(disposition) = HeaderValue::from_str(&format!("attachment; filename=\"{file_name}\"")) {
        response.headers_mut().insert(header::CONTENT_DISPOSITION, disposition);
    }
    response
}

/// A programme's financial statement for one donor over a period of UTC
/// days (`from` to `to`, by the day events were recorded): the opening
/// position, commitments, receipts, allocations, disbursements by country
/// and kind, reversals, and the closing position, which is the balance as
/// of `to`. `Accept` chooses CSV (the default), XLSX or JSON.
#[utoipa::path(get, path = "/v1/reports/statement", params(StatementQuery),
    responses(
        (status = 200, description = "the statement", content(
            (String = "text/csv"),
            (Vec<u8> = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
            (StatementView = "application/json"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 406, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn statement(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(query): QueryParams<StatementQuery>,
) -> Result<Response, ApiError> {
    let format = StatementFormat::from_accept(&headers)?;
    let period = checked_period(&state, &caller, &query).await?;
    let statement = make_statement(&state.ledger.store, &period).await?;
    let file_name = format!("statement-{}-{}-{}-{}", period.programme, period.donor, period.from, period.to);
    Ok(match format {
        StatementFormat::Csv => attachment(statement_files::to_csv(&statement)?, "text/csv", format!("{file_name}.csv")),
        StatementFormat::Xlsx => {
            attachment(statement_files::to_xlsx(&statement)?, XLSX_CONTENT_TYPE, format!("{file_name}.xlsx"))
        }
        StatementFormat::Json => axum::Json(StatementView::of(&statement)).into_response(),
    })
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct IatiQuery {
    /// Only this programme (default: every programme the caller may see;
    /// a donor token must name one it funds).
    #[param(required = false, value_type = String)]
    pub programme: Option<String>,
}

/// The IATI 2.03 activity file: one `iati-activity` per programme, valid
/// against the IATI 2.03 schema. Commitments are incoming commitments (11),
/// receipts incoming funds (1), disbursements expenditure (4) summed per
/// country, month and kind. A donor gets the programme it funds, its own
/// funding and spending only, as of the end of yesterday (UTC).
#[utoipa::path(get, path = "/v1/reports/iati", params(IatiQuery),
    responses(
        (status = 200, description = "the IATI activity file", content((String = "application/xml"))),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem),
        (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn iati(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<IatiQuery>,
) -> Result<Response, ApiError> {
    let programme = query.programme.as_deref().map(ProgrammeCode::parse).transpose()?;
    let today = state.clock.today();
    let (donor, day) = match caller.0.role {
        Role::Donor => {
            let donor = caller.0.donor.clone().ok_or(ApiError::Unauthorized)?;
            let Some(programme) = &programme else {
                return Err(ApiError::Forbidden(
                    "a donor token reads the file of one programme it funds: give ?programme=CODE".to_string(),
                ));
            };
            if !reports::donor_funds(&state.ledger.store, &donor, programme).await? {
                return Err(ApiError::Forbidden(format!("donor {donor} does not fund programme {programme}")));
            }
            (Some(donor), today.pred_opt().unwrap_or(today))
        }
        _ => {
            caller.require(&READERS)?;
            (None, today)
        }
    };
    let organisation = state.ledger.reporting_org.clone().ok_or_else(|| {
        ApiError::Unavailable(
            "IATI files need the reporting organisation: start the server with LEDGER_IATI_ORG_REF and LEDGER_IATI_ORG_NAME"
                .to_string(),
        )
    })?;
    let until = match donor {
        Some(_) => reports::last_seq_through(&state.ledger.store, day).await?,
        None => state.ledger.store.head().await?.0,
    };
    let request = IatiRequest { programme, donor, until, day };
    let file = iati::iati_file(&state.ledger.store, &organisation, &request).await?;
    let name = request.programme.as_ref().map_or("iati-activities".to_string(), |code| format!("iati-{code}"));
    Ok(attachment(file, "application/xml", format!("{name}.xml")))
}
