//! Group commit under many writers: every `sync()` that returns `Ok` is covered by an fsync
//! that started after its write, none waits forever, the writers share fsyncs, and once an
//! fsync fails no `sync()` reports a later write as durable.
//!
//! What an fsync covers is seen through the fail-point hook, which runs just before each
//! fsync of the log: it records, for every writer, how many writes that writer had begun.
//! An fsync covers at most the writes appended before it started, and the hook runs after
//! that start, so its record may count a write too many but never misses a covered one: a
//! `sync()` that returns `Ok` for a write the hook never saw was not covered by any fsync.

use std::io;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant};

use peerlog::testing::FailPoints;
use peerlog::{Durability, Error, NodeDb, Options};

mod common;
use common::{id, node};

const WRITERS: usize = 16;
/// Long enough that the periodic pass never runs during a test: a caller left waiting is not
/// rescued by it.
const TICK: Duration = Duration::from_secs(3600);

/// What the fail-point hook saw.
#[derive(Default)]
struct Seen {
    /// Per writer: the writes it had begun when the last successful fsync started.
    covered: [AtomicU64; WRITERS],
    /// Per writer: the writes it has begun (set before each write).
    begun: [AtomicU64; WRITERS],
    /// Per writer: it has ended (by an error, or told to stop).
    ended: [AtomicBool; WRITERS],
    fsyncs: AtomicUsize,
    /// Fail every fsync from now on.
    broken: AtomicBool,
}

fn open(dir: &std::path::Path, seen: &Arc<Seen>) -> NodeDb {
    let hook = Arc::clone(seen);
    let opts = Options {
        durability: Durability::GroupCommit { max_delay: TICK },
        fail_points: FailPoints::new(move |step| {
            if step != "log.fsync" {
                return Ok(());
            }
            if hook.broken.load(Ordering::SeqCst) {
                return Err(io::Error::other("injected fsync failure"));
            }
            hook.fsyncs.fetch_add(1, Ordering::SeqCst);
            for (covered, begun) in hook.covered.iter().zip(&hook.begun) {
                covered.fetch_max(begun.load(Ordering::SeqCst), Ordering::SeqCst);
            }
            Ok(())
        }),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir, 1, id(u64::MAX), opts).unwrap();
    for t in 0..WRITERS {
        db.update_node(&node(t as u64)).unwrap();
    }
    db
}

/// Writer `t`: `write + sync()` until `stop` (or an error), checking each `Ok` against what
/// the hook saw. Returns how many syncs succeeded and the error that ended it, if any.
fn writer(db: &NodeDb, seen: &Seen, t: usize, stop: &AtomicBool) -> (u64, Option<Error>) {
    let mut n = 0;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        seen.begun[t].store(n, Ordering::SeqCst);
        let outcome = db
            .update_find_fails(&id(t as u64), n as u32)
            .and_then(|()| db.sync());
        if let Err(e) = outcome {
            seen.ended[t].store(true, Ordering::SeqCst);
            return (n - 1, Some(e));
        }
        let covered = seen.covered[t].load(Ordering::SeqCst);
        assert!(
            covered >= n,
            "writer {t}: sync() of write {n} returned Ok, but no fsync started after it (latest covered write {covered})"
        );
    }
    (n, None)
}

