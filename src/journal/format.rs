//! The constants of the on-disk format and the encoding of one segment header and one record
//! frame. docs/FORMAT.md is the prose version of this file; keep them in step.

/// First eight bytes of every segment file.
pub const MAGIC: [u8; 8] = *b"PEERLOG\0";
/// Version of the layout described here, written into new segments. Format 2 added the
/// event kinds of signed records, per-IP liveness and the local seq; frames and headers are
/// laid out as in format 1, which this build still reads. Format 3 added evictions (the
/// bounded store); a segment of format 1 or 2 reads as it did.
pub const FORMAT_VERSION: u32 = 3;
/// The oldest format this build reads.
pub const OLDEST_FORMAT: u32 = 1;
/// Bytes of a segment header; the first record starts right after it.
pub const HEADER_LEN: usize = 64;
/// Bytes of the header covered by its checksum.
const HEADER_CRC_OFFSET: usize = 56;
/// Header flag: this segment was written by compaction and replaces every older segment
/// holding records up to `replaces_through`.
pub const FLAG_COMPACTED: u32 = 1;

/// Bytes of a record frame's header: crc, seq, len, kind, reserved.
pub const FRAME_HEADER_LEN: usize = 16;
/// Frames start at multiples of this, so that a reader can resync after damage.
pub const FRAME_ALIGN: usize = 8;
/// Smallest and largest payload of a frame: a length outside them is damage whatever the kind
/// byte says. What a kind means, and the exact length of its payload, is the event module's,
/// which checks at compile time that every kind fits in these bounds.
pub const MIN_PAYLOAD_LEN: usize = 16;
/// See [`MIN_PAYLOAD_LEN`].
pub const MAX_PAYLOAD_LEN: usize = 372;
/// Largest sequence number (and segment id) a frame or header may carry. Replay computes the
/// successor of every sequence number it accepts, so a value near `u64::MAX` (which only a
/// forged or damaged-yet-checksummed file can hold: a log never gets near 2^63 records) is
/// damage, not a record: it would overflow the accounting.
pub const MAX_SEQ: u64 = i64::MAX as u64;
/// Largest segment id (in a header, and in a file name). Segment files are named with 16
/// digits, and a writer numbers new segments above every id in the directory: ids this far
/// below 10^16 leave room for more segments than a log ever makes, so every name a writer
/// gives stays one the listing reads. (Fuzz finding: a forged header id of 10^16 made the
/// next segment's name 17 digits long, ignored on the next open with the writes in it.)
pub const MAX_SEGMENT_ID: u64 = 10u64.pow(15) - 1;
/// Largest frame, padding included.
pub const MAX_FRAME_LEN: usize = align(FRAME_HEADER_LEN + MAX_PAYLOAD_LEN);

/// Rounds `n` up to the frame alignment.
pub const fn align(n: usize) -> usize {
    (n + FRAME_ALIGN - 1) & !(FRAME_ALIGN - 1)
}

/// The fixed 64-byte header at the start of every segment file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SegmentHeader {
    /// Format version of the segment (written as [`FORMAT_VERSION`] by this build).
    pub format: u32,
    /// Header flags ([`FLAG_COMPACTED`]).
    pub flags: u32,
    /// The user's protocol version; a mismatch on open wipes the database.
    pub protocol_version: u64,
    /// Random per-generation value mixed into every record checksum.
    pub salt: u64,
    /// The number in the segment's file name.
    pub segment_id: u64,
    /// Sequence number of the first record written to this segment.
    pub first_seq: u64,
    /// For a compacted segment: the highest sequence number it accounts for. 0 otherwise.
    pub replaces_through: u64,
}

/// Why a header was refused.
#[derive(Debug, PartialEq, Eq)]
pub enum HeaderError {
    /// The file does not start with [`MAGIC`]: not a peerlog file at all.
    NotPeerlog,
    /// The magic is right but the header is short, fails its checksum or holds impossible
    /// values.
    Damaged(String),
    /// An intact header of a format newer than this build reads.
    NewerFormat(u32),
}

impl SegmentHeader {
    /// Whether this segment was written by compaction.
    pub fn is_compacted(&self) -> bool {
        self.flags & FLAG_COMPACTED != 0
    }

