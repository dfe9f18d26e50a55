//! The append path: many units of work in one transaction (group commit).
//! Each unit is all or nothing; a refused unit leaves no trace.

use std::collections::BTreeSet;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::pool::PoolConnection;
use sqlx::{Any, AnyConnection, ConnectOptions, Connection, Row};
use uuid::Uuid;

use super::one_statement::{self, Cell, Insert, Lock};
use super::{Backend, Projector, StoreError, record_from_row, seq_to_i64};
use crate::chain::{EventRecord, GENESIS_PREV_HASH, HashedFields, event_hash};
use crate::domain::payment_lists::PAYMENT_LIST_ROWS_MAX;
use crate::domain::payment_lists::PaymentListEvent;
use crate::domain::{Command, Decision, DomainError, EventBody, FinalPaymentLists, ReversalTarget, Seq, State, decide_events};
use crate::keys::KeyRing;

/// Events written per INSERT statement on SQLite (PostgreSQL takes them
/// all in one statement, one parameter per column).
pub const INSERT_ROWS_MAX: usize = 400;
/// Commands one unit (one request) may carry.
pub const UNIT_COMMANDS_MAX: usize = 1_000;
/// Events one unit made from a file (a payment list's confirmation: one
/// event per delivered row, the confirmation and the closing) may record.
pub const FILE_UNIT_EVENTS_MAX: usize = PAYMENT_LIST_ROWS_MAX + 2;
/// How long an append's transaction may sit idle on PostgreSQL, waiting for
/// its next statement, before the server rolls it back and ends the
/// session. Between its statements a batch decides (a 50,000-row file takes
/// seconds); a transaction left idle this long was lost by its writer, and
/// would otherwise hold the chain lock until the server noticed that the
/// connection was gone.
pub const APPEND_IDLE_IN_TRANSACTION_MS: u64 = 60_000;
/// The same once the batch's writes are sent: only its COMMIT follows, at
/// once, so a transaction idle this long has lost its COMMIT.
pub const COMMIT_IDLE_IN_TRANSACTION_MS: u64 = 10_000;
/// How long settling a commit whose answer was lost waits for the chain
/// lock: longer than a transaction whose COMMIT was lost may stay idle, so
/// that the server has ended it, one way or the other, before the wait is
/// over.
pub const SETTLE_LOCK_WAIT_MS: u64 = 15_000;

/// A client's claim on an Idempotency-Key: the key and a hash of its request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IdempotencyClaim {
    pub key: String,
    pub request_hash: String,
}

/// One request's commands, appended all together or not at all.
#[derive(Clone, Debug)]
pub struct AppendUnit {
    pub actor: String,
    pub commands: Vec<Command>,
    pub idempotency: Option<IdempotencyClaim>,
    /// The SHA-256 (hex) of the bearer token the unit came with, if any. The
    /// unit is appended only if that token is on record and not revoked when
    /// its batch is written: the check is part of the append's transaction.
    pub token_hash: Option<String>,
}

/// What a client is told about one appended event.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    pub seq: Seq,
    pub id: Uuid,
    pub hash: String,
    pub recorded_at: String,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UnitOutcome {
    Appended(Vec<Receipt>),
    /// The same Idempotency-Key and request were seen before: the first answer.
    Replayed(Vec<Receipt>),
    /// The Idempotency-Key was used before with a different request.
    IdempotencyConflict,
    /// Command `index` of the unit was refused; nothing of the unit was kept.
    Refused {
        index: usize,
        error: DomainError,
    },
    /// The unit's token was revoked (or is unknown) when its batch was
    /// written; nothing of the unit was kept.
    TokenRevoked,
    /// Every command of the unit asked for what the ledger already holds
    /// (a confirmation file sent again): nothing was recorded, and nothing
    /// was refused.
    Unchanged,
}

