//! Internals for peerlog's own tests, fuzz targets and benchmarks, behind the hidden feature
//! `__internal_testing`. Not part of the API: no semver promise.

pub use crate::faults::FailPoints;
pub use crate::journal::dir::{list_dir, segment_file_name, DirListing, Listing, SegmentFile};
pub use crate::journal::format::{
    decode_frame, encode_frame, salt_seed, SegmentHeader, FLAG_COMPACTED, FORMAT_VERSION,
    FRAME_HEADER_LEN, HEADER_LEN, MAX_SEGMENT_ID, MAX_SEQ,
};
pub use crate::journal::reader::{ScanEnd, ScanItem, SegmentScanner};
pub use crate::journal::replay::{replay, set_check_ahead_from, RecordPlace, ReplayPlan};
