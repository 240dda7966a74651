//! The current state of a database, as replaying its log gives it.

use super::*;

/// Everything known about one id after replaying the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// The id.
    pub id: NodeId,
    /// Its node record, if it has one.
    pub node: Option<Node>,
    /// Last ping sent.
    pub last_ping: Option<SystemTime>,
    /// Last pong received.
    pub last_pong: Option<SystemTime>,
    /// Findnode failures.
    pub fails: u32,
    /// Write time of the newest event about it.
    pub last_written: SystemTime,
}

impl PeerState {
    pub(super) fn new(id: NodeId, written_at: SystemTime) -> PeerState {
        PeerState {
            id,
            node: None,
            last_ping: None,
            last_pong: None,
            fails: 0,
            last_written: written_at,
        }
    }

    /// Applies an event that is not a delete or expiry (those remove the whole state).
    pub(super) fn apply(&mut self, event: &Event, written_at: SystemTime) {
        self.last_written = written_at;
        match event {
            Event::NodeUpdated(node) => self.node = Some(node.clone()),
            Event::Ping { at, .. } => self.last_ping = Some(*at),
            Event::Pong { at, .. } => self.last_pong = Some(*at),
            Event::FindFails { fails, .. } => self.fails = *fails,
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {}
        }
    }

    /// Bytes of log a compaction would keep for this id (the frames of its live events).
    pub(super) fn live_bytes(&self) -> u64 {
        // Payloads: written_at (8) + id + time (8) for ping and pong, + count (4) for fails.
        let timed = align(FRAME_HEADER_LEN + 8 + NODE_ID_LEN + 8) as u64;
        let fails = align(FRAME_HEADER_LEN + 8 + NODE_ID_LEN + 4) as u64;
        let node = self
            .node
            .as_ref()
            .map_or(0, |n| align(FRAME_HEADER_LEN + 8 + n.to_rlp().len()) as u64);
        node + timed * u64::from(self.last_ping.is_some())
            + timed * u64::from(self.last_pong.is_some())
            + fails * u64::from(self.fails != 0)
    }

    /// The stable `dump --json` object.
    pub fn to_json(&self) -> Value {
        let node = self.node.as_ref();
        json!({
            "id": self.id.to_string(),
            "enode": node.map(|n| n.to_string()),
            "ip": node.map(|n| n.ip.to_string()),
            "udp": node.map(|n| n.udp),
            "tcp": node.map(|n| n.tcp),
            "last_ping": opt_time(self.last_ping),
            "last_pong": opt_time(self.last_pong),
            "fails": self.fails,
            "last_written": iso8601_precise(self.last_written),
        })
    }
}

/// The live state of a database, as replaying its log gives it.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Every id with a record or any data, sorted by id.
    pub peers: Vec<PeerState>,
    /// Records replayed, by event kind name ([`Event::kind_name`]).
    pub events_by_kind: BTreeMap<&'static str, u64>,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// What the replay found.
    pub summary: ReplaySummary,
    /// The live segments replayed.
    pub segments: Vec<SegmentFile>,
}

#[derive(Default)]
struct StateBuilder {
    peers: HashMap<NodeId, PeerState>,
    events_by_kind: BTreeMap<&'static str, u64>,
    span: Option<(SystemTime, SystemTime)>,
}

impl StateBuilder {
    fn apply(&mut self, record: &Record) {
        *self
            .events_by_kind
            .entry(record.event.kind_name())
            .or_default() += 1;
        let t = record.written_at;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        let id = *record.event.id();
        match &record.event {
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => {
                self.peers.remove(&id);
            }
            event => self
                .peers
                .entry(id)
                .or_insert_with(|| PeerState::new(id, t))
                .apply(event, t),
        }
    }
}

/// Replays the live log of `dir` into the state a `NodeDb` would open with.
pub fn load_state(dir: &Path, progress: Progress<'_>) -> Result<LiveState, AuditError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut builder = StateBuilder::default();
        let summary = replay_with_progress(&plan, progress, |_, _, record| builder.apply(&record))?;
        let mut peers: Vec<_> = builder.peers.into_values().collect();
        peers.sort_unstable_by_key(|p| p.id);
        Ok(LiveState {
            peers,
            events_by_kind: builder.events_by_kind,
            span: builder.span,
            summary,
            segments: plan.live,
        })
    })
}
