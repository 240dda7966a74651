//! Events: what the log records, and their payload encoding (see docs/FORMAT.md).

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::node::{parse_node_rlp, Endpoint, Node, NodeId, NODE_ID_LEN};
use crate::Error;

/// One change to the database, as it is recorded in the log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Event {
    /// A node record was inserted or overwritten.
    NodeUpdated(Node),
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
    /// Everything known about `id` was deleted by `delete_node`.
    NodeDeleted {
        /// The node.
        id: NodeId,
    },
    /// Everything known about `id` was dropped by expiration.
    NodeExpired {
        /// The node.
        id: NodeId,
    },
}

/// An event as read back from the log, with its place in it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    /// Sequence number: grows by one per record across the whole log.
    pub seq: u64,
    /// Wall-clock time the event was written.
    pub written_at: SystemTime,
    /// What happened.
    pub event: Event,
}

/// The kinds of [`Event`], in the order of their kind byte in a record frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum EventKind {
    /// [`Event::NodeUpdated`].
    Node,
    /// [`Event::Ping`].
    Ping,
    /// [`Event::Pong`].
    Pong,
    /// [`Event::FindFails`].
    Fails,
    /// [`Event::NodeDeleted`].
    Delete,
    /// [`Event::NodeExpired`].
    Expire,
}

impl EventKind {
    /// Every kind, in order.
    pub const ALL: [EventKind; 6] = [
        EventKind::Node,
        EventKind::Ping,
        EventKind::Pong,
        EventKind::Fails,
        EventKind::Delete,
        EventKind::Expire,
    ];

    /// A short lowercase name: `node`, `ping`, `pong`, `fails`, `delete`, `expire`.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::Node => "node",
            EventKind::Ping => "ping",
            EventKind::Pong => "pong",
            EventKind::Fails => "fails",
            EventKind::Delete => "delete",
            EventKind::Expire => "expire",
        }
    }

    /// Its kind byte in a record frame.
    pub(crate) fn code(self) -> u8 {
        match self {
            EventKind::Node => kind::NODE_UPDATED,
            EventKind::Ping => kind::PING,
            EventKind::Pong => kind::PONG,
            EventKind::Fails => kind::FIND_FAILS,
            EventKind::Delete => kind::NODE_DELETED,
            EventKind::Expire => kind::NODE_EXPIRED,
        }
    }
}

impl std::fmt::Display for EventKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// Kind byte of each event in a record frame.
pub(crate) mod kind {
    pub const NODE_UPDATED: u8 = 1;
    pub const PING: u8 = 2;
    pub const PONG: u8 = 3;
    pub const FIND_FAILS: u8 = 4;
    pub const NODE_DELETED: u8 = 5;
    pub const NODE_EXPIRED: u8 = 6;
}

/// Bytes of the `written_at` field that starts every payload.
const TIME_LEN: usize = 8;
/// Payload of a ping or pong: written_at, id, at.
pub(crate) const PING_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN + 8;
/// Payload of a findnode failure count: written_at, id, fails.
pub(crate) const FAILS_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN + 4;
/// Payload of a delete or expiry: written_at, id.
pub(crate) const ID_PAYLOAD_LEN: usize = TIME_LEN + NODE_ID_LEN;

impl Event {
    /// The node the event is about.
    pub fn id(&self) -> &NodeId {
        match self {
            Event::NodeUpdated(node) => &node.id,
            Event::Ping { id, .. }
            | Event::Pong { id, .. }
            | Event::FindFails { id, .. }
            | Event::NodeDeleted { id }
            | Event::NodeExpired { id } => id,
        }
    }

    /// What kind of event it is.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::NodeUpdated(_) => EventKind::Node,
            Event::Ping { .. } => EventKind::Ping,
            Event::Pong { .. } => EventKind::Pong,
            Event::FindFails { .. } => EventKind::Fails,
            Event::NodeDeleted { .. } => EventKind::Delete,
            Event::NodeExpired { .. } => EventKind::Expire,
        }
    }

    /// Writes the payload (written_at first) into `out`, returning its length.
    pub(crate) fn encode_payload(&self, written_at: i64, out: &mut Vec<u8>) -> Result<(), Error> {
        out.extend_from_slice(&written_at.to_le_bytes());
        match self {
            Event::NodeUpdated(node) => out.extend_from_slice(&node.to_rlp()),
            Event::Ping { id, at } | Event::Pong { id, at } => {
                out.extend_from_slice(&id.0);
                out.extend_from_slice(&unix_nanos(*at)?.to_le_bytes());
            }
            Event::FindFails { id, fails } => {
                out.extend_from_slice(&id.0);
                out.extend_from_slice(&fails.to_le_bytes());
            }
            Event::NodeDeleted { id } | Event::NodeExpired { id } => out.extend_from_slice(&id.0),
        }
        Ok(())
    }

    /// Decodes a payload of the given kind. `None` for anything malformed: the caller treats
    /// such a record as damage even though its checksum matched.
    pub(crate) fn decode_payload(kind: u8, payload: &[u8]) -> Option<(i64, Event)> {
        let (written_at, stored) = StoredEvent::decode(kind, payload)?;
        Some((written_at, stored.into_event()))
    }
}

