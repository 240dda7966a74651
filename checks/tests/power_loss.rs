//! Power-loss test: peerlog on LazyFS, a FUSE file system that keeps every write in a cache of
//! its own until the file is fsynced, and on command crashes, dropping every byte not yet
//! fsynced, as a power failure or kernel crash does (a `kill -9` of the process, as in
//! `checks/tests/crash.rs`, leaves the kernel's page cache intact and loses nothing acknowledged).
//!
//! Each round mounts LazyFS over a root directory and starts a writer child process (this test
//! binary again, `--exact power_loss_child`) with its database on the mount. The child runs a
//! deterministic workload on one or more threads; operation `k` of thread `t` writes a value
//! that encodes `k` (a node whose IP is `k`, a ping or pong at second `k`, `k + 1` findnode
//! failures, a signed record or local seq numbered `k + 1`), deletes an id, or compacts. It
//! prints `W t k` when operation `k` returned, and `A t n` when operations `0..n` of thread
//! `t` are *durable*: after each write with `SyncEachWrite`; after a `sync()` returned, for
//! every operation that had returned before the call; and at each segment seal (the fail-point
//! hook at `segment.write` is reached only once the sealed segment's fsync returned), for every
//! operation that had returned by then. Then LazyFS is crashed, in one of these ways:
//!
//! * armed (its faults FIFO) to crash *before* the next fsync of a segment file, or of a segment
//!   or compaction output being written, after a random number of writes: that fsync's data
//!   is lost;
//! * the same with *after*: that fsync's data is kept, then the crash (the call still fails);
//! * `kill -9` of LazyFS at a random moment (possibly in the middle of an fsync);
//! * at a named step (the child's fail-point hook stops before the `nth` time it reaches it,
//!   e.g. `compact.fsync`, `compact.rename`, `compact.dirsync`, `compact.remove`,
//!   `segment.fsync`, `log.fsync`, and tells the parent): LazyFS is killed there, or, for an
//!   fsync step, armed to crash before or after that very fsync and the child let go on.
//!
//! The parent then kills the child, unmounts, copies what reached the root directory (what the
//! disk would hold after the power came back), opens the copy and checks that
//! * recovery reports nothing but a torn tail;
//! * for each thread, the state equals the shared model of peer state (`peerlog_checks::model`) after `n` of its operations for some `n` at
//!   least the acknowledged durable count and at most one past the last operation that
//!   returned: every durable write is there, in order, and nothing that was not written;
//! * (`GroupCommit` with no `sync()` calls) every write made more than `max_delay` plus a
//!   margin before the crash is there;
//! * the copy takes new writes.
//!
//! A root directory is reused for `CHAIN` crashes (remounted; each child continues where the
//! copy's state ended), so the recovery of a log recovered after a power loss is exercised.
//!
//! In the modes with one writing thread the store is bounded (`max_nodes` 32, below the 48 ids
//! of the pool), so writes about new ids evict, and the model predicts each eviction by the
//! store's rule; a power loss between an eviction and the write it made room for leaves a
//! state the model also knows (the next child then makes the write). With several threads
//! the order of their writes, and so the victim, is unknown: the store is not bounded there.
//!
//! Modes: `SyncEachWrite`; `GroupCommit` with `sync()` from four threads; `GroupCommit` with no
//! `sync()` (the `max_delay` bound, at 50 ms and at 1 s); segment rotation (`Process`, 4 KiB
//! segments: only seals make writes durable); `Process` (2 MiB segments, `sync()` every few
//! thousand writes, growth steps and a rotation per round); compaction (4 KiB segments,
//! `compact()` every 64 operations, durability changing with the chain); signed records and the
//! local seq (with compactions, durability changing with the chain). A compaction's power loss
//! lands before or after its own fsync (`compact.fsync`), between that and the rename
//! (`compact.rename`), between the rename and the directory fsync (`compact.dirsync`), or before
//! the old segments are removed (`compact.remove`).
//!
//! What LazyFS cannot show: it passes directory operations (create, rename, unlink) straight
//! through to the root, so they are durable at once and a directory fsync does nothing there
//! (it is not even a crash point): a missing directory fsync, or a rename lost for want of one,
//! is invisible here (the fail-point tests in `tests/compaction.rs` and `tests/durability.rs`
//! cover the order of those steps). A file renamed before its data was synced, though, is
//! modelled (it comes back empty under its new name), so a missing fsync before a rename is
//! caught. It
//! drops all unsynced data or none (no subset of unsynced pages surviving, no reordering, no
//! tearing inside a 4 KiB block), and it does not implement `fallocate`, so every segment here
//! is preallocated by writing zeros (peerlog's fallback).
//!
//! Running: `PEERLOG_LAZYFS` names the LazyFS binary (`.ci/run` builds LazyFS where its
//! build script is available and sets it), `PEERLOG_LAZYFS_LIB` optionally a directory
//! for its `LD_LIBRARY_PATH`; it needs `/dev/fuse`, `fusermount3` and root. Without
//! `PEERLOG_LAZYFS` the tests print why they are skipped and pass. `PEERLOG_POWER_LOSS_ROUNDS=N`
//! sets the crashes per mode (default 8), `PEERLOG_POWER_LOSS_SEED=S` replays a run (the seed
//! is printed), `PEERLOG_POWER_LOSS_KEEP=1` keeps every round's directory (a failed round's is
//! always kept and printed).

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::io::{self, BufRead, BufReader, Write};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::lazyfs::{copy_dir, lazyfs, note, LazyFs, Mount};
use common::stored_record;
use peerlog::testing::FailPoints;
use peerlog::{DamageKind, Durability, Event, Node, NodeDb, NodeId, Options};
use peerlog_checks::model::{self, observe, Observed};
use peerlog_checks::process::{env, say, splitmix};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

