//! The history of one node, from the live log and the archive.

use super::*;

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
    /// Read from a compacted segment: a restatement of older events whose originals are gone,
    /// written at the time of the original event.
    pub compacted: bool,
    /// What it changed, in words: `record created 10.0.0.1 udp 30303 tcp 30303`,
    /// `fails 0 -> 2`, ...
    pub change: String,
}

impl HistoryEntry {
    /// The stable `history --json` object.
    pub fn to_json(&self) -> Value {
        let mut row = export_json(&self.record);
        let extra = json!({
            "change": self.change,
            "file": self.file.display().to_string(),
            "offset": self.offset,
            "archived": self.archived,
            "compacted": self.compacted,
        });
        if let (Value::Object(row), Value::Object(extra)) = (&mut row, extra) {
            row.extend(extra);
        }
        row
    }
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
) -> Result<Vec<HistoryEntry>, AuditError> {
    with_listing(dir, |live| {
        let sources = history_sources(live, archived_segments(dir)?);
        let total: u64 = sources.iter().map(|s| s.segment.len).sum();
        let mut done = 0;
        let mut entries = Vec::new();
        for source in &sources {
            scan_segment(&source.segment, |offset, record| {
                if record.event.id() == id {
                    entries.push(HistoryEntry {
                        record,
                        file: source.segment.path.clone(),
                        offset,
                        archived: source.archived,
                        compacted: source.segment.header.is_compacted(),
                        change: String::new(),
                    });
                }
            })?;
            done += source.segment.len;
            progress(done, total);
        }
        entries.sort_by_key(|e| (e.record.seq, e.compacted));
        entries.dedup_by_key(|e| (e.record.seq, e.compacted));
        describe_changes(&mut entries);
        Ok(entries)
    })
}

fn endpoint(node: &Node) -> String {
    format!("{} udp {} tcp {}", node.ip, node.udp, node.tcp)
}

fn describe_changes(entries: &mut [HistoryEntry]) {
    let mut state: Option<PeerState> = None;
    for entry in entries {
        let record = &entry.record;
        let before = state.clone();
        entry.change = describe(before.as_ref(), &record.event);
        match &record.event {
            Event::NodeDeleted { .. } | Event::NodeExpired { .. } => state = None,
            event => state
                .get_or_insert_with(|| PeerState::new(*event.id(), record.written_at))
                .apply(event, record.written_at),
        }
    }
}

fn describe(before: Option<&PeerState>, event: &Event) -> String {
    let old_node = before.and_then(|s| s.node.as_ref());
    match event {
        Event::NodeUpdated(node) => match old_node {
            None => format!("record created: {}", endpoint(node)),
            Some(old) if old == node => format!("record rewritten: {}", endpoint(node)),
            Some(old) => format!("endpoint {} -> {}", endpoint(old), endpoint(node)),
        },
        Event::Ping { at, .. } => format!("ping sent at {}", iso8601(*at)),
        Event::Pong { at, .. } => format!("pong received at {}", iso8601(*at)),
        Event::FindFails { fails, .. } => {
            format!(
                "findnode fails {} -> {fails}",
                before.map_or(0, |s| s.fails)
            )
        }
        Event::NodeDeleted { .. } => "deleted: record, ping, pong and fails dropped".into(),
        Event::NodeExpired { .. } => "expired: record, ping, pong and fails dropped".into(),
    }
}
