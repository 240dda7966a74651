//! Fuzz target `enode_url`: the property is checked by `peerlog::fuzzing::check_enode_url`, which
//! `tests/fuzz_corpus.rs` also runs on every corpus file and kept crash artifact.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peerlog::fuzzing::check_enode_url(data));
