//! The seed query: its sampling rule (chi-square tests over subnets and within a subnet),
//! prefixes for IPv4, IPv6 and IPv4-mapped addresses, eligibility, the network filters, and
//! the subnet groups kept right as the index changes.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::{Node, NodeDb, NodeId, Subnet};

fn me() -> NodeId {
    NodeId([0xf0; 64])
}

fn id(n: u32) -> NodeId {
    let mut bytes = [0x11; 64];
    bytes[..4].copy_from_slice(&n.to_be_bytes());
    NodeId(bytes)
}

fn ip(text: &str) -> IpAddr {
    text.parse().unwrap()
}

/// A node `n` at `ip` with a fresh pong.
fn fresh(db: &NodeDb, n: u32, at: &str) -> Node {
    let node = Node::new(id(n), ip(at), 30303, 30303);
    db.update_node(&node).unwrap();
    db.update_last_pong(&node.id, SystemTime::now()).unwrap();
    node
}

/// A node `n` at `ip` whose pong is a week old.
fn stale(db: &NodeDb, n: u32, at: &str) -> Node {
    let node = Node::new(id(n), ip(at), 30303, 30303);
    db.update_node(&node).unwrap();
    let week = Duration::from_secs(7 * 24 * 3600);
    db.update_last_pong(&node.id, SystemTime::now() - week)
        .unwrap();
    node
}

/// Pearson's chi-square statistic of `counts` against equal expectations.
fn chi_square(counts: &[usize]) -> f64 {
    let total: usize = counts.iter().sum();
    let expected = total as f64 / counts.len() as f64;
    counts
        .iter()
        .map(|&c| (c as f64 - expected).powi(2) / expected)
        .sum()
}

/// The chi-square statistic a uniform sampler exceeds with probability 1e-6, for `df`
/// degrees of freedom (tabulated): the tests below fail by chance about once in a million
/// runs, and a sampler off by a few per cent fails them every time.
fn critical(df: usize) -> f64 {
    match df {
        1 => 23.9,
        2 => 27.6,
        4 => 33.4,
        9 => 42.9,
        _ => panic!("no table entry for {df} degrees of freedom"),
    }
}

fn subnet(node: &Node) -> Subnet {
    Subnet::of(node.ip, 24, 48)
}

#[test]
fn each_pick_chooses_uniformly_among_subnets_not_among_nodes() {
    let db = NodeDb::in_memory(me());
    // 50 ids on one /24 and one node on each of nine others.
    for n in 0..50 {
        fresh(&db, n, &format!("203.0.113.{}", n + 1));
    }
    for k in 1..10u32 {
        fresh(&db, 100 + k, &format!("198.51.{k}.7"));
    }
    let mut by_subnet: BTreeMap<Subnet, usize> = BTreeMap::new();
    for _ in 0..5000 {
        let picked = db.seeds().nodes(1);
        assert_eq!(picked.len(), 1);
        *by_subnet.entry(subnet(&picked[0])).or_default() += 1;
    }
    let counts: Vec<usize> = by_subnet.values().copied().collect();
    assert_eq!(counts.len(), 10, "every subnet is picked: {by_subnet:?}");
    let chi = chi_square(&counts);
    assert!(
        chi < critical(9),
        "picks are not uniform over subnets (chi-square {chi:.1}): {by_subnet:?}"
    );
}

#[test]
fn within_a_subnet_each_eligible_node_is_equally_likely() {
    let db = NodeDb::in_memory(me());
    let fresh_nodes: Vec<Node> = (0..5)
        .map(|n| fresh(&db, n, &format!("203.0.113.{}", n + 1)))
        .collect();
    for n in 5..8 {
        stale(&db, n, &format!("203.0.113.{}", n + 1));
    }
    let mut counts: HashMap<NodeId, usize> = HashMap::new();
    for _ in 0..4000 {
        let picked = db.seeds().nodes(1);
        *counts.entry(picked[0].id).or_default() += 1;
    }
    assert!(
        counts
            .keys()
            .all(|id| fresh_nodes.iter().any(|n| n.id == *id)),
        "a stale node was picked"
    );
    let counts: Vec<usize> = fresh_nodes
        .iter()
        .map(|n| counts.get(&n.id).copied().unwrap_or(0))
        .collect();
    let chi = chi_square(&counts);
    assert!(
        chi < critical(4),
        "not uniform within the subnet: {counts:?}"
    );
}

