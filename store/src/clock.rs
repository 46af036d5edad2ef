//! The clocks a ledger is opened with: the system's, and a manual one that
//! tests set and move by hand, so that no test sleeps to make time pass.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use rapport_domain::Timestamp;
use rapport_domain::time::Clock;

/// A clock shared by the writer, the application and the server.
pub type SharedClock = Arc<dyn Clock>;

/// The operating system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis_unchecked(millis)
    }
}

/// The system clock, shared.
pub fn system_clock() -> SharedClock {
    Arc::new(SystemClock)
}

/// A clock that stands still until it is set or advanced.
#[derive(Debug)]
pub struct ManualClock {
    millis: AtomicI64,
}

impl ManualClock {
    pub fn starting_at(at: Timestamp) -> Arc<ManualClock> {
        Arc::new(ManualClock {
            millis: AtomicI64::new(at.as_millis()),
        })
    }

    pub fn set(&self, at: Timestamp) {
        self.millis.store(at.as_millis(), Ordering::SeqCst);
    }

    pub fn advance_millis(&self, millis: i64) {
        self.millis.fetch_add(millis, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> Timestamp {
        Timestamp::from_millis_unchecked(self.millis.load(Ordering::SeqCst))
    }
}
