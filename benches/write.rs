//! The write path: each event kind, and the mixed nodedb workload, in each durability mode.
//!
//! One iteration is one acknowledged write (`update_node`, `update_last_ping`, ...), so
//! criterion's time per iteration is the cost of one write and its throughput is writes/s.
//! `group_10ms` writes without calling `sync()`: the figure is what a single writer pays for
//! power-loss durability within 10 ms.
//!
//! `PEERLOG_DEFAULT_RATIO=1 cargo bench --bench write` runs, instead of criterion, the
//! comparison of the default `Process` with `GroupCommit { max_delay: 1 s }` as a candidate
//! default (issue 12): the mixed workload and each event kind, *interleaved* as in the ratios
//! bench (each round runs both back to back, in alternating order, so that load from other
//! processes falls on both alike), `PEERLOG_RATIO_ROUNDS` rounds (default 31). It prints one
//! JSON line per contender and workload (`{"id":"default_ratio/<workload>/<mode>",...}`, sums
//! over the rounds) and one per workload with the ratio group ÷ process of the sums and the
//! median of the rounds' ratios (less moved by a round that another process slowed down).

mod common;

use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, Criterion, Throughput};
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

/// Operations per contender, workload and round of the default-durability comparison.
const RATIO_OPS: u64 = 50_000;

/// `Process` against `GroupCommit { max_delay: 1 s }` on every write benchmark, interleaved.
fn default_durability_ratio() {
    let rounds: usize = std::env::var("PEERLOG_RATIO_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(31);
    let contenders = [
        ("process", Durability::Process),
        (
            "group_1s",
            Durability::GroupCommit {
                max_delay: Duration::from_secs(1),
            },
        ),
    ];
    let cycle = op_cycle(NODES);
    let nodes: Vec<Node> = (0..NODES).map(node).collect();
    let ids: Vec<NodeId> = nodes.iter().map(|n| n.id).collect();
    let at = SystemTime::now();
    let pick = |i: u64| (i % NODES) as usize;
    let dbs: Vec<_> = contenders
        .iter()
        .map(|(_, durability)| {
            let (dir, db) = open(*durability);
            for node in &nodes {
                db.update_node(node).unwrap();
            }
            (dir, db)
        })
        .collect();
    let workloads = ["mixed", "node", "ping", "pong", "fails", "delete"];
    // Per contender: where its mixed cycle goes on, and the next node number to delete.
    let mut next = [0usize; 2];
    let mut doomed_from = [NODES; 2];
    let mut totals = vec![[Duration::ZERO; 2]; workloads.len()];
    let mut round_ratios = vec![Vec::with_capacity(rounds); workloads.len()];
    for round in 0..rounds {
        for (w, workload) in workloads.iter().enumerate() {
            let mut times = [Duration::ZERO; 2];
            for turn in 0..2 {
                let c = (turn + round) % 2;
                let db = &dbs[c].1;
                let time = match *workload {
                    "mixed" => run_cycle(db, &cycle, &mut next[c], RATIO_OPS),
                    "node" => timed(db, 0, RATIO_OPS, |db, i| {
                        db.update_node(&nodes[pick(i)]).unwrap()
                    }),
                    "ping" => timed(db, 0, RATIO_OPS, |db, i| {
                        db.update_last_ping(&ids[pick(i)], at).unwrap()
                    }),
                    "pong" => timed(db, 0, RATIO_OPS, |db, i| {
                        db.update_last_pong(&ids[pick(i)], at).unwrap()
                    }),
                    "fails" => timed(db, 0, RATIO_OPS, |db, i| {
                        db.update_find_fails(&ids[pick(i)], (i % 5) as u32).unwrap()
                    }),
                    _ => {
                        // A delete of an unknown id writes nothing: insert them first, untimed.
                        let first = doomed_from[c];
                        doomed_from[c] += RATIO_OPS;
                        let doomed: Vec<Node> = (first..first + RATIO_OPS).map(node).collect();
                        for node in &doomed {
                            db.update_node(node).unwrap();
                        }
                        let started = Instant::now();
                        for node in &doomed {
                            db.delete_node(&node.id).unwrap();
                        }
                        started.elapsed()
                    }
                };
                totals[w][c] += time;
                times[c] = time;
            }
            round_ratios[w].push(times[0].as_secs_f64() / times[1].as_secs_f64());
        }
    }
    let ops = RATIO_OPS * rounds as u64;
    let (mut log_ratio_sum, mut log_median_sum) = (0.0, 0.0);
    for (w, workload) in workloads.iter().enumerate() {
        for (c, (mode, _)) in contenders.iter().enumerate() {
            let time = totals[w][c];
            println!(
                "{{\"id\":\"default_ratio/{workload}/{mode}\",\"ops\":{ops},\"ns\":{},\"rate\":{:.1},\"rounds\":{rounds}}}",
                time.as_nanos(),
                ops as f64 / time.as_secs_f64()
            );
        }
        let ratio = totals[w][0].as_secs_f64() / totals[w][1].as_secs_f64();
        round_ratios[w].sort_by(f64::total_cmp);
        let median = round_ratios[w][rounds / 2];
        log_ratio_sum += ratio.ln();
        log_median_sum += median.ln();
        println!(
            "{{\"id\":\"default_ratio/{workload}\",\"group_1s_over_process\":{ratio:.3},\"median_of_rounds\":{median:.3}}}"
        );
    }
    let n = workloads.len() as f64;
    println!(
        "{{\"id\":\"default_ratio/geomean\",\"group_1s_over_process\":{:.3},\"median_of_rounds\":{:.3}}}",
        (log_ratio_sum / n).exp(),
        (log_median_sum / n).exp()
    );
}

criterion_group!(benches, mixed, per_kind);

fn main() {
    if std::env::var_os("PEERLOG_DEFAULT_RATIO").is_some() {
        if std::env::args().any(|a| a == "--bench") {
            default_durability_ratio();
        }
        return;
    }
    benches();
    Criterion::default().configure_from_args().final_summary();
}
