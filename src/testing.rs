//! Internals for peerlog's own tests, fuzz targets and benchmarks, behind the hidden feature
//! `__internal_testing`. Not part of the API: no semver promise.

pub use crate::faults::FailPoints;
pub use crate::journal::dir::{list_dir, segment_file_name, DirListing, Listing, SegmentFile};
pub use crate::journal::format::{
    decode_frame, encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, FORMAT_VERSION,
    FRAME_HEADER_LEN, HEADER_LEN, MAX_SEGMENT_ID, MAX_SEQ,
};
pub use crate::journal::reader::ScanEnd;
pub use crate::journal::replay::{set_check_ahead_from, RecordPlace, ReplayPlan};

use crate::event::Record;
use crate::journal::ReplaySummary;
use crate::Error;

/// What a scan of a segment finds, its records decoded as [`Record`]s by default.
pub type ScanItem<T = Record> = crate::journal::reader::ScanItem<T>;

/// A scan of one segment, decoding [`Record`]s.
pub type SegmentScanner<'a> = crate::journal::reader::SegmentScanner<'a, Record>;

/// The journal's replay of a log, decoding every record as a [`Record`].
pub fn replay(
    plan: &ReplayPlan,
    on_record: impl FnMut(RecordPlace<'_>, Record),
) -> Result<ReplaySummary, Error> {
    crate::journal::replay::replay(plan, on_record)
}
