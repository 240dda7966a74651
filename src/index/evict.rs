//! Which id goes when the store is full, and which IP slot when an id holds the most.
//!
//! The rule (docs/DESIGN.md, "A bounded store"): the id never proven by a pong whose newest
//! event is oldest (ties: the lowest subnet, then the lowest id); when every id is proven,
//! the node with the oldest newest pong (ties: the lowest id) in the subnet holding the most
//! ids (ties: the lowest subnet), ids without an endpoint counting as one subnet below all
//! others. A flood of new ids, which nothing has proven, so evicts itself before any node
//! that answered, and a flood of proven ids evicts from its own subnet first.
//!
//! A flood makes an eviction per write, so finding the victim must not scan the index each
//! time: each rule keeps the next few candidates in order ([`Candidates`]), found by one scan
//! and kept right by [`Index::note_change`] after every event, and scans again only when they
//! run out.

use std::collections::VecDeque;
use std::net::IpAddr;

use super::memory::prefetch_read;
use super::records::{RecordKind, RecordWord};
use super::subnets::{pack, unpack, GroupKey, Packed, Subnets};
use super::{hash_id, Entry, Index, NEVER};
use crate::event::{ip_from_key, IdBytes, StoredEvent};
use crate::node::{ids_equal, NodeId};
use crate::subnet::{Subnet, DEFAULT_V4_BITS, DEFAULT_V6_BITS};

/// Most IP slots one id holds; a new IP beyond it takes the place of the stalest.
pub const MAX_IPS_PER_ID: usize = 16;

/// Order of the ids nothing has proven: oldest newest event, then subnet (packed, which
/// orders as the subnets do), then id.
type UnprovenKey = (i64, Packed, IdBytes);
/// Order of the proven nodes of one subnet: oldest newest pong, then id.
type ProvenKey = (i64, IdBytes);

/// The first candidates of one rule in order, as a scan found them, each with the position
/// its entry had when it was listed (a hint: entries move when another is removed, so the
/// position is checked against the id before it is trusted, and looked up when it moved).
#[derive(Debug)]
struct Candidates<K> {
    /// The next candidates, first at the front. Some may have gone stale (their id changed
    /// or left): each is checked before it is used.
    keys: VecDeque<(K, u32)>,
    /// The largest key taken or noted since the scan.
    max: Option<K>,
    /// Whether the scan took every candidate (so later ones can be appended in order).
    complete: bool,
    /// How many the scan kept at most: a complete list grows to twice that (ids written
    /// again after the scan, whose old keys wait to be found stale) before it is dropped and
    /// found again, so its memory stays bounded.
    limit: usize,
}

impl<K: Ord + Clone> Candidates<K> {
    /// The first `limit` of `all` in order.
    fn first(mut all: Vec<(K, u32)>, limit: usize) -> Candidates<K> {
        let complete = all.len() <= limit;
        if !complete {
            all.select_nth_unstable_by(limit - 1, |a, b| a.0.cmp(&b.0));
            all.truncate(limit);
        }
        all.sort_unstable_by(|a, b| a.0.cmp(&b.0));
        Candidates::listed(all, complete, limit)
    }

    /// The candidates `keys`, in order; `complete` when they are every candidate, of which
    /// a scan keeps at most `limit`.
    fn listed(keys: Vec<(K, u32)>, complete: bool, limit: usize) -> Candidates<K> {
        debug_assert!(keys.is_sorted_by(|a, b| a.0 < b.0), "candidates in order");
        Candidates {
            max: keys.last().map(|(key, _)| key.clone()),
            keys: keys.into(),
            complete,
            limit,
        }
    }

    /// The candidate at `index` now has key `key`: whether the candidates are still right
    /// (else they must be found again). A key beyond every key taken is right wherever it
    /// is, as the scan would have left it out; a complete list takes it at its end.
    fn note(&mut self, key: K, index: usize) -> bool {
        if let Some(max) = &self.max {
            if key <= *max {
                return self.keys.back().map(|(k, _)| k) == Some(&key);
            }
        }
        if self.complete {
            if self.keys.len() >= 2 * self.limit {
                return false;
            }
            self.keys.push_back((key.clone(), index as u32));
        }
        self.max = Some(key);
        true
    }

