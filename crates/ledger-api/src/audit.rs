//! Independent audit: JSON Lines exports of the chain, the offline verifier
//! of an export, signed checkpoints and Merkle proofs.
//!
//! Everything here returns results; the command line (`cli`) and the HTTP
//! handlers (`http::audit`) only present them. The offline functions
//! (`verify_export`, `verify_proof_document`) need no database and no secret
//! but the HMAC keys an auditor chooses to hold. docs/audit.md says what each
//! check proves and what it does not.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use ed25519_dalek::{SigningKey, VerifyingKey};
use ledger_core::chain::{ChainFailure, ChainFault, ChainVerifier, EventRecord, GENESIS_PREV_HASH};
use ledger_core::checkpoint::{self, Checkpoint, CheckpointError, SignedCheckpoint};
use ledger_core::domain::Seq;
use ledger_core::keys::{KeyRing, SecretKey, TagError};
use ledger_core::merkle::{self, Hash, MerkleError, MerkleTree};
use ledger_core::merkle_stream::MerkleRootBuilder;
use ledger_core::note::{self, CheckpointText, SignedNote, VerifierKey};
use ledger_core::store::{READ_PAGE_EVENTS_MAX, Store, StoreError};
use serde::{Deserialize, Serialize};
use sqlx::Row;
use tokio::sync::Mutex;
use utoipa::ToSchema;
use uuid::Uuid;

use crate::config::Ledger;

/// Events read per query when exporting or verifying the stored chain.
pub const EXPORT_PAGE_EVENTS_MAX: i64 = READ_PAGE_EVENTS_MAX;
/// Hash rows (seq, prev_hash, hash, key_id, tag) read per query when the
/// Merkle tree catches up with the chain.
pub const HASH_PAGE_ROWS_MAX: i64 = 50_000;
/// Longest export line the verifier reads, newline excluded. An event comes
/// from one request of at most 2 MiB; escaping can at most double its text.
pub const EXPORT_LINE_BYTES_MAX: usize = 16 * 1024 * 1024;
/// Largest proof or checkpoint file read, in bytes.
pub const PROOF_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Shortest interval between periodic checkpoints.
pub const CHECKPOINT_INTERVAL_SECONDS_MIN: u64 = 1;

/// Why an audit operation could not be carried out. A chain or an export
/// that does not verify is a result (a report or a fault), not an error;
/// only a stored chain that the ledger is asked to sign or prove over is.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("i/o error: {0}")]
    Io(#[from] io::Error),
    #[error("{}: {source}", path.display())]
    File { path: PathBuf, source: io::Error },
    #[error("the stored chain is invalid at seq {}: {}; run `ledger verify`", .0.seq, .0.fault)]
    ChainInvalid(ChainFailure),
    #[error("the ledger holds no events yet: there is nothing to checkpoint")]
    EmptyLedger,
    #[error("a checkpoint of size {tree_size} is already stored with root {stored}, but the chain's root is {computed}")]
    CheckpointDiffers { tree_size: u64, stored: String, computed: String },
    #[error("stored checkpoint of size {tree_size} is unreadable: {message}")]
    CheckpointUnreadable { tree_size: u64, message: String },
    #[error("stored event {seq} has hash {stored}, but the Merkle tree holds another hash for it; restart the server")]
    TreeDisagrees { seq: Seq, stored: String },
    #[error(transparent)]
    Request(#[from] ProofRequestError),
    #[error("{NO_SIGNING_KEY}")]
    NoSigningKey,
}

/// Why checkpoints are not signed when no signing key is configured, and
/// what to do.
pub const NO_SIGNING_KEY: &str = "checkpoint signing is off: no checkpoint signing key is configured; set \
     LEDGER_CHECKPOINT_KEY to 64 hex characters of a key of its own (for example from `openssl rand -hex 32`), \
     never one derived from another key";

/// A proof request that cannot be answered as asked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofRequestError {
    #[error("seq must be 1 or more")]
    SeqZero,
    #[error("event {seq} is not in the tree of size {size}: ask for a size of at least {seq}")]
    SeqBeyondSize { seq: Seq, size: u64 },
    #[error("no event {seq}: the chain holds {events} events")]
    NoSuchEvent { seq: Seq, events: u64 },
    #[error("size {size} is beyond the chain, which holds {events} events")]
    SizeBeyondChain { size: u64, events: u64 },
    #[error("a consistency proof needs 1 <= from <= to; got from {from} and to {to}")]
    BadRange { from: u64, to: u64 },
}

// ---------------------------------------------------------------------------
// Export

/// One page of an export.
#[derive(Debug)]
pub struct ExportPage {
    /// JSON Lines: one event object per line, each line ended by `\n`.
    pub bytes: Vec<u8>,
    pub events: u64,
    pub last_seq: Seq,
}

/// What an export wrote.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSummary {
    pub events: u64,
    /// The seq of the last event written (`after` when none was).
    pub last_seq: Seq,
}

/// Appends one event as an export line: its JSON object, then `\n`.
pub fn write_export_line(output: &mut Vec<u8>, event: &EventRecord) {
    serde_json::to_writer(&mut *output, event).expect("an event record always serializes");
    output.push(b'\n');
}

/// The next page of events with `after < seq <= up_to`, or `None` past `up_to`.
pub async fn export_page(store: &Store, after: Seq, up_to: Seq) -> Result<Option<ExportPage>, AuditError> {
    if after >= up_to {
        return Ok(None);
    }
    let limit = EXPORT_PAGE_EVENTS_MAX.min(i64::try_from(up_to - after).unwrap_or(i64::MAX));
    let mut events = store.events_after(after, limit).await?;
    events.retain(|event| event.seq <= up_to);
    let Some(last_seq) = events.last().map(|event| event.seq) else {
        return Ok(None);
    };
    assert!(last_seq > after, "a page moves past `after`");
    let mut bytes = Vec::with_capacity(events.iter().map(|event| event.payload.len() + 512).sum());
    for event in &events {
        write_export_line(&mut bytes, event);
    }
    Ok(Some(ExportPage { bytes, events: events.len() as u64, last_seq }))
}

/// Writes every event after `after` that exists when the export starts, in
/// seq order, page by page. `progress` is told the seq reached after each page.
pub async fn export_events(
    store: &Store,
    after: Seq,
    output: &mut impl Write,
    mut progress: impl FnMut(Seq),
) -> Result<ExportSummary, AuditError> {
    let (up_to, _) = store.head().await?;
    let mut summary = ExportSummary { events: 0, last_seq: after };
    // Bounded: every page moves `last_seq` forward, and it stops at `up_to`.
    while let Some(page) = export_page(store, summary.last_seq, up_to).await? {
        output.write_all(&page.bytes)?;
        summary.events += page.events;
        summary.last_seq = page.last_seq;
        progress(page.last_seq);
    }
    Ok(summary)
}

/// Exports to `path` through `path.partial`, renamed once complete, so that
/// a file named `path` is never a cut-off export.
pub async fn export_to_file(
    store: &Store,
    after: Seq,
    path: &Path,
    progress: impl FnMut(Seq),
) -> Result<ExportSummary, AuditError> {
    let mut partial_name = path.as_os_str().to_owned();
    partial_name.push(".partial");
    let partial = PathBuf::from(partial_name);
    let file_error = |path: &Path, source| AuditError::File { path: path.to_path_buf(), source };
    let file = std::fs::File::create(&partial).map_err(|source| file_error(&partial, source))?;
    let mut output = io::BufWriter::new(file);
    let result = async {
        let summary = export_events(store, after, &mut output, progress).await?;
        let file = output.into_inner().map_err(|error| error.into_error())?;
        file.sync_all()?;
        Ok::<_, AuditError>(summary)
    }
    .await;
    match result {
        Ok(summary) => {
            std::fs::rename(&partial, path).map_err(|source| file_error(path, source))?;
            Ok(summary)
        }
        Err(error) => {
            let _ = std::fs::remove_file(&partial);
            Err(error)
        }
    }
}

// ---------------------------------------------------------------------------
// Offline verification of an export

/// A signed checkpoint and the key it must verify under: the ledger's JSON
/// form under the hex public key, or a C2SP checkpoint note under the log's
/// vkey (whose name is the origin).
#[derive(Clone, Debug)]
pub enum TrustedCheckpoint {
    Json { checkpoint: SignedCheckpoint, public_key: VerifyingKey },
    Note { note: SignedNote, log_key: VerifierKey, witnesses: WitnessPolicy },
}

/// The witnesses a checkpoint note must be cosigned by: `required` of `keys`.
#[derive(Clone, Debug, Default)]
pub struct WitnessPolicy {
    pub keys: Vec<VerifierKey>,
    pub required: usize,
}

