//! The command line end to end, with the real `ledger` binary, on SQLite and
//! on PostgreSQL: `demo`, `verify` and `rebuild --check` on a fresh database,
//! then the exit codes and messages after an attacker with database rights
//! changed what is stored.

#[macro_use]
mod audit_support;

use audit_support::*;
use ledger_core::store::Store;
use sqlx::Row;

/// A seq in the middle of the demo's history.
const TAMPERED_SEQ: i64 = 20;

/// The embedded database keeps its keys in the key file beside it; the
/// PostgreSQL runs take the fixed test keys from the environment.
fn keys_of(database: &TestDatabase) -> Keys {
    if database.is_postgres() { Keys::Environment } else { Keys::KeyFile }
}

async fn stored_text(store: &Store, column: &str) -> String {
    let sql = format!("SELECT {column} FROM events WHERE seq = $1");
    sqlx::query(&sql).bind(TAMPERED_SEQ).fetch_one(store.pool()).await.expect("the event exists").get(0)
}

async fn store_text(store: &Store, column: &str, value: &str) {
    let sql = format!("UPDATE events SET {column} = $1 WHERE seq = $2");
    let result = sqlx::query(&sql).bind(value).bind(TAMPERED_SEQ).execute(store.pool()).await.expect("the attacker may update");
    assert_eq!(result.rows_affected(), 1);
}

/// The text with one byte changed: the first digit moved on by one, or else
/// the first letter swapped for another.
fn one_byte_changed(text: &str) -> String {
    let mut bytes = text.as_bytes().to_vec();
    let index = bytes.iter().position(u8::is_ascii_digit).or_else(|| bytes.iter().position(u8::is_ascii_alphabetic));
    let index = index.expect("the text holds a digit or a letter");
    bytes[index] = match bytes[index] {
        digit @ b'0'..=b'9' => b'0' + (digit - b'0' + 1) % 10,
        b'a' => b'b',
        _ => b'a',
    };
    String::from_utf8(bytes).expect("still UTF-8")
}

test_on_both_backends! {
    /// `ledger demo`, then `verify` and `rebuild --check` exit 0. A changed
    /// projection figure makes `rebuild --check` exit 1 naming it, and
    /// `rebuild` repairs it. One changed byte in any stored field of an
    /// event makes `verify` exit 1 naming that seq, and `rebuild` refuses to
    /// rebuild from such a chain.
    async fn verify_and_rebuild_check_exit_0_on_the_demo_and_1_after_tampering(database: TestDatabase) {
        let keys = keys_of(&database);
        assert_exit(&run_ledger(&database, keys, &["demo"]), 0, "ledger demo");
        let verified = run_ledger(&database, keys, &["verify"]);
        assert_exit(&verified, 0, "ledger verify after the demo");
        assert!(stdout(&verified).starts_with("chain valid: 51 events, head hash "), "{}", stdout(&verified));
        let checked = run_ledger(&database, keys, &["rebuild", "--check"]);
        assert_exit(&checked, 0, "ledger rebuild --check after the demo");
        assert!(stdout(&checked).contains("projections match a rebuild from 51 events"), "{}", stdout(&checked));

        let store = Store::connect(&database.url).await.expect("the database opens");
        let changed = sqlx::query("UPDATE budget_lines SET allocated = allocated + 1 WHERE programme = 'MOTUSE' AND country = 'MA'")
            .execute(store.pool())
            .await
            .unwrap();
        assert!(changed.rows_affected() >= 1);
        let differs = run_ledger(&database, keys, &["rebuild", "--check"]);
        assert_exit(&differs, 1, "rebuild --check after a projection figure changed");
        let text = stdout(&differs);
        assert!(text.contains("projections DIFFER") && text.contains("budget_lines MOTUSE/") && text.contains("allocated"), "{text}");
        assert_exit(&run_ledger(&database, keys, &["rebuild"]), 0, "ledger rebuild");
        assert_exit(&run_ledger(&database, keys, &["rebuild", "--check"]), 0, "rebuild --check after the rebuild");

        drop_event_triggers(&store, &database).await;
        for column in ["payload", "actor", "recorded_at", "event_type", "id", "prev_hash", "hash", "tag", "key_id"] {
            let original = stored_text(&store, column).await;
            store_text(&store, column, &one_byte_changed(&original)).await;
            let tampered = run_ledger(&database, keys, &["verify"]);
            assert_exit(&tampered, 1, &format!("ledger verify after one byte of {column} changed"));
            let text = stdout(&tampered);
            assert!(text.starts_with(&format!("chain INVALID at seq {TAMPERED_SEQ}: ")), "a changed {column}: {text}");
            if column == "payload" {
                let refused = run_ledger(&database, keys, &["rebuild"]);
                assert_ne!(refused.status.code(), Some(0), "no rebuild from a broken chain");
                let mut connection = store.pool().acquire().await.unwrap();
                let indexes = projections::db::secondary_indexes(&mut connection).await.unwrap();
                assert!(indexes.iter().any(|index| index.name == "assistance_by_beneficiary"), "a refused rebuild drops no index");
                let assistance: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM assistance").fetch_one(&mut *connection).await.unwrap();
                assert!(assistance > 0, "a refused rebuild leaves the projections as they were");
            }
            store_text(&store, column, &original).await;
        }
        assert_exit(&run_ledger(&database, keys, &["verify"]), 0, "ledger verify once every byte is back");
        store.pool().close().await;
    }
}

