//! Exhaustive damage tests through the public API (docs/DAMAGE.md tabulates the outcomes).
//!
//! One pristine log is written once: every event kind (unsigned and signed node records,
//! pings, pongs and fails to no particular IP and per IP, deletes, expiries of nodes and of
//! IP slots, the local seq), 4 KiB segments, several of them; its last segment holds a frame
//! of every kind, the longest record frame among them. Each case copies it, damages the copy,
//! opens it, and checks that
//! - `open` succeeds, or fails with the documented error and leaves the files as they were;
//! - the state is exactly the model (the shared one, `peerlog_checks::model`) built from the
//!   records that survive (so no value of a
//!   damaged record is ever returned, and nothing intact is lost): every id's record, signed
//!   record, liveness to no particular IP and at each IP, the local seq and `len()`;
//! - `recovery().problems` reports the damage: kind, file, offset and lost sequence numbers.
//!
//! The copies live on a tmpfs where there is one (`common::scratch_dir`): these tests open
//! and close thousands of databases and test no durability.

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use common::{record_id, signed_record_with, stored_record, RecordShape};
use peerlog::testing::{list_dir, segment_file_name, ReplayPlan};
use peerlog::testing::{salt_seed, SegmentHeader, HEADER_LEN};
use peerlog::testing::{ScanItem, SegmentScanner};
use peerlog::{DamageKind, Error, Event, EventKind, Node, NodeDb, NodeId, Options};
use peerlog::{Subnet, MAX_IPS_PER_ID};
use peerlog_checks::model;

const VERSION: u64 = 3;

/// Small segments, each replayed with a checksum helper thread as large ones are (by default
/// only segments of 256 KiB or more get one).
fn opts() -> Options {
    peerlog::testing::set_check_ahead_from(0);
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

fn id(n: u8) -> NodeId {
    NodeId([n; 64])
}

/// The database's own id: its record is dropped by expiration.
fn me() -> NodeId {
    id(0xF0)
}

/// Rounds of writes before the tail: each writes every id's records again (the signed ones
/// with a new seq) and deletes one id.
const ROUNDS: u16 = 2;

/// Nodes with signed records: `record_id(1..=RECORD_NODES)`.
const RECORD_NODES: u64 = 4;

/// Every id the log mentions (plus one it does not). Computed once: the id of a signed
/// record is its public key, decompressed.
fn ids() -> &'static [NodeId] {
    static IDS: OnceLock<Vec<NodeId>> = OnceLock::new();
    IDS.get_or_init(|| {
        (1..=13)
            .map(id)
            .chain((1..=RECORD_NODES).map(record_id))
            .chain([me(), id(0xEE)])
            .collect()
    })
}

/// The per-IP addresses of node `n`: an IPv4 one, its IPv4-mapped form (the same IP to the
/// database) and an IPv6 one.
fn ip4(n: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 9, 0, n))
}

fn mapped(n: u8) -> IpAddr {
    IpAddr::V6(Ipv4Addr::new(10, 9, 0, n).to_ipv6_mapped())
}

/// The IPs node 12 is crowded with.
fn crowd_ip(k: u8) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(10, 8, 0, k))
}

fn ip6(n: u8) -> IpAddr {
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 9, 0, 0, 0, 0, n.into()))
}

/// Local seqs the test stores are below this; `local_seq()` without a stored one is the
/// clock in milliseconds, far above.
const CLOCK_MS_FLOOR: u64 = 1_000_000_000_000;

/// One intact record of the pristine log.
#[derive(Clone, Debug)]
struct Rec {
    seq: u64,
    /// Index of the segment in replay order.
    segment: usize,
    offset: usize,
    len: usize,
    /// Bytes covered by the checksum (frame header and payload, not the padding).
    covered: usize,
    event: Event,
}

struct Pristine {
    _dir: tempfile::TempDir,
    path: PathBuf,
    /// Segment file names in replay order.
    segments: Vec<String>,
    records: Vec<Rec>,
}

fn far_future(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(4_102_444_800 + secs)
}

/// Long past: stale under the default expiration of a day.
fn long_past(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000 + secs)
}

/// The database and the events written so far, which the log must hold in that order.
struct Writer {
    db: NodeDb,
    path: PathBuf,
    written: Vec<Event>,
}

impl Writer {
    fn node(&mut self, node: Node) {
        self.db.update_node(&node).unwrap();
        self.written.push(Event::NodeUpdated(node));
    }

    fn record(&mut self, n: u64, seq: u64, shape: RecordShape) {
        let record = signed_record_with(n, seq, shape);
        assert!(self.db.update_record(&record).unwrap());
        self.written.push(Event::Record(stored_record(&record)));
    }

