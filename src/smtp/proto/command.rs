//! SMTP command grammar: RFC 5321 §4.1 with the ESMTP parameters of RFC 1870 (SIZE),
//! RFC 6152 / RFC 3030 (BODY, BDAT), RFC 6531 (SMTPUTF8) and RFC 4954 (AUTH).
//!
//! [`parse_command`] takes one line without its CRLF and returns a [`Command`] or a
//! [`SyntaxError`] that already carries the reply to send. The paths of MAIL FROM and
//! RCPT TO are parsed by [`super::address`].

use std::fmt;

use super::address::{Address, MAX_DOMAIN, PathError, is_utf8_text, parse_path, valid_literal};

/// RFC 5321 §4.5.3.1.4: a command line is at most 512 octets including CRLF.
pub const MAX_COMMAND_LINE: usize = 512;

/// Longest MAIL line including CRLF. RFC 5321 §4.5.3.1.4 lets extensions lengthen it:
/// SIZE adds 26 octets (RFC 1870), AUTH= adds 500 (RFC 4954 §5), SMTPUTF8 adds 10
/// (RFC 6531); 16 more cover " BODY=BINARYMIME".
pub const MAX_MAIL_LINE: usize = MAX_COMMAND_LINE + 26 + 500 + 10 + 16;

/// RFC 4954 §4: the AUTH command line may be up to 12288 octets including CRLF.
pub const MAX_AUTH_LINE: usize = 12288;

/// Decimal digits accepted in SIZE= and BDAT sizes (u64 has at most 20).
const MAX_SIZE_DIGITS: usize = 20;

/// RFC 4422 §3.1: a SASL mechanism name is 1 to 20 characters.
const MAX_MECHANISM: usize = 20;

/// One parsed SMTP command.
#[derive(Clone, PartialEq, Eq)]
pub enum Command {
    Ehlo {
        domain: String,
    },
    Helo {
        domain: String,
    },
    Mail {
        /// `None` is the null reverse-path `<>`.
        from: Option<Address>,
        params: MailParams,
    },
    /// RCPT takes no parameters: any is a 555 5.5.4.
    Rcpt {
        to: Address,
    },
    Data,
    Bdat {
        size: u64,
        last: bool,
    },
    Rset,
    Noop,
    Quit,
    Vrfy(String),
    Expn(String),
    Help(Option<String>),
    StartTls,
    Auth {
        /// Uppercased.
        mechanism: String,
        /// Verbatim (base64 or "="); hidden in `Debug`.
        initial_response: Option<String>,
    },
}

/// Written by hand so an AUTH initial response never reaches a log.
impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Command::Ehlo { domain } => f.debug_struct("Ehlo").field("domain", domain).finish(),
            Command::Helo { domain } => f.debug_struct("Helo").field("domain", domain).finish(),
            Command::Mail { from, params } => f
                .debug_struct("Mail")
                .field("from", from)
                .field("params", params)
                .finish(),
            Command::Rcpt { to } => f.debug_struct("Rcpt").field("to", to).finish(),
            Command::Data => f.write_str("Data"),
            Command::Bdat { size, last } => f
                .debug_struct("Bdat")
                .field("size", size)
                .field("last", last)
                .finish(),
            Command::Rset => f.write_str("Rset"),
            Command::Noop => f.write_str("Noop"),
            Command::Quit => f.write_str("Quit"),
            Command::Vrfy(s) => f.debug_tuple("Vrfy").field(s).finish(),
            Command::Expn(s) => f.debug_tuple("Expn").field(s).finish(),
            Command::Help(s) => f.debug_tuple("Help").field(s).finish(),
            Command::StartTls => f.write_str("StartTls"),
            Command::Auth {
                mechanism,
                initial_response,
            } => f
                .debug_struct("Auth")
                .field("mechanism", mechanism)
                .field(
                    "initial_response",
                    &initial_response.as_ref().map(|_| "***"),
                )
                .finish(),
        }
    }
}

/// ESMTP parameters of MAIL FROM.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MailParams {
    /// SIZE= (RFC 1870), the client's estimate in octets.
    pub size: Option<u64>,
    /// BODY= (RFC 6152, RFC 3030).
    pub body: Option<Body>,
    /// SMTPUTF8 (RFC 6531).
    pub smtputf8: bool,
    /// AUTH= (RFC 4954 §5), kept verbatim (xtext, or "<>").
    pub auth: Option<String>,
}

/// BODY= values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    BinaryMime,
}

/// A command the server will not act on, with the reply to send.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code} {enhanced} {text}")]
pub struct SyntaxError {
    pub code: u16,
    pub enhanced: &'static str,
    pub text: &'static str,
}

