//! The MODSEQ index, tombstones and `\Recent` marks (schema 2): every change to a message keeps
//! the index exact, expunges leave tombstones under a new HIGHESTMODSEQ, and the reads built
//! on them (`changes_since`, `vanished_since`, `claim_recent`) answer from the index.

use std::collections::BTreeSet;

use redb::{ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use tokio::sync::watch;

use super::schema::*;
use super::*;

const ALICE: &str = "alice@home.test";

fn open(dir: &Path) -> Store {
    Store::open(dir, &Limits::default(), watch::channel(Status::default()).0).expect("open")
}

async fn deliver(store: &Store, count: usize) {
    for i in 0..count {
        let mut spool = store.spool().await.expect("spool");
        spool
            .write(format!("Subject: {i}\r\n\r\nbody\r\n").as_bytes())
            .await
            .expect("write");
        let message = spool.finish().await.expect("finish");
        store
            .deliver(message, vec![ALICE.into()], 0)
            .await
            .expect("deliver");
    }
}

async fn alice_with(dir: &Path, messages: usize) -> Store {
    let store = open(dir);
    store.create_account(ALICE, "x").await.expect("alice");
    deliver(&store, messages).await;
    store
}

/// Checks that `MODSEQS` holds exactly one entry per message row, under the row's MODSEQ, and
/// that every mailbox (and nothing else) has a `\Recent` mark.
pub(super) fn assert_index_exact(store: &Store) {
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    let mut rows = BTreeSet::new();
    for entry in txn
        .open_table(MESSAGES)
        .expect("messages")
        .iter()
        .expect("iter")
    {
        let (key, row) = entry.expect("row");
        let (mailbox, uid) = key.value();
        rows.insert((mailbox, row.value().4, uid));
    }
    let mut index = BTreeSet::new();
    for entry in txn
        .open_table(MODSEQS)
        .expect("modseqs")
        .iter()
        .expect("iter")
    {
        index.insert(entry.expect("entry").0.value());
    }
    assert_eq!(rows, index, "the MODSEQ index matches the message rows");
    for entry in txn
        .open_table(MORE_FLAGS)
        .expect("more flags")
        .iter()
        .expect("iter")
    {
        let (key, more) = entry.expect("entry");
        let (mailbox, uid) = key.value();
        assert!(
            rows.iter().any(|&(m, _, u)| (m, u) == (mailbox, uid)),
            "MORE_FLAGS of a message that is gone: {mailbox}/{uid}"
        );
        assert!(
            more.value().last().is_some_and(|&octet| octet != 0),
            "an empty MORE_FLAGS row"
        );
    }
    let mut ids = BTreeSet::new();
    for entry in txn
        .open_table(MAILBOXES)
        .expect("mailboxes")
        .iter()
        .expect("iter")
    {
        ids.insert(entry.expect("entry").1.value().0);
    }
    let mut marked = BTreeSet::new();
    for entry in txn
        .open_table(RECENT)
        .expect("recent")
        .iter()
        .expect("iter")
    {
        marked.insert(entry.expect("entry").0.value());
    }
    assert_eq!(
        ids, marked,
        "every mailbox, and only those, has a \\Recent mark"
    );
}

/// The (mailbox, MODSEQ, UID) keys of a tombstone or index table for one mailbox.
fn keys(
    store: &Store,
    table: TableDefinition<(u64, u64, u32), ()>,
    mailbox: u64,
) -> Vec<(u64, u32)> {
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    let table = txn.open_table(table).expect("table");
    let range = table
        .range((mailbox, 0, 0)..=(mailbox, u64::MAX, u32::MAX))
        .expect("range");
    range
        .map(|entry| {
            let (_, modseq, uid) = entry.expect("entry").0.value();
            (modseq, uid)
        })
        .collect()
}

#[tokio::test]
async fn a_flag_change_moves_the_index_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 2).await;
    let before = store.mailbox_state(ALICE, INBOX).await.expect("state");
    // A mailbox's first change is MODSEQ 2: an empty one reports HIGHESTMODSEQ 1.
    assert_eq!(keys(&store, MODSEQS, before.id), [(2, 1), (3, 2)]);
    let outcome = store
        .store_flags(ALICE, INBOX, vec![1], FlagOp::Add, flags::SEEN, None)
        .await
        .expect("store");
    assert_eq!(outcome.after, 4);
    assert_eq!(keys(&store, MODSEQS, before.id), [(3, 2), (4, 1)]);
    // Setting a flag a message already has is no change and moves nothing.
    store
        .store_flags(ALICE, INBOX, vec![1], FlagOp::Add, flags::SEEN, None)
        .await
        .expect("store again");
    assert_eq!(keys(&store, MODSEQS, before.id), [(3, 2), (4, 1)]);
    assert_index_exact(&store);
}

