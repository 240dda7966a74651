//! Every event of the log, in order, streamed.

use std::ops::ControlFlow;
use std::path::Path;

use super::history::{history_sources, scan_sources};
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
            next(record)
        })?;
        progress(total, total);
        Ok(())
    })
}

/// Every record of `dir`'s history, the live log and `archive/` (kept by compaction with
/// `keep_history`), in sequence order, handed to `on_record` as it is read: the full history
/// that a compaction with `keep_history` keeps. A record restated by a compacted segment is
/// shown once, in its original form when the original is still kept (as
/// [`history`](super::history) shows it).
pub fn export_with_archive_each(
    dir: &Path,
    progress: Progress<'_>,
    on_record: impl FnMut(Record) -> ControlFlow<()>,
) -> Result<(), InspectError> {
    stream_resuming(dir, on_record, |segments, next| {
        let mut sources = history_sources(segments, archived_segments(dir)?);
        sources.retain(|s| !s.restates);
        scan_sources(&sources, progress, |record, _, _| next(record))
    })
}

/// Runs `read` on a fresh listing of `dir` (its segments), which hands records to `next` in
/// sequence order; `next` passes to `on_record` only those after the last one handed over, so
/// that a read that starts over (a concurrent compaction removed a segment) goes on where the
/// last one stopped.
fn stream_resuming(
    dir: &Path,
    mut on_record: impl FnMut(Record) -> ControlFlow<()>,
    mut read: impl FnMut(
        Vec<SegmentFile>,
        &mut dyn FnMut(Record) -> ControlFlow<()>,
    ) -> Result<(), Error>,
) -> Result<(), InspectError> {
    let last_seq = Cell::new(0);
    let attempt = || {
        let listing = list_dir(dir, Listing::Strict)?;
        if listing.segments.is_empty() {
            return Ok(None);
        }
        let mut next = |record: Record| {
            if record.seq <= last_seq.get() {
                return ControlFlow::Continue(());
            }
            last_seq.set(record.seq);
            on_record(record)
        };
        read(listing.segments, &mut next).map(Some)
    };
    resuming(dir, attempt, || last_seq.get())
}
