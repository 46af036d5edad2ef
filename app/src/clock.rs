//! The ledger clock: where "now" comes from for every decision the server
//! and the command line take. Domain and projections never read a clock;
//! they are handed `now` from here.

use rapport_domain::Timestamp;

/// The system clock, optionally shifted by a fixed offset, so that a test
/// can hold the server at a chosen time of day (a gated touch happens now,
/// and "now" may be in the contact's quiet hours).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Clock {
    offset_millis: i64,
}

impl Clock {
    pub const SYSTEM: Clock = Clock { offset_millis: 0 };

    /// The system clock moved by `offset_millis` (negative: into the past).
    pub fn shifted(offset_millis: i64) -> Self {
        Clock { offset_millis }
    }

    pub fn now(&self) -> Timestamp {
        let millis = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX));
        Timestamp::from_millis_unchecked(millis.saturating_add(self.offset_millis))
    }
}
