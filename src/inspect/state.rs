//! The current state of a database, as replaying its log gives it.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::SystemTime;

use super::{with_listing, InspectError, Progress, SegmentInfo};
use crate::event::{from_unix_nanos, unix_nanos, EventKind, IdsAhead, LogRecord, StoredRecord};
use crate::index::{Index, PeerState};
use crate::journal::replay::{replay_shared, ReplayPlan, SharedRead};
use crate::journal::{Recovery, ReplaySummary};
use crate::node::NodeId;
use crate::recovery::ids_expected;
use crate::survey::ReplayProgress;

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

/// [`Replayed`] as it is built.
struct Replaying {
    replayed: Replayed,
    /// Records replayed, by kind byte: counted in an array, for a map lookup per record
    /// costs more than applying some records.
    by_kind: [u64; 256],
    /// The span, as the log stores times (nanoseconds since the Unix epoch).
    span: Option<(i64, i64)>,
}

impl Replaying {
    /// A record read in place, as `NodeDb::open` applies it.
    fn apply_stored(&mut self, record: &StoredRecord<'_>) {
        self.by_kind[record.event.kind() as usize] += 1;
        self.note_time(record.written_at);
        self.replayed.index.apply_record(record);
    }

    /// A record copied out of the segment a writer may be appending to.
    fn apply_copied(&mut self, record: &LogRecord) {
        self.by_kind[record.event.kind() as usize] += 1;
        // Every time read from a log converts (it came from nanoseconds).
        if let Ok(t) = unix_nanos(record.written_at) {
            self.note_time(t);
        }
        self.replayed
            .index
            .apply_event(&record.event, record.written_at);
    }

    fn note_time(&mut self, t: i64) {
        self.span = Some(self.span.map_or((t, t), |(a, b)| (a.min(t), b.max(t))));
    }

    fn finish(mut self) -> Replayed {
        self.replayed.events_by_kind = EventKind::ALL
            .into_iter()
            .filter(|&kind| self.by_kind[kind as usize] > 0)
            .map(|kind| (kind, self.by_kind[kind as usize]))
            .collect();
        self.replayed.span = self
            .span
            .map(|(a, b)| (from_unix_nanos(a), from_unix_nanos(b)));
        self.replayed
    }
}

/// Replays the live log of `dir` into the index a `NodeDb` would open with.
pub(super) fn replay_state(dir: &Path, progress: Progress<'_>) -> Result<Replayed, InspectError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut replaying = Replaying {
            replayed: Replayed {
                // Presized for the ids an open expects, so that replay does not rehash as
                // it grows. (The open's reservation for records and IP slots made a read
                // slower here: more time in the kernel than the copies it saves.)
                index: Index::with_capacity(ids_expected(&plan)),
                events_by_kind: BTreeMap::new(),
                span: None,
                summary: ReplaySummary::default(),
                segments: plan.live.iter().map(SegmentInfo::new).collect(),
            },
            by_kind: [0; 256],
            span: None,
        };
        let mut meter = ReplayProgress::new(&plan, progress);
        // Sealed segments read in place, as an open reads them; the last one copied, since a
        // writer may be appending to it.
        // As an open: the index's slot of an id a few frames ahead is fetched while the
        // records before it are applied.
        let mut ids_ahead = IdsAhead::default();
        let summary = replay_shared::<StoredRecord, LogRecord>(
            &plan,
            IdsAhead::FRAMES,
            |place, read, upcoming| {
                meter.at(place);
                if let Some(id) = ids_ahead.new_id(upcoming) {
                    replaying.replayed.index.prefetch(id);
                }
                match read {
                    SharedRead::InPlace(record) => replaying.apply_stored(&record),
                    SharedRead::Copied(record) => replaying.apply_copied(&record),
                }
            },
        )?;
        meter.done();
        let mut replayed = replaying.finish();
        replayed.summary = summary;
        Ok(replayed)
    })
}

