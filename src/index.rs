//! The in-memory state of every node, rebuilt by applying events, and seed sampling.
//!
//! Entries live in a dense vector (so a uniformly random entry is one random index away) and a
//! hash table of indices finds an entry by id without storing the 64-byte id twice.

use std::hash::BuildHasher;
use std::time::SystemTime;

use hashbrown::DefaultHashBuilder;
use rand::Rng;

use crate::event::{from_unix_nanos, unix_nanos, Event, IdBytes, StoredEvent, StoredRecord};
use crate::event::{FAILS_PAYLOAD_LEN, PING_PAYLOAD_LEN};
use crate::id_table::IdTable;
use crate::journal::format::{align, FRAME_HEADER_LEN};
use crate::node::{ids_equal, Endpoint, Node, NodeId};

/// Marks a timestamp that was never set.
const NEVER: i64 = i64::MIN;

/// Everything known about one id: its node record and liveness data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PeerState {
    /// The id.
    pub id: NodeId,
    /// Its node record, if it has one.
    pub node: Option<Node>,
    /// Last ping sent.
    pub last_ping: Option<SystemTime>,
    /// Last pong received.
    pub last_pong: Option<SystemTime>,
    /// Findnode failures.
    pub fails: u32,
    /// Write time of the newest event about it.
    pub last_written: SystemTime,
}

/// Everything known about one id, as the index keeps it.
#[derive(Clone, Debug)]
pub(crate) struct Entry {
    pub id: NodeId,
    pub endpoint: Option<Endpoint>,
    last_ping: i64,
    last_pong: i64,
    pub fails: u32,
    /// Write time of the newest event about this id.
    pub touched: i64,
}

impl Entry {
    fn new(id: NodeId) -> Entry {
        Entry {
            id,
            endpoint: None,
            last_ping: NEVER,
            last_pong: NEVER,
            fails: 0,
            touched: NEVER,
        }
    }

    pub fn node(&self) -> Option<Node> {
        self.endpoint.map(|e| e.with_id(self.id))
    }

    pub fn last_ping(&self) -> Option<i64> {
        (self.last_ping != NEVER).then_some(self.last_ping)
    }

    pub fn last_pong(&self) -> Option<i64> {
        (self.last_pong != NEVER).then_some(self.last_pong)
    }

    /// The entry in public form.
    pub fn state(&self) -> PeerState {
        PeerState {
            id: self.id,
            node: self.node(),
            last_ping: self.last_ping().map(from_unix_nanos),
            last_pong: self.last_pong().map(from_unix_nanos),
            fails: self.fails,
            last_written: from_unix_nanos(self.touched),
        }
    }

    /// Whether `query_seeds` may offer this entry: it has a record, is not `self_id` and
    /// answered a ping at or after `min_pong`.
    pub fn is_seed(&self, min_pong: i64, self_id: &NodeId) -> bool {
        self.endpoint.is_some() && self.id != *self_id && self.last_pong >= min_pong
    }

    /// The events that recreate this entry, as compaction writes them.
    pub fn live_events(&self) -> impl Iterator<Item = Event> + '_ {
        let node = self.node().map(Event::NodeUpdated);
        let ping = self.last_ping().map(|at| Event::Ping {
            id: self.id,
            at: from_unix_nanos(at),
        });
        let pong = self.last_pong().map(|at| Event::Pong {
            id: self.id,
            at: from_unix_nanos(at),
        });
        let fails = (self.fails != 0).then_some(Event::FindFails {
            id: self.id,
            fails: self.fails,
        });
        node.into_iter().chain(ping).chain(pong).chain(fails)
    }

    /// Log bytes a compaction would write for this entry.
    fn live_bytes(&self) -> u64 {
        let timed = align(FRAME_HEADER_LEN + PING_PAYLOAD_LEN) as u64;
        let node = self
            .endpoint
            .map_or(0, |e| align(FRAME_HEADER_LEN + 8 + e.rlp_len()) as u64);
        let fails = if self.fails != 0 {
            align(FRAME_HEADER_LEN + FAILS_PAYLOAD_LEN) as u64
        } else {
            0
        };
        node + fails
            + timed * u64::from(self.last_ping().is_some())
            + timed * u64::from(self.last_pong().is_some())
    }

    /// Whether expiration drops this entry: a node record is judged by its last pong; an id
    /// with only pings, pongs or fails by its newest timestamp.
    fn is_expired(&self, threshold: i64, self_id: &NodeId) -> bool {
        if self.endpoint.is_some() {
            return self.id == *self_id || self.last_pong < threshold;
        }
        let newest = self.last_ping.max(self.last_pong);
        let newest = if newest == NEVER {
            self.touched
        } else {
            newest
        };
        newest < threshold
    }
}

/// The state of every known id.
#[derive(Default)]
pub(crate) struct Index {
    entries: Vec<Entry>,
    table: IdTable,
    /// Seeded at random per index (foldhash): ids are chosen by remote peers, so the hash must
    /// not be predictable, and it is on the path of every event replayed.
    hasher: DefaultHashBuilder,
    with_record: usize,
    live_bytes: u64,
    /// Index of the entry the last event touched: logs (and compacted logs above all) write
    /// an id's events together, so most lookups during replay need no hashing at all.
    last_touched: Option<usize>,
}