    fn ping(&mut self, id: NodeId, at: SystemTime) {
        self.db.update_last_ping(&id, at).unwrap();
        self.written.push(Event::Ping { id, at });
    }

    fn pong(&mut self, id: NodeId, at: SystemTime) {
        self.db.update_last_pong(&id, at).unwrap();
        self.written.push(Event::Pong { id, at });
    }

    fn fails(&mut self, id: NodeId, fails: u32) {
        self.db.update_find_fails(&id, fails).unwrap();
        self.written.push(Event::FindFails { id, fails });
    }

    /// The per-IP writes: the log holds the IP in canonical form (IPv4 for a mapped one).
    fn ping_from(&mut self, id: NodeId, ip: IpAddr, at: SystemTime) {
        self.db.update_last_ping_from(&id, ip, at).unwrap();
        let ip = ip.to_canonical();
        self.written.push(Event::PingFrom { id, ip, at });
    }

    fn pong_from(&mut self, id: NodeId, ip: IpAddr, at: SystemTime) {
        self.db.update_last_pong_from(&id, ip, at).unwrap();
        let ip = ip.to_canonical();
        self.written.push(Event::PongFrom { id, ip, at });
    }

    fn fails_at(&mut self, id: NodeId, ip: IpAddr, fails: u32) {
        self.db.update_find_fails_at(&id, ip, fails).unwrap();
        let ip = ip.to_canonical();
        self.written.push(Event::FindFailsAt { id, ip, fails });
    }

    fn local_seq(&mut self, seq: u64) {
        self.db.store_local_seq(seq).unwrap();
        self.written.push(Event::LocalSeq { seq });
    }

    fn delete(&mut self, id: NodeId) {
        self.db.delete_node(&id).unwrap();
        self.written.push(Event::NodeDeleted { id });
    }

    /// Expiry, expected to write exactly `expired` and to drop `nodes` node records.
    fn expire(&mut self, nodes: usize, expired: &[Event]) {
        assert_eq!(self.db.expire_nodes().unwrap(), nodes);
        self.written.extend_from_slice(expired);
    }

    /// Reopens the database bounded to the ids it holds, and writes a node of a new id: the
    /// log holds the eviction the bound's rule picks, then the node. Reopens it unbounded.
    fn evicting_node(&mut self, node: Node) {
        let db = std::mem::replace(&mut self.db, NodeDb::in_memory(me()));
        db.close().unwrap();
        let held = {
            let db = NodeDb::open_with(&self.path, VERSION, me(), opts()).unwrap();
            db.peers()
        };
        let bounded = Options {
            max_nodes: held.len(),
            ..opts()
        };
        self.db = NodeDb::open_with(&self.path, VERSION, me(), bounded).unwrap();
        // The rule: the id never proven by a pong whose newest event is oldest.
        let proven = |p: &peerlog::PeerState| {
            p.last_pong.is_some() || p.ips.iter().any(|l| l.last_pong.is_some())
        };
        let subnet = |p: &peerlog::PeerState| p.node.as_ref().map(|n| Subnet::of(n.ip, 24, 48));
        let victim = held
            .iter()
            .filter(|p| !proven(p))
            .min_by_key(|p| (p.last_written, subnet(p), p.id))
            .expect("the log holds an id nothing proved");
        self.written.push(Event::Evicted {
            id: victim.id,
            subnet: subnet(victim),
        });
        self.node(node);
        // Unbounded again, for the writes after it.
        let db = std::mem::replace(&mut self.db, NodeDb::in_memory(me()));
        db.close().unwrap();
        self.db = NodeDb::open_with(&self.path, VERSION, me(), opts()).unwrap();
    }

    fn segment_files(&self) -> usize {
        fs::read_dir(&self.path)
            .unwrap()
            .filter(|e| e.as_ref().unwrap().path().extension() == Some("seg".as_ref()))
            .count()
    }
}

