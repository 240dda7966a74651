//! Configuration of a database, with documented defaults.

use std::time::Duration;

use crate::faults::FailPoints;

/// How far an acknowledged write has travelled when the write method returns.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Durability {
    /// A write is in the operating system's page cache when it returns: it survives a crash
    /// or `kill -9` of the process, not a power loss or kernel crash until `sync()` returns or
    /// its segment is sealed (a power loss can take up to a whole segment of writes). As safe
    /// as go-ethereum's LevelDB node database, at memory speed.
    Process,
    /// As `Process`, plus a background syncer that makes every write durable on disk within
    /// `max_delay`, with one `fdatasync` for all the writes of that interval. The default,
    /// with `max_delay` one second (see [`Durability::DEFAULT`]). Concurrent callers of
    /// `sync()` share one `fdatasync`: the first one that finds none in flight syncs, on its
    /// own thread, for every caller queued behind it, and a lone caller syncs as fast as
    /// `SyncEachWrite` would. A power loss loses at most the writes of the last `max_delay`
    /// and never a write whose `sync()` has returned.
    GroupCommit {
        /// Longest time a write stays in the page cache only.
        max_delay: Duration,
    },
    /// Every write is on stable storage (`fdatasync`) when it returns: survives power loss.
    SyncEachWrite,
}

impl Durability {
    /// The default: [`Durability::GroupCommit`] with `max_delay` one second. A power failure
    /// loses at most the last second of writes, at the write rate of `Process` (measured
    /// within 1 % of it: the syncer's one `fdatasync` a second runs beside the writers).
    pub const DEFAULT: Durability = Durability::GroupCommit {
        max_delay: Duration::from_secs(1),
    };
}

impl Default for Durability {
    fn default() -> Durability {
        Durability::DEFAULT
    }
}

/// Options for [`crate::NodeDb::open_with`]. `Options::default()` is what `open` uses.
///
/// ```
/// use std::time::Duration;
/// use peerlog::{Durability, Options};
/// let opts = Options {
///     durability: Durability::GroupCommit { max_delay: Duration::from_millis(10) },
///     ..Options::default()
/// };
/// assert_eq!(opts.expiration, Duration::from_secs(24 * 3600));
/// ```
#[derive(Clone, Debug)]
pub struct Options {
    /// When writes are acknowledged and made durable. Default: [`Durability::DEFAULT`],
    /// group commit within one second.
    pub durability: Durability,
    /// Largest size of a segment file (preallocated in 1 MiB steps); a new segment starts
    /// when the next record does not fit.
    /// Default: 64 MiB. Minimum: 4 KiB.
    pub segment_size: u64,
    /// A node whose last pong is older than this is dropped by expiration. Default: 24 hours.
    pub expiration: Duration,
    /// How often the expirer thread started by `ensure_expirer` runs. Default: 1 hour.
    pub cleanup_interval: Duration,
    /// Compact automatically when dead bytes (overwritten, deleted or expired events) are more
    /// than this share of the log... Default: 0.5.
    pub compact_dead_ratio: f64,
    /// ...and the log is larger than this many bytes. Default: 16 MiB.
    pub compact_min_bytes: u64,
    /// Move segments replaced by compaction into `archive/` instead of deleting them, so a
    /// peer's full history stays readable. Default: false (disk use stays bounded).
    pub keep_history: bool,
    /// Write the index to the file `index.snapshot` when the database is closed, so that the
    /// next open reads each node's state once instead of replaying every record of the log.
    /// That open still checks every byte of the sealed segments the snapshot covers (their
    /// checksums, on two cores) and replays what was written after it; anything not as the
    /// snapshot left it, or damage anywhere, makes it replay the whole log instead, with the
    /// same result. A close writes it only when the log moved since the last one, taking
    /// about as long as an open (measured in BENCHMARKS.md). With `false`, a close writes no
    /// snapshot and an open removes any it finds. Default: true.
    pub index_snapshot: bool,
    /// Most ids the index holds (with a record, or only pings, pongs or fails). A write about
    /// a new id when the store is full first evicts one id, as an event of its own in the log:
    /// the id never proven by a pong whose newest event is oldest, else the node with the
    /// oldest newest pong in the subnet (/24, /48) that holds the most ids. A flood of new ids
    /// evicts its own kind first and never takes the store past this bound. Default: 100,000.
    /// Minimum: 1.
    pub max_nodes: usize,
    /// What opening a directory written with another protocol version does: wipe its
    /// segments and start empty (`true`, go-ethereum's rule for a node that changed protocol),
    /// or refuse with [`Error::VersionMismatch`](crate::Error::VersionMismatch) and change
    /// nothing (`false`, for tools that open a node's database to maintain it, such as
    /// `peerlog compact`; [`inspect::protocol_version`](crate::inspect::protocol_version)
    /// says which version to open it with). Default: true.
    ///
    /// ```
    /// # fn main() -> Result<(), peerlog::Error> {
    /// use peerlog::{Error, NodeDb, NodeId, Options};
    /// let dir = tempfile::tempdir().unwrap();
    /// NodeDb::open(dir.path(), 5, NodeId([1; 64]))?.close()?;
    ///
    /// let keep = Options { wipe_on_version_change: false, ..Options::default() };
    /// let refused = NodeDb::open_with(dir.path(), 6, NodeId([1; 64]), keep);
    /// assert!(matches!(refused, Err(Error::VersionMismatch { found: 5, given: 6, .. })));
    /// # Ok(())
    /// # }
    /// ```
    pub wipe_on_version_change: bool,
    /// Test hook that can fail each I/O step (only with peerlog's own hidden testing
    /// feature: no user build carries it). Default: none.
    #[cfg(feature = "__internal_testing")]
    #[doc(hidden)]
    pub fail_points: FailPoints,
}

