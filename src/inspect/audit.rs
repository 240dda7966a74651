//! The poisoning audit: what an operator runs when a node behaves oddly, to see whether its
//! stored peers (the seeds a restart trusts) look like a Sybil flood or an eclipse.
//!
//! It streams the log once (twice with the archive: once for the history, once for the live
//! state), keeping the live state as a reader keeps it, and beside it the write time of each
//! held id's first event and the evictions counted by subnet: nothing that grows with the log
//! rather than with the ids held.

use std::collections::HashMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::history::{history_sources, may_restate, scan_sources, Accounting};
use super::{archived_segments, replay_with_progress, with_listing, InspectError, Progress};
use crate::event::{now_nanos, unix_nanos, Event, LogRecord};
use crate::index::Index;
use crate::journal::replay::ReplayPlan;
use crate::record::keys;
use crate::seeds::{DEFAULT_PER_SUBNET, DEFAULT_SEED_MAX_AGE};
use crate::subnet::{DEFAULT_V4_BITS, DEFAULT_V6_BITS};
use crate::{log_distance, NodeId, Subnet, DEFAULT_MAX_NODES};

/// Seeds a restart asks for, in the shares the audit computes: 30, as go-ethereum asks.
pub const AUDIT_SEEDS: usize = 30;
/// A subnet is flagged when it holds more than this share of the nodes, of the fresh nodes,
/// of the new ids or of the evictions...
pub const SUBNET_SHARE_LIMIT: f64 = 0.10;
/// ...and there are at least this many of them (below that, one subnet in ten is noise).
pub const SUBNET_MIN_POPULATION: usize = 50;
/// The store is flagged as full from this share of `max_nodes` on.
pub const STORE_FULL_SHARE: f64 = 0.90;
/// Ids at a log distance (or at most a distance) are flagged when there are at least this
/// many of them...
pub const CLOSE_MIN_IDS: usize = 8;
/// ...and at least this many times what random ids give.
pub const CLOSE_RATIO: f64 = 10.0;
/// The windows of "new ids": the last hour and the last day.
pub const NEW_WINDOWS: [Duration; 2] = [Duration::from_secs(3600), Duration::from_secs(86400)];

/// What the audit is run with.
#[derive(Clone, Debug)]
pub struct AuditOptions {
    /// The node's own id, for the log distances (the log does not record it): `None` skips
    /// that part.
    pub self_id: Option<NodeId>,
    /// The bound the store runs with ([`Options::max_nodes`](crate::Options::max_nodes)).
    pub max_nodes: usize,
    /// Read `archive/` too (kept by compaction with `keep_history`): the first events of ids
    /// a compaction restated, and the evictions it dropped.
    pub with_archive: bool,
    /// The time the windows (fresh pong, new ids) end at; the current time by default.
    pub now: SystemTime,
    /// Subnets listed in each ranking.
    pub top: usize,
}

impl Default for AuditOptions {
    fn default() -> AuditOptions {
        AuditOptions {
            self_id: None,
            max_nodes: DEFAULT_MAX_NODES,
            with_archive: false,
            now: SystemTime::now(),
            top: 10,
        }
    }
}

