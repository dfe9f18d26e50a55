//! `ledger report iati` and `ledger report statement` with the real binary,
//! on SQLite and PostgreSQL: the files are written whole, the IATI file
//! validates against the 2.03 schema, the statement's closing position is
//! the balance, and a refused request leaves no file behind.

#[macro_use]
mod audit_support;

use std::path::{Path, PathBuf};
use std::process::Command;

use audit_support::*;
use chrono::Utc;
use serde_json::Value;

const PROGRAMME: &str = "MOTUSE";
const DONOR: &str = "EU-AMIF";

/// `ledger report ARGS` with the reporting organisation configured.
fn report(database: &TestDatabase, args: &[&str]) -> std::process::Output {
    let mut command = ledger_command(&database.directory, Some(&database.url), Keys::Environment, args);
    command.env("LEDGER_IATI_ORG_REF", "XM-DAC-47066").env("LEDGER_IATI_ORG_NAME", "International Organization for Migration");
    command.output().expect("the ledger binary runs")
}

fn assert_valid_iati(file: &Path) {
    let schema = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/iati-2.03/iati-activities-schema.xsd");
    let output = Command::new("xmllint")
        .arg("--noout")
        .arg("--nonet")
        .arg("--schema")
        .arg(&schema)
        .arg(file)
        .output()
        .expect("xmllint runs (Debian libxml2-utils)");
    assert!(output.status.success(), "{} validates: {}", file.display(), String::from_utf8_lossy(&output.stderr));
}

/// No file, and no partial file beside it.
fn assert_no_file(file: &Path, what: &str) {
    assert!(!file.exists(), "{what}: no file is written");
    let mut partial = file.as_os_str().to_owned();
    partial.push(".partial");
    assert!(!Path::new(&partial).exists(), "{what}: nor a partial one");
}

test_on_both_backends! {
    /// The IATI file of every programme, and of one, validates and holds an
    /// activity per programme; without the reporting organisation or for
    /// an unknown programme, the command fails and writes nothing.
    async fn report_iati_writes_a_valid_file_or_nothing(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let all = database.directory.join("all.xml");
        let output = report(&database, &["report", "iati", "--out", all.to_str().unwrap()]);
        assert_exit(&output, 0, "ledger report iati");
        assert!(stdout(&output).contains("IATI activity file written to"), "{}", stdout(&output));
        assert_valid_iati(&all);
        let xml = std::fs::read_to_string(&all).unwrap();
        let programmes: Vec<String> = sqlx::query_scalar("SELECT code FROM programmes ORDER BY code")
            .fetch_all(ledger.store.pool())
            .await
            .expect("the programmes can be read");
        assert!(programmes.len() >= 4, "the demo registers several programmes");
        assert_eq!(xml.matches("<iati-activity ").count(), programmes.len(), "one activity per programme");
        for code in &programmes {
            assert!(xml.contains(&format!("<iati-identifier>XM-DAC-47066-{code}</iati-identifier>")), "{code}");
        }

        let one = database.directory.join("motuse.xml");
        assert_exit(&report(&database, &["report", "iati", "--programme", PROGRAMME, "--out", one.to_str().unwrap()]), 0, "one programme");
        assert_valid_iati(&one);
        let xml = std::fs::read_to_string(&one).unwrap();
        assert_eq!(xml.matches("<iati-activity ").count(), 1);
        assert!(xml.contains("<iati-identifier>XM-DAC-47066-MOTUSE</iati-identifier>"));

        let unknown = database.directory.join("unknown.xml");
        let output = report(&database, &["report", "iati", "--programme", "NOPE", "--out", unknown.to_str().unwrap()]);
        assert_exit(&output, 2, "an unknown programme");
        assert!(String::from_utf8_lossy(&output.stderr).contains("unknown programme NOPE"), "{output:?}");
        assert_no_file(&unknown, "an unknown programme");
        let unconfigured = database.directory.join("unconfigured.xml");
        let output = run_ledger(&database, Keys::Environment, &["report", "iati", "--out", unconfigured.to_str().unwrap()]);
        assert_exit(&output, 2, "no reporting organisation");
        assert!(String::from_utf8_lossy(&output.stderr).contains("reporting organisation"), "{output:?}");
        assert_no_file(&unconfigured, "no reporting organisation");
    }
}