/// Runs statements separated by semicolons in one round trip (PostgreSQL's
/// simple query protocol: a query without arguments is sent unprepared).
async fn execute_script(connection: &mut AnyConnection, script: &str) -> Result<(), StoreError> {
    sqlx::Executor::execute(connection, script).await?;
    Ok(())
}

pub(crate) struct Head {
    pub seq: Seq,
    pub hash: [u8; 32],
    pub recorded_at: String,
}

pub(crate) async fn read_head(connection: &mut AnyConnection) -> Result<Head, StoreError> {
    let row = sqlx::query("SELECT seq, hash, recorded_at FROM events ORDER BY seq DESC LIMIT 1")
        .fetch_optional(&mut *connection)
        .await?;
    let Some(row) = row else {
        return Ok(Head { seq: 0, hash: GENESIS_PREV_HASH, recorded_at: String::new() });
    };
    let seq = Seq::try_from(row.try_get::<i64, _>("seq")?).unwrap_or_default();
    let hash = super::hex_field(seq, "hash", &row.try_get::<String, _>("hash")?)?;
    Ok(Head { seq, hash, recorded_at: row.try_get("recorded_at")? })
}

/// Appends units of work. Keeps the decision state and the head in memory
/// between batches and reloads them whenever another writer took the chain
/// lock in between.
pub struct Appender {
    store: super::Store,
    keys: Arc<KeyRing>,
    projector: Arc<dyn Projector>,
    last: Option<LastCommit>,
    /// The closed and cancelled lists of committed batches. Nothing changes
    /// a final list, so a reload of the state takes them from here instead
    /// of reading their rows again.
    final_lists: FinalPaymentLists,
}

/// What this appender's last committed batch left behind.
struct LastCommit {
    /// The chain lock's count when the batch took it.
    appends: i64,
    head: Head,
    state: State,
}

/// Everything a batch has decided and not yet written.
struct Batch {
    state: State,
    head: Head,
    events: Vec<(EventRecord, EventBody)>,
    idempotency: Vec<(String, IdempotencyClaim, Vec<Receipt>)>,
}

impl Appender {
    pub fn new(store: super::Store, keys: Arc<KeyRing>, projector: Arc<dyn Projector>) -> Self {
        Appender { store, keys, projector, last: None, final_lists: FinalPaymentLists::new() }
    }

    pub fn keys(&self) -> &KeyRing {
        &self.keys
    }

    /// Appends the units in one transaction, in order. A refused unit does
    /// not stop the others. A database error fails the whole batch.
    pub async fn append(&mut self, units: &[AppendUnit]) -> Result<Vec<UnitOutcome>, StoreError> {
        if self.store.backend() == Backend::Postgres {
            if let Some(last) = self.last.take() {
                if let Some(outcomes) = self.append_if_alone(units, last).await? {
                    return Ok(outcomes);
                }
            }
        }
        self.append_under_lock(units).await
    }

