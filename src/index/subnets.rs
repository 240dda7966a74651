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

/// Where an entry sits: its group, and its position in the group's members.
#[derive(Clone, Copy, Debug)]
struct Place {
    group: u32,
    at: u32,
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

#[derive(Debug, Default)]
pub(crate) struct Subnets {
    groups: Vec<Group>,
    by_key: HashMap<Packed, u32, DefaultHashBuilder>,
    /// Groups left empty, for reuse.
    free: Vec<u32>,
    /// Per entry index.
    places: Vec<Place>,
    /// Every non-empty group by size, largest first, then by key: the fullest subnet is the
    /// first. Made when eviction first asks for the fullest subnet (most stores never fill).
    by_size: Option<BTreeSet<(Reverse<u32>, Packed)>>,
}

impl Subnets {
    /// The groups of `keys`, the key of each entry in index order.
    pub fn build(keys: impl ExactSizeIterator<Item = GroupKey>) -> Subnets {
        let mut subnets = Subnets {
            places: Vec::with_capacity(keys.len()),
            ..Subnets::default()
        };
        for key in keys {
            let index = subnets.places.len() as u32;
            let place = subnets.join(index, key);
            subnets.places.push(place);
        }
        subnets
    }

    /// All groups, some of them empty (left for reuse).
    pub fn groups(&self) -> &[Group] {
        &self.groups
    }

    /// The group of the entry at `index`.
    pub fn group_of(&self, index: usize) -> u32 {
        self.places[index].group
    }

    /// The key of the group of the entry at `index`.
    pub fn key_of(&self, index: usize) -> GroupKey {
        self.groups[self.places[index].group as usize].key()
    }

    /// The packed key of the group of the entry at `index`.
    pub fn packed_key_of(&self, index: usize) -> Packed {
        self.groups[self.places[index].group as usize].key
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
        let index = self.places.len() as u32;
        let place = self.join(index, None);
        self.places.push(place);
    }

    /// The entry at `index` moved to `key`'s group (its endpoint changed).
    pub fn set(&mut self, index: usize, key: GroupKey) {
        if self.key_of(index) != key {
            self.leave(index);
            self.places[index] = self.join(index as u32, key);
        }
    }

    /// The entry at `index` was removed, and the last entry moved into its place.
    pub fn swap_remove(&mut self, index: usize) {
        self.leave(index);
        let last = self.places.len() - 1;
        if index < last {
            let moved = self.places[last];
            self.places[index] = moved;
            let group = &mut self.groups[moved.group as usize];
            match &mut group.members {
                Members::One(one) => *one = index as u32,
                Members::Many(many) => many[moved.at as usize] = index as u32,
            }
        }
        self.places.pop();
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

    fn join(&mut self, index: u32, key: GroupKey) -> Place {
        let key = pack(key);
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
        Place {
            group,
            at: size as u32,
        }
    }

    fn leave(&mut self, index: usize) {
        let Place { group, at } = self.places[index];
        let g = &mut self.groups[group as usize];
        let (key, size) = (g.key, g.members().len());
        if let Some(moved) = g.swap_remove(at as usize) {
            self.places[moved as usize].at = at;
        }
        if size == 1 {
            self.by_key.remove(&key);
            self.free.push(group);
        }
        self.resized(key, size, size - 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(ip: &str) -> GroupKey {
        Some(Subnet::of(ip.parse().unwrap(), 24, 48))
    }

    #[test]
    fn groups_follow_moves_and_removals() {
        let mut s = Subnets::build([key("10.0.0.1"), key("10.0.0.2"), None].into_iter());
        assert_eq!(s.fullest(), Some(s.group_of(0)));
        s.push();
        s.set(3, key("10.0.1.1"));
        s.set(2, key("10.0.1.2"));
        // Two groups of two: the lower key is the fullest.
        assert_eq!(s.key_of(s.places.len() - 1), key("10.0.1.1"));
        let fullest = s.fullest().unwrap() as usize;
        assert_eq!(s.groups[fullest].key(), key("10.0.0.1"));
        s.swap_remove(0);
        let fullest = s.fullest().unwrap() as usize;
        assert_eq!(s.groups[fullest].key(), key("10.0.1.1"));
        // Entry 3 moved to 0.
        assert_eq!(s.key_of(0), key("10.0.1.1"));
        let g = &s.groups[s.group_of(0) as usize];
        assert!(g.members().contains(&0) && g.members().contains(&2));
        s.swap_remove(0);
        s.swap_remove(0);
        s.swap_remove(0);
        assert_eq!(s.fullest(), None);
        assert!(s.by_key.is_empty());
    }
}
