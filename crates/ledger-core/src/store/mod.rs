//! The event store on embedded SQLite or PostgreSQL, through sqlx's `Any`
//! driver: one global chain, appended by one writer at a time.

mod append;
pub mod one_statement;
mod writer;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::str::FromStr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, AnyPool, Row};

use crate::chain::{ChainFailure, ChainFault, ChainVerifier, EventRecord};
use crate::domain::{EventBody, FinalPaymentLists, Seq, State};
use crate::keys::KeyRing;

pub use append::{
    APPEND_IDLE_IN_TRANSACTION_MS, AppendUnit, Appender, COMMIT_IDLE_IN_TRANSACTION_MS, FILE_UNIT_EVENTS_MAX, IdempotencyClaim,
    Receipt, SETTLE_LOCK_WAIT_MS, UNIT_COMMANDS_MAX, UnitOutcome,
};
pub use writer::Writer;

/// Connections in the pool of an embedded SQLite database.
pub const SQLITE_POOL_CONNECTIONS_MAX: u32 = 4;
/// SQLite page cache per connection, in KiB.
pub const SQLITE_CACHE_KIB: u32 = 65_536;
/// Connections in the pool of a PostgreSQL database, per server.
pub const POSTGRES_POOL_CONNECTIONS_MAX: u32 = 16;
/// How long a request waits for a free connection.
pub const ACQUIRE_TIMEOUT_MS: u64 = 10_000;
/// A pooled connection idle this long is pinged before it is handed out;
/// one in steady use is not (a ping is a round trip on every request).
pub const PING_WHEN_IDLE_MS: u64 = 5_000;
/// Events read per query when walking the chain.
pub const READ_PAGE_EVENTS_MAX: i64 = 5_000;
/// SQLite's own largest page count (what `max_page_count` is by default).
const SQLITE_PAGES_MAX: u32 = 4_294_967_294;
/// The default embedded database, in the working directory.
pub const DEFAULT_DATABASE_URL: &str = "sqlite://ledger.db";

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(sqlx::Error),
    /// Another writer (another server, a rebuild) held the database longer
    /// than the ledger waits, or no connection became free in time. Nothing
    /// of the work was kept; it may be retried.
    #[error("the database is busy: {0}")]
    Busy(String),
    /// The database could not be reached, or the connection to it was lost
    /// before the work was committed: nothing of it was kept.
    #[error("the database cannot be reached: {0}")]
    Unreachable(String),
    /// The database (or the disk under it) is full: nothing of the work was
    /// kept; writes resume once there is space.
    #[error("the database is full: {0}")]
    Full(String),
    /// The commit was sent but its answer was lost, and the database could
    /// not be asked afterwards whether it happened. The work may or may not
    /// have been kept; a retry with the same Idempotency-Key is safe.
    #[error("the outcome of the commit is unknown: {0}")]
    OutcomeUnknown(String),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("another writer appended at the same position; retry the request")]
    Conflict,
    #[error("stored event {seq} is unreadable: {message}")]
    Corrupt { seq: Seq, message: String },
    #[error("the writer has stopped; the server is shutting down")]
    WriterStopped,
    #[error("unsupported database url: use sqlite://PATH or postgres://...")]
    UnsupportedUrl,
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        if is_busy(&error) {
            StoreError::Busy(error.to_string())
        } else if is_connection_lost(&error) {
            StoreError::Unreachable(error.to_string())
        } else if is_full(&error) {
            StoreError::Full(error.to_string())
        } else {
            StoreError::Database(error)
        }
    }
}

/// Whether a database error means the connection is gone: an I/O error, a
/// closed pool, PostgreSQL's connection exceptions (SQLSTATE class 08) or
/// its shutdown and termination codes (57P01 to 57P03).
pub fn is_connection_lost(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::PoolClosed | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(database_error) => database_error
            .try_downcast_ref::<sqlx::postgres::PgDatabaseError>()
            .is_some_and(|postgres| postgres.code().starts_with("08") || POSTGRES_CONNECTION_ENDED.contains(&postgres.code())),
        _ => false,
    }
}

