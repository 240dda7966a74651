//! Reading one segment: intact records in order, damaged ranges skipped and reported, and
//! where the intact data ends.

use crate::journal::ahead::ChecksumsAhead;
use crate::journal::decoded::Decoded;
use crate::journal::format::{
    decode_frame_precheck, decode_frame_seeded, FrameHeader, FRAME_ALIGN, FRAME_HEADER_LEN,
    HEADER_LEN, MAX_FRAME_LEN,
};

/// What a scan of a segment finds, in file order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ScanItem<T> {
    /// An intact record at `offset`.
    Record {
        /// Offset of the frame in the file.
        offset: u64,
        /// Bytes the frame occupies.
        len: u64,
        /// The decoded record.
        record: T,
    },
    /// `len` bytes at `offset` that are not intact records, followed by an intact record.
    Damage {
        /// Offset of the first unreadable byte.
        offset: u64,
        /// Length of the unreadable range.
        len: u64,
    },
}

/// Where a segment's intact data ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ScanEnd {
    /// Offset just past the last intact record (the header's end if there is none): where the
    /// next append goes.
    pub valid_end: u64,
    /// Offset just past the last non-zero byte after `valid_end`, or `valid_end` itself when
    /// only zeros (a preallocated tail) follow. A larger value means a torn or damaged tail.
    pub garbage_end: u64,
}

impl ScanEnd {
    /// Whether unrecognisable bytes follow the last intact record.
    pub fn has_garbage(&self) -> bool {
        self.garbage_end > self.valid_end
    }
}

/// Decodes a payload that was copied out of the scanned bytes: only for types that own their
/// data.
type DecodeCopy<T> = fn(u64, u8, &[u8]) -> Option<T>;

/// Iterates over the records of one segment's bytes (header included).
///
/// Made with [`SegmentScanner::new`], the bytes may be a live file another process is
/// appending to: each frame is copied before it is checked, so a frame that changes under the
/// reader is either seen whole or rejected. [`SegmentScanner::new_exclusive`] reads frames in
/// place, for bytes nobody writes meanwhile.
pub struct SegmentScanner<'a, T> {
    data: &'a [u8],
    /// Checksum state after the salt, cloned for each frame.
    seeded: crc32fast::Hasher,
    pos: usize,
    valid_end: usize,
    end: Option<ScanEnd>,
    /// Set when frames are copied before they are checked (the file may change under us):
    /// decodes from the copy. Unset, frames are checked and decoded in place.
    decode_copy: Option<DecodeCopy<T>>,
    /// A helper checking the chain of frames' checksums ahead of the scan; dropped at the
    /// first frame that is not an intact record, where the scan leaves the chain.
    ahead: Option<&'a ChecksumsAhead>,
    /// Where the helper's stretch that this scan trusts starts: an offset the scan has been
    /// at, so that from there on both follow the same chain.
    trusted_from: usize,
    /// Where that stretch ended when last asked: frames of the chain below it are vouched for.
    vouched_to: usize,
    /// Frames checked here although a helper was there (for tests of the sharing).
    #[cfg(test)]
    pub checked_here: usize,
}

