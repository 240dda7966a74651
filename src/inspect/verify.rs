//! Verification: every segment file and every record, with every damaged place (found by
//! [`survey`](crate::survey), which `NodeDb::accept_damage` shares).

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use super::{retrying, InspectError, Progress};
use crate::event::{Event, LogRecord};
use crate::journal::damage::Damage;
use crate::survey::{survey, FileRole, Observer};
use crate::Error;

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
    /// (a compaction records the damage it rewrites away), acknowledged or not: each in the
    /// state the log gives it.
    pub findings: Vec<Damage>,
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
    /// Findings that count as damage (see [`Damage::counts`]).
    pub fn damage(&self, strict: bool) -> impl Iterator<Item = &Damage> {
        self.findings.iter().filter(move |f| f.counts(strict))
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
    let mut files = Files::default();
    let Some(survey) = survey(dir, progress, &mut files)? else {
        return Ok(None);
    };
    Ok(Some(VerifyReport {
        files: files.reports,
        findings: survey.damage,
        records: survey.records,
        evicted: files.evicted,
        ips_evicted: files.ips_evicted,
        ignored: survey.ignored,
    }))
}

/// The file reports of a survey, and the evictions of the live log.
#[derive(Default)]
struct Files {
    reports: Vec<FileReport>,
    by_path: HashMap<PathBuf, usize>,
    evicted: u64,
    ips_evicted: u64,
}

impl Files {
    fn report(&mut self, path: &Path) -> Option<&mut FileReport> {
        let i = *self.by_path.get(path)?;
        Some(&mut self.reports[i])
    }
}

impl Observer for Files {
    fn file(&mut self, path: &Path, role: FileRole, len: u64) {
        self.by_path.insert(path.to_path_buf(), self.reports.len());
        self.reports.push(FileReport::new(path, len, role));
    }

    fn record(&mut self, path: &Path, role: FileRole, record: &LogRecord) {
        if role == FileRole::Live {
            match record.event {
                Event::Evicted { .. } => self.evicted += 1,
                Event::IpEvicted { .. } => self.ips_evicted += 1,
                _ => {}
            }
        }
        if let Some(file) = self.report(path) {
            file.count(record.seq);
        }
    }

    // Sizes as read: a live writer may have grown a segment since it was listed.
    fn read(&mut self, path: &Path, len: u64) {
        if let Some(file) = self.report(path) {
            file.size = len;
        }
    }
}
