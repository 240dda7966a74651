//! A realistic demo database.

use std::collections::BTreeMap;
use std::fs;
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::time::{Duration, SystemTime};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::inspect::Progress;
use peerlog::{Error, Event, EventKind, Node, NodeDb, NodeId, Options};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use crate::args::DemoArgs;
use crate::error::{CliError, Failure};
use crate::parse::parse_self;
use crate::parse::DEMO_MAX_NODES;
use crate::plural::count;
use crate::progress::{self, Meter};
use crate::time::{iso8601, storable_range_text};

/// Share of demo nodes that are modern: a signed record (a real secp256k1 key) and liveness
/// per IP, as discv5 and EIP-868 nodes keep them; the others are endpoints with per-id
/// liveness, as the original discovery database kept them.
const SIGNED_SHARE: f64 = 0.5;

/// What to put into a demo database.
#[derive(Clone, Debug)]
pub struct DemoSpec {
    /// Nodes to discover.
    pub nodes: u64,
    /// Days of simulated history, ending now.
    pub days: u64,
    /// Seed of the random generator: the same seed gives the same nodes and times.
    pub seed: u64,
    /// Protocol version of the database.
    pub protocol_version: u64,
    /// The local node's id.
    pub self_id: NodeId,
}

/// What the demo wrote.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    /// Events written, by kind.
    pub events_by_kind: BTreeMap<EventKind, u64>,
    /// Nodes with a record at the end.
    pub nodes: usize,
}

struct DemoWriter<'a> {
    db: &'a NodeDb,
    rng: StdRng,
    now: SystemTime,
    counts: BTreeMap<EventKind, u64>,
}

/// A modern node: its key, its current record and the IP its liveness is kept for.
struct Signed {
    key: CombinedKey,
    record: Enr<CombinedKey>,
}

