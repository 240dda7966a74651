//! `peerlog salvage`: damaged segments moved aside, what was lost, DIR named absolute.

use std::fs;
use std::process::Command;

use serde_json::Value;

mod common;
use common::{
    assert_one_line_error, flip_byte, id, modern_db, multi_segment_db, node, open, path_str,
    peerlog, run_ok, segment_names, small_segments, stderr, stdout,
};

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

/// Issue 19, item 10: `salvage` names DIR absolute, as other commands do.
#[test]
fn salvage_names_the_directory_absolute() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    modern_db(&dir);
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
