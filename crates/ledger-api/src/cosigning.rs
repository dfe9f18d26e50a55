//! `ledger serve --witness URL`: each new checkpoint is sent, with its
//! consistency proof from the size each witness last cosigned, to the
//! witnesses (`POST <URL>/add-checkpoint`, c2sp.org/tlog-witness), and the
//! cosignatures they answer are served after the ledger's own signature by
//! `GET /checkpoint`.

use std::sync::Arc;
use std::time::Duration;

use ledger_core::note::{NoteSignature, SignedNote};
use ledger_core::witness::AddCheckpoint;
use tokio::sync::Mutex;

use crate::audit::{self, AuditError, SharedMerkleCache};
use crate::config::Ledger;

/// How often the latest checkpoint is offered to the witnesses.
pub const WITNESS_PUSH_INTERVAL_MS: u64 = 2_000;
/// How long a witness may take to answer.
pub const WITNESS_TIMEOUT_MS: u64 = 10_000;
/// Longest witness answer read, in bytes.
const WITNESS_ANSWER_BYTES_MAX: usize = 16 * 1024;

/// The cosignatures of the latest checkpoint, and the size each witness
/// last cosigned.
#[derive(Debug, Default)]
pub struct Cosignatures {
    state: Mutex<CosignedState>,
}

#[derive(Debug, Default)]
struct CosignedState {
    /// Per witness (in `Ledger::witness_urls` order): the size it last
    /// cosigned and its cosignature of that size.
    witnesses: Vec<(u64, Option<NoteSignature>)>,
}

pub type SharedCosignatures = Arc<Cosignatures>;

impl Cosignatures {
    /// The cosignature lines of the checkpoint of `tree_size` that the witnesses answered.
    pub async fn lines_for(&self, tree_size: u64) -> Vec<NoteSignature> {
        let state = self.state.lock().await;
        state.witnesses.iter().filter(|(size, _)| *size == tree_size).filter_map(|(_, line)| line.clone()).collect()
    }
}

/// Offers the latest stored checkpoint to every witness that has not
/// cosigned it, every `WITNESS_PUSH_INTERVAL_MS`, until the server stops.
pub async fn push_periodically(ledger: Ledger, merkle: SharedMerkleCache, cosignatures: SharedCosignatures) {
    let client =
        reqwest::Client::builder().timeout(Duration::from_millis(WITNESS_TIMEOUT_MS)).build().expect("an HTTP client builds");
    let mut interval = tokio::time::interval(Duration::from_millis(WITNESS_PUSH_INTERVAL_MS));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Unbounded on purpose: a server task, ended by abort at shutdown.
    loop {
        interval.tick().await;
        if let Err(error) = push_latest(&ledger, &merkle, &cosignatures, &client).await {
            tracing::warn!(error = %error, "checkpoint not sent to the witnesses; retrying");
        }
    }
}

async fn push_latest(
    ledger: &Ledger,
    merkle: &SharedMerkleCache,
    cosignatures: &Cosignatures,
    client: &reqwest::Client,
) -> Result<(), AuditError> {
    let Some(latest) = audit::latest_checkpoint(&ledger.store).await? else { return Ok(()) };
    let tree_size = latest.checkpoint.tree_size;
    let note = audit::checkpoint_note(ledger, &latest)?;
    for (position, url) in ledger.witness_urls.iter().enumerate() {
        let old_size = {
            let mut state = cosignatures.state.lock().await;
            state.witnesses.resize(ledger.witness_urls.len(), (0, None));
            state.witnesses[position].0
        };
        if old_size >= tree_size {
            continue;
        }
        let proof = if old_size == 0 {
            Vec::new()
        } else {
            let mut cache = merkle.lock().await;
            cache.catch_up(&ledger.store, Some(&ledger.keys)).await?;
            cache
                .tree()
                .consistency_proof(old_size, tree_size)
                .map_err(|error| AuditError::CheckpointUnreadable { tree_size, message: error.to_string() })?
        };
        let body = AddCheckpoint { old_size, proof, note: note.clone() }.format();
        match send(client, url, body, &note).await {
            Ok(Answer::Cosigned(line)) => cosignatures.state.lock().await.witnesses[position] = (tree_size, Some(line)),
            Ok(Answer::LastCosigned(size)) if size <= tree_size => {
                cosignatures.state.lock().await.witnesses[position] = (size, None)
            }
            Ok(Answer::LastCosigned(size)) => {
                tracing::error!(url, size, tree_size, "the witness cosigned a larger size than the ledger's")
            }
            Err(message) => tracing::warn!(url, message, "the witness refused the checkpoint"),
        }
    }
    Ok(())
}

enum Answer {
    Cosigned(NoteSignature),
    /// A 409: the size the witness last cosigned.
    LastCosigned(u64),
}

async fn send(client: &reqwest::Client, url: &str, body: String, note: &SignedNote) -> Result<Answer, String> {
    let response = client
        .post(format!("{}/add-checkpoint", url.trim_end_matches('/')))
        .body(body)
        .send()
        .await
        .map_err(|error| error.to_string())?;
    let status = response.status().as_u16();
    let text = response.text().await.map_err(|error| error.to_string())?;
    if text.len() > WITNESS_ANSWER_BYTES_MAX {
        return Err("the answer is too long".to_string());
    }
    match status {
        200 => {
            let cosigned = SignedNote::parse(format!("{}{text}", note.format()).as_bytes()).map_err(|error| error.to_string())?;
            let line = cosigned.signatures.into_iter().nth(note.signatures.len()).ok_or("the answer holds no cosignature")?;
            Ok(Answer::Cosigned(line))
        }
        409 => text.trim_end_matches('\n').parse().map(Answer::LastCosigned).map_err(|_| format!("409 without a size: {text}")),
        _ => Err(format!("{status}: {}", text.trim_end())),
    }
}
