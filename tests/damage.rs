//! Exhaustive damage tests through the public API (docs/DAMAGE.md tabulates the outcomes).
//!
//! One pristine log is written once: every event kind, 4 KiB segments, several of them. Each
//! case copies it, damages the copy, opens it, and checks that
//! - `open` succeeds, or fails with the documented error and leaves the files as they were;
//! - the state is exactly the model built from the records that survive (so no value of a
//!   damaged record is ever returned, and nothing intact is lost);
//! - `recovery().problems` reports the damage: kind, file, offset and lost sequence numbers.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::testing::{list_dir, segment_file_name, ReplayPlan};
use peerlog::testing::{salt_seed, SegmentHeader, HEADER_LEN};
use peerlog::testing::{ScanItem, SegmentScanner};
use peerlog::{Error, Event, Node, NodeDb, NodeId, Options, ProblemKind};

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

/// Every id the log mentions (plus one it does not).
fn ids() -> Vec<NodeId> {
    (1..=12).map(id).chain([me(), id(0xEE)]).collect()
}

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

/// Writes the pristine log once and reads back where every record is.
fn pristine() -> &'static Pristine {
    static PRISTINE: OnceLock<Pristine> = OnceLock::new();
    PRISTINE.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("db");
        let db = NodeDb::open_with(&path, VERSION, me(), opts()).unwrap();
        let mut written = Vec::new();
        for round in 0..4u16 {
            for n in 1..=12u8 {
                let ip = if n % 3 == 0 {
                    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, round, n.into()))
                } else {
                    IpAddr::V4(Ipv4Addr::new(10, round as u8, 0, n))
                };
                let node = Node::new(id(n), ip, 30300 + round, 30303);
                db.update_node(&node).unwrap();
                written.push(Event::NodeUpdated(node));
                if n % 2 == 0 {
                    let at = far_future(u64::from(round) * 100 + u64::from(n));
                    db.update_last_pong(&id(n), at).unwrap();
                    written.push(Event::Pong { id: id(n), at });
                } else {
                    let at = far_future(u64::from(n));
                    db.update_last_ping(&id(n), at).unwrap();
                    written.push(Event::Ping { id: id(n), at });
                }
                if n % 4 == 1 {
                    let fails = u32::from(round) + u32::from(n);
                    db.update_find_fails(&id(n), fails).unwrap();
                    written.push(Event::FindFails { id: id(n), fails });
                }
            }
            db.delete_node(&id(5 + round as u8)).unwrap();
            written.push(Event::NodeDeleted {
                id: id(5 + round as u8),
            });
        }
        // The tail: a record of this node (which expiration drops whatever its age), then a
        // delete, a ping and the expiry, so the last three records are of different kinds.
        let own = Node::new(me(), IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 1);
        db.update_node(&own).unwrap();
        written.push(Event::NodeUpdated(own));
        for n in 1..=12 {
            // Every other node has a fresh pong, so that only this node's record expires.
            db.update_last_pong(&id(n), far_future(0)).unwrap();
            written.push(Event::Pong {
                id: id(n),
                at: far_future(0),
            });
        }
        db.delete_node(&id(1)).unwrap();
        written.push(Event::NodeDeleted { id: id(1) });
        db.update_last_ping(&id(3), far_future(7)).unwrap();
        written.push(Event::Ping {
            id: id(3),
            at: far_future(7),
        });
        // Drops this node's record and nothing else.
        assert_eq!(db.expire_nodes().unwrap(), 1);
        written.push(Event::NodeExpired { id: me() });
        db.close().unwrap();

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
        assert_eq!(events, written, "the log holds exactly the events written");
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

/// What the API says about one id.
type Observed = (Option<Node>, Option<SystemTime>, Option<SystemTime>, u32);

/// The state the records with the given sequence numbers amount to, per id of [`ids`].
fn model(records: &[Rec], keep: impl Fn(&Rec) -> bool) -> (Vec<Observed>, usize) {
    use std::collections::BTreeMap;
    let mut state: BTreeMap<NodeId, Observed> = BTreeMap::new();
    for r in records.iter().filter(|r| keep(r)) {
        let e = r.event.id().expect("the test writes no local seq");
        match &r.event {
            Event::NodeUpdated(node) => state.entry(*e).or_default().0 = Some(node.clone()),
            Event::Ping { at, .. } => state.entry(*e).or_default().1 = Some(*at),
            Event::Pong { at, .. } => state.entry(*e).or_default().2 = Some(*at),
            Event::FindFails { fails, .. } => state.entry(*e).or_default().3 = *fails,
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {
                state.remove(e);
            }
            other => panic!("the test writes no {} events", other.kind()),
        }
    }
    let nodes = state.values().filter(|o| o.0.is_some()).count();
    (
        ids()
            .iter()
            .map(|i| state.get(i).cloned().unwrap_or_default())
            .collect(),
        nodes,
    )
}

