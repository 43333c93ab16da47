//! Every redb table of Letterbox, in one place, with the schema version they make up.
//!
//! Values are tuples of fixed-width integers and strings: nothing pointer-width-dependent
//! goes to disk (the same card must work on 32-bit armv7 and 64-bit aarch64 builds).

use redb::{MultimapTableDefinition, TableDefinition};

/// Bump with every change to a table below, and add the upgrade step to `migrate` (store/migrate.rs).
///
/// 1: the first release. 2: `MODSEQS`, `EXPUNGED` and `RECENT` (built from `MESSAGES` and
/// `MAILBOXES` by the upgrade). 3: `MORE_FLAGS`, for keywords past the `u32` of `MESSAGES`
/// (created empty by the upgrade: no message could have one before). 4: `ADMINISTRATORS`
/// (created empty: no account of an older store was one). 5: `GREYLIST` and
/// `GREYLIST_NETWORKS` (created empty: nothing was greylisted before); `SPAM_TOKENS` and
/// `SPAM_LEARNED` (created empty: the content filter starts untrained); bodies cut into
/// leaf-sized pieces (`pieces`), the short last piece in `BLOB_TAILS` (created empty);
/// "first_paged_blob" in `META` says which blobs are cut so (the bodies already stored keep
/// their 64 KiB pieces). 6: `BLOB_ENDS`, a new body's tail and structure in one row (created
/// empty: the bodies already stored keep their `BLOB_TAILS` and `BLOB_META` rows).
pub const SCHEMA_VERSION: u64 = 6;

/// Counters and the schema version: "schema_version", "next_mailbox_id", "next_blob_id",
/// "next_queue_id", "first_paged_blob": the first blob whose body is cut as
/// `pieces::Layout::Paged` (0 in a store created at schema 5 or later); the content
/// filter's "spam_messages" and "ham_messages" (messages learned as each, `spam`).
pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");

/// Account address (lowercase) -> argon2id PHC string.
pub const ACCOUNTS: TableDefinition<&str, &str> = TableDefinition::new("accounts");

/// Accounts (lowercase) that may use the admin page: the setup wizard's first account and
/// those added with `letterbox user add --admin`. Deleted with the account.
pub const ADMINISTRATORS: TableDefinition<&str, ()> = TableDefinition::new("administrators");

/// Alias address (lowercase) -> account addresses it delivers to.
/// account -> the most octets of mail it may hold (`letterbox user quota`); no row, no limit.
pub const QUOTAS: TableDefinition<&str, u64> = TableDefinition::new("quotas");

pub const ALIASES: MultimapTableDefinition<&str, &str> = MultimapTableDefinition::new("aliases");

/// (account, mailbox name) -> (mailbox id, UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ).
pub const MAILBOXES: TableDefinition<(&str, &str), (u64, u32, u32, u64)> =
    TableDefinition::new("mailboxes");

/// (mailbox id, UID).
pub type MessageKey = (u64, u32);
/// (blob id, flags, internal date as Unix seconds, size, MODSEQ).
pub type MessageRow = (u64, u32, i64, u64, u64);
pub const MESSAGES: TableDefinition<MessageKey, MessageRow> = TableDefinition::new("messages");

/// (mailbox id, UID) -> the message's flags from bit 32 on (keywords past the `u32` of its
/// `MESSAGES` row), as `flag_set::Flags` keeps them. Only messages with such a keyword have a
/// row. Written only through `index::Messages`, together with `MESSAGES`.
pub const MORE_FLAGS: TableDefinition<MessageKey, &[u8]> = TableDefinition::new("more_flags");

/// (mailbox id, MODSEQ, UID) -> (): every message of `MESSAGES` once, under its current MODSEQ,
/// so the changes of a mailbox since a MODSEQ (RFC 7162 CHANGEDSINCE, and what a selected
/// session has not seen yet) are a range read. The UID is part of the key because one change
/// (a STORE on many messages, a COPY) gives all the messages it touches the same MODSEQ.
/// Written only through `index::Messages`, together with `MESSAGES`.
pub const MODSEQS: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("modseqs");

/// (mailbox id, MODSEQ, UID) -> (): tombstones. A message that leaves a mailbox (EXPUNGE, the
/// source of a MOVE, POP3 DELE, RENAME of INBOX) leaves its UID here with the MODSEQ of that
/// change, for RFC 7162 QRESYNC (`VANISHED (EARLIER)`). Deleting the whole mailbox (or its
/// account) removes them with it. Written only through `index::Messages`.
pub const EXPUNGED: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("expunged");

/// Mailbox id -> the first UID not yet claimed as `\Recent` (RFC 3501 §2.3.2) by a session.
/// Every mailbox has a row, created with it and removed with it, so the row also says whether
/// a mailbox id still exists.
pub const RECENT: TableDefinition<u64, u32> = TableDefinition::new("recent");

