//! Verification: every segment file and every record, with every damaged place.

use super::*;

/// One place where a file is not intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    /// `damaged`, `torn_tail`, `damaged_tail`, `missing`, `duplicate`, `stale` or `bad_header`.
    pub kind: &'static str,
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
    pub(super) fn new(
        kind: &'static str,
        path: &Path,
        offset: u64,
        len: u64,
        detail: &str,
    ) -> Finding {
        Finding {
            kind,
            path: path.to_path_buf(),
            offset,
            len,
            lost: None,
            detail: detail.to_string(),
        }
    }

    fn from_problem(problem: &crate::Problem) -> Finding {
        let (kind, detail) = match problem.kind {
            ProblemKind::Damaged => ("damaged", "damaged bytes skipped"),
            ProblemKind::TornTail => ("torn_tail", "torn tail (interrupted or ongoing append)"),
            ProblemKind::DamagedTail => (
                "damaged_tail",
                "damaged bytes at the end of a sealed segment",
            ),
            ProblemKind::Missing => ("missing", "records missing"),
            ProblemKind::Duplicate => ("duplicate", "duplicate records ignored"),
            ProblemKind::Stale => ("stale", "segment of another generation ignored"),
        };
        Finding {
            lost: problem.lost,
            ..Finding::new(kind, &problem.path, problem.offset, problem.len, detail)
        }
    }

    /// The stable JSON object of a finding.
    pub fn to_json(&self) -> Value {
        json!({
            "kind": self.kind,
            "file": self.path.display().to_string(),
            "offset": self.offset,
            "len": self.len,
            "lost_first_seq": self.lost.map(|l| l.0),
            "lost_last_seq": self.lost.map(|l| l.1),
            "detail": self.detail,
        })
    }
}

impl std::fmt::Display for Finding {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        crate::log::write_place(
            f,
            &self.path,
            self.offset,
            &self.detail,
            self.len,
            self.lost,
        )
    }
}

/// What `verify` found in one segment file.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FileReport {
    /// The file.
    pub path: PathBuf,
    /// `live` (replayed), `superseded` (replaced by a compacted segment, removed by the next
    /// writer), `archived`, `stale` (another generation) or `unreadable` (bad header).
    pub role: &'static str,
    /// File size in bytes.
    pub size: u64,
    /// Intact records in it.
    pub records: u64,
    /// Lowest and highest sequence number of those records.
    pub seq_range: Option<(u64, u64)>,
}

impl FileReport {
    fn new(segment: &SegmentFile, role: &'static str) -> FileReport {
        FileReport {
            path: segment.path.clone(),
            role,
            size: segment.len,
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

    /// The stable JSON object of a file report.
    pub fn to_json(&self) -> Value {
        json!({
            "file": self.path.display().to_string(),
            "role": self.role,
            "size": self.size,
            "records": self.records,
            "first_seq": self.seq_range.map(|r| r.0),
            "last_seq": self.seq_range.map(|r| r.1),
        })
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
}

impl VerifyReport {
    /// Findings that count as damage: all of them when `strict`, else all but a torn tail (the
    /// normal trace of a crash, or of an append in progress in a live database).
    pub fn damage(&self, strict: bool) -> impl Iterator<Item = &Finding> {
        self.findings
            .iter()
            .filter(move |f| strict || f.kind != "torn_tail")
    }

    /// Whether everything is intact.
    pub fn is_intact(&self, strict: bool) -> bool {
        self.damage(strict).next().is_none()
    }

    /// The stable `verify --json` object.
    pub fn to_json(&self, strict: bool) -> Value {
        json!({
            "intact": self.is_intact(strict),
            "strict": strict,
            "records": self.records,
            "files": self.files.iter().map(FileReport::to_json).collect::<Vec<_>>(),
            "findings": self.findings.iter().map(Finding::to_json).collect::<Vec<_>>(),
        })
    }
}

fn is_segment_name(name: &str) -> bool {
    name.strip_suffix(&format!(".{SEGMENT_EXT}"))
        .is_some_and(|stem| stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_digit()))
}

/// Lists a directory like [`list_dir`], but a segment whose header is damaged becomes a
/// finding instead of failing the whole listing, so that `verify` reports every file.
fn list_for_verify(dir: &Path) -> Result<(Vec<SegmentFile>, Vec<Finding>), Error> {
    let entries = fs::read_dir(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let mut names: Vec<_> = entries
        .filter_map(|e| e.ok().map(|e| e.file_name()))
        .collect();
    names.sort();
    let (mut segments, mut findings) = (Vec::new(), Vec::new());
    for name in names {
        let path = dir.join(&name);
        let name = name.to_string_lossy();
        let skip =
            name == LOCK_FILE || name == ARCHIVE_DIR || name.ends_with(&format!(".{TEMP_EXT}"));
        if skip {
            continue;
        }
        if !is_segment_name(&name) {
            return Err(Error::NotADatabase {
                dir: dir.to_path_buf(),
                file: path,
                reason: "unexpected file name".into(),
            });
        }
        match read_segment_header(&path) {
            Ok(segment) => segments.push(segment),
            Err(e) if is_not_found(&e) => {} // removed by a compaction since the listing
            Err(Error::Corrupt { offset, reason, .. }) => {
                findings.push(Finding::new("bad_header", &path, offset, 64, &reason))
            }
            Err(Error::NotADatabase { reason, .. }) => {
                findings.push(Finding::new("bad_header", &path, 0, 8, &reason))
            }
            Err(e) => return Err(e),
        }
    }
    Ok((segments, findings))
}

/// Checks every segment file of `dir` (and of `archive/`) and every record in them.
pub fn verify(dir: &Path, progress: Progress<'_>) -> Result<VerifyReport, AuditError> {
    check_dir(dir)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        match verify_once(dir, progress) {
            Ok(Some(report)) => return Ok(report),
            Ok(None) => return Err(AuditError::NoDatabase(dir.to_path_buf())),
            Err(e) if is_transient(&e) && attempt < RELIST_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

fn verify_once(dir: &Path, progress: Progress<'_>) -> Result<Option<VerifyReport>, Error> {
    let (segments, bad_headers) = list_for_verify(dir)?;
    if segments.is_empty() && bad_headers.is_empty() {
        return Ok(None);
    }
    let plan = ReplayPlan::new(segments);
    let mut report = VerifyReport::default();
    let mut files: Vec<FileReport> = plan
        .live
        .iter()
        .map(|s| FileReport::new(s, "live"))
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
    files.extend(plan.stale.iter().map(|s| FileReport::new(s, "stale")));
    let archived = archived_segments(dir)?;
    let others = plan
        .superseded
        .iter()
        .map(|s| (s, "superseded"))
        .chain(archived.iter().map(|s| (s, "archived")));
    for (segment, role) in others {
        let mut file = FileReport::new(segment, role);
        report
            .findings
            .extend(scan_segment(segment, |_, record| file.count(record.seq))?);
        files.push(file);
    }
    for finding in &bad_headers {
        files.push(FileReport {
            path: finding.path.clone(),
            role: "unreadable",
            size: fs::metadata(&finding.path).map_or(0, |m| m.len()),
            records: 0,
            seq_range: None,
        });
    }
    report.findings.extend(bad_headers);
    report.files = files;
    Ok(Some(report))
}
