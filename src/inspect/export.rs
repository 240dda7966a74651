//! Every event of the log, in order, streamed.

use std::ops::ControlFlow;
use std::path::Path;

use super::history::{history_sources, may_restate, scan_sources, Accounting, Place};
use std::cell::Cell;

use memmap2::Mmap;

use super::{archived_segments, resuming, retrying, InspectError, Progress, PROGRESS_EVERY};
use crate::event::LogRecord;
use crate::journal::dir::{list_dir, Listing, SegmentFile};
use crate::journal::format::salt_seed;
use crate::journal::reader::{ScanItem, SegmentScanner};
use crate::journal::replay::{map_segment, replay_mapped_until, ReleaseBehind, ReplayPlan};
use crate::Error;

/// Every record of the live log of `dir`, in log order (what [`export_each`] hands over).
pub fn export(dir: &Path, progress: Progress<'_>) -> Result<Vec<LogRecord>, InspectError> {
    let mut records = Vec::new();
    export_each(dir, progress, |record| {
        records.push(record);
        ControlFlow::Continue(())
    })?;
    Ok(records)
}

/// Hands every record of the live log of `dir` to `on_record`, in log order, as it is read:
/// memory stays bounded whatever the size of the log. `on_record` may stop the read (its
/// output went away).
///
/// Beside a writer, the export is the log as it was when the export started: every record up
/// to the last sequence number the log held then, each once, and nothing written after. Every
/// live segment is mapped before the first record is handed over, so a compaction that
/// removes segments during the read changes nothing the export sees (a removed file stays
/// readable while it is mapped), and a writer appending as fast as it can does not keep the
/// export going.
pub fn export_each(
    dir: &Path,
    progress: Progress<'_>,
    mut on_record: impl FnMut(LogRecord) -> ControlFlow<()>,
) -> Result<(), InspectError> {
    // A segment removed between the listing and its mapping makes the snapshot start over.
    let (plan, maps, last) = retrying(dir, || {
        let listing = list_dir(dir, Listing::Strict)?;
        if listing.segments.is_empty() {
            return Ok(None);
        }
        let plan = ReplayPlan::new(listing.segments);
        let maps = plan
            .live
            .iter()
            .map(|s| map_segment(&s.path))
            .collect::<Result<Vec<_>, _>>()?;
        let last = last_seq(&plan.live, &maps)?;
        Ok(Some((plan, maps, last)))
    })?;
    let total: u64 = maps.iter().map(|m| m.len() as u64).sum();
    // Bytes of the segments before the current one, and the current one's id and length.
    let (mut done, mut count, mut current) = (0, 0u64, None);
    progress(0, total);
    let mut maps = maps.into_iter();
    let map = |segment: &SegmentFile| match maps.next() {
        Some(map) => Ok(map),
        None => map_segment(&segment.path),
    };
    replay_mapped_until(&plan, map, |place, record: LogRecord| {
        if record.seq > last {
            // Written after the export started (records come in sequence order).
            return ControlFlow::Break(());
        }
        let segment = place.segment;
        if current.map(|(id, _)| id) != Some(segment.header.segment_id) {
            done += current.map_or(0, |(_, len)| len);
            current = Some((segment.header.segment_id, segment.len));
        }
        count += 1;
        if count.is_multiple_of(PROGRESS_EVERY) {
            progress((done + place.offset).min(total), total);
        }
        on_record(record)
    })?;
    progress(total, total);
    Ok(())
}

/// The last sequence number the log of `live` (a replay plan's live segments, in order)
/// holds now, read from its last segment (mapped in `maps`, in the same order): its last
/// intact record, or the number before its first if it holds none yet.
fn last_seq(live: &[SegmentFile], maps: &[Mmap]) -> Result<u64, Error> {
    let (Some(segment), Some(map)) = (live.last(), maps.last()) else {
        return Ok(0);
    };
    let mut last = segment.header.first_seq.saturating_sub(1);
    let mut behind = ReleaseBehind::new(map);
    for item in SegmentScanner::<LogRecord>::new(map, salt_seed(segment.header.salt)) {
        if let ScanItem::Record { offset, record, .. } = item {
            behind.reached(offset);
            last = last.max(record.seq);
        }
    }
    Ok(last)
}

