//! Runs the fuzz targets' checks without a fuzzer: every committed seed of
//! `fuzz/corpus/<target>/` and every file of `fuzz/artifacts/<target>/` (crashes found by the
//! fuzzer and kept as regression files) goes through the same `peerlog::fuzzing::check_*`
//! function the target calls.
//!
//! Files libFuzzer adds to a corpus while it runs are not committed; set
//! `PEERLOG_FUZZ_CORPUS_ALL=1` to replay those too. The seeds themselves are written by
//! `cargo test --test fuzz_corpus -- --ignored write_seed_corpus`.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::fuzzing::{self, FIX_HEADER_CRC, FIX_RECORD_CRC, OTHER_VERSION, TARGETS};
use peerlog::{Node, NodeDb, NodeId, Options};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

fn files_of(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// Runs `target`'s check on each file and fails with the list of files that panicked.
fn replay(target: &str, files: &[PathBuf]) {
    let mut failures = Vec::new();
    for file in files {
        let data = fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| fuzzing::check(target, &data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn corpus_and_artifacts(target: &str) -> Vec<PathBuf> {
    let all = std::env::var_os("PEERLOG_FUZZ_CORPUS_ALL").is_some();
    let mut files = files_of(&fuzz_dir().join("corpus").join(target), |name| {
        all || name.starts_with("seed-")
    });
    files.extend(files_of(&fuzz_dir().join("artifacts").join(target), |_| {
        true
    }));
    files
}

#[test]
fn every_target_has_a_seed_corpus() {
    for target in TARGETS {
        let seeds = files_of(&fuzz_dir().join("corpus").join(target), |name| {
            name.starts_with("seed-")
        });
        assert!(seeds.len() >= 4, "{target} has {} seeds", seeds.len());
    }
}

#[test]
fn open_segment_corpus() {
    replay("open_segment", &corpus_and_artifacts("open_segment"));
}

#[test]
fn ops_model_corpus() {
    replay("ops_model", &corpus_and_artifacts("ops_model"));
}

#[test]
fn node_rlp_corpus() {
    replay("node_rlp", &corpus_and_artifacts("node_rlp"));
}

#[test]
fn enode_url_corpus() {
    replay("enode_url", &corpus_and_artifacts("enode_url"));
}

// ---------------------------------------------------------------------------------------------
// Seed generation: real files the project writes.

fn id(byte: u8) -> NodeId {
    NodeId([byte; 64])
}

fn sample_nodes() -> Vec<Node> {
    vec![
        Node::new(
            id(0x22),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            30303,
            30303,
        ),
        Node::new(
            id(0x33),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            30301,
            30303,
        ),
        Node::new(id(0x44), IpAddr::V6(Ipv6Addr::LOCALHOST), 0, 65535),
        Node::new(
            id(0x55),
            IpAddr::V6("2001:db8::ff00:42:8329".parse().unwrap()),
            127,
            128,
        ),
        Node::new(id(0x66), IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1, 256),
    ]
}

/// A log with every event kind over several 4 KiB segments, as peerlog writes it.
fn write_log(dir: &Path, compact: bool) {
    let opts = Options {
        segment_size: 4096,
        ..Options::default()
    };
    let me = id(0x11);
    let db = NodeDb::open_with(dir, 1, me, opts).unwrap();
    let past = UNIX_EPOCH + Duration::from_secs(1_000_000_000);
    let future = UNIX_EPOCH + Duration::from_secs(4_102_444_800);
    for round in 0..6u32 {
        for node in sample_nodes() {
            db.update_node(&node).unwrap();
            db.update_last_ping(&node.id, future + Duration::from_secs(round.into()))
                .unwrap();
            let pong = if node.id == id(0x66) { past } else { future };
            db.update_last_pong(&node.id, pong).unwrap();
            db.update_find_fails(&node.id, round).unwrap();
        }
        db.delete_node(&id(0x44)).unwrap();
    }
    db.update_node(&Node::new(me, IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 1))
        .unwrap();
    db.expire_nodes().unwrap();
    db.update_last_ping(&id(0x77), SystemTime::now()).unwrap();
    if compact {
        db.compact().unwrap();
        db.update_find_fails(&id(0x22), 9).unwrap();
    }
    db.close().unwrap();
}

/// The segment files of `dir` in name order, trailing zeros (the preallocated tail) removed.
fn segments(dir: &Path) -> Vec<Vec<u8>> {
    files_of(dir, |name| name.ends_with(".seg"))
        .iter()
        .map(|path| {
            let mut bytes = fs::read(path).unwrap();
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            bytes.truncate(used.max(64));
            bytes
        })
        .collect()
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand when the format changes"]
fn write_seed_corpus() {
    let corpus = fuzz_dir().join("corpus");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };

    let plain = tempfile::tempdir().unwrap();
    write_log(plain.path(), false);
    let segs = segments(plain.path());
    assert!(segs.len() >= 2, "the log should span several segments");
    let compacted = tempfile::tempdir().unwrap();
    write_log(compacted.path(), true);
    let csegs = segments(compacted.path());
    let last = segs.last().unwrap().clone();
    let mut untrimmed =
        fs::read(files_of(plain.path(), |n| n.ends_with(".seg"))[0].clone()).unwrap();
    untrimmed.truncate(4096);
    let seeds: Vec<(&str, u8, Vec<Vec<u8>>)> = vec![
        ("log", 0, segs.clone()),
        ("log-fix-crc", FIX_HEADER_CRC | FIX_RECORD_CRC, segs.clone()),
        ("log-other-version", OTHER_VERSION, segs.clone()),
        ("last-segment", 0, vec![last.clone()]),
        (
            "last-segment-fix-crc",
            FIX_HEADER_CRC | FIX_RECORD_CRC,
            vec![last],
        ),
        ("first-segment-preallocated", 0, vec![untrimmed]),
        ("compacted", 0, csegs.clone()),
        ("compacted-fix-crc", FIX_HEADER_CRC | FIX_RECORD_CRC, csegs),
        (
            "two-generations",
            0,
            vec![segs[0].clone(), segments(compacted.path())[0].clone()],
        ),
        ("empty", 0, Vec::new()),
    ];
    for (name, flags, files) in seeds {
        write(
            "open_segment",
            name,
            &fuzzing::open_segment_input(flags, &files),
        );
    }

    for (i, len) in [64, 128, 256, 512, 768, 1024, 1536, 2048]
        .into_iter()
        .enumerate()
    {
        write(
            "ops_model",
            &format!("noise-{i}"),
            &noise(i as u64 + 1, len),
        );
    }
    for (i, node) in sample_nodes().iter().enumerate() {
        write("node_rlp", &format!("node-{i}"), &node.to_rlp());
        write(
            "enode_url",
            &format!("node-{i}"),
            node.to_string().as_bytes(),
        );
    }
    write(
        "enode_url",
        "uppercase-id",
        format!("enode://{}@127.0.0.1:30303?discport=30301", "AB".repeat(64)).as_bytes(),
    );
    write(
        "enode_url",
        "ipv6-long",
        format!("enode://{}@[0:0:0:0:0:0:0:1]:1", "cd".repeat(64)).as_bytes(),
    );
}
