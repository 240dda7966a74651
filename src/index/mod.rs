//! The in-memory state of every node, rebuilt by applying events, and seed sampling.
//!
//! Entries live in a dense vector (so a uniformly random entry is one random index away) and a
//! hash table of indices finds an entry by id without storing the 64-byte id twice. An
//! unsigned IPv4 endpoint, the common record, lives in its entry; signed records and IPv6
//! endpoints live back to back in one arena (no allocation, and no allocator overhead, per
//! record), and liveness per IP in a pool of slots chained from their entry: most nodes have
//! at most one IP slot, and the entry holds only the index of the first.
//!
//! This file holds the entries, lookups and `apply`; beside it: `records` (the record arena),
//! `slots` (liveness per IP), `live` (live bytes and the live state compaction writes),
//! `expiry`, `uniform` (`query_seeds`), `subnets`, `seeds` (the spread seed query) and `evict`
//! (the bounded store), `id_table` (the hash table) and `memory`.

use std::hash::BuildHasher;
use std::net::{IpAddr, Ipv6Addr};
use std::time::SystemTime;

use hashbrown::DefaultHashBuilder;
use rand::RngExt;

use crate::event::{
    frame_len, from_unix_nanos, ip_from_key, ip_key, unix_nanos, Event, IdBytes, IpKey,
    StoredEvent, StoredRecord, FAILS_AT_PAYLOAD_LEN, FAILS_PAYLOAD_LEN, ID_PAYLOAD_LEN,
    LOCAL_SEQ_PAYLOAD_LEN, LOSS_PAYLOAD_LEN, PING_FROM_PAYLOAD_LEN, PING_PAYLOAD_LEN,
};
use crate::journal::damage::Damage;
use crate::loss::Loss;
use crate::node::{ids_equal, Endpoint, Node, NodeId};
use crate::record::{NodeRecord, RecordFields};
use evict::Evictor;
use id_table::IdTable;
use memory::prefer_huge_pages;
use subnets::Subnets;

mod evict;
mod expiry;
mod id_table;
mod live;
mod memory;
mod records;
mod seeds;
mod slots;
mod subnets;
mod uniform;

pub use evict::MAX_IPS_PER_ID;
pub(crate) use expiry::Expired;
use live::{liveness_live_bytes, signed_record_live_bytes, unsigned_record_live_bytes};
use records::{RecordKind, RecordWord};
pub(crate) use seeds::SpreadRules;
use slots::IpSlot;

/// Marks a timestamp that was never set.
const NEVER: i64 = i64::MIN;
/// Marks the end of a chain of IP slots: the largest value of the 30 bits an entry keeps its
/// first slot in, so at most 2^30 - 1 slots (40 GiB of them) are ever in use.
const NO_SLOT: u32 = (1 << 30) - 1;

/// Everything known about one id: its node record and liveness data.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PeerState {
    /// The id.
    pub id: NodeId,
    /// The endpoint of its record, if it has one with an IP: the unsigned record, or the
    /// signed record's IPv4 address and ports, else its IPv6 ones.
    pub node: Option<Node>,
    /// Its signed record, if it has one.
    pub record: Option<NodeRecord>,
    /// Last ping sent (to no particular IP).
    pub last_ping: Option<SystemTime>,
    /// Last pong received (from no particular IP).
    pub last_pong: Option<SystemTime>,
    /// Findnode failures (at no particular IP).
    pub fails: u32,
    /// Liveness per IP, in no particular order.
    pub ips: Vec<IpLiveness>,
    /// Write time of the newest event about it.
    pub last_written: SystemTime,
}

/// Liveness of a node at one IP.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IpLiveness {
    /// The IP (IPv4 for an IPv4-mapped address).
    pub ip: IpAddr,
    /// Last ping sent to it.
    pub last_ping: Option<SystemTime>,
    /// Last pong received from it.
    pub last_pong: Option<SystemTime>,
    /// Findnode failures at it.
    pub fails: u32,
}

fn time(t: i64) -> Option<i64> {
    (t != NEVER).then_some(t)
}