const VERSION: u64 = 11;
/// Ids each thread touches: few, so that ids are overwritten and deleted often.
const POOL: u64 = 48;
/// Timestamps of pings and pongs: second `BASE_SECS + k` for operation `k`.
const BASE_SECS: u64 = 1_600_000_000;
/// Crashes per root directory before starting over with a fresh one.
const CHAIN: usize = 3;
/// `Options::max_nodes` of the modes with one writing thread: below `POOL`, so that writes
/// about new ids evict.
const MAX_NODES: usize = 32;
/// `max_delay` of `GroupCommit` where writers call `sync()`.
const GROUP_DELAY: Duration = Duration::from_millis(2);
/// `max_delay` of the `GroupCommit` mode without `sync()` calls, by chain: a short one, and
/// one second (the candidate default of issue 12).
const LONG_GROUP_DELAYS: [Duration; 2] = [Duration::from_millis(50), Duration::from_secs(1)];
/// Margin over that `max_delay` for the fsync itself and the scheduling around it.
const DELAY_MARGIN: Duration = Duration::from_millis(400);

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    SyncEachWrite,
    GroupCommit,
    GroupCommitDelay,
    Rotation,
    Process,
    Compaction,
    Records,
}

const MODES: [Mode; 7] = [
    Mode::SyncEachWrite,
    Mode::GroupCommit,
    Mode::GroupCommitDelay,
    Mode::Rotation,
    Mode::Process,
    Mode::Compaction,
    Mode::Records,
];

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::SyncEachWrite => "sync-each-write",
            Mode::GroupCommit => "group-commit",
            Mode::GroupCommitDelay => "group-commit-delay",
            Mode::Rotation => "rotation",
            Mode::Process => "process",
            Mode::Compaction => "compaction",
            Mode::Records => "records",
        }
    }

    fn parse(name: &str) -> Mode {
        MODES
            .into_iter()
            .find(|m| m.name() == name)
            .unwrap_or_else(|| panic!("unknown power-loss mode {name:?}"))
    }

    fn threads(self) -> usize {
        if self == Mode::GroupCommit {
            4
        } else {
            1
        }
    }

    fn durability(self, chain: u64) -> Durability {
        let group = Durability::GroupCommit {
            max_delay: GROUP_DELAY,
        };
        match self {
            Mode::SyncEachWrite => Durability::SyncEachWrite,
            Mode::GroupCommit => group,
            Mode::GroupCommitDelay => Durability::GroupCommit {
                max_delay: LONG_GROUP_DELAYS[(chain % 2) as usize],
            },
            Mode::Rotation | Mode::Process => Durability::Process,
            Mode::Compaction | Mode::Records => {
                [Durability::Process, group, Durability::SyncEachWrite][(chain % 3) as usize]
            }
        }
    }

    fn segment_size(self) -> u64 {
        match self {
            Mode::SyncEachWrite | Mode::Records => 16 << 10,
            Mode::GroupCommit => 64 << 10,
            // No seal in a round: only the syncer makes writes durable.
            Mode::GroupCommitDelay => 1 << 20,
            Mode::Rotation | Mode::Compaction => 4096,
            // Above the 1 MiB preallocation step: segments grow, and one rotation per round.
            Mode::Process => (2 << 20) + (64 << 10),
        }
    }

    fn compact_every(self) -> Option<u64> {
        match self {
            Mode::Compaction => Some(64),
            Mode::Records => Some(97),
            _ => None,
        }
    }

    /// A thread calls `sync()` after a random number of its operations up to this.
    fn sync_every(self, durability: Durability) -> Option<u64> {
        match (self, durability) {
            (_, Durability::SyncEachWrite) => None,
            (Mode::GroupCommit, _) => Some(16),
            (Mode::GroupCommitDelay | Mode::Rotation, _) => None,
            (Mode::Process, _) => Some(4000),
            _ => Some(50),
        }
    }

    /// Writes (over all threads) before a crash, at random up to this.
    fn crash_within(self) -> u64 {
        match self {
            Mode::SyncEachWrite => 600,
            Mode::GroupCommit => 4000,
            Mode::GroupCommitDelay => 0,
            Mode::Rotation => 2000,
            Mode::Process => 30_000,
            Mode::Compaction => 1200,
            Mode::Records => 300,
        }
    }

    /// Operations per thread and child: bounds what a round writes (LazyFS's cache).
    fn max_ops(self) -> u64 {
        match self {
            Mode::GroupCommitDelay => 20_000,
            Mode::Records => 400,
            m => m.crash_within() * 2 / m.threads() as u64 + 100,
        }
    }

    /// Steps the hook may stop at for a crash there.
    fn steps(self) -> &'static [&'static str] {
        match self {
            Mode::Compaction | Mode::Records => &[
                "compact.fsync",
                "compact.rename",
                "compact.dirsync",
                "compact.remove",
                "segment.fsync",
                "segment.dirsync",
                "log.fsync",
            ],
            Mode::Rotation => &["segment.fsync", "segment.rename", "log.fsync"],
            _ => &[],
        }
    }

    fn options(self, chain: u64) -> Options {
        Options {
            durability: self.durability(chain),
            segment_size: self.segment_size(),
            // Nothing expires: every timestamp is recent next to 50 years.
            expiration: Duration::from_secs(50 * 365 * 24 * 3600),
            compact_dead_ratio: 1.0,
            compact_min_bytes: u64::MAX,
            max_nodes: self.max_nodes(),
            ..Options::default()
        }
    }

    /// A bound below the pool, so that evictions happen, where the parent can predict them:
    /// with one writing thread (the order of several threads' writes is unknown to it).
    fn max_nodes(self) -> usize {
        if self.threads() == 1 {
            MAX_NODES
        } else {
            peerlog::DEFAULT_MAX_NODES
        }
    }
}

// ---------------------------------------------------------------------------------------
// The workload.

fn self_id() -> NodeId {
    NodeId([0xee; 64])
}

/// The id `i` of thread `t` (records mode: the signed-record node `i`).
fn id(mode: Mode, t: usize, i: u64) -> NodeId {
    if mode == Mode::Records {
        return record_id(i);
    }
    let mut bytes = [0x77; 64];
    bytes[0] = t as u8;
    bytes[1..9].copy_from_slice(&i.to_be_bytes());
    NodeId(bytes)
}

