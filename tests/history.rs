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
use peerlog::{Event, LogRecord, Node, NodeDb, NodeId, Options};

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

fn export_with_archive(dir: &Path) -> Vec<LogRecord> {
    let mut records = Vec::new();
    inspect::export_with_archive_each(dir, &no_progress, |r| {
        records.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    records
}

/// The ids with a node record among `records`.
fn ids_with_records(records: &[LogRecord]) -> BTreeSet<NodeId> {
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
    let flip = |file: &Path| {
        let mut bytes = fs::read(file).unwrap();
        bytes[64 + 20] ^= 0x40;
        fs::write(file, bytes).unwrap();
    };
    for case in [
        "a middle segment deleted",
        "a byte flipped in the first segment",
        // The archive then holds the first and the last records replaced, but not those in
        // between, which no loss accounts for.
        "a byte flipped in the first and the last segment",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path());
        let files = segments(dir.path());
        let archived = match case {
            "a middle segment deleted" => {
                fs::remove_file(&files[files.len() / 2]).unwrap();
                1
            }
            "a byte flipped in the first segment" => {
                flip(&files[0]);
                1
            }
            _ => {
                flip(&files[0]);
                flip(files.last().unwrap());
                2
            }
        };
        compact(dir.path(), false);
        let kept = fs::read_dir(dir.path().join("archive")).unwrap().count();
        assert_eq!(
            kept, archived,
            "{case}: only the damaged segments are archived"
        );
        assert_readers_hold_the_live_state(dir.path(), case);
        // And once more, after the next compaction carried everything over.
        compact(dir.path(), false);
        assert_readers_hold_the_live_state(dir.path(), case);
    }
}

/// The changes of a history, without where they were found.
fn changes(history: &[HistoryEntry]) -> Vec<Change> {
    history.iter().map(|e| e.change.clone()).collect()
}

/// Issue 19, item 11: what each event changed, as the library reports it (not only the CLI's
/// words): a record created, rewritten unchanged, its endpoint changed; a signed record
/// replacing an unsigned one (seq 0) and then another; failure counts from what they were,
/// for the node and per IP; a delete.
#[test]
fn history_classifies_what_each_event_changed() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let n = common::record_id(7);
    let first = Node::new(n, common::record_ip4(8).into(), 1000, 1001);
    let moved = Node::new(n, common::record_ip4(9).into(), 1000, 1001);
    let ip = std::net::IpAddr::from(common::record_ip4(9));
    db.update_node(&first).unwrap();
    db.update_node(&first).unwrap();
    db.update_node(&moved).unwrap();
    db.update_find_fails(&n, 2).unwrap();
    db.update_find_fails(&n, 5).unwrap();
    db.update_find_fails_at(&n, ip, 3).unwrap();
    db.update_find_fails_at(&n, ip, 1).unwrap();
    db.update_last_ping(&n, at(1)).unwrap();
    db.update_last_pong(&n, at(2)).unwrap();
    db.update_record(&common::signed_record(7, 4)).unwrap();
    db.update_record(&common::signed_record(7, 5)).unwrap();
    db.delete_node(&n).unwrap();
    db.update_node(&first).unwrap();
    db.close().unwrap();

    let signed = common::stored_record(&common::signed_record(7, 4))
        .node()
        .unwrap();
    let history = inspect::history(dir.path(), &n, &no_progress).unwrap();
    assert_eq!(
        changes(&history),
        vec![
            Change::RecordCreated(first.clone()),
            Change::RecordRewritten(first.clone()),
            Change::EndpointChanged {
                from: first.clone(),
                to: moved.clone()
            },
            Change::FindFails { from: 0, to: 2 },
            Change::FindFails { from: 2, to: 5 },
            Change::FindFailsAt { ip, from: 0, to: 3 },
            Change::FindFailsAt { ip, from: 3, to: 1 },
            Change::PingSent(at(1)),
            Change::PongReceived(at(2)),
            Change::SignedRecord {
                from_seq: Some(0),
                to_seq: 4,
                from: Some(moved),
                to: Some(signed.clone())
            },
            Change::SignedRecord {
                from_seq: Some(4),
                to_seq: 5,
                from: Some(signed.clone()),
                to: Some(signed)
            },
            Change::Deleted,
            // After a delete, the node starts over.
            Change::RecordCreated(first),
        ]
    );
    assert!(history.iter().all(|e| !e.archived && !e.compacted));
    assert!(history
        .windows(2)
        .all(|w| w[0].record.seq < w[1].record.seq));
    // Another node's history holds none of these.
    assert!(inspect::history(dir.path(), &id(1), &no_progress)
        .unwrap()
        .is_empty());
}

