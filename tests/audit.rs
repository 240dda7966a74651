//! The poisoning audit (`peerlog::inspect::audit`): a planted Sybil subnet and a planted
//! cluster of ids ground close to the node are flagged, a random population of the same size
//! is not; the seed shares it computes are what `seeds()` and `query_seeds` give; ENR keys,
//! evictions and new ids are counted from the log.

use std::net::IpAddr;
use std::path::Path;
use std::time::{Duration, SystemTime};

use peerlog::inspect::{self, no_progress, Audit, AuditOptions, FindingKind};
use peerlog::{log_distance, Node, NodeDb, NodeId, Options, Subnet};

const VERSION: u64 = 5;

/// A deterministic id from `n` (splitmix64 output: as good as random here).
fn random_id(n: u64) -> NodeId {
    let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
    let mut id = [0u8; 64];
    for chunk in id.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    NodeId(id)
}

fn self_id() -> NodeId {
    random_id(u64::MAX)
}

/// `count` ids whose hash is within log distance `within` of the node's: ground as an
/// attacker grinds keys.
fn ground_ids(count: usize, within: u32) -> Vec<NodeId> {
    let target = self_id().hash();
    (1_000_000..)
        .map(random_id)
        .filter(|id| log_distance(&target, &id.hash()) <= within)
        .take(count)
        .collect()
}

/// A /24 of its own for honest node `i` (up to 62 500 of them).
fn honest_ip(i: usize) -> IpAddr {
    format!("{}.{}.{}.9", 20 + i / 250, i % 250, (i * 7) % 250)
        .parse()
        .unwrap()
}

/// Writes `nodes`, each with a pong now.
fn write(db: &NodeDb, nodes: &[(NodeId, IpAddr)]) {
    let now = SystemTime::now();
    for &(id, ip) in nodes {
        db.update_node(&Node::new(id, ip, 30303, 30303)).unwrap();
        db.update_last_pong(&id, now).unwrap();
    }
}

/// 300 nodes: `300 - planted.len()` honest ones, each on a /24 of its own, and `planted`.
fn population(planted: &[(NodeId, IpAddr)]) -> Vec<(NodeId, IpAddr)> {
    let honest = 300 - planted.len();
    (0..honest)
        .map(|i| (random_id(i as u64), honest_ip(i)))
        .chain(planted.iter().copied())
        .collect()
}

fn sybils() -> Vec<(NodeId, IpAddr)> {
    (0..50)
        .map(|k| {
            let ip = format!("203.0.113.{}", k + 1).parse().unwrap();
            (random_id(500_000 + k), ip)
        })
        .collect()
}

fn close_cluster() -> Vec<(NodeId, IpAddr)> {
    ground_ids(10, 246)
        .into_iter()
        .enumerate()
        .map(|(k, id)| (id, format!("100.64.{k}.1").parse().unwrap()))
        .collect()
}

fn audit_of(dir: &Path, nodes: &[(NodeId, IpAddr)]) -> Audit {
    let db = NodeDb::open(dir, VERSION, self_id()).unwrap();
    write(&db, nodes);
    db.close().unwrap();
    let opts = AuditOptions {
        self_id: Some(self_id()),
        ..AuditOptions::default()
    };
    inspect::audit(dir, &opts, &no_progress).unwrap()
}

fn kinds(audit: &Audit) -> Vec<FindingKind> {
    audit.findings.iter().map(|f| f.kind).collect()
}

#[test]
fn a_random_population_is_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let audit = audit_of(dir.path(), &population(&[]));
    assert_eq!(audit.findings, vec![], "{:#?}", audit.findings);
    assert_eq!((audit.ids, audit.nodes, audit.fresh), (300, 300, 300));
    assert_eq!((audit.subnets, audit.fresh_subnets), (300, 300));
    let d = audit.distances.as_ref().unwrap();
    assert_eq!(d.ids, 300);
    assert_eq!(d.counts.iter().sum::<usize>(), 300);
    // Half of random ids are at distance 256, a quarter at 255.
    assert!((120..=180).contains(&d.counts[256]), "{}", d.counts[256]);
    assert!((d.expected[256] - 150.0).abs() < 1e-9);
    assert!((d.expected[255] - 75.0).abs() < 1e-9);
    // Every id is new (written just now), one per subnet.
    assert_eq!(audit.new_ids.len(), 2);
    assert!(audit.new_ids.iter().all(|w| w.ids == 300));
    assert_eq!(audit.new_ids[0].by_subnet[0].1, 1);
    assert_eq!(audit.first_seen_unknown, 0);
    // With every subnet holding one node, seeds() gives each 30 / 300 of a pick.
    let top = &audit.top_by_fresh[0];
    assert!((top.uniform_share - 1.0 / 300.0).abs() < 1e-9);
    assert!((top.spread_share - 1.0 / 300.0).abs() < 1e-9);
}

