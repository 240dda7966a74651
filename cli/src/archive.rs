//! `export --with-archive`: every event of the live log and of `archive/`, in sequence
//! order, each once.
//!
//! The library has no public reader of archived segments yet: `inspect::history` reads them
//! (through private helpers) for one node only. Until `peerlog::inspect` gains
//! `export_with_archive` (see the function's doc), this stand-in answers exactly when there is
//! nothing archived (the live log is then the whole history) and refuses, in one line,
//! otherwise. Replacing it is one line in main.rs: call `inspect::export_with_archive`.

use std::path::Path;

use peerlog::inspect::{self, InspectError, Progress};
use peerlog::Record;

use crate::CliError;

/// Stand-in for the library function this needs:
///
/// ```text
/// /// Every record of the live log of `dir` and of its `archive/`, in sequence order, each
/// /// once: every ordinary segment of the current generation (live, superseded or archived),
/// /// and a compacted segment only where no ordinary segment covers its range (the sources
/// /// and deduplication of `history`, for every id and the local seq).
/// pub fn export_with_archive(dir: &Path, progress: Progress<'_>)
///     -> Result<Vec<Record>, InspectError>
/// ```
pub fn export_with_archive(dir: &Path, progress: Progress<'_>) -> Result<Vec<Record>, CliError> {
    let archived = match inspect::segments(&dir.join("archive")) {
        Ok(segments) => segments,
        Err(InspectError::NoSuchDir(_) | InspectError::NoDatabase(_)) => Vec::new(),
        Err(e) => return Err(e.into()),
    };
    if archived.is_empty() {
        return Ok(inspect::export(dir, progress)?);
    }
    Err(CliError::Usage(format!(
        "export --with-archive: {} holds archived segments, and this build of the peerlog \
         library cannot read them for export yet (it lacks inspect::export_with_archive); \
         peerlog history NODE shows one node's archived events",
        dir.join("archive").display()
    )))
}
