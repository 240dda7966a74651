//! Damage outlives compaction: a loss found in the live log is recorded by the compaction that
//! rewrites it away, carried over by every later one, reported by `verify`, `stats` and
//! `history`, and can be acknowledged.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::{id, node, segments};
use peerlog::inspect::{self, Change};
use peerlog::testing::{list_dir, salt_seed, Listing, ReplayPlan, ScanItem, SegmentScanner};
use peerlog::{Damage, DamageKind, DamageState, Event, NodeDb, Options};

fn opts(keep_history: bool) -> Options {
    Options {
        segment_size: 4096,
        keep_history,
        ..Options::default()
    }
}

/// A database of `n` nodes over several small segments, closed.
fn write_nodes(dir: &Path, n: u64) {
    let db = NodeDb::open_with(dir, 1, id(0), opts(false)).unwrap();
    for i in 1..=n {
        db.update_node(&node(i)).unwrap();
    }
    db.close().unwrap();
}

fn damage(report: &inspect::VerifyReport) -> Vec<&Damage> {
    report.damage(false).collect()
}

fn verify(dir: &Path) -> inspect::VerifyReport {
    inspect::verify(dir, &inspect::no_progress).unwrap()
}

/// Removes the second segment; returns the sequence numbers the open then reports lost.
fn lose_middle_segment(dir: &Path) -> (u64, u64) {
    let files = segments(dir);
    assert!(files.len() >= 3, "{files:?}");
    fs::remove_file(&files[1]).unwrap();
    let db = NodeDb::open_with(dir, 1, id(0), opts(false)).unwrap();
    let problems = &db.recovery().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let lost = problems[0].lost.unwrap();
    db.close().unwrap();
    lost
}

#[test]
fn a_lost_segment_stays_reported_after_any_number_of_compactions() {
    for keep_history in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        write_nodes(dir.path(), 150);
        let lost = lose_middle_segment(dir.path());

        for round in 1..=3 {
            let db = NodeDb::open_with(dir.path(), 1, id(0), opts(keep_history)).unwrap();
            db.update_node(&node(100 + round)).unwrap();
            let stats = db.compact().unwrap();
            assert_eq!(stats.losses.len(), 1, "round {round}: {stats:?}");
            assert_eq!(stats.losses[0].lost, Some(lost));
            assert_eq!(stats.losses[0].kind, DamageKind::Missing);
            // Found by the first compaction only; carried by the others.
            assert_eq!(stats.problems.len(), usize::from(round == 1), "{stats:?}");
            assert_eq!(db.losses(), stats.losses);
            db.close().unwrap();

            let report = verify(dir.path());
            let found = damage(&report);
            assert_eq!(found.len(), 1, "keep_history {keep_history}: {found:?}");
            assert_eq!(found[0].lost, Some(lost));
            assert!(found[0].state.recorded_at().is_some());
            assert!(!report.is_intact(false));
        }
        // The database reopens with what it kept and reports the loss.
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
        assert!(db.recovery().problems.is_empty());
        assert_eq!(db.losses().len(), 1);
        assert_eq!(db.node(&id(1)), Some(node(1)));
        assert_eq!(db.node(&id(103)), Some(node(103)));
    }
}

#[test]
fn a_truncated_sealed_segment_keeps_its_lost_sequence_numbers_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let files = segments(dir.path());
    // Cut the first segment in the middle of a record.
    let file = fs::OpenOptions::new().write(true).open(&files[0]).unwrap();
    file.set_len(1003).unwrap();
    drop(file);
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let lost = db.recovery().problems[0].lost.expect("a lost range");
    db.compact().unwrap();
    db.close().unwrap();

    let report = verify(dir.path());
    let found = damage(&report);
    assert_eq!(found.len(), 1, "{found:?}");
    // The damaged segment is in archive/, read on its own, and the record of the loss gives
    // what it alone cannot: the sequence numbers lost.
    assert!(
        found[0].path.starts_with(dir.path().join("archive")),
        "{found:?}"
    );
    assert_eq!(found[0].kind, DamageKind::DamagedTail);
    assert_eq!(found[0].lost, Some(lost));
    assert!(
        found[0].to_string().contains("lost sequence numbers"),
        "{}",
        found[0]
    );
}

