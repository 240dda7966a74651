//! The bounded store (`Options::max_nodes`, at most `MAX_IPS_PER_ID` IP slots per id): the
//! eviction order rule by rule and tie-break by tie-break (each test fails if its rule is
//! removed), the bound under a flood from several threads, an eviction surviving reopen,
//! compaction and `kill -9`, and what `history` and `stats` say about evictions.
//!
//! Ties of write times cannot be made through the API (every write gets the clock of its
//! moment): the unit tests in `src/index/evict.rs` cover those tie-breaks.
//!
//! `PEERLOG_BOUNDED_FLOOD=N` sets the new ids each flood thread writes (default 1,500).

mod common;

use std::io::BufRead;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::process::ExitStatusExt;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{at, id};
use peerlog::inspect::{self, Change};
use peerlog::{Event, EventKind, Node, NodeDb, NodeId, Options, Subnet, MAX_IPS_PER_ID};

const VERSION: u64 = 3;

fn self_id() -> NodeId {
    NodeId([0xee; 64])
}

fn options(max_nodes: usize) -> Options {
    Options {
        max_nodes,
        ..Options::default()
    }
}

fn open(dir: &Path, max_nodes: usize) -> NodeDb {
    NodeDb::open_with(dir, VERSION, self_id(), options(max_nodes)).unwrap()
}

fn v4(a: u8, b: u8, c: u8, d: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(a, b, c, d))
}

/// `id(n)` with an unsigned record at `ip`.
fn node_at(n: u64, ip: IpAddr) -> Node {
    Node::new(id(n), ip, 30303, 30303)
}

/// A time decades past (`n` seconds into 2001).
fn past(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + n)
}

fn subnet(ip: &str) -> Option<Subnet> {
    Some(Subnet::of(ip.parse().unwrap(), 24, 48))
}

/// The evictions in the log, oldest first.
fn evictions(dir: &Path) -> Vec<(NodeId, Option<Subnet>)> {
    inspect::export(dir, &inspect::no_progress)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::Evicted { id, subnet } => Some((id, subnet)),
            _ => None,
        })
        .collect()
}

/// The IP slot evictions in the log, oldest first.
fn ip_evictions(dir: &Path) -> Vec<(NodeId, IpAddr)> {
    inspect::export(dir, &inspect::no_progress)
        .unwrap()
        .into_iter()
        .filter_map(|r| match r.event {
            Event::IpEvicted { id, ip } => Some((id, ip)),
            _ => None,
        })
        .collect()
}

fn held(db: &NodeDb, ns: &[u64]) -> Vec<u64> {
    ns.iter()
        .copied()
        .filter(|&n| db.peer(&id(n)).is_some())
        .collect()
}

// ---------------------------------------------------------------------------------------------
// The order.

/// Of the ids nothing proved, the one whose newest event is oldest goes: not the one written
/// first, since a later event made it newer.
#[test]
fn the_unproven_id_with_the_oldest_newest_event_goes() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 3);
    db.update_node(&node_at(1, v4(10, 0, 1, 1))).unwrap();
    db.update_last_ping(&id(2), at(2)).unwrap();
    db.update_find_fails(&id(3), 1).unwrap();
    // id 1 is touched again (a ping is no proof): id 2 is now the oldest.
    db.update_last_ping(&id(1), at(4)).unwrap();
    db.update_node(&node_at(4, v4(10, 0, 4, 1))).unwrap();
    assert_eq!(held(&db, &[1, 2, 3, 4]), [1, 3, 4]);
    assert_eq!(evictions(dir.path()), [(id(2), None)]);
    // Then id 3 (fails only), then id 1.
    db.update_last_ping(&id(5), at(5)).unwrap();
    db.update_last_ping(&id(6), at(6)).unwrap();
    assert_eq!(held(&db, &[1, 2, 3, 4, 5, 6]), [4, 5, 6]);
    assert_eq!(db.peers().len(), 3);
}

