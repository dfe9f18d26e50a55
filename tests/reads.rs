//! Reads at the edge: every integer of a path or query in its range, one
//! rule for points beyond the head, and donors seeing aggregates only.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use api_support::*;
use serde_json::json;

const MOTUSE: &str = "MOTUSE";
const AMIF: &str = "EU-AMIF";

/// A programme in Morocco with `returnees` paid 10.00 EUR each.
async fn programme_with_payments(server: &TestServer, returnees: usize) {
    server.register_donor(AMIF).await;
    server.register_programme(MOTUSE, "EUR", &["MA", "TN"]).await;
    server.commit_and_allocate(MOTUSE, AMIF, "1000.00", &[("MA", "500.00")]).await;
    for index in 0..returnees {
        let body = cash_body((MOTUSE, AMIF, "MA"), &format!("MA-READS-{index}"), "10.00", ("10.00", "EUR"));
        server.post_created(&server.finance_officer, "/v1/payments/cash", &body).await;
    }
}

test_on_both_backends! {
    /// Integers past what the ledger can hold, or outside a parameter's
    /// range, are 400 problems naming the range; the server keeps serving.
    async fn integers_of_paths_and_queries_are_range_checked_with_a_400_naming_the_range(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        programme_with_payments(&server, 1).await;
        let head = server.head_seq().await;
        let auditor = server.auditor.as_str();
        let officer = server.finance_officer.as_str();
        let admin = server.admin.as_str();
        let past_i64 = "9223372036854775808";
        let cases = [
            (auditor, format!("/v1/events?after={past_i64}"), "after must be an integer from 0 to 9223372036854775807"),
            (auditor, "/v1/events?after=18446744073709551616".to_string(), "after must be an integer"),
            (auditor, "/v1/events?limit=1001".to_string(), "limit must be an integer from 1 to 1000"),
            (auditor, "/v1/events?limit=0".to_string(), "limit must be an integer from 1 to 1000"),
            (auditor, format!("/v1/export?after={past_i64}"), "after must be an integer"),
            (auditor, format!("/v1/proofs/inclusion?seq={past_i64}"), "seq must be an integer from 1 to"),
            (auditor, "/v1/proofs/inclusion?seq=0".to_string(), "seq must be an integer from 1 to"),
            (auditor, format!("/v1/proofs/inclusion?seq=1&size={past_i64}"), "size must be an integer from 1 to"),
            (auditor, "/v1/proofs/consistency?from=0&to=1".to_string(), "from must be an integer from 1 to"),
            (auditor, format!("/v1/proofs/consistency?from=1&to={past_i64}"), "to must be an integer from 1 to"),
            (auditor, format!("/v1/checkpoints/{past_i64}"), "size must be an integer from 0 to"),
            (officer, "/v1/duplicates?window_days=3661".to_string(), "window_days must be an integer from 0 to 3660"),
            (officer, "/v1/duplicates?window_days=-1".to_string(), "window_days must be an integer"),
            (admin, format!("/v1/programmes/MOTUSE/balance?as_of_seq={past_i64}"), "as_of_seq must be an integer"),
        ];
        for (token, path, named) in &cases {
            let answer = server.get(token, path).await;
            server.assert_refused(&answer, 400, head, path).await;
            assert!(detail(&answer).contains(named), "GET {path}: the refusal names the range: {}", detail(&answer));
        }
        let last = server.get(auditor, &format!("/v1/events?after={}", i64::MAX)).await;
        assert_eq!(last.status, 200, "the largest seq is a valid `after`: {}", last.body);
        assert_eq!(last.json()["events"], json!([]));
        server.stop().await;
    }
}

