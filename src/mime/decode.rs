//! Content-Transfer-Encoding decoding (RFC 2045 §6) for FETCH BINARY (RFC 3516). The
//! decoders are fed a body one stored chunk at a time and keep only what straddles two
//! chunks: part of a base64 quartet, half a `=XX` escape, a run of white space that may turn
//! out to be trailing. Malformed input is decoded leniently, never refused (RFC 2045 §6.7
//! note 2, §6.8: ignore characters outside the alphabet).

/// The transfer encodings a part's content can be decoded from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// 7bit, 8bit and binary: the content is the data as stored.
    Identity,
    Base64,
    QuotedPrintable,
}

impl Encoding {
    /// The encoding a Content-Transfer-Encoding value names (a comment after it allowed), or
    /// `None` for one this server cannot decode (x-uuencode, a typo).
    pub fn from_header(value: &str) -> Option<Encoding> {
        let name = value
            .trim()
            .split(|c: char| c.is_whitespace() || c == '(' || c == ';')
            .next()
            .unwrap_or_default();
        match name.to_ascii_lowercase().as_str() {
            // An empty field is treated as if absent: 7bit (RFC 2045 §6.1).
            "" | "7bit" | "8bit" | "binary" => Some(Encoding::Identity),
            "base64" => Some(Encoding::Base64),
            "quoted-printable" => Some(Encoding::QuotedPrintable),
            _ => None,
        }
    }
}

/// A streaming decoder: `feed` each piece of encoded data in order, then `finish`.
#[derive(Debug)]
pub enum Decoder {
    Identity,
    Base64(Base64),
    QuotedPrintable(QuotedPrintable),
}

impl Decoder {
    pub fn new(encoding: Encoding) -> Decoder {
        match encoding {
            Encoding::Identity => Decoder::Identity,
            Encoding::Base64 => Decoder::Base64(Base64::default()),
            Encoding::QuotedPrintable => Decoder::QuotedPrintable(QuotedPrintable::default()),
        }
    }

    /// Appends the octets `input` decodes to (so far) to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        match self {
            Decoder::Identity => out.extend_from_slice(input),
            Decoder::Base64(decoder) => decoder.feed(input, out),
            Decoder::QuotedPrintable(decoder) => decoder.feed(input, out),
        }
    }

    /// Appends what the end of the data completes (a quartet cut short, a lone `=`).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self {
            Decoder::Identity => {}
            Decoder::Base64(decoder) => decoder.finish(out),
            Decoder::QuotedPrintable(decoder) => decoder.finish(out),
        }
    }
}

/// Base64 (RFC 2045 §6.8): line breaks and other characters outside the alphabet are skipped;
/// `=` ends a quartet early, and decoding goes on after it (some senders join encoded blocks).
#[derive(Debug, Default)]
pub struct Base64 {
    /// The 6-bit values of the current quartet so far, `count` of them.
    bits: u32,
    count: u8,
}

impl Base64 {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            let value = match b {
                b'A'..=b'Z' => b - b'A',
                b'a'..=b'z' => b - b'a' + 26,
                b'0'..=b'9' => b - b'0' + 52,
                b'+' => 62,
                b'/' => 63,
                b'=' => {
                    self.finish(out);
                    continue;
                }
                _ => continue,
            };
            self.bits = self.bits << 6 | u32::from(value);
            self.count += 1;
            if self.count == 4 {
                out.extend_from_slice(&self.bits.to_be_bytes()[1..]);
                self.bits = 0;
                self.count = 0;
            }
        }
    }

    /// Ends a short quartet: two symbols carry one octet, three carry two, one carries none.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        match self.count {
            2 => out.push((self.bits >> 4) as u8),
            3 => out.extend_from_slice(&((self.bits >> 2) as u16).to_be_bytes()),
            _ => {}
        }
        self.bits = 0;
        self.count = 0;
    }
}

/// Blanks held back while it is unknown whether they end a line. RFC 2045 §6.7 rule 5 caps an
/// encoded line at 76 characters, so a longer run is content, and is let through.
const QP_BLANKS_MAX: usize = 76;

/// Where the quoted-printable decoder is within an escape.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum QpState {
    #[default]
    Text,
    /// After `=`.
    Escape,
    /// After `=` and one hex digit.
    Hex(u8),
    /// After `=` and blanks: a soft line break with transport padding, if a line end follows.
    SoftBlanks,
    /// After `=` (and blanks) and CR: a soft line break.
    SoftCr,
}

