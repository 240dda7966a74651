//! A flood of new ids into a full store (issue 21's figures), printed as JSON lines for
//! benches/report.sh: `max_nodes` 100 k, 50 k proven honest nodes (`common::node`, a pong
//! within the hour), then 1 M new ids (`update_node` only: nothing proves them), on an
//! on-disk database at `Durability::Process`, with automatic compaction on (the default
//! thresholds) or off (`--compaction off`).
//!
//! Two runs, each in its own process:
//!
//! - `--alone`: the flood by itself. Ids held, honest nodes kept, log bytes on disk after the
//!   flood and after a compaction, peak resident size of the process (`VmHWM`), and the time
//!   of the flood.
//! - `--interleaved` (the default): the write rate at the bound against the rate below it, interleaved. Store A
//!   takes the flood in chunks of 10 k ids; after each chunk that A takes full, store B (the
//!   same options and 50 k honest nodes, so with room) takes a chunk of 10 k new ids, and
//!   store C (the same again) a chunk of 10 k new ids written with two records each (the
//!   node, then a ping of it: as many appends as a write at the bound, without a victim to
//!   find). B and C are built again, untimed, each time they would reach the bound. All see
//!   the same load.
//!
//! Run with `cargo bench -p peerlog-bench --bench flood -- [--alone | --interleaved] [--compaction on | off]`
//! (`PEERLOG_FLOOD_IDS`, default 1000000).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use peerlog::{Durability, Node, NodeDb, Options};

use common::{node, node_id, self_id, temp_dir, VERSION};

const MAX_NODES: usize = 100_000;
const HONEST: u64 = 50_000;
const CHUNK: u64 = 10_000;
/// Node numbers of the flood start here (the honest nodes are 0..50 k).
const FLOOD_BASE: u64 = 1 << 40;

fn open(dir: &Path, compaction: bool) -> NodeDb {
    let defaults = Options::default();
    let opts = Options {
        durability: Durability::Process,
        max_nodes: MAX_NODES,
        compact_dead_ratio: if compaction {
            defaults.compact_dead_ratio
        } else {
            1.0
        },
        ..defaults
    };
    NodeDb::open_with(dir, VERSION, self_id(), opts).unwrap()
}

fn honest(db: &NodeDb) {
    let now = SystemTime::now();
    for n in 0..HONEST {
        let node = node(n);
        db.update_node(&node).unwrap();
        db.update_last_pong(&node.id, now - Duration::from_secs(n % 3600))
            .unwrap();
    }
}

/// Flood id `i`: 66.x.y.z from 66.0.0.0 on, 256 to a /24.
fn flood_node(i: u64) -> Node {
    let ip = IpAddr::V4(Ipv4Addr::from(0x4200_0000u32.wrapping_add(i as u32)));
    Node::new(node_id(FLOOD_BASE + i), ip, 30303, 30303)
}

/// Writes flood ids `from..to`; returns the time taken.
fn flood(db: &NodeDb, from: u64, to: u64) -> Duration {
    let started = Instant::now();
    for i in from..to {
        db.update_node(&flood_node(i)).unwrap();
    }
    started.elapsed()
}

fn status_kb(field: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    status
        .lines()
        .find_map(|line| line.strip_prefix(field))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("field of /proc/self/status")
}

fn dir_bytes(dir: &Path) -> u64 {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().metadata().unwrap())
        .filter(|m| m.is_file())
        .map(|m| m.len())
        .sum()
}

fn alone(compaction: bool, ids: u64, label: &str) {
    let dir = temp_dir("flood");
    let db = open(dir.path(), compaction);
    honest(&db);
    let rss_before = status_kb("VmRSS:") * 1024;
    let fill = MAX_NODES as u64 - HONEST;
    let below = flood(&db, 0, fill);
    let at = flood(&db, fill, ids);
    let peak_rss = status_kb("VmHWM:") * 1024;
    let held = db.len();
    let kept = (0..HONEST)
        .filter(|&n| db.node(&node_id(n)).is_some())
        .count();
    db.sync().unwrap();
    let disk_before = dir_bytes(dir.path());
    let started = Instant::now();
    db.compact().unwrap();
    let compact_secs = started.elapsed().as_secs_f64();
    let disk_after = dir_bytes(dir.path());
    db.close().unwrap();
    println!(
        "{{\"id\":\"flood/{label}/alone\",\"flood\":{ids},\"max_nodes\":{MAX_NODES},\"honest\":{HONEST},\
         \"ids_held\":{held},\"honest_kept\":{kept},\"disk_bytes_before_compaction\":{disk_before},\
         \"disk_bytes\":{disk_after},\"compact_secs\":{compact_secs:.3},\"rss_before\":{rss_before},\
         \"peak_rss\":{peak_rss},\"below_secs\":{:.3},\"below_ids\":{fill},\"at_secs\":{:.3},\"at_ids\":{}}}",
        below.as_secs_f64(),
        at.as_secs_f64(),
        ids - fill
    );
}

