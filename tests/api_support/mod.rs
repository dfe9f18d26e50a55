//! The HTTP harness of `tests/api.rs`: the real server started in-process on
//! port 0 over a fresh database, one token per role, JSON body builders and
//! the checks every API test repeats. Every answer body is kept in a
//! transcript, so that a test can search all of them (for a case id).

use std::sync::Mutex;
use std::time::Duration;

use ledger_api::config::Ledger;
use ledger_api::http::as_of::Clock;
use ledger_api::http::serve_on_with_clock;
use ledger_api::reports::iati::ReportingOrg;
use ledger_api::tokens::{self, Role};
use reqwest::Method;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::common::TestDatabase;

/// The IATI identifier of the organisation the test server publishes as.
pub const REPORTING_ORG_REF: &str = "XM-DAC-47066";
/// The `prev_hash` of the first event.
pub const GENESIS_PREV_HASH_HEX: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// The content type of every error answer (RFC 9457).
pub const PROBLEM_CONTENT_TYPE: &str = "application/problem+json";
/// How long a test waits for one answer before failing.
const CLIENT_TIMEOUT_MS: u64 = 60_000;

/// One HTTP answer, read completely.
#[derive(Debug, Clone)]
pub struct Answer {
    pub status: u16,
    pub content_type: String,
    pub www_authenticate: Option<String>,
    pub body: String,
}

impl Answer {
    /// The body as JSON; panics (showing the body) when it is not JSON.
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|error| panic!("answer {} is not JSON ({error}): {}", self.status, self.body))
    }
}

/// The server under test, its database and one token per role.
pub struct TestServer {
    pub base_url: String,
    pub client: reqwest::Client,
    pub ledger: Ledger,
    pub admin: String,
    pub finance_officer: String,
    pub auditor: String,
    transcript: Mutex<Vec<String>>,
    shutdown: oneshot::Sender<()>,
    serving: JoinHandle<anyhow::Result<()>>,
}

impl TestServer {
    /// Starts the server through `ledger serve`'s own serving path, on 127.0.0.1:0, with
    /// a graceful shutdown driven by [`TestServer::stop`].
    pub async fn start(database: &TestDatabase) -> TestServer {
        Self::start_with_clock(database, Clock::system()).await
    }

    /// As [`TestServer::start`], with the server's day set `days` ahead, so
    /// that what the test records today is, for the server, a closed day
    /// (donors see figures as of the end of a closed day).
    pub async fn start_days_ahead(database: &TestDatabase, days: i64) -> TestServer {
        Self::start_with_clock(database, Clock::days_ahead(days)).await
    }

    async fn start_with_clock(database: &TestDatabase, clock: Clock) -> TestServer {
        let organisation = ReportingOrg::parse(REPORTING_ORG_REF, "International Organization for Migration", "40")
            .expect("the test's reporting organisation is well formed");
        let ledger = database.open().await.with_reporting_org(organisation);
        let admin = create_token(&ledger, Role::Admin, None, "admin@test").await;
        let finance_officer = create_token(&ledger, Role::FinanceOfficer, None, "finance-officer@test").await;
        let auditor = create_token(&ledger, Role::Auditor, None, "auditor@test").await;
        Self::serve(ledger, clock, [admin, finance_officer, auditor]).await
    }

    /// A second server on the database of `first`, with its tokens: as a
    /// second `ledger serve` on one PostgreSQL (or one SQLite file).
    #[allow(dead_code, reason = "tests/payment_lists_http.rs starts a second server; tests/api.rs does not")]
    pub async fn start_beside(database: &TestDatabase, first: &TestServer) -> TestServer {
        Self::start_beside_days_ahead(database, first, 0).await
    }

    /// As [`TestServer::start_beside`], with the second server's day set
    /// `days` ahead.
    #[allow(dead_code, reason = "tests/payment_lists_http.rs starts a second server; tests/api.rs does not")]
    pub async fn start_beside_days_ahead(database: &TestDatabase, first: &TestServer, days: i64) -> TestServer {
        let tokens = [first.admin.clone(), first.finance_officer.clone(), first.auditor.clone()];
        Self::serve(database.open().await, Clock::days_ahead(days), tokens).await
    }

