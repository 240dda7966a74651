//! Node records in the index: a signed record's RLP or an unsigned endpoint, back to back in
//! one arena (no allocation per record), and what the index reads from them.

use super::*;

/// How an entry's record is laid out in the arena: a signed record's RLP as signed (its
/// endpoint is parsed from it when asked for: no byte is kept twice), or an unsigned record's
/// endpoint in 20 bytes (the IP in its 16-byte stored form, udp and tcp as little-endian u16).
pub(super) struct RecordBlob;

impl RecordBlob {
    /// The record names an endpoint.
    pub(super) const ENDPOINT: u8 = 1;
    /// The endpoint's IP is IPv4 (an IPv4-mapped IPv6 address in an unsigned record stays
    /// IPv6, as it was written).
    pub(super) const V4: u8 = 2;
    /// The blob is a signed record's RLP.
    pub(super) const SIGNED: u8 = 4;

    /// Bytes of an unsigned record's blob.
    pub(super) const ENDPOINT_LEN: usize = 20;

    /// The blob of a record, and its flags: a signed record's RLP itself, or an unsigned
    /// record's endpoint laid out in `scratch`, so that storing it copies it once.
    pub(super) fn encode<'a>(
        endpoint: Option<Endpoint>,
        rlp: Option<&'a [u8]>,
        scratch: &'a mut [u8; RecordBlob::ENDPOINT_LEN],
    ) -> (u8, &'a [u8]) {
        if let Some(rlp) = rlp {
            return (RecordBlob::SIGNED, rlp);
        }
        let Some(e) = endpoint else {
            return (0, &[]);
        };
        let mut flags = RecordBlob::ENDPOINT;
        if e.ip.is_ipv4() {
            flags |= RecordBlob::V4;
        }
        scratch[..16].copy_from_slice(&ip_key(e.ip));
        scratch[16..18].copy_from_slice(&e.udp.to_le_bytes());
        scratch[18..].copy_from_slice(&e.tcp.to_le_bytes());
        (flags, scratch)
    }

    pub(super) fn endpoint(flags: u8, blob: &[u8]) -> Option<Endpoint> {
        if flags & RecordBlob::SIGNED != 0 {
            return RecordFields::parse(blob).ok()?.endpoint();
        }
        if flags & RecordBlob::ENDPOINT == 0 {
            return None;
        }
        let ip: IpKey = blob[..16].try_into().expect("an endpoint blob");
        let ip = Ipv6Addr::from(ip);
        let ip = match ip.to_ipv4_mapped() {
            Some(v4) if flags & RecordBlob::V4 != 0 => IpAddr::V4(v4),
            _ => IpAddr::V6(ip),
        };
        let port = |at: usize| u16::from_le_bytes([blob[at], blob[at + 1]]);
        Some(Endpoint {
            ip,
            udp: port(16),
            tcp: port(18),
        })
    }

    pub(super) fn rlp(flags: u8, blob: &[u8]) -> Option<&[u8]> {
        (flags & RecordBlob::SIGNED != 0).then_some(blob)
    }
}

impl Index {
    /// The endpoint of an entry's record, unsigned or signed.
    pub fn endpoint(&self, entry: &Entry) -> Option<Endpoint> {
        RecordBlob::endpoint(entry.record_flags, self.blob(entry))
    }

    /// An entry's record blob (empty without a record).
    pub(super) fn blob(&self, entry: &Entry) -> &[u8] {
        let at = entry.record_at as usize;
        &self.records[at..at + usize::from(entry.record_len)]
    }

    /// An entry's node: its id and the endpoint of its record.
    pub fn node(&self, entry: &Entry) -> Option<Node> {
        self.endpoint(entry).map(|e| e.with_id(entry.id))
    }

    /// The RLP of an entry's signed record.
    pub fn record_rlp(&self, entry: &Entry) -> Option<&[u8]> {
        RecordBlob::rlp(entry.record_flags, self.blob(entry))
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
        let mut scratch = [0; RecordBlob::ENDPOINT_LEN];
        let (flags, blob) = RecordBlob::encode(endpoint, rlp, &mut scratch);
        let entry = &self.entries[index];
        let (old_at, old_len) = (entry.record_at as usize, usize::from(entry.record_len));
        let len = u16::try_from(blob.len()).expect("a record is at most 300 bytes");
        if old_len == blob.len() {
            // Same length (the common case of a new seq of the same record): in place.
            self.records[old_at..old_at + old_len].copy_from_slice(blob);
        } else {
            self.record_garbage += old_len;
            if self.record_garbage > 1 << 16 && self.record_garbage > self.records.len() / 2 {
                self.entries[index].record_len = 0;
                self.rebuild_records();
            }
            let at = u32::try_from(self.records.len()).expect("under 4 GiB of records");
            self.records.extend_from_slice(blob);
            let entry = &mut self.entries[index];
            entry.record_at = at;
            entry.record_len = len;
        }
        self.entries[index].record_flags = flags;
    }

    /// Copies the live records into a new arena, leaving the garbage behind.
    pub(super) fn rebuild_records(&mut self) {
        let live = self.records.len() - self.record_garbage;
        let mut records = Vec::with_capacity(live + live / 4);
        for entry in &mut self.entries {
            if entry.record_len != 0 {
                let at = entry.record_at as usize;
                let len = usize::from(entry.record_len);
                entry.record_at = records.len() as u32;
                records.extend_from_slice(&self.records[at..at + len]);
            }
        }
        self.records = records;
        self.record_garbage = 0;
    }
}
