//! Every command beside a live writer and beside files not named like peerlog's: the reads
//! change nothing, exit 0 and print what they print without them (the library's reading is
//! tested in tests/live_reader.rs and tests/stray_files.rs; here, what the command prints and
//! its status).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use peerlog::Options;
use serde_json::Value;

mod common;
use common::{
    assert_one_line_error, at, flip_byte, id, multi_segment_db, node, open, path_str, peerlog,
    run_ok, segment_names, small_segments, snapshot, stderr, stdout,
};

/// Every file and directory under `dir` (directories with no bytes), sorted.
fn tree(dir: &Path) -> Vec<(PathBuf, Option<Vec<u8>>)> {
    let mut all = Vec::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            all.push((path.clone(), None));
            all.extend(tree(&path));
        } else {
            all.push((path.clone(), Some(fs::read(&path).unwrap())));
        }
    }
    all.sort();
    all
}

#[test]
fn read_only_commands_change_nothing_even_on_a_damaged_database() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let first = temp.path().join(&segment_names(temp.path())[0]);
    flip_byte(&first, 64 + 20);
    fs::remove_file(temp.path().join("LOCK")).unwrap();
    let before = snapshot(temp.path());
    let dir = path_str(temp.path());
    let node = "05".repeat(64);
    for args in [
        vec!["dump", dir],
        vec!["stats", dir],
        vec!["export", dir],
        vec!["history", dir, &node],
    ] {
        let out = peerlog(&args);
        assert!(out.status.success(), "{args:?}: {}", stderr(&out));
    }
    assert_eq!(peerlog(&["verify", dir]).status.code(), Some(1));
    assert_eq!(
        snapshot(temp.path()),
        before,
        "no file created, changed or removed"
    );
}

#[test]
fn read_only_commands_work_while_a_writer_appends_and_compacts() {
    let temp = tempfile::tempdir().unwrap();
    let opts = Options {
        segment_size: 64 * 1024,
        ..Options::default()
    };
    let db = Arc::new(open(temp.path(), opts));
    for n in 1..=50u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
        // A fresh pong, or the writer's compactions would expire the node.
        db.update_last_pong(&id(n), SystemTime::now()).unwrap();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (db, stop, written) = (Arc::clone(&db), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let n = (i % 50) as u8 + 1;
                db.update_last_ping(&id(n), at(i)).unwrap();
                i += 1;
                written.store(i, Ordering::Relaxed);
                if i.is_multiple_of(1000) {
                    db.compact().unwrap();
                }
                if i.is_multiple_of(64) {
                    std::thread::sleep(Duration::from_micros(200));
                }
            }
            i
        })
    };
    let dir = path_str(temp.path());
    let node = "07".repeat(64);
    // Three rounds at least, and on until the writer has compacted twice (a loaded machine
    // may run the reads faster than the writer).
    let mut rounds = 0;
    while rounds < 3 || (written.load(Ordering::Relaxed) < 2000 && rounds < 1000) {
        rounds += 1;
        for args in [
            vec!["dump", dir],
            vec!["stats", dir],
            vec!["export", dir],
            vec!["history", dir, &node],
            vec!["verify", dir],
        ] {
            let out = peerlog(&args);
            assert!(
                out.status.success(),
                "{args:?}: {}{}",
                stdout(&out),
                stderr(&out)
            );
            if args[0] == "dump" {
                assert_eq!(stdout(&out).lines().count(), 50);
            }
        }
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.join().unwrap();
    assert!(
        writes > 1000,
        "the writer compacted at least once during the reads"
    );
    // The writer kept its lock and its data: everything it wrote is there.
    db.sync().unwrap();
    let exported = run_ok(&["export", dir]);
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    assert_eq!(
        exported.lines().count() as u64,
        s["records"].as_u64().unwrap()
    );
    assert_eq!(db.len(), 50);
}