impl WitnessPolicy {
    /// `--witness-key VKEY`... and `--witnesses-required N` (default: all the keys given).
    pub fn parse(keys: &[String], required: Option<usize>) -> anyhow::Result<Self> {
        let keys = keys
            .iter()
            .map(|text| VerifierKey::parse(text.trim()).map_err(|error| anyhow::anyhow!("--witness-key: {error}")))
            .collect::<anyhow::Result<Vec<_>>>()?;
        if keys.iter().any(|key| key.signature_type != note::SIGNATURE_TYPE_COSIGNATURE) {
            anyhow::bail!("--witness-key: a witness key is of type 0x04 (cosignature/v1), as `ledger witness` prints it");
        }
        let required = required.unwrap_or(keys.len());
        if required > keys.len() {
            anyhow::bail!("--witnesses-required {required} is more than the {} witness keys given", keys.len());
        }
        Ok(WitnessPolicy { keys, required })
    }
}

impl TrustedCheckpoint {
    /// Verifies the signature and returns the signed tree size and root.
    /// A checkpoint of size 0 proves nothing and is refused.
    pub fn verify(&self) -> Result<(u64, Hash), CheckpointError> {
        match self {
            TrustedCheckpoint::Json { checkpoint, public_key } => {
                checkpoint.verify(public_key)?;
                Ok((checkpoint.checkpoint.tree_size, checkpoint.checkpoint.root_hash))
            }
            TrustedCheckpoint::Note { note, log_key, witnesses } => {
                let text = note::verify_checkpoint(note, log_key).map_err(CheckpointError::Note)?;
                ledger_core::witness::require_cosignatures(note, &witnesses.keys, witnesses.required)
                    .map_err(CheckpointError::Note)?;
                if text.tree_size == 0 {
                    return Err(CheckpointError::EmptyTree);
                }
                Ok((text.tree_size, text.root_hash))
            }
        }
    }
}

/// What to check an export against, beyond seq continuity, links and hashes.
#[derive(Clone, Debug, Default)]
pub struct ExportCheck {
    /// HMAC keys, current and retired, to check every tag with; when empty,
    /// tags are not checked.
    pub hmac_keys: Vec<SecretKey>,
    /// A checkpoint the export must match: the root of its first
    /// `tree_size` event hashes is the signed root.
    pub checkpoint: Option<TrustedCheckpoint>,
}

/// Why an export does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExportFault {
    #[error("the line is not an event: {0}")]
    Malformed(String),
    #[error("the line is longer than {EXPORT_LINE_BYTES_MAX} bytes")]
    LineTooLong,
    #[error("the last line is not ended by a line feed (0x0a): the file may be cut off")]
    NoLineFeed,
    #[error("the export holds no events: an export starts with the line of seq 1")]
    Empty,
    #[error(
        "the export starts at seq {found}, not 1: verify a full export, or append incremental exports to the full export they continue"
    )]
    DoesNotStartAtOne { found: Seq },
    #[error("{0}")]
    Chain(ChainFault),
    #[error("the checkpoint does not verify: {0}")]
    CheckpointSignature(CheckpointError),
    #[error("the export holds {events} events but the checkpoint covers {tree_size}: events at the end are missing")]
    ShorterThanCheckpoint { events: u64, tree_size: u64 },
    #[error("the root of the first {tree_size} events is {computed}, not the checkpoint's root {signed}")]
    CheckpointRootMismatch { tree_size: u64, computed: String, signed: String },
}

/// Where an export first went wrong: a line (1-based), a seq, or neither
/// when the checkpoint itself is bad.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportFailure {
    pub line: Option<u64>,
    pub seq: Option<Seq>,
    pub fault: ExportFault,
}

impl fmt::Display for ExportFailure {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.seq) {
            (Some(line), Some(seq)) => write!(formatter, "line {line} (seq {seq}): {}", self.fault),
            (Some(line), None) => write!(formatter, "line {line}: {}", self.fault),
            (None, Some(seq)) => write!(formatter, "seq {seq}: {}", self.fault),
            (None, None) => write!(formatter, "{}", self.fault),
        }
    }
}

/// The outcome of verifying an export.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportReport {
    /// Events (lines) that verified.
    pub events: u64,
    /// The last event that verified (0 and zeros when none did).
    pub head_seq: Seq,
    pub head_hash: Hash,
    /// Bytes read.
    pub bytes: u64,
    pub tags_checked: bool,
    /// The size of the checkpoint the export matched, if one was given.
    pub checkpoint_size: Option<u64>,
    pub failure: Option<ExportFailure>,
}

impl ExportReport {
    pub fn is_valid(&self) -> bool {
        self.failure.is_none()
    }
}

/// An export line, read strictly: exactly the fields of [`EventRecord`],
/// hashes as 64 lower-case hex characters.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportLine {
    seq: Seq,
    #[serde(deserialize_with = "hyphenated_lower_case_uuid")]
    id: Uuid,
    recorded_at: String,
    actor: String,
    event_type: String,
    version: u32,
    payload: String,
    #[serde(deserialize_with = "lower_hex_32")]
    prev_hash: Hash,
    #[serde(deserialize_with = "lower_hex_32")]
    hash: Hash,
    key_id: String,
    #[serde(deserialize_with = "lower_hex_32")]
    tag: Hash,
}

impl From<ExportLine> for EventRecord {
    fn from(line: ExportLine) -> Self {
        EventRecord {
            seq: line.seq,
            id: line.id,
            recorded_at: line.recorded_at,
            actor: line.actor,
            event_type: line.event_type,
            version: line.version,
            payload: line.payload,
            prev_hash: line.prev_hash,
            hash: line.hash,
            key_id: line.key_id,
            tag: line.tag,
        }
    }
}

/// The value of each lower-case hex digit; 0xFF for every other byte.
const LOWER_HEX_VALUES: [u8; 256] = {
    let mut values = [0xFF; 256];
    let mut digit = 0;
    while digit < 16 {
        let character = if digit < 10 { b'0' + digit } else { b'a' + digit - 10 };
        values[character as usize] = digit;
        digit += 1;
    }
    values
};

/// Decodes exactly 64 lower-case hex characters. Branch-free per digit:
/// the verifier decodes three hashes per line.
pub fn decode_lower_hex_32(text: &str) -> Option<Hash> {
    let digits = text.as_bytes();
    if digits.len() != 64 {
        return None;
    }
    let mut bytes = [0u8; 32];
    let mut invalid = 0u8;
    for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
        let (high, low) = (LOWER_HEX_VALUES[usize::from(pair[0])], LOWER_HEX_VALUES[usize::from(pair[1])]);
        invalid |= high | low;
        *byte = (high << 4) | low;
    }
    (invalid & 0xF0 == 0).then_some(bytes)
}

fn lower_hex_32<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Hash, D::Error> {
    let text = <&str>::deserialize(deserializer)?;
    decode_lower_hex_32(text).ok_or_else(|| serde::de::Error::custom("a hash must be 64 lower-case hex characters"))
}

/// A UUID only as the ledger writes it: 36 characters, hyphenated, lower-case.
fn hyphenated_lower_case_uuid<'de, D: serde::Deserializer<'de>>(deserializer: D) -> Result<Uuid, D::Error> {
    let text = <&str>::deserialize(deserializer)?;
    let refused = || serde::de::Error::custom("id must be a UUID written hyphenated in lower case (36 characters)");
    let id = Uuid::try_parse(text).map_err(|_| refused())?;
    let canonical = id.hyphenated().encode_lower(&mut Uuid::encode_buffer()).to_string();
    if canonical == text { Ok(id) } else { Err(refused()) }
}

/// A key ring holding only the given HMAC keys, the first as the active one.
fn hmac_key_ring(hmac_keys: &[SecretKey]) -> Option<KeyRing> {
    let (active, retired) = hmac_keys.split_first()?;
    // The chain verifier reads only the HMAC keys; these two are never used.
    let unused = SecretKey::from_bytes([0; 32]);
    Some(KeyRing {
        active_hmac: active.clone(),
        retired_hmac: retired.to_vec(),
        pseudonym: unused,
        checkpoint: None,
        retired_checkpoint: Vec::new(),
    })
}

/// Lines handed to a verifying thread at once, at most.
const BATCH_LINES_MAX: usize = 1_024;
/// Bytes after which a batch is closed (one line may take it past this).
const BATCH_BYTES_MAX: usize = 512 * 1024;
/// Threads verifying batches, at most.
const VERIFY_THREADS_MAX: usize = 4;
/// Batches queued for and from each verifying thread.
const BATCHES_QUEUED_PER_THREAD: usize = 2;

