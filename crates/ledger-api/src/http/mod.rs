//! The HTTP API (axum): routes, roles, problem+json errors, OpenAPI.

pub mod as_of;
pub mod audit;
pub mod auth;
pub mod error;
pub mod input;
pub mod openapi;
pub mod page;
pub mod params;
pub mod payment_list_reads;
pub mod payment_lists;
pub mod reads;
pub mod registrations;
pub mod reports;
pub mod tiles;
pub mod writes;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::http::{HeaderValue, Request, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use ledger_core::store::Writer;
use tokio::net::TcpListener;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};
use tower_http::trace::TraceLayer;

use crate::config::Ledger;
use crate::tokens::{self, Role};
use error::ApiError;

/// A request taking longer than this is answered 408 (its append, if
/// already queued, still completes).
pub const REQUEST_TIMEOUT_MS: u64 = 30_000;
/// Bytes of a non-problem error body kept as the problem's detail.
const ERROR_DETAIL_BYTES_MAX: usize = 1_024;

#[derive(Clone, Debug)]
pub struct AppState {
    pub ledger: Ledger,
    pub writer: Writer,
    /// The Merkle tree over the chain, extended on each proof request.
    pub merkle: crate::audit::SharedMerkleCache,
    /// Principals of tokens found valid, for writes (`auth::WriteCaller`).
    pub tokens: Arc<crate::tokens::TokenCache>,
    /// The last fold of the events, for balances as of a point in the past.
    pub folds: Arc<as_of::FoldCache>,
    /// What day it is, for the as-of rules.
    pub clock: as_of::Clock,
    /// The witnesses' cosignatures of the latest checkpoint.
    pub cosignatures: crate::cosigning::SharedCosignatures,
}

/// Every route of the API.
pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/v1/donors", post(writes::register_donor).get(registrations::list_donors))
        .route("/v1/programmes", post(writes::register_programme).get(registrations::list_programmes))
        .route("/v1/programmes/{code}", get(registrations::programme))
        .route("/v1/programmes/{code}/approvals-required", post(payment_lists::set_approvals_required))
        .route("/v1/commitments", post(writes::commit_funding))
        .route("/v1/receipts", post(writes::receive_funding))
        .route("/v1/allocations", post(writes::allocate_budget))
        .route("/v1/reallocations", post(writes::reallocate_budget))
        .route("/v1/payments/cash", post(writes::pay_cash))
        .route("/v1/grants/in-kind", post(writes::deliver_in_kind))
        .route("/v1/reversals", post(writes::reverse_entry))
        .route("/v1/batch", post(writes::batch))
        .route("/v1/programmes/{code}/balance", get(reads::programme_balance))
        .route("/v1/donors/{code}/balance", get(reads::donor_balance))
        .route("/v1/countries/{iso}/balance", get(reads::country_balance))
        .route("/v1/events", get(reads::events))
        .route("/v1/verify", get(reads::verify))
        .route("/v1/trial-balance", get(reads::trial_balance))
        .route("/v1/duplicates", get(reads::duplicates))
        .route("/v1/payment-lists", post(payment_lists::import).get(payment_list_reads::list_payment_lists))
        .route("/v1/payment-lists/{id}", get(payment_list_reads::payment_list))
        .route("/v1/payment-lists/{id}/approvals", post(payment_lists::approve))
        .route("/v1/payment-lists/{id}/release", post(payment_lists::release))
        .route("/v1/payment-lists/{id}/instructions", get(payment_list_reads::instructions_file))
        .route("/v1/payment-lists/{id}/confirmations", post(payment_lists::confirm))
        .route("/v1/payment-lists/{id}/cancel", post(payment_lists::cancel))
        .route("/v1/reports/statement", get(reports::statement))
        .route("/v1/reports/iati", get(reports::iati))
        .route("/healthz", get(reads::healthz))
        .route("/openapi.json", get(openapi::openapi_json))
        .merge(audit::routes())
        .merge(tiles::routes())
        .merge(page::routes())
        .fallback(|| async { ApiError::NotFound("no such route; see /openapi.json".to_string()) })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .with_state(state)
        .layer(axum::middleware::map_response(problem_for_every_error))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            Duration::from_millis(REQUEST_TIMEOUT_MS),
        ))
        .layer(PropagateRequestIdLayer::x_request_id())
        .layer(TraceLayer::new_for_http().make_span_with(|request: &Request<Body>| {
            let request_id = request.headers().get("x-request-id").and_then(|value| value.to_str().ok()).unwrap_or_default();
            // The path only: query strings and bodies are never logged.
            tracing::info_span!("request", method = %request.method(), path = %request.uri().path(), request_id = %request_id)
        }))
        .layer(SetRequestIdLayer::x_request_id(MakeRequestUuid))
}

