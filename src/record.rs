//! Signed node records (EIP-778 ENRs) as the log stores them.
//!
//! A record goes through the `enr` crate when it is written (`NodeDb::update_record` takes an
//! `enr::Enr`, which is valid by construction, and verifies it again) and when it is handed
//! back (`NodeDb::record` decodes it, which verifies its signature). In between, the log holds
//! its RLP bytes, guarded by the frame checksum; replay never verifies a signature, it parses
//! the few fields the index needs (seq, addresses, ports) strictly, and a record that does not
//! parse is damage like any other undecodable frame.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use enr::{Enr, EnrKey, EnrPublicKey};

use crate::node::{canonical_uint, Endpoint, Node, NodeId, RlpCursor, NODE_ID_LEN};
use crate::Error;

/// Largest record EIP-778 allows, in bytes of RLP.
pub const MAX_RECORD_LEN: usize = 300;
/// Length of a v4 (secp256k1) signature.
const SIGNATURE_LEN: usize = 64;
/// Length of a compressed secp256k1 public key.
const COMPRESSED_KEY_LEN: usize = 33;

impl NodeId {
    /// The id of a "v4" (secp256k1) record: its public key, uncompressed, without the `04`
    /// prefix, as discv4 and enode URLs name nodes. Any other identity scheme is
    /// [`Error::InvalidInput`].
    ///
    /// ```
    /// use peerlog::enr::{CombinedKey, Enr};
    /// use peerlog::NodeId;
    ///
    /// let key = CombinedKey::secp256k1_from_bytes(&mut [7u8; 32]).unwrap();
    /// let record = Enr::builder().ip4([203, 0, 113, 7].into()).udp4(30303).build(&key).unwrap();
    /// let id = NodeId::from_enr(&record).unwrap();
    /// assert_eq!(id.to_string().len(), 128);
    /// ```
    pub fn from_enr<K: EnrKey>(record: &Enr<K>) -> Result<NodeId, Error> {
        id_of_public_key(&record.public_key())
    }
}

impl NodeId {
    /// The id of the node whose record `key` signs (a secp256k1 key; any other is
    /// [`Error::InvalidInput`]): what [`NodeId::from_enr`] gives for its records, known before
    /// any record is built, as a node needs it to open its database before it signs its own
    /// record with a seq above [`NodeDb::local_seq`](crate::NodeDb::local_seq).
    ///
    /// ```
    /// use peerlog::enr::{CombinedKey, Enr};
    /// use peerlog::NodeId;
    ///
    /// let key = CombinedKey::secp256k1_from_bytes(&mut [7u8; 32]).unwrap();
    /// let record = Enr::empty(&key).unwrap();
    /// assert_eq!(NodeId::from_key(&key).unwrap(), NodeId::from_enr(&record).unwrap());
    /// ```
    pub fn from_key<K: EnrKey>(key: &K) -> Result<NodeId, Error> {
        id_of_public_key(&key.public())
    }
}

fn id_of_public_key<P: EnrPublicKey>(key: &P) -> Result<NodeId, Error> {
    if key.enr_key().as_slice() != b"secp256k1" {
        return Err(Error::invalid(format!(
            "node record of identity scheme {:?}: only v4 (secp256k1) records are stored",
            String::from_utf8_lossy(&key.enr_key())
        )));
    }
    let uncompressed = key.encode_uncompressed();
    let bytes = <[u8; NODE_ID_LEN]>::try_from(uncompressed.as_ref())
        .map_err(|_| Error::invalid("secp256k1 key of a node record is not 64 bytes"))?;
    Ok(NodeId(bytes))
}

/// A signed node record as the log holds it: its RLP, with the node's id beside it.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct NodeRecord {
    id: NodeId,
    seq: u64,
    rlp: Vec<u8>,
}

