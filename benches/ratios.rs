//! The ratios the targets of issues 6 and 23 are judged on, measured *interleaved*: each round runs
//! every contender once, back to back, so that load from other processes on a shared machine
//! (and, for synced writes, other processes' writeback that an `fdatasync` on ext4 must wait
//! for) falls on both sides of each ratio alike. Criterion's figures in the other benches run
//! each contender in its own window of time and can differ by several times on a busy box.
//!
//! Prints one JSON line per contender: `{"id":"ratios/<name>","ops":..,"ns":..,"rate":..}`,
//! the sums over all rounds. Run with `cargo bench --bench ratios` (`PEERLOG_RATIO_ROUNDS`,
//! default 7; `PEERLOG_RATIO_ONLY=<part of a name>[,...]` runs only the matching contenders;
//! `PEERLOG_RATIO_GROUP=<name>` replaces `ratios` in the ids).

mod common;

use std::collections::BTreeMap;
use std::time::Duration;

use peerlog::{Durability, NodeDb};

use common::raw::{
    append, barrier_group_commit, gathered_group_commit, mmap_crc_scan, prealloc_fdatasync_each,
};
use common::{
    build_log, durable_writers, node, op_cycle, open_once, options, replay_once, run_cycle,
    self_id, temp_dir, workload_frames, VERSION,
};

/// Nodes in the cycle of operations the write contenders repeat.
const NODES: u64 = 10_000;
/// Operations per round for writes that reach the OS only.
const FAST_OPS: u64 = 200_000;
/// Operations per round for writes that wait for the disk.
const SYNCED_OPS: u64 = 300;
/// Opens (and mmap + CRC scans) of the 100 k-node log per round.
const REPLAY_PAIRS: usize = 3;
/// Opens (and mmap + CRC scans) of the 1 M-node log per round: one pair takes about half a
/// second, and the log (about 660 MiB) stays in the page cache of a 24 GiB machine.
const REPLAY_PAIRS_1M: usize = 1;
/// Threads of the group-commit contender.
const THREADS: u64 = 16;
/// Pieces each round's share of a durable-writer pair (peerlog against what it is judged
/// by) is cut into, the two sides alternating piece by piece: the disk of a shared machine
/// changes speed from one second to the next (an `fdatasync` from 0.1 to several ms), and
/// pieces close in time meet the same disk.
const SYNCED_PIECES: u64 = 10;
/// The same for the 16-thread pair, in fewer pieces: each piece starts with all 16 threads
/// at once and ends with them, and a piece of 50 writes a thread keeps those edges small.
const SYNCED_PIECES_16: u64 = 3;

