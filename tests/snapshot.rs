//! The index snapshot a clean close writes: an open that uses it gives exactly what replaying
//! the whole log gives (every peer's state, the losses, the local seq, and the recovery
//! report: segments, records, problems, next seq), after any history of writes, deletes,
//! evictions, expiry and compaction, after a crash that followed it, and whatever happened to
//! the log or to the snapshot itself since; a snapshot it cannot trust is never used.

use std::fs;
use std::io;
use std::net::{IpAddr, Ipv4Addr};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use peerlog::testing::FailPoints;
use peerlog::{Damage, NodeDb, Options, PeerState, Recovery, MIN_SEGMENT_SIZE};

mod common;
use common::{at, files, id, node, record_id, scratch_dir, signed_record};

const VERSION: u64 = 4;
const SNAPSHOT: &str = "index.snapshot";

fn opts() -> Options {
    Options {
        segment_size: MIN_SEGMENT_SIZE,
        max_nodes: 300,
        compact_dead_ratio: 1.0,
        ..Options::default()
    }
}

fn open(dir: &Path) -> NodeDb {
    open_sized(dir, MIN_SEGMENT_SIZE)
}

/// [`open`] with segments of `segment_size` bytes.
fn open_sized(dir: &Path, segment_size: u64) -> NodeDb {
    let opts = Options {
        segment_size,
        ..opts()
    };
    NodeDb::open_with(dir, VERSION, id(u64::MAX), opts).unwrap()
}

/// Everything an open gives, in a form two directories can be compared by: the peers sorted
/// by id, the losses and problems with file names instead of paths.
#[derive(Clone, Debug, PartialEq)]
struct Opened {
    peers: Vec<PeerState>,
    losses: Vec<Place>,
    /// The stored local seq (`local_seq()` gives the time when none is stored).
    local_seq: Option<u64>,
    segments: usize,
    records: u64,
    problems: Vec<Place>,
    next_seq: u64,
    /// What the database counts as the log's bytes (its compaction trigger).
    log_bytes: u64,
}

fn name(path: &Path) -> String {
    path.file_name().unwrap().to_string_lossy().into_owned()
}

/// A problem or loss: its kind, file name, offset, length and lost sequence numbers.
type Place = (peerlog::DamageKind, String, u64, u64, Option<(u64, u64)>);

fn problem(d: &Damage) -> Place {
    (d.kind, name(&d.path), d.offset, d.len, d.lost)
}

fn opened(db: &NodeDb) -> Opened {
    let mut peers = db.peers();
    peers.sort_by_key(|p| p.id);
    for peer in &mut peers {
        peer.ips.sort_by_key(|ip| ip.ip);
    }
    let Recovery {
        segments,
        records,
        problems,
        next_seq,
        ..
    } = db.recovery().clone();
    Opened {
        peers,
        losses: db.losses().iter().map(problem).collect(),
        local_seq: Some(db.local_seq()).filter(|&seq| seq < 1 << 40),
        segments,
        records,
        problems: problems.iter().map(problem).collect(),
        next_seq,
        log_bytes: peerlog::testing::log_bytes(db),
    }
}

/// Copies the files of `from` (not its folders) into a new directory `to`.
fn copy_files(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for (file, bytes) in files(from) {
        if from.join(&file).is_file() {
            fs::write(to.join(file), bytes).unwrap();
        }
    }
}

/// What opening `dir` gives with its snapshot, and what opening a copy without the snapshot
/// gives; checks that the first used the snapshot when `used` says so.
fn with_and_without(dir: &Path, scratch: &Path, used: bool) -> (Opened, Opened) {
    with_and_without_sized(dir, scratch, Some(used), MIN_SEGMENT_SIZE)
}

