//! The NodeDb API, method by method, and reopen against the shared model of peer state.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::{log_distance, Error, Event, Node, NodeDb, NodeId, Options};
use peerlog_checks::model::{observe, Model};
use rand::{RngExt, SeedableRng};

fn id(n: u64) -> NodeId {
    let mut bytes = [0u8; 64];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[63] = 0xee;
    NodeId(bytes)
}

fn node(n: u64) -> Node {
    Node::new(
        id(n),
        IpAddr::V4(Ipv4Addr::new(10, 0, (n >> 8) as u8, n as u8)),
        30303,
        30303 + (n % 3) as u16,
    )
}

fn secs(s: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(s)
}

const SELF: u64 = 0;

fn open(dir: &std::path::Path) -> NodeDb {
    NodeDb::open(dir, 1, id(SELF)).unwrap()
}

#[test]
fn node_id_parses_hex_with_or_without_prefix_and_rejects_bad_input() {
    let hex = "0123456789abcdef".repeat(8);
    let plain: NodeId = hex.parse().unwrap();
    assert_eq!(format!("0x{hex}").parse::<NodeId>().unwrap(), plain);
    assert_eq!(hex.to_uppercase().parse::<NodeId>().unwrap(), plain);
    assert_eq!(plain.to_string(), hex);
    let short = hex[..126].parse::<NodeId>().unwrap_err().to_string();
    assert!(short.contains("128") && short.contains("126"), "{short}");
    let not_hex = format!("{}zz", &hex[..126])
        .parse::<NodeId>()
        .unwrap_err()
        .to_string();
    assert!(
        not_hex.contains("non-hex") && not_hex.contains("126"),
        "{not_hex}"
    );
}

#[test]
fn rlp_matches_go_ethereum_and_rejects_malformed_input() {
    let node = Node::new(
        NodeId([0xab; 64]),
        IpAddr::V4(Ipv4Addr::LOCALHOST),
        30303,
        30303,
    );
    let rlp = node.to_rlp();
    let mut expected = vec![
        0xf8, 0x4d, 0x84, 0x7f, 0x00, 0x00, 0x01, 0x82, 0x76, 0x5f, 0x82, 0x76, 0x5f, 0xb8, 0x40,
    ];
    expected.extend_from_slice(&[0xab; 64]);
    assert_eq!(rlp, expected);
    assert_eq!(Node::from_rlp(&rlp).unwrap(), node);

    let v6 = Node::new(NodeId([1; 64]), IpAddr::V6(Ipv6Addr::LOCALHOST), 0, 65535);
    assert_eq!(Node::from_rlp(&v6.to_rlp()).unwrap(), v6);

    let mut trailing = rlp.clone();
    trailing.push(0);
    assert!(
        Node::from_rlp(&trailing).is_err(),
        "trailing bytes accepted"
    );
    // udp port with a leading zero byte: 0x83 00 76 5f (list length grows by one).
    let mut leading_zero = vec![
        0xf8, 0x4e, 0x84, 0x7f, 0, 0, 1, 0x83, 0x00, 0x76, 0x5f, 0x82, 0x76, 0x5f, 0xb8, 0x40,
    ];
    leading_zero.extend_from_slice(&[0xab; 64]);
    assert!(
        Node::from_rlp(&leading_zero).is_err(),
        "non-canonical integer accepted"
    );
    // udp port 65536: 0x83 01 00 00.
    let mut too_big = vec![
        0xf8, 0x4e, 0x84, 0x7f, 0, 0, 1, 0x83, 0x01, 0x00, 0x00, 0x82, 0x76, 0x5f, 0xb8, 0x40,
    ];
    too_big.extend_from_slice(&[0xab; 64]);
    let err = Node::from_rlp(&too_big).unwrap_err().to_string();
    assert!(err.contains("65536"), "{err}");
    // a 5-byte IP.
    let mut odd_ip = vec![
        0xf8, 0x4e, 0x85, 0x7f, 0, 0, 1, 9, 0x82, 0x76, 0x5f, 0x82, 0x76, 0x5f, 0xb8, 0x40,
    ];
    odd_ip.extend_from_slice(&[0xab; 64]);
    assert!(Node::from_rlp(&odd_ip).is_err(), "5-byte IP accepted");
    for cut in 0..rlp.len() {
        assert!(
            Node::from_rlp(&rlp[..cut]).is_err(),
            "prefix of {cut} bytes accepted"
        );
    }
}

