//! IMAP: `proto` (sans-I/O grammar and encoding), `mime` (message structure computed once at
//! delivery), `session` (the state machine over a connection and the store).

pub mod mime;
pub mod proto;
pub mod session;
