//! `inspect::salvage` over every header damage of docs/DAMAGE.md: `open` refuses with an error
//! naming the file and the damage, salvage moves the file into `damaged/` (never deleting)
//! and says which sequence numbers went with it, and the database then opens with every
//! record of the other segments and takes new writes.

use std::fs;
use std::path::{Path, PathBuf};

use peerlog::inspect::{self, no_progress, InspectError, Lost};
use peerlog::testing::{SegmentHeader, FORMAT_VERSION, HEADER_LEN};
use peerlog::{Error, NodeDb, Options};

mod common;
use common::{id, node};

const VERSION: u64 = 3;
/// Node `n`'s record is the record with sequence number `n`.
const NODES: u64 = 120;

fn options() -> Options {
    Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    }
}

fn open(dir: &Path) -> Result<NodeDb, Error> {
    NodeDb::open_with(dir, VERSION, id(0), options())
}

/// A log of `NODES` node records over several 4 KiB segments; the live segments' paths and
/// sequence number ranges, in order.
fn database(dir: &Path) -> Vec<(PathBuf, (u64, u64))> {
    let db = open(dir).unwrap();
    for n in 1..=NODES {
        db.update_node(&node(n)).unwrap();
    }
    db.close().unwrap();
    let report = inspect::verify(dir, &no_progress).unwrap();
    let segments: Vec<_> = report
        .files
        .iter()
        .map(|f| {
            (
                f.path.clone(),
                f.seq_range.expect("every segment holds records"),
            )
        })
        .collect();
    assert!(segments.len() >= 3, "{segments:?}");
    segments
}

/// Every file under `dir` with its bytes, but `LOCK` (which salvage, as any writer, may create).
fn tree(dir: &Path) -> Vec<(PathBuf, Vec<u8>)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.extend(tree(&path));
        } else if !path.ends_with("LOCK") {
            all.push((path.clone(), fs::read(&path).unwrap()));
        }
    }
    all.sort();
    all
}

/// The header damages of docs/DAMAGE.md's table (a segment cut to 8-63 bytes, to 0-7 bytes, a
/// bit flipped in its header) and a header overwritten by something else (another magic
/// number): each edit and the reason the error gives.
#[allow(clippy::type_complexity)]
fn damages() -> Vec<(&'static str, fn(&mut Vec<u8>), &'static str, bool)> {
    vec![
        (
            "cut to 0 bytes",
            |b| b.truncate(0),
            "the file is empty",
            true,
        ),
        (
            "cut to 7 bytes",
            |b| b.truncate(7),
            "the file is 7 bytes, too short for peerlog's magic number",
            true,
        ),
        (
            "cut to 8 bytes",
            |b| b.truncate(8),
            "header is 8 bytes, expected 64",
            true,
        ),
        (
            "cut to 63 bytes",
            |b| b.truncate(63),
            "header is 63 bytes, expected 64",
            true,
        ),
        (
            "a bit flipped in the header",
            |b| b[20] ^= 4,
            "header checksum mismatch",
            false,
        ),
        (
            "another magic number",
            |b| b[..8].copy_from_slice(b"SQLite f"),
            "does not start with peerlog's magic number",
            false,
        ),
    ]
}

