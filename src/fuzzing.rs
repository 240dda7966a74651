//! Checking code shared by the fuzz targets and the corpus tests (not a stable API).
//!
//! Each `check_*` function takes the raw bytes a fuzzer produced and panics when a property
//! that peerlog promises is violated. The fuzz targets in `fuzz/` call them, and so does
//! `tests/fuzz_corpus.rs`, which replays every committed corpus file and crash artifact, so
//! that a plain `cargo test` exercises the targets without a fuzzer.
//!
//! | target | input | property |
//! |---|---|---|
//! | `open_segment` | a flags byte, then segment files concatenated (each starts with the magic) | `open` never panics; it fails only with `DamagedHeader`/`NewerFormat` and then changes nothing; every node, signed record, ping, pong and fail count (to no IP and per IP) and the local seq it returns was in an intact record; a reopen gives the same state; a write after it survives a reopen |
//! | `ops_model` | API operations decoded with `arbitrary` (inputs starting with [`OPS_V2`]: with the format-2 operations too) | after every reopen, crash image and torn tail, the state (records, signed records, liveness per id and per IP, local seq, seeds) equals a model's state for the acknowledged prefix, and the sequence numbers add up |
//! | `node_rlp` | bytes | whatever `Node::from_rlp` accepts re-encodes to the same bytes; any node round-trips |
//! | `enode_url` | bytes | whatever parses as an enode URL prints as its canonical form and parses back; any node round-trips |

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use enr::{CombinedKey, Enr, EnrKey, EnrPublicKey};

use crate::event::Event;
use crate::faults::FailPoints;
use crate::journal::dir::{
    list_dir, parse_segment_name, segment_file_name, Listing, SegmentFile, LOCK_FILE,
};
use crate::journal::format::{
    align, decode_frame, salt_seed, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN,
    MAGIC, MAX_PAYLOAD_LEN, MIN_PAYLOAD_LEN,
};
use crate::journal::replay::{set_check_ahead_from, ReplayPlan};
use crate::journal::ProblemKind;
use crate::testing::{ScanItem, SegmentScanner};
use crate::{Error, Node, NodeDb, NodeId, NodeRecord, Options, Subnet, MAX_IPS_PER_ID};

/// The fuzz targets, as named in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: [&str; 4] = ["open_segment", "ops_model", "node_rlp", "enode_url"];

/// Runs the check of `target` on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "open_segment" => check_open_segment(data),
        "ops_model" => check_ops_model(data),
        "node_rlp" => check_node_rlp(data),
        "enode_url" => check_enode_url(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------
// Scratch directories (the library has no tempfile dependency).

static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under `$PEERLOG_FUZZ_TMPDIR` (or the system temp dir), removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new() -> Scratch {
        let base = std::env::var_os("PEERLOG_FUZZ_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("peerlog-fuzz-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("creating a scratch directory");
        Scratch(path)
    }

    fn sub(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        // i64::MIN nanoseconds is a stored time too; negate in i128.
        Err(e) => (-(e.duration().as_nanos() as i128)) as i64,
    }
}

/// A node built from fuzzer bytes: IPv4 or IPv6, any ports, any id.
pub fn arbitrary_node(u: &mut Unstructured<'_>) -> arbitrary::Result<Node> {
    let ip = if u.arbitrary()? {
        IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?))
    } else {
        IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?))
    };
    let udp = u.arbitrary()?;
    let tcp = u.arbitrary()?;
    let id = NodeId(u.arbitrary::<[u8; 64]>()?);
    Ok(Node::new(id, ip, udp, tcp))
}

// ---------------------------------------------------------------------------------------------
// node_rlp