impl NodeRecord {
    /// The record of `record`, checked to be a storable v4 record of at most 300 bytes; its
    /// signature is not checked yet (see [`NodeRecord::verified`]).
    pub(crate) fn unverified<K: EnrKey>(record: &Enr<K>) -> Result<NodeRecord, Error> {
        let id = NodeId::from_enr(record)?;
        let rlp = alloy_rlp::encode(record);
        let fields = RecordFields::parse(&rlp)
            .map_err(|why| Error::invalid(format!("node record of {id} is not storable: {why}")))?;
        Ok(NodeRecord {
            id,
            seq: fields.seq,
            rlp,
        })
    }

    /// This record, once the signature of `record`, the record it was made from, verifies.
    pub(crate) fn verified<K: EnrKey>(self, record: &Enr<K>) -> Result<NodeRecord, Error> {
        if !record.verify() {
            return Err(Error::invalid(format!(
                "node record of {}: the signature does not verify",
                self.id
            )));
        }
        Ok(self)
    }

    /// A record read back from the log, if its RLP parses.
    pub(crate) fn from_stored(id: NodeId, rlp: &[u8]) -> Option<NodeRecord> {
        let fields = RecordFields::parse(rlp).ok()?;
        Some(NodeRecord {
            id,
            seq: fields.seq,
            rlp: rlp.to_vec(),
        })
    }

    /// The node's id.
    pub fn id(&self) -> &NodeId {
        &self.id
    }

    /// The record's sequence number.
    pub fn seq(&self) -> u64 {
        self.seq
    }

    /// The record's RLP, as signed.
    pub fn rlp(&self) -> &[u8] {
        &self.rlp
    }

    /// The endpoint the record names: its IPv4 address and ports, else its IPv6 ones (a missing
    /// port as 0); `None` for a record without an IP.
    pub fn node(&self) -> Option<Node> {
        let fields = RecordFields::parse(&self.rlp).expect("a stored record parses");
        fields.endpoint().map(|e| e.with_id(self.id))
    }

    /// The value of `key` in the record, as its RLP (a string's or a list's, header
    /// included), as `enr`'s `get_raw_rlp` gives it; `None` if the record has no such key.
    ///
    /// ```
    /// # fn main() -> Result<(), Box<dyn std::error::Error>> {
    /// use peerlog::enr::{CombinedKey, Enr};
    /// let key = CombinedKey::generate_secp256k1();
    /// let enr: Enr<CombinedKey> = Enr::builder().add_value("eth2", &[1u8, 2, 3].as_slice()).build(&key)?;
    /// let db = peerlog::NodeDb::in_memory(peerlog::NodeId([1; 64]));
    /// db.update_record(&enr)?;
    /// let stored = db.peer(&peerlog::NodeId::from_enr(&enr)?).unwrap().record.unwrap();
    /// assert_eq!(stored.get("eth2"), Some(&[0x83, 1, 2, 3][..]));
    /// assert_eq!(stored.get("opstack"), None);
    /// # Ok(())
    /// # }
    /// ```
    pub fn get(&self, key: impl AsRef<[u8]>) -> Option<&[u8]> {
        raw_value(&self.rlp, key.as_ref())
    }

    /// The record as the `enr` crate's type, for key type `K` (`enr::CombinedKey` for
    /// discv5). Decoding verifies the signature.
    pub fn decode<K: EnrKey>(&self) -> Result<Enr<K>, Error> {
        decode_enr(&self.rlp)
    }
}

impl std::fmt::Display for NodeRecord {
    /// The record's text form (EIP-778): `enr:` and its RLP in URL-safe base64 without padding.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        use base64::Engine;
        let text = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(&self.rlp);
        write!(f, "enr:{text}")
    }
}

impl std::fmt::Debug for NodeRecord {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NodeRecord")
            .field("id", &self.id)
            .field("seq", &self.seq)
            .field("rlp_len", &self.rlp.len())
            .finish()
    }
}

