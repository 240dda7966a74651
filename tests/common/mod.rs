//! Helpers shared by integration tests: node ids and node records numbered by `n` (signed
//! ones in `records`), times that never expire, a snapshot of a directory's files, a scratch
//! directory. Public API only, so that every test of the package that does not need internals
//! builds without the `__internal_testing` feature. The tests of `checks/tests/` include this
//! module too (`checks/tests/common/mod.rs`). (Not every test file that includes this module
//! uses every helper, hence the `allow`.)
#![allow(dead_code)]

pub mod records;

use std::fs;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use peerlog::{Node, NodeId};

/// The segment files of a database directory, in name (= id) order.
pub fn segments(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "seg"))
        .collect();
    files.sort();
    files
}

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

/// Times in the 2090s: nothing expires when `compact()` expires first.
pub fn at(n: u64) -> SystemTime {
    UNIX_EPOCH + Duration::from_secs(4_000_000_000 + n)
}

/// Every file directly in `dir` (name and contents; empty for a directory), sorted by name.
pub fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut all: Vec<_> = fs::read_dir(dir)
        .unwrap()
        .map(|e| {
            let e = e.unwrap();
            (
                e.file_name().to_string_lossy().into_owned(),
                fs::read(e.path()).unwrap_or_default(),
            )
        })
        .collect();
    all.sort();
    all
}

#[allow(unused_imports)]
pub use records::{
    record_id, record_ip4, record_ip6, record_key, signed_record, signed_record_with,
    stored_record, RecordShape,
};

/// A scratch directory on a tmpfs (`/dev/shm`) where there is one, else in the system temp
/// dir: for tests that open and close many copies of a database and do not test durability,
/// so that every close does not wait for an fsync of the disk.
pub fn scratch_dir() -> tempfile::TempDir {
    let shm = Path::new("/dev/shm");
    if shm.is_dir() {
        if let Ok(dir) = tempfile::Builder::new().prefix("peerlog-").tempdir_in(shm) {
            return dir;
        }
    }
    tempfile::tempdir().unwrap()
}
