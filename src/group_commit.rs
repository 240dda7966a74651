//! Group commit: callers of `sync()` share `fdatasync`s, and writes nobody waits for are made
//! durable within `max_delay` by a background thread.
//!
//! The first caller that finds no fsync in flight becomes the *leader*: it syncs, on its own
//! thread, everything written so far, then releases every caller that fsync covered. Callers
//! that arrive while an fsync is in flight park until it ends; the first of them it does not
//! cover (they wrote after it started) is woken to lead the next one. As in LevelDB and
//! RocksDB, a lone caller syncs with no thread hop at all, and concurrent callers share one
//! fsync per round. A leader first waits briefly until as many callers as the last fsync saw
//! are queued with it: without that, callers covered by one fsync come back while the next is
//! already in flight, and they split into groups that take turns (measured: about half the
//! rate with 16 threads in most runs here). It waits at most until 1 ms after the last fsync ended: callers
//! released by it that have not come back by then are not coming (their thread does
//! something else, or has ended), so a lone caller, or the first caller after a burst of
//! concurrent ones, syncs at once instead of paying for a gathering nobody joins. The leader
//! gathers registered among the waiters, and the caller whose arrival completes the group
//! leads the fsync in its place: no wake-up stands between the last arrival and the fsync
//! (with 16 callers on two cores, a wake-up is a sizeable part of a round). The
//! background thread is one more caller, every `max_delay`, that only syncs when something
//! was written after the last fsync (it neither gathers nor is waited for).
//!
//! On a machine with few cores the wake-ups are what limit the rate with many callers (each
//! is a context switch, often a cross-CPU interrupt), so the covered callers are unparked one
//! by one, each checking an atomic, instead of all being woken at once to queue up on a
//! mutex; and the unparking is shared: each caller woken wakes another.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, Thread};
use std::time::{Duration, Instant};

use crate::Error;

/// A caller parked until an fsync covers `seq`.
struct Waiter {
    seq: u64,
    thread: Thread,
    /// A caller of `sync()`, which a leader gathers (not the background syncer).
    gathered: bool,
}

/// Longest a leader waits for the callers it expects to gather, counted from the end of the
/// last fsync (when those callers were released).
const GATHER_AT_MOST: Duration = Duration::from_millis(1);

struct Progress {
    /// An fsync failed; the database is poisoned.
    failed: Option<String>,
    /// The database is closing: no new fsync starts.
    closed: bool,
    /// A leader's fsync is in flight.
    syncing: bool,
    /// Callers parked until an fsync covers them, in order of arrival. A waiter is removed by
    /// the leader that covers it (or, after a failure or close, releases it), or that picks it
    /// to lead the next fsync.
    waiters: Vec<Waiter>,
    /// How many `sync()` callers the last fsync saw (itself and its waiters, covered or
    /// not): the next leader waits briefly until as many wait with it, so that concurrent
    /// callers share one fsync instead of splitting into groups that alternate.
    expect: usize,
    /// The count of gathered callers (the gatherer and the callers of `sync()` waiting with
    /// it) at which the last one to register leads the fsync in the gatherer's place (0: no
    /// gathering).
    gather_at: usize,
    /// The caller gathering: it set `syncing` and waits, registered among the waiters, until
    /// `gather_at` callers are there or its time is up, whichever comes first.
    gatherer: Option<std::thread::ThreadId>,
    /// Longest a leader gathers after the last fsync ended: [`GATHER_AT_MOST`], or
    /// `max_delay` if shorter.
    gather_for: Duration,
    /// When the last fsync that saw a caller of `sync()` ended (its callers were released
    /// then).
    last_end: Option<Instant>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            failed: None,
            closed: false,
            syncing: false,
            waiters: Vec::new(),
            expect: 0,
            gather_at: 0,
            gatherer: None,
            gather_for: GATHER_AT_MOST,
            last_end: None,
        }
    }
}

impl Progress {
    /// `sync()` callers waiting, and the leader.
    fn gathered(&self) -> usize {
        1 + self.waiting_gathered()
    }

    /// `sync()` callers registered as waiting (with a gatherer among them while it gathers).
    fn waiting_gathered(&self) -> usize {
        self.waiters.iter().filter(|w| w.gathered).count()
    }
}

