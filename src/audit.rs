//! Reading a log for audit: history, verification, statistics and export, plus the
//! maintenance and demo helpers behind the `peerlog` command.
//!
//! Every reading function here works on a directory without taking its lock and without
//! creating, changing or removing anything, so it can run while a `NodeDb` in another process
//! appends to (or compacts) the same directory. It sees a consistent prefix of the log: records
//! are accepted only when their checksum matches, a frame being written at that moment reads as
//! a torn tail, and a segment that a concurrent compaction removes between listing and reading
//! makes the whole read start over from a fresh listing.

use std::collections::{BTreeMap, HashMap};
use std::fs;
use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{json, Value};

use crate::event::{Event, Record};
use crate::log::format::{align, salt_seed, FRAME_HEADER_LEN};
use crate::log::reader::{ScanItem, SegmentScanner};
use crate::log::{
    list_dir, read_segment_header, replay, ProblemKind, ReplayPlan, ReplaySummary, SegmentFile,
    ARCHIVE_DIR, LOCK_FILE, SEGMENT_EXT, TEMP_EXT,
};
use crate::{Error, Node, NodeDb, NodeId, Options, NODE_ID_LEN};

/// How often a read starts over after a segment vanished under it (a concurrent compaction).
const RELIST_ATTEMPTS: usize = 3;
/// Records between two progress reports: often enough for a smooth bar, rare enough to cost
/// nothing next to the checksums.
const PROGRESS_EVERY: u64 = 4096;

/// Why an audit or maintenance operation failed.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    /// The directory does not exist.
    #[error("{0}: no such directory")]
    NoSuchDir(PathBuf),
    /// The path exists but is not a directory.
    #[error("{0}: not a directory")]
    NotADir(PathBuf),
    /// The directory holds no segment file.
    #[error("{0}: no peerlog database here (no segment files)")]
    NoDatabase(PathBuf),
    /// `demo` refuses to write into a directory that already holds something.
    #[error("{0}: directory is not empty; demo writes only into a new or empty directory")]
    NotEmpty(PathBuf),
    /// The protocol version given does not match the one in the segment headers; opening
    /// with it would wipe the database.
    #[error("database has protocol version {found}, not {given}; opening it with {given} would wipe it, refused")]
    VersionMismatch {
        /// Version in the newest segment header.
        found: u64,
        /// Version the user asked for.
        given: u64,
    },
    /// An error of the database library.
    #[error(transparent)]
    Db(#[from] Error),
}

/// Reports progress as (bytes scanned, bytes to scan).
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// A progress callback that shows nothing.
pub fn no_progress(_done: u64, _total: u64) {}

// ---------------------------------------------------------------------------------------------
// Times and node arguments

/// `t` as UTC ISO-8601 with whole seconds: `2024-05-01T12:30:00Z`. Works for every time the
/// log can hold, before 1970 included.
pub fn iso8601(t: SystemTime) -> String {
    let (secs, _) = split_unix(t);
    format_civil(secs, None)
}

/// `t` as UTC ISO-8601 with nanoseconds when it has a fraction:
/// `2024-05-01T12:30:00.000000123Z`, else as [`iso8601`]. Exact: parsing it gives `t` back.
pub fn iso8601_precise(t: SystemTime) -> String {
    let (secs, nanos) = split_unix(t);
    format_civil(secs, (nanos != 0).then_some(nanos))
}

/// Whole seconds (floored) and nanoseconds since the Unix epoch, clamped to years that fit.
fn split_unix(t: SystemTime) -> (i64, u32) {
    const LIMIT: u64 = 1 << 40; // some 35 000 years: keeps the calendar arithmetic in range
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => (after.as_secs().min(LIMIT) as i64, after.subsec_nanos()),
        Err(before) => {
            let d = before.duration();
            let secs = -(d.as_secs().min(LIMIT) as i64);
            match d.subsec_nanos() {
                0 => (secs, 0),
                n => (secs - 1, 1_000_000_000 - n),
            }
        }
    }
}

fn format_civil(secs: i64, nanos: Option<u32>) -> String {
    let (days, day_secs) = (secs.div_euclid(86_400), secs.rem_euclid(86_400));
    let (year, month, day) = civil_from_days(days);
    let (h, m, s) = (day_secs / 3600, day_secs / 60 % 60, day_secs % 60);
    let fraction = nanos.map_or(String::new(), |n| format!(".{n:09}"));
    format!("{year:04}-{month:02}-{day:02}T{h:02}:{m:02}:{s:02}{fraction}Z")
}

/// Proleptic Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

