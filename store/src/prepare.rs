//! Validation and encoding of an append, done by the caller's task before
//! the append reaches the single writer, so the writer only hashes and writes.

use rapport_domain::{Event, NewEvent, StreamName};
use uuid::Uuid;

use crate::{APPEND_EVENTS_MAX, EVENT_BYTES_MAX, StoreError};

/// An event checked against every limit and encoded as it will be stored.
#[derive(Clone, Debug)]
pub struct PreparedEvent {
    pub event_id: Uuid,
    pub event_type: &'static str,
    pub schema_version: u16,
    pub payload: Vec<u8>,
    /// Personal data as JSON: the writer seals it with the contact's key
    /// and digests it, so it never reaches the disk in the clear.
    pub pii: Option<Vec<u8>>,
    /// A `ContactErased`: the writer destroys the contact's key with it.
    pub erases_personal_data: bool,
    pub occurred_at_millis: i64,
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

/// Refuses the whole append on the first invalid event; nothing is written.
pub fn prepare_append(stream: &StreamName, events: Vec<NewEvent>) -> Result<Vec<PreparedEvent>, StoreError> {
    if events.is_empty() {
        return Err(StoreError::EmptyAppend);
    }
    if events.len() > APPEND_EVENTS_MAX {
        return Err(StoreError::TooManyEvents {
            count: events.len(),
            limit: APPEND_EVENTS_MAX,
        });
    }
    let mut seen = std::collections::HashSet::with_capacity(events.len());
    events
        .into_iter()
        .enumerate()
        .map(|(index, event)| {
            event
                .validate(stream)
                .map_err(|source| StoreError::InvalidEvent { index, source })?;
            if !seen.insert(event.event_id) {
                return Err(StoreError::IdempotencyConflict {
                    stream: stream.to_string(),
                    event_id: event.event_id,
                    detail: "the same event id appears twice in one append".to_owned(),
                });
            }
            prepare_event(index, event)
        })
        .collect()
}

fn prepare_event(index: usize, event: NewEvent) -> Result<PreparedEvent, StoreError> {
    let payload = event.event.encode();
    let pii = event
        .pii
        .as_ref()
        .map(|pii| serde_json::to_vec(pii).unwrap_or_default());
    let bytes = payload.len() + pii.as_ref().map_or(0, Vec::len);
    if bytes > EVENT_BYTES_MAX {
        return Err(StoreError::EventTooLarge {
            index,
            bytes,
            limit: EVENT_BYTES_MAX,
        });
    }
    Ok(PreparedEvent {
        event_id: event.event_id,
        event_type: event.event.event_type(),
        schema_version: event.event.schema_version(),
        payload,
        pii,
        erases_personal_data: matches!(event.event, Event::ContactErased(_)),
        occurred_at_millis: event.occurred_at.as_millis(),
        actor: event.actor,
        correlation_id: event.correlation_id,
        causation_id: event.causation_id,
    })
}
