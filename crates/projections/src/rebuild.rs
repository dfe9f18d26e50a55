//! Rebuilding every projection from the events alone, and checking that the
//! live projections equal such a rebuild.

use std::collections::BTreeMap;

use ledger_core::chain::{ChainVerifier, EventRecord};
use ledger_core::domain::{EventBody, Seq};
use ledger_core::store::{self, Store, StoreError};
use sqlx::{AnyConnection, Connection};

use crate::db;
use crate::rows::{ASSISTANCE, Changes, JOURNAL, Merge, POSTINGS, REVERSALS, TABLES, Table, TableChanges, Value, posting_lines};

/// Events folded before the rows they add one by one are written (bounds memory).
pub const REBUILD_CHUNK_EVENTS_MAX: usize = 20_000;
/// Tables with a row per event (or per reversal): written chunk by chunk
/// during a rebuild.
const PER_EVENT_TABLES: [&Table; 3] = [&JOURNAL, &ASSISTANCE, &REVERSALS];
/// Events read per query.
pub const REBUILD_PAGE_EVENTS_MAX: i64 = 10_000;

#[derive(Debug, thiserror::Error)]
pub enum RebuildError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("refusing to rebuild from a broken chain: {0}; run `ledger verify`")]
    BrokenChain(String),
    #[error("event {seq} cannot be read: {message}")]
    Unreadable { seq: Seq, message: String },
    #[error("folding the events failed: {0}")]
    Fold(String),
}

/// Reads the next page of events, checking links and hashes as it goes.
async fn next_page(
    connection: &mut AnyConnection,
    verifier: &mut ChainVerifier<'_>,
) -> Result<Vec<(EventRecord, EventBody)>, RebuildError> {
    let (after, _) = verifier.head();
    let records = store::read_events(connection, after, REBUILD_PAGE_EVENTS_MAX).await?;
    records.into_iter().map(|record| checked(verifier, record)).collect()
}

/// Checks an event's place in the chain and parses its payload.
fn checked(verifier: &mut ChainVerifier<'_>, record: EventRecord) -> Result<(EventRecord, EventBody), RebuildError> {
    verifier.check(&record).map_err(|failure| RebuildError::BrokenChain(failure.to_string()))?;
    let body = EventBody::parse(&record.event_type, record.version, &record.payload)
        .map_err(|error| RebuildError::Unreadable { seq: record.seq, message: error.to_string() })?;
    Ok((record, body))
}

/// A rebuild's reading side: the chain checked so far and the rows folded.
struct Folding {
    verifier: ChainVerifier<'static>,
    changes: Changes,
}

impl Folding {
    /// Checks and folds a page of events up to `head`.
    fn fold(mut self, records: Vec<EventRecord>, head: Seq) -> Result<Self, RebuildError> {
        for record in records.into_iter().take_while(|record| record.seq <= head) {
            let (record, body) = checked(&mut self.verifier, record)?;
            self.changes.add_event(&record, &body);
        }
        Ok(self)
    }
}

/// Replaces every projection with one rebuilt from the events, in one
/// transaction that holds the chain lock. Returns the number of events.
///
/// Reading and folding the events (on a second connection) overlaps with
/// writing the rows of the previous chunk. Rows written once per event
/// (postings, assistance, reversals) are written chunk by chunk; the summed
/// tables stay in memory, bounded by their number of rows, and are written
/// once at the end.
pub async fn rebuild(store: &Store, progress: impl FnMut(Seq)) -> Result<Seq, RebuildError> {
    let sizes = RebuildSizes { page_events: REBUILD_PAGE_EVENTS_MAX, chunk_events: REBUILD_CHUNK_EVENTS_MAX };
    rebuild_in_pages(store, sizes, progress).await
}

/// How many events a rebuild reads per query and folds before writing the
/// rows it adds one by one.
#[derive(Clone, Copy, Debug)]
pub struct RebuildSizes {
    pub page_events: i64,
    pub chunk_events: usize,
}