impl<'a, T: for<'b> Decoded<'b>> SegmentScanner<'a, T> {
    /// Scans `data`, whose first [`HEADER_LEN`] bytes are the (already checked) header, with the
    /// checksum seed of the segment's salt. Each frame is copied before it is checked, so
    /// `data` may be a live file another process appends to; the records own their data.
    pub fn new(data: &'a [u8], seed: u32) -> SegmentScanner<'a, T> {
        SegmentScanner {
            decode_copy: Some(|seq, kind, payload| T::decode(seq, kind, payload)),
            ..SegmentScanner::new_exclusive(data, seed)
        }
    }
}

impl<'a, T: Decoded<'a>> SegmentScanner<'a, T> {
    /// Like [`SegmentScanner::new`], for bytes nobody else writes while they are scanned (the
    /// caller holds the directory's lock, or the segment is sealed): frames are checked and
    /// decoded in place, without a copy, and records may borrow from `data`.
    pub fn new_exclusive(data: &'a [u8], seed: u32) -> SegmentScanner<'a, T> {
        SegmentScanner {
            data,
            seeded: crc32fast::Hasher::new_with_initial(seed),
            pos: HEADER_LEN,
            valid_end: HEADER_LEN,
            end: None,
            decode_copy: None,
            ahead: None,
            trusted_from: HEADER_LEN,
            vouched_to: 0,
            #[cfg(test)]
            checked_here: 0,
        }
    }

    /// Starts the scan at `offset` (a frame boundary past the header, where the records
    /// before it were accounted for elsewhere) instead of right after the header.
    pub(crate) fn starting_at(mut self, offset: usize) -> Self {
        let offset = offset.clamp(HEADER_LEN, self.data.len().max(HEADER_LEN));
        self.pos = offset;
        self.valid_end = offset;
        self.trusted_from = offset;
        self
    }

    /// Skips checking the checksums that `ahead`, run on `data` by another thread, has
    /// checked (see `journal::ahead`).
    pub(crate) fn with_checksums_ahead(mut self, ahead: &'a ChecksumsAhead) -> Self {
        assert!(self.decode_copy.is_none(), "only bytes nobody writes");
        self.ahead = Some(ahead);
        self
    }

    /// Where the intact data ends; known once the iterator has returned `None`.
    pub fn end(&self) -> Option<ScanEnd> {
        self.end
    }

    /// The intact record at `pos`, if there is one: its checksum matches and its payload decodes.
    #[inline]
    fn record_at(&self, pos: usize) -> Option<(T, usize)> {
        let available = &self.data[pos..];
        if let Some(decode) = self.decode_copy {
            // Copy the frame out first: its length is read once, and the checksum is verified
            // on the same bytes that are then decoded, even if the file changes meanwhile.
            let n = available
                .len()
                .min(FrameHeader::read(available)?.frame_len());
            let mut copy = [0u8; MAX_FRAME_LEN];
            copy[..n].copy_from_slice(&available[..n]);
            let frame = decode_frame_seeded(&self.seeded, &copy[..n])?;
            return Some((decode(frame.seq, frame.kind, frame.payload)?, frame.len));
        }
        let frame = decode_frame_seeded(&self.seeded, available)?;
        Some((T::decode(frame.seq, frame.kind, frame.payload)?, frame.len))
    }

    /// The record at `pos`, the next frame of the chain that starts after the header: like
    /// `record_at`, without computing the checksum (nor the deeper checks of the payload) if
    /// the helper has already checked it.
    #[inline]
    fn chain_record_at(&mut self, pos: usize) -> Option<(T, usize)> {
        if let Some(ahead) = self.ahead {
            if pos >= self.vouched_to {
                let (start, end) = ahead.vouched();
                // The helper leapt to `pos` (see journal::ahead): its chain is this scan's.
                if start == pos && start != self.trusted_from {
                    self.trusted_from = start;
                    ahead.scanner_trusts(start);
                }
                if start == self.trusted_from {
                    self.vouched_to = end;
                }
            }
            if pos < self.vouched_to {
                let frame = decode_frame_precheck(&self.data[pos..])?;
                let record = T::decode_vouched(frame.seq, frame.kind, frame.payload)?;
                return Some((record, frame.len));
            }
            // Caught up with the helper: it leaps ahead rather than check this frame too.
            ahead.scanner_checks(pos);
            #[cfg(test)]
            {
                self.checked_here += 1;
            }
        }
        self.record_at(pos)
    }

    /// The next aligned offset after `pos` holding an intact record.
    fn resync_after(&self, pos: usize) -> Option<usize> {
        (pos + FRAME_ALIGN..=self.data.len().saturating_sub(FRAME_HEADER_LEN))
            .step_by(FRAME_ALIGN)
            .find(|&candidate| self.record_at(candidate).is_some())
    }

    /// Ends the scan; `nonzero_after_pos` is [`nonzero_len`] of the bytes from `pos` on,
    /// which measures the garbage too when the intact data ends at `pos` (the usual end), so
    /// that the megabytes of zeros after the records are not read twice.
    fn finish(&mut self, nonzero_after_pos: usize) {
        let nonzero = if self.valid_end == self.pos {
            nonzero_after_pos
        } else {
            nonzero_len(&self.data[self.valid_end.min(self.data.len())..])
        };
        self.end = Some(ScanEnd {
            valid_end: self.valid_end as u64,
            garbage_end: (self.valid_end + nonzero) as u64,
        });
    }
}

impl<'a, T: Decoded<'a>> Iterator for SegmentScanner<'a, T> {
    type Item = ScanItem<T>;