/// Writes the pristine log once and reads back where every record is.
fn pristine() -> &'static Pristine {
    static PRISTINE: OnceLock<Pristine> = OnceLock::new();
    PRISTINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = NodeDb::open_with(&path, VERSION, me(), opts()).unwrap();
        let mut w = Writer {
            db,
            path: path.clone(),
            written: Vec::new(),
        };
        let shapes = [
            RecordShape::V4,
            RecordShape::V6,
            RecordShape::Both,
            RecordShape::NoIp,
        ];
        for round in 0..ROUNDS {
            for n in 1..=12u8 {
                let ip = if n % 3 == 0 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, round, n.into()))
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, round as u8, 0, n))
                };
                w.node(Node::new(id(n), ip, 30300 + round, 30303));
                let at = far_future(u64::from(round) * 100 + u64::from(n));
                if n % 2 == 0 {
                    w.pong(id(n), at);
                } else {
                    w.ping(id(n), far_future(u64::from(n)));
                }
                if n % 4 == 1 {
                    w.fails(id(n), u32::from(round) + u32::from(n));
                }
                // Per IP: an IPv4 ping, a pong from the IPv4-mapped form, IPv6 fails.
                match n % 3 {
                    0 => w.ping_from(id(n), ip4(n), at),
                    1 => w.pong_from(id(n), mapped(n), at),
                    _ => w.fails_at(id(n), ip6(n), u32::from(round) + u32::from(n)),
                }
            }
            // Signed records: a new seq every round, shapes in turn (IPv4, IPv6 only, both,
            // none), each with a pong from its IPv4 address or, without one, to no IP.
            for r in 1..=RECORD_NODES {
                let shape = shapes[(r as usize + usize::from(round)) % shapes.len()];
                w.record(r, u64::from(round) + 1, shape);
                let at = far_future(u64::from(round) * 10 + r);
                match shape {
                    RecordShape::NoIp | RecordShape::V6 => w.pong(record_id(r), at),
                    _ => w.pong_from(record_id(r), common::record_ip4(r).into(), at),
                }
            }
            if round + 1 == ROUNDS {
                // Neither an older seq nor an unsigned record replaces a signed one: nothing
                // is written.
                let older = signed_record_with(1, 1, RecordShape::V4);
                assert!(!w.db.update_record(&older).unwrap());
                let unsigned = Node::new(record_id(1), ip4(1), 1, 1);
                w.db.update_node(&unsigned).unwrap();
            }
            w.local_seq(100 + u64::from(round));
            w.delete(id(5 + round as u8));
        }
        // Node 12 holds the most IPs an id may (its IPv4 ping slot and 15 pongs): the tail's
        // next IP takes the place of the stalest.
        for k in 1..MAX_IPS_PER_ID as u8 {
            w.pong_from(id(12), crowd_ip(k), far_future(k.into()));
        }
        // Fill the segment until the next write rotates: the tail below then starts a
        // segment of its own, which it fits in.
        let before = w.segment_files();
        for k in 0.. {
            w.ping(id(2), far_future(1000 + k));
            if w.segment_files() > before {
                break;
            }
        }
        // The tail, in the last segment: a frame of every kind. The longest record frame.
        w.record(1, 9, RecordShape::Large);
        // The own record, which expiration drops whatever its age.
        w.node(Node::new(me(), IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 1));
        // A stale pong at node 4's IP (written as IPv4, earlier from its mapped form): its
        // slot expires, the node stays (fresh pongs elsewhere).
        w.pong_from(id(4), ip4(4), long_past(4));
        w.ping_from(id(6), ip6(6), far_future(6));
        w.fails_at(id(2), mapped(2), 7);
        w.fails(id(9), 3);
        w.local_seq(200);
        // Drops the stale IP slot and this node's record, nothing else.
        w.expire(
            1,
            &[
                Event::IpExpired {
                    id: id(4),
                    ip: ip4(4),
                },
                Event::NodeExpired { id: me() },
            ],
        );
        w.delete(id(1));
        // An IP beyond the most an id holds evicts the stalest slot (the oldest pong).
        w.db.update_last_pong_from(&id(12), crowd_ip(16), far_future(16))
            .unwrap();
        w.written.push(Event::IpEvicted {
            id: id(12),
            ip: crowd_ip(1),
        });
        w.written.push(Event::PongFrom {
            id: id(12),
            ip: crowd_ip(16),
            at: far_future(16),
        });
        // A new id in a full store evicts one.
        w.evicting_node(Node::new(id(13), ip4(13), 1, 1));
        w.ping(id(3), far_future(7));
        w.pong(id(10), far_future(5));
        // The last three records are of different kinds.
        w.record(2, 9, RecordShape::NoIp);
        w.pong_from(id(11), ip6(11), far_future(11));
        w.local_seq(201);
        let written = std::mem::take(&mut w.written);
        w.db.close().unwrap();

        // Where the records are, in replay order.
        let plan = ReplayPlan::new(
            list_dir(&path, peerlog::testing::Listing::Strict)
                .unwrap()
                .segments,
        );
        assert!(plan.live.len() >= 3, "want at least three segments");
        let mut records = Vec::new();
        let mut segments = Vec::new();
        for (i, segment) in plan.live.iter().enumerate() {
            segments.push(
                segment
                    .path
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned(),
            );
            let bytes = fs::read(&segment.path).unwrap();
            for item in SegmentScanner::new(&bytes, salt_seed(segment.header.salt)) {
                let ScanItem::Record {
                    offset,
                    len,
                    record,
                } = item
                else {
                    panic!("damage in the pristine log");
                };
                let payload =
                    u16::from_le_bytes([bytes[offset as usize + 12], bytes[offset as usize + 13]]);
                records.push(Rec {
                    seq: record.seq,
                    segment: i,
                    offset: offset as usize,
                    len: len as usize,
                    covered: 16 + payload as usize,
                    event: record.event,
                });
            }
        }
        let events: Vec<Event> = records.iter().map(|r| r.event.clone()).collect();
        // Expiry writes in the index's order: compare that group as a set.
        let group = |events: &[Event]| -> Vec<String> {
            let mut expiries: Vec<String> = events
                .iter()
                .filter(|e| matches!(e.kind(), EventKind::Expire | EventKind::IpExpire))
                .map(|e| format!("{e:?}"))
                .collect();
            expiries.sort();
            expiries
        };
        let others = |events: &[Event]| -> Vec<Event> {
            events
                .iter()
                .filter(|e| !matches!(e.kind(), EventKind::Expire | EventKind::IpExpire))
                .cloned()
                .collect()
        };
        let (logged, wanted) = (others(&events), others(&written));
        if let Some(i) =
            (0..logged.len().max(wanted.len())).find(|&i| logged.get(i) != wanted.get(i))
        {
            panic!(
                "the log differs from the events written at {i}: {:?} against {:?}",
                logged.get(i),
                wanted.get(i)
            );
        }
        assert_eq!(logged, wanted, "the log holds exactly the events written");
        assert_eq!(group(&events), group(&written), "the expiries written");
        for (i, r) in records.iter().enumerate() {
            assert_eq!(r.seq, i as u64 + 1);
        }
        Pristine {
            _dir: dir,
            path,
            segments,
            records,
        }
    })
}