/// [`with_and_without`] with segments of `segment_size` bytes.
fn with_and_without_sized(
    dir: &Path,
    scratch: &Path,
    used: Option<bool>,
    segment_size: u64,
) -> (Opened, Opened) {
    let without = scratch.join(format!("without-{}", rand_suffix()));
    copy_files(dir, &without);
    let _ = fs::remove_file(without.join(SNAPSHOT));
    let db = open_sized(dir, segment_size);
    if let Some(used) = used {
        assert_eq!(db.recovery().from_snapshot, used, "{:?}", db.recovery());
    }
    let a = opened(&db);
    db.close().unwrap();
    let db = open_sized(&without, segment_size);
    assert!(!db.recovery().from_snapshot);
    let b = opened(&db);
    db.close().unwrap();
    fs::remove_dir_all(&without).unwrap();
    (a, b)
}

/// Asserts that two opens gave the same, naming the first difference (the whole state is
/// too long to read in a failure).
#[track_caller]
fn same(a: &Opened, b: &Opened, what: &str) {
    assert_eq!(a.peers.len(), b.peers.len(), "{what}: ids held");
    if let Some((x, y)) = a.peers.iter().zip(&b.peers).find(|(x, y)| x != y) {
        panic!("{what}: a peer differs:\n{x:?}\n{y:?}");
    }
    assert_eq!(a.losses, b.losses, "{what}: losses");
    assert_eq!(a.local_seq, b.local_seq, "{what}: local seq");
    assert_eq!(
        (a.segments, a.records, a.next_seq),
        (b.segments, b.records, b.next_seq),
        "{what}: segments, records, next seq"
    );
    assert_eq!(a.problems, b.problems, "{what}: problems");
    assert_eq!(a.log_bytes, b.log_bytes, "{what}: log bytes");
}

fn rand_suffix() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    N.fetch_add(1, Ordering::Relaxed)
}

/// A small deterministic random number generator (xorshift).
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

/// Opens `dir`, writes `node(n)` for `n` in `0..count`, closes it (writing its snapshot).
fn write_nodes(dir: &Path, count: u64) {
    let db = open(dir);
    for n in 0..count {
        db.update_node(&node(n)).unwrap();
    }
    db.close().unwrap();
}

/// Opens `dir`, makes `steps` random writes from seed `seed`, closes it (writing its
/// snapshot); returns the generator, for more writes that continue the sequence.
fn write_random(dir: &Path, seed: u64, steps: u64) -> Rng {
    let mut rng = Rng(seed);
    let db = open(dir);
    for step in 0..steps {
        random_write(&db, &mut rng, step);
    }
    db.close().unwrap();
    rng
}

/// One random write of every kind the API has, over 400 ids (more than `max_nodes`, so the
/// store evicts), some with signed records.
fn random_write(db: &NodeDb, rng: &mut Rng, step: u64) {
    let n = rng.below(400);
    let ip = IpAddr::V4(Ipv4Addr::new(
        10,
        (n % 7) as u8,
        0,
        (rng.below(3) + 1) as u8,
    ));
    match rng.below(14) {
        0 | 1 => db.update_node(&node(n)).unwrap(),
        2 => {
            let _ = db
                .update_record(&signed_record(n % 40, 1 + rng.below(3)))
                .unwrap();
        }
        3 | 4 => db.update_last_ping(&id(n), at(step)).unwrap(),
        5 | 6 => db.update_last_pong(&id(n), at(step)).unwrap(),
        7 => db.update_find_fails(&id(n), rng.below(3) as u32).unwrap(),
        8 => db.update_last_ping_from(&id(n), ip, at(step)).unwrap(),
        9 => db.update_last_pong_from(&id(n), ip, at(step)).unwrap(),
        10 => db
            .update_find_fails_at(&id(n), ip, rng.below(3) as u32)
            .unwrap(),
        11 => db.delete_node(&id(n)).unwrap(),
        12 => db.delete_node(&record_id(n % 40)).unwrap(),
        _ => db.store_local_seq(step).unwrap(),
    }
}

