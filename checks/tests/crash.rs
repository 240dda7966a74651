//! Crash test: a child process writes at full speed and is killed with SIGKILL at random
//! moments; the parent reopens the directory and checks that every write the child
//! acknowledged is there and nothing else is.
//!
//! Mechanism: the parent re-executes this test binary (`--exact crash_child`) with
//! `PEERLOG_CRASH_CHILD` naming the mode, plus the directory, the workload seed and where to
//! continue. The child opens the database, prints `READY <s>` (the first operation it will
//! do), then performs operations `s, s+1, ...` of a deterministic sequence and prints `A <k>`
//! on its stdout (a pipe to the parent) after the write method for operation `k` returned `Ok`.
//!
//! Every operation writes a value that encodes its index `k` (a node whose IP address is `k`,
//! a ping or pong at second `k`, `k + 1` findnode failures, a signed record of seq `k + 1`
//! whose endpoint encodes `k` (IPv4, IPv6 or none), a ping or pong at second `k` or `k + 1`
//! failures at one of the id's IPs (IPv4, its IPv4-mapped form, IPv6), the local seq `k + 1`),
//! or deletes an id, or (in the compaction variant) compacts. An unsigned record does not
//! replace a signed one (nothing is written): the model knows. Signing is randomised, so the
//! parent knows a record by its seq and endpoint, and at the end of each directory's chain
//! also decodes every stored record (which verifies its signature). The parent keeps the
//! shared model of peer state (`peerlog_checks::model`, eviction rule included) after the
//! first `n` operations, so it knows the exact expected state: after the child acknowledged operation
//! `n - 1`, the database must equal the model after `n` operations, or after `n + 1` (the one
//! operation in flight at the kill). A directory is reused across many kills (each child
//! continues where the previous one stopped), so recovery of a recovered log is exercised; a
//! kill may also land while the child is still opening (recovering) the directory. The parent
//! checks the database only after some of the kills, so the next child sometimes recovers a
//! log that nobody recovered since the crash.
//!
//! `PEERLOG_CRASH_ITERATIONS=N` sets the kills per mode (default 10: 50 in total);
//! `PEERLOG_CRASH_SEED=S` replays a run (the seed is printed).

mod common;

use std::io::{BufRead, BufReader, Read};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::{mpsc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::stored_record;
use peerlog::enr::{CombinedKey, Enr, EnrKey, EnrPublicKey};
use peerlog::{DamageKind, Durability, Event, Node, NodeDb, NodeId, Options};
use peerlog_checks::model::{self, observe, Observed};
use peerlog_checks::process::{env, say, splitmix};
use rand::{RngExt, SeedableRng};

const VERSION: u64 = 7;
/// Ids the workload touches: few enough that ids are overwritten and deleted often.
const POOL: u64 = 256;
/// The first ids of the pool are the ids of secp256k1 keys (`common::record_key`), so that
/// they can have signed records; the others are arbitrary bytes.
const RECORD_IDS: u64 = 16;
/// `local_seq()` without a stored seq is the clock in milliseconds, far above every seq the
/// workload stores.
const CLOCK_MS_FLOOR: u64 = 1_000_000_000_000;
/// In the compaction variant, every this many operations is a `compact()`.
const COMPACT_EVERY: u64 = 64;
/// In group commit mode the child calls `sync()` after every this many operations.
const SYNC_EVERY: u64 = 50;
/// Kills per directory before starting over with a fresh one (bounds the log's size).
const CHAIN: usize = 10;
/// The store's bound (`Options::max_nodes`), below the pool's ids: most writes about a new
/// id evict one (a record of its own, which a kill can separate from the write it makes room
/// for). The model picks the victim by the rule (DESIGN.md, "A bounded store").
const MAX_NODES: usize = 24;
/// Timestamps of pings and pongs: second `BASE_SECS + k` for operation `k`.
const BASE_SECS: u64 = 1_600_000_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Process,
    GroupCommit,
    SyncEachWrite,
    /// Small segments and a `compact()` every `COMPACT_EVERY` operations; the durability
    /// changes with the chain (`Process`, `GroupCommit`, `SyncEachWrite`).
    Compaction,
    /// Small segments and automatic background compactions, triggered by the writes. Node
    /// records are only written together with a pong (`Op::Bond`), so the expiry that comes
    /// with each compaction drops nothing and the state does not depend on when they run.
    AutoCompaction,
}

