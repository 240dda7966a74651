//! `peerlog stats`: nodes, events, bytes and seeds, in English counts.

use std::time::{Duration, SystemTime};

use peerlog::Options;
use serde_json::Value;

mod common;
use common::{id, node, open, path_str, run_ok};

#[test]
fn stats_counts_nodes_events_bytes_and_seeds() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), Options::default());
    let now = SystemTime::now();
    for n in 1..=4u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
    }
    db.update_node(&node(5, "2001:db8::5", 30303, 30303))
        .unwrap();
    // Nodes 1 and 2 answered recently, node 3 two days ago; node 4 never.
    db.update_last_pong(&id(1), now).unwrap();
    db.update_last_pong(&id(2), now - Duration::from_secs(60))
        .unwrap();
    db.update_last_pong(&id(3), now - Duration::from_secs(2 * 86_400))
        .unwrap();
    db.update_last_pong(&id(3), now - Duration::from_secs(2 * 86_400))
        .unwrap();
    db.delete_node(&id(4)).unwrap();
    db.close().unwrap();
    let dir = path_str(temp.path());
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    assert_eq!(s["nodes"], 4);
    assert_eq!(s["ipv6_nodes"], 1);
    assert_eq!(s["records"], 10);
    assert_eq!(s["events"]["node"], 5);
    assert_eq!(s["events"]["pong"], 4);
    assert_eq!(s["events"]["delete"], 1);
    assert_eq!(s["events"]["ping"], 0);
    assert_eq!(s["seeds"], 2);
    // Dead: node 4's record (a 104-byte frame for IPv4 with 3-byte ports) and its delete (88),
    // and node 3's first pong (96).
    assert_eq!(s["dead_bytes"], 104 + 88 + 96);
    assert_eq!(
        s["live_bytes"].as_u64().unwrap() + s["dead_bytes"].as_u64().unwrap(),
        s["record_bytes"].as_u64().unwrap()
    );
    let week: Value =
        serde_json::from_str(&run_ok(&["stats", dir, "--json", "--seed-age", "7d"])).unwrap();
    assert_eq!(week["seeds"], 3);
    let text = run_ok(&["stats", dir]);
    assert!(text.contains("nodes:     4 (1 IPv6)"), "{text}");
}

#[test]
fn counts_and_durations_read_as_english() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let text = run_ok(&["demo", path_str(&dir), "--nodes", "1", "--days", "1"]);
    assert!(text.contains(" over 1 simulated day in "), "{text}");
    assert!(text.contains("\n1 node in "), "{text}");
    let stats = run_ok(&["stats", path_str(&dir)]);
    assert!(stats.contains("with a pong within 1 day\n"), "{stats}");
    assert!(stats.contains(", 1 id with data\n"), "{stats}");
    let week = run_ok(&["stats", path_str(&dir), "--seed-age", "7d 12h"]);
    assert!(week.contains("within 7 days 12h\n"), "{week}");
    let compact = run_ok(&["compact", path_str(&dir), "--expiration", "30d"]);
    assert!(compact.contains("compacted 1 segment: "), "{compact}");
}
