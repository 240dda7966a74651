//! Seeds spread over subnets: each pick chooses uniformly among the subnets that still hold
//! an eligible node not yet picked and have fewer than `per_subnet` picks, then uniformly
//! among that subnet's eligible nodes not yet picked.
//!
//! With the default prefixes (/24, /48) the subnet groups the index keeps are used, and both
//! choices are made by rejection: draw a group, then members of it, until the draw is one the
//! rule allows. That makes each choice exactly uniform while looking at a few entries, not the
//! index; a choice whose draws keep failing (eligible nodes are rare) is made from the
//! explicit list instead, which is just as uniform. Other prefixes group the eligible nodes
//! in one scan.

use hashbrown::{HashMap, HashSet};
use rand::RngExt;

use super::subnets::{unpack, Subnets};
use super::{Entry, Index};
use crate::subnet::{Subnet, DEFAULT_V4_BITS, DEFAULT_V6_BITS};

/// What a seed query asks for, besides how many.
pub(crate) struct SpreadRules<'a> {
    pub per_subnet: usize,
    pub v4_bits: u8,
    pub v6_bits: u8,
    /// Whether the entry is eligible (fresh, not the local node, passing the query's filters).
    pub eligible: &'a dyn Fn(&Index, &Entry) -> bool,
}

/// The picking state of one subnet group.
#[derive(Default)]
struct Pool {
    /// Entry indices found eligible and not picked, when the group was listed.
    listed: Option<Vec<u32>>,
    /// Entry indices drawn and found ineligible or already picked.
    refused: HashSet<u32>,
    picks: usize,
}

impl Index {
    /// Up to `n` distinct entries spread over subnets by `rules` (see the module doc).
    pub(crate) fn sample_spread(&mut self, n: usize, rules: &SpreadRules<'_>) -> Vec<usize> {
        if n == 0 || rules.per_subnet == 0 {
            return Vec::new();
        }
        if (rules.v4_bits, rules.v6_bits) != (DEFAULT_V4_BITS, DEFAULT_V6_BITS) {
            return self.sample_listed(n, rules);
        }
        self.subnets();
        let subnets = self.subnets.as_ref().expect("built above");
        sample_groups(self, subnets, n, rules)
    }

    /// [`Index::sample_spread`] by one scan, for any prefixes.
    fn sample_listed(&self, n: usize, rules: &SpreadRules<'_>) -> Vec<usize> {
        let mut groups: HashMap<Subnet, Vec<u32>> = HashMap::new();
        for (i, entry) in self.entries.iter().enumerate() {
            if (rules.eligible)(self, entry) {
                if let Some(endpoint) = self.endpoint(entry) {
                    let subnet = Subnet::of(endpoint.ip, rules.v4_bits, rules.v6_bits);
                    groups.entry(subnet).or_default().push(i as u32);
                }
            }
        }
        let open = groups.into_values().map(|g| (0, g)).collect();
        pick_from_lists(open, n, rules.per_subnet)
    }
}

/// [`Index::sample_spread`] over the index's subnet groups, by rejection.
fn sample_groups(
    index: &Index,
    subnets: &Subnets,
    n: usize,
    rules: &SpreadRules<'_>,
) -> Vec<usize> {
    let groups = subnets.groups();
    if groups.is_empty() {
        return Vec::new();
    }
    let mut rng = rand::rng();
    let mut pools: HashMap<u32, Pool> = HashMap::new();
    let mut picked = Vec::with_capacity(n.min(index.entries.len()));
    // Groups known to have no room or no eligible node left.
    let mut closed: HashSet<u32> = HashSet::new();
    while picked.len() < n {
        // A group by rejection: draws until one with room and an eligible node left.
        let mut chosen = None;
        for _ in 0..4 * n + 64 {
            let g = rng.random_range(0..groups.len()) as u32;
            let group = &groups[g as usize];
            if group.key().is_none() || group.members().is_empty() || closed.contains(&g) {
                continue;
            }
            let pool = pools.entry(g).or_default();
            match draw_member(index, group.members(), pool, rules, &mut rng) {
                Some(member) => {
                    chosen = Some((g, member));
                    break;
                }
                None => {
                    closed.insert(g);
                }
            }
        }
        let Some((g, member)) = chosen else {
            // Eligible nodes are rare among the groups: the rest from one scan.
            let picks = |g: u32| pools.get(&g).map_or(0, |p| p.picks);
            let taken: HashSet<u32> = picked.iter().map(|&i| i as u32).collect();
            let rest = n - picked.len();
            picked.extend(sample_scanned(index, subnets, rest, rules, picks, &taken));
            break;
        };
        picked.push(member as usize);
        let pool = pools.get_mut(&g).expect("a chosen group has a pool");
        pool.picks += 1;
        pool.refused.insert(member);
        if let Some(listed) = &mut pool.listed {
            if let Some(at) = listed.iter().position(|&m| m == member) {
                listed.swap_remove(at);
            }
        }
        if pool.picks >= rules.per_subnet || pool.listed.as_ref().is_some_and(Vec::is_empty) {
            closed.insert(g);
        }
    }
    picked
}

