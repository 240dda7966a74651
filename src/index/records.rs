//! Node records in the index: an unsigned IPv4 endpoint inside the entry itself, an unsigned
//! IPv6 endpoint or a signed record's RLP back to back in one arena (no allocation per
//! record), and what the index reads from them.

use std::net::Ipv4Addr;

use super::*;

/// What kind of record an entry holds (the top two bits of `Entry::slot_and_kind`), and so
/// what its record word means.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[repr(u8)]
pub(super) enum RecordKind {
    /// No record; the word is unused.
    None = 0,
    /// An unsigned endpoint with an IPv4 address, in the word itself (see [`RecordWord`]):
    /// the common record takes no arena bytes and no second cache line.
    V4 = 1,
    /// An unsigned endpoint with an IPv6 address (an IPv4-mapped one included, which stays
    /// IPv6 as it was written), in the arena: the 16 address bytes, udp and tcp as
    /// little-endian u16.
    V6 = 2,
    /// A signed record's RLP as signed, in the arena (its endpoint is parsed from it when
    /// asked for: no byte is kept twice).
    Signed = 3,
}

impl RecordKind {
    pub(super) fn from_bits(bits: u32) -> RecordKind {
        match bits & 3 {
            0 => RecordKind::None,
            1 => RecordKind::V4,
            2 => RecordKind::V6,
            _ => RecordKind::Signed,
        }
    }

    /// Whether the record lives in the arena (the word is a [`RecordWord::arena`] reference).
    pub(super) fn in_arena(self) -> bool {
        matches!(self, RecordKind::V6 | RecordKind::Signed)
    }
}

/// The 8-byte record word of an entry: an IPv4 endpoint (address in bits 0..32, udp in
/// 32..48, tcp in 48..64), or an arena reference (start in bits 0..32, length in 32..48).
pub(super) struct RecordWord;

impl RecordWord {
    /// Bytes of an IPv6 endpoint's blob in the arena.
    pub(super) const V6_LEN: usize = 20;

    pub(super) fn v4(ip: Ipv4Addr, udp: u16, tcp: u16) -> u64 {
        u64::from(u32::from(ip)) | u64::from(udp) << 32 | u64::from(tcp) << 48
    }

    pub(super) fn v4_ip(word: u64) -> Ipv4Addr {
        Ipv4Addr::from(word as u32)
    }

    pub(super) fn v4_endpoint(word: u64) -> Endpoint {
        Endpoint {
            ip: IpAddr::V4(Ipv4Addr::from(word as u32)),
            udp: (word >> 32) as u16,
            tcp: (word >> 48) as u16,
        }
    }

    pub(super) fn arena(at: u32, len: u16) -> u64 {
        u64::from(at) | u64::from(len) << 32
    }

    pub(super) fn arena_at(word: u64) -> usize {
        word as u32 as usize
    }

    pub(super) fn arena_len(word: u64) -> usize {
        usize::from((word >> 32) as u16)
    }

    /// The arena blob of an IPv6 endpoint.
    pub(super) fn v6_blob(ip: Ipv6Addr, udp: u16, tcp: u16) -> [u8; RecordWord::V6_LEN] {
        let mut blob = [0; RecordWord::V6_LEN];
        blob[..16].copy_from_slice(&ip.octets());
        blob[16..18].copy_from_slice(&udp.to_le_bytes());
        blob[18..].copy_from_slice(&tcp.to_le_bytes());
        blob
    }

    pub(super) fn v6_endpoint(blob: &[u8]) -> Endpoint {
        let ip: [u8; 16] = blob[..16].try_into().expect("an IPv6 endpoint blob");
        let port = |at: usize| u16::from_le_bytes([blob[at], blob[at + 1]]);
        Endpoint {
            ip: IpAddr::V6(Ipv6Addr::from(ip)),
            udp: port(16),
            tcp: port(18),
        }
    }
}

/// A record as `set_record` stores it.
enum Stored<'a> {
    /// In the word itself.
    Word(RecordKind, u64),
    /// In the arena.
    Blob(RecordKind, &'a [u8]),
}

impl Index {
    /// The endpoint of an entry's record, unsigned or signed.
    #[inline]
    pub fn endpoint(&self, entry: &Entry) -> Option<Endpoint> {
        match entry.kind() {
            RecordKind::None => None,
            RecordKind::V4 => Some(RecordWord::v4_endpoint(entry.record)),
            RecordKind::V6 => Some(RecordWord::v6_endpoint(self.blob(entry))),
            RecordKind::Signed => RecordFields::parse(self.blob(entry)).ok()?.endpoint(),
        }
    }

