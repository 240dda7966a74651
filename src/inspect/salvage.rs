//! Salvage: moving segments whose header cannot be read out of the way, so that a database
//! opens again with everything its readable segments hold.

use std::fmt;
use std::fs::File;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};

use super::{check_dir, list_archive, InspectError};
use crate::error::IoContext;
use crate::event::LogRecord;
use crate::faults::FailPoints;
use crate::journal::dir::{
    create_segment, list_dir, move_into_damaged, parse_segment_name, DirListing, Listing,
    SegmentFile, UnreadableSegment, ARCHIVE_DIR,
};
use crate::journal::format::MIN_PAYLOAD_LEN;
use crate::journal::format::{
    salt_seed, SegmentHeader, FORMAT_VERSION, FRAME_HEADER_LEN, HEADER_LEN, MAX_SEGMENT_ID, MAX_SEQ,
};
use crate::journal::reader::{ScanItem, SegmentScanner};
use crate::journal::replay::{map_segment, replay, ReplayPlan};
use crate::journal::DamageKind;
use crate::lock::DirLock;
use crate::Error;

/// The smallest frame a segment can hold: a header and the shortest payload.
const MIN_FRAME_LEN: u64 = (FRAME_HEADER_LEN + MIN_PAYLOAD_LEN) as u64;

/// What [`salvage`] did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SalvageReport {
    /// Every segment moved aside: those of the directory first, then those of `archive/`, each
    /// in name order. Empty when every header was readable (nothing was changed).
    pub moved: Vec<SalvagedSegment>,
    /// When the last segment of the log was moved aside (how many records it held is
    /// unknown): the empty segment salvage started after it, and the sequence number the log
    /// goes on at, past anything the moved files could hold, so that no sequence number and
    /// no segment name is ever given twice. The sequence numbers in between are reported lost
    /// (records missing before that segment) until a compaction records them as a loss.
    /// When no readable segment is left (the only one was moved), the new segment takes the
    /// generation of the archive, else the protocol version and salt the moved file's header
    /// names (if its damage hit the version itself, the next open wipes it as another
    /// version's); a moved file that held nothing (cut within its header) starts no segment.
    pub resumed: Option<(PathBuf, u64)>,
}

impl SalvageReport {
    /// Whether nothing needed salvaging (and nothing was changed).
    pub fn is_empty(&self) -> bool {
        self.moved.is_empty()
    }
}

/// One segment file that [`salvage`] moved into `damaged/`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SalvagedSegment {
    /// Where it was.
    pub path: PathBuf,
    /// Where it is now: in the `damaged/` folder beside where it was.
    pub moved_to: PathBuf,
    /// It was in `archive/` (history kept by compaction, not part of the live log).
    pub archived: bool,
    /// Its size in bytes.
    pub size: u64,
    /// Why its header could not be read.
    pub reason: String,
    /// It holds nothing a record could be in: no byte past a header's length, or only zeros
    /// there.
    pub holds_nothing: bool,
    /// The sequence numbers lost with it.
    pub lost: Lost,
}

/// The sequence numbers a salvaged segment took with it, as far as the readable segments
/// around it tell: a header that cannot be read leaves the records behind it unreadable too
/// (their checksums are seeded with the salt the header held).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Lost {
    /// The readable segments around it leave these sequence numbers (first, last) missing from
    /// the log: it held them.
    Range(u64, u64),
    /// It came after every readable segment: whatever it held after this sequence number (the
    /// last one readable; 0 when nothing is) is lost, how much is unknown.
    After(u64),
    /// The readable segments around it leave no gap: no record of the log was lost with it.
    Nothing,
    /// An archived segment: the history it kept is lost; the live log is not affected.
    ArchivedHistory,
}

impl fmt::Display for Lost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Lost::Range(a, b) if a == b => write!(f, "sequence number {a} lost"),
            Lost::Range(a, b) => write!(f, "sequence numbers {a}..={b} lost"),
            Lost::After(0) => f.write_str("every sequence number it held lost"),
            Lost::After(n) => write!(f, "sequence numbers after {n} lost"),
            Lost::Nothing => f.write_str("no sequence numbers lost"),
            Lost::ArchivedHistory => {
                f.write_str("the archived history it held lost; the live log is not affected")
            }
        }
    }
}

