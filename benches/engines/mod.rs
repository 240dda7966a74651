//! The nodedb workload on other engines, stored the way go-ethereum's discovery database
//! (`p2p/discover/database.go`) stores it: one key per field, `"n:" + id + ":discover"` for
//! the node's RLP, `":lastping"` / `":lastpong"` for Unix seconds and `":findfail"` for the
//! count, both as Go varints (`binary.PutVarint`); a delete removes the node's four keys.

pub mod fjall;
pub mod leveldb;
pub mod redb;

use std::time::UNIX_EPOCH;

use crate::common::Op;

/// A key-value engine that can take the workload.
pub trait Engine {
    fn put(&mut self, key: &[u8], value: &[u8]);
    fn delete(&mut self, key: &[u8]);
}

/// go-ethereum's key for `field` of node `id`.
pub fn key(id: &[u8; 64], field: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(2 + 64 + field.len());
    key.extend_from_slice(b"n:");
    key.extend_from_slice(id);
    key.extend_from_slice(field.as_bytes());
    key
}

/// Go's `binary.PutVarint`: zig-zag, then 7 bits a byte, low bits first.
pub fn varint(v: i64) -> Vec<u8> {
    let mut x = ((v << 1) ^ (v >> 63)) as u64;
    let mut out = Vec::with_capacity(10);
    while x >= 0x80 {
        out.push(x as u8 | 0x80);
        x >>= 7;
    }
    out.push(x as u8);
    out
}

fn unix_secs(at: std::time::SystemTime) -> i64 {
    at.duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

/// Applies one workload operation as go-ethereum's nodedb would.
pub fn apply(engine: &mut impl Engine, op: &Op) {
    match op {
        Op::Update(node) => engine.put(&key(&node.id.0, ":discover"), &node.to_rlp()),
        Op::Ping(id, at) => engine.put(&key(&id.0, ":lastping"), &varint(unix_secs(*at))),
        Op::Pong(id, at) => engine.put(&key(&id.0, ":lastpong"), &varint(unix_secs(*at))),
        Op::Fails(id, fails) => engine.put(&key(&id.0, ":findfail"), &varint(i64::from(*fails))),
        Op::Delete(id) => {
            for field in [":discover", ":lastping", ":lastpong", ":findfail"] {
                engine.delete(&key(&id.0, field));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn varint_matches_go() {
        assert_eq!(super::varint(0), [0]);
        assert_eq!(super::varint(-1), [1]);
        assert_eq!(super::varint(1), [2]);
        assert_eq!(super::varint(64), [0x80, 1]);
    }
}
