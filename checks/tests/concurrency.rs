//! Concurrency at scale: 8 threads share one `NodeDb` through an `Arc`, mixing writes and
//! reads for about a second in every durability mode, with background and explicit
//! compactions running under them.
//!
//! Each thread owns a disjoint set of ids and keeps the shared model of peer state
//! (`peerlog_checks::model`) of them: after each of its writes,
//! reading its own ids must give exactly what it wrote (no other thread writes them). All
//! threads also write the pongs and findnode failures of a few shared ids, each value unique
//! to its writer and write; the final value of a shared field must be the last value one of
//! the threads wrote to it. At the end, and again after a reopen, every owned id equals its
//! thread's model and the node count is the sum of the models'.
//!
//! A node record is only ever written after a pong for the same id (and a delete removes
//! both), and pongs are far younger than the expiration, so the expiry that runs with each
//! compaction never drops anything: the expected state does not depend on when compactions
//! happen.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::mpsc;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerlog::{Durability, Event, Node, NodeDb, NodeId, Options};
use peerlog_checks::model::{observe, Model, Observed};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const THREADS: u64 = 8;
/// Ids each thread owns.
const OWNED: u64 = 48;
/// Ids every thread writes.
const SHARED: u64 = 8;
const VERSION: u64 = 3;
const BASE_SECS: u64 = 1_600_000_000;
/// How long the threads run in each mode.
const RUN_FOR: Duration = Duration::from_millis(1200);

fn owned_id(thread: u64, i: u64) -> NodeId {
    let mut bytes = [0x33; 64];
    bytes[0] = 1;
    bytes[1..9].copy_from_slice(&thread.to_be_bytes());
    bytes[9..17].copy_from_slice(&i.to_be_bytes());
    NodeId(bytes)
}

fn shared_id(j: u64) -> NodeId {
    let mut bytes = [0x44; 64];
    bytes[0] = 2;
    bytes[1..9].copy_from_slice(&j.to_be_bytes());
    NodeId(bytes)
}

fn self_id() -> NodeId {
    NodeId([0xee; 64])
}

/// A value unique to (thread, write number).
fn value(thread: u64, n: u64) -> u64 {
    thread * 100_000_000 + n
}

fn at(v: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE_SECS + v)
}

fn node(id: NodeId, v: u64) -> Node {
    Node::new(
        id,
        IpAddr::V4(Ipv4Addr::from(v as u32)),
        (v % 60_000) as u16 + 1,
        (v / 60_000 % 60_000) as u16 + 1,
    )
}

/// What the API says about `id` (no IP is probed: no IP slot is written, and `observe`
/// checks that none is listed).
fn read(db: &NodeDb, id: &NodeId) -> Observed {
    observe(db, id, &[])
}

/// What one thread did.
#[derive(Default)]
struct Outcome {
    /// The state of its own ids: the shared model of peer state, of this thread's writes.
    owned: Model,
    /// The last pong and fails it wrote to each shared id.
    shared_pong: HashMap<u64, SystemTime>,
    shared_fails: HashMap<u64, u32>,
    writes: u64,
    reads: u64,
    compactions: u64,
}

fn options(durability: Durability) -> Options {
    Options {
        durability,
        // Small segments and a low compaction threshold: rotations and background
        // compactions happen all the time.
        segment_size: 64 << 10,
        compact_min_bytes: 256 << 10,
        compact_dead_ratio: 0.5,
        expiration: Duration::from_secs(50 * 365 * 24 * 3600),
        ..Options::default()
    }
}

