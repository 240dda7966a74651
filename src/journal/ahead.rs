//! Checking a segment's checksums on a second core while replay decodes and indexes.
//!
//! A segment's records form a chain: the first starts right after the header, each next one
//! right after the previous one's frame. A helper thread walks that chain checking every
//! frame (bounds, structure and CRC-32, exactly as the scanner does, and the payload checks
//! that decoding leaves to it: a signed record's RLP parses) and publishes how far it got;
//! the scanner, following the same chain through the same immutable bytes, only decodes the
//! frames the helper has vouched for, and checks the others itself (it never waits: when the
//! helper is behind, both check the same frames). At the first frame that fails the helper
//! stops; from there on (damage, a torn tail, the zeros after the last record) the scanner
//! checks everything itself, as it does without a helper.
//!
//! Only for bytes nobody writes while they are read (a locked open, a sealed segment).

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use crate::event::{id_offset, IdBytes, StoredEvent};
use crate::journal::format::{
    align, decode_frame_seeded, FRAME_HEADER_LEN, HEADER_LEN, MAX_PAYLOAD_LEN, MIN_PAYLOAD_LEN,
};
use crate::node::{ids_equal, NODE_ID_LEN};

/// Frames the helper checks between two publications of its progress.
const PUBLISH_EVERY: usize = 256;

/// How far the helper has checked a segment's chain of frames.
#[derive(Default)]
pub(crate) struct ChecksumsAhead {
    /// Every frame of the chain that starts below this offset is intact, and its payload
    /// passes [`StoredEvent::passes_deep_checks`].
    checked_to: AtomicUsize,
    /// The scanner needs no more: the helper may stop early.
    abandoned: AtomicBool,
}

impl ChecksumsAhead {
    /// The helper's work: checks the chain of frames of `data` (a whole segment, header
    /// included) with the segment's seeded checksum state, until a frame fails or the
    /// scanner abandons it.
    pub fn check(&self, data: &[u8], seeded: &crc32fast::Hasher) {
        let mut pos = HEADER_LEN;
        'chain: while !self.abandoned.load(Ordering::Relaxed) {
            for _ in 0..PUBLISH_EVERY {
                match data
                    .get(pos..)
                    .and_then(|rest| decode_frame_seeded(seeded, rest))
                {
                    Some(frame) if StoredEvent::passes_deep_checks(frame.kind, frame.payload) => {
                        pos += frame.len
                    }
                    _ => break 'chain,
                }
            }
            self.checked_to.store(pos, Ordering::Release);
        }
        self.checked_to.store(pos, Ordering::Release);
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

    /// Every frame of the chain that starts below this offset is intact.
    pub fn checked_to(&self) -> usize {
        self.checked_to.load(Ordering::Acquire)
    }
}

/// How many frames ahead of the scan [`IdsAhead`] looks.
pub(crate) const IDS_AHEAD: usize = 16;

/// The ids of the records a few frames ahead of a scan, read straight from the bytes without
/// any check: a hint for prefetching the index, never for what replay applies. Damage only
/// makes the hints wrong (or stops them).
pub(crate) struct IdsAhead<'a> {
    data: &'a [u8],
    pos: usize,
    last: Option<&'a IdBytes>,
}

impl<'a> IdsAhead<'a> {
    /// Starts `frames` frames into the segment `data` (header included).
    pub fn new(data: &'a [u8], frames: usize) -> IdsAhead<'a> {
        let mut ids = IdsAhead {
            data,
            pos: HEADER_LEN,
            last: None,
        };
        for _ in 0..frames {
            ids.next_new_id();
        }
        ids
    }

    /// Moves one frame on; the id of the frame it passes if it differs from the one before.
    #[inline]
    pub fn next_new_id(&mut self) -> Option<&'a IdBytes> {
        let Some((id, frame_len)) = self.frame_at(self.pos) else {
            // The end of the records, or damage: no more hints in this segment.
            self.data = &[];
            return None;
        };
        self.pos += frame_len;
        let id = id?;
        if self.last.is_some_and(|last| ids_equal(last, id)) {
            return None;
        }
        self.last = Some(id);
        Some(id)
    }

