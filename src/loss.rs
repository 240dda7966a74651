//! Losses: damage the log recorded about itself, so that it stays visible after compaction
//! rewrites the damaged place away.
//!
//! A compaction replays the sealed segments and writes their live state anew: a missing
//! segment or a damaged stretch among them leaves no trace in its output. So each damaged
//! place it finds becomes a [`Loss`] event in the compacted segment (the damaged file itself
//! goes to `archive/`), and every later compaction carries the losses it reads over. An
//! operator who has looked at a loss acknowledges it ([`NodeDb::accept_damage`]): the same
//! loss is written again, flagged acknowledged, and verification stops counting it as damage
//! while still listing it.
//!
//! [`NodeDb::accept_damage`]: crate::NodeDb::accept_damage

use std::fmt;
use std::path::Path;

use crate::journal::dir::segment_file_name;
use crate::journal::problem::{write_place, Problem, ProblemKind};

/// Bytes of a loss after the `written_at` field of its payload: kind, flags, segment, offset,
/// length, first and last lost sequence number.
pub(crate) const LOSS_BODY_LEN: usize = 1 + 1 + 5 * 8;
/// Flag bit: the loss was acknowledged.
const ACKNOWLEDGED: u8 = 1;

/// A damaged place of the log, as the log records it (an event of kind 13: see
/// docs/FORMAT.md).
///
/// ```
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// # let dir = tempfile::tempdir()?;
/// let db = peerlog::NodeDb::open(dir.path(), 5, "11".repeat(64).parse()?)?;
/// // A healthy database has lost nothing.
/// assert!(db.losses().is_empty());
/// # Ok(())
/// # }
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Loss {
    /// What was found.
    pub kind: ProblemKind,
    /// The number of the segment file it was found in (its file name,
    /// `<segment_id, 16 digits>.seg`, in the database directory or, once compacted away,
    /// in `archive/`).
    pub segment_id: u64,
    /// Offset of the damage in that file.
    pub offset: u64,
    /// Bytes affected (0 where there are none, as for a missing segment).
    pub len: u64,
    /// The sequence numbers lost, first and last, when known.
    pub lost: Option<(u64, u64)>,
    /// An operator acknowledged it: verification lists it but no longer counts it as damage.
    pub acknowledged: bool,
}

impl Loss {
    /// The loss a problem amounts to, if it is one: damaged or missing records, in a file
    /// named like a segment. Not a duplicate or a stale segment, which lose nothing, nor a torn
    /// tail, the normal trace of an append a crash interrupted (never acknowledged as written).
    pub fn from_problem(problem: &Problem) -> Option<Loss> {
        let kind = match problem.kind {
            ProblemKind::Damaged
            | ProblemKind::DamagedTail
            | ProblemKind::Missing
            | ProblemKind::BadHeader => problem.kind,
            _ => return None,
        };
        Some(Loss {
            kind,
            segment_id: segment_id_of(&problem.path)?,
            offset: problem.offset,
            len: problem.len,
            lost: problem.lost,
            acknowledged: false,
        })
    }

    /// Whether `other` records the same loss, acknowledged or not: the same damage (kind,
    /// file, offset, bytes) losing the same sequence numbers. Damage that grew at the same
    /// place since (more bytes, a wider range lost) is another loss: an acknowledgement of
    /// the first does not cover it.
    pub fn same_loss(&self, other: &Loss) -> bool {
        self.place() == other.place() && self.lost == other.lost
    }

    /// Takes in a later record of `other` if it is the same loss (its acknowledgement), and
    /// says whether it was: how every reader keeps each loss once.
    pub(crate) fn absorb(&mut self, other: &Loss) -> bool {
        let same = self.same_loss(other);
        if same {
            self.acknowledged |= other.acknowledged;
        }
        same
    }

