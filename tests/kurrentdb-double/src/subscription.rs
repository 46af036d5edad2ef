//! Catch-up subscriptions to a stream or to `$all`.
//!
//! Each is a cursor over the log in its own task: it confirms, sends what the
//! log holds after its start (exclusive, as the server), announces
//! `caught_up`, then waits for writes and goes on from where it stopped. The
//! log is the only buffer: the task sends through a bounded channel and
//! simply waits while the reader is slow, which is what the server does when
//! a subscriber falls behind (it goes back to reading the log; it does not
//! drop the subscription). A dropped subscription (`drop_subscriptions`,
//! `stop`) ends with UNAVAILABLE next, ahead of what the double still has
//! queued (what HTTP/2 already carries reaches the client first).

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::{mpsc, watch};
use tokio_stream::Stream;
use tokio_stream::wrappers::ReceiverStream;
use tonic::Status;
use tonic::codegen::BoxStream;
use uuid::Uuid;

use crate::filter::Filter;
use crate::log::StreamView;
use crate::proto::event_store::client::streams::ReadResp;
use crate::reading::{AllFrom, CHANNEL_CAPACITY, SCAN_PAGE, STREAM_PAGE, StreamFrom, send, visible};
use crate::state::{Shared, Slot};
use crate::status;
use crate::wire::{self, UuidForm};

/// A subscription to one stream.
#[derive(Debug)]
pub(crate) struct StreamSubscription {
    pub stream: String,
    pub from: StreamFrom,
    pub form: UuidForm,
}

/// A subscription to `$all`, filtered or not.
#[derive(Debug)]
pub(crate) struct AllSubscription {
    pub from: AllFrom,
    /// The filter and its checkpoint interval in considered records
    /// (`checkpointIntervalMultiplier` × the window's `max`, 32 by default).
    pub filter: Option<(Filter, u64)>,
    pub form: UuidForm,
}

type Sender = mpsc::Sender<Result<ReadResp, Status>>;

/// Starts a stream subscription.
pub(crate) fn subscribe_to_stream(
    shared: Arc<Shared>,
    subscription: StreamSubscription,
) -> Result<BoxStream<ReadResp>, Status> {
    let slot = open(&shared)?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let appends = shared.watch_appends();
    let dropping = Dropping::new(rx, shared.watch_drops());
    tokio::spawn(follow_stream(shared, subscription, tx, appends, slot));
    Ok(Box::pin(dropping))
}

/// Starts a `$all` subscription.
pub(crate) fn subscribe_to_all(
    shared: Arc<Shared>,
    subscription: AllSubscription,
) -> Result<BoxStream<ReadResp>, Status> {
    let slot = open(&shared)?;
    let (tx, rx) = mpsc::channel(CHANNEL_CAPACITY);
    let appends = shared.watch_appends();
    let dropping = Dropping::new(rx, shared.watch_drops());
    tokio::spawn(follow_all(shared, subscription, tx, appends, slot));
    Ok(Box::pin(dropping))
}

fn open(shared: &Shared) -> Result<Slot, Status> {
    shared
        .open_subscription()
        .ok_or_else(|| status::full("too many subscriptions open on the test double"))
}

/// Waits for the next write; `false` when the client has gone.
async fn wait_for_writes(appends: &mut watch::Receiver<u64>, tx: &Sender) -> bool {
    tokio::select! {
        changed = appends.changed() => changed.is_ok(),
        () = tx.closed() => false,
    }
}

async fn follow_stream(
    shared: Arc<Shared>,
    subscription: StreamSubscription,
    tx: Sender,
    mut appends: watch::Receiver<u64>,
    _slot: Slot,
) {
    let StreamSubscription { stream, from, form } = subscription;
    if send(&tx, wire::confirmation(Uuid::new_v4().to_string())).await.is_err() {
        return;
    }
    // `next`: the first revision still to send; `checkpoint`: the last one
    // considered, which `caught_up` reports.
    let (mut next, mut checkpoint) = {
        let log = shared.log();
        match from {
            StreamFrom::Start => (0, None),
            StreamFrom::End => {
                let last = log.last_revision(&stream);
                (last.map_or(0, |revision| revision.saturating_add(1)), last)
            }
            StreamFrom::Revision(revision) => (revision.saturating_add(1), Some(revision)),
        }
    };
    let mut live = false;
    loop {
        let (page, deleted, tombstone) = {
            let log = shared.log();
            let deleted = log.stream_view(&stream) == StreamView::Deleted;
            (
                log.stream_forward(&stream, next, STREAM_PAGE),
                deleted,
                log.tombstone_of(&stream),
            )
        };
        // Catching up on a tombstoned stream fails at once, as on the server;
        // a live subscriber sees the tombstone event first.
        if deleted && !live {
            let _ = tx.send(Err(status::stream_deleted(&stream))).await;
            return;
        }
        for record in &page {
            if send(&tx, wire::event(record, form)).await.is_err() {
                return;
            }
            next = record.revision.saturating_add(1);
            checkpoint = Some(record.revision);
        }
        if !page.is_empty() {
            continue;
        }
        if deleted {
            if let Some(tombstone) = tombstone
                && send(&tx, wire::event(&tombstone, form)).await.is_err()
            {
                return;
            }
            let _ = tx.send(Err(status::stream_deleted(&stream))).await;
            return;
        }
        if !live {
            if send(&tx, wire::caught_up_in_stream(checkpoint)).await.is_err() {
                return;
            }
            live = true;
        }
        if !wait_for_writes(&mut appends, &tx).await {
            return;
        }
    }
}

