//! A survey of a database's files: every segment read (the live log replayed, superseded and
//! archived segments scanned on their own, unreadable ones named) and every damaged place
//! found, matched with the losses the log records about itself.
//!
//! It sits below both its users: `NodeDb::accept_damage` acknowledges what it finds, and
//! `inspect::verify` reports it with the files and their records. So the engine does not
//! lean on the operator tools, and the two cannot disagree about what is damaged.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use crate::event::{Event, LogRecord};
use crate::journal::damage::{Damage, DamageKind};
use crate::journal::dir::{
    list_archive, list_dir, Listing, SegmentFile, UnreadableSegment, ARCHIVE_DIR,
};
use crate::journal::format::{salt_seed, HEADER_LEN};
use crate::journal::reader::{ScanItem, SegmentScanner};
use crate::journal::replay::{
    map_segment, replay, RecordPlace, ReleaseBehind, ReplayPlan, ReplaySummary,
};
use crate::loss::Loss;
use crate::Error;

/// Records between two progress reports: often enough for a smooth bar, rare enough to cost
/// nothing next to the checksums.
pub(crate) const PROGRESS_EVERY: u64 = 4096;

/// Reports progress as (bytes scanned, bytes to scan).
pub(crate) type Progress<'a> = &'a dyn Fn(u64, u64);

/// What a segment file is to the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FileRole {
    /// Replayed: part of the log.
    Live,
    /// Replaced by a compacted segment; the next writer removes it.
    Superseded,
    /// Kept in `archive/` by a compaction.
    Archived,
    /// From another generation of the database (another salt): never replayed.
    Stale,
    /// Its header is damaged or not peerlog's.
    Unreadable,
}

impl FileRole {
    /// A stable lowercase name: `live`, `superseded`, `archived`, `stale`, `unreadable`.
    pub fn name(self) -> &'static str {
        match self {
            FileRole::Live => "live",
            FileRole::Superseded => "superseded",
            FileRole::Archived => "archived",
            FileRole::Stale => "stale",
            FileRole::Unreadable => "unreadable",
        }
    }
}

impl fmt::Display for FileRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What a survey tells its caller as it reads, file by file: the live log in replay order,
/// then stale, superseded, archived and unreadable files.
pub(crate) trait Observer {
    /// A file about to be read (an unreadable one is not), `len` bytes when listed.
    fn file(&mut self, _path: &Path, _role: FileRole, _len: u64) {}
    /// An intact record of it (of the live log: one with a new sequence number).
    fn record(&mut self, _path: &Path, _role: FileRole, _record: &LogRecord) {}
    /// The bytes of it read: under a live writer, more than were listed.
    fn read(&mut self, _path: &Path, _len: u64) {}
}

/// A survey that only wants the damage.
impl Observer for () {}

/// What a survey found.
#[derive(Debug, Default)]
pub(crate) struct Survey {
    /// Every damaged place: found in the files (torn tails included), recorded or
    /// acknowledged where the log records it as a loss, then the losses whose place the
    /// files no longer show (compacted away, or a missing segment).
    pub damage: Vec<Damage>,
    /// Intact records in the live log.
    pub records: u64,
    /// Files and directories not named like peerlog's, in the directory and in `archive/`.
    pub ignored: Vec<PathBuf>,
}

