//! Compaction: what it keeps and drops, history retention, the automatic trigger, writers
//! during a compaction, a crash or an I/O error at every step, and damage it replays staying
//! reported.

use std::collections::BTreeMap;
use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::testing::FailPoints;
use peerlog::{Node, NodeDb, NodeId, Options};

fn id(n: u64) -> NodeId {
    let mut bytes = [0u8; 64];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 1;
    NodeId(bytes)
}

fn node(n: u64, port: u16) -> Node {
    Node::new(
        id(n),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n as u8)),
        port,
        port,
    )
}

fn opts() -> Options {
    Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    }
}

/// Everything the API says about ids 0..ids.
type Snapshot = BTreeMap<u64, (Option<Node>, Option<SystemTime>, Option<SystemTime>, u32)>;

fn snapshot(db: &NodeDb, ids: u64) -> Snapshot {
    (0..ids)
        .map(|n| {
            (
                n,
                (
                    db.node(&id(n)),
                    db.last_ping(&id(n)),
                    db.last_pong(&id(n)),
                    db.find_fails(&id(n)),
                ),
            )
        })
        .filter(|(_, v)| *v != (None, None, None, 0))
        .collect()
}

/// A history with overwrites, deletes and one stale node, over several segments.
fn write_history(db: &NodeDb) {
    let now = SystemTime::now();
    for round in 0..5u16 {
        for n in 1..=20 {
            db.update_node(&node(n, 30000 + round)).unwrap();
            db.update_last_pong(&id(n), now - Duration::from_secs(u64::from(round)))
                .unwrap();
            db.update_find_fails(&id(n), u32::from(round)).unwrap();
        }
    }
    for n in 1..=5 {
        db.delete_node(&id(n)).unwrap();
    }
    db.update_node(&node(30, 1)).unwrap();
    db.update_last_pong(&id(30), now - Duration::from_secs(3 * 86_400))
        .unwrap();
    db.update_last_ping(&id(31), now).unwrap();
}

fn segment_bytes(dir: &Path) -> (usize, u64) {
    let files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.path().extension().is_some_and(|x| x == "seg"))
        .collect();
    let used: u64 = files
        .iter()
        .map(|e| {
            fs::read(e.path())
                .unwrap()
                .iter()
                .rposition(|&b| b != 0)
                .map_or(0, |i| i as u64 + 1)
        })
        .sum();
    (files.len(), used)
}

#[test]
fn compaction_keeps_the_live_state_and_drops_the_rest() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    write_history(&db);
    let (files_before, bytes_before) = segment_bytes(dir.path());
    assert!(files_before >= 4, "{files_before} segments");

    let stats = db.compact().unwrap();
    assert_eq!(
        stats.nodes_expired, 1,
        "node 30 is three days stale: {stats:?}"
    );
    assert_eq!(db.node(&id(30)), None);
    let expected = snapshot(&db, 40);
    assert_eq!(
        expected.len(),
        15 + 1,
        "15 live nodes and the ping-only id 31"
    );
    assert!(stats.records_read >= 300, "{stats:?}");
    // 15 nodes x (record, pong, fails) + one ping.
    assert_eq!(stats.records_written, 15 * 3 + 1, "{stats:?}");
    assert!(stats.bytes_written < stats.bytes_read / 5, "{stats:?}");
    let (_, bytes_after) = segment_bytes(dir.path());
    assert!(
        bytes_after < bytes_before / 3,
        "{bytes_before} -> {bytes_after}"
    );
    assert!(!dir.path().join("archive").exists());

    // The compacted log replays to the same state, with no problem, and takes new writes.
    db.update_find_fails(&id(6), 99).unwrap();
    let expected = snapshot(&db, 40);
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert!(
        db.recovery().problems.is_empty(),
        "{:?}",
        db.recovery().problems
    );
    assert_eq!(snapshot(&db, 40), expected);
    // Compacting again is harmless.
    db.compact().unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(snapshot(&db, 40), expected);
}

