//! The segment directory, and the only code that changes it: file names, listing, creating
//! and publishing files atomically, retiring replaced segments, wiping.
//!
//! Every file that appears under a final name is published the same way (written and synced
//! under a temporary name, renamed, the directory synced), and every removal or rename is
//! followed by a sync of its directory, so the crash-ordering rules live here once.

use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use fs4::fs_std::FileExt;

use crate::error::IoContext;
use crate::faults::FailPoints;
use crate::journal::format::{
    HeaderError, SegmentHeader, FORMAT_VERSION, HEADER_LEN, MAX_FRAME_LEN,
};
use crate::Error;

/// Name of the lock file in a database directory.
pub const LOCK_FILE: &str = "LOCK";
/// Folder that receives replaced segments when history is kept.
pub const ARCHIVE_DIR: &str = "archive";
/// Extension of segment files.
pub const SEGMENT_EXT: &str = "seg";
/// Extension of files being written (removed as leftovers when a writer opens the directory).
pub const TEMP_EXT: &str = "tmp";
/// A segment file grows by this much at a time, ahead of the stores into it: few `fallocate`
/// calls, and a short zero tail for readers to skip.
pub(crate) const PREALLOCATION_STEP: u64 = 1 << 20;

/// The file name of segment `id`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:016}.{SEGMENT_EXT}")
}

/// The segment id a file name carries, if it is named like a segment.
fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(&format!(".{SEGMENT_EXT}"))?;
    (stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// The temporary name a file is written under before it is published as `path`.
fn temp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(format!(".{TEMP_EXT}"));
    path.with_file_name(name)
}

/// A segment file and its header.
#[derive(Clone, Debug)]
pub struct SegmentFile {
    /// Where it is.
    pub path: PathBuf,
    /// Its checked header.
    pub header: SegmentHeader,
    /// Its length in bytes when listed.
    pub len: u64,
    /// The number in its file name (normally equal to `header.segment_id`).
    pub file_id: u64,
}

/// A file named like a segment whose header cannot be read as peerlog's.
#[derive(Debug)]
pub struct UnreadableSegment {
    /// The file.
    pub path: PathBuf,
    /// Its length in bytes.
    pub len: u64,
    /// Why its header was refused ([`Error::Corrupt`] or [`Error::NotADatabase`]).
    pub error: Error,
}

/// What a database directory holds.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Every segment file with a valid header, in no particular order.
    pub segments: Vec<SegmentFile>,
    /// Files left over by an interrupted write (`*.tmp`).
    pub leftovers: Vec<PathBuf>,
    /// Segment files whose header is damaged or foreign (only in a tolerant listing).
    pub unreadable: Vec<UnreadableSegment>,
}

/// How [`list_dir`] treats a segment file whose header cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Fail the listing: what opening a database and replaying it need.
    Strict,
    /// List it in [`DirListing::unreadable`] and go on, and skip files that vanish while they
    /// are listed: what `verify` needs to report every file.
    Tolerant,
}

/// Lists a database directory, checking that every file in it is peerlog's. Changes nothing.
pub fn list_dir(dir: &Path, mode: Listing) -> Result<DirListing, Error> {
    let mut listing = DirListing::default();
    let mut names: Vec<_> = fs::read_dir(dir)
        .at(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .at(dir)?;
    names.sort();
    for name in names {
        let path = dir.join(&name);
        let foreign = |reason: &str| Error::NotADatabase {
            dir: dir.to_path_buf(),
            file: path.clone(),
            reason: reason.to_string(),
        };
        let Some(name) = name.to_str() else {
            return Err(foreign("file name is not UTF-8"));
        };
        if name == LOCK_FILE || (name == ARCHIVE_DIR && path.is_dir()) {
            continue;
        }
        // A segment being written: judged by name alone, since a live writer may rename it
        // into place at any moment. Other `.tmp` files are not ours.
        let temp_of_segment = name
            .strip_suffix(&format!(".{TEMP_EXT}"))
            .and_then(parse_segment_name);
        if temp_of_segment.is_some() {
            listing.leftovers.push(path);
            continue;
        }
        let Some(id) = parse_segment_name(name) else {
            return Err(foreign("unexpected file name"));
        };
        // A header naming another segment (a copied file) is not refused: its records are
        // accounted for by sequence number like any others.
        // A segment removed since the directory was read (by a live writer's compaction) fails
        // here with NotFound: the caller lists again rather than replay an incomplete log.
        match (read_segment_header(&path), mode) {
            (Ok(mut segment), _) => {
                segment.file_id = id;
                listing.segments.push(segment);
            }
            (Err(e), Listing::Tolerant) if is_not_found(&e) => {}
            (
                Err(error @ (Error::Corrupt { .. } | Error::NotADatabase { .. })),
                Listing::Tolerant,
            ) => {
                let len = fs::metadata(&path).map_or(0, |m| m.len());
                listing
                    .unreadable
                    .push(UnreadableSegment { path, len, error });
            }
            (Err(e), _) => return Err(e),
        }
    }
    Ok(listing)
}

/// Whether `e` says a file does not exist (any more).
pub(crate) fn is_not_found(e: &Error) -> bool {
    matches!(e, Error::Io { source, .. } if source.kind() == ErrorKind::NotFound)
}

/// Reads and checks the header of one segment file.
pub fn read_segment_header(path: &Path) -> Result<SegmentFile, Error> {
    let mut file = File::open(path).at(path)?;
    let len = file.metadata().at(path)?.len();
    let mut bytes = Vec::with_capacity(HEADER_LEN);
    Read::by_ref(&mut file)
        .take(HEADER_LEN as u64)
        .read_to_end(&mut bytes)
        .at(path)?;
    match SegmentHeader::decode(&bytes) {
        Ok(header) => Ok(SegmentFile {
            path: path.to_path_buf(),
            header,
            len,
            file_id: header.segment_id,
        }),
        Err(HeaderError::NotPeerlog) => Err(Error::NotADatabase {
            dir: path.parent().unwrap_or(Path::new("")).to_path_buf(),
            file: path.to_path_buf(),
            reason: "does not start with peerlog's magic number".into(),
        }),
        Err(HeaderError::NewerFormat(format)) => Err(Error::NewerFormat {
            path: path.to_path_buf(),
            format,
            supported: FORMAT_VERSION,
        }),
        Err(HeaderError::Damaged(reason)) => Err(Error::Corrupt {
            path: path.to_path_buf(),
            offset: 0,
            reason,
        }),
    }
}

/// Opens or creates files readable by the owner only.
pub(crate) fn private_file() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(0o600);
    options
}

