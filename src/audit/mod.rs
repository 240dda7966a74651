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

mod demo;
mod export;
mod history;
mod maintain;
mod state;
mod stats;
mod time;
mod verify;

pub use demo::*;
pub use export::*;
pub use history::*;
pub use maintain::*;
pub use state::*;
pub use stats::*;
pub use time::*;
pub use verify::*;

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
