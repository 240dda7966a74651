//! Opening a database: replaying its log into the index, for the mixed workload of 100 k and
//! 1 M nodes (seven events each: the node, two pings, two pongs, fails, a reset or a delete),
//! and for the 1 M-node log after compaction. Beside each, the replay ceiling: the same
//! segment files mapped and every record's CRC-32 checked, with nothing decoded or indexed.
//!
//! One iteration is one open (or one scan) of the whole log; throughput is records/s. The
//! files are in the page cache (warm), as they are on a restart that follows a clean stop.

mod common;

use std::fs::File;
use std::path::Path;
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use memmap2::Mmap;
use peerlog::{Durability, NodeDb};

use common::{
    build_log, frame_len, options, segment_files, self_id, temp_dir, FRAME_HEADER_LEN,
    SEGMENT_HEADER_LEN, VERSION,
};

/// Maps every segment of `dir` and checks each record's salted CRC-32; returns the records.
pub fn mmap_crc_scan(dir: &Path) -> u64 {
    let mut records = 0;
    for path in segment_files(dir) {
        let file = File::open(&path).expect("open segment");
        // SAFETY: the benchmark's files are not modified while mapped.
        let map = unsafe { Mmap::map(&file) }.expect("map segment");
        let salt: [u8; 8] = map[24..32].try_into().unwrap();
        let seed = crc32fast::hash(&salt);
        let mut pos = SEGMENT_HEADER_LEN;
        while let Some(len) = frame_len(&map[pos..]) {
            let payload = u16::from_le_bytes([map[pos + 12], map[pos + 13]]) as usize;
            let stored = u32::from_le_bytes(map[pos..pos + 4].try_into().unwrap());
            let mut hasher = crc32fast::Hasher::new_with_initial(seed);
            hasher.update(&map[pos + 4..pos + FRAME_HEADER_LEN + payload]);
            assert_eq!(hasher.finalize(), stored, "{} at {pos}", path.display());
            records += 1;
            pos += len;
        }
    }
    records
}

fn open_once(dir: &Path) -> Duration {
    let started = Instant::now();
    let db = NodeDb::open_with(dir, VERSION, self_id(), options(Durability::Process))
        .expect("open for replay");
    let elapsed = started.elapsed();
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    db.close().expect("close");
    elapsed
}

fn replay(c: &mut Criterion) {
    let mut group = c.benchmark_group("replay");
    group.sampling_mode(SamplingMode::Flat).sample_size(10);
    for (label, nodes) in [("100k", 100_000u64), ("1m", 1_000_000)] {
        let dir = temp_dir("replay");
        build_log(dir.path(), nodes);
        let records = mmap_crc_scan(dir.path());
        group.throughput(Throughput::Elements(records));
        group.bench_function(format!("open_{label}"), |b| {
            b.iter_custom(|iters| (0..iters).map(|_| open_once(dir.path())).sum())
        });
        group.bench_function(format!("mmap_crc_{label}"), |b| {
            b.iter(|| mmap_crc_scan(dir.path()))
        });
        if nodes == 1_000_000 {
            let db = NodeDb::open(dir.path(), VERSION, self_id()).expect("open");
            db.compact().expect("compact");
            db.close().expect("close");
            let records = mmap_crc_scan(dir.path());
            group.throughput(Throughput::Elements(records));
            group.bench_function(format!("open_{label}_compacted"), |b| {
                b.iter_custom(|iters| (0..iters).map(|_| open_once(dir.path())).sum())
            });
        }
    }
    group.finish();
}

criterion_group!(benches, replay);
criterion_main!(benches);