impl Mode {
    fn name(self) -> &'static str {
        match self {
            Mode::Process => "process",
            Mode::GroupCommit => "group-commit",
            Mode::SyncEachWrite => "sync-each-write",
            Mode::Compaction => "compaction",
            Mode::AutoCompaction => "auto-compaction",
        }
    }

    fn parse(name: &str) -> Mode {
        [
            Mode::Process,
            Mode::GroupCommit,
            Mode::SyncEachWrite,
            Mode::Compaction,
            Mode::AutoCompaction,
        ]
        .into_iter()
        .find(|m| m.name() == name)
        .unwrap_or_else(|| panic!("unknown crash mode {name:?}"))
    }

    fn durability(self, chain: u64) -> Durability {
        let group = Durability::GroupCommit {
            max_delay: Duration::from_millis(2),
        };
        match self {
            Mode::Process => Durability::Process,
            Mode::GroupCommit => group,
            Mode::SyncEachWrite => Durability::SyncEachWrite,
            Mode::Compaction | Mode::AutoCompaction => {
                [Durability::Process, group, Durability::SyncEachWrite][(chain % 3) as usize]
            }
        }
    }

    /// The options the child writes with and the parent reopens with.
    fn options(self, chain: u64) -> Options {
        Options {
            durability: self.durability(chain),
            segment_size: match self {
                Mode::Process | Mode::GroupCommit => 256 << 10,
                Mode::SyncEachWrite => 16 << 10,
                Mode::Compaction | Mode::AutoCompaction => 4096,
            },
            // Nothing expires: every timestamp is recent next to 50 years, and a node without
            // a pong is judged by its newest event.
            expiration: Duration::from_secs(50 * 365 * 24 * 3600),
            compact_dead_ratio: if self == Mode::AutoCompaction {
                0.3
            } else {
                1.0
            },
            compact_min_bytes: if self == Mode::AutoCompaction {
                16 << 10
            } else {
                u64::MAX
            },
            max_nodes: MAX_NODES,
            ..Options::default()
        }
    }
}

fn id(i: u64) -> NodeId {
    if i < RECORD_IDS {
        return record_ids()[i as usize];
    }
    let mut bytes = [0x5a; 64];
    bytes[..8].copy_from_slice(&(i + 1).to_be_bytes());
    NodeId(bytes)
}

/// The keys of the ids that can have signed records, made once (a key costs a scalar
/// multiplication).
fn record_keys() -> &'static [CombinedKey] {
    static KEYS: OnceLock<Vec<CombinedKey>> = OnceLock::new();
    KEYS.get_or_init(|| (0..RECORD_IDS).map(common::record_key).collect())
}

fn record_ids() -> &'static [NodeId] {
    static IDS: OnceLock<Vec<NodeId>> = OnceLock::new();
    IDS.get_or_init(|| {
        record_keys()
            .iter()
            .map(|key| {
                let public = key.public().encode_uncompressed();
                NodeId(public.as_slice().try_into().expect("a 64-byte key"))
            })
            .collect()
    })
}

fn self_id() -> NodeId {
    NodeId([0xee; 64])
}

fn at(k: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(BASE_SECS + k)
}

/// A node record that encodes `k` (in its IP address).
fn node_for(i: u64, k: u64) -> Node {
    let ip = if k.is_multiple_of(2) {
        IpAddr::V4(Ipv4Addr::from(0x0a00_0000 | (k >> 1) as u32 & 0x00ff_ffff))
    } else {
        IpAddr::V6(Ipv6Addr::from(0xfd00_u128 << 112 | u128::from(k)))
    };
    Node::new(
        id(i),
        ip,
        (k % 60_000) as u16 + 1,
        (k / 7 % 60_000) as u16 + 1,
    )
}

