//! The `peerlog` command, run as a separate process on databases built through the library.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::{Node, NodeDb, NodeId, Options};
use serde_json::Value;

const VERSION: u64 = 5;

fn peerlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(args)
        .output()
        .expect("running peerlog")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).expect("utf-8 output")
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).expect("utf-8 errors")
}

fn run_ok(args: &[&str]) -> String {
    let out = peerlog(args);
    assert!(
        out.status.success(),
        "peerlog {args:?} failed: {}",
        stderr(&out)
    );
    assert_eq!(
        stderr(&out),
        "",
        "no progress bar or noise when stderr is not a terminal"
    );
    stdout(&out)
}

fn json_lines(text: &str) -> Vec<Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).expect("a JSON line"))
        .collect()
}

/// Asserts an error: status 2, exactly one line on stderr mentioning `needle`, no debug dump.
fn assert_one_line_error(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "stderr: {err}");
    assert_eq!(err.lines().count(), 1, "one line expected, got {err:?}");
    assert!(err.starts_with("peerlog: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains("panicked") && !err.contains(" {"), "{err:?}");
}

fn id(n: u8) -> NodeId {
    NodeId([n; 64])
}

fn node(n: u8, ip: &str, udp: u16, tcp: u16) -> Node {
    Node::new(id(n), ip.parse::<IpAddr>().unwrap(), udp, tcp)
}

/// 2024-05-01T12:30:45Z plus `secs`.
fn at(secs: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_714_566_645 + secs)
}

fn small_segments() -> Options {
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

/// Opens a database for writing. A lock just released can still be held for a moment by a
/// child process another test is spawning (the forked child holds a copy of every descriptor
/// until it execs), so `Locked` is retried briefly.
fn open(dir: &Path, opts: Options) -> NodeDb {
    for _ in 0..100 {
        match NodeDb::open_with(dir, VERSION, id(0), opts.clone()) {
            Err(peerlog::Error::Locked { .. }) => std::thread::sleep(Duration::from_millis(10)),
            other => return other.expect("open"),
        }
    }
    panic!("{} stayed locked", dir.display());
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

/// A small database: node 1 (IPv4), node 2 (IPv6, own discovery port), node 3 deleted.
fn small_db(dir: &Path) {
    let db = open(dir, Options::default());
    let (a, b, c) = (
        node(1, "203.0.113.7", 30303, 30303),
        node(2, "2001:db8::1", 30301, 30303),
        node(3, "198.51.100.1", 30303, 30303),
    );
    for n in [&a, &b, &c] {
        db.update_node(n).unwrap();
    }
    db.update_last_ping(&a.id, at(0)).unwrap();
    db.update_last_pong(&a.id, at(1)).unwrap();
    db.update_find_fails(&b.id, 3).unwrap();
    db.update_node(&node(1, "203.0.113.8", 30303, 30303))
        .unwrap();
    db.delete_node(&c.id).unwrap();
    db.close().unwrap();
}

#[test]
fn every_subcommand_has_help_with_an_example() {
    for sub in [
        "demo", "dump", "history", "verify", "stats", "compact", "expire", "export", "salvage",
        "import", "seeds",
    ] {
        let help = run_ok(&[sub, "--help"]);
        assert!(help.contains("Example: peerlog"), "{sub}: {help}");
    }
}

#[test]
fn dump_prints_the_current_state_in_text_and_json() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());

    let text = run_ok(&["dump", dir]);
    let lines: Vec<_> = text.lines().collect();
    assert_eq!(lines.len(), 2, "the deleted node is gone: {text}");
    let one = format!("enode://{}@203.0.113.8:30303", "01".repeat(64));
    assert_eq!(
        lines[0],
        format!("{one} ping=2024-05-01T12:30:45Z pong=2024-05-01T12:30:46Z fails=0")
    );
    let two = format!(
        "enode://{}@[2001:db8::1]:30303?discport=30301",
        "02".repeat(64)
    );
    assert_eq!(lines[1], format!("{two} ping=- pong=- fails=3"));

    let rows = json_lines(&run_ok(&["dump", dir, "--json"]));
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["enode"], one.as_str());
    assert_eq!(rows[0]["ip"], "203.0.113.8");
    assert_eq!(rows[0]["last_pong"], "2024-05-01T12:30:46Z");
    assert_eq!(rows[1]["udp"], 30301);
    assert_eq!(rows[1]["last_ping"], Value::Null);
    assert_eq!(rows[1]["fails"], 3);
}

#[test]
fn history_lists_every_event_of_a_node_with_what_changed() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());
    let text = run_ok(&["history", dir, &"01".repeat(64)]);
    let changes: Vec<_> = text.lines().map(|l| l.split_once(' ').unwrap().1).collect();
    assert_eq!(
        changes,
        [
            "#1 node   record created: 203.0.113.7 udp 30303 tcp 30303",
            "#4 ping   ping sent at 2024-05-01T12:30:45Z",
            "#5 pong   pong received at 2024-05-01T12:30:46Z",
            "#7 node   endpoint 203.0.113.7 udp 30303 tcp 30303 -> 203.0.113.8 udp 30303 tcp 30303",
        ]
    );
    // The same node named by an enode URL; the deleted node's history ends with its delete.
    // A note on stderr says the URL's endpoint is not a filter.
    let url = format!("enode://{}@198.51.100.1:30303", "03".repeat(64));
    let out = peerlog(&["history", dir, &url, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(stderr(&out).contains("is not a filter"), "{}", stderr(&out));
    let rows = json_lines(&stdout(&out));
    let kinds: Vec<_> = rows.iter().map(|r| r["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["node", "delete"]);
    assert_eq!(rows[1]["seq"], 8);
}

/// A database keeping its history: node 7, 100 pings of it, then a compaction that archives
/// them. Returns it open, with the time the pings count back from.
fn archived_db(dir: &Path) -> (NodeDb, SystemTime) {
    let opts = Options {
        keep_history: true,
        ..small_segments()
    };
    let db = open(dir, opts);
    let peer = node(7, "192.0.2.1", 30303, 30303);
    db.update_node(&peer).unwrap();
    let now = SystemTime::now();
    for i in 0..100 {
        db.update_last_ping(&peer.id, now - Duration::from_secs(100 - i))
            .unwrap();
    }
    db.compact().unwrap();
    (db, now)
}

#[test]
fn history_reads_archived_segments_after_compaction() {
    let temp = tempfile::tempdir().unwrap();
    let (db, _) = archived_db(temp.path());
    db.close().unwrap();
    assert!(temp.path().join("archive").is_dir());
    let rows = json_lines(&run_ok(&[
        "history",
        path_str(temp.path()),
        &"07".repeat(64),
        "--json",
    ]));
    // Compaction kept one ping; the archive still has all 100, and no restated duplicate.
    let pings = rows.iter().filter(|r| r["kind"] == "ping").count();
    assert_eq!(pings, 100);
    assert!(rows.iter().any(|r| r["archived"] == true));
    assert!(rows.iter().all(|r| r["compacted"] == false));
}

/// Writes enough events into 4 KiB segments to fill several; returns the events' ids in order.
fn multi_segment_db(dir: &Path) -> NodeDb {
    let db = open(dir, small_segments());
    for n in 1..=60u8 {
        db.update_node(&node(n, &format!("10.0.0.{n}"), 30303, 30303))
            .unwrap();
        db.update_last_ping(&id(n), at(u64::from(n))).unwrap();
    }
    db
}

fn segment_names(dir: &Path) -> Vec<String> {
    let mut names: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n.ends_with(".seg"))
        .collect();
    names.sort();
    names
}

fn flip_byte(path: &Path, offset: u64) {
    let mut bytes = fs::read(path).unwrap();
    bytes[offset as usize] ^= 0x40;
    fs::write(path, bytes).unwrap();
}

#[test]
fn verify_reports_a_damaged_record_with_its_file_and_offset() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    assert!(segment_names(temp.path()).len() >= 3);
    let clean = peerlog(&["verify", dir]);
    assert!(clean.status.success(), "{}", stdout(&clean));
    assert!(stdout(&clean).ends_with("intact\n"));

    // Node 5's ping record sits in the first (sealed) segment: damage a byte of its payload.
    let events = json_lines(&run_ok(&["history", dir, &"05".repeat(64), "--json"]));
    let ping = &events[1];
    let file = PathBuf::from(ping["file"].as_str().unwrap());
    let offset = ping["offset"].as_u64().unwrap();
    assert!(file.ends_with("0000000000000001.seg"));
    flip_byte(&file, offset + 30);

    let out = peerlog(&["verify", dir, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["intact"], false);
    let findings = report["findings"].as_array().unwrap();
    assert_eq!(findings.len(), 1, "{findings:?}");
    let seq = ping["seq"].as_u64().unwrap();
    assert_eq!(findings[0]["kind"], "damaged");
    assert_eq!(findings[0]["file"], file.to_str().unwrap());
    assert_eq!(findings[0]["offset"], offset);
    assert_eq!(findings[0]["lost_first_seq"], seq);
    assert_eq!(findings[0]["lost_last_seq"], seq);

    let text = stdout(&peerlog(&["verify", dir]));
    let expected = format!(
        "DAMAGE: {} at offset {offset}: damaged bytes",
        file.display()
    );
    assert!(text.contains(&expected), "{text}");
    assert!(
        text.contains(&format!("lost sequence number {seq}\n")),
        "{text}"
    );
}

#[test]
fn a_torn_tail_is_damage_only_with_strict() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    // Garbage right after the last record (node 60's ping, a 96-byte frame): an append cut short.
    let events = json_lines(&run_ok(&["history", dir, &"3c".repeat(64), "--json"]));
    let last = events.last().unwrap();
    let file = PathBuf::from(last["file"].as_str().unwrap());
    flip_byte(&file, last["offset"].as_u64().unwrap() + 96 + 5);

    let relaxed = peerlog(&["verify", dir]);
    assert_eq!(relaxed.status.code(), Some(0), "{}", stdout(&relaxed));
    assert!(stdout(&relaxed).contains("note: "));
    assert!(stdout(&relaxed).contains("torn tail"));
    let strict = peerlog(&["verify", dir, "--strict"]);
    assert_eq!(strict.status.code(), Some(1));
    assert!(stdout(&strict).contains("DAMAGE: "));
}

/// Every file's name and bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut files = BTreeMap::new();
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_file() {
            files.insert(path.clone(), fs::read(&path).unwrap());
        }
    }
    files
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
fn export_rows_equal_the_events_written() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());
    let rows = json_lines(&run_ok(&["export", dir, "--format", "jsonl"]));
    let got: Vec<String> = rows
        .iter()
        .map(|r| {
            format!(
                "{} {} {} {} {} {} {} {}",
                r["seq"],
                r["kind"],
                r["id"],
                r["ip"],
                r["udp"],
                r["tcp"],
                r["event_time"],
                r["fails"]
            )
        })
        .collect();
    let hex = |n: u8| format!("{n:02x}").repeat(64);
    let expected = [
        format!(
            "1 \"node\" \"{}\" \"203.0.113.7\" 30303 30303 null null",
            hex(1)
        ),
        format!(
            "2 \"node\" \"{}\" \"2001:db8::1\" 30301 30303 null null",
            hex(2)
        ),
        format!(
            "3 \"node\" \"{}\" \"198.51.100.1\" 30303 30303 null null",
            hex(3)
        ),
        format!(
            "4 \"ping\" \"{}\" null null null \"2024-05-01T12:30:45Z\" null",
            hex(1)
        ),
        format!(
            "5 \"pong\" \"{}\" null null null \"2024-05-01T12:30:46Z\" null",
            hex(1)
        ),
        format!("6 \"fails\" \"{}\" null null null null 3", hex(2)),
        format!(
            "7 \"node\" \"{}\" \"203.0.113.8\" 30303 30303 null null",
            hex(1)
        ),
        format!("8 \"delete\" \"{}\" null null null null null", hex(3)),
    ];
    assert_eq!(got, expected);
    for row in &rows {
        let written = row["written_at"].as_str().unwrap();
        assert!(
            written.starts_with("20") && written.ends_with('Z'),
            "{written}"
        );
    }

    let csv = run_ok(&["export", dir, "--format", "csv"]);
    let lines: Vec<_> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "seq,written_at,kind,id,ip,udp,tcp,event_time,fails,record_seq,enr,detail"
    );
    assert_eq!(lines.len(), 9);
    let fields: Vec<_> = lines[6].split(',').collect();
    assert_eq!(fields.len(), 12);
    assert_eq!((fields[0], fields[2], fields[8]), ("6", "fails", "3"));
    assert_eq!(fields[3], hex(2));
}

