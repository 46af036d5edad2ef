//! The ledger's storage: one small async contract (`EventStore`) that maps
//! onto both the embedded SQLite backend and EventStoreDB, one generic
//! subscription and one generic verifier on top of it.
//!
//! Invariants every backend keeps (the conformance suite in `tests/` checks
//! them): an acknowledged append is durable; an append is atomic; positions
//! increase in commit order; a stream's versions run 0, 1, 2, … without gaps;
//! an event id is written at most once.

pub mod clock;
mod error;
pub mod kurrentdb;
mod ledger;
pub mod location;
mod prepare;
mod raw;
pub mod sealing;
pub mod sqlite;
mod subscription;
pub mod verify;

use std::fmt;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use rapport_domain::{LedgerDigest, NewEvent, Position, RecordedEvent, StreamName, Timestamp};

pub use clock::{ManualClock, SharedClock, SystemClock, system_clock};
pub use error::StoreError;
pub use kurrentdb::{KurrentDbOptions, KurrentDbStore};
pub use ledger::{Ledger, OpenOptions};
pub use location::{ClusterLocation, LedgerLocation, LocationError};
pub use prepare::{PreparedEvent, prepare_append};
pub use raw::{Opened, RawEvent, StoredPii};
pub use sqlite::{SqliteOptions, SqliteStore};
pub use subscription::{catch_up_then_live, catch_up_then_live_patiently};
pub use verify::{Finding, FindingKind, Verification, Verifier, verify};

/// Limits on one append call.
pub const APPEND_EVENTS_MAX: usize = 10_000;
/// Appends in one `append_batch`.
pub const APPEND_BATCH_MAX: usize = 10_000;
/// Encoded payload plus personal data of one event.
pub const EVENT_BYTES_MAX: usize = 64 * 1024;
/// The most events one read returns, whatever limit is asked for.
pub const READ_LIMIT_MAX: usize = 10_000;

/// What the caller believes about a stream before appending to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExpectedVersion {
    Any,
    NoStream,
    StreamExists,
    /// The stream's last event has this version.
    Exact(u64),
}

impl ExpectedVersion {
    /// Whether a stream whose last version is `current` satisfies this.
    pub fn admits(self, current: Option<u64>) -> bool {
        match self {
            ExpectedVersion::Any => true,
            ExpectedVersion::NoStream => current.is_none(),
            ExpectedVersion::StreamExists => current.is_some(),
            ExpectedVersion::Exact(version) => current == Some(version),
        }
    }
}

impl fmt::Display for ExpectedVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExpectedVersion::Any => f.write_str("any"),
            ExpectedVersion::NoStream => f.write_str("no stream"),
            ExpectedVersion::StreamExists => f.write_str("an existing stream"),
            ExpectedVersion::Exact(version) => write!(f, "version {version}"),
        }
    }
}

/// The outcome of a successful append (or of an idempotent retry of one).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct AppendResult {
    /// The version of the last event now in the stream from this append.
    pub next_expected_version: u64,
    /// The global position of the append's last event.
    pub position: Position,
}

/// The end of the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LedgerHead {
    pub last_position: Option<Position>,
    pub event_count: u64,
    /// The ledger digest up to `last_position`.
    pub digest: LedgerDigest,
}

/// What a subscription delivers.
#[derive(Clone, Debug, PartialEq)]
pub enum SubscriptionMessage {
    Event(Box<RecordedEvent>),
    /// Every event that existed when the subscription started has been
    /// delivered; from here on events arrive as they are appended.
    CaughtUp,
}