/// Decoding never panics; whatever decodes re-encodes to the same bytes (only canonical RLP
/// of the right shape is accepted); any node round-trips through RLP, and no strict prefix of
/// its encoding decodes.
pub fn check_node_rlp(data: &[u8]) {
    if let Ok(node) = Node::from_rlp(data) {
        assert_eq!(
            node.to_rlp(),
            data,
            "Node::from_rlp accepted non-canonical bytes as {node:?}"
        );
    }
    let mut u = Unstructured::new(data);
    if let Ok(node) = arbitrary_node(&mut u) {
        let bytes = node.to_rlp();
        assert_eq!(Node::from_rlp(&bytes).ok(), Some(node.clone()));
        for cut in 0..bytes.len() {
            assert!(
                Node::from_rlp(&bytes[..cut]).is_err(),
                "a {cut}-byte prefix of {node:?}'s RLP decoded"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// enode_url

/// Parsing never panics; whatever parses prints as a canonical URL that parses back to the same
/// node and prints the same again. The printed form differs from the input only by the
/// documented normalisations: the id in lowercase, `?discport=` dropped when it equals the TCP
/// port, and an IPv6 address in its shortest form. Any node round-trips through its URL.
pub fn check_enode_url(data: &[u8]) {
    if let Ok(url) = std::str::from_utf8(data) {
        if let Ok(node) = url.parse::<Node>() {
            let canonical = node.to_string();
            let again: Node = canonical
                .parse()
                .unwrap_or_else(|e| panic!("{url:?} parsed, its canonical form did not: {e}"));
            assert_eq!(again, node, "{url:?} -> {canonical:?} changed the node");
            assert_eq!(again.to_string(), canonical);
            // Every difference between the input and its canonical form is a documented one.
            let rest = url
                .strip_prefix("enode://")
                .expect("accepted without scheme");
            let (id_hex, rest) = rest.split_once('@').expect("accepted without '@'");
            assert_eq!(id_hex.to_ascii_lowercase(), node.id.to_string());
            let (address, query) = match rest.split_once('?') {
                Some((a, q)) => (a, Some(q)),
                None => (rest, None),
            };
            let (host, tcp) = address.rsplit_once(':').expect("accepted without port");
            assert_eq!(tcp, node.tcp.to_string(), "non-canonical tcp port accepted");
            match query {
                Some(q) => assert_eq!(q, format!("discport={}", node.udp)),
                None => assert_eq!(node.udp, node.tcp),
            }
            match node.ip {
                IpAddr::V4(v4) => assert_eq!(host, v4.to_string(), "non-canonical IPv4"),
                IpAddr::V6(_) => assert!(host.starts_with('[') && host.ends_with(']')),
            }
        }
    }
    let mut u = Unstructured::new(data);
    if let Ok(node) = arbitrary_node(&mut u) {
        let url = node.to_string();
        assert_eq!(
            url.parse::<Node>().ok(),
            Some(node),
            "{url:?} did not round-trip"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// open_segment

/// `open_segment` flag: recompute each file's header checksum, so that header fields can be
/// explored past the checksum.
pub const FIX_HEADER_CRC: u8 = 1;
/// `open_segment` flag: recompute the checksum of every frame whose length field is in range,
/// so that sequence numbers, kinds and payloads can be explored past the checksum.
pub const FIX_RECORD_CRC: u8 = 2;
/// `open_segment` flag: open with another protocol version (the directory must be wiped).
pub const OTHER_VERSION: u8 = 4;

/// The most segment files one `open_segment` input is split into.
const MAX_FILES: usize = 8;

/// Builds an `open_segment` input from segment files.
pub fn open_segment_input(flags: u8, files: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![flags];
    for file in files {
        out.extend_from_slice(file);
    }
    out
}

/// Splits an `open_segment` input into its flags and files: every file but possibly the
/// first starts with the magic number.
fn split_input(data: &[u8]) -> (u8, Vec<Vec<u8>>) {
    let Some((&flags, body)) = data.split_first() else {
        return (0, Vec::new());
    };
    let mut starts: Vec<usize> = Vec::new();
    let mut i = 0;
    while i + MAGIC.len() <= body.len() {
        if body[i..i + MAGIC.len()] == MAGIC {
            starts.push(i);
            i += MAGIC.len();
        } else {
            i += 1;
        }
    }
    if starts.first() != Some(&0) && !body.is_empty() {
        starts.insert(0, 0);
    }
    starts.truncate(MAX_FILES);
    let files = starts
        .iter()
        .enumerate()
        .map(|(k, &start)| {
            let end = if k + 1 == starts.len() {
                body.len()
            } else {
                starts[k + 1]
            };
            body[start..end].to_vec()
        })
        .collect();
    (flags, files)
}

fn fix_header_crc(file: &mut [u8]) {
    if file.len() >= HEADER_LEN {
        let crc = crc32fast::hash(&file[..56]);
        file[56..60].copy_from_slice(&crc.to_le_bytes());
    }
}

fn file_salt(file: &[u8]) -> Option<u64> {
    SegmentHeader::decode(file).ok().map(|h| h.salt)
}

fn fix_record_crcs(file: &mut [u8]) {
    let Some(salt) = file_salt(file) else { return };
    let seed = salt_seed(salt);
    let mut pos = HEADER_LEN;
    while pos + FRAME_HEADER_LEN <= file.len() {
        let len = u16::from_le_bytes([file[pos + 12], file[pos + 13]]) as usize;
        let end = pos + FRAME_HEADER_LEN + len;
        if (MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN).contains(&len) && end <= file.len() {
            let mut hasher = crc32fast::Hasher::new_with_initial(seed);
            hasher.update(&file[pos + 4..end]);
            let crc = hasher.finalize();
            file[pos..pos + 4].copy_from_slice(&crc.to_le_bytes());
            pos += align(FRAME_HEADER_LEN + len);
        } else {
            pos += FRAME_ALIGN;
        }
    }
}

/// Every value an intact record anywhere in the files carries, per id (and per id and IP):
/// the only values an open database may return.
#[derive(Default)]
struct IntactValues {
    /// Endpoints of unsigned records and of signed ones, as enode URLs.
    nodes: BTreeMap<NodeId, BTreeSet<String>>,
    /// RLP of signed records.
    records: BTreeMap<NodeId, BTreeSet<Vec<u8>>>,
    pings: BTreeMap<NodeId, BTreeSet<i64>>,
    pongs: BTreeMap<NodeId, BTreeSet<i64>>,
    fails: BTreeMap<NodeId, BTreeSet<u32>>,
    ip_pings: BTreeMap<(NodeId, IpAddr), BTreeSet<i64>>,
    ip_pongs: BTreeMap<(NodeId, IpAddr), BTreeSet<i64>>,
    ip_fails: BTreeMap<(NodeId, IpAddr), BTreeSet<u32>>,
    /// Every IP an intact record names (IPv4 for IPv4-mapped ones).
    ips: BTreeSet<IpAddr>,
    local_seqs: BTreeSet<u64>,
    ids: BTreeSet<NodeId>,
}

impl IntactValues {
    /// Scans every aligned offset of every file for a frame that is intact under the file's
    /// own salt, independently of the reader's resync logic.
    fn of(files: &[Vec<u8>]) -> IntactValues {
        let mut values = IntactValues::default();
        for file in files {
            let Some(salt) = file_salt(file) else {
                continue;
            };
            let seed = salt_seed(salt);
            let mut pos = HEADER_LEN;
            while pos + FRAME_HEADER_LEN <= file.len() {
                if let Some(frame) = decode_frame(seed, &file[pos..]) {
                    if let Some((_, event)) = Event::decode_payload(frame.kind, frame.payload) {
                        values.add(&event);
                    }
                }
                pos += FRAME_ALIGN;
            }
        }
        values
    }

    fn add(&mut self, event: &Event) {
        let Some(&id) = event.id() else {
            if let Event::LocalSeq { seq } = event {
                self.local_seqs.insert(*seq);
            }
            return;
        };
        self.ids.insert(id);
        let mut slot = |ip: &IpAddr| {
            let ip = ip.to_canonical();
            self.ips.insert(ip);
            (id, ip)
        };
        match event {
            Event::NodeUpdated(node) => {
                self.nodes.entry(id).or_default().insert(node.to_string());
            }
            Event::Record(record) => {
                if let Some(node) = record.node() {
                    self.ips.insert(node.ip.to_canonical());
                    self.nodes.entry(id).or_default().insert(node.to_string());
                }
                let rlp = record.rlp().to_vec();
                self.records.entry(id).or_default().insert(rlp);
            }
            Event::Ping { at, .. } => {
                self.pings.entry(id).or_default().insert(nanos(*at));
            }
            Event::Pong { at, .. } => {
                self.pongs.entry(id).or_default().insert(nanos(*at));
            }
            Event::FindFails { fails, .. } => {
                self.fails.entry(id).or_default().insert(*fails);
            }
            Event::PingFrom { ip, at, .. } => {
                let key = slot(ip);
                self.ip_pings.entry(key).or_default().insert(nanos(*at));
            }
            Event::PongFrom { ip, at, .. } => {
                let key = slot(ip);
                self.ip_pongs.entry(key).or_default().insert(nanos(*at));
            }
            Event::FindFailsAt { ip, fails, .. } => {
                let key = slot(ip);
                self.ip_fails.entry(key).or_default().insert(*fails);
            }
            Event::IpExpired { ip, .. } => {
                slot(ip);
            }
            _ => {}
        }
    }

    /// Panics unless every value `seen` holds for `id` is one an intact record carries.
    fn check(&self, id: &NodeId, seen: &Observed) {
        fn holds<K: Ord, T: Ord>(map: &BTreeMap<K, BTreeSet<T>>, key: &K, value: &T) -> bool {
            map.get(key).is_some_and(|s| s.contains(value))
        }
        if let Some(node) = &seen.node {
            assert!(
                holds(&self.nodes, id, &node.to_string()),
                "open returned {node} which no intact record holds"
            );
        }
        if let Some(record) = &seen.record {
            assert!(
                holds(&self.records, id, &record.rlp().to_vec()),
                "open returned a record of {id} (seq {}) which no intact record holds",
                record.seq()
            );
        }
        if let Some(ping) = seen.ping {
            assert!(holds(&self.pings, id, &ping), "ping of {id} invented");
        }
        if let Some(pong) = seen.pong {
            assert!(holds(&self.pongs, id, &pong), "pong of {id} invented");
        }
        if seen.fails != 0 {
            assert!(
                holds(&self.fails, id, &seen.fails),
                "fails of {id} invented"
            );
        }
        for &(ip, values) in &seen.ips {
            let key = (*id, ip);
            if let Some(ping) = values.ping {
                assert!(holds(&self.ip_pings, &key, &ping), "ping of {id} at {ip}");
            }
            if let Some(pong) = values.pong {
                assert!(holds(&self.ip_pongs, &key, &pong), "pong of {id} at {ip}");
            }
            if values.fails != 0 {
                assert!(holds(&self.ip_fails, &key, &values.fails), "fails at {ip}");
            }
        }
    }
}

/// Liveness at one IP, as the API reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct SlotValues {
    ping: Option<i64>,
    pong: Option<i64>,
    fails: u32,
}

/// What the public API says about one id, with its liveness at each of the probed IPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct Observed {
    node: Option<Node>,
    record: Option<NodeRecord>,
    ping: Option<i64>,
    pong: Option<i64>,
    fails: u32,
    ips: Vec<(IpAddr, SlotValues)>,
}

impl Observed {
    fn has_record(&self) -> bool {
        self.node.is_some() || self.record.is_some()
    }
}

/// Reads everything the API says about `id`, at each IP of `ips` (canonical ones). An IPv4
/// address and its IPv4-mapped form must read the same, and every IP slot the database lists
/// for `id` must be one of `ips` (so that nothing is left unchecked).
fn observe(db: &NodeDb, id: &NodeId, ips: &[IpAddr]) -> Observed {
    let slot = |ip: IpAddr| SlotValues {
        ping: db.last_ping_from(id, ip).map(nanos),
        pong: db.last_pong_from(id, ip).map(nanos),
        fails: db.find_fails_at(id, ip),
    };
    let peer = db.peer(id);
    let record = peer.as_ref().and_then(|p| p.record.clone());
    assert_eq!(
        db.record_seq(id),
        record.as_ref().map_or(0, NodeRecord::seq),
        "record_seq of {id} disagrees with its record"
    );
    for listed in peer.iter().flat_map(|p| &p.ips) {
        assert!(
            ips.contains(&listed.ip),
            "{id} has a slot at {} (IPv4-mapped IPs must read as IPv4)",
            listed.ip
        );
    }
    let ips = ips
        .iter()
        .map(|&ip| {
            let values = slot(ip);
            if let IpAddr::V4(v4) = ip {
                let mapped = IpAddr::V6(v4.to_ipv6_mapped());
                assert_eq!(slot(mapped), values, "{id}: {ip} and {mapped} differ");
            }
            (ip, values)
        })
        .collect();
    Observed {
        node: db.node(id),
        record,
        ping: db.last_ping(id).map(nanos),
        pong: db.last_pong(id).map(nanos),
        fails: db.find_fails(id),
        ips,
    }
}

/// The local seq the database reports, if it is a stored one: `None` when it falls in the
/// window of the wall clock in milliseconds around the call (what `local_seq` returns when
/// none was stored). Stored values the checks write are below that window or recorded.
fn observe_local_seq(db: &NodeDb) -> Option<u64> {
    let ms = || nanos(SystemTime::now()) as u64 / 1_000_000;
    let before = ms();
    let seq = db.local_seq();
    let after = ms();
    (!(before..=after).contains(&seq)).then_some(seq)
}

fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("listing a scratch directory") {
        let entry = entry.expect("listing a scratch directory");
        if entry.path().is_file() {
            out.insert(
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).expect("reading a scratch file"),
            );
        }
    }
    out
}

/// 4 KiB segments, so that rotation and compaction happen every few dozen writes, and
/// `Process` durability: no syncer thread, whose fsyncs at moments of its own would make an
/// injected `log.fsync` failure fire at a time the model cannot know.
fn fuzz_options() -> Options {
    Options {
        segment_size: crate::MIN_SEGMENT_SIZE,
        durability: crate::Durability::Process,
        ..Options::default()
    }
}

/// Arbitrary bytes as one or more segment files: `open` never panics, fails only with a clear
/// error and then leaves the files untouched, and returns nothing but values of intact records;
/// reopening gives the same state, and a write after the open survives a reopen.
pub fn check_open_segment(data: &[u8]) {
    // Every segment, however small, replayed with the checksum helper too.
    set_check_ahead_from(0);
    let (flags, mut files) = split_input(data);
    for file in &mut files {
        if flags & FIX_HEADER_CRC != 0 {
            fix_header_crc(file);
        }
        if flags & FIX_RECORD_CRC != 0 {
            fix_record_crcs(file);
        }
    }
    let headers: Vec<Option<SegmentHeader>> = files
        .iter()
        .map(|f| SegmentHeader::decode(f).ok())
        .collect();
    let mut version = headers
        .iter()
        .flatten()
        .map(|h| h.protocol_version)
        .next()
        .unwrap_or(1);
    if flags & OTHER_VERSION != 0 {
        version = version.wrapping_add(1);
    }

    let scratch = Scratch::new();
    let dir = scratch.sub("db");
    fs::create_dir(&dir).unwrap();
    let mut used = BTreeSet::new();
    // Whether each file is named like a segment: a header's id of 10^16 or more gets a longer
    // name, which the directory listing ignores (not named like a peerlog file), so such a
    // file is no part of the database (and its protocol version wipes nothing).
    let mut listed = Vec::with_capacity(files.len());
    for (i, (file, header)) in files.iter().zip(&headers).enumerate() {
        let wanted = header.map_or(i as u64 + 1, |h| h.segment_id);
        let id = if used.insert(wanted) {
            wanted
        } else {
            // Two files naming the same segment: the second keeps a name of its own, which
            // its header contradicts.
            let mut id = 1_000_000 + i as u64;
            while !used.insert(id) {
                id += 1;
            }
            id
        };
        let name = segment_file_name(id);
        listed.push(parse_segment_name(&name).is_some());
        fs::write(dir.join(name), file).unwrap();
    }
    let before = dir_contents(&dir);
    let intact = IntactValues::of(&files);

    let db = match NodeDb::open_with(&dir, version, NodeId([0xAA; 64]), fuzz_options()) {
        Ok(db) => db,
        Err(e @ (Error::DamagedHeader { .. } | Error::NewerFormat { .. })) => {
            let mut after = dir_contents(&dir);
            after.remove(LOCK_FILE);
            assert_eq!(after, before, "a refused open ({e}) changed the directory");
            return;
        }
        Err(e) => panic!("open failed with an unexpected error: {e}"),
    };
    let wiped = headers
        .iter()
        .zip(&listed)
        .filter(|(_, &listed)| listed)
        .filter_map(|(h, _)| h.as_ref())
        .any(|h| h.protocol_version != version);
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        for (name, bytes) in &before {
            eprintln!(
                "{name}: {} bytes, {:?}",
                bytes.len(),
                SegmentHeader::decode(bytes)
            );
        }
        eprintln!("{:#?}", db.recovery());
    }
    let candidates: Vec<NodeId> = intact.ids.iter().copied().collect();
    let probes: Vec<IpAddr> = intact.ips.iter().copied().collect();
    let state: Vec<Observed> = candidates
        .iter()
        .map(|id| observe(&db, id, &probes))
        .collect();
    let local_seq = observe_local_seq(&db);
    let mut with_record = 0;
    for (id, seen) in candidates.iter().zip(&state) {
        if wiped {
            let empty = Observed {
                ips: probes
                    .iter()
                    .map(|&ip| (ip, SlotValues::default()))
                    .collect(),
                ..Observed::default()
            };
            assert_eq!(seen, &empty, "{id} survived a version wipe");
            continue;
        }
        with_record += usize::from(seen.has_record());
        intact.check(id, seen);
    }
    if wiped {
        assert_eq!(local_seq, None, "the local seq survived a version wipe");
    } else if let Some(seq) = local_seq {
        assert!(
            intact.local_seqs.contains(&seq),
            "open returned local seq {seq}, which no intact record holds"
        );
    }
    assert_eq!(
        db.len(),
        with_record,
        "open returned a node whose id is in no intact record"
    );
    for problem in &db.recovery().problems {
        assert!(
            problem.path.starts_with(&dir),
            "problem outside the directory"
        );
        if let Some((first, last)) = problem.lost {
            assert!(first <= last, "lost range {first}..={last} is empty");
        }
    }

    // A write after recovery continues the log and survives a reopen, with everything else.
    let fresh = Node::new(
        NodeId([0xEE; 64]),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        30303,
        30303,
    );
    // A log whose (forged) records reach MAX_SEQ leaves the writer no sequence number a
    // reader accepts: the write must then be refused, never acknowledged and lost.
    let exhausted = db.recovery().next_seq > crate::journal::format::MAX_SEQ;
    let write_fresh = !intact.ids.contains(&fresh.id) && !exhausted;
    if write_fresh {
        db.update_node(&fresh)
            .expect("a write after recovery failed");
    } else if exhausted {
        assert!(
            db.update_node(&fresh).is_err(),
            "a record numbered past MAX_SEQ was acknowledged"
        );
    }
    db.close().expect("closing after recovery failed");
    let db = NodeDb::open_with(&dir, version, NodeId([0xAA; 64]), fuzz_options())
        .unwrap_or_else(|e| panic!("a database peerlog recovered and closed fails to open: {e}"));
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        eprintln!("after reopen: {:#?}", db.recovery());
    }
    for (id, seen) in candidates.iter().zip(&state) {
        assert_eq!(
            &observe(&db, id, &probes),
            seen,
            "{id} changed across a reopen"
        );
    }
    if local_seq.is_some() {
        assert_eq!(
            observe_local_seq(&db),
            local_seq,
            "the local seq changed across a reopen"
        );
    }
    if write_fresh {
        assert_eq!(
            db.node(&fresh.id),
            Some(fresh),
            "the write after recovery was lost"
        );
    }
    assert_eq!(db.len(), with_record + usize::from(write_fresh));
    for problem in &db.recovery().problems {
        assert_ne!(
            problem.kind,
            ProblemKind::TornTail,
            "a torn tail survived the recovery that cut it: {problem}"
        );
    }
    db.close().expect("closing failed");
}

// ---------------------------------------------------------------------------------------------
// ops_model

/// Ids the operations work on; the first is the database's own id.
const IDS: usize = 6;

/// The secp256k1 key of pool id `who` (deterministic), so that pool ids can have signed
/// records.
fn pool_key(who: usize) -> CombinedKey {
    let mut secret = [0x5e_u8; 32];
    secret[0] = who as u8 + 1;
    CombinedKey::secp256k1_from_bytes(&mut secret).expect("a valid secret key")
}

fn pool_id(who: u8) -> NodeId {
    static POOL: OnceLock<[NodeId; IDS]> = OnceLock::new();
    let ids = POOL.get_or_init(|| {
        std::array::from_fn(|w| {
            let public = pool_key(w).public().encode_uncompressed();
            NodeId(public.as_slice().try_into().expect("a 64-byte public key"))
        })
    });
    ids[who as usize % IDS]
}

/// IPs of the per-IP operations: an IPv4 address, its IPv4-mapped form (the same IP to the
/// database), an IPv6 address, and another IPv4 address. The signed records name these too,
/// so that a pong at an IP can make a seed.
const IPS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc633, 0x6407)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
];

