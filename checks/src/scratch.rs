//! Scratch directories (the harness has no tempfile dependency), and a directory's files.

use std::collections::BTreeMap;
use std::fs;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

// ---------------------------------------------------------------------------------------------
// Scratch directories (the library has no tempfile dependency).

pub(crate) static SCRATCH_COUNTER: AtomicU64 = AtomicU64::new(0);

/// A fresh directory under `$PEERLOG_FUZZ_TMPDIR` (or the system temp dir), removed on drop.
pub(crate) struct Scratch(PathBuf);

impl Scratch {
    pub(crate) fn new() -> Scratch {
        let base = std::env::var_os("PEERLOG_FUZZ_TMPDIR")
            .map(PathBuf::from)
            .unwrap_or_else(std::env::temp_dir);
        let n = SCRATCH_COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        let path = base.join(format!("peerlog-fuzz-{}-{n}-{nanos}", std::process::id()));
        fs::create_dir_all(&path).expect("creating a scratch directory");
        Scratch(path)
    }

    pub(crate) fn sub(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

pub(crate) fn dir_contents(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    let mut out = BTreeMap::new();
    for entry in fs::read_dir(dir).expect("listing a scratch directory") {
        let entry = entry.expect("listing a scratch directory");
        if entry.path().is_file() {
            out.insert(
                entry.file_name().to_string_lossy().into_owned(),
                fs::read(entry.path()).expect("reading a scratch file"),
            );
        }
    }
    out
}
