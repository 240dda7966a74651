//! The one model of peer state: what the database holds after a sequence of events (records,
//! signed records, liveness to no IP and per IP, the local seq), with the bounded store's
//! eviction rule and expiry; and what the public API says about an id, to compare with it. The
//! fuzz harness and the crash, power-loss, API and concurrency tests all check against it:
//! each turns its writes into the [`Event`]s the database logs and applies them here.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::time::{SystemTime, UNIX_EPOCH};

use peerlog::{Event, Node, NodeDb, NodeId, NodeRecord, Subnet, MAX_IPS_PER_ID};

/// A time as the log stores it: nanoseconds since the epoch (negative before it).
pub fn nanos(t: SystemTime) -> i64 {
    match t.duration_since(UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i64,
        // i64::MIN nanoseconds is a stored time too; negate in i128.
        Err(e) => (-(e.duration().as_nanos() as i128)) as i64,
    }
}

/// Liveness at one IP, as the API reports it.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Slot {
    /// Last ping, in [`nanos`].
    pub ping: Option<i64>,
    /// Last pong, in [`nanos`].
    pub pong: Option<i64>,
    /// Findnode failures.
    pub fails: u32,
}

/// What the public API says about one id, with its liveness at each of the probed IPs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Observed {
    /// `node`: the endpoint of the unsigned record or of the signed one.
    pub node: Option<Node>,
    /// The signed record (`peer(id).record`).
    pub record: Option<NodeRecord>,
    /// `last_ping`, in [`nanos`].
    pub ping: Option<i64>,
    /// `last_pong`, in [`nanos`].
    pub pong: Option<i64>,
    /// `find_fails`.
    pub fails: u32,
    /// Liveness at each probed IP.
    pub ips: Vec<(IpAddr, Slot)>,
}

impl Observed {
    /// The same with the signed record reduced to its seq (its endpoint stays in `node`): for
    /// tests that cannot make the very record the database holds (signing is randomised).
    pub fn without_signature(mut self) -> (Observed, Option<u64>) {
        let seq = self.record.take().map(|r| r.seq());
        (self, seq)
    }

    /// Whether the id has a record, unsigned or signed (what `len()` counts).
    pub fn has_record(&self) -> bool {
        self.node.is_some() || self.record.is_some()
    }
}

/// Reads everything the API says about `id`, at each IP of `ips` (canonical ones). An IPv4
/// address and its IPv4-mapped form must read the same, and every IP slot the database lists
/// for `id` must be one of `ips` (so that nothing is left unchecked).
pub fn observe(db: &NodeDb, id: &NodeId, ips: &[IpAddr]) -> Observed {
    let slot = |ip: IpAddr| Slot {
        ping: db.last_ping_from(id, ip).map(nanos),
        pong: db.last_pong_from(id, ip).map(nanos),
        fails: db.find_fails_at(id, ip),
    };
    let peer = db.peer(id);
    let record = peer.as_ref().and_then(|p| p.record.clone());
    assert_eq!(
        db.record_seq(id),
        record.as_ref().map_or(0, NodeRecord::seq),
        "record_seq of {id} disagrees with its record"
    );
    for listed in peer.iter().flat_map(|p| &p.ips) {
        assert!(
            ips.contains(&listed.ip),
            "{id} has a slot at {} (IPv4-mapped IPs must read as IPv4)",
            listed.ip
        );
    }
    let ips = ips
        .iter()
        .map(|&ip| {
            let values = slot(ip);
            if let IpAddr::V4(v4) = ip {
                let mapped = IpAddr::V6(v4.to_ipv6_mapped());
                assert_eq!(slot(mapped), values, "{id}: {ip} and {mapped} differ");
            }
            (ip, values)
        })
        .collect();
    Observed {
        node: db.node(id),
        record,
        ping: db.last_ping(id).map(nanos),
        pong: db.last_pong(id).map(nanos),
        fails: db.find_fails(id),
        ips,
    }
}

/// The local seq the database reports, if it is a stored one: `None` when it falls in the
/// window of the wall clock in milliseconds around the call (what `local_seq` returns when
/// none was stored). Stored values the checks write are below that window or recorded.
pub fn observe_local_seq(db: &NodeDb) -> Option<u64> {
    let ms = || nanos(SystemTime::now()) as u64 / 1_000_000;
    let before = ms();
    let seq = db.local_seq();
    let after = ms();
    (!(before..=after).contains(&seq)).then_some(seq)
}