    async fn serve(ledger: Ledger, clock: Clock, [admin, finance_officer, auditor]: [String; 3]) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("a free port on 127.0.0.1");
        let address = listener.local_addr().expect("the listener has an address");
        let (shutdown, signal) = oneshot::channel::<()>();
        let serving = tokio::spawn(serve_on_with_clock(listener, ledger.clone(), None, clock, async move {
            let _ = signal.await;
        }));
        let client =
            reqwest::Client::builder().timeout(Duration::from_millis(CLIENT_TIMEOUT_MS)).build().expect("an HTTP client");
        TestServer {
            base_url: format!("http://{address}"),
            client,
            ledger,
            admin,
            finance_officer,
            auditor,
            transcript: Mutex::new(Vec::new()),
            shutdown,
            serving,
        }
    }

    /// Shuts down gracefully, as `ledger serve` does on a signal: stops
    /// accepting, answers what is in flight, then waits for the writer to
    /// drain its queue.
    pub async fn stop(self) {
        let TestServer { client, shutdown, serving, .. } = self;
        drop(client);
        let _ = shutdown.send(());
        serving.await.expect("the server task does not panic").expect("the server stops cleanly, its writer drained");
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A token for a registered donor.
    pub async fn donor_token(&self, donor: &str) -> String {
        create_token(&self.ledger, Role::Donor, Some(donor), &format!("donor-{donor}")).await
    }

    /// Sends a request, reads the whole answer and records its body.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> Answer {
        let response = request.send().await.expect("the server answers");
        let status = response.status().as_u16();
        let header = |name: reqwest::header::HeaderName| {
            response.headers().get(name).map(|value| value.to_str().expect("headers are ASCII").to_string())
        };
        let content_type = header(reqwest::header::CONTENT_TYPE).unwrap_or_default();
        let www_authenticate = header(reqwest::header::WWW_AUTHENTICATE);
        let body = response.text().await.expect("the answer body can be read");
        self.transcript.lock().expect("the transcript lock is not poisoned").push(body.clone());
        Answer { status, content_type, www_authenticate, body }
    }

    /// A request with a bearer token.
    pub fn request(&self, method: Method, path: &str, token: &str) -> reqwest::RequestBuilder {
        self.client.request(method, self.url(path)).bearer_auth(token)
    }

    pub async fn get(&self, token: &str, path: &str) -> Answer {
        self.send(self.request(Method::GET, path, token)).await
    }

    pub async fn post(&self, token: &str, path: &str, body: &Value) -> Answer {
        self.send(self.request(Method::POST, path, token).json(body)).await
    }

    /// Posts a body given as text, as `application/json`.
    pub async fn post_text(&self, token: &str, path: &str, body: &str) -> Answer {
        let request = self.request(Method::POST, path, token).header("content-type", "application/json").body(body.to_string());
        self.send(request).await
    }

    /// Posts a body given as text with an Idempotency-Key.
    pub async fn post_with_key(&self, token: &str, path: &str, key: &str, body: &str) -> Answer {
        let request = self
            .request(Method::POST, path, token)
            .header("content-type", "application/json")
            .header("idempotency-key", key)
            .body(body.to_string());
        self.send(request).await
    }

    /// Posts a body that must be appended; returns its seq.
    pub async fn post_created(&self, token: &str, path: &str, body: &Value) -> u64 {
        let answer = self.post(token, path, body).await;
        assert_created(&answer, &format!("POST {path} {body}"))
    }

    /// Every response body received so far.
    pub fn transcript(&self) -> Vec<String> {
        self.transcript.lock().expect("the transcript lock is not poisoned").clone()
    }

    /// The head seq, as the auditor's `/v1/verify` gives it; the chain must verify.
    pub async fn head_seq(&self) -> u64 {
        let verify = self.verify().await;
        assert_eq!(verify["valid"], json!(true), "the chain verifies: {verify}");
        verify["head_seq"].as_u64().expect("head_seq is a number")
    }

    pub async fn verify(&self) -> Value {
        let answer = self.get(&self.auditor, "/v1/verify").await;
        assert_eq!(answer.status, 200, "the auditor can verify: {}", answer.body);
        answer.json()
    }

    /// Every event, read page by page through `/v1/events` with `page_size`,
    /// following `next_after` until it is absent.
    pub async fn all_events(&self, page_size: u32) -> Vec<Value> {
        let mut events = Vec::new();
        let mut after = 0;
        // Bounded: a test chain never holds more than this many pages.
        for _ in 0..10_000 {
            let answer = self.get(&self.auditor, &format!("/v1/events?after={after}&limit={page_size}")).await;
            assert_eq!(answer.status, 200, "the auditor reads events: {}", answer.body);
            let page = answer.json();
            let page_events = page["events"].as_array().expect("events is an array").clone();
            assert!(page_events.len() <= page_size as usize, "a page holds at most {page_size} events");
            events.extend(page_events);
            match page["next_after"].as_u64() {
                Some(next) => after = next,
                None => {
                    assert!(page["next_after"].is_null(), "next_after is a seq or null: {page}");
                    return events;
                }
            }
        }
        panic!("the events never ended");
    }

    /// Checks a refusal: its status, its problem document, and that the
    /// chain's head is still `head_before`.
    pub async fn assert_refused(&self, answer: &Answer, status: u16, head_before: u64, what: &str) {
        assert_problem(answer, status, what);
        assert_eq!(self.head_seq().await, head_before, "{what}: a refused request appends nothing");
    }

    // Set-up through the API itself.

    pub async fn register_donor(&self, code: &str) -> u64 {
        self.post_created(&self.admin, "/v1/donors", &donor_body(code)).await
    }

    pub async fn register_programme(&self, code: &str, currency: &str, countries: &[&str]) -> u64 {
        self.post_created(&self.admin, "/v1/programmes", &programme_body(code, currency, countries)).await
    }

    /// Commits `committed` from the donor to the programme and allocates
    /// each `(country, amount)`.
    pub async fn commit_and_allocate(&self, programme: &str, donor: &str, committed: &str, allocations: &[(&str, &str)]) {
        self.post_created(&self.finance_officer, "/v1/commitments", &commitment_body(programme, donor, committed)).await;
        for (country, amount) in allocations {
            self.post_created(&self.finance_officer, "/v1/allocations", &allocation_body(programme, donor, country, amount))
                .await;
        }
    }
}

