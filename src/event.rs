//! Events: what the log records, and their payload encoding (see docs/FORMAT.md). The frame
//! layer (`journal::format`) carries payloads as opaque bytes; what a kind byte means, how
//! long its payload is and how it decodes is decided here, and handed to the journal's scans
//! as the [`Decoded`] implementations of [`LogRecord`] and [`StoredRecord`].

use std::net::{IpAddr, Ipv6Addr};
use std::ops::RangeInclusive;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::journal::ahead::Upcoming;
use crate::journal::damage::Damage;
use crate::journal::decoded::{Decoded, DecodedInPlace};
use crate::journal::format::{align, FRAME_HEADER_LEN, MAX_PAYLOAD_LEN, MIN_PAYLOAD_LEN};
use crate::loss::{Loss, LOSS_BODY_LEN};
use crate::node::{parse_node_rlp, Endpoint, Node, NodeId, NODE_ID_LEN};
use crate::record::{NodeRecord, RecordFields, MAX_RECORD_LEN};
use crate::subnet::Subnet;
use crate::Error;

/// One change to the database, as it is recorded in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// An unsigned node record (an endpoint) was inserted or overwritten.
    NodeUpdated(Node),
    /// A signed node record was inserted or replaced one of an equal or lower seq.
    Record(NodeRecord),
    /// A ping was sent to `id` at `at`.
    Ping {
        /// The pinged node.
        id: NodeId,
        /// When the ping was sent.
        at: SystemTime,
    },
    /// A pong was received from `id` at `at`.
    Pong {
        /// The node that answered.
        id: NodeId,
        /// When the pong arrived.
        at: SystemTime,
    },
    /// The count of findnode failures for `id` was set to `fails`.
    FindFails {
        /// The node.
        id: NodeId,
        /// Failures since bonding.
        fails: u32,
    },
    /// A ping was sent to `id` at `ip`.
    PingFrom {
        /// The pinged node.
        id: NodeId,
        /// The address pinged (IPv4-mapped IPv6 addresses read as IPv4).
        ip: IpAddr,
        /// When the ping was sent.
        at: SystemTime,
    },
    /// A pong was received from `id` at `ip`.
    PongFrom {
        /// The node that answered.
        id: NodeId,
        /// The address it answered from.
        ip: IpAddr,
        /// When the pong arrived.
        at: SystemTime,
    },
    /// The count of findnode failures for `id` at `ip` was set to `fails`.
    FindFailsAt {
        /// The node.
        id: NodeId,
        /// The address.
        ip: IpAddr,
        /// Failures since bonding.
        fails: u32,
    },
    /// Everything known about `id`: every liveness slot and record, was deleted by
    /// `delete_node`.
    NodeDeleted {
        /// The node.
        id: NodeId,
    },
    /// Everything known about `id` was dropped by expiration.
    NodeExpired {
        /// The node.
        id: NodeId,
    },
    /// The ping, pong and failures of `id` at `ip` were dropped by expiration (its pong is
    /// older than the expiration); the node itself stays.
    IpExpired {
        /// The node.
        id: NodeId,
        /// The address.
        ip: IpAddr,
    },
    /// The local node's own record seq was stored.
    LocalSeq {
        /// The seq.
        seq: u64,
    },
    /// Damage was found in the log (by a compaction, which then rewrote the damaged place
    /// away) or acknowledged by an operator: a loss. Read back, its state is
    /// [`Recorded`](crate::DamageState::Recorded) or
    /// [`Acknowledged`](crate::DamageState::Acknowledged), `at` the record's write time, and its
    /// path the segment's file name. Only a [`DamageKind::is_loss`](crate::DamageKind::is_loss)
    /// kind in a file named like a segment can be written.
    Loss(Damage),
    /// Everything known about `id` was dropped to make room for a new id: the store held
    /// [`Options::max_nodes`](crate::Options::max_nodes) ids (format 3).
    Evicted {
        /// The node.
        id: NodeId,
        /// The subnet its endpoint was in (cut to /24 and /48), or `None` for an id without
        /// an endpoint.
        subnet: Option<Subnet>,
    },
    /// The liveness of `id` at `ip` was dropped to make room for another IP of the same id:
    /// it held the most IP slots an id may have, and this one was the stalest (format 3).
    IpEvicted {
        /// The node.
        id: NodeId,
        /// The address.
        ip: IpAddr,
    },
}

/// An event as read back from the log, with its place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogRecord {
    /// Sequence number: grows by one per record across the whole log.
    pub seq: u64,
    /// Wall-clock time the event was written.
    pub written_at: SystemTime,
    /// What happened.
    pub event: Event,
}

