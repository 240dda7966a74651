//! Opening a database directory: refusing damaged segment headers, taking the lock, wiping on a
//! version change, replaying the log into an index and preparing the writer.

use std::path::{Path, PathBuf};

use crate::error::IoContext;
use crate::event::{IdsAhead, StoredRecord};
use crate::index::Index;
use crate::journal::dir::{
    create_private_dir, list_dir, remove_leftovers, remove_snapshot, retire_segments, wipe,
    Listing, SegmentFile,
};
use crate::journal::format::{FORMAT_VERSION, MAX_SEQ};
use crate::journal::replay::{replay_locked, ReplayPlan};
use crate::journal::writer::{Generation, LogWriter, Position};
use crate::journal::{DamageKind, ReplaySummary};
use crate::lock::DirLock;
use crate::snapshot::{self, Known};
use crate::{Error, Options};

/// A database directory, locked, replayed and ready for appends.
pub(crate) struct Opened {
    /// The directory, absolute.
    pub dir: PathBuf,
    pub lock: DirLock,
    pub writer: LogWriter,
    pub index: Index,
    pub summary: ReplaySummary,
    /// The index snapshot the index was rebuilt from, if one was used.
    pub snapshot: Option<Known>,
}

/// Creates `dir` (owner-only) if needed and checks that every segment header in it is readable.
fn prepare_dir(dir: &Path) -> Result<(), Error> {
    if dir.as_os_str().is_empty() {
        return Err(Error::invalid(
            "empty database path (use NodeDb::in_memory for a database without files)",
        ));
    }
    create_private_dir(dir)?;
    match list_dir(dir, Listing::Strict) {
        // A segment vanished while being listed: a live writer is compacting. Whether the
        // directory is ours is settled under the lock, which that writer holds.
        Err(Error::Io { source, .. }) if source.kind() == std::io::ErrorKind::NotFound => Ok(()),
        listed => listed.map(|_| ()),
    }
}

/// Removes segments that a finished compaction replaced (or archives them when history is kept).
fn retire_superseded(dir: &Path, plan: &ReplayPlan, opts: &Options) -> Result<(), Error> {
    if plan.superseded.is_empty() {
        return Ok(());
    }
    let retired = plan
        .superseded
        .iter()
        .map(|s| (s.path.as_path(), opts.keep_history));
    retire_segments(dir, retired, opts.faults())
}

/// About how many ids replaying the live segments of `plan` finds: what an index is presized
/// for, so that replay neither rehashes its id table nor grows its entries by copying (which,
/// for a moment, holds the old entries beside the new ones).
pub(crate) fn ids_expected(plan: &ReplayPlan) -> usize {
    let ids: u64 = plan
        .live
        .iter()
        .map(|segment| {
            // A compacted segment holds each id's state once: a node (record, ping, pong)
            // takes about 300 bytes, so presize for a little more ids than that gives. Other
            // segments hold history too: about twice that a node, presized for the middle,
            // so that a long history does not reserve far more than it needs.
            let bytes_per_id = if segment.header.is_compacted() {
                256
            } else {
                512
            };
            segment.len / bytes_per_id
        })
        .sum();
    // Capped: a damaged file's length must not make the open reserve without bound.
    ids.min(1 << 21) as usize
}

/// Replays the live segments of `plan` (which nobody writes to) into a new index.
pub(crate) fn rebuild_index(plan: &ReplayPlan) -> Result<(Index, ReplaySummary), Error> {
    let log_bytes: u64 = plan.live.iter().map(|s| s.len).sum();
    let new_index = || {
        let mut index = Index::with_capacity(ids_expected(plan));
        // Room for as many signed records and IP slots as the log could hold, so that
        // neither grows by copying during replay. Address space only: pages are touched as
        // they fill.
        index.reserve_for_log(log_bytes.min(1 << 32) as usize);
        index
    };
    // Made when the first record arrives rather than before the replay: making it faults in
    // its hash table (a millisecond for a log of 64 MiB), which then overlaps the start of
    // the checksum helper instead of delaying it.
    let mut index = None;
    let mut ids_ahead = IdsAhead::default();
    let summary = replay_locked::<StoredRecord>(plan, IdsAhead::FRAMES, |_, record, upcoming| {
        let index = index.get_or_insert_with(new_index);
        if let Some(id) = ids_ahead.new_id(upcoming) {
            index.prefetch(id);
        }
        index.apply_record(&record)
    })?;
    Ok((index.unwrap_or_else(new_index), summary))
}

