//! The index's hash table: from the hash of an id to the position of its entry.
//!
//! Open addressing with linear probing over one `u32` per slot (0 is an empty slot), from the
//! low bits up: the entry's position plus one, in as many bits as the table has slots (`2^k`
//! slots hold fewer than `2^k` entries); the slot's distance from its home slot, in 3 bits
//! (7: farther, or not known); a tag of the hash in the bits left (8 of them with a million
//! ids), which rules out all but one in 256 of the other ids a search passes before their
//! entries are read. Four bytes a slot, at most 5/8 full: 8.4 bytes an id with a million ids,
//! where a `u64` slot (a 32-bit tag beside the position) took 16.8.
//!
//! A slot does not keep the hash bits its home comes from. Moving slots back after a removal
//! needs the home of each slot after the hole, which the distance gives (linear probing at
//! this load leaves almost every slot within 6 of its home); only for a farther one is its id
//! hashed again, given its entry's position. Growing hashes every id again, in the order of
//! the entries (rare: replay sizes the table for the log first).
//!
//! Written for the index rather than taken from a crate for one reason: replay knows which ids
//! are coming a few records ahead, and [`IdTable::prefetch`] can fetch their slots while
//! earlier records are applied; with a million ids the table is far larger than the caches,
//! and a miss per new id dominated.

use super::memory::{populate_for_writing, prefer_huge_pages};

/// Most slots in use, in eighths of the table: beyond it the table doubles.
const MAX_LOAD_EIGHTHS: usize = 5;

/// Bits of a slot for its distance from home (fewer in a table too large to spare them).
const DISTANCE_BITS: u32 = 3;

pub(crate) struct IdTable {
    slots: Vec<u32>,
    len: usize,
    /// log2 of the number of slots: the bits of a slot that hold the position plus one.
    position_bits: u32,
    /// The distance a slot keeps for "this far or farther": its home must be found by hashing.
    far: u32,
}

impl Default for IdTable {
    fn default() -> IdTable {
        IdTable::with_capacity(0)
    }
}

impl IdTable {
    /// A table holding `ids` ids without growing.
    pub fn with_capacity(ids: usize) -> IdTable {
        IdTable::of_slots(
            (ids.saturating_mul(8) / MAX_LOAD_EIGHTHS + 1)
                .next_power_of_two()
                .max(16),
        )
    }

    fn of_slots(count: usize) -> IdTable {
        // 2^32 slots hold 2^32 * 5/8 ids, more than the index allows (`Index` refuses the
        // 2^31st id): a position plus one always fits in the slot.
        assert!(count as u64 <= 1 << 32, "an id table of at most 2^32 slots");
        let mut slots = vec![0; count];
        prefer_huge_pages(&slots);
        populate_for_writing(&mut slots);
        let position_bits = count.trailing_zeros();
        let distance_bits = DISTANCE_BITS.min(32 - position_bits);
        IdTable {
            slots,
            len: 0,
            position_bits,
            far: (1 << distance_bits) - 1,
        }
    }

    fn mask(&self) -> usize {
        self.slots.len() - 1
    }

    /// The slot where a search for `hash` starts: from its high half, so that the tag (from
    /// the low bits) is independent of it.
    fn home(&self, hash: u64) -> usize {
        (hash >> 32) as usize & self.mask()
    }

    fn position_mask(&self) -> u32 {
        ((1u64 << self.position_bits) - 1) as u32
    }

    /// The bits of the tag: those above the position and the distance.
    fn tag_shift(&self) -> u32 {
        self.position_bits + self.far.count_ones()
    }

    /// The tag of `hash` as a slot keeps it (0 in a table too large to spare the bits).
    fn tag(&self, hash: u64) -> u32 {
        (u64::from(hash as u32) << self.tag_shift()) as u32
    }

    fn tag_mask(&self) -> u32 {
        (u64::from(u32::MAX) << self.tag_shift()) as u32
    }

    /// A slot's distance from its home, as kept: `self.far` when it is that far or farther.
    fn distance(&self, slot: u32) -> u32 {
        slot >> self.position_bits & self.far
    }

    /// `slot` with its distance from home set to `distance` (kept as `self.far` if larger).
    fn with_distance(&self, slot: u32, distance: usize) -> u32 {
        let kept = distance.min(self.far as usize) as u32;
        slot & !(self.far << self.position_bits) | kept << self.position_bits
    }

