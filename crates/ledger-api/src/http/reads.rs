//! The read endpoints: balances, events, verification, trial balance and
//! the duplicate-assistance view.

use std::collections::{BTreeMap, BTreeSet};

use axum::Json;
use axum::extract::{Path, State};
use chrono::NaiveDate;
use ledger_core::domain::events::EVENT_TYPES;
use ledger_core::domain::{CountryCode, DonorCode, ProgrammeCode};
use projections::balances::{self, CountryBalance, DonorBalance, ProgrammeBalance, TrialBalance};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use utoipa::{IntoParams, ToSchema};

use ledger_core::store::StoreError;

use super::AppState;
use super::as_of::{self, AsOf, Point};
use super::auth::{Caller, READERS};
use super::error::{ApiError, Problem};
use super::params::{self, QueryParams};
use crate::tokens::Role;

/// Events per page of `GET /v1/events`, by default and at most.
pub const EVENTS_PAGE_DEFAULT: i64 = 100;
pub const EVENTS_PAGE_MAX: i64 = 1_000;
/// The duplicate window when none is asked for, in days.
pub const DUPLICATE_WINDOW_DAYS_DEFAULT: u32 = 30;
/// Returnees per answer of the duplicate-assistance view, at most.
pub const DUPLICATES_MAX: i64 = 500;

/// A programme's balance: committed, received, allocated, disbursed and
/// available, by country and by donor, and returnees reached. A donor sees
/// only programmes it funds, the programme's totals and its own share, as
/// of the end of a closed UTC day, with counts below 5 as "fewer than 5"
/// (see `as_of`).
#[utoipa::path(get, path = "/v1/programmes/{code}/balance", params(("code" = String, Path), AsOf),
    responses((status = 200, body = ProgrammeBalance), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn programme_balance(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    QueryParams(as_of): QueryParams<AsOf>,
) -> Result<Json<ProgrammeBalance>, ApiError> {
    let programme = ProgrammeCode::parse(&code)?;
    let donor_scope = match caller.0.role {
        Role::Donor => Some(caller.0.donor.clone().ok_or(ApiError::Unauthorized)?),
        _ => None,
    };
    if let Some(donor) = &donor_scope {
        if !crate::reports::donor_funds(&state.ledger.store, donor, &programme).await? {
            return Err(ApiError::Forbidden(format!("donor {donor} does not fund programme {programme}")));
        }
    }
    let point = as_of::resolve(&state, caller.0.role, &as_of).await?;
    Ok(Json(programme_balance_at_point(&state, &programme, donor_scope.as_ref(), point).await?))
}

/// A programme's balance at a resolved point, as `donor_scope` may see it
/// (the caller has checked that the donor funds the programme): what
/// `GET /v1/programmes/{code}/balance` answers, and the web page shows.
pub async fn programme_balance_at_point(
    state: &AppState,
    programme: &ProgrammeCode,
    donor_scope: Option<&DonorCode>,
    point: Point,
) -> Result<ProgrammeBalance, ApiError> {
    let mut balance = match point {
        Point::Live => balances::programme_balance(&state.ledger.store, programme.as_str()).await?,
        Point::Seq(seq, day) => {
            let changes = state.folds.at(state, seq).await?;
            let mut balance = match balances::programme_balance_in(&changes, programme.as_str()) {
                Err(balances::BalanceError::NotFound(_)) if day.is_some() => {
                    return Err(ApiError::NotFound(format!(
                        "programme {programme} was not yet registered at the end of {}",
                        day.unwrap_or_default()
                    )));
                }
                other => other?,
            };
            balance.as_of = day.map(|day| day.to_string());
            balance
        }
    };
    // A donor sees the programme's totals and its own share, never another
    // donor's, and no count small enough to single out a returnee.
    if let Some(donor) = donor_scope {
        balance.by_donor.retain(|figures| figures.donor == donor.as_str());
        balance.beneficiaries_reached = balance.beneficiaries_reached.for_donor();
        for country in &mut balance.by_country {
            country.beneficiaries_reached = country.beneficiaries_reached.for_donor();
        }
    }
    Ok(balance)
}

/// A donor's funding of each programme and its totals per currency. A
/// donor token reads only its own, as of the end of a closed UTC day.
#[utoipa::path(get, path = "/v1/donors/{code}/balance", params(("code" = String, Path), AsOf),
    responses((status = 200, body = DonorBalance), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn donor_balance(
    State(state): State<AppState>,
    caller: Caller,
    Path(code): Path<String>,
    QueryParams(as_of): QueryParams<AsOf>,
) -> Result<Json<DonorBalance>, ApiError> {
    let donor = DonorCode::parse(&code)?;
    if caller.0.role == Role::Donor && caller.0.donor.as_ref() != Some(&donor) {
        return Err(ApiError::Forbidden("a donor token reads only its own donor balance".to_string()));
    }
    match as_of::resolve(&state, caller.0.role, &as_of).await? {
        Point::Live => Ok(Json(balances::donor_balance(&state.ledger.store, donor.as_str()).await?)),
        Point::Seq(seq, day) => {
            let known = sqlx::query("SELECT code FROM donors WHERE code = $1")
                .bind(donor.as_str())
                .fetch_optional(state.ledger.store.pool())
                .await
                .map_err(StoreError::from)?;
            if known.is_none() {
                return Err(ApiError::NotFound(format!("unknown donor {donor}")));
            }
            let changes = state.folds.at(&state, seq).await?;
            let mut balance = balances::donor_balance_in(&changes, donor.as_str())?;
            balance.as_of = day.map(|day| day.to_string());
            Ok(Json(balance))
        }
    }
}

#[utoipa::path(get, path = "/v1/countries/{iso}/balance", params(("iso" = String, Path, description = "ISO 3166-1 alpha-2 or alpha-3")),
    responses((status = 200, body = CountryBalance), (status = 401, body = Problem), (status = 403, body = Problem), (status = 400, body = Problem)),
    security(("bearer" = [])))]
