//! Fuzz target `open_snapshot`: the property is checked by `peerlog_checks::check_open_snapshot`, which
//! `checks/tests/fuzz_corpus.rs` also runs on every corpus file and kept crash artifact.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| peerlog_checks::check_open_snapshot(data));
