//! The index snapshot: the whole index, written beside the log when a database is closed, so
//! that the next open reads each node's state once instead of decoding and applying every
//! record of its history.
//!
//! It is a derived file, as disposable as the design wants one: the open uses it only when
//! everything it covers is provably as it was when it was written, and otherwise replays the
//! log as if it were not there. The open's result is the same either way, problems included:
//!
//! - A snapshot is written only by a database whose open found the log intact (at most a torn
//!   tail, which that open cut back), that never failed an fsync since, and whose close finds
//!   every segment it has not vouched for yet intact: each such segment is scanned as a replay
//!   scans it, and the segments must follow each other with no sequence number missing. So a
//!   full replay of what it covers reports no problem and gives the index it holds.
//! - Every segment it covers must still have the CRC-32 of its bytes (all of a sealed one's, the
//!   records of the one being appended to) it had: the same bytes replay the same way.
//!   Checking that costs what checking each record's checksum does, shared by two cores while
//!   the snapshot is read.
//! - The replay resumes where the records of the segment that was being appended to ended,
//!   and goes on through every segment after it.
//!
//! The file is checked whole by a CRC-32 in its trailer and is not fsynced: a power loss may
//! leave it torn or empty, which reads as no snapshot. Nothing but its name points at it, and
//! an open that cannot use it removes it. The bytes are specified in docs/FORMAT.md.

use std::fs::{self, File};
use std::io::{BufWriter, ErrorKind, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU8, AtomicUsize, Ordering};

use memmap2::Mmap;

use crate::error::IoContext;
use crate::event::{IdsAhead, PayloadEncoder, StoredEvent, StoredRecord};
use crate::index::Index;
use crate::journal::ahead::Upcoming;
use crate::journal::dir::{list_dir, private_file, Listing, SegmentFile, SNAPSHOT_FILE, TEMP_EXT};
use crate::journal::format::HEADER_LEN;
use crate::journal::replay::{
    first_expected, map_segment, replay_locked, ReleaseBehind, ReplayPlan, ReplaySummary, Resume,
};
use crate::journal::writer::Position;
use crate::node::NODE_ID_LEN;
use crate::Error;

const MAGIC: &[u8; 8] = b"PLSNAP01";
/// Magic, protocol version, salt, last seq, ids, segment count and 4 zero bytes.
const HEAD_LEN: usize = 48;
/// File id, first seq, last seq, length, records, record bytes, CRC-32 and 4 zero bytes.
const COVERED_LEN: usize = 56;
/// Event count, CRC-32 of everything before it, 4 reserved bytes.
const TRAILER_LEN: usize = 16;
/// Kind byte and payload length before each event's payload.
const EVENT_HEAD_LEN: usize = 3;
/// At most this many segments are listed (a forged count must not allocate without bound).
const MAX_COVERED: u64 = 1 << 20;

/// A segment a snapshot covers, as it was when the snapshot was written, scanned intact.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Covered {
    pub file_id: u64,
    pub first_seq: u64,
    /// The sequence number of its last record (`first_seq - 1` if it holds none).
    pub last_seq: u64,
    /// Its length (sealed segments), or the end of its records (the last one).
    pub len: u64,
    /// Its records, and their bytes (frames, padding included).
    pub records: u64,
    pub record_bytes: u64,
    /// CRC-32 of its first `len` bytes.
    pub crc: u32,
}

/// What an open database knows of the snapshot on disk: enough to tell at close whether it
/// is current, and the checksums of sealed segments that need not be computed again.
#[derive(Clone, Debug, Default)]
pub(crate) struct Known {
    pub last_seq: u64,
    pub segments: Vec<Covered>,
}

/// The state of a database when it is closed, as the snapshot records it.
pub(crate) struct Tip {
    pub protocol_version: u64,
    pub salt: u64,
    /// Where the writer stands.
    pub at: Position,
}

struct Head {
    protocol_version: u64,
    salt: u64,
    last_seq: u64,
    ids: u64,
    segments: Vec<Covered>,
}

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().expect("8 bytes"))
}

fn u32_at(bytes: &[u8], at: usize) -> u32 {
    u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4 bytes"))
}

