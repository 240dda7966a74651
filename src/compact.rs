//! Compaction: rewriting the sealed part of the log as the live state it amounts to, read from
//! the database's own index rather than from a second one.
//!
//! # Why no second index
//!
//! Compaction used to replay the sealed segments into a private index and write its live
//! events: the state at `S`, exactly, but at the price of a second index beside the database's
//! own (1.81x the resident size of an open at 1 M nodes, and the same spike inside every node
//! that compacts in the background). The alternatives weighed:
//!
//! - A lean table of the sealed segments (id → where its live frames are, frames copied
//!   verbatim). An exact table still keys on the 64-byte id or a pointer to it plus a
//!   fingerprint, several u64 per id and per live field: half an index, not the 0.2x the goal
//!   leaves. And a verbatim frame keeps its own `written_at`, while the index's `touched` (the
//!   newest event about an id, which expiry and eviction read) can come from an event that is
//!   no longer live (an expired IP slot, a reset fail count): copies would change it.
//! - Per-field source sequence numbers in the index: bytes per node, in the structure whose
//!   bytes per node are being cut.
//! - Two passes over the mapped segments with a hash of ids: the same table, twice the reads.
//! - **The database's own index**, which holds the live state already: what this module does.
//!
//! The index holds the state at a moment `T` after `S`, not at `S`. Restating it at sequence
//! numbers up to `S` is still exact for the log as a whole, for two reasons:
//!
//! 1. **Every event sets or removes; none adds to what was there.** A node record, a ping, a
//!    pong, a fail count, a per-IP field, the local seq: each sets one field to a value; a
//!    delete, expiry or eviction removes an id, an IP expiry or eviction one slot; a loss is
//!    recorded once (a later record of it only acknowledges it). So a field's value after a
//!    sequence of events is the value the last event touching it left, or, if none touched
//!    it, the value it started from; and the time an id was last written (`touched`) is that
//!    of its last setting event, or where it started. Take the compacted segment `C`, written
//!    from the index read at moments `T_1 .. T_k` after `S`, followed by the tail (the events
//!    after `S`): a field the tail never touches has the same value at `S` and at every `T_i`,
//!    so `C` restates it as it was; a field the tail touches ends as the tail's last event
//!    touching it leaves it, in the old log and in `C` + tail alike. The same holds for
//!    `touched`, ids and slots. `C` + tail replays to the state of the old log + tail.
//! 2. **The tail is synced before `C` is published.** `C` may restate a value the tail set
//!    (a pong after `S`), and may leave out a value the tail changed or removed (a node
//!    deleted after `S`). Either is exact only with that tail event present, so every event
//!    through the last read of the index is made durable (one `fdatasync` of the active
//!    segment; full segments were synced when they were sealed) before the rename: a crash
//!    or power loss then leaves the old log, or `C` with a tail reaching past every event it
//!    depends on. Never a `C` ahead of the log that survives.
//!
//! The index is read in turns of [`BATCH`] ids under the writers' lock, so a writer waits for
//! at most one turn (a fraction of a millisecond). Between turns, writers move entries: a
//! removal moves the last entry into the hole, an insertion appends. So the entries are read
//! from the last position down: the part not yet read is always a prefix, an entry moved into
//! it from the end is read (once more: restated twice, harmless by (1)), and one appended
//! after the start is the tail's (made after `S`, restated by it). Every id that is live
//! throughout is read at least once. This rests on how `Index` moves entries (`remove` swaps
//! the last one into the hole, an insert pushes, a write that evicts puts its new id's entry
//! in the evicted one's place, and nothing else reorders them; the new id is the tail's):
//! the unit test below, whose writers delete between turns, fails for a reading that misses
//! a moved entry.
//!
//! The sealed segments are still read once, for what they alone can tell: damage (each new
//! loss is recorded first, see step 2), and the records and bytes read. Their pages are
//! released behind that scan, 8 MiB at a time, rather than held for a whole segment.
//!
//! What changes for a reader of the log: `C` restates the state as read, which may include
//! writes of the tail (a restated value or id then appears again, later, where the tail sets
//! it), and ids in the reverse order of the index. Its memory beyond the index: the write
//! buffer, one turn's frames and a few MiB of the segment being scanned.
//!
//! How many records `C` holds (`m`) is known only once it is written, and its sequence
//! numbers `S+1-m ..= S` depend on it: frames are written with a provisional number, then
//! numbered (sequence number and checksum) in a second pass over the file, which is read back
//! in chunks rather than mapped so that its pages never count as the process's memory. Should
//! writers during the compaction make `m` exceed `S` (a log of a few records and a flood of
//! writes to it), there are no sequence numbers left below `S + 1`: the compaction gives up,
//! publishing nothing, and the next one compacts.
//!
//! # The procedure, and what a crash after each step leaves
//!
//! 1. Under the writer's lock, expired nodes are dropped (their expiry is logged) and the
//!    active segment is sealed: everything up to sequence number `S` is now in sealed
//!    segments, which nobody writes to again. Writers wait for this step, and then only for
//!    the turns of step 3.
//! 2. Without the lock, the sealed segments are scanned (fail point `compact.scan`). Each
//!    damaged or missing stretch found now that the log does not record yet is first recorded
//!    as a loss in the active segment (synced), so that it stays visible once its place is
//!    gone.
//! 3. The index's live events are written to `<id>.seg.tmp`, read in turns under the lock:
//!    the losses (but those step 2 just recorded after `S`, which the tail holds), the state
//!    of every live id, the local seq (`m` records). Fail point `compact.write`. The active
//!    segment is synced (fail point `compact.sync_log`; a failed fsync poisons the database
//!    as any other), then the frames are numbered `S+1-m ..= S` under a header flagged
//!    *compacted* that says it replaces everything through `S` (fail point
//!    `compact.number`). A crash here leaves a `.tmp` file, removed on the next open: the old
//!    state.
//! 4. The file is synced, renamed to `<id>.seg`, and the directory synced. From the rename on,
//!    replay takes the compacted segment instead of the segments it replaces (any still
//!    present are removed on open): the new state, which equals the old one.
//! 5. The replaced segments are removed (or moved to `archive/` with `keep_history`) and the
//!    directory synced.