pub async fn country_balance(
    State(state): State<AppState>,
    caller: Caller,
    Path(iso): Path<String>,
) -> Result<Json<CountryBalance>, ApiError> {
    caller.require(&READERS)?;
    let country = CountryCode::parse(&iso)?;
    Ok(Json(balances::country_balance(&state.ledger.store, country.as_str()).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct EventsQuery {
    /// Events with seq greater than this (0 for the first page).
    #[serde(default, deserialize_with = "params::after::optional")]
    #[param(required = false, value_type = u64, minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
    /// Page size, 1 to 1000 (default 100).
    #[serde(default, deserialize_with = "params::limit::optional")]
    #[param(required = false, value_type = u64, minimum = 1, maximum = 1000)]
    pub limit: Option<u64>,
    /// Only events of this programme: its registration, its money events
    /// and their reversals.
    #[param(required = false, value_type = String)]
    pub programme: Option<String>,
    /// Only events of this type.
    #[param(required = false, inline, value_type = EventTypeName)]
    pub r#type: Option<String>,
}

/// The event types the ledger writes.
#[derive(ToSchema)]
#[schema(rename_all = "snake_case")]
#[allow(dead_code, reason = "named for the OpenAPI description; the filter reads the text")]
pub enum EventTypeName {
    DonorRegistered,
    ProgrammeRegistered,
    FundingCommitted,
    FundingReceived,
    BudgetAllocated,
    BudgetReallocated,
    CashReinsertionPaid,
    InKindGrantDelivered,
    EntryReversed,
    PaymentListImported,
    PaymentListApproved,
    PaymentListReleased,
    PaymentListConfirmed,
    PaymentListCancelled,
    PaymentListClosed,
    ProgrammeApprovalsSet,
}

/// Events read, at most, to answer one filtered page: a page may come back
/// with fewer events than `limit` (even none) and a `next_after` to go on from.
pub const EVENTS_SCANNED_MAX: usize = 10_000;
/// Events read per query while scanning for a filtered page.
const SCAN_PAGE_EVENTS: i64 = 1_000;

/// The programme an event is about: a programme's registration, a money
/// event, or a reversal of one.
fn programme_of_event(event_type: &str, payload: &str) -> Option<String> {
    if event_type == "programme_registered" {
        let value: serde_json::Value = serde_json::from_str(payload).ok()?;
        return value.get("code")?.as_str().map(str::to_string);
    }
    super::audit::programme_of(event_type, payload)
}

/// An event as stored, with its hashes.
#[derive(Serialize, ToSchema)]
pub struct EventView {
    pub seq: u64,
    pub id: String,
    pub recorded_at: String,
    pub actor: String,
    pub event_type: String,
    pub version: u32,
    /// The payload JSON text exactly as hashed (parse it to read it).
    pub payload: String,
    pub prev_hash: String,
    pub hash: String,
    pub key_id: String,
    pub tag: String,
}

#[derive(Serialize, ToSchema)]
pub struct EventsPage {
    pub events: Vec<EventView>,
    /// Pass as `after` for the next page; absent on the last page. A
    /// filtered page reads at most 10,000 events, so it may hold fewer than
    /// `limit` (even none) and still have a next page.
    pub next_after: Option<u64>,
}

#[utoipa::path(get, path = "/v1/events", params(EventsQuery),
    responses((status = 200, body = EventsPage), (status = 400, body = Problem), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn events(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<EventsQuery>,
) -> Result<Json<EventsPage>, ApiError> {
    caller.require(&[Role::Auditor])?;
    let limit = query.limit.map_or(EVENTS_PAGE_DEFAULT, |limit| i64::try_from(limit).unwrap_or(EVENTS_PAGE_MAX));
    let programme = query.programme.as_deref().map(ProgrammeCode::parse).transpose()?;
    if let Some(event_type) = &query.r#type {
        if !EVENT_TYPES.iter().any(|(known, _)| known == event_type) {
            let known: Vec<&str> = EVENT_TYPES.iter().map(|(known, _)| *known).collect();
            return Err(ApiError::BadRequest(format!("type must be one of {}", known.join(", "))));
        }
    }
    let after = query.after.unwrap_or(0);
    let (records, next_after) = if programme.is_none() && query.r#type.is_none() {
        let records = state.ledger.store.events_after(after, limit).await?;
        let full_page = i64::try_from(records.len()).unwrap_or(i64::MAX) == limit;
        let next_after = if full_page { records.last().map(|record| record.seq) } else { None };
        (records, next_after)
    } else {
        let wanted = |record: &ledger_core::chain::EventRecord| {
            query.r#type.as_ref().is_none_or(|event_type| &record.event_type == event_type)
                && programme.as_ref().is_none_or(|programme| {
                    programme_of_event(&record.event_type, &record.payload).as_deref() == Some(programme.as_str())
                })
        };
        let limit = usize::try_from(limit).unwrap_or(usize::MAX);
        let (mut matched, mut cursor, mut scanned) = (Vec::new(), after, 0usize);
        let mut at_end = false;
        'scan: while scanned < EVENTS_SCANNED_MAX {
            let page = state.ledger.store.events_after(cursor, SCAN_PAGE_EVENTS).await?;
            if page.is_empty() {
                at_end = true;
                break;
            }
            for record in page {
                cursor = record.seq;
                scanned += 1;
                if wanted(&record) {
                    matched.push(record);
                    if matched.len() == limit {
                        break 'scan;
                    }
                }
                if scanned == EVENTS_SCANNED_MAX {
                    break 'scan;
                }
            }
        }
        (matched, (!at_end).then_some(cursor))
    };
    let events = records
        .into_iter()
        .map(|record| EventView {
            seq: record.seq,
            id: record.id.to_string(),
            recorded_at: record.recorded_at,
            actor: record.actor,
            event_type: record.event_type,
            version: record.version,
            payload: record.payload,
            prev_hash: hex::encode(record.prev_hash),
            hash: hex::encode(record.hash),
            key_id: record.key_id,
            tag: hex::encode(record.tag),
        })
        .collect();
    Ok(Json(EventsPage { events, next_after }))
}

#[derive(Serialize, ToSchema)]
pub struct VerifyAnswer {
    pub valid: bool,
    /// The last event that verified.
    pub head_seq: u64,
    pub head_hash: String,
    pub first_invalid_seq: Option<u64>,
    pub reason: Option<String>,
}

#[utoipa::path(get, path = "/v1/verify",
    responses((status = 200, body = VerifyAnswer), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn verify(State(state): State<AppState>, caller: Caller) -> Result<Json<VerifyAnswer>, ApiError> {
    caller.require(&[Role::Auditor])?;
    let report = state.ledger.store.verify_chain(Some(&state.ledger.keys), |_| {}).await?;
    Ok(Json(VerifyAnswer {
        valid: report.is_valid(),
        head_seq: report.head_seq,
        head_hash: hex::encode(report.head_hash),
        first_invalid_seq: report.failure.as_ref().map(|failure| failure.seq),
        reason: report.failure.as_ref().map(|failure| failure.fault.to_string()),
    }))
}

#[utoipa::path(get, path = "/v1/trial-balance",
    responses((status = 200, body = TrialBalance), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn trial_balance(State(state): State<AppState>, caller: Caller) -> Result<Json<TrialBalance>, ApiError> {
    caller.require(&[Role::Auditor])?;
    Ok(Json(balances::trial_balance(&state.ledger.store).await?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct DuplicatesQuery {
    /// Two disbursements from one programme to one returnee within this many
    /// days count as a duplicate (default 30; 0 looks only across programmes;
    /// at most 3660).
    #[serde(default, deserialize_with = "params::window_days::optional")]
    #[param(required = false, value_type = u64, minimum = 0, maximum = 3660)]
    pub window_days: Option<u64>,
}

#[derive(Serialize, ToSchema)]
pub struct Assistance {
    pub seq: u64,
    pub programme: String,
    pub donor: String,
    pub country: String,
    /// cash or in_kind
    pub kind: String,
    pub amount: String,
    pub currency: String,
    pub assisted_on: String,
}

#[derive(Serialize, ToSchema)]
pub struct DuplicateAssistance {
    /// The returnee's pseudonym; never a name or case number.
    pub beneficiary_ref: String,
    pub programmes: Vec<String>,
    pub assistance: Vec<Assistance>,
}

#[derive(Serialize, ToSchema)]
pub struct DuplicatesAnswer {
    pub window_days: u32,
    pub duplicates: Vec<DuplicateAssistance>,
}

#[utoipa::path(get, path = "/v1/duplicates", params(DuplicatesQuery),
    responses((status = 200, body = DuplicatesAnswer), (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn duplicates(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<DuplicatesQuery>,
) -> Result<Json<DuplicatesAnswer>, ApiError> {
    caller.require(&[Role::FinanceOfficer, Role::Auditor])?;
    let window_days = query.window_days.map_or(DUPLICATE_WINDOW_DAYS_DEFAULT, |days| u32::try_from(days).unwrap_or(u32::MAX));
    let rows = sqlx::query(
        "SELECT seq, beneficiary_ref, programme, donor, country, kind, currency, amount, assisted_on FROM assistance \
         WHERE reversed = 0 AND beneficiary_ref IN (SELECT beneficiary_ref FROM assistance WHERE reversed = 0 \
         GROUP BY beneficiary_ref HAVING COUNT(*) > 1 ORDER BY beneficiary_ref LIMIT $1) ORDER BY beneficiary_ref, assisted_on, seq",
    )
    .bind(DUPLICATES_MAX)
    .fetch_all(state.ledger.store.pool())
    .await
    .map_err(StoreError::from)?;
    let mut by_reference: BTreeMap<String, Vec<Assistance>> = BTreeMap::new();
    for row in rows {
        let currency_text: String = row.try_get("currency").map_err(ApiError::internal)?;
        let currency = ledger_core::domain::Currency::parse(&currency_text)?;
        let amount: i64 = row.try_get("amount").map_err(ApiError::internal)?;
        let seq: i64 = row.try_get("seq").map_err(ApiError::internal)?;
        let reference: String = row.try_get("beneficiary_ref").map_err(ApiError::internal)?;
        by_reference.entry(reference).or_default().push(Assistance {
            seq: u64::try_from(seq).unwrap_or_default(),
            programme: row.try_get("programme").map_err(ApiError::internal)?,
            donor: row.try_get("donor").map_err(ApiError::internal)?,
            country: row.try_get("country").map_err(ApiError::internal)?,
            kind: row.try_get("kind").map_err(ApiError::internal)?,
            amount: ledger_core::domain::types::format_minor_units(amount, currency),
            currency: currency_text,
            assisted_on: row.try_get("assisted_on").map_err(ApiError::internal)?,
        });
    }
    let duplicates = by_reference
        .into_iter()
        .filter(|(_, assistance)| is_duplicate(assistance, window_days))
        .map(|(beneficiary_ref, assistance)| {
            let programmes: BTreeSet<String> = assistance.iter().map(|item| item.programme.clone()).collect();
            DuplicateAssistance { beneficiary_ref, programmes: programmes.into_iter().collect(), assistance }
        })
        .collect();
    Ok(Json(DuplicatesAnswer { window_days, duplicates }))
}

/// Assistance from two programmes, or twice from one within the window.
fn is_duplicate(assistance: &[Assistance], window_days: u32) -> bool {
    let programmes: BTreeSet<&str> = assistance.iter().map(|item| item.programme.as_str()).collect();
    if programmes.len() > 1 {
        return true;
    }
    let days: Vec<Option<NaiveDate>> = assistance.iter().map(|item| item.assisted_on.parse().ok()).collect();
    days.windows(2).any(|pair| match (pair[0], pair[1]) {
        (Some(first), Some(second)) => (second - first).num_days().abs() <= i64::from(window_days) && window_days > 0,
        _ => false,
    })
}

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: String,
    pub head_seq: u64,
}

#[utoipa::path(get, path = "/healthz", responses((status = 200, body = Health), (status = 503, body = Problem)))]
pub async fn healthz(State(state): State<AppState>) -> Result<Json<Health>, ApiError> {
    let (head_seq, _) = state
        .ledger
        .store
        .head()
        .await
        .map_err(|error| ApiError::Unavailable(format!("the database is not reachable: {error}")))?;
    Ok(Json(Health { status: "ok".to_string(), head_seq }))
}
