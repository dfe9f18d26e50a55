//! The OpenAPI 3.1 description, generated from the handlers and types, then
//! made exact about what every route may answer: each error is an RFC 9457
//! `application/problem+json` document, and every status a route can give
//! is listed (400 wherever there are parameters or a body, 401 wherever a
//! token is needed, 408, 413, 415 on every POST, 500 and 503 everywhere).

use axum::Json;
use ledger_core::domain::types;
use serde_json::{Value, json};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{audit, page, payment_list_reads, payment_lists, reads, registrations, reports, tiles, writes};

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
        reports::statement, reports::iati,
        payment_lists::import, payment_list_reads::list_payment_lists, payment_list_reads::payment_list,
        payment_lists::approve, payment_lists::release, payment_list_reads::instructions_file, payment_lists::confirm,
        payment_lists::cancel, payment_lists::set_approvals_required,
        audit::export, audit::checkpoint_note, tiles::tile, audit::checkpoint_public_key, audit::latest_checkpoint, audit::checkpoint_of_size,
        audit::inclusion_proof, audit::consistency_proof, openapi_json,
        page::index, page::script, page::style, page::programmes,
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
        "406" => "no format the route answers is acceptable to the Accept header",
        "408" => "the request took longer than the server waits",
        "409" => "conflict: an Idempotency-Key used with another request, or a code already registered",
        "413" => "the body is larger than the route accepts",
        "415" => "the body is not sent as application/json",
        "422" => "a money rule refused the request, or a file was refused whole (its report by row)",
        "500" => "internal error (logged)",
        _ => {
            "unavailable: shutting down, or the database busy, unreachable or full (nothing recorded), or the outcome of a commit unknown"
        }
    }
}

/// The values of the request fields whose form the server checks beyond
/// their JSON type, by field name: codes, ISO codes, free text, case ids
/// and the enumerations.
struct FieldForms {
    code: Value,
    country: Value,
    currency: Value,
    text: Value,
    case_id: Value,
}

impl FieldForms {
    fn new() -> FieldForms {
        let countries = types::country_codes();
        FieldForms {
            code: json!({"type": "string", "pattern": types::CODE_PATTERN, "maxLength": types::CODE_CHARS_MAX}),
            country: json!({"type": "string", "enum": countries}),
            currency: json!({"type": "string", "enum": types::currency_codes()}),
            text: json!({"type": "string", "pattern": types::TEXT_PATTERN, "minLength": 1, "maxLength": types::TEXT_CHARS_MAX}),
            case_id: json!({
                "type": "string", "pattern": ledger_core::keys::case_id_pattern(),
                "maxLength": ledger_core::keys::CASE_ID_CHARS_MAX,
            }),
        }
    }

    /// The form of a request field, if the server checks one.
    fn of(&self, field: &str) -> Option<Value> {
        let enumeration = |values: &[&str]| json!({"type": "string", "enum": values});
        Some(match field {
            "code" | "programme" | "donor" => self.code.clone(),
            "country" | "from_country" | "to_country" => self.country.clone(),
            "countries" => json!({
                "type": "array", "items": self.country, "minItems": 1,
                "maxItems": ledger_core::domain::decide::PROGRAMME_COUNTRIES_MAX, "uniqueItems": true,
            }),
            "currency" | "paid_currency" => self.currency.clone(),
            "name" | "kind" | "reference" | "reason" | "category" | "description" | "implementer" | "community" => {
                self.text.clone()
            }
            "case_id" => self.case_id.clone(),
            // What `decide::parse_iati_identifier` takes: no whitespace or
            // control character (as Rust's char classes have them), none of / & | ?.
            "iati_identifier" => json!({
                "type": "string",
                "pattern": "^[^\\u0000-\\u0020\\u007f-\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000/&|?]+$",
                "minLength": 1,
                "maxLength": ledger_core::domain::decide::IATI_IDENTIFIER_CHARS_MAX,
            }),
            "method" => enumeration(&["cash_in_hand", "mobile_money", "bank_transfer"]),
            "level" => enumeration(&["individual", "community", "structural"]),
            "dimension" => enumeration(&["economic", "social", "psychosocial"]),
            _ => return None,
        })
    }
}

