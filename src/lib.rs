//! Letterbox: a household mail box appliance.
//!
//! Module map (one noun each):
//! - `app`: wires the services together; listeners, supervisor, shutdown.
//! - `admin`: account/alias/status operations for the CLI and the control socket.
//! - `config`, `limits`, `units`: the config file and the memory budget.
//! - `country`: ISO 3166-1 country codes for the Wi-Fi regulatory domain, and the default
//!   country of a browser's language.
//! - `store`: the only owner of durable state (redb): accounts, mailboxes, bodies, queue.
//! - `auth`: password hashing and the failed-login throttle.
//! - `tls`: rustls configuration and the self-signed certificate.
//! - `net`: the buffered connection every session runs over (plaintext, TLS, STARTTLS).
//! - `smtp`: SMTP receive and submission — `proto` (sans-I/O), `session`, `submission`.
//! - `outbound`: the delivery worker — MX lookup, SMTP client, retries, DSNs, DKIM.
//! - `mime`: message structure (MIME tree, byte ranges, search text) computed at delivery, and
//!   the streaming decoders that read a part's content.
//! - `imap`: IMAP4rev2/IMAP4rev1 — `proto` (sans-I/O), `session`.
//! - `pop3`: POP3 — `proto` (sans-I/O) and `session`.
//! - `export`: backups and moving out — the store as a tar of Maildir trees, and imports of
//!   such a tar, a Maildir tree or an mbox file.
//! - `control`: the one owner of the appliance's mode (normal, setup, shutting down).
//! - `settings`: what the setup page changes, in `<data_dir>/settings.toml` over the config.
//! - `status`: the status value shown by `letterbox status` (and later the panel).
//! - `panel`: one view of the status per screen, drawn for the SSD1306 OLED or laid out for an
//!   HD44780 character LCD (and the terminal); both drivers, the simulated panels, the I2C scan.
//! - `button`: debounce and short/long/very-long presses; the GPIO line.
//! - `network`: the network seam the setup wizard uses (Wi-Fi scan and join, the link, the
//!   hotspot's address; wired, simulated, wpa_supplicant and automatic backends) and the
//!   captive DNS responder.
//! - `board`: the boards' facts (`board/*.toml`, built in) and their detection.
//! - `web`: the web service: the setup wizard, the captive portal's probes.
//! - `network`: the network seam (Wi-Fi, hotspot) and the captive DNS responder.
//! - `secret`: values that never show in logs.
//! - `recent_log`: the last log lines in memory, for the admin page.
//! - `backup`: the nightly backup to a USB drive labelled LETTERBOX-BACKUP.
//! - `health`: the box checking itself (outgoing port 25, DNS records, reverse DNS,
//!   blocklists, certificate), at start, periodically and on demand.
//! - `spam`: the learning content filter (tokens, scoring, training from folders).

pub mod admin;
pub mod app;
pub mod auth;
pub mod backup;
pub mod board;
pub mod button;
pub mod config;
pub mod control;
pub mod country;
pub mod export;
pub mod health;
pub mod imap;
pub mod limits;
pub mod mime;
pub mod net;
pub mod network;
pub mod outbound;
pub mod panel;
pub mod pop3;
pub mod recent_log;
pub mod secret;
pub mod settings;
pub mod slots;
pub mod smtp;
pub mod spam;
pub mod status;
pub mod store;
pub mod tls;
pub mod units;
pub mod web;