/// The value of `key` in the record `rlp`, as its whole RLP item; `None` without the key
/// or for a record that does not parse as a list of signature, seq and pairs.
pub(crate) fn raw_value<'a>(rlp: &'a [u8], key: &[u8]) -> Option<&'a [u8]> {
    let mut items = RlpCursor(RlpCursor(rlp).list().ok()?);
    items.item().ok()?; // signature
    items.item().ok()?; // seq
    while !items.0.is_empty() {
        let (is_list, name) = items.item().ok()?;
        let value_start = items.0;
        items.item().ok()?;
        if !is_list && name == key {
            return Some(&value_start[..value_start.len() - items.0.len()]);
        }
    }
    None
}

/// Every key of the record `rlp`, in its order; empty for a record that does not parse as a
/// list of signature, seq and pairs (and cut where a pair does not parse).
pub(crate) fn keys(rlp: &[u8]) -> Vec<&[u8]> {
    let mut keys = Vec::new();
    let Ok(list) = RlpCursor(rlp).list() else {
        return keys;
    };
    let mut items = RlpCursor(list);
    if items.item().is_err() || items.item().is_err() {
        return keys; // no signature or seq
    }
    while !items.0.is_empty() {
        let Ok((is_list, name)) = items.item() else {
            break;
        };
        if items.item().is_err() {
            break;
        }
        if !is_list {
            keys.push(name);
        }
    }
    keys
}

/// Decodes a record's RLP as an `enr::Enr<K>`, which verifies its signature.
pub(crate) fn decode_enr<K: EnrKey>(rlp: &[u8]) -> Result<Enr<K>, Error> {
    alloy_rlp::decode_exact::<Enr<K>>(rlp)
        .map_err(|e| Error::invalid(format!("node record does not decode: {e}")))
}

/// What the index needs of a record, parsed from its RLP without verifying the signature.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct RecordFields {
    pub seq: u64,
    pub ip4: Option<Ipv4Addr>,
    pub ip6: Option<Ipv6Addr>,
    pub udp4: Option<u16>,
    pub tcp4: Option<u16>,
    pub udp6: Option<u16>,
    pub tcp6: Option<u16>,
}

impl RecordFields {
    /// Parses a v4 record strictly: one canonical RLP list of at most 300 bytes holding a
    /// 64-byte signature, the seq, then key/value pairs with keys in strictly increasing
    /// order, `id` = `v4`, a 33-byte compressed `secp256k1` key, and well-formed `ip`, `ip6`
    /// and ports where present. Other keys may hold any RLP item.
    #[inline]
    pub fn parse(rlp: &[u8]) -> Result<RecordFields, String> {
        // Replay parses every record it reads: the usual record takes the quick way, and
        // anything it does not take (a failure, an unusual key) goes the general way, which
        // alone decides what is refused and why.
        match parse_quick(rlp) {
            Some(fields) => Ok(fields),
            None => RecordFields::parse_general(rlp),
        }
    }

    /// Whether [`RecordFields::parse`] accepts `rlp`: what replay asks of every record, and
    /// cheaper than the parse, for the quick way builds no fields then.
    #[inline]
    pub fn is_valid(rlp: &[u8]) -> bool {
        parse_quick(rlp).is_some() || RecordFields::parse_general(rlp).is_ok()
    }