/// A store with room (50 k honest nodes, room for 50 k more), built again, untimed, each
/// time the next chunk would reach the bound.
struct Roomy {
    compaction: bool,
    store: Option<(tempfile::TempDir, NodeDb)>,
    held: u64,
    next: u64,
    rebuilds: u64,
}

impl Roomy {
    fn new(compaction: bool) -> Roomy {
        Roomy {
            compaction,
            store: None,
            held: 0,
            next: 0,
            rebuilds: 0,
        }
    }

    /// Times `write` on the next chunk of new ids.
    fn chunk(&mut self, write: impl Fn(&NodeDb, &Node)) -> Duration {
        if self.store.is_none() || self.held + CHUNK > MAX_NODES as u64 {
            if let Some((_, db)) = self.store.take() {
                db.close().unwrap();
            }
            let dir = temp_dir("flood-b");
            let db = open(dir.path(), self.compaction);
            honest(&db);
            db.sync().unwrap();
            self.store = Some((dir, db));
            self.held = HONEST;
            self.rebuilds += 1;
        }
        let (_, db) = self.store.as_ref().expect("made above");
        let started = Instant::now();
        for i in self.next..self.next + CHUNK {
            write(db, &flood_node(i));
        }
        let took = started.elapsed();
        self.next += CHUNK;
        self.held += CHUNK;
        took
    }

    fn close(self) {
        if let Some((_, db)) = self.store {
            db.close().unwrap();
        }
    }
}

fn rates(compaction: bool, ids: u64, label: &str) {
    let a_dir = temp_dir("flood-a");
    let a = open(a_dir.path(), compaction);
    honest(&a);
    let fill = MAX_NODES as u64 - HONEST;
    flood(&a, 0, fill);
    // B: one record a write, below the bound. C: two records a write below the bound (the
    // node, then a ping of it), as many appends as a write at the bound makes (the eviction,
    // then the node) with no victim to find: the append path's own bound on the ratio.
    let mut b = Roomy::new(compaction);
    let mut c = Roomy::new(compaction);
    let (mut at_ns, mut at_ids, mut below_ns, mut below_ids, mut two_ns) = (0, 0, 0, 0, 0);
    let mut next = fill;
    let now = SystemTime::now();
    while next < ids {
        let end = (next + CHUNK).min(ids);
        at_ns += flood(&a, next, end).as_nanos();
        at_ids += end - next;
        next = end;
        below_ns += b.chunk(|db, node| db.update_node(node).unwrap()).as_nanos();
        below_ids += CHUNK;
        two_ns += c
            .chunk(|db, node| {
                db.update_node(node).unwrap();
                db.update_last_ping(&node.id, now).unwrap();
            })
            .as_nanos();
    }
    assert_eq!(a.len(), MAX_NODES);
    a.close().unwrap();
    let rebuilds = b.rebuilds;
    b.close();
    c.close();
    let rate = |ids: u64, ns: u128| ids as f64 * 1e9 / ns as f64;
    println!(
        "{{\"id\":\"flood/{label}/rates\",\"at_ids\":{at_ids},\"at_ns\":{at_ns},\"at_rate\":{:.1},\
         \"below_ids\":{below_ids},\"below_ns\":{below_ns},\"below_rate\":{:.1},\"two_ns\":{two_ns},\
         \"two_rate\":{:.1},\"chunk\":{CHUNK},\"b_rebuilds\":{rebuilds}}}",
        rate(at_ids, at_ns),
        rate(below_ids, below_ns),
        rate(below_ids, two_ns)
    );
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    if !args.iter().any(|a| a == "--bench") {
        return; // as a test (`cargo test --benches`): far too slow
    }
    let compaction = !args
        .windows(2)
        .any(|w| w[0] == "--compaction" && w[1] == "off");
    let label = if compaction {
        "compaction_on"
    } else {
        "compaction_off"
    };
    let ids = std::env::var("PEERLOG_FLOOD_IDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    if args.iter().any(|a| a == "--alone") {
        alone(compaction, ids, label);
    } else {
        rates(compaction, ids, label);
    }
}