/// The state of every id of a replayed log, sorted by id, each made when it is asked for.
pub struct Peers<'a> {
    index: &'a Index,
    /// Positions of the entries, in the order of their ids.
    order: &'a [u32],
    /// The next of `order` to hand out.
    next: usize,
    /// `order[..warm]` has been read into the cache ahead of its turn.
    warm: usize,
}

/// Entries read into the cache at a time, ahead of their turn: in id order the entries, their
/// records and their IP slots are scattered over hundreds of MiB, and made one after the other
/// each would wait for its own cache misses. Read in a tight loop, a batch's misses overlap.
const WARM_BATCH: usize = 32;

impl<'a> Peers<'a> {
    /// The next `n` peers (or all that are left, if fewer), as peers of their own, which
    /// another thread can read; these go on after them. A reader that makes the states of
    /// the peers in pieces on several threads hands out each piece's lines in order.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// # let dir = tempfile::tempdir()?;
    /// use peerlog::inspect;
    /// # let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
    /// # for n in 2..5 {
    /// #     db.update_node(&format!("enode://{}@10.0.0.{n}:30303", format!("{n:02}").repeat(64)).parse()?)?;
    /// # }
    /// # db.close()?;
    /// inspect::with_peers(dir.path(), &inspect::no_progress, |mut peers| {
    ///     let first = peers.split_front(2);
    ///     assert_eq!((first.len(), peers.len()), (2, 1));
    ///     let ids = std::thread::scope(|s| s.spawn(|| first.map(|p| p.id).collect::<Vec<_>>()).join());
    ///     let last = peers.next().unwrap().id;
    ///     assert!(ids.unwrap().iter().all(|id| *id < last));
    /// })?;
    /// # Ok(())
    /// # }
    /// ```
    pub fn split_front(&mut self, n: usize) -> Peers<'a> {
        let (front, rest) = self.order[self.next..].split_at(n.min(self.len()));
        self.order = rest;
        self.warm = self.warm.saturating_sub(self.next + front.len());
        self.next = 0;
        Peers {
            index: self.index,
            order: front,
            next: 0,
            warm: 0,
        }
    }

    /// Reads the entries of `order[from..to]`, then their records and IP slots, so that the
    /// cache holds them when their states are made. Reads only: nothing is kept.
    fn warm(&self, from: usize, to: usize) {
        let entries = self.index.entries();
        let batch = &self.order[from..to];
        let mut sum = 0u64;
        for &i in batch {
            let entry = &entries[i as usize];
            sum = sum.wrapping_add(entry.touched as u64 ^ u64::from(entry.id.0[0]));
        }
        for &i in batch {
            let entry = &entries[i as usize];
            if let Some(rlp) = self.index.record_rlp(entry) {
                // Every cache line of it.
                for byte in rlp.iter().step_by(64).chain(rlp.last()) {
                    sum = sum.wrapping_add(u64::from(*byte));
                }
            } else if entry.has_record() {
                sum = sum.wrapping_add(self.index.endpoint(entry).map_or(0, |e| e.udp.into()));
            }
        }
        // No IP is kept as unspecified: the search walks every slot of the entry.
        let unspecified = std::net::IpAddr::V4(std::net::Ipv4Addr::UNSPECIFIED);
        for &i in batch {
            let entry = &entries[i as usize];
            if let Some(slot) = self.index.ip_liveness(entry, unspecified) {
                sum = sum.wrapping_add(slot.fails.into());
            }
        }
        std::hint::black_box(sum);
    }
}

impl std::fmt::Debug for Peers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Peers")
            .field("left", &(self.order.len() - self.next))
            .finish()
    }
}

impl Iterator for Peers<'_> {
    type Item = PeerState;

    fn next(&mut self) -> Option<PeerState> {
        let &i = self.order.get(self.next)?;
        if self.next == self.warm {
            self.warm = (self.next + WARM_BATCH).min(self.order.len());
            self.warm(self.next, self.warm);
        }
        self.next += 1;
        Some(self.index.state(&self.index.entries()[i as usize]))
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = self.order.len() - self.next;
        (left, Some(left))
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
    let order = id_order(index.entries().iter().map(|entry| &entry.id));
    Ok(read(Peers {
        index,
        order: &order,
        next: 0,
        warm: 0,
    }))
}

