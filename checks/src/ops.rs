//! The `ops_model` input: the pool of ids, IPs and signed records, and the operations and
//! steps decoded from fuzzer bytes.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arbitrary::{Arbitrary, Unstructured};
use peerlog::enr::{CombinedKey, Enr, EnrKey, EnrPublicKey};
use peerlog::testing::node_record;
use peerlog::{NodeId, NodeRecord};

// ---------------------------------------------------------------------------------------------
// ops_model

/// Ids the operations work on; the first is the database's own id.
pub(crate) const IDS: usize = 6;

/// The secp256k1 key of pool id `who` (deterministic), so that pool ids can have signed
/// records.
pub(crate) fn pool_key(who: usize) -> CombinedKey {
    let mut secret = [0x5e_u8; 32];
    secret[0] = who as u8 + 1;
    CombinedKey::secp256k1_from_bytes(&mut secret).expect("a valid secret key")
}

pub(crate) fn pool_id(who: u8) -> NodeId {
    static POOL: OnceLock<[NodeId; IDS]> = OnceLock::new();
    let ids = POOL.get_or_init(|| {
        std::array::from_fn(|w| {
            let public = pool_key(w).public().encode_uncompressed();
            NodeId(public.as_slice().try_into().expect("a 64-byte public key"))
        })
    });
    ids[who as usize % IDS]
}

/// IPs of the per-IP operations: an IPv4 address, its IPv4-mapped form (the same IP to the
/// database), an IPv6 address, and another IPv4 address. The signed records name these too,
/// so that a pong at an IP can make a seed.
pub(crate) const IPS: [IpAddr; 4] = [
    IpAddr::V4(Ipv4Addr::new(198, 51, 100, 7)),
    IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0xc633, 0x6407)),
    IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0, 0, 0, 0, 0, 7)),
    IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9)),
];

pub(crate) fn pool_ip(ip: u8) -> IpAddr {
    IPS[ip as usize % IPS.len()]
}

/// IPs of [`Step::IpFlood`]: more than an id holds slots for, IPv4 and IPv6 (some IPv6 ones
/// below the IPv4-mapped range, some above), so that IP slots are evicted.
pub(crate) const FLOOD_IPS: usize = 24;

pub(crate) fn flood_ip(k: u8) -> IpAddr {
    let k = k % FLOOD_IPS as u8;
    match k % 3 {
        0 => IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0, 0, u16::from(k) + 1)),
        1 => IpAddr::V6(Ipv6Addr::new(0x2001, 0xdb8, 0x77, 0, 0, 0, 0, u16::from(k))),
        _ => IpAddr::V4(Ipv4Addr::new(10, 77, 0, k)),
    }
}

/// Ids of [`Step::Flood`], beyond the pool: unsigned records and pongs only.
pub(crate) const FLOOD_IDS: u8 = 32;

pub(crate) fn flood_id(k: u8) -> NodeId {
    let mut bytes = [0xf1_u8; 64];
    bytes[1] = k % FLOOD_IDS;
    NodeId(bytes)
}

/// The distinct IPs of [`IPS`] and [`flood_ip`], in canonical form: what the checks probe.
pub(crate) fn canonical_ips() -> Vec<IpAddr> {
    let mut ips: Vec<IpAddr> = IPS
        .iter()
        .copied()
        .chain((0..FLOOD_IPS as u8).map(flood_ip))
        .map(|ip| ip.to_canonical())
        .collect();
    ips.sort();
    ips.dedup();
    ips
}

/// Signed records per pool id.
pub(crate) const RECORD_VARIANTS: usize = 6;

/// A pre-built signed record of a pool id: the `enr` crate's value for `update_record`, and
/// the stored form the model compares with.
pub(crate) struct PoolRecord {
    pub(crate) enr: Enr<CombinedKey>,
    pub(crate) record: NodeRecord,
}

