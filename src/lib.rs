//! Letterbox: a household mail box appliance.
//!
//! Module map (one noun each):
//! - `secret`: values that never show in logs.
//! - `smtp`: SMTP receive — `proto` (sans-I/O grammar and DATA framing) and the session.
//! - `pop3`: POP3 — `proto` (sans-I/O) and the session.

pub mod pop3;
pub mod secret;
pub mod smtp;
pub mod auth;
pub mod config;
pub mod limits;
pub mod status;
pub mod store;
pub mod tls;
pub mod units;
