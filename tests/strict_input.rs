//! Request input read strictly at the HTTP edge, on both backends: amounts
//! in one decimal form, dates in one calendar form and range, no JSON key
//! given twice, and the `Bearer` scheme in any case. Each refusal is a 400
//! problem naming the field and appends nothing.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use api_support::*;
use reqwest::Method;
use serde_json::{Value, json};

const MOTUSE: &str = "MOTUSE";
const AMIF: &str = "EU-AMIF";

/// A donor and a EUR programme in Morocco, with 1,000.00 EUR committed and allocated.
async fn funded_programme(server: &TestServer) {
    server.register_donor(AMIF).await;
    server.register_programme(MOTUSE, "EUR", &["MA"]).await;
    server.commit_and_allocate(MOTUSE, AMIF, "1000.00", &[("MA", "1000.00")]).await;
}

/// Posts `body` and checks a 400 whose detail holds every one of `phrases`.
async fn assert_bad_request(server: &TestServer, token: &str, path: &str, body: &str, phrases: &[&str]) {
    let head_before = server.head_seq().await;
    let answer = server.post_text(token, path, body).await;
    let what = format!("POST {path} {body}");
    server.assert_refused(&answer, 400, head_before, &what).await;
    let detail = detail(&answer);
    for phrase in phrases {
        assert!(detail.contains(phrase), "{what}: the detail names {phrase:?}: {detail}");
    }
}

fn with_field(body: Value, field: &str, value: &str) -> String {
    let mut body = body;
    body[field] = json!(value);
    body.to_string()
}

test_on_both_backends! {
    /// `"00005"`, `"5."`, `".5"`, `"1e3"`, a sign, a space or an endless
    /// string are refused with 400 naming the field and the form.
    async fn an_amount_in_any_but_the_plain_decimal_form_is_refused(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        funded_programme(&server).await;
        let officer = server.finance_officer.clone();
        let too_long = format!("1{}", "0".repeat(40));
        for text in ["00005", "05.00", "5.", ".5", "1e3", "1E3", "-5.00", "+5.00", " 5.00", "5.00 ", "5,00", "", too_long.as_str()] {
            let body = with_field(commitment_body(MOTUSE, AMIF, "1.00"), "amount", text);
            assert_bad_request(&server, &officer, "/v1/commitments", &body, &["amount:", "is not a decimal amount like \"350.00\"", "no leading zeros"]).await;
        }
        let cash = cash_body((MOTUSE, AMIF, "MA"), "MA-2023-000101", "10.00", ("00110", "MAD"));
        assert_bad_request(&server, &officer, "/v1/payments/cash", &cash.to_string(), &["paid_amount:", "is not a decimal amount"]).await;
        for text in ["0.50", "5", "12.5"] {
            let body = commitment_body(MOTUSE, AMIF, text);
            server.post_created(&officer, "/v1/commitments", &body).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Dates are exactly `YYYY-MM-DD`, a real day from 1990-01-01 to
    /// 2099-12-31, in every body and in batch commands.
    async fn a_date_in_any_but_the_exact_form_or_out_of_range_is_refused(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        funded_programme(&server).await;
        let (officer, admin) = (server.finance_officer.clone(), server.admin.clone());
        let range = "from 1990-01-01 to 2099-12-31";
        for text in ["2025-1-1", " 2025-01-01", "2025-01-01 ", "0000-01-01", "+10000-01-01", "2025-02-30", "1989-12-31", "2100-01-01", "20250101"] {
            let body = with_field(commitment_body(MOTUSE, AMIF, "1.00"), "committed_on", text);
            assert_bad_request(&server, &officer, "/v1/commitments", &body, &["committed_on:", range]).await;
            let body = with_field(receipt_body(MOTUSE, AMIF, "1.00"), "received_on", text);
            assert_bad_request(&server, &officer, "/v1/receipts", &body, &["received_on:", range]).await;
            let cash = cash_body((MOTUSE, AMIF, "MA"), "MA-2023-000101", "10.00", ("110.00", "MAD"));
            assert_bad_request(&server, &officer, "/v1/payments/cash", &with_field(cash, "paid_on", text), &["paid_on:", range]).await;
            let grant = in_kind_community_body((MOTUSE, AMIF, "MA"), "Village of Tiznit", "10.00");
            assert_bad_request(&server, &officer, "/v1/grants/in-kind", &with_field(grant, "delivered_on", text), &["delivered_on:", range]).await;
            let programme = with_field(programme_body("NEWPROG", "EUR", &["MA"]), "starts_on", text);
            assert_bad_request(&server, &admin, "/v1/programmes", &programme, &["starts_on:", range]).await;
            let programme: Value = serde_json::from_str(&with_field(programme_body("NEWPROG", "EUR", &["MA"]), "ends_on", text)).expect("JSON");
            let batch = json!({"commands": [batch_command("programme", &programme)]});
            assert_bad_request(&server, &admin, "/v1/batch", &batch.to_string(), &["ends_on:", range]).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// Two readers could understand a body with a key given twice in two
    /// ways (serde_json alone keeps the last): it is refused, naming the key.
    async fn a_body_with_a_key_given_twice_is_refused_naming_the_key(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        funded_programme(&server).await;
        let officer = server.finance_officer.clone();
        let top_level = r#"{"programme": "MOTUSE", "donor": "EU-AMIF", "amount": "1.00", "amount": "900.00",
            "reference": "R-1", "committed_on": "2023-01-10"}"#;
        assert_bad_request(&server, &officer, "/v1/commitments", top_level, &["\"amount\" appears twice"]).await;
        let nested = r#"{"commands": [{"type": "commitment", "programme": "MOTUSE", "donor": "EU-AMIF", "amount": "1.00",
            "reference": "R-1", "reference": "R-2", "committed_on": "2023-01-10"}]}"#;
        assert_bad_request(&server, &officer, "/v1/batch", nested, &["\"reference\" appears twice"]).await;
        let head_before = server.head_seq().await;
        let answer = server.post_with_key(&officer, "/v1/commitments", "key-1", top_level).await;
        server.assert_refused(&answer, 400, head_before, "a duplicate key with an Idempotency-Key").await;
        let single = commitment_body(MOTUSE, AMIF, "1.00").to_string();
        let first = server.post_with_key(&officer, "/v1/commitments", "key-1", &single).await;
        let again = server.post_with_key(&officer, "/v1/commitments", "key-1", &single).await;
        assert_eq!(assert_created(&first, "first with key-1"), assert_created(&again, "replay of key-1"), "the key was left free and replays");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// RFC 9110: the auth scheme's name is case-insensitive, for reads and writes.
    async fn the_bearer_scheme_is_read_in_any_case(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        for (index, scheme) in ["bearer", "BEARER", "BeArEr", "Bearer"].into_iter().enumerate() {
            let read = server.client.get(server.url("/v1/verify")).header("authorization", format!("{scheme} {}", server.auditor));
            let answer = server.send(read).await;
            assert_eq!(answer.status, 200, "{scheme}: the auditor reads: {}", answer.body);
            let body = donor_body(&format!("DONOR-{index}"));
            let write = server.client.request(Method::POST, server.url("/v1/donors")).header("authorization", format!("{scheme} {}", server.admin)).json(&body);
            assert_created(&server.send(write).await, &format!("{scheme}: the admin writes"));
        }
        for header in ["Basic abc", "Bearer", "Bearertoken", "Token abc"] {
            let read = server.client.get(server.url("/v1/verify")).header("authorization", header);
            assert_problem(&server.send(read).await, 401, header);
        }
        server.stop().await;
    }
}
