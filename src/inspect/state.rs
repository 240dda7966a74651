//! The current state of a database, as replaying its log gives it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use super::{replay_with_progress, with_listing, InspectError, Progress, SegmentInfo};
use crate::event::{EventKind, LogRecord};
use crate::index::{Index, PeerState};
use crate::journal::replay::ReplayPlan;
use crate::journal::{Recovery, ReplaySummary};

/// The live state of a database, as replaying its log gives it.
#[derive(Debug, Default)]
pub struct LiveState {
    /// Every id with a record or any data, sorted by id.
    pub peers: Vec<PeerState>,
    /// Records replayed, by kind.
    pub events_by_kind: BTreeMap<EventKind, u64>,
    /// Write time of the oldest and newest record.
    pub span: Option<(SystemTime, SystemTime)>,
    /// What the replay found, as [`NodeDb::recovery`](crate::NodeDb::recovery) reports it.
    pub recovery: Recovery,
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
    fn apply(&mut self, record: &LogRecord) {
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
            replay_with_progress(&plan, progress, |_, record| replayed.apply(&record))?;
        Ok(replayed)
    })
}

/// The state of every id of a replayed log, sorted by id, each made when it is asked for.
pub struct Peers<'a> {
    index: &'a Index,
    order: std::vec::IntoIter<u32>,
}

impl std::fmt::Debug for Peers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("left", &self.order.len())
            .finish()
    }
}

impl Iterator for Peers<'_> {
    type Item = PeerState;

    fn next(&mut self) -> Option<PeerState> {
        let i = self.order.next()?;
        Some(self.index.state(&self.index.entries()[i as usize]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.order.size_hint()
    }
}

impl ExactSizeIterator for Peers<'_> {}

/// Replays the live log of `dir` into the index a `NodeDb` would open with, then hands `read`
/// the state of every id, sorted by id, one at a time: memory for the index, not for a copy
/// of every peer's state beside it (as [`state`] needs).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// use peerlog::inspect;
/// # let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
/// # db.update_node(&format!("enode://{}@10.0.0.2:30303", "22".repeat(64)).parse()?)?;
/// # db.close()?;
/// let ids: Vec<_> = inspect::with_peers(dir.path(), &inspect::no_progress, |peers| {
///     peers.map(|peer| peer.id).collect()
/// })?;
/// assert_eq!(ids.len(), 1);
/// # Ok(())
/// # }
/// ```
pub fn with_peers<T>(
    dir: &Path,
    progress: Progress<'_>,
    read: impl FnOnce(Peers<'_>) -> T,
) -> Result<T, InspectError> {
    let replayed = replay_state(dir, progress)?;
    let index = &replayed.index;
    let entries = index.entries();
    let mut order: Vec<u32> = (0..entries.len() as u32).collect();
    order.sort_unstable_by_key(|&i| entries[i as usize].id);
    Ok(read(Peers {
        index,
        order: order.into_iter(),
    }))
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
        recovery: Recovery::from(replayed.summary),
        segments: replayed.segments,
    })
}
