//! IATI 2.03 activity files: every file a test produces validates against
//! the schema kept in `tests/iati-2.03` (with `xmllint`) and keeps the
//! standard's basic rules; disbursements are summed per country, month and
//! kind; donors get their own money of a programme they fund.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use std::path::PathBuf;
use std::process::Command;

use api_support::*;
use chrono::Utc;
use serde_json::{Value, json};

const PROGRAMME: &str = "MOTUSE";
const DONOR: &str = "EU-AMIF";
const OTHER_DONOR: &str = "DK-MFA";

/// Validates `xml` against the IATI 2.03 schema with xmllint, and checks
/// the rules the schema does not: an activity start date, no transaction
/// dated after the server's today, identifiers without `/ & | ?`, recipient country
/// percentages summing to 100 and a currency on every value.
fn assert_valid_iati(xml: &str, days_ahead: u64, what: &str) {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("iati-2.03/iati-activities-schema.xsd");
    let file = std::env::temp_dir().join(format!("iati-{}-{}.xml", std::process::id(), uuid::Uuid::now_v7()));
    std::fs::write(&file, xml).expect("the file can be written");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&schema)
        .arg(&file)
        .output()
        .expect("xmllint runs (Debian libxml2-utils)");
    let _ = std::fs::remove_file(&file);
    assert!(output.status.success(), "{what}: the file validates: {}\n{xml}", String::from_utf8_lossy(&output.stderr));
    let today = (Utc::now().date_naive() + chrono::Days::new(days_ahead)).to_string();
    for activity in xml.split("<iati-activity ").skip(1) {
        let identifier = between(activity, "<iati-identifier>", "</iati-identifier>");
        assert!(!identifier.contains(['/', '&', '|', '?']), "{what}: identifier {identifier}");
        assert!(
            activity.contains("<activity-date type=\"1\"") || activity.contains("<activity-date type=\"2\""),
            "{what}: a start date"
        );
        let percentages: Vec<rust_decimal::Decimal> =
            attribute_values(activity, "percentage").iter().map(|text| text.parse().expect("a decimal")).collect();
        if !percentages.is_empty() {
            assert_eq!(percentages.iter().sum::<rust_decimal::Decimal>(), rust_decimal::Decimal::from(100), "{what}: {activity}");
        }
        let dated = [
            "<transaction-date iso-date=\"",
            "value-date=\"",
            "<activity-date type=\"2\" iso-date=\"",
            "<activity-date type=\"4\" iso-date=\"",
        ];
        for marker in dated {
            for rest in activity.split(marker).skip(1) {
                let date = rest.split('"').next().unwrap_or_default();
                assert!(date <= today.as_str(), "{what}: {date} is not after the server's today {today}");
            }
        }
        assert_eq!(
            activity.matches("<value ").count(),
            activity.matches("<value currency=").count(),
            "{what}: every value has a currency"
        );
    }
}

fn between<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let from = text.find(start).map(|index| index + start.len()).unwrap_or_else(|| panic!("{start} in {text}"));
    let to = text[from..].find(end).map(|index| from + index).unwrap_or_else(|| panic!("{end} in {text}"));
    &text[from..to]
}

fn attribute_values(text: &str, name: &str) -> Vec<String> {
    let marker = format!(" {name}=\"");
    text.split(&marker).skip(1).map(|rest| rest.split('"').next().unwrap_or_default().to_string()).collect()
}

/// The expenditure transactions: (value, description).
fn expenditure(xml: &str) -> Vec<(String, String)> {
    xml.split("<transaction>")
        .skip(1)
        .filter(|transaction| transaction.contains("<transaction-type code=\"4\""))
        .map(|transaction| {
            let value = between(transaction, "<value ", "</value>").rsplit('>').next().unwrap_or_default().to_string();
            let description = between(between(transaction, "<description>", "</description>"), "<narrative>", "</narrative>");
            (value, description.to_string())
        })
        .collect()
}

