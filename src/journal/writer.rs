//! Appending to the log: framing records into the active segment through a shared memory map
//! of a preallocated file, rotating to a new segment when it is full.
//!
//! A store into a `MAP_SHARED` mapping is in the kernel's page cache the moment it is made, so
//! an appended record survives a crash of the process without a system call. The file is
//! preallocated (`fallocate`, or zeros written where the file system lacks it: see
//! `dir::preallocate`), so a store can never hit a full disk and fault; its unused tail is
//! zeros, which readers take as the end of the log.

use std::fs::{File, OpenOptions};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::{MmapMut, MmapOptions};

use crate::error::IoContext;
use crate::faults::FailPoints;
use crate::journal::dir::{create_segment, preallocate, PREALLOCATION_STEP};
use crate::journal::format::{
    encode_frame, salt_seed, SegmentHeader, FORMAT_VERSION, HEADER_LEN, MAX_FRAME_LEN, MAX_SEQ,
};
use crate::Error;

/// The identity shared by every segment of one database generation.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Generation {
    pub protocol_version: u64,
    pub salt: u64,
}

/// Where appending continues.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Position {
    pub segment_id: u64,
    /// Offset just past the last intact record.
    pub valid_end: u64,
    pub next_seq: u64,
}

/// The segment records are appended to.
struct ActiveSegment {
    id: u64,
    path: PathBuf,
    file: Arc<File>,
    /// Maps the whole capacity of the segment; only `allocated` bytes are backed by the file.
    map: MmapMut,
    /// The file's length: bytes preallocated so far.
    allocated: usize,
    /// Offset the next frame goes to.
    pos: usize,
    /// Bytes from the start whose writeback was started (see [`ActiveSegment::reserve`]).
    written_back: usize,
}

impl ActiveSegment {
    fn open(id: u64, path: PathBuf, capacity: u64, pos: usize) -> Result<ActiveSegment, Error> {
        let (file, map, allocated) = map_for_append(&path, capacity)?;
        Ok(ActiveSegment {
            id,
            path,
            file,
            map,
            allocated,
            pos,
            written_back: 0,
        })
    }

    /// Whether `len` more bytes fit in the segment's capacity.
    fn fits(&self, len: usize) -> bool {
        self.pos + len <= self.map.len()
    }

    /// Makes sure the file backs `len` bytes from `pos`, preallocating the next step if not
    /// (fail point `log.allocate`).
    fn reserve(&mut self, len: usize, faults: &FailPoints) -> Result<(), Error> {
        let needed = self.pos + len;
        if needed > self.allocated {
            let step = self.allocated + PREALLOCATION_STEP as usize;
            let target = needed.max(step).min(self.map.len());
            preallocate(&self.file, target as u64, "log.allocate", faults).at(&self.path)?;
            self.allocated = target;
            self.start_writeback();
        }
        Ok(())
    }

    /// Starts writing back the pages filled so far (every whole page before `pos`: frames
    /// are never written again once appended), without waiting for it, as each step of the
    /// file is preallocated. The `fdatasync` that seals a full segment then finds most of its
    /// pages written already, instead of writing the whole segment (64 MiB by default)
    /// while every writer waits for it. Nothing is promised about these pages until a sync
    /// returns: this only starts what the kernel's flusher would start later anyway.
    ///
    /// An error of this writeback is not lost: `sync_file_range` without its wait flags
    /// neither waits for the writes nor consumes their error, which the next `fdatasync` of
    /// the file reports (and which poisons the writer as any failed sync does).
    fn start_writeback(&mut self) {
        #[cfg(target_os = "linux")]
        {
            use std::os::fd::AsRawFd;
            const PAGE: usize = 4096;
            let end = self.pos / PAGE * PAGE;
            if end > self.written_back {
                // SAFETY: sync_file_range reads no memory of this process: it asks the kernel
                // to start writing back a byte range of the open file `self.file`, which
                // outlives the call. Its result is only a hint's (see above), so ignored.
                unsafe {
                    libc::sync_file_range(
                        self.file.as_raw_fd(),
                        self.written_back as libc::off64_t,
                        (end - self.written_back) as libc::off64_t,
                        libc::SYNC_FILE_RANGE_WRITE,
                    );
                }
                self.written_back = end;
            }
        }
    }
}

pub(crate) struct LogWriter {
    dir: PathBuf,
    generation: Generation,
    seed: u32,
    segment: ActiveSegment,
    /// Id the next new segment gets (above every id in the directory).
    next_segment_id: u64,
    next_seq: u64,
    segment_size: u64,
    faults: FailPoints,
    /// Set when an fsync failed: retrying one can report success for data that was lost, so
    /// the writer refuses everything after it.
    failed_sync: Option<String>,
    frame: Vec<u8>,
}

