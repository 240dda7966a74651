//! Reading a database without its lock (`peerlog::inspect`): the streamed export hands every
//! record once, in order, stops when told, survives compactions running beside it, and with
//! the archive gives back the events a compaction replaced.

mod common;

use std::ops::ControlFlow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use common::{at, id, node};
use peerlog::inspect::{self, no_progress};
use peerlog::{DamageKind, DamageState, LogRecord, NodeDb, Options};

fn small_segments() -> Options {
    Options {
        segment_size: peerlog::MIN_SEGMENT_SIZE,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    }
}

fn write(db: &NodeDb, n: u64) {
    db.update_node(&node(n % 50)).unwrap();
    db.update_last_ping(&id(n % 50), at(n)).unwrap();
}

#[test]
fn the_streamed_export_is_the_export_and_stops_when_told() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(999), small_segments()).unwrap();
    for n in 0..300 {
        write(&db, n);
    }
    db.close().unwrap();
    let all = inspect::export(dir.path(), &no_progress).unwrap();
    assert_eq!(all.len(), 600);
    let mut streamed = Vec::new();
    inspect::export_each(dir.path(), &no_progress, |r| {
        streamed.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    assert_eq!(streamed, all);
    let mut calls = 0;
    inspect::export_each(dir.path(), &no_progress, |_| {
        calls += 1;
        if calls == 3 {
            ControlFlow::Break(())
        } else {
            ControlFlow::Continue(())
        }
    })
    .unwrap();
    assert_eq!(calls, 3, "records were handed over after a stop");
}

#[test]
fn a_streamed_export_beside_compactions_never_hands_a_record_twice() {
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, id(999), small_segments()).unwrap());
    for n in 0..200 {
        write(&db, n);
    }
    let stop = Arc::new(AtomicBool::new(false));
    let compactor = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let mut n = 200;
            while !stop.load(Ordering::Relaxed) {
                write(&db, n);
                n += 1;
                if n % 20 == 0 {
                    db.compact().unwrap();
                }
            }
        })
    };
    for _ in 0..30 {
        let mut seqs = Vec::new();
        inspect::export_each(dir.path(), &no_progress, |r: LogRecord| {
            seqs.push(r.seq);
            ControlFlow::Continue(())
        })
        .unwrap();
        assert!(
            seqs.windows(2).all(|w| w[0] < w[1]),
            "sequence numbers not strictly increasing: a record handed twice or out of order"
        );
        assert!(!seqs.is_empty());
    }
    stop.store(true, Ordering::Relaxed);
    compactor.join().unwrap();
}

#[test]
fn the_export_with_the_archive_gives_back_what_compaction_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        keep_history: true,
        ..small_segments()
    };
    let db = NodeDb::open_with(dir.path(), 1, id(999), opts).unwrap();
    for n in 0..300 {
        write(&db, n);
    }
    db.compact().unwrap();
    for n in 300..310 {
        write(&db, n);
    }
    db.close().unwrap();
    let mut full = Vec::new();
    inspect::export_with_archive_each(dir.path(), &no_progress, |r| {
        full.push(r);
        ControlFlow::Continue(())
    })
    .unwrap();
    let seqs: Vec<u64> = full.iter().map(|r| r.seq).collect();
    assert_eq!(
        seqs,
        (1..=620).collect::<Vec<_>>(),
        "every event once, in order"
    );
    let live = inspect::export(dir.path(), &no_progress).unwrap();
    assert!(live.len() < 200, "the live log is compacted");
}

/// verify's progress covers every file it reads, archived ones included, from 0 to the end,
/// and each file's size is the size read.
#[test]
fn verify_reports_progress_over_every_file_and_the_sizes_it_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(
        dir.path(),
        1,
        id(0),
        Options {
            keep_history: true,
            ..small_segments()
        },
    )
    .unwrap();
    (0..200).for_each(|n| write(&db, n));
    db.compact().unwrap();
    (200..250).for_each(|n| write(&db, n));
    db.close().unwrap();

    let calls = std::cell::RefCell::new(Vec::new());
    let report = inspect::verify(dir.path(), &|done, total| {
        calls.borrow_mut().push((done, total))
    })
    .unwrap();
    let on_disk = |path: &std::path::Path| std::fs::metadata(path).unwrap().len();
    let archived: Vec<_> = report
        .files
        .iter()
        .filter(|f| f.role == inspect::FileRole::Archived)
        .collect();
    assert!(!archived.is_empty(), "{:?}", report.files);
    for file in &report.files {
        assert_eq!(file.size, on_disk(&file.path), "{file:?}");
    }
    let all: u64 = report.files.iter().map(|f| f.size).sum();
    let calls = calls.into_inner();
    assert!(
        calls.iter().all(|&(_, total)| total == all),
        "{calls:?} of {all}"
    );
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    assert_eq!(calls.last(), Some(&(all, all)), "{calls:?}");
}

