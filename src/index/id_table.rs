//! The index's hash table: from the hash of an id to the position of its entry.
//!
//! Open addressing with linear probing over one `u64` per slot: the high 32 bits of the
//! hash (which also choose the slot, so that growing and deleting never rehash an id) and the
//! entry's position plus one (0 is an empty slot). Written for the index rather than taken
//! from a crate for one reason: replay knows which ids are coming a few records ahead, and
//! [`IdTable::prefetch`] can fetch their slots while earlier records are applied; with a
//! million ids the table is far larger than the caches, and a miss per new id dominated.

use super::memory::{populate_for_writing, prefer_huge_pages};

/// Most slots in use, in eighths of the table: beyond it the table doubles.
const MAX_LOAD_EIGHTHS: usize = 5;

pub(crate) struct IdTable {
    slots: Vec<u64>,
    len: usize,
}

impl Default for IdTable {
    fn default() -> IdTable {
        IdTable::with_capacity(0)
    }
}

/// The part of a hash a slot keeps.
fn tag(hash: u64) -> u64 {
    hash >> 32
}

impl IdTable {
    /// A table holding `ids` ids without growing.
    pub fn with_capacity(ids: usize) -> IdTable {
        let slots = (ids.saturating_mul(8) / MAX_LOAD_EIGHTHS + 1)
            .next_power_of_two()
            .max(16);
        let mut slots = vec![0; slots];
        prefer_huge_pages(&slots);
        populate_for_writing(&mut slots);
        IdTable { slots, len: 0 }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    fn home(&self, tag: u64) -> usize {
        tag as usize & self.mask()
    }

    /// Asks the CPU to fetch the slot where a search for `hash` starts.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let slot = &self.slots[self.home(tag(hash))];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch has no architectural effect (it cannot fault and changes no
        // memory); the address is that of an element of `self.slots` anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((slot as *const u64).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// The position of the slot holding the entry with `hash` for which `is_it` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<usize> {
        let tag = tag(hash);
        let mut at = self.home(tag);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if slot >> 32 == tag && is_it(slot as u32 - 1) {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    /// The entry in slot `at`.
    pub fn entry_at(&self, at: usize) -> u32 {
        self.slots[at] as u32 - 1
    }

    /// Points slot `at` at `entry`.
    pub fn set_entry_at(&mut self, at: usize, entry: u32) {
        self.slots[at] = self.slots[at] >> 32 << 32 | (u64::from(entry) + 1);
    }

    /// Adds `entry` under `hash`, which the table must not hold yet.
    pub fn insert(&mut self, hash: u64, entry: u32) {
        debug_assert!(entry < u32::MAX, "entry positions are below u32::MAX");
        if (self.len + 1) * 8 > self.slots.len() * MAX_LOAD_EIGHTHS {
            self.grow();
        }
        self.place(tag(hash) << 32 | (u64::from(entry) + 1));
        self.len += 1;
    }

    fn place(&mut self, slot: u64) {
        let mut at = self.home(slot >> 32);
        while self.slots[at] != 0 {
            at = (at + 1) & self.mask();
        }
        self.slots[at] = slot;
    }

    fn grow(&mut self) {
        let mut doubled = vec![0; self.slots.len() * 2];
        prefer_huge_pages(&doubled);
        populate_for_writing(&mut doubled);
        let old = std::mem::replace(&mut self.slots, doubled);
        for slot in old.into_iter().filter(|&s| s != 0) {
            self.place(slot);
        }
    }

    /// Empties slot `at`, moving back the slots after it that belong before it, so that every
    /// search still finds its entry without passing an empty slot (no tombstones).
    pub fn remove_at(&mut self, mut at: usize) {
        let mask = self.mask();
        let mut next = (at + 1) & mask;
        while self.slots[next] != 0 {
            let home = self.home(self.slots[next] >> 32);
            // `next` may fill the hole if its home is not in the cyclic range (at, next].
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(at) & mask) {
                self.slots[at] = self.slots[next];
                at = next;
            }
            next = (next + 1) & mask;
        }
        self.slots[at] = 0;
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    proptest! {
        /// Any sequence of inserts and removes leaves the table finding exactly what a map
        /// holds. The hashes put every key's home in the last four slots of the table (up to
        /// 4096 slots), so that probe runs wrap around its end, and keys `k` and `k + 4` share
        /// their whole hash, so that a matching tag must still be told apart by the entry.
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let hash_of = |key: u64| ((0xFFF - key % 4) | (key / 8) << 12) << 32;
            let mut table = IdTable::with_capacity(4);
            let mut model: HashMap<u64, u32> = HashMap::new();
            let mut next_entry = 0u32;
            for (insert, key) in ops {
                let hash = hash_of(key);
                let found = table.find(hash, |e| model.get(&key) == Some(&e));
                prop_assert_eq!(found.is_some(), model.contains_key(&key));
                match (insert, found) {
                    (true, None) => {
                        table.insert(hash, next_entry);
                        model.insert(key, next_entry);
                        next_entry += 1;
                    }
                    (false, Some(at)) => {
                        prop_assert_eq!(Some(table.entry_at(at)), model.get(&key).copied());
                        table.remove_at(at);
                        model.remove(&key);
                    }
                    _ => {}
                }
                prop_assert_eq!(table.len, model.len());
                for (&k, &e) in &model {
                    let at = table.find(hash_of(k), |x| x == e);
                    prop_assert!(at.is_some(), "lost key {}", k);
                }
            }
        }
    }
}
