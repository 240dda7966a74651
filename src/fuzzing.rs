//! Checking code shared by the fuzz targets and the corpus tests (not a stable API).
//!
//! Each `check_*` function takes the raw bytes a fuzzer produced and panics when a property
//! that peerlog promises is violated. The fuzz targets in `fuzz/` call them, and so does
//! `tests/fuzz_corpus.rs`, which replays every committed corpus file and crash artifact, so
//! that a plain `cargo test` exercises the targets without a fuzzer.
//!
//! | target | input | property |
//! |---|---|---|
//! | `open_segment` | a flags byte, then segment files concatenated (each starts with the magic) | `open` never panics; it fails only with `Corrupt`/`NotADatabase` and then changes nothing; every node, ping, pong and fail count it returns was in an intact record; a reopen gives the same state; a write after it survives a reopen |
//! | `ops_model` | API operations decoded with `arbitrary` | after every reopen, crash image and torn tail, the state equals a model's state for the acknowledged prefix, and the sequence numbers add up |
//! | `node_rlp` | bytes | whatever `Node::from_rlp` accepts re-encodes to the same bytes; any node round-trips |
//! | `enode_url` | bytes | whatever parses as an enode URL prints as its canonical form and parses back; any node round-trips |

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};

use crate::event::Event;
use crate::faults::FailPoints;
use crate::journal::dir::{list_dir, segment_file_name, Listing, SegmentFile, LOCK_FILE};
use crate::journal::format::{
    align, decode_frame, salt_seed, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN,
    MAGIC, MAX_PAYLOAD_LEN, MIN_PAYLOAD_LEN,
};
use crate::journal::reader::{ScanItem, SegmentScanner};
use crate::journal::replay::{set_check_ahead_from, ReplayPlan};
use crate::journal::ProblemKind;
use crate::{Error, Node, NodeDb, NodeId, Options};

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

/// Every value an intact record anywhere in the files carries, per id: the only values an
/// open database may return.
#[derive(Default)]
struct IntactValues {
    nodes: BTreeMap<NodeId, BTreeSet<String>>,
    pings: BTreeMap<NodeId, BTreeSet<i64>>,
    pongs: BTreeMap<NodeId, BTreeSet<i64>>,
    fails: BTreeMap<NodeId, BTreeSet<u32>>,
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
            return;
        };
        self.ids.insert(id);
        match event {
            Event::NodeUpdated(node) => {
                self.nodes.entry(id).or_default().insert(node.to_string());
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
            _ => {}
        }
    }
}

/// What the public API says about one id.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Observed {
    node: Option<Node>,
    ping: Option<i64>,
    pong: Option<i64>,
    fails: u32,
}

