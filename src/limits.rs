//! The memory budget: every buffer, queue and timeout that network input can grow is bounded
//! by a field of [`Limits`]. The `[limits]` table of the config file sets them; each has a
//! default sized for a 512 MB board (Raspberry Pi Zero 2 W).

use std::time::Duration;

use serde::Deserialize;

use crate::units::{ByteSize, Seconds};

/// RFC 5321 §4.5.3.1.4: an SMTP command line is at most 512 octets including CRLF.
pub const SMTP_COMMAND_LINE: usize = 512;
/// RFC 5321 §4.5.3.1.6: a line of message text is at most 1000 octets including CRLF.
pub const SMTP_TEXT_LINE: usize = 1000;
/// RFC 2449 §4: a POP3 command line is at most 255 octets including CRLF.
pub const POP3_COMMAND_LINE: usize = 255;
/// A command line (and an IMAP command with its literals, other than an APPEND message) must
/// arrive whole within this long of its first octet: the idle timeouts restart on every
/// byte, so without it one byte every few seconds held a connection for ever (issue #16).
/// A real client sends a command in one packet; 60 s leaves a 256 KiB IMAP command room on a
/// 5 KB/s link.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);
/// SMTP DATA/BDAT: the slowest transfer allowed on average (octets per second). A message
/// must arrive within `COMMAND_TIMEOUT` plus its size (up to `max_message_size`) at this
/// rate: 25 MiB may take 1 h 47 min, slower than any phone link (32 kbit/s), yet a peer that
/// dribbles bytes cannot hold a slot for ever.
pub const DATA_MIN_RATE: u64 = 4096;

/// When a transfer of `received` octets so far, begun `COMMAND_TIMEOUT` ago at `started`,
/// must end: its time grows with what arrived, up to `max` octets' worth.
pub fn transfer_deadline(
    started: tokio::time::Instant,
    received: u64,
    max: u64,
) -> tokio::time::Instant {
    started + COMMAND_TIMEOUT + Duration::from_secs(received.min(max) / DATA_MIN_RATE)
}

/// Threads tokio may start for blocking work (redb reads and writes, argon2, file I/O). Each
/// holds a stack and allocator state, so the pool is kept small; work beyond it waits.
pub const BLOCKING_THREADS: usize = 16;
/// Message bodies are spooled and copied in buffers of this size, and the store keeps them in
/// pieces of at most this size (`store::pieces`).
pub const BODY_CHUNK: usize = 64 * 1024;
/// A body being sent (IMAP FETCH, POP3 RETR) is read from the store in trips of at most this
/// many octets, whole pieces, one trip read while the last one is sent: no session holds more
/// than twice this of a message. Fewer, larger trips spare the thread hand-offs of one per
/// 64 KiB piece.
pub const BODY_READ_AHEAD: usize = 256 * 1024;

/// Export: message rows read at once while walking a mailbox (a few dozen octets each), so an
/// export holds a page of rows, not a whole mailbox's.
pub const EXPORT_PAGE: usize = 1024;
/// Import: messages stored per commit. One commit per message would make an import of
/// thousands pay thousands of fsyncs; the spooled messages of a batch wait on disk, not in
/// memory, so this bounds the files in the spool directory, not memory.
pub const IMPORT_BATCH: usize = 64;
/// Import of an mbox file: the longest piece of a line read at once. RFC 5322 §2.1.1 allows
/// 998 octets; a longer line is read in pieces of this size (only a whole line can be a
/// `From ` separator or a header).
pub const IMPORT_LINE: usize = 64 * 1024;
/// Import: `dovecot-keywords` files larger than this are not read (26 keywords of up to a few
/// hundred octets each fit many times).
pub const IMPORT_SMALL_FILE: u64 = 64 * 1024;