use std::fs::File;
use std::io::{BufWriter, ErrorKind, Write};
use std::ops::ControlFlow;
use std::os::unix::fs::FileExt;
use std::path::Path;

use crate::error::IoContext;
use crate::event::{PayloadEncoder, StoredEvent};
use crate::index::Index;
use crate::journal::decoded::Decoded;
use crate::journal::dir::{publish, retire_segments, segment_file_name, SegmentFile, ARCHIVE_DIR};
use crate::journal::format::{
    encode_provisional_frame, renumber_frames, salt_seed, SegmentHeader, FLAG_COMPACTED,
    FORMAT_VERSION, HEADER_LEN,
};
use crate::journal::replay::{map_segment, replay_mapped_until, ReplayPlan};
use crate::journal::{Damage, DamageKind, DamageState};
use crate::loss::Loss;
use crate::{Error, Options};

/// What a compaction did.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CompactStats {
    /// Sealed segments read (and then removed or archived).
    pub segments_read: usize,
    /// Intact records read from them.
    pub records_read: u64,
    /// Bytes of those records.
    pub bytes_read: u64,
    /// Records written to the compacted segment.
    pub records_written: u64,
    /// Bytes of those records.
    pub bytes_written: u64,
    /// Nodes dropped because they had expired.
    pub nodes_expired: usize,
    /// Liveness slots of a node at one IP dropped because they had expired (an `ip_expire`
    /// event each): the node itself may stay, known by its other IPs or its record.
    pub ips_expired: usize,
    /// Damage found in the segments read. Their intact records are kept; the damaged segments
    /// are moved to `archive/` (whatever `keep_history` says), so that the bytes can be
    /// examined. Each that lost records is [`Recorded`](DamageState::Recorded) (or
    /// [`Acknowledged`](DamageState::Acknowledged)) by the time the compaction returns.
    pub problems: Vec<Damage>,
    /// Every loss the log records after the compaction: those it recorded before, carried
    /// over into the compacted segment, and those of `problems` that lost records, recorded
    /// now (appended to the active segment), so that verification keeps reporting them after
    /// the damaged places are gone.
    pub losses: Vec<Damage>,
}

