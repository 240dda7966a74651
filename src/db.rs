//! `NodeDb`: the public API over the log and the index, with its background threads.

use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crossbeam_channel::{select, Sender};

use crate::compact::{self, CompactStats, CompactionInput};
use crate::event::{self, min_time, now_nanos, Event, PayloadEncoder, StoredEvent};
use crate::group_commit::GroupCommit;
use crate::index::{Entry, Expired, Index};
use crate::journal::dir::{check_can_create, list_dir, Listing};
use crate::journal::replay::ReplayPlan;
use crate::journal::writer::{sync_segment, LogWriter};
use crate::journal::Recovery;
use crate::journal::{Damage, DamageKind};
use crate::lock::DirLock;
use crate::loss::Loss;
use crate::record::{self, NodeRecord};
use crate::recovery;
use crate::seeds::{SeedQuery, SeedSource};
use crate::snapshot::{self, Known, Tip};
use crate::subnet::Subnet;
use crate::survey::survey;
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
    recovery: Recovery,
    _lock: Option<DirLock>,
}

struct State {
    index: Index,
    log: Option<LogWriter>,
    /// Bytes of the records in the log; minus the index's live bytes, what compaction frees.
    log_bytes: u64,
    poisoned: Option<String>,
    closed: bool,
    /// [`Options::max_nodes`].
    max_nodes: usize,
    /// Makes the payloads of the events appended.
    encoder: PayloadEncoder,
    /// Makes the payload of an eviction appended together with the write that made it.
    eviction_encoder: PayloadEncoder,
    /// The index snapshot on disk, as far as this database knows it.
    snapshot: Option<Known>,
    /// Whether the index may be written as a snapshot at close: the open found the log
    /// intact (a torn tail aside), so a replay of it gives this index and reports nothing.
    may_snapshot: bool,
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

    /// Logs then applies one event, after the evictions that make room for it.
    fn write(&mut self, event: &Event, sync_each: bool) -> Result<(), Error> {
        self.check_writable()?;
        // Refuses timestamps that do not fit before anything is written.
        let stored = StoredEvent::from_event(event)?;
        // One clock read for the write and the evictions it makes first.
        let written_at = now_nanos();
        match self.make_room(event, written_at)? {
            Some((victim, subnet)) => {
                let evicted = StoredEvent::Evicted {
                    id: &victim.0,
                    subnet,
                };
                self.append_evicting(&evicted, &stored, written_at)?;
            }
            None => self.append_stored(&stored, written_at)?,
        }
        if sync_each {
            self.sync()?;
        }
        Ok(())
    }

    /// Writes the evictions a write of `event` needs first: of an id, when it is about an id
    /// the full store does not hold yet; of an IP slot, when it is about an IP its id has no
    /// slot for and the id holds the most slots. They are written at `written_at`, the
    /// write's own time. The last eviction of an id (in a full store, the only one) is
    /// returned rather than written: the caller logs it together with the write.
    fn make_room(
        &mut self,
        event: &Event,
        written_at: i64,
    ) -> Result<Option<(NodeId, Option<Subnet>)>, Error> {
        let (Some(id), Some(ip)) = (event.id(), holds_id(event)) else {
            return Ok(None);
        };
        match self.index.position(id) {
            None => {
                while self.index.ids() >= self.max_nodes {
                    let Some((victim, subnet)) = self.index.victim() else {
                        break;
                    };
                    if self.index.ids() == self.max_nodes {
                        return Ok(Some((victim, subnet)));
                    }
                    let evicted = StoredEvent::Evicted {
                        id: &victim.0,
                        subnet,
                    };
                    self.append_stored(&evicted, written_at)?;
                }
            }
            Some(position) => {
                if let Some(stalest) = ip.and_then(|ip| self.index.slot_to_evict(position, ip)) {
                    let evicted = Event::IpEvicted {
                        id: *id,
                        ip: stalest,
                    };
                    self.append(&evicted, written_at)?;
                }
            }
        }
        Ok(None)
    }

