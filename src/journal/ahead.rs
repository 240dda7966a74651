//! Checking a segment's checksums on a second core while replay decodes and indexes.
//!
//! A segment's records form a chain: the first starts right after the header, each next one
//! right after the previous one's frame. A helper thread walks that chain checking every
//! frame (bounds, structure and CRC-32, exactly as the scanner does, and the payload checks
//! that decoding leaves to it: [`Decoded::passes_deep_checks`], a signed record's RLP parses) and publishes the stretch it has
//! checked; the scanner, following the same chain through the same immutable bytes, only
//! decodes the frames the helper has vouched for, and checks the others itself.
//!
//! The two split the work rather than repeat it. When the scanner catches up with the helper
//! (it checks a frame itself), the helper does not go on checking frames the scanner is
//! checking too: it leaps [`LEAP`] bytes ahead of it, finds the next intact frame there, and
//! checks on from there, while the scanner checks the frames in between.
//! A stretch starting where the helper landed is only trusted once the scanner, following the
//! chain itself, arrives at exactly that offset: from there on the two walk the same chain.
//! If damage made the helper land off the chain, the scanner never arrives there and checks
//! everything itself, as it does without a helper. At the first frame that fails the helper
//! stops; from the scanner's first failing frame on (damage, a torn tail, the zeros after the
//! last record) the scanner checks everything itself.
//!
//! Only for bytes nobody writes while they are read (a locked open, a sealed segment).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};

use crate::journal::decoded::Decoded;
use crate::journal::format::{
    align, decode_frame_seeded, FrameHeader, FRAME_ALIGN, FRAME_HEADER_LEN, HEADER_LEN,
    MAX_FRAME_LEN,
};

/// Frames the helper checks between two publications of its progress (and two looks at
/// where the scanner is), at most.
const PUBLISH_EVERY: usize = 64;

/// How far past the scanner the helper starts again when the scanner has caught up with it,
/// in bytes, at most: about 1,500 frames, which the scanner checks itself meanwhile.
const LEAP: usize = 256 << 10;

/// How far the helper has checked a segment's chain of frames.
pub(crate) struct ChecksumsAhead {
    /// The stretch the helper has checked, `start` and `end` packed in one word (see
    /// [`pack`]) so that the scanner reads a consistent pair: every frame of the chain that
    /// starts at `start` and begins below `end` is intact, and its payload passes the
    /// [`Decoded::passes_deep_checks`] of the records the scan decodes. A claim stays true once made (the bytes never
    /// change), so a stale one is still right, only shorter.
    vouched: AtomicU64,
    /// Where the scanner last checked a frame itself: it had caught up with the helper, or
    /// does not trust its stretch.
    scanner_at: AtomicUsize,
    /// The start of the stretch the scanner trusts: the last place where it found the
    /// helper's chain to be its own.
    scanner_trusts: AtomicUsize,
    /// The scanner needs no more: the helper may stop early.
    abandoned: AtomicBool,
    /// Where the scanner has released the pages of the segment up to (see
    /// [`ChecksumsAhead::scanner_released`]), and how far past it the helper may read: every
    /// page the helper reads stays resident until the scanner releases it.
    released: AtomicUsize,
    max_lead: usize,
    /// Frames per publication, and bytes per leap.
    batch: usize,
    leap: usize,
}

/// Packs a stretch of a segment into one word: offsets are multiples of [`FRAME_ALIGN`], so
/// 32 bits of each cover segments up to 32 GiB (see [`ChecksumsAhead::covers`]).
fn pack(start: usize, end: usize) -> u64 {
    debug_assert!(
        start.is_multiple_of(FRAME_ALIGN)
            && end.is_multiple_of(FRAME_ALIGN)
            && ChecksumsAhead::covers(end)
    );
    let unit = |offset: usize| (offset / FRAME_ALIGN) as u64;
    unit(start) << 32 | unit(end)
}

fn unpack(word: u64) -> (usize, usize) {
    let offset = |units: u64| (units & u64::from(u32::MAX)) as usize * FRAME_ALIGN;
    (offset(word >> 32), offset(word))
}

