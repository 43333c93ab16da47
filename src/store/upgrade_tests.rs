//! Upgrading a store written by an older schema: the tables are built here with raw redb, as
//! those schemas had them (frozen below, so later schema changes cannot make this test write a
//! newer layout), then opened by this build.

use redb::{
    Database, MultimapTableDefinition, ReadableDatabase, ReadableTable, ReadableTableMetadata,
    TableDefinition,
};
use tokio::sync::watch;

use super::index_tests::assert_index_exact;
use super::schema::{EXPUNGED, MODSEQS, RECENT, flags};
use super::*;

/// Schema 1, as released.
mod v1 {
    use super::*;

    pub const META: TableDefinition<&str, u64> = TableDefinition::new("meta");
    pub const ACCOUNTS: TableDefinition<&str, &str> = TableDefinition::new("accounts");
    pub const ALIASES: MultimapTableDefinition<&str, &str> =
        MultimapTableDefinition::new("aliases");
    pub const MAILBOXES: TableDefinition<(&str, &str), (u64, u32, u32, u64)> =
        TableDefinition::new("mailboxes");
    /// (blob id, flags, internal date, size, MODSEQ).
    pub type MessageRow = (u64, u32, i64, u64, u64);
    pub const MESSAGES: TableDefinition<(u64, u32), MessageRow> = TableDefinition::new("messages");
    pub const BLOBS: TableDefinition<u64, (u64, u32)> = TableDefinition::new("blobs");
    pub const BLOB_CHUNKS: TableDefinition<(u64, u32), &[u8]> = TableDefinition::new("blob_chunks");
    pub const BLOB_META: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_meta");
    pub const SUBSCRIPTIONS: TableDefinition<(&str, &str), ()> =
        TableDefinition::new("subscriptions");
    pub const KEYWORDS: TableDefinition<(&str, &str), (u8, &str)> =
        TableDefinition::new("keywords");
    pub const QUEUE: TableDefinition<u64, (&str, u64, i64, &str, u32)> =
        TableDefinition::new("outbound_queue");
    pub const QUEUE_RECIPIENTS: TableDefinition<(u64, &str), (u32, i64, &str)> =
        TableDefinition::new("outbound_recipients");
}

/// What schema 2 added to schema 1, as released.
mod v2 {
    use super::*;

    pub const MODSEQS: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("modseqs");
    pub const EXPUNGED: TableDefinition<(u64, u64, u32), ()> = TableDefinition::new("expunged");
    pub const RECENT: TableDefinition<u64, u32> = TableDefinition::new("recent");
}

const ALICE: &str = "alice@home.test";
const FIRST: &[u8] = b"Subject: first\r\n\r\nshared by INBOX and Sent\r\n";
const SECOND: &[u8] = b"Subject: second\r\n\r\nonly in INBOX\r\n";

/// A schema-1 store: INBOX (id 1) holds UIDs 1 and 3 (2 was expunged), HIGHESTMODSEQ 5;
/// Sent (id 2) holds UID 1, which shares its body with INBOX's UID 1.
fn write_v1_store(dir: &Path) {
    let db = Database::create(dir.join("letterbox.redb")).expect("create");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn.open_table(v1::META).expect("meta");
        meta.insert("schema_version", 1).expect("version");
        meta.insert("next_mailbox_id", 3).expect("mailbox id");
        meta.insert("next_blob_id", 3).expect("blob id");
        meta.insert("last_uidvalidity", 101).expect("uidvalidity");
        txn.open_table(v1::ACCOUNTS)
            .expect("accounts")
            .insert(ALICE, "hash")
            .expect("alice");
        txn.open_multimap_table(v1::ALIASES).expect("aliases");
        let mut mailboxes = txn.open_table(v1::MAILBOXES).expect("mailboxes");
        mailboxes
            .insert((ALICE, INBOX), (1, 100, 4, 5))
            .expect("inbox");
        mailboxes
            .insert((ALICE, "Sent"), (2, 101, 2, 1))
            .expect("sent");
        let mut messages = txn.open_table(v1::MESSAGES).expect("messages");
        let (first, second) = (FIRST.len() as u64, SECOND.len() as u64);
        messages
            .insert((1, 1), (1, flags::SEEN, 10, first, 2))
            .expect("1/1");
        messages.insert((1, 3), (2, 0, 20, second, 5)).expect("1/3");
        messages.insert((2, 1), (1, 0, 30, first, 1)).expect("2/1");
        let mut blobs = txn.open_table(v1::BLOBS).expect("blobs");
        blobs.insert(1, (first, 2)).expect("blob 1");
        blobs.insert(2, (second, 1)).expect("blob 2");
        let mut chunks = txn.open_table(v1::BLOB_CHUNKS).expect("chunks");
        chunks.insert((1, 0), FIRST).expect("chunk 1");
        chunks.insert((2, 0), SECOND).expect("chunk 2");
        txn.open_table(v1::BLOB_META).expect("blob meta");
        let mut subscriptions = txn.open_table(v1::SUBSCRIPTIONS).expect("subscriptions");
        subscriptions.insert((ALICE, INBOX), ()).expect("subscribe");
        txn.open_table(v1::KEYWORDS).expect("keywords");
        txn.open_table(v1::QUEUE).expect("queue");
        txn.open_table(v1::QUEUE_RECIPIENTS).expect("recipients");
    }
    txn.commit().expect("commit");
}