/// IMAP (RFC 9051 §4.3 leaves line length to the server; RFC 7162 §4 asks for at least 8192
/// octets so that long UID sets fit): one command line, without its literals.
pub const IMAP_COMMAND_LINE: usize = 64 * 1024;
/// IMAP: a whole command with its literals (other than an APPEND message, which streams to a
/// spool file). A literal that would pass this is refused before anything is read into memory.
pub const IMAP_COMMAND_MAX: usize = 256 * 1024;
/// IMAP before login: a whole command with its literals. LOGIN's user name and password fit
/// many times over; anything larger is refused unread (a LITERAL+ over it ends the connection,
/// RFC 7888 §4), so an unauthenticated peer cannot make the server read gigabytes.
pub const IMAP_PREAUTH_COMMAND_MAX: usize = 8 * 1024;
/// IMAP: an AUTHENTICATE response line (base64 of a name and a password).
pub const IMAP_SASL_LINE: usize = 4096;
/// IMAP: BAD replies in one session after which the peer is disconnected.
pub const IMAP_MAX_ERRORS: u32 = 50;
/// IMAP: mailboxes per account (CREATE beyond this gets NO [LIMIT]).
pub const IMAP_MAX_MAILBOXES: usize = 1000;
/// IMAP: keywords an account can define (RFC 9051 §2.3.2); a STORE or APPEND that would need
/// one more gets NO [LIMIT], and PERMANENTFLAGS stops offering `\*`. Apple Mail and
/// Thunderbird together use about 20; mailboxes moved in from other servers bring more. Each
/// keyword is a flag bit numbered in a `u8` after the five system flags, so 250 fit.
pub const IMAP_MAX_KEYWORDS: usize = 250;
/// IMAP: messages in one MULTIAPPEND (RFC 3502): each waits in its own spool file until the one
/// commit that stores them all.
pub const IMAP_MULTIAPPEND_MAX: usize = 100;
/// IMAP: UID ranges a session keeps of the messages that are `\Recent` for it.
pub const IMAP_RECENT_RANGES: usize = 256;
/// IMAP FETCH: how long one redb read view may serve a FETCH. A view keeps redb from reusing
/// the pages it sees (the store file grows while it lives), so a slow client reading a large
/// batch gets a new view between messages after this long.
pub const IMAP_READ_VIEW_MAX_AGE: std::time::Duration = std::time::Duration::from_secs(5);
/// IMAP FETCH: octets of stored structures, and of message bytes, read ahead for the next
/// messages of a FETCH in one store transaction (beyond this, the rest waits for the next
/// read-ahead, and a larger message is streamed chunk by chunk on its own). Held per session
/// while its FETCH runs (structures parsed, which takes somewhat more than their stored
/// JSON). 128 KiB is 30-60 messages of a few KiB: one trip to the blocking pool per window
/// costs little next to the messages themselves.
pub const FETCH_PREFETCH_MAX: usize = 128 * 1024;
/// SMTP: octets of a message's header section read whole, for the submission From:/Sender:
/// check (RFC 6409 §8, RFC 5322 §3.6) and the inbound authentication checks. A submission
/// whose header section is longer is refused with 552 5.3.4 rather than passed unchecked;
/// Postfix stops at 100 KiB (`header_size_limit`), so no mail client comes near it.
pub const HEADER_SCAN: usize = 256 * 1024;
/// MIME: the header block of one part kept for parsing at delivery (longer headers are cut
/// here for ENVELOPE/BODYSTRUCTURE; the message itself is stored whole).
pub const MIME_HEADER_MAX: usize = 64 * 1024;
/// MIME: parts recorded per message, and nesting depth; deeper or further parts are folded
/// into their parent's body.
pub const MIME_MAX_PARTS: usize = 500;
pub const MIME_MAX_DEPTH: usize = 32;
/// Login: password verifications in progress at once for one peer address, and for one account
/// from addresses it does not know. Further attempts wait for these to settle, so each sees
/// their failures before it is let through (issue #16: 300 guesses sent at once all passed the
/// lockout check). Two keep a mail client that opens several connections at once moving;
/// `password_hash_concurrency` bounds the argon2 work of all accounts together.
pub const LOGIN_VERIFICATIONS_PER_ADDRESS: u32 = 2;
pub const LOGIN_VERIFICATIONS_PER_ACCOUNT: u32 = 2;
/// Login: an address that logged in to an account is "known" to it for this long after its last
/// successful login; failures against the account from other addresses do not lock it out.
/// Thirty days covers a phone that syncs only when its owner is home.
pub const LOGIN_KNOWN_ADDRESS_TTL: Duration = Duration::from_secs(30 * 24 * 60 * 60);
/// Login: known addresses remembered per account (the least recently used is forgotten): a
/// household's devices at home, at work and on mobile networks.
pub const LOGIN_KNOWN_ADDRESSES: usize = 16;
/// Login: recently verified (account, password) pairs remembered so that a phone reconnecting
/// all day does not cost an argon2 run (19 MiB, tens of ms on a Pi Zero 2 W) each time. Each
/// entry is 32 octets of keyed hash plus the account name; the least fresh is forgotten when
/// full. The lifetime is short so that a password someone else learned is not honoured long
/// after the throttle would have caught its guesses; a password change ends an entry at once.
pub const LOGIN_CACHE_ENTRIES: usize = 256;
pub const LOGIN_CACHE_LIFETIME: Duration = Duration::from_secs(10 * 60);