/// The sealed segments a compaction will replace, and the last sequence number they hold.
pub(crate) struct CompactionInput {
    pub segments: Vec<SegmentFile>,
    /// Segments an earlier compaction replaced but could not remove: retired too.
    pub superseded: Vec<SegmentFile>,
    pub last_seq: u64,
    pub protocol_version: u64,
    pub salt: u64,
    pub output_id: u64,
}

/// The database a compaction restates: its index, read in turns under the lock its writers
/// take, and its log.
pub(crate) trait LiveDb {
    /// Runs `read` on the index, holding the writers' lock meanwhile.
    fn read_index<T>(&self, read: impl FnOnce(&Index) -> T) -> T;
    /// Appends `losses` to the active segment, syncs it, and returns every loss the log then
    /// records (so that each problem reads as recorded, with the time the log gives it).
    fn record_losses(&self, losses: &[Damage]) -> Result<Vec<Damage>, Error>;
    /// Makes every event appended so far durable.
    fn sync_log(&self) -> Result<(), Error>;
}

/// Ids restated per turn under the writers' lock: a few hundred microseconds of encoding, so
/// that a writer never waits long, and few enough turns that taking the lock costs nothing.
pub(crate) const BATCH: usize = 1024;

/// Steps 2 to 5: writes the compacted segment from `db`'s index and retires the input. Runs
/// without the writer's lock, taking it for short turns.
///
/// The losses found in the input that the log does not record yet are handed to
/// `db.record_losses` before anything is published or retired: they are appended to the
/// active segment, and once the damaged place is retired they are its only trace.
pub(crate) fn rewrite(
    dir: &Path,
    input: CompactionInput,
    opts: &Options,
    db: &impl LiveDb,
) -> Result<CompactStats, Error> {
    let faults = opts.faults();
    let plan = ReplayPlan::new(input.segments.clone());
    // Read for their damage and counts only (the state comes from the index), with their
    // pages released behind the scan: a compaction's memory is the index's and little more.
    let mut replayed = replay_mapped_until::<Intact>(
        &plan,
        |segment| map_segment(&segment.path),
        |_, _| ControlFlow::Continue(()),
    )?;
    for problem in &mut replayed.problems {
        // Unreadable bytes at the end of the last input segment are no append in progress:
        // it is sealed, and the log goes on in the active segment.
        if problem.kind == DamageKind::TornTail {
            problem.kind = DamageKind::DamagedTail;
        }
    }
    faults.check("compact.scan").at(dir)?;
    let new_losses: Vec<Damage> = db.read_index(|index| {
        replayed
            .problems
            .iter()
            .filter(|problem| Loss::of(problem).is_some_and(|loss| !is_known(index, &loss)))
            .cloned()
            .collect()
    });
    let recorded = db.record_losses(&new_losses)?;
    for problem in &mut replayed.problems {
        if let Some(loss) = recorded.iter().find(|l| same_loss(l, problem)) {
            problem.state = loss.state;
        }
    }
    let in_tail: Vec<Loss> = new_losses.iter().filter_map(Loss::of).collect();

    let seed = salt_seed(input.salt);
    let mut header = SegmentHeader {
        format: FORMAT_VERSION,
        flags: FLAG_COMPACTED,
        protocol_version: input.protocol_version,
        salt: input.salt,
        segment_id: input.output_id,
        first_seq: 0,
        replaces_through: input.last_seq,
    };
    let path = dir.join(segment_file_name(input.output_id));
    // Set when writers outran the compaction (see the module documentation).
    let mut overtaken = None;
    let published = publish(&path, "compact", faults, |file, temp| {
        let restated = restate(file, temp, db, &in_tail)?;
        faults.check("compact.write").at(temp)?;
        // Everything `restated` read from the index is in the log up to here: made durable
        // before anything relies on the compacted segment (reason 2 of the module doc).
        faults.check("compact.sync_log").at(temp)?;
        db.sync_log()?;
        let Some(first_seq) = (input.last_seq + 1)
            .checked_sub(restated.count)
            .filter(|&first| first >= 1)
        else {
            overtaken = Some(restated.count);
            return Err(Error::io(
                temp,
                std::io::Error::other("compaction overtaken by writes"),
            ));
        };
        header.first_seq = first_seq;
        let end = HEADER_LEN as u64 + restated.bytes;
        let numbered = renumber_frames(file, seed, first_seq, HEADER_LEN as u64, end).at(temp)?;
        if numbered != restated.count {
            return Err(Error::io(
                temp,
                std::io::Error::new(
                    ErrorKind::InvalidData,
                    format!(
                        "numbered {numbered} frames of the {} written",
                        restated.count
                    ),
                ),
            ));
        }
        file.write_all_at(&header.encode(), 0).at(temp)?;
        faults.check("compact.number").at(temp)?;
        Ok(restated)
    });
    if let Some(count) = overtaken {
        ::log::warn!(
            "compaction gave up: writes made during it left {count} records to restate, more \
             than the {} sequence numbers below the sealed part's end",
            input.last_seq
        );
        return Ok(CompactStats {
            losses: db.read_index(|index| index.recorded_damage().collect()),
            problems: replayed.problems,
            ..CompactStats::default()
        });
    }
    let restated = published?;
    for problem in &replayed.problems {
        let recorded = match problem.state {
            DamageState::Found => "",
            _ => "recorded as a loss in the log; ",
        };
        ::log::error!(
            "compaction found damage ({recorded}the segment is moved to {ARCHIVE_DIR}/): \
             {problem}"
        );
    }
    let retired = input
        .segments
        .iter()
        .chain(&input.superseded)
        .map(|segment| {
            let damaged = replayed.problems.iter().any(|p| p.path == segment.path);
            (segment.path.as_path(), opts.keep_history || damaged)
        });
    retire_segments(dir, retired, faults)?;
    Ok(CompactStats {
        segments_read: input.segments.len(),
        records_read: replayed.records,
        bytes_read: replayed.record_bytes,
        records_written: restated.count,
        bytes_written: restated.bytes,
        problems: replayed.problems,
        losses: restated.losses,
        ..CompactStats::default()
    })
}

