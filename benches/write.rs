//! The write path: each event kind, and the mixed nodedb workload, in each durability mode.
//!
//! One iteration is one acknowledged write (`update_node`, `update_last_ping`, ...), so
//! criterion's time per iteration is the cost of one write and its throughput is writes/s.
//! `group_10ms` writes without calling `sync()`: the figure is what a single writer pays for
//! power-loss durability within 10 ms.

mod common;

use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use peerlog::{Durability, Node, NodeDb, NodeId};

use common::{modes, node, op_cycle, options, run_cycle, self_id, temp_dir, VERSION};

/// Distinct nodes the per-kind benches cycle through.
const NODES: u64 = 10_000;

fn open(durability: Durability) -> (tempfile::TempDir, NodeDb) {
    let dir = temp_dir("write");
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options(durability))
        .expect("open bench database");
    (dir, db)
}

/// Times `iters` calls of `write(db, i)`.
fn timed(db: &NodeDb, first: u64, iters: u64, mut write: impl FnMut(&NodeDb, u64)) -> Duration {
    let started = Instant::now();
    for i in first..first + iters {
        write(db, i);
    }
    started.elapsed()
}

fn per_kind(c: &mut Criterion) {
    let nodes: Vec<Node> = (0..NODES).map(node).collect();
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    let at = SystemTime::now();
    let pick = |i: u64| (i % NODES) as usize;
    for (mode, durability) in modes() {
        let mut group = c.benchmark_group(format!("write_{mode}"));
        group.throughput(Throughput::Elements(1));

        let (_dir, db) = open(durability);
        for node in &nodes {
            db.update_node(node).unwrap();
        }
        let mut counter = 0u64;
        group.bench_function("node", |b| {
            b.iter_custom(|iters| {
                counter += iters;
                timed(&db, counter - iters, iters, |db, i| {
                    db.update_node(&nodes[pick(i)]).unwrap()
                })
            })
        });
        group.bench_function("ping", |b| {
            b.iter_custom(|iters| {
                timed(&db, 0, iters, |db, i| {
                    db.update_last_ping(&ids[pick(i)], at).unwrap()
                })
            })
        });
        group.bench_function("pong", |b| {
            b.iter_custom(|iters| {
                timed(&db, 0, iters, |db, i| {
                    db.update_last_pong(&ids[pick(i)], at).unwrap()
                })
            })
        });
        group.bench_function("fails", |b| {
            b.iter_custom(|iters| {
                timed(&db, 0, iters, |db, i| {
                    db.update_find_fails(&ids[pick(i)], (i % 5) as u32).unwrap()
                })
            })
        });
        // A delete of an unknown id writes nothing: insert the nodes first, untimed.
        let mut next = NODES;
        group.bench_function("delete", |b| {
            b.iter_custom(|iters| {
                let first = next;
                next += iters;
                let doomed: Vec<Node> = (first..next).map(node).collect();
                for node in &doomed {
                    db.update_node(node).unwrap();
                }
                let started = Instant::now();
                for node in &doomed {
                    db.delete_node(&node.id).unwrap();
                }
                started.elapsed()
            })
        });
        drop(db);
        group.finish();
    }
}

fn mixed(c: &mut Criterion) {
    let cycle = op_cycle(NODES);
    let mut group = c.benchmark_group("write_mixed");
    group.throughput(Throughput::Elements(1));
    for (mode, durability) in modes() {
        let (_dir, db) = open(durability);
        let mut next = 0usize;
        group.bench_function(mode, |b| {
            b.iter_custom(|iters| run_cycle(&db, &cycle, &mut next, iters))
        });
    }
    group.finish();
}

criterion_group!(benches, mixed, per_kind);
criterion_main!(benches);
