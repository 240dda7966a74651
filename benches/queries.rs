//! Reads on a database of 100 k nodes: `node` lookups (hits and misses) and
//! `query_seeds(30, 5 days)`, where eight nodes in ten are eligible (see `common::pong_age`).
//! One iteration is one call.

mod common;

use std::time::Duration;

use criterion::{black_box, criterion_group, criterion_main, Criterion};
use peerlog::NodeId;

use common::{node_id, populated};

const NODES: u64 = 100_000;

fn queries(c: &mut Criterion) {
    let db = populated(NODES);
    let hits: Vec<NodeId> = (0..NODES).map(|n| node_id((n * 7919) % NODES)).collect();
    let misses: Vec<NodeId> = (NODES..2 * NODES).map(node_id).collect();
    let mut group = c.benchmark_group("queries_100k");
    let mut i = 0usize;
    group.bench_function("node_hit", |b| {
        b.iter(|| {
            i = (i + 1) % hits.len();
            black_box(db.node(&hits[i]))
        })
    });
    group.bench_function("node_miss", |b| {
        b.iter(|| {
            i = (i + 1) % misses.len();
            black_box(db.node(&misses[i]))
        })
    });
    group.bench_function("query_seeds_30_5d", |b| {
        b.iter(|| {
            let seeds = db.query_seeds(30, Duration::from_secs(5 * 86_400));
            debug_assert_eq!(seeds.len(), 30);
            seeds
        })
    });
    group.finish();
}

criterion_group!(benches, queries);
criterion_main!(benches);
