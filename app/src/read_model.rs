//! The read model: every contact's relationship (the projection) beside
//! the contact directory (personal data), folded to one position, and the
//! rebuilds that fold it from the ledger within a horizon.

use std::collections::BTreeMap;

use futures::StreamExt;
use rapport_domain::{ContactId, Event, Pii, Position, RecordedEvent, StreamName};
use rapport_projections::{Horizon, Projection};
use rapport_store::{EventStore, StoreError};

/// Events read per page while rebuilding, and pages read ahead of the fold.
const REBUILD_PAGE_EVENTS: usize = 4_096;
const REBUILD_PAGES_QUEUED: usize = 4;

/// Registered contacts in id order, with their personal data where given:
/// the index behind `contacts(search:)`, names in answers, and cursors.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Directory {
    contacts: BTreeMap<ContactId, Option<Box<Pii>>>,
}

/// A directory entry as a snapshot keeps it: every field in place, since
/// binary formats cannot skip the absent ones as `Pii`'s JSON form does.
#[derive(serde::Serialize)]
pub(crate) struct SavedEntry<'a>(ContactId, Option<[&'a Option<String>; 4]>);

#[derive(serde::Deserialize)]
pub(crate) struct LoadedEntry(ContactId, Option<[Option<String>; 4]>);

impl LoadedEntry {
    pub(crate) fn into_entry(self) -> (ContactId, Option<Box<Pii>>) {
        let LoadedEntry(id, fields) = self;
        let pii = fields.map(|[display_name, phone, wechat_id, email]| {
            Box::new(Pii {
                display_name,
                phone,
                wechat_id,
                email,
            })
        });
        (id, pii)
    }
}

impl Directory {
    /// The entries in id order, `per_chunk` at a time, as a snapshot keeps them.
    pub(crate) fn saved_chunks(&self, per_chunk: usize) -> impl Iterator<Item = Vec<SavedEntry<'_>>> {
        let mut entries = self.contacts.iter().map(|(id, pii)| {
            let fields = pii
                .as_deref()
                .map(|pii| [&pii.display_name, &pii.phone, &pii.wechat_id, &pii.email]);
            SavedEntry(*id, fields)
        });
        std::iter::from_fn(move || {
            let chunk: Vec<_> = entries.by_ref().take(per_chunk).collect();
            (!chunk.is_empty()).then_some(chunk)
        })
    }

    /// The directory from the entries a snapshot gave back (in id order,
    /// so the map is built in one pass rather than entry by entry).
    pub(crate) fn restored(entries: Vec<(ContactId, Option<Box<Pii>>)>) -> Self {
        Directory {
            contacts: entries.into_iter().collect(),
        }
    }
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
            Event::ContactErased(_) => {
                if let Some(entry) = self.contacts.get_mut(&contact_id) {
                    *entry = None;
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
    pub last_event: Option<LastEvent>,
}

/// The last event folded, by which a snapshot finds its place in the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct LastEvent {
    pub position: Position,
    pub stream: StreamName,
    pub version: u64,
    pub event_id: uuid::Uuid,
}

/// What is shown in place of an erased contact's name and details.
pub const ERASED: &str = "erased";

impl ReadModel {
    /// Whether the contact's personal data was erased.
    pub fn is_erased(&self, contact_id: ContactId) -> bool {
        self.projection
            .relationship(contact_id)
            .is_some_and(rapport_domain::Relationship::erased)
    }

    /// The name to show for a contact: theirs, "erased" once erased, or
    /// none when none was given.
    pub fn display_name(&self, contact_id: ContactId) -> Option<String> {
        if self.is_erased(contact_id) {
            return Some(ERASED.to_owned());
        }
        self.directory.pii(contact_id).and_then(|pii| pii.display_name.clone())
    }

    /// One contact seen within `horizon`, folded again from its own
    /// `events` under the policies and names of `base`.
    pub fn for_contact(base: &ReadModel, events: &[RecordedEvent], horizon: Horizon) -> ReadModel {
        let mut model = ReadModel {
            projection: base.projection.seeded(),
            directory: Directory::default(),
            recorded_at: None,
            last_event: None,
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
        self.last_event = Some(LastEvent {
            position: event.position,
            stream: event.stream,
            version: event.version,
            event_id: event.event_id,
        });
    }
}

/// Folds the ledger from its start up to and including `until` (everything
/// if `None`): the state "as known at" that position.
///
/// One task reads raw pages while this one decodes and folds them, so on
/// two cores the two halves overlap; the queue between them holds a few
/// pages at most.
pub async fn rebuild(store: &(impl EventStore + Clone), until: Option<Position>) -> Result<Projection, StoreError> {
    Ok(rebuild_read_model(store, until).await?.projection)
}

/// As `rebuild`, with the contact directory (personal data) beside the projection.
pub async fn rebuild_read_model(
    store: &(impl EventStore + Clone),
    until: Option<Position>,
) -> Result<ReadModel, StoreError> {
    rebuild_within(
        store,
        Horizon {
            known_at: until,
            occurred_by: None,
        },
    )
    .await
}

/// The read model within `horizon`: the events recorded by its position
/// that had occurred by its moment.
pub async fn rebuild_within(store: &(impl EventStore + Clone), horizon: Horizon) -> Result<ReadModel, StoreError> {
    fold_onto(store, ReadModel::default(), horizon).await
}

/// Folds onto `model` (empty, or a snapshot's) the events after its
/// position within `horizon`.
pub(crate) async fn fold_onto(
    store: &(impl EventStore + Clone),
    mut model: ReadModel,
    horizon: Horizon,
) -> Result<ReadModel, StoreError> {
    let until = horizon.known_at;
    let start = model.projection.position();
    let (pages, mut queue) = tokio::sync::mpsc::channel(REBUILD_PAGES_QUEUED);
    let reader = store.clone();
    let reading = tokio::spawn(async move {
        let mut read = reader.read_all_pages(start, REBUILD_PAGE_EVENTS);
        while let Some(page) = read.next().await {
            let page = page?;
            let done = page
                .last()
                .is_some_and(|last| until.is_some_and(|until| last.position >= until));
            if pages.send(page).await.is_err() || done {
                return Ok(());
            }
        }
        Ok(())
    });
    while let Some(page) = queue.recv().await {
        for raw in page.into_iter().take_while(|event| horizon.knows(event.position)) {
            let event = raw.decode()?;
            if horizon.counts(&event) {
                model.apply(&event);
            }
        }
    }
    reading
        .await
        .map_err(|e| StoreError::Unavailable(format!("the ledger reader stopped: {e}")))??;
    Ok(model)
}