    /// Asks the CPU to fetch the slot where a search for `hash` starts.
    #[inline]
    pub fn prefetch(&self, hash: u64) {
        let slot = &self.slots[self.home(hash)];
        #[cfg(target_arch = "x86_64")]
        // SAFETY: a prefetch has no architectural effect (it cannot fault and changes no
        // memory); the address is that of an element of `self.slots` anyway.
        unsafe {
            use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
            _mm_prefetch::<_MM_HINT_T0>((slot as *const u32).cast());
        }
        #[cfg(not(target_arch = "x86_64"))]
        let _ = slot;
    }

    /// The position of the slot holding the entry with `hash` for which `is_it` holds.
    #[inline]
    pub fn find(&self, hash: u64, mut is_it: impl FnMut(u32) -> bool) -> Option<usize> {
        let (tag, tags) = (self.tag(hash), self.tag_mask());
        let positions = self.position_mask();
        let mut at = self.home(hash);
        loop {
            let slot = self.slots[at];
            if slot == 0 {
                return None;
            }
            if slot & tags == tag && is_it((slot & positions) - 1) {
                return Some(at);
            }
            at = (at + 1) & self.mask();
        }
    }

    /// The entry in slot `at`.
    #[inline]
    pub fn entry_at(&self, at: usize) -> u32 {
        (self.slots[at] & self.position_mask()) - 1
    }

    /// Points slot `at` at `entry`, which must be below the table's size.
    #[inline]
    pub fn set_entry_at(&mut self, at: usize, entry: u32) {
        let positions = self.position_mask();
        debug_assert!(entry < positions, "a position fits beside the tag");
        self.slots[at] = self.slots[at] & !positions | (entry + 1);
    }

    /// Adds `entry` under `hash`, which the table must not hold yet. The table must hold the
    /// positions `0..entry` and no other, as it does for a dense vector of entries pushed at
    /// its end; `hash_of` gives the hash of the entry at each (for growing).
    #[inline]
    pub fn insert(&mut self, hash: u64, entry: u32, hash_of: impl Fn(u32) -> u64) {
        if (self.len + 1) * 8 > self.slots.len() * MAX_LOAD_EIGHTHS {
            self.grow(&hash_of);
        }
        debug_assert_eq!(entry as usize, self.len, "positions are dense");
        debug_assert!(entry < self.position_mask(), "fewer entries than slots");
        self.place(hash, entry);
        self.len += 1;
    }

    #[inline]
    fn place(&mut self, hash: u64, entry: u32) {
        let home = self.home(hash);
        let mut at = home;
        while self.slots[at] != 0 {
            at = (at + 1) & self.mask();
        }
        let distance = at.wrapping_sub(home) & self.mask();
        self.slots[at] = self.with_distance(self.tag(hash) | (entry + 1), distance);
    }

    /// Gives the position held in slot `at` a new hash: what removing it and adding it again
    /// under `hash` would do, without the rule that an added position is the next one (the
    /// table holds the same positions before and after). `hash_of` is as for
    /// [`IdTable::remove_at`].
    #[inline]
    pub fn rehome(&mut self, at: usize, hash: u64, hash_of: impl Fn(u32) -> u64) {
        let entry = self.entry_at(at);
        self.remove_at(at, hash_of);
        self.place(hash, entry);
        self.len += 1;
    }

    /// Doubles the table. The positions it holds are `0..len` (the index's entries are
    /// dense), so they are hashed again in order: the entries are read one after another
    /// rather than at random.
    fn grow(&mut self, hash_of: &impl Fn(u32) -> u64) {
        let len = self.len;
        *self = IdTable::of_slots(self.slots.len() * 2);
        for entry in 0..len as u32 {
            self.place(hash_of(entry), entry);
        }
        self.len = len;
    }

