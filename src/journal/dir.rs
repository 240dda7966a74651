//! The segment directory, and the only code that changes it: file names, listing, creating
//! and publishing files atomically, retiring replaced segments, wiping.
//!
//! Every file that appears under a final name is published the same way (written and synced
//! under a temporary name, renamed, the directory synced), and every removal or rename is
//! followed by a sync of its directory, so the crash-ordering rules live here once.

use std::collections::HashSet;
use std::fs::{self, DirBuilder, File, OpenOptions};
use std::io::{self, ErrorKind, Read, Write};
use std::os::unix::fs::{DirBuilderExt, FileExt as _, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use fs4::fs_std::FileExt;

use crate::error::IoContext;
use crate::faults::FailPoints;
use crate::journal::format::{
    HeaderError, SegmentHeader, FORMAT_VERSION, HEADER_LEN, MAGIC, MAX_FRAME_LEN, MAX_SEGMENT_ID,
};
use crate::Error;

/// Name of the lock file in a database directory.
pub const LOCK_FILE: &str = "LOCK";
/// The index snapshot a database writes when it is closed: a derived file, which the log
/// layer only leaves alone (and removes with the log on a version reset).
pub const SNAPSHOT_FILE: &str = "index.snapshot";
/// The folder, inside a database directory, that receives the segments a compaction
/// replaced when history is kept ([`Options::keep_history`](crate::Options::keep_history)),
/// and always those that held damage. Its segments are never replayed on open;
/// [`inspect`](crate::inspect) reads them on request (`history`, `export_with_archive`), and
/// [`inspect::verify`](crate::inspect::verify) lists them.
///
/// ```
/// # fn main() -> Result<(), peerlog::Error> {
/// use peerlog::{NodeDb, NodeId, Options, ARCHIVE_DIR};
/// let dir = tempfile::tempdir().unwrap();
/// let opts = Options { keep_history: true, ..Options::default() };
/// let db = NodeDb::open_with(dir.path(), 5, NodeId([1; 64]), opts)?;
/// db.update_find_fails(&peerlog::NodeId([2; 64]), 1)?;
/// db.compact()?;
/// db.close()?;
/// let archived = std::fs::read_dir(dir.path().join(ARCHIVE_DIR)).unwrap().count();
/// assert_eq!(archived, 1);
/// # Ok(())
/// # }
/// ```
pub const ARCHIVE_DIR: &str = "archive";
/// Folder, beside the segments (in the database directory and in `archive/`), that
/// `inspect::salvage` moves unreadable segments into. Never read, never removed.
pub const DAMAGED_DIR: &str = "damaged";
/// Extension of segment files.
pub const SEGMENT_EXT: &str = "seg";
/// Extension of files being written (removed as leftovers when a writer opens the directory).
pub const TEMP_EXT: &str = "tmp";
/// A segment file grows by this much at a time, ahead of the stores into it: few `fallocate`
/// calls, and a short zero tail for readers to skip.
pub(crate) const PREALLOCATION_STEP: u64 = 1 << 20;
/// Zeros written per call where `fallocate` is unsupported (see [`preallocate`]).
const ZERO_CHUNK: usize = 64 << 10;

/// The file name of segment `id`.
pub fn segment_file_name(id: u64) -> String {
    format!("{id:016}.{SEGMENT_EXT}")
}

/// The segment id a file name carries, if it is named like a segment.
pub fn parse_segment_name(name: &str) -> Option<u64> {
    let stem = name.strip_suffix(&format!(".{SEGMENT_EXT}"))?;
    (stem.len() == 16 && stem.bytes().all(|b| b.is_ascii_digit()))
        .then(|| stem.parse().ok())
        .flatten()
}

/// The segment id the name of a file in `archive/` carries: a segment's name, or one with the
/// suffix (`.1`, `.2`, ...) that a compaction gives a segment whose name is taken there.
pub(crate) fn parse_archived_segment_name(name: &str) -> Option<u64> {
    parse_segment_name(name).or_else(|| {
        let (stem, n) = name.rsplit_once('.')?;
        let suffix = !n.is_empty() && n.len() <= 20 && n.bytes().all(|b| b.is_ascii_digit());
        suffix.then(|| parse_segment_name(stem)).flatten()
    })
}

/// `path` if nothing is there, otherwise the first of `path.1`, `path.2`, ... that is free.
pub(crate) fn free_name(path: &Path) -> PathBuf {
    let taken = |p: &Path| fs::symlink_metadata(p).is_ok();
    if !taken(path) {
        return path.to_path_buf();
    }
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    (1u64..)
        .map(|n| path.with_file_name(format!("{name}.{n}")))
        .find(|p| !taken(p))
        .unwrap_or_else(|| path.to_path_buf())
}

/// Moves the file `path` of `dir` into `dir/damaged/` (created if needed) under a name not
/// taken there (its own, else with a suffix `.1`, `.2`, ...), and makes the move durable;
/// returns where it went. Only `salvage`, under the lock, writes into `damaged/`, so a name
/// free now is free at the rename (which would replace a file of that name).
pub(crate) fn move_into_damaged(dir: &Path, path: &Path) -> Result<PathBuf, Error> {
    let damaged = dir.join(DAMAGED_DIR);
    if !damaged.is_dir() {
        create_private_dir(&damaged)?;
        // The new folder's own entry made durable before anything relies on it.
        sync_dir(dir)?;
    }
    let name = path
        .file_name()
        .unwrap_or_default()
        .to_string_lossy()
        .into_owned();
    let mut target = damaged.join(&name);
    let mut n = 0u64;
    loop {
        match fs::symlink_metadata(&target) {
            Err(e) if e.kind() == ErrorKind::NotFound => break,
            Err(e) => return Err(Error::io(&target, e)),
            Ok(_) => {
                n += 1;
                target = damaged.join(format!("{name}.{n}"));
            }
        }
    }
    fs::rename(path, &target).at(&target)?;
    sync_dir(&damaged)?;
    sync_dir(dir)?;
    Ok(target)
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
    /// Why its header was refused ([`Error::DamagedHeader`]).
    pub error: Error,
}

/// What a database directory holds.
#[derive(Debug, Default)]
pub struct DirListing {
    /// Every segment file with a valid header, in no particular order.
    pub segments: Vec<SegmentFile>,
    /// Files left over by an interrupted write (`*.seg.tmp`).
    pub leftovers: Vec<PathBuf>,
    /// Segment files whose header is damaged or foreign (only in a tolerant listing).
    pub unreadable: Vec<UnreadableSegment>,
    /// Files and directories not named like peerlog's, ignored (each logged as a warning),
    /// in name order.
    pub stray: Vec<PathBuf>,
}

/// How [`list_dir`] treats a segment file whose header cannot be read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Listing {
    /// Fail the listing: what opening a database and replaying it need.
    Strict,
    /// List it in [`DirListing::unreadable`] and go on, and skip files that vanish while they
    /// are listed: what `verify` and `salvage` need to see every file.
    Tolerant,
}