fn at(k: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE_SECS + k)
}

/// A node record that encodes `k` (in its IP address).
fn node_for(id: NodeId, k: u64) -> Node {
    let ip = if k.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (k >> 1) as u32 & 0x00ff_ffff))
    } else {
        IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(k)))
    };
    Node::new(id, ip, (k % 60_000) as u16 + 1, (k / 7 % 60_000) as u16 + 1)
}

/// The id of signed-record node `i` (derived from its key once: that is slow).
fn record_id(i: u64) -> NodeId {
    static IDS: std::sync::OnceLock<Vec<NodeId>> = std::sync::OnceLock::new();
    IDS.get_or_init(|| (0..POOL).map(common::record_id).collect())[i as usize]
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Node(u64, Node),
    /// The signed record of node `i` with seq `s`.
    Record(u64, u64),
    Ping(u64, SystemTime),
    Pong(u64, SystemTime),
    Fails(u64, u32),
    Delete(u64),
    LocalSeq(u64),
    Compact,
}

/// Operation `k` of thread `t` of the workload with `seed`.
fn op(mode: Mode, seed: u64, t: usize, k: u64) -> Op {
    if let Some(every) = mode.compact_every() {
        if k % every == every - 1 {
            return Op::Compact;
        }
    }
    let r = splitmix(seed ^ splitmix(((t as u64) << 56) ^ k));
    let i = (r >> 32) % POOL;
    let records = mode == Mode::Records;
    match r % 16 {
        // Signing a record costs milliseconds in a debug build: fewer of them.
        0..=2 if records => Op::Record(i, k + 1),
        0..=4 if !records => Op::Node(i, node_for(id(mode, t, i), k)),
        3..=4 => Op::LocalSeq(k + 1),
        5..=7 => Op::Ping(i, at(k)),
        8..=10 => Op::Pong(i, at(k)),
        11..=12 => Op::Fails(i, k as u32 + 1),
        _ => Op::Delete(i),
    }
}

fn apply(db: &NodeDb, mode: Mode, t: usize, op: &Op) -> Result<(), peerlog::Error> {
    let id = |i: u64| id(mode, t, i);
    match op {
        Op::Node(_, node) => db.update_node(node),
        Op::Record(i, s) => db.update_record(&common::signed_record(*i, *s)).map(drop),
        Op::Ping(i, at) => db.update_last_ping(&id(*i), *at),
        Op::Pong(i, at) => db.update_last_pong(&id(*i), *at),
        Op::Fails(i, f) => db.update_find_fails(&id(*i), *f),
        Op::Delete(i) => db.delete_node(&id(*i)),
        Op::LocalSeq(s) => db.store_local_seq(*s),
        Op::Compact => db.compact().map(drop),
    }
}

/// What the API says about thread `t`'s ids (no per-IP writes here: no IP is probed, and
/// `observe` checks that none is listed; a signed record by its seq, since parent and child
/// sign apart and signing is randomised), and, for thread 0, the stored local seq.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    seen: Vec<(Observed, Option<u64>)>,
    local_seq: Option<u64>,
}

impl State {
    fn read(db: &NodeDb, mode: Mode, t: usize) -> State {
        let seen = (0..POOL)
            .map(|i| observe(db, &id(mode, t, i), &[]).without_signature())
            .collect();
        // Without a stored one, `local_seq()` is the clock in milliseconds: far above ours.
        let local_seq = Some(db.local_seq()).filter(|&s| s < 1 << 40 && t == 0);
        State { seen, local_seq }
    }
}

/// Thread `t`'s ids after its first `n` operations: the shared model of peer state (with the
/// eviction rule, in the modes of one thread), driven by the workload.
#[derive(Clone, Debug)]
struct Model {
    mode: Mode,
    seed: u64,
    t: usize,
    n: u64,
    state: model::Model,
}

impl Model {
    fn new(mode: Mode, seed: u64, t: usize) -> Model {
        Model {
            mode,
            seed,
            t,
            n: 0,
            state: model::Model::default(),
        }
    }

    /// What thread `t`'s ids read as in this state.
    fn state(&self) -> State {
        State {
            seen: (0..POOL)
                .map(|i| {
                    let entry = self.state.entry(&id(self.mode, self.t, i));
                    entry.observed(&[]).without_signature()
                })
                .collect(),
            local_seq: self.state.local_seq.filter(|_| self.t == 0),
        }
    }

    /// The event operation `n` writes from this state, if any (before evictions).
    fn event(&self) -> Option<Event> {
        let id = |i: u64| id(self.mode, self.t, i);
        match op(self.mode, self.seed, self.t, self.n) {
            // An unsigned record is seq 0: it never replaces a signed one.
            Op::Node(_, node) => self
                .state
                .writes_unsigned(&node)
                .then_some(Event::NodeUpdated(node)),
            Op::Record(i, s) => {
                let record = stored_record(&common::signed_record(i, s));
                let stored = self.state.entry(&id(i));
                // An older seq is refused (each operation's seq is new: never the very record
                // already stored, which would write nothing).
                (stored.record_seq() <= s).then_some(Event::Record(record))
            }
            Op::Ping(i, at) => Some(Event::Ping { id: id(i), at }),
            Op::Pong(i, at) => Some(Event::Pong { id: id(i), at }),
            Op::Fails(i, fails) => Some(Event::FindFails { id: id(i), fails }),
            Op::Delete(i) => Some(Event::NodeDeleted { id: id(i) }),
            Op::LocalSeq(seq) => Some(Event::LocalSeq { seq }),
            // Nothing expires (an expiration of 50 years).
            Op::Compact => None,
        }
    }

    /// The states operation `n` goes through before the last (each eviction is a record of
    /// its own, before the write it makes room for), and the state after it.
    fn step_states(&self) -> (Vec<Model>, Model) {
        let mut m = self.clone();
        let mut between = Vec::new();
        if let Some(event) = self.event() {
            for evicted in m
                .state
                .evictions_in_write_order(&event, self.mode.max_nodes())
            {
                m.state.apply(&evicted);
                between.push(m.clone());
            }
            m.state.apply(&event);
        }
        m.n += 1;
        (between, m)
    }