/// Sessions of random writes (with a compaction or an expiry now and then), each closed
/// cleanly: every open after the first uses the snapshot the close before it wrote, and
/// gives what a full replay of the same files gives, and what the database held at close.
#[test]
fn an_open_from_the_snapshot_gives_what_a_full_replay_gives() {
    let scratch = scratch_dir();
    for seed in 1..=4u64 {
        let dir = scratch.path().join(format!("db-{seed}"));
        let mut rng = Rng(seed.wrapping_mul(0x9e37_79b9_7f4a_7c15));
        let mut held: Option<Opened> = None;
        for session in 0..6u64 {
            let db = open(&dir);
            assert_eq!(db.recovery().from_snapshot, session > 0);
            let now = opened(&db);
            if let Some(held) = &held {
                let what = format!("seed {seed} session {session}, against the close");
                same(
                    &now,
                    &Opened {
                        segments: now.segments,
                        records: now.records,
                        next_seq: now.next_seq,
                        problems: now.problems.clone(),
                        log_bytes: now.log_bytes,
                        ..held.clone()
                    },
                    &what,
                );
            }
            for step in 0..1500 {
                random_write(&db, &mut rng, session * 10_000 + step);
            }
            match session % 3 {
                0 => drop(db.compact().unwrap()),
                1 => drop(db.expire().unwrap()),
                _ => {}
            }
            held = Some(opened(&db));
            db.close().unwrap();
            assert!(dir.join(SNAPSHOT).is_file());
            let (with, without) = with_and_without(&dir, scratch.path(), true);
            same(&with, &without, &format!("seed {seed} session {session}"));
            // A compaction leaves two segments; the other sessions, dozens.
            assert!(with.segments >= 2, "{} segments", with.segments);
        }
    }
}

/// A crash after an open from the snapshot: the snapshot stays what the last clean close
/// wrote, and the records written since (in the segment it ends in and in newer ones) are
/// replayed after it, with the same result as a full replay of the crashed files.
#[test]
fn a_crash_after_an_open_from_the_snapshot_replays_what_followed_it() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let mut rng = write_random(&dir, 77, 2000);
    for writes in [0u64, 1, 25, 3000] {
        let db = open(&dir);
        assert!(db.recovery().from_snapshot);
        for step in 0..writes {
            random_write(&db, &mut rng, 100_000 + step);
        }
        db.sync().unwrap();
        // The files as a crash now would leave them (the close below writes a new snapshot).
        let crashed = scratch.path().join(format!("crashed-{writes}"));
        copy_files(&dir, &crashed);
        let expected = opened(&db);
        db.close().unwrap();

        let (with, without) = with_and_without(&crashed, scratch.path(), true);
        same(
            &with,
            &without,
            &format!("{writes} writes after the snapshot"),
        );
        assert_eq!(with.peers, expected.peers);
    }
}

/// Damage anywhere in what the snapshot covers (a sealed segment, or the records of the
/// segment it ends in) or after it is found and reported exactly as a full replay finds it.
#[test]
fn damage_since_the_snapshot_is_found_as_a_full_replay_finds_it() {
    let scratch = scratch_dir();
    let base = scratch.path().join("base");
    write_random(&base, 5, 3000);
    let segments = common::segments(&base);
    assert!(segments.len() > 3);
    let last = segments.last().unwrap();
    let last_used = fs::read(last)
        .unwrap()
        .iter()
        .rposition(|&b| b != 0)
        .unwrap();
    let len = fs::metadata(&segments[0]).unwrap().len() as usize;
    let places: Vec<(PathBuf, usize)> = vec![
        (segments[0].clone(), 200),
        (segments[1].clone(), len / 2),
        (segments[segments.len() - 2].clone(), len - 1000),
        (last.clone(), 100),
        (last.clone(), last_used),
    ];
    for (k, (segment, offset)) in places.into_iter().enumerate() {
        let dir = scratch.path().join(format!("damaged-{k}"));
        copy_files(&base, &dir);
        let path = dir.join(segment.file_name().unwrap());
        let mut bytes = fs::read(&path).unwrap();
        bytes[offset] ^= 0x10;
        fs::write(&path, bytes).unwrap();
        let (with, without) = with_and_without(&dir, scratch.path(), false);
        assert!(!with.problems.is_empty(), "damage at {offset} of {path:?}");
        same(&with, &without, "");
    }
}