test_on_both_backends! {
    /// One rule for points beyond the head: `as_of_seq` past the last event
    /// and `as_of` after today are refused (422: well formed, not reached),
    /// and dates outside the ledger's range are malformed (400); today and
    /// the head itself are answered.
    async fn a_balance_is_never_answered_for_a_point_the_ledger_has_not_reached(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        programme_with_payments(&server, 2).await;
        let head = server.head_seq().await;
        let admin = server.admin.as_str();
        let today = chrono::Utc::now().date_naive();
        let tomorrow = today.succ_opt().unwrap();
        let live = server.get(admin, "/v1/programmes/MOTUSE/balance").await;
        assert_eq!(live.status, 200, "{}", live.body);
        let refused = [
            (format!("as_of_seq={}", head + 1), 422, "past the ledger's last event"),
            (format!("as_of={tomorrow}"), 422, "after today"),
            ("as_of=9999-12-31".to_string(), 400, "as_of must be a date YYYY-MM-DD from 1990-01-01 to 2099-12-31"),
            ("as_of=1989-12-31".to_string(), 400, "as_of must be a date"),
            ("as_of=2025-1-1".to_string(), 400, "as_of must be a date"),
            ("as_of=+10000-01-01".to_string(), 400, "as_of must be a date"),
            ("as_of_seq=1&as_of=2025-01-01".to_string(), 422, "not both"),
        ];
        for (query, status, named) in &refused {
            let answer = server.get(admin, &format!("/v1/programmes/MOTUSE/balance?{query}")).await;
            server.assert_refused(&answer, *status, head, query).await;
            assert!(detail(&answer).contains(named), "{query}: {}", detail(&answer));
        }
        let at_head = server.get(admin, &format!("/v1/programmes/MOTUSE/balance?as_of_seq={head}")).await;
        assert_eq!(at_head.status, 200, "{}", at_head.body);
        assert_eq!(at_head.json()["figures"], live.json()["figures"], "the head itself is the live balance");
        let as_of_today = server.get(admin, &format!("/v1/programmes/MOTUSE/balance?as_of={today}")).await;
        assert_eq!(as_of_today.status, 200, "{}", as_of_today.body);
        assert_eq!(as_of_today.json()["as_of"], json!(today.to_string()));
        assert_eq!(as_of_today.json()["as_of_seq"], json!(head));
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A donor gets aggregates only: never `as_of_seq`, figures as of the
    /// end of a closed UTC day (yesterday by default, never today), and
    /// counts of returnees below 5 as "fewer than 5".
    async fn a_donor_sees_closed_day_aggregates_and_no_count_below_five(database: TestDatabase) {
        // Today, for the server, is still open: nothing of it is shown to a donor.
        let server = TestServer::start(&database).await;
        programme_with_payments(&server, 4).await;
        let head = server.head_seq().await;
        let amif = server.donor_token(AMIF).await;
        let today = chrono::Utc::now().date_naive();
        let yesterday = today.pred_opt().unwrap();
        let unseen = server.get(&amif, "/v1/programmes/MOTUSE/balance").await;
        server.assert_refused(&unseen, 404, head, "a programme registered today, as of yesterday").await;
        assert!(detail(&unseen).contains(&format!("not yet registered at the end of {yesterday}")), "{}", detail(&unseen));
        let own = server.get(&amif, "/v1/donors/EU-AMIF/balance").await;
        assert_eq!(own.status, 200, "{}", own.body);
        assert_eq!((&own.json()["as_of"], &own.json()["as_of_seq"]), (&json!(yesterday.to_string()), &json!(0)));
        assert_eq!(own.json()["programmes"], json!([]), "nothing funded by the end of yesterday");
        for (query, status) in [
            ("as_of_seq=3".to_string(), 403),
            (format!("as_of_seq={head}"), 403),
            (format!("as_of={today}"), 422),
        ] {
            let answer = server.get(&amif, &format!("/v1/programmes/MOTUSE/balance?{query}")).await;
            server.assert_refused(&answer, status, head, &query).await;
            let answer = server.get(&amif, &format!("/v1/donors/EU-AMIF/balance?{query}")).await;
            server.assert_refused(&answer, status, head, &query).await;
        }
        server.stop().await;

        // A day later, today is closed: the donor sees it, counts below 5 hidden.
        let later = database.another().await;
        let server = TestServer::start_days_ahead(&later, 1).await;
        programme_with_payments(&server, 4).await;
        let amif = server.donor_token(AMIF).await;
        let donor_view = server.get(&amif, "/v1/programmes/MOTUSE/balance").await;
        assert_eq!(donor_view.status, 200, "{}", donor_view.body);
        let donor_view = donor_view.json();
        let admin_view = server.get(&server.admin, &format!("/v1/programmes/MOTUSE/balance?as_of={today}")).await.json();
        assert_eq!(donor_view["as_of"], json!(today.to_string()), "the answer names the day its figures stand at");
        assert_eq!(donor_view["figures"], admin_view["figures"], "the programme's totals stay visible to its donors");
        assert_eq!(admin_view["beneficiaries_reached"], json!(4));
        assert_eq!(donor_view["beneficiaries_reached"], json!("fewer than 5"));
        let morocco = donor_view["by_country"].as_array().unwrap().iter().find(|country| country["country"] == "MA").unwrap();
        assert_eq!(morocco["beneficiaries_reached"], json!("fewer than 5"), "{morocco}");
        let body = cash_body((MOTUSE, AMIF, "MA"), "MA-READS-FIFTH", "10.00", ("10.00", "EUR"));
        server.post_created(&server.finance_officer, "/v1/payments/cash", &body).await;
        let five = server.get(&amif, "/v1/programmes/MOTUSE/balance").await.json();
        assert_eq!(five["beneficiaries_reached"], json!(5), "five returnees and more are counted exactly");
        let own = server.get(&amif, "/v1/donors/EU-AMIF/balance").await.json();
        assert_eq!(own["as_of"], json!(today.to_string()));
        assert_eq!(own["programmes"][0]["figures"], five["by_donor"][0]["figures"], "the donor's balance and its share agree");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A new user finds out what exists: the programmes and donors, each
    /// role on its scope, and a programme's registration.
    async fn programmes_and_donors_are_listed_each_role_on_its_scope(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        programme_with_payments(&server, 1).await;
        server.register_donor("BMZ").await;
        server.register_programme("SAHEL", "XOF", &["SN", "ML"]).await;
        server.commit_and_allocate("SAHEL", "BMZ", "5000000", &[]).await;
        let head = server.head_seq().await;
        let amif = server.donor_token(AMIF).await;
        for token in [&server.admin, &server.auditor, &server.finance_officer] {
            let list = server.get(token, "/v1/programmes").await;
            assert_eq!(list.status, 200, "{}", list.body);
            let codes: Vec<String> =
                list.json()["programmes"].as_array().unwrap().iter().map(|programme| programme["code"].to_string()).collect();
            assert_eq!(codes, ["\"MOTUSE\"", "\"SAHEL\""]);
            let donors = server.get(token, "/v1/donors").await.json();
            assert_eq!(donors["donors"].as_array().unwrap().len(), 2, "{donors}");
        }
        let mine = server.get(&amif, "/v1/programmes").await.json();
        assert_eq!(mine["programmes"].as_array().unwrap().len(), 1, "a donor lists the programmes it funds: {mine}");
        let motuse = &mine["programmes"][0];
        assert_eq!(
            (&motuse["code"], &motuse["currency"], &motuse["countries"], &motuse["implementer"]),
            (&json!("MOTUSE"), &json!("EUR"), &json!(["MA", "TN"]), &json!("IOM"))
        );
        assert_eq!((&motuse["starts_on"], &motuse["ends_on"], &motuse["registered_seq"]), (&json!("2023-01-01"), &json!("2026-12-31"), &json!(2)));
        let donors = server.get(&amif, "/v1/donors").await.json();
        assert_eq!(donors["donors"], json!([{"code": AMIF, "name": "Donor EU-AMIF", "kind": "eu_instrument", "iati_identifier": null, "registered_seq": 1}]));
        let one = server.get(&server.finance_officer, "/v1/programmes/SAHEL").await;
        assert_eq!(one.status, 200, "{}", one.body);
        assert_eq!((&one.json()["currency"], &one.json()["countries"]), (&json!("XOF"), &json!(["SN", "ML"])));
        assert_eq!(server.get(&amif, "/v1/programmes/MOTUSE").await.json()["code"], json!("MOTUSE"));
        for (token, path, status) in [
            (amif.as_str(), "/v1/programmes/SAHEL", 403),
            (server.admin.as_str(), "/v1/programmes/NOPE", 404),
            (server.admin.as_str(), "/v1/programmes/motuse%20x", 400),
            ("not-a-token", "/v1/programmes", 401),
        ] {
            let answer = server.get(token, path).await;
            server.assert_refused(&answer, status, head, path).await;
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// An auditor filters the events by programme and by type; pages of a
    /// filter put together give exactly the matching events.
    async fn an_auditor_filters_events_by_programme_and_type(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        programme_with_payments(&server, 3).await;
        server.register_donor("BMZ").await;
        server.register_programme("SAHEL", "XOF", &["SN"]).await;
        server.commit_and_allocate("SAHEL", "BMZ", "5000000", &[("SN", "100000")]).await;
        let reversal = server.post_created(&server.finance_officer, "/v1/reversals", &reversal_body(6)).await;
        let head = server.head_seq().await;
        let auditor = server.auditor.as_str();
        let all = server.all_events(1000).await;
        let by_filter = |filter: &dyn Fn(&serde_json::Value) -> bool| -> Vec<u64> {
            all.iter().filter(|event| filter(event)).map(|event| event["seq"].as_u64().unwrap()).collect()
        };
        let collect = |query: String, limit: u32| {
            let server = &server;
            async move {
                let (mut seqs, mut after) = (Vec::new(), 0u64);
                loop {
                    let page = server.get(auditor, &format!("/v1/events?{query}&limit={limit}&after={after}")).await;
                    assert_eq!(page.status, 200, "{query}: {}", page.body);
                    let page = page.json();
                    seqs.extend(page["events"].as_array().unwrap().iter().map(|event| event["seq"].as_u64().unwrap()));
                    match page["next_after"].as_u64() {
                        Some(next) => after = next,
                        None => return seqs,
                    }
                }
            }
        };
        let payments = by_filter(&|event| event["event_type"] == "cash_reinsertion_paid");
        assert_eq!(payments.len(), 3);
        for limit in [1, 2, 100] {
            assert_eq!(collect("type=cash_reinsertion_paid".to_string(), limit).await, payments, "pages of {limit}");
        }
        let sahel = collect("programme=SAHEL".to_string(), 2).await;
        let motuse = collect("programme=MOTUSE".to_string(), 100).await;
        assert_eq!(sahel.len(), 3, "SAHEL's registration, commitment and allocation: {sahel:?}");
        assert!(motuse.contains(&reversal) && motuse.contains(&2), "a programme's reversal and registration are its events: {motuse:?}");
        let mut both: Vec<u64> = sahel.iter().chain(&motuse).copied().collect();
        both.sort();
        let donors = by_filter(&|event| event["event_type"] == "donor_registered");
        let mut expected: Vec<u64> = (1..=head).filter(|seq| !donors.contains(seq)).collect();
        expected.sort();
        assert_eq!(both, expected, "every event but the donors' registrations belongs to one programme");
        assert_eq!(collect("programme=MOTUSE&type=entry_reversed".to_string(), 10).await, vec![reversal]);
        assert_eq!(collect("programme=SAHEL&type=cash_reinsertion_paid".to_string(), 10).await, Vec::<u64>::new());
        for query in ["type=payment", "programme=not%20a%20code"] {
            let answer = server.get(auditor, &format!("/v1/events?{query}")).await;
            server.assert_refused(&answer, 400, head, query).await;
        }
        server.stop().await;
    }
}