    /// Decides on the state this appender's last batch left, then writes in
    /// one statement that takes the chain lock only if no other writer took
    /// it since and every unit's token is still valid (PostgreSQL): one
    /// round trip for BEGIN, lock, writes and COMMIT. Every read before it
    /// (idempotency records, reversed events, reach rows) is then known to
    /// have seen the chain as this appender left it. `None`: another writer
    /// came in between, or a token was revoked, and nothing was written; the
    /// caller decides again under the lock.
    async fn append_if_alone(&mut self, units: &[AppendUnit], last: LastCommit) -> Result<Option<Vec<UnitOutcome>>, StoreError> {
        let mut connection = WriteConnection::new(self.store.acquire().await?);
        let mut batch = Batch { state: last.state, head: last.head, events: Vec::new(), idempotency: Vec::new() };
        let mut outcomes = Vec::with_capacity(units.len());
        for unit in units {
            outcomes.push(self.decide_unit(&mut connection, &mut batch, unit).await?);
        }
        let tokens = tokens_json(units.iter());
        if batch.events.is_empty() {
            // Nothing to write: the answers stand if the state was current
            // and every token still valid.
            let sql = format!("SELECT appends FROM chain_lock WHERE id = 1 AND {}", one_statement::tokens_valid(1));
            let appends: Option<i64> = sqlx::query_scalar(&sql).bind(&tokens).fetch_optional(&mut *connection).await?;
            connection.finish();
            if appends != Some(last.appends) {
                return Ok(None);
            }
            self.last = Some(LastCommit { appends: last.appends, head: batch.head, state: batch.state });
            return Ok(Some(outcomes));
        }
        let mut inserts = chain_inserts(&batch)?;
        inserts.extend(self.projector.inserts(&mut connection, &batch.events).await?);
        let sql = one_statement::statement(&inserts, Lock::IfCountIs);
        let query = one_statement::bind_all(sqlx::query_scalar(&sql).bind(last.appends).bind(&tokens), &inserts);
        // All rows, not the first: the statement commits after its row is
        // sent, and only reading on to the end of the answer shows whether
        // the commit succeeded.
        let written: Option<i64> = match query.fetch_all(&mut *connection).await {
            Ok(written) => written.first().copied(),
            // The statement commits itself: if the connection was lost on
            // the way, it may have been committed all the same.
            Err(error) if super::is_connection_lost(&error) => {
                connection.close().await;
                self.settle_failed_commit(&batch.head, StoreError::from(error)).await?;
                return Ok(Some(outcomes));
            }
            Err(error) => return Err(conflict_or_database(error)),
        };
        connection.finish();
        let Some(appends) = written else { return Ok(None) };
        self.note_final_lists(&batch);
        self.last = Some(LastCommit { appends, head: batch.head, state: batch.state });
        Ok(Some(outcomes))
    }

