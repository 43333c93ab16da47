//! IMAP: `proto` (sans-I/O grammar and encoding, BODYSTRUCTURE from the stored MIME tree of
//! `crate::mime`), `session` (the state machine over a connection and the store).

pub mod proto;
pub mod session;
