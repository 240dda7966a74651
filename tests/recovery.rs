//! Recovery on open: torn tails cut back at every offset, damage inside skipped and reported.

mod common;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::time::{Duration, UNIX_EPOCH};

use common::segments;
use peerlog::{DamageKind, Node, NodeDb, NodeId, Options};

fn id(n: u64) -> NodeId {
    let mut bytes = [0u8; 64];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    NodeId(bytes)
}

fn node(n: u64) -> Node {
    Node::new(
        id(n),
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, n as u8)),
        30303,
        30303,
    )
}

/// Small segments, each replayed with a checksum helper thread as large ones are (by default
/// only segments of 256 KiB or more get one).
fn opts() -> Options {
    peerlog::testing::set_check_ahead_from(0);
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

/// Writes node `n` then its ping (`n` seconds after the epoch), for n in 1..=count.
fn write_nodes(dir: &Path, count: u64) {
    let db = NodeDb::open_with(dir, 1, id(0), opts()).unwrap();
    for n in 1..=count {
        db.update_node(&node(n)).unwrap();
        db.update_last_ping(&id(n), UNIX_EPOCH + Duration::from_secs(n))
            .unwrap();
    }
    db.close().unwrap();
}

/// How many of the events written by `write_nodes` the database holds, checking that they
/// are exactly a prefix of what was written (no hole, nothing out of order).
fn surviving_events(db: &NodeDb, count: u64) -> u64 {
    let present: Vec<bool> = (1..=count)
        .flat_map(|n| {
            let node_ok = db.node(&id(n)).map(|found| assert_eq!(found, node(n)));
            let ping_ok = db
                .last_ping(&id(n))
                .map(|at| assert_eq!(at, UNIX_EPOCH + Duration::from_secs(n)));
            [node_ok.is_some(), ping_ok.is_some()]
        })
        .collect();
    let prefix = present.iter().take_while(|&&p| p).count();
    assert!(
        present[prefix..].iter().all(|&p| !p),
        "not a prefix: {present:?}"
    );
    prefix as u64
}

#[test]
fn torn_tail_at_every_offset_gives_exactly_the_records_before_the_cut() {
    let pristine = tempfile::tempdir().unwrap();
    let count = 30; // 60 events of ~100 bytes: two segments of 4 KiB.
    write_nodes(pristine.path(), count);
    let files = segments(pristine.path());
    assert!(files.len() >= 2, "expected rotation, got {files:?}");
    let last = files.last().unwrap().file_name().unwrap().to_owned();
    let original = fs::read(files.last().unwrap()).unwrap();
    let used = original.iter().rposition(|&b| b != 0).unwrap() + 1;

    let mut previous = None;
    let mut cuts_checked = 0;
    // Every offset over the last four records (and the zero padding after them).
    for cut in used.saturating_sub(4 * 104)..=used + 8 {
        let dir = tempfile::tempdir().unwrap();
        copy_dir(pristine.path(), dir.path());
        let file = dir.path().join(&last);
        fs::write(&file, &original[..cut]).unwrap();

        let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
        let events = surviving_events(&db, count);
        if let Some(previous) = previous {
            assert!(
                events == previous || events == previous + 1,
                "cut {cut}: {previous} -> {events}"
            );
        }
        previous = Some(events);
        let torn = db
            .recovery()
            .problems
            .iter()
            .filter(|p| p.kind == DamageKind::TornTail)
            .count();
        assert!(
            db.recovery()
                .problems
                .iter()
                .all(|p| p.kind == DamageKind::TornTail),
            "cut {cut}: {:?}",
            db.recovery().problems
        );
        assert!(torn <= 1);
        // A write after recovery survives another reopen, and so do the recovered records.
        db.update_find_fails(&id(999), 7).unwrap();
        db.close().unwrap();
        let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
        assert_eq!(
            db.find_fails(&id(999)),
            7,
            "cut {cut}: write after recovery lost"
        );
        assert_eq!(
            surviving_events(&db, count),
            events,
            "cut {cut}: second reopen differs"
        );
        assert!(
            db.recovery().problems.is_empty(),
            "cut {cut}: recovery did not cut the tail back: {:?}",
            db.recovery().problems
        );
        cuts_checked += 1;
    }
    assert_eq!(
        previous,
        Some(2 * count),
        "the whole file should give every record"
    );
    assert!(cuts_checked > 400);
}

#[test]
fn damage_inside_is_skipped_reported_and_later_records_kept() {
    let dir = tempfile::tempdir().unwrap();
    let count = 10; // 20 events, one segment.
    write_nodes(dir.path(), count);
    let files = segments(dir.path());
    assert_eq!(files.len(), 1);
    let mut bytes = fs::read(&files[0]).unwrap();
    // Records are 104 (node) and 96 (ping) bytes after the 64-byte header: node 5's record
    // starts at 64 + 4 * 200.
    let node5 = 64 + 4 * 200;
    bytes[node5 + 30] ^= 0x55;
    fs::write(&files[0], &bytes).unwrap();

    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(db.node(&id(5)), None, "a damaged record was returned");
    assert_eq!(
        db.last_ping(&id(5)),
        Some(UNIX_EPOCH + Duration::from_secs(5)),
        "the record after the damage was lost"
    );
    for n in (1..=count).filter(|&n| n != 5) {
        assert_eq!(db.node(&id(n)), Some(node(n)), "node {n}");
    }
    let problems = &db.recovery().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    let problem = &problems[0];
    assert_eq!(problem.kind, DamageKind::Damaged);
    assert_eq!(problem.offset, node5 as u64);
    assert_eq!(problem.len, 104);
    assert_eq!(problem.lost, Some((9, 9)), "node 5 was the 9th record");
    assert_eq!(problem.path, files[0]);
    let message = problem.to_string();
    assert!(
        message.contains("offset 864") && message.contains("lost sequence number 9"),
        "{message}"
    );

    // Appending after the damage still works and the damage stays reported, not repaired.
    db.update_node(&node(5)).unwrap();
    db.close().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    assert_eq!(db.node(&id(5)), Some(node(5)));
    assert_eq!(db.recovery().problems.len(), 1);
}

#[test]
fn a_lost_middle_segment_is_reported_with_its_sequence_numbers() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 60);
    let files = segments(dir.path());
    assert!(files.len() >= 3, "{files:?}");
    fs::remove_file(&files[1]).unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    let problems = &db.recovery().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, DamageKind::Missing);
    let (first, last) = problems[0].lost.unwrap();
    assert!(first > 1 && last >= first, "{problems:?}");
    // Nodes of the first and last segment are there; those of the lost one are not.
    assert_eq!(db.node(&id(1)), Some(node(1)));
    assert_eq!(db.node(&id(60)), Some(node(60)));
    assert!(db.len() < 60);
}