async fn funded_programme(server: &TestServer) {
    server.register_donor(DONOR).await;
    server.register_donor(OTHER_DONOR).await;
    server.register_programme(PROGRAMME, "EUR", &["MA", "TN"]).await;
    server.commit_and_allocate(PROGRAMME, DONOR, "1000.00", &[("MA", "500.00"), ("TN", "300.00")]).await;
    server.commit_and_allocate(PROGRAMME, OTHER_DONOR, "200.00", &[("MA", "200.00")]).await;
    let officer = server.finance_officer.as_str();
    server.post_created(officer, "/v1/receipts", &receipt_body(PROGRAMME, DONOR, "600.00")).await;
    server.post_created(officer, "/v1/reallocations", &reallocation_body(PROGRAMME, DONOR, ("MA", "TN"), "100.00")).await;
    for (index, amount) in ["50.00", "20.00"].iter().enumerate() {
        let paid = cash_body((PROGRAMME, DONOR, "MA"), &format!("MA-IATI-{index}"), amount, ("540.00", "MAD"));
        server.post_created(officer, "/v1/payments/cash", &paid).await;
    }
    let other = cash_body((PROGRAMME, OTHER_DONOR, "MA"), "MA-IATI-9", "15.00", ("162.00", "MAD"));
    let reversed = server.post_created(officer, "/v1/payments/cash", &other).await;
    server.post_created(officer, "/v1/reversals", &reversal_body(reversed)).await;
    let grant = in_kind_individual_body((PROGRAMME, DONOR, "TN"), "TN-IATI-3", "30.00");
    server.post_created(officer, "/v1/grants/in-kind", &grant).await;
}

