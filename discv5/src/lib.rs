#![doc = include_str!("../README.md")]
#![warn(missing_docs)]

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use discv5::{Discv5, Enr, Event};
use peerlog::enr::{self, CombinedKey};
use peerlog::{NodeDb, NodeId};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

pub use discv5;
pub use peerlog;

/// How the peer cache runs. `Config::default()` suits a node on the open network.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Config {
    /// How often the routing table is written to the database (every entry's record, and a
    /// pong for each connected entry): what discv5 drops when its event channel is full is
    /// caught here. Default 5 s.
    pub snapshot_interval: Duration,
    /// A connected table entry gets a new pong when its last one at the record's IP is older
    /// than this (a session or a new record is written at once). Default 60 s.
    pub pong_refresh: Duration,
    /// Records asked for at each seeding. Default 30 (go-ethereum's seed count).
    pub seeds: usize,
    /// Only peers with a pong within this time are seeds. Default 5 days (go-ethereum's
    /// `seedMaxAge`).
    pub seed_max_age: Duration,
    /// The table is reseeded from the database at a snapshot when it holds fewer entries
    /// than this (go-ethereum reseeds at every refresh for the same reason). Default 16; 0
    /// never reseeds.
    pub reseed_below: usize,
    /// Only records holding this ENR key are seeds (`b"eth2"`, `b"opstack"`): a node of one
    /// network does not start from the peers of another. Default: none.
    pub seed_key: Option<Vec<u8>>,
    /// Most seeds from one subnet (/24, /48) at each seeding, so that ids flooding the cache
    /// from a few subnets do not fill the table at restart. Default 2; `usize::MAX` for no
    /// limit (a test network on one host).
    pub seeds_per_subnet: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            snapshot_interval: Duration::from_secs(5),
            pong_refresh: Duration::from_secs(60),
            seeds: 30,
            seed_max_age: Duration::from_secs(5 * 86_400),
            reseed_below: 16,
            seed_key: None,
            seeds_per_subnet: peerlog::DEFAULT_PER_SUBNET,
        }
    }
}

impl Config {
    /// `snapshot_interval` set to `interval`.
    pub fn snapshot_interval(mut self, interval: Duration) -> Config {
        self.snapshot_interval = interval;
        self
    }

    /// `seed_max_age` set to `max_age`.
    pub fn seed_max_age(mut self, max_age: Duration) -> Config {
        self.seed_max_age = max_age;
        self
    }

    /// `seed_key` set to `key`.
    pub fn seed_key(mut self, key: impl AsRef<[u8]>) -> Config {
        self.seed_key = Some(key.as_ref().to_vec());
        self
    }

    /// `seeds_per_subnet` set to `limit`.
    pub fn seeds_per_subnet(mut self, limit: usize) -> Config {
        self.seeds_per_subnet = limit;
        self
    }

    /// `reseed_below` set to `entries`.
    pub fn reseed_below(mut self, entries: usize) -> Config {
        self.reseed_below = entries;
        self
    }
}

/// What the peer cache has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// discv5 events received.
    pub events: u64,
    /// Records handed to `update_record` (from events and snapshots).
    pub records: u64,
    /// Pongs written.
    pub pongs: u64,
    /// Routing table snapshots taken.
    pub snapshots: u64,
    /// Records added to the routing table from the database (at start and at reseeds).
    pub seeded: u64,
    /// Times the local record's seq was stored.
    pub local_seqs: u64,
    /// Database errors (each also logged; the node goes on).
    pub errors: u64,
}

/// The error of [`attach`].
#[derive(Debug)]
#[non_exhaustive]
pub enum AttachError {
    /// discv5 gave no event stream (not started, or shut down).
    EventStream(discv5::Error),
}

impl std::fmt::Display for AttachError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            AttachError::EventStream(e) => write!(f, "discv5 event stream: {e:?}"),
        }
    }
}

impl std::error::Error for AttachError {}

#[derive(Default)]
struct Counters {
    events: AtomicU64,
    records: AtomicU64,
    pongs: AtomicU64,
    snapshots: AtomicU64,
    seeded: AtomicU64,
    local_seqs: AtomicU64,
    errors: AtomicU64,
}

