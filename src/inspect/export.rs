//! Every event of the log, in order, streamed.

use std::ops::ControlFlow;
use std::path::Path;

use std::cell::Cell;

use memmap2::Mmap;

use super::history::{history_sources, scan_sources};
use super::{archived_segments, resuming, retrying, InspectError, Progress, PROGRESS_EVERY};
use crate::event::Record;
use crate::journal::dir::{list_dir, Listing, SegmentFile};
use crate::journal::format::salt_seed;
use crate::journal::reader::{ScanItem, SegmentScanner};
use crate::journal::replay::{map_segment, replay_mapped_until, ReleaseBehind, ReplayPlan};
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
    mut on_record: impl FnMut(Record) -> ControlFlow<()>,
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
    replay_mapped_until(&plan, map, |place, record: Record| {
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
    for item in SegmentScanner::<Record>::new(map, salt_seed(segment.header.salt)) {
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
/// last one stopped, and only those up to the last sequence number the log held when the read
/// started, so that it ends beside a writer that keeps appending.
fn stream_resuming(
    dir: &Path,
    mut on_record: impl FnMut(Record) -> ControlFlow<()>,
    mut read: impl FnMut(
        Vec<SegmentFile>,
        &mut dyn FnMut(Record) -> ControlFlow<()>,
    ) -> Result<(), Error>,
) -> Result<(), InspectError> {
    let last_seq = Cell::new(0);
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
        let mut next = |record: Record| {
            if record.seq > end {
                return ControlFlow::Break(());
            }
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
