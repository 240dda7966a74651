//! Internals for peerlog's own tests, fuzz targets and benchmarks, behind the hidden feature
//! `__internal_testing`. Not part of the API: no semver promise. The fuzz harness
//! (`peerlog-checks`, in `checks/`) reaches the library's internals through this module only.

use enr::{Enr, EnrKey};

use crate::{Error, NodeRecord};

pub use crate::faults::FailPoints;
pub use crate::journal::dir::{list_dir, segment_file_name, DirListing, Listing, SegmentFile};
pub use crate::journal::dir::{parse_segment_name, LOCK_FILE};
pub use crate::journal::format::{align, FRAME_ALIGN, MAGIC};
pub use crate::journal::format::{
    decode_frame, encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, FORMAT_VERSION,
    FRAME_HEADER_LEN, HEADER_LEN, MAX_SEGMENT_ID, MAX_SEQ,
};
pub use crate::journal::reader::ScanEnd;
pub use crate::journal::replay::{set_check_ahead_from, RecordPlace, ReplayPlan};

use crate::event::LogRecord;
use crate::journal::ReplaySummary;

/// What a scan of a segment finds, its records decoded as [`LogRecord`]s by default.
pub type ScanItem<T = LogRecord> = crate::journal::reader::ScanItem<T>;

/// A scan of one segment, decoding [`LogRecord`]s.
pub type SegmentScanner<'a> = crate::journal::reader::SegmentScanner<'a, LogRecord>;

/// The journal's replay of a log, decoding every record as a [`LogRecord`].
pub fn replay(
    plan: &ReplayPlan,
    on_record: impl FnMut(RecordPlace<'_>, LogRecord),
) -> Result<ReplaySummary, Error> {
    crate::journal::replay::replay(plan, on_record)
}

/// The shortest payload a frame holds.
pub const MIN_PAYLOAD_LEN: usize = crate::journal::format::MIN_PAYLOAD_LEN;
/// The longest payload a frame holds.
pub const MAX_PAYLOAD_LEN: usize = crate::journal::format::MAX_PAYLOAD_LEN;

/// The stored form of a signed record (what `Event::Record` and `PeerState::record` hold), as
/// `update_record` makes it: checked to be storable, and its signature verified.
pub fn node_record<K: EnrKey>(record: &Enr<K>) -> Result<NodeRecord, Error> {
    NodeRecord::unverified(record)?.verified(record)
}

/// Decodes a frame's payload of the given kind into its write time (nanoseconds since the
/// epoch) and event, as replay does; `None` for anything malformed.
pub fn decode_payload(kind: u8, payload: &[u8]) -> Option<(i64, crate::Event)> {
    crate::Event::decode_payload(kind, payload)
}

/// Bytes of the records in `db`'s log as the database counts them: what its automatic
/// compaction weighs the index's live bytes against.
pub fn log_bytes(db: &crate::NodeDb) -> u64 {
    db.log_bytes()
}