impl SyntaxError {
    const fn new(code: u16, enhanced: &'static str, text: &'static str) -> Self {
        SyntaxError {
            code,
            enhanced,
            text,
        }
    }

    pub const UNRECOGNIZED: Self = Self::new(500, "5.5.1", "Command unrecognized");
    pub const INVALID_CHARACTERS: Self = Self::new(500, "5.5.2", "Invalid characters in command");
    /// RFC 5321 §4.5.3.1.10.
    pub const LINE_TOO_LONG: Self = Self::new(500, "5.5.2", "Line too long");
    /// RFC 4954 §4 / RFC 3463 X.5.6.
    pub const AUTH_LINE_TOO_LONG: Self =
        Self::new(500, "5.5.6", "Authentication exchange line is too long");
    pub const EHLO: Self = Self::new(501, "5.5.4", "Syntax: EHLO domain");
    pub const HELO: Self = Self::new(501, "5.5.4", "Syntax: HELO domain");
    /// MAIL without `FROM:`.
    pub const MAIL: Self = Self::new(501, "5.5.4", "Syntax: MAIL FROM:<address>");
    /// A malformed reverse-path (X.1.7: bad sender mailbox syntax).
    pub const MAIL_ADDRESS: Self = Self::new(501, "5.1.7", "Syntax: MAIL FROM:<address>");
    pub const MAIL_ADDRESS_TOO_LONG: Self = Self::new(501, "5.1.7", "Sender address too long");
    /// RCPT without `TO:`.
    pub const RCPT: Self = Self::new(501, "5.5.4", "Syntax: RCPT TO:<address>");
    /// A malformed forward-path (X.1.3: bad destination mailbox syntax).
    pub const RCPT_ADDRESS: Self = Self::new(501, "5.1.3", "Syntax: RCPT TO:<address>");
    pub const RCPT_ADDRESS_TOO_LONG: Self = Self::new(501, "5.1.3", "Recipient address too long");
    /// RFC 5321 §4.1.1.11: a parameter we do not implement.
    pub const UNSUPPORTED_PARAMETER: Self = Self::new(555, "5.5.4", "Unsupported parameter");
    pub const DUPLICATE_PARAMETER: Self = Self::new(501, "5.5.4", "Duplicate parameter");
    pub const PARAMETER_SYNTAX: Self = Self::new(501, "5.5.4", "Invalid parameter syntax");
    pub const SIZE_PARAMETER: Self = Self::new(501, "5.5.4", "Syntax: SIZE=number");
    pub const BODY_PARAMETER: Self =
        Self::new(501, "5.5.4", "Syntax: BODY=7BIT|8BITMIME|BINARYMIME");
    pub const SMTPUTF8_PARAMETER: Self = Self::new(501, "5.5.4", "Syntax: SMTPUTF8");
    pub const AUTH_PARAMETER: Self = Self::new(501, "5.5.4", "Syntax: AUTH=mailbox");
    pub const DATA: Self = Self::new(501, "5.5.4", "Syntax: DATA");
    pub const BDAT: Self = Self::new(501, "5.5.4", "Syntax: BDAT size [LAST]");
    pub const RSET: Self = Self::new(501, "5.5.4", "Syntax: RSET");
    pub const QUIT: Self = Self::new(501, "5.5.4", "Syntax: QUIT");
    pub const VRFY: Self = Self::new(501, "5.5.4", "Syntax: VRFY string");
    pub const EXPN: Self = Self::new(501, "5.5.4", "Syntax: EXPN string");
    pub const HELP: Self = Self::new(501, "5.5.4", "Syntax: HELP [string]");
    pub const STARTTLS: Self = Self::new(501, "5.5.4", "Syntax: STARTTLS");
    pub const AUTH: Self = Self::new(501, "5.5.4", "Syntax: AUTH mechanism [initial-response]");
}

