//! peerlog's fuzz harness and the one model of peer state its tests share (never published,
//! not a stable API). It reaches peerlog's internals only through the hidden
//! `peerlog::testing` module.
//!
//! Each `check_*` function takes the raw bytes a fuzzer produced and panics when a property
//! that peerlog promises is violated. The fuzz targets in `fuzz/` call them, and so does
//! `checks/tests/fuzz_corpus.rs`, which replays every committed corpus file and crash
//! artifact, so that a plain `cargo test` exercises the targets without a fuzzer.
//!
//! [`model`] is what the database holds after a sequence of events (eviction rule and expiry
//! included): the `ops_model` target checks against it, and so do the crash, power-loss, API,
//! concurrency and damage tests in `checks/tests/` (peerlog's package ships only tests that
//! need no unpublished crate). [`process`] holds the helpers of the tests that run a child
//! process (`env`, `say`, `splitmix`).
//!
//! | target | input | property |
//! |---|---|---|
//! | `open_segment` | a flags byte, then segment files concatenated (each starts with the magic) | `open` never panics; it fails only with `DamagedHeader`/`NewerFormat` and then changes nothing; every node, signed record, ping, pong and fail count (to no IP and per IP) and the local seq it returns was in an intact record; a reopen gives the same state; a write after it survives a reopen |
//! | `open_snapshot` | a flags byte, then the bytes of `index.snapshot` (or, with [`XOR_TEMPLATE`], a 4-byte offset and bytes XORed over the snapshot a clean close of a template database wrote; [`FIX_SNAPSHOT_CRC`]: trailer checksum recomputed), beside the template's intact log | `open` never panics and succeeds; a snapshot it does not use leaves exactly the state of a full replay (peers, losses, node count, local seq, what `recovery()` reports); the template's own snapshot is used and gives that state; a snapshot whose trailer checksum does not match is never used; a forged one whose checksums match may be used (its contents are then trusted); a write after the open survives a close and a reopen |
//! | `ops_model` | API operations decoded with `arbitrary` (inputs starting with [`OPS_V2`]: with the format-2 operations too) | after every reopen, crash image and torn tail, the state (records, signed records, liveness per id and per IP, local seq, seeds) equals a model's state for the acknowledged prefix, and the sequence numbers add up |
//! | `node_rlp` | bytes | whatever `Node::from_rlp` accepts re-encodes to the same bytes; any node round-trips |
//! | `enode_url` | bytes | whatever parses as an enode URL prints as its canonical form and parses back; any node round-trips |

mod harness;
pub mod model;
mod open_segment;
mod open_snapshot;
mod ops;
mod ops_model;
pub mod process;
mod scratch;
mod text;

pub use model::nanos;
pub use open_segment::{
    check_open_segment, open_segment_input, FIX_HEADER_CRC, FIX_RECORD_CRC, OTHER_VERSION,
};
pub use open_snapshot::{
    check_open_snapshot, open_snapshot_input, open_snapshot_template, FIX_SNAPSHOT_CRC,
    XOR_TEMPLATE,
};
pub use ops::{decode_ops, decode_steps, Op, Step, Time, OPS_V2, OPS_V3};
pub use ops_model::check_ops_model;
pub use text::{arbitrary_node, check_enode_url, check_node_rlp};

/// The fuzz targets, as named in `fuzz/Cargo.toml` and `fuzz/corpus/`.
pub const TARGETS: [&str; 5] = [
    "open_segment",
    "open_snapshot",
    "ops_model",
    "node_rlp",
    "enode_url",
];

/// Runs the check of `target` on `data`.
pub fn check(target: &str, data: &[u8]) {
    match target {
        "open_segment" => check_open_segment(data),
        "open_snapshot" => check_open_snapshot(data),
        "ops_model" => check_ops_model(data),
        "node_rlp" => check_node_rlp(data),
        "enode_url" => check_enode_url(data),
        other => panic!("unknown fuzz target {other:?}"),
    }
}
