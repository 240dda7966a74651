//! Regression tests for the findings of a second review of the core: each failed before its
//! fix.

use std::fs;
use std::path::Path;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlog::testing::segment_file_name;
use peerlog::testing::{encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, MAX_SEQ};
use peerlog::{Error, NodeDb, Options};

mod common;
use common::{id, node};

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
/// forged file can) opens fine, but `recovery::open_dir` then starts a new segment through
/// `LogWriter::create` with `first_seq = MAX_SEQ + 1`, a header that `SegmentHeader::decode`
/// refuses as damage: from the second open on, the database cannot be opened at all.
#[test]
fn open_at_max_seq_stays_openable() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    fs::create_dir(&dir).unwrap();
    forge_segment(
        &dir,
        SegmentHeader {
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
/// `LogWriter::rotate` creates the next one with `first_seq = MAX_SEQ + 1` (only `append`
/// checks MAX_SEQ). The compaction then fails listing that segment, and so does every later
/// open: one call to `compact` made the database unopenable.
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

/// DESIGN.md: "a second process opening the same directory for writing gets `Error::Locked`".
/// `recovery::prepare_dir` lists the directory (reading every segment header) before
/// `DirLock::acquire`, and `list_dir` now turns a segment that vanished between `read_dir` and
/// opening it into an error: an open racing with the owner's compaction fails with an I/O
/// error (NotFound) instead of `Locked`.
#[test]
fn open_during_compaction_reports_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(&dir, 1, id(0), opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let owner = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let now = SystemTime::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // About 20 segments of 4 KiB, then a compaction removes them all.
                for _ in 0..800 {
                    i += 1;
                    db.update_last_ping(&id(i % 50), now).unwrap();
                }
                db.compact().unwrap();
            }
        })
    };
    // The race showed within a few hundred attempts when it existed; 3 s keeps CI quick.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut other = None;
    let mut attempts = 0;
    while Instant::now() < deadline && other.is_none() {
        attempts += 1;
        match NodeDb::open(&dir, 1, id(0)) {
            Err(Error::Locked { .. }) => {}
            Err(e) => other = Some(e),
            Ok(_) => panic!("opened a locked directory"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    owner.join().unwrap();
    assert!(
        other.is_none(),
        "attempt {attempts}: open of a locked directory failed with {other:?}, not Locked"
    );
}

/// `DirLock` keys its process-wide table by the directory's canonical path, but POSIX record
/// locks do not exclude opens from the same process. A directory renamed while open has a new
/// canonical path: a second `NodeDb` opens it, and both append to the same segment (and
/// dropping either one releases the fcntl lock the other relies on). Keying the table by the
/// LOCK file's (st_dev, st_ino) closes this.
#[test]
fn renamed_directory_is_still_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = NodeDb::open(&a, 1, id(0)).unwrap();
    first.update_node(&node(1)).unwrap();
    fs::rename(&a, &b).unwrap();
    let second = NodeDb::open(&b, 1, id(0));
    assert!(
        matches!(second, Err(Error::Locked { .. })),
        "second NodeDb on the same directory: {:?}",
        second.as_ref().map(|db| db.len())
    );
    drop(first);
}

/// `NodeDb::open_with` keeps `dir` as given (`Inner::dir`, `LogWriter::dir`), while the lock
/// table canonicalises it. With a relative path, every later rotation, compaction listing and
/// retirement resolves it against whatever the working directory is then: after a
/// `set_current_dir`, the next rotation fails (or, if the new working directory holds a `db`,
/// writes into that other directory). Canonicalising once at open fixes both.
#[test]
fn relative_path_survives_a_change_of_working_directory() {
    let (home, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let original = std::env::current_dir().unwrap();
    std::env::set_current_dir(home.path()).unwrap();
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = NodeDb::open_with("db", 1, id(0), opts).unwrap();
    std::env::set_current_dir(elsewhere.path()).unwrap();
    let now = SystemTime::now();
    // 100 pings of 96 bytes: more than two 4 KiB segments.
    let written: Result<Vec<()>, Error> =
        (0..100).map(|i| db.update_last_ping(&id(i), now)).collect();
    std::env::set_current_dir(original).unwrap();
    assert!(written.is_ok(), "{written:?}");
}
