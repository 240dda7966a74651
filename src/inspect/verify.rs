//! Verification: every segment file and every record, with every damaged place.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::InspectError;
use super::{list_archive, replay_with_progress, retrying, scan_segment, Progress};
use crate::event::Event;
use crate::journal::dir::{list_dir, Listing, SegmentFile, ARCHIVE_DIR};
use crate::journal::format::HEADER_LEN;
use crate::journal::problem::write_place;
use crate::journal::replay::ReplayPlan;
use crate::journal::{Problem, ProblemKind};
use crate::{Error, Loss};

/// One place where a file is not intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// What was found.
    pub kind: ProblemKind,
    /// The file.
    pub path: PathBuf,
    /// Offset of the trouble in the file.
    pub offset: u64,
    /// Bytes affected (0 for missing records).
    pub len: u64,
    /// Sequence numbers lost here, first and last, when known.
    pub lost: Option<(u64, u64)>,
    /// What was found, in words.
    pub detail: String,
    /// The log records this damage (see [`Loss`]): when that record was first written.
    pub recorded: Option<SystemTime>,
    /// An operator acknowledged it ([`NodeDb::accept_damage`](crate::NodeDb::accept_damage)):
    /// listed, but no longer counted as damage.
    pub acknowledged: bool,
}

impl Finding {
    fn from_problem(problem: &Problem) -> Finding {
        let detail = match problem.kind {
            // In a live database the append may still be going on.
            ProblemKind::TornTail => "torn tail (interrupted or ongoing append)",
            kind => kind.describe(),
        };
        Finding {
            kind: problem.kind,
            path: problem.path.clone(),
            offset: problem.offset,
            len: problem.len,
            lost: problem.lost,
            detail: detail.to_string(),
            recorded: None,
            acknowledged: false,
        }
    }

    /// Whether it counts as damage: everything not acknowledged but a torn tail (the normal
    /// trace of a crash, or of an append in progress in a live database), which counts only
    /// when `strict`.
    pub fn is_damage(&self, strict: bool) -> bool {
        !self.acknowledged && (strict || self.kind != ProblemKind::TornTail)
    }

    /// The loss it amounts to, if it is one (see [`Loss`]).
    pub fn loss(&self) -> Option<Loss> {
        let problem = Problem {
            kind: self.kind,
            path: self.path.clone(),
            offset: self.offset,
            len: self.len,
            lost: self.lost,
        };
        Loss::from_problem(&problem).map(|loss| Loss {
            acknowledged: self.acknowledged,
            ..loss
        })
    }

    /// Takes in what the log records about the same place.
    fn merge(&mut self, recorded: &RecordedLoss) {
        self.lost = self.lost.or(recorded.loss.lost);
        self.acknowledged |= recorded.loss.acknowledged;
        self.recorded = Some(recorded.written_at);
    }
}

/// A loss the live log records, with when it was first recorded.
struct RecordedLoss {
    loss: Loss,
    written_at: SystemTime,
    /// A finding of the files read stands for it.
    matched: bool,
}

impl RecordedLoss {
    /// The finding of a loss whose place is gone from the files (compacted away) or cannot be
    /// seen in a file on its own (missing records).
    fn finding(&self, dir: &Path) -> Finding {
        let name = self.loss.file_name();
        let archived = dir.join(ARCHIVE_DIR).join(&name);
        let path = if archived.exists() {
            archived
        } else {
            dir.join(name)
        };
        let mut finding = Finding::from_problem(&Problem {
            kind: self.loss.kind,
            path,
            offset: self.loss.offset,
            len: self.loss.len,
            lost: self.loss.lost,
        });
        finding.merge(self);
        finding
    }
}

/// Gathers the losses of the live log, each once (an acknowledgement updates its loss).
fn record_loss(recorded: &mut Vec<RecordedLoss>, loss: &Loss, written_at: SystemTime) {
    if !recorded.iter_mut().any(|r| r.loss.absorb(loss)) {
        recorded.push(RecordedLoss {
            loss: *loss,
            written_at,
            matched: false,
        });
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_place(
            f,
            &self.path,
            self.offset,
            &self.detail,
            self.len,
            self.lost,
        )?;
        if self.acknowledged {
            f.write_str(" (acknowledged)")?;
        }
        Ok(())
    }
}

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

/// What `verify` found in one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// What it is to the database.
    pub role: FileRole,
    /// Its size in bytes when it was read (under a live writer, the size listed a moment
    /// before may be smaller).
    pub size: u64,
    /// Intact records in it.
    pub records: u64,
    /// Lowest and highest sequence number of those records.
    pub seq_range: Option<(u64, u64)>,
}

impl FileReport {
    fn new(path: &Path, size: u64, role: FileRole) -> FileReport {
        FileReport {
            path: path.to_path_buf(),
            role,
            size,
            records: 0,
            seq_range: None,
        }
    }

    fn of(segment: &SegmentFile, role: FileRole) -> FileReport {
        FileReport::new(&segment.path, segment.len, role)
    }

    fn count(&mut self, seq: u64) {
        self.records += 1;
        self.seq_range = Some(
            self.seq_range
                .map_or((seq, seq), |(a, b)| (a.min(seq), b.max(seq))),
        );
    }
}