/// An id proven by a pong (to no IP, or from any IP, however old) stays while an unproven one
/// is left, even an unproven one written after it.
#[test]
fn unproven_ids_go_before_proven_ones() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 3);
    db.update_last_pong(&id(1), past(1)).unwrap();
    db.update_last_pong_from(&id(2), v4(10, 0, 2, 1), past(2))
        .unwrap();
    db.update_node(&node_at(3, v4(10, 0, 3, 1))).unwrap();
    db.update_last_ping_from(&id(3), v4(10, 0, 3, 1), at(3))
        .unwrap();
    db.update_node(&node_at(4, v4(10, 0, 4, 1))).unwrap();
    assert_eq!(held(&db, &[1, 2, 3, 4]), [1, 2, 4]);
    assert_eq!(evictions(dir.path()), [(id(3), subnet("10.0.3.0"))]);
}

/// When every id is proven: the subnet holding the most ids gives its node with the oldest
/// newest pong, though a node of a smaller subnet has an older pong.
#[test]
fn with_every_id_proven_the_fullest_subnet_gives_its_oldest_pong() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 4);
    // A lone honest node with the oldest pong of all.
    db.update_node(&node_at(1, v4(192, 0, 2, 1))).unwrap();
    db.update_last_pong(&id(1), past(1)).unwrap();
    // Three on one /24 (one of them IPv4-mapped: the same subnet).
    for (n, ip) in [
        (2, v4(203, 0, 113, 2)),
        (3, "::ffff:203.0.113.3".parse().unwrap()),
        (4, v4(203, 0, 113, 4)),
    ] {
        db.update_node(&node_at(n, ip)).unwrap();
    }
    db.update_last_pong(&id(2), at(20)).unwrap();
    db.update_last_pong(&id(3), at(10)).unwrap();
    db.update_last_pong(&id(4), at(30)).unwrap();
    db.update_node(&node_at(5, v4(198, 51, 100, 5))).unwrap();
    assert_eq!(evictions(dir.path()), [(id(3), subnet("203.0.113.0"))]);
    assert_eq!(held(&db, &[1, 2, 3, 4, 5]), [1, 2, 4, 5]);
}

/// A node's newest pong is the newest of its pong to no IP and its pongs from every IP.
#[test]
fn the_newest_pong_counts_pongs_from_every_ip() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 3);
    for n in 1..=3 {
        db.update_node(&node_at(n, v4(203, 0, 113, n as u8)))
            .unwrap();
    }
    // id 1: an old pong, and a new one from an IP; id 2: a pong between; id 3: a new one.
    db.update_last_pong(&id(1), at(1)).unwrap();
    db.update_last_pong_from(&id(1), v4(203, 0, 113, 1), at(50))
        .unwrap();
    db.update_last_pong(&id(2), at(10)).unwrap();
    db.update_last_pong_from(&id(2), v4(203, 0, 113, 9), at(5))
        .unwrap();
    db.update_last_pong(&id(3), at(40)).unwrap();
    db.update_last_pong(&id(4), at(60)).unwrap();
    assert_eq!(evictions(dir.path()), [(id(2), subnet("203.0.113.0"))]);
}

/// Subnets of equal size: the lowest subnet gives its node.
#[test]
fn subnets_of_equal_size_the_lowest_gives() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 4);
    // 10.0.1.0/24 written first and with the older pongs; 10.0.0.0/24 is lower.
    db.update_node(&node_at(1, v4(10, 0, 1, 1))).unwrap();
    db.update_node(&node_at(2, v4(10, 0, 1, 2))).unwrap();
    db.update_node(&node_at(3, v4(10, 0, 0, 3))).unwrap();
    db.update_node(&node_at(4, v4(10, 0, 0, 4))).unwrap();
    for (n, t) in [(1, 1), (2, 2), (3, 20), (4, 10)] {
        db.update_last_pong(&id(n), at(t)).unwrap();
    }
    db.update_last_pong(&id(5), at(100)).unwrap();
    assert_eq!(evictions(dir.path()), [(id(4), subnet("10.0.0.0"))]);
}