impl Index {
    /// An index with room for about `ids` ids, so that replay does not rehash as it grows.
    pub fn with_capacity(ids: usize) -> Index {
        let mut index = Index::default();
        index.entries.reserve(ids);
        index.table = IdTable::with_capacity(ids);
        index
    }

    /// Ids with a node record.
    pub fn len(&self) -> usize {
        self.with_record
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
        // Entry positions are u32 in the table (and u32::MAX is reserved): 4 billion ids,
        // hundreds of GB of index, long before which memory runs out.
        let position = u32::try_from(index)
            .ok()
            .filter(|&p| p != u32::MAX)
            .expect("the index holds fewer than 2^32 - 1 ids");
        self.entries.push(Entry::new(NodeId(*id)));
        self.table.insert(hash, position);
        index
    }

    /// Removes everything known about `id`; whether anything was known.
    fn remove(&mut self, id: &IdBytes) -> bool {
        let Some(at) = self.find_slot(hash_id(&self.hasher, id), id) else {
            return false;
        };
        let index = self.table.entry_at(at) as usize;
        self.table.remove_at(at);
        // Indices move below: forget the cached one.
        self.last_touched = None;
        let removed = self.entries.swap_remove(index);
        self.account(&removed, -1);
        if index < self.entries.len() {
            // The last entry moved into the hole: point its slot at its new place.
            let moved_hash = hash_id(&self.hasher, &self.entries[index].id.0);
            let old_index = self.entries.len() as u32;
            let at = self
                .table
                .find(moved_hash, |i| i == old_index)
                .expect("every entry has a slot");
            self.table.set_entry_at(at, index as u32);
        }
        true
    }

    fn account(&mut self, entry: &Entry, sign: i64) {
        let records = i64::from(entry.endpoint.is_some());
        self.with_record = (self.with_record as i64 + sign * records) as usize;
        self.live_bytes = (self.live_bytes as i64 + sign * entry.live_bytes() as i64) as u64;
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
        let id = event.id();
        if let StoredEvent::NodeDeleted { .. } | StoredEvent::NodeExpired { .. } = event {
            self.remove(id);
            return;
        }
        let index = self.index_or_insert(id);
        let entry = &mut self.entries[index];
        let (had_record, bytes_before) = (entry.endpoint.is_some(), entry.live_bytes());
        entry.touched = written_at;
        match event {
            StoredEvent::NodeUpdated { endpoint, .. } => entry.endpoint = Some(*endpoint),
            StoredEvent::Ping { at, .. } => entry.last_ping = *at,
            StoredEvent::Pong { at, .. } => entry.last_pong = *at,
            StoredEvent::FindFails { fails, .. } => entry.fails = *fails,
            StoredEvent::NodeDeleted { .. } | StoredEvent::NodeExpired { .. } => {
                unreachable!("handled above")
            }
        }
        let bytes_after = entry.live_bytes();
        self.with_record += usize::from(!had_record && entry.endpoint.is_some());
        self.live_bytes = self.live_bytes + bytes_after - bytes_before;
    }

    /// Ids that expiration drops when everything older than `threshold` is stale.
    pub fn expired(&self, threshold: i64, self_id: &NodeId) -> Vec<NodeId> {
        self.entries
            .iter()
            .filter(|e| e.is_expired(threshold, self_id))
            .map(|e| e.id)
            .collect()
    }

    /// Up to `n` distinct random nodes that have a record, are not `self_id` and answered a
    /// ping at or after `min_pong`; every such node is equally likely.
    ///
    /// Random probes find the first eligible entries of a random order of all entries, which
    /// is a uniform sample; if eligible entries are too rare for probing to finish quickly,
    /// a full scan samples from the complete eligible list instead.
    pub fn sample_seeds(&self, n: usize, min_pong: i64, self_id: &NodeId) -> Vec<Node> {
        let eligible = |e: &Entry| e.is_seed(min_pong, self_id);
        let n = n.min(self.entries.len());
        if n == 0 {
            return Vec::new();
        }
        let mut rng = rand::thread_rng();
        let mut probed = hashbrown::HashSet::with_capacity(4 * n);
        let mut picked = Vec::with_capacity(n.min(self.entries.len()));
        let budget = 4 * n + 32;
        for _ in 0..budget {
            let index = rng.gen_range(0..self.entries.len());
            if probed.insert(index) && eligible(&self.entries[index]) {
                picked.push(index);
                if picked.len() == n {
                    return picked
                        .iter()
                        .filter_map(|&i| self.entries[i].node())
                        .collect();
                }
            }
        }
        let all: Vec<&Entry> = self.entries.iter().filter(|e| eligible(e)).collect();
        rand::seq::index::sample(&mut rng, all.len(), n.min(all.len()))
            .into_iter()
            .filter_map(|i| all[i].node())
            .collect()
    }
}

/// The hash of an id in `hasher`: the one function every lookup and insert uses.
fn hash_id(hasher: &DefaultHashBuilder, id: &IdBytes) -> u64 {
    hasher.hash_one(id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