/// A snapshot cut short at any of many lengths, with a bit flipped anywhere, empty, of
/// another format, or a folder: the open replays the log and gives what it gives without
/// the snapshot.
#[test]
fn a_torn_or_damaged_snapshot_is_not_used() {
    let scratch = scratch_dir();
    let base = scratch.path().join("base");
    write_random(&base, 9, 600);
    let snapshot = fs::read(base.join(SNAPSHOT)).unwrap();
    let len = snapshot.len();
    assert!(len > 4096, "{len} bytes");
    let expected = {
        let (with, without) = with_and_without(&base, scratch.path(), true);
        same(&with, &without, "");
        with
    };
    let mut variants: Vec<Vec<u8>> = Vec::new();
    // Every length through the head and the first segments listed, then every 97th, and
    // every length through the trailer.
    let cuts = (0..300)
        .chain((300..len - 64).step_by(97))
        .chain(len - 64..len);
    variants.extend(cuts.map(|cut| snapshot[..cut].to_vec()));
    for offset in (0..len).step_by(61).chain(len - 16..len) {
        let mut flipped = snapshot.clone();
        flipped[offset] ^= 1 << (offset % 8);
        variants.push(flipped);
    }
    let mut other = snapshot.clone();
    other[7] = b'9';
    variants.push(other);
    let dir = scratch.path().join("db");
    copy_files(&base, &dir);
    for variant in &variants {
        fs::write(dir.join(SNAPSHOT), variant).unwrap();
        let db = open(&dir);
        assert!(
            !db.recovery().from_snapshot,
            "a variant of {} bytes",
            variant.len()
        );
        assert_eq!(opened(&db).peers, expected.peers);
        // Closed without a write: nothing to replace the bad snapshot with is skipped, so
        // close writes a good one; put the next variant in its place.
        db.close().unwrap();
    }
    fs::remove_file(dir.join(SNAPSHOT)).unwrap();
    fs::create_dir(dir.join(SNAPSHOT)).unwrap();
    let db = open(&dir);
    assert!(!db.recovery().from_snapshot);
    assert_eq!(opened(&db).peers, expected.peers);
    db.close().unwrap();
}

/// A close without a write since the open keeps the snapshot file as it is; a close after
/// writes replaces it (by a rename: the inode changes).
#[test]
fn a_close_rewrites_the_snapshot_only_when_the_log_moved() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 100);
    let inode = || fs::metadata(dir.join(SNAPSHOT)).unwrap().ino();
    let first = inode();
    let db = open(&dir);
    assert!(db.recovery().from_snapshot);
    db.close().unwrap();
    assert_eq!(inode(), first);
    let db = open(&dir);
    db.update_last_pong(&id(3), at(3)).unwrap();
    db.close().unwrap();
    assert_ne!(inode(), first);
    let db = open(&dir);
    assert!(db.recovery().from_snapshot);
    assert_eq!(db.last_pong(&id(3)), Some(at(3)));
    db.close().unwrap();
}

/// A snapshot left half-written by a crash during a close (its temporary file) is removed
/// by the next open, which uses the snapshot of the close before.
#[test]
fn a_half_written_snapshot_is_removed_and_the_previous_one_used() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 50);
    let temp = dir.join(format!("{SNAPSHOT}.tmp"));
    fs::write(&temp, b"PLSNAP01 and then nothing").unwrap();
    let db = open(&dir);
    assert!(db.recovery().from_snapshot);
    assert!(!temp.exists());
    assert_eq!(db.len(), 50);
    db.close().unwrap();
}