#[test]
fn enode_urls_parse_and_print() {
    let hex = "5a".repeat(64);
    let same_ports: Node = format!("enode://{hex}@10.3.58.6:30303").parse().unwrap();
    assert_eq!((same_ports.udp, same_ports.tcp), (30303, 30303));
    assert_eq!(
        same_ports.to_string(),
        format!("enode://{hex}@10.3.58.6:30303")
    );

    let v6: Node = format!("enode://{hex}@[2001:db8::1]:30303?discport=30301")
        .parse()
        .unwrap();
    assert_eq!(v6.ip, "2001:db8::1".parse::<IpAddr>().unwrap());
    assert_eq!((v6.udp, v6.tcp), (30301, 30303));
    assert_eq!(
        v6.to_string(),
        format!("enode://{hex}@[2001:db8::1]:30303?discport=30301")
    );

    for bad in [
        format!("enode://{hex}@example.com:30303"),
        format!("enode://{hex}@10.0.0.1"),
        format!("enode://{hex}@10.0.0.1:70000"),
        format!("enode://{hex}@10.0.0.1:30303?discport=x"),
        format!("enr://{hex}@10.0.0.1:30303"),
        format!("enode://{}@10.0.0.1:30303", &hex[2..]),
        format!("enode://{hex}@[::1:30303"),
    ] {
        let err = bad.parse::<Node>().unwrap_err();
        assert!(matches!(err, Error::InvalidInput(_)), "{bad}: {err}");
    }
}

#[test]
fn hashes_and_log_distance() {
    // Keccak-256 of 64 zero bytes.
    let hash = NodeId([0; 64]).hash();
    assert_eq!(hash[..4], [0xad, 0x32, 0x28, 0xb6]);
    assert_eq!(node(1).sha(), id(1).hash());
    let a = id(1).hash();
    assert_eq!(log_distance(&a, &a), 0);
    let mut b = a;
    b[31] ^= 1;
    assert_eq!(log_distance(&a, &b), 1);
    b[0] ^= 0x40;
    assert_eq!(log_distance(&a, &b), 255);
}

#[test]
fn every_method_on_known_and_unknown_ids() {
    for db in [
        NodeDb::in_memory(id(SELF)),
        open(tempfile::tempdir().unwrap().path()),
    ] {
        assert_eq!(db.node(&id(1)), None);
        assert_eq!(db.last_ping(&id(1)), None);
        assert_eq!(db.last_pong(&id(1)), None);
        assert_eq!(db.find_fails(&id(1)), 0);
        assert_eq!(db.len(), 0);
        db.delete_node(&id(1)).unwrap();

        db.update_node(&node(1)).unwrap();
        db.update_last_ping(&id(1), secs(100)).unwrap();
        db.update_last_pong(&id(1), secs(200)).unwrap();
        db.update_find_fails(&id(1), 3).unwrap();
        assert_eq!(db.node(&id(1)), Some(node(1)));
        assert_eq!(db.last_ping(&id(1)), Some(secs(100)));
        assert_eq!(db.last_pong(&id(1)), Some(secs(200)));
        assert_eq!(db.find_fails(&id(1)), 3);
        assert_eq!(db.len(), 1);

        // Overwrite.
        let moved = Node::new(id(1), IpAddr::V6(Ipv6Addr::LOCALHOST), 1, 2);
        db.update_node(&moved).unwrap();
        db.update_last_ping(&id(1), secs(101)).unwrap();
        db.update_find_fails(&id(1), 0).unwrap();
        assert_eq!(db.node(&id(1)), Some(moved));
        assert_eq!(db.last_ping(&id(1)), Some(secs(101)));
        assert_eq!(db.find_fails(&id(1)), 0);
        assert_eq!(db.len(), 1);

        // Ping data without a node record is kept apart from records.
        db.update_last_pong(&id(2), secs(5)).unwrap();
        assert_eq!(db.node(&id(2)), None);
        assert_eq!(db.last_pong(&id(2)), Some(secs(5)));
        assert_eq!(db.len(), 1);

        // Delete drops everything about the id.
        db.delete_node(&id(1)).unwrap();
        assert_eq!(db.node(&id(1)), None);
        assert_eq!(db.last_ping(&id(1)), None);
        assert_eq!(db.last_pong(&id(1)), None);
        assert_eq!(db.find_fails(&id(1)), 0);
        assert_eq!(db.len(), 0);
        db.close().unwrap();
    }
}