#[test]
fn acknowledged_damage_is_listed_but_not_counted_and_the_acknowledgement_survives_compaction() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let lost = lose_middle_segment(dir.path());

    // Acknowledged before any compaction: the loss is in the live log, not yet recorded.
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let accepted = db.accept_damage().unwrap();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].lost, Some(lost));
    assert!(accepted[0].is_acknowledged());
    // Nothing left to acknowledge.
    assert!(db.accept_damage().unwrap().is_empty());
    let report = verify(dir.path());
    assert!(report.is_intact(false), "{:?}", report.findings);
    let listed: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.is_acknowledged())
        .collect();
    assert_eq!(listed.len(), 1, "{:?}", report.findings);
    assert!(
        listed[0].to_string().ends_with("(acknowledged)"),
        "{}",
        listed[0]
    );

    for round in 0..2 {
        // Something to compact.
        db.update_node(&node(300 + round)).unwrap();
        let stats = db.compact().unwrap();
        assert_eq!(stats.losses.len(), 1, "round {round}: {stats:?}");
        assert!(stats.losses[0].is_acknowledged(), "{stats:?}");
        let report = verify(dir.path());
        assert!(report.is_intact(false), "{:?}", report.findings);
        assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
        assert!(report.findings[0].is_acknowledged());
    }
    db.close().unwrap();

    // New damage after the acknowledgement is counted.
    write_more_and_lose_another_segment(dir.path());
    let report = verify(dir.path());
    assert_eq!(damage(&report).len(), 1, "{:?}", report.findings);
    assert_eq!(
        report
            .findings
            .iter()
            .filter(|f| f.is_acknowledged())
            .count(),
        1
    );
}

/// One damaged place goes through the three states, the same place and time in every report:
/// found by opening and by `verify`, recorded by a compaction (its problem and the loss it
/// records the same), then acknowledged, keeping when it was first recorded.
#[test]
fn a_damaged_place_is_found_then_recorded_then_acknowledged() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    lose_middle_segment(dir.path());
    let report = verify(dir.path());
    assert_eq!(damage(&report).len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].state, DamageState::Found);

    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let found = db.recovery().problems[0].clone();
    assert_eq!(found.state, DamageState::Found);
    assert!(db.losses().is_empty());
    let stats = db.compact().unwrap();
    let recorded = db.losses();
    assert_eq!(recorded.len(), 1, "{recorded:?}");
    let at = match recorded[0].state {
        DamageState::Recorded { at } => at,
        other => panic!("not recorded: {other:?}"),
    };
    // The problem the compaction found is the loss it recorded, in the same state.
    assert_eq!(stats.problems.len(), 1, "{stats:?}");
    assert_eq!(stats.problems[0].state, recorded[0].state);
    assert_eq!(stats.problems[0].lost, found.lost);
    assert_eq!(stats.losses, recorded);
    // A loss names its segment by file name: where the file is now, the log does not know.
    assert_eq!(recorded[0].path, Path::new(found.path.file_name().unwrap()));

    let accepted = db.accept_damage().unwrap();
    let acknowledged = Damage {
        state: DamageState::Acknowledged { at },
        ..recorded[0].clone()
    };
    assert_eq!(accepted, vec![acknowledged.clone()]);
    assert_eq!(db.losses(), vec![acknowledged]);
    db.close().unwrap();
    let report = verify(dir.path());
    assert_eq!(report.findings.len(), 1, "{:?}", report.findings);
    assert_eq!(report.findings[0].state, DamageState::Acknowledged { at });
    // Its place is gone from the live log: verify names the file where it is now.
    let name = recorded[0].path.file_name().unwrap();
    let archived = dir.path().join("archive").join(name);
    assert_eq!(report.findings[0].path, archived, "{:?}", report.findings);
}

fn write_more_and_lose_another_segment(dir: &Path) {
    let db = NodeDb::open_with(dir, 1, id(0), opts(false)).unwrap();
    for i in 200..350 {
        db.update_node(&node(i)).unwrap();
    }
    db.close().unwrap();
    // An ordinary segment with others after it (the compacted one holds the recorded loss).
    let mut ordinary: Vec<_> = inspect::segments(dir)
        .unwrap()
        .into_iter()
        .filter(|s| !s.compacted)
        .collect();
    ordinary.sort_by_key(|s| s.first_seq);
    assert!(ordinary.len() >= 3, "{ordinary:?}");
    fs::remove_file(&ordinary[1].path).unwrap();
}

