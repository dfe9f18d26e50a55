//! C2SP `tlog-tiles`: the Merkle tree served as immutable tiles, so that
//! any tile client computes inclusion and consistency proofs itself.
//!
//! A tile of level `L` and index `N` holds the hashes of tree level `8 * L`
//! at positions `N * 256` to `N * 256 + W - 1` (level 0: the leaf hashes),
//! 32 bytes each; `W` is 256 for a full tile, less for a partial one
//! (`.p/W`). An entry bundle holds entries `N * 256` to `N * 256 + W - 1`,
//! each a big-endian `u16` length then the entry: here the event's 32-byte
//! hash, the input of its leaf hash. `N` is written in groups of three
//! digits, every group but the last prefixed by `x` (`x001/x234/067`).

use ledger_core::merkle::MerkleTree;

/// Hashes (or entries) in a full tile.
pub const TILE_WIDTH: u64 = 256;
/// Tree levels per tile level.
pub const TILE_HEIGHT: usize = 8;
/// Highest tile level: tiles of level 8 would start at tree level 64.
pub const TILE_LEVEL_MAX: u8 = 7;
/// Groups of three digits in a tile index, at most: a tree holds fewer
/// than 2^63 events, so no tile index reaches 10^18.
const INDEX_GROUPS_MAX: usize = 6;
/// The paths [`TilePath::parse`] accepts, as an ECMA-262 regular
/// expression for the OpenAPI description.
pub const TILE_PATH_PATTERN: &str = "^(entries|[0-7])/(x(00[1-9]|0[1-9][0-9]|[1-9][0-9]{2})/(x[0-9]{3}/){0,4})?[0-9]{3}\
     (\\.p/([1-9]|[1-9][0-9]|1[0-9]{2}|2[0-4][0-9]|25[0-5]))?$";

/// What a tile path names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TilePath {
    /// `None` for an entry bundle.
    pub level: Option<u8>,
    pub index: u64,
    /// 1 to 256; 256 for a full tile.
    pub width: u64,
}

/// Why a tile path was refused (400), or names what the tree does not hold (404).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TileError {
    #[error(
        "a tile path is <L>/<N>[.p/<W>] or entries/<N>[.p/<W>]: L from 0 to {TILE_LEVEL_MAX}, N in groups of three digits \
         (x001/x234/067, no leading x000), W from 1 to 255 without leading zeros"
    )]
    BadPath,
    #[error("the tree of {tree_size} events does not hold this tile yet")]
    Beyond { tree_size: u64 },
}

impl TilePath {
    /// Parses the path after `/tile/`, accepting only the canonical form.
    pub fn parse(path: &str) -> Result<Self, TileError> {
        let (level, rest) = match path.strip_prefix("entries/") {
            Some(rest) => (None, rest),
            None => {
                let (level, rest) = path.split_once('/').ok_or(TileError::BadPath)?;
                (Some(parse_level(level)?), rest)
            }
        };
        let (index_text, width) = match rest.split_once(".p/") {
            Some((index_text, width)) => (index_text, parse_partial_width(width)?),
            None => (rest, TILE_WIDTH),
        };
        Ok(TilePath { level, index: parse_index(index_text)?, width })
    }

    /// The canonical path after `/tile/`.
    pub fn format(&self) -> String {
        let mut groups = Vec::new();
        let mut rest = self.index;
        // Bounded: an index below 2^64 has at most seven groups.
        loop {
            groups.push(rest % 1000);
            rest /= 1000;
            if rest == 0 {
                break;
            }
        }
        let last = groups.len() - 1;
        let index = groups
            .iter()
            .rev()
            .enumerate()
            .map(|(position, group)| if position == last { format!("{group:03}") } else { format!("x{group:03}") })
            .collect::<Vec<_>>()
            .join("/");
        let level = self.level.map_or("entries".to_string(), |level| level.to_string());
        let partial = if self.width == TILE_WIDTH { String::new() } else { format!(".p/{}", self.width) };
        format!("{level}/{index}{partial}")
    }

    /// Whether the tile is full, and so never changes.
    pub fn is_full(&self) -> bool {
        self.width == TILE_WIDTH
    }

    /// The tile's hashes from the tree, concatenated, or `Beyond` when the
    /// tree does not hold them all yet.
    pub fn hashes(&self, tree: &MerkleTree) -> Result<Vec<u8>, TileError> {
        let level = usize::from(self.level.expect("a hash tile has a level"));
        let start = self.index.checked_mul(TILE_WIDTH).ok_or(TileError::Beyond { tree_size: tree.len() })?;
        let hashes =
            tree.level_hashes(level * TILE_HEIGHT, start, self.width).ok_or(TileError::Beyond { tree_size: tree.len() })?;
        Ok(hashes.concat())
    }