/// Sets the form of every constrained field of the request bodies (the
/// `*Request` schemas), keeping its description and example; an optional
/// field stays nullable.
fn constrain_request_fields(document: &mut Value, forms: &FieldForms) {
    let Some(schemas) = document.pointer_mut("/components/schemas").and_then(Value::as_object_mut) else { return };
    for (name, schema) in schemas.iter_mut() {
        if name == "BatchRequest" {
            schema["properties"]["commands"]["minItems"] = json!(1);
            schema["properties"]["commands"]["maxItems"] = json!(ledger_core::store::UNIT_COMMANDS_MAX);
            continue;
        }
        if name == "PaymentListRequest" {
            schema["properties"]["rows"]["minItems"] = json!(1);
            schema["properties"]["rows"]["maxItems"] = json!(crate::payments::list_file::PAYMENT_LIST_ROWS_MAX);
            schema["additionalProperties"] = json!(false);
            continue;
        }
        if !name.ends_with("Request") {
            continue;
        }
        let Some(properties) = schema.get_mut("properties").and_then(Value::as_object_mut) else { continue };
        for (field, property) in properties.iter_mut() {
            let Some(mut form) = forms.of(field) else { continue };
            let nullable = property.get("type").and_then(Value::as_array).is_some_and(|types| types.contains(&json!("null")));
            if nullable {
                if let Some(values) = form.get_mut("enum").and_then(Value::as_array_mut) {
                    values.push(Value::Null);
                }
                form["type"] = json!([form["type"].clone(), "null"]);
            }
            for kept in ["description", "example", "examples"] {
                if let Some(value) = property.get(kept) {
                    form[kept] = value.clone();
                }
            }
            *property = form;
        }
    }
}

/// Writes each command of a batch as one object: the body of its kind and
/// its `type`. (utoipa writes `allOf` of the body and the tag, which no
/// value can satisfy, the body refusing any property it does not name.)
fn inline_batch_commands(document: &mut Value) {
    let Some(schemas) = document.pointer("/components/schemas").and_then(Value::as_object).cloned() else { return };
    let Some(variants) = document.pointer_mut("/components/schemas/BatchCommand/oneOf").and_then(Value::as_array_mut) else {
        return;
    };
    for variant in variants {
        let Some([body, tag]) =
            variant.get("allOf").and_then(Value::as_array).and_then(|parts| <[Value; 2]>::try_from(parts.clone()).ok())
        else {
            continue;
        };
        let Some(name) = body["$ref"].as_str().and_then(|reference| reference.rsplit('/').next()) else { continue };
        let Some(mut inlined) = schemas.get(name).cloned() else { continue };
        inlined["properties"]["type"] = tag["properties"]["type"].clone();
        match inlined.get_mut("required").and_then(Value::as_array_mut) {
            Some(required) => required.push(json!("type")),
            None => inlined["required"] = json!(["type"]),
        }
        *variant = inlined;
    }
}

/// The description as served: utoipa's, made exact (see the module doc).
pub fn document() -> Value {
    let mut document = serde_json::to_value(ApiDoc::openapi()).expect("the OpenAPI document serializes");
    let forms = FieldForms::new();
    constrain_request_fields(&mut document, &forms);
    inline_batch_commands(&mut document);
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
                    let form = match parameter["name"].as_str() {
                        Some("code" | "programme" | "donor") => Some(forms.code.clone()),
                        Some("iso" | "country") => Some(forms.country.clone()),
                        Some("status") => {
                            Some(json!({"type": "string", "enum": ["imported", "approved", "released", "closed", "cancelled"]}))
                        }
                        Some("tile_path") => Some(json!({"type": "string", "pattern": crate::tiles::TILE_PATH_PATTERN})),
                        _ => None,
                    };
                    if let Some(form) = form {
                        parameter["schema"] = form;
                    }
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
    static DOCUMENT: std::sync::OnceLock<Value> = std::sync::OnceLock::new();
    Json(DOCUMENT.get_or_init(document).clone())
}
