//! SMTP replies (RFC 5321 §4.2) with enhanced status codes (RFC 2034, RFC 3463).
//!
//! A [`Reply`] is data; [`Reply::encode`] turns it into wire bytes. Reply text is
//! sanitised on encode (control characters become spaces), so a reply can never
//! inject an extra line into the stream whatever text it was built from.

use super::command::SyntaxError;

/// One SMTP reply, possibly multi-line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// Three-digit reply code (RFC 5321 §4.2.1).
    pub code: u16,
    /// Enhanced status code ("5.1.1"), repeated on every line when present (RFC 2034 §4).
    pub enhanced: Option<&'static str>,
    /// Text lines; an empty list encodes as a single line carrying only the code.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply with an enhanced status code: `550 5.1.1 text`.
    pub fn new(code: u16, enhanced: &'static str, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: Some(enhanced),
            lines: vec![text.into()],
        }
    }

    /// A single-line reply without an enhanced code (220 greeting, 221, 354).
    pub fn plain(code: u16, text: impl Into<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply without enhanced codes (the EHLO response).
    pub fn multiline(code: u16, lines: Vec<String>) -> Self {
        Reply {
            code,
            enhanced: None,
            lines,
        }
    }

    /// Appends the wire form: `250-first\r\n250 last\r\n`, the enhanced code after the
    /// reply code on every line.
    pub fn encode(&self, out: &mut Vec<u8>) {
        let last = self.lines.len().saturating_sub(1);
        if self.lines.is_empty() {
            self.encode_line(out, "", true);
        }
        for (i, line) in self.lines.iter().enumerate() {
            self.encode_line(out, line, i == last);
        }
    }

    /// The wire form as a new buffer.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        self.encode(&mut out);
        out
    }

    /// 2xx or 3xx.
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.code)
    }

    /// 4xx: the client may try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.code)
    }

    /// 5xx: the client must not repeat the same request.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.code)
    }

    fn encode_line(&self, out: &mut Vec<u8>, text: &str, last: bool) {
        out.extend_from_slice(self.code.to_string().as_bytes());
        let mut rest = String::new();
        if let Some(enhanced) = self.enhanced {
            rest.push_str(enhanced);
        }
        if !text.is_empty() {
            if !rest.is_empty() {
                rest.push(' ');
            }
            // RFC 5321 §4.2: textstring = 1*(%d09 / %d32-126); no CR or LF may slip through.
            rest.extend(
                text.chars()
                    .map(|c| if c.is_control() && c != '\t' { ' ' } else { c }),
            );
        }
        if !rest.is_empty() || !last {
            out.push(if last { b' ' } else { b'-' });
        }
        out.extend_from_slice(rest.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
}

impl From<SyntaxError> for Reply {
    fn from(e: SyntaxError) -> Self {
        Reply::new(e.code, e.enhanced, e.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply::new(550, "5.1.1", "No such user"),
                "550 5.1.1 No such user\r\n",
            ),
            (
                Reply::plain(220, "home.test ESMTP"),
                "220 home.test ESMTP\r\n",
            ),
            (
                Reply::multiline(
                    250,
                    vec!["home.test".into(), "PIPELINING".into(), "SMTPUTF8".into()],
                ),
                "250-home.test\r\n250-PIPELINING\r\n250 SMTPUTF8\r\n",
            ),
            (
                Reply {
                    code: 250,
                    enhanced: Some("2.0.0"),
                    lines: vec!["a".into(), "b".into()],
                },
                "250-2.0.0 a\r\n250 2.0.0 b\r\n",
            ),
            (Reply::plain(354, ""), "354\r\n"),
            (Reply::multiline(250, vec![]), "250\r\n"),
            (
                Reply::multiline(250, vec![String::new(), "x".into()]),
                "250-\r\n250 x\r\n",
            ),
            (Reply::new(250, "2.0.0", ""), "250 2.0.0\r\n"),
            // Injection attempt: CR/LF in the text are neutralised.
            (
                Reply::new(550, "5.1.1", "bad\r\n250 ok"),
                "550 5.1.1 bad  250 ok\r\n",
            ),
            (Reply::plain(250, "tab\there"), "250 tab\there\r\n"),
        ];
        for (reply, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&reply.to_bytes()),
                want,
                "{reply:?}"
            );
        }
    }

    #[test]
    fn encode_appends() {
        let mut out = b"x".to_vec();
        Reply::plain(221, "bye").encode(&mut out);
        assert_eq!(out, b"x221 bye\r\n");
    }

    #[test]
    fn classes() {
        let cases = [
            (220, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (450, false, true, false),
            (500, false, false, true),
            (554, false, false, true),
        ];
        for (code, positive, transient, permanent) in cases {
            let r = Reply::plain(code, "x");
            assert_eq!(r.is_positive(), positive, "{code}");
            assert_eq!(r.is_transient(), transient, "{code}");
            assert_eq!(r.is_permanent(), permanent, "{code}");
        }
    }

    #[test]
    fn from_syntax_error() {
        let r = Reply::from(SyntaxError::UNRECOGNIZED);
        assert_eq!(r.to_bytes(), b"500 5.5.1 Command unrecognized\r\n");
    }
}
