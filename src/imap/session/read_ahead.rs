//! FETCH read-ahead: the stored structures and the message bytes that the next messages of a
//! FETCH need, read from the batch's read view for many messages at once
//! (`ReadView::structures`, `ReadView::body_heads`) instead of one trip to the blocking pool per message and item, which
//! cost more than the work itself. Bounded by `FETCH_PREFETCH_MAX`; whatever is not read
//! ahead (a large body, a structure not stored yet) is read on its own as before.

use std::sync::Arc;

use crate::imap::proto::{FetchAttr, SectionText};
use crate::mime::Part;
use crate::store::{Detail, MessageInfo, ReadView};

/// Which octets of each message the items of a FETCH read from the store.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Bytes {
    None,
    /// The top-level header block (HEADER, HEADER.FIELDS, RFC822.HEADER).
    Header,
    Whole,
}

/// Whether an item of `attrs` needs the message's stored structure.
pub(super) fn needs_structure(attrs: &[FetchAttr]) -> bool {
    attrs.iter().any(|a| match a {
        FetchAttr::Envelope | FetchAttr::Body | FetchAttr::BodyStructure => true,
        FetchAttr::Section { section, .. } => !section.part.is_empty() || section.text.is_some(),
        FetchAttr::Rfc822Header | FetchAttr::Rfc822Text => true,
        FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } => !part.is_empty(),
        _ => false,
    })
}

/// Whether the message's ranges (`Detail::RootRanges`) are all the structure `attrs` need:
/// only items that need no structure, or the whole message's HEADER, HEADER.FIELDS or TEXT.
fn root_ranges_suffice(attrs: &[FetchAttr]) -> bool {
    attrs.iter().all(|a| match a {
        FetchAttr::Flags
        | FetchAttr::Uid
        | FetchAttr::InternalDate
        | FetchAttr::Rfc822Size
        | FetchAttr::ModSeq
        | FetchAttr::Rfc822
        | FetchAttr::Rfc822Header
        | FetchAttr::Rfc822Text => true,
        FetchAttr::Section { section, .. } => {
            section.part.is_empty()
                && matches!(
                    section.text,
                    None | Some(
                        SectionText::Header | SectionText::HeaderFields { .. } | SectionText::Text
                    )
                )
        }
        _ => false,
    })
}

/// BINARY decodes from its own reader, so it is not counted here.
fn bytes_needed(attrs: &[FetchAttr]) -> Bytes {
    let mut needed = Bytes::None;
    for attr in attrs {
        let this = match attr {
            FetchAttr::Rfc822Header => Bytes::Header,
            FetchAttr::Rfc822 | FetchAttr::Rfc822Text => Bytes::Whole,
            FetchAttr::Section { section, .. } => match &section.text {
                Some(SectionText::Header | SectionText::HeaderFields { .. })
                    if section.part.is_empty() =>
                {
                    Bytes::Header
                }
                _ => Bytes::Whole,
            },
            _ => Bytes::None,
        };
        if this == Bytes::Whole || needed == Bytes::None {
            needed = this;
        }
    }
    needed
}

#[derive(Default)]
pub(super) struct ReadAhead {
    /// The first and last UID of the rows read ahead for (rows come in ascending UID order).
    covered: Option<(u32, u32)>,
    /// By blob, sorted (a window holds a few hundred; looked up twice per message).
    structures: Vec<(u64, Arc<Part>)>,
    /// By blob, sorted: the body's first octets.
    heads: Vec<(u64, Vec<u8>)>,
}

impl ReadAhead {
    /// Forgets everything: a new FETCH starts from the store's current state.
    pub fn clear(&mut self) {
        *self = ReadAhead::default();
    }

    pub fn covers(&self, uid: u32) -> bool {
        self.covered
            .is_some_and(|(first, last)| (first..=last).contains(&uid))
    }

    /// Reads ahead for `rows` (the current message and those after it), as far as the budget
    /// goes; covers at least the first row, even when nothing could be read for it.
    pub async fn load(&mut self, view: &ReadView, rows: &[MessageInfo], attrs: &[FetchAttr]) {
        self.clear();
        let Some(first) = rows.first() else {
            return;
        };
        let (structure, bytes) = (needs_structure(attrs), bytes_needed(attrs));
        if !structure && bytes == Bytes::None {
            self.covered = Some((first.uid, u32::MAX));
            return;
        }
        let mut rows = rows;
        if structure || bytes == Bytes::Header {
            let blobs = rows.iter().map(|r| r.blob).collect();
            let detail = if root_ranges_suffice(attrs) {
                Detail::RootRanges
            } else {
                Detail::Whole
            };
            let parts = view.structures(blobs, detail).await.unwrap_or_default();
            rows = &rows[..parts.len().max(1)];
            for (row, part) in rows.iter().zip(parts) {
                if let Some(part) = part {
                    self.structures.push((row.blob, Arc::new(part)));
                }
            }
            self.structures.sort_unstable_by_key(|&(blob, _)| blob);
        }
        if bytes != Bytes::None {
            let heads: Vec<(u64, u64)> = rows
                .iter()
                .map(|row| {
                    let length = match bytes {
                        Bytes::Whole => row.size,
                        _ => self.structure(row.blob).map_or(0, |p| p.body_start),
                    };
                    (row.blob, length)
                })
                .collect();
            let read = view.body_heads(heads).await.unwrap_or_default();
            rows = &rows[..read.len().max(1)];
            for (row, head) in rows.iter().zip(read) {
                if let Some(head) = head {
                    self.heads.push((row.blob, head));
                }
            }
            self.heads.sort_unstable_by_key(|&(blob, _)| blob);
        }
        let last = rows.last().map_or(first.uid, |r| r.uid);
        self.covered = Some((first.uid, last));
    }

    pub fn structure(&self, blob: u64) -> Option<Arc<Part>> {
        let index = self
            .structures
            .binary_search_by_key(&blob, |&(b, _)| b)
            .ok()?;
        Some(self.structures[index].1.clone())
    }

    /// Octets `start..end` of a body, if they were read ahead.
    pub fn bytes(&self, blob: u64, start: u64, end: u64) -> Option<&[u8]> {
        let index = self.heads.binary_search_by_key(&blob, |&(b, _)| b).ok()?;
        let head = &self.heads[index].1;
        let range = usize::try_from(start).ok()?..usize::try_from(end).ok()?;
        head.get(range)
    }
}
