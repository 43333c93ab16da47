//! Removes header fields from a message as it streams, leaving the body alone. Used to drop
//! Authentication-Results fields that claim to come from this host (RFC 8601 §5): only
//! Letterbox may say what Letterbox checked.

/// A field longer than this is not held whole: it is decided on its first `MAX_FIELD`
/// octets (a name and an authserv-id come first) and the rest follows that decision.
pub const MAX_FIELD: usize = 16 * 1024;

/// Whether a field (name, colon, value, folded lines, line ending) is dropped.
type FieldPredicate = Box<dyn Fn(&[u8]) -> bool + Send>;

pub struct HeaderFilter {
    drop: FieldPredicate,
    state: State,
    /// The field being collected (empty while passing one on).
    field: Vec<u8>,
    /// The current field is too long to collect and was kept: it goes out as it comes.
    passing: bool,
    /// The current field is too long to collect and was dropped: the rest goes too.
    dropping: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// At the start of a line in the header section.
    LineStart,
    /// Inside a line of the header section.
    InLine,
    /// Past the blank line: everything is body.
    Body,
}

impl HeaderFilter {
    pub fn new(drop: impl Fn(&[u8]) -> bool + Send + 'static) -> Self {
        HeaderFilter {
            drop: Box::new(drop),
            state: State::LineStart,
            field: Vec::new(),
            passing: false,
            dropping: false,
        }
    }

    /// Feeds message bytes; what is kept is appended to `out`.
    pub fn feed(&mut self, input: &[u8], out: &mut Vec<u8>) {
        let mut rest = input;
        while let Some(&first) = rest.first() {
            match self.state {
                State::Body => {
                    out.extend_from_slice(rest);
                    return;
                }
                State::LineStart => {
                    if first != b' ' && first != b'\t' {
                        // Not a folded continuation: the previous field is complete.
                        self.finish(out);
                        self.passing = false;
                        self.dropping = false;
                        if first == b'\r' || first == b'\n' {
                            self.state = State::Body;
                            continue;
                        }
                    }
                    self.state = State::InLine;
                }
                State::InLine => {
                    let (line, ended) = match rest.iter().position(|&b| b == b'\n') {
                        Some(end) => (&rest[..=end], true),
                        None => (rest, false),
                    };
                    if self.passing {
                        out.extend_from_slice(line);
                    } else if self.dropping {
                        // The rest of a dropped field goes too.
                    } else {
                        // At most one input chunk more than MAX_FIELD is ever held.
                        self.field.extend_from_slice(line);
                        if self.field.len() > MAX_FIELD {
                            if (self.drop)(&self.field) {
                                self.dropping = true;
                            } else {
                                out.extend_from_slice(&self.field);
                                self.passing = true;
                            }
                            self.field.clear();
                        }
                    }
                    rest = &rest[line.len()..];
                    if ended {
                        self.state = State::LineStart;
                    }
                }
            }
        }
    }

    /// Decides on a field still held (call at the end of the message, too).
    pub fn finish(&mut self, out: &mut Vec<u8>) {
        if !self.field.is_empty() && !(self.drop)(&self.field) {
            out.extend_from_slice(&self.field);
        }
        self.field.clear();
    }
}

/// True for an Authentication-Results field whose authserv-id is `hostname` (RFC 8601 §2.2:
/// the first token of the value, before any `;`).
pub fn is_authentication_results_from(field: &[u8], hostname: &str) -> bool {
    let Some(colon) = field.iter().position(|&b| b == b':') else {
        return false;
    };
    let (name, value) = field.split_at(colon);
    if !name
        .trim_ascii()
        .eq_ignore_ascii_case(b"Authentication-Results")
    {
        return false;
    }
    let value = String::from_utf8_lossy(&value[1..]);
    let authserv_id = value
        .split(|c: char| c == ';' || c.is_whitespace())
        .find(|token| !token.is_empty())
        .unwrap_or("");
    authserv_id.eq_ignore_ascii_case(hostname)
}

/// True for a field called `name` (any case): a sender's own `X-Spam-Status` is dropped, so
/// only this host's verdict reaches the mail client.
pub fn is_field_named(field: &[u8], name: &str) -> bool {
    field.iter().position(|&b| b == b':').is_some_and(|colon| {
        field[..colon]
            .trim_ascii()
            .eq_ignore_ascii_case(name.as_bytes())
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filtered(message: &[u8], split: usize) -> Vec<u8> {
        let mut filter =
            HeaderFilter::new(|field| is_authentication_results_from(field, "mail.home.test"));
        let mut out = Vec::new();
        let (a, b) = message.split_at(split);
        filter.feed(a, &mut out);
        filter.feed(b, &mut out);
        filter.finish(&mut out);
        out
    }

    const MESSAGE: &[u8] = b"Received: from x\r\n\tby y\r\nAuthentication-Results: MAIL.home.test;\r\n\tdkim=pass header.d=bank.example\r\nAuthentication-Results: other.example; spf=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: mail.home.test; in the body\r\n";

    #[test]
    fn forged_results_for_this_host_are_dropped_at_every_split() {
        let want = b"Received: from x\r\n\tby y\r\nAuthentication-Results: other.example; spf=pass\r\nSubject: hi\r\n\r\nAuthentication-Results: mail.home.test; in the body\r\n";
        for split in 0..=MESSAGE.len() {
            assert_eq!(
                String::from_utf8_lossy(&filtered(MESSAGE, split)),
                String::from_utf8_lossy(want),
                "split at {split}"
            );
        }
    }

    #[test]
    fn messages_without_a_body_and_long_fields() {
        let headers_only = b"Subject: x\r\nAuthentication-Results: mail.home.test; x=y\r\n";
        assert_eq!(filtered(headers_only, 5), b"Subject: x\r\n");
        let long_kept = format!("X-Long: {}\r\n\tmore\r\n", "a".repeat(MAX_FIELD));
        let long_forged = format!(
            "Authentication-Results: mail.home.test; {}\r\n\t{}\r\n",
            "b".repeat(MAX_FIELD),
            "c".repeat(100)
        );
        let message = format!("{long_kept}{long_forged}Subject: y\r\n\r\nbody");
        for split in [0, 100, MAX_FIELD + 20, message.len()] {
            let out = filtered(message.as_bytes(), split);
            let want = format!("{long_kept}Subject: y\r\n\r\nbody");
            assert!(out == want.as_bytes(), "split at {split}");
        }
    }

    #[test]
    fn field_names_match_in_any_case() {
        assert!(is_field_named(b"x-spam-status: Yes\r\n", "X-Spam-Status"));
        assert!(!is_field_named(b"X-Spam-Statuses: No\r\n", "X-Spam-Status"));
        assert!(!is_field_named(
            b"Subject: X-Spam-Status: No\r\n",
            "X-Spam-Status"
        ));
    }

    #[test]
    fn authserv_id_matching() {
        let cases: [(&[u8], bool); 5] = [
            (b"Authentication-Results: mail.home.test; none\r\n", true),
            (b"authentication-results:mail.home.test;spf=pass\r\n", true),
            (
                b"Authentication-Results: mail.home.test.evil; none\r\n",
                false,
            ),
            (b"Authentication-Results-Other: mail.home.test\r\n", false),
            (
                b"Subject: Authentication-Results: mail.home.test\r\n",
                false,
            ),
        ];
        for (field, want) in cases {
            assert_eq!(
                is_authentication_results_from(field, "mail.home.test"),
                want,
                "{}",
                String::from_utf8_lossy(field)
            );
        }
    }
}
