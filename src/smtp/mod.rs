//! SMTP: `proto` is the sans-I/O grammar and DATA/BDAT framing; `session` runs it over a
//! connection and the store; `filter` holds the inbound checks of port 25.

pub mod filter;
pub mod proto;
pub mod session;
pub mod submission;
pub mod verify;