fn open(dir: &Path) -> Store {
    Store::open(dir, &Limits::default(), watch::channel(Status::default()).0).expect("open")
}

fn schema_version(store: &Store) -> Option<u64> {
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    let meta = txn.open_table(META).expect("meta");
    meta.get("schema_version").expect("get").map(|v| v.value())
}

async fn body(store: &Store, blob: u64) -> Vec<u8> {
    let mut reader = store.body(blob);
    let mut all = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.expect("chunk") {
        all.extend_from_slice(&chunk);
    }
    all
}

async fn deliver(store: &Store, text: &[u8]) {
    let mut spool = store.spool().await.expect("spool");
    spool.write(text).await.expect("write");
    let message = spool.finish().await.expect("finish");
    store
        .deliver(message, vec![ALICE.into()], 0)
        .await
        .expect("deliver");
}

#[tokio::test]
async fn a_schema_1_store_is_upgraded_with_its_mail_intact() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v1_store(dir.path());
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 6);
    assert_index_exact(&store);
    {
        let db = store.inner.db.get().expect("db");
        let txn = db.begin_read().expect("read");
        let modseqs: Vec<(u64, u64, u32)> = txn
            .open_table(MODSEQS)
            .expect("modseqs")
            .iter()
            .expect("iter")
            .map(|e| e.expect("entry").0.value())
            .collect();
        assert_eq!(modseqs, [(1, 2, 1), (1, 5, 3), (2, 1, 1)]);
        let expunged = txn.open_table(EXPUNGED).expect("expunged");
        assert_eq!(expunged.len().expect("len"), 0);
        let recent = txn.open_table(RECENT).expect("recent");
        let marks: Vec<(u64, u32)> = recent
            .iter()
            .expect("iter")
            .map(|e| {
                let (id, mark) = e.expect("entry");
                (id.value(), mark.value())
            })
            .collect();
        assert_eq!(marks, [(1, 4), (2, 2)], "mail from before is not \\Recent");
    }

    // The mail is all there, bodies and all.
    assert_eq!(
        store.password_hash(ALICE).await.expect("hash").as_deref(),
        Some("hash")
    );
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    assert_eq!(
        (inbox.uidvalidity, inbox.uidnext, inbox.highest_modseq),
        (100, 4, 5)
    );
    let rows: Vec<(u32, u32, i64, u64)> = inbox
        .messages
        .iter()
        .map(|m| (m.uid, m.flags.bits, m.internal_date, m.modseq))
        .collect();
    assert_eq!(rows, [(1, flags::SEEN, 10, 2), (3, 0, 20, 5)]);
    assert_eq!(body(&store, inbox.messages[0].blob).await, FIRST);
    assert_eq!(body(&store, inbox.messages[1].blob).await, SECOND);
    let sent = store.mailbox(ALICE, "Sent").await.expect("sent");
    assert_eq!(sent.messages[0].blob, inbox.messages[0].blob);
    assert_eq!(store.totals().expect("totals").messages, 3);

    // The index answers for the upgraded mailbox, and changes from now on go into it.
    let changes = store
        .changes_since(ALICE, INBOX, 1, 2)
        .await
        .expect("changes");
    assert_eq!(changes.changed.len(), 1);
    assert_eq!(changes.changed[0].uid, 3);
    assert!(
        changes.expunged.is_empty(),
        "nothing of schema 1's expunges"
    );
    store
        .store_flags(ALICE, INBOX, vec![1], FlagOp::Add, flags::FLAGGED, None)
        .await
        .expect("store");
    store.expunge(ALICE, INBOX, vec![3]).await.expect("expunge");
    deliver(&store, b"Subject: third\r\n\r\nafter the upgrade\r\n").await;
    assert_eq!(store.claim_recent(1, 5).await.expect("claim"), 4);
    let changes = store
        .changes_since(ALICE, INBOX, 1, 5)
        .await
        .expect("changes");
    let changed: Vec<(u32, u64)> = changes.changed.iter().map(|c| (c.uid, c.modseq)).collect();
    assert_eq!(changed, [(1, 6), (4, 8)]);
    assert_eq!(changes.expunged, [3]);
    assert_index_exact(&store);
    // Sent still reads the shared body; the body only INBOX held went with it.
    assert_eq!(body(&store, sent.messages[0].blob).await, FIRST);
    assert!(body(&store, inbox.messages[1].blob).await.is_empty());
}