#[test]
fn stats_counts_nodes_events_bytes_and_seeds() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), Options::default());
    let now = SystemTime::now();
    for n in 1..=4u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
    }
    db.update_node(&node(5, "2001:db8::5", 30303, 30303))
        .unwrap();
    // Nodes 1 and 2 answered recently, node 3 two days ago; node 4 never.
    db.update_last_pong(&id(1), now).unwrap();
    db.update_last_pong(&id(2), now - Duration::from_secs(60))
        .unwrap();
    db.update_last_pong(&id(3), now - Duration::from_secs(2 * 86_400))
        .unwrap();
    db.update_last_pong(&id(3), now - Duration::from_secs(2 * 86_400))
        .unwrap();
    db.delete_node(&id(4)).unwrap();
    db.close().unwrap();
    let dir = path_str(temp.path());
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    assert_eq!(s["nodes"], 4);
    assert_eq!(s["ipv6_nodes"], 1);
    assert_eq!(s["records"], 10);
    assert_eq!(s["events"]["node"], 5);
    assert_eq!(s["events"]["pong"], 4);
    assert_eq!(s["events"]["delete"], 1);
    assert_eq!(s["events"]["ping"], 0);
    assert_eq!(s["seeds"], 2);
    // Dead: node 4's record (a 104-byte frame for IPv4 with 3-byte ports) and its delete (88),
    // and node 3's first pong (96).
    assert_eq!(s["dead_bytes"], 104 + 88 + 96);
    assert_eq!(
        s["live_bytes"].as_u64().unwrap() + s["dead_bytes"].as_u64().unwrap(),
        s["record_bytes"].as_u64().unwrap()
    );
    let week: Value =
        serde_json::from_str(&run_ok(&["stats", dir, "--json", "--seed-age", "7d"])).unwrap();
    assert_eq!(week["seeds"], 3);
    let text = run_ok(&["stats", dir]);
    assert!(text.contains("nodes:     4 (1 IPv6)"), "{text}");
}

#[test]
fn expire_and_compact_take_the_lock_and_report_what_they_did() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), small_segments());
    let now = SystemTime::now();
    for n in 1..=30u8 {
        db.update_node(&node(n, "192.0.2.1", 30303, 30303)).unwrap();
        // Every third node answered two days ago: stale under the default 24 h expiration.
        let age = if n % 3 == 0 { 2 * 86_400 } else { 60 };
        db.update_last_pong(&id(n), now - Duration::from_secs(age))
            .unwrap();
    }
    db.close().unwrap();
    let dir = path_str(temp.path());

    let report: Value = serde_json::from_str(&run_ok(&["expire", dir, "--json"])).unwrap();
    assert_eq!(report["nodes_before"], 30);
    assert_eq!(report["nodes_expired"], 10);
    assert_eq!(report["nodes_after"], 20);
    assert_eq!(run_ok(&["dump", dir]).lines().count(), 20);

    // A longer expiration keeps everyone left; compaction rewrites 20 nodes x 2 events.
    let text = run_ok(&["compact", dir, "--expiration", "3d"]);
    assert!(text.starts_with("nodes: 20 -> 20 (0 expired)"), "{text}");
    assert!(text.contains("-> 40 records"), "{text}");
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    assert_eq!(s["records"], 40);
    assert_eq!(s["dead_bytes"], 0);
}

#[test]
fn compact_refuses_a_locked_database_a_wrong_version_and_a_missing_database() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());

    let writer = open(temp.path(), Options::default());
    assert_one_line_error(&peerlog(&["compact", dir]), "locked");
    assert_one_line_error(&peerlog(&["expire", dir]), "locked");
    drop(writer);

    let before = snapshot(temp.path());
    let wrong = peerlog(&["compact", dir, "--protocol-version", "6"]);
    assert_one_line_error(&wrong, "would wipe it");
    assert_eq!(snapshot(temp.path()), before, "nothing wiped");

    let empty = tempfile::tempdir().unwrap();
    let out = peerlog(&["compact", path_str(empty.path())]);
    assert_one_line_error(&out, "no peerlog database");
    assert_eq!(
        fs::read_dir(empty.path()).unwrap().count(),
        0,
        "no file created"
    );
}

#[test]
fn errors_are_one_line_with_a_non_zero_status() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("nope");
    for sub in ["dump", "verify", "stats", "export", "compact"] {
        assert_one_line_error(&peerlog(&[sub, path_str(&missing)]), "no such directory");
    }
    assert!(!missing.exists(), "nothing created");

    let empty = temp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for sub in ["dump", "verify", "stats", "export", "expire", "salvage"] {
        let out = peerlog(&[sub, path_str(&empty)]);
        assert_one_line_error(&out, "no peerlog database here");
    }
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0, "nothing created");

    let db = temp.path().join("db");
    small_db(&db);
    let out = peerlog(&["history", path_str(&db), "12345"]);
    assert_one_line_error(&out, "node id must be 128 hex characters");
    let out = peerlog(&["history", path_str(&db), "enode://xyz@1.2.3.4:5"]);
    assert_one_line_error(&out, "enode URL");
    let out = peerlog(&["stats", path_str(&db), "--self", "zz"]);
    assert_one_line_error(&out, "--self");
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

