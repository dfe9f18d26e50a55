//! Bearer-token authentication and the role and scope checks of each route.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;
use axum::response::Response;

use super::AppState;
use super::error::ApiError;
use crate::tokens::{self, Principal, Role};

/// The authenticated caller of a read: its token is checked against the
/// database on every request, so a revocation applies at once.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token = bearer_token(parts)?;
        let principal = tokens::authenticate(&state.ledger.store, token).await?;
        principal.map(Caller).ok_or(ApiError::Unauthorized)
    }
}

impl Caller {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        require(&self.0, roles)
    }
}

/// The authenticated caller of a write. Its principal may come from the
/// token cache; the writer checks that the token is still valid in the
/// transaction that appends (`AppendUnit::token_hash`), so a revocation
/// applies at once here too, without a database round trip per request.
#[derive(Clone, Debug)]
pub struct WriteCaller {
    pub principal: Principal,
    pub token_hash: String,
}

impl FromRequestParts<AppState> for WriteCaller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let token_hash = tokens::hash_token(bearer_token(parts)?);
        let principal = state.tokens.principal(&state.ledger.store, &token_hash).await?;
        let principal = principal.ok_or(ApiError::Unauthorized)?;
        Ok(WriteCaller { principal, token_hash })
    }
}

impl WriteCaller {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        require(&self.principal, roles)
    }

    /// The answer to a write, except that a refusal made before the writer
    /// saw it (a role, a malformed body, a money rule) becomes 401 if the
    /// token has been revoked meanwhile: a revoked token is told only that.
    pub async fn unless_revoked(&self, state: &AppState, answer: Result<Response, ApiError>) -> Result<Response, ApiError> {
        let refusal = match answer {
            Err(refusal @ (ApiError::Internal(_) | ApiError::Unavailable(_))) => return Err(refusal),
            Err(ApiError::Unauthorized) => {
                state.tokens.forget(&self.token_hash);
                return Err(ApiError::Unauthorized);
            }
            Err(refusal) => refusal,
            Ok(response) => return Ok(response),
        };
        match tokens::is_valid(&state.ledger.store, &self.token_hash).await {
            Ok(true) => Err(refusal),
            Ok(false) => {
                state.tokens.forget(&self.token_hash);
                Err(ApiError::Unauthorized)
            }
            Err(error) => Err(error.into()),
        }
    }
}

/// Longest token accepted, in bytes.
pub const TOKEN_BYTES_MAX: usize = 256;

/// The token of an `Authorization: Bearer TOKEN` header. The scheme's name
/// is matched without regard to case (RFC 9110, section 11.1).
fn bearer_token(parts: &Parts) -> Result<&str, ApiError> {
    let header_value = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
    let text = header_value.to_str().map_err(|_| ApiError::Unauthorized)?;
    let (scheme, credentials) = text.split_once(' ').ok_or(ApiError::Unauthorized)?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(ApiError::Unauthorized);
    }
    let token = credentials.trim();
    if token.is_empty() || token.len() > TOKEN_BYTES_MAX {
        return Err(ApiError::Unauthorized);
    }
    Ok(token)
}

fn require<'p>(principal: &'p Principal, roles: &[Role]) -> Result<&'p Principal, ApiError> {
    if roles.contains(&principal.role) {
        Ok(principal)
    } else {
        let allowed: Vec<&str> = roles.iter().map(Role::as_str).collect();
        Err(ApiError::Forbidden(format!("this needs a token with role {}", allowed.join(" or "))))
    }
}

/// Roles that read every balance.
pub const READERS: [Role; 3] = [Role::Admin, Role::Auditor, Role::FinanceOfficer];