/// The log found damaged (a problem other than a torn tail) gives no snapshot at close: a
/// snapshot would hide from the next open what a replay reports. Once a compaction has
/// moved the damage out of the log, the next close writes one.
#[test]
fn a_damaged_log_gets_a_snapshot_only_once_compaction_has_cleared_it() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open(&dir);
    for n in 0..2000 {
        db.update_last_ping(&id(n % 300), at(n)).unwrap();
    }
    db.close().unwrap();
    fs::remove_file(dir.join(SNAPSHOT)).unwrap();
    let first = common::segments(&dir).remove(0);
    let mut bytes = fs::read(&first).unwrap();
    bytes[300] ^= 0x01;
    fs::write(&first, bytes).unwrap();

    let db = open(&dir);
    assert!(!db.recovery().problems.is_empty());
    db.close().unwrap();
    assert!(!dir.join(SNAPSHOT).exists());

    let db = open(&dir);
    db.compact().unwrap();
    db.close().unwrap();
    let db = open(&dir);
    // The damage is recorded as a loss in the log now, and gone from its segments.
    assert!(db.recovery().problems.is_empty(), "{:?}", db.recovery());
    db.close().unwrap();
    assert!(dir.join(SNAPSHOT).is_file());
    let (with, without) = with_and_without(&dir, scratch.path(), true);
    same(&with, &without, "");
    assert!(!with.losses.is_empty());
}

/// A version change wipes the log and its snapshot with it.
#[test]
fn a_version_change_removes_the_snapshot() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open(&dir);
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    assert!(dir.join(SNAPSHOT).is_file());
    let db = NodeDb::open_with(&dir, VERSION + 1, id(u64::MAX), opts()).unwrap();
    assert!(!dir.join(SNAPSHOT).exists());
    assert!(db.is_empty());
    assert!(!db.recovery().from_snapshot);
    db.close().unwrap();
}

/// A database whose fsync failed (poisoned) writes no snapshot at close: its index may hold
/// writes the log lost. The next open uses the snapshot of the close before, replaying what
/// the log holds after it, as a full replay would.
#[test]
fn a_poisoned_database_writes_no_snapshot() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 100);
    let inode = || fs::metadata(dir.join(SNAPSHOT)).unwrap().ino();
    let before = inode();
    let armed = Arc::new(AtomicBool::new(false));
    let failing = Arc::clone(&armed);
    let poisoning = Options {
        fail_points: FailPoints::new(move |step| match step {
            "log.fsync" if failing.load(Ordering::SeqCst) => Err(io::Error::other("injected")),
            _ => Ok(()),
        }),
        ..opts()
    };
    let db = NodeDb::open_with(&dir, VERSION, id(u64::MAX), poisoning).unwrap();
    db.update_last_ping(&id(7), at(7)).unwrap();
    armed.store(true, Ordering::SeqCst);
    assert!(db.sync().is_err());
    assert!(db.close().is_err());
    assert_eq!(inode(), before);
    let (with, without) = with_and_without(&dir, scratch.path(), true);
    same(&with, &without, "");
}

/// An in-memory database writes nothing; an empty log gets a snapshot (of nothing) and opens
/// from it.
#[test]
fn an_empty_log_opens_from_its_snapshot_too() {
    let db = NodeDb::in_memory(id(1));
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open(&dir);
    assert!(!db.recovery().from_snapshot);
    db.close().unwrap();
    assert!(dir.join(SNAPSHOT).is_file());
    let db = open(&dir);
    assert!(db.recovery().from_snapshot);
    assert!(db.is_empty());
    db.close().unwrap();
}

/// With `index_snapshot: false` a close writes no snapshot, and an open removes the one it
/// finds (which would go stale) and replays the log.
#[test]
fn index_snapshot_false_writes_none_and_removes_one_found() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let without = || Options {
        index_snapshot: false,
        ..opts()
    };
    let db = NodeDb::open_with(&dir, VERSION, id(u64::MAX), without()).unwrap();
    db.update_node(&node(1)).unwrap();
    db.close().unwrap();
    assert!(!dir.join(SNAPSHOT).exists());
    let db = open(&dir);
    db.update_node(&node(2)).unwrap();
    db.close().unwrap();
    assert!(dir.join(SNAPSHOT).is_file());
    let db = NodeDb::open_with(&dir, VERSION, id(u64::MAX), without()).unwrap();
    assert!(!db.recovery().from_snapshot);
    assert!(!dir.join(SNAPSHOT).exists());
    assert_eq!(db.len(), 2);
    db.close().unwrap();
    assert!(!dir.join(SNAPSHOT).exists());
}