/// A `ledger serve` process on the test's database, killed when dropped.
struct ServeProcess {
    child: std::process::Child,
    base_url: String,
}

impl ServeProcess {
    fn start(database: &TestDatabase, keys: Keys) -> ServeProcess {
        use std::io::BufRead;
        let mut command = ledger_command(&database.directory, Some(&database.url), keys, &["serve", "--bind", "127.0.0.1:0"]);
        command.stdout(std::process::Stdio::piped());
        let mut child = command.spawn().expect("ledger serve starts");
        let mut first_line = String::new();
        std::io::BufReader::new(child.stdout.take().expect("stdout is piped")).read_line(&mut first_line).unwrap();
        let base_url =
            first_line.trim().strip_prefix("ledger listening on ").unwrap_or_else(|| panic!("{first_line}")).to_string();
        ServeProcess { child, base_url }
    }
}

impl Drop for ServeProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post(client: &reqwest::Client, url: String, token: &str, body: serde_json::Value) -> (u16, serde_json::Value) {
    let answer = client.post(url).bearer_auth(token).json(&body).send().await.expect("the server answers");
    let status = answer.status().as_u16();
    (status, answer.json().await.unwrap_or(serde_json::Value::Null))
}

test_on_both_backends! {
    /// Two `ledger serve` processes on one database, paying from one budget
    /// line at the same time, never overspend it and keep one valid chain.
    async fn two_serve_processes_on_one_database_never_overspend_a_budget_line(database: TestDatabase) {
        let keys = keys_of(&database);
        assert_exit(&run_ledger(&database, keys, &["migrate"]), 0, "ledger migrate");
        let token = |role: &str, name: &str| {
            let created = run_ledger(&database, keys, &["token", "create", "--role", role, "--name", name]);
            assert_exit(&created, 0, "ledger token create");
            stdout(&created).trim().to_string()
        };
        let (admin, officer) = (token("admin", "admin"), token("finance_officer", "officer"));
        let servers = [ServeProcess::start(&database, keys), ServeProcess::start(&database, keys)];
        let client = reqwest::Client::new();
        let setup = [
            (&admin, "/v1/donors", serde_json::json!({"code": "EU-RACE", "name": "Race fund", "kind": "eu_instrument"})),
            (&admin, "/v1/programmes", serde_json::json!({"code": "RACE", "name": "Race", "currency": "EUR", "countries": ["MA"],
                "implementer": "IOM", "starts_on": "2026-01-01", "ends_on": "2026-12-31"})),
            (&officer, "/v1/commitments", serde_json::json!({"programme": "RACE", "donor": "EU-RACE", "amount": "1000.00",
                "reference": "R-1", "committed_on": "2026-01-02"})),
            (&officer, "/v1/allocations", serde_json::json!({"programme": "RACE", "donor": "EU-RACE", "country": "MA", "amount": "1000.00"})),
        ];
        for (index, (token, path, body)) in setup.into_iter().enumerate() {
            let url = format!("{}{path}", servers[index % 2].base_url);
            let (status, answer) = post(&client, url, token, body).await;
            assert_eq!(status, 201, "{path}: {answer}");
        }

        // Forty payments of 50.00 against 1000.00, half through each server.
        let payments = (0..40).map(|index| {
            let url = format!("{}/v1/payments/cash", servers[index % 2].base_url);
            let body = serde_json::json!({"programme": "RACE", "donor": "EU-RACE", "country": "MA", "case_id": format!("MA-RACE-{index}"),
                "amount": "50.00", "paid_amount": "50.00", "paid_currency": "EUR", "method": "cash_in_hand", "paid_on": "2026-02-01"});
            post(&client, url, &officer, body)
        });
        let answers = futures_util::future::join_all(payments).await;
        let paid = answers.iter().filter(|(status, _)| *status == 201).count();
        let refused = answers.iter().filter(|(status, _)| *status == 422).count();
        let statuses: Vec<u16> = answers.iter().map(|(status, _)| *status).collect();
        assert_eq!((paid, refused), (20, 20), "exactly what the line holds is paid, the rest refused: {statuses:?}");
        let (_, refusal) = answers.iter().find(|(status, _)| *status == 422).expect("a refusal");
        assert!(refusal["detail"].as_str().unwrap_or_default().contains("RACE/EU-RACE/MA"), "{refusal}");

        let balance = client
            .get(format!("{}/v1/programmes/RACE/balance", servers[1].base_url))
            .bearer_auth(&officer)
            .send()
            .await
            .unwrap()
            .json::<serde_json::Value>()
            .await
            .unwrap();
        assert_eq!((balance["available"].as_str(), balance["disbursed"]["total"].as_str()), (Some("0.00"), Some("1000.00")), "{balance}");
        drop(servers);
        let verified = run_ledger(&database, keys, &["verify"]);
        assert_exit(&verified, 0, "ledger verify after the race");
        assert!(stdout(&verified).starts_with("chain valid: 24 events"), "{}", stdout(&verified));
        assert_exit(&run_ledger(&database, keys, &["rebuild", "--check"]), 0, "rebuild --check after the race");
    }
}