#[test]
fn timestamps_round_trip_whole_seconds_and_beyond() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let times = [
        secs(0),
        secs(1_700_000_000),
        UNIX_EPOCH - Duration::from_secs(86_400),
        secs(5) + Duration::from_nanos(123),
    ];
    for (n, t) in times.iter().enumerate() {
        db.update_last_ping(&id(n as u64 + 1), *t).unwrap();
    }
    let far = UNIX_EPOCH + Duration::from_secs(400 * 365 * 86_400);
    assert!(matches!(
        db.update_last_pong(&id(9), far),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(
        db.last_pong(&id(9)),
        None,
        "a refused write left state behind"
    );
    db.close().unwrap();
    let db = open(dir.path());
    for (n, t) in times.iter().enumerate() {
        assert_eq!(db.last_ping(&id(n as u64 + 1)), Some(*t));
    }
}

#[test]
fn seeds_are_fresh_distinct_never_self_and_capped() {
    let db = NodeDb::in_memory(id(SELF));
    let now = SystemTime::now();
    db.update_node(&node(SELF)).unwrap();
    db.update_last_pong(&id(SELF), now).unwrap();
    for n in 1..=20 {
        db.update_node(&node(n)).unwrap();
        // Odd nodes answered an hour ago, even ones three days ago.
        let age = if n % 2 == 1 { 3600 } else { 3 * 86_400 };
        db.update_last_pong(&id(n), now - Duration::from_secs(age))
            .unwrap();
    }
    // A fresh pong without a record is not a seed.
    db.update_last_pong(&id(99), now).unwrap();
    let seeds = db.query_seeds(100, Duration::from_secs(2 * 86_400));
    let mut ids: Vec<_> = seeds.iter().map(|n| n.id).collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 10, "expected every fresh node once: {seeds:?}");
    assert!(seeds
        .iter()
        .all(|s| s.id != id(SELF) && u64::from_be_bytes(s.id.0[..8].try_into().unwrap()) % 2 == 1));
    assert_eq!(db.query_seeds(3, Duration::from_secs(2 * 86_400)).len(), 3);
    assert_eq!(db.query_seeds(0, Duration::from_secs(2 * 86_400)).len(), 0);
    assert_eq!(db.query_seeds(30, Duration::from_secs(60)).len(), 0);
    assert_eq!(
        db.query_seeds(30, Duration::from_secs(5 * 86_400)).len(),
        20
    );
}

