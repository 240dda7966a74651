//! Fuzz target `ops_model`: the property is checked by `peerlog::fuzzing::check_ops_model`, which
//! `tests/fuzz_corpus.rs` also runs on every corpus file and kept crash artifact.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peerlog::fuzzing::check_ops_model(data));