impl ChecksumsAhead {
    /// A helper for a segment of `len` bytes: on a small one (tests and fuzzing replay
    /// segments of a few KiB with a helper), it publishes and leaps in proportionally smaller
    /// steps, so that the sharing of the work is exercised there too.
    pub fn for_segment(len: usize) -> ChecksumsAhead {
        let batch = (len >> 12).clamp(2, PUBLISH_EVERY);
        let leap = align((len >> 4).clamp(FRAME_ALIGN, LEAP));
        ChecksumsAhead::with_steps(batch, leap)
    }

    fn with_steps(batch: usize, leap: usize) -> ChecksumsAhead {
        ChecksumsAhead {
            vouched: AtomicU64::new(pack(HEADER_LEN, HEADER_LEN)),
            scanner_at: AtomicUsize::new(0),
            scanner_trusts: AtomicUsize::new(HEADER_LEN),
            abandoned: AtomicBool::new(false),
            released: AtomicUsize::new(0),
            max_lead: usize::MAX,
            batch,
            leap,
        }
    }

    /// Keeps the helper at most `bytes` past where the scanner has released the segment's
    /// pages (a scan that releases them behind it says so with
    /// [`ChecksumsAhead::scanner_released`]): so that a segment of hundreds of MiB does not
    /// become resident between the two, the helper being faster than the scan.
    pub fn with_max_lead(mut self, bytes: usize) -> ChecksumsAhead {
        self.max_lead = bytes;
        self
    }

    /// Whether a helper can check a segment of `len` bytes: its offsets must fit [`pack`].
    pub fn covers(len: usize) -> bool {
        len / FRAME_ALIGN <= u32::MAX as usize
    }

    /// The helper's work: checks the chain of frames of `data` (a whole segment, header
    /// included, of a length [`ChecksumsAhead::covers`]) with the segment's seeded checksum
    /// state, and their payloads as records of type `T` (the type the scan decodes), leaping
    /// ahead of the scanner whenever it catches up, until a frame fails or the scanner
    /// abandons it.
    pub fn check<'m, T: Decoded<'m>>(&self, data: &'m [u8], seeded: &crc32fast::Hasher) {
        self.check_from::<T>(data, seeded, HEADER_LEN);
    }

    /// [`ChecksumsAhead::check`] starting at `start` (as after a leap to there).
    fn check_from<'m, T: Decoded<'m>>(
        &self,
        data: &'m [u8],
        seeded: &crc32fast::Hasher,
        start: usize,
    ) {
        let (mut start, mut pos) = (start, start);
        'chain: while !self.abandoned.load(Ordering::Relaxed) {
            for _ in 0..self.batch {
                match data
                    .get(pos..)
                    .and_then(|rest| decode_frame_seeded(seeded, rest))
                {
                    Some(frame) if T::passes_deep_checks(frame.kind, frame.payload) => {
                        pos += frame.len
                    }
                    _ => break 'chain,
                }
            }
            self.vouched.store(pack(start, pos), Ordering::Release);
            self.wait_for_release(pos);
            let scanner = self.scanner_at.load(Ordering::Acquire);
            // The scanner is checking the frames this helper would check next, or it passed
            // the place the helper leapt to before the helper said so, and cannot trust it.
            let caught_up = scanner >= pos;
            let missed = scanner >= start && self.scanner_trusts.load(Ordering::Relaxed) != start;
            if caught_up || missed {
                match leap(data, seeded, scanner, self.leap) {
                    Some(landing) => (start, pos) = (landing, landing),
                    // Damage or the end of the records within reach: nothing left to share.
                    None => break,
                }
            }
        }
        self.vouched.store(pack(start, pos), Ordering::Release);
    }

    /// Waits, as the helper, until the scanner has released the pages up to `max_lead`
    /// bytes before `pos`, or abandoned the helper. The scanner never waits for the helper
    /// (it checks frames itself where the helper has not), so this cannot stall it.
    fn wait_for_release(&self, pos: usize) {
        while pos.saturating_sub(self.max_lead) > self.released.load(Ordering::Relaxed)
            && !self.abandoned.load(Ordering::Relaxed)
        {
            // The scan takes well over this to read the megabytes the helper is ahead.
            std::thread::sleep(std::time::Duration::from_micros(200));
        }
    }

    /// The scanner has released the segment's pages before `offset`.
    pub fn scanner_released(&self, offset: usize) {
        self.released.store(offset, Ordering::Relaxed);
    }

    /// Tells the helper to stop.
    pub fn abandon(&self) {
        self.abandoned.store(true, Ordering::Relaxed);
    }

    /// A guard that tells the helper to stop when it is dropped.
    pub fn abandon_on_drop(&self) -> impl Drop + '_ {
        struct Abandon<'a>(&'a ChecksumsAhead);
        impl Drop for Abandon<'_> {
            fn drop(&mut self) {
                self.0.abandon();
            }
        }
        Abandon(self)
    }

    /// The stretch checked so far, `(start, end)`: every frame of the chain that starts at
    /// `start` and begins below `end` is intact.
    pub fn vouched(&self) -> (usize, usize) {
        unpack(self.vouched.load(Ordering::Acquire))
    }

    /// The scanner is checking the frame at `pos` itself.
    pub fn scanner_checks(&self, pos: usize) {
        // Release: a helper that sees this sees the trust given before it.
        self.scanner_at.store(pos, Ordering::Release);
    }

    /// The scanner, at `start`, found the helper's stretch to start there: it trusts it.
    pub fn scanner_trusts(&self, start: usize) {
        self.scanner_trusts.store(start, Ordering::Relaxed);
    }
}