    /// The entry at `from` moved to `to`: the last candidate listed, most often the newest
    /// entry (which moves when another is removed), follows it.
    fn moved(&mut self, from: usize, to: usize) {
        if let Some((_, hint)) = self.keys.back_mut() {
            if *hint as usize == from {
                *hint = to as u32;
            }
        }
    }

    /// The first candidate and its position hint.
    fn front(&self) -> Option<(K, u32)> {
        self.keys.front().cloned()
    }
}

/// The candidates of both rules, once an eviction has asked for them.
#[derive(Debug, Default)]
pub(crate) struct Evictor {
    unproven: Option<Candidates<UnprovenKey>>,
    /// For the subnet eviction last took from.
    proven: Option<(GroupKey, Candidates<ProvenKey>)>,
}

impl Evictor {
    fn is_active(&self) -> bool {
        self.unproven.is_some() || self.proven.is_some()
    }
}

/// How many candidates one scan keeps: half the ids (a flood of unproven ids, which
/// evicts one per write, so scans once per half of the store).
fn candidates_per_scan(ids: usize) -> usize {
    (ids / 2).max(64)
}

/// The eviction group of an endpoint's IP: its /24 or /48.
pub(crate) fn default_subnet(ip: IpAddr) -> Subnet {
    Subnet::of(ip, DEFAULT_V4_BITS, DEFAULT_V6_BITS)
}

impl Index {
    /// The newest pong of an entry, to no particular IP or from any IP.
    pub(crate) fn newest_pong(&self, entry: &Entry) -> i64 {
        self.slots_of(entry)
            .map(|s| s.last_pong)
            .fold(entry.last_pong, i64::max)
    }

    /// Whether no pong, to no particular IP or from any IP, ever proved the entry.
    fn unproven(&self, entry: &Entry) -> bool {
        self.newest_pong(entry) == NEVER
    }

    /// The subnet group of an entry, from its endpoint.
    pub(crate) fn group_key(&self, entry: &Entry) -> GroupKey {
        self.endpoint(entry).map(|e| default_subnet(e.ip))
    }

    /// The subnet groups, built from the entries the first time they are asked for.
    pub(crate) fn subnets(&mut self) -> &Subnets {
        if self.subnets.is_none() {
            let keys: Vec<Packed> = self.entries.iter().map(|e| self.packed_group(e)).collect();
            self.subnets = Some(Subnets::build(keys.into_iter()));
        }
        self.subnets.as_ref().expect("built above")
    }

    fn unproven_key(&self, index: usize) -> UnprovenKey {
        let entry = &self.entries[index];
        (entry.touched, self.packed_group(entry), entry.id.0)
    }

    /// [`Index::group_key`], packed: an unsigned IPv4 endpoint's (every id of a flood has
    /// one) read straight from the entry's record word, an unsigned IPv6 one from the stored
    /// IP of its blob, without decoding the endpoint; a signed record's endpoint is parsed
    /// from its RLP.
    #[inline]
    pub(crate) fn packed_group(&self, entry: &Entry) -> Packed {
        match entry.kind() {
            RecordKind::V4 => pack(Some(default_subnet(IpAddr::V4(RecordWord::v4_ip(
                entry.record,
            ))))),
            RecordKind::V6 => {
                let ip = RecordWord::v6_endpoint(self.blob(entry)).ip;
                // Subnet::of takes an IPv4-mapped address as IPv4, as the endpoint's IP
                // (IPv6 written as such) would be taken.
                pack(Some(default_subnet(ip)))
            }
            RecordKind::None => pack(None),
            RecordKind::Signed => pack(self.group_key(entry)),
        }
    }

    /// Applies an eviction, then the write that made it: an event about `event`'s id, which
    /// the index does not hold. The same as [`Index::apply`] of each in turn, but for where
    /// the new id's entry goes: into the evicted one's place, rather than at the end with the
    /// last entry moved into the hole. So no entry moves (no id hashed again to find its
    /// table slot), and the new id is not looked up a second time.
    ///
    /// Compaction's reading of the index in turns (see `compact.rs`) stays exact: an entry
    /// put in place of an evicted one is the tail's (written after the compaction began),
    /// and no entry that was already there moves.
    pub(crate) fn apply_evicting(
        &mut self,
        evicted: &StoredEvent<'_>,
        event: &StoredEvent<'_>,
        written_at: i64,
    ) {
        if let (StoredEvent::Evicted { id: victim, .. }, Some(id)) = (*evicted, held_id(event)) {
            debug_assert!(self.find(id).is_none(), "the write is about an id not held");
            if let Some(live) = self.replace_entry(victim, id) {
                self.live_bytes -= live;
                self.apply(event, written_at);
                return;
            }
        }
        self.apply(evicted, written_at);
        self.apply(event, written_at);
    }

