//! Owner-only files, what each durability mode puts on stable storage, and what happens when
//! the disk fails: a failed fsync poisons the database, a failed rotation or read loses nothing.

use std::fs;
use std::io;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::testing::FailPoints;
use peerlog::{Durability, Error, NodeDb, Options};

mod common;
use common::{files, id, node};

/// Fail points that inject nothing and count the fsyncs of the log (`log.fsync`), with the
/// count.
fn counting_fsyncs() -> (FailPoints, Arc<AtomicUsize>) {
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fsyncs);
    let points = FailPoints::new(move |step| {
        if step == "log.fsync" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    (points, fsyncs)
}

#[test]
fn database_files_are_private_to_the_owner() {
    let parent = tempfile::tempdir().unwrap();
    let dir = parent.path().join("db");
    let opts = Options {
        segment_size: 4096,
        keep_history: true,
        ..Options::default()
    };
    let db = NodeDb::open_with(&dir, 1, id(0), opts).unwrap();
    for n in 0..100 {
        db.update_node(&node(n)).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
    let mode = |p: &Path| fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&dir), 0o700);
    assert_eq!(mode(&dir.join("archive")), 0o700);
    for entry in fs::read_dir(&dir)
        .unwrap()
        .chain(fs::read_dir(dir.join("archive")).unwrap())
    {
        let path = entry.unwrap().path();
        if path.is_file() {
            assert_eq!(mode(&path), 0o600, "{}", path.display());
        }
    }
}

/// A hook that fails `step` once `armed` is set, counting the failures.
fn failing(step: &'static str, armed: Arc<AtomicBool>, failures: Arc<AtomicUsize>) -> FailPoints {
    FailPoints::new(move |at| {
        if at == step && armed.load(Ordering::SeqCst) {
            failures.fetch_add(1, Ordering::SeqCst);
            return Err(io::Error::other(format!("injected failure at {at}")));
        }
        Ok(())
    })
}

#[test]
fn a_failed_fsync_poisons_the_database_until_reopen() {
    for durability in [
        Durability::SyncEachWrite,
        Durability::Process,
        Durability::GroupCommit {
            max_delay: Duration::from_millis(5),
        },
    ] {
        let dir = tempfile::tempdir().unwrap();
        let (armed, failures) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        let opts = Options {
            durability,
            fail_points: failing("log.fsync", armed.clone(), failures.clone()),
            ..Options::default()
        };
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
        db.update_node(&node(1)).unwrap();
        db.sync().unwrap();
        armed.store(true, Ordering::SeqCst);
        // The write whose sync fails reports it (for sync-each-write), or the next sync does.
        let first = db.update_node(&node(2)).and_then(|()| db.sync());
        assert!(
            first.is_err(),
            "{durability:?}: a failed fsync was reported as success"
        );
        assert!(failures.load(Ordering::SeqCst) >= 1);
        armed.store(false, Ordering::SeqCst);
        // The fsync would now succeed, but retrying it could report success for lost data:
        // the database refuses writes until reopened.
        let err = db
            .update_node(&node(3))
            .expect_err("write accepted after a failed fsync");
        assert!(matches!(err, Error::Poisoned(_)), "{durability:?}: {err}");
        assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
        assert_eq!(db.node(&id(3)), None);
        drop(db);
        let db = NodeDb::open(dir.path(), 1, id(0)).unwrap();
        assert_eq!(
            db.node(&id(1)),
            Some(node(1)),
            "{durability:?}: acknowledged write lost"
        );
        assert_eq!(db.node(&id(3)), None);
        db.update_node(&node(4)).unwrap();
    }
}