fn opt_time(t: Option<SystemTime>) -> Value {
    t.map_or(Value::Null, |t| Value::String(iso8601_precise(t)))
}

/// The node an argument names: 128 hex characters (optionally `0x`) or an enode URL.
pub fn parse_node_arg(arg: &str) -> Result<NodeId, Error> {
    if arg.starts_with("enode://") {
        Ok(arg.parse::<Node>()?.id)
    } else {
        arg.parse()
    }
}

// ---------------------------------------------------------------------------------------------
// Reading a directory without its lock

fn check_dir(dir: &Path) -> Result<(), AuditError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(AuditError::NotADir(dir.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::NotFound => Err(AuditError::NoSuchDir(dir.to_path_buf())),
        Err(source) => Err(Error::Io {
            path: dir.to_path_buf(),
            source,
        }
        .into()),
    }
}

fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound)
}

/// Whether a read failed only because the directory changed under it: a file vanished, or a
/// `*.tmp` file was renamed between `list_dir` reading its name and checking it (list_dir then
/// calls it foreign), as the writer's rotation and compaction do.
fn is_transient(e: &Error) -> bool {
    match e {
        Error::NotADatabase { file, .. } => fs::symlink_metadata(file).is_err(),
        e => is_not_found(e),
    }
}

/// Runs `read` on a fresh listing of `dir`, starting over when a file vanished under it
/// (compaction removes segments while we read). `read` must build its result from scratch.
fn with_listing<T>(
    dir: &Path,
    mut read: impl FnMut(Vec<SegmentFile>) -> Result<T, Error>,
) -> Result<T, AuditError> {
    check_dir(dir)?;
    let mut attempt = 0;
    loop {
        attempt += 1;
        let result = list_dir(dir).and_then(|listing| {
            if listing.segments.is_empty() {
                return Ok(None);
            }
            read(listing.segments).map(Some)
        });
        match result {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => return Err(AuditError::NoDatabase(dir.to_path_buf())),
            Err(e) if is_transient(&e) && attempt < RELIST_ATTEMPTS => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

/// Replays the live log of a plan, calling `on_record` for every record, and reporting
/// progress in bytes of segment files.
fn replay_with_progress(
    plan: &ReplayPlan,
    progress: Progress<'_>,
    mut on_record: impl FnMut(&Path, u64, Record),
) -> Result<ReplaySummary, Error> {
    let total: u64 = plan.live.iter().map(|s| s.len).sum();
    let mut starts = HashMap::new();
    let mut start = 0;
    for segment in &plan.live {
        starts.insert(segment.header.segment_id, start);
        start += segment.len;
    }
    let mut count = 0u64;
    let summary = replay(plan, |place, record| {
        count += 1;
        if count % PROGRESS_EVERY == 0 {
            let base = starts.get(&place.segment.header.segment_id).copied();
            progress(base.unwrap_or(0) + place.offset, total);
        }
        on_record(&place.segment.path, place.offset, record);
    })?;
    progress(total, total);
    Ok(summary)
}

/// Reads one segment file on its own (not as part of a replay): every intact record with its
/// offset, and every damaged place.
fn scan_segment(
    segment: &SegmentFile,
    mut on_record: impl FnMut(u64, Record),
) -> Result<Vec<Finding>, Error> {
    let bytes = fs::read(&segment.path).map_err(|source| Error::Io {
        path: segment.path.clone(),
        source,
    })?;
    let mut scanner = SegmentScanner::new(&bytes, salt_seed(segment.header.salt));
    let mut findings = Vec::new();
    for item in scanner.by_ref() {
        match item {
            ScanItem::Record { offset, record, .. } => on_record(offset, record),
            ScanItem::Damage { offset, len } => findings.push(Finding::new(
                "damaged",
                &segment.path,
                offset,
                len,
                "damaged bytes skipped",
            )),
        }
    }
    if let Some(end) = scanner.end().filter(|end| end.has_garbage()) {
        findings.push(Finding::new(
            "damaged_tail",
            &segment.path,
            end.valid_end,
            end.garbage_end - end.valid_end,
            "damaged bytes at the end of a sealed segment",
        ));
    }
    Ok(findings)
}

/// The segments in `archive/` (kept by compaction with `keep_history`); none if there is no
/// archive.
fn archived_segments(dir: &Path) -> Result<Vec<SegmentFile>, Error> {
    let archive = dir.join(ARCHIVE_DIR);
    if !archive.is_dir() {
        return Ok(Vec::new());
    }
    Ok(list_dir(&archive)?.segments)
}

// ---------------------------------------------------------------------------------------------
// Current state

/// Everything known about one id after replaying the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// The id.
    pub id: NodeId,
    /// Its node record, if it has one.
    pub node: Option<Node>,
    /// Last ping sent.
    pub last_ping: Option<SystemTime>,
    /// Last pong received.
    pub last_pong: Option<SystemTime>,
    /// Findnode failures.
    pub fails: u32,
    /// Write time of the newest event about it.
    pub last_written: SystemTime,
}

impl PeerState {
    fn new(id: NodeId, written_at: SystemTime) -> PeerState {
        PeerState {
            id,
            node: None,
            last_ping: None,
            last_pong: None,
            fails: 0,
            last_written: written_at,
        }
    }

    /// Applies an event that is not a delete or expiry (those remove the whole state).
    fn apply(&mut self, event: &Event, written_at: SystemTime) {
        self.last_written = written_at;
        match event {
            Event::NodeUpdated(node) => self.node = Some(node.clone()),
            Event::Ping { at, .. } => self.last_ping = Some(*at),
            Event::Pong { at, .. } => self.last_pong = Some(*at),
            Event::FindFails { fails, .. } => self.fails = *fails,
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {}
        }
    }

    /// Bytes of log a compaction would keep for this id (the frames of its live events).
    fn live_bytes(&self) -> u64 {
        // Payloads: written_at (8) + id + time (8) for ping and pong, + count (4) for fails.
        let timed = align(FRAME_HEADER_LEN + 8 + NODE_ID_LEN + 8) as u64;
        let fails = align(FRAME_HEADER_LEN + 8 + NODE_ID_LEN + 4) as u64;
        let node = self
            .node
            .as_ref()
            .map_or(0, |n| align(FRAME_HEADER_LEN + 8 + n.to_rlp().len()) as u64);
        node + timed * u64::from(self.last_ping.is_some())
            + timed * u64::from(self.last_pong.is_some())
            + fails * u64::from(self.fails != 0)
    }

    /// The stable `dump --json` object.
    pub fn to_json(&self) -> Value {
        let node = self.node.as_ref();
        json!({
            "id": self.id.to_string(),
            "enode": node.map(|n| n.to_string()),
            "ip": node.map(|n| n.ip.to_string()),
            "udp": node.map(|n| n.udp),
            "tcp": node.map(|n| n.tcp),
            "last_ping": opt_time(self.last_ping),
            "last_pong": opt_time(self.last_pong),
            "fails": self.fails,
            "last_written": iso8601_precise(self.last_written),
        })
    }
}

/// The live state of a database, as replaying its log gives it.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Every id with a record or any data, sorted by id.
    pub peers: Vec<PeerState>,
    /// Records replayed, by event kind name ([`Event::kind_name`]).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// What the replay found.
    pub summary: ReplaySummary,
    /// The live segments replayed.
    pub segments: Vec<SegmentFile>,
}

#[derive(Default)]
struct StateBuilder {
    peers: HashMap<NodeId, PeerState>,
    events_by_kind: BTreeMap<&'static str, u64>,
    span: Option<(SystemTime, SystemTime)>,
}

impl StateBuilder {
    fn apply(&mut self, record: &Record) {
        *self
            .events_by_kind
            .entry(record.event.kind_name())
            .or_default() += 1;
        let t = record.written_at;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let id = *record.event.id();
        match &record.event {
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {
                self.peers.remove(&id);
            }
            event => self
                .peers
                .entry(id)
                .or_insert_with(|| PeerState::new(id, t))
                .apply(event, t),
        }
    }
}

/// Replays the live log of `dir` into the state a `NodeDb` would open with.
pub fn load_state(dir: &Path, progress: Progress<'_>) -> Result<LiveState, AuditError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut builder = StateBuilder::default();
        let summary = replay_with_progress(&plan, progress, |_, _, record| builder.apply(&record))?;
        let mut peers: Vec<_> = builder.peers.into_values().collect();
        peers.sort_unstable_by_key(|p| p.id);
        Ok(LiveState {
            peers,
            events_by_kind: builder.events_by_kind,
            span: builder.span,
            summary,
            segments: plan.live,
        })
    })
}

