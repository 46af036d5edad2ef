//! The server's read side: the projection (and the contact directory)
//! rebuilt at start, then kept current by following the ledger. Writers
//! wait for their own position to be applied before answering
//! (read-your-writes); `gateChanged` subscribers hear of every contact
//! whose events were applied.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use futures::StreamExt;
use rapport_domain::{ContactId, Event, Pii, Position, RecordedEvent, StreamName};
use rapport_projections::{Horizon, Projection};
use rapport_store::{EventStore, SqliteStore, StoreError, SubscriptionMessage};
use tokio::sync::{broadcast, watch};

/// Events applied under one write lock while following.
const APPLY_CHUNK_EVENTS: usize = 512;
/// Contact changes buffered for slow `gateChanged` subscribers.
const CHANGES_BUFFERED: usize = 4_096;
/// How long a writer waits for its own event to be applied.
pub const READ_YOUR_WRITES_WAIT: Duration = Duration::from_secs(10);

/// Registered contacts in id order, with their personal data where given:
/// the index behind `contacts(search:)`, names in answers, and cursors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    contacts: BTreeMap<ContactId, Option<Box<Pii>>>,
}

impl Directory {
    pub fn apply(&mut self, event: &RecordedEvent) {
        let StreamName::Contact(contact_id) = event.stream else {
            return;
        };
        match &event.event {
            Event::ContactRegistered(_) => {
                self.contacts.insert(contact_id, event.pii.clone().map(Box::new));
            }
            Event::ContactProfileChanged(_) => {
                if let (Some(entry), Some(update)) = (self.contacts.get_mut(&contact_id), &event.pii) {
                    let pii = entry.get_or_insert_with(Box::default);
                    let keep = |new: &Option<String>, old: &mut Option<String>| {
                        if new.is_some() {
                            old.clone_from(new);
                        }
                    };
                    keep(&update.display_name, &mut pii.display_name);
                    keep(&update.phone, &mut pii.phone);
                    keep(&update.wechat_id, &mut pii.wechat_id);
                    keep(&update.email, &mut pii.email);
                }
            }
            _ => {}
        }
    }

    pub fn pii(&self, contact_id: ContactId) -> Option<&Pii> {
        self.contacts.get(&contact_id).and_then(|pii| pii.as_deref())
    }

    /// Contacts after `after` in id order.
    pub fn ids_after(&self, after: Option<ContactId>) -> impl Iterator<Item = ContactId> + '_ {
        use std::ops::Bound;
        let start = after.map_or(Bound::Unbounded, Bound::Excluded);
        self.contacts.range((start, Bound::Unbounded)).map(|(id, _)| *id)
    }

    /// Whether any personal field contains `text` (case-insensitive), or,
    /// for a phone number in any format, the contact's number contains its digits.
    pub fn matches(&self, contact_id: ContactId, text: &str) -> bool {
        let needle = text.to_lowercase();
        let digits = phone_digits(text);
        self.pii(contact_id).is_some_and(|pii| {
            [&pii.display_name, &pii.phone, &pii.wechat_id, &pii.email]
                .into_iter()
                .flatten()
                .any(|field| field.to_lowercase().contains(&needle))
                || digits.as_ref().is_some_and(|digits| {
                    pii.phone
                        .as_deref()
                        .and_then(phone_digits)
                        .is_some_and(|phone| phone.contains(digits.as_str()))
                })
        })
    }

    pub fn len(&self) -> usize {
        self.contacts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.contacts.is_empty()
    }
}

/// The digits of a phone number written in any common format (`+86 136
/// 0000 1111`, `+8613600001111`, `(136) 0000-1111`), so numbers compare as
/// E.164 does; `None` for text that is not a phone number.
pub fn phone_digits(text: &str) -> Option<String> {
    const PHONE_DIGITS_MIN: usize = 5;
    let text = text.trim();
    if !text.chars().all(|c| c.is_ascii_digit() || " +-().".contains(c)) {
        return None;
    }
    let digits: String = text.chars().filter(char::is_ascii_digit).collect();
    (digits.len() >= PHONE_DIGITS_MIN).then_some(digits)
}

/// A projection and directory folded to the same position.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ReadModel {
    pub projection: Projection,
    pub directory: Directory,
    /// When the last event folded was recorded.
    pub recorded_at: Option<rapport_domain::Timestamp>,
}

impl ReadModel {
    /// One contact seen within `horizon`, folded again from its own
    /// `events` under the policies and names of `base`.
    pub fn for_contact(base: &ReadModel, events: &[RecordedEvent], horizon: Horizon) -> ReadModel {
        let mut model = ReadModel {
            projection: base.projection.seeded(),
            directory: Directory::default(),
            recorded_at: None,
        };
        for event in events.iter().filter(|event| horizon.counts(event)) {
            model.apply(event);
        }
        model
    }

    pub fn apply(&mut self, event: &RecordedEvent) {
        self.projection.apply(event);
        self.directory.apply(event);
        self.recorded_at = Some(event.recorded_at);
    }
}

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
}

impl Live {
    /// Rebuilds from the ledger, then follows it on a background task.
    pub async fn start(store: &SqliteStore) -> Result<Arc<Live>, StoreError> {
        let model = crate::ledger::rebuild_read_model(store, None).await?;
        let position = model.projection.position();
        let (applied, _) = watch::channel(position);
        let (changes, _) = broadcast::channel(CHANGES_BUFFERED);
        let live = Arc::new(Live {
            model: RwLock::new(model),
            applied,
            changes,
            failure: RwLock::new(None),
        });
        tokio::spawn(follow(Arc::clone(&live), store.clone(), position));
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

async fn follow(live: Arc<Live>, store: SqliteStore, after: Option<Position>) {
    let mut subscription = store.subscribe_all(after).ready_chunks(APPLY_CHUNK_EVENTS);
    while let Some(messages) = subscription.next().await {
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