/// CRC-32 of the first `len` bytes of `path` (all of them, or an error if it is shorter),
/// its pages released behind the checksum so that a segment never stays resident whole.
fn file_crc(path: &Path, len: u64) -> Result<u32, Error> {
    /// Bytes checksummed between two releases.
    const STEP: usize = 4 << 20;
    let map = map_segment(path)?;
    let bytes = map.get(..len as usize).ok_or_else(|| {
        Error::io(
            path,
            std::io::Error::new(ErrorKind::UnexpectedEof, "shorter than when listed"),
        )
    })?;
    let mut hasher = crc32fast::Hasher::new();
    let mut release = ReleaseBehind::new(&map);
    for (i, step) in bytes.chunks(STEP).enumerate() {
        hasher.update(step);
        release.reached(((i + 1) * STEP) as u64);
    }
    Ok(hasher.finalize())
}

/// Writes the snapshot of `index`, the state of the log up to `tip`, unless the one on disk
/// (`known`) is already that. Returns what is then on disk; `None` when the directory is not
/// in a state a snapshot can describe (segments of another generation, or left by an
/// unfinished compaction: the next open settles those first).
pub(crate) fn write(
    dir: &Path,
    index: &Index,
    tip: &Tip,
    known: Option<&Known>,
) -> Result<Option<Known>, Error> {
    let plan = ReplayPlan::new(list_dir(dir, Listing::Strict)?.segments);
    let Some(last) = plan.live.last() else {
        return Ok(None);
    };
    if !plan.stale.is_empty()
        || !plan.superseded.is_empty()
        || last.file_id != tip.at.segment_id
        || last.header.salt != tip.salt
    {
        return Ok(None);
    }
    let last_seq = tip.at.next_seq - 1;
    let mut segments = Vec::with_capacity(plan.live.len());
    for segment in &plan.live {
        let len = if segment.file_id == last.file_id {
            tip.at.valid_end
        } else {
            segment.len
        };
        let same = |c: &&Covered| {
            c.file_id == segment.file_id && c.first_seq == segment.header.first_seq && c.len == len
        };
        let covered = match known.and_then(|k| k.segments.iter().find(same)) {
            Some(covered) => *covered,
            None => match survey(segment, len)? {
                Some(covered) => covered,
                None => return Ok(None),
            },
        };
        segments.push(covered);
    }
    // No record missing between the segments, nor after the last (a full replay would
    // report the hole).
    let mut expected = first_expected(&plan.live[0]);
    for covered in &segments {
        if covered.first_seq != expected {
            return Ok(None);
        }
        expected = covered.last_seq + 1;
    }
    if expected != tip.at.next_seq {
        return Ok(None);
    }
    if known.is_some_and(|k| k.last_seq == last_seq && k.segments == segments) {
        return Ok(known.cloned());
    }
    let head = Head {
        protocol_version: tip.protocol_version,
        salt: tip.salt,
        last_seq,
        ids: index.ids() as u64,
        segments,
    };
    let path = dir.join(SNAPSHOT_FILE);
    let temp = dir.join(format!("{SNAPSHOT_FILE}.{TEMP_EXT}"));
    let written = write_file(&temp, &head, index).and_then(|()| {
        // Not fsynced (see the module documentation): a torn snapshot is no snapshot.
        fs::rename(&temp, &path).at(&path)
    });
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    written?;
    Ok(Some(Known {
        last_seq,
        segments: head.segments,
    }))
}

/// What a snapshot records of `segment`, up to `len`, if a replay finds it intact: it is
/// scanned as replay scans it (every record's checksum and payload, its sequence numbers),
/// and its first `len` bytes checksummed. `None` if the scan finds any problem, or a record
/// past `len`.
fn survey(segment: &SegmentFile, len: u64) -> Result<Option<Covered>, Error> {
    let plan = ReplayPlan {
        live: vec![segment.clone()],
        resume: Some(Resume {
            offset: HEADER_LEN as u64,
            next_seq: segment.header.first_seq,
        }),
        continued: true,
        ..ReplayPlan::default()
    };
    let mut past_len = false;
    let summary = replay_locked::<StoredRecord>(&plan, 1, |place, _, _| {
        past_len |= place.offset >= len;
    })?;
    if !summary.problems.is_empty() || past_len {
        ::log::info!(
            "{}: no index snapshot written: the segment is not intact",
            segment.path.display()
        );
        return Ok(None);
    }
    Ok(Some(Covered {
        file_id: segment.file_id,
        first_seq: segment.header.first_seq,
        last_seq: summary.next_seq.max(segment.header.first_seq) - 1,
        len,
        records: summary.records,
        record_bytes: summary.record_bytes,
        crc: file_crc(&segment.path, len)?,
    }))
}