    /// Takes the chain lock in a transaction, reloads the head and state if
    /// another writer appended since this appender's last batch, decides and
    /// writes.
    ///
    /// The transaction is begun and committed by plain statements, so that
    /// a COMMIT that answers success really ended a transaction (SQLite
    /// refuses a COMMIT outside one). After any error the connection is
    /// closed, never returned to the pool: SQLite may have rolled the
    /// transaction back itself (a full database does), and a connection
    /// whose state is in doubt must not carry the next batch.
    async fn append_under_lock(&mut self, units: &[AppendUnit]) -> Result<Vec<UnitOutcome>, StoreError> {
        // Taken, not borrowed: if anything below fails, nothing of this batch
        // stays in memory and the next batch reloads from the database.
        let last = self.last.take();
        let mut connection = WriteConnection::new(self.store.acquire().await?);
        self.store.apply_page_limit(&mut connection).await?;
        match self.store.backend() {
            Backend::Sqlite => {
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *connection).await?;
            }
            Backend::Postgres => {
                // One round trip for both.
                let begin = format!("BEGIN; SET LOCAL idle_in_transaction_session_timeout = {APPEND_IDLE_IN_TRANSACTION_MS}");
                execute_script(&mut connection, &begin).await?;
            }
        }
        let (appends, batch, outcomes, reloaded) = match self.decide_and_write(&mut connection, units, last).await {
            Ok(written) => written,
            Err(error) => {
                // Best effort: the connection is closed either way.
                let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
                return Err(error);
            }
        };
        if let Err(error) = sqlx::query("COMMIT").execute(&mut *connection).await {
            let error = conflict_or_database(error);
            let _ = sqlx::query("ROLLBACK").execute(&mut *connection).await;
            connection.close().await;
            if !batch.events.is_empty() {
                self.settle_failed_commit(&batch.head, error).await?;
            }
            return Ok(outcomes);
        }
        connection.finish();
        if reloaded {
            self.final_lists = batch.state.final_payment_lists();
        } else {
            self.note_final_lists(&batch);
        }
        self.last = Some(LastCommit { appends, head: batch.head, state: batch.state });
        Ok(outcomes)
    }

    /// Keeps the lists a committed batch closed or cancelled.
    fn note_final_lists(&mut self, batch: &Batch) {
        for (_, body) in &batch.events {
            if let EventBody::PaymentList(event @ (PaymentListEvent::Closed(_) | PaymentListEvent::Cancelled(_))) = body {
                if let Some(list) = batch.state.payment_lists.get(&event.list()) {
                    self.final_lists.insert(event.list(), list.clone());
                }
            }
        }
    }

    /// The body of `append_under_lock`, inside its transaction: the chain
    /// lock's count, the batch decided and written, the outcomes, and
    /// whether the state was reloaded.
    async fn decide_and_write(
        &self,
        connection: &mut AnyConnection,
        units: &[AppendUnit],
        last: Option<LastCommit>,
    ) -> Result<(i64, Batch, Vec<UnitOutcome>, bool), StoreError> {
        // Queue behind any other writer, on this server or another.
        let appends = super::lock_chain(connection).await?;
        let (head, state, reloaded) = match last {
            Some(last) if last.appends + 1 == appends => (last.head, last.state, false),
            _ => {
                let head = read_head(connection).await?;
                let mut state = self.projector.load_state(connection, &self.final_lists).await?;
                state.head_seq = head.seq;
                (head, state, true)
            }
        };
        let mut batch = Batch { state, head, events: Vec::new(), idempotency: Vec::new() };
        let valid_tokens = valid_tokens(connection, units).await?;
        let mut outcomes = Vec::with_capacity(units.len());
        for unit in units {
            let outcome = match &unit.token_hash {
                Some(token_hash) if !valid_tokens.contains(token_hash) => UnitOutcome::TokenRevoked,
                _ => self.decide_unit(connection, &mut batch, unit).await?,
            };
            outcomes.push(outcome);
        }
        if !batch.events.is_empty() {
            match self.store.backend() {
                Backend::Postgres => {
                    let mut inserts = chain_inserts(&batch)?;
                    inserts.extend(self.projector.inserts(connection, &batch.events).await?);
                    let lock = Lock::HeldUntilCommit { idle_ms: COMMIT_IDLE_IN_TRANSACTION_MS };
                    one_statement::write_with(connection, &inserts, lock).await.map_err(conflict_or_database)?;
                }
                Backend::Sqlite => {
                    insert_events(connection, &batch.events).await?;
                    self.projector.apply(connection, &batch.events).await?;
                    insert_idempotency(connection, &batch.idempotency).await?;
                }
            }
        }
        Ok((appends, batch, outcomes, reloaded))
    }

    /// After a commit that did not answer success: asks the database, on a
    /// new connection, whether the batch's last event is stored with its
    /// hash. Stored: the batch was committed after all (`Ok`). Not stored:
    /// it was not, and the commit's error stands. The database cannot be
    /// asked, or the batch's transaction is still open when the wait below
    /// ends: the outcome is unknown. The connection is opened for the
    /// question, not taken from the pool, whose other connections may have
    /// been lost with the first.
    ///
    /// When PostgreSQL's answer was lost with the connection, the question
    /// is asked under the chain lock, taken the way every append takes it
    /// (its count moves on). A lost answer does not end the batch's
    /// transaction on the server: its COMMIT, or the whole one statement,
    /// may still be on its way. Taking the lock waits for a transaction that
    /// holds it to end, committed or rolled back; and a one statement that
    /// arrives after the question was answered finds the count moved on and
    /// writes nothing. Either way the answer stays true. An error the server
    /// answered ended its transaction, and SQLite's commit is over when its
    /// call returns: for those a plain read tells.
    async fn settle_failed_commit(&self, head: &Head, error: StoreError) -> Result<(), StoreError> {
        let under_lock = self.store.backend() == Backend::Postgres && matches!(error, StoreError::Unreachable(_));
        let stored = async {
            let mut connection = self.store.pool().connect_options().connect().await?;
            let asked = async {
                if under_lock {
                    execute_script(&mut connection, &format!("BEGIN; SET LOCAL lock_timeout = {SETTLE_LOCK_WAIT_MS}")).await?;
                    super::lock_chain(&mut connection).await?;
                }
                let hash: Option<String> = sqlx::query_scalar("SELECT hash FROM events WHERE seq = $1")
                    .bind(seq_to_i64(head.seq))
                    .fetch_optional(&mut connection)
                    .await?;
                if under_lock {
                    sqlx::query("COMMIT").execute(&mut connection).await?;
                }
                Ok::<_, StoreError>(hash)
            }
            .await;
            let _ = connection.close().await;
            asked
        };
        match stored.await {
            Ok(Some(hash)) if hash == hex::encode(head.hash) => {
                tracing::warn!(error = %error, seq = head.seq, "the commit answered an error but the batch is stored");
                Ok(())
            }
            Ok(_) => Err(error),
            Err(StoreError::Busy(_)) => Err(StoreError::OutcomeUnknown(format!(
                "{error}; after {SETTLE_LOCK_WAIT_MS} ms the transaction that wrote seq {} may still be open on the \
                 database, so whether it was committed cannot be known yet",
                head.seq
            ))),
            Err(asking) => Err(StoreError::OutcomeUnknown(format!(
                "{error}; the database could not be asked afterwards whether seq {} was committed: {asking}",
                head.seq
            ))),
        }
    }

    async fn decide_unit(
        &self,
        connection: &mut AnyConnection,
        batch: &mut Batch,
        unit: &AppendUnit,
    ) -> Result<UnitOutcome, StoreError> {
        if let Some(claim) = &unit.idempotency {
            if let Some(outcome) = find_idempotent_answer(connection, batch, &unit.actor, claim).await? {
                return Ok(outcome);
            }
        }
        let first_new = batch.events.len();
        let saved_state = (unit.commands.len() > 1).then(|| batch.state.clone());
        let saved_head = (batch.head.seq, batch.head.hash, batch.head.recorded_at.clone());
        let today = chrono::Utc::now().date_naive();
        for (index, command) in unit.commands.iter().enumerate() {
            let target = match command.reversal_seq() {
                Some(seq) => Some(find_target(connection, batch, seq).await?),
                None => None,
            };
            let decision = match command.claimed_actor() {
                Some(claimed) if claimed != unit.actor => Err(DomainError::invalid(
                    "by",
                    "a payment list command is made by the caller: give the token's name".to_string(),
                )),
                _ => decide_events(&batch.state, command, target.as_ref(), today),
            };
            match decision {
                Ok(Decision::Record(bodies)) => {
                    assert!(bodies.len() <= FILE_UNIT_EVENTS_MAX, "a decision records at most FILE_UNIT_EVENTS_MAX events");
                    for body in bodies {
                        self.push_event(batch, &unit.actor, body);
                    }
                }
                Ok(Decision::NothingToDo) => {}
                Err(error) => {
                    batch.events.truncate(first_new);
                    if let Some(saved_state) = saved_state {
                        batch.state = saved_state;
                    }
                    (batch.head.seq, batch.head.hash, batch.head.recorded_at) = saved_head;
                    return Ok(UnitOutcome::Refused { index, error });
                }
            }
        }
        if batch.events.len() == first_new {
            return Ok(UnitOutcome::Unchanged);
        }
        let receipts: Vec<Receipt> = batch.events[first_new..].iter().map(|(record, _)| receipt_of(record)).collect();
        if let Some(claim) = &unit.idempotency {
            batch.idempotency.push((unit.actor.clone(), claim.clone(), receipts.clone()));
        }
        Ok(UnitOutcome::Appended(receipts))
    }

    /// Chains, hashes and tags a decided event and folds it into the state.
    fn push_event(&self, batch: &mut Batch, actor: &str, body: EventBody) {
        let seq = batch.head.seq + 1;
        // Recorded times never go backwards along the chain, whatever the clock does.
        let now = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%S%.6fZ").to_string();
        let recorded_at = if now < batch.head.recorded_at { batch.head.recorded_at.clone() } else { now };
        let payload = body.payload_json();
        let id = Uuid::now_v7();
        let fields = HashedFields {
            seq,
            id,
            recorded_at: &recorded_at,
            actor,
            event_type: body.event_type(),
            version: body.version(),
            payload: &payload,
            prev_hash: &batch.head.hash,
        };
        let hash = event_hash(&fields);
        let (key_id, tag) = self.keys.tag(&hash);
        let record = EventRecord {
            seq,
            id,
            recorded_at: recorded_at.clone(),
            actor: actor.to_string(),
            event_type: body.event_type().to_string(),
            version: body.version(),
            payload,
            prev_hash: batch.head.hash,
            hash,
            key_id,
            tag,
        };
        batch.state.apply(seq, &body);
        batch.head = Head { seq, hash, recorded_at };
        batch.events.push((record, body));
    }
}

