//! An RFC 9162 (Certificate Transparency version 2) Merkle tree over the
//! ledger's event hashes.
//!
//! The leaves are the 32-byte SHA-256 hashes of the ledger events in sequence
//! order: the event with `seq = 1` is leaf index 0, and a tree of size `n`
//! covers the events with `seq` 1 to `n`.
//!
//! Hashing follows RFC 9162 section 2.1.1:
//!
//! * leaf hash: `SHA-256(0x00 || event_hash)`,
//! * interior node hash: `SHA-256(0x01 || left || right)`,
//! * root of the empty tree: `SHA-256("")`.
//!
//! [`MerkleTree`] keeps the roots of every complete (perfect, aligned)
//! subtree, level by level, so that the root, inclusion proofs (RFC 9162
//! section 2.1.3.1, `PATH`) and consistency proofs (section 2.1.4.1,
//! `PROOF`/`SUBPROOF`) of any earlier size are computed with
//! O(log² n) hash operations and no recursion.
//!
//! [`verify_inclusion`] and [`verify_consistency`] are the client-side
//! algorithms of sections 2.1.3.2 and 2.1.4.2; they need no tree.
//!
//! A consistency proof from size 0 is refused by both sides: RFC 9162 defines
//! `PROOF(m, D[n])` only for `0 < m < n`, and every tree trivially extends the
//! empty tree, so such a proof would prove nothing. A consistency proof
//! between equal sizes is the empty list, and it verifies exactly when the
//! two roots are equal.

use sha2::{Digest, Sha256};

/// A SHA-256 digest: an event hash, a leaf hash, a node hash or a root.
pub type Hash = [u8; 32];

/// Domain separation prefix of a leaf hash (RFC 9162 section 2.1.1).
const LEAF_HASH_PREFIX: u8 = 0x00;

/// Domain separation prefix of an interior node hash (RFC 9162 section 2.1.1).
const NODE_HASH_PREFIX: u8 = 0x01;

/// Number of levels of complete subtrees a tree with at most `u64::MAX`
/// leaves can have (heights 0 to 63), and so the bound of every loop that
/// walks the tree from the leaves to the root or back.
const MAXIMUM_TREE_HEIGHT: usize = 64;

/// Why a Merkle tree request or a proof verification failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MerkleError {
    /// A leaf index that is not below the tree size.
    #[error("index {index} is outside a tree of size {size}")]
    IndexOutsideTree { index: u64, size: u64 },
    /// A tree size larger than the number of leaves the tree holds.
    #[error("size {size} is larger than the tree, which holds {leaf_count} leaves")]
    SizeBeyondTree { size: u64, leaf_count: u64 },
    /// A consistency request whose old size is larger than its new size.
    #[error("consistency from size {from} to the smaller size {to} is meaningless")]
    ConsistencyFromLargerSize { from: u64, to: u64 },
    /// A consistency request from the empty tree.
    #[error("consistency from the empty tree is meaningless")]
    ConsistencyFromEmptyTree,
    /// An inclusion proof with more hashes than the tree size allows.
    #[error("inclusion proof is longer than a tree of size {size} needs")]
    InclusionProofTooLong { size: u64 },
    /// An inclusion proof with fewer hashes than the tree size needs.
    #[error("inclusion proof is shorter than a tree of size {size} needs")]
    InclusionProofTooShort { size: u64 },
    /// An inclusion proof of the right length that yields another root.
    #[error("inclusion proof does not lead to the root")]
    InclusionProofRootMismatch,
    /// A non-empty consistency proof between two trees of the same size.
    #[error("consistency proof between two trees of the same size must be empty")]
    ConsistencyProofNotEmptyForEqualSizes,
    /// Two different roots claimed for the same tree size.
    #[error("the two roots of size {size} differ")]
    RootsOfEqualSizesDiffer { size: u64 },
    /// An empty consistency proof between two different sizes.
    #[error("consistency proof is empty")]
    ConsistencyProofEmpty,
    /// A consistency proof with more hashes than the two sizes allow.
    #[error("consistency proof is longer than sizes {from} and {to} need")]
    ConsistencyProofTooLong { from: u64, to: u64 },
    /// A consistency proof with fewer hashes than the two sizes need.
    #[error("consistency proof is shorter than sizes {from} and {to} need")]
    ConsistencyProofTooShort { from: u64, to: u64 },
    /// A consistency proof that does not rebuild the old root.
    #[error("consistency proof does not lead to the old root")]
    ConsistencyProofOldRootMismatch,
    /// A consistency proof that does not rebuild the new root.
    #[error("consistency proof does not lead to the new root")]
    ConsistencyProofNewRootMismatch,
}

/// The root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// The leaf hash of one event: `SHA-256(0x00 || event_hash)`.
pub fn leaf_hash(event_hash: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_HASH_PREFIX]);
    hasher.update(event_hash);
    hasher.finalize().into()
}

/// The hash of an interior node: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_HASH_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The largest power of two strictly smaller than `count`, the `k` of RFC
/// 9162 section 2.1.1. `count` must be at least 2.
fn largest_power_of_two_below(count: u64) -> u64 {
    assert!(count >= 2, "a split needs at least two leaves, got {count}");
    let power = 1u64 << (count - 1).ilog2();
    assert!(power < count && power.saturating_mul(2) >= count);
    power
}

/// Converts a leaf position that is known to index stored hashes.
fn to_storage_index(position: u64) -> usize {
    usize::try_from(position).expect("a stored position always fits in usize")
}

