//! SMTP: `proto` is the sans-I/O grammar and DATA/BDAT framing; `session` runs it over a
//! connection and the store.

pub mod proto;
pub mod session;
pub mod submission;
pub mod verify;