/// The kinds of [`Event`]. Each one's discriminant is its kind byte in a record frame: the
/// one table of kind bytes, which the encoding and the decoding of payloads both read.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
#[repr(u8)]
pub enum EventKind {
    /// [`Event::NodeUpdated`].
    Node = 1,
    /// [`Event::Ping`].
    Ping = 2,
    /// [`Event::Pong`].
    Pong = 3,
    /// [`Event::FindFails`].
    Fails = 4,
    /// [`Event::NodeDeleted`].
    Delete = 5,
    /// [`Event::NodeExpired`].
    Expire = 6,
    /// [`Event::Record`].
    Record = 7,
    /// [`Event::PingFrom`].
    PingFrom = 8,
    /// [`Event::PongFrom`].
    PongFrom = 9,
    /// [`Event::FindFailsAt`].
    FailsAt = 10,
    /// [`Event::IpExpired`].
    IpExpire = 11,
    /// [`Event::LocalSeq`].
    LocalSeq = 12,
    /// [`Event::Loss`].
    Loss = 13,
    /// [`Event::Evicted`].
    Evict = 14,
    /// [`Event::IpEvicted`].
    IpEvict = 15,
}

impl EventKind {
    /// Every kind, in order.
    pub const ALL: [EventKind; 15] = [
        EventKind::Node,
        EventKind::Ping,
        EventKind::Pong,
        EventKind::Fails,
        EventKind::Delete,
        EventKind::Expire,
        EventKind::Record,
        EventKind::PingFrom,
        EventKind::PongFrom,
        EventKind::FailsAt,
        EventKind::IpExpire,
        EventKind::LocalSeq,
        EventKind::Loss,
        EventKind::Evict,
        EventKind::IpEvict,
    ];

