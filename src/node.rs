//! The node model: node ids, endpoints, their RLP encoding (byte-compatible with
//! go-ethereum's discovery v4 `Node`), enode URLs, Keccak-256 hashes and log distance.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use alloy_rlp::{Encodable, Header};
use sha3::{Digest, Keccak256};

use crate::Error;

/// Length of a node id: an uncompressed secp256k1 public key without its `0x04` prefix.
pub const NODE_ID_LEN: usize = 64;

/// A node's identity: the 64-byte secp256k1 public key.
///
/// Parses from 128 hex characters (with or without `0x`) and prints as 128 lowercase hex
/// characters.
///
/// ```
/// use peerlog::NodeId;
/// let id: NodeId = format!("0x{}", "ab".repeat(64)).parse().unwrap();
/// assert_eq!(id.to_string(), "ab".repeat(64));
/// assert!("abc".parse::<NodeId>().is_err());
/// ```
// The hand-written `eq` is byte equality, as the derived `Hash` and `Ord` assume.
#[allow(clippy::derived_hash_with_manual_eq)]
#[derive(Clone, Copy, Eq, Hash, PartialOrd, Ord)]
pub struct NodeId(pub [u8; NODE_ID_LEN]);

impl PartialEq for NodeId {
    fn eq(&self, other: &NodeId) -> bool {
        ids_equal(&self.0, &other.0)
    }
}

/// Byte equality of two ids as eight word compares, inlined: replay compares ids for every
/// record, and the generic byte-array comparison calls out to `memcmp`.
#[inline]
pub(crate) fn ids_equal(a: &[u8; NODE_ID_LEN], b: &[u8; NODE_ID_LEN]) -> bool {
    let words = |id: &[u8; NODE_ID_LEN]| -> [u64; 8] {
        std::array::from_fn(|i| u64::from_ne_bytes(id[8 * i..8 * i + 8].try_into().unwrap()))
    };
    // Or-ing the differences keeps the compiler from turning this back into `memcmp`.
    let (a, b) = (words(a), words(b));
    a.iter().zip(&b).fold(0, |diff, (x, y)| diff | (x ^ y)) == 0
}

impl NodeId {
    /// Keccak-256 of the 64 id bytes: the node's position in the discovery keyspace.
    pub fn hash(&self) -> [u8; 32] {
        Keccak256::digest(self.0).into()
    }
}

impl fmt::Display for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // Into a buffer, then one write: an export prints millions of ids, and a formatter
        // call per byte was a fifth of its time.
        const HEX: &[u8; 16] = b"0123456789abcdef";
        let mut text = [0u8; 2 * NODE_ID_LEN];
        for (pair, byte) in text.chunks_exact_mut(2).zip(self.0) {
            pair[0] = HEX[usize::from(byte >> 4)];
            pair[1] = HEX[usize::from(byte & 15)];
        }
        f.write_str(std::str::from_utf8(&text).expect("hex digits are ASCII"))
    }
}

impl fmt::Debug for NodeId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "NodeId({self})")
    }
}

impl FromStr for NodeId {
    type Err = Error;

    fn from_str(s: &str) -> Result<NodeId, Error> {
        let hex = s
            .strip_prefix("0x")
            .or_else(|| s.strip_prefix("0X"))
            .unwrap_or(s);
        if hex.len() != NODE_ID_LEN * 2 {
            return Err(Error::invalid(format!(
                "node id must be {} hex characters, got {}",
                NODE_ID_LEN * 2,
                hex.len()
            )));
        }
        let mut id = [0u8; NODE_ID_LEN];
        for (i, pair) in hex.as_bytes().chunks_exact(2).enumerate() {
            let hi = hex_digit(pair[0]);
            let lo = hex_digit(pair[1]);
            match (hi, lo) {
                (Some(hi), Some(lo)) => id[i] = hi << 4 | lo,
                _ => {
                    return Err(Error::invalid(format!(
                        "node id has a non-hex character at position {}",
                        2 * i + usize::from(hi.is_some())
                    )))
                }
            }
        }
        Ok(NodeId(id))
    }
}

