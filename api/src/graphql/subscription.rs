//! Subscriptions: the ledger's events as they are appended, and a
//! contact's gate whenever their events change it.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_graphql::{Context, Subscription as SubscriptionObject};
use futures::{Stream, StreamExt};
use rapport_domain::{CampaignId, ContactId, GroupId, Position, StreamName};
use rapport_projections::campaigns::Alert;
use rapport_store::{EventStore, SubscriptionMessage};
use tokio::sync::broadcast;
use uuid::Uuid;

use super::auth::{AUDITORS, READERS, check_contact, may_access, require};
use super::campaign::CampaignView;
use super::errors::{Code, OrRefusal, bad_input, error, from_store, internal};
use super::group::GroupView;
use super::types::{GateDecision, LedgerEvent, SendMode, View};
use crate::state::AppState;
use rapport_app::gate::judge;
use rapport_app::tokens::{Principal, Role};

#[derive(Debug)]
pub struct Subscription;

/// Subscriptions one WebSocket connection may hold open at once.
pub const SUBSCRIPTIONS_PER_CONNECTION_MAX: usize = 16;
/// Subscriptions one principal may hold open at once, over all connections.
pub const SUBSCRIPTIONS_PER_PRINCIPAL_MAX: usize = 64;

/// The subscriptions a connection holds, counted in its connection data.
#[derive(Clone, Debug, Default)]
pub struct ConnectionSubscriptions(Arc<AtomicUsize>);

/// One open subscription's place in both counts, given back on drop.
#[derive(Debug)]
struct Slot {
    connection: ConnectionSubscriptions,
    state: Arc<AppState>,
    principal: (String, Role),
}

impl Slot {
    fn take(ctx: &Context<'_>, state: &Arc<AppState>, principal: &Principal) -> async_graphql::Result<Slot> {
        let connection = ctx.data_opt::<ConnectionSubscriptions>().cloned().unwrap_or_default();
        let key = (principal.name.clone(), principal.role);
        let mut held = state
            .subscriptions
            .held
            .lock()
            .map_err(|_| internal("the subscription count is unusable after a panic"))?;
        let by_principal = held.entry(key.clone()).or_default();
        if *by_principal >= SUBSCRIPTIONS_PER_PRINCIPAL_MAX {
            return Err(error(
                Code::LimitExceeded,
                format!("a token may hold at most {SUBSCRIPTIONS_PER_PRINCIPAL_MAX} subscriptions at once"),
            ));
        }
        if connection.0.load(Ordering::Acquire) >= SUBSCRIPTIONS_PER_CONNECTION_MAX {
            return Err(error(
                Code::LimitExceeded,
                format!("a connection may hold at most {SUBSCRIPTIONS_PER_CONNECTION_MAX} subscriptions at once"),
            ));
        }
        *by_principal += 1;
        connection.0.fetch_add(1, Ordering::AcqRel);
        Ok(Slot {
            connection,
            state: Arc::clone(state),
            principal: key,
        })
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connection.0.fetch_sub(1, Ordering::AcqRel);
        let mut held = self
            .state
            .subscriptions
            .held
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(count) = held.get_mut(&self.principal) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                held.remove(&self.principal);
            }
        }
    }
}

/// Keeps `slot` taken for as long as `stream` is open.
fn holding<S: Stream>(slot: Slot, stream: S) -> impl Stream<Item = S::Item> {
    stream.map(move |item| {
        let _held = &slot;
        item
    })
}

fn decide(state: &AppState, contact_id: ContactId, mode: SendMode) -> Option<GateDecision> {
    state.core.live.read(|model| {
        let judged = judge(model, contact_id, mode.into(), None, state.core.clock.now())?;
        Some(GateDecision::new(&judged))
    })
}

/// Which alerts are up, for telling a change from more of the same.
fn alert_kinds(alerts: &[Alert]) -> [bool; 3] {
    [
        alerts.iter().any(|alert| matches!(alert, Alert::Losses { .. })),
        alerts.iter().any(|alert| matches!(alert, Alert::Complaints { .. })),
        alerts
            .iter()
            .any(|alert| matches!(alert, Alert::FailedDeliveries { .. })),
    ]
}