    /// A short lowercase name: `node`, `ping`, `pong`, `fails`, `delete`, `expire`, `record`,
    /// `ping_from`, `pong_from`, `fails_at`, `ip_expire`, `local_seq`, `loss`, `evict`,
    /// `ip_evict`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Node => "node",
            EventKind::Ping => "ping",
            EventKind::Pong => "pong",
            EventKind::Fails => "fails",
            EventKind::Delete => "delete",
            EventKind::Expire => "expire",
            EventKind::Record => "record",
            EventKind::PingFrom => "ping_from",
            EventKind::PongFrom => "pong_from",
            EventKind::FailsAt => "fails_at",
            EventKind::IpExpire => "ip_expire",
            EventKind::LocalSeq => "local_seq",
            EventKind::Loss => "loss",
            EventKind::Evict => "evict",
            EventKind::IpEvict => "ip_evict",
        }
    }

    /// Its kind byte in a record frame: 1 to 15 in the order of [`EventKind::ALL`].
    pub(crate) const fn code(self) -> u8 {
        self as u8
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Kind byte of each event in a record frame, from [`EventKind`], for matching on.
pub(crate) mod kind {
    use super::EventKind;

    pub const NODE_UPDATED: u8 = EventKind::Node.code();
    pub const PING: u8 = EventKind::Ping.code();
    pub const PONG: u8 = EventKind::Pong.code();
    pub const FIND_FAILS: u8 = EventKind::Fails.code();
    pub const NODE_DELETED: u8 = EventKind::Delete.code();
    pub const NODE_EXPIRED: u8 = EventKind::Expire.code();
    // Format 2.
    pub const RECORD: u8 = EventKind::Record.code();
    pub const PING_FROM: u8 = EventKind::PingFrom.code();
    pub const PONG_FROM: u8 = EventKind::PongFrom.code();
    pub const FAILS_AT: u8 = EventKind::FailsAt.code();
    pub const IP_EXPIRED: u8 = EventKind::IpExpire.code();
    pub const LOCAL_SEQ: u8 = EventKind::LocalSeq.code();
    pub const LOSS: u8 = EventKind::Loss.code();
    // Format 3.
    pub const EVICTED: u8 = EventKind::Evict.code();
    pub const IP_EVICTED: u8 = EventKind::IpEvict.code();
}

/// Bytes of the `written_at` field that starts every payload.
const TIME_LEN: usize = 8;
/// Bytes of an IP address in a payload: IPv6, or IPv4 in its IPv4-mapped IPv6 form.
pub(crate) const IP_LEN: usize = 16;
/// Payload of a ping or pong: written_at, id, at.
pub(crate) const PING_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN + 8;
/// Payload of a findnode failure count: written_at, id, fails.
pub(crate) const FAILS_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN + 4;
/// Payload of a delete or expiry: written_at, id.
pub(crate) const ID_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN;
/// Payload of a ping or pong from an IP: written_at, id, ip, at.
pub(crate) const PING_FROM_PAYLOAD_LEN: usize = ID_PAYLOAD_LEN + IP_LEN + 8;
/// Payload of a findnode failure count at an IP: written_at, id, ip, fails.
pub(crate) const FAILS_AT_PAYLOAD_LEN: usize = ID_PAYLOAD_LEN + IP_LEN + 4;
/// Payload of the expiry of an IP's slot: written_at, id, ip.
pub(crate) const IP_PAYLOAD_LEN: usize = ID_PAYLOAD_LEN + IP_LEN;
/// Payload of an eviction: written_at, id, the subnet's network (16 bytes) and prefix length
/// (1 byte, [`NO_SUBNET`] for none).
pub(crate) const EVICTED_PAYLOAD_LEN: usize = ID_PAYLOAD_LEN + IP_LEN + 1;
/// The prefix length byte of an eviction of an id without an endpoint.
const NO_SUBNET: u8 = 0xff;
/// Payload of the local seq: written_at, seq.
pub(crate) const LOCAL_SEQ_PAYLOAD_LEN: usize = TIME_LEN + 8;
/// Payload of a loss: written_at, then the loss (see `loss.rs`).
pub(crate) const LOSS_PAYLOAD_LEN: usize = TIME_LEN + LOSS_BODY_LEN;
/// Largest payload of a signed record: written_at, id, the record's RLP.
pub(crate) const MAX_RECORD_PAYLOAD_LEN: usize = ID_PAYLOAD_LEN + MAX_RECORD_LEN;

// Every kind's payload fits in the bounds the frame layer checks, and the smallest and the
// largest meet them: a frame of a length outside them would be damage whatever its kind. An
// unsigned node's RLP (at most about 90 bytes) is far below a signed record's.
const _: () = {
    let fixed = [
        PING_PAYLOAD_LEN,
        FAILS_PAYLOAD_LEN,
        ID_PAYLOAD_LEN,
        PING_FROM_PAYLOAD_LEN,
        FAILS_AT_PAYLOAD_LEN,
        IP_PAYLOAD_LEN,
        EVICTED_PAYLOAD_LEN,
        LOCAL_SEQ_PAYLOAD_LEN,
        LOSS_PAYLOAD_LEN,
        MAX_RECORD_PAYLOAD_LEN,
    ];
    let mut i = 0;
    while i < fixed.len() {
        assert!(MIN_PAYLOAD_LEN <= fixed[i] && fixed[i] <= MAX_PAYLOAD_LEN);
        i += 1;
    }
    assert!(MIN_PAYLOAD_LEN == LOCAL_SEQ_PAYLOAD_LEN);
    // The kind bytes are 1 to 15 in the order of EventKind::ALL (0 is never a kind).
    let mut k = 0;
    while k < EventKind::ALL.len() {
        assert!(EventKind::ALL[k].code() as usize == k + 1);
        k += 1;
    }
    assert!(MAX_PAYLOAD_LEN == MAX_RECORD_PAYLOAD_LEN);
};

/// Bytes the frame of a payload of `payload_len` bytes takes in the log, padding included:
/// what the index counts as live bytes.
pub(crate) const fn frame_len(payload_len: usize) -> u64 {
    align(FRAME_HEADER_LEN + payload_len) as u64
}

/// Where the id of an event of kind `kind` sits in a payload of `len` bytes, if it has one
/// (a hint for prefetching: unchecked).
fn id_offset(kind: u8, len: usize) -> Option<usize> {
    match kind {
        // The id is the last item of an unsigned node record's RLP list.
        kind::NODE_UPDATED => len.checked_sub(NODE_ID_LEN),
        kind::LOCAL_SEQ | kind::LOSS => None,
        _ => Some(TIME_LEN),
    }
}

/// The ids of the records a few frames ahead of a replay, read straight from the frames the
/// journal hands out ([`Upcoming`]), unchecked: a hint for prefetching the index, never for
/// what replay applies.
#[derive(Default)]
pub(crate) struct IdsAhead {
    /// The first bytes of the last id handed out.
    last: Option<[u8; 8]>,
}

impl IdsAhead {
    /// How many frames ahead of the record it applies a replay reads the id to prefetch.
    pub const FRAMES: usize = 16;

    /// The id of the record in `upcoming`, if it has one and it differs from the one before.
    #[inline(always)]
    pub fn new_id<'a>(&mut self, upcoming: Option<Upcoming<'a>>) -> Option<&'a IdBytes> {
        let Upcoming { kind, payload } = upcoming?;
        // A record about no node (the local seq) has none.
        let at = id_offset(kind, payload.len())?;
        let id: &IdBytes = payload.get(at..at + NODE_ID_LEN)?.try_into().ok()?;
        // The first 8 bytes tell ids apart (they are hashes or public keys), and two that
        // share them only cost one prefetch not made.
        let first = id[..8].try_into().ok()?;
        if self.last == Some(first) {
            return None;
        }
        self.last = Some(first);
        Some(id)
    }
}

