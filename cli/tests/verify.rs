//! `peerlog verify`: damage printed with its file and offset, torn tails, lost segments, losses
//! a compaction recorded and their acknowledgement; exit status 1 for damage.

use std::fs;
use std::path::PathBuf;

use serde_json::Value;

mod common;
use common::{
    assert_one_line_error, flip_byte, id, json_lines, multi_segment_db, path_str, peerlog, run_ok,
    segment_names, stderr, stdout,
};

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

#[test]
fn verify_counts_the_evictions_of_a_full_store() {
    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    let db = common::open(
        &dir,
        peerlog::Options {
            max_nodes: 1,
            ..peerlog::Options::default()
        },
    );
    db.update_node(&common::node(1, "203.0.113.1", 1, 1))
        .unwrap();
    db.update_node(&common::node(2, "203.0.113.2", 1, 1))
        .unwrap();
    db.close().unwrap();
    let text = run_ok(&["verify", path_str(&dir)]);
    assert!(
        text.contains("evictions in the live log: 1 id and 0 IP slots (the store was full)"),
        "{text}"
    );
    let report: Value =
        serde_json::from_str(&run_ok(&["verify", path_str(&dir), "--json"])).unwrap();
    assert_eq!(
        (report["evicted"].as_u64(), report["ips_evicted"].as_u64()),
        (Some(1), Some(0))
    );
}
