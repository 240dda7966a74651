//! `open_snapshot`: arbitrary bytes as the index snapshot of an intact database.

use std::collections::BTreeMap;
use std::fs;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, UNIX_EPOCH};

use peerlog::testing::{LOCK_FILE, MAX_SEQ};
use peerlog::{Damage, Node, NodeDb, NodeId, PeerState, Recovery};

use crate::model::observe_local_seq;
use crate::open_segment::{fresh_node, fuzz_options};
use crate::ops::pool_record;
use crate::scratch::{dir_contents, Scratch};

// ---------------------------------------------------------------------------------------------
// open_snapshot

/// `open_snapshot` flag: the input after the flags is a 4-byte little-endian offset, then
/// bytes XORed over the template's own snapshot from that offset (modulo its length + 1;
/// bytes past its end extend it), instead of the whole snapshot.
pub const XOR_TEMPLATE: u8 = 1;
/// `open_snapshot` flag: recompute the snapshot's trailer checksum (CRC-32 of every byte
/// before its last 8, stored at `len - 8`), so that its contents can be explored past it.
pub const FIX_SNAPSHOT_CRC: u8 = 2;

/// The snapshot's file name in the database directory.
const SNAPSHOT: &str = "index.snapshot";
/// Its trailer: event count, CRC-32, 4 zero bytes.
const TRAILER_LEN: usize = 16;
/// The database's own id.
const ME: NodeId = NodeId([0x11; 64]);

/// Builds an `open_snapshot` input: `flags`, then (with [`XOR_TEMPLATE`]) `offset`, then
/// `bytes`.
pub fn open_snapshot_input(flags: u8, offset: u32, bytes: &[u8]) -> Vec<u8> {
    let mut out = vec![flags];
    if flags & XOR_TEMPLATE != 0 {
        out.extend_from_slice(&offset.to_le_bytes());
    }
    out.extend_from_slice(bytes);
    out
}

/// A database's state as the API returns it: every id's state (IP slots sorted), the
/// losses, the node count, the local seq, and what the open reports but whether it used the
/// snapshot.
#[derive(Clone, Debug, PartialEq, Eq)]
struct State {
    peers: Vec<PeerState>,
    losses: Vec<Damage>,
    len: usize,
    local_seq: Option<u64>,
    recovery: Recovery,
}

impl State {
    fn of(db: &NodeDb) -> State {
        let mut peers = db.peers();
        for peer in &mut peers {
            peer.ips.sort_by_key(|slot| slot.ip);
        }
        peers.sort_by_key(|peer| peer.id);
        let mut recovery = db.recovery().clone();
        recovery.from_snapshot = false;
        State {
            peers,
            losses: db.losses(),
            len: db.len(),
            local_seq: observe_local_seq(db),
            recovery,
        }
    }
}

/// The template database: its files (the snapshot a clean close wrote among them) and the
/// state a full replay of its log gives.
struct Template {
    files: BTreeMap<String, Vec<u8>>,
    snapshot: Vec<u8>,
    state: State,
}

fn node(k: u8) -> Node {
    let ip = if k.is_multiple_of(3) {
        IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x51, 0, 0, 0, 0, k.into()))
    } else {
        IpAddr::V4(Ipv4Addr::new(10, 51, k / 16, k))
    };
    Node::new(NodeId([0x40 + k; 64]), ip, 30303, 30000 + u16::from(k))
}

/// Writes the template's log into `dir` (a few 4 KiB segments: unsigned and signed records,
/// liveness to no IP and per IP, a delete, the local seq) and closes it cleanly.
fn write_template(dir: &Path) {
    let db = NodeDb::open_with(dir, 1, ME, fuzz_options()).expect("opening the template");
    let at = |secs: u64| UNIX_EPOCH + Duration::from_secs(1_900_000_000 + secs);
    for k in 0..12u8 {
        let n = node(k);
        db.update_node(&n).unwrap();
        db.update_last_ping(&n.id, at(k.into())).unwrap();
        db.update_last_pong(&n.id, at(u64::from(k) + 1)).unwrap();
        db.update_find_fails(&n.id, k.into()).unwrap();
        let mapped = match n.ip {
            IpAddr::V4(v4) => IpAddr::V6(v4.to_ipv6_mapped()),
            v6 => v6,
        };
        db.update_last_ping_from(&n.id, mapped, at(u64::from(k) + 2))
            .unwrap();
        db.update_last_pong_from(&n.id, n.ip, at(u64::from(k) + 3))
            .unwrap();
        db.update_find_fails_at(
            &n.id,
            IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x52, 0, 0, 0, 0, k.into())),
            u32::from(k) + 1,
        )
        .unwrap();
    }
    for who in 1..6u8 {
        for variant in [0, 2, who % 6] {
            db.update_record(&pool_record(who, variant).enr).unwrap();
        }
    }
    db.delete_node(&node(4).id).unwrap();
    db.store_local_seq(4242).unwrap();
    db.update_last_pong(&node(5).id, at(99)).unwrap();
    db.close().expect("closing the template");
}

fn template() -> &'static Template {
    static TEMPLATE: OnceLock<Template> = OnceLock::new();
    TEMPLATE.get_or_init(|| {
        let scratch = Scratch::new();
        let dir = scratch.sub("template");
        write_template(&dir);
        let mut files = dir_contents(&dir);
        files.remove(LOCK_FILE);
        let snapshot = files
            .remove(SNAPSHOT)
            .expect("a clean close writes index.snapshot");
        let segments = files.keys().filter(|n| n.ends_with(".seg")).count();
        assert!(segments >= 3, "the template spans {segments} segments");
        // The state of a full replay: the log without its snapshot.
        let replayed = scratch.sub("replayed");
        write_files(&replayed, &files, None);
        let db = NodeDb::open_with(&replayed, 1, ME, fuzz_options()).unwrap();
        assert!(!db.recovery().from_snapshot);
        let state = State::of(&db);
        drop(db);
        assert!(state.recovery.problems.is_empty(), "the template is intact");
        assert!(state.peers.iter().any(|p| p.record.is_some()));
        Template {
            files,
            snapshot,
            state,
        }
    })
}