/// Parses one command line. `line` is one command line WITHOUT the trailing CRLF.
pub fn parse_command(line: &[u8]) -> Result<Command, SyntaxError> {
    let verb_end = line.iter().position(|&b| b == b' ').unwrap_or(line.len());
    let raw_verb = line.get(..verb_end).unwrap_or_default();
    let is_auth = raw_verb.eq_ignore_ascii_case(b"AUTH");
    let limit = if is_auth {
        MAX_AUTH_LINE
    } else if raw_verb.eq_ignore_ascii_case(b"MAIL") {
        MAX_MAIL_LINE
    } else {
        MAX_COMMAND_LINE
    };
    if line.len().saturating_add(2) > limit {
        return Err(if is_auth {
            SyntaxError::AUTH_LINE_TOO_LONG
        } else {
            SyntaxError::LINE_TOO_LONG
        });
    }
    // NUL, CR and LF never belong in a command line (framing is the caller's job).
    if line.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(SyntaxError::INVALID_CHARACTERS);
    }
    let line = std::str::from_utf8(line).map_err(|_| SyntaxError::INVALID_CHARACTERS)?;
    let line = line.trim_end_matches([' ', '\t']);
    let (verb, args) = line.split_once(' ').unwrap_or((line, ""));
    let upper = if verb.len() <= 8 {
        verb.to_ascii_uppercase()
    } else {
        return Err(SyntaxError::UNRECOGNIZED);
    };
    match upper.as_str() {
        "EHLO" => parse_hello(args, SyntaxError::EHLO).map(|domain| Command::Ehlo { domain }),
        "HELO" => parse_hello(args, SyntaxError::HELO).map(|domain| Command::Helo { domain }),
        "MAIL" => parse_mail(args),
        "RCPT" => parse_rcpt(args),
        "DATA" => no_args(args, Command::Data, SyntaxError::DATA),
        "BDAT" => parse_bdat(args),
        "RSET" => no_args(args, Command::Rset, SyntaxError::RSET),
        "NOOP" => Ok(Command::Noop), // RFC 5321 §4.1.1.9: any argument is ignored.
        "QUIT" => no_args(args, Command::Quit, SyntaxError::QUIT),
        "VRFY" => string_arg(args, SyntaxError::VRFY).map(Command::Vrfy),
        "EXPN" => string_arg(args, SyntaxError::EXPN).map(Command::Expn),
        "HELP" => {
            let topic = args.trim_matches(' ');
            if topic.is_empty() {
                Ok(Command::Help(None))
            } else if topic.chars().any(char::is_control) {
                Err(SyntaxError::HELP)
            } else {
                Ok(Command::Help(Some(topic.to_owned())))
            }
        }
        "STARTTLS" => no_args(args, Command::StartTls, SyntaxError::STARTTLS),
        "AUTH" => parse_auth(args),
        _ => Err(SyntaxError::UNRECOGNIZED),
    }
}

fn tokens(args: &str) -> impl Iterator<Item = &str> {
    args.split(' ').filter(|t| !t.is_empty())
}

fn no_args(args: &str, command: Command, err: SyntaxError) -> Result<Command, SyntaxError> {
    if args.trim_matches(' ').is_empty() {
        Ok(command)
    } else {
        Err(err)
    }
}

fn string_arg(args: &str, err: SyntaxError) -> Result<String, SyntaxError> {
    let s = args.trim_matches(' ');
    if s.is_empty() || s.chars().any(char::is_control) {
        return Err(err);
    }
    Ok(s.to_owned())
}

/// EHLO/HELO argument: a domain or address literal, ASCII only (RFC 6531 §3.7.1 keeps it
/// ASCII). Lenient about underscores and trailing dots, which real clients send.
fn parse_hello(args: &str, err: SyntaxError) -> Result<String, SyntaxError> {
    let mut it = tokens(args);
    let (Some(domain), None) = (it.next(), it.next()) else {
        return Err(err);
    };
    if domain.len() > MAX_DOMAIN {
        return Err(err);
    }
    let ok = if let Some(inner) = domain.strip_prefix('[').and_then(|d| d.strip_suffix(']')) {
        valid_literal(inner)
    } else {
        domain
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
    };
    if ok { Ok(domain.to_owned()) } else { Err(err) }
}

/// `FROM:` and `TO:` keywords, ASCII case-insensitive.
fn strip_prefix_ignore_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let n = prefix.len();
    let head = s.as_bytes().get(..n)?;
    if head.eq_ignore_ascii_case(prefix.as_bytes()) {
        // `prefix` is ASCII and matched, so `n` is a char boundary.
        s.get(n..)
    } else {
        None
    }
}