// ---------------------------------------------------------------------------------------------
// History of one node

/// One event about a node, with where it was found and what it changed.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The record.
    pub record: Record,
    /// The segment file it was read from.
    pub file: PathBuf,
    /// Offset of its frame in that file.
    pub offset: u64,
    /// Read from `archive/`.
    pub archived: bool,
    /// Read from a compacted segment: a restatement of older events whose originals are gone,
    /// written at the time of the original event.
    pub compacted: bool,
    /// What it changed, in words: `record created 10.0.0.1 udp 30303 tcp 30303`,
    /// `fails 0 -> 2`, ...
    pub change: String,
}

impl HistoryEntry {
    /// The stable `history --json` object.
    pub fn to_json(&self) -> Value {
        let mut row = export_json(&self.record);
        let extra = json!({
            "change": self.change,
            "file": self.file.display().to_string(),
            "offset": self.offset,
            "archived": self.archived,
            "compacted": self.compacted,
        });
        if let (Value::Object(row), Value::Object(extra)) = (&mut row, extra) {
            row.extend(extra);
        }
        row
    }
}

struct Source {
    segment: SegmentFile,
    archived: bool,
}

/// Which segments tell the history: every ordinary segment (live, superseded or archived) of
/// the current generation, and a compacted segment only where no ordinary segment covers its
/// range (otherwise its records are restatements of events already listed).
fn history_sources(live: Vec<SegmentFile>, archived: Vec<SegmentFile>) -> Vec<Source> {
    let Some(salt) = live
        .iter()
        .max_by_key(|s| s.header.segment_id)
        .map(|s| s.header.salt)
    else {
        return Vec::new();
    };
    let all: Vec<Source> = live
        .into_iter()
        .map(|segment| Source {
            segment,
            archived: false,
        })
        .chain(archived.into_iter().map(|segment| Source {
            segment,
            archived: true,
        }))
        .filter(|s| s.segment.header.salt == salt)
        .collect();
    let raw_from = all
        .iter()
        .filter(|s| !s.segment.header.is_compacted())
        .map(|s| s.segment.header.first_seq)
        .min()
        .unwrap_or(u64::MAX);
    all.into_iter()
        .filter(|s| {
            !s.segment.header.is_compacted() || s.segment.header.replaces_through < raw_from
        })
        .collect()
}

