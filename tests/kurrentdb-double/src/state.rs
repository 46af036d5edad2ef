//! What every request handler and the `Double` share: the log behind its
//! mutex, the signals that wake subscriptions, and the armed fault injections.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use tokio::sync::watch;

use crate::log::Log;

/// Subscriptions open at once; one more is refused.
pub(crate) const SUBSCRIPTIONS_MAX: usize = 1_000;
/// One-shot reads streaming at once; one more is refused.
pub(crate) const READS_MAX: usize = 1_000;

/// The state of one running double.
#[derive(Debug)]
pub(crate) struct Shared {
    log: Mutex<Log>,
    /// Bumped after every write: subscriptions wait on it to go on reading.
    appended: watch::Sender<u64>,
    /// Bumped by `drop_subscriptions` and `stop`: every subscription open then
    /// ends with an error.
    drops: watch::Sender<u64>,
    faults: Mutex<Faults>,
    subscriptions: Arc<AtomicUsize>,
    reads: Arc<AtomicUsize>,
}

/// Fault injections armed by the test.
#[derive(Debug, Default)]
struct Faults {
    /// Appends still to fail with UNAVAILABLE, writing nothing.
    failing_appends: u64,
    /// Whether the next successful append loses its answer.
    lose_answer: bool,
}

impl Default for Shared {
    fn default() -> Self {
        Shared {
            log: Mutex::new(Log::default()),
            appended: watch::channel(0).0,
            drops: watch::channel(0).0,
            faults: Mutex::new(Faults::default()),
            subscriptions: Arc::new(AtomicUsize::new(0)),
            reads: Arc::new(AtomicUsize::new(0)),
        }
    }
}

impl Shared {
    /// The log, for one short critical section. A panic while it was held
    /// cannot leave it half-written (every write checks before it changes
    /// anything), so a poisoned lock is taken over.
    pub(crate) fn log(&self) -> MutexGuard<'_, Log> {
        self.log.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn faults(&self) -> MutexGuard<'_, Faults> {
        self.faults.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wakes the subscriptions after a write.
    pub(crate) fn appended(&self) {
        self.appended.send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that wakes after each write.
    pub(crate) fn watch_appends(&self) -> watch::Receiver<u64> {
        self.appended.subscribe()
    }

    /// Ends every subscription open now.
    pub(crate) fn drop_subscriptions(&self) {
        self.drops
            .send_modify(|generation| *generation = generation.wrapping_add(1));
    }

    /// A receiver that wakes when subscriptions are to be dropped.
    pub(crate) fn watch_drops(&self) -> watch::Receiver<u64> {
        self.drops.subscribe()
    }

    pub(crate) fn fail_next_appends(&self, count: u64) {
        self.faults().failing_appends = count;
    }

    pub(crate) fn lose_next_append_answer(&self) {
        self.faults().lose_answer = true;
    }

    /// Whether this append is one of those armed to fail.
    pub(crate) fn take_append_failure(&self) -> bool {
        let mut faults = self.faults();
        if faults.failing_appends == 0 {
            return false;
        }
        faults.failing_appends -= 1;
        true
    }

    /// Whether this successful append is the one armed to lose its answer.
    pub(crate) fn take_lost_answer(&self) -> bool {
        std::mem::take(&mut self.faults().lose_answer)
    }

    /// A place for one more subscription, or `None` at `SUBSCRIPTIONS_MAX`.
    pub(crate) fn open_subscription(&self) -> Option<Slot> {
        Slot::take(&self.subscriptions, SUBSCRIPTIONS_MAX)
    }

    /// A place for one more streaming read, or `None` at `READS_MAX`.
    pub(crate) fn open_read(&self) -> Option<Slot> {
        Slot::take(&self.reads, READS_MAX)
    }

    pub(crate) fn subscription_count(&self) -> usize {
        self.subscriptions.load(Ordering::Acquire)
    }
}

/// One of a bounded number of places, given back when dropped.
#[derive(Debug)]
pub(crate) struct Slot {
    counter: Arc<AtomicUsize>,
}

impl Slot {
    fn take(counter: &Arc<AtomicUsize>, max: usize) -> Option<Slot> {
        counter
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |open| {
                (open < max).then_some(open + 1)
            })
            .ok()
            .map(|_| Slot {
                counter: counter.clone(),
            })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn places_are_bounded_and_given_back() {
        let counter = Arc::new(AtomicUsize::new(0));
        let first = Slot::take(&counter, 2).expect("a place");
        let _second = Slot::take(&counter, 2).expect("a place");
        assert!(Slot::take(&counter, 2).is_none());
        drop(first);
        assert!(Slot::take(&counter, 2).is_some());
    }

    #[test]
    fn armed_faults_are_used_up() {
        let shared = Shared::default();
        shared.fail_next_appends(2);
        assert!(shared.take_append_failure());
        assert!(shared.take_append_failure());
        assert!(!shared.take_append_failure());
        shared.lose_next_append_answer();
        assert!(shared.take_lost_answer());
        assert!(!shared.take_lost_answer());
    }
}
