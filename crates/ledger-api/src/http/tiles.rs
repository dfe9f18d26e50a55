//! `GET /tile/<L>/<N>[.p/<W>]` and `GET /tile/entries/<N>[.p/<W>]`: the
//! Merkle tree as C2SP tiles (see `crate::tiles` and docs/merkle.md).

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::AppState;
use super::auth::Caller;
use super::error::{ApiError, Problem};
use crate::audit;
use crate::tiles::{TileError, TilePath};

/// The media type of tiles and entry bundles.
pub const TILE_CONTENT_TYPE: &str = "application/octet-stream";
/// A full tile never changes: cacheable for a year, immutable.
pub const FULL_TILE_CACHE_CONTROL: &str = "max-age=31536000, immutable";
/// A partial tile is replaced by a wider one as the tree grows.
pub const PARTIAL_TILE_CACHE_CONTROL: &str = "no-cache";

pub fn routes() -> Router<AppState> {
    Router::new().route("/tile/{*path}", get(tile))
}

impl From<TileError> for ApiError {
    fn from(error: TileError) -> Self {
        match error {
            TileError::BadPath => ApiError::BadRequest(error.to_string()),
            TileError::Beyond { .. } => ApiError::NotFound(error.to_string()),
        }
    }
}

/// A tile of the Merkle tree (the hashes of tree level `8 * L`, 32 bytes
/// each) or an entry bundle (each entry a big-endian u16 length, then the
/// event's 32-byte hash). Full tiles are immutable. Any token may read
/// them: they hold hashes only.
#[utoipa::path(get, path = "/tile/{tile_path}",
    params(("tile_path" = String, Path, description = "<L>/<N>[.p/<W>] or entries/<N>[.p/<W>]: L from 0 to 7, N in groups of three digits (x001/x234/067), W from 1 to 255")),
    responses((status = 200, description = "the tile's bytes", content_type = "application/octet-stream", body = Vec<u8>),
        (status = 400, body = Problem), (status = 401, body = Problem), (status = 404, body = Problem)),
    security(("bearer" = [])))]
pub async fn tile(State(state): State<AppState>, _caller: Caller, Path(path): Path<String>) -> Result<Response, ApiError> {
    let tile = TilePath::parse(&path)?;
    let mut cache = state.merkle.lock().await;
    cache.catch_up(&state.ledger.store, Some(&state.ledger.keys)).await?;
    let bytes = match tile.level {
        Some(_) => tile.hashes(cache.tree())?,
        None => {
            let tree_size = cache.tree().len();
            let beyond = TileError::Beyond { tree_size };
            let (first, last) = tile.entry_seqs().ok_or(beyond.clone())?;
            if last > tree_size {
                return Err(beyond.into());
            }
            // The bundle's leaves are copied out so that the tree is not
            // held while the hashes are read from the database.
            let leaves = cache.tree().level_hashes(0, first - 1, tile.width).ok_or(beyond)?.to_vec();
            drop(cache);
            let hashes = audit::checked_event_hashes(&state.ledger.store, &leaves, first).await?;
            hashes.iter().flat_map(|hash| [&[0u8, 32][..], &hash[..]].concat()).collect()
        }
    };
    let cache_control = if tile.is_full() { FULL_TILE_CACHE_CONTROL } else { PARTIAL_TILE_CACHE_CONTROL };
    let mut response = bytes.into_response();
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static(TILE_CONTENT_TYPE));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static(cache_control));
    Ok(response)
}