#[async_trait]
pub trait EventStore: Send + Sync + 'static {
    /// Appends atomically: all of `events` or none.
    async fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError>;

    /// Many independent appends, applied in the given order: each is atomic
    /// and checked on its own (a refused one writes nothing and does not
    /// affect the others). Results come back in the same order. Backends
    /// with a single writer apply them in one go; this default appends them
    /// one after another.
    async fn append_batch(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        if appends.len() > APPEND_BATCH_MAX {
            return Err(StoreError::TooManyEvents {
                count: appends.len(),
                limit: APPEND_BATCH_MAX,
            });
        }
        let mut results = Vec::with_capacity(appends.len());
        for (stream, expected, events) in appends {
            results.push(self.append(stream, expected, events).await);
        }
        Ok(results)
    }

    /// Many appends as one: all of them or none. The first refusal is
    /// returned as `StoreError::InBatch` with the refused append's index;
    /// appends already recorded (idempotent retries) count as written.
    async fn append_all_or_nothing(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>, StoreError>;

    /// Events of one stream from `from_version` on; a missing stream is empty.
    async fn read_stream_raw(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError>;

    /// Events in global order, strictly after `after` (from the start if `None`).
    async fn read_all_raw(&self, after: Option<Position>, limit: usize) -> Result<Vec<RawEvent>, StoreError>;

    /// Every event after `after`, in global order, in pages of at most
    /// `page_events`: the whole ledger as it stood when the reading
    /// reached its end (a rebuild). This default reads one page after
    /// another; a backend that can read several at once overrides it.
    fn read_all_pages(
        &self,
        after: Option<Position>,
        page_events: usize,
    ) -> BoxStream<'static, Result<Vec<RawEvent>, StoreError>>
    where
        Self: Clone,
    {
        let store = self.clone();
        let page_events = page_events.clamp(1, READ_LIMIT_MAX);
        futures::stream::try_unfold(Some(after), move |next| {
            let store = store.clone();
            async move {
                let Some(after) = next else { return Ok(None) };
                let page = store.read_all_raw(after, page_events).await?;
                Ok(page.last().map(|last| last.position).map(|last| {
                    let more = page.len() == page_events;
                    (page, more.then_some(Some(last)))
                }))
            }
        })
        .boxed()
    }

    /// Catch-up, then live: every event after `after` once, in order, with a
    /// `CaughtUp` marker between the two phases.
    fn subscribe_all(&self, after: Option<Position>) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>>;

    async fn head(&self) -> Result<LedgerHead, StoreError>;

    /// The ledger digest up to the event at `position` (`None` if there is
    /// no such event). This default folds the ledger from its start;
    /// backends override it with what they keep.
    async fn digest_at(&self, position: Position) -> Result<Option<LedgerDigest>, StoreError> {
        let mut digest = rapport_domain::hashing::GENESIS;
        let mut after = None;
        loop {
            let page = self.read_all_raw(after, READ_LIMIT_MAX).await?;
            let Some(last) = page.last().map(|event| event.position) else {
                return Ok(None);
            };
            for event in &page {
                if event.position > position {
                    return Ok(None);
                }
                digest = rapport_domain::hashing::ledger_digest(&digest, event.position, &event.hash);
                if event.position == position {
                    return Ok(Some(LedgerDigest {
                        position: Some(position),
                        digest,
                    }));
                }
            }
            after = Some(last);
        }
    }

    /// How far recorded time may step back along the global order: none
    /// where one writer stamps every commit; a little where several nodes
    /// stamp their own appends on their own clocks.
    fn recorded_at_skew_millis(&self) -> i64 {
        0
    }

    async fn read_stream(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        let raw = self.read_stream_raw(stream, from_version, limit).await?;
        raw.into_iter().map(RawEvent::decode).collect()
    }

    /// The event with this id in `stream`, if it is there. This default
    /// walks the stream; backends override it with an index look-up.
    async fn read_event(&self, stream: StreamName, event_id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let mut from_version = 0;
        loop {
            let page = self.read_stream_raw(stream, from_version, READ_LIMIT_MAX).await?;
            let Some(last) = page.last().map(|event| event.version) else {
                return Ok(None);
            };
            if let Some(found) = page.into_iter().find(|event| event.event_id == event_id) {
                return found.decode().map(Some);
            }
            from_version = last + 1;
        }
    }

    async fn read_all(&self, after: Option<Position>, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        let raw = self.read_all_raw(after, limit).await?;
        raw.into_iter().map(RawEvent::decode).collect()
    }

    /// The last position recorded at or before `recorded_at`: what the
    /// ledger knew at that moment (`None` if it was still empty). This
    /// default walks the ledger; backends override it with a search.
    async fn position_at(&self, recorded_at: Timestamp) -> Result<Option<Position>, StoreError> {
        let mut known = None;
        loop {
            let page = self.read_all_raw(known, READ_LIMIT_MAX).await?;
            if page.is_empty() {
                return Ok(known);
            }
            for event in &page {
                if event.recorded_at_millis > recorded_at.as_millis() {
                    return Ok(known);
                }
                known = Some(event.position);
            }
        }
    }
}