#[test]
fn demo_creates_a_realistic_database_and_refuses_a_used_directory() {
    let temp = tempfile::tempdir().unwrap();
    let demo = temp.path().join("demo");
    let dir = path_str(&demo);
    let text = run_ok(&["demo", dir, "--nodes", "300", "--days", "3"]);
    assert!(text.contains(" nodes in "), "{text}");
    assert_eq!(peerlog(&["verify", dir]).status.code(), Some(0));
    let s: Value = serde_json::from_str(&run_ok(&["stats", dir, "--json"])).unwrap();
    let nodes = s["nodes"].as_u64().unwrap();
    assert!((250..300).contains(&nodes), "some were deleted: {nodes}");
    assert!(s["ipv6_nodes"].as_u64().unwrap() > 30);
    for kind in ["node", "ping", "pong", "fails", "delete"] {
        assert!(s["events"][kind].as_u64().unwrap() > 0, "{kind}: {s}");
    }
    // Pongs are spread over the simulated days, not all "now".
    let rows = json_lines(&run_ok(&["dump", dir, "--json"]));
    let pongs: Vec<_> = rows
        .iter()
        .filter_map(|r| r["last_pong"].as_str())
        .collect();
    let days: std::collections::BTreeSet<_> = pongs.iter().map(|p| &p[..10]).collect();
    assert!(days.len() >= 3, "{days:?}");

    assert_one_line_error(&peerlog(&["demo", dir]), "not empty");
}

#[test]
fn verify_reports_a_lost_segment_and_a_damaged_header() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    let names = segment_names(temp.path());
    let before: Value = serde_json::from_str(&run_ok(&["verify", dir, "--json"])).unwrap();
    let second = &before["files"][1];
    let (first_lost, last_lost) = (second["first_seq"].clone(), second["last_seq"].clone());

    // The middle segment disappears: the records it held are reported missing, by number.
    fs::remove_file(temp.path().join(&names[1])).unwrap();
    let out = peerlog(&["verify", dir, "--json"]);
    assert_eq!(out.status.code(), Some(1));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    let finding = &report["findings"][0];
    assert_eq!(finding["kind"], "missing");
    assert_eq!(finding["lost_first_seq"], first_lost);
    assert_eq!(finding["lost_last_seq"], last_lost);

    // A damaged header: verify names the file and goes on; other commands refuse in one line.
    flip_byte(&temp.path().join(&names[2]), 20);
    let report: Value =
        serde_json::from_str(&stdout(&peerlog(&["verify", dir, "--json"]))).unwrap();
    let bad: Vec<_> = report["findings"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|f| f["kind"] == "bad_header")
        .collect();
    assert_eq!(bad.len(), 1, "{report}");
    assert!(bad[0]["file"].as_str().unwrap().ends_with(&names[2]));
    assert_eq!(bad[0]["offset"], 0);
    assert_one_line_error(&peerlog(&["dump", dir]), "header checksum mismatch");
}

/// A database with a modern node: a signed record replaced by a higher seq at a new endpoint,
/// liveness at its IP, and the local seq.
fn modern_db(dir: &Path) -> (NodeId, peerlog::enr::Enr<peerlog::enr::CombinedKey>) {
    use peerlog::enr::{CombinedKey, Enr};
    let key = CombinedKey::secp256k1_from_bytes(&mut [9u8; 32]).unwrap();
    let record = |ip: [u8; 4], seq: u64| {
        Enr::builder()
            .ip4(ip.into())
            .udp4(30303)
            .tcp4(30304)
            .seq(seq)
            .build(&key)
            .unwrap()
    };
    let db = open(dir, Options::default());
    let first = record([203, 0, 113, 9], 4);
    let second = record([198, 51, 100, 9], 5);
    let id = NodeId::from_enr(&first).unwrap();
    assert!(db.update_record(&first).unwrap());
    let ip: IpAddr = "198.51.100.9".parse().unwrap();
    assert!(db.update_record(&second).unwrap());
    db.update_last_ping_from(&id, ip, at(100)).unwrap();
    db.update_last_pong_from(&id, ip, at(101)).unwrap();
    db.update_find_fails_at(&id, ip, 2).unwrap();
    db.store_local_seq(42).unwrap();
    db.close().unwrap();
    (id, second)
}

#[test]
fn dump_history_and_export_show_signed_records_and_liveness_per_ip() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    let (id, record) = modern_db(&dir);
    let dir = path_str(&dir);
    let text = record.to_base64();

    let dump = run_ok(&["dump", dir]);
    let line = dump.lines().next().unwrap();
    assert!(
        line.starts_with(&format!(
            "enode://{id}@198.51.100.9:30304?discport=30303 seq=5 "
        )),
        "{line}"
    );
    assert!(
        line.contains("[198.51.100.9 ping=2024-05-01T12:32:25Z pong=2024-05-01T12:32:26Z fails=2]"),
        "{line}"
    );
    assert!(line.ends_with(&format!(" {text}")), "{line}");
    let json = &json_lines(&run_ok(&["dump", dir, "--json"]))[0];
    assert_eq!(json["record_seq"], 5);
    assert_eq!(json["enr"], text.as_str());
    assert_eq!(json["ips"][0]["ip"], "198.51.100.9");
    assert_eq!(json["ips"][0]["fails"], 2);

    let history = run_ok(&["history", dir, &id.to_string()]);
    let changes: Vec<&str> = history
        .lines()
        .map(|l| l.split_once("  ").map_or(l, |x| x.1).trim())
        .collect();
    assert!(
        history.contains("record signed record created: seq 4, 203.0.113.9 udp 30303 tcp 30304"),
        "{history}"
    );
    assert!(history.contains("record seq 4 -> 5, endpoint 203.0.113.9 udp 30303 tcp 30304 -> 198.51.100.9 udp 30303 tcp 30304"), "{history}");
    assert!(
        history.contains("ping sent to 198.51.100.9 at 2024-05-01T12:32:25Z"),
        "{history}"
    );
    assert!(
        history.contains("pong received from 198.51.100.9 at 2024-05-01T12:32:26Z"),
        "{history}"
    );
    assert!(
        history.contains("findnode fails at 198.51.100.9 0 -> 2"),
        "{history}"
    );
    assert_eq!(changes.len(), 5, "{history}");

    let csv = run_ok(&["export", dir, "--format", "csv"]);
    let mut rows = csv.lines();
    assert_eq!(
        rows.next().unwrap(),
        "seq,written_at,kind,id,ip,udp,tcp,event_time,fails,record_seq,enr,detail"
    );
    let rows: Vec<Vec<&str>> = rows.map(|r| r.split(',').collect()).collect();
    let kinds: Vec<&str> = rows.iter().map(|r| r[2]).collect();
    assert_eq!(
        kinds,
        [
            "record",
            "record",
            "ping_from",
            "pong_from",
            "fails_at",
            "local_seq"
        ]
    );
    assert_eq!(&rows[1][4..7], ["198.51.100.9", "30303", "30304"]);
    assert_eq!((rows[1][9], rows[1][10]), ("5", text.as_str()));
    assert_eq!((rows[4][4], rows[4][8]), ("198.51.100.9", "2"));
    assert_eq!((rows[5][3], rows[5][9]), ("", "42"));
    let jsonl = json_lines(&run_ok(&["export", dir]));
    assert_eq!(jsonl[5]["kind"], "local_seq");
    assert_eq!(jsonl[5]["record_seq"], 42);
    assert_eq!(jsonl[5]["id"], Value::Null);
}

#[test]
fn a_demo_database_holds_signed_records_with_real_keys() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    run_ok(&["demo", path_str(&dir), "--nodes", "200"]);
    let state = peerlog::inspect::state(&dir, &peerlog::inspect::no_progress).unwrap();
    let signed: Vec<_> = state
        .peers
        .iter()
        .filter_map(|p| p.record.as_ref())
        .collect();
    assert!(
        signed.len() > 50 && signed.len() < 150,
        "{} signed of 200",
        signed.len()
    );
    for record in signed {
        let enr = record
            .decode::<peerlog::enr::CombinedKey>()
            .expect("a valid signature");
        assert_eq!(NodeId::from_enr(&enr).unwrap(), *record.id());
    }
}

