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

/// Where an entry sits: its group, and its position in the group's members.
#[derive(Clone, Copy, Debug)]
struct Place {
    group: u32,
    at: u32,
}

#[derive(Debug)]
pub(crate) struct Group {
    pub key: GroupKey,
    /// Entry indices, in no order.
    pub members: Vec<u32>,
}

#[derive(Debug, Default)]
pub(crate) struct Subnets {
    groups: Vec<Group>,
    by_key: HashMap<GroupKey, u32, DefaultHashBuilder>,
    /// Groups left empty, for reuse.
    free: Vec<u32>,
    /// Per entry index.
    places: Vec<Place>,
    /// Every non-empty group by size, largest first, then by key: the fullest subnet is the
    /// first.
    by_size: BTreeSet<(Reverse<u32>, GroupKey)>,
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
        self.groups[self.places[index].group as usize].key
    }

    /// The group holding the most ids (ties: the lowest key), if any.
    pub fn fullest(&self) -> Option<u32> {
        let (_, key) = self.by_size.first()?;
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
            self.groups[moved.group as usize].members[moved.at as usize] = index as u32;
        }
        self.places.pop();
    }

    fn join(&mut self, index: u32, key: GroupKey) -> Place {
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
                            members: Vec::new(),
                        });
                        (self.groups.len() - 1) as u32
                    }
                };
                self.by_key.insert(key, group);
                group
            }
        };
        let members = &mut self.groups[group as usize].members;
        let size = members.len() as u32;
        if size > 0 {
            self.by_size.remove(&(Reverse(size), key));
        }
        members.push(index);
        self.by_size.insert((Reverse(size + 1), key));
        Place { group, at: size }
    }

    fn leave(&mut self, index: usize) {
        let Place { group, at } = self.places[index];
        let g = &mut self.groups[group as usize];
        let size = g.members.len() as u32;
        self.by_size.remove(&(Reverse(size), g.key));
        g.members.swap_remove(at as usize);
        if let Some(&moved) = g.members.get(at as usize) {
            self.places[moved as usize].at = at;
        }
        if g.members.is_empty() {
            self.by_key.remove(&g.key);
            self.free.push(group);
        } else {
            self.by_size.insert((Reverse(size - 1), g.key));
        }
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
        assert_eq!(s.groups[s.fullest().unwrap() as usize].key, key("10.0.0.1"));
        s.swap_remove(0);
        assert_eq!(s.groups[s.fullest().unwrap() as usize].key, key("10.0.1.1"));
        // Entry 3 moved to 0.
        assert_eq!(s.key_of(0), key("10.0.1.1"));
        let g = &s.groups[s.group_of(0) as usize];
        assert!(g.members.contains(&0) && g.members.contains(&2));
        s.swap_remove(0);
        s.swap_remove(0);
        s.swap_remove(0);
        assert_eq!(s.fullest(), None);
        assert!(s.by_key.is_empty());
    }
}
