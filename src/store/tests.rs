use redb::{ReadableDatabase, ReadableTableMetadata};
use tokio::sync::watch;

use super::schema::*;
use super::*;
use crate::limits::BODY_CHUNK;

fn open(dir: &Path) -> Store {
    Store::open(dir, &Limits::default(), watch::channel(Status::default()).0).expect("open")
}

async fn spooled(store: &Store, body: &[u8]) -> SpoolFile {
    let mut spool = store.spool().await.expect("spool");
    for piece in body.chunks(1000) {
        spool.write(piece).await.expect("write");
    }
    spool.finish().await.expect("finish")
}

async fn read_all(store: &Store, blob: u64) -> Vec<u8> {
    let mut reader = store.body(blob);
    let mut all = Vec::new();
    while let Some(chunk) = reader.next_chunk().await.expect("chunk") {
        assert!(chunk.len() <= super::pieces::PIECE_MAX);
        all.extend_from_slice(&chunk);
    }
    all
}

#[tokio::test]
async fn a_message_for_two_accounts_is_stored_once_and_freed_with_its_last_reference() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    store
        .create_account("Bob@Home.Test", "x")
        .await
        .expect("bob");
    let body: Vec<u8> = (0..200_000u32)
        .map(|i| b"abcdefghij\r\n"[(i % 12) as usize])
        .collect();
    let message = spooled(&store, &body).await;
    store
        .deliver(
            message,
            vec!["alice@home.test".into(), "bob@home.test".into()],
            7,
        )
        .await
        .expect("deliver");

    let alice = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("alice inbox");
    let bob = store
        .mailbox("bob@home.test", INBOX)
        .await
        .expect("bob inbox");
    assert_eq!(alice.messages.len(), 1);
    assert_eq!(alice.messages[0].blob, bob.messages[0].blob, "one body");
    assert_eq!(alice.messages[0].size, body.len() as u64);
    assert_eq!(alice.messages[0].internal_date, 7);
    assert_eq!(read_all(&store, alice.messages[0].blob).await, body);
    assert_eq!(
        store.totals().expect("totals").mail_bytes,
        body.len() as u64,
        "stored once"
    );
    {
        let txn = store
            .inner
            .db
            .get()
            .expect("db")
            .begin_read()
            .expect("read");
        assert_eq!(txn.open_table(BLOBS).expect("blobs").len().expect("len"), 1);
        let chunks = txn.open_table(BLOB_CHUNKS).expect("chunks");
        let whole = super::pieces::paged(body.len() as u64).filter(|&p| !super::pieces::is_tail(p));
        assert_eq!(chunks.len().expect("len"), whole.count() as u64);
        let ends = txn.open_table(BLOB_ENDS).expect("ends");
        assert_eq!(
            ends.len().expect("len"),
            1,
            "the tail and structure in one row"
        );
    }

    store
        .expunge("alice@home.test", INBOX, vec![alice.messages[0].uid])
        .await
        .expect("expunge alice");
    assert_eq!(
        read_all(&store, bob.messages[0].blob).await,
        body,
        "bob keeps it"
    );
    store
        .delete_account("bob@home.test")
        .await
        .expect("delete bob");
    let txn = store
        .inner
        .db
        .get()
        .expect("db")
        .begin_read()
        .expect("read");
    assert_eq!(txn.open_table(BLOBS).expect("blobs").len().expect("len"), 0);
    assert_eq!(
        txn.open_table(BLOB_CHUNKS)
            .expect("chunks")
            .len()
            .expect("len"),
        0
    );
    assert_eq!(
        txn.open_table(BLOB_ENDS).expect("ends").len().expect("len"),
        0
    );
    assert_eq!(store.totals().expect("totals").mail_bytes, 0);
}

