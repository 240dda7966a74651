//! Runs the fuzz targets' checks without a fuzzer: every committed seed of
//! `fuzz/corpus/<target>/` and every file of `fuzz/artifacts/<target>/` (crashes found by the
//! fuzzer and kept as regression files) goes through the same `peerlog_checks::check_*`
//! function the target calls.
//!
//! Files libFuzzer adds to a corpus while it runs are not committed; set
//! `PEERLOG_FUZZ_CORPUS_ALL=1` to replay those too. The seeds themselves are written by
//! `cargo test -p peerlog-checks --test fuzz_corpus -- --ignored write_seed_corpus`, except the format-1
//! `open_segment` seeds (`seed-log`, `seed-compacted`, ...), which peerlog 0.1.0 wrote and
//! the current writer (format 2) cannot write again: they stay as committed.

use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

mod common;
use common::{record_id, record_ip4, signed_record_with, RecordShape};
use peerlog::{Node, NodeDb, NodeId, Options};
use peerlog_checks::{
    self as checks, FIX_HEADER_CRC, FIX_RECORD_CRC, FIX_SNAPSHOT_CRC, OTHER_VERSION, TARGETS,
    XOR_TEMPLATE,
};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../fuzz")
}

fn files_of(dir: &Path, keep: impl Fn(&str) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .filter(|p| keep(&p.file_name().unwrap().to_string_lossy()))
        .collect();
    files.sort();
    files
}

/// Runs `target`'s check on each file and fails with the list of files that panicked.
fn replay(target: &str, files: &[PathBuf]) {
    let mut failures = Vec::new();
    for file in files {
        let data = fs::read(file).unwrap();
        if let Err(panic) = catch_unwind(AssertUnwindSafe(|| checks::check(target, &data))) {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            failures.push(format!("{}: {message}", file.display()));
        }
    }
    assert!(
        failures.is_empty(),
        "{target}: {} of {} files fail:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

fn corpus_and_artifacts(target: &str) -> Vec<PathBuf> {
    let all = std::env::var_os("PEERLOG_FUZZ_CORPUS_ALL").is_some();
    let mut files = files_of(&fuzz_dir().join("corpus").join(target), |name| {
        all || name.starts_with("seed-")
    });
    files.extend(files_of(&fuzz_dir().join("artifacts").join(target), |_| {
        true
    }));
    files
}

#[test]
fn every_target_has_a_seed_corpus() {
    for target in TARGETS {
        let seeds = files_of(&fuzz_dir().join("corpus").join(target), |name| {
            name.starts_with("seed-")
        });
        assert!(seeds.len() >= 4, "{target} has {} seeds", seeds.len());
    }
}

#[test]
fn open_segment_corpus() {
    replay("open_segment", &corpus_and_artifacts("open_segment"));
}

#[test]
fn open_snapshot_corpus() {
    replay("open_snapshot", &corpus_and_artifacts("open_snapshot"));
}

#[test]
fn ops_model_corpus() {
    replay("ops_model", &corpus_and_artifacts("ops_model"));
}

#[test]
fn node_rlp_corpus() {
    replay("node_rlp", &corpus_and_artifacts("node_rlp"));
}

#[test]
fn enode_url_corpus() {
    replay("enode_url", &corpus_and_artifacts("enode_url"));
}

// ---------------------------------------------------------------------------------------------
// Seed generation: real files the project writes.

fn id(byte: u8) -> NodeId {
    NodeId([byte; 64])
}

fn sample_nodes() -> Vec<Node> {
    vec![
        Node::new(
            id(0x22),
            IpAddr::V4(Ipv4Addr::new(203, 0, 113, 7)),
            30303,
            30303,
        ),
        Node::new(
            id(0x33),
            IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1)),
            30301,
            30303,
        ),
        Node::new(id(0x44), IpAddr::V6(Ipv6Addr::LOCALHOST), 0, 65535),
        Node::new(
            id(0x55),
            IpAddr::V6("2001:db8::ff00:42:8329".parse().unwrap()),
            127,
            128,
        ),
        Node::new(id(0x66), IpAddr::V4(Ipv4Addr::UNSPECIFIED), 1, 256),
    ]
}

fn past() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(1_000_000_000)
}

fn future() -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(4_102_444_800)
}

fn small_segments() -> Options {
    Options {
        segment_size: 4096,
        ..Options::default()
    }
}

