//! The history of one node, from the live log and the archive.

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{archived_segments, scan_segment, with_listing, InspectError, Progress};
use crate::event::{Event, LogRecord};
use crate::index::{Index, PeerState};
use crate::journal::damage::Damage;
use crate::journal::dir::SegmentFile;
use crate::loss::Loss;
use crate::Error;
use crate::{Node, NodeId, NodeRecord, Subnet};

/// One event about a node, with where it was found and what it changed.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The record.
    pub record: LogRecord,
    /// The segment file it was read from.
    pub file: PathBuf,
    /// Offset of its frame in that file.
    pub offset: u64,
    /// Read from `archive/`.
    pub archived: bool,
    /// Read from a compacted segment: a restatement of older events whose originals are gone.
    pub compacted: bool,
    /// What it changed.
    pub change: Change,
}

/// What an event changed about a node.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Change {
    /// The node got its first record.
    RecordCreated(Node),
    /// The record was written again, unchanged.
    RecordRewritten(Node),
    /// The record's endpoint changed.
    EndpointChanged {
        /// The record before.
        from: Node,
        /// The record after.
        to: Node,
    },
    /// A ping was sent at this time.
    PingSent(SystemTime),
    /// A pong was received at this time.
    PongReceived(SystemTime),
    /// The count of findnode failures changed.
    FindFails {
        /// The count before.
        from: u32,
        /// The count after.
        to: u32,
    },
    /// Everything known about the node was deleted.
    Deleted,
    /// Everything known about the node was dropped by expiration.
    Expired,
    /// A signed record was stored: its seq (and endpoint) replacing the record before, if
    /// any (an unsigned record counts as seq 0).
    SignedRecord {
        /// The seq of the record before, if there was one.
        from_seq: Option<u64>,
        /// The new record's seq.
        to_seq: u64,
        /// The endpoint before.
        from: Option<Node>,
        /// The endpoint the new record names.
        to: Option<Node>,
    },
    /// A ping was sent to this IP at this time.
    PingSentTo(IpAddr, SystemTime),
    /// A pong was received from this IP at this time.
    PongReceivedFrom(IpAddr, SystemTime),
    /// The count of findnode failures at an IP changed.
    FindFailsAt {
        /// The IP.
        ip: IpAddr,
        /// The count before.
        from: u32,
        /// The count after.
        to: u32,
    },
    /// The liveness at this IP was dropped by expiration.
    IpExpired(IpAddr),
    /// Dropped to make room for a new id: the store was full. The node's subnet (/24, /48),
    /// `None` for an id without an endpoint.
    Evicted(Option<Subnet>),
    /// The liveness at this IP was dropped to make room for another IP of the node: it held
    /// the most IPs an id may have.
    IpEvicted(IpAddr),
    /// Records were lost here to damage (a loss the log recorded, listed where its lost
    /// sequence numbers would have been): events about the node may be missing.
    Loss(Damage),
}

/// A segment that tells part of a history.
pub(super) struct Source {
    segment: SegmentFile,
    archived: bool,
    /// A compacted segment whose range the ordinary segments kept account for: its events
    /// about nodes are restatements, and only the losses it records are news.
    pub restates: bool,
}

impl Source {
    /// Whether it is a compacted segment: its events restate older ones, each with the
    /// write time of its node's newest event.
    pub(super) fn is_compacted(&self) -> bool {
        self.segment.header.is_compacted()
    }

    /// Where its records go in the history: an ordinary segment's at their sequence numbers;
    /// a compacted segment's after every record it replaced (they state the log as of its
    /// end), one after the other.
    pub(super) fn place(&self, seq: u64) -> Place {
        let header = &self.segment.header;
        match header.is_compacted() {
            true => (header.replaces_through, true, seq),
            false => (seq, false, seq),
        }
    }
}

/// A record's place in a history (see [`Source::place`]): grows from record to record as the
/// sources are read in order.
pub(super) type Place = (u64, bool, u64);

/// Which segments tell the history: every segment (live, superseded or archived) of the
/// current generation, in the order they tell it, each compacted one after the ordinary
/// segments holding records it replaced. Whether a compacted segment only restates those
/// (`restates`) is not known yet: see [`Accounting`].
pub(super) fn history_sources(live: Vec<SegmentFile>, archived: Vec<SegmentFile>) -> Vec<Source> {
    let Some(salt) = live
        .iter()
        .max_by_key(|s| s.header.segment_id)
        .map(|s| s.header.salt)
    else {
        return Vec::new();
    };
    let mut sources: Vec<Source> = live
        .into_iter()
        .map(|segment| (segment, false))
        .chain(archived.into_iter().map(|segment| (segment, true)))
        .filter(|(segment, _)| segment.header.salt == salt)
        .map(|(segment, archived)| Source {
            segment,
            archived,
            restates: false,
        })
        .collect();
    sources.sort_by_key(|s| {
        let header = &s.segment.header;
        (
            s.place(header.first_seq).0,
            header.is_compacted(),
            header.segment_id,
        )
    });
    sources
}