    fn step(&mut self) {
        *self = self.step_states().1;
    }

    /// The smallest `n` in `lo..=hi` after which the model equals `actual`; advances to it. A
    /// state between an eviction and the write it made room for counts as `n` (the write not
    /// done: the next child does it, without evicting again); the model then stands there.
    fn find(&mut self, actual: &State, lo: u64, hi: u64) -> Option<u64> {
        while self.n < lo {
            self.step();
        }
        while self.n <= hi {
            if self.state() == *actual {
                return Some(self.n);
            }
            let (between, after) = self.step_states();
            if let Some(m) = between.into_iter().find(|m| m.state() == *actual) {
                self.state = m.state;
                return Some(self.n);
            }
            *self = after;
        }
        None
    }
}

// ---------------------------------------------------------------------------------------
// The child.

fn acks(completed: &[AtomicU64]) -> String {
    completed
        .iter()
        .enumerate()
        .map(|(t, c)| format!("A {t} {}\n", c.load(Ordering::SeqCst)))
        .collect()
}

/// Plays the writer when `PEERLOG_POWER_LOSS_CHILD` is set; passes at once otherwise.
#[test]
fn power_loss_child() {
    let Ok(mode) = std::env::var("PEERLOG_POWER_LOSS_CHILD") else {
        return;
    };
    // A newline first: libtest has printed "test power_loss_child ... " without one.
    say("\n");
    let mode = Mode::parse(&mode);
    let dir = env("PEERLOG_POWER_LOSS_DIR");
    let seed: u64 = env("PEERLOG_POWER_LOSS_WORKLOAD").parse().unwrap();
    let chain: u64 = env("PEERLOG_POWER_LOSS_CHAIN").parse().unwrap();
    let starts: Vec<u64> = env("PEERLOG_POWER_LOSS_STARTS")
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    let stop_at = std::env::var("PEERLOG_POWER_LOSS_STEP").ok().map(|s| {
        let (step, nth) = s.split_once(':').unwrap();
        (step.to_string(), nth.parse::<u32>().unwrap())
    });
    assert_eq!(starts.len(), mode.threads());

    // completed[t]: operations of thread t that returned.
    let completed: Arc<Vec<AtomicU64>> =
        Arc::new(starts.iter().map(|&s| AtomicU64::new(s)).collect());
    let reached = Arc::new(AtomicU32::new(0));
    let hook = {
        let (completed, reached) = (Arc::clone(&completed), Arc::clone(&reached));
        FailPoints::new(move |step| {
            if step == "segment.write" {
                // A new segment is being created: the one it follows was sealed, its fsync
                // returned, so every operation that returned before is durable.
                say(&acks(&completed));
            }
            if let Some((at, nth)) = &stop_at {
                if step == at && reached.fetch_add(1, Ordering::SeqCst) + 1 == *nth {
                    say(&format!("STEP {step}\n"));
                    let mut go = String::new();
                    let _ = io::stdin().read_line(&mut go);
                }
            }
            Ok(())
        })
    };
    let options = Options {
        fail_points: hook,
        ..mode.options(chain)
    };
    let db = match NodeDb::open_with(&dir, VERSION, self_id(), options) {
        Ok(db) => db,
        Err(e) => {
            say(&format!("ERR open: {e}\n"));
            std::process::exit(3);
        }
    };
    for problem in &db.recovery().problems {
        if problem.kind != DamageKind::TornTail {
            say(&format!("PROBLEM {problem}\n"));
        }
    }
    say("READY\n");
    let durability = mode.durability(chain);
    std::thread::scope(|s| {
        for (t, &start) in starts.iter().enumerate() {
            let (db, completed) = (&db, &completed);
            s.spawn(move || {
                let mut rng = StdRng::seed_from_u64(splitmix(seed ^ start) ^ t as u64);
                let sync_every = mode.sync_every(durability);
                let mut until_sync = sync_every.map_or(0, |e| rng.random_range(1..=e));
                let sync = |what: &str| {
                    let before: Vec<AtomicU64> = completed
                        .iter()
                        .map(|c| AtomicU64::new(c.load(Ordering::SeqCst)))
                        .collect();
                    if let Err(e) = db.sync() {
                        say(&format!("ERR {what} sync: {e}\n"));
                        std::process::exit(3);
                    }
                    say(&acks(&before));
                };
                for k in start..start + mode.max_ops() {
                    if mode == Mode::GroupCommitDelay {
                        std::thread::sleep(Duration::from_micros(200));
                    }
                    if let Err(e) = apply(db, mode, t, &op(mode, seed, t, k)) {
                        say(&format!("ERR op {t} {k}: {e}\n"));
                        std::process::exit(3);
                    }
                    completed[t].store(k + 1, Ordering::SeqCst);
                    say(&if durability == Durability::SyncEachWrite {
                        format!("W {t} {k}\nA {t} {}\n", k + 1)
                    } else {
                        format!("W {t} {k}\n")
                    });
                    if let Some(every) = sync_every {
                        until_sync -= 1;
                        if until_sync == 0 {
                            until_sync = rng.random_range(1..=every);
                            sync("periodic");
                        }
                    }
                }
                sync("final");
            });
        }
    });
    say("DONE\n");
    loop {
        std::thread::sleep(Duration::from_secs(3600));
    }
}

// ---------------------------------------------------------------------------------------
// The parent.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Timing {
    Before,
    After,
}

impl Timing {
    fn name(self) -> &'static str {
        match self {
            Timing::Before => "before",
            Timing::After => "after",
        }
    }
}

