//! Helpers shared by integration tests: node ids and node records numbered by `n`, and a
//! count of the log's fsyncs.

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use peerlog::testing::FailPoints;
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

/// Fail points that inject nothing and count the fsyncs of the log (`log.fsync`), with the
/// count. (Not every test file that includes this module uses it.)
#[allow(dead_code)]
pub fn counting_fsyncs() -> (FailPoints, Arc<AtomicUsize>) {
    let fsyncs = Arc::new(AtomicUsize::new(0));
    let counter = Arc::clone(&fsyncs);
    let points = FailPoints::new(move |step| {
        if step == "log.fsync" {
            counter.fetch_add(1, Ordering::SeqCst);
        }
        Ok(())
    });
    (points, fsyncs)
}
