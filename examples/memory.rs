//! Resident memory of the index: 1 M nodes (record, last ping, last pong) in an in-memory
//! database, measured as resident memory (VmRSS) before and after. Prints a human line and a JSON
//! line (`{"id":"memory/...", ...}`) for benches/report.sh.
//!
//! With `--signed`, 200 k modern nodes instead: a signed record (EIP-778) and a ping and pong
//! from the record's IP each; the figure beyond the record is then beyond the node record
//! *and* the signed record's own bytes (its RLP, kept as it is).
//!
//! With `--open DIR`, it opens the database in DIR and closes it, for a measurement of the
//! peak resident size of an open from outside (benches/commands.py).
//!
//! With `--compact DIR`, it opens the database in DIR, then compacts it with `NodeDb::compact`
//! (expiring nothing, keeping history, as benches/commands.py runs `peerlog compact`): the
//! library's compaction inside an open database. The peak resident size (`VmHWM`) is read
//! after the open, reset (`/proc/self/clear_refs`), and read again after the compaction, so
//! that the second figure is the compaction's own peak with the open index resident. Prints a
//! human line and a JSON line (`command/compact_library`).
//!
//! With `--seeds`, the plain nodes again, measured before and after one seed query
//! (`seeds().nodes(30)`), whose first call builds the subnet groups the index then keeps: what
//! the groups add per node. The nodes sit 256 to a /24, as in the benchmark log; with
//! `--one-per-subnet`, each on its own /24 (every group holds one node).
//!
//! Run with `cargo run --release --example memory [NODES] [--signed | --seeds
//! [--one-per-subnet]]`.

use std::net::{IpAddr, Ipv4Addr};
use std::time::{Duration, SystemTime};

use peerlog::{Node, NodeDb, NodeId};

/// An in-memory store without the default bound of 100 k ids (`Options::max_nodes`), which
/// would evict all but the last 100 k of the measured nodes.
fn unbounded() -> NodeDb {
    let opts = peerlog::Options {
        max_nodes: usize::MAX,
        ..peerlog::Options::default()
    };
    NodeDb::in_memory_with(node_id(u64::MAX), opts).expect("valid options")
}

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

/// Resident bytes per node of `nodes` signed-record nodes, then what a ping and pong from
/// each record's IP add, and the mean length of the records.
fn signed(nodes: u64) -> Result<(f64, f64, f64), peerlog::Error> {
    use peerlog::enr::{CombinedKey, Enr};
    let now = SystemTime::now();
    let db = unbounded();
    let mut rlp_bytes = 0;
    let mut ids = Vec::with_capacity(nodes as usize);
    let before = resident_bytes();
    for n in 0..nodes {
        let mut secret = [0x5au8; 32];
        secret[..8].copy_from_slice(&(n + 1).to_be_bytes());
        let key = CombinedKey::secp256k1_from_bytes(&mut secret).expect("a key");
        let ip = Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32));
        let record = Enr::builder()
            .ip4(ip)
            .udp4(30303)
            .tcp4(30303)
            .build(&key)
            .expect("a record");
        rlp_bytes += record.size();
        let id = NodeId::from_enr(&record)?;
        db.update_record(&record)?;
        ids.push((id, IpAddr::V4(ip)));
    }
    let with_records = resident_bytes();
    for (id, ip) in &ids {
        db.update_last_ping_from(id, *ip, now)?;
        db.update_last_pong_from(id, *ip, now)?;
    }
    let with_liveness = resident_bytes();
    assert_eq!(db.len() as u64, nodes);
    // The ids' own vector was allocated before the first reading and counts as one id each
    // (80 bytes) in the records' figure: take it out.
    let ids_vec = std::mem::size_of::<(NodeId, IpAddr)>() as f64;
    Ok((
        (with_records - before) as f64 / nodes as f64 - ids_vec,
        (with_liveness - with_records) as f64 / nodes as f64,
        rlp_bytes as f64 / nodes as f64,
    ))
}

/// Opens the database in `dir` (with the protocol version its segments carry) and closes it:
/// what benches/commands.py measures the peak resident size of, beside the `peerlog` commands
/// on the same log.
/// The peak resident size of this process so far: the `VmHWM` line of /proc/self/status.
fn peak_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").expect("read /proc/self/status");
    let kb: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmHWM in /proc/self/status");
    kb * 1024
}