async fn follow_all(
    shared: Arc<Shared>,
    subscription: AllSubscription,
    tx: Sender,
    mut appends: watch::Receiver<u64>,
    _slot: Slot,
) {
    let AllSubscription { from, filter, form } = subscription;
    if send(&tx, wire::confirmation(Uuid::new_v4().to_string())).await.is_err() {
        return;
    }
    // `next`: the log index still to look at; `checkpoint`: the position of
    // the last record considered (or the start position).
    let (mut next, mut checkpoint) = {
        let log = shared.log();
        match from {
            AllFrom::Start => (0, None),
            AllFrom::End => (log.len(), log.last_position().map(|position| (position, position))),
            AllFrom::Position { commit, prepare } => (log.index_after(commit, prepare), Some((commit, prepare))),
        }
    };
    let mut checkpoints = Checkpoints::new(filter.as_ref().map(|(_, interval)| *interval));
    let filter = filter.map(|(filter, _)| filter);
    let mut live = false;
    loop {
        let page = shared.log().records_from(next, SCAN_PAGE);
        for record in &page {
            next += 1;
            let position = (record.position, record.position);
            checkpoint = Some(position);
            if visible(filter.as_ref(), record) && send(&tx, wire::event(record, form)).await.is_err() {
                return;
            }
            if let Some(due) = checkpoints.considered(position)
                && send(&tx, wire::checkpoint(due)).await.is_err()
            {
                return;
            }
        }
        if !page.is_empty() {
            continue;
        }
        if !live {
            // The server checkpoints when a filtered subscription goes live,
            // then says it caught up.
            if let Some(due) = checkpoint.and_then(|position| checkpoints.going_live(position))
                && send(&tx, wire::checkpoint(due)).await.is_err()
            {
                return;
            }
            if send(&tx, wire::caught_up_in_all(checkpoint)).await.is_err() {
                return;
            }
            live = true;
        }
        if !wait_for_writes(&mut appends, &tx).await {
            return;
        }
    }
}

/// When a filtered `$all` subscription sends a checkpoint: after every
/// `interval` records it considered (passing the filter or not), at the
/// position of the record that completed the interval, and when it goes live.
/// A checkpoint never repeats or goes back, as the server's enumerator skips
/// those. Unfiltered subscriptions send none.
#[derive(Debug)]
struct Checkpoints {
    interval: Option<u64>,
    considered: u64,
    last_sent: Option<(u64, u64)>,
}

impl Checkpoints {
    fn new(interval: Option<u64>) -> Self {
        Checkpoints {
            interval: interval.map(|interval| interval.max(1)),
            considered: 0,
            last_sent: None,
        }
    }

    fn considered(&mut self, position: (u64, u64)) -> Option<(u64, u64)> {
        let interval = self.interval?;
        self.considered += 1;
        if self.considered < interval {
            return None;
        }
        self.considered = 0;
        self.due(position)
    }

    fn going_live(&mut self, position: (u64, u64)) -> Option<(u64, u64)> {
        self.interval?;
        self.due(position)
    }

    fn due(&mut self, position: (u64, u64)) -> Option<(u64, u64)> {
        if self.last_sent.is_some_and(|last| position <= last) {
            return None;
        }
        self.last_sent = Some(position);
        Some(position)
    }
}

/// A subscription's answer stream: the task's messages, until the double
/// drops its subscriptions; then one UNAVAILABLE error, ahead of messages
/// still queued for a slow reader.
struct Dropping {
    messages: ReceiverStream<Result<ReadResp, Status>>,
    dropped: Pin<Box<dyn Future<Output = ()> + Send>>,
    done: bool,
}

impl Dropping {
    fn new(messages: mpsc::Receiver<Result<ReadResp, Status>>, mut drops: watch::Receiver<u64>) -> Self {
        let dropped = Box::pin(async move {
            // A closed channel means the double itself is gone: drop too.
            let _ = drops.changed().await;
        });
        Dropping {
            messages: ReceiverStream::new(messages),
            dropped,
            done: false,
        }
    }
}

impl Stream for Dropping {
    type Item = Result<ReadResp, Status>;

    fn poll_next(mut self: Pin<&mut Self>, context: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.done {
            return Poll::Ready(None);
        }
        if self.dropped.as_mut().poll(context).is_ready() {
            self.done = true;
            return Poll::Ready(Some(Err(status::subscription_dropped())));
        }
        let polled = Pin::new(&mut self.messages).poll_next(context);
        match &polled {
            Poll::Ready(Some(Err(_))) => self.done = true,
            // A subscription never ends well: an end without an error would
            // leave the client waiting forever, so it becomes one.
            Poll::Ready(None) => {
                self.done = true;
                return Poll::Ready(Some(Err(status::subscription_dropped())));
            }
            _ => {}
        }
        polled
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_comes_after_each_interval_of_considered_records() {
        let mut checkpoints = Checkpoints::new(Some(2));
        assert_eq!(checkpoints.considered((10, 10)), None);
        assert_eq!(checkpoints.considered((20, 20)), Some((20, 20)));
        assert_eq!(checkpoints.considered((30, 30)), None);
        assert_eq!(checkpoints.going_live((30, 30)), Some((30, 30)));
        assert_eq!(checkpoints.going_live((30, 30)), None);
    }

    #[test]
    fn an_unfiltered_subscription_sends_no_checkpoint() {
        let mut checkpoints = Checkpoints::new(None);
        assert_eq!(checkpoints.considered((10, 10)), None);
        assert_eq!(checkpoints.going_live((10, 10)), None);
    }
}