    // Inlined, with everything but the intact-record case out of line: replay runs this
    // once per record.
    #[inline]
    fn next(&mut self) -> Option<ScanItem<T>> {
        if self.end.is_some() {
            return None;
        }
        if self.pos + FRAME_HEADER_LEN <= self.data.len() {
            if let Some((record, len)) = self.chain_record_at(self.pos) {
                return Some(self.take(record, len));
            }
        }
        self.damage_or_end()
    }
}

impl<'a, T: Decoded<'a>> SegmentScanner<'a, T> {
    /// What follows when no intact record starts at `pos`: the damaged range up to the next
    /// intact record, or the end of the scan.
    #[cold]
    fn damage_or_end(&mut self) -> Option<ScanItem<T>> {
        // Off the chain from here on: every frame is checked here, and the helper's work is
        // of no more use.
        if let Some(ahead) = self.ahead.take() {
            ahead.abandon();
        }
        // Zeros to the end are the unused, preallocated part of the segment.
        let tail = self.data.get(self.pos..).unwrap_or_default();
        let nonzero = nonzero_len(tail);
        if nonzero != 0 {
            if let Some(next) = self.resync_after(self.pos) {
                // In a live file, the frame at `pos` may have been an append in progress when
                // it was read, complete now that a record written after it is there: look
                // again before calling it damage.
                if self.decode_copy.is_some() {
                    // Pairs with the writer's fence: the frame at `next`, seen whole, was
                    // written after the one at `pos`.
                    std::sync::atomic::fence(std::sync::atomic::Ordering::Acquire);
                    if let Some((record, len)) = self.record_at(self.pos) {
                        return Some(self.take(record, len));
                    }
                }
                let damage = ScanItem::Damage {
                    offset: self.pos as u64,
                    len: (next - self.pos) as u64,
                };
                self.pos = next;
                return Some(damage);
            }
        }
        self.finish(nonzero);
        None
    }

    /// The intact record `record`, `len` bytes at `pos`: moves past it.
    #[inline]
    fn take(&mut self, record: T, len: usize) -> ScanItem<T> {
        let offset = self.pos;
        self.pos += len;
        self.valid_end = self.pos;
        ScanItem::Record {
            offset: offset as u64,
            len: len as u64,
            record,
        }
    }
}

/// The length of `bytes` up to its last non-zero byte (0 if every byte is zero). A segment
/// ends in its preallocated zeros, megabytes of them, which every replay reads through: tested
/// a block at a time (a fold without an early exit, which the compiler vectorises), not a byte
/// at a time.
fn nonzero_len(bytes: &[u8]) -> usize {
    const BLOCK: usize = 256;
    let mut end = bytes.len();
    for block in bytes.rchunks(BLOCK) {
        let start = end - block.len();
        if block.iter().fold(0, |any, &b| any | b) != 0 {
            return start + block.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        }
        end = start;
    }
    0
}

#[cfg(test)]
mod tests {
    use super::nonzero_len;

    /// Agrees with a byte-at-a-time search for every length around the block size and every
    /// place of the last non-zero byte, with other non-zero bytes before it or none.
    #[test]
    fn nonzero_len_finds_the_last_non_zero_byte() {
        let naive = |bytes: &[u8]| bytes.iter().rposition(|&b| b != 0).map_or(0, |i| i + 1);
        for len in 0..600 {
            let zeros = vec![0u8; len];
            assert_eq!(nonzero_len(&zeros), 0, "{len} zeros");
            for last in 0..len {
                for earlier in [None, Some(0), Some(last / 2)] {
                    let mut bytes = zeros.clone();
                    bytes[last] = 0x80;
                    if let Some(at) = earlier {
                        bytes[at] = 1;
                    }
                    assert_eq!(nonzero_len(&bytes), naive(&bytes), "len {len}, last {last}");
                }
            }
        }
    }
}
