//! A damaged place of the log: what replay finds, what the log records about itself (a loss,
//! event kind 13) and what verification reports are one [`Damage`], in one of three states,
//! and read the same way wherever they are printed.

use std::fmt;
use std::path::PathBuf;
use std::time::SystemTime;

/// What kind of damage was found.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
#[non_exhaustive]
pub enum DamageKind {
    /// Unreadable bytes inside a segment, followed by intact records.
    Damaged,
    /// Unreadable bytes at the end of the last segment: an append interrupted by a crash (or,
    /// to a reader beside a live writer, one in progress).
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

impl DamageKind {
    /// A stable lowercase name: `damaged`, `torn_tail`, `damaged_tail`, `missing`,
    /// `duplicate`, `stale`, `bad_header`.
    pub fn name(self) -> &'static str {
        match self {
            DamageKind::Damaged => "damaged",
            DamageKind::TornTail => "torn_tail",
            DamageKind::DamagedTail => "damaged_tail",
            DamageKind::Missing => "missing",
            DamageKind::Duplicate => "duplicate",
            DamageKind::Stale => "stale",
            DamageKind::BadHeader => "bad_header",
        }
    }

    /// What it is, in words.
    pub fn describe(self) -> &'static str {
        match self {
            DamageKind::Damaged => "damaged bytes skipped",
            DamageKind::TornTail => "torn tail (interrupted or ongoing append)",
            DamageKind::DamagedTail => "damaged bytes at the end of a sealed segment",
            DamageKind::Missing => "records missing",
            DamageKind::Duplicate => "duplicate records ignored",
            DamageKind::Stale => "segment of another generation ignored",
            DamageKind::BadHeader => "unreadable segment header",
        }
    }

    /// Whether damage of this kind loses records, so that the log records it (as a loss) when
    /// a compaction rewrites its place away: not a duplicate or a stale segment, which lose
    /// nothing, nor a torn tail, the normal trace of an append a crash interrupted (never
    /// acknowledged as written).
    pub fn is_loss(self) -> bool {
        matches!(
            self,
            DamageKind::Damaged
                | DamageKind::DamagedTail
                | DamageKind::Missing
                | DamageKind::BadHeader
        )
    }
}

/// Where a damaged place stands: only found in the files, recorded in the log as a loss (so
/// that it outlives compaction), or acknowledged by an operator.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DamageState {
    /// Found by reading the files; the log does not record it.
    Found,
    /// The log records it as a loss.
    Recorded {
        /// When the log first recorded it.
        at: SystemTime,
    },
    /// The log records it, and an operator acknowledged it
    /// ([`NodeDb::accept_damage`](crate::NodeDb::accept_damage)): listed, but no longer counted
    /// as damage.
    Acknowledged {
        /// When the log first recorded it (an acknowledgement keeps that time).
        at: SystemTime,
    },
}

impl DamageState {
    /// When the log first recorded the damage; `None` while it is only found.
    pub fn recorded_at(self) -> Option<SystemTime> {
        match self {
            DamageState::Found => None,
            DamageState::Recorded { at } | DamageState::Acknowledged { at } => Some(at),
        }
    }
}

/// One place where the log is not intact.
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
/// // A healthy database: opening found nothing, and the log records no loss.
/// assert!(db.recovery().problems.is_empty());
/// assert!(db.losses().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// What was found.
    pub kind: DamageKind,
    /// The segment file. For damage read back from the log (a loss), the file's name only:
    /// the log stores the segment's number, and the file may be in the database directory,
    /// in `archive/`, or gone.
    pub path: PathBuf,
    /// Offset of the damage in the file.
    pub offset: u64,
    /// Bytes affected (0 where there are none, as for missing records).
    pub len: u64,
    /// The sequence numbers lost here, first and last, when known.
    pub lost: Option<(u64, u64)>,
    /// Why the file's header cannot be read (`header checksum mismatch`), for a
    /// [`DamageKind::BadHeader`] verification found; `None` otherwise (the log does not store
    /// it).
    pub reason: Option<String>,
    /// Found, recorded or acknowledged.
    pub state: DamageState,
}

impl Damage {
    /// Damage found in `path`, with no reason beyond its kind.
    pub(crate) fn found(
        kind: DamageKind,
        path: impl Into<PathBuf>,
        offset: u64,
        len: u64,
        lost: Option<(u64, u64)>,
    ) -> Damage {
        Damage {
            kind,
            path: path.into(),
            offset,
            len,
            lost,
            reason: None,
            state: DamageState::Found,
        }
    }

    /// Whether an operator acknowledged it.
    pub fn is_acknowledged(&self) -> bool {
        matches!(self.state, DamageState::Acknowledged { .. })
    }