/// Quoted-printable (RFC 2045 §6.7): `=XX` is an octet, `=` at the end of a line a soft line
/// break, and blanks at the end of a line are transport padding (rule 3) and are dropped.
/// A `=` that starts neither is kept as it is (note 2).
#[derive(Debug, Default)]
pub struct QuotedPrintable {
    state: QpState,
    /// Blanks not yet written: dropped if the line ends, written if text follows.
    blanks: heapless::Vec<u8, QP_BLANKS_MAX>,
}

impl QuotedPrintable {
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        for &b in input {
            self.byte(b, out);
        }
    }

    fn byte(&mut self, b: u8, out: &mut Vec<u8>) {
        match self.state {
            QpState::Text => match b {
                b' ' | b'\t' => self.hold_blank(b, out),
                b'\r' | b'\n' => {
                    self.blanks.clear();
                    out.push(b);
                }
                b'=' => {
                    self.write_blanks(out);
                    self.state = QpState::Escape;
                }
                _ => {
                    self.write_blanks(out);
                    out.push(b);
                }
            },
            QpState::Escape => match b {
                _ if b.is_ascii_hexdigit() => self.state = QpState::Hex(b),
                b' ' | b'\t' => {
                    self.state = QpState::SoftBlanks;
                    self.hold_blank(b, out);
                }
                b'\r' => self.state = QpState::SoftCr,
                b'\n' => self.state = QpState::Text,
                _ => {
                    out.push(b'=');
                    self.state = QpState::Text;
                    self.byte(b, out);
                }
            },
            QpState::Hex(high) => {
                self.state = QpState::Text;
                match (hex_value(high), hex_value(b)) {
                    (Some(high), Some(low)) => out.push(high << 4 | low),
                    _ => {
                        out.extend_from_slice(&[b'=', high]);
                        self.byte(b, out);
                    }
                }
            }
            QpState::SoftBlanks => match b {
                b'\r' => {
                    self.blanks.clear();
                    self.state = QpState::SoftCr;
                }
                b'\n' => {
                    self.blanks.clear();
                    self.state = QpState::Text;
                }
                b' ' | b'\t' if !self.blanks.is_full() => self.hold_blank(b, out),
                // Text after `= `: the `=` was literal and the blanks are content.
                _ => {
                    out.push(b'=');
                    self.state = QpState::Text;
                    self.byte(b, out);
                }
            },
            QpState::SoftCr => {
                self.state = QpState::Text;
                if b != b'\n' {
                    self.byte(b, out);
                }
            }
        }
    }

    /// Holds a blank back; one beyond a run as long as a line can be is content, written out
    /// with the run.
    fn hold_blank(&mut self, b: u8, out: &mut Vec<u8>) {
        if let Err(b) = self.blanks.push(b) {
            self.write_blanks(out);
            out.push(b);
        }
    }

    fn write_blanks(&mut self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.blanks);
        self.blanks.clear();
    }

    /// Blanks at the very end are trailing too, and so is a `=`: a soft line break whose line
    /// end belongs to the MIME boundary that follows the part. A `=X` left open is text.
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if let QpState::Hex(high) = self.state {
            out.extend_from_slice(&[b'=', high]);
        }
        self.blanks.clear();
        self.state = QpState::Text;
    }
}

fn hex_value(b: u8) -> Option<u8> {
    // Lowercase digits are not canonical (rule 1) but are decoded, as RFC 2045 suggests.
    (b as char).to_digit(16).map(|v| v as u8)
}

#[cfg(test)]
mod tests {
    use base64::Engine;
    use base64::engine::general_purpose::STANDARD;

    use super::*;

    fn decode(encoding: Encoding, pieces: &[&[u8]]) -> Vec<u8> {
        let mut decoder = Decoder::new(encoding);
        let mut out = Vec::new();
        for piece in pieces {
            decoder.feed(piece, &mut out);
        }
        decoder.finish(&mut out);
        out
    }