/// The state the cache's task and its handle share.
struct Shared {
    discv5: Arc<Discv5>,
    db: Arc<NodeDb>,
    config: Config,
    self_id: Option<NodeId>,
    counters: Counters,
    last_error: Mutex<Option<String>>,
}

impl Shared {
    /// A database result: an error is counted and logged, never raised in the node.
    fn check<T>(&self, what: &str, result: Result<T, peerlog::Error>) -> Option<T> {
        match result {
            Ok(value) => Some(value),
            Err(e) => {
                self.counters.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("peerlog-discv5: {what}: {e}");
                if let Ok(mut last) = self.last_error.lock() {
                    *last = Some(format!("{what}: {e}"));
                }
                None
            }
        }
    }

    /// Stores `record` (the database keeps the highest seq); returns its id. Records the
    /// database does not store (not "v4") and the local node's own are skipped.
    fn record(&self, record: &Enr) -> Option<NodeId> {
        let id = NodeId::from_enr(record).ok()?;
        if Some(id) == self.self_id {
            return None;
        }
        self.counters.records.fetch_add(1, Ordering::Relaxed);
        self.check("update_record", self.db.update_record(record))?;
        Some(id)
    }

    fn pong(&self, id: &NodeId, ip: IpAddr) {
        self.counters.pongs.fetch_add(1, Ordering::Relaxed);
        self.check(
            "update_last_pong_from",
            self.db.update_last_pong_from(id, ip, SystemTime::now()),
        );
    }

    fn event(&self, event: &Event) {
        self.counters.events.fetch_add(1, Ordering::Relaxed);
        match event {
            Event::Discovered(record) => {
                self.record(record);
            }
            Event::SessionEstablished(record, addr) => {
                if let Some(id) = self.record(record) {
                    self.pong(&id, addr.ip());
                }
            }
            Event::SocketUpdated(_) => self.local_seq(),
            _ => {}
        }
    }

    /// The routing table into the database: every entry's record, and a pong for each
    /// connected entry (from its record's IP) unless it has a recent one.
    fn snapshot(&self) {
        self.counters.snapshots.fetch_add(1, Ordering::Relaxed);
        for (_, record, status) in self.discv5.table_entries() {
            let id = self.record(&record);
            if !status.is_connected() {
                continue;
            }
            let ip = record
                .ip4()
                .map(IpAddr::V4)
                .or_else(|| record.ip6().map(IpAddr::V6));
            if let (Some(id), Some(ip)) = (id, ip) {
                let fresh = self
                    .db
                    .last_pong_from(&id, ip)
                    .and_then(|t| t.elapsed().ok())
                    .is_some_and(|age| age < self.config.pong_refresh);
                if !fresh {
                    self.pong(&id, ip);
                }
            }
        }
        self.local_seq();
    }

    /// Stores the local record's seq when discv5 raised it above what the database holds
    /// (an external address update), so that a restart never reuses it.
    fn local_seq(&self) {
        let seq = self.discv5.local_enr().seq();
        if seq > self.db.local_seq() {
            self.counters.local_seqs.fetch_add(1, Ordering::Relaxed);
            self.check("store_local_seq", self.db.store_local_seq(seq));
        }
    }

    /// Seeds from the database not yet in the routing table go into it; returns how many.
    fn seed(&self) -> usize {
        let added = seed_table(&self.discv5, &self.db, &self.config);
        self.counters
            .seeded
            .fetch_add(added as u64, Ordering::Relaxed);
        added
    }

    fn stats(&self) -> Stats {
        let c = &self.counters;
        let get = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            events: get(&c.events),
            records: get(&c.records),
            pongs: get(&c.pongs),
            snapshots: get(&c.snapshots),
            seeded: get(&c.seeded),
            local_seqs: get(&c.local_seqs),
            errors: get(&c.errors),
        }
    }
}

/// The seed records of `db`: the seed query's subnet spread (at most 2 a /24 or /48, so no
/// subnet that floods the cache wins the seeds) and, with a key, its network filter.
fn seed_records(db: &NodeDb, config: &Config) -> Vec<Enr> {
    let query = db
        .seeds()
        .max_age(config.seed_max_age)
        .per_subnet(config.seeds_per_subnet);
    let n = config.seeds;
    match config.seed_key.as_deref() {
        Some(key) => query.with_key(key).records::<CombinedKey>(n),
        None => query.records::<CombinedKey>(n),
    }
}

