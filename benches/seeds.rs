//! Seeds a restart can trust (issue 21's figures), printed as JSON lines for
//! benches/report.sh:
//!
//! - `attack/<case>`: the share of attacker ids among the seeds of `query_seeds(30, 5 days)`
//!   and of `seeds().nodes(30)` (defaults: 2 per /24 or /48), averaged over many queries, in a
//!   store of 10 k honest proven nodes, each on its own /24, beside 10 k attacker ids that
//!   answer every ping (so are proven too): on 4 /24s, spread over the 256 /24s of one /16,
//!   on one IPv6 /48. Shares of picks, not timings: the same on any machine, up to sampling.
//!   `attack/cross_network`: 10 k signed records on 10 k /24s, 90 % of them of another
//!   network (no `opstack` key), `query_seed_records(30, 5 days)` against
//!   `seeds().with_key("opstack").records(30)`.
//! - `seeds/*`: speed on the 100 k-node benchmark log of the `queries` bench
//!   (`common::populated`): the first `seeds().nodes(30)` (which builds the subnet groups),
//!   then `query_seeds(30, 5 days)` and `seeds().nodes(30)` alternated in rounds; then
//!   `query_seeds(30, 5 days)` on that store alternated with the same on 100 k nodes written
//!   through the public API with default options (on disk, a ping to and a pong from each
//!   node's IP: per-IP liveness, as a discv5 client records it); and on
//!   100 k signed-record nodes, 2 % of them with an `opstack` key, `query_seed_records(30,
//!   5 days)` against `seeds().with_key("opstack").records(30)`, alternated.
//!
//! Run with `cargo bench -p peerlog-bench --bench seeds` (`PEERLOG_SEEDS_ONLY=attack` or
//! `speed` for one part; `PEERLOG_ATTACK_QUERIES`, default 20000, queries per attack case:
//! an attacker held to its share of one subnet in 10,001 expects 60 of 600,000 picks, and
//! with fewer the count is too small for a three-sigma judgement to mean much; a quarter of
//! that for the record case, whose queries verify 30 signatures each;
//! `PEERLOG_RATIO_ROUNDS`, default 7, rounds of the speed part).

mod common;

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant, SystemTime};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::{Node, NodeDb, NodeId, Options};

use common::{node_id, populated, self_id};

const FIVE_DAYS: Duration = Duration::from_secs(5 * 86_400);
const SEEDS: usize = 30;
const HONEST: u64 = 10_000;
const ATTACKERS: u64 = 10_000;
/// The network the cross-network case and the keyed speed figure filter for.
const KEY: &str = "opstack";

