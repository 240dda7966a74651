//! Helpers shared by integration tests: node ids and node records numbered by `n`.

use std::net::{IpAddr, Ipv4Addr};

use peerlog::{Node, NodeId};

/// A node id whose first eight bytes are `n`.
pub fn id(n: u64) -> NodeId {
    let mut bytes = [0u8; 64];
    bytes[..8].copy_from_slice(&n.to_be_bytes());
    bytes[8] = 0xaa;
    NodeId(bytes)
}

/// The IPv4 node record of `id(n)`, ports 30303.
pub fn node(n: u64) -> Node {
    Node::new(
        id(n),
        IpAddr::V4(Ipv4Addr::new(198, 51, 100, n as u8)),
        30303,
        30303,
    )
}