/// The first intact frame at least `distance` bytes past `from`: found the way the scanner
/// finds the next record after damage, by trying each aligned offset. Within the records,
/// one starts at most [`MAX_FRAME_LEN`] bytes on; `None` if none does (the end of the records,
/// or damage). Walking the frames' lengths there instead would wait on one cache miss after
/// the other.
///
/// The frame found starts a chain of its own, which is the scanner's only if the scanner
/// arrives at that very offset: the scanner checks that before it trusts anything found from
/// there (a frame lying inside another one's payload, a 2^-32 chance for bytes a remote peer
/// chose, since they cannot know the salt, would never be arrived at).
fn leap(data: &[u8], seeded: &crc32fast::Hasher, from: usize, distance: usize) -> Option<usize> {
    let first = align(from.saturating_add(distance));
    let last = data.len().checked_sub(FRAME_HEADER_LEN)?;
    (first..=last.min(first + MAX_FRAME_LEN))
        .step_by(FRAME_ALIGN)
        .find(|&pos| decode_frame_seeded(seeded, &data[pos..]).is_some())
}

/// A frame ahead of a replay's scan, as its header describes it, unchecked: a hint (for
/// prefetching what applying its record will touch), never what replay applies.
#[derive(Clone, Copy, Debug)]
pub struct Upcoming<'a> {
    /// The kind byte.
    pub kind: u8,
    /// The payload, as long as the header says.
    pub payload: &'a [u8],
}

/// Walks a segment's chain of frames a number of frames ahead of a scan, reading only their
/// headers: damage only makes what it hands out wrong (or stops it).
pub(crate) struct FramesAhead<'a> {
    data: &'a [u8],
    pos: usize,
}

impl<'a> FramesAhead<'a> {
    /// Starts `frames` frames past offset `from` of the segment `data` (`HEADER_LEN` for its
    /// first frame).
    pub fn starting_at(data: &'a [u8], from: usize, frames: usize) -> FramesAhead<'a> {
        let mut ahead = FramesAhead { data, pos: from };
        for _ in 0..frames {
            ahead.next_frame();
        }
        ahead
    }

    /// Moves one frame on, handing out the frame it passes; `None` from the end of the
    /// records, or damage, on.
    #[inline(always)]
    pub fn next_frame(&mut self) -> Option<Upcoming<'a>> {
        let data: &'a [u8] = self.data;
        let frame = data.get(self.pos..).and_then(|rest| {
            let header = FrameHeader::read(rest)?;
            let payload = rest.get(FRAME_HEADER_LEN..header.payload_end())?;
            Some((header, payload))
        });
        let Some((header, payload)) = frame else {
            // No more in this segment.
            self.data = &[];
            return None;
        };
        self.pos += header.frame_len();
        Some(Upcoming {
            kind: header.kind,
            payload,
        })
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, UNIX_EPOCH};

