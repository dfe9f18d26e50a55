//! A payment cycle with the real `ledger` binary, on SQLite and on
//! PostgreSQL: the example list imported with `ledger payments import`,
//! approved and released through `ledger serve`, the server killed
//! (SIGKILL) between release and confirmation and again after it; after
//! each restart nothing is lost and nothing is paid twice, and `verify` and
//! `rebuild --check` exit 0.

#[macro_use]
mod audit_support;

use std::process::{Child, Stdio};
use std::time::Duration;

use audit_support::*;
use serde_json::Value;

const KEYS: Keys = Keys::Environment;
/// How long a started server may take to answer /healthz, in 50 ms steps.
const START_STEPS_MAX: u32 = 400;

fn example(name: &str) -> String {
    format!("{}/../../examples/{name}", env!("CARGO_MANIFEST_DIR"))
}

fn token(database: &TestDatabase, role: &str, name: &str) -> String {
    let output = run_ledger(database, KEYS, &["token", "create", "--role", role, "--name", name]);
    assert_exit(&output, 0, "token create");
    stdout(&output).trim().to_string()
}

/// `ledger serve` on a free port, answering.
struct Server {
    child: Child,
    base_url: String,
}

impl Server {
    async fn start(database: &TestDatabase) -> Server {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let bind = format!("127.0.0.1:{port}");
        let child = ledger_command(&database.directory, Some(&database.url), KEYS, &["serve", "--bind", &bind])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("ledger serve starts");
        let server = Server { child, base_url: format!("http://{bind}") };
        for _ in 0..START_STEPS_MAX {
            if reqwest::get(format!("{}/healthz", server.base_url)).await.is_ok_and(|answer| answer.status().is_success()) {
                return server;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("ledger serve did not answer");
    }

    /// SIGKILL: no drain, no goodbye.
    fn kill(self) {
        drop(self);
    }

    async fn send(&self, request: reqwest::RequestBuilder) -> (u16, String) {
        let answer = request.send().await.expect("the server answers");
        let status = answer.status().as_u16();
        (status, answer.text().await.expect("a body"))
    }

    async fn post(&self, token: &str, path: &str, body: Option<&str>) -> (u16, String) {
        let mut request = reqwest::Client::new().post(format!("{}{path}", self.base_url)).bearer_auth(token);
        if let Some(body) = body {
            request = request.header("content-type", "text/csv").body(body.to_string());
        }
        self.send(request).await
    }

    async fn get(&self, token: &str, path: &str) -> (u16, String) {
        self.send(reqwest::Client::new().get(format!("{}{path}", self.base_url)).bearer_auth(token)).await
    }

    async fn cash_paid_in_morocco(&self, token: &str) -> String {
        let (status, body) = self.get(token, "/v1/programmes/MOTUSE/balance").await;
        assert_eq!(status, 200, "{body}");
        let balance: Value = serde_json::from_str(&body).unwrap();
        let line = balance["by_country"].as_array().unwrap().iter().find(|line| line["country"] == "MA").unwrap().clone();
        line["disbursed"]["cash"].as_str().unwrap().to_string()
    }
}

impl Drop for Server {
    /// Kills the server (SIGKILL) and reaps it, also when a test fails.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The example confirmation file with the references of the instruction file, in row order.
fn confirmation_for(instructions: &str) -> String {
    let references: Vec<&str> = instructions.lines().skip(1).map(|line| line.split(',').next().unwrap()).collect();
    let example = std::fs::read_to_string(example("confirmation.csv")).unwrap();
    let mut lines = example.lines();
    let mut file = format!("{}\n", lines.next().unwrap());
    for (line, reference) in lines.zip(&references) {
        let (_, rest) = line.split_once(',').unwrap();
        file.push_str(&format!("{reference},{rest}\n"));
    }
    file
}

test_on_both_backends! {
    async fn a_server_killed_between_release_and_confirmation_loses_nothing_and_pays_nothing_twice(database: TestDatabase) {
        assert_exit(&run_ledger(&database, KEYS, &["demo"]), 0, "ledger demo");
        let importer = token(&database, "finance_officer", "importer");
        let approver = token(&database, "finance_officer", "approver");
        let auditor = token(&database, "auditor", "auditor");
        let today = chrono::Utc::now().date_naive().to_string();
        let arguments = ["payments", "import", &example("payment-list.csv"), "--programme", "MOTUSE", "--donor", "EU-AMIF", "--country", "MA", "--planned-on", &today];
        let refused = ledger_command(&database.directory, Some(&database.url), KEYS, &arguments).env("LEDGER_TOKEN", &auditor).output().unwrap();
        assert_exit(&refused, 2, "an auditor's token imports nothing");
        let imported = ledger_command(&database.directory, Some(&database.url), KEYS, &arguments).env("LEDGER_TOKEN", &importer).output().unwrap();
        assert_exit(&imported, 0, "ledger payments import");
        let said = stdout(&imported);
        assert!(said.contains("5 rows, 1600.00 EUR held"), "{said}");
        let id = said.split_whitespace().nth(2).unwrap().to_string();
        let bad = database.path("bad.csv");
        std::fs::write(&bad, "case_id,amount,paid_amount,paid_currency,method\nMA-1,0,1,MAD,cash_in_hand\n").unwrap();
        let bad = bad.display().to_string();
        let mut bad_arguments = arguments;
        bad_arguments[2] = &bad;
        let report = ledger_command(&database.directory, Some(&database.url), KEYS, &bad_arguments).env("LEDGER_TOKEN", &importer).output().unwrap();
        assert_exit(&report, 1, "a list with a bad row");
        assert_eq!(stdout(&report), "row,line,column,severity,message\n1,2,amount,error,must be more than zero\n");

        let server = Server::start(&database).await;
        let paid_before = server.cash_paid_in_morocco(&auditor).await;
        assert_eq!(server.post(&approver, &format!("/v1/payment-lists/{id}/approvals"), None).await.0, 201);
        assert_eq!(server.post(&importer, &format!("/v1/payment-lists/{id}/release"), None).await.0, 201);
        let (status, instructions) = server.get(&importer, &format!("/v1/payment-lists/{id}/instructions")).await;
        assert_eq!(status, 200, "{instructions}");
        server.kill();

        let server = Server::start(&database).await;
        let (_, after_restart) = server.get(&importer, &format!("/v1/payment-lists/{id}/instructions")).await;
        assert_eq!(after_restart, instructions, "the release and its references survive the kill");
        let confirmation = confirmation_for(&instructions);
        let (status, body) = server.post(&importer, &format!("/v1/payment-lists/{id}/confirmations"), Some(&confirmation)).await;
        assert_eq!(status, 201, "{body}");
        let paid = server.cash_paid_in_morocco(&auditor).await;
        assert_ne!(paid, paid_before, "delivered rows are paid");
        server.kill();

        let server = Server::start(&database).await;
        let (status, body) = server.post(&importer, &format!("/v1/payment-lists/{id}/confirmations"), Some(&confirmation)).await;
        assert_eq!(status, 200, "the same file after a restart records nothing: {body}");
        assert_eq!(server.cash_paid_in_morocco(&auditor).await, paid, "nothing is paid twice");
        let (_, list) = server.get(&auditor, &format!("/v1/payment-lists/{id}")).await;
        let list: Value = serde_json::from_str(&list).unwrap();
        assert_eq!(list["status"], "closed", "{list}");
        assert_eq!(list["delivered"], "1150.00", "three whole rows and 1090.00 of 2725.00 MAD (100.00 of 250.00 EUR): {list}");
        server.kill();

        assert_exit(&run_ledger(&database, KEYS, &["verify"]), 0, "verify after the cycle");
        assert_exit(&run_ledger(&database, KEYS, &["rebuild", "--check"]), 0, "rebuild --check after the cycle");
    }
}