/// Turns errors produced outside the handlers (rejected query strings,
/// timeouts) into problem+json as well.
async fn problem_for_every_error(response: Response) -> Response {
    let status = response.status();
    let content_type = response.headers().get(header::CONTENT_TYPE);
    let is_problem = content_type.is_some_and(|value| value == "application/problem+json");
    // A file's validation report asked for as CSV is answered as CSV.
    let is_report = content_type.is_some_and(|value| value.as_bytes().starts_with(b"text/csv"));
    if !(status.is_client_error() || status.is_server_error()) || is_problem || is_report {
        return response;
    }
    let bytes = axum::body::to_bytes(response.into_body(), ERROR_DETAIL_BYTES_MAX).await.unwrap_or_default();
    let detail = String::from_utf8_lossy(&bytes).trim().to_string();
    let detail = if detail.is_empty() { status.canonical_reason().unwrap_or("error").to_lowercase() } else { detail };
    let problem = error::Problem {
        r#type: format!("urn:ledger:problem:http-{}", status.as_u16()),
        title: status.canonical_reason().unwrap_or("Error").to_string(),
        status: status.as_u16(),
        detail,
    };
    let mut response = (status, axum::Json(problem)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

/// Binds, optionally loads the demo, and serves until SIGINT or SIGTERM.
/// Every request accepted before the signal is answered and its events
/// committed before the process exits.
pub async fn serve(ledger: Ledger, bind: SocketAddr, demo: bool) -> anyhow::Result<()> {
    serve_with(ledger, bind, demo, None).await
}

/// As [`serve`], and with `checkpoint_every` also signs a checkpoint at
/// that interval whenever the chain has grown.
pub async fn serve_with(ledger: Ledger, bind: SocketAddr, demo: bool, checkpoint_every: Option<Duration>) -> anyhow::Result<()> {
    if checkpoint_every.is_some() {
        crate::audit::signing_key(&ledger.keys).map_err(|error| anyhow::anyhow!("--checkpoint-every: {error}"))?;
    }
    if demo {
        load_demo(&ledger).await?;
    }
    let listener = TcpListener::bind(bind).await?;
    let address = listener.local_addr()?;
    println!("ledger listening on http://{address}");
    tracing::info!(%address, "serving");
    serve_on(listener, ledger, checkpoint_every, shutdown_signal()).await
}

/// Serves on `listener` until `shutdown` completes, then answers what is in
/// flight and waits for the writer to commit everything it accepted.
pub async fn serve_on(
    listener: TcpListener,
    ledger: Ledger,
    checkpoint_every: Option<Duration>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    serve_on_with_clock(listener, ledger, checkpoint_every, as_of::Clock::system(), shutdown).await
}

/// As [`serve_on`], with the clock the as-of rules read.
pub async fn serve_on_with_clock(
    listener: TcpListener,
    ledger: Ledger,
    checkpoint_every: Option<Duration>,
    clock: as_of::Clock,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let (writer, writer_task) = Writer::spawn(ledger.appender());
    let merkle = crate::audit::shared_merkle_cache();
    let cosignatures = crate::cosigning::SharedCosignatures::default();
    let mut audit_tasks = spawn_audit_tasks(&ledger, &merkle, checkpoint_every);
    if !ledger.witness_urls.is_empty() {
        audit_tasks.spawn(crate::cosigning::push_periodically(ledger.clone(), merkle.clone(), cosignatures.clone()));
    }
    let state = AppState { ledger, writer, merkle, tokens: Arc::default(), folds: Arc::default(), clock, cosignatures };
    audit_tasks.spawn(as_of::keep_donor_day_folded(state.clone()));
    let app = router(state);
    axum::serve(listener, app).with_graceful_shutdown(shutdown).await?;
    audit_tasks.abort_all();
    // They hold the state, and with it a handle on the writer: gone before
    // the writer is waited for.
    while audit_tasks.join_next().await.is_some() {}
    // The router (and every Writer handle) is gone: the writer drains its queue and stops.
    writer_task.await?;
    tracing::info!("stopped; every acknowledged event is committed");
    Ok(())
}

/// Builds the Merkle tree in the background, so that the first proof
/// request need not, and signs checkpoints periodically if asked to.
fn spawn_audit_tasks(
    ledger: &Ledger,
    merkle: &crate::audit::SharedMerkleCache,
    checkpoint_every: Option<Duration>,
) -> tokio::task::JoinSet<()> {
    let mut tasks = tokio::task::JoinSet::new();
    let (warm_ledger, warm_merkle) = (ledger.clone(), merkle.clone());
    tasks.spawn(async move {
        let mut cache = warm_merkle.lock().await;
        if let Err(error) = cache.catch_up(&warm_ledger.store, Some(&warm_ledger.keys)).await {
            tracing::error!(error = %error, "the Merkle tree could not be built; proofs will retry");
        }
    });
    if let Some(every) = checkpoint_every {
        tasks.spawn(crate::audit::checkpoint_periodically(ledger.clone(), merkle.clone(), every));
    }
    tasks
}

async fn load_demo(ledger: &Ledger) -> anyhow::Result<()> {
    match crate::demo::load(ledger, "demo").await {
        Ok(events) => println!("demo data loaded: {events} events"),
        Err(crate::demo::DemoError::NotEmpty(head)) => println!("the ledger already holds {head} events; demo data not loaded"),
        Err(error) => return Err(error.into()),
    }
    let roles = [
        (Role::Admin, None, "demo-admin"),
        (Role::FinanceOfficer, None, "demo-finance-officer"),
        (Role::Auditor, None, "demo-auditor"),
        (Role::Donor, Some("EU-AMIF"), "demo-donor-eu-amif"),
    ];
    for (role, donor, base_name) in roles {
        let token = create_unique_token(ledger, role, donor, base_name).await?;
        let scope = donor.map(|code| format!(" ({code})")).unwrap_or_default();
        println!("{:<16} {token}{scope}", role.as_str());
    }
    Ok(())
}

/// Creates a token named `base_name`, or `base_name-2`, `-3`... if taken.
async fn create_unique_token(ledger: &Ledger, role: Role, donor: Option<&str>, base_name: &str) -> anyhow::Result<String> {
    const ATTEMPTS_MAX: u32 = 100;
    for attempt in 1..=ATTEMPTS_MAX {
        let name = if attempt == 1 { base_name.to_string() } else { format!("{base_name}-{attempt}") };
        match tokens::create(&ledger.store, role, donor, &name).await {
            Err(tokens::TokenError::NameTaken(_)) => continue,
            result => return Ok(result?),
        }
    }
    anyhow::bail!("could not find a free token name for {base_name}")
}

async fn shutdown_signal() {
    let interrupt = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
    tracing::info!("shutting down: finishing requests in flight");
}