/// Waits until `done` says so, looking every 10 ms, for at most a minute (a loaded machine
/// gets there late, never by a deadline).
fn wait_until(done: impl Fn() -> bool) {
    let started = Instant::now();
    while !done() && started.elapsed() < Duration::from_secs(60) {
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// Writes begun by all writers.
fn begun(seen: &Seen) -> u64 {
    seen.begun.iter().map(|b| b.load(Ordering::SeqCst)).sum()
}

/// Runs the writers on `db` for at least `run_for` and until `enough` says so, then runs
/// `before_stop` and sets `stop`; panics if one of them does not finish within a minute after
/// that (a caller nobody wakes).
fn run_writers(
    db: &Arc<NodeDb>,
    seen: &Arc<Seen>,
    run_for: Duration,
    enough: impl Fn() -> bool,
    before_stop: impl FnOnce(),
) -> Vec<(u64, Option<Error>)> {
    let stop = Arc::new(AtomicBool::new(false));
    // Each writer holds a sender until it ends, even by a panic: the channel disconnects when
    // all have ended.
    let (alive, ended) = mpsc::channel::<()>();
    let handles: Vec<_> = (0..WRITERS)
        .map(|t| {
            let (db, seen, stop, alive) = (
                Arc::clone(db),
                Arc::clone(seen),
                Arc::clone(&stop),
                alive.clone(),
            );
            std::thread::spawn(move || {
                let _alive = alive;
                writer(&db, &seen, t, &stop)
            })
        })
        .collect();
    drop(alive);
    std::thread::sleep(run_for);
    wait_until(enough);
    before_stop();
    stop.store(true, Ordering::SeqCst);
    assert!(
        matches!(
            ended.recv_timeout(Duration::from_secs(60)),
            Err(mpsc::RecvTimeoutError::Disconnected)
        ),
        "a writer is stuck in sync(): a waiter was never woken"
    );
    handles.into_iter().map(|h| h.join().unwrap()).collect()
}

#[test]
fn sixteen_writers_share_fsyncs_and_each_ok_is_covered() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let db = Arc::new(open(dir.path(), &seen));
    // Enough syncs to judge the sharing by, however slow the machine.
    let outcomes = run_writers(
        &db,
        &seen,
        Duration::from_millis(1500),
        || begun(&seen) >= 16 * 40,
        || {},
    );
    for (t, (_, error)) in outcomes.iter().enumerate() {
        assert!(error.is_none(), "writer {t} failed: {error:?}");
    }
    let syncs: u64 = outcomes.iter().map(|(n, _)| n).sum();
    let fsyncs = seen.fsyncs.load(Ordering::SeqCst) as u64;
    assert!(syncs >= 16 * 20, "only {syncs} syncs: too slow to judge");
    assert!(
        fsyncs * 4 <= syncs,
        "{fsyncs} fsyncs for {syncs} sync() calls of {WRITERS} threads: not shared"
    );

    // The batch the syncer expects is gone: a lone caller must still be served promptly,
    // without the periodic pass (an hour away).
    db.update_find_fails(&id(0), 1).unwrap();
    let started = Instant::now();
    db.sync().unwrap();
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "a lone sync() waited {:?} for a batch that never came",
        started.elapsed()
    );
}

#[test]
fn after_a_failed_fsync_no_waiter_is_told_its_write_is_durable() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Seen::default());
    let db = Arc::new(open(dir.path(), &seen));
    // The writers check each Ok against the hook; once fsyncs fail, the hook covers nothing
    // more, so an Ok for a later write would trip that check.
    // Every writer has written before fsyncs fail, and writes again (or fails) after.
    let outcomes = run_writers(
        &db,
        &seen,
        Duration::from_millis(300),
        || begun(&seen) >= 16,
        || {
            let at_break: Vec<u64> = seen
                .begun
                .iter()
                .map(|b| b.load(Ordering::SeqCst))
                .collect();
            seen.broken.store(true, Ordering::SeqCst);
            // Each has begun a write since, or already met the failure.
            wait_until(|| {
                (0..WRITERS).all(|t| {
                    seen.begun[t].load(Ordering::SeqCst) > at_break[t]
                        || seen.ended[t].load(Ordering::SeqCst)
                })
            });
        },
    );
    for (t, (_, error)) in outcomes.iter().enumerate() {
        assert!(
            matches!(error, Some(Error::Poisoned(_))),
            "writer {t} ended with {error:?}, not a poisoned database"
        );
    }
    assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
}

/// A database whose every fsync of the log runs `hook` first (counted in `fsyncs`), with a
/// periodic pass every `max_delay`.
fn open_with_hook(
    dir: &std::path::Path,
    max_delay: Duration,
    fsyncs: &Arc<AtomicUsize>,
    hook: impl Fn() -> io::Result<()> + Send + Sync + 'static,
) -> NodeDb {
    let counter = Arc::clone(fsyncs);
    let opts = Options {
        durability: Durability::GroupCommit { max_delay },
        fail_points: FailPoints::new(move |step| {
            if step != "log.fsync" {
                return Ok(());
            }
            counter.fetch_add(1, Ordering::SeqCst);
            hook()
        }),
        ..Options::default()
    };
    NodeDb::open_with(dir, 1, id(u64::MAX), opts).unwrap()
}