/// What the API says about one id (the shared model's view: record, signed record,
/// liveness to no IP and at every IP the pristine log names for it), and the IPs it lists slots at
/// (sorted; a slot with no value is listed too).
type Seen = (model::Observed, Vec<IpAddr>);

/// What the API says: per id of [`ids`], then `len()` and the stored local seq.
type Observed = (Vec<Seen>, usize, Option<u64>);

/// Per id, every IP (canonical) a per-IP record of the pristine log names for it: where its
/// liveness is read.
fn probes(id: &NodeId) -> &'static [IpAddr] {
    static PROBES: OnceLock<BTreeMap<NodeId, Vec<IpAddr>>> = OnceLock::new();
    let probes = PROBES.get_or_init(|| {
        let mut ips = BTreeMap::<NodeId, std::collections::BTreeSet<IpAddr>>::new();
        for r in &pristine().records {
            match &r.event {
                Event::PingFrom { id, ip, .. }
                | Event::PongFrom { id, ip, .. }
                | Event::FindFailsAt { id, ip, .. }
                | Event::IpExpired { id, ip }
                | Event::IpEvicted { id, ip } => {
                    ips.entry(*id).or_default().insert(ip.to_canonical());
                }
                _ => {}
            }
        }
        ips.into_iter()
            .map(|(id, ips)| (id, ips.into_iter().collect()))
            .collect()
    });
    probes.get(id).map_or(&[], Vec::as_slice)
}

/// The state the records kept by `keep` amount to: the shared model of peer state, applied
/// as replay applies them.
fn model(records: &[Rec], keep: impl Fn(&Rec) -> bool) -> Observed {
    let mut state = model::Model::default();
    for r in records.iter().filter(|r| keep(r)) {
        state.apply(&r.event);
    }
    let seen = ids()
        .iter()
        .map(|id| {
            let entry = state.entry(id);
            (
                entry.observed(probes(id)),
                entry.ips.keys().copied().collect(),
            )
        })
        .collect();
    (seen, state.nodes(), state.local_seq)
}

fn observe(db: &NodeDb) -> Observed {
    let seen = ids()
        .iter()
        .map(|id| {
            let mut listed: Vec<IpAddr> = db
                .peer(id)
                .map(|peer| peer.ips.iter().map(|s| s.ip).collect())
                .unwrap_or_default();
            listed.sort();
            (model::observe(db, id, probes(id)), listed)
        })
        .collect();
    let local_seq = Some(db.local_seq()).filter(|&s| s < CLOCK_MS_FLOOR);
    (seen, db.len(), local_seq)
}