fn env(name: &str, default: u64) -> u64 {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn unbounded() -> NodeDb {
    NodeDb::in_memory_with(
        self_id(),
        Options {
            max_nodes: usize::MAX,
            ..Options::default()
        },
    )
    .expect("valid options")
}

/// A node that answered a ping just now.
fn proven(db: &NodeDb, id: NodeId, ip: IpAddr, port: u16, now: SystemTime) {
    db.update_node(&Node::new(id, ip, port, port)).unwrap();
    db.update_last_pong(&id, now).unwrap();
}

/// Honest node `n`: 20.(n >> 8).(n & 255).1, one /24 each.
fn honest_ip(n: u64) -> IpAddr {
    IpAddr::V4(Ipv4Addr::from(0x1400_0001u32 + ((n as u32) << 8)))
}

fn share(picked: &[NodeId], attackers: &HashSet<NodeId>) -> usize {
    picked.iter().filter(|id| attackers.contains(id)).count()
}

/// One node-id attack case: prints its line.
fn attack_case(name: &str, what: &str, subnets: u64, ip: impl Fn(u64) -> IpAddr, queries: u64) {
    let db = unbounded();
    let now = SystemTime::now();
    for n in 0..HONEST {
        proven(&db, node_id(n), honest_ip(n), 30303, now);
    }
    let mut attackers = HashSet::new();
    for i in 0..ATTACKERS {
        let id = node_id(1_000_000 + i);
        proven(&db, id, ip(i), 30303 + (i % 1000) as u16, now);
        attackers.insert(id);
    }
    let (mut uniform, mut spread, mut picks) = (0, 0, 0);
    for _ in 0..queries {
        let a: Vec<NodeId> = db
            .query_seeds(SEEDS, FIVE_DAYS)
            .iter()
            .map(|n| n.id)
            .collect();
        let b: Vec<NodeId> = db.seeds().nodes(SEEDS).iter().map(|n| n.id).collect();
        assert_eq!((a.len(), b.len()), (SEEDS, SEEDS));
        uniform += share(&a, &attackers);
        spread += share(&b, &attackers);
        picks += SEEDS;
    }
    attack_line(
        name,
        what,
        subnets,
        HONEST + subnets,
        queries,
        picks,
        uniform,
        spread,
    );
}

#[allow(clippy::too_many_arguments)]
fn attack_line(
    name: &str,
    what: &str,
    attacker_subnets: u64,
    subnets: u64,
    queries: u64,
    picks: usize,
    uniform: usize,
    spread: usize,
) {
    println!(
        "{{\"id\":\"attack/{name}\",\"what\":\"{what}\",\"honest\":{HONEST},\"attackers\":{ATTACKERS},\
         \"attacker_subnets\":{attacker_subnets},\"subnets\":{subnets},\"queries\":{queries},\
         \"picks\":{picks},\"uniform_picks\":{uniform},\"seeds_picks\":{spread}}}"
    );
}

fn secret_key(n: u64) -> CombinedKey {
    let mut secret = [0x5au8; 32];
    secret[..8].copy_from_slice(&(n + 1).to_be_bytes());
    CombinedKey::secp256k1_from_bytes(&mut secret).expect("a key")
}

/// The signed record of node `n` at `ip`, with an `opstack` key if `keyed`.
fn signed(n: u64, ip: Ipv4Addr, keyed: bool) -> Enr<CombinedKey> {
    let mut builder = Enr::builder();
    builder.ip4(ip).udp4(30303).tcp4(30303);
    if keyed {
        builder.add_value(KEY, &vec![0x01u8, 0x02]);
    } else {
        builder.add_value("eth", &vec![0xc0u8]);
    }
    builder.build(&secret_key(n)).expect("a record")
}

/// Adds `nodes` signed records, node `n` at `ip(n)` with a pong from that IP `age(n)` ago,
/// those for which `keyed(n)` with the key; returns the ids without it.
fn signed_nodes(
    db: &NodeDb,
    nodes: u64,
    ip: impl Fn(u64) -> Ipv4Addr,
    age: impl Fn(u64) -> Duration,
    keyed: impl Fn(u64) -> bool,
) -> HashSet<NodeId> {
    let now = SystemTime::now();
    let mut foreign = HashSet::new();
    for n in 0..nodes {
        let record = signed(n, ip(n), keyed(n));
        let id = NodeId::from_enr(&record).unwrap();
        db.update_record(&record).unwrap();
        db.update_last_pong_from(&id, IpAddr::V4(ip(n)), now - age(n))
            .unwrap();
        if !keyed(n) {
            foreign.insert(id);
        }
    }
    foreign
}

fn cross_network(queries: u64) {
    let db = unbounded();
    let nodes = HONEST;
    let ip = |n: u64| Ipv4Addr::from(0x1400_0001u32 + ((n as u32) << 8));
    let foreign = signed_nodes(&db, nodes, ip, |_| Duration::ZERO, |n| n % 10 == 0);
    let ids = |records: Vec<Enr<CombinedKey>>| -> Vec<NodeId> {
        assert_eq!(records.len(), SEEDS);
        records
            .iter()
            .map(|r| NodeId::from_enr(r).unwrap())
            .collect()
    };
    let (mut uniform, mut spread, mut picks) = (0, 0, 0);
    for _ in 0..queries {
        uniform += share(
            &ids(db.query_seed_records::<CombinedKey>(SEEDS, FIVE_DAYS)),
            &foreign,
        );
        spread += share(
            &ids(db.seeds().with_key(KEY).records::<CombinedKey>(SEEDS)),
            &foreign,
        );
        picks += SEEDS;
    }
    println!(
        "{{\"id\":\"attack/cross_network\",\"what\":\"9 k of 10 k signed records of another network, 1 per /24\",\
         \"records\":{nodes},\"foreign\":{},\"queries\":{queries},\"picks\":{picks},\
         \"uniform_picks\":{uniform},\"seeds_picks\":{spread}}}",
        foreign.len()
    );
}

fn attack(queries: u64) {
    attack_case(
        "four_24s",
        "10 k ids on 4 /24s",
        4,
        |i| IpAddr::V4(Ipv4Addr::new(66, 0, (i % 4) as u8, (i / 4 % 256) as u8)),
        queries,
    );
    attack_case(
        "one_16",
        "10 k ids over the 256 /24s of one /16",
        256,
        |i| IpAddr::V4(Ipv4Addr::new(66, 1, (i % 256) as u8, (i / 256) as u8)),
        queries,
    );
    attack_case(
        "one_48",
        "10 k ids on one IPv6 /48",
        1,
        |i| {
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0xdb8,
                0x66,
                (i % 7) as u16,
                0,
                0,
                (i >> 16) as u16,
                i as u16,
            ))
        },
        queries,
    );
    cross_network((queries / 4).max(1));
}

