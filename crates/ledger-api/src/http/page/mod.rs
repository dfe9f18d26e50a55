//! The web page for donors at `/`: a static shell with a sign-in form, and
//! one route that answers the programmes as server-rendered HTML for a
//! bearer token (`GET /page/programmes`). The script (`app.js`) keeps the
//! token in the tab's `sessionStorage` and sends it only as an
//! `Authorization` header, never in a URL or a cookie; it also checks an
//! entry's inclusion proof against the signed checkpoint with WebCrypto.
//!
//! Everything is served from the binary: no CDN, no outside font. The
//! figures are those of the balance endpoint (`reads::programme_balance_at_point`)
//! at the point `as_of::resolve` gives the caller's role (donors: the end of
//! the last closed UTC day); disbursements by month come from the same
//! projection rows (the `assistance` rows, live or folded to that point).

pub mod render;
pub mod strings;

use std::collections::BTreeMap;
use std::sync::OnceLock;

use axum::Router;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_core::domain::{DonorCode, EventBody, MoneyEntry, ProgrammeCode, Seq};
use ledger_core::store::StoreError;
use projections::rows::{ASSISTANCE, Changes, Value};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use sqlx::Row;
use utoipa::IntoParams;

use super::AppState;
use super::as_of::{self, AsOf, Point};
use super::auth::Caller;
use super::error::{ApiError, Problem};
use super::params::QueryParams;
use crate::audit::{self, AuditError};
use crate::tokens::Role;
use render::{ChainState, CheckableEntry, CheckpointSummary, EntryKind, Fragment, Monthly, Standing, Tile};
use strings::Lang;

const SCRIPT: &str = include_str!("app.js");
const STYLE: &str = include_str!("app.css");

/// What the page allows the browser to do: its own script, style and
/// requests, nothing else (no inline script, no frame, no form sent away).
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; \
     connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Funding events read per query while looking for the entry to check.
const FUNDING_PAGE_EVENTS: i64 = 500;
/// Funding events read at most while looking for the entries to check.
const FUNDING_SCANNED_MAX: usize = 20_000;

/// The page's routes, merged into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(index))
        .route("/page/app.js", get(script))
        .route("/page/app.css", get(style))
        .route("/page/programmes", get(programmes))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// The page's language (default: from `Accept-Language`, else English).
    #[param(required = false, inline)]
    pub lang: Option<Lang>,
}

fn lang_of(query: &PageQuery, headers: &HeaderMap) -> Lang {
    query
        .lang
        .unwrap_or_else(|| Lang::from_accept_language(headers.get(header::ACCEPT_LANGUAGE).and_then(|value| value.to_str().ok())))
}

/// Headers every HTML answer of the page carries.
fn html_response(body: String, cache: &'static str) -> Response {
    let mut response = body.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    headers.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CONTENT_SECURITY_POLICY));
    headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    headers.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    headers.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    headers.insert(header::VARY, HeaderValue::from_static("Accept-Language"));
    response
}

/// The first 16 hex characters of the SHA-256 of an asset: its version.
fn etag_of(content: &str) -> String {
    hex::encode(&Sha256::digest(content.as_bytes())[..8])
}

fn script_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| etag_of(SCRIPT))
}

fn style_etag() -> &'static str {
    static ETAG: OnceLock<String> = OnceLock::new();
    ETAG.get_or_init(|| etag_of(STYLE))
}

/// The page: the sign-in form; the programmes are fetched by the script.
#[utoipa::path(get, path = "/", params(PageQuery),
    responses((status = 200, description = "the web page for donors", content_type = "text/html", body = String),
        (status = 400, body = Problem)))]
pub async fn index(headers: HeaderMap, QueryParams(query): QueryParams<PageQuery>) -> Response {
    let lang = lang_of(&query, &headers);
    html_response(render::shell(lang, script_etag(), style_etag()), "no-cache")
}