/// Whether some compacted segment among `sources` comes after an ordinary one: only then can
/// it be a restatement, and [`Accounting`] has something to decide.
pub(super) fn may_restate(sources: &[Source]) -> bool {
    let mut ordinary = false;
    sources.iter().any(|s| {
        ordinary |= !s.segment.header.is_compacted();
        ordinary && s.segment.header.is_compacted()
    })
}

/// Decides which compacted segments restate events the history holds anyway, from a read of
/// every source in order: a compacted segment restates only if the ordinary segments before
/// it (since the compacted segment before it) account for every sequence number it replaced,
/// except those the log records as lost. Otherwise (a compaction deleted segments it
/// replaced, keeping only a damaged one in `archive/`, or `keep_history` was off for a while)
/// its events are the only account of what it replaced, and the history shows them.
#[derive(Default)]
pub(super) struct Accounting {
    /// Every sequence number up to this is accounted for by the sources read so far.
    covered: u64,
    /// Sequence numbers no source accounted for since the last compacted segment.
    gaps: Vec<(u64, u64)>,
    /// For each compacted source (its index), the gaps it follows.
    compacted: Vec<(usize, Vec<(u64, u64)>)>,
    /// Every loss the sources record.
    losses: Vec<Damage>,
}

impl Accounting {
    /// Source `index` starts.
    pub(super) fn source(&mut self, index: usize, source: &Source) {
        let header = &source.segment.header;
        if header.is_compacted() {
            let through = header.replaces_through;
            if self.covered < through {
                self.gaps.push((self.covered + 1, through));
            }
            self.covered = self.covered.max(through);
            self.compacted.push((index, std::mem::take(&mut self.gaps)));
        }
    }

    /// A record of `source` was read.
    pub(super) fn record(&mut self, source: &Source, record: &LogRecord) {
        if let Event::Loss(loss) = &record.event {
            self.losses.push(loss.clone());
        }
        if source.segment.header.is_compacted() {
            return;
        }
        if record.seq > self.covered + 1 {
            self.gaps.push((self.covered + 1, record.seq - 1));
        }
        self.covered = self.covered.max(record.seq);
    }

    /// Whether the losses recorded account for every sequence number of `first..=last`.
    fn lost(&self, (first, last): (u64, u64)) -> bool {
        let mut next = first;
        while next <= last {
            let Some(end) = self
                .losses
                .iter()
                .filter_map(|loss| loss.lost)
                .filter(|&(a, b)| a <= next && next <= b)
                .map(|(_, b)| b)
                .max()
            else {
                return false;
            };
            match end.checked_add(1) {
                Some(after) => next = after,
                None => return true,
            }
        }
        true
    }

    /// Flags the compacted sources that only restate events of the ordinary ones.
    pub(super) fn decide(self, sources: &mut [Source]) {
        for (index, gaps) in &self.compacted {
            sources[*index].restates = gaps.iter().all(|&gap| self.lost(gap));
        }
    }
}

/// Reads `sources` one after the other, handing every intact record to `on_record` with its
/// source's index and its offset, until `on_record` stops it; reports progress in bytes.
/// `accounting` learns of every source and record read.
pub(super) fn scan_sources(
    sources: &[Source],
    progress: Progress<'_>,
    accounting: &mut Accounting,
    mut on_record: impl FnMut(LogRecord, usize, u64) -> ControlFlow<()>,
) -> Result<(), Error> {
    let total: u64 = sources.iter().map(|s| s.segment.len).sum();
    let mut done = 0;
    progress(0, total);
    for (index, source) in sources.iter().enumerate() {
        accounting.source(index, source);
        let mut flow = ControlFlow::Continue(());
        scan_segment(&source.segment, |offset, record| {
            accounting.record(source, &record);
            if flow.is_continue() {
                flow = on_record(record, index, offset);
            }
        })?;
        done += source.segment.len;
        progress(done, total);
        if flow.is_break() {
            break;
        }
    }
    Ok(())
}