#[test]
fn keep_history_moves_replaced_segments_to_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        keep_history: true,
        ..opts()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts.clone()).unwrap();
    write_history(&db);
    let stats = db.compact().unwrap();
    let archived: Vec<_> = fs::read_dir(dir.path().join("archive")).unwrap().collect();
    assert_eq!(archived.len(), stats.segments_read);
    let expected = snapshot(&db, 40);
    db.close().unwrap();
    // The archive does not take part in the live state.
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    assert_eq!(snapshot(&db, 40), expected);
}

#[test]
fn automatic_compaction_bounds_the_log() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: 16 * 1024,
        compact_dead_ratio: 0.5,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts.clone()).unwrap();
    let far_future = SystemTime::now() + Duration::from_secs(365 * 86_400);
    for i in 0..5000u64 {
        // Ids 1..=10: id 0 is this node, whose record compaction's expiration always drops.
        db.update_node(&node(1 + i % 10, i as u16)).unwrap();
        db.update_last_pong(&id(1 + i % 10), far_future).unwrap();
    }
    // 10000 records of ~100 bytes were written: about 1 MB without compaction.
    let expected = snapshot(&db, 12);
    assert_eq!(expected.len(), 10);
    db.close().unwrap();
    let (_, bytes) = segment_bytes(dir.path());
    assert!(bytes < 200 * 1024, "log grew to {bytes} bytes");
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    assert_eq!(snapshot(&db, 12), expected);
}

#[test]
fn writers_keep_writing_during_a_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(
        NodeDb::open_with(
            dir.path(),
            1,
            id(0),
            Options {
                expiration: Duration::MAX,
                ..opts()
            },
        )
        .unwrap(),
    );
    for n in 0..2000 {
        db.update_last_ping(&id(n % 50), UNIX_EPOCH + Duration::from_secs(n))
            .unwrap();
    }
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for n in 0..3000u64 {
                db.update_find_fails(&id(100 + n % 100), n as u32).unwrap();
            }
        })
    };
    for _ in 0..5 {
        db.compact().unwrap();
    }
    writer.join().unwrap();
    let expected = snapshot(&db, 200);
    for n in 100..200 {
        assert_eq!(db.find_fails(&id(n)), (2900 + n - 100) as u32);
    }
    Arc::into_inner(db).unwrap().close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(snapshot(&db, 200), expected);
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_dir() {
            copy_dir(&entry.path(), &to.join(entry.file_name()));
        } else if entry.file_name() != "LOCK" {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

const COMPACTION_STEPS: [&str; 9] = [
    "compact.create",
    "compact.scan",
    "compact.write",
    "compact.sync_log",
    "compact.number",
    "compact.fsync",
    "compact.rename",
    "compact.dirsync",
    "compact.remove",
];

/// Copies the directory as it is on disk at each compaction step: exactly what a crash of the
/// process at that moment would leave (the page cache survives a process crash).
#[test]
fn a_crash_at_any_compaction_step_leaves_the_old_or_the_new_state() {
    let dir = tempfile::tempdir().unwrap();
    let crashes = tempfile::tempdir().unwrap();
    let taken: Arc<Mutex<Vec<(String, PathBuf)>>> = Arc::default();
    let hook = {
        let (dir, crashes, taken) = (
            dir.path().to_path_buf(),
            crashes.path().to_path_buf(),
            Arc::clone(&taken),
        );
        FailPoints::new(move |step| {
            if step.starts_with("compact.") {
                let mut taken = taken.lock().unwrap();
                let copy = crashes.join(taken.len().to_string());
                copy_dir(&dir, &copy);
                taken.push((step.to_string(), copy));
            }
            Ok(())
        })
    };
    let with_hook = Options {
        fail_points: hook,
        keep_history: false,
        ..opts()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), with_hook).unwrap();
    write_history(&db);
    db.expire_nodes().unwrap();
    let expected = snapshot(&db, 40);
    db.compact().unwrap();
    assert_eq!(snapshot(&db, 40), expected);
    drop(db);

    let taken = taken.lock().unwrap();
    let steps: Vec<&str> = taken.iter().map(|(s, _)| s.as_str()).collect();
    for step in COMPACTION_STEPS {
        assert!(
            steps.contains(&step),
            "step {step} never reached: {steps:?}"
        );
    }
    for (step, copy) in taken.iter() {
        let db = NodeDb::open_with(copy, 1, id(0), opts()).unwrap();
        assert_eq!(snapshot(&db, 40), expected, "crash at {step}");
        assert!(
            db.recovery().problems.is_empty(),
            "crash at {step}: {:?}",
            db.recovery().problems
        );
        // And the recovered directory takes writes and reopens the same again.
        db.update_find_fails(&id(99), 1).unwrap();
        db.close().unwrap();
        let db = NodeDb::open_with(copy, 1, id(0), opts()).unwrap();
        let mut with_write = expected.clone();
        with_write.insert(99, (None, None, None, 1));
        assert_eq!(
            snapshot(&db, 100),
            with_write,
            "crash at {step}, after a write"
        );
    }
}