/// A fresh copy of the pristine directory.
struct Case {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = common::scratch_dir();
        let path = dir.path().join("db");
        fs::create_dir(&path).unwrap();
        for entry in fs::read_dir(&pristine().path).unwrap() {
            let entry = entry.unwrap();
            fs::copy(entry.path(), path.join(entry.file_name())).unwrap();
        }
        Case { _dir: dir, path }
    }

    fn segment(&self, i: usize) -> PathBuf {
        self.path.join(&pristine().segments[i])
    }

    fn last(&self) -> PathBuf {
        self.segment(pristine().segments.len() - 1)
    }

    fn edit(&self, path: &Path, f: impl FnOnce(&mut Vec<u8>)) {
        let mut bytes = fs::read(path).unwrap();
        f(&mut bytes);
        fs::write(path, bytes).unwrap();
    }

    fn open(&self) -> Result<NodeDb, Error> {
        NodeDb::open_with(&self.path, VERSION, me(), opts())
    }

    fn contents(&self) -> Vec<(String, Vec<u8>)> {
        let mut out: Vec<_> = fs::read_dir(&self.path)
            .unwrap()
            .map(|e| e.unwrap())
            .filter(|e| e.file_name() != "LOCK")
            .map(|e| {
                (
                    e.file_name().to_string_lossy().into_owned(),
                    fs::read(e.path()).unwrap(),
                )
            })
            .collect();
        out.sort();
        out
    }

    /// Opens the damaged copy: the state must be the model of the surviving records. Returns
    /// the database for the caller to check the problems.
    fn open_expecting(&self, what: &str, keep: impl Fn(&Rec) -> bool) -> NodeDb {
        let db = self
            .open()
            .unwrap_or_else(|e| panic!("{what}: open failed: {e}"));
        assert_eq!(
            observe(&db),
            model(&pristine().records, keep),
            "{what}: state differs from the surviving records"
        );
        db
    }

    /// A write after recovery continues the log and survives a reopen with everything else.
    fn write_survives(&self, db: NodeDb, what: &str) {
        let before = observe(&db);
        // Damage that is not at the end of the log stays (and is reported again); a torn tail
        // was cut back by the first open.
        let mut still: Vec<_> = problems(&db);
        still.retain(|p| p.0 != DamageKind::TornTail);
        let fresh = Node::new(id(0xEE), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 9, 9);
        db.update_node(&fresh).unwrap();
        db.close().unwrap();
        let db = self.open().unwrap();
        assert_eq!(problems(&db), still, "{what}: problems after the reopen");
        assert_eq!(db.node(&fresh.id), Some(fresh), "{what}: write lost");
        let (mut after, n, seq) = observe(&db);
        let (mut expected, m, expected_seq) = before;
        let fresh_slot = ids().iter().position(|i| *i == id(0xEE)).unwrap();
        after[fresh_slot] = Default::default();
        expected[fresh_slot] = Default::default();
        assert_eq!(
            (after, n, seq),
            (expected, m + 1, expected_seq),
            "{what}: state changed"
        );
        db.close().unwrap();
    }

    /// Opening must fail with an error naming the damaged file, and change nothing.
    fn refused(&self, what: &str) -> Error {
        let before = self.contents();
        let err = match self.open() {
            Ok(_) => panic!("{what}: open succeeded"),
            Err(e) => e,
        };
        assert_eq!(
            self.contents(),
            before,
            "{what}: a refused open changed files"
        );
        err
    }
}

/// A reported problem: kind, file name, offset and lost sequence numbers.
type Reported = (DamageKind, String, u64, Option<(u64, u64)>);

fn problems(db: &NodeDb) -> Vec<Reported> {
    db.recovery()
        .problems
        .iter()
        .map(|p| {
            (
                p.kind,
                p.path.file_name().unwrap().to_string_lossy().into_owned(),
                p.offset,
                p.lost,
            )
        })
        .collect()
}

/// Runs `check` on every item from a few threads: each case waits mostly on the fsync of its
/// close, so this keeps the exhaustive tests fast even on two cores.
fn for_each_parallel<T: Sync>(items: &[T], check: impl Fn(&T) + Sync) {
    let threads = 4;
    let chunk = items.len().div_ceil(threads).max(1);
    std::thread::scope(|scope| {
        for part in items.chunks(chunk) {
            let check = &check;
            scope.spawn(move || part.iter().for_each(check));
        }
    });
}

fn last_records(n: usize) -> Vec<Rec> {
    let p = pristine();
    let last = p.segments.len() - 1;
    let in_last: Vec<Rec> = p
        .records
        .iter()
        .filter(|r| r.segment == last)
        .cloned()
        .collect();
    assert!(in_last.len() >= n);
    in_last[in_last.len() - n..].to_vec()
}

