//! Power-loss durability under concurrency: 1, 4 and 16 writer threads, each calling `sync()`
//! after every write and so waiting until its write is on stable storage.
//!
//! One iteration is one durable write (by any thread); criterion's throughput is durable
//! writes/s for all threads together. `group_10ms` shares one `fdatasync` between every
//! thread waiting; `sync_each` (one `fdatasync` per write, under the writer lock) is there
//! for the ratio the issue asks for (there a write is durable when it returns, so its threads
//! do not call `sync()`).

mod common;

use std::sync::Barrier;
use std::time::{Duration, Instant, SystemTime};

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peerlog::{Durability, NodeDb};

use common::{node, node_id, options, self_id, temp_dir, VERSION};

/// Runs about `iters` write+sync pairs spread over `threads` threads; returns the wall time
/// from the moment all threads are ready until the last one finishes, scaled to `iters`
/// writes (each thread does the same whole number of them).
fn run(db: &NodeDb, threads: u64, iters: u64, call_sync: bool) -> Duration {
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

fn group_commit(c: &mut Criterion) {
    let mut group = c.benchmark_group("durable_writers");
    group.throughput(Throughput::Elements(1));
    let cases = [
        (
            "group_10ms",
            Durability::GroupCommit {
                max_delay: Duration::from_millis(10),
            },
            &[1u64, 4, 16][..],
        ),
        ("sync_each", Durability::SyncEachWrite, &[1u64, 16][..]),
    ];
    for (mode, durability, thread_counts) in cases {
        for &threads in thread_counts {
            // A write in `SyncEachWrite` is durable when it returns: no `sync()` needed.
            let call_sync = durability != Durability::SyncEachWrite;
            let dir = temp_dir("group");
            let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options(durability))
                .expect("open");
            for t in 0..threads {
                db.update_node(&node(t)).unwrap();
            }
            group.bench_function(BenchmarkId::new(mode, threads), |b| {
                b.iter_custom(|iters| run(&db, threads, iters, call_sync))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
