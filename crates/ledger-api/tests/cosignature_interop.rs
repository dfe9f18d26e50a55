//! The witness's cosignatures checked by an implementation this project did
//! not write: the `sigsum` crate (Sigsum's Rust verifier), whose logs sign
//! C2SP checkpoints and whose witnesses cosign them in the C2SP
//! `cosignature/v1` format. A Sigsum log is a tlog whose origin is
//! `sigsum.org/v1/tree/<hex SHA-256 of the log key>` and whose leaves are
//! `checksum || signature || signer key hash`. The test builds such a log,
//! signs its checkpoints with the ledger's own note code, has `ledger
//! witness` (its `Witness`) follow it through a consistency proof, and hands
//! the witness's cosignature lines to `sigsum::verify`, which rebuilds the
//! cosigned message itself and checks a quorum of witnesses.

use base64::Engine as _;
use ed25519_dalek::{Signer, SigningKey};
use ledger_api::witness::Witness;
use ledger_core::merkle::{self, Hash};
use ledger_core::note::{self, CheckpointText, SIGNATURE_TYPE_ED25519, SignedNote, VerifierKey};
use sha2::{Digest, Sha256};

const TIME: u64 = 1_767_225_600;

fn sha256(bytes: &[u8]) -> Hash {
    Sha256::digest(bytes).into()
}

/// A Sigsum log: its key, and one signer who logged two messages.
struct SigsumLog {
    log_key: SigningKey,
    signer: SigningKey,
    /// For each leaf: the message's checksum and the signer's signature.
    leaves: Vec<(Hash, [u8; 64])>,
}

impl SigsumLog {
    fn new() -> Self {
        let signer = SigningKey::from_bytes(&[7; 32]);
        let leaves = ["first message\n", "second message\n"]
            .iter()
            .map(|message| {
                let checksum = sha256(&sha256(message.as_bytes()));
                let signed = [b"sigsum.org/v1/tree-leaf\x00".as_slice(), &checksum].concat();
                (checksum, signer.sign(&signed).to_bytes())
            })
            .collect();
        SigsumLog { log_key: SigningKey::from_bytes(&[5; 32]), signer, leaves }
    }

    fn origin(&self) -> String {
        format!("sigsum.org/v1/tree/{}", hex::encode(sha256(self.log_key.verifying_key().as_bytes())))
    }

    fn vkey(&self) -> VerifierKey {
        VerifierKey::new(&self.origin(), SIGNATURE_TYPE_ED25519, self.log_key.verifying_key()).unwrap()
    }

    /// RFC 6962 leaf hash of leaf `index` (Sigsum's leaf layout).
    fn leaf_hash(&self, index: usize) -> Hash {
        let (checksum, signature) = &self.leaves[index];
        let keyhash = sha256(self.signer.verifying_key().as_bytes());
        sha256(&[[0u8].as_slice(), checksum, signature, &keyhash].concat())
    }

    fn root(&self, size: usize) -> Hash {
        match size {
            1 => self.leaf_hash(0),
            2 => merkle::node_hash(&self.leaf_hash(0), &self.leaf_hash(1)),
            _ => unreachable!("the test log holds two leaves"),
        }
    }

    fn checkpoint(&self, size: usize) -> SignedNote {
        let text =
            CheckpointText { origin: self.origin(), tree_size: size as u64, root_hash: self.root(size), extensions: vec![] };
        note::sign_checkpoint(&text, &self.log_key).unwrap()
    }
}

/// An add-checkpoint body as a log sends it.
fn request(old_size: u64, proof: &[Hash], note: &SignedNote) -> String {
    let mut body = format!("old {old_size}\n");
    for hash in proof {
        body.push_str(&base64::engine::general_purpose::STANDARD.encode(hash));
        body.push('\n');
    }
    body.push('\n');
    body + &note.format()
}

/// Splits a cosignature line `— <name> base64(key id || timestamp || signature)`
/// into its timestamp and signature.
fn cosignature_parts(line: &str) -> (u64, [u8; 64]) {
    let encoded = line.trim_end().rsplit(' ').next().unwrap();
    let bytes = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
    assert_eq!(bytes.len(), 4 + 8 + 64, "key id, timestamp and an Ed25519 signature");
    (u64::from_be_bytes(bytes[4..12].try_into().unwrap()), bytes[12..].try_into().unwrap())
}

/// The Sigsum signature of leaf 0 in a tree of size 2, with the log's
/// signature and the witnesses' cosignatures, in Sigsum's ASCII format.
fn sigsum_signature(log: &SigsumLog, note: &SignedNote, cosignatures: &[(Hash, u64, [u8; 64])]) -> String {
    let log_signature = &note.signatures[0].signature;
    let mut ascii = format!(
        "version=2\nlog={}\nleaf={} {}\n\nsize=2\nroot_hash={}\nsignature={}\n",
        hex::encode(sha256(log.log_key.verifying_key().as_bytes())),
        hex::encode(sha256(log.signer.verifying_key().as_bytes())),
        hex::encode(log.leaves[0].1),
        hex::encode(log.root(2)),
        hex::encode(log_signature),
    );
    for (keyhash, time, signature) in cosignatures {
        ascii.push_str(&format!("cosignature={} {time} {}\n", hex::encode(keyhash), hex::encode(signature)));
    }
    ascii.push_str(&format!("\nleaf_index=0\nnode_hash={}\n", hex::encode(log.leaf_hash(1))));
    ascii
}