    /// The seqs of an entry bundle's events: `first..=last`.
    pub fn entry_seqs(&self) -> Option<(u64, u64)> {
        let first = self.index.checked_mul(TILE_WIDTH)?.checked_add(1)?;
        Some((first, first.checked_add(self.width - 1)?))
    }
}

fn parse_level(text: &str) -> Result<u8, TileError> {
    let level: u8 = parse_decimal(text).and_then(|level| u8::try_from(level).ok()).ok_or(TileError::BadPath)?;
    if level > TILE_LEVEL_MAX { Err(TileError::BadPath) } else { Ok(level) }
}

fn parse_partial_width(text: &str) -> Result<u64, TileError> {
    parse_decimal(text).filter(|width| (1..TILE_WIDTH).contains(width)).ok_or(TileError::BadPath)
}

/// Decimal digits without sign or leading zeros.
fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty() && text.bytes().all(|byte| byte.is_ascii_digit()) && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}

fn parse_index(text: &str) -> Result<u64, TileError> {
    let groups: Vec<&str> = text.split('/').collect();
    if groups.is_empty() || groups.len() > INDEX_GROUPS_MAX {
        return Err(TileError::BadPath);
    }
    let mut index: u64 = 0;
    for (position, group) in groups.iter().enumerate() {
        let digits = if position + 1 == groups.len() { Some(*group) } else { group.strip_prefix('x') };
        let digits = digits.filter(|digits| digits.len() == 3 && digits.bytes().all(|byte| byte.is_ascii_digit()));
        let value: u64 = digits.ok_or(TileError::BadPath)?.parse().map_err(|_| TileError::BadPath)?;
        if position == 0 && value == 0 && groups.len() > 1 {
            return Err(TileError::BadPath);
        }
        index = index.checked_mul(1000).and_then(|index| index.checked_add(value)).ok_or(TileError::BadPath)?;
    }
    Ok(index)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_paths_read_back_and_format_the_same() {
        for (path, level, index, width) in [
            ("0/000", Some(0), 0, 256),
            ("0/005.p/7", Some(0), 5, 7),
            ("1/x001/x234/067", Some(1), 1_234_067, 256),
            ("entries/000.p/255", None, 0, 255),
            ("7/x999/x999/x999/x999/x999/999", Some(7), 999_999_999_999_999_999, 256),
        ] {
            let parsed = TilePath::parse(path).unwrap();
            assert_eq!(parsed, TilePath { level, index, width }, "{path}");
            assert_eq!(parsed.format(), path);
        }
    }

    #[test]
    fn non_canonical_or_out_of_range_paths_are_refused() {
        for path in [
            "",
            "0",
            "0/5",
            "0/0005",
            "0/x000/005",
            "0/001/002",
            "0/x1/002",
            "8/000",
            "00/000",
            "-1/000",
            "0/000.p/0",
            "0/000.p/256",
            "0/000.p/07",
            "0/000.p/",
            "0/000.p",
            "0/000/",
            "entries/",
            "entries/00a",
            "tiles/000",
            "0/x018/x446/x744/x073/x709/x551/616",
            "0/x001/x002/x003/x004/x005/x006/x007/008",
        ] {
            assert_eq!(TilePath::parse(path), Err(TileError::BadPath), "{path:?}");
        }
    }

    #[test]
    fn a_tile_is_the_run_of_its_level_and_is_beyond_until_the_tree_holds_it() {
        let tree = MerkleTree::from_event_hashes((0..300u32).map(|number| {
            let mut hash = [0u8; 32];
            hash[..4].copy_from_slice(&number.to_be_bytes());
            hash
        }));
        let full = TilePath::parse("0/000").unwrap().hashes(&tree).unwrap();
        assert_eq!(full.len(), 256 * 32);
        assert_eq!(&full[..32], &ledger_core::merkle::leaf_hash(&[0; 32]));
        let partial = TilePath::parse("0/001.p/44").unwrap().hashes(&tree).unwrap();
        assert_eq!(partial.len(), 44 * 32);
        assert_eq!(TilePath::parse("0/001.p/45").unwrap().hashes(&tree), Err(TileError::Beyond { tree_size: 300 }));
        assert_eq!(TilePath::parse("1/000.p/1").unwrap().hashes(&tree).unwrap(), tree.root(256).unwrap().to_vec());
        assert!(TilePath::parse("1/000.p/2").unwrap().hashes(&tree).is_err());
        assert!(TilePath::parse("0/x999/x999/x999/x999/x999/999").unwrap().hashes(&tree).is_err());
        assert_eq!(TilePath::parse("entries/x999/x999/x999/x999/x999/999").unwrap().entry_seqs(), None, "beyond any tree");
    }
}
