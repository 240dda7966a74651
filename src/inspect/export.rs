//! Every event of the live log, in order.

use std::path::Path;

use super::{replay_with_progress, with_listing, InspectError, Progress};
use crate::event::Record;
use crate::journal::replay::ReplayPlan;

/// Every record of the live log of `dir`, in log order.
///
/// The records are collected before they are returned: a read that has to start over (a
/// segment removed by a concurrent compaction) must not have emitted half a log already.
pub fn export(dir: &Path, progress: Progress<'_>) -> Result<Vec<Record>, InspectError> {
    with_listing(dir, |segments| {
        let plan = ReplayPlan::new(segments);
        let mut records = Vec::new();
        replay_with_progress(&plan, progress, |_, _, record| records.push(record))?;
        Ok(records)
    })
}