impl Default for Options {
    fn default() -> Options {
        Options {
            durability: Durability::DEFAULT,
            segment_size: 64 << 20,
            expiration: Duration::from_secs(24 * 3600),
            cleanup_interval: Duration::from_secs(3600),
            compact_dead_ratio: 0.5,
            compact_min_bytes: 16 << 20,
            keep_history: false,
            index_snapshot: true,
            max_nodes: DEFAULT_MAX_NODES,
            wipe_on_version_change: true,
            #[cfg(feature = "__internal_testing")]
            fail_points: FailPoints::default(),
        }
    }
}

/// Default of [`Options::max_nodes`].
pub const DEFAULT_MAX_NODES: usize = 100_000;

/// Smallest segment size accepted.
pub const MIN_SEGMENT_SIZE: u64 = 4096;

/// The hook of a build without the testing feature: none.
#[cfg(not(feature = "__internal_testing"))]
static NO_FAULTS: FailPoints = FailPoints::NONE;

impl Options {
    /// The fault-injection hook: the test's, with the testing feature; none otherwise.
    pub(crate) fn faults(&self) -> &FailPoints {
        #[cfg(feature = "__internal_testing")]
        return &self.fail_points;
        #[cfg(not(feature = "__internal_testing"))]
        &NO_FAULTS
    }

    pub(crate) fn validate(&self) -> Result<(), crate::Error> {
        if self.segment_size < MIN_SEGMENT_SIZE {
            return Err(crate::Error::invalid(format!(
                "segment_size {} is below the minimum {MIN_SEGMENT_SIZE}",
                self.segment_size
            )));
        }
        if !(0.0..=1.0).contains(&self.compact_dead_ratio) {
            return Err(crate::Error::invalid(
                "compact_dead_ratio must be within 0..=1",
            ));
        }
        if self.max_nodes == 0 {
            return Err(crate::Error::invalid("max_nodes must be at least 1"));
        }
        if self.cleanup_interval.is_zero() {
            return Err(crate::Error::invalid("cleanup_interval must not be zero"));
        }
        if let Durability::GroupCommit { max_delay } = self.durability {
            if max_delay.is_zero() {
                return Err(crate::Error::invalid(
                    "group commit max_delay must not be zero",
                ));
            }
        }
        Ok(())
    }
}
