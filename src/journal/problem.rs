//! What replay (or `inspect::verify`) reports about a place where the log is not intact, and
//! how every report about a place in a segment file reads.

use std::fmt;
use std::path::{Path, PathBuf};

/// What kind of trouble replay (or `inspect::verify`) found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum ProblemKind {
    /// Unreadable bytes inside a segment, followed by intact records.
    Damaged,
    /// Unreadable bytes at the end of the last segment: an append interrupted by a crash.
    TornTail,
    /// Unreadable bytes at the end of a segment that is not the last.
    DamagedTail,
    /// Sequence numbers missing with no damaged bytes to account for them (a lost segment).
    Missing,
    /// Records whose sequence numbers were already replayed (a copied segment).
    Duplicate,
    /// A whole segment from another generation of the database, ignored.
    Stale,
    /// A file named like a segment whose header is damaged or not peerlog's. Replay never
    /// reports it (opening fails instead); `inspect::verify` does.
    BadHeader,
}

impl ProblemKind {
    /// A stable lowercase name: `damaged`, `torn_tail`, `damaged_tail`, `missing`,
    /// `duplicate`, `stale`, `bad_header`.
    pub fn name(self) -> &'static str {
        match self {
            ProblemKind::Damaged => "damaged",
            ProblemKind::TornTail => "torn_tail",
            ProblemKind::DamagedTail => "damaged_tail",
            ProblemKind::Missing => "missing",
            ProblemKind::Duplicate => "duplicate",
            ProblemKind::Stale => "stale",
            ProblemKind::BadHeader => "bad_header",
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            ProblemKind::Damaged => "damaged bytes skipped",
            ProblemKind::TornTail => "torn tail (interrupted append)",
            ProblemKind::DamagedTail => "damaged bytes at the end of a sealed segment",
            ProblemKind::Missing => "records missing",
            ProblemKind::Duplicate => "duplicate records ignored",
            ProblemKind::Stale => "segment of another generation ignored",
            ProblemKind::BadHeader => "unreadable segment header",
        }
    }
}

/// One place where the log is not intact.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// What was found.
    pub kind: ProblemKind,
    /// The segment file.
    pub path: PathBuf,
    /// Offset of the trouble in the file.
    pub offset: u64,
    /// Bytes affected (0 where there are no bytes, as for missing records).
    pub len: u64,
    /// The sequence numbers lost here, first and last, when known.
    pub lost: Option<(u64, u64)>,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_place(
            f,
            &self.path,
            self.offset,
            self.kind.describe(),
            self.len,
            self.lost,
        )
    }
}

/// Writes a report about a place in a segment file, as every such report reads:
/// `<file> at offset <offset>: <what>[ (<len> bytes)][; lost sequence numbers <first>..=<last>]`
/// (the byte count only where bytes are affected; `lost sequence number <n>` for one).
pub(crate) fn write_place(
    f: &mut fmt::Formatter<'_>,
    path: &Path,
    offset: u64,
    what: &str,
    len: u64,
    lost: Option<(u64, u64)>,
) -> fmt::Result {
    write!(f, "{} at offset {offset}: {what}", path.display())?;
    // No byte count where there are no bytes (records missing between segments).
    if len != 0 {
        write!(f, " ({len} bytes)")?;
    }
    match lost {
        Some((first, last)) if first == last => write!(f, "; lost sequence number {first}"),
        Some((first, last)) => write!(f, "; lost sequence numbers {first}..={last}"),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_problem_reads_without_a_byte_count_where_no_bytes_are_affected() {
        let problem = |kind, len, lost| Problem {
            kind,
            path: PathBuf::from("0000000000000002.seg"),
            offset: 64,
            len,
            lost,
        };
        assert_eq!(
            problem(ProblemKind::Missing, 0, Some((5, 9))).to_string(),
            "0000000000000002.seg at offset 64: records missing; lost sequence numbers 5..=9"
        );
        assert_eq!(
            problem(ProblemKind::Damaged, 96, Some((7, 7))).to_string(),
            "0000000000000002.seg at offset 64: damaged bytes skipped (96 bytes); lost sequence \
             number 7"
        );
    }
}