/// Makes the records stored into a segment durable (its `log.fsync` step). Used by the writer
/// and, outside the writer's lock, by the group-commit syncer.
pub(crate) fn sync_segment(file: &File, path: &Path, faults: &FailPoints) -> Result<(), Error> {
    faults
        .check("log.fsync")
        .and_then(|()| file.sync_data())
        .at(path)
}

/// Maps `capacity` bytes (at least the file's length) of a segment for appending. Only the
/// file's current length is backed; `ActiveSegment::reserve` extends it before any store
/// beyond it.
fn map_for_append(path: &Path, capacity: u64) -> Result<(Arc<File>, MmapMut, usize), Error> {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .at(path)?;
    let allocated = file.metadata().at(path)?.len();
    let capacity = capacity.max(allocated);
    // SAFETY: this process holds the directory's exclusive lock, so no other process writes
    // or resizes the file, and peerlog never shrinks a segment. Stores go only below the
    // file's allocated length (`ActiveSegment::reserve` extends it first), so no access
    // touches a page past the end of the file, which would raise SIGBUS.
    let map = unsafe { MmapOptions::new().len(capacity as usize).map_mut(&file) }.at(path)?;
    Ok((Arc::new(file), map, allocated as usize))
}

impl LogWriter {
    /// Starts a new log: the first segment, sequence numbers from `first_seq`.
    pub fn create(
        dir: &Path,
        generation: Generation,
        segment_id: u64,
        first_seq: u64,
        segment_size: u64,
        faults: FailPoints,
    ) -> Result<LogWriter, Error> {
        let header = SegmentHeader {
            format: FORMAT_VERSION,
            flags: 0,
            protocol_version: generation.protocol_version,
            salt: generation.salt,
            segment_id,
            first_seq,
            replaces_through: 0,
        };
        let path = create_segment(dir, &header, segment_size, &faults)?;
        let position = Position {
            segment_id,
            valid_end: HEADER_LEN as u64,
            next_seq: first_seq,
        };
        Self::resume(dir, generation, &path, position, segment_size, faults)
    }

    /// Continues appending to an existing segment where its intact records end.
    pub fn resume(
        dir: &Path,
        generation: Generation,
        path: &Path,
        at: Position,
        segment_size: u64,
        faults: FailPoints,
    ) -> Result<LogWriter, Error> {
        let Position {
            segment_id,
            valid_end,
            next_seq,
        } = at;
        let segment = ActiveSegment::open(
            segment_id,
            path.to_path_buf(),
            segment_size,
            valid_end as usize,
        )?;
        Ok(LogWriter {
            dir: dir.to_path_buf(),
            generation,
            seed: salt_seed(generation.salt),
            segment,
            next_segment_id: segment_id + 1,
            next_seq,
            segment_size,
            faults,
            failed_sync: None,
            frame: Vec::with_capacity(MAX_FRAME_LEN),
        })
    }

    /// Zeroes `[from, to)` of the active segment: cuts a torn tail back so that no stale
    /// bytes follow the records appended next. Idempotent, so a crash while doing it recovers
    /// the same way.
    pub fn zero_tail(&mut self, from: u64, to: u64) {
        let to = (to as usize).min(self.segment.allocated);
        if (from as usize) < to {
            self.segment.map[from as usize..to].fill(0);
        }
    }

    /// The sequence number of the next record.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// Makes sure new segments get ids above `id`.
    pub fn skip_segment_ids_through(&mut self, id: u64) {
        self.next_segment_id = self.next_segment_id.max(id + 1);
    }

    /// The id the next segment (or compaction output) gets; not taken.
    pub fn next_segment_id(&self) -> u64 {
        self.next_segment_id
    }

    /// Takes a fresh segment id (for a compaction's output).
    pub fn reserve_segment_id(&mut self) -> u64 {
        self.next_segment_id += 1;
        self.next_segment_id - 1
    }

    /// The generation's protocol version and salt.
    pub fn generation(&self) -> (u64, u64) {
        (self.generation.protocol_version, self.generation.salt)
    }

    /// Path of the segment being appended to.
    pub fn active_path(&self) -> &Path {
        &self.segment.path
    }

    /// Seals the active segment if it holds any record, so that everything written so far
    /// is in sealed segments.
    pub fn seal_active(&mut self) -> Result<(), Error> {
        self.check_not_poisoned()?;
        if self.segment.pos > HEADER_LEN {
            self.rotate()?;
        }
        Ok(())
    }

    /// Seals the active segment, even an empty one, and starts the next.
    pub fn start_new_segment(&mut self) -> Result<(), Error> {
        self.check_not_poisoned()?;
        self.rotate()
    }