#[tokio::test]
async fn an_upgraded_store_reopens_and_keeps_working() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v1_store(dir.path());
    {
        let store = open(dir.path());
        store.expunge(ALICE, INBOX, vec![1]).await.expect("expunge");
        store.claim_recent(1, 4).await.expect("claim");
    }
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    assert_eq!(
        store.vanished_since(1, 5, None).await.expect("vanished"),
        [1],
        "tombstones survive reopening"
    );
    assert_eq!(store.recent_mark(1).await.expect("mark"), 4);
    deliver(&store, b"Subject: after\r\n\r\nreopened\r\n").await;
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    let uids: Vec<u32> = inbox.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, [3, 4]);
    assert_eq!(inbox.highest_modseq, 7);
    assert_eq!(
        store.claim_recent(1, inbox.uidnext).await.expect("claim"),
        4
    );
    store.create_mailbox(ALICE, "New").await.expect("create");
    store
        .copy_messages(ALICE, INBOX, vec![3, 4], "New", true)
        .await
        .expect("move");
    assert_eq!(
        store.vanished_since(1, 7, None).await.expect("vanished"),
        [3, 4]
    );
    assert_index_exact(&store);
    drop(store);
    let store = open(dir.path());
    assert_index_exact(&store);
    assert_eq!(
        store
            .mailbox(ALICE, "New")
            .await
            .expect("new")
            .messages
            .len(),
        2
    );
}

#[test]
fn a_store_with_a_version_older_than_1_is_refused() {
    let error = super::tests::refusal_of_schema_version(0);
    assert!(matches!(error, StoreError::SchemaMissing), "{error}");
}

/// The schema-1 store as schema 2 left it, with its index and marks, and an account whose 27
/// keywords fill the `u32` of flags (bits 5 to 31); INBOX's UID 1 has the last of them.
fn write_v2_store(dir: &Path) {
    write_v1_store(dir);
    let db = Database::open(dir.join("letterbox.redb")).expect("open");
    let txn = db.begin_write().expect("write");
    {
        txn.open_table(v1::META)
            .expect("meta")
            .insert("schema_version", 2)
            .expect("version");
        let mut modseqs = txn.open_table(v2::MODSEQS).expect("modseqs");
        for key in [(1, 2, 1), (1, 5, 3), (2, 1, 1)] {
            modseqs.insert(key, ()).expect("modseq");
        }
        txn.open_table(v2::EXPUNGED).expect("expunged");
        let mut recent = txn.open_table(v2::RECENT).expect("recent");
        recent.insert(1, 4).expect("inbox mark");
        recent.insert(2, 2).expect("sent mark");
        let mut keywords = txn.open_table(v1::KEYWORDS).expect("keywords");
        for bit in flags::FIRST_KEYWORD..32 {
            let name = format!("k{bit}");
            keywords
                .insert((ALICE, name.as_str()), (bit, name.as_str()))
                .expect("keyword");
        }
        let first = FIRST.len() as u64;
        txn.open_table(v1::MESSAGES)
            .expect("messages")
            .insert((1, 1), (1, flags::SEEN | 1 << 31, 10, first, 2))
            .expect("1/1");
    }
    txn.commit().expect("commit");
}