#[tokio::test]
async fn uids_grow_and_survive_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let uidvalidity;
    {
        let store = open(dir.path());
        store
            .create_account("alice@home.test", "x")
            .await
            .expect("alice");
        for text in [&b"one\r\n"[..], b"two\r\n", b"three\r\n"] {
            let message = spooled(&store, text).await;
            store
                .deliver(message, vec!["alice@home.test".into()], 0)
                .await
                .expect("deliver");
        }
        let inbox = store
            .mailbox("alice@home.test", INBOX)
            .await
            .expect("inbox");
        uidvalidity = inbox.uidvalidity;
        store
            .expunge("alice@home.test", INBOX, vec![3])
            .await
            .expect("expunge");
    }
    let store = open(dir.path());
    let message = spooled(&store, b"four\r\n").await;
    store
        .deliver(message, vec!["alice@home.test".into()], 0)
        .await
        .expect("deliver");
    let inbox = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox");
    let uids: Vec<u32> = inbox.messages.iter().map(|m| m.uid).collect();
    assert_eq!(uids, vec![1, 2, 4], "a UID is never reused");
    assert_eq!(inbox.uidvalidity, uidvalidity);
    assert_eq!(store.totals().expect("totals").messages, 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_deliveries_all_land() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    let mut tasks = Vec::new();
    for i in 0..50 {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let message = spooled(&store, format!("message {i}\r\n").as_bytes()).await;
            store
                .deliver(message, vec!["alice@home.test".into()], 0)
                .await
        }));
    }
    for task in tasks {
        task.await.expect("join").expect("deliver");
    }
    let inbox = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox");
    assert_eq!(inbox.messages.len(), 50);
    assert_eq!(inbox.uidnext, 51);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deliveries_that_wait_together_share_one_commit() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    // Another writer holds the database, as a slow commit would: deliveries queue up.
    let db = store.inner.db.get().expect("db");
    let blocker = db.begin_write().expect("write");
    let mut tasks = Vec::new();
    for i in 0..10 {
        let store = store.clone();
        let message = spooled(&store, format!("message {i}\r\n").as_bytes()).await;
        tasks.push(tokio::spawn(async move {
            store
                .deliver(message, vec!["alice@home.test".into()], 0)
                .await
        }));
    }
    // Give the ten senders time to reach the writer's queue.
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    drop(blocker);
    drop(db);
    for task in tasks {
        task.await.expect("join").expect("deliver");
    }
    let commits = store.delivery_commits();
    assert!(commits <= 2, "10 deliveries took {commits} commits");
    let inbox = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox");
    assert_eq!(inbox.messages.len(), 10);
}

/// A store whose commits wait up to ten minutes for messages still arriving (far longer than
/// any test: a commit that ends early did not wait), with alice's account.
async fn open_waiting_long(dir: &Path) -> Store {
    let limits = Limits {
        group_commit_wait_ms: 600_000,
        ..Limits::default()
    };
    let store = Store::open(dir, &limits, watch::channel(Status::default()).0).expect("open");
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    store
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_commit_waits_for_a_message_still_arriving_and_shares_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_waiting_long(dir.path()).await;
    let first = spooled(&store, b"Subject: first\r\n\r\nfirst\r\n").await;
    // The second message is being received: its spool file is open.
    let mut arriving = store.spool().await.expect("spool");
    arriving.write(b"Subject: second\r\n").await.expect("write");
    let commits_before = store.delivery_commits();
    let delivering = {
        let store = store.clone();
        tokio::spawn(async move {
            store
                .deliver(first, vec!["alice@home.test".into()], 0)
                .await
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    assert!(
        !delivering.is_finished(),
        "the first delivery was committed while the second was arriving"
    );
    arriving.write(b"\r\nsecond\r\n").await.expect("write");
    let second = arriving.finish().await.expect("finish");
    store
        .deliver(second, vec!["alice@home.test".into()], 0)
        .await
        .expect("second");
    delivering.await.expect("join").expect("first");
    assert_eq!(store.delivery_commits() - commits_before, 1);
    let inbox = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox");
    assert_eq!(inbox.messages.len(), 2);
}

#[tokio::test]
async fn a_lone_delivery_does_not_wait() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open_waiting_long(dir.path()).await;
    for i in 0..3 {
        let message = spooled(&store, format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes()).await;
        let delivered = tokio::time::timeout(
            std::time::Duration::from_secs(60),
            store.deliver(message, vec!["alice@home.test".into()], 0),
        )
        .await
        .expect("a lone delivery waited for the whole window");
        delivered.expect("deliver");
    }
}

#[tokio::test]
async fn aliases_resolve_and_follow_account_deletion() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    store
        .create_account("bob@home.test", "x")
        .await
        .expect("bob");
    store
        .set_alias(
            "family@home.test",
            &["alice@home.test".into(), "bob@home.test".into()],
        )
        .await
        .expect("alias");
    assert!(matches!(
        store
            .set_alias("alice@home.test", &["bob@home.test".into()])
            .await,
        Err(StoreError::Exists(_))
    ));
    assert!(matches!(
        store
            .set_alias("x@home.test", &["nobody@home.test".into()])
            .await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.create_account("family@home.test", "x").await,
        Err(StoreError::Exists(_))
    ));
    assert_eq!(
        store.recipient("FAMILY@home.test").await.expect("lookup"),
        Some(Recipient::Alias(vec![
            "alice@home.test".into(),
            "bob@home.test".into()
        ]))
    );
    store.delete_account("bob@home.test").await.expect("delete");
    assert_eq!(
        store.recipient("family@home.test").await.expect("lookup"),
        Some(Recipient::Alias(vec!["alice@home.test".into()]))
    );
    assert_eq!(
        store.recipient("bob@home.test").await.expect("lookup"),
        None
    );
}

/// Opens a store whose only content is `schema_version` = `version`; it must be refused.
pub(super) fn refusal_of_schema_version(version: u64) -> StoreError {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        let db = Database::create(dir.path().join("letterbox.redb")).expect("create");
        let txn = db.begin_write().expect("write");
        txn.open_table(META)
            .expect("meta")
            .insert("schema_version", version)
            .expect("insert");
        txn.commit().expect("commit");
    }
    Store::open(
        dir.path(),
        &Limits::default(),
        watch::channel(Status::default()).0,
    )
    .err()
    .expect("refused")
}