/// Moves every segment file of `dir` and of its `archive/` whose header cannot be read (an
/// empty or cut file, another magic number, a header failing its checksum: see
/// docs/DAMAGE.md) into a `damaged/` folder beside it, so that the database opens again
/// with what its readable segments hold, and reports what each took with it.
///
/// It takes the database's lock (failing with [`Error::Locked`] while a `NodeDb` has the
/// directory open) and never deletes anything: a file whose name is taken in `damaged/` gets
/// a fresh one (`<name>.1`, `<name>.2`, ...). Every move is made durable (the folders are
/// synced) before it returns. A database whose headers are all readable is left as it is (an
/// empty report); one holding a segment of a newer format than this build reads is refused
/// with [`Error::NewerFormat`] and left as it is: that segment is not damaged, and a newer
/// peerlog reads it.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use peerlog::{inspect, NodeDb};
/// # let me: peerlog::NodeId = "11".repeat(64).parse()?;
/// # let db = NodeDb::open(dir.path(), 5, me)?;
/// # db.update_node(&format!("enode://{}@203.0.113.7:30303", "22".repeat(64)).parse()?)?;
/// # db.close()?;
/// # let segment = dir.path().join("0000000000000001.seg");
/// # let mut bytes = std::fs::read(&segment)?;
/// # bytes[20] ^= 1;
/// # std::fs::write(&segment, bytes)?;
/// // A bit flipped in a segment header: the database does not open...
/// assert!(matches!(NodeDb::open(dir.path(), 5, me), Err(peerlog::Error::DamagedHeader { .. })));
/// // ... until the segment is moved aside, with the records it held.
/// let report = inspect::salvage(dir.path())?;
/// assert_eq!(report.moved.len(), 1);
/// assert_eq!(report.moved[0].lost, inspect::Lost::After(0));
/// assert!(report.moved[0].moved_to.starts_with(dir.path().join("damaged")));
/// let db = NodeDb::open(dir.path(), 5, me)?;
/// assert_eq!(db.len(), 0);
/// # Ok(())
/// # }
/// ```
pub fn salvage(dir: &Path) -> Result<SalvageReport, InspectError> {
    check_dir(dir)?;
    // Looked at before the lock is taken, so that a directory without a database gets no
    // LOCK file.
    let has_database =
        |listing: &DirListing| !listing.segments.is_empty() || !listing.unreadable.is_empty();
    if !has_database(&list_dir(dir, Listing::Tolerant)?)
        && !has_database(&list_archive(dir, Listing::Tolerant)?)
    {
        return Err(InspectError::NoDatabase(dir.to_path_buf()));
    }
    let _lock = DirLock::acquire(dir)?;
    // Listed again under the lock: from here on nobody else changes the directory.
    let listing = list_dir(dir, Listing::Tolerant)?;
    let archive = list_archive(dir, Listing::Tolerant)?;
    if listing.unreadable.is_empty() && archive.unreadable.is_empty() {
        return Ok(SalvageReport::default());
    }
    // What each took with it, from the log as it opens without them; worked out before
    // anything moves, so that a read error changes nothing.
    let live_ids = listing
        .segments
        .iter()
        .map(|s| s.file_id.max(s.header.segment_id));
    let archived_ids = archive
        .segments
        .iter()
        .map(|s| s.file_id.max(s.header.segment_id));
    let unreadable_ids = listing
        .unreadable
        .iter()
        .chain(&archive.unreadable)
        .filter_map(|s| s.path.file_name()?.to_str().and_then(parse_segment_name));
    let max_id = live_ids
        .chain(archived_ids)
        .chain(unreadable_ids)
        .max()
        .unwrap_or(0);
    let largest = listing
        .segments
        .iter()
        .chain(&archive.segments)
        .map(|s| s.len)
        .max()
        .unwrap_or(0);
    let (lost, live) = lost_in_live_log(&listing.unreadable, listing.segments)?;
    // The end of the log moved aside: the log goes on in a new segment, created before
    // anything moves (a salvage interrupted after it finds the moved file's range as a gap
    // before that segment, and says so).
    let tail: Vec<&UnreadableSegment> = listing
        .unreadable
        .iter()
        .zip(&lost)
        .filter(|(_, lost)| matches!(lost, Lost::After(_)))
        .map(|(segment, _)| segment)
        .collect();
    // No readable segment left to go on from (the only segment was moved): the generation of
    // the archive, else the one the newest moved file's header names.
    let generation = match live.generation {
        Some(generation) => Some(generation),
        None if !tail.is_empty() => {
            let archived = archive.segments.iter().max_by_key(|s| s.header.segment_id);
            match archived {
                Some(segment) => Some(segment.header),
                None => generation_named_by(&tail)?,
            }
        }
        None => None,
    };
    let resumed = match &generation {
        Some(generation) if !tail.is_empty() => {
            let mut next_seq = live.next_seq;
            for segment in &tail {
                next_seq = next_seq.max(past(segment, generation.salt, largest, live.next_seq)?);
            }
            resume_after(dir, generation, max_id + 1, next_seq.min(MAX_SEQ), largest)?
        }
        _ => None,
    };
    let mut moved = Vec::new();
    for (unreadable, lost) in listing.unreadable.iter().zip(lost) {
        moved.push(move_aside(dir, unreadable, false, lost)?);
    }
    let archive_dir = dir.join(ARCHIVE_DIR);
    for unreadable in &archive.unreadable {
        moved.push(move_aside(
            &archive_dir,
            unreadable,
            true,
            Lost::ArchivedHistory,
        )?);
    }
    Ok(SalvageReport { moved, resumed })
}

