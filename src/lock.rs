//! One writer per directory: an exclusive lock on the directory's `LOCK` file.
//!
//! The lock is a POSIX record lock (`fcntl(F_SETLK)`), as LevelDB and RocksDB take theirs: it
//! belongs to the process, so a child being spawned (between its `fork` and its `exec`) does
//! not share it, unlike an `flock`. POSIX record locks do not exclude other opens within the
//! same process and are released when the process closes any descriptor of the file, so a
//! process-wide table of locked directories guards against a second open from this process,
//! and `LOCK` is opened once per lock.

use std::collections::BTreeSet;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::error::IoContext;
use crate::log::writer::private_file;
use crate::log::LOCK_FILE;
use crate::Error;

/// Directories this process holds the lock of, by canonical path.
static LOCKED_HERE: Mutex<BTreeSet<PathBuf>> = Mutex::new(BTreeSet::new());

/// The exclusive lock on a database directory; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// Keeps the locked descriptor open: closing it releases the lock.
    _file: File,
    canonical: PathBuf,
}

impl DirLock {
    /// Takes the directory's lock, failing at once with `Error::Locked` if another `NodeDb`,
    /// in this process or another, has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        let canonical = dir.canonicalize().at(dir)?;
        let locked = || Error::Locked {
            dir: dir.to_path_buf(),
        };
        if !locked_here().insert(canonical.clone()) {
            return Err(locked());
        }
        match lock_file(&dir.join(LOCK_FILE)) {
            Ok(Some(file)) => Ok(DirLock {
                _file: file,
                canonical,
            }),
            Ok(None) => {
                locked_here().remove(&canonical);
                Err(locked())
            }
            Err(e) => {
                locked_here().remove(&canonical);
                Err(e)
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        locked_here().remove(&self.canonical);
    }
}

fn locked_here() -> std::sync::MutexGuard<'static, BTreeSet<PathBuf>> {
    LOCKED_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Opens `path` and takes a write lock on the whole file; `None` if another process has it.
fn lock_file(path: &Path) -> Result<Option<File>, Error> {
    let file = private_file()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .at(path)?;
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are valid; the fields that
    // matter are set below (a write lock from offset 0 to the end of the file, len 0).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = libc::F_WRLCK as _;
    request.l_whence = libc::SEEK_SET as _;
    // SAFETY: the descriptor is open for the duration of the call (`file` owns it), and
    // F_SETLK reads only the `flock` struct passed by pointer, which outlives the call.
    let result = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &request) };
    if result == 0 {
        return Ok(Some(file));
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EAGAIN) => Ok(None),
        _ => Err(Error::io(path, error)),
    }
}