/// A writer that keeps the CRC-32 of what went through it.
struct Checksummed<W> {
    inner: W,
    hasher: crc32fast::Hasher,
}

impl<W: Write> Write for Checksummed<W> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.inner.flush()
    }
}

fn write_file(temp: &Path, head: &Head, index: &Index) -> Result<(), Error> {
    let file = private_file()
        .write(true)
        .create(true)
        .truncate(true)
        .open(temp)
        .at(temp)?;
    let mut out = Checksummed {
        inner: BufWriter::with_capacity(1 << 20, file),
        hasher: crc32fast::Hasher::new(),
    };
    let mut bytes = Vec::with_capacity(HEAD_LEN + COVERED_LEN * head.segments.len());
    bytes.extend_from_slice(MAGIC);
    for value in [head.protocol_version, head.salt, head.last_seq, head.ids] {
        bytes.extend_from_slice(&value.to_le_bytes());
    }
    bytes.extend_from_slice(&(head.segments.len() as u32).to_le_bytes());
    bytes.extend_from_slice(&[0; 4]);
    for c in &head.segments {
        for value in [
            c.file_id,
            c.first_seq,
            c.last_seq,
            c.len,
            c.records,
            c.record_bytes,
        ] {
            bytes.extend_from_slice(&value.to_le_bytes());
        }
        bytes.extend_from_slice(&c.crc.to_le_bytes());
        bytes.extend_from_slice(&[0; 4]);
    }
    out.write_all(&bytes).at(temp)?;
    let mut encoder = PayloadEncoder::default();
    let mut events = 0u64;
    let mut put = |out: &mut Checksummed<_>, written_at: i64, event: &StoredEvent<'_>| {
        let (kind, payload) = encoder.encode(event, written_at);
        events += 1;
        out.write_all(&[kind])?;
        out.write_all(&(payload.len() as u16).to_le_bytes())?;
        out.write_all(payload)
    };
    // The state as compaction restates it (each entry's events written at its last write),
    // the entries in their order, so that the open gives each its position back.
    for (written_at, event) in index.live_losses() {
        put(&mut out, written_at, &event).at(temp)?;
    }
    let mut events_of = Vec::new();
    for entry in index.entries() {
        events_of.clear();
        index.live_events(entry, &mut events_of);
        for event in &events_of {
            put(&mut out, entry.touched, event).at(temp)?;
        }
    }
    if let Some((written_at, event)) = index.live_local_seq() {
        put(&mut out, written_at, &event).at(temp)?;
    }
    out.write_all(&events.to_le_bytes()).at(temp)?;
    let crc = out.hasher.clone().finalize();
    out.inner.write_all(&crc.to_le_bytes()).at(temp)?;
    out.inner.write_all(&[0; 4]).at(temp)?;
    out.inner.flush().at(temp)?;
    Ok(())
}

/// Why a snapshot was not used (logged; the log is replayed instead).
type Refusal = String;

/// Where the events lie in a snapshot's bytes.
struct Body {
    /// The offset of the first.
    at: usize,
    /// The offset past the last (where the trailer begins).
    end: usize,
    /// How many the trailer says there are.
    events: u64,
}

/// The snapshot's head and where its events lie, read as they are: bounds checked, the
/// checksum only as the events are applied (see [`apply_body`]).
fn parse(bytes: &[u8]) -> Result<(Head, Body), Refusal> {
    // The trailer's last 4 bytes, which its checksum does not cover, must be zero.
    if bytes.len() < HEAD_LEN + TRAILER_LEN
        || &bytes[..8] != MAGIC
        || bytes[bytes.len() - 4..] != [0; 4]
    {
        return Err("not a snapshot of this format".into());
    }
    let count = u64::from(u32_at(bytes, 40));
    let body_at = (count.min(MAX_COVERED) as usize)
        .checked_mul(COVERED_LEN)
        .map(|len| HEAD_LEN + len)
        .filter(|&at| count <= MAX_COVERED && at <= bytes.len() - TRAILER_LEN)
        .ok_or("its segment list does not fit")?;
    let segments = bytes[HEAD_LEN..body_at]
        .chunks_exact(COVERED_LEN)
        .map(|c| Covered {
            file_id: u64_at(c, 0),
            first_seq: u64_at(c, 8),
            last_seq: u64_at(c, 16),
            len: u64_at(c, 24),
            records: u64_at(c, 32),
            record_bytes: u64_at(c, 40),
            crc: u32_at(c, 48),
        })
        .collect();
    let head = Head {
        protocol_version: u64_at(bytes, 8),
        salt: u64_at(bytes, 16),
        last_seq: u64_at(bytes, 24),
        ids: u64_at(bytes, 32),
        segments,
    };
    let end = bytes.len() - TRAILER_LEN;
    let body = Body {
        at: body_at,
        end,
        events: u64_at(bytes, end),
    };
    Ok((head, body))
}