fn pool_ip(ip: u8) -> IpAddr {
    IPS[ip as usize % IPS.len()]
}

/// IPs of [`Step::IpFlood`]: more than an id holds slots for, IPv4 and IPv6 (some IPv6 ones
/// below the IPv4-mapped range, some above), so that IP slots are evicted.
const FLOOD_IPS: usize = 24;

fn flood_ip(k: u8) -> IpAddr {
    let k = k % FLOOD_IPS as u8;
    match k % 3 {
        0 => IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, u16::from(k) + 1)),
        1 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, u16::from(k))),
        _ => IpAddr::V4(Ipv4Addr::new(10, 77, 0, k)),
    }
}

/// Ids of [`Step::Flood`], beyond the pool: unsigned records and pongs only.
const FLOOD_IDS: u8 = 32;

fn flood_id(k: u8) -> NodeId {
    let mut bytes = [0xf1_u8; 64];
    bytes[1] = k % FLOOD_IDS;
    NodeId(bytes)
}

/// The distinct IPs of [`IPS`] and [`flood_ip`], in canonical form: what the checks probe.
fn canonical_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = IPS
        .iter()
        .copied()
        .chain((0..FLOOD_IPS as u8).map(flood_ip))
        .map(|ip| ip.to_canonical())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Signed records per pool id.
const RECORD_VARIANTS: usize = 6;

/// A pre-built signed record of a pool id: the `enr` crate's value for `update_record`, and
/// the stored form the model compares with.
struct PoolRecord {
    enr: Enr<CombinedKey>,
    record: NodeRecord,
}