#[tokio::test]
async fn a_schema_2_store_is_upgraded_and_takes_keywords_past_bit_31() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v2_store(dir.path());
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    let keywords = store.keywords(ALICE).await.expect("keywords");
    assert_eq!((keywords.len(), keywords.bit("K31")), (27, Some(31)));
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    assert_eq!(inbox.messages[0].flags, Flags::from(flags::SEEN | 1 << 31));
    assert_eq!(
        keywords.names(&inbox.messages[0].flags).collect::<Vec<_>>(),
        ["k31"]
    );

    // The 28th keyword takes bit 32, which schema 2 had no room for.
    let keywords = store
        .define_keywords(ALICE, vec!["$Forwarded".into()])
        .await
        .expect("define");
    assert_eq!(keywords.bit("$forwarded"), Some(32));
    let mut forwarded = Flags::default();
    forwarded.insert(32);
    store
        .store_flags(ALICE, INBOX, vec![1], FlagOp::Add, forwarded.clone(), None)
        .await
        .expect("store");
    drop(store);
    let store = open(dir.path());
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    let expected = Flags::from(flags::SEEN | 1 << 31).union(&forwarded);
    assert_eq!(inbox.messages[0].flags, expected, "kept across reopening");
    assert_eq!(
        keywords.names(&inbox.messages[0].flags).collect::<Vec<_>>(),
        ["k31", "$Forwarded"]
    );
    assert_eq!(inbox.messages[1].flags, Flags::default());
    assert_index_exact(&store);
}

/// Schema 3 is schema 2 with `MORE_FLAGS` (empty here) and its version number.
fn write_v3_store(dir: &Path) {
    write_v2_store(dir);
    let db = Database::open(dir.join("letterbox.redb")).expect("open");
    let txn = db.begin_write().expect("write");
    txn.open_table(v1::META)
        .expect("meta")
        .insert("schema_version", 3)
        .expect("version");
    txn.commit().expect("commit");
}

#[tokio::test]
async fn a_schema_3_store_is_upgraded_with_no_administrator_and_takes_one() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v3_store(dir.path());
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    let accounts = store.accounts().await.expect("accounts");
    assert!(!accounts.is_empty());
    assert!(accounts.iter().all(|a| !a.administrator), "{accounts:?}");
    store
        .set_administrator(ALICE, true)
        .await
        .expect("administrator");
    drop(store);
    let store = open(dir.path());
    assert!(store.is_administrator(ALICE).await.expect("read"));
    store.delete_account(ALICE).await.expect("delete");
    assert!(!store.is_administrator(ALICE).await.expect("read"));
}

/// Schema 4 is schema 3 with `ADMINISTRATORS` (empty here) and its version number; its
/// bodies are cut in 64 KiB pieces. Blob 3 is a 150,000-octet body in INBOX as UID 4.
fn write_v4_store(dir: &Path, large: &[u8]) {
    write_v3_store(dir);
    let db = Database::open(dir.join("letterbox.redb")).expect("open");
    let txn = db.begin_write().expect("write");
    {
        let mut meta = txn.open_table(v1::META).expect("meta");
        meta.insert("schema_version", 4).expect("version");
        meta.insert("next_blob_id", 4).expect("blob id");
        let mut chunks = txn.open_table(v1::BLOB_CHUNKS).expect("chunks");
        for (index, piece) in (0u32..).zip(large.chunks(64 * 1024)) {
            chunks.insert((3, index), piece).expect("chunk");
        }
        let size = large.len() as u64;
        let mut blobs = txn.open_table(v1::BLOBS).expect("blobs");
        blobs.insert(3, (size, 1)).expect("blob 3");
        let mut messages = txn.open_table(v1::MESSAGES).expect("messages");
        messages.insert((1, 4), (3, 0, 40, size, 6)).expect("1/4");
        txn.open_table(v2::MODSEQS)
            .expect("modseqs")
            .insert((1, 6, 4), ())
            .expect("modseq");
        txn.open_table(v1::MAILBOXES)
            .expect("mailboxes")
            .insert((ALICE, INBOX), (1, 100, 5, 6))
            .expect("inbox");
    }
    txn.commit().expect("commit");
}

/// Files blob 4, of `size` octets, as INBOX's UID 5 at MODSEQ 7 (UIDNEXT 6), as schemas 2 to 6
/// stored a message; the body's own rows are the caller's.
fn file_blob_4_as_uid_5(txn: &redb::WriteTransaction, size: u64) {
    txn.open_table(v1::BLOBS)
        .expect("blobs")
        .insert(4, (size, 1))
        .expect("blob 4");
    txn.open_table(v1::MESSAGES)
        .expect("messages")
        .insert((1, 5), (4, 0, 50, size, 7))
        .expect("1/5");
    txn.open_table(v2::MODSEQS)
        .expect("modseqs")
        .insert((1, 7, 5), ())
        .expect("modseq");
    txn.open_table(v1::MAILBOXES)
        .expect("mailboxes")
        .insert((ALICE, INBOX), (1, 100, 6, 7))
        .expect("inbox");
}