/// What the model knows about one id (its presence in the map means the index has an entry,
/// or had one that a compaction dropped for holding no value, see [`Entry::is_blank`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entry {
    /// The endpoint: of the unsigned record, or of the signed one (`None` without IP).
    pub node: Option<Node>,
    /// The signed record.
    pub record: Option<NodeRecord>,
    /// Last ping to no particular IP, in [`nanos`].
    pub ping: Option<i64>,
    /// Last pong to no particular IP, in [`nanos`].
    pub pong: Option<i64>,
    /// Findnode failures to no particular IP.
    pub fails: u32,
    /// Per IP, keyed by the canonical IP.
    pub ips: BTreeMap<IpAddr, Slot>,
    /// When its newest event was written, as a place in the order of the writes (the
    /// eviction rule's "newest event"; write times themselves the model cannot know).
    pub touched: u64,
}

impl Entry {
    pub fn has_record(&self) -> bool {
        self.node.is_some() || self.record.is_some()
    }

    /// The seq `update_record` and `update_node` compare with: the signed record's, else 0.
    pub fn record_seq(&self) -> u64 {
        self.record.as_ref().map_or(0, NodeRecord::seq)
    }

    /// Whether it holds no value at all: a compaction writes nothing for it, so after one and
    /// a reopen the index has no entry for it (invisible through the API but to `delete`).
    pub fn is_blank(&self) -> bool {
        let blank = Slot::default();
        !self.has_record()
            && self.ping.is_none()
            && self.pong.is_none()
            && self.fails == 0
            && self.ips.values().all(|s| *s == blank)
    }

    /// Whether `query_seeds` offers it (`Index::is_seed`): an endpoint, not this node, and a
    /// pong at or after `min_pong` to no particular IP or from the endpoint's IP.
    pub fn is_seed(&self, id: &NodeId, self_id: &NodeId, min_pong: i64) -> bool {
        let Some(node) = &self.node else {
            return false;
        };
        id != self_id
            && (self.pong.is_some_and(|p| p >= min_pong)
                || self
                    .ips
                    .get(&node.ip.to_canonical())
                    .and_then(|s| s.pong)
                    .is_some_and(|p| p >= min_pong))
    }

    /// What the API says about an id in this state, at each of `ips` (canonical).
    pub fn observed(&self, ips: &[IpAddr]) -> Observed {
        Observed {
            node: self.node.clone(),
            record: self.record.clone(),
            ping: self.ping,
            pong: self.pong,
            fails: self.fails,
            ips: ips
                .iter()
                .map(|ip| (*ip, self.ips.get(ip).copied().unwrap_or_default()))
                .collect(),
        }
    }
}

/// The state a sequence of events amounts to.
#[derive(Clone, Debug, Default)]
pub struct Model {
    /// What is known per id: an id is held (counts against `max_nodes`) while it is here.
    pub entries: BTreeMap<NodeId, Entry>,
    /// The stored local seq.
    pub local_seq: Option<u64>,
    /// Events applied: the place of the next in the order of writes.
    pub applied: u64,
}

impl Model {
    /// The state `events` amount to, applied in order.
    pub fn of(events: &[Event]) -> Model {
        let mut state = Model::default();
        for event in events {
            state.apply(event);
        }
        state
    }

    /// Applies a record as replay does (no seq rule here: what is in the log is applied).
    pub fn apply(&mut self, event: &Event) {
        let state = self;
        state.applied += 1;
        if holds_id(event) {
            if let Some(id) = event.id() {
                state.entries.entry(*id).or_default().touched = state.applied;
            }
        }
        let entries = &mut state.entries;
        match event {
            Event::NodeUpdated(node) => {
                let entry = entries.entry(node.id).or_default();
                entry.node = Some(node.clone());
                entry.record = None;
            }
            Event::Record(record) => {
                let entry = entries.entry(*record.id()).or_default();
                entry.node = record.node();
                entry.record = Some(record.clone());
            }
            Event::Ping { id, at } => entries.entry(*id).or_default().ping = Some(nanos(*at)),
            Event::Pong { id, at } => entries.entry(*id).or_default().pong = Some(nanos(*at)),
            Event::FindFails { id, fails } => entries.entry(*id).or_default().fails = *fails,
            Event::PingFrom { id, ip, at } => {
                let entry = entries.entry(*id).or_default();
                entry.ips.entry(ip.to_canonical()).or_default().ping = Some(nanos(*at));
            }
            Event::PongFrom { id, ip, at } => {
                let entry = entries.entry(*id).or_default();
                entry.ips.entry(ip.to_canonical()).or_default().pong = Some(nanos(*at));
            }
            Event::FindFailsAt { id, ip, fails } => {
                let entry = entries.entry(*id).or_default();
                entry.ips.entry(ip.to_canonical()).or_default().fails = *fails;
            }
            Event::NodeDeleted { id } | Event::NodeExpired { id } | Event::Evicted { id, .. } => {
                entries.remove(id);
            }
            Event::IpExpired { id, ip } | Event::IpEvicted { id, ip } => {
                if let Some(entry) = entries.get_mut(id) {
                    entry.ips.remove(&ip.to_canonical());
                }
            }
            Event::LocalSeq { seq } => state.local_seq = Some(*seq),
            // About the log, not its state: tests/losses.rs checks them.
            Event::Loss(_) => {}
            other => panic!("the model knows no {} event", other.kind().name()),
        }
    }