/// An append-only Merkle tree over event hashes that answers for every size
/// up to its current length.
///
/// `levels[height][i]` is the root of the complete subtree of `2^height`
/// leaves that starts at leaf `i * 2^height`. Level 0 holds the leaf hashes.
/// Each level holds exactly `len() >> height` hashes.
#[derive(Clone, Default)]
pub struct MerkleTree {
    levels: Vec<Vec<Hash>>,
}

impl std::fmt::Debug for MerkleTree {
    fn fmt(&self, formatter: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        formatter.debug_struct("MerkleTree").field("len", &self.len()).finish_non_exhaustive()
    }
}

impl MerkleTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// A tree over the given event hashes, in sequence order.
    pub fn from_event_hashes(event_hashes: impl IntoIterator<Item = Hash>) -> Self {
        let mut tree = Self::new();
        for event_hash in event_hashes {
            tree.push(&event_hash);
        }
        tree
    }

    /// The number of leaves (events) in the tree.
    pub fn len(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Appends the hash of the next event, the one whose `seq` is
    /// `len() + 1`, as leaf index `len()`.
    pub fn push(&mut self, event_hash: &Hash) {
        self.push_leaf_hash(leaf_hash(event_hash));
    }

    /// Appends a leaf hash and the roots of every complete subtree it closes.
    fn push_leaf_hash(&mut self, new_leaf_hash: Hash) {
        if self.levels.is_empty() {
            self.levels.push(Vec::new());
        }
        self.levels[0].push(new_leaf_hash);
        for height in 0..MAXIMUM_TREE_HEIGHT {
            let level_length = self.levels[height].len();
            if level_length % 2 != 0 {
                break;
            }
            let left = self.levels[height][level_length - 2];
            let right = self.levels[height][level_length - 1];
            if self.levels.len() == height + 1 {
                self.levels.push(Vec::new());
            }
            self.levels[height + 1].push(node_hash(&left, &right));
            assert_eq!(
                self.levels[height + 1].len(),
                level_length / 2,
                "level {} must hold one root per pair of level {height}",
                height + 1
            );
        }
    }

    /// `count` hashes of level `height` from position `start`: the roots of
    /// the complete subtrees of `2^height` leaves starting at leaf
    /// `(start + i) * 2^height` (level 0: the leaf hashes). `None` when the
    /// tree does not hold them all yet. A C2SP tile is such a run.
    pub fn level_hashes(&self, height: usize, start: u64, count: u64) -> Option<&[Hash]> {
        let level = self.levels.get(height)?;
        let end = start.checked_add(count)?;
        if end > level.len() as u64 {
            return None;
        }
        Some(&level[to_storage_index(start)..to_storage_index(end)])
    }

    /// The root of the tree made of the first `size` leaves (MTH of RFC 9162
    /// section 2.1.1).
    pub fn root(&self, size: u64) -> Result<Hash, MerkleError> {
        self.check_size(size)?;
        if size == 0 {
            return Ok(empty_root());
        }
        Ok(self.subtree_root(0, size))
    }

    /// The inclusion proof of leaf `index` in the tree of the first `size`
    /// leaves: `PATH(index, D[size])` of RFC 9162 section 2.1.3.1, from the
    /// sibling nearest the leaf to the one nearest the root.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(size)?;
        if index >= size {
            return Err(MerkleError::IndexOutsideTree { index, size });
        }
        // Walk PATH's recursion from the root down; each step contributes
        // the sibling subtree it does not descend into.
        let mut siblings_from_root = Vec::with_capacity(MAXIMUM_TREE_HEIGHT);
        let (mut start, mut end) = (0u64, size);
        for _ in 0..MAXIMUM_TREE_HEIGHT {
            if end - start == 1 {
                break;
            }
            let split = start + largest_power_of_two_below(end - start);
            if index < split {
                siblings_from_root.push(self.subtree_root(split, end));
                end = split;
            } else {
                siblings_from_root.push(self.subtree_root(start, split));
                start = split;
            }
        }
        assert!(start == index && end == index + 1, "the path must end at the leaf itself");
        siblings_from_root.reverse();
        Ok(siblings_from_root)
    }

    /// The consistency proof between the trees of the first `from` and the
    /// first `to` leaves: `PROOF(from, D[to])` of RFC 9162 section 2.1.4.1.
    /// It is empty when `from == to`; `from == 0` is refused.
    pub fn consistency_proof(&self, from: u64, to: u64) -> Result<Vec<Hash>, MerkleError> {
        self.check_size(to)?;
        if from > to {
            return Err(MerkleError::ConsistencyFromLargerSize { from, to });
        }
        if from == 0 {
            return Err(MerkleError::ConsistencyFromEmptyTree);
        }
        // Walk SUBPROOF's recursion from the root down. The current subtree
        // covers leaves `start..end` and always holds the old tree's last
        // leaf: `start < from <= end`. `old_tree_is_this_subtree_prefix` is
        // SUBPROOF's flag `b`: true while the old tree is a prefix of the
        // current subtree, so its root is known to the verifier.
        let mut hashes_from_root = Vec::with_capacity(MAXIMUM_TREE_HEIGHT);
        let (mut start, mut end) = (0u64, to);
        let mut old_tree_is_this_subtree_prefix = true;
        let mut reached_old_tree_edge = false;
        for _ in 0..=MAXIMUM_TREE_HEIGHT {
            assert!(start < from && from <= end, "the old edge must stay inside");
            if from == end {
                if !old_tree_is_this_subtree_prefix {
                    hashes_from_root.push(self.subtree_root(start, end));
                }
                reached_old_tree_edge = true;
                break;
            }
            let split = start + largest_power_of_two_below(end - start);
            if from <= split {
                hashes_from_root.push(self.subtree_root(split, end));
                end = split;
            } else {
                hashes_from_root.push(self.subtree_root(start, split));
                start = split;
                old_tree_is_this_subtree_prefix = false;
            }
        }
        assert!(reached_old_tree_edge, "the walk must reach the old tree edge");
        hashes_from_root.reverse();
        Ok(hashes_from_root)
    }

    /// Refuses a size larger than the tree.
    fn check_size(&self, size: u64) -> Result<(), MerkleError> {
        let leaf_count = self.len();
        if size > leaf_count {
            return Err(MerkleError::SizeBeyondTree { size, leaf_count });
        }
        Ok(())
    }

    /// The Merkle tree hash of leaves `start..end`, a non-empty range that
    /// RFC 9162's recursion can produce: `start` is a multiple of the largest
    /// power of two not above `end - start`. The range splits into complete
    /// subtrees, one per set bit of its length, largest first; MTH folds
    /// them from the right: `node(first, node(second, ... last))`.
    fn subtree_root(&self, start: u64, end: u64) -> Hash {
        assert!(start < end && end <= self.len(), "range {start}..{end}");
        let leaf_count = end - start;
        let mut folded_root: Option<Hash> = None;
        let mut piece_end = end;
        for height in 0..MAXIMUM_TREE_HEIGHT {
            let piece_width = 1u64 << height;
            if leaf_count & piece_width == 0 {
                continue;
            }
            let piece_start = piece_end - piece_width;
            assert_eq!(piece_start % piece_width, 0, "subtree must be aligned");
            let piece_root = self.levels[height][to_storage_index(piece_start >> height)];
            folded_root = Some(match folded_root {
                None => piece_root,
                Some(right_part) => node_hash(&piece_root, &right_part),
            });
            piece_end = piece_start;
            if piece_end == start {
                break;
            }
        }
        assert_eq!(piece_end, start, "the pieces must cover the range");
        folded_root.expect("a non-empty range has at least one piece")
    }
}

