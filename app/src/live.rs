//! The server's read side: the projection (and the contact directory)
//! loaded from its snapshot and caught up, or rebuilt, at start, then kept
//! current by following the ledger and snapshotted as it grows. Writers
//! wait for their own position to be applied before answering
//! (read-your-writes); `gateChanged` subscribers hear of every contact
//! whose events were applied.

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use futures::StreamExt;
use rapport_domain::{Position, RecordedEvent, StreamName};
use rapport_store::sealing::SealingKey;
use rapport_store::{EventStore, Ledger, StoreError, SubscriptionMessage};
use tokio::sync::{broadcast, watch};
use tokio::task::AbortHandle;

use crate::read_model::{ReadModel, rebuild_read_model};
use crate::snapshot::{self, Saved, Start};

/// Events applied under one write lock while following.
const APPLY_CHUNK_EVENTS: usize = 512;
/// Stream changes buffered for slow `gateChanged` and alert subscribers.
const CHANGES_BUFFERED: usize = 4_096;
/// How long a writer waits for its own event to be applied.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(10);
/// Events folded since the last snapshot that make the next one due (or
/// as many as there are contacts, if more): a restart then folds at most
/// about this many events besides loading it.
pub const SNAPSHOT_EVERY_EVENTS: u64 = 100_000;

/// Where the read model's snapshot is kept, the key sealing its personal
/// data, and how often it is written.
#[derive(Clone, Debug)]
pub struct Snapshots {
    pub path: PathBuf,
    pub key: SealingKey,
    pub every_events: u64,
}

impl Snapshots {
    /// The snapshot beside `store`'s ledger file (or the cluster node's
    /// `local` path), at the default pace; none without the master key
    /// that seals it.
    pub fn beside(store: &Ledger) -> Option<Self> {
        Some(Snapshots {
            path: snapshot::snapshot_path(store.local_path()),
            key: store.snapshot_key()?,
            every_events: SNAPSHOT_EVERY_EVENTS,
        })
    }
}

#[derive(Debug)]
struct Snapshotting {
    snapshots: Snapshots,
    /// Events the read model had folded when the last snapshot was written
    /// (or last failed to be).
    saved_events: AtomicU64,
    /// Held while one is written; the position the last one covers.
    saved_position: Mutex<Option<Position>>,
}

/// A stream's events were applied at `position`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamChanged {
    pub stream: StreamName,
    pub position: Position,
}

#[derive(Debug)]
pub struct Live {
    model: RwLock<ReadModel>,
    applied: watch::Sender<Option<Position>>,
    changes: broadcast::Sender<StreamChanged>,
    failure: RwLock<Option<String>>,
    /// The task following the ledger: it lives as long as this read model.
    follower: Mutex<Option<AbortHandle>>,
    snapshotting: Option<Snapshotting>,
    started_from_snapshot: Option<Position>,
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
    /// Loads the snapshot (if any is kept and usable) and folds what came
    /// after it, or else rebuilds from the whole ledger; then follows the
    /// ledger on a background task.
    pub async fn start(store: &Ledger, snapshots: Option<Snapshots>) -> Result<Arc<Live>, StoreError> {
        let (model, start) = match &snapshots {
            Some(snapshots) => snapshot::load_or_rebuild(store, &snapshots.path, Some(&snapshots.key), None).await?,
            None => (rebuild_read_model(store, None).await?, Start::default()),
        };
        let (saved_events, saved_position) = (start.snapshot_events, start.snapshot);
        let position = model.projection.position();
        let (applied, _) = watch::channel(position);
        let (changes, _) = broadcast::channel(CHANGES_BUFFERED);
        let live = Arc::new(Live {
            model: RwLock::new(model),
            applied,
            changes,
            failure: RwLock::new(None),
            follower: Mutex::new(None),
            snapshotting: snapshots.map(|snapshots| Snapshotting {
                snapshots,
                saved_events: AtomicU64::new(saved_events),
                saved_position: Mutex::new(saved_position),
            }),
            started_from_snapshot: saved_position,
        });
        let follower = tokio::spawn(follow(Arc::downgrade(&live), store.clone(), position));
        *live.follower.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(follower.abort_handle());
        live.snapshot_if_due();
        Ok(live)
    }

