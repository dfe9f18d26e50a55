//! Reports: financial statements (CSV, XLSX, JSON) whose figures are the
//! balance endpoints' as of the period's ends, donors kept to closed days
//! and their own funding, and bad input refused whole with a problem.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use std::io::Read;

use api_support::*;
use chrono::{Days, Utc};
use serde_json::Value;

const PROGRAMME: &str = "MOTUSE";
const DONOR: &str = "EU-AMIF";
const OTHER_DONOR: &str = "DK-MFA";
const XLSX: &str = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet";

/// Today (UTC) as the test's own clock reads it; the server's is a day ahead.
fn today() -> String {
    Utc::now().date_naive().to_string()
}

fn tomorrow() -> String {
    (Utc::now().date_naive() + Days::new(1)).to_string()
}

/// Funding, allocations, a reallocation, payments in cash and in kind and
/// a reversal, for two donors of one programme. Returns nothing: the tests
/// read the figures back from the balance endpoints.
async fn funded_programme(server: &TestServer) {
    server.register_donor(DONOR).await;
    server.register_donor(OTHER_DONOR).await;
    server.register_programme(PROGRAMME, "EUR", &["MA", "TN"]).await;
    server.commit_and_allocate(PROGRAMME, DONOR, "1000.00", &[("MA", "500.00"), ("TN", "300.00")]).await;
    server.commit_and_allocate(PROGRAMME, OTHER_DONOR, "200.00", &[("MA", "200.00")]).await;
    let officer = server.finance_officer.as_str();
    server.post_created(officer, "/v1/receipts", &receipt_body(PROGRAMME, DONOR, "600.00")).await;
    server.post_created(officer, "/v1/reallocations", &reallocation_body(PROGRAMME, DONOR, ("MA", "TN"), "100.00")).await;
    let paid = cash_body((PROGRAMME, DONOR, "MA"), "MA-STATEMENT-1", "50.00", ("540.00", "MAD"));
    let reversed = server.post_created(officer, "/v1/payments/cash", &paid).await;
    server.post_created(officer, "/v1/reversals", &reversal_body(reversed)).await;
    let paid = cash_body((PROGRAMME, DONOR, "MA"), "MA-STATEMENT-2", "20.00", ("216.00", "MAD"));
    server.post_created(officer, "/v1/payments/cash", &paid).await;
    let grant = in_kind_individual_body((PROGRAMME, DONOR, "TN"), "TN-STATEMENT-3", "30.00");
    server.post_created(officer, "/v1/grants/in-kind", &grant).await;
    let other = cash_body((PROGRAMME, OTHER_DONOR, "MA"), "MA-STATEMENT-4", "15.00", ("162.00", "MAD"));
    server.post_created(officer, "/v1/payments/cash", &other).await;
}

async fn statement_json(server: &TestServer, token: &str, query: &str) -> Value {
    let request = server.request(reqwest::Method::GET, &format!("/v1/reports/statement?{query}"), token);
    let answer = server.send(request.header("accept", "application/json")).await;
    assert_eq!(answer.status, 200, "{query}: {}", answer.body);
    answer.json()
}

/// The donor's figures in the programme's balance as of `day`.
async fn balance_of_donor(server: &TestServer, day: &str) -> Value {
    let answer = server.get(&server.auditor, &format!("/v1/programmes/{PROGRAMME}/balance?as_of={day}")).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    let balance = answer.json();
    let by_donor = balance["by_donor"].as_array().expect("by_donor is a list");
    let mut figures = by_donor.iter().find(|figures| figures["donor"] == DONOR).expect("the donor has figures").clone();
    figures.as_object_mut().expect("figures are an object").remove("donor");
    figures
}

