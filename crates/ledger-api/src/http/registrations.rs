//! What exists: the programmes and donors registered, each role on its
//! scope. A donor sees the programmes it funds and itself.

use axum::Json;
use axum::extract::{Path, State};
use ledger_core::domain::{DonorCode, ProgrammeCode};
use ledger_core::store::StoreError;
use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use utoipa::ToSchema;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Problem};
use crate::tokens::Role;

/// A programme's registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProgrammeView {
    #[schema(example = "MOTUSE")]
    pub code: String,
    pub name: String,
    /// ISO 4217: every amount of the programme is in it.
    #[schema(example = "EUR")]
    pub currency: String,
    /// ISO 3166-1 alpha-2 codes.
    pub countries: Vec<String>,
    pub implementer: String,
    #[schema(format = Date)]
    pub starts_on: String,
    #[schema(format = Date)]
    pub ends_on: String,
    /// The seq of its registration event.
    pub registered_seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProgrammeList {
    pub programmes: Vec<ProgrammeView>,
}

/// A donor's registration.
#[derive(Debug, Serialize, ToSchema)]
pub struct DonorView {
    #[schema(example = "EU-AMIF")]
    pub code: String,
    pub name: String,
    /// eu_instrument, national_donor, ...
    pub kind: String,
    /// Its IATI organisation identifier, when one was registered with it.
    #[schema(example = "XI-IATI-EC_INTPA")]
    pub iati_identifier: Option<String>,
    pub registered_seq: u64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DonorList {
    pub donors: Vec<DonorView>,
}

const PROGRAMME_COLUMNS: &str = "code, name, currency, countries, implementer, starts_on, ends_on, registered_seq";

fn programme_of_row(row: &AnyRow) -> Result<ProgrammeView, sqlx::Error> {
    let countries: String = row.try_get("countries")?;
    let registered_seq: i64 = row.try_get("registered_seq")?;
    Ok(ProgrammeView {
        code: row.try_get("code")?,
        name: row.try_get("name")?,
        currency: row.try_get("currency")?,
        countries: countries.split(',').filter(|code| !code.is_empty()).map(str::to_string).collect(),
        implementer: row.try_get("implementer")?,
        starts_on: row.try_get("starts_on")?,
        ends_on: row.try_get("ends_on")?,
        registered_seq: u64::try_from(registered_seq).unwrap_or_default(),
    })
}

/// The donor a donor token is scoped to; `None` for every other role.
fn donor_scope(caller: &Caller) -> Result<Option<DonorCode>, ApiError> {
    match caller.0.role {
        Role::Donor => caller.0.donor.clone().map(Some).ok_or(ApiError::Unauthorized),
        _ => Ok(None),
    }
}

/// Every programme registered, in code order; a donor's token lists the
/// programmes it funds.
#[utoipa::path(get, path = "/v1/programmes",
    responses((status = 200, body = ProgrammeList), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_programmes(State(state): State<AppState>, caller: Caller) -> Result<Json<ProgrammeList>, ApiError> {
    let pool = state.ledger.store.pool();
    let rows = match donor_scope(&caller)? {
        Some(donor) => sqlx::query(&format!(
            "SELECT {PROGRAMME_COLUMNS} FROM programmes WHERE code IN (SELECT programme FROM funding WHERE donor = $1) ORDER BY code"
        ))
        .bind(donor.as_str().to_string())
        .fetch_all(pool)
        .await,
        None => sqlx::query(&format!("SELECT {PROGRAMME_COLUMNS} FROM programmes ORDER BY code")).fetch_all(pool).await,
    }
    .map_err(StoreError::from)?;
    let programmes = rows.iter().map(programme_of_row).collect::<Result<_, _>>().map_err(ApiError::internal)?;
    Ok(Json(ProgrammeList { programmes }))
}

/// A programme's registration: name, currency, countries, implementer and
/// dates. A donor's token reads only programmes it funds.
#[utoipa::path(get, path = "/v1/programmes/{code}", params(("code" = String, Path)),
    responses((status = 200, body = ProgrammeView), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn programme(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
) -> Result<Json<ProgrammeView>, ApiError> {
    let programme = ProgrammeCode::parse(&code)?;
    let pool = state.ledger.store.pool();
    if let Some(donor) = donor_scope(&caller)? {
        if !crate::reports::donor_funds(&state.ledger.store, &donor, &programme).await? {
            return Err(ApiError::Forbidden(format!("donor {donor} does not fund programme {programme}")));
        }
    }
    let row = sqlx::query(&format!("SELECT {PROGRAMME_COLUMNS} FROM programmes WHERE code = $1"))
        .bind(programme.as_str().to_string())
        .fetch_optional(pool)
        .await
        .map_err(StoreError::from)?
        .ok_or_else(|| ApiError::NotFound(format!("unknown programme {programme}")))?;
    Ok(Json(programme_of_row(&row).map_err(ApiError::internal)?))
}

/// Donors with the payload of their registration event, which holds the
/// IATI identifier (the `donors` table does not).
const DONOR_QUERY: &str = "SELECT donors.code, donors.name, donors.kind, donors.registered_seq, events.payload \
     FROM donors JOIN events ON events.seq = donors.registered_seq";

/// The IATI identifier of a `donor_registered` payload.
fn iati_identifier_of(payload: &str) -> Result<Option<String>, ApiError> {
    let value: serde_json::Value = serde_json::from_str(payload).map_err(ApiError::internal)?;
    Ok(value.get("iati_identifier").and_then(serde_json::Value::as_str).map(str::to_string))
}

/// Every donor registered, in code order, each with its IATI organisation
/// identifier if one was registered; a donor's token lists itself.
#[utoipa::path(get, path = "/v1/donors",
    responses((status = 200, body = DonorList), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn list_donors(State(state): State<AppState>, caller: Caller) -> Result<Json<DonorList>, ApiError> {
    let pool = state.ledger.store.pool();
    let rows = match donor_scope(&caller)? {
        Some(donor) => {
            sqlx::query(&format!("{DONOR_QUERY} WHERE donors.code = $1")).bind(donor.as_str().to_string()).fetch_all(pool).await
        }
        None => sqlx::query(&format!("{DONOR_QUERY} ORDER BY donors.code")).fetch_all(pool).await,
    }
    .map_err(StoreError::from)?;
    let donors = rows
        .iter()
        .map(|row| {
            let registered_seq: i64 = row.try_get("registered_seq").map_err(ApiError::internal)?;
            let payload: String = row.try_get("payload").map_err(ApiError::internal)?;
            Ok(DonorView {
                code: row.try_get("code").map_err(ApiError::internal)?,
                name: row.try_get("name").map_err(ApiError::internal)?,
                kind: row.try_get("kind").map_err(ApiError::internal)?,
                iati_identifier: iati_identifier_of(&payload)?,
                registered_seq: u64::try_from(registered_seq).unwrap_or_default(),
            })
        })
        .collect::<Result<_, ApiError>>()?;
    Ok(Json(DonorList { donors }))
}
