//! `peerlog demo`: a realistic database, and no half-written one on bad input.

use std::fs;
use std::process::Command;

use peerlog::NodeId;
use serde_json::Value;

mod common;
use common::{assert_one_line_error, json_lines, path_str, peerlog, run_ok, stderr, U64_MAX};

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

/// Issue 19, item 10: `demo --nodes 0` lists no kinds.
#[test]
fn demo_of_no_nodes_lists_no_kinds() {
    let temp = tempfile::tempdir().unwrap();
    let empty = temp.path().join("empty");
    let out = run_ok(&["demo", path_str(&empty), "--nodes", "0"]);
    let first = out.lines().next().unwrap();
    assert!(
        first.starts_with("wrote 0 events over 7 simulated days in "),
        "{first}"
    );
}