/// `rebuild` with the given page and chunk sizes (the result does not
/// depend on them).
pub async fn rebuild_in_pages(store: &Store, sizes: RebuildSizes, mut progress: impl FnMut(Seq)) -> Result<Seq, RebuildError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::lock_chain(&mut transaction).await?;
    // Nothing can be appended while the lock is held: every event up to
    // this head is committed and stays as it is.
    let head: i64 = sqlx::query_scalar("SELECT COALESCE(MAX(seq), 0) FROM events").fetch_one(&mut *transaction).await?;
    let head = Seq::try_from(head).unwrap_or_default();
    db::clear(&mut transaction).await?;
    let indexes = db::secondary_indexes(&mut transaction).await?;
    db::drop_indexes(&mut transaction, &indexes).await?;
    let (chunks, mut received) = tokio::sync::mpsc::channel::<Changes>(1);
    let reading = async move {
        let mut reader = store.pool().acquire().await?;
        let mut folding = Folding { verifier: ChainVerifier::new(None), changes: Changes::default() };
        let mut records = store::read_events(&mut reader, 0, sizes.page_events).await?;
        let mut folded = 0usize;
        while let Some(last) = records.last().map(|record| record.seq) {
            folded += records.len();
            // Folding a page (on a thread of its own) overlaps with reading
            // the next one and with writing the previous chunk.
            let fold = tokio::task::spawn_blocking(move || folding.fold(records, head));
            let next = async {
                if last < head { store::read_events(&mut reader, last, sizes.page_events).await } else { Ok(Vec::new()) }
            };
            let (fold, next) = tokio::join!(fold, next);
            folding = fold.map_err(|error| RebuildError::Fold(error.to_string()))??;
            records = next?;
            if folded >= sizes.chunk_events || records.is_empty() {
                folded = 0;
                let chunk = if records.is_empty() {
                    std::mem::take(&mut folding.changes)
                } else {
                    folding.changes.split_off(&PER_EVENT_TABLES)
                };
                if chunks.send(chunk).await.is_err() {
                    // The writing side failed; its error is the one reported.
                    return Ok(());
                }
            }
        }
        Ok::<(), RebuildError>(())
    };
    let writing = async {
        while let Some(mut chunk) = received.recv().await {
            db::write_changes_of(&mut transaction, &mut chunk).await?;
            progress(chunk.last_seq);
            // Freeing a chunk's rows takes a while; the other core can do it.
            tokio::task::spawn_blocking(move || drop(chunk));
        }
        Ok::<(), RebuildError>(())
    };
    tokio::try_join!(reading, writing)?;
    db::create_indexes(&mut transaction, &indexes).await?;
    transaction.commit().await?;
    Ok(head)
}

/// Folds the events up to and including `until` (or all of them, if fewer)
/// into projection rows, from one snapshot.
pub async fn fold_until(store: &Store, until: Seq) -> Result<Changes, RebuildError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let mut verifier = ChainVerifier::new(None);
    let mut changes = Changes::default();
    'pages: loop {
        let page = next_page(&mut transaction, &mut verifier).await?;
        if page.is_empty() {
            break;
        }
        for (record, body) in &page {
            if record.seq > until {
                break 'pages;
            }
            changes.add_event(record, body);
        }
    }
    transaction.rollback().await?;
    changes.add_reach_totals(&BTreeMap::new());
    Ok(changes)
}

/// The result of comparing live projections with a rebuild.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckReport {
    pub events: Seq,
    /// The first differing figure, if any.
    pub difference: Option<String>,
}