/// An asset: immutable when asked by its version (as the page does),
/// otherwise revalidated by its ETag.
fn asset(content: &'static str, content_type: &'static str, etag: &str, query: Option<&str>, headers: &HeaderMap) -> Response {
    let quoted = format!("\"{etag}\"");
    let cache = if query == Some(&format!("v={etag}")) { "public, max-age=31536000, immutable" } else { "no-cache" };
    let unchanged = headers
        .get(header::IF_NONE_MATCH)
        .and_then(|value| value.to_str().ok())
        .is_some_and(|tags| tags.split(',').any(|tag| tag.trim() == quoted || tag.trim() == "*"));
    let mut response = if unchanged { StatusCode::NOT_MODIFIED.into_response() } else { content.into_response() };
    let response_headers = response.headers_mut();
    if !unchanged {
        response_headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    }
    response_headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache));
    response_headers.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    if let Ok(value) = HeaderValue::from_str(&quoted) {
        response_headers.insert(header::ETAG, value);
    }
    response
}

/// The page's script.
#[utoipa::path(get, path = "/page/app.js",
    responses((status = 200, description = "the page's script", content_type = "text/javascript", body = String),
        (status = 304, description = "not modified (If-None-Match)")))]
pub async fn script(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    asset(SCRIPT, "text/javascript; charset=utf-8", script_etag(), query.as_deref(), &headers)
}

/// The page's style sheet.
#[utoipa::path(get, path = "/page/app.css",
    responses((status = 200, description = "the page's style sheet", content_type = "text/css", body = String),
        (status = 304, description = "not modified (If-None-Match)")))]
pub async fn style(headers: HeaderMap, RawQuery(query): RawQuery) -> Response {
    asset(STYLE, "text/css; charset=utf-8", style_etag(), query.as_deref(), &headers)
}

/// The programmes the token may see, as an HTML fragment for the page: a
/// tile per programme (the figures of its balance endpoint, countries and
/// months as SVG), the entry to check in the browser, and the chain's
/// state with the latest signed checkpoint.
#[utoipa::path(get, path = "/page/programmes", params(PageQuery),
    responses((status = 200, description = "an HTML fragment", content_type = "text/html", body = String),
        (status = 400, body = Problem), (status = 401, body = Problem)),
    security(("bearer" = [])))]
pub async fn programmes(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
    QueryParams(query): QueryParams<PageQuery>,
) -> Result<Response, ApiError> {
    let lang = lang_of(&query, &headers);
    let donor = match caller.0.role {
        Role::Donor => Some(caller.0.donor.clone().ok_or(ApiError::Unauthorized)?),
        _ => None,
    };
    let point = as_of::resolve(&state, caller.0.role, &AsOf { as_of_seq: None, as_of: None }).await?;
    let (standing, point_seq, folded) = match point {
        Point::Live => {
            let (head, _) = state.ledger.store.head().await?;
            (Standing::Seq(head), head, None)
        }
        Point::Seq(seq, day) => {
            let standing = day.map_or(Standing::Seq(seq), |day| Standing::Day(day.to_string()));
            (standing, seq, Some(state.folds.at(&state, seq).await?))
        }
    };
    let checkpoint = audit::latest_checkpoint(&state.ledger.store).await?;
    let chain = chain_state(&state).await?;
    let checkable_up_to = checkpoint.as_ref().map(|signed| signed.checkpoint.tree_size.min(point_seq));
    let programmes = visible_programmes(&state, donor.as_ref()).await?;
    let mut checkable = match checkable_up_to {
        Some(up_to) => {
            let codes: Vec<ProgrammeCode> = programmes.iter().map(|(code, _)| code.clone()).collect();
            latest_funding_entries(&state, &codes, donor.as_ref(), up_to).await?
        }
        None => BTreeMap::new(),
    };
    let mut tiles = Vec::new();
    let mut not_yet = Vec::new();
    for (code, name) in programmes {
        let balance = match super::reads::programme_balance_at_point(&state, &code, donor.as_ref(), point).await {
            Err(ApiError::NotFound(_)) => {
                not_yet.push(code.to_string());
                continue;
            }
            other => other?,
        };
        let monthly = match &folded {
            Some(changes) => monthly_in(changes, code.as_str()),
            None => monthly_live(&state, code.as_str()).await?,
        };
        let check = checkable.remove(&code).zip(checkable_up_to);
        tiles.push(Tile { name, balance, monthly, check });
    }
    let checkpoint = checkpoint.map(|signed| CheckpointSummary {
        tree_size: signed.checkpoint.tree_size,
        root_hash: hex::encode(signed.checkpoint.root_hash),
        created_at: signed.checkpoint.created_at.clone(),
        key_id: signed.key_id.clone(),
    });
    let fragment = Fragment { standing, tiles, not_yet, chain, checkpoint };
    Ok(html_response(render::fragment(lang, &fragment), "no-store"))
}