    /// Logs then applies the eviction `evicted` and the write `stored` that made it (about an
    /// id not held), both written at `written_at`: one append of the two records, then the
    /// new id's entry in the evicted one's place (see `Index::apply_evicting`).
    fn append_evicting(
        &mut self,
        evicted: &StoredEvent<'_>,
        stored: &StoredEvent<'_>,
        written_at: i64,
    ) -> Result<(), Error> {
        if let Some(log) = &mut self.log {
            let records = [
                self.eviction_encoder.encode(evicted, written_at),
                self.encoder.encode(stored, written_at),
            ];
            let appended = log.append_all(&records);
            self.poison_if_sync_failed();
            self.log_bytes += appended?;
        }
        self.index.apply_evicting(evicted, stored, written_at);
        Ok(())
    }

    /// Logs then applies one event written at `written_at`.
    fn append(&mut self, event: &Event, written_at: i64) -> Result<(), Error> {
        self.append_stored(&StoredEvent::from_event(event)?, written_at)
    }

    /// Logs then applies one event in stored form (its timestamps converted once), written
    /// at `written_at`.
    fn append_stored(&mut self, stored: &StoredEvent<'_>, written_at: i64) -> Result<(), Error> {
        if let Some(log) = &mut self.log {
            let (kind, payload) = self.encoder.encode(stored, written_at);
            let appended = log.append(kind, payload);
            self.poison_if_sync_failed();
            self.log_bytes += appended?;
        }
        self.index.apply(stored, written_at);
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

    /// Writes `event` if `wanted` says so, given the index at that moment (under the same
    /// lock as the write, so nothing can come between the decision and the write). Returns
    /// whether it was written.
    fn write_if(&self, event: Event, wanted: impl FnOnce(&Index) -> bool) -> Result<bool, Error> {
        let sync_each = self.opts.durability == Durability::SyncEachWrite;
        let wants_compaction = {
            let mut state = self.state();
            if !wanted(&state.index) {
                state.check_writable()?;
                return Ok(false);
            }
            state.write(&event, sync_each)?;
            self.wants_compaction(&state)
        };
        if wants_compaction {
            self.compacting.store(true, Ordering::Release);
        }
        Ok(true)
    }

    fn wants_compaction(&self, state: &State) -> bool {
        let dead = state.log_bytes.saturating_sub(state.index.live_bytes());
        self.dir.is_some()
            && !self.compacting.load(Ordering::Acquire)
            && state.log_bytes > self.opts.compact_min_bytes
            && dead as f64 > self.opts.compact_dead_ratio * state.log_bytes as f64
    }

    /// For the leader of a group commit: syncs the active segment without holding the state
    /// lock, unless nothing was written after `synced_through`. Returns the sequence number
    /// synced through.
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
        match sync_segment(&file, &path, self.opts.faults()) {
            Ok(()) => Ok(Some(through)),
            Err(e) => {
                self.state().poisoned = Some(e.to_string());
                Err(e)
            }
        }
    }

    fn sync(&self) -> Result<(), Error> {
        self.sync_as(true)
    }

    /// Makes every record appended so far durable with an `fdatasync` of the active segment
    /// made without holding the writers' lock (for compaction, whose writers would otherwise
    /// wait for it). Exact: a segment sealed after the active one's file was taken was synced
    /// by the seal, under the lock, before the next one started. A failure poisons the
    /// database, as a failed sync under the lock does.
    fn sync_active_unlocked(&self) -> Result<(), Error> {
        let (file, path) = {
            let state = self.state();
            state.check_writable()?;
            let Some(log) = &state.log else {
                return Ok(());
            };
            (log.active_file(), log.active_path().to_path_buf())
        };
        sync_segment(&file, &path, self.opts.faults()).inspect_err(|e| {
            self.state().poisoned.get_or_insert_with(|| e.to_string());
        })
    }

    /// [`Inner::sync`]; `caller`: a caller of `sync()`, not the background syncer (which a
    /// group commit's leader does not wait to gather).
    fn sync_as(&self, caller: bool) -> Result<(), Error> {
        match self.opts.durability {
            Durability::GroupCommit { .. } if self.dir.is_some() => {
                let through = {
                    let state = self.state();
                    state.check_writable()?;
                    state.log.as_ref().map_or(0, |log| log.next_seq() - 1)
                };
                // The first caller with no fsync in flight syncs for everyone queued behind
                // it, on its own thread; the others wait for it.
                self.group_commit
                    .wait_for(through, caller, |synced| self.sync_outside_lock(synced))
            }
            _ => {
                let mut state = self.state();
                state.check_writable()?;
                state.sync()
            }
        }
    }

