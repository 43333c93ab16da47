//! FETCH BINARY and BINARY.SIZE (RFC 3516, RFC 9051 §6.4.5): a part's content with its
//! Content-Transfer-Encoding removed. The decoded size must be sent before the data, and
//! only decoding tells it, so a part is decoded twice as it streams from the store: once to
//! count (and to look for NUL, which needs a literal8), once to send. Memory holds one stored
//! chunk and its decoded form, whatever the part's size.

use tokio::io::{AsyncRead, AsyncWrite};

use super::Session;
use crate::imap::proto::FetchAttr;
use crate::limits::BODY_CHUNK;
use crate::mime::{Decoder, Encoding, Part};
use crate::net::Interrupted;
use crate::store::{MessageInfo, ReadView, StoreError, ViewBodyReader};

/// A part whose Content-Transfer-Encoding this server cannot decode: the FETCH fails with
/// `NO [UNKNOWN-CTE]` (RFC 3516 §4.2).
#[derive(Debug)]
pub(super) struct UnknownCte;

/// What a BINARY section decodes: a byte range of the stored message and its encoding.
#[derive(Debug, Clone, Copy)]
struct Source {
    begin: u64,
    end: u64,
    encoding: Encoding,
}

impl Source {
    /// A part the message does not have: empty, as BODY[] sends it.
    const MISSING: Source = Source {
        begin: 0,
        end: 0,
        encoding: Encoding::Identity,
    };

    /// Resolves a section-binary part path against the message's structure. An empty path
    /// is the whole message as stored: its header names its body's encoding, so decoding
    /// the body behind it would leave a message that says it is encoded and is not.
    fn resolve(
        row: &MessageInfo,
        structure: Option<&Part>,
        path: &[u32],
    ) -> Result<Source, UnknownCte> {
        if path.is_empty() {
            return Ok(Source {
                begin: 0,
                end: row.size,
                encoding: Encoding::Identity,
            });
        }
        let Some(resolved) = structure.and_then(|root| root.resolve(path)) else {
            return Ok(Source::MISSING);
        };
        let part = resolved.part;
        Ok(Source {
            begin: part.body_start,
            end: part.end,
            encoding: Encoding::from_header(&part.encoding).ok_or(UnknownCte)?,
        })
    }
}

/// Refuses a FETCH whose BINARY items name a part that cannot be decoded; checked before a
/// message's response begins, as a refusal cannot come in the middle of one.
pub(super) fn check_binary(
    row: &MessageInfo,
    structure: Option<&Part>,
    attrs: &[FetchAttr],
) -> Result<(), UnknownCte> {
    for attr in attrs {
        if let FetchAttr::Binary { part, .. } | FetchAttr::BinarySize { part } = attr {
            Source::resolve(row, structure, part)?;
        }
    }
    Ok(())
}

/// A part path as a section-binary names it: `1.2`, or nothing for the whole message.
fn path_name(path: &[u32]) -> String {
    path.iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(".")
}

/// The stored octets of a byte range of a body, one piece at a time.
struct RangeReader {
    reader: ViewBodyReader,
    begin: u64,
    end: u64,
    done: bool,
}

impl RangeReader {
    fn new(view: &ReadView, blob: u64, begin: u64, end: u64) -> RangeReader {
        RangeReader {
            reader: view.body_range(blob, begin, end),
            begin,
            end,
            done: begin >= end,
        }
    }

    /// The next piece of the range; `None` at its end (or where the body ends first).
    async fn next(&mut self) -> Result<Option<Vec<u8>>, StoreError> {
        if self.done {
            return Ok(None);
        }
        let Some((chunk_start, mut data)) = self.reader.next_piece().await? else {
            return Ok(None);
        };
        let chunk_end = chunk_start + data.len() as u64;
        self.done = chunk_end >= self.end;
        let to = self.end.min(chunk_end).saturating_sub(chunk_start);
        let from = self.begin.saturating_sub(chunk_start).min(to);
        data.truncate(to as usize);
        data.drain(..from as usize);
        Ok(Some(data))
    }
}

/// What the counting pass learns.
struct Decoded {
    size: u64,
    /// Whether a NUL octet lies in the window that will be sent.
    nul: bool,
}