/// One frame of every kind in the last segment: per kind the longest (the padded signed
/// record for records), the later one of equal lengths (so the log's last record, a local
/// seq, is among them). In log order.
fn frame_of_every_kind() -> Vec<Rec> {
    let p = pristine();
    let last = p.segments.len() - 1;
    let mut chosen: BTreeMap<EventKind, &Rec> = BTreeMap::new();
    for r in p.records.iter().filter(|r| r.segment == last) {
        let kind = r.event.kind();
        if chosen.get(&kind).is_none_or(|c| r.len >= c.len) {
            chosen.insert(kind, r);
        }
    }
    let mut frames: Vec<Rec> = chosen.into_values().cloned().collect();
    frames.sort_by_key(|r| r.seq);
    frames
}

#[test]
fn pristine_log_has_every_event_kind_and_reopens_cleanly() {
    let p = pristine();
    let kinds: std::collections::BTreeSet<EventKind> =
        p.records.iter().map(|r| r.event.kind()).collect();
    // Every kind but a loss, which only damage (that this log must not have) makes: its frames
    // are damaged the same ways in tests/losses.rs.
    let expected: Vec<EventKind> = EventKind::ALL
        .into_iter()
        .filter(|&k| k != EventKind::Loss)
        .collect();
    assert_eq!(kinds.into_iter().collect::<Vec<_>>(), expected);
    let frames = frame_of_every_kind();
    assert_eq!(
        frames.len(),
        expected.len(),
        "the last segment lacks a kind"
    );
    let longest = frames.iter().map(|r| r.len).max().unwrap();
    assert!(
        longest > 350,
        "the padded record frame is {longest} bytes: not near the limit"
    );
    assert_eq!(
        frames.last().unwrap().seq,
        p.records.last().unwrap().seq,
        "the log's last record is among the frames flipped"
    );
    let names: Vec<&str> = last_records(3)
        .iter()
        .map(|r| r.event.kind().name())
        .collect();
    assert_eq!(names, ["record", "pong_from", "local_seq"]);
    let case = Case::new();
    let db = case.open_expecting("pristine", |_| true);
    assert!(db.recovery().problems.is_empty());
    let (seen, nodes, local_seq) = observe(&db);
    assert_eq!(local_seq, Some(201));
    assert!(nodes >= 10);
    assert!(
        seen.iter().filter(|(s, _)| s.record.is_some()).count() >= 3
            && seen
                .iter()
                .any(|(s, _)| s.record.is_some() && s.node.is_none())
            && seen
                .iter()
                .any(|(_, ips)| ips.iter().any(|ip| ip.is_ipv6()))
            && seen
                .iter()
                .any(|(_, ips)| ips.iter().any(|ip| ip.is_ipv4())),
        "the pristine state lacks signed records with and without IP or IP slots"
    );
    case.write_survives(db, "pristine");
}

#[test]
fn cut_at_every_offset_of_the_last_segment() {
    let p = pristine();
    let last = p.segments.len() - 1;
    let len = fs::metadata(p.path.join(&p.segments[last])).unwrap().len() as usize;
    let used = p.records.last().unwrap().offset + p.records.last().unwrap().len;
    // Every offset through the records and a little beyond; past that the file is zeros, and
    // one cut there (at the full length) stands for all.
    let cuts: Vec<usize> = (0..=(used + 64).min(len)).chain([len]).collect();
    for_each_parallel(&cuts, |&cut| {
        let what = format!("cut at {cut}");
        let case = Case::new();
        case.edit(&case.last(), |b| b.truncate(cut));
        if cut < HEADER_LEN {
            match case.refused(&what) {
                Error::DamagedHeader { path, .. } => assert_eq!(path, case.last(), "{what}"),
                e => panic!("{what}: unexpected error {e}"),
            }
            return;
        }
        let keep = |r: &Rec| r.segment < last || r.offset + r.len <= cut;
        let db = case.open_expecting(&what, keep);
        // The cut-off part of a frame is a torn tail, reported where the intact records end.
        let valid_end = p
            .records
            .iter()
            .filter(|r| r.segment == last && keep(r))
            .map(|r| r.offset + r.len)
            .max()
            .unwrap_or(HEADER_LEN);
        let partial = fs::read(p.path.join(&p.segments[last])).unwrap()[valid_end..cut]
            .iter()
            .any(|&b| b != 0);
        let expected = if partial {
            vec![(
                DamageKind::TornTail,
                p.segments[last].clone(),
                valid_end as u64,
                None,
            )]
        } else {
            vec![]
        };
        assert_eq!(problems(&db), expected, "{what}");
        case.write_survives(db, &what);
    });
}