#[test]
fn a_store_from_a_newer_letterbox_is_refused_clearly() {
    let error = refusal_of_schema_version(SCHEMA_VERSION + 1);
    assert!(matches!(error, StoreError::SchemaTooNew { .. }));
    assert!(error.to_string().contains("newer Letterbox"), "{error}");
}

#[test]
fn a_second_process_cannot_open_the_store() {
    let dir = tempfile::tempdir().expect("tempdir");
    let _first = open(dir.path());
    let second = Store::open(
        dir.path(),
        &Limits::default(),
        watch::channel(Status::default()).0,
    );
    assert!(second.is_err());
}

#[tokio::test]
async fn batch_reads_answer_a_prefix_within_the_budget() {
    use crate::limits::FETCH_PREFETCH_MAX;
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    let small = b"Subject: hi\r\n\r\nhello\r\n".to_vec();
    let large: Vec<u8> = (0..FETCH_PREFETCH_MAX + 3 * BODY_CHUNK / 2)
        .map(|i| b"Subject: big\r\n\r\n0123456789\r\n"[i % 28])
        .collect();
    for body in [&small, &large, &small] {
        let message = spooled(&store, body).await;
        store
            .deliver(message, vec!["alice@home.test".into()], 7)
            .await
            .expect("deliver");
    }
    let rows = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox")
        .messages;
    let blobs: Vec<u64> = rows.iter().map(|r| r.blob).collect();
    let view = store.read_view().await.expect("view");

    let parts = view
        .structures(blobs.clone(), Detail::Whole)
        .await
        .expect("structures");
    assert_eq!(parts.len(), 3, "structures are small: all fit");
    assert!(
        parts
            .iter()
            .all(|p| p.as_ref().is_some_and(|p| p.body_start > 0))
    );

    // Whole bodies: the small one, then the large one alone does not fit and stops the read.
    let whole = |from: usize| rows[from..].iter().map(|r| (r.blob, r.size)).collect();
    let heads = view.body_heads(whole(0)).await.expect("heads");
    assert_eq!(heads, vec![Some(small.clone())]);
    // Asked first, the large one is answered (None: past the budget), and nothing after it.
    assert_eq!(view.body_heads(whole(1)).await.expect("heads"), vec![None]);
    // Prefixes across chunk boundaries, and a body shorter than asked.
    let cut = BODY_CHUNK as u64 + 5;
    let heads = view
        .body_heads(vec![(blobs[1], cut), (blobs[2], small.len() as u64 + 1)])
        .await
        .expect("heads");
    assert_eq!(heads, vec![Some(large[..cut as usize].to_vec()), None]);
}

