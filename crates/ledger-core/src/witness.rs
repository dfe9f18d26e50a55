//! A C2SP witness (`tlog-witness`, `tlog-cosignature`): it checks that
//! each checkpoint of a log it is sent extends the last one it cosigned,
//! and answers its timestamped cosignature. Pure: the caller reads and
//! writes the state and passes the time in.
//!
//! A cosignature (signature type 0x04) is an Ed25519 signature over
//!
//! ```text
//! cosignature/v1\n
//! time <seconds since the Unix epoch>\n
//! <the checkpoint's text>
//! ```
//!
//! and its signature line carries `key hash || timestamp (8 bytes, big
//! endian) || signature`.

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signature, Signer, SigningKey};
use serde::{Deserialize, Serialize};

use crate::merkle::{self, Hash};
use crate::note::{self, CheckpointText, NoteError, NoteSignature, SIGNATURE_TYPE_COSIGNATURE, SignedNote, VerifierKey};

/// Most consistency proof lines a request may carry (the spec's limit).
pub const PROOF_LINES_MAX: usize = 63;

/// Why a witness refused a checkpoint, with the HTTP status the spec gives.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WitnessRefusal {
    /// 400: the request is not an add-checkpoint body.
    #[error("malformed add-checkpoint request: {0}")]
    Malformed(String),
    /// 404: the checkpoint's origin is not the log this witness follows.
    #[error("unknown log origin {0}")]
    UnknownOrigin(String),
    /// 403: no signature of the log's key verifies.
    #[error("the checkpoint is not signed by the log's key: {0}")]
    NotSignedByLog(NoteError),
    /// 400: the old size is larger than the checkpoint's size.
    #[error("the old size {old_size} is larger than the checkpoint's size {tree_size}")]
    OldSizeLarger { old_size: u64, tree_size: u64 },
    /// 409: the old size is not the size this witness last cosigned.
    #[error("the old size {old_size} is not the size last cosigned, {latest}")]
    OldSizeMismatch { old_size: u64, latest: u64 },
    /// 409: a checkpoint of the size last cosigned with another root: a split view.
    #[error("a checkpoint of size {tree_size} was cosigned with another root: the log shows two views")]
    SplitView { tree_size: u64, latest: u64 },
    /// 422: the consistency proof does not verify.
    #[error("the consistency proof from size {old_size} to {tree_size} does not verify")]
    BadProof { old_size: u64, tree_size: u64 },
}

impl WitnessRefusal {
    /// The status the spec gives.
    pub fn status(&self) -> u16 {
        match self {
            WitnessRefusal::Malformed(_) | WitnessRefusal::OldSizeLarger { .. } => 400,
            WitnessRefusal::NotSignedByLog(_) => 403,
            WitnessRefusal::UnknownOrigin(_) => 404,
            WitnessRefusal::OldSizeMismatch { .. } | WitnessRefusal::SplitView { .. } => 409,
            WitnessRefusal::BadProof { .. } => 422,
        }
    }

    /// The size a 409 answers with (`text/x.tlog.size`).
    pub fn latest_size(&self) -> Option<u64> {
        match self {
            WitnessRefusal::OldSizeMismatch { latest, .. } | WitnessRefusal::SplitView { latest, .. } => Some(*latest),
            _ => None,
        }
    }
}

/// What the witness remembers of the log: the last checkpoint it cosigned.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WitnessState {
    pub origin: String,
    pub tree_size: u64,
    /// 64 lower-case hex characters.
    pub root_hash: String,
}

/// An add-checkpoint request: the old size, the consistency proof and the note.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddCheckpoint {
    pub old_size: u64,
    pub proof: Vec<Hash>,
    pub note: SignedNote,
}