async fn create_token(ledger: &Ledger, role: Role, donor: Option<&str>, name: &str) -> String {
    tokens::create(&ledger.store, role, donor, name).await.unwrap_or_else(|error| panic!("token {name}: {error}"))
}

/// Checks a 201 answer and its `{seq, id, hash, recorded_at}`; returns the seq.
pub fn assert_created(answer: &Answer, what: &str) -> u64 {
    assert_eq!(answer.status, 201, "{what}: expected 201, got {}: {}", answer.status, answer.body);
    assert!(answer.content_type.starts_with("application/json"), "{what}: a 201 is JSON, not {}", answer.content_type);
    assert_receipt(&answer.json(), what)
}

/// Checks one `{seq, id, hash, recorded_at}`; returns the seq.
pub fn assert_receipt(receipt: &Value, what: &str) -> u64 {
    let object = receipt.as_object().unwrap_or_else(|| panic!("{what}: a receipt is an object: {receipt}"));
    let mut fields: Vec<&str> = object.keys().map(String::as_str).collect();
    fields.sort_unstable();
    assert_eq!(fields, ["hash", "id", "recorded_at", "seq"], "{what}: a receipt has exactly these fields");
    let seq = receipt["seq"].as_u64().unwrap_or_else(|| panic!("{what}: seq is a number: {receipt}"));
    assert!(seq >= 1, "{what}: seqs start at 1");
    let id = receipt["id"].as_str().unwrap_or_default();
    assert!(uuid::Uuid::parse_str(id).is_ok(), "{what}: id is a UUID: {receipt}");
    let hash = receipt["hash"].as_str().unwrap_or_default();
    assert!(hash.len() == 64 && hash.bytes().all(|byte| byte.is_ascii_hexdigit()), "{what}: hash is SHA-256 hex: {receipt}");
    let recorded_at = receipt["recorded_at"].as_str().unwrap_or_default();
    assert!(chrono::DateTime::parse_from_rfc3339(recorded_at).is_ok(), "{what}: recorded_at is RFC 3339: {receipt}");
    seq
}