/// Every event about `id`, oldest first, from the live segments and `archive/`.
pub fn history(
    dir: &Path,
    id: &NodeId,
    progress: Progress<'_>,
) -> Result<Vec<HistoryEntry>, AuditError> {
    with_listing(dir, |live| {
        let sources = history_sources(live, archived_segments(dir)?);
        let total: u64 = sources.iter().map(|s| s.segment.len).sum();
        let mut done = 0;
        let mut entries = Vec::new();
        for source in &sources {
            scan_segment(&source.segment, |offset, record| {
                if record.event.id() == id {
                    entries.push(HistoryEntry {
                        record,
                        file: source.segment.path.clone(),
                        offset,
                        archived: source.archived,
                        compacted: source.segment.header.is_compacted(),
                        change: String::new(),
                    });
                }
            })?;
            done += source.segment.len;
            progress(done, total);
        }
        entries.sort_by_key(|e| (e.record.seq, e.compacted));
        entries.dedup_by_key(|e| (e.record.seq, e.compacted));
        describe_changes(&mut entries);
        Ok(entries)
    })
}

fn endpoint(node: &Node) -> String {
    format!("{} udp {} tcp {}", node.ip, node.udp, node.tcp)
}

fn describe_changes(entries: &mut [HistoryEntry]) {
    let mut state: Option<PeerState> = None;
    for entry in entries {
        let record = &entry.record;
        let before = state.clone();
        entry.change = describe(before.as_ref(), &record.event);
        match &record.event {
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => state = None,
            event => state
                .get_or_insert_with(|| PeerState::new(*event.id(), record.written_at))
                .apply(event, record.written_at),
        }
    }
}

fn describe(before: Option<&PeerState>, event: &Event) -> String {
    let old_node = before.and_then(|s| s.node.as_ref());
    match event {
        Event::NodeUpdated(node) => match old_node {
            None => format!("record created: {}", endpoint(node)),
            Some(old) if old == node => format!("record rewritten: {}", endpoint(node)),
            Some(old) => format!("endpoint {} -> {}", endpoint(old), endpoint(node)),
        },
        Event::Ping { at, .. } => format!("ping sent at {}", iso8601(*at)),
        Event::Pong { at, .. } => format!("pong received at {}", iso8601(*at)),
        Event::FindFails { fails, .. } => {
            format!(
                "findnode fails {} -> {fails}",
                before.map_or(0, |s| s.fails)
            )
        }
        Event::NodeDeleted { .. } => "deleted: record, ping, pong and fails dropped".into(),
        Event::NodeExpired { .. } => "expired: record, ping, pong and fails dropped".into(),
    }
}