#[test]
fn damage_acknowledged_after_compaction_is_found_in_the_compacted_segment() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    lose_middle_segment(dir.path());
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    db.compact().unwrap();
    assert!(!db.losses()[0].is_acknowledged());
    let accepted = db.accept_damage().unwrap();
    assert_eq!(accepted.len(), 1);
    assert_eq!(db.losses().len(), 1, "the same place, acknowledged");
    assert!(db.losses()[0].is_acknowledged());
    db.close().unwrap();
    assert!(verify(dir.path()).is_intact(false));
}

/// The losses a history lists, in its order.
fn losses_in(history: &[inspect::HistoryEntry]) -> Vec<&Damage> {
    history
        .iter()
        .filter_map(|e| match &e.change {
            Change::Loss(loss) => Some(loss),
            _ => None,
        })
        .collect()
}

/// A loss recorded by a compaction (in the active segment and again in the compacted one) and
/// acknowledged later is one place: `history` lists it once, acknowledged.
#[test]
fn history_lists_a_recorded_and_acknowledged_loss_once() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let lost = lose_middle_segment(dir.path());
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(true)).unwrap();
    db.compact().unwrap();
    assert_eq!(db.accept_damage().unwrap().len(), 1);
    db.close().unwrap();

    let history = inspect::history(dir.path(), &id(150), &inspect::no_progress).unwrap();
    let losses = losses_in(&history);
    assert_eq!(losses.len(), 1, "{history:?}");
    assert_eq!(losses[0].lost, Some(lost));
    assert!(losses[0].is_acknowledged(), "{:?}", losses[0]);
}

#[test]
fn stats_and_history_report_recorded_losses() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let lost = lose_middle_segment(dir.path());
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(true)).unwrap();
    db.compact().unwrap();
    db.close().unwrap();

    let stats = inspect::stats(
        dir.path(),
        &id(0),
        Duration::from_secs(60),
        &inspect::no_progress,
    )
    .unwrap();
    assert_eq!(stats.losses.len(), 1, "{stats:?}");
    assert_eq!(stats.losses[0].lost, Some(lost));

    // The history of a node written after the loss shows it, in sequence order.
    let history = inspect::history(dir.path(), &id(150), &inspect::no_progress).unwrap();
    let losses = losses_in(&history);
    assert_eq!(losses.len(), 1, "{history:?}");
    assert_eq!(losses[0].lost, Some(lost));
    assert!(
        matches!(history.last().unwrap().change, Change::RecordCreated(_)),
        "the loss comes before the events after it: {history:?}"
    );
}

#[test]
fn an_intact_database_records_no_loss() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let stats = db.compact().unwrap();
    assert!(
        stats.losses.is_empty() && stats.problems.is_empty(),
        "{stats:?}"
    );
    assert!(db.losses().is_empty());
    assert!(db.accept_damage().unwrap().is_empty());
    db.close().unwrap();
    let report = verify(dir.path());
    assert!(report.findings.is_empty(), "{:?}", report.findings);
}