/// Whether a database error means "no space left": SQLite's `SQLITE_FULL`
/// (also what `PRAGMA max_page_count` gives), PostgreSQL's class 53
/// (insufficient resources: disk full, out of memory).
pub fn is_full(error: &sqlx::Error) -> bool {
    let sqlx::Error::Database(database_error) = error else { return false };
    if database_error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
        let code = database_error.code().and_then(|code| code.parse::<i32>().ok()).unwrap_or_default();
        code & 0xff == SQLITE_FULL
    } else if let Some(postgres) = database_error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
        postgres.code().starts_with("53")
    } else {
        false
    }
}
/// Whether a database error means "held by someone else; try again": SQLite
/// busy or locked (any extended code), PostgreSQL `lock_not_available`, or no
/// pooled connection free in time.
pub fn is_busy(error: &sqlx::Error) -> bool {
    match error {
        sqlx::Error::PoolTimedOut => true,
        sqlx::Error::Database(database_error) => {
            if database_error.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                let code = database_error.code().and_then(|code| code.parse::<i32>().ok()).unwrap_or_default();
                matches!(code & 0xff, SQLITE_BUSY | SQLITE_LOCKED)
            } else if let Some(postgres) = database_error.try_downcast_ref::<sqlx::postgres::PgDatabaseError>() {
                postgres.code() == POSTGRES_LOCK_NOT_AVAILABLE
            } else {
                false
            }
        }
        _ => false,
    }
}

/// SQLite's primary result codes for a database held by another connection.
const SQLITE_BUSY: i32 = 5;
const SQLITE_LOCKED: i32 = 6;
/// SQLite's primary result code for a full database or disk.
const SQLITE_FULL: i32 = 13;
/// PostgreSQL's SQLSTATEs for a session ended by the server: terminated by
/// an administrator, crash shutdown, starting up or shutting down.
const POSTGRES_CONNECTION_ENDED: [&str; 3] = ["57P01", "57P02", "57P03"];
/// PostgreSQL's SQLSTATE for a lock that could not be taken in time.
const POSTGRES_LOCK_NOT_AVAILABLE: &str = "55P03";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The read models kept beside the events. The store calls it inside the
/// append transaction, so projections never lag or lead the chain.
pub trait Projector: Send + Sync + 'static {
    /// Loads the decision state from the projection tables. The lists of
    /// `known` are final and were read before: one the tables still hold as
    /// final, with the same status and hold, is taken as it is, without its
    /// rows being read again.
    fn load_state<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        known: &'c FinalPaymentLists,
    ) -> BoxFuture<'c, Result<State, sqlx::Error>>;
    /// Applies newly appended events, in seq order.
    fn apply<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        events: &'c [(EventRecord, EventBody)],
    ) -> BoxFuture<'c, Result<(), sqlx::Error>>;
    /// As `apply`, the writes returned as inserts for the append's one
    /// statement instead of run (PostgreSQL). Reads what they depend on
    /// first, so the caller must know that no other writer appends between
    /// this call and its statement.
    fn inserts<'c>(
        &'c self,
        connection: &'c mut AnyConnection,
        events: &'c [(EventRecord, EventBody)],
    ) -> BoxFuture<'c, Result<Vec<one_statement::Insert>, sqlx::Error>>;
}

pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

#[derive(Clone, Debug)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
    /// The database file of an embedded SQLite database.
    pub database_path: Option<PathBuf>,
    /// A limit on the SQLite database's size in pages, set by tests to make
    /// SQLite report a full database (0: none).
    sqlite_page_limit: Arc<AtomicU32>,
}