/// What [`audit`] reports.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Audit {
    /// The options' `now`: where the windows end.
    pub now: SystemTime,
    /// Whether `archive/` was read too.
    pub with_archive: bool,
    /// Ids held (with a record, or only pings, pongs or fails): what `max_nodes` bounds.
    pub ids: usize,
    /// The bound audited against.
    pub max_nodes: usize,
    /// Ids whose record names an endpoint (an IP).
    pub nodes: usize,
    /// Of those, fresh: eligible as seeds (not the local node, a pong within 5 days to no IP
    /// or from the record's IP), as `query_seeds` and `seeds()` judge them.
    pub fresh: usize,
    /// Subnets (/24, /48) holding a node.
    pub subnets: usize,
    /// Subnets holding a fresh node.
    pub fresh_subnets: usize,
    /// The subnets holding the most nodes, most first (ties: lowest subnet first).
    pub top_by_nodes: Vec<SubnetShare>,
    /// The subnets holding the most fresh nodes, most first.
    pub top_by_fresh: Vec<SubnetShare>,
    /// Ids evicted (`evict` events in what was read), and by subnet (`None`: an id without
    /// an endpoint), most first.
    pub evictions: u64,
    /// Evictions by subnet, most first.
    pub evictions_by_subnet: Vec<(Option<Subnet>, u64)>,
    /// IP slots evicted (`ip_evict` events).
    pub ip_evictions: u64,
    /// Ids with a signed record.
    pub signed_records: usize,
    /// Every ENR key the stored signed records carry, with how many carry it: most first,
    /// then by key.
    pub keys: Vec<(Vec<u8>, usize)>,
    /// Log distances of the held ids from the node; `None` without a self id.
    pub distances: Option<Distances>,
    /// Ids new in each of [`NEW_WINDOWS`].
    pub new_ids: Vec<NewIds>,
    /// Held ids whose first event the log read does not show: a compaction restated them
    /// (their write time is their newest event's). They count as not new.
    pub first_seen_unknown: usize,
    /// One line per finding; empty when nothing is flagged.
    pub findings: Vec<AuditFinding>,
}

/// A subnet's share of the nodes, and of the seeds a restart would get.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct SubnetShare {
    /// The subnet (/24 or /48).
    pub subnet: Subnet,
    /// Nodes whose endpoint is in it.
    pub nodes: usize,
    /// Of those, fresh.
    pub fresh: usize,
    /// Share of the seeds `query_seeds` gives it (uniform over fresh nodes): its share of
    /// the fresh nodes.
    pub uniform_share: f64,
    /// Expected share of the seeds `seeds().nodes(30)` gives it (2 per subnet, each pick
    /// uniform over subnets), computed exactly.
    pub spread_share: f64,
}

/// The log distances of the held ids from the node, against random ids.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct Distances {
    /// The node's id.
    pub self_id: NodeId,
    /// Ids counted (every held id but the node's own).
    pub ids: usize,
    /// Ids at each distance: `counts[d]` for d in 0..=256 (0: the same hash).
    pub counts: Vec<usize>,
    /// What random ids give at distance `d`: `ids * 2^(d-257)` (0 for d = 0).
    pub expected: Vec<f64>,
    /// Distances flagged: at least [`CLOSE_MIN_IDS`] ids and [`CLOSE_RATIO`] times the
    /// expectation.
    pub flagged: Vec<u32>,
    /// The closest range flagged, if any: ids at distance at most `d` (count, expected), the
    /// one of the most times the expectation.
    pub flagged_within: Option<(u32, usize, f64)>,
}

/// Ids whose first event was written within a window.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct NewIds {
    /// The window: the last hour, the last day.
    pub window: Duration,
    /// New ids in it.
    pub ids: usize,
    /// By subnet (`None`: no endpoint), most first, the first `top`.
    pub by_subnet: Vec<(Option<Subnet>, usize)>,
}

/// What a finding is about.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum FindingKind {
    /// The store holds at least [`STORE_FULL_SHARE`] of `max_nodes`.
    StoreFull,
    /// One subnet holds more than [`SUBNET_SHARE_LIMIT`] of the nodes.
    SubnetNodes,
    /// One subnet holds more than [`SUBNET_SHARE_LIMIT`] of the fresh nodes.
    SubnetFresh,
    /// One subnet brought more than [`SUBNET_SHARE_LIMIT`] of the day's new ids.
    SubnetNewIds,
    /// One subnet lost more than [`SUBNET_SHARE_LIMIT`] of the evictions: a flood there.
    SubnetEvictions,
    /// Ids at a log distance far above what random ids give.
    CloseIds,
    /// Ids within a log distance far above what random ids give.
    CloseIdsWithin,
}

