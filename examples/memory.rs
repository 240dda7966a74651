//! Resident memory of the index: 1 M nodes (record, last ping, last pong) in an in-memory
//! database, measured as resident memory (VmRSS) before and after. Prints a human line and a JSON
//! line (`{"id":"memory/...", ...}`) for benches/report.sh.
//!
//! Run with `cargo run --release --example memory [NODES]`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use peerlog::{Node, NodeDb, NodeId};

fn node_id(n: u64) -> NodeId {
    let mut id = [0u8; 64];
    for (i, chunk) in id.chunks_mut(8).enumerate() {
        let x = (n ^ (i as u64) << 56).wrapping_mul(0x9e37_79b9_7f4a_7c15);
        chunk.copy_from_slice(&(x ^ x >> 29).to_le_bytes());
    }
    NodeId(id)
}

/// Resident bytes of this process: the `VmRSS` line of /proc/self/status (in kB), the same
/// figure as the second field of /proc/self/statm without needing the page size.
fn resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb * 1024
}

fn main() -> Result<(), peerlog::Error> {
    let nodes: u64 = std::env::args()
        .nth(1)
        .map_or(1_000_000, |a| a.parse().expect("NODES must be a number"));
    let now = SystemTime::now();
    // Everything the measurement allocates besides the index, made before the first reading.
    let db = NodeDb::in_memory(node_id(u64::MAX));
    let before = resident_bytes();
    for n in 0..nodes {
        let ip = IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32)));
        let node = Node::new(node_id(n), ip, 30303, 30303);
        db.update_node(&node)?;
        db.update_last_ping(&node.id, now - Duration::from_secs(n % 7200))?;
        db.update_last_pong(&node.id, now - Duration::from_secs(n % 3600))?;
    }
    let after = resident_bytes();
    assert_eq!(db.len() as u64, nodes);
    let per_node = (after - before) as f64 / nodes as f64;
    let record = std::mem::size_of::<Node>();
    println!(
        "{nodes} nodes: resident memory grew by {} MiB, {per_node:.1} bytes per node \
         ({:.1} beyond the {record}-byte node record itself)",
        (after - before) >> 20,
        per_node - record as f64
    );
    println!(
        "{{\"id\":\"memory/index_1m\",\"bytes_per_node\":{per_node:.1},\"beyond_record\":{:.1},\"record_bytes\":{record},\"nodes\":{nodes}}}",
        per_node - record as f64
    );
    Ok(())
}
