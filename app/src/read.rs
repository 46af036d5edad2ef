//! The read use cases the adapters share: a contact's gate at a business
//! moment as the ledger knew it at a position (`check`), and a contact's
//! history with the score after each event (`timeline`).

use rapport_domain::{Channel, ContactId, RecordedEvent, SendMode, Strength, Timestamp, strength};
use rapport_projections::{Horizon, Violation};
use rapport_store::EventStore;

use crate::access::no_such_contact;
use crate::error::AppError;
use crate::gate::{Judged, judge};
use crate::read_model::{ReadModel, contact_events};

/// The contact as it stood at business moment `at`, as `known` knew it:
/// folded again from the events of theirs that had occurred by then.
pub async fn contact_at(
    store: &dyn EventStore,
    known: &ReadModel,
    contact_id: ContactId,
    at: Timestamp,
) -> Result<ReadModel, AppError> {
    let horizon = Horizon {
        known_at: known.projection.position(),
        occurred_by: Some(at),
    };
    let events = contact_events(store, contact_id, horizon).await?;
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

/// Where a timeline page starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Since {
    /// After this version of the contact (a previous page's last).
    Version(u64),
    /// At this business moment.
    Moment(Timestamp),
}

impl Since {
    fn admits(self, event: &RecordedEvent) -> bool {
        match self {
            Since::Version(version) => event.version > version,
            Since::Moment(at) => event.occurred_at >= at,
        }
    }
}

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
    /// Where the next page starts, if there is one.
    pub next: Option<Since>,
}

/// A page of the contact's history as `known` knows it.
pub async fn timeline(
    store: &dyn EventStore,
    known: &ReadModel,
    contact_id: ContactId,
    since: Option<Since>,
    limit: Option<usize>,
) -> Result<TimelinePage, AppError> {
    let limit = match limit {
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
    let policies = known.projection.policies();
    let mut relationship = rapport_domain::Relationship::default();
    let mut symbols = rapport_domain::Symbols::default();
    let mut entries: Vec<TimelineEntry> = Vec::new();
    let mut more = false;
    // Every event is folded, for the score after it; only the page is kept.
    for event in events {
        relationship.apply(&event.event, event.version, event.occurred_at, &mut symbols);
        if !since.is_none_or(|since| since.admits(&event)) {
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
    let next = more
        .then(|| entries.last().map(|entry| Since::Version(entry.event.version)))
        .flatten();
    Ok(TimelinePage { entries, next })
}