#[test]
fn later_picks_choose_among_the_subnets_with_room() {
    let db = NodeDb::in_memory(me());
    // Subnet A holds ten nodes, B and C one each; one pick per subnet.
    for n in 0..10 {
        fresh(&db, n, &format!("10.1.1.{}", n + 1));
    }
    fresh(&db, 20, "10.2.2.2");
    fresh(&db, 30, "10.3.3.3");
    let mut pairs: BTreeMap<Vec<Subnet>, usize> = BTreeMap::new();
    for _ in 0..3000 {
        let picked = db.seeds().per_subnet(1).nodes(2);
        let mut subnets: Vec<Subnet> = picked.iter().map(subnet).collect();
        subnets.sort();
        subnets.dedup();
        assert_eq!(subnets.len(), 2, "two picks from one subnet: {picked:?}");
        *pairs.entry(subnets).or_default() += 1;
    }
    // {A, B}, {A, C} and {B, C} each a third: a sampler by node would pick A almost always.
    let counts: Vec<usize> = pairs.values().copied().collect();
    assert_eq!(counts.len(), 3, "{pairs:?}");
    let chi = chi_square(&counts);
    assert!(chi < critical(2), "pairs not uniform: {pairs:?}");
}

#[test]
fn an_empty_store_has_no_seeds() {
    let db = NodeDb::in_memory(me());
    assert!(db.seeds().nodes(30).is_empty());
    assert!(db.seeds().records::<CombinedKey>(30).is_empty());
    assert!(db.seeds().subnet_bits(16, 32).nodes(30).is_empty());
    // Ids without an endpoint only: one group, never a seed.
    db.update_last_pong(&id(1), SystemTime::now()).unwrap();
    assert!(db.seeds().nodes(30).is_empty());
    db.delete_node(&id(1)).unwrap();
    assert!(db.seeds().nodes(30).is_empty());
}

#[test]
fn a_query_returns_at_most_per_subnet_from_each_subnet() {
    let db = NodeDb::in_memory(me());
    for n in 0..40 {
        fresh(&db, n, &format!("203.0.113.{}", n + 1));
    }
    fresh(&db, 100, "198.51.100.1");
    stale(&db, 101, "192.0.2.1");
    // min(n, sum over subnets of min(per_subnet, eligible)).
    assert_eq!(db.seeds().nodes(30).len(), 3);
    assert_eq!(db.seeds().per_subnet(5).nodes(30).len(), 6);
    assert_eq!(db.seeds().per_subnet(5).nodes(4).len(), 4);
    assert_eq!(db.seeds().per_subnet(usize::MAX).nodes(100).len(), 41);
    assert_eq!(db.seeds().per_subnet(0).nodes(30).len(), 0);
    assert_eq!(db.seeds().nodes(0).len(), 0);
    let picked = db.seeds().nodes(30);
    let distinct: HashSet<NodeId> = picked.iter().map(|n| n.id).collect();
    assert_eq!(distinct.len(), picked.len(), "a node picked twice");
    assert!(
        picked.iter().any(|n| n.id == id(100)),
        "the lone node is always a seed"
    );
}