    /// Drops what has expired; returns the node records dropped and the per-IP liveness
    /// slots dropped.
    fn expire(&self) -> Result<(usize, usize), Error> {
        let threshold = now_nanos()
            .saturating_sub(i64::try_from(self.opts.expiration.as_nanos()).unwrap_or(i64::MAX));
        let sync_each = self.opts.durability == Durability::SyncEachWrite;
        let mut state = self.state();
        let (mut dropped, mut ips_dropped) = (0, 0);
        let expired = state.index.expired(threshold, &self.self_id);
        for &expiry in &expired {
            let event = match expiry {
                Expired::Node(id) => {
                    dropped += usize::from(state.index.get(&id).is_some_and(Entry::has_record));
                    Event::NodeExpired { id }
                }
                Expired::Ip(id, ip) => {
                    ips_dropped += 1;
                    Event::IpExpired { id, ip }
                }
            };
            state.write(&event, false)?;
        }
        if sync_each && !expired.is_empty() {
            state.sync()?;
        }
        Ok((dropped, ips_dropped))
    }

    /// Compacts the sealed part of the log; first expires stale nodes if `expire_first`.
    fn compact(&self, expire_first: bool) -> Result<CompactStats, Error> {
        let Some(dir) = &self.dir else {
            return Ok(CompactStats::default());
        };
        let _one_at_a_time = self.compaction.lock().unwrap_or_else(|e| e.into_inner());
        {
            // A compaction that cannot create its files (a read-only directory) fails here,
            // before it changes anything: before the expiry writes its events. Under the
            // state's lock, no segment is created meanwhile under the name it tries.
            let state = self.state();
            state.check_writable()?;
            let log = state
                .log
                .as_ref()
                .expect("a database with a directory has a log");
            check_can_create(dir, log.next_segment_id(), "compact", self.opts.faults())?;
        }
        let (nodes_expired, ips_expired) = if expire_first { self.expire()? } else { (0, 0) };
        // The active segment's records synced first, without the lock, so that the seal's
        // own fdatasync (under it) has only the records written meanwhile left to write.
        self.sync_active_unlocked()?;
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
                ips_expired,
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
        let mut stats = compact::rewrite(dir, input, &self.opts, self)?;
        stats.nodes_expired = nodes_expired;
        stats.ips_expired = ips_expired;
        let mut state = self.state();
        state.log_bytes = state.log_bytes.saturating_sub(stats.bytes_read) + stats.bytes_written;
        Ok(stats)
    }
}

/// What compaction reads and writes of the database (see `compact.rs`): the index, in
/// turns of the state's lock, and the log.
impl compact::LiveDb for Inner {
    fn read_index<T>(&self, read: impl FnOnce(&Index) -> T) -> T {
        read(&self.state().index)
    }

    fn record_losses(&self, losses: &[Damage]) -> Result<Vec<Damage>, Error> {
        let mut state = self.state();
        for loss in losses {
            state.write(&Event::Loss(loss.clone()), false)?;
        }
        // With nothing written, nothing to make durable: no fdatasync under the writers' lock.
        if !losses.is_empty() {
            state.sync()?;
        }
        Ok(state.index.recorded_damage().collect())
    }

    fn sync_log(&self) -> Result<(), Error> {
        match self.opts.durability {
            Durability::GroupCommit { .. } => self.sync(),
            // Not under the writers' lock: see sync_active_unlocked.
            Durability::Process | Durability::SyncEachWrite => self.sync_active_unlocked(),
        }
    }
}