    /// Removes the entry of `victim` and puts a new entry of `id` in its place; returns the
    /// live bytes the removed entry had, or `None` (nothing changed) if `victim` is not
    /// held.
    fn replace_entry(&mut self, victim: &IdBytes, id: &IdBytes) -> Option<u64> {
        let at = self.find_slot(hash_id(&self.hasher, victim), victim)?;
        let index = self.table.entry_at(at) as usize;
        let live = self.entry_live_bytes(index);
        self.note_removal(index, victim);
        // The new id takes the victim's position: the table holds the same positions.
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.rehome(at, hash_id(hasher, id), |e| {
            hash_id(hasher, &entries[e as usize].id.0)
        });
        let group = self.subnets.is_some().then(|| self.group_of(index));
        let removed = std::mem::replace(&mut self.entries[index], Entry::new(NodeId(*id)));
        self.with_record -= usize::from(removed.has_record());
        self.record_garbage += removed.arena_len();
        self.free_slots(removed.first_slot());
        if let (Some(subnets), Some(from)) = (&mut self.subnets, group) {
            // A new entry is in the group of the ids without an endpoint until its event
            // gives it one, as one pushed at the end would be.
            subnets.set(index, from, pack(None));
        }
        self.last_touched = Some(index);
        Some(live)
    }

    /// The entry at `index`, of id `id`, is being removed: if it is the first unproven
    /// candidate (the victim of an eviction, most often), it leaves the list now rather
    /// than be found stale, by a lookup of its id, at the next eviction.
    pub(super) fn note_removal(&mut self, index: usize, id: &IdBytes) {
        if let Some(candidates) = &mut self.evictor.unproven {
            if candidates
                .keys
                .front()
                .is_some_and(|(key, hint)| *hint as usize == index && ids_equal(&key.2, id))
            {
                candidates.keys.pop_front();
            }
        }
    }

    /// The entry at `from` moved to `to` (the last entry, into the place of one removed):
    /// keeps the position hints of the candidates right where it is cheap.
    pub(super) fn note_move(&mut self, from: usize, to: usize) {
        if let Some(candidates) = &mut self.evictor.unproven {
            candidates.moved(from, to);
        }
        if let Some((_, candidates)) = &mut self.evictor.proven {
            candidates.moved(from, to);
        }
    }

    /// Keeps the eviction candidates right after an event changed the entry at `index`.
    pub(super) fn note_change(&mut self, index: usize) {
        if !self.evictor.is_active() {
            return;
        }
        let entry = &self.entries[index];
        let newest_pong = self.newest_pong(entry);
        if newest_pong == NEVER {
            let key = self.unproven_key(index);
            if let Some(candidates) = &mut self.evictor.unproven {
                if !candidates.note(key, index) {
                    self.evictor.unproven = None;
                }
            }
        } else if self.evictor.proven.is_some() {
            let packed = self.subnets.is_some().then(|| self.packed_group(entry));
            let Some((group, candidates)) = &mut self.evictor.proven else {
                return;
            };
            let in_group = packed == Some(pack(*group));
            if in_group && !candidates.note((newest_pong, entry.id.0), index) {
                self.evictor.proven = None;
            }
        }
    }

    /// The id to evict now, and its subnet; `None` for an empty index.
    pub(crate) fn victim(&mut self) -> Option<(NodeId, Option<Subnet>)> {
        if let Some(key) = self.unproven_victim() {
            self.prefetch_next_unproven();
            return Some((NodeId(key.2), unpack(key.1)));
        }
        self.subnets();
        let group = self.subnets.as_mut()?.fullest()?;
        let key = self.subnets().groups()[group as usize].key();
        let id = self.proven_victim(group, key)?;
        Some((NodeId(id), key))
    }