test_on_both_backends! {
    /// The closing position is the balance as of `to`, the opening the
    /// balance as of the day before `from`, and the period's movements are
    /// what was recorded in it, reversals apart and negative.
    async fn a_statements_figures_are_the_balances_as_of_the_periods_ends(database: TestDatabase) {
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_programme(&server).await;
        let (today, tomorrow) = (today(), tomorrow());
        let officer = server.finance_officer.clone();

        let statement = statement_json(&server, &officer, &format!("programme={PROGRAMME}&donor={DONOR}&from={today}&to={today}")).await;
        assert_eq!(statement["closing"], balance_of_donor(&server, &today).await, "closing is the balance as of to");
        assert_eq!(statement["opening"]["committed"], "0.00", "nothing was recorded before today");
        assert_eq!(statement["opening"]["disbursed"]["total"], "0.00");
        let movements = &statement["movements"];
        for (figure, amount) in [
            ("commitments", "1000.00"),
            ("receipts", "600.00"),
            ("allocations", "800.00"),
            ("disbursed cash", "70.00"),
            ("disbursed in kind", "30.00"),
            ("disbursed cash reversed", "-50.00"),
            ("commitments reversed", "0.00"),
        ] {
            assert_eq!(movements[figure], amount, "{figure}: {statement}");
        }
        assert_eq!(statement["closing"]["disbursed"]["cash"], "20.00", "the other donor's payment is not in this donor's statement");
        let by_country = statement["by_country"].as_array().expect("by_country is a list");
        let country = |code: &str| by_country.iter().find(|line| line["country"] == code).expect("the country has a line")["figures"].clone();
        assert_eq!(country("MA")["reallocations"], "-100.00");
        assert_eq!(country("TN")["reallocations"], "100.00");
        assert_eq!(country("MA")["closing allocated"], "400.00");
        assert_eq!(country("MA")["disbursed cash reversed"], "-50.00");
        assert_eq!(country("MA")["closing available"], "380.00");
        assert_eq!(country("TN")["closing disbursed in kind"], "30.00");
        let live = server.get(&officer, "/v1/countries/MA/balance").await.json();
        let line = &live["programmes"][0]["by_donor"].as_array().expect("by_donor").iter().find(|line| line["donor"] == DONOR).expect("the donor's line").clone();
        assert_eq!(country("MA")["closing allocated"], line["allocated"], "a country's closing is its budget line");
        assert_eq!(country("MA")["closing available"], line["available"]);

        // A period that starts after everything was recorded opens where the first closed.
        let later = statement_json(&server, &officer, &format!("programme={PROGRAMME}&donor={DONOR}&from={tomorrow}&to={tomorrow}")).await;
        assert_eq!(later["opening"], balance_of_donor(&server, &today).await, "opening is the balance as of the day before from");
        assert_eq!(later["closing"], balance_of_donor(&server, &tomorrow).await);
        assert_eq!(later["movements"]["commitments"], "0.00");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// The CSV holds every figure as a row and the XLSX workbook holds two
    /// sheets with amounts as numbers in the currency's decimals.
    async fn a_statement_is_a_csv_table_and_an_xlsx_workbook_with_numbers(database: TestDatabase) {
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_programme(&server).await;
        let path = format!("/v1/reports/statement?programme={PROGRAMME}&donor={DONOR}&from={}&to={}", today(), today());
        let csv = server.get(&server.auditor, &path).await;
        assert_eq!(csv.status, 200, "{}", csv.body);
        assert!(csv.content_type.starts_with("text/csv"), "{}", csv.content_type);
        let rows: Vec<Vec<&str>> = csv.body.lines().map(|line| line.split(',').collect()).collect();
        assert_eq!(rows[0], ["programme", "donor", "currency", "from", "to", "country", "figure", "amount"]);
        let value = |country: &str, figure: &str| {
            rows.iter().find(|row| row[5] == country && row[6] == figure).unwrap_or_else(|| panic!("{country} {figure}"))[7]
        };
        assert_eq!(value("", "closing committed"), "1000.00");
        assert_eq!(value("", "closing cash position"), "550.00");
        assert_eq!(value("TN", "closing allocated"), "400.00");

        let response = server.request(reqwest::Method::GET, &path, &server.auditor).header("accept", XLSX).send().await.expect("an answer");
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["content-type"], XLSX);
        let bytes = response.bytes().await.expect("the workbook").to_vec();
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("an XLSX workbook is a zip archive");
        let mut part = |name: &str| {
            let mut text = String::new();
            archive.by_name(name).unwrap_or_else(|_| panic!("{name} is in the workbook")).read_to_string(&mut text).expect("XML text");
            text
        };
        let workbook = part("xl/workbook.xml");
        assert!(workbook.contains("name=\"Summary\"") && workbook.contains("name=\"By country\""), "{workbook}");
        let summary = part("xl/worksheets/sheet1.xml");
        assert!(summary.contains("<v>1000</v>"), "the closing commitment is a number: {summary}");
        assert!(part("xl/worksheets/sheet2.xml").contains("<v>400</v>"), "the country's allocation is a number");
        assert!(part("xl/styles.xml").contains("#,##0.00"), "amounts are shown with the currency's two decimals");
        server.stop().await;
    }
}