/// Everything known about one id, as the index keeps it: 104 bytes, the id included (the
/// id 64, the three times 24, `fails` 4, the first IP slot and record kind 4, the record word
/// 8). An unsigned IPv4 endpoint, the common record, is kept in the record word itself; an
/// IPv6 one or a signed record lives in the index's arena (see [`RecordKind`]).
///
/// The times stay whole i64 nanoseconds: the API hands back exactly the `SystemTime` written,
/// across the whole storable range, and `fails` the whole u32 written.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: NodeId,
    last_ping: i64,
    last_pong: i64,
    /// Write time of the newest event about this id.
    pub touched: i64,
    pub fails: u32,
    /// The first of the entry's IP slots, or [`NO_SLOT`] (bits 0..30), and the
    /// [`RecordKind`] (bits 30..32): the two bits a flag byte would have padded to eight.
    slot_and_kind: u32,
    /// The record, as its kind says: an IPv4 endpoint, or where its arena blob lies.
    record: u64,
}

/// The bits of [`Entry::slot_and_kind`] that hold the first IP slot.
const SLOT_BITS: u32 = 30;
const SLOT_MASK: u32 = (1 << SLOT_BITS) - 1;

// The layout the memory figures (docs/PERFORMANCE.md, BENCHMARKS.md) rest on.
const _: () = assert!(std::mem::size_of::<Entry>() == 104);

impl Entry {
    fn new(id: NodeId) -> Entry {
        Entry {
            id,
            last_ping: NEVER,
            last_pong: NEVER,
            touched: NEVER,
            fails: 0,
            slot_and_kind: NO_SLOT,
            record: 0,
        }
    }

    pub fn last_ping(&self) -> Option<i64> {
        time(self.last_ping)
    }

    pub fn last_pong(&self) -> Option<i64> {
        time(self.last_pong)
    }

    /// Whether it has a node record, signed or not (a signed record may have no endpoint).
    pub fn has_record(&self) -> bool {
        self.kind() != RecordKind::None
    }

    /// The first of its IP slots, or [`NO_SLOT`].
    #[inline]
    fn first_slot(&self) -> u32 {
        self.slot_and_kind & SLOT_MASK
    }

    #[inline]
    fn set_first_slot(&mut self, slot: u32) {
        debug_assert!(slot <= NO_SLOT);
        self.slot_and_kind = self.slot_and_kind & !SLOT_MASK | slot;
    }

    #[inline]
    fn kind(&self) -> RecordKind {
        RecordKind::from_bits(self.slot_and_kind >> SLOT_BITS)
    }

    #[inline]
    fn set_kind(&mut self, kind: RecordKind) {
        self.slot_and_kind = self.slot_and_kind & SLOT_MASK | (kind as u32) << SLOT_BITS;
    }

    /// Where its arena blob starts (meaningless for a record kept in the entry).
    #[inline]
    fn arena_at(&self) -> usize {
        if self.kind().in_arena() {
            RecordWord::arena_at(self.record)
        } else {
            0
        }
    }

    /// The length of its arena blob: 0 unless its record lives in the arena.
    #[inline]
    fn arena_len(&self) -> usize {
        if self.kind().in_arena() {
            RecordWord::arena_len(self.record)
        } else {
            0
        }
    }
}

/// The state of every known id.
pub(crate) struct Index {
    entries: Vec<Entry>,
    table: IdTable,
    /// Seeded at random per index (foldhash): ids are chosen by remote peers, so the hash must
    /// not be predictable, and it is on the path of every event replayed.
    hasher: DefaultHashBuilder,
    /// Every entry's record blob (endpoint and signed record), back to back; replaced ones
    /// leave garbage behind until the arena is rebuilt.
    records: Vec<u8>,
    record_garbage: usize,
    /// IP slots, chained per entry; free ones chained from `free_slot`.
    slots: Vec<IpSlot>,
    free_slot: u32,
    /// The local node's own record seq, if stored, and when it was written.
    local_seq: Option<(u64, i64)>,
    /// Losses the log recorded, each damaged place once, with when it was first recorded.
    losses: Vec<(Loss, i64)>,
    with_record: usize,
    live_bytes: u64,
    /// Index of the entry the last event touched: logs (and compacted logs above all) write
    /// an id's events together, so most lookups during replay need no hashing at all.
    last_touched: Option<usize>,
    /// The ids of each subnet, once a seed query or an eviction asked (see `subnets.rs`).
    subnets: Option<Subnets>,
    /// The next eviction candidates, once an eviction asked (see `evict.rs`).
    evictor: Evictor,
}

impl Default for Index {
    fn default() -> Index {
        Index::with_capacity(0)
    }
}