    /// Whether this loss accounts for `found`, damage seen in a file on its own, which may
    /// not know what sequence numbers it lost (a damaged segment in `archive/`, read alone).
    pub(crate) fn accounts_for(&self, found: &Loss) -> bool {
        self.place() == found.place() && found.lost.is_none_or(|lost| self.lost == Some(lost))
    }

    fn place(&self) -> (ProblemKind, u64, u64, u64) {
        (self.kind, self.segment_id, self.offset, self.len)
    }

    /// Whether its fields can be stored: a lost range is `0 < first <= last`.
    pub(crate) fn is_storable(&self) -> bool {
        self.lost
            .is_none_or(|(first, last)| first != 0 && first <= last)
    }

    /// The file name it was found in.
    pub fn file_name(&self) -> String {
        segment_file_name(self.segment_id)
    }

    /// Appends the payload body (after `written_at`).
    pub(crate) fn encode(&self, out: &mut Vec<u8>) {
        out.push(kind_code(self.kind));
        out.push(if self.acknowledged { ACKNOWLEDGED } else { 0 });
        let (first, last) = self.lost.unwrap_or((0, 0));
        for n in [self.segment_id, self.offset, self.len, first, last] {
            out.extend_from_slice(&n.to_le_bytes());
        }
    }

    /// Decodes a payload body; `None` for anything malformed (an unknown kind or flag, a lost
    /// range that is not one).
    pub(crate) fn decode(body: &[u8]) -> Option<Loss> {
        let body: &[u8; LOSS_BODY_LEN] = body.try_into().ok()?;
        let kind = kind_from_code(body[0])?;
        let acknowledged = match body[1] {
            0 => false,
            ACKNOWLEDGED => true,
            _ => return None,
        };
        let n = |i: usize| u64::from_le_bytes(body[2 + 8 * i..10 + 8 * i].try_into().unwrap());
        let lost = match (n(3), n(4)) {
            (0, 0) => None,
            (first, last) if first != 0 && first <= last => Some((first, last)),
            _ => return None,
        };
        Some(Loss {
            kind,
            segment_id: n(0),
            offset: n(1),
            len: n(2),
            lost,
            acknowledged,
        })
    }
}

impl fmt::Display for Loss {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = self.file_name();
        write_place(
            f,
            Path::new(&file),
            self.offset,
            self.kind.describe(),
            self.len,
            self.lost,
        )?;
        if self.acknowledged {
            f.write_str(" (acknowledged)")?;
        }
        Ok(())
    }
}

/// The segment number in a segment file's name.
pub(crate) fn segment_id_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    crate::journal::dir::parse_archived_segment_name(name)
}

/// The byte a problem kind is stored as (docs/FORMAT.md, kind 13).
fn kind_code(kind: ProblemKind) -> u8 {
    match kind {
        ProblemKind::Damaged => 1,
        ProblemKind::TornTail => 2,
        ProblemKind::DamagedTail => 3,
        ProblemKind::Missing => 4,
        ProblemKind::BadHeader => 7,
        // Not losses (see `Loss::from_problem`); never stored.
        ProblemKind::Duplicate => 5,
        ProblemKind::Stale => 6,
    }
}

