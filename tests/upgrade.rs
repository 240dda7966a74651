//! Upgrades lose nothing: a database written by peerlog 0.1.0 (log format 1, committed under
//! `tests/fixtures/format1`) opens with every node, ping, pong and failure, takes writes of
//! every kind, compacts and reopens; a segment of a newer format is refused, changing nothing.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, UNIX_EPOCH};

use common::{record_id, segments, signed_record};
use peerlog::enr::CombinedKey;
use peerlog::{Error, Node, NodeDb, NodeId, Options};

const VERSION: u64 = 5;
/// 2026-11-01T00:00:00Z, the base of the fixture's times.
const T: u64 = 1_793_491_200;

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/format1")
}

/// A copy of the fixture's segments (opening changes a directory).
fn copy_of_fixture() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    fs::create_dir(&dir).unwrap();
    for entry in fs::read_dir(fixture()).unwrap() {
        let entry = entry.unwrap();
        if entry.file_name().to_string_lossy().ends_with(".seg") {
            fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
    }
    (temp, dir)
}

fn me() -> NodeId {
    NodeId([0x11; 64])
}

/// Opens with an expiration of a century: the fixture's times are fixed, and compaction
/// expires first.
fn open(dir: &Path) -> NodeDb {
    let opts = Options {
        expiration: Duration::from_secs(100 * 365 * 86_400),
        ..Options::default()
    };
    NodeDb::open_with(dir, VERSION, me(), opts).unwrap()
}

/// The format version in a segment file's header.
fn format_of(path: &Path) -> u32 {
    let bytes = fs::read(path).unwrap();
    assert_eq!(&bytes[..8], b"PEERLOG\0");
    u32::from_le_bytes(bytes[8..12].try_into().unwrap())
}

/// The fixture's exact state, as peerlog 0.1.0 left it, beside `more` nodes written since.
fn check_fixture_state(db: &NodeDb, more: usize) {
    let t = |secs: u64| Some(UNIX_EPOCH + Duration::from_secs(T + secs));
    let id = |b: u8| NodeId([b; 64]);
    let enode = |b: u8, addr: &str| -> Option<Node> {
        Some(
            format!("enode://{}@{addr}", format!("{b:02x}").repeat(64))
                .parse()
                .unwrap(),
        )
    };
    #[rustfmt::skip]
    let expected = [
        // id, node(), last_ping(), last_pong(), find_fails()
        (0xa1, enode(0xa1, "203.0.113.1:30303"), t(7740), t(7741), 0),
        (0xa2, enode(0xa2, "198.51.100.2:30303?discport=30301"), t(4340), t(4341), 3),
        (0xa3, enode(0xa3, "[2001:db8::3]:30303"), t(300), t(301), u32::MAX),
        (0xa4, enode(0xa4, "[::ffff:192.0.2.4]:0?discport=40404"), t(400), t(401), 0),
        (0xa5, None, t(500), t(501), 7),
        (0xa6, enode(0xa6, "[2001:db8::6]:30306?discport=30307"), t(600), t(601), 0),
        (0xa7, None, None, None, 0), // deleted before the compaction
        (0xa8, enode(0xa8, "192.0.2.8:30318"), None, None, 0), // expired by the compaction, re-added after
        (0xa9, enode(0xa9, "[2001:db8::9]:30309"), t(850),
            Some(UNIX_EPOCH + Duration::new(T + 5000, 123_456_789)), 0),
        (0xaa, None, None, None, 0), // deleted after the compaction
        (0xab, enode(0xab, "192.0.2.11:128?discport=127"),
            Some(UNIX_EPOCH - Duration::from_secs(86_400)), t(1100), 0),
        (0xac, None, None, None, 0), // fails 9, then 0
        (0xad, None, None, None, 0), // expired by expire_nodes()
        (0x11, None, None, None, 0), // ourselves: never written
    ];
    for (b, node, ping, pong, fails) in expected {
        let n = id(b);
        assert_eq!(db.node(&n), node, "node {b:02x}");
        assert_eq!(db.last_ping(&n), ping, "last_ping {b:02x}");
        assert_eq!(db.last_pong(&n), pong, "last_pong {b:02x}");
        assert_eq!(db.find_fails(&n), fails, "find_fails {b:02x}");
        assert_eq!(
            db.record_seq(&n),
            0,
            "{b:02x}: a format-1 record is unsigned"
        );
    }
    assert_eq!(db.len(), 8 + more);
}

