//! IMAP commands (RFC 9051 §6, RFC 3501 §6) and their parser. The input is one complete
//! command as framed by [`super::framing`], without the final CRLF.

use super::fetch::{FetchAttr, parse_fetch_attrs};
use super::lexer::{Cursor, ParseError, Parsed};
use super::list::{ListCommand, parse_list};
use super::mailbox_name;
use super::search::{SearchKey, parse_search};
use super::sequence::SequenceSet;
use crate::secret::Secret;

#[derive(Debug, PartialEq, Eq)]
pub struct Command {
    pub tag: String,
    pub kind: CommandKind,
}

/// How STORE changes flags.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreMode {
    Replace,
    Add,
    Remove,
}

/// STATUS data items (RFC 9051 §6.3.11, RFC 7162 HIGHESTMODSEQ, RFC 8438 SIZE).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusItem {
    Messages,
    Recent,
    UidNext,
    UidValidity,
    Unseen,
    Deleted,
    Size,
    HighestModSeq,
}

/// SELECT's QRESYNC parameter (RFC 7162 §3.2.5): what the client knew of the mailbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Qresync {
    pub uidvalidity: u32,
    pub modseq: u64,
    /// The UIDs the client knows (else all of them).
    pub known_uids: Option<SequenceSet>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum CommandKind {
    Capability,
    Noop,
    Logout,
    StartTls,
    Login {
        user: String,
        password: Secret<String>,
    },
    Authenticate {
        mechanism: String,
        initial: Option<Secret<String>>,
    },
    Enable(Vec<String>),
    Id,
    Namespace,
    /// RFC 9208 GETQUOTAROOT mailbox.
    GetQuotaRoot(String),
    /// RFC 9208 GETQUOTA root.
    GetQuota(String),
    /// RFC 9208 SETQUOTA (refused: the storage device is the limit).
    SetQuota,
    Select {
        mailbox: String,
        read_only: bool,
        condstore: bool,
        qresync: Option<Qresync>,
    },
    Create(String),
    Delete(String),
    Rename {
        from: String,
        to: String,
    },
    Subscribe(String),
    Unsubscribe(String),
    List(ListCommand),
    /// SELECT/EXAMINE of a name that cannot be decoded (bad modified UTF-7): NO, and no
    /// mailbox stays selected (RFC 3501 §6.3.1).
    SelectInvalidName,
    Status {
        mailbox: String,
        items: Vec<StatusItem>,
    },
    Idle,
    Check,
    Close,
    Unselect,
    Expunge {
        uids: Option<SequenceSet>,
    },
    Search {
        uid: bool,
        key: SearchKey,
        esearch: Option<Vec<String>>,
        /// A CHARSET was named (refused after ENABLE UTF8=ACCEPT, RFC 6855 §3 erratum 4029).
        charset: bool,
    },
    Fetch {
        uid: bool,
        set: SequenceSet,
        attrs: Vec<FetchAttr>,
        changed_since: Option<u64>,
        /// UID FETCH ... (CHANGEDSINCE n VANISHED): expunged UIDs too (RFC 7162 §3.2.6).
        vanished: bool,
    },
    Store {
        uid: bool,
        set: SequenceSet,
        unchanged_since: Option<u64>,
        mode: StoreMode,
        silent: bool,
        flags: Vec<String>,
    },
    Copy {
        uid: bool,
        set: SequenceSet,
        mailbox: String,
        moving: bool,
    },
}

impl CommandKind {
    /// A "CONDSTORE enabling command" other than SELECT/EXAMINE (CONDSTORE) and ENABLE
    /// (RFC 7162 §3.1): from it on, MODSEQ and UID come with every FETCH response.
    pub fn enables_condstore(&self) -> bool {
        match self {
            CommandKind::Status { items, .. } => items.contains(&StatusItem::HighestModSeq),
            CommandKind::Fetch {
                attrs,
                changed_since,
                ..
            } => changed_since.is_some() || attrs.contains(&FetchAttr::ModSeq),
            CommandKind::Search { key, .. } => key.uses_modseq(),
            CommandKind::Store {
                unchanged_since, ..
            } => unchanged_since.is_some(),
            _ => false,
        }
    }
}

/// A command that could not be parsed: BAD, to its tag if it had one.
#[derive(Debug, PartialEq, Eq)]
pub struct Malformed {
    pub tag: Option<String>,
    pub error: ParseError,
}