    /// Starts fetching what checking the next candidates will read while this eviction and
    /// the write go on (in a flood, the next writes evict them): the entry of the one after
    /// next (listed at its hint) and its table slot, which removing it reads; and the record
    /// blob of the next one, whose entry the eviction before fetched. (The slot of the last
    /// entry, which moves into a removed one's place, was written by the write before.)
    fn prefetch_next_unproven(&self) {
        let Some(candidates) = &self.evictor.unproven else {
            return;
        };
        if let Some((_, hint)) = candidates.keys.get(1) {
            if let Some(entry) = self.entries.get(*hint as usize) {
                self.prefetch_parts(entry);
            }
        }
        if let Some((key, hint)) = candidates.keys.get(2) {
            if let Some(entry) = self.entries.get(*hint as usize) {
                prefetch_read(entry);
            }
            self.prefetch(&key.2);
        }
    }

    /// The position of the entry of `id`, listed at `hint`: there unless it moved.
    fn locate(&self, hint: u32, id: &IdBytes) -> Option<usize> {
        match self.entries.get(hint as usize) {
            Some(entry) if ids_equal(&entry.id.0, id) => Some(hint as usize),
            _ => self.find(id),
        }
    }

    /// The first `limit` ids nothing has proven, in the rule's order, with their positions.
    /// Selected by write time first (a 16-byte pair per id), the whole key made only for
    /// ties and for the ids kept.
    fn scan_unproven(&self) -> Candidates<UnprovenKey> {
        let mut all: Vec<(i64, u32)> = self
            .entries
            .iter()
            .enumerate()
            .filter(|(_, e)| self.unproven(e))
            .map(|(i, e)| (e.touched, i as u32))
            .collect();
        let limit = candidates_per_scan(self.entries.len());
        let complete = all.len() <= limit;
        let key = |i: u32| self.unproven_key(i as usize);
        let order =
            |a: &(i64, u32), b: &(i64, u32)| a.0.cmp(&b.0).then_with(|| key(a.1).cmp(&key(b.1)));
        if !complete {
            all.select_nth_unstable_by(limit - 1, order);
            all.truncate(limit);
        }
        all.sort_unstable_by(order);
        let keys = all.into_iter().map(|(_, i)| (key(i), i)).collect();
        Candidates::listed(keys, complete, limit)
    }

    /// The first valid candidate of the ids nothing has proven, scanning when none is left.
    fn unproven_victim(&mut self) -> Option<UnprovenKey> {
        loop {
            if self.evictor.unproven.is_none() {
                self.evictor.unproven = Some(self.scan_unproven());
            }
            let complete = self
                .evictor
                .unproven
                .as_ref()
                .expect("found above")
                .complete;
            while let Some((key, hint)) = self.evictor.unproven.as_ref()?.front() {
                let current = self
                    .locate(hint, &key.2)
                    .filter(|&i| self.unproven(&self.entries[i]))
                    .map(|i| self.unproven_key(i));
                if current == Some(key) {
                    return Some(key);
                }
                self.evictor.unproven.as_mut()?.keys.pop_front();
            }
            if complete {
                // Every unproven id was a candidate: none is left.
                return None;
            }
            self.evictor.unproven = None;
        }
    }

    /// The first valid candidate among the proven nodes of `group`.
    fn proven_victim(&mut self, group: u32, key: GroupKey) -> Option<IdBytes> {
        for _ in 0..2 {
            if self.evictor.proven.as_ref().is_none_or(|(k, _)| *k != key) {
                let members = self.subnets.as_ref()?.groups()[group as usize].members();
                let all: Vec<(ProvenKey, u32)> = members
                    .iter()
                    .map(|&i| {
                        let e = &self.entries[i as usize];
                        ((self.newest_pong(e), e.id.0), i)
                    })
                    .collect();
                let limit = candidates_per_scan(all.len());
                self.evictor.proven = Some((key, Candidates::first(all, limit)));
            }
            while let Some(((pong, id), hint)) = self.evictor.proven.as_ref()?.1.front() {
                let valid = self.locate(hint, &id).is_some_and(|i| {
                    self.packed_group(&self.entries[i]) == pack(key)
                        && self.newest_pong(&self.entries[i]) == pong
                });
                if valid {
                    return Some(id);
                }
                self.evictor.proven.as_mut()?.1.keys.pop_front();
            }
            // Ran out (or only had stale ones): scan the group again.
            self.evictor.proven = None;
        }
        // The group is not empty, so a scan finds a candidate; never reached.
        let members = self.subnets.as_ref()?.groups()[group as usize].members();
        members.first().map(|&i| self.entries[i as usize].id.0)
    }