/// Record `variant` of pool id `who`. Variants, by seq: 0: seq 0, IPv4 `IPS[0]`; 1: seq 1,
/// the same IP, another TCP port; 2: seq 2, IPv6 only (`IPS[2]`); 3: seq 2 (equal: it
/// replaces variant 2) without any IP; 4: seq 3, IPv4 `IPS[3]` and IPv6 `IPS[2]`; 5: seq 9,
/// IPv4 `IPS[3]`, padded to near the 300-byte limit. Signing is slow and randomised: each
/// id's records are built once per process, on first use, so that a record is the same
/// bytes every time it is written.
pub(crate) fn pool_record(who: u8, variant: u8) -> &'static PoolRecord {
    static POOL: [OnceLock<Vec<PoolRecord>>; IDS] = [const { OnceLock::new() }; IDS];
    let w = who as usize % IDS;
    let records = POOL[w].get_or_init(|| {
        let key = pool_key(w);
        (0..RECORD_VARIANTS)
            .map(|v| {
                let build = |padding: usize| {
                    let mut b = Enr::builder();
                    let v4 = |ip: IpAddr| match ip {
                        IpAddr::V4(v4) => v4,
                        IpAddr::V6(_) => unreachable!("an IPv4 pool IP"),
                    };
                    let v6 = match IPS[2] {
                        IpAddr::V6(v6) => v6,
                        IpAddr::V4(_) => unreachable!("the IPv6 pool IP"),
                    };
                    match v {
                        0 => b.seq(0).ip4(v4(IPS[0])).udp4(30303).tcp4(30303),
                        1 => b.seq(1).ip4(v4(IPS[0])).udp4(30303).tcp4(30304),
                        2 => b.seq(2).ip6(v6).udp6(9000),
                        3 => b.seq(2).udp4(9001),
                        4 => b.seq(3).ip4(v4(IPS[3])).udp4(1).ip6(v6).tcp6(2),
                        _ => b.seq(9).ip4(v4(IPS[3])).udp4(30305).tcp4(30305),
                    };
                    if padding > 0 {
                        b.add_value(b"zz", &vec![0x7a_u8; padding].as_slice());
                    }
                    b.build(&key)
                };
                let mut enr = build(0).expect("a pool record");
                if v == RECORD_VARIANTS - 1 {
                    // As large as the enr crate builds (it refuses content + signature + 8 >
                    // 300 bytes): the longest record frame. A few tries (each signs).
                    let room = 300usize.saturating_sub(enr.size() + 8);
                    enr = (0..=room)
                        .rev()
                        .find_map(|padding| build(padding).ok())
                        .expect("a padded record");
                }
                let record = node_record(&enr).expect("a storable record");
                PoolRecord { enr, record }
            })
            .collect()
    });
    &records[variant as usize % RECORD_VARIANTS]
}

/// A timestamp either long past (expired under the default 24 h) or far in the future (never
/// expired), so that expiry is independent of when the test runs.
#[derive(Arbitrary, Debug, Clone, Copy)]
pub struct Time {
    pub(crate) past: bool,
    pub(crate) secs: u32,
    pub(crate) nanos: u32,
}

impl Time {
    pub(crate) fn at(self) -> SystemTime {
        let base: u64 = if self.past {
            1_000_000_000
        } else {
            4_102_444_800
        };
        UNIX_EPOCH
            + Duration::new(
                base + u64::from(self.secs % 100_000_000),
                self.nanos % 1_000_000_000,
            )
    }
}

/// I/O steps an operation can be made to fail at (see `FailPoints`).
pub(crate) const FAIL_STEPS: [&str; 4] = [
    "segment.write",
    "segment.fsync",
    "segment.rename",
    "log.fsync",
];

/// One step of an `ops_model` run.
///
/// `arbitrary`'s derive picks a variant by scaling a `u32` by the number of variants, so
/// adding variants changes what every existing input decodes to. Inputs that start with
/// [`OPS_V2`] decode with this enum; any other input decodes as before format 2 (the first
/// thirteen variants only, see `legacy_op`), so that the corpus and regression files of the
/// earlier campaigns keep their meaning.
#[derive(Arbitrary, Debug)]
pub enum Op {
    /// `update_node` of a pool id.
    Update {
        /// Pool index.
        who: u8,
        /// IPv6 instead of IPv4.
        v6: bool,
        /// Address bytes.
        ip: [u8; 16],
        /// UDP port.
        udp: u16,
        /// TCP port.
        tcp: u16,
    },
    /// `update_last_ping`.
    Ping {
        /// Pool index.
        who: u8,
        /// When.
        time: Time,
    },
    /// `update_last_pong`.
    Pong {
        /// Pool index.
        who: u8,
        /// When.
        time: Time,
    },
    /// `update_find_fails`.
    Fails {
        /// Pool index.
        who: u8,
        /// Count.
        fails: u32,
    },
    /// `delete_node`.
    Delete {
        /// Pool index.
        who: u8,
    },
    /// Up to 47 writes of mixed kinds, so that segments fill and rotate.
    Burst {
        /// Varies the ids, kinds and times.
        seed: u8,
        /// How many writes (modulo 48).
        count: u8,
    },
    /// `expire_nodes`.
    Expire,
    /// `compact`.
    Compact,
    /// `sync` (fails and poisons the database if a `log.fsync` failure is armed).
    Sync,
    /// Clean close and reopen.
    Reopen,
    /// Crash image: the files are copied while the database is open (what `kill -9` leaves
    /// with `Process` durability), and the copy is opened.
    Crash,
    /// Close, cut the last segment at an offset past its header, optionally append garbage,
    /// reopen.
    TornTail {
        /// Where to cut, modulo the segment's length.
        cut: u16,
        /// Bytes that persisted after the cut (at most 48 are used).
        garbage: Vec<u8>,
    },
    /// Makes the next occurrence of an I/O step fail once.
    FailNext {
        /// Index into the steps.
        step: u8,
    },
    // Format 2 (inputs starting with `OPS_V2` only).
    /// `update_record` of one of a pool id's pre-built signed records.
    Record {
        /// Pool index.
        who: u8,
        /// Which record (modulo 6: see `pool_record`).
        variant: u8,
    },
    /// `update_last_ping_from`.
    PingFrom {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// When.
        time: Time,
    },
    /// `update_last_pong_from`.
    PongFrom {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// When.
        time: Time,
    },
    /// `update_find_fails_at`.
    FailsAt {
        /// Pool index.
        who: u8,
        /// Index into the pool IPs.
        ip: u8,
        /// Count.
        fails: u32,
    },
    /// `store_local_seq`.
    LocalSeq {
        /// The seq.
        seq: u64,
    },
    /// Up to 47 writes of the format-2 kinds (records, per-IP pings, pongs and fails, the
    /// local seq), so that segments of them fill and rotate.
    BurstV2 {
        /// Varies the ids, kinds, IPs and times.
        seed: u8,
        /// How many writes (modulo 48).
        count: u8,
    },
}