/// Record `variant` of pool id `who`. Variants, by seq: 0: seq 0, IPv4 `IPS[0]`; 1: seq 1,
/// the same IP, another TCP port; 2: seq 2, IPv6 only (`IPS[2]`); 3: seq 2 (equal: it
/// replaces variant 2) without any IP; 4: seq 3, IPv4 `IPS[3]` and IPv6 `IPS[2]`; 5: seq 9,
/// IPv4 `IPS[3]`, padded to near the 300-byte limit. Signing is slow and randomised: each
/// id's records are built once per process, on first use, so that a record is the same
/// bytes every time it is written.
fn pool_record(who: u8, variant: u8) -> &'static PoolRecord {
    static POOL: [OnceLock<Vec<PoolRecord>>; IDS] = [const { OnceLock::new() }; IDS];
    let w = who as usize % IDS;
    let records = POOL[w].get_or_init(|| {
        let key = pool_key(w);
        (0..RECORD_VARIANTS)
            .map(|v| {
                let build = |padding: usize| {
                    let mut b = Enr::builder();
                    let v4 = |ip: IpAddr| match ip {
                        IpAddr::V4(v4) => v4,
                        IpAddr::V6(_) => unreachable!("an IPv4 pool IP"),
                    };
                    let v6 = match IPS[2] {
                        IpAddr::V6(v6) => v6,
                        IpAddr::V4(_) => unreachable!("the IPv6 pool IP"),
                    };
                    match v {
                        0 => b.seq(0).ip4(v4(IPS[0])).udp4(30303).tcp4(30303),
                        1 => b.seq(1).ip4(v4(IPS[0])).udp4(30303).tcp4(30304),
                        2 => b.seq(2).ip6(v6).udp6(9000),
                        3 => b.seq(2).udp4(9001),
                        4 => b.seq(3).ip4(v4(IPS[3])).udp4(1).ip6(v6).tcp6(2),
                        _ => b.seq(9).ip4(v4(IPS[3])).udp4(30305).tcp4(30305),
                    };
                    if padding > 0 {
                        b.add_value(b"zz", &vec![0x7a_u8; padding].as_slice());
                    }
                    b.build(&key)
                };
                let mut enr = build(0).expect("a pool record");
                if v == RECORD_VARIANTS - 1 {
                    // As large as the enr crate builds (it refuses content + signature + 8 >
                    // 300 bytes): the longest record frame. A few tries (each signs).
                    let room = 300usize.saturating_sub(enr.size() + 8);
                    enr = (0..=room)
                        .rev()
                        .find_map(|padding| build(padding).ok())
                        .expect("a padded record");
                }
                let record = NodeRecord::unverified(&enr)
                    .and_then(|r| r.verified(&enr))
                    .expect("a storable record");
                PoolRecord { enr, record }
            })
            .collect()
    });
    &records[variant as usize % RECORD_VARIANTS]
}

/// A timestamp either long past (expired under the default 24 h) or far in the future (never
/// expired), so that expiry is independent of when the test runs.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Time {
    past: bool,
    secs: u32,
    nanos: u32,
}

impl Time {
    fn at(self) -> SystemTime {
        let base: u64 = if self.past {
            1_000_000_000
        } else {
            4_102_444_800
        };
        UNIX_EPOCH
            + Duration::new(
                base + u64::from(self.secs % 100_000_000),
                self.nanos % 1_000_000_000,
            )
    }
}

/// I/O steps an operation can be made to fail at (see `FailPoints`).
const FAIL_STEPS: [&str; 4] = [
    "segment.write",
    "segment.fsync",
    "segment.rename",
    "log.fsync",
];

/// One step of an `ops_model` run.
///
/// `arbitrary`'s derive picks a variant by scaling a `u32` by the number of variants, so
/// adding variants changes what every existing input decodes to. Inputs that start with
/// [`OPS_V2`] decode with this enum; any other input decodes as before format 2 (the first
/// thirteen variants only, see `legacy_op`), so that the corpus and regression files of the
/// earlier campaigns keep their meaning.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// `update_node` of a pool id.
    Update {
        /// Pool index.
        who: u8,
        /// IPv6 instead of IPv4.
        v6: bool,
        /// Address bytes.
        ip: [u8; 16],
        /// UDP port.
        udp: u16,
        /// TCP port.
        tcp: u16,
    },
    /// `update_last_ping`.
    Ping {
        /// Pool index.
        who: u8,
        /// When.
        time: Time,
    },
    /// `update_last_pong`.
    Pong {
        /// Pool index.
        who: u8,
        /// When.
        time: Time,
    },
    /// `update_find_fails`.
    Fails {
        /// Pool index.
        who: u8,
        /// Count.
        fails: u32,
    },
    /// `delete_node`.
    Delete {
        /// Pool index.
        who: u8,
    },
    /// Up to 47 writes of mixed kinds, so that segments fill and rotate.
    Burst {
        /// Varies the ids, kinds and times.
        seed: u8,
        /// How many writes (modulo 48).
        count: u8,
    },
    /// `expire_nodes`.
    Expire,
    /// `compact`.
    Compact,
    /// `sync` (fails and poisons the database if a `log.fsync` failure is armed).
    Sync,
    /// Clean close and reopen.
    Reopen,
    /// Crash image: the files are copied while the database is open (what `kill -9` leaves
    /// with `Process` durability), and the copy is opened.
    Crash,
    /// Close, cut the last segment at an offset past its header, optionally append garbage,
    /// reopen.
    TornTail {
        /// Where to cut, modulo the segment's length.
        cut: u16,
        /// Bytes that persisted after the cut (at most 48 are used).
        garbage: Vec<u8>,
    },
    /// Makes the next occurrence of an I/O step fail once.
    FailNext {
        /// Index into the steps.
        step: u8,
    },
    // Format 2 (inputs starting with `OPS_V2` only).
    /// `update_record` of one of a pool id's pre-built signed records.
    Record {
        /// Pool index.
        who: u8,
        /// Which record (modulo 6: see `pool_record`).
        variant: u8,
    },
    /// `update_last_ping_from`.
    PingFrom {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// When.
        time: Time,
    },
    /// `update_last_pong_from`.
    PongFrom {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// When.
        time: Time,
    },
    /// `update_find_fails_at`.
    FailsAt {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// Count.
        fails: u32,
    },
    /// `store_local_seq`.
    LocalSeq {
        /// The seq.
        seq: u64,
    },
    /// Up to 47 writes of the format-2 kinds (records, per-IP pings, pongs and fails, the
    /// local seq), so that segments of them fill and rotate.
    BurstV2 {
        /// Varies the ids, kinds, IPs and times.
        seed: u8,
        /// How many writes (modulo 48).
        count: u8,
    },
}

/// The prefix of `ops_model` inputs that decode with every variant of [`Op`].
pub const OPS_V2: &[u8] = b"ops2";

/// Decodes an operation as inputs written before format 2 do: a variant of the first
/// thirteen, chosen and filled exactly as `arbitrary`'s derive did for that enum.
fn legacy_op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    const LEGACY_VARIANTS: u64 = 13;
    let variant = (u64::from(u.arbitrary::<u32>()?) * LEGACY_VARIANTS) >> 32;
    Ok(match variant {
        0 => Op::Update {
            who: u.arbitrary()?,
            v6: u.arbitrary()?,
            ip: u.arbitrary()?,
            udp: u.arbitrary()?,
            tcp: u.arbitrary()?,
        },
        1 => Op::Ping {
            who: u.arbitrary()?,
            time: u.arbitrary()?,
        },
        2 => Op::Pong {
            who: u.arbitrary()?,
            time: u.arbitrary()?,
        },
        3 => Op::Fails {
            who: u.arbitrary()?,
            fails: u.arbitrary()?,
        },
        4 => Op::Delete {
            who: u.arbitrary()?,
        },
        5 => Op::Burst {
            seed: u.arbitrary()?,
            count: u.arbitrary()?,
        },
        6 => Op::Expire,
        7 => Op::Compact,
        8 => Op::Sync,
        9 => Op::Reopen,
        10 => Op::Crash,
        11 => Op::TornTail {
            cut: u.arbitrary()?,
            garbage: u.arbitrary()?,
        },
        _ => Op::FailNext {
            step: u.arbitrary()?,
        },
    })
}

/// The prefix of `ops_model` inputs of format 3: a byte that sets `max_nodes` (1 to 8), then
/// [`Step`]s (every [`Op`], and the floods that make evictions of ids and IP slots).
pub const OPS_V3: &[u8] = b"ops3";

/// `max_nodes` of the runs of inputs before format 3: fewer than the pool's ids, so that the
/// operations of every earlier campaign evict too.
const LEGACY_MAX_NODES: usize = 4;

/// One step of a format-3 `ops_model` run.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// Any operation of the earlier formats.
    Op(Op),
    /// Up to 31 writes about ids beyond the pool (of [`FLOOD_IDS`]): unsigned records on a
    /// few subnets, and pongs (past or future), so that a full store evicts.
    Flood {
        /// Varies the ids, subnets, kinds and times.
        seed: u8,
        /// How many writes (modulo 32).
        count: u8,
    },
    /// Up to 31 per-IP writes about one pool id at the IPs of [`flood_ip`], more than an id
    /// holds slots for.
    IpFlood {
        /// Pool index.
        who: u8,
        /// Varies the IPs, kinds and times.
        seed: u8,
        /// How many writes (modulo 32).
        count: u8,
    },
}