// ---------------------------------------------------------------------------------------------
// Verification

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
    fn new(kind: &'static str, path: &Path, offset: u64, len: u64, detail: &str) -> Finding {
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
        write!(
            f,
            "{} at offset {}: {} ({} bytes)",
            self.path.display(),
            self.offset,
            self.detail,
            self.len
        )?;
        if let Some((first, last)) = self.lost {
            write!(f, "; lost sequence numbers {first}..={last}")?;
        }
        Ok(())
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

// ---------------------------------------------------------------------------------------------
// Statistics

/// What `stats` reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Nodes with a record.
    pub nodes: usize,
    /// Of those, with an IPv6 endpoint.
    pub ipv6_nodes: usize,
    /// Ids with any data (a record, a ping, a pong or fails).
    pub ids: usize,
    /// Records in the live log, by event kind (every kind present, 0 included).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Records in the live log.
    pub records: u64,
    /// Bytes of those records; `live_bytes` of them would survive a compaction.
    pub record_bytes: u64,
    /// Bytes a compaction would keep.
    pub live_bytes: u64,
    /// Bytes a compaction would free (`record_bytes - live_bytes`).
    pub dead_bytes: u64,
    /// Live segment files.
    pub segments: usize,
    /// Their size on disk (preallocated space included).
    pub segment_file_bytes: u64,
    /// Segment files in `archive/`.
    pub archived_segments: usize,
    /// Their size on disk.
    pub archived_bytes: u64,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// Nodes `query_seeds` could offer now: with a record, not `self_id`, pong within `seed_age`.
    pub seeds: usize,
    /// The age limit used for `seeds`.
    pub seed_age: Duration,
    /// Places where the live log is not intact (torn tail included).
    pub problems: usize,
}

impl Stats {
    /// The stable `stats --json` object.
    pub fn to_json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "ipv6_nodes": self.ipv6_nodes,
            "ids": self.ids,
            "records": self.records,
            "events": self.events_by_kind,
            "record_bytes": self.record_bytes,
            "live_bytes": self.live_bytes,
            "dead_bytes": self.dead_bytes,
            "segments": self.segments,
            "segment_file_bytes": self.segment_file_bytes,
            "archived_segments": self.archived_segments,
            "archived_bytes": self.archived_bytes,
            "first_write": opt_time(self.span.map(|s| s.0)),
            "last_write": opt_time(self.span.map(|s| s.1)),
            "seeds": self.seeds,
            "seed_age_secs": self.seed_age.as_secs(),
            "problems": self.problems,
        })
    }
}