// ---- Issue 10, item 5: bad input never panics, never leaves half a database. ----

/// What a command given one value of one argument must do.
enum Expect {
    /// Exit 0.
    Ok,
    /// One line on stderr containing this, exit 2.
    Refused(&'static str),
}

const U64_MAX: &str = "18446744073709551615";
const PAST_U64: &str = "18446744073709551616";

#[test]
fn demo_refuses_days_it_cannot_store_before_creating_anything() {
    let temp = tempfile::tempdir().unwrap();
    for days in [U64_MAX, "200000", "1000000000000"] {
        let dir = temp.path().join(format!("demo-{days}"));
        let out = peerlog(&["demo", path_str(&dir), "--nodes", "50", "--days", days]);
        assert_one_line_error(&out, "--days");
        let err = stderr(&out);
        assert!(err.contains("earliest time the log can store"), "{err}");
        assert!(!err.contains("SystemTime"), "no Rust debug value: {err}");
        assert!(!dir.exists(), "--days {days}: nothing created");
    }
    // An empty directory given is left empty.
    let empty = temp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    assert_one_line_error(
        &peerlog(&["demo", path_str(&empty), "--days", "200000"]),
        "--days",
    );
    assert_eq!(fs::read_dir(&empty).unwrap().count(), 0);
}

#[test]
fn a_demo_that_fails_halfway_leaves_the_directory_as_it_was() {
    // A file size limit makes the writes past some 1.5 MB fail (EFBIG; the signal that would
    // kill the process is ignored) halfway through the demo.
    let temp = tempfile::tempdir().unwrap();
    let bin = env!("CARGO_BIN_EXE_peerlog");
    let empty = temp.path().join("empty");
    fs::create_dir(&empty).unwrap();
    for dir in [temp.path().join("new"), empty.clone()] {
        let out = Command::new("sh")
            .arg("-c")
            .arg(format!(
                "trap '' XFSZ; ulimit -f 3000; exec {bin} demo {} --nodes 20000",
                path_str(&dir)
            ))
            .output()
            .unwrap();
        assert_one_line_error(&out, "File too large");
    }
    assert!(
        !temp.path().join("new").exists(),
        "the new directory is gone"
    );
    assert_eq!(
        fs::read_dir(&empty).unwrap().count(),
        0,
        "the empty one is empty"
    );
}

#[test]
fn every_numeric_argument_is_checked_at_its_limits() {
    use Expect::{Ok, Refused};
    let temp = tempfile::tempdir().unwrap();
    let mut case = 0;
    let mut check = |args: &[&str], value: &str, expect: Expect, db: bool| {
        case += 1;
        let dir = temp.path().join(format!("case-{case}"));
        if db {
            small_db(&dir);
        }
        let mut full: Vec<&str> = vec![args[0], path_str(&dir)];
        full.extend(&args[1..]);
        full.push(value);
        let out = peerlog(&full);
        let err = stderr(&out);
        assert!(!err.contains("panicked"), "{full:?}: {err}");
        match expect {
            Ok => assert!(out.status.success(), "{full:?}: {err}"),
            Refused(needle) => {
                assert_one_line_error(&out, needle);
                if !db {
                    assert!(!dir.exists(), "{full:?} created {}", dir.display());
                }
            }
        }
    };
    let demo = |flag: &'static str| -> Vec<&'static str> {
        // One node: the successful cases stay fast.
        if flag == "--nodes" {
            vec!["demo", flag]
        } else {
            vec!["demo", "--nodes", "1", flag]
        }
    };
    let number_cases = |least: &'static str| {
        [
            ("-1", Refused("negative")),
            ("abc", Refused("not a whole number")),
            ("", Refused("not a whole number")),
            (PAST_U64, Refused("too large")),
            (
                "0",
                if least == "0" {
                    Ok
                } else {
                    Refused("least is 1")
                },
            ),
        ]
    };
    // demo --nodes: 0 to 10 million.
    for (value, expect) in number_cases("0") {
        check(&demo("--nodes"), value, expect, false);
    }
    check(&demo("--nodes"), "1", Ok, false);
    check(
        &demo("--nodes"),
        "10000001",
        Refused("the most is 10000000"),
        false,
    );
    check(
        &demo("--nodes"),
        U64_MAX,
        Refused("the most is 10000000"),
        false,
    );
    // demo --days: 1 to the earliest storable time.
    for (value, expect) in number_cases("1") {
        check(&demo("--days"), value, expect, false);
    }
    check(&demo("--days"), "1", Ok, false);
    check(&demo("--days"), "100000", Ok, false);
    check(&demo("--days"), "1000000", Refused("at most"), false);
    check(&demo("--days"), U64_MAX, Refused("at most"), false);
    // demo --seed and --protocol-version: any whole number.
    for flag in ["--seed", "--protocol-version"] {
        for (value, expect) in number_cases("0") {
            check(&demo(flag), value, expect, false);
        }
        check(&demo(flag), "1", Ok, false);
        check(&demo(flag), U64_MAX, Ok, false);
    }
    // compact and expire --protocol-version: the database's (5), nothing else.
    for sub in ["compact", "expire"] {
        check(&[sub, "--protocol-version"], "5", Ok, true);
        for value in ["0", "1", U64_MAX] {
            check(
                &[sub, "--protocol-version"],
                value,
                Refused("would wipe it"),
                true,
            );
        }
        check(
            &[sub, "--protocol-version"],
            "-1",
            Refused("negative"),
            true,
        );
        check(
            &[sub, "--protocol-version"],
            "x",
            Refused("not a whole number"),
            true,
        );
        // --expiration: at least 1s, up to the largest duration.
        check(&[sub, "--expiration"], "0", Refused("at least 1s"), true);
        check(&[sub, "--expiration"], "0s", Refused("at least 1s"), true);
        check(&[sub, "--expiration"], "1s", Ok, true);
        check(&[sub, "--expiration"], "100000000d", Ok, true);
        check(&[sub, "--expiration"], &format!("{U64_MAX}s"), Ok, true);
        check(
            &[sub, "--expiration"],
            &format!("{PAST_U64}s"),
            Refused("--expiration"),
            true,
        );
        check(
            &[sub, "--expiration"],
            "-1h",
            Refused("cannot be negative"),
            true,
        );
        check(
            &[sub, "--expiration"],
            "soon",
            Refused("--expiration"),
            true,
        );
    }
    // stats --seed-age: 0 and up.
    for value in ["0", "0s", "1s", "100000000d", &format!("{U64_MAX}s")] {
        check(&["stats", "--seed-age"], value, Ok, true);
    }
    check(
        &["stats", "--seed-age"],
        &format!("{PAST_U64}s"),
        Refused("--seed-age"),
        true,
    );
    check(
        &["stats", "--seed-age"],
        "-1h",
        Refused("cannot be negative"),
        true,
    );
    check(&["stats", "--seed-age"], "abc", Refused("--seed-age"), true);
    // export and dump --since: a storable time, or a duration ago.
    for sub in ["export", "dump"] {
        for value in [
            "0s",
            "1s",
            "1d",
            "2024-05-01",
            "2024-05-01T12:30:45.5Z",
            "1677-09-22",
        ] {
            check(&[sub, "--since"], value, Ok, true);
        }
        for value in ["1600-01-01", "10000000000d", &format!("{U64_MAX}s")] {
            check(&[sub, "--since"], value, Refused("outside the times"), true);
        }
        for value in ["-1h", "abc", "2024-02-30", "2024-13-01", ""] {
            check(&[sub, "--since"], value, Refused("--since"), true);
        }
    }
}

