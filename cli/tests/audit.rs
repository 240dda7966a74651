//! `peerlog audit`: a planted Sybil subnet and a planted cluster of ids ground close to the
//! node are flagged, a random population of the same size is not, in text and JSON; the
//! sample in docs/CLI.md is the output on the planted database, as written.

use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::process::{Command, Output};
use std::time::SystemTime;

use peerlog::{log_distance, Node, NodeDb, NodeId};
use serde_json::Value;

const VERSION: u64 = 5;

fn peerlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(args)
        .output()
        .expect("running peerlog")
}

fn run_ok(args: &[&str]) -> String {
    let out = peerlog(args);
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "peerlog {args:?} failed: {err}");
    assert_eq!(err, "", "no noise on stderr when it is not a terminal");
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// A deterministic id from `n` (splitmix64 output: as good as random here).
fn random_id(n: u64) -> NodeId {
    let mut state = n.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ 0x5eed;
    let mut id = [0u8; 64];
    for chunk in id.chunks_mut(8) {
        state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        chunk.copy_from_slice(&(z ^ (z >> 31)).to_be_bytes());
    }
    NodeId(id)
}

/// The node's own id in the sample: `11` 64 times.
fn self_id() -> NodeId {
    NodeId([0x11; 64])
}

/// A /24 of its own for honest node `i`.
fn honest_ip(i: usize) -> IpAddr {
    format!("{}.{}.{}.9", 20 + i / 250, i % 250, (i * 7) % 250)
        .parse()
        .unwrap()
}

/// 300 nodes with a pong now: honest ones on a /24 each, then `sybils` on 203.0.113.0/24
/// and `close` ids ground to log distance 246 or less from the node, each on a /24 of its own.
fn planted_db(dir: &Path, sybils: usize, close: usize) {
    let target = self_id().hash();
    let ground = (1_000_000..)
        .map(random_id)
        .filter(|id| log_distance(&target, &id.hash()) <= 246)
        .take(close)
        .enumerate()
        .map(|(k, id)| (id, format!("100.64.{k}.1").parse().unwrap()));
    let sybil = (0..sybils).map(|k| {
        let ip = format!("203.0.113.{}", k + 1).parse().unwrap();
        (random_id(500_000 + k as u64), ip)
    });
    let honest = (0..300 - sybils - close).map(|i| (random_id(i as u64), honest_ip(i)));
    let db = NodeDb::open(dir, VERSION, self_id()).unwrap();
    let now = SystemTime::now();
    for (id, ip) in honest.chain(sybil).chain(ground) {
        db.update_node(&Node::new(id, ip, 30303, 30303)).unwrap();
        db.update_last_pong(&id, now).unwrap();
    }
    db.close().unwrap();
}

fn audit(dir: &Path, extra: &[&str]) -> String {
    let self_hex = self_id().to_string();
    let mut args = vec!["audit", dir.to_str().unwrap(), "--self-id", &self_hex];
    args.extend_from_slice(extra);
    run_ok(&args)
}

fn flagged(text: &str) -> Vec<&str> {
    text.lines()
        .filter_map(|l| l.trim().strip_prefix("FLAGGED: "))
        .collect()
}

#[test]
fn a_random_population_is_not_flagged() {
    let dir = tempfile::tempdir().unwrap();
    planted_db(dir.path(), 0, 0);
    let text = audit(dir.path(), &[]);
    assert!(text.contains("\nverdict: nothing flagged\n"), "{text}");
    assert_eq!(flagged(&text), Vec::<&str>::new());
    let json: Value = serde_json::from_str(&audit(dir.path(), &["--json"])).unwrap();
    assert_eq!(json["findings"], Value::Array(vec![]));
    assert_eq!(json["ids"], 300);
    assert_eq!(json["fresh"], 300);
    assert_eq!(json["distances"]["ids"], 300);
}

