//! The write endpoints: request bodies parsed at the edge into domain
//! commands, idempotency keys, and the answer of an append.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use ledger_core::domain::types::{Dimension, Level, PaymentMethod};
use ledger_core::domain::{Command, CountryCode, Currency, DonorCode, ProgrammeCode, Recipient};
use ledger_core::keys::KeyRing;
use ledger_core::store::{AppendUnit, IdempotencyClaim, Receipt, UNIT_COMMANDS_MAX, UnitOutcome};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::AppState;
use super::auth::WriteCaller;
use super::error::ApiError;
use super::input::{self, amount};
use crate::tokens::Role;

/// Largest request body accepted.
pub const REQUEST_BODY_BYTES_MAX: usize = 2 * 1024 * 1024;
/// Longest Idempotency-Key accepted.
pub const IDEMPOTENCY_KEY_CHARS_MAX: usize = 200;
/// An Idempotency-Key is visible ASCII, taken exactly as sent.
pub const IDEMPOTENCY_KEY_PATTERN: &str = "^[!-~]+$";

// Request bodies. Unknown fields are refused; amounts are decimal strings.
// None of them derives Debug: a case id must never reach a log line.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DonorRequest {
    #[schema(example = "EU-EUTF")]
    pub code: String,
    #[schema(example = "EU Emergency Trust Fund for Africa")]
    pub name: String,
    #[schema(example = "eu_instrument")]
    pub kind: String,
    /// Its IATI organisation identifier, where it has one (named in IATI files).
    #[serde(default)]
    #[schema(example = "XI-IATI-EC_INTPA")]
    pub iati_identifier: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ProgrammeRequest {
    #[schema(example = "MOTUSE")]
    pub code: String,
    pub name: String,
    #[schema(example = "EUR")]
    pub currency: String,
    #[schema(example = json!(["MA", "TN", "SN"]))]
    pub countries: Vec<String>,
    #[schema(example = "IOM")]
    pub implementer: String,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", example = "2023-01-01")]
    #[serde(deserialize_with = "input::dates::starts_on")]
    pub starts_on: NaiveDate,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$", example = "2026-12-31")]
    #[serde(deserialize_with = "input::dates::ends_on")]
    pub ends_on: NaiveDate,
    /// How many finance officers, other than its importer, must approve
    /// each payment list of the programme (default 1).
    #[serde(default, deserialize_with = "input::optional_whole_number")]
    #[schema(minimum = 1, maximum = 10)]
    pub approvals_required: Option<u64>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommitmentRequest {
    pub programme: String,
    pub donor: String,
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "1200000.00")]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    #[schema(example = "AMIF/2022/MOTUSE/001")]
    pub reference: String,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    #[serde(deserialize_with = "input::dates::committed_on")]
    pub committed_on: NaiveDate,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReceiptRequest {
    pub programme: String,
    pub donor: String,
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "600000.00")]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    #[serde(deserialize_with = "input::dates::received_on")]
    pub received_on: NaiveDate,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct AllocationRequest {
    pub programme: String,
    pub donor: String,
    #[schema(example = "MA")]
    pub country: String,
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "500000.00")]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReallocationRequest {
    pub programme: String,
    pub donor: String,
    pub from_country: String,
    pub to_country: String,
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32)]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    pub reason: String,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CashPaymentRequest {
    pub programme: String,
    pub donor: String,
    pub country: String,
    /// The implementer's case number, at most 64 characters. Only its
    /// pseudonym is stored. It is normalised first (Unicode NFKC, Unicode
    /// dashes read as '-', spaces and invisible characters dropped, upper
    /// case) and must then hold only A-Z 0-9 - / _ .
    #[schema(example = "MA-2023-000101")]
    pub case_id: String,
    /// Charged to the budget line, in the programme's currency.
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "350.00")]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    /// What the returnee received, in `paid_currency`.
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "3815.00")]
    pub paid_amount: String,
    #[schema(example = "MAD")]
    pub paid_currency: String,
    #[schema(value_type = String, example = "bank_transfer")]
    pub method: PaymentMethod,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    #[serde(deserialize_with = "input::dates::paid_on")]
    pub paid_on: NaiveDate,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InKindGrantRequest {
    pub programme: String,
    pub donor: String,
    pub country: String,
    /// For a grant to one returnee (level individual): the case number, read
    /// as for a cash payment. Exactly one of `case_id` and `community`.
    pub case_id: Option<String>,
    /// For a grant to a community or an institution (level community or structural).
    pub community: Option<String>,
    #[schema(value_type = String, example = "individual")]
    pub level: Level,
    #[schema(value_type = String, example = "economic")]
    pub dimension: Dimension,
    #[schema(example = "business_start_up")]
    pub category: String,
    pub description: String,
    #[schema(pattern = r"^(0|[1-9][0-9]*)(\.[0-9]+)?$", max_length = 32, example = "1500.00")]
    pub amount: String,
    /// The currency of `amount`, if stated: it must be the programme's.
    #[serde(default)]
    #[schema(example = "EUR")]
    pub currency: Option<String>,
    #[schema(value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    #[serde(deserialize_with = "input::dates::delivered_on")]
    pub delivered_on: NaiveDate,
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ReversalRequest {
    /// The seq of the money event to cancel.
    #[serde(deserialize_with = "input::whole_number")]
    #[schema(minimum = 1, maximum = 9223372036854775807_i64)]
    pub seq: u64,
    pub reason: String,
}

/// One command of a batch: a write body tagged with its `type`.
#[derive(Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
pub enum BatchCommand {
    Donor(DonorRequest),
    Programme(ProgrammeRequest),
    Commitment(CommitmentRequest),
    Receipt(ReceiptRequest),
    Allocation(AllocationRequest),
    Reallocation(ReallocationRequest),
    CashPayment(CashPaymentRequest),
    InKindGrant(InKindGrantRequest),
    Reversal(ReversalRequest),
}

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BatchRequest {
    pub commands: Vec<BatchCommand>,
}

/// The answer to a successful append.
#[derive(Serialize, ToSchema)]
pub struct Appended {
    pub seq: u64,
    #[schema(value_type = String, format = Uuid)]
    pub id: uuid::Uuid,
    /// SHA-256 of the event's canonical encoding, hex.
    pub hash: String,
    /// UTC, RFC 3339.
    pub recorded_at: String,
}

#[derive(Serialize, ToSchema)]
pub struct BatchAppended {
    pub events: Vec<Appended>,
}

fn stated_currency(text: Option<&str>) -> Result<Option<Currency>, ApiError> {
    Ok(text.map(Currency::parse).transpose()?)
}

fn programme(text: &str) -> Result<ProgrammeCode, ApiError> {
    Ok(ProgrammeCode::parse(text)?)
}

fn donor(text: &str) -> Result<DonorCode, ApiError> {
    Ok(DonorCode::parse(text)?)
}

fn country(text: &str) -> Result<CountryCode, ApiError> {
    Ok(CountryCode::parse(text)?)
}

impl BatchCommand {
    /// Who may send this command.
    pub fn role(&self) -> Role {
        match self {
            BatchCommand::Donor(_) | BatchCommand::Programme(_) => Role::Admin,
            _ => Role::FinanceOfficer,
        }
    }

    /// Parses the body into a domain command; a case id becomes its pseudonym here.
    pub fn into_command(self, keys: &KeyRing) -> Result<Command, ApiError> {
        let command = match self {
            BatchCommand::Donor(body) => Command::RegisterDonor {
                code: donor(&body.code)?,
                name: body.name,
                kind: body.kind,
                iati_identifier: body.iati_identifier,
            },
            BatchCommand::Programme(body) => Command::RegisterProgramme {
                code: programme(&body.code)?,
                name: body.name,
                currency: Currency::parse(&body.currency)?,
                countries: body.countries.iter().map(|text| country(text)).collect::<Result<_, _>>()?,
                implementer: body.implementer,
                starts_on: body.starts_on,
                ends_on: body.ends_on,
                approvals_required: body.approvals_required.map(super::payment_lists::approvals_required).transpose()?,
            },
            BatchCommand::Commitment(body) => Command::CommitFunding {
                programme: programme(&body.programme)?,
                donor: donor(&body.donor)?,
                amount: amount("amount", &body.amount)?,
                currency: stated_currency(body.currency.as_deref())?,
                reference: body.reference,
                committed_on: body.committed_on,
            },
            BatchCommand::Receipt(body) => Command::ReceiveFunding {
                programme: programme(&body.programme)?,
                donor: donor(&body.donor)?,
                amount: amount("amount", &body.amount)?,
                currency: stated_currency(body.currency.as_deref())?,
                received_on: body.received_on,
            },
            BatchCommand::Allocation(body) => Command::AllocateBudget {
                programme: programme(&body.programme)?,
                donor: donor(&body.donor)?,
                country: country(&body.country)?,
                amount: amount("amount", &body.amount)?,
                currency: stated_currency(body.currency.as_deref())?,
            },
            BatchCommand::Reallocation(body) => Command::ReallocateBudget {
                programme: programme(&body.programme)?,
                donor: donor(&body.donor)?,
                from_country: country(&body.from_country)?,
                to_country: country(&body.to_country)?,
                amount: amount("amount", &body.amount)?,
                currency: stated_currency(body.currency.as_deref())?,
                reason: body.reason,
            },
            BatchCommand::CashPayment(body) => Command::PayCash {
                programme: programme(&body.programme)?,
                donor: donor(&body.donor)?,
                country: country(&body.country)?,
                beneficiary: keys.pseudonymise(&body.case_id)?,
                amount: amount("amount", &body.amount)?,
                currency: stated_currency(body.currency.as_deref())?,
                paid_amount: amount("paid_amount", &body.paid_amount)?,
                paid_currency: Currency::parse(&body.paid_currency)?,
                method: body.method,
                paid_on: body.paid_on,
            },
            BatchCommand::InKindGrant(body) => in_kind_command(body, keys)?,
            BatchCommand::Reversal(body) => Command::Reverse { seq: body.seq, reason: body.reason },
        };
        Ok(command)
    }
}

fn in_kind_command(body: InKindGrantRequest, keys: &KeyRing) -> Result<Command, ApiError> {
    let recipient = match (body.case_id, body.community) {
        (Some(case_id), None) => Recipient::Beneficiary(keys.pseudonymise(&case_id)?),
        (None, Some(community)) => Recipient::Community(community),
        _ => return Err(ApiError::Inconsistent("give exactly one of case_id (one returnee) or community".to_string())),
    };
    Ok(Command::DeliverInKind {
        programme: programme(&body.programme)?,
        donor: donor(&body.donor)?,
        country: country(&body.country)?,
        recipient,
        level: body.level,
        dimension: body.dimension,
        category: body.category,
        description: body.description,
        amount: amount("amount", &body.amount)?,
        currency: stated_currency(body.currency.as_deref())?,
        delivered_on: body.delivered_on,
    })
}

/// Reads a JSON body: right content type, bounded size, valid JSON.
pub async fn read_json<T: DeserializeOwned>(headers: &HeaderMap, body: Body) -> Result<(T, serde_json::Value), ApiError> {
    let content_type = headers.get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or_default();
    let is_json = content_type.split(';').next().is_some_and(|media| media.trim().eq_ignore_ascii_case("application/json"));
    if !is_json {
        return Err(ApiError::UnsupportedMediaType);
    }
    let bytes = axum::body::to_bytes(body, REQUEST_BODY_BYTES_MAX)
        .await
        .map_err(|_| ApiError::PayloadTooLarge(REQUEST_BODY_BYTES_MAX))?;
    let value = input::json_with_unique_keys(&bytes)?;
    let parsed =
        serde_json::from_value(value.clone()).map_err(|error| ApiError::BadRequest(format!("body: {}", describe(&error))))?;
    Ok((parsed, value))
}

/// serde's message with any quoted value blanked out (a case id sent with
/// the wrong type must not be echoed back), field and variant names kept.
fn describe(error: &serde_json::Error) -> String {
    let message = error.to_string();
    let names_only = ["unknown field", "missing field", "unknown variant", "duplicate field"];
    if names_only.iter().any(|prefix| message.starts_with(prefix)) {
        return message;
    }
    let mut redacted = String::with_capacity(message.len());
    let mut open_quote: Option<char> = None;
    for character in message.chars() {
        match open_quote {
            Some(quote) if character == quote => {
                open_quote = None;
                redacted.push(character);
            }
            Some(_) => {}
            None => {
                redacted.push(character);
                if character == '`' || character == '"' {
                    open_quote = Some(character);
                    redacted.push_str("...");
                }
            }
        }
    }
    redacted
}

fn idempotency_claim(
    keys: &KeyRing,
    headers: &HeaderMap,
    path: &str,
    body: &serde_json::Value,
) -> Result<Option<IdempotencyClaim>, ApiError> {
    // serde_json orders object keys, so the fingerprint ignores key order and
    // spacing; it is keyed because the body may hold a case id.
    idempotency_claim_of(keys, headers, format!("{path}\n{body}").as_bytes())
}

/// The claim of a request on its Idempotency-Key, if it sent one:
/// `request` is what makes two requests the same (the path, the query and
/// the body as sent, for a file). The fingerprint is keyed, because the
/// request may hold a case id.
pub fn idempotency_claim_of(keys: &KeyRing, headers: &HeaderMap, request: &[u8]) -> Result<Option<IdempotencyClaim>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let key = value.to_str().map_err(|_| ApiError::BadRequest("Idempotency-Key must be visible ASCII".to_string()))?;
    if !key.bytes().all(|byte| byte.is_ascii_graphic()) {
        return Err(ApiError::BadRequest("Idempotency-Key must be visible ASCII, without spaces".to_string()));
    }
    if key.is_empty() || key.len() > IDEMPOTENCY_KEY_CHARS_MAX {
        return Err(ApiError::BadRequest(format!("Idempotency-Key must have 1 to {IDEMPOTENCY_KEY_CHARS_MAX} characters")));
    }
    let request_hash = hex::encode(keys.request_fingerprint(request));
    Ok(Some(IdempotencyClaim { key: key.to_string(), request_hash }))
}