/// Setup mode ends by itself after this long without a request from the setup page (issue
/// #11): a box left in setup mode should not stay open to whoever walks by.
pub const SETUP_IDLE_TIMEOUT: Duration = Duration::from_secs(15 * 60);

/// DNS over UDP without EDNS: a message is at most 512 octets (RFC 1035 §4.2.1). The captive
/// DNS responder refuses a longer query that does not announce EDNS (FORMERR).
pub const DNS_UDP_PLAIN_MAX: usize = 512;
/// Captive DNS: the largest query read (a longer datagram is cut here and answered FORMERR),
/// and the UDP payload size the responder announces with EDNS (RFC 6891 §6.2.5). 1232 octets
/// is what DNS Flag Day 2020 settled on: it crosses any IPv6 path unfragmented. A captive
/// answer (the question and one A record) needs less than 300.
pub const CAPTIVE_DNS_PACKET_MAX: usize = 1232;

/// NetworkManager backend: how long `nmcli -w` waits for a connection to come up (nmcli(1):
/// 90 s by default). A WPA2 join (scan, 4-way handshake, DHCP) takes a few seconds; a wrong
/// passphrase is reported after NetworkManager's own retries, well within this. The wizard
/// waits for the answer, so it must come in less than a person's patience.
pub const NMCLI_WAIT: Duration = Duration::from_secs(45);
/// And how long any nmcli process may run at all before it is killed: the wait above plus
/// the time nmcli needs to reach NetworkManager and print.
pub const NMCLI_KILL_AFTER: Duration = Duration::from_secs(60);
/// wpa_supplicant control interface: the largest reply it writes (hostap
/// `wpa_supplicant/ctrl_iface.c`, `reply_size = 4096`; a longer SCAN_RESULTS is cut there).
/// A datagram is read into a buffer one octet larger, so a longer one shows as cut.
pub const WPA_CTRL_MESSAGE_MAX: usize = 4096;
/// wpa_supplicant control interface: how long to wait for a reply (what hostap's own
/// `wpa_ctrl_request` waits, `src/common/wpa_ctrl.c`).
pub const WPA_CTRL_REPLY_TIMEOUT: Duration = Duration::from_secs(10);
/// Events kept while a request waits for its reply; older ones are dropped (a join reads
/// them as they come, so only a burst of scan events can fill this).
pub const WPA_CTRL_EVENTS: usize = 32;
/// At start, how long the automatic backend waits for wpa_supplicant's control socket before
/// it stops looking for a stored network to rejoin (brcmfmac loads its firmware in a few
/// seconds; the image's init starts wpa_supplicant as soon as the interface is there).
pub const WIFI_APPEAR_TIMEOUT: Duration = Duration::from_secs(120);
/// Scanning: how long to wait for the results before reading what was heard so far (an
/// active scan of 2.4 and 5 GHz takes 2 to 5 s).
pub const WIFI_SCAN_TIMEOUT: Duration = Duration::from_secs(10);
/// Joining a network: time for the scan, the association and the 4-way handshake, or for
/// wpa_supplicant to say why not (a wrong key shows within a few seconds, a missing network
/// after a scan or two).
pub const WIFI_JOIN_TIMEOUT: Duration = Duration::from_secs(45);