impl FindingKind {
    /// A short name: `store_full`, `subnet_nodes`, `subnet_fresh`, `subnet_new_ids`,
    /// `subnet_evictions`, `close_ids`, `close_ids_within`.
    pub fn name(self) -> &'static str {
        match self {
            FindingKind::StoreFull => "store_full",
            FindingKind::SubnetNodes => "subnet_nodes",
            FindingKind::SubnetFresh => "subnet_fresh",
            FindingKind::SubnetNewIds => "subnet_new_ids",
            FindingKind::SubnetEvictions => "subnet_evictions",
            FindingKind::CloseIds => "close_ids",
            FindingKind::CloseIdsWithin => "close_ids_within",
        }
    }
}

/// One finding: what it is about, and the verdict in words.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub struct AuditFinding {
    /// What it is about.
    pub kind: FindingKind,
    /// The subnet it names, if any.
    pub subnet: Option<Subnet>,
    /// The verdict: "203.0.113.0/24 holds 41 % of fresh nodes ...".
    pub text: String,
}

/// What is gathered from the events beside the live state.
#[derive(Default)]
struct Tracker {
    /// The write time of each held id's first event; `None` when that event is a
    /// restatement (from a compacted segment), whose write time is not the first.
    first_seen: HashMap<NodeId, Option<i64>>,
    evictions: HashMap<Option<Subnet>, u64>,
    ip_evictions: u64,
}

impl Tracker {
    fn observe(&mut self, record: &LogRecord, restated: bool) {
        match &record.event {
            Event::Evicted { id, subnet } => {
                *self.evictions.entry(*subnet).or_default() += 1;
                self.first_seen.remove(id);
            }
            Event::NodeDeleted { id } | Event::NodeExpired { id } => {
                self.first_seen.remove(id);
            }
            Event::IpEvicted { .. } => self.ip_evictions += 1,
            event => {
                if let Some(id) = event.id() {
                    let at = unix_nanos(record.written_at).ok();
                    self.first_seen
                        .entry(*id)
                        .or_insert(if restated { None } else { at });
                }
            }
        }
    }
}

/// Replays the live log of `dir`, handing each record to `tracker` (if any) with whether it
/// is a restatement; returns the state.
fn replay_live(
    dir: &Path,
    progress: &dyn Fn(u64, u64),
    mut tracker: Option<&mut Tracker>,
) -> Result<Index, InspectError> {
    with_listing(dir, |segments| {
        if let Some(t) = tracker.as_deref_mut() {
            *t = Tracker::default();
        }
        let mut index = Index::default();
        let plan = ReplayPlan::new(segments);
        replay_with_progress(&plan, progress, |place, record| {
            if let Some(t) = tracker.as_deref_mut() {
                t.observe(&record, place.segment.header.is_compacted());
            }
            index.apply_event(&record.event, record.written_at);
        })?;
        Ok(index)
    })
}

/// Reads the full history of `dir` (live log and archive) into a tracker.
fn track_history(dir: &Path, progress: &dyn Fn(u64, u64)) -> Result<Tracker, InspectError> {
    with_listing(dir, |live| {
        let mut sources = history_sources(live, archived_segments(dir)?);
        let mut accounting = Accounting::default();
        if may_restate(&sources) {
            // Which compacted segments only restate what the archive holds: a read to decide.
            scan_sources(&sources, &|_, _| {}, &mut accounting, |_, _, _| {
                std::ops::ControlFlow::Continue(())
            })?;
            std::mem::take(&mut accounting).decide(&mut sources);
        }
        let mut tracker = Tracker::default();
        scan_sources(&sources, progress, &mut accounting, |record, source, _| {
            let source = &sources[source];
            if !source.restates {
                tracker.observe(&record, source.is_compacted());
            }
            std::ops::ControlFlow::Continue(())
        })?;
        Ok(tracker)
    })
}