fn open(durability: Durability) -> (tempfile::TempDir, NodeDb) {
    let dir = temp_dir("ratios");
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), options(durability)).unwrap();
    for t in 0..THREADS {
        db.update_node(&node(t)).unwrap();
    }
    (dir, db)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        // Run as a test (`cargo test --benches`): nothing to check, and far too slow.
        return;
    }
    let rounds: usize = std::env::var("PEERLOG_RATIO_ROUNDS")
        .ok()
        .and_then(|r| r.parse().ok())
        .unwrap_or(7);
    let cycle = op_cycle(NODES);
    let frames = workload_frames(NODES);
    let raw_dir = temp_dir("ratios-raw");
    let (_p, process) = open(Durability::Process);
    let (_g, group) = open(Durability::GroupCommit {
        max_delay: Duration::from_millis(10),
    });
    let (_s, sync_each) = open(Durability::SyncEachWrite);
    // PEERLOG_RATIO_ONLY=<part of a name>[,<another>...] runs only the contenders that match
    // one of them (for profiling, and for the sections of BENCHMARKS.md that run alone).
    let only = std::env::var("PEERLOG_RATIO_ONLY").unwrap_or_default();
    let want = |name: &str| only.split(',').any(|part| name.contains(part));
    let replay_dir = temp_dir("ratios-replay");
    if want("open_100k") || want("replay_100k") || want("mmap_crc_100k") {
        build_log(replay_dir.path(), 100_000);
    }
    let replay_records = mmap_crc_scan(replay_dir.path());
    let replay_dir_1m = temp_dir("ratios-replay-1m");
    if want("open_1m") || want("replay_1m") || want("mmap_crc_1m") {
        build_log(replay_dir_1m.path(), 1_000_000);
    }
    let replay_records_1m = mmap_crc_scan(replay_dir_1m.path());

    let mut totals: BTreeMap<&str, (u64, Duration)> = BTreeMap::new();
    let mut add = |name, ops, time| {
        let total = totals.entry(name).or_insert((0, Duration::ZERO));
        total.0 += ops;
        total.1 += time;
    };
    let (mut p_next, mut g_next, mut s_next) = (0, 0, 0);
    for round in 0..rounds {
        if want("process") {
            add(
                "process",
                FAST_OPS,
                run_cycle(&process, &cycle, &mut p_next, FAST_OPS),
            );
        }
        if want("raw_write_per_record") {
            add(
                "raw_write_per_record",
                FAST_OPS,
                append(&frames, raw_dir.path(), FAST_OPS, 0),
            );
        }
        if want("group_10ms_no_sync") {
            add(
                "group_10ms_no_sync",
                FAST_OPS,
                run_cycle(&group, &cycle, &mut g_next, FAST_OPS),
            );
        }
        if want("sync_each") {
            add(
                "sync_each",
                SYNCED_OPS,
                run_cycle(&sync_each, &cycle, &mut s_next, SYNCED_OPS),
            );
        }
        if want("raw_fdatasync_each") {
            add(
                "raw_fdatasync_each",
                SYNCED_OPS,
                append(&frames, raw_dir.path(), SYNCED_OPS, 1),
            );
        }
        if want("raw_fdatasync_each_prealloc") {
            add(
                "raw_fdatasync_each_prealloc",
                SYNCED_OPS,
                prealloc_fdatasync_each(&frames, raw_dir.path(), SYNCED_OPS),
            );
        }
        // The two one-thread contenders alternate piece by piece, and take turns at going
        // first.
        let piece = SYNCED_OPS / SYNCED_PIECES;
        for p in 0..SYNCED_PIECES {
            let even = (round + p as usize).is_multiple_of(2);
            for sync_each_now in [even, !even] {
                if sync_each_now && want("sync_each_1_thread") {
                    add(
                        "sync_each_1_thread",
                        piece,
                        durable_writers(&sync_each, 1, piece, false),
                    );
                }
                if !sync_each_now && want("group_10ms_1_thread") {
                    add(
                        "group_10ms_1_thread",
                        piece,
                        durable_writers(&group, 1, piece, true),
                    );
                }
            }
        }
        if want("raw_barrier_16_threads_fdatasync") {
            add(
                "raw_barrier_16_threads_fdatasync",
                8 * SYNCED_OPS,
                barrier_group_commit(&frames, raw_dir.path(), THREADS, 8 * SYNCED_OPS, true),
            );
        }
        // Likewise peerlog's 16 threads and the raw bound they are judged against.
        let piece = 8 * SYNCED_OPS / SYNCED_PIECES_16;
        for p in 0..SYNCED_PIECES_16 {
            let even = (round + p as usize).is_multiple_of(2);
            for group_now in [even, !even] {
                if group_now && want("group_10ms_16_threads") {
                    add(
                        "group_10ms_16_threads",
                        piece,
                        durable_writers(&group, THREADS, piece, true),
                    );
                }
                if !group_now && want("raw_gathered_16_threads_fdatasync") {
                    add(
                        "raw_gathered_16_threads_fdatasync",
                        piece,
                        gathered_group_commit(&frames, raw_dir.path(), THREADS, piece, true),
                    );
                }
            }
        }
        if want("raw_gathered_16_threads_no_io") {
            add(
                "raw_gathered_16_threads_no_io",
                8 * SYNCED_OPS,
                gathered_group_commit(&frames, raw_dir.path(), THREADS, 8 * SYNCED_OPS, false),
            );
        }
        if want("raw_barrier_16_threads_no_io") {
            add(
                "raw_barrier_16_threads_no_io",
                8 * SYNCED_OPS,
                barrier_group_commit(&frames, raw_dir.path(), THREADS, 8 * SYNCED_OPS, false),
            );
        }
        // Three alternating pairs per round: an open is short (tens of ms), and a pair close
        // in time shares whatever else the machine is doing.
        for _ in 0..REPLAY_PAIRS {
            if want("open_100k") {
                add("open_100k", replay_records, open_once(replay_dir.path()));
            }
            if want("replay_100k") {
                add(
                    "replay_100k",
                    replay_records,
                    replay_once(replay_dir.path()),
                );
            }
            if want("mmap_crc_100k") {
                let started = std::time::Instant::now();
                assert_eq!(mmap_crc_scan(replay_dir.path()), replay_records);
                add("mmap_crc_100k", replay_records, started.elapsed());
            }
        }
        for _ in 0..REPLAY_PAIRS_1M {
            if want("open_1m") {
                add(
                    "open_1m",
                    replay_records_1m,
                    open_once(replay_dir_1m.path()),
                );
            }
            if want("replay_1m") {
                add(
                    "replay_1m",
                    replay_records_1m,
                    replay_once(replay_dir_1m.path()),
                );
            }
            if want("mmap_crc_1m") {
                let started = std::time::Instant::now();
                assert_eq!(mmap_crc_scan(replay_dir_1m.path()), replay_records_1m);
                add("mmap_crc_1m", replay_records_1m, started.elapsed());
            }
        }
    }
    // PEERLOG_RATIO_GROUP names the run in the output ids (default "ratios"), e.g. for a second
    // run on another file system.
    let id_prefix = std::env::var("PEERLOG_RATIO_GROUP").unwrap_or_else(|_| "ratios".into());
    for (name, (ops, time)) in totals {
        println!(
            "{{\"id\":\"{id_prefix}/{name}\",\"ops\":{ops},\"ns\":{},\"rate\":{:.1},\"rounds\":{rounds}}}",
            time.as_nanos(),
            ops as f64 / time.as_secs_f64()
        );
    }
}