/// Adds up to `config.seeds` records from `db` (a pong within `config.seed_max_age`, holding
/// `config.seed_key` if set) to the routing table of `discv5`, skipping nodes already in it
/// (their entry may be newer); returns how many were added. Works before and after
/// `Discv5::start`; [`attach`] calls it at once and whenever the table runs thin.
pub fn seed_table(discv5: &Discv5, db: &NodeDb, config: &Config) -> usize {
    let in_table: HashSet<enr::NodeId> = discv5.table_entries_id().into_iter().collect();
    let local = discv5.local_enr().node_id();
    let mut added = 0;
    for record in seed_records(db, config) {
        let id = record.node_id();
        if id == local || in_table.contains(&id) {
            continue;
        }
        match discv5.add_enr(record) {
            Ok(()) => added += 1,
            Err(why) => log::debug!("peerlog-discv5: seed {id} not added: {why}"),
        }
    }
    added
}

/// The local node's record, signed by `key`, with a seq one above the last one `db` holds
/// ([`NodeDb::local_seq`]: never backwards, not across a crash or a wipe), stored before
/// anyone can see it. Set everything but the seq on `builder`.
///
/// ```
/// use peerlog::enr::{CombinedKey, Enr};
/// use peerlog::{NodeDb, NodeId};
///
/// let key = CombinedKey::generate_secp256k1();
/// let db = NodeDb::in_memory(NodeId::from_key(&key).unwrap());
/// let builder = || {
///     let mut builder = Enr::builder();
///     builder.ip4([127, 0, 0, 1].into()).udp4(9000);
///     builder
/// };
/// let first = peerlog_discv5::local_enr(&db, &key, builder()).unwrap();
/// let second = peerlog_discv5::local_enr(&db, &key, builder()).unwrap();
/// assert_eq!(second.seq(), first.seq() + 1);
/// assert_eq!(db.local_seq(), second.seq());
/// ```
pub fn local_enr(
    db: &NodeDb,
    key: &CombinedKey,
    mut builder: enr::Builder<CombinedKey>,
) -> Result<Enr, LocalEnrError> {
    let seq = db.local_seq() + 1;
    let record = builder
        .seq(seq)
        .build(key)
        .map_err(|e| LocalEnrError::Build(e.to_string()))?;
    db.store_local_seq(seq).map_err(LocalEnrError::Db)?;
    Ok(record)
}

/// The error of [`local_enr`].
#[derive(Debug)]
#[non_exhaustive]
pub enum LocalEnrError {
    /// The record could not be built (too large, a bad key).
    Build(String),
    /// Its seq could not be stored.
    Db(peerlog::Error),
}

impl std::fmt::Display for LocalEnrError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LocalEnrError::Build(e) => write!(f, "building the local record: {e}"),
            LocalEnrError::Db(e) => write!(f, "storing the local record's seq: {e}"),
        }
    }
}

impl std::error::Error for LocalEnrError {}

/// Keeps the peers of a running [`Discv5`] in a [`NodeDb`], until [`PeerCache::stop`] (or
/// drop). Made by [`attach`].
pub struct PeerCache {
    shared: Arc<Shared>,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), peerlog::Error>>>,
    seeded_at_start: usize,
}

/// Attaches a peer cache to a started `discv5`: it seeds the routing table from `db` at once,
/// takes discv5's event stream (discv5 has one; see the README for an application that
/// needs the events itself), and from then on, on the current tokio runtime:
///
/// - `Discovered` records and `SessionEstablished` records go to `update_record`, a session
///   also as a pong from its IP (`update_last_pong_from`);
/// - every `config.snapshot_interval`, the routing table is written (every entry's record, a
///   pong for each connected one), because discv5 drops events when its channel is full; the
///   local record's seq is stored when discv5 raised it; and the table is reseeded when it
///   holds fewer than `config.reseed_below` entries.
///
/// Database errors are logged and counted ([`Stats::errors`]), never raised in the node.
pub async fn attach(
    discv5: Arc<Discv5>,
    db: Arc<NodeDb>,
    config: Config,
) -> Result<PeerCache, AttachError> {
    let events = discv5
        .event_stream()
        .await
        .map_err(AttachError::EventStream)?;
    Ok(attach_with(discv5, db, config, Some(events)))
}

