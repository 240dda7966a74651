//! Statistics of a database.

use super::*;

/// What `stats` reports.
#[derive(Clone, Debug, Default)]
pub struct Stats {
    /// Nodes with a record.
    pub nodes: usize,
    /// Of those, with an IPv6 endpoint.
    pub ipv6_nodes: usize,
    /// Ids with any data (a record, a ping, a pong or fails).
    pub ids: usize,
    /// Records in the live log, by event kind (every kind present, 0 included).
    pub events_by_kind: BTreeMap<&'static str, u64>,
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
}

impl Stats {
    /// The stable `stats --json` object.
    pub fn to_json(&self) -> Value {
        json!({
            "nodes": self.nodes,
            "ipv6_nodes": self.ipv6_nodes,
            "ids": self.ids,
            "records": self.records,
            "events": self.events_by_kind,
            "record_bytes": self.record_bytes,
            "live_bytes": self.live_bytes,
            "dead_bytes": self.dead_bytes,
            "segments": self.segments,
            "segment_file_bytes": self.segment_file_bytes,
            "archived_segments": self.archived_segments,
            "archived_bytes": self.archived_bytes,
            "first_write": opt_time(self.span.map(|s| s.0)),
            "last_write": opt_time(self.span.map(|s| s.1)),
            "seeds": self.seeds,
            "seed_age_secs": self.seed_age.as_secs(),
            "problems": self.problems,
        })
    }
}

/// Statistics of the database in `dir`, with seeds counted as `query_seeds(_, seed_age)`
/// of a node with id `self_id` would see them now.
pub fn stats(
    dir: &Path,
    self_id: &NodeId,
    seed_age: Duration,
    progress: Progress<'_>,
) -> Result<Stats, AuditError> {
    let state = load_state(dir, progress)?;
    let archived = archived_segments(dir)?;
    let min_pong = SystemTime::now()
        .checked_sub(seed_age)
        .unwrap_or(UNIX_EPOCH);
    let with_record = || state.peers.iter().filter(|p| p.node.is_some());
    let live_bytes: u64 = state.peers.iter().map(PeerState::live_bytes).sum();
    let mut events_by_kind: BTreeMap<&'static str, u64> =
        ["node", "ping", "pong", "fails", "delete", "expire"]
            .into_iter()
            .map(|k| (k, 0))
            .collect();
    events_by_kind.extend(state.events_by_kind.iter().map(|(k, v)| (*k, *v)));
    Ok(Stats {
        nodes: with_record().count(),
        ipv6_nodes: with_record()
            .filter(|p| p.node.as_ref().is_some_and(|n| n.ip.is_ipv6()))
            .count(),
        ids: state.peers.len(),
        events_by_kind,
        records: state.summary.records,
        record_bytes: state.summary.record_bytes,
        live_bytes,
        dead_bytes: state.summary.record_bytes.saturating_sub(live_bytes),
        segments: state.segments.len(),
        segment_file_bytes: state.segments.iter().map(|s| s.len).sum(),
        archived_segments: archived.len(),
        archived_bytes: archived.iter().map(|s| s.len).sum(),
        span: state.span,
        seeds: with_record()
            .filter(|p| p.id != *self_id && p.last_pong.is_some_and(|t| t >= min_pong))
            .count(),
        seed_age,
        problems: state.summary.problems.len(),
    })
}
