//! The end of a body since schema 6: its tail (the last piece, shorter than the smallest
//! leaf-sized one, `pieces`) and its structure (JSON of `mime::Part`) in one `BLOB_ENDS`
//! value: a 4-octet little-endian length of the JSON, the JSON, the tail.
//!
//! Kept apart, the two were two rows in two tables, and every delivery's commit wrote a leaf
//! of each: one 4 KiB page more per delivery, on the card, for two values a few hundred
//! octets long (docs/store-design.md, "Schema 6"). Bodies stored before schema 6 keep their
//! `BLOB_TAILS` and `BLOB_META` rows; a reader looks there first. A structure computed again
//! later (`Store::keep_structure`, for a body stored without one) goes to `BLOB_META`,
//! which therefore comes first.

use redb::ReadableTable;

use super::StoreError;
use crate::mime::Part;

/// Octets of the JSON's length before it.
const LENGTH: usize = 4;

/// The `BLOB_ENDS` value of a body with structure `part` and tail `tail` (empty when the
/// body ends with a whole piece).
pub(super) fn encode(part: &Part, tail: &[u8]) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(part).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let length = u32::try_from(json.len())
        .map_err(|_| StoreError::Invalid("a structure past 4 GiB".into()))?;
    let mut value = Vec::with_capacity(LENGTH + json.len() + tail.len());
    value.extend_from_slice(&length.to_le_bytes());
    value.extend_from_slice(&json);
    value.extend_from_slice(tail);
    Ok(value)
}

/// The structure's JSON and the tail of a `BLOB_ENDS` value; `None` for a value that is
/// not one.
fn split(value: &[u8]) -> Option<(&[u8], &[u8])> {
    let (length, rest) = value.split_first_chunk::<LENGTH>()?;
    let length = usize::try_from(u32::from_le_bytes(*length)).ok()?;
    (length <= rest.len()).then(|| rest.split_at(length))
}

/// The tail of body `blob`, `None` when it has none.
pub(super) fn tail(
    tails: &impl ReadableTable<u64, &'static [u8]>,
    ends: &impl ReadableTable<u64, &'static [u8]>,
    blob: u64,
) -> Result<Option<Vec<u8>>, StoreError> {
    if let Some(tail) = tails.get(blob)? {
        return Ok(Some(tail.value().to_vec()));
    }
    let Some(end) = ends.get(blob)? else {
        return Ok(None);
    };
    let (_, tail) = split(end.value()).ok_or_else(malformed)?;
    Ok((!tail.is_empty()).then(|| tail.to_vec()))
}

/// `read` applied to the stored structure JSON of body `blob`; `None` when none is stored.
pub(super) fn with_structure<T>(
    meta: &impl ReadableTable<u64, &'static [u8]>,
    ends: &impl ReadableTable<u64, &'static [u8]>,
    blob: u64,
    read: impl FnOnce(&[u8]) -> T,
) -> Result<Option<T>, StoreError> {
    if let Some(json) = meta.get(blob)? {
        return Ok(Some(read(json.value())));
    }
    let Some(end) = ends.get(blob)? else {
        return Ok(None);
    };
    let (json, _) = split(end.value()).ok_or_else(malformed)?;
    Ok(Some(read(json)))
}

fn malformed() -> StoreError {
    StoreError::Invalid("a stored body end that is not one".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::structure_of;

    #[test]
    fn a_body_end_holds_the_structure_then_the_tail() {
        let part = structure_of(b"Subject: x\r\n\r\nhi\r\n");
        for tail in [&b""[..], b"the last octets\r\n"] {
            let value = encode(&part, tail).expect("encode");
            let (json, rest) = split(&value).expect("split");
            assert_eq!(rest, tail);
            let parsed: Part = serde_json::from_slice(json).expect("json");
            assert_eq!(parsed, part);
        }
        assert!(split(b"\x09\0\0\0short").is_none());
        assert!(split(b"\x01\0").is_none());
    }
}
