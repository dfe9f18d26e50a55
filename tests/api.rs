//! The HTTP API as a client sees it: the real server on port 0 over a fresh
//! database on each backend, spoken to with reqwest. Journeys of every
//! role, every status code of the brief (each refusal leaving the chain's
//! head where it was), idempotency keys, batches, donor isolation, privacy
//! of case ids, concurrent writers, the duplicate-assistance view, the
//! OpenAPI document and a graceful shutdown that loses no acknowledged event.

#[macro_use]
mod common;
mod api_support;

use std::collections::BTreeSet;
use std::time::Duration;

use api_support::*;
use common::*;
use reqwest::Method;
use serde_json::{Value, json};

const MOTUSE: &str = "MOTUSE";
const AMIF: &str = "EU-AMIF";
const BMZ: &str = "BMZ";
const AMIF_MA: (&str, &str, &str) = (MOTUSE, AMIF, "MA");
const AMIF_TN: (&str, &str, &str) = (MOTUSE, AMIF, "TN");

/// A donor, a EUR programme in Morocco and Tunisia, 1,000.00 EUR committed
/// and `morocco` allocated to the Moroccan line.
async fn small_programme(server: &TestServer, morocco: &str) {
    server.register_donor(AMIF).await;
    server.register_programme(MOTUSE, "EUR", &["MA", "TN"]).await;
    server.commit_and_allocate(MOTUSE, AMIF, "1000.00", &[("MA", morocco)]).await;
}

/// `figures` (a balance, or one of its slices) has exactly these amounts:
/// committed, received, allocated, cash, in kind, total disbursed,
/// unallocated, available, cash position.
fn assert_figures(figures: &Value, expected: [&str; 9], what: &str) {
    let actual = [
        &figures["committed"],
        &figures["received"],
        &figures["allocated"],
        &figures["disbursed"]["cash"],
        &figures["disbursed"]["in_kind"],
        &figures["disbursed"]["total"],
        &figures["unallocated"],
        &figures["available"],
        &figures["cash_position"],
    ];
    let actual: Vec<&str> = actual.iter().map(|value| value.as_str().unwrap_or("<missing>")).collect();
    assert_eq!(
        actual, expected,
        "{what}: committed, received, allocated, cash, in kind, total, unallocated, available, cash position"
    );
}

/// The entry of `list` whose `field` is `value`.
fn entry<'list>(list: &'list Value, field: &str, value: &str) -> &'list Value {
    list.as_array()
        .and_then(|items| items.iter().find(|item| item[field] == json!(value)))
        .unwrap_or_else(|| panic!("no entry with {field} = {value} in {list}"))
}