/// IPv6 subnets are /48s, and an IPv4 subnet is lower than an IPv6 one (IPv4 in its mapped
/// form): with a /48 of two nodes and a /24 of two, the /24 gives.
#[test]
fn ipv6_subnets_are_48s_and_order_after_ipv4() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 5);
    let ips: [(u64, IpAddr); 5] = [
        (1, "2001:db8:1:1::1".parse().unwrap()),
        (2, "2001:db8:1:2::2".parse().unwrap()),
        (3, "2001:db8:2::3".parse().unwrap()),
        (4, v4(203, 0, 113, 4)),
        (5, v4(203, 0, 113, 5)),
    ];
    for (n, ip) in ips {
        db.update_node(&node_at(n, ip)).unwrap();
        db.update_last_pong(&id(n), at(n)).unwrap();
    }
    db.update_last_pong(&id(6), at(100)).unwrap();
    assert_eq!(evictions(dir.path()), [(id(4), subnet("203.0.113.0"))]);
    // Now the /48 of two is the fullest (the /24 holds one): its older pong goes.
    db.update_last_pong(&id(7), at(100)).unwrap();
    assert_eq!(
        evictions(dir.path())[1],
        (id(1), subnet("2001:db8:1::")),
        "2001:db8:1:1::/64 and 2001:db8:1:2::/64 are one /48"
    );
}

/// Ids without an endpoint are one group, below every subnet: with as many of them as the
/// fullest subnet holds, one of them goes.
#[test]
fn ids_without_endpoint_are_a_group_below_every_subnet() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 4);
    db.update_node(&node_at(1, v4(0, 0, 0, 1))).unwrap();
    db.update_node(&node_at(2, v4(0, 0, 0, 2))).unwrap();
    for n in 1..=4 {
        db.update_last_pong(&id(n), at(10 - n)).unwrap();
    }
    db.update_last_pong(&id(5), at(100)).unwrap();
    // 0.0.0.0/24 is the lowest subnet there is, yet the group without endpoint is lower.
    assert_eq!(evictions(dir.path()), [(id(4), None)]);
    // Ids 3 and 5 against ids 1 and 2: the group without endpoint again.
    db.update_last_pong(&id(6), at(100)).unwrap();
    assert_eq!(evictions(dir.path())[1], (id(3), None));
}

/// Proven nodes of one subnet with the same newest pong: the lowest id goes.
#[test]
fn equal_pongs_the_lowest_id_goes() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 3);
    for n in [3, 1, 2] {
        db.update_node(&node_at(n, v4(203, 0, 113, n as u8)))
            .unwrap();
        db.update_last_pong(&id(n), at(7)).unwrap();
    }
    db.update_last_pong(&id(9), at(100)).unwrap();
    assert_eq!(evictions(dir.path()), [(id(1), subnet("203.0.113.0"))]);
    db.update_last_pong(&id(10), at(100)).unwrap();
    assert_eq!(evictions(dir.path())[1], (id(2), subnet("203.0.113.0")));
}

/// Writes about an id already held never evict, whatever they are; a store at its bound holds
/// exactly `max_nodes` ids, and a write that would pass it evicts exactly one.
#[test]
fn writes_about_held_ids_never_evict() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 2);
    db.update_node(&node_at(1, v4(10, 0, 0, 1))).unwrap();
    db.update_last_ping(&id(2), at(1)).unwrap();
    db.update_node(&node_at(2, v4(10, 0, 0, 2))).unwrap();
    db.update_last_pong(&id(1), at(2)).unwrap();
    db.update_find_fails(&id(2), 3).unwrap();
    db.update_last_ping_from(&id(1), v4(10, 0, 9, 1), at(3))
        .unwrap();
    db.update_last_pong_from(&id(2), v4(10, 0, 9, 2), at(3))
        .unwrap();
    db.update_find_fails_at(&id(2), v4(10, 0, 9, 3), 1).unwrap();
    db.store_local_seq(7).unwrap();
    db.delete_node(&id(99)).unwrap();
    assert!(evictions(dir.path()).is_empty());
    assert_eq!(db.peers().len(), 2);
    db.update_last_ping(&id(3), at(4)).unwrap();
    assert_eq!(evictions(dir.path()).len(), 1);
    assert_eq!(db.peers().len(), 2);
    // Below the bound (after a delete), a new id evicts nothing.
    db.delete_node(&id(3)).unwrap();
    db.update_last_ping(&id(4), at(5)).unwrap();
    assert_eq!(evictions(dir.path()).len(), 1);
    assert_eq!(db.peers().len(), 2);
}

/// A bound of 1: every new id evicts the one held.
#[test]
fn a_bound_of_one_keeps_the_newest_id() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 1);
    for n in 1..=5 {
        db.update_last_pong(&id(n), at(n)).unwrap();
        assert_eq!(held(&db, &[1, 2, 3, 4, 5]), [n]);
    }
    assert_eq!(evictions(dir.path()).len(), 4);
}

