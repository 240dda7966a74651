//! Signed node records (issue 11's targets), measured interleaved like `ratios` and printed as
//! JSON lines (`{"id":"records/<name>",...}`) for benches/report.sh:
//!
//! - `update_record`: writes/s of `NodeDb::update_record` at the default durability (each
//!   write verifies the record's signature first), and `update_node` in the same rounds;
//! - `open_signed_100k` against `mmap_crc_signed_100k`: opening a log of 100 k nodes with signed
//!   records and their per-IP histories (the record, a ping and a pong from its IP, a findnode
//!   failure count at it, a second record of a higher seq for one node in four), from the
//!   index snapshot its last close wrote, and `replay_signed_100k` replaying its whole log,
//!   against mapping the same files and checking every frame's CRC, alternated;
//! - `query_seed_records`: one `query_seed_records::<CombinedKey>(30, 5 days)` on those 100 k
//!   nodes (it decodes, and so verifies, the 30 records it returns).
//!
//! Run with `cargo bench -p peerlog-bench --bench records` (`PEERLOG_RECORDS_NODES`, default
//! 100000; `PEERLOG_RATIO_ROUNDS`, default 7, rounds of writes and queries;
//! `PEERLOG_OPEN_ROUNDS`, default 20, rounds of three opens each alternated with three scans:
//! an open takes tens of milliseconds, and on a shared machine a ratio of 21 pairs moved by
//! several hundredths between runs).

mod common;

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::{Durability, Node, NodeDb, NodeId};

use common::raw::mmap_crc_scan;
use common::{open_once, options, replay_once, self_id, temp_dir, VERSION};

/// The record of node `n` with seq `seq` (IPv4 10.x.y.z, the default ports).
fn record(key: &CombinedKey, n: u64, seq: u64) -> Enr<CombinedKey> {
    let ip = Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32));
    Enr::builder()
        .ip4(ip)
        .udp4(30303)
        .tcp4(30303)
        .seq(seq)
        .build(key)
        .expect("a record")
}

fn key(n: u64) -> CombinedKey {
    let mut secret = [0x5au8; 32];
    secret[..8].copy_from_slice(&(n + 1).to_be_bytes());
    CombinedKey::secp256k1_from_bytes(&mut secret).expect("a key")
}

/// Writes the signed-record workload of `nodes` nodes into `dir`; returns the records' mean
/// RLP length.
fn build_signed_log(dir: &std::path::Path, nodes: u64) -> f64 {
    let db = NodeDb::open_with(dir, VERSION, self_id(), options(Durability::Process)).unwrap();
    let now = SystemTime::now();
    let mut rlp_bytes = 0;
    for n in 0..nodes {
        let key = key(n);
        let first = record(&key, n, 1);
        rlp_bytes += first.size();
        let id = NodeId::from_enr(&first).unwrap();
        let ip = IpAddr::V4(first.ip4().unwrap());
        db.update_record(&first).unwrap();
        db.update_last_ping_from(&id, ip, now - Duration::from_secs(n % 3600))
            .unwrap();
        db.update_last_pong_from(&id, ip, now - Duration::from_secs(n % 3600))
            .unwrap();
        db.update_find_fails_at(&id, ip, (n % 3) as u32).unwrap();
        if n % 4 == 0 {
            db.update_record(&record(&key, n, 2)).unwrap();
        }
    }
    // On disk before anything is timed (see common::build_log).
    db.sync().unwrap();
    db.close().unwrap();
    rlp_bytes as f64 / nodes as f64
}

fn line(name: &str, ops: u64, ns: u128) {
    let rate = ops as f64 * 1e9 / ns as f64;
    println!("{{\"id\":\"records/{name}\",\"ops\":{ops},\"ns\":{ns},\"rate\":{rate:.1}}}");
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        return; // as a test (`cargo test --benches`): far too slow
    }
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let nodes = env("PEERLOG_RECORDS_NODES", 100_000);
    let rounds = env("PEERLOG_RATIO_ROUNDS", 7);
    let open_rounds = env("PEERLOG_OPEN_ROUNDS", 20);

    // Writes: a cycle of pre-signed records (signing is the caller's cost, not peerlog's),
    // each written again at the same seq, which replaces it.
    let keys: Vec<CombinedKey> = (0..1000).map(key).collect();
    let records: Vec<_> = keys
        .iter()
        .enumerate()
        .map(|(n, k)| record(k, n as u64, 1))
        .collect();
    let nodes_unsigned: Vec<Node> = records
        .iter()
        .map(|r| {
            Node::new(
                NodeId::from_enr(r).unwrap(),
                IpAddr::V4(r.ip4().unwrap()),
                30303,
                30303,
            )
        })
        .collect();
    let write_dir = temp_dir("records-write");
    let db = NodeDb::open_with(
        write_dir.path(),
        VERSION,
        self_id(),
        options(Durability::Process),
    )
    .unwrap();
    let (mut record_ns, mut node_ns, mut writes) = (0u128, 0u128, 0u64);
    for _ in 0..rounds {
        let started = Instant::now();
        for r in &records {
            db.update_record(r).unwrap();
        }
        record_ns += started.elapsed().as_nanos();
        let started = Instant::now();
        for n in &nodes_unsigned {
            db.update_node(n).unwrap();
        }
        node_ns += started.elapsed().as_nanos();
        writes += records.len() as u64;
    }
    db.close().unwrap();
    line("update_record", writes, record_ns);
    line("update_node", writes, node_ns);

    // Replay of a signed-record log against mmap + CRC over the same files, alternated.
    let dir = temp_dir("records-open");
    let mean_rlp = build_signed_log(dir.path(), nodes);
    // Each contender once untimed first (the scan counts the records): the first open in a
    // process also pays for what no later one does (the allocator's first large blocks).
    let records_in_log = mmap_crc_scan(dir.path());
    open_once(dir.path());
    replay_once(dir.path());
    let (mut open_ns, mut replay_ns, mut crc_ns) = (0u128, 0u128, 0u128);
    for _ in 0..open_rounds {
        for _ in 0..3 {
            open_ns += open_once(dir.path()).as_nanos();
            replay_ns += replay_once(dir.path()).as_nanos();
            let started = Instant::now();
            assert_eq!(mmap_crc_scan(dir.path()), records_in_log);
            crc_ns += started.elapsed().as_nanos();
        }
    }
    let opens = open_rounds * 3 * records_in_log;
    line("open_signed_100k", opens, open_ns);
    line("replay_signed_100k", opens, replay_ns);
    line("mmap_crc_signed_100k", opens, crc_ns);

    // Seeds with records: 30 of 100 k, decoded (verified).
    let db = NodeDb::open(dir.path(), VERSION, self_id()).unwrap();
    let queries = rounds * 20;
    let started = Instant::now();
    for _ in 0..queries {
        let seeds: Vec<Enr<CombinedKey>> =
            db.query_seed_records(30, Duration::from_secs(5 * 86_400));
        assert_eq!(seeds.len(), 30);
    }
    line("query_seed_records", queries, started.elapsed().as_nanos());
    println!(
        "{{\"id\":\"records/shape\",\"nodes\":{nodes},\"records\":{records_in_log},\"mean_rlp\":{mean_rlp:.1}}}"
    );
}