/// Whether `head` describes the live segments of `plan`: the same sealed segments, each as
/// long as it was, then the segment that was being appended to; then any number of newer
/// segments.
fn matches(head: &Head, plan: &ReplayPlan, version: u64) -> Result<(), Refusal> {
    if !plan.stale.is_empty() || !plan.superseded.is_empty() {
        return Err("the directory holds segments of another generation".into());
    }
    let Some((last, sealed)) = head.segments.split_last() else {
        return Err("it covers no segment".into());
    };
    if plan.live.len() < head.segments.len() {
        return Err("segments it covers are gone".into());
    }
    let same = |covered: &Covered, segment: &SegmentFile| {
        covered.file_id == segment.file_id
            && covered.first_seq == segment.header.first_seq
            && segment.header.salt == head.salt
            && segment.header.protocol_version == version
            && head.protocol_version == version
    };
    // A segment of `len` bytes holds fewer records, and record bytes, than that: with each
    // `len` at most its file's, the counts the open adds up cannot overflow.
    if head
        .segments
        .iter()
        .any(|c| c.records > c.len || c.record_bytes > c.len)
    {
        return Err("it counts more records than its segments hold".into());
    }
    for (covered, segment) in sealed.iter().zip(&plan.live) {
        if !same(covered, segment) || covered.len != segment.len {
            return Err(format!("{} changed since", segment.path.display()));
        }
    }
    let segment = &plan.live[sealed.len()];
    if !same(last, segment) || segment.header.is_compacted() || last.len > segment.len {
        return Err(format!("{} changed since", segment.path.display()));
    }
    Ok(())
}

/// The snapshot's events, one at a time: kind byte and payload.
struct Events<'a> {
    body: &'a [u8],
}

impl<'a> Iterator for Events<'a> {
    type Item = Result<(u8, &'a [u8]), Refusal>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.body.is_empty() {
            return None;
        }
        let Some((&[kind, a, b], rest)) = self.body.split_first_chunk::<EVENT_HEAD_LEN>() else {
            self.body = &[];
            return Some(Err("an event is cut short".into()));
        };
        let len = usize::from(u16::from_le_bytes([a, b]));
        let Some((payload, rest)) = rest.split_at_checked(len) else {
            self.body = &[];
            return Some(Err("an event is cut short".into()));
        };
        self.body = rest;
        Some(Ok((kind, payload)))
    }
}

/// Applies the snapshot's events to `index`, each only once the pieces of the snapshot that
/// hold it are checked (the whole is compared with the trailer's checksum before the index
/// is kept), releasing the snapshot's pages behind them, so that the open holds little of
/// it in memory beside the index. Fetches the id table's slot of each new id a few events
/// ahead: with a million ids the table is far larger than the caches.
fn apply_body(
    index: &mut Index,
    map: &Mmap,
    body: &Body,
    pieces: &Pieces,
    checks: &Checks,
) -> Result<(), Refusal> {
    let bytes: &[u8] = map;
    let events = &bytes[body.at..body.end];
    let mut release = ReleaseBehind::new(map);
    let mut ahead = Events { body: events };
    let mut ids_ahead = IdsAhead::default();
    let mut prefetch = |index: &Index, upcoming: Option<(u8, &[u8])>| {
        let upcoming = upcoming.map(|(kind, payload)| Upcoming { kind, payload });
        if let Some(id) = ids_ahead.new_id(upcoming) {
            index.prefetch(id);
        }
    };
    for _ in 0..IdsAhead::FRAMES {
        prefetch(index, ahead.next().and_then(Result::ok));
    }
    let mut applied = 0u64;
    let mut at = body.at;
    for event in (Events { body: events }) {
        let (kind, payload) = event?;
        let end = at + EVENT_HEAD_LEN + payload.len();
        if end > pieces.checked() {
            if checks.failed() {
                return Err("a segment it covers changed since".into());
            }
            release.reached(at as u64);
            pieces.check_through(end);
        }
        let (written_at, event) =
            StoredEvent::decode(kind, payload).ok_or("an event does not decode")?;
        index.apply(&event, written_at);
        applied += 1;
        at = end;
        prefetch(index, ahead.next().and_then(Result::ok));
    }
    pieces.check_through(body.end + 8);
    if pieces.whole() != u32_at(bytes, body.end + 8) {
        return Err("its checksum does not match (torn or damaged)".into());
    }
    if applied != body.events {
        return Err("its event count does not match".into());
    }
    Ok(())
}