/// Blob id -> (size in bytes, number of messages that reference it).
pub const BLOBS: TableDefinition<u64, (u64, u32)> = TableDefinition::new("blobs");

/// (blob id, piece index) -> a piece of the message, as `pieces` cuts it.
pub const BLOB_CHUNKS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("blob_chunks");

/// Blob id -> for a body stored before schema 6, the last piece of the message when it is
/// shorter than the smallest leaf-sized piece (`pieces`): kept apart from `BLOB_CHUNKS` so that such pieces share leaves with
/// each other instead of each taking a 4 KiB leaf between two large pieces. Read after the
/// blob's last `BLOB_CHUNKS` piece.
pub const BLOB_TAILS: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_tails");

/// Blob id -> the message's structure for IMAP (MIME tree with byte ranges, ENVELOPE, decoded
/// header text for SEARCH), JSON of `mime::Part`: for a body stored before schema 6, or one
/// whose structure was computed again (`Store::keep_structure`). Read before `BLOB_ENDS`.
pub const BLOB_META: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_meta");

/// Blob id -> since schema 6, the message's structure (as in `BLOB_META`) and its tail (as in
/// `BLOB_TAILS`, empty when it has none) in one value (`store::ends`): one leaf written per
/// delivery instead of two.
pub const BLOB_ENDS: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_ends");

/// (account, mailbox name) -> (): the IMAP subscription list (RFC 9051 §6.3.7). A name may be
/// subscribed whether or not the mailbox exists.
pub const SUBSCRIPTIONS: TableDefinition<(&str, &str), ()> = TableDefinition::new("subscriptions");

/// IMAP keywords of an account: (account, keyword lowercased) -> (flag bit, spelling as first
/// used). A keyword is bit `flags::FIRST_KEYWORD` (5) to 254 of a message's flags.
pub const KEYWORDS: TableDefinition<(&str, &str), (u8, &str)> = TableDefinition::new("keywords");

/// Outbound queue: id -> (envelope sender, blob id, time queued as Unix seconds, DKIM-Signature
/// header sent in front of the body, flags as in `queue::queue_flags`).
/// (Named "outbound_queue": an earlier, never released layout used "queue".)
pub const QUEUE: TableDefinition<u64, (&str, u64, i64, &str, u32)> =
    TableDefinition::new("outbound_queue");

/// (queue id, recipient) -> (attempts, next attempt as Unix seconds, last error text).
pub const QUEUE_RECIPIENTS: TableDefinition<(u64, &str), (u32, i64, &str)> =
    TableDefinition::new("outbound_recipients");

/// Greylisting (RFC 6647): (client network, envelope sender, recipient), lowercase -> when
/// that triplet was first refused (Unix seconds). Bounded (`greylist`).
pub const GREYLIST: TableDefinition<(&str, &str, &str), i64> = TableDefinition::new("greylist");

/// Greylisting: client network that retried and passed -> its last mail (Unix seconds).
pub const GREYLIST_NETWORKS: TableDefinition<&str, i64> = TableDefinition::new("greylist_networks");

/// The content filter's token counts: 64-bit FNV-1a hash of a token -> (messages learned as
/// spam that held it, messages learned as ham that held it). Hashes, not the tokens: 20 octets
/// a row whatever the token, and what a message said is not kept. At most
/// `limits::SPAM_TOKENS_MAX` rows (the least-used are pruned, `spam`).
pub const SPAM_TOKENS: TableDefinition<u64, (u32, u32)> = TableDefinition::new("spam_tokens");

/// Messages the content filter has learned, so each is learned once and a changed mind
/// undoes the first lesson: (source, id) -> true for spam, false for ham. Source 0: a stored
/// body (id: its blob id; a MOVE keeps the blob); source 1: a file given to `spam train`
/// (id: the FNV-1a hash of the octets read). At most `limits::SPAM_LEARNED_MAX` rows, the
/// lowest keys dropped first (the oldest blobs).
pub const SPAM_LEARNED: TableDefinition<(u8, u64), bool> = TableDefinition::new("spam_learned");

/// Message flags, stored as bits in `MESSAGES`.
pub mod flags {
    pub const SEEN: u32 = 1;
    pub const ANSWERED: u32 = 1 << 1;
    pub const FLAGGED: u32 = 1 << 2;
    pub const DELETED: u32 = 1 << 3;
    pub const DRAFT: u32 = 1 << 4;
    /// The system flags above; the bits from `FIRST_KEYWORD` on are the account's keywords.
    pub const SYSTEM: u32 = SEEN | ANSWERED | FLAGGED | DELETED | DRAFT;
    pub const FIRST_KEYWORD: u8 = 5;
    /// Bits 0 to 31 are the `u32` of `MESSAGES`; the rest are in `MORE_FLAGS`.
    pub const WORD_BITS: u8 = 32;
}
