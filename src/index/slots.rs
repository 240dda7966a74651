//! Liveness per IP: a pool of slots chained from their entry (most nodes have at most one).

use super::*;

/// Liveness of a node at one IP, as the index keeps it.
#[derive(Clone, Copy, Debug)]
pub(super) struct IpSlot {
    pub(super) ip: IpKey,
    pub(super) last_ping: i64,
    pub(super) last_pong: i64,
    pub(super) fails: u32,
    /// The next slot of the same entry (or, for a free slot, the next free one).
    pub(super) next: u32,
}

impl IpSlot {
    pub(super) fn public(&self) -> IpLiveness {
        IpLiveness {
            ip: ip_from_key(self.ip),
            last_ping: time(self.last_ping).map(from_unix_nanos),
            last_pong: time(self.last_pong).map(from_unix_nanos),
            fails: self.fails,
        }
    }

    /// Log bytes a compaction would write for this slot.
    pub(super) fn live_bytes(&self) -> u64 {
        let timed = frame_len(PING_FROM_PAYLOAD_LEN);
        let fails = frame_len(FAILS_AT_PAYLOAD_LEN);
        timed * u64::from(self.last_ping != NEVER)
            + timed * u64::from(self.last_pong != NEVER)
            + fails * u64::from(self.fails != 0)
    }

    /// The time expiry judges the slot by: its pong, else its ping, else `touched`.
    pub(super) fn age_mark(&self, touched: i64) -> i64 {
        [self.last_pong, self.last_ping, touched]
            .into_iter()
            .find(|&t| t != NEVER)
            .unwrap_or(NEVER)
    }
}

impl Index {
    pub(super) fn slots_of(&self, entry: &Entry) -> impl Iterator<Item = &IpSlot> + '_ {
        let mut next = entry.first_slot();
        std::iter::from_fn(move || {
            let slot = self.slots.get(next as usize)?;
            next = slot.next;
            Some(slot)
        })
    }

    /// An entry's liveness at `ip`.
    pub fn ip_liveness(&self, entry: &Entry, ip: IpAddr) -> Option<IpLiveness> {
        let key = ip_key(ip);
        self.slots_of(entry)
            .find(|s| s.ip == key)
            .map(IpSlot::public)
    }

    /// Returns a chain of IP slots to the free list.
    pub(super) fn free_slots(&mut self, mut next: u32) {
        while next != NO_SLOT {
            let slot = &mut self.slots[next as usize];
            let after = slot.next;
            slot.next = self.free_slot;
            self.free_slot = next;
            next = after;
        }
    }

    /// The slot of the entry at `index` for `ip`, and whether it was created.
    pub(super) fn slot_or_insert(&mut self, index: usize, ip: IpKey) -> (usize, bool) {
        let mut next = self.entries[index].first_slot();
        while next != NO_SLOT {
            let slot = &self.slots[next as usize];
            if slot.ip == ip {
                return (next as usize, false);
            }
            next = slot.next;
        }
        let slot = IpSlot {
            ip,
            last_ping: NEVER,
            last_pong: NEVER,
            fails: 0,
            next: self.entries[index].first_slot(),
        };
        let at = if self.free_slot != NO_SLOT {
            let at = self.free_slot;
            self.free_slot = self.slots[at as usize].next;
            self.slots[at as usize] = slot;
            at
        } else {
            self.slots.push(slot);
            u32::try_from(self.slots.len() - 1)
                .ok()
                .filter(|&at| at < NO_SLOT)
                .expect("fewer than 2^30 - 1 IP slots")
        };
        self.entries[index].set_first_slot(at);
        (at as usize, true)
    }

    /// Removes the slot of the entry at `index` for `ip`, if it has one.
    pub(super) fn remove_slot(&mut self, index: usize, ip: IpKey) {
        let mut link: Option<u32> = None;
        let mut next = self.entries[index].first_slot();
        while next != NO_SLOT {
            let slot = self.slots[next as usize];
            if slot.ip == ip {
                match link {
                    None => self.entries[index].set_first_slot(slot.next),
                    Some(previous) => self.slots[previous as usize].next = slot.next,
                }
                self.slots[next as usize].next = self.free_slot;
                self.free_slot = next;
                return;
            }
            link = Some(next);
            next = slot.next;
        }
    }
}
