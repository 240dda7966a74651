//! Signed node records, per-IP liveness and the local seq, through the public API: the seq
//! rule, which records are stored, what `node` and the seeds make of them, one IP for IPv4
//! and its mapped form, expiry per IP, and a local seq that never goes back.

mod common;

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, SystemTime};

use common::{at, id, node, record_id, record_key, signed_record};
use peerlog::enr::{CombinedKey, Enr};
use peerlog::{Error, Node, NodeDb, NodeId, Options};

const VERSION: u64 = 11;

fn me() -> NodeId {
    id(999)
}

fn open(dir: &std::path::Path) -> NodeDb {
    NodeDb::open(dir, VERSION, me()).unwrap()
}

#[test]
fn a_record_replaces_one_of_lower_or_equal_seq_and_an_older_one_is_ignored() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let id = record_id(1);
    assert!(db.update_record(&signed_record(1, 5)).unwrap());
    assert_eq!(db.record_seq(&id), 5);
    let before = common::files(dir.path());
    assert!(
        !db.update_record(&signed_record(1, 4)).unwrap(),
        "an older seq replaced the record"
    );
    assert_eq!(
        common::files(dir.path()),
        before,
        "an ignored record was written"
    );
    assert_eq!(db.record_seq(&id), 5);
    assert!(
        db.update_record(&signed_record(1, 5)).unwrap(),
        "equal seq replaces"
    );
    assert!(db.update_record(&signed_record(1, 6)).unwrap());
    assert_eq!(db.record::<CombinedKey>(&id), Some(signed_record(1, 6)));
    db.close().unwrap();
    let db = open(dir.path());
    assert_eq!(db.record_seq(&id), 6);
    assert_eq!(db.record::<CombinedKey>(&id), Some(signed_record(1, 6)));
}

#[test]
fn an_unsigned_record_is_seq_0_it_never_replaces_a_signed_one_and_a_signed_one_replaces_it() {
    let db = NodeDb::in_memory(me());
    let id = record_id(2);
    let unsigned = Node::new(id, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)), 1, 2);
    db.update_node(&unsigned).unwrap();
    assert_eq!(db.record_seq(&id), 0);
    assert_eq!(
        db.record::<CombinedKey>(&id),
        None,
        "an unsigned record is no ENR"
    );
    assert!(db.update_record(&signed_record(2, 1)).unwrap());
    let signed_endpoint = db.node(&id).unwrap();
    assert_eq!(
        signed_endpoint.ip,
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2))
    );
    assert_eq!((signed_endpoint.udp, signed_endpoint.tcp), (30303, 30304));
    db.update_node(&unsigned).unwrap();
    assert_eq!(
        db.node(&id),
        Some(signed_endpoint),
        "update_node replaced a signed record"
    );
    assert_eq!(db.record_seq(&id), 1);
    assert_eq!(db.len(), 1);

    // A signed record of seq 0 is replaced by an unsigned one (equal seq).
    let zero = record_id(3);
    assert!(db.update_record(&signed_record(3, 0)).unwrap());
    let unsigned = Node::new(zero, IpAddr::V4(Ipv4Addr::new(192, 0, 2, 3)), 1, 2);
    db.update_node(&unsigned).unwrap();
    assert_eq!(db.node(&zero), Some(unsigned));
    assert_eq!(db.record::<CombinedKey>(&zero), None);
}

#[test]
fn only_v4_records_are_stored_and_nothing_is_written_for_others() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let before = common::files(dir.path());
    let ed = CombinedKey::generate_ed25519();
    let record = Enr::builder().ip4(Ipv4Addr::LOCALHOST).build(&ed).unwrap();
    assert!(matches!(
        db.update_record(&record),
        Err(Error::InvalidInput(_))
    ));
    assert!(matches!(
        NodeId::from_enr(&record),
        Err(Error::InvalidInput(_))
    ));
    assert_eq!(common::files(dir.path()), before);
    assert_eq!(db.len(), 0);
}

