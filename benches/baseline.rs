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

use std::fs::{File, OpenOptions};
use std::io::{BufWriter, Write};
use std::os::unix::fs::FileExt;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, Throughput};

use common::{temp_dir, workload_frames};

const NODES: u64 = 10_000;
const PREALLOC: u64 = 256 << 20;

fn fresh_file(dir: &std::path::Path) -> File {
    OpenOptions::new()
        .create(true)
        .truncate(true)
        .read(true)
        .write(true)
        .open(dir.join("raw.log"))
        .expect("raw file")
}

/// Times writing `iters` frames (cycling) to a fresh file; `sync_every` records per fdatasync.
fn append(frames: &[Vec<u8>], dir: &std::path::Path, iters: u64, sync_every: u64) -> Duration {
    let mut file = fresh_file(dir);
    let started = Instant::now();
    for i in 0..iters {
        file.write_all(&frames[i as usize % frames.len()]).unwrap();
        if sync_every != 0 && (i + 1) % sync_every == 0 {
            file.sync_data().unwrap();
        }
    }
    if sync_every != 0 && iters % sync_every != 0 {
        file.sync_data().unwrap();
    }
    started.elapsed()
}

fn baselines(c: &mut Criterion) {
    let frames = workload_frames(NODES);
    let dir = temp_dir("baseline");
    let mut group = c.benchmark_group("baseline");
    group.throughput(Throughput::Elements(1));

    group.bench_function("write_per_record", |b| {
        b.iter_custom(|iters| append(&frames, dir.path(), iters, 0))
    });
    group.bench_function("buffered_file", |b| {
        b.iter_custom(|iters| {
            let mut out = BufWriter::with_capacity(64 << 10, fresh_file(dir.path()));
            let started = Instant::now();
            for i in 0..iters {
                out.write_all(&frames[i as usize % frames.len()]).unwrap();
            }
            out.flush().unwrap();
            started.elapsed()
        })
    });
    group.bench_function("fdatasync_each", |b| {
        b.iter_custom(|iters| append(&frames, dir.path(), iters, 1))
    });
    group.bench_function("fdatasync_each_prealloc", |b| {
        b.iter_custom(|iters| {
            let file = fresh_file(dir.path());
            file.set_len(0).unwrap();
            // Preallocated with fallocate (fs4), as peerlog preallocates its segments.
            fs4::fs_std::FileExt::allocate(&file, PREALLOC).unwrap();
            file.sync_all().unwrap();
            let mut pos = 0u64;
            let started = Instant::now();
            for i in 0..iters {
                let frame = &frames[i as usize % frames.len()];
                if pos + frame.len() as u64 > PREALLOC {
                    pos = 0;
                }
                file.write_all_at(frame, pos).unwrap();
                pos += frame.len() as u64;
                file.sync_data().unwrap();
            }
            started.elapsed()
        })
    });
    group.bench_function("fdatasync_per_64", |b| {
        b.iter_custom(|iters| append(&frames, dir.path(), iters, 64))
    });
    group.finish();
}

criterion_group!(benches, baselines);
criterion_main!(benches);