/// What the readable live log tells salvage: the sequence number its next record gets, and
/// the generation of its newest segment (none when no segment is readable).
struct LiveLog {
    next_seq: u64,
    generation: Option<SegmentHeader>,
}

/// A sequence number past anything `segment` (a file at the end of the log whose header
/// cannot be read, held records from `from` on) could hold: past the records its size
/// allows (the smallest frame is 32 bytes; a file cut short of a header, which a segment
/// never is, counts as large as the largest segment of the database), and past the highest
/// intact record it shows when read with the generation's salt.
fn past(segment: &UnreadableSegment, salt: u64, largest: u64, from: u64) -> Result<u64, Error> {
    let header = HEADER_LEN as u64;
    let size = match segment.len < header {
        true => largest.max(segment.len),
        false => segment.len,
    };
    let mut next = from.saturating_add(size.saturating_sub(header) / MIN_FRAME_LEN);
    if segment.len > header {
        let map = map_segment(&segment.path)?;
        for item in SegmentScanner::<LogRecord>::new(&map, salt_seed(salt)) {
            if let ScanItem::Record { record, .. } = item {
                next = next.max(record.seq.saturating_add(1));
            }
        }
    }
    Ok(next)
}

/// The generation (protocol version and salt) the header of the newest of `tail` names, when
/// it holds them and a record could follow them (a file cut within its header lost nothing,
/// and a new log may start over): read from their places even though the header failed its
/// check, since that is the best guess there is of the version the database is opened with
/// (a wrong one only makes the next open wipe the segment salvage started).
fn generation_named_by(tail: &[&UnreadableSegment]) -> Result<Option<SegmentHeader>, Error> {
    let Some(newest) = tail.iter().max_by_key(|s| {
        let name = s.path.file_name().and_then(|n| n.to_str());
        name.and_then(parse_segment_name).unwrap_or(0)
    }) else {
        return Ok(None);
    };
    if holds_nothing(&newest.path)? {
        return Ok(None);
    }
    let mut fields = [0u8; 32];
    let mut file = File::open(&newest.path).at(&newest.path)?;
    if file.read_exact(&mut fields).is_err() {
        return Ok(None);
    }
    let u64_at = |at: usize| u64::from_le_bytes(fields[at..at + 8].try_into().expect("8 bytes"));
    Ok(Some(SegmentHeader {
        format: FORMAT_VERSION,
        flags: 0,
        protocol_version: u64_at(16),
        salt: u64_at(24),
        segment_id: 0,
        first_seq: 1,
        replaces_through: 0,
    }))
}

/// Starts the empty segment `id` of `generation` whose records begin at `next_seq`; nothing
/// when no id is left (only a forged directory gets there).
fn resume_after(
    dir: &Path,
    generation: &SegmentHeader,
    id: u64,
    next_seq: u64,
    largest: u64,
) -> Result<Option<(PathBuf, u64)>, Error> {
    if id > MAX_SEGMENT_ID {
        return Ok(None);
    }
    let header = SegmentHeader {
        format: FORMAT_VERSION,
        flags: 0,
        protocol_version: generation.protocol_version,
        salt: generation.salt,
        segment_id: id,
        first_seq: next_seq,
        replaces_through: 0,
    };
    let path = create_segment(dir, &header, largest, &FailPoints::default())?;
    Ok(Some((path, next_seq)))
}