/// Decodes an `ops_model` input into its `max_nodes` and at most 96 steps.
pub fn decode_steps(data: &[u8]) -> (usize, Vec<Step>) {
    let Some(body) = data.strip_prefix(OPS_V3) else {
        let ops = decode_ops(data);
        return (LEGACY_MAX_NODES, ops.into_iter().map(Step::Op).collect());
    };
    let Some((&max, body)) = body.split_first() else {
        return (LEGACY_MAX_NODES, Vec::new());
    };
    let mut u = Unstructured::new(body);
    let mut steps = Vec::new();
    while steps.len() < 96 {
        match u.arbitrary::<Step>() {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    (1 + usize::from(max % 8), steps)
}

/// Decodes an `ops_model` input before format 3 into at most 96 operations.
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    let (v2, body) = match data.strip_prefix(OPS_V2) {
        Some(body) => (true, body),
        None => (false, data),
    };
    let mut u = Unstructured::new(body);
    let mut ops = Vec::new();
    while ops.len() < 96 {
        let op = if v2 {
            u.arbitrary::<Op>()
        } else {
            legacy_op(&mut u)
        };
        match op {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    ops
}

/// Liveness at one IP, as the model knows it.
type ModelSlot = SlotValues;

/// What the model knows about one id (its presence in the map means the index has an entry,
/// or had one that a compaction dropped for holding no value, see [`ModelEntry::is_blank`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ModelEntry {
    /// The endpoint: of the unsigned record, or of the signed one (`None` without IP).
    node: Option<Node>,
    record: Option<NodeRecord>,
    ping: Option<i64>,
    pong: Option<i64>,
    fails: u32,
    /// Per IP, keyed by the canonical IP.
    ips: BTreeMap<IpAddr, ModelSlot>,
    /// When its newest event was written, as a place in the order of the writes (the
    /// eviction rule's "newest event"; write times themselves the model cannot know).
    touched: u64,
}

impl ModelEntry {
    fn has_record(&self) -> bool {
        self.node.is_some() || self.record.is_some()
    }

    /// The seq `update_record` and `update_node` compare with: the signed record's, else 0.
    fn record_seq(&self) -> u64 {
        self.record.as_ref().map_or(0, NodeRecord::seq)
    }

    /// Whether it holds no value at all: a compaction writes nothing for it, so after one and
    /// a reopen the index has no entry for it (invisible through the API but to `delete`).
    fn is_blank(&self) -> bool {
        let blank = ModelSlot::default();
        !self.has_record()
            && self.ping.is_none()
            && self.pong.is_none()
            && self.fails == 0
            && self.ips.values().all(|s| *s == blank)
    }

    /// Whether `query_seeds` offers it (`Index::is_seed`): an endpoint, not this node, and a
    /// pong at or after `min_pong` to no particular IP or from the endpoint's IP.
    fn is_seed(&self, id: &NodeId, self_id: &NodeId, min_pong: i64) -> bool {
        let Some(node) = &self.node else {
            return false;
        };
        id != self_id
            && (self.pong.is_some_and(|p| p >= min_pong)
                || self
                    .ips
                    .get(&node.ip.to_canonical())
                    .and_then(|s| s.pong)
                    .is_some_and(|p| p >= min_pong))
    }

    /// What the API says about an id in this state, at each of `ips` (canonical).
    fn observed(&self, ips: &[IpAddr]) -> Observed {
        Observed {
            node: self.node.clone(),
            record: self.record.clone(),
            ping: self.ping,
            pong: self.pong,
            fails: self.fails,
            ips: ips
                .iter()
                .map(|ip| (*ip, self.ips.get(ip).copied().unwrap_or_default()))
                .collect(),
        }
    }
}

#[derive(Clone, Debug, Default)]
struct ModelState {
    entries: BTreeMap<NodeId, ModelEntry>,
    local_seq: Option<u64>,
    /// Events applied: the place of the next in the order of writes.
    applied: u64,
}

/// Applies a record as replay does (no seq rule here: what is in the log is applied).
fn model_apply(state: &mut ModelState, event: &Event) {
    state.applied += 1;
    if holds_id(event) {
        if let Some(id) = event.id() {
            state.entries.entry(*id).or_default().touched = state.applied;
        }
    }
    let entries = &mut state.entries;
    match event {
        Event::NodeUpdated(node) => {
            let entry = entries.entry(node.id).or_default();
            entry.node = Some(node.clone());
            entry.record = None;
        }
        Event::Record(record) => {
            let entry = entries.entry(*record.id()).or_default();
            entry.node = record.node();
            entry.record = Some(record.clone());
        }
        Event::Ping { id, at } => entries.entry(*id).or_default().ping = Some(nanos(*at)),
        Event::Pong { id, at } => entries.entry(*id).or_default().pong = Some(nanos(*at)),
        Event::FindFails { id, fails } => entries.entry(*id).or_default().fails = *fails,
        Event::PingFrom { id, ip, at } => {
            let entry = entries.entry(*id).or_default();
            entry.ips.entry(ip.to_canonical()).or_default().ping = Some(nanos(*at));
        }
        Event::PongFrom { id, ip, at } => {
            let entry = entries.entry(*id).or_default();
            entry.ips.entry(ip.to_canonical()).or_default().pong = Some(nanos(*at));
        }
        Event::FindFailsAt { id, ip, fails } => {
            let entry = entries.entry(*id).or_default();
            entry.ips.entry(ip.to_canonical()).or_default().fails = *fails;
        }
        Event::NodeDeleted { id } | Event::NodeExpired { id } | Event::Evicted { id, .. } => {
            entries.remove(id);
        }
        Event::IpExpired { id, ip } | Event::IpEvicted { id, ip } => {
            if let Some(entry) = entries.get_mut(id) {
                entry.ips.remove(&ip.to_canonical());
            }
        }
        Event::LocalSeq { seq } => state.local_seq = Some(*seq),
        // About the log, not its state: tests/losses.rs checks them.
        Event::Loss(_) => {}
    }
}

fn model_state(events: &[Event]) -> ModelState {
    let mut state = ModelState::default();
    for event in events {
        model_apply(&mut state, event);
    }
    state
}

/// Whether `event` is a write about an id that makes the index hold it (and so may have to
/// evict first): records and liveness, to no IP or per IP.
fn holds_id(event: &Event) -> bool {
    matches!(
        event,
        Event::NodeUpdated(_)
            | Event::Record(_)
            | Event::Ping { .. }
            | Event::Pong { .. }
            | Event::FindFails { .. }
            | Event::PingFrom { .. }
            | Event::PongFrom { .. }
            | Event::FindFailsAt { .. }
    )
}

/// The eviction group of an endpoint, as the model orders it: the network in 128 bits
/// (IPv4, and IPv4-mapped IPv6, as `::ffff:a.b.c.0`, cut to /24; IPv6 cut to /48) and the
/// prefix length in that form. `None` (no endpoint) orders below every subnet.
fn model_group(entry: &ModelEntry) -> Option<(u128, u8)> {
    let ip = entry.node.as_ref()?.ip;
    let (word, bits) = match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 120),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => (u128::from(v6), 120),
        IpAddr::V6(v6) => (u128::from(v6), 48),
    };
    Some((word & !(u128::MAX >> bits), bits))
}

/// An entry's newest pong, to no IP or from any IP.
fn model_newest_pong(entry: &ModelEntry) -> Option<i64> {
    entry
        .ips
        .values()
        .map(|s| s.pong)
        .fold(entry.pong, Option::max)
}

/// The id the rule evicts from `state` (DESIGN.md, "A bounded store"), and its subnet: of the
/// ids no pong proved, the one whose newest event is oldest (ties: the lowest subnet, the ids
/// without endpoint lowest, then the lowest id); when every id is proven, of the subnet
/// holding the most ids (ties: the lowest), the node with the oldest newest pong (ties: the
/// lowest id). The model orders writes, not their times: `written_at` gives the database's
/// write time of each id's newest event, checked to grow with the model's order, so that two
/// writes in the same clock tick tie as the rule says.
fn model_victim(
    state: &ModelState,
    written_at: impl Fn(&NodeId) -> SystemTime,
) -> Option<(NodeId, Option<Subnet>)> {
    let subnet = |e: &ModelEntry| e.node.as_ref().map(|n| Subnet::of(n.ip, 24, 48));
    let mut unproven: Vec<(&NodeId, &ModelEntry)> = state
        .entries
        .iter()
        .filter(|(_, e)| model_newest_pong(e).is_none())
        .collect();
    if !unproven.is_empty() {
        unproven.sort_by_key(|(_, e)| e.touched);
        let times: Vec<SystemTime> = unproven.iter().map(|(id, _)| written_at(id)).collect();
        assert!(
            times.windows(2).all(|w| w[0] <= w[1]),
            "write times do not follow the order of the writes: {times:?}"
        );
        let (id, e) = unproven
            .iter()
            .zip(&times)
            .min_by_key(|((id, e), t)| (**t, model_group(e), **id))
            .map(|(x, _)| *x)?;
        return Some((*id, subnet(e)));
    }
    type Group<'a> = Vec<(&'a NodeId, &'a ModelEntry)>;
    let mut groups: BTreeMap<Option<(u128, u8)>, Group<'_>> = BTreeMap::new();
    for (id, e) in &state.entries {
        groups.entry(model_group(e)).or_default().push((id, e));
    }
    let most = groups.values().map(Vec::len).max()?;
    let members = groups.values().find(|m| m.len() == most)?;
    let (id, e) = members
        .iter()
        .min_by_key(|(id, e)| (model_newest_pong(e), **id))?;
    Some((**id, subnet(e)))
}

/// A time between the pool's past times and its future ones: what the model takes for a
/// write time ("now"), which only ever compares with those.
const NOW: i64 = 3_000_000_000 * 1_000_000_000;

/// The IP slot of `entry` the rule evicts before a slot for `ip` is made, if any: when `ip`
/// has none and the entry holds the most, the stalest (the oldest pong, else ping, else the
/// entry's newest event; ties: the lowest IP in its 16-byte IPv4-mapped form).
fn model_stalest_slot(entry: &ModelEntry, ip: IpAddr) -> Option<IpAddr> {
    if entry.ips.contains_key(&ip.to_canonical()) || entry.ips.len() < MAX_IPS_PER_ID {
        return None;
    }
    let octets = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    entry
        .ips
        .iter()
        .min_by_key(|(ip, s)| (s.pong.or(s.ping).unwrap_or(NOW), octets(ip)))
        .map(|(ip, _)| *ip)
}

