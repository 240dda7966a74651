//! Compaction: rewriting the sealed part of the log as the live state it amounts to.
//!
//! The procedure, and what a crash after each step leaves:
//!
//! 1. Under the writer's lock, expired nodes are dropped (their expiry is logged) and the
//!    active segment is sealed: everything up to sequence number `S` is now in sealed
//!    segments, which nobody writes to again. Writers wait only for this step.
//! 2. Without the lock, the sealed segments are replayed into a private index. Each damaged
//!    or missing stretch found now is first recorded as a loss in the active segment
//!    (synced), so that it stays visible once its place is gone. Then the index's live events
//!    (`m` records: first the losses the segments record, carried over) are written to
//!    `<id>.seg.tmp`, under a header flagged *compacted* that says it replaces everything
//!    through `S`, with sequence numbers `S+1-m ..= S`.
//!    A crash here leaves a `.tmp` file, removed on the next open: the old state.
//! 3. The file is synced, renamed to `<id>.seg`, and the directory synced. From the rename on,
//!    replay takes the compacted segment instead of the segments it replaces (any still
//!    present are removed on open): the new state, which equals the old one.
//! 4. The replaced segments are removed (or moved to `archive/` with `keep_history`) and the
//!    directory synced.

use std::io::{BufWriter, Write};
use std::path::Path;

use crate::error::IoContext;
use crate::event::PayloadEncoder;
use crate::index::Index;
use crate::journal::dir::{publish, retire_segments, segment_file_name, SegmentFile, ARCHIVE_DIR};
use crate::journal::format::{
    encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, FORMAT_VERSION,
};
use crate::journal::replay::ReplayPlan;
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

/// Steps 2 to 4: writes the compacted segment and retires the input. Runs without the
/// writer's lock.
///
/// The losses found in the input that the log does not record yet are handed to
/// `record_losses` before anything is published or retired: it appends them to the active
/// segment, syncs it, and returns every loss the log then records (so that each problem reads
/// as recorded, with the time the log gives it). They could not go into the compacted segment,
/// whose sequence numbers are those of the input's live records (a loss has no record there to
/// take one from), and once the damaged place is retired they are its only trace.
pub(crate) fn rewrite(
    dir: &Path,
    input: CompactionInput,
    opts: &Options,
    record_losses: impl FnOnce(&[Damage]) -> Result<Vec<Damage>, Error>,
) -> Result<CompactStats, Error> {
    let faults = opts.faults();
    let plan = ReplayPlan::new(input.segments.clone());
    // The input segments are sealed: nobody writes them any more.
    let (state, mut replayed) = crate::recovery::rebuild_index(&plan)?;
    for problem in &mut replayed.problems {
        // Unreadable bytes at the end of the last input segment are no append in progress:
        // it is sealed, and the log goes on in the active segment.
        if problem.kind == DamageKind::TornTail {
            problem.kind = DamageKind::DamagedTail;
        }
    }
    let new_losses: Vec<Damage> = replayed
        .problems
        .iter()
        .filter(|problem| Loss::of(problem).is_some_and(|loss| !is_known(&state, &loss)))
        .cloned()
        .collect();
    let losses = record_losses(&new_losses)?;
    for problem in &mut replayed.problems {
        if let Some(recorded) = losses.iter().find(|l| same_loss(l, problem)) {
            problem.state = recorded.state;
        }
    }

    let seed = salt_seed(input.salt);
    // Made as they are written, not gathered first: for a large log, the events would take
    // more memory than the index they come from. Counted first, for the sequence numbers.
    let live = || {
        state
            .live_losses()
            .chain(state.entries().iter().flat_map(|entry| {
                let events = state.live_events(entry);
                events.into_iter().map(move |event| (entry.touched, event))
            }))
            .chain(state.live_local_seq())
    };
    let count = state.losses().count()
        + state
            .entries()
            .iter()
            .map(|entry| state.live_events(entry).len())
            .sum::<usize>()
        + usize::from(state.live_local_seq().is_some());
    // Each live event comes from a distinct replayed record, so the range never underflows.
    let first_seq = input.last_seq + 1 - count as u64;
    let header = SegmentHeader {
        format: FORMAT_VERSION,
        flags: FLAG_COMPACTED,
        protocol_version: input.protocol_version,
        salt: input.salt,
        segment_id: input.output_id,
        first_seq,
        replaces_through: input.last_seq,
    };
    let path = dir.join(segment_file_name(input.output_id));
    let mut stats = CompactStats {
        segments_read: input.segments.len(),
        records_read: replayed.records,
        bytes_read: replayed.record_bytes,
        records_written: count as u64,
        losses,
        ..CompactStats::default()
    };
    let bytes = publish(&path, "compact", faults, |file, temp| {
        let mut out = BufWriter::with_capacity(1 << 20, file);
        out.write_all(&header.encode()).at(temp)?;
        let (mut encoder, mut frame) = (PayloadEncoder::default(), Vec::new());
        let (mut bytes, mut written) = (0, 0);
        for (seq, (written_at, event)) in (first_seq..).zip(live()) {
            written += 1;
            let (kind, payload) = encoder.encode(&event, written_at);
            frame.clear();
            encode_frame(seed, seq, kind, payload, &mut frame);
            out.write_all(&frame).at(temp)?;
            bytes += frame.len() as u64;
        }
        // The same index, read twice: the same events.
        debug_assert_eq!(written, count, "live events counted and written");
        out.flush().at(temp)?;
        faults.check("compact.write").at(temp)?;
        Ok(bytes)
    })?;
    stats.bytes_written = bytes;
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
    stats.problems = replayed.problems;
    Ok(stats)
}

/// Whether the input's log records `loss` already.
fn is_known(state: &Index, loss: &Loss) -> bool {
    state.losses().any(|known| known.same_loss(loss))
}

/// Whether `recorded` records the loss `found` amounts to.
fn same_loss(recorded: &Damage, found: &Damage) -> bool {
    match (Loss::of(recorded), Loss::of(found)) {
        (Some(a), Some(b)) => a.same_loss(&b),
        _ => false,
    }
}