/// The snapshot's own checksum (of all its bytes before the trailer's CRC), computed in
/// pieces by whichever thread gets to one first: the applying thread before it applies
/// events from one, the helper at most [`Pieces::LEAD`] pieces ahead of it (so that the pages
/// it faults in are soon released behind the applying thread), between the segments it
/// checks. The pieces' checksums are combined in order at the end.
struct Pieces<'a> {
    bytes: &'a [u8],
    /// Per piece: [`FREE`], [`TAKEN`] or [`DONE`].
    state: Vec<AtomicU8>,
    crcs: Vec<AtomicU32>,
    /// The first piece the applying thread has not found done yet.
    wanted: AtomicUsize,
    /// Set once the applying thread needs no more pieces.
    finished: AtomicBool,
}

const FREE: u8 = 0;
const TAKEN: u8 = 1;
const DONE: u8 = 2;

impl<'a> Pieces<'a> {
    const SIZE: usize = 1 << 20;
    /// Pieces the helper may check ahead of the applying thread.
    const LEAD: usize = 16;

    /// The pieces of `bytes`, none checked.
    fn new(bytes: &'a [u8]) -> Pieces<'a> {
        let count = bytes.len().div_ceil(Self::SIZE);
        Pieces {
            bytes,
            state: (0..count).map(|_| AtomicU8::new(FREE)).collect(),
            crcs: (0..count).map(|_| AtomicU32::new(0)).collect(),
            wanted: AtomicUsize::new(0),
            finished: AtomicBool::new(false),
        }
    }

    fn piece(&self, k: usize) -> &'a [u8] {
        &self.bytes[k * Self::SIZE..((k + 1) * Self::SIZE).min(self.bytes.len())]
    }