fn hex_digit(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// A discovered peer: its endpoint and identity.
///
/// ```
/// use peerlog::Node;
/// let url = format!("enode://{}@10.0.0.1:30303?discport=30301", "cd".repeat(64));
/// let node: Node = url.parse().unwrap();
/// assert_eq!((node.tcp, node.udp), (30303, 30301));
/// assert_eq!(node.to_string(), url);
/// assert_eq!(Node::from_rlp(&node.to_rlp()).unwrap(), node);
/// ```
#[derive(Clone, PartialEq, Eq, Debug, Hash)]
pub struct Node {
    /// IP address: IPv4 is encoded as 4 bytes, IPv6 as 16.
    pub ip: IpAddr,
    /// Discovery (UDP) port.
    pub udp: u16,
    /// RLPx (TCP) port.
    pub tcp: u16,
    /// The node's public key.
    pub id: NodeId,
}

impl Node {
    /// A node with the given identity and endpoint.
    pub fn new(id: NodeId, ip: IpAddr, udp: u16, tcp: u16) -> Node {
        Node { ip, udp, tcp, id }
    }

    /// The RLP list `[ip, udp, tcp, id]`, exactly as go-ethereum's v4 discovery encodes a node.
    pub fn to_rlp(&self) -> Vec<u8> {
        let endpoint = self.endpoint();
        let mut out = Vec::with_capacity(endpoint.rlp_len());
        endpoint.write_rlp(&self.id.0, &mut out);
        out
    }

    /// Decodes [`Node::to_rlp`]'s output. Rejects anything that is not canonical RLP of that
    /// shape: other IP lengths, ports over 65535, integers with leading zeros, long forms
    /// where a short one fits, trailing bytes.
    pub fn from_rlp(bytes: &[u8]) -> Result<Node, Error> {
        let (id, endpoint) = parse_node_rlp(bytes)?;
        Ok(endpoint.with_id(NodeId(*id)))
    }

    /// Where the node is, without its id.
    pub(crate) fn endpoint(&self) -> Endpoint {
        Endpoint {
            ip: self.ip,
            udp: self.udp,
            tcp: self.tcp,
        }
    }

    /// Keccak-256 of the node id (the same as `self.id.hash()`).
    pub fn sha(&self) -> [u8; 32] {
        self.id.hash()
    }
}

/// A node's endpoint, without its id.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub ip: IpAddr,
    pub udp: u16,
    pub tcp: u16,
}

impl Endpoint {
    /// Appends the RLP of the node `id` at this endpoint to `out`: [`Node::to_rlp`], without
    /// a buffer of its own (the writer encodes one per node record it logs).
    pub fn write_rlp(&self, id: &[u8; NODE_ID_LEN], out: &mut Vec<u8>) {
        let ip: &[u8] = match &self.ip {
            IpAddr::V4(v4) => &v4.octets(),
            IpAddr::V6(v6) => &v6.octets(),
        };
        let id: &[u8] = id;
        let header = Header {
            list: true,
            payload_length: ip.length() + self.udp.length() + self.tcp.length() + id.length(),
        };
        header.encode(out);
        ip.encode(out);
        self.udp.encode(out);
        self.tcp.encode(out);
        id.encode(out);
    }

    /// The node `id` at this endpoint.
    pub fn with_id(self, id: NodeId) -> Node {
        Node::new(id, self.ip, self.udp, self.tcp)
    }

    /// Length of the RLP encoding of a node at this endpoint, computed without encoding it
    /// (replay calls this for every event).
    pub fn rlp_len(&self) -> usize {
        let port = |p: u16| match p {
            0..=127 => 1,
            128..=255 => 2,
            _ => 3,
        };
        let ip = match self.ip {
            IpAddr::V4(_) => 1 + 4,
            IpAddr::V6(_) => 1 + 16,
        };
        // List header (2 bytes: the payload is always over 55 bytes) and the id (2 + 64).
        2 + ip + port(self.udp) + port(self.tcp) + 2 + 64
    }
}

