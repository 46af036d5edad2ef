//! The server's read side: the projection (and the contact directory)
//! rebuilt at start, then kept current by following the ledger. Writers
//! wait for their own position to be applied before answering
//! (read-your-writes); `gateChanged` subscribers hear of every contact
//! whose events were applied.

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use rapport_domain::{ContactId, Position, RecordedEvent, StreamName};
use rapport_store::{EventStore, SqliteStore, StoreError, SubscriptionMessage};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use crate::read_model::{ReadModel, rebuild_read_model};

/// Events applied under one write lock while following.
const APPLY_CHUNK_EVENTS: usize = 512;
/// Contact changes buffered for slow `gateChanged` subscribers.
const CHANGES_BUFFERED: usize = 4_096;
/// How long a writer waits for its own event to be applied.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(10);

/// A contact's events were applied at `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ContactChanged {
    pub contact_id: ContactId,
    pub position: Position,
}

#[derive(Debug)]
pub struct Live {
    model: RwLock<ReadModel>,
    applied: watch::Sender<Option<Position>>,
    changes: broadcast::Sender<ContactChanged>,
    failure: RwLock<Option<String>>,
    /// The task following the ledger: it lives as long as this read model.
    follower: Mutex<Option<AbortHandle>>,
}

impl Drop for Live {
    fn drop(&mut self) {
        let follower = self
            .follower
            .get_mut()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(follower) = follower.take() {
            follower.abort();
        }
    }
}

impl Live {
    /// Rebuilds from the ledger, then follows it on a background task.
    pub async fn start(store: &SqliteStore) -> Result<Arc<Live>, StoreError> {
        let model = rebuild_read_model(store, None).await?;
        let position = model.projection.position();
        let (applied, _) = watch::channel(position);
        let (changes, _) = broadcast::channel(CHANGES_BUFFERED);
        let live = Arc::new(Live {
            model: RwLock::new(model),
            applied,
            changes,
            failure: RwLock::new(None),
            follower: Mutex::new(None),
        });
        let follower = tokio::spawn(follow(Arc::downgrade(&live), store.clone(), position));
        *live.follower.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(follower.abort_handle());
        Ok(live)
    }

    /// Runs `read` against the current read model.
    pub fn read<R>(&self, read: impl FnOnce(&ReadModel) -> R) -> R {
        // A panic while folding would have stopped the follower; reading
        // the last consistent model is still correct.
        let model = self.model.read().unwrap_or_else(std::sync::PoisonError::into_inner);
        read(&model)
    }

    pub fn position(&self) -> Option<Position> {
        *self.applied.borrow()
    }

    pub fn failure(&self) -> Option<String> {
        self.failure
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    pub fn changes(&self) -> broadcast::Receiver<ContactChanged> {
        self.changes.subscribe()
    }

    /// Waits until `position` has been applied (read-your-writes).
    pub async fn wait_for(&self, position: Position) -> Result<(), StoreError> {
        let mut applied = self.applied.subscribe();
        let reached = tokio::time::timeout(READ_YOUR_WRITES_WAIT, applied.wait_for(|at| *at >= Some(position))).await;
        match reached {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(_)) => Err(StoreError::Unavailable(
                "the projection stopped following the ledger".to_owned(),
            )),
            Err(_) => Err(StoreError::Unavailable(format!(
                "the projection did not reach position {position} in time"
            ))),
        }
    }

    fn apply_chunk(&self, events: &[RecordedEvent]) {
        let mut model = self.model.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        for event in events {
            model.apply(event);
        }
    }
}

/// Applies what the ledger commits, for as long as the read model is held
/// by anyone (a command that ends drops it, and its follower with it).
async fn follow(live: Weak<Live>, store: SqliteStore, after: Option<Position>) {
    let mut subscription = store.subscribe_all(after).ready_chunks(APPLY_CHUNK_EVENTS);
    while let Some(messages) = subscription.next().await {
        let Some(live) = live.upgrade() else { return };
        let mut events = Vec::with_capacity(messages.len());
        let mut failure = None;
        for message in messages {
            match message {
                Ok(SubscriptionMessage::Event(event)) => events.push(*event),
                Ok(SubscriptionMessage::CaughtUp) => {}
                Err(error) => {
                    failure = Some(error);
                    break;
                }
            }
        }
        if let Some(last) = events.last().map(|event| event.position) {
            live.apply_chunk(&events);
            live.applied.send_replace(Some(last));
            for event in &events {
                if let StreamName::Contact(contact_id) = event.stream {
                    // No subscriber is fine: nobody is waiting on this contact.
                    let _ = live.changes.send(ContactChanged {
                        contact_id,
                        position: event.position,
                    });
                }
            }
        }
        if let Some(error) = failure {
            tracing::error!(%error, "the projection stopped following the ledger");
            *live.failure.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
            return;
        }
    }
}