    /// Checks piece `k` if nobody has taken it; whether this call did.
    fn take(&self, k: usize) -> bool {
        let taken = self.state[k]
            .compare_exchange(FREE, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok();
        if taken {
            self.crcs[k].store(crc32fast::hash(self.piece(k)), Ordering::Relaxed);
            self.state[k].store(DONE, Ordering::Release);
        }
        taken
    }

    /// Bytes from the start known checked (by the applying thread's last look).
    fn checked(&self) -> usize {
        (self.wanted.load(Ordering::Relaxed) * Self::SIZE).min(self.bytes.len())
    }

    /// For the applying thread: waits until every piece holding bytes before `end` is
    /// checked, checking those nobody took.
    fn check_through(&self, end: usize) {
        let last = end.min(self.bytes.len()).div_ceil(Self::SIZE);
        for k in self.wanted.load(Ordering::Relaxed)..last {
            self.wanted.store(k, Ordering::Relaxed);
            if !self.take(k) {
                // The helper is checking it: a fraction of a millisecond.
                while self.state[k].load(Ordering::Acquire) != DONE {
                    std::thread::yield_now();
                }
            }
        }
        self.wanted.fetch_max(last, Ordering::Relaxed);
    }

    /// For the helper: checks one free piece within the lead, if there is one; whether it
    /// did.
    fn help(&self) -> bool {
        let from = self.wanted.load(Ordering::Relaxed);
        let to = (from + Self::LEAD).min(self.state.len());
        (from..to).any(|k| self.state[k].load(Ordering::Relaxed) == FREE && self.take(k))
    }

    /// The applying thread needs no more pieces (done, or given up).
    fn finish(&self) {
        self.finished.store(true, Ordering::Release);
    }

    fn is_finished(&self) -> bool {
        self.finished.load(Ordering::Acquire)
    }

    /// The checksum of all the bytes, once every piece is checked.
    fn whole(&self) -> u32 {
        let mut whole = crc32fast::Hasher::new();
        for (k, crc) in self.crcs.iter().enumerate() {
            debug_assert_eq!(self.state[k].load(Ordering::Acquire), DONE);
            let len = self.piece(k).len() as u64;
            whole.combine(&crc32fast::Hasher::new_with_initial_len(
                crc.load(Ordering::Relaxed),
                len,
            ));
        }
        whole.finalize()
    }
}

/// An index rebuilt from the snapshot in `dir` and the records after it, with the summary a
/// full replay of `plan` would give; `None` (the reason logged) when the snapshot is missing,
/// unreadable or cannot be trusted, and the log must be replayed. Never an error: a bad
/// derived file must not make the database unopenable.
pub(crate) fn load(
    dir: &Path,
    plan: &ReplayPlan,
    version: u64,
) -> Option<(Index, ReplaySummary, Known)> {
    let path = dir.join(SNAPSHOT_FILE);
    let not_used = |reason: &dyn std::fmt::Display| {
        ::log::info!(
            "{}: not used, the log is replayed instead: {reason}",
            path.display()
        );
    };
    // Not blocking: a FIFO of that name must not hang the open.
    let file = match File::options()
        .read(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&path)
        .and_then(|file| match file.metadata()?.is_file() {
            true => Ok(file),
            false => Err(std::io::Error::other("not a regular file")),
        }) {
        Ok(file) => file,
        Err(e) if e.kind() == ErrorKind::NotFound => return None,
        Err(e) => {
            not_used(&e);
            return None;
        }
    };
    // SAFETY: the map is only read, and only this process (which holds the directory's lock)
    // writes or replaces the snapshot, by renaming a new file over it, which leaves the
    // mapped file as it is.
    let map = match unsafe { Mmap::map(&file) } {
        Ok(map) => map,
        Err(e) => {
            not_used(&e);
            return None;
        }
    };
    // A read error too only means the log is replayed: if it came from a segment, the replay
    // meets it again and fails the open, as a read error must.
    load_mapped(&map, plan, version)
        .inspect_err(|rejected| match rejected {
            Rejected::Io(e) => not_used(e),
            Rejected::Refused(reason) => not_used(reason),
        })
        .ok()
}

enum Rejected {
    Io(Error),
    Refused(Refusal),
}

impl From<Refusal> for Rejected {
    fn from(reason: Refusal) -> Rejected {
        Rejected::Refused(reason)
    }
}

impl From<&str> for Rejected {
    fn from(reason: &str) -> Rejected {
        Rejected::Refused(reason.into())
    }
}

fn load_mapped(
    map: &Mmap,
    plan: &ReplayPlan,
    version: u64,
) -> Result<(Index, ReplaySummary, Known), Rejected> {
    let (head, body) = parse(map)?;
    matches(&head, plan, version)?;
    let covered_files = &plan.live[..head.segments.len()];
    let checks = Checks {
        files: covered_files,
        covered: &head.segments,
        next: AtomicUsize::new(0),
        failed: AtomicBool::new(false),
    };
    // Everything the trailer's checksum covers.
    let pieces = Pieces::new(&map[..body.end + 8]);
    let (index, tail) = std::thread::scope(|scope| {
        // The checksums on a second core while the snapshot is applied (which only matching
        // checksums let the open keep): the snapshot's own a little ahead of the applying
        // thread, the segments' in between; then on both.
        let helper = std::thread::Builder::new()
            .name("peerlog-snapshot".into())
            .spawn_scoped(scope, || loop {
                if pieces.help() {
                    continue;
                }
                match checks.next() {
                    Some(checked) => checked?,
                    None if pieces.is_finished() => return Ok::<(), Rejected>(()),
                    // Ahead of the applying thread by the whole lead: a nap, not a spin,
                    // so as not to take a core the machine may need (the applying thread
                    // goes through a piece in about half a millisecond).
                    None => std::thread::sleep(std::time::Duration::from_micros(100)),
                }
            })
            .ok();
        let rebuilt = rebuild(&head, map, &body, &pieces, &checks, plan);
        pieces.finish();
        if rebuilt.is_err() {
            // Not used whatever the checksums say: the helper stops at its next check.
            checks.stop();
        }
        let mine = checks.run();
        if let Some(helper) = helper {
            helper
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
        }
        mine?;
        rebuilt
    })?;
    // The records the snapshot covers, as they were scanned when it was written (the same
    // bytes now); the tail replay counted those after them, and every segment from the
    // last covered one on.
    let sealed = &covered_files[..covered_files.len() - 1];
    let mut summary = tail;
    summary.segments += sealed.len();
    for covered in &head.segments {
        summary.records += covered.records;
        summary.record_bytes += covered.record_bytes;
    }
    let mut bytes_read: Vec<(PathBuf, u64)> =
        sealed.iter().map(|s| (s.path.clone(), s.len)).collect();
    bytes_read.append(&mut summary.bytes_read);
    summary.bytes_read = bytes_read;
    Ok((
        index,
        summary,
        Known {
            last_seq: head.last_seq,
            segments: head.segments,
        },
    ))
}

/// The checksums of the covered segments (all a sealed one's bytes, the recorded ones of the
/// last), which an open from a snapshot must find as they were. Taken one segment at a time
/// by whichever thread is free, so that the two cores share them.
struct Checks<'a> {
    files: &'a [SegmentFile],
    covered: &'a [Covered],
    /// The next segment to check.
    next: AtomicUsize,
    /// Set when a check failed (or the snapshot is refused anyway): the rest is not done.
    failed: AtomicBool,
}

