//! `peerlog import` and `peerlog seeds`: the peer files reth and kona keep, ENR and enode
//! lists, in and out, with files shaped as those clients write them.

use std::collections::{BTreeMap, BTreeSet};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::enr::{CombinedKey, Enr};
use peerlog::{inspect, Node, NodeDb, NodeId};

fn peerlog(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerlog"))
        .args(args)
        .output()
        .expect("running peerlog")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8(bytes.to_vec()).expect("utf-8")
}

fn run_ok(args: &[&str]) -> String {
    let out = peerlog(args);
    assert!(
        out.status.success(),
        "peerlog {args:?} failed: {}",
        text(&out.stderr)
    );
    text(&out.stdout)
}

fn s(p: &Path) -> &str {
    p.to_str().expect("utf-8 temp path")
}

fn key(n: u8) -> CombinedKey {
    CombinedKey::secp256k1_from_bytes(&mut [n; 32]).unwrap()
}

/// A signed record of node `n` at 10.0.0.n, with an opstack key for odd `n`; the same one
/// at every call (signing is randomized).
fn record(n: u8, seq: u64) -> Enr<CombinedKey> {
    static MADE: Mutex<BTreeMap<(u8, u64), Enr<CombinedKey>>> = Mutex::new(BTreeMap::new());
    let mut made = MADE.lock().unwrap();
    made.entry((n, seq)).or_insert_with(|| sign(n, seq)).clone()
}

fn sign(n: u8, seq: u64) -> Enr<CombinedKey> {
    let mut builder = Enr::builder();
    builder
        .ip4([10, 0, 0, n].into())
        .udp4(30303)
        .tcp4(30304)
        .seq(seq);
    if n % 2 == 1 {
        builder.add_value("opstack", &[1u8, 2, 3].as_slice());
    }
    builder.build(&key(n)).unwrap()
}

fn enode(n: u8, end: &str) -> Node {
    format!("enode://{}@{end}", format!("{n:02x}").repeat(64))
        .parse()
        .unwrap()
}

/// Byte for byte what reth's `write_peers_to_file` writes: `serde_json::to_writer_pretty` of
/// the enode URLs (`NodeRecord`'s Display), no newline at the end.
fn reth_file(nodes: &[Node]) -> String {
    let urls: Vec<String> = nodes.iter().map(Node::to_string).collect();
    serde_json::to_string_pretty(&urls).unwrap()
}

/// Byte for byte what kona's `BootStore::sync` writes: `serde_json::to_writer` of the ENRs
/// (`enr:` + base64), no newline at the end.
fn kona_file(records: &[String]) -> String {
    serde_json::to_string(records).unwrap()
}

fn write(dir: &Path, name: &str, content: &str) -> PathBuf {
    let path = dir.join(name);
    fs::write(&path, content).unwrap();
    path
}

/// id -> (endpoint, signed record text), as `dump --json` shows the database.
fn nodes_in(db: &Path) -> BTreeMap<String, (String, Option<String>)> {
    run_ok(&["dump", s(db), "--json"])
        .lines()
        .map(|line| {
            let v: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                v["id"].as_str().unwrap().to_string(),
                (
                    v["enode"].as_str().unwrap().to_string(),
                    v["enr"].as_str().map(str::to_string),
                ),
            )
        })
        .collect()
}

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