/// Statistics of the database in `dir`, with seeds counted as `query_seeds(_, seed_age)`
/// of a node with id `self_id` would see them now.
pub fn stats(
    dir: &Path,
    self_id: &NodeId,
    seed_age: Duration,
    progress: Progress<'_>,
) -> Result<Stats, AuditError> {
    let state = load_state(dir, progress)?;
    let archived = archived_segments(dir)?;
    let min_pong = SystemTime::now()
        .checked_sub(seed_age)
        .unwrap_or(UNIX_EPOCH);
    let with_record = || state.peers.iter().filter(|p| p.node.is_some());
    let live_bytes: u64 = state.peers.iter().map(PeerState::live_bytes).sum();
    let mut events_by_kind: BTreeMap<&'static str, u64> =
        ["node", "ping", "pong", "fails", "delete", "expire"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
    events_by_kind.extend(state.events_by_kind.iter().map(|(k, v)| (*k, *v)));
    Ok(Stats {
        nodes: with_record().count(),
        ipv6_nodes: with_record()
            .filter(|p| p.node.as_ref().is_some_and(|n| n.ip.is_ipv6()))
            .count(),
        ids: state.peers.len(),
        events_by_kind,
        records: state.summary.records,
        record_bytes: state.summary.record_bytes,
        live_bytes,
        dead_bytes: state.summary.record_bytes.saturating_sub(live_bytes),
        segments: state.segments.len(),
        segment_file_bytes: state.segments.iter().map(|s| s.len).sum(),
        archived_segments: archived.len(),
        archived_bytes: archived.iter().map(|s| s.len).sum(),
        span: state.span,
        seeds: with_record()
            .filter(|p| p.id != *self_id && p.last_pong.is_some_and(|t| t >= min_pong))
            .count(),
        seed_age,
        problems: state.summary.problems.len(),
    })
}

// ---------------------------------------------------------------------------------------------
// Export

/// Column names of the CSV export, in order; also the keys of the JSON lines.
pub const EXPORT_COLUMNS: [&str; 9] = [
    "seq",
    "written_at",
    "kind",
    "id",
    "ip",
    "udp",
    "tcp",
    "at",
    "fails",
];

/// The fields of one exported event, as strings (empty when the kind has no such field).
fn export_fields(record: &Record) -> [String; 9] {
    let (mut ip, mut udp, mut tcp, mut at, mut fails) = Default::default();
    match &record.event {
        Event::NodeUpdated(node) => {
            (ip, udp, tcp) = (
                node.ip.to_string(),
                node.udp.to_string(),
                node.tcp.to_string(),
            )
        }
        Event::Ping { at: t, .. } | Event::Pong { at: t, .. } => at = iso8601_precise(*t),
        Event::FindFails { fails: n, .. } => fails = n.to_string(),
        Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {}
    }
    [
        record.seq.to_string(),
        iso8601_precise(record.written_at),
        record.event.kind_name().to_string(),
        record.event.id().to_string(),
        ip,
        udp,
        tcp,
        at,
        fails,
    ]
}

/// One exported event as a JSON object: every column of [`EXPORT_COLUMNS`], `null` where the
/// kind has no such field, numbers as numbers.
pub fn export_json(record: &Record) -> Value {
    let fields = export_fields(record);
    let object = EXPORT_COLUMNS
        .iter()
        .zip(fields)
        .map(|(&key, value)| {
            let value = match key {
                _ if value.is_empty() => Value::Null,
                "seq" | "udp" | "tcp" | "fails" => {
                    value.parse::<u64>().map_or(Value::Null, Value::from)
                }
                _ => Value::String(value),
            };
            (key.to_string(), value)
        })
        .collect();
    Value::Object(object)
}

/// One exported event as a CSV line (no newline). No field can hold a comma or quote.
pub fn export_csv(record: &Record) -> String {
    export_fields(record).join(",")
}

/// Every record of the live log of `dir`, in log order.
///
/// The records are collected before they are returned: a read that has to start over (a
/// segment removed by a concurrent compaction) must not have emitted half a log already.
pub fn export(dir: &Path, progress: Progress<'_>) -> Result<Vec<Record>, AuditError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut records = Vec::new();
        replay_with_progress(&plan, progress, |_, _, record| records.push(record))?;
        Ok(records)
    })
}

// ---------------------------------------------------------------------------------------------
// Maintenance: compact and expire

/// How `compact` and `expire` open a database.
#[derive(Clone, Debug, Default)]
pub struct Maintenance {
    /// Protocol version to open with; `None` takes the one in the segment headers. A version
    /// that differs from the headers is refused (opening with it would wipe the database).
    pub protocol_version: Option<u64>,
    /// The local node's id (its own record is dropped by expiration).
    pub self_id: Option<NodeId>,
    /// Options to open with (expiration, keep_history, ...).
    pub options: Options,
}

/// What `compact` or `expire` did.
#[derive(Clone, Debug, Default)]
pub struct MaintenanceReport {
    /// Nodes with a record before.
    pub nodes_before: usize,
    /// Nodes with a record after.
    pub nodes_after: usize,
    /// Node records dropped by expiration.
    pub nodes_expired: usize,
    /// What compaction did (`None` for `expire`).
    pub compaction: Option<crate::CompactStats>,
    /// Segment files before and after.
    pub segments: (usize, usize),
}

impl MaintenanceReport {
    /// The stable `compact --json` / `expire --json` object.
    pub fn to_json(&self) -> Value {
        let mut out = json!({
            "nodes_before": self.nodes_before,
            "nodes_after": self.nodes_after,
            "nodes_expired": self.nodes_expired,
            "segments_before": self.segments.0,
            "segments_after": self.segments.1,
        });
        if let (Some(c), Value::Object(map)) = (&self.compaction, &mut out) {
            map.extend([
                ("segments_read".to_string(), json!(c.segments_read)),
                ("records_read".to_string(), json!(c.records_read)),
                ("bytes_read".to_string(), json!(c.bytes_read)),
                ("records_written".to_string(), json!(c.records_written)),
                ("bytes_written".to_string(), json!(c.bytes_written)),
            ]);
        }
        out
    }
}

fn count_segments(dir: &Path) -> Result<usize, Error> {
    Ok(list_dir(dir)?.segments.len())
}

