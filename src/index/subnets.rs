//! Which ids each subnet (/24, /48) holds, kept as the index changes: what the seed query
//! spreads its picks over and what eviction counts.
//!
//! Built from the entries the first time it is needed (a seed query, or an eviction that must
//! find the fullest subnet), then kept up to date by every change to the index, so that a
//! database that never asks pays nothing for it on replay. Every entry is in exactly one
//! group: its endpoint's subnet, or the group of ids without an endpoint.

use std::cmp::Reverse;
use std::collections::BTreeSet;

use hashbrown::{DefaultHashBuilder, HashMap};

use crate::subnet::Subnet;

/// A group's key: a subnet, or `None` for the ids without an endpoint (lowest in order).
pub(crate) type GroupKey = Option<Subnet>;

/// A group's key as the map keeps it: [`Subnet::packed`], or zero for `None` (16 bytes,
/// ordered as the keys are).
pub(crate) type Packed = [u64; 2];

pub(crate) fn pack(key: GroupKey) -> Packed {
    key.map_or([0, 0], Subnet::packed)
}

pub(crate) fn unpack(packed: Packed) -> GroupKey {
    (packed != [0, 0]).then(|| Subnet::unpacked(packed))
}

/// Bits of an entry's position in its group's members that [`Subnets`] keeps per entry.
type Low = u16;

/// The low bits of a position in a group, as kept per entry.
fn low(at: usize) -> Low {
    at as Low
}

/// A group's members: most subnets hold one id, kept without an allocation.
#[derive(Debug)]
enum Members {
    One(u32),
    Many(Vec<u32>),
}

#[derive(Debug)]
pub(crate) struct Group {
    key: Packed,
    members: Members,
}

impl Group {
    pub fn key(&self) -> GroupKey {
        unpack(self.key)
    }

    /// Entry indices, in no order; empty for a group left for reuse.
    pub fn members(&self) -> &[u32] {
        match &self.members {
            Members::One(one) => std::slice::from_ref(one),
            Members::Many(many) => many,
        }
    }

    fn members_mut(&mut self) -> &mut [u32] {
        match &mut self.members {
            Members::One(one) => std::slice::from_mut(one),
            Members::Many(many) => many,
        }
    }

    /// Where `index` is among the members, given the low bits of its position: the one
    /// position with those bits in a group of at most 2^16 members, else one of the few.
    fn find(&self, index: u32, low: Low) -> usize {
        let members = self.members();
        (usize::from(low)..members.len())
            .step_by(1 << Low::BITS)
            .find(|&at| members[at] == index)
            .expect("an entry is among its group's members")
    }

    fn push(&mut self, index: u32) {
        self.members = match std::mem::replace(&mut self.members, Members::Many(Vec::new())) {
            Members::Many(many) if many.is_empty() => Members::One(index),
            Members::Many(mut many) => {
                many.push(index);
                Members::Many(many)
            }
            Members::One(one) => Members::Many(vec![one, index]),
        };
    }

    /// Removes the member at `at`; returns the member that moved into its place, if any.
    fn swap_remove(&mut self, at: usize) -> Option<u32> {
        match &mut self.members {
            Members::One(_) => {
                self.members = Members::Many(Vec::new());
                None
            }
            Members::Many(many) => {
                many.swap_remove(at);
                let moved = many.get(at).copied();
                if many.len() == 1 {
                    self.members = Members::One(many[0]);
                }
                moved
            }
        }
    }
}