#[test]
fn a_damaged_header_refuses_to_open_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 3);
    let file = &segments(dir.path())[0];
    let mut bytes = fs::read(file).unwrap();
    bytes[20] ^= 1;
    fs::write(file, &bytes).unwrap();
    let err =
        NodeDb::open_with(dir.path(), 1, id(0), opts()).expect_err("opened with a bad header");
    assert!(
        matches!(&err, peerlog::Error::DamagedHeader { path, .. } if path == file),
        "{err}"
    );
    assert_eq!(fs::read(file).unwrap(), bytes);
}

fn copy_dir(from: &Path, to: &Path) {
    for entry in fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        if entry.path().is_file() {
            fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
        }
    }
}

/// Fuzz finding (sixth campaign): a segment numbered 10^16 or more, by its header or its name,
/// made the writer name its next segment with 17 digits, which the next open ignored, with the
/// writes in it. Segment numbers stop well below: anything above is a damaged header, and
/// nothing is changed.
#[test]
fn a_segment_numbered_beyond_what_a_writer_gives_is_a_damaged_header() {
    let max = peerlog::testing::MAX_SEGMENT_ID;
    for (name_id, header_id) in [
        (max + 1, None),
        (3, Some(max + 1)),
        (3, Some(10u64.pow(16))),
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_nodes(dir.path(), 3);
        let file = segments(dir.path()).remove(0);
        let mut bytes = fs::read(&file).unwrap();
        if let Some(id) = header_id {
            let mut header = peerlog::testing::SegmentHeader::decode(&bytes[..64]).unwrap();
            header.segment_id = id;
            bytes[..64].copy_from_slice(&header.encode());
        }
        fs::remove_file(&file).unwrap();
        let renamed = dir
            .path()
            .join(peerlog::testing::segment_file_name(name_id));
        fs::write(&renamed, &bytes).unwrap();
        let err = NodeDb::open_with(dir.path(), 1, id(0), opts()).expect_err("opened");
        assert!(
            matches!(&err, peerlog::Error::DamagedHeader { path, .. } if *path == renamed),
            "{name_id} {header_id:?}: {err}"
        );
        assert_eq!(fs::read(&renamed).unwrap(), bytes);
    }
}

/// An embedder's code of 0.2 reads what opening found as before: `Problem` and `ProblemKind`
/// are the deprecated names of `Damage` and `DamageKind`, and a problem is found, not recorded.
#[test]
#[allow(deprecated)]
fn the_old_names_still_read_what_opening_found() {
    use peerlog::{DamageState, Problem, ProblemKind};
    let dir = tempfile::tempdir().unwrap();
    write_nodes(dir.path(), 60);
    let files = segments(dir.path());
    fs::remove_file(&files[1]).unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), opts()).unwrap();
    let problems: &[Problem] = &db.recovery().problems;
    assert_eq!(problems.len(), 1, "{problems:?}");
    assert_eq!(problems[0].kind, ProblemKind::Missing);
    assert_eq!(problems[0].state, DamageState::Found);
    assert_eq!(db.recovery().segments, files.len() - 1);
}