impl Index {
    /// An index with room for about `ids` ids, so that replay does not rehash as it grows.
    pub fn with_capacity(ids: usize) -> Index {
        let entries = Vec::with_capacity(ids);
        prefer_huge_pages(&entries);
        Index {
            entries,
            table: IdTable::with_capacity(ids),
            hasher: DefaultHashBuilder::default(),
            records: Vec::new(),
            record_garbage: 0,
            slots: Vec::new(),
            free_slot: NO_SLOT,
            local_seq: None,
            losses: Vec::new(),
            with_record: 0,
            live_bytes: 0,
            last_touched: None,
            subnets: None,
            evictor: Evictor::default(),
        }
    }

    /// Reserves room for the signed records and IP slots a log of `log_bytes` could hold at
    /// most (each record frame is longer than its RLP, each IP slot takes a frame of 112
    /// bytes or more), so that replay does not grow them by copying. Large reservations are
    /// mapped lazily: only the pages filled become resident.
    pub fn reserve_for_log(&mut self, log_bytes: usize) {
        self.records.reserve(log_bytes / 2);
        let slot_frame = frame_len(PING_FROM_PAYLOAD_LEN);
        self.slots.reserve(log_bytes / slot_frame as usize);
        prefer_huge_pages(&self.records);
        prefer_huge_pages(&self.slots);
    }

    /// Ids with a node record.
    pub fn len(&self) -> usize {
        self.with_record
    }

    /// Ids held: with a record, or only pings, pongs or fails.
    pub fn ids(&self) -> usize {
        self.entries.len()
    }

    /// The position of `id`'s entry.
    pub fn position(&self, id: &NodeId) -> Option<usize> {
        self.find(&id.0)
    }

    /// Bytes of the log a compaction would keep.
    pub fn live_bytes(&self) -> u64 {
        self.live_bytes
    }

    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    pub fn get(&self, id: &NodeId) -> Option<&Entry> {
        self.find(&id.0).map(|i| &self.entries[i])
    }

    /// The stored local seq.
    pub fn local_seq(&self) -> Option<u64> {
        self.local_seq.map(|(seq, _)| seq)
    }

    /// An entry in public form.
    pub fn state(&self, entry: &Entry) -> PeerState {
        PeerState {
            id: entry.id,
            node: self.node(entry),
            record: self.record(entry),
            last_ping: entry.last_ping().map(from_unix_nanos),
            last_pong: entry.last_pong().map(from_unix_nanos),
            fails: entry.fails,
            ips: self.slots_of(entry).map(IpSlot::public).collect(),
            last_written: from_unix_nanos(entry.touched),
        }
    }