/// The subnet groups. An entry's group is not kept per entry: it is the group of the key
/// its record gives (`Index::packed_group`), which the index passes in where a change needs
/// it. Per entry, only the low 16 bits of its position in its group's members are kept (2
/// bytes an id): enough to find it there at once in a group of at most 2^16 ids, and among
/// one in 2^16 of the positions of a larger one.
#[derive(Debug, Default)]
pub(crate) struct Subnets {
    groups: Vec<Group>,
    by_key: HashMap<Packed, u32, DefaultHashBuilder>,
    /// Groups left empty, for reuse.
    free: Vec<u32>,
    /// Per entry index: the low bits of its position in its group's members.
    lows: Vec<Low>,
    /// Every non-empty group by size, largest first, then by key: the fullest subnet is the
    /// first. Made when eviction first asks for the fullest subnet (most stores never fill).
    by_size: Option<BTreeSet<(Reverse<u32>, Packed)>>,
}

impl Subnets {
    /// The groups of `keys`, the key of each entry in index order.
    pub fn build(keys: impl ExactSizeIterator<Item = Packed>) -> Subnets {
        let mut subnets = Subnets {
            lows: Vec::with_capacity(keys.len()),
            ..Subnets::default()
        };
        for key in keys {
            let index = subnets.lows.len() as u32;
            let low = subnets.join(index, key);
            subnets.lows.push(low);
        }
        subnets
    }

    /// All groups, some of them empty (left for reuse).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of `key`, if it has members.
    pub fn group(&self, key: Packed) -> Option<u32> {
        self.by_key.get(&key).copied()
    }

    /// The group holding the most ids (ties: the lowest key), if any.
    pub fn fullest(&mut self) -> Option<u32> {
        let groups = &self.groups;
        let by_size = self.by_size.get_or_insert_with(|| {
            groups
                .iter()
                .filter(|g| !g.members().is_empty())
                .map(|g| (Reverse(g.members().len() as u32), g.key))
                .collect()
        });
        let (_, key) = by_size.first()?;
        self.by_key.get(key).copied()
    }

    /// A new entry at the end of the index, without an endpoint.
    pub fn push(&mut self) {
        let index = self.lows.len() as u32;
        let low = self.join(index, pack(None));
        self.lows.push(low);
    }

    /// The entry at `index` moved from `from`'s group to `to`'s (its record changed).
    pub fn set(&mut self, index: usize, from: Packed, to: Packed) {
        if from != to {
            self.leave(index, from);
            self.lows[index] = self.join(index as u32, to);
        }
    }

    /// The entry at `index`, in `key`'s group, was removed, and the last entry, in `last`'s
    /// group, moved into its place.
    pub fn swap_remove(&mut self, index: usize, key: Packed, last: Packed) {
        self.leave(index, key);
        let last_index = self.lows.len() - 1;
        if index < last_index {
            let low = self.lows[last_index];
            self.lows[index] = low;
            let group = self.group(last).expect("the last entry's group");
            let group = &mut self.groups[group as usize];
            let at = group.find(last_index as u32, low);
            group.members_mut()[at] = index as u32;
        }
        self.lows.pop();
    }

    /// A group's size changed from `before` to `after` (0: none).
    fn resized(&mut self, key: Packed, before: usize, after: usize) {
        if let Some(by_size) = &mut self.by_size {
            if before > 0 {
                by_size.remove(&(Reverse(before as u32), key));
            }
            if after > 0 {
                by_size.insert((Reverse(after as u32), key));
            }
        }
    }

    /// Adds the entry at `index` to `key`'s group; returns the low bits of its position.
    fn join(&mut self, index: u32, key: Packed) -> Low {
        let group = match self.by_key.get(&key) {
            Some(&group) => group,
            None => {
                let group = match self.free.pop() {
                    Some(group) => {
                        self.groups[group as usize].key = key;
                        group
                    }
                    None => {
                        self.groups.push(Group {
                            key,
                            members: Members::Many(Vec::new()),
                        });
                        (self.groups.len() - 1) as u32
                    }
                };
                self.by_key.insert(key, group);
                group
            }
        };
        let g = &mut self.groups[group as usize];
        let size = g.members().len();
        g.push(index);
        self.resized(key, size, size + 1);
        low(size)
    }