#[test]
fn a_sybil_subnet_is_flagged_with_the_seeds_each_query_would_give_it() {
    let dir = tempfile::tempdir().unwrap();
    let nodes = population(&sybils());
    let audit = audit_of(dir.path(), &nodes);
    let sybil: Subnet = Subnet::of("203.0.113.1".parse().unwrap(), 24, 48);
    let flagged = kinds(&audit);
    for kind in [
        FindingKind::SubnetFresh,
        FindingKind::SubnetNodes,
        FindingKind::SubnetNewIds,
    ] {
        assert!(flagged.contains(&kind), "{kind:?} in {flagged:?}");
    }
    assert!(!flagged.contains(&FindingKind::CloseIds));
    assert!(!flagged.contains(&FindingKind::CloseIdsWithin));
    assert!(audit.findings.iter().all(|f| f.subnet == Some(sybil)));
    let fresh = audit
        .findings
        .iter()
        .find(|f| f.kind == FindingKind::SubnetFresh)
        .unwrap();
    assert!(
        fresh
            .text
            .starts_with("203.0.113.0/24 holds 17 % of fresh nodes"),
        "{}",
        fresh.text
    );

    let top = &audit.top_by_fresh[0];
    assert_eq!((top.subnet, top.nodes, top.fresh), (sybil, 50, 50));
    assert!((top.uniform_share - 50.0 / 300.0).abs() < 1e-9);

    // The shares computed are what the queries give: 4000 queries on the same nodes.
    let db = NodeDb::in_memory(self_id());
    write(&db, &nodes);
    let (mut spread, mut uniform, mut picks) = (0usize, 0usize, 0usize);
    for _ in 0..4000 {
        let seeds = db.seeds().nodes(30);
        picks += seeds.len();
        spread += seeds.iter().filter(|n| sybil.contains(n.ip)).count();
        let seeds = db.query_seeds(30, Duration::from_secs(3600));
        uniform += seeds.iter().filter(|n| sybil.contains(n.ip)).count();
    }
    assert_eq!(picks, 4000 * 30);
    let spread = spread as f64 / picks as f64;
    let uniform = uniform as f64 / picks as f64;
    assert!(
        (spread - top.spread_share).abs() < 0.003,
        "seeds() gave {spread}, computed {}",
        top.spread_share
    );
    assert!(
        (uniform - top.uniform_share).abs() < 0.01,
        "query_seeds gave {uniform}, computed {}",
        top.uniform_share
    );
    // The spread rule gives the Sybil subnet about its share of subnets, not of nodes.
    assert!(top.spread_share < 0.01, "{}", top.spread_share);
}

#[test]
fn a_cluster_of_ids_ground_close_to_the_node_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let audit = audit_of(dir.path(), &population(&close_cluster()));
    let flagged = kinds(&audit);
    assert!(
        flagged.contains(&FindingKind::CloseIdsWithin),
        "{:#?}",
        audit.findings
    );
    assert!(flagged
        .iter()
        .all(|k| matches!(k, FindingKind::CloseIds | FindingKind::CloseIdsWithin)));
    let d = audit.distances.as_ref().unwrap();
    let (within, count, expected) = d.flagged_within.unwrap();
    assert!(within <= 246 && count >= 10, "{within} {count}");
    assert!(count as f64 >= 10.0 * expected);

    // Without a self id the distances are skipped, and nothing is flagged.
    let opts = AuditOptions::default();
    let audit = inspect::audit(dir.path(), &opts, &no_progress).unwrap();
    assert!(audit.distances.is_none());
    assert_eq!(audit.findings, vec![]);
}

