//! Raw write baselines: the identical record bytes peerlog writes for the mixed workload,
//! written without peerlog. One iteration is one record, as in `write.rs`.
//!
//! - `write_per_record`: one `write()` per record to a plain file (the write-path ceiling for
//!   "every acknowledged write is in the OS").
//! - `buffered_file`: a 64 KiB `BufWriter`, flushed at the end (acknowledged before the OS).
//! - `fdatasync_each`: `write()` + `fdatasync()` per record, appending (the synced floor).
//! - `fdatasync_each_prealloc`: the same into a file preallocated with `fallocate`.
//! - `fdatasync_per_64`: one `fdatasync()` per 64 records (what group commit can reach).

mod common;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::{raw, temp_dir, workload_frames};

const NODES: u64 = 10_000;

fn baselines(c: &mut Criterion) {
    let frames = workload_frames(NODES);
    let dir = temp_dir("baseline");
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));

    group.bench_function("write_per_record", |b| {
        b.iter_custom(|iters| raw::append(&frames, dir.path(), iters, 0))
    });
    group.bench_function("buffered_file", |b| {
        b.iter_custom(|iters| raw::buffered(&frames, dir.path(), iters))
    });
    group.bench_function("fdatasync_each", |b| {
        b.iter_custom(|iters| raw::append(&frames, dir.path(), iters, 1))
    });
    group.bench_function("fdatasync_each_prealloc", |b| {
        b.iter_custom(|iters| raw::prealloc_fdatasync_each(&frames, dir.path(), iters))
    });
    group.bench_function("fdatasync_per_64", |b| {
        b.iter_custom(|iters| raw::append(&frames, dir.path(), iters, 64))
    });
    group.finish();
}

criterion_group!(benches, baselines);
criterion_main!(benches);