/// State shared between the callers of `sync()` and the background syncer.
#[derive(Default)]
pub(crate) struct GroupCommit {
    /// Every record up to this sequence number is durable. Raised under the `progress` lock,
    /// so that a caller that checked it there before registering cannot miss the fsync that
    /// covers it; read without the lock by callers that were unparked.
    synced_through: AtomicU64,
    progress: Mutex<Progress>,
    /// Callers covered by the last fsync and not yet unparked. The leader empties it; callers
    /// it already woke help.
    to_wake: Mutex<Vec<Thread>>,
    /// The background syncer sleeps on it between ticks; signalled on close.
    tick: Condvar,
}

/// Resets a leader's state if its sync panics, so that the callers waiting behind it are not
/// stranded: they wake and one of them leads again.
struct Leading<'a> {
    group: &'a GroupCommit,
    done: bool,
}

impl Drop for Leading<'_> {
    fn drop(&mut self) {
        if !self.done {
            self.group.finish(|progress| {
                progress.syncing = false;
                (std::mem::take(&mut progress.waiters), None)
            });
        }
    }
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

    /// Blocks until every record up to `seq` is durable: leads an fsync with `sync` when none
    /// is in flight, else waits for the one in flight (and leads the next one if it does not
    /// cover `seq`). `sync` is given the sequence number already durable, makes everything
    /// written so far durable and returns the sequence number it covers (`Ok(None)`: nothing
    /// to cover). `gathered`: a caller of `sync()` (false for the background syncer, which
    /// neither waits to gather callers nor is waited for).
    pub fn wait_for(
        &self,
        seq: u64,
        gathered: bool,
        sync: impl FnOnce(u64) -> Result<Option<u64>, Error>,
    ) -> Result<(), Error> {
        if self.synced(seq) {
            return Ok(());
        }
        let mut progress = self.progress();
        loop {
            if self.synced(seq) {
                return Ok(());
            }
            if let Some(failure) = &progress.failed {
                return Err(Error::Poisoned(failure.clone()));
            }
            if !progress.syncing {
                if progress.closed {
                    return Err(Error::Closed);
                }
                progress.syncing = true;
                let expect = progress.expect;
                // Past this, the callers the last fsync released are not coming back.
                let until = progress.last_end.map(|end| end + progress.gather_for);
                if let Some(until) = until.filter(|&until| {
                    gathered && progress.gathered() < expect && Instant::now() < until
                }) {
                    // The callers of the last fsync are on their way back (being woken,
                    // writing): wait for them, briefly, so that this fsync covers them too.
                    // Registered as a waiter: the caller that completes the gathering leads
                    // in this one's place, so that no wake-up stands between the last
                    // arrival and the fsync. Only if they do not come in time does this one
                    // lead.
                    let me = std::thread::current();
                    let id = me.id();
                    progress.gather_at = expect;
                    progress.gatherer = Some(id);
                    progress.waiters.push(Waiter {
                        seq,
                        thread: me,
                        gathered,
                    });
                    loop {
                        drop(progress);
                        std::thread::park_timeout(until.saturating_duration_since(Instant::now()));
                        progress = self.progress();
                        if progress.gatherer != Some(id) {
                            // A caller completed the gathering and leads: wait for its
                            // fsync as any waiter does.
                            break;
                        }
                        if progress.closed || Instant::now() >= until {
                            progress.gatherer = None;
                            progress.gather_at = 0;
                            progress.waiters.retain(|w| w.thread.id() != id);
                            drop(progress);
                            return self.lead(gathered, sync);
                        }
                    }
                    if self.synced(seq) {
                        drop(progress);
                        self.wake_one();
                        return Ok(());
                    }
                    continue;
                }
                drop(progress);
                return self.lead(gathered, sync);
            }
            // An fsync is in flight, or about to start: wait for it (registered once, even
            // if woken early).
            let me = std::thread::current();
            if !progress.waiters.iter().any(|w| w.thread.id() == me.id()) {
                progress.waiters.push(Waiter {
                    seq,
                    thread: me,
                    gathered,
                });
            }
            // Registered, this caller counts among the gathered (as does the gatherer).
            if gathered
                && progress.gather_at > 0
                && progress.waiting_gathered() >= progress.gather_at
            {
                // The last caller the gatherer waited for: it leads the fsync itself, at once,
                // in the gatherer's place (which waits for it as any waiter does).
                let me = std::thread::current().id();
                progress.gatherer = None;
                progress.gather_at = 0;
                progress.waiters.retain(|w| w.thread.id() != me);
                drop(progress);
                return self.lead(gathered, sync);
            }
            drop(progress);
            // An unpark that came before the park is not lost (it leaves a token), but a park
            // may also return spuriously or for a token left over from an earlier call: the
            // loop checks again.
            std::thread::park();
            if self.synced(seq) {
                // Wake another covered caller before going back to work: the leader alone
                // would wake them one after another.
                self.wake_one();
                return Ok(());
            }
            progress = self.progress();
        }
    }

    /// Runs the fsync of a leader (whose `syncing` is set), then releases the callers it
    /// covered and wakes the next leader.
    fn lead(
        &self,
        gathered: bool,
        sync: impl FnOnce(u64) -> Result<Option<u64>, Error>,
    ) -> Result<(), Error> {
        let mut leading = Leading {
            group: self,
            done: false,
        };
        let outcome = sync(self.synced_through.load(Ordering::Acquire));
        let mut failure = None;
        self.finish(|progress| {
            progress.syncing = false;
            match &outcome {
                Ok(Some(through)) => {
                    self.synced_through.fetch_max(*through, Ordering::Release);
                }
                Ok(None) => {}
                Err(e) => {
                    let reason = progress.failed.get_or_insert_with(|| e.to_string());
                    failure = Some(reason.clone());
                }
            }
            if progress.failed.is_some() || progress.closed {
                // Nothing more will be covered: every waiter gets its answer (an error, or
                // Ok if this fsync covered it).
                return (std::mem::take(&mut progress.waiters), None);
            }
            progress.expect = usize::from(gathered) + progress.gathered() - 1;
            if progress.expect > 0 {
                // Callers of `sync()` were released (or are still queued): the next leader
                // may wait for them to come back, until a while after now.
                progress.last_end = Some(Instant::now());
            }
            let through = self.synced_through.load(Ordering::Acquire);
            let mut released = Vec::new();
            let mut next_leader = None;
            progress.waiters.retain_mut(|w| {
                if w.seq <= through {
                    released.push(Waiter {
                        seq: w.seq,
                        thread: w.thread.clone(),
                        gathered: w.gathered,
                    });
                    false
                } else if next_leader.is_none() {
                    next_leader = Some(w.thread.clone());
                    false
                } else {
                    true
                }
            });
            (released, next_leader)
        });
        leading.done = true;
        match failure {
            Some(reason) => Err(Error::Poisoned(reason)),
            None => Ok(()),
        }
    }

    /// Updates the progress with `update`, which returns the waiters to release and the next
    /// leader, and unparks them once the lock is released (so that they do not wake only to
    /// block on it): the next leader first, so that its fsync overlaps the other wake-ups.
    fn finish(&self, update: impl FnOnce(&mut Progress) -> (Vec<Waiter>, Option<Thread>)) {
        let (released, next_leader) = update(&mut self.progress());
        if let Some(thread) = next_leader {
            thread.unpark();
        }
        if released.is_empty() {
            return;
        }
        self.to_wake
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .extend(released.into_iter().map(|w| w.thread));
        // The woken callers' help only speeds this up: the leader itself goes on until none
        // is left parked.
        while self.wake_one() {}
    }

    /// Starts the background syncer: every `max_delay`, `tick` syncs what was written since
    /// the last fsync (as a caller of `sync()`, through [`GroupCommit::wait_for`]). `tick`
    /// returns `None` when the database is gone; the thread also ends after an error (the
    /// database is then poisoned or closed) and on [`GroupCommit::stop`].
    pub fn start(
        self: &Arc<Self>,
        max_delay: Duration,
        mut tick: impl FnMut() -> Option<Result<(), Error>> + Send + 'static,
    ) -> JoinHandle<()> {
        self.progress().gather_for = GATHER_AT_MOST.min(max_delay);
        let group = Arc::clone(self);
        std::thread::Builder::new()
            .name("peerlog-syncer".into())
            .spawn(move || loop {
                {
                    let progress = group.progress();
                    let (progress, _) = group
                        .tick
                        .wait_timeout_while(progress, max_delay, |p| !p.closed)
                        .unwrap_or_else(|e| e.into_inner());
                    if progress.closed {
                        return;
                    }
                }
                match tick() {
                    Some(Ok(())) => {}
                    None | Some(Err(_)) => return,
                }
            })
            .expect("spawning the syncer thread")
    }

    /// Closes: no fsync starts from now on, callers not covered get `Error::Closed` (those
    /// waiting for an fsync in flight get its outcome first), and the background syncer ends.
    pub fn stop(&self) {
        let mut progress = self.progress();
        progress.closed = true;
        let released = if progress.syncing {
            // The leader releases them when its fsync ends; a gatherer is woken to lead now.
            let gatherer = progress.gatherer;
            progress
                .waiters
                .iter()
                .filter(|w| Some(w.thread.id()) == gatherer)
                .map(|w| Waiter {
                    seq: w.seq,
                    thread: w.thread.clone(),
                    gathered: w.gathered,
                })
                .collect()
        } else {
            std::mem::take(&mut progress.waiters)
        };
        drop(progress);
        self.tick.notify_all();
        for waiter in released {
            waiter.thread.unpark();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicUsize;

    /// A fake log whose "writes" are a counter, with a sync that counts its passes and can be
    /// slowed down or made to fail.
    #[derive(Default)]
    struct FakeLog {
        group: GroupCommit,
        written: AtomicU64,
        passes: AtomicUsize,
    }

    impl FakeLog {
        fn write(&self) -> u64 {
            self.written.fetch_add(1, Ordering::SeqCst) + 1
        }

        fn wait(&self, seq: u64, sync: impl FnOnce() -> Result<(), Error>) -> Result<(), Error> {
            self.group.wait_for(seq, true, |_| {
                self.passes.fetch_add(1, Ordering::SeqCst);
                let through = self.written.load(Ordering::SeqCst);
                sync().map(|()| Some(through))
            })
        }
    }

    #[test]
    fn concurrent_waiters_share_fsyncs_and_each_is_covered() {
        let log = Arc::new(FakeLog::default());
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let log = Arc::clone(&log);
                std::thread::spawn(move || {
                    for _ in 0..200 {
                        let seq = log.write();
                        log.wait(seq, || {
                            std::thread::sleep(Duration::from_micros(200));
                            Ok(())
                        })
                        .unwrap();
                        assert!(log.group.synced(seq));
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let passes = log.passes.load(Ordering::SeqCst);
        assert!(passes < 1600, "{passes} fsyncs for 1600 waits: none shared");
        assert!(log.group.progress().waiters.is_empty());
        log.group.stop();
        assert!(matches!(
            log.group.wait_for(u64::MAX, true, |_| Ok(None)),
            Err(Error::Closed)
        ));
    }

    /// The caller that completes a gathering runs the fsync, on its own thread, for itself
    /// and the gatherer; a caller after the gathering's deadline does not gather at all.
    #[test]
    fn the_caller_completing_a_gathering_leads_and_a_late_one_does_not_gather() {
        let log = Arc::new(FakeLog::default());
        {
            // As after an fsync that two callers of `sync()` shared, which ended just now
            // (the deadline pushed far out, so that the gathering waits for the second).
            let mut progress = log.group.progress();
            progress.expect = 2;
            progress.last_end = Some(Instant::now() + Duration::from_secs(3600));
        }
        let first_seq = log.write();
        let gatherer = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.wait(first_seq, || unreachable!("the gatherer led")))
        };
        while log.group.progress().gatherer.is_none() {
            std::thread::sleep(Duration::from_millis(1));
        }
        let seq = log.write();
        let me = std::thread::current().id();
        log.wait(seq, || {
            assert_eq!(std::thread::current().id(), me, "a thread hop");
            Ok(())
        })
        .unwrap();
        gatherer.join().unwrap().unwrap();
        assert_eq!(log.passes.load(Ordering::SeqCst), 1, "one fsync for both");
        assert!(log.group.synced(first_seq));

        // The callers of the last fsync had their time to come back (its deadline is a
        // second past): a lone caller now syncs at once, never gathering. (Were it to gather,
        // for as long as `gather_for` from now, a second, the loop below would see it.)
        {
            let mut progress = log.group.progress();
            progress.expect = 2;
            progress.gather_for = Duration::from_secs(1);
            progress.last_end = Instant::now().checked_sub(Duration::from_secs(2));
        }
        let seq = log.write();
        let lone = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.wait(seq, || Ok(())))
        };
        while !lone.is_finished() {
            assert!(
                log.group.progress().gatherer.is_none(),
                "a lone caller gathered"
            );
            std::thread::yield_now();
        }
        lone.join().unwrap().unwrap();
        assert_eq!(log.passes.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn a_lone_caller_syncs_on_its_own_thread() {
        let log = FakeLog::default();
        let me = std::thread::current().id();
        for _ in 0..3 {
            let seq = log.write();
            log.wait(seq, || {
                assert_eq!(std::thread::current().id(), me, "a thread hop");
                Ok(())
            })
            .unwrap();
        }
        assert_eq!(log.passes.load(Ordering::SeqCst), 3);
        // Covered already: no fsync.
        log.wait(3, || unreachable!()).unwrap();
    }

    /// A leader whose fsync blocks until it is let go and then gives `outcome`, and six
    /// callers that wrote after its fsync started, each parked waiting: `(let go, leader,
    /// followers)`.
    #[allow(clippy::type_complexity)]
    fn leader_and_parked_followers(
        log: &Arc<FakeLog>,
        outcome: fn() -> Result<(), Error>,
    ) -> (
        std::sync::MutexGuard<'static, ()>,
        std::thread::JoinHandle<Result<(), Error>>,
        Vec<std::thread::JoinHandle<Result<(), Error>>>,
    ) {
        let entered = Arc::new(std::sync::Barrier::new(2));
        // Leaked, so that the guard handed back can outlive this function (a test affords it).
        let release: &'static Mutex<()> = Box::leak(Box::new(Mutex::new(())));
        let hold = release.lock().unwrap();
        let leader = {
            let (log, entered) = (Arc::clone(log), Arc::clone(&entered));
            std::thread::spawn(move || {
                let seq = log.write();
                log.wait(seq, || {
                    entered.wait();
                    drop(release.lock().unwrap());
                    outcome()
                })
            })
        };
        entered.wait();
        // Written after the leader's fsync started: it cannot cover them.
        let followers: Vec<_> = (0..6)
            .map(|_| {
                let log = Arc::clone(log);
                let seq = log.write();
                std::thread::spawn(move || log.wait(seq, || Ok(())))
            })
            .collect();
        // Every follower is parked behind the leader's fsync before it ends.
        while log.group.progress().waiters.len() < 6 {
            std::thread::sleep(Duration::from_millis(1));
        }
        (hold, leader, followers)
    }

    #[test]
    fn a_failed_fsync_poisons_every_waiter_and_later_callers() {
        let log = Arc::new(FakeLog::default());
        let (hold, leader, followers) =
            leader_and_parked_followers(&log, || Err(Error::invalid("fsync failed (simulated)")));
        drop(hold);
        assert!(matches!(leader.join().unwrap(), Err(Error::Poisoned(_))));
        for f in followers {
            assert!(matches!(f.join().unwrap(), Err(Error::Poisoned(_))));
        }
        assert_eq!(log.passes.load(Ordering::SeqCst), 1, "a retried fsync");
        let seq = log.write();
        assert!(matches!(log.wait(seq, || Ok(())), Err(Error::Poisoned(_))));
    }

    #[test]
    fn waiters_not_covered_lead_the_next_fsync() {
        let log = Arc::new(FakeLog::default());
        let (hold, leader, followers) = leader_and_parked_followers(&log, || Ok(()));
        drop(hold);
        leader.join().unwrap().unwrap();
        for f in followers {
            f.join().unwrap().unwrap();
        }
        assert!(log.group.synced(7));
        assert!(log.passes.load(Ordering::SeqCst) >= 2);
        assert!(log.group.progress().waiters.is_empty());
    }

    #[test]
    fn a_panicking_leader_does_not_strand_the_waiters() {
        let log = Arc::new(FakeLog::default());
        let seq = log.write();
        let panicked = {
            let log = Arc::clone(&log);
            std::thread::spawn(move || log.wait(seq, || panic!("simulated")))
        };
        assert!(panicked.join().is_err());
        log.wait(seq, || Ok(())).unwrap();
    }

    #[test]
    fn the_syncer_ticks_until_stopped_or_gone() {
        let group = Arc::new(GroupCommit::default());
        let ticks = Arc::new(AtomicUsize::new(0));
        let counted = Arc::clone(&ticks);
        let handle = group.start(Duration::from_millis(1), move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(Ok(()))
        });
        while ticks.load(Ordering::SeqCst) < 3 {
            std::thread::sleep(Duration::from_millis(1));
        }
        group.stop();
        handle.join().unwrap();
        let gone = group.start(Duration::from_millis(1), || None);
        gone.join().unwrap();
    }
}
