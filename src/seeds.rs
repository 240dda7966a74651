//! The seed query: seeds a restart can trust, spread over subnets and limited to a network.

use std::sync::Arc;
use std::time::Duration;

use crate::event::min_time;
use crate::index::{Entry, Index, SpreadRules};
use crate::node::{Node, NodeId};
use crate::record::{self, NodeRecord};
use crate::subnet::{DEFAULT_V4_BITS, DEFAULT_V6_BITS};

/// Where a seed query reads from: the database's index, under its lock, with the local
/// node's id (implemented by `NodeDb`, which this module does not import).
pub(crate) trait SeedSource: Sync {
    fn with_index(&self, read: &mut dyn FnMut(&mut Index, &NodeId));
}

/// Default freshness of a seed: a pong at most 5 days old (go-ethereum's `seedMaxAge`).
pub const DEFAULT_SEED_MAX_AGE: Duration = Duration::from_secs(5 * 24 * 3600);
/// Default number of seeds taken from one subnet.
pub const DEFAULT_PER_SUBNET: usize = 2;

type Keep<'db> = Arc<dyn Fn(&NodeRecord) -> bool + Send + Sync + 'db>;

/// A seed query: which of the stored nodes a restart should start from. Made by
/// [`NodeDb::seeds`](crate::NodeDb::seeds) with the defaults below, narrowed by its methods, run by
/// [`SeedQuery::nodes`] or [`SeedQuery::records`].
///
/// A node is eligible when it has a record with an endpoint, is not the local node, and its
/// pong (to no particular IP, or from its record's IP) is at most `max_age` old. Each pick
/// chooses **uniformly among the subnets** that still hold an eligible node not yet picked and
/// have fewer than `per_subnet` picks, then uniformly among that subnet's eligible nodes not
/// yet picked. So a thousand ids on one /24 weigh as much as one honest node on another:
/// whoever brings the most ids does not win the seeds.
///
/// ```
/// use std::time::{Duration, SystemTime};
/// use peerlog::{Node, NodeDb, NodeId};
///
/// # fn main() -> Result<(), peerlog::Error> {
/// let db = NodeDb::in_memory("11".repeat(64).parse()?);
/// // 50 ids on one /24, and one node on another.
/// for i in 0..51u8 {
///     let ip = if i < 50 { format!("203.0.113.{i}") } else { "198.51.100.1".into() };
///     let node: Node = format!("enode://{}@{ip}:30303", format!("{:02x}", i + 0x20).repeat(64)).parse()?;
///     db.update_node(&node)?;
///     db.update_last_pong(&node.id, SystemTime::now())?;
/// }
/// // At most 2 seeds per /24: the lone node is always one of the 3.
/// let seeds = db.seeds().nodes(30);
/// assert_eq!(seeds.len(), 3);
/// assert!(seeds.iter().any(|n| n.ip.to_string() == "198.51.100.1"));
/// // Uniform over nodes instead, as query_seeds:
/// let all = db.seeds().per_subnet(usize::MAX).subnet_bits(0, 0).nodes(100);
/// assert_eq!(all.len(), 51);
/// # Ok(())
/// # }
/// ```
#[derive(Clone)]
pub struct SeedQuery<'db> {
    db: &'db dyn SeedSource,
    max_age: Duration,
    per_subnet: usize,
    v4_bits: u8,
    v6_bits: u8,
    key: Option<Vec<u8>>,
    filter: Option<Keep<'db>>,
}

impl std::fmt::Debug for SeedQuery<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SeedQuery")
            .field("max_age", &self.max_age)
            .field("per_subnet", &self.per_subnet)
            .field("subnet_bits", &(self.v4_bits, self.v6_bits))
            .field("key", &self.key.as_deref().map(String::from_utf8_lossy))
            .field("filter", &self.filter.is_some())
            .finish()
    }
}