impl Checks<'_> {
    /// Checks every segment no thread has taken yet.
    fn run(&self) -> Result<(), Rejected> {
        while let Some(checked) = self.next() {
            checked?;
        }
        Ok(())
    }

    /// Checks the next segment no thread has taken; `None` when there is none left.
    fn next(&self) -> Option<Result<(), Rejected>> {
        let i = self.next.fetch_add(1, Ordering::Relaxed);
        let (segment, covered) = (self.files.get(i)?, self.covered.get(i)?);
        let checked = match file_crc(&segment.path, covered.len) {
            Ok(crc) if crc == covered.crc => Ok(()),
            Ok(_) => Err(format!("{} changed since", segment.path.display()).into()),
            Err(e) => Err(Rejected::Io(e)),
        };
        if checked.is_err() {
            self.stop();
        }
        Some(checked)
    }

    /// Makes the other thread stop at its next check: one failed, the snapshot is not used.
    fn stop(&self) {
        self.failed.store(true, Ordering::Relaxed);
        self.next.store(usize::MAX / 2, Ordering::Relaxed);
    }

    fn failed(&self) -> bool {
        self.failed.load(Ordering::Relaxed)
    }
}

/// The index from the snapshot's body, then the records after its last sequence number:
/// from where the records of the segment it ends in ended (the bytes before are those it
/// covers, which [`Checks`] compares with their checksum), then in every later segment.
fn rebuild(
    head: &Head,
    map: &Mmap,
    body: &Body,
    pieces: &Pieces,
    checks: &Checks,
    plan: &ReplayPlan,
) -> Result<(Index, ReplaySummary), Rejected> {
    let first_tail = head.segments.len() - 1;
    let tail_plan = ReplayPlan {
        live: plan.live[first_tail..].to_vec(),
        resume: Some(Resume {
            offset: head.segments[first_tail].len,
            next_seq: head.last_seq + 1,
        }),
        ..ReplayPlan::default()
    };
    let tail_bytes: u64 = tail_plan.live.iter().map(|s| s.len).sum();
    let body_len = body.end - body.at;
    // No more ids than the events could hold (each has one of 64 bytes), whatever a damaged
    // head says, and no more than a replay presizes for (beyond, the index grows).
    let ids = (head.ids as usize).min(body_len / NODE_ID_LEN).min(1 << 21);
    let mut index = Index::with_capacity(ids);
    index.reserve_for_log((body_len as u64 + tail_bytes).min(1 << 32) as usize);
    apply_body(&mut index, map, body, pieces, checks)?;
    let mut ids_ahead = IdsAhead::default();
    let summary =
        replay_locked::<StoredRecord>(&tail_plan, IdsAhead::FRAMES, |_, record, upcoming| {
            if let Some(id) = ids_ahead.new_id(upcoming) {
                index.prefetch(id);
            }
            index.apply_record(&record);
        })
        .map_err(Rejected::Io)?;
    Ok((index, summary))
}