/// Parses a command of a session whose mailbox names are modified UTF-7.
pub fn parse_command(input: &[u8]) -> Result<Command, Malformed> {
    parse_command_in(input, false)
}

/// Parses a command; `utf8_names` after ENABLE UTF8=ACCEPT or IMAP4rev2.
pub fn parse_command_in(input: &[u8], utf8_names: bool) -> Result<Command, Malformed> {
    let mut cursor = Cursor::new(input).with_utf8_names(utf8_names);
    let tag = match cursor.tag() {
        Ok(tag) if cursor.peek() == Some(b' ') => String::from_utf8_lossy(tag).into_owned(),
        _ => {
            return Err(Malformed {
                tag: None,
                error: ParseError("expected a tag and a command"),
            });
        }
    };
    let kind = cursor.sp().and_then(|()| command_kind(&mut cursor));
    match kind.and_then(|kind| cursor.end().map(|()| kind)) {
        Ok(kind) => Ok(Command { tag, kind }),
        Err(error) => Err(Malformed {
            tag: Some(tag),
            error,
        }),
    }
}

/// A mailbox name argument, as Letterbox names it.
pub(super) fn mailbox(cursor: &mut Cursor<'_>) -> Parsed<String> {
    let raw = cursor.astring()?;
    mailbox_name::from_wire(&raw, cursor.utf8_names())
}