/// An IP address in stored form: IPv6, with IPv4 as its IPv4-mapped form, so that an IPv4
/// address and its mapped form are one IP.
pub(crate) type IpKey = [u8; IP_LEN];

/// The stored form of `ip`.
pub(crate) fn ip_key(ip: IpAddr) -> IpKey {
    match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    }
}

/// The address of a stored IP, IPv4 for an IPv4-mapped one.
pub(crate) fn ip_from_key(key: IpKey) -> IpAddr {
    Ipv6Addr::from(key).to_canonical()
}

impl Event {
    /// The node the event is about; `None` for [`Event::LocalSeq`], which is about the local
    /// node.
    pub fn id(&self) -> Option<&NodeId> {
        match self {
            Event::NodeUpdated(node) => Some(&node.id),
            Event::Record(record) => Some(record.id()),
            Event::Ping { id, .. }
            | Event::Pong { id, .. }
            | Event::FindFails { id, .. }
            | Event::PingFrom { id, .. }
            | Event::PongFrom { id, .. }
            | Event::FindFailsAt { id, .. }
            | Event::NodeDeleted { id }
            | Event::NodeExpired { id }
            | Event::IpExpired { id, .. }
            | Event::Evicted { id, .. }
            | Event::IpEvicted { id, .. } => Some(id),
            Event::LocalSeq { .. } | Event::Loss(_) => None,
        }
    }

    /// What kind of event it is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::NodeUpdated(_) => EventKind::Node,
            Event::Record(_) => EventKind::Record,
            Event::Ping { .. } => EventKind::Ping,
            Event::Pong { .. } => EventKind::Pong,
            Event::FindFails { .. } => EventKind::Fails,
            Event::PingFrom { .. } => EventKind::PingFrom,
            Event::PongFrom { .. } => EventKind::PongFrom,
            Event::FindFailsAt { .. } => EventKind::FailsAt,
            Event::NodeDeleted { .. } => EventKind::Delete,
            Event::NodeExpired { .. } => EventKind::Expire,
            Event::IpExpired { .. } => EventKind::IpExpire,
            Event::LocalSeq { .. } => EventKind::LocalSeq,
            Event::Loss(_) => EventKind::Loss,
            Event::Evicted { .. } => EventKind::Evict,
            Event::IpEvicted { .. } => EventKind::IpEvict,
        }
    }

    /// Its kind byte and payload (written_at first), as [`PayloadEncoder`] makes them; fails
    /// for a timestamp outside what the log can store.
    #[cfg(test)]
    pub(crate) fn encode_payload(&self, written_at: i64, out: &mut Vec<u8>) -> Result<u8, Error> {
        let stored = StoredEvent::from_event(self)?;
        stored.encode_payload(written_at, out);
        Ok(stored.kind().code())
    }

    /// Decodes a payload of the given kind. `None` for anything malformed: the caller treats
    /// such a record as damage even though its checksum matched.
    pub(crate) fn decode_payload(kind: u8, payload: &[u8]) -> Option<(i64, Event)> {
        let (written_at, stored) = StoredEvent::decode(kind, payload)?;
        Some((written_at, stored.into_event(written_at)))
    }
}

/// An event as the index applies it: timestamps in stored form (nanoseconds since the epoch),
/// IPs in stored form, and the id and a record's RLP borrowed, from the payload bytes on replay
/// or from the [`Event`] on a write. Replay decodes straight into it from the mapped log,
/// copying nothing but a few integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredEvent<'a> {
    NodeUpdated {
        id: &'a IdBytes,
        endpoint: Endpoint,
    },
    /// A signed record, its RLP parsed (so known well formed) but kept as bytes: the index
    /// stores them and reads the fields it needs from them when asked.
    Record {
        id: &'a IdBytes,
        rlp: &'a [u8],
    },
    Ping {
        id: &'a IdBytes,
        at: i64,
    },
    Pong {
        id: &'a IdBytes,
        at: i64,
    },
    FindFails {
        id: &'a IdBytes,
        fails: u32,
    },
    PingFrom {
        id: &'a IdBytes,
        ip: IpKey,
        at: i64,
    },
    PongFrom {
        id: &'a IdBytes,
        ip: IpKey,
        at: i64,
    },
    FindFailsAt {
        id: &'a IdBytes,
        ip: IpKey,
        fails: u32,
    },
    NodeDeleted {
        id: &'a IdBytes,
    },
    NodeExpired {
        id: &'a IdBytes,
    },
    IpExpired {
        id: &'a IdBytes,
        ip: IpKey,
    },
    LocalSeq {
        seq: u64,
    },
    Loss(Loss),
    Evicted {
        id: &'a IdBytes,
        subnet: Option<Subnet>,
    },
    IpEvicted {
        id: &'a IdBytes,
        ip: IpKey,
    },
}