/// The segment files of `dir` (not `archive/`), by name.
fn segment_bytes(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    segments(dir)
        .into_iter()
        .map(|p| {
            let bytes = fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect()
}

/// Recovery covers losses as every other kind (checks/tests/damage.rs covers the others): every bit
/// of a loss frame flipped and every cut through it gives damage or a torn tail, and never a
/// loss that was not written.
#[test]
fn a_damaged_loss_frame_is_damage_and_never_another_loss() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    lose_middle_segment(dir.path());
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    db.compact().unwrap();
    let found = db.losses()[0].clone();
    // The last segment holds the loss (recorded by the compaction) and its acknowledgement,
    // with a record after them: the acknowledgement is damaged below.
    db.accept_damage().unwrap();
    db.update_node(&node(999)).unwrap();
    db.close().unwrap();
    let at = found.state.recorded_at().unwrap();
    let acknowledged = Damage {
        state: DamageState::Acknowledged { at },
        ..found.clone()
    };

    let pristine = segment_bytes(dir.path());
    // The last segment in replay order (the compacted one has a higher number).
    let listing = list_dir(dir.path(), Listing::Strict).unwrap();
    let newest = ReplayPlan::new(listing.segments).live.pop().unwrap();
    let (last, salt) = (&newest.path, newest.header.salt);
    let bytes = &pristine.iter().find(|(p, _)| p == last).unwrap().1;
    let (offset, len) = SegmentScanner::new(bytes, salt_seed(salt))
        .filter_map(|item| match item {
            ScanItem::Record {
                offset,
                len,
                record,
                ..
            } if matches!(record.event, Event::Loss(_)) => Some((offset as usize, len as usize)),
            _ => None,
        })
        .last()
        .expect("a loss frame in the last segment");

    let scratch = common::scratch_dir();
    let open_with = |last_bytes: &[u8]| {
        let copy = scratch.path().join("copy");
        let _ = fs::remove_dir_all(&copy);
        fs::create_dir(&copy).unwrap();
        for (path, data) in &pristine {
            let data = if path == last { last_bytes } else { data };
            fs::write(copy.join(path.file_name().unwrap()), data).unwrap();
        }
        let db = NodeDb::open_with(&copy, 1, id(0), opts(false)).unwrap();
        let seen = (
            db.losses(),
            db.recovery().problems.clone(),
            db.node(&id(999)),
        );
        db.close().unwrap();
        seen
    };
    let (losses, problems, _) = open_with(bytes);
    assert_eq!((losses, problems), (vec![acknowledged.clone()], vec![]));

    for bit in 0..len * 8 {
        let mut damaged = bytes.clone();
        damaged[offset + bit / 8] ^= 1 << (bit % 8);
        let (losses, problems, _) = open_with(&damaged);
        if problems.is_empty() {
            // Padding: neither checksummed nor read.
            assert_eq!(losses, vec![acknowledged.clone()], "bit {bit}");
        } else {
            assert_eq!(losses, vec![found.clone()], "bit {bit}: {problems:?}");
            assert_eq!(problems[0].kind, DamageKind::Damaged, "bit {bit}");
            assert_eq!(problems[0].offset as usize, offset, "bit {bit}");
        }
    }
    for cut in offset + 1..offset + len {
        let (losses, problems, after) = open_with(&bytes[..cut]);
        assert_eq!(losses, vec![found.clone()], "cut at {cut}");
        assert_eq!(problems.len(), 1, "cut at {cut}: {problems:?}");
        assert_eq!(problems[0].kind, DamageKind::TornTail, "cut at {cut}");
        // The record after it went with the tail.
        assert_eq!(after, None, "cut at {cut}");
    }
}

/// Review finding: damage that loses no sequence number (garbage in the zero tail of sealed
/// segments) in a log whose every record is live made compaction number its output from 0 (or
/// overflow): the losses it finds have no record of the input to take a number from.
#[test]
fn damage_that_loses_no_record_in_a_log_of_live_records_compacts_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    for file in &files[..2] {
        let mut bytes = fs::read(file).unwrap();
        *bytes.last_mut().unwrap() = 0xff;
        fs::write(file, &bytes).unwrap();
    }
    for round in 0..2 {
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
        let stats = db.compact().unwrap();
        assert_eq!(stats.losses.len(), 2, "round {round}: {stats:?}");
        assert!(stats.losses.iter().all(|l| l.lost.is_none()), "{stats:?}");
        db.close().unwrap();
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
        assert!(
            db.recovery().problems.is_empty(),
            "{:?}",
            db.recovery().problems
        );
        assert_eq!(db.len(), 150);
        assert_eq!(db.losses().len(), 2);
        db.close().unwrap();
        let report = verify(dir.path());
        assert_eq!(damage(&report).len(), 2, "{:?}", report.findings);
    }
}

/// Review finding: an acknowledgement covered damage that grew at the same place later (a
/// wider range of lost sequence numbers), and compaction then forgot the wider loss.
#[test]
fn an_acknowledgement_does_not_cover_damage_that_grew_since() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 250);
    let files = segments(dir.path());
    assert!(files.len() >= 5, "{files:?}");
    fs::remove_file(&files[2]).unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let narrow = db.accept_damage().unwrap();
    assert_eq!(narrow.len(), 1);
    db.close().unwrap();
    assert!(verify(dir.path()).is_intact(false));

    // The segment before goes too: the gap now starts earlier, at the same place.
    fs::remove_file(&files[1]).unwrap();
    let report = verify(dir.path());
    let found = damage(&report);
    assert_eq!(found.len(), 1, "{:?}", report.findings);
    let wide = found[0].lost.unwrap();
    assert!(wide.0 < narrow[0].lost.unwrap().0, "{wide:?}");

    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let stats = db.compact().unwrap();
    let unacknowledged: Vec<_> = stats
        .losses
        .iter()
        .filter(|l| !l.is_acknowledged())
        .collect();
    assert_eq!(unacknowledged.len(), 1, "{stats:?}");
    assert_eq!(unacknowledged[0].lost, Some(wide));
    db.close().unwrap();
    let report = verify(dir.path());
    let found = damage(&report);
    assert_eq!(found.len(), 1, "{:?}", report.findings);
    assert_eq!(found[0].lost, Some(wide));
}

