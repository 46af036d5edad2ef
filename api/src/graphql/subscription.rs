//! Subscriptions: the ledger's events as they are appended, and a
//! contact's gate whenever their events change it.

use std::sync::Arc;

use async_graphql::{Context, Subscription as SubscriptionObject};
use futures::{Stream, StreamExt};
use rapport_domain::{ContactId, Position, StreamName};
use rapport_store::{EventStore, SubscriptionMessage};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::auth::{READERS, check_contact, may_access, require};
use super::errors::{bad_input, from_store};
use super::now;
use super::types::{GateDecision, LedgerEvent, SendMode};
use crate::state::AppState;
use crate::tokens::Principal;

#[derive(Debug)]
pub struct Subscription;

fn decide(state: &AppState, contact_id: ContactId, mode: SendMode) -> Option<GateDecision> {
    state.live.read(|model| {
        let decision = model.projection.gate(contact_id, mode.into(), None, now())?;
        Some(GateDecision::new(
            contact_id,
            &decision.gate,
            decision.position,
            model.projection.symbols(),
        ))
    })
}

/// What makes two decisions different to a subscriber (not the moment).
fn same_answer(a: &GateDecision, b: &GateDecision) -> bool {
    let codes = |d: &GateDecision| {
        d.reasons
            .iter()
            .map(|r| (r.code.clone(), r.blocking))
            .collect::<Vec<_>>()
    };
    a.verdict == b.verdict && codes(a) == codes(b) && a.score == b.score && a.next_allowed_at == b.next_allowed_at
}

#[SubscriptionObject]
impl Subscription {
    /// Every event after `afterPosition` (from the start if absent), once
    /// and in order, then each new one as it is appended; optionally only
    /// one contact's.
    async fn ledger_events(
        &self,
        ctx: &Context<'_>,
        after_position: Option<String>,
        contact_id: Option<Uuid>,
    ) -> async_graphql::Result<impl Stream<Item = async_graphql::Result<LedgerEvent>>> {
        let principal: Principal = require(ctx, READERS, "follow the ledger")?.clone();
        let state = Arc::clone(ctx.data::<Arc<AppState>>()?);
        let after = after_position
            .map(|text| text.parse::<Position>().map_err(|e| bad_input(e.to_string())))
            .transpose()?;
        let only = contact_id.map(ContactId);
        if let Some(contact_id) = only {
            state.live.read(|model| check_contact(&principal, model, contact_id))?;
        }
        let events = state.store.subscribe_all(after);
        Ok(events.filter_map(move |message| {
            let state = Arc::clone(&state);
            let principal = principal.clone();
            async move {
                let event = match message {
                    Ok(SubscriptionMessage::Event(event)) => *event,
                    Ok(SubscriptionMessage::CaughtUp) => return None,
                    Err(error) => return Some(Err(from_store(error))),
                };
                let contact = match event.stream {
                    StreamName::Contact(id) => Some(id),
                    _ => None,
                };
                if only.is_some() && contact != only {
                    return None;
                }
                if let Some(id) = contact
                    && !state.live.read(|model| may_access(&principal, model, id))
                {
                    return None;
                }
                Some(Ok(LedgerEvent::new(event, None)))
            }
        }))
    }

    /// The contact's current decision, then a new one each time an event
    /// of theirs changes the answer.
    async fn gate_changed(
        &self,
        ctx: &Context<'_>,
        contact_id: Uuid,
        mode: SendMode,
    ) -> async_graphql::Result<impl Stream<Item = GateDecision>> {
        let principal = require(ctx, READERS, "follow a gate")?;
        let state = Arc::clone(ctx.data::<Arc<AppState>>()?);
        let contact_id = ContactId(contact_id);
        state.live.read(|model| check_contact(principal, model, contact_id))?;
        let changes = state.live.changes();
        let first = decide(&state, contact_id, mode);
        Ok(futures::stream::unfold(
            (state, changes, first, None::<GateDecision>),
            move |(state, mut changes, pending, last)| async move {
                if let Some(decision) = pending {
                    return Some((decision.clone(), (state, changes, None, Some(decision))));
                }
                loop {
                    match changes.recv().await {
                        Ok(change) if change.contact_id != contact_id => continue,
                        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                            let decision = decide(&state, contact_id, mode)?;
                            if last.as_ref().is_some_and(|last| same_answer(last, &decision)) {
                                continue;
                            }
                            return Some((decision.clone(), (state, changes, None, Some(decision))));
                        }
                        Err(broadcast::error::RecvError::Closed) => return None,
                    }
                }
            },
        ))
    }
}