#[test]
fn argument_errors_are_one_line_and_help_and_version_still_work() {
    let temp = tempfile::tempdir().unwrap();
    let dir = path_str(temp.path());
    let cases: [(&[&str], &str); 8] = [
        (&["demo", dir, "--nodes", "abc"], "--nodes"),
        (&["demo", dir, "--nodes", "-1"], "negative"),
        (&["bogus"], "unrecognized subcommand 'bogus'"),
        (&[], "no subcommand"),
        (&["demo"], "<DIR>"),
        (&["dump", dir, "--bogus"], "--bogus"),
        (
            &["export", dir, "--format", "xml"],
            "possible values: jsonl, csv",
        ),
        (
            &["export", dir, "--kind", "pingg"],
            "the kinds are node, ping",
        ),
    ];
    for (args, needle) in cases {
        assert_one_line_error(&peerlog(args), needle);
    }
    assert!(fs::read_dir(temp.path()).unwrap().next().is_none());
    for args in [&["--help"][..], &["demo", "--help"], &["help"]] {
        let out = peerlog(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(stdout(&out).lines().count() > 5, "{args:?}: the full help");
    }
    let version = run_ok(&["--version"]);
    assert!(version.starts_with("peerlog "), "{version}");
}

// ---- Issue 10, item 6: exports that load as they are. ----

#[test]
fn export_json_keys_follow_the_column_order() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    let (id, _) = modern_db(&dir);
    let dir = path_str(&dir);
    let csv = run_ok(&["export", dir, "--format", "csv"]);
    let columns: Vec<&str> = csv.lines().next().unwrap().split(',').collect();
    assert!(columns.contains(&"event_time") && !columns.contains(&"at"));
    // Where each key starts in a line, in order of appearance.
    let key_order = |line: &str, keys: &[&str]| -> Vec<String> {
        let mut found: Vec<(usize, String)> = keys
            .iter()
            .map(|k| {
                let at = line
                    .find(&format!("\"{k}\":"))
                    .unwrap_or_else(|| panic!("{k}: {line}"));
                (at, k.to_string())
            })
            .collect();
        found.sort();
        found.into_iter().map(|f| f.1).collect()
    };
    let exported = run_ok(&["export", dir]);
    assert_eq!(exported.lines().count(), 6);
    for line in exported.lines() {
        assert_eq!(key_order(line, &columns), columns, "{line}");
    }
    // history --json: the export columns in the same order, then its own.
    let mut history_keys = columns.clone();
    history_keys.extend(["change", "file", "offset", "archived", "compacted"]);
    for line in run_ok(&["history", dir, &id.to_string(), "--json"]).lines() {
        assert_eq!(key_order(line, &history_keys), history_keys, "{line}");
    }
    // dump --json: the order docs/CLI.md lists.
    let dump_keys = [
        "id",
        "enode",
        "ip",
        "udp",
        "tcp",
        "record_seq",
        "enr",
        "last_ping",
        "last_pong",
        "fails",
        "ips",
        "last_written",
    ];
    let line = run_ok(&["dump", dir, "--json"]);
    assert_eq!(key_order(&line, &dump_keys), dump_keys, "{line}");
}

#[test]
fn export_and_dump_filter_by_since_and_kind() {
    let temp = tempfile::tempdir().unwrap();
    let db = open(temp.path(), Options::default());
    db.update_node(&node(1, "192.0.2.1", 30303, 30303)).unwrap();
    db.update_last_ping(&id(1), at(0)).unwrap();
    db.update_find_fails(&id(2), 1).unwrap();
    db.sync().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    let middle = SystemTime::now();
    std::thread::sleep(Duration::from_millis(20));
    db.update_node(&node(3, "192.0.2.3", 30303, 30303)).unwrap();
    db.update_last_pong(&id(1), at(1)).unwrap();
    db.close().unwrap();
    let dir = path_str(temp.path());
    let since = middle
        .duration_since(UNIX_EPOCH)
        .map(|d| {
            let exported = json_lines(&run_ok(&["export", dir]));
            // The written_at of the first record after `middle`, in the export's own form.
            let later = exported
                .iter()
                .find(|r| r["seq"] == 4)
                .map(|r| r["written_at"].as_str().unwrap().to_string())
                .unwrap();
            assert!(d.as_secs() > 0);
            later
        })
        .unwrap();

    let kinds = |rows: &[Value]| -> Vec<String> {
        rows.iter()
            .map(|r| r["kind"].as_str().unwrap().to_string())
            .collect()
    };
    let all = json_lines(&run_ok(&["export", dir]));
    assert_eq!(kinds(&all), ["node", "ping", "fails", "node", "pong"]);
    let recent = json_lines(&run_ok(&["export", dir, "--since", &since]));
    assert_eq!(
        kinds(&recent),
        ["node", "pong"],
        "written at or after --since"
    );
    let picked = json_lines(&run_ok(&[
        "export",
        dir,
        "--kind",
        "ping,pong",
        "--kind",
        "fails",
    ]));
    assert_eq!(kinds(&picked), ["ping", "fails", "pong"]);
    let both = run_ok(&[
        "export", dir, "--format", "csv", "--since", &since, "--kind", "node",
    ]);
    let lines: Vec<_> = both.lines().collect();
    assert_eq!(lines.len(), 2, "header and node 3: {both}");
    assert!(lines[1].contains(&"03".repeat(64)));
    assert_eq!(run_ok(&["export", dir, "--since", "2262-01-01"]), "");

    // dump: --since on last_written, --kind on the kind of record.
    let ids = |text: String| -> Vec<String> {
        json_lines(&text)
            .iter()
            .map(|r| r["id"].as_str().unwrap()[..2].to_string())
            .collect()
    };
    assert_eq!(ids(run_ok(&["dump", dir, "--json"])), ["01", "03"]);
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--since", &since])),
        ["01", "03"],
        "node 1's pong is recent"
    );
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--all"])),
        ["01", "02", "03"]
    );
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--since", &since, "--all"])),
        ["01", "03"],
        "id 2's fails are older"
    );
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--kind", "none"])),
        ["02"]
    );
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--kind", "record"])),
        Vec::<String>::new()
    );
    assert_eq!(
        ids(run_ok(&["dump", dir, "--json", "--kind", "node,none"])),
        ["01", "02", "03"]
    );
}

#[test]
fn export_with_archive_without_an_archive_is_the_live_log() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());
    assert_eq!(
        run_ok(&["export", dir, "--with-archive"]),
        run_ok(&["export", dir])
    );
}

#[test]
fn export_with_archive_keeps_the_full_history_after_compaction() {
    let temp = tempfile::tempdir().unwrap();
    let (db, now) = archived_db(temp.path());
    db.update_last_pong(&id(7), now).unwrap();
    db.compact().unwrap();
    db.close().unwrap();
    let dir = path_str(temp.path());
    let rows = json_lines(&run_ok(&["export", dir, "--with-archive"]));
    let seqs: Vec<u64> = rows.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(
        seqs,
        (1..=102).collect::<Vec<_>>(),
        "every event once, in order"
    );
    assert_eq!(rows.iter().filter(|r| r["kind"] == "ping").count(), 100);
    let live = json_lines(&run_ok(&["export", dir]));
    assert!(
        live.len() < 5,
        "the live log holds the compacted state only"
    );
}

/// The ```sql blocks of docs/CLI.md, one statement each.
fn documented_queries() -> Vec<String> {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md")).unwrap();
    let mut queries = Vec::new();
    let mut rest = doc.as_str();
    while let Some(start) = rest.find("```sql\n") {
        let block = &rest[start + 7..];
        let end = block.find("```").expect("a closed sql block");
        queries.extend(
            block[..end]
                .split(';')
                .map(|q| {
                    q.lines()
                        .filter(|l| !l.trim_start().starts_with("--"))
                        .collect::<Vec<_>>()
                        .join("\n")
                })
                .filter(|q| !q.trim().is_empty()),
        );
        rest = &block[end..];
    }
    queries
}

/// Runs each documented statement with DuckDB's Python package in the directory that holds
/// events.csv and events.jsonl: a statement that makes something (SET, CREATE VIEW) once, as
/// written; a query as written and with the other format's view (`events_csv` and
/// `events_json` swapped; every result must be the same). Prints one JSON line per statement:
/// its rows as strings (`null` for a statement without rows). Then the rows the two views
/// differ in, the columns with their types, and the values that are not NULL in each column
/// of each view.
const DUCKDB_SCRIPT: &str = r#"
import json, sys, duckdb
queries = json.loads(sys.argv[1])
con = duckdb.connect()
for q in queries:
    statement = q.strip().split()[0].upper()
    if statement in ("SET", "CREATE"):
        con.sql(q)
        print(json.dumps(None))
        continue
    results = []
    swapped = q.replace("events_csv", "@").replace("events_json", "events_csv").replace("@", "events_json")
    for variant in (q, swapped):
        rows = con.sql(variant).fetchall()
        results.append([[None if v is None else str(v) for v in row] for row in rows])
    if results[0] != results[1]:
        sys.exit(f"CSV and JSONL differ for {q!r}: {results}")
    print(json.dumps(results[0]))
diff = con.sql("SELECT count(*) FROM (SELECT * FROM events_csv EXCEPT ALL SELECT * FROM events_json)")
print(json.dumps(diff.fetchall()[0][0]))
types = []
for view in ("events_csv", "events_json"):
    relation = con.sql(f"SELECT * FROM {view} LIMIT 0")
    types.append([[c, str(t)] for c, t in zip(relation.columns, relation.types)])
if types[0] != types[1]:
    sys.exit(f"CSV and JSONL load with other types: {types}")
print(json.dumps(types[0]))
counts = {}
for view in ("events_csv", "events_json"):
    cols = ", ".join(f"count({c})" for c, _ in types[0])
    counts[view] = [int(v) for v in con.sql(f"SELECT {cols} FROM {view}").fetchall()[0]]
