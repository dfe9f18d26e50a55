//! The ledger's signed notes checked with an implementation it did not
//! write (the `signed_note` crate, a port of Go's `golang.org/x/mod/sumdb/note`),
//! both ways: its notes verify there, and its notes verify here.

use ed25519_dalek::SigningKey;
use ledger_core::note::{self, CheckpointText, SIGNATURE_TYPE_ED25519, SignedNote, VerifierKey};
use signed_note::{Note, StandardSigner, StandardVerifier, VerifierList};

const ORIGIN: &str = "ledger.example/interop";

fn log_key() -> SigningKey {
    SigningKey::from_bytes(&std::array::from_fn(|position| position as u8 + 1))
}

fn checkpoint() -> CheckpointText {
    CheckpointText { origin: ORIGIN.to_string(), tree_size: 12, root_hash: [0x5a; 32], extensions: vec![] }
}

#[test]
fn our_vkey_is_the_one_the_independent_implementation_writes() {
    let ours = VerifierKey::new(ORIGIN, SIGNATURE_TYPE_ED25519, log_key().verifying_key()).unwrap().format();
    assert_eq!(ours, signed_note::new_ed25519_verifier_key(ORIGIN, &log_key().verifying_key()));
}

#[test]
fn our_checkpoint_note_verifies_with_the_independent_implementation() {
    let ours = note::sign_checkpoint(&checkpoint(), &log_key()).unwrap().format();
    let vkey = signed_note::new_ed25519_verifier_key(ORIGIN, &log_key().verifying_key());
    let verifier = StandardVerifier::new(&vkey).unwrap();
    let parsed = Note::from_bytes(ours.as_bytes()).unwrap();
    let (verified, unverified) = parsed.verify(&VerifierList::new(vec![Box::new(verifier)])).unwrap();
    assert_eq!((verified.len(), unverified.len()), (1, 0));
    assert_eq!(parsed.text(), checkpoint().format().as_bytes());

    let forged = ours.replace("\n12\n", "\n13\n");
    let verifier = StandardVerifier::new(&vkey).unwrap();
    assert!(Note::from_bytes(forged.as_bytes()).unwrap().verify(&VerifierList::new(vec![Box::new(verifier)])).is_err());
}

#[test]
fn a_note_the_independent_implementation_signs_verifies_here() {
    let seed = [[SIGNATURE_TYPE_ED25519].as_slice(), log_key().to_bytes().as_slice()].concat();
    let vkey = VerifierKey::new(ORIGIN, SIGNATURE_TYPE_ED25519, log_key().verifying_key()).unwrap();
    use base64::Engine as _;
    let skey =
        format!("PRIVATE+KEY+{ORIGIN}+{}+{}", hex::encode(vkey.key_hash), base64::engine::general_purpose::STANDARD.encode(seed));
    let signer = StandardSigner::new(&skey).unwrap();
    let mut theirs = Note::new(checkpoint().format().as_bytes(), &[]).unwrap();
    theirs.add_sigs(&[&signer]).unwrap();
    let parsed = SignedNote::parse(&theirs.to_bytes()).unwrap();
    assert_eq!(note::verify_checkpoint(&parsed, &vkey), Ok(checkpoint()));
    assert_eq!(parsed.format().as_bytes(), theirs.to_bytes().as_slice(), "the same bytes both ways");
}
