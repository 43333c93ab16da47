//! The end of a body since schema 6: its tail (the last piece, shorter than the smallest
//! leaf-sized one, `pieces`) and its structure (JSON of `mime::Part`) in one `BLOB_ENDS`
//! value: a 4-octet little-endian length of the JSON, the JSON, the tail.
//!
//! Since schema 7 the JSON is stored deflated (raw DEFLATE, RFC 1951), and the length's top
//! bit says so; values written before keep their plain JSON and read as before. The
//! structure is most of what a small message costs beside its body (an envelope that names
//! the sender three times, field names, the search fields): deflated, a plain message's
//! ~600 octets take about half, and more values share each 4 KiB leaf
//! (docs/store-design.md, "Schema 7"). The tail is mail and is stored as it came.
//!
//! Kept apart, the two were two rows in two tables, and every delivery's commit wrote a leaf
//! of each: one 4 KiB page more per delivery, on the card, for two values a few hundred
//! octets long (docs/store-design.md, "Schema 6"). Bodies stored before schema 6 keep their
//! `BLOB_TAILS` and `BLOB_META` rows; a reader looks there first. A structure computed again
//! later (`Store::keep_structure`, for a body stored without one) goes to `BLOB_META`,
//! which therefore comes first.

use std::borrow::Cow;
use std::io::{Read, Write};

use flate2::Compression;
use flate2::read::DeflateDecoder;
use flate2::write::DeflateEncoder;
use redb::ReadableTable;

use super::StoreError;
use crate::mime::Part;

/// Octets of the structure's length before it.
const LENGTH: usize = 4;
/// The length's top bit: the structure is deflated JSON (schema 7), not plain JSON.
const DEFLATED: u32 = 1 << 31;

/// The `BLOB_ENDS` value of a body with structure `part` and tail `tail` (empty when the
/// body ends with a whole piece).
pub(super) fn encode(part: &Part, tail: &[u8]) -> Result<Vec<u8>, StoreError> {
    let json = serde_json::to_vec(part).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let mut value = Vec::with_capacity(LENGTH + json.len() / 2 + tail.len());
    value.extend_from_slice(&[0; LENGTH]);
    let mut deflate = DeflateEncoder::new(value, Compression::default());
    deflate.write_all(&json).map_err(StoreError::io)?;
    let mut value = deflate.finish().map_err(StoreError::io)?;
    let length = u32::try_from(value.len() - LENGTH)
        .ok()
        .filter(|length| length & DEFLATED == 0)
        .ok_or_else(|| StoreError::Invalid("a structure past 2 GiB".into()))?;
    value[..LENGTH].copy_from_slice(&(length | DEFLATED).to_le_bytes());
    value.extend_from_slice(tail);
    Ok(value)
}

/// The stored structure and the tail of a `BLOB_ENDS` value, and whether the structure is
/// deflated; `None` for a value that is not one.
fn split(value: &[u8]) -> Option<(&[u8], bool, &[u8])> {
    let (length, rest) = value.split_first_chunk::<LENGTH>()?;
    let length = u32::from_le_bytes(*length);
    let deflated = length & DEFLATED != 0;
    let length = usize::try_from(length & !DEFLATED).ok()?;
    (length <= rest.len()).then(|| {
        let (structure, tail) = rest.split_at(length);
        (structure, deflated, tail)
    })
}

/// The structure's JSON from its stored form.
fn json(structure: &[u8], deflated: bool) -> Result<Cow<'_, [u8]>, StoreError> {
    if !deflated {
        return Ok(Cow::Borrowed(structure));
    }
    let mut json = Vec::with_capacity(structure.len() * 3);
    DeflateDecoder::new(structure)
        .read_to_end(&mut json)
        .map_err(|_| malformed())?;
    Ok(Cow::Owned(json))
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
    let (_, _, tail) = split(end.value()).ok_or_else(malformed)?;
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
    let (structure, deflated, _) = split(end.value()).ok_or_else(malformed)?;
    Ok(Some(read(&json(structure, deflated)?)))
}

fn malformed() -> StoreError {
    StoreError::Invalid("a stored body end that is not one".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mime::structure_of;

    #[test]
    fn a_body_end_holds_the_deflated_structure_then_the_tail() {
        let part = structure_of(
            b"From: Ann <ann@example.org>\r\nTo: Bob <bob@example.org>\r\n\
              Subject: x\r\n\r\nhi\r\n",
        );
        let plain = serde_json::to_vec(&part).expect("json");
        for tail in [&b""[..], b"the last octets\r\n"] {
            let value = encode(&part, tail).expect("encode");
            let (structure, deflated, rest) = split(&value).expect("split");
            assert!(deflated);
            assert!(structure.len() < plain.len() * 3 / 4, "{}", structure.len());
            assert_eq!(rest, tail);
            let parsed: Part =
                serde_json::from_slice(&json(structure, deflated).expect("json")).expect("parse");
            assert_eq!(parsed, part);
        }
        assert!(split(b"\x09\0\0\0short").is_none());
        assert!(split(b"\x09\0\0\x80short").is_none());
        assert!(split(b"\x01\0").is_none());
    }

    #[test]
    fn a_schema_6_body_end_holds_plain_json() {
        let part = structure_of(b"Subject: x\r\n\r\nhi\r\n");
        let plain = serde_json::to_vec(&part).expect("json");
        let mut value = (plain.len() as u32).to_le_bytes().to_vec();
        value.extend_from_slice(&plain);
        value.extend_from_slice(b"tail");
        let (structure, deflated, tail) = split(&value).expect("split");
        assert!(!deflated);
        assert_eq!(tail, b"tail");
        assert_eq!(&*json(structure, deflated).expect("json"), plain.as_slice());
    }

    #[test]
    fn a_damaged_deflated_structure_is_an_error_not_a_panic() {
        assert!(json(b"\xff\xff\xff", true).is_err());
    }
}
