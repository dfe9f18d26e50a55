//! The point in the chain a balance is read at, and what donors may see.
//!
//! One rule for points beyond the head: a balance is never answered for a
//! point the ledger has not reached. `as_of_seq` past the last event and
//! `as_of` after today (UTC) are refused with 422 (`NotReached`: well
//! formed, but not yet there); `as_of` today gives the figures up to now.
//!
//! Donors see aggregates only: their tokens may not use `as_of_seq`, their
//! figures stand at the end of a closed UTC day (yesterday by default, and
//! never a later day), and counts of returnees below 5 are shown as
//! "fewer than 5". Without this, differencing two consecutive seqs would
//! give each disbursement's country, kind, amount and returnee.

use std::sync::Arc;

use chrono::{NaiveDate, Utc};
use ledger_core::domain::Seq;
use ledger_core::store::StoreError;
use projections::rows::Changes;
use serde::Deserialize;
use sqlx::Row;
use utoipa::IntoParams;

use super::AppState;
use super::error::ApiError;
use crate::tokens::Role;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[serde(deny_unknown_fields)]
pub struct AsOf {
    /// The figures just after this seq, folded from the events; at most the
    /// ledger's last seq. Not for donor tokens. Not with `as_of`.
    #[serde(default, deserialize_with = "super::params::as_of_seq::optional")]
    #[param(required = false, value_type = u64, minimum = 0, maximum = 9223372036854775807_i64)]
    pub as_of_seq: Option<u64>,
    /// The figures at the end of this UTC day, folded from the events; at
    /// most today (for a donor, at most yesterday, which is the default).
    /// Not with `as_of_seq`.
    #[serde(default, deserialize_with = "super::params::as_of")]
    #[param(required = false, value_type = String, format = Date, pattern = r"^(199[0-9]|20[0-9][0-9])-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$")]
    pub as_of: Option<NaiveDate>,
}

/// What day it is (UTC) for the as-of rules: the system clock, or, for
/// tests that must see today's events as a closed day, a clock set days
/// ahead.
#[derive(Clone, Copy, Debug, Default)]
pub struct Clock {
    days_ahead: i64,
}

impl Clock {
    pub fn system() -> Clock {
        Clock { days_ahead: 0 }
    }

    /// A clock `days` ahead of the system's.
    pub fn days_ahead(days: i64) -> Clock {
        Clock { days_ahead: days }
    }

    pub fn today(&self) -> NaiveDate {
        Utc::now().date_naive() + chrono::Days::new(self.days_ahead.unsigned_abs())
    }
}

/// Where a balance is read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Point {
    /// The live projection tables.
    Live,
    /// Folded from the events up to this seq, and, if asked as of a day, that day.
    Seq(Seq, Option<NaiveDate>),
}

/// Applies the rules of this module's doc to a request.
pub async fn resolve(state: &AppState, role: Role, as_of: &AsOf) -> Result<Point, ApiError> {
    resolve_on(state, role, as_of, state.clock.today()).await
}

async fn resolve_on(state: &AppState, role: Role, as_of: &AsOf, today: NaiveDate) -> Result<Point, ApiError> {
    let yesterday = today.pred_opt().unwrap_or(today);
    match (as_of.as_of_seq, as_of.as_of) {
        (Some(_), Some(_)) => Err(ApiError::Inconsistent("give as_of_seq or as_of, not both".to_string())),
        (Some(_), None) if role == Role::Donor => Err(ApiError::Forbidden(
            "donor tokens see figures as of the end of a closed UTC day: use as_of=YYYY-MM-DD (at most yesterday), not as_of_seq"
                .to_string(),
        )),
        (Some(seq), None) => {
            let (head, _) = state.ledger.store.head().await?;
            if seq > head {
                return Err(ApiError::NotReached(format!(
                    "as_of_seq {seq} is past the ledger's last event ({head}); give 0 to {head}"
                )));
            }
            Ok(Point::Seq(seq, None))
        }
        (None, Some(day)) if role == Role::Donor && day > yesterday => Err(ApiError::NotReached(format!(
            "donor figures stand at the end of a closed UTC day: as_of may be at most {yesterday}"
        ))),
        (None, Some(day)) if day > today => {
            Err(ApiError::NotReached(format!("as_of {day} is after today ({today}, UTC); the ledger has no figures for it yet")))
        }
        (None, Some(day)) => Ok(Point::Seq(last_seq_of_day(state, day).await?, Some(day))),
        (None, None) if role == Role::Donor => Ok(Point::Seq(last_seq_of_day(state, yesterday).await?, Some(yesterday))),
        (None, None) => Ok(Point::Live),
    }
}

