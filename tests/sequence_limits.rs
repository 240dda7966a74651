//! The last sequence number, MAX_SEQ: a log that has used every sequence number up to it
//! opens, compacts and opens again; reaching the limit never makes a database unopenable.

use std::fs;
use std::path::Path;
use std::time::{SystemTime, UNIX_EPOCH};

use peerlog::testing::segment_file_name;
use peerlog::testing::{
    encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, FORMAT_VERSION, MAX_SEQ,
};
use peerlog::NodeDb;

mod common;
use common::id;

/// Writes a segment file holding one ping record numbered `seq`, padded with zeros to 4 KiB.
fn forge_segment(dir: &Path, header: SegmentHeader, seq: u64) {
    let mut bytes = header.encode().to_vec();
    let mut payload = 0i64.to_le_bytes().to_vec();
    payload.extend_from_slice(&id(7).0);
    // A fresh ping, so that expiration (as compaction does first) drops nothing.
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as i64;
    payload.extend_from_slice(&now.to_le_bytes());
    encode_frame(salt_seed(header.salt), seq, 2, &payload, &mut bytes);
    bytes.resize(4096, 0);
    fs::write(dir.join(segment_file_name(header.segment_id)), bytes).unwrap();
}

/// A log whose compacted segment accounts for every sequence number up to MAX_SEQ (only a
/// forged file can) opens, and opens again. Opening starts a new segment
/// (`recovery::open_dir`, through `LogWriter::create`); created with
/// `first_seq = MAX_SEQ + 1`, its header is one that `SegmentHeader::decode` refuses as damage,
/// and from the second open on the database cannot be opened at all.
#[test]
fn open_at_max_seq_stays_openable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    fs::create_dir(&dir).unwrap();
    forge_segment(
        &dir,
        SegmentHeader {
            format: FORMAT_VERSION,
            flags: FLAG_COMPACTED,
            protocol_version: 1,
            salt: 77,
            segment_id: 1,
            first_seq: MAX_SEQ,
            replaces_through: MAX_SEQ,
        },
        MAX_SEQ,
    );
    let db = NodeDb::open(&dir, 1, id(0)).expect("first open");
    assert!(db.last_ping(&id(7)).is_some());
    db.close().unwrap();
    let again = NodeDb::open(&dir, 1, id(0));
    assert!(again.is_ok(), "second open: {:?}", again.err());
}

/// The same limit through compaction: `compact` seals the active segment, and
/// `LogWriter::rotate` creates the next one. Created with `first_seq = MAX_SEQ + 1` (if only
/// `append` checks MAX_SEQ), that segment makes the compaction fail listing it, and every later
/// open too: one call to `compact` makes the database unopenable.
#[test]
fn compact_at_max_seq_stays_openable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let db = NodeDb::open(&dir, 1, id(0)).unwrap();
    // Fresh pings only: the expiry that compaction runs first writes nothing.
    db.update_last_ping(&id(1), SystemTime::now()).unwrap();
    db.close().unwrap();
    let salt = {
        let first = fs::read(dir.join(segment_file_name(1))).unwrap();
        SegmentHeader::decode(&first).unwrap().salt
    };
    forge_segment(
        &dir,
        SegmentHeader {
            format: FORMAT_VERSION,
            flags: 0,
            protocol_version: 1,
            salt,
            segment_id: 5,
            first_seq: MAX_SEQ,
            replaces_through: 0,
        },
        MAX_SEQ,
    );
    let db = NodeDb::open(&dir, 1, id(0)).expect("first open");
    assert_eq!(db.recovery().next_seq, MAX_SEQ + 1);
    let compacted = db.compact();
    drop(db);
    let again = NodeDb::open(&dir, 1, id(0));
    assert!(
        again.is_ok(),
        "compact gave {compacted:?}; the next open: {:?}",
        again.err()
    );
}