/// Surveys every segment file of `dir` and of its `archive/`; `None` if there is none.
/// Progress counts the bytes of every file read: the live log first, then the others.
pub(crate) fn survey(
    dir: &Path,
    progress: Progress<'_>,
    observer: &mut impl Observer,
) -> Result<Option<Survey>, Error> {
    let listing = list_dir(dir, Listing::Tolerant)?;
    if listing.segments.is_empty() && listing.unreadable.is_empty() {
        return Ok(None);
    }
    let archive = list_archive(dir, Listing::Tolerant)?;
    let plan = ReplayPlan::new(listing.segments);
    let others: Vec<(&SegmentFile, FileRole)> = plan
        .superseded
        .iter()
        .map(|s| (s, FileRole::Superseded))
        .chain(archive.segments.iter().map(|s| (s, FileRole::Archived)))
        .collect();
    let live_bytes: u64 = plan.live.iter().map(|s| s.len).sum();
    let total = live_bytes + others.iter().map(|(s, _)| s.len).sum::<u64>();
    let live_progress = |done: u64, _| progress(done.min(live_bytes), total);
    let (mut survey, recorded) = survey_live(&plan, &live_progress, observer)?;
    for stale in &plan.stale {
        observer.file(&stale.path, FileRole::Stale, stale.len);
    }
    let mut done = live_bytes;
    for (segment, role) in others {
        survey.damage.extend(scan_other(segment, role, observer)?);
        done += segment.len;
        progress(done, total);
    }
    for unreadable in listing.unreadable.iter().chain(&archive.unreadable) {
        observer.file(&unreadable.path, FileRole::Unreadable, unreadable.len);
        survey.damage.push(bad_header(unreadable));
    }
    match_recorded(&mut survey.damage, recorded, dir);
    survey.ignored = listing.stray;
    survey.ignored.extend(archive.stray);
    Ok(Some(survey))
}

/// Replays the live log: the survey of it, and the losses it records.
fn survey_live(
    plan: &ReplayPlan,
    progress: Progress<'_>,
    observer: &mut impl Observer,
) -> Result<(Survey, Vec<RecordedLoss>), Error> {
    for segment in &plan.live {
        observer.file(&segment.path, FileRole::Live, segment.len);
    }
    let mut recorded = Vec::new();
    let summary = replay_with_progress(plan, progress, |place, record| {
        if let Event::Loss(damage) = &record.event {
            record_loss(&mut recorded, damage);
        }
        observer.record(&place.segment.path, FileRole::Live, &record);
    })?;
    for (path, len) in &summary.bytes_read {
        observer.read(path, *len);
    }
    let survey = Survey {
        damage: summary.problems,
        records: summary.records,
        ignored: Vec::new(),
    };
    Ok((survey, recorded))
}

/// Scans a segment that is not part of the live log, on its own: its damage.
fn scan_other(
    segment: &SegmentFile,
    role: FileRole,
    observer: &mut impl Observer,
) -> Result<Vec<Damage>, Error> {
    observer.file(&segment.path, role, segment.len);
    let path = &segment.path;
    let (damage, read) = scan_segment(segment, |_, record| observer.record(path, role, &record))?;
    observer.read(path, read);
    Ok(damage)
}

/// The damage of a file whose header cannot be read: the header's bytes, as far as the file
/// has them, and what is wrong with them.
fn bad_header(unreadable: &UnreadableSegment) -> Damage {
    let reason = match &unreadable.error {
        Error::DamagedHeader { reason, .. } => reason.clone(),
        other => other.to_string(),
    };
    let len = unreadable.len.min(HEADER_LEN as u64);
    Damage {
        reason: Some(reason),
        ..Damage::found(DamageKind::BadHeader, &unreadable.path, 0, len, None)
    }
}

/// A loss the live log records, with when it was first recorded.
struct RecordedLoss {
    loss: Loss,
    at: SystemTime,
    /// Damage found in the files stands for it.
    matched: bool,
}

impl RecordedLoss {
    /// The damage of a loss whose place is gone from the files (compacted away) or cannot be
    /// seen in a file on its own (missing records): in `archive/` if the file is there.
    fn damage(&self, dir: &Path) -> Damage {
        let name = self.loss.file_name();
        let archived = dir.join(ARCHIVE_DIR).join(&name);
        let path = if archived.exists() {
            archived
        } else {
            dir.join(name)
        };
        Damage {
            path,
            ..self.loss.damage(self.at)
        }
    }

    /// Takes `found` for the place it records: the lost range where the file alone cannot
    /// tell it, and the state.
    fn stand_for(&mut self, found: &mut Damage) {
        let recorded = self.loss.damage(self.at);
        found.lost = found.lost.or(recorded.lost);
        found.state = recorded.state;
        self.matched = true;
    }
}

/// Gathers the losses of the live log, each once (an acknowledgement updates its loss).
fn record_loss(recorded: &mut Vec<RecordedLoss>, damage: &Damage) {
    let (Some(loss), Some(at)) = (Loss::of(damage), damage.state.recorded_at()) else {
        return;
    };
    if !recorded.iter_mut().any(|r| r.loss.absorb(&loss)) {
        recorded.push(RecordedLoss {
            loss,
            at,
            matched: false,
        });
    }
}

