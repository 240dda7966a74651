//! Losses: damage the log recorded about itself, so that it stays visible after compaction
//! rewrites the damaged place away.
//!
//! A compaction replays the sealed segments and writes their live state anew: a missing
//! segment or a damaged stretch among them leaves no trace in its output. So each damaged
//! place it finds becomes a loss event in the log (the damaged file itself goes to
//! `archive/`), and every later compaction carries the losses it reads over. An operator who
//! has looked at a loss acknowledges it (`NodeDb::accept_damage`): the same loss is written
//! again, flagged acknowledged, and verification stops counting it as damage while still
//! listing it.
//!
//! [`Loss`] is the stored form of a [`Damage`] (kind 13, docs/FORMAT.md): the segment's
//! number instead of its path, a flag instead of a state. It stays inside the crate; what
//! the API hands out is always a `Damage`.

use std::path::Path;
use std::time::SystemTime;

use crate::journal::damage::{Damage, DamageKind, DamageState};
use crate::journal::dir::segment_file_name;

/// Bytes of a loss after the `written_at` field of its payload: kind, flags, segment, offset,
/// length, first and last lost sequence number.
pub(crate) const LOSS_BODY_LEN: usize = 1 + 1 + 5 * 8;
/// Flag bit: the loss was acknowledged.
const ACKNOWLEDGED: u8 = 1;

/// A damaged place of the log, as the log records it (an event of kind 13: see
/// docs/FORMAT.md).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Loss {
    /// What was found.
    pub(crate) kind: DamageKind,
    /// The number of the segment file it was found in (its file name,
    /// `<segment_id, 16 digits>.seg`, in the database directory or, once compacted away,
    /// in `archive/`).
    pub(crate) segment_id: u64,
    /// Offset of the damage in that file.
    pub(crate) offset: u64,
    /// Bytes affected (0 where there are none, as for a missing segment).
    pub(crate) len: u64,
    /// The sequence numbers lost, first and last, when known.
    pub(crate) lost: Option<(u64, u64)>,
    /// An operator acknowledged it: verification lists it but no longer counts it as damage.
    pub(crate) acknowledged: bool,
}

impl Loss {
    /// The loss `damage` amounts to, if it is one ([`DamageKind::is_loss`]) in a file named
    /// like a segment, acknowledged if it is.
    pub(crate) fn of(damage: &Damage) -> Option<Loss> {
        if !damage.kind.is_loss() {
            return None;
        }
        Some(Loss {
            kind: damage.kind,
            segment_id: segment_id_of(&damage.path)?,
            offset: damage.offset,
            len: damage.len,
            lost: damage.lost,
            acknowledged: damage.is_acknowledged(),
        })
    }

    /// The damage the log records with this loss, first recorded `at`; its path is the
    /// segment's file name.
    pub(crate) fn damage(&self, at: SystemTime) -> Damage {
        let state = if self.acknowledged {
            DamageState::Acknowledged { at }
        } else {
            DamageState::Recorded { at }
        };
        Damage {
            state,
            ..Damage::found(
                self.kind,
                self.file_name(),
                self.offset,
                self.len,
                self.lost,
            )
        }
    }