/// An event as the index applies it: timestamps in stored form (nanoseconds since the epoch)
/// and the id borrowed, from the payload bytes on replay or from the [`Event`] on a write.
/// Replay decodes straight into it from the mapped log, copying nothing but a few integers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StoredEvent<'a> {
    NodeUpdated { id: &'a IdBytes, endpoint: Endpoint },
    Ping { id: &'a IdBytes, at: i64 },
    Pong { id: &'a IdBytes, at: i64 },
    FindFails { id: &'a IdBytes, fails: u32 },
    NodeDeleted { id: &'a IdBytes },
    NodeExpired { id: &'a IdBytes },
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
            Event::NodeDeleted { id } => StoredEvent::NodeDeleted { id: &id.0 },
            Event::NodeExpired { id } => StoredEvent::NodeExpired { id: &id.0 },
        })
    }

    /// The public form, with its own copy of the id.
    pub fn into_event(self) -> Event {
        match self {
            StoredEvent::NodeUpdated { id, endpoint } => {
                Event::NodeUpdated(endpoint.with_id(NodeId(*id)))
            }
            StoredEvent::Ping { id, at } => Event::Ping {
                id: NodeId(*id),
                at: from_unix_nanos(at),
            },
            StoredEvent::Pong { id, at } => Event::Pong {
                id: NodeId(*id),
                at: from_unix_nanos(at),
            },
            StoredEvent::FindFails { id, fails } => Event::FindFails {
                id: NodeId(*id),
                fails,
            },
            StoredEvent::NodeDeleted { id } => Event::NodeDeleted { id: NodeId(*id) },
            StoredEvent::NodeExpired { id } => Event::NodeExpired { id: NodeId(*id) },
        }
    }

    /// The bytes of the id the event is about.
    pub fn id(&self) -> &'a IdBytes {
        match *self {
            StoredEvent::NodeUpdated { id, .. }
            | StoredEvent::Ping { id, .. }
            | StoredEvent::Pong { id, .. }
            | StoredEvent::FindFails { id, .. }
            | StoredEvent::NodeDeleted { id }
            | StoredEvent::NodeExpired { id } => id,
        }
    }

    /// Decodes a payload written by [`Event::encode_payload`]: its write time and event, or
    /// `None` if it is not a well-formed payload of that kind.
    #[inline(always)]
    pub fn decode(kind: u8, payload: &'a [u8]) -> Option<(i64, StoredEvent<'a>)> {
        let written_at = i64::from_le_bytes(payload.get(..TIME_LEN)?.try_into().ok()?);
        let body = &payload[TIME_LEN..];
        let id = || -> Option<&'a IdBytes> { body.get(..NODE_ID_LEN)?.try_into().ok() };
        let tail = || &body[NODE_ID_LEN..];
        let time = || Some(i64::from_le_bytes(tail().try_into().ok()?));
        let event = match (kind, payload.len()) {
            (kind::NODE_UPDATED, _) => {
                let (id, endpoint) = parse_node_rlp(body).ok()?;
                StoredEvent::NodeUpdated { id, endpoint }
            }
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
            (kind::NODE_DELETED, ID_PAYLOAD_LEN) => StoredEvent::NodeDeleted { id: id()? },
            (kind::NODE_EXPIRED, ID_PAYLOAD_LEN) => StoredEvent::NodeExpired { id: id()? },
            _ => return None,
        };
        Some((written_at, event))
    }
}

/// A record in stored form, borrowing from the log bytes it was decoded from.
#[derive(Clone, Copy, Debug)]
pub(crate) struct StoredRecord<'a> {
    pub seq: u64,
    pub written_at: i64,
    pub event: StoredEvent<'a>,
}

/// Nanoseconds since the Unix epoch, as stored on disk. Times outside about 1677..2262 do not
/// fit and are refused.
pub(crate) fn unix_nanos(t: SystemTime) -> Result<i64, Error> {
    let out_of_range = || Error::invalid(format!("timestamp {t:?} is outside 1677..2262"));
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
