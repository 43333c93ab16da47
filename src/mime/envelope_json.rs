//! How a stored structure (JSON, `BLOB_META`) holds an encoded ENVELOPE: as a JSON string when
//! it is UTF-8, as it nearly always is, else as an array of octets. Structures written before
//! this hold every envelope as an array, which still reads: one octet a JSON number made
//! parsing the numbers most of the CPU time of FETCH ENVELOPE. A Letterbox from before this
//! reads a string envelope as a structure that does not parse, and computes it again from
//! the body (`Store::message_structure`).

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::ser::Serializer;

pub fn serialize<S: Serializer>(envelope: &Option<Vec<u8>>, s: S) -> Result<S::Ok, S::Error> {
    match envelope {
        None => s.serialize_none(),
        Some(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => s.serialize_some(text),
            Err(_) => s.serialize_some(bytes),
        },
    }
}

pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<u8>>, D::Error> {
    d.deserialize_option(Envelope)
}

struct Envelope;

impl<'de> Visitor<'de> for Envelope {
    type Value = Option<Vec<u8>>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("null, a string or an array of octets")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        d.deserialize_any(Octets).map(Some)
    }
}

struct Octets;

impl<'de> Visitor<'de> for Octets {
    type Value = Vec<u8>;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string or an array of octets")
    }

    fn visit_str<E: de::Error>(self, text: &str) -> Result<Vec<u8>, E> {
        Ok(text.as_bytes().to_vec())
    }

    fn visit_bytes<E: de::Error>(self, bytes: &[u8]) -> Result<Vec<u8>, E> {
        Ok(bytes.to_vec())
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Vec<u8>, A::Error> {
        let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0));
        while let Some(octet) = seq.next_element::<u8>()? {
            out.push(octet);
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use crate::mime::{Part, structure_of};

    #[test]
    fn envelopes_are_stored_as_strings_and_read_in_both_forms() {
        let part = structure_of(b"From: a@b\r\nSubject: caf\xc3\xa9\r\n\r\nhi\r\n");
        let envelope = part.envelope.clone().expect("envelope");
        let json = serde_json::to_string(&part).expect("json");
        let text = String::from_utf8(envelope.clone()).expect("utf-8");
        assert!(json.contains(&serde_json::to_string(&text).expect("string")));
        assert_eq!(serde_json::from_str::<Part>(&json).expect("parse"), part);

        // As structures were stored before: the envelope as an array of octets.
        let mut old: serde_json::Value = serde_json::from_str(&json).expect("value");
        old["envelope"] = serde_json::json!(envelope);
        assert!(old["envelope"].is_array());
        assert_eq!(serde_json::from_value::<Part>(old).expect("old form"), part);

        // Octets that are not UTF-8 stay an array, and round-trip.
        let odd = Part {
            envelope: Some(vec![b'(', 0xff, b')']),
            ..Part::default()
        };
        let json = serde_json::to_string(&odd).expect("json");
        assert!(json.contains("\"envelope\":[40,255,41]"));
        assert_eq!(serde_json::from_str::<Part>(&json).expect("parse"), odd);
        let none = serde_json::to_string(&Part::default()).expect("json");
        assert!(!none.contains("envelope"), "left out when absent: {none}");
        assert_eq!(
            serde_json::from_str::<Part>(&none).expect("parse"),
            Part::default()
        );
    }
}