/// Whether the log `index` reflects records `loss` already.
fn is_known(index: &Index, loss: &Loss) -> bool {
    index.losses().any(|known| known.same_loss(loss))
}

/// Whether `recorded` records the loss `found` amounts to.
fn same_loss(recorded: &Damage, found: &Damage) -> bool {
    match (Loss::of(recorded), Loss::of(found)) {
        (Some(a), Some(b)) => a.same_loss(&b),
        _ => false,
    }
}

/// A record of the sealed segments, as the damage scan sees it: checked as replay checks it
/// (its payload decodes), then forgotten.
struct Intact {
    seq: u64,
}

impl Decoded<'_> for Intact {
    fn decode(seq: u64, kind: u8, payload: &[u8]) -> Option<Intact> {
        StoredEvent::decode(kind, payload).map(|_| Intact { seq })
    }

    fn seq(&self) -> u64 {
        self.seq
    }
}

/// What [`restate`] wrote.
struct Restated {
    /// Frames written.
    count: u64,
    /// Their bytes, after the header.
    bytes: u64,
    /// Every loss the log records, as the damage it records.
    losses: Vec<Damage>,
}

/// Frames of restated events, gathered under the lock and written out after it.
struct Frames {
    encoder: PayloadEncoder,
    bytes: Vec<u8>,
    count: u64,
}

impl Frames {
    /// Adds `event`, written at `written_at`, with a provisional sequence number (0) and no
    /// checksum: the real numbers are known once every frame is written, and numbering them
    /// makes each frame's checksum (so none is computed twice, nor under the writers' lock).
    fn push(&mut self, written_at: i64, event: &StoredEvent<'_>) {
        let (kind, payload) = self.encoder.encode(event, written_at);
        encode_provisional_frame(kind, payload, &mut self.bytes);
        self.count += 1;
    }
}