    /// The 64 header bytes.
    pub fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..12].copy_from_slice(&self.format.to_le_bytes());
        out[12..16].copy_from_slice(&self.flags.to_le_bytes());
        out[16..24].copy_from_slice(&self.protocol_version.to_le_bytes());
        out[24..32].copy_from_slice(&self.salt.to_le_bytes());
        out[32..40].copy_from_slice(&self.segment_id.to_le_bytes());
        out[40..48].copy_from_slice(&self.first_seq.to_le_bytes());
        out[48..56].copy_from_slice(&self.replaces_through.to_le_bytes());
        let crc = crc32fast::hash(&out[..HEADER_CRC_OFFSET]);
        out[56..60].copy_from_slice(&crc.to_le_bytes());
        out
    }

    /// Parses the start of a segment file.
    pub fn decode(bytes: &[u8]) -> Result<SegmentHeader, HeaderError> {
        if bytes.len() < MAGIC.len() || bytes[..MAGIC.len()] != MAGIC {
            return Err(HeaderError::NotPeerlog);
        }
        if bytes.len() < HEADER_LEN {
            return Err(HeaderError::Damaged(format!(
                "header is {} bytes, expected {HEADER_LEN}",
                bytes.len()
            )));
        }
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
        let u64_at = |at: usize| u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap());
        if u32_at(56) != crc32fast::hash(&bytes[..HEADER_CRC_OFFSET]) {
            return Err(HeaderError::Damaged("header checksum mismatch".into()));
        }
        let format = u32_at(8);
        if format > FORMAT_VERSION {
            return Err(HeaderError::NewerFormat(format));
        }
        if format < OLDEST_FORMAT {
            return Err(HeaderError::Damaged(format!("format version {format}")));
        }
        // Bounded like record sequence numbers (see MAX_SEQ): replay and the writer add one;
        // segment ids more (see MAX_SEGMENT_ID).
        for (at, what, max) in [
            (32, "segment id", MAX_SEGMENT_ID),
            (40, "first sequence number", MAX_SEQ),
            (48, "replaces_through", MAX_SEQ),
        ] {
            if u64_at(at) > max {
                return Err(HeaderError::Damaged(format!(
                    "{what} {} is out of range",
                    u64_at(at)
                )));
            }
        }
        Ok(SegmentHeader {
            format,
            flags: u32_at(12),
            protocol_version: u64_at(16),
            salt: u64_at(24),
            segment_id: u64_at(32),
            first_seq: u64_at(40),
            replaces_through: u64_at(48),
        })
    }
}

/// The checksum state after feeding the salt: every record checksum continues from it, so a
/// record is only valid inside the generation that wrote it.
pub fn salt_seed(salt: u64) -> u32 {
    crc32fast::hash(&salt.to_le_bytes())
}

/// Appends one frame (header, payload, zero padding) to `out`. The payload must be between
/// `MIN_PAYLOAD_LEN` and `MAX_PAYLOAD_LEN` bytes.
pub fn encode_frame(seed: u32, seq: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    lay_out_frame(seq, kind, payload, out);
    let mut hasher = crc32fast::Hasher::new_with_initial(seed);
    hasher.update(&out[start + 4..]);
    let crc = hasher.finalize();
    out[start..start + 4].copy_from_slice(&crc.to_le_bytes());
    out.resize(start + align(out.len() - start), 0);
}

/// [`encode_frame`] with sequence number 0 and no checksum (zero): a frame of a compaction's
/// output, which [`renumber_frames`] numbers and checksums before the file is published.
pub(crate) fn encode_provisional_frame(kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    let start = out.len();
    lay_out_frame(0, kind, payload, out);
    out.resize(start + align(out.len() - start), 0);
}

/// Appends a frame's header, its checksum zero, and its payload to `out`.
fn lay_out_frame(seq: u64, kind: u8, payload: &[u8], out: &mut Vec<u8>) {
    debug_assert!((MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN).contains(&payload.len()));
    out.extend_from_slice(&[0u8; 4]);
    out.extend_from_slice(&seq.to_le_bytes());
    out.extend_from_slice(&(payload.len() as u16).to_le_bytes());
    out.push(kind);
    out.push(0);
    out.extend_from_slice(payload);
}

