//! `ledger report ...`: the same reports as the HTTP API, written to a file
//! (written whole to a temporary file beside it, then renamed, so that a
//! refusal or a failure never leaves a partial report).

use std::path::Path;
use std::process::ExitCode;

use chrono::Utc;
use ledger_core::domain::{DonorCode, ProgrammeCode};

use super::iati::{IatiRequest, iati_file};
use super::statement::StatementView;
use super::statement_files;
use crate::cli::ReportCommand;
use crate::config::Ledger;
use crate::http::input::parse_date;
use crate::http::reports::{StatementFormat, make_statement};
use crate::reports::statement::Period;

pub async fn run(ledger: &Ledger, command: ReportCommand) -> anyhow::Result<ExitCode> {
    match command {
        ReportCommand::Iati { programme, out } => {
            let organisation = ledger.reporting_org.clone().ok_or_else(|| {
                anyhow::anyhow!("IATI files need the reporting organisation: give --iati-org-ref and --iati-org-name")
            })?;
            let programme = programme.as_deref().map(ProgrammeCode::parse).transpose()?;
            let until = ledger.store.head().await?.0;
            let request = IatiRequest { programme, donor: None, until, day: Utc::now().date_naive() };
            let file = iati_file(&ledger.store, &organisation, &request).await?;
            write_whole(&out, &file)?;
            println!("IATI activity file written to {}", out.display());
            Ok(ExitCode::SUCCESS)
        }
        ReportCommand::Statement { programme, donor, from, to, format, out } => {
            let format = statement_format(format.as_deref(), &out)?;
            let period = period(&programme, &donor, &from, &to)?;
            let statement = make_statement(&ledger.store, &period).await?;
            let bytes = match format {
                StatementFormat::Csv => statement_files::to_csv(&statement)?,
                StatementFormat::Xlsx => statement_files::to_xlsx(&statement)?,
                StatementFormat::Json => serde_json::to_vec_pretty(&StatementView::of(&statement))?,
            };
            write_whole(&out, &bytes)?;
            println!(
                "statement of {} for {} from {} to {} written to {}",
                period.programme,
                period.donor,
                from,
                to,
                out.display()
            );
            Ok(ExitCode::SUCCESS)
        }
    }
}

fn statement_format(format: Option<&str>, out: &Path) -> anyhow::Result<StatementFormat> {
    let named =
        format.map(str::to_string).or_else(|| out.extension().and_then(|extension| extension.to_str()).map(str::to_string));
    match named.as_deref() {
        Some("xlsx") => Ok(StatementFormat::Xlsx),
        Some("json") => Ok(StatementFormat::Json),
        Some("csv") | None => Ok(StatementFormat::Csv),
        Some(_) if format.is_none() => Ok(StatementFormat::Csv),
        Some(other) => anyhow::bail!("--format must be csv, xlsx or json, not {other}"),
    }
}

/// The period of a statement, checked as the HTTP API checks it.
fn period(programme: &str, donor: &str, from: &str, to: &str) -> anyhow::Result<Period> {
    let programme = ProgrammeCode::parse(programme)?;
    let donor = DonorCode::parse(donor)?;
    let day = |name: &str, text: &str| {
        parse_date(text).ok_or_else(|| anyhow::anyhow!("--{name} must be a date YYYY-MM-DD from 1990-01-01 to 2099-12-31"))
    };
    let (from, to) = (day("from", from)?, day("to", to)?);
    if from > to {
        anyhow::bail!("--from ({from}) is after --to ({to})");
    }
    let today = Utc::now().date_naive();
    if to > today {
        anyhow::bail!("--to {to} is after today ({today}, UTC); the ledger has no figures for it yet");
    }
    Ok(Period { programme, donor, from, to })
}

/// Writes `bytes` to a temporary file beside `out`, then renames it to `out`.
pub fn write_whole(out: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let mut temporary = out.as_os_str().to_owned();
    temporary.push(".partial");
    std::fs::write(&temporary, bytes)?;
    std::fs::rename(&temporary, out)?;
    Ok(())
}
