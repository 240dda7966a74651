//! The workload shared by every benchmark: deterministic node ids and endpoints, and the
//! "nodedb workload" (per node: one update, then pings, pongs and fails, some deletes) as a
//! sequence of operations that any engine can apply.
//!
//! Each bench binary includes this module; not every binary uses every item.
#![allow(dead_code)]

pub mod raw;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

use peerlog::{Durability, Node, NodeDb, NodeId, Options};

/// Protocol version used for every benchmark database.
pub const VERSION: u64 = 5;
/// Operations per node in the mixed workload.
pub const OPS_PER_NODE: u64 = 7;
/// Bytes of a segment file's header (docs: src/log/format.rs).
pub const SEGMENT_HEADER_LEN: usize = 64;
/// Bytes of a record frame's header.
pub const FRAME_HEADER_LEN: usize = 16;

/// A pseudo-random but reproducible 64-byte id for node number `n`.
pub fn node_id(n: u64) -> NodeId {
    let mut id = [0u8; 64];
    let mut x = n.wrapping_add(0x9e37_79b9_7f4a_7c15);
    for chunk in id.chunks_mut(8) {
        // splitmix64
        x = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = x;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_le_bytes());
    }
    NodeId(id)
}

/// The id of the local node in every benchmark database (never one of the workload's).
pub fn self_id() -> NodeId {
    node_id(u64::MAX)
}

/// Node number `n` with an IPv4 endpoint.
pub fn node(n: u64) -> Node {
    let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32)));
    Node::new(node_id(n), ip, 30303, 30303 + (n % 7) as u16)
}

/// How long ago node `n` last answered: mostly within the hour; every tenth node two days
/// ago (expired under the default 24 h expiration) and another tenth six days ago (too old
/// for `query_seeds(_, 5 days)` as well).
pub fn pong_age(n: u64) -> Duration {
    match n % 10 {
        5 => Duration::from_secs(2 * 86_400),
        7 => Duration::from_secs(6 * 86_400),
        _ => Duration::from_secs(n % 3600),
    }
}

/// The read benchmarks' database (queries, seeds): `nodes` nodes in memory, each with a
/// record (`node(n)`, so 256 to a /24), a ping within two hours and a pong aged by
/// [`pong_age`].
pub fn populated(nodes: u64) -> NodeDb {
    let db = NodeDb::in_memory(self_id());
    let now = SystemTime::now();
    for n in 0..nodes {
        let node = node(n);
        db.update_node(&node).unwrap();
        db.update_last_ping(&node.id, now - Duration::from_secs(n % 7200))
            .unwrap();
        db.update_last_pong(&node.id, now - pong_age(n)).unwrap();
    }
    db
}

/// One operation of the nodedb workload.
#[derive(Clone, Debug)]
pub enum Op {
    Update(Node),
    Ping(NodeId, SystemTime),
    Pong(NodeId, SystemTime),
    Fails(NodeId, u32),
    Delete(NodeId),
}

/// Operation `k` of the mixed workload: node `k / 7` gets an update, a ping, a pong, a fails
/// count, a second ping and pong, and then either a reset of its fails or (one node in ten)
/// a delete.
pub fn op(k: u64, now: SystemTime) -> Op {
    let n = k / OPS_PER_NODE;
    let id = node_id(n);
    match k % OPS_PER_NODE {
        0 => Op::Update(node(n)),
        1 | 4 => Op::Ping(id, now - Duration::from_secs(n % 7200)),
        2 | 5 => Op::Pong(id, now - pong_age(n)),
        3 => Op::Fails(id, (n % 5) as u32 + 1),
        _ if n % 10 == 3 => Op::Delete(id),
        _ => Op::Fails(id, 0),
    }
}

/// The operations of `nodes` nodes, numbered from `first`.
pub fn ops(first: u64, nodes: u64, now: SystemTime) -> impl Iterator<Item = Op> {
    (first * OPS_PER_NODE..(first + nodes) * OPS_PER_NODE).map(move |k| op(k, now))
}

/// The same operations, collected (for the write benches, which cycle through them so that
/// generating them is not part of what is timed).
pub fn op_cycle(nodes: u64) -> Vec<Op> {
    ops(0, nodes, SystemTime::now()).collect()
}

/// Applies one operation to peerlog.
#[inline]
pub fn apply(db: &NodeDb, op: &Op) {
    match op {
        Op::Update(node) => db.update_node(node),
        Op::Ping(id, at) => db.update_last_ping(id, *at),
        Op::Pong(id, at) => db.update_last_pong(id, *at),
        Op::Fails(id, fails) => db.update_find_fails(id, *fails),
        Op::Delete(id) => db.delete_node(id),
    }
    .expect("peerlog write");
}

