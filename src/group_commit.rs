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
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::Duration;

use crate::Error;

/// What the syncer thread calls for a pass: given the sequence number already durable, makes
/// everything written so far durable and returns the sequence number it covers (`Ok(None)`:
/// nothing to cover); `None` when the database is gone and the thread should end.
pub(crate) trait SyncFn:
    FnMut(u64) -> Option<Result<Option<u64>, Error>> + Send + 'static
{
}

impl<F: FnMut(u64) -> Option<Result<Option<u64>, Error>> + Send + 'static> SyncFn for F {}

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

    /// Starts the syncer thread, which makes passes with `sync`.
    pub fn start(self: &Arc<Self>, max_delay: Duration, sync: impl SyncFn) -> JoinHandle<()> {
        let group = Arc::clone(self);
        std::thread::Builder::new()
            .name("peerlog-syncer".into())
            .spawn(move || run(&group, max_delay, sync))
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
fn run(group: &GroupCommit, max_delay: Duration, mut sync: impl SyncFn) {
    loop {
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
        let Some(outcome) = sync(group.synced_through.load(Ordering::Acquire)) else {
            return;
        };
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

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A group commit over a fake log whose "writes" are a counter, syncing with `sync`.
    fn started(
        sync: impl Fn(u64) -> Result<(), Error> + Send + 'static,
    ) -> (
        Arc<GroupCommit>,
        Arc<AtomicU64>,
        Arc<AtomicUsize>,
        JoinHandle<()>,
    ) {
        let group = Arc::new(GroupCommit::default());
        let written = Arc::new(AtomicU64::new(0));
        let passes = Arc::new(AtomicUsize::new(0));
        let (w, p) = (Arc::clone(&written), Arc::clone(&passes));
        let handle = group.start(Duration::from_secs(10), move |_synced| {
            p.fetch_add(1, Ordering::SeqCst);
            let through = w.load(Ordering::SeqCst);
            Some(sync(through).map(|()| Some(through)))
        });
        (group, written, passes, handle)
    }

    #[test]
    fn concurrent_waiters_share_passes_and_each_is_covered() {
        let (group, written, passes, handle) = started(|_| Ok(()));
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let (group, written) = (Arc::clone(&group), Arc::clone(&written));
                std::thread::spawn(move || {
                    for _ in 0..50 {
                        let seq = written.fetch_add(1, Ordering::SeqCst) + 1;
                        group.wait_for(seq).unwrap();
                        assert!(group.synced(seq));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert!(passes.load(Ordering::SeqCst) <= 400);
        group.stop();
        handle.join().unwrap();
        assert!(matches!(group.wait_for(u64::MAX), Err(Error::Closed)));
    }

    #[test]
    fn a_failed_pass_poisons_every_waiter_and_later_callers() {
        let (group, written, _, handle) =
            started(|_| Err(Error::invalid("fsync failed (simulated)")));
        written.store(5, Ordering::SeqCst);
        assert!(matches!(group.wait_for(5), Err(Error::Poisoned(_))));
        assert!(matches!(group.wait_for(6), Err(Error::Poisoned(_))));
        handle.join().unwrap();
    }

    #[test]
    fn the_thread_ends_when_the_database_is_gone() {
        let group = Arc::new(GroupCommit::default());
        let handle = group.start(Duration::from_millis(1), |_| None);
        handle.join().unwrap();
    }
}