/// The prefix of `ops_model` inputs that decode with every variant of [`Op`].
pub const OPS_V2: &[u8] = b"ops2";

/// Decodes an operation as inputs written before format 2 do: a variant of the first
/// thirteen, chosen and filled exactly as `arbitrary`'s derive did for that enum.
pub(crate) fn legacy_op(u: &mut Unstructured<'_>) -> arbitrary::Result<Op> {
    const LEGACY_VARIANTS: u64 = 13;
    let variant = (u64::from(u.arbitrary::<u32>()?) * LEGACY_VARIANTS) >> 32;
    Ok(match variant {
        0 => Op::Update {
            who: u.arbitrary()?,
            v6: u.arbitrary()?,
            ip: u.arbitrary()?,
            udp: u.arbitrary()?,
            tcp: u.arbitrary()?,
        },
        1 => Op::Ping {
            who: u.arbitrary()?,
            time: u.arbitrary()?,
        },
        2 => Op::Pong {
            who: u.arbitrary()?,
            time: u.arbitrary()?,
        },
        3 => Op::Fails {
            who: u.arbitrary()?,
            fails: u.arbitrary()?,
        },
        4 => Op::Delete {
            who: u.arbitrary()?,
        },
        5 => Op::Burst {
            seed: u.arbitrary()?,
            count: u.arbitrary()?,
        },
        6 => Op::Expire,
        7 => Op::Compact,
        8 => Op::Sync,
        9 => Op::Reopen,
        10 => Op::Crash,
        11 => Op::TornTail {
            cut: u.arbitrary()?,
            garbage: u.arbitrary()?,
        },
        _ => Op::FailNext {
            step: u.arbitrary()?,
        },
    })
}

/// The prefix of `ops_model` inputs of format 3: a byte that sets `max_nodes` (1 to 8), then
/// [`Step`]s (every [`Op`], and the floods that make evictions of ids and IP slots).
pub const OPS_V3: &[u8] = b"ops3";

/// `max_nodes` of the runs of inputs before format 3: fewer than the pool's ids, so that the
/// operations of every earlier campaign evict too.
pub(crate) const LEGACY_MAX_NODES: usize = 4;

/// One step of a format-3 `ops_model` run.
#[derive(Arbitrary, Debug)]
pub enum Step {
    /// Any operation of the earlier formats.
    Op(Op),
    /// Up to 31 writes about ids beyond the pool (of `FLOOD_IDS`): unsigned records on a
    /// few subnets, and pongs (past or future), so that a full store evicts.
    Flood {
        /// Varies the ids, subnets, kinds and times.
        seed: u8,
        /// How many writes (modulo 32).
        count: u8,
    },
    /// Up to 31 per-IP writes about one pool id at the IPs of `flood_ip`, more than an id
    /// holds slots for.
    IpFlood {
        /// Pool index.
        who: u8,
        /// Varies the IPs, kinds and times.
        seed: u8,
        /// How many writes (modulo 32).
        count: u8,
    },
}

/// Decodes an `ops_model` input into its `max_nodes` and at most 96 steps.
pub fn decode_steps(data: &[u8]) -> (usize, Vec<Step>) {
    let Some(body) = data.strip_prefix(OPS_V3) else {
        let ops = decode_ops(data);
        return (LEGACY_MAX_NODES, ops.into_iter().map(Step::Op).collect());
    };
    let Some((&max, body)) = body.split_first() else {
        return (LEGACY_MAX_NODES, Vec::new());
    };
    let mut u = Unstructured::new(body);
    let mut steps = Vec::new();
    while steps.len() < 96 {
        match u.arbitrary::<Step>() {
            Ok(step) => steps.push(step),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    (1 + usize::from(max % 8), steps)
}

/// Decodes an `ops_model` input before format 3 into at most 96 operations.
pub fn decode_ops(data: &[u8]) -> Vec<Op> {
    let (v2, body) = match data.strip_prefix(OPS_V2) {
        Some(body) => (true, body),
        None => (false, data),
    };
    let mut u = Unstructured::new(body);
    let mut ops = Vec::new();
    while ops.len() < 96 {
        let op = if v2 {
            u.arbitrary::<Op>()
        } else {
            legacy_op(&mut u)
        };
        match op {
            Ok(op) => ops.push(op),
            Err(_) => break,
        }
        if u.is_empty() {
            break;
        }
    }
    ops
}