test_on_both_backends! {
    /// A donor reads only its own statement, of a programme it funds, up to
    /// yesterday; bad input is a problem and never a file.
    async fn a_bad_or_out_of_scope_statement_request_is_a_problem_and_never_a_file(database: TestDatabase) {
        let server = TestServer::start_days_ahead(&database, 1).await;
        funded_programme(&server).await;
        server.register_donor("NO-FUNDS").await;
        let donor = server.donor_token(DONOR).await;
        let stranger = server.donor_token("NO-FUNDS").await;
        let (today, tomorrow) = (today(), tomorrow());
        let own = format!("programme={PROGRAMME}&donor={DONOR}&from={today}&to={today}");
        let statement = statement_json(&server, &donor, &own).await;
        assert_eq!(statement["closing"]["committed"], "1000.00", "a donor reads its statement up to yesterday");
        let officer = server.finance_officer.clone();
        for (token, query, status, why) in [
            (&donor, format!("programme={PROGRAMME}&donor={DONOR}&from={today}&to={tomorrow}"), 422, "a donor's to is at most yesterday"),
            (&donor, format!("programme={PROGRAMME}&donor={OTHER_DONOR}&from={today}&to={today}"), 403, "another donor's statement"),
            (&stranger, format!("programme={PROGRAMME}&donor=NO-FUNDS&from={today}&to={today}"), 403, "a programme the donor does not fund"),
            (&officer, format!("programme={PROGRAMME}&donor={DONOR}&from={tomorrow}&to={today}"), 422, "from after to"),
            (&officer, format!("programme={PROGRAMME}&donor={DONOR}&from=2025-13-01&to={today}"), 400, "a malformed date"),
            (&officer, format!("programme={PROGRAMME}&donor={DONOR}&from=2025-1-01&to={today}"), 400, "a date not written YYYY-MM-DD"),
            (&officer, format!("programme={PROGRAMME}&donor={DONOR}&from={today}"), 400, "no to"),
            (&officer, format!("programme=NOPE&donor={DONOR}&from={today}&to={today}"), 404, "an unknown programme"),
            (&officer, format!("programme={PROGRAMME}&donor=NOPE&from={today}&to={today}"), 404, "an unknown donor"),
            (&officer, format!("programme={PROGRAMME}&donor=NO-FUNDS&from={today}&to={today}"), 404, "a donor that does not fund it"),
            (&officer, format!("programme={PROGRAMME}&donor={DONOR}&from={today}&to=2099-12-31"), 422, "a day not yet reached"),
        ] {
            let answer = server.get(token, &format!("/v1/reports/statement?{query}")).await;
            assert_problem(&answer, status, why);
        }
        let unacceptable = server.request(reqwest::Method::GET, &format!("/v1/reports/statement?{own}"), &officer).header("accept", "application/xml");
        assert_problem(&server.send(unacceptable).await, 406, "a format the statement is not written in");
        server.stop().await;
    }
}