/// Every command, on a database with files and directories not named like peerlog's beside
/// its segments and in its archive/ (and a damaged/ folder holding a file named like a
/// segment): each reads the database as it reads it without them (verify listing each as a
/// note, not damage), compact, expire and salvage do their work, demo refuses the directory as
/// not empty, and no stray is removed or changed.
#[test]
fn every_command_ignores_files_not_named_like_peerlog_s() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path();
    let keep = Options {
        keep_history: true,
        ..small_segments()
    };
    let db = open(dir, keep);
    for n in 1..=40u8 {
        db.update_node(&node(n, &format!("10.0.1.{n}"), 30303, 30303))
            .unwrap();
        db.update_last_pong(&id(n), SystemTime::now()).unwrap();
    }
    db.compact().unwrap();
    db.update_last_ping(&id(7), at(7)).unwrap();
    db.close().unwrap();
    assert!(dir.join("archive").is_dir());
    let d = path_str(dir);
    let seven = "07".repeat(64);
    let read_only: Vec<Vec<&str>> = vec![
        vec!["dump", d, "--all"],
        vec!["dump", d, "--json"],
        vec!["stats", d, "--json"],
        vec!["verify", d, "--json"],
        vec!["verify", d],
        vec!["history", d, &seven],
        vec!["export", d],
        vec!["export", d, "--with-archive", "--format", "csv"],
    ];
    let clean: Vec<String> = read_only.iter().map(|args| run_ok(args)).collect();

    let strays = [
        "notes.txt",
        "lost+found/#1234",
        "0000000000000001.seg.bak",
        "damaged/0000000000000009.seg",
        "archive/README",
        "archive/old/0000000000000001.seg",
    ];
    for stray in strays {
        let path = dir.join(stray);
        fs::create_dir_all(path.parent().unwrap()).unwrap();
        fs::write(&path, b"not peerlog's").unwrap();
    }
    let ignored = [
        "0000000000000001.seg.bak",
        "lost+found",
        "notes.txt",
        "archive/README",
        "archive/old",
    ];
    let stray_files = || -> Vec<_> {
        tree(dir)
            .into_iter()
            .filter(|(p, _)| strays.iter().any(|s| p.starts_with(dir.join(s))))
            .collect()
    };
    let before = stray_files();
    assert_eq!(before.len(), strays.len());
    // Warnings naming the strays may go to stderr; nothing else may.
    let quiet_but_for_strays = |args: &[&str], out: &Output| {
        // A warning names the directory, then the file in it: `<dir>/archive: ignoring README`.
        for line in stderr(out).lines() {
            assert!(
                ignored.iter().any(|name| {
                    let file = name.rsplit('/').next().unwrap_or(name);
                    line.contains(&format!("ignoring {file}"))
                }),
                "{args:?}: {line}"
            );
        }
    };

    for (args, clean) in read_only.iter().zip(&clean) {
        let out = peerlog(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        quiet_but_for_strays(args, &out);
        let text = stdout(&out);
        match (args[0], args.get(2)) {
            ("verify", Some(_)) => {
                let mut report: Value = serde_json::from_str(&text).unwrap();
                let mut listed: Vec<String> = report["ignored"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|v| v.as_str().unwrap().to_string())
                    .collect();
                listed.sort();
                let mut expected: Vec<String> = ignored
                    .iter()
                    .map(|n| dir.join(n).display().to_string())
                    .collect();
                expected.sort();
                assert_eq!(listed, expected);
                report["ignored"] = serde_json::json!([]);
                assert_eq!(report, serde_json::from_str::<Value>(clean).unwrap());
            }
            ("verify", None) => {
                let notes: Vec<&str> = text
                    .lines()
                    .filter(|l| l.ends_with(": not a peerlog file; ignored"))
                    .collect();
                for name in ignored {
                    let note = format!(
                        "note: {}: not a peerlog file; ignored",
                        dir.join(name).display()
                    );
                    assert!(notes.contains(&note.as_str()), "{text}");
                }
                let rest: Vec<&str> = text.lines().filter(|l| !notes.contains(l)).collect();
                assert_eq!(rest, clean.lines().collect::<Vec<_>>());
                assert!(text.ends_with("; intact\n"), "{text}");
            }
            _ => assert_eq!(&text, clean, "{args:?}"),
        }
        assert_eq!(stray_files(), before, "{args:?} touched a stray");
    }

    for args in [
        vec!["expire", d, "--json"],
        vec!["compact", d, "--keep-history"],
        vec!["salvage", d],
    ] {
        let out = peerlog(&args);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {}", stderr(&out));
        quiet_but_for_strays(&args, &out);
        assert!(!stdout(&out).is_empty(), "{args:?}");
        assert_eq!(stray_files(), before, "{args:?} touched a stray");
    }
    assert!(stdout(&peerlog(&["salvage", d])).starts_with("nothing to salvage"));
    let nodes = stdout(&peerlog(&["dump", d]));
    assert_eq!(nodes.lines().count(), 40, "{nodes}");

    let out = peerlog(&["demo", d]);
    assert_one_line_error(&out, "not empty");
    assert_eq!(stray_files(), before);
}