/// Every event about `id`, oldest first, from the live segments and `archive/`, with every
/// loss the log recorded where its lost sequence numbers would have been.
pub fn history(
    dir: &Path,
    id: &NodeId,
    progress: Progress<'_>,
) -> Result<Vec<HistoryEntry>, InspectError> {
    with_listing(dir, |live| {
        let mut sources = history_sources(live, archived_segments(dir)?);
        let (mut found, mut losses) = (Vec::new(), Vec::<Found>::new());
        let mut accounting = Accounting::default();
        scan_sources(
            &sources,
            progress,
            &mut accounting,
            |record, source, offset| {
                match &record.event {
                    Event::Loss(loss) => {
                        let absorbed = |(known, ..): &mut Found| match &mut known.event {
                            Event::Loss(known) => Loss::absorb_into(known, loss),
                            _ => false,
                        };
                        if !losses.iter_mut().any(absorbed) {
                            losses.push((record, source, offset));
                        }
                    }
                    event if event.id() == Some(id) => found.push((record, source, offset)),
                    _ => {}
                }
                ControlFlow::Continue(())
            },
        )?;
        accounting.decide(&mut sources);
        let sources = &sources;
        found.retain(|(_, source, _)| !sources[*source].restates);
        // In order of place; a record kept twice (a segment both live and archived) once.
        let place = |(record, source, _): &Found| sources[*source].place(record.seq);
        found.sort_by_key(place);
        found.dedup_by_key(|found| place(found));
        // The node's state before each event, kept by the same index a database opens with.
        let mut state = Index::default();
        // Sorted by place in the log, a loss before an event at the same place.
        let mut entries: Vec<((u64, bool, bool, u64), HistoryEntry)> = found
            .into_iter()
            .map(|(record, source, offset)| {
                let (at, compacted, seq) = sources[source].place(record.seq);
                let before = state.get(id).map(|e| state.state(e));
                state.apply_event(&record.event, record.written_at);
                let change = change(before.as_ref(), &record.event);
                let source = &sources[source];
                (
                    (at, true, compacted, seq),
                    entry(record, source, offset, change),
                )
            })
            .collect();
        entries.extend(losses.into_iter().map(|(record, source, offset)| {
            let Event::Loss(loss) = &record.event else {
                unreachable!("only losses are collected")
            };
            let loss = loss.clone();
            // Where the lost records would have been.
            let at = loss.lost.map_or(record.seq, |(first, _)| first);
            let source = &sources[source];
            (
                (at, false, false, 0),
                entry(record, source, offset, Change::Loss(loss)),
            )
        }));
        entries.sort_by_key(|(place, _)| *place);
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    })
}

/// A record found while scanning, with its source's index and its offset.
type Found = (LogRecord, usize, u64);

fn entry(record: LogRecord, source: &Source, offset: u64, change: Change) -> HistoryEntry {
    HistoryEntry {
        change,
        record,
        file: source.segment.path.clone(),
        offset,
        archived: source.archived,
        compacted: source.segment.header.is_compacted(),
    }
}

/// What `event` changed, given the node's state before it.
fn change(before: Option<&PeerState>, event: &Event) -> Change {
    let old_node = before.and_then(|s| s.node.clone());
    let fails_at = |ip: IpAddr| {
        let ip = ip.to_canonical();
        before
            .and_then(|s| s.ips.iter().find(|l| l.ip == ip))
            .map_or(0, |l| l.fails)
    };
    match event {
        Event::NodeUpdated(node) => match old_node {
            None => Change::RecordCreated(node.clone()),
            Some(old) if old == *node => Change::RecordRewritten(node.clone()),
            Some(old) => Change::EndpointChanged {
                from: old,
                to: node.clone(),
            },
        },
        Event::Record(record) => Change::SignedRecord {
            from_seq: before
                .filter(|s| s.node.is_some() || s.record.is_some())
                .map(|s| s.record.as_ref().map_or(0, NodeRecord::seq)),
            to_seq: record.seq(),
            from: old_node,
            to: record.node(),
        },
        Event::Ping { at, .. } => Change::PingSent(*at),
        Event::Pong { at, .. } => Change::PongReceived(*at),
        Event::FindFails { fails, .. } => Change::FindFails {
            from: before.map_or(0, |s| s.fails),
            to: *fails,
        },
        Event::PingFrom { ip, at, .. } => Change::PingSentTo(*ip, *at),
        Event::PongFrom { ip, at, .. } => Change::PongReceivedFrom(*ip, *at),
        Event::FindFailsAt { ip, fails, .. } => Change::FindFailsAt {
            ip: *ip,
            from: fails_at(*ip),
            to: *fails,
        },
        Event::NodeDeleted { .. } => Change::Deleted,
        Event::NodeExpired { .. } => Change::Expired,
        Event::IpExpired { ip, .. } => Change::IpExpired(*ip),
        Event::Evicted { subnet, .. } => Change::Evicted(*subnet),
        Event::IpEvicted { ip, .. } => Change::IpEvicted(*ip),
        Event::LocalSeq { .. } => unreachable!("the local seq is about no node"),
        Event::Loss(loss) => Change::Loss(loss.clone()),
    }
}