/// An export beside a writer that appends and compacts as fast as it can is the log as it
/// was when the export started: it ends although the writer goes on, and hands over every
/// node of the log then exactly once (issue 19, item 4: each compaction restarted the read,
/// which then handed over every node the compaction restated, again and again, until the
/// writer stopped).
#[test]
fn an_export_beside_a_fast_compacting_writer_ends_and_hands_each_node_once() {
    const NODES: u64 = 3000;
    let dir = tempfile::tempdir().unwrap();
    let db = Arc::new(NodeDb::open_with(dir.path(), 1, id(u64::MAX), small_segments()).unwrap());
    for n in 0..NODES {
        db.update_node(&node(n)).unwrap();
        db.update_last_ping(&id(n), at(n)).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let compactions = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let writer = {
        let (db, stop, compactions) =
            (Arc::clone(&db), Arc::clone(&stop), Arc::clone(&compactions));
        std::thread::spawn(move || {
            // New nodes (each written once) and pings, and a compaction after every few.
            let mut n = NODES;
            while !stop.load(Ordering::Relaxed) {
                for _ in 0..20 {
                    db.update_node(&node(n)).unwrap();
                    db.update_last_ping(&id(n % NODES), at(n)).unwrap();
                    n += 1;
                }
                db.compact().unwrap();
                compactions.fetch_add(1, Ordering::Relaxed);
            }
        })
    };
    // Once the writer has compacted, so that it compacts during the export.
    while compactions.load(Ordering::Relaxed) == 0 {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
    let (done_tx, done_rx) = std::sync::mpsc::channel();
    let exporter = {
        let (path, compactions) = (dir.path().to_path_buf(), Arc::clone(&compactions));
        std::thread::spawn(move || {
            let mut nodes = std::collections::HashMap::<peerlog::NodeId, u32>::new();
            let (mut records, mut last) = (0u64, 0u64);
            let result = inspect::export_each(&path, &no_progress, |r: LogRecord| {
                assert!(
                    r.seq > last,
                    "sequence numbers not increasing: {} after {last}",
                    r.seq
                );
                last = r.seq;
                records += 1;
                if let peerlog::Event::NodeUpdated(n) = &r.event {
                    *nodes.entry(n.id).or_default() += 1;
                }
                // A slow consumer (a pipe to DuckDB): after the first record, it waits for
                // three compactions (for five seconds at most), and after half the nodes for
                // three more.
                if records == 1 || records == NODES {
                    let from = compactions.load(Ordering::Relaxed);
                    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
                    while compactions.load(Ordering::Relaxed) < from + 3
                        && std::time::Instant::now() < deadline
                    {
                        std::thread::sleep(std::time::Duration::from_millis(1));
                    }
                }
                ControlFlow::Continue(())
            });
            let _ = done_tx.send(());
            (result, nodes, records)
        })
    };
    let ended = done_rx
        .recv_timeout(std::time::Duration::from_secs(20))
        .is_ok();
    let during = compactions.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    writer.join().unwrap();
    let (result, nodes, records) = exporter.join().unwrap();
    assert!(
        ended,
        "the export did not end while the writer was writing ({records} records so far)"
    );
    result.unwrap();
    for n in 0..NODES {
        assert_eq!(
            nodes.get(&id(n)),
            Some(&1),
            "node {n}: handed over not exactly once"
        );
    }
    let twice = nodes.values().filter(|&&c| c > 1).count();
    assert_eq!(twice, 0, "{twice} nodes handed over more than once");
    assert!(during > 6, "the writer compacted only {during} times");
}

/// A segment whose header cannot be read is one damaged place like any other: found, with
/// why its header cannot be read, and read as `verify` prints it.
#[test]
fn verify_says_why_a_header_cannot_be_read() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), small_segments()).unwrap();
    write(&db, 100);
    db.close().unwrap();
    let first = inspect::segments(dir.path()).unwrap()[0].path.clone();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&first)
        .unwrap()
        .set_len(40)
        .unwrap();
    let report = inspect::verify(dir.path(), &no_progress).unwrap();
    let header: Vec<_> = report
        .findings
        .iter()
        .filter(|f| f.kind == DamageKind::BadHeader)
        .collect();
    assert_eq!(header.len(), 1, "{:?}", report.findings);
    assert_eq!((&header[0].path, header[0].len), (&first, 40));
    assert_eq!(header[0].state, DamageState::Found);
    assert_eq!(
        header[0].reason.as_deref(),
        Some("header is 40 bytes, expected 64")
    );
    assert_eq!(
        header[0].to_string(),
        format!(
            "{}: unreadable segment header: header is 40 bytes, expected 64",
            first.display()
        )
    );
}

/// Over a live log of many segments and enough records for progress inside each (one report
/// every 4096 records), verify's progress never goes back and never passes its total.
#[test]
fn verify_progress_within_the_live_log_only_goes_forward() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open_with(dir.path(), 1, id(0), small_segments()).unwrap();
    (0..10_000).for_each(|n| write(&db, n));
    db.close().unwrap();
    let calls = std::cell::RefCell::new(Vec::new());
    let report = inspect::verify(dir.path(), &|done, total| {
        calls.borrow_mut().push((done, total))
    })
    .unwrap();
    let calls = calls.into_inner();
    assert!(report.records >= 8192, "{}", report.records);
    // Reports inside the live log, before the one at its end.
    assert!(calls.len() > 2, "{calls:?}");
    assert!(calls.windows(2).all(|w| w[0].0 <= w[1].0), "{calls:?}");
    assert!(
        calls.iter().all(|&(done, total)| done <= total),
        "{calls:?}"
    );
}