/// Writes a header's room, then the live events of `db`'s index: its losses, every entry's
/// state (each event written at the entry's `touched`, so that replay gives it back), the local
/// seq. The entries are read from the last position down, [`BATCH`] per turn of the lock (see
/// the module documentation for why that order reads every id).
///
/// The losses of `in_tail` (those this compaction found, recorded after `S`) are left out:
/// the tail holds them, and every record restated takes one of the sequence numbers below
/// `S + 1`.
fn restate(
    file: &mut File,
    temp: &Path,
    db: &impl LiveDb,
    in_tail: &[Loss],
) -> Result<Restated, Error> {
    let mut out = BufWriter::with_capacity(1 << 20, file);
    // The header, once the sequence numbers are known.
    out.write_all(&[0; HEADER_LEN]).at(temp)?;
    let mut frames = Frames {
        encoder: PayloadEncoder::default(),
        bytes: Vec::with_capacity(BATCH * 256),
        count: 0,
    };
    let mut written = 0u64;
    let mut flush = |frames: &mut Frames, out: &mut BufWriter<&mut File>| {
        written += frames.bytes.len() as u64;
        let flushed = out.write_all(&frames.bytes).at(temp);
        frames.bytes.clear();
        flushed
    };
    let (losses, mut unread) = db.read_index(|index| {
        for (written_at, event) in index.live_losses() {
            let StoredEvent::Loss(loss) = event else {
                unreachable!("live_losses gives losses")
            };
            if !in_tail.iter().any(|new| new.same_loss(&loss)) {
                frames.push(written_at, &event);
            }
        }
        (index.recorded_damage().collect::<Vec<_>>(), index.ids())
    });
    flush(&mut frames, &mut out)?;
    while unread > 0 {
        db.read_index(|index| {
            // Removals since the last turn may have shortened the index: the entries past its
            // end moved into holes below, or were themselves removed.
            let to = unread.min(index.ids());
            let from = to.saturating_sub(BATCH);
            let mut events = Vec::new();
            for entry in &index.entries()[from..to] {
                events.clear();
                index.live_events(entry, &mut events);
                for event in &events {
                    frames.push(entry.touched, event);
                }
            }
            unread = from;
        });
        flush(&mut frames, &mut out)?;
    }
    db.read_index(|index| {
        if let Some((written_at, event)) = index.live_local_seq() {
            frames.push(written_at, &event);
        }
    });
    flush(&mut frames, &mut out)?;
    out.flush().at(temp)?;
    Ok(Restated {
        count: frames.count,
        bytes: written,
        losses,
    })
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::sync::Mutex;
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::event::Event;
    use crate::journal::format::decode_frame;
    use crate::{Node, NodeId, PeerState};

    type Tail = Vec<(Event, i64)>;

    /// An index that writers change before each turn of the compaction's reading: `tail`
    /// holds their events, in order, with their write times.
    struct Churning {
        /// The index, the writers' events with their write times, their random state.
        state: Mutex<(Index, Tail, u64)>,
        /// Events written before each turn.
        per_turn: usize,
    }

    fn id(n: u64) -> NodeId {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        bytes[63] = 0x5a;
        NodeId(bytes)
    }

    fn at(nanos: i64) -> std::time::SystemTime {
        UNIX_EPOCH + Duration::from_nanos(nanos as u64)
    }

    /// A pseudo-random event about one of 5,000 ids (xorshift: reproducible).
    fn event(rng: &mut u64, time: i64) -> Event {
        *rng ^= *rng << 13;
        *rng ^= *rng >> 7;
        *rng ^= *rng << 17;
        let r = *rng;
        let id = id(r % 5000);
        let ip = IpAddr::V4(Ipv4Addr::new(10, 0, (r >> 20) as u8 % 3, 1));
        match (r >> 12) % 10 {
            0 | 1 => Event::NodeDeleted { id },
            2 => Event::NodeUpdated(Node::new(id, ip, (r >> 30) as u16, 30303)),
            3 => Event::Ping { id, at: at(time) },
            4 => Event::Pong { id, at: at(time) },
            5 => Event::FindFails {
                id,
                fails: (r >> 40) as u32 % 3,
            },
            6 => Event::PongFrom {
                id,
                ip,
                at: at(time),
            },
            7 => Event::IpExpired { id, ip },
            8 => Event::LocalSeq { seq: r >> 8 },
            _ => Event::NodeExpired { id },
        }
    }

    impl LiveDb for Churning {
        fn read_index<T>(&self, read: impl FnOnce(&Index) -> T) -> T {
            let mut state = self.state.lock().unwrap();
            let (index, tail, rng) = &mut *state;
            for _ in 0..self.per_turn {
                let time = 1_000_000 + tail.len() as i64;
                let event = event(rng, time);
                index.apply_event(&event, at(time));
                tail.push((event, time));
            }
            read(index)
        }

        fn record_losses(&self, _: &[Damage]) -> Result<Vec<Damage>, Error> {
            unreachable!("restate records no loss")
        }

        fn sync_log(&self) -> Result<(), Error> {
            Ok(())
        }
    }

    /// Every id's state, in one order, its IP slots too. Without the ids that hold nothing
    /// (a fail count reset to 0, an IP slot expired): compaction writes no event for them,
    /// as it never did.
    fn states(index: &Index) -> Vec<PeerState> {
        let mut states: Vec<PeerState> = index
            .states()
            .filter(|s| {
                s.node.is_some()
                    || s.record.is_some()
                    || s.last_ping.is_some()
                    || s.last_pong.is_some()
                    || s.fails != 0
                    || !s.ips.is_empty()
            })
            .collect();
        for state in &mut states {
            state.ips.sort_by_key(|l| l.ip);
        }
        states.sort_by_key(|s| s.id.0);
        states
    }

    /// Fails on the first state that differs, naming it (not the thousands around it).
    fn same(replayed: &[PeerState], expected: &[PeerState], what: &str) {
        let differ = replayed.iter().zip(expected).find(|(r, e)| r != e);
        assert!(differ.is_none(), "{what}: {differ:#?}");
        assert_eq!(replayed.len(), expected.len(), "{what}: ids");
    }

    /// The argument of the module documentation, checked: the compacted segment written while
    /// writers delete (moving entries between turns), overwrite and add ids, followed by their
    /// events, replays to the state the index ends in; and without writers, to the very state
    /// it was read from.
    #[test]
    fn a_restatement_read_among_writers_followed_by_their_events_replays_to_the_same_state() {
        for per_turn in [0, 1, 7, 300] {
            let mut rng = 0x9e37_79b9_7f4a_7c15u64 ^ per_turn as u64;
            let mut index = Index::default();
            for time in 0..20_000 {
                index.apply_event(&event(&mut rng, time), at(time));
            }
            index.apply_event(
                &Event::Loss(
                    Loss {
                        kind: DamageKind::Damaged,
                        segment_id: 3,
                        offset: 64,
                        len: 8,
                        lost: Some((5, 5)),
                        acknowledged: false,
                    }
                    .damage(at(20_000)),
                ),
                at(20_000),
            );
            assert!(
                index.ids() > 2 * BATCH,
                "{} ids: several turns",
                index.ids()
            );
            let before = states(&index);
            let db = Churning {
                state: Mutex::new((index, Vec::new(), rng)),
                per_turn,
            };
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("restated");
            let mut file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .open(&path)
                .unwrap();
            let seed = salt_seed(77);
            let restated = restate(&mut file, &path, &db, &[]).unwrap();
            let end = HEADER_LEN as u64 + restated.bytes;
            let numbered = renumber_frames(&file, seed, 500_000, HEADER_LEN as u64, end);
            assert_eq!(numbered.unwrap(), restated.count);
            assert_eq!(restated.losses.len(), 1);

            let bytes = std::fs::read(&path).unwrap();
            let mut replayed = Index::default();
            let (mut offset, mut seq) = (HEADER_LEN, 500_000);
            while offset < bytes.len() {
                let frame = decode_frame(seed, &bytes[offset..]).expect("an intact frame");
                assert_eq!(frame.seq, seq);
                let (written_at, event) = StoredEvent::decode(frame.kind, frame.payload).unwrap();
                replayed.apply(&event, written_at);
                offset += frame.len;
                seq += 1;
            }
            assert_eq!(seq - 500_000, restated.count);
            let (index, tail, _) = db.state.into_inner().unwrap();
            if per_turn == 0 {
                same(&states(&replayed), &before, "no writers: the state read");
            }
            for (event, time) in &tail {
                replayed.apply_event(event, at(*time));
            }
            same(
                &states(&replayed),
                &states(&index),
                &format!("{per_turn} a turn"),
            );
            assert_eq!(replayed.local_seq(), index.local_seq());
            assert!(replayed.losses().eq(index.losses()));
        }
    }
}