impl<S: AsyncRead + AsyncWrite + Unpin> Session<S> {
    /// `BINARY[path]<start> {n}` (or `~{n}` when the octets sent hold a NUL) and the decoded
    /// octets; `partial` counts decoded octets.
    pub(super) async fn send_binary(
        &mut self,
        view: &ReadView,
        row: &MessageInfo,
        structure: Option<&Part>,
        path: &[u32],
        partial: Option<(u32, u32)>,
    ) -> Result<(), Interrupted> {
        let mut name = format!("BINARY[{}]", path_name(path));
        // An unknown encoding was refused before this message's response began.
        let source = Source::resolve(row, structure, path).unwrap_or(Source::MISSING);
        let (start, count) = match partial {
            Some((start, count)) => {
                name.push_str(&format!("<{start}>"));
                (u64::from(start), u64::from(count))
            }
            None => (0, u64::MAX),
        };
        let decoded = self.decode_pass(view, row.blob, source, start, count).await;
        let start = start.min(decoded.size);
        let length = (decoded.size - start).min(count);
        let marker = if decoded.nul { "~" } else { "" };
        self.conn
            .output()
            .extend_from_slice(format!("{name} {marker}{{{length}}}\r\n").as_bytes());
        self.send_decoded(view, row.blob, source, start, length)
            .await
    }

    /// `BINARY.SIZE[path] n`: the size BINARY[path] would send.
    pub(super) async fn send_binary_size(
        &mut self,
        view: &ReadView,
        row: &MessageInfo,
        structure: Option<&Part>,
        path: &[u32],
    ) -> Result<(), Interrupted> {
        let source = Source::resolve(row, structure, path).unwrap_or(Source::MISSING);
        let size = if source.encoding == Encoding::Identity {
            source.end.saturating_sub(source.begin)
        } else {
            self.decode_pass(view, row.blob, source, 0, 0).await.size
        };
        let item = format!("BINARY.SIZE[{}] {size}", path_name(path));
        self.conn.output().extend_from_slice(item.as_bytes());
        Ok(())
    }

    /// Decodes a source without sending it: its decoded size, and whether a NUL lies among
    /// the `count` decoded octets from `start`. A store error ends the count early (and the
    /// sending pass then ends the connection).
    async fn decode_pass(
        &self,
        view: &ReadView,
        blob: u64,
        source: Source,
        start: u64,
        count: u64,
    ) -> Decoded {
        let window_end = start.saturating_add(count);
        let mut reader = RangeReader::new(view, blob, source.begin, source.end);
        let mut decoder = Decoder::new(source.encoding);
        let mut decoded = Vec::with_capacity(BODY_CHUNK);
        let mut result = Decoded {
            size: 0,
            nul: false,
        };
        let look = |piece: &[u8], result: &mut Decoded| {
            let from = start.clamp(result.size, result.size + piece.len() as u64) - result.size;
            let to = window_end.clamp(result.size, result.size + piece.len() as u64) - result.size;
            result.nul |= piece[from as usize..to as usize].contains(&0);
            result.size += piece.len() as u64;
        };
        loop {
            decoded.clear();
            match reader.next().await {
                Ok(Some(data)) => decoder.feed(&data, &mut decoded),
                Ok(None) => {
                    decoder.finish(&mut decoded);
                    look(&decoded, &mut result);
                    return result;
                }
                Err(error) => {
                    tracing::warn!(blob, %error, "imap: cannot read a body to decode it");
                    return result;
                }
            }
            look(&decoded, &mut result);
        }
    }

    /// Sends `length` decoded octets from `start`. The length is already promised: if the
    /// body cannot be read meanwhile (an I/O error; the view keeps expunged bodies), the
    /// connection ends rather than send made-up octets.
    async fn send_decoded(
        &mut self,
        view: &ReadView,
        blob: u64,
        source: Source,
        start: u64,
        length: u64,
    ) -> Result<(), Interrupted> {
        let end = start + length;
        let mut reader = RangeReader::new(view, blob, source.begin, source.end);
        let mut decoder = Decoder::new(source.encoding);
        let mut decoded = Vec::with_capacity(BODY_CHUNK);
        // Decoded octets before `decoded`, and octets sent.
        let mut offset = 0u64;
        let mut sent = 0u64;
        let mut finished = false;
        while sent < length && !finished {
            decoded.clear();
            match reader.next().await {
                Ok(Some(data)) => decoder.feed(&data, &mut decoded),
                Ok(None) => {
                    decoder.finish(&mut decoded);
                    finished = true;
                }
                Err(error) => {
                    tracing::warn!(blob, %error, "imap: cannot read a body to decode it");
                    finished = true;
                }
            }
            let piece_end = offset + decoded.len() as u64;
            let from = (start + sent).clamp(offset, piece_end) - offset;
            let to = end.clamp(offset, piece_end) - offset;
            self.conn
                .write(&decoded[from as usize..to as usize])
                .await?;
            sent += to - from;
            offset = piece_end;
        }
        if sent < length {
            tracing::error!(
                blob,
                "imap: decoded body shorter than counted; ending the session"
            );
            return Err(Interrupted::Closed);
        }
        Ok(())
    }
}
