//! The current state of a database, as replaying its log gives it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use super::{replay_with_progress, with_listing, InspectError, Progress, SegmentInfo};
use crate::event::{EventKind, Record};
use crate::index::{Index, PeerState};
use crate::journal::replay::ReplayPlan;
use crate::journal::ReplaySummary;

/// The live state of a database, as replaying its log gives it.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Every id with a record or any data, sorted by id.
    pub peers: Vec<PeerState>,
    /// Records replayed, by kind.
    pub events_by_kind: BTreeMap<EventKind, u64>,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// What the replay found.
    pub summary: ReplaySummary,
    /// The live segments replayed, in replay order.
    pub segments: Vec<SegmentInfo>,
}

/// What replaying a log gives: the index a `NodeDb` would open with, and counts beside it.
pub(super) struct Replayed {
    pub index: Index,
    pub events_by_kind: BTreeMap<EventKind, u64>,
    pub span: Option<(SystemTime, SystemTime)>,
    pub summary: ReplaySummary,
    pub segments: Vec<SegmentInfo>,
}

impl Replayed {
    fn apply(&mut self, record: &Record) {
        *self.events_by_kind.entry(record.event.kind()).or_default() += 1;
        let t = record.written_at;
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
        self.index.apply_event(&record.event, t);
    }
}

/// Replays the live log of `dir` into the index a `NodeDb` would open with.
pub(super) fn replay_state(dir: &Path, progress: Progress<'_>) -> Result<Replayed, InspectError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut replayed = Replayed {
            index: Index::default(),
            events_by_kind: BTreeMap::new(),
            span: None,
            summary: ReplaySummary::default(),
            segments: plan.live.iter().map(SegmentInfo::new).collect(),
        };
        replayed.summary =
            replay_with_progress(&plan, progress, |_, _, record| replayed.apply(&record))?;
        Ok(replayed)
    })
}

/// Replays the live log of `dir` into the state a `NodeDb` would open with.
pub fn state(dir: &Path, progress: Progress<'_>) -> Result<LiveState, InspectError> {
    let replayed = replay_state(dir, progress)?;
    let mut peers: Vec<_> = replayed.index.states().collect();
    peers.sort_unstable_by_key(|p| p.id);
    Ok(LiveState {
        peers,
        events_by_kind: replayed.events_by_kind,
        span: replayed.span,
        summary: replayed.summary,
        segments: replayed.segments,
    })
}