/// The endpoint of the signed record of operation `k` (seq `k + 1`): an IPv4 or IPv6 address
/// and ports that encode `k`, or, one time in three, no IP at all.
fn record_endpoint(i: u64, k: u64) -> Option<Node> {
    let port = (k % 60_000) as u16 + 1;
    match k % 3 {
        0 => Some(Node::new(
            id(i),
            IpAddr::V4(Ipv4Addr::from(0x0b00_0000 | k as u32 & 0x00ff_ffff)),
            port,
            port,
        )),
        1 => Some(Node::new(
            id(i),
            IpAddr::V6(Ipv6Addr::from(0xfd01_u128 << 112 | u128::from(k))),
            port,
            0,
        )),
        _ => None,
    }
}

/// The signed record of operation `k` for id `i` (< `RECORD_IDS`): seq `k + 1`, the endpoint
/// of [`record_endpoint`] (without IP, only a UDP port). Signing is randomised, so the parent
/// knows it by seq and endpoint, not by its bytes.
fn signed_record(i: u64, k: u64) -> Enr<CombinedKey> {
    let mut builder = Enr::builder();
    builder.seq(k + 1);
    match record_endpoint(i, k) {
        Some(node) => {
            match node.ip {
                IpAddr::V4(ip) => builder.ip4(ip).udp4(node.udp).tcp4(node.tcp),
                IpAddr::V6(ip) => builder.ip6(ip).udp6(node.udp),
            };
        }
        None => {
            builder.udp4((k % 60_000) as u16 + 1);
        }
    }
    builder
        .build(&record_keys()[i as usize])
        .expect("a signed record")
}

