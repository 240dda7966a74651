//! Replaying the segments of a directory in order, accounting for every sequence number.

use std::fs::File;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use memmap2::Mmap;

use crate::error::IoContext;
use crate::journal::ahead::{ChecksumsAhead, FramesAhead, Upcoming};
use crate::journal::damage::{Damage, DamageKind};
use crate::journal::decoded::{Decoded, DecodedInPlace};
use crate::journal::dir::SegmentFile;
use crate::journal::format::{salt_seed, HEADER_LEN};
use crate::journal::reader::{ScanEnd, ScanItem, SegmentScanner};
use crate::Error;

/// Which segments make up the log, in replay order.
#[derive(Debug, Default)]
pub struct ReplayPlan {
    /// Segments to replay, in order of their sequence numbers.
    pub live: Vec<SegmentFile>,
    /// Segments whose records a newer compacted segment already holds (left by a compaction
    /// that stopped before removing them).
    pub superseded: Vec<SegmentFile>,
    /// Segments of another generation (another salt), never replayed.
    pub stale: Vec<SegmentFile>,
    /// Where the replay begins when the records before it were accounted for elsewhere (an
    /// index snapshot covers them): the offset in the first of `live` at which its scan
    /// starts (`HEADER_LEN` for all of it), and the sequence number expected there. `None`:
    /// from the start of the log, which begins at 1 (or at a compacted segment's first).
    pub resume: Option<Resume>,
    /// Whether more segments follow the last of `live` (the plan is one part of the log): a
    /// compacted segment there is then no sign of a lost one after it.
    pub continued: bool,
}

impl ReplayPlan {
    /// Sorts segments into live, superseded and stale.
    pub fn new(mut segments: Vec<SegmentFile>) -> ReplayPlan {
        let mut plan = ReplayPlan::default();
        let Some(newest) = segments.iter().max_by_key(|s| s.header.segment_id) else {
            return plan;
        };
        let salt = newest.header.salt;
        let (generation, stale): (Vec<_>, Vec<_>) =
            segments.drain(..).partition(|s| s.header.salt == salt);
        plan.stale = stale;
        let base = generation
            .iter()
            .filter(|s| s.header.is_compacted())
            .max_by_key(|s| (s.header.replaces_through, s.header.segment_id))
            .map(|s| (s.header.segment_id, s.header.replaces_through));
        for segment in generation {
            let superseded = match base {
                // Only a segment written before the compaction (a lower id) can be one it
                // replaced. Fuzz finding: a later segment (a higher id) with a low first_seq
                // was removed as superseded, and with it the newest id that chose the
                // generation, so the next open took another salt's segments as the log.
                Some((base_id, replaced)) => {
                    segment.header.segment_id < base_id && segment.header.first_seq <= replaced
                }
                None => false,
            };
            if superseded {
                plan.superseded.push(segment);
            } else {
                plan.live.push(segment);
            }
        }
        // On equal first sequence numbers an (empty) compacted segment goes first, so that the
        // segment being appended to stays last.
        plan.live.sort_by_key(|s| {
            let h = &s.header;
            (h.first_seq, !h.is_compacted(), h.segment_id)
        });
        plan
    }
}

/// The sequence number a replay of the whole log expects its first live segment to begin at:
/// 1, or a compacted segment's first (the records before it are what it replaced).
pub(crate) fn first_expected(first: &SegmentFile) -> u64 {
    if first.header.is_compacted() {
        first.header.first_seq
    } else {
        1
    }
}

/// Where a replay begins that does not begin with the log (see [`ReplayPlan::resume`]).
#[derive(Clone, Copy, Debug)]
pub struct Resume {
    /// The offset in the first segment replayed.
    pub offset: u64,
    /// The sequence number of the record expected there.
    pub next_seq: u64,
}

