//! Every error answered as RFC 9457 `application/problem+json`.
//!
//! Status per variant: `BadRequest` 400, `Unauthorized` 401, `Forbidden` 403,
//! `NotFound` 404, `MethodNotAllowed` 405, `NotAcceptable` 406 (no format
//! of the report the `Accept` header names), `Conflict` 409 (also every
//! payment list transition its status, its approvals or four-eyes refuse),
//! `PayloadTooLarge` 413, `UnsupportedMediaType` and `UnsupportedMediaTypeOf`
//! 415, `Unprocessable` 422 (a money rule refused
//! it), `FileRefused` 422 (a payment list or confirmation file refused whole:
//! the report by row, as problem+json members or, asked for, as CSV), `Inconsistent` 422 (fields that contradict each other), `NotReached` 422 (a
//! point beyond the chain's head or after today), `Unavailable` 503 (shutting down; the database held by another
//! writer, unreachable or full: nothing recorded, retry; or the outcome of a
//! commit unknown: retry with the same Idempotency-Key), `Internal` 500 (logged with its cause,
//! answered with a generic body).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use ledger_core::domain::{DomainError, ErrorKind};
use ledger_core::store::StoreError;
use serde::Serialize;
use utoipa::ToSchema;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error("send a valid token as `Authorization: Bearer TOKEN`")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("method not allowed on this path")]
    MethodNotAllowed,
    #[error("{0}")]
    NotAcceptable(String),
    #[error("{0}")]
    Conflict(String),
    #[error("the request body is larger than {0} bytes")]
    PayloadTooLarge(usize),
    #[error("send the body as application/json")]
    UnsupportedMediaType,
    /// A route taking other media types than JSON; the message names them.
    #[error("{0}")]
    UnsupportedMediaTypeOf(String),
    #[error("{}", .0.document.detail)]
    FileRefused(Box<FileRefusal>),
    #[error("{0}")]
    Unprocessable(String),
    #[error("{0}")]
    Inconsistent(String),
    /// A point in the chain or in time the ledger has not reached (or, for
    /// a donor, a day not yet closed).
    #[error("{0}")]
    NotReached(String),
    #[error("{0}")]
    Unavailable(String),
    #[error("internal error")]
    Internal(#[source] anyhow::Error),
}

/// A file refused whole, with its report and the form it is answered in.
#[derive(Debug)]
pub struct FileRefusal {
    pub document: crate::payments::report::RefusalDocument,
    /// Answer the report as CSV (`Accept: text/csv`) rather than problem+json.
    pub as_csv: bool,
}