fn write_files(dir: &Path, files: &BTreeMap<String, Vec<u8>>, snapshot: Option<&[u8]>) {
    fs::create_dir(dir).unwrap();
    for (name, bytes) in files {
        fs::write(dir.join(name), bytes).unwrap();
    }
    if let Some(snapshot) = snapshot {
        fs::write(dir.join(SNAPSHOT), snapshot).unwrap();
    }
}

/// The snapshot bytes an input stands for.
fn snapshot_of(data: &[u8], template: &[u8]) -> Vec<u8> {
    let Some((&flags, body)) = data.split_first() else {
        return Vec::new();
    };
    let mut bytes = if flags & XOR_TEMPLATE != 0 {
        let (offset, xor) = body.split_at(body.len().min(4));
        let mut offset_bytes = [0; 4];
        offset_bytes[..offset.len()].copy_from_slice(offset);
        let offset = u32::from_le_bytes(offset_bytes) as usize % (template.len() + 1);
        let mut bytes = template.to_vec();
        for (i, &b) in xor.iter().enumerate() {
            match bytes.get_mut(offset + i) {
                Some(byte) => *byte ^= b,
                None => bytes.push(b),
            }
        }
        bytes
    } else {
        body.to_vec()
    };
    if flags & FIX_SNAPSHOT_CRC != 0 && bytes.len() >= TRAILER_LEN {
        let at = bytes.len() - 8;
        let crc = crc32fast::hash(&bytes[..at]);
        bytes[at..at + 4].copy_from_slice(&crc.to_le_bytes());
    }
    bytes
}

/// Whether `bytes` carry a trailer checksum that matches them (the snapshot's own integrity
/// check; the last 4 bytes must be zero).
fn crc_matches(bytes: &[u8]) -> bool {
    if bytes.len() < TRAILER_LEN || bytes[bytes.len() - 4..] != [0; 4] {
        return false;
    }
    let at = bytes.len() - 8;
    crc32fast::hash(&bytes[..at]).to_le_bytes() == bytes[at..at + 4]
}

/// Arbitrary bytes as the snapshot of an intact database: `open` succeeds (never panics);
/// a snapshot it does not use leaves exactly the state of a full replay; the template's own
/// snapshot is used and gives that state; a snapshot whose checksum does not match is never
/// used; a write after the open survives a close and a reopen.
///
/// A forged snapshot whose checksums all match may be used: it is a derived file peerlog
/// wrote, and once its trailer CRC and the CRC-32s of the segments it lists match, its
/// contents are trusted (the open only must not panic, nor allocate without bound, and the
/// database must stay usable).
pub fn check_open_snapshot(data: &[u8]) {
    let template = template();
    let snapshot = snapshot_of(data, &template.snapshot);
    let intact = snapshot == template.snapshot;
    let scratch = Scratch::new();
    let dir = scratch.sub("db");
    write_files(&dir, &template.files, Some(&snapshot));
    let db = NodeDb::open_with(&dir, 1, ME, fuzz_options())
        .unwrap_or_else(|e| panic!("a bad snapshot made the database unopenable: {e}"));
    let used = db.recovery().from_snapshot;
    if std::env::var_os("PEERLOG_FUZZ_DEBUG").is_some() {
        eprintln!("snapshot of {} bytes, intact {intact}", snapshot.len());
        eprintln!("{:#?}", db.recovery());
    }
    let state = State::of(&db);
    let trusted = !used || intact;
    if intact {
        assert!(used, "the template's own snapshot was not used");
    }
    if used {
        assert!(
            crc_matches(&snapshot),
            "a snapshot whose trailer checksum does not match was used"
        );
    }
    if trusted {
        assert_eq!(
            state, template.state,
            "the open (from_snapshot: {used}) differs from a full replay"
        );
    }

    // A write after the open survives a close and a reopen.
    let fresh = fresh_node();
    let exhausted = db.recovery().next_seq > MAX_SEQ;
    if exhausted {
        assert!(
            db.update_node(&fresh).is_err(),
            "a record numbered past MAX_SEQ was acknowledged"
        );
    } else {
        db.update_node(&fresh)
            .expect("a write after the open failed");
    }
    db.close().expect("closing after the open failed");
    let db = NodeDb::open_with(&dir, 1, ME, fuzz_options())
        .unwrap_or_else(|e| panic!("the database fails to reopen: {e}"));
    if !exhausted {
        assert_eq!(
            db.node(&fresh.id),
            Some(fresh.clone()),
            "the write after the open was lost"
        );
    }
    if trusted {
        let mut again = State::of(&db);
        again.peers.retain(|p| p.id != fresh.id);
        assert_eq!(
            (&again.peers, &again.losses, again.len, again.local_seq),
            (
                &template.state.peers,
                &template.state.losses,
                template.state.len + 1,
                template.state.local_seq
            ),
            "the reopen lost or changed the state"
        );
        assert!(again.recovery.problems.is_empty());
    }
    db.close().expect("closing failed");
}

/// The template's snapshot, as this process wrote it (its salt and write times differ in
/// every process: the seeds use [`XOR_TEMPLATE`] to start from it).
pub fn open_snapshot_template() -> Vec<u8> {
    template().snapshot.clone()
}
