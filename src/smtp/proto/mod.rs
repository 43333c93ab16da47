//! SMTP protocol core (sans-I/O): bytes in, commands, message text and reply bytes out.
//!
//! - [`command`]: one command line → [`Command`] or a [`SyntaxError`] carrying its reply.
//! - [`address`]: the paths and mailboxes in MAIL FROM and RCPT TO → [`Address`].
//! - [`data`]: the DATA receiver (end marker, dot-unstuffing) and the [`MessageChecker`]
//!   shared with BDAT (size, line length, bare CR/LF).
//! - [`reply`]: [`Reply`] and its wire encoding.
//!
//! What this layer does not do: read sockets, frame command lines (the session splits
//! on CRLF and enforces [`command::MAX_AUTH_LINE`] as its largest frame), keep session
//! state, decide which domains are local, or decode SASL payloads. No tokio, sockets,
//! files or clocks here.

pub mod address;
pub mod command;
pub mod data;
pub mod header_filter;
pub mod reply;

pub use address::Address;
pub use command::{Body, Command, MailParams, SyntaxError, parse_command};
pub use data::{DataError, DataReceiver, MessageChecker};
pub use reply::Reply;
