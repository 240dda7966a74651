//! `NodeDb`: the public API over the log and the index, with its background threads.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{select, Sender};

use crate::compact::{self, CompactStats, CompactionInput};
use crate::event::{self, now_nanos, Event, StoredEvent};
use crate::group_commit::GroupCommit;
use crate::index::Index;
use crate::journal::dir::{list_dir, Listing};
use crate::journal::replay::ReplayPlan;
use crate::journal::writer::{sync_segment, LogWriter};
use crate::journal::ReplaySummary;
use crate::lock::DirLock;
use crate::recovery;
use crate::{Durability, Error, Node, NodeId, Options, PeerState};

/// The peer database. See the crate documentation for an example.
///
/// Every method takes `&self`; a `NodeDb` can be shared between threads (for example in an
/// `Arc`). Writes are serialised; each is applied to the index only after it is in the log.
pub struct NodeDb {
    inner: Arc<Inner>,
    threads: Mutex<Threads>,
}

impl std::fmt::Debug for NodeDb {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let state = self.inner.state();
        f.debug_struct("NodeDb")
            .field("path", &self.inner.dir)
            .field("self_id", &self.inner.self_id)
            .field("nodes", &state.index.len())
            .field("ids", &state.index.entries().len())
            .field("durability", &self.inner.opts.durability)
            .field("poisoned", &state.poisoned)
            .field("closed", &state.closed)
            .finish_non_exhaustive()
    }
}

#[derive(Default)]
struct Threads {
    expirer: Option<(Sender<()>, JoinHandle<()>)>,
    syncer: Option<JoinHandle<()>>,
    compactor: Option<JoinHandle<()>>,
}

pub(crate) struct Inner {
    self_id: NodeId,
    opts: Options,
    dir: Option<PathBuf>,
    state: Mutex<State>,
    /// One compaction at a time.
    compaction: Mutex<()>,
    compacting: AtomicBool,
    /// Set by `ensure_expirer`: from then on automatic compactions also expire stale nodes.
    expirer_started: AtomicBool,
    group_commit: Arc<GroupCommit>,
    recovery: ReplaySummary,
    _lock: Option<DirLock>,
}

struct State {
    index: Index,
    log: Option<LogWriter>,
    /// Bytes of the records in the log; minus the index's live bytes, what compaction frees.
    log_bytes: u64,
    poisoned: Option<String>,
    closed: bool,
}