/// A failed fsync poisons the database (docs/DESIGN.md, "Correctness rules of the log"), the
/// fsync that seals a full segment (`LogWriter::rotate`) included: the write that needs the next
/// segment gets the error, and every later write gets `Error::Poisoned`. Without the poison,
/// the next write would retry the fsync, which can report success for data that was lost, and
/// carry on.
#[test]
fn failed_fsync_at_rotation_poisons() {
    let dir = tempfile::tempdir().unwrap();
    let fail_once = Arc::new(AtomicBool::new(true));
    let hook = Arc::clone(&fail_once);
    // Process durability: no syncer thread that could take the one failing fsync first.
    let opts = Options {
        durability: Durability::Process,
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        fail_points: FailPoints::new(move |step| {
            if step == "log.fsync" && hook.swap(false, Ordering::SeqCst) {
                return Err(io::Error::other("injected EIO at log.fsync"));
            }
            Ok(())
        }),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    let now = SystemTime::now();
    let mut failed_at = None;
    for i in 0..200 {
        if let Err(e) = db.update_last_ping(&id(1), now + Duration::from_secs(i)) {
            failed_at = Some((i, e));
            break;
        }
    }
    let (i, e) = failed_at.expect("the rotation's fsync was never attempted");
    assert!(!fail_once.load(Ordering::SeqCst), "{i}: {e}");
    let next = db.update_last_ping(&id(1), now);
    assert!(
        matches!(next, Err(Error::Poisoned(_))),
        "write after a failed fsync: {next:?}"
    );
}

/// With `Durability::SyncEachWrite` every write is on stable storage when it returns, expiry
/// included: expiring ids that only had pings, pongs or failures drops no node *record*
/// (`expire_nodes` returns 0) but still appends `NodeExpired` records, which are fdatasynced
/// before it returns. Syncing only when a record was dropped would let a power loss bring the
/// expired data back.
#[test]
fn sync_each_write_expiry_of_ids_without_record_is_synced() {
    let dir = tempfile::tempdir().unwrap();
    let (fail_points, fsyncs) = counting_fsyncs();
    let opts = Options {
        durability: Durability::SyncEachWrite,
        fail_points,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    // An id without a node record, last pinged long ago: expiration drops it.
    db.update_last_ping(&id(7), UNIX_EPOCH + Duration::from_secs(1000))
        .unwrap();
    let before = fsyncs.load(Ordering::SeqCst);
    assert_eq!(db.expire_nodes().unwrap(), 0, "no record was dropped");
    assert_eq!(db.last_ping(&id(7)), None, "the id was expired");
    assert!(
        fsyncs.load(Ordering::SeqCst) > before,
        "the NodeExpired record was acknowledged without an fdatasync"
    );
}

#[test]
fn a_failed_segment_rotation_fails_the_write_and_the_database_goes_on() {
    for step in ["segment.write", "segment.fsync", "segment.rename"] {
        let dir = tempfile::tempdir().unwrap();
        let (armed, failures) = (
            Arc::new(AtomicBool::new(false)),
            Arc::new(AtomicUsize::new(0)),
        );
        // Process durability: every fsync is one of the writer's, none the syncer's.
        let opts = Options {
            durability: Durability::Process,
            segment_size: 4096,
            fail_points: failing(step, armed.clone(), failures.clone()),
            ..Options::default()
        };
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts.clone()).unwrap();
        armed.store(true, Ordering::SeqCst);
        let mut acknowledged = Vec::new();
        let mut refused = None;
        for n in 1..=100 {
            match db.update_last_ping(&id(n), UNIX_EPOCH + Duration::from_secs(n)) {
                Ok(()) => acknowledged.push(n),
                Err(e) => {
                    assert!(e.to_string().contains("injected failure"), "{step}: {e}");
                    refused = Some(n);
                    break;
                }
            }
        }
        let refused = refused.unwrap_or_else(|| panic!("{step}: the segment never filled"));
        assert_eq!(
            db.last_ping(&id(refused)),
            None,
            "{step}: a failed write was applied"
        );
        armed.store(false, Ordering::SeqCst);
        for n in refused + 1..=refused + 50 {
            db.update_last_ping(&id(n), UNIX_EPOCH + Duration::from_secs(n))
                .unwrap();
            acknowledged.push(n);
        }
        db.close().unwrap();
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
        assert!(
            db.recovery().problems.is_empty(),
            "{step}: {:?}",
            db.recovery().problems
        );
        for &n in &acknowledged {
            assert_eq!(
                db.last_ping(&id(n)),
                Some(UNIX_EPOCH + Duration::from_secs(n)),
                "{step}: write {n} lost"
            );
        }
        assert_eq!(
            db.last_ping(&id(refused)),
            None,
            "{step}: a refused write came back"
        );
        let leftovers = files(dir.path())
            .into_iter()
            .filter(|(name, _)| name.ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0, "{step}");
    }
}

#[test]
fn group_commit_sync_waits_for_a_shared_fsync() {
    let dir = tempfile::tempdir().unwrap();
    let (fail_points, syncs) = counting_fsyncs();
    let opts = Options {
        // A long delay: only explicit sync() requests make the syncer run.
        durability: Durability::GroupCommit {
            max_delay: Duration::from_secs(3600),
        },
        fail_points,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap());
    let threads: Vec<_> = (0..8u64)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for i in 0..50 {
                    db.update_find_fails(&id(t * 1000 + i), i as u32 + 1)
                        .unwrap();
                    db.sync().unwrap();
                }
            })
        })
        .collect();
    for thread in threads {
        thread.join().unwrap();
    }
    let synced = syncs.load(Ordering::SeqCst);
    assert!(
        (1..300).contains(&synced),
        "{synced} fsyncs for 400 sync() calls: not shared"
    );
    for t in 0..8 {
        assert_eq!(db.find_fails(&id(t * 1000 + 49)), 50);
    }
}

#[test]
fn group_commit_syncs_within_the_delay_without_being_asked_and_not_when_idle() {
    let dir = tempfile::tempdir().unwrap();
    let (fail_points, syncs) = counting_fsyncs();
    let opts = Options {
        durability: Durability::GroupCommit {
            max_delay: Duration::from_millis(10),
        },
        fail_points,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(
        syncs.load(Ordering::SeqCst),
        0,
        "the syncer synced an idle database"
    );
    db.update_node(&node(1)).unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while syncs.load(Ordering::SeqCst) == 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "a write stayed unsynced"
        );
        std::thread::sleep(Duration::from_millis(2));
    }
    std::thread::sleep(Duration::from_millis(100));
    assert_eq!(syncs.load(Ordering::SeqCst), 1, "one write, one fsync");
}

#[test]
fn a_read_error_fails_the_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_size: 4096,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts.clone()).unwrap();
    for n in 1..=60 {
        db.update_node(&node(n)).unwrap();
    }
    db.close().unwrap();
    // Tear the tail of the last segment, which a successful open would cut back...
    let mut segments: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let last = segments.last().unwrap();
    let mut bytes = fs::read(last).unwrap();
    let end = bytes.iter().rposition(|&b| b != 0).unwrap();
    bytes[end - 10] ^= 0xff;
    fs::write(last, &bytes).unwrap();
    // ...and make reading fail: a segment name that is a directory reads with EISDIR.
    fs::create_dir(dir.path().join("0000000000000099.seg")).unwrap();
    let before = files(dir.path());
    let err = NodeDb::open_with(dir.path(), 1, id(0), opts.clone())
        .expect_err("opened despite a read error");
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("0000000000000099.seg"), "{err}");
    assert_eq!(
        files(dir.path()),
        before,
        "a failed open changed the directory"
    );
    fs::remove_dir(dir.path().join("0000000000000099.seg")).unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    assert_eq!(db.len(), 59, "the torn record is cut, the rest is there");
}
