//! `inspect::history` and `inspect::export_with_archive_each` through the library: which
//! segments tell a history (a compacted segment restates older events only where the archive
//! still holds every one of them), and what each event changed.

mod common;

use std::collections::BTreeSet;
use std::fs;
use std::ops::ControlFlow;
use std::path::Path;

use common::{at, id, node, segments};
use peerlog::inspect::{self, no_progress, Change, HistoryEntry};
use peerlog::{Event, Node, NodeDb, NodeId, Options, Record};

fn opts(keep_history: bool) -> Options {
    Options {
        segment_size: 4096,
        keep_history,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    }
}

/// 40 nodes, each written three times (the third time at another port) with pings between,
/// over six 4 KiB segments; closed.
fn write_log(dir: &Path) {
    let db = NodeDb::open_with(dir, 1, id(0), opts(false)).unwrap();
    for round in 0..3u16 {
        for n in 1..=40 {
            let mut record = node(n);
            if round == 2 {
                record.udp += 1;
            }
            db.update_node(&record).unwrap();
            db.update_last_ping(&id(n), at(n + u64::from(round)))
                .unwrap();
        }
    }
    db.close().unwrap();
    assert!(segments(dir).len() >= 5, "{:?}", segments(dir));
}

fn compact(dir: &Path, keep_history: bool) {
    let db = NodeDb::open_with(dir, 1, id(0), opts(keep_history)).unwrap();
    db.compact().unwrap();
    db.close().unwrap();
}

fn history(dir: &Path, n: u64) -> Vec<HistoryEntry> {
    inspect::history(dir, &id(n), &no_progress).unwrap()
}

/// The endpoint a history leaves a node at: that of its last record change.
fn last_endpoint(history: &[HistoryEntry]) -> Option<Node> {
    history.iter().rev().find_map(|e| match &e.change {
        Change::RecordCreated(n) | Change::RecordRewritten(n) => Some(n.clone()),
        Change::EndpointChanged { to, .. } => Some(to.clone()),
        _ => None,
    })
}

fn export_with_archive(dir: &Path) -> Vec<Record> {
    let mut records = Vec::new();
    inspect::export_with_archive_each(dir, &no_progress, |r| {
        records.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    records
}

/// The ids with a node record among `records`.
fn ids_with_records(records: &[Record]) -> BTreeSet<NodeId> {
    records
        .iter()
        .filter_map(|r| match &r.event {
            Event::NodeUpdated(node) => Some(node.id),
            _ => None,
        })
        .collect()
}

/// A reader never shows less than the live log holds: every live node's history ends at the
/// endpoint the live state has, and the export with the archive has a record row for every
/// node the export has one for.
fn assert_readers_hold_the_live_state(dir: &Path, case: &str) {
    let state = inspect::state(dir, &no_progress).unwrap();
    let live: Vec<_> = state.peers.iter().filter(|p| p.node.is_some()).collect();
    assert_eq!(live.len(), 40, "{case}");
    for peer in &live {
        let n = u64::from_be_bytes(peer.id.0[..8].try_into().unwrap());
        let history = history(dir, n);
        assert_eq!(
            last_endpoint(&history).as_ref(),
            peer.node.as_ref(),
            "{case}: node {n}'s history does not end at its live state: {history:#?}"
        );
    }
    let exported = ids_with_records(&inspect::export(dir, &no_progress).unwrap());
    let with_archive = ids_with_records(&export_with_archive(dir));
    assert_eq!(exported.len(), 40, "{case}");
    assert!(
        exported.is_subset(&with_archive),
        "{case}: export --with-archive misses {:?}",
        exported.difference(&with_archive).collect::<Vec<_>>()
    );
}

/// Issue 19, item 1: a compaction that found damage (without `keep_history`) moves only the
/// damaged segment to `archive/`, which starts below the compacted segment's range although
/// every other segment it replaced is gone: the compacted segment's events are then the only
/// account of the live state, not restatements.
#[test]
fn history_and_export_with_archive_keep_the_live_state_after_a_compaction_that_found_damage() {
    for case in [
        "a middle segment deleted",
        "a byte flipped in the first segment",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path());
        let files = segments(dir.path());
        match case {
            "a middle segment deleted" => fs::remove_file(&files[files.len() / 2]).unwrap(),
            _ => {
                let mut bytes = fs::read(&files[0]).unwrap();
                bytes[64 + 20] ^= 0x40;
                fs::write(&files[0], bytes).unwrap();
            }
        }
        compact(dir.path(), false);
        let archived = fs::read_dir(dir.path().join("archive")).unwrap().count();
        assert_eq!(archived, 1, "{case}: only the damaged segment is archived");
        assert_readers_hold_the_live_state(dir.path(), case);
        // And once more, after the next compaction carried everything over.
        compact(dir.path(), false);
        assert_readers_hold_the_live_state(dir.path(), case);
    }
}