    use enr::{CombinedKey, Enr};

    use super::*;
    use crate::event::{from_unix_nanos, Event, LogRecord, StoredRecord};
    use crate::journal::format::{encode_frame, salt_seed, SegmentHeader, FORMAT_VERSION};
    use crate::journal::reader::{ScanEnd, ScanItem, SegmentScanner};
    use crate::node::{Node, NodeId};
    use crate::record::NodeRecord;

    /// A signed record of node `n`.
    fn signed_record(n: u64) -> NodeRecord {
        let mut secret = [0x5au8; 32];
        secret[..8].copy_from_slice(&(n + 1).to_be_bytes());
        let key = CombinedKey::secp256k1_from_bytes(&mut secret).unwrap();
        let record = Enr::builder()
            .ip4(Ipv4Addr::new(10, 0, 0, n as u8))
            .udp4(30303)
            .seq(n)
            .build(&key)
            .unwrap();
        NodeRecord::unverified(&record).unwrap()
    }

    /// A segment of 40 records of the kinds of the chain, signed records among them, with a
    /// zeroed tail.
    fn segment(seed: u32) -> (Vec<u8>, Vec<usize>) {
        let header = SegmentHeader {
            format: FORMAT_VERSION,
            flags: 0,
            protocol_version: 1,
            salt: 7,
            segment_id: 1,
            first_seq: 1,
            replaces_through: 0,
        };
        let mut data = header.encode().to_vec();
        let mut chain = Vec::new();
        for seq in 1..=40u64 {
            let id = NodeId([seq as u8; 64]);
            let at = UNIX_EPOCH + Duration::from_secs(seq);
            let event = match seq % 6 {
                0 => Event::NodeUpdated(Node::new(id, IpAddr::V4(Ipv4Addr::LOCALHOST), 1, 2)),
                1 => Event::Ping { id, at },
                2 => Event::Pong { id, at },
                3 => Event::FindFails { id, fails: 3 },
                4 => Event::Record(signed_record(seq)),
                _ => Event::NodeDeleted { id },
            };
            let mut payload = Vec::new();
            let kind = event.encode_payload(seq as i64, &mut payload).unwrap();
            chain.push(data.len());
            encode_frame(seed, seq, kind, &payload, &mut data);
        }
        data.resize(data.len() + 512, 0);
        (data, chain)
    }

    /// What a scan in stored form (as replay decodes) finds, as [`LogRecord`]s, and how many
    /// frames it checked itself.
    fn scan_stored(
        data: &[u8],
        seed: u32,
        ahead: Option<&ChecksumsAhead>,
    ) -> ((Vec<ScanItem<LogRecord>>, ScanEnd), usize) {
        let mut stored = SegmentScanner::<StoredRecord<'_>>::new_exclusive(data, seed);
        if let Some(ahead) = ahead {
            stored = stored.with_checksums_ahead(ahead);
        }
        let items: Vec<ScanItem<LogRecord>> = stored
            .by_ref()
            .map(|item| match item {
                ScanItem::Record {
                    offset,
                    len,
                    record,
                } => ScanItem::Record {
                    offset,
                    len,
                    record: LogRecord {
                        seq: record.seq,
                        written_at: from_unix_nanos(record.written_at),
                        event: record.event.into_event(record.written_at),
                    },
                },
                ScanItem::Damage { offset, len } => ScanItem::Damage { offset, len },
            })
            .collect();
        ((items, stored.end().unwrap()), stored.checked_here)
    }

    /// What a scan decoding [`LogRecord`]s finds.
    fn scan_records(
        data: &[u8],
        seed: u32,
        ahead: Option<&ChecksumsAhead>,
    ) -> (Vec<ScanItem<LogRecord>>, ScanEnd) {
        let mut scanner = SegmentScanner::<LogRecord>::new_exclusive(data, seed);
        if let Some(ahead) = ahead {
            scanner = scanner.with_checksums_ahead(ahead);
        }
        let items: Vec<ScanItem<LogRecord>> = scanner.by_ref().collect();
        (items, scanner.end().unwrap())
    }