    /// Every entry in public form.
    pub fn states(&self) -> impl Iterator<Item = PeerState> + '_ {
        self.entries.iter().map(|e| self.state(e))
    }

    /// The losses the log recorded (see `loss.rs`), oldest first.
    pub fn losses(&self) -> impl Iterator<Item = &Loss> {
        self.losses.iter().map(|(loss, _)| loss)
    }

    /// The losses the log recorded, each as the damage it records (recorded when first
    /// written), oldest first.
    pub fn recorded_damage(&self) -> impl Iterator<Item = Damage> + '_ {
        let at = crate::event::from_unix_nanos;
        self.losses
            .iter()
            .map(move |(loss, first)| loss.damage(at(*first)))
    }

    /// Records a loss: a new one, or the acknowledgement of one already recorded. Returns
    /// the live bytes it adds.
    fn record_loss(&mut self, loss: Loss, written_at: i64) -> u64 {
        if self.losses.iter_mut().any(|(known, _)| known.absorb(&loss)) {
            return 0;
        }
        self.losses.push((loss, written_at));
        frame_len(LOSS_PAYLOAD_LEN)
    }

    fn find(&self, id: &IdBytes) -> Option<usize> {
        self.find_slot(hash_id(&self.hasher, id), id)
            .map(|at| self.table.entry_at(at) as usize)
    }

    /// The table slot of `id`, whose hash is `hash`.
    fn find_slot(&self, hash: u64, id: &IdBytes) -> Option<usize> {
        let entries = &self.entries;
        self.table
            .find(hash, |i| ids_equal(&entries[i as usize].id.0, id))
    }

    /// Starts fetching what a lookup of `id` reads first: replay calls it for ids a few
    /// records ahead, so that the lookup finds it in the cache.
    #[inline]
    pub fn prefetch(&self, id: &IdBytes) {
        self.table.prefetch(hash_id(&self.hasher, id));
    }

    fn index_or_insert(&mut self, id: &IdBytes) -> usize {
        if let Some(last) = self.last_touched {
            if ids_equal(&self.entries[last].id.0, id) {
                return last;
            }
        }
        let index = self.find_or_insert(id);
        self.last_touched = Some(index);
        index
    }

    fn find_or_insert(&mut self, id: &IdBytes) -> usize {
        let hash = hash_id(&self.hasher, id);
        if let Some(at) = self.find_slot(hash, id) {
            return self.table.entry_at(at) as usize;
        }
        let index = self.entries.len();
        // Entry positions are u32 in the table, which has room for 2^32 * 5/8 of them: 2
        // billion ids, hundreds of GB of index, long before which memory runs out.
        let position = u32::try_from(index)
            .ok()
            .filter(|&p| p < 1 << 31)
            .expect("the index holds fewer than 2^31 ids");
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table.insert(hash, position, |e| {
            hash_id(hasher, &entries[e as usize].id.0)
        });
        self.entries.push(Entry::new(NodeId(*id)));
        if let Some(subnets) = &mut self.subnets {
            subnets.push();
        }
        index
    }

    /// Removes everything known about `id`; returns the live bytes it had (0 for an id not
    /// known).
    fn remove(&mut self, id: &IdBytes) -> u64 {
        let Some(at) = self.find_slot(hash_id(&self.hasher, id), id) else {
            return 0;
        };
        let index = self.table.entry_at(at) as usize;
        let live = self.entry_live_bytes(index);
        self.note_removal(index, id);
        let (entries, hasher) = (&self.entries, &self.hasher);
        self.table
            .remove_at(at, |e| hash_id(hasher, &entries[e as usize].id.0));
        // Indices move below: forget the cached one.
        self.last_touched = None;
        if self.subnets.is_some() {
            let last = self.entries.len() - 1;
            let (key, last_key) = (self.group_of(index), self.group_of(last));
            if let Some(subnets) = &mut self.subnets {
                subnets.swap_remove(index, key, last_key);
            }
        }
        let removed = self.entries.swap_remove(index);
        self.with_record -= usize::from(removed.has_record());
        self.record_garbage += removed.arena_len();
        self.free_slots(removed.first_slot());
        if index < self.entries.len() {
            // The last entry moved into the hole: point its slot at its new place.
            let moved_hash = hash_id(&self.hasher, &self.entries[index].id.0);
            let old_index = self.entries.len() as u32;
            let at = self
                .table
                .find(moved_hash, |i| i == old_index)
                .expect("every entry has a slot");
            self.table.set_entry_at(at, index as u32);
            self.note_move(old_index as usize, index);
        }
        live
    }

    /// Applies a record read back from the log.
    #[inline]
    pub fn apply_record(&mut self, record: &StoredRecord<'_>) {
        self.apply(&record.event, record.written_at);
    }

    #[cfg(test)]
    pub fn check_rlp_len(node: &Node) -> bool {
        node.endpoint().rlp_len() == node.to_rlp().len()
    }

    /// Applies an event read back by a reader that copies records out of the log.
    pub fn apply_event(&mut self, event: &Event, written_at: SystemTime) {
        // Both conversions hold for every record read from a log (their times came from
        // nanosecond integers), so a failure can only be an event the log could not hold.
        if let (Ok(stored), Ok(at)) = (StoredEvent::from_event(event), unix_nanos(written_at)) {
            self.apply(&stored, at);
        }
    }

    /// Applies one event written at `written_at`.
    #[inline]
    pub fn apply(&mut self, event: &StoredEvent<'_>, written_at: i64) {
        let change = self.apply_change(event, written_at);
        // Live bytes change only in the part the event touched: an entry removed, its own
        // fields, one IP slot (so that replay never walks the slots of an entry), a loss, the
        // local seq.
        self.live_bytes = self.live_bytes + change.after - change.before;
        if let Some(index) = change.entry {
            self.note_change(index);
        }
    }

    /// Applies one event; returns the live bytes of the part it touched before and after,
    /// and the entry it changed.
    #[inline]
    fn apply_change(&mut self, event: &StoredEvent<'_>, written_at: i64) -> Change {
        match *event {
            StoredEvent::NodeDeleted { id }
            | StoredEvent::NodeExpired { id }
            | StoredEvent::Evicted { id, .. } => Change::gone(self.remove(id)),
            StoredEvent::Loss(loss) => Change::added(self.record_loss(loss, written_at)),
            StoredEvent::LocalSeq { seq } => {
                let before = self.local_seq_live_bytes();
                self.local_seq = Some((seq, written_at));
                Change::of(before, self.local_seq_live_bytes(), None)
            }
            StoredEvent::IpExpired { id, ip } | StoredEvent::IpEvicted { id, ip } => {
                let Some(index) = self.find(id) else {
                    return Change::of(0, 0, None);
                };
                let before = self.entry_live_bytes(index);
                self.remove_slot(index, ip);
                Change::of(before, self.entry_live_bytes(index), Some(index))
            }
            StoredEvent::PingFrom { id, ip, at } => {
                self.in_slot(id, ip, written_at, |slot| slot.last_ping = at)
            }
            StoredEvent::PongFrom { id, ip, at } => {
                self.in_slot(id, ip, written_at, |slot| slot.last_pong = at)
            }
            StoredEvent::FindFailsAt { id, ip, fails } => {
                self.in_slot(id, ip, written_at, |slot| slot.fails = fails)
            }
            // The liveness without IP: only whether each field is set counts.
            StoredEvent::Ping { id, at } => self.in_entry(id, written_at, |e| e.last_ping = at),
            StoredEvent::Pong { id, at } => self.in_entry(id, written_at, |e| e.last_pong = at),
            StoredEvent::FindFails { id, fails } => {
                self.in_entry(id, written_at, |e| e.fails = fails)
            }
            StoredEvent::NodeUpdated { id, endpoint } => {
                let index = self.touch(id, written_at);
                let before = self.set_record_of(index, Some(endpoint), None);
                // What record_live_bytes gives for it, without reading it back.
                let after = unsigned_record_live_bytes(&endpoint);
                debug_assert_eq!(after, self.record_live_bytes(&self.entries[index]));
                Change::of(before, after, Some(index))
            }
            StoredEvent::Record { id, rlp } => {
                let index = self.touch(id, written_at);
                let before = self.set_record_of(index, None, Some(rlp));
                let after = signed_record_live_bytes(rlp);
                debug_assert_eq!(after, self.record_live_bytes(&self.entries[index]));
                Change::of(before, after, Some(index))
            }
        }
    }

    /// The entry of `id`, made if new, written at `written_at`.
    #[inline]
    fn touch(&mut self, id: &IdBytes, written_at: i64) -> usize {
        let index = self.index_or_insert(id);
        self.entries[index].touched = written_at;
        index
    }

    /// Sets the record of the entry at `index`; returns the live bytes of the record it had.
    #[inline]
    fn set_record_of(
        &mut self,
        index: usize,
        endpoint: Option<Endpoint>,
        rlp: Option<&[u8]>,
    ) -> u64 {
        let had_record = self.entries[index].has_record();
        let before = self.record_live_bytes(&self.entries[index]);
        // The group the entry leaves, if the groups are kept (never during replay).
        let group = self.subnets.is_some().then(|| self.group_of(index));
        match (endpoint, rlp) {
            // The common record, stored without the general path (which takes the endpoint
            // through memory): replay applies hundreds of thousands.
            (Some(endpoint), None) => self.set_endpoint(index, endpoint),
            _ => self.set_record(index, endpoint, rlp),
        }
        self.with_record += usize::from(!had_record);
        if let Some(from) = group {
            self.regroup(index, from);
        }
        before
    }

    /// The packed subnet group of the entry at `index` (see `Index::packed_group`): out of
    /// line, off the path replay takes.
    #[inline(never)]
    fn group_of(&self, index: usize) -> subnets::Packed {
        self.packed_group(&self.entries[index])
    }

    /// The entry at `index`, in `from`'s subnet group until its record changed, joins the
    /// group of its record now.
    #[inline(never)]
    fn regroup(&mut self, index: usize, from: subnets::Packed) {
        let to = self.group_of(index);
        if let Some(subnets) = &mut self.subnets {
            subnets.set(index, from, to);
        }
    }

    /// Changes the liveness without IP of `id`'s entry by `set`.
    #[inline]
    fn in_entry(&mut self, id: &IdBytes, written_at: i64, set: impl FnOnce(&mut Entry)) -> Change {
        let index = self.touch(id, written_at);
        let entry = &mut self.entries[index];
        let before = liveness_live_bytes(entry);
        set(entry);
        Change::of(before, liveness_live_bytes(entry), Some(index))
    }

    /// Changes `id`'s liveness at `ip` by `set`, making its slot if new.
    #[inline]
    fn in_slot(
        &mut self,
        id: &IdBytes,
        ip: IpKey,
        written_at: i64,
        set: impl FnOnce(&mut IpSlot),
    ) -> Change {
        let index = self.touch(id, written_at);
        let (slot, created) = self.slot_or_insert(index, ip);
        let slot = &mut self.slots[slot];
        let before = if created { 0 } else { slot.live_bytes() };
        set(slot);
        Change::of(before, slot.live_bytes(), Some(index))
    }
}