impl<'db> SeedQuery<'db> {
    pub(crate) fn new(db: &'db dyn SeedSource) -> SeedQuery<'db> {
        SeedQuery {
            db,
            max_age: DEFAULT_SEED_MAX_AGE,
            per_subnet: DEFAULT_PER_SUBNET,
            v4_bits: DEFAULT_V4_BITS,
            v6_bits: DEFAULT_V6_BITS,
            key: None,
            filter: None,
        }
    }

    /// Oldest pong a seed may have. Default: 5 days.
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }

    /// Most seeds from one subnet. Default: 2; `usize::MAX` for no limit.
    pub fn per_subnet(mut self, limit: usize) -> Self {
        self.per_subnet = limit;
        self
    }

    /// Prefix lengths of a subnet: `v4` bits for IPv4 (and IPv4-mapped IPv6) addresses, `v6`
    /// for IPv6. Default: /24 and /48. Longer prefixes than the address are cut to it; 0 puts
    /// every address of that family in one subnet, and `(0, 0)` every node in one.
    pub fn subnet_bits(mut self, v4: u8, v6: u8) -> Self {
        self.v4_bits = v4.min(32);
        self.v6_bits = v6.min(128);
        self
    }

    /// Only nodes whose signed record holds `key` (an ENR key such as `"eth2"` or
    /// `"opstack"`): the network filter. Nodes without a signed record are left out.
    pub fn with_key(mut self, key: impl AsRef<[u8]>) -> Self {
        self.key = Some(key.as_ref().to_vec());
        self
    }

    /// Only nodes whose signed record `keep` accepts. `keep` sees the stored record (its
    /// signature was verified when it was written, not again). Nodes without a signed record
    /// are left out. A second `filter` replaces the first.
    pub fn filter(mut self, keep: impl Fn(&NodeRecord) -> bool + Send + Sync + 'db) -> Self {
        self.filter = Some(Arc::new(keep));
        self
    }

    /// Up to `n` distinct seeds spread as the type's documentation says: min(n, the sum over
    /// subnets of min(`per_subnet`, eligible in it)).
    pub fn nodes(&self, n: usize) -> Vec<Node> {
        self.run(n, false, |index, entry| index.node(entry))
    }

    /// As [`SeedQuery::nodes`], among nodes with a signed record only, returned as records
    /// of key type `K` (`enr::CombinedKey` for discv5). Decoding verifies each signature.
    pub fn records<K: enr::EnrKey>(&self, n: usize) -> Vec<enr::Enr<K>> {
        let rlps = self.run(n, true, |index, entry| {
            index.record_rlp(entry).map(<[u8]>::to_vec)
        });
        rlps.iter()
            .filter_map(|rlp| record::decode_enr(rlp).ok())
            .collect()
    }

    fn run<T>(
        &self,
        n: usize,
        signed_only: bool,
        take: impl Fn(&Index, &Entry) -> Option<T>,
    ) -> Vec<T> {
        let signed_only = signed_only || self.key.is_some() || self.filter.is_some();
        let min_pong = min_time(self.max_age);
        let mut picked = Vec::new();
        self.db.with_index(&mut |index, self_id| {
            let eligible = |index: &Index, entry: &Entry| {
                index.is_seed(entry, min_pong, self_id)
                    && (!signed_only || self.record_passes(index, entry))
            };
            let rules = SpreadRules {
                per_subnet: self.per_subnet,
                v4_bits: self.v4_bits,
                v6_bits: self.v6_bits,
                eligible: &eligible,
            };
            picked = index
                .sample_spread(n, &rules)
                .into_iter()
                .filter_map(|i| take(index, &index.entries()[i]))
                .collect();
        });
        picked
    }

    /// Whether the entry has a signed record that the key and filter accept.
    fn record_passes(&self, index: &Index, entry: &Entry) -> bool {
        let Some(rlp) = index.record_rlp(entry) else {
            return false;
        };
        if let Some(key) = &self.key {
            if record::raw_value(rlp, key).is_none() {
                return false;
            }
        }
        match &self.filter {
            Some(keep) => index.record(entry).is_some_and(|r| keep(&r)),
            None => true,
        }
    }
}
