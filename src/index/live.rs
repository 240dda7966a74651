//! Live bytes (what a compaction would write) and the live state as compaction writes it.

use super::*;

/// Log bytes a compaction would write for an entry's liveness without IP (ping, pong, fails).
pub(super) fn liveness_live_bytes(entry: &Entry) -> u64 {
    let timed = frame_len(PING_PAYLOAD_LEN);
    let fails = frame_len(FAILS_PAYLOAD_LEN);
    timed * u64::from(entry.last_ping != NEVER)
        + timed * u64::from(entry.last_pong != NEVER)
        + fails * u64::from(entry.fails != 0)
}

/// Log bytes a compaction would write for a signed record of RLP `rlp`.
pub(super) fn signed_record_live_bytes(rlp: &[u8]) -> u64 {
    frame_len(ID_PAYLOAD_LEN + rlp.len())
}

/// Log bytes a compaction would write for an unsigned record of endpoint `endpoint`.
pub(super) fn unsigned_record_live_bytes(endpoint: &Endpoint) -> u64 {
    frame_len(8 + endpoint.rlp_len())
}

impl Index {
    /// Log bytes a compaction would write for an entry without its IP slots.
    pub(super) fn own_live_bytes(&self, entry: &Entry) -> u64 {
        self.record_live_bytes(entry) + liveness_live_bytes(entry)
    }

    /// Log bytes a compaction would write for an entry's record.
    pub(super) fn record_live_bytes(&self, entry: &Entry) -> u64 {
        if let Some(rlp) = self.record_rlp(entry) {
            return signed_record_live_bytes(rlp);
        }
        self.endpoint(entry)
            .map_or(0, |e| unsigned_record_live_bytes(&e))
    }

    /// Appends the events that recreate an entry exactly, as compaction and the index
    /// snapshot write them, in stored form: its record, ping, pong and non-zero fails (a zero
    /// count for an entry that holds nothing else, which a replay of the log keeps), then per
    /// IP slot, in the order that gives back their chain, its ping, pong and non-zero fails
    /// (a zero count for a slot that holds nothing else).
    pub fn live_events<'a>(&'a self, entry: &'a Entry, events: &mut Vec<StoredEvent<'a>>) {
        let id = &entry.id.0;
        let own = events.len();
        match self.record_rlp(entry) {
            Some(rlp) => events.push(StoredEvent::Record { id, rlp }),
            None => events.extend(
                self.endpoint(entry)
                    .map(|endpoint| StoredEvent::NodeUpdated { id, endpoint }),
            ),
        }
        events.extend(entry.last_ping().map(|at| StoredEvent::Ping { id, at }));
        events.extend(entry.last_pong().map(|at| StoredEvent::Pong { id, at }));
        let slots: Vec<&IpSlot> = self.slots_of(entry).collect();
        if entry.fails != 0 || (events.len() == own && slots.is_empty()) {
            events.push(StoredEvent::FindFails {
                id,
                fails: entry.fails,
            });
        }
        // A new slot goes to the head of its entry's chain: the last one made comes first.
        for slot in slots.into_iter().rev() {
            let ip = slot.ip;
            let before = events.len();
            events.extend(time(slot.last_ping).map(|at| StoredEvent::PingFrom { id, ip, at }));
            events.extend(time(slot.last_pong).map(|at| StoredEvent::PongFrom { id, ip, at }));
            if slot.fails != 0 || events.len() == before {
                events.push(StoredEvent::FindFailsAt {
                    id,
                    ip,
                    fails: slot.fails,
                });
            }
        }
    }

    /// The losses as compaction writes them, with their write times: when each was first
    /// recorded.
    pub fn live_losses(&self) -> impl Iterator<Item = (i64, StoredEvent<'_>)> + '_ {
        self.losses
            .iter()
            .map(|&(loss, written_at)| (written_at, StoredEvent::Loss(loss)))
    }

    /// The local seq as compaction writes it, with its write time.
    pub fn live_local_seq(&self) -> Option<(i64, StoredEvent<'_>)> {
        self.local_seq
            .map(|(seq, written_at)| (written_at, StoredEvent::LocalSeq { seq }))
    }

    /// Log bytes a compaction would write for the entry at `index`, IP slots included.
    pub(super) fn entry_live_bytes(&self, index: usize) -> u64 {
        let entry = &self.entries[index];
        self.own_live_bytes(entry) + self.slots_of(entry).map(IpSlot::live_bytes).sum::<u64>()
    }

    pub(super) fn local_seq_live_bytes(&self) -> u64 {
        let frame = frame_len(LOCAL_SEQ_PAYLOAD_LEN);
        frame * u64::from(self.local_seq.is_some())
    }
}
