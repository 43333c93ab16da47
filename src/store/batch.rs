//! Reads for many messages at once (IMAP FETCH): one trip to the blocking pool, in the batch's
//! read view, for many messages instead of one per message and item. What one call returns is bounded by `FETCH_PREFETCH_MAX`: it answers for the longest
//! prefix of the messages asked that fits (at least the first, which gets `None` if it alone
//! does not fit), and the caller asks again from where it stopped.

use super::schema::{BLOB_CHUNKS, BLOB_ENDS, BLOB_META, BLOB_TAILS};
use super::{ReadView, StoreError, pieces};
use crate::limits::FETCH_PREFETCH_MAX;
use crate::mime::Part;

/// How much of a stored structure `Store::structures` returns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Detail {
    Whole,
    /// Only the root's `header_start`, `body_start` and `end`, everything else empty: enough
    /// for the message's HEADER, HEADER.FIELDS and TEXT, and a fraction of the cost, as the
    /// whole structure (ENVELOPE, every part, SEARCH's decoded header text) is most of what a
    /// header fetch would otherwise spend its time parsing.
    RootRanges,
}

impl ReadView {
    /// The stored structures of a prefix of `blobs` (the budget counts stored JSON octets), in
    /// order. `None` for a body stored without one or whose structure does not parse (the
    /// caller asks `structure`, which computes and stores it). With
    /// `Detail::RootRanges` a structure holds only the message's header and body ranges.
    pub async fn structures(
        &self,
        blobs: Vec<u64>,
        detail: Detail,
    ) -> Result<Vec<Option<Part>>, StoreError> {
        self.read(move |txn| {
            let meta = txn.open_table(BLOB_META)?;
            let ends = txn.open_table(BLOB_ENDS)?;
            let mut budget = FETCH_PREFETCH_MAX;
            let mut parts = Vec::with_capacity(blobs.len());
            for blob in blobs {
                let read = super::ends::with_structure(&meta, &ends, blob, |json| {
                    if json.len() > budget {
                        return Err(());
                    }
                    budget -= json.len();
                    Ok(match detail {
                        Detail::RootRanges => root_ranges(json),
                        Detail::Whole => None,
                    }
                    .or_else(|| serde_json::from_slice(json).ok()))
                })?;
                let part = match read {
                    Some(Ok(part)) => part,
                    Some(Err(())) if !parts.is_empty() => break,
                    _ => None,
                };
                parts.push(part);
            }
            Ok(parts)
        })
        .await
    }

    /// The first `length` octets of the bodies of a prefix of `heads` (blob, length), in order.
    /// `None` for one that is shorter than asked.
    pub async fn body_heads(
        &self,
        heads: Vec<(u64, u64)>,
    ) -> Result<Vec<Option<Vec<u8>>>, StoreError> {
        self.read(move |txn| {
            let chunks = txn.open_table(BLOB_CHUNKS)?;
            let tails = txn.open_table(BLOB_TAILS)?;
            let ends = txn.open_table(BLOB_ENDS)?;
            let mut budget = FETCH_PREFETCH_MAX as u64;
            let mut out = Vec::with_capacity(heads.len());
            for (blob, length) in heads {
                if length > budget {
                    if out.is_empty() {
                        out.push(None);
                    }
                    break;
                }
                let mut head = Vec::with_capacity(length as usize);
                let mut index = 0u32;
                while (head.len() as u64) < length {
                    let Some(data) = pieces::read(&chunks, &tails, &ends, blob, index)? else {
                        break;
                    };
                    let want = length as usize - head.len();
                    head.extend_from_slice(&data[..want.min(data.len())]);
                    index += 1;
                }
                if head.len() as u64 == length {
                    budget -= length;
                    out.push(Some(head));
                } else {
                    out.push(None);
                }
            }
            Ok(out)
        })
        .await
    }
}

/// The root's ranges, read from the start of the stored JSON: serde writes a struct's fields
/// in declaration order, and `Part` declares these three first. Anything else (a structure
/// written some other way) gives `None`, and the caller parses the whole JSON.
fn root_ranges(json: &[u8]) -> Option<Part> {
    fn number(bytes: &[u8]) -> Option<(u64, &[u8])> {
        let digits = bytes.iter().take_while(|b| b.is_ascii_digit()).count();
        let value = std::str::from_utf8(&bytes[..digits]).ok()?.parse().ok()?;
        Some((value, &bytes[digits..]))
    }
    let (header_start, rest) = number(json.strip_prefix(b"{\"header_start\":")?)?;
    let (body_start, rest) = number(rest.strip_prefix(b",\"body_start\":")?)?;
    let (end, rest) = number(rest.strip_prefix(b",\"end\":")?)?;
    rest.starts_with(b",").then(|| Part {
        header_start,
        body_start,
        end,
        ..Part::default()
    })
}

#[cfg(test)]
mod tests {
    use super::root_ranges;
    use crate::mime::{Part, structure_of};

    #[test]
    fn root_ranges_read_the_start_of_the_stored_json() {
        let message =
            b"From: a@b\r\nSubject: x\r\nContent-Type: multipart/mixed; boundary=b\r\n\r\n\
            --b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b--\r\n";
        let part = structure_of(message);
        assert!(part.body_start > 0 && part.end == message.len() as u64);
        let json = serde_json::to_vec(&part).expect("json");
        let ranges = root_ranges(&json).expect("ranges");
        assert_eq!(
            (ranges.header_start, ranges.body_start, ranges.end),
            (part.header_start, part.body_start, part.end)
        );
        assert!(ranges.children.is_empty() && ranges.envelope.is_none());
        // Not the layout serde writes: left to the full parse.
        assert!(root_ranges(b"{\"body_start\":1,\"header_start\":0,\"end\":2,").is_none());
        assert!(root_ranges(b"{\"header_start\":0,\"body_start\":,\"end\":2,").is_none());
        assert!(root_ranges(b"{\"header_start\":0,\"body_start\":1,\"end\":2}").is_none());
        let _: Part = serde_json::from_slice(&json).expect("the full parse");
    }
}