#[test]
fn flip_every_bit_of_a_frame_of_every_kind() {
    let p = pristine();
    let last = p.segments.len() - 1;
    let last_seq = p.records.last().unwrap().seq;
    let frames = frame_of_every_kind();
    let flips: Vec<(usize, usize)> = (0..frames.len())
        .flat_map(|k| (0..frames[k].len * 8).map(move |bit| (k, bit)))
        .collect();
    for_each_parallel(&flips, |&(k, bit)| {
        let rec = &frames[k];
        let what = format!("record {} ({}) bit {bit}", rec.seq, rec.event.kind());
        let case = Case::new();
        case.edit(&case.last(), |b| b[rec.offset + bit / 8] ^= 1 << (bit % 8));
        if bit / 8 >= rec.covered {
            // The frame's zero padding is not covered by the checksum and not read.
            let db = case.open_expecting(&what, |_| true);
            assert_eq!(problems(&db), vec![], "{what}");
            return;
        }
        // Whatever the bit (in a length, a kind, an IP, a signed record's RLP), the frame is
        // damage: never another value, never another record.
        let db = case.open_expecting(&what, |r| r.seq != rec.seq);
        let expected = if rec.seq == last_seq {
            // The last record: damage at the end of the log is a torn tail; what it held
            // is unknown.
            (DamageKind::TornTail, rec.offset as u64, None)
        } else {
            (
                DamageKind::Damaged,
                rec.offset as u64,
                Some((rec.seq, rec.seq)),
            )
        };
        assert_eq!(
            problems(&db),
            vec![(expected.0, p.segments[last].clone(), expected.1, expected.2)],
            "{what}"
        );
        if bit % 61 == 0 {
            case.write_survives(db, &what);
        }
    });
}

#[test]
fn record_overwritten_with_zeros() {
    let p = pristine();
    let last = p.segments.len() - 1;
    let in_segment =
        |s: usize| -> Vec<&Rec> { p.records.iter().filter(|r| r.segment == s).collect() };

    // Inside a segment: skipped, reported with its sequence number.
    let victim = in_segment(0)[5];
    let case = Case::new();
    case.edit(&case.segment(0), |b| {
        b[victim.offset..victim.offset + victim.len].fill(0)
    });
    let db = case.open_expecting("zeroed record inside", |r| r.seq != victim.seq);
    assert_eq!(
        problems(&db),
        vec![(
            DamageKind::Damaged,
            p.segments[0].clone(),
            victim.offset as u64,
            Some((victim.seq, victim.seq))
        )]
    );
    case.write_survives(db, "zeroed record inside");

    // The last record of a sealed segment: the segment reads as ending early, and the gap
    // before the next segment's first sequence number is reported as missing.
    let victim = *in_segment(0).last().unwrap();
    let case = Case::new();
    case.edit(&case.segment(0), |b| {
        b[victim.offset..victim.offset + victim.len].fill(0)
    });
    let db = case.open_expecting("zeroed end of a sealed segment", |r| r.seq != victim.seq);
    assert_eq!(
        problems(&db),
        vec![(
            DamageKind::Missing,
            p.segments[1].clone(),
            HEADER_LEN as u64,
            Some((victim.seq, victim.seq))
        )]
    );

    // The last record of the log: indistinguishable from an append whose bytes never reached
    // the file (a preallocated tail reads as zeros), so it is silently absent.
    let victim = *in_segment(last).last().unwrap();
    let case = Case::new();
    case.edit(&case.last(), |b| {
        b[victim.offset..victim.offset + victim.len].fill(0)
    });
    let db = case.open_expecting("zeroed last record", |r| r.seq != victim.seq);
    assert_eq!(problems(&db), vec![]);
    case.write_survives(db, "zeroed last record");

    // A frame of every other kind inside the last segment: skipped, reported with its
    // sequence number.
    let last_seq = p.records.last().unwrap().seq;
    for victim in frame_of_every_kind().iter().filter(|r| r.seq != last_seq) {
        let what = format!("zeroed {} record", victim.event.kind());
        let case = Case::new();
        case.edit(&case.last(), |b| {
            b[victim.offset..victim.offset + victim.len].fill(0)
        });
        let db = case.open_expecting(&what, |r| r.seq != victim.seq);
        assert_eq!(
            problems(&db),
            vec![(
                DamageKind::Damaged,
                p.segments[last].clone(),
                victim.offset as u64,
                Some((victim.seq, victim.seq))
            )],
            "{what}"
        );
        case.write_survives(db, &what);
    }
}

