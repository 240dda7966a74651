//! What expiration drops.

use super::*;

/// What expiry drops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expired {
    /// A node with everything known about it.
    Node(NodeId),
    /// The liveness of a node at one IP.
    Ip(NodeId, IpAddr),
}

impl Index {
    /// What expiration drops when everything older than `threshold` is stale: every node
    /// whose newest pong (to no particular IP or from any IP) is older, or, for one that never
    /// got a pong, whose newest event is; the record of `self_id` whatever its age; and, of the
    /// nodes that stay, every IP slot whose pong (else ping) is older.
    pub fn expired(&self, threshold: i64, self_id: &NodeId) -> Vec<Expired> {
        let mut expired = Vec::new();
        for entry in &self.entries {
            let newest_pong = self
                .slots_of(entry)
                .map(|s| s.last_pong)
                .fold(entry.last_pong, i64::max);
            let newest = if entry.has_record() {
                newest_pong
            } else {
                // An id with only pings, pongs or fails: its newest timestamp.
                self.slots_of(entry)
                    .map(|s| s.last_ping)
                    .fold(entry.last_ping.max(newest_pong), i64::max)
            };
            // Nothing to judge by: the newest event about it.
            let mark = if newest == NEVER {
                entry.touched
            } else {
                newest
            };
            if mark < threshold || (entry.id == *self_id && entry.has_record()) {
                expired.push(Expired::Node(entry.id));
                continue;
            }
            for slot in self.slots_of(entry) {
                if slot.age_mark(entry.touched) < threshold {
                    expired.push(Expired::Ip(entry.id, ip_from_key(slot.ip)));
                }
            }
        }
        expired
    }
}