/// The outcome of `verify`.
#[derive(Clone, Debug, Default)]
pub struct VerifyReport {
    /// Every segment file, live ones first in replay order.
    pub files: Vec<FileReport>,
    /// Every place that is not intact, torn tails included, and every loss the log records
    /// (a compaction records the damage it rewrites away), acknowledged or not.
    pub findings: Vec<Finding>,
    /// Intact records in the live log.
    pub records: u64,
    /// Of them, evictions of an id (the store was full: `Options::max_nodes`)...
    pub evicted: u64,
    /// ...and of an IP slot (the id held the most IPs).
    pub ips_evicted: u64,
    /// Files and directories not named like peerlog's, in the directory and in `archive/`:
    /// ignored, as opening the database ignores them (not damage).
    pub ignored: Vec<PathBuf>,
}

impl VerifyReport {
    /// Findings that count as damage (see [`Finding::is_damage`]).
    pub fn damage(&self, strict: bool) -> impl Iterator<Item = &Finding> {
        self.findings.iter().filter(move |f| f.is_damage(strict))
    }

    /// Whether everything is intact.
    pub fn is_intact(&self, strict: bool) -> bool {
        self.damage(strict).next().is_none()
    }
}

/// Checks every segment file of `dir` (and of `archive/`) and every record in them. A
/// segment whose header cannot be read is reported, not a reason to stop. Progress counts the
/// bytes of every file read: the live log first, then superseded and archived segments.
pub fn verify(dir: &Path, progress: Progress<'_>) -> Result<VerifyReport, InspectError> {
    retrying(dir, || verify_once(dir, progress))
}

fn verify_once(dir: &Path, progress: Progress<'_>) -> Result<Option<VerifyReport>, Error> {
    let listing = list_dir(dir, Listing::Tolerant)?;
    if listing.segments.is_empty() && listing.unreadable.is_empty() {
        return Ok(None);
    }
    let plan = ReplayPlan::new(listing.segments);
    let mut report = VerifyReport::default();
    let mut files: Vec<FileReport> = plan
        .live
        .iter()
        .map(|s| FileReport::of(s, FileRole::Live))
        .collect();
    let by_path: HashMap<PathBuf, usize> = files
        .iter()
        .enumerate()
        .map(|(i, f)| (f.path.clone(), i))
        .collect();
    let archive = list_archive(dir, Listing::Tolerant)?;
    let archived = &archive.segments;
    let others: Vec<(&SegmentFile, FileRole)> = plan
        .superseded
        .iter()
        .map(|s| (s, FileRole::Superseded))
        .chain(archived.iter().map(|s| (s, FileRole::Archived)))
        .collect();
    // Progress over every file read: the live log, then the others.
    let live_bytes: u64 = plan.live.iter().map(|s| s.len).sum();
    let total = live_bytes + others.iter().map(|(s, _)| s.len).sum::<u64>();
    let mut recorded = Vec::new();
    let (mut evicted, mut ips_evicted) = (0, 0);
    let live_progress = |done: u64, _| progress(done.min(live_bytes), total);
    let summary = replay_with_progress(&plan, &live_progress, |path, _, record| {
        if let Some(&i) = by_path.get(path) {
            files[i].count(record.seq);
        }
        match &record.event {
            Event::Loss(loss) => record_loss(&mut recorded, loss, record.written_at),
            Event::Evicted { .. } => evicted += 1,
            Event::IpEvicted { .. } => ips_evicted += 1,
            _ => {}
        }
    })?;
    (report.evicted, report.ips_evicted) = (evicted, ips_evicted);
    // Sizes as read: a live writer may have grown a segment since it was listed.
    for (path, len) in &summary.bytes_read {
        if let Some(&i) = by_path.get(path) {
            files[i].size = *len;
        }
    }
    report.records = summary.records;
    report.findings = summary.problems.iter().map(Finding::from_problem).collect();
    files.extend(
        plan.stale
            .iter()
            .map(|s| FileReport::of(s, FileRole::Stale)),
    );
    let mut done = live_bytes;
    for (segment, role) in others {
        let mut file = FileReport::of(segment, role);
        let (problems, read) = scan_segment(segment, |_, record| file.count(record.seq))?;
        file.size = read;
        done += segment.len;
        progress(done, total);
        report
            .findings
            .extend(problems.iter().map(Finding::from_problem));
        files.push(file);
    }
    for unreadable in listing.unreadable.iter().chain(&archive.unreadable) {
        files.push(FileReport::new(
            &unreadable.path,
            unreadable.len,
            FileRole::Unreadable,
        ));
        let detail = match &unreadable.error {
            Error::DamagedHeader { reason, .. } => reason.clone(),
            other => other.to_string(),
        };
        report.findings.push(Finding {
            kind: ProblemKind::BadHeader,
            path: unreadable.path.clone(),
            offset: 0,
            // The header's bytes, as far as the file has them.
            len: unreadable.len.min(HEADER_LEN as u64),
            lost: None,
            detail,
            recorded: None,
            acknowledged: false,
        });
    }
    // Each finding is matched with the loss the log records for it, if any: one not
    // acknowledged first, so that damage that grew at an acknowledged place still counts.
    for finding in &mut report.findings {
        let Some(found) = finding.loss() else {
            continue;
        };
        let candidate = |r: &RecordedLoss| !r.matched && r.loss.accounts_for(&found);
        let best = recorded
            .iter()
            .position(|r| candidate(r) && !r.loss.acknowledged)
            .or_else(|| recorded.iter().position(candidate));
        if let Some(i) = best {
            finding.merge(&recorded[i]);
            recorded[i].matched = true;
        }
    }
    let unmatched = recorded.iter().filter(|r| !r.matched);
    report.findings.extend(unmatched.map(|r| r.finding(dir)));
    report.files = files;
    report.ignored = listing.stray;
    report.ignored.extend(archive.stray);
    Ok(Some(report))
}
