//! `node_rlp` and `enode_url`: the node's RLP and enode URL forms round-trip.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use arbitrary::Unstructured;
use peerlog::{Node, NodeId};

/// A node built from fuzzer bytes: IPv4 or IPv6, any ports, any id.
pub fn arbitrary_node(u: &mut Unstructured<'_>) -> arbitrary::Result<Node> {
    let ip = if u.arbitrary()? {
        IpAddr::V4(Ipv4Addr::from(u.arbitrary::<[u8; 4]>()?))
    } else {
        IpAddr::V6(Ipv6Addr::from(u.arbitrary::<[u8; 16]>()?))
    };
    let udp = u.arbitrary()?;
    let tcp = u.arbitrary()?;
    let id = NodeId(u.arbitrary::<[u8; 64]>()?);
    Ok(Node::new(id, ip, udp, tcp))
}

// ---------------------------------------------------------------------------------------------
// node_rlp

/// Decoding never panics; whatever decodes re-encodes to the same bytes (only canonical RLP
/// of the right shape is accepted); any node round-trips through RLP, and no strict prefix of
/// its encoding decodes.
pub fn check_node_rlp(data: &[u8]) {
    if let Ok(node) = Node::from_rlp(data) {
        assert_eq!(
            node.to_rlp(),
            data,
            "Node::from_rlp accepted non-canonical bytes as {node:?}"
        );
    }
    let mut u = Unstructured::new(data);
    if let Ok(node) = arbitrary_node(&mut u) {
        let bytes = node.to_rlp();
        assert_eq!(Node::from_rlp(&bytes).ok(), Some(node.clone()));
        for cut in 0..bytes.len() {
            assert!(
                Node::from_rlp(&bytes[..cut]).is_err(),
                "a {cut}-byte prefix of {node:?}'s RLP decoded"
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// enode_url

/// Parsing never panics; whatever parses prints as a canonical URL that parses back to the same
/// node and prints the same again. The printed form differs from the input only by the
/// documented normalisations: the id in lowercase, `?discport=` dropped when it equals the TCP
/// port, and an IPv6 address in its shortest form. Any node round-trips through its URL.
pub fn check_enode_url(data: &[u8]) {
    if let Ok(url) = std::str::from_utf8(data) {
        if let Ok(node) = url.parse::<Node>() {
            let canonical = node.to_string();
            let again: Node = canonical
                .parse()
                .unwrap_or_else(|e| panic!("{url:?} parsed, its canonical form did not: {e}"));
            assert_eq!(again, node, "{url:?} -> {canonical:?} changed the node");
            assert_eq!(again.to_string(), canonical);
            // Every difference between the input and its canonical form is a documented one.
            let rest = url
                .strip_prefix("enode://")
                .expect("accepted without scheme");
            let (id_hex, rest) = rest.split_once('@').expect("accepted without '@'");
            assert_eq!(id_hex.to_ascii_lowercase(), node.id.to_string());
            let (address, query) = match rest.split_once('?') {
                Some((a, q)) => (a, Some(q)),
                None => (rest, None),
            };
            let (host, tcp) = address.rsplit_once(':').expect("accepted without port");
            assert_eq!(tcp, node.tcp.to_string(), "non-canonical tcp port accepted");
            match query {
                Some(q) => assert_eq!(q, format!("discport={}", node.udp)),
                None => assert_eq!(node.udp, node.tcp),
            }
            match node.ip {
                IpAddr::V4(v4) => assert_eq!(host, v4.to_string(), "non-canonical IPv4"),
                IpAddr::V6(_) => assert!(host.starts_with('[') && host.ends_with(']')),
            }
        }
    }
    let mut u = Unstructured::new(data);
    if let Ok(node) = arbitrary_node(&mut u) {
        let url = node.to_string();
        assert_eq!(
            url.parse::<Node>().ok(),
            Some(node),
            "{url:?} did not round-trip"
        );
    }
}
