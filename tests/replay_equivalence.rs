//! The two replays agree on every log, damaged or not: the locked replay (`NodeDb::open`,
//! compaction) decodes in place, with the checksums checked ahead on a second core by a helper
//! where the log is long enough, while `peerlog::testing::replay` copies every frame and checks
//! every checksum itself. On the same files both find exactly the same records and problems.

use std::fs;
use std::path::Path;

use peerlog::testing::{encode_frame, salt_seed, HEADER_LEN};
use peerlog::testing::{list_dir, replay, ReplayPlan};
use peerlog::{Damage, DamageKind, DamageState, NodeDb, Options};

mod common;
use common::{at, id};

const VERSION: u64 = 9;
/// Kind byte of a ping (docs/FORMAT.md).
const KIND_PING: u8 = 2;
/// Frame of a ping: 16-byte header + 80-byte payload, already a multiple of 8.
const PING_FRAME: usize = 96;

/// What the copying, fully checking replay finds: records (seq, offset) and problems.
fn reference(dir: &Path) -> (Vec<(u64, u64)>, Vec<Damage>) {
    let plan = ReplayPlan::new(
        list_dir(dir, peerlog::testing::Listing::Strict)
            .unwrap()
            .segments,
    );
    let mut records = Vec::new();
    let summary = replay(&plan, |place, record| {
        records.push((record.seq, place.offset))
    })
    .unwrap();
    (records, summary.problems)
}

/// Overwrites the ping frame at `offset` of `path` with a frame whose checksum matches but
/// whose payload is 76 bytes, a length no ping has: the frame passes every check the
/// checksum helper makes, is the same size as the frame it replaces (so the helper walks on
/// past it along the chain), and must still be refused when its payload is decoded.
fn forge_undecodable_ping(path: &Path, salt: u64, offset: usize) {
    let mut bytes = fs::read(path).unwrap();
    let seq = u64::from_le_bytes(bytes[offset + 4..offset + 12].try_into().unwrap());
    let mut frame = Vec::new();
    encode_frame(salt_seed(salt), seq, KIND_PING, &[0x5a; 76], &mut frame);
    assert_eq!(frame.len(), PING_FRAME);
    bytes[offset..offset + PING_FRAME].copy_from_slice(&frame);
    fs::write(path, bytes).unwrap();
}

/// A checksummed frame that does not decode, early in a long chain (the helper runs far
/// past it) and again deep in it: open and compaction drop exactly those two records, report
/// them as damage with their sequence numbers, and agree with the copying replay.
#[test]
fn checksummed_but_undecodable_frames_on_the_chain_are_damage_in_every_replay() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let n = 4000u64;
    let db = NodeDb::open(&path, VERSION, id(u64::MAX)).unwrap();
    for i in 0..n {
        db.update_last_ping(&id(i), at(i)).unwrap();
    }
    db.close().unwrap();

    let segment = list_dir(&path, peerlog::testing::Listing::Strict)
        .unwrap()
        .segments
        .remove(0);
    let (early, deep) = (3usize, 2500usize);
    for k in [early, deep] {
        forge_undecodable_ping(
            &segment.path,
            segment.header.salt,
            HEADER_LEN + k * PING_FRAME,
        );
    }
    let (records, problems) = reference(&path);
    assert_eq!(records.len() as u64, n - 2);
    let damaged = |k: usize| Damage {
        kind: DamageKind::Damaged,
        path: segment.path.clone(),
        offset: (HEADER_LEN + k * PING_FRAME) as u64,
        len: PING_FRAME as u64,
        lost: Some((k as u64 + 1, k as u64 + 1)),
        reason: None,
        state: DamageState::Found,
    };
    assert_eq!(problems, vec![damaged(early), damaged(deep)]);

    // Several opens: the helper is ahead of, level with or behind the scan at random.
    for _ in 0..5 {
        let db = NodeDb::open(&path, VERSION, id(u64::MAX)).unwrap();
        assert_eq!(db.recovery().problems, problems);
        assert_eq!(db.recovery().records, n - 2);
        for i in 0..n {
            let expected = (i != early as u64 && i != deep as u64).then(|| at(i));
            assert_eq!(db.last_ping(&id(i)), expected, "id {i}");
        }
        db.close().unwrap();
    }

    // Compaction's scan of the sealed segment (copying each frame out, without the helper)
    // finds the same.
    let db = NodeDb::open(&path, VERSION, id(u64::MAX)).unwrap();
    let stats = db.compact().unwrap();
    assert_eq!((stats.nodes_expired, stats.records_read), (0, n - 2));
    // The live records; a loss for each damaged frame went to the active segment first.
    assert_eq!(stats.losses.len(), 2, "{stats:?}");
    assert_eq!(stats.records_written, n - 2);
    assert_eq!(
        stats
            .problems
            .iter()
            .map(|p| (p.kind, p.offset, p.len, p.lost))
            .collect::<Vec<_>>(),
        problems
            .iter()
            .map(|p| (p.kind, p.offset, p.len, p.lost))
            .collect::<Vec<_>>()
    );
    db.close().unwrap();
    let db = NodeDb::open(&path, VERSION, id(u64::MAX)).unwrap();
    assert_eq!(db.last_ping(&id(early as u64)), None);
    assert_eq!(db.last_ping(&id(n - 1)), Some(at(n - 1)));
    db.close().unwrap();
}

/// Hundreds of minimum-size segments (too small for a checksum helper: decoded in place, every
/// checksum checked by the scan), some damaged in the middle and some at the tail: the
/// locked replay reports exactly what the copying replay reports.
#[test]
fn many_small_damaged_segments_replay_alike_locked_and_copying() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("db");
    let opts = || Options {
        segment_size: peerlog::MIN_SEGMENT_SIZE,
        ..Options::default()
    };
    let db = NodeDb::open_with(&path, VERSION, id(u64::MAX), opts()).unwrap();
    for i in 0..6000u64 {
        match i % 3 {
            0 => db.update_node(&common::node(i % 500)).unwrap(),
            1 => db.update_last_pong(&id(i % 500), at(i)).unwrap(),
            _ => db.update_find_fails(&id(i % 500), i as u32).unwrap(),
        }
    }
    db.close().unwrap();
    let mut segments = list_dir(&path, peerlog::testing::Listing::Strict)
        .unwrap()
        .segments;
    segments.sort_by_key(|s| s.header.segment_id);
    assert!(segments.len() > 100, "{} segments", segments.len());
    for (i, segment) in segments.iter().enumerate().step_by(17) {
        let mut bytes = fs::read(&segment.path).unwrap();
        // Inside the first few frames, or inside the last one (a damaged tail).
        let at = if i % 2 == 0 {
            HEADER_LEN + 40 + i
        } else {
            3000 + i
        };
        bytes[at] ^= 0x40;
        fs::write(&segment.path, bytes).unwrap();
    }
    let (records, problems) = reference(&path);
    assert!(!problems.is_empty());
    let db = NodeDb::open_with(&path, VERSION, id(u64::MAX), opts()).unwrap();
    assert_eq!(db.recovery().problems, problems);
    assert_eq!(db.recovery().records, records.len() as u64);
    db.close().unwrap();
}