#[test]
fn the_endpoint_of_a_record_is_its_ipv4_else_its_ipv6_and_a_record_without_ip_is_no_seed() {
    let db = NodeDb::in_memory(me());
    let now = SystemTime::now();
    let v6: Ipv6Addr = "2001:db8::7".parse().unwrap();
    let only_v6 = Enr::builder()
        .ip6(v6)
        .udp6(9000)
        .build(&record_key(10))
        .unwrap();
    let no_ip = Enr::builder().udp4(9000).build(&record_key(11)).unwrap();
    let both = Enr::builder()
        .ip4(Ipv4Addr::new(203, 0, 113, 12))
        .ip6(v6)
        .udp6(1)
        .build(&record_key(12))
        .unwrap();
    for record in [&only_v6, &no_ip, &both] {
        assert!(db.update_record(record).unwrap());
        db.update_last_pong(&NodeId::from_enr(record).unwrap(), now)
            .unwrap();
    }
    let id = |r: &Enr<CombinedKey>| NodeId::from_enr(r).unwrap();
    assert_eq!(
        db.node(&id(&only_v6)),
        Some(Node::new(id(&only_v6), v6.into(), 9000, 0))
    );
    assert_eq!(
        db.node(&id(&no_ip)),
        None,
        "a record without IP names no endpoint"
    );
    assert_eq!(db.record::<CombinedKey>(&id(&no_ip)), Some(no_ip.clone()));
    let both_node = db.node(&id(&both)).unwrap();
    assert_eq!(
        (both_node.ip, both_node.udp, both_node.tcp),
        (Ipv4Addr::new(203, 0, 113, 12).into(), 0, 0)
    );
    assert_eq!(db.len(), 3, "a record without IP is still a record");
    let seeds = db.query_seeds(10, Duration::from_secs(60));
    assert_eq!(seeds.len(), 2);
    assert!(seeds.iter().all(|n| n.id != id(&no_ip)));
    let records: Vec<Enr<CombinedKey>> = db.query_seed_records(10, Duration::from_secs(60));
    assert_eq!(records.len(), 2);
    assert!(!records.contains(&no_ip));
}

#[test]
fn per_ip_liveness_is_separate_from_the_per_id_slot_and_ipv4_equals_its_mapped_form() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    let n = id(1);
    let v4 = IpAddr::V4(Ipv4Addr::new(198, 51, 100, 1));
    let mapped = IpAddr::V6(Ipv4Addr::new(198, 51, 100, 1).to_ipv6_mapped());
    let other = IpAddr::V6("2001:db8::1".parse().unwrap());
    db.update_last_ping_from(&n, v4, at(1)).unwrap();
    db.update_last_pong_from(&n, mapped, at(2)).unwrap();
    db.update_find_fails_at(&n, other, 3).unwrap();
    db.update_last_pong(&n, at(4)).unwrap();
    let check = |db: &NodeDb| {
        for ip in [v4, mapped] {
            assert_eq!(db.last_ping_from(&n, ip), Some(at(1)));
            assert_eq!(db.last_pong_from(&n, ip), Some(at(2)));
            assert_eq!(db.find_fails_at(&n, ip), 0);
        }
        assert_eq!(db.last_ping_from(&n, other), None);
        assert_eq!(db.find_fails_at(&n, other), 3);
        assert_eq!(db.last_ping(&n), None, "the per-id slot saw a per-IP ping");
        assert_eq!(db.last_pong(&n), Some(at(4)));
        assert_eq!(db.find_fails(&n), 0);
        assert_eq!(db.last_pong_from(&id(2), v4), None);
    };
    check(&db);
    db.close().unwrap();
    let db = open(dir.path());
    check(&db);
    db.compact().unwrap();
    check(&db);
    db.delete_node(&n).unwrap();
    assert_eq!(db.last_pong_from(&n, v4), None);
    assert_eq!(db.find_fails_at(&n, other), 0);
}

#[test]
fn a_pong_counts_for_seeds_only_without_ip_or_from_the_ip_the_record_names() {
    let db = NodeDb::in_memory(me());
    let now = SystemTime::now();
    let n = record_id(5);
    db.update_record(&signed_record(5, 1)).unwrap();
    let record_ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 5));
    let elsewhere = IpAddr::V4(Ipv4Addr::new(192, 0, 2, 99));
    db.update_last_pong_from(&n, elsewhere, now).unwrap();
    assert!(
        db.query_seeds(5, Duration::from_secs(60)).is_empty(),
        "a pong from an IP the record does not name made a seed"
    );
    db.update_last_pong_from(&n, record_ip, now).unwrap();
    assert_eq!(db.query_seeds(5, Duration::from_secs(60)).len(), 1);
    let seeds: Vec<Enr<CombinedKey>> = db.query_seed_records(5, Duration::from_secs(60));
    assert_eq!(seeds, [signed_record(5, 1)]);

    // The node moves: its old proof no longer counts.
    let moved = Enr::builder()
        .ip4(Ipv4Addr::new(192, 0, 2, 200))
        .udp4(30303)
        .seq(2)
        .build(&record_key(5))
        .unwrap();
    db.update_record(&moved).unwrap();
    assert!(db.query_seeds(5, Duration::from_secs(60)).is_empty());
    // A pong to no particular IP counts, as in the original API.
    db.update_last_pong(&n, now).unwrap();
    assert_eq!(db.query_seeds(5, Duration::from_secs(60)).len(), 1);
    // Never ourselves.
    assert!(NodeDb::in_memory(n)
        .query_seeds(5, Duration::from_secs(60))
        .is_empty());
}

