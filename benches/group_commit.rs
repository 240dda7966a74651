//! Power-loss durability under concurrency: 1, 4 and 16 writer threads, each calling `sync()`
//! after every write and so waiting until its write is on stable storage.
//!
//! One iteration is one durable write (by any thread); criterion's throughput is durable
//! writes/s for all threads together. `group_10ms` shares one `fdatasync` between every
//! thread waiting; `sync_each` (one `fdatasync` per write, under the writer lock) is there
//! for the ratio the issue asks for (there a write is durable when it returns, so its threads
//! do not call `sync()`).

mod common;

use std::time::Duration;

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use peerlog::{Durability, NodeDb};

use common::{durable_writers, node, options, self_id, temp_dir, VERSION};

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
                b.iter_custom(|iters| durable_writers(&db, threads, iters, call_sync))
            });
        }
    }
    group.finish();
}

criterion_group!(benches, group_commit);
criterion_main!(benches);
