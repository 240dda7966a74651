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

use super::subnets::Subnets;
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
        let mut open: Vec<(usize, Vec<u32>)> = groups.into_values().map(|g| (0, g)).collect();
        let mut rng = rand::rng();
        let mut picked = Vec::with_capacity(n.min(self.entries.len()));
        while picked.len() < n && !open.is_empty() {
            let g = rng.random_range(0..open.len());
            let (picks, members) = &mut open[g];
            let m = rng.random_range(0..members.len());
            picked.push(members.swap_remove(m) as usize);
            *picks += 1;
            if *picks == rules.per_subnet || members.is_empty() {
                open.swap_remove(g);
            }
        }
        picked
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
    let mut rng = rand::rng();
    let mut pools: HashMap<u32, Pool> = HashMap::new();
    let mut picked = Vec::with_capacity(n.min(index.entries.len()));
    // Groups known to have no room or no eligible node left.
    let mut closed: HashSet<u32> = HashSet::new();
    let mut listed_all = false;
    while picked.len() < n {
        // A group: by rejection, until too many draws fail; then from the open groups.
        let mut chosen = None;
        if !listed_all {
            for _ in 0..4 * n + 64 {
                let g = rng.random_range(0..groups.len()) as u32;
                let group = &groups[g as usize];
                if group.key.is_none() || group.members.is_empty() || closed.contains(&g) {
                    continue;
                }
                let pool = pools.entry(g).or_default();
                match draw_member(index, &group.members, pool, rules, &mut rng) {
                    Some(member) => {
                        chosen = Some((g, member));
                        break;
                    }
                    None => {
                        closed.insert(g);
                    }
                }
            }
        }
        let (g, member) = match chosen {
            Some(choice) => choice,
            None => {
                // Eligible nodes are rare among the groups: list every open group's.
                if !listed_all {
                    for (g, group) in groups.iter().enumerate() {
                        let g = g as u32;
                        if group.key.is_some() && !closed.contains(&g) {
                            let pool = pools.entry(g).or_default();
                            list(index, &group.members, pool, rules);
                            if pool.listed.as_ref().is_some_and(Vec::is_empty) {
                                closed.insert(g);
                            }
                        }
                    }
                    listed_all = true;
                }
                let open: Vec<u32> = pools
                    .iter()
                    .filter(|(g, pool)| {
                        !closed.contains(*g) && pool.listed.as_ref().is_some_and(|l| !l.is_empty())
                    })
                    .map(|(&g, _)| g)
                    .collect();
                if open.is_empty() {
                    break;
                }
                let g = open[rng.random_range(0..open.len())];
                let pool = pools.get_mut(&g).expect("an open group has a pool");
                let member = draw_member(index, &groups[g as usize].members, pool, rules, &mut rng)
                    .expect("an open listed group has a member");
                (g, member)
            }
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