/// The poisoning audit of the database in `dir`, read without its lock and without changing
/// anything (safe beside a node writing it), as [`AuditOptions`] say. See the thresholds:
/// [`SUBNET_SHARE_LIMIT`], [`SUBNET_MIN_POPULATION`], [`STORE_FULL_SHARE`],
/// [`CLOSE_MIN_IDS`], [`CLOSE_RATIO`].
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use peerlog::inspect::{self, AuditOptions};
/// # let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
/// # db.close()?;
/// let audit = inspect::audit(dir.path(), &AuditOptions::default(), &inspect::no_progress)?;
/// assert!(audit.findings.is_empty());
/// # Ok(())
/// # }
/// ```
pub fn audit(
    dir: &Path,
    opts: &AuditOptions,
    progress: Progress<'_>,
) -> Result<Audit, InspectError> {
    let (index, tracker) = if opts.with_archive {
        // Two reads: the history, then the live state; each half of the progress.
        let tracker = track_history(dir, &|done, t| progress(done, 2 * t.max(1)))?;
        let index = replay_live(dir, &|done, t| progress(t + done, 2 * t.max(1)), None)?;
        (index, tracker)
    } else {
        let mut tracker = Tracker::default();
        let index = replay_live(dir, progress, Some(&mut tracker))?;
        (index, tracker)
    };
    Ok(judge(&index, tracker, opts))
}

/// The subnet of a node's endpoint, as seeds and eviction cut it.
fn subnet_of(index: &Index, entry: &crate::index::Entry) -> Option<Subnet> {
    index
        .endpoint(entry)
        .map(|e| Subnet::of(e.ip, DEFAULT_V4_BITS, DEFAULT_V6_BITS))
}

#[derive(Default, Clone, Copy)]
struct Held {
    nodes: usize,
    fresh: usize,
}

