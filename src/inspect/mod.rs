//! Reading a database without opening it for writing: its state, a verification of every
//! file and record, the history of one node, statistics and every event in order.
//!
//! For tools and operators (the `peerlog` command is a thin layer over this module). Every
//! function here but [`salvage`] works on a directory without taking its lock and without
//! creating, changing or removing anything, so it can run while a
//! [`NodeDb`](crate::NodeDb) in another process appends to (or compacts) the same directory. It sees a consistent prefix of the log:
//! records are accepted only when their checksum matches, a frame being written at that
//! moment reads as a torn tail, and a segment that a concurrent compaction removes between
//! listing and reading makes the whole read start over from a fresh listing. Files and
//! directories not named like peerlog's are ignored, as `NodeDb::open` ignores them.
//!
//! ```
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let dir = tempfile::tempdir()?;
//! use peerlog::inspect;
//! # let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
//! # db.close()?;
//! let report = inspect::verify(dir.path(), &inspect::no_progress)?;
//! assert!(report.is_intact(false));
//! # Ok(())
//! # }
//! ```

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};

use crate::journal::dir::{is_not_found, list_archive, list_dir, Listing, SegmentFile};
use crate::Error;

mod audit;
mod export;
mod history;
mod salvage;
mod state;
mod stats;
mod verify;

pub use crate::survey::FileRole;
pub use audit::{
    audit, Audit, AuditFinding, AuditOptions, Distances, FindingKind, NewIds, SubnetShare,
    AUDIT_SEEDS, CLOSE_MIN_IDS, CLOSE_RATIO, NEW_WINDOWS, STORE_FULL_SHARE, SUBNET_MIN_POPULATION,
    SUBNET_SHARE_LIMIT,
};
pub use export::{export, export_each, export_with_archive_each};
pub use history::{history, Change, HistoryEntry};
pub use salvage::{salvage, Lost, SalvageReport, SalvagedSegment};
pub use state::{state, with_peers, LiveState, Peers};
pub use stats::{stats, Stats};
pub use verify::{verify, FileReport, VerifyReport};

use crate::survey::{replay_with_progress, scan_segment, PROGRESS_EVERY};

/// How often in a row a read starts over, getting no further, after a segment vanished under
/// it (a concurrent compaction). Between attempts it waits [`RELIST_PAUSE`], doubled each
/// time, so that a reader beside a database that compacts back to back gets a quiet moment
/// (up to about a quarter of a second in all) before it gives up.
const RELIST_ATTEMPTS: u32 = 8;
/// The first wait before a read starts over.
const RELIST_PAUSE: std::time::Duration = std::time::Duration::from_millis(2);

/// Why reading a database failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InspectError {
    /// The directory does not exist.
    #[error("{0}: no such directory")]
    NoSuchDir(PathBuf),
    /// The path exists but is not a directory.
    #[error("{0}: not a directory")]
    NotADir(PathBuf),
    /// The directory holds no segment file.
    #[error("{0}: no peerlog database here (no segment files)")]
    NoDatabase(PathBuf),
    /// Reading failed, or a file is not peerlog's.
    #[error(transparent)]
    Db(#[from] Error),
}

/// Reports progress as (bytes scanned, bytes to scan).
pub type Progress<'a> = &'a dyn Fn(u64, u64);

/// A progress callback that shows nothing.
pub fn no_progress(_done: u64, _total: u64) {}

/// A segment file as `segments` lists it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SegmentInfo {
    /// The file.
    pub path: PathBuf,
    /// Its size in bytes (preallocated space included).
    pub size: u64,
    /// The segment's number (its header's).
    pub segment_id: u64,
    /// The protocol version the database was opened with.
    pub protocol_version: u64,
    /// Sequence number of its first record.
    pub first_seq: u64,
    /// Written by a compaction: it restates the live state of everything before it.
    pub compacted: bool,
}

impl SegmentInfo {
    fn new(segment: &SegmentFile) -> SegmentInfo {
        SegmentInfo {
            path: segment.path.clone(),
            size: segment.len,
            segment_id: segment.header.segment_id,
            protocol_version: segment.header.protocol_version,
            first_seq: segment.header.first_seq,
            compacted: segment.header.is_compacted(),
        }
    }
}

/// Every segment file of `dir` (not the archive), in name order. Fails on a file named like a
/// segment whose header is damaged ([`Error::DamagedHeader`]), as opening the database would.
pub fn segments(dir: &Path) -> Result<Vec<SegmentInfo>, InspectError> {
    check_dir(dir)?;
    let mut segments = list_dir(dir, Listing::Strict)?.segments;
    segments.sort_by_key(|s| s.file_id);
    Ok(segments.iter().map(SegmentInfo::new).collect())
}