    /// The id the rule evicts from `state` (DESIGN.md, "A bounded store"), and its subnet: of the
    /// ids no pong proved, the one whose newest event is oldest (ties: the lowest subnet, the ids
    /// without endpoint lowest, then the lowest id); when every id is proven, of the subnet
    /// holding the most ids (ties: the lowest), the node with the oldest newest pong (ties: the
    /// lowest id). The model orders writes, not their times: `written_at` gives the database's
    /// write time of each id's newest event, checked to grow with the model's order, so that two
    /// writes in the same clock tick tie as the rule says.
    pub fn victim(
        &self,
        written_at: impl Fn(&NodeId) -> SystemTime,
    ) -> Option<(NodeId, Option<Subnet>)> {
        let state = self;
        let subnet = |e: &Entry| e.node.as_ref().map(|n| Subnet::of(n.ip, 24, 48));
        let mut unproven: Vec<(&NodeId, &Entry)> = state
            .entries
            .iter()
            .filter(|(_, e)| newest_pong(e).is_none())
            .collect();
        if !unproven.is_empty() {
            unproven.sort_by_key(|(_, e)| e.touched);
            let times: Vec<SystemTime> = unproven.iter().map(|(id, _)| written_at(id)).collect();
            assert!(
                times.windows(2).all(|w| w[0] <= w[1]),
                "write times do not follow the order of the writes: {times:?}"
            );
            let (id, e) = unproven
                .iter()
                .zip(&times)
                .min_by_key(|((id, e), t)| (**t, group(e), **id))
                .map(|(x, _)| *x)?;
            return Some((*id, subnet(e)));
        }
        type Group<'a> = Vec<(&'a NodeId, &'a Entry)>;
        let mut groups: BTreeMap<Option<(u128, u8)>, Group<'_>> = BTreeMap::new();
        for (id, e) in &state.entries {
            groups.entry(group(e)).or_default().push((id, e));
        }
        let most = groups.values().map(Vec::len).max()?;
        let members = groups.values().find(|m| m.len() == most)?;
        let (id, e) = members
            .iter()
            .min_by_key(|(id, e)| (newest_pong(e), **id))?;
        Some((**id, subnet(e)))
    }

    /// The evictions a write of `event` makes first, as the rule says (DESIGN.md, "A bounded
    /// store"): when `event` is about an id the store does not hold and the store holds
    /// `max_nodes` ids, of the [`victim`](Model::victim)s until there is room; when it is about a
    /// new IP of an id holding the most IP slots, of the [`stalest_slot`]. `written_at` as for
    /// [`victim`](Model::victim).
    pub fn evictions(
        &self,
        event: &Event,
        max_nodes: usize,
        written_at: impl Fn(&NodeId) -> SystemTime,
    ) -> Vec<Event> {
        let Some(id) = event.id().filter(|_| holds_id(event)) else {
            return Vec::new();
        };
        let ip = match event {
            Event::PingFrom { ip, .. }
            | Event::PongFrom { ip, .. }
            | Event::FindFailsAt { ip, .. } => Some(*ip),
            _ => None,
        };
        if let Some(entry) = self.entries.get(id) {
            return ip
                .and_then(|ip| stalest_slot(entry, ip))
                .map(|ip| Event::IpEvicted { id: *id, ip })
                .into_iter()
                .collect();
        }
        let mut state = self.clone();
        let mut evictions = Vec::new();
        while state.entries.len() >= max_nodes {
            let Some((id, subnet)) = state.victim(&written_at) else {
                break;
            };
            let evicted = Event::Evicted { id, subnet };
            state.apply(&evicted);
            evictions.push(evicted);
        }
        evictions
    }

    /// [`evictions`](Model::evictions) for a store whose writes each got a time of their own, in
    /// the order of the writes (the model's order stands for the write times).
    pub fn evictions_in_write_order(&self, event: &Event, max_nodes: usize) -> Vec<Event> {
        self.evictions(event, max_nodes, |id| {
            UNIX_EPOCH + std::time::Duration::from_nanos(self.entries[id].touched)
        })
    }

    /// Whether `update_node` writes for `node`: unless the id has a signed record of seq 1 or
    /// more (then nothing is written, and it still returns `Ok`).
    pub fn writes_unsigned(&self, node: &Node) -> bool {
        self.entries
            .get(&node.id)
            .is_none_or(|e| e.record_seq() == 0)
    }

    /// What the model knows about `id` (an empty entry when nothing).
    pub fn entry(&self, id: &NodeId) -> Entry {
        self.entries.get(id).cloned().unwrap_or_default()
    }

