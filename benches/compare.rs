//! The mixed nodedb workload (see `common::op`) on peerlog and on the engines a user would
//! pick instead, each storing keys and values the way go-ethereum's nodedb does (see
//! `engines/mod.rs`), grouped by the guarantee an acknowledged write has:
//!
//! - `buffered` (not yet in the OS): rusty-leveldb `put`;
//! - `os` (in the OS page cache, survives a crash of the process): peerlog's default,
//!   fjall's default, rusty-leveldb with a flush per write;
//! - `disk` (fsync'd, survives power loss): peerlog `SyncEachWrite`, fjall + `persist(SyncData)`,
//!   redb's default;
//! - `none` (redb `Durability::None`: a crash rolls back to the last durable commit).
//!
//! One iteration is one workload operation. Then each engine reopens the workload of 100 k
//! nodes (700 k operations); peerlog's reopen of the same workload is `replay/open_100k`.
//!
//! Run with `cargo bench --features compare --bench compare`.

mod common;
mod engines;

use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use peerlog::{Durability, NodeDb};

use common::{op_cycle, ops, options, self_id, temp_dir, Op, VERSION};
use engines::{fjall::Fjall, leveldb::Leveldb, redb::Redb};

/// Nodes in the cycle of operations the write benches repeat.
const NODES: u64 = 10_000;
/// Nodes in the reopened database.
const REOPEN_NODES: u64 = 100_000;

/// Times `iters` operations of the cycle, continuing where the last sample stopped.
fn run(cycle: &[Op], next: &mut usize, iters: u64, mut apply: impl FnMut(&Op)) -> Duration {
    let started = Instant::now();
    for _ in 0..iters {
        apply(&cycle[*next]);
        *next = (*next + 1) % cycle.len();
    }
    started.elapsed()
}

fn writes(c: &mut Criterion) {
    let cycle = op_cycle(NODES);
    let mut group = c.benchmark_group("compare_write");
    group.throughput(Throughput::Elements(1));
    let mut next = 0;

    for (id, durability) in [
        ("os/peerlog", Durability::Process),
        ("disk/peerlog", Durability::SyncEachWrite),
    ] {
        let dir = temp_dir("cmp-peerlog");
        let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options(durability)).unwrap();
        group.bench_function(id, |b| {
            b.iter_custom(|iters| run(&cycle, &mut next, iters, |op| common::apply(&db, op)))
        });
    }
    for (id, sync_each) in [("os/fjall", false), ("disk/fjall", true)] {
        let dir = temp_dir("cmp-fjall");
        let mut db = Fjall::open(dir.path(), sync_each);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| run(&cycle, &mut next, iters, |op| engines::apply(&mut db, op)))
        });
    }
    for (id, flush_each) in [("buffered/leveldb", false), ("os/leveldb", true)] {
        let dir = temp_dir("cmp-leveldb");
        let mut db = Leveldb::open(dir.path(), flush_each);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| run(&cycle, &mut next, iters, |op| engines::apply(&mut db, op)))
        });
    }
    for (id, durable) in [("disk/redb", true), ("none/redb", false)] {
        let dir = temp_dir("cmp-redb");
        let mut db = Redb::open(dir.path(), durable);
        group.bench_function(id, |b| {
            b.iter_custom(|iters| run(&cycle, &mut next, iters, |op| engines::apply(&mut db, op)))
        });
    }
    group.finish();
}

/// Times `iters` opens of the database in `dir` by `open` (closing is not timed).
fn reopen<T>(dir: &Path, iters: u64, open: impl Fn(&Path) -> T) -> Duration {
    (0..iters)
        .map(|_| {
            let started = Instant::now();
            let db = open(dir);
            let elapsed = started.elapsed();
            drop(db);
            elapsed
        })
        .sum()
}

fn reopens(c: &mut Criterion) {
    let now = SystemTime::now();
    let mut group = c.benchmark_group("compare_reopen_100k");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);

    let dir = temp_dir("reopen-fjall");
    {
        let mut db = Fjall::open(dir.path(), false);
        ops(0, REOPEN_NODES, now).for_each(|op| engines::apply(&mut db, &op));
    }
    group.bench_function("fjall", |b| {
        b.iter_custom(|iters| reopen(dir.path(), iters, |p| Fjall::open(p, false)))
    });

    let dir = temp_dir("reopen-leveldb");
    let mut db = Leveldb::open(dir.path(), false);
    ops(0, REOPEN_NODES, now).for_each(|op| engines::apply(&mut db, &op));
    db.close();
    group.bench_function("leveldb", |b| {
        b.iter_custom(|iters| reopen(dir.path(), iters, |p| Leveldb::open(p, false)))
    });

    let dir = temp_dir("reopen-redb");
    Redb::open(dir.path(), true).load(ops(0, REOPEN_NODES, now));
    group.bench_function("redb", |b| {
        b.iter_custom(|iters| reopen(dir.path(), iters, |p| Redb::open(p, true)))
    });

    let dir = temp_dir("reopen-peerlog");
    common::build_log(dir.path(), REOPEN_NODES);
    group.bench_function("peerlog", |b| {
        b.iter_custom(|iters| {
            reopen(dir.path(), iters, |p| {
                NodeDb::open_with(p, VERSION, self_id(), options(Durability::Process)).unwrap()
            })
        })
    });
    group.finish();
}

criterion_group!(benches, writes, reopens);
criterion_main!(benches);