/// Gives the frames of `file` between `from` and `end` (written by [`encode_frame`], back to
/// back) the sequence numbers `first_seq`, `first_seq + 1`, ..., their checksums made anew;
/// returns how many there were. Compaction writes its frames before it knows their numbers.
/// The file is read and written in chunks rather than mapped, so that its pages never count
/// as the process's memory.
pub(crate) fn renumber_frames(
    file: &std::fs::File,
    seed: u32,
    first_seq: u64,
    from: u64,
    end: u64,
) -> std::io::Result<u64> {
    use std::os::unix::fs::FileExt;
    let mut chunk = vec![0u8; 1 << 20];
    let (mut at, mut seq) = (from, first_seq);
    while at < end {
        let len = usize::try_from(end - at).map_or(chunk.len(), |n| n.min(chunk.len()));
        let chunk = &mut chunk[..len];
        file.read_exact_at(chunk, at)?;
        let mut done = 0;
        while let Some(header) = chunk.get(done..done + FRAME_HEADER_LEN) {
            let payload_len = usize::from(u16::from_le_bytes([header[12], header[13]]));
            let Some(frame) = chunk.get_mut(done..done + align(FRAME_HEADER_LEN + payload_len))
            else {
                break;
            };
            frame[4..12].copy_from_slice(&seq.to_le_bytes());
            let mut hasher = crc32fast::Hasher::new_with_initial(seed);
            hasher.update(&frame[4..FRAME_HEADER_LEN + payload_len]);
            frame[..4].copy_from_slice(&hasher.finalize().to_le_bytes());
            done += frame.len();
            seq += 1;
        }
        if done == 0 {
            // A frame longer than a chunk: never one of encode_frame's.
            return Err(std::io::Error::new(
                std::io::ErrorKind::InvalidData,
                format!("no frame to renumber at offset {at}"),
            ));
        }
        file.write_all_at(&chunk[..done], at)?;
        at += done as u64;
    }
    Ok(seq - first_seq)
}

/// A record frame that passed every check.
#[derive(Clone, Copy, Debug)]
pub struct Frame<'a> {
    /// Sequence number.
    pub seq: u64,
    /// Event kind byte.
    pub kind: u8,
    /// The payload, without padding.
    pub payload: &'a [u8],
    /// Bytes the frame occupies, padding included.
    pub len: usize,
}

/// The header of a record frame, as read: nothing but the bounds of its payload length is
/// checked yet, and the checksum is not. The one reader of frame headers: scans, resyncs, the
/// copy of a frame in a live file and the hints ahead of a replay all read them through it.
#[derive(Clone, Copy, Debug)]
pub(crate) struct FrameHeader {
    /// The stored checksum (salt, then the frame from `seq` on).
    pub crc: u32,
    /// Sequence number.
    pub seq: u64,
    /// Event kind byte.
    pub kind: u8,
    /// Must be zero.
    pub reserved: u8,
    /// Bytes of the payload, within [`MIN_PAYLOAD_LEN`]`..=`[`MAX_PAYLOAD_LEN`].
    pub payload_len: usize,
}

impl FrameHeader {
    /// The header at the start of `bytes`, if they hold one whose payload length is within
    /// bounds (the payload itself need not be there).
    #[inline(always)]
    pub fn read(bytes: &[u8]) -> Option<FrameHeader> {
        let header: &[u8; FRAME_HEADER_LEN] = bytes.get(..FRAME_HEADER_LEN)?.try_into().ok()?;
        let payload_len = usize::from(u16::from_le_bytes([header[12], header[13]]));
        if !(MIN_PAYLOAD_LEN..=MAX_PAYLOAD_LEN).contains(&payload_len) {
            return None;
        }
        Some(FrameHeader {
            crc: u32::from_le_bytes([header[0], header[1], header[2], header[3]]),
            seq: u64::from_le_bytes(header[4..12].try_into().unwrap()),
            kind: header[14],
            reserved: header[15],
            payload_len,
        })
    }

    /// Bytes the frame occupies, padding included.
    #[inline(always)]
    pub fn frame_len(&self) -> usize {
        align(FRAME_HEADER_LEN + self.payload_len)
    }