fn command_kind(c: &mut Cursor<'_>) -> Parsed<CommandKind> {
    macro_rules! simple {
        ($($word:literal => $kind:expr),* $(,)?) => {
            $(if c.keyword($word) { return Ok($kind); })*
        };
    }
    simple! {
        "CAPABILITY" => CommandKind::Capability,
        "NOOP" => CommandKind::Noop,
        "LOGOUT" => CommandKind::Logout,
        "STARTTLS" => CommandKind::StartTls,
        "NAMESPACE" => CommandKind::Namespace,
        "IDLE" => CommandKind::Idle,
        "CHECK" => CommandKind::Check,
        "CLOSE" => CommandKind::Close,
        "UNSELECT" => CommandKind::Unselect,
        "EXPUNGE" => CommandKind::Expunge { uids: None },
    }
    // GETQUOTAROOT before GETQUOTA: one is a prefix of the other.
    if c.keyword("GETQUOTAROOT") {
        c.sp()?;
        return Ok(CommandKind::GetQuotaRoot(mailbox(c)?));
    }
    if c.keyword("GETQUOTA") {
        c.sp()?;
        return Ok(CommandKind::GetQuota(c.astring_text()?));
    }
    if c.keyword("SETQUOTA") {
        c.sp()?;
        c.astring_text()?;
        c.sp()?;
        c.list(|c| c.atom().map(drop))?;
        return Ok(CommandKind::SetQuota);
    }
    if c.keyword("LOGIN") {
        c.sp()?;
        let user = c.astring_text()?;
        c.sp()?;
        let password = c.astring_text()?;
        return Ok(CommandKind::Login {
            user,
            password: Secret::new(password),
        });
    }
    if c.keyword("AUTHENTICATE") {
        c.sp()?;
        let mechanism = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
        let initial = if c.eat(b' ') {
            let text = c.atom().or_else(|_| c.tag())?;
            Some(Secret::new(String::from_utf8_lossy(text).into_owned()))
        } else {
            None
        };
        return Ok(CommandKind::Authenticate { mechanism, initial });
    }
    if c.keyword("ENABLE") {
        let mut capabilities = Vec::new();
        while c.eat(b' ') {
            capabilities.push(String::from_utf8_lossy(c.atom()?).to_ascii_uppercase());
        }
        if capabilities.is_empty() {
            return Err(ParseError("ENABLE needs at least one capability"));
        }
        return Ok(CommandKind::Enable(capabilities));
    }
    if c.keyword("ID") {
        c.sp()?;
        if !c.keyword("NIL") {
            c.list(|c| c.nstring().map(drop))?;
        }
        return Ok(CommandKind::Id);
    }
    for (word, read_only) in [("SELECT", false), ("EXAMINE", true)] {
        if c.keyword(word) {
            c.sp()?;
            // Bad modified UTF-7 is still an astring: the command is well formed and gets NO.
            let raw = c.astring()?;
            let mailbox = mailbox_name::from_wire(&raw, c.utf8_names());
            let mut condstore = false;
            let mut qresync = None;
            if c.eat(b' ') {
                c.list(|c| {
                    if c.keyword("CONDSTORE") {
                        condstore = true;
                    } else if c.keyword("QRESYNC") {
                        c.sp()?;
                        qresync = Some(qresync_parameter(c)?);
                    } else {
                        return Err(ParseError("unsupported SELECT parameter"));
                    }
                    Ok(())
                })?;
            }
            let Ok(mailbox) = mailbox else {
                return Ok(CommandKind::SelectInvalidName);
            };
            return Ok(CommandKind::Select {
                mailbox,
                read_only,
                condstore,
                qresync,
            });
        }
    }
    type OneMailbox = fn(String) -> CommandKind;
    let one_mailbox: [(&str, OneMailbox); 4] = [
        ("CREATE", CommandKind::Create),
        ("DELETE", CommandKind::Delete),
        ("SUBSCRIBE", CommandKind::Subscribe),
        ("UNSUBSCRIBE", CommandKind::Unsubscribe),
    ];
    for (word, make) in one_mailbox {
        if c.keyword(word) {
            c.sp()?;
            return Ok(make(mailbox(c)?));
        }
    }
    if c.keyword("RENAME") {
        c.sp()?;
        let from = mailbox(c)?;
        c.sp()?;
        let to = mailbox(c)?;
        return Ok(CommandKind::Rename { from, to });
    }
    if c.keyword("LIST") {
        return parse_list(c, false).map(CommandKind::List);
    }
    if c.keyword("LSUB") {
        return parse_list(c, true).map(CommandKind::List);
    }
    if c.keyword("STATUS") {
        c.sp()?;
        let mailbox = mailbox(c)?;
        c.sp()?;
        let items = c.list(status_item)?;
        return Ok(CommandKind::Status { mailbox, items });
    }
    let uid = c.keyword("UID");
    if uid {
        c.sp()?;
        if c.keyword("EXPUNGE") {
            c.sp()?;
            return Ok(CommandKind::Expunge {
                uids: Some(SequenceSet::parse(c)?),
            });
        }
    }
    if c.keyword("SEARCH") {
        let mut esearch = None;
        if c.rest().len() > 7 && c.rest()[1..7].eq_ignore_ascii_case(b"RETURN") {
            c.sp()?;
            c.keyword("RETURN");
            c.sp()?;
            esearch = Some(c.list(|c| {
                c.atom()
                    .map(|a| String::from_utf8_lossy(a).to_ascii_uppercase())
            })?);
        }
        c.sp()?;
        let charset = c.keyword("CHARSET");
        if charset {
            c.sp()?;
            let charset = c.astring()?;
            if !(charset.eq_ignore_ascii_case(b"UTF-8")
                || charset.eq_ignore_ascii_case(b"US-ASCII"))
            {
                return Err(ParseError(
                    "[BADCHARSET (UTF-8 US-ASCII)] unsupported charset",
                ));
            }
            c.sp()?;
        }
        let key = parse_search(c)?;
        return Ok(CommandKind::Search {
            uid,
            key,
            esearch,
            charset,
        });
    }
    if c.keyword("FETCH") {
        c.sp()?;
        let set = SequenceSet::parse(c)?;
        c.sp()?;
        let attrs = parse_fetch_attrs(c)?;
        let mut changed_since = None;
        let mut vanished = false;
        if c.eat(b' ') {
            for (name, value) in c.list(modifier)? {
                match (name.as_str(), value) {
                    ("CHANGEDSINCE", Some(value)) => changed_since = Some(value),
                    ("VANISHED", None) => vanished = true,
                    _ => return Err(ParseError("unsupported FETCH modifier")),
                }
            }
        }
        if vanished && !(uid && changed_since.is_some()) {
            return Err(ParseError("VANISHED needs UID FETCH with CHANGEDSINCE"));
        }
        return Ok(CommandKind::Fetch {
            uid,
            set,
            attrs,
            changed_since,
            vanished,
        });
    }
    if c.keyword("STORE") {
        c.sp()?;
        let set = SequenceSet::parse(c)?;
        c.sp()?;
        let mut unchanged_since = None;
        if c.peek() == Some(b'(') {
            for (name, value) in c.list(modifier)? {
                match (name.as_str(), value) {
                    ("UNCHANGEDSINCE", Some(value)) => unchanged_since = Some(value),
                    _ => return Err(ParseError("unsupported STORE modifier")),
                }
            }
            c.sp()?;
        }
        let mode = if c.eat(b'+') {
            StoreMode::Add
        } else if c.eat(b'-') {
            StoreMode::Remove
        } else {
            StoreMode::Replace
        };
        if !c.keyword("FLAGS") {
            return Err(ParseError("expected FLAGS, +FLAGS or -FLAGS"));
        }
        let silent = c.keyword(".SILENT");
        c.sp()?;
        let flags = if c.peek() == Some(b'(') {
            c.list(flag)?
        } else {
            let mut flags = vec![flag(c)?];
            while c.eat(b' ') {
                flags.push(flag(c)?);
            }
            flags
        };
        return Ok(CommandKind::Store {
            uid,
            set,
            unchanged_since,
            mode,
            silent,
            flags,
        });
    }
    for (word, moving) in [("COPY", false), ("MOVE", true)] {
        if c.keyword(word) {
            c.sp()?;
            let set = SequenceSet::parse(c)?;
            c.sp()?;
            let mailbox = mailbox(c)?;
            return Ok(CommandKind::Copy {
                uid,
                set,
                mailbox,
                moving,
            });
        }
    }
    if c.keyword("APPEND") {
        return Err(ParseError("APPEND needs a message literal"));
    }
    Err(ParseError(if uid {
        "expected FETCH, SEARCH, STORE, COPY, MOVE or EXPUNGE after UID"
    } else {
        "unknown command"
    }))
}

