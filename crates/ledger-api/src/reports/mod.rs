//! Reports for donors: financial statements (CSV, XLSX, JSON) and IATI 2.03
//! activity files. Each is folded from the events up to a point in the
//! chain, never from the live projection tables, so that a report for a
//! closed day says the same whenever it is asked again.

pub mod cli;
pub mod iati;
pub mod statement;
pub mod statement_files;

use chrono::NaiveDate;
use ledger_core::chain::EventRecord;
use ledger_core::domain::{DonorCode, EventBody, ProgrammeCode, Seq};
use ledger_core::store::{Store, StoreError};
use sqlx::Row;

/// Events read per query while folding a report.
pub const REPORT_PAGE_EVENTS: i64 = 2_000;

/// Why a report could not be made. Each variant's status is set in
/// `http::error` (`From<ReportError> for ApiError`).
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("unknown programme {0}")]
    UnknownProgramme(ProgrammeCode),
    #[error("unknown donor {0}")]
    UnknownDonor(DonorCode),
    #[error("donor {donor} does not fund programme {programme}")]
    NotFunded { programme: ProgrammeCode, donor: DonorCode },
    /// The report cannot be made as the standard asks from what is
    /// recorded; says what is missing.
    #[error("{0}")]
    Incomplete(String),
    #[error("stored event {seq} is unreadable: {reason}")]
    Corrupt { seq: Seq, reason: String },
    #[error("the report could not be written: {0}")]
    Write(String),
}

/// The last seq recorded on or before the end of `day` (UTC); 0 when none.
pub async fn last_seq_through(store: &Store, day: NaiveDate) -> Result<Seq, StoreError> {
    let Some(next_day) = day.succ_opt() else { return Ok(store.head().await?.0) };
    let row = sqlx::query("SELECT seq FROM events WHERE recorded_at < $1 ORDER BY seq DESC LIMIT 1")
        .bind(format!("{next_day}T00:00:00"))
        .fetch_optional(store.pool())
        .await?;
    let seq: i64 = match row {
        Some(row) => row.try_get(0)?,
        None => 0,
    };
    Ok(u64::try_from(seq).unwrap_or_default())
}

/// The UTC day an event was recorded on.
pub fn recorded_day(record: &EventRecord) -> Result<NaiveDate, ReportError> {
    record
        .recorded_at
        .get(..10)
        .and_then(|day| NaiveDate::parse_from_str(day, "%Y-%m-%d").ok())
        .ok_or_else(|| ReportError::Corrupt { seq: record.seq, reason: "recorded_at is not an RFC 3339 time".to_string() })
}

/// Calls `visit` with every event up to and including `until`, in seq
/// order, whose payload mentions `needle` (a code: every event about a
/// programme names it, so the others need not be parsed).
pub async fn fold_events(
    store: &Store,
    until: Seq,
    needle: &str,
    mut visit: impl FnMut(&EventRecord, EventBody) -> Result<(), ReportError>,
) -> Result<(), ReportError> {
    let mut cursor = 0;
    while cursor < until {
        let page = store.events_after(cursor, REPORT_PAGE_EVENTS).await?;
        let Some(last) = page.last() else { break };
        let last_seq = last.seq;
        for record in page.iter().take_while(|record| record.seq <= until) {
            if !record.payload.contains(needle) {
                continue;
            }
            let body = EventBody::parse(&record.event_type, record.version, &record.payload)
                .map_err(|error| ReportError::Corrupt { seq: record.seq, reason: error.to_string() })?;
            visit(record, body)?;
        }
        assert!(last_seq > cursor, "events are read in increasing seq order");
        cursor = last_seq;
    }
    Ok(())
}

/// The registered programme's currency, or `UnknownProgramme`.
pub async fn programme_currency(store: &Store, programme: &ProgrammeCode) -> Result<String, ReportError> {
    let row = sqlx::query("SELECT currency FROM programmes WHERE code = $1")
        .bind(programme.as_str())
        .fetch_optional(store.pool())
        .await
        .map_err(StoreError::from)?;
    let row = row.ok_or_else(|| ReportError::UnknownProgramme(programme.clone()))?;
    row.try_get(0).map_err(|error| ReportError::Store(StoreError::from(error)))
}

/// Whether the donor is registered.
pub async fn donor_exists(store: &Store, donor: &DonorCode) -> Result<bool, ReportError> {
    let row = sqlx::query("SELECT code FROM donors WHERE code = $1")
        .bind(donor.as_str())
        .fetch_optional(store.pool())
        .await
        .map_err(StoreError::from)?;
    Ok(row.is_some())
}

/// Whether the donor has any funding row for the programme.
pub async fn donor_funds(store: &Store, donor: &DonorCode, programme: &ProgrammeCode) -> Result<bool, ReportError> {
    let row = sqlx::query("SELECT donor FROM funding WHERE programme = $1 AND donor = $2")
        .bind(programme.as_str())
        .bind(donor.as_str())
        .fetch_optional(store.pool())
        .await
        .map_err(StoreError::from)?;
    Ok(row.is_some())
}