/// Consecutive lines of an export.
struct Batch {
    /// The line number of the first line (1-based).
    first_line: u64,
    bytes: Vec<u8>,
    /// Where each line ends in `bytes` (its newline included).
    line_ends: Vec<usize>,
}

/// A batch verified on its own, as a chain that starts where its first
/// event says it does. The sequencer checks that claim.
struct BatchOutcome {
    /// The first event's seq and prev_hash.
    first: Option<(Seq, Hash)>,
    /// The hashes of the events that verified, in order.
    hashes: Vec<Hash>,
    /// The last event that verified.
    head: Option<(Seq, Hash)>,
    bytes: u64,
    failure: Option<ExportFailure>,
}

/// Parses and verifies a batch's lines (hashes and tags; seq and links
/// within the batch), stopping at the first bad one.
fn verify_batch(batch: &Batch, keys: Option<&KeyRing>) -> BatchOutcome {
    let mut outcome =
        BatchOutcome { first: None, hashes: Vec::with_capacity(batch.line_ends.len()), head: None, bytes: 0, failure: None };
    let mut verifier: Option<ChainVerifier<'_>> = None;
    let mut start = 0;
    for (offset, &end) in batch.line_ends.iter().enumerate() {
        let line_number = batch.first_line + offset as u64;
        let line = &batch.bytes[start..end];
        outcome.bytes = end as u64;
        start = end;
        let (text, line_feed) = match line.strip_suffix(b"\n") {
            Some(text) => (text, true),
            None => (line, false),
        };
        let event: EventRecord = match serde_json::from_slice::<ExportLine>(text) {
            Ok(parsed) => parsed.into(),
            Err(error) => {
                outcome.failure =
                    Some(ExportFailure { line: Some(line_number), seq: None, fault: ExportFault::Malformed(error.to_string()) });
                return outcome;
            }
        };
        if !line_feed {
            outcome.failure =
                Some(ExportFailure { line: Some(line_number), seq: Some(event.seq), fault: ExportFault::NoLineFeed });
            return outcome;
        }
        let verifier = verifier.get_or_insert_with(|| {
            outcome.first = Some((event.seq, event.prev_hash));
            ChainVerifier::resume(keys, event.seq.saturating_sub(1), event.prev_hash)
        });
        if let Err(failure) = verifier.check(&event) {
            outcome.failure =
                Some(ExportFailure { line: Some(line_number), seq: Some(failure.seq), fault: ExportFault::Chain(failure.fault) });
            return outcome;
        }
        outcome.hashes.push(event.hash);
        outcome.head = Some(verifier.head());
    }
    outcome
}

/// Joins the batches' outcomes in order: the links between batches, the
/// Merkle root of the first `tree_size` hashes, the verified head.
struct Sequencer<'check> {
    checkpoint: Option<&'check TrustedCheckpoint>,
    /// The checkpoint's size and root, once its signature verified.
    signed: Option<(u64, Hash)>,
    roots: MerkleRootBuilder,
    head: (Seq, Hash),
    bytes: u64,
}

impl Sequencer<'_> {
    fn check_checkpoint_signature(&mut self) -> Result<(), ExportFailure> {
        let Some(trusted) = self.checkpoint else { return Ok(()) };
        let signature_fault = |error| ExportFailure { line: None, seq: None, fault: ExportFault::CheckpointSignature(error) };
        self.signed = Some(trusted.verify().map_err(signature_fault)?);
        self.compare_root_when_complete(None)
    }

    /// Once the builder holds exactly `tree_size` leaves, its root must be the signed one.
    fn compare_root_when_complete(&self, line: Option<u64>) -> Result<(), ExportFailure> {
        let Some((tree_size, root_hash)) = self.signed else { return Ok(()) };
        if self.roots.len() != tree_size {
            return Ok(());
        }
        let computed = self.roots.root();
        if computed == root_hash {
            return Ok(());
        }
        let fault =
            ExportFault::CheckpointRootMismatch { tree_size, computed: hex::encode(computed), signed: hex::encode(root_hash) };
        Err(ExportFailure { line, seq: line.map(|_| tree_size), fault })
    }

    /// The checks a walk over every line in one thread would make at the
    /// first line of a batch: seq continuity and the link to the head.
    fn check_boundary(&self, first_line: u64, (seq, prev_hash): (Seq, Hash)) -> Result<(), ExportFailure> {
        let (head_seq, head_hash) = self.head;
        let expected = head_seq + 1;
        let fault = if seq != expected && head_seq == 0 {
            ExportFault::DoesNotStartAtOne { found: seq }
        } else if seq != expected {
            ExportFault::Chain(ChainFault::Gap { expected, found: seq })
        } else if prev_hash != head_hash {
            ExportFault::Chain(ChainFault::BrokenLink { previous: head_seq })
        } else {
            return Ok(());
        };
        Err(ExportFailure { line: Some(first_line), seq: Some(expected), fault })
    }

    fn take(&mut self, batch_first_line: u64, outcome: BatchOutcome) -> Result<(), ExportFailure> {
        self.bytes += outcome.bytes;
        if let Some(first) = outcome.first {
            self.check_boundary(batch_first_line, first)?;
        }
        let checkpoint_size = self.signed.map_or(0, |(tree_size, _)| tree_size);
        for (offset, hash) in outcome.hashes.iter().enumerate() {
            if self.roots.len() < checkpoint_size {
                self.roots.push(hash);
                self.compare_root_when_complete(Some(batch_first_line + offset as u64))?;
            }
        }
        if let Some(head) = outcome.head {
            self.head = head;
        }
        outcome.failure.map_or(Ok(()), Err)
    }

    fn finish(&self) -> Result<(), ExportFailure> {
        if self.head.0 == 0 {
            return Err(ExportFailure { line: Some(1), seq: Some(1), fault: ExportFault::Empty });
        }
        let Some((tree_size, _)) = self.signed else { return Ok(()) };
        let events = self.head.0;
        if events < tree_size {
            let fault = ExportFault::ShorterThanCheckpoint { events, tree_size };
            return Err(ExportFailure { line: None, seq: Some(events + 1), fault });
        }
        Ok(())
    }

    fn report(&self, tags_checked: bool, failure: Option<ExportFailure>) -> ExportReport {
        let (head_seq, head_hash) = self.head;
        ExportReport {
            events: head_seq,
            head_seq,
            head_hash,
            bytes: self.bytes,
            tags_checked,
            checkpoint_size: self.signed.map(|(tree_size, _)| tree_size),
            failure,
        }
    }
}

/// Reads up to `BATCH_LINES_MAX` lines (or about `BATCH_BYTES_MAX` bytes).
/// Returns `None` at the end, and the number of a line longer than
/// `EXPORT_LINE_BYTES_MAX`, which ends the reading.
fn read_batch(reader: &mut impl BufRead, first_line: u64) -> io::Result<(Option<Batch>, Option<u64>)> {
    let mut batch =
        Batch { first_line, bytes: Vec::with_capacity(BATCH_BYTES_MAX + 4_096), line_ends: Vec::with_capacity(BATCH_LINES_MAX) };
    let limit = EXPORT_LINE_BYTES_MAX as u64 + 1;
    while batch.line_ends.len() < BATCH_LINES_MAX && batch.bytes.len() < BATCH_BYTES_MAX {
        let start = batch.bytes.len();
        let read = reader.by_ref().take(limit).read_until(b'\n', &mut batch.bytes)?;
        if read == 0 {
            break;
        }
        if read as u64 == limit && batch.bytes.last() != Some(&b'\n') {
            batch.bytes.truncate(start);
            let too_long = first_line + batch.line_ends.len() as u64;
            return Ok((Some(batch).filter(|batch| !batch.line_ends.is_empty()), Some(too_long)));
        }
        batch.line_ends.push(batch.bytes.len());
    }
    Ok((Some(batch).filter(|batch| !batch.line_ends.is_empty()), None))
}