/// What expiration writes (24 h expiration; times are either decades past or far future),
/// in the model's order, and how many node records it drops. A node goes when its newest
/// pong (to no particular IP or from any IP) is stale, or, for an id without a record, its
/// newest ping or pong of any slot is; with nothing to judge by it was touched just now and
/// stays. This node's record goes whatever its age. Of the nodes that stay, every IP slot
/// whose pong, else ping, is stale goes (a slot with neither was touched just now).
fn model_expired(state: &ModelState, self_id: &NodeId) -> (Vec<Event>, usize) {
    let threshold = nanos(SystemTime::now()) - 24 * 3600 * 1_000_000_000;
    let stale = |t: Option<i64>| t.is_some_and(|t| t < threshold);
    let mut expired = Vec::new();
    let mut records = 0;
    for (id, e) in &state.entries {
        let newest_pong = e.ips.values().map(|s| s.pong).fold(e.pong, Option::max);
        let newest = if e.has_record() {
            newest_pong
        } else {
            e.ips
                .values()
                .map(|s| s.ping)
                .fold(newest_pong.max(e.ping), Option::max)
        };
        if stale(newest) || (id == self_id && e.has_record()) {
            expired.push(Event::NodeExpired { id: *id });
            records += usize::from(e.has_record());
            continue;
        }
        for (ip, slot) in &e.ips {
            if stale(slot.pong.or(slot.ping)) {
                expired.push(Event::IpExpired { id: *id, ip: *ip });
            }
        }
    }
    (expired, records)
}

/// What an expiry event drops, to compare groups written in different orders.
fn expiry_key(event: &Event) -> (NodeId, Option<IpAddr>) {
    match event {
        Event::NodeExpired { id } => (*id, None),
        Event::IpExpired { id, ip } => (*id, Some(*ip)),
        other => panic!("expiration wrote a {} record", other.kind()),
    }
}

#[derive(Default)]
struct Armed {
    step: Option<&'static str>,
    /// The step that failed since the last look.
    fired: Option<&'static str>,
}

struct Harness {
    scratch: Scratch,
    dir: PathBuf,
    dirs: usize,
    armed: Arc<Mutex<Armed>>,
    self_id: NodeId,
    /// Every record of the log, in sequence order: record `i` has sequence number `i + 1`.
    events: Vec<Event>,
    /// The state `events` amount to.
    model: ModelState,
    poisoned: bool,
    /// [`Options::max_nodes`].
    max_nodes: usize,
}

impl Harness {
    fn options(&self) -> Options {
        let armed = Arc::clone(&self.armed);
        Options {
            fail_points: FailPoints::new(move |step| {
                let mut armed = armed.lock().unwrap();
                if armed.step == Some(step) {
                    armed.fired = armed.step.take();
                    return Err(std::io::Error::other(format!("injected failure at {step}")));
                }
                Ok(())
            }),
            max_nodes: self.max_nodes,
            ..fuzz_options()
        }
    }

    /// Whether an injected failure fired since the last look. A failed fsync poisons the
    /// database (DESIGN.md), so from then on its writes may fail too.
    fn take_fired(&mut self) -> bool {
        let fired = self.armed.lock().unwrap().fired.take();
        if fired.is_some_and(|step| step.ends_with("fsync")) {
            self.poisoned = true;
        }
        fired.is_some()
    }

    fn disarm(&self) {
        self.armed.lock().unwrap().step = None;
    }

    fn open(&mut self) -> NodeDb {
        self.take_fired();
        // A reopened database is no longer poisoned.
        self.poisoned = false;
        match NodeDb::open_with(&self.dir, 1, self.self_id, self.options()) {
            Ok(db) => db,
            Err(e) => {
                assert!(
                    self.take_fired(),
                    "open failed without an injected failure: {e}"
                );
                self.poisoned = false;
                NodeDb::open_with(&self.dir, 1, self.self_id, self.options())
                    .unwrap_or_else(|e| panic!("open failed after a failed open: {e}"))
            }
        }
    }

    fn close(&mut self, db: NodeDb) {
        self.take_fired();
        if let Err(e) = db.close() {
            assert!(
                self.poisoned || self.take_fired(),
                "close failed without cause: {e}"
            );
        }
    }

    /// Appends an acknowledged record to the model.
    fn push(&mut self, event: Event) {
        model_apply(&mut self.model, &event);
        self.events.push(event);
    }

    /// Replaces the log's records (after a cut): the model follows.
    fn truncate(&mut self, len: usize) {
        self.events.truncate(len);
        self.model = model_state(&self.events);
    }

    /// The evictions the model says a write of `event` makes first: of the id the rule
    /// picks when `event` is about an id the full store does not hold, of the stalest IP slot
    /// when it is about a new IP of an id holding the most.
    ///
    /// An entry without any value is dropped by a compaction and so is gone after a reopen
    /// (see [`ModelEntry::is_blank`]), at a moment the model cannot know (compactions also
    /// run in the background): the database says whether it still holds each such id.
    fn evictions_for(&mut self, db: &NodeDb, event: &Event) -> Vec<Event> {
        let Some(id) = event.id().filter(|_| holds_id(event)) else {
            return Vec::new();
        };
        let blanks: Vec<NodeId> = self
            .model
            .entries
            .iter()
            .filter(|(id, e)| e.is_blank() && db.peer(id).is_none())
            .map(|(id, _)| *id)
            .collect();
        for blank in blanks {
            self.model.entries.remove(&blank);
        }
        let ip = match event {
            Event::PingFrom { ip, .. }
            | Event::PongFrom { ip, .. }
            | Event::FindFailsAt { ip, .. } => Some(*ip),
            _ => None,
        };
        match self.model.entries.get(id) {
            Some(entry) => ip
                .and_then(|ip| model_stalest_slot(entry, ip))
                .map(|ip| Event::IpEvicted { id: *id, ip })
                .into_iter()
                .collect(),
            None => {
                let mut state = self.model.clone();
                let mut evictions = Vec::new();
                let written_at = |id: &NodeId| {
                    db.peer(id)
                        .unwrap_or_else(|| panic!("{id} is in the model, not in the database"))
                        .last_written
                };
                while state.entries.len() >= self.max_nodes {
                    let Some((id, subnet)) = model_victim(&state, written_at) else {
                        break;
                    };
                    let evicted = Event::Evicted { id, subnet };
                    model_apply(&mut state, &evicted);
                    evictions.push(evicted);
                }
                evictions
            }
        }
    }