impl NodeDb {
    /// Opens (or creates) the database in `dir` with the default [`Options`].
    ///
    /// A directory written with another protocol `version` is wiped and starts empty (its
    /// segments: nothing else is removed; or refused with [`Error::VersionMismatch`] when
    /// [`Options::wipe_on_version_change`] is off); files and directories not named like peerlog's are
    /// ignored (each logged as a warning) and left untouched; a file named like a segment whose
    /// header cannot be read is refused with [`Error::DamagedHeader`] and left untouched (see
    /// [`inspect::salvage`](crate::inspect::salvage)); one open in another `NodeDb` gives
    /// [`Error::Locked`].
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
        let opened = recovery::open_dir(dir.as_ref(), version, &opts)?;
        Ok(NodeDb::assemble(self_id, opts, Some(opened)))
    }

    /// A database that lives in memory only and is gone when dropped.
    pub fn in_memory(self_id: NodeId) -> NodeDb {
        NodeDb::in_memory_with(self_id, Options::default()).expect("the default options are valid")
    }

    /// A database in memory only, with the given options (those about files and durability
    /// do nothing); fails only for options [`NodeDb::open_with`] refuses too.
    pub fn in_memory_with(self_id: NodeId, opts: Options) -> Result<NodeDb, Error> {
        opts.validate()?;
        Ok(NodeDb::assemble(self_id, opts, None))
    }

    /// The database around what opening its directory gave (`None`: one in memory only).
    fn assemble(self_id: NodeId, opts: Options, opened: Option<recovery::Opened>) -> NodeDb {
        let (index, log, log_bytes, recovery, dir, lock, snapshot) = match opened {
            Some(o) => {
                let log_bytes = o.summary.record_bytes;
                let mut recovery = Recovery::from(o.summary);
                recovery.from_snapshot = o.snapshot.is_some();
                (
                    o.index,
                    Some(o.writer),
                    log_bytes,
                    recovery,
                    Some(o.dir),
                    Some(o.lock),
                    o.snapshot,
                )
            }
            None => (
                Index::default(),
                None,
                0,
                Recovery::default(),
                None,
                None,
                None,
            ),
        };
        let may_snapshot = recovery
            .problems
            .iter()
            .all(|problem| problem.kind == DamageKind::TornTail);
        let state = State {
            index,
            log,
            log_bytes,
            poisoned: None,
            closed: false,
            max_nodes: opts.max_nodes,
            encoder: PayloadEncoder::default(),
            eviction_encoder: PayloadEncoder::default(),
            snapshot,
            may_snapshot,
        };
        NodeDb::start(Inner {
            self_id,
            opts,
            dir,
            state: Mutex::new(state),
            compaction: Mutex::new(()),
            compacting: AtomicBool::new(false),
            expirer_started: AtomicBool::new(false),
            group_commit: Arc::default(),
            recovery,
            _lock: lock,
        })
    }

    fn start(inner: Inner) -> NodeDb {
        let inner = Arc::new(inner);
        let mut threads = Threads::default();
        if let (Durability::GroupCommit { max_delay }, Some(_)) =
            (inner.opts.durability, &inner.dir)
        {
            // Every `max_delay`, the syncer calls `sync()` like an application would (it
            // fsyncs only when something was written since the last fsync).
            let weak = Arc::downgrade(&inner);
            let tick = move || weak.upgrade().map(|inner| inner.sync_as(false));
            threads.syncer = Some(inner.group_commit.start(max_delay, tick));
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
    pub fn recovery(&self) -> &Recovery {
        &self.inner.recovery
    }

    /// The node record of `id`, if there is one.
    pub fn node(&self, id: &NodeId) -> Option<Node> {
        self.with_entry(id, |index, entry| index.node(entry))?
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
        self.inner.state().index.states().collect()
    }

    /// Everything known about `id`, if anything is.
    pub fn peer(&self, id: &NodeId) -> Option<PeerState> {
        self.with_entry(id, |index, entry| index.state(entry))
    }

    /// Inserts or overwrites the unsigned record (the endpoint) of `node.id`. It counts as a
    /// record of seq 0: it does not replace a signed record of seq 1 or more (nothing is
    /// written then), as in go-ethereum.
    pub fn update_node(&self, node: &Node) -> Result<(), Error> {
        let id = node.id;
        self.write_if(Event::NodeUpdated(node.clone()), |index| {
            index.get(&id).is_none_or(|e| index.record_seq(e) == 0)
        })
        .map(drop)
    }

    /// Stores a signed node record (EIP-778), verified first, unless the stored record has a
    /// higher seq: go-ethereum's rule. Returns whether the record is now the stored one
    /// (`false`: an older seq, ignored, nothing written). An equal seq replaces the stored
    /// record (the very same record is not written again); an unsigned record (from
    /// [`NodeDb::update_node`]) counts as seq 0. Only "v4" (secp256k1) records are
    /// stored; any other identity scheme is [`Error::InvalidInput`].
    ///
    /// [`NodeDb::node`] then returns the endpoint the record names: its IPv4 address and
    /// ports, else its IPv6 ones, a missing port as 0; a record with no IP is stored but names
    /// no endpoint (no `node`, never a seed).
    ///
    /// ```
    /// use peerlog::enr::{CombinedKey, Enr};
    /// use peerlog::{NodeDb, NodeId};
    ///
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// let db = NodeDb::in_memory("11".repeat(64).parse()?);
    /// let key = CombinedKey::secp256k1_from_bytes(&mut [7u8; 32])?;
    /// let mut record = Enr::builder().ip4([203, 0, 113, 7].into()).udp4(30303).build(&key)?;
    /// let id = NodeId::from_enr(&record)?;
    /// assert!(db.update_record(&record)?);
    ///
    /// record.set_udp4(30304, &key)?; // seq + 1
    /// assert!(db.update_record(&record)?);
    /// assert_eq!(db.record_seq(&id), record.seq());
    /// assert_eq!(db.node(&id).unwrap().udp, 30304);
    /// assert_eq!(db.record::<CombinedKey>(&id), Some(record));
    /// # Ok(())
    /// # }
    /// ```
    pub fn update_record<K: enr::EnrKey>(&self, record: &enr::Enr<K>) -> Result<bool, Error> {
        // The very record already stored stays, and nothing is written (discovery sees the
        // same records over and over): checked first, since verifying a signature costs far
        // more than comparing bytes with a record verified when it was stored.
        let unverified = NodeRecord::unverified(record)?;
        let (id, seq) = (*unverified.id(), unverified.seq());
        let stored = self.with_entry(&id, |index, entry| {
            index.record_rlp(entry) == Some(unverified.rlp())
        });
        if stored == Some(true) {
            return Ok(true);
        }
        let record = unverified.verified(record)?;
        self.write_if(Event::Record(record), |index| {
            index.get(&id).is_none_or(|e| index.record_seq(e) <= seq)
        })
    }

    /// The signed record of `id`, decoded as key type `K` (`enr::CombinedKey` for discv5);
    /// `None` without a signed record. Decoding verifies the signature.
    pub fn record<K: enr::EnrKey>(&self, id: &NodeId) -> Option<enr::Enr<K>> {
        let rlp = self.with_entry(id, |index, entry| {
            index.record_rlp(entry).map(<[u8]>::to_vec)
        })??;
        record::decode_enr(&rlp).ok()
    }

    /// The seq of the signed record of `id`; 0 without one (an unsigned record is seq 0).
    pub fn record_seq(&self, id: &NodeId) -> u64 {
        self.with_entry(id, |index, entry| index.record_seq(entry))
            .unwrap_or(0)
    }

    /// Up to `n` distinct random signed records to bootstrap from, decoded as key type `K`:
    /// the same eligibility as [`NodeDb::query_seeds`], among nodes with a signed record.
    /// Decoding verifies each record's signature (a fraction of a millisecond each).
    pub fn query_seed_records<K: enr::EnrKey>(
        &self,
        n: usize,
        max_age: Duration,
    ) -> Vec<enr::Enr<K>> {
        let min_pong = min_time(max_age);
        let rlps: Vec<Vec<u8>> = {
            let state = self.inner.state();
            let index = &state.index;
            index
                .sample_seeds_where(n, min_pong, &self.inner.self_id, |e| {
                    index.record_rlp(e).is_some()
                })
                .into_iter()
                .filter_map(|e| index.record_rlp(e).map(<[u8]>::to_vec))
                .collect()
        };
        rlps.iter()
            .filter_map(|rlp| record::decode_enr(rlp).ok())
            .collect()
    }

    /// When a ping was last sent to `id` at `ip`; `None` if never. IPv4 and IPv4-mapped IPv6
    /// addresses are one IP. Independent of [`NodeDb::last_ping`], which has no IP.
    pub fn last_ping_from(&self, id: &NodeId, ip: IpAddr) -> Option<SystemTime> {
        self.with_entry(id, |index, entry| index.ip_liveness(entry, ip)?.last_ping)?
    }

    /// Records that a ping was sent to `id` at `ip` at `at`.
    pub fn update_last_ping_from(
        &self,
        id: &NodeId,
        ip: IpAddr,
        at: SystemTime,
    ) -> Result<(), Error> {
        self.write(Event::PingFrom { id: *id, ip, at })
    }

    /// When `id` last answered with a pong from `ip`; `None` if never.
    pub fn last_pong_from(&self, id: &NodeId, ip: IpAddr) -> Option<SystemTime> {
        self.with_entry(id, |index, entry| index.ip_liveness(entry, ip)?.last_pong)?
    }

    /// Records that `id` answered with a pong from `ip` at `at`: an endpoint proof for that IP
    /// only (a pong from an IP the node's record no longer names does not make it a seed).
    pub fn update_last_pong_from(
        &self,
        id: &NodeId,
        ip: IpAddr,
        at: SystemTime,
    ) -> Result<(), Error> {
        self.write(Event::PongFrom { id: *id, ip, at })
    }

    /// Findnode failures of `id` at `ip`; 0 when unknown.
    pub fn find_fails_at(&self, id: &NodeId, ip: IpAddr) -> u32 {
        self.with_entry(id, |index, entry| {
            index.ip_liveness(entry, ip).map_or(0, |l| l.fails)
        })
        .unwrap_or(0)
    }

    /// Sets the count of findnode failures of `id` at `ip`.
    pub fn update_find_fails_at(&self, id: &NodeId, ip: IpAddr, fails: u32) -> Result<(), Error> {
        self.write(Event::FindFailsAt { id: *id, ip, fails })
    }

    /// The local node's own record seq: the stored one, or, when none was stored (a new or
    /// wiped database), the current time in milliseconds, so that a restart or a wipe never
    /// makes the local record's seq go backwards. Build the local record with a seq above it,
    /// and store that with [`NodeDb::store_local_seq`].
    pub fn local_seq(&self) -> u64 {
        self.inner
            .state()
            .index
            .local_seq()
            .unwrap_or_else(now_millis)
    }

    /// Stores the local node's own record seq. `delete_node`, expiry and compaction never
    /// touch it.
    pub fn store_local_seq(&self, seq: u64) -> Result<(), Error> {
        self.write(Event::LocalSeq { seq })
    }

    /// The losses the log records: damage a compaction found and rewrote away (the damaged
    /// segment itself goes to `archive/`), carried over by every later compaction, and damage
    /// acknowledged with [`NodeDb::accept_damage`]. Oldest first; empty for a log that never
    /// lost a record.
    ///
    /// Each is [`Recorded`](crate::DamageState::Recorded) or
    /// [`Acknowledged`](crate::DamageState::Acknowledged), with the segment's file name as its
    /// path.
    pub fn losses(&self) -> Vec<Damage> {
        self.inner.state().index.recorded_damage().collect()
    }

    /// Acknowledges every damaged place of the database: the losses the log records and every
    /// damaged or missing stretch found in the live log and `archive/` (what
    /// [`inspect::verify`](crate::inspect::verify) reports as damage). Each is recorded in the log (synced), flagged acknowledged:
    /// verification still lists it, but no longer counts it as damage, and compactions carry
    /// the acknowledgement over. Damage found later is not acknowledged by this call.
    ///
    /// Returns the places acknowledged now (none if everything was intact or acknowledged).
    /// Nothing to do for an in-memory database.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
    /// // Intact: nothing to acknowledge.
    /// assert!(db.accept_damage()?.is_empty());
    /// # Ok(())
    /// # }
    /// ```
    pub fn accept_damage(&self) -> Result<Vec<Damage>, Error> {
        let Some(dir) = self.path() else {
            return Ok(Vec::new());
        };
        // No compaction moves files away while they are read, nor records a loss meanwhile.
        let _one_at_a_time = self
            .inner
            .compaction
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let recorded = self.losses();
        let found = survey(dir, &|_, _| {}, &mut ())?.map_or_else(Vec::new, |s| s.damage);
        let accepted = acknowledgements(recorded.into_iter().chain(found));
        for damage in &accepted {
            self.write(Event::Loss(damage.clone()))?;
        }
        self.sync()?;
        Ok(accepted)
    }

    /// Deletes everything known about `id`: its record, last ping, last pong and fails.
    pub fn delete_node(&self, id: &NodeId) -> Result<(), Error> {
        if self.inner.state().index.get(id).is_none() {
            return Ok(());
        }
        self.write(Event::NodeDeleted { id: *id })
    }

    /// When a ping was last sent to `id` (to no particular IP); `None` if never.
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

    /// A seed query with the defaults: fresh within 5 days, at most 2 per subnet of /24
    /// (IPv4) or /48 (IPv6), any network. See [`SeedQuery`].
    pub fn seeds(&self) -> SeedQuery<'_> {
        SeedQuery::new(self)
    }

    /// Whether a ping or pong of `id` announcing record seq `seq` calls for fetching its
    /// record (EIP-868): `seq` is greater than the stored record's seq (0 when none).
    pub fn needs_record(&self, id: &NodeId, seq: u64) -> bool {
        seq > self.record_seq(id)
    }

    /// Up to `n` distinct nodes to bootstrap from: nodes with a record, other than this
    /// node, whose last pong is at most `max_age` old. Returns min(n, eligible) nodes; every
    /// eligible node is equally likely to be picked.
    pub fn query_seeds(&self, n: usize, max_age: Duration) -> Vec<Node> {
        let min_pong = min_time(max_age);
        let state = self.inner.state();
        let index = &state.index;
        index
            .sample_seeds_where(n, min_pong, &self.inner.self_id, |_| true)
            .into_iter()
            .filter_map(|entry| index.node(entry))
            .collect()
    }

    /// Drops every node whose last pong is older than the expiration (and this node's own
    /// record), with everything known about it; also ids without a record whose newest
    /// timestamp is that old. Returns how many node records were dropped.
    pub fn expire_nodes(&self) -> Result<usize, Error> {
        self.expire().map(|stats| stats.nodes_expired)
    }

    /// [`NodeDb::expire_nodes`], saying also how many IP slots it dropped: the liveness of a
    /// node that stays at an IP whose pong (else ping) is older than the expiration (each an
    /// `ip_expire` event, as [`CompactStats::ips_expired`](crate::CompactStats::ips_expired)
    /// counts for the expiry a compaction runs first).
    ///
    /// ```
    /// # fn main() -> Result<(), peerlog::Error> {
    /// use std::time::{Duration, SystemTime};
    /// use peerlog::{Node, NodeDb, NodeId};
    /// let db = NodeDb::in_memory(NodeId([1; 64]));
    /// let peer: Node = format!("enode://{}@203.0.113.7:30303", "22".repeat(64)).parse()?;
    /// db.update_node(&peer)?;
    /// db.update_last_pong(&peer.id, SystemTime::now())?;
    /// // Silent for two days at an address it used to have.
    /// let two_days_ago = SystemTime::now() - Duration::from_secs(2 * 86_400);
    /// db.update_last_pong_from(&peer.id, "198.51.100.9".parse().unwrap(), two_days_ago)?;
    ///
    /// let expired = db.expire()?;
    /// assert_eq!((expired.nodes_expired, expired.ips_expired), (0, 1));
    /// assert_eq!(db.node(&peer.id), Some(peer));
    /// # Ok(())
    /// # }
    /// ```
    pub fn expire(&self) -> Result<ExpireStats, Error> {
        let (nodes_expired, ips_expired) = self.inner.expire()?;
        Ok(ExpireStats {
            nodes_expired,
            ips_expired,
        })
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
    /// and expired entries. Writers are held up while the active segment is sealed, then for
    /// turns of a fraction of a millisecond while the compaction reads the index (it restates
    /// the database's own index rather than building a second one: see `compact.rs`).
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
        self.write_if(event, |_| true).map(drop)
    }

    fn write_if(&self, event: Event, wanted: impl FnOnce(&Index) -> bool) -> Result<bool, Error> {
        let written = self.inner.write_if(event, wanted)?;
        if self.inner.compacting.load(Ordering::Acquire) {
            self.start_background_compaction();
        }
        Ok(written)
    }

    /// Reads the entry of `id` under the state lock.
    fn with_entry<T>(&self, id: &NodeId, read: impl FnOnce(&Index, &Entry) -> T) -> Option<T> {
        let state = self.inner.state();
        let entry = state.index.get(id)?;
        Some(read(&state.index, entry))
    }

    /// Bytes of the records in the log, as counted for the compaction trigger.
    #[cfg(feature = "__internal_testing")]
    pub(crate) fn log_bytes(&self) -> u64 {
        self.inner.state().log_bytes
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
        if synced.is_ok() {
            self.write_snapshot();
        }
        self.inner.state().closed = true;
        synced
    }

    /// Writes the index snapshot that lets the next open skip replaying the log, unless the
    /// one on disk is current or the index may not be one (see [`State::may_snapshot`]). A
    /// failure is only logged: the next open then replays the log, as without a snapshot.
    fn write_snapshot(&self) {
        let Some(dir) = &self.inner.dir else {
            return;
        };
        let mut state = self.inner.state();
        let state = &mut *state;
        let Some(log) = &state.log else {
            return;
        };
        if state.closed
            || !self.inner.opts.index_snapshot
            || !state.may_snapshot
            || state.poisoned.is_some()
            || log.failed_sync().is_some()
        {
            return;
        }
        let (protocol_version, salt) = log.generation();
        let tip = Tip {
            protocol_version,
            salt,
            at: log.position(),
        };
        match snapshot::write(dir, &state.index, &tip, state.snapshot.as_ref()) {
            Ok(known) => state.snapshot = known,
            Err(e) => ::log::warn!(
                "closing the node database: no index snapshot written, the next open replays \
                 the log: {e}"
            ),
        }
    }
}

