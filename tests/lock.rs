//! One writer per directory: a second open, from this process or from another, fails at once
//! with `Error::Locked` and changes nothing, also while the owner compacts and after the
//! directory was renamed; the lock is released on close.

use std::fs;
use std::io;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use peerlog::{Error, NodeDb, Options};

mod common;
use common::{files, id, node};

#[test]
fn a_second_open_in_this_process_is_locked_and_changes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let db = NodeDb::open(dir.path(), 1, id(0)).unwrap();
    db.update_node(&node(1)).unwrap();
    let before = files(dir.path());
    let err = NodeDb::open(dir.path(), 2, id(0)).expect_err("second writer got in");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(
        err.to_string().contains(&dir.path().display().to_string()),
        "{err}"
    );
    assert_eq!(
        files(dir.path()),
        before,
        "a refused open changed the directory"
    );
    db.close().unwrap();
    // Released on close.
    NodeDb::open(dir.path(), 1, id(0)).unwrap();
}

const CHILD_ENV: &str = "PEERLOG_TEST_LOCK_HOLDER";

/// Plays the other process: holds the database open until its stdin closes.
#[test]
fn lock_holder_child() {
    let Ok(dir) = std::env::var(CHILD_ENV) else {
        return;
    };
    let db = NodeDb::open(&dir, 1, id(0)).unwrap();
    db.update_node(&node(7)).unwrap();
    println!("LOCKED");
    let mut line = String::new();
    let _ = io::stdin().read_line(&mut line);
    db.close().unwrap();
}

#[test]
fn another_process_holding_the_directory_makes_open_fail_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "lock_holder_child",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(CHILD_ENV, dir.path())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut out = io::BufReader::new(child.stdout.take().unwrap());
    let mut line = String::new();
    while !line.contains("LOCKED") {
        line.clear();
        assert!(
            io::BufRead::read_line(&mut out, &mut line).unwrap() > 0,
            "child exited early"
        );
    }
    let started = std::time::Instant::now();
    let err =
        NodeDb::open(dir.path(), 1, id(0)).expect_err("opened a directory another process holds");
    assert!(matches!(err, Error::Locked { .. }), "{err}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "open waited for the lock"
    );
    drop(child.stdin.take());
    assert!(child.wait().unwrap().success());
    let db = NodeDb::open(dir.path(), 1, id(0)).unwrap();
    assert_eq!(db.node(&id(7)), Some(node(7)));
}

/// An open racing with the owner's compaction reports `Error::Locked`, like any other second
/// open. Opening looks at the directory before it takes the lock (`recovery::prepare_dir`
/// lists it, reading every segment header, before `DirLock::acquire`), and a segment that
/// vanished between `read_dir` and opening it makes `list_dir` fail with NotFound: if that
/// error ended the open, an open racing with a compaction would fail with an I/O error
/// instead of `Locked`.
#[test]
fn open_during_compaction_reports_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("db");
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = Arc::new(NodeDb::open_with(&dir, 1, id(0), opts).unwrap());
    let stop = Arc::new(AtomicBool::new(false));
    let owner = {
        let (db, stop) = (Arc::clone(&db), Arc::clone(&stop));
        std::thread::spawn(move || {
            let now = SystemTime::now();
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                // About 20 segments of 4 KiB, then a compaction removes them all.
                for _ in 0..800 {
                    i += 1;
                    db.update_last_ping(&id(i % 50), now).unwrap();
                }
                db.compact().unwrap();
            }
        })
    };
    // Where this race exists it shows within a few hundred attempts; 3 s keeps CI quick.
    let deadline = Instant::now() + Duration::from_secs(3);
    let mut other = None;
    let mut attempts = 0;
    while Instant::now() < deadline && other.is_none() {
        attempts += 1;
        match NodeDb::open(&dir, 1, id(0)) {
            Err(Error::Locked { .. }) => {}
            Err(e) => other = Some(e),
            Ok(_) => panic!("opened a locked directory"),
        }
    }
    stop.store(true, Ordering::Relaxed);
    owner.join().unwrap();
    assert!(
        other.is_none(),
        "attempt {attempts}: open of a locked directory failed with {other:?}, not Locked"
    );
}

/// A directory renamed while open is still locked against a second `NodeDb` of this process.
/// POSIX record locks do not exclude opens from the same process, so `DirLock` also keeps a
/// process-wide table of the directories it holds. Keyed by the directory's canonical path, the
/// table misses a directory renamed while open (a new canonical path): a second `NodeDb` opens
/// it, both append to the same segment, and dropping either one releases the fcntl lock the
/// other relies on. The table is keyed by the LOCK file's (st_dev, st_ino).
#[test]
fn renamed_directory_is_still_locked() {
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let first = NodeDb::open(&a, 1, id(0)).unwrap();
    first.update_node(&node(1)).unwrap();
    fs::rename(&a, &b).unwrap();
    let second = NodeDb::open(&b, 1, id(0));
    assert!(
        matches!(second, Err(Error::Locked { .. })),
        "second NodeDb on the same directory: {:?}",
        second.as_ref().map(|db| db.len())
    );
    drop(first);
}