/// [`Node::from_rlp`] without copying: the id is borrowed from `bytes`.
pub(crate) fn parse_node_rlp(bytes: &[u8]) -> Result<(&[u8; NODE_ID_LEN], Endpoint), Error> {
    let bad = |what: &str| Error::invalid(format!("node RLP: {what}"));
    let mut outer = RlpCursor(bytes);
    let mut fields = RlpCursor(outer.list().map_err(bad)?);
    if !outer.0.is_empty() {
        return Err(bad("trailing bytes after the list"));
    }
    let mut next = |name: &str| fields.string().map_err(|e| bad(&format!("{name}: {e}")));
    let ip_bytes = next("ip")?;
    let udp = next("udp port")?;
    let tcp = next("tcp port")?;
    let id_bytes = next("id")?;
    if !fields.0.is_empty() {
        return Err(bad("more than 4 items in the list"));
    }
    let ip = match ip_bytes.len() {
        4 => IpAddr::V4(Ipv4Addr::from(<[u8; 4]>::try_from(ip_bytes).unwrap())),
        16 => IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(ip_bytes).unwrap())),
        n => return Err(bad(&format!("ip must be 4 or 16 bytes, got {n}"))),
    };
    let port = |value: &[u8], name: &str| -> Result<u16, Error> {
        let value = canonical_uint(value).map_err(|e| bad(&format!("{name} port: {e}")))?;
        u16::try_from(value).map_err(|_| bad(&format!("{name} port {value} exceeds 65535")))
    };
    let id = <&[u8; NODE_ID_LEN]>::try_from(id_bytes)
        .map_err(|_| bad(&format!("id must be 64 bytes, got {}", id_bytes.len())))?;
    let endpoint = Endpoint {
        ip,
        udp: port(udp, "udp")?,
        tcp: port(tcp, "tcp")?,
    };
    Ok((id, endpoint))
}

impl fmt::Display for Node {
    /// `enode://<id>@<ip>:<tcp>`, followed by `?discport=<udp>` when the ports differ.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "enode://{}@", self.id)?;
        match self.ip {
            IpAddr::V4(v4) => write!(f, "{v4}")?,
            IpAddr::V6(v6) => write!(f, "[{v6}]")?,
        }
        write!(f, ":{}", self.tcp)?;
        if self.udp != self.tcp {
            write!(f, "?discport={}", self.udp)?;
        }
        Ok(())
    }
}

impl FromStr for Node {
    type Err = Error;

    /// Parses `enode://<128 hex>@<ip>:<tcp>[?discport=<udp>]`; IPv6 goes in brackets.
    /// Host names are refused: a node database stores addresses, not names to resolve.
    fn from_str(url: &str) -> Result<Node, Error> {
        let bad = |what: &str| Error::invalid(format!("enode URL {url:?}: {what}"));
        let rest = url
            .strip_prefix("enode://")
            .ok_or_else(|| bad("must start with enode://"))?;
        let (id_hex, rest) = rest
            .split_once('@')
            .ok_or_else(|| bad("missing '@' between node id and address"))?;
        // Either case: NodeId's parser strips "0X" too (fuzz finding: "enode://0X<id>@..."
        // was accepted while "enode://0x<id>@..." was refused).
        if id_hex.starts_with("0x") || id_hex.starts_with("0X") {
            return Err(bad("node id must not have a 0x prefix"));
        }
        let id: NodeId = id_hex.parse().map_err(|e: Error| match e {
            Error::InvalidInput(why) => bad(&why),
            other => bad(&other.to_string()),
        })?;
        let (address, query) = match rest.split_once('?') {
            Some((address, query)) => (address, Some(query)),
            None => (rest, None),
        };
        let (host, tcp) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("missing ':<tcp port>'"))?;
        let ip = match host.strip_prefix('[') {
            Some(inner) => {
                let inner = inner
                    .strip_suffix(']')
                    .ok_or_else(|| bad("unclosed '[' in IPv6 address"))?;
                IpAddr::V6(inner.parse().map_err(|_| bad("invalid IPv6 address"))?)
            }
            None => IpAddr::V4(host.parse().map_err(|_| {
                bad("invalid IPv4 address (IPv6 goes in brackets; host names are not accepted)")
            })?),
        };
        let tcp = parse_port(tcp).ok_or_else(|| bad("invalid tcp port"))?;
        let udp = match query {
            None => tcp,
            Some(query) => {
                let udp = query
                    .strip_prefix("discport=")
                    .ok_or_else(|| bad("the only query parameter allowed is discport"))?;
                parse_port(udp).ok_or_else(|| bad("invalid discport"))?
            }
        };
        Ok(Node::new(id, ip, udp, tcp))
    }
}