/// `(uidvalidity modseq [known-uids [(known-sequence-set known-uid-set)]])`; the sequence
/// match data only helps a server that cannot tell what was expunged, so it is read and
/// not used.
fn qresync_parameter(c: &mut Cursor<'_>) -> Parsed<Qresync> {
    c.expect(b'(', "expected (")?;
    let uidvalidity = c.nz_number()?;
    c.sp()?;
    let modseq = c.number()?;
    let mut known_uids = None;
    if c.eat(b' ') {
        if c.peek() != Some(b'(') {
            known_uids = Some(SequenceSet::parse(c)?);
            if !c.eat(b' ') {
                c.expect(b')', "expected )")?;
                return Ok(Qresync {
                    uidvalidity,
                    modseq,
                    known_uids,
                });
            }
        }
        c.expect(b'(', "expected (")?;
        SequenceSet::parse(c)?;
        c.sp()?;
        SequenceSet::parse(c)?;
        c.expect(b')', "expected )")?;
    }
    c.expect(b')', "expected )")?;
    Ok(Qresync {
        uidvalidity,
        modseq,
        known_uids,
    })
}

/// `NAME value` or `NAME` in a modifier list; names uppercased.
fn modifier(c: &mut Cursor<'_>) -> Parsed<(String, Option<u64>)> {
    let name = String::from_utf8_lossy(c.atom()?).to_ascii_uppercase();
    let value = if c.peek() == Some(b' ') && c.rest().get(1).is_some_and(u8::is_ascii_digit) {
        c.sp()?;
        Some(c.number()?)
    } else {
        None
    };
    Ok((name, value))
}

/// A flag or keyword: `\Seen`, `$Forwarded`, `Junk`.
pub fn flag(c: &mut Cursor<'_>) -> Parsed<String> {
    let backslash = c.eat(b'\\');
    let atom = c.atom()?;
    let text = std::str::from_utf8(atom).map_err(|_| ParseError("invalid flag"))?;
    Ok(if backslash {
        format!("\\{text}")
    } else {
        text.to_string()
    })
}

pub(super) fn status_item(c: &mut Cursor<'_>) -> Parsed<StatusItem> {
    let item = c.atom()?.to_ascii_uppercase();
    Ok(match item.as_slice() {
        b"MESSAGES" => StatusItem::Messages,
        b"RECENT" => StatusItem::Recent,
        b"UIDNEXT" => StatusItem::UidNext,
        b"UIDVALIDITY" => StatusItem::UidValidity,
        b"UNSEEN" => StatusItem::Unseen,
        b"DELETED" => StatusItem::Deleted,
        b"SIZE" => StatusItem::Size,
        b"HIGHESTMODSEQ" => StatusItem::HighestModSeq,
        _ => return Err(ParseError("unknown STATUS item")),
    })
}

#[cfg(test)]
mod tests;