    /// [`RecordFields::parse`], item by item through [`RlpCursor`], with a reason for every
    /// refusal.
    fn parse_general(rlp: &[u8]) -> Result<RecordFields, String> {
        if rlp.len() > MAX_RECORD_LEN {
            return Err(format!(
                "{} bytes, more than the {MAX_RECORD_LEN} a record may have",
                rlp.len()
            ));
        }
        let mut outer = RlpCursor(rlp);
        let mut items = RlpCursor(outer.list()?);
        if !outer.0.is_empty() {
            return Err("trailing bytes after the record".into());
        }
        let signature = items.string()?;
        if signature.len() != SIGNATURE_LEN {
            return Err(format!("signature of {} bytes", signature.len()));
        }
        let mut fields = RecordFields {
            seq: canonical_uint(items.string()?)?,
            ..RecordFields::default()
        };
        let (mut previous, mut scheme_v4, mut has_key): (Option<&[u8]>, _, _) =
            (None, false, false);
        while !items.0.is_empty() {
            let key = items.string()?;
            if previous.is_some_and(|p| p >= key) {
                return Err("keys not in strictly increasing order".into());
            }
            previous = Some(key);
            let (is_list, value) = items.item().map_err(|e| format!("value of a key: {e}"))?;
            if is_list {
                // Only keys peerlog does not read may hold lists.
                if matches!(
                    key,
                    b"id" | b"secp256k1" | b"ip" | b"ip6" | b"udp" | b"tcp" | b"udp6" | b"tcp6"
                ) {
                    return Err(format!("{} holds a list", String::from_utf8_lossy(key)));
                }
                continue;
            }
            match key {
                b"id" => scheme_v4 = value == b"v4",
                b"secp256k1" => {
                    has_key = value.len() == COMPRESSED_KEY_LEN && matches!(value[0], 2 | 3)
                }
                b"ip" => fields.ip4 = Some(Ipv4Addr::from(fixed::<4>(value, "ip")?)),
                b"ip6" => fields.ip6 = Some(Ipv6Addr::from(fixed::<16>(value, "ip6")?)),
                b"udp" => fields.udp4 = Some(port(value)?),
                b"tcp" => fields.tcp4 = Some(port(value)?),
                b"udp6" => fields.udp6 = Some(port(value)?),
                b"tcp6" => fields.tcp6 = Some(port(value)?),
                _ => {}
            }
        }
        if !scheme_v4 {
            return Err("identity scheme is not v4".into());
        }
        if !has_key {
            return Err("no 33-byte compressed secp256k1 key".into());
        }
        Ok(fields)
    }

    /// The endpoint a node database keeps for the record: its IPv4 address and ports, else
    /// its IPv6 ones, a missing port as 0; `None` for a record without an IP.
    pub fn endpoint(&self) -> Option<Endpoint> {
        let (ip, udp, tcp) = match (self.ip4, self.ip6) {
            (Some(ip4), _) => (IpAddr::V4(ip4), self.udp4, self.tcp4),
            (None, Some(ip6)) => (IpAddr::V6(ip6), self.udp6, self.tcp6),
            (None, None) => return None,
        };
        Some(Endpoint {
            ip,
            udp: udp.unwrap_or(0),
            tcp: tcp.unwrap_or(0),
        })
    }
}

/// A key of 1 to 16 bytes as a number: its bytes big-endian, left-aligned, zero-padded. Keys
/// of these lengths order as `(word, length)` order, as byte strings order.
const fn key_word(key: &[u8]) -> u128 {
    let mut word = 0u128;
    let mut i = 0;
    while i < 16 {
        word <<= 8;
        if i < key.len() {
            word |= key[i] as u128;
        }
        i += 1;
    }
    word
}

/// The keys the index reads, as [`key_word`]s with their lengths.
const KEY_ID: (u128, usize) = (key_word(b"id"), 2);
const KEY_SECP256K1: (u128, usize) = (key_word(b"secp256k1"), 9);
const KEY_IP: (u128, usize) = (key_word(b"ip"), 2);
const KEY_IP6: (u128, usize) = (key_word(b"ip6"), 3);
const KEY_UDP: (u128, usize) = (key_word(b"udp"), 3);
const KEY_TCP: (u128, usize) = (key_word(b"tcp"), 3);
const KEY_UDP6: (u128, usize) = (key_word(b"udp6"), 4);
const KEY_TCP6: (u128, usize) = (key_word(b"tcp6"), 4);

