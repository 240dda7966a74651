//! `peerlog compact` and `peerlog expire`: what they report, and what they refuse.

use std::fs;
use std::net::IpAddr;
use std::time::{Duration, SystemTime};

use peerlog::Options;
use serde_json::Value;

mod common;
use common::{
    assert_one_line_error, id, node, open, path_str, peerlog, run_ok, small_db, small_segments,
    snapshot,
};

#[test]
fn expire_and_compact_take_the_lock_and_report_what_they_did() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), small_segments());
    let now = SystemTime::now();
    for n in 1..=30u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
        // Every third node answered two days ago: stale under the default 24 h expiration.
        let age = if n % 3 == 0 { 2 * 86_400 } else { 60 };
        db.update_last_pong(&id(n), now - Duration::from_secs(age))
            .unwrap();
    }
    db.close().unwrap();
    let dir = path_str(temp.path());

    let report: Value = serde_json::from_str(&run_ok(&["expire", dir, "--json"])).unwrap();
    assert_eq!(report["nodes_before"], 30);
    assert_eq!(report["nodes_expired"], 10);
    assert_eq!(report["nodes_after"], 20);
    assert_eq!(run_ok(&["dump", dir]).lines().count(), 20);

    // A longer expiration keeps everyone left; compaction rewrites 20 nodes x 2 events.
    let text = run_ok(&["compact", dir, "--expiration", "3d"]);
    assert!(text.starts_with("nodes: 20 -> 20 (0 expired)"), "{text}");
    assert!(text.contains("-> 40 records"), "{text}");
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    assert_eq!(s["records"], 40);
    assert_eq!(s["dead_bytes"], 0);
}

#[test]
fn compact_refuses_a_locked_database_a_wrong_version_and_a_missing_database() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());

    let writer = open(temp.path(), Options::default());
    assert_one_line_error(&peerlog(&["compact", dir]), "locked");
    assert_one_line_error(&peerlog(&["expire", dir]), "locked");
    drop(writer);

    let before = snapshot(temp.path());
    let wrong = peerlog(&["compact", dir, "--protocol-version", "6"]);
    assert_one_line_error(&wrong, "would wipe it");
    assert_eq!(snapshot(temp.path()), before, "nothing wiped");

    let empty = tempfile::tempdir().unwrap();
    for args in [&[][..], &["--protocol-version", "5"][..]] {
        for command in ["compact", "expire"] {
            let out = peerlog(&[&[command, path_str(empty.path())][..], args].concat());
            assert_one_line_error(&out, "no peerlog database");
            assert_eq!(
                fs::read_dir(empty.path()).unwrap().count(),
                0,
                "{command} {args:?} created a file"
            );
        }
    }
}

/// Issue 19, item 10: `compact` said "0 expired" while its expiry wrote an `ip_expire` event
/// for each IP slot gone silent; it now counts them, in text and JSON.
#[test]
fn compact_reports_the_ip_slots_it_expires() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), small_segments());
    let now = SystemTime::now();
    for n in 1..=4u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
        // Alive by its id, silent for two days at an IP it used to have: the node stays,
        // its slot at that IP expires.
        db.update_last_pong(&id(n), now).unwrap();
        let old_ip: IpAddr = format!("198.51.100.{n}").parse().unwrap();
        db.update_last_pong_from(&id(n), old_ip, now - Duration::from_secs(2 * 86_400))
            .unwrap();
    }
    db.close().unwrap();
    let dir = path_str(temp.path());
    let text = run_ok(&["compact", dir]);
    assert!(
        text.starts_with("nodes: 4 -> 4 (0 expired); IP slots: 4 expired; segments: "),
        "{text}"
    );
    let exported = run_ok(&["export", dir, "--kind", "ip_expire"]);
    assert_eq!(exported.lines().count(), 0, "compacted away: {exported}");
    let again: Value = serde_json::from_str(&run_ok(&["compact", dir, "--json"])).unwrap();
    assert_eq!(again["nodes_expired"], 0);
    assert_eq!(again["ips_expired"], 0, "nothing left to expire");
}

/// `expire` counts the IP slots it expires too (it said only "0 expired" while writing an
/// `ip_expire` event for each), in text and JSON, and they are gone afterwards.
#[test]
fn expire_reports_the_ip_slots_it_expires() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), small_segments());
    let now = SystemTime::now();
    for n in 1..=3u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
        db.update_last_pong(&id(n), now).unwrap();
        let old_ip: IpAddr = format!("198.51.100.{n}").parse().unwrap();
        db.update_last_pong_from(&id(n), old_ip, now - Duration::from_secs(2 * 86_400))
            .unwrap();
    }
    // A node silent for two days goes whole: counted as a node, not as an IP slot.
    db.update_node(&node(9, "192.0.2.9", 30303, 30303)).unwrap();
    db.update_last_pong(&id(9), now - Duration::from_secs(2 * 86_400))
        .unwrap();
    db.close().unwrap();
    let dir = path_str(temp.path());
    let text = run_ok(&["expire", dir]);
    assert!(
        text.starts_with("nodes: 4 -> 3 (1 expired); IP slots: 3 expired; segments: "),
        "{text}"
    );
    assert_eq!(
        run_ok(&["export", dir, "--kind", "ip_expire"])
            .lines()
            .count(),
        3
    );
    let again: Value = serde_json::from_str(&run_ok(&["expire", dir, "--json"])).unwrap();
    assert_eq!(again["nodes_expired"], 0);
    assert_eq!(again["ips_expired"], 0, "nothing left to expire");
}