fn worker(db: &NodeDb, thread: u64, seed: u64, until: Instant, group_commit: bool) -> Outcome {
    let mut rng = StdRng::seed_from_u64(seed ^ thread);
    let mut out = Outcome::default();
    let (mut n, mut batches) = (0u64, 0u64);
    let mut next = || {
        n += 1;
        value(thread, n)
    };
    while Instant::now() < until {
        for _ in 0..64 {
            let i = rng.random_range(0..OWNED);
            let id = owned_id(thread, i);
            match rng.random_range(0..20) {
                // Bond: a pong, then the record (never a record without a pong).
                0..=5 => {
                    let v = next();
                    db.update_last_pong(&id, at(v)).unwrap();
                    db.update_node(&node(id, v)).unwrap();
                    out.owned.apply(&Event::Pong { id, at: at(v) });
                    out.owned.apply(&Event::NodeUpdated(node(id, v)));
                    out.writes += 2;
                }
                6..=7 => {
                    let v = next();
                    db.update_last_ping(&id, at(v)).unwrap();
                    out.owned.apply(&Event::Ping { id, at: at(v) });
                    out.writes += 1;
                }
                8..=9 => {
                    let v = next();
                    db.update_last_pong(&id, at(v)).unwrap();
                    out.owned.apply(&Event::Pong { id, at: at(v) });
                    out.writes += 1;
                }
                10 => {
                    let v = next();
                    db.update_find_fails(&id, v as u32 + 1).unwrap();
                    out.owned.apply(&Event::FindFails {
                        id,
                        fails: v as u32 + 1,
                    });
                    out.writes += 1;
                }
                11..=12 => {
                    db.delete_node(&id).unwrap();
                    out.owned.apply(&Event::NodeDeleted { id });
                    out.writes += 1;
                }
                13..=14 => {
                    let j = rng.random_range(0..SHARED);
                    let v = next();
                    db.update_last_pong(&shared_id(j), at(v)).unwrap();
                    out.shared_pong.insert(j, at(v));
                    out.writes += 1;
                }
                15 => {
                    let j = rng.random_range(0..SHARED);
                    let v = next();
                    db.update_find_fails(&shared_id(j), v as u32 + 1).unwrap();
                    out.shared_fails.insert(j, v as u32 + 1);
                    out.writes += 1;
                }
                16 => {
                    // Someone else's ids: any value, but no panic and a consistent count.
                    let other = rng.random_range(0..THREADS);
                    let _ = read(db, &owned_id(other, rng.random_range(0..OWNED)));
                    let seeds = db.query_seeds(8, Duration::from_secs(u64::MAX >> 8));
                    assert!(seeds.len() <= 8);
                    out.reads += 6;
                }
                _ => {
                    // A shared id holds some thread's write.
                    let j = rng.random_range(0..SHARED);
                    if let Some(pong) = db.last_pong(&shared_id(j)) {
                        let v = pong.duration_since(at(0)).unwrap().as_secs();
                        assert!(v / 100_000_000 < THREADS, "pong {pong:?} nobody wrote");
                    }
                    out.reads += 1;
                }
            }
            // Read your own writes, exactly.
            assert_eq!(
                read(db, &id),
                out.owned.entry(&id).observed(&[]),
                "thread {thread}: id {i} does not hold what this thread wrote"
            );
            out.reads += 4;
        }
        if group_commit && rng.random_ratio(1, 4) {
            db.sync().unwrap();
        }
        batches += 1;
        if thread == 0 && batches % 3 == 0 {
            db.compact().unwrap();
            out.compactions += 1;
        }
    }
    out
}

/// Checks the database against what the threads did.
fn check(db: &NodeDb, outcomes: &[Outcome], what: &str) {
    let mut nodes = 0;
    for (thread, out) in outcomes.iter().enumerate() {
        nodes += out.owned.nodes();
        for i in 0..OWNED {
            let id = owned_id(thread as u64, i);
            let expected = out.owned.entry(&id).observed(&[]);
            assert_eq!(read(db, &id), expected, "{what}: thread {thread}'s id {i}");
        }
    }
    for j in 0..SHARED {
        let id = shared_id(j);
        let pongs: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.shared_pong.get(&j).copied())
            .collect();
        let pong = db.last_pong(&id);
        assert!(
            pong.map_or(pongs.is_empty(), |p| pongs.contains(&p)),
            "{what}: shared id {j} has pong {pong:?}, not the last of any thread: {pongs:?}"
        );
        let fails: Vec<_> = outcomes
            .iter()
            .filter_map(|o| o.shared_fails.get(&j).copied())
            .collect();
        let fail = db.find_fails(&id);
        assert!(
            (fail == 0 && fails.is_empty()) || fails.contains(&fail),
            "{what}: shared id {j} has {fail} fails, not the last of any thread: {fails:?}"
        );
        assert_eq!(
            db.node(&id),
            None,
            "{what}: shared id {j} never had a record"
        );
    }
    assert_eq!(db.len(), nodes, "{what}: node count");
}