test_on_both_backends! {
    /// Admin registers, the finance officer commits, receives, allocates,
    /// reallocates, pays (in local currency), delivers in kind and reverses;
    /// the auditor pages through a linked chain that verifies and balances;
    /// the donor reads exactly the figures the journey implies, and only its own.
    async fn a_full_journey_over_http_gives_the_figures_it_implies(database: TestDatabase) {
        // A day ahead: for the server, today is a closed day, as donors see it.
        let server = TestServer::start_days_ahead(&database, 1).await;
        let officer = server.finance_officer.clone();
        let mut seqs = vec![
            server.register_donor(AMIF).await,
            server.register_donor(BMZ).await,
            server.register_programme(MOTUSE, "EUR", &["MA", "TN", "SN"]).await,
        ];
        let funding = [
            ("/v1/commitments", commitment_body(MOTUSE, AMIF, "10000.00")),
            ("/v1/commitments", commitment_body(MOTUSE, BMZ, "2000.00")),
            ("/v1/receipts", receipt_body(MOTUSE, AMIF, "6000.00")),
            ("/v1/allocations", allocation_body(MOTUSE, AMIF, "MA", "4000.00")),
            ("/v1/allocations", allocation_body(MOTUSE, AMIF, "TN", "2000.00")),
            ("/v1/allocations", allocation_body(MOTUSE, BMZ, "MA", "1000.00")),
            ("/v1/reallocations", reallocation_body(MOTUSE, AMIF, ("MA", "TN"), "500.00")),
        ];
        for (path, body) in &funding {
            seqs.push(server.post_created(&officer, path, body).await);
        }
        let before_spending = *seqs.last().unwrap();
        let spending = [
            ("/v1/payments/cash", cash_body(AMIF_MA, "MA-2023-000101", "350.00", ("3815.00", "MAD"))),
            ("/v1/payments/cash", cash_body(AMIF_TN, "TN-2023-000202", "300.00", ("1005.250", "TND"))),
            ("/v1/grants/in-kind", in_kind_individual_body(AMIF_TN, "TN-2023-000303", "1500.00")),
            ("/v1/grants/in-kind", in_kind_community_body(AMIF_MA, "Douar Ouled Ali", "800.00")),
            ("/v1/payments/cash", cash_body((MOTUSE, BMZ, "MA"), "MA-2023-000404", "200.00", ("2180.00", "MAD"))),
        ];
        for (path, body) in &spending {
            seqs.push(server.post_created(&officer, path, body).await);
        }
        let tunisian_payment = seqs[before_spending as usize + 1];
        seqs.push(server.post_created(&officer, "/v1/reversals", &reversal_body(tunisian_payment)).await);
        let head = seqs.len() as u64;
        assert_eq!(seqs, (1..=head).collect::<Vec<_>>(), "each 201 gives the next seq");

        // The auditor: the whole chain, linked, in order, whatever the page size.
        let verify = server.verify().await;
        assert_eq!(verify["valid"], json!(true), "{verify}");
        assert_eq!(verify["head_seq"], json!(head));
        assert!(verify["first_invalid_seq"].is_null() && verify["reason"].is_null(), "{verify}");
        for page_size in [1, 4, head as u32, 1000] {
            let events = server.all_events(page_size).await;
            let listed: Vec<u64> = events.iter().map(|event| event["seq"].as_u64().unwrap()).collect();
            assert_eq!(listed, (1..=head).collect::<Vec<_>>(), "pages of {page_size} give seq 1..{head} in order");
            let mut previous_hash = GENESIS_PREV_HASH_HEX.to_string();
            for event in &events {
                assert_eq!(event["prev_hash"], json!(previous_hash), "seq {} links to the event before", event["seq"]);
                previous_hash = event["hash"].as_str().unwrap().to_string();
            }
            assert_eq!(json!(previous_hash), verify["head_hash"], "the last event is the verified head");
        }
        let trial_balance = server.get(&server.auditor, "/v1/trial-balance").await;
        assert_eq!(trial_balance.status, 200, "{}", trial_balance.body);
        let trial_balance = trial_balance.json();
        assert_eq!(trial_balance["balanced"], json!(true), "{trial_balance}");
        assert_eq!(trial_balance["as_of_seq"], json!(head));
        for currency in trial_balance["currencies"].as_array().unwrap() {
            let balance: rust_decimal::Decimal = currency["balance"].as_str().unwrap().parse().unwrap();
            assert!(balance.is_zero(), "every currency balances: {currency}");
        }

        // The donor: its own balance and the programme's, with only its own share.
        let amif = server.donor_token(AMIF).await;
        let amif_figures = ["10000.00", "6000.00", "6000.00", "350.00", "2300.00", "2650.00", "4000.00", "3350.00", "3350.00"];
        let donor_balance = server.get(&amif, "/v1/donors/EU-AMIF/balance").await;
        assert_eq!(donor_balance.status, 200, "{}", donor_balance.body);
        let donor_balance = donor_balance.json();
        assert_eq!(donor_balance["donor"], json!(AMIF));
        assert_eq!(donor_balance["as_of_seq"], json!(head));
        let programmes = donor_balance["programmes"].as_array().unwrap();
        assert_eq!(programmes.len(), 1, "the donor funds one programme: {donor_balance}");
        assert_eq!((&programmes[0]["programme"], &programmes[0]["currency"]), (&json!(MOTUSE), &json!("EUR")));
        assert_figures(&programmes[0], amif_figures, "the donor's own balance");

        let programme_balance = server.get(&amif, "/v1/programmes/MOTUSE/balance").await;
        assert_eq!(programme_balance.status, 200, "{}", programme_balance.body);
        let programme_balance = programme_balance.json();
        assert_eq!(programme_balance["currency"], json!("EUR"));
        assert_eq!(programme_balance["as_of_seq"], json!(head));
        assert_figures(
            &programme_balance,
            ["12000.00", "6000.00", "7000.00", "550.00", "2300.00", "2850.00", "5000.00", "4150.00", "3150.00"],
            "the programme's totals",
        );
        let by_donor = programme_balance["by_donor"].as_array().unwrap();
        assert_eq!(by_donor.len(), 1, "a donor sees only its own share: {programme_balance}");
        assert_eq!(by_donor[0]["donor"], json!(AMIF));
        assert_figures(&by_donor[0], amif_figures, "the donor's share");
        let morocco = entry(&programme_balance["by_country"], "country", "MA");
        assert_eq!(
            (&morocco["allocated"], &morocco["disbursed"]["total"], &morocco["available"]),
            (&json!("4500.00"), &json!("1350.00"), &json!("3150.00")),
            "{morocco}"
        );
        let tunisia = entry(&programme_balance["by_country"], "country", "TN");
        assert_eq!(
            (&tunisia["allocated"], &tunisia["disbursed"]["cash"], &tunisia["disbursed"]["in_kind"], &tunisia["available"]),
            (&json!("2500.00"), &json!("0.00"), &json!("1500.00"), &json!("1000.00")),
            "the reversed payment no longer counts: {tunisia}"
        );
        assert_eq!(
            programme_balance["beneficiaries_reached"],
            json!("fewer than 5"),
            "a donor is not told a count small enough to single out a returnee"
        );
        let today = chrono::Utc::now().date_naive();
        assert_eq!(programme_balance["as_of"], json!(today.to_string()), "a donor's figures say the day they stand at");

        // Everyone else sees both donors; past balances come from the events.
        let admin_view = server.get(&server.admin, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!(admin_view["beneficiaries_reached"], json!(3), "the reversed payment's returnee is not reached");
        assert!(admin_view.get("as_of").is_none(), "live figures name no day: {admin_view}");
        let donors: Vec<&Value> = admin_view["by_donor"].as_array().unwrap().iter().map(|figures| &figures["donor"]).collect();
        assert_eq!(donors.len(), 2, "{admin_view}");
        assert_figures(
            entry(&admin_view["by_donor"], "donor", BMZ),
            ["2000.00", "0.00", "1000.00", "200.00", "0.00", "200.00", "1000.00", "800.00", "-200.00"],
            "the other donor's share",
        );
        let donor_past = server.get(&amif, &format!("/v1/programmes/MOTUSE/balance?as_of_seq={before_spending}")).await;
        assert_eq!(donor_past.status, 403, "a donor may not read figures event by event: {}", donor_past.body);
        let past = server.get(&server.admin, &format!("/v1/programmes/MOTUSE/balance?as_of_seq={before_spending}")).await;
        assert_eq!(past.status, 200, "{}", past.body);
        let past = past.json();
        assert_eq!(past["as_of_seq"], json!(before_spending));
        assert_figures(
            &past,
            ["12000.00", "6000.00", "7000.00", "0.00", "0.00", "0.00", "5000.00", "7000.00", "6000.00"],
            "the balance before any spending",
        );
        let as_of_today = server.get(&amif, &format!("/v1/programmes/MOTUSE/balance?as_of={today}")).await;
        assert_eq!(as_of_today.status, 200, "{}", as_of_today.body);
        assert_eq!(as_of_today.json(), programme_balance, "the balance at the end of today is the current one");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Malformed bodies and query strings are 400 problems and append nothing.
    async fn malformed_requests_are_refused_with_400_and_append_nothing(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let (admin, officer) = (server.admin.as_str(), server.finance_officer.as_str());
        let mut cash = cash_body(AMIF_MA, "MA-1", "10.00", ("10.00", "EUR"));
        let with = |body: &Value, field: &str, value: Value| {
            let mut changed = body.clone();
            changed[field] = value;
            changed.to_string()
        };
        let without_kind = json!({"code": "EU-EUTF", "name": "EUTF"}).to_string();
        let long_key = "k".repeat(201);
        let bodies: Vec<(&str, &str, String, &str)> = vec![
            ("malformed JSON", admin, r#"{"code": "EU-EUTF", "name": "#.to_string(), "/v1/donors"),
            ("an empty body", admin, String::new(), "/v1/donors"),
            ("a JSON array", admin, "[]".to_string(), "/v1/donors"),
            ("a float amount", officer, with(&commitment_body(MOTUSE, AMIF, "1"), "amount", json!(350.0)), "/v1/commitments"),
            ("an integer amount", officer, with(&commitment_body(MOTUSE, AMIF, "1"), "amount", json!(350)), "/v1/commitments"),
            ("an unknown field", admin, with(&donor_body("EU-EUTF"), "colour", json!("blue")), "/v1/donors"),
            ("a missing field", admin, without_kind, "/v1/donors"),
            ("a bad country code", officer, allocation_body(MOTUSE, AMIF, "QQ", "10.00").to_string(), "/v1/allocations"),
            ("a bad country in a programme", admin, programme_body("NEW", "EUR", &["MA", "Atlantis"]).to_string(), "/v1/programmes"),
            ("a bad currency", admin, programme_body("NEW", "EURO", &["MA"]).to_string(), "/v1/programmes"),
            ("an amount that is not a number", officer, with(&cash, "amount", json!("three hundred")), "/v1/payments/cash"),
            ("an amount with an exponent", officer, with(&cash, "amount", json!("1e3")), "/v1/payments/cash"),
            ("an impossible date", officer, with(&cash, "paid_on", json!("2023-02-30")), "/v1/payments/cash"),
            ("an unknown payment method", officer, with(&cash, "method", json!("carrier_pigeon")), "/v1/payments/cash"),
            ("a bad programme code", officer, with(&cash, "programme", json!("mo tu se!")), "/v1/payments/cash"),
            ("a programme code in lower case", officer, with(&cash, "programme", json!("motuse")), "/v1/payments/cash"),
            ("a country code in lower case", officer, with(&cash, "country", json!("ma")), "/v1/payments/cash"),
            ("a code with a space around it", officer, with(&cash, "donor", json!(" EU-AMIF")), "/v1/payments/cash"),
            ("a negative seq to reverse", officer, json!({"seq": -1, "reason": "typo"}).to_string(), "/v1/reversals"),
            ("an unknown batch type", officer, json!({"commands": [{"type": "teleport"}]}).to_string(), "/v1/batch"),
            ("an empty batch", officer, json!({"commands": []}).to_string(), "/v1/batch"),
        ];
        for (what, token, body, path) in &bodies {
            let answer = server.post_text(token, path, body).await;
            server.assert_refused(&answer, 400, head, what).await;
        }
        // Each field well formed, together contradicting each other: 422.
        let to_both = with(&in_kind_individual_body(AMIF_MA, "MA-2", "10.00"), "community", json!("Douar"));
        let mut to_nobody = in_kind_individual_body(AMIF_MA, "MA-2", "10.00");
        to_nobody.as_object_mut().unwrap().remove("case_id");
        for (what, body) in [("an in-kind grant to both a returnee and a community", to_both), ("an in-kind grant to nobody", to_nobody.to_string())] {
            let answer = server.post_text(officer, "/v1/grants/in-kind", &body).await;
            server.assert_refused(&answer, 422, head, what).await;
            assert!(detail(&answer).contains("exactly one of case_id"), "{what}: {}", answer.body);
        }
        cash["case_id"] = json!("MA-3");
        let answer = server.post_with_key(officer, "/v1/payments/cash", &long_key, &cash.to_string()).await;
        server.assert_refused(&answer, 400, head, "an Idempotency-Key of 201 characters").await;

        let auditor = server.auditor.as_str();
        let queries = [
            (auditor, "/v1/events?limit=abc"),
            (auditor, "/v1/events?limit=5000"),
            (auditor, "/v1/events?limit=0"),
            (auditor, "/v1/events?after=-1"),
            (auditor, "/v1/events?after=abc"),
            (auditor, "/v1/events?colour=blue"),
            (officer, "/v1/duplicates?window_days=many"),
            (admin, "/v1/programmes/MOTUSE/balance?as_of=yesterday"),
            (admin, "/v1/programmes/MOTUSE/balance?as_of_seq=-3"),
            (admin, "/v1/countries/QQ/balance"),
        ];
        for (token, path) in queries {
            let answer = server.get(token, path).await;
            server.assert_refused(&answer, 400, head, &format!("GET {path}")).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A body sent as anything but application/json is refused (415, a
    /// problem) and appends nothing; `application/json; charset=utf-8` is fine.
    async fn a_body_that_is_not_sent_as_json_is_refused_with_415(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let head = server.head_seq().await;
        let body = donor_body(AMIF).to_string();
        for content_type in [Some("text/plain"), Some("application/x-www-form-urlencoded"), Some("application/jsonx"), None] {
            let mut request = server.request(Method::POST, "/v1/donors", &server.admin).body(body.clone());
            if let Some(content_type) = content_type {
                request = request.header("content-type", content_type);
            }
            let answer = server.send(request).await;
            server.assert_refused(&answer, 415, head, &format!("content type {content_type:?}")).await;
        }
        let request = server
            .request(Method::POST, "/v1/donors", &server.admin)
            .header("content-type", "application/json; charset=utf-8")
            .body(body);
        assert_created(&server.send(request).await, "a JSON body with a charset");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A body over 2 MiB is refused with 413 and appends nothing.
    async fn a_body_over_2_mib_is_refused_with_413(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let head = server.head_seq().await;
        let name = "x".repeat(2 * 1024 * 1024 + 1024);
        let body = json!({"code": "EU-BIG", "name": name, "kind": "eu_instrument"}).to_string();
        let answer = server.post_text(&server.admin, "/v1/donors", &body).await;
        server.assert_refused(&answer, 413, head, "a body of 2 MiB and 1 KiB").await;
        let batch = json!({"commands": [batch_command("donor", &json!({"code": "EU-BIG", "name": name, "kind": "k"}))]});
        let answer = server.post(&server.admin, "/v1/batch", &batch).await;
        server.assert_refused(&answer, 413, head, "a batch of 2 MiB and 1 KiB").await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// No token, a garbage token, another scheme or a revoked token: 401
    /// with `WWW-Authenticate: Bearer`, on writes and reads alike.
    async fn requests_without_a_valid_token_are_refused_with_401(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let commitment = commitment_body(MOTUSE, AMIF, "10.00");
        let short_lived = tokens_create(&server, ledger_api::tokens::Role::FinanceOfficer, "short-lived").await;
        let head = server.post_created(&short_lived, "/v1/commitments", &commitment).await;
        ledger_api::tokens::revoke(&server.ledger.store, "short-lived").await.expect("the token is revoked");

        let garbage = format!("rlt_{}", "0".repeat(64));
        let authorizations: [(&str, Option<String>); 6] = [
            ("no Authorization header", None),
            ("a garbage token", Some(format!("Bearer {garbage}"))),
            ("an empty bearer token", Some("Bearer ".to_string())),
            ("a token of 300 characters", Some(format!("Bearer {}", "a".repeat(300)))),
            ("another scheme", Some(format!("Basic {}", server.finance_officer))),
            ("a revoked token", Some(format!("Bearer {short_lived}"))),
        ];
        for (what, authorization) in &authorizations {
            let requests = [
                ("POST /v1/commitments", server.client.post(server.url("/v1/commitments")).json(&commitment)),
                ("GET /v1/verify", server.client.get(server.url("/v1/verify"))),
                ("GET /v1/programmes/MOTUSE/balance", server.client.get(server.url("/v1/programmes/MOTUSE/balance"))),
            ];
            for (route, mut request) in requests {
                if let Some(authorization) = authorization {
                    request = request.header("authorization", authorization);
                }
                let answer = server.send(request).await;
                let what = format!("{what} on {route}");
                server.assert_refused(&answer, 401, head, &what).await;
                assert_eq!(answer.www_authenticate.as_deref(), Some("Bearer"), "{what}: the challenge names the scheme");
            }
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// The server remembers the principal of a token that wrote before; once
    /// the token is revoked, every write with it is told 401, whatever else
    /// would have refused it (a role, a malformed body, a money rule, an
    /// Idempotency-Key seen before), and appends nothing.
    async fn a_revoked_token_remembered_from_an_earlier_write_is_told_401(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let token = tokens_create(&server, ledger_api::tokens::Role::FinanceOfficer, "remembered").await;
        let commitment = commitment_body(MOTUSE, AMIF, "10.00");
        let body = commitment.to_string();
        let created = server.post_with_key(&token, "/v1/commitments", "key-1", &body).await;
        assert_eq!(created.status, 201, "the token writes before it is revoked: {}", created.body);
        let head = server.head_seq().await;
        ledger_api::tokens::revoke(&server.ledger.store, "remembered").await.expect("the token is revoked");

        let donor = json!({"code": "EU-NEW", "name": "New donor", "kind": "eu_instrument"});
        let overspend = cash_body((MOTUSE, AMIF, "MA"), "MA-9", "900.00", ("9000.00", "MAD"));
        let attempts = [
            ("an admin's route", server.post(&token, "/v1/donors", &donor).await),
            ("a malformed body", server.post_text(&token, "/v1/commitments", "{\"programme\":").await),
            ("an overspend", server.post(&token, "/v1/payments/cash", &overspend).await),
            ("the Idempotency-Key of its earlier write", server.post_with_key(&token, "/v1/commitments", "key-1", &body).await),
            ("a valid commitment", server.post(&token, "/v1/commitments", &commitment).await),
            ("a valid batch", server.post(&token, "/v1/batch", &json!({"commands": [batch_command("commitment", &commitment)]})).await),
        ];
        for (what, answer) in &attempts {
            server.assert_refused(answer, 401, head, what).await;
        }
        server.stop().await;
    }
}

async fn tokens_create(server: &TestServer, role: ledger_api::tokens::Role, name: &str) -> String {
    ledger_api::tokens::create(&server.ledger.store, role, None, name).await.expect("the token is created")
}

test_on_both_backends! {
    /// A valid token outside the route's roles or scope is 403.
    async fn requests_outside_the_callers_role_or_scope_are_refused_with_403(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        server.register_donor(BMZ).await;
        server.register_programme("SAHEL", "XOF", &["SN"]).await;
        server.commit_and_allocate("SAHEL", BMZ, "5000000", &[("SN", "1000000")]).await;
        let head = server.head_seq().await;
        let amif = server.donor_token(AMIF).await;
        let cash = cash_body(AMIF_MA, "MA-1", "10.00", ("10.00", "EUR"));
        let (admin, officer, auditor) = (server.admin.as_str(), server.finance_officer.as_str(), server.auditor.as_str());
        let mixed_batch = json!({"commands": [batch_command("donor", &donor_body("EU-EUTF")), batch_command("cash_payment", &cash)]});
        let writes: Vec<(&str, &str, &str, Value)> = vec![
            ("a finance officer registering a donor", officer, "/v1/donors", donor_body("EU-EUTF")),
            ("a finance officer registering a programme", officer, "/v1/programmes", programme_body("NEW", "EUR", &["MA"])),
            ("an auditor posting a payment", auditor, "/v1/payments/cash", cash.clone()),
            ("an admin posting a payment", admin, "/v1/payments/cash", cash.clone()),
            ("a donor posting a payment", amif.as_str(), "/v1/payments/cash", cash.clone()),
            ("a donor committing", amif.as_str(), "/v1/commitments", commitment_body(MOTUSE, AMIF, "1.00")),
            ("an auditor reversing", auditor, "/v1/reversals", reversal_body(4)),
            ("a batch with a command of another role", officer, "/v1/batch", mixed_batch.clone()),
            ("an admin batch with a payment", admin, "/v1/batch", mixed_batch),
        ];
        for (what, token, path, body) in &writes {
            let answer = server.post(token, path, body).await;
            server.assert_refused(&answer, 403, head, what).await;
        }
        let reads = [
            ("a donor reading events", amif.as_str(), "/v1/events"),
            ("a donor reading another donor's balance", amif.as_str(), "/v1/donors/BMZ/balance"),
            ("a donor reading a programme it does not fund", amif.as_str(), "/v1/programmes/SAHEL/balance"),
            ("a donor reading a past balance of a programme it does not fund", amif.as_str(), "/v1/programmes/SAHEL/balance?as_of_seq=3"),
            ("a donor reading a country", amif.as_str(), "/v1/countries/MA/balance"),
            ("a finance officer reading events", officer, "/v1/events"),
            ("a finance officer verifying", officer, "/v1/verify"),
            ("an admin reading the trial balance", admin, "/v1/trial-balance"),
            ("an admin reading duplicates", admin, "/v1/duplicates"),
        ];
        for (what, token, path) in reads {
            let answer = server.get(token, path).await;
            server.assert_refused(&answer, 403, head, what).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Unknown programmes, donors, seqs and routes are 404.
    async fn unknown_things_are_refused_with_404(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let (admin, officer) = (server.admin.as_str(), server.finance_officer.as_str());
        let reads = [
            ("an unknown programme's balance", admin, "/v1/programmes/NOPE/balance"),
            ("an unknown donor's balance", admin, "/v1/donors/NOPE/balance"),
            ("an unknown route", admin, "/v1/nothing"),
            ("an unknown version", admin, "/v2/donors"),
            ("an unknown page", admin, "/page/nothing"),
        ];
        for (what, token, path) in reads {
            let answer = server.get(token, path).await;
            server.assert_refused(&answer, 404, head, what).await;
        }
        let writes = [
            ("a commitment to an unknown programme", "/v1/commitments", commitment_body("NOPE", AMIF, "1.00")),
            ("a commitment from an unknown donor", "/v1/commitments", commitment_body(MOTUSE, "NOPE", "1.00")),
            ("a reversal of a seq beyond the head", "/v1/reversals", reversal_body(head + 100)),
        ];
        for (what, path, body) in &writes {
            let answer = server.post(officer, path, body).await;
            server.assert_refused(&answer, 404, head, what).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A known path with a method it does not serve is 405.
    async fn a_wrong_method_is_refused_with_405(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let head = server.head_seq().await;
        let attempts = [
            (Method::DELETE, "/v1/donors"),
            (Method::GET, "/v1/payments/cash"),
            (Method::PUT, "/v1/payments/cash"),
            (Method::DELETE, "/v1/events"),
            (Method::POST, "/v1/verify"),
            (Method::PATCH, "/v1/programmes/MOTUSE/balance"),
        ];
        for (method, path) in attempts {
            let what = format!("{method} {path}");
            let answer = server.send(server.request(method, path, &server.admin).json(&json!({}))).await;
            server.assert_refused(&answer, 405, head, &what).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Registering what exists, or reusing an Idempotency-Key for another
    /// body, is 409.
    async fn conflicts_are_refused_with_409(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let answer = server.post(&server.admin, "/v1/donors", &donor_body(AMIF)).await;
        server.assert_refused(&answer, 409, head, "registering an existing donor").await;
        assert!(detail(&answer).contains(AMIF), "the detail names the donor: {}", answer.body);
        let answer = server.post(&server.admin, "/v1/donors", &donor_body("eu-amif")).await;
        server.assert_refused(&answer, 400, head, "a donor code in lower case").await;
        let answer = server.post(&server.admin, "/v1/programmes", &programme_body(MOTUSE, "EUR", &["SN"])).await;
        server.assert_refused(&answer, 409, head, "registering an existing programme").await;

        let first = commitment_body(MOTUSE, AMIF, "10.00");
        let second = commitment_body(MOTUSE, AMIF, "20.00");
        let officer = &server.finance_officer;
        assert_created(&server.post_with_key(officer, "/v1/commitments", "key-409", &first.to_string()).await, "the first use");
        let answer = server.post_with_key(officer, "/v1/commitments", "key-409", &second.to_string()).await;
        server.assert_refused(&answer, 409, head + 1, "the same Idempotency-Key with another body").await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Money rules refuse with 422 and say which budget line and how much
    /// is still available.
    async fn money_rules_are_refused_with_422_naming_the_budget_line_and_what_is_available(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        server.register_programme("SAHEL", "XOF", &["SN"]).await;
        let officer = server.finance_officer.clone();
        let payment = server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "MA-1", "350.00", ("3815.00", "MAD"))).await;
        let head = server.head_seq().await;

        let answer = server.post(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "MA-2", "200.00", ("200.00", "EUR"))).await;
        server.assert_refused(&answer, 422, head, "over-spending").await;
        let text = detail(&answer);
        assert!(text.contains("MOTUSE/EU-AMIF/MA") && text.contains("150.00 EUR available"), "the detail names the line and what is left: {text}");
        let answer = server.post(&officer, "/v1/grants/in-kind", &in_kind_individual_body(AMIF_TN, "TN-1", "0.01")).await;
        server.assert_refused(&answer, 422, head, "spending from a line with nothing allocated").await;
        assert!(detail(&answer).contains("MOTUSE/EU-AMIF/TN"), "{}", answer.body);

        let answer = server.post(&officer, "/v1/allocations", &allocation_body(MOTUSE, AMIF, "TN", "600.00")).await;
        server.assert_refused(&answer, 422, head, "over-allocation").await;
        let text = detail(&answer);
        assert!(text.contains(AMIF) && text.contains("500.00"), "the detail names the donor and what is left to allocate: {text}");
        let answer = server.post(&officer, "/v1/reallocations", &reallocation_body(MOTUSE, AMIF, ("MA", "TN"), "150.01")).await;
        server.assert_refused(&answer, 422, head, "reallocating more than is unspent").await;
        assert!(detail(&answer).contains("MOTUSE/EU-AMIF/MA"), "{}", answer.body);

        let refusals = [
            ("too many decimals for XOF", "/v1/commitments", commitment_body("SAHEL", AMIF, "10.5")),
            ("too many decimals for EUR", "/v1/commitments", commitment_body(MOTUSE, AMIF, "1.234")),
            ("too many decimals in local currency", "/v1/payments/cash", cash_body(AMIF_MA, "MA-3", "1.00", ("10.001", "MAD"))),
            ("a zero amount", "/v1/receipts", receipt_body(MOTUSE, AMIF, "0.00")),
            ("a country outside the programme", "/v1/allocations", allocation_body(MOTUSE, AMIF, "SN", "1.00")),
            ("reversing a non-money event", "/v1/reversals", reversal_body(1)),
            ("reversing an allocation already spent", "/v1/reversals", reversal_body(4)),
        ];
        for (what, path, body) in &refusals {
            let answer = server.post(&officer, path, body).await;
            server.assert_refused(&answer, 422, head, what).await;
        }
        let stated = |mut body: Value, code: &str| {
            body["currency"] = json!(code);
            body
        };
        let answer = server.post(&officer, "/v1/commitments", &stated(commitment_body(MOTUSE, AMIF, "10.00"), "USD")).await;
        server.assert_refused(&answer, 422, head, "a commitment stated in another currency").await;
        assert!(detail(&answer).contains("accounted in EUR, not USD"), "{}", answer.body);
        let in_francs = stated(cash_body(AMIF_MA, "MA-4", "1.00", ("1.00", "EUR")), "XOF");
        let answer = server.post(&officer, "/v1/payments/cash", &in_francs).await;
        server.assert_refused(&answer, 422, head, "a payment charged in another currency").await;
        let answer = server.post(&officer, "/v1/commitments", &stated(commitment_body(MOTUSE, AMIF, "10.00"), "USD")).await;
        server.assert_refused(&answer, 422, head, "a currency other than the programme's").await;
        let fourth = server.get(&server.auditor, "/v1/events?after=3&limit=1").await.json();
        let fourth_type = fourth["events"][0]["event_type"].as_str().unwrap_or_default().to_string();
        assert!(fourth_type.contains("alloc"), "seq 4 is the allocation the last refusal tried to reverse: {fourth}");

        let reversal = server.post_created(&officer, "/v1/reversals", &reversal_body(payment)).await;
        let answer = server.post(&officer, "/v1/reversals", &reversal_body(payment)).await;
        server.assert_refused(&answer, 422, reversal, "reversing twice").await;
        assert!(detail(&answer).contains(&payment.to_string()), "the detail names the seq: {}", answer.body);
        let answer = server.post(&officer, "/v1/reversals", &reversal_body(reversal)).await;
        server.assert_refused(&answer, 422, reversal, "reversing a reversal").await;
        let in_euros = stated(commitment_body(MOTUSE, AMIF, "10.00"), "EUR");
        let seq = server.post_created(&officer, "/v1/commitments", &in_euros).await;
        assert_eq!(seq, reversal + 1, "an amount stated in the programme's currency is accepted");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Dates are money rules: a commitment dated tomorrow (UTC) and a
    /// payment dated after its programme ends are refused with 422 naming
    /// the date and the limit.
    async fn a_date_after_today_or_outside_the_programme_is_refused_with_422(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let officer = server.finance_officer.clone();
        let head = server.head_seq().await;
        let today = chrono::Utc::now().date_naive();
        let tomorrow = today.succ_opt().expect("a date").to_string();
        let mut commitment = commitment_body(MOTUSE, AMIF, "10.00");
        commitment["committed_on"] = json!(tomorrow);
        let answer = server.post(&officer, "/v1/commitments", &commitment).await;
        server.assert_refused(&answer, 422, head, "a commitment dated tomorrow").await;
        let text = detail(&answer);
        assert!(text.starts_with(&format!("committed_on {tomorrow} is after today")), "{text}");

        let mut payment = cash_body(AMIF_MA, "MA-1", "10.00", ("10.00", "EUR"));
        payment["paid_on"] = json!("2022-12-31");
        let answer = server.post(&officer, "/v1/payments/cash", &payment).await;
        server.assert_refused(&answer, 422, head, "a payment dated before its programme starts").await;
        assert_eq!(
            detail(&answer),
            "paid_on 2022-12-31 is outside programme MOTUSE, which runs from 2023-01-01 to 2026-12-31: date it within the programme"
        );
        payment["paid_on"] = json!("2023-01-01");
        server.post_created(&officer, "/v1/payments/cash", &payment).await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// The same key and body twice: both 201 with the same answer, one event.
    async fn repeating_a_request_with_its_idempotency_key_answers_the_first_answer_and_appends_once(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let body = cash_body(AMIF_MA, "MA-1", "100.00", ("1090.00", "MAD")).to_string();
        let officer = &server.finance_officer;
        let first = server.post_with_key(officer, "/v1/payments/cash", "payment-0001", &body).await;
        let second = server.post_with_key(officer, "/v1/payments/cash", "payment-0001", &body).await;
        assert_eq!(assert_created(&first, "the first request"), head + 1);
        assert_created(&second, "the repeat");
        assert_eq!(first.json(), second.json(), "the repeat answers the first answer");
        assert_eq!(server.head_seq().await, head + 1, "one event is appended");
        let balance = server.get(officer, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!(balance["disbursed"]["cash"], json!("100.00"), "the payment counts once");

        let batch = json!({"commands": [batch_command("cash_payment", &cash_body(AMIF_MA, "MA-2", "1.00", ("1.00", "EUR")))]}).to_string();
        let first = server.post_with_key(officer, "/v1/batch", "batch-0001", &batch).await;
        let second = server.post_with_key(officer, "/v1/batch", "batch-0001", &batch).await;
        assert_eq!((first.status, second.status), (201, 201), "{} / {}", first.body, second.body);
        assert_eq!(first.json(), second.json(), "a repeated batch answers the first answer");
        assert_eq!(server.head_seq().await, head + 2, "the batch is appended once");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Keys in another order and other whitespace are the same request.
    async fn the_idempotency_key_ignores_key_order_and_whitespace_of_the_body(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let compact = r#"{"programme":"MOTUSE","donor":"EU-AMIF","country":"MA","case_id":"MA-1","amount":"100.00","paid_amount":"1090.00","paid_currency":"MAD","method":"cash_in_hand","paid_on":"2023-05-02"}"#;
        let reordered = "{\n  \"paid_on\" : \"2023-05-02\",\n\t\"method\": \"cash_in_hand\", \"paid_currency\":\"MAD\",\r\n  \"paid_amount\":   \"1090.00\",\n  \"amount\": \"100.00\", \"case_id\": \"MA-1\", \"country\": \"MA\",\n  \"donor\": \"EU-AMIF\", \"programme\": \"MOTUSE\"\n}\n";
        assert_eq!(serde_json::from_str::<Value>(compact).unwrap(), serde_json::from_str::<Value>(reordered).unwrap());
        let officer = &server.finance_officer;
        let first = server.post_with_key(officer, "/v1/payments/cash", "reordered-0001", compact).await;
        let second = server.post_with_key(officer, "/v1/payments/cash", "reordered-0001", reordered).await;
        assert_created(&first, "the compact body");
        assert_created(&second, "the same body reordered and spaced out");
        assert_eq!(first.json(), second.json(), "the reordered body is a repeat");
        assert_eq!(server.head_seq().await, head + 1, "one event is appended");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// The same key with another body is 409 and appends nothing; the first
    /// answer still replays afterwards, and another caller's key of the
    /// same name is its own.
    async fn the_same_idempotency_key_with_another_body_is_a_conflict_and_appends_nothing(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let officer = &server.finance_officer;
        let first_body = cash_body(AMIF_MA, "MA-1", "100.00", ("100.00", "EUR")).to_string();
        let first = server.post_with_key(officer, "/v1/payments/cash", "shared-key", &first_body).await;
        let head = assert_created(&first, "the first request");
        let other_bodies = [
            cash_body(AMIF_MA, "MA-1", "100.01", ("100.01", "EUR")).to_string(),
            cash_body(AMIF_MA, "MA-2", "100.00", ("100.00", "EUR")).to_string(),
            json!({"commands": [batch_command("cash_payment", &serde_json::from_str(&first_body).unwrap())]}).to_string(),
        ];
        let paths = ["/v1/payments/cash", "/v1/payments/cash", "/v1/batch"];
        for (body, path) in other_bodies.iter().zip(paths) {
            let answer = server.post_with_key(officer, path, "shared-key", body).await;
            server.assert_refused(&answer, 409, head, &format!("the same key with another body on {path}")).await;
        }
        let replay = server.post_with_key(officer, "/v1/payments/cash", "shared-key", &first_body).await;
        assert_eq!((replay.status, replay.json()), (201, first.json()), "the first answer still replays");

        let other_officer = tokens_create(&server, ledger_api::tokens::Role::FinanceOfficer, "other-officer@test").await;
        let other_body = cash_body(AMIF_MA, "MA-9", "5.00", ("5.00", "EUR")).to_string();
        let other = server.post_with_key(&other_officer, "/v1/payments/cash", "shared-key", &other_body).await;
        assert_eq!(assert_created(&other, "another caller's key of the same name"), head + 1);
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A refusal does not claim the key: the same request is refused again,
    /// and once fixed, retried with the same key, it is appended.
    async fn a_refused_request_can_be_fixed_and_retried_with_the_same_idempotency_key(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let officer = &server.finance_officer;
        let too_much = cash_body(AMIF_MA, "MA-1", "600.00", ("600.00", "EUR")).to_string();
        for attempt in ["first", "second"] {
            let answer = server.post_with_key(officer, "/v1/payments/cash", "retry-0001", &too_much).await;
            server.assert_refused(&answer, 422, head, &format!("the {attempt} over-spending attempt")).await;
        }
        let malformed = r#"{"programme": "MOTUSE""#;
        let answer = server.post_with_key(officer, "/v1/payments/cash", "retry-0001", malformed).await;
        server.assert_refused(&answer, 400, head, "a malformed attempt").await;
        let fixed = cash_body(AMIF_MA, "MA-1", "400.00", ("400.00", "EUR")).to_string();
        let answer = server.post_with_key(officer, "/v1/payments/cash", "retry-0001", &fixed).await;
        assert_eq!(assert_created(&answer, "the fixed request"), head + 1);
        let answer = server.post_with_key(officer, "/v1/payments/cash", "retry-0001", &too_much).await;
        server.assert_refused(&answer, 409, head + 1, "the first body once the key is taken").await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// 100 cash payments in one batch: one 201 with 100 receipts in seq order.
    async fn a_batch_of_100_cash_payments_is_appended_in_order(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let commands: Vec<Value> = (0..100)
            .map(|index| batch_command("cash_payment", &cash_body(AMIF_MA, &format!("MA-{index}"), "5.00", ("54.50", "MAD"))))
            .collect();
        let answer = server.post(&server.finance_officer, "/v1/batch", &json!({"commands": commands})).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        let receipts = answer.json()["events"].as_array().expect("a batch answers its events").clone();
        let seqs: Vec<u64> = receipts.iter().map(|receipt| assert_receipt(receipt, "a batch receipt")).collect();
        assert_eq!(seqs, (head + 1..=head + 100).collect::<Vec<_>>(), "100 receipts in seq order");
        assert_eq!(server.head_seq().await, head + 100);
        let events = server.all_events(1000).await;
        for (receipt, event) in receipts.iter().zip(&events[head as usize..]) {
            assert_eq!((&receipt["seq"], &receipt["hash"], &receipt["id"]), (&event["seq"], &event["hash"], &event["id"]));
        }
        let balance = server.get(&server.finance_officer, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!((&balance["disbursed"]["cash"], &balance["available"]), (&json!("500.00"), &json!("0.00")));

        let registrations = json!({"commands": [
            batch_command("donor", &donor_body(BMZ)),
            batch_command("programme", &programme_body("SAHEL", "XOF", &["SN", "ML"])),
        ]});
        let answer = server.post(&server.admin, "/v1/batch", &registrations).await;
        assert_eq!(answer.status, 201, "an admin batch registers: {}", answer.body);
        assert_eq!(answer.json()["events"].as_array().map(Vec::len), Some(2));
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A batch whose 50th command overspends is refused as a whole, naming
    /// "command 49", and appends nothing.
    async fn a_batch_whose_50th_command_overspends_appends_nothing(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        let head = server.head_seq().await;
        let commands: Vec<Value> = (0..100)
            .map(|index| {
                let amount = if index == 49 { "402.01" } else { "2.00" };
                batch_command("cash_payment", &cash_body(AMIF_MA, &format!("MA-{index}"), amount, (amount, "EUR")))
            })
            .collect();
        let answer = server.post(&server.finance_officer, "/v1/batch", &json!({"commands": commands})).await;
        server.assert_refused(&answer, 422, head, "a batch overspending at its 50th command").await;
        let text = detail(&answer);
        assert!(text.contains("command 49"), "the detail names the command (0-based): {text}");
        assert!(text.contains("MOTUSE/EU-AMIF/MA") && text.contains("402.00 EUR available"), "the line after 49 payments: {text}");
        let balance = server.get(&server.finance_officer, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!(balance["disbursed"]["total"], json!("0.00"), "nothing of the batch counts");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A donor token reads its own figures and nothing else.
    async fn a_donor_sees_only_its_own_funding(database: TestDatabase) {
        // A day ahead, so that a donor sees what is recorded today.
        let server = TestServer::start_days_ahead(&database, 1).await;
        small_programme(&server, "500.00").await;
        server.register_donor(BMZ).await;
        server.register_programme("SAHEL", "XOF", &["SN"]).await;
        server.commit_and_allocate("SAHEL", BMZ, "5000000", &[("SN", "1000000")]).await;
        server.post_created(&server.finance_officer, "/v1/payments/cash", &cash_body(AMIF_MA, "MA-1", "10.00", ("10.00", "EUR"))).await;
        let head = server.head_seq().await;
        let amif = server.donor_token(AMIF).await;
        let bmz = server.donor_token(BMZ).await;
        let forbidden = [
            "/v1/donors/BMZ/balance",
            "/v1/programmes/SAHEL/balance",
            "/v1/events",
            "/v1/events?after=0&limit=10",
            "/v1/verify",
            "/v1/trial-balance",
            "/v1/countries/MA/balance",
            "/v1/countries/SN/balance",
            "/v1/duplicates",
            "/v1/duplicates?window_days=0",
            "/v1/export",
        ];
        for path in forbidden {
            let answer = server.get(&amif, path).await;
            server.assert_refused(&answer, 403, head, &format!("donor EU-AMIF reading {path}")).await;
        }
        let own = server.get(&amif, "/v1/donors/EU-AMIF/balance").await;
        assert_eq!(own.status, 200, "{}", own.body);
        let programmes: Vec<Value> = own.json()["programmes"].as_array().unwrap().iter().map(|item| item["programme"].clone()).collect();
        assert_eq!(programmes, [json!(MOTUSE)], "only its own programmes");
        assert!(!own.body.contains("SAHEL") && !own.body.contains(BMZ), "nothing of the other donor: {}", own.body);
        let other = server.get(&bmz, "/v1/programmes/MOTUSE/balance").await;
        server.assert_refused(&other, 403, head, "donor BMZ reading a programme it does not fund").await;
        let own_programme = server.get(&bmz, "/v1/programmes/SAHEL/balance").await;
        assert_eq!(own_programme.status, 200, "{}", own_programme.body);
        assert!(!own_programme.body.contains(AMIF), "{}", own_programme.body);
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A case id sent over HTTP appears in no answer: not in events, balances,
    /// duplicates or exports, nor in the error a malformed case id causes.
    async fn a_case_id_never_appears_in_any_answer(database: TestDatabase) {
        // A day ahead, so that a donor sees what is recorded today.
        let server = TestServer::start_days_ahead(&database, 1).await;
        small_programme(&server, "500.00").await;
        server.register_programme("JI-NA", "EUR", &["MA"]).await;
        server.commit_and_allocate("JI-NA", AMIF, "100.00", &[("MA", "100.00")]).await;
        // Letters that are not hex digits, so that no hash can contain them by chance.
        let case_id = "ma-2023-Quokka 7731";
        let officer = server.finance_officer.clone();
        let head = server.head_seq().await;
        server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, case_id, "100.00", ("1090.00", "MAD"))).await;
        server.post_created(&officer, "/v1/grants/in-kind", &in_kind_individual_body(AMIF_MA, case_id, "50.00")).await;
        server.post_created(&officer, "/v1/payments/cash", &cash_body(("JI-NA", AMIF, "MA"), case_id, "10.00", ("10.00", "EUR"))).await;
        let batch = json!({"commands": [batch_command("cash_payment", &cash_body(AMIF_MA, case_id, "1.00", ("1.00", "EUR")))]});
        assert_eq!(server.post(&officer, "/v1/batch", &batch).await.status, 201);
        let answer = server.post(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, case_id, "999.00", ("999.00", "EUR"))).await;
        server.assert_refused(&answer, 422, head + 4, "an over-spending payment to the returnee").await;

        let amif = server.donor_token(AMIF).await;
        let reads = [
            (server.auditor.as_str(), "/v1/events?limit=1000"),
            (&server.auditor, "/v1/export"),
            (&server.auditor, "/v1/trial-balance"),
            (&server.auditor, "/v1/duplicates"),
            (&officer, "/v1/duplicates?window_days=0"),
            (&server.admin, "/v1/programmes/MOTUSE/balance"),
            (&server.admin, "/v1/countries/MA/balance"),
            (&server.admin, "/v1/donors/EU-AMIF/balance"),
            (&amif, "/v1/programmes/MOTUSE/balance"),
            (&amif, "/v1/donors/EU-AMIF/balance"),
        ];
        for (token, path) in reads {
            let answer = server.get(token, path).await;
            assert_eq!(answer.status, 200, "GET {path}: {}", answer.body);
        }
        let duplicates = server.get(&server.auditor, "/v1/duplicates").await.json();
        assert_eq!(duplicates["duplicates"].as_array().map(Vec::len), Some(1), "the returnee is found without its case id: {duplicates}");

        // Malformed case ids: the refusal must not echo what was sent.
        let mut as_number = cash_body(AMIF_MA, "x", "1.00", ("1.00", "EUR"));
        as_number["case_id"] = json!(918_273_645);
        let mut as_float = as_number.clone();
        as_float["case_id"] = json!(91_827.364_5);
        let mut as_list = as_number.clone();
        as_list["case_id"] = json!(["Quokka-31"]);
        let mut too_long = as_number.clone();
        too_long["case_id"] = json!(format!("quokka-{}", "9".repeat(80)));
        let mut with_control = as_number.clone();
        with_control["case_id"] = json!("quokka\u{7}31");
        for (what, body) in [("a number", &as_number), ("a float", &as_float), ("a list", &as_list), ("too long", &too_long), ("with a control character", &with_control)] {
            for (path, sent) in [("/v1/payments/cash", body.clone()), ("/v1/batch", json!({"commands": [batch_command("cash_payment", body)]}))] {
                let answer = server.post(&officer, path, &sent).await;
                server.assert_refused(&answer, 400, head + 4, &format!("a case id sent as {what} to {path}")).await;
                for echoed in ["918273645", "91827", "3645", "999999"] {
                    assert!(!answer.body.contains(echoed), "a case id sent as {what} is not echoed: {}", answer.body);
                }
            }
        }
        let transcript = server.transcript();
        assert!(transcript.len() > 20, "the transcript holds every answer");
        for body in &transcript {
            let lower = body.to_lowercase();
            assert!(!lower.contains("quokka"), "an answer shows the case id: {body}");
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// 40 concurrent payments of 100.00 on a line of 1,000.00: exactly 10
    /// are appended, 30 refused, nothing is left and the chain verifies.
    async fn concurrent_payments_never_overspend_a_budget_line(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "1000.00").await;
        let head = server.head_seq().await;
        let mut requests = tokio::task::JoinSet::new();
        for index in 0..40 {
            let request = server
                .request(Method::POST, "/v1/payments/cash", &server.finance_officer)
                .json(&cash_body(AMIF_MA, &format!("MA-{index}"), "100.00", ("1090.00", "MAD")));
            requests.spawn(async move {
                let response = request.send().await.expect("the server answers");
                let status = response.status().as_u16();
                let content_type = response.headers().get("content-type").map(|value| value.to_str().unwrap().to_string());
                (status, content_type, response.text().await.expect("a body"))
            });
        }
        let mut appended = Vec::new();
        let mut refused = 0;
        while let Some(result) = requests.join_next().await {
            let (status, content_type, body) = result.expect("the request task does not panic");
            match status {
                201 => appended.push(serde_json::from_str::<Value>(&body).unwrap()["seq"].as_u64().unwrap()),
                422 => {
                    assert_eq!(content_type.as_deref(), Some(PROBLEM_CONTENT_TYPE));
                    assert!(body.contains("MOTUSE/EU-AMIF/MA"), "{body}");
                    refused += 1;
                }
                other => panic!("unexpected {other}: {body}"),
            }
        }
        appended.sort_unstable();
        assert_eq!(appended, (head + 1..=head + 10).collect::<Vec<_>>(), "exactly 10 payments are appended, with consecutive seqs");
        assert_eq!(refused, 30, "the other 30 are refused");
        let balance = server.get(&server.finance_officer, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!((&balance["available"], &balance["disbursed"]["cash"]), (&json!("0.00"), &json!("1000.00")), "{balance}");
        let morocco = entry(&balance["by_country"], "country", "MA");
        assert_eq!(morocco["available"], json!("0.00"));
        assert_eq!(server.head_seq().await, head + 10, "the chain verifies");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// The same returnee paid by two programmes shows in /v1/duplicates
    /// with both programmes, by pseudonym only; so does one paid twice by
    /// one programme within the window.
    async fn a_returnee_paid_by_two_programmes_appears_in_duplicates_by_pseudonym_only(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        server.register_programme("JI-NA", "EUR", &["MA"]).await;
        server.commit_and_allocate("JI-NA", AMIF, "500.00", &[("MA", "500.00")]).await;
        let officer = server.finance_officer.clone();
        // The same case id written two ways: it is normalised before it is pseudonymised.
        server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "ma-2023-Walrus 0815", "100.00", ("1090.00", "MAD"))).await;
        server.post_created(&officer, "/v1/payments/cash", &cash_body(("JI-NA", AMIF, "MA"), " MA-2023-WALRUS0815", "80.00", ("872.00", "MAD"))).await;
        server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "ma-2023-narwhal-1", "50.00", ("545.00", "MAD"))).await;
        server.post_created(&officer, "/v1/grants/in-kind", &in_kind_individual_body(AMIF_MA, "ma-2023-narwhal-1", "50.00")).await;
        server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "ma-2023-only-once", "50.00", ("545.00", "MAD"))).await;

        let across = server.get(&officer, "/v1/duplicates?window_days=0").await;
        assert_eq!(across.status, 200, "{}", across.body);
        let across_json = across.json();
        let duplicates = across_json["duplicates"].as_array().unwrap();
        assert_eq!(duplicates.len(), 1, "only the returnee of two programmes, with no window: {across_json}");
        assert_eq!(duplicates[0]["programmes"], json!(["JI-NA", MOTUSE]));
        let assistance = duplicates[0]["assistance"].as_array().unwrap();
        let programmes: BTreeSet<&str> = assistance.iter().map(|item| item["programme"].as_str().unwrap()).collect();
        assert_eq!((assistance.len(), programmes.len()), (2, 2), "{across_json}");
        let reference = duplicates[0]["beneficiary_ref"].as_str().unwrap();
        assert!(!reference.is_empty() && !reference.to_lowercase().contains("walrus"), "a pseudonym: {reference}");

        let within = server.get(&server.auditor, "/v1/duplicates").await;
        assert_eq!(within.status, 200, "{}", within.body);
        let within_json = within.json();
        let found: Vec<&Value> = within_json["duplicates"].as_array().unwrap().iter().map(|item| &item["programmes"]).collect();
        assert_eq!(found.len(), 2, "and the returnee helped twice by one programme within 30 days: {within_json}");
        assert!(found.contains(&&json!([MOTUSE])), "{within_json}");
        for body in [&across.body, &within.body] {
            let lower = body.to_lowercase();
            assert!(!lower.contains("walrus") && !lower.contains("narwhal") && !lower.contains("only-once"), "no case id: {body}");
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A case id written in full-width forms, with a Unicode hyphen or an
    /// invisible space, is the same returnee as its ASCII form; one holding
    /// a character case numbers are not made of, such as a right-to-left
    /// override, is refused with 400 naming the rule.
    async fn a_case_id_is_normalised_with_nfkc_and_restricted_to_the_characters_of_case_numbers(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "500.00").await;
        server.register_programme("JI-NA", "EUR", &["MA"]).await;
        server.commit_and_allocate("JI-NA", AMIF, "500.00", &[("MA", "500.00")]).await;
        let officer = server.finance_officer.clone();
        server.post_created(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, "MA-2023-0042", "100.00", ("1090.00", "MAD"))).await;
        let full_width = "ＭＡ－２０２３－００４２";
        server.post_created(&officer, "/v1/payments/cash", &cash_body(("JI-NA", AMIF, "MA"), full_width, "80.00", ("872.00", "MAD"))).await;
        let hyphen_and_invisible_space = "ma\u{2010}2023-\u{200B}0042";
        server.post_created(&officer, "/v1/grants/in-kind", &in_kind_individual_body(AMIF_MA, hyphen_and_invisible_space, "50.00")).await;

        let across = server.get(&officer, "/v1/duplicates?window_days=0").await.json();
        let duplicates = across["duplicates"].as_array().unwrap();
        assert_eq!(duplicates.len(), 1, "one returnee, assisted by two programmes: {across}");
        assert_eq!(duplicates[0]["programmes"], json!(["JI-NA", MOTUSE]));
        assert_eq!(duplicates[0]["assistance"].as_array().map(Vec::len), Some(3), "all three under one pseudonym: {across}");

        let head = server.head_seq().await;
        for case_id in ["MA\u{202E}1", "MA-\u{0661}\u{0662}", "MA#1"] {
            let answer = server.post(&officer, "/v1/payments/cash", &cash_body(AMIF_MA, case_id, "1.00", ("1.00", "EUR"))).await;
            server.assert_refused(&answer, 400, head, &format!("case id {:?}", case_id.escape_unicode().to_string())).await;
            assert_eq!(
                detail(&answer),
                "case_id: may hold only letters A-Z, digits 0-9 and - / _ . (after Unicode NFKC normalisation)"
            );
        }
        let reversal = json!({"seq": head, "reason": "entered \u{202E}twice"});
        let answer = server.post(&officer, "/v1/reversals", &reversal).await;
        server.assert_refused(&answer, 400, head, "a reason holding a right-to-left override").await;
        assert!(detail(&answer).starts_with("reason: contains a bidirectional control"), "{}", answer.body);
        let reversal = json!({"seq": head, "reason": "entered\ntwice"});
        let answer = server.post(&officer, "/v1/reversals", &reversal).await;
        server.assert_refused(&answer, 400, head, "a reason of two lines").await;
        server.stop().await;
    }
}

test_on_both_backends! {
    /// /openapi.json is an OpenAPI 3.1 document listing every path of the
    /// brief, and /healthz answers anyone.
    async fn the_openapi_document_lists_every_path_of_the_brief(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let answer = server.send(server.client.get(server.url("/openapi.json"))).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.content_type.starts_with("application/json"), "{}", answer.content_type);
        let document = answer.json();
        let version = document["openapi"].as_str().unwrap_or_default();
        assert!(version.starts_with("3.1"), "OpenAPI 3.1, not {version:?}");
        let paths = document["paths"].as_object().expect("the document has paths");
        let brief = [
            ("/v1/donors", "post"),
            ("/v1/programmes", "post"),
            ("/v1/commitments", "post"),
            ("/v1/receipts", "post"),
            ("/v1/allocations", "post"),
            ("/v1/reallocations", "post"),
            ("/v1/payments/cash", "post"),
            ("/v1/grants/in-kind", "post"),
            ("/v1/reversals", "post"),
            ("/v1/batch", "post"),
            ("/v1/programmes/{code}/balance", "get"),
            ("/v1/donors/{code}/balance", "get"),
            ("/v1/countries/{iso}/balance", "get"),
            ("/v1/events", "get"),
            ("/v1/verify", "get"),
            ("/v1/trial-balance", "get"),
            ("/v1/duplicates", "get"),
            ("/openapi.json", "get"),
            ("/healthz", "get"),
        ];
        let health = server.send(server.client.get(server.url("/healthz"))).await;
        assert_eq!(health.status, 200, "{}", health.body);
        assert_eq!(health.json(), json!({"status": "ok", "head_seq": 0}));
        let missing: Vec<String> = brief
            .iter()
            .filter(|(path, method)| paths.get(*path).and_then(|operations| operations.get(*method)).is_none())
            .map(|(path, method)| format!("{method} {path}"))
            .collect();
        assert!(missing.is_empty(), "operations of the brief missing from the document: {missing:?}");
        let type_filter = document["paths"]["/v1/events"]["get"]["parameters"]
            .as_array()
            .and_then(|parameters| parameters.iter().find(|parameter| parameter["name"] == "type"))
            .expect("the events read has a type filter");
        let mut described: Vec<&str> =
            type_filter["schema"]["enum"].as_array().expect("the type filter lists the event types").iter().filter_map(|name| name.as_str()).collect();
        let mut written: Vec<&str> = ledger_core::domain::events::EVENT_TYPES.iter().map(|(name, _)| *name).collect();
        described.sort_unstable();
        written.sort_unstable();
        assert_eq!(described, written, "the type filter names every event type the ledger writes");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Payments in flight when the shutdown starts are answered, and every
    /// 201 answered is in the database, verified, after a restart.
    async fn a_graceful_shutdown_commits_every_acknowledged_request(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        small_programme(&server, "1000.00").await;
        let head = server.head_seq().await;
        let mut requests = tokio::task::JoinSet::new();
        for index in 0..20 {
            let request = server
                .request(Method::POST, "/v1/payments/cash", &server.finance_officer)
                .json(&cash_body(AMIF_MA, &format!("MA-{index}"), "10.00", ("109.00", "MAD")));
            requests.spawn(async move {
                match request.send().await {
                    Ok(response) => Some((response.status().as_u16(), response.text().await.ok())),
                    Err(_) => None,
                }
            });
        }
        // Shut down as soon as the first payment is committed, with the others in flight.
        let store = server.ledger.store.clone();
        for _ in 0..1_000 {
            if store.head().await.expect("the head can be read").0 > head {
                break;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        let head_at_shutdown = store.head().await.expect("the head can be read").0 - head;
        server.stop().await;

        let mut acknowledged = Vec::new();
        while let Some(result) = requests.join_next().await {
            match result.expect("the request task does not panic") {
                Some((201, Some(body))) => acknowledged.push(serde_json::from_str::<Value>(&body).expect("a receipt")),
                Some((status, body)) => panic!("an answered request must be appended, got {status}: {body:?}"),
                None => {} // Not accepted before the shutdown: never answered, never appended.
            }
        }
        assert!(!acknowledged.is_empty(), "at least the first payment was answered");
        eprintln!("{head_at_shutdown} of 20 payments committed when the shutdown started, {} acknowledged", acknowledged.len());
        let reopened = database.open().await;
        assert_chain_valid(&reopened.store, &test_keys()).await;
        let (head_after, _) = reopened.store.head().await.unwrap();
        assert_eq!(head_after, head + acknowledged.len() as u64, "every appended payment was acknowledged, and no more");
        for receipt in &acknowledged {
            let seq = receipt["seq"].as_u64().unwrap();
            let events = reopened.store.events_after(seq - 1, 1).await.unwrap();
            let event = events.first().unwrap_or_else(|| panic!("seq {seq} was acknowledged but is not in the database"));
            assert_eq!((event.id.to_string(), hex::encode(event.hash)), (receipt["id"].as_str().unwrap().to_string(), receipt["hash"].as_str().unwrap().to_string()));
        }
    }
}