#[test]
fn prefixes_group_ipv4_ipv6_and_ipv4_mapped_addresses() {
    let db = NodeDb::in_memory(me());
    fresh(&db, 1, "203.0.113.1");
    fresh(&db, 2, "203.0.113.200");
    fresh(&db, 3, "::ffff:203.0.113.9");
    fresh(&db, 4, "203.0.114.1");
    fresh(&db, 5, "2001:db8:1:1::1");
    fresh(&db, 6, "2001:db8:1:ffff::1");
    fresh(&db, 7, "2001:db8:2::1");
    let one_each = |v4: u8, v6: u8| db.seeds().per_subnet(1).subnet_bits(v4, v6).nodes(100);
    // /24 and /48: 203.0.113/24 (with the mapped address), 203.0.114/24, 2001:db8:1::/48,
    // 2001:db8:2::/48.
    assert_eq!(one_each(24, 48).len(), 4);
    // /16 joins the two IPv4 subnets; /32 splits each address (the mapped one is the same IP
    // family, a subnet of its own).
    assert_eq!(one_each(16, 48).len(), 3);
    assert_eq!(one_each(32, 48).len(), 6);
    // /64 splits the first IPv6 /48; /32 joins all three.
    assert_eq!(one_each(24, 64).len(), 5);
    assert_eq!(one_each(24, 32).len(), 3);
    // 0 bits: one subnet for the family, and for both.
    assert_eq!(one_each(0, 48).len(), 3);
    assert_eq!(one_each(0, 0).len(), 1);
    // A mapped address is in its IPv4 subnet: with /24, node 3 shares node 1's.
    for _ in 0..50 {
        let picked = db.seeds().per_subnet(1).nodes(100);
        let v4_24: Vec<&Node> = picked
            .iter()
            .filter(|n| Subnet::of(n.ip, 24, 48).to_string() == "203.0.113.0/24")
            .collect();
        assert_eq!(v4_24.len(), 1, "{picked:?}");
    }
}

#[test]
fn no_limit_and_no_prefix_is_query_seeds() {
    let db = NodeDb::in_memory(me());
    for n in 0..30 {
        fresh(&db, n, &format!("203.0.113.{}", n + 1));
    }
    fresh(&db, 40, "2001:db8::1");
    stale(&db, 41, "198.51.100.1");
    let all = db.seeds().per_subnet(usize::MAX).subnet_bits(0, 0);
    let mut spread: Vec<NodeId> = all.nodes(100).iter().map(|n| n.id).collect();
    let mut uniform: Vec<NodeId> = db
        .query_seeds(100, Duration::from_secs(5 * 24 * 3600))
        .iter()
        .map(|n| n.id)
        .collect();
    spread.sort();
    uniform.sort();
    assert_eq!(spread, uniform);
    // And uniform over nodes: the IPv6 node is one of 31, not one of two subnets.
    let mut v6 = 0;
    for _ in 0..3100 {
        v6 += usize::from(all.nodes(1)[0].ip.is_ipv6());
    }
    let counts = [v6, 3100 - v6];
    let expected = [100.0, 3000.0];
    let chi: f64 = counts
        .iter()
        .zip(expected)
        .map(|(&c, e)| (c as f64 - e).powi(2) / e)
        .sum();
    assert!(chi < critical(1), "{v6} of 3100 picks were the IPv6 node");
}

#[test]
fn eligibility_is_that_of_query_seeds() {
    let db = NodeDb::in_memory(me());
    fresh(&db, 1, "203.0.113.1");
    stale(&db, 2, "203.0.114.1");
    // This node, fresh: never its own seed.
    let own = Node::new(me(), ip("203.0.115.1"), 1, 1);
    db.update_node(&own).unwrap();
    db.update_last_pong(&me(), SystemTime::now()).unwrap();
    // A pong from the record's IP counts; one from an IP the node has left does not.
    let moved = Node::new(id(3), ip("203.0.116.1"), 1, 1);
    db.update_node(&moved).unwrap();
    db.update_last_pong_from(&moved.id, ip("192.0.2.1"), SystemTime::now())
        .unwrap();
    let at_record = Node::new(id(4), ip("203.0.117.1"), 1, 1);
    db.update_node(&at_record).unwrap();
    db.update_last_pong_from(&at_record.id, ip("::ffff:203.0.117.1"), SystemTime::now())
        .unwrap();
    // Liveness without a record: no endpoint, no seed.
    db.update_last_pong(&id(5), SystemTime::now()).unwrap();
    let mut picked: Vec<NodeId> = db.seeds().nodes(30).iter().map(|n| n.id).collect();
    picked.sort();
    assert_eq!(picked, vec![id(1), id(4)]);
    // A longer max_age takes the stale node too.
    let week_and_a_day = Duration::from_secs(8 * 24 * 3600);
    assert_eq!(db.seeds().max_age(week_and_a_day).nodes(30).len(), 3);
    assert_eq!(db.seeds().max_age(Duration::ZERO).nodes(30).len(), 0);
}