fn run(durability: Durability, dir: &Path) {
    let seed: u64 = rand::random();
    let db = Arc::new(NodeDb::open_with(dir, VERSION, self_id(), options(durability)).unwrap());
    let until = Instant::now() + RUN_FOR;
    let group_commit = matches!(durability, Durability::GroupCommit { .. });
    let (done_tx, done) = mpsc::channel();
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = Arc::clone(&db);
            let done_tx = done_tx.clone();
            std::thread::spawn(move || {
                let out = worker(&db, thread, seed, until, group_commit);
                let _ = done_tx.send(());
                out
            })
        })
        .collect();
    drop(done_tx);
    for _ in 0..THREADS {
        // A thread that neither finishes nor panics is stuck: a deadlock.
        done.recv_timeout(RUN_FOR + Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("{durability:?} (seed {seed}): a thread is stuck"));
    }
    let outcomes: Vec<Outcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    let writes: u64 = outcomes.iter().map(|o| o.writes).sum();
    let reads: u64 = outcomes.iter().map(|o| o.reads).sum();
    let compactions: u64 = outcomes.iter().map(|o| o.compactions).sum();
    let segments = std::fs::read_dir(dir)
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
        .count();
    println!(
        "{durability:?}: {THREADS} threads, {writes} writes and {reads} reads in {RUN_FOR:?}, \
         {compactions} explicit compactions (and background ones), {segments} segment files left"
    );
    check(
        &db,
        &outcomes,
        &format!("{durability:?} (seed {seed}), live"),
    );
    let db = Arc::into_inner(db).expect("every thread dropped its handle");
    db.close().unwrap();

    let db = NodeDb::open_with(dir, VERSION, self_id(), options(durability)).unwrap();
    assert!(
        db.recovery().problems.is_empty(),
        "{durability:?}: a cleanly closed log has problems: {:?}",
        db.recovery().problems
    );
    check(
        &db,
        &outcomes,
        &format!("{durability:?} (seed {seed}), reopened"),
    );
    // And once more after compacting everything.
    db.compact().unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir, VERSION, self_id(), options(durability)).unwrap();
    check(
        &db,
        &outcomes,
        &format!("{durability:?} (seed {seed}), compacted and reopened"),
    );
}

#[test]
fn node_db_is_send_and_sync() {
    fn send_sync<T: Send + Sync + 'static>() {}
    send_sync::<NodeDb>();
    send_sync::<Arc<NodeDb>>();
}

#[test]
fn eight_threads_process_durability() {
    let dir = tempfile::tempdir().unwrap();
    run(Durability::Process, dir.path());
}

#[test]
fn eight_threads_group_commit() {
    let dir = tempfile::tempdir().unwrap();
    run(
        Durability::GroupCommit {
            max_delay: Duration::from_millis(1),
        },
        dir.path(),
    );
}

#[test]
fn eight_threads_sync_each_write() {
    let dir = tempfile::tempdir().unwrap();
    run(Durability::SyncEachWrite, dir.path());
}

#[test]
fn eight_threads_in_memory() {
    let db = Arc::new(NodeDb::in_memory(self_id()));
    let until = Instant::now() + RUN_FOR / 2;
    let handles: Vec<_> = (0..THREADS)
        .map(|thread| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || worker(&db, thread, 7, until, false))
        })
        .collect();
    let outcomes: Vec<Outcome> = handles.into_iter().map(|h| h.join().unwrap()).collect();
    check(&db, &outcomes, "in memory");
}