/// [`attach`] without taking discv5's event stream, for an application that reads the events
/// itself: hand each one to [`PeerCache::on_event`]; the snapshots run as with `attach`.
/// Needs a tokio runtime (it spawns a task).
pub fn attach_without_events(discv5: Arc<Discv5>, db: Arc<NodeDb>, config: Config) -> PeerCache {
    attach_with(discv5, db, config, None)
}

fn attach_with(
    discv5: Arc<Discv5>,
    db: Arc<NodeDb>,
    config: Config,
    events: Option<mpsc::Receiver<Event>>,
) -> PeerCache {
    let self_id = NodeId::from_enr(&discv5.local_enr()).ok();
    let shared = Arc::new(Shared {
        discv5,
        db,
        config,
        self_id,
        counters: Counters::default(),
        last_error: Mutex::new(None),
    });
    let seeded_at_start = shared.seed();
    shared.local_seq();
    let (stop_tx, stop_rx) = oneshot::channel();
    let task = tokio::spawn(run(Arc::clone(&shared), events, stop_rx));
    PeerCache {
        shared,
        stop: Some(stop_tx),
        task: Some(task),
        seeded_at_start,
    }
}

async fn run(
    shared: Arc<Shared>,
    mut events: Option<mpsc::Receiver<Event>>,
    mut stop: oneshot::Receiver<()>,
) -> Result<(), peerlog::Error> {
    let mut tick = tokio::time::interval(
        shared
            .config
            .snapshot_interval
            .max(Duration::from_millis(1)),
    );
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await; // the first tick is immediate: the table was just seeded
    loop {
        tokio::select! {
            _ = &mut stop => break,
            event = async { events.as_mut()?.recv().await }, if events.is_some() => match event {
                Some(event) => shared.event(&event),
                // discv5 shut down, or someone else took its event stream: snapshots go on.
                None => events = None,
            },
            _ = tick.tick() => {
                shared.snapshot();
                let thin = shared.discv5.table_entries_id().len() < shared.config.reseed_below;
                if thin {
                    shared.seed();
                }
            }
        }
    }
    // Whatever the table holds now, then everything on stable storage.
    shared.snapshot();
    shared.db.sync()
}

impl PeerCache {
    /// Records handed from the database to the routing table when attached.
    pub fn seeded_at_start(&self) -> usize {
        self.seeded_at_start
    }

    /// What the cache has done so far.
    pub fn stats(&self) -> Stats {
        self.shared.stats()
    }

    /// The last database error, in words (also logged, and counted in [`Stats::errors`]).
    pub fn last_error(&self) -> Option<String> {
        self.shared.last_error.lock().ok()?.clone()
    }

    /// An event read by the application (with [`attach_without_events`]), recorded as
    /// [`attach`] records the events it reads.
    pub fn on_event(&self, event: &Event) {
        self.shared.event(event);
    }

    /// Writes the routing table now (as the periodic snapshot does).
    pub fn snapshot(&self) {
        self.shared.snapshot();
    }

    /// Stops the cache: a last snapshot of the routing table, then [`NodeDb::sync`], whose
    /// result this returns (the database stays open: close it when you are done with it).
    pub async fn stop(mut self) -> Result<Stats, peerlog::Error> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let synced = match self.task.take() {
            Some(task) => match task.await {
                Ok(result) => result,
                // The task was cancelled (its runtime is shutting down): sync here.
                Err(_) => {
                    self.shared.snapshot();
                    self.shared.db.sync()
                }
            },
            None => Ok(()),
        };
        match synced {
            Ok(()) => Ok(self.shared.stats()),
            Err(e) => {
                self.shared.counters.errors.fetch_add(1, Ordering::Relaxed);
                log::warn!("peerlog-discv5: sync at stop: {e}");
                Err(e)
            }
        }
    }
}

impl Drop for PeerCache {
    /// Tells the task to stop; it takes a last snapshot and syncs on its own.
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}