/// The last sequence number the live log of `dir` holds now (see [`last_seq`]).
fn last_seq_now(segments: &[SegmentFile]) -> Result<u64, Error> {
    let plan = ReplayPlan::new(segments.to_vec());
    let Some(segment) = plan.live.last() else {
        return Ok(0);
    };
    let map = map_segment(&segment.path)?;
    last_seq(std::slice::from_ref(segment), std::slice::from_ref(&map))
}

/// Every record of `dir`'s history, the live log and `archive/` (kept by compaction with
/// `keep_history`), handed to `on_record` as it is read, in the order of the history: the
/// full history that a compaction with `keep_history` keeps. A record restated by a compacted
/// segment is shown once, in its original form when the original is still kept (as
/// [`history`](super::history) shows it); where the archive does not hold every record a
/// compacted segment replaced (a compaction without `keep_history` that found damage keeps
/// only the damaged segment), the compacted segment's records come after the archived ones
/// they replaced, so that nothing the live log holds is left out. Deciding that takes a read
/// of the whole history before the one that hands records over, when the archive holds
/// records a compacted segment replaced (progress then counts both reads).
pub fn export_with_archive_each(
    dir: &Path,
    progress: Progress<'_>,
    on_record: impl FnMut(LogRecord) -> ControlFlow<()>,
) -> Result<(), InspectError> {
    stream_resuming(dir, on_record, |segments, next| {
        let mut sources = history_sources(segments, archived_segments(dir)?);
        let mut accounting = Accounting::default();
        let progress: &dyn Fn(u64, u64) = if may_restate(&sources) {
            scan_sources(
                &sources,
                &|done, total| progress(done, 2 * total),
                &mut accounting,
                |_, _, _| ControlFlow::Continue(()),
            )?;
            std::mem::take(&mut accounting).decide(&mut sources);
            &|done, total| progress(total + done, 2 * total)
        } else {
            progress
        };
        scan_sources(&sources, progress, &mut accounting, |record, source, _| {
            let source = &sources[source];
            match source.restates {
                true => ControlFlow::Continue(()),
                false => next(source.place(record.seq), record),
            }
        })
    })
}

/// Runs `read` on a fresh listing of `dir` (its segments), which hands records to `next` in
/// order of their place (a sequence number, or for a history's compacted segment where it
/// stands: see `history::Place`); `next` passes to `on_record` only those after the last one
/// handed over, so that a read that starts over (a concurrent compaction removed a segment)
/// goes on where the last one stopped, and only those up to the last sequence number the log
/// held when the read started, so that it ends beside a writer that keeps appending.
fn stream_resuming(
    dir: &Path,
    mut on_record: impl FnMut(LogRecord) -> ControlFlow<()>,
    mut read: impl FnMut(
        Vec<SegmentFile>,
        &mut dyn FnMut(Place, LogRecord) -> ControlFlow<()>,
    ) -> Result<(), Error>,
) -> Result<(), InspectError> {
    let last = Cell::new(None::<Place>);
    let handed = Cell::new(0);
    let end = Cell::new(None);
    let attempt = || {
        let listing = list_dir(dir, Listing::Strict)?;
        if listing.segments.is_empty() {
            return Ok(None);
        }
        let end = match end.get() {
            Some(end) => end,
            None => {
                let now = last_seq_now(&listing.segments)?;
                end.set(Some(now));
                now
            }
        };
        let mut next = |place: Place, record: LogRecord| {
            if record.seq > end {
                // Written after the read started (the live log's records come last).
                return ControlFlow::Break(());
            }
            if last.get().is_some_and(|last| place <= last) {
                return ControlFlow::Continue(());
            }
            last.set(Some(place));
            handed.set(handed.get() + 1);
            on_record(record)
        };
        read(listing.segments, &mut next).map(Some)
    };
    resuming(dir, attempt, || handed.get())
}
