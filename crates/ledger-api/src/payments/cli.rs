//! `ledger payments import FILE.csv --programme .. --donor .. --country ..
//! --planned-on ..`: imports a payment list straight into the database, as
//! the other commands reach the ledger, with the same checks as
//! `POST /v1/payment-lists` and a progress bar over the rows. The finance
//! officer is named by a token (`--token`, or `LEDGER_TOKEN`), so that
//! four-eyes knows who imported the list and a revoked token imports
//! nothing. Exit codes: 0 imported, 1 refused (the report is printed as
//! CSV on standard output), 2 usage or I/O error.

use std::path::Path;
use std::process::ExitCode;

use indicatif::{ProgressBar, ProgressStyle};
use ledger_core::domain::{Command, CountryCode, DomainError, DonorCode, ProgrammeCode};
use ledger_core::store::{AppendUnit, UnitOutcome};
use uuid::Uuid;

use super::list_file::{self, ListRow};
use super::report::Report;
use crate::config::Ledger;
use crate::tokens::{self, Role};

/// What `ledger payments import` is given.
#[derive(Debug)]
pub struct ImportArguments<'a> {
    pub file: &'a Path,
    pub programme: &'a str,
    pub donor: &'a str,
    pub country: &'a str,
    pub planned_on: &'a str,
    pub token: &'a str,
}

fn progress_bar(total: u64) -> ProgressBar {
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:40}] {pos}/{len} rows ({per_sec}, {eta})")
            .expect("the template is valid")
            .progress_chars("=> "),
    );
    bar.set_message("checking");
    bar
}

/// Runs the import; see the module doc for the exit codes.
pub async fn import(ledger: &Ledger, arguments: ImportArguments<'_>) -> anyhow::Result<ExitCode> {
    let programme = ProgrammeCode::parse(arguments.programme).map_err(|error| anyhow::anyhow!("--programme: {error}"))?;
    let donor = DonorCode::parse(arguments.donor).map_err(|error| anyhow::anyhow!("--donor: {error}"))?;
    let country = CountryCode::parse(arguments.country).map_err(|error| anyhow::anyhow!("--country: {error}"))?;
    let planned_on = crate::http::input::parse_date(arguments.planned_on)
        .ok_or_else(|| anyhow::anyhow!("--planned-on must be a date YYYY-MM-DD"))?;
    let token_hash = tokens::hash_token(arguments.token);
    let principal = tokens::authenticate(&ledger.store, arguments.token).await?;
    let principal = principal.ok_or_else(|| anyhow::anyhow!("the token is unknown or revoked"))?;
    if principal.role != Role::FinanceOfficer {
        anyhow::bail!("payment lists are imported with a finance_officer token, not {}", principal.role.as_str());
    }
    let bytes = std::fs::read(arguments.file).map_err(|error| anyhow::anyhow!("{}: {error}", arguments.file.display()))?;
    let currency = crate::reports::programme_currency(&ledger.store, &programme).await?;
    let currency = ledger_core::domain::Currency::parse(&currency)?;
    let bar = progress_bar(0);
    let checked = list_file::rows_from_csv_with_progress(&bytes, &ledger.keys, currency, |done, total| {
        bar.set_length(total);
        bar.set_position(done);
    });
    bar.finish_and_clear();
    let rows = match checked.map_err(|error| anyhow::anyhow!("{}: {error}", arguments.file.display()))? {
        Ok(rows) => rows,
        Err(report) => return Ok(refused(&report)),
    };
    let list = Uuid::now_v7();
    let command = Command::ImportPaymentList {
        list,
        by: principal.name.clone(),
        programme,
        donor,
        country,
        planned_on,
        rows: rows.iter().map(ListRow::to_domain).collect(),
    };
    let spinner = ProgressBar::new_spinner().with_message(format!("holding the total of {} rows", rows.len()));
    spinner.enable_steady_tick(std::time::Duration::from_millis(100));
    let unit = AppendUnit { actor: principal.name, commands: vec![command], idempotency: None, token_hash: Some(token_hash) };
    let outcome = ledger.appender().append(std::slice::from_ref(&unit)).await?;
    spinner.finish_and_clear();
    match outcome.into_iter().next() {
        Some(UnitOutcome::Appended(receipts)) => {
            let seq = receipts.last().map(|receipt| receipt.seq).unwrap_or_default();
            let total: rust_decimal::Decimal = rows.iter().map(|row| row.amount.amount).sum();
            println!("payment list {list} imported at seq {seq}: {} rows, {total} {currency} held", rows.len());
            Ok(ExitCode::SUCCESS)
        }
        Some(UnitOutcome::Refused { error: DomainError::PaymentListInvalid { problems }, .. }) => {
            Ok(refused(&Report::from_domain(problems, &list_file::lines(&rows))))
        }
        Some(UnitOutcome::Refused { error, .. }) => {
            eprintln!("refused: {error}");
            Ok(ExitCode::from(1))
        }
        Some(UnitOutcome::TokenRevoked) => anyhow::bail!("the token was revoked"),
        other => anyhow::bail!("unexpected outcome of an import: {other:?}"),
    }
}

fn refused(report: &Report) -> ExitCode {
    eprintln!("the payment list was refused ({}); nothing was recorded and nothing is held", report.summary());
    print!("{}", report.to_csv());
    ExitCode::from(1)
}