/// Review finding: garbage at the end of the segment a compaction seals (written while the
/// database ran) was taken for a torn tail, not recorded, and its segment archived.
#[test]
fn a_damaged_tail_of_the_segment_compaction_seals_is_recorded() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    for i in 1..=10 {
        db.update_node(&node(i)).unwrap();
    }
    db.sync().unwrap();
    // The active segment is the only one: garbage at its very end, far past the records.
    let active = segments(dir.path()).pop().unwrap();
    let mut bytes = fs::read(&active).unwrap();
    let end = bytes.len();
    bytes[end - 16..].fill(0xab);
    fs::write(&active, &bytes).unwrap();
    let stats = db.compact().unwrap();
    assert_eq!(stats.losses.len(), 1, "{stats:?}");
    assert_eq!(stats.losses[0].kind, DamageKind::DamagedTail);
    db.close().unwrap();
    let report = verify(dir.path());
    let found = damage(&report);
    assert_eq!(found.len(), 1, "{:?}", report.findings);
    assert_eq!(found[0].kind, DamageKind::DamagedTail);
    assert!(found[0].state.recorded_at().is_some(), "{:?}", found[0]);
}

/// Issue 19, item 3: a compaction writes its segment beside the one it sealed the log into,
/// which it never removes, so a log that ends with a compacted segment has lost the segments
/// after it. `open`, `verify` and `stats` say so (how many records is unknown).
#[test]
fn a_log_that_ends_with_its_compacted_segment_reports_the_segments_after_it_missing() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    db.compact().unwrap();
    db.update_node(&node(151)).unwrap();
    db.close().unwrap();
    let files = segments(dir.path());
    assert_eq!(files.len(), 2, "{files:?}");
    // The segment after the compacted one (a lower id: made first) holds node 151.
    fs::remove_file(&files[0]).unwrap();

    let report = verify(dir.path());
    let found = damage(&report);
    assert_eq!(found.len(), 1, "{report:?}");
    let stats = inspect::stats(
        dir.path(),
        &id(0),
        Duration::from_secs(60),
        &inspect::no_progress,
    )
    .unwrap();
    assert_eq!(stats.problems, 1);
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap();
    let problems = &db.recovery().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(
        (problems[0].kind, &problems[0].path, problems[0].lost),
        (DamageKind::Missing, &files[1], None)
    );
    db.close().unwrap();
}

/// `accept_damage` beside a thread that writes and compacts back to back (automatic
/// compaction moves and rewrites the files it reads): it acknowledges the loss once, whether
/// the loss is still only found in the live log or already recorded by a compaction, and the
/// acknowledgement stays through every later compaction.
#[test]
fn damage_is_acknowledged_once_beside_back_to_back_compactions() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 150);
    let lost = lose_middle_segment(dir.path());
    let db = std::sync::Arc::new(NodeDb::open_with(dir.path(), 1, id(0), opts(false)).unwrap());
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let compactor = {
        let (db, stop) = (std::sync::Arc::clone(&db), std::sync::Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut compactions = 0;
            for i in 0.. {
                if stop.load(std::sync::atomic::Ordering::Relaxed) && compactions >= 3 {
                    break;
                }
                db.update_node(&node(1_000 + i % 50)).unwrap();
                db.compact().unwrap();
                compactions += 1;
            }
            compactions
        })
    };
    // Let compactions start, then acknowledge while they go on.
    std::thread::sleep(Duration::from_millis(20));
    let accepted = db.accept_damage().unwrap();
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let compactions = compactor.join().unwrap();
    assert_eq!(accepted.len(), 1, "{accepted:?}");
    assert_eq!(accepted[0].lost, Some(lost));
    assert!(accepted[0].is_acknowledged());
    assert!(db.accept_damage().unwrap().is_empty(), "acknowledged once");
    // Every loss the log records is the one, acknowledged, after further compactions.
    db.update_node(&node(2_000)).unwrap();
    let stats = db.compact().unwrap();
    assert_eq!(stats.losses.len(), 1, "{stats:?}");
    assert!(stats.losses[0].is_acknowledged(), "{stats:?}");
    let report = verify(dir.path());
    assert!(
        report.is_intact(false),
        "after {compactions} compactions: {:?}",
        report.findings
    );
    std::sync::Arc::into_inner(db).unwrap().close().unwrap();
}