/// The RLP item at `at` in `bytes`, canonical: whether it is a list, and where its payload
/// starts and ends. `None` where [`RlpCursor::item`] fails, and also for lengths of more than
/// two bytes (no item of a record is that long).
#[inline(always)]
fn quick_item(bytes: &[u8], at: usize) -> Option<(bool, usize, usize)> {
    let first = *bytes.get(at)?;
    let (is_list, start, len) = match first {
        0x00..=0x7f => return Some((false, at, at + 1)),
        0x80..=0xb7 => (false, at + 1, usize::from(first - 0x80)),
        0xc0..=0xf7 => (true, at + 1, usize::from(first - 0xc0)),
        0xb8 | 0xf8 => {
            let len = usize::from(*bytes.get(at + 1)?);
            // Also refuses a length byte of 0 (a leading zero).
            if len <= 55 {
                return None;
            }
            (first == 0xf8, at + 2, len)
        }
        0xb9 | 0xf9 => {
            let high = *bytes.get(at + 1)?;
            if high == 0 {
                return None;
            }
            let len = usize::from(high) << 8 | usize::from(*bytes.get(at + 2)?);
            (first == 0xf9, at + 3, len)
        }
        _ => return None,
    };
    let end = start + len;
    if end > bytes.len() || (!is_list && len == 1 && bytes[start] < 0x80) {
        return None;
    }
    Some((is_list, start, end))
}

/// A canonical integer of at most two bytes.
#[inline(always)]
fn quick_port(value: &[u8]) -> Option<u16> {
    match *value {
        [] => Some(0),
        [b] if b != 0 => Some(u16::from(b)),
        [high, low] if high != 0 => Some(u16::from_be_bytes([high, low])),
        _ => None,
    }
}

/// [`RecordFields::parse`] of a record it accepts, for records whose keys are 1 to 16 bytes
/// long; `None` for every other input, which the general parse then decides on.
#[inline(always)]
fn parse_quick(rlp: &[u8]) -> Option<RecordFields> {
    if rlp.len() > MAX_RECORD_LEN {
        return None;
    }
    let (is_list, mut at, end) = quick_item(rlp, 0)?;
    if !is_list || end != rlp.len() {
        return None;
    }
    let (is_list, start, signature_end) = quick_item(rlp, at)?;
    if is_list || signature_end - start != SIGNATURE_LEN {
        return None;
    }
    let (is_list, start, seq_end) = quick_item(rlp, signature_end)?;
    if is_list {
        return None;
    }
    let seq_len = seq_end - start;
    if seq_len > 8 || (seq_len != 0 && rlp[start] == 0) {
        return None;
    }
    let mut fields = RecordFields {
        seq: be_uint_at(rlp, start, seq_len),
        ..RecordFields::default()
    };
    at = seq_end;
    let (mut previous, mut scheme_v4, mut has_key) = ((0u128, 0usize), false, false);
    while at < end {
        let (is_list, start, key_end) = quick_item(rlp, at)?;
        let key_len = key_end - start;
        if is_list || !(1..=16).contains(&key_len) {
            return None;
        }
        let key = (key_word_at(rlp, start, key_len)?, key_len);
        if key <= previous {
            return None;
        }
        previous = key;
        let (is_list, start, value_end) = quick_item(rlp, key_end)?;
        at = value_end;
        let known = matches!(
            key,
            KEY_ID | KEY_SECP256K1 | KEY_IP | KEY_IP6 | KEY_UDP | KEY_TCP | KEY_UDP6 | KEY_TCP6
        );
        if !known {
            continue;
        }
        if is_list {
            return None;
        }
        let value = &rlp[start..value_end];
        match key {
            KEY_ID => scheme_v4 = value == b"v4",
            KEY_SECP256K1 => {
                has_key = value.len() == COMPRESSED_KEY_LEN && matches!(value[0], 2 | 3)
            }
            KEY_IP => fields.ip4 = Some(Ipv4Addr::from(<[u8; 4]>::try_from(value).ok()?)),
            KEY_IP6 => fields.ip6 = Some(Ipv6Addr::from(<[u8; 16]>::try_from(value).ok()?)),
            KEY_UDP => fields.udp4 = Some(quick_port(value)?),
            KEY_TCP => fields.tcp4 = Some(quick_port(value)?),
            KEY_UDP6 => fields.udp6 = Some(quick_port(value)?),
            _ => fields.tcp6 = Some(quick_port(value)?),
        }
    }
    (scheme_v4 && has_key).then_some(fields)
}