    /// What a scan finds, decoded both as [`LogRecord`]s and in stored form, which must agree;
    /// and how many frames the stored-form scan checked itself.
    fn scan_counting(
        data: &[u8],
        seed: u32,
        ahead: Option<&ChecksumsAhead>,
    ) -> ((Vec<ScanItem<LogRecord>>, ScanEnd), usize) {
        let stored = scan_stored(data, seed, ahead);
        assert_eq!(stored.0, scan_records(data, seed, ahead));
        stored
    }

    fn scan(
        data: &[u8],
        seed: u32,
        ahead: Option<&ChecksumsAhead>,
    ) -> (Vec<ScanItem<LogRecord>>, ScanEnd) {
        scan_counting(data, seed, ahead).0
    }

    /// A helper that has checked the chain starting at `start` as far as it goes, and leaps
    /// nowhere.
    fn checked_from(data: &[u8], seeded: &crc32fast::Hasher, start: usize) -> ChecksumsAhead {
        let helper = ChecksumsAhead::with_steps(usize::MAX, LEAP);
        helper.check_from::<StoredRecord>(data, seeded, start);
        helper
    }

    /// A helper that says it has checked the chain from the header to `end`.
    fn vouching_to(end: usize) -> ChecksumsAhead {
        let helper = ChecksumsAhead::with_steps(PUBLISH_EVERY, LEAP);
        helper
            .vouched
            .store(pack(HEADER_LEN, end), Ordering::Release);
        helper
    }

