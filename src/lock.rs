//! One writer per directory: an exclusive lock on the directory's `LOCK` file.
//!
//! The lock is a POSIX record lock (`fcntl(F_SETLK)`), as LevelDB and RocksDB take theirs: it
//! belongs to the process, so a child being spawned (between its `fork` and its `exec`) does
//! not share it, unlike an `flock`. POSIX record locks do not exclude other opens within the
//! same process, and the process loses the lock as soon as it closes *any* descriptor of the
//! file. So a process-wide table, keyed by the lock file's device and inode (a renamed or
//! differently spelled directory is still the same file), records the locks this process
//! holds; it is consulted before `LOCK` is opened, and a held `LOCK` is never opened twice.

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use std::sync::{Mutex, MutexGuard};

use crate::error::IoContext;
use crate::journal::dir::{private_file, LOCK_FILE};
use crate::Error;

/// Device and inode of a lock file.
type FileKey = (u64, u64);

/// Lock files this process holds. Held while a lock is taken or released, so that no
/// descriptor of a held lock file is ever opened or closed meanwhile.
static LOCKED_HERE: Mutex<BTreeSet<FileKey>> = Mutex::new(BTreeSet::new());

/// The exclusive lock on a database directory; released on drop.
#[derive(Debug)]
pub(crate) struct DirLock {
    /// The locked descriptor: closing it releases the lock. `None` only while dropping.
    file: Option<File>,
    key: FileKey,
}

impl DirLock {
    /// Takes the directory's lock, failing at once with `Error::Locked` if another `NodeDb`,
    /// in this process or another, has it.
    pub fn acquire(dir: &Path) -> Result<DirLock, Error> {
        let path = dir.join(LOCK_FILE);
        let locked = || Error::Locked {
            dir: dir.to_path_buf(),
        };
        let mut held = locked_here();
        // Checked by name first: opening (and then closing) a lock file this process holds
        // would release it.
        match fs::metadata(&path) {
            Ok(meta) if held.contains(&(meta.dev(), meta.ino())) => return Err(locked()),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(path, e)),
        }
        let file = private_file()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
            .at(&path)?;
        let meta = file.metadata().at(&path)?;
        let key = (meta.dev(), meta.ino());
        if held.contains(&key) {
            // LOCK was replaced by a held one between the check and the open: closing this
            // descriptor would release that lock, so it is kept open for good.
            std::mem::forget(file);
            return Err(locked());
        }
        if !try_lock(&file).at(&path)? {
            return Err(locked());
        }
        held.insert(key);
        Ok(DirLock {
            file: Some(file),
            key,
        })
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let mut held = locked_here();
        // Closed before the entry goes, so that nobody in this process can open the file
        // while the lock is still ours and then lose it with this close.
        drop(self.file.take());
        held.remove(&self.key);
    }
}

fn locked_here() -> MutexGuard<'static, BTreeSet<FileKey>> {
    LOCKED_HERE.lock().unwrap_or_else(|e| e.into_inner())
}

/// Takes a write lock on the whole file; `false` if another process has it.
fn try_lock(file: &File) -> io::Result<bool> {
    // SAFETY: `flock` is a plain C struct for which all-zero bytes are valid; the fields that
    // matter are set below (a write lock from offset 0 to the end of the file, len 0).
    let mut request: libc::flock = unsafe { std::mem::zeroed() };
    request.l_type = libc::F_WRLCK as _;
    request.l_whence = libc::SEEK_SET as _;
    // SAFETY: the descriptor is open for the duration of the call (`file` owns it), and
    // F_SETLK reads only the `flock` struct passed by pointer, which outlives the call.
    if unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &request) } == 0 {
        return Ok(true);
    }
    let error = io::Error::last_os_error();
    match error.raw_os_error() {
        Some(libc::EACCES) | Some(libc::EAGAIN) => Ok(false),
        _ => Err(error),
    }
}