/// A connection an append writes on. Unless `finish` is called once its
/// work ended cleanly, it is closed when dropped instead of going back to
/// the pool: after an error inside a transaction (or a batch abandoned half
/// way), what the connection and the driver believe about its transaction
/// cannot be trusted.
struct WriteConnection {
    connection: Option<PoolConnection<Any>>,
}

impl WriteConnection {
    fn new(connection: PoolConnection<Any>) -> Self {
        WriteConnection { connection: Some(connection) }
    }

    /// The work ended cleanly: the connection goes back to the pool.
    fn finish(mut self) {
        drop(self.connection.take());
    }

    /// Closes the connection now (ending its session on the server).
    async fn close(mut self) {
        if let Some(connection) = self.connection.take() {
            let _ = connection.close().await;
        }
    }
}

impl Drop for WriteConnection {
    fn drop(&mut self) {
        if let Some(connection) = self.connection.as_mut() {
            connection.close_on_drop();
        }
    }
}

impl std::ops::Deref for WriteConnection {
    type Target = AnyConnection;

    fn deref(&self) -> &AnyConnection {
        self.connection.as_ref().expect("a write connection is used only before it is finished")
    }
}

impl std::ops::DerefMut for WriteConnection {
    fn deref_mut(&mut self) -> &mut AnyConnection {
        self.connection.as_mut().expect("a write connection is used only before it is finished")
    }
}

