//! Upgrading a schema-6 store: its `BLOB_ENDS` values keep their plain JSON structures and
//! read as before; new bodies' structures are deflated.

use super::*;
use crate::mime::structure_of;

/// What schema 6 added that schema 7 reads, as released.
mod v6 {
    use super::*;

    pub const BLOB_ENDS: TableDefinition<u64, &[u8]> = TableDefinition::new("blob_ends");
}

/// The top bit of a `BLOB_ENDS` value's first four octets: its structure is deflated.
fn deflated(value: &[u8]) -> bool {
    value[3] & 0x80 != 0
}

#[tokio::test]
async fn a_schema_6_store_reads_its_plain_structures_and_deflates_new_ones() {
    let dir = tempfile::tempdir().expect("tempdir");
    let old: Vec<u8> = [
        &b"From: Ann <ann@example.org>\r\nTo: Bob <bob@example.org>\r\nSubject: kept\r\n\r\n"[..],
        &[b'k'; 5000],
    ]
    .concat();
    write_v4_store(dir.path(), b"Subject: large\r\n\r\nbody\r\n");
    {
        // Blob 4 as schema 6 stored it: a leaf-sized piece, then the tail and the structure's
        // plain JSON in one BLOB_ENDS value.
        let db = Database::open(dir.path().join("letterbox.redb")).expect("open");
        let txn = db.begin_write().expect("write");
        let mut meta = txn.open_table(v1::META).expect("meta");
        for (key, value) in [
            ("schema_version", 6),
            ("next_blob_id", 5),
            ("first_paged_blob", 4),
        ] {
            meta.insert(key, value).expect("meta");
        }
        let pieces: Vec<usize> = super::pieces::paged(old.len() as u64).collect();
        assert_eq!(pieces.len(), 2);
        let mut chunks = txn.open_table(v1::BLOB_CHUNKS).expect("chunks");
        chunks.insert((4, 0), &old[..pieces[0]]).expect("piece");
        let json = serde_json::to_vec(&structure_of(&old)).expect("json");
        let mut end = u32::try_from(json.len())
            .expect("length")
            .to_le_bytes()
            .to_vec();
        end.extend_from_slice(&json);
        end.extend_from_slice(&old[pieces[0]..]);
        txn.open_table(v6::BLOB_ENDS)
            .expect("ends")
            .insert(4, end.as_slice())
            .expect("end");
        file_blob_4_as_uid_5(&txn, old.len() as u64);
        drop((meta, chunks));
        txn.commit().expect("commit");
    }
    let store = open(dir.path());
    assert_eq!(schema_version(&store), Some(SCHEMA_VERSION));
    assert_eq!(SCHEMA_VERSION, 7);
    assert_index_exact(&store);
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
    {
        let db = store.inner.db.get().expect("db");
        let txn = db.begin_read().expect("read");
        let ends = txn.open_table(BLOB_ENDS).expect("ends");
        let value = |blob| ends.get(blob).expect("get").expect("end").value().to_vec();
        assert!(!deflated(&value(4)), "the old value is left as it was");
        let new_value = value(new);
        assert!(deflated(&new_value));
        assert!(
            new_value.len() < end_length_plain(&old),
            "{}",
            new_value.len()
        );
    }
    let structures = store
        .read_view()
        .await
        .expect("view")
        .structures(vec![4, new], Detail::Whole)
        .await
        .expect("structures");
    assert_eq!(structures, vec![Some(structure_of(&old)); 2]);
    for blob in [4, new] {
        assert_eq!(body(&store, blob).await, old, "blob {blob}");
        let part = store.message_structure(blob).await.expect("structure");
        assert_eq!(part, structure_of(&old), "blob {blob}");
    }
    // Read from BLOB_ENDS, not computed again (which would store it in BLOB_META).
    let db = store.inner.db.get().expect("db");
    let txn = db.begin_read().expect("read");
    assert_eq!(
        txn.open_table(BLOB_META).expect("meta").len().expect("len"),
        0
    );
}

/// The length of `message`'s schema-6 `BLOB_ENDS` value: the length, the plain JSON, the tail.
fn end_length_plain(message: &[u8]) -> usize {
    let pieces: Vec<usize> = super::pieces::paged(message.len() as u64).collect();
    let json = serde_json::to_vec(&structure_of(message)).expect("json");
    4 + json.len() + (message.len() - pieces[0])
}