/// The setup page's one-time code (shown on the panel and by `letterbox status`): 8 of 28
/// characters, about 38 bits.
pub const SETUP_CODE_LENGTH: usize = 8;
/// Wrong one-time codes allowed before each further guess must wait; the wait starts at
/// `SETUP_CODE_FIRST_WAIT` and doubles with each wrong code, up to `SETUP_CODE_LONGEST_WAIT`.
/// The count is for the whole box, not per address, so guessing from many addresses at once
/// gains nothing: at most a few hundred guesses a day against 28^8 codes.
pub const SETUP_CODE_FREE_GUESSES: u32 = 3;
pub const SETUP_CODE_FIRST_WAIT: Duration = Duration::from_secs(10);
pub const SETUP_CODE_LONGEST_WAIT: Duration = Duration::from_secs(5 * 60);
/// Browser sessions of the setup page kept at once (the household's phone or two, and
/// whoever fetched the code page); a new one pushes out the oldest that has not given the code.
pub const WEB_SETUP_SESSIONS: usize = 32;
/// People the setup wizard's draft holds at most (each with a password in memory until
/// "Finish"); more are added on the admin page.
pub const WIZARD_ACCOUNTS: usize = 32;
/// A web connection is closed after this long, however busy: a browser opens a new one, and a
/// slow client cannot hold a slot for ever. Long enough for a relay's "test connection".
pub const WEB_CONNECTION_LIFETIME: Duration = Duration::from_secs(5 * 60);
/// Time for a request's head (request line and headers) to arrive whole.
pub const WEB_HEADER_TIMEOUT: Duration = Duration::from_secs(30);
/// Logged-in web sessions kept at once (a household's people on a few devices each); a new
/// one pushes out the oldest.
pub const WEB_LOGIN_SESSIONS: usize = 64;
/// A web session ends after this long without a request (OWASP suggests 15-30 minutes for
/// low-risk applications), and after `WEB_LOGIN_LONGEST` in any case.
pub const WEB_LOGIN_IDLE: Duration = Duration::from_secs(30 * 60);
pub const WEB_LOGIN_LONGEST: Duration = Duration::from_secs(12 * 3600);
/// The admin page's log: the last 200 lines of at most 400 bytes (80 KB at most).
pub const RECENT_LOG_LINES: usize = 200;
pub const RECENT_LOG_LINE_MAX: usize = 400;

/// Greylisting (RFC 6647 §6 leaves the timers to the operator): a network that retried and
/// passed is let through without delay for this long after its last mail; 30 days, as
/// postgrey's default `max-age` (35 days) and what the issue asks.
pub const GREYLIST_NETWORK_TTL: Duration = Duration::from_secs(30 * 24 * 3600);
/// Greylisting: a first attempt not retried within this long is forgotten (postgrey's
/// `retry-window`, 2 days; a day covers every retry schedule of RFC 5321 §4.5.4.1).
pub const GREYLIST_RETRY_WINDOW: Duration = Duration::from_secs(24 * 3600);
// The box checking itself (`health`) and its USB backup (`backup`).
/// Each health check (a DNS lookup chain, the port 25 probe) gets this long before it is
/// reported as "could not check": the resolver's own 2 × 5 s per lookup, a few lookups deep.
pub const HEALTH_CHECK_TIMEOUT: Duration = Duration::from_secs(30);
// The learning content filter (`spam`).
/// Octets of a message the content filter reads (headers first, then the text parts in
/// order): a 25 MiB message costs what a 64 KiB one does, in memory and time. Spam shows
/// itself early; the rest of a long message adds little.
pub const SPAM_READ_MAX: usize = 64 * 1024;
/// Distinct tokens taken from one message; a message with more (a word list) is judged on
/// the first ones. Bounds the memory and the store lookups of one classification.
pub const SPAM_MESSAGE_TOKENS: usize = 3000;
/// Tokens the filter keeps counts for (20 octets each, about 4 MB on disk at most): a
/// household's vocabulary plus the spam it meets. Past it the least-used are pruned. It
/// also bounds the store cache that classifying fills: the SpamAssassin corpus's 3,000
/// training messages make 85,000 tokens (114,000 while `Received` and message ids gave
/// their every word); kept whole, classifying grows the process by 3.4 MiB
/// (bench/RESULTS.md). Pruning to 60,000 marked twice the hard ham as spam.
pub const SPAM_TOKENS_MAX: u64 = 150_000;
/// Pruning waits until the table is this much past `SPAM_TOKENS_MAX`, so it is a rare
/// pass over the table, not one per lesson.
pub const SPAM_PRUNE_SLACK: u64 = 15_000;
/// Messages remembered as learned (so each is learned once): 10 octets each.
pub const SPAM_LEARNED_MAX: u64 = 100_000;
/// Messages learned per store commit by `spam train` and by one IMAP command.
pub const SPAM_LEARN_BATCH: usize = 64;