    /// Empties slot `at`, moving back the slots after it that belong before it, so that every
    /// search still finds its entry without passing an empty slot (no tombstones). `hash_of`
    /// gives the hash of the entry at a position the table holds, for a slot whose distance
    /// from home is not kept.
    #[inline]
    pub fn remove_at(&mut self, mut at: usize, hash_of: impl Fn(u32) -> u64) {
        let mask = self.mask();
        let positions = self.position_mask();
        let mut next = (at + 1) & mask;
        while self.slots[next] != 0 {
            let slot = self.slots[next];
            let distance = self.distance(slot);
            let home = if distance < self.far {
                next.wrapping_sub(distance as usize) & mask
            } else {
                self.home(hash_of((slot & positions) - 1))
            };
            // `next` may fill the hole if its home is not in the cyclic range (at, next].
            if (next.wrapping_sub(home) & mask) >= (next.wrapping_sub(at) & mask) {
                self.slots[at] = self.with_distance(slot, at.wrapping_sub(home) & mask);
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
        /// holds, with positions kept dense as the index keeps them (a removal moves the last
        /// entry into the hole). The hashes put every key's home in the last four slots of the
        /// table (up to 4096 slots), so that probe runs wrap around its end, and keys `k` and
        /// `k + 4` share their whole hash, tag included, so that a matching tag must still be
        /// told apart by the entry. The table starts at 16 slots and grows. A third operation
        /// gives a held key's position to a key not held (an eviction's new id taking the
        /// victim's place).
        #[test]
        fn agrees_with_a_map(ops in proptest::collection::vec((0u8..3, 0u64..64), 1..400)) {
            let hash_of = |key: u64| {
                let home = ((0xFFF - key % 4) | (key / 8) << 12) << 32;
                home | (key / 8).wrapping_mul(0x9E37_79B9) & 0xFFFF_FFFF
            };
            let mut table = IdTable::with_capacity(4);
            // Position -> key, dense, and key -> position.
            let mut keys: Vec<u64> = Vec::new();
            let mut model: HashMap<u64, u32> = HashMap::new();
            for (op, key) in ops {
                let hash = hash_of(key);
                let found = table.find(hash, |e| model.get(&key) == Some(&e));
                prop_assert_eq!(found.is_some(), model.contains_key(&key));
                // A key not held, for a rehoming.
                let other = (key..key + 64).map(|k| k % 64).find(|k| !model.contains_key(k));
                match (op, found) {
                    (2, Some(at)) if other.is_some() => {
                        let (entry, other) = (table.entry_at(at), other.unwrap());
                        table.rehome(at, hash_of(other), |e| hash_of(keys[e as usize]));
                        keys[entry as usize] = other;
                        model.remove(&key);
                        model.insert(other, entry);
                    }
                    (0 | 2, None) => {
                        let entry = keys.len() as u32;
                        table.insert(hash, entry, |e| hash_of(keys[e as usize]));
                        keys.push(key);
                        model.insert(key, entry);
                    }
                    (1, Some(at)) => {
                        let entry = table.entry_at(at);
                        prop_assert_eq!(Some(entry), model.get(&key).copied());
                        table.remove_at(at, |e| hash_of(keys[e as usize]));
                        model.remove(&key);
                        keys.swap_remove(entry as usize);
                        if let Some(&moved) = keys.get(entry as usize) {
                            let last = keys.len() as u32;
                            let at = table.find(hash_of(moved), |e| e == last);
                            prop_assert!(at.is_some(), "the moved key {} has a slot", moved);
                            table.set_entry_at(at.unwrap(), entry);
                            model.insert(moved, entry);
                        }
                    }
                    _ => {}
                }
                prop_assert_eq!(table.len, model.len());
                for (&k, &e) in &model {
                    let at = table.find(hash_of(k), |x| x == e);
                    prop_assert!(at.is_some(), "lost key {}", k);
                    let at = at.unwrap();
                    prop_assert_eq!(table.entry_at(at), e);
                    // The distance kept is the slot's own, or `far` for one at least as far.
                    let distance = at.wrapping_sub(table.home(hash_of(k))) & table.mask();
                    let kept = table.distance(table.slots[at]) as usize;
                    prop_assert_eq!(kept, distance.min(table.far as usize));
                }
            }
        }
    }

    #[test]
    fn a_slot_holds_the_largest_position_beside_the_tag() {
        let mut table = IdTable::with_capacity(4);
        let last = table.position_mask() - 1;
        let hash = u64::MAX;
        table.insert(hash, 0, |_| unreachable!());
        let at = table.find(hash, |e| e == 0).unwrap();
        table.set_entry_at(at, last);
        assert_eq!(table.find(hash, |e| e == last), Some(at));
        assert_eq!(table.entry_at(at), last);
        assert_eq!(
            table.tag(hash),
            !table.position_mask() & !(table.far << table.position_bits)
        );
        assert_eq!(table.distance(table.slots[at]), 0);
    }
}
