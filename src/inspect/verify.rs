//! Verification: every segment file and every record, with every damaged place.

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};

use super::InspectError;
use super::{list_archive, replay_with_progress, retrying, scan_segment, Progress};
use crate::journal::dir::{list_dir, Listing, SegmentFile};
use crate::journal::format::HEADER_LEN;
use crate::journal::replay::{write_place, ReplayPlan};
use crate::journal::{Problem, ProblemKind};
use crate::Error;

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
        }
    }

    /// Whether it counts as damage: everything but a torn tail (the normal trace of a crash,
    /// or of an append in progress in a live database), which counts only when `strict`.
    pub fn is_damage(&self, strict: bool) -> bool {
        strict || self.kind != ProblemKind::TornTail
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
        )
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
    /// File size in bytes.
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
    /// Every place that is not intact, torn tails included.
    pub findings: Vec<Finding>,
    /// Intact records in the live log.
    pub records: u64,
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
/// segment whose header cannot be read is reported, not a reason to stop.
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
    let summary = replay_with_progress(&plan, progress, |path, _, record| {
        if let Some(&i) = by_path.get(path) {
            files[i].count(record.seq);
        }
    })?;
    report.records = summary.records;
    report.findings = summary.problems.iter().map(Finding::from_problem).collect();
    files.extend(
        plan.stale
            .iter()
            .map(|s| FileReport::of(s, FileRole::Stale)),
    );
    let archive = list_archive(dir, Listing::Tolerant)?;
    let archived = archive.segments;
    let others = plan
        .superseded
        .iter()
        .map(|s| (s, FileRole::Superseded))
        .chain(archived.iter().map(|s| (s, FileRole::Archived)));
    for (segment, role) in others {
        let mut file = FileReport::of(segment, role);
        let problems = scan_segment(segment, |_, record| file.count(record.seq))?;
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
        });
    }
    report.files = files;
    report.ignored = listing.stray;
    report.ignored.extend(archive.stray);
    Ok(Some(report))
}