fn history_kinds(db: &Path, id: &NodeId) -> Vec<String> {
    run_ok(&["history", s(db), &id.to_string(), "--json"])
        .lines()
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["kind"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn a_reth_known_peers_file_imports_every_node_with_no_pong() {
    let tmp = tempfile::tempdir().unwrap();
    let nodes = [
        enode(1, "203.0.113.7:30303"),
        enode(2, "[2001:db8::1]:30303?discport=30301"),
        enode(3, "198.51.100.9:30303?discport=30301"),
    ];
    let file = write(tmp.path(), "known-peers.json", &reth_file(&nodes));
    assert!(text(&fs::read(&file).unwrap()).starts_with("[\n  \"enode://0101"));
    let db = tmp.path().join("db");
    let out = run_ok(&["import", s(&db), s(&file), "--format", "reth"]);
    assert!(out.contains("3 new"), "{out}");
    assert!(out.contains("no pongs written"), "{out}");

    let found = nodes_in(&db);
    let expected: BTreeMap<_, _> = nodes
        .iter()
        .map(|n| (n.id.to_string(), (n.to_string(), None)))
        .collect();
    assert_eq!(found, expected);
    // A new database gets protocol version 9, as demo.
    let versions: BTreeSet<u64> = inspect::segments(&db)
        .unwrap()
        .iter()
        .map(|s| s.protocol_version)
        .collect();
    assert_eq!(versions, BTreeSet::from([9]));
    // The import is each node's record event; no pong, so no seed.
    assert_eq!(history_kinds(&db, &nodes[0].id), ["node"]);
    let seeds = peerlog(&["seeds", s(&db), "--format", "enode"]);
    assert!(seeds.status.success());
    assert_eq!(text(&seeds.stdout), "");
    assert!(text(&seeds.stderr).contains("no seeds"));
}

#[test]
fn a_kona_bootstore_imports_records_and_reports_bad_entries_by_position() {
    let tmp = tempfile::tempdir().unwrap();
    let mut entries: Vec<String> = (1..=4).map(|n| record(n, 2).to_base64()).collect();
    // A record with a broken signature, and one that is not base64.
    let mut forged = record(5, 1).to_base64();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    entries.insert(1, forged);
    entries.push("enr:not-a-record".to_string());
    let file = write(tmp.path(), "bootstore.json", &kona_file(&entries));
    let db = tmp.path().join("db");
    let out = peerlog(&[
        "import",
        s(&db),
        s(&file),
        "--format",
        "kona",
        "--protocol-version",
        "7",
    ]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stderr));
    let err = text(&out.stderr);
    assert_eq!(err.lines().count(), 2, "{err}");
    assert!(
        err.contains("entry 2:") && err.contains("entry 6:"),
        "{err}"
    );
    assert!(text(&out.stdout).contains("4 new"));

    let found = nodes_in(&db);
    assert_eq!(found.len(), 4);
    for n in 1..=4 {
        let r = record(n, 2);
        let id = NodeId::from_enr(&r).unwrap();
        assert_eq!(found[&id.to_string()].1.as_deref(), Some(&*r.to_base64()));
        assert_eq!(history_kinds(&db, &id), ["record"]);
    }
    assert_eq!(inspect::segments(&db).unwrap()[0].protocol_version, 7);

    // Again: nothing new; an older record is kept out, a newer one replaces.
    let again = [record(1, 2), record(2, 1), record(3, 3)].map(|r| r.to_base64());
    let file = write(tmp.path(), "again.json", &kona_file(&again));
    let out = run_ok(&["import", s(&db), s(&file), "--format", "kona"]);
    assert!(
        out.contains("0 new, 1 updated, 1 unchanged, 1 older"),
        "{out}"
    );
}

#[test]
fn enr_and_enode_lists_allow_comments_and_blank_lines() {
    let tmp = tempfile::tempdir().unwrap();
    let enrs = format!(
        "# boot nodes\n\n{}  # first\n   \n{}\n",
        record(1, 1).to_base64(),
        record(2, 1).to_base64()
    );
    let enodes = format!(
        "# discv4\n{}\n\n{} # v6\n",
        enode(3, "192.0.2.1:30303"),
        enode(4, "[2001:db8::4]:30303?discport=30304")
    );
    let db = tmp.path().join("db");
    let enr_file = write(tmp.path(), "boot.enr", &enrs);
    let enode_file = write(tmp.path(), "boot.enode", &enodes);
    run_ok(&["import", s(&db), s(&enr_file), "--format", "enr"]);
    run_ok(&["import", s(&db), s(&enode_file), "--format", "enode"]);
    let found = nodes_in(&db);
    assert_eq!(found.len(), 4);
    assert!(found.contains_key(&enode(4, "[::1]:1").id.to_string()));

    // An enode URL with a bad line in the middle: the line is named, the rest imported.
    let bad = format!("{}\nenode://zz@1.2.3.4:1\n", enode(5, "192.0.2.5:1"));
    let file = write(tmp.path(), "bad.enode", &bad);
    let out = peerlog(&["import", s(&db), s(&file), "--format", "enode"]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("line 2:"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(nodes_in(&db).len(), 5);
}

#[test]
fn a_file_cut_off_mid_write_is_refused_and_nothing_is_imported() {
    let tmp = tempfile::tempdir().unwrap();
    let reth = reth_file(&[enode(1, "203.0.113.7:30303"), enode(2, "203.0.113.8:30303")]);
    let kona = kona_file(&[record(1, 1).to_base64(), record(2, 1).to_base64()]);
    let list = format!(
        "{}\n{}\n",
        record(1, 1).to_base64(),
        record(2, 1).to_base64()
    );
    let db = tmp.path().join("db");
    // An existing database, which must stay byte for byte as it is.
    let seeded = write(
        tmp.path(),
        "one.enr",
        &format!("{}\n", record(9, 1).to_base64()),
    );
    run_ok(&["import", s(&db), s(&seeded), "--format", "enr"]);
    let before = snapshot(&db);
    for (format, whole) in [("reth", &reth), ("kona", &kona), ("enr", &list)] {
        // Cut off mid-write: truncated first and then written part way (kona, reth), or an
        // empty file (stopped right after the truncation).
        for cut in [0, whole.len() / 3, whole.len() / 2 - 3, whole.len() - 5] {
            let file = write(tmp.path(), "cut", &whole[..cut]);
            for target in [&db, &tmp.path().join(format!("new-{format}-{cut}"))] {
                let out = peerlog(&["import", s(target), s(&file), "--format", format]);
                let err = text(&out.stderr);
                assert_eq!(out.status.code(), Some(2), "{format} cut at {cut}: {err}");
                assert_eq!(err.lines().count(), 1, "{err}");
                assert!(
                    err.contains("cut off") && err.contains("cut ("),
                    "{format} at {cut}: {err}"
                );
                if target != &db {
                    assert!(!target.exists(), "no database created for a cut-off file");
                }
            }
        }
        // Zeros after the cut (a file system that kept the size but not the data).
        let mut zeroed = whole.as_bytes()[..whole.len() / 2].to_vec();
        zeroed.resize(whole.len(), 0);
        let file = tmp.path().join("zeroed");
        fs::write(&file, zeroed).unwrap();
        let out = peerlog(&["import", s(&db), s(&file), "--format", format]);
        assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));
    }
    assert_eq!(snapshot(&db), before, "the database is unchanged");
}

#[test]
fn a_protocol_version_other_than_the_databases_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    let file = write(
        tmp.path(),
        "a.enode",
        &format!("{}\n", enode(1, "192.0.2.1:1")),
    );
    run_ok(&[
        "import",
        s(&db),
        s(&file),
        "--format",
        "enode",
        "--protocol-version",
        "5",
    ]);
    let before = snapshot(&db);
    let out = peerlog(&[
        "import",
        s(&db),
        s(&file),
        "--format",
        "enode",
        "--protocol-version",
        "6",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("protocol version 5, not 6"));
    assert_eq!(snapshot(&db), before);
    // Without --protocol-version, the database's own.
    run_ok(&["import", s(&db), s(&file), "--format", "enode"]);
    assert_eq!(inspect::segments(&db).unwrap()[0].protocol_version, 5);
}

#[test]
fn pong_at_a_time_or_the_files_mtime_makes_imported_peers_seeds() {
    let tmp = tempfile::tempdir().unwrap();
    let file = write(
        tmp.path(),
        "boot.enr",
        &format!(
            "{}\n{}\n",
            record(1, 1).to_base64(),
            record(2, 1).to_base64()
        ),
    );
    let db = tmp.path().join("db");
    run_ok(&[
        "import",
        s(&db),
        s(&file),
        "--format",
        "enr",
        "--pong-at",
        "2h",
    ]);
    let ids = [1, 2].map(|n| NodeId::from_enr(&record(n, 1)).unwrap());
    {
        let state = inspect::state(&db, &inspect::no_progress).unwrap();
        for peer in &state.peers {
            let pong = peer.ips[0].last_pong.unwrap();
            let age = SystemTime::now().duration_since(pong).unwrap();
            assert!(age >= Duration::from_secs(7190) && age < Duration::from_secs(7300));
        }
    }
    assert_eq!(history_kinds(&db, &ids[0]), ["record", "pong_from"]);
    let seeds = run_ok(&["seeds", s(&db), "--max-age", "3h"]);
    assert_eq!(seeds.lines().count(), 2);
    assert_eq!(run_ok(&["seeds", s(&db), "--max-age", "1h"]), "");

    // The file's modification time; an older pong never replaces a newer one.
    let mtime = UNIX_EPOCH
        + Duration::from_secs(
            SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs()
                - 600,
        );
    fs::File::options()
        .write(true)
        .open(&file)
        .unwrap()
        .set_modified(mtime)
        .unwrap();
    let db2 = tmp.path().join("db2");
    run_ok(&[
        "import",
        s(&db2),
        s(&file),
        "--format",
        "enr",
        "--pong-at",
        "mtime",
    ]);
    let state = inspect::state(&db2, &inspect::no_progress).unwrap();
    assert!(state
        .peers
        .iter()
        .all(|p| p.ips[0].last_pong == Some(mtime)));
    let out = run_ok(&[
        "import",
        s(&db2),
        s(&file),
        "--format",
        "enr",
        "--pong-at",
        "2h",
    ]);
    assert!(out.contains("0 pongs"), "{out}");

    let out = peerlog(&[
        "import",
        s(&db2),
        s(&file),
        "--format",
        "enr",
        "--pong-at",
        "2100-01-01",
    ]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("future"),
        "{}",
        text(&out.stderr)
    );
}

/// A database with signed records (nodes 1..=6, fresh pongs at their record's IP), unsigned
/// endpoints (nodes 11..=13, fresh per-id pongs), and a stale node 20.
fn seeded_db(dir: &Path) {
    let db = NodeDb::open(dir, 5, NodeId([0; 64])).unwrap();
    let now = SystemTime::now();
    for n in 1..=6 {
        let r = record(n, 3);
        db.update_record(&r).unwrap();
        let id = NodeId::from_enr(&r).unwrap();
        db.update_last_pong_from(&id, [10, 0, 0, n].into(), now)
            .unwrap();
    }
    for (n, end) in [
        (11, "192.0.2.11:30303"),
        (12, "[2001:db8::12]:30303?discport=30301"),
        (13, "192.0.2.13:30303?discport=40404"),
    ] {
        let node = enode(n, end);
        db.update_node(&node).unwrap();
        db.update_last_pong(&node.id, now).unwrap();
    }
    let stale = enode(20, "192.0.2.20:30303");
    db.update_node(&stale).unwrap();
    db.update_last_pong(&stale.id, now - Duration::from_secs(30 * 86_400))
        .unwrap();
    db.close().unwrap();
}

#[test]
fn seeds_written_in_each_format_import_again_as_the_same_nodes() {
    let tmp = tempfile::tempdir().unwrap();
    let source = tmp.path().join("source");
    seeded_db(&source);
    let all = nodes_in(&source);
    let signed: BTreeMap<_, _> = all
        .iter()
        .filter(|(_, (_, enr))| enr.is_some())
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let fresh: BTreeMap<_, _> = all
        .iter()
        .filter(|(id, _)| *id != &enode(20, "1.1.1.1:1").id.to_string())
        .map(|(k, (enode, _))| (k.clone(), (enode.clone(), None)))
        .collect();
    assert_eq!((signed.len(), fresh.len()), (6, 9));

    for format in ["enr", "kona", "enode", "reth"] {
        let file = tmp.path().join(format!("seeds.{format}"));
        let written = run_ok(&[
            "seeds",
            s(&source),
            "-n",
            "100",
            "--per-subnet",
            "max",
            "--format",
            format,
        ]);
        match format {
            "kona" => assert!(written.starts_with("[\"enr:") && !written.ends_with('\n')),
            "reth" => assert!(written.starts_with("[\n  \"enode://") && written.ends_with("\"\n]")),
            _ => assert!(written.ends_with('\n')),
        }
        fs::write(&file, &written).unwrap();
        let db = tmp.path().join(format!("db-{format}"));
        run_ok(&[
            "import",
            s(&db),
            s(&file),
            "--format",
            format,
            "--pong-at",
            "1m",
        ]);
        let expected = if format == "enr" || format == "kona" {
            &signed
        } else {
            &fresh
        };
        assert_eq!(&nodes_in(&db), expected, "{format}");
        // And out again: the same seeds.
        let again = run_ok(&[
            "seeds",
            s(&db),
            "-n",
            "100",
            "--per-subnet",
            "max",
            "--format",
            format,
        ]);
        let sorted = |t: &str| -> BTreeSet<String> {
            t.split(['\n', '[', ']', ',', '"', ' '])
                .filter(|w| !w.is_empty())
                .map(str::to_string)
                .collect()
        };
        assert_eq!(sorted(&again), sorted(&written), "{format}");
    }
}

#[test]
fn seeds_takes_n_max_age_key_and_json() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    seeded_db(&db);
    assert_eq!(run_ok(&["seeds", s(&db), "-n", "2"]).lines().count(), 2);
    assert_eq!(
        run_ok(&[
            "seeds",
            s(&db),
            "--count",
            "100",
            "--per-subnet",
            "max",
            "--format",
            "enode"
        ])
        .lines()
        .count(),
        9
    );
    assert_eq!(
        run_ok(&[
            "seeds",
            s(&db),
            "--max-age",
            "60d",
            "--per-subnet",
            "max",
            "--format",
            "enode"
        ])
        .lines()
        .count(),
        10
    );
    // Only records holding "opstack": nodes 1, 3 and 5.
    let opstack: BTreeSet<String> =
        run_ok(&["seeds", s(&db), "--key", "opstack", "--per-subnet", "max"])
            .lines()
            .map(str::to_string)
            .collect();
    let expected: BTreeSet<String> = [1, 3, 5].map(|n| record(n, 3).to_base64()).into();
    assert_eq!(opstack, expected);
    let lines: Vec<serde_json::Value> = run_ok(&[
        "seeds",
        s(&db),
        "--json",
        "-n",
        "100",
        "--per-subnet",
        "max",
    ])
    .lines()
    .map(|l| serde_json::from_str(l).unwrap())
    .collect();
    assert_eq!(lines.len(), 9);
    assert_eq!(lines.iter().filter(|v| v["enr"].is_string()).count(), 6);
    let first = lines[0].as_object().unwrap();
    let keys: Vec<&str> = first.keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 7);
    // The local node is never a seed.
    let me = NodeId::from_enr(&record(1, 3)).unwrap().to_string();
    let out = run_ok(&[
        "seeds",
        s(&db),
        "-n",
        "100",
        "--per-subnet",
        "max",
        "--self",
        &me,
    ]);
    assert_eq!(out.lines().count(), 5);
    let out = peerlog(&["seeds", s(&db), "--json", "--format", "reth"]);
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn seeds_spread_over_subnets_with_per_subnet_and_subnet_bits() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("db");
    seeded_db(&db);
    let count = |args: &[&str]| {
        let mut all = vec!["seeds", s(&db), "-n", "100"];
        all.extend_from_slice(args);
        run_ok(&all).lines().count()
    };
    // The six signed records share 10.0.0.0/24: two by default.
    assert_eq!(count(&[]), 2);
    assert_eq!(count(&["--per-subnet", "4"]), 4);
    assert_eq!(count(&["--subnet-bits", "32,128"]), 6);
    assert_eq!(count(&["--per-subnet", "1", "--subnet-bits", "0,0"]), 1);
    // Endpoints: 10.0.0.0/24 (six), 192.0.2.0/24 (two fresh), 2001:db8::/48 (one).
    assert_eq!(count(&["--format", "enode"]), 5);
    assert_eq!(count(&["--format", "enode", "--per-subnet", "1"]), 3);
    assert_eq!(count(&["--format", "enode", "--subnet-bits", "16,48"]), 5);
    assert_eq!(count(&["--format", "enode", "--subnet-bits", "0,48"]), 3);
    for bad in [
        ["--per-subnet", "two"],
        ["--subnet-bits", "33,48"],
        ["--subnet-bits", "24"],
    ] {
        let mut args = vec!["seeds", s(&db)];
        args.extend_from_slice(&bad);
        let out = peerlog(&args);
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
        assert!(text(&out.stderr).contains(bad[1]), "{}", text(&out.stderr));
    }
}
