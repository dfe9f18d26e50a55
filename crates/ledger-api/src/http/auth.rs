//! Bearer-token authentication and the role and scope checks of each route.

use axum::extract::FromRequestParts;
use axum::http::header;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::tokens::{self, Principal, Role};

/// The authenticated caller of a request.
#[derive(Clone, Debug)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let header_value = parts.headers.get(header::AUTHORIZATION).ok_or(ApiError::Unauthorized)?;
        let text = header_value.to_str().map_err(|_| ApiError::Unauthorized)?;
        let token = text.strip_prefix("Bearer ").ok_or(ApiError::Unauthorized)?.trim();
        if token.is_empty() || token.len() > 256 {
            return Err(ApiError::Unauthorized);
        }
        let principal = tokens::authenticate(&state.ledger.store, token).await.map_err(ApiError::internal)?;
        principal.map(Caller).ok_or(ApiError::Unauthorized)
    }
}

impl Caller {
    /// Refuses unless the caller has one of `roles`.
    pub fn require(&self, roles: &[Role]) -> Result<&Principal, ApiError> {
        if roles.contains(&self.0.role) {
            Ok(&self.0)
        } else {
            let allowed: Vec<&str> = roles.iter().map(Role::as_str).collect();
            Err(ApiError::Forbidden(format!("this needs a token with role {}", allowed.join(" or "))))
        }
    }
}

/// Roles that read every balance.
pub const READERS: [Role; 3] = [Role::Admin, Role::Auditor, Role::FinanceOfficer];