/// Opens `dir` for writing with the protocol version its headers carry, refusing a directory
/// without a database (opening would create one) or a version that would wipe it.
fn open_existing(dir: &Path, how: &Maintenance) -> Result<NodeDb, AuditError> {
    check_dir(dir)?;
    let listing = list_dir(dir)?;
    let newest = listing
        .segments
        .iter()
        .max_by_key(|s| s.header.segment_id)
        .ok_or_else(|| AuditError::NoDatabase(dir.to_path_buf()))?;
    let found = newest.header.protocol_version;
    let version = how.protocol_version.unwrap_or(found);
    // Any header with another version makes open wipe everything: refuse that too.
    if let Some(other) = listing
        .segments
        .iter()
        .map(|s| s.header.protocol_version)
        .find(|&v| v != version)
    {
        return Err(AuditError::VersionMismatch {
            found: other,
            given: version,
        });
    }
    let self_id = how.self_id.unwrap_or(NodeId([0; NODE_ID_LEN]));
    Ok(NodeDb::open_with(
        dir,
        version,
        self_id,
        how.options.clone(),
    )?)
}

/// Takes the lock of `dir`, compacts its log (dropping expired nodes first) and closes it.
pub fn compact(dir: &Path, how: &Maintenance) -> Result<MaintenanceReport, AuditError> {
    let db = open_existing(dir, how)?;
    let before = (db.len(), count_segments(dir)?);
    let stats = db.compact()?;
    let nodes_after = db.len();
    db.close()?;
    Ok(MaintenanceReport {
        nodes_before: before.0,
        nodes_after,
        nodes_expired: stats.nodes_expired,
        compaction: Some(stats),
        segments: (before.1, count_segments(dir)?),
    })
}

/// Takes the lock of `dir`, drops expired nodes and closes it.
pub fn expire(dir: &Path, how: &Maintenance) -> Result<MaintenanceReport, AuditError> {
    let db = open_existing(dir, how)?;
    let before = (db.len(), count_segments(dir)?);
    let nodes_expired = db.expire_nodes()?;
    let nodes_after = db.len();
    db.close()?;
    Ok(MaintenanceReport {
        nodes_before: before.0,
        nodes_after,
        nodes_expired,
        compaction: None,
        segments: (before.1, count_segments(dir)?),
    })
}

// ---------------------------------------------------------------------------------------------
// Demo database

/// What to put into a demo database.
#[derive(Clone, Debug)]
pub struct DemoSpec {
    /// Nodes to discover.
    pub nodes: u64,
    /// Days of simulated history, ending now.
    pub days: u64,
    /// Seed of the random generator: the same seed gives the same nodes and times.
    pub seed: u64,
    /// Protocol version of the database.
    pub protocol_version: u64,
    /// The local node's id.
    pub self_id: NodeId,
}

/// What the demo wrote.
#[derive(Clone, Debug, Default)]
pub struct DemoReport {
    /// Events written, by kind.
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Nodes with a record at the end.
    pub nodes: usize,
}

struct DemoWriter<'a> {
    db: &'a NodeDb,
    rng: StdRng,
    now: SystemTime,
    counts: BTreeMap<&'static str, u64>,
}

impl DemoWriter<'_> {
    fn write(&mut self, event: Event) -> Result<(), Error> {
        *self.counts.entry(event.kind_name()).or_default() += 1;
        match event {
            Event::NodeUpdated(node) => self.db.update_node(&node),
            Event::Ping { id, at } => self.db.update_last_ping(&id, at),
            Event::Pong { id, at } => self.db.update_last_pong(&id, at),
            Event::FindFails { id, fails } => self.db.update_find_fails(&id, fails),
            Event::NodeDeleted { id } | Event::NodeExpired { id } => self.db.delete_node(&id),
        }
    }

    /// A plausible endpoint: mostly IPv4, a quarter IPv6, mostly the default port.
    fn endpoint(&mut self, id: NodeId) -> Node {
        let rng = &mut self.rng;
        let ip = if rng.gen_bool(0.75) {
            IpAddr::V4(Ipv4Addr::new(
                rng.gen_range(1..224),
                rng.gen(),
                rng.gen(),
                rng.gen_range(1..255),
            ))
        } else {
            let [a, b, c, d]: [u16; 4] = rng.gen();
            IpAddr::V6(Ipv6Addr::new(
                0x2001,
                0x0db8 + rng.gen_range(0..8),
                a,
                b,
                c,
                d,
                0,
                rng.gen_range(1..0xffff),
            ))
        };
        let tcp = if rng.gen_bool(0.8) {
            30303
        } else {
            rng.gen_range(30300..30400)
        };
        let udp = if rng.gen_bool(0.9) {
            tcp
        } else {
            rng.gen_range(30300..30400)
        };
        Node::new(id, ip, udp, tcp)
    }

    /// One node's life: discovered at a random moment, then rounds of ping and pong (or a
    /// failed findnode) hours apart, maybe a new endpoint, maybe a delete.
    fn node_life(&mut self, start: SystemTime, span: Duration) -> Result<(), Error> {
        let id = NodeId(std::array::from_fn(|_| self.rng.gen()));
        let mut t = start + span.mul_f64(self.rng.gen::<f64>() * 0.9);
        let node = self.endpoint(id);
        self.write(Event::NodeUpdated(node))?;
        let (rounds, mut fails) = (self.rng.gen_range(1..=6), 0u32);
        for _ in 0..rounds {
            t += Duration::from_secs(self.rng.gen_range(600..18 * 3600));
            if t > self.now {
                break;
            }
            self.write(Event::Ping { id, at: t })?;
            if self.rng.gen_bool(0.8) {
                let pong_at = t + Duration::from_millis(self.rng.gen_range(20..900));
                self.write(Event::Pong { id, at: pong_at })?;
                if fails != 0 {
                    fails = 0;
                    self.write(Event::FindFails { id, fails })?;
                }
            } else {
                fails += 1;
                self.write(Event::FindFails { id, fails })?;
            }
            if self.rng.gen_bool(0.04) {
                let node = self.endpoint(id);
                self.write(Event::NodeUpdated(node))?;
            }
        }
        if self.rng.gen_bool(0.03) {
            self.write(Event::NodeDeleted { id })?;
        }
        Ok(())
    }
}