/// The last segment cut back at a frame boundary after a close (an open reports nothing for
/// that, docs/DAMAGE.md), then new records written under the sequence numbers the cut freed,
/// then a crash: the snapshot of that close describes records the segment no longer holds.
/// It is not used (the open that found the cut removed it, and the segment's checksum up to
/// where its records ended differs anyway).
#[test]
fn a_snapshot_is_not_used_once_the_last_segment_was_cut_and_written_again() {
    let size = 1 << 20;
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open_sized(&dir, size);
    for n in 0..50 {
        db.update_last_ping(&id(n), at(1)).unwrap();
    }
    db.sync().unwrap();
    let last = common::segments(&dir).pop().unwrap();
    let cut = fs::read(&last).unwrap();
    for n in 0..10 {
        db.update_last_pong(&id(n), at(2)).unwrap();
    }
    db.close().unwrap();
    assert_eq!(common::segments(&dir).pop().unwrap(), last, "no rotation");
    let snapshot = fs::read(dir.join(SNAPSHOT)).unwrap();
    fs::write(&last, &cut).unwrap();

    let db = open_sized(&dir, size);
    assert!(!db.recovery().from_snapshot);
    assert!(db.recovery().problems.is_empty());
    assert!(
        !dir.join(SNAPSHOT).exists(),
        "a snapshot not used is removed"
    );
    for n in 100..120 {
        db.update_last_ping(&id(n), at(3)).unwrap();
    }
    db.sync().unwrap();
    let crashed = scratch.path().join("crashed");
    copy_files(&dir, &crashed);
    let expected = opened(&db);
    db.close().unwrap();
    // As if the removal had not reached the disk before the crash.
    fs::write(crashed.join(SNAPSHOT), &snapshot).unwrap();

    let (with, without) = with_and_without_sized(&crashed, scratch.path(), Some(false), size);
    same(&with, &without, "");
    assert_eq!(with.peers, expected.peers);
    assert_eq!(
        with.peers.iter().find(|p| p.id == id(0)).unwrap().last_pong,
        None
    );
}

/// The last segment deleted after a close (no report, docs/DAMAGE.md), the writer going on
/// in the one before and, at its first rotation, creating a segment of the deleted one's id
/// and first sequence number; then a crash. The snapshot of that close is not used.
#[test]
fn a_snapshot_is_not_used_once_the_last_segment_was_deleted_and_its_name_taken_again() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open(&dir);
    let mut n = 0;
    while common::segments(&dir).len() < 4 {
        db.update_last_ping(&id(n), at(1)).unwrap();
        n += 1;
    }
    for k in 0..5 {
        db.update_last_pong(&id(k), at(2)).unwrap();
    }
    db.close().unwrap();
    let snapshot = fs::read(dir.join(SNAPSHOT)).unwrap();
    let last = common::segments(&dir).pop().unwrap();
    fs::remove_file(&last).unwrap();

    let db = open(&dir);
    assert!(!db.recovery().from_snapshot);
    assert!(db.recovery().problems.is_empty());
    for k in 0..40 {
        db.update_last_ping(&id(1000 + k), at(3)).unwrap();
    }
    db.sync().unwrap();
    assert!(last.exists(), "the deleted segment's name is taken again");
    let crashed = scratch.path().join("crashed");
    copy_files(&dir, &crashed);
    db.close().unwrap();
    fs::write(crashed.join(SNAPSHOT), &snapshot).unwrap();

    let (with, without) = with_and_without(&crashed, scratch.path(), false);
    same(&with, &without, "");
}