print(json.dumps(counts))
"#;

/// Whether DuckDB's Python package can run here; if not, a test that needs it fails where
/// `PEERLOG_REQUIRE_DUCKDB` is set (as `.ci/run` sets it), and otherwise says in the test
/// output that it is skipped.
fn duckdb_available(test: &str) -> bool {
    let probe = Command::new("python3")
        .args(["-c", "import duckdb"])
        .output();
    if probe.as_ref().is_ok_and(|o| o.status.success()) {
        return true;
    }
    let why = match &probe {
        Err(e) => format!("python3 cannot run ({e})"),
        Ok(_) => "the duckdb Python package is missing (pip install duckdb)".to_string(),
    };
    assert!(
        std::env::var_os("PEERLOG_REQUIRE_DUCKDB").is_none(),
        "PEERLOG_REQUIRE_DUCKDB is set but {why}"
    );
    say_skipped(test, &why);
    false
}

/// Says on the test run's own stderr (not the output the test harness captures and shows
/// only for a failure) that `test` is skipped, and why.
fn say_skipped(test: &str, why: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "{test}: skipped: {why}");
}

/// What DuckDB made of events.csv and events.jsonl in `dir`: the documented statements, each
/// one's result, the rows the two files differ in, the columns with their types, and the
/// values not NULL per column in each file.
struct DuckDbRun {
    queries: Vec<String>,
    results: Vec<Value>,
    differing_rows: u64,
    columns: Vec<(String, String)>,
    non_null: BTreeMap<String, Vec<u64>>,
}

fn run_duckdb(dir: &Path) -> DuckDbRun {
    let queries = documented_queries();
    assert!(
        queries.len() >= 3,
        "docs/CLI.md shows DuckDB queries: {queries:?}"
    );
    let out = Command::new("python3")
        .args([
            "-c",
            DUCKDB_SCRIPT,
            &serde_json::to_string(&queries).unwrap(),
        ])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let mut results = json_lines(&stdout(&out));
    assert_eq!(results.len(), queries.len() + 3);
    let non_null = serde_json::from_value(results.pop().unwrap()).unwrap();
    let columns: Vec<(String, String)> = serde_json::from_value(results.pop().unwrap()).unwrap();
    let differing_rows = results.pop().unwrap().as_u64().unwrap();
    DuckDbRun {
        queries,
        results,
        differing_rows,
        columns,
        non_null,
    }
}

/// The export's columns, with the types the documented views give them.
const DUCKDB_COLUMNS: [(&str, &str); 12] = [
    ("seq", "BIGINT"),
    ("written_at", "TIMESTAMP WITH TIME ZONE"),
    ("kind", "VARCHAR"),
    ("id", "VARCHAR"),
    ("ip", "VARCHAR"),
    ("udp", "BIGINT"),
    ("tcp", "BIGINT"),
    ("event_time", "TIMESTAMP WITH TIME ZONE"),
    ("fails", "BIGINT"),
    ("record_seq", "UBIGINT"),
    ("enr", "VARCHAR"),
    ("detail", "VARCHAR"),
];

/// Checks what DuckDB made of `jsonl` (written to events.jsonl beside its CSV twin): the same
/// table from both files, with the documented types, and every value the export has, none
/// read as NULL.
fn check_duckdb_load(run: &DuckDbRun, jsonl: &str) {
    assert_eq!(
        run.differing_rows, 0,
        "CSV and JSONL load as the same table"
    );
    let columns: Vec<(&str, &str)> = run
        .columns
        .iter()
        .map(|(c, t)| (c.as_str(), t.as_str()))
        .collect();
    assert_eq!(columns, DUCKDB_COLUMNS);
    let mut present = vec![0u64; DUCKDB_COLUMNS.len()];
    for row in json_lines(jsonl) {
        for (i, (column, _)) in DUCKDB_COLUMNS.iter().enumerate() {
            present[i] += u64::from(!row[column].is_null());
        }
    }
    for (view, counts) in &run.non_null {
        for (i, (column, _)) in DUCKDB_COLUMNS.iter().enumerate() {
            assert_eq!(
                counts[i], present[i],
                "{view}: {column} holds {} values, DuckDB read {}",
                present[i], counts[i]
            );
        }
    }
}