    /// Makes a write of `event` with `call`, the evictions the model expects first: when
    /// acknowledged, both are applied to the model; an error only with cause, and then the
    /// log says whether the evictions were written before the failure.
    fn write_with(&mut self, db: &NodeDb, event: Event, call: impl FnOnce() -> Result<(), Error>) {
        let evictions = self.evictions_for(db, &event);
        if !evictions.is_empty() && std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
            eprintln!("evicting {evictions:?} for a {}", event.kind().name());
        }
        match call() {
            Ok(()) => {
                for evicted in evictions {
                    self.push(evicted);
                }
                self.push(event);
            }
            Err(e) => {
                self.failed(&e, event.kind().name());
                for evicted in evictions {
                    let seq = self.events.len() as u64 + 1;
                    match self.logged(seq, seq).remove(&seq) {
                        Some(logged) => {
                            assert_eq!(logged, evicted, "a failed write evicted another");
                            self.push(logged);
                        }
                        None => break,
                    }
                }
            }
        }
    }

    /// An error is only allowed after an injected failure or on a poisoned database.
    fn failed(&mut self, e: &Error, what: &str) {
        assert!(
            self.poisoned || self.take_fired(),
            "{what} failed without cause: {e}"
        );
    }

    /// `update_node`: written unless the id has a signed record of seq 1 or more (then
    /// nothing is written, and it still returns `Ok`).
    fn update_node(&mut self, db: &NodeDb, node: Node) {
        let wanted = self
            .model
            .entries
            .get(&node.id)
            .is_none_or(|e| e.record_seq() == 0);
        if wanted {
            let event = Event::NodeUpdated(node.clone());
            self.write_with(db, event, || db.update_node(&node));
        } else if let Err(e) = db.update_node(&node) {
            self.failed(&e, "an ignored update_node");
        }
    }

    /// `update_record` of a pool record: written unless the stored record has a higher seq,
    /// and it says which; the very record already stored is `Ok(true)` with nothing written
    /// (checked before anything else, so even on a poisoned database).
    fn update_record(&mut self, db: &NodeDb, who: u8, variant: u8) {
        let pool = pool_record(who, variant);
        let seq = pool.record.seq();
        let stored = self.model.entries.get(pool.record.id());
        if stored.is_some_and(|e| e.record.as_ref() == Some(&pool.record)) {
            let result = db.update_record(&pool.enr);
            assert!(
                matches!(result, Ok(true)),
                "update_record of the stored record: {result:?}"
            );
            return;
        }
        let wanted = stored.is_none_or(|e| e.record_seq() <= seq);
        let event = Event::Record(pool.record.clone());
        if wanted {
            let mut written = None;
            self.write_with(db, event, || {
                written = Some(db.update_record(&pool.enr)?);
                Ok(())
            });
            assert_ne!(
                written,
                Some(false),
                "update_record of seq {seq} was ignored"
            );
            return;
        }
        match db.update_record(&pool.enr) {
            Ok(written) => {
                assert_eq!(
                    written,
                    wanted,
                    "update_record of seq {seq} over seq {:?}",
                    self.model
                        .entries
                        .get(pool.record.id())
                        .map(|e| e.record_seq())
                );
                if written {
                    self.push(Event::Record(pool.record.clone()));
                }
            }
            Err(e) => self.failed(&e, "update_record"),
        }
    }

    /// The per-IP writes and the local seq; IPs as the log holds them (canonical), so that
    /// the events compare equal to the records read back.
    fn ping_from(&mut self, db: &NodeDb, who: u8, ip: u8, at: SystemTime) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::PingFrom {
            id,
            ip: ip.to_canonical(),
            at,
        };
        self.write_with(db, event, || db.update_last_ping_from(&id, ip, at));
    }

    fn pong_from(&mut self, db: &NodeDb, who: u8, ip: u8, at: SystemTime) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::PongFrom {
            id,
            ip: ip.to_canonical(),
            at,
        };
        self.write_with(db, event, || db.update_last_pong_from(&id, ip, at));
    }

    fn fails_at(&mut self, db: &NodeDb, who: u8, ip: u8, fails: u32) {
        let (id, ip) = (pool_id(who), pool_ip(ip));
        let event = Event::FindFailsAt {
            id,
            ip: ip.to_canonical(),
            fails,
        };
        self.write_with(db, event, || db.update_find_fails_at(&id, ip, fails));
    }

    fn local_seq(&mut self, db: &NodeDb, seq: u64) {
        self.write_with(db, Event::LocalSeq { seq }, || db.store_local_seq(seq));
    }

    fn check(&self, db: &NodeDb, when: &str) {
        // The only damage these operations make is a torn tail of the last segment, which the
        // next open cuts before anything can compact it: no compaction ever finds damage, so
        // no loss (kind 13) is ever recorded (one would also be a sequence number too many).
        let losses = db.losses();
        assert!(
            losses.is_empty(),
            "{when}: losses recorded without damage: {losses:?}"
        );
        let model = &self.model;
        let probes = canonical_ips();
        // The bound, and the ids held: the model's (of those without any value, the database
        // may have dropped some at a reopen after a compaction).
        let held = db.peers();
        assert!(
            held.len() <= self.max_nodes,
            "{when}: {} ids held, max_nodes {}",
            held.len(),
            self.max_nodes
        );
        for peer in &held {
            assert!(
                model.entries.contains_key(&peer.id),
                "{when}: {} is held",
                peer.id
            );
        }
        for (id, e) in &model.entries {
            assert!(
                e.is_blank() || held.iter().any(|p| p.id == *id),
                "{when}: {id} is not held"
            );
        }
        let ids = (0..IDS as u8)
            .map(pool_id)
            .chain((0..FLOOD_IDS).map(flood_id));
        for id in ids {
            let expected = model
                .entries
                .get(&id)
                .cloned()
                .unwrap_or_default()
                .observed(&probes);
            assert_eq!(
                observe(db, &id, &probes),
                expected,
                "{when}: state of {id} differs"
            );
        }
        let nodes = model.entries.values().filter(|e| e.has_record()).count();
        assert_eq!(db.len(), nodes, "{when}: node count differs");
        assert_eq!(
            observe_local_seq(db),
            model.local_seq,
            "{when}: local seq differs"
        );
        // Seeds: pongs are decades past or far future, so a day's age splits them. With room
        // for every id, `query_seeds` returns every eligible node.
        let day = Duration::from_secs(24 * 3600);
        let min_pong = nanos(SystemTime::now() - day);
        let mut seeds: Vec<String> = db
            .query_seeds(IDS + usize::from(FLOOD_IDS), day)
            .iter()
            .map(Node::to_string)
            .collect();
        seeds.sort();
        let mut expected: Vec<String> = model
            .entries
            .iter()
            .filter(|(id, e)| e.is_seed(id, &self.self_id, min_pong))
            .filter_map(|(_, e)| e.node.as_ref().map(Node::to_string))
            .collect();
        expected.sort();
        assert_eq!(seeds, expected, "{when}: seeds differ");
    }

    fn check_recovery(&self, db: &NodeDb, when: &str, torn_ok: bool) {
        let summary = db.recovery();
        if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
            let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
            let mut headers: Vec<_> = listing.segments.iter().map(|s| s.header).collect();
            headers.sort_by_key(|h| h.segment_id);
            eprintln!(
                "{when}: {} events, {summary:?}, segments {headers:#?}",
                self.events.len()
            );
        }
        assert_eq!(
            summary.next_seq,
            self.events.len() as u64 + 1,
            "{when}: the log's sequence numbers do not match the acknowledged writes"
        );
        for problem in &summary.problems {
            assert!(
                torn_ok && problem.kind == ProblemKind::TornTail,
                "{when}: unexpected problem {problem}"
            );
        }
        self.check(db, when);
    }

    fn next_dir(&mut self) -> PathBuf {
        self.dirs += 1;
        self.scratch.sub(&format!("db{}", self.dirs))
    }

    /// The segment the database appends to (the last of the replay plan), if it is not a
    /// compacted one.
    fn last_segment(&self) -> Option<SegmentFile> {
        let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
        ReplayPlan::new(listing.segments)
            .live
            .pop()
            .filter(|s| !s.header.is_compacted())
    }

    /// The records with sequence numbers `first..=last` in the (open) database's live
    /// segments, as the files hold them now.
    fn logged(&self, first: u64, last: u64) -> BTreeMap<u64, Event> {
        let listing = list_dir(&self.dir, Listing::Strict).expect("listing the database");
        let mut found = BTreeMap::new();
        for segment in ReplayPlan::new(listing.segments).live {
            let bytes = fs::read(&segment.path).unwrap();
            for item in SegmentScanner::new(&bytes, salt_seed(segment.header.salt)) {
                if let ScanItem::Record { record, .. } = item {
                    if (first..=last).contains(&record.seq) {
                        found.insert(record.seq, record.event);
                    }
                }
            }
        }
        found
    }

    /// Expiration writes its records in the index's order, which the model does not know:
    /// takes the order of the records from `first` on from the log (a torn tail can cut
    /// the group), after checking they expire the model's ids and IP slots. After a
    /// compaction the group is inside the compacted segment, which is never torn, so only
    /// `expire_nodes` needs it.
    fn expiry_order(&mut self, first: u64) {
        let found = self.logged(first, self.events.len() as u64);
        let group = &mut self.events[first as usize - 1..];
        let mut want: Vec<_> = group.iter().map(expiry_key).collect();
        let mut got: Vec<_> = found.values().map(expiry_key).collect();
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "expiration wrote other ids or IPs than the model expired"
        );
        for (slot, event) in group.iter_mut().zip(found.into_values()) {
            *slot = event;
        }
    }

    /// Cuts the closed database's last segment and works out the acknowledged prefix that
    /// must survive: exactly the records whose frames end at or before the cut.
    fn tear(&mut self, cut: u16, garbage: &[u8]) {
        let garbage = &garbage[..garbage.len().min(48)];
        let Some(last) = self.last_segment() else {
            return;
        };
        let bytes = fs::read(&last.path).unwrap();
        let cut = HEADER_LEN + cut as usize % (bytes.len() - HEADER_LEN + 1);
        let mut file = bytes[..cut].to_vec();
        file.extend_from_slice(garbage);
        let mut kept = last.header.first_seq - 1;
        let mut scanner = SegmentScanner::new(&bytes, salt_seed(last.header.salt));
        for item in scanner.by_ref() {
            let ScanItem::Record {
                offset,
                len,
                record,
            } = item
            else {
                panic!("damage in a segment peerlog wrote and closed cleanly");
            };
            let i = (record.seq - 1) as usize;
            let expected = self
                .events
                .get(i)
                .unwrap_or_else(|| panic!("record {} was never acknowledged", record.seq));
            assert_eq!(&record.event, expected, "record {} differs", record.seq);
            // A record survives when the torn file still holds its whole frame with every
            // checksummed byte unchanged. The padding is not checksummed, so garbage that lands
            // there leaves the record intact; and garbage can repeat the very bytes that were
            // cut (fuzz findings in this oracle). Frames are longer than the garbage, so only
            // the frame across the cut can be completed.
            let (offset, len) = (offset as usize, len as usize);
            let covered = FRAME_HEADER_LEN
                + u16::from_le_bytes([bytes[offset + 12], bytes[offset + 13]]) as usize;
            if offset + len <= file.len()
                && file[offset..offset + covered] == bytes[offset..offset + covered]
            {
                kept = record.seq;
            }
        }
        fs::write(&last.path, file).unwrap();
        self.truncate(kept as usize);
    }
}