#[test]
fn a_sybil_subnet_is_flagged_in_text_and_json() {
    let dir = tempfile::tempdir().unwrap();
    planted_db(dir.path(), 60, 0);
    let text = audit(dir.path(), &[]);
    let lines = flagged(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("203.0.113.0/24 holds 20 % of fresh nodes (60 of 300)")),
        "{text}"
    );
    assert!(
        lines.iter().all(|l| l.starts_with("203.0.113.0/24")),
        "{text}"
    );
    // The subnet heads both rankings, with a bar of 20 % of the seeds for query_seeds.
    let row = text
        .lines()
        .find(|l| l.trim_start().starts_with("203.0.113.0/24") && l.contains("query_seeds"))
        .unwrap();
    assert!(row.contains("query_seeds   20 % ####  "), "{row}");
    let json: Value = serde_json::from_str(&audit(dir.path(), &["--json"])).unwrap();
    let top = &json["top_by_fresh"][0];
    assert_eq!(top["subnet"], "203.0.113.0/24");
    assert_eq!(top["fresh"], 60);
    assert!((top["query_seeds_share"].as_f64().unwrap() - 0.2).abs() < 1e-9);
    assert!(top["seeds_share"].as_f64().unwrap() < 0.01);
    let kinds: Vec<&str> = json["findings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["subnet_fresh", "subnet_nodes", "subnet_new_ids"]);
}

#[test]
fn a_close_id_cluster_is_flagged_and_skipped_without_a_self_id() {
    let dir = tempfile::tempdir().unwrap();
    planted_db(dir.path(), 0, 10);
    let text = audit(dir.path(), &[]);
    let lines = flagged(&text);
    assert!(
        lines
            .iter()
            .any(|l| l.contains("ids within log distance") && l.contains("ground close")),
        "{text}"
    );
    let json: Value = serde_json::from_str(&audit(dir.path(), &["--json"])).unwrap();
    assert!(json["distances"]["flagged_within"]["ids"].as_u64().unwrap() >= 10);

    let dir_arg = dir.path().to_str().unwrap();
    let text = run_ok(&["audit", dir_arg]);
    assert!(text.contains("log distances: skipped"), "{text}");
    assert!(text.contains("verdict: nothing flagged"), "{text}");
    let json: Value = serde_json::from_str(&run_ok(&["audit", dir_arg, "--json"])).unwrap();
    assert_eq!(json["distances"], Value::Null);
}

#[test]
fn a_full_store_is_flagged_against_max_nodes_and_bad_arguments_are_one_line() {
    let dir = tempfile::tempdir().unwrap();
    planted_db(dir.path(), 0, 0);
    let text = audit(dir.path(), &["--max-nodes", "310"]);
    assert!(
        flagged(&text)
            .iter()
            .any(|l| l.starts_with("the store holds 300 ids, 97 % of max_nodes 310")),
        "{text}"
    );
    let dir_arg = dir.path().to_str().unwrap();
    for args in [
        vec!["audit", dir_arg, "--self-id", "xyz"],
        vec!["audit", dir_arg, "--max-nodes", "0"],
        vec!["audit", "/nonexistent/peerlog-audit"],
    ] {
        let out = peerlog(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.starts_with("peerlog: "), "{err}");
    }
    assert!(run_ok(&["audit", "--help"]).contains("Example: peerlog audit"));
}

/// The block of docs/CLI.md after the line running `audit` on the planted database.
fn documented_sample() -> String {
    let doc = fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/CLI.md")).unwrap();
    let start = doc
        .find("$ peerlog audit /tmp/planted")
        .expect("docs/CLI.md shows peerlog audit on /tmp/planted");
    let after = &doc[start..];
    let body = &after[after.find('\n').unwrap() + 1..];
    body[..body.find("```").unwrap()].to_string()
}

#[test]
fn the_documented_sample_is_the_output_on_the_planted_database() {
    let dir = tempfile::tempdir().unwrap();
    planted_db(dir.path(), 40, 10);
    let text = audit(dir.path(), &[]);
    let sample = documented_sample();
    assert_eq!(
        sample, text,
        "docs/CLI.md's audit sample differs from the output:\n{text}"
    );
}
