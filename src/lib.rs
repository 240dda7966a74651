//! peerlog: an embedded, crash-safe, event-sourced database of the peers a p2p node has
//! discovered.
//!
//! It does the job of go-ethereum's discovery node database (node records, last ping and
//! pong, findnode failures, random fresh seeds, expiry of stale nodes, a wipe on a protocol
//! version change) but keeps it as an append-only log of checksummed events in segment files,
//! replayed into an in-memory index on open and compacted in the background.
//!
//! ```
//! use std::time::{Duration, SystemTime};
//! use peerlog::{Node, NodeDb, NodeId};
//!
//! # fn main() -> Result<(), peerlog::Error> {
//! let dir = tempfile::tempdir().unwrap();
//! let me: NodeId = "11".repeat(64).parse()?;
//! let db = NodeDb::open(dir.path(), 5, me)?;
//!
//! let peer: Node = format!("enode://{}@203.0.113.7:30303", "22".repeat(64)).parse()?;
//! db.update_node(&peer)?;
//! db.update_last_pong(&peer.id, SystemTime::now())?;
//! assert_eq!(db.query_seeds(10, Duration::from_secs(3600)), vec![peer.clone()]);
//! db.close()?;
//!
//! // Everything acknowledged is there after a reopen (or a crash of the process).
//! let db = NodeDb::open(dir.path(), 5, me)?;
//! assert_eq!(db.node(&peer.id), Some(peer));
//! # Ok(())
//! # }
//! ```

#![warn(missing_docs)]
#![warn(clippy::undocumented_unsafe_blocks)]

mod compact;
mod db;
mod error;
mod event;
mod faults;
mod group_commit;
mod index;
pub mod inspect;
mod journal;
mod lock;
mod loss;
mod node;
mod options;
mod record;
mod recovery;
mod seeds;
mod snapshot;
mod subnet;
mod survey;
#[cfg(feature = "__internal_testing")]
#[doc(hidden)]
pub mod testing;

/// The `enr` crate peerlog was built with: signed node records (EIP-778).
pub use enr;

pub use compact::CompactStats;
pub use db::{ExpireStats, NodeDb};
pub use error::Error;
pub use event::{storable_times, Event, EventKind, LogRecord};

/// The name [`LogRecord`] had before 0.3, when "record" also meant a signed node record.
#[deprecated(since = "0.3.0", note = "renamed `LogRecord`")]
pub type Record = LogRecord;
pub use index::{IpLiveness, PeerState, MAX_IPS_PER_ID};
pub use journal::dir::ARCHIVE_DIR;
pub use journal::{Damage, DamageKind, DamageState, Recovery};

/// The name [`Damage`] had before 0.3, when what replay found, what the log records and what
/// verification reports were three types.
#[deprecated(since = "0.3.0", note = "renamed `Damage`")]
pub type Problem = Damage;
/// The name [`DamageKind`] had before 0.3.
#[deprecated(since = "0.3.0", note = "renamed `DamageKind`")]
pub type ProblemKind = DamageKind;
pub use node::{log_distance, Node, NodeId, NODE_ID_LEN};
pub use options::{Durability, Options, DEFAULT_MAX_NODES, MIN_SEGMENT_SIZE};
pub use record::{NodeRecord, MAX_RECORD_LEN};
pub use seeds::{SeedQuery, DEFAULT_PER_SUBNET, DEFAULT_SEED_MAX_AGE};
pub use subnet::Subnet;