#[tokio::test]
async fn an_expunge_leaves_tombstones_under_a_new_highestmodseq() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 3).await;
    store
        .store_flags(ALICE, INBOX, vec![1, 3], FlagOp::Add, flags::DELETED, None)
        .await
        .expect("store");
    let before = store.mailbox_state(ALICE, INBOX).await.expect("state");
    let removed = store
        .expunge_deleted(ALICE, INBOX, None)
        .await
        .expect("expunge");
    assert_eq!(removed, [1, 3]);
    let after = store.mailbox_state(ALICE, INBOX).await.expect("state");
    assert_eq!(after.highest_modseq, before.highest_modseq + 1);
    let modseq = after.highest_modseq;
    assert_eq!(keys(&store, EXPUNGED, after.id), [(modseq, 1), (modseq, 3)]);
    assert_index_exact(&store);
    // POP3's way (QUIT after DELE) does the same; UIDs that are gone already change nothing.
    store
        .expunge(ALICE, INBOX, vec![2])
        .await
        .expect("pop3 expunge");
    let pop3 = store.mailbox_state(ALICE, INBOX).await.expect("state");
    assert_eq!(pop3.highest_modseq, modseq + 1);
    store
        .expunge(ALICE, INBOX, vec![1, 2])
        .await
        .expect("again");
    assert_eq!(
        store.mailbox_state(ALICE, INBOX).await.expect("state"),
        pop3
    );
    assert_eq!(
        keys(&store, EXPUNGED, after.id),
        [(modseq, 1), (modseq, 3), (modseq + 1, 2)]
    );
    assert_index_exact(&store);
}

#[tokio::test]
async fn a_move_tombstones_the_source_and_indexes_the_copies() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 3).await;
    let inbox = store.mailbox_state(ALICE, INBOX).await.expect("inbox");
    let archive = store
        .mailbox_state(ALICE, "Archive")
        .await
        .expect("archive");
    let (_, pairs) = store
        .copy_messages(ALICE, INBOX, vec![1, 3], "Archive", true)
        .await
        .expect("move");
    assert_eq!(pairs, [(1, 1), (3, 2)]);
    let moved = store.mailbox_state(ALICE, INBOX).await.expect("inbox");
    assert_eq!(moved.highest_modseq, inbox.highest_modseq + 1);
    let gone = moved.highest_modseq;
    assert_eq!(keys(&store, EXPUNGED, inbox.id), [(gone, 1), (gone, 3)]);
    assert_eq!(keys(&store, MODSEQS, archive.id), [(2, 1), (2, 2)]);
    assert!(keys(&store, EXPUNGED, archive.id).is_empty());
    // COPY leaves the source alone.
    store
        .copy_messages(ALICE, INBOX, vec![2], "Archive", false)
        .await
        .expect("copy");
    assert_eq!(
        store.mailbox_state(ALICE, INBOX).await.expect("inbox"),
        moved
    );
    // A MOVE within one mailbox is one change, and moves each message once.
    let (_, within) = store
        .copy_messages(ALICE, "Archive", vec![1, 2, 3, 4], "Archive", true)
        .await
        .expect("move within");
    assert_eq!(within, [(1, 4), (2, 5), (3, 6)]);
    let changes = store
        .changes_since(ALICE, "Archive", archive.id, 3)
        .await
        .expect("changes");
    assert_eq!(changes.state.highest_modseq, 4);
    assert_eq!(changes.expunged, [1, 2, 3]);
    let uids: Vec<u32> = changes.changed.iter().map(|c| c.uid).collect();
    assert_eq!(uids, [4, 5, 6]);
    assert_index_exact(&store);
}