/// A sealed segment damaged while the database is open (after the open's replay checked
/// it, or after it was written): the close scans every segment no snapshot vouched for,
/// finds the damage and writes no snapshot, so the next open reports it as a replay does.
#[test]
fn damage_while_open_is_not_hidden_by_the_snapshot() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    let db = open(&dir);
    for n in 0..2000 {
        db.update_last_ping(&id(n % 300), at(n)).unwrap();
    }
    db.close().unwrap();
    for reopened_from_snapshot in [false, true] {
        if !reopened_from_snapshot {
            fs::remove_file(dir.join(SNAPSHOT)).unwrap();
        }
        let db = open(&dir);
        assert_eq!(db.recovery().from_snapshot, reopened_from_snapshot);
        for n in 0..300 {
            db.update_last_pong(&id(n), at(n)).unwrap();
        }
        // A segment sealed before the open, and one sealed during it.
        let segments = common::segments(&dir);
        let victim = if reopened_from_snapshot {
            &segments[segments.len() - 3]
        } else {
            &segments[1]
        };
        let mut bytes = fs::read(victim).unwrap();
        bytes[300] ^= 0x01;
        fs::write(victim, bytes).unwrap();
        db.close().unwrap();

        // The snapshot of the close before this session may be used (the damage lies past
        // what it covers, and the replay of the rest finds it): the result is the same.
        let (with, without) = with_and_without_sized(&dir, scratch.path(), None, MIN_SEGMENT_SIZE);
        assert!(!without.problems.is_empty());
        same(&with, &without, "");
        // Repaired for the next round: compaction moves the damage out of the log, and the
        // close after the next (clean) open writes a snapshot.
        let db = open(&dir);
        db.compact().unwrap();
        db.close().unwrap();
        open(&dir).close().unwrap();
        assert!(dir.join(SNAPSHOT).is_file());
    }
}

fn peak_resident_kib() -> u64 {
    let status = fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

/// A bit flipped in the snapshot's count of ids (any bit of it) must not make the open
/// allocate for that many ids before the snapshot's checksum tells it is damaged.
#[test]
fn a_damaged_id_count_does_not_presize_the_index() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 100);
    let snapshot = fs::read(dir.join(SNAPSHOT)).unwrap();
    let before = peak_resident_kib();
    for bit in (0..64).step_by(3) {
        let mut damaged = snapshot.clone();
        damaged[32 + bit / 8] ^= 1 << (bit % 8);
        fs::write(dir.join(SNAPSHOT), &damaged).unwrap();
        let db = open(&dir);
        assert!(!db.recovery().from_snapshot);
        assert_eq!(db.len(), 100);
        db.close().unwrap();
    }
    let grown = peak_resident_kib() - before;
    assert!(
        grown < 32 * 1024,
        "the opens took {grown} KiB more at their peak"
    );
}

/// A snapshot whose trailer checksum matches but that counts more records or record bytes in
/// a segment than the segment's length is refused (the counts were summed unchecked: fuzz
/// target `open_snapshot`, `regression-covered-records-overflow`).
#[test]
fn a_record_count_beyond_its_segment_is_refused() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 100);
    let snapshot = fs::read(dir.join(SNAPSHOT)).unwrap();
    let len = u64::from_le_bytes(snapshot[48 + 24..48 + 32].try_into().unwrap());
    for (field, value) in [(32, u64::MAX), (40, u64::MAX), (32, len + 1), (40, len + 1)] {
        let mut forged = snapshot.clone();
        forged[48 + field..48 + field + 8].copy_from_slice(&value.to_le_bytes());
        let at = forged.len() - 8;
        let crc = crc32fast::hash(&forged[..at]);
        forged[at..at + 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(dir.join(SNAPSHOT), &forged).unwrap();
        let db = open(&dir);
        assert!(!db.recovery().from_snapshot, "field {field}: {value}");
        assert_eq!(db.len(), 100);
        db.close().unwrap();
    }
}