    /// Where the next record goes: the active segment, the end of its records, the next
    /// sequence number.
    pub fn position(&self) -> Position {
        Position {
            segment_id: self.segment.id,
            valid_end: self.segment.pos as u64,
            next_seq: self.next_seq,
        }
    }

    /// Id of the segment being appended to.
    pub fn active_segment_id(&self) -> u64 {
        self.segment.id
    }

    /// The active segment's file, for a syncer that runs outside the writer's lock.
    pub fn active_file(&self) -> Arc<File> {
        Arc::clone(&self.segment.file)
    }

    /// Frames and appends one record: a kind byte and a payload (opaque here, of a length
    /// within the format's bounds); returns the frame's length in bytes. When this returns,
    /// the record is in the page cache: a crash of the process no longer loses it.
    pub fn append(&mut self, kind: u8, payload: &[u8]) -> Result<u64, Error> {
        self.append_all(&[(kind, payload)])
    }

    /// Frames and appends `records` (kind bytes and payloads, as for [`LogWriter::append`])
    /// back to back, numbered in order, in one store: all of them or, on an error, none.
    /// Returns the bytes of their frames. One pass over the writer's checks, one
    /// reservation of log space and one copy, for a write that logs an eviction with it.
    pub fn append_all(&mut self, records: &[(u8, &[u8])]) -> Result<u64, Error> {
        self.check_not_poisoned()?;
        let count = records.len() as u64;
        // Every record's number must be within the format's limit, the last one included.
        if count > 1 && self.next_seq.saturating_add(count - 1) > MAX_SEQ {
            return Err(self.seq_exhausted());
        }
        self.check_seq_left()?;
        self.frame.clear();
        for (seq, (kind, payload)) in (self.next_seq..).zip(records) {
            encode_frame(self.seed, seq, *kind, payload, &mut self.frame);
        }
        if !self.segment.fits(self.frame.len()) {
            // An empty segment (at least MIN_SEGMENT_SIZE) holds a few frames of the
            // largest size.
            self.rotate()?;
        }
        self.segment.reserve(self.frame.len(), &self.faults)?;
        let pos = self.segment.pos;
        // Frames become visible to readers of the file in the order they are written: a
        // reader that sees this frame whole and then reads an earlier one again sees that one
        // whole too (see SegmentScanner's retry). Free on x86, a barrier on weaker CPUs.
        std::sync::atomic::fence(std::sync::atomic::Ordering::Release);
        self.segment.map[pos..pos + self.frame.len()].copy_from_slice(&self.frame);
        self.segment.pos += self.frame.len();
        self.next_seq += count;
        Ok(self.frame.len() as u64)
    }

    /// Seals the active segment (synced, so that sync() need only cover the active one) and
    /// starts the next.
    fn rotate(&mut self) -> Result<(), Error> {
        self.check_seq_left()?;
        self.sync()?;
        let id = self.reserve_segment_id();
        let header = SegmentHeader {
            format: FORMAT_VERSION,
            flags: 0,
            protocol_version: self.generation.protocol_version,
            salt: self.generation.salt,
            segment_id: id,
            first_seq: self.next_seq,
            replaces_through: 0,
        };
        let path = create_segment(&self.dir, &header, self.segment_size, &self.faults)?;
        self.segment = ActiveSegment::open(id, path, self.segment_size, HEADER_LEN)?;
        Ok(())
    }

    /// Makes every appended record durable on stable storage. A failure poisons the writer.
    pub fn sync(&mut self) -> Result<(), Error> {
        self.check_not_poisoned()?;
        let result = sync_segment(&self.segment.file, &self.segment.path, &self.faults);
        if let Err(e) = &result {
            self.failed_sync = Some(e.to_string());
        }
        result
    }

    /// Why the writer refuses writes, if an fsync failed.
    pub fn failed_sync(&self) -> Option<&str> {
        self.failed_sync.as_deref()
    }

    /// Only a forged log runs out of sequence numbers (2^63 records): a record, or a segment
    /// header, numbered past the limit would be taken as damage by the next open, so the
    /// writer refuses it rather than acknowledge it.
    fn check_seq_left(&self) -> Result<(), Error> {
        if self.next_seq <= MAX_SEQ {
            return Ok(());
        }
        Err(self.seq_exhausted())
    }

    /// The error of a write past the last sequence number.
    fn seq_exhausted(&self) -> Error {
        Error::Corrupt {
            path: self.segment.path.clone(),
            offset: self.segment.pos as u64,
            reason: format!("sequence numbers exhausted: the log already holds {MAX_SEQ}"),
        }
    }

    fn check_not_poisoned(&self) -> Result<(), Error> {
        match &self.failed_sync {
            Some(reason) => Err(Error::Poisoned(reason.clone())),
            None => Ok(()),
        }
    }
}