impl State {
    fn check_writable(&self) -> Result<(), Error> {
        if self.closed {
            return Err(Error::Closed);
        }
        match &self.poisoned {
            Some(reason) => Err(Error::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }

    /// Logs then applies one event.
    fn write(&mut self, event: &Event, sync_each: bool) -> Result<(), Error> {
        self.check_writable()?;
        // Refuses timestamps that do not fit before anything is written.
        let stored = StoredEvent::from_event(event)?;
        let written_at = now_nanos();
        if let Some(log) = &mut self.log {
            let appended = log.append(event, written_at);
            self.poison_if_sync_failed();
            self.log_bytes += appended?;
        }
        self.index.apply(&stored, written_at);
        if sync_each {
            self.sync()?;
        }
        Ok(())
    }

    fn sync(&mut self) -> Result<(), Error> {
        let Some(log) = &mut self.log else {
            return Ok(());
        };
        let synced = log.sync();
        self.poison_if_sync_failed();
        synced
    }

    /// Seals the active segment (for compaction).
    fn seal(&mut self) -> Result<(), Error> {
        let log = self
            .log
            .as_mut()
            .expect("a database with a directory has a log");
        let sealed = log.seal_active();
        self.poison_if_sync_failed();
        sealed
    }

    /// A failed fsync anywhere in the writer (also while rotating) poisons the database.
    fn poison_if_sync_failed(&mut self) {
        if let Some(reason) = self.log.as_ref().and_then(|log| log.failed_sync()) {
            self.poisoned.get_or_insert_with(|| reason.to_string());
        }
    }
}

impl Inner {
    fn state(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self, event: Event) -> Result<(), Error> {
        let sync_each = self.opts.durability == Durability::SyncEachWrite;
        let wants_compaction = {
            let mut state = self.state();
            state.write(&event, sync_each)?;
            self.wants_compaction(&state)
        };
        if wants_compaction {
            self.compacting.store(true, Ordering::Release);
        }
        Ok(())
    }

    fn wants_compaction(&self, state: &State) -> bool {
        let dead = state.log_bytes.saturating_sub(state.index.live_bytes());
        self.dir.is_some()
            && !self.compacting.load(Ordering::Acquire)
            && state.log_bytes > self.opts.compact_min_bytes
            && dead as f64 > self.opts.compact_dead_ratio * state.log_bytes as f64
    }

    /// For the group-commit syncer: syncs the active segment without holding the state lock,
    /// unless nothing was written after `synced_through`. Returns the sequence number synced
    /// through.
    fn sync_outside_lock(&self, synced_through: u64) -> Result<Option<u64>, Error> {
        let (file, through, path) = {
            let state = self.state();
            let Some(log) = &state.log else {
                return Ok(None);
            };
            if let Some(reason) = &state.poisoned {
                return Err(Error::Poisoned(reason.clone()));
            }
            (
                log.active_file(),
                log.next_seq() - 1,
                log.active_path().to_path_buf(),
            )
        };
        if through <= synced_through {
            return Ok(Some(through));
        }
        match sync_segment(&file, &path, &self.opts.fail_points) {
            Ok(()) => Ok(Some(through)),
            Err(e) => {
                self.state().poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn sync(&self) -> Result<(), Error> {
        match self.opts.durability {
            Durability::GroupCommit { .. } if self.dir.is_some() => {
                let through = {
                    let state = self.state();
                    state.check_writable()?;
                    state.log.as_ref().map_or(0, |log| log.next_seq() - 1)
                };
                self.group_commit.wait_for(through)
            }
            _ => {
                let mut state = self.state();
                state.check_writable()?;
                state.sync()
            }
        }
    }

    fn expire(&self) -> Result<usize, Error> {
        let threshold = now_nanos()
            .saturating_sub(i64::try_from(self.opts.expiration.as_nanos()).unwrap_or(i64::MAX));
        let sync_each = self.opts.durability == Durability::SyncEachWrite;
        let mut state = self.state();
        let mut dropped = 0;
        let expired = state.index.expired(threshold, &self.self_id);
        for &id in &expired {
            let had_record = state.index.get(&id).is_some_and(|e| e.endpoint.is_some());
            state.write(&Event::NodeExpired { id }, false)?;
            dropped += usize::from(had_record);
        }
        if sync_each && !expired.is_empty() {
            state.sync()?;
        }
        Ok(dropped)
    }

    /// Compacts the sealed part of the log; first expires stale nodes if `expire_first`.
    fn compact(&self, expire_first: bool) -> Result<CompactStats, Error> {
        let Some(dir) = &self.dir else {
            return Ok(CompactStats::default());
        };
        let _one_at_a_time = self.compaction.lock().unwrap_or_else(|e| e.into_inner());
        let nodes_expired = if expire_first { self.expire()? } else { 0 };
        // Writers wait only for the seal: everything up to `last_seq` is then in sealed
        // segments, which only compaction (one at a time) removes.
        let (last_seq, active, output_id, (protocol_version, salt)) = {
            let mut state = self.state();
            state.check_writable()?;
            state.seal()?;
            let log = state
                .log
                .as_mut()
                .expect("a database with a directory has a log");
            let last_seq = log.next_seq() - 1;
            (
                last_seq,
                log.active_segment_id(),
                log.reserve_segment_id(),
                log.generation(),
            )
        };
        let plan = ReplayPlan::new(list_dir(dir, Listing::Strict)?.segments);
        let segments: Vec<_> = plan
            .live
            .into_iter()
            .filter(|s| s.header.segment_id != active && s.header.first_seq <= last_seq)
            .collect();
        let already_compact = matches!(&segments[..], [only] if only.header.is_compacted());
        if segments.is_empty() || (already_compact && plan.superseded.is_empty()) {
            return Ok(CompactStats {
                nodes_expired,
                ..CompactStats::default()
            });
        }
        let input = CompactionInput {
            segments,
            superseded: plan.superseded,
            last_seq,
            protocol_version,
            salt,
            output_id,
        };
        let mut stats = compact::rewrite(dir, input, &self.opts)?;
        stats.nodes_expired = nodes_expired;
        let mut state = self.state();
        state.log_bytes = state.log_bytes.saturating_sub(stats.bytes_read) + stats.bytes_written;
        Ok(stats)
    }
}

impl NodeDb {
    /// Opens (or creates) the database in `dir` with the default [`Options`].
    ///
    /// A directory written with another protocol `version` is wiped and starts empty; one
    /// holding files peerlog did not write is refused with [`Error::NotADatabase`] and left
    /// untouched; one open in another `NodeDb` gives [`Error::Locked`].
    ///
    /// The log is replayed into the index before this returns; while each segment is
    /// replayed, a short-lived second thread checks its checksums, so that an open uses two
    /// cores.
    pub fn open(dir: impl AsRef<Path>, version: u64, self_id: NodeId) -> Result<NodeDb, Error> {
        NodeDb::open_with(dir, version, self_id, Options::default())
    }

    /// Opens (or creates) the database in `dir` with the given options.
    pub fn open_with(
        dir: impl AsRef<Path>,
        version: u64,
        self_id: NodeId,
        opts: Options,
    ) -> Result<NodeDb, Error> {
        let dir = dir.as_ref();
        let opened = recovery::open_dir(dir, version, &opts)?;
        let state = State {
            index: opened.index,
            log: Some(opened.writer),
            log_bytes: opened.summary.record_bytes,
            poisoned: None,
            closed: false,
        };
        Ok(NodeDb::start(Inner {
            self_id,
            opts,
            dir: Some(opened.dir),
            state: Mutex::new(state),
            compaction: Mutex::new(()),
            compacting: AtomicBool::new(false),
            expirer_started: AtomicBool::new(false),
            group_commit: Arc::default(),
            recovery: opened.summary,
            _lock: Some(opened.lock),
        }))
    }

    /// A database that lives in memory only and is gone when dropped.
    pub fn in_memory(self_id: NodeId) -> NodeDb {
        let state = State {
            index: Index::default(),
            log: None,
            log_bytes: 0,
            poisoned: None,
            closed: false,
        };
        NodeDb::start(Inner {
            self_id,
            opts: Options::default(),
            dir: None,
            state: Mutex::new(state),
            compaction: Mutex::new(()),
            compacting: AtomicBool::new(false),
            expirer_started: AtomicBool::new(false),
            group_commit: Arc::default(),
            recovery: ReplaySummary::default(),
            _lock: None,
        })
    }

    fn start(inner: Inner) -> NodeDb {
        let inner = Arc::new(inner);
        let mut threads = Threads::default();
        if let (Durability::GroupCommit { max_delay }, Some(_)) =
            (inner.opts.durability, &inner.dir)
        {
            let weak = Arc::downgrade(&inner);
            let sync = move |synced| weak.upgrade().map(|inner| inner.sync_outside_lock(synced));
            threads.syncer = Some(inner.group_commit.start(max_delay, sync));
        }
        NodeDb {
            inner,
            threads: Mutex::new(threads),
        }
    }

    fn threads(&self) -> MutexGuard<'_, Threads> {
        self.threads.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The directory of the database; `None` for an in-memory one.
    pub fn path(&self) -> Option<&Path> {
        self.inner.dir.as_deref()
    }

    /// What opening found: records replayed and every damaged, torn or missing place.
    pub fn recovery(&self) -> &ReplaySummary {
        &self.inner.recovery
    }

    /// The node record of `id`, if there is one.
    pub fn node(&self, id: &NodeId) -> Option<Node> {
        self.inner.state().index.get(id).and_then(|e| e.node())
    }

    /// Everything known about every id (its node record, if any, and its liveness data), read
    /// from the index in memory: no file is read. A snapshot in no particular order; ids with
    /// no node record (only pings, pongs or fails) are included, with `node: None`.
    ///
    /// ```
    /// # fn main() -> Result<(), peerlog::Error> {
    /// let db = peerlog::NodeDb::in_memory("11".repeat(64).parse()?);
    /// let peer = format!("enode://{}@203.0.113.7:30303", "22".repeat(64)).parse()?;
    /// db.update_node(&peer)?;
    /// let nodes: Vec<_> = db.peers().into_iter().filter_map(|p| p.node).collect();
    /// assert_eq!(nodes, [peer]);
    /// # Ok(())
    /// # }
    /// ```
    pub fn peers(&self) -> Vec<PeerState> {
        let state = self.inner.state();
        state.index.entries().iter().map(|e| e.state()).collect()
    }

    /// Inserts or overwrites the record of `node.id`.
    pub fn update_node(&self, node: &Node) -> Result<(), Error> {
        self.write(Event::NodeUpdated(node.clone()))
    }

    /// Deletes everything known about `id`: its record, last ping, last pong and fails.
    pub fn delete_node(&self, id: &NodeId) -> Result<(), Error> {
        if self.inner.state().index.get(id).is_none() {
            return Ok(());
        }
        self.write(Event::NodeDeleted { id: *id })
    }

    /// When a ping was last sent to `id`; `None` if never.
    pub fn last_ping(&self, id: &NodeId) -> Option<SystemTime> {
        let ping = self.inner.state().index.get(id)?.last_ping()?;
        Some(event::from_unix_nanos(ping))
    }

    /// Records that a ping was sent to `id` at `at`.
    pub fn update_last_ping(&self, id: &NodeId, at: SystemTime) -> Result<(), Error> {
        self.write(Event::Ping { id: *id, at })
    }

    /// When `id` last answered with a pong; `None` if never.
    pub fn last_pong(&self, id: &NodeId) -> Option<SystemTime> {
        let pong = self.inner.state().index.get(id)?.last_pong()?;
        Some(event::from_unix_nanos(pong))
    }

    /// Records that `id` answered with a pong at `at`.
    pub fn update_last_pong(&self, id: &NodeId, at: SystemTime) -> Result<(), Error> {
        self.write(Event::Pong { id: *id, at })
    }

    /// Findnode failures of `id` since bonding; 0 when unknown.
    pub fn find_fails(&self, id: &NodeId) -> u32 {
        self.inner.state().index.get(id).map_or(0, |e| e.fails)
    }

    /// Sets the count of findnode failures of `id`.
    pub fn update_find_fails(&self, id: &NodeId, fails: u32) -> Result<(), Error> {
        self.write(Event::FindFails { id: *id, fails })
    }

    /// Up to `n` distinct nodes to bootstrap from: nodes with a record, other than this
    /// node, whose last pong is at most `max_age` old. Returns min(n, eligible) nodes; every
    /// eligible node is equally likely to be picked.
    pub fn query_seeds(&self, n: usize, max_age: Duration) -> Vec<Node> {
        let max_age = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
        let min_pong = now_nanos().saturating_sub(max_age);
        self.inner
            .state()
            .index
            .sample_seeds(n, min_pong, &self.inner.self_id)
    }

    /// Drops every node whose last pong is older than the expiration (and this node's own
    /// record), with everything known about it; also ids without a record whose newest
    /// timestamp is that old. Returns how many node records were dropped.
    pub fn expire_nodes(&self) -> Result<usize, Error> {
        self.inner.expire()
    }

    /// Starts, once, a background thread that runs [`NodeDb::expire_nodes`] every cleanup
    /// interval until the database is closed. Later calls do nothing.
    pub fn ensure_expirer(&self) {
        let mut threads = self.threads();
        if threads.expirer.is_some() || self.inner.state().closed {
            return;
        }
        let (stop, stopped) = crossbeam_channel::bounded::<()>(0);
        let inner = Arc::downgrade(&self.inner);
        let ticks = crossbeam_channel::tick(self.inner.opts.cleanup_interval);
        let handle = std::thread::Builder::new()
            .name("peerlog-expirer".into())
            .spawn(move || loop {
                select! {
                    recv(ticks) -> _ => {
                        let Some(inner) = inner.upgrade() else { return };
                        if let Err(e) = inner.expire() {
                            ::log::error!("expiring nodes failed: {e}");
                        }
                    }
                    recv(stopped) -> _ => return,
                }
            })
            .expect("spawning the expirer thread");
        threads.expirer = Some((stop, handle));
        self.inner.expirer_started.store(true, Ordering::Release);
    }

    /// Rewrites the sealed part of the log as the live state, dropping overwritten, deleted
    /// and expired entries. Writers are held up only while the active segment is sealed.
    pub fn compact(&self) -> Result<CompactStats, Error> {
        self.inner.compact(true)
    }

    /// Makes every write so far durable on stable storage.
    pub fn sync(&self) -> Result<(), Error> {
        self.inner.sync()
    }

    /// Nodes with a record.
    pub fn len(&self) -> usize {
        self.inner.state().index.len()
    }

    /// Whether no node has a record.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Stops the background threads, syncs, and releases the directory.
    pub fn close(self) -> Result<(), Error> {
        self.shutdown()
    }

    fn write(&self, event: Event) -> Result<(), Error> {
        self.inner.write(event)?;
        if self.inner.compacting.load(Ordering::Acquire) {
            self.start_background_compaction();
        }
        Ok(())
    }

    fn start_background_compaction(&self) {
        let mut threads = self.threads();
        if let Some(handle) = &threads.compactor {
            if !handle.is_finished() {
                return;
            }
        }
        if let Some(done) = threads.compactor.take() {
            let _ = done.join();
        }
        let inner = Arc::clone(&self.inner);
        threads.compactor = Some(
            std::thread::Builder::new()
                .name("peerlog-compactor".into())
                .spawn(move || {
                    // Like go-ethereum, expire nothing before the application asked for
                    // expiry (ensure_expirer): early on, stale nodes may be the only seeds.
                    let expire_first = inner.expirer_started.load(Ordering::Acquire);
                    if let Err(e) = inner.compact(expire_first) {
                        ::log::error!("background compaction failed: {e}");
                    }
                    inner.compacting.store(false, Ordering::Release);
                })
                .expect("spawning the compaction thread"),
        );
    }

    fn shutdown(&self) -> Result<(), Error> {
        let threads = std::mem::take(&mut *self.threads());
        if let Some((stop, handle)) = threads.expirer {
            drop(stop);
            let _ = handle.join();
        }
        if let Some(handle) = threads.compactor {
            let _ = handle.join();
        }
        let synced = if self.inner.state().closed {
            Ok(())
        } else {
            self.inner.sync()
        };
        self.inner.group_commit.stop();
        if let Some(handle) = threads.syncer {
            let _ = handle.join();
        }
        self.inner.state().closed = true;
        synced
    }
}

impl Drop for NodeDb {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            ::log::error!("closing the node database: {e}");
        }
    }
}