/// Sessions of three writers beside repeated compactions: the snapshot open against a full
/// replay of the same files, the log's byte count included.
#[test]
fn sessions_of_writers_beside_compactions_open_from_the_snapshot_as_replayed() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    for session in 0..4u64 {
        let db = std::sync::Arc::new(open(&dir));
        let writers: Vec<_> = (0..3u64)
            .map(|w| {
                let db = std::sync::Arc::clone(&db);
                std::thread::spawn(move || {
                    let mut rng = Rng((session + 1) * 1000 + w);
                    for k in 0..2000 {
                        random_write(&db, &mut rng, session * 10_000 + k);
                    }
                })
            })
            .collect();
        for _ in 0..4 {
            db.compact().unwrap();
        }
        for writer in writers {
            writer.join().unwrap();
        }
        std::sync::Arc::into_inner(db).unwrap().close().unwrap();
        let (with, without) = with_and_without(&dir, scratch.path(), true);
        same(&with, &without, &format!("session {session}"));
    }
}

/// A session that only compacts (no write, so the last sequence number stays where it was)
/// changes the segments: its close writes a snapshot of the new ones, and the next open
/// uses it.
#[test]
fn a_compaction_alone_gets_a_snapshot_of_the_new_segments() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_random(&dir, 31, 1500);
    let db = open(&dir);
    assert!(db.recovery().from_snapshot);
    let before = common::segments(&dir);
    db.compact().unwrap();
    assert_ne!(common::segments(&dir), before);
    db.close().unwrap();
    let (with, without) = with_and_without(&dir, scratch.path(), true);
    same(&with, &without, "");
}

/// A snapshot whose segment list claims more segments than fit before its trailer (or runs
/// into it), its checksum recomputed so that only the list is wrong: refused, no panic.
#[test]
fn a_segment_list_running_into_the_trailer_is_refused() {
    let scratch = scratch_dir();
    let dir = scratch.path().join("db");
    write_nodes(&dir, 200);
    let expected = opened(&open(&dir));
    let snapshot = fs::read(dir.join(SNAPSHOT)).unwrap();
    let len = snapshot.len();
    let fitting = (len - 16 - 48) / 56;
    for count in [fitting, fitting + 1, fitting + 2, u32::MAX as usize] {
        let mut forged = snapshot.clone();
        forged[40..44].copy_from_slice(&(count as u32).to_le_bytes());
        let crc = crc32fast::hash(&forged[..len - 8]);
        forged[len - 8..len - 4].copy_from_slice(&crc.to_le_bytes());
        fs::write(dir.join(SNAPSHOT), &forged).unwrap();
        let db = open(&dir);
        assert!(!db.recovery().from_snapshot, "{count} segments");
        assert_eq!(opened(&db).peers, expected.peers);
        db.close().unwrap();
    }
}

/// Changes to the log that leave every byte the snapshot covers as it was: a sealed segment
/// grown by garbage after its end, and a segment of another database (another generation)
/// copied in under a lower id. A replay reports both; the open reports the same.
#[test]
fn a_grown_segment_or_a_stranger_beside_the_covered_ones_is_reported_as_a_replay_does() {
    let scratch = scratch_dir();
    let other = scratch.path().join("other");
    write_nodes(&other, 50);
    let base = scratch.path().join("base");
    write_random(&base, 8, 1500);
    let segments = common::segments(&base);
    assert!(segments.len() > 3);

    let grown = scratch.path().join("grown");
    copy_files(&base, &grown);
    let sealed = grown.join(segments[1].file_name().unwrap());
    let mut bytes = fs::read(&sealed).unwrap();
    bytes.extend_from_slice(&[0x5a; 24]);
    fs::write(&sealed, bytes).unwrap();
    let (with, without) = with_and_without(&grown, scratch.path(), false);
    assert!(!without.problems.is_empty());
    same(&with, &without, "grown");

    let stranger = scratch.path().join("stranger");
    copy_files(&base, &stranger);
    fs::copy(
        common::segments(&other).remove(0),
        stranger.join("0000000000000000.seg"),
    )
    .unwrap();
    let (with, without) = with_and_without(&stranger, scratch.path(), false);
    assert!(!without.problems.is_empty());
    same(&with, &without, "stranger");
}
