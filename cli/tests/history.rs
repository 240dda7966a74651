//! `peerlog history`: every event about a node with what it changed, archived ones included;
//! the node arguments it takes.

mod common;
use common::{
    archived_db, assert_one_line_error, json_lines, modern_db, path_str, peerlog, run_ok, small_db,
    stderr, stdout,
};

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

/// Issue 19, item 10: `history` takes the `enr:` text `dump` prints, and says what is wrong
/// with a bad one, in one line.
#[test]
fn history_takes_the_enr_text_dump_prints() {
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
}