// ---------------------------------------------------------------------------------------------
// IP slots.

/// The 17th IP of an id evicts its stalest slot: the oldest pong, else ping, else the id's
/// newest event; a write to an IP the id has a slot for evicts nothing.
#[test]
fn the_17th_ip_evicts_the_stalest_slot() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 10);
    let peer = id(1);
    let ip = |k: u8| v4(10, 1, 0, k);
    // Slots 0..8 have pongs (slot 5's the oldest, decades past, though its ping is newer than
    // any), 8..12 pings only, 12..16 fails only (as old as the id's newest event: now).
    for k in 0..8u8 {
        let t = if k == 5 {
            past(1)
        } else {
            at(10 + u64::from(k))
        };
        db.update_last_pong_from(&peer, ip(k), t).unwrap();
        db.update_last_ping_from(&peer, ip(k), at(200)).unwrap();
    }
    for k in 8..12u8 {
        db.update_last_ping_from(&peer, ip(k), at(100 + u64::from(k)))
            .unwrap();
    }
    for k in 12..16u8 {
        db.update_find_fails_at(&peer, ip(k), 1).unwrap();
    }
    assert_eq!(db.peer(&peer).unwrap().ips.len(), MAX_IPS_PER_ID);
    // Writes to IPs it holds (also through the IPv4-mapped form) evict nothing.
    db.update_last_ping_from(&peer, ip(3), at(300)).unwrap();
    db.update_find_fails_at(
        &peer,
        IpAddr::V6(Ipv4Addr::new(10, 1, 0, 14).to_ipv6_mapped()),
        2,
    )
    .unwrap();
    assert!(ip_evictions(dir.path()).is_empty());

    db.update_last_ping_from(&peer, ip(16), at(300)).unwrap();
    assert_eq!(ip_evictions(dir.path()), [(peer, ip(5))]);
    let ips = db.peer(&peer).unwrap().ips;
    assert_eq!(ips.len(), MAX_IPS_PER_ID);
    assert!(!ips.iter().any(|s| s.ip == ip(5)) && ips.iter().any(|s| s.ip == ip(16)));
    assert_eq!(db.peers().len(), 1, "an IP slot eviction is not an id's");
}

/// Slots without a pong are judged by their ping: an old ping goes ahead of every pong, and a
/// pong older than every ping goes ahead of them.
#[test]
fn a_slot_without_pong_is_judged_by_its_ping() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 10);
    let peer = id(1);
    let ip = |k: u8| v4(10, 1, 0, k);
    for k in 0..16u8 {
        if k % 2 == 0 {
            db.update_last_pong_from(&peer, ip(k), at(50 + u64::from(k)))
                .unwrap();
        } else {
            let t = if k == 15 { 1 } else { 100 - u64::from(k) };
            db.update_last_ping_from(&peer, ip(k), at(t)).unwrap();
        }
    }
    db.update_last_pong_from(&peer, ip(16), at(300)).unwrap();
    assert_eq!(ip_evictions(dir.path()), [(peer, ip(15))]);
    db.update_last_pong_from(&peer, ip(17), at(300)).unwrap();
    assert_eq!(ip_evictions(dir.path())[1], (peer, ip(0)));
}

/// A slot with neither ping nor pong is judged by the id's newest event (written now): newer
/// than a past pong, older than a future one.
#[test]
fn a_slot_with_neither_is_judged_by_the_newest_event() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 10);
    let peer = id(1);
    let ip = |k: u8| v4(10, 1, 0, k);
    db.update_last_pong_from(&peer, ip(0), past(1)).unwrap();
    db.update_find_fails_at(&peer, ip(1), 1).unwrap();
    for k in 2..16u8 {
        db.update_last_pong_from(&peer, ip(k), at(u64::from(k)))
            .unwrap();
    }
    db.update_last_pong_from(&peer, ip(16), at(300)).unwrap();
    assert_eq!(
        ip_evictions(dir.path()),
        [(peer, ip(0))],
        "a past pong goes first"
    );
    db.update_last_pong_from(&peer, ip(17), at(300)).unwrap();
    assert_eq!(
        ip_evictions(dir.path())[1],
        (peer, ip(1)),
        "a fails-only slot is as old as the newest event, before the future pongs"
    );
}