/// The programmes a caller may see, as `GET /v1/programmes` lists them: a
/// donor the ones it funds, every other role all of them.
async fn visible_programmes(state: &AppState, donor: Option<&DonorCode>) -> Result<Vec<(ProgrammeCode, String)>, ApiError> {
    let pool = state.ledger.store.pool();
    let rows =
        match donor {
            Some(donor) => sqlx::query(
                "SELECT code, name FROM programmes WHERE code IN (SELECT programme FROM funding WHERE donor = $1) ORDER BY code",
            )
            .bind(donor.as_str().to_string())
            .fetch_all(pool)
            .await,
            None => sqlx::query("SELECT code, name FROM programmes ORDER BY code").fetch_all(pool).await,
        }
        .map_err(StoreError::from)?;
    rows.iter()
        .map(|row| {
            let code: String = row.try_get("code").map_err(ApiError::internal)?;
            let name: String = row.try_get("name").map_err(ApiError::internal)?;
            Ok((ProgrammeCode::parse(&code)?, name))
        })
        .collect()
}

/// The chain as this server has verified it (links and tags, in the
/// Merkle tree its proofs come from).
async fn chain_state(state: &AppState) -> Result<ChainState, ApiError> {
    let mut cache = state.merkle.lock().await;
    match cache.catch_up(&state.ledger.store, Some(&state.ledger.keys)).await {
        Ok(events) => Ok(ChainState::Verified { events, head_hash: hex::encode(cache.head_hash()) }),
        Err(AuditError::ChainInvalid(failure)) => Ok(ChainState::Broken(failure.to_string())),
        Err(other) => Err(other.into()),
    }
}

fn add_month(monthly: &mut Monthly, kind: &str, assisted_on: &str, amount: i64) {
    let month = assisted_on.get(..7).unwrap_or(assisted_on).to_string();
    let slot = monthly.entry(month).or_default();
    match kind {
        "cash" => slot.0 += i128::from(amount),
        _ => slot.1 += i128::from(amount),
    }
}

/// Disbursed per month of payment or delivery, from the live `assistance`
/// rows not reversed, summed by the database (a programme may hold a
/// million rows; a few dozen sums cross the connection).
async fn monthly_live(state: &AppState, programme: &str) -> Result<Monthly, ApiError> {
    let sql = "SELECT kind, substr(assisted_on, 1, 7) AS month, CAST(SUM(amount) AS BIGINT) FROM assistance \
               WHERE programme = $1 AND reversed = 0 GROUP BY kind, substr(assisted_on, 1, 7)";
    let rows =
        sqlx::query(sql).bind(programme.to_string()).fetch_all(state.ledger.store.pool()).await.map_err(StoreError::from)?;
    let mut monthly = Monthly::new();
    for row in rows {
        let kind: String = row.try_get(0).map_err(ApiError::internal)?;
        let month: String = row.try_get(1).map_err(ApiError::internal)?;
        let amount: i64 = row.try_get(2).map_err(ApiError::internal)?;
        add_month(&mut monthly, &kind, &month, amount);
    }
    Ok(monthly)
}

