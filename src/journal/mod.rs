//! The journal: segment files in the database directory, and replaying them in order.
//!
//! `format` holds the byte layout of headers and frames, `reader` scans one segment, `writer`
//! appends, `dir` owns the directory (names, listing, publishing, retiring, wiping), and
//! `replay` decides which segments make up the log and replays them while accounting for
//! every sequence number, and `ahead` checks a segment's checksums on a second core while
//! replay decodes, so that the scanner only decodes the frames it has vouched for.

mod ahead;
pub(crate) mod dir;
pub(crate) mod format;
pub(crate) mod reader;
pub(crate) mod replay;
pub(crate) mod writer;

pub use replay::{Problem, ProblemKind, ReplaySummary};