test_on_both_backends! {
    /// The statement's closing position is the donor's figures in the
    /// programme's balance; CSV, XLSX and JSON by extension or --format;
    /// bad periods and unknown codes fail and write nothing.
    async fn report_statement_closes_at_the_balance_or_writes_nothing(database: TestDatabase) {
        let ledger = demo_ledger(&database).await;
        let today = Utc::now().date_naive().to_string();
        let json = database.directory.join("statement.json");
        let output = report(&database, &["report", "statement", "--programme", PROGRAMME, "--donor", DONOR, "--from", "2015-01-01", "--to", &today, "--out", json.to_str().unwrap()]);
        assert_exit(&output, 0, "ledger report statement");
        let statement: Value = serde_json::from_slice(&std::fs::read(&json).unwrap()).expect("the statement is JSON");
        let balance = projections::balances::programme_balance(&ledger.store, PROGRAMME).await.expect("the programme has a balance");
        let figures = balance.by_donor.iter().find(|figures| figures.donor == DONOR).expect("the donor funds the programme");
        assert_eq!(statement["closing"], serde_json::to_value(&figures.figures).unwrap(), "closing is the balance today");
        assert_eq!(statement["opening"]["committed"], "0.00", "nothing was recorded before the period");
        assert_eq!(statement["movements"]["commitments"], statement["closing"]["committed"]);

        let csv = database.directory.join("statement.csv");
        assert_exit(&report(&database, &["report", "statement", "--programme", PROGRAMME, "--donor", DONOR, "--from", "2015-01-01", "--to", &today, "--out", csv.to_str().unwrap()]), 0, "csv");
        let text = std::fs::read_to_string(&csv).unwrap();
        assert!(text.lines().count() > 10, "one row per figure: {text}");
        assert!(text.contains(figures.figures.committed.as_str()), "the CSV holds the committed amount: {text}");
        let xlsx = database.directory.join("statement.data");
        assert_exit(&report(&database, &["report", "statement", "--programme", PROGRAMME, "--donor", DONOR, "--from", "2015-01-01", "--to", &today, "--format", "xlsx", "--out", xlsx.to_str().unwrap()]), 0, "xlsx");
        assert!(std::fs::read(&xlsx).unwrap().starts_with(b"PK\x03\x04"), "an XLSX workbook is a zip");

        for (what, programme, donor, from, to) in [
            ("from after to", PROGRAMME, DONOR, today.as_str(), "2015-01-01"),
            ("a malformed date", PROGRAMME, DONOR, "2015-13-01", today.as_str()),
            ("an unknown programme", "NOPE", DONOR, "2015-01-01", today.as_str()),
            ("an unknown donor", PROGRAMME, "NOPE", "2015-01-01", today.as_str()),
            ("a donor that does not fund it", "RADA", DONOR, "2015-01-01", today.as_str()),
            ("a day after today", PROGRAMME, DONOR, "2015-01-01", "2099-01-01"),
        ] {
            let out = database.directory.join("refused.csv");
            let output = report(&database, &["report", "statement", "--programme", programme, "--donor", donor, "--from", from, "--to", to, "--out", out.to_str().unwrap()]);
            assert_exit(&output, 2, what);
            assert!(!output.stderr.is_empty(), "{what}: says why");
            assert_no_file(&out, what);
        }
        let output = report(&database, &["report", "statement", "--programme", PROGRAMME, "--donor", DONOR, "--from", "2015-01-01", "--to", &today, "--format", "pdf", "--out", csv.to_str().unwrap()]);
        assert_exit(&output, 2, "an unknown format");
        assert_eq!(std::fs::read_to_string(&csv).unwrap(), text, "a refused run leaves an earlier file as it was");
    }
}
