//! The IMAP protocol core (RFC 9051 IMAP4rev2, RFC 3501 IMAP4rev1), sans-I/O: framing of
//! lines and literals, the command grammar, and response encoding. No sockets, no store, no
//! clock; the session in [`super::session`] gives it bytes and writes what it returns.

pub mod append;
pub mod command;
pub mod encode;
pub mod fetch;
pub mod framing;
pub mod lexer;
pub mod list;
pub mod mailbox_name;
pub mod mutf7;
pub mod search;
pub mod sequence;
pub mod structure;

pub use append::{AppendMessage, AppendPrefix, is_append, parse_append_next, parse_append_prefix};
pub use command::{
    Command, CommandKind, Malformed, Qresync, StatusItem, StoreMode, parse_command,
    parse_command_in,
};
pub use fetch::{FetchAttr, Section, SectionText};
pub use lexer::ParseError;
pub use list::ListCommand;
pub use search::SearchKey;
pub use sequence::SequenceSet;