    /// The nodes with a record, unsigned or signed (what `len()` returns).
    pub fn nodes(&self) -> usize {
        self.entries.values().filter(|e| e.has_record()).count()
    }

    /// What expiration writes (24 h expiration; times are either decades past or far future),
    /// in the model's order, and how many node records it drops. A node goes when its newest
    /// pong (to no particular IP or from any IP) is stale, or, for an id without a record, its
    /// newest ping or pong of any slot is; with nothing to judge by it was touched just now and
    /// stays. This node's record goes whatever its age. Of the nodes that stay, every IP slot
    /// whose pong, else ping, is stale goes (a slot with neither was touched just now).
    pub fn expired(&self, self_id: &NodeId) -> (Vec<Event>, usize) {
        let state = self;
        let threshold = nanos(SystemTime::now()) - 24 * 3600 * 1_000_000_000;
        let stale = |t: Option<i64>| t.is_some_and(|t| t < threshold);
        let mut expired = Vec::new();
        let mut records = 0;
        for (id, e) in &state.entries {
            let newest_pong = e.ips.values().map(|s| s.pong).fold(e.pong, Option::max);
            let newest = if e.has_record() {
                newest_pong
            } else {
                e.ips
                    .values()
                    .map(|s| s.ping)
                    .fold(newest_pong.max(e.ping), Option::max)
            };
            if stale(newest) || (id == self_id && e.has_record()) {
                expired.push(Event::NodeExpired { id: *id });
                records += usize::from(e.has_record());
                continue;
            }
            for (ip, slot) in &e.ips {
                if stale(slot.pong.or(slot.ping)) {
                    expired.push(Event::IpExpired { id: *id, ip: *ip });
                }
            }
        }
        (expired, records)
    }
}

/// Whether `event` is a write about an id that makes the index hold it (and so may have to
/// evict first): records and liveness, to no IP or per IP.
pub fn holds_id(event: &Event) -> bool {
    matches!(
        event,
        Event::NodeUpdated(_)
            | Event::Record(_)
            | Event::Ping { .. }
            | Event::Pong { .. }
            | Event::FindFails { .. }
            | Event::PingFrom { .. }
            | Event::PongFrom { .. }
            | Event::FindFailsAt { .. }
    )
}

/// The eviction group of an endpoint, as the model orders it: the network in 128 bits
/// (IPv4, and IPv4-mapped IPv6, as `::ffff:a.b.c.0`, cut to /24; IPv6 cut to /48) and the
/// prefix length in that form. `None` (no endpoint) orders below every subnet.
fn group(entry: &Entry) -> Option<(u128, u8)> {
    let ip = entry.node.as_ref()?.ip;
    let (word, bits) = match ip {
        IpAddr::V4(v4) => (u128::from(v4.to_ipv6_mapped()), 120),
        IpAddr::V6(v6) if v6.to_ipv4_mapped().is_some() => (u128::from(v6), 120),
        IpAddr::V6(v6) => (u128::from(v6), 48),
    };
    Some((word & !(u128::MAX >> bits), bits))
}

/// An entry's newest pong, to no IP or from any IP.
pub fn newest_pong(entry: &Entry) -> Option<i64> {
    entry
        .ips
        .values()
        .map(|s| s.pong)
        .fold(entry.pong, Option::max)
}

/// The IP slot of `entry` the rule evicts before a slot for `ip` is made, if any: when `ip`
/// has none and the entry holds the most, the stalest (the oldest pong, else ping, else the
/// entry's newest event; ties: the lowest IP in its 16-byte IPv4-mapped form).
pub fn stalest_slot(entry: &Entry, ip: IpAddr) -> Option<IpAddr> {
    if entry.ips.contains_key(&ip.to_canonical()) || entry.ips.len() < MAX_IPS_PER_ID {
        return None;
    }
    let octets = |ip: &IpAddr| match ip {
        IpAddr::V4(v4) => v4.to_ipv6_mapped().octets(),
        IpAddr::V6(v6) => v6.octets(),
    };
    entry
        .ips
        .iter()
        .min_by_key(|(ip, s)| (s.pong.or(s.ping).unwrap_or(NOW), octets(ip)))
        .map(|(ip, _)| *ip)
}

/// What an expiry event drops, to compare groups written in different orders.
pub fn expiry_key(event: &Event) -> (NodeId, Option<IpAddr>) {
    match event {
        Event::NodeExpired { id } => (*id, None),
        Event::IpExpired { id, ip } => (*id, Some(*ip)),
        other => panic!("expiration wrote a {} record", other.kind()),
    }
}
/// A time between the pool's past times and its future ones: what the model takes for a
/// write time ("now"), which only ever compares with those.
const NOW: i64 = 3_000_000_000 * 1_000_000_000;