#[test]
fn exports_load_into_duckdb_and_the_documented_queries_run() {
    if !duckdb_available("exports_load_into_duckdb_and_the_documented_queries_run") {
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("db");
    let dir = path_str(&db);
    let version = VERSION.to_string();
    run_ok(&[
        "demo",
        dir,
        "--nodes",
        "200",
        "--days",
        "3",
        "--protocol-version",
        &version,
    ]);
    // Every column filled somewhere: the local seq too, and an IPv6 endpoint.
    let extra = open(&db, Options::default());
    extra.store_local_seq(7).unwrap();
    extra
        .update_node(&node(9, "2001:db8::9", 30301, 30303))
        .unwrap();
    extra.close().unwrap();
    let jsonl = run_ok(&["export", dir]);
    fs::write(temp.path().join("events.jsonl"), &jsonl).unwrap();
    fs::write(
        temp.path().join("events.csv"),
        run_ok(&["export", dir, "--format", "csv"]),
    )
    .unwrap();

    let run = run_duckdb(temp.path());
    check_duckdb_load(&run, &jsonl);
    let (queries, results) = (&run.queries, &run.results);
    // The query that counts events by kind gives the export's own counts.
    let mut by_kind: BTreeMap<String, u64> = BTreeMap::new();
    for row in json_lines(&jsonl) {
        *by_kind
            .entry(row["kind"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let (_, counts) = queries
        .iter()
        .zip(results)
        .find(|(q, _)| q.contains("GROUP BY kind"))
        .expect("a documented query counts events by kind");
    let counted: BTreeMap<String, u64> = counts
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r[0].as_str().unwrap().to_string(),
                r[1].as_str().unwrap().parse().unwrap(),
            )
        })
        .collect();
    assert_eq!(counted, by_kind);
    for (query, result) in queries.iter().zip(results) {
        // A statement such as SET has no rows to show, and this log records no loss.
        let makes = ["SET ", "CREATE "]
            .iter()
            .any(|s| query.trim_start().starts_with(s));
        if !makes && !query.contains("kind = 'loss'") {
            assert!(
                !result.as_array().unwrap().is_empty(),
                "no rows from {query}"
            );
        }
    }
}

/// The documented statements load a log of over 100,000 events whose `loss` rows (the only
/// ones with a `detail`), signed record (`enr`) and local seq (`record_seq`) come after the
/// first 20,480 rows, and whose first rows have no IP: every value the export holds, none
/// read as NULL, with the same types from both files (issue 19, item 5: `read_json_auto`
/// typed `detail` from the first rows and read every loss's as NULL).
#[test]
fn a_large_export_loads_into_duckdb_with_every_column_typed() {
    if !duckdb_available("a_large_export_loads_into_duckdb_with_every_column_typed") {
        return;
    }
    const NODES: u32 = 60_000;
    let temp = tempfile::tempdir().unwrap();
    let db_dir = temp.path().join("db");
    let opts = Options {
        segment_size: 1 << 20,
        compact_min_bytes: u64::MAX,
        durability: peerlog::Durability::Process,
        ..Options::default()
    };
    let node_id = |n: u32| {
        let mut bytes = [0x5a; 64];
        bytes[..4].copy_from_slice(&n.to_be_bytes());
        NodeId(bytes)
    };
    let db = open(&db_dir, opts.clone());
    // First pings (no IP), then the nodes, each in a segment of its own.
    let now = SystemTime::now();
    for n in 0..NODES {
        db.update_last_ping(&node_id(n), now).unwrap();
    }
    for n in 0..NODES {
        let ip = IpAddr::from([10, (n >> 16) as u8, (n >> 8) as u8, n as u8]);
        db.update_node(&Node::new(node_id(n), ip, 30303, 30303))
            .unwrap();
    }
    db.close().unwrap();
    // A middle segment lost: the compaction records the loss after the log's other events.
    let segments = segment_names(&db_dir);
    assert!(segments.len() >= 4, "{segments:?}");
    fs::remove_file(db_dir.join(&segments[segments.len() / 2])).unwrap();
    let db = open(&db_dir, opts);
    db.compact().unwrap();
    db.store_local_seq(7).unwrap();
    let key = peerlog::enr::CombinedKey::secp256k1_from_bytes(&mut [7u8; 32]).unwrap();
    let record = peerlog::enr::Enr::builder()
        .ip4([203, 0, 113, 7].into())
        .udp4(30303)
        .seq(3)
        .build(&key)
        .unwrap();
    assert!(db.update_record(&record).unwrap());
    db.close().unwrap();

    let dir = path_str(&db_dir);
    let jsonl = run_ok(&["export", dir]);
    let rows = json_lines(&jsonl);
    assert!(rows.len() > 100_000, "{} events", rows.len());
    let first_loss = rows.iter().position(|r| r["kind"] == "loss").unwrap();
    assert!(first_loss > 20_480, "the first loss is row {first_loss}");
    assert!(rows[..20_480]
        .iter()
        .all(|r| r["detail"].is_null() && r["enr"].is_null()));
    fs::write(temp.path().join("events.jsonl"), &jsonl).unwrap();
    fs::write(
        temp.path().join("events.csv"),
        run_ok(&["export", dir, "--format", "csv"]),
    )
    .unwrap();
    let run = run_duckdb(temp.path());
    check_duckdb_load(&run, &jsonl);
    let (_, losses) = run
        .queries
        .iter()
        .zip(&run.results)
        .find(|(q, _)| q.contains("kind = 'loss'"))
        .expect("a documented query lists the losses");
    let losses = losses.as_array().unwrap();
    assert!(!losses.is_empty());
    for loss in losses {
        assert!(
            loss[2]
                .as_str()
                .is_some_and(|d| d.contains("lost sequence numbers")),
            "{loss}"
        );
    }
}

// ---- Issue 10, item 7: progress that tells the truth. ----

/// Runs the command line `shell` under a pseudo-terminal (util-linux `script`), so that
/// stderr is a terminal and the progress display draws; returns what the terminal got.
fn on_a_terminal(shell: &str) -> Option<String> {
    let out = Command::new("script")
        .args(["-qec", shell, "/dev/null"])
        .env("TERM", "xterm")
        .output()
        .ok()?;
    assert!(out.status.success(), "{shell}: {}", stderr(&out));
    Some(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The percentages a terminal output shows, in order.
fn percentages(screen: &str) -> Vec<u64> {
    screen
        .split('%')
        .filter_map(|before| {
            let digits: String = before
                .chars()
                .rev()
                .take_while(char::is_ascii_digit)
                .collect::<Vec<_>>()
                .into_iter()
                .rev()
                .collect();
            digits.parse().ok()
        })
        .collect()
}

#[test]
fn progress_starts_at_zero_and_shows_on_every_long_command() {
    if Command::new("script").arg("--version").output().is_err() {
        say_skipped(
            "progress_starts_at_zero_and_shows_on_every_long_command",
            "no `script` (util-linux) to give the command a terminal",
        );
        return;
    }
    let temp = tempfile::tempdir().unwrap();
    let db = temp.path().join("db");
    let bin = env!("CARGO_BIN_EXE_peerlog");
    let dir = path_str(&db);
    let demo = on_a_terminal(&format!("{bin} demo {dir} --nodes 3000 > /dev/null")).unwrap();
    for command in ["demo", "export", "dump", "stats", "verify"] {
        let screen = match command {
            "demo" => demo.clone(),
            other => on_a_terminal(&format!("{bin} {other} {dir} > /dev/null")).unwrap(),
        };
        let shown = percentages(&screen);
        assert!(!shown.is_empty(), "{command} draws a bar: {screen:?}");
        assert_eq!(
            shown[0], 0,
            "{command} starts at 0 %, not 100 %: {screen:?}"
        );
        assert!(
            shown.windows(2).all(|w| w[0] <= w[1]),
            "{command} never goes back: {shown:?}"
        );
    }
    for (command, label) in [("expire", "opening"), ("compact", "opening")] {
        let screen = on_a_terminal(&format!("{bin} {command} {dir} > /dev/null")).unwrap();
        assert!(
            screen.contains(label),
            "{command} shows what it does: {screen:?}"
        );
    }
    // Nothing is drawn when stderr is not a terminal.
    run_ok(&["verify", dir]);
}

// ---- Issue 10, item 8: the small things. ----

#[test]
fn counts_and_durations_read_as_english() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("demo");
    let text = run_ok(&["demo", path_str(&dir), "--nodes", "1", "--days", "1"]);
    assert!(text.contains(" over 1 simulated day in "), "{text}");
    assert!(text.contains("\n1 node in "), "{text}");
    let stats = run_ok(&["stats", path_str(&dir)]);
    assert!(stats.contains("with a pong within 1 day\n"), "{stats}");
    assert!(stats.contains(", 1 id with data\n"), "{stats}");
    let week = run_ok(&["stats", path_str(&dir), "--seed-age", "7d 12h"]);
    assert!(week.contains("within 7 days 12h\n"), "{week}");
    let compact = run_ok(&["compact", path_str(&dir), "--expiration", "30d"]);
    assert!(compact.contains("compacted 1 segment: "), "{compact}");
}

#[test]
fn verify_words_missing_records_and_bad_headers_without_false_byte_counts() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    let names = segment_names(temp.path());
    fs::remove_file(temp.path().join(&names[1])).unwrap();
    let text = stdout(&peerlog(&["verify", dir]));
    let missing = text
        .lines()
        .find(|l| l.contains("records missing"))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(!missing.contains("bytes"), "no bytes to count: {missing}");
    assert!(missing.contains("lost sequence numbers "), "{missing}");

    // A header cut to 40 bytes: said once, with no byte count that contradicts it.
    let last = temp.path().join(names.last().unwrap());
    let bytes = fs::read(&last).unwrap();
    fs::write(&last, &bytes[..40]).unwrap();
    let text = stdout(&peerlog(&["verify", dir]));
    let bad = text
        .lines()
        .find(|l| l.contains("header is 40 bytes"))
        .unwrap_or_else(|| panic!("{text}"));
    assert_eq!(
        bad,
        format!(
            "DAMAGE: {}: unreadable segment header: header is 40 bytes, expected 64",
            last.display()
        )
    );
}

#[test]
fn a_bad_enode_url_is_explained_once() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let out = peerlog(&["history", path_str(temp.path()), "enode://xyz@1.2.3.4:5"]);
    assert_one_line_error(&out, "node id must be 128 hex characters, got 3");
    assert_eq!(
        stderr(&out).matches("invalid input").count(),
        0,
        "{}",
        stderr(&out)
    );
}

#[test]
fn history_of_an_unknown_node_says_so_on_stderr_and_exits_0() {
    let temp = tempfile::tempdir().unwrap();
    small_db(temp.path());
    let dir = path_str(temp.path());
    let unknown = "42".repeat(64);
    for json in [false, true] {
        let mut args = vec!["history", dir, &unknown];
        if json {
            args.push("--json");
        }
        let out = peerlog(&args);
        assert_eq!(out.status.code(), Some(0));
        assert_eq!(stdout(&out), "", "stdout holds events only");
        assert_eq!(
            stderr(&out),
            format!("peerlog: note: no events about {unknown} in the live log or archive/\n")
        );
    }
    // An enode URL: the note says its endpoint is not a filter; the events are the id's.
    let url = format!("enode://{}@192.0.2.99:1234", "01".repeat(64));
    let out = peerlog(&["history", dir, &url]);
    assert!(out.status.success());
    assert_eq!(stdout(&out).lines().count(), 4, "every endpoint of node 1");
    assert_eq!(
        stderr(&out),
        "peerlog: note: listing every event about the node id of this enode URL; its \
         endpoint (192.0.2.99 udp 1234 tcp 1234) is not a filter\n"
    );
}