/// The IPs a sample node is pinged at: its own, its own IPv4-mapped (for an IPv4 node), an
/// IPv6 one.
fn per_ip(node: &Node) -> [IpAddr; 3] {
    let mapped = match node.ip {
        IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
        v6 => v6,
    };
    let v6 = IpAddr::V6(Ipv6Addr::new(
        0x2001,
        0xdb8,
        7,
        0,
        0,
        0,
        0,
        node.id.0[0].into(),
    ));
    [node.ip, mapped, v6]
}

/// A format-2 log with every event kind (unsigned and signed records of every shape, the
/// longest one included, per-IP pings, pongs and fails from IPv4, mapped and IPv6 addresses,
/// the local seq, expiry of nodes and of IP slots) over several 4 KiB segments, as peerlog
/// writes it; kept under the 16 KiB the campaigns give an input.
fn write_log(dir: &Path, compact: bool) {
    let me = id(0x11);
    let db = NodeDb::open_with(dir, 1, me, small_segments()).unwrap();
    let shapes = [
        RecordShape::V4,
        RecordShape::V6,
        RecordShape::Both,
        RecordShape::NoIp,
    ];
    for round in 0..2u32 {
        for node in sample_nodes() {
            db.update_node(&node).unwrap();
            db.update_last_ping(&node.id, future() + Duration::from_secs(round.into()))
                .unwrap();
            let pong = if node.id == id(0x66) {
                past()
            } else {
                future()
            };
            db.update_last_pong(&node.id, pong).unwrap();
            db.update_find_fails(&node.id, round).unwrap();
            let [own, mapped, v6] = per_ip(&node);
            db.update_last_ping_from(&node.id, own, future()).unwrap();
            db.update_last_pong_from(&node.id, mapped, future())
                .unwrap();
            db.update_find_fails_at(&node.id, v6, round + 1).unwrap();
        }
        for r in 1..=3u64 {
            let shape = shapes[(r as usize + round as usize) % shapes.len()];
            let record = signed_record_with(r, u64::from(round) + 1, shape);
            assert!(db.update_record(&record).unwrap());
            db.update_last_pong_from(&record_id(r), record_ip4(r).into(), future())
                .unwrap();
        }
        db.store_local_seq(1000 + u64::from(round)).unwrap();
        db.delete_node(&id(0x44)).unwrap();
    }
    db.update_record(&signed_record_with(4, 9, RecordShape::Large))
        .unwrap();
    db.update_node(&Node::new(me, IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 1))
        .unwrap();
    // A stale pong at one IP of a node with fresh pongs: its slot expires, the node stays.
    db.update_last_pong_from(&id(0x22), per_ip(&sample_nodes()[0])[2], past())
        .unwrap();
    db.expire_nodes().unwrap();
    db.update_last_ping(&id(0x77), SystemTime::now()).unwrap();
    if compact {
        db.compact().unwrap();
        db.update_find_fails(&id(0x22), 9).unwrap();
        db.store_local_seq(2000).unwrap();
    }
    db.close().unwrap();
}

/// A one-segment log whose records are mostly of `kind`, one of the kinds format 2 added.
fn write_kind(dir: &Path, kind: &str) {
    let db = NodeDb::open_with(dir, 1, id(0x11), small_segments()).unwrap();
    let nodes = sample_nodes();
    match kind {
        "record" => {
            for (r, shape) in [
                RecordShape::V4,
                RecordShape::V6,
                RecordShape::Both,
                RecordShape::NoIp,
                RecordShape::Large,
            ]
            .into_iter()
            .enumerate()
            {
                let r = r as u64 + 1;
                for seq in [0, 1, 7] {
                    assert!(db
                        .update_record(&signed_record_with(r, seq, shape))
                        .unwrap());
                }
            }
        }
        "ping_from" | "pong_from" | "fails_at" => {
            for (k, node) in nodes.iter().enumerate() {
                for (j, ip) in per_ip(node).into_iter().enumerate() {
                    let at = future() + Duration::from_secs((k * 3 + j) as u64);
                    match kind {
                        "ping_from" => db.update_last_ping_from(&node.id, ip, at),
                        "pong_from" => db.update_last_pong_from(&node.id, ip, at),
                        _ => db.update_find_fails_at(&node.id, ip, (k * 3 + j) as u32),
                    }
                    .unwrap();
                }
            }
        }
        "ip_expire" => {
            for node in &nodes {
                db.update_last_pong(&node.id, future()).unwrap();
                for ip in per_ip(node) {
                    db.update_last_pong_from(&node.id, ip, past()).unwrap();
                }
            }
            db.expire_nodes().unwrap();
        }
        "local_seq" => {
            for seq in [0, 1, 1_700_000_000_000, u64::MAX] {
                db.store_local_seq(seq).unwrap();
            }
        }
        "loss" => {
            drop(db);
            return write_losses(dir);
        }
        other => panic!("no seed for kind {other}"),
    }
    db.close().unwrap();
}

