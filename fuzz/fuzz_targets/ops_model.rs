//! Fuzz target `ops_model`: the property is checked by `peerlog_checks::check_ops_model`, which
//! `checks/tests/fuzz_corpus.rs` also runs on every corpus file and kept crash artifact.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peerlog_checks::check_ops_model(data));