/// Issue: compaction laundered damage (verify said `intact` after `compact`), `compact` said
/// nothing about it, and archived damage could not be acknowledged.
#[test]
fn damage_survives_compaction_and_can_be_acknowledged() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    let names = segment_names(temp.path());
    let before: Value = serde_json::from_str(&run_ok(&["verify", dir, "--json"])).unwrap();
    let lost = format!(
        "lost sequence numbers {}..={}",
        before["files"][1]["first_seq"], before["files"][1]["last_seq"]
    );
    fs::remove_file(temp.path().join(&names[1])).unwrap();

    // compact names the damage on stdout, in --json, and the library's warning on stderr.
    let out = peerlog(&["compact", dir, "--json"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["problems"].as_array().unwrap().len(), 1, "{report}");
    assert_eq!(report["problems"][0]["kind"], "missing");
    assert_eq!(report["losses"][0]["acknowledged"], false, "{report}");
    assert!(
        stderr(&out).starts_with("peerlog: warning: ") && stderr(&out).contains(&lost),
        "{}",
        stderr(&out)
    );
    // Compacting again (twice) neither hides the loss nor finds it anew.
    for _ in 0..2 {
        let text = stdout(&peerlog(&["compact", dir, "--keep-history"]));
        assert!(!text.contains("DAMAGE found"), "{text}");
        assert!(
            text.contains("losses the log records: 1, 0 acknowledged"),
            "{text}"
        );
        assert!(text.contains(&lost), "{text}");
    }

    let out = peerlog(&["verify", dir]);
    assert_eq!(out.status.code(), Some(1), "{}", stdout(&out));
    let text = stdout(&out);
    assert!(
        text.lines()
            .any(|l| l.starts_with("DAMAGE: ") && l.contains(&lost) && l.contains("recorded")),
        "{text}"
    );
    assert!(text.ends_with("NOT intact\n"), "{text}");
    let stats = run_ok(&["stats", dir]);
    assert!(
        stats.contains("losses:    1 recorded, 0 acknowledged"),
        "{stats}"
    );
    let history = run_ok(&["history", dir, &id(60).to_string()]);
    assert!(
        history
            .lines()
            .any(|l| l.contains("DAMAGE: ") && l.contains(&lost)),
        "{history}"
    );
    let export = run_ok(&["export", dir, "--kind", "loss", "--format", "csv"]);
    assert_eq!(export.lines().count(), 2, "{export}");

    // Acknowledged: listed, not counted, exit 0; and it stays so after another compaction.
    let out = peerlog(&["verify", dir, "--accept"]);
    assert_eq!(out.status.code(), Some(0), "{}", stdout(&out));
    assert!(
        stdout(&out).starts_with("acknowledged now: "),
        "{}",
        stdout(&out)
    );
    run_ok(&["compact", dir]);
    let text = run_ok(&["verify", dir]);
    assert!(
        text.lines()
            .any(|l| l.starts_with("acknowledged: ") && l.contains(&lost)),
        "{text}"
    );
    assert!(text.ends_with("; intact\n"), "{text}");
    let report: Value = serde_json::from_str(&run_ok(&["verify", dir, "--json"])).unwrap();
    assert_eq!(report["intact"], true);
    assert_eq!(report["findings"][0]["acknowledged"], true, "{report}");
    let stats = run_ok(&["stats", dir]);
    assert!(
        stats.contains("losses:    1 recorded, 1 acknowledged"),
        "{stats}"
    );
}

// ---- Issue 10, item 3: a stray file locks nobody out. ----

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

// ---- Issue 10, item 2: a salvage path. ----

#[test]
fn salvage_moves_a_damaged_segment_aside_and_says_what_was_lost() {
    let temp = tempfile::tempdir().unwrap();
    multi_segment_db(temp.path()).close().unwrap();
    let dir = path_str(temp.path());
    let files: Value = serde_json::from_str(&run_ok(&["verify", dir, "--json"])).unwrap();
    let files = files["files"].as_array().unwrap().clone();
    let names = segment_names(temp.path());
    assert_eq!(names.len(), files.len());
    let last = temp.path().join(names.last().unwrap());
    let before_last = files[files.len() - 2]["last_seq"].as_u64().unwrap();
    let size = fs::metadata(&last).unwrap().len();
    flip_byte(&last, 20);

    // Every other command names the damage and the way out, on one line.
    let hint = format!(
        "peerlog: segment {} has a damaged header (header checksum mismatch); run `peerlog \
         salvage {dir}` to move it aside\n",
        last.display()
    );
    for args in [vec!["dump", dir], vec!["stats", dir], vec!["compact", dir]] {
        let out = peerlog(&args);
        assert_one_line_error(&out, "has a damaged header");
        assert_eq!(stderr(&out), hint, "{args:?}");
    }

    let text = run_ok(&["salvage", dir]);
    let moved_to = temp.path().join("damaged").join(names.last().unwrap());
    // The log goes on in a new segment, past anything the moved file could hold (its size
    // over the smallest frame, 32 bytes), so no sequence number or name is given twice.
    let resumed = segment_names(temp.path()).last().unwrap().clone();
    assert!(resumed > *names.last().unwrap(), "{resumed}");
    let next_seq = before_last + 1 + (size - 64) / 32;
    assert_eq!(
        text,
        format!(
            "moved {} to {} ({size} bytes: header checksum mismatch); sequence numbers after \
             {before_last} lost\nthe log goes on at sequence number {next_seq} in {}, past \
             anything the end of the log moved aside could hold; sequence numbers {}..={} count \
             as lost\nmoved 1 unreadable segment aside; the database opens with what the other \
             segments hold\n",
            last.display(),
            moved_to.display(),
            temp.path().join(&resumed).display(),
            before_last + 1,
            next_seq - 1,
        )
    );
    assert!(moved_to.is_file() && !last.exists());
    assert_eq!(
        run_ok(&["salvage", dir]),
        format!("nothing to salvage: every segment header in {dir} is readable; nothing changed\n")
    );
    assert!(!run_ok(&["dump", dir]).is_empty());
    let db = open(temp.path(), small_segments());
    assert!(db.node(&id(1)).is_some());
    db.update_node(&node(99, "10.9.9.9", 1, 1)).unwrap();

    // Beside a writer: refused, nothing moved.
    let middle = temp.path().join(&names[1]);
    fs::write(&middle, b"").unwrap();
    assert_one_line_error(&peerlog(&["salvage", dir]), "locked");
    assert!(middle.is_file());
    db.close().unwrap();

    // --json: an empty middle segment and the sequence numbers it held.
    let out = peerlog(&["salvage", dir, "--json"]);
    assert_eq!(out.status.code(), Some(0), "{}", stderr(&out));
    let report: Value = serde_json::from_str(&stdout(&out)).unwrap();
    assert_eq!(report["changed"], true);
    assert_eq!(
        report["moved"],
        serde_json::json!([{
            "file": middle.display().to_string(),
            "moved_to": temp.path().join("damaged").join(&names[1]).display().to_string(),
            "archived": false,
            "size": 0,
            "reason": "the file is empty",
            "holds_nothing": true,
            "lost": "range",
            "lost_first_seq": files[1]["first_seq"],
            // Up to the new segment after the salvage above: no readable segment is left
            // between the two files moved aside, so the gap is theirs together.
            "lost_last_seq": next_seq - 1,
        }])
    );
    assert_eq!(report["resumed"], Value::Null);
}

/// A directory that is not a database (a folder of 500 files, `/proc`) gets one line from
/// every command, saying there is no peerlog database there, not a warning per entry (issue
/// 19, item 8), and nothing in it changes.
#[test]
fn a_directory_that_is_not_a_database_gets_one_line() {
    let dir = tempfile::tempdir().unwrap();
    for i in 0..500 {
        fs::write(dir.path().join(format!("file{i}.txt")), b"not peerlog's").unwrap();
    }
    let before = snapshot(dir.path());
    let d = path_str(dir.path());
    let node = "11".repeat(64);
    let commands: Vec<Vec<&str>> = vec![
        vec!["stats", d],
        vec!["dump", d],
        vec!["verify", d],
        vec!["export", d],
        vec!["export", d, "--with-archive"],
        vec!["history", d, &node],
        vec!["compact", d],
        vec!["expire", d],
        vec!["salvage", d],
    ];
    for args in &commands {
        let out = peerlog(args);
        assert_one_line_error(&out, "no peerlog database here");
    }
    assert_eq!(snapshot(dir.path()), before, "the directory changed");
    if Path::new("/proc/self").is_dir() {
        assert_one_line_error(&peerlog(&["dump", "/proc"]), "no peerlog database here");
    }
}

/// Issue 19, item 10: `history` takes the `enr:` text `dump` prints (and says what is wrong
/// with a bad one, in one line), `demo --nodes 0` lists no kinds, `export --help` names
/// every kind `--kind` takes, `salvage` names DIR absolute.
#[test]
fn small_things_of_the_second_operator_round() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    let (id, record) = modern_db(&dir);
    let d = path_str(&dir);
    let by_id = run_ok(&["history", d, &id.to_string()]);
    assert!(!by_id.is_empty());
    assert_eq!(run_ok(&["history", d, &record.to_base64()]), by_id);
    assert_one_line_error(
        &peerlog(&["history", d, "enr:-not-a-record"]),
        "not a signed node record",
    );

    let empty = temp.path().join("empty");
    let out = run_ok(&["demo", path_str(&empty), "--nodes", "0"]);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("wrote 0 events over 7 simulated days in "),
        "{first}"
    );

    let help = stdout(&peerlog(&["export", "--help"]));
    for kind in peerlog::EventKind::ALL {
        assert!(
            help.contains(kind.name()),
            "export --help lacks {}: {help}",
            kind.name()
        );
    }

    let out = Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(["salvage", "db"])
        .current_dir(temp.path())
        .output()
        .unwrap();
    let text = stdout(&out);
    let absolute = temp.path().join("db");
    assert!(
        text.contains(&format!(" in {} is readable", absolute.display())),
        "{text}"
    );
}
