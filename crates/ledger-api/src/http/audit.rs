//! The audit endpoints: the streaming export, signed checkpoints and Merkle
//! proofs. The logic lives in `crate::audit`; these handlers check roles
//! and scope and present its results.

use axum::Json;
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use ledger_core::checkpoint::{SignedCheckpoint, public_key_id};
use ledger_core::domain::{DonorCode, ProgrammeCode};
use ledger_core::store::{Store, StoreError};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use super::auth::{Caller, READERS};
use super::error::{ApiError, Problem};
use super::params::{self, PathSize, QueryParams};
use crate::audit::{self, AuditError, ConsistencyProof, InclusionProof, ProofRequestError, RetiredPublicKey};
use crate::tokens::Role;

/// The media type of a JSON Lines export.
pub const EXPORT_CONTENT_TYPE: &str = "application/x-ndjson";

/// The audit routes, merged into the API's router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/v1/export", get(export))
        .route("/checkpoint", get(checkpoint_note))
        .route("/v1/checkpoints/public-key", get(checkpoint_public_key))
        .route("/v1/checkpoints/latest", get(latest_checkpoint))
        .route("/v1/checkpoints/{size}", get(checkpoint_of_size))
        .route("/v1/proofs/inclusion", get(inclusion_proof))
        .route("/v1/proofs/consistency", get(consistency_proof))
}

