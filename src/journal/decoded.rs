//! What the journal's scans decode an intact frame into. The journal carries payloads as
//! opaque bytes; the event module says what they mean, by implementing these traits.

/// What a scan decodes an intact frame into: the journal carries payloads as opaque bytes,
/// and the event module says what they mean (`impl Decoded for LogRecord` and `StoredRecord`, in
/// `event.rs`). `'a` is the lifetime of the scanned bytes: a decoded value may borrow from
/// them when the scan reads frames in place.
pub trait Decoded<'a>: Sized {
    /// The record of a frame whose checksum matched; `None` if its payload does not decode.
    fn decode(seq: u64, kind: u8, payload: &'a [u8]) -> Option<Self>;
    /// The checks of [`Decoded::decode`] that a `ChecksumsAhead` helper makes on its own
    /// core, ahead of the scan (see `journal::ahead`), beside the frame's: whether the
    /// payload passes the costly ones. None by default.
    #[inline(always)]
    fn passes_deep_checks(_kind: u8, _payload: &[u8]) -> bool {
        true
    }
    /// [`Decoded::decode`] of a frame that a `ChecksumsAhead` helper has checked, payload
    /// included (it passed [`Decoded::passes_deep_checks`]): the same result, without
    /// repeating the checks the helper made.
    #[inline(always)]
    fn decode_vouched(seq: u64, kind: u8, payload: &'a [u8]) -> Option<Self> {
        Self::decode(seq, kind, payload)
    }
    /// Its sequence number.
    fn seq(&self) -> u64;
}

/// A [`Decoded`] type named for every lifetime of the bytes it borrows from: what a replay
/// that reads segments in place (`replay_locked`) decodes into, each segment's records
/// borrowing from its map for as long as the segment is read.
pub trait DecodedInPlace {
    /// The records decoded from bytes that live for `'m`.
    type In<'m>: Decoded<'m>;
}