/// Opens the database in `dir` and compacts it, measuring the compaction's peak apart from
/// the open's (see the module documentation).
fn compact(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let segments = peerlog::inspect::segments(dir.as_ref())?;
    let version = segments.first().map_or(0, |s| s.protocol_version);
    let opts = peerlog::Options {
        expiration: Duration::from_secs(100_000 * 86_400),
        keep_history: true,
        ..peerlog::Options::default()
    };
    let db = NodeDb::open_with(dir, version, NodeId([0; 64]), opts)?;
    let open_peak = peak_bytes();
    // The open unmaps each replayed segment on a thread of its own: let those finish, so
    // that their pages are not taken for the compaction's.
    std::thread::sleep(Duration::from_millis(500));
    let open_resident = resident_bytes();
    // Writing 5 to clear_refs resets VmHWM to the current resident size (Linux 4.0 on).
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let started = std::time::Instant::now();
    let stats = db.compact()?;
    let secs = started.elapsed().as_secs_f64();
    let compact_peak = peak_bytes();
    println!(
        "{} nodes in {dir}: open peaked at {:.1} MiB ({:.1} MiB resident after it); the \
         compaction ({} records into {}) peaked at {:.1} MiB{} in {secs:.2} s",
        db.len(),
        open_peak as f64 / 1048576.0,
        open_resident as f64 / 1048576.0,
        stats.records_read,
        stats.records_written,
        compact_peak as f64 / 1048576.0,
        if reset {
            ""
        } else {
            " (peak not reset: the open's included)"
        },
    );
    println!(
        "{{\"id\":\"command/compact_library\",\"rss_bytes\":{compact_peak},\"secs\":{secs:.3},\"open_rss_bytes\":{open_peak},\"open_resident_bytes\":{open_resident},\"peak_reset\":{reset}}}"
    );
    db.close()?;
    Ok(())
}

fn open(dir: &str) -> Result<(), Box<dyn std::error::Error>> {
    let segments = peerlog::inspect::segments(dir.as_ref())?;
    let version = segments.first().map_or(0, |s| s.protocol_version);
    let db = NodeDb::open(dir, version, NodeId([0; 64]))?;
    println!("{} nodes open in {dir}", db.len());
    db.close()?;
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(at) = args.iter().position(|a| a == "--compact") {
        return compact(
            args.get(at + 1)
                .ok_or("--compact takes a database directory")?,
        );
    }
    if let Some(at) = args.iter().position(|a| a == "--open") {
        return open(
            args.get(at + 1)
                .ok_or("--open takes a database directory")?,
        );
    }
    let is_signed = args.iter().any(|a| a == "--signed");
    let count = args.iter().find(|a| !a.starts_with("--"));
    if is_signed {
        let nodes = count.map_or(200_000, |a| a.parse().expect("NODES must be a number"));
        let (per_node, per_ip, rlp) = signed(nodes)?;
        let record = std::mem::size_of::<Node>() as f64 + rlp;
        println!(
            "{nodes} signed-record nodes: {per_node:.1} bytes per node ({:.1} beyond the \
             {}-byte node record and the {rlp:.1}-byte signed record); a ping and pong at one \
             IP add {per_ip:.1}",
            per_node - record,
            std::mem::size_of::<Node>()
        );
        println!(
            "{{\"id\":\"memory/index_signed\",\"bytes_per_node\":{per_node:.1},\"beyond_record\":{:.1},\"record_bytes\":{record:.1},\"ip_slot\":{per_ip:.1},\"nodes\":{nodes}}}",
            per_node - record
        );
        return Ok(());
    }
    let nodes: u64 = count.map_or(1_000_000, |a| a.parse().expect("NODES must be a number"));
    let with_seeds = args.iter().any(|a| a == "--seeds");
    let one_per_subnet = args.iter().any(|a| a == "--one-per-subnet");
    let now = SystemTime::now();
    // Everything the measurement allocates besides the index, made before the first reading.
    let db = unbounded();
    let before = resident_bytes();
    for n in 0..nodes {
        let ip = if one_per_subnet {
            IpAddr::V4(Ipv4Addr::from(0x0100_0001u32.wrapping_add((n as u32) << 8)))
        } else {
            IpAddr::V4(Ipv4Addr::from(0x0a00_0000u32.wrapping_add(n as u32)))
        };
        let node = Node::new(node_id(n), ip, 30303, 30303);
        db.update_node(&node)?;
        db.update_last_ping(&node.id, now - Duration::from_secs(n % 7200))?;
        db.update_last_pong(&node.id, now - Duration::from_secs(n % 3600))?;
    }
    let after = resident_bytes();
    assert_eq!(db.len() as u64, nodes);
    let per_node = (after - before) as f64 / nodes as f64;
    let record = std::mem::size_of::<Node>();
    if with_seeds {
        // One seed query: its first call builds the subnet groups, which stay.
        let seeds = db.seeds().nodes(30);
        assert_eq!(seeds.len(), 30);
        drop(seeds);
        let with_groups = resident_bytes();
        let per_node_after = (with_groups - before) as f64 / nodes as f64;
        let layout = if one_per_subnet {
            "one_per_24"
        } else {
            "256_per_24"
        };
        println!(
            "{nodes} nodes ({layout}): {per_node:.1} bytes per node before the first seed \
             query, {per_node_after:.1} after it ({:.1} more for the subnet groups)",
            per_node_after - per_node
        );
        println!(
            "{{\"id\":\"memory/seeds_{layout}\",\"bytes_per_node\":{per_node:.1},\"bytes_per_node_after\":{per_node_after:.1},\"growth\":{:.1},\"nodes\":{nodes}}}",
            per_node_after - per_node
        );
        return Ok(());
    }
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