/// A decimal port without sign, leading zeros or surrounding space.
fn parse_port(s: &str) -> Option<u16> {
    let canonical =
        !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit()) && (s == "0" || !s.starts_with('0'));
    canonical.then(|| s.parse().ok()).flatten()
}

/// The logarithmic distance between two hashes: 0 when equal, else 256 minus the number of
/// leading zero bits of `a ^ b`.
///
/// ```
/// let a = [0u8; 32];
/// let mut b = [0u8; 32];
/// assert_eq!(peerlog::log_distance(&a, &b), 0);
/// b[31] = 1;
/// assert_eq!(peerlog::log_distance(&a, &b), 1);
/// b[0] = 0x80;
/// assert_eq!(peerlog::log_distance(&a, &b), 256);
/// ```
pub fn log_distance(a: &[u8; 32], b: &[u8; 32]) -> u32 {
    let mut leading_zeros = 0;
    for (x, y) in a.iter().zip(b) {
        let diff = x ^ y;
        if diff != 0 {
            return 256 - (leading_zeros + diff.leading_zeros());
        }
        leading_zeros += 8;
    }
    0
}

/// Reads canonical RLP items off the front of a byte slice, without copying: what the decoding
/// of node and record RLP walks item by item (alloy-rlp's header reader decides what is
/// canonical).
pub(crate) struct RlpCursor<'a>(pub &'a [u8]);

impl<'a> RlpCursor<'a> {
    /// The next item: whether it is a list, and its payload.
    pub fn item(&mut self) -> Result<(bool, &'a [u8]), &'static str> {
        let mut rest = self.0;
        let header = Header::decode(&mut rest).map_err(rlp_error)?;
        // `decode` checked that the payload is there.
        let (payload, rest) = rest.split_at(header.payload_length);
        self.0 = rest;
        Ok((header.list, payload))
    }

    pub fn list(&mut self) -> Result<&'a [u8], &'static str> {
        match self.item()? {
            (true, payload) => Ok(payload),
            (false, _) => Err("expected a list"),
        }
    }

    pub fn string(&mut self) -> Result<&'a [u8], &'static str> {
        match self.item()? {
            (false, payload) => Ok(payload),
            (true, _) => Err("expected a string, found a list"),
        }
    }
}

/// What an RLP header error means, in the words the parsers' errors use.
fn rlp_error(error: alloy_rlp::Error) -> &'static str {
    match error {
        alloy_rlp::Error::InputTooShort => "item runs past the end of input",
        alloy_rlp::Error::LeadingZero => "length with a leading zero",
        alloy_rlp::Error::NonCanonicalSingleByte => "single byte below 0x80 not encoded as itself",
        alloy_rlp::Error::UnexpectedLength | alloy_rlp::Error::NonCanonicalSize => {
            "long form for a short length"
        }
        alloy_rlp::Error::Overflow => "length overflows",
        _ => "malformed RLP",
    }
}