fn judge(index: &Index, tracker: Tracker, opts: &AuditOptions) -> Audit {
    let now = unix_nanos(opts.now).unwrap_or_else(|_| now_nanos());
    let max_age = i64::try_from(DEFAULT_SEED_MAX_AGE.as_nanos()).unwrap_or(i64::MAX);
    let min_pong = now.saturating_sub(max_age);
    // No real node has the all-zero id: without a self id, nobody is left out.
    let self_id = opts.self_id.unwrap_or(NodeId([0; 64]));
    let self_hash = opts.self_id.map(|id| id.hash());

    let mut held: HashMap<Subnet, Held> = HashMap::new();
    let mut keys_seen: HashMap<&[u8], usize> = HashMap::new();
    let (mut nodes, mut fresh, mut signed) = (0, 0, 0);
    let mut counts = vec![0usize; 257];
    let mut new_by_subnet: Vec<HashMap<Option<Subnet>, usize>> =
        vec![HashMap::new(); NEW_WINDOWS.len()];
    let mut first_seen_unknown = 0;
    let window_start: Vec<i64> = NEW_WINDOWS
        .iter()
        .map(|w| now.saturating_sub(i64::try_from(w.as_nanos()).unwrap_or(i64::MAX)))
        .collect();
    for entry in index.entries() {
        let subnet = subnet_of(index, entry);
        if let Some(subnet) = subnet {
            nodes += 1;
            let h = held.entry(subnet).or_default();
            h.nodes += 1;
            if index.is_seed(entry, min_pong, &self_id) {
                fresh += 1;
                h.fresh += 1;
            }
        }
        if let Some(rlp) = index.record_rlp(entry) {
            signed += 1;
            for key in keys(rlp) {
                *keys_seen.entry(key).or_default() += 1;
            }
        }
        if let Some(self_hash) = &self_hash {
            if entry.id != self_id {
                counts[log_distance(self_hash, &entry.id.hash()) as usize] += 1;
            }
        }
        match tracker.first_seen.get(&entry.id).copied().flatten() {
            Some(first) => {
                for (w, start) in window_start.iter().enumerate() {
                    if first >= *start {
                        *new_by_subnet[w].entry(subnet).or_default() += 1;
                    }
                }
            }
            None => first_seen_unknown += 1,
        }
    }

    let (cap1, cap2) = held
        .values()
        .filter(|h| h.fresh > 0)
        .fold((0, 0), |(a, b), h| {
            if h.fresh >= DEFAULT_PER_SUBNET {
                (a, b + 1)
            } else {
                (a + 1, b)
            }
        });
    let (per_cap1, per_cap2) = spread_expectation(cap1, cap2, AUDIT_SEEDS);
    let picks = AUDIT_SEEDS.min(cap1 + DEFAULT_PER_SUBNET * cap2) as f64;
    let share = |subnet: Subnet, h: Held| SubnetShare {
        subnet,
        nodes: h.nodes,
        fresh: h.fresh,
        uniform_share: ratio(h.fresh as f64, fresh as f64),
        spread_share: match h.fresh {
            0 => 0.0,
            1 => ratio(per_cap1, picks),
            _ => ratio(per_cap2, picks),
        },
    };
    let ranked = |by: fn(&Held) -> usize| -> Vec<SubnetShare> {
        let mut all: Vec<(Subnet, Held)> = held
            .iter()
            .filter(|(_, h)| by(h) > 0)
            .map(|(s, h)| (*s, *h))
            .collect();
        all.sort_by(|a, b| by(&b.1).cmp(&by(&a.1)).then(a.0.cmp(&b.0)));
        all.into_iter()
            .take(opts.top)
            .map(|(s, h)| share(s, h))
            .collect()
    };
    let top_by_nodes = ranked(|h| h.nodes);
    let top_by_fresh = ranked(|h| h.fresh);

    let mut keys: Vec<(Vec<u8>, usize)> = keys_seen
        .into_iter()
        .map(|(k, n)| (k.to_vec(), n))
        .collect();
    keys.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));

    let distances = opts.self_id.map(|self_id| distances(self_id, counts));

    let new_ids: Vec<NewIds> = NEW_WINDOWS
        .iter()
        .zip(&new_by_subnet)
        .map(|(window, by)| NewIds {
            window: *window,
            ids: by.values().sum(),
            by_subnet: most_first(by, opts.top),
        })
        .collect();
    let evictions: u64 = tracker.evictions.values().sum();
    let evictions_by_subnet = most_first(&tracker.evictions, usize::MAX);

    let mut audit = Audit {
        now: opts.now,
        with_archive: opts.with_archive,
        ids: index.ids(),
        max_nodes: opts.max_nodes,
        nodes,
        fresh,
        subnets: held.len(),
        fresh_subnets: held.values().filter(|h| h.fresh > 0).count(),
        top_by_nodes,
        top_by_fresh,
        evictions,
        evictions_by_subnet,
        ip_evictions: tracker.ip_evictions,
        signed_records: signed,
        keys,
        distances,
        new_ids,
        first_seen_unknown,
        findings: Vec::new(),
    };
    audit.findings = findings(&audit, &new_by_subnet);
    audit
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

/// Counts by key, most first, then by key; the first `top`.
fn most_first<K: Copy + Ord, N: Copy + Ord>(by: &HashMap<K, N>, top: usize) -> Vec<(K, N)> {
    let mut all: Vec<(K, N)> = by.iter().map(|(k, n)| (*k, *n)).collect();
    all.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
    all.truncate(top);
    all
}

/// Expected picks of one subnet holding one eligible node, and of one holding two or more,
/// when `n` seeds are drawn by the spread rule with 2 per subnet from `cap1` subnets of the
/// first kind and `cap2` of the second: each pick uniform over the subnets with room and an
/// unpicked node. Exact: the chain over (subnets of one node picked, subnets of two picked
/// once, picked twice) is at most `n` steps long.
pub(crate) fn spread_expectation(cap1: usize, cap2: usize, n: usize) -> (f64, f64) {
    // A subnet with two or more eligible nodes has room for 2 picks: the default.
    const _: () = assert!(DEFAULT_PER_SUBNET == 2);
    // (i, j, k): subnets of one node picked, of two picked once, of two picked twice.
    let mut states: HashMap<(usize, usize, usize), f64> = HashMap::from([((0, 0, 0), 1.0)]);
    for _ in 0..n {
        let mut next: HashMap<(usize, usize, usize), f64> = HashMap::new();
        for (&(i, j, k), &p) in &states {
            let fresh1 = cap1 - i;
            let fresh2 = cap2 - j - k;
            let room = fresh1 + fresh2 + j;
            if room == 0 {
                *next.entry((i, j, k)).or_default() += p;
                continue;
            }
            let room = room as f64;
            for (count, to) in [
                (fresh1, (i + 1, j, k)),
                (fresh2, (i, j + 1, k)),
                (j, (i, j.wrapping_sub(1), k + 1)),
            ] {
                if count > 0 {
                    *next.entry(to).or_default() += p * count as f64 / room;
                }
            }
        }
        states = next;
    }
    let (mut picks1, mut picks2) = (0.0, 0.0);
    for (&(i, j, k), &p) in &states {
        picks1 += p * i as f64;
        picks2 += p * (j + 2 * k) as f64;
    }
    (ratio(picks1, cap1 as f64), ratio(picks2, cap2 as f64))
}