impl Store {
    /// Opens the database, creating an embedded SQLite file if missing.
    pub async fn connect(url: &str) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        let (backend, database_path, pool_size) = if let Some(rest) = url.strip_prefix("sqlite:") {
            let path = rest.trim_start_matches("//").split('?').next().unwrap_or_default();
            (Backend::Sqlite, Some(PathBuf::from(path)), SQLITE_POOL_CONNECTIONS_MAX)
        } else if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            (Backend::Postgres, None, POSTGRES_POOL_CONNECTIONS_MAX)
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let url = match backend {
            Backend::Sqlite if !url.contains("mode=") => format!("{url}{}mode=rwc", if url.contains('?') { '&' } else { '?' }),
            _ => url.to_string(),
        };
        let options = AnyConnectOptions::from_str(&url)?;
        let pool = AnyPoolOptions::new()
            .max_connections(pool_size)
            .acquire_timeout(Duration::from_millis(ACQUIRE_TIMEOUT_MS))
            .test_before_acquire(false)
            .before_acquire(|connection, metadata| {
                Box::pin(async move {
                    if metadata.idle_for >= Duration::from_millis(PING_WHEN_IDLE_MS) {
                        sqlx::Connection::ping(connection).await?;
                    }
                    Ok(true)
                })
            })
            .after_connect(move |connection, _| {
                Box::pin(async move {
                    if backend == Backend::Sqlite {
                        // WAL: readers never block the writer. synchronous=FULL
                        // (the default) keeps every acknowledged event on disk.
                        sqlx::query("PRAGMA journal_mode = WAL").execute(&mut *connection).await?;
                        sqlx::query("PRAGMA busy_timeout = 10000").execute(&mut *connection).await?;
                        // A page cache large enough that a group commit or a
                        // rebuild chunk does not spill to disk mid-transaction.
                        sqlx::query(&format!("PRAGMA cache_size = -{SQLITE_CACHE_KIB}")).execute(&mut *connection).await?;
                        sqlx::query("PRAGMA temp_store = MEMORY").execute(&mut *connection).await?;
                    }
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Store { pool, backend, database_path, sqlite_page_limit: Arc::new(AtomicU32::new(0)) })
    }

    pub fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection. A pool that could not open a connection in
    /// time while it had room for one means the database cannot be reached,
    /// not that it is busy.
    pub async fn acquire(&self) -> Result<PoolConnection<Any>, StoreError> {
        match self.pool.acquire().await {
            Ok(connection) => Ok(connection),
            Err(sqlx::Error::PoolTimedOut) if self.pool.size() < self.pool.options().get_max_connections() => {
                Err(StoreError::Unreachable(format!("no connection could be opened within {ACQUIRE_TIMEOUT_MS} ms")))
            }
            Err(error) => Err(error.into()),
        }
    }

    /// Limits the embedded database to `pages` pages for every append from
    /// now on, as if the disk were that size (`PRAGMA max_page_count`); 0
    /// lifts the limit. For tests of a full database.
    pub fn limit_sqlite_pages(&self, pages: u32) {
        // Once set, a limit is applied on every append, so lifting it is a
        // limit of SQLite's own maximum (connections keep what they were set).
        self.sqlite_page_limit.store(if pages == 0 { u32::MAX } else { pages }, Ordering::Relaxed);
    }

    /// Applies the page limit of `limit_sqlite_pages` to a write connection.
    pub(crate) async fn apply_page_limit(&self, connection: &mut AnyConnection) -> Result<(), StoreError> {
        let pages = self.sqlite_page_limit.load(Ordering::Relaxed);
        if self.backend == Backend::Sqlite && pages > 0 {
            let pages = if pages == u32::MAX { SQLITE_PAGES_MAX } else { pages };
            sqlx::query(&format!("PRAGMA max_page_count = {pages}")).execute(&mut *connection).await?;
        }
        Ok(())
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies the migrations of `migrations/` for this backend.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        match self.backend {
            Backend::Sqlite => sqlx::migrate!("../../migrations/sqlite").run(&self.pool).await?,
            Backend::Postgres => sqlx::migrate!("../../migrations/postgres").run(&self.pool).await?,
        }
        Ok(())
    }

    /// The last event's seq and hash (0 and zeros for an empty ledger).
    pub async fn head(&self) -> Result<(Seq, [u8; 32]), StoreError> {
        let mut connection = self.acquire().await?;
        append::read_head(&mut connection).await.map(|head| (head.seq, head.hash))
    }

    /// Up to `limit` events with seq greater than `after`, in seq order.
    pub async fn events_after(&self, after: Seq, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
        if i64::try_from(after).is_err() {
            // No stored seq is past what a 64-bit signed integer holds.
            return Ok(Vec::new());
        }
        let mut connection = self.acquire().await?;
        read_events(&mut connection, after, limit).await
    }

    /// Walks the whole chain: seq continuity, links, hashes and, with keys,
    /// tags. `progress` is told the seq reached after each page.
    pub async fn verify_chain(&self, keys: Option<&KeyRing>, mut progress: impl FnMut(Seq)) -> Result<VerifyReport, StoreError> {
        let mut verifier = ChainVerifier::new(keys);
        loop {
            let (after, _) = verifier.head();
            let page = match self.events_after(after, READ_PAGE_EVENTS_MAX).await {
                Ok(page) => page,
                Err(StoreError::Corrupt { seq, message }) => {
                    // The events before the unreadable row are checked first, so
                    // that an earlier fault is named before this one.
                    let readable = seq.saturating_sub(after).saturating_sub(1);
                    if readable > 0 {
                        for event in &self.events_after(after, readable as i64).await? {
                            if let Err(failure) = verifier.check(event) {
                                return Ok(VerifyReport::from_failure(verifier.head(), failure));
                            }
                        }
                    }
                    let failure = ChainFailure { seq, fault: ChainFault::Unreadable(message) };
                    return Ok(VerifyReport::from_failure(verifier.head(), failure));
                }
                Err(error) => return Err(error),
            };
            if page.is_empty() {
                return Ok(VerifyReport::valid(verifier.head()));
            }
            for event in &page {
                if let Err(failure) = verifier.check(event) {
                    return Ok(VerifyReport::from_failure(verifier.head(), failure));
                }
            }
            progress(verifier.head().0);
        }
    }
}

/// The outcome of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifyReport {
    /// Seq and hash of the last event that verified.
    pub head_seq: Seq,
    pub head_hash: [u8; 32],
    pub failure: Option<ChainFailure>,
}

impl VerifyReport {
    fn valid((head_seq, head_hash): (Seq, [u8; 32])) -> Self {
        VerifyReport { head_seq, head_hash, failure: None }
    }