/// Shifts both positions right until `node_position` is odd or zero, as RFC
/// 9162 sections 2.1.3.2 and 2.1.4.2 require after hashing a left sibling.
fn shift_until_odd_or_zero(node_position: &mut u64, last_position: &mut u64) {
    if *node_position == 0 {
        return;
    }
    let shift = node_position.trailing_zeros();
    *node_position >>= shift;
    *last_position >>= shift;
    assert!(*node_position & 1 == 1);
}

/// Verifies that `event_hash` is leaf `index` of the tree of `size` leaves
/// whose root is `root`, with the algorithm of RFC 9162 section 2.1.3.2.
pub fn verify_inclusion(event_hash: &Hash, index: u64, size: u64, proof: &[Hash], root: &Hash) -> Result<(), MerkleError> {
    if index >= size {
        return Err(MerkleError::IndexOutsideTree { index, size });
    }
    let mut node_position = index; // `fn` in the RFC
    let mut last_position = size - 1; // `sn` in the RFC
    let mut computed_root = leaf_hash(event_hash);
    for sibling in proof {
        if last_position == 0 {
            return Err(MerkleError::InclusionProofTooLong { size });
        }
        if node_position & 1 == 1 || node_position == last_position {
            computed_root = node_hash(sibling, &computed_root);
            if node_position & 1 == 0 {
                shift_until_odd_or_zero(&mut node_position, &mut last_position);
            }
        } else {
            computed_root = node_hash(&computed_root, sibling);
        }
        node_position >>= 1;
        last_position >>= 1;
    }
    if last_position != 0 {
        return Err(MerkleError::InclusionProofTooShort { size });
    }
    if computed_root != *root {
        return Err(MerkleError::InclusionProofRootMismatch);
    }
    Ok(())
}

/// A tree is consistent with itself: the proof must be empty and the two
/// roots equal.
fn verify_consistency_of_equal_sizes(size: u64, from_root: &Hash, to_root: &Hash, proof: &[Hash]) -> Result<(), MerkleError> {
    if !proof.is_empty() {
        return Err(MerkleError::ConsistencyProofNotEmptyForEqualSizes);
    }
    if from_root != to_root {
        return Err(MerkleError::RootsOfEqualSizesDiffer { size });
    }
    Ok(())
}

