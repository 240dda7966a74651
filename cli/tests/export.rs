//! `peerlog export`: rows equal to the events written, key order, filters, the archive.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::Options;
use serde_json::Value;

mod common;
use common::{
    archived_db, at, id, json_lines, modern_db, node, open, path_str, peerlog, run_ok, small_db,
    stdout, DUMP_JSON_KEYS,
};

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
    let line = run_ok(&["dump", dir, "--json"]);
    assert_eq!(key_order(&line, &DUMP_JSON_KEYS), DUMP_JSON_KEYS, "{line}");
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

/// Issue 19, item 10: `export --help` names every kind `--kind` takes.
#[test]
fn export_help_names_every_kind() {
    let help = stdout(&peerlog(&["export", "--help"]));
    for kind in peerlog::EventKind::ALL {
        assert!(
            help.contains(kind.name()),
            "export --help lacks {}: {help}",
            kind.name()
        );
    }
}