/// Matches each damaged place found with the loss the log records for it, if any (one not
/// acknowledged first, so that damage that grew at an acknowledged place still counts), then
/// adds the losses nothing found stands for.
fn match_recorded(damage: &mut Vec<Damage>, mut recorded: Vec<RecordedLoss>, dir: &Path) {
    for found in damage.iter_mut() {
        let Some(loss) = Loss::of(found) else {
            continue;
        };
        let candidate = |r: &RecordedLoss| !r.matched && r.loss.accounts_for(&loss);
        let best = recorded
            .iter()
            .position(|r| candidate(r) && !r.loss.acknowledged)
            .or_else(|| recorded.iter().position(candidate));
        if let Some(i) = best {
            recorded[i].stand_for(found);
        }
    }
    let unmatched = recorded.iter().filter(|r| !r.matched);
    damage.extend(unmatched.map(|r| r.damage(dir)));
}

/// Replays the live log of a plan, calling `on_record` for every record with where it was
/// found, and reporting progress in bytes of segment files.
pub(crate) fn replay_with_progress(
    plan: &ReplayPlan,
    progress: Progress<'_>,
    mut on_record: impl FnMut(RecordPlace<'_>, LogRecord),
) -> Result<ReplaySummary, Error> {
    let mut meter = ReplayProgress::new(plan, progress);
    let summary = replay(plan, |place, record| {
        meter.at(place);
        on_record(place, record);
    })?;
    meter.done();
    Ok(summary)
}

/// The progress of a replay of a plan's live segments, in bytes of segment files, reported
/// every [`PROGRESS_EVERY`] records.
pub(crate) struct ReplayProgress<'p> {
    progress: Progress<'p>,
    /// Where each live segment starts among the bytes of all of them, by segment id.
    starts: HashMap<u64, u64>,
    total: u64,
    records: u64,
}

impl<'p> ReplayProgress<'p> {
    pub fn new(plan: &ReplayPlan, progress: Progress<'p>) -> ReplayProgress<'p> {
        let mut starts = HashMap::new();
        let mut total = 0;
        for segment in &plan.live {
            starts.insert(segment.header.segment_id, total);
            total += segment.len;
        }
        ReplayProgress {
            progress,
            starts,
            total,
            records: 0,
        }
    }

    /// A record was read at `place`.
    pub fn at(&mut self, place: RecordPlace<'_>) {
        self.records += 1;
        if self.records.is_multiple_of(PROGRESS_EVERY) {
            let base = self.starts.get(&place.segment.header.segment_id).copied();
            (self.progress)(base.unwrap_or(0) + place.offset, self.total);
        }
    }

    /// The replay is over.
    pub fn done(&self) {
        (self.progress)(self.total, self.total);
    }
}

/// Reads one segment file on its own (not as part of a replay): every intact record with its
/// offset, and every damaged place; returns those and the bytes read. Mapped, its pages
/// released behind the scan, so that memory stays bounded whatever the file's size.
pub(crate) fn scan_segment(
    segment: &SegmentFile,
    mut on_record: impl FnMut(u64, LogRecord),
) -> Result<(Vec<Damage>, u64), Error> {
    let map = map_segment(&segment.path)?;
    let mut behind = ReleaseBehind::new(&map);
    let mut scanner = SegmentScanner::new(&map, salt_seed(segment.header.salt));
    let mut damage = Vec::new();
    let found = |kind, offset, len| Damage::found(kind, &segment.path, offset, len, None);
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record { offset, record, .. } => {
                behind.reached(offset);
                on_record(offset, record)
            }
            ScanItem::Damage { offset, len } => {
                damage.push(found(DamageKind::Damaged, offset, len))
            }
        }
    }
    if let Some(end) = scanner.end().filter(|end| end.has_garbage()) {
        let len = end.garbage_end - end.valid_end;
        damage.push(found(DamageKind::DamagedTail, end.valid_end, len));
    }
    Ok((damage, map.len() as u64))
}