/// The durability modes a benchmark runs in, with their short names.
pub fn modes() -> [(&'static str, Durability); 3] {
    [
        ("process", Durability::Process),
        (
            "group_10ms",
            Durability::GroupCommit {
                max_delay: Duration::from_millis(10),
            },
        ),
        ("sync_each", Durability::SyncEachWrite),
    ]
}

/// Options for benchmark databases: the given durability, automatic compaction off so that a
/// write figure is the append path alone (compaction is measured on its own), and no bound on
/// the ids held (the default `max_nodes` of 100 k would evict most of a 1 M-node log as it is
/// built; the bound is measured on its own, benches/flood.rs).
pub fn options(durability: Durability) -> Options {
    Options {
        durability,
        compact_dead_ratio: 1.0,
        max_nodes: usize::MAX,
        ..Options::default()
    }
}

/// A fresh temporary directory for benchmark data, under `$PEERLOG_BENCH_DIR` if set (it
/// must be on the file system being measured), else the system's temporary directory.
pub fn temp_dir(label: &str) -> tempfile::TempDir {
    let base = std::env::var_os("PEERLOG_BENCH_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(std::env::temp_dir);
    fs::create_dir_all(&base).expect("bench base directory");
    tempfile::Builder::new()
        .prefix(&format!("peerlog-bench-{label}-"))
        .tempdir_in(base)
        .expect("temporary directory")
}

/// Times `iters` operations of `cycle` on `db`, continuing at `*next`.
pub fn run_cycle(db: &NodeDb, cycle: &[Op], next: &mut usize, iters: u64) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        apply(db, &cycle[*next]);
        *next = (*next + 1) % cycle.len();
    }
    started.elapsed()
}

/// Runs about `iters` write+sync pairs spread over `threads` threads; returns the wall time
/// from the moment all threads are ready until the last one finishes, scaled to `iters`
/// writes (each thread does the same whole number of them).
pub fn durable_writers(db: &NodeDb, threads: u64, iters: u64, call_sync: bool) -> Duration {
    let per_thread = iters.div_ceil(threads);
    let ready = Barrier::new(threads as usize + 1);
    let at = SystemTime::now();
    std::thread::scope(|s| {
        for t in 0..threads {
            let (db, ready) = (db, &ready);
            s.spawn(move || {
                let id = node_id(t);
                ready.wait();
                for _ in 0..per_thread {
                    db.update_last_pong(&id, at).unwrap();
                    if call_sync {
                        db.sync().unwrap();
                    }
                }
                ready.wait();
            });
        }
        ready.wait();
        let started = Instant::now();
        ready.wait();
        started
            .elapsed()
            .mul_f64(iters as f64 / (per_thread * threads) as f64)
    })
}

/// Times one open of the database in `dir` as a restart after a clean close makes it: from
/// the index snapshot that close wrote, if there is one (the log's last close wrote one);
/// closing is not timed.
pub fn open_once(dir: &Path) -> Duration {
    let started = Instant::now();
    let db = NodeDb::open_with(dir, VERSION, self_id(), options(Durability::Process))
        .expect("open for replay");
    let elapsed = started.elapsed();
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    db.close().expect("close");
    elapsed
}

/// Times one open of the database in `dir` that replays its whole log, as a restart after a
/// crash that left no usable snapshot does: the snapshot is moved out of the directory
/// meanwhile (and back after), and the database opened without snapshots. Closing is not
/// timed.
pub fn replay_once(dir: &Path) -> Duration {
    let snapshot = dir.join("index.snapshot");
    let aside = dir.with_extension("snapshot-aside");
    let moved = fs::rename(&snapshot, &aside).is_ok();
    let opts = Options {
        index_snapshot: false,
        ..options(Durability::Process)
    };
    let started = Instant::now();
    let db = NodeDb::open_with(dir, VERSION, self_id(), opts).expect("open for replay");
    let elapsed = started.elapsed();
    assert!(!db.recovery().from_snapshot);
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    db.close().expect("close");
    if moved {
        fs::rename(&aside, &snapshot).expect("put the snapshot back");
    }
    elapsed
}

/// Writes the workload of `nodes` nodes into a new database at `dir` and closes it.
pub fn build_log(dir: &Path, nodes: u64) {
    let db = NodeDb::open_with(dir, VERSION, self_id(), options(Durability::Process))
        .expect("open for build");
    let now = SystemTime::now();
    for op in ops(0, nodes, now) {
        apply(&db, &op);
    }
    // Written back before anything is timed: the kernel writing dirty pages back during a
    // measurement would take a core from it, and from a two-threaded open more than from a
    // one-threaded baseline.
    db.sync().expect("sync after build");
    db.close().expect("close after build");
}

/// The segment files of a database directory, in name (= id) order.
pub fn segment_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = fs::read_dir(dir)
        .expect("list database directory")
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

/// Length of the frame at the start of `bytes` (header, payload and padding to 8), or `None`
/// at the zero-filled end of a segment. Reads the format directly (not through peerlog).
pub fn frame_len(bytes: &[u8]) -> Option<usize> {
    if bytes.len() < FRAME_HEADER_LEN {
        return None;
    }
    let payload = u16::from_le_bytes([bytes[12], bytes[13]]) as usize;
    if payload == 0 {
        return None;
    }
    Some((FRAME_HEADER_LEN + payload + 7) & !7)
}

/// The record frames of every segment in `dir`, byte for byte as peerlog wrote them.
pub fn frames_of(dir: &Path) -> Vec<Vec<u8>> {
    let mut frames = Vec::new();
    for path in segment_files(dir) {
        let bytes = fs::read(&path).expect("read segment");
        let mut pos = SEGMENT_HEADER_LEN;
        while let Some(len) = frame_len(&bytes[pos..]) {
            frames.push(bytes[pos..pos + len].to_vec());
            pos += len;
        }
    }
    frames
}

/// The exact record bytes peerlog writes for one cycle of the mixed workload of `nodes` nodes.
pub fn workload_frames(nodes: u64) -> Vec<Vec<u8>> {
    let dir = temp_dir("frames");
    build_log(dir.path(), nodes);
    frames_of(dir.path())
}