    /// Takes the entry at `index` out of `key`'s group.
    fn leave(&mut self, index: usize, key: Packed) {
        let group = self.group(key).expect("an entry's group has members");
        let g = &mut self.groups[group as usize];
        let size = g.members().len();
        let at = g.find(index as u32, self.lows[index]);
        if let Some(moved) = g.swap_remove(at) {
            self.lows[moved as usize] = low(at);
        }
        if size == 1 {
            self.by_key.remove(&key);
            self.free.push(group);
        }
        self.resized(key, size, size - 1);
    }
}

#[cfg(test)]
impl Subnets {
    /// Panics unless the groups are exactly those of `keys` (the key of each entry in index
    /// order): every entry a member of its key's group once, at a position with the low bits
    /// kept for it; every group with members found by its key (and by size, if listed);
    /// every empty group free for reuse.
    pub(crate) fn assert_holds(&self, keys: &[Packed]) {
        assert_eq!(self.lows.len(), keys.len(), "one position per entry");
        // Where each entry is a member: (group, position).
        let mut places = vec![None; keys.len()];
        for (g, group) in self.groups.iter().enumerate() {
            for (at, &m) in group.members().iter().enumerate() {
                let place = places.get_mut(m as usize).expect("a member is an entry");
                assert_eq!(*place, None, "entry {m} is a member once");
                *place = Some((g as u32, at));
            }
        }
        for (i, key) in keys.iter().enumerate() {
            let (g, at) = places[i].expect("every entry is a member");
            assert_eq!(self.group(*key), Some(g), "entry {i} is in its key's group");
            assert_eq!(self.lows[i], low(at), "entry {i}'s position");
        }
        let mut held = 0;
        for (g, group) in self.groups.iter().enumerate() {
            let members = group.members();
            if members.is_empty() {
                assert!(self.free.contains(&(g as u32)), "an empty group is free");
                continue;
            }
            assert!(
                !self.free.contains(&(g as u32)),
                "a group with members is not free"
            );
            assert_eq!(self.group(group.key), Some(g as u32));
            assert!(members.iter().all(|&m| keys[m as usize] == group.key));
            assert_eq!(matches!(group.members, Members::One(_)), members.len() == 1);
            held += members.len();
            if let Some(by_size) = &self.by_size {
                assert!(by_size.contains(&(Reverse(members.len() as u32), group.key)));
            }
        }
        assert_eq!(held, keys.len(), "no member beyond the entries");
        assert_eq!(self.by_key.len(), self.groups.len() - self.free.len());
        if let Some(by_size) = &self.by_size {
            assert_eq!(by_size.len(), self.by_key.len());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn key(ip: &str) -> Packed {
        pack(Some(Subnet::of(ip.parse().unwrap(), 24, 48)))
    }

    const NONE: Packed = [0, 0];

    /// The key of `group`, and the key of the group `fullest` found.
    fn fullest_key(s: &mut Subnets) -> Option<Packed> {
        let g = s.fullest()?;
        Some(s.groups[g as usize].key)
    }

    #[test]
    fn groups_follow_moves_and_removals() {
        let mut keys = vec![key("10.0.0.1"), key("10.0.0.2"), NONE];
        let mut s = Subnets::build(keys.iter().copied());
        s.assert_holds(&keys);
        assert_eq!(fullest_key(&mut s), Some(key("10.0.0.1")));
        s.push();
        keys.push(NONE);
        s.set(3, NONE, key("10.0.1.1"));
        keys[3] = key("10.0.1.1");
        s.set(2, NONE, key("10.0.1.2"));
        keys[2] = key("10.0.1.2");
        s.assert_holds(&keys);
        // Two groups of two: the lower key is the fullest.
        assert_eq!(fullest_key(&mut s), Some(key("10.0.0.1")));
        s.swap_remove(0, keys[0], keys[3]);
        keys.swap_remove(0);
        s.assert_holds(&keys);
        assert_eq!(fullest_key(&mut s), Some(key("10.0.1.1")));
        // Entry 3 moved to 0.
        let g = &s.groups[s.group(keys[0]).unwrap() as usize];
        assert!(g.members().contains(&0) && g.members().contains(&2));
        // The same key set again changes nothing.
        s.set(1, keys[1], keys[1]);
        s.assert_holds(&keys);
        while !keys.is_empty() {
            let last = *keys.last().unwrap();
            s.swap_remove(0, keys[0], last);
            keys.swap_remove(0);
            s.assert_holds(&keys);
        }
        assert_eq!(s.fullest(), None);
        assert!(s.by_key.is_empty());
    }

    /// A group of more than 2^16 members, where the low bits kept per entry match several
    /// positions: removals and moves from the far end, the middle and the start find the
    /// right member.
    #[test]
    fn a_group_beyond_the_kept_bits_finds_its_members() {
        let big = key("10.0.0.1");
        let mut keys: Vec<Packed> = (0..(1 << 16) + 3000)
            .map(|i| if i % 1000 == 7 { key("10.9.0.1") } else { big })
            .collect();
        let mut s = Subnets::build(keys.iter().copied());
        s.assert_holds(&keys);
        // usize::MAX: the last entry (removed without a move).
        for index in [keys.len() - 2, 67_000, 5, 65_536, 1, usize::MAX] {
            let index = index.min(keys.len() - 1);
            let last = *keys.last().unwrap();
            s.swap_remove(index, keys[index], last);
            keys.swap_remove(index);
        }
        for index in [66_000, 3, 65_537] {
            s.set(index, keys[index], key("10.9.0.2"));
            keys[index] = key("10.9.0.2");
        }
        s.set(3, keys[3], big);
        keys[3] = big;
        s.assert_holds(&keys);
    }

    #[derive(Clone, Debug)]
    enum Op {
        Push,
        Set(usize, usize),
        Remove(usize),
        Fullest,
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            2 => Just(Op::Push),
            4 => (any::<usize>(), 0..5usize).prop_map(|(i, k)| Op::Set(i, k)),
            3 => any::<usize>().prop_map(Op::Remove),
            1 => Just(Op::Fullest),
        ]
    }

    proptest! {
        /// Any sequence of new entries, record changes moving an entry between groups (or to
        /// the same one), and removals (the last entry moving into the hole) leaves exactly
        /// the groups a fresh build from the keys has, and the fullest group is the model's.
        #[test]
        fn groups_match_the_keys_after_any_changes(
            start in prop::collection::vec(0..5usize, 0..20),
            ops in prop::collection::vec(op(), 0..200),
        ) {
            let palette = [NONE, key("10.0.0.1"), key("10.0.1.1"), key("2001:db8::1"), key("10.0.0.9")];
            let mut keys: Vec<Packed> = start.iter().map(|&k| palette[k]).collect();
            let mut s = Subnets::build(keys.iter().copied());
            for op in ops {
                match op {
                    Op::Push => {
                        s.push();
                        keys.push(NONE);
                    }
                    Op::Set(i, k) if !keys.is_empty() => {
                        let i = i % keys.len();
                        s.set(i, keys[i], palette[k]);
                        keys[i] = palette[k];
                    }
                    Op::Remove(i) if !keys.is_empty() => {
                        let i = i % keys.len();
                        s.swap_remove(i, keys[i], *keys.last().unwrap());
                        keys.swap_remove(i);
                    }
                    Op::Fullest => {
                        let mut sizes = std::collections::BTreeMap::new();
                        for k in &keys {
                            *sizes.entry(*k).or_insert(0usize) += 1;
                        }
                        let most = sizes.values().max().copied();
                        let expected = sizes.iter().find(|(_, &n)| Some(n) == most).map(|(k, _)| *k);
                        prop_assert_eq!(fullest_key(&mut s), expected);
                    }
                    _ => {}
                }
                s.assert_holds(&keys);
            }
        }
    }
}