fn observe(db: &NodeDb, id: &NodeId) -> Observed {
    Observed {
        node: db.node(id),
        ping: db.last_ping(id).map(nanos),
        pong: db.last_pong(id).map(nanos),
        fails: db.find_fails(id),
    }
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

fn fuzz_options() -> Options {
    Options {
        segment_size: crate::MIN_SEGMENT_SIZE,
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
        fs::write(dir.join(segment_file_name(id)), file).unwrap();
    }
    let before = dir_contents(&dir);
    let intact = IntactValues::of(&files);

    let db = match NodeDb::open_with(&dir, version, NodeId([0xAA; 64]), fuzz_options()) {
        Ok(db) => db,
        Err(
            e @ (Error::Corrupt { .. } | Error::NotADatabase { .. } | Error::NewerFormat { .. }),
        ) => {
            let mut after = dir_contents(&dir);
            after.remove(LOCK_FILE);
            assert_eq!(after, before, "a refused open ({e}) changed the directory");
            return;
        }
        Err(e) => panic!("open failed with an unexpected error: {e}"),
    };
    let wiped = headers
        .iter()
        .flatten()
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
    let state: Vec<Observed> = candidates.iter().map(|id| observe(&db, id)).collect();
    let mut with_record = 0;
    for (id, seen) in candidates.iter().zip(&state) {
        if wiped {
            let empty = Observed {
                node: None,
                ping: None,
                pong: None,
                fails: 0,
            };
            assert_eq!(seen, &empty, "{id} survived a version wipe");
            continue;
        }
        if let Some(node) = &seen.node {
            with_record += 1;
            assert!(
                intact
                    .nodes
                    .get(id)
                    .is_some_and(|s| s.contains(&node.to_string())),
                "open returned {node} which no intact record holds"
            );
        }
        if let Some(ping) = seen.ping {
            assert!(intact.pings.get(id).is_some_and(|s| s.contains(&ping)));
        }
        if let Some(pong) = seen.pong {
            assert!(intact.pongs.get(id).is_some_and(|s| s.contains(&pong)));
        }
        if seen.fails != 0 {
            assert!(intact
                .fails
                .get(id)
                .is_some_and(|s| s.contains(&seen.fails)));
        }
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
        assert_eq!(&observe(&db, id), seen, "{id} changed across a reopen");
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

fn pool_id(who: u8) -> NodeId {
    NodeId([(who as usize % IDS) as u8 * 0x11 + 1; 64])
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
    /// with the default durability), and the copy is opened.
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
}

/// What the model knows about one id (its presence in the map means the index has an entry).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
struct ModelEntry {
    node: Option<Node>,
    ping: Option<i64>,
    pong: Option<i64>,
    fails: u32,
}

type ModelState = BTreeMap<NodeId, ModelEntry>;

fn model_apply(state: &mut ModelState, event: &Event) {
    match event {
        Event::NodeUpdated(node) => state.entry(node.id).or_default().node = Some(node.clone()),
        Event::Ping { id, at } => state.entry(*id).or_default().ping = Some(nanos(*at)),
        Event::Pong { id, at } => state.entry(*id).or_default().pong = Some(nanos(*at)),
        Event::FindFails { id, fails } => state.entry(*id).or_default().fails = *fails,
        Event::NodeDeleted { id } | Event::NodeExpired { id } => {
            state.remove(id);
        }
        other => unreachable!("ops_model writes no {} events", other.kind()),
    }
}

fn model_state(events: &[Event]) -> ModelState {
    let mut state = ModelState::new();
    for event in events {
        model_apply(&mut state, event);
    }
    state
}

/// Ids expiration drops (24 h expiration; times are either decades past or far future, and an
/// id with neither ping nor pong, or a record without a pong, was touched just now: it is
/// judged by that, and stays).
fn model_expired(state: &ModelState, self_id: &NodeId) -> Vec<NodeId> {
    let threshold = nanos(SystemTime::now()) - 24 * 3600 * 1_000_000_000;
    state
        .iter()
        .filter(|(id, e)| match e.node {
            Some(_) => *id == self_id || e.pong.is_some_and(|p| p < threshold),
            None => e.ping.max(e.pong).is_some_and(|t| t < threshold),
        })
        .map(|(id, _)| *id)
        .collect()
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
    poisoned: bool,
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

    /// A write's outcome: applied to the model when acknowledged; an error only with cause.
    fn written(&mut self, result: Result<(), Error>, event: Event) {
        match result {
            Ok(()) => self.events.push(event),
            Err(e) => assert!(
                self.poisoned || self.take_fired(),
                "{} failed without cause: {e}",
                event.kind().name()
            ),
        }
    }

    fn check(&self, db: &NodeDb, when: &str) {
        let model = model_state(&self.events);
        for who in 0..IDS as u8 {
            let id = pool_id(who);
            let entry = model.get(&id).cloned().unwrap_or_default();
            let expected = Observed {
                node: entry.node,
                ping: entry.ping,
                pong: entry.pong,
                fails: entry.fails,
            };
            assert_eq!(observe(db, &id), expected, "{when}: state of {id} differs");
        }
        let nodes = model.values().filter(|e| e.node.is_some()).count();
        assert_eq!(db.len(), nodes, "{when}: node count differs");
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
    /// the group), after checking they expire the model's ids. After a compaction the group
    /// is inside the compacted segment, which is never torn, so only `expire_nodes` needs it.
    fn expiry_order(&mut self, first: u64) {
        let found = self.logged(first, self.events.len() as u64);
        let group = &mut self.events[first as usize - 1..];
        let mut want: Vec<NodeId> = group.iter().filter_map(|e| e.id().copied()).collect();
        let mut got: Vec<NodeId> = found.values().filter_map(|e| e.id().copied()).collect();
        assert!(found
            .values()
            .all(|e| matches!(e, Event::NodeExpired { .. })));
        want.sort();
        got.sort();
        assert_eq!(
            got, want,
            "expiration wrote other ids than the model expired"
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
                .get_mut(i)
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
        self.events.truncate(kept as usize);
    }
}

/// An arbitrary sequence of API operations with reopens, crash images, torn tails and injected
/// I/O failures: after each reopen the state equals the model's state for the acknowledged
/// prefix, and the recovery reports no problem but the torn tail it was given.
pub fn check_ops_model(data: &[u8]) {
    // Every segment, however small, replayed with the checksum helper too.
    set_check_ahead_from(0);
    let mut u = Unstructured::new(data);
    let mut ops = Vec::new();
    while ops.len() < 96 {
        match u.arbitrary::<Op>() {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        eprintln!("{ops:#?}");
    }
    let scratch = Scratch::new();
    let mut h = Harness {
        dir: scratch.sub("db0"),
        scratch,
        dirs: 0,
        armed: Arc::default(),
        self_id: pool_id(0),
        events: Vec::new(),
        poisoned: false,
    };
    let mut db = h.open();
    for (n, op) in ops.into_iter().enumerate() {
        h.take_fired();
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
                let node = Node::new(pool_id(who), ip, udp, tcp);
                let result = db.update_node(&node);
                h.written(result, Event::NodeUpdated(node));
            }
            Op::Ping { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.written(db.update_last_ping(&id, at), Event::Ping { id, at });
            }
            Op::Pong { who, time } => {
                let (id, at) = (pool_id(who), time.at());
                h.written(db.update_last_pong(&id, at), Event::Pong { id, at });
            }
            Op::Fails { who, fails } => {
                let id = pool_id(who);
                h.written(
                    db.update_find_fails(&id, fails),
                    Event::FindFails { id, fails },
                );
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
                    let result = match (seed.wrapping_add(k)) % 4 {
                        0 => {
                            let ip = IpAddr::V4(Ipv4Addr::new(10, seed, k, who));
                            let node = Node::new(id, ip, u16::from(k) * 7, 30303);
                            (db.update_node(&node), Event::NodeUpdated(node))
                        }
                        1 => (db.update_last_ping(&id, at), Event::Ping { id, at }),
                        2 => (db.update_last_pong(&id, at), Event::Pong { id, at }),
                        _ => {
                            let fails = u32::from(k);
                            (
                                db.update_find_fails(&id, fails),
                                Event::FindFails { id, fails },
                            )
                        }
                    };
                    h.written(result.0, result.1);
                }
            }
            Op::Delete { who } => {
                let id = pool_id(who);
                let entry = model_state(&h.events).get(&id).cloned();
                let result = db.delete_node(&id);
                match entry {
                    None => result.expect("deleting an unknown id wrote nothing and cannot fail"),
                    // An entry without any value (a fail count of 0 and nothing else) leaves
                    // no event in a compaction, so after one and a reopen the index no longer
                    // has it, and deleting it writes nothing; before, it writes a record. Both
                    // are invisible through the API: the log says which happened.
                    Some(e) if e == ModelEntry::default() && result.is_ok() => {
                        let seq = h.events.len() as u64 + 1;
                        if let Some(event) = h.logged(seq, seq).remove(&seq) {
                            assert_eq!(event, Event::NodeDeleted { id });
                            h.events.push(event);
                        }
                    }
                    Some(_) => h.written(result, Event::NodeDeleted { id }),
                }
            }
            Op::Expire | Op::Compact => {
                // Several records: an injected failure part-way would leave an unknown prefix.
                h.disarm();
                let model = model_state(&h.events);
                let expired = model_expired(&model, &h.self_id);
                let with_record = expired.iter().filter(|id| model[id].node.is_some()).count();
                let result = match op {
                    Op::Expire => db.expire_nodes(),
                    _ => db.compact().map(|stats| stats.nodes_expired),
                };
                match result {
                    Ok(dropped) => {
                        assert_eq!(dropped, with_record, "op {n}: expired node count");
                        let first = h.events.len() as u64 + 1;
                        h.events
                            .extend(expired.into_iter().map(|id| Event::NodeExpired { id }));
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
        }
    }
    h.disarm();
    h.close(db);
    let db = h.open();
    h.check_recovery(&db, "final reopen", false);
    h.close(db);
}