/// Copies segment `i` under the next free segment name, optionally with its header rewritten
/// to name the copy.
fn duplicate(case: &Case, i: usize, rename_header: bool) -> String {
    let p = pristine();
    let max_id = p.segments.len() as u64 + 10;
    let name = segment_file_name(max_id);
    let mut bytes = fs::read(case.segment(i)).unwrap();
    if rename_header {
        let mut header = SegmentHeader::decode(&bytes).unwrap();
        header.segment_id = max_id;
        bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    }
    fs::write(case.path.join(&name), bytes).unwrap();
    name
}

#[test]
fn duplicated_segment_file() {
    let p = pristine();
    let last = p.segments.len() - 1;
    for (i, rename_header) in [(0, false), (0, true), (last, false), (last, true)] {
        let what = format!("segment {i} copied (header renamed: {rename_header})");
        let case = Case::new();
        let copy = duplicate(&case, i, rename_header);
        let db = case.open_expecting(&what, |_| true);
        let found = problems(&db);
        assert!(
            !found.is_empty()
                && found
                    .iter()
                    .all(|(kind, file, _, lost)| *kind == DamageKind::Duplicate
                        && (*file == copy || *file == p.segments[i])
                        && lost.is_none()),
            "{what}: {found:?}"
        );
        case.write_survives(db, &what);
    }
}

#[test]
fn middle_segment_deleted() {
    let p = pristine();
    assert!(p.segments.len() >= 3);
    let case = Case::new();
    fs::remove_file(case.segment(1)).unwrap();
    let lost: Vec<u64> = p
        .records
        .iter()
        .filter(|r| r.segment == 1)
        .map(|r| r.seq)
        .collect();
    let db = case.open_expecting("middle segment deleted", |r| r.segment != 1);
    assert_eq!(
        problems(&db),
        vec![(
            DamageKind::Missing,
            p.segments[2].clone(),
            HEADER_LEN as u64,
            Some((lost[0], *lost.last().unwrap()))
        )]
    );
    case.write_survives(db, "middle segment deleted");
}

#[test]
fn truncated_or_damaged_header() {
    let p = pristine();
    for segment in [0, p.segments.len() - 1] {
        for cut in [0, 7, 8, 63] {
            let what = format!("segment {segment} header cut at {cut}");
            let case = Case::new();
            case.edit(&case.segment(segment), |b| b.truncate(cut));
            let expected = match cut {
                0 => "the file is empty".to_string(),
                1 => "the file is 1 byte, too short for peerlog's magic number".to_string(),
                // Too short to hold the magic number: not recognisable as peerlog's.
                2..8 => format!("the file is {cut} bytes, too short for peerlog's magic number"),
                _ => format!("header is {cut} bytes, expected 64"),
            };
            match case.refused(&what) {
                Error::DamagedHeader { path, reason } => {
                    assert_eq!((path, reason), (case.segment(segment), expected), "{what}")
                }
                e => panic!("{what}: unexpected error {e}"),
            }
        }
        let what = format!("segment {segment} header bit flip");
        let case = Case::new();
        case.edit(&case.segment(segment), |b| b[20] ^= 4);
        match case.refused(&what) {
            Error::DamagedHeader { path, reason } => assert_eq!(
                (path, reason.as_str()),
                (case.segment(segment), "header checksum mismatch")
            ),
            e => panic!("{what}: unexpected error {e}"),
        }
    }
}

/// A log whose last record carries the largest sequence number a reader accepts (only a forged
/// file can) leaves the writer no valid number for the next record: the writer must refuse
/// the append rather than acknowledge a record the next open drops as damage (it did).
#[test]
fn append_after_max_seq_is_refused_or_kept() {
    use peerlog::testing::{encode_frame, MAX_SEQ};
    let case = Case::new();
    let last = case.last();
    let header = SegmentHeader::decode(&fs::read(&last).unwrap()).unwrap();
    let end = pristine().records.last().map(|r| r.offset + r.len).unwrap();
    let mut payload = 0i64.to_le_bytes().to_vec();
    payload.extend_from_slice(&[0x42; 64]);
    let mut frame = Vec::new();
    encode_frame(salt_seed(header.salt), MAX_SEQ, 5, &payload, &mut frame);
    case.edit(&last, |b| b[end..end + frame.len()].copy_from_slice(&frame));
    let db = case.open().unwrap();
    assert_eq!(db.recovery().next_seq, MAX_SEQ + 1);
    let fresh = Node::new(id(0xEE), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 9, 9);
    let err = db
        .update_node(&fresh)
        .expect_err("a record numbered past MAX_SEQ was acknowledged");
    assert!(
        err.to_string().contains("sequence numbers exhausted"),
        "{err}"
    );
    db.close().unwrap();
    let db = case.open().unwrap();
    assert_eq!(db.node(&fresh.id), None);
    assert_eq!(db.recovery().next_seq, MAX_SEQ + 1);
}