/// Checks an error answer: status, `application/problem+json`, and the
/// fields type, title, status and detail.
pub fn assert_problem(answer: &Answer, status: u16, what: &str) {
    assert_eq!(answer.status, status, "{what}: expected {status}, got {}: {}", answer.status, answer.body);
    assert_eq!(answer.content_type, PROBLEM_CONTENT_TYPE, "{what}: errors are problem+json: {}", answer.body);
    let problem = answer.json();
    for field in ["type", "title", "detail"] {
        let text = problem[field].as_str().unwrap_or_else(|| panic!("{what}: the problem has a text {field}: {problem}"));
        assert!(!text.is_empty(), "{what}: the problem's {field} is not empty: {problem}");
    }
    assert_eq!(problem["status"], json!(status), "{what}: the problem repeats the status: {problem}");
}

/// The detail of a problem answer.
pub fn detail(answer: &Answer) -> String {
    answer.json()["detail"].as_str().unwrap_or_default().to_string()
}

// ---------------------------------------------------------------------------
// Request bodies, as the brief's table lists them.

pub fn donor_body(code: &str) -> Value {
    json!({"code": code, "name": format!("Donor {code}"), "kind": "eu_instrument"})
}

pub fn programme_body(code: &str, currency: &str, countries: &[&str]) -> Value {
    json!({
        "code": code,
        "name": format!("Programme {code}"),
        "currency": currency,
        "countries": countries,
        "implementer": "IOM",
        "starts_on": "2023-01-01",
        "ends_on": "2026-12-31",
    })
}

pub fn commitment_body(programme: &str, donor: &str, amount: &str) -> Value {
    json!({
        "programme": programme,
        "donor": donor,
        "amount": amount,
        "reference": format!("{programme}/{donor}/agreement"),
        "committed_on": "2023-01-10",
    })
}

pub fn receipt_body(programme: &str, donor: &str, amount: &str) -> Value {
    json!({"programme": programme, "donor": donor, "amount": amount, "received_on": "2023-02-01"})
}

pub fn allocation_body(programme: &str, donor: &str, country: &str, amount: &str) -> Value {
    json!({"programme": programme, "donor": donor, "country": country, "amount": amount})
}

pub fn reallocation_body(programme: &str, donor: &str, (from, to): (&str, &str), amount: &str) -> Value {
    json!({
        "programme": programme,
        "donor": donor,
        "from_country": from,
        "to_country": to,
        "amount": amount,
        "reason": "caseload moved",
    })
}

/// A cash payment charged `amount` to the line and paid `paid` in local currency.
pub fn cash_body((programme, donor, country): (&str, &str, &str), case_id: &str, amount: &str, paid: (&str, &str)) -> Value {
    json!({
        "programme": programme,
        "donor": donor,
        "country": country,
        "case_id": case_id,
        "amount": amount,
        "paid_amount": paid.0,
        "paid_currency": paid.1,
        "method": "mobile_money",
        "paid_on": "2023-05-02",
    })
}

/// An in-kind grant to one returnee.
pub fn in_kind_individual_body((programme, donor, country): (&str, &str, &str), case_id: &str, amount: &str) -> Value {
    json!({
        "programme": programme,
        "donor": donor,
        "country": country,
        "case_id": case_id,
        "level": "individual",
        "dimension": "economic",
        "category": "business_start_up",
        "description": "Start-up kit for a grocery",
        "amount": amount,
        "delivered_on": "2023-06-01",
    })
}

/// An in-kind grant to a community.
pub fn in_kind_community_body((programme, donor, country): (&str, &str, &str), community: &str, amount: &str) -> Value {
    json!({
        "programme": programme,
        "donor": donor,
        "country": country,
        "community": community,
        "level": "community",
        "dimension": "social",
        "category": "community_infrastructure",
        "description": "Two classrooms",
        "amount": amount,
        "delivered_on": "2023-06-01",
    })
}

pub fn reversal_body(seq: u64) -> Value {
    json!({"seq": seq, "reason": "entered by mistake"})
}

/// A body tagged with its batch `type`.
pub fn batch_command(kind: &str, body: &Value) -> Value {
    let mut command = body.clone();
    command.as_object_mut().expect("write bodies are objects").insert("type".to_string(), json!(kind));
    command
}