/// Creates a demo database in `dir`, which must not exist or be empty. Ping and pong times
/// carry the simulated days; the write time of each event is the real clock (the library
/// stamps it).
pub fn demo(dir: &Path, spec: &DemoSpec, progress: Progress<'_>) -> Result<DemoReport, AuditError> {
    if let Ok(mut entries) = fs::read_dir(dir) {
        if entries.next().is_some() {
            return Err(AuditError::NotEmpty(dir.to_path_buf()));
        }
    }
    let options = Options {
        // Keep the demo's history whole: no background compaction while it is written.
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = NodeDb::open_with(dir, spec.protocol_version, spec.self_id, options)?;
    let now = SystemTime::now();
    let span = Duration::from_secs(spec.days.max(1) * 86_400);
    let start = now.checked_sub(span).unwrap_or(UNIX_EPOCH);
    let mut writer = DemoWriter {
        db: &db,
        rng: StdRng::seed_from_u64(spec.seed),
        now,
        counts: BTreeMap::new(),
    };
    for n in 0..spec.nodes {
        writer.node_life(start, span)?;
        if n % 4096 == 0 {
            progress(n, spec.nodes);
        }
    }
    progress(spec.nodes, spec.nodes);
    let report = DemoReport {
        events_by_kind: writer.counts,
        nodes: db.len(),
    };
    db.close()?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso8601_matches_known_dates() {
        let at = |secs: i64, nanos: u32| {
            let d = Duration::new(secs.unsigned_abs(), 0);
            let t = if secs >= 0 {
                UNIX_EPOCH + d
            } else {
                UNIX_EPOCH - d
            };
            t + Duration::from_nanos(nanos.into())
        };
        assert_eq!(iso8601(at(0, 0)), "1970-01-01T00:00:00Z");
        assert_eq!(iso8601(at(951_782_400, 0)), "2000-02-29T00:00:00Z");
        assert_eq!(iso8601(at(1_714_566_645, 5)), "2024-05-01T12:30:45Z");
        assert_eq!(
            iso8601_precise(at(1_714_566_645, 5)),
            "2024-05-01T12:30:45.000000005Z"
        );
        assert_eq!(iso8601(at(-1, 0)), "1969-12-31T23:59:59Z");
        assert_eq!(
            iso8601_precise(at(-1, 500_000_000)),
            "1969-12-31T23:59:59.500000000Z"
        );
        assert_eq!(iso8601(at(-9_223_372_036, 0)), "1677-09-21T00:12:44Z");
    }

    #[test]
    fn node_argument_accepts_hex_and_enode_and_rejects_garbage() {
        let hex = "ab".repeat(64);
        let id: NodeId = hex.parse().unwrap();
        assert_eq!(parse_node_arg(&hex).unwrap(), id);
        assert_eq!(parse_node_arg(&format!("0x{hex}")).unwrap(), id);
        let url = format!("enode://{hex}@10.0.0.1:30303");
        assert_eq!(parse_node_arg(&url).unwrap(), id);
        assert!(parse_node_arg("abc").is_err());
        assert!(parse_node_arg("enode://zz@1.2.3.4:1").is_err());
    }
}