/// A canonical RLP unsigned integer: big-endian, no leading zero bytes, at most 8 bytes.
pub(crate) fn canonical_uint(bytes: &[u8]) -> Result<u64, &'static str> {
    if bytes.first() == Some(&0) {
        return Err("integer with a leading zero byte");
    }
    if bytes.len() > 8 {
        return Err("integer over 64 bits");
    }
    Ok(bytes.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
}

/// With the `serde` feature: a [`NodeId`] is a string of 128 lowercase hex characters and a
/// [`Node`] its enode URL, as they print; both parse as their `FromStr` does.
#[cfg(feature = "serde")]
mod serde_impls {
    use std::fmt;
    use std::marker::PhantomData;
    use std::str::FromStr;

    use serde::de::{self, Visitor};
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    use super::{Node, NodeId};

    /// Deserializes any `FromStr` type from a string.
    struct ParsedFrom<T>(PhantomData<T>, &'static str);

    impl<T: FromStr> Visitor<'_> for ParsedFrom<T>
    where
        T::Err: fmt::Display,
    {
        type Value = T;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str(self.1)
        }

        fn visit_str<E: de::Error>(self, text: &str) -> Result<T, E> {
            text.parse().map_err(E::custom)
        }
    }

    impl Serialize for NodeId {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self)
        }
    }

    impl<'de> Deserialize<'de> for NodeId {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<NodeId, D::Error> {
            deserializer.deserialize_str(ParsedFrom(PhantomData, "a node id of 128 hex characters"))
        }
    }

    impl Serialize for Node {
        fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
            serializer.collect_str(self)
        }
    }

    impl<'de> Deserialize<'de> for Node {
        fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Node, D::Error> {
            deserializer.deserialize_str(ParsedFrom(PhantomData, "an enode URL"))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_id_in_an_enode_url_is_explained_once() {
        let err = "enode://abc@1.2.3.4:30303"
            .parse::<Node>()
            .unwrap_err()
            .to_string();
        assert_eq!(err.matches("invalid input").count(), 1, "{err}");
        assert!(err.contains("128"), "{err}");
    }

    /// Fuzz regression (enode_url): the URL's id takes no hex prefix, in either case.
    #[test]
    fn enode_id_with_hex_prefix_is_refused_in_either_case() {
        let id = "ab".repeat(64);
        for prefix in ["0x", "0X"] {
            let url = format!("enode://{prefix}{id}@10.0.0.1:30303");
            assert!(url.parse::<super::Node>().is_err(), "{url} accepted");
        }
        assert!(format!("enode://{id}@10.0.0.1:30303")
            .parse::<super::Node>()
            .is_ok());
    }

    use proptest::prelude::*;

    proptest! {
        /// Whatever decodes is canonical: it re-encodes to exactly the input.
        #[test]
        fn decoding_accepts_only_canonical_bytes(bytes in proptest::collection::vec(any::<u8>(), 0..120)) {
            if let Ok(node) = Node::from_rlp(&bytes) {
                prop_assert_eq!(node.to_rlp(), bytes);
            }
        }

        /// Every node round-trips, and damaging its encoding never decodes to another node
        /// silently re-encoding differently.
        #[test]
        fn nodes_round_trip(id in any::<[u8; 32]>(), v6 in any::<bool>(), ip in any::<[u8; 16]>(), udp in any::<u16>(), tcp in any::<u16>(), at in 0usize..100, byte in any::<u8>()) {
            let ip = if v6 { IpAddr::V6(Ipv6Addr::from(ip)) } else { IpAddr::V4(Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3])) };
            let mut full_id = [0u8; 64];
            full_id[..32].copy_from_slice(&id);
            let node = Node::new(NodeId(full_id), ip, udp, tcp);
            let mut bytes = node.to_rlp();
            prop_assert_eq!(Node::from_rlp(&bytes).unwrap(), node.clone());
            let at = at % bytes.len();
            bytes[at] = byte;
            if let Ok(other) = Node::from_rlp(&bytes) {
                prop_assert_eq!(other.to_rlp(), bytes);
            }
        }
    }
}