/// Verifies an export, streaming, in bounded memory: a few batches of lines
/// in flight and the O(log n) Merkle state. Checks seq continuity from 1,
/// links and hashes; with `check.hmac_keys` also the tags; with
/// `check.checkpoint` also that the checkpoint verifies and that the root of
/// the export's first `tree_size` event hashes is its root. Batches of lines
/// are parsed and hashed on several threads; the answer is the one a walk
/// over every line in one thread gives. `progress` is told the bytes
/// verified so far, now and then.
pub fn verify_export(mut reader: impl BufRead, check: &ExportCheck, mut progress: impl FnMut(u64)) -> io::Result<ExportReport> {
    let keys = hmac_key_ring(&check.hmac_keys);
    let tags_checked = keys.is_some();
    let mut sequencer = Sequencer {
        checkpoint: check.checkpoint.as_ref(),
        signed: None,
        roots: MerkleRootBuilder::new(),
        head: (0, GENESIS_PREV_HASH),
        bytes: 0,
    };
    if let Err(failure) = sequencer.check_checkpoint_signature() {
        return Ok(sequencer.report(tags_checked, Some(failure)));
    }
    let threads = std::thread::available_parallelism().map_or(1, usize::from).clamp(1, VERIFY_THREADS_MAX);
    let keys = keys.as_ref();
    let failure = std::thread::scope(|scope| {
        let mut lanes = Vec::with_capacity(threads);
        for _ in 0..threads {
            let (to_thread, batches) = std::sync::mpsc::sync_channel::<Batch>(BATCHES_QUEUED_PER_THREAD);
            let (outcomes_sender, outcomes) = std::sync::mpsc::sync_channel::<(u64, BatchOutcome)>(BATCHES_QUEUED_PER_THREAD);
            scope.spawn(move || {
                for batch in batches {
                    if outcomes_sender.send((batch.first_line, verify_batch(&batch, keys))).is_err() {
                        return;
                    }
                }
            });
            lanes.push((to_thread, outcomes));
        }
        let in_flight_max = (threads * BATCHES_QUEUED_PER_THREAD) as u64;
        let (mut sent, mut received, mut next_line) = (0u64, 0u64, 1u64);
        let mut end: Option<Option<u64>> = None;
        // Bounded by the input: every turn sends or takes in one batch.
        loop {
            while end.is_none() && sent - received < in_flight_max {
                let (batch, too_long) = read_batch(&mut reader, next_line)?;
                let at_end = batch.is_none() || too_long.is_some();
                if let Some(batch) = batch {
                    next_line += batch.line_ends.len() as u64;
                    lanes[(sent % threads as u64) as usize].0.send(batch).expect("a verifying thread takes every batch");
                    sent += 1;
                }
                if at_end {
                    end = Some(too_long);
                }
            }
            if received == sent {
                break;
            }
            let (first_line, outcome) =
                lanes[(received % threads as u64) as usize].1.recv().expect("a verifying thread answers every batch");
            received += 1;
            if let Err(failure) = sequencer.take(first_line, outcome) {
                return Ok(Some(failure));
            }
            progress(sequencer.bytes);
        }
        let too_long = end.flatten().map(|line| ExportFailure { line: Some(line), seq: None, fault: ExportFault::LineTooLong });
        Ok::<_, io::Error>(too_long.or_else(|| sequencer.finish().err()))
    })?;
    Ok(sequencer.report(tags_checked, failure))
}

/// Verifies the export in `path` (see [`verify_export`]).
pub fn verify_export_file(path: &Path, check: &ExportCheck, progress: impl FnMut(u64)) -> Result<ExportReport, AuditError> {
    let file_error = |source| AuditError::File { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let reader = io::BufReader::with_capacity(1024 * 1024, file);
    verify_export(reader, check, progress).map_err(file_error)
}

// ---------------------------------------------------------------------------
// Checkpoints

/// The ledger's Ed25519 checkpoint signing key, or `NoSigningKey` when
/// none is configured (it is never derived from another key).
pub fn signing_key(keys: &KeyRing) -> Result<SigningKey, AuditError> {
    let seed = keys.checkpoint.as_ref().ok_or(AuditError::NoSigningKey)?;
    Ok(SigningKey::from_bytes(seed.secret()))
}

/// The public key auditors verify the ledger's checkpoints with.
pub fn public_key(keys: &KeyRing) -> Result<VerifyingKey, AuditError> {
    signing_key(keys).map(|key| key.verifying_key())
}

/// The public key as 64 lower-case hex characters.
pub fn public_key_hex(keys: &KeyRing) -> Result<String, AuditError> {
    public_key(keys).map(|key| checkpoint::format_public_key_hex(&key))
}

/// A public key that signed the ledger's checkpoints before the current
/// one, with the period it signed in.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, ToSchema)]
pub struct RetiredPublicKey {
    /// The Ed25519 public key, 64 lower-case hex characters.
    pub public_key: String,
    /// The key id checkpoints signed with it carry.
    pub key_id: String,
    /// When it began to sign, if known (RFC 3339 UTC).
    pub valid_from: Option<String>,
    /// When it stopped signing (RFC 3339 UTC): a checkpoint under it
    /// created later is not the ledger's.
    pub valid_until: String,
    /// True for a key an older version derived from an HMAC key: whoever
    /// holds that HMAC key could sign with it, so its checkpoints prove no
    /// more than that key's secrecy.
    pub derived_from_hmac_key: bool,
}

/// The retired checkpoint keys: those configured, then each key derived
/// from an HMAC key that signed stored checkpoints (its period: the first
/// and last of them).
pub async fn retired_public_keys(ledger: &Ledger) -> Result<Vec<RetiredPublicKey>, AuditError> {
    let mut retired = Vec::new();
    for key in &ledger.keys.retired_checkpoint {
        let Ok(public_key) = checkpoint::parse_public_key_hex(&key.public_key) else { continue };
        retired.push(RetiredPublicKey {
            public_key: key.public_key.clone(),
            key_id: checkpoint::public_key_id(&public_key),
            valid_from: key.valid_from.clone(),
            valid_until: key.valid_until.clone(),
            derived_from_hmac_key: false,
        });
    }
    let current = public_key(&ledger.keys).ok().map(|key| checkpoint::public_key_id(&key));
    for seed in ledger.keys.derived_checkpoint_seeds() {
        let derived = SigningKey::from_bytes(&seed).verifying_key();
        let key_id = checkpoint::public_key_id(&derived);
        if current.as_deref() == Some(key_id.as_str()) || retired.iter().any(|known| known.key_id == key_id) {
            continue;
        }
        if let Some((first, last)) = signing_period(&ledger.store, &key_id).await? {
            retired.push(RetiredPublicKey {
                public_key: checkpoint::format_public_key_hex(&derived),
                key_id,
                valid_from: Some(first),
                valid_until: last,
                derived_from_hmac_key: true,
            });
        }
    }
    Ok(retired)
}

/// The `created_at` of the first and last stored checkpoints signed under `key_id`.
async fn signing_period(store: &Store, key_id: &str) -> Result<Option<(String, String)>, AuditError> {
    let row = sqlx::query("SELECT MIN(created_at) AS first, MAX(created_at) AS last FROM checkpoints WHERE key_id = $1")
        .bind(key_id)
        .fetch_one(store.pool())
        .await?;
    let first: Option<String> = row.try_get("first")?;
    let last: Option<String> = row.try_get("last")?;
    Ok(first.zip(last))
}

/// The log's note verifier key: its name is the origin.
pub fn vkey(ledger: &Ledger) -> Result<VerifierKey, AuditError> {
    let public_key = public_key(&ledger.keys)?;
    Ok(VerifierKey::new(&ledger.origin, note::SIGNATURE_TYPE_ED25519, public_key)
        .expect("the origin was checked when the ledger opened"))
}

/// A stored checkpoint as a C2SP checkpoint note (origin, size, base64
/// root), signed by the log's note key. Ed25519 is deterministic, so the
/// same checkpoint always gives the same note.
pub fn checkpoint_note(ledger: &Ledger, signed: &SignedCheckpoint) -> Result<SignedNote, AuditError> {
    let key = signing_key(&ledger.keys)?;
    let text = CheckpointText {
        origin: ledger.origin.clone(),
        tree_size: signed.checkpoint.tree_size,
        root_hash: signed.checkpoint.root_hash,
        extensions: Vec::new(),
    };
    let note = note::sign_checkpoint(&text, &key).expect("the origin was checked when the ledger opened");
    assert_eq!(note::verify_checkpoint(&note, &vkey(ledger)?), Ok(text), "a fresh note verifies");
    Ok(note)
}

/// Now, as a checkpoint's `created_at`: RFC 3339 UTC to the second.
pub fn checkpoint_time_now() -> String {
    chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string()
}

/// A checkpoint the ledger holds, and whether this call signed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckpointOutcome {
    pub checkpoint: SignedCheckpoint,
    /// False when a checkpoint of the same size (and root) was already stored.
    pub created: bool,
}