/// Compaction restates the database's own index, read after the seal, so writes made during
/// it (after the sealed part) may be restated or left out of the compacted segment: each step
/// here first writes (overwrites, deletes, new ids: outside the writers' lock, as a writer
/// thread would), then copies the directory as a crash would leave it. Every copy must open to
/// the state of every write made before it, whether the compaction had read the index before
/// those writes (`compact.scan` comes before the reading) or after.
#[test]
fn a_crash_at_any_compaction_step_with_writes_during_it_leaves_every_write() {
    let dir = tempfile::tempdir().unwrap();
    let crashes = tempfile::tempdir().unwrap();
    type Taken = Vec<(String, PathBuf, Snapshot)>;
    let taken: Arc<Mutex<Taken>> = Arc::default();
    let db_slot: Arc<Mutex<std::sync::Weak<NodeDb>>> = Arc::default();
    let hook = {
        let (dir, crashes, taken, db_slot) = (
            dir.path().to_path_buf(),
            crashes.path().to_path_buf(),
            Arc::clone(&taken),
            Arc::clone(&db_slot),
        );
        FailPoints::new(move |step| {
            // `compact.create` is also checked under the writers' lock, before the seal.
            if !step.starts_with("compact.") || step == "compact.create" {
                return Ok(());
            }
            let db = db_slot
                .lock()
                .unwrap()
                .upgrade()
                .expect("the database is open");
            let mut taken = taken.lock().unwrap();
            let round = taken.len() as u64;
            // An overwrite, a delete, a new id, and a node deleted and written again.
            let now = SystemTime::now();
            db.update_find_fails(&id(6 + round % 10), 1000 + round as u32)
                .unwrap();
            db.delete_node(&id(7 + round % 10)).unwrap();
            db.update_node(&node(40 + round, 7)).unwrap();
            db.update_last_pong(&id(40 + round), now).unwrap();
            db.delete_node(&id(12)).unwrap();
            db.update_last_ping(&id(12), now).unwrap();
            let copy = crashes.join(round.to_string());
            copy_dir(&dir, &copy);
            taken.push((step.to_string(), copy, snapshot(&db, 60)));
            Ok(())
        })
    };
    let db = Arc::new(
        NodeDb::open_with(
            dir.path(),
            1,
            id(0),
            Options {
                fail_points: hook,
                ..opts()
            },
        )
        .unwrap(),
    );
    *db_slot.lock().unwrap() = Arc::downgrade(&db);
    write_history(&db);
    db.expire_nodes().unwrap();
    db.compact().unwrap();
    let expected = snapshot(&db, 60);
    *db_slot.lock().unwrap() = std::sync::Weak::new();
    Arc::into_inner(db).unwrap().close().unwrap();
    let reopened = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(snapshot(&reopened, 60), expected);
    assert!(reopened.recovery().problems.is_empty());
    drop(reopened);

    let taken = taken.lock().unwrap();
    let steps: Vec<&str> = taken.iter().map(|(s, ..)| s.as_str()).collect();
    for step in &COMPACTION_STEPS[1..] {
        assert!(steps.contains(step), "step {step} never reached: {steps:?}");
    }
    for (step, copy, expected) in taken.iter() {
        let db = NodeDb::open_with(copy, 1, id(0), opts()).unwrap();
        assert_eq!(&snapshot(&db, 60), expected, "crash at {step}");
        assert!(
            db.recovery().problems.is_empty(),
            "crash at {step}: {:?}",
            db.recovery().problems
        );
    }
}

