//! `peerlog dump`: the current state in text and JSON, signed records and liveness per IP (as
//! `history` and `export` print them too).

use serde_json::Value;

mod common;
use common::{json_lines, modern_db, path_str, run_ok, small_db, DUMP_JSON_KEYS};

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

/// `line` as serde_json writes it with the keys in the order of docs/CLI.md: each value
/// through serde_json, the objects of `ips` alike.
fn as_serde_json_writes_it(line: &str) -> String {
    const IP_KEYS: [&str; 4] = ["ip", "last_ping", "last_pong", "fails"];
    let object = |value: &Value, keys: &[&str], nested: &dyn Fn(&str, &Value) -> String| {
        let map = value.as_object().expect("an object");
        assert_eq!(map.len(), keys.len(), "{value}");
        let fields: Vec<String> = keys
            .iter()
            .map(|&key| format!("{}:{}", Value::from(key), nested(key, &map[key])))
            .collect();
        format!("{{{}}}", fields.join(","))
    };
    let plain = |_: &str, value: &Value| serde_json::to_string(value).unwrap();
    let value: Value = serde_json::from_str(line).unwrap();
    object(&value, &DUMP_JSON_KEYS, &|key, value| match key {
        "ips" => {
            let ips: Vec<String> = value
                .as_array()
                .expect("an array")
                .iter()
                .map(|ip| object(ip, &IP_KEYS, &plain))
                .collect();
            format!("[{}]", ips.join(","))
        }
        _ => plain(key, value),
    })
}

/// Every `dump --json` line is exactly what serde_json writes for its values, over nodes
/// with IPv4 and IPv6 endpoints (compressed and IPv4-mapped too), ports that differ, signed
/// records with and without IP, ids with only liveness, liveness per IP, times before 1970 and
/// with nanoseconds, in a log of several segments with a damaged record and a torn tail; and
/// the text and JSON dumps list the same nodes, in id order.
#[test]
fn dump_json_lines_are_what_serde_json_writes() {
    use common::{at, id, node, open, small_segments};
    use peerlog::enr::{CombinedKey, Enr};
    use std::time::{Duration, UNIX_EPOCH};

    let temp = tempfile::tempdir().unwrap();
    let dir = temp.path().join("db");
    let db = open(&dir, small_segments());
    let key = |n: u8| CombinedKey::secp256k1_from_bytes(&mut [n; 32]).unwrap();
    for n in 1..=40u8 {
        let ip = match n % 4 {
            0 => format!("10.0.{n}.1"),
            1 => format!("2001:db8::{n:x}"),
            2 => format!("2001:db8:{n:x}:0:1:0:0:{n:x}"),
            _ => format!("fe80::{n:x}:0:0:1"),
        };
        db.update_node(&node(n, &ip, 30303, 30300 + u16::from(n)))
            .unwrap();
        let t = at(u64::from(n) * 3_600) + Duration::from_nanos(u64::from(n % 3) * 7);
        db.update_last_ping(&id(n), t).unwrap();
        if n % 5 == 0 {
            db.update_last_pong(&id(n), UNIX_EPOCH - Duration::new(u64::from(n), 5))
                .unwrap();
            db.update_find_fails(&id(n), u32::from(n)).unwrap();
        }
        let mapped: std::net::IpAddr = format!("::ffff:192.0.2.{n}").parse().unwrap();
        db.update_last_pong_from(&id(n), mapped, t).unwrap();
        db.update_find_fails_at(&id(n), "2001:db8::1".parse().unwrap(), 1)
            .unwrap();
    }
    for n in 41..=50u8 {
        let mut builder = Enr::builder();
        builder.seq(u64::MAX - u64::from(n));
        match n % 3 {
            0 => builder.ip4([198, 51, 100, n].into()).udp4(9000).tcp4(9001),
            1 => builder
                .ip6(format!("2001:db8::{n:x}").parse().unwrap())
                .udp6(9000),
            _ => builder.udp4(9000),
        };
        db.update_record(&builder.build(&key(n)).unwrap()).unwrap();
    }
    for n in 51..=55u8 {
        db.update_last_ping(&id(n), at(u64::from(n))).unwrap(); // no record
    }
    // An IPv4-mapped endpoint stays IPv6 (liveness at such an IP is kept as IPv4).
    db.update_node(&node(56, "::ffff:192.0.2.200", 1, 2))
        .unwrap();
    db.close().unwrap();
    let segments = common::segment_names(&dir);
    assert!(segments.len() > 3, "{segments:?}");
    common::flip_byte(&dir.join(&segments[1]), 2_000);
    let mut last = std::fs::OpenOptions::new()
        .append(true)
        .open(dir.join(segments.last().unwrap()))
        .unwrap();
    std::io::Write::write_all(&mut last, &[0x5a; 37]).unwrap();
    drop(last);

    let dir = path_str(&dir);
    let verify = common::peerlog(&["verify", dir]);
    assert_eq!(verify.status.code(), Some(1), "the log is damaged");
    let json = run_ok(&["dump", dir, "--json", "--all"]);
    let lines: Vec<&str> = json.lines().collect();
    assert!(lines.len() > 40, "{json}");
    for line in &lines {
        assert_eq!(*line, as_serde_json_writes_it(line));
    }
    for needle in [
        "::ffff:192.0.2.",
        "fe80::",
        "\"enr\":\"enr:",
        "\"enode\":null",
        "T23:59:",
    ] {
        assert!(json.contains(needle), "{needle}: {json}");
    }
    let text = run_ok(&["dump", dir, "--all"]);
    let ids: Vec<String> = json_lines(&json)
        .iter()
        .map(|v| v["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(text.lines().count(), ids.len());
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}
