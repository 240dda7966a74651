//! Group commit: a background thread that makes appended records durable with one
//! `fdatasync` for all the records written since its last pass, and lets callers of `sync()`
//! wait for the pass that covers them instead of syncing themselves.
//!
//! With many callers, a round costs one fsync plus the scheduling around it, and on a machine
//! with few cores the scheduling is what limits the rate (each wakeup is a context switch,
//! often a cross-CPU interrupt). So the syncer thread is woken once per round, by the caller
//! that completes the batch it waits for, not by every caller; and the callers a pass covered
//! are unparked one by one, each checking an atomic, instead of all being woken at once to
//! queue up on a mutex. The unparking is shared: each caller woken wakes another, so that
//! both the syncer and the callers already running spread the wakeups over the CPUs.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, Weak};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::db::Inner;
use crate::Error;

/// A caller of `sync()` waiting for the pass that makes `seq` durable.
struct Waiter {
    seq: u64,
    thread: Thread,
}

#[derive(Default)]
struct Progress {
    /// The syncer failed; the database is poisoned.
    failed: Option<String>,
    stop: bool,
    /// The syncer made its last pass: waiters it did not cover will never be covered.
    finished: bool,
    /// Callers not yet covered by a pass. Only the syncer removes them, as it unparks them.
    waiters: Vec<Waiter>,
    /// How many callers the last pass covered: the next pass waits briefly for as many, so
    /// that concurrent writers share one fsync instead of each getting a small one.
    last_batch: usize,
    /// The number of waiters the sleeping syncer waits for: only the caller that brings
    /// `waiters` to it wakes the syncer, which otherwise would wake for every caller just to
    /// find the batch incomplete (0: the syncer is not waiting for callers).
    wake_at: usize,
}

/// Longest a pass waits for the callers it expects to gather.
const GATHER_AT_MOST: Duration = Duration::from_millis(1);

/// State shared between the syncer thread and the callers waiting on it.
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Every record up to this sequence number is durable. Stored under the `progress` lock,
    /// so that a caller that checked it there before registering cannot miss the pass that
    /// covers it; read without the lock by waiters that were unparked.
    synced_through: AtomicU64,
    progress: Mutex<Progress>,
    /// Callers covered by the last pass and not yet unparked. The syncer empties it; callers
    /// it already woke help.
    to_wake: Mutex<Vec<Thread>>,
    /// Signalled when the batch the syncer waits for is complete, or the database closes.
    wake: Condvar,
}

impl GroupCommit {
    fn progress(&self) -> MutexGuard<'_, Progress> {
        self.progress.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn synced(&self, seq: u64) -> bool {
        self.synced_through.load(Ordering::Acquire) >= seq
    }

    /// Unparks one covered caller; false when none is left.
    fn wake_one(&self) -> bool {
        let next = self.to_wake.lock().unwrap_or_else(|e| e.into_inner()).pop();
        match next {
            Some(thread) => {
                thread.unpark();
                true
            }
            None => false,
        }
    }

    /// Blocks until every record up to `seq` is durable.
    pub fn wait_for(&self, seq: u64) -> Result<(), Error> {
        if self.synced(seq) {
            return Ok(());
        }
        {
            let mut progress = self.progress();
            if self.synced(seq) {
                return Ok(());
            }
            if let Some(failure) = &progress.failed {
                return Err(Error::Poisoned(failure.clone()));
            }
            if progress.stop {
                return Err(Error::Closed);
            }
            progress.waiters.push(Waiter {
                seq,
                thread: std::thread::current(),
            });
            let completes_batch = progress.waiters.len() == progress.wake_at;
            drop(progress);
            if completes_batch {
                self.wake.notify_one();
            }
        }
        loop {
            // An unpark that came before the park is not lost (it leaves a token), but a park
            // may also return spuriously or for a token left over from an earlier call: check.
            std::thread::park();
            if self.synced(seq) {
                // Wake another covered caller before going back to work: the syncer alone
                // would wake them one after another.
                self.wake_one();
                return Ok(());
            }
            let progress = self.progress();
            if progress.finished {
                return Err(match &progress.failed {
                    Some(failure) => Error::Poisoned(failure.clone()),
                    None => Error::Closed,
                });
            }
        }
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

/// The syncer thread: a pass for each batch of callers, or every `max_delay` for writes
/// nobody waits for, and a last one on close.
fn run(weak: Weak<Inner>, max_delay: Duration) {
    loop {
        let Some(inner) = weak.upgrade() else { return };
        let group = inner.group_commit();
        let stop = {
            let mut progress = group.progress();
            // After a pass that covered callers, expect as many again, but only briefly: the
            // 1 ms also bounds how long a lone caller waits when others stopped calling.
            // Otherwise sleep until the first caller, or the tick that syncs writes nobody
            // asked to be synced.
            let (expect, timeout) = match progress.last_batch {
                0 => (1, max_delay),
                n => (n, GATHER_AT_MOST.min(max_delay)),
            };
            progress.wake_at = expect;
            let (mut progress, _) = group
                .wake
                .wait_timeout_while(progress, timeout, |p| !p.stop && p.waiters.len() < expect)
                .unwrap_or_else(|e| e.into_inner());
            progress.wake_at = 0;
            progress.last_batch = progress.waiters.len();
            progress.stop
        };
        let outcome = inner.sync_outside_lock(group.synced_through.load(Ordering::Acquire));
        let (covered, finished): (Vec<Waiter>, bool) = {
            let mut progress = group.progress();
            match outcome {
                Ok(Some(through)) => {
                    group.synced_through.fetch_max(through, Ordering::Release);
                }
                Ok(None) => {}
                Err(e) => progress.failed = Some(e.to_string()),
            }
            progress.finished = stop || progress.failed.is_some();
            if progress.finished {
                (std::mem::take(&mut progress.waiters), true)
            } else {
                let through = group.synced_through.load(Ordering::Acquire);
                let (covered, waiting) = std::mem::take(&mut progress.waiters)
                    .into_iter()
                    .partition(|w| w.seq <= through);
                progress.waiters = waiting;
                (covered, false)
            }
        };
        // Unparked after the `progress` lock is released, so that they do not wake only to
        // block on it. The woken callers' help only speeds this up: the syncer itself goes on
        // until none is left parked.
        group
            .to_wake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(covered.into_iter().map(|w| w.thread));
        while group.wake_one() {}
        if finished {
            return;
        }
    }
}
