//! A first look at peerlog: creates a database, writes peers and their pings and pongs,
//! reopens it and prints what it recovered.
//!
//! Run with `cargo run --release --example demo [DIR]` (default: a fresh temporary folder).

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, Instant, SystemTime};

use peerlog::{Node, NodeDb, NodeId};

fn node_id(n: u64) -> NodeId {
    let mut id = [0u8; 64];
    for (i, chunk) in id.chunks_mut(8).enumerate() {
        chunk.copy_from_slice(&(n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ i as u64).to_le_bytes());
    }
    NodeId(id)
}

fn main() -> Result<(), peerlog::Error> {
    let temp = tempfile::tempdir().expect("a temporary directory");
    let dir = std::env::args()
        .nth(1)
        .map_or_else(|| temp.path().join("peers"), Into::into);
    let me = node_id(0);
    let peers = 100_000u64;
    let now = SystemTime::now();

    let db = NodeDb::open(&dir, 5, me)?;
    let started = Instant::now();
    for n in 1..=peers {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000 + n as u32));
        let node = Node::new(node_id(n), ip, 30303, 30303);
        db.update_node(&node)?;
        db.update_last_ping(&node.id, now - Duration::from_secs(n % 7200))?;
        // Every tenth peer never answered for two days: expiration will drop it.
        let pong_age = if n % 10 == 0 { 2 * 86_400 } else { n % 3600 };
        db.update_last_pong(&node.id, now - Duration::from_secs(pong_age))?;
        if n % 3 == 0 {
            db.update_find_fails(&node.id, (n % 5) as u32)?;
        }
    }
    let elapsed = started.elapsed();
    println!(
        "wrote {} events for {peers} peers in {:.2?} ({:.2} M events/s) into {}",
        peers * 3 + peers / 3,
        elapsed,
        (peers * 3 + peers / 3) as f64 / elapsed.as_secs_f64() / 1e6,
        dir.display()
    );
    db.close()?;

    let started = Instant::now();
    let db = NodeDb::open(&dir, 5, me)?;
    let summary = db.recovery();
    println!(
        "reopened in {:.2?} ({}): {} records in {} segment(s), {} problem(s); {} nodes",
        started.elapsed(),
        if summary.from_snapshot {
            "from the index snapshot the close wrote, every segment's checksum checked"
        } else {
            "replaying the log"
        },
        summary.records,
        summary.segments,
        summary.problems.len(),
        db.len()
    );
    let sample = node_id(42);
    println!(
        "node 42: {}",
        db.node(&sample).expect("node 42 was written")
    );
    println!(
        "  last pong {:?} ago, {} findnode failures",
        now.duration_since(db.last_pong(&sample).unwrap())
            .unwrap_or_default(),
        db.find_fails(&sample)
    );
    println!("5 random seeds that answered within an hour:");
    for seed in db.query_seeds(5, Duration::from_secs(3600)) {
        println!("  {seed}");
    }
    // What a restart should start from: spread over subnets, at most 2 a /24.
    let spread = db.seeds().max_age(Duration::from_secs(3600)).nodes(30);
    let subnets: std::collections::BTreeSet<_> = spread
        .iter()
        .map(|n| peerlog::Subnet::of(n.ip, 24, 48))
        .collect();
    println!(
        "30 seeds spread over subnets (NodeDb::seeds): {} nodes on {} /24s",
        spread.len(),
        subnets.len()
    );
    println!(
        "expired {} stale nodes; {} remain",
        db.expire_nodes()?,
        db.len()
    );
    let stats = db.compact()?;
    println!(
        "compacted {} records ({} KiB) into {} ({} KiB)",
        stats.records_read,
        stats.bytes_read >> 10,
        stats.records_written,
        stats.bytes_written >> 10
    );
    db.close()
}
