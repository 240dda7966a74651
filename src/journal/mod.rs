//! The journal: segment files in the database directory, and replaying them in order.
//!
//! `format` holds the byte layout of headers and frames, `decoded` what a scan decodes them
//! into (the event module's to implement), `reader` scans one segment, `writer`
//! appends, `dir` owns the directory (names, listing, publishing, retiring, wiping),
//! `replay` decides which segments make up the log and replays them while accounting for
//! every sequence number, `damage` is what it reports about a place that is not intact, and
//! `ahead` checks a segment's checksums on a second core while replay decodes, so that the
//! scanner only decodes the frames it has vouched for.

pub(crate) mod ahead;
pub(crate) mod damage;
pub(crate) mod decoded;
pub(crate) mod dir;
pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod replay;
pub(crate) mod writer;

pub use damage::{Damage, DamageKind, DamageState};
pub use replay::{Recovery, ReplaySummary};