/// The stored form of a loss to write: damage that loses records, in a file named like a
/// segment, with a lost range of 1 or more, first to last.
fn storable_loss(damage: &Damage) -> Result<Loss, Error> {
    let loss = Loss::of(damage).ok_or_else(|| {
        Error::invalid(format!(
            "{damage}: not a loss (damage that loses records, in a file named like a segment)"
        ))
    })?;
    if !loss.is_storable() {
        return Err(Error::invalid(format!(
            "a loss of sequence numbers {:?}: a lost range is 1 or more, first to last",
            loss.lost
        )));
    }
    Ok(loss)
}

/// The bytes of a node id.
pub(crate) type IdBytes = [u8; NODE_ID_LEN];

impl<'a> StoredEvent<'a> {
    /// The stored form of `event`, borrowing its id; fails for a timestamp outside what the
    /// log can store.
    pub fn from_event(event: &'a Event) -> Result<StoredEvent<'a>, Error> {
        Ok(match event {
            Event::NodeUpdated(node) => StoredEvent::NodeUpdated {
                id: &node.id.0,
                endpoint: node.endpoint(),
            },
            // A NodeRecord's RLP was parsed when it was made.
            Event::Record(record) => StoredEvent::Record {
                id: &record.id().0,
                rlp: record.rlp(),
            },
            Event::Ping { id, at } => StoredEvent::Ping {
                id: &id.0,
                at: unix_nanos(*at)?,
            },
            Event::Pong { id, at } => StoredEvent::Pong {
                id: &id.0,
                at: unix_nanos(*at)?,
            },
            Event::FindFails { id, fails } => StoredEvent::FindFails {
                id: &id.0,
                fails: *fails,
            },
            Event::PingFrom { id, ip, at } => StoredEvent::PingFrom {
                id: &id.0,
                ip: ip_key(*ip),
                at: unix_nanos(*at)?,
            },
            Event::PongFrom { id, ip, at } => StoredEvent::PongFrom {
                id: &id.0,
                ip: ip_key(*ip),
                at: unix_nanos(*at)?,
            },
            Event::FindFailsAt { id, ip, fails } => StoredEvent::FindFailsAt {
                id: &id.0,
                ip: ip_key(*ip),
                fails: *fails,
            },
            Event::NodeDeleted { id } => StoredEvent::NodeDeleted { id: &id.0 },
            Event::NodeExpired { id } => StoredEvent::NodeExpired { id: &id.0 },
            Event::IpExpired { id, ip } => StoredEvent::IpExpired {
                id: &id.0,
                ip: ip_key(*ip),
            },
            Event::LocalSeq { seq } => StoredEvent::LocalSeq { seq: *seq },
            Event::Evicted { id, subnet } => StoredEvent::Evicted {
                id: &id.0,
                subnet: *subnet,
            },
            Event::IpEvicted { id, ip } => StoredEvent::IpEvicted {
                id: &id.0,
                ip: ip_key(*ip),
            },
            Event::Loss(damage) => StoredEvent::Loss(storable_loss(damage)?),
        })
    }

    /// What kind of event it is.
    pub fn kind(&self) -> EventKind {
        match self {
            StoredEvent::NodeUpdated { .. } => EventKind::Node,
            StoredEvent::Record { .. } => EventKind::Record,
            StoredEvent::Ping { .. } => EventKind::Ping,
            StoredEvent::Pong { .. } => EventKind::Pong,
            StoredEvent::FindFails { .. } => EventKind::Fails,
            StoredEvent::PingFrom { .. } => EventKind::PingFrom,
            StoredEvent::PongFrom { .. } => EventKind::PongFrom,
            StoredEvent::FindFailsAt { .. } => EventKind::FailsAt,
            StoredEvent::NodeDeleted { .. } => EventKind::Delete,
            StoredEvent::NodeExpired { .. } => EventKind::Expire,
            StoredEvent::IpExpired { .. } => EventKind::IpExpire,
            StoredEvent::LocalSeq { .. } => EventKind::LocalSeq,
            StoredEvent::Loss(_) => EventKind::Loss,
            StoredEvent::Evicted { .. } => EventKind::Evict,
            StoredEvent::IpEvicted { .. } => EventKind::IpEvict,
        }
    }

    /// Writes the payload (written_at first) into `out`: what [`StoredEvent::decode`] reads.
    fn encode_payload(&self, written_at: i64, out: &mut Vec<u8>) {
        out.extend_from_slice(&written_at.to_le_bytes());
        match *self {
            StoredEvent::NodeUpdated { id, endpoint } => endpoint.write_rlp(id, out),
            StoredEvent::Record { id, rlp } => {
                out.extend_from_slice(id);
                out.extend_from_slice(rlp);
            }
            StoredEvent::Ping { id, at } | StoredEvent::Pong { id, at } => {
                out.extend_from_slice(id);
                out.extend_from_slice(&at.to_le_bytes());
            }
            StoredEvent::FindFails { id, fails } => {
                out.extend_from_slice(id);
                out.extend_from_slice(&fails.to_le_bytes());
            }
            StoredEvent::PingFrom { id, ip, at } | StoredEvent::PongFrom { id, ip, at } => {
                out.extend_from_slice(id);
                out.extend_from_slice(&ip);
                out.extend_from_slice(&at.to_le_bytes());
            }
            StoredEvent::FindFailsAt { id, ip, fails } => {
                out.extend_from_slice(id);
                out.extend_from_slice(&ip);
                out.extend_from_slice(&fails.to_le_bytes());
            }
            StoredEvent::NodeDeleted { id } | StoredEvent::NodeExpired { id } => {
                out.extend_from_slice(id)
            }
            StoredEvent::IpExpired { id, ip } | StoredEvent::IpEvicted { id, ip } => {
                out.extend_from_slice(id);
                out.extend_from_slice(&ip);
            }
            StoredEvent::Evicted { id, subnet } => {
                let (network, bits) = subnet.map_or(([0; IP_LEN], NO_SUBNET), Subnet::stored);
                out.extend_from_slice(id);
                out.extend_from_slice(&network);
                out.push(bits);
            }
            StoredEvent::LocalSeq { seq } => out.extend_from_slice(&seq.to_le_bytes()),
            StoredEvent::Loss(loss) => loss.encode(out),
        }
    }

    /// The public form, with its own copy of the id; `written_at` is the record's write time
    /// (a loss's `at`).
    pub fn into_event(self, written_at: i64) -> Event {
        let at = from_unix_nanos;
        match self {
            StoredEvent::NodeUpdated { id, endpoint } => {
                Event::NodeUpdated(endpoint.with_id(NodeId(*id)))
            }
            StoredEvent::Record { id, rlp, .. } => Event::Record(
                NodeRecord::from_stored(NodeId(*id), rlp).expect("a decoded record parses"),
            ),
            StoredEvent::Ping { id, at: t } => Event::Ping {
                id: NodeId(*id),
                at: at(t),
            },
            StoredEvent::Pong { id, at: t } => Event::Pong {
                id: NodeId(*id),
                at: at(t),
            },
            StoredEvent::FindFails { id, fails } => Event::FindFails {
                id: NodeId(*id),
                fails,
            },
            StoredEvent::PingFrom { id, ip, at: t } => Event::PingFrom {
                id: NodeId(*id),
                ip: ip_from_key(ip),
                at: at(t),
            },
            StoredEvent::PongFrom { id, ip, at: t } => Event::PongFrom {
                id: NodeId(*id),
                ip: ip_from_key(ip),
                at: at(t),
            },
            StoredEvent::FindFailsAt { id, ip, fails } => Event::FindFailsAt {
                id: NodeId(*id),
                ip: ip_from_key(ip),
                fails,
            },
            StoredEvent::NodeDeleted { id } => Event::NodeDeleted { id: NodeId(*id) },
            StoredEvent::NodeExpired { id } => Event::NodeExpired { id: NodeId(*id) },
            StoredEvent::IpExpired { id, ip } => Event::IpExpired {
                id: NodeId(*id),
                ip: ip_from_key(ip),
            },
            StoredEvent::LocalSeq { seq } => Event::LocalSeq { seq },
            StoredEvent::Loss(loss) => Event::Loss(loss.damage(at(written_at))),
            StoredEvent::Evicted { id, subnet } => Event::Evicted {
                id: NodeId(*id),
                subnet,
            },
            StoredEvent::IpEvicted { id, ip } => Event::IpEvicted {
                id: NodeId(*id),
                ip: ip_from_key(ip),
            },
        }
    }

    /// Decodes a payload written by [`Event::encode_payload`]: its write time and event, or
    /// `None` if it is not a well-formed payload of that kind (each kind has an exact length,
    /// or for records a bounded one, checked before any field is read).
    #[inline(always)]
    pub fn decode(kind: u8, payload: &'a [u8]) -> Option<(i64, StoredEvent<'a>)> {
        let decoded = StoredEvent::decode_vouched(kind, payload)?;
        if let StoredEvent::Record { rlp, .. } = decoded.1 {
            // Strictly, or the frame is damage; the fields are read again when needed.
            RecordFields::is_valid(rlp).then_some(())?;
        }
        Some(decoded)
    }

    /// Whether `payload` passes the checks of [`StoredEvent::decode`] that
    /// [`StoredEvent::decode_vouched`] leaves out: a signed record's RLP parses.
    pub fn passes_deep_checks(kind: u8, payload: &[u8]) -> bool {
        kind != kind::RECORD
            || payload
                .get(ID_PAYLOAD_LEN..)
                .is_some_and(RecordFields::is_valid)
    }

    /// [`StoredEvent::decode`] of a payload that [`StoredEvent::passes_deep_checks`] accepted
    /// (another thread checked it ahead of the scan): it gives what `decode` gives, without
    /// parsing a signed record's RLP a second time.
    #[inline(always)]
    pub fn decode_vouched(kind: u8, payload: &'a [u8]) -> Option<(i64, StoredEvent<'a>)> {
        let written_at = i64::from_le_bytes(payload.get(..TIME_LEN)?.try_into().ok()?);
        let body = &payload[TIME_LEN..];
        let id = || -> Option<&'a IdBytes> { body.get(..NODE_ID_LEN)?.try_into().ok() };
        let tail = || &body[NODE_ID_LEN..];
        let time = || Some(i64::from_le_bytes(tail().try_into().ok()?));
        // For the per-IP kinds: the IP after the id, then what follows it.
        let ip = || -> Option<IpKey> { tail().get(..IP_LEN)?.try_into().ok() };
        let after_ip = || &tail()[IP_LEN..];
        let time_after_ip = || Some(i64::from_le_bytes(after_ip().try_into().ok()?));
        let event = match (kind, payload.len()) {
            (kind::NODE_UPDATED, _) => {
                let (id, endpoint) = parse_node_rlp(body).ok()?;
                StoredEvent::NodeUpdated { id, endpoint }
            }
            (kind::RECORD, ID_PAYLOAD_LEN..=MAX_RECORD_PAYLOAD_LEN) => StoredEvent::Record {
                id: id()?,
                rlp: tail(),
            },
            (kind::PING, PING_PAYLOAD_LEN) => StoredEvent::Ping {
                id: id()?,
                at: time()?,
            },
            (kind::PONG, PING_PAYLOAD_LEN) => StoredEvent::Pong {
                id: id()?,
                at: time()?,
            },
            (kind::FIND_FAILS, FAILS_PAYLOAD_LEN) => StoredEvent::FindFails {
                id: id()?,
                fails: u32::from_le_bytes(tail().try_into().ok()?),
            },
            (kind::PING_FROM, PING_FROM_PAYLOAD_LEN) => StoredEvent::PingFrom {
                id: id()?,
                ip: ip()?,
                at: time_after_ip()?,
            },
            (kind::PONG_FROM, PING_FROM_PAYLOAD_LEN) => StoredEvent::PongFrom {
                id: id()?,
                ip: ip()?,
                at: time_after_ip()?,
            },
            (kind::FAILS_AT, FAILS_AT_PAYLOAD_LEN) => StoredEvent::FindFailsAt {
                id: id()?,
                ip: ip()?,
                fails: u32::from_le_bytes(after_ip().try_into().ok()?),
            },
            (kind::NODE_DELETED, ID_PAYLOAD_LEN) => StoredEvent::NodeDeleted { id: id()? },
            (kind::NODE_EXPIRED, ID_PAYLOAD_LEN) => StoredEvent::NodeExpired { id: id()? },
            (kind::IP_EXPIRED, IP_PAYLOAD_LEN) => StoredEvent::IpExpired {
                id: id()?,
                ip: ip()?,
            },
            (kind::LOCAL_SEQ, LOCAL_SEQ_PAYLOAD_LEN) => StoredEvent::LocalSeq {
                seq: u64::from_le_bytes(body.try_into().ok()?),
            },
            (kind::LOSS, LOSS_PAYLOAD_LEN) => StoredEvent::Loss(Loss::decode(body)?),
            (kind::EVICTED, EVICTED_PAYLOAD_LEN) => StoredEvent::Evicted {
                id: id()?,
                subnet: match (ip()?, after_ip()[0]) {
                    (network, NO_SUBNET) if network == [0; IP_LEN] => None,
                    (network, bits) => Some(Subnet::from_stored(network, bits)?),
                },
            },
            (kind::IP_EVICTED, IP_PAYLOAD_LEN) => StoredEvent::IpEvicted {
                id: id()?,
                ip: ip()?,
            },
            _ => return None,
        };
        Some((written_at, event))
    }
}

/// Encodes events into record payloads: the one encoder of the writer path (`NodeDb`'s
/// appends) and of compaction. It takes events in stored form, their timestamps converted
/// once (by [`StoredEvent::from_event`], or not at all for what the index holds).
#[derive(Default)]
pub(crate) struct PayloadEncoder {
    payload: Vec<u8>,
}

impl PayloadEncoder {
    /// The kind byte and payload of `event` written at `written_at` (nanoseconds since the
    /// epoch): what a frame of the journal carries.
    pub fn encode(&mut self, event: &StoredEvent<'_>, written_at: i64) -> (u8, &[u8]) {
        self.payload.clear();
        event.encode_payload(written_at, &mut self.payload);
        (event.kind().code(), &self.payload)
    }
}

/// A record in stored form, borrowing from the log bytes it was decoded from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredRecord<'a> {
    pub seq: u64,
    pub written_at: i64,
    pub event: StoredEvent<'a>,
}