/// The last seq recorded on or before the end of `day` (UTC).
async fn last_seq_of_day(state: &AppState, day: NaiveDate) -> Result<u64, ApiError> {
    let next_day = day.succ_opt().ok_or_else(|| ApiError::BadRequest("as_of is out of range".to_string()))?;
    let row = sqlx::query("SELECT seq FROM events WHERE recorded_at < $1 ORDER BY seq DESC LIMIT 1")
        .bind(format!("{next_day}T00:00:00"))
        .fetch_optional(state.ledger.store.pool())
        .await
        .map_err(StoreError::from)?;
    let seq: i64 = match row {
        Some(row) => row.try_get(0).map_err(ApiError::internal)?,
        None => 0,
    };
    Ok(u64::try_from(seq).unwrap_or_default())
}

/// The projection rows folded up to a seq, kept for the last seq asked:
/// donors' figures all stand at the end of the same day, so one fold
/// serves them all until the day turns (or the chain is read at another
/// point).
#[derive(Debug, Default)]
pub struct FoldCache {
    last: tokio::sync::Mutex<Option<Arc<Changes>>>,
}

impl FoldCache {
    /// The rows as they stood just after `seq`. A fold in progress makes
    /// other callers wait for it rather than fold the same events again.
    pub async fn at(&self, state: &AppState, seq: Seq) -> Result<Arc<Changes>, ApiError> {
        let mut last = self.last.lock().await;
        if let Some(changes) = last.as_ref().filter(|changes| changes.last_seq == seq) {
            return Ok(changes.clone());
        }
        let started = std::time::Instant::now();
        let folded = projections::rebuild::fold_until(&state.ledger.store, seq).await.map_err(|error| match error {
            projections::rebuild::RebuildError::Store(store) => ApiError::from(store),
            projections::rebuild::RebuildError::Database(database) => ApiError::from(StoreError::from(database)),
            other => ApiError::internal(other),
        })?;
        let folded = Arc::new(folded);
        let head_hash: Option<String> = sqlx::query_scalar("SELECT hash FROM events WHERE seq = $1")
            .bind(i64::try_from(folded.last_seq).unwrap_or(i64::MAX))
            .fetch_optional(state.ledger.store.pool())
            .await
            .map_err(StoreError::from)?;
        tracing::info!(
            seq = folded.last_seq,
            head_hash = head_hash.as_deref().unwrap_or(""),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "folded the events for figures as of a past point"
        );
        // A fold of an empty prefix says seq 0 whatever was asked.
        if folded.last_seq == seq {
            *last = Some(folded.clone());
        }
        Ok(folded)
    }
}

/// How often a server looks whether the donors' day has turned.
pub const DONOR_DAY_CHECK_MS: u64 = 60_000;

/// Keeps the fold of the donors' day (the end of yesterday, UTC) ready, so
/// that the day's first donor request does not wait for it: the fold is
/// made when the server starts and again within a minute of the day
/// turning, while any donor token is valid (a ledger no donor reads keeps
/// no fold in memory).
pub async fn keep_donor_day_folded(state: AppState) {
    loop {
        if let Err(error) = fold_donor_day(&state).await {
            tracing::warn!(error = %error, "the donors' day could not be folded ahead; a donor's request will fold it");
        }
        tokio::time::sleep(std::time::Duration::from_millis(DONOR_DAY_CHECK_MS)).await;
    }
}

async fn fold_donor_day(state: &AppState) -> Result<(), ApiError> {
    let donor_tokens: Option<i64> =
        sqlx::query_scalar("SELECT 1 FROM tokens WHERE role = 'donor' AND revoked_at IS NULL LIMIT 1")
            .fetch_optional(state.ledger.store.pool())
            .await
            .map_err(StoreError::from)?;
    if donor_tokens.is_none() {
        return Ok(());
    }
    let today = state.clock.today();
    let seq = last_seq_of_day(state, today.pred_opt().unwrap_or(today)).await?;
    state.folds.at(state, seq).await?;
    Ok(())
}