fn kind_from_code(code: u8) -> Option<ProblemKind> {
    Some(match code {
        1 => ProblemKind::Damaged,
        // 2, a torn tail, is never written: no loss (see `Loss::from_problem`).
        3 => ProblemKind::DamagedTail,
        4 => ProblemKind::Missing,
        7 => ProblemKind::BadHeader,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(lost: Option<(u64, u64)>, acknowledged: bool) -> Loss {
        Loss {
            kind: ProblemKind::DamagedTail,
            segment_id: 3,
            offset: 4096,
            len: 62,
            lost,
            acknowledged,
        }
    }

    #[test]
    fn a_loss_survives_its_encoding() {
        let kinds = [
            ProblemKind::Damaged,
            ProblemKind::DamagedTail,
            ProblemKind::Missing,
            ProblemKind::BadHeader,
        ];
        for kind in kinds {
            for l in [
                loss(Some((5, 9)), false),
                loss(None, true),
                loss(Some((7, 7)), true),
            ] {
                let l = Loss { kind, ..l };
                let mut bytes = Vec::new();
                l.encode(&mut bytes);
                assert_eq!(bytes.len(), LOSS_BODY_LEN);
                assert_eq!(Loss::decode(&bytes), Some(l));
            }
        }
    }

    #[test]
    fn only_losses_of_records_are_losses() {
        let problem = |kind| Problem {
            kind,
            path: "db/0000000000000003.seg".into(),
            offset: 64,
            len: 0,
            lost: Some((4, 6)),
        };
        for kind in [
            ProblemKind::TornTail,
            ProblemKind::Duplicate,
            ProblemKind::Stale,
        ] {
            assert_eq!(Loss::from_problem(&problem(kind)), None, "{kind:?}");
        }
        let missing = Loss::from_problem(&problem(ProblemKind::Missing)).unwrap();
        assert_eq!((missing.segment_id, missing.lost), (3, Some((4, 6))));
        let stray = Problem {
            path: "db/notes.txt".into(),
            ..problem(ProblemKind::Damaged)
        };
        assert_eq!(Loss::from_problem(&stray), None);
    }

    #[test]
    fn a_loss_with_an_impossible_range_is_refused_on_write() {
        for (lost, storable) in [
            (None, true),
            (Some((1, 1)), true),
            (Some((5, 9)), true),
            (Some((0, 9)), false),
            (Some((9, 5)), false),
        ] {
            let l = loss(lost, false);
            assert_eq!(l.is_storable(), storable, "{lost:?}");
            let event = crate::Event::Loss(l);
            assert_eq!(
                crate::event::StoredEvent::from_event(&event).is_ok(),
                storable,
                "{lost:?}"
            );
        }
    }

    #[test]
    fn same_loss_and_accounts_for_compare_the_right_fields() {
        let a = loss(Some((5, 9)), false);
        assert!(a.same_loss(&Loss {
            acknowledged: true,
            ..a
        }));
        for other in [
            Loss { len: 63, ..a },
            Loss { offset: 0, ..a },
            Loss { segment_id: 4, ..a },
            Loss {
                kind: ProblemKind::Damaged,
                ..a
            },
            Loss {
                lost: Some((4, 9)),
                ..a
            },
        ] {
            assert!(!a.same_loss(&other), "{other:?}");
        }
        // Found in a file on its own, without its lost range: accounted for by the record.
        assert!(a.accounts_for(&Loss { lost: None, ..a }));
        assert!(a.accounts_for(&a));
        assert!(!a.accounts_for(&Loss {
            lost: Some((4, 9)),
            ..a
        }));
        assert!(!a.accounts_for(&Loss {
            len: 63,
            lost: None,
            ..a
        }));
    }

    #[test]
    fn a_malformed_loss_is_refused() {
        let mut good = Vec::new();
        loss(Some((5, 9)), false).encode(&mut good);
        let with = |i: usize, b: u8| {
            let mut bytes = good.clone();
            bytes[i] = b;
            Loss::decode(&bytes)
        };
        assert_eq!(with(0, 5), None, "a duplicate is no loss");
        assert_eq!(with(0, 0), None);
        assert_eq!(with(1, 2), None, "unknown flag");
        // Lost range 5..=9 becomes 10..=9.
        assert_eq!(with(26, 10), None);
        // And 0..=9.
        assert_eq!(with(26, 0), None);
        assert_eq!(Loss::decode(&good[1..]), None);
    }

    #[test]
    fn a_loss_reads_as_a_problem_report() {
        assert_eq!(
            loss(Some((5, 9)), true).to_string(),
            "0000000000000003.seg at offset 4096: damaged bytes at the end of a sealed segment \
             (62 bytes); lost sequence numbers 5..=9 (acknowledged)"
        );
    }
}
