//! `query_seeds`' eligibility and its uniform sampling over every fresh node.

use super::memory::prefetch_read;
use super::*;

/// Probes drawn and fetched ahead at a time.
const PROBE_BATCH: usize = 8;

/// The entries probed so far: a list searched linearly for the few probes of a usual query
/// (cheaper than hashing), a hash set for many.
enum Probed {
    Few(Vec<u32>),
    Many(hashbrown::HashSet<u32>),
}

impl Probed {
    /// Most probes kept in a list.
    const FEW: usize = 256;

    fn with_capacity(probes: usize) -> Probed {
        if probes <= Probed::FEW {
            Probed::Few(Vec::with_capacity(probes))
        } else {
            Probed::Many(hashbrown::HashSet::with_capacity(probes))
        }
    }

    /// Adds `index`; whether it was new.
    fn insert(&mut self, index: u32) -> bool {
        match self {
            Probed::Few(list) => {
                let new = !list.contains(&index);
                list.push(index);
                new
            }
            Probed::Many(set) => set.insert(index),
        }
    }
}

impl Index {
    /// Starts fetching the parts of `entry` outside it that eligibility reads: the start of
    /// its record blob and its first IP slot.
    pub(super) fn prefetch_parts(&self, entry: &Entry) {
        if entry.kind().in_arena() {
            if let Some(blob) = self.records.get(entry.arena_at()) {
                prefetch_read(blob);
            }
        }
        if let Some(slot) = self.slots.get(entry.first_slot() as usize) {
            prefetch_read(slot);
        }
    }

    /// Whether `query_seeds` may offer this entry: it has an endpoint, is not `self_id`, and
    /// answered a ping at or after `min_pong`, to no particular IP or from its record's IP
    /// (a pong from an IP the node has since left does not count).
    pub fn is_seed(&self, entry: &Entry, min_pong: i64, self_id: &NodeId) -> bool {
        let Some(endpoint) = self.endpoint(entry) else {
            return false;
        };
        if entry.id == *self_id {
            return false;
        }
        if entry.last_pong >= min_pong {
            return true;
        }
        let key = ip_key(endpoint.ip);
        self.slots_of(entry)
            .any(|s| s.ip == key && s.last_pong >= min_pong)
    }

    /// Up to `n` distinct random nodes that [`Index::is_seed`] and `also` accept; every such
    /// node is equally likely.
    ///
    /// Random probes find the first eligible entries of a random order of all entries, which
    /// is a uniform sample; if eligible entries are too rare for probing to finish quickly,
    /// a full scan samples from the complete eligible list instead.
    pub fn sample_seeds_where(
        &self,
        n: usize,
        min_pong: i64,
        self_id: &NodeId,
        also: impl Fn(&Entry) -> bool,
    ) -> Vec<&Entry> {
        let eligible = |e: &Entry| self.is_seed(e, min_pong, self_id) && also(e);
        let n = n.min(self.entries.len());
        if n == 0 {
            return Vec::new();
        }
        let mut rng = rand::rng();
        let budget = 4 * n + 32;
        let mut probed = Probed::with_capacity(budget);
        let mut picked = Vec::with_capacity(n);
        let mut batch = [0u32; PROBE_BATCH];
        let mut left = budget;
        while left > 0 {
            // Draw a few probes ahead and fetch what checking them reads (the entry, then its
            // record blob and first IP slot), so that their cache misses overlap instead of
            // following one another; they are then checked in the order drawn, as before.
            let draws = &mut batch[..left.min(PROBE_BATCH)];
            left -= draws.len();
            for draw in draws.iter_mut() {
                *draw = rng.random_range(0..self.entries.len()) as u32;
                prefetch_read(&self.entries[*draw as usize]);
            }
            for &draw in draws.iter() {
                self.prefetch_parts(&self.entries[draw as usize]);
            }
            for &draw in draws.iter() {
                let entry = &self.entries[draw as usize];
                if probed.insert(draw) && eligible(entry) {
                    picked.push(entry);
                    if picked.len() == n {
                        return picked;
                    }
                }
            }
        }
        let all: Vec<&Entry> = self.entries.iter().filter(|e| eligible(e)).collect();
        rand::seq::index::sample(&mut rng, all.len(), n.min(all.len()))
            .into_iter()
            .map(|i| all[i])
            .collect()
    }
}