    /// Whether it counts as damage: everything not acknowledged but a torn tail (the normal
    /// trace of a crash, or of an append in progress in a live database), which counts only
    /// when `strict`.
    pub fn counts(&self, strict: bool) -> bool {
        !self.is_acknowledged() && (strict || self.kind != DamageKind::TornTail)
    }
}

/// How every report about a damaged place reads:
/// `<file> at offset <offset>: <what>[ (<len> bytes)][; lost sequence numbers <first>..=<last>][ (acknowledged)]`
/// (the byte count only where bytes are affected; `lost sequence number <n>` for one); an
/// unreadable header reads `<file>: unreadable segment header[: <reason>]`. The alternate
/// form (`{:#}`) leaves out ` (acknowledged)`, for a caller that shows the state otherwise.
impl fmt::Display for Damage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (file, what) = (self.path.display(), self.kind.describe());
        match (&self.kind, &self.reason) {
            // The offset and length of a header say nothing its reason does not.
            (DamageKind::BadHeader, Some(reason)) => write!(f, "{file}: {what}: {reason}")?,
            (DamageKind::BadHeader, None) => write!(f, "{file}: {what}")?,
            _ => write!(f, "{file} at offset {}: {what}", self.offset)?,
        }
        // No byte count where there are no bytes (records missing between segments).
        match self.len {
            _ if self.kind == DamageKind::BadHeader => {}
            0 => {}
            1 => f.write_str(" (1 byte)")?,
            len => write!(f, " ({len} bytes)")?,
        }
        match self.lost {
            Some((first, last)) if first == last => write!(f, "; lost sequence number {first}")?,
            Some((first, last)) => write!(f, "; lost sequence numbers {first}..={last}")?,
            None => {}
        }
        if self.is_acknowledged() && !f.alternate() {
            f.write_str(" (acknowledged)")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn damage(kind: DamageKind, len: u64, lost: Option<(u64, u64)>) -> Damage {
        Damage::found(kind, "0000000000000002.seg", 64, len, lost)
    }

    #[test]
    fn damage_reads_without_a_byte_count_where_no_bytes_are_affected() {
        assert_eq!(
            damage(DamageKind::Missing, 0, Some((5, 9))).to_string(),
            "0000000000000002.seg at offset 64: records missing; lost sequence numbers 5..=9"
        );
        assert_eq!(
            damage(DamageKind::Damaged, 96, Some((7, 7))).to_string(),
            "0000000000000002.seg at offset 64: damaged bytes skipped (96 bytes); lost sequence \
             number 7"
        );
        assert_eq!(
            damage(DamageKind::DamagedTail, 1, None).to_string(),
            "0000000000000002.seg at offset 64: damaged bytes at the end of a sealed segment \
             (1 byte)"
        );
    }

    #[test]
    fn an_unreadable_header_reads_with_its_reason_and_no_offset() {
        let mut header = damage(DamageKind::BadHeader, 40, None);
        assert_eq!(
            header.to_string(),
            "0000000000000002.seg: unreadable segment header"
        );
        header.reason = Some("header is 40 bytes, expected 64".into());
        assert_eq!(
            header.to_string(),
            "0000000000000002.seg: unreadable segment header: header is 40 bytes, expected 64"
        );
    }

    #[test]
    fn only_an_acknowledgement_shows_and_only_outside_the_alternate_form() {
        let at = SystemTime::UNIX_EPOCH;
        let mut missing = damage(DamageKind::Missing, 0, Some((5, 9)));
        let plain = missing.to_string();
        missing.state = DamageState::Recorded { at };
        assert_eq!(missing.to_string(), plain);
        missing.state = DamageState::Acknowledged { at };
        assert_eq!(missing.to_string(), format!("{plain} (acknowledged)"));
        assert_eq!(format!("{missing:#}"), plain);
    }

    #[test]
    fn what_counts_as_damage() {
        let at = SystemTime::UNIX_EPOCH;
        let torn = damage(DamageKind::TornTail, 10, None);
        assert!(!torn.counts(false) && torn.counts(true));
        let mut missing = damage(DamageKind::Missing, 0, None);
        assert!(missing.counts(false));
        missing.state = DamageState::Recorded { at };
        assert!(missing.counts(false));
        missing.state = DamageState::Acknowledged { at };
        assert!(!missing.counts(false) && !missing.counts(true));
        assert_eq!(missing.state.recorded_at(), Some(at));
        assert_eq!(DamageState::Found.recorded_at(), None);
    }

    #[test]
    fn only_damage_that_loses_records_is_a_loss() {
        use DamageKind::*;
        for (kind, loss) in [
            (Damaged, true),
            (DamagedTail, true),
            (Missing, true),
            (BadHeader, true),
            (TornTail, false),
            (Duplicate, false),
            (Stale, false),
        ] {
            assert_eq!(kind.is_loss(), loss, "{kind:?}");
        }
    }
}