#[test]
fn salvage_moves_every_kind_of_damaged_header_aside_and_the_database_opens() {
    for (damage, edit, reason, holds_nothing) in damages() {
        for position in ["first", "middle", "last"] {
            let what = format!("{position} segment {damage}");
            let temp = tempfile::tempdir().unwrap();
            let dir = temp.path();
            let segments = database(dir);
            let i = match position {
                "first" => 0,
                "middle" => segments.len() / 2,
                _ => segments.len() - 1,
            };
            let (victim, (first, last)) = segments[i].clone();
            let mut bytes = fs::read(&victim).unwrap();
            edit(&mut bytes);
            fs::write(&victim, &bytes).unwrap();
            let before = tree(dir);

            // Refused, naming the file and the damage, and nothing changed.
            let err = open(dir).err().unwrap_or_else(|| panic!("{what}: opened"));
            match &err {
                Error::DamagedHeader { path, reason: why } => {
                    assert_eq!((path, why.as_str()), (&victim, reason), "{what}")
                }
                other => panic!("{what}: unexpected error {other}"),
            }
            let name = victim.file_name().unwrap().to_str().unwrap();
            assert!(
                err.to_string().starts_with(&format!(
                    "segment {} has a damaged header (",
                    victim.display()
                )),
                "{what}: {err}"
            );
            assert!(err.to_string().contains(name), "{what}: {err}");
            assert_eq!(tree(dir), before, "{what}: a refused open changed files");

            let report = inspect::salvage(dir).unwrap();
            assert_eq!(report.moved.len(), 1, "{what}: {report:?}");
            let moved = &report.moved[0];
            let expected_lost = match position {
                "last" => Lost::After(first - 1),
                _ => Lost::Range(first, last),
            };
            assert_eq!(moved.path, victim, "{what}");
            assert_eq!(moved.moved_to, dir.join("damaged").join(name), "{what}");
            assert_eq!(
                (
                    moved.reason.as_str(),
                    moved.holds_nothing,
                    moved.lost,
                    moved.archived
                ),
                (reason, holds_nothing, expected_lost, false),
                "{what}"
            );
            assert_eq!(moved.size, bytes.len() as u64, "{what}");
            // Moved, not changed; every other file as it was.
            let mut expected = before.clone();
            for (path, _) in expected.iter_mut().filter(|(p, _)| p == &victim) {
                *path = moved.moved_to.clone();
            }
            expected.sort();
            // After the last segment, the log goes on in a new, empty one.
            let mut after = tree(dir);
            match (position, &report.resumed) {
                ("last", Some((new, next_seq))) => {
                    assert!(*next_seq > last, "{what}: {next_seq}");
                    assert!(new > &victim, "{what}: {new:?}");
                    after.retain(|(path, _)| path != new);
                }
                (_, resumed) => assert_eq!(resumed, &None, "{what}"),
            }
            assert!(after == expected, "{what}: files changed");

            // Opens with every record of the other segments, and takes writes.
            let db = open(dir).unwrap_or_else(|e| panic!("{what}: {e}"));
            for n in 1..=NODES {
                let kept = !(first..=last).contains(&n);
                assert_eq!(db.node(&id(n)).is_some(), kept, "{what}: node {n}");
            }
            db.update_node(&node(500)).unwrap();
            db.close().unwrap();
            let db = open(dir).unwrap();
            assert_eq!(db.node(&id(500)), Some(node(500)), "{what}");
            db.close().unwrap();

            // Once is enough: a second salvage finds nothing to do.
            let again = tree(dir);
            assert!(inspect::salvage(dir).unwrap().is_empty(), "{what}");
            assert_eq!(tree(dir), again, "{what}");
        }
    }
}