#[tokio::test]
async fn a_schema_4_store_is_upgraded_and_greylists() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v4_store(dir.path(), b"Subject: large\r\n\r\nbody\r\n");
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    let policy = GreylistPolicy {
        delay: 60,
        retry_window: 86400,
        network_ttl: 86400,
        max_entries: 100,
    };
    let attempt = |now| {
        store.greylist(
            "192.0.2".into(),
            "bob@example.org".into(),
            ALICE.into(),
            now,
            policy,
        )
    };
    assert_eq!(attempt(1000).await.expect("first"), Greylisted::Wait(60));
    assert_eq!(attempt(1060).await.expect("retry"), Greylisted::Pass);
    deliver(&store, SECOND).await;
}

#[tokio::test]
async fn a_schema_4_store_keeps_its_64_kib_pieces_and_cuts_new_bodies_to_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let large: Vec<u8> = (0..150_000u32).map(|i| (i % 251) as u8).collect();
    write_v4_store(dir.path(), &large);
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    let held = (FIRST.len() + SECOND.len() + large.len()) as u64;
    assert_eq!(
        store.totals().expect("totals").mail_bytes,
        held,
        "counted at the upgrade"
    );
    deliver(&store, &large).await;
    let totals = store.totals().expect("totals");
    assert_eq!(totals.mail_bytes, held + large.len() as u64);
    assert!(totals.store_bytes > 0);
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    let old = inbox
        .messages
        .iter()
        .find(|m| m.uid == 4)
        .expect("old")
        .blob;
    let new = inbox.messages.last().expect("new").blob;
    assert!(new > old);
    let view = store.read_view().await.expect("view");
    for blob in [old, new] {
        assert_eq!(body(&store, blob).await, large, "blob {blob}");
        // A read from an offset starts at the piece that holds it, in either layout.
        for offset in [0u64, 65_515, 65_536, 100_000, 149_999] {
            let (start, piece) = view
                .body_range(blob, offset, u64::MAX)
                .next_piece()
                .await
                .expect("read")
                .expect("piece");
            assert!(start <= offset && offset < start + piece.len() as u64);
            assert_eq!(piece, large[start as usize..start as usize + piece.len()]);
        }
        assert!(
            view.body_range(blob, 150_000, u64::MAX)
                .next_piece()
                .await
                .expect("read")
                .is_none()
        );
    }
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    let chunks = txn.open_table(v1::BLOB_CHUNKS).expect("chunks");
    let count = |blob: u64| {
        chunks
            .range((blob, 0)..=(blob, u32::MAX))
            .expect("range")
            .count()
    };
    assert_eq!(count(old), 3, "64 KiB pieces");
    let pieces = super::pieces::paged(150_000).filter(|&p| !super::pieces::is_tail(p));
    assert_eq!(
        count(new),
        pieces.count(),
        "leaf-sized pieces, the tail apart"
    );
}

#[tokio::test]
async fn a_schema_4_store_is_upgraded_with_an_untrained_spam_filter_that_learns() {
    let dir = tempfile::tempdir().expect("tempdir");
    write_v4_store(dir.path(), b"Subject: large\r\n\r\nbody\r\n");
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_index_exact(&store);
    let counts = store.spam_counts(vec![7]).await.expect("counts");
    assert_eq!((counts.spam_messages, counts.ham_messages), (0, 0));
    assert_eq!(counts.tokens, [(0, 0)]);
    let lesson = Lesson {
        source: LessonSource::Stored(1),
        spam: true,
        tokens: vec![7, 8],
    };
    store.spam_learn(vec![lesson]).await.expect("learn");
    drop(store);
    let store = open(dir.path());
    let counts = store.spam_counts(vec![7, 9]).await.expect("counts");
    assert_eq!((counts.spam_messages, counts.ham_messages), (1, 0));
    assert_eq!(counts.tokens, [(1, 0), (0, 0)]);
    assert_eq!(
        store
            .mailbox(ALICE, INBOX)
            .await
            .expect("inbox")
            .messages
            .len(),
        3,
        "the mail is intact"
    );
}

mod from_5;