#[test]
fn keys_of_signed_records_are_counted() {
    use peerlog::enr::{CombinedKey, Enr};
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open(dir.path(), VERSION, self_id()).unwrap();
    for i in 0..6u8 {
        let key = CombinedKey::secp256k1_from_bytes(&mut [i + 1; 32]).unwrap();
        let mut builder = Enr::builder();
        builder.ip4([198, 51, 100, i].into()).udp4(30303);
        if i < 4 {
            builder.add_value("eth", &vec![0xc0u8]);
        }
        if i < 2 {
            builder.add_value("opstack", &vec![1u8]);
        }
        assert!(db.update_record(&builder.build(&key).unwrap()).unwrap());
    }
    db.update_node(&Node::new(
        random_id(1),
        "198.51.100.77".parse().unwrap(),
        1,
        1,
    ))
    .unwrap();
    db.close().unwrap();
    let audit = inspect::audit(dir.path(), &AuditOptions::default(), &no_progress).unwrap();
    assert_eq!(audit.signed_records, 6);
    let keys: Vec<(String, usize)> = audit
        .keys
        .iter()
        .map(|(k, n)| (String::from_utf8_lossy(k).into_owned(), *n))
        .collect();
    let expect = |k: &str, n: usize| (k.to_string(), n);
    assert_eq!(
        keys,
        vec![
            expect("id", 6),
            expect("ip", 6),
            expect("secp256k1", 6),
            expect("udp", 6),
            expect("eth", 4),
            expect("opstack", 2),
        ]
    );
    // No pong: nothing is fresh.
    assert_eq!((audit.nodes, audit.fresh), (7, 0));
}

#[test]
fn evictions_are_counted_by_subnet_and_a_full_store_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        max_nodes: 40,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), opts).unwrap();
    // 20 honest nodes that answered, then a flood of 100 ids on one /24 that never did.
    write(&db, &population(&[])[..20]);
    for k in 0..100u64 {
        let ip = format!("203.0.113.{}", k + 1).parse().unwrap();
        db.update_node(&Node::new(random_id(700_000 + k), ip, 30303, 30303))
            .unwrap();
    }
    db.close().unwrap();
    let opts = AuditOptions {
        max_nodes: 40,
        ..AuditOptions::default()
    };
    let audit = inspect::audit(dir.path(), &opts, &no_progress).unwrap();
    assert_eq!(audit.ids, 40);
    assert_eq!(audit.evictions, 80);
    let flood = Subnet::of("203.0.113.1".parse().unwrap(), 24, 48);
    assert_eq!(audit.evictions_by_subnet, vec![(Some(flood), 80)]);
    let flagged = kinds(&audit);
    assert!(flagged.contains(&FindingKind::StoreFull), "{flagged:?}");
    assert!(
        flagged.contains(&FindingKind::SubnetEvictions),
        "{flagged:?}"
    );
    // The honest nodes are all kept, and fresh.
    assert_eq!(audit.fresh, 20);
}

#[test]
fn new_ids_follow_first_write_times_and_the_archive_keeps_them_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        keep_history: true,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir.path(), VERSION, self_id(), opts).unwrap();
    write(&db, &population(&[])[..30]);
    db.compact().unwrap();
    write(&db, &population(&[])[30..40]);
    db.close().unwrap();

    let live = inspect::audit(dir.path(), &AuditOptions::default(), &no_progress).unwrap();
    assert_eq!(live.ids, 40);
    // The compaction restated the first 30: their first write times are not in the live log.
    assert_eq!(live.first_seen_unknown, 30);
    assert_eq!(live.new_ids[0].ids, 10);

    let opts = AuditOptions {
        with_archive: true,
        ..AuditOptions::default()
    };
    let full = inspect::audit(dir.path(), &opts, &no_progress).unwrap();
    assert_eq!(full.ids, 40);
    assert_eq!(full.first_seen_unknown, 0);
    assert_eq!(full.new_ids[0].ids, 40);

    // Two days on, none is new within the day, and none is fresh after six.
    let later = AuditOptions {
        now: SystemTime::now() + Duration::from_secs(2 * 86400),
        ..opts.clone()
    };
    let audit = inspect::audit(dir.path(), &later, &no_progress).unwrap();
    assert!(audit.new_ids.iter().all(|w| w.ids == 0));
    assert_eq!(audit.fresh, 40);
    let later = AuditOptions {
        now: SystemTime::now() + Duration::from_secs(6 * 86400),
        ..opts
    };
    assert_eq!(
        inspect::audit(dir.path(), &later, &no_progress)
            .unwrap()
            .fresh,
        0
    );
}