#[test]
fn expiry_drops_stale_ip_slots_and_nodes_whose_newest_pong_is_stale() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        expiration: Duration::from_secs(3600),
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), VERSION, me(), opts.clone()).unwrap();
    let now = SystemTime::now();
    let old = now - Duration::from_secs(7200);
    let (fresh_ip, stale_ip) = (
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 1)),
        IpAddr::V4(Ipv4Addr::new(203, 0, 113, 2)),
    );
    // Node 1: fresh pong at one IP, stale at another: keeps the node, drops the stale slot.
    db.update_node(&node(1)).unwrap();
    db.update_last_pong_from(&id(1), fresh_ip, now).unwrap();
    db.update_last_pong_from(&id(1), stale_ip, old).unwrap();
    db.update_find_fails_at(&id(1), stale_ip, 2).unwrap();
    // Node 2: only stale pongs, per IP: dropped with every slot.
    db.update_node(&node(2)).unwrap();
    db.update_last_pong_from(&id(2), stale_ip, old).unwrap();
    // Node 3: a record written just now, no pong yet: stays.
    db.update_record(&signed_record(3, 1)).unwrap();
    assert_eq!(db.expire_nodes().unwrap(), 1);
    let check = |db: &NodeDb| {
        assert_eq!(db.last_pong_from(&id(1), fresh_ip), Some(now));
        assert_eq!(db.last_pong_from(&id(1), stale_ip), None);
        assert_eq!(db.find_fails_at(&id(1), stale_ip), 0);
        assert!(db.node(&id(1)).is_some());
        assert_eq!(db.node(&id(2)), None);
        assert_eq!(db.last_pong_from(&id(2), stale_ip), None);
        assert!(db.node(&record_id(3)).is_some());
    };
    check(&db);
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), VERSION, me(), opts).unwrap();
    check(&db);
}

#[test]
fn the_local_seq_starts_at_the_time_in_ms_and_never_goes_back() {
    let dir = tempfile::tempdir().unwrap();
    let before_ms = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    let db = open(dir.path());
    let first = db.local_seq();
    assert!(
        first >= before_ms,
        "a new database's local seq is the time in ms"
    );
    db.store_local_seq(first + 1).unwrap();
    assert_eq!(db.local_seq(), first + 1);
    // delete_node, expiry and compaction never touch it.
    db.delete_node(&id(1)).unwrap();
    db.expire_nodes().unwrap();
    db.compact().unwrap();
    assert_eq!(db.local_seq(), first + 1);
    db.close().unwrap();
    let db = open(dir.path());
    assert_eq!(db.local_seq(), first + 1, "a restart lost the local seq");
    db.compact().unwrap();
    db.close().unwrap();
    assert_eq!(open(dir.path()).local_seq(), first + 1);
    // A version change wipes the database; the seq starts again from the clock, above.
    let wiped = NodeDb::open(dir.path(), VERSION + 1, me()).unwrap();
    assert!(wiped.local_seq() > first + 1);
}

#[test]
fn a_record_survives_reopen_compaction_and_keeps_its_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let db = open(dir.path());
    for n in 0..50 {
        db.update_record(&signed_record(n, 1)).unwrap();
        db.update_record(&signed_record(n, 2 + n % 3)).unwrap();
        db.update_last_pong_from(
            &record_id(n),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, n as u8)),
            at(n),
        )
        .unwrap();
    }
    let check = |db: &NodeDb| {
        assert_eq!(db.len(), 50);
        for n in 0..50 {
            assert_eq!(
                db.record::<CombinedKey>(&record_id(n)),
                Some(signed_record(n, 2 + n % 3))
            );
        }
    };
    check(&db);
    let stats = db.compact().unwrap();
    assert_eq!(stats.records_written, 100);
    check(&db);
    db.close().unwrap();
    check(&open(dir.path()));
}