/// An archived segment whose header cannot be read fails the readers of the archive until
/// salvage moves it into `archive/damaged/`; the live log loses nothing.
#[test]
fn salvage_moves_a_damaged_archived_segment_into_the_archive_s_damaged_folder() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let opts = Options {
        keep_history: true,
        ..options()
    };
    let db = NodeDb::open_with(dir, VERSION, id(0), opts).unwrap();
    for n in 1..=NODES {
        db.update_node(&node(n)).unwrap();
    }
    db.compact().unwrap();
    db.close().unwrap();
    let archived = dir.join("archive/0000000000000001.seg");
    let mut bytes = fs::read(&archived).unwrap();
    bytes[20] ^= 4;
    fs::write(&archived, &bytes).unwrap();
    assert!(matches!(
        inspect::history(dir, &id(1), &no_progress),
        Err(InspectError::Db(Error::DamagedHeader { .. }))
    ));

    let report = inspect::salvage(dir).unwrap();
    assert_eq!(report.moved.len(), 1, "{report:?}");
    let moved = &report.moved[0];
    assert_eq!(
        (&moved.path, &moved.moved_to, moved.archived, moved.lost),
        (
            &archived,
            &dir.join("archive/damaged/0000000000000001.seg"),
            true,
            Lost::ArchivedHistory
        )
    );
    assert_eq!(fs::read(&moved.moved_to).unwrap(), bytes);
    // The archive reads again (node 1's original events went with the file).
    assert!(!inspect::history(dir, &id(NODES), &no_progress)
        .unwrap()
        .is_empty());
    assert!(inspect::stats(dir, &id(0), Default::default(), &no_progress).is_ok());
    let db = open(dir).unwrap();
    assert_eq!(db.len(), NODES as usize);
}

/// A name taken in `damaged/` (by an earlier salvage) is never overwritten: the file gets a
/// fresh one.
#[test]
fn salvage_never_overwrites_a_file_in_damaged() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let segments = database(dir);
    let victim = &segments.last().unwrap().0;
    let name = victim.file_name().unwrap().to_str().unwrap();
    fs::create_dir(dir.join("damaged")).unwrap();
    for taken in [name.to_string(), format!("{name}.1")] {
        fs::write(dir.join("damaged").join(taken), b"moved here before").unwrap();
    }
    fs::write(victim, b"").unwrap();
    let report = inspect::salvage(dir).unwrap();
    assert_eq!(
        report.moved[0].moved_to,
        dir.join("damaged").join(format!("{name}.2"))
    );
    for taken in [name.to_string(), format!("{name}.1")] {
        assert_eq!(
            fs::read(dir.join("damaged").join(taken)).unwrap(),
            b"moved here before"
        );
    }
    assert_eq!(fs::read(&report.moved[0].moved_to).unwrap(), b"");
}

/// A healthy database is left as it is; a database open in a `NodeDb` is refused (the
/// lock), and so is a database holding a segment of a newer format (not damage: a newer
/// peerlog reads it), even beside a damaged one: nothing moves.
#[test]
fn salvage_changes_nothing_on_a_healthy_locked_or_newer_database() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let segments = database(dir);
    let healthy = tree(dir);
    assert!(inspect::salvage(dir).unwrap().is_empty());
    assert_eq!(tree(dir), healthy);
    assert!(!dir.join("damaged").exists());

    // A header damaged under a running writer (a sealed segment: the writer never reads it
    // again): salvage waits for the writer to go.
    let writer = open(dir).unwrap();
    let first = &segments[0].0;
    let mut bytes = fs::read(first).unwrap();
    bytes[20] ^= 4;
    fs::write(first, &bytes).unwrap();
    let damaged = tree(dir);
    match inspect::salvage(dir) {
        Err(e @ InspectError::Db(Error::Locked { .. })) => {
            assert!(e.to_string().contains("locked"), "{e}")
        }
        other => panic!("salvage beside a writer: {other:?}"),
    }
    assert_eq!(tree(dir), damaged);
    drop(writer);

    let last = &segments.last().unwrap().0;
    let mut bytes = fs::read(last).unwrap();
    let mut header = SegmentHeader::decode(&bytes).unwrap();
    header.format = FORMAT_VERSION + 1;
    bytes[..HEADER_LEN].copy_from_slice(&header.encode());
    fs::write(last, &bytes).unwrap();
    let newer = tree(dir);
    match inspect::salvage(dir) {
        Err(InspectError::Db(Error::NewerFormat { path, format, .. })) => {
            assert_eq!((&path, format), (last, FORMAT_VERSION + 1))
        }
        other => panic!("salvage of a newer format: {other:?}"),
    }
    assert_eq!(tree(dir), newer, "nothing moved");
    assert!(!dir.join("damaged").exists());
}