/// Verifies that the tree of `to` leaves with root `to_root` extends the tree
/// of `from` leaves with root `from_root`, with the algorithm of RFC 9162
/// section 2.1.4.2. Equal sizes need an empty proof and equal roots; a proof
/// from size 0 is refused.
pub fn verify_consistency(from: u64, to: u64, from_root: &Hash, to_root: &Hash, proof: &[Hash]) -> Result<(), MerkleError> {
    if from > to {
        return Err(MerkleError::ConsistencyFromLargerSize { from, to });
    }
    if from == 0 {
        return Err(MerkleError::ConsistencyFromEmptyTree);
    }
    if from == to {
        return verify_consistency_of_equal_sizes(from, from_root, to_root, proof);
    }
    // Step 1, then step 2: when `from` is a power of two the old tree is a
    // complete subtree whose root starts the path.
    let Some((first_proof_hash, proof_after_first)) = proof.split_first() else {
        return Err(MerkleError::ConsistencyProofEmpty);
    };
    let (path_start, path_rest) =
        if from.is_power_of_two() { (*from_root, proof) } else { (*first_proof_hash, proof_after_first) };
    // Steps 3 and 4.
    let mut old_position = from - 1; // `fn` in the RFC
    let mut new_position = to - 1; // `sn` in the RFC
    let trailing_ones = old_position.trailing_ones();
    old_position = old_position.checked_shr(trailing_ones).unwrap_or(0);
    new_position = new_position.checked_shr(trailing_ones).unwrap_or(0);
    // Steps 5 and 6.
    let mut old_root = path_start; // `fr` in the RFC
    let mut new_root = path_start; // `sr` in the RFC
    for proof_hash in path_rest {
        if new_position == 0 {
            return Err(MerkleError::ConsistencyProofTooLong { from, to });
        }
        if old_position & 1 == 1 || old_position == new_position {
            old_root = node_hash(proof_hash, &old_root);
            new_root = node_hash(proof_hash, &new_root);
            if old_position & 1 == 0 {
                shift_until_odd_or_zero(&mut old_position, &mut new_position);
            }
        } else {
            new_root = node_hash(&new_root, proof_hash);
        }
        old_position >>= 1;
        new_position >>= 1;
    }
    // Step 7.
    if new_position != 0 {
        return Err(MerkleError::ConsistencyProofTooShort { from, to });
    }
    if old_root != *from_root {
        return Err(MerkleError::ConsistencyProofOldRootMismatch);
    }
    if new_root != *to_root {
        return Err(MerkleError::ConsistencyProofNewRootMismatch);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::HashMap;

    // ----- Reference implementation, written from the text of RFC 9162 -----
    //
    // Recursive on purpose: it mirrors the RFC's definitions line by line,
    // with `D[start:end]` written as a pair of bounds over a fixed list of
    // event hashes. MTH results are memoized by range only so that the
    // exhaustive tests stay fast in debug builds; MTH(D[a:b]) depends on
    // nothing but the entries a..b, so the memo cannot change an answer.

    struct Reference {
        entries: Vec<Hash>,
        memo: HashMap<(usize, usize), Hash>,
    }

    impl Reference {
        fn new(entries: &[Hash]) -> Self {
            Self { entries: entries.to_vec(), memo: HashMap::new() }
        }

        /// `k`: the largest power of two smaller than `n` (n > 1).
        fn split(n: usize) -> usize {
            let mut k = 1;
            while k * 2 < n {
                k *= 2;
            }
            k
        }

        /// MTH(D[start:end]) of section 2.1.1.
        fn mth(&mut self, start: usize, end: usize) -> Hash {
            if let Some(hash) = self.memo.get(&(start, end)) {
                return *hash;
            }
            let hash = match end - start {
                0 => Sha256::digest(b"").into(),
                1 => Sha256::new().chain_update([0x00]).chain_update(self.entries[start]).finalize().into(),
                n => {
                    let k = Self::split(n);
                    let left = self.mth(start, start + k);
                    let right = self.mth(start + k, end);
                    Sha256::new().chain_update([0x01]).chain_update(left).chain_update(right).finalize().into()
                }
            };
            self.memo.insert((start, end), hash);
            hash
        }

        /// PATH(m, D[start:end]) of section 2.1.3.1, `m` relative to `start`.
        fn path(&mut self, m: usize, start: usize, end: usize) -> Vec<Hash> {
            let n = end - start;
            if n == 1 {
                return Vec::new();
            }
            let k = Self::split(n);
            if m < k {
                let mut path = self.path(m, start, start + k);
                path.push(self.mth(start + k, end));
                path
            } else {
                let mut path = self.path(m - k, start + k, end);
                path.push(self.mth(start, start + k));
                path
            }
        }

        /// PROOF(m, D[0:n]) of section 2.1.4.1.
        fn proof(&mut self, m: usize, n: usize) -> Vec<Hash> {
            self.subproof(m, 0, n, true)
        }

        /// SUBPROOF(m, D[start:end], b) of section 2.1.4.1, `m` relative to
        /// `start`.
        fn subproof(&mut self, m: usize, start: usize, end: usize, b: bool) -> Vec<Hash> {
            let n = end - start;
            if m == n {
                return if b { Vec::new() } else { vec![self.mth(start, end)] };
            }
            let k = Self::split(n);
            if m <= k {
                let mut proof = self.subproof(m, start, start + k, b);
                proof.push(self.mth(start + k, end));
                proof
            } else {
                let mut proof = self.subproof(m - k, start + k, end, false);
                proof.push(self.mth(start, start + k));
                proof
            }
        }
    }

    // ----- Helpers -----

    fn event_hash(seq: u64) -> Hash {
        Sha256::digest(format!("event {seq}")).into()
    }

    fn event_hashes(count: u64) -> Vec<Hash> {
        (1..=count).map(event_hash).collect()
    }

    fn flip_bit(hash: &Hash, bit: usize) -> Hash {
        let mut flipped = *hash;
        flipped[bit / 8 % 32] ^= 1 << (bit % 8);
        flipped
    }

    fn unhex(text: &str) -> Hash {
        let mut hash = [0u8; 32];
        hex::decode_to_slice(text, &mut hash).expect("test hex");
        hash
    }

    /// Sizes 1 to this are checked for every leaf index and every pair.
    const EXHAUSTIVE_TREE_SIZE: u64 = 300;

    /// Sizes 1 to this are also checked against every kind of damage.
    const EXHAUSTIVE_TAMPERING_SIZE: u64 = 48;

    /// A tree of `size` events, the same events for the reference, and the
    /// tree's root of every size 0 to `size`.
    fn tree_reference_and_roots(size: u64) -> (MerkleTree, Reference, Vec<Hash>) {
        let (tree, reference) = tree_and_reference(size);
        let roots = (0..=size).map(|size| tree.root(size).unwrap()).collect();
        (tree, reference, roots)
    }

    /// A tree of `size` events and the same events for the reference.
    fn tree_and_reference(size: u64) -> (MerkleTree, Reference) {
        let entries = event_hashes(size);
        let tree = MerkleTree::from_event_hashes(entries.iter().copied());
        (tree, Reference::new(&entries))
    }

    // ----- Hashing and roots -----

    #[test]
    fn hashing_primitives_use_rfc_prefixes() {
        let event = event_hash(1);
        let mut leaf_input = vec![0x00];
        leaf_input.extend_from_slice(&event);
        assert_eq!(leaf_hash(&event), <Hash>::from(Sha256::digest(&leaf_input)));
        let mut node_input = vec![0x01];
        node_input.extend_from_slice(&event);
        node_input.extend_from_slice(&leaf_hash(&event));
        assert_eq!(node_hash(&event, &leaf_hash(&event)), <Hash>::from(Sha256::digest(&node_input)));
        assert_eq!(hex::encode(empty_root()), "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    }

    #[test]
    fn empty_tree_has_the_empty_root_and_no_proofs() {
        let tree = MerkleTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.len(), 0);
        assert_eq!(tree.root(0), Ok(empty_root()));
        assert_eq!(tree.root(1), Err(MerkleError::SizeBeyondTree { size: 1, leaf_count: 0 }));
        assert_eq!(tree.inclusion_proof(0, 0), Err(MerkleError::IndexOutsideTree { index: 0, size: 0 }));
        assert_eq!(format!("{tree:?}"), "MerkleTree { len: 0, .. }");
    }

    #[test]
    fn root_of_every_size_matches_reference() {
        let (tree, mut reference, roots) = tree_reference_and_roots(EXHAUSTIVE_TREE_SIZE);
        assert_eq!(tree.len(), EXHAUSTIVE_TREE_SIZE);
        for (size, root) in roots.iter().enumerate() {
            assert_eq!(*root, reference.mth(0, size), "size {size}");
        }
    }

    #[test]
    fn incremental_and_bulk_construction_agree() {
        let entries = event_hashes(77);
        let mut reference = Reference::new(&entries);
        let mut incremental = MerkleTree::new();
        for (position, entry) in entries.iter().enumerate() {
            incremental.push(entry);
            assert_eq!(incremental.len(), position as u64 + 1);
            assert_eq!(incremental.root(incremental.len()), Ok(reference.mth(0, position + 1)));
        }
        let bulk = MerkleTree::from_event_hashes(entries);
        assert_eq!(incremental.root(77), bulk.root(77));
    }

    /// Published test vectors of RFC 6962 (certificate-transparency), whose
    /// leaves are arbitrary byte strings rather than event hashes: they are
    /// fed in as leaf hashes.
    #[test]
    fn matches_certificate_transparency_vectors() {
        let leaf_data = ["", "00", "10", "2021", "3031", "40414243", "5051525354555657", "606162636465666768696a6b6c6d6e6f"];
        let roots = [
            "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
            "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
            "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
            "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
            "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
            "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
        ];
        let mut tree = MerkleTree::new();
        for data in leaf_data {
            let mut input = vec![0x00];
            input.extend(hex::decode(data).expect("test hex"));
            tree.push_leaf_hash(Sha256::digest(&input).into());
        }
        for (size, root) in (1u64..).zip(roots) {
            assert_eq!(tree.root(size), Ok(unhex(root)), "size {size}");
        }
        let hexes = |proof: Vec<Hash>| proof.into_iter().map(hex::encode).collect::<Vec<_>>();
        assert_eq!(
            hexes(tree.inclusion_proof(0, 8).unwrap()),
            [
                "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            hexes(tree.inclusion_proof(5, 8).unwrap()),
            [
                "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
        assert_eq!(
            hexes(tree.consistency_proof(2, 8).unwrap()),
            [
                "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
            ]
        );
        assert_eq!(
            hexes(tree.consistency_proof(6, 8).unwrap()),
            [
                "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
            ]
        );
    }

    /// The vectors published for independent verifiers: three events whose
    /// hashes are SHA-256("event 1"), SHA-256("event 2"), SHA-256("event 3").
    #[test]
    fn three_event_vectors_are_pinned() {
        let leaf_hex = [
            "390145b17c0eb81ab29689daccd7c7973096d862d1fc20f13c6a50a867547057",
            "844a329ebe8751c7fefa6a46cac076e69401ad5b04f8ddd016d23e4a2d8e10e7",
            "a58e5cfdb8779545e435555e821052621a96c1c68a5b9bba82a0d04e0cbb302b",
        ];
        let root_2_hex = "7d1c85e2c580f8311ac22ca0d3f5294d38e6c0331b2cadbdcdff6e18cc11c16b";
        let root_3_hex = "1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92";
        let event_hex = [
            "fb378474af5953bec611fcb2602c5b61271c1f233b60c0adba76d5d6f47a50c4",
            "7f1ee17eb6d4b1815c8c0580dfb7ca0d3d5c3cde523da817ef7d3b1e96f6d5b8",
            "6c5cd6775eb412207f7f71f11f09047f1475b2b7526063195b777a230fe4c2a6",
        ];
        let events = ["event 1", "event 2", "event 3"].map(|text| Sha256::digest(text).into());
        assert_eq!(events.map(hex::encode), event_hex);
        let tree = MerkleTree::from_event_hashes(events);
        for (event, expected) in events.iter().zip(leaf_hex) {
            assert_eq!(hex::encode(leaf_hash(event)), expected);
        }
        assert_eq!(tree.root(1), Ok(unhex(leaf_hex[0])));
        assert_eq!(tree.root(2), Ok(unhex(root_2_hex)));
        assert_eq!(tree.root(3), Ok(unhex(root_3_hex)));
        let leaves_1_and_2 = vec![unhex(leaf_hex[1]), unhex(leaf_hex[2])];
        assert_eq!(tree.inclusion_proof(0, 3), Ok(leaves_1_and_2.clone()));
        let leaves_0_and_2 = vec![unhex(leaf_hex[0]), unhex(leaf_hex[2])];
        assert_eq!(tree.inclusion_proof(1, 3), Ok(leaves_0_and_2));
        assert_eq!(tree.inclusion_proof(2, 3), Ok(vec![unhex(root_2_hex)]));
        assert_eq!(tree.root(0), Ok(empty_root()));
        assert_eq!(tree.consistency_proof(1, 3), Ok(leaves_1_and_2));
        assert_eq!(tree.consistency_proof(2, 3), Ok(vec![unhex(leaf_hex[2])]));
    }

    #[test]
    fn error_messages_are_lower_case_without_period() {
        let errors = [
            MerkleError::IndexOutsideTree { index: 5, size: 3 },
            MerkleError::SizeBeyondTree { size: 4, leaf_count: 3 },
            MerkleError::ConsistencyFromLargerSize { from: 4, to: 3 },
            MerkleError::ConsistencyFromEmptyTree,
            MerkleError::InclusionProofTooLong { size: 3 },
            MerkleError::InclusionProofTooShort { size: 3 },
            MerkleError::InclusionProofRootMismatch,
            MerkleError::ConsistencyProofNotEmptyForEqualSizes,
            MerkleError::RootsOfEqualSizesDiffer { size: 3 },
            MerkleError::ConsistencyProofEmpty,
            MerkleError::ConsistencyProofTooLong { from: 1, to: 3 },
            MerkleError::ConsistencyProofTooShort { from: 1, to: 3 },
            MerkleError::ConsistencyProofOldRootMismatch,
            MerkleError::ConsistencyProofNewRootMismatch,
        ];
        for error in errors {
            let message = error.to_string();
            assert!(!message.ends_with('.'), "{message}");
            assert_eq!(message, message.to_lowercase(), "{message}");
        }
    }

    // ----- Inclusion -----

    /// For every size in `sizes` and every leaf index: the proof equals the
    /// reference PATH and verifies, and the same proof with one flipped bit,
    /// for a wrong index, or against a wrong root is refused.
    fn check_inclusion_of_every_leaf(sizes: std::ops::RangeInclusive<u64>) {
        let (tree, mut reference, roots) = tree_reference_and_roots(*sizes.end());
        for size in sizes {
            let root = roots[size as usize];
            for index in 0..size {
                let proof = tree.inclusion_proof(index, size).unwrap();
                let expected = reference.path(index as usize, 0, size as usize);
                assert_eq!(proof, expected, "index {index} size {size}");
                let event = &reference.entries[index as usize];
                assert_eq!(verify_inclusion(event, index, size, &proof, &root), Ok(()));
                if !proof.is_empty() {
                    let mut flipped = proof.clone();
                    let position = (index as usize) % proof.len();
                    flipped[position] = flip_bit(&flipped[position], index as usize);
                    assert!(verify_inclusion(event, index, size, &flipped, &root).is_err());
                }
                let wrong_index = (index + 1) % size;
                if wrong_index != index {
                    assert!(verify_inclusion(event, wrong_index, size, &proof, &root).is_err());
                }
                let wrong_root = flip_bit(&root, size as usize);
                assert!(verify_inclusion(event, index, size, &proof, &wrong_root).is_err());
            }
        }
    }

    #[test]
    fn inclusion_proofs_match_reference_for_sizes_1_to_200() {
        check_inclusion_of_every_leaf(1..=200);
    }

    #[test]
    fn inclusion_proofs_match_reference_for_sizes_201_to_300() {
        check_inclusion_of_every_leaf(201..=EXHAUSTIVE_TREE_SIZE);
    }

    #[test]
    fn every_damaged_inclusion_proof_is_refused() {
        let (tree, reference, roots) = tree_reference_and_roots(EXHAUSTIVE_TAMPERING_SIZE);
        for size in 1..=EXHAUSTIVE_TAMPERING_SIZE {
            let root = roots[size as usize];
            for index in 0..size {
                let event = &reference.entries[index as usize];
                let proof = tree.inclusion_proof(index, size).unwrap();
                for position in 0..proof.len() {
                    for bit in [0, 77, 255] {
                        let mut flipped = proof.clone();
                        flipped[position] = flip_bit(&flipped[position], bit);
                        assert!(verify_inclusion(event, index, size, &flipped, &root).is_err());
                    }
                }
                for wrong_index in (0..size).filter(|&other| other != index) {
                    assert!(verify_inclusion(event, wrong_index, size, &proof, &root).is_err());
                }
                for wrong_size in (index + 1..=EXHAUSTIVE_TAMPERING_SIZE).filter(|&s| s != size) {
                    let wrong_root = &roots[wrong_size as usize];
                    assert!(verify_inclusion(event, index, wrong_size, &proof, wrong_root).is_err());
                }
                let wrong_event = flip_bit(event, 3);
                assert!(verify_inclusion(&wrong_event, index, size, &proof, &root).is_err());
                if let Some((_, shorter)) = proof.split_last() {
                    assert!(verify_inclusion(event, index, size, shorter, &root).is_err());
                }
                let mut longer = proof.clone();
                longer.push(root);
                assert!(verify_inclusion(event, index, size, &longer, &root).is_err());
                assert!(verify_inclusion(event, size, size, &proof, &root).is_err());
            }
        }
    }

    #[test]
    fn inclusion_errors_are_specific() {
        let entries = event_hashes(5);
        let tree = MerkleTree::from_event_hashes(entries.iter().copied());
        let root = tree.root(5).unwrap();
        let proof = tree.inclusion_proof(4, 5).unwrap();
        assert_eq!(proof.len(), 1);
        assert_eq!(verify_inclusion(&entries[4], 4, 5, &[], &root), Err(MerkleError::InclusionProofTooShort { size: 5 }));
        assert_eq!(
            verify_inclusion(&entries[4], 4, 5, &[proof[0], proof[0]], &root),
            Err(MerkleError::InclusionProofTooLong { size: 5 })
        );
        assert_eq!(verify_inclusion(&entries[3], 4, 5, &proof, &root), Err(MerkleError::InclusionProofRootMismatch));
        assert_eq!(verify_inclusion(&entries[4], 5, 5, &proof, &root), Err(MerkleError::IndexOutsideTree { index: 5, size: 5 }));
        assert_eq!(tree.inclusion_proof(5, 5), Err(MerkleError::IndexOutsideTree { index: 5, size: 5 }));
        assert_eq!(tree.inclusion_proof(0, 6), Err(MerkleError::SizeBeyondTree { size: 6, leaf_count: 5 }));
        assert_eq!(MerkleError::IndexOutsideTree { index: 5, size: 3 }.to_string(), "index 5 is outside a tree of size 3");
        assert_eq!(MerkleError::InclusionProofRootMismatch.to_string(), "inclusion proof does not lead to the root");
    }

    // ----- Consistency -----

    /// For every pair `1 <= from <= to` with `to` in `new_sizes`: the proof
    /// equals the reference PROOF and verifies, and the same proof with one
    /// flipped bit or against a wrong old or new root is refused.
    fn check_consistency_of_every_pair(new_sizes: std::ops::RangeInclusive<u64>) {
        let (tree, mut reference, roots) = tree_reference_and_roots(*new_sizes.end());
        for to in new_sizes {
            let to_root = roots[to as usize];
            for from in 1..=to {
                let from_root = roots[from as usize];
                let proof = tree.consistency_proof(from, to).unwrap();
                assert_eq!(verify_consistency(from, to, &from_root, &to_root, &proof), Ok(()), "from {from} to {to}");
                if from == to {
                    assert!(proof.is_empty());
                    continue;
                }
                let expected = reference.proof(from as usize, to as usize);
                assert_eq!(proof, expected, "from {from} to {to}");
                let mut flipped = proof.clone();
                let position = (from as usize) % proof.len();
                flipped[position] = flip_bit(&flipped[position], to as usize);
                assert!(verify_consistency(from, to, &from_root, &to_root, &flipped).is_err());
                let wrong_from_root = flip_bit(&from_root, from as usize);
                let wrong_to_root = flip_bit(&to_root, to as usize);
                assert!(verify_consistency(from, to, &wrong_from_root, &to_root, &proof).is_err());
                assert!(verify_consistency(from, to, &from_root, &wrong_to_root, &proof).is_err());
            }
        }
    }

    #[test]
    fn consistency_proofs_match_reference_for_new_sizes_1_to_200() {
        check_consistency_of_every_pair(1..=200);
    }

    #[test]
    fn consistency_proofs_match_reference_for_new_sizes_201_to_300() {
        check_consistency_of_every_pair(201..=EXHAUSTIVE_TREE_SIZE);
    }

    #[test]
    fn every_damaged_consistency_proof_is_refused() {
        let (tree, _, roots) = tree_reference_and_roots(EXHAUSTIVE_TAMPERING_SIZE);
        for to in 2..=EXHAUSTIVE_TAMPERING_SIZE {
            let to_root = &roots[to as usize];
            for from in 1..to {
                let from_root = &roots[from as usize];
                let proof = tree.consistency_proof(from, to).unwrap();
                for position in 0..proof.len() {
                    for bit in [0, 101, 255] {
                        let mut flipped = proof.clone();
                        flipped[position] = flip_bit(&flipped[position], bit);
                        assert!(verify_consistency(from, to, from_root, to_root, &flipped).is_err());
                    }
                }
                for other in (1..=EXHAUSTIVE_TAMPERING_SIZE).filter(|&s| s != from && s != to) {
                    let other_root = &roots[other as usize];
                    assert!(verify_consistency(from, to, other_root, to_root, &proof).is_err());
                    assert!(verify_consistency(from, to, from_root, other_root, &proof).is_err());
                }
                let shorter = &proof[..proof.len() - 1];
                assert!(verify_consistency(from, to, from_root, to_root, shorter).is_err());
                assert!(verify_consistency(from, to, from_root, to_root, &proof[1..]).is_err());
                let mut longer = proof.clone();
                longer.push(*to_root);
                assert!(verify_consistency(from, to, from_root, to_root, &longer).is_err());
                assert!(verify_consistency(to, from, to_root, from_root, &proof).is_err());
            }
        }
    }

    #[test]
    fn consistency_edge_cases_are_decided() {
        let (tree, _, roots) = tree_reference_and_roots(8);
        let (root3, root4, root8) = (&roots[3], &roots[4], &roots[8]);
        assert_eq!(tree.consistency_proof(4, 4), Ok(Vec::new()));
        assert_eq!(verify_consistency(4, 4, root4, root4, &[]), Ok(()));
        assert_eq!(verify_consistency(4, 4, root4, root8, &[]), Err(MerkleError::RootsOfEqualSizesDiffer { size: 4 }));
        assert_eq!(verify_consistency(4, 4, root4, root4, &[*root4]), Err(MerkleError::ConsistencyProofNotEmptyForEqualSizes));
        assert_eq!(tree.consistency_proof(0, 8), Err(MerkleError::ConsistencyFromEmptyTree));
        assert_eq!(verify_consistency(0, 8, &empty_root(), root8, &[]), Err(MerkleError::ConsistencyFromEmptyTree));
        assert_eq!(tree.consistency_proof(5, 4), Err(MerkleError::ConsistencyFromLargerSize { from: 5, to: 4 }));
        assert_eq!(verify_consistency(5, 4, root8, root4, &[]), Err(MerkleError::ConsistencyFromLargerSize { from: 5, to: 4 }));
        assert_eq!(tree.consistency_proof(1, 9), Err(MerkleError::SizeBeyondTree { size: 9, leaf_count: 8 }));
        assert_eq!(verify_consistency(4, 8, root4, root8, &[]), Err(MerkleError::ConsistencyProofEmpty));
        let proof = tree.consistency_proof(4, 8).unwrap();
        assert_eq!(verify_consistency(4, 8, root4, root4, &proof), Err(MerkleError::ConsistencyProofNewRootMismatch));
        assert_eq!(
            verify_consistency(4, 8, root4, root8, &[proof[0], proof[0]]),
            Err(MerkleError::ConsistencyProofTooLong { from: 4, to: 8 })
        );
        let proof = tree.consistency_proof(3, 8).unwrap();
        assert_eq!(verify_consistency(3, 8, root4, root8, &proof), Err(MerkleError::ConsistencyProofOldRootMismatch));
        assert_eq!(
            verify_consistency(3, 8, root3, root8, &proof[..proof.len() - 1]),
            Err(MerkleError::ConsistencyProofTooShort { from: 3, to: 8 })
        );
    }

    // ----- Larger trees -----

    #[test]
    fn larger_tree_agrees_with_reference_at_a_few_points() {
        let (tree, mut reference) = tree_and_reference(70_001);
        for size in [65_536u64, 65_537, 70_001] {
            let root = tree.root(size).unwrap();
            assert_eq!(root, reference.mth(0, size as usize));
            for index in [0, 1, 40_000, 65_535, size - 1] {
                let proof = tree.inclusion_proof(index, size).unwrap();
                assert_eq!(proof, reference.path(index as usize, 0, size as usize));
                let event = &reference.entries[index as usize];
                assert_eq!(verify_inclusion(event, index, size, &proof, &root), Ok(()));
            }
        }
        let proof = tree.consistency_proof(65_537, 70_001).unwrap();
        assert_eq!(proof, reference.proof(65_537, 70_001));
        let (old_root, new_root) = (tree.root(65_537).unwrap(), tree.root(70_001).unwrap());
        assert_eq!(verify_consistency(65_537, 70_001, &old_root, &new_root, &proof), Ok(()));
    }

    // ----- Random sizes -----

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn random_inclusion_proofs_match_reference(size in 1u64..3_000, index_seed in any::<u64>()) {
            let (tree, mut reference) = tree_and_reference(size);
            let index = index_seed % size;
            let proof = tree.inclusion_proof(index, size).unwrap();
            prop_assert_eq!(&proof, &reference.path(index as usize, 0, size as usize));
            let root = tree.root(size).unwrap();
            prop_assert_eq!(root, reference.mth(0, size as usize));
            let event = &reference.entries[index as usize];
            prop_assert_eq!(verify_inclusion(event, index, size, &proof, &root), Ok(()));
        }

        #[test]
        fn random_consistency_proofs_match_reference(to in 1u64..3_000, from_seed in any::<u64>()) {
            let (tree, mut reference) = tree_and_reference(to);
            let from = from_seed % to + 1;
            let proof = tree.consistency_proof(from, to).unwrap();
            if from < to {
                prop_assert_eq!(&proof, &reference.proof(from as usize, to as usize));
            } else {
                prop_assert!(proof.is_empty());
            }
            let (from_root, to_root) = (tree.root(from).unwrap(), tree.root(to).unwrap());
            prop_assert_eq!(verify_consistency(from, to, &from_root, &to_root, &proof), Ok(()));
        }
    }
}