    /// Whether `other` records the same loss, acknowledged or not: the same damage (kind,
    /// file, offset, bytes) losing the same sequence numbers. Damage that grew at the same
    /// place since (more bytes, a wider range lost) is another loss: an acknowledgement of
    /// the first does not cover it.
    pub(crate) fn same_loss(&self, other: &Loss) -> bool {
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

    /// [`Loss::absorb`] for damage the log records: takes into `known` a later record of
    /// `other` if it records the same loss, keeping when `known` was first recorded.
    pub(crate) fn absorb_into(known: &mut Damage, other: &Damage) -> bool {
        let (Some(mut loss), Some(other), Some(at)) =
            (Loss::of(known), Loss::of(other), known.state.recorded_at())
        else {
            return false;
        };
        let same = loss.absorb(&other);
        if same {
            known.state = loss.damage(at).state;
        }
        same
    }

    /// Whether this loss accounts for `found`, damage seen in a file on its own, which may
    /// not know what sequence numbers it lost (a damaged segment in `archive/`, read alone).
    pub(crate) fn accounts_for(&self, found: &Loss) -> bool {
        self.place() == found.place() && found.lost.is_none_or(|lost| self.lost == Some(lost))
    }

    fn place(&self) -> (DamageKind, u64, u64, u64) {
        (self.kind, self.segment_id, self.offset, self.len)
    }

    /// Whether its fields can be stored: a lost range is `0 < first <= last`.
    pub(crate) fn is_storable(&self) -> bool {
        self.lost
            .is_none_or(|(first, last)| first != 0 && first <= last)
    }

    /// The file name it was found in.
    pub(crate) fn file_name(&self) -> String {
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

/// The segment number in a segment file's name.
pub(crate) fn segment_id_of(path: &Path) -> Option<u64> {
    let name = path.file_name()?.to_str()?;
    crate::journal::dir::parse_archived_segment_name(name)
}

/// The byte a problem kind is stored as (docs/FORMAT.md, kind 13).
fn kind_code(kind: DamageKind) -> u8 {
    match kind {
        DamageKind::Damaged => 1,
        DamageKind::TornTail => 2,
        DamageKind::DamagedTail => 3,
        DamageKind::Missing => 4,
        DamageKind::BadHeader => 7,
        // Not losses (see `DamageKind::is_loss`); never stored.
        DamageKind::Duplicate => 5,
        DamageKind::Stale => 6,
    }
}

fn kind_from_code(code: u8) -> Option<DamageKind> {
    Some(match code {
        1 => DamageKind::Damaged,
        // 2, a torn tail, is never written: no loss (see `DamageKind::is_loss`).
        3 => DamageKind::DamagedTail,
        4 => DamageKind::Missing,
        7 => DamageKind::BadHeader,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn loss(lost: Option<(u64, u64)>, acknowledged: bool) -> Loss {
        Loss {
            kind: DamageKind::DamagedTail,
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
            DamageKind::Damaged,
            DamageKind::DamagedTail,
            DamageKind::Missing,
            DamageKind::BadHeader,
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
        let problem = |kind| Damage::found(kind, "db/0000000000000003.seg", 64, 0, Some((4, 6)));
        for kind in [
            DamageKind::TornTail,
            DamageKind::Duplicate,
            DamageKind::Stale,
        ] {
            assert_eq!(Loss::of(&problem(kind)), None, "{kind:?}");
        }
        let missing = Loss::of(&problem(DamageKind::Missing)).unwrap();
        assert_eq!((missing.segment_id, missing.lost), (3, Some((4, 6))));
        let stray = Damage {
            path: "db/notes.txt".into(),
            ..problem(DamageKind::Damaged)
        };
        assert_eq!(Loss::of(&stray), None);
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
            let event = crate::Event::Loss(l.damage(SystemTime::UNIX_EPOCH));
            assert_eq!(
                crate::event::StoredEvent::from_event(&event).is_ok(),
                storable,
                "{lost:?}"
            );
        }
    }

    #[test]
    fn only_a_loss_in_a_segment_file_can_be_written() {
        let write = |kind, path: &str| {
            let damage = Damage::found(kind, path, 64, 10, Some((1, 1)));
            crate::event::StoredEvent::from_event(&crate::Event::Loss(damage)).is_ok()
        };
        assert!(write(DamageKind::Damaged, "db/0000000000000003.seg"));
        assert!(!write(DamageKind::TornTail, "db/0000000000000003.seg"));
        assert!(!write(DamageKind::Duplicate, "db/0000000000000003.seg"));
        assert!(!write(DamageKind::Damaged, "db/notes.txt"));
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
                kind: DamageKind::Damaged,
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
    fn a_loss_is_the_damage_it_records_and_back() {
        let at = SystemTime::UNIX_EPOCH;
        let acknowledged = loss(Some((5, 9)), true);
        let damage = acknowledged.damage(at);
        assert_eq!(damage.state, DamageState::Acknowledged { at });
        assert_eq!(
            damage.to_string(),
            "0000000000000003.seg at offset 4096: damaged bytes at the end of a sealed segment \
             (62 bytes); lost sequence numbers 5..=9 (acknowledged)"
        );
        assert_eq!(Loss::of(&damage), Some(acknowledged));
        let recorded = loss(None, false);
        assert_eq!(recorded.damage(at).state, DamageState::Recorded { at });
        assert_eq!(Loss::of(&recorded.damage(at)), Some(recorded));
        // Archived under a suffix, it is still the loss of its segment.
        let suffixed = Damage {
            path: "archive/0000000000000003.seg.1".into(),
            ..recorded.damage(at)
        };
        assert_eq!(Loss::of(&suffixed), Some(recorded));
        let torn = Damage {
            kind: DamageKind::TornTail,
            ..recorded.damage(at)
        };
        assert_eq!(Loss::of(&torn), None, "a torn tail loses nothing written");
        let stray = Damage {
            path: "notes.txt".into(),
            ..recorded.damage(at)
        };
        assert_eq!(Loss::of(&stray), None, "not a segment");
    }
}