/// The distinct tokens of `units` as a JSON array.
fn tokens_json<'u>(units: impl Iterator<Item = &'u AppendUnit>) -> String {
    let tokens: BTreeSet<&str> = units.filter_map(|unit| unit.token_hash.as_deref()).collect();
    serde_json::to_string(&tokens).expect("strings serialize")
}

/// Which tokens of `units` are on record and not revoked.
async fn valid_tokens(connection: &mut AnyConnection, units: &[AppendUnit]) -> Result<BTreeSet<String>, StoreError> {
    if units.iter().all(|unit| unit.token_hash.is_none()) {
        return Ok(BTreeSet::new());
    }
    let sql = match super::backend_of(connection) {
        Backend::Sqlite => {
            "SELECT token_hash FROM tokens WHERE revoked_at IS NULL AND token_hash IN (SELECT value FROM json_each($1))"
        }
        Backend::Postgres => {
            "SELECT token_hash FROM tokens WHERE revoked_at IS NULL \
             AND token_hash IN (SELECT json_array_elements_text($1::json))"
        }
    };
    let valid: Vec<String> = sqlx::query_scalar(sql).bind(tokens_json(units.iter())).fetch_all(&mut *connection).await?;
    Ok(valid.into_iter().collect())
}

fn receipt_of(record: &EventRecord) -> Receipt {
    Receipt { seq: record.seq, id: record.id, hash: hex::encode(record.hash), recorded_at: record.recorded_at.clone() }
}