/// A directory without a database is refused, and salvage creates nothing in it.
#[test]
fn salvage_refuses_a_directory_without_a_database() {
    let temp = tempfile::tempdir().unwrap();
    fs::write(temp.path().join("notes.txt"), b"mine").unwrap();
    assert!(matches!(
        inspect::salvage(temp.path()),
        Err(InspectError::NoDatabase(_))
    ));
    let names: Vec<_> = fs::read_dir(temp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["notes.txt"]);
}

/// A compacted segment is named after the segment being appended to while it was written, and
/// restates everything before that one: when its header is damaged, the records it restated
/// are what is lost (the readable log then starts after them), not those after the last
/// readable record.
#[test]
fn salvage_of_a_compacted_segment_reports_the_records_it_restated() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let db = open(dir).unwrap();
    for n in 1..=NODES {
        db.update_node(&node(n)).unwrap();
    }
    db.compact().unwrap();
    for n in NODES + 1..=NODES + 60 {
        db.update_node(&node(n)).unwrap();
    }
    db.close().unwrap();
    let compacted = inspect::segments(dir)
        .unwrap()
        .into_iter()
        .find(|s| s.compacted)
        .unwrap();
    let mut bytes = fs::read(&compacted.path).unwrap();
    bytes[20] ^= 4;
    fs::write(&compacted.path, &bytes).unwrap();

    let report = inspect::salvage(dir).unwrap();
    assert_eq!(report.moved.len(), 1, "{report:?}");
    assert_eq!(report.moved[0].lost, Lost::Range(1, NODES));
    let db = open(dir).unwrap();
    for n in 1..=NODES + 60 {
        assert_eq!(db.node(&id(n)).is_some(), n > NODES, "node {n}");
    }
}