#[test]
fn an_io_error_at_any_compaction_step_fails_the_compaction_and_loses_nothing() {
    for failing in COMPACTION_STEPS {
        let dir = tempfile::tempdir().unwrap();
        let hook = FailPoints::new(move |step| {
            if step == failing {
                Err(io::Error::other(format!("injected failure at {step}")))
            } else {
                Ok(())
            }
        });
        let db = NodeDb::open_with(
            dir.path(),
            1,
            id(0),
            Options {
                fail_points: hook,
                ..opts()
            },
        )
        .unwrap();
        write_history(&db);
        db.expire_nodes().unwrap();
        let expected = snapshot(&db, 40);
        let err = db.compact().expect_err(failing);
        assert!(
            err.to_string().contains("injected failure"),
            "{failing}: {err}"
        );
        assert_eq!(
            snapshot(&db, 40),
            expected,
            "{failing}: state changed in memory"
        );
        // The database goes on working.
        db.update_find_fails(&id(98), 2).unwrap();
        db.close().unwrap();
        let leftovers: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "{failing}: left {leftovers:?}");
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
        let mut with_write = expected.clone();
        with_write.insert(98, (None, None, None, 2));
        assert_eq!(
            snapshot(&db, 100),
            with_write,
            "{failing}: state after reopen"
        );
        assert!(
            db.recovery().problems.is_empty(),
            "{failing}: {:?}",
            db.recovery().problems
        );
    }
}

/// Compaction reports the damage it replays and keeps it visible (docs/DESIGN.md, "Correctness
/// rules of the log" and "Compaction"): damage that appeared since open (bit rot in a sealed
/// segment) is returned in `CompactStats::problems` with file and offset, and the damaged
/// segment is archived, not deleted. A compaction (`compact::rewrite`) that ignored its
/// replay's problems would neither log nor return the damage, would delete the damaged
/// segment, and the compacted segment's contiguous sequence numbers would hide the loss from
/// every later open and `verify`.
#[test]
fn compaction_does_not_launder_damage() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    let now = SystemTime::now();
    for n in 1..=100 {
        db.update_node(&node(n, 30303)).unwrap();
        db.update_last_pong(&id(n), now).unwrap();
    }
    assert_eq!(db.len(), 100);
    // Bit rot in the first (sealed) segment while the database runs: one payload byte of the
    // third node record (an IPv4 node frame is 104 bytes, a pong 96).
    let first = dir.path().join("0000000000000001.seg");
    let mut bytes = std::fs::read(&first).unwrap();
    bytes[64 + 2 * 200 + 40] ^= 0x01;
    std::fs::write(&first, &bytes).unwrap();
    let compacted = db.compact().unwrap();
    db.close().unwrap();
    // The damage is reported by the compaction...
    assert_eq!(compacted.problems.len(), 1, "{compacted:?}");
    assert_eq!(compacted.problems[0].path, first);
    assert_eq!(compacted.problems[0].offset, 64 + 2 * 200);
    // ...and the damaged segment is kept in the archive (without keep_history), where verify
    // still sees it, instead of vanishing with the loss stitched over.
    let archived = dir.path().join("archive").join("0000000000000001.seg");
    assert_eq!(
        std::fs::read(&archived).unwrap(),
        bytes,
        "damaged segment not archived intact"
    );
    // The record that rotted on disk after the open is still in the index, which the
    // compaction restates: the node survives. The loss of its frame is recorded all the same.
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(db.len(), 100);
    assert_eq!(db.losses().len(), 1, "{:?}", db.losses());
    let report = peerlog::inspect::verify(dir.path(), &|_, _| {}).unwrap();
    assert!(!report.is_intact(false), "verify no longer sees the damage");
}

