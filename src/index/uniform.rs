//! `query_seeds`' eligibility and its uniform sampling over every fresh node.

use super::*;

impl Index {
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
        let mut probed = hashbrown::HashSet::with_capacity(4 * n);
        let mut picked = Vec::with_capacity(n);
        let budget = 4 * n + 32;
        for _ in 0..budget {
            let index = rng.random_range(0..self.entries.len());
            if probed.insert(index) && eligible(&self.entries[index]) {
                picked.push(&self.entries[index]);
                if picked.len() == n {
                    return picked;
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