/// Issue 19, item 2: salvaging the last segment loses records nobody can count. The loss is
/// reported like any other (a gap the log shows, recorded by the next compaction and kept by
/// every later one until acknowledged), and neither its sequence numbers nor its name are
/// given to new records: the log goes on past anything the salvaged file could hold, in a
/// segment with a new name.
#[test]
fn salvaging_the_last_segment_records_its_loss_and_reuses_no_sequence_number_or_name() {
    for (damage, edit, _, _) in damages() {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let segments = database(dir);
        let (victim, (first, last)) = segments.last().unwrap().clone();
        let mut bytes = fs::read(&victim).unwrap();
        edit(&mut bytes);
        fs::write(&victim, &bytes).unwrap();
        let report = inspect::salvage(dir).unwrap();
        assert_eq!(report.moved[0].lost, Lost::After(first - 1), "{damage}");

        let db = open(dir).unwrap();
        db.update_node(&node(500)).unwrap();
        db.close().unwrap();
        // The new record lies past anything the salvaged file held, in a file of another
        // name.
        let records = inspect::export(dir, &no_progress).unwrap();
        let new = records.last().unwrap();
        assert!(new.seq > last, "{damage}: seq {} reused", new.seq);
        let names: Vec<_> = fs::read_dir(dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert!(
            !names.contains(&victim.file_name().unwrap().to_owned()),
            "{damage}: the salvaged segment's name was reused: {names:?}"
        );
        // The loss is reported, and recorded by compaction, through two of them.
        let report = inspect::verify(dir, &no_progress).unwrap();
        assert!(!report.is_intact(false), "{damage}: {report:?}");
        let db = open(dir).unwrap();
        assert!(
            db.recovery()
                .problems
                .iter()
                .any(|p| p.lost.is_some_and(|(a, b)| a == first && b >= last)),
            "{damage}: {:?}",
            db.recovery().problems
        );
        for _ in 0..2 {
            db.update_node(&node(501)).unwrap();
            db.compact().unwrap();
            let losses = db.losses();
            assert_eq!(losses.len(), 1, "{damage}: {losses:?}");
            let (a, b) = losses[0].lost.unwrap();
            assert!(a == first && b >= last, "{damage}: {losses:?}");
        }
        db.close().unwrap();
        let stats = inspect::stats(dir, &id(0), Default::default(), &no_progress).unwrap();
        assert_eq!(stats.losses.len(), 1, "{damage}");
        assert!(!inspect::verify(dir, &no_progress).unwrap().is_intact(false));
    }
}

/// Salvaging the only segment of a log (no readable segment left to go on from): when the
/// file held records, the log still goes on past anything it could hold, in a segment of a new
/// name, and the loss shows (a gap from 1) until a compaction records it; the records are not
/// replaced by a new log that starts again at sequence number 1 in a file of the same name,
/// which would read as intact. A file that held nothing (cut within its header) loses nothing.
/// (The log goes on in the generation the damaged header names: where the damage hit the
/// protocol version itself, as "a bit flipped in the header" does, the next open takes that
/// segment for another version's and wipes it, so that damage is left out here, and a flip in
/// the header's segment id stands in for it.)
#[test]
fn salvaging_the_only_segment_reuses_no_sequence_number_or_name() {
    let flip_in_segment_id: fn(&mut Vec<u8>) = |b| b[32] ^= 4;
    let damages = damages()
        .into_iter()
        .filter(|(damage, ..)| *damage != "a bit flipped in the header")
        .chain([(
            "a bit flipped in the segment id",
            flip_in_segment_id,
            "",
            false,
        )]);
    for (damage, edit, _, holds_nothing) in damages {
        let temp = tempfile::tempdir().unwrap();
        let dir = temp.path();
        let db = open(dir).unwrap();
        for n in 1..=5 {
            db.update_node(&node(n)).unwrap();
        }
        db.close().unwrap();
        let segments = common::segments(dir);
        assert_eq!(segments.len(), 1, "{damage}");
        let victim = segments[0].clone();
        let mut bytes = fs::read(&victim).unwrap();
        edit(&mut bytes);
        fs::write(&victim, &bytes).unwrap();

        let report = inspect::salvage(dir).unwrap();
        assert_eq!(report.moved.len(), 1, "{damage}");
        assert_eq!(report.moved[0].lost, Lost::After(0), "{damage}");
        assert_eq!(report.moved[0].holds_nothing, holds_nothing, "{damage}");

        let db = open(dir).unwrap();
        db.update_node(&node(500)).unwrap();
        let problems = db.recovery().problems.clone();
        db.close().unwrap();
        let records = inspect::export(dir, &no_progress).unwrap();
        let names: Vec<_> = common::segments(dir)
            .iter()
            .map(|p| p.file_name().unwrap().to_owned())
            .collect();
        if holds_nothing {
            // Nothing was lost: a new log, with nothing to report.
            assert!(problems.is_empty(), "{damage}: {problems:?}");
            continue;
        }
        assert!(
            records[0].seq > 5,
            "{damage}: seq {} reused (the salvaged file held 1..=5)",
            records[0].seq
        );
        assert!(
            !names.contains(&victim.file_name().unwrap().to_owned()),
            "{damage}: the salvaged segment's name was reused: {names:?}"
        );
        assert!(
            problems
                .iter()
                .any(|p| p.lost.is_some_and(|(a, b)| a == 1 && b >= 5)),
            "{damage}: {problems:?}"
        );
        assert!(!inspect::verify(dir, &no_progress).unwrap().is_intact(false));
        let db = open(dir).unwrap();
        db.compact().unwrap();
        let losses = db.losses();
        assert_eq!(losses.len(), 1, "{damage}: {losses:?}");
        assert_eq!(losses[0].lost.map(|(a, _)| a), Some(1), "{damage}");
        assert_eq!(db.node(&id(500)), Some(node(500)), "{damage}");
        db.close().unwrap();
    }
}