/// A unique violation on commit means another writer took the position.
fn conflict_or_database(error: sqlx::Error) -> StoreError {
    match &error {
        sqlx::Error::Database(database_error) if database_error.is_unique_violation() => StoreError::Conflict,
        _ => StoreError::from(error),
    }
}

async fn find_idempotent_answer(
    connection: &mut AnyConnection,
    batch: &Batch,
    actor: &str,
    claim: &IdempotencyClaim,
) -> Result<Option<UnitOutcome>, StoreError> {
    let pending = batch
        .idempotency
        .iter()
        .find(|(pending_actor, pending_claim, _)| pending_actor == actor && pending_claim.key == claim.key);
    let (request_hash, receipts) = match pending {
        Some((_, pending_claim, receipts)) => (pending_claim.request_hash.clone(), receipts.clone()),
        None => {
            let row = sqlx::query("SELECT request_hash, receipts FROM idempotency WHERE actor = $1 AND key = $2")
                .bind(actor)
                .bind(&claim.key)
                .fetch_optional(&mut *connection)
                .await?;
            let Some(row) = row else { return Ok(None) };
            let receipts_text: String = row.try_get("receipts")?;
            let receipts = serde_json::from_str(&receipts_text)
                .map_err(|error| StoreError::Corrupt { seq: 0, message: format!("idempotency record: {error}") })?;
            (row.try_get("request_hash")?, receipts)
        }
    };
    if request_hash == claim.request_hash {
        Ok(Some(UnitOutcome::Replayed(receipts)))
    } else {
        Ok(Some(UnitOutcome::IdempotencyConflict))
    }
}

async fn find_target(connection: &mut AnyConnection, batch: &Batch, seq: Seq) -> Result<ReversalTarget, StoreError> {
    if let Some((_, body)) = batch.events.iter().find(|(record, _)| record.seq == seq) {
        return Ok(ReversalTarget::Found(Box::new(body.clone())));
    }
    if seq == 0 || seq > batch.head.seq {
        return Ok(ReversalTarget::Missing);
    }
    let row = sqlx::query(
        "SELECT seq, id, recorded_at, actor, event_type, version, payload, prev_hash, hash, key_id, tag FROM events WHERE seq = $1",
    )
    .bind(seq_to_i64(seq))
    .fetch_optional(&mut *connection)
    .await?;
    let Some(row) = row else { return Ok(ReversalTarget::Missing) };
    let record = record_from_row(&row)?;
    let body = EventBody::parse(&record.event_type, record.version, &record.payload)
        .map_err(|error| StoreError::Corrupt { seq, message: error.to_string() })?;
    Ok(ReversalTarget::Found(Box::new(body)))
}

async fn insert_events(connection: &mut AnyConnection, events: &[(EventRecord, EventBody)]) -> Result<(), StoreError> {
    for chunk in events.chunks(INSERT_ROWS_MAX) {
        let sql = format!(
            "INSERT INTO events ({}) VALUES {}",
            EVENT_COLUMNS.join(", "),
            super::values_list(chunk.len(), EVENT_COLUMNS.len())
        );
        let mut query = sqlx::query(&sql);
        for (record, _) in chunk {
            let row = EventRow::of(record);
            query = query
                .bind(row.seq)
                .bind(row.id)
                .bind(row.recorded_at)
                .bind(row.actor)
                .bind(row.event_type)
                .bind(row.version)
                .bind(row.payload)
                .bind(row.prev_hash)
                .bind(row.hash)
                .bind(row.key_id)
                .bind(row.tag);
        }
        query.execute(&mut *connection).await.map_err(conflict_or_database)?;
    }
    Ok(())
}

const EVENT_COLUMNS: [&str; 11] =
    ["seq", "id", "recorded_at", "actor", "event_type", "version", "payload", "prev_hash", "hash", "key_id", "tag"];