/// What an event changed: the live bytes of the part it touched, before and after, and the
/// entry it changed (which the eviction candidates must hear of).
struct Change {
    before: u64,
    after: u64,
    entry: Option<usize>,
}

impl Change {
    #[inline]
    fn of(before: u64, after: u64, entry: Option<usize>) -> Change {
        Change {
            before,
            after,
            entry,
        }
    }

    /// An entry removed, which had `live` bytes.
    #[inline]
    fn gone(live: u64) -> Change {
        Change::of(live, 0, None)
    }

    /// `live` bytes added, no entry changed.
    #[inline]
    fn added(live: u64) -> Change {
        Change::of(0, live, None)
    }
}

/// The hash of an id in `hasher`: the one function every lookup and insert uses.
fn hash_id(hasher: &DefaultHashBuilder, id: &IdBytes) -> u64 {
    hasher.hash_one(id)
}

#[cfg(test)]
impl Index {
    /// Panics unless the subnet groups, if kept, are exactly those a build from the entries
    /// would make (see `Subnets::assert_holds`).
    pub(crate) fn assert_subnets(&self) {
        if let Some(subnets) = &self.subnets {
            let keys: Vec<subnets::Packed> =
                self.entries.iter().map(|e| self.packed_group(e)).collect();
            for (entry, key) in self.entries.iter().zip(&keys) {
                assert_eq!(subnets::unpack(*key), self.group_key(entry));
            }
            subnets.assert_holds(&keys);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
    use std::time::UNIX_EPOCH;

    #[test]
    fn computed_rlp_length_matches_the_encoding() {
        for ip in [
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            IpAddr::V6(Ipv6Addr::LOCALHOST),
        ] {
            for port in [0, 1, 127, 128, 255, 256, 30303, 65535] {
                let node = Node::new(NodeId([7; 64]), ip, port, 65535 - port);
                assert!(Index::check_rlp_len(&node), "{node:?}");
            }
        }
    }

    fn endpoint(ip: &str, udp: u16, tcp: u16) -> Endpoint {
        Endpoint {
            ip: ip.parse().unwrap(),
            udp,
            tcp,
        }
    }

    fn apply(index: &mut Index, event: Event, at: i64) {
        index.apply(&StoredEvent::from_event(&event).unwrap(), at);
    }

    #[test]
    fn record_words_round_trip_at_the_edges() {
        for ip in ["0.0.0.0", "255.255.255.255", "203.0.113.7", "127.0.0.1"] {
            for (udp, tcp) in [(0, 0), (0, 65535), (65535, 0), (65535, 65535), (1, 30303)] {
                let IpAddr::V4(v4) = ip.parse().unwrap() else {
                    unreachable!()
                };
                let word = RecordWord::v4(v4, udp, tcp);
                assert_eq!(RecordWord::v4_endpoint(word), endpoint(ip, udp, tcp));
            }
        }
        for ip in [
            "::",
            "::1",
            "2001:db8::1",
            "::ffff:192.0.2.4",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ] {
            for (udp, tcp) in [(0, 65535), (65535, 0), (30303, 30301)] {
                let IpAddr::V6(v6) = ip.parse().unwrap() else {
                    unreachable!()
                };
                let blob = RecordWord::v6_blob(v6, udp, tcp);
                assert_eq!(RecordWord::v6_endpoint(&blob), endpoint(ip, udp, tcp));
            }
        }
        for (at, len) in [(0, 1), (u32::MAX, u16::MAX), (7, 300)] {
            let word = RecordWord::arena(at, len);
            assert_eq!(RecordWord::arena_at(word), at as usize);
            assert_eq!(RecordWord::arena_len(word), usize::from(len));
        }
    }

    /// Signed records (in the arena, their group parsed from the RLP) beside unsigned
    /// endpoints of both families: every record change moves the entry to its record's
    /// subnet group, removals move the last entry, and the groups stay those of the records.
    #[test]
    fn record_changes_move_entries_between_subnet_groups() {
        use enr::{CombinedKey, Enr};
        use std::net::Ipv4Addr;
        let signed = |n: u8, seq: u64, ip: Option<Ipv4Addr>| {
            let mut secret = [0x5a; 32];
            secret[0] = n + 1;
            let key = CombinedKey::secp256k1_from_bytes(&mut secret).unwrap();
            let mut builder = Enr::builder();
            if let Some(ip) = ip {
                builder.ip4(ip).udp4(30303);
            } else {
                builder.ip6("2001:db8::5".parse().unwrap()).udp6(30303);
            }
            let record = builder.seq(seq).build(&key).unwrap();
            NodeRecord::unverified(&record).unwrap()
        };
        let mut index = Index::default();
        let records: Vec<NodeRecord> = (0..6u8).map(|n| signed(n, 1, None)).collect();
        for (step, record) in records.iter().enumerate() {
            apply(&mut index, Event::Record(record.clone()), step as i64);
        }
        index.subnets();
        index.assert_subnets();
        let mut step = 100;
        for round in 0..4u8 {
            for (n, old) in records.iter().enumerate() {
                let id = *old.id();
                let ip = Ipv4Addr::new(10, round % 2, n as u8 % 3, 1);
                let event = match (round + n as u8) % 4 {
                    0 => Event::Record(signed(n as u8, u64::from(round) + 2, Some(ip))),
                    1 => Event::Record(signed(n as u8, u64::from(round) + 2, None)),
                    2 => Event::NodeUpdated(Node::new(id, IpAddr::V4(ip), 1, 2)),
                    _ => Event::NodeUpdated(Node::new(id, "2001:db8:7::1".parse().unwrap(), 1, 2)),
                };
                apply(&mut index, event, step);
                step += 1;
                index.assert_subnets();
                let entry = index.get(&id).unwrap();
                let want = index.endpoint(entry).map(|e| evict::default_subnet(e.ip));
                assert_eq!(index.group_key(entry), want);
            }
            let gone = *records[usize::from(round)].id();
            apply(&mut index, Event::NodeDeleted { id: gone }, step);
            index.assert_subnets();
            apply(
                &mut index,
                Event::Record(records[usize::from(round)].clone()),
                step,
            );
            index.assert_subnets();
        }
    }

    #[test]
    fn the_slot_bits_and_the_kind_bits_stay_apart() {
        let mut entry = Entry::new(NodeId([3; 64]));
        assert_eq!(
            (entry.first_slot(), entry.kind()),
            (NO_SLOT, RecordKind::None)
        );
        for kind in [
            RecordKind::Signed,
            RecordKind::V4,
            RecordKind::V6,
            RecordKind::None,
        ] {
            for slot in [0, 1, NO_SLOT - 1, NO_SLOT] {
                entry.set_kind(kind);
                entry.set_first_slot(slot);
                assert_eq!((entry.first_slot(), entry.kind()), (slot, kind));
                entry.set_kind(kind);
                assert_eq!((entry.first_slot(), entry.kind()), (slot, kind));
            }
        }
    }

    /// Endpoints of both families moving between the entry and the arena (which garbage
    /// makes rebuild more than once), beside IP slots, removals and times at the storable
    /// extremes, always read back as written.
    #[test]
    fn endpoints_slots_and_times_read_back_as_written() {
        use rand::{rngs::StdRng, SeedableRng};
        use std::collections::HashMap;
        let ips = [
            "0.0.0.0",
            "255.255.255.255",
            "10.1.2.3",
            "::",
            "::1",
            "2001:db8::7",
            "::ffff:10.1.2.3",
            "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff",
        ];
        let ports = [0, 1, 30303, 65535];
        let extremes = [-i64::MAX, i64::MAX, 0, 1_700_000_000_123_456_789];
        let mut rng = StdRng::seed_from_u64(23);
        let mut index = Index::default();
        // Per id: the endpoint, the IPs of its slots, its last ping.
        type State = (Option<Endpoint>, Vec<IpAddr>, Option<i64>);
        let mut model: HashMap<u8, State> = HashMap::new();
        let mut pushed = 0;
        for step in 0..40_000i64 {
            let id = NodeId([rng.random_range(0..40u8); 64]);
            let key = id.0[0];
            match rng.random_range(0..10) {
                0 => {
                    apply(&mut index, Event::NodeDeleted { id }, step);
                    model.remove(&key);
                }
                1 | 2 => {
                    let ip: IpAddr = ips[rng.random_range(0..ips.len())].parse().unwrap();
                    apply(
                        &mut index,
                        Event::PongFrom {
                            id,
                            ip,
                            at: UNIX_EPOCH,
                        },
                        step,
                    );
                    let state = model.entry(key).or_default();
                    let ip = ip_from_key(ip_key(ip));
                    if !state.1.contains(&ip) {
                        state.1.push(ip);
                    }
                }
                3 => {
                    let at = extremes[rng.random_range(0..extremes.len())];
                    let time = from_unix_nanos(at);
                    apply(&mut index, Event::Ping { id, at: time }, step);
                    model.entry(key).or_default().2 = Some(at);
                }
                _ => {
                    let ip = ips[rng.random_range(0..ips.len())];
                    let udp = ports[rng.random_range(0..ports.len())];
                    let tcp = ports[rng.random_range(0..ports.len())];
                    let e = endpoint(ip, udp, tcp);
                    pushed += usize::from(e.ip.is_ipv6()) * RecordWord::V6_LEN;
                    apply(&mut index, Event::NodeUpdated(e.with_id(id)), step);
                    model.entry(key).or_default().0 = Some(e);
                }
            }
            if step == 20_000 {
                // The subnet groups, built halfway, follow every change after.
                index.subnets();
            }
            index.assert_subnets();
            let entry = index.get(&id);
            assert_eq!(entry.is_some(), model.contains_key(&key));
            if let (Some(entry), Some((e, ips, ping))) = (entry, model.get(&key)) {
                assert_eq!(index.endpoint(entry), *e, "step {step}");
                assert_eq!(entry.has_record(), e.is_some());
                assert_eq!(index.record_rlp(entry), None);
                let mut held: Vec<IpAddr> = index.slots_of(entry).map(|s| s.public().ip).collect();
                let mut want = ips.clone();
                held.sort();
                want.sort();
                assert_eq!(held, want, "step {step}");
                let state = index.state(entry);
                assert_eq!(state.last_ping, ping.map(from_unix_nanos));
                assert_eq!(state.last_written, from_unix_nanos(step));
            }
        }
        assert!(
            index.records.len() < pushed / 2,
            "the arena was rebuilt: {} of {pushed} bytes",
            index.records.len()
        );
        for entry in index.entries() {
            let (e, _, _) = &model[&entry.id.0[0]];
            assert_eq!(index.endpoint(entry), *e);
        }
        assert_eq!(
            index.len(),
            model.values().filter(|m| m.0.is_some()).count()
        );
    }

    #[test]
    fn live_bytes_follow_overwrites_and_deletes() {
        let mut index = Index::default();
        let node = Node::new(
            NodeId([1; 64]),
            IpAddr::V4(Ipv4Addr::LOCALHOST),
            30303,
            30303,
        );
        let updated = Event::NodeUpdated(node.clone());
        let updated = StoredEvent::from_event(&updated).unwrap();
        index.apply(&updated, 0);
        assert_eq!(index.live_bytes(), 104);
        index.apply(&updated, 1);
        assert_eq!(index.live_bytes(), 104, "an overwrite is not live twice");
        index.apply(
            &StoredEvent::FindFails {
                id: &node.id.0,
                fails: 2,
            },
            2,
        );
        assert_eq!(index.live_bytes(), 104 + 96);
        index.apply(
            &StoredEvent::FindFails {
                id: &node.id.0,
                fails: 0,
            },
            3,
        );
        assert_eq!(
            index.live_bytes(),
            104,
            "zero fails are not written by compaction"
        );
        index.apply(&StoredEvent::NodeDeleted { id: &node.id.0 }, 4);
        assert_eq!((index.live_bytes(), index.len()), (0, 0));
    }
}
