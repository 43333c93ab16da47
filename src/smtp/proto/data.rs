//! Message text: the DATA receiver (RFC 5321 §4.1.1.4, §4.5.2) and the checker shared
//! with BDAT (RFC 3030).
//!
//! Both hold O(1) state and no buffers: the caller owns the input and the output and
//! flushes the output between calls. Line endings are CRLF only (RFC 5321 §2.3.8); a
//! bare CR or LF is an error, never a line end, so `\n.\n` or `\n.\r\n` can never end
//! the message early (SMTP smuggling).

use super::reply::Reply;

/// Why a message was refused. The stream stays in sync: the receiver keeps looking for
/// the end of the message after any of these.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum DataError {
    #[error("message too large")]
    TooLarge,
    #[error("line too long")]
    LineTooLong,
    #[error("bare CR")]
    BareCarriageReturn,
    #[error("bare LF")]
    BareLineFeed,
}

impl DataError {
    /// The reply that ends the transaction.
    pub fn reply(&self) -> Reply {
        match self {
            // RFC 1870 §6.1 / RFC 3463 X.3.4.
            DataError::TooLarge => Reply::new(
                552,
                "5.3.4",
                "Message size exceeds fixed maximum message size",
            ),
            DataError::LineTooLong => Reply::new(554, "5.6.0", "Message line too long"),
            DataError::BareCarriageReturn | DataError::BareLineFeed => Reply::new(
                554,
                "5.6.0",
                "Message contains bare CR or LF (RFC 5321 section 2.3.8)",
            ),
        }
    }
}

/// Checks message text as it streams: total size against `max_message_size`, each
/// line's length (including CRLF) against `max_line` (RFC 5321 §4.5.3.1.6: 1000), and
/// that every CR is followed by LF and every LF preceded by CR. State carries across
/// chunk boundaries.
#[derive(Debug, Clone)]
pub struct MessageChecker {
    max_message_size: u64,
    max_line: usize,
    size: u64,
    /// Octets of the current line before its CRLF.
    line_len: usize,
    /// The last octet was a CR whose LF has not arrived yet.
    pending_cr: bool,
    too_large: bool,
    first_error: Option<DataError>,
}

impl MessageChecker {
    pub fn new(max_message_size: u64, max_line: usize) -> Self {
        MessageChecker {
            max_message_size,
            max_line,
            size: 0,
            line_len: 0,
            pending_cr: false,
            too_large: false,
            first_error: None,
        }
    }

    /// Checks the next bytes of the message; records the first error and keeps counting
    /// the size.
    pub fn feed(&mut self, bytes: &[u8]) {
        self.feed_valid_prefix(bytes);
    }

    /// Like [`feed`](Self::feed), and returns how many leading bytes of `bytes` came
    /// before the first error: the bytes a caller may still store. After an error it is
    /// always 0; a message over the size limit keeps exactly `max_message_size` bytes.
    /// The result does not depend on how the message is split into calls.
    pub fn feed_valid_prefix(&mut self, bytes: &[u8]) -> usize {
        let had_error = self.error().is_some();
        let len = u64::try_from(bytes.len()).unwrap_or(u64::MAX);
        let allowance = self.max_message_size.saturating_sub(self.size);
        self.size = self.size.saturating_add(len);
        // Before the early return: `TooLarge` wins however the message was split, also when
        // an earlier chunk already held another error (found by the fuzz target).
        if self.size > self.max_message_size {
            self.too_large = true;
        }
        if had_error {
            return 0;
        }
        let in_limit = usize::try_from(allowance.min(len)).unwrap_or(bytes.len());
        for (i, &b) in bytes.iter().take(in_limit).enumerate() {
            if let Err(e) = self.step(b) {
                self.first_error = Some(e);
                return i;
            }
        }
        in_limit
    }

    fn step(&mut self, b: u8) -> Result<(), DataError> {
        if self.pending_cr {
            self.pending_cr = false;
            return if b == b'\n' {
                self.line_len = 0;
                Ok(())
            } else {
                Err(DataError::BareCarriageReturn)
            };
        }
        match b {
            b'\r' => {
                self.pending_cr = true;
                Ok(())
            }
            b'\n' => Err(DataError::BareLineFeed),
            _ => {
                self.line_len = self.line_len.saturating_add(1);
                // The CRLF still to come counts towards the limit.
                if self.line_len.saturating_add(2) > self.max_line {
                    Err(DataError::LineTooLong)
                } else {
                    Ok(())
                }
            }
        }
    }