/// The protocol version the database in `dir` was written with (its newest segment's), which
/// is the version to open it with to keep it rather than wipe it (see
/// [`Options::wipe_on_version_change`](crate::Options::wipe_on_version_change)). Takes no lock.
/// Fails with [`InspectError::NoSuchDir`], [`InspectError::NotADir`] or
/// [`InspectError::NoDatabase`] where there is no database to open, and on a damaged segment
/// header as [`segments`] does.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// use peerlog::{inspect, NodeDb, NodeId, Options};
/// let dir = tempfile::tempdir()?;
/// assert!(matches!(
///     inspect::protocol_version(dir.path()),
///     Err(inspect::InspectError::NoDatabase(_))
/// ));
/// NodeDb::open(dir.path(), 5, NodeId([1; 64]))?.close()?;
///
/// // A maintenance tool opens a node's database without knowing, or changing, its version.
/// let version = inspect::protocol_version(dir.path())?;
/// assert_eq!(version, 5);
/// let keep = Options { wipe_on_version_change: false, ..Options::default() };
/// let db = NodeDb::open_with(dir.path(), version, NodeId([1; 64]), keep)?;
/// db.close()?;
/// # Ok(())
/// # }
/// ```
pub fn protocol_version(dir: &Path) -> Result<u64, InspectError> {
    segments(dir)?
        .iter()
        .max_by_key(|s| s.segment_id)
        .map(|s| s.protocol_version)
        .ok_or_else(|| InspectError::NoDatabase(dir.to_path_buf()))
}

fn check_dir(dir: &Path) -> Result<(), InspectError> {
    match fs::metadata(dir) {
        Ok(meta) if meta.is_dir() => Ok(()),
        Ok(_) => Err(InspectError::NotADir(dir.to_path_buf())),
        Err(e) if e.kind() == ErrorKind::NotFound => {
            Err(InspectError::NoSuchDir(dir.to_path_buf()))
        }
        Err(source) => Err(Error::io(dir, source).into()),
    }
}

/// Whether a read failed only because the directory changed under it: a file vanished, as
/// the writer's compaction removes segments. (A `*.seg.tmp` renamed into place while it is
/// listed is judged by name, and a segment's header is whole before it gets its name, so
/// nothing else a writer does can fail a read.)
fn is_transient(e: &Error) -> bool {
    is_not_found(e)
}

/// Runs `read` until it does not fail with a transient error (a file vanished under it,
/// as compaction removes segments while we read); `read` must build its result from
/// scratch. `None` from `read` means there is no database.
fn retrying<T>(
    dir: &Path,
    read: impl FnMut() -> Result<Option<T>, Error>,
) -> Result<T, InspectError> {
    resuming(dir, read, || 0)
}

/// [`retrying`] for a read that resumes where the last attempt stopped rather than starting
/// from scratch: only attempts in a row that get no further than the one before (`reached`
/// does not grow) count against the limit, so that a long read beside a database that keeps
/// compacting still finishes.
fn resuming<T>(
    dir: &Path,
    mut read: impl FnMut() -> Result<Option<T>, Error>,
    reached: impl Fn() -> u64,
) -> Result<T, InspectError> {
    check_dir(dir)?;
    let mut attempt = 0;
    let mut before = reached();
    loop {
        attempt += 1;
        let result = read();
        if reached() > before {
            (attempt, before) = (1, reached());
        }
        match result {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => return Err(InspectError::NoDatabase(dir.to_path_buf())),
            Err(e) if is_transient(&e) && attempt < RELIST_ATTEMPTS => {
                std::thread::sleep(RELIST_PAUSE * 2u32.pow(attempt - 1));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

/// Runs `read` on a fresh listing of `dir`, starting over when a file vanished under it.
fn with_listing<T>(
    dir: &Path,
    mut read: impl FnMut(Vec<SegmentFile>) -> Result<T, Error>,
) -> Result<T, InspectError> {
    retrying(dir, || {
        let listing = list_dir(dir, Listing::Strict)?;
        if listing.segments.is_empty() {
            return Ok(None);
        }
        read(listing.segments).map(Some)
    })
}

/// The segments in `archive/` (kept by compaction with `keep_history`); none if there is no
/// archive.
fn archived_segments(dir: &Path) -> Result<Vec<SegmentFile>, Error> {
    Ok(list_archive(dir, Listing::Strict)?.segments)
}