/// The IPs of the per-IP operations on id `i`: an IPv4 address, its IPv4-mapped form (the
/// same IP to the database), an IPv6 address.
fn ip_of(i: u64, which: u64) -> IpAddr {
    let v4 = Ipv4Addr::from(0x0a63_0000 | i as u32 & 0xffff);
    match which % 3 {
        0 => IpAddr::V4(v4),
        1 => IpAddr::V6(v4.to_ipv6_mapped()),
        _ => IpAddr::V6(Ipv6Addr::from(0xfd02_u128 << 112 | u128::from(i))),
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
enum Op {
    Node(u64, Node),
    Ping(u64, SystemTime),
    Pong(u64, SystemTime),
    Fails(u64, u32),
    Delete(u64),
    Compact,
    /// A pong at second `k`, then the node record: two writes.
    Bond(u64, SystemTime, Node),
    /// `update_record` of [`signed_record`]`(i, k)`: seq `k + 1`.
    Record(u64, u64),
    PingFrom(u64, IpAddr, SystemTime),
    PongFrom(u64, IpAddr, SystemTime),
    FailsAt(u64, IpAddr, u32),
    LocalSeq(u64),
}

/// Operation `k` of the workload with `seed`.
fn op(mode: Mode, seed: u64, k: u64) -> Op {
    if mode == Mode::Compaction && k % COMPACT_EVERY == COMPACT_EVERY - 1 {
        return Op::Compact;
    }
    let r = splitmix(seed ^ splitmix(k));
    let i = (r >> 32) % POOL;
    // Signed records (they cost a signature and a verification, about 3 ms in a debug
    // build) only for the first ids, which the other operations touch too.
    let signed = (r >> 16) % RECORD_IDS;
    let ip = ip_of(i, r >> 8);
    match r % 32 {
        0..=8 if mode == Mode::AutoCompaction => Op::Bond(i, at(k), node_for(i, k)),
        0..=8 => Op::Node(i, node_for(i, k)),
        9..=12 => Op::Ping(i, at(k)),
        13..=16 => Op::Pong(i, at(k)),
        17..=19 => Op::Fails(i, k as u32 + 1),
        20..=23 => Op::Delete(i),
        24 => Op::Record(signed, k),
        25..=26 => Op::PingFrom(i, ip, at(k)),
        27..=28 => Op::PongFrom(i, ip, at(k)),
        29..=30 => Op::FailsAt(i, ip, k as u32 + 1),
        _ => Op::LocalSeq(k + 1),
    }
}

fn apply(db: &NodeDb, op: &Op) -> Result<(), peerlog::Error> {
    match op {
        Op::Node(_, node) => db.update_node(node),
        Op::Ping(i, t) => db.update_last_ping(&id(*i), *t),
        Op::Pong(i, t) => db.update_last_pong(&id(*i), *t),
        Op::Fails(i, f) => db.update_find_fails(&id(*i), *f),
        Op::Delete(i) => db.delete_node(&id(*i)),
        Op::Compact => db.compact().map(|_| ()),
        Op::Bond(i, t, node) => {
            db.update_last_pong(&id(*i), *t)?;
            db.update_node(node)
        }
        Op::Record(i, k) => {
            let written = db.update_record(&signed_record(*i, *k))?;
            assert!(
                written,
                "a record of a higher seq than any before was ignored"
            );
            Ok(())
        }
        Op::PingFrom(i, ip, t) => db.update_last_ping_from(&id(*i), *ip, *t),
        Op::PongFrom(i, ip, t) => db.update_last_pong_from(&id(*i), *ip, *t),
        Op::FailsAt(i, ip, f) => db.update_find_fails_at(&id(*i), *ip, *f),
        Op::LocalSeq(seq) => db.store_local_seq(*seq),
    }
}

/// What the API says about id `i`, at its IPv4 and IPv6 addresses (its IPv4-mapped form read
/// too, and checked to read the same), the signed record by its seq (signing is randomised).
type Seen = (Observed, Option<u64>);

/// The IPs at which the liveness of id `i` is read: its IPv4 address and its IPv6 one.
fn probes(i: u64) -> [IpAddr; 2] {
    [ip_of(i, 0), ip_of(i, 2)]
}

fn read(db: &NodeDb, i: u64) -> Seen {
    observe(db, &id(i), &probes(i)).without_signature()
}

/// The state after the first `n` operations: the shared model of peer state, with the
/// workload that drives it.
#[derive(Clone, Debug)]
struct Model {
    mode: Mode,
    seed: u64,
    n: u64,
    state: model::Model,
}

impl Model {
    fn new(mode: Mode, seed: u64) -> Model {
        Model {
            mode,
            seed,
            n: 0,
            state: model::Model::default(),
        }
    }

    /// What id `i` reads as in this state.
    fn seen(&self, i: u64) -> Seen {
        self.state
            .entry(&id(i))
            .observed(&probes(i))
            .without_signature()
    }

    fn local_seq(&self) -> Option<u64> {
        self.state.local_seq
    }

    /// The events operation `n` writes, in order, from this state (before evictions): an
    /// unsigned record over a signed one writes nothing, a bond its pong and then its record.
    fn events(&self, op: &Op) -> Vec<Event> {
        match op {
            Op::Node(_, node) if !self.state.writes_unsigned(node) => Vec::new(),
            Op::Node(_, node) => vec![Event::NodeUpdated(node.clone())],
            Op::Ping(i, t) => vec![Event::Ping { id: id(*i), at: *t }],
            Op::Pong(i, t) => vec![Event::Pong { id: id(*i), at: *t }],
            Op::Fails(i, f) => vec![Event::FindFails {
                id: id(*i),
                fails: *f,
            }],
            Op::Delete(i) => vec![Event::NodeDeleted { id: id(*i) }],
            // Compaction expires what is expired: here nothing (an expiration of 50 years,
            // and a node without a pong is judged by its newest event, written just now).
            Op::Compact => Vec::new(),
            Op::Bond(i, t, node) => {
                let pong = Event::Pong { id: id(*i), at: *t };
                let mut after = self.state.clone();
                after.apply(&pong);
                let node =
                    Some(Event::NodeUpdated(node.clone())).filter(|_| after.writes_unsigned(node));
                std::iter::once(pong).chain(node).collect()
            }
            Op::Record(i, k) => vec![Event::Record(stored_record(&signed_record(*i, *k)))],
            Op::PingFrom(i, ip, t) => vec![Event::PingFrom {
                id: id(*i),
                ip: ip.to_canonical(),
                at: *t,
            }],
            Op::PongFrom(i, ip, t) => vec![Event::PongFrom {
                id: id(*i),
                ip: ip.to_canonical(),
                at: *t,
            }],
            Op::FailsAt(i, ip, f) => vec![Event::FindFailsAt {
                id: id(*i),
                ip: ip.to_canonical(),
                fails: *f,
            }],
            Op::LocalSeq(seq) => vec![Event::LocalSeq { seq: *seq }],
        }
    }

    /// The states operation `n` goes through, the last the state after it: each eviction and
    /// each write is a record of its own, so a kill can land between them.
    fn step_states(&self) -> Vec<Model> {
        let mut states = Vec::new();
        let mut m = self.clone();
        let op = op(m.mode, m.seed, m.n);
        for event in self.events(&op) {
            for evicted in m.state.evictions_in_write_order(&event, MAX_NODES) {
                m.state.apply(&evicted);
                states.push(m.clone());
            }
            m.state.apply(&event);
            states.push(m.clone());
        }
        m.n += 1;
        match states.last_mut() {
            Some(last) => *last = m,
            None => states.push(m),
        }
        states
    }

    fn step(&mut self) {
        *self = self
            .step_states()
            .pop()
            .expect("the state after the operation");
    }

    fn advance_to(&mut self, n: u64) {
        assert!(
            n >= self.n,
            "the model cannot go back from {} to {n}",
            self.n
        );
        while self.n < n {
            self.step();
        }
    }
}

// ---------------------------------------------------------------------------------------
// The child.

/// Whether operation `k` (the one in flight at the last kill) is in the reopened database.
/// Every operation's value is unique to it, so reading the one id it touched tells.
fn in_database(db: &NodeDb, op: &Op) -> bool {
    match op {
        Op::Node(i, node) => db.node(&id(*i)).as_ref() == Some(node),
        Op::Ping(i, t) => db.last_ping(&id(*i)) == Some(*t),
        Op::Pong(i, t) => db.last_pong(&id(*i)) == Some(*t),
        Op::Fails(i, f) => db.find_fails(&id(*i)) == *f,
        Op::Record(i, k) => db.record_seq(&id(*i)) == k + 1,
        Op::PingFrom(i, ip, t) => db.last_ping_from(&id(*i), *ip) == Some(*t),
        Op::PongFrom(i, ip, t) => db.last_pong_from(&id(*i), *ip) == Some(*t),
        Op::FailsAt(i, ip, f) => db.find_fails_at(&id(*i), *ip) == *f,
        Op::LocalSeq(seq) => db.local_seq() == *seq,
        // Absent either way if the id was empty before: then both starts give one state.
        Op::Delete(i) => {
            read(db, *i)
                == model::Entry::default()
                    .observed(&probes(*i))
                    .without_signature()
        }
        Op::Compact | Op::Bond(..) => unreachable!("done again, not inspected"),
    }
}

/// Plays the child when `PEERLOG_CRASH_CHILD` is set; passes at once otherwise.
#[test]
fn crash_child() {
    let Ok(mode) = std::env::var("PEERLOG_CRASH_CHILD") else {
        return;
    };
    let mode = Mode::parse(&mode);
    let dir = env("PEERLOG_CRASH_DIR");
    let seed: u64 = env("PEERLOG_CRASH_SEED").parse().unwrap();
    let chain: u64 = env("PEERLOG_CRASH_CHAIN").parse().unwrap();
    let start: u64 = env("PEERLOG_CRASH_START").parse().unwrap();
    let in_flight = env("PEERLOG_CRASH_IN_FLIGHT") == "1";

    let db = match NodeDb::open_with(&dir, VERSION, self_id(), mode.options(chain)) {
        Ok(db) => db,
        Err(e) => {
            say(&format!("\nERR open: {e}\n"));
            std::process::exit(3);
        }
    };
    // A newline first: libtest has printed "test crash_child ... " without one.
    say("\n");
    for problem in &db.recovery().problems {
        if problem.kind != DamageKind::TornTail {
            say(&format!("PROBLEM {problem}\n"));
        }
    }
    let mut k = start;
    if in_flight {
        let pending = op(mode, seed, start);
        if matches!(pending, Op::Compact | Op::Bond(..)) {
            // An interrupted compaction may have expired some nodes and not others (each
            // expiry is its own event), a bond may have written its pong only; doing it
            // again finishes it (both are idempotent).
            if let Err(e) = apply(&db, &pending) {
                say(&format!("ERR op {start}: {e}\n"));
                std::process::exit(3);
            }
            k += 1;
        } else if in_database(&db, &pending) {
            k += 1;
        }
    }
    // The keys and ids of signed records take tens of milliseconds in a debug build: made
    // before the kill window opens.
    record_ids();
    say(&format!("READY {k}\n"));
    let durability = mode.durability(chain);
    loop {
        if let Err(e) = apply(&db, &op(mode, seed, k)) {
            say(&format!("ERR op {k}: {e}\n"));
            std::process::exit(3);
        }
        say(&format!("A {k}\n"));
        k += 1;
        if matches!(durability, Durability::GroupCommit { .. }) && k.is_multiple_of(SYNC_EVERY) {
            if let Err(e) = db.sync() {
                say(&format!("ERR sync: {e}\n"));
                std::process::exit(3);
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// The parent.

/// What one child run reported.
struct Run {
    /// The first operation the child did, if it got that far (`READY`).
    ready: Option<u64>,
    /// The last operation acknowledged.
    last_ack: Option<u64>,
}

fn iterations() -> usize {
    std::env::var("PEERLOG_CRASH_ITERATIONS")
        .ok()
        .map(|v| v.parse().expect("PEERLOG_CRASH_ITERATIONS is a number"))
        .unwrap_or(10)
}

fn base_seed() -> u64 {
    std::env::var("PEERLOG_CRASH_SEED")
        .ok()
        .map(|v| v.parse().expect("PEERLOG_CRASH_SEED is a number"))
        .unwrap_or_else(rand::random)
}

/// Starts a child on `dir` and kills it with SIGKILL at a random moment.
fn run_child(
    mode: Mode,
    chain: u64,
    dir: &Path,
    seed: u64,
    start: u64,
    in_flight: bool,
    rng: &mut impl RngExt,
) -> Run {
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "crash_child", "--nocapture", "--test-threads=1"])
        .env("PEERLOG_CRASH_CHILD", mode.name())
        .env("PEERLOG_CRASH_DIR", dir)
        .env("PEERLOG_CRASH_SEED", seed.to_string())
        .env("PEERLOG_CRASH_CHAIN", chain.to_string())
        .env("PEERLOG_CRASH_START", start.to_string())
        .env("PEERLOG_CRASH_IN_FLIGHT", if in_flight { "1" } else { "0" })
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting the child");
    let spawned = Instant::now();
    let stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let (lines_tx, lines) = mpsc::channel::<String>();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_tx.send(line).is_err() {
                break;
            }
        }
    });
    let err_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    let mut seen = Vec::new();
    // One kill in five lands at a random moment after the start, often while the child is
    // still opening (replaying, cutting a torn tail); the others a random time into writing.
    if rng.random_ratio(1, 5) {
        std::thread::sleep(Duration::from_micros(rng.random_range(0..15_000)));
    } else {
        let deadline = spawned + Duration::from_secs(60);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) => {
                    let ready = line.starts_with("READY ") || line.starts_with("ERR");
                    seen.push(line);
                    if ready {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
        let max_ms = match (mode, mode.durability(chain)) {
            (Mode::Compaction | Mode::AutoCompaction, _) => 150,
            (_, Durability::SyncEachWrite) => 60,
            // Signed records cost milliseconds each in a debug build: a wider window.
            _ => 40,
        };
        std::thread::sleep(Duration::from_micros(rng.random_range(0..max_ms * 1000)));
    }
    let _ = child.kill();
    let status = child.wait().unwrap();
    reader.join().unwrap();
    seen.extend(lines.try_iter());
    let stderr = err_reader.join().unwrap();

    let mut run = Run {
        ready: None,
        last_ack: None,
    };
    for line in &seen {
        if let Some(k) = line.strip_prefix("READY ") {
            run.ready = Some(k.parse().unwrap());
        } else if let Some(k) = line.strip_prefix("A ") {
            let k: u64 = k.parse().unwrap();
            let expected = run.last_ack.map_or(run.ready, |a| Some(a + 1));
            assert_eq!(Some(k), expected, "acknowledgements out of order");
            run.last_ack = Some(k);
        } else if line.starts_with("ERR") || line.starts_with("PROBLEM") {
            panic!(
                "{}: the child reported: {line}\nits stderr:\n{stderr}",
                mode.name()
            );
        }
    }
    assert_eq!(
        status.signal(),
        Some(9),
        "{}: the child was not killed but ended with {status}; stderr:\n{stderr}",
        mode.name()
    );
    run
}

/// Opens `dir` as the parent and checks it holds the model's state after `model.n`
/// operations or, if an operation may have been in flight, after `model.n + 1`. Returns
/// whether the in-flight operation is still unresolved (an interrupted compaction that
/// expired only some of the nodes it would have).
fn check(
    dir: &Path,
    options: Options,
    model: &mut Model,
    in_flight: bool,
    verify_records: bool,
    what: &str,
) -> bool {
    let db = NodeDb::open_with(dir, VERSION, self_id(), options)
        .unwrap_or_else(|e| panic!("{what}: reopening after the kill failed: {e}"));
    for problem in &db.recovery().problems {
        assert_eq!(
            problem.kind,
            DamageKind::TornTail,
            "{what}: a kill -9 can only tear the tail, but recovery found: {problem}"
        );
    }
    let actual: Vec<Seen> = (0..POOL).map(|i| read(&db, i)).collect();
    let nodes = actual
        .iter()
        .filter(|(seen, seq)| seen.has_record() || seq.is_some())
        .count();
    assert_eq!(
        db.len(),
        nodes,
        "{what}: len() disagrees with the nodes read"
    );
    let held = db.peers().len();
    let local_seq = Some(db.local_seq()).filter(|&seq| seq < CLOCK_MS_FLOOR);
    if verify_records {
        // The stored bytes are the record the child signed: it decodes, its signature
        // verifies (decoding checks it), and it names what the database says.
        for i in 0..RECORD_IDS {
            let (seen, Some(seq)) = &actual[i as usize] else {
                continue;
            };
            let record: Enr<CombinedKey> = db
                .record(&id(i))
                .unwrap_or_else(|| panic!("{what}: the record of id {i} does not verify"));
            assert_eq!(record.seq(), *seq, "{what}: id {i}");
            assert_eq!(record_endpoint(i, seq - 1), seen.node, "{what}: id {i}");
        }
    }
    db.close().unwrap();

    assert!(held <= MAX_NODES, "{what}: more ids held than max_nodes");
    // With an operation in flight: any state it goes through (an eviction written before the
    // write it made room for, a bond's pong before its record) or the state after it.
    let states = if in_flight {
        model.step_states()
    } else {
        Vec::new()
    };
    let after = states.last().cloned();
    let matches = |m: &Model| {
        (0..POOL).all(|i| actual[i as usize] == m.seen(i)) && local_seq == m.local_seq()
    };
    if matches(model) {
        return false;
    }
    if let Some(after) = after.filter(|a| matches(a)) {
        *model = after;
        return false;
    }
    if states.iter().any(matches) {
        // Done again by the next child, which finishes it (the eviction is not made twice:
        // the store has room then).
        return true;
    }
    let differing: Vec<String> = (0..POOL as usize)
        .filter(|&i| actual[i] != model.seen(i as u64))
        .map(|i| {
            format!(
                "id {i}:\n  database: {:?}\n  expected: {:?}{}",
                actual[i],
                model.seen(i as u64),
                states
                    .iter()
                    .map(|s| format!("\n  or: {:?}", s.seen(i as u64)))
                    .collect::<String>()
            )
        })
        .collect();
    panic!(
        "{what}: after {} acknowledged operations{} (op in flight {:?}), local seq {local_seq:?} \
         (expected {:?}):\n{}",
        model.n,
        if in_flight { " and one in flight" } else { "" },
        op(model.mode, model.seed, model.n),
        model.local_seq(),
        differing.join("\n")
    );
}

/// Runs `kills` child processes against chains of directories, checking after each kill
/// (or some of them) that the acknowledged writes and nothing else are there.
fn crash_loop(mode: Mode, kills: usize) {
    let seed = base_seed();
    println!("{}: {kills} kills, PEERLOG_CRASH_SEED={seed}", mode.name());
    let mut rng = rand::rngs::StdRng::seed_from_u64(seed);
    let mut done = 0;
    let mut chain = 0u64;
    let mut acknowledged = 0u64;
    // Of which signed records, per-IP writes and local seqs.
    let (mut records, mut per_ip, mut local_seqs) = (0, 0, 0);
    // Kills before the child was ready (while opening), and while `compact()` ran.
    let (mut opening, mut compacting) = (0, 0);
    // Segment files left at the end of each directory's chain.
    let mut segments = Vec::new();
    while done < kills {
        let dir = tempfile::tempdir().unwrap();
        let workload = splitmix(seed ^ chain);
        let mut model = Model::new(mode, workload);
        let mut in_flight = false;
        let this_chain = CHAIN.min(kills - done);
        for i in 0..this_chain {
            let what = format!("{} (seed {seed}, chain {chain}, kill {i})", mode.name());
            let run = run_child(
                mode,
                chain,
                dir.path(),
                workload,
                model.n,
                in_flight,
                &mut rng,
            );
            if let Some(ready) = run.ready {
                // The child resolved the operation in flight: it did it (or found it done).
                assert!(
                    ready == model.n || (in_flight && ready == model.n + 1),
                    "{what}: the child started at {ready}, expected {}",
                    model.n
                );
                model.advance_to(ready);
                if let Some(last) = run.last_ack {
                    model.advance_to(last + 1);
                    acknowledged += last + 1 - ready;
                    for k in ready..=last {
                        match op(mode, workload, k) {
                            Op::Record(..) => records += 1,
                            Op::PingFrom(..) | Op::PongFrom(..) | Op::FailsAt(..) => per_ip += 1,
                            Op::LocalSeq(_) => local_seqs += 1,
                            _ => {}
                        }
                    }
                }
                // The next operation may have been started before the kill.
                in_flight = true;
                if op(mode, workload, model.n) == Op::Compact {
                    compacting += 1;
                }
            } else {
                opening += 1;
            }
            // Check after most kills, and always after the last one of a directory; when
            // not, the next child recovers the crashed directory itself.
            if i + 1 == this_chain || rng.random_ratio(2, 3) {
                in_flight = check(
                    dir.path(),
                    mode.options(chain),
                    &mut model,
                    in_flight,
                    i + 1 == this_chain,
                    &what,
                );
            }
            done += 1;
        }
        segments.push(
            std::fs::read_dir(dir.path())
                .unwrap()
                .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
                .count(),
        );
        chain += 1;
    }
    println!(
        "{}: {done} kills ({opening} while opening, {compacting} in compact()), \
         {acknowledged} acknowledged operations ({records} signed records, {per_ip} per-IP \
         writes, {local_seqs} local seqs): all present, nothing else; {}..={} segment files at \
         the end of a directory",
        mode.name(),
        segments.iter().min().unwrap(),
        segments.iter().max().unwrap(),
    );
}

#[test]
fn kill9_process_durability() {
    crash_loop(Mode::Process, iterations());
}

#[test]
fn kill9_group_commit_with_sync() {
    crash_loop(Mode::GroupCommit, iterations());
}

#[test]
fn kill9_sync_each_write() {
    crash_loop(Mode::SyncEachWrite, iterations());
}

#[test]
fn kill9_during_compaction() {
    crash_loop(Mode::Compaction, iterations());
}

#[test]
fn kill9_during_background_compaction() {
    crash_loop(Mode::AutoCompaction, iterations());
}

/// The directory lock belongs to the process (an `fcntl` lock, as LevelDB and RocksDB use),
/// which `fork` does not pass on: a child forked while a `NodeDb` is open must not keep the
/// directory locked, or closing and reopening the database before the child exec's fails with
/// `Error::Locked` (as it did when the lock was an `flock`, which belongs to the open file
/// description the child shares).
#[test]
fn reopen_after_close_is_not_locked_by_a_forked_child() {
    use std::os::unix::process::CommandExt;
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open(dir.path(), VERSION, self_id()).unwrap();
    let mut command = Command::new("true");
    // SAFETY: the hook only sleeps (nanosleep is async-signal-safe); it stands for the time
    // between fork and exec, stretched so that the window is hit every time.
    unsafe {
        command.pre_exec(|| {
            std::thread::sleep(Duration::from_millis(500));
            Ok(())
        });
    }
    let spawner = std::thread::spawn(move || command.status().unwrap());
    std::thread::sleep(Duration::from_millis(100));
    db.close().unwrap();
    let reopened = NodeDb::open(dir.path(), VERSION, self_id());
    spawner.join().unwrap();
    assert!(
        reopened.is_ok(),
        "closed, then reopened in the same process: {:?}",
        reopened.err()
    );
}