/// Slots equally stale: the lowest IP in its 16-byte IPv4-mapped form goes, so an IPv6
/// address below `::ffff:0:0` goes before every IPv4 address, and one above after.
#[test]
fn equally_stale_slots_the_lowest_ip_goes() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 10);
    let peer = id(1);
    let mut ips: Vec<IpAddr> = (0..14u8).map(|k| v4(10, 1, 0, 200 - k)).collect();
    ips.push("2001:db8::1".parse().unwrap());
    ips.push("::5".parse().unwrap());
    for ip in &ips {
        db.update_last_pong_from(&peer, *ip, at(7)).unwrap();
    }
    db.update_last_pong_from(&peer, v4(10, 9, 9, 9), at(300))
        .unwrap();
    db.update_last_pong_from(&peer, v4(10, 9, 9, 8), at(300))
        .unwrap();
    assert_eq!(
        ip_evictions(dir.path()),
        [(peer, "::5".parse().unwrap()), (peer, v4(10, 1, 0, 187)),]
    );
}

// ---------------------------------------------------------------------------------------------
// Under a flood, and across reopen, compaction and kill -9.

fn flood_per_thread() -> u64 {
    std::env::var("PEERLOG_BOUNDED_FLOOD")
        .ok()
        .map(|v| v.parse().expect("PEERLOG_BOUNDED_FLOOD is a number"))
        .unwrap_or(1_500)
}

/// Honest nodes: one per /24 of 172.16.n.0, proven by a pong.
fn write_honest(db: &NodeDb, honest: u64) {
    for n in 0..honest {
        let ip = v4(172, 16, n as u8, 1);
        db.update_node(&node_at(n, ip)).unwrap();
        db.update_last_pong(&id(n), at(n)).unwrap();
    }
}

/// Flood id `k` of thread `t`: on one of the thread's two /24s.
fn flood_node(t: u64, k: u64) -> Node {
    let n = 1_000_000 * (t + 1) + k;
    node_at(
        n,
        v4(100, 64, 2 * t as u8 + (k % 2) as u8, (k % 250) as u8 + 1),
    )
}

/// Several threads write new ids at once (unproven ones, and ids that answer pings on a few
/// /24s), while another watches: the store never holds more than `max_nodes` ids, and no
/// honest proven node of a small subnet is ever evicted.
#[test]
fn a_flood_from_several_threads_never_passes_the_bound() {
    const MAX: usize = 200;
    const HONEST: u64 = 100;
    const THREADS: u64 = 4;
    let dir = common::scratch_dir();
    let db = Arc::new(open(dir.path(), MAX));
    write_honest(&db, HONEST);
    let done = Arc::new(AtomicBool::new(false));
    let most = Arc::new(AtomicUsize::new(0));
    let watcher = {
        let (db, done, most) = (Arc::clone(&db), Arc::clone(&done), Arc::clone(&most));
        std::thread::spawn(move || {
            while !done.load(Ordering::Acquire) {
                most.fetch_max(db.peers().len(), Ordering::AcqRel);
                std::thread::yield_now();
            }
        })
    };
    let per_thread = flood_per_thread();
    let writers: Vec<_> = (0..THREADS)
        .map(|t| {
            let db = Arc::clone(&db);
            std::thread::spawn(move || {
                for k in 0..per_thread {
                    let node = flood_node(t, k);
                    db.update_node(&node).unwrap();
                    // Half the threads flood with ids that answer pings.
                    if t % 2 == 1 {
                        db.update_last_pong(&node.id, at(1_000 + k)).unwrap();
                    }
                }
            })
        })
        .collect();
    for w in writers {
        w.join().unwrap();
    }
    done.store(true, Ordering::Release);
    watcher.join().unwrap();
    assert!(most.load(Ordering::Acquire) <= MAX, "the bound was passed");
    assert_eq!(db.peers().len(), MAX);
    assert_eq!(
        held(&db, &(0..HONEST).collect::<Vec<_>>()).len(),
        HONEST as usize,
        "an honest node of a small subnet was evicted"
    );
    // At least one eviction per new id past the bound (a pong about a flood id another
    // thread evicted in between makes one more), every one of a flood id.
    let evicted = evictions(dir.path());
    assert!(evicted.len() as u64 >= HONEST + THREADS * per_thread - MAX as u64);
    for (id, subnet) in &evicted {
        assert!(u64::from_be_bytes(id.0[..8].try_into().unwrap()) >= 1_000_000);
        let in_flood =
            |s: &Subnet| matches!(s.network(), IpAddr::V4(ip) if ip.octets()[..2] == [100, 64]);
        assert!(subnet.as_ref().is_none_or(in_flood), "{subnet:?}");
    }
}