/// The outcome of replaying a log.
#[derive(Clone, Debug, Default)]
pub struct ReplaySummary {
    /// Segments replayed.
    pub segments: usize,
    /// Intact records replayed.
    pub records: u64,
    /// Bytes of the intact records replayed (frames, padding included).
    pub record_bytes: u64,
    /// Every place the log was not intact, in log order.
    pub problems: Vec<Damage>,
    /// Each segment replayed, with the bytes of it read: its length when it was mapped, which
    /// a live writer's preallocation may have grown since the directory was listed.
    pub bytes_read: Vec<(PathBuf, u64)>,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Where the last segment's intact data ends.
    pub(crate) last_end: Option<ScanEnd>,
}

/// What opening a database found, as [`NodeDb::recovery`](crate::NodeDb::recovery) reports
/// it (and [`inspect::state`](crate::inspect::state) for a log read without opening it).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Recovery {
    /// Segments replayed.
    pub segments: usize,
    /// Intact records replayed.
    pub records: u64,
    /// Every place the log was not intact (damage, a torn tail, missing, duplicate or stale
    /// records), in log order, each [`Found`](crate::DamageState::Found).
    pub problems: Vec<Damage>,
    /// The sequence number the next record gets.
    pub next_seq: u64,
    /// Whether the index came from the snapshot the last clean close wrote, only the records
    /// after it replayed, rather than from replaying every record (see `docs/DURABILITY.md`).
    /// The other fields are the same either way.
    pub from_snapshot: bool,
}

impl From<ReplaySummary> for Recovery {
    fn from(summary: ReplaySummary) -> Recovery {
        Recovery {
            segments: summary.segments,
            records: summary.records,
            problems: summary.problems,
            next_seq: summary.next_seq,
            from_snapshot: false,
        }
    }
}

/// Where a replayed record was found.
#[derive(Clone, Copy, Debug)]
pub struct RecordPlace<'a> {
    /// The segment.
    pub segment: &'a SegmentFile,
    /// Offset of the record's frame.
    pub offset: u64,
    /// Bytes of the frame.
    pub len: u64,
}