/// Logs `message`, a warning about the file at `path`, unless this process logged one about it
/// before: a node lists its directory at every open and compaction, and a file it ignores
/// stays there (`verify` lists them all every time).
fn warn_once(path: &Path, message: std::fmt::Arguments<'_>) {
    static WARNED: Mutex<Option<HashSet<PathBuf>>> = Mutex::new(None);
    let mut warned = WARNED.lock().unwrap_or_else(PoisonError::into_inner);
    if warned
        .get_or_insert_with(HashSet::new)
        .insert(path.to_path_buf())
    {
        ::log::warn!("{message}");
    }
}

/// Lists a database directory (or its `archive/`). Changes nothing.
///
/// The rule for what a database directory may hold (docs/FORMAT.md, "Files in a database
/// directory"), the same for the directory and its `archive/`: only names peerlog gives its
/// files are its files. Anything else, a file or a directory (`lost+found/` where the
/// database is a mount point, an operator's `notes.txt`), is left alone and logged as a
/// warning, so that it never locks anyone out of the database. A file named like a segment
/// is taken to be one: if its header cannot be read, a strict listing fails with
/// [`Error::DamagedHeader`] rather than guess what it held.
///
/// A directory with nothing of peerlog's in it (no segment, not even a damaged one or a
/// leftover) is no database: its files are not warned about, one by one (a command run on
/// the wrong directory says once that there is no database there).
pub fn list_dir(dir: &Path, mode: Listing) -> Result<DirListing, Error> {
    list_named(dir, mode, parse_segment_name, false)
}