    /// Writes a snapshot on a blocking thread when enough events were
    /// folded since the last one and none is being written.
    fn snapshot_if_due(self: &Arc<Self>) {
        let Some(snapshotting) = &self.snapshotting else { return };
        let (folded, contacts) = self.read(|model| (model.projection.events_applied(), model.directory.len()));
        let since = folded.saturating_sub(snapshotting.saved_events.load(Ordering::Relaxed));
        // At least as many events as contacts between two: writing one
        // costs about as much per contact as folding an event does.
        if since < snapshotting.snapshots.every_events.max(contacts as u64) {
            return;
        }
        // Counted as saved now, so that a failing disk is retried only
        // after as many events again, not on every chunk.
        snapshotting.saved_events.store(folded, Ordering::Relaxed);
        let live = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            if let Err(error) = live.write_snapshot(false) {
                tracing::warn!(%error, "the read-model snapshot was not written");
            }
        });
    }

    /// Writes the snapshot now (as the server stops), unless it already
    /// covers the current position. Waits for one being written.
    pub async fn save_snapshot(self: &Arc<Self>) -> std::io::Result<Option<Saved>> {
        let live = Arc::clone(self);
        tokio::task::spawn_blocking(move || live.write_snapshot(true))
            .await
            .map_err(std::io::Error::other)?
    }

    /// One snapshot at a time: a due one is skipped while another is being
    /// written; a final one waits for it.
    fn write_snapshot(&self, wait: bool) -> std::io::Result<Option<Saved>> {
        let Some(snapshotting) = &self.snapshotting else {
            return Ok(None);
        };
        let mut saved_position = if wait {
            snapshotting
                .saved_position
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
        } else {
            match snapshotting.saved_position.try_lock() {
                Ok(held) => held,
                Err(std::sync::TryLockError::Poisoned(poisoned)) => poisoned.into_inner(),
                Err(std::sync::TryLockError::WouldBlock) => return Ok(None),
            }
        };
        // The read lock is held while the model is encoded (into the page
        // cache), not while it is synced: the follower waits for it, and
        // so do readers that come after the follower asks for the lock.
        let encoded = self.read(|model| {
            if model.projection.position() == *saved_position {
                return Ok(None);
            }
            snapshot::encode(&snapshotting.snapshots.path, &snapshotting.snapshots.key, model)
        })?;
        let saved = encoded.map(snapshot::Encoded::commit).transpose()?;
        if let Some(saved) = saved {
            *saved_position = Some(saved.position);
            tracing::info!(
                position = %saved.position,
                events = saved.events,
                bytes = saved.bytes,
                "wrote the read-model snapshot"
            );
        }
        Ok(saved)
    }

    /// After an erasure: writes the snapshot again without the person's
    /// data, or, if that fails, removes the old one that holds it.
    pub async fn forget_erased_in_snapshot(self: &Arc<Self>) -> std::io::Result<()> {
        let Err(error) = self.save_snapshot().await else {
            return Ok(());
        };
        if let Some(snapshotting) = &self.snapshotting {
            match std::fs::remove_file(&snapshotting.snapshots.path) {
                Ok(()) => {}
                Err(missing) if missing.kind() == std::io::ErrorKind::NotFound => {}
                Err(removal) => return Err(removal),
            }
        }
        tracing::warn!(%error, "the snapshot was not written again after an erasure; it was removed instead");
        Ok(())
    }

    /// The position of the snapshot this read model started from, if it did.
    pub fn started_from_snapshot(&self) -> Option<Position> {
        self.started_from_snapshot
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

    pub fn changes(&self) -> broadcast::Receiver<StreamChanged> {
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
async fn follow(live: Weak<Live>, store: Ledger, after: Option<Position>) {
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
            // Another node's erasure too: no snapshot here keeps the person.
            if events
                .iter()
                .any(|event| matches!(event.event, rapport_domain::Event::ContactErased(_)))
                && let Err(error) = live.forget_erased_in_snapshot().await
            {
                tracing::error!(%error, "the snapshot still holds an erased contact and could not be removed");
            }
            live.applied.send_replace(Some(last));
            live.snapshot_if_due();
            for event in &events {
                // No subscriber is fine: nobody is waiting on this stream.
                let _ = live.changes.send(StreamChanged {
                    stream: event.stream,
                    position: event.position,
                });
            }
        }
        if let Some(error) = failure {
            tracing::error!(%error, "the projection stopped following the ledger");
            *live.failure.write().unwrap_or_else(std::sync::PoisonError::into_inner) = Some(error.to_string());
            return;
        }
    }
}
