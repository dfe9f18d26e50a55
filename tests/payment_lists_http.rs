//! Payment cycles over HTTP, on both backends: a list imported (CSV or
//! JSON), approved by others than its importer, released, confirmed in
//! parts and closed; every refusal of the issue with its status, its
//! message and nothing recorded; the race of two lists for the last money
//! of a line, on one server and on two servers sharing one PostgreSQL; and
//! after each scenario the chain verifies and the projections equal a
//! rebuild.

#[macro_use]
mod common;
#[allow(dead_code, reason = "the harness serves tests/api.rs as well; these tests use part of it")]
mod api_support;

use api_support::*;
use common::*;
use ledger_api::tokens::{self, Role};
use reqwest::Method;
use serde_json::{Value, json};

const MOTUSE: &str = "MOTUSE";
const AMIF: &str = "EU-AMIF";
const LIST_PATH: &str = "/v1/payment-lists?programme=MOTUSE&donor=EU-AMIF&country=MA&planned_on=2026-06-01";
const HEADER: &str = "case_id,amount,paid_amount,paid_currency,method,row_reference\n";
/// Three rows, 600.00 EUR in all.
const THREE_ROWS: &str = "case_id,amount,paid_amount,paid_currency,method,row_reference\n\
                          MA-2026-0001,300.00,3270.00,MAD,mobile_money,cycle 1/1\n\
                          MA-2026-0002,200.00,2180.00,MAD,bank_transfer,cycle 1/2\n\
                          MA-2026-0003,100.00,1090.00,MAD,cash_in_hand,\n";

/// The server with a EUR programme in Morocco and Tunisia, 1,000.00 EUR
/// allocated to the Moroccan line, and two more finance officers.
struct Cycle {
    server: TestServer,
    second_officer: String,
    third_officer: String,
}

impl Cycle {
    async fn start(database: &TestDatabase) -> Cycle {
        let server = TestServer::start(database).await;
        server.register_donor(AMIF).await;
        server.register_programme(MOTUSE, "EUR", &["MA", "TN"]).await;
        server.commit_and_allocate(MOTUSE, AMIF, "1000.00", &[("MA", "1000.00")]).await;
        let second_officer = officer(&server, "second-officer@test").await;
        let third_officer = officer(&server, "third-officer@test").await;
        Cycle { server, second_officer, third_officer }
    }

    async fn import_csv(&self, token: &str, path: &str, csv: &str) -> Answer {
        let request = self.server.request(Method::POST, path, token).header("content-type", "text/csv").body(csv.to_string());
        self.server.send(request).await
    }

    /// Imports `csv` on the Moroccan line; returns the list's id.
    async fn imported(&self, csv: &str) -> String {
        let answer = self.import_csv(&self.server.finance_officer, LIST_PATH, csv).await;
        assert_eq!(answer.status, 201, "the list is imported: {}", answer.body);
        answer.json()["id"].as_str().expect("the answer names the list").to_string()
    }

    async fn transition(&self, token: &str, id: &str, action: &str) -> Answer {
        let request = self.server.request(Method::POST, &format!("/v1/payment-lists/{id}/{action}"), token);
        self.server.send(request).await
    }

    async fn confirm(&self, id: &str, csv: &str) -> Answer {
        let request = self
            .server
            .request(Method::POST, &format!("/v1/payment-lists/{id}/confirmations"), &self.server.finance_officer)
            .header("content-type", "text/csv")
            .body(csv.to_string());
        self.server.send(request).await
    }

    async fn list(&self, id: &str) -> Value {
        let answer = self.server.get(&self.server.auditor, &format!("/v1/payment-lists/{id}")).await;
        assert_eq!(answer.status, 200, "the auditor reads the list: {}", answer.body);
        answer.json()
    }

    /// The instruction file's references, in row order.
    async fn references(&self, id: &str) -> Vec<String> {
        let answer = self.server.get(&self.server.finance_officer, &format!("/v1/payment-lists/{id}/instructions")).await;
        assert_eq!(answer.status, 200, "the instruction file: {}", answer.body);
        assert!(answer.content_type.starts_with("text/csv"), "{}", answer.content_type);
        let lines: Vec<&str> = answer.body.lines().collect();
        assert_eq!(lines[0], "reference,amount,currency,method");
        lines[1..].iter().map(|line| line.split(',').next().unwrap().to_string()).collect()
    }