#[derive(Clone, Debug)]
enum Crash {
    /// After `writes` writes (or `after` into writing), LazyFS is armed to crash at the next
    /// fsync of a segment, or killed (`None`).
    Random {
        writes: u64,
        after: Option<Duration>,
        timing: Option<Timing>,
    },
    /// At the `nth` time the child reaches fail point `step`: LazyFS killed there (`None`),
    /// or armed to crash before or after that step's fsync.
    AtStep {
        step: &'static str,
        nth: u32,
        timing: Option<Timing>,
    },
}

impl Crash {
    /// The crash of a round; `first` of a directory in `Process` mode is a kill, which then
    /// loses the writes since the last `sync()` (the check that LazyFS drops them).
    fn pick(mode: Mode, chain: u64, first: bool, rng: &mut StdRng) -> Crash {
        let timing = |rng: &mut StdRng| {
            [None, Some(Timing::Before), Some(Timing::After)][rng.random_range(0..3)]
        };
        let steps = mode.steps();
        if !steps.is_empty() && rng.random_ratio(1, 2) {
            let step = steps[rng.random_range(0..steps.len())];
            return Crash::AtStep {
                step,
                nth: rng.random_range(1..=3),
                timing: if step.ends_with("fsync") {
                    timing(rng)
                } else {
                    None
                },
            };
        }
        Crash::Random {
            writes: rng.random_range(1..=mode.crash_within().max(1)),
            // Long enough for writes older than max_delay and the margin.
            after: match mode.durability(chain) {
                Durability::GroupCommit { max_delay } if mode == Mode::GroupCommitDelay => Some(
                    max_delay + DELAY_MARGIN + Duration::from_millis(rng.random_range(100..2000)),
                ),
                _ => None,
            },
            timing: if mode == Mode::Process && first {
                None
            } else {
                timing(rng)
            },
        }
    }

    /// The kind of crash, for the summary.
    fn kind(&self) -> String {
        let how = |t: &Option<Timing>| t.map_or("kill", Timing::name);
        match self {
            Crash::Random { timing, .. } => how(timing).to_string(),
            Crash::AtStep { step, timing, .. } => format!("{} at {step}", how(timing)),
        }
    }

    fn describe(&self) -> String {
        let how =
            |t: &Option<Timing>| t.map_or("kill".to_string(), |t| format!("{} fsync", t.name()));
        match self {
            Crash::Random {
                writes,
                after: None,
                timing,
            } => format!("{} after {writes} writes", how(timing)),
            Crash::Random {
                after: Some(after),
                timing,
                ..
            } => format!("{} after {after:?}", how(timing)),
            Crash::AtStep { step, nth, timing } => format!("{} at {step} #{nth}", how(timing)),
        }
    }
}

/// What one round saw and checked.
#[derive(Default)]
struct Outcome {
    /// Durable operations acknowledged in this round (beyond the round's start).
    acknowledged: u64,
    /// Operations that returned in this round...
    written: u64,
    /// ... and before the crash was set off (armed or killed).
    written_before: u64,
    /// Operations that returned before the crash but are not in the copy (allowed: not
    /// durable). Later ones, to a dead file system, are not counted.
    lost: u64,
    /// How long before the crash the oldest of those returned.
    oldest_lost: Option<Duration>,
    /// Operations beyond the durable acknowledgement that are in the copy.
    kept_unacknowledged: u64,
    /// Operations the `max_delay` bound says must be there.
    delay_checked: u64,
    torn_tails: usize,
    /// LazyFS did not crash at the armed fsync within the time limit and was killed.
    timed_out: bool,
    /// The crash (`Crash::kind`).
    kind: String,
}

struct Line {
    at: Instant,
    text: String,
}

