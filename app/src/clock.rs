//! The one clock: where "now" comes from for every decision the server and
//! the command line take, and for the time the ledger records each commit
//! at. Domain and projections never read a clock; they are handed `now`.

pub use rapport_domain::time::Clock;
pub use rapport_store::{ManualClock, SharedClock, SystemClock, system_clock};