/// The remaining `n` picks from the eligible entries of every group, listed in one scan;
/// `picks` says how many each group already gave, `taken` which entries.
fn sample_scanned(
    index: &Index,
    subnets: &Subnets,
    n: usize,
    rules: &SpreadRules<'_>,
    picks: impl Fn(u32) -> usize,
    taken: &HashSet<u32>,
) -> Vec<usize> {
    let mut open: Vec<(usize, Vec<u32>)> = Vec::new();
    let mut slot_of: HashMap<u32, usize> = HashMap::new();
    for (i, entry) in index.entries.iter().enumerate() {
        let i = i as u32;
        if taken.contains(&i) || !(rules.eligible)(index, entry) {
            continue;
        }
        let key = index.packed_group(entry);
        let Some(g) = subnets.group(key) else {
            continue;
        };
        if unpack(key).is_none() || picks(g) >= rules.per_subnet {
            continue;
        }
        let slot = *slot_of.entry(g).or_insert_with(|| {
            open.push((picks(g), Vec::new()));
            open.len() - 1
        });
        open[slot].1.push(i);
    }
    pick_from_lists(open, n, rules.per_subnet)
}

/// Up to `n` picks from explicit lists, each `(picks so far, eligible members)`: each pick
/// uniform over the lists with room, then within the list.
fn pick_from_lists(mut open: Vec<(usize, Vec<u32>)>, n: usize, per_subnet: usize) -> Vec<usize> {
    let mut rng = rand::rng();
    let mut picked = Vec::with_capacity(n.min(open.len() * per_subnet.min(1 << 16)));
    open.retain(|(picks, members)| *picks < per_subnet && !members.is_empty());
    while picked.len() < n && !open.is_empty() {
        let g = rng.random_range(0..open.len());
        let (picks, members) = &mut open[g];
        let m = rng.random_range(0..members.len());
        picked.push(members.swap_remove(m) as usize);
        *picks += 1;
        if *picks >= per_subnet || members.is_empty() {
            open.swap_remove(g);
        }
    }
    picked
}

/// A uniformly random eligible member of a group not yet picked, or `None` if it has none:
/// by rejection for a few draws, then from the group's list.
fn draw_member(
    index: &Index,
    members: &[u32],
    pool: &mut Pool,
    rules: &SpreadRules<'_>,
    rng: &mut impl rand::Rng,
) -> Option<u32> {
    if pool.listed.is_none() {
        for _ in 0..2 * members.len() + 4 {
            let m = members[rng.random_range(0..members.len())];
            if pool.refused.contains(&m) {
                continue;
            }
            if (rules.eligible)(index, &index.entries[m as usize]) {
                return Some(m);
            }
            pool.refused.insert(m);
        }
        list(index, members, pool, rules);
    }
    let listed = pool.listed.as_ref()?;
    (!listed.is_empty()).then(|| listed[rng.random_range(0..listed.len())])
}

/// Lists a group's eligible members not yet picked or refused.
fn list(index: &Index, members: &[u32], pool: &mut Pool, rules: &SpreadRules<'_>) {
    if pool.listed.is_some() {
        return;
    }
    let listed = members
        .iter()
        .copied()
        .filter(|m| !pool.refused.contains(m))
        .filter(|&m| (rules.eligible)(index, &index.entries[m as usize]))
        .collect();
    pool.listed = Some(listed);
}