fn observe(db: &NodeDb) -> (Vec<Observed>, usize) {
    (
        ids()
            .iter()
            .map(|i| {
                (
                    db.node(i),
                    db.last_ping(i),
                    db.last_pong(i),
                    db.find_fails(i),
                )
            })
            .collect(),
        db.len(),
    )
}

/// A fresh copy of the pristine directory.
struct Case {
    _dir: tempfile::TempDir,
    path: PathBuf,
}

impl Case {
    fn new() -> Case {
        let dir = tempfile::tempdir().unwrap();
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
        still.retain(|p| p.0 != ProblemKind::TornTail);
        let fresh = Node::new(id(0xEE), IpAddr::V4(Ipv4Addr::new(192, 0, 2, 9)), 9, 9);
        db.update_node(&fresh).unwrap();
        db.close().unwrap();
        let db = self.open().unwrap();
        assert_eq!(problems(&db), still, "{what}: problems after the reopen");
        assert_eq!(db.node(&fresh.id), Some(fresh), "{what}: write lost");
        let (mut after, n) = observe(&db);
        let (mut expected, m) = before;
        let fresh_slot = ids().iter().position(|i| *i == id(0xEE)).unwrap();
        after[fresh_slot] = Default::default();
        expected[fresh_slot] = Default::default();
        assert_eq!((after, n), (expected, m + 1), "{what}: state changed");
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
type Reported = (ProblemKind, String, u64, Option<(u64, u64)>);

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

#[test]
fn pristine_log_has_every_event_kind_and_reopens_cleanly() {
    let p = pristine();
    let kinds: std::collections::BTreeSet<&str> =
        p.records.iter().map(|r| r.event.kind().name()).collect();
    assert_eq!(
        kinds.into_iter().collect::<Vec<_>>(),
        ["delete", "expire", "fails", "node", "ping", "pong"]
    );
    let names: Vec<&str> = last_records(3)
        .iter()
        .map(|r| r.event.kind().name())
        .collect();
    assert_eq!(names, ["delete", "ping", "expire"]);
    let case = Case::new();
    let db = case.open_expecting("pristine", |_| true);
    assert!(db.recovery().problems.is_empty());
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
                Error::Corrupt { path, .. } | Error::NotADatabase { file: path, .. } => {
                    assert_eq!(path, case.last(), "{what}")
                }
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
                ProblemKind::TornTail,
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
fn flip_every_bit_of_the_last_three_records() {
    let p = pristine();
    let last = p.segments.len() - 1;
    let tail = last_records(3);
    let flips: Vec<(usize, usize)> = (0..tail.len())
        .flat_map(|k| (0..tail[k].len * 8).map(move |bit| (k, bit)))
        .collect();
    for_each_parallel(&flips, |&(k, bit)| {
        let rec = &tail[k];
        {
            let what = format!("record {} bit {bit}", rec.seq);
            let case = Case::new();
            case.edit(&case.last(), |b| b[rec.offset + bit / 8] ^= 1 << (bit % 8));
            if bit / 8 >= rec.covered {
                // The frame's zero padding is not covered by the checksum and not read.
                let db = case.open_expecting(&what, |_| true);
                assert_eq!(problems(&db), vec![], "{what}");
                return;
            }
            let db = case.open_expecting(&what, |r| r.seq != rec.seq);
            let expected = if k + 1 == tail.len() {
                // The last record: damage at the end of the log is a torn tail; what it held
                // is unknown.
                (ProblemKind::TornTail, rec.offset as u64, None)
            } else {
                (
                    ProblemKind::Damaged,
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
            ProblemKind::Damaged,
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
            ProblemKind::Missing,
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
                    .all(|(kind, file, _, lost)| *kind == ProblemKind::Duplicate
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
            ProblemKind::Missing,
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
            match case.refused(&what) {
                // Too short to hold the magic number: not recognisable as peerlog's.
                Error::NotADatabase { file, .. } if cut < 8 => {
                    assert_eq!(file, case.segment(segment))
                }
                Error::Corrupt { path, offset, .. } if cut >= 8 => {
                    assert_eq!((path, offset), (case.segment(segment), 0))
                }
                e => panic!("{what}: unexpected error {e}"),
            }
        }
        let what = format!("segment {segment} header bit flip");
        let case = Case::new();
        case.edit(&case.segment(segment), |b| b[20] ^= 4);
        assert!(
            matches!(case.refused(&what), Error::Corrupt { .. }),
            "{what}"
        );
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
