//! Every event of the log, in order, streamed.

use std::ops::ControlFlow;
use std::path::Path;

use super::history::{history_sources, may_restate, scan_sources, Accounting, Place};
use std::cell::Cell;

use super::{archived_segments, resuming, InspectError, Progress, PROGRESS_EVERY};
use crate::event::Record;
use crate::journal::dir::{list_dir, Listing, SegmentFile};
use crate::journal::replay::{replay_until, ReplayPlan};
use crate::Error;

/// Every record of the live log of `dir`, in log order (what [`export_each`] hands over).
pub fn export(dir: &Path, progress: Progress<'_>) -> Result<Vec<Record>, InspectError> {
    let mut records = Vec::new();
    export_each(dir, progress, |record| {
        records.push(record);
        ControlFlow::Continue(())
    })?;
    Ok(records)
}

/// Hands every record of the live log of `dir` to `on_record`, in log order, as it is read:
/// memory stays bounded whatever the size of the log. `on_record` may stop the read (its
/// output went away). If a concurrent compaction removes a segment during the read, it starts
/// over from a fresh listing and goes on after the last sequence number handed over, so that
/// no record is handed over twice (records a compaction restated in between are then seen in
/// their restated form).
pub fn export_each(
    dir: &Path,
    progress: Progress<'_>,
    on_record: impl FnMut(Record) -> ControlFlow<()>,
) -> Result<(), InspectError> {
    stream_resuming(dir, on_record, |segments, next| {
        let plan = ReplayPlan::new(segments);
        let total: u64 = plan.live.iter().map(|s| s.len).sum();
        // Bytes of the segments before the current one, and the current one's id and length.
        let (mut done, mut count, mut current) = (0, 0u64, None);
        progress(0, total);
        replay_until(&plan, |place, record| {
            let segment = place.segment;
            if current.map(|(id, _)| id) != Some(segment.header.segment_id) {
                done += current.map_or(0, |(_, len)| len);
                current = Some((segment.header.segment_id, segment.len));
            }
            count += 1;
            if count.is_multiple_of(PROGRESS_EVERY) {
                progress((done + place.offset).min(total), total);
            }
            next((record.seq, false, record.seq), record)
        })?;
        progress(total, total);
        Ok(())
    })
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
    on_record: impl FnMut(Record) -> ControlFlow<()>,
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
/// goes on where the last one stopped.
fn stream_resuming(
    dir: &Path,
    mut on_record: impl FnMut(Record) -> ControlFlow<()>,
    mut read: impl FnMut(
        Vec<SegmentFile>,
        &mut dyn FnMut(Place, Record) -> ControlFlow<()>,
    ) -> Result<(), Error>,
) -> Result<(), InspectError> {
    let last = Cell::new(None::<Place>);
    let handed = Cell::new(0);
    let attempt = || {
        let listing = list_dir(dir, Listing::Strict)?;
        if listing.segments.is_empty() {
            return Ok(None);
        }
        let mut next = |place: Place, record: Record| {
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