/// What appending one command gave, short of an error of the edge.
pub enum CommandOutcome {
    /// Recorded now, or earlier under the same Idempotency-Key.
    Recorded(Vec<Receipt>),
    /// The command asked for what the ledger already holds.
    Unchanged,
    Refused(ledger_core::domain::DomainError),
}

/// Appends one command for `caller` (whose role the handler has checked),
/// leaving a refusal to the caller to word.
pub async fn append_command(
    state: &AppState,
    caller: &WriteCaller,
    command: Command,
    idempotency: Option<IdempotencyClaim>,
) -> Result<CommandOutcome, ApiError> {
    let unit = AppendUnit {
        actor: caller.principal.name.clone(),
        commands: vec![command],
        idempotency,
        token_hash: Some(caller.token_hash.clone()),
    };
    match state.writer.append(unit).await? {
        UnitOutcome::Appended(receipts) | UnitOutcome::Replayed(receipts) => Ok(CommandOutcome::Recorded(receipts)),
        UnitOutcome::Unchanged => Ok(CommandOutcome::Unchanged),
        UnitOutcome::IdempotencyConflict => {
            Err(ApiError::Conflict("this Idempotency-Key was used with a different request".to_string()))
        }
        UnitOutcome::Refused { error, .. } => Ok(CommandOutcome::Refused(error)),
        UnitOutcome::TokenRevoked => Err(ApiError::Unauthorized),
    }
}