    /// The id in the frame at `pos` (if its kind has one) and the frame's length, if its
    /// header is plausible.
    fn frame_at(&self, pos: usize) -> Option<(Option<&'a IdBytes>, usize)> {
        let data: &'a [u8] = self.data;
        let header = data.get(pos..pos + FRAME_HEADER_LEN)?;
        let payload_len = usize::from(u16::from_le_bytes([header[12], header[13]]));
        if !(MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN).contains(&payload_len) {
            return None;
        }
        let start = pos + FRAME_HEADER_LEN;
        let frame_len = align(FRAME_HEADER_LEN + payload_len);
        let Some(id_at) = id_offset(header[14], payload_len) else {
            // A record about no node (the local seq): no hint, but the hints go on after it.
            return Some((None, frame_len));
        };
        let id = data.get(start + id_at..start + id_at + NODE_ID_LEN)?;
        Some((Some(id.try_into().ok()?), frame_len))
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};
    use std::time::{Duration, UNIX_EPOCH};

    use enr::{CombinedKey, Enr};

    use super::*;
    use crate::event::{from_unix_nanos, Event, Record, StoredRecord};
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
            event.encode_payload(seq as i64, &mut payload).unwrap();
            chain.push(data.len());
            encode_frame(seed, seq, event.kind().code(), &payload, &mut data);
        }
        data.resize(data.len() + 512, 0);
        (data, chain)
    }

    /// What a scan finds, decoded both as [`Record`]s and in stored form (as replay decodes),
    /// which must agree.
    fn scan(data: &[u8], seed: u32, ahead: Option<&ChecksumsAhead>) -> (Vec<ScanItem>, ScanEnd) {
        let mut scanner = SegmentScanner::<Record>::in_place(data, seed);
        let mut stored = SegmentScanner::<StoredRecord<'_>>::in_place(data, seed);
        if let Some(ahead) = ahead {
            scanner = scanner.with_checksums_ahead(ahead);
            stored = stored.with_checksums_ahead(ahead);
        }
        let items: Vec<ScanItem> = scanner.by_ref().collect();
        let stored_items: Vec<ScanItem> = stored
            .by_ref()
            .map(|item| match item {
                ScanItem::Record {
                    offset,
                    len,
                    record,
                } => ScanItem::Record {
                    offset,
                    len,
                    record: Record {
                        seq: record.seq,
                        written_at: from_unix_nanos(record.written_at),
                        event: record.event.into_event(),
                    },
                },
                ScanItem::Damage { offset, len } => ScanItem::Damage { offset, len },
            })
            .collect();
        assert_eq!(stored_items, items);
        assert_eq!(stored.end(), scanner.end());
        (items, scanner.end().unwrap())
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
            let finished = ChecksumsAhead::default();
            finished.check(&data, &seeded);
            assert_eq!(scan(&data, seed, Some(&finished)), expected, "byte {at}");
            // Stopped early: vouches for a prefix of the chain only.
            for &stop in chain.iter().step_by(7) {
                let partial = ChecksumsAhead::default();
                partial
                    .checked_to
                    .store(stop.min(finished.checked_to()), Ordering::Release);
                assert_eq!(scan(&data, seed, Some(&partial)), expected, "byte {at}");
            }
        }
        // Undamaged, the helper gets to the end of the records and no further.
        let finished = ChecksumsAhead::default();
        finished.check(&clean, &seeded);
        let (items, end) = scan(&clean, seed, Some(&finished));
        assert_eq!(
            (items.len(), end.valid_end),
            (40, finished.checked_to() as u64)
        );
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

        let helper = ChecksumsAhead::default();
        helper.check(&data, &seeded);
        assert_eq!(helper.checked_to(), bad_at);
        let expected = scan(&data, seed, None);
        assert_eq!(scan(&data, seed, Some(&helper)), expected);
        assert!(expected.0.contains(&ScanItem::Damage {
            offset: bad_at as u64,
            len: (data.len() - 256 - bad_at - 96) as u64,
        }));
    }
}