    /// Decodes `input` whole, split in two at every offset, and one octet at a time: the
    /// chunk boundaries of the store must not change the result.
    fn decode_split(encoding: Encoding, input: &[u8]) -> Vec<u8> {
        let whole = decode(encoding, &[input]);
        for at in 0..=input.len() {
            let (a, b) = input.split_at(at);
            assert_eq!(decode(encoding, &[a, b]), whole, "split at {at}");
        }
        let octets: Vec<&[u8]> = input.chunks(1).collect();
        assert_eq!(decode(encoding, &octets), whole, "octet by octet");
        whole
    }

    #[test]
    fn encodings_by_header() {
        let table = [
            ("base64", Some(Encoding::Base64)),
            (" BASE64 ", Some(Encoding::Base64)),
            ("base64 (from a scanner)", Some(Encoding::Base64)),
            ("Quoted-Printable", Some(Encoding::QuotedPrintable)),
            ("7bit", Some(Encoding::Identity)),
            ("8BIT", Some(Encoding::Identity)),
            ("binary", Some(Encoding::Identity)),
            ("", Some(Encoding::Identity)),
            ("x-uuencode", None),
            ("base-64", None),
            ("quoted-printable-ish", None),
        ];
        for (value, expected) in table {
            assert_eq!(Encoding::from_header(value), expected, "{value:?}");
        }
    }

    #[test]
    fn base64_across_chunk_boundaries() {
        let data: Vec<u8> = (0..=255u8).chain([0, 0, 0, 1]).collect();
        let encoded = STANDARD.encode(&data);
        let mut folded = Vec::new();
        for line in encoded.as_bytes().chunks(76) {
            folded.extend_from_slice(line);
            folded.extend_from_slice(b"\r\n");
        }
        assert_eq!(decode_split(Encoding::Base64, &folded), data);
        for len in 0..6 {
            let encoded = STANDARD.encode(&data[..len]);
            assert_eq!(
                decode_split(Encoding::Base64, encoded.as_bytes()),
                &data[..len]
            );
        }
    }

    #[test]
    fn base64_is_lenient() {
        let table: [(&[u8], &[u8]); 6] = [
            (b"SGk", b"Hi"),
            (b"SGk=SGk=", b"HiHi"),
            (b"S G*k=\r\n", b"Hi"),
            (b"SGVsbG8=\r\n\r\n", b"Hello"),
            (b"Q", b""),
            (b"====", b""),
        ];
        for (input, expected) in table {
            assert_eq!(decode_split(Encoding::Base64, input), expected, "{input:?}");
        }
    }

    #[test]
    fn quoted_printable_across_chunk_boundaries() {
        let table: [(&[u8], &[u8]); 16] = [
            (b"a=3Db", b"a=b"),
            (b"caf=C3=A9", "café".as_bytes()),
            (b"caf=c3=a9", "café".as_bytes()),
            (b"=00=00x", b"\0\0x"),
            (b"soft=\r\nbreak", b"softbreak"),
            (b"soft=\nbreak", b"softbreak"),
            (b"padded= \t\r\nbreak", b"paddedbreak"),
            (b"trailing  \t\r\nblanks ", b"trailing\r\nblanks"),
            (b"inner  blanks\r\n", b"inner  blanks\r\n"),
            (b"last line=", b"last line"),
            (b"last line= ", b"last line"),
            (b"bad =ZZ escape", b"bad =ZZ escape"),
            (b"half =4", b"half =4"),
            (b"half =4\r\n", b"half =4\r\n"),
            (b"x = y", b"x = y"),
            (b"=\r", b""),
        ];
        for (input, expected) in table {
            assert_eq!(
                decode_split(Encoding::QuotedPrintable, input),
                expected,
                "{:?}",
                String::from_utf8_lossy(input)
            );
        }
    }

    #[test]
    fn quoted_printable_long_blank_runs_are_content() {
        let mut input = b"a".to_vec();
        input.extend(std::iter::repeat_n(b' ', 200));
        input.extend_from_slice(b"b\r\n");
        assert_eq!(decode_split(Encoding::QuotedPrintable, &input), input);
        let mut soft = b"a=".to_vec();
        soft.extend(std::iter::repeat_n(b' ', 100));
        soft.push(b'b');
        assert_eq!(decode_split(Encoding::QuotedPrintable, &soft), soft);
    }

    #[test]
    fn identity_passes_everything() {
        let input = b"\0=3D\r\n  \r\n";
        assert_eq!(decode_split(Encoding::Identity, input), input);
    }
}
