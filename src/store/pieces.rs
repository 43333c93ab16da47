//! How a body is cut into the values of `BLOB_CHUNKS`.
//!
//! redb keeps a value that does not fit a 4 KiB page alone in a leaf of a power-of-two number
//! of pages, beside the leaf's header, the value's length and its key. A 64 KiB piece and
//! those 20 octets took a 128 KiB leaf: the store held every body twice over in disk space,
//! and a delivery wrote twice its size (docs/store-design.md has the measurements). Bodies
//! are therefore cut so that each piece and its overhead fill a leaf exactly: pieces of
//! 64 KiB less the overhead while the body lasts, then the rest as pieces of 32, 16, 8 and
//! 4 KiB less the overhead, largest first, and a last piece shorter than that, the tail, kept
//! in `BLOB_TAILS`, where tails share leaves with each other.
//!
//! Stores written before schema 5 keep the bodies they had, in pieces of 64 KiB
//! (`Layout::Fixed`); `META`'s "first_paged_blob" says which blobs are cut the new way.

use redb::ReadableTable;

use super::StoreError;

/// Octets redb keeps beside a `BLOB_CHUNKS` value in a leaf of its own: the leaf's header (4),
/// the value's length (4) and the key, a `(u64, u32)` (12). Checked against redb itself by
/// `store::tests::pieces_fill_redb_leaves`.
const LEAF_OVERHEAD: usize = 20;

/// The piece sizes, largest first: with `LEAF_OVERHEAD` each fills a leaf of 64, 32, 16, 8 or
/// 4 KiB.
const PIECES: [usize; 5] = [
    64 * 1024 - LEAF_OVERHEAD,
    32 * 1024 - LEAF_OVERHEAD,
    16 * 1024 - LEAF_OVERHEAD,
    8 * 1024 - LEAF_OVERHEAD,
    4 * 1024 - LEAF_OVERHEAD,
];

/// The longest piece of the current layout.
pub(super) const PIECE_MAX: usize = PIECES[0];

/// The pieces of the layout of stores before schema 5.
const FIXED_PIECE: u64 = 64 * 1024;

/// How the pieces of one body are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Layout {
    /// Written before schema 5: 64 KiB pieces, the last one shorter.
    Fixed,
    /// Leaf-sized pieces (`paged`).
    Paged,
}

impl Layout {
    /// The layout of blob `blob` in a store whose first blob cut the current way is
    /// `first_paged`.
    pub fn of(blob: u64, first_paged: u64) -> Layout {
        if blob < first_paged {
            Layout::Fixed
        } else {
            Layout::Paged
        }
    }

    /// The piece of a body of `size` octets that holds octet `offset`, and the offset that
    /// piece starts at. An offset at or past the end gives the index after the last piece.
    pub fn locate(self, size: u64, offset: u64) -> (u32, u64) {
        let index_of = |n: u64| u32::try_from(n).unwrap_or(u32::MAX);
        match self {
            Layout::Fixed if offset >= size => (index_of(size.div_ceil(FIXED_PIECE)), size),
            Layout::Fixed => (
                index_of(offset / FIXED_PIECE),
                offset / FIXED_PIECE * FIXED_PIECE,
            ),
            Layout::Paged => {
                let piece = PIECE_MAX as u64;
                let full = size / piece;
                if offset < full * piece {
                    return (index_of(offset / piece), offset / piece * piece);
                }
                let mut index = full;
                let mut start = full * piece;
                for length in paged(size - start) {
                    if offset < start + length as u64 {
                        break;
                    }
                    start += length as u64;
                    index += 1;
                }
                (index_of(index), start)
            }
        }
    }
}

/// The lengths of the pieces of a new body of `size` octets, in order.
pub(super) fn paged(size: u64) -> impl Iterator<Item = usize> {
    let mut left = size;
    std::iter::from_fn(move || {
        if left == 0 {
            return None;
        }
        let length = PIECES
            .iter()
            .map(|&p| p as u64)
            .find(|&p| p <= left)
            .unwrap_or(left);
        left -= length;
        usize::try_from(length).ok()
    })
}

/// Whether a piece of `paged` is the body's tail (kept in `BLOB_TAILS`).
pub(super) fn is_tail(length: usize) -> bool {
    length < PIECES[PIECES.len() - 1]
}

/// Piece `index` of body `blob`: from `BLOB_CHUNKS`, or right after the last of those, the
/// body's tail (`ends::tail`: `BLOB_TAILS` or `BLOB_ENDS`). `None` past the end.
pub(super) fn read(
    chunks: &impl ReadableTable<(u64, u32), &'static [u8]>,
    tails: &impl ReadableTable<u64, &'static [u8]>,
    ends: &impl ReadableTable<u64, &'static [u8]>,
    blob: u64,
    index: u32,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(piece) = chunks.get((blob, index))? {
        return Ok(Some(piece.value().to_vec()));
    }
    let after_last = match index.checked_sub(1) {
        None => true,
        Some(previous) => chunks.get((blob, previous))?.is_some(),
    };
    if !after_last {
        return Ok(None);
    }
    super::ends::tail(tails, ends, blob)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paged_pieces_fill_leaves_and_add_up() {
        for size in [
            0u64,
            1,
            4075,
            4076,
            4077,
            65515,
            65516,
            65517,
            262_364,
            10 << 20,
        ] {
            let pieces: Vec<usize> = paged(size).collect();
            assert_eq!(
                pieces.iter().map(|&p| p as u64).sum::<u64>(),
                size,
                "{size}"
            );
            let (last, whole) = pieces
                .split_last()
                .map_or((None, &[][..]), |(l, w)| (Some(l), w));
            for &piece in whole {
                assert!(PIECES.contains(&piece), "{size}: {piece}");
            }
            // Only the last piece may be shorter than the smallest leaf-sized one.
            if let Some(&last) = last {
                assert!(PIECES.contains(&last) || last < PIECES[4], "{size}: {last}");
            }
        }
        assert_eq!(paged(4096).collect::<Vec<_>>(), [4076, 20]);
        assert_eq!(paged(65536 * 2).collect::<Vec<_>>(), [65516, 65516, 40]);
    }

    #[test]
    fn locate_finds_the_piece_of_every_offset() {
        for size in [1u64, 4096, 65516, 65517, 100_000, 262_364, 3 << 20] {
            let pieces: Vec<u64> = paged(size).map(|p| p as u64).collect();
            let mut start = 0;
            for (index, &length) in pieces.iter().enumerate() {
                for offset in [start, start + length / 2, start + length - 1] {
                    assert_eq!(
                        Layout::Paged.locate(size, offset),
                        (index as u32, start),
                        "{size} at {offset}"
                    );
                }
                start += length;
            }
            assert_eq!(
                Layout::Paged.locate(size, size),
                (pieces.len() as u32, size)
            );
        }
        assert_eq!(Layout::Fixed.locate(200_000, 140_000), (2, 131_072));
        assert_eq!(Layout::Fixed.locate(200_000, 200_000), (4, 200_000));
        assert_eq!(Layout::of(4, 5), Layout::Fixed);
        assert_eq!(Layout::of(5, 5), Layout::Paged);
    }
}