/// A Sigsum policy: the log, the witnesses by name, and the quorum: one
/// witness's name, or `all` (a group of every witness listed).
fn policy(log: &SigsumLog, witnesses: &[(&str, &VerifierKey)], quorum: &str) -> sigsum::Policy {
    let mut text = format!("log {}\n", hex::encode(log.log_key.verifying_key().as_bytes()));
    for (name, key) in witnesses {
        text.push_str(&format!("witness {name} {}\n", hex::encode(key.public_key.as_bytes())));
    }
    if quorum == "all" {
        let names: Vec<&str> = witnesses.iter().map(|(name, _)| *name).collect();
        text.push_str(&format!("group all all {}\n", names.join(" ")));
    }
    text.push_str(&format!("quorum {quorum}\n"));
    sigsum::Policy::parse(&text).unwrap()
}

fn verify(ascii: &str, policy: &sigsum::Policy) -> Result<(), String> {
    let signature = sigsum::SigsumSignature::from_ascii(ascii).map_err(|error| error.to_string())?;
    let message = sigsum::Hash::from(sha256(b"first message\n"));
    let signer = sigsum::PublicKey::from(*SigningKey::from_bytes(&[7; 32]).verifying_key().as_bytes());
    sigsum::verify(&message, &signature, &[signer], policy).map_err(|error| error.to_string())
}

#[tokio::test]
async fn the_witness_cosignatures_verify_with_sigsum() {
    let log = SigsumLog::new();
    let folder = tempfile_dir();
    let first = Witness::open(&folder.join("w1.state"), log.vkey(), &folder.join("w1.key"), "witness.example/w1").unwrap();
    let second = Witness::open(&folder.join("w2.state"), log.vkey(), &folder.join("w2.key"), "witness.example/w2").unwrap();

    // Each witness sees size 1, then size 2 with the consistency proof.
    let mut lines = Vec::new();
    for witness in [&first, &second] {
        witness.add_checkpoint(request(0, &[], &log.checkpoint(1)).as_bytes(), TIME - 60).await.unwrap();
        let proof = [log.leaf_hash(1)];
        lines.push(witness.add_checkpoint(request(1, &proof, &log.checkpoint(2)).as_bytes(), TIME).await.unwrap());
    }
    let (first_vkey, second_vkey) = (first.vkey(), second.vkey());
    let cosignature = |line: &str, vkey: &VerifierKey| {
        let (time, signature) = cosignature_parts(line);
        (sha256(vkey.public_key.as_bytes()), time, signature)
    };
    let cosignatures = [cosignature(&lines[0], &first_vkey), cosignature(&lines[1], &second_vkey)];
    assert_eq!(cosignatures[0].1, TIME, "the cosignature carries the time it was made");
    let note = log.checkpoint(2);
    let both = policy(&log, &[("W1", &first_vkey), ("W2", &second_vkey)], "all");

    verify(&sigsum_signature(&log, &note, &cosignatures), &both).expect("sigsum accepts both witnesses' cosignatures");
    let only_first = policy(&log, &[("W1", &first_vkey)], "W1");
    verify(&sigsum_signature(&log, &note, &cosignatures[..1]), &only_first).expect("one witness meets a quorum of one");

    // What sigsum must refuse: a quorum not met, a cosignature with another
    // timestamp than the one signed, a flipped signature bit, a cosignature
    // of another tree.
    let refused = verify(&sigsum_signature(&log, &note, &cosignatures[..1]), &both).unwrap_err();
    assert!(refused.contains("not enough valid cosignatures"), "{refused}");
    let mut retimed = cosignatures;
    retimed[0].1 += 1;
    let refused = verify(&sigsum_signature(&log, &note, &retimed), &both).unwrap_err();
    assert!(refused.contains("bad witness cosignature"), "{refused}");
    let mut flipped = cosignatures;
    flipped[1].2[0] ^= 1;
    assert!(verify(&sigsum_signature(&log, &note, &flipped), &both).is_err());
    let witness_of_size_one = SigningKey::from_bytes(&[9; 32]);
    let other_tree =
        ledger_core::witness::cosign(&log.checkpoint(1).text, "witness.example/w1", &witness_of_size_one, TIME).unwrap().line();
    let impostor =
        VerifierKey::new("witness.example/w1", note::SIGNATURE_TYPE_COSIGNATURE, witness_of_size_one.verifying_key()).unwrap();
    let mut of_other_tree = cosignatures;
    of_other_tree[0] = cosignature(&other_tree, &impostor);
    let impostor_policy = policy(&log, &[("W1", &impostor)], "W1");
    assert!(verify(&sigsum_signature(&log, &note, &of_other_tree[..1]), &impostor_policy).is_err());
}

/// A fresh folder under the system's temporary directory.
fn tempfile_dir() -> std::path::PathBuf {
    let folder = std::env::temp_dir().join(format!("ledger-cosignature-interop-{}", uuid::Uuid::now_v7()));
    std::fs::create_dir_all(&folder).unwrap();
    folder
}
