//! Group commit: a background thread that makes appended records durable with one
//! `fdatasync` for all the records written since its last pass, and lets callers of `sync()`
//! wait for the pass that covers them instead of syncing themselves.

use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::db::Inner;
use crate::Error;

#[derive(Default)]
struct Progress {
    /// Every record up to this sequence number is durable.
    synced_through: u64,
    /// A caller of `sync()` is waiting: run a pass now rather than at the next tick.
    requested: bool,
    /// The syncer failed; the database is poisoned.
    failed: Option<String>,
    stop: bool,
    /// The sequence number each caller of `sync()` is waiting for.
    waiters: Vec<u64>,
    /// How many callers the last pass covered: the next pass waits briefly for as many, so
    /// that concurrent writers share one fsync instead of each getting a small one.
    last_batch: usize,
}

impl Progress {
    /// Callers still waiting for a pass.
    fn unsatisfied(&self) -> usize {
        self.waiters
            .iter()
            .filter(|&&seq| seq > self.synced_through)
            .count()
    }
}

/// Longest a pass waits for the callers it expects to gather.
const GATHER_AT_MOST: Duration = Duration::from_millis(1);

/// State shared between the syncer thread and the callers waiting on it.
#[derive(Default)]
pub(crate) struct GroupCommit {
    progress: Mutex<Progress>,
    /// Signalled when `synced_through` advances or the syncer fails.
    synced: Condvar,
    /// Signalled when a caller requests a pass or the database closes.
    wake: Condvar,
}

impl GroupCommit {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Blocks until every record up to `seq` is durable.
    pub fn wait_for(&self, seq: u64) -> Result<(), Error> {
        let mut progress = self.progress();
        progress.waiters.push(seq);
        let outcome = loop {
            if let Some(failure) = &progress.failed {
                break Err(Error::Poisoned(failure.clone()));
            }
            if progress.synced_through >= seq {
                break Ok(());
            }
            if progress.stop {
                break Err(Error::Closed);
            }
            progress.requested = true;
            self.wake.notify_one();
            progress = self
                .synced
                .wait(progress)
                .unwrap_or_else(|e| e.into_inner());
        };
        let mine = progress.waiters.iter().position(|&s| s == seq);
        progress
            .waiters
            .swap_remove(mine.expect("registered above"));
        outcome
    }

    /// Starts the syncer thread for `inner`.
    pub fn start(inner: &Arc<Inner>, max_delay: Duration) -> JoinHandle<()> {
        let weak: Weak<Inner> = Arc::downgrade(inner);
        std::thread::Builder::new()
            .name("peerlog-syncer".into())
            .spawn(move || run(weak, max_delay))
            .expect("spawning the syncer thread")
    }

    /// Makes the thread do a last pass and exit.
    pub fn stop(&self) {
        self.progress().stop = true;
        self.wake.notify_one();
    }
}

fn run(weak: Weak<Inner>, max_delay: Duration) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let group = inner.group_commit();
        let (stop, synced_through) = {
            let progress = group.progress();
            let (progress, _) = group
                .wake
                .wait_timeout_while(progress, max_delay, |p| !p.requested && !p.stop)
                .unwrap_or_else(|e| e.into_inner());
            // Gather: give as many callers as the last pass had a moment to join this one.
            let gather = GATHER_AT_MOST.min(max_delay);
            let (mut progress, _) = group
                .wake
                .wait_timeout_while(progress, gather, |p| {
                    p.requested && !p.stop && p.unsatisfied() < p.last_batch
                })
                .unwrap_or_else(|e| e.into_inner());
            progress.last_batch = progress.unsatisfied();
            progress.requested = false;
            (progress.stop, progress.synced_through)
        };
        let outcome = inner.sync_outside_lock(synced_through);
        let mut progress = group.progress();
        match outcome {
            Ok(Some(through)) => progress.synced_through = progress.synced_through.max(through),
            Ok(None) => {}
            Err(e) => progress.failed = Some(e.to_string()),
        }
        group.synced.notify_all();
        if stop || progress.failed.is_some() {
            return;
        }
    }
}