/// Verifies the whole stored chain (seq, links, hashes, tags) while
/// computing the Merkle root of its event hashes, then signs and stores a
/// checkpoint of it. A chain that does not verify is never signed.
pub async fn create_checkpoint(ledger: &Ledger, progress: impl FnMut(Seq)) -> Result<CheckpointOutcome, AuditError> {
    signing_key(&ledger.keys)?;
    let (tree_size, root) = verified_root(&ledger.store, &ledger.keys, progress).await?;
    if tree_size == 0 {
        return Err(AuditError::EmptyLedger);
    }
    sign_and_store(ledger, tree_size, root).await
}

/// Walks the stored chain as `ledger verify` does and returns its size and Merkle root.
async fn verified_root(store: &Store, keys: &KeyRing, mut progress: impl FnMut(Seq)) -> Result<(u64, Hash), AuditError> {
    let (up_to, _) = store.head().await?;
    let mut verifier = ChainVerifier::new(Some(keys));
    let mut roots = MerkleRootBuilder::new();
    // Bounded: every page moves the verified head forward, and it stops at `up_to`.
    while verifier.head().0 < up_to {
        let (after, _) = verifier.head();
        let limit = EXPORT_PAGE_EVENTS_MAX.min(i64::try_from(up_to - after).unwrap_or(i64::MAX));
        let page = match store.events_after(after, limit).await {
            Ok(page) => page,
            Err(StoreError::Corrupt { seq, message }) => {
                return Err(AuditError::ChainInvalid(ChainFailure { seq, fault: ChainFault::Unreadable(message) }));
            }
            Err(error) => return Err(error.into()),
        };
        if page.is_empty() {
            let expected = after + 1;
            return Err(AuditError::ChainInvalid(ChainFailure {
                seq: expected,
                fault: ChainFault::Gap { expected, found: up_to },
            }));
        }
        for event in page.iter().take_while(|event| event.seq <= up_to) {
            verifier.check(event).map_err(AuditError::ChainInvalid)?;
            roots.push(&event.hash);
        }
        progress(verifier.head().0);
    }
    assert_eq!(roots.len(), verifier.head().0, "one leaf per verified event");
    Ok((roots.len(), roots.root()))
}

/// Signs `(tree_size, root, now)` with the ledger's key and stores it, or
/// returns the checkpoint of that size already stored if its root is the same.
pub async fn sign_and_store(ledger: &Ledger, tree_size: u64, root: Hash) -> Result<CheckpointOutcome, AuditError> {
    let key = signing_key(&ledger.keys)?;
    let checkpoint = Checkpoint::new(tree_size, root, checkpoint_time_now()).expect("the current time is well-formed ascii");
    let signed = checkpoint::sign(checkpoint, &key);
    assert_eq!(signed.verify(&key.verifying_key()), Ok(()), "a fresh signature verifies");
    store_checkpoint(&ledger.store, &signed).await
}

/// Stores a signed checkpoint; a checkpoint of the same size is never replaced.
pub async fn store_checkpoint(store: &Store, signed: &SignedCheckpoint) -> Result<CheckpointOutcome, AuditError> {
    let tree_size = i64::try_from(signed.checkpoint.tree_size).expect("a tree size is a seq, which fits in i64");
    let inserted = sqlx::query(
        "INSERT INTO checkpoints (tree_size, root_hash, created_at, key_id, signature) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (tree_size) DO NOTHING",
    )
    .bind(tree_size)
    .bind(hex::encode(signed.checkpoint.root_hash))
    .bind(&signed.checkpoint.created_at)
    .bind(&signed.key_id)
    .bind(hex::encode(signed.signature))
    .execute(store.pool())
    .await?;
    if inserted.rows_affected() == 1 {
        let stored = checkpoint_of_size(store, signed.checkpoint.tree_size).await?;
        assert_eq!(stored.as_ref(), Some(signed), "a stored checkpoint reads back unchanged");
        return Ok(CheckpointOutcome { checkpoint: signed.clone(), created: true });
    }
    let stored = checkpoint_of_size(store, signed.checkpoint.tree_size)
        .await?
        .expect("a checkpoint of this size exists, since the insert was skipped");
    if stored.checkpoint.root_hash != signed.checkpoint.root_hash {
        return Err(AuditError::CheckpointDiffers {
            tree_size: signed.checkpoint.tree_size,
            stored: hex::encode(stored.checkpoint.root_hash),
            computed: hex::encode(signed.checkpoint.root_hash),
        });
    }
    Ok(CheckpointOutcome { checkpoint: stored, created: false })
}

const CHECKPOINT_COLUMNS: &str = "tree_size, root_hash, created_at, key_id, signature";

/// Reads a stored checkpoint, checking its form as a signed checkpoint's JSON is checked.
fn checkpoint_from_row(row: &sqlx::any::AnyRow) -> Result<SignedCheckpoint, AuditError> {
    let tree_size: i64 = row.try_get("tree_size")?;
    let unreadable =
        |message: String| AuditError::CheckpointUnreadable { tree_size: u64::try_from(tree_size).unwrap_or(0), message };
    let object = serde_json::json!({
        "tree_size": u64::try_from(tree_size).map_err(|_| unreadable("negative tree size".to_string()))?,
        "root_hash": row.try_get::<String, _>("root_hash")?,
        "created_at": row.try_get::<String, _>("created_at")?,
        "key_id": row.try_get::<String, _>("key_id")?,
        "signature": row.try_get::<String, _>("signature")?,
    });
    serde_json::from_value(object).map_err(|error| unreadable(error.to_string()))
}

/// The stored checkpoint of `tree_size` events, if any.
pub async fn checkpoint_of_size(store: &Store, tree_size: u64) -> Result<Option<SignedCheckpoint>, AuditError> {
    let Ok(tree_size) = i64::try_from(tree_size) else { return Ok(None) };
    let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints WHERE tree_size = $1"))
        .bind(tree_size)
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(checkpoint_from_row).transpose()
}

/// The stored checkpoint of the largest size, if any.
pub async fn latest_checkpoint(store: &Store) -> Result<Option<SignedCheckpoint>, AuditError> {
    let row = sqlx::query(&format!("SELECT {CHECKPOINT_COLUMNS} FROM checkpoints ORDER BY tree_size DESC LIMIT 1"))
        .fetch_optional(store.pool())
        .await?;
    row.as_ref().map(checkpoint_from_row).transpose()
}

/// Signs a checkpoint of the chain as the cached tree sees it, if the chain
/// has grown past the latest stored checkpoint. Returns the new checkpoint.
pub async fn checkpoint_from_cache(ledger: &Ledger, cache: &SharedMerkleCache) -> Result<Option<SignedCheckpoint>, AuditError> {
    let (tree_size, root) = {
        let mut cache = cache.lock().await;
        cache.catch_up(&ledger.store, Some(&ledger.keys)).await?;
        let tree_size = cache.tree().len();
        (tree_size, cache.tree().root(tree_size).expect("the tree holds its own size"))
    };
    let latest_size = latest_checkpoint(&ledger.store).await?.map_or(0, |latest| latest.checkpoint.tree_size);
    if tree_size <= latest_size {
        return Ok(None);
    }
    let outcome = sign_and_store(ledger, tree_size, root).await?;
    Ok(outcome.created.then_some(outcome.checkpoint))
}

/// Signs a checkpoint every `every` while the chain grows, the first at once.
/// Runs until the server stops and aborts it; failures are logged and retried.
pub async fn checkpoint_periodically(ledger: Ledger, cache: SharedMerkleCache, every: Duration) {
    let mut interval = tokio::time::interval(every);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Unbounded on purpose: a server task, ended by abort at shutdown.
    loop {
        interval.tick().await;
        match checkpoint_from_cache(&ledger, &cache).await {
            Ok(Some(signed)) => {
                tracing::info!(tree_size = signed.checkpoint.tree_size, root = %hex::encode(signed.checkpoint.root_hash), "checkpoint signed");
            }
            Ok(None) => {}
            Err(error) => tracing::error!(error = %error, "periodic checkpoint failed; retrying at the next interval"),
        }
    }
}

// ---------------------------------------------------------------------------
// The Merkle tree over the stored chain

/// One stored event's chain fields, without its payload.
struct HashRow {
    seq: Seq,
    prev_hash: Hash,
    hash: Hash,
    key_id: String,
    tag: Hash,
}

fn hash_field(seq: Seq, name: &str, text: &str) -> Result<Hash, AuditError> {
    let mut bytes = [0u8; 32];
    hex::decode_to_slice(text, &mut bytes).map_err(|_| {
        AuditError::ChainInvalid(ChainFailure { seq, fault: ChainFault::Unreadable(format!("{name} is not 64 hex characters")) })
    })?;
    Ok(bytes)
}

