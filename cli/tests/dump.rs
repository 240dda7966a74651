//! `peerlog dump`: the current state in text and JSON, signed records and liveness per IP (as
//! `history` and `export` print them too).

use serde_json::Value;

mod common;
use common::{json_lines, modern_db, path_str, run_ok, small_db};

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
