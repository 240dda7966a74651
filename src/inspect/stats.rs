//! Statistics of a database.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use super::state::replay_state;
use super::{archived_segments, InspectError, Progress};
use crate::event::{now_nanos, EventKind};
use crate::journal::damage::Damage;
use crate::NodeId;

/// What `stats` reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Nodes with a record.
    pub nodes: usize,
    /// Of those, with an IPv6 endpoint.
    pub ipv6_nodes: usize,
    /// Ids with any data (a record, a ping, a pong or fails).
    pub ids: usize,
    /// Records in the live log, by event kind (every kind, 0 included).
    pub events_by_kind: BTreeMap<EventKind, u64>,
    /// Records in the live log.
    pub records: u64,
    /// Bytes of those records; `live_bytes` of them would survive a compaction.
    pub record_bytes: u64,
    /// Bytes a compaction would keep.
    pub live_bytes: u64,
    /// Bytes a compaction would free (`record_bytes - live_bytes`).
    pub dead_bytes: u64,
    /// Live segment files.
    pub segments: usize,
    /// Their size on disk (preallocated space included).
    pub segment_file_bytes: u64,
    /// Segment files in `archive/`.
    pub archived_segments: usize,
    /// Their size on disk.
    pub archived_bytes: u64,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// Nodes `query_seeds` could offer now: with a record, not `self_id`, pong within `seed_age`.
    pub seeds: usize,
    /// The age limit used for `seeds`.
    pub seed_age: Duration,
    /// Places where the live log is not intact (torn tail included).
    pub problems: usize,
    /// The losses the log records (damage compacted away, or acknowledged), acknowledged or
    /// not: see [`NodeDb::losses`](crate::NodeDb::losses).
    pub losses: Vec<Damage>,
}

/// Statistics of the database in `dir`, with seeds counted as `query_seeds(_, seed_age)`
/// of a node with id `self_id` would see them now.
pub fn stats(
    dir: &Path,
    self_id: &NodeId,
    seed_age: Duration,
    progress: Progress<'_>,
) -> Result<Stats, InspectError> {
    let replayed = replay_state(dir, progress)?;
    let archived = archived_segments(dir)?;
    let index = &replayed.index;
    let min_pong =
        now_nanos().saturating_sub(i64::try_from(seed_age.as_nanos()).unwrap_or(i64::MAX));
    let mut events_by_kind: BTreeMap<EventKind, u64> =
        EventKind::ALL.into_iter().map(|k| (k, 0)).collect();
    events_by_kind.extend(&replayed.events_by_kind);
    let summary = &replayed.summary;
    Ok(Stats {
        nodes: index.len(),
        ipv6_nodes: index
            .entries()
            .iter()
            .filter(|e| index.endpoint(e).is_some_and(|n| n.ip.is_ipv6()))
            .count(),
        ids: index.entries().len(),
        events_by_kind,
        records: summary.records,
        record_bytes: summary.record_bytes,
        live_bytes: index.live_bytes(),
        dead_bytes: summary.record_bytes.saturating_sub(index.live_bytes()),
        segments: replayed.segments.len(),
        segment_file_bytes: replayed.segments.iter().map(|s| s.size).sum(),
        archived_segments: archived.len(),
        archived_bytes: archived.iter().map(|s| s.len).sum(),
        span: replayed.span,
        seeds: index
            .entries()
            .iter()
            .filter(|e| index.is_seed(e, min_pong, self_id))
            .count(),
        seed_age,
        problems: summary.problems.len(),
        losses: index.recorded_damage().collect(),
    })
}