    /// If the entry at `index` holds the most IP slots and none for `ip`: the IP of its
    /// stalest slot (oldest pong, else ping, else the entry's newest event; ties: the lowest
    /// IP), which must give way before a slot for `ip` is made.
    pub(crate) fn slot_to_evict(&self, index: usize, ip: IpAddr) -> Option<IpAddr> {
        let entry = &self.entries[index];
        let key = crate::event::ip_key(ip);
        let mut count = 0;
        let mut stalest: Option<(i64, [u8; 16])> = None;
        for slot in self.slots_of(entry) {
            if slot.ip == key {
                return None;
            }
            count += 1;
            let mark = (slot.age_mark(entry.touched), slot.ip);
            stalest = Some(stalest.map_or(mark, |s| s.min(mark)));
        }
        if count < MAX_IPS_PER_ID {
            return None;
        }
        stalest.map(|(_, ip)| ip_from_key(ip))
    }
}

/// The id of an event that makes its id held (creates its entry if new): a record or
/// liveness, with or without an IP.
fn held_id<'a>(event: &StoredEvent<'a>) -> Option<&'a IdBytes> {
    match *event {
        StoredEvent::NodeUpdated { id, .. }
        | StoredEvent::Record { id, .. }
        | StoredEvent::Ping { id, .. }
        | StoredEvent::Pong { id, .. }
        | StoredEvent::FindFails { id, .. }
        | StoredEvent::PingFrom { id, .. }
        | StoredEvent::PongFrom { id, .. }
        | StoredEvent::FindFailsAt { id, .. } => Some(id),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    //! Tie-breaks the API cannot reach (equal write times), and the candidate lists checked
    //! against a scan of the whole index after every event of a random workload.

    use std::collections::BTreeMap;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::event::{Event, StoredEvent};
    use crate::node::Node;
    use std::time::{Duration, UNIX_EPOCH};

    fn id(n: u64) -> NodeId {
        let mut bytes = [0u8; 64];
        bytes[..8].copy_from_slice(&n.to_be_bytes());
        NodeId(bytes)
    }

    fn write(index: &mut Index, event: Event, written_at: i64) {
        index.apply(&StoredEvent::from_event(&event).unwrap(), written_at);
    }

    fn node(n: u64, ip: IpAddr) -> Event {
        Event::NodeUpdated(Node::new(id(n), ip, 1, 1))
    }

    fn ping(n: u64) -> Event {
        Event::Ping {
            id: id(n),
            at: UNIX_EPOCH + Duration::from_secs(n),
        }
    }

    fn evict(index: &mut Index) -> NodeId {
        let (victim, subnet) = index.victim().expect("a victim");
        write(index, Event::Evicted { id: victim, subnet }, 0);
        victim
    }

    #[test]
    fn unproven_ties_go_to_the_lowest_subnet_then_the_lowest_id() {
        let mut index = Index::default();
        let v4 = |c: u8, d: u8| IpAddr::V4(Ipv4Addr::new(10, 0, c, d));
        // All written at the same time but id 9, written later.
        write(&mut index, node(3, v4(1, 1)), 5);
        write(&mut index, node(1, v4(2, 1)), 5);
        write(&mut index, ping(2), 5);
        write(&mut index, node(4, v4(1, 2)), 5);
        write(&mut index, ping(9), 6);
        write(&mut index, node(0, v4(1, 3)), 5);
        // Id 2, without endpoint, is in the lowest group; then 10.0.1.0/24 by id; then
        // 10.0.2.0/24; then the newest.
        let order: Vec<NodeId> = (0..6).map(|_| evict(&mut index)).collect();
        assert_eq!(order, [id(2), id(0), id(3), id(4), id(1), id(9)]);
        assert_eq!(index.victim(), None);
    }

    #[test]
    fn an_ipv4_mapped_endpoint_is_in_the_ipv4_subnet() {
        let mut index = Index::default();
        let mapped = IpAddr::V6(Ipv4Addr::new(10, 0, 1, 9).to_ipv6_mapped());
        write(&mut index, node(1, mapped), 5);
        write(
            &mut index,
            node(2, IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1))),
            5,
        );
        let (victim, subnet) = index.victim().unwrap();
        assert_eq!(victim, id(2));
        assert_eq!(subnet.unwrap().to_string(), "10.0.0.0/24");
        write(&mut index, Event::Evicted { id: victim, subnet }, 0);
        assert_eq!(
            index.victim().unwrap().1.unwrap().to_string(),
            "10.0.1.0/24"
        );
    }

    /// Ids written again and again after the scan that listed every candidate leave their
    /// old keys behind in the list: it is dropped (and found again by the next eviction)
    /// before it holds twice what the scan kept, instead of growing with every write.
    #[test]
    fn a_complete_list_stays_bounded_as_its_ids_are_written_again() {
        let mut index = Index::default();
        let v4 = |n: u64| IpAddr::V4(Ipv4Addr::new(10, 0, (n / 250) as u8, (n % 250) as u8));
        // Fewer ids than a scan keeps: it lists them all.
        for n in 0..50 {
            write(&mut index, node(n, v4(n)), n as i64);
        }
        assert_eq!(index.victim().map(|v| v.0), Some(id(0)));
        assert!(index.evictor.unproven.as_ref().is_some_and(|c| c.complete));
        let limit = candidates_per_scan(index.ids());
        for step in 0..10_000u64 {
            write(&mut index, ping(step % 50), 100 + step as i64);
            let listed = index.evictor.unproven.as_ref().map_or(0, |c| c.keys.len());
            assert!(
                listed <= 2 * limit,
                "{listed} candidates listed after {step} writes"
            );
        }
        // Still right: the id written longest ago.
        assert_eq!(index.victim().map(|v| v.0), Some(id((10_000 - 50) % 50)));
    }

    /// A small deterministic generator (splitmix64).
    struct Rng(u64);

    impl Rng {
        fn next(&mut self) -> u64 {
            self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut x = self.0;
            x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            x ^ (x >> 31)
        }

        fn below(&mut self, n: u64) -> u64 {
            self.next() % n
        }
    }

    /// The victim by the rule, from a scan of the public states: the model the candidate
    /// lists must agree with.
    fn scanned_victim(index: &Index) -> Option<(NodeId, Option<Subnet>)> {
        let key = |p: &crate::PeerState| {
            p.node
                .as_ref()
                .map(|n| Subnet::of(n.ip, DEFAULT_V4_BITS, DEFAULT_V6_BITS))
        };
        let pong = |p: &crate::PeerState| {
            p.ips
                .iter()
                .map(|s| s.last_pong)
                .fold(p.last_pong, Option::max)
        };
        let states: Vec<crate::PeerState> = index.states().collect();
        let unproven = states
            .iter()
            .filter(|p| pong(p).is_none())
            .min_by_key(|p| (p.last_written, key(p), p.id));
        if let Some(p) = unproven {
            return Some((p.id, key(p)));
        }
        let mut groups: BTreeMap<Option<Subnet>, Vec<&crate::PeerState>> = BTreeMap::new();
        for p in &states {
            groups.entry(key(p)).or_default().push(p);
        }
        let most = groups.values().map(Vec::len).max()?;
        let (group, members) = groups.iter().find(|(_, m)| m.len() == most)?;
        let p = members.iter().min_by_key(|p| (pong(p), p.id))?;
        Some((p.id, *group))
    }

    /// An eviction applied with the write that made it (`apply_evicting`, the new id's entry
    /// in the evicted one's place) leaves the state, live bytes and later victims exactly as
    /// applying the two events in turn does (the new entry at the end, the last moved).
    #[test]
    fn evicting_in_place_equals_evicting_then_writing() {
        for seed in 0..4 {
            let mut rng = Rng(seed);
            let (mut in_place, mut in_turn) = (Index::default(), Index::default());
            let mut next_new = 1_000u64;
            for step in 0..2_000i64 {
                let n = rng.below(200);
                let ip = IpAddr::V4(Ipv4Addr::new(
                    10,
                    0,
                    rng.below(4) as u8,
                    rng.below(250) as u8,
                ));
                let at = UNIX_EPOCH + Duration::from_secs(rng.below(50));
                if step % 3 == 0 {
                    // Seed queries build the subnet groups now and then, which must follow too.
                    if step == 900 {
                        in_place.subnets();
                        in_turn.subnets();
                    }
                    let Some((victim, subnet)) = in_turn.victim() else {
                        continue;
                    };
                    assert_eq!(
                        in_place.victim(),
                        Some((victim, subnet)),
                        "seed {seed} step {step}"
                    );
                    let new = id(next_new);
                    next_new += 1;
                    let write = match rng.below(3) {
                        0 => Event::Pong { id: new, at },
                        1 => Event::PingFrom { id: new, ip, at },
                        _ => Event::NodeUpdated(Node::new(new, ip, 1, 1)),
                    };
                    let evicted = Event::Evicted { id: victim, subnet };
                    let (e, w) = (
                        StoredEvent::from_event(&evicted).unwrap(),
                        StoredEvent::from_event(&write).unwrap(),
                    );
                    in_place.apply_evicting(&e, &w, step);
                    in_turn.apply(&e, step);
                    in_turn.apply(&w, step);
                } else {
                    let event = match rng.below(5) {
                        0 | 1 => node(n, ip),
                        2 => Event::Pong { id: id(n), at },
                        3 => Event::PongFrom { id: id(n), ip, at },
                        _ => Event::NodeDeleted { id: id(n) },
                    };
                    write(&mut in_place, event.clone(), step);
                    write(&mut in_turn, event, step);
                }
                assert_eq!(
                    in_place.live_bytes(),
                    in_turn.live_bytes(),
                    "seed {seed} step {step}"
                );
                assert_eq!(in_place.len(), in_turn.len());
                in_place.assert_subnets();
                in_turn.assert_subnets();
            }
            let sorted = |index: &Index| {
                let mut states: Vec<_> = index.states().collect();
                states.sort_by_key(|p| p.id);
                states
            };
            assert_eq!(sorted(&in_place), sorted(&in_turn), "seed {seed}");
            while in_turn.ids() > 0 {
                let victim = in_turn.victim();
                assert_eq!(in_place.victim(), victim, "seed {seed} drain");
                evict(&mut in_turn);
                evict(&mut in_place);
            }
        }
    }

    /// Random writes over a few hundred ids in a few subnets, evictions as the database
    /// makes them, and the victim compared with a full scan after every event: the candidate
    /// lists (kept across events, rescanned when they run out) never go wrong.
    #[test]
    fn candidates_agree_with_a_scan_after_every_event() {
        for seed in 0..6 {
            let mut rng = Rng(seed);
            let mut index = Index::default();
            let ids = 40 + rng.below(300);
            let mut time = 0i64;
            for step in 0..3_000 {
                let n = rng.below(ids);
                let at = UNIX_EPOCH + Duration::from_secs(rng.below(50));
                // Write times mostly grow, with ties now and then.
                time += i64::from(rng.below(4) != 0);
                let ip = match rng.below(4) {
                    0 => IpAddr::V6(Ipv6Addr::new(
                        0x2001,
                        0xdb8,
                        rng.below(3) as u16,
                        0,
                        0,
                        0,
                        0,
                        1,
                    )),
                    _ => IpAddr::V4(Ipv4Addr::new(
                        10,
                        0,
                        rng.below(4) as u8,
                        rng.below(250) as u8,
                    )),
                };
                let event = match rng.below(10) {
                    0..=2 => node(n, ip),
                    3 => Event::Ping { id: id(n), at },
                    4 => Event::Pong { id: id(n), at },
                    5 => Event::PongFrom { id: id(n), ip, at },
                    6 => Event::PingFrom { id: id(n), ip, at },
                    7 => Event::NodeDeleted { id: id(n) },
                    8 => match index.states().nth(rng.below(8) as usize) {
                        Some(p) if !p.ips.is_empty() => Event::IpEvicted {
                            id: p.id,
                            ip: p.ips[0].ip,
                        },
                        _ => Event::FindFails {
                            id: id(n),
                            fails: 1,
                        },
                    },
                    _ => {
                        if index.ids() > 0 {
                            let expected = scanned_victim(&index);
                            assert_eq!(index.victim(), expected, "seed {seed} step {step}");
                            evict(&mut index);
                        }
                        continue;
                    }
                };
                write(&mut index, event, time);
                index.assert_subnets();
                if step % 7 == 0 {
                    assert_eq!(
                        index.victim(),
                        scanned_victim(&index),
                        "seed {seed} step {step}"
                    );
                }
            }
            // Evict everything: the order is the scan's to the last id.
            while index.ids() > 0 {
                assert_eq!(index.victim(), scanned_victim(&index), "seed {seed} drain");
                evict(&mut index);
            }
        }
    }
}