/// A node is written (its record), then its first pong arrives a moment later. A compaction
/// in between expires stale nodes first; it must not take a node that has simply not been
/// answered yet. (Before format 2 such a node was expired at once: 4,000 nodes written while
/// another thread compacted five times lost some on XFS and btrfs.)
#[test]
fn a_compaction_between_a_node_and_its_first_pong_drops_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap());
    const NODES: u64 = 4000;
    let writer = {
        let db = Arc::clone(&db);
        std::thread::spawn(move || {
            for n in 1..=NODES {
                db.update_node(&node(n, 30303)).unwrap();
                db.update_last_pong(&id(n), SystemTime::now()).unwrap();
            }
        })
    };
    let mut compactions = 0;
    while compactions < 5 || !writer.is_finished() {
        db.compact().unwrap();
        compactions += 1;
    }
    writer.join().unwrap();
    assert_eq!(
        db.len() as u64,
        NODES,
        "{compactions} compactions dropped nodes"
    );
    for n in 1..=NODES {
        assert_eq!(db.node(&id(n)), Some(node(n, 30303)), "node {n} lost");
    }
    let db = Arc::into_inner(db).unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(db.len() as u64, NODES);
}

/// A compaction that cannot create its file (a read-only directory: `compact.create` stands
/// for the creation) fails before it changes anything: no node is expired, no event written
/// (issue 19, item 6: it had written the expiry of every stale node before it failed).
#[test]
fn a_compaction_that_cannot_create_its_file_expires_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let hook = FailPoints::new(|step| {
        if step == "compact.create" {
            Err(io::Error::from(io::ErrorKind::PermissionDenied))
        } else {
            Ok(())
        }
    });
    let options = Options {
        fail_points: hook,
        ..opts()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), options).unwrap();
    write_history(&db);
    let before = snapshot(&db, 40);
    let events = || {
        peerlog::inspect::export(dir.path(), &peerlog::inspect::no_progress)
            .unwrap()
            .len()
    };
    let events_before = events();
    let err = db
        .compact()
        .expect_err("a compaction that cannot create its file");
    assert!(err.to_string().contains("denied"), "{err}");
    assert_eq!(
        snapshot(&db, 40),
        before,
        "nodes expired by a failed compaction"
    );
    assert_eq!(
        events(),
        events_before,
        "events written by a failed compaction"
    );
    // Nothing left behind, and the database goes on.
    db.update_find_fails(&id(98), 2).unwrap();
    db.close().unwrap();
    let tmp = fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            e.as_ref()
                .unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with(".tmp")
        })
        .count();
    assert_eq!(tmp, 0, "a temporary file left behind");
}

/// A compaction that keeps history never replaces a file already in `archive/` under the name
/// of a segment it archives (a damaged file `verify` reports, say): the segment gets a suffix
/// (`.1`), as `salvage` gives one in `damaged/`, and is read as archived history all the same
/// (issue 19, item 7: the file there was silently replaced).
#[test]
fn keeping_history_never_replaces_a_file_in_the_archive() {
    let dir = tempfile::tempdir().unwrap();
    let options = Options {
        keep_history: true,
        ..opts()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), options).unwrap();
    write_history(&db);
    db.expire_nodes().unwrap();
    let mut segments: Vec<PathBuf> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "seg"))
        .collect();
    segments.sort();
    let first = segments[0].clone();
    let archive = dir.path().join("archive");
    fs::create_dir_all(&archive).unwrap();
    let junk = archive.join(first.file_name().unwrap());
    fs::write(&junk, b"an operator's file, not to be lost").unwrap();
    let events = peerlog::inspect::export(dir.path(), &peerlog::inspect::no_progress)
        .unwrap()
        .len();
    db.compact().unwrap();
    db.close().unwrap();
    assert!(
        fs::read(&junk).unwrap() == b"an operator's file, not to be lost",
        "the file in archive/ was replaced"
    );
    let mut suffixed = junk.clone().into_os_string();
    suffixed.push(".1");
    assert!(
        std::path::Path::new(&suffixed).exists(),
        "the archived segment is not at {suffixed:?}"
    );
    // Once the damaged file is moved aside, the history holds every event, the suffixed
    // segment's included.
    let salvaged = peerlog::inspect::salvage(dir.path()).unwrap();
    assert_eq!(salvaged.moved.len(), 1, "{salvaged:?}");
    let mut history = 0;
    peerlog::inspect::export_with_archive_each(dir.path(), &peerlog::inspect::no_progress, |_| {
        history += 1;
        std::ops::ControlFlow::Continue(())
    })
    .unwrap();
    assert!(
        history >= events,
        "{history} events in the history, {events} before"
    );
}