    fn from_failure((head_seq, head_hash): (Seq, [u8; 32]), failure: ChainFailure) -> Self {
        VerifyReport { head_seq, head_hash, failure: Some(failure) }
    }

    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }
}

/// Up to `limit` events with seq greater than `after`, in seq order, on a
/// given connection (inside a caller's transaction).
///
/// The page comes back from the database as one JSON array (one row rather
/// than thousands: most of the cost of reading rows one by one is in the
/// driver, not the database). Every field stays the exact stored text. If
/// the page cannot be read that way, it is read row by row, which names the
/// first unreadable row.
pub async fn read_events(connection: &mut AnyConnection, after: Seq, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
    let sql = match backend_of(connection) {
        Backend::Sqlite => {
            "SELECT json_group_array(json_array(seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, \
             key_id, tag)) FROM (SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2)"
        }
        Backend::Postgres => {
            "SELECT COALESCE(json_agg(json_build_array(seq, id, recorded_at, actor, event_type, version, payload, prev_hash, \
             hash, key_id, tag) ORDER BY seq), '[]')::text FROM (SELECT * FROM events WHERE seq > $1 ORDER BY seq LIMIT $2) AS page"
        }
    };
    let page: Result<String, sqlx::Error> =
        sqlx::query_scalar(sql).bind(seq_to_i64(after)).bind(limit).fetch_one(&mut *connection).await;
    let parsed = page.ok().and_then(|text| serde_json::from_str::<Vec<StoredEvent>>(&text).ok());
    let Some(mut stored) = parsed else { return read_events_by_row(connection, after, limit).await };
    // SQLite aggregates in the subquery's order; sorting costs nothing then.
    stored.sort_by_key(|event| event.0);
    stored.into_iter().map(StoredEvent::into_record).collect()
}

/// An event row as stored: seq, id, recorded_at, actor, event_type, version,
/// payload, prev_hash, hash, key_id, tag.
#[derive(Deserialize)]
struct StoredEvent(i64, String, String, String, String, i64, String, String, String, String, String);

impl StoredEvent {
    fn into_record(self) -> Result<EventRecord, StoreError> {
        let StoredEvent(seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag) = self;
        let seq = Seq::try_from(seq).map_err(|_| StoreError::Corrupt { seq: 0, message: "negative seq".to_string() })?;
        let corrupt = |message: &str| StoreError::Corrupt { seq, message: message.to_string() };
        Ok(EventRecord {
            seq,
            id: uuid::Uuid::parse_str(&id).map_err(|_| corrupt("id is not a UUID"))?,
            recorded_at,
            actor,
            event_type,
            version: u32::try_from(version).map_err(|_| corrupt("version out of range"))?,
            payload,
            prev_hash: hex_field(seq, "prev_hash", &prev_hash)?,
            hash: hex_field(seq, "hash", &hash)?,
            key_id,
            tag: hex_field(seq, "tag", &tag)?,
        })
    }
}

