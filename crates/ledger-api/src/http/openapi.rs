//! The OpenAPI 3.1 description, generated from the handlers and types.

use axum::Json;
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

#[utoipa::path(get, path = "/openapi.json", responses((status = 200, description = "this document")))]
pub async fn openapi_json() -> Json<utoipa::openapi::OpenApi> {
    Json(ApiDoc::openapi())
}
