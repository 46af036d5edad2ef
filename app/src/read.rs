//! The read use cases the adapters share: a contact's gate at a business
//! moment as the ledger knew it at a position (`check`), and a contact's
//! history with the score after each event (`timeline`).

use rapport_domain::{
    Channel, ContactId, Position, RecordedEvent, SendMode, StreamName, Strength, Timestamp, strength,
};
use rapport_projections::{Horizon, Violation};
use rapport_store::EventStore;

use crate::access::no_such_contact;
use crate::error::AppError;
use crate::gate::{Judged, judge};
use crate::read_model::ReadModel;

/// Events of one contact folded again to see it at a past moment.
pub const CONTACT_EVENTS_FOLDED_MAX: usize = 10_000;

/// A contact's events within `horizon`, oldest first, at most
/// `CONTACT_EVENTS_FOLDED_MAX` (LIMIT_EXCEEDED beyond): what
/// `ReadModel::for_contact` folds.
pub async fn contact_events(
    store: &dyn EventStore,
    contact_id: ContactId,
    horizon: Horizon,
) -> Result<Vec<RecordedEvent>, AppError> {
    let mut events = Vec::new();
    let mut from_version = 0;
    loop {
        let page = store
            .read_stream(
                StreamName::Contact(contact_id),
                from_version,
                rapport_store::READ_LIMIT_MAX,
            )
            .await?;
        let Some(last) = page.last().map(|event| event.version) else {
            return Ok(events);
        };
        from_version = last + 1;
        events.extend(page.into_iter().filter(|event| horizon.counts(event)));
        if events.len() > CONTACT_EVENTS_FOLDED_MAX {
            return Err(AppError::LimitExceeded(format!(
                "contact {contact_id} has over {CONTACT_EVENTS_FOLDED_MAX} events, more than one request folds again"
            )));
        }
    }
}

/// The events of a contact that had occurred by business moment `at`, as
/// the ledger knew them at `known_at`; `ReadModel::for_contact` folds them
/// with the horizon returned beside them.
pub async fn events_at(
    store: &dyn EventStore,
    known_at: Option<Position>,
    contact_id: ContactId,
    at: Timestamp,
) -> Result<(Vec<RecordedEvent>, Horizon), AppError> {
    let horizon = Horizon {
        known_at,
        occurred_by: Some(at),
    };
    Ok((contact_events(store, contact_id, horizon).await?, horizon))
}

/// The contact as it stood at business moment `at`, as `known` knew it:
/// folded again from the events of theirs that had occurred by then.
pub async fn contact_at(
    store: &dyn EventStore,
    known: &ReadModel,
    contact_id: ContactId,
    at: Timestamp,
) -> Result<ReadModel, AppError> {
    let (events, horizon) = events_at(store, known.projection.position(), contact_id, at).await?;
    Ok(ReadModel::for_contact(known, &events, horizon))
}

/// May `contact_id` be sent to in `mode` at business moment `at`, as
/// `known` knew it? The decision, and the contact as it stood then.
pub async fn check(
    store: &dyn EventStore,
    known: &ReadModel,
    contact_id: ContactId,
    mode: SendMode,
    channel: Option<Channel>,
    at: Timestamp,
) -> Result<(Judged, ReadModel), AppError> {
    let then = contact_at(store, known, contact_id, at).await?;
    let judged = judge(&then, contact_id, mode, channel, at)
        .ok_or_else(|| AppError::NotFound(format!("contact {contact_id} registered by {at}")))?;
    Ok((judged, then))
}

/// Events a timeline page holds when no limit is given, and at most.
pub const TIMELINE_PAGE_DEFAULT: usize = 100;
pub const TIMELINE_PAGE_MAX: usize = 10_000;

/// One event of a timeline, with the score after it (under the policy in
/// force at its position) and the gate's objection if it was a violation.
#[derive(Clone, Debug)]
pub struct TimelineEntry {
    pub event: RecordedEvent,
    pub score: Strength,
    pub violation: Option<Violation>,
}

#[derive(Clone, Debug)]
pub struct TimelinePage {
    pub entries: Vec<TimelineEntry>,
    /// The version the next page starts after, if there is one.
    pub next_after: Option<u64>,
}

/// Which part of a contact's history a timeline page shows.
#[derive(Clone, Copy, Debug, Default)]
pub struct TimelineWindow {
    /// Only events that occurred at or after this business moment.
    pub since: Option<Timestamp>,
    /// Only events after this version (the previous page's last).
    pub after: Option<u64>,
    pub limit: Option<usize>,
}

impl TimelineWindow {
    fn admits(&self, event: &RecordedEvent) -> bool {
        self.since.is_none_or(|since| event.occurred_at >= since)
            && self.after.is_none_or(|after| event.version > after)
    }
}

/// A page of the contact's history as `known` knows it.
pub async fn timeline(
    store: &dyn EventStore,
    known: &ReadModel,
    contact_id: ContactId,
    window: TimelineWindow,
) -> Result<TimelinePage, AppError> {
    let limit = match window.limit {
        None => TIMELINE_PAGE_DEFAULT,
        Some(n) if (1..=TIMELINE_PAGE_MAX).contains(&n) => n,
        Some(n) => {
            return Err(AppError::LimitExceeded(format!(
                "a timeline page holds 1 to {TIMELINE_PAGE_MAX} events, not {n}"
            )));
        }
    };
    if known.projection.relationship(contact_id).is_none() {
        return Err(no_such_contact(contact_id));
    }
    let horizon = Horizon {
        known_at: known.projection.position(),
        occurred_by: None,
    };
    let events = contact_events(store, contact_id, horizon).await?;
    Ok(timeline_of(events, known, window, limit))
}

/// The timeline page `window` picks (at most `limit` entries) from a
/// contact's events as `known` knows them, oldest first.
pub fn timeline_of(
    events: Vec<RecordedEvent>,
    known: &ReadModel,
    window: TimelineWindow,
    limit: usize,
) -> TimelinePage {
    let policies = known.projection.policies();
    let mut relationship = rapport_domain::Relationship::default();
    let mut symbols = rapport_domain::Symbols::default();
    let mut entries: Vec<TimelineEntry> = Vec::new();
    let mut more = false;
    // Every event is folded, for the score after it; only the page is kept.
    for event in events {
        relationship.apply(&event.event, event.version, event.occurred_at, &mut symbols);
        if !window.admits(&event) {
            continue;
        }
        if entries.len() == limit {
            more = true;
            break;
        }
        let Some(in_force) = policies
            .iter()
            .rev()
            .find(|p| p.since.is_none_or(|since| since <= event.position))
        else {
            continue;
        };
        entries.push(TimelineEntry {
            score: strength(&relationship, &in_force.policy.policy.scoring, event.occurred_at),
            violation: known.projection.violation_at(event.position).cloned(),
            event,
        });
    }
    let next_after = more.then(|| entries.last().map(|entry| entry.event.version)).flatten();
    TimelinePage { entries, next_after }
}