/// Where every original a compaction replaced is kept (`keep_history`), the compacted
/// segment only restates them: each event is listed once, in its original form, from the
/// archive. Where none is kept, the compacted segment is the history. Where the archive starts
/// later (`keep_history` turned on after a first compaction), the first compacted segment is
/// the history up to it, the originals after it, and the next compacted segment restates both.
#[test]
fn a_compacted_segment_restates_only_what_the_archive_holds() {
    // Every original kept.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    let before = history(dir.path(), 5);
    assert_eq!(before.len(), 6, "{before:#?}");
    compact(dir.path(), true);
    let after = history(dir.path(), 5);
    assert_eq!(changes(&after), changes(&before));
    assert!(
        after.iter().all(|e| e.archived && !e.compacted),
        "{after:#?}"
    );
    let seqs = |h: &[HistoryEntry]| h.iter().map(|e| e.record.seq).collect::<Vec<_>>();
    assert_eq!(seqs(&after), seqs(&before));
    let exported = export_with_archive(dir.path());
    assert_eq!(
        exported,
        // Nothing was written after the compaction: the live log is the compacted segment.
        {
            let mut all = Vec::new();
            for n in 1..=40 {
                all.extend(history(dir.path(), n).into_iter().map(|e| e.record));
            }
            all.sort_by_key(|r| r.seq);
            all
        }
    );

    // None kept: the compacted segment tells the node's state.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    compact(dir.path(), false);
    let compacted = history(dir.path(), 5);
    assert!(
        matches!(compacted[0].change, Change::RecordCreated(_)),
        "{compacted:#?}"
    );
    assert!(compacted.iter().all(|e| e.compacted && !e.archived));
    assert_eq!(last_endpoint(&compacted), last_endpoint(&before));

    // Kept from the first compaction on: the first compacted segment (archived by the second)
    // and the originals after it, each once; the second compacted segment adds nothing.
    let dir = tempfile::tempdir().unwrap();
    write_log(dir.path());
    compact(dir.path(), false);
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(true)).unwrap();
    db.update_last_pong(&id(5), at(9)).unwrap();
    db.update_node(&node(5)).unwrap();
    db.compact().unwrap();
    db.close().unwrap();
    let history = history(dir.path(), 5);
    let n = compacted.len();
    assert_eq!(changes(&history[..n]), changes(&compacted), "{history:#?}");
    assert!(history[..n].iter().all(|e| e.compacted && e.archived));
    let mut moved_back = before.last().map(|_| node(5)).unwrap();
    moved_back.udp = 30303;
    assert_eq!(
        changes(&history[n..]),
        vec![
            Change::PongReceived(at(9)),
            Change::EndpointChanged {
                from: last_endpoint(&before).unwrap(),
                to: moved_back
            },
        ],
        "{history:#?}"
    );
    assert!(history[n..].iter().all(|e| e.archived && !e.compacted));
}

/// Telling whether a compacted segment restates the archive takes a first read, which
/// progress counts: only when the archive holds records a compacted segment replaced.
#[test]
fn export_with_archive_reads_twice_only_when_a_compacted_segment_may_restate_the_archive() {
    let totals = |dir: &Path| {
        let seen = std::cell::RefCell::new(BTreeSet::new());
        let last = std::cell::Cell::new((1, 0));
        let progress = |done: u64, total: u64| {
            assert!(done <= total, "{done} of {total}");
            seen.borrow_mut().insert(total);
            last.set((done, total));
        };
        inspect::export_with_archive_each(dir, &progress, |_| ControlFlow::Continue(())).unwrap();
        let (done, total) = last.get();
        assert_eq!(done, total, "the read ends at its total");
        seen.into_inner()
    };
    let bytes = |dir: &Path| -> u64 {
        let mut all = segments(dir);
        if dir.join("archive").is_dir() {
            all.extend(segments(&dir.join("archive")));
        }
        all.iter().map(|f| fs::metadata(f).unwrap().len()).sum()
    };
    for (keep_history, passes) in [(false, 1), (true, 2)] {
        let dir = tempfile::tempdir().unwrap();
        write_log(dir.path());
        assert_eq!(totals(dir.path()), BTreeSet::from([bytes(dir.path())]));
        compact(dir.path(), keep_history);
        assert_eq!(
            totals(dir.path()),
            BTreeSet::from([passes * bytes(dir.path())]),
            "keep_history {keep_history}"
        );
    }
}
