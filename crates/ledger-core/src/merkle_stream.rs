//! The root of the ledger's Merkle tree (see `merkle`) computed from event
//! hashes read one at a time, in O(log n) memory.
//!
//! [`MerkleRootBuilder`] keeps only the roots of the complete subtrees that
//! the leaves pushed so far form: one per set bit of the leaf count, at most
//! 64. That is what an offline verifier needs to check a checkpoint against
//! an export of any length without holding the export's hashes.

use crate::merkle::{Hash, empty_root, leaf_hash, node_hash};

/// Complete subtrees a count of at most `u64::MAX` leaves splits into.
const SUBTREES_MAX: usize = 64;

/// A complete (perfect, aligned) subtree: its height and root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Subtree {
    height: u32,
    root: Hash,
}

/// Computes the RFC 9162 Merkle tree hash of the event hashes pushed so far.
///
/// Invariant: `subtrees` holds one complete subtree per set bit of `len`,
/// largest (leftmost) first, strictly decreasing in height.
#[derive(Clone, Debug, Default)]
pub struct MerkleRootBuilder {
    subtrees: Vec<Subtree>,
    len: u64,
}

impl MerkleRootBuilder {
    pub fn new() -> Self {
        Self { subtrees: Vec::with_capacity(SUBTREES_MAX), len: 0 }
    }

    /// The number of leaves (events) pushed.
    pub fn len(&self) -> u64 {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Appends the hash of the next event as leaf `len()`.
    pub fn push(&mut self, event_hash: &Hash) {
        let mut carried = Subtree { height: 0, root: leaf_hash(event_hash) };
        // Merging two subtrees of equal height is binary addition's carry:
        // at most one merge per bit of the count.
        for _ in 0..SUBTREES_MAX {
            match self.subtrees.last() {
                Some(left) if left.height == carried.height => {
                    carried = Subtree { height: carried.height + 1, root: node_hash(&left.root, &carried.root) };
                    self.subtrees.pop();
                }
                _ => break,
            }
        }
        self.subtrees.push(carried);
        self.len += 1;
        assert_eq!(self.subtrees.len(), self.len.count_ones() as usize, "one subtree per set bit of the leaf count");
    }

    /// The root of the tree of every leaf pushed so far: the complete
    /// subtrees folded from the right, `node(first, node(second, ... last))`,
    /// as RFC 9162's MTH splits a tree.
    pub fn root(&self) -> Hash {
        let mut subtrees = self.subtrees.iter().rev();
        let Some(last) = subtrees.next() else {
            return empty_root();
        };
        subtrees.fold(last.root, |right, left| node_hash(&left.root, &right))
    }
}

#[cfg(test)]
mod tests {
    use sha2::{Digest, Sha256};

    use super::*;
    use crate::merkle::MerkleTree;

    fn event_hash(number: u64) -> Hash {
        Sha256::digest(format!("event {number}")).into()
    }

    #[test]
    fn the_root_equals_the_merkle_trees_root_for_every_size_up_to_300() {
        let mut tree = MerkleTree::new();
        let mut builder = MerkleRootBuilder::new();
        assert_eq!(builder.root(), empty_root());
        for number in 1..=300 {
            tree.push(&event_hash(number));
            builder.push(&event_hash(number));
            assert_eq!(builder.len(), number);
            assert_eq!(builder.root(), tree.root(number).unwrap(), "size {number}");
        }
    }

    #[test]
    fn the_root_matches_the_published_test_vector_of_size_3() {
        let mut builder = MerkleRootBuilder::new();
        for number in 1..=3 {
            builder.push(&event_hash(number));
        }
        assert_eq!(hex::encode(builder.root()), "1207f030e8fb13cccfb4d9acb7958cc98ee3b95fdf9dad858022b303b96a9a92");
    }

    #[test]
    fn the_builder_keeps_one_subtree_per_set_bit_at_a_large_size() {
        let mut tree = MerkleTree::new();
        let mut builder = MerkleRootBuilder::new();
        for number in 1..=70_001 {
            tree.push(&event_hash(number));
            builder.push(&event_hash(number));
        }
        assert_eq!(builder.subtrees.len(), 70_001u64.count_ones() as usize);
        assert_eq!(builder.root(), tree.root(70_001).unwrap());
    }
}