pub fn appended(receipt: Receipt) -> Appended {
    Appended { seq: receipt.seq, id: receipt.id, hash: receipt.hash, recorded_at: receipt.recorded_at }
}

/// Appends the commands as one unit and answers as the brief says.
async fn append(
    state: &AppState,
    caller: &WriteCaller,
    headers: &HeaderMap,
    path: &str,
    (commands, body): (Vec<BatchCommand>, serde_json::Value),
    batch: bool,
) -> Result<Response, ApiError> {
    for command in &commands {
        caller.require(&[command.role()])?;
    }
    if commands.is_empty() || commands.len() > UNIT_COMMANDS_MAX {
        return Err(ApiError::BadRequest(format!("send 1 to {UNIT_COMMANDS_MAX} commands")));
    }
    let idempotency = idempotency_claim(&state.ledger.keys, headers, path, &body)?;
    let commands = commands.into_iter().map(|command| command.into_command(&state.ledger.keys)).collect::<Result<Vec<_>, _>>()?;
    let unit =
        AppendUnit { actor: caller.principal.name.clone(), commands, idempotency, token_hash: Some(caller.token_hash.clone()) };
    let receipts = match state.writer.append(unit).await? {
        UnitOutcome::Appended(receipts) | UnitOutcome::Replayed(receipts) => receipts,
        UnitOutcome::Unchanged => Vec::new(),
        UnitOutcome::IdempotencyConflict => {
            return Err(ApiError::Conflict("this Idempotency-Key was used with a different request".to_string()));
        }
        UnitOutcome::Refused { index, error } if batch => {
            let error = ApiError::from(error);
            return Err(match error {
                ApiError::Unprocessable(detail) => ApiError::Unprocessable(format!("command {index}: {detail}")),
                ApiError::NotFound(detail) => ApiError::NotFound(format!("command {index}: {detail}")),
                ApiError::Conflict(detail) => ApiError::Conflict(format!("command {index}: {detail}")),
                ApiError::BadRequest(detail) => ApiError::BadRequest(format!("command {index}: {detail}")),
                other => other,
            });
        }
        UnitOutcome::Refused { error, .. } => return Err(error.into()),
        UnitOutcome::TokenRevoked => return Err(ApiError::Unauthorized),
    };
    let mut receipts: Vec<Appended> = receipts.into_iter().map(appended).collect();
    if batch {
        return Ok((StatusCode::CREATED, axum::Json(BatchAppended { events: receipts })).into_response());
    }
    let receipt = receipts.pop().ok_or_else(|| ApiError::internal(anyhow::anyhow!("an append gave no receipt")))?;
    Ok((StatusCode::CREATED, axum::Json(receipt)).into_response())
}

