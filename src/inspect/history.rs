//! The history of one node, from the live log and the archive.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::{archived_segments, scan_segment, with_listing, InspectError, Progress};
use crate::event::{Event, Record};
use crate::index::Index;
use crate::journal::dir::SegmentFile;
use crate::{Node, NodeId};

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
}

struct Source {
    segment: SegmentFile,
    archived: bool,
}

/// Which segments tell the history: every ordinary segment (live, superseded or archived) of
/// the current generation, and a compacted segment only where no ordinary segment covers its
/// range (otherwise its records are restatements of events already listed).
fn history_sources(live: Vec<SegmentFile>, archived: Vec<SegmentFile>) -> Vec<Source> {
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
        })
        .chain(archived.into_iter().map(|segment| Source {
            segment,
            archived: true,
        }))
        .filter(|s| s.segment.header.salt == salt)
        .collect();
    let raw_from = all
        .iter()
        .filter(|s| !s.segment.header.is_compacted())
        .map(|s| s.segment.header.first_seq)
        .min()
        .unwrap_or(u64::MAX);
    all.into_iter()
        .filter(|s| {
            !s.segment.header.is_compacted() || s.segment.header.replaces_through < raw_from
        })
        .collect()
}

/// Every event about `id`, oldest first, from the live segments and `archive/`.
pub fn history(
    dir: &Path,
    id: &NodeId,
    progress: Progress<'_>,
) -> Result<Vec<HistoryEntry>, InspectError> {
    with_listing(dir, |live| {
        let sources = history_sources(live, archived_segments(dir)?);
        let total: u64 = sources.iter().map(|s| s.segment.len).sum();
        let mut done = 0;
        let mut found = Vec::new();
        for source in &sources {
            scan_segment(&source.segment, |offset, record| {
                if record.event.id() == id {
                    found.push((record, source, offset));
                }
            })?;
            done += source.segment.len;
            progress(done, total);
        }
        let compacted = |s: &Source| s.segment.header.is_compacted();
        found.sort_by_key(|(record, source, _)| (record.seq, compacted(source)));
        found.dedup_by_key(|(record, source, _)| (record.seq, compacted(source)));
        // The node's state before each event, kept by the same index a database opens with.
        let mut state = Index::default();
        Ok(found
            .into_iter()
            .map(|(record, source, offset)| {
                let before = state.get(id).map(|e| e.state());
                let (old_node, old_fails) = before.map_or((None, 0), |s| (s.node, s.fails));
                state.apply_event(&record.event, record.written_at);
                HistoryEntry {
                    change: change(old_node.as_ref(), old_fails, &record.event),
                    record,
                    file: source.segment.path.clone(),
                    offset,
                    archived: source.archived,
                    compacted: compacted(source),
                }
            })
            .collect())
    })
}

/// What `event` changed, given the node's record and failure count before it.
fn change(old_node: Option<&Node>, old_fails: u32, event: &Event) -> Change {
    match event {
        Event::NodeUpdated(node) => match old_node {
            None => Change::RecordCreated(node.clone()),
            Some(old) if old == node => Change::RecordRewritten(node.clone()),
            Some(old) => Change::EndpointChanged {
                from: old.clone(),
                to: node.clone(),
            },
        },
        Event::Ping { at, .. } => Change::PingSent(*at),
        Event::Pong { at, .. } => Change::PongReceived(*at),
        Event::FindFails { fails, .. } => Change::FindFails {
            from: old_fails,
            to: *fails,
        },
        Event::NodeDeleted { .. } => Change::Deleted,
        Event::NodeExpired { .. } => Change::Expired,
    }
}