test_on_both_backends! {
    /// The file validates, names the activity after the reporting
    /// organisation and the programme, shares the countries by allocation
    /// and sums disbursements per country, month and kind, a reversal
    /// netting into the month it was recorded.
    async fn an_iati_file_validates_and_sums_disbursements_per_country_month_and_kind(database: TestDatabase) {
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_programme(&server).await;
        let answer = server.get(&server.auditor, &format!("/v1/reports/iati?programme={PROGRAMME}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert!(answer.content_type.starts_with("application/xml"), "{}", answer.content_type);
        let xml = &answer.body;
        assert_valid_iati(xml, 1, "the programme's file");
        assert!(xml.contains(&format!("<iati-identifier>{REPORTING_ORG_REF}-{PROGRAMME}</iati-identifier>")), "{xml}");
        assert!(xml.contains("<recipient-country code=\"MA\" percentage=\"60.00\"/>"), "600 of 1000 allocated: {xml}");
        assert!(xml.contains("<recipient-country code=\"TN\" percentage=\"40.00\"/>"), "{xml}");
        assert!(xml.contains("<sector vocabulary=\"1\" code=\"15190\">"), "{xml}");
        assert_eq!(xml.matches("<transaction-type code=\"11\"/>").count(), 2, "one incoming commitment per commitment");
        assert_eq!(xml.matches("<transaction-type code=\"1\"/>").count(), 1, "one incoming funds per receipt");
        let month = Utc::now().date_naive().format("%Y-%m").to_string();
        let mut spent = expenditure(xml);
        spent.sort();
        let mut expected = vec![
            ("85.00".to_string(), "Cash reinsertion assistance to returnees in MA, 2023-05".to_string()),
            ("-15.00".to_string(), format!("Cash reinsertion assistance to returnees in MA, {month}")),
            ("30.00".to_string(), "In-kind reintegration assistance in TN, 2023-06".to_string()),
        ];
        expected.sort();
        assert_eq!(spent, expected, "three payments and a reversal are two sums and a netting: {xml}");
        assert!(!xml.contains("MA-IATI"), "no case id is in the file");

        let everything = server.get(&server.finance_officer, "/v1/reports/iati").await;
        assert_eq!(everything.status, 200, "{}", everything.body);
        assert_valid_iati(&everything.body, 1, "every programme's file");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A donor's file holds its own funding and spending of a programme it
    /// funds, as of the end of yesterday; bad requests are problems.
    async fn a_donors_iati_file_holds_its_own_money_and_bad_requests_are_problems(database: TestDatabase) {
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_programme(&server).await;
        server.register_donor("NO-FUNDS").await;
        let donor = server.donor_token(DONOR).await;
        let answer = server.get(&donor, &format!("/v1/reports/iati?programme={PROGRAMME}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let xml = &answer.body;
        assert_valid_iati(xml, 0, "a donor's file");
        assert_eq!(xml.matches("<transaction-type code=\"11\"/>").count(), 1, "only its own commitment: {xml}");
        assert!(!xml.contains(&format!("Donor {OTHER_DONOR}")), "another donor's name and money are not in it: {xml}");
        let mut spent = expenditure(xml);
        spent.sort();
        let mut expected = vec![
            ("70.00".to_string(), "Cash reinsertion assistance to returnees in MA, 2023-05".to_string()),
            ("30.00".to_string(), "In-kind reintegration assistance in TN, 2023-06".to_string()),
        ];
        expected.sort();
        assert_eq!(spent, expected, "{xml}");
        assert!(xml.contains("<recipient-country code=\"MA\" percentage=\"60.00\"/>"), "the programme's shares stay whole: {xml}");

        let stranger = server.donor_token("NO-FUNDS").await;
        for (token, path, status, why) in [
            (&stranger, format!("/v1/reports/iati?programme={PROGRAMME}"), 403, "a programme the donor does not fund"),
            (&donor, "/v1/reports/iati".to_string(), 403, "a donor reads one programme it funds, named"),
            (&server.auditor, "/v1/reports/iati?programme=NOPE".to_string(), 404, "an unknown programme"),
            (&server.auditor, "/v1/reports/iati?programme=motuse".to_string(), 400, "a malformed code"),
            (&server.auditor, "/v1/reports/iati?year=2025".to_string(), 400, "an unknown parameter"),
        ] {
            assert_problem(&server.get(token, &path).await, status, why);
        }
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A programme with nothing allocated (nor funded) shares its
    /// registered countries equally, and still validates.
    async fn a_programme_without_allocations_still_gives_a_valid_file(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        server.register_programme("EMPTY", "XOF", &["SN", "ML", "GN"]).await;
        let answer = server.get(&server.admin, "/v1/reports/iati?programme=EMPTY").await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        assert_valid_iati(&answer.body, 0, "a programme without allocations");
        assert!(answer.body.contains("percentage=\"33.34\""), "{}", answer.body);
        assert!(!answer.body.contains("<transaction>"), "no transaction: {}", answer.body);
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A donor may be registered with its IATI organisation identifier,
    /// which the file names; one registered without it keeps the payload
    /// (and so the hash) donors had before the field existed.
    async fn a_donors_iati_identifier_is_named_in_the_file_and_absent_from_older_payloads(database: TestDatabase) {
        let server = TestServer::start(&database).await;
        let mut body = donor_body("EU-INTPA");
        body["iati_identifier"] = "XI-IATI-EC_INTPA".into();
        server.post_created(&server.admin, "/v1/donors", &body).await;
        server.register_donor(DONOR).await;
        server.register_programme(PROGRAMME, "EUR", &["MA"]).await;
        server.commit_and_allocate(PROGRAMME, "EU-INTPA", "100.00", &[("MA", "100.00")]).await;
        server.commit_and_allocate(PROGRAMME, DONOR, "100.00", &[]).await;
        let head = server.head_seq().await;
        for bad in ["XI/IATI", "XI IATI", "A&B", "A?B", "A|B", ""] {
            let mut body = donor_body("BAD");
            body["iati_identifier"] = bad.into();
            let answer = server.post(&server.admin, "/v1/donors", &body).await;
            server.assert_refused(&answer, 400, head, bad).await;
        }
        let xml = server.get(&server.auditor, &format!("/v1/reports/iati?programme={PROGRAMME}")).await.body;
        assert_valid_iati(&xml, 0, "a file naming a donor's identifier");
        assert!(xml.contains("<participating-org role=\"1\" ref=\"XI-IATI-EC_INTPA\" type=\"40\">"), "{xml}");
        assert!(xml.contains("<provider-org ref=\"XI-IATI-EC_INTPA\">"), "{xml}");
        let events = server.all_events(100).await;
        let payload_of = |code: &str| {
            events.iter().find(|event| event["event_type"] == "donor_registered" && event["payload"].as_str().unwrap().contains(code)).unwrap()["payload"].clone()
        };
        assert_eq!(payload_of(DONOR), format!("{{\"code\":\"{DONOR}\",\"name\":\"Donor {DONOR}\",\"kind\":\"eu_instrument\"}}"));
        assert!(payload_of("EU-INTPA").as_str().unwrap().ends_with(",\"iati_identifier\":\"XI-IATI-EC_INTPA\"}"));
        let donors = server.get(&server.admin, "/v1/donors").await.json();
        let identifiers: Vec<(&Value, &Value)> =
            donors["donors"].as_array().unwrap().iter().map(|donor| (&donor["code"], &donor["iati_identifier"])).collect();
        assert_eq!(identifiers, [(&json!(DONOR), &Value::Null), (&json!("EU-INTPA"), &json!("XI-IATI-EC_INTPA"))], "GET /v1/donors names it");
        let intpa = server.donor_token("EU-INTPA").await;
        let own = server.get(&intpa, "/v1/donors").await.json();
        assert_eq!(own["donors"][0]["iati_identifier"], "XI-IATI-EC_INTPA", "a donor reads its own: {own}");
        server.stop().await;
    }
}
