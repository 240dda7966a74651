//! Signed node records numbered by `n` (deterministic keys; each record signed once per
//! process, since signing is randomised), for the integration tests (peerlog's, and those of
//! `checks/tests/`, which include this folder). Public API only.

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::{Mutex, OnceLock};

use peerlog::NodeId;

/// The secp256k1 key of signed-record node `n` (deterministic).
pub fn record_key(n: u64) -> peerlog::enr::CombinedKey {
    let mut secret = [0x42u8; 32];
    secret[..8].copy_from_slice(&(n + 1).to_be_bytes());
    peerlog::enr::CombinedKey::secp256k1_from_bytes(&mut secret).expect("a valid secret key")
}

/// A signed record of node `n` with seq `seq`: IPv4 203.0.113.n, udp 30303, tcp 30304. The
/// same record (signature included: signing is randomised) for the same `n` and `seq`.
pub fn signed_record(n: u64, seq: u64) -> peerlog::enr::Enr<peerlog::enr::CombinedKey> {
    type Records = HashMap<(u64, u64), peerlog::enr::Enr<peerlog::enr::CombinedKey>>;
    static MADE: OnceLock<Mutex<Records>> = OnceLock::new();
    let mut made = MADE.get_or_init(Mutex::default).lock().unwrap();
    made.entry((n, seq))
        .or_insert_with(|| {
            peerlog::enr::Enr::builder()
                .ip4(Ipv4Addr::new(203, 0, 113, n as u8))
                .udp4(30303)
                .tcp4(30304)
                .seq(seq)
                .build(&record_key(n))
                .expect("a record")
        })
        .clone()
}

/// The id of the signed-record node `n`.
pub fn record_id(n: u64) -> NodeId {
    NodeId::from_enr(&signed_record(n, 1)).expect("a v4 record")
}

/// What a test record built by [`signed_record_with`] names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum RecordShape {
    /// IPv4 203.0.113.n, udp 30303, tcp 30304 (as [`signed_record`]).
    V4,
    /// IPv6 2001:db8::n only, udp6 30303.
    V6,
    /// Both addresses (the endpoint is the IPv4 one), udp 30303, udp6 30304.
    Both,
    /// No IP at all (udp 30303 only): stored, but it names no endpoint.
    NoIp,
    /// As `V4`, padded with an extra key to the largest record the `enr` crate builds (near
    /// the 300-byte limit): the longest record frame.
    Large,
}

/// The IPv4 address signed records of node `n` name.
pub fn record_ip4(n: u64) -> Ipv4Addr {
    Ipv4Addr::new(203, 0, 113, n as u8)
}

/// The IPv6 address signed records of node `n` name.
pub fn record_ip6(n: u64) -> std::net::Ipv6Addr {
    std::net::Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, n as u16)
}

/// A signed record of node `n` (key [`record_key`]) with seq `seq`, of the given shape. Cached
/// like [`signed_record`]: the same record, signature included, for the same arguments.
pub fn signed_record_with(
    n: u64,
    seq: u64,
    shape: RecordShape,
) -> peerlog::enr::Enr<peerlog::enr::CombinedKey> {
    type Records = HashMap<(u64, u64, RecordShape), peerlog::enr::Enr<peerlog::enr::CombinedKey>>;
    static MADE: OnceLock<Mutex<Records>> = OnceLock::new();
    let mut made = MADE.get_or_init(Mutex::default).lock().unwrap();
    made.entry((n, seq, shape))
        .or_insert_with(|| {
            let key = record_key(n);
            let build = |padding: usize| {
                let mut builder = peerlog::enr::Enr::builder();
                builder.seq(seq);
                match shape {
                    RecordShape::V4 | RecordShape::Large => {
                        builder.ip4(record_ip4(n)).udp4(30303).tcp4(30304);
                    }
                    RecordShape::V6 => {
                        builder.ip6(record_ip6(n)).udp6(30303);
                    }
                    RecordShape::Both => {
                        builder
                            .ip4(record_ip4(n))
                            .udp4(30303)
                            .ip6(record_ip6(n))
                            .udp6(30304);
                    }
                    RecordShape::NoIp => {
                        builder.udp4(30303);
                    }
                }
                if padding > 0 {
                    builder.add_value(b"zz", &vec![0x7a_u8; padding].as_slice());
                }
                builder.build(&key)
            };
            let base = build(0).expect("a record");
            if shape != RecordShape::Large {
                return base;
            }
            // The enr crate refuses content + signature + 8 > 300 bytes; a few tries from a
            // guess (each signs) find the largest padding it accepts.
            let room = 300usize.saturating_sub(base.size() + 8);
            (0..=room)
                .rev()
                .find_map(|padding| build(padding).ok())
                .expect("a padded record")
        })
        .clone()
}

/// The stored form of a signed record (what `Event::Record` and `PeerState::record` hold), as
/// `update_record` makes it: the record a database in memory holds after storing it.
pub fn stored_record(record: &peerlog::enr::Enr<peerlog::enr::CombinedKey>) -> peerlog::NodeRecord {
    let db = peerlog::NodeDb::in_memory(NodeId([0; 64]));
    db.update_record(record).expect("a storable record");
    let id = NodeId::from_enr(record).expect("a v4 record");
    db.peer(&id)
        .and_then(|peer| peer.record)
        .expect("the record just stored")
}