#[tokio::test]
async fn changes_since_gives_only_what_is_newer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 4).await;
    let start = store.mailbox_state(ALICE, INBOX).await.expect("state");
    assert_eq!(start.highest_modseq, 5);
    store
        .store_flags(ALICE, INBOX, vec![3], FlagOp::Add, flags::FLAGGED, None)
        .await
        .expect("flag 3");
    store
        .store_flags(ALICE, INBOX, vec![1, 2], FlagOp::Add, flags::DELETED, None)
        .await
        .expect("delete 1 2");
    store
        .expunge_deleted(ALICE, INBOX, Some(vec![2]))
        .await
        .expect("expunge 2");
    deliver(&store, 1).await;

    let all = store
        .changes_since(ALICE, INBOX, start.id, 0)
        .await
        .expect("all");
    let seen: Vec<(u32, u64)> = all.changed.iter().map(|c| (c.uid, c.modseq)).collect();
    assert_eq!(seen, [(1, 7), (3, 6), (4, 5), (5, 9)], "by UID");
    assert_eq!(all.expunged, [2]);
    assert_eq!(all.state.highest_modseq, 9);
    assert_eq!(all.state.uidnext, 6);

    let recent = store
        .changes_since(ALICE, INBOX, start.id, 7)
        .await
        .expect("since 7");
    assert_eq!(recent.expunged, [2]);
    assert_eq!(
        recent.changed,
        [FlagChange {
            uid: 5,
            flags: Flags::default(),
            modseq: 9
        }]
    );
    let flagged = store
        .changes_since(ALICE, INBOX, start.id, 5)
        .await
        .expect("since 5");
    assert_eq!(flagged.changed[1].flags, flags::FLAGGED.into());
    assert_eq!(flagged.changed[0].flags, flags::DELETED.into());
    let none = store
        .changes_since(ALICE, INBOX, start.id, 9)
        .await
        .expect("since now");
    assert!(none.changed.is_empty() && none.expunged.is_empty());
    assert!(
        store
            .changes_since(ALICE, INBOX, start.id, u64::MAX)
            .await
            .expect("max")
            .changed
            .is_empty()
    );
    // Another mailbox's id under this name is not this mailbox.
    assert!(matches!(
        store.changes_since(ALICE, "Sent", start.id, 0).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn vanished_since_with_and_without_ranges() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 10).await;
    let id = store.mailbox_state(ALICE, INBOX).await.expect("state").id;
    store
        .expunge(ALICE, INBOX, vec![2, 3, 9])
        .await
        .expect("first");
    let between = store.mailbox_state(ALICE, INBOX).await.expect("state");
    store
        .expunge(ALICE, INBOX, vec![5, 7])
        .await
        .expect("second");
    assert_eq!(
        store.vanished_since(id, 0, None).await.expect("all"),
        [2, 3, 5, 7, 9]
    );
    assert_eq!(
        store
            .vanished_since(id, between.highest_modseq, None)
            .await
            .expect("after first"),
        [5, 7]
    );
    assert_eq!(
        store
            .vanished_since(id, 0, Some(vec![(1, 3), (9, 6)]))
            .await
            .expect("ranges"),
        [2, 3, 7, 9],
        "ranges are inclusive, in either order"
    );
    assert!(
        store
            .vanished_since(id, 0, Some(vec![]))
            .await
            .expect("no ranges")
            .is_empty()
    );
    assert!(
        store
            .vanished_since(id, u64::MAX, None)
            .await
            .expect("max")
            .is_empty()
    );
    assert!(matches!(
        store.vanished_since(9999, 0, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recent_claims_are_disjoint_and_never_go_back() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 3).await;
    let id = store.mailbox_state(ALICE, INBOX).await.expect("state").id;
    assert_eq!(store.recent_mark(id).await.expect("mark"), 1);
    // The first session claims UIDs 1 and 2, the next one finds them claimed.
    assert_eq!(store.claim_recent(id, 3).await.expect("first"), 1);
    assert_eq!(store.claim_recent(id, 3).await.expect("second"), 3);
    assert_eq!(store.claim_recent(id, 2).await.expect("backward"), 3);
    assert_eq!(store.recent_mark(id).await.expect("mark"), 3);
    assert_eq!(store.claim_recent(id, 4).await.expect("third"), 3);

    // Sessions racing for the same new messages get disjoint ranges that cover them all.
    let mut tasks = Vec::new();
    for up_to in [10u32, 6, 8, 12, 7, 12] {
        let store = store.clone();
        tasks.push(tokio::spawn(async move {
            let old = store.claim_recent(id, up_to).await.expect("claim");
            (old, up_to)
        }));
    }
    let mut claimed = Vec::new();
    for task in tasks {
        let (old, up_to) = task.await.expect("join");
        claimed.extend(old..up_to);
    }
    claimed.sort_unstable();
    assert_eq!(claimed, (4..12).collect::<Vec<u32>>());
    assert_eq!(store.recent_mark(id).await.expect("mark"), 12);
    assert!(matches!(
        store.claim_recent(9999, 1).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn deleting_a_mailbox_or_account_removes_its_index_tombstones_and_mark() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 3).await;
    store
        .copy_messages(ALICE, INBOX, vec![1, 2, 3], "Archive", false)
        .await
        .expect("copy");
    let archive = store.mailbox_state(ALICE, "Archive").await.expect("state");
    store
        .expunge(ALICE, "Archive", vec![1])
        .await
        .expect("expunge");
    store.claim_recent(archive.id, 4).await.expect("claim");
    assert!(!keys(&store, MODSEQS, archive.id).is_empty());
    assert!(!keys(&store, EXPUNGED, archive.id).is_empty());

    store
        .delete_mailbox(ALICE, "Archive")
        .await
        .expect("delete");
    assert!(keys(&store, MODSEQS, archive.id).is_empty());
    assert!(keys(&store, EXPUNGED, archive.id).is_empty());
    assert!(matches!(
        store.recent_mark(archive.id).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.claim_recent(archive.id, 10).await,
        Err(StoreError::NotFound { .. })
    ));
    assert!(matches!(
        store.changes_since(ALICE, "Archive", archive.id, 0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_index_exact(&store);
    // Created again under the same name, it is another mailbox.
    store
        .create_mailbox(ALICE, "Archive")
        .await
        .expect("create");
    assert!(matches!(
        store.changes_since(ALICE, "Archive", archive.id, 0).await,
        Err(StoreError::NotFound { .. })
    ));
    assert_index_exact(&store);

    let inbox = store.mailbox_state(ALICE, INBOX).await.expect("state");
    store.expunge(ALICE, INBOX, vec![3]).await.expect("expunge");
    store.delete_account(ALICE).await.expect("delete account");
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    for table in [MODSEQS, EXPUNGED] {
        assert_eq!(txn.open_table(table).expect("table").len().expect("len"), 0);
    }
    assert_eq!(
        txn.open_table(RECENT).expect("recent").len().expect("len"),
        0
    );
    drop((txn, db));
    assert!(matches!(
        store.vanished_since(inbox.id, 0, None).await,
        Err(StoreError::NotFound { .. })
    ));
}

#[tokio::test]
async fn renaming_keeps_the_index_and_inbox_rename_tombstones_inbox() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 2).await;
    store.create_mailbox(ALICE, "a/b").await.expect("create");
    store
        .copy_messages(ALICE, INBOX, vec![1, 2], "a/b", false)
        .await
        .expect("copy");
    store.expunge(ALICE, "a/b", vec![1]).await.expect("expunge");
    let ab = store.mailbox_state(ALICE, "a/b").await.expect("state");
    store.claim_recent(ab.id, 2).await.expect("claim");
    store.rename_mailbox(ALICE, "a", "z").await.expect("rename");
    let zb = store
        .changes_since(ALICE, "z/b", ab.id, 0)
        .await
        .expect("renamed keeps its id");
    assert_eq!(zb.expunged, [1]);
    assert_eq!(zb.changed.len(), 1);
    assert_eq!(store.recent_mark(ab.id).await.expect("mark"), 2);

    let inbox = store.mailbox_state(ALICE, INBOX).await.expect("inbox");
    store.claim_recent(inbox.id, 2).await.expect("claim");
    store
        .rename_mailbox(ALICE, INBOX, "Old")
        .await
        .expect("rename inbox");
    let after = store
        .changes_since(ALICE, INBOX, inbox.id, inbox.highest_modseq)
        .await
        .expect("inbox");
    assert_eq!(after.state.highest_modseq, inbox.highest_modseq + 1);
    assert_eq!(after.expunged, [1, 2]);
    let old = store.mailbox_state(ALICE, "Old").await.expect("old");
    let moved = store
        .changes_since(ALICE, "Old", old.id, 0)
        .await
        .expect("old");
    let uids: Vec<u32> = moved.changed.iter().map(|c| c.uid).collect();
    assert_eq!(uids, [1, 2]);
    assert_eq!(
        store.recent_mark(old.id).await.expect("mark"),
        2,
        "the claims move with the messages"
    );
    assert_index_exact(&store);
}

#[tokio::test]
async fn keywords_past_bit_31_are_kept_copied_moved_and_expunged_with_their_message() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = alice_with(dir.path(), 3).await;
    let mut wide = Flags::from(flags::FLAGGED);
    wide.insert(40);
    wide.insert(254);
    let outcome = store
        .store_flags(ALICE, INBOX, vec![1, 2], FlagOp::Add, wide.clone(), None)
        .await
        .expect("store");
    assert_eq!(
        outcome.changed[0].flags, wide,
        "the change carries all bits"
    );
    let mut only_40 = Flags::default();
    only_40.insert(40);
    // Removing the high bit shortens the stored octets; removing the rest drops the row.
    let mut high = Flags::default();
    high.insert(254);
    store
        .store_flags(ALICE, INBOX, vec![2], FlagOp::Remove, high, None)
        .await
        .expect("remove 254");
    store
        .store_flags(
            ALICE,
            INBOX,
            vec![3],
            FlagOp::Replace,
            only_40.clone(),
            None,
        )
        .await
        .expect("replace");
    let id = store.mailbox_state(ALICE, INBOX).await.expect("state").id;
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    let flags: Vec<&Flags> = inbox.messages.iter().map(|m| &m.flags).collect();
    assert_eq!(flags[0], &wide);
    assert_eq!(flags[1], &Flags::from(flags::FLAGGED).union(&only_40));
    assert_eq!(flags[2], &only_40);
    let rows = store.messages_by_uid(id, vec![3, 1]).await.expect("rows");
    assert_eq!(
        (rows[0].flags.clone(), rows[1].flags.clone()),
        (only_40.clone(), wide.clone())
    );
    let changes = store
        .changes_since(ALICE, INBOX, id, 3)
        .await
        .expect("changes");
    assert_eq!(changes.changed[2].flags, only_40);
    assert_index_exact(&store);

    store.create_mailbox(ALICE, "Kept").await.expect("create");
    store
        .copy_messages(ALICE, INBOX, vec![1], "Kept", false)
        .await
        .expect("copy");
    store
        .copy_messages(ALICE, INBOX, vec![3], "Kept", true)
        .await
        .expect("move");
    let kept = store.mailbox(ALICE, "Kept").await.expect("kept");
    assert_eq!(kept.messages[0].flags, wide);
    assert_eq!(kept.messages[1].flags, only_40);
    store
        .store_flags(ALICE, INBOX, vec![1], FlagOp::Add, flags::DELETED, None)
        .await
        .expect("delete");
    store
        .expunge_deleted(ALICE, INBOX, None)
        .await
        .expect("expunge");
    store.delete_mailbox(ALICE, "Kept").await.expect("delete");
    assert_index_exact(&store);
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    let more = txn.open_table(MORE_FLAGS).expect("more flags");
    assert_eq!(more.len().expect("len"), 1, "only message 2 still has one");
}
