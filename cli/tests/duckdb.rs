//! The exports load into DuckDB as docs/CLI.md says, and its documented queries run.

use std::collections::BTreeMap;
use std::fs;
use std::net::IpAddr;
use std::path::Path;
use std::process::Command;
use std::time::SystemTime;

use peerlog::{Node, NodeId, Options};
use serde_json::Value;

mod common;
use common::{
    json_lines, node, open, path_str, run_ok, say_skipped, segment_names, stderr, stdout, VERSION,
};

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