async fn read_hash_rows(store: &Store, after: Seq, limit: i64) -> Result<Vec<HashRow>, AuditError> {
    let after = i64::try_from(after).expect("a seq fits in i64");
    let rows = sqlx::query("SELECT seq, prev_hash, hash, key_id, tag FROM events WHERE seq > $1 ORDER BY seq LIMIT $2")
        .bind(after)
        .bind(limit)
        .fetch_all(store.pool())
        .await?;
    let mut hash_rows = Vec::with_capacity(rows.len());
    for row in &rows {
        let seq = Seq::try_from(row.try_get::<i64, _>("seq")?).unwrap_or(0);
        hash_rows.push(HashRow {
            seq,
            prev_hash: hash_field(seq, "prev_hash", &row.try_get::<String, _>("prev_hash")?)?,
            hash: hash_field(seq, "hash", &row.try_get::<String, _>("hash")?)?,
            key_id: row.try_get("key_id")?,
            tag: hash_field(seq, "tag", &row.try_get::<String, _>("tag")?)?,
        });
    }
    Ok(hash_rows)
}

/// The Merkle tree over the stored chain's event hashes, extended as the
/// chain grows. Every hash it takes in is checked first: seq continuity,
/// the link to the previous hash and, with keys, the tag. (The hash of an
/// event's fields is checked by `ledger verify` and by the export verifier.)
#[derive(Debug, Default)]
pub struct MerkleCache {
    tree: MerkleTree,
    /// The hash of the last event in the tree (zeros for the empty tree).
    head_hash: Hash,
}

/// The cache one server shares between its requests.
pub type SharedMerkleCache = Arc<Mutex<MerkleCache>>;

impl MerkleCache {
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The hash of the last event taken in (zeros for the empty tree).
    pub fn head_hash(&self) -> Hash {
        self.head_hash
    }

    /// Takes in the hashes of every event appended since the last call and
    /// returns the tree's size. A hash that fails a check is not taken in.
    pub async fn catch_up(&mut self, store: &Store, keys: Option<&KeyRing>) -> Result<u64, AuditError> {
        // Bounded by the chain's length: every full page moves the tree forward.
        loop {
            let rows = read_hash_rows(store, self.tree.len(), HASH_PAGE_ROWS_MAX).await?;
            for row in &rows {
                self.push_checked(row, keys)?;
            }
            if (rows.len() as i64) < HASH_PAGE_ROWS_MAX {
                return Ok(self.tree.len());
            }
        }
    }

    fn push_checked(&mut self, row: &HashRow, keys: Option<&KeyRing>) -> Result<(), AuditError> {
        let expected = self.tree.len() + 1;
        let fail = |seq, fault| AuditError::ChainInvalid(ChainFailure { seq, fault });
        if row.seq != expected {
            return Err(fail(expected, ChainFault::Gap { expected, found: row.seq }));
        }
        if row.prev_hash != self.head_hash {
            return Err(fail(row.seq, ChainFault::BrokenLink { previous: self.tree.len() }));
        }
        if let Some(keys) = keys {
            match keys.verify_tag(&row.key_id, &row.hash, &row.tag) {
                Ok(()) => {}
                Err(error @ TagError::UnknownKey(_)) => return Err(fail(row.seq, ChainFault::UnknownKey(error))),
                Err(error @ TagError::BadTag(_)) => return Err(fail(row.seq, ChainFault::BadTag(error))),
            }
        }
        self.tree.push(&row.hash);
        self.head_hash = row.hash;
        Ok(())
    }
}

/// The event hashes of the seqs from `first` on, one per leaf of `leaves`
/// (the tree's leaf hashes of those seqs), each checked against its leaf
/// (the tree holds only hashes it checked).
pub async fn checked_event_hashes(store: &Store, leaves: &[Hash], first: Seq) -> Result<Vec<Hash>, AuditError> {
    assert!(first >= 1 && !leaves.is_empty(), "the caller took the leaves of a range in the tree");
    let count = i64::try_from(leaves.len()).expect("a tile holds at most 256 entries");
    let rows = read_hash_rows(store, first - 1, count).await?;
    if rows.len() != leaves.len() {
        return Err(AuditError::TreeDisagrees { seq: first + rows.len() as u64, stored: String::new() });
    }
    for (row, leaf) in rows.iter().zip(leaves) {
        if merkle::leaf_hash(&row.hash) != *leaf {
            return Err(AuditError::TreeDisagrees { seq: row.seq, stored: hex::encode(row.hash) });
        }
    }
    Ok(rows.into_iter().map(|row| row.hash).collect())
}

/// A cache shared by one server's requests.
pub fn shared_merkle_cache() -> SharedMerkleCache {
    Arc::new(Mutex::new(MerkleCache::default()))
}

// ---------------------------------------------------------------------------
// Proofs

/// That event `seq` is leaf `seq - 1` of the tree of the first `size`
/// events, whose root is `root`. Hex is lower-case; `proof` runs from the
/// leaf's sibling up to the root's child (RFC 9162 `PATH`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct InclusionProof {
    pub seq: u64,
    pub size: u64,
    pub leaf_index: u64,
    pub event_hash: String,
    pub root: String,
    pub proof: Vec<String>,
}

/// That the tree of the first `to` events, root `to_root`, extends the tree
/// of the first `from` events, root `from_root` (RFC 9162 `PROOF`).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyProof {
    pub from: u64,
    pub to: u64,
    pub from_root: String,
    pub to_root: String,
    pub proof: Vec<String>,
}

/// Checks an inclusion request against a chain of `events` events.
pub fn check_inclusion_request(seq: Seq, size: u64, events: u64) -> Result<(), ProofRequestError> {
    if seq == 0 {
        return Err(ProofRequestError::SeqZero);
    }
    if seq > events {
        return Err(ProofRequestError::NoSuchEvent { seq, events });
    }
    if size > events {
        return Err(ProofRequestError::SizeBeyondChain { size, events });
    }
    if seq > size {
        return Err(ProofRequestError::SeqBeyondSize { seq, size });
    }
    Ok(())
}

/// The inclusion proof of a stored event in the tree of `size` events. The
/// proof is checked against the event's stored hash before it is returned.
pub fn prove_inclusion(tree: &MerkleTree, event: &EventRecord, size: u64) -> Result<InclusionProof, AuditError> {
    check_inclusion_request(event.seq, size, tree.len())?;
    let leaf_index = event.seq - 1;
    let proof = tree.inclusion_proof(leaf_index, size).expect("the request was checked against the tree");
    let root = tree.root(size).expect("the request was checked against the tree");
    if merkle::verify_inclusion(&event.hash, leaf_index, size, &proof, &root).is_err() {
        return Err(AuditError::TreeDisagrees { seq: event.seq, stored: hex::encode(event.hash) });
    }
    Ok(InclusionProof {
        seq: event.seq,
        size,
        leaf_index,
        event_hash: hex::encode(event.hash),
        root: hex::encode(root),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// The consistency proof between the trees of `from` and `to` events.
pub fn prove_consistency(tree: &MerkleTree, from: u64, to: u64) -> Result<ConsistencyProof, AuditError> {
    if from == 0 || from > to {
        return Err(ProofRequestError::BadRange { from, to }.into());
    }
    if to > tree.len() {
        return Err(ProofRequestError::SizeBeyondChain { size: to, events: tree.len() }.into());
    }
    let proof = tree.consistency_proof(from, to).expect("the request was checked against the tree");
    let from_root = tree.root(from).expect("from <= to <= len");
    let to_root = tree.root(to).expect("to <= len");
    assert_eq!(merkle::verify_consistency(from, to, &from_root, &to_root, &proof), Ok(()), "a fresh proof verifies");
    Ok(ConsistencyProof {
        from,
        to,
        from_root: hex::encode(from_root),
        to_root: hex::encode(to_root),
        proof: proof.iter().map(hex::encode).collect(),
    })
}

/// Reads the stored event `seq`.
pub async fn read_event(store: &Store, seq: Seq) -> Result<Option<EventRecord>, AuditError> {
    if seq == 0 {
        return Err(ProofRequestError::SeqZero.into());
    }
    let mut events = store.events_after(seq - 1, 1).await?;
    Ok(events.pop().filter(|event| event.seq == seq))
}

/// `ledger prove --seq N [--size S]`: an inclusion proof from the database.
pub async fn inclusion_proof_from_store(ledger: &Ledger, seq: Seq, size: Option<u64>) -> Result<InclusionProof, AuditError> {
    let mut cache = MerkleCache::default();
    let events = cache.catch_up(&ledger.store, Some(&ledger.keys)).await?;
    let size = size.unwrap_or(events);
    check_inclusion_request(seq, size, events)?;
    let event = read_event(&ledger.store, seq).await?.ok_or(ProofRequestError::NoSuchEvent { seq, events })?;
    prove_inclusion(cache.tree(), &event, size)
}

/// `ledger prove --from A --to B`: a consistency proof from the database.
pub async fn consistency_proof_from_store(ledger: &Ledger, from: u64, to: u64) -> Result<ConsistencyProof, AuditError> {
    let mut cache = MerkleCache::default();
    cache.catch_up(&ledger.store, Some(&ledger.keys)).await?;
    prove_consistency(cache.tree(), from, to)
}

// ---------------------------------------------------------------------------
// Offline verification of a proof

/// A proof file: an inclusion or a consistency proof, told apart by its fields.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum ProofDocument {
    Inclusion(InclusionProof),
    Consistency(ConsistencyProof),
}

/// Why a proof does not verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofFault {
    #[error("the file is neither an inclusion nor a consistency proof: {0}")]
    Malformed(String),
    #[error("{field} must be 64 lower-case hex characters")]
    BadHex { field: String },
    #[error("leaf_index must be seq - 1 ({expected}), not {found}")]
    LeafIndexNotSeq { expected: u64, found: u64 },
    #[error("{0}")]
    Merkle(MerkleError),
    #[error("the checkpoint does not verify: {0}")]
    CheckpointSignature(CheckpointError),
    #[error(
        "the checkpoint covers {tree_size} events, not a size the proof is about ({sizes}): fetch a proof for size {tree_size}"
    )]
    CheckpointSizeMismatch { tree_size: u64, sizes: String },
    #[error("the proof's root of size {tree_size} is {proof_root}, not the checkpoint's root {signed}")]
    CheckpointRootMismatch { tree_size: u64, proof_root: String, signed: String },
}