/// Status per variant: a request that names something beyond the chain is
/// 404, any other bad request 400, everything else 500.
impl From<AuditError> for ApiError {
    fn from(error: AuditError) -> Self {
        match error {
            AuditError::Request(
                request @ (ProofRequestError::NoSuchEvent { .. } | ProofRequestError::SizeBeyondChain { .. }),
            ) => ApiError::NotFound(request.to_string()),
            AuditError::Request(request @ (ProofRequestError::SeqBeyondSize { .. } | ProofRequestError::BadRange { .. })) => {
                ApiError::Inconsistent(request.to_string())
            }
            AuditError::Request(request) => ApiError::BadRequest(request.to_string()),
            AuditError::Store(store) => store.into(),
            AuditError::Database(database) => StoreError::from(database).into(),
            AuditError::NoSigningKey => ApiError::Unavailable(audit::NO_SIGNING_KEY.to_string()),
            other => ApiError::internal(other),
        }
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ExportQuery {
    /// Events with seq greater than this (0, the default, exports the whole chain).
    #[serde(default, deserialize_with = "params::after::optional")]
    #[param(required = false, value_type = u64, minimum = 0, maximum = 9223372036854775807_i64)]
    pub after: Option<u64>,
}

/// Every event after `after` that exists when the request arrives, as JSON
/// Lines, streamed page by page. A failure part-way ends the body early,
/// which the export verifier reports as a cut-off last line or a missing tail.
#[utoipa::path(get, path = "/v1/export", params(ExportQuery),
    responses((status = 200, description = "JSON Lines: one event object per line (see docs/audit.md)", content_type = "application/x-ndjson", body = String),
        (status = 401, body = Problem), (status = 403, body = Problem)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<ExportQuery>,
) -> Result<Response, ApiError> {
    caller.require(&[Role::Auditor])?;
    let after = query.after.unwrap_or(0);
    let (up_to, _) = state.ledger.store.head().await?;
    let store = state.ledger.store.clone();
    tracing::info!(after, up_to, "export started");
    let pages = futures_util::stream::try_unfold(after, move |after| next_export_page(store.clone(), after, up_to));
    let mut response = Body::from_stream(pages).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(EXPORT_CONTENT_TYPE));
    Ok(response)
}

async fn next_export_page(store: Store, after: u64, up_to: u64) -> Result<Option<(Bytes, u64)>, AuditError> {
    match audit::export_page(&store, after, up_to).await {
        Ok(page) => Ok(page.map(|page| (Bytes::from(page.bytes), page.last_seq))),
        Err(error) => {
            tracing::error!(error = %error, after, "export stopped part-way");
            Err(error)
        }
    }
}

/// A signed checkpoint (see docs/merkle.md for the signed message).
#[derive(Debug, Serialize, ToSchema)]
pub struct CheckpointView {
    pub tree_size: u64,
    /// 64 lower-case hex characters.
    pub root_hash: String,
    #[schema(example = "2026-11-23T18:44:10Z")]
    pub created_at: String,
    /// 16 lower-case hex characters: SHA-256 of the public key, truncated.
    pub key_id: String,
    /// 128 lower-case hex characters: the Ed25519 signature.
    pub signature: String,
}

impl From<&SignedCheckpoint> for CheckpointView {
    fn from(signed: &SignedCheckpoint) -> Self {
        CheckpointView {
            tree_size: signed.checkpoint.tree_size,
            root_hash: hex::encode(signed.checkpoint.root_hash),
            created_at: signed.checkpoint.created_at.clone(),
            key_id: signed.key_id.clone(),
            signature: hex::encode(signed.signature),
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PublicKeyView {
    /// The Ed25519 public key, 64 lower-case hex characters; null when
    /// checkpoint signing is off (no signing key is configured).
    pub public_key: Option<String>,
    /// The key id checkpoints signed with it carry; null when signing is off.
    pub key_id: Option<String>,
    /// The same key as a C2SP note verifier key, named by the log's origin
    /// (`<origin>+<key hash>+<base64 key>`): what witnesses and note
    /// verifiers take. Null when signing is off.
    #[schema(example = "ledger.example.org/avrr+1a2b3c4d+AXm1Vi6P5lT5QHixEuipi6eQH4U65pW+1+DjkQutBJZk")]
    pub vkey: Option<String>,
    /// The keys that signed before, each with the period it signed in, so
    /// that old checkpoints keep verifying.
    pub retired: Vec<RetiredPublicKey>,
}

/// The public key checkpoints are signed with, and the retired ones. Fetch
/// them once and keep them outside the ledger: a key fetched from a
/// compromised server proves nothing.
#[utoipa::path(get, path = "/v1/checkpoints/public-key", responses((status = 200, body = PublicKeyView)))]
pub async fn checkpoint_public_key(State(state): State<AppState>) -> Result<Json<PublicKeyView>, ApiError> {
    let key = audit::public_key(&state.ledger.keys).ok();
    let retired = audit::retired_public_keys(&state.ledger).await?;
    Ok(Json(PublicKeyView {
        public_key: key.as_ref().map(ledger_core::checkpoint::format_public_key_hex),
        key_id: key.as_ref().map(public_key_id),
        vkey: audit::vkey(&state.ledger).ok().map(|vkey| vkey.format()),
        retired,
    }))
}

/// The media type of a checkpoint note.
pub const NOTE_CONTENT_TYPE: &str = "text/plain; charset=utf-8";

/// The latest checkpoint as a C2SP checkpoint note (tlog-checkpoint in a
/// signed note): origin, tree size, base64 root hash, then the ledger's
/// signature line, named by the origin, then the cosignatures of the
/// witnesses it was sent to (`serve --witness`) that cosigned it. Verify it
/// with the `vkey` of `/v1/checkpoints/public-key`.
#[utoipa::path(get, path = "/checkpoint",
    responses((status = 200, description = "a C2SP checkpoint note (see docs/merkle.md)", content_type = "text/plain; charset=utf-8", body = String),
        (status = 401, body = Problem), (status = 404, body = Problem), (status = 503, body = Problem)),
    security(("bearer" = [])))]
pub async fn checkpoint_note(State(state): State<AppState>, _caller: Caller) -> Result<Response, ApiError> {
    let latest = audit::latest_checkpoint(&state.ledger.store).await?;
    let signed =
        latest.ok_or_else(|| ApiError::NotFound("no checkpoint has been signed yet; run `ledger checkpoint`".to_string()))?;
    let mut note = audit::checkpoint_note(&state.ledger, &signed)?;
    note.signatures.extend(state.cosignatures.lines_for(signed.checkpoint.tree_size).await);
    let mut response = note.format().into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(NOTE_CONTENT_TYPE));
    Ok(response)
}

#[utoipa::path(get, path = "/v1/checkpoints/latest",
    responses((status = 200, body = CheckpointView), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn latest_checkpoint(State(state): State<AppState>, _caller: Caller) -> Result<Json<CheckpointView>, ApiError> {
    let latest = audit::latest_checkpoint(&state.ledger.store).await?;
    let signed =
        latest.ok_or_else(|| ApiError::NotFound("no checkpoint has been signed yet; run `ledger checkpoint`".to_string()))?;
    Ok(Json(CheckpointView::from(&signed)))
}

#[utoipa::path(get, path = "/v1/checkpoints/{size}", params(("size" = u64, Path, description = "the checkpoint's tree size")),
    responses((status = 200, body = CheckpointView), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn checkpoint_of_size(
    State(state): State<AppState>,
    _caller: Caller,
    Path(PathSize(size)): Path<PathSize>,
) -> Result<Json<CheckpointView>, ApiError> {
    let stored = audit::checkpoint_of_size(&state.ledger.store, size).await?;
    let signed = stored.ok_or_else(|| ApiError::NotFound(format!("no checkpoint of size {size}")))?;
    Ok(Json(CheckpointView::from(&signed)))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct InclusionQuery {
    /// The event to prove.
    #[serde(deserialize_with = "params::seq::required")]
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub seq: u64,
    /// The tree size (default: the whole chain); at least `seq`.
    #[serde(default, deserialize_with = "params::size::optional")]
    #[param(required = false, value_type = u64, minimum = 1, maximum = 9223372036854775807_i64)]
    pub size: Option<u64>,
}

/// The programme a money event or a reversal is about, read from its payload.
pub(crate) fn programme_of(event_type: &str, payload: &str) -> Option<String> {
    let value: serde_json::Value = serde_json::from_str(payload).ok()?;
    let programme = match event_type {
        "entry_reversed" => value.pointer("/reversed/payload/programme"),
        _ => value.get("programme"),
    };
    programme?.as_str().map(str::to_string)
}

/// A donor may prove only events of programmes it funds.
async fn check_donor_scope(store: &Store, donor: &DonorCode, event_type: &str, payload: &str) -> Result<(), ApiError> {
    let refused = || ApiError::Forbidden(format!("donor {donor} may fetch proofs only of money events of programmes it funds"));
    let programme = programme_of(event_type, payload).and_then(|code| ProgrammeCode::parse(&code).ok()).ok_or_else(refused)?;
    if crate::reports::donor_funds(store, donor, &programme).await? { Ok(()) } else { Err(refused()) }
}

/// Proves that an event is in the tree of the first `size` events. The
/// answer holds hashes only, never the event's payload. Admins, auditors and
/// finance officers may prove any event; a donor only events of programmes
/// it funds.
#[utoipa::path(get, path = "/v1/proofs/inclusion", params(InclusionQuery),
    responses((status = 200, body = InclusionProof), (status = 400, body = Problem), (status = 401, body = Problem),
        (status = 403, body = Problem), (status = 404, body = Problem), (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn inclusion_proof(
    State(state): State<AppState>,
    caller: Caller,
    QueryParams(query): QueryParams<InclusionQuery>,
) -> Result<Json<InclusionProof>, ApiError> {
    let donor = match caller.0.role {
        Role::Donor => Some(caller.0.donor.clone().ok_or(ApiError::Unauthorized)?),
        _ => caller.require(&READERS).map(|_| None)?,
    };
    let store = &state.ledger.store;
    let mut cache = state.merkle.lock().await;
    let events = cache.catch_up(store, Some(&state.ledger.keys)).await?;
    let size = query.size.unwrap_or(events);
    audit::check_inclusion_request(query.seq, size, events).map_err(AuditError::from)?;
    let event = audit::read_event(store, query.seq)
        .await?
        .ok_or(AuditError::from(ProofRequestError::NoSuchEvent { seq: query.seq, events }))?;
    if let Some(donor) = &donor {
        check_donor_scope(store, donor, &event.event_type, &event.payload).await?;
    }
    Ok(Json(audit::prove_inclusion(cache.tree(), &event, size)?))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyQuery {
    /// The older tree size, at least 1.
    #[serde(deserialize_with = "params::from::required")]
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub from: u64,
    /// The newer tree size, at least `from` and at most the chain's length.
    #[serde(deserialize_with = "params::to::required")]
    #[param(minimum = 1, maximum = 9223372036854775807_i64)]
    pub to: u64,
}

/// Proves that the tree of the first `to` events extends the tree of the
/// first `from` events: nothing in between was changed or removed. Holds
/// hashes only, so every role may fetch it (a donor holding two checkpoints
/// checks with it that the ledger only grew between them).
#[utoipa::path(get, path = "/v1/proofs/consistency", params(ConsistencyQuery),
    responses((status = 200, body = ConsistencyProof), (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem),
        (status = 422, body = Problem)),
    security(("bearer" = [])))]
pub async fn consistency_proof(
    State(state): State<AppState>,
    _caller: Caller,
    QueryParams(query): QueryParams<ConsistencyQuery>,
) -> Result<Json<ConsistencyProof>, ApiError> {
    let mut cache = state.merkle.lock().await;
    cache.catch_up(&state.ledger.store, Some(&state.ledger.keys)).await?;
    Ok(Json(audit::prove_consistency(cache.tree(), query.from, query.to)?))
}