impl DemoWriter<'_> {
    fn count(&mut self, kind: EventKind) {
        *self.counts.entry(kind).or_default() += 1;
    }

    fn write(&mut self, event: Event) -> Result<(), Error> {
        self.count(event.kind());
        match event {
            Event::NodeUpdated(node) => self.db.update_node(&node),
            Event::Ping { id, at } => self.db.update_last_ping(&id, at),
            Event::Pong { id, at } => self.db.update_last_pong(&id, at),
            Event::FindFails { id, fails } => self.db.update_find_fails(&id, fails),
            Event::PingFrom { id, ip, at } => self.db.update_last_ping_from(&id, ip, at),
            Event::PongFrom { id, ip, at } => self.db.update_last_pong_from(&id, ip, at),
            Event::FindFailsAt { id, ip, fails } => self.db.update_find_fails_at(&id, ip, fails),
            Event::NodeDeleted { id } | Event::NodeExpired { id } => self.db.delete_node(&id),
            other => unreachable!("the demo writes no {} events", other.kind()),
        }
    }

    /// Stores a signed record of `endpoint` with sequence number `seq`, signed with `key`.
    fn sign(&mut self, key: CombinedKey, endpoint: &Node, seq: u64) -> Result<Signed, Error> {
        let mut builder = Enr::builder();
        match endpoint.ip {
            IpAddr::V4(v4) => builder.ip4(v4).udp4(endpoint.udp).tcp4(endpoint.tcp),
            IpAddr::V6(v6) => builder.ip6(v6).udp6(endpoint.udp).tcp6(endpoint.tcp),
        };
        let record = builder
            .seq(seq)
            .build(&key)
            .map_err(|e| Error::InvalidInput(format!("demo record: {e}")))?;
        self.count(EventKind::Record);
        self.db.update_record(&record)?;
        Ok(Signed { key, record })
    }

    /// A plausible endpoint: mostly IPv4, a quarter IPv6, mostly the default port.
    fn endpoint(&mut self, id: NodeId) -> Node {
        let rng = &mut self.rng;
        let ip = if rng.gen_bool(0.75) {
            IpAddr::V4(Ipv4Addr::new(
                rng.gen_range(1..224),
                rng.gen(),
                rng.gen(),
                rng.gen_range(1..255),
            ))
        } else {
            let [a, b, c, d]: [u16; 4] = rng.gen();
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8 + rng.gen_range(0..8),
                a,
                b,
                c,
                d,
                0,
                rng.gen_range(1..0xffff),
            ))
        };
        let tcp = if rng.gen_bool(0.8) {
            30303
        } else {
            rng.gen_range(30300..30400)
        };
        let udp = if rng.gen_bool(0.9) {
            tcp
        } else {
            rng.gen_range(30300..30400)
        };
        Node::new(id, ip, udp, tcp)
    }

    /// One node's life: discovered at a random moment, then rounds of ping and pong (or a
    /// failed findnode) hours apart, maybe a new endpoint, maybe a delete. A modern node has a
    /// signed record (a new seq when its endpoint changes) and liveness at its record's IP.
    fn node_life(&mut self, start: SystemTime, span: Duration) -> Result<(), Error> {
        let mut t = start + span.mul_f64(self.rng.gen::<f64>() * 0.9);
        let mut signed = None;
        let id = if self.rng.gen_bool(SIGNED_SHARE) {
            let key = loop {
                let mut secret: [u8; 32] = self.rng.gen();
                if let Ok(key) = CombinedKey::secp256k1_from_bytes(&mut secret) {
                    break key;
                }
            };
            // The id is the key's: known once the record is signed.
            let endpoint = self.endpoint(NodeId([0; 64]));
            let made = self.sign(key, &endpoint, 1)?;
            let id = NodeId::from_enr(&made.record)?;
            signed = Some(made);
            id
        } else {
            let id = NodeId(std::array::from_fn(|_| self.rng.gen()));
            let node = self.endpoint(id);
            self.write(Event::NodeUpdated(node))?;
            id
        };
        let (rounds, mut fails) = (self.rng.gen_range(1..=6), 0u32);
        for _ in 0..rounds {
            t += Duration::from_secs(self.rng.gen_range(600..18 * 3600));
            if t > self.now {
                break;
            }
            // A modern node's liveness is kept at the IP its record names.
            let ip = signed.as_ref().and_then(|s| {
                let record = &s.record;
                record
                    .ip4()
                    .map(IpAddr::V4)
                    .or(record.ip6().map(IpAddr::V6))
            });
            let answered = self.rng.gen_bool(0.8);
            let pong_at = t + Duration::from_millis(self.rng.gen_range(20..900));
            match ip {
                Some(ip) => {
                    self.write(Event::PingFrom { id, ip, at: t })?;
                    if answered {
                        self.write(Event::PongFrom {
                            id,
                            ip,
                            at: pong_at,
                        })?;
                    }
                }
                None => {
                    self.write(Event::Ping { id, at: t })?;
                    if answered {
                        self.write(Event::Pong { id, at: pong_at })?;
                    }
                }
            }
            let new_fails = if answered { 0 } else { fails + 1 };
            if new_fails != fails {
                fails = new_fails;
                match ip {
                    Some(ip) => self.write(Event::FindFailsAt { id, ip, fails })?,
                    None => self.write(Event::FindFails { id, fails })?,
                }
            }
            if self.rng.gen_bool(0.04) {
                let endpoint = self.endpoint(id);
                match signed.take() {
                    Some(Signed { key, record }) => {
                        signed = Some(self.sign(key, &endpoint, record.seq() + 1)?);
                    }
                    None => self.write(Event::NodeUpdated(endpoint))?,
                }
            }
        }
        if self.rng.gen_bool(0.03) {
            self.write(Event::NodeDeleted { id })?;
        }
        Ok(())
    }
}

/// Checks everything about a demo before anything is created: the simulated days, ending
/// `now`, must start and end within the times the log can store.
pub fn check(spec: &DemoSpec, now: SystemTime) -> Result<Span, String> {
    if spec.nodes > DEMO_MAX_NODES {
        return Err(format!(
            "--nodes {}: a demo writes at most {DEMO_MAX_NODES} nodes",
            spec.nodes
        ));
    }
    let storable = peerlog::storable_times();
    if !storable.contains(&now) {
        return Err(format!(
            "the clock says {}, outside the times the log can store ({})",
            iso8601(now),
            storable_range_text()
        ));
    }
    let max_days = now
        .duration_since(*storable.start())
        .map_or(0, |d| d.as_secs() / 86_400);
    let too_far = || {
        format!(
            "--days {}: the simulated history would start before the earliest time the log \
             can store (it stores {}); at most {max_days} days today",
            spec.days,
            storable_range_text()
        )
    };
    if spec.days == 0 {
        return Err("--days 0: a demo simulates at least 1 day".to_string());
    }
    let span = spec
        .days
        .checked_mul(86_400)
        .map(Duration::from_secs)
        .ok_or_else(too_far)?;
    let start = now.checked_sub(span).ok_or_else(too_far)?;
    if !storable.contains(&start) {
        return Err(too_far());
    }
    Ok(Span { start, len: span })
}

/// The simulated days: from `start`, `len` long.
#[derive(Clone, Copy, Debug)]
pub struct Span {
    start: SystemTime,
    len: Duration,
}