#[derive(Debug, Clone, Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Largest message accepted (SMTP SIZE, RFC 1870). Larger ones get 552 5.3.4.
    pub max_message_size: ByteSize,
    /// Largest message IMAP APPEND accepts (RFC 7889 APPENDLIMIT); larger ones get
    /// NO [TOOBIG]. Above `max_message_size` so that old mailboxes, whose messages other
    /// servers took at 30-50 MB, can be moved in; the literal streams to a spool file, so
    /// this bounds disk use, not memory.
    pub max_append_size: ByteSize,
    /// Longest line of message text the MX (port 25) takes, CRLF included. RFC 5321
    /// §4.5.3.1.6 says 1000, but badly made newsletters send longer lines and the classic
    /// servers take them (Postfix stores them whole, wrapping only when it relays), so a 554
    /// bounced them; the receiver holds no line in memory, so this bounds nothing but the
    /// oddity. Kept whole: folding would break the sender's DKIM signature. Submission stays
    /// at 1000 (`SMTP_TEXT_LINE`), so nothing longer ever goes out.
    pub smtp_mx_text_line: ByteSize,
    /// Recipients per SMTP transaction; RFC 5321 §4.5.3.1.8 requires at least 100.
    pub max_recipients: usize,
    /// Concurrent connections per service (SMTP, submission, POP3, ...; a service's plain
    /// and TLS ports share them). Further connections get the protocol's busy reply (SMTP
    /// 421, POP3 -ERR [SYS/TEMP], IMAP * BYE [UNAVAILABLE]) and are closed at once.
    pub max_connections: usize,
    /// Of those, connections one client address may hold (an IPv6 /64 counts as one
    /// address). 16 is a quarter of the default 64: a household's devices behind one NAT
    /// address hold a few each (a mail client opens up to 5 IMAP connections per account),
    /// and one address alone can never take the whole service.
    pub max_connections_per_address: usize,
    /// redb page cache.
    pub store_cache_size: ByteSize,
    /// Largest received message whose DKIM signatures are checked (mail-auth verifies from
    /// memory); larger ones are checked by SPF and DMARC only.
    pub auth_check_max_size: ByteSize,
    /// DKIM/DMARC checks running at once; each holds up to `auth_check_max_size`.
    pub auth_checks: usize,
    /// Space kept free on the data device: deliveries that would eat into it get 452 4.3.1,
    /// so the store itself always has room to work (and to delete mail).
    pub min_free_space: ByteSize,
    /// Deliveries that may wait for the store writer; senders beyond this wait.
    pub delivery_backlog: usize,
    /// Deliveries that share one durable commit at most.
    pub group_commit_max: usize,
    /// How long a commit waits for deliveries already arriving (messages in the spool, being
    /// received or checked) before it starts, in milliseconds; 0: it never waits. A delivery
    /// with nothing else arriving is committed at once. Eight senders of 256 KiB messages
    /// shared almost no commit without it (their messages take longer to arrive than a
    /// commit), so each paid a whole commit's pages and journal blocks on the card.
    pub group_commit_wait_ms: u64,
    /// SMTP: time allowed between commands and between DATA chunks (RFC 5321 §4.5.3.2: 5 min).
    pub smtp_idle_timeout: Seconds,
    /// POP3: idle time before the session is closed (RFC 1939 §3: at least 10 minutes).
    pub pop3_idle_timeout: Seconds,
    /// IMAP: idle time of a logged-in session (RFC 9051 §5.4: at least 30 minutes; IDLE
    /// clients re-issue IDLE within 29 minutes).
    pub imap_idle_timeout: Seconds,
    /// Any session before login (shorter: an unauthenticated peer holds a slot for less).
    pub preauth_idle_timeout: Seconds,
    /// IMAP, POP3 and submission: total time from connect to login, however the peer paces
    /// its bytes (a timer that restarts on every byte let one byte every 10 s hold a slot
    /// for ever). A client logs in within a second or two; 60 s leaves room for a slow link
    /// and a STARTTLS handshake.
    pub preauth_timeout: Seconds,
    /// Concurrent argon2 computations; each holds `argon2_memory` of RAM.
    pub password_hash_concurrency: usize,
    /// argon2id memory cost per hash.
    pub argon2_memory: ByteSize,
    /// First delay after a failed login; it doubles with each further failure.
    pub login_failure_delay: Seconds,
    /// Failures from one address or against one account after which logins are refused
    /// outright until `login_lockout` has passed since the last one. An account's lockout does
    /// not apply to the addresses it knows (see `auth::throttle`).
    pub login_failures_before_lockout: u32,
    pub login_lockout: Seconds,
    /// Peer addresses remembered by the login throttle at once (the one idle longest is forgotten
    /// first). Accounts are counted in a table of their own, which a flood of addresses cannot
    /// empty: it holds only accounts that exist.
    pub login_throttle_entries: usize,
    /// Largest request body the web service reads (a form, or a certificate chain and key
    /// uploaded in setup); larger ones get 413.
    pub web_max_body: ByteSize,
    /// Largest request head (request line and headers) the web service buffers; larger ones
    /// get 431. hyper needs at least 8 KiB.
    pub web_max_header: ByteSize,
    /// Time for a request's body to arrive whole once its head has (a form takes
    /// milliseconds); a slower one is refused and its connection closed.
    pub web_body_timeout: Seconds,
    /// Inbound filters (`smtp::filter`): the longest one check may take (DNS lookups,
    /// greylisting's store write, SPF/DKIM); a check that overruns is logged and accepts.
    pub filter_step_timeout: Seconds,
    /// Octets of a received message the end-of-data checks see (the content classifier
    /// reads no more, whatever the message's size).
    pub filter_data_view: ByteSize,
    /// Port 25: connections one client address (an IPv6 /64) may open per minute, and
    /// recipients it may give per hour, when `[spam] rate_limits` is on.
    pub smtp_connections_per_minute: u32,
    pub smtp_recipients_per_hour: u32,
    /// Client addresses the rate limits keep counts for (about 100 octets each).
    pub rate_table_entries: usize,
    /// Greylisting: triplets, and networks, kept in the store (about 100 octets each).
    pub greylist_entries: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_message_size: ByteSize(25 * 1024 * 1024),
            max_append_size: ByteSize(64 * 1024 * 1024),
            smtp_mx_text_line: ByteSize(64 * 1024),
            max_recipients: 100,
            max_connections: 64,
            max_connections_per_address: 16,
            store_cache_size: ByteSize(16 * 1024 * 1024),
            auth_check_max_size: ByteSize(4 * 1024 * 1024),
            auth_checks: 2,
            min_free_space: ByteSize(64 * 1024 * 1024),
            delivery_backlog: 64,
            group_commit_max: 32,
            group_commit_wait_ms: 3,
            smtp_idle_timeout: Seconds(300),
            pop3_idle_timeout: Seconds(600),
            imap_idle_timeout: Seconds(30 * 60),
            preauth_idle_timeout: Seconds(60),
            preauth_timeout: Seconds(60),
            password_hash_concurrency: 2,
            argon2_memory: ByteSize(19 * 1024 * 1024),
            login_failure_delay: Seconds(1),
            login_failures_before_lockout: 10,
            login_lockout: Seconds(15 * 60),
            login_throttle_entries: 4096,
            web_max_body: ByteSize(64 * 1024),
            web_max_header: ByteSize(16 * 1024),
            web_body_timeout: Seconds(30),
            filter_step_timeout: Seconds(15),
            filter_data_view: ByteSize(64 * 1024),
            smtp_connections_per_minute: 30,
            smtp_recipients_per_hour: 600,
            rate_table_entries: 4096,
            greylist_entries: 20_000,
        }
    }
}