/// Evictions are in the log: a reopened store holds what the open one held, and goes on
/// evicting by the same rule.
#[test]
fn an_eviction_survives_reopen() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 5);
    write_honest(&db, 3);
    for k in 0..20 {
        db.update_node(&flood_node(0, k)).unwrap();
    }
    let before: Vec<_> = db.peers().into_iter().map(|p| p.id).collect();
    assert_eq!(before.len(), 5);
    db.close().unwrap();
    let db = open(dir.path(), 5);
    let mut after: Vec<_> = db.peers().into_iter().map(|p| p.id).collect();
    let mut before = before;
    before.sort();
    after.sort();
    assert_eq!(after, before);
    assert_eq!(held(&db, &[0, 1, 2]), [0, 1, 2]);
    // The oldest flood id left goes next (written 18th of 20; 19th is newer).
    db.update_node(&flood_node(0, 20)).unwrap();
    assert!(db.peer(&flood_node(0, 18).id).is_none());
    assert!(db.peer(&flood_node(0, 19).id).is_some());
    assert_eq!(db.peers().len(), 5);
    // A smaller bound at reopen: the store is over it until the next new id, which evicts
    // down to the bound.
    db.close().unwrap();
    let db = open(dir.path(), 3);
    assert_eq!(db.peers().len(), 5);
    db.update_node(&flood_node(0, 21)).unwrap();
    assert_eq!(db.peers().len(), 3);
    assert_eq!(
        held(&db, &[0, 1, 2]),
        [1, 2],
        "then the proven ones: subnets of one id each, the lowest first"
    );
}

/// Compaction drops the evicted ids and the eviction records: the log shrinks to the ids
/// held, and a reopen holds them.
#[test]
fn compaction_drops_the_evicted() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 20);
    write_honest(&db, 10);
    for k in 0..500 {
        db.update_node(&flood_node(0, k)).unwrap();
    }
    let stats = || {
        inspect::stats(
            dir.path(),
            &self_id(),
            Duration::from_secs(3600),
            &inspect::no_progress,
        )
        .unwrap()
    };
    let before = stats();
    assert_eq!(before.events_by_kind[&EventKind::Evict], 490);
    assert_eq!(before.ids, 20);
    let held_before: Vec<_> = db.peers().into_iter().map(|p| p.id).collect();
    db.compact().unwrap();
    let after = stats();
    assert_eq!(after.events_by_kind[&EventKind::Evict], 0);
    assert_eq!(after.ids, 20);
    assert!(
        after.record_bytes * 10 < before.record_bytes,
        "the log did not shrink: {} -> {} bytes",
        before.record_bytes,
        after.record_bytes
    );
    assert_eq!(after.dead_bytes, 0);
    db.close().unwrap();
    let db = open(dir.path(), 20);
    let mut held_after: Vec<_> = db.peers().into_iter().map(|p| p.id).collect();
    let mut held_before = held_before;
    held_before.sort();
    held_after.sort();
    assert_eq!(held_after, held_before);
    for k in 0..490 {
        assert!(db.peer(&flood_node(0, k).id).is_none());
    }
}