#[test]
fn seeds_are_uniform() {
    // 40 eligible among 200 nodes; draw 5 at a time. Every eligible node should be picked
    // about draws*5/40 times; a biased sampler (like the original's random seek) is far off.
    let db = NodeDb::in_memory(id(SELF));
    let now = SystemTime::now();
    for n in 1..=200 {
        db.update_node(&node(n)).unwrap();
        let age = if n % 5 == 0 { 60 } else { 10 * 86_400 };
        db.update_last_pong(&id(n), now - Duration::from_secs(age))
            .unwrap();
    }
    let draws = 4000;
    let mut counts: HashMap<NodeId, u32> = HashMap::new();
    for _ in 0..draws {
        for seed in db.query_seeds(5, Duration::from_secs(86_400)) {
            *counts.entry(seed.id).or_default() += 1;
        }
    }
    assert_eq!(counts.len(), 40);
    let expected = f64::from(draws * 5) / 40.0; // 500
    let chi2: f64 = counts
        .values()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum();
    // 39 degrees of freedom: the 99.99th percentile is about 80.
    assert!(chi2 < 80.0, "chi-square {chi2} too large: {counts:?}");
}

/// Random probes hit the same entry again and again when most entries are eligible and a
/// query asks for most of them: a node is still returned once. Both sizes of the record of
/// entries probed (a short list for a usual query, a set for a large one) are exercised.
#[test]
fn seeds_never_repeat_a_node() {
    let db = NodeDb::in_memory(id(SELF));
    let now = SystemTime::now();
    for n in 1..=60 {
        db.update_node(&node(n)).unwrap();
        db.update_last_pong(&id(n), now).unwrap();
    }
    for (wanted, got) in [(50, 50), (100, 60)] {
        for _ in 0..200 {
            let mut seeds: Vec<NodeId> = db
                .query_seeds(wanted, Duration::from_secs(86_400))
                .into_iter()
                .map(|n| n.id)
                .collect();
            seeds.sort();
            seeds.dedup();
            assert_eq!(seeds.len(), got, "query_seeds({wanted}) repeated a node");
        }
    }
}

#[test]
fn seeds_when_eligible_nodes_are_rare() {
    let db = NodeDb::in_memory(id(SELF));
    let now = SystemTime::now();
    for n in 1..=2000 {
        db.update_node(&node(n)).unwrap();
        let age = if n == 777 || n == 1999 {
            1
        } else {
            10 * 86_400
        };
        db.update_last_pong(&id(n), now - Duration::from_secs(age))
            .unwrap();
    }
    let mut seeds: Vec<_> = db
        .query_seeds(30, Duration::from_secs(86_400))
        .into_iter()
        .map(|n| n.id)
        .collect();
    seeds.sort();
    assert_eq!(seeds, vec![id(777), id(1999)]);
}

/// `query_seeds(n, _)` returns min(n, eligible) nodes for any n (docs/DESIGN.md, "Semantics"):
/// a huge n, asking for "all of them", returns every eligible node. Sizing the sample from n
/// before capping it (`4 * n + 32` probes, a set with capacity `4 * n`) overflows and panics,
/// or aborts on allocation for n around 2^30.
#[test]
fn query_seeds_with_huge_n_returns_every_eligible_node() {
    let db = NodeDb::in_memory(id(0));
    db.update_node(&node(1)).unwrap();
    db.update_last_pong(&id(1), SystemTime::now()).unwrap();
    let seeds = db.query_seeds(usize::MAX, Duration::from_secs(3600));
    assert_eq!(seeds, vec![node(1)]);
}

