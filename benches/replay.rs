//! Opening a database, for the mixed workload of 100 k and 1 M nodes (seven events each: the
//! node, two pings, two pongs, fails, a reset or a delete), and for the 1 M-node log after
//! compaction: `open` from the index snapshot the last close wrote (a restart after a clean
//! stop), `replay` of the whole log (after a crash, or with `index_snapshot` off). Beside
//! each, the replay ceiling: the same segment files mapped and every record's CRC-32
//! checked, with nothing decoded or indexed. `close` is the close of a database opened and
//! written to once, which writes the snapshot again.
//!
//! `scan_decode` is the step in between (peerlog's scanner, no index), to tell decoding from
//! indexing.
//!
//! One iteration is one open (or one scan) of the whole log; throughput is records/s. The
//! files are in the page cache (warm), as they are on a restart that follows a clean stop.

mod common;

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use peerlog::{Durability, NodeDb};

use std::fs::File;
use std::path::Path;

use memmap2::Mmap;
use peerlog::testing::salt_seed;
use peerlog::testing::{ScanItem, SegmentScanner};

use common::raw::mmap_crc_scan;
use common::{
    build_log, open_once, options, replay_once, segment_files, self_id, temp_dir, VERSION,
};

/// Replay without the index: every segment mapped and scanned by peerlog's own
/// `SegmentScanner` (framing, CRC, payload decoded into a `LogRecord`), records counted. The gap
/// to `mmap_crc` is decoding; the gap to `open` is applying records to the index (and
/// opening the directory).
fn scan_decode(dir: &Path) -> u64 {
    let mut records = 0;
    for path in segment_files(dir) {
        let file = File::open(&path).expect("open segment");
        // SAFETY: the benchmark's files are not modified while mapped.
        let map = unsafe { Mmap::map(&file) }.expect("map segment");
        let salt = u64::from_le_bytes(map[24..32].try_into().unwrap());
        let scanner = SegmentScanner::new_exclusive(&map, salt_seed(salt));
        records += scanner
            .filter(|item| matches!(item, ScanItem::Record { .. }))
            .count() as u64;
    }
    records
}

/// Times the close of a database that was opened and written to once: the close writes the
/// index snapshot again (scanning and checksumming the segment being appended to first).
fn close_after_a_write(dir: &Path) -> std::time::Duration {
    let db =
        NodeDb::open_with(dir, VERSION, self_id(), options(Durability::Process)).expect("open");
    db.update_last_pong(&common::node(0).id, std::time::SystemTime::now())
        .expect("write");
    let started = std::time::Instant::now();
    db.close().expect("close");
    started.elapsed()
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    // PEERLOG_BENCH_SIZES=100k (or 1m) builds and measures one size only, for profiling.
    let sizes = std::env::var("PEERLOG_BENCH_SIZES").unwrap_or_default();
    for (label, nodes) in [("100k", 100_000u64), ("1m", 1_000_000)] {
        if !sizes.is_empty() && !sizes.split(',').any(|s| s == label) {
            continue;
        }
        let dir = temp_dir("replay");
        build_log(dir.path(), nodes);
        let records = mmap_crc_scan(dir.path());
        group.throughput(Throughput::Elements(records));
        group.bench_function(format!("open_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| open_once(dir.path())).sum())
        });
        group.bench_function(format!("replay_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| replay_once(dir.path())).sum())
        });
        group.bench_function(format!("mmap_crc_{label}"), |b| {
            b.iter(|| mmap_crc_scan(dir.path()))
        });
        assert_eq!(scan_decode(dir.path()), records);
        group.bench_function(format!("scan_decode_{label}"), |b| {
            b.iter(|| scan_decode(dir.path()))
        });
        // Last of the group on this log: each close follows a write, so the log grows.
        group.bench_function(format!("close_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| close_after_a_write(dir.path())).sum())
        });
        if nodes == 1_000_000 {
            let db =
                NodeDb::open_with(dir.path(), VERSION, self_id(), options(Durability::Process))
                    .expect("open");
            db.compact().expect("compact");
            db.close().expect("close");
            let records = mmap_crc_scan(dir.path());
            group.throughput(Throughput::Elements(records));
            group.bench_function(format!("open_{label}_compacted"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| open_once(dir.path())).sum())
            });
            group.bench_function(format!("replay_{label}_compacted"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| replay_once(dir.path())).sum())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