impl AddCheckpoint {
    /// Reads `old <size>\n`, up to 63 base64 hash lines, an empty line, then the note.
    pub fn parse(body: &[u8]) -> Result<Self, WitnessRefusal> {
        let malformed = |reason: &str| WitnessRefusal::Malformed(reason.to_string());
        let text = std::str::from_utf8(body).map_err(|_| malformed("the body is utf-8"))?;
        let (head, note) = text
            .split_once("\n\n")
            .ok_or_else(|| malformed("an old size line and proof lines, an empty line, then the checkpoint"))?;
        let mut lines = head.split('\n');
        let size =
            lines.next().and_then(|line| line.strip_prefix("old ")).ok_or_else(|| malformed("the first line is old <size>"))?;
        let canonical =
            !size.is_empty() && size.bytes().all(|byte| byte.is_ascii_digit()) && (size == "0" || !size.starts_with('0'));
        let old_size =
            size.parse().ok().filter(|_| canonical).ok_or_else(|| malformed("the old size is decimal without leading zeros"))?;
        let proof = lines
            .map(|line| {
                let bytes = BASE64.decode(line).map_err(|_| malformed("a proof line is one base64 hash"))?;
                Hash::try_from(bytes).map_err(|_| malformed("a proof line is a 32-byte hash"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if proof.len() > PROOF_LINES_MAX {
            return Err(malformed("at most 63 proof lines"));
        }
        let note = SignedNote::parse(note.as_bytes()).map_err(|error| WitnessRefusal::Malformed(error.to_string()))?;
        Ok(AddCheckpoint { old_size, proof, note })
    }

    /// The body, as a log sends it.
    pub fn format(&self) -> String {
        let mut body = format!("old {}\n", self.old_size);
        for hash in &self.proof {
            body.push_str(&BASE64.encode(hash));
            body.push('\n');
        }
        body.push('\n');
        body.push_str(&self.note.format());
        body
    }
}

/// Decides a request against the state (`None`: nothing cosigned yet) and
/// returns the state to persist before cosigning, or the refusal (which
/// leaves the state as it was).
pub fn decide(
    state: Option<&WitnessState>,
    log_key: &VerifierKey,
    request: &AddCheckpoint,
) -> Result<(WitnessState, CheckpointText), WitnessRefusal> {
    let origin = request.note.text.split('\n').next().unwrap_or_default();
    if origin != log_key.name {
        return Err(WitnessRefusal::UnknownOrigin(origin.to_string()));
    }
    let checkpoint = note::verify_checkpoint(&request.note, log_key).map_err(|error| match error {
        NoteError::BadCheckpoint(_) => WitnessRefusal::Malformed(error.to_string()),
        other => WitnessRefusal::NotSignedByLog(other),
    })?;
    let (old_size, tree_size) = (request.old_size, checkpoint.tree_size);
    if old_size > tree_size {
        return Err(WitnessRefusal::OldSizeLarger { old_size, tree_size });
    }
    let latest = state.map_or(0, |state| state.tree_size);
    if old_size != latest {
        return Err(WitnessRefusal::OldSizeMismatch { old_size, latest });
    }
    let bad_proof = WitnessRefusal::BadProof { old_size, tree_size };
    match state {
        None => {
            if !request.proof.is_empty() {
                return Err(bad_proof);
            }
        }
        Some(state) => {
            let mut old_root = [0u8; 32];
            hex::decode_to_slice(&state.root_hash, &mut old_root)
                .map_err(|_| WitnessRefusal::Malformed("the witness state is unreadable".to_string()))?;
            if old_size == tree_size {
                if old_root != checkpoint.root_hash {
                    return Err(WitnessRefusal::SplitView { tree_size, latest });
                }
                if !request.proof.is_empty() {
                    return Err(bad_proof);
                }
            } else if merkle::verify_consistency(old_size, tree_size, &old_root, &checkpoint.root_hash, &request.proof).is_err() {
                return Err(bad_proof);
            }
        }
    }
    let next = WitnessState { origin: checkpoint.origin.clone(), tree_size, root_hash: hex::encode(checkpoint.root_hash) };
    Ok((next, checkpoint))
}

/// The message a cosignature signs.
pub fn cosignature_message(checkpoint_text: &str, time: u64) -> String {
    format!("cosignature/v1\ntime {time}\n{checkpoint_text}")
}

/// The witness's cosignature of a checkpoint text at `time`.
pub fn cosign(checkpoint_text: &str, name: &str, key: &SigningKey, time: u64) -> Result<NoteSignature, NoteError> {
    let verifier = VerifierKey::new(name, SIGNATURE_TYPE_COSIGNATURE, key.verifying_key())?;
    let signature = key.sign(cosignature_message(checkpoint_text, time).as_bytes());
    let mut bytes = time.to_be_bytes().to_vec();
    bytes.extend_from_slice(&signature.to_bytes());
    Ok(NoteSignature { name: verifier.name, key_hash: verifier.key_hash, signature: bytes })
}

/// Verifies the cosignature of `witness` (a type 0x04 vkey) on a note and
/// returns its timestamp.
pub fn verify_cosignature(note: &SignedNote, witness: &VerifierKey) -> Result<u64, NoteError> {
    let invalid = || NoteError::InvalidSignature { name: witness.name.clone() };
    if witness.signature_type != SIGNATURE_TYPE_COSIGNATURE {
        return Err(NoteError::BadVerifierKey("a witness key is of type 0x04 (cosignature/v1)"));
    }
    let line = note.signature_by(witness)?;
    let (time, signature) = line.signature.split_at_checked(8).ok_or_else(invalid)?;
    let time = u64::from_be_bytes(time.try_into().map_err(|_| invalid())?);
    let signature: [u8; 64] = signature.try_into().map_err(|_| invalid())?;
    witness
        .public_key
        .verify_strict(cosignature_message(&note.text, time).as_bytes(), &Signature::from_bytes(&signature))
        .map_err(|_| invalid())?;
    Ok(time)
}

/// Counts the witnesses of `witnesses` whose cosignature verifies, and
/// refuses fewer than `required`.
pub fn require_cosignatures(note: &SignedNote, witnesses: &[VerifierKey], required: usize) -> Result<usize, NoteError> {
    let verified = witnesses.iter().filter(|witness| verify_cosignature(note, witness).is_ok()).count();
    if verified < required {
        return Err(NoteError::TooFewCosignatures { verified, required });
    }
    Ok(verified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::merkle::MerkleTree;
    use crate::note::SIGNATURE_TYPE_ED25519;

    const ORIGIN: &str = "ledger.example/witnessed";

    fn log_key() -> SigningKey {
        SigningKey::from_bytes(&[1; 32])
    }

    fn log_vkey() -> VerifierKey {
        VerifierKey::new(ORIGIN, SIGNATURE_TYPE_ED25519, log_key().verifying_key()).unwrap()
    }

    fn tree(events: u8) -> MerkleTree {
        MerkleTree::from_event_hashes((1..=events).map(|number| [number; 32]))
    }

    fn note_of(size: u64, root: Hash) -> SignedNote {
        note::sign_checkpoint(
            &CheckpointText { origin: ORIGIN.to_string(), tree_size: size, root_hash: root, extensions: vec![] },
            &log_key(),
        )
        .unwrap()
    }

    fn request(old_size: u64, size: u64) -> AddCheckpoint {
        let tree = tree(8);
        let proof = if old_size == 0 || old_size >= size { vec![] } else { tree.consistency_proof(old_size, size).unwrap() };
        AddCheckpoint { old_size, proof, note: note_of(size, tree.root(size).unwrap()) }
    }

    fn state_at(size: u64) -> WitnessState {
        WitnessState { origin: ORIGIN.to_string(), tree_size: size, root_hash: hex::encode(tree(8).root(size).unwrap()) }
    }

    #[test]
    fn a_request_reads_back_as_sent() {
        let sent = request(3, 5);
        assert_eq!(AddCheckpoint::parse(sent.format().as_bytes()), Ok(sent.clone()));
        assert!(sent.format().starts_with("old 3\n"));
    }

    #[test]
    fn a_consistent_checkpoint_is_taken_and_cosigned() {
        let (first, _) = decide(None, &log_vkey(), &request(0, 3)).unwrap();
        assert_eq!(first, state_at(3));
        let (second, text) = decide(Some(&first), &log_vkey(), &request(3, 7)).unwrap();
        assert_eq!(second, state_at(7));
        let (same, _) = decide(Some(&second), &log_vkey(), &request(7, 7)).unwrap();
        assert_eq!(same, second);

        let witness = SigningKey::from_bytes(&[2; 32]);
        let line = cosign(&text.format(), "witness.example/w1", &witness, 1_700_000_000).unwrap();
        let mut cosigned = request(3, 7).note;
        cosigned.signatures.push(line);
        let witness_vkey = VerifierKey::new("witness.example/w1", SIGNATURE_TYPE_COSIGNATURE, witness.verifying_key()).unwrap();
        assert_eq!(verify_cosignature(&cosigned, &witness_vkey), Ok(1_700_000_000));
        assert_eq!(require_cosignatures(&cosigned, std::slice::from_ref(&witness_vkey), 1), Ok(1));
        let other =
            VerifierKey::new("witness.example/w2", SIGNATURE_TYPE_COSIGNATURE, SigningKey::from_bytes(&[3; 32]).verifying_key())
                .unwrap();
        assert_eq!(
            require_cosignatures(&cosigned, &[witness_vkey.clone(), other], 2),
            Err(NoteError::TooFewCosignatures { verified: 1, required: 2 })
        );
        let mut changed = cosigned.clone();
        changed.signatures[1].signature[0] ^= 1;
        assert!(verify_cosignature(&changed, &witness_vkey).is_err(), "the timestamp is signed");
        let as_note_key = VerifierKey::new("witness.example/w1", SIGNATURE_TYPE_ED25519, witness.verifying_key()).unwrap();
        assert!(verify_cosignature(&cosigned, &as_note_key).is_err());
    }

    #[test]
    fn two_checkpoints_of_one_size_are_a_split_view_and_refused_with_409() {
        let state = state_at(5);
        let other = AddCheckpoint { old_size: 5, proof: vec![], note: note_of(5, [9; 32]) };
        let refused = decide(Some(&state), &log_vkey(), &other).unwrap_err();
        assert_eq!(refused, WitnessRefusal::SplitView { tree_size: 5, latest: 5 });
        assert_eq!((refused.status(), refused.latest_size()), (409, Some(5)));
        let fork = AddCheckpoint { old_size: 5, proof: tree(8).consistency_proof(5, 7).unwrap(), note: note_of(7, [9; 32]) };
        assert_eq!(decide(Some(&state), &log_vkey(), &fork).unwrap_err().status(), 422);
    }

    #[test]
    fn each_bad_request_gets_the_status_the_spec_gives() {
        let state = state_at(3);
        let mut bad_proof = request(3, 7);
        bad_proof.proof[0][0] ^= 1;
        let mut over_other_text = request(3, 7);
        over_other_text.note.text = over_other_text.note.text.replace("\n7\n", "\n6\n");
        let other_origin = AddCheckpoint {
            note: note::sign_checkpoint(
                &CheckpointText { origin: "other.example/log".to_string(), tree_size: 7, root_hash: [0; 32], extensions: vec![] },
                &log_key(),
            )
            .unwrap(),
            ..request(3, 7)
        };
        let other_key = AddCheckpoint {
            note: note::sign_checkpoint(
                &CheckpointText {
                    origin: ORIGIN.to_string(),
                    tree_size: 7,
                    root_hash: tree(8).root(7).unwrap(),
                    extensions: vec![],
                },
                &SigningKey::from_bytes(&[5; 32]),
            )
            .unwrap(),
            ..request(3, 7)
        };
        let cases = [
            (request(5, 4), 400),
            (request(2, 7), 409),
            (bad_proof, 422),
            (over_other_text, 403),
            (other_origin, 404),
            (other_key, 403),
            (AddCheckpoint { proof: vec![[0; 32]], ..request(3, 3) }, 422),
        ];
        for (request, status) in cases {
            let refused = decide(Some(&state), &log_vkey(), &request).unwrap_err();
            assert_eq!(refused.status(), status, "{refused}");
        }
        assert_eq!(decide(Some(&state), &log_vkey(), &request(2, 7)).unwrap_err().latest_size(), Some(3));
        assert_eq!(decide(None, &log_vkey(), &request(0, 3).clone()).map(|(state, _)| state.tree_size), Ok(3));
        assert_eq!(
            decide(None, &log_vkey(), &AddCheckpoint { proof: vec![[0; 32]], ..request(0, 3) }).unwrap_err().status(),
            422
        );
    }

    #[test]
    fn malformed_bodies_are_refused_with_400() {
        let good = request(3, 7).format();
        for body in [
            good.replacen("old 3", "old 03", 1),
            good.replacen("old 3", "new 3", 1),
            good.replacen("old 3\n", "old 3\nnot base64!\n", 1),
            good.replacen("old 3\n", &format!("old 3\n{}\n", BASE64.encode([1; 31])), 1),
            good.replacen("\n\n", "\n", 1),
            format!("old 3\n{}\n{}", format!("{}\n", BASE64.encode([1; 32])).repeat(64), good.split_once("\n\n").unwrap().1),
            "old 3\n\nnot a note".to_string(),
        ] {
            let refused = AddCheckpoint::parse(body.as_bytes()).unwrap_err();
            assert_eq!(refused.status(), 400, "{body:?}: {refused}");
        }
    }
}