/// What makes two decisions different to a subscriber (not the moment).
fn same_answer(a: &GateDecision, b: &GateDecision) -> bool {
    let codes = |d: &GateDecision| d.reasons.iter().map(|r| (r.code, r.blocking)).collect::<Vec<_>>();
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
        let slot = Slot::take(ctx, &state, &principal)?;
        let after = after_position
            .map(|text| text.parse::<Position>().map_err(|e| bad_input(e.to_string())))
            .transpose()?;
        let only = contact_id.map(ContactId);
        if let Some(contact_id) = only {
            state
                .core
                .live
                .read(|model| check_contact(&principal, model, contact_id))?;
        }
        let events = state.core.store.subscribe_all(after);
        Ok(holding(
            slot,
            events.filter_map(move |message| {
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
                    let (mut hide_link, mut hide_group) = (false, false);
                    if contact.is_some() || matches!(event.stream, StreamName::Group(_)) {
                        // Ownership is known once the read model has applied the
                        // event (a new contact's registration, say): wait for it,
                        // or the event would be judged against the model before it.
                        if let Err(error) = state.core.live.wait_for(event.position).await {
                            return Some(Err(from_store(error)));
                        }
                        let visible = state.core.live.read(|model| match event.stream {
                            StreamName::Contact(id) => may_access(&principal, model, id),
                            StreamName::Group(id) => model
                                .projection
                                .group(id)
                                .is_some_and(|group| rapport_app::group::may_access_group(&principal, group)),
                            StreamName::Campaign(_) | StreamName::Policy => true,
                        });
                        if !visible {
                            return None;
                        }
                        hide_group = state
                            .core
                            .live
                            .read(|model| super::types::hides_group(&principal, model, &event.event));
                        hide_link = match &event.event {
                            rapport_domain::Event::GroupMemberJoined(joined) => joined
                                .contact_id
                                .is_some_and(|id| !state.core.live.read(|model| may_access(&principal, model, id))),
                            _ => false,
                        };
                    }
                    let shown = LedgerEvent::shown_to(event, None, hide_group);
                    Some(Ok(if hide_link { shown.without_member_link() } else { shown }))
                }
            }),
        ))
    }

    /// The campaign as it stands, then again each time its alerts change:
    /// a rate of those sent to crosses its threshold (or falls back under
    /// it) as outcomes arrive.
    async fn campaign_alerts(
        &self,
        ctx: &Context<'_>,
        campaign_id: Uuid,
    ) -> async_graphql::Result<impl Stream<Item = CampaignView>> {
        let principal = require(ctx, AUDITORS, "follow campaign alerts")?;
        let state = Arc::clone(ctx.data::<Arc<AppState>>()?);
        let id = CampaignId(campaign_id);
        let caller = principal.clone();
        let alerts_now = move |state: &AppState| {
            state.core.live.read(|model| {
                let record = model.projection.campaigns().get(id)?;
                Some(alert_kinds(&record.sent.alerts(&record.rules)))
            })
        };
        let slot = Slot::take(ctx, &state, principal)?;
        // Subscribed before reading, so that no change falls between the two.
        let changes = state.core.live.changes();
        let record_now = move |state: &AppState, caller: &Principal| {
            state
                .core
                .live
                .read(|model| rapport_app::aftermath::report(model, caller, id).ok())
        };
        let Some(first) = record_now(&state, &caller) else {
            return Err(super::errors::not_found(format!("campaign {campaign_id}")));
        };
        let current = alert_kinds(&first.alerts);
        Ok(holding(
            slot,
            futures::stream::unfold(
                (state, caller, changes, current, Some(first)),
                move |(state, caller, mut changes, last, pending)| async move {
                    if let Some(record) = pending {
                        return Some((CampaignView(record), (state, caller, changes, last, None)));
                    }
                    loop {
                        match changes.recv().await {
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                                let now = alerts_now(&state)?;
                                if now == last {
                                    continue;
                                }
                                let record = record_now(&state, &caller)?;
                                return Some((CampaignView(record), (state, caller, changes, now, None)));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                },
            ),
        ))
    }

    /// The group as it stands, then again each time one of its alerts (the
    /// month's leave rate, the promotion share) goes up or comes down as
    /// its events arrive.
    async fn group_alerts(
        &self,
        ctx: &Context<'_>,
        group_id: Uuid,
    ) -> async_graphql::Result<impl Stream<Item = GroupView>> {
        let principal = require(ctx, READERS, "follow group alerts")?;
        let state = Arc::clone(ctx.data::<Arc<AppState>>()?);
        let id = GroupId(group_id);
        state
            .core
            .live
            .read(|model| rapport_app::group::check_group(principal, model, id).map(|_| ()))
            .or_refusal()?;
        let slot = Slot::take(ctx, &state, principal)?;
        // Subscribed before reading, so that no change falls between the two.
        let changes = state.core.live.changes();
        let alerts_now = move |state: &AppState| {
            let now = state.core.clock.now();
            state.core.live.read(|model| {
                let group = model.projection.group(id)?;
                let health = rapport_app::group::health(model, group, now);
                Some([health.leave_rate_alert, health.promotion_share_alert])
            })
        };
        let current = alerts_now(&state);
        let now = state.core.clock.now();
        let first = GroupView::new(id, View::Live, now, now);
        Ok(holding(
            slot,
            futures::stream::unfold(
                (state, changes, current, Some(first)),
                move |(state, mut changes, last, pending)| async move {
                    if let Some(view) = pending {
                        return Some((view, (state, changes, last, None)));
                    }
                    loop {
                        match changes.recv().await {
                            Ok(change) if change.stream != StreamName::Group(id) => continue,
                            Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {
                                let alerts = alerts_now(&state);
                                if alerts == last {
                                    continue;
                                }
                                let now = state.core.clock.now();
                                let view = GroupView::new(id, View::Live, now, now);
                                return Some((view, (state, changes, alerts, None)));
                            }
                            Err(broadcast::error::RecvError::Closed) => return None,
                        }
                    }
                },
            ),
        ))
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
        state
            .core
            .live
            .read(|model| check_contact(principal, model, contact_id))?;
        let slot = Slot::take(ctx, &state, principal)?;
        let changes = state.core.live.changes();
        let first = decide(&state, contact_id, mode);
        Ok(holding(
            slot,
            futures::stream::unfold(
                (state, changes, first, None::<GateDecision>),
                move |(state, mut changes, pending, last)| async move {
                    if let Some(decision) = pending {
                        return Some((decision.clone(), (state, changes, None, Some(decision))));
                    }
                    loop {
                        match changes.recv().await {
                            Ok(change) if change.stream != StreamName::Contact(contact_id) => continue,
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
            ),
        ))
    }
}