/// Each of `threads` threads writes once and calls `sync()`, all at about the same time;
/// returns their outcomes, panicking if one of them is still waiting after a minute.
fn write_and_sync_at_once(db: &Arc<NodeDb>, threads: u64) -> Vec<Result<(), Error>> {
    let (done, outcomes) = mpsc::channel();
    let start = Arc::new(std::sync::Barrier::new(threads as usize));
    for t in 0..threads {
        let (db, done, start) = (Arc::clone(db), done.clone(), Arc::clone(&start));
        std::thread::spawn(move || {
            start.wait();
            let outcome = db.update_find_fails(&id(t), 1).and_then(|()| db.sync());
            done.send(outcome).unwrap();
        });
    }
    (0..threads)
        .map(|_| {
            outcomes
                .recv_timeout(Duration::from_secs(60))
                .expect("a sync() caller was never released")
        })
        .collect()
}

/// The callers queued behind a slow fsync are all released: those it covers, and those that
/// wrote after it started (one of them leads the next fsync), with fsyncs shared.
#[test]
fn every_caller_queued_behind_a_slow_fsync_is_released() {
    let dir = tempfile::tempdir().unwrap();
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let db = Arc::new(open_with_hook(dir.path(), TICK, &fsyncs, || {
        std::thread::sleep(Duration::from_millis(50));
        Ok(())
    }));
    for round in 0..3 {
        let outcomes = write_and_sync_at_once(&db, WRITERS as u64);
        for outcome in outcomes {
            outcome.unwrap_or_else(|e| panic!("round {round}: {e}"));
        }
    }
    let fsyncs = fsyncs.load(Ordering::SeqCst);
    assert!(
        fsyncs < 3 * WRITERS,
        "{fsyncs} fsyncs for {} sync() calls: none shared",
        3 * WRITERS
    );
}

/// A failed fsync reaches every caller waiting for it, as `Error::Poisoned`, and none of them
/// retries it (a retried fsync can report success for data that was lost).
#[test]
fn a_failed_fsync_reaches_every_caller_waiting_for_it() {
    let dir = tempfile::tempdir().unwrap();
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let db = Arc::new(open_with_hook(dir.path(), TICK, &fsyncs, || {
        // Slow, so that the other callers queue up behind it.
        std::thread::sleep(Duration::from_millis(200));
        Err(io::Error::other("injected fsync failure"))
    }));
    let outcomes = write_and_sync_at_once(&db, WRITERS as u64);
    for (t, outcome) in outcomes.iter().enumerate() {
        assert!(
            matches!(outcome, Err(Error::Poisoned(reason)) if reason.contains("injected")),
            "caller {t}: {outcome:?}"
        );
    }
    assert_eq!(
        fsyncs.load(Ordering::SeqCst),
        1,
        "a failed fsync was retried"
    );
    assert!(matches!(db.sync(), Err(Error::Poisoned(_))));
}

/// Writes nobody calls `sync()` for are made durable by the periodic pass, also after
/// `sync()` callers led fsyncs of their own and stopped calling.
#[test]
fn writes_nobody_syncs_are_synced_within_the_delay() {
    let dir = tempfile::tempdir().unwrap();
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let db = Arc::new(open_with_hook(
        dir.path(),
        Duration::from_millis(20),
        &fsyncs,
        || Ok(()),
    ));
    for outcome in write_and_sync_at_once(&db, 4) {
        outcome.unwrap();
    }
    for round in 0..3 {
        let before = fsyncs.load(Ordering::SeqCst);
        db.update_find_fails(&id(100 + round), 1).unwrap();
        wait_until(|| fsyncs.load(Ordering::SeqCst) > before);
        assert!(
            fsyncs.load(Ordering::SeqCst) > before,
            "round {round}: a write nobody synced stayed unsynced"
        );
    }
    // Nothing new written: the periodic pass does not fsync.
    std::thread::sleep(Duration::from_millis(100));
    let idle = fsyncs.load(Ordering::SeqCst);
    std::thread::sleep(Duration::from_millis(200));
    assert_eq!(
        fsyncs.load(Ordering::SeqCst),
        idle,
        "an idle database was fsynced"
    );
}
