//! Mailboxes and messages as IMAP uses them: the special-use set, RENAME of INBOX, COPY and
//! MOVE sharing bodies, EXPUNGE of `\Deleted`, flags with MODSEQ, APPEND, change notices.

use tokio::sync::watch;

use super::*;

fn open(dir: &Path) -> Store {
    Store::open(dir, &Limits::default(), watch::channel(Status::default()).0).expect("open")
}

async fn spooled(store: &Store, body: &[u8]) -> SpoolFile {
    let mut spool = store.spool().await.expect("spool");
    spool.write(body).await.expect("write");
    spool.finish().await.expect("finish")
}

const ALICE: &str = "alice@home.test";

async fn store_with_two_messages(dir: &Path) -> Store {
    let store = open(dir);
    store.create_account(ALICE, "x").await.expect("alice");
    for subject in ["one", "two"] {
        let message = spooled(
            &store,
            format!("Subject: {subject}\r\n\r\nbody\r\n").as_bytes(),
        )
        .await;
        store
            .deliver(message, vec![ALICE.into()], 0)
            .await
            .expect("deliver");
    }
    store
}

#[tokio::test]
async fn every_account_has_the_special_use_set_and_inbox_renames_by_moving() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_two_messages(dir.path()).await;
    let names: Vec<String> = store
        .list_mailboxes(ALICE)
        .await
        .expect("list")
        .into_iter()
        .filter(|e| e.exists && e.subscribed)
        .map(|e| e.name)
        .collect();
    assert_eq!(
        names,
        ["Archive", "Drafts", "INBOX", "Junk", "Sent", "Trash"]
    );
    let inbox = store.mailbox_state(ALICE, INBOX).await.expect("inbox");
    store
        .rename_mailbox(ALICE, INBOX, "Old")
        .await
        .expect("rename");
    let (old, uids) = store.mailbox_uids(ALICE, "Old").await.expect("old");
    assert_eq!(uids, [1, 2]);
    assert_eq!(old.uidnext, 3);
    assert_ne!(old.uidvalidity, inbox.uidvalidity);
    let (after, uids) = store.mailbox_uids(ALICE, INBOX).await.expect("inbox");
    assert!(uids.is_empty());
    assert_eq!(after.uidnext, inbox.uidnext, "INBOX keeps counting");
    assert!(matches!(
        store.rename_mailbox(ALICE, "Old", "Sent").await,
        Err(StoreError::Exists(_))
    ));
    store.create_mailbox(ALICE, "a/b/c").await.expect("create");
    store
        .rename_mailbox(ALICE, "a", "z")
        .await
        .expect("rename tree");
    assert!(store.mailbox_state(ALICE, "z/b/c").await.is_ok());
    assert!(store.mailbox_state(ALICE, "a/b").await.is_err());
    assert!(matches!(
        store.delete_mailbox(ALICE, "z").await,
        Err(StoreError::Invalid(_))
    ));
    // Another account sees none of it.
    store
        .create_account("bob@home.test", "x")
        .await
        .expect("bob");
    assert!(store.mailbox_state("bob@home.test", "z/b/c").await.is_err());
    assert!(
        store
            .mailbox_uids("bob@home.test", INBOX)
            .await
            .expect("bob")
            .1
            .is_empty()
    );
}

#[tokio::test]
async fn copies_share_bodies_and_expunge_frees_them_last() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_two_messages(dir.path()).await;
    let mut changes = store.watch_changes();
    let (validity, pairs) = store
        .copy_messages(ALICE, INBOX, vec![1, 2], "Archive", false)
        .await
        .expect("copy");
    assert!(changes.has_changed().expect("watch"));
    changes.borrow_and_update();
    assert_eq!(pairs, [(1, 1), (2, 2)]);
    assert_eq!(
        store
            .mailbox_state(ALICE, "Archive")
            .await
            .expect("a")
            .uidvalidity,
        validity
    );
    let (_, moved) = store
        .copy_messages(ALICE, "Archive", vec![2], "Trash", true)
        .await
        .expect("move");
    assert_eq!(moved, [(2, 1)]);
    assert_eq!(
        store.mailbox_uids(ALICE, "Archive").await.expect("a").1,
        [1]
    );
    let inbox = store.mailbox(ALICE, INBOX).await.expect("inbox");
    let blob = inbox.messages[0].blob;
    let outcome = store
        .store_flags(
            ALICE,
            INBOX,
            vec![1, 2],
            FlagOp::Add,
            schema::flags::DELETED,
            None,
        )
        .await
        .expect("flags");
    assert_eq!(outcome.changed.len(), 2);
    assert_eq!(outcome.after, outcome.before + 1);
    let removed = store
        .expunge_deleted(ALICE, INBOX, None)
        .await
        .expect("expunge");
    assert_eq!(removed, [1, 2]);
    // The copy in Archive still reads the shared body.
    let mut reader = store.body(blob);
    assert!(reader.next_chunk().await.expect("chunk").is_some());
    let structure = store.message_structure(blob).await.expect("structure");
    assert_eq!(structure.search.expect("fields").subject, "one");
    // A conditional STORE leaves a message changed since the given MODSEQ alone.
    let archive = store.mailbox(ALICE, "Archive").await.expect("archive");
    let modseq = archive.messages[0].modseq;
    store
        .store_flags(
            ALICE,
            "Archive",
            vec![1],
            FlagOp::Add,
            schema::flags::SEEN,
            None,
        )
        .await
        .expect("seen");
    let outcome = store
        .store_flags(
            ALICE,
            "Archive",
            vec![1],
            FlagOp::Add,
            schema::flags::FLAGGED,
            Some(modseq),
        )
        .await
        .expect("conditional");
    assert_eq!(outcome.modified, [1]);
    assert!(outcome.changed.is_empty());
}

#[tokio::test]
async fn append_files_into_a_named_mailbox_with_flags_all_or_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = store_with_two_messages(dir.path()).await;
    let item = |message, flags: u32, internal_date| AppendItem {
        message,
        flags: flags.into(),
        internal_date,
    };
    let items = vec![
        item(
            spooled(&store, b"Subject: draft\r\n\r\nx\r\n").await,
            schema::flags::DRAFT,
            42,
        ),
        item(spooled(&store, b"Subject: two\r\n\r\ny\r\n").await, 0, 43),
    ];
    let (validity, uids) = store
        .append_all(items, ALICE, "Drafts")
        .await
        .expect("append");
    assert_eq!(uids, [1, 2]);
    let drafts = store.mailbox(ALICE, "Drafts").await.expect("drafts");
    assert_eq!(drafts.uidvalidity, validity);
    assert_eq!(drafts.messages.len(), 2);
    assert_eq!(drafts.messages[0].flags, schema::flags::DRAFT.into());
    assert_eq!(drafts.messages[0].internal_date, 42);
    assert_eq!(drafts.messages[1].internal_date, 43);
    let items = vec![item(spooled(&store, b"x").await, 0, 0)];
    assert!(matches!(
        store.append_all(items, ALICE, "Nowhere").await,
        Err(StoreError::NotFound { .. })
    ));
    let status = store.mailbox_status(ALICE, INBOX).await.expect("status");
    assert_eq!((status.messages, status.unseen, status.uidnext), (2, 2, 3));
}
