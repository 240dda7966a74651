//! The one error type of peerlog.

use std::path::PathBuf;

/// Everything that can go wrong in peerlog.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The operating system refused a file operation.
    #[error("I/O error on {path}: {source}")]
    Io {
        /// The file or directory the operation was about.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },

    /// A file holds bytes that are not what peerlog wrote, at a place where they cannot be
    /// skipped (for example a damaged segment header).
    #[error("corrupt database file {path} at offset {offset}: {reason}")]
    Corrupt {
        /// The damaged file.
        path: PathBuf,
        /// Byte offset of the damage within the file.
        offset: u64,
        /// What is wrong.
        reason: String,
    },

    /// A file named like a segment cannot be read as one: it is empty or cut short, does not
    /// start with peerlog's magic number, or its header fails its checksum or holds
    /// impossible values (a bad disk, or a file put there by hand). Nothing is changed;
    /// [`inspect::salvage`](crate::inspect::salvage) moves such files aside.
    #[error("segment {path} has a damaged header ({reason})")]
    DamagedHeader {
        /// The segment file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },

    /// A segment file was written by a newer peerlog, in a format this build cannot read. It
    /// is left untouched: open it with a peerlog that reads that format.
    #[error("{path} is in peerlog's log format {format}, newer than this build reads (formats 1 to {supported}); upgrade peerlog to open it")]
    NewerFormat {
        /// The segment file.
        path: PathBuf,
        /// The format version in its header.
        format: u32,
        /// The newest format this build reads.
        supported: u32,
    },

    /// Another `NodeDb` (in this process or another) has the directory open for writing.
    #[error("database {dir} is locked by another writer")]
    Locked {
        /// The locked directory.
        dir: PathBuf,
    },

    /// The directory holds a database written with another protocol version, and
    /// [`Options::wipe_on_version_change`](crate::Options::wipe_on_version_change) is off: its
    /// segments are left as they are.
    #[error("database {dir} has protocol version {found}, not {given}; opening it with {given} would wipe it, refused")]
    VersionMismatch {
        /// The database directory.
        dir: PathBuf,
        /// The protocol version in its segment headers (the first one that differs).
        found: u64,
        /// The protocol version it was opened with.
        given: u64,
    },

    /// An argument was rejected: a malformed node id, enode URL or RLP blob, an empty path,
    /// a timestamp out of range, an option out of range.
    #[error("invalid input: {0}")]
    InvalidInput(String),

    /// An earlier write or fsync failed; no further writes are accepted until the database is
    /// reopened, because retrying an fsync after a failure can report success for lost data.
    #[error("database is poisoned by an earlier I/O failure ({0}); reopen it")]
    Poisoned(String),

    /// The database has been closed.
    #[error("database is closed")]
    Closed,
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn invalid(msg: impl Into<String>) -> Error {
        Error::InvalidInput(msg.into())
    }
}

/// Attaches a path to an `io::Result`.
pub(crate) trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error>;
}

impl<T> IoContext<T> for std::io::Result<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T, Error> {
        self.map_err(|e| Error::io(path, e))
    }
}