impl SeedSource for NodeDb {
    fn with_index(&self, read: &mut dyn FnMut(&mut Index, &NodeId)) {
        let mut state = self.inner.state();
        read(&mut state.index, &self.inner.self_id);
    }
}

impl Drop for NodeDb {
    fn drop(&mut self) {
        if let Err(e) = self.shutdown() {
            ::log::error!("closing the node database: {e}");
        }
    }
}

/// For an event that makes its id held (a record or liveness): `Some`, with the IP of its
/// slot for a per-IP event. `None` for the others (deletes, expiry, ...).
fn holds_id(event: &Event) -> Option<Option<IpAddr>> {
    match event {
        Event::NodeUpdated(_)
        | Event::Record(_)
        | Event::Ping { .. }
        | Event::Pong { .. }
        | Event::FindFails { .. } => Some(None),
        Event::PingFrom { ip, .. } | Event::PongFrom { ip, .. } | Event::FindFailsAt { ip, .. } => {
            Some(Some(*ip))
        }
        _ => None,
    }
}

/// The current wall-clock time in milliseconds since the Unix epoch.
fn now_millis() -> u64 {
    u64::try_from(now_nanos() / 1_000_000).unwrap_or(0)
}

/// What [`NodeDb::expire`] dropped.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpireStats {
    /// Node records dropped (what [`NodeDb::expire_nodes`] returns).
    pub nodes_expired: usize,
    /// IP slots dropped from nodes that stay.
    pub ips_expired: usize,
}

/// The acknowledgement of each loss among `damage` that counts (not acknowledged yet, not a
/// torn tail), once each: recorded when first recorded, or now for damage only found.
fn acknowledgements(damage: impl Iterator<Item = Damage>) -> Vec<Damage> {
    let mut accepted: Vec<(Loss, SystemTime)> = Vec::new();
    for damage in damage.filter(|d| d.counts(false)) {
        let Some(loss) = Loss::of(&damage) else {
            continue;
        };
        if !accepted.iter().any(|(a, _)| a.same_loss(&loss)) {
            let at = damage.state.recorded_at().unwrap_or_else(SystemTime::now);
            let loss = Loss {
                acknowledged: true,
                ..loss
            };
            accepted.push((loss, at));
        }
    }
    accepted.iter().map(|(loss, at)| loss.damage(*at)).collect()
}