fn distances(self_id: NodeId, counts: Vec<usize>) -> Distances {
    let ids: usize = counts.iter().sum();
    let expected: Vec<f64> = (0..=256)
        .map(|d: i32| match d {
            0 => 0.0,
            d => ids as f64 * 2f64.powi(d - 257),
        })
        .collect();
    let far_above = |count: usize, expected: f64| {
        count >= CLOSE_MIN_IDS && count as f64 >= CLOSE_RATIO * expected
    };
    let flagged = (0..=256u32)
        .filter(|&d| far_above(counts[d as usize], expected[d as usize]))
        .collect();
    let (mut within, mut within_expected) = (0usize, 0.0);
    let mut flagged_within: Option<(u32, usize, f64)> = None;
    for d in 0..=256u32 {
        within += counts[d as usize];
        within_expected += expected[d as usize];
        if far_above(within, within_expected) {
            let better = flagged_within
                .is_none_or(|(_, c, e)| within as f64 * e > c as f64 * within_expected);
            if better {
                flagged_within = Some((d, within, within_expected));
            }
        }
    }
    Distances {
        self_id,
        ids,
        counts,
        expected,
        flagged,
        flagged_within,
    }
}

/// A share in percent: one decimal below 10 %, whole above.
fn percent(share: f64) -> String {
    let p = share * 100.0;
    if p < 9.95 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// The name of a subnet in words; `None` is an id without an endpoint.
fn subnet_name(subnet: Option<Subnet>) -> String {
    subnet.map_or_else(|| "ids without an endpoint".to_string(), |s| s.to_string())
}

fn findings(audit: &Audit, new_by_subnet: &[HashMap<Option<Subnet>, usize>]) -> Vec<AuditFinding> {
    let mut found = Vec::new();
    let mut flag = |kind, subnet, text: String| found.push(AuditFinding { kind, subnet, text });
    let over = |part: usize, whole: usize| {
        whole >= SUBNET_MIN_POPULATION && part as f64 > SUBNET_SHARE_LIMIT * whole as f64
    };
    if audit.max_nodes > 0 && audit.ids as f64 >= STORE_FULL_SHARE * audit.max_nodes as f64 {
        flag(
            FindingKind::StoreFull,
            None,
            format!(
                "the store holds {} ids, {} of max_nodes {}: new ids evict old ones",
                audit.ids,
                percent(audit.ids as f64 / audit.max_nodes as f64),
                audit.max_nodes
            ),
        );
    }
    for s in audit
        .top_by_fresh
        .iter()
        .filter(|s| over(s.fresh, audit.fresh))
    {
        flag(
            FindingKind::SubnetFresh,
            Some(s.subnet),
            format!(
                "{} holds {} of fresh nodes ({} of {}): query_seeds would give it {} of the \
                 seeds, seeds() {}",
                s.subnet,
                percent(s.uniform_share),
                s.fresh,
                audit.fresh,
                percent(s.uniform_share),
                percent(s.spread_share)
            ),
        );
    }
    for s in audit
        .top_by_nodes
        .iter()
        .filter(|s| over(s.nodes, audit.nodes))
    {
        flag(
            FindingKind::SubnetNodes,
            Some(s.subnet),
            format!(
                "{} holds {} of nodes ({} of {})",
                s.subnet,
                percent(ratio(s.nodes as f64, audit.nodes as f64)),
                s.nodes,
                audit.nodes
            ),
        );
    }
    if let Some(day) = audit.new_ids.last() {
        for &(subnet, n) in day.by_subnet.iter().filter(|(_, n)| over(*n, day.ids)) {
            let hour = new_by_subnet
                .first()
                .and_then(|by| by.get(&subnet))
                .copied()
                .unwrap_or(0);
            flag(
                FindingKind::SubnetNewIds,
                subnet,
                format!(
                    "{} brought {} of the ids new in the last day ({n} of {}, {hour} in the \
                     last hour)",
                    subnet_name(subnet),
                    percent(ratio(n as f64, day.ids as f64)),
                    day.ids
                ),
            );
        }
    }
    let evictions = usize::try_from(audit.evictions).unwrap_or(usize::MAX);
    for &(subnet, n) in &audit.evictions_by_subnet {
        let n = usize::try_from(n).unwrap_or(usize::MAX);
        if over(n, evictions) {
            flag(
                FindingKind::SubnetEvictions,
                subnet,
                format!(
                    "{} lost {} of the evictions ({n} of {evictions}): a flood of ids there",
                    subnet_name(subnet),
                    percent(ratio(n as f64, evictions as f64))
                ),
            );
        }
    }
    if let Some(d) = &audit.distances {
        for &at in &d.flagged {
            let (count, expected) = (d.counts[at as usize], d.expected[at as usize]);
            flag(
                FindingKind::CloseIds,
                None,
                format!(
                    "{count} ids at log distance {at} from this node, where random ids give \
                     {expected:.2} ({}): ids ground close to this node",
                    times(count, expected)
                ),
            );
        }
        if let Some((at, count, expected)) = d.flagged_within {
            flag(
                FindingKind::CloseIdsWithin,
                None,
                format!(
                    "{count} ids within log distance {at} of this node, where random ids give \
                     {expected:.2} ({}): ids ground close to this node",
                    times(count, expected)
                ),
            );
        }
    }
    found
}

/// `count` as a multiple of `expected`, in words.
fn times(count: usize, expected: f64) -> String {
    if expected > 0.0 {
        format!("{:.0}x", count as f64 / expected)
    } else {
        "none expected".to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_spread_expectation_matches_its_limits() {
        // 60 subnets of one node: each gets 30/60 of a pick.
        let (one, _) = spread_expectation(60, 0, 30);
        assert!((one - 0.5).abs() < 1e-9, "{one}");
        // 15 subnets of two or more: each gets its 2.
        let (_, two) = spread_expectation(0, 15, 30);
        assert!((two - 2.0).abs() < 1e-9, "{two}");
        // Fewer seeds than room: every pick goes somewhere.
        let (one, two) = spread_expectation(10, 20, 30);
        assert!((10.0 * one + 20.0 * two - 30.0).abs() < 1e-9);
        // A subnet of two fills more picks than one of one, never more than 2.
        assert!(two > one && two <= 2.0);
        // Nothing to pick.
        assert_eq!(spread_expectation(0, 0, 30), (0.0, 0.0));
    }

    #[test]
    fn record_keys_are_listed_in_order() {
        use enr::{CombinedKey, Enr};
        let key = CombinedKey::secp256k1_from_bytes(&mut [7u8; 32]).unwrap();
        let record: Enr<CombinedKey> = Enr::builder()
            .ip4([203, 0, 113, 1].into())
            .add_value("eth2", &vec![1u8, 2, 3])
            .build(&key)
            .unwrap();
        let rlp = alloy_rlp::encode(&record);
        let listed: Vec<&[u8]> = keys(&rlp);
        assert_eq!(listed, [&b"eth2"[..], b"id", b"ip", b"secp256k1"].to_vec());
        assert!(keys(b"\xc0").is_empty());
        assert!(keys(b"").is_empty());
    }
}
