//! Helpers the command's tests share: running `peerlog`, reading its output, and small
//! databases written through the library.

#![allow(dead_code)] // each test file uses some of them

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::{Node, NodeDb, NodeId, Options};
use serde_json::Value;

pub const VERSION: u64 = 5;

pub fn peerlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(args)
        .output()
        .expect("running peerlog")
}

pub fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

pub fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 errors")
}

pub fn run_ok(args: &[&str]) -> String {
    let out = peerlog(args);
    assert!(
        out.status.success(),
        "peerlog {args:?} failed: {}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out),
        "",
        "no progress bar or noise when stderr is not a terminal"
    );
    stdout(&out)
}

pub fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Asserts an error: status 2, exactly one line on stderr mentioning `needle`, no debug dump.
pub fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got {err:?}");
    assert!(err.starts_with("peerlog: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked") && !err.contains(" {"), "{err:?}");
}

pub fn id(n: u8) -> NodeId {
    NodeId([n; 64])
}

pub fn node(n: u8, ip: &str, udp: u16, tcp: u16) -> Node {
    Node::new(id(n), ip.parse::<IpAddr>().unwrap(), udp, tcp)
}

/// 2024-05-01T12:30:45Z plus `secs`.
pub fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_566_645 + secs)
}

pub fn small_segments() -> Options {
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

/// Opens a database for writing. A lock just released can still be held for a moment by a
/// child process another test is spawning (the forked child holds a copy of every descriptor
/// until it execs), so `Locked` is retried briefly.
pub fn open(dir: &Path, opts: Options) -> NodeDb {
    for _ in 0..100 {
        match NodeDb::open_with(dir, VERSION, id(0), opts.clone()) {
            Err(peerlog::Error::Locked { .. }) => std::thread::sleep(Duration::from_millis(10)),
            other => return other.expect("open"),
        }
    }
    panic!("{} stayed locked", dir.display());
}

pub fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small database: node 1 (IPv4), node 2 (IPv6, own discovery port), node 3 deleted.
pub fn small_db(dir: &Path) {
    let db = open(dir, Options::default());
    let (a, b, c) = (
        node(1, "203.0.113.7", 30303, 30303),
        node(2, "2001:db8::1", 30301, 30303),
        node(3, "198.51.100.1", 30303, 30303),
    );
    for n in [&a, &b, &c] {
        db.update_node(n).unwrap();
    }
    db.update_last_ping(&a.id, at(0)).unwrap();
    db.update_last_pong(&a.id, at(1)).unwrap();
    db.update_find_fails(&b.id, 3).unwrap();
    db.update_node(&node(1, "203.0.113.8", 30303, 30303))
        .unwrap();
    db.delete_node(&c.id).unwrap();
    db.close().unwrap();
}

/// A database keeping its history: node 7, 100 pings of it, then a compaction that archives
/// them. Returns it open, with the time the pings count back from.
pub fn archived_db(dir: &Path) -> (NodeDb, SystemTime) {
    let opts = Options {
        keep_history: true,
        ..small_segments()
    };
    let db = open(dir, opts);
    let peer = node(7, "192.0.2.1", 30303, 30303);
    db.update_node(&peer).unwrap();
    let now = SystemTime::now();
    for i in 0..100 {
        db.update_last_ping(&peer.id, now - Duration::from_secs(100 - i))
            .unwrap();
    }
    db.compact().unwrap();
    (db, now)
}

/// Writes enough events into 4 KiB segments to fill several; returns the events' ids in order.
pub fn multi_segment_db(dir: &Path) -> NodeDb {
    let db = open(dir, small_segments());
    for n in 1..=60u8 {
        db.update_node(&node(n, &format!("10.0.0.{n}"), 30303, 30303))
            .unwrap();
        db.update_last_ping(&id(n), at(u64::from(n))).unwrap();
    }
    db
}

pub fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

pub fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

/// Every file's name and bytes.
pub fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
    files
}

/// A database with a modern node: a signed record replaced by a higher seq at a new endpoint,
/// liveness at its IP, and the local seq.
pub fn modern_db(dir: &Path) -> (NodeId, peerlog::enr::Enr<peerlog::enr::CombinedKey>) {
    use peerlog::enr::{CombinedKey, Enr};
    let key = CombinedKey::secp256k1_from_bytes(&mut [9u8; 32]).unwrap();
    let record = |ip: [u8; 4], seq: u64| {
        Enr::builder()
            .ip4(ip.into())
            .udp4(30303)
            .tcp4(30304)
            .seq(seq)
            .build(&key)
            .unwrap()
    };
    let db = open(dir, Options::default());
    let first = record([203, 0, 113, 9], 4);
    let second = record([198, 51, 100, 9], 5);
    let id = NodeId::from_enr(&first).unwrap();
    assert!(db.update_record(&first).unwrap());
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    assert!(db.update_record(&second).unwrap());
    db.update_last_ping_from(&id, ip, at(100)).unwrap();
    db.update_last_pong_from(&id, ip, at(101)).unwrap();
    db.update_find_fails_at(&id, ip, 2).unwrap();
    db.store_local_seq(42).unwrap();
    db.close().unwrap();
    (id, second)
}

/// The keys of a `dump --json` line, in the order docs/CLI.md lists them.
pub const DUMP_JSON_KEYS: [&str; 12] = [
    "id",
    "enode",
    "ip",
    "udp",
    "tcp",
    "record_seq",
    "enr",
    "last_ping",
    "last_pong",
    "fails",
    "ips",
    "last_written",
];

pub const U64_MAX: &str = "18446744073709551615";
pub const PAST_U64: &str = "18446744073709551616";

/// Says on the test run's own stderr (not the output the test harness captures and shows
/// only for a failure) that `test` is skipped, and why.
pub fn say_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}