/// [`list_dir`] for the `archive/` of the database in `dir` (kept by compaction with
/// `keep_history`), where a segment's name may carry a suffix (see
/// [`parse_archived_segment_name`]); nothing if there is no archive.
pub(crate) fn list_archive(dir: &Path, mode: Listing) -> Result<DirListing, Error> {
    let archive = dir.join(ARCHIVE_DIR);
    if !archive.is_dir() {
        return Ok(DirListing::default());
    }
    list_named(&archive, mode, parse_archived_segment_name, true)
}

/// Lists `dir`, taking the names `segment_name` reads as segments; warns about the files it
/// ignores if `always_warn`, or if the directory holds anything of peerlog's.
fn list_named(
    dir: &Path,
    mode: Listing,
    segment_name: fn(&str) -> Option<u64>,
    always_warn: bool,
) -> Result<DirListing, Error> {
    let mut listing = DirListing::default();
    let mut warnings: Vec<(PathBuf, String)> = Vec::new();
    let mut entries: Vec<_> = fs::read_dir(dir)
        .at(dir)?
        .map(|entry| entry.map(|e| e.file_name()))
        .collect::<Result<_, _>>()
        .at(dir)?;
    entries.sort();
    for name in entries {
        let path = dir.join(&name);
        let mut stray = || {
            let warning = format!(
                "{}: ignoring {}: not named like a peerlog file",
                dir.display(),
                name.to_string_lossy()
            );
            warnings.push((path.clone(), warning));
            listing.stray.push(path.clone());
        };
        let Some(name) = name.to_str() else {
            stray();
            continue;
        };
        if name == LOCK_FILE || name == SNAPSHOT_FILE {
            continue;
        }
        if name.strip_suffix(&format!(".{TEMP_EXT}")) == Some(SNAPSHOT_FILE) {
            // A snapshot whose writer stopped before renaming it into place.
            listing.leftovers.push(path);
            continue;
        }
        if name == ARCHIVE_DIR || name == DAMAGED_DIR {
            // Ours only as directories (followed if a symbolic link, as readers follow it).
            if !path.is_dir() {
                stray();
            }
            continue;
        }
        if left_by_file_system(name) {
            let warning = format!(
                "{}: ignoring {name}, a file the file system keeps for a deleted file still \
                 open",
                dir.display()
            );
            warnings.push((path, warning));
            continue;
        }
        // A segment being written: judged by name alone, since a live writer may rename it
        // into place at any moment.
        let temp_of_segment = name
            .strip_suffix(&format!(".{TEMP_EXT}"))
            .and_then(parse_segment_name);
        if temp_of_segment.is_some() {
            listing.leftovers.push(path);
            continue;
        }
        let Some(id) = segment_name(name) else {
            stray();
            continue;
        };
        // A header naming another segment (a copied file) is not refused: its records are
        // accounted for by sequence number like any others.
        // A segment removed since the directory was read (by a live writer's compaction) fails
        // here with NotFound: the caller lists again rather than replay an incomplete log.
        // (A directory of that name fails to read, with EISDIR: a read error, not damage.)
        // A number no writer gives (see MAX_SEGMENT_ID): damage like a bad header, since the
        // next segment would be numbered above it, under a name no listing reads.
        let header = match read_segment_header(&path) {
            Ok(_) if id > MAX_SEGMENT_ID => Err(Error::DamagedHeader {
                path: path.clone(),
                reason: format!(
                    "its number is above {MAX_SEGMENT_ID}, the largest a segment is given"
                ),
            }),
            header => header,
        };
        match (header, mode) {
            (Ok(mut segment), _) => {
                segment.file_id = id;
                listing.segments.push(segment);
            }
            (Err(e), Listing::Tolerant) if is_not_found(&e) => {}
            (Err(error @ Error::DamagedHeader { .. }), Listing::Tolerant) => {
                let len = fs::metadata(&path).map_or(0, |m| m.len());
                listing
                    .unreadable
                    .push(UnreadableSegment { path, len, error });
            }
            (Err(e), _) => return Err(e),
        }
    }
    let ours = !listing.segments.is_empty()
        || !listing.unreadable.is_empty()
        || !listing.leftovers.is_empty();
    if always_warn || ours {
        for (path, warning) in warnings {
            warn_once(&path, format_args!("{warning}"));
        }
    }
    Ok(listing)
}