fn parse_mail(args: &str) -> Result<Command, SyntaxError> {
    let rest = strip_prefix_ignore_case(args, "FROM:").ok_or(SyntaxError::MAIL)?;
    // Some clients send "MAIL FROM: <a@b>"; tolerate exactly one space.
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (from, rest) = parse_path(rest, false).map_err(|e| match e {
        PathError::Syntax => SyntaxError::MAIL_ADDRESS,
        PathError::TooLong => SyntaxError::MAIL_ADDRESS_TOO_LONG,
    })?;
    let params = if rest.is_empty() {
        MailParams::default()
    } else if let Some(params) = rest.strip_prefix(' ') {
        parse_mail_params(params)?
    } else {
        return Err(SyntaxError::MAIL_ADDRESS);
    };
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(args: &str) -> Result<Command, SyntaxError> {
    let rest = strip_prefix_ignore_case(args, "TO:").ok_or(SyntaxError::RCPT)?;
    let rest = rest.strip_prefix(' ').unwrap_or(rest);
    let (to, rest) = parse_path(rest, true).map_err(|e| match e {
        PathError::Syntax => SyntaxError::RCPT_ADDRESS,
        PathError::TooLong => SyntaxError::RCPT_ADDRESS_TOO_LONG,
    })?;
    let to = to.ok_or(SyntaxError::RCPT_ADDRESS)?;
    if rest.is_empty() {
        Ok(Command::Rcpt { to })
    } else if rest.starts_with(' ') {
        // We advertise no RCPT extension (no DSN), so any parameter is unsupported.
        Err(SyntaxError::UNSUPPORTED_PARAMETER)
    } else {
        Err(SyntaxError::RCPT_ADDRESS)
    }
}

fn parse_mail_params(s: &str) -> Result<MailParams, SyntaxError> {
    let mut params = MailParams::default();
    for token in tokens(s) {
        let (keyword, value) = match token.split_once('=') {
            Some((k, v)) => (k, Some(v)),
            None => (token, None),
        };
        if !valid_keyword(keyword) || value.is_some_and(|v| !valid_esmtp_value(v)) {
            return Err(SyntaxError::PARAMETER_SYNTAX);
        }
        match keyword.to_ascii_uppercase().as_str() {
            "SIZE" => {
                if params.size.is_some() {
                    return Err(SyntaxError::DUPLICATE_PARAMETER);
                }
                let size = value.and_then(parse_decimal);
                params.size = Some(size.ok_or(SyntaxError::SIZE_PARAMETER)?);
            }
            "BODY" => {
                if params.body.is_some() {
                    return Err(SyntaxError::DUPLICATE_PARAMETER);
                }
                let body = match value.map(str::to_ascii_uppercase).as_deref() {
                    Some("7BIT") => Body::SevenBit,
                    Some("8BITMIME") => Body::EightBitMime,
                    Some("BINARYMIME") => Body::BinaryMime,
                    _ => return Err(SyntaxError::BODY_PARAMETER),
                };
                params.body = Some(body);
            }
            "SMTPUTF8" => {
                if params.smtputf8 {
                    return Err(SyntaxError::DUPLICATE_PARAMETER);
                }
                if value.is_some() {
                    return Err(SyntaxError::SMTPUTF8_PARAMETER);
                }
                params.smtputf8 = true;
            }
            "AUTH" => {
                if params.auth.is_some() {
                    return Err(SyntaxError::DUPLICATE_PARAMETER);
                }
                let value = value.ok_or(SyntaxError::AUTH_PARAMETER)?;
                params.auth = Some(value.to_owned());
            }
            _ => return Err(SyntaxError::UNSUPPORTED_PARAMETER),
        }
    }
    Ok(params)
}

fn parse_bdat(args: &str) -> Result<Command, SyntaxError> {
    let mut it = tokens(args);
    let size = it.next().and_then(parse_decimal).ok_or(SyntaxError::BDAT)?;
    let last = match (it.next(), it.next()) {
        (None, _) => false,
        (Some(word), None) if word.eq_ignore_ascii_case("LAST") => true,
        _ => return Err(SyntaxError::BDAT),
    };
    Ok(Command::Bdat { size, last })
}

fn parse_auth(args: &str) -> Result<Command, SyntaxError> {
    let mut it = tokens(args);
    let (Some(mechanism), initial, None) = (it.next(), it.next(), it.next()) else {
        return Err(SyntaxError::AUTH);
    };
    let mechanism_ok = mechanism.len() <= MAX_MECHANISM
        && mechanism
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
    if !mechanism_ok || initial.is_some_and(|i| i.chars().any(char::is_control)) {
        return Err(SyntaxError::AUTH);
    }
    Ok(Command::Auth {
        mechanism: mechanism.to_ascii_uppercase(),
        initial_response: initial.map(str::to_owned),
    })
}

/// 1 to 20 ASCII digits that fit in a u64.
fn parse_decimal(s: &str) -> Option<u64> {
    if s.is_empty() || s.len() > MAX_SIZE_DIGITS || !s.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    s.parse().ok()
}

/// RFC 5321 §4.1.2: esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-").
fn valid_keyword(k: &str) -> bool {
    k.bytes().next().is_some_and(|b| b.is_ascii_alphanumeric())
        && k.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
}

/// RFC 5321 §4.1.2 esmtp-value = 1*(%d33-60 / %d62-126), plus UTF-8 (RFC 6531 §3.3).
fn valid_esmtp_value(v: &str) -> bool {
    !v.is_empty()
        && v.chars().all(|c| match c {
            '!'..='<' | '>'..='~' => true,
            c => is_utf8_text(c),
        })
}

#[cfg(test)]
mod tests;