/// The same from `assistance` rows folded to a point.
fn monthly_in(changes: &Changes, programme: &str) -> Monthly {
    let column = |name: &str| ASSISTANCE.values.iter().position(|(column, _)| *column == name);
    let (Some(programme_at), Some(kind_at), Some(amount_at), Some(on_at), Some(reversed_at)) =
        (column("programme"), column("kind"), column("amount"), column("assisted_on"), column("reversed"))
    else {
        return Monthly::new();
    };
    let mut monthly = Monthly::new();
    for values in changes.rows(&ASSISTANCE).into_iter().flat_map(|rows| rows.values()) {
        if values[programme_at] != Value::Text(programme.to_string()) || values[reversed_at] != Value::Int(0) {
            continue;
        }
        let Value::Int(amount) = values[amount_at] else { continue };
        add_month(&mut monthly, &values[kind_at].to_string(), &values[on_at].to_string(), amount);
    }
    monthly
}

/// For each programme, the latest commitment or receipt (for a donor, its
/// own) recorded at or before `up_to`: what the page offers to check in the
/// browser. A funding entry is the donor's own agreement or payment, never
/// returnee-level data, unlike a disbursement. One backward pass over the
/// funding events, ended when every programme has its entry.
async fn latest_funding_entries(
    state: &AppState,
    programmes: &[ProgrammeCode],
    donor: Option<&DonorCode>,
    up_to: Seq,
) -> Result<BTreeMap<ProgrammeCode, CheckableEntry>, ApiError> {
    let mut found = BTreeMap::new();
    let mut below = i64::try_from(up_to).unwrap_or(i64::MAX).saturating_add(1);
    let mut scanned = 0;
    while scanned < FUNDING_SCANNED_MAX && found.len() < programmes.len() {
        let rows = sqlx::query(
            "SELECT seq, event_type, version, payload FROM events \
             WHERE seq < $1 AND event_type IN ('funding_committed', 'funding_received') ORDER BY seq DESC LIMIT $2",
        )
        .bind(below)
        .bind(FUNDING_PAGE_EVENTS)
        .fetch_all(state.ledger.store.pool())
        .await
        .map_err(StoreError::from)?;
        if rows.is_empty() {
            break;
        }
        for row in &rows {
            scanned += 1;
            let seq: i64 = row.try_get(0).map_err(ApiError::internal)?;
            below = seq;
            let event_type: String = row.try_get(1).map_err(ApiError::internal)?;
            let version: i64 = row.try_get(2).map_err(ApiError::internal)?;
            let payload: String = row.try_get(3).map_err(ApiError::internal)?;
            let version = u32::try_from(version).map_err(ApiError::internal)?;
            let body = EventBody::parse(&event_type, version, &payload).map_err(ApiError::internal)?;
            let EventBody::Money(entry) = body else { continue };
            if !programmes.contains(entry.programme())
                || found.contains_key(entry.programme())
                || donor.is_some_and(|donor| donor != entry.donor())
            {
                continue;
            }
            let seq = u64::try_from(seq).map_err(ApiError::internal)?;
            let (programme, checkable) = match entry {
                MoneyEntry::FundingCommitted(event) => (
                    event.programme,
                    CheckableEntry {
                        seq,
                        kind: EntryKind::Commitment,
                        donor: event.donor.to_string(),
                        amount: event.amount.to_string(),
                        currency: event.currency.code().to_string(),
                        date: event.committed_on.to_string(),
                    },
                ),
                MoneyEntry::FundingReceived(event) => (
                    event.programme,
                    CheckableEntry {
                        seq,
                        kind: EntryKind::Receipt,
                        donor: event.donor.to_string(),
                        amount: event.amount.to_string(),
                        currency: event.currency.code().to_string(),
                        date: event.received_on.to_string(),
                    },
                ),
                _ => continue,
            };
            found.insert(programme, checkable);
        }
    }
    Ok(found)
}