    /// The first error seen so far; `TooLarge` wins once the size has been exceeded.
    pub fn error(&self) -> Option<DataError> {
        if self.too_large {
            Some(DataError::TooLarge)
        } else {
            self.first_error
        }
    }

    /// Octets fed so far, including any past the limit.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// End of message (BDAT LAST): a final unterminated CR is a bare CR.
    pub fn finish(&self) -> Result<u64, DataError> {
        match self.error() {
            Some(e) => Err(e),
            None if self.pending_cr => Err(DataError::BareCarriageReturn),
            None => Ok(self.size),
        }
    }
}

/// Where the DATA receiver is in the wire stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// At the start of a line: after CRLF, or at the very start of the data.
    LineStart,
    /// Saw "." at a line start; it is either stuffing or the start of the end marker.
    Dot,
    /// Saw "." CR at a line start; LF ends the data, anything else makes it a line.
    DotCr,
    /// Inside a line.
    Text,
    /// Inside a line, right after a CR.
    Cr,
    /// Saw the end marker.
    Done,
}

/// DATA phase receiver (RFC 5321 §4.1.1.4, §4.5.2): finds the end marker CRLF "." CRLF,
/// removes dot-stuffing, and passes the unstuffed message through a [`MessageChecker`].
///
/// The CRLF before the final "." belongs to the message; an empty message is ".\r\n"
/// right at the start. Only "\r\n.\r\n" ends the data. After an error, message bytes
/// are no longer appended to `out`, but the end marker is still found so the session
/// stays in sync.
#[derive(Debug, Clone)]
pub struct DataReceiver {
    phase: Phase,
    checker: MessageChecker,
}

impl DataReceiver {
    pub fn new(max_message_size: u64, max_line: usize) -> Self {
        DataReceiver {
            phase: Phase::LineStart,
            checker: MessageChecker::new(max_message_size, max_line),
        }
    }

    /// Consumes bytes from `input`, appending unstuffed message bytes to `out`. Returns
    /// (bytes consumed, finished). When finished, bytes after the end marker are not
    /// consumed (they are the next pipelined command). `out` grows by at most
    /// `input.len()` per call.
    pub fn ingest(&mut self, input: &[u8], out: &mut Vec<u8>) -> (usize, bool) {
        if self.phase == Phase::Done {
            return (0, true);
        }
        // Input bytes from `run` up to the current one are message text not yet emitted.
        let mut run = 0;
        for (i, &b) in input.iter().enumerate() {
            self.phase = match (self.phase, b) {
                (Phase::LineStart, b'.') => {
                    self.emit(input.get(run..i), out);
                    run = i + 1; // The dot is withheld; it is never message text.
                    Phase::Dot
                }
                (Phase::LineStart | Phase::Text, b'\r') => Phase::Cr,
                (Phase::LineStart | Phase::Text, _) => Phase::Text,
                (Phase::Dot, b'\r') => {
                    run = i + 1; // Withhold the CR until we know it is not the end.
                    Phase::DotCr
                }
                // A stuffed dot: dropped; this byte starts the line's text.
                (Phase::Dot, _) => Phase::Text,
                (Phase::DotCr, b'\n') => {
                    self.phase = Phase::Done;
                    return (i + 1, true);
                }
                (Phase::DotCr, _) => {
                    // "." CR then not LF: the CR was text (a bare CR the checker flags).
                    // Appending it cannot break the size bound: the byte after it is an
                    // error, so nothing more is appended this call.
                    self.emit(Some(b"\r"), out);
                    if b == b'\r' { Phase::Cr } else { Phase::Text }
                }
                (Phase::Cr, b'\n') => Phase::LineStart,
                (Phase::Cr, b'\r') => Phase::Cr,
                (Phase::Cr, _) => Phase::Text,
                (Phase::Done, _) => return (i, true),
            };
        }
        self.emit(input.get(run..), out);
        (input.len(), false)
    }

    fn emit(&mut self, bytes: Option<&[u8]>, out: &mut Vec<u8>) {
        let bytes = bytes.unwrap_or_default();
        if bytes.is_empty() {
            return;
        }
        let valid = self.checker.feed_valid_prefix(bytes);
        out.extend_from_slice(bytes.get(..valid).unwrap_or_default());
    }

    /// True once the end marker has been consumed.
    pub fn is_finished(&self) -> bool {
        self.phase == Phase::Done
    }

    /// The first error seen so far.
    pub fn error(&self) -> Option<DataError> {
        self.checker.error()
    }

    /// Message size after unstuffing, or the first error.
    pub fn finish(&self) -> Result<u64, DataError> {
        self.checker.finish()
    }
}

#[cfg(test)]
mod tests;