/// Creates a demo database in `dir`, which must not exist or be empty. Ping and pong times
/// carry the simulated days; the write time of each event is the real clock (the library
/// stamps it). Everything is checked before anything is created, and a demo that fails
/// halfway (a full disk) leaves the directory as it found it: absent, or empty.
/// `progress` reports nodes written; `closing` is called when the database is being closed.
pub fn demo(
    dir: &Path,
    spec: &DemoSpec,
    progress: Progress<'_>,
    closing: &dyn Fn(),
) -> Result<DemoReport, CliError> {
    let existed = match fs::metadata(dir) {
        Ok(meta) if !meta.is_dir() => {
            return Err(CliError::Usage(format!(
                "{}: not a directory; demo writes into a new or empty directory",
                dir.display()
            )))
        }
        Ok(_) => true,
        Err(_) => false,
    };
    if existed && fs::read_dir(dir).map_or(true, |mut entries| entries.next().is_some()) {
        return Err(CliError::NotEmpty(dir.to_path_buf()));
    }
    let now = SystemTime::now();
    let span = check(spec, now).map_err(CliError::Usage)?;
    let options = Options {
        // Keep the demo's history whole: no background compaction while it is written.
        compact_min_bytes: u64::MAX,
        // And every node it asks for, beyond the default bound of the store.
        max_nodes: usize::MAX,
        ..Options::default()
    };
    let db = match NodeDb::open_with(dir, spec.protocol_version, spec.self_id, options) {
        Ok(db) => db,
        Err(e) => {
            // Not ours to clean beyond the directory itself, if made here and still empty.
            if !existed {
                let _ = fs::remove_dir(dir);
            }
            return Err(e.into());
        }
    };
    let result = write_demo(db, spec, now, span, progress, closing);
    if result.is_err() {
        // Leave no half database behind. Only what this demo wrote is removed: the directory
        // was new, or empty, and the database's lock kept everyone else out until now.
        let _ = if existed {
            fs::read_dir(dir).and_then(|entries| {
                entries.flatten().try_for_each(|entry| {
                    let path = entry.path();
                    if path.is_dir() {
                        fs::remove_dir_all(path)
                    } else {
                        fs::remove_file(path)
                    }
                })
            })
        } else {
            fs::remove_dir_all(dir)
        };
    }
    result
}

/// Writes the demo into `db` and closes it (dropped, on an error).
fn write_demo(
    db: NodeDb,
    spec: &DemoSpec,
    now: SystemTime,
    span: Span,
    progress: Progress<'_>,
    closing: &dyn Fn(),
) -> Result<DemoReport, CliError> {
    let mut writer = DemoWriter {
        db: &db,
        rng: StdRng::seed_from_u64(spec.seed),
        now,
        counts: BTreeMap::new(),
    };
    progress(0, spec.nodes);
    for n in 1..=spec.nodes {
        writer.node_life(span.start, span.len)?;
        if n % 1024 == 0 {
            progress(n, spec.nodes);
        }
    }
    progress(spec.nodes, spec.nodes);
    let report = DemoReport {
        events_by_kind: writer.counts,
        nodes: db.len(),
    };
    closing();
    db.close()?;
    Ok(report)
}

/// Runs `peerlog demo`: writes the database with a progress bar, then says what it wrote.
pub fn run(args: DemoArgs, out: &mut impl Write) -> Result<(), Failure> {
    let spec = DemoSpec {
        nodes: args.nodes,
        days: args.days,
        seed: args.seed,
        protocol_version: args.protocol_version,
        self_id: parse_self(args.self_id.as_deref())?.unwrap_or(NodeId([0; 64])),
    };
    print(&args.dir, &spec, out)
}

fn print(dir: &Path, spec: &DemoSpec, out: &mut impl Write) -> Result<(), Failure> {
    let started = std::time::Instant::now();
    let meter = Meter::bar("writing");
    let report = {
        let writing = meter.step("writing", progress::Span::percent(0, 97));
        let closing = || meter.begin("closing", progress::Span::percent(97, 100));
        demo(dir, spec, &writing, &closing)?
    };
    meter.finish();
    let events: u64 = report.events_by_kind.values().sum();
    let by_kind: Vec<_> = report
        .events_by_kind
        .iter()
        .map(|(k, v)| format!("{k} {v}"))
        .collect();
    // No kinds to list for an empty database.
    let by_kind = if by_kind.is_empty() {
        String::new()
    } else {
        format!(" ({})", by_kind.join(", "))
    };
    writeln!(
        out,
        "wrote {}{by_kind} over {} simulated {} in {:.2?}",
        count(events, "event"),
        spec.days,
        if spec.days == 1 { "day" } else { "days" },
        started.elapsed()
    )?;
    writeln!(
        out,
        "{} in {}",
        count(report.nodes as u64, "node"),
        dir.display()
    )?;
    writeln!(out, "try: peerlog stats {}", dir.display())?;
    Ok(())
}