impl Limits {
    pub fn validate(&self) -> Result<(), String> {
        let positive = [
            ("max_recipients", self.max_recipients),
            ("max_connections", self.max_connections),
            (
                "max_connections_per_address",
                self.max_connections_per_address,
            ),
            ("auth_checks", self.auth_checks),
            ("delivery_backlog", self.delivery_backlog),
            ("group_commit_max", self.group_commit_max),
            ("password_hash_concurrency", self.password_hash_concurrency),
            ("login_throttle_entries", self.login_throttle_entries),
            ("rate_table_entries", self.rate_table_entries),
            ("greylist_entries", self.greylist_entries as usize),
            ("filter_step_timeout", self.filter_step_timeout.0 as usize),
            (
                "smtp_connections_per_minute",
                self.smtp_connections_per_minute as usize,
            ),
            (
                "smtp_recipients_per_hour",
                self.smtp_recipients_per_hour as usize,
            ),
        ];
        for (name, value) in positive {
            if value == 0 {
                return Err(format!("limits.{name} must be at least 1"));
            }
        }
        if self.max_recipients < 100 {
            return Err("limits.max_recipients must be at least 100 (RFC 5321 §4.5.3.1.8)".into());
        }
        if self.max_message_size.0 < 64 * 1024 {
            return Err("limits.max_message_size must be at least 64KiB".into());
        }
        if self.max_append_size.0 < 64 * 1024 {
            return Err("limits.max_append_size must be at least 64KiB".into());
        }
        if self.smtp_mx_text_line.0 < SMTP_TEXT_LINE as u64 {
            return Err(
                "limits.smtp_mx_text_line must be at least 1000 (RFC 5321 §4.5.3.1.6)".into(),
            );
        }
        if self.web_max_header.0 < 8192 {
            return Err("limits.web_max_header must be at least 8KiB".into());
        }
        if self.web_body_timeout.0 == 0 {
            return Err("limits.web_body_timeout must be at least 1s".into());
        }
        if self.web_max_body.0 < 16 * 1024 {
            return Err("limits.web_max_body must be at least 16KiB".into());
        }
        if self.argon2_memory.0 < 1024 * 1024 {
            return Err("limits.argon2_memory must be at least 1MiB".into());
        }
        Ok(())
    }

    pub fn smtp_idle(&self) -> Duration {
        self.smtp_idle_timeout.duration()
    }

    pub fn pop3_idle(&self) -> Duration {
        self.pop3_idle_timeout.duration()
    }

    pub fn imap_idle(&self) -> Duration {
        self.imap_idle_timeout.duration()
    }

    pub fn preauth_total(&self) -> Duration {
        self.preauth_timeout.duration()
    }

    pub fn filter_step(&self) -> Duration {
        self.filter_step_timeout.duration()
    }

    pub fn preauth_idle(&self) -> Duration {
        self.preauth_idle_timeout.duration()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_transfer_gets_time_by_what_arrived_up_to_the_largest_message() {
        let start = tokio::time::Instant::now();
        assert_eq!(
            transfer_deadline(start, 0, 1 << 20),
            start + COMMAND_TIMEOUT
        );
        let max = 25 * 1024 * 1024;
        let whole = transfer_deadline(start, max, max) - start;
        assert_eq!(whole, COMMAND_TIMEOUT + Duration::from_secs(6400));
        // Bytes beyond the largest message buy no more time.
        assert_eq!(transfer_deadline(start, 10 * max, max) - start, whole);
    }
}