#[test]
fn expiration_drops_stale_nodes_and_self_and_keeps_fresh_ones() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        expiration: Duration::from_secs(3600),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(SELF), opts.clone()).unwrap();
    let now = SystemTime::now();
    db.update_node(&node(SELF)).unwrap();
    db.update_last_pong(&id(SELF), now).unwrap();
    db.update_node(&node(1)).unwrap();
    db.update_last_pong(&id(1), now - Duration::from_secs(60))
        .unwrap();
    db.update_node(&node(2)).unwrap();
    db.update_last_pong(&id(2), now - Duration::from_secs(7200))
        .unwrap();
    db.update_last_ping(&id(2), now).unwrap();
    db.update_node(&node(3)).unwrap(); // never answered yet: judged by its write, just now
    db.update_last_ping(&id(4), now - Duration::from_secs(7200))
        .unwrap(); // no record, stale
    db.update_last_ping(&id(5), now).unwrap(); // no record, fresh

    assert_eq!(db.expire_nodes().unwrap(), 2);
    assert_eq!(db.node(&id(1)), Some(node(1)));
    assert_eq!(
        db.node(&id(3)),
        Some(node(3)),
        "a node written a moment ago was expired before its first pong"
    );
    for gone in [SELF, 2] {
        assert_eq!(db.node(&id(gone)), None, "node {gone} survived expiration");
    }
    assert_eq!(db.last_ping(&id(2)), None, "expired node kept its ping");
    assert_eq!(db.last_ping(&id(4)), None, "stale record-less id kept");
    assert_eq!(
        db.last_ping(&id(5)),
        Some(now),
        "fresh record-less id dropped"
    );
    assert_eq!(db.len(), 2);
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(SELF), opts).unwrap();
    assert_eq!(db.len(), 2, "expiration did not survive reopen");
    assert_eq!(db.last_ping(&id(5)), Some(now));
}

#[test]
fn expirer_runs_in_the_background_once_and_stops_on_close() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        expiration: Duration::from_secs(3600),
        cleanup_interval: Duration::from_millis(20),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(SELF), opts).unwrap();
    db.update_node(&node(1)).unwrap();
    db.update_last_pong(&id(1), SystemTime::now() - Duration::from_secs(7200))
        .unwrap();
    db.ensure_expirer();
    db.ensure_expirer();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while db.node(&id(1)).is_some() {
        assert!(std::time::Instant::now() < deadline, "expirer never ran");
        std::thread::sleep(Duration::from_millis(5));
    }
    db.close().unwrap();
}

#[test]
fn open_refuses_an_empty_path() {
    assert!(matches!(
        NodeDb::open("", 1, id(SELF)),
        Err(Error::InvalidInput(_))
    ));
}

#[test]
fn open_creates_missing_directories() {
    let dir = tempfile::tempdir().unwrap();
    let nested = dir.path().join("a/b/c");
    let db = open(&nested);
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    assert_eq!(open(&nested).node(&id(1)), Some(node(1)));
}

#[test]
fn version_change_wipes_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open(dir.path(), 4, id(SELF)).unwrap();
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    let db = NodeDb::open(dir.path(), 5, id(SELF)).unwrap();
    assert_eq!(db.len(), 0);
    assert_eq!(db.node(&id(1)), None);
    db.update_node(&node(2)).unwrap();
    db.close().unwrap();
    let db = NodeDb::open(dir.path(), 5, id(SELF)).unwrap();
    assert_eq!((db.node(&id(1)), db.node(&id(2))), (None, Some(node(2))));
}

/// A file named like a segment that is not one is refused, naming it, and nothing is changed
/// (files not named like peerlog's are ignored: tests/stray_files.rs).
#[test]
fn a_file_named_like_a_segment_that_is_not_one_is_refused_and_left_untouched() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("notes.txt"), b"my notes").unwrap();
    let segment = dir.path().join("0000000000000001.seg");
    std::fs::write(&segment, b"not a segment at all").unwrap();
    let before = list(dir.path());
    let err = NodeDb::open(dir.path(), 1, id(SELF)).expect_err("foreign segment opened");
    match &err {
        Error::DamagedHeader { path, reason } => {
            assert_eq!(path, &segment);
            assert_eq!(reason, "does not start with peerlog's magic number");
        }
        other => panic!("unexpected error {other}"),
    }
    assert!(err.to_string().contains("has a damaged header"), "{err}");
    assert_eq!(list(dir.path()), before, "a refused directory was changed");

    let short = tempfile::tempdir().unwrap();
    std::fs::write(short.path().join("0000000000000001.seg"), b"GARB").unwrap();
    let err = NodeDb::open(short.path(), 1, id(SELF)).err().unwrap();
    assert!(
        err.to_string()
            .contains("the file is 4 bytes, too short for peerlog's magic number"),
        "{err}"
    );
}