/// The positions of `ids`, in the order of the ids. Sorted by each id's first 8 bytes, then
/// each run of equal prefixes by the whole id: pairs of 16 bytes sort several times faster
/// than positions compared through 64-byte ids, and ids (hashes of keys, mostly) rarely share
/// a prefix. The pairs are first put in buckets by their first 2 bytes (one counting pass,
/// one placing pass), leaving each bucket a few pairs to sort.
fn id_order<'a>(ids: impl ExactSizeIterator<Item = &'a NodeId>) -> Vec<u32> {
    const BUCKET_BITS: u32 = 16;
    let prefix = |id: &NodeId| u64::from_be_bytes(id.0[..8].try_into().expect("8 bytes"));
    let all: Vec<&NodeId> = ids.collect();
    let prefixes: Vec<u64> = all.iter().map(|id| prefix(id)).collect();
    let bucket = |prefix: u64| (prefix >> (64 - BUCKET_BITS)) as usize;
    // starts[b] is where bucket b begins, once the counts are summed.
    let mut starts = vec![0usize; (1 << BUCKET_BITS) + 1];
    for &p in &prefixes {
        starts[bucket(p) + 1] += 1;
    }
    for b in 1..starts.len() {
        starts[b] += starts[b - 1];
    }
    let mut keyed = vec![(0u64, 0u32); prefixes.len()];
    let mut next = starts.clone();
    for (i, &p) in prefixes.iter().enumerate() {
        let at = &mut next[bucket(p)];
        keyed[*at] = (p, i as u32);
        *at += 1;
    }
    for b in starts.windows(2) {
        keyed[b[0]..b[1]].sort_unstable();
    }
    for run in keyed.chunk_by_mut(|a, b| a.0 == b.0) {
        if run.len() > 1 {
            run.sort_unstable_by_key(|&(_, i)| all[i as usize]);
        }
    }
    keyed.into_iter().map(|(_, i)| i).collect()
}

/// Replays the live log of `dir` into the state a `NodeDb` would open with.
pub fn state(dir: &Path, progress: Progress<'_>) -> Result<LiveState, InspectError> {
    let replayed = replay_state(dir, progress)?;
    let index = &replayed.index;
    let peers = id_order(index.entries().iter().map(|entry| &entry.id))
        .into_iter()
        .map(|i| index.state(&index.entries()[i as usize]))
        .collect();
    Ok(LiveState {
        peers,
        events_by_kind: replayed.events_by_kind,
        span: replayed.span,
        recovery: Recovery::from(replayed.summary),
        segments: replayed.segments,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn id_order_sorts_by_the_whole_id_where_prefixes_are_equal() {
        let mut ids: Vec<NodeId> = (0..2_000).map(|_| NodeId(rand::random())).collect();
        // Runs that share their first 8 bytes (or all but the last byte) with another id.
        for i in 0..300 {
            let mut id = ids[i];
            id.0[8 + i % 56] ^= 1 + (i as u8 % 200);
            ids.push(id);
            let mut id = ids[i];
            id.0[63] = id.0[63].wrapping_add(1);
            ids.push(id);
        }
        // Many in one bucket (the same first 2 bytes), and the extremes.
        for i in 0..500u32 {
            let mut id = NodeId(rand::random());
            id.0[..2].copy_from_slice(&[0xab, 0xcd]);
            id.0[2] = (i % 3) as u8;
            ids.push(id);
        }
        ids.extend([NodeId([0; 64]), NodeId([0xff; 64]), NodeId([0; 64])]);
        let order = id_order(ids.iter());
        let sorted: Vec<NodeId> = order.iter().map(|&i| ids[i as usize]).collect();
        let mut expected = ids.clone();
        expected.sort_unstable();
        assert_eq!(sorted, expected);
        assert_eq!(order.len(), ids.len());
    }
}