/// The problem document (RFC 9457).
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI naming the kind of problem.
    #[schema(example = "urn:ledger:problem:money-rule")]
    pub r#type: String,
    #[schema(example = "A money rule refused the request")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    #[schema(example = "budget line MOTUSE/EU-AMIF/MA has 120.00 EUR available; 350.00 EUR requested")]
    pub detail: String,
}

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "malformed", "The request is malformed"),
            ApiError::Unauthorized => (StatusCode::UNAUTHORIZED, "unauthorized", "Authentication required"),
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "Not allowed for this token"),
            ApiError::NotFound(_) => (StatusCode::NOT_FOUND, "not-found", "Not found"),
            ApiError::MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method-not-allowed", "Method not allowed"),
            ApiError::NotAcceptable(_) => (StatusCode::NOT_ACCEPTABLE, "not-acceptable", "No acceptable format"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "Conflict"),
            ApiError::PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "Request body too large"),
            ApiError::UnsupportedMediaTypeOf(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::FileRefused(refusal) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "file-refused", if refusal.as_csv { "" } else { "The file was refused" })
            }
            ApiError::UnsupportedMediaType => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported-media-type", "Unsupported media type")
            }
            ApiError::Unprocessable(_) => (StatusCode::UNPROCESSABLE_ENTITY, "money-rule", "A money rule refused the request"),
            ApiError::Inconsistent(_) => (StatusCode::UNPROCESSABLE_ENTITY, "inconsistent", "The request contradicts itself"),
            ApiError::NotReached(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "not-reached", "The ledger has no figures for that point yet")
            }
            ApiError::Unavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "unavailable", "Service unavailable"),
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "Internal error"),
        }
    }

    pub fn internal(error: impl Into<anyhow::Error>) -> Self {
        ApiError::Internal(error.into())
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        let detail = error.to_string();
        match error.kind() {
            ErrorKind::Invalid => ApiError::BadRequest(detail),
            ErrorKind::Unknown => ApiError::NotFound(detail),
            ErrorKind::Conflict => ApiError::Conflict(detail),
            ErrorKind::MoneyRule => ApiError::Unprocessable(detail),
            ErrorKind::Inconsistent => ApiError::Inconsistent(detail),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(error: StoreError) -> Self {
        match error {
            StoreError::Conflict => {
                ApiError::Conflict("another writer appended at the same position; retry the request".to_string())
            }
            StoreError::WriterStopped => {
                ApiError::Unavailable("the server is shutting down; retry on another server".to_string())
            }
            StoreError::Busy(cause) => {
                tracing::warn!(cause = %cause, "the database was busy; the request was refused");
                ApiError::Unavailable(
                    "the ledger's database is busy (another writer or a rebuild holds it); nothing was recorded; retry shortly"
                        .to_string(),
                )
            }
            StoreError::Unreachable(cause) => {
                tracing::error!(cause = %cause, "the database cannot be reached; the request was refused");
                ApiError::Unavailable(
                    "the ledger's database cannot be reached; nothing was recorded; retry once it is back".to_string(),
                )
            }
            StoreError::Full(cause) => {
                tracing::error!(cause = %cause, "the database is full; the request was refused");
                ApiError::Unavailable(
                    "the ledger's database is full; nothing was recorded; retry once space has been freed".to_string(),
                )
            }
            StoreError::OutcomeUnknown(cause) => {
                tracing::error!(cause = %cause, "the outcome of a write is unknown");
                ApiError::Unavailable(
                    "the connection to the ledger's database was lost while the request was being committed, so whether \
                     it was recorded is unknown; resending it with the same Idempotency-Key is safe: it is recorded at most once"
                        .to_string(),
                )
            }
            other => ApiError::internal(other),
        }
    }
}

impl From<projections::balances::BalanceError> for ApiError {
    fn from(error: projections::balances::BalanceError) -> Self {
        use projections::balances::BalanceError;
        match error {
            BalanceError::NotFound(message) => ApiError::NotFound(message),
            BalanceError::Database(database) => StoreError::from(database).into(),
            BalanceError::Store(store) => store.into(),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::reports::ReportError> for ApiError {
    fn from(error: crate::reports::ReportError) -> Self {
        use crate::reports::ReportError;
        match error {
            ReportError::Store(store) => store.into(),
            ReportError::UnknownProgramme(_) | ReportError::UnknownDonor(_) | ReportError::NotFunded { .. } => {
                ApiError::NotFound(error.to_string())
            }
            ReportError::Incomplete(_) => ApiError::Inconsistent(error.to_string()),
            other => ApiError::internal(other),
        }
    }
}

impl From<crate::tokens::TokenError> for ApiError {
    fn from(error: crate::tokens::TokenError) -> Self {
        match error {
            // A lost or busy database while checking a token is a 503 like any other.
            crate::tokens::TokenError::Database(database) => match StoreError::from(database) {
                StoreError::Database(other) => ApiError::internal(other),
                store => store.into(),
            },
            other => ApiError::internal(other),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::FileRefused(refusal) = self {
            return file_refusal_response(*refusal);
        }
        let (status, slug, title) = self.parts();
        let detail = match &self {
            ApiError::Internal(cause) => {
                tracing::error!(error = format!("{cause:#}"), "internal error");
                "the server could not complete the request; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        let problem =
            Problem { r#type: format!("urn:ledger:problem:{slug}"), title: title.to_string(), status: status.as_u16(), detail };
        let mut response = (status, axum::Json(problem)).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if matches!(self, ApiError::Unauthorized) {
            response.headers_mut().insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

fn file_refusal_response(refusal: FileRefusal) -> Response {
    if refusal.as_csv {
        let report = crate::payments::report::Report { errors: refusal.document.errors, warnings: refusal.document.warnings };
        let mut response = (StatusCode::UNPROCESSABLE_ENTITY, report.to_csv()).into_response();
        response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
        return response;
    }
    let mut response = (StatusCode::UNPROCESSABLE_ENTITY, axum::Json(refusal.document)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(error: StoreError) -> (StatusCode, String) {
        let api_error = ApiError::from(error);
        let status = api_error.parts().0;
        (status, api_error.to_string())
    }

    #[test]
    fn a_database_that_is_lost_full_or_whose_commit_is_in_doubt_is_a_503_that_says_which() {
        let (status, detail) = answer(StoreError::Unreachable("connection reset".to_string()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(detail.contains("cannot be reached") && detail.contains("nothing was recorded"), "{detail}");
        assert!(!detail.contains("another writer"), "an unreachable database is not blamed on another writer: {detail}");
        let (status, detail) = answer(StoreError::Full("database or disk is full".to_string()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(detail.contains("full") && detail.contains("nothing was recorded"), "{detail}");
        let (status, detail) = answer(StoreError::OutcomeUnknown("lost at commit".to_string()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(detail.contains("unknown") && detail.contains("same Idempotency-Key"), "{detail}");
        assert!(!detail.contains("nothing was recorded"), "an unknown outcome does not claim nothing was written: {detail}");
        let (status, detail) = answer(StoreError::Busy("database is locked".to_string()));
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        assert!(detail.contains("busy"), "{detail}");
    }
}