/// Rebuilds in memory from one snapshot and compares with the live tables.
/// The journal is compared line by line, through the `postings` view, page
/// by page; every other table whole.
pub async fn check(store: &Store, mut progress: impl FnMut(Seq)) -> Result<CheckReport, RebuildError> {
    let mut connection = store.pool().acquire().await?;
    let mut transaction = connection.begin().await?;
    store::snapshot(&mut transaction, store.backend()).await?;
    let mut verifier = ChainVerifier::new(None);
    let mut changes = Changes::default();
    loop {
        let page = next_page(&mut transaction, &mut verifier).await?;
        let (Some((first, _)), Some((last, _))) = (page.first(), page.last()) else { break };
        let (first_seq, last_seq) = (first.seq, last.seq);
        let mut page_changes = Changes::default();
        for (record, body) in &page {
            changes.add_event(record, body);
            page_changes.add_event(record, body);
        }
        let journal = page_changes.tables.remove(JOURNAL.name).unwrap_or_default();
        let rebuilt = posting_lines(&journal).map_err(|error| RebuildError::Fold(error.to_string()))?;
        let live = read_postings(&mut transaction, first_seq, last_seq).await?;
        if let Some(difference) = first_difference(&POSTINGS, &live, &rebuilt) {
            return Ok(CheckReport { events: verifier.head().0, difference: Some(difference) });
        }
        changes.tables.remove(JOURNAL.name);
        progress(last_seq);
    }
    let events = verifier.head().0;
    // Reach totals of a rebuild start from nothing.
    changes.add_reach_totals(&BTreeMap::new());
    for table in TABLES.iter().filter(|table| table.name != JOURNAL.name) {
        let live = db::read_table(&mut transaction, table).await?;
        let rebuilt = changes.rows(table).cloned().unwrap_or_default();
        if let Some(difference) = first_difference(table, &live, &rebuilt) {
            return Ok(CheckReport { events, difference: Some(difference) });
        }
    }
    transaction.rollback().await?;
    Ok(CheckReport { events, difference: None })
}

async fn read_postings(connection: &mut AnyConnection, first: Seq, last: Seq) -> Result<TableChanges, RebuildError> {
    use sqlx::Row;
    let rows = sqlx::query("SELECT seq, line, account, currency, amount FROM postings WHERE seq >= $1 AND seq <= $2")
        .bind(i64::try_from(first).unwrap_or(i64::MAX))
        .bind(i64::try_from(last).unwrap_or(i64::MAX))
        .fetch_all(&mut *connection)
        .await?;
    let mut postings = TableChanges::new();
    for row in rows {
        let key = vec![Value::Int(row.try_get("seq")?), Value::Int(row.try_get("line")?)];
        let values =
            vec![Value::Text(row.try_get("account")?), Value::Text(row.try_get("currency")?), Value::Int(row.try_get("amount")?)];
        postings.insert(key, values);
    }
    Ok(postings)
}

/// Rows of tables whose every column is added to carry no information when
/// all zero (a returnee whose only payment was reversed, say).
fn is_empty_row(table: &Table, values: &[Value]) -> bool {
    table.values.iter().all(|(_, merge)| *merge == Merge::Add) && values.iter().all(|value| *value == Value::Int(0))
}

/// Names the first row and column where `live` and `rebuilt` differ.
pub fn first_difference(table: &Table, live: &TableChanges, rebuilt: &TableChanges) -> Option<String> {
    let keys: std::collections::BTreeSet<&Vec<Value>> = live.keys().chain(rebuilt.keys()).collect();
    for key in keys {
        let key_text: Vec<String> = key.iter().map(ToString::to_string).collect();
        let name = format!("{} {}", table.name, key_text.join("/"));
        match (live.get(key), rebuilt.get(key)) {
            (Some(live_values), Some(rebuilt_values)) => {
                for ((column, _), (live_value, rebuilt_value)) in table.values.iter().zip(live_values.iter().zip(rebuilt_values))
                {
                    if live_value != rebuilt_value {
                        return Some(format!("{name} {column}: live {live_value}, rebuilt {rebuilt_value}"));
                    }
                }
            }
            (Some(values), None) if !is_empty_row(table, values) => {
                return Some(format!("{name}: live only, not in the rebuild"));
            }
            (None, Some(values)) if !is_empty_row(table, values) => return Some(format!("{name}: in the rebuild, missing live")),
            _ => {}
        }
    }
    None
}
