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

/// Removes the triggers that keep events immutable, as an attacker would.
async fn drop_event_triggers(store: &Store, database: &TestDatabase) {
    let statements: &[&str] = if database.is_postgres() {
        &["ALTER TABLE events DISABLE TRIGGER USER"]
    } else {
        &["DROP TRIGGER events_refuse_update", "DROP TRIGGER events_refuse_delete"]
    };
    for statement in statements {
        sqlx::query(statement).execute(store.pool()).await.expect("the attacker may drop the triggers");
    }
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
            }
            store_text(&store, column, &original).await;
        }
        assert_exit(&run_ledger(&database, keys, &["verify"]), 0, "ledger verify once every byte is back");
        store.pool().close().await;
    }
}
