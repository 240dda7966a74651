//! Reading a database while its owner writes to it, without its lock, as `peerlog::inspect`
//! and the read-only `peerlog` commands do: a replay racing appends or compactions finds every
//! record and at most a torn tail, never damage or lost records that are not there.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peerlog::testing::{list_dir, replay, ReplayPlan};
use peerlog::{Damage, DamageKind, NodeDb, Options};

mod common;
use common::{at, id, node};

const VERSION: u64 = 9;

/// A reader racing the owner's compactions never reports records lost (docs/DESIGN.md,
/// "Reading a live database"): a segment that vanishes between `read_dir` and reading its
/// header makes `journal::dir::list_dir` fail with NotFound, which readers retry. Were such a
/// segment skipped as absent, a compaction that renames its output into place and removes the
/// segments it replaced in that window would leave the listing with neither the compacted
/// segment (not there at `read_dir` time) nor the replaced ones (gone at header time): the
/// reader would replay only the active segment, report sequence numbers 1..=S as lost and show
/// an empty database, and `inspect::with_listing`, which retries only on errors, would not
/// retry.
#[test]
fn reader_racing_compaction_never_sees_lost_records() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts).unwrap();
    db.update_node(&node(1)).unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let reader = {
        let (stop, path) = (Arc::clone(&stop), dir.path().to_path_buf());
        std::thread::spawn(move || {
            let mut reads = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let Ok(listing) =
                    peerlog::testing::list_dir(&path, peerlog::testing::Listing::Strict)
                else {
                    continue;
                };
                let plan = peerlog::testing::ReplayPlan::new(listing.segments);
                let mut saw_node = false;
                let Ok(summary) = peerlog::testing::replay(&plan, |_, record| {
                    saw_node |= matches!(record.event, peerlog::Event::NodeUpdated(_));
                }) else {
                    continue; // a file vanished during replay: an error the caller retries
                };
                reads += 1;
                if let Some(p) = summary
                    .problems
                    .iter()
                    .find(|p| p.kind == DamageKind::Missing)
                {
                    return Err(format!(
                        "after {reads} reads: {p} (node record seen: {saw_node})"
                    ));
                }
            }
            Ok(reads)
        })
    };
    // Where this race exists it shows within 0.1 s; 3 s keeps the suite quick.
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    let now = SystemTime::now();
    while std::time::Instant::now() < deadline && !reader.is_finished() {
        for i in 0..20 {
            db.update_last_ping(&id(2), now + Duration::from_secs(i))
                .unwrap();
        }
        db.compact().unwrap();
    }
    stop.store(true, Ordering::Relaxed);
    let outcome = reader.join().unwrap();
    assert!(outcome.is_ok(), "{}", outcome.unwrap_err());
}

/// A replay of a log its owner is appending to, as the read-only `peerlog` commands make,
/// finds at most an append in progress at the end (a torn tail), never damage: a frame read
/// while it was being written, followed by records written after it, is read again before it
/// is called damage. (cli/tests/cli.rs runs the commands themselves against a live writer.)
#[test]
fn a_replay_racing_appends_reports_no_damage() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    // No automatic compaction: it removes segments under the reader (which the `peerlog`
    // commands handle by listing again; not what this test is about).
    let opts = Options {
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(&path, VERSION, id(u64::MAX), opts).unwrap());
    // Bursts and pauses, so that the log stays a few MiB.
    let (stop, written, writer) = spawn_writer(&db, u64::MAX, (16, 50), |db, i| {
        db.update_last_ping(&id(i % 100), at(i)).unwrap()
    });
    // A second at least, and on until there are enough of both to judge by (a loaded machine
    // gets there later), for a minute at most.
    let started = std::time::Instant::now();
    let mut replays = 0;
    let enough = |replays: i32| replays > 10 && written.load(Ordering::Relaxed) > 1000;
    while started.elapsed() < Duration::from_millis(1000)
        || (!enough(replays) && started.elapsed() < Duration::from_secs(60))
    {
        let plan = ReplayPlan::new(
            list_dir(&path, peerlog::testing::Listing::Strict)
                .unwrap()
                .segments,
        );
        let summary = replay(&plan, |_, _| {}).unwrap();
        let unexpected: Vec<&Damage> = summary
            .problems
            .iter()
            .filter(|p| p.kind != DamageKind::TornTail)
            .collect();
        assert!(unexpected.is_empty(), "replay {replays}: {unexpected:?}");
        replays += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(
        writes > 1000 && replays > 10,
        "{writes} writes, {replays} replays"
    );
}

/// `inspect::state` (what `stats`, `dump` and `export` of the state read) beside a writer that
/// seals a segment every few writes: the sealed segments are read in place and only the last
/// one copied, so a segment sealed between the listing and its read must still be read whole.
/// Every read finds every node written before it began, and no damage but an append in
/// progress at the end.
#[test]
fn the_state_read_beside_a_writer_sealing_segments_holds_every_earlier_write() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let opts = Options {
        segment_size: peerlog::MIN_SEGMENT_SIZE,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(&path, VERSION, id(u64::MAX), opts).unwrap());
    let (stop, written, writer) = spawn_writer(&db, 200_000, (64, 100), |db, i| {
        db.update_node(&node(i)).unwrap()
    });
    let started = std::time::Instant::now();
    let (mut reads, mut segments_seen) = (0, 0);
    while started.elapsed() < Duration::from_millis(1500)
        || (reads < 10 && started.elapsed() < Duration::from_secs(60))
    {
        let before = written.load(Ordering::Relaxed);
        let state = peerlog::inspect::state(&path, &peerlog::inspect::no_progress).unwrap();
        let unexpected: Vec<&Damage> = state
            .recovery
            .problems
            .iter()
            .filter(|p| p.kind != DamageKind::TornTail)
            .collect();
        assert!(unexpected.is_empty(), "read {reads}: {unexpected:?}");
        assert!(
            state.peers.len() as u64 >= before,
            "read {reads}: {} nodes, {before} written before it began",
            state.peers.len()
        );
        segments_seen = segments_seen.max(state.segments.len());
        reads += 1;
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(
        reads >= 10 && segments_seen > 2,
        "{writes} writes, {reads} reads, at most {segments_seen} segments seen"
    );
}

/// Starts a thread making writes `write(db, 0)`, `write(db, 1)`, ... until it is stopped or
/// has made `most`, pausing `pause.1` µs after every `pause.0`; returns the stop flag, the
/// count of writes made so far, and the thread (which returns that count).
fn spawn_writer(
    db: &Arc<NodeDb>,
    most: u64,
    pause: (u64, u64),
    write: impl Fn(&NodeDb, u64) + Send + 'static,
) -> (
    Arc<AtomicBool>,
    Arc<AtomicU64>,
    std::thread::JoinHandle<u64>,
) {
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let (db, stop_seen, count) = (Arc::clone(db), Arc::clone(&stop), Arc::clone(&written));
    let writer = std::thread::spawn(move || {
        let mut i = 0u64;
        while !stop_seen.load(Ordering::Relaxed) && i < most {
            write(&db, i);
            i += 1;
            count.store(i, Ordering::Relaxed);
            if i.is_multiple_of(pause.0) {
                std::thread::sleep(Duration::from_micros(pause.1));
            }
        }
        i
    });
    (stop, written, writer)
}