/// The sequence numbers each of `unreadable` took with it, inferred from the readable
/// segments (`readable`) by file name. A segment's id is above those of every segment written
/// before it, so the log's gap just before the first readable segment named after it is what
/// it held, and one named after every readable segment held whatever came after the last
/// readable record. Except a compacted segment: its id is above that of the segment appended
/// to while it was written, and it restates everything before that segment; so when the
/// readable log starts with a gap no other file accounts for (only a compacted segment lets a
/// log start after 1), the newest unreadable file that leaves no gap of its own (else the
/// newest of all) held that gap. An inference: a segment deleted by hand, or several damaged
/// at once, can make it name the wrong file.
fn lost_in_live_log(
    unreadable: &[UnreadableSegment],
    readable: Vec<SegmentFile>,
) -> Result<(Vec<Lost>, LiveLog), Error> {
    let plan = ReplayPlan::new(readable);
    let summary = replay(&plan, |_, _: LogRecord| {})?;
    let last_seq = summary.next_seq.saturating_sub(1);
    let newest = plan.live.iter().max_by_key(|s| s.header.segment_id);
    let live = LiveLog {
        // After a compacted segment, the log goes on after what it replaced.
        next_seq: plan.live.iter().fold(summary.next_seq, |next, s| {
            next.max(s.header.replaces_through.saturating_add(1))
        }),
        generation: newest.map(|s| s.header),
    };
    let gap_before = |segment: &SegmentFile| {
        summary
            .problems
            .iter()
            .find(|p| {
                p.kind == DamageKind::Missing
                    && p.path == segment.path
                    && p.offset == HEADER_LEN as u64
            })
            .and_then(|p| p.lost)
    };
    let ids: Vec<u64> = unreadable
        .iter()
        .map(|segment| {
            let name = segment.path.file_name().and_then(|n| n.to_str());
            name.and_then(parse_segment_name).unwrap_or(0)
        })
        .collect();
    let next_of = |id: u64| {
        plan.live
            .iter()
            .filter(|s| s.file_id > id)
            .min_by_key(|s| s.file_id)
    };
    let mut lost: Vec<Lost> = ids
        .iter()
        .map(|&id| match next_of(id) {
            Some(next) => gap_before(next).map_or(Lost::Nothing, |(a, b)| Lost::Range(a, b)),
            None => Lost::After(last_seq),
        })
        .collect();
    let first = plan.live.first();
    let opening_gap = first.and_then(gap_before).filter(|&(a, _)| a == 1);
    let accounted = first.is_some_and(|first| {
        ids.iter()
            .any(|&id| next_of(id).is_some_and(|n| n.path == first.path))
    });
    // The compacted segment: the newest file that leaves no gap of its own, else the newest
    // of all (it was named after every readable segment).
    let newest_with = |lost: &[Lost], kind: Lost| {
        (0..ids.len())
            .filter(|&i| lost[i] == kind)
            .max_by_key(|&i| ids[i])
    };
    if let (Some((a, b)), false) = (opening_gap, accounted) {
        let base =
            newest_with(&lost, Lost::Nothing).or_else(|| newest_with(&lost, Lost::After(last_seq)));
        if let Some(i) = base {
            lost[i] = Lost::Range(a, b);
        }
    }
    Ok((lost, live))
}

/// Moves `segment` from `dir` into `dir/damaged/` (see [`move_into_damaged`]).
fn move_aside(
    dir: &Path,
    segment: &UnreadableSegment,
    archived: bool,
    lost: Lost,
) -> Result<SalvagedSegment, Error> {
    let holds_nothing = holds_nothing(&segment.path)?;
    let target = move_into_damaged(dir, &segment.path)?;
    let reason = match &segment.error {
        Error::DamagedHeader { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    Ok(SalvagedSegment {
        path: segment.path.clone(),
        moved_to: target,
        archived,
        size: segment.len,
        reason,
        holds_nothing,
        lost,
    })
}

/// Whether a file holds nothing a record could be in: nothing past a header's length, or only
/// zeros there (a segment's unused, preallocated space).
fn holds_nothing(path: &Path) -> Result<bool, Error> {
    let mut file = File::open(path).at(path)?;
    let mut buf = vec![0u8; 64 << 10];
    let mut at = 0usize;
    loop {
        let n = match file.read(&mut buf) {
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            read => read.at(path)?,
        };
        if n == 0 {
            return Ok(true);
        }
        let skip = HEADER_LEN.saturating_sub(at).min(n);
        if buf[skip..n].iter().any(|&b| b != 0) {
            return Ok(false);
        }
        at += n;
    }
}