/// [`key_word`] of the key of `len` bytes (1 to 16) at `start` in `bytes`, at run time, read
/// as the 16 bytes that end with the key, shifted: one load, where a window starting at the
/// key would need a copy for the keys near the end of the record (`tcp`, `udp`), which the
/// load after it waits for. `None` for a key ending before byte 16, which no record has
/// (its keys come after its 64-byte signature).
#[inline(always)]
fn key_word_at(bytes: &[u8], start: usize, len: usize) -> Option<u128> {
    let end = start + len;
    let window = bytes.get(end.checked_sub(16)?..end)?;
    Some(u128::from_be_bytes(window.try_into().ok()?) << (8 * (16 - len)))
}

/// The `len` bytes (at most 8) at `start` in `bytes` as a big-endian integer.
#[inline(always)]
fn be_uint_at(bytes: &[u8], start: usize, len: usize) -> u64 {
    match bytes.get(start..start + 8) {
        Some(window) if len != 0 => {
            u64::from_be_bytes(window.try_into().expect("8 bytes")) >> (8 * (8 - len))
        }
        _ => bytes[start..start + len]
            .iter()
            .fold(0, |acc, &b| acc << 8 | u64::from(b)),
    }
}

fn fixed<const N: usize>(value: &[u8], key: &str) -> Result<[u8; N], String> {
    <[u8; N]>::try_from(value).map_err(|_| format!("{key} of {} bytes, not {N}", value.len()))
}

