//! Catch-up-then-live subscriptions for backends that can wake readers on
//! commit. The ledger itself is the only source of events: a wake-up only
//! says "read again", so no event can be skipped or delivered twice.

use std::collections::VecDeque;

use futures::StreamExt;
use futures::stream::BoxStream;
use rapport_domain::Position;
use tokio::sync::watch;

use crate::{EventStore, RawEvent, StoreError, SubscriptionMessage};

const PAGE_EVENTS: usize = 512;

struct Cursor<S> {
    store: S,
    after: Option<Position>,
    buffer: VecDeque<RawEvent>,
    caught_up_announced: bool,
    commits: watch::Receiver<Option<Position>>,
    finished: bool,
    /// Waits out an unavailable ledger instead of ending (a cluster).
    patient: bool,
    pause: std::time::Duration,
}

/// The longest pause between two reads of an unavailable ledger.
const PATIENT_PAUSE_MAX: std::time::Duration = std::time::Duration::from_secs(5);
const PATIENT_PAUSE_FIRST: std::time::Duration = std::time::Duration::from_millis(100);

/// Delivers every event after `after` in order, a `CaughtUp` marker once the
/// backlog is drained, then each event as it commits. `commits` must be
/// notified after every commit. The stream ends with the store, or after
/// its first error.
pub fn catch_up_then_live<S: EventStore + Clone>(
    store: S,
    after: Option<Position>,
    commits: watch::Receiver<Option<Position>>,
) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
    subscribe(store, after, commits, false)
}

/// As `catch_up_then_live`, for a ledger on the network: while it is
/// unavailable the subscription waits, reading again after pauses that
/// grow to `PATIENT_PAUSE_MAX`, and goes on from the last event it
/// delivered (no gap, no duplicate); any other error ends it.
pub fn catch_up_then_live_patiently<S: EventStore + Clone>(
    store: S,
    after: Option<Position>,
    commits: watch::Receiver<Option<Position>>,
) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
    subscribe(store, after, commits, true)
}

fn subscribe<S: EventStore + Clone>(
    store: S,
    after: Option<Position>,
    commits: watch::Receiver<Option<Position>>,
    patient: bool,
) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
    let cursor = Cursor {
        store,
        after,
        buffer: VecDeque::new(),
        caught_up_announced: false,
        commits,
        finished: false,
        patient,
        pause: PATIENT_PAUSE_FIRST,
    };
    futures::stream::unfold(cursor, next_message).boxed()
}

async fn next_message<S: EventStore>(
    mut cursor: Cursor<S>,
) -> Option<(Result<SubscriptionMessage, StoreError>, Cursor<S>)> {
    loop {
        if cursor.finished {
            return None;
        }
        if let Some(raw) = cursor.buffer.pop_front() {
            cursor.after = Some(raw.position);
            let message = raw.decode().map(|event| SubscriptionMessage::Event(Box::new(event)));
            cursor.finished = message.is_err();
            return Some((message, cursor));
        }
        // Mark the current commit as seen *before* reading, so a commit that
        // lands after the read still wakes us below.
        cursor.commits.borrow_and_update();
        match cursor.store.read_all_raw(cursor.after, PAGE_EVENTS).await {
            Err(StoreError::Unavailable(cause)) if cursor.patient => {
                tracing::warn!(%cause, "the ledger is unavailable; the subscription waits and reads again");
                tokio::time::sleep(cursor.pause).await;
                cursor.pause = (cursor.pause * 2).min(PATIENT_PAUSE_MAX);
                continue;
            }
            Err(error) => {
                cursor.finished = true;
                return Some((Err(error), cursor));
            }
            Ok(page) if !page.is_empty() => {
                cursor.pause = PATIENT_PAUSE_FIRST;
                cursor.buffer.extend(page);
                continue;
            }
            Ok(_) => {}
        }
        if !cursor.caught_up_announced {
            cursor.caught_up_announced = true;
            return Some((Ok(SubscriptionMessage::CaughtUp), cursor));
        }
        if cursor.commits.changed().await.is_err() {
            return None;
        }
    }
}