/// A signed record of node `n` at 203.0.(n / 256).(n % 256), holding `extra` if given.
fn signed(n: u32, extra: Option<(&str, &[u8])>) -> Enr<CombinedKey> {
    let mut secret = [0x5au8; 32];
    secret[..4].copy_from_slice(&(n + 1).to_be_bytes());
    let key = CombinedKey::secp256k1_from_bytes(&mut secret).unwrap();
    let mut builder = Enr::builder();
    builder
        .ip4(Ipv4Addr::new(203, (n / 256) as u8, (n % 256) as u8, 1))
        .udp4(30303);
    if let Some((k, v)) = extra {
        builder.add_value(k, &v);
    }
    builder.build(&key).unwrap()
}

#[test]
fn with_key_and_filter_keep_one_network() {
    let db = NodeDb::in_memory(me());
    let mut ours = HashSet::new();
    for n in 0..20 {
        let extra: Option<(&str, &[u8])> = match n % 4 {
            0 => Some(("opstack", &[0x0a, 0x01])),
            1 => Some(("opstack", &[0x0a, 0x02])),
            2 => Some(("eth", &[0xc0])),
            _ => None,
        };
        let record = signed(n, extra);
        assert!(db.update_record(&record).unwrap());
        let id = NodeId::from_enr(&record).unwrap();
        db.update_last_pong(&id, SystemTime::now()).unwrap();
        if n % 4 == 0 {
            ours.insert(id);
        }
    }
    // Unsigned nodes never pass a key or a filter.
    fresh(&db, 1000, "198.51.100.1");
    let opstack = db.seeds().with_key("opstack");
    assert_eq!(opstack.nodes(100).len(), 10);
    let chain_10 = opstack
        .clone()
        .filter(|r| r.get("opstack") == Some(&[0x82, 0x0a, 0x01][..]));
    let picked: HashSet<NodeId> = chain_10.nodes(100).iter().map(|n| n.id).collect();
    assert_eq!(picked, ours);
    let records: Vec<Enr<CombinedKey>> = chain_10.records(100);
    assert_eq!(records.len(), 5);
    assert!(records
        .iter()
        .all(|r| ours.contains(&NodeId::from_enr(r).unwrap())));
    // records() leaves out the unsigned node; nodes() takes it.
    assert_eq!(db.seeds().records::<CombinedKey>(100).len(), 20);
    assert_eq!(db.seeds().nodes(100).len(), 21);
    assert_eq!(db.seeds().with_key("eth2").nodes(100).len(), 0);
}

#[test]
fn needs_record_compares_with_the_stored_seq() {
    let db = NodeDb::in_memory(me());
    let record = signed(1, None);
    let id = NodeId::from_enr(&record).unwrap();
    assert!(!db.needs_record(&id, 0));
    assert!(db.needs_record(&id, 1));
    db.update_record(&record).unwrap();
    let seq = record.seq();
    assert!(!db.needs_record(&id, seq));
    assert!(db.needs_record(&id, seq + 1));
}

