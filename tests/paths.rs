//! A database opened through a relative path stays where it was opened when the process
//! changes its working directory.
//!
//! The test changes the working directory of the whole process, which every test running
//! beside it would see: it must stay the only test in this file (its own test binary).

use std::time::SystemTime;

use peerlog::{Error, NodeDb, Options};

mod common;
use common::id;

/// `NodeDb::open_with` makes a relative `dir` absolute once, at open. Kept as given
/// (`Inner::dir`, `LogWriter::dir`), a relative path would be resolved by every later
/// rotation, compaction listing and retirement against whatever the working directory is
/// then: after a `set_current_dir`, the next rotation fails (or, if the new working directory
/// holds a `db`, writes into that other directory).
#[test]
fn relative_path_survives_a_change_of_working_directory() {
    let (home, elsewhere) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let original = std::env::current_dir().unwrap();
    std::env::set_current_dir(home.path()).unwrap();
    let opts = Options {
        segment_size: 4096,
        compact_min_bytes: u64::MAX,
        ..Options::default()
    };
    let db = NodeDb::open_with("db", 1, id(0), opts).unwrap();
    std::env::set_current_dir(elsewhere.path()).unwrap();
    let now = SystemTime::now();
    // 100 pings of 96 bytes: more than two 4 KiB segments.
    let written: Result<Vec<()>, Error> =
        (0..100).map(|i| db.update_last_ping(&id(i), now)).collect();
    std::env::set_current_dir(original).unwrap();
    assert!(written.is_ok(), "{written:?}");
}