fn list(dir: &std::path::Path) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                std::fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    files.sort();
    files
}

/// Checks that `db` holds what `model` (the shared model of peer state) says: the node
/// count, and the node, ping, pong and fails of each of `ids` ids (and no IP slot: none is
/// probed, and `observe` checks that none is listed).
fn check(model: &Model, db: &NodeDb, ids: u64) {
    assert_eq!(db.len(), model.nodes());
    for n in 0..ids {
        let key = id(n);
        assert_eq!(
            observe(db, &key, &[]),
            model.entry(&key).observed(&[]),
            "id {n}"
        );
    }
}

#[test]
fn reopen_returns_the_same_state_after_thousands_of_random_operations() {
    let dir = tempfile::tempdir().unwrap();
    // Compaction also expires stale nodes; these random timestamps are mostly years old.
    let never_expire = Duration::from_secs(1000 * 365 * 86_400);
    let opts = Options {
        segment_size: 8192,
        expiration: never_expire,
        ..Options::default()
    };
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    let mut model = Model::default();
    let ids = 150;
    let mut db = NodeDb::open_with(dir.path(), 1, id(SELF), opts.clone()).unwrap();
    for step in 0..6000 {
        let target = id(rng.random_range(1..ids));
        match rng.random_range(0..100) {
            0..=29 => {
                let n = Node::new(
                    target,
                    IpAddr::V4(Ipv4Addr::from(rng.random::<u32>())),
                    rng.random(),
                    rng.random(),
                );
                db.update_node(&n).unwrap();
                model.apply(&Event::NodeUpdated(n));
            }
            30..=49 => {
                let t = secs(rng.random_range(0..2_000_000_000));
                db.update_last_ping(&target, t).unwrap();
                model.apply(&Event::Ping { id: target, at: t });
            }
            50..=69 => {
                let t = secs(rng.random_range(0..2_000_000_000));
                db.update_last_pong(&target, t).unwrap();
                model.apply(&Event::Pong { id: target, at: t });
            }
            70..=84 => {
                let f = rng.random_range(0..10);
                db.update_find_fails(&target, f).unwrap();
                model.apply(&Event::FindFails {
                    id: target,
                    fails: f,
                });
            }
            85..=94 => {
                db.delete_node(&target).unwrap();
                model.apply(&Event::NodeDeleted { id: target });
            }
            95..=97 => {
                db.close().unwrap();
                db = NodeDb::open_with(dir.path(), 1, id(SELF), opts.clone()).unwrap();
                assert!(
                    db.recovery().problems.is_empty(),
                    "{:?}",
                    db.recovery().problems
                );
                check(&model, &db, ids);
            }
            _ => {
                // With an expiration of centuries, compaction drops nothing: a record that
                // never got a pong is judged by its newest event, written just now.
                db.compact().unwrap();
                check(&model, &db, ids);
            }
        }
        if step % 1000 == 0 {
            check(&model, &db, ids);
        }
    }
    drop(db); // Drop closes too.
    let db = NodeDb::open_with(dir.path(), 1, id(SELF), opts).unwrap();
    check(&model, &db, ids);
    assert!(db.recovery().segments >= 1);
}

#[test]
fn temporary_files_that_are_not_peerlog_s_are_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("download.tmp"), b"someone else's").unwrap();
    let db = open(dir.path());
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    assert_eq!(
        std::fs::read(dir.path().join("download.tmp")).unwrap(),
        b"someone else's"
    );
    // peerlog's own leftover (a segment being written when a writer died) is removed on open.
    let ours = tempfile::tempdir().unwrap();
    std::fs::write(
        ours.path().join("0000000000000001.seg.tmp"),
        b"half a segment",
    )
    .unwrap();
    let db = open(ours.path());
    assert!(!ours.path().join("0000000000000001.seg.tmp").exists());
    db.update_node(&node(1)).unwrap();
}