/// Whether `name` is a file a file system keeps in place of a file deleted while still open:
/// libfuse's `.fuse_hidden*`, NFS's `.nfs<hex>`. A reader holding a segment that compaction
/// removes leaves one until it lets go, and after a power loss it stays: it is not foreign.
fn left_by_file_system(name: &str) -> bool {
    name.starts_with(".fuse_hidden")
        || name
            .strip_prefix(".nfs")
            .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b.is_ascii_hexdigit()))
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
        Err(HeaderError::NotPeerlog) => Err(Error::DamagedHeader {
            path: path.to_path_buf(),
            reason: match len {
                0 => "the file is empty".into(),
                1 => "the file is 1 byte, too short for peerlog's magic number".into(),
                n if n < MAGIC.len() as u64 => {
                    format!("the file is {n} bytes, too short for peerlog's magic number")
                }
                _ => "does not start with peerlog's magic number".into(),
            },
        }),
        Err(HeaderError::NewerFormat(format)) => Err(Error::NewerFormat {
            path: path.to_path_buf(),
            format,
            supported: FORMAT_VERSION,
        }),
        Err(HeaderError::Damaged(reason)) => Err(Error::DamagedHeader {
            path: path.to_path_buf(),
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
/// synced. Fail points `<step>.create`, `<step>.fsync`, `<step>.rename` and `<step>.dirsync`
/// stop it before each of those. On a failure before the rename the temporary file is removed.
pub(crate) fn publish<T>(
    path: &Path,
    step: &str,
    faults: &FailPoints,
    write: impl FnOnce(&mut File, &Path) -> Result<T, Error>,
) -> Result<T, Error> {
    let temp = temp_path(path);
    let written = (|| {
        faults.check(&format!("{step}.create")).at(&temp)?;
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

/// Checks that [`publish`] can create segment `id` in `dir` (a read-only directory cannot):
/// creates its temporary file, empty, and removes it. Fail point `<step>.create` stands for
/// the creation, as in `publish`. The caller must hold what keeps anyone else from creating
/// segment `id` meanwhile; a crash in between leaves a leftover that the next open removes.
pub(crate) fn check_can_create(
    dir: &Path,
    id: u64,
    step: &str,
    faults: &FailPoints,
) -> Result<(), Error> {
    let temp = temp_path(&dir.join(segment_file_name(id)));
    faults.check(&format!("{step}.create")).at(&temp)?;
    private_file()
        .write(true)
        .create_new(true)
        .open(&temp)
        .at(&temp)?;
    fs::remove_file(&temp).at(&temp)
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
        let len = first_step.max((HEADER_LEN + MAX_FRAME_LEN) as u64);
        preallocate(file, len, "segment.allocate", faults).at(temp)
    })?;
    Ok(path)
}

/// Makes `file` at least `len` bytes long with every byte allocated on disk, so that stores
/// through a shared map of it cannot hit a full disk (which would raise SIGBUS): `fallocate`,
/// or, where the file system does not implement it (many FUSE file systems, NFS v3, ZFS before
/// OpenZFS 2.2), zeros written over the bytes past the file's end, as glibc's
/// `posix_fallocate` emulation does. Bytes already in the file are never written (a segment
/// has no holes to fill: it is written from its start and grown only here), and each chunk of
/// zeros extends the file, so an interrupted fill leaves a shorter file, never a hole.
/// Both segment creation (step `segment.allocate`) and the writer's growth steps
/// (`log.allocate`) go through here. The fail point stands for the `fallocate` call: an error
/// it injects is taken as the system call's, so a test can report `Unsupported` and take the
/// slow path.
pub(crate) fn preallocate(
    file: &File,
    len: u64,
    step: &str,
    faults: &FailPoints,
) -> io::Result<()> {
    match faults
        .check(step)
        .and_then(|()| FileExt::allocate(file, len))
    {
        Err(e) if fallocate_unsupported(&e) => {
            ::log::debug!("fallocate is not supported here ({e}): writing zeros instead");
            fill_with_zeros(file, len)
        }
        result => result,
    }
}

/// Whether `fallocate` failed because the file system does not implement it: EOPNOTSUPP (what
/// file systems answer) or ENOSYS (a kernel without the call), both `ErrorKind::Unsupported`,
/// or EINVAL, which for the arguments peerlog passes (offset 0, a positive length, no flags)
/// only a file system refusing the call returns.
fn fallocate_unsupported(e: &io::Error) -> bool {
    e.kind() == ErrorKind::Unsupported || e.raw_os_error() == Some(libc::EINVAL)
}

/// Writes zeros from the end of `file` up to `len`: the blocks are allocated when it returns.
fn fill_with_zeros(file: &File, len: u64) -> io::Result<()> {
    let mut at = file.metadata()?.len();
    if at >= len {
        return Ok(());
    }
    let zeros = vec![0u8; ZERO_CHUNK.min((len - at) as usize)];
    while at < len {
        let n = (len - at).min(zeros.len() as u64) as usize;
        file.write_all_at(&zeros[..n], at)?;
        at += n as u64;
    }
    Ok(())
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
            // Never over a file already there (a damaged file `verify` reports, say): a
            // taken name gets a suffix, as `salvage` gives one in `damaged/`.
            let name = path.file_name().expect("segment paths have a file name");
            let target = free_name(&archive.join(name));
            fs::rename(path, &target).at(&target)?;
            sync_dir(&archive)?;
        } else {
            fs::remove_file(path).at(path)?;
        }
    }
    sync_dir(dir)
}

/// Removes every segment and archived segment: the directory then holds a new, empty
/// database. Only peerlog's segments go: files it does not own (see [`list_dir`]) and the
/// `damaged/` folders stay, and `archive/` itself goes only once nothing else is left in it.
/// Removes the index snapshot in `dir`, if there is one (a file: a folder of that name is an
/// error, and stays).
pub(crate) fn remove_snapshot(dir: &Path) -> Result<(), Error> {
    let path = dir.join(SNAPSHOT_FILE);
    match fs::remove_file(&path) {
        Err(e) if e.kind() != ErrorKind::NotFound => Err(Error::io(&path, e)),
        _ => Ok(()),
    }
}

pub(crate) fn wipe(dir: &Path, segments: &[SegmentFile]) -> Result<(), Error> {
    for segment in segments {
        fs::remove_file(&segment.path).at(&segment.path)?;
    }
    remove_snapshot(dir)?;
    let archive = dir.join(ARCHIVE_DIR);
    if archive.is_dir() {
        for entry in fs::read_dir(&archive).at(&archive)? {
            let path = entry.at(&archive)?.path();
            let name = path
                .file_name()
                .and_then(|n| n.to_str())
                .unwrap_or_default();
            let ours = parse_archived_segment_name(name).is_some()
                || name
                    .strip_suffix(&format!(".{TEMP_EXT}"))
                    .and_then(parse_segment_name)
                    .is_some();
            if ours && !path.is_dir() {
                fs::remove_file(&path).at(&path)?;
            }
        }
        match fs::remove_dir(&archive) {
            Ok(()) => {}
            // Something not ours is left in it: kept, with the folder.
            Err(e) if e.kind() == ErrorKind::DirectoryNotEmpty => sync_dir(&archive)?,
            Err(e) => return Err(Error::io(&archive, e)),
        }
    }
    sync_dir(dir)
}

#[cfg(test)]
mod listing_tests {
    use super::*;

    #[test]
    fn files_a_file_system_keeps_for_open_deleted_files_are_not_stray() {
        let dir = tempfile::tempdir().unwrap();
        for name in [
            ".fuse_hidden0000002000000001",
            ".nfs0000000000abcdef00000001",
        ] {
            fs::write(dir.path().join(name), b"a deleted segment").unwrap();
        }
        let listing = list_dir(dir.path(), Listing::Strict).unwrap();
        assert!(listing.segments.is_empty() && listing.leftovers.is_empty());
        assert!(listing.stray.is_empty(), "{:?}", listing.stray);
        // Names that only look alike are the operator's files: ignored, and listed as stray.
        for foreign in [".nfs", ".nfsxyz", "notes.txt"] {
            let other = tempfile::tempdir().unwrap();
            fs::write(other.path().join(foreign), b"").unwrap();
            let listing = list_dir(other.path(), Listing::Strict).unwrap();
            assert_eq!(listing.stray, [other.path().join(foreign)], "{foreign}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::journal::writer::{Generation, LogWriter};

    /// Fail points that make `fallocate` report `errno` at every allocation step, and the
    /// steps seen.
    fn fallocate_fails_with(errno: i32) -> (FailPoints, Arc<Mutex<Vec<String>>>) {
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let faults = FailPoints::new(move |step| {
            if step.ends_with(".allocate") {
                log.lock().unwrap().push(step.to_string());
                return Err(io::Error::from_raw_os_error(errno));
            }
            Ok(())
        });
        (faults, seen)
    }

    fn assert_allocated_zeros(path: &Path, from: usize, len: u64) {
        let meta = fs::metadata(path).unwrap();
        assert_eq!(meta.len(), len);
        // Written, not a sparse file: its blocks are there for the map's stores.
        assert!(
            meta.blocks() * 512 >= len,
            "{} bytes allocated for {len}",
            meta.blocks() * 512
        );
        let bytes = fs::read(path).unwrap();
        assert!(bytes[from..].iter().all(|&b| b == 0));
    }

    /// Where `fallocate` is unsupported, preallocation writes zeros past the end of the file
    /// (and only there); EOPNOTSUPP, ENOSYS and EINVAL take that path, other errors (a full
    /// disk) are the caller's.
    #[test]
    fn preallocation_writes_zeros_where_fallocate_is_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("file");
        let mut file = private_file()
            .read(true)
            .write(true)
            .create_new(true)
            .open(&path)
            .unwrap();
        file.write_all(b"header").unwrap();
        let mut len = 6;
        for errno in [libc::EOPNOTSUPP, libc::ENOSYS, libc::EINVAL] {
            let (faults, seen) = fallocate_fails_with(errno);
            // More than one chunk of zeros, and not a multiple of it.
            len += 2 * ZERO_CHUNK as u64 + 1000;
            preallocate(&file, len, "log.allocate", &faults).unwrap_or_else(|e| {
                panic!("errno {errno}: no fallback to writing zeros: {e}");
            });
            assert_eq!(*seen.lock().unwrap(), ["log.allocate"]);
            assert_eq!(&fs::read(&path).unwrap()[..6], b"header");
            assert_allocated_zeros(&path, 6, len);
            // A length the file already has changes nothing.
            preallocate(&file, 100, "log.allocate", &faults).unwrap();
            assert_eq!(file.metadata().unwrap().len(), len);
        }
        let (full, _) = fallocate_fails_with(libc::ENOSPC);
        let e = preallocate(&file, len * 2, "log.allocate", &full).unwrap_err();
        assert_eq!(e.raw_os_error(), Some(libc::ENOSPC));
        assert_eq!(file.metadata().unwrap().len(), len);
    }

    /// Segment creation and the writer's growth steps both fall back: a log grows past its
    /// first preallocation step with `fallocate` unsupported, and reads back whole.
    #[test]
    fn segments_are_created_and_grown_where_fallocate_is_unsupported() {
        let dir = tempfile::tempdir().unwrap();
        let (faults, seen) = fallocate_fails_with(libc::EOPNOTSUPP);
        let generation = Generation {
            protocol_version: 1,
            salt: 9,
        };
        let segment_size = 3 * PREALLOCATION_STEP + 4096;
        let mut writer =
            LogWriter::create(dir.path(), generation, 1, 1, segment_size, faults).unwrap();
        let path = writer.active_path().to_path_buf();
        assert_allocated_zeros(&path, HEADER_LEN, PREALLOCATION_STEP);
        let mut written = 0;
        let mut n = 0u64;
        while written < PREALLOCATION_STEP + PREALLOCATION_STEP / 2 {
            // The journal carries payloads as opaque bytes: any kind but 0, any length in
            // bounds.
            written += writer.append(2, &[n as u8; 80]).unwrap();
            n += 1;
        }
        writer.sync().unwrap();
        assert_eq!(
            *seen.lock().unwrap(),
            ["segment.allocate", "log.allocate"],
            "both allocation steps are asked"
        );
        assert_allocated_zeros(&path, HEADER_LEN + written as usize, 2 * PREALLOCATION_STEP);
        drop(writer);
        let listing = list_dir(dir.path(), Listing::Strict).unwrap();
        let plan = crate::journal::replay::ReplayPlan::new(listing.segments);
        let (_, replayed) = crate::recovery::rebuild_index(&plan).unwrap();
        assert_eq!(replayed.records, n);
        assert!(replayed.problems.is_empty(), "{:?}", replayed.problems);
    }
}