async fn read_events_by_row(connection: &mut AnyConnection, after: Seq, limit: i64) -> Result<Vec<EventRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag \
         FROM events WHERE seq > $1 ORDER BY seq LIMIT $2",
    )
    .bind(seq_to_i64(after))
    .bind(limit)
    .fetch_all(&mut *connection)
    .await?;
    rows.iter().map(record_from_row).collect()
}

/// Takes the chain lock inside the caller's transaction: no event can be
/// appended until it ends.
///
/// Returns how many transactions have taken the lock, this one included: a
/// writer that finds the count one above its own last one knows that no
/// other writer has appended since.
pub async fn lock_chain(connection: &mut AnyConnection) -> Result<i64, StoreError> {
    let appends = sqlx::query_scalar("UPDATE chain_lock SET appends = appends + 1 WHERE id = 1 RETURNING appends")
        .fetch_one(&mut *connection)
        .await?;
    Ok(appends)
}

/// Makes the caller's fresh transaction see one snapshot throughout (SQLite
/// transactions already do once they first read).
pub async fn snapshot(connection: &mut AnyConnection, backend: Backend) -> Result<(), StoreError> {
    if backend == Backend::Postgres {
        sqlx::query("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ").execute(&mut *connection).await?;
    }
    Ok(())
}

/// The backend a connection talks to.
pub fn backend_of(connection: &AnyConnection) -> Backend {
    if connection.backend_name().eq_ignore_ascii_case("postgresql") { Backend::Postgres } else { Backend::Sqlite }
}

/// `(?, ?), (?, ?)`: the placeholders of a multi-row statement on SQLite
/// (anonymous: looking up numbered ones costs time per parameter).
/// PostgreSQL takes multi-row writes column by column (`one_statement`).
pub fn values_list(rows: usize, columns: usize) -> String {
    let row = format!("({})", vec!["?"; columns].join(", "));
    vec![row; rows].join(", ")
}

pub(crate) fn seq_to_i64(seq: Seq) -> i64 {
    i64::try_from(seq).expect("seq fits in i64")
}

fn hex_field(seq: Seq, name: &str, text: &str) -> Result<[u8; 32], StoreError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes)
        .map_err(|_| StoreError::Corrupt { seq, message: format!("{name} is not 64 hex characters") })?;
    Ok(bytes)
}

/// Reads an event row, checking every field's form right after reading.
pub(crate) fn record_from_row(row: &sqlx::any::AnyRow) -> Result<EventRecord, StoreError> {
    let seq_value: i64 = row.try_get("seq")?;
    let seq = Seq::try_from(seq_value).map_err(|_| StoreError::Corrupt { seq: 0, message: "negative seq".to_string() })?;
    let corrupt = |message: String| StoreError::Corrupt { seq, message };
    let id_text: String = row.try_get("id")?;
    let version: i64 = row.try_get("version")?;
    Ok(EventRecord {
        seq,
        id: uuid::Uuid::parse_str(&id_text).map_err(|_| corrupt("id is not a UUID".to_string()))?,
        recorded_at: row.try_get("recorded_at")?,
        actor: row.try_get("actor")?,
        event_type: row.try_get("event_type")?,
        version: u32::try_from(version).map_err(|_| corrupt("version out of range".to_string()))?,
        payload: row.try_get("payload")?,
        prev_hash: hex_field(seq, "prev_hash", &row.try_get::<String, _>("prev_hash")?)?,
        hash: hex_field(seq, "hash", &row.try_get::<String, _>("hash")?)?,
        key_id: row.try_get("key_id")?,
        tag: hex_field(seq, "tag", &row.try_get::<String, _>("tag")?)?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_values_list_has_a_placeholder_per_column_of_every_row() {
        assert_eq!(values_list(2, 3), "(?, ?, ?), (?, ?, ?)");
        assert_eq!(values_list(1, 1), "(?)");
    }
}