    /// Where the payload ends, counted from the frame's start.
    #[inline(always)]
    pub fn payload_end(&self) -> usize {
        FRAME_HEADER_LEN + self.payload_len
    }
}

#[cfg_attr(not(feature = "__internal_testing"), allow(dead_code))]
/// Reads the frame at the start of `bytes` if it is intact: the length is bounded and checked
/// against the bytes available before it is used, and the checksum must match.
pub fn decode_frame(seed: u32, bytes: &[u8]) -> Option<Frame<'_>> {
    decode_frame_seeded(&crc32fast::Hasher::new_with_initial(seed), bytes)
}

/// [`decode_frame`] with the checksum state after the salt already set up (`seeded`), which
/// a scan makes once per segment rather than once per frame.
#[inline]
pub(crate) fn decode_frame_seeded<'a>(
    seeded: &crc32fast::Hasher,
    bytes: &'a [u8],
) -> Option<Frame<'a>> {
    decode_frame_with(Some(seeded), bytes)
}

/// [`decode_frame_seeded`] for a frame whose checksum another thread has already checked
/// (see `journal::ahead`): every other check is made.
#[inline]
pub(crate) fn decode_frame_precheck(bytes: &[u8]) -> Option<Frame<'_>> {
    decode_frame_with(None, bytes)
}