impl Decoded<'_> for LogRecord {
    fn decode(seq: u64, kind: u8, payload: &[u8]) -> Option<LogRecord> {
        let (written_at, event) = Event::decode_payload(kind, payload)?;
        Some(LogRecord {
            seq,
            written_at: from_unix_nanos(written_at),
            event,
        })
    }

    fn seq(&self) -> u64 {
        self.seq
    }
}

impl<'a> Decoded<'a> for StoredRecord<'a> {
    // Always inlined into the scan: returned through memory, the record is copied back with
    // loads that straddle the stores that wrote it, and stalls.
    #[inline(always)]
    fn decode(seq: u64, kind: u8, payload: &'a [u8]) -> Option<StoredRecord<'a>> {
        let (written_at, event) = StoredEvent::decode(kind, payload)?;
        Some(StoredRecord {
            seq,
            written_at,
            event,
        })
    }

    #[inline(always)]
    fn passes_deep_checks(kind: u8, payload: &[u8]) -> bool {
        StoredEvent::passes_deep_checks(kind, payload)
    }

    #[inline(always)]
    fn decode_vouched(seq: u64, kind: u8, payload: &'a [u8]) -> Option<StoredRecord<'a>> {
        let (written_at, event) = StoredEvent::decode_vouched(kind, payload)?;
        Some(StoredRecord {
            seq,
            written_at,
            event,
        })
    }

    fn seq(&self) -> u64 {
        self.seq
    }
}

impl DecodedInPlace for StoredRecord<'_> {
    type In<'m> = StoredRecord<'m>;
}