#[test]
fn subnet_groups_follow_moves_deletes_and_evictions() {
    let db = NodeDb::in_memory(me());
    for n in 0..3 {
        fresh(&db, n, &format!("203.0.113.{}", n + 1));
    }
    let one_each = || db.seeds().per_subnet(1).nodes(100).len();
    assert_eq!(one_each(), 1);
    // Two move to subnets of their own.
    fresh(&db, 1, "198.51.100.1");
    fresh(&db, 2, "2001:db8:5::1");
    assert_eq!(one_each(), 3);
    db.delete_node(&id(2)).unwrap();
    assert_eq!(one_each(), 2);
    // A record moves a node too.
    for n in 10..14 {
        let record = signed(n, None);
        db.update_record(&record).unwrap();
        db.update_last_pong(&NodeId::from_enr(&record).unwrap(), SystemTime::now())
            .unwrap();
    }
    assert_eq!(one_each(), 6);
    db.delete_node(&id(0)).unwrap();
    db.delete_node(&id(1)).unwrap();
    assert_eq!(one_each(), 4);
    // Everything held, nothing else: the picks are exactly the stored nodes.
    let held: HashSet<NodeId> = db.peers().iter().map(|p| p.id).collect();
    assert!(db.seeds().nodes(100).iter().all(|n| held.contains(&n.id)));
}

#[test]
fn a_flood_of_ids_on_few_subnets_gets_few_seeds() {
    // The attack the seed query answers: 2,000 ids answering pings from two /24s beside 200
    // honest nodes on 200 subnets.
    let db = NodeDb::in_memory(me());
    for n in 0..2000u32 {
        fresh(&db, n, &format!("203.0.{}.{}", 113 + n % 2, n % 250 + 1));
    }
    for k in 0..200u32 {
        fresh(&db, 10_000 + k, &format!("10.{}.{}.1", k / 100, k % 100));
    }
    let (mut attacker_uniform, mut attacker_spread) = (0, 0);
    let rounds = 100;
    for _ in 0..rounds {
        let is_attacker = |n: &Node| n.ip.to_string().starts_with("203.0.");
        attacker_uniform += db
            .query_seeds(30, Duration::from_secs(3600))
            .iter()
            .filter(|n| is_attacker(n))
            .count();
        attacker_spread += db
            .seeds()
            .nodes(30)
            .iter()
            .filter(|n| is_attacker(n))
            .count();
    }
    let uniform = attacker_uniform as f64 / (30 * rounds) as f64;
    let spread = attacker_spread as f64 / (30 * rounds) as f64;
    assert!(
        uniform > 0.8,
        "uniform sampling gave the flood {uniform:.2}"
    );
    // Two of 202 subnets, two picks each at most: at most 4 of 30.
    assert!(
        spread <= 4.0 / 30.0 + 1e-9,
        "the spread gave the flood {spread:.2}"
    );
}

#[test]
fn picks_stay_uniform_when_eligible_nodes_are_rare() {
    // 2,000 stale nodes each on a subnet of its own: drawing subnets at random rarely finds
    // an eligible one, and the query lists them instead. Its picks must be as uniform.
    let db = NodeDb::in_memory(me());
    for n in 0..2000u32 {
        stale(&db, n, &format!("10.{}.{}.1", n / 256, n % 256));
    }
    for n in 0..5 {
        fresh(&db, 5000 + n, &format!("203.0.113.{}", n + 1));
    }
    fresh(&db, 6000, "198.51.100.1");
    fresh(&db, 7000, "2001:db8:7::1");
    let mut by_subnet: BTreeMap<Subnet, usize> = BTreeMap::new();
    for _ in 0..2400 {
        let picked = db.seeds().nodes(1);
        *by_subnet.entry(subnet(&picked[0])).or_default() += 1;
    }
    let counts: Vec<usize> = by_subnet.values().copied().collect();
    assert_eq!(counts.len(), 3, "{by_subnet:?}");
    assert!(chi_square(&counts) < critical(2), "{by_subnet:?}");
    assert_eq!(db.seeds().nodes(30).len(), 4);
}