#[test]
fn the_fixture_is_format_1_written_by_0_1_0() {
    let all = segments(&fixture());
    assert_eq!(all.len(), 3);
    for segment in &all {
        assert_eq!(format_of(segment), 1, "{}", segment.display());
    }
}

#[test]
fn a_format_1_database_opens_with_its_exact_state() {
    let (_temp, dir) = copy_of_fixture();
    let db = open(&dir);
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    assert_eq!(db.recovery().records, 98);
    check_fixture_state(&db, 0);
}

#[test]
fn a_format_1_database_takes_every_kind_of_write_compacts_and_reopens() {
    let (_temp, dir) = copy_of_fixture();
    let old = segments(&dir);
    let db = open(&dir);
    let ip = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 77));
    let at = UNIX_EPOCH + Duration::from_secs(T + 9000);
    assert!(db.update_record(&signed_record(1, 3)).unwrap());
    db.update_last_pong_from(&record_id(1), ip, at).unwrap();
    db.update_find_fails_at(&NodeId([0xa1; 64]), ip, 2).unwrap();
    db.store_local_seq(77).unwrap();
    // The old segments are left as they were, in format 1; new records go to format 3.
    let now = segments(&dir);
    for segment in &old {
        assert_eq!(format_of(segment), 1);
    }
    let new: Vec<_> = now.iter().filter(|s| !old.contains(s)).collect();
    assert!(!new.is_empty());
    for segment in new {
        assert_eq!(format_of(segment), 3, "{}", segment.display());
    }
    let check = |db: &NodeDb| {
        check_fixture_state(db, 1);
        assert_eq!(
            db.record::<CombinedKey>(&record_id(1)),
            Some(signed_record(1, 3))
        );
        assert_eq!(db.last_pong_from(&record_id(1), ip), Some(at));
        assert_eq!(db.find_fails_at(&NodeId([0xa1; 64]), ip), 2);
        assert_eq!(db.local_seq(), 77);
    };
    check(&db);
    db.close().unwrap();
    let db = open(&dir);
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    check(&db);
    db.compact().unwrap();
    check(&db);
    db.close().unwrap();
    let db = open(&dir);
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    check(&db);
    for segment in segments(&dir) {
        assert_eq!(
            format_of(&segment),
            3,
            "compaction rewrote the log in format 3"
        );
    }
}

#[test]
fn a_segment_of_a_newer_format_is_refused_and_nothing_changes() {
    let (_temp, dir) = copy_of_fixture();
    let last = segments(&dir).pop().unwrap();
    let mut bytes = fs::read(&last).unwrap();
    bytes[8..12].copy_from_slice(&4u32.to_le_bytes());
    let crc = crc32fast::hash(&bytes[..56]);
    bytes[56..60].copy_from_slice(&crc.to_le_bytes());
    fs::write(&last, &bytes).unwrap();
    let before = common::files(&dir);
    let err = NodeDb::open(&dir, VERSION, me()).expect_err("opened a newer format");
    match &err {
        Error::NewerFormat {
            path,
            format,
            supported,
        } => {
            assert_eq!((path, *format, *supported), (&last, 4, 3));
        }
        other => panic!("wrong error: {other}"),
    }
    let message = err.to_string();
    assert!(
        message.contains("format 4") && message.contains("upgrade"),
        "{message}"
    );
    assert_eq!(
        common::files(&dir),
        before,
        "a refused open changed the directory"
    );
}