/// `history` of an evicted id says it was evicted and names its subnet; `stats` counts the
/// evictions of ids and of IP slots by kind, and `verify` finds their records intact and
/// counts them.
#[test]
fn history_and_stats_show_evictions() {
    let dir = common::scratch_dir();
    let db = open(dir.path(), 2);
    db.update_node(&node_at(1, v4(203, 0, 113, 7))).unwrap();
    db.update_last_ping(&id(2), at(1)).unwrap();
    db.update_last_ping(&id(3), at(2)).unwrap();
    db.update_last_ping(&id(4), at(3)).unwrap();
    for k in 0..=MAX_IPS_PER_ID as u8 {
        db.update_last_ping_from(&id(4), v4(10, 2, 0, k), at(10 + u64::from(k)))
            .unwrap();
    }
    db.close().unwrap();

    let history = inspect::history(dir.path(), &id(1), &inspect::no_progress).unwrap();
    let last = &history.last().unwrap().change;
    assert_eq!(*last, Change::Evicted(subnet("203.0.113.0")));
    let history = inspect::history(dir.path(), &id(2), &inspect::no_progress).unwrap();
    assert_eq!(history.last().unwrap().change, Change::Evicted(None));
    let history = inspect::history(dir.path(), &id(4), &inspect::no_progress).unwrap();
    assert!(history
        .iter()
        .any(|e| e.change == Change::IpEvicted(v4(10, 2, 0, 0))));

    let stats = inspect::stats(
        dir.path(),
        &self_id(),
        Duration::from_secs(3600),
        &inspect::no_progress,
    )
    .unwrap();
    assert_eq!(stats.events_by_kind[&EventKind::Evict], 2);
    assert_eq!(stats.events_by_kind[&EventKind::IpEvict], 1);
    assert_eq!(stats.ids, 2);
    let report = inspect::verify(dir.path(), &inspect::no_progress).unwrap();
    assert!(report.is_intact(true));
    // 1 record, 3 + 17 pings, 2 + 1 evictions.
    assert_eq!(report.records, 24);
    assert_eq!((report.evicted, report.ips_evicted), (2, 1));
}

// ---------------------------------------------------------------------------------------------
// kill -9.

/// Plays the flooding child when `PEERLOG_BOUNDED_CHILD` names a directory: proven honest
/// nodes, then new ids until killed.
#[test]
fn bounded_child() {
    let Ok(dir) = std::env::var("PEERLOG_BOUNDED_CHILD") else {
        return;
    };
    let db = open(Path::new(&dir), KILL_MAX);
    if db.peers().is_empty() {
        write_honest(&db, KILL_HONEST);
    }
    let start: u64 = std::env::var("PEERLOG_BOUNDED_START")
        .unwrap()
        .parse()
        .unwrap();
    println!("\nREADY");
    for k in start.. {
        db.update_node(&flood_node(0, k)).unwrap();
        if k == start + 64 {
            println!("FULL");
        }
    }
}

const KILL_MAX: usize = 50;
const KILL_HONEST: u64 = 20;

/// A child floods a full store and is killed with SIGKILL mid-write, several times over the
/// same directory: after each recovery the bound holds, every honest node is there, and the
/// flood ids held are the newest ones written (the oldest went first).
#[test]
fn the_bound_holds_across_kill_9() {
    let dir = common::scratch_dir();
    for round in 0..4u64 {
        let mut child = Command::new(std::env::current_exe().unwrap())
            .args([
                "--exact",
                "bounded_child",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("PEERLOG_BOUNDED_CHILD", dir.path())
            .env("PEERLOG_BOUNDED_START", (round * 1_000_000).to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let mut out = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        while !line.contains("FULL") {
            line.clear();
            assert!(
                out.read_line(&mut line).unwrap() > 0,
                "the child ended early"
            );
        }
        std::thread::sleep(Duration::from_millis(5 + 10 * round));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        assert_eq!(status.signal(), Some(9));

        let db = open(dir.path(), KILL_MAX);
        let peers = db.peers();
        assert!(
            peers.len() <= KILL_MAX,
            "round {round}: {} ids",
            peers.len()
        );
        let honest: Vec<u64> = (0..KILL_HONEST).collect();
        assert_eq!(held(&db, &honest), honest, "round {round}");
        // The flood ids held are a run of the newest written this round: every id written
        // after the oldest one held is held too (the prefix property with the rule).
        let flood: Vec<u64> = peers
            .iter()
            .map(|p| u64::from_be_bytes(p.id.0[..8].try_into().unwrap()))
            .filter(|&n| n >= 1_000_000)
            .map(|n| n - 1_000_000)
            .collect();
        if let (Some(&lo), Some(&hi)) = (flood.iter().min(), flood.iter().max()) {
            assert_eq!(flood.len() as u64, hi - lo + 1, "round {round}: {flood:?}");
            assert!(
                lo >= round * 1_000_000,
                "round {round}: an older round's id stayed"
            );
        }
        // Full, but for an eviction whose new id was in flight at the kill.
        assert!(
            peers.len() >= KILL_MAX - 1,
            "round {round}: {} ids",
            peers.len()
        );
        db.close().unwrap();
    }
}