fn line(name: &str, ops: u64, ns: u128) {
    let rate = ops as f64 * 1e9 / ns as f64;
    println!("{{\"id\":\"seeds/{name}\",\"ops\":{ops},\"ns\":{ns},\"rate\":{rate:.1}}}");
}

fn timed<T>(count: u64, mut call: impl FnMut() -> T) -> u128 {
    let started = Instant::now();
    for _ in 0..count {
        std::hint::black_box(call());
    }
    started.elapsed().as_nanos()
}

fn speed(rounds: u64) {
    let db = populated(100_000);
    // Both once first; the first seed query builds the subnet groups and is timed alone.
    let started = Instant::now();
    assert_eq!(db.seeds().nodes(SEEDS).len(), SEEDS);
    line("first_seeds_nodes_30", 1, started.elapsed().as_nanos());
    assert_eq!(db.query_seeds(SEEDS, FIVE_DAYS).len(), SEEDS);
    let per_round = 2000;
    let (mut uniform, mut spread) = (0, 0);
    for _ in 0..rounds {
        uniform += timed(per_round, || db.query_seeds(SEEDS, FIVE_DAYS));
        spread += timed(per_round, || db.seeds().nodes(SEEDS));
    }
    line("query_seeds_30", rounds * per_round, uniform);
    line("seeds_nodes_30", rounds * per_round, spread);

    // The same nodes as an application writes them through the public API with default
    // options: on disk, a ping to and a pong from each node's IP (per-IP liveness, as a
    // discv5 client records it), alternated with the benchmark log's store.
    let dir = common::temp_dir("seeds-api");
    let api = NodeDb::open(dir.path(), common::VERSION, self_id()).unwrap();
    let now = SystemTime::now();
    for n in 0..100_000 {
        let node = common::node(n);
        api.update_node(&node).unwrap();
        api.update_last_ping_from(&node.id, node.ip, now - Duration::from_secs(n % 7200))
            .unwrap();
        api.update_last_pong_from(&node.id, node.ip, now - common::pong_age(n))
            .unwrap();
    }
    assert_eq!(api.query_seeds(SEEDS, FIVE_DAYS).len(), SEEDS);
    let (mut log, mut written) = (0, 0);
    for _ in 0..rounds {
        log += timed(per_round, || db.query_seeds(SEEDS, FIVE_DAYS));
        written += timed(per_round, || api.query_seeds(SEEDS, FIVE_DAYS));
    }
    line("query_seeds_30_log", rounds * per_round, log);
    line("query_seeds_30_api", rounds * per_round, written);
    api.close().unwrap();
    drop(db);

    // The signed-record log of the records bench (10.x.y.z, pongs within the hour), 2 % of
    // its records with the key.
    let db = NodeDb::in_memory(self_id());
    let started = Instant::now();
    signed_nodes(
        &db,
        100_000,
        |n| Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32)),
        |n| Duration::from_secs(n % 3600),
        |n| n % 50 == 7,
    );
    eprintln!("signed 100 k records in {:?}", started.elapsed());
    let started = Instant::now();
    assert_eq!(
        db.seeds().with_key(KEY).records::<CombinedKey>(SEEDS).len(),
        SEEDS
    );
    line(
        "first_seeds_records_30_keyed",
        1,
        started.elapsed().as_nanos(),
    );
    assert_eq!(
        db.query_seed_records::<CombinedKey>(SEEDS, FIVE_DAYS).len(),
        SEEDS
    );
    let per_round = 40;
    let (mut uniform, mut spread) = (0, 0);
    for _ in 0..rounds {
        uniform += timed(per_round, || {
            db.query_seed_records::<CombinedKey>(SEEDS, FIVE_DAYS)
        });
        spread += timed(per_round, || {
            db.seeds().with_key(KEY).records::<CombinedKey>(SEEDS)
        });
    }
    line("query_seed_records_30", rounds * per_round, uniform);
    line("seeds_records_30_keyed", rounds * per_round, spread);
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // as a test (`cargo test --benches`): far too slow
    }
    let only = std::env::var("PEERLOG_SEEDS_ONLY").unwrap_or_default();
    if only.is_empty() || only == "attack" {
        attack(env("PEERLOG_ATTACK_QUERIES", 20_000));
    }
    if only.is_empty() || only == "speed" {
        speed(env("PEERLOG_RATIO_ROUNDS", 7));
    }
}