    /// An entry's arena blob (empty for a record kept in the entry, or none).
    pub(super) fn blob(&self, entry: &Entry) -> &[u8] {
        let at = entry.arena_at();
        &self.records[at..at + entry.arena_len()]
    }

    /// An entry's node: its id and the endpoint of its record.
    pub fn node(&self, entry: &Entry) -> Option<Node> {
        self.endpoint(entry).map(|e| e.with_id(entry.id))
    }

    /// The RLP of an entry's signed record.
    pub fn record_rlp(&self, entry: &Entry) -> Option<&[u8]> {
        (entry.kind() == RecordKind::Signed).then(|| self.blob(entry))
    }

    /// The seq of an entry's record: its signed record's, or 0.
    pub fn record_seq(&self, entry: &Entry) -> u64 {
        self.record_rlp(entry)
            .and_then(|rlp| RecordFields::parse(rlp).ok())
            .map_or(0, |fields| fields.seq)
    }

    /// An entry's signed record.
    pub fn record(&self, entry: &Entry) -> Option<NodeRecord> {
        NodeRecord::from_stored(entry.id, self.record_rlp(entry)?)
    }

    /// Stores the record of the entry at `index` (its endpoint, and a signed record's RLP),
    /// replacing any earlier one.
    pub(super) fn set_record(
        &mut self,
        index: usize,
        endpoint: Option<Endpoint>,
        rlp: Option<&[u8]>,
    ) {
        let v6_blob;
        let stored = match (rlp, endpoint) {
            (Some(rlp), _) => Stored::Blob(RecordKind::Signed, rlp),
            (None, Some(e)) => match e.ip {
                IpAddr::V4(ip) => Stored::Word(RecordKind::V4, RecordWord::v4(ip, e.udp, e.tcp)),
                IpAddr::V6(ip) => {
                    v6_blob = RecordWord::v6_blob(ip, e.udp, e.tcp);
                    Stored::Blob(RecordKind::V6, &v6_blob)
                }
            },
            (None, None) => Stored::Word(RecordKind::None, 0),
        };
        let entry = &self.entries[index];
        let (old_at, old_len) = (entry.arena_at(), entry.arena_len());
        match stored {
            Stored::Word(kind, word) => {
                // The old blob, if any, becomes garbage; the rebuild threshold is checked by
                // the next record stored in the arena.
                self.record_garbage += old_len;
                let entry = &mut self.entries[index];
                entry.record = word;
                entry.set_kind(kind);
            }
            Stored::Blob(kind, blob) => {
                let len = u16::try_from(blob.len()).expect("a record is at most 300 bytes");
                if old_len == blob.len() {
                    // Same length (the common case of a new seq of the same record): in place.
                    self.records[old_at..old_at + old_len].copy_from_slice(blob);
                } else {
                    self.record_garbage += old_len;
                    if self.record_garbage > 1 << 16 && self.record_garbage > self.records.len() / 2
                    {
                        // The old blob is garbage: not copied by the rebuild.
                        self.entries[index].set_kind(RecordKind::None);
                        self.rebuild_records();
                    }
                    let at = u32::try_from(self.records.len()).expect("under 4 GiB of records");
                    self.records.extend_from_slice(blob);
                    self.entries[index].record = RecordWord::arena(at, len);
                }
                self.entries[index].set_kind(kind);
            }
        }
    }

    /// Stores an unsigned endpoint as the record of the entry at `index`: an IPv4 one in the
    /// entry itself, an IPv6 one in the arena.
    #[inline]
    pub(super) fn set_endpoint(&mut self, index: usize, endpoint: Endpoint) {
        match endpoint.ip {
            IpAddr::V4(ip) => {
                let entry = &mut self.entries[index];
                // The old blob, if any, becomes garbage; the rebuild threshold is checked by
                // the next record stored in the arena.
                self.record_garbage += entry.arena_len();
                entry.record = RecordWord::v4(ip, endpoint.udp, endpoint.tcp);
                entry.set_kind(RecordKind::V4);
            }
            IpAddr::V6(_) => self.set_record(index, Some(endpoint), None),
        }
    }

    /// Copies the live records into a new arena, leaving the garbage behind.
    pub(super) fn rebuild_records(&mut self) {
        let live = self.records.len() - self.record_garbage;
        let mut records = Vec::with_capacity(live + live / 4);
        for entry in &mut self.entries {
            if entry.kind().in_arena() {
                let (at, len) = (entry.arena_at(), entry.arena_len());
                entry.record = RecordWord::arena(records.len() as u32, len as u16);
                records.extend_from_slice(&self.records[at..at + len]);
            }
        }
        self.records = records;
        self.record_garbage = 0;
    }
}
