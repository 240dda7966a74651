//! Fault injection for tests: a hook called at each named step of a file operation that can
//! make the step fail as the disk would. Production code passes through at the cost of one
//! branch.

use std::fmt;
use std::io;
use std::sync::Arc;

/// A hook that is asked before each named I/O step and may fail it.
///
/// The steps are `segment.create`, `segment.write`, `segment.allocate`, `segment.fsync`,
/// `segment.rename`, `segment.dirsync` (creating a segment), `log.allocate` (growing the
/// active segment), `log.fsync` (syncing appended records), and `compact.create` (before a
/// compaction changes anything, as it checks that it can create its file, and again as it
/// creates it), `compact.write`, `compact.fsync`, `compact.rename`, `compact.dirsync`,
/// `compact.remove` (compaction).
#[derive(Clone, Default)]
pub struct FailPoints(Option<Arc<Hook>>);

type Hook = dyn Fn(&str) -> io::Result<()> + Send + Sync;

impl FailPoints {
    /// No hook: every step passes.
    pub const NONE: FailPoints = FailPoints(None);

    /// A hook that is called with each step's name; an `Err` fails that step.
    #[cfg_attr(not(feature = "__internal_testing"), allow(dead_code))]
    pub fn new(hook: impl Fn(&str) -> io::Result<()> + Send + Sync + 'static) -> FailPoints {
        FailPoints(Some(Arc::new(hook)))
    }

    /// Asks the hook about `step`.
    pub(crate) fn check(&self, step: &str) -> io::Result<()> {
        match &self.0 {
            Some(hook) => hook(step),
            None => Ok(()),
        }
    }
}

impl fmt::Debug for FailPoints {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(if self.0.is_some() {
            "FailPoints(hook)"
        } else {
            "FailPoints(none)"
        })
    }
}