/// Replays the segments of `plan.live` in order, calling `on_record` for each intact record
/// with a new sequence number, decoded as a `T`. Changes nothing on disk, and is safe on a
/// log another process is appending to.
pub fn replay<T: for<'b> Decoded<'b>>(
    plan: &ReplayPlan,
    mut on_record: impl FnMut(RecordPlace<'_>, T),
) -> Result<ReplaySummary, Error> {
    replay_until(plan, |place, record| {
        on_record(place, record);
        ControlFlow::Continue(())
    })
}

/// [`replay`] that stops as soon as `on_record` says so (a reader whose output went away);
/// the summary then covers what was read up to there.
///
/// Memory stays bounded whatever the log's size: pages are faulted in as they are read and
/// released behind the scan (see [`ReleaseBehind`]).
pub(crate) fn replay_until<T: for<'b> Decoded<'b>>(
    plan: &ReplayPlan,
    on_record: impl FnMut(RecordPlace<'_>, T) -> ControlFlow<()>,
) -> Result<ReplaySummary, Error> {
    replay_mapped_until(plan, |segment| map_segment(&segment.path), on_record)
}

/// [`replay_until`] that gets each live segment's map from `map` (say, one made before the
/// read started, which a concurrent compaction removing the file does not affect).
pub(crate) fn replay_mapped_until<T: for<'b> Decoded<'b>>(
    plan: &ReplayPlan,
    map: impl FnMut(&SegmentFile) -> Result<Mmap, Error>,
    mut on_record: impl FnMut(RecordPlace<'_>, T) -> ControlFlow<()>,
) -> Result<ReplaySummary, Error> {
    // Released behind the scan, a map has few pages left to unmap: dropped where it is.
    replay_segments(plan, map, drop, |map, seed, replay| {
        let mut behind = ReleaseBehind::new(map);
        let mut on_record = |place: RecordPlace<'_>, record| {
            behind.reached(place.offset);
            on_record(place, record)
        };
        replay.scan(SegmentScanner::new(map, seed), &mut on_record)
    })
}

/// Maps a segment file read-only, its pages faulted in as they are first read: how every
/// reader of the log reads a segment.
pub(crate) fn map_segment(path: &Path) -> Result<Mmap, Error> {
    let file = File::open(path).at(path)?;
    // SAFETY: the map is only read. peerlog never shrinks a segment file (sealed segments
    // keep their preallocated length; deleted ones stay mapped until unmapped), so no page
    // of the map can vanish under us; bytes that change under a live writer are copied
    // before they are checked (see SegmentScanner).
    unsafe { Mmap::map(&file) }.at(path)
}

/// Releases the pages of a mapped segment behind a sequential scan, a few MiB at a time, so
/// that a reader of a large log (an export, a history) keeps a bounded resident size: the
/// pages of a file mapping count as the process's own while they are mapped.
pub(crate) struct ReleaseBehind<'m> {
    map: &'m [u8],
    released: usize,
    ahead: Option<&'m ChecksumsAhead>,
}

impl<'m> ReleaseBehind<'m> {
    /// Released in steps of this many bytes (a multiple of any page size).
    const STEP: usize = 8 << 20;

    /// Takes a whole map (not any bytes: dropping the pages of heap memory, say, would zero
    /// them under the borrow).
    pub fn new(map: &'m Mmap) -> ReleaseBehind<'m> {
        ReleaseBehind {
            map,
            released: 0,
            ahead: None,
        }
    }

    /// Tells `ahead` (a checksum helper kept within a lead of them) how far the pages are
    /// released each time that moves.
    pub fn telling(mut self, ahead: &'m ChecksumsAhead) -> ReleaseBehind<'m> {
        self.ahead = Some(ahead);
        self
    }

    /// The scan reached `offset`: nothing before it is read again.
    pub fn reached(&mut self, offset: u64) {
        let offset = usize::try_from(offset)
            .unwrap_or(usize::MAX)
            .min(self.map.len());
        if offset - self.released.min(offset) < Self::STEP {
            return;
        }
        let until = offset - offset % Self::STEP;
        let from = self.released;
        // SAFETY: `map` is a whole read-only shared file mapping (an `Mmap` from
        // `map_segment`: page-aligned) and `from..until` lies inside it, with `from` and `until` multiples of STEP, so
        // page-aligned. MADV_DONTNEED on such a mapping only drops the
        // page table entries: the bytes stay the file's, and a later read faults them in from
        // it again, so no reference into the map sees anything but the file. It is advice: a
        // failure changes nothing and is ignored.
        unsafe {
            libc::madvise(
                self.map.as_ptr().add(from) as *mut libc::c_void,
                until - from,
                libc::MADV_DONTNEED,
            );
        }
        self.released = until;
        if let Some(ahead) = self.ahead {
            ahead.scanner_released(until);
        }
    }
}

/// [`replay`] for a caller that holds the directory's lock: nobody writes the segments while
/// they are read, so frames are checked and decoded in place, and records may borrow from
/// the mapped segment (`T::In`). Each comes with the frame `lead` frames ahead of it in its
/// segment, if there is one: unchecked, a hint (say, to prefetch what applying it will touch).
pub(crate) fn replay_locked<T: DecodedInPlace>(
    plan: &ReplayPlan,
    lead: usize,
    mut on_record: impl FnMut(RecordPlace<'_>, T::In<'_>, Option<Upcoming<'_>>),
) -> Result<ReplaySummary, Error> {
    // The helper faults the pages in as it checks them, on its own core.
    let map = |segment: &SegmentFile| map_segment(&segment.path);
    replay_segments(plan, map, unmap_in_background, |map, seed, replay| {
        scan_in_place::<T>(map, seed, replay, lead, RELEASE_BEHIND_FROM, &mut on_record)
    })
}

/// A record of [`replay_shared`]: read in place from a sealed segment, or copied out of the
/// last one.
pub(crate) enum SharedRead<I, C> {
    /// From a sealed segment, borrowing from its map.
    InPlace(I),
    /// From the last segment, which a writer may be appending to: copied before it was
    /// checked.
    Copied(C),
}

/// [`replay`] for a reader without the directory's lock, beside a writer, as fast as
/// [`replay_locked`] where that is sound: every live segment but the last is sealed, which
/// nobody writes again (a writer seals a segment, synced, before it creates the next, so a
/// listing that holds the next holds this one complete; compaction and expiry only remove
/// files, whose maps stay valid), so its frames are checked and decoded in place, a second
/// core checking checksums ahead; the last, which a writer may be appending to, is read frame
/// by frame copied, as [`replay_until`] reads. Pages of every segment are released behind the
/// scan, so that the read adds a few MiB to the caller's memory, not a segment. A record read
/// in place comes with the frame `lead` frames ahead of it in its segment, as
/// [`replay_locked`] hands it out.
pub(crate) fn replay_shared<T: DecodedInPlace, C: for<'b> Decoded<'b>>(
    plan: &ReplayPlan,
    lead: usize,
    mut on_record: impl FnMut(RecordPlace<'_>, SharedRead<T::In<'_>, C>, Option<Upcoming<'_>>),
) -> Result<ReplaySummary, Error> {
    let last = plan.live.last().map(|segment| segment.path.clone());
    let map = |segment: &SegmentFile| map_segment(&segment.path);
    replay_segments(plan, map, drop, |map, seed, replay| {
        if last.as_ref() == Some(&replay.segment.path) {
            let mut behind = ReleaseBehind::new(map);
            let mut on_record = |place: RecordPlace<'_>, record| {
                behind.reached(place.offset);
                on_record(place, SharedRead::Copied(record), None);
                ControlFlow::Continue(())
            };
            replay.scan(SegmentScanner::<C>::new(map, seed), &mut on_record)
        } else {
            let mut in_place =
                |place: RecordPlace<'_>, record: T::In<'_>, upcoming: Option<Upcoming<'_>>| {
                    on_record(place, SharedRead::InPlace(record), upcoming)
                };
            scan_in_place::<T>(map, seed, replay, lead, 0, &mut in_place)
        }
    })
}

/// Scans one segment nobody writes, in place, with a helper thread checking checksums ahead
/// where the segment is large enough for that to pay; releases the pages behind the scan of a
/// map larger than `release_from` bytes.
fn scan_in_place<T: DecodedInPlace>(
    map: &Mmap,
    seed: u32,
    replay: &mut SegmentReplay<'_>,
    lead: usize,
    release_from: usize,
    on_record: &mut impl FnMut(RecordPlace<'_>, T::In<'_>, Option<Upcoming<'_>>),
) -> Option<ScanEnd> {
    let mut upcoming = FramesAhead::starting_at(map, replay.from, lead);
    // A segment larger than that (for an open: a compacted segment of a large store, one file
    // of hundreds of MiB) would otherwise stay resident whole until the end of its scan,
    // beside the index being built: its pages are released behind the scan instead, and the
    // checksum helper kept a few steps ahead of that.
    let release = map.len() > release_from;
    let max_lead = if release {
        HELPER_LEAD_WHILE_RELEASING
    } else {
        usize::MAX
    };
    let ahead = ChecksumsAhead::for_segment(map.len()).with_max_lead(max_lead);
    let mut behind = release.then(|| ReleaseBehind::new(map).telling(&ahead));
    let mut on_record = |place: RecordPlace<'_>, record| {
        on_record(place, record, upcoming.next_frame());
        if let Some(behind) = &mut behind {
            behind.reached(place.offset);
        }
        ControlFlow::Continue(())
    };
    let scanner = SegmentScanner::<T::In<'_>>::new_exclusive(map, seed).starting_at(replay.from);
    // A scan resumed past the header (the records after an index snapshot: few, as a rule)
    // checks every checksum itself.
    if map.len() < CHECK_AHEAD_FROM.load(Ordering::Relaxed)
        || !ChecksumsAhead::covers(map.len())
        || replay.from != HEADER_LEN
    {
        return replay.scan(scanner, &mut on_record);
    }
    let seeded = crc32fast::Hasher::new_with_initial(seed);
    std::thread::scope(|scope| {
        // Checksums on a second core, decoding and indexing on this one (see ahead.rs).
        let helper = std::thread::Builder::new()
            .name("peerlog-replay".into())
            .spawn_scoped(scope, || ahead.check::<T::In<'_>>(map, &seeded));
        // Stops the helper however the scan ends, a panic in `on_record` included.
        let _stop = ahead.abandon_on_drop();
        match helper {
            Ok(_) => replay.scan(scanner.with_checksums_ahead(&ahead), &mut on_record),
            Err(_) => replay.scan(scanner, &mut on_record),
        }
    })
}

/// Segments larger than this have their pages released behind the replay of an open (the
/// default segment size: only compacted segments are larger).
const RELEASE_BEHIND_FROM: usize = 64 << 20;

/// How far the checksum helper may read past the pages a scan that releases them has
/// released: its lead stays resident (about 190 ms of an open's work at 1 M nodes would
/// otherwise leave 50 MB of a compacted segment resident beside the index).
const HELPER_LEAD_WHILE_RELEASING: usize = 24 << 20;

/// Segments smaller than this are replayed without a checksum helper: starting a thread
/// would cost more than it saves. Tests and fuzzing lower it (see [`set_check_ahead_from`]).
static CHECK_AHEAD_FROM: AtomicUsize = AtomicUsize::new(256 << 10);

#[cfg_attr(not(feature = "__internal_testing"), allow(dead_code))]
/// For tests and fuzzing: replays segments of at least `bytes` (default 256 KiB) with a
/// thread checking their checksums ahead of the scan, in every `NodeDb` of the process; 0
/// gives every segment one, so that small test logs exercise that path too. What a replay
/// finds never depends on it, only how fast.
#[doc(hidden)]
pub fn set_check_ahead_from(bytes: usize) {
    CHECK_AHEAD_FROM.store(bytes, Ordering::Relaxed);
}

/// The replay of one segment: feeds what its scan finds to the sequence accounting.
struct SegmentReplay<'r> {
    segment: &'r SegmentFile,
    /// The offset its scan starts at (past the header when a replay resumes there).
    from: usize,
    tracker: &'r mut SeqTracker,
    summary: &'r mut ReplaySummary,
}

impl SegmentReplay<'_> {
    /// Runs `scanner` over the segment, passing every record with a new sequence number to
    /// `on_record`; returns where the intact data ends, or `None` if `on_record` stopped it.
    fn scan<'m, T: Decoded<'m>>(
        &mut self,
        mut scanner: SegmentScanner<'m, T>,
        on_record: &mut impl FnMut(RecordPlace<'_>, T) -> ControlFlow<()>,
    ) -> Option<ScanEnd> {
        for item in scanner.by_ref() {
            match item {
                ScanItem::Record {
                    offset,
                    len,
                    record,
                } => {
                    let place = RecordPlace {
                        segment: self.segment,
                        offset,
                        len,
                    };
                    if self
                        .tracker
                        .accept(record.seq(), place, &mut self.summary.problems)
                    {
                        self.summary.records += 1;
                        self.summary.record_bytes += len;
                        if on_record(place, record).is_break() {
                            return None;
                        }
                    }
                }
                ScanItem::Damage { offset, len } => self.tracker.damaged(
                    DamageKind::Damaged,
                    self.segment,
                    offset,
                    len,
                    &mut self.summary.problems,
                ),
            }
        }
        Some(scanner.end().expect("scan finished"))
    }
}

/// Unmaps a segment on a thread of its own, if it is large enough for that to pay: clearing
/// the page table entries of a fully read 64 MiB segment takes milliseconds, which the open
/// need not wait for. Where no thread can be started, it is unmapped here.
fn unmap_in_background(map: Mmap) {
    /// Smaller maps are unmapped in place: a thread would cost more than it saves.
    const FROM: usize = 4 << 20;
    if map.len() < FROM {
        return;
    }
    // On failure `spawn` drops the closure, and with it the map.
    let _ = std::thread::Builder::new()
        .name("peerlog-unmap".into())
        .spawn(move || drop(map));
}

/// Replays every live segment of `plan`, each mapped (its pages faulted in as they are read)
/// and handed to `scan_segment` with its checksum seed, then to `unmap`.
fn replay_segments(
    plan: &ReplayPlan,
    mut map_live: impl FnMut(&SegmentFile) -> Result<Mmap, Error>,
    unmap: fn(Mmap),
    mut scan_segment: impl FnMut(&Mmap, u32, &mut SegmentReplay<'_>) -> Option<ScanEnd>,
) -> Result<ReplaySummary, Error> {
    let mut tracker = SeqTracker::default();
    let mut summary = ReplaySummary::default();
    for segment in &plan.stale {
        summary.problems.push(Damage::found(
            DamageKind::Stale,
            segment.path.clone(),
            0,
            segment.len,
            None,
        ));
    }
    for (i, segment) in plan.live.iter().enumerate() {
        let is_last = i + 1 == plan.live.len();
        let header = &segment.header;
        let from = match (i, plan.resume) {
            (0, Some(resume)) => {
                tracker.expected = resume.next_seq;
                resume.offset as usize
            }
            (0, None) => {
                tracker.expected = first_expected(segment);
                HEADER_LEN
            }
            _ => HEADER_LEN,
        };
        if from == HEADER_LEN {
            tracker.advance_to(
                header.first_seq,
                segment,
                HEADER_LEN as u64,
                &mut summary.problems,
            );
        }
        let map = map_live(segment)?;
        summary
            .bytes_read
            .push((segment.path.clone(), map.len() as u64));
        let mut replay = SegmentReplay {
            segment,
            from,
            tracker: &mut tracker,
            summary: &mut summary,
        };
        let end = scan_segment(&map, salt_seed(header.salt), &mut replay);
        unmap(map);
        let Some(end) = end else {
            return Ok(summary);
        };
        if end.has_garbage() {
            let kind = if is_last {
                DamageKind::TornTail
            } else {
                DamageKind::DamagedTail
            };
            let len = end.garbage_end - end.valid_end;
            tracker.damaged(kind, segment, end.valid_end, len, &mut summary.problems);
        }
        summary.segments += 1;
        summary.last_end = Some(end);
    }
    // A compaction seals the segment being appended to and writes its output beside it: the
    // segment that follows what it replaced (its first seq one past `replaces_through`, its
    // id below the compacted segment's) is made before the compacted segment and never
    // removed by that compaction. A log that ends with a compacted segment has lost it, and
    // whatever came after it: how many records is unknown. (Once a writer opens such a log,
    // it starts a new segment there, and this trace is gone: see docs/DAMAGE.md.)
    if let Some(last) = plan
        .live
        .last()
        .filter(|s| s.header.is_compacted() && !plan.continued)
    {
        summary.problems.push(Damage::found(
            DamageKind::Missing,
            last.path.clone(),
            last.len,
            0,
            None,
        ));
    }
    // A compacted segment accounts for every sequence number through `replaces_through`
    // (fuzz finding: with a larger claim than its records, a new segment started below it was
    // superseded, and removed, on the next open, losing acknowledged writes).
    let accounted = plan
        .live
        .iter()
        .filter(|s| s.header.is_compacted())
        .map(|s| s.header.replaces_through.saturating_add(1))
        .max()
        .unwrap_or(0);
    summary.next_seq = tracker.expected.max(accounted).max(1);
    Ok(summary)
}

/// Checks that sequence numbers grow by one and accounts for every gap.
#[derive(Default)]
struct SeqTracker {
    expected: u64,
    /// Index of the last damage problem whose lost range is not known yet.
    open_damage: Option<usize>,
    /// Index of the duplicate problem being extended, with the offset just past it.
    open_duplicate: Option<(usize, u64)>,
}

impl SeqTracker {
    fn damaged(
        &mut self,
        kind: DamageKind,
        segment: &SegmentFile,
        offset: u64,
        len: u64,
        problems: &mut Vec<Damage>,
    ) {
        problems.push(Damage::found(kind, segment.path.clone(), offset, len, None));
        self.open_damage = Some(problems.len() - 1);
        self.open_duplicate = None;
    }

    /// Records the gap before `seq`, charging it to the damage just seen if there is one.
    fn advance_to(
        &mut self,
        seq: u64,
        segment: &SegmentFile,
        offset: u64,
        problems: &mut Vec<Damage>,
    ) {
        if seq > self.expected {
            let lost = Some((self.expected, seq - 1));
            match self.open_damage.take() {
                Some(i) => problems[i].lost = lost,
                None => problems.push(Damage::found(
                    DamageKind::Missing,
                    segment.path.clone(),
                    offset,
                    0,
                    lost,
                )),
            }
            self.expected = seq;
        }
    }

    /// Whether the record is new; a record with an old sequence number is a duplicate.
    #[inline]
    fn accept(&mut self, seq: u64, place: RecordPlace<'_>, problems: &mut Vec<Damage>) -> bool {
        // The next sequence number, as nearly every record has: nothing to account for.
        if seq == self.expected {
            self.open_damage = None;
            self.open_duplicate = None;
            self.expected = seq + 1;
            return true;
        }
        self.accept_out_of_order(seq, place, problems)
    }

    /// [`SeqTracker::accept`] for a record after a gap, or a duplicate.
    #[cold]
    fn accept_out_of_order(
        &mut self,
        seq: u64,
        place: RecordPlace<'_>,
        problems: &mut Vec<Damage>,
    ) -> bool {
        if seq < self.expected {
            match self.open_duplicate {
                Some((i, end)) if end == place.offset => {
                    problems[i].len += place.len;
                    self.open_duplicate = Some((i, place.offset + place.len));
                }
                _ => {
                    problems.push(Damage::found(
                        DamageKind::Duplicate,
                        place.segment.path.clone(),
                        place.offset,
                        place.len,
                        None,
                    ));
                    self.open_duplicate = Some((problems.len() - 1, place.offset + place.len));
                }
            }
            return false;
        }
        self.advance_to(seq, place.segment, place.offset, problems);
        self.open_damage = None;
        self.open_duplicate = None;
        self.expected = seq + 1;
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::dir::segment_file_name;
    use crate::journal::format::{self, SegmentHeader};

    fn segment(segment_id: u64, flags: u32, first_seq: u64, replaces_through: u64) -> SegmentFile {
        SegmentFile {
            path: PathBuf::from(segment_file_name(segment_id)),
            header: SegmentHeader {
                format: format::FORMAT_VERSION,
                flags,
                protocol_version: 1,
                salt: 7,
                segment_id,
                first_seq,
                replaces_through,
            },
            len: 4096,
            file_id: segment_id,
        }
    }

    /// Fuzz regression (open_segment): only segments older than the compacted one are
    /// superseded by it, so the segment with the newest id, which chooses the generation, is
    /// never removed as superseded.
    #[test]
    fn only_older_segments_are_superseded() {
        let plan = ReplayPlan::new(vec![
            segment(3, 0, 1, 0),
            segment(5, format::FLAG_COMPACTED, 1, 40),
            segment(9, 0, 0, 0),
            segment(6, 0, 41, 0),
        ]);
        let ids = |v: &[SegmentFile]| v.iter().map(|s| s.header.segment_id).collect::<Vec<_>>();
        assert_eq!(ids(&plan.superseded), [3]);
        assert_eq!(ids(&plan.live), [9, 5, 6]);
    }
}