#[tokio::test]
async fn rows_by_uid_in_a_range_or_one_by_one_answer_the_same() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    for _ in 0..6 {
        let message = spooled(&store, b"Subject: x\r\n\r\nhi\r\n").await;
        store
            .deliver(message, vec!["alice@home.test".into()], 7)
            .await
            .expect("deliver");
    }
    store
        .expunge("alice@home.test", INBOX, vec![3])
        .await
        .expect("expunge");
    let id = store
        .mailbox_state("alice@home.test", INBOX)
        .await
        .expect("inbox")
        .id;
    let uids = |asked: Vec<u32>| {
        let store = store.clone();
        async move {
            let rows = store.messages_by_uid(id, asked).await.expect("rows");
            rows.iter().map(|r| r.uid).collect::<Vec<_>>()
        }
    };
    // A dense ascending set is read as a range; an expunged or unknown UID is left out.
    assert_eq!(uids(vec![1, 2, 3, 4, 5, 6, 7]).await, vec![1, 2, 4, 5, 6]);
    assert_eq!(uids(vec![2, 3, 4]).await, vec![2, 4]);
    // Sparse, or not ascending: one lookup each, in the order asked.
    assert_eq!(uids(vec![1, 6, 1000]).await, vec![1, 6]);
    assert_eq!(uids(vec![5, 1, 3]).await, vec![5, 1]);
}

/// Bodies cut by `pieces` fill redb's leaves: the pages redb allocates for many bodies come to
/// little more than the bodies. (With 64 KiB pieces it was twice: each took a 128 KiB leaf.)
#[tokio::test]
async fn pieces_fill_redb_leaves() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    let allocated = |store: &Store| {
        let db = store.inner.db.get().expect("db");
        let txn = db.begin_write().expect("write");
        let stats = txn.stats().expect("stats");
        stats.allocated_pages() * stats.page_size() as u64
    };
    let before = allocated(&store);
    let mut stored = 0u64;
    for (size, count) in [(262_364usize, 24), (4_316, 200)] {
        let body: Vec<u8> = (0..size).map(|i| b"0123456789abcdef\r\n"[i % 18]).collect();
        for _ in 0..count {
            let message = spooled(&store, &body).await;
            store
                .deliver(message, vec!["alice@home.test".into()], 7)
                .await
                .expect("deliver");
            stored += size as u64;
        }
    }
    let grown = allocated(&store) - before;
    assert!(
        grown < stored + stored / 10,
        "{grown} octets of pages for {stored} octets of mail"
    );
}

#[tokio::test]
async fn a_view_reads_a_large_body_in_trips_whole_and_from_any_offset() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    store
        .create_account("alice@home.test", "x")
        .await
        .expect("alice");
    let body: Vec<u8> = (0..700_000u32).map(|i| (i % 253) as u8).collect();
    let message = spooled(&store, &body).await;
    store
        .deliver(message, vec!["alice@home.test".into()], 0)
        .await
        .expect("deliver");
    let blob = store
        .mailbox("alice@home.test", INBOX)
        .await
        .expect("inbox")
        .messages[0]
        .blob;
    let view = store.read_view().await.expect("view");
    let mut reader = view.body(blob);
    let mut all = Vec::new();
    while let Some((start, piece)) = reader.next_piece().await.expect("piece") {
        assert_eq!(start, all.len() as u64, "pieces in order");
        all.extend_from_slice(&piece);
    }
    assert_eq!(all, body);
    assert!(reader.next_piece().await.expect("after the end").is_none());
    for offset in [0u64, 65_515, 262_000, 699_999] {
        let mut reader = view.body_range(blob, offset, offset + 1);
        let (start, piece) = reader.next_piece().await.expect("read").expect("piece");
        assert!(start <= offset && offset < start + piece.len() as u64);
        assert_eq!(piece, body[start as usize..start as usize + piece.len()]);
        // Asking past the range's end goes on reading, a piece at a time.
        let (next, _) = reader
            .next_piece()
            .await
            .expect("read")
            .unwrap_or((700_000, vec![]));
        assert_eq!(next, start + piece.len() as u64);
    }
    assert!(
        view.body_range(blob, 700_000, 700_001)
            .next_piece()
            .await
            .expect("read")
            .is_none()
    );
}