/// One round: mount `base/root`, run a child from where `models` are, crash, unmount, copy,
/// check; `models` then stand where the copy is.
#[allow(clippy::too_many_arguments)]
fn round(
    lazyfs: &LazyFs,
    mode: Mode,
    base: &Path,
    n: usize,
    chain: u64,
    workload: u64,
    models: &mut [Model],
    rng: &mut StdRng,
    what: &str,
) -> Outcome {
    let crash = Crash::pick(mode, chain, n == 0, rng);
    let what = format!("{what}, {}", crash.describe());
    let mut mount = Mount::start(lazyfs, base, n);
    let starts: Vec<u64> = models.iter().map(|m| m.n).collect();
    let mut child = Command::new(std::env::current_exe().unwrap());
    child
        .args([
            "--exact",
            "power_loss_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env("PEERLOG_POWER_LOSS_CHILD", mode.name())
        .env("PEERLOG_POWER_LOSS_DIR", mount.mnt.join("db"))
        .env("PEERLOG_POWER_LOSS_WORKLOAD", workload.to_string())
        .env("PEERLOG_POWER_LOSS_CHAIN", chain.to_string())
        .env(
            "PEERLOG_POWER_LOSS_STARTS",
            starts
                .iter()
                .map(u64::to_string)
                .collect::<Vec<_>>()
                .join(","),
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Crash::AtStep { step, nth, .. } = &crash {
        child.env("PEERLOG_POWER_LOSS_STEP", format!("{step}:{nth}"));
    }
    let mut child = child.spawn().expect("starting the child");
    let mut stdin: Option<ChildStdin> = child.stdin.take();
    let stdout = child.stdout.take().unwrap();
    let stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<Line>();
    let reader = std::thread::spawn(move || {
        for text in BufReader::new(stdout).lines() {
            let Ok(text) = text else { break };
            let line = Line {
                at: Instant::now(),
                text,
            };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || io::read_to_string(stderr).unwrap_or_default());

    let threads = mode.threads();
    let mut acked = starts.clone();
    let mut last_written: Vec<Option<u64>> = vec![None; threads];
    // Per thread, when each write was reported.
    let mut written_at: Vec<Vec<(u64, Instant)>> = vec![Vec::new(); threads];
    let mut writes = 0u64;
    let mut ready_at = None;
    let mut done = 0;
    let mut crashed_at: Option<Instant> = None;
    let mut errors_before_crash = Vec::new();
    let mut errors_after_crash = Vec::new();
    let mut timed_out = false;
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut lazyfs_gone = false;
    loop {
        let line = match lines.recv_timeout(Duration::from_millis(5)) {
            Ok(line) => Some(line),
            Err(mpsc::RecvTimeoutError::Timeout) => None,
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                // The child ended (an error, or killed below).
                if crashed_at.is_none() {
                    mount.kill();
                    crashed_at = Some(Instant::now());
                }
                break;
            }
        };
        let mut step_reached = false;
        if let Some(line) = &line {
            let mut words = line.text.split(' ');
            match words.next() {
                Some("W") => {
                    let t: usize = words.next().unwrap().parse().unwrap();
                    let k: u64 = words.next().unwrap().parse().unwrap();
                    last_written[t] = Some(k);
                    writes += 1;
                    written_at[t].push((k, line.at));
                }
                Some("A") => {
                    let t: usize = words.next().unwrap().parse().unwrap();
                    let n: u64 = words.next().unwrap().parse().unwrap();
                    acked[t] = acked[t].max(n);
                }
                Some("READY") => ready_at = Some(line.at),
                Some("DONE") => done += 1,
                Some("STEP") => step_reached = true,
                Some("ERR" | "PROBLEM") => {
                    if crashed_at.is_none() {
                        errors_before_crash.push(line.text.clone());
                    } else {
                        errors_after_crash.push(line.text.clone());
                    }
                }
                _ => {}
            }
        }
        if crashed_at.is_none() {
            let due = match &crash {
                Crash::Random {
                    after: Some(after), ..
                } => ready_at.is_some_and(|r| r.elapsed() >= *after),
                Crash::Random { writes: w, .. } => writes >= *w,
                Crash::AtStep { .. } => step_reached,
            };
            // A child that finished its operations or failed is crashed too.
            let stuck = done > 0 || !errors_before_crash.is_empty();
            if due || stuck {
                crashed_at = Some(Instant::now());
                let timing = match &crash {
                    Crash::Random { timing, .. } | Crash::AtStep { timing, .. } => *timing,
                };
                match timing.filter(|_| !stuck) {
                    None => mount.kill(),
                    Some(timing) => {
                        // A step's own fsync: of the segment being written, the compaction's
                        // output, or (log.fsync) the active segment; otherwise any segment's.
                        let files = match &crash {
                            Crash::AtStep { step, .. } if step.starts_with("log.") => r"\.seg$",
                            Crash::AtStep { .. } => r"seg\.tmp",
                            Crash::Random { .. } => r"\.seg",
                        };
                        let arm = format!(
                            "lazyfs::crash::timing={}::op=fsync::from_rgx={files}",
                            timing.name()
                        );
                        if mount.command(&arm).is_err() {
                            mount.kill();
                        } else if matches!(crash, Crash::AtStep { .. }) {
                            // Give LazyFS time to read the command, then let the child go on
                            // to the fsync.
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                // A child stopped at a step goes on (into the armed crash, or after the kill).
                if let Some(mut go) = stdin.take() {
                    let _ = go.write_all(b"go\n");
                }
            }
        } else if !lazyfs_gone {
            if mount.exited() {
                lazyfs_gone = true;
                let _ = child.kill();
            } else if crashed_at.is_some_and(|c| c.elapsed() > Duration::from_secs(10)) {
                // No fsync came (the child was idle): the crash is a kill.
                timed_out = true;
                mount.kill();
            }
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("{what}: the round did not end in 180 s");
        }
    }
    let crashed_at = crashed_at.unwrap();
    let dying = Instant::now();
    while !mount.exited() {
        if dying.elapsed() > Duration::from_secs(5) {
            // The child ended while LazyFS waited for an fsync that never came.
            timed_out = true;
            mount.kill();
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let _ = child.kill();
    let _ = child.wait();
    reader.join().unwrap();
    let child_stderr = err_reader.join().unwrap();
    let root = mount.root.clone();
    let lazyfs_end = mount.finish();
    let keep = || {
        format!(
            "kept: {} (LazyFS ended with {lazyfs_end}; its log and the root there); the \
             child's stderr:\n{child_stderr}",
            base.display()
        )
    };
    assert!(
        errors_before_crash.is_empty(),
        "{what}: the child failed before any crash: {errors_before_crash:?}\n{}",
        keep()
    );

    // What a power failure left: a copy of the root (the original is remounted next round).
    let snapshot = base.join(format!("snapshot{n}"));
    copy_dir(&root, &snapshot);
    let db = NodeDb::open_with(
        snapshot.join("db"),
        VERSION,
        self_id(),
        Options {
            durability: Durability::Process,
            ..mode.options(chain)
        },
    )
    .unwrap_or_else(|e| {
        panic!(
            "{what}: opening the copy after the power loss failed: {e}\n{}",
            keep()
        )
    });
    let mut torn_tails = 0;
    for problem in &db.recovery().problems {
        assert_eq!(
            problem.kind,
            DamageKind::TornTail,
            "{what}: a power loss can only tear the tail, but recovery found: {problem}\n{}",
            keep()
        );
        torn_tails += 1;
    }
    let mut outcome = Outcome {
        torn_tails,
        timed_out,
        kind: crash.kind(),
        ..Outcome::default()
    };
    for (t, model) in models.iter_mut().enumerate() {
        let actual = State::read(&db, mode, t);
        let start = model.n;
        // The operation after the last one that returned may have been in flight.
        let hi = last_written[t].map_or(start, |k| k + 1) + 1;
        let mut lo = acked[t];
        if let (Mode::GroupCommitDelay, Durability::GroupCommit { max_delay }) =
            (mode, mode.durability(chain))
        {
            // Every write older than max_delay (and a margin) at the crash is durable.
            let bound = crashed_at.checked_sub(max_delay + DELAY_MARGIN);
            let old = written_at[t]
                .iter()
                .filter(|(_, at)| bound.is_some_and(|b| *at < b))
                .map(|(k, _)| k + 1)
                .max()
                .unwrap_or(start);
            outcome.delay_checked += old.saturating_sub(lo);
            lo = lo.max(old);
        }
        let before = model.clone();
        let Some(found) = model.find(&actual, lo, hi) else {
            let mut probe = before.clone();
            let differing = |m: &Model| {
                let expected = m.state();
                (0..POOL as usize)
                    .filter(|&i| expected.seen[i] != actual.seen[i])
                    .map(|i| (i, expected.seen[i].clone(), actual.seen[i].clone()))
                    .take(3)
                    .collect::<Vec<_>>()
            };
            probe.find(&actual, start, hi);
            let mut at_lo = before.clone();
            while at_lo.n < lo {
                at_lo.step();
            }
            panic!(
                "{what}: thread {t}: the copy matches the model after no n in {lo}..={hi} \
                 (durable acknowledged: {}, round start {start}, last written {:?}); \
                 {}; the model after {lo} differs at (id, expected, actual): {:?}; \
                 local seq: expected {:?}, actual {:?}\n{}",
                acked[t],
                last_written[t],
                if probe.n <= hi {
                    format!(
                        "it equals the model after {} (below the durable bound)",
                        probe.n
                    )
                } else {
                    "nor after any n from the round's start".to_string()
                },
                differing(&at_lo),
                at_lo.state.local_seq,
                actual.local_seq,
                keep()
            );
        };
        outcome.acknowledged += acked[t] - start;
        outcome.written += written_at[t].len() as u64;
        for &(k, at) in &written_at[t] {
            if at < crashed_at {
                outcome.written_before += 1;
                if k >= found {
                    outcome.lost += 1;
                    let age = crashed_at - at;
                    outcome.oldest_lost = outcome.oldest_lost.max(Some(age));
                }
            }
        }
        outcome.kept_unacknowledged += found.saturating_sub(acked[t]);
    }
    if mode == Mode::Records {
        // The records read back whole and signed (decoding checks the signature).
        for i in 0..POOL {
            let seq = models[0].state.entry(&record_id(i)).record_seq();
            if seq > 0 {
                let record = db
                    .record::<peerlog::enr::CombinedKey>(&record_id(i))
                    .unwrap_or_else(|| panic!("{what}: record {i} does not decode"));
                assert_eq!(record.seq(), seq, "{what}");
            }
        }
    }
    // The copy takes writes and closes cleanly.
    db.update_last_ping(&NodeId([0x99; 64]), at(0))
        .and_then(|()| db.sync())
        .unwrap_or_else(|e| panic!("{what}: the recovered copy refuses a write: {e}"));
    db.close().unwrap();
    fs::remove_dir_all(&snapshot).unwrap();
    outcome
}

fn rounds_per_mode() -> usize {
    std::env::var("PEERLOG_POWER_LOSS_ROUNDS")
        .ok()
        .map(|v| v.parse().expect("PEERLOG_POWER_LOSS_ROUNDS is a number"))
        .unwrap_or(8)
}

fn base_seed() -> u64 {
    std::env::var("PEERLOG_POWER_LOSS_SEED")
        .ok()
        .map(|v| v.parse().expect("PEERLOG_POWER_LOSS_SEED is a number"))
        .unwrap_or_else(rand::random)
}

/// One LazyFS at a time: rounds of the modes' tests interleave but never overlap, so that the
/// timing check of `GroupCommitDelay` does not compete for the CPUs.
static ONE_ROUND_AT_A_TIME: Mutex<()> = Mutex::new(());

fn power_loss(mode: Mode) {
    let Some(lazyfs) = lazyfs() else { return };
    let rounds = rounds_per_mode();
    let seed = base_seed();
    note(&format!(
        "power loss, {}: {rounds} crashes, PEERLOG_POWER_LOSS_SEED={seed}",
        mode.name()
    ));
    let mut rng = StdRng::seed_from_u64(seed ^ splitmix(mode as u64));
    let keep_all = std::env::var_os("PEERLOG_POWER_LOSS_KEEP").is_some();
    let verbose = std::env::var_os("PEERLOG_POWER_LOSS_VERBOSE").is_some();
    let mut busy = Duration::ZERO;
    let mut total = Outcome::default();
    let (mut timeouts, mut lost_rounds) = (0, 0);
    let mut kinds: BTreeMap<String, usize> = BTreeMap::new();
    // Per durability: crashes, and the oldest write a crash took.
    let mut per_durability: BTreeMap<String, (usize, Duration)> = BTreeMap::new();
    let mut done = 0;
    let mut chain = 0u64;
    while done < rounds {
        // No "-o" anywhere in the path: LazyFS would take it for an option and ignore its
        // config (tempfile's random names have no '-').
        // Removed below once its rounds passed: a failed round's stays for a look.
        let base = tempfile::Builder::new()
            .prefix("peerlogpl")
            .tempdir()
            .unwrap()
            .keep();
        assert!(
            !base.to_string_lossy().to_lowercase().contains("-o"),
            "LazyFS cannot take a config path with \"-o\" in it: {}",
            base.display()
        );
        let workload = splitmix(seed ^ chain);
        let mut models: Vec<Model> = (0..mode.threads())
            .map(|t| Model::new(mode, workload, t))
            .collect();
        for n in 0..CHAIN.min(rounds - done) {
            let what = format!(
                "{} (seed {seed}, chain {chain}, crash {n}, {:?})",
                mode.name(),
                mode.durability(chain)
            );
            let outcome = {
                let _one = ONE_ROUND_AT_A_TIME
                    .lock()
                    .unwrap_or_else(|e| e.into_inner());
                let began = Instant::now();
                let outcome = round(
                    &lazyfs,
                    mode,
                    &base,
                    n,
                    chain,
                    workload,
                    &mut models,
                    &mut rng,
                    &what,
                );
                busy += began.elapsed();
                if verbose {
                    note(&format!(
                        "{what}: {:.2} s, {} writes, {} durable, {} lost",
                        began.elapsed().as_secs_f64(),
                        outcome.written,
                        outcome.acknowledged,
                        outcome.lost
                    ));
                }
                outcome
            };
            let seen = per_durability
                .entry(format!("{:?}", mode.durability(chain)))
                .or_default();
            seen.0 += 1;
            seen.1 = seen.1.max(outcome.oldest_lost.unwrap_or_default());
            *kinds.entry(outcome.kind.clone()).or_default() += 1;
            timeouts += usize::from(outcome.timed_out);
            lost_rounds += usize::from(outcome.lost > 0);
            total.acknowledged += outcome.acknowledged;
            total.written += outcome.written;
            total.written_before += outcome.written_before;
            total.lost += outcome.lost;
            total.kept_unacknowledged += outcome.kept_unacknowledged;
            total.delay_checked += outcome.delay_checked;
            total.torn_tails += outcome.torn_tails;
            done += 1;
        }
        if keep_all {
            note(&format!("kept: {}", base.display()));
        } else {
            fs::remove_dir_all(&base).unwrap();
        }
        chain += 1;
    }
    let durabilities = per_durability
        .iter()
        .map(|(d, (n, oldest))| {
            format!(
                "{d}: {n} crashes, the oldest write lost {} ms old",
                oldest.as_millis()
            )
        })
        .collect::<Vec<_>>()
        .join("; ");
    note(&format!(
        "power loss, {}: {done} crashes in {:.1} s ({timeouts} armed that never fired, then \
         killed); crashes {kinds:?}; {durabilities}; {} writes ({} before the crash was set \
         off), {} acknowledged durable: all there; {} of those before lost (in {lost_rounds} \
         crashes), {} there without a durable acknowledgement; {} checked by the max_delay \
         bound; {} torn tails, no other damage",
        mode.name(),
        busy.as_secs_f64(),
        total.written,
        total.written_before,
        total.acknowledged,
        total.lost,
        total.kept_unacknowledged,
        total.delay_checked,
        total.torn_tails,
    ));
    if mode == Mode::Process && rounds >= CHAIN {
        // The first crash of each directory is a kill a random time after the last sync():
        // if nothing was lost, LazyFS is not dropping what was never synced.
        assert!(
            total.lost > 0,
            "{}: no crash lost a write that was never synced: LazyFS is not dropping data",
            mode.name()
        );
    }
}

#[test]
fn power_loss_sync_each_write() {
    power_loss(Mode::SyncEachWrite);
}

#[test]
fn power_loss_group_commit_with_sync_from_threads() {
    power_loss(Mode::GroupCommit);
}

#[test]
fn power_loss_group_commit_max_delay() {
    power_loss(Mode::GroupCommitDelay);
}

#[test]
fn power_loss_segment_rotation() {
    power_loss(Mode::Rotation);
}

#[test]
fn power_loss_process_durability() {
    power_loss(Mode::Process);
}

#[test]
fn power_loss_during_compaction() {
    power_loss(Mode::Compaction);
}

#[test]
fn power_loss_signed_records_and_local_seq() {
    power_loss(Mode::Records);
}

/// Without LazyFS too: a database on a file system without `fallocate` (the fail points make
/// it report EOPNOTSUPP at both preallocation steps) creates, grows, rotates and compacts its
/// segments, and reopens with every write.
#[test]
fn a_database_runs_where_fallocate_is_unsupported() {
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(BTreeMap::<String, usize>::new()));
    let unsupported = {
        let seen = Arc::clone(&seen);
        FailPoints::new(move |step| {
            if step.ends_with(".allocate") {
                *seen.lock().unwrap().entry(step.to_string()).or_default() += 1;
                return Err(io::Error::from_raw_os_error(libc::EOPNOTSUPP));
            }
            Ok(())
        })
    };
    let options = || Options {
        segment_size: 3 << 20,
        fail_points: unsupported.clone(),
        compact_dead_ratio: 1.0,
        compact_min_bytes: u64::MAX,
        expiration: Duration::from_secs(50 * 365 * 24 * 3600),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options()).unwrap();
    // 40,000 pings of 96 bytes: segments grow step by step and one rotation.
    for k in 0..40_000u64 {
        db.update_last_ping(&id(Mode::Process, 0, k % 500), at(k))
            .unwrap();
    }
    db.compact().unwrap();
    db.update_last_pong(&id(Mode::Process, 0, 1), at(7))
        .unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options()).unwrap();
    assert!(db.recovery().problems.is_empty());
    for i in 0..500 {
        let last = (0..40_000u64).rev().find(|k| k % 500 == i).unwrap();
        assert_eq!(db.last_ping(&id(Mode::Process, 0, i)), Some(at(last)));
    }
    assert_eq!(db.last_pong(&id(Mode::Process, 0, 1)), Some(at(7)));
    let seen = seen.lock().unwrap();
    assert!(
        seen.get("segment.allocate").is_some_and(|&n| n >= 2)
            && seen.get("log.allocate").is_some_and(|&n| n >= 2),
        "both preallocation steps go through the fallback: {seen:?}"
    );
}

/// Without LazyFS too: the model follows each one-thread mode's workload on a plain directory,
/// evictions included, so that a mistake in the model shows here rather than as a power-loss
/// failure where LazyFS runs.
#[test]
fn the_model_follows_each_workload_without_a_crash() {
    for mode in MODES.into_iter().filter(|m| m.threads() == 1) {
        // On a tmpfs where there is one: this tests no durability.
        let dir = common::scratch_dir();
        let db = NodeDb::open_with(dir.path(), VERSION, self_id(), mode.options(0)).unwrap();
        let seed = 0x5eed;
        let mut model = Model::new(mode, seed, 0);
        let mut evicting = false;
        while model.n < 400 {
            apply(&db, mode, 0, &op(mode, seed, 0, model.n))
                .unwrap_or_else(|e| panic!("{}: operation {}: {e}", mode.name(), model.n));
            model.step();
            evicting |= db.peers().len() == MAX_NODES;
            assert_eq!(
                State::read(&db, mode, 0),
                model.state(),
                "{}: after {} operations",
                mode.name(),
                model.n
            );
        }
        assert!(evicting, "{}: the store never filled", mode.name());
        db.close().unwrap();
    }
}