#[test]
fn compaction_counts_the_ip_slots_it_expires() {
    let temp = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(temp.path(), 5, NodeId([0; 64]), opts()).unwrap();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(2 * 86_400);
    for n in 1..=3 {
        db.update_node(&node(n, 30303)).unwrap();
        // Alive now by its id, silent for two days at two IPs it used to have: the node stays,
        // its slots at those IPs expire.
        db.update_last_pong(&id(n), now).unwrap();
        for last in [7, 8] {
            let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, last));
            db.update_last_pong_from(&id(n), ip, old).unwrap();
        }
    }
    let stats = db.compact().unwrap();
    assert_eq!(stats.nodes_expired, 0);
    assert_eq!(stats.ips_expired, 6);
    assert_eq!(db.len(), 3);
    // Nothing left to expire: the next compaction counts none.
    assert_eq!(db.compact().unwrap().ips_expired, 0);
    db.close().unwrap();
}

/// A compaction restates the index as it reads it, writes made during it included, at sequence
/// numbers below the sealed part's end: when those writes leave more records to restate than
/// there are such numbers (three records sealed, then each of their ids gains three fields
/// before the index is read), it gives up, publishing nothing and losing nothing, and the next
/// compaction compacts.
#[test]
fn a_compaction_outrun_by_writes_publishes_nothing_and_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db_slot: Arc<Mutex<std::sync::Weak<NodeDb>>> = Arc::default();
    let armed = Arc::new(Mutex::new(true));
    let hook = {
        let (db_slot, armed) = (Arc::clone(&db_slot), Arc::clone(&armed));
        FailPoints::new(move |step| {
            if step == "compact.scan" && std::mem::take(&mut *armed.lock().unwrap()) {
                let db = db_slot.lock().unwrap().upgrade().expect("open");
                let now = SystemTime::now();
                for n in 1..=3 {
                    db.update_last_ping(&id(n), now).unwrap();
                    db.update_last_pong(&id(n), now).unwrap();
                    db.update_find_fails(&id(n), 2).unwrap();
                }
            }
            Ok(())
        })
    };
    let options = Options {
        fail_points: hook,
        expiration: Duration::MAX,
        ..opts()
    };
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, id(0), options).unwrap());
    *db_slot.lock().unwrap() = Arc::downgrade(&db);
    for n in 1..=3 {
        db.update_node(&node(n, 30303)).unwrap();
    }
    let stats = db.compact().unwrap();
    assert_eq!(
        (stats.segments_read, stats.records_written),
        (0, 0),
        "{stats:?}"
    );
    let expected = snapshot(&db, 10);
    assert_eq!(expected.len(), 3);
    let leftovers: Vec<_> = fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "left {leftovers:?}");
    // The next compaction (the writes are sealed now) compacts.
    let stats = db.compact().unwrap();
    assert_eq!(stats.records_written, 12, "{stats:?}");
    assert_eq!(snapshot(&db, 10), expected);
    *db_slot.lock().unwrap() = std::sync::Weak::new();
    Arc::into_inner(db).unwrap().close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(snapshot(&db, 10), expected);
    assert!(
        db.recovery().problems.is_empty(),
        "{:?}",
        db.recovery().problems
    );
}
