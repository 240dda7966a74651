//! The history of one node, from the live log and the archive.

use std::net::IpAddr;
use std::ops::ControlFlow;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{archived_segments, scan_segment, with_listing, InspectError, Progress};
use crate::event::{Event, Record};
use crate::index::{Index, PeerState};
use crate::journal::dir::SegmentFile;
use crate::Error;
use crate::{Loss, Node, NodeId, NodeRecord, Subnet};

/// One event about a node, with where it was found and what it changed.
#[derive(Clone, Debug)]
pub struct HistoryEntry {
    /// The record.
    pub record: Record,
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
    Loss(Loss),
}

/// A segment that tells part of a history.
pub(super) struct Source {
    segment: SegmentFile,
    archived: bool,
    /// A compacted segment whose range ordinary segments cover: its events about nodes are
    /// restatements, and only the losses it records are news.
    pub restates: bool,
}

impl Source {
    /// Whether it is a compacted segment: its events restate older ones, each with the
    /// write time of its node's newest event.
    pub(super) fn is_compacted(&self) -> bool {
        self.segment.header.is_compacted()
    }
}

/// Which segments tell the history: every ordinary segment (live, superseded or archived) of
/// the current generation, and a compacted segment only where no ordinary segment covers its
/// range (otherwise its records are restatements of events already listed: such a segment is
/// listed, flagged `restates`, for the losses it records).
///
/// In order of their first sequence number (a compacted segment after an ordinary one on a
/// tie): one after the other, they hand over records in sequence order.
pub(super) fn history_sources(live: Vec<SegmentFile>, archived: Vec<SegmentFile>) -> Vec<Source> {
    let Some(salt) = live
        .iter()
        .max_by_key(|s| s.header.segment_id)
        .map(|s| s.header.salt)
    else {
        return Vec::new();
    };
    let all: Vec<Source> = live
        .into_iter()
        .map(|segment| Source {
            segment,
            archived: false,
            restates: false,
        })
        .chain(archived.into_iter().map(|segment| Source {
            segment,
            archived: true,
            restates: false,
        }))
        .filter(|s| s.segment.header.salt == salt)
        .collect();
    let raw_from = all
        .iter()
        .filter(|s| !s.segment.header.is_compacted())
        .map(|s| s.segment.header.first_seq)
        .min()
        .unwrap_or(u64::MAX);
    let mut sources: Vec<Source> = all
        .into_iter()
        .map(|mut s| {
            let header = &s.segment.header;
            s.restates = header.is_compacted() && header.replaces_through >= raw_from;
            s
        })
        .collect();
    sources.sort_by_key(|s| (s.segment.header.first_seq, s.segment.header.is_compacted()));
    sources
}

/// Reads `sources` one after the other, handing every intact record to `on_record` with its
/// source and offset, until `on_record` stops it; reports progress in bytes.
pub(super) fn scan_sources<'s>(
    sources: &'s [Source],
    progress: Progress<'_>,
    mut on_record: impl FnMut(Record, &'s Source, u64) -> ControlFlow<()>,
) -> Result<(), Error> {
    let total: u64 = sources.iter().map(|s| s.segment.len).sum();
    let mut done = 0;
    progress(0, total);
    for source in sources {
        let mut flow = ControlFlow::Continue(());
        scan_segment(&source.segment, |offset, record| {
            if flow.is_continue() {
                flow = on_record(record, source, offset);
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
        let sources = history_sources(live, archived_segments(dir)?);
        let (mut found, mut losses) = (Vec::new(), Vec::<Found>::new());
        scan_sources(&sources, progress, |record, source, offset| {
            match &record.event {
                Event::Loss(loss) => {
                    let absorbed = |(known, ..): &mut Found<'_>| match &mut known.event {
                        Event::Loss(known) => known.absorb(loss),
                        _ => false,
                    };
                    if !losses.iter_mut().any(absorbed) {
                        losses.push((record, source, offset));
                    }
                }
                event if !source.restates && event.id() == Some(id) => {
                    found.push((record, source, offset))
                }
                _ => {}
            }
            ControlFlow::Continue(())
        })?;
        let compacted = |s: &Source| s.segment.header.is_compacted();
        found.sort_by_key(|(record, source, _)| (record.seq, compacted(source)));
        found.dedup_by_key(|(record, source, _)| (record.seq, compacted(source)));
        // The node's state before each event, kept by the same index a database opens with.
        let mut state = Index::default();
        // Sorted by place in the log, a loss before an event at the same place.
        let mut entries: Vec<((u64, bool), HistoryEntry)> = found
            .into_iter()
            .map(|(record, source, offset)| {
                let before = state.get(id).map(|e| state.state(e));
                state.apply_event(&record.event, record.written_at);
                let change = change(before.as_ref(), &record.event);
                ((record.seq, true), entry(record, source, offset, change))
            })
            .collect();
        // Restatements (from a compacted segment) state the node as of the end of what the
        // compaction replaced, so no loss among those records goes after the first of them.
        let restated_from = entries
            .iter()
            .filter(|(_, e)| e.compacted)
            .map(|((seq, _), _)| *seq)
            .min()
            .unwrap_or(u64::MAX);
        entries.extend(losses.into_iter().map(|(record, source, offset)| {
            let Event::Loss(loss) = record.event else {
                unreachable!("only losses are collected")
            };
            // Where the lost records would have been.
            let place = loss.lost.map_or(record.seq, |(first, _)| first);
            let place = (place.min(restated_from), false);
            (place, entry(record, source, offset, Change::Loss(loss)))
        }));
        entries.sort_by_key(|(place, _)| *place);
        Ok(entries.into_iter().map(|(_, entry)| entry).collect())
    })
}

/// A record found while scanning, with its source and offset.
type Found<'s> = (Record, &'s Source, u64);

fn entry(record: Record, source: &Source, offset: u64, change: Change) -> HistoryEntry {
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
        Event::Loss(loss) => Change::Loss(*loss),
    }
}
