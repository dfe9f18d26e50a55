//! Group commit: one task owns the `Appender`; concurrent requests queue on
//! a bounded channel and are written together, one transaction per batch.

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tracing::Instrument;

use super::{AppendUnit, Appender, StoreError, UnitOutcome};

/// Requests waiting for the writer before senders are made to wait.
pub const WRITER_QUEUE_UNITS_MAX: usize = 4_096;
/// Commands gathered into one transaction, at most (a unit is never split).
pub const APPEND_BATCH_COMMANDS_MAX: usize = 2_000;

struct Job {
    unit: AppendUnit,
    reply: oneshot::Sender<Result<UnitOutcome, StoreError>>,
}

/// A handle to the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    sender: mpsc::Sender<Job>,
}

impl Writer {
    /// Starts the writer task. It stops once every `Writer` clone is dropped
    /// and the queue is drained, so no accepted request is lost on shutdown.
    pub fn spawn(appender: Appender) -> (Writer, JoinHandle<()>) {
        let (sender, receiver) = mpsc::channel(WRITER_QUEUE_UNITS_MAX);
        let handle = tokio::spawn(run(appender, receiver));
        (Writer { sender }, handle)
    }

    pub async fn append(&self, unit: AppendUnit) -> Result<UnitOutcome, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.sender.send(Job { unit, reply }).await.map_err(|_| StoreError::WriterStopped)?;
        answer.await.map_err(|_| StoreError::WriterStopped)?
    }
}

async fn run(mut appender: Appender, mut receiver: mpsc::Receiver<Job>) {
    while let Some(first) = receiver.recv().await {
        let mut commands = first.unit.commands.len();
        let (mut units, mut replies) = (vec![first.unit], vec![first.reply]);
        while commands < APPEND_BATCH_COMMANDS_MAX {
            let Ok(job) = receiver.try_recv() else { break };
            commands += job.unit.commands.len();
            units.push(job.unit);
            replies.push(job.reply);
        }
        let span = tracing::info_span!("append_batch", units = units.len(), commands);
        match appender.append(&units).instrument(span).await {
            Ok(outcomes) => {
                for (reply, outcome) in replies.into_iter().zip(outcomes) {
                    let _ = reply.send(Ok(outcome));
                }
            }
            Err(error) => {
                if matches!(error, StoreError::OutcomeUnknown(_)) {
                    tracing::error!(error = %error, "append batch failed; whether it was committed is unknown");
                } else {
                    tracing::error!(error = %error, "append batch failed; nothing of it was written");
                }
                for reply in replies {
                    let _ = reply.send(Err(clone_error(&error)));
                }
            }
        }
    }
}

fn clone_error(error: &StoreError) -> StoreError {
    match error {
        StoreError::Conflict => StoreError::Conflict,
        StoreError::WriterStopped => StoreError::WriterStopped,
        StoreError::Busy(message) => StoreError::Busy(message.clone()),
        StoreError::Unreachable(message) => StoreError::Unreachable(message.clone()),
        StoreError::Full(message) => StoreError::Full(message.clone()),
        StoreError::OutcomeUnknown(message) => StoreError::OutcomeUnknown(message.clone()),
        StoreError::Corrupt { seq, message } => StoreError::Corrupt { seq: *seq, message: message.clone() },
        other => StoreError::Database(sqlx::Error::Protocol(other.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_caller_of_a_failed_batch_is_told_why_it_failed() {
        assert!(matches!(clone_error(&StoreError::Busy("held".to_string())), StoreError::Busy(message) if message == "held"));
        assert!(matches!(clone_error(&StoreError::Conflict), StoreError::Conflict));
        assert!(matches!(clone_error(&StoreError::Full("disk".to_string())), StoreError::Full(message) if message == "disk"));
        assert!(matches!(clone_error(&StoreError::Unreachable("gone".to_string())), StoreError::Unreachable(_)));
        assert!(matches!(clone_error(&StoreError::OutcomeUnknown("lost".to_string())), StoreError::OutcomeUnknown(_)));
        assert!(matches!(clone_error(&StoreError::WriterStopped), StoreError::WriterStopped));
        let corrupt = clone_error(&StoreError::Corrupt { seq: 7, message: "bad".to_string() });
        assert!(matches!(corrupt, StoreError::Corrupt { seq: 7, .. }));
    }
}
