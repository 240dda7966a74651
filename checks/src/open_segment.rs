//! `open_segment`: arbitrary bytes as segment files.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;

use peerlog::testing::{
    align, decode_frame, decode_payload, parse_segment_name, salt_seed, segment_file_name,
    set_check_ahead_from, SegmentHeader, FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN, LOCK_FILE,
    MAGIC, MAX_PAYLOAD_LEN, MAX_SEQ, MIN_PAYLOAD_LEN,
};
use peerlog::{DamageKind, Error, Event, Node, NodeDb, NodeId, Options};

use crate::model::{nanos, observe, observe_local_seq, Observed, Slot};
use crate::scratch::{dir_contents, Scratch};

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
pub(crate) const MAX_FILES: usize = 8;

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
pub(crate) fn split_input(data: &[u8]) -> (u8, Vec<Vec<u8>>) {
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

/// The node a check writes after an open (to see that a write goes on and survives a
/// reopen): an id and an IP no template or input is built with.
pub(crate) fn fresh_node() -> Node {
    Node::new(
        NodeId([0xEE; 64]),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, 1)),
        30303,
        30303,
    )
}

pub(crate) fn fix_header_crc(file: &mut [u8]) {
    if file.len() >= HEADER_LEN {
        let crc = crc32fast::hash(&file[..56]);
        file[56..60].copy_from_slice(&crc.to_le_bytes());
    }
}

pub(crate) fn file_salt(file: &[u8]) -> Option<u64> {
    SegmentHeader::decode(file).ok().map(|h| h.salt)
}

pub(crate) fn fix_record_crcs(file: &mut [u8]) {
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
pub(crate) struct IntactValues {
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
                    if let Some((_, event)) = decode_payload(frame.kind, frame.payload) {
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

/// 4 KiB segments, so that rotation and compaction happen every few dozen writes, and
/// `Process` durability: no syncer thread, whose fsyncs at moments of its own would make an
/// injected `log.fsync` failure fire at a time the model cannot know.
pub(crate) fn fuzz_options() -> Options {
    Options {
        segment_size: peerlog::MIN_SEGMENT_SIZE,
        durability: peerlog::Durability::Process,
        ..Options::default()
    }
}

/// Arbitrary bytes as one or more segment files: `open` never panics, fails only with a clear
/// error and then leaves the files untouched, and returns nothing but values of intact records;
/// reopening gives the same state, and a write after the open survives a reopen.
pub fn check_open_segment(data: &[u8]) {
    // Every segment, however small, replayed with the checksum helper too.
    set_check_ahead_from(0);
    let input = Input::of(data);
    let scratch = Scratch::new();
    let dir = scratch.sub("db");
    let listed = input.write_to(&dir);
    let before = dir_contents(&dir);
    let intact = IntactValues::of(&input.files);
    let db = match NodeDb::open_with(&dir, input.version, NodeId([0xAA; 64]), fuzz_options()) {
        Ok(db) => db,
        Err(e @ (Error::DamagedHeader { .. } | Error::NewerFormat { .. })) => {
            let mut after = dir_contents(&dir);
            after.remove(LOCK_FILE);
            assert_eq!(after, before, "a refused open ({e}) changed the directory");
            return;
        }
        Err(e) => panic!("open failed with an unexpected error: {e}"),
    };
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
    let recovered = Recovered::check(&db, &intact, input.wipes(&listed), &dir);
    recovered.check_write_and_reopen(db, &dir, input.version, &intact);
}

/// An `open_segment` input: its flags, its files (checksums fixed as the flags say), their
/// headers where they decode, and the protocol version to open with.
struct Input {
    files: Vec<Vec<u8>>,
    headers: Vec<Option<SegmentHeader>>,
    version: u64,
}

impl Input {
    fn of(data: &[u8]) -> Input {
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
        Input {
            files,
            headers,
            version,
        }
    }

    /// Writes the files into a new `dir`, each named after its header's segment id (else its
    /// place); returns whether each is named like a segment. A header's id of 10^16 or more
    /// gets a longer name, which the directory listing ignores (not named like a peerlog
    /// file), so such a file is no part of the database (and its protocol version wipes
    /// nothing).
    fn write_to(&self, dir: &Path) -> Vec<bool> {
        fs::create_dir(dir).unwrap();
        let mut used = BTreeSet::new();
        let mut listed = Vec::with_capacity(self.files.len());
        for (i, (file, header)) in self.files.iter().zip(&self.headers).enumerate() {
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
        listed
    }

    /// Whether opening wipes the directory: a listed segment of another protocol version.
    fn wipes(&self, listed: &[bool]) -> bool {
        self.headers
            .iter()
            .zip(listed)
            .filter(|(_, &listed)| listed)
            .filter_map(|(h, _)| h.as_ref())
            .any(|h| h.protocol_version != self.version)
    }
}

/// What the open database returned: the state of every id an intact record names, at every
/// IP one names, and the local seq.
struct Recovered {
    candidates: Vec<NodeId>,
    probes: Vec<IpAddr>,
    state: Vec<Observed>,
    local_seq: Option<u64>,
    with_record: usize,
}

impl Recovered {
    /// Reads the state and checks it: empty after a wipe, else only values of intact records;
    /// the node count; problems inside the directory with sensible lost ranges.
    fn check(db: &NodeDb, intact: &IntactValues, wiped: bool, dir: &Path) -> Recovered {
        let candidates: Vec<NodeId> = intact.ids.iter().copied().collect();
        let probes: Vec<IpAddr> = intact.ips.iter().copied().collect();
        let state: Vec<Observed> = candidates
            .iter()
            .map(|id| observe(db, id, &probes))
            .collect();
        let local_seq = observe_local_seq(db);
        let mut with_record = 0;
        for (id, seen) in candidates.iter().zip(&state) {
            if wiped {
                let empty = Observed {
                    ips: probes.iter().map(|&ip| (ip, Slot::default())).collect(),
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
                problem.path.starts_with(dir),
                "problem outside the directory"
            );
            if let Some((first, last)) = problem.lost {
                assert!(first <= last, "lost range {first}..={last} is empty");
            }
        }
        Recovered {
            candidates,
            probes,
            state,
            local_seq,
            with_record,
        }
    }

    /// A write after recovery continues the log and survives a reopen, with everything else;
    /// the reopen finds no torn tail (the recovery cut it).
    fn check_write_and_reopen(&self, db: NodeDb, dir: &Path, version: u64, intact: &IntactValues) {
        let fresh = fresh_node();
        // A log whose (forged) records reach MAX_SEQ leaves the writer no sequence number a
        // reader accepts: the write must then be refused, never acknowledged and lost.
        let exhausted = db.recovery().next_seq > MAX_SEQ;
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
        let db = NodeDb::open_with(dir, version, NodeId([0xAA; 64]), fuzz_options())
            .unwrap_or_else(|e| {
                panic!("a database peerlog recovered and closed fails to open: {e}")
            });
        if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
            eprintln!("after reopen: {:#?}", db.recovery());
        }
        for (id, seen) in self.candidates.iter().zip(&self.state) {
            assert_eq!(
                &observe(&db, id, &self.probes),
                seen,
                "{id} changed across a reopen"
            );
        }
        if self.local_seq.is_some() {
            assert_eq!(
                observe_local_seq(&db),
                self.local_seq,
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
        assert_eq!(db.len(), self.with_record + usize::from(write_fresh));
        for problem in &db.recovery().problems {
            assert_ne!(
                problem.kind,
                DamageKind::TornTail,
                "a torn tail survived the recovery that cut it: {problem}"
            );
        }
        db.close().expect("closing failed");
    }
}