/// A log whose segments record losses: a segment is lost, a compaction records it (in a
/// compacted segment that replaces the rest), and an acknowledgement records it again in the
/// segment after it. Leaves only those two segments.
fn write_losses(dir: &Path) {
    let db = NodeDb::open_with(dir, 1, id(0x11), small_segments()).unwrap();
    for round in 0..40u64 {
        for node in sample_nodes() {
            db.update_last_pong(&node.id, past() + Duration::from_secs(round))
                .unwrap();
        }
    }
    db.close().unwrap();
    let files = files_of(dir, |name| name.ends_with(".seg"));
    assert!(files.len() >= 3, "{files:?}");
    fs::remove_file(&files[1]).unwrap();
    let db = NodeDb::open_with(dir, 1, id(0x11), small_segments()).unwrap();
    assert_eq!(db.compact().unwrap().losses.len(), 1);
    assert_eq!(db.accept_damage().unwrap().len(), 1);
    db.close().unwrap();
}

/// Builds an `ops_model` input of format-2 operations: [`checks::OPS_V2`], then each
/// operation as `arbitrary` decodes it (a `u32` that picks one of the 19 variants of
/// `checks::Op`, then its fields, integers little-endian).
struct OpsInput(Vec<u8>, Vec<&'static str>);

impl OpsInput {
    /// The variants of `checks::Op`, in order.
    const NAMES: [&'static str; 19] = [
        "Update", "Ping", "Pong", "Fails", "Delete", "Burst", "Expire", "Compact", "Sync",
        "Reopen", "Crash", "TornTail", "FailNext", "Record", "PingFrom", "PongFrom", "FailsAt",
        "LocalSeq", "BurstV2",
    ];
    const VARIANTS: u64 = Self::NAMES.len() as u64;
    const UPDATE: u64 = 0;
    const PONG: u64 = 2;
    const DELETE: u64 = 4;
    const BURST: u64 = 5;
    const EXPIRE: u64 = 6;
    const COMPACT: u64 = 7;
    const REOPEN: u64 = 9;
    const CRASH: u64 = 10;
    const TORN_TAIL: u64 = 11;
    const FAIL_NEXT: u64 = 12;
    const RECORD: u64 = 13;
    const PING_FROM: u64 = 14;
    const PONG_FROM: u64 = 15;
    const FAILS_AT: u64 = 16;
    const LOCAL_SEQ: u64 = 17;
    const BURST_V2: u64 = 18;

    fn new() -> OpsInput {
        OpsInput(checks::OPS_V2.to_vec(), Vec::new())
    }

    fn op(&mut self, variant: u64, fields: &[u8]) -> &mut OpsInput {
        // The smallest u32 that `(u32 * VARIANTS) >> 32` maps to `variant`.
        let tag = (variant << 32).div_ceil(Self::VARIANTS);
        self.0.extend_from_slice(&(tag as u32).to_le_bytes());
        self.0.extend_from_slice(fields);
        self.1.push(Self::NAMES[variant as usize]);
        self
    }

    /// A `Time`: long past or far future, plus seconds.
    fn time(past: bool, secs: u32) -> Vec<u8> {
        let mut out = vec![u8::from(past)];
        out.extend_from_slice(&secs.to_le_bytes());
        out.extend_from_slice(&0u32.to_le_bytes());
        out
    }

    fn update(&mut self, who: u8) -> &mut OpsInput {
        let mut fields = vec![who, 0];
        fields.extend_from_slice(&[192, 0, 2, who]);
        fields.extend_from_slice(&[0; 12]);
        fields.extend_from_slice(&30303u16.to_le_bytes());
        fields.extend_from_slice(&30303u16.to_le_bytes());
        self.op(Self::UPDATE, &fields)
    }

    fn pong(&mut self, who: u8, past: bool) -> &mut OpsInput {
        let mut fields = vec![who];
        fields.extend(Self::time(past, u32::from(who)));
        self.op(Self::PONG, &fields)
    }

    fn record(&mut self, who: u8, variant: u8) -> &mut OpsInput {
        self.op(Self::RECORD, &[who, variant])
    }

    fn per_ip(&mut self, variant: u64, who: u8, ip: u8, past: bool) -> &mut OpsInput {
        let mut fields = vec![who, ip];
        fields.extend(Self::time(past, u32::from(who) * 10 + u32::from(ip)));
        self.op(variant, &fields)
    }

    fn fails_at(&mut self, who: u8, ip: u8, fails: u32) -> &mut OpsInput {
        let mut fields = vec![who, ip];
        fields.extend_from_slice(&fails.to_le_bytes());
        self.op(Self::FAILS_AT, &fields)
    }

    fn local_seq(&mut self, seq: u64) -> &mut OpsInput {
        self.op(Self::LOCAL_SEQ, &seq.to_le_bytes())
    }

    fn torn_tail(&mut self, cut: u16, garbage: &[u8]) -> &mut OpsInput {
        let mut fields = cut.to_le_bytes().to_vec();
        for &b in garbage {
            fields.extend_from_slice(&[1, b]);
        }
        fields.push(0);
        self.op(Self::TORN_TAIL, &fields)
    }

    fn plain(&mut self, variant: u64) -> &mut OpsInput {
        self.op(variant, &[])
    }
}

/// `ops_model` seeds of the format-2 operations, with the operations each must decode to.
fn ops_seeds() -> Vec<(&'static str, OpsInput)> {
    // Records: every variant of every pool id, in an order where some are ignored (an older
    // seq, an unsigned record over a signed one, the very record already stored) and an equal
    // seq replaces; pongs from the IPs the records name; then reopen, compaction, a torn tail
    // and a crash image.
    let mut records = OpsInput::new();
    for who in 0..6 {
        records
            .record(who, 1)
            .record(who, 0)
            .update(who)
            .record(who, 2)
            .per_ip(OpsInput::PONG_FROM, who, 2, false)
            .record(who, 3)
            .record(who, 4)
            .per_ip(OpsInput::PONG_FROM, who, 3, false)
            .record(who, 5)
            .record(who, 5);
    }
    records
        .plain(OpsInput::REOPEN)
        .plain(OpsInput::COMPACT)
        .plain(OpsInput::REOPEN)
        .torn_tail(300, &[])
        .plain(OpsInput::CRASH);

    // Per IP: IPv4, its mapped form and IPv6; stale and fresh; a blank slot (fails 0) that a
    // compaction drops; the local seq; expiry, compaction, delete, a torn tail with garbage.
    let mut per_ip = OpsInput::new();
    for who in 1..6 {
        per_ip
            .per_ip(OpsInput::PING_FROM, who, 0, true)
            .per_ip(OpsInput::PONG_FROM, who, 1, false)
            .fails_at(who, 2, 3)
            .per_ip(OpsInput::PONG_FROM, who, 2, true)
            .local_seq(u64::from(who) * 10)
            .update(who);
    }
    per_ip
        .plain(OpsInput::EXPIRE)
        .plain(OpsInput::REOPEN)
        .fails_at(1, 3, 0)
        .plain(OpsInput::COMPACT)
        .plain(OpsInput::REOPEN)
        .op(OpsInput::DELETE, &[1])
        .torn_tail(77, &[0xAB, 0xCD, 0, 0])
        .plain(OpsInput::REOPEN);

    // Expiry by every rule: this node's record; a stale IP slot of a node with a fresh pong;
    // a slot stale by its ping on a record without pongs (judged by its newest event: it
    // stays); an id with only a stale per-IP ping; a node whose newest pong is stale; a
    // record without IP and nothing else.
    let mut expiry = OpsInput::new();
    expiry
        .record(0, 1)
        .record(1, 1)
        .per_ip(OpsInput::PONG_FROM, 1, 0, true)
        .pong(1, false)
        .record(2, 2)
        .per_ip(OpsInput::PING_FROM, 2, 2, true)
        .per_ip(OpsInput::PING_FROM, 3, 3, true)
        .update(4)
        .per_ip(OpsInput::PONG_FROM, 4, 1, true)
        .record(5, 3)
        .plain(OpsInput::EXPIRE)
        .plain(OpsInput::REOPEN)
        .plain(OpsInput::COMPACT)
        .plain(OpsInput::CRASH);

    // Bursts: segments of the new kinds fill and rotate, mixed with the old kinds; an
    // injected fsync failure poisons; torn tails land anywhere.
    let mut bursts = OpsInput::new();
    bursts
        .op(OpsInput::BURST_V2, &[3, 47])
        .op(OpsInput::BURST, &[7, 40])
        .op(OpsInput::BURST_V2, &[11, 45])
        .torn_tail(1234, &[1, 2, 3])
        .op(OpsInput::BURST_V2, &[200, 30])
        .plain(OpsInput::COMPACT)
        .plain(OpsInput::REOPEN)
        .op(OpsInput::FAIL_NEXT, &[3])
        .op(OpsInput::BURST_V2, &[42, 20])
        .plain(OpsInput::REOPEN);

    vec![
        ("format2-records", records),
        ("format2-per-ip", per_ip),
        ("format2-expiry", expiry),
        ("format2-bursts", bursts),
    ]
}

/// The crafted `ops_model` seeds decode to exactly the operations they were built from (so a
/// change to `checks::Op` that shifts variants fails here), and the committed files are
/// those bytes.
#[test]
fn format2_ops_seeds_decode_as_built() {
    for (name, input) in ops_seeds() {
        let decoded: Vec<String> = checks::decode_ops(&input.0)
            .iter()
            .map(|op| {
                let debug = format!("{op:?}");
                debug
                    .split(|c: char| !c.is_alphanumeric())
                    .next()
                    .unwrap()
                    .to_string()
            })
            .collect();
        assert_eq!(decoded, input.1, "{name}");
        let committed = fuzz_dir()
            .join("corpus/ops_model")
            .join(format!("seed-{name}"));
        assert_eq!(
            fs::read(&committed).ok(),
            Some(input.0),
            "{} is not what ops_seeds() builds: run write_seed_corpus",
            committed.display()
        );
    }
}

/// The segment files of `dir` in name order, trailing zeros (the preallocated tail) removed.
fn segments(dir: &Path) -> Vec<Vec<u8>> {
    files_of(dir, |name| name.ends_with(".seg"))
        .iter()
        .map(|path| {
            let mut bytes = fs::read(path).unwrap();
            let used = bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
            bytes.truncate(used.max(64));
            bytes
        })
        .collect()
}

/// Deterministic pseudo-random bytes.
fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

#[test]
#[ignore = "writes fuzz/corpus/*/seed-*; run by hand when the format changes"]
fn write_seed_corpus() {
    let corpus = fuzz_dir().join("corpus");
    let write = |target: &str, name: &str, data: &[u8]| {
        let dir = corpus.join(target);
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(format!("seed-{name}")), data).unwrap();
    };

    // Format 2, as the current writer writes it. (The format-1 seeds of peerlog 0.1.0 are
    // kept as committed.)
    let plain = tempfile::tempdir().unwrap();
    write_log(plain.path(), false);
    let segs = segments(plain.path());
    assert!(segs.len() >= 2, "the log should span several segments");
    let compacted = tempfile::tempdir().unwrap();
    write_log(compacted.path(), true);
    let csegs = segments(compacted.path());
    let last = segs.last().unwrap().clone();
    let mut untrimmed =
        fs::read(files_of(plain.path(), |n| n.ends_with(".seg"))[0].clone()).unwrap();
    untrimmed.truncate(4096);
    let fix = FIX_HEADER_CRC | FIX_RECORD_CRC;
    let mut seeds: Vec<(String, u8, Vec<Vec<u8>>)> = vec![
        ("format2-log".into(), 0, segs.clone()),
        ("format2-log-fix-crc".into(), fix, segs.clone()),
        (
            "format2-log-other-version".into(),
            OTHER_VERSION,
            segs.clone(),
        ),
        ("format2-last-segment".into(), 0, vec![last.clone()]),
        ("format2-last-segment-fix-crc".into(), fix, vec![last]),
        (
            "format2-first-segment-preallocated".into(),
            0,
            vec![untrimmed],
        ),
        ("format2-compacted".into(), 0, csegs.clone()),
        ("format2-compacted-fix-crc".into(), fix, csegs),
        (
            "format2-two-generations".into(),
            0,
            vec![segs[0].clone(), segments(compacted.path())[0].clone()],
        ),
        ("empty".into(), 0, Vec::new()),
    ];
    // A segment of each kind format 2 added, checksums fixed so that mutations explore their
    // payloads.
    for kind in [
        "record",
        "ping_from",
        "pong_from",
        "fails_at",
        "ip_expire",
        "local_seq",
        "loss",
    ] {
        let dir = tempfile::tempdir().unwrap();
        write_kind(dir.path(), kind);
        let files = segments(dir.path());
        // Losses: the compacted segment that records one and the segment acknowledging it.
        let expected = if kind == "loss" { 2 } else { 1 };
        assert_eq!(files.len(), expected, "{kind}: segments");
        seeds.push((format!("format2-kind-{kind}"), fix, files));
    }
    for (name, flags, files) in seeds {
        let input = checks::open_segment_input(flags, &files);
        assert!(input.len() <= 16384, "{name}: {} bytes", input.len());
        write("open_segment", &name, &input);
    }

    // open_snapshot: the template's own snapshot (XORed with nothing), a snapshot of another
    // generation (this process's template: its salt is not the next process's), and fields
    // of each part changed, trailer checksum fixed or not.
    let snap = checks::open_snapshot_template();
    let covered = u32::from_le_bytes(snap[40..44].try_into().unwrap()) as usize;
    let events_at = (48 + 56 * covered) as u32;
    let trailer_at = snap.len() as u32 - 16;
    let xor = XOR_TEMPLATE;
    let fix = XOR_TEMPLATE | FIX_SNAPSHOT_CRC;
    let snapshot_seeds: Vec<(&str, Vec<u8>)> = vec![
        ("template", checks::open_snapshot_input(xor, 0, &[])),
        ("other-generation", checks::open_snapshot_input(0, 0, &snap)),
        (
            "other-generation-cut",
            checks::open_snapshot_input(FIX_SNAPSHOT_CRC, 0, &snap[..snap.len() / 2]),
        ),
        ("empty", vec![0]),
        (
            "fix-crc-last-seq",
            checks::open_snapshot_input(fix, 24, &[3]),
        ),
        (
            "fix-crc-ids",
            checks::open_snapshot_input(fix, 32, &[0xff, 0xff, 0xff]),
        ),
        (
            "fix-crc-covered-count",
            checks::open_snapshot_input(fix, 40, &[1]),
        ),
        (
            "fix-crc-segment-len",
            checks::open_snapshot_input(fix, 48 + 24, &[8]),
        ),
        (
            "fix-crc-last-segment-records",
            checks::open_snapshot_input(fix, events_at - 56 + 32, &[1]),
        ),
        (
            "fix-crc-event-kind",
            checks::open_snapshot_input(fix, events_at, &[3]),
        ),
        (
            "fix-crc-event-len",
            checks::open_snapshot_input(fix, events_at + 1, &[0x40]),
        ),
        (
            "fix-crc-event-payload",
            checks::open_snapshot_input(fix, events_at + 20, &[0x5a, 0xa5]),
        ),
        (
            "fix-crc-event-count",
            checks::open_snapshot_input(fix, trailer_at, &[1]),
        ),
        (
            "bad-crc-event-payload",
            checks::open_snapshot_input(xor, trailer_at - 40, &[0x01]),
        ),
        (
            "fix-crc-reserved",
            checks::open_snapshot_input(fix, trailer_at + 12, &[1]),
        ),
    ];
    for (name, input) in snapshot_seeds {
        write("open_snapshot", name, &input);
    }

    for (i, len) in [64, 128, 256, 512, 768, 1024, 1536, 2048]
        .into_iter()
        .enumerate()
    {
        write(
            "ops_model",
            &format!("noise-{i}"),
            &noise(i as u64 + 1, len),
        );
    }
    // The same noise read as format-2 operations, and inputs made of them.
    for (i, len) in [256, 512, 1024, 2048].into_iter().enumerate() {
        let mut input = checks::OPS_V2.to_vec();
        input.extend(noise(i as u64 + 101, len));
        write("ops_model", &format!("format2-noise-{i}"), &input);
    }
    for (name, input) in ops_seeds() {
        write("ops_model", name, &input.0);
    }
    for (i, node) in sample_nodes().iter().enumerate() {
        write("node_rlp", &format!("node-{i}"), &node.to_rlp());
        write(
            "enode_url",
            &format!("node-{i}"),
            node.to_string().as_bytes(),
        );
    }
    write(
        "enode_url",
        "uppercase-id",
        format!("enode://{}@127.0.0.1:30303?discport=30301", "AB".repeat(64)).as_bytes(),
    );
    write(
        "enode_url",
        "ipv6-long",
        format!("enode://{}@[0:0:0:0:0:0:0:1]:1", "cd".repeat(64)).as_bytes(),
    );
}