/// The times the log can store, each end included: 1677-09-21T00:12:43.145224193Z to
/// 2262-04-11T23:47:16.854775807Z (nanoseconds since the Unix epoch, in an `i64`). A write of
/// a time outside it (a ping, a pong, a timestamp given to
/// [`NodeDb::update_last_pong_from`](crate::NodeDb::update_last_pong_from), ...) fails with
/// [`Error::InvalidInput`], and so does any write while the clock is outside it (each record
/// carries the time it was written).
///
/// ```
/// use std::time::{Duration, SystemTime, UNIX_EPOCH};
/// let times = peerlog::storable_times();
/// assert!(times.contains(&SystemTime::now()));
/// assert_eq!(*times.end(), UNIX_EPOCH + Duration::from_nanos(i64::MAX as u64));
/// assert!(!times.contains(&(*times.start() - Duration::from_nanos(1))));
/// ```
pub fn storable_times() -> RangeInclusive<SystemTime> {
    let extent = Duration::from_nanos(i64::MAX as u64);
    UNIX_EPOCH - extent..=UNIX_EPOCH + extent
}

/// Nanoseconds since the Unix epoch, as stored on disk. Times outside about 1677..2262 do not
/// fit and are refused.
pub(crate) fn unix_nanos(t: SystemTime) -> Result<i64, Error> {
    let out_of_range = || {
        let secs = match t.duration_since(UNIX_EPOCH) {
            Ok(after) => format!("{} s after", after.as_secs()),
            Err(before) => format!("{} s before", before.duration().as_secs()),
        };
        Error::invalid(format!(
            "timestamp {secs} 1970-01-01 is outside what the log stores (1677 to 2262)"
        ))
    };
    match t.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_nanos()).map_err(|_| out_of_range()),
        Err(before) => i64::try_from(before.duration().as_nanos())
            .map(|n| -n)
            .map_err(|_| out_of_range()),
    }
}

/// The inverse of [`unix_nanos`].
pub(crate) fn from_unix_nanos(nanos: i64) -> SystemTime {
    let magnitude = Duration::from_nanos(nanos.unsigned_abs());
    if nanos >= 0 {
        UNIX_EPOCH + magnitude
    } else {
        UNIX_EPOCH - magnitude
    }
}

/// The current wall-clock time in stored form (saturating, since clocks can be set anywhere).
pub(crate) fn now_nanos() -> i64 {
    unix_nanos(SystemTime::now()).unwrap_or(i64::MAX)
}

/// The oldest time a pong may have to be at most `max_age` old now, in stored form.
pub(crate) fn min_time(max_age: Duration) -> i64 {
    let max_age = i64::try_from(max_age.as_nanos()).unwrap_or(i64::MAX);
    now_nanos().saturating_sub(max_age)
}