    /// Imported, approved by the second officer and released.
    async fn released(&self, csv: &str) -> (String, Vec<String>) {
        let id = self.imported(csv).await;
        assert_eq!(self.transition(&self.second_officer, &id, "approvals").await.status, 201);
        assert_eq!(self.transition(&self.server.finance_officer, &id, "release").await.status, 201);
        let references = self.references(&id).await;
        (id, references)
    }

    /// The Moroccan line's figures in the programme's balance.
    async fn morocco(&self) -> Value {
        let answer = self.server.get(&self.server.auditor, &format!("/v1/programmes/{MOTUSE}/balance")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let balance = answer.json();
        let countries = balance["by_country"].as_array().expect("by_country is a list").clone();
        countries.into_iter().find(|line| line["country"] == json!("MA")).expect("the Moroccan line")
    }

    /// What the lists of the Moroccan line hold, summed over the lists the auditor reads.
    async fn held_in_morocco(&self) -> String {
        let answer = self.server.get(&self.server.auditor, &format!("/v1/payment-lists?programme={MOTUSE}")).await;
        assert_eq!(answer.status, 200, "{}", answer.body);
        let lists = answer.json()["lists"].as_array().expect("lists is a list").clone();
        let held: rust_decimal::Decimal = lists
            .iter()
            .filter(|list| list["country"] == json!("MA"))
            .map(|list| list["held"].as_str().expect("held is a decimal string").parse::<rust_decimal::Decimal>().unwrap())
            .sum();
        format!("{held:.2}")
    }

    /// The chain verifies and the projections equal a rebuild from the events.
    async fn assert_consistent(&self) {
        self.server.head_seq().await;
        let report = projections::rebuild::check(&self.server.ledger.store, |_| {}).await.expect("the check runs");
        assert!(report.difference.is_none(), "projections equal a rebuild: {:?}", report.difference);
    }
}

async fn officer(server: &TestServer, name: &str) -> String {
    tokens::create(&server.ledger.store, Role::FinanceOfficer, None, name).await.expect("a finance officer token")
}

async fn send_list(server: &TestServer, token: &str, csv: String) -> Answer {
    server.send(server.request(Method::POST, LIST_PATH, token).header("content-type", "text/csv").body(csv)).await
}

fn confirmation(rows: &[(&str, &str, &str)]) -> String {
    let mut file = String::from("reference,status,delivered_amount,delivered_on,provider_txn_id\n");
    for (index, (reference, status, amount)) in rows.iter().enumerate() {
        file.push_str(&format!("{reference},{status},{amount},2026-01-02,TXN-{index}\n"));
    }
    file
}

test_on_both_backends! {
    /// Import holds the total; an approval by another officer approves it;
    /// release gives each row a reference and the instruction file; the
    /// confirmation, in two parts, charges a delivered row, charges a partly
    /// delivered row at its rate and releases the rest, releases a failed
    /// row, and closes the list; the same part sent again records nothing.
    async fn a_whole_cycle_holds_charges_what_was_delivered_releases_the_rest_and_closes(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let answer = cycle.import_csv(&cycle.server.finance_officer, LIST_PATH, THREE_ROWS).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        let imported = answer.json();
        assert_eq!((imported["status"].clone(), imported["rows"].clone()), (json!("imported"), json!(3)));
        assert_eq!((imported["total"].clone(), imported["held"].clone()), (json!("600.00"), json!("600.00")));
        assert_eq!(imported["warnings"], json!([]));
        let id = imported["id"].as_str().unwrap().to_string();
        assert_eq!(cycle.held_in_morocco().await, "600.00", "the line holds the list's total");
        let line = cycle.morocco().await;
        assert_eq!((line["held"].clone(), line["available"].clone()), (json!("600.00"), json!("400.00")), "the balance: {line}");

        let approval = cycle.transition(&cycle.second_officer, &id, "approvals").await;
        assert_eq!(approval.status, 201, "{}", approval.body);
        assert_eq!(approval.json()["list"]["status"], json!("approved"));
        let list = cycle.list(&id).await;
        assert_eq!(list["approvals"][0]["by"], json!("second-officer@test"), "who approved is in the read model");

        let release = cycle.transition(&cycle.server.finance_officer, &id, "release").await;
        assert_eq!(release.status, 201, "{}", release.body);
        assert_eq!(release.json()["list"]["status"], json!("released"));
        let references = cycle.references(&id).await;
        assert_eq!(references.len(), 3);
        assert!(references.iter().all(|reference| reference.len() == 26), "{references:?}");
        let instructions = cycle.server.get(&cycle.server.finance_officer, &format!("/v1/payment-lists/{id}/instructions")).await;
        assert!(instructions.body.contains(",3270.00,MAD,mobile_money"), "{}", instructions.body);
        assert!(!instructions.body.contains("MA-2026"), "no case id in the instruction file");

        let first_part = confirmation(&[(&references[0], "delivered", "3270.00")]);
        let answer = cycle.confirm(&id, &first_part).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.json()["list"]["status"], json!("released"), "two rows still wait for an outcome");
        let head = cycle.server.head_seq().await;
        let again = cycle.confirm(&id, &first_part).await;
        assert_eq!(again.status, 200, "the same part again is nothing new: {}", again.body);
        assert_eq!(again.json()["events"], json!([]));
        assert_eq!(cycle.server.head_seq().await, head, "nothing recorded twice");

        let second_part = confirmation(&[(&references[1], "delivered", "1090.00"), (&references[2], "failed", "")]);
        let answer = cycle.confirm(&id, &second_part).await;
        assert_eq!(answer.status, 201, "{}", answer.body);
        assert_eq!(answer.json()["list"]["status"], json!("closed"), "every row has its outcome: {}", answer.body);
        let list = cycle.list(&id).await;
        assert_eq!((list["held"].clone(), list["delivered"].clone()), (json!("0.00"), json!("400.00")));
        assert_eq!((list["failed"].clone(), list["released_back"].clone()), (json!("100.00"), json!("200.00")));
        let outcomes = list["outcomes"].as_array().unwrap();
        assert_eq!(outcomes[1]["charged"], json!("100.00"), "half delivered, half charged: {}", outcomes[1]);
        assert_eq!(outcomes[2]["status"], json!("failed"));
        let line = cycle.morocco().await;
        assert_eq!(line["disbursed"]["cash"], json!("400.00"), "what was delivered is paid: {line}");
        assert_eq!((line["held"].clone(), line["available"].clone()), (json!("0.00"), json!("600.00")), "the balance: {line}");
        assert_eq!(cycle.held_in_morocco().await, "0.00");
        assert!(cycle.server.transcript().iter().all(|body| !body.contains("MA-2026")), "no answer names a case id");
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// The same list as JSON is imported as the CSV is; a repeat with the
    /// same Idempotency-Key answers the first answer and holds nothing more.
    async fn a_json_list_is_imported_and_an_idempotent_repeat_holds_nothing_more(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let body = json!({"rows": [
            {"case_id": "MA-2026-0001", "amount": "300.00", "paid_amount": "3270.00", "paid_currency": "MAD", "method": "mobile_money"},
            {"case_id": "MA-2026-0002", "amount": "200.00", "paid_amount": "2180.00", "paid_currency": "MAD", "method": "bank_transfer", "row_reference": "b"},
        ]});
        let first = cycle.server.post_with_key(&cycle.server.finance_officer, LIST_PATH, "list-1", &body.to_string()).await;
        assert_eq!(first.status, 201, "{}", first.body);
        let head = cycle.server.head_seq().await;
        let again = cycle.server.post_with_key(&cycle.server.finance_officer, LIST_PATH, "list-1", &body.to_string()).await;
        assert_eq!(again.status, 201, "{}", again.body);
        assert_eq!(again.json()["id"], first.json()["id"], "the first answer again");
        assert_eq!(cycle.server.head_seq().await, head);
        assert_eq!(cycle.held_in_morocco().await, "500.00");
        let mut changed = body.clone();
        changed["rows"][1]["amount"] = json!("150.00");
        let other = cycle.server.post_with_key(&cycle.server.finance_officer, LIST_PATH, "list-1", &changed.to_string()).await;
        assert_problem(&other, 409, "the same key with another body");
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// Wrong header, missing column, extra column, bad quoting, an empty
    /// file and a file that is not UTF-8 are each refused whole (422, a
    /// report of one problem) with their own reason and hold nothing; a
    /// byte order mark is fine.
    async fn a_malformed_csv_is_refused_with_its_own_reason_and_a_bom_is_fine(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let head = cycle.server.head_seq().await;
        let row = "MA-2026-0001,300.00,3270.00,MAD,mobile_money";
        for (file, reason) in [
            (format!("case,amount,paid_amount,paid_currency,method\n{row}\n"), "column 1 of the header is not one of"),
            ("case_id,amount,paid_amount,paid_currency\nMA-1,1,1,MAD\n".to_string(), "the header has no column method"),
            (format!("case_id,amount,paid_amount,paid_currency,method,colour\n{row},red\n"), "column 6 of the header"),
            (format!("case_id,amount,paid_amount,paid_currency,method\n{row}\nMA-2,1\"0,1,MAD,cash_in_hand\n"), "line 3: a quote inside a cell"),
            (format!("case_id,amount,paid_amount,paid_currency,method\n{row},extra\n"), "row 1 (line 2) has 6 cells"),
            (String::new(), "the file is empty"),
            ("case_id,amount,paid_amount,paid_currency,method\n".to_string(), "no rows"),
        ] {
            let answer = cycle.import_csv(&cycle.server.finance_officer, LIST_PATH, &file).await;
            cycle.server.assert_refused(&answer, 422, head, reason).await;
            let message = answer.json()["errors"][0]["message"].as_str().unwrap_or_default().to_string();
            assert!(message.contains(reason), "{reason}: {}", answer.body);
        }
        let not_utf8 = cycle
            .server
            .request(Method::POST, LIST_PATH, &cycle.server.finance_officer)
            .header("content-type", "text/csv")
            .body(b"case_id,amount,paid_amount,paid_currency,method\nMA-\xe9,1,1,MAD,cash_in_hand\n".to_vec());
        let answer = cycle.server.send(not_utf8).await;
        cycle.server.assert_refused(&answer, 422, head, "not UTF-8").await;
        assert_eq!(answer.json()["errors"][0]["line"], json!(2), "{}", answer.body);
        assert!(answer.body.contains("not UTF-8 text (line 2)"), "{}", answer.body);
        let xml = cycle.server.request(Method::POST, LIST_PATH, &cycle.server.finance_officer).header("content-type", "text/xml").body("<x/>");
        cycle.server.assert_refused(&cycle.server.send(xml).await, 415, head, "another media type").await;
        assert_eq!(cycle.held_in_morocco().await, "0.00", "nothing is held");
        let with_bom = format!("\u{FEFF}{THREE_ROWS}");
        assert_eq!(cycle.import_csv(&cycle.server.finance_officer, LIST_PATH, &with_bom).await.status, 201);
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// A list with row problems is refused whole (422): every problem by
    /// row, line and column, as problem+json or, asked for, as CSV; the
    /// report never names a case id; nothing is held.
    async fn a_list_with_row_problems_is_refused_whole_with_a_report_by_row(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let head = cycle.server.head_seq().await;
        let file = format!(
            "{HEADER}MA-SECRET-1,300.00,3270.00,MAD,mobile_money,\nMA-SECRET-2,0,3270.00,MAD,mobile_money,\n\
             MA-SECRET-3,1.234,10,XXX,cheque,\nma-secret-1,1.00,10,MAD,cash_in_hand,\n"
        );
        let answer = cycle.import_csv(&cycle.server.finance_officer, LIST_PATH, &file).await;
        cycle.server.assert_refused(&answer, 422, head, "a list with row problems").await;
        let report = answer.json();
        let found: Vec<(u64, u64, String)> = report["errors"]
            .as_array()
            .unwrap()
            .iter()
            .map(|problem| (problem["row"].as_u64().unwrap(), problem["line"].as_u64().unwrap(), problem["column"].as_str().unwrap().to_string()))
            .collect();
        let expected = [(2, 3, "amount"), (3, 4, "amount"), (3, 4, "paid_currency"), (3, 4, "method"), (4, 5, "case_id")];
        assert_eq!(found, expected.map(|(row, line, column)| (row, line, column.to_string())).to_vec(), "{report}");
        assert_eq!(report["errors"][4]["message"], json!("the same returnee as row 1: a list pays each returnee once"));
        let as_csv = cycle
            .server
            .request(Method::POST, LIST_PATH, &cycle.server.finance_officer)
            .header("content-type", "text/csv")
            .header("accept", "text/csv")
            .body(file.clone());
        let answer = cycle.server.send(as_csv).await;
        assert_eq!(answer.status, 422);
        assert!(answer.content_type.starts_with("text/csv"), "{}", answer.content_type);
        let lines: Vec<&str> = answer.body.lines().collect();
        assert_eq!(lines[0], "row,line,column,severity,message");
        assert_eq!(lines[1], "2,3,amount,error,must be more than zero");
        assert_eq!(lines.len(), 6);
        assert!(cycle.server.transcript().iter().all(|body| !body.to_uppercase().contains("SECRET")), "no case id is echoed");
        assert_eq!(cycle.server.head_seq().await, head);
        assert_eq!(cycle.held_in_morocco().await, "0.00");
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// An unknown programme or donor (404), a country not of the programme
    /// (422, as for every money event) is refused and nothing held;
    /// so is a list over what the line has available (422 with the report);
    /// an officer's own list may not be approved by its importer.
    async fn unknown_budget_lines_and_lists_over_the_available_money_are_refused(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let head = cycle.server.head_seq().await;
        for (path, status) in [
            ("/v1/payment-lists?programme=NOPE&donor=EU-AMIF&country=MA&planned_on=2026-06-01", 404),
            ("/v1/payment-lists?programme=MOTUSE&donor=NOPE&country=MA&planned_on=2026-06-01", 404),
            ("/v1/payment-lists?programme=MOTUSE&donor=EU-AMIF&country=SN&planned_on=2026-06-01", 422),
            ("/v1/payment-lists?programme=MOTUSE&donor=EU-AMIF&country=MA", 400),
            ("/v1/payment-lists?programme=MOTUSE&donor=EU-AMIF&country=MA&planned_on=2026-06-01&colour=red", 400),
        ] {
            let answer = cycle.import_csv(&cycle.server.finance_officer, path, THREE_ROWS).await;
            cycle.server.assert_refused(&answer, status, head, path).await;
        }
        let too_much = format!("{HEADER}MA-1,700.00,7000,MAD,cash_in_hand,\nMA-2,400.00,4000,MAD,cash_in_hand,\n");
        let answer = cycle.import_csv(&cycle.server.finance_officer, LIST_PATH, &too_much).await;
        cycle.server.assert_refused(&answer, 422, head, "a list over the available money").await;
        assert!(answer.body.contains("1000.00"), "the report names what is available: {}", answer.body);
        for token in [&cycle.server.auditor, &cycle.server.admin] {
            let answer = cycle.import_csv(token, LIST_PATH, THREE_ROWS).await;
            cycle.server.assert_refused(&answer, 403, head, "only finance officers import").await;
        }
        assert_eq!(cycle.held_in_morocco().await, "0.00");
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// Four eyes and the lifecycle: approving one's own list, approving
    /// twice, releasing before the approvals are in, confirming before
    /// release, approving a released or a cancelled list and cancelling a
    /// closed one are each refused (409) with a clear message and record
    /// nothing; cancelling releases the hold.
    async fn four_eyes_and_the_lifecycle_refuse_each_transition_out_of_turn(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let set = cycle.server.post(&cycle.server.admin, "/v1/programmes/MOTUSE/approvals-required", &json!({"approvals_required": 2})).await;
        assert_eq!(set.status, 201, "the admin sets two approvals: {}", set.body);
        let id = cycle.imported(THREE_ROWS).await;
        let head = cycle.server.head_seq().await;
        let own = cycle.transition(&cycle.server.finance_officer, &id, "approvals").await;
        cycle.server.assert_refused(&own, 409, head, "self-approval").await;
        assert!(detail(&own).contains("another finance officer must approve it"), "{}", detail(&own));
        let early = cycle.transition(&cycle.server.finance_officer, &id, "release").await;
        cycle.server.assert_refused(&early, 409, head, "release before the approvals").await;
        let before_release = cycle.confirm(&id, &confirmation(&[("0000000000000000000000000A", "failed", "")])).await;
        cycle.server.assert_refused(&before_release, 409, head, "confirming before release").await;
        assert_eq!(cycle.transition(&cycle.second_officer, &id, "approvals").await.status, 201);
        let head = cycle.server.head_seq().await;
        let twice = cycle.transition(&cycle.second_officer, &id, "approvals").await;
        cycle.server.assert_refused(&twice, 409, head, "a second approval by the same person").await;
        assert!(detail(&twice).contains("already approved by second-officer@test"), "{}", detail(&twice));
        let early = cycle.transition(&cycle.server.finance_officer, &id, "release").await;
        cycle.server.assert_refused(&early, 409, head, "release with one of two approvals").await;
        assert_eq!(cycle.transition(&cycle.third_officer, &id, "approvals").await.status, 201);
        assert_eq!(cycle.transition(&cycle.server.finance_officer, &id, "release").await.status, 201);
        let head = cycle.server.head_seq().await;
        let after_release = cycle.transition(&cycle.third_officer, &id, "approvals").await;
        cycle.server.assert_refused(&after_release, 409, head, "approving a released list").await;

        let references = cycle.references(&id).await;
        let rows: Vec<(&str, &str, &str)> = references.iter().map(|reference| (reference.as_str(), "failed", "")).collect();
        assert_eq!(cycle.confirm(&id, &confirmation(&rows)).await.status, 201);
        assert_eq!(cycle.list(&id).await["status"], json!("closed"));
        let head = cycle.server.head_seq().await;
        let closed = cycle.transition(&cycle.server.finance_officer, &id, "cancel").await;
        cycle.server.assert_refused(&closed, 409, head, "cancelling a closed list").await;

        let second = cycle.imported(&format!("{HEADER}MA-2026-0009,400.00,4360.00,MAD,cash_in_hand,\n")).await;
        assert_eq!(cycle.held_in_morocco().await, "400.00");
        let cancel = cycle.server.post(&cycle.server.finance_officer, &format!("/v1/payment-lists/{second}/cancel"), &json!({"reason": "wrong cycle"})).await;
        assert_eq!(cancel.status, 201, "{}", cancel.body);
        assert_eq!(cancel.json()["list"]["status"], json!("cancelled"));
        assert_eq!(cycle.held_in_morocco().await, "0.00", "cancelling releases the hold");
        let head = cycle.server.head_seq().await;
        let approve_cancelled = cycle.transition(&cycle.second_officer, &second, "approvals").await;
        cycle.server.assert_refused(&approve_cancelled, 409, head, "approving a cancelled list").await;
        let unknown = cycle.transition(&cycle.second_officer, "0190a0e0-0000-7000-8000-000000000000", "approvals").await;
        cycle.server.assert_refused(&unknown, 404, head, "an unknown list").await;
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// Two lists, each for 600.00 of the line's 1,000.00, sent at once to
    /// one server and then to two servers on one database: one is held,
    /// the other refused with the report, never both.
    async fn two_lists_racing_for_the_last_money_of_a_line_never_over_hold(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        let beside = TestServer::start_beside(&database, &cycle.server).await;
        let list = |case: &str| format!("{HEADER}{case},600.00,6540.00,MAD,cash_in_hand,\n");
        let (first, second) = tokio::join!(send_list(&cycle.server, &cycle.server.finance_officer, list("MA-A1")), send_list(&cycle.server, &cycle.server.finance_officer, list("MA-B1")));
        let mut statuses = [first.status, second.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 422], "one server: {} / {}", first.body, second.body);
        assert_eq!(cycle.held_in_morocco().await, "600.00");
        let lists = cycle.server.get(&cycle.server.auditor, "/v1/payment-lists?programme=MOTUSE").await.json();
        let id = lists["lists"][0]["id"].as_str().unwrap().to_string();
        assert_eq!(cycle.transition(&cycle.server.finance_officer, &id, "cancel").await.status, 201);

        let (first, second) = tokio::join!(send_list(&cycle.server, &cycle.server.finance_officer, list("MA-C1")), send_list(&beside, &cycle.server.finance_officer, list("MA-D1")));
        let mut statuses = [first.status, second.status];
        statuses.sort_unstable();
        assert_eq!(statuses, [201, 422], "two servers: {} / {}", first.body, second.body);
        assert_eq!(cycle.held_in_morocco().await, "600.00", "never over-held");
        let imported = cycle.server.get(&cycle.server.auditor, "/v1/payment-lists?status=imported").await.json();
        assert_eq!(imported["lists"].as_array().unwrap().len(), 1, "{imported}");
        beside.stop().await;
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}

test_on_both_backends! {
    /// Reads on each role's scope: the auditor and the admin read every
    /// list with its rows; a donor reads the totals of its own lists only,
    /// no approvals, names or rows; another donor's list is unknown to it.
    /// Confirmation files with an unknown reference, or a row confirmed
    /// again with another outcome, are refused whole with the report.
    async fn reads_keep_to_each_roles_scope_and_bad_confirmation_files_record_nothing(database: TestDatabase) {
        let cycle = Cycle::start(&database).await;
        cycle.server.register_donor("BMZ").await;
        let (id, references) = cycle.released(THREE_ROWS).await;
        let donor = cycle.server.donor_token(AMIF).await;
        let other_donor = cycle.server.donor_token("BMZ").await;
        // Donors see a list once the day of its latest change has closed
        // (UTC), as every other donor figure: today it is not there yet.
        let today = cycle.server.get(&donor, &format!("/v1/payment-lists/{id}")).await;
        assert_problem(&today, 422, "a list that changed today, for a donor");
        assert_eq!(cycle.server.get(&donor, "/v1/payment-lists").await.json()["lists"], json!([]));
        let tomorrow = TestServer::start_beside_days_ahead(&database, &cycle.server, 1).await;
        let seen = tomorrow.get(&donor, &format!("/v1/payment-lists/{id}")).await;
        assert_eq!(seen.status, 200, "{}", seen.body);
        let seen = seen.json();
        assert_eq!(seen["total"], json!("600.00"));
        for hidden in ["approvals", "outcomes", "imported_by"] {
            assert!(seen.get(hidden).is_none(), "a donor sees totals only: {seen}");
        }
        let listed = tomorrow.get(&donor, "/v1/payment-lists").await.json();
        assert_eq!(listed["lists"].as_array().map(Vec::len), Some(1), "the donor lists its list the next day: {listed}");
        tomorrow.stop().await;
        assert_problem(&cycle.server.get(&other_donor, &format!("/v1/payment-lists/{id}")).await, 404, "another donor's list");
        let listed = cycle.server.get(&other_donor, "/v1/payment-lists").await.json();
        assert_eq!(listed["lists"], json!([]), "another donor lists none");
        assert_problem(&cycle.server.get(&donor, &format!("/v1/payment-lists/{id}/instructions")).await, 403, "donors get no instruction file");
        assert_problem(&cycle.server.get(&cycle.server.auditor, "/v1/payment-lists?status=open").await, 400, "an unknown status");
        let admin = cycle.server.get(&cycle.server.admin, &format!("/v1/payment-lists/{id}")).await.json();
        assert_eq!(admin["outcomes"].as_array().unwrap().len(), 3);

        let head = cycle.server.head_seq().await;
        let unknown = confirmation(&[(&references[0], "delivered", "3270.00"), ("7ZZZZZZZZZZZZZZZZZZZZZZZZZ", "failed", "")]);
        let answer = cycle.confirm(&id, &unknown).await;
        cycle.server.assert_refused(&answer, 422, head, "a reference unknown to the list").await;
        assert_eq!(answer.json()["errors"][0]["row"], json!(2), "{}", answer.body);
        assert_eq!(cycle.confirm(&id, &confirmation(&[(&references[0], "delivered", "3270.00")])).await.status, 201);
        let head = cycle.server.head_seq().await;
        let changed = cycle.confirm(&id, &confirmation(&[(&references[0], "failed", "")])).await;
        cycle.server.assert_refused(&changed, 422, head, "a row confirmed again with another outcome").await;
        let malformed = cycle.confirm(&id, "reference,status\nx,y\n").await;
        cycle.server.assert_refused(&malformed, 422, head, "a confirmation file without its columns").await;
        let bad_rows = cycle.confirm(&id, &confirmation(&[(&references[1], "sent", "1")])).await;
        cycle.server.assert_refused(&bad_rows, 422, head, "a row of unknown status").await;
        cycle.assert_consistent().await;
        cycle.server.stop().await;
    }
}
