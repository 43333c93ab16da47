//! Upgrading a schema-5 store: its bodies keep their `BLOB_TAILS` and `BLOB_META` rows, new
//! ones go to `BLOB_ENDS`.

use super::*;
use crate::mime::structure_of;

/// What schema 5 added that schema 6 reads, as released.
mod v5 {
    use super::*;

    pub const BLOB_TAILS: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_tails");
}

#[tokio::test]
async fn a_schema_5_store_keeps_its_tails_and_structures_and_new_bodies_use_blob_ends() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old: Vec<u8> = [&b"Subject: kept\r\n\r\n"[..], &[b'k'; 5000]].concat();
    write_v4_store(dir.path(), b"Subject: large\r\n\r\nbody\r\n");
    {
        // Blob 4 as schema 5 stored it: a leaf-sized piece, the tail in BLOB_TAILS and the
        // structure in BLOB_META as JSON that spelled out every absent field.
        let db = Database::open(dir.path().join("letterbox.redb")).expect("open");
        let txn = db.begin_write().expect("write");
        let mut meta = txn.open_table(v1::META).expect("meta");
        for (key, value) in [
            ("schema_version", 5),
            ("next_blob_id", 5),
            ("first_paged_blob", 4),
        ] {
            meta.insert(key, value).expect("meta");
        }
        let pieces: Vec<usize> = super::pieces::paged(old.len() as u64).collect();
        assert_eq!(pieces.len(), 2);
        let mut chunks = txn.open_table(v1::BLOB_CHUNKS).expect("chunks");
        chunks.insert((4, 0), &old[..pieces[0]]).expect("piece");
        let mut tails = txn.open_table(v5::BLOB_TAILS).expect("tails");
        tails.insert(4, &old[pieces[0]..]).expect("tail");
        let mut json = serde_json::to_value(structure_of(&old)).expect("json");
        for absent in [
            "id",
            "description",
            "md5",
            "disposition",
            "language",
            "location",
        ] {
            json[absent] = serde_json::Value::Null;
        }
        let json = serde_json::to_vec(&json).expect("json");
        txn.open_table(v1::BLOB_META)
            .expect("meta")
            .insert(4, json.as_slice())
            .expect("meta");
        file_blob_4_as_uid_5(&txn, old.len() as u64);
        drop((meta, chunks, tails));
        txn.commit().expect("commit");
    }
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 6);
    assert_index_exact(&store);
    let first_paged = |store: &Store| {
        let db = store.inner.db.get().expect("db");
        let txn = db.begin_read().expect("read");
        let meta = txn.open_table(META).expect("meta");
        meta.get(FIRST_PAGED_BLOB).expect("get").map(|v| v.value())
    };
    assert_eq!(first_paged(&store), Some(4), "not moved by the upgrade");
    deliver(&store, &old).await;
    let new = store
        .mailbox(ALICE, INBOX)
        .await
        .expect("inbox")
        .messages
        .last()
        .expect("new")
        .blob;
    assert_eq!(new, 5);
    for blob in [4, new] {
        assert_eq!(body(&store, blob).await, old, "blob {blob}");
        let part = store.message_structure(blob).await.expect("structure");
        assert_eq!(part, structure_of(&old), "blob {blob}");
    }
    {
        let db = store.inner.db.get().expect("db");
        let txn = db.begin_read().expect("read");
        assert_eq!(
            txn.open_table(BLOB_ENDS).expect("ends").len().expect("len"),
            1
        );
        assert!(
            txn.open_table(BLOB_META)
                .expect("meta")
                .get(new)
                .expect("get")
                .is_none()
        );
        assert!(
            txn.open_table(BLOB_TAILS)
                .expect("tails")
                .get(new)
                .expect("get")
                .is_none()
        );
    }
    let uids: Vec<u32> = store
        .mailbox(ALICE, INBOX)
        .await
        .expect("inbox")
        .messages
        .iter()
        .map(|m| m.uid)
        .collect();
    store.expunge(ALICE, INBOX, uids).await.expect("expunge");
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    for table in [BLOB_ENDS, BLOB_META, BLOB_TAILS] {
        let remaining: Vec<u64> = txn
            .open_table(table)
            .expect("table")
            .iter()
            .expect("iter")
            .map(|e| e.expect("row").0.value())
            .collect();
        assert!(
            !remaining.contains(&4) && !remaining.contains(&new),
            "{remaining:?}"
        );
    }
}