/// An arbitrary sequence of API operations with reopens, crash images, torn tails and injected
/// I/O failures: after each reopen the state equals the model's state for the acknowledged
/// prefix, and the recovery reports no problem but the torn tail it was given.
pub fn check_ops_model(data: &[u8]) {
    // Every segment, however small, replayed with the checksum helper too.
    set_check_ahead_from(0);
    let (max_nodes, steps) = decode_steps(data);
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        eprintln!("max_nodes {max_nodes}: {steps:#?}");
    }
    let scratch = Scratch::new();
    let mut h = Harness {
        dir: scratch.sub("db0"),
        scratch,
        dirs: 0,
        armed: Arc::default(),
        self_id: pool_id(0),
        events: Vec::new(),
        model: ModelState::default(),
        poisoned: false,
        max_nodes,
    };
    let mut db = h.open();
    for (n, step) in steps.into_iter().enumerate() {
        h.take_fired();
        let op = match step {
            Step::Op(op) => op,
            Step::Flood { seed, count } => {
                for k in 0..count % 32 {
                    let id = flood_id(seed.wrapping_add(k.wrapping_mul(7)));
                    let at = Time {
                        past: (seed ^ k) % 3 == 0,
                        secs: u32::from(k) * 1000 + u32::from(seed),
                        nanos: 0,
                    }
                    .at();
                    // Three /24s, one /48, and the IPv4-mapped form of the first /24.
                    let ip = match (seed ^ k) % 5 {
                        0 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 5, 0, 0, 0, 0, k.into())),
                        1 => IpAddr::V6(Ipv4Addr::new(10, 5, 0, k).to_ipv6_mapped()),
                        r => IpAddr::V4(Ipv4Addr::new(10, 5, r, k)),
                    };
                    match seed.wrapping_add(k) % 3 {
                        0 => h.write_with(&db, Event::Pong { id, at }, || {
                            db.update_last_pong(&id, at)
                        }),
                        _ => h.update_node(&db, Node::new(id, ip, 30303, 30303)),
                    }
                }
                h.check(&db, &format!("step {n}: after a flood"));
                continue;
            }
            Step::IpFlood { who, seed, count } => {
                for k in 0..count % 32 {
                    let ip = flood_ip(seed.wrapping_add(k.wrapping_mul(5)));
                    let at = Time {
                        past: (seed ^ k) % 4 == 0,
                        secs: u32::from(seed ^ k) % 8,
                        nanos: 0,
                    }
                    .at();
                    let (id, ip_event) = (pool_id(who), ip.to_canonical());
                    match seed.wrapping_add(k) % 3 {
                        0 => h.write_with(
                            &db,
                            Event::PingFrom {
                                id,
                                ip: ip_event,
                                at,
                            },
                            || db.update_last_ping_from(&id, ip, at),
                        ),
                        1 => h.write_with(
                            &db,
                            Event::PongFrom {
                                id,
                                ip: ip_event,
                                at,
                            },
                            || db.update_last_pong_from(&id, ip, at),
                        ),
                        _ => {
                            let fails = u32::from(k % 2);
                            h.write_with(
                                &db,
                                Event::FindFailsAt {
                                    id,
                                    ip: ip_event,
                                    fails,
                                },
                                || db.update_find_fails_at(&id, ip, fails),
                            )
                        }
                    }
                }
                h.check(&db, &format!("step {n}: after an IP flood"));
                continue;
            }
        };
        match op {
            Op::Update {
                who,
                v6,
                ip,
                udp,
                tcp,
            } => {
                let ip = if v6 {
                    IpAddr::V6(Ipv6Addr::from(ip))
                } else {
                    IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]))
                };
                h.update_node(&db, Node::new(pool_id(who), ip, udp, tcp));
            }
            Op::Ping { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.write_with(&db, Event::Ping { id, at }, || db.update_last_ping(&id, at));
            }
            Op::Pong { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.write_with(&db, Event::Pong { id, at }, || db.update_last_pong(&id, at));
            }
            Op::Fails { who, fails } => {
                let id = pool_id(who);
                h.write_with(&db, Event::FindFails { id, fails }, || {
                    db.update_find_fails(&id, fails)
                });
            }
            Op::Burst { seed, count } => {
                for k in 0..count % 48 {
                    let who = seed.wrapping_add(k);
                    let id = pool_id(who);
                    let time = Time {
                        past: (seed ^ k) % 5 == 0,
                        secs: u32::from(k) * 1000 + u32::from(seed),
                        nanos: u32::from(k),
                    };
                    let at = time.at();
                    match (seed.wrapping_add(k)) % 4 {
                        0 => {
                            let ip = IpAddr::V4(Ipv4Addr::new(10, seed, k, who));
                            h.update_node(&db, Node::new(id, ip, u16::from(k) * 7, 30303));
                        }
                        1 => h.write_with(&db, Event::Ping { id, at }, || {
                            db.update_last_ping(&id, at)
                        }),
                        2 => h.write_with(&db, Event::Pong { id, at }, || {
                            db.update_last_pong(&id, at)
                        }),
                        _ => {
                            let fails = u32::from(k);
                            h.write_with(&db, Event::FindFails { id, fails }, || {
                                db.update_find_fails(&id, fails)
                            });
                        }
                    }
                }
            }
            Op::Delete { who } => {
                let id = pool_id(who);
                let entry = h.model.entries.get(&id).cloned();
                let result = db.delete_node(&id);
                match entry {
                    None => result.expect("deleting an unknown id wrote nothing and cannot fail"),
                    // An entry without any value (a fail count of 0, IP slots with nothing
                    // but a fail count of 0) leaves no event in a compaction, so after one and
                    // a reopen the index no longer has it, and deleting it writes nothing;
                    // before, it writes a record. Both are invisible through the API: the log
                    // says which happened.
                    Some(e) if e.is_blank() && result.is_ok() => {
                        let seq = h.events.len() as u64 + 1;
                        if let Some(event) = h.logged(seq, seq).remove(&seq) {
                            assert_eq!(event, Event::NodeDeleted { id });
                            h.push(event);
                        }
                    }
                    Some(_) => match result {
                        Ok(()) => h.push(Event::NodeDeleted { id }),
                        Err(e) => h.failed(&e, "delete"),
                    },
                }
            }
            Op::Expire | Op::Compact => {
                // Several records: an injected failure part-way would leave an unknown prefix.
                h.disarm();
                let (expired, with_record) = model_expired(&h.model, &h.self_id);
                let result = match op {
                    Op::Expire => db.expire_nodes(),
                    _ => db.compact().map(|stats| stats.nodes_expired),
                };
                match result {
                    Ok(dropped) => {
                        assert_eq!(dropped, with_record, "op {n}: expired node count");
                        let first = h.events.len() as u64 + 1;
                        for event in expired {
                            h.push(event);
                        }
                        if matches!(op, Op::Expire) {
                            h.expiry_order(first);
                        }
                    }
                    Err(e) => {
                        // A poisoned database refuses the first expiry record (and then
                        // compaction), so nothing changed.
                        assert!(h.poisoned, "op {n}: {op:?} failed without cause: {e}");
                    }
                }
                h.check(&db, &format!("op {n}: after {op:?}"));
            }
            Op::Sync => {
                if let Err(e) = db.sync() {
                    assert!(
                        h.poisoned || h.take_fired(),
                        "op {n}: sync failed without cause: {e}"
                    );
                    h.poisoned = true;
                }
            }
            Op::Reopen => {
                h.close(db);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: reopen"), false);
            }
            Op::Crash => {
                let copy = h.next_dir();
                fs::create_dir(&copy).unwrap();
                for (name, bytes) in dir_contents(&h.dir) {
                    fs::write(copy.join(name), bytes).unwrap();
                }
                drop(db);
                h.dir = copy;
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: crash image"), false);
            }
            Op::TornTail { cut, garbage } => {
                h.close(db);
                h.tear(cut, &garbage);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: torn tail"), true);
                // The cut was repaired: one more reopen is clean.
                h.close(db);
                db = h.open();
                h.check_recovery(&db, &format!("op {n}: reopen after torn tail"), false);
            }
            Op::FailNext { step } => {
                h.armed.lock().unwrap().step = Some(FAIL_STEPS[step as usize % FAIL_STEPS.len()]);
            }
            Op::Record { who, variant } => h.update_record(&db, who, variant),
            Op::PingFrom { who, ip, time } => h.ping_from(&db, who, ip, time.at()),
            Op::PongFrom { who, ip, time } => h.pong_from(&db, who, ip, time.at()),
            Op::FailsAt { who, ip, fails } => h.fails_at(&db, who, ip, fails),
            Op::LocalSeq { seq } => h.local_seq(&db, seq),
            Op::BurstV2 { seed, count } => {
                for k in 0..count % 48 {
                    let who = seed.wrapping_add(k);
                    let ip = seed.wrapping_mul(3).wrapping_add(k);
                    let at = Time {
                        past: (seed ^ k) % 5 == 0,
                        secs: u32::from(k) * 1000 + u32::from(seed),
                        nanos: u32::from(k),
                    }
                    .at();
                    match (seed.wrapping_add(k)) % 5 {
                        0 => h.update_record(&db, who, k / 5),
                        1 => h.ping_from(&db, who, ip, at),
                        2 => h.pong_from(&db, who, ip, at),
                        3 => h.fails_at(&db, who, ip, u32::from(k)),
                        _ => h.local_seq(&db, u64::from(seed) << 8 | u64::from(k)),
                    }
                }
            }
        }
    }
    h.disarm();
    h.close(db);
    let db = h.open();
    h.check_recovery(&db, "final reopen", false);
    h.close(db);
}