/// Creates `dir` (and its parents) readable by the owner only, if it does not exist.
pub(crate) fn create_private_dir(dir: &Path) -> Result<(), Error> {
    DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .at(dir)
}

/// Makes a rename or delete in `dir` durable.
pub(crate) fn sync_dir(dir: &Path) -> Result<(), Error> {
    File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

/// Publishes a new file at `path` so that the name never points at a partial file: `write`
/// fills it under a temporary name, then it is synced, renamed into place and the directory
/// synced. Fail points `<step>.fsync`, `<step>.rename` and `<step>.dirsync` stop it before
/// each of those. On a failure before the rename the temporary file is removed.
pub(crate) fn publish<T>(
    path: &Path,
    step: &str,
    faults: &FailPoints,
    write: impl FnOnce(&mut File, &Path) -> Result<T, Error>,
) -> Result<T, Error> {
    let temp = temp_path(path);
    let written = (|| {
        let mut file = private_file()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&temp)
            .at(&temp)?;
        let value = write(&mut file, &temp)?;
        faults.check(&format!("{step}.fsync")).at(&temp)?;
        file.sync_all().at(&temp)?;
        faults.check(&format!("{step}.rename")).at(&temp)?;
        fs::rename(&temp, path).at(path)?;
        Ok(value)
    })();
    if written.is_err() {
        let _ = fs::remove_file(&temp);
    }
    let value = written?;
    let dir = path.parent().unwrap_or(Path::new("."));
    faults.check(&format!("{step}.dirsync")).at(dir)?;
    sync_dir(dir)?;
    Ok(value)
}

/// Creates a durable segment file holding `header`, its first `size` bytes (at most one
/// preallocation step) allocated so that stores through a map of them cannot hit a full disk.
pub(crate) fn create_segment(
    dir: &Path,
    header: &SegmentHeader,
    size: u64,
    faults: &FailPoints,
) -> Result<PathBuf, Error> {
    let path = dir.join(segment_file_name(header.segment_id));
    publish(&path, "segment", faults, |file, temp| {
        faults.check("segment.write").at(temp)?;
        file.write_all(&header.encode()).at(temp)?;
        let first_step = size.min(PREALLOCATION_STEP);
        file.allocate(first_step.max((HEADER_LEN + MAX_FRAME_LEN) as u64))
            .at(temp)
    })?;
    Ok(path)
}

/// Removes files left by an interrupted write.
pub(crate) fn remove_leftovers(dir: &Path, leftovers: &[PathBuf]) -> Result<(), Error> {
    if leftovers.is_empty() {
        return Ok(());
    }
    for leftover in leftovers {
        fs::remove_file(leftover).at(leftover)?;
    }
    sync_dir(dir)
}

/// Removes replaced segments, or moves them into `archive/` where `archive` says so, then
/// syncs the directory. Fail point `compact.remove` stops it before each file.
pub(crate) fn retire_segments<'a>(
    dir: &Path,
    segments: impl IntoIterator<Item = (&'a Path, bool)>,
    faults: &FailPoints,
) -> Result<(), Error> {
    for (path, archive) in segments {
        faults.check("compact.remove").at(path)?;
        if archive {
            let archive = dir.join(ARCHIVE_DIR);
            create_private_dir(&archive)?;
            let target = archive.join(path.file_name().expect("segment paths have a file name"));
            fs::rename(path, &target).at(&target)?;
            sync_dir(&archive)?;
        } else {
            fs::remove_file(path).at(path)?;
        }
    }
    sync_dir(dir)
}

/// Removes every segment and the archive: the directory then holds a new, empty database.
pub(crate) fn wipe(dir: &Path, segments: &[SegmentFile]) -> Result<(), Error> {
    for segment in segments {
        fs::remove_file(&segment.path).at(&segment.path)?;
    }
    let archive = dir.join(ARCHIVE_DIR);
    if archive.exists() {
        fs::remove_dir_all(&archive).at(&archive)?;
    }
    sync_dir(dir)
}