/// The batch's events and idempotency records as inserts for the append's
/// one statement (PostgreSQL).
fn chain_inserts(batch: &Batch) -> Result<Vec<Insert>, sqlx::Error> {
    let mut events = Insert::new("events", &EVENT_COLUMNS, String::new());
    for (record, _) in &batch.events {
        events.push_row(EventRow::of(record).cells())?;
    }
    let mut idempotency = Insert::new("idempotency", &IDEMPOTENCY_COLUMNS, String::new());
    for record in &batch.idempotency {
        idempotency.push_row(IdempotencyRow::of(record).cells())?;
    }
    Ok(vec![events, idempotency])
}

/// An event as its row in the events table.
struct EventRow<'r> {
    seq: i64,
    id: String,
    recorded_at: &'r str,
    actor: &'r str,
    event_type: &'r str,
    version: i64,
    payload: &'r str,
    prev_hash: String,
    hash: String,
    key_id: &'r str,
    tag: String,
}

impl<'r> EventRow<'r> {
    fn of(record: &'r EventRecord) -> Self {
        EventRow {
            seq: seq_to_i64(record.seq),
            id: record.id.to_string(),
            recorded_at: &record.recorded_at,
            actor: &record.actor,
            event_type: &record.event_type,
            version: i64::from(record.version),
            payload: &record.payload,
            prev_hash: hex::encode(record.prev_hash),
            hash: hex::encode(record.hash),
            key_id: &record.key_id,
            tag: hex::encode(record.tag),
        }
    }

    /// The row's cells in the order of `EVENT_COLUMNS`.
    fn cells(&self) -> [Cell<'_>; 11] {
        [
            Cell::Int(self.seq),
            Cell::Text(&self.id),
            Cell::Text(self.recorded_at),
            Cell::Text(self.actor),
            Cell::Text(self.event_type),
            Cell::Int(self.version),
            Cell::Text(self.payload),
            Cell::Text(&self.prev_hash),
            Cell::Text(&self.hash),
            Cell::Text(self.key_id),
            Cell::Text(&self.tag),
        ]
    }
}

async fn insert_idempotency(
    connection: &mut AnyConnection,
    records: &[(String, IdempotencyClaim, Vec<Receipt>)],
) -> Result<(), StoreError> {
    for record in records {
        let row = IdempotencyRow::of(record);
        sqlx::query(&format!("INSERT INTO idempotency ({}) VALUES ($1, $2, $3, $4, $5)", IDEMPOTENCY_COLUMNS.join(", ")))
            .bind(row.actor)
            .bind(row.key)
            .bind(row.request_hash)
            .bind(row.receipts)
            .bind(row.first_seq)
            .execute(&mut *connection)
            .await
            .map_err(conflict_or_database)?;
    }
    Ok(())
}

const IDEMPOTENCY_COLUMNS: [&str; 5] = ["actor", "key", "request_hash", "receipts", "first_seq"];

/// An answer to an Idempotency-Key as its row in the idempotency table.
struct IdempotencyRow<'r> {
    actor: &'r str,
    key: &'r str,
    request_hash: &'r str,
    receipts: String,
    first_seq: i64,
}

impl<'r> IdempotencyRow<'r> {
    fn of((actor, claim, receipts): &'r (String, IdempotencyClaim, Vec<Receipt>)) -> Self {
        IdempotencyRow {
            actor,
            key: &claim.key,
            request_hash: &claim.request_hash,
            receipts: serde_json::to_string(receipts).expect("receipts serialize"),
            first_seq: seq_to_i64(receipts.first().map(|receipt| receipt.seq).unwrap_or_default()),
        }
    }

    /// The row's cells in the order of `IDEMPOTENCY_COLUMNS`.
    fn cells(&self) -> [Cell<'_>; 5] {
        [
            Cell::Text(self.actor),
            Cell::Text(self.key),
            Cell::Text(self.request_hash),
            Cell::Text(&self.receipts),
            Cell::Int(self.first_seq),
        ]
    }
}