/// Reads the frame at the start of `bytes`, checking its checksum if `seeded` is given.
#[inline(always)]
fn decode_frame_with<'a>(seeded: Option<&crc32fast::Hasher>, bytes: &'a [u8]) -> Option<Frame<'a>> {
    let header = FrameHeader::read(bytes)?;
    // The frame layer checks what every frame must satisfy; whether the kind is known and
    // the length right for it is the event module's to decide, when it decodes the payload.
    if header.reserved != 0 || header.kind == 0 {
        return None;
    }
    let end = header.payload_end();
    let len = header.frame_len();
    if len > bytes.len() {
        return None;
    }
    if let Some(seeded) = seeded {
        let mut hasher = seeded.clone();
        hasher.update(&bytes[4..end]);
        if hasher.finalize() != header.crc {
            return None;
        }
    }
    // A checksummed frame with an impossible sequence number is damage (see MAX_SEQ).
    if header.seq > MAX_SEQ {
        return None;
    }
    Some(Frame {
        seq: header.seq,
        kind: header.kind,
        payload: &bytes[FRAME_HEADER_LEN..end],
        len,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Any kind byte but 0 passes the frame layer.
    const KIND: u8 = 5;

    #[test]
    fn salted_checksum_equals_checksum_of_salt_then_bytes() {
        let salt = 0x0123_4567_89ab_cdefu64;
        let mut hasher = crc32fast::Hasher::new_with_initial(salt_seed(salt));
        hasher.update(b"record bytes");
        let mut joined = salt.to_le_bytes().to_vec();
        joined.extend_from_slice(b"record bytes");
        assert_eq!(hasher.finalize(), crc32fast::hash(&joined));
    }

    #[test]
    fn renumbered_frames_equal_frames_encoded_with_their_numbers() {
        // Enough frames of mixed lengths to cross several 1 MiB chunks of the renumbering.
        let seed = salt_seed(11);
        let payload = |i: usize| vec![i as u8; MIN_PAYLOAD_LEN + i % (MAX_PAYLOAD_LEN - 15)];
        let (mut provisional, mut expected) = (vec![0xee; 24], vec![0xee; 24]);
        let frames = 12_000;
        for i in 0..frames {
            encode_frame(seed, 0, KIND, &payload(i), &mut provisional);
            encode_frame(seed, 1000 + i as u64, KIND, &payload(i), &mut expected);
        }
        assert!(provisional.len() > 2 << 20, "{} bytes", provisional.len());
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("frames");
        std::fs::write(&path, &provisional).unwrap();
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(&path)
            .unwrap();
        let end = provisional.len() as u64;
        assert_eq!(
            renumber_frames(&file, seed, 1000, 24, end).unwrap(),
            frames as u64
        );
        assert!(
            std::fs::read(&path).unwrap() == expected,
            "renumbered bytes differ"
        );
    }

    #[test]
    fn frame_round_trips_and_any_flipped_bit_is_rejected() {
        let seed = salt_seed(7);
        let mut frame = Vec::new();
        encode_frame(seed, 42, KIND, &[9u8; MIN_PAYLOAD_LEN], &mut frame);
        assert_eq!(frame.len() % FRAME_ALIGN, 0);
        let decoded = decode_frame(seed, &frame).unwrap();
        assert_eq!(
            (decoded.seq, decoded.kind, decoded.len),
            (42, KIND, frame.len())
        );
        assert!(
            decode_frame(salt_seed(8), &frame).is_none(),
            "other salt accepted"
        );
        let end = FRAME_HEADER_LEN + MIN_PAYLOAD_LEN;
        for bit in 0..end * 8 {
            let mut damaged = frame.clone();
            damaged[bit / 8] ^= 1 << (bit % 8);
            assert!(
                decode_frame(seed, &damaged).is_none(),
                "bit {bit} flip accepted"
            );
        }
    }

    /// Fuzz finding (open_segment): a checksummed frame with sequence number u64::MAX made
    /// replay overflow computing its successor.
    #[test]
    fn sequence_numbers_beyond_max_seq_are_damage() {
        let seed = salt_seed(7);
        for (seq, ok) in [(MAX_SEQ, true), (MAX_SEQ + 1, false), (u64::MAX, false)] {
            let mut frame = Vec::new();
            encode_frame(seed, seq, KIND, &[9u8; MIN_PAYLOAD_LEN], &mut frame);
            assert_eq!(decode_frame(seed, &frame).is_some(), ok, "seq {seq}");
        }
        let header = |first_seq, replaces_through, segment_id| SegmentHeader {
            format: FORMAT_VERSION,
            flags: 0,
            protocol_version: 1,
            salt: 1,
            segment_id,
            first_seq,
            replaces_through,
        };
        assert!(SegmentHeader::decode(&header(MAX_SEQ, MAX_SEQ, MAX_SEGMENT_ID).encode()).is_ok());
        for bad in [
            header(u64::MAX, 0, 1),
            header(1, MAX_SEQ + 1, 1),
            header(1, 0, u64::MAX),
            header(1, 0, MAX_SEGMENT_ID + 1),
            header(1, 0, 10u64.pow(16)),
        ] {
            assert!(matches!(
                SegmentHeader::decode(&bad.encode()),
                Err(HeaderError::Damaged(_))
            ));
        }
    }

    #[test]
    fn older_formats_are_read_and_newer_ones_refused_as_such() {
        let header = |format| SegmentHeader {
            format,
            flags: 0,
            protocol_version: 1,
            salt: 1,
            segment_id: 1,
            first_seq: 1,
            replaces_through: 0,
        };
        for format in OLDEST_FORMAT..=FORMAT_VERSION {
            assert_eq!(
                SegmentHeader::decode(&header(format).encode()),
                Ok(header(format))
            );
        }
        assert_eq!(
            SegmentHeader::decode(&header(FORMAT_VERSION + 1).encode()),
            Err(HeaderError::NewerFormat(FORMAT_VERSION + 1))
        );
        assert!(matches!(
            SegmentHeader::decode(&header(0).encode()),
            Err(HeaderError::Damaged(_))
        ));
    }

    #[test]
    fn header_round_trips_and_rejects_damage() {
        let header = SegmentHeader {
            format: FORMAT_VERSION,
            flags: FLAG_COMPACTED,
            protocol_version: 5,
            salt: 99,
            segment_id: 3,
            first_seq: 10,
            replaces_through: 20,
        };
        let bytes = header.encode();
        assert_eq!(SegmentHeader::decode(&bytes), Ok(header));
        assert_eq!(
            SegmentHeader::decode(b"hello world"),
            Err(HeaderError::NotPeerlog)
        );
        let mut damaged = bytes;
        damaged[20] ^= 1;
        assert!(matches!(
            SegmentHeader::decode(&damaged),
            Err(HeaderError::Damaged(_))
        ));
        assert!(matches!(
            SegmentHeader::decode(&bytes[..30]),
            Err(HeaderError::Damaged(_))
        ));
    }
}