pub(crate) fn open_dir(dir: &Path, version: u64, opts: &Options) -> Result<Opened, Error> {
    opts.validate()?;
    prepare_dir(dir)?;
    // Absolute from here on: a later change of the working directory must not point the
    // writer at another folder.
    let dir = &dir.canonicalize().at(dir)?;
    let lock = DirLock::acquire(dir)?;
    // Listed again under the lock: the directory may have changed since the first look.
    let mut listing = list_dir(dir, Listing::Strict)?;
    remove_leftovers(dir, &listing.leftovers)?;
    if let Some(other) = listing
        .segments
        .iter()
        .find(|s| s.header.protocol_version != version)
    {
        if !opts.wipe_on_version_change {
            return Err(Error::VersionMismatch {
                dir: dir.clone(),
                found: other.header.protocol_version,
                given: version,
            });
        }
        ::log::info!(
            "{}: protocol version changed to {version}; starting empty",
            dir.display()
        );
        wipe(dir, &listing.segments)?;
        listing.segments.clear();
    }
    // New segments get ids above every file name and header id in the directory.
    let max_id = listing
        .segments
        .iter()
        .map(|s| s.header.segment_id.max(s.file_id))
        .max()
        .unwrap_or(0);
    let plan = ReplayPlan::new(listing.segments);
    retire_superseded(dir, &plan, opts)?;

    let loaded = opts
        .index_snapshot
        .then(|| snapshot::load(dir, &plan, version))
        .flatten();
    if loaded.is_none() {
        // A snapshot this open does not use goes: the log it describes is about to move on
        // (and with `index_snapshot` off, nothing would replace it).
        if let Err(e) = remove_snapshot(dir) {
            ::log::warn!("{e}");
        }
    }
    let (index, summary, snapshot) = match loaded {
        Some((index, summary, known)) => (index, summary, Some(known)),
        None => {
            let (index, summary) = rebuild_index(&plan)?;
            (index, summary, None)
        }
    };
    for problem in &summary.problems {
        match problem.kind {
            DamageKind::TornTail => {
                ::log::info!("recovered from an interrupted append: {problem}")
            }
            _ => ::log::warn!("{problem}"),
        }
    }
    let resume_on = |last: &SegmentFile, next_seq: u64| -> Result<LogWriter, Error> {
        let end = summary.last_end.expect("the last segment was scanned");
        let generation = Generation {
            protocol_version: version,
            salt: last.header.salt,
        };
        let at = Position {
            segment_id: last.header.segment_id,
            valid_end: end.valid_end,
            next_seq,
        };
        let mut writer = LogWriter::resume(
            dir,
            generation,
            &last.path,
            at,
            opts.segment_size,
            opts.faults().clone(),
        )?;
        writer.skip_segment_ids_through(max_id);
        writer.zero_tail(end.valid_end, end.garbage_end);
        Ok(writer)
    };
    let create = |salt: u64, first_seq: u64| {
        let generation = Generation {
            protocol_version: version,
            salt,
        };
        LogWriter::create(
            dir,
            generation,
            max_id + 1,
            first_seq,
            opts.segment_size,
            opts.faults().clone(),
        )
    };
    let writer = match plan.live.last() {
        Some(last) if !last.header.is_compacted() => {
            let mut writer = resume_on(last, summary.next_seq.max(last.header.first_seq))?;
            if last.header.format < FORMAT_VERSION {
                // Written by an older peerlog: sealed as it is (its torn tail zeroed above),
                // so that records of newer kinds only ever go into a segment of this format.
                writer.start_new_segment()?;
            }
            writer
        }
        Some(last) => {
            let next_seq = summary.next_seq.max(last.header.replaces_through + 1);
            if next_seq > MAX_SEQ {
                // No sequence number left for a new segment's header (only a forged log gets
                // here): stay on the last one, whose writer refuses appends.
                resume_on(last, next_seq)?
            } else {
                create(last.header.salt, next_seq)?
            }
        }
        None => create(rand::random(), 1)?,
    };
    Ok(Opened {
        dir: dir.clone(),
        lock,
        writer,
        index,
        summary,
        snapshot,
    })
}