macro_rules! write_route {
    ($name:ident, $request:ident, $variant:ident, $path:literal, $summary:literal) => {
        #[utoipa::path(post, path = $path, summary = $summary, request_body = $request,
            params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key: the same key and body answer the first answer again")),
            responses((status = 201, body = Appended), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
                (status = 403, body = super::error::Problem), (status = 404, body = super::error::Problem), (status = 409, body = super::error::Problem),
                (status = 422, body = super::error::Problem)),
            security(("bearer" = [])))]
        pub async fn $name(State(state): State<AppState>, caller: WriteCaller, headers: HeaderMap, body: Body) -> Result<Response, ApiError> {
            let answer = async {
                let (request, value): ($request, serde_json::Value) = read_json(&headers, body).await?;
                append(&state, &caller, &headers, $path, (vec![BatchCommand::$variant(request)], value), false).await
            };
            caller.unless_revoked(&state, answer.await).await
        }
    };
}

write_route!(register_donor, DonorRequest, Donor, "/v1/donors", "Register a donor (admin)");
write_route!(register_programme, ProgrammeRequest, Programme, "/v1/programmes", "Register a programme (admin)");
write_route!(commit_funding, CommitmentRequest, Commitment, "/v1/commitments", "Record a donor's commitment");
write_route!(receive_funding, ReceiptRequest, Receipt, "/v1/receipts", "Record money received from a donor");
write_route!(allocate_budget, AllocationRequest, Allocation, "/v1/allocations", "Allocate a commitment to a country budget line");
write_route!(
    reallocate_budget,
    ReallocationRequest,
    Reallocation,
    "/v1/reallocations",
    "Move allocated, unspent money between budget lines"
);
write_route!(pay_cash, CashPaymentRequest, CashPayment, "/v1/payments/cash", "Record a cash reinsertion payment");
write_route!(deliver_in_kind, InKindGrantRequest, InKindGrant, "/v1/grants/in-kind", "Record an in-kind reintegration grant");
write_route!(reverse_entry, ReversalRequest, Reversal, "/v1/reversals", "Reverse one money event");

/// Appends a list of write commands atomically: all or nothing.
#[utoipa::path(post, path = "/v1/batch", request_body = BatchRequest,
    params(("Idempotency-Key" = Option<String>, Header, description = "repeat-safe key")),
    responses((status = 201, body = BatchAppended), (status = 400, body = super::error::Problem), (status = 401, body = super::error::Problem),
        (status = 403, body = super::error::Problem), (status = 409, body = super::error::Problem), (status = 422, body = super::error::Problem)),
    security(("bearer" = [])))]
pub async fn batch(
    State(state): State<AppState>,
    caller: WriteCaller,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let answer = async {
        let (request, value): (BatchRequest, serde_json::Value) = read_json(&headers, body).await?;
        append(&state, &caller, &headers, "/v1/batch", (request.commands, value), true).await
    };
    caller.unless_revoked(&state, answer.await).await
}
