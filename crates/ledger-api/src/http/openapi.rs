//! The OpenAPI 3.1 description, generated from the handlers and types, then
//! made exact about what every route may answer: each error is an RFC 9457
//! `application/problem+json` document, and every status a route can give
//! is listed (400 wherever there are parameters or a body, 401 wherever a
//! token is needed, 408, 413, 415 on every POST, 500 and 503 everywhere).

use axum::Json;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, reads, registrations, writes};

#[derive(OpenApi)]
#[openapi(
    info(title = "Reintegration assistance ledger", description = "Hash-chained accounts of donor money paid to returning migrants. \
        Amounts are decimal strings in the programme's currency; errors are RFC 9457 problem+json."),
    paths(
        writes::register_donor, writes::register_programme, writes::commit_funding, writes::receive_funding,
        writes::allocate_budget, writes::reallocate_budget, writes::pay_cash, writes::deliver_in_kind,
        writes::reverse_entry, writes::batch,
        reads::programme_balance, reads::donor_balance, reads::country_balance, reads::events, reads::verify,
        reads::trial_balance, reads::duplicates, reads::healthz,
        registrations::list_programmes, registrations::programme, registrations::list_donors,
        audit::export, audit::checkpoint_public_key, audit::latest_checkpoint, audit::checkpoint_of_size,
        audit::inclusion_proof, audit::consistency_proof, openapi_json,
    ),
    modifiers(&BearerAuth)
)]
pub struct ApiDoc;

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
    }
}

/// The media type of every error answer.
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";

/// What each added status means.
fn status_description(status: &str) -> &'static str {
    match status {
        "400" => "malformed request: a parameter or the body is not of the documented form",
        "401" => "no valid token",
        "403" => "the token's role or scope does not allow this",
        "404" => "not found",
        "408" => "the request took longer than the server waits",
        "409" => "conflict: an Idempotency-Key used with another request, or a code already registered",
        "413" => "the body is larger than the route accepts",
        "415" => "the body is not sent as application/json",
        "422" => "a money rule refused the request",
        "500" => "internal error (logged)",
        _ => "unavailable: shutting down, or the database busy, unreachable or full (nothing recorded), or the outcome of a commit unknown",
    }
}

/// The description as served: utoipa's, made exact (see the module doc).
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let problem = json!({"$ref": "#/components/schemas/Problem"});
    let Some(paths) = document.get_mut("paths").and_then(Value::as_object_mut) else { return document };
    for item in paths.values_mut() {
        let Some(operations) = item.as_object_mut() else { continue };
        for (method, operation) in operations.iter_mut() {
            let mut statuses = vec!["408", "500", "503"];
            let has_parameters = operation.get("parameters").and_then(Value::as_array).is_some_and(|list| !list.is_empty());
            if operation.get("security").is_some() {
                statuses.push("401");
            }
            if has_parameters {
                statuses.push("400");
            }
            if method == "post" {
                statuses.extend(["400", "401", "403", "404", "409", "413", "415", "422"]);
            }
            let responses = operation["responses"].as_object_mut().expect("every operation has responses");
            for status in statuses {
                responses.entry(status).or_insert_with(|| json!({"description": status_description(status)}));
            }
            for (status, response) in responses.iter_mut() {
                if status.as_str() >= "400" {
                    response["content"] = json!({PROBLEM_CONTENT_TYPE: {"schema": problem.clone()}});
                }
            }
            if let Some(parameters) = operation.get_mut("parameters").and_then(Value::as_array_mut) {
                for parameter in parameters {
                    if parameter["name"] == "Idempotency-Key" {
                        parameter["schema"] = json!({
                            "type": "string",
                            "minLength": 1,
                            "maxLength": writes::IDEMPOTENCY_KEY_CHARS_MAX,
                            "pattern": writes::IDEMPOTENCY_KEY_PATTERN,
                        });
                    }
                }
            }
        }
    }
    document
}

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> Json<Value> {
    Json(document())
}