fn port(value: &[u8]) -> Result<u16, String> {
    let port = canonical_uint(value)?;
    u16::try_from(port).map_err(|_| format!("port {port} exceeds 65535"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use enr::CombinedKey;

    fn key(byte: u8) -> CombinedKey {
        CombinedKey::secp256k1_from_bytes(&mut [byte; 32]).unwrap()
    }

    #[test]
    fn records_made_by_the_enr_crate_parse_to_their_fields() {
        let k = key(1);
        let full = Enr::builder()
            .ip4([203, 0, 113, 7].into())
            .udp4(30303)
            .tcp4(30304)
            .ip6("2001:db8::1".parse().unwrap())
            .udp6(9000)
            .seq(42)
            .add_value(b"eth", &vec![1u8, 2, 3])
            .build(&k)
            .unwrap();
        let fields = RecordFields::parse(&alloy_rlp::encode(&full)).unwrap();
        assert_eq!(fields.seq, 42);
        assert_eq!(fields.ip4, Some([203, 0, 113, 7].into()));
        assert_eq!((fields.udp4, fields.tcp4), (Some(30303), Some(30304)));
        assert_eq!(fields.ip6, Some("2001:db8::1".parse().unwrap()));
        assert_eq!((fields.udp6, fields.tcp6), (Some(9000), None));
        let endpoint = fields.endpoint().unwrap();
        assert_eq!(
            (endpoint.ip, endpoint.udp, endpoint.tcp),
            ([203, 0, 113, 7].into(), 30303, 30304)
        );

        let v6_only = Enr::builder()
            .ip6("2001:db8::2".parse().unwrap())
            .tcp6(1)
            .build(&k)
            .unwrap();
        let endpoint = RecordFields::parse(&alloy_rlp::encode(&v6_only))
            .unwrap()
            .endpoint()
            .unwrap();
        assert_eq!((endpoint.udp, endpoint.tcp), (0, 1));

        let bare = Enr::empty(&k).unwrap();
        let fields = RecordFields::parse(&alloy_rlp::encode(&bare)).unwrap();
        assert_eq!((fields.seq, fields.endpoint()), (1, None));
    }

    #[test]
    fn the_text_form_is_the_one_the_enr_crate_writes() {
        let record = Enr::builder()
            .ip4([10, 0, 0, 1].into())
            .udp4(30303)
            .build(&key(4))
            .unwrap();
        let stored = NodeRecord::unverified(&record)
            .unwrap()
            .verified(&record)
            .unwrap();
        assert_eq!(stored.to_string(), record.to_base64());
        assert_eq!(stored.decode::<CombinedKey>().unwrap(), record);
    }

    #[test]
    fn every_truncation_and_most_bit_flips_fail_to_parse_and_none_panics() {
        let record = Enr::builder()
            .ip4([10, 0, 0, 1].into())
            .udp4(30303)
            .build(&key(2))
            .unwrap();
        let rlp = alloy_rlp::encode(&record);
        for len in 0..rlp.len() {
            assert!(
                RecordFields::parse(&rlp[..len]).is_err(),
                "truncated to {len}"
            );
        }
        for bit in 0..rlp.len() * 8 {
            let mut flipped = rlp.clone();
            flipped[bit / 8] ^= 1 << (bit % 8);
            let _ = RecordFields::parse(&flipped);
        }
    }

    /// The quick parse takes the usual records, accepts nothing the general parse refuses and
    /// reads the same fields, over every bit flipped, every byte replaced by each value and
    /// every truncation of records of several shapes.
    #[test]
    fn the_quick_parse_agrees_with_the_general_one() {
        let k = key(5);
        let records = [
            Enr::builder()
                .ip4([10, 0, 0, 1].into())
                .udp4(30303)
                .tcp4(30303)
                .seq(7)
                .build(&k)
                .unwrap(),
            Enr::builder()
                .ip4([203, 0, 113, 7].into())
                .udp4(128)
                .tcp4(65535)
                .ip6("2001:db8::1".parse().unwrap())
                .udp6(1)
                .tcp6(0)
                .seq(u64::MAX)
                .add_value(b"eth", &vec![1u8, 2, 3])
                .add_value(b"a-key-longer-than-16-bytes", &7u8)
                .build(&k)
                .unwrap(),
            Enr::empty(&k).unwrap(),
            // Keys of 15 and 16 bytes (the quick parse's limit), sorted between known ones.
            Enr::builder()
                .ip4([10, 0, 0, 2].into())
                .udp4(30303)
                .add_value(b"fifteen-bytes-k", &1u8)
                .add_value(b"sixteen-bytes-ky", &2u8)
                .add_value(b"ip-and-more-key", &3u8)
                .build(&k)
                .unwrap(),
        ];
        let check = |rlp: &[u8]| {
            if let Some(quick) = parse_quick(rlp) {
                assert_eq!(RecordFields::parse_general(rlp), Ok(quick), "{rlp:02x?}");
            }
            assert_eq!(
                RecordFields::is_valid(rlp),
                RecordFields::parse_general(rlp).is_ok(),
                "{rlp:02x?}"
            );
        };
        for record in &records {
            let rlp = alloy_rlp::encode(record);
            let general = RecordFields::parse_general(&rlp).unwrap();
            assert_eq!(RecordFields::parse(&rlp), Ok(general));
            for len in 0..=rlp.len() {
                check(&rlp[..len]);
            }
            for at in 0..rlp.len() {
                let mut changed = rlp.clone();
                for value in 0..=255 {
                    changed[at] = value;
                    check(&changed);
                }
            }
        }
        // The usual record (no key over 16 bytes) takes the quick way.
        assert!(parse_quick(&alloy_rlp::encode(&records[0])).is_some());
        assert!(parse_quick(&alloy_rlp::encode(&records[2])).is_some());
        assert!(parse_quick(&alloy_rlp::encode(&records[3])).is_some());
        assert!(parse_quick(&alloy_rlp::encode(&records[1])).is_none());
    }

    #[test]
    fn the_id_of_a_v4_record_is_its_uncompressed_key_and_other_schemes_are_refused() {
        let k = key(3);
        let record = Enr::empty(&k).unwrap();
        let id = NodeId::from_enr(&record).unwrap();
        let CombinedKey::Secp256k1(secret) = &k else {
            unreachable!()
        };
        let point = secret.verifying_key().to_sec1_point(false);
        assert_eq!(&id.0[..], &point.as_bytes()[1..]);

        let ed = CombinedKey::generate_ed25519();
        let record = Enr::empty(&ed).unwrap();
        assert!(matches!(
            NodeId::from_enr(&record),
            Err(Error::InvalidInput(_))
        ));
    }
}