/// What a proof that verified established.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProofVerdict {
    pub description: String,
    /// The sizes of the checkpoints the proof was tied to.
    pub checkpoint_sizes: Vec<u64>,
}

fn decode_proof_hash(field: &str, text: &str) -> Result<Hash, ProofFault> {
    decode_lower_hex_32(text).ok_or_else(|| ProofFault::BadHex { field: field.to_string() })
}

fn decode_proof_path(proof: &[String]) -> Result<Vec<Hash>, ProofFault> {
    proof.iter().enumerate().map(|(position, text)| decode_proof_hash(&format!("proof[{position}]"), text)).collect()
}

/// Ties a proof's roots (by size) to signed checkpoints: each checkpoint
/// must verify under `public_key` and sign one of the proof's roots.
fn check_against_checkpoints(roots: &[(u64, Hash)], checkpoints: &[TrustedCheckpoint]) -> Result<Vec<u64>, ProofFault> {
    let mut sizes = Vec::with_capacity(checkpoints.len());
    for trusted in checkpoints {
        let (tree_size, root_hash) = trusted.verify().map_err(ProofFault::CheckpointSignature)?;
        let Some((_, proof_root)) = roots.iter().find(|(size, _)| *size == tree_size) else {
            let sizes = roots.iter().map(|(size, _)| size.to_string()).collect::<Vec<_>>().join(" and ");
            return Err(ProofFault::CheckpointSizeMismatch { tree_size, sizes });
        };
        if *proof_root != root_hash {
            return Err(ProofFault::CheckpointRootMismatch {
                tree_size,
                proof_root: hex::encode(proof_root),
                signed: hex::encode(root_hash),
            });
        }
        sizes.push(tree_size);
    }
    Ok(sizes)
}

/// Verifies a proof document (the JSON `ledger prove` and the proof
/// endpoints give) and, with checkpoints, that its roots are the signed ones.
pub fn verify_proof_document(text: &str, checkpoints: &[TrustedCheckpoint]) -> Result<ProofVerdict, ProofFault> {
    let document: ProofDocument = serde_json::from_str(text).map_err(|error| ProofFault::Malformed(error.to_string()))?;
    match document {
        ProofDocument::Inclusion(proof) => {
            let expected = proof.seq.checked_sub(1).ok_or_else(|| ProofFault::Malformed("seq must be 1 or more".to_string()))?;
            if proof.leaf_index != expected {
                return Err(ProofFault::LeafIndexNotSeq { expected, found: proof.leaf_index });
            }
            let event_hash = decode_proof_hash("event_hash", &proof.event_hash)?;
            let root = decode_proof_hash("root", &proof.root)?;
            let path = decode_proof_path(&proof.proof)?;
            merkle::verify_inclusion(&event_hash, proof.leaf_index, proof.size, &path, &root).map_err(ProofFault::Merkle)?;
            let checkpoint_sizes = check_against_checkpoints(&[(proof.size, root)], checkpoints)?;
            let description = format!(
                "event {} with hash {} is in the tree of size {} with root {}",
                proof.seq, proof.event_hash, proof.size, proof.root
            );
            Ok(ProofVerdict { description, checkpoint_sizes })
        }
        ProofDocument::Consistency(proof) => {
            let from_root = decode_proof_hash("from_root", &proof.from_root)?;
            let to_root = decode_proof_hash("to_root", &proof.to_root)?;
            let path = decode_proof_path(&proof.proof)?;
            merkle::verify_consistency(proof.from, proof.to, &from_root, &to_root, &path).map_err(ProofFault::Merkle)?;
            let checkpoint_sizes = check_against_checkpoints(&[(proof.from, from_root), (proof.to, to_root)], checkpoints)?;
            let description = format!(
                "the tree of size {} with root {} extends the tree of size {} with root {}",
                proof.to, proof.to_root, proof.from, proof.from_root
            );
            Ok(ProofVerdict { description, checkpoint_sizes })
        }
    }
}

/// Reads a small text file (a proof or a checkpoint) of at most `PROOF_FILE_BYTES_MAX` bytes.
pub fn read_small_file(path: &Path) -> Result<String, AuditError> {
    let file_error = |source| AuditError::File { path: path.to_path_buf(), source };
    let file = std::fs::File::open(path).map_err(file_error)?;
    let mut text = String::new();
    file.take(PROOF_FILE_BYTES_MAX + 1).read_to_string(&mut text).map_err(file_error)?;
    if text.len() as u64 > PROOF_FILE_BYTES_MAX {
        let too_large = io::Error::new(io::ErrorKind::InvalidData, format!("larger than {PROOF_FILE_BYTES_MAX} bytes"));
        return Err(file_error(too_large));
    }
    Ok(text)
}

// ---------------------------------------------------------------------------
// Command line: `ledger export`, `verify --export`, `checkpoint`, `prove` and
// `verify-proof` print these results and return the exit code (0 valid or
// done, 1 invalid; errors become 2 in `cli::run`).

fn progress_bar(total: u64, template: &str, message: &'static str) -> indicatif::ProgressBar {
    let bar = indicatif::ProgressBar::new(total);
    bar.set_style(indicatif::ProgressStyle::with_template(template).expect("the template is valid").progress_chars("=> "));
    bar.set_message(message);
    bar
}

const EVENTS_TEMPLATE: &str = "{msg} [{bar:40}] {pos}/{len} events ({per_sec}, {eta})";
const BYTES_TEMPLATE: &str = "{msg} [{bar:40}] {bytes}/{total_bytes} ({bytes_per_sec}, {eta})";

/// `ledger export --out FILE [--after SEQ]`.
pub async fn run_export(ledger: &Ledger, out: &Path, after: Seq) -> anyhow::Result<std::process::ExitCode> {
    let (head, _) = ledger.store.head().await?;
    let bar = progress_bar(head, EVENTS_TEMPLATE, "exporting");
    bar.set_position(after.min(head));
    let summary = export_to_file(&ledger.store, after, out, |seq| bar.set_position(seq)).await?;
    bar.finish_and_clear();
    println!("exported {} events (seq {} to {}) to {}", summary.events, after + 1, summary.last_seq, out.display());
    Ok(std::process::ExitCode::SUCCESS)
}

/// The key a checkpoint is verified with: the hex public key, or a note
/// verifier key (vkey), which also names the origin.
#[derive(Clone, Debug)]
pub enum CheckpointKey {
    Hex(VerifyingKey),
    Vkey(VerifierKey),
}