    /// With every byte of every record damaged in turn, a scan trusting the helper (finished,
    /// or stopped at any frame of the chain) finds exactly what a scan checking everything
    /// finds: the helper vouches for no frame the scan would have refused.
    #[test]
    fn a_scan_with_checksums_checked_ahead_finds_the_same_records_and_damage() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (clean, chain) = segment(seed);
        let data_end = *chain.last().unwrap() + 160;
        for at in HEADER_LEN..data_end {
            let mut data = clean.clone();
            data[at] ^= 0x10;
            let expected = scan(&data, seed, None);
            let finished = checked_from(&data, &seeded, HEADER_LEN);
            assert_eq!(scan(&data, seed, Some(&finished)), expected, "byte {at}");
            // Stopped early: vouches for a prefix of the chain only.
            for &stop in chain.iter().step_by(7) {
                let partial = vouching_to(stop.min(finished.vouched().1));
                assert_eq!(scan(&data, seed, Some(&partial)), expected, "byte {at}");
            }
        }
        // Undamaged, the helper gets to the end of the records and no further, and the scan
        // checks no frame itself but the zeros after them.
        let finished = checked_from(&clean, &seeded, HEADER_LEN);
        let ((items, end), checked_here) = scan_counting(&clean, seed, Some(&finished));
        assert_eq!(
            (items.len(), end.valid_end, checked_here),
            (40, finished.vouched().1 as u64, 1)
        );
    }

    /// A stretch the helper checked from anywhere (as after a leap: a frame start of the
    /// chain, a place inside a frame, damage) changes nothing a scan finds; the scan trusts it
    /// exactly when it arrives at its start, and then checks nothing itself from there.
    #[test]
    fn a_stretch_checked_from_anywhere_is_trusted_only_from_a_frame_the_scan_arrives_at() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (clean, chain) = segment(seed);
        let data_end = *chain.last().unwrap() + 160;
        let expected = scan(&clean, seed, None);
        for start in (HEADER_LEN..data_end).step_by(FRAME_ALIGN) {
            let helper = checked_from(&clean, &seeded, start);
            let (found, checked_here) = scan_counting(&clean, seed, Some(&helper));
            assert_eq!(found, expected, "stretch from {start}");
            // Frames before the stretch, or all of them off the chain, and the zeros after.
            let before = chain
                .iter()
                .position(|&at| at == start)
                .unwrap_or(chain.len());
            assert_eq!(checked_here, before + 1, "stretch from {start}");
        }
        let starts: Vec<usize> = chain.iter().flat_map(|&at| [at, at + 8]).collect();
        for at in (HEADER_LEN..data_end).step_by(23) {
            let mut data = clean.clone();
            data[at] ^= 0x04;
            let expected = scan(&data, seed, None);
            for &start in &starts {
                let helper = checked_from(&data, &seeded, start);
                assert_eq!(
                    scan(&data, seed, Some(&helper)),
                    expected,
                    "byte {at}, stretch from {start}"
                );
            }
        }
    }

    /// A helper that finds the scanner at its heels leaps ahead of it to the next intact
    /// frame, checks on from there, and the scan, checking the frames in between itself,
    /// trusts what it checked from the frame where it landed.
    #[test]
    fn a_helper_caught_up_with_leaps_ahead_and_the_scan_trusts_it_from_there() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (clean, chain) = segment(seed);
        let helper = ChecksumsAhead::with_steps(4, 512);
        // The scanner is checking frame 20 itself when the helper first looks.
        helper.scanner_checks(chain[20]);
        helper.check::<StoredRecord>(&clean, &seeded);
        let landing = chain.iter().position(|&at| at >= chain[20] + 512).unwrap();
        let records_end = checked_from(&clean, &seeded, HEADER_LEN).vouched().1;
        assert_eq!(helper.vouched(), (chain[landing], records_end));
        let (found, checked_here) = scan_counting(&clean, seed, Some(&helper));
        assert_eq!(found, scan(&clean, seed, None));
        assert_eq!(checked_here, landing + 1);

        // Damage where it would land: it lands on the next intact frame instead.
        let mut data = clean.clone();
        data[chain[landing] + 20] ^= 1;
        let helper = ChecksumsAhead::with_steps(4, 512);
        helper.scanner_checks(chain[20]);
        helper.check::<StoredRecord>(&data, &seeded);
        assert_eq!(helper.vouched(), (chain[landing + 1], records_end));
        assert_eq!(scan(&data, seed, Some(&helper)), scan(&data, seed, None));

        // Leapt to frame 10, it finds the scanner checking frame 12 itself: the scanner
        // passed frame 10 before the helper said it had landed there, and will not trust
        // what it checks from there. It leaps again; not if the scanner trusts it.
        let landing = chain.iter().position(|&at| at >= chain[12] + 512).unwrap();
        for (trusted, stretch) in [(false, chain[landing]), (true, chain[10])] {
            let helper = ChecksumsAhead::with_steps(4, 512);
            if trusted {
                helper.scanner_trusts(chain[10]);
            }
            helper.scanner_checks(chain[12]);
            helper.check_from::<StoredRecord>(&clean, &seeded, chain[10]);
            assert_eq!(helper.vouched(), (stretch, records_end));
        }

        // Nothing intact within reach (the zeros after the records): it stops.
        let helper = ChecksumsAhead::with_steps(4, 512);
        helper.scanner_checks(*chain.last().unwrap());
        helper.check::<StoredRecord>(&clean, &seeded);
        assert_eq!(helper.vouched(), (HEADER_LEN, chain[4]));
    }

    /// Kept to a lead past the pages the scanner has released, the helper checks no frame
    /// beyond it until the scanner releases more, then goes on; abandoned, it stops waiting.
    #[test]
    fn a_helper_stays_within_its_lead_of_the_released_pages() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (clean, chain) = segment(seed);
        let records_end = checked_from(&clean, &seeded, HEADER_LEN).vouched().1;
        let lead = chain[10];
        let helper = ChecksumsAhead::with_steps(2, 512).with_max_lead(lead);
        let within = |released: usize| {
            let (start, end) = helper.vouched();
            assert_eq!(start, HEADER_LEN);
            // It waits once a batch (of 2 frames) ends more than `lead` past the release:
            // at most one frame past the first that starts beyond it.
            let beyond = chain.iter().position(|&at| at > released + lead).unwrap();
            assert!(end <= chain[beyond + 1], "{end} past {}", chain[beyond + 1]);
            end
        };
        std::thread::scope(|scope| {
            let checking = scope.spawn(|| helper.check::<StoredRecord>(&clean, &seeded));
            // A failing assertion must not leave the helper waiting, and the test hanging.
            let _stop = helper.abandon_on_drop();
            let wait_until = |done: &dyn Fn() -> bool| {
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
                while !done() {
                    assert!(
                        std::time::Instant::now() < deadline,
                        "the helper did not move"
                    );
                    std::thread::sleep(std::time::Duration::from_millis(1));
                }
            };
            // It checks up to its lead, and waits there.
            wait_until(&|| helper.vouched().1 >= lead);
            std::thread::sleep(std::time::Duration::from_millis(20));
            let first = within(0);
            assert!(first < records_end);
            // The scanner released more: it goes on, as far as the new lead.
            helper.scanner_released(chain[20]);
            wait_until(&|| helper.vouched().1 > first);
            std::thread::sleep(std::time::Duration::from_millis(20));
            within(chain[20]);
            // Abandoned while it waits, it stops.
            helper.abandon();
            checking.join().unwrap();
        });
        assert!(helper.vouched().1 < records_end);
        // Without a limit, the same helper checks the whole chain.
        let unlimited = ChecksumsAhead::with_steps(2, 512);
        unlimited.check::<StoredRecord>(&clean, &seeded);
        assert_eq!(unlimited.vouched(), (HEADER_LEN, records_end));
    }

    /// The helper on a thread of its own, as replay runs it, over a segment of thousands of
    /// records, intact or damaged: whatever the interleaving of its checks and leaps with the
    /// scan, the scan finds what a scan checking everything finds.
    #[test]
    fn a_scan_beside_a_helper_thread_finds_what_a_scan_alone_finds() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (one, chain) = segment(seed);
        // The 40 records again and again (their sequence numbers repeat: no matter here).
        let records = &one[HEADER_LEN..chain.last().unwrap() + 160];
        let mut clean = one[..HEADER_LEN].to_vec();
        for _ in 0..100 {
            clean.extend_from_slice(records);
        }
        clean.resize(clean.len() + 4096, 0);
        for damage in [None, Some(HEADER_LEN + 90_000), Some(clean.len() / 2 + 3)] {
            let mut data = clean.clone();
            if let Some(at) = damage {
                data[at] ^= 0x20;
            }
            let expected = scan(&data, seed, None);
            for run in 0..20 {
                // Each kind of scan beside a helper of its own, running.
                let beside_helper = |stored: bool| {
                    let helper = ChecksumsAhead::for_segment(data.len());
                    std::thread::scope(|scope| {
                        scope.spawn(|| helper.check::<StoredRecord>(&data, &seeded));
                        let _stop = helper.abandon_on_drop();
                        match stored {
                            true => scan_stored(&data, seed, Some(&helper)).0,
                            false => scan_records(&data, seed, Some(&helper)),
                        }
                    })
                };
                for stored in [true, false] {
                    let found = beside_helper(stored);
                    assert_eq!(found, expected, "damage at {damage:?}, run {run}, {stored}");
                }
            }
        }
    }

    /// A helper that leapt into another frame's payload, onto a frame forged there whose
    /// checksum matches, checks a stretch that is no chain of the scan's, here one running over
    /// a damaged frame: the scan never arrives at its start, so it trusts none of it, and finds
    /// the damage a scan checking everything finds.
    #[test]
    fn a_stretch_from_inside_a_payload_over_a_damaged_frame_is_not_trusted() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let ping = |seq: u64, id: [u8; 64], out: &mut Vec<u8>| {
            let mut payload = Vec::new();
            Event::Ping {
                id: NodeId(id),
                at: UNIX_EPOCH + Duration::from_secs(seq),
            }
            .encode_payload(seq as i64, &mut payload)
            .unwrap();
            encode_frame(seed, seq, crate::event::kind::PING, &payload, out);
        };
        let (mut data, _) = segment(seed);
        data.truncate(HEADER_LEN);
        let first = data.len();
        ping(1, [0x11; 64], &mut data);
        let second = data.len();
        ping(2, [0x22; 64], &mut data);
        let third = data.len();
        for seq in 3..10 {
            ping(seq, [seq as u8; 64], &mut data);
        }
        data.resize(data.len() + 512, 0);
        // The second frame damaged.
        data[second + 40] ^= 1;
        // A frame forged in the first one's node id (aligned), running over the second to
        // the third, its checksum right; the first frame's checksum fixed over it.
        let forged = first + FRAME_HEADER_LEN + 8;
        let payload_len = third - (forged + FRAME_HEADER_LEN);
        data[forged + 4..forged + 12].copy_from_slice(&5u64.to_le_bytes());
        data[forged + 12..forged + 14].copy_from_slice(&(payload_len as u16).to_le_bytes());
        data[forged + 14] = 0x7f;
        data[forged + 15] = 0;
        let mut crc = seeded.clone();
        crc.update(&data[forged + 4..third]);
        data[forged..forged + 4].copy_from_slice(&crc.finalize().to_le_bytes());
        let mut crc = seeded.clone();
        crc.update(&data[first + 4..second]);
        data[first..first + 4].copy_from_slice(&crc.finalize().to_le_bytes());
        // A leap of 8 bytes from the first frame lands on the forged one.
        assert_eq!(leap(&data, &seeded, first, 8), Some(forged));

        let expected = scan(&data, seed, None);
        assert!(expected
            .0
            .iter()
            .any(|item| matches!(item, ScanItem::Damage { .. })));
        let helper = checked_from(&data, &seeded, forged);
        assert_eq!(helper.vouched().0, forged);
        assert!(helper.vouched().1 > second);
        assert_eq!(scan(&data, seed, Some(&helper)), expected);
    }

    /// A signed record whose frame is checksummed but whose RLP does not parse is damage:
    /// the helper stops before it, and a scan trusting the helper finds what one checking
    /// everything finds.
    #[test]
    fn the_helper_vouches_for_no_record_whose_rlp_does_not_parse() {
        let seed = salt_seed(7);
        let seeded = crc32fast::Hasher::new_with_initial(seed);
        let (clean, chain) = segment(seed);
        let end = *chain.last().unwrap();
        let last = decode_frame_seeded(&seeded, &clean[end..]).unwrap().len;
        let mut data = clean[..end + last].to_vec();
        // A record whose signature is 63 bytes long: checksummed, yet damage.
        let bad_at = data.len();
        let mut rlp = signed_record(41).rlp().to_vec();
        let signature = rlp.iter().position(|&b| b == 0xb8).unwrap();
        rlp[signature + 1] -= 1;
        let mut payload = 41i64.to_le_bytes().to_vec();
        payload.extend_from_slice(&[41u8; 64]);
        payload.extend_from_slice(&rlp);
        encode_frame(seed, 41, crate::event::kind::RECORD, &payload, &mut data);
        let mut after = Vec::new();
        Event::Ping {
            id: NodeId([42; 64]),
            at: UNIX_EPOCH,
        }
        .encode_payload(42, &mut after)
        .unwrap();
        encode_frame(seed, 42, crate::event::kind::PING, &after, &mut data);
        data.resize(data.len() + 256, 0);

        let helper = checked_from(&data, &seeded, HEADER_LEN);
        assert_eq!(helper.vouched(), (HEADER_LEN, bad_at));
        let expected = scan(&data, seed, None);
        assert_eq!(scan(&data, seed, Some(&helper)), expected);
        assert!(expected.0.contains(&ScanItem::Damage {
            offset: bad_at as u64,
            len: (data.len() - 256 - bad_at - 96) as u64,
        }));
    }

    /// Small segments (those of tests and fuzz inputs) get small steps, so that the helper
    /// leaps there too; large ones the full steps.
    #[test]
    fn steps_scale_with_the_segment() {
        let steps = |len| {
            let helper = ChecksumsAhead::for_segment(len);
            (helper.batch, helper.leap)
        };
        assert_eq!(steps(4096), (2, 256));
        assert_eq!(steps(100_000), (24, 6256));
        assert_eq!(steps(64 << 20), (PUBLISH_EVERY, LEAP));
    }

    #[test]
    fn a_stretch_packs_into_one_word_and_back() {
        for (start, end) in [
            (HEADER_LEN, HEADER_LEN),
            (64, 4096),
            (8, (u32::MAX as usize) * 8),
        ] {
            assert_eq!(unpack(pack(start, end)), (start, end));
        }
        assert!(ChecksumsAhead::covers((32 << 30) - 8));
        assert!(!ChecksumsAhead::covers(32 << 30));
    }
}
