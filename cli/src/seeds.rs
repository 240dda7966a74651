//! `peerlog seeds`: the peers a node would start from, in the format of a client's peer file.
//!
//! Read-only, like `dump`: the log is read without the lock, the peers that could be seeds
//! (a fresh pong) are loaded into an in-memory `NodeDb`, and the library's seed query picks
//! among them, so the command gives exactly what an embedding node would get.

use std::io::Write;
use std::path::Path;
use std::time::{Duration, SystemTime};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::inspect;
use peerlog::{Node, NodeDb, NodeId, PeerState};
use serde_json::json;

use crate::args::SeedsArgs;
use crate::error::Failure;
use crate::import::{self, PeerFormat};
use crate::parse::parse_self;
use crate::progress::{Meter, Span};
use crate::render::ordered_object;
use crate::time::duration_words;

/// What `peerlog seeds` is asked for.
pub struct SeedSpec {
    /// How many seeds at most.
    pub n: usize,
    /// Only peers with a pong at most this old.
    pub max_age: Duration,
    /// Only peers whose signed record holds this key (`eth2`, `opstack`, ...).
    pub key: Option<String>,
    /// At most this many seeds from one subnet.
    pub per_subnet: usize,
    /// Prefix lengths of a subnet, IPv4 and IPv6.
    pub subnet_bits: (u8, u8),
    /// The local node, never a seed.
    pub self_id: NodeId,
}

/// The seeds, as signed records or as endpoints, depending on what the output needs.
enum Seeds {
    Records(Vec<Enr<CombinedKey>>),
    Nodes(Vec<Node>),
}

/// Runs `peerlog seeds`.
pub fn command(args: SeedsArgs, out: &mut impl Write) -> Result<(), Failure> {
    let spec = SeedSpec {
        n: usize::try_from(args.n).unwrap_or(usize::MAX),
        max_age: args.max_age,
        key: args.key,
        per_subnet: args.per_subnet,
        subnet_bits: args.subnet_bits,
        self_id: parse_self(args.self_id.as_deref())?.unwrap_or(NodeId([0; 64])),
    };
    run(&args.dir, &spec, args.format, args.json, out)
}

/// Prints the seeds `spec` asks for.
pub fn run(
    dir: &Path,
    spec: &SeedSpec,
    format: PeerFormat,
    json: bool,
    out: &mut impl Write,
) -> Result<(), Failure> {
    let meter = Meter::bar("reading");
    let db = {
        let reading = meter.step("reading", Span::percent(0, 90));
        let state = inspect::state(dir, &reading)?;
        candidates(&state.peers, spec)?
    };
    meter.finish();
    let records_only = format.holds_records() && !json;
    let seeds = pick(&db, spec, records_only);
    let found = match &seeds {
        Seeds::Records(r) => r.len(),
        Seeds::Nodes(n) => n.len(),
    };
    if found == 0 {
        let signed = if records_only {
            " a signed record and"
        } else {
            ""
        };
        eprintln!(
            "peerlog: note: no seeds: no peer has{signed} a pong within {} (imported peers \
             have one only with --pong-at)",
            duration_words(spec.max_age)
        );
    }
    match seeds {
        Seeds::Records(records) => import::write_records(&records, format, out)?,
        Seeds::Nodes(nodes) if json => {
            for node in nodes {
                let record = db.record::<CombinedKey>(&node.id);
                let line = ordered_object([
                    ("id", json!(node.id.to_string()).to_string()),
                    ("enode", json!(node.to_string()).to_string()),
                    ("ip", json!(node.ip.to_string()).to_string()),
                    ("udp", json!(node.udp).to_string()),
                    ("tcp", json!(node.tcp).to_string()),
                    (
                        "record_seq",
                        json!(record.as_ref().map(Enr::seq)).to_string(),
                    ),
                    (
                        "enr",
                        json!(record.as_ref().map(Enr::to_base64)).to_string(),
                    ),
                ]);
                writeln!(out, "{line}")?;
            }
        }
        Seeds::Nodes(nodes) => import::write_nodes(&nodes, format, out)?,
    }
    Ok(())
}

/// The seed query, in one place: the library's `seeds()` with the command's options.
fn pick(db: &NodeDb, spec: &SeedSpec, records_only: bool) -> Seeds {
    let mut query = db
        .seeds()
        .max_age(spec.max_age)
        .per_subnet(spec.per_subnet)
        .subnet_bits(spec.subnet_bits.0, spec.subnet_bits.1);
    if let Some(key) = &spec.key {
        query = query.with_key(key);
    }
    if records_only {
        Seeds::Records(query.records::<CombinedKey>(spec.n))
    } else {
        Seeds::Nodes(query.nodes(spec.n))
    }
}

/// An in-memory database of the peers that can be seeds: an endpoint, not the local node, a
/// pong within `max_age` (to no IP or at any IP: the query applies the exact rule). Each
/// keeps its record and every pong; the store is unbounded, so that no candidate is evicted.
fn candidates(peers: &[PeerState], spec: &SeedSpec) -> Result<NodeDb, peerlog::Error> {
    let oldest = SystemTime::now()
        .checked_sub(spec.max_age)
        .unwrap_or(SystemTime::UNIX_EPOCH);
    let unbounded = peerlog::Options {
        max_nodes: usize::MAX,
        ..peerlog::Options::default()
    };
    let db = NodeDb::in_memory_with(spec.self_id, unbounded)?;
    for peer in peers {
        let Some(node) = &peer.node else { continue };
        let fresh = |t: Option<SystemTime>| t.is_some_and(|t| t >= oldest);
        if peer.id == spec.self_id
            || !(fresh(peer.last_pong) || peer.ips.iter().any(|l| fresh(l.last_pong)))
        {
            continue;
        }
        match &peer.record {
            Some(record) => {
                let Ok(record) = record.decode::<CombinedKey>() else {
                    continue;
                };
                db.update_record(&record)?;
            }
            None if spec.key.is_some() => continue,
            None => db.update_node(node)?,
        }
        if let Some(t) = peer.last_pong {
            db.update_last_pong(&peer.id, t)?;
        }
        for slot in &peer.ips {
            if let Some(t) = slot.last_pong {
                db.update_last_pong_from(&peer.id, slot.ip, t)?;
            }
        }
    }
    Ok(db)
}