/// Reads a signed checkpoint file, the JSON form (it starts with `{`) or a
/// checkpoint note: `Ok(Err(reason))` when it is neither, or a note and
/// the key is not a vkey.
fn read_checkpoint_file(
    path: &Path,
    key: &CheckpointKey,
    witnesses: &WitnessPolicy,
) -> Result<Result<TrustedCheckpoint, String>, AuditError> {
    let text = read_small_file(path)?;
    if text.starts_with('{') {
        if witnesses.required > 0 {
            return Ok(Err(format!(
                "{} is a JSON checkpoint, which carries no cosignatures: give a checkpoint note",
                path.display()
            )));
        }
        let public_key = match key {
            CheckpointKey::Hex(public_key) => *public_key,
            CheckpointKey::Vkey(vkey) => vkey.public_key,
        };
        return Ok(serde_json::from_str(&text)
            .map(|checkpoint| TrustedCheckpoint::Json { checkpoint, public_key })
            .map_err(|error| format!("{} is not a signed checkpoint: {error}", path.display())));
    }
    let note = match SignedNote::parse(text.as_bytes()) {
        Ok(note) => note,
        Err(error) => return Ok(Err(format!("{} is neither a JSON checkpoint nor a checkpoint note: {error}", path.display()))),
    };
    match key {
        CheckpointKey::Vkey(log_key) => {
            Ok(Ok(TrustedCheckpoint::Note { note, log_key: log_key.clone(), witnesses: witnesses.clone() }))
        }
        CheckpointKey::Hex(_) => Ok(Err(format!(
            "{} is a checkpoint note: give --public-key as the log's vkey (name+hash+key, the vkey of GET /v1/checkpoints/public-key)",
            path.display()
        ))),
    }
}

/// `--public-key`: 64 hex characters, or a vkey.
fn parse_public_key(text: &str) -> anyhow::Result<CheckpointKey> {
    let text = text.trim();
    if text.contains('+') {
        return VerifierKey::parse(text).map(CheckpointKey::Vkey).map_err(|error| anyhow::anyhow!("--public-key: {error}"));
    }
    checkpoint::parse_public_key_hex(text).map(CheckpointKey::Hex).map_err(|error| anyhow::anyhow!("--public-key: {error}"))
}

/// `ledger verify --export FILE [--hmac-key HEX]... [--checkpoint FILE --public-key HEX]`. Opens no database.
pub fn run_verify_export(
    path: &Path,
    hmac_keys: &[String],
    checkpoint_file: Option<&Path>,
    public_key_hex: Option<&str>,
    witnesses: &WitnessPolicy,
) -> anyhow::Result<std::process::ExitCode> {
    let hmac_keys = hmac_keys.iter().map(|text| SecretKey::parse_hex("--hmac-key", text)).collect::<Result<Vec<_>, _>>()?;
    let checkpoint = match (checkpoint_file, public_key_hex) {
        (Some(file), Some(key)) => {
            let public_key = parse_public_key(key)?;
            match read_checkpoint_file(file, &public_key, witnesses)? {
                Ok(checkpoint) => Some(checkpoint),
                Err(reason) => {
                    println!("export INVALID: {reason}");
                    return Ok(std::process::ExitCode::from(1));
                }
            }
        }
        (None, None) => None,
        _ => anyhow::bail!("--checkpoint and --public-key go together"),
    };
    let total = std::fs::metadata(path).map(|metadata| metadata.len()).unwrap_or(0);
    let bar = progress_bar(total, BYTES_TEMPLATE, "verifying");
    let report = verify_export_file(path, &ExportCheck { hmac_keys, checkpoint }, |bytes| bar.set_position(bytes))?;
    bar.finish_and_clear();
    Ok(print_export_report(&report))
}

fn print_export_report(report: &ExportReport) -> std::process::ExitCode {
    if let Some(failure) = &report.failure {
        println!("export INVALID at {failure}");
        return std::process::ExitCode::from(1);
    }
    let tags = if report.tags_checked { "tags checked" } else { "tags NOT checked (pass --hmac-key)" };
    let checkpoint = match report.checkpoint_size {
        Some(size) => format!("; the first {size} events match the signed checkpoint"),
        None => String::new(),
    };
    println!("export valid: {} events, head hash {}; {tags}{checkpoint}", report.head_seq, hex::encode(report.head_hash));
    std::process::ExitCode::SUCCESS
}

/// How `ledger checkpoint` writes a checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum CheckpointFormat {
    /// The ledger's own flat JSON object (docs/merkle.md).
    Json,
    /// A C2SP checkpoint note signed by the log's note key.
    Note,
}

/// `ledger checkpoint [--out FILE] [--format json|note]` and `ledger checkpoint --public-key`
/// (with `--format note`: the vkey).
pub async fn run_checkpoint(
    ledger: &Ledger,
    out: Option<&Path>,
    public_key_only: bool,
    format: CheckpointFormat,
) -> anyhow::Result<std::process::ExitCode> {
    if public_key_only {
        match format {
            CheckpointFormat::Json => println!("{}", public_key_hex(&ledger.keys)?),
            CheckpointFormat::Note => println!("{}", vkey(ledger)?.format()),
        }
        return Ok(std::process::ExitCode::SUCCESS);
    }
    let (head, _) = ledger.store.head().await?;
    let bar = progress_bar(head, EVENTS_TEMPLATE, "verifying and hashing");
    let outcome = create_checkpoint(ledger, |seq| bar.set_position(seq)).await;
    bar.finish_and_clear();
    let outcome = match outcome {
        Ok(outcome) => outcome,
        Err(error @ (AuditError::ChainInvalid(_) | AuditError::CheckpointDiffers { .. } | AuditError::NoSigningKey)) => {
            println!("checkpoint REFUSED: {error}");
            return Ok(std::process::ExitCode::from(1));
        }
        Err(error) => return Err(error.into()),
    };
    let text = match format {
        CheckpointFormat::Json => serde_json::to_string_pretty(&outcome.checkpoint)? + "\n",
        CheckpointFormat::Note => checkpoint_note(ledger, &outcome.checkpoint)?.format(),
    };
    match out {
        Some(path) => std::fs::write(path, text).map_err(|source| AuditError::File { path: path.to_path_buf(), source })?,
        None => print!("{text}"),
    }
    let verb = if outcome.created { "signed" } else { "already stored" };
    eprintln!(
        "checkpoint of {} events {verb}; public key {}",
        outcome.checkpoint.checkpoint.tree_size,
        public_key_hex(&ledger.keys)?
    );
    Ok(std::process::ExitCode::SUCCESS)
}

/// What `ledger prove` is asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProveRequest {
    Inclusion { seq: Seq, size: Option<u64> },
    Consistency { from: u64, to: u64 },
}

/// `ledger prove --seq N [--size S]` or `ledger prove --from A --to B`.
pub async fn run_prove(ledger: &Ledger, request: ProveRequest) -> anyhow::Result<std::process::ExitCode> {
    let json = match request {
        ProveRequest::Inclusion { seq, size } => {
            serde_json::to_string_pretty(&inclusion_proof_from_store(ledger, seq, size).await?)?
        }
        ProveRequest::Consistency { from, to } => {
            serde_json::to_string_pretty(&consistency_proof_from_store(ledger, from, to).await?)?
        }
    };
    println!("{json}");
    Ok(std::process::ExitCode::SUCCESS)
}

/// `ledger verify-proof --proof FILE [--checkpoint FILE]... [--public-key HEX]`. Opens no database.
pub fn run_verify_proof(
    proof_file: &Path,
    checkpoint_files: &[PathBuf],
    public_key_hex: Option<&str>,
    witnesses: &WitnessPolicy,
) -> anyhow::Result<std::process::ExitCode> {
    let public_key = public_key_hex.map(parse_public_key).transpose()?;
    if !checkpoint_files.is_empty() && public_key.is_none() {
        anyhow::bail!("--checkpoint needs --public-key");
    }
    let text = read_small_file(proof_file)?;
    let mut checkpoints = Vec::with_capacity(checkpoint_files.len());
    for file in checkpoint_files {
        match read_checkpoint_file(file, public_key.as_ref().expect("checked above"), witnesses)? {
            Ok(checkpoint) => checkpoints.push(checkpoint),
            Err(reason) => {
                println!("proof INVALID: {reason}");
                return Ok(std::process::ExitCode::from(1));
            }
        }
    }
    match verify_proof_document(&text, &checkpoints) {
        Ok(verdict) => {
            let signed = match verdict.checkpoint_sizes.as_slice() {
                [] => String::new(),
                sizes => {
                    format!("; signed checkpoints of size {}", sizes.iter().map(u64::to_string).collect::<Vec<_>>().join(" and "))
                }
            };
            println!("proof valid: {}{signed}", verdict.description);
            Ok(std::process::ExitCode::SUCCESS)
        }
        Err(fault) => {
            println!("proof INVALID: {fault}");
            Ok(std::process::ExitCode::from(1))
        }
    }
}
