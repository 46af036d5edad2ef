//! Queries: contacts and their gates, the ledger, replays, verification,
//! violations and policies.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Object};
use chrono::{DateTime, Utc};
use rapport_app::preflight::PreflightRequest;
use rapport_domain::{ContactId, LedgerDigest, Position};
use rapport_store::{EventStore, verify};
use uuid::Uuid;

use super::audit::AuditView;
use super::auth::{ACCESS_REQUESTERS, AUDITORS, READERS, check_contact, may_access, principal, require};
use super::campaign::{AudienceInput, CampaignView, PreflightResult, SuggestionView};
use super::errors::{Code, OrRefusal, bad_input, error, from_store, internal, not_found};
use super::privacy::PersonRecord;
use super::types::{
    Band, Channel, Contact, Finding, GateDecision, LedgerEvent, LedgerInfo, Policy, Principal, SendMode, Verification,
    View, ViolationInfo,
};
use super::{SEARCH_CHARS_MAX, now, page_size, timestamp};
use crate::state::AppState;

#[derive(Debug, Default)]
pub struct LedgerQuery;

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

fn parse_position(text: &str) -> async_graphql::Result<Position> {
    text.parse()
        .map_err(|e: rapport_domain::PositionError| bad_input(e.to_string()))
}

#[Object]
impl LedgerQuery {
    /// The caller, as their token identifies them.
    async fn me(&self, ctx: &Context<'_>) -> async_graphql::Result<Principal> {
        let principal = principal(ctx)?;
        Ok(Principal {
            name: principal.name.clone(),
            role: principal.role.into(),
        })
    }

    async fn contact(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<Contact>> {
        let principal = require(ctx, READERS, "read contacts")?;
        let state = state(ctx)?;
        let contact_id = ContactId(id);
        // Missing and not visible answer alike: NOT_FOUND.
        state
            .core
            .live
            .read(|model| check_contact(principal, model, contact_id))?;
        let now = now(ctx)?;
        Ok(Some(Contact::new(contact_id, View::Live, now, now)))
    }

    /// Contacts in id order; the cursor is the last contact id seen.
    #[allow(clippy::too_many_arguments)]
    #[graphql(complexity = "super::page_cost(first) * child_complexity")]
    async fn contacts(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
        tag: Option<String>,
        owner: Option<String>,
        band: Option<Band>,
        search: Option<String>,
    ) -> async_graphql::Result<Connection<String, Contact>> {
        let principal = require(ctx, READERS, "list contacts")?;
        let first = page_size(first)?;
        let after = after
            .map(|cursor| {
                cursor
                    .parse::<Uuid>()
                    .map(ContactId)
                    .map_err(|_| bad_input(format!("'{cursor}' is not a contacts cursor")))
            })
            .transpose()?;
        if search
            .as_ref()
            .is_some_and(|text| text.chars().count() > SEARCH_CHARS_MAX)
        {
            return Err(error(
                Code::LimitExceeded,
                format!("search is at most {SEARCH_CHARS_MAX} characters"),
            ));
        }
        let at = now(ctx)?;
        let state = state(ctx)?;
        let (ids, has_next) = state.core.live.read(|model| {
            let symbols = model.projection.symbols();
            let tag = tag.as_deref().map(|tag| symbols.lookup(tag));
            let owner = owner.as_deref().map(|owner| symbols.lookup(owner));
            let policy = model.projection.current_policy();
            let mut matching = model.directory.ids_after(after).filter(|id| {
                let Some(relationship) = model.projection.relationship(*id) else {
                    return false;
                };
                may_access(principal, model, *id)
                    && tag.is_none_or(|tag| tag.is_some_and(|tag| relationship.tags().contains(&tag)))
                    && owner.is_none_or(|owner| owner == Some(relationship.owner()))
                    && band.is_none_or(|band| {
                        Band::from(rapport_domain::strength(relationship, &policy.policy.scoring, at).band) == band
                    })
                    && search.as_deref().is_none_or(|text| model.directory.matches(*id, text))
            });
            let ids: Vec<ContactId> = matching.by_ref().take(first).collect();
            let has_next = matching.next().is_some();
            (ids, has_next)
        });
        let mut connection = Connection::new(after.is_some(), has_next);
        connection.edges.extend(
            ids.into_iter()
                .map(|id| Edge::new(id.0.to_string(), Contact::new(id, View::Live, at, at))),
        );
        Ok(connection)
    }

    /// May this contact be messaged in this mode at business moment `at`
    /// (default: now)? A past `at` counts only the events that had occurred
    /// by then.
    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn gate(
        &self,
        ctx: &Context<'_>,
        contact_id: Uuid,
        mode: SendMode,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<GateDecision> {
        let principal = require(ctx, READERS, "ask the gate")?;
        let at = match at {
            Some(at) => timestamp(at)?,
            None => now(ctx)?,
        };
        let state = state(ctx)?;
        let contact_id = ContactId(contact_id);
        state
            .core
            .live
            .read(|model| check_contact(principal, model, contact_id))?;
        Contact::new(contact_id, View::Live, at, now(ctx)?)
            .decide(ctx, mode, None, at)
            .await
    }

    /// The gate for a whole audience before a mass send: totals per verdict
    /// and per reason, and the contacts of each verdict. Sales staff see
    /// their own contacts' part. `at`: the moment of the send, now or later
    /// (default now).
    #[graphql(complexity = "super::PREFLIGHT_COST + child_complexity")]
    async fn preflight(
        &self,
        ctx: &Context<'_>,
        audience: AudienceInput,
        mode: SendMode,
        channel: Option<Channel>,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<PreflightResult> {
        let principal = require(ctx, READERS, "preflight a campaign")?;
        let now = now(ctx)?;
        let request = PreflightRequest {
            audience: audience.into_audience()?,
            mode: mode.into(),
            channel: channel.map(Into::into),
            at: at.map(timestamp).transpose()?.unwrap_or(now),
        };
        let state = state(ctx)?;
        // Judging every contact holds the read model for a while: two at once at most.
        let _turn = state.ledger_walks.acquire().await.map_err(internal)?;
        let caller = principal.clone();
        let preflight = state
            .core
            .read_blocking(move |model| rapport_app::preflight::preflight(model, &caller, &request, now))
            .await
            .or_refusal()?
            .or_refusal()?;
        Ok(PreflightResult(Arc::new(preflight)))
    }

    /// Contacts gone quiet and due a personal word (silent a week: a
    /// greeting; two weeks: an invitation), the most valuable first, never
    /// one the gate refuses. Sales staff get their own; others any owner's.
    #[graphql(complexity = "super::PREFLIGHT_COST + child_complexity")]
    async fn suggestions(
        &self,
        ctx: &Context<'_>,
        owner: Option<String>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<SuggestionView>> {
        let principal = require(ctx, READERS, "read suggestions")?;
        let limit = Some(page_size(first)?);
        let now = now(ctx)?;
        let state = state(ctx)?;
        let _turn = state.ledger_walks.acquire().await.map_err(internal)?;
        let caller = principal.clone();
        let found = state
            .core
            .read_blocking(move |model| rapport_app::suggest::suggestions(model, &caller, owner.as_deref(), now, limit))
            .await
            .or_refusal()?
            .or_refusal()?;
        Ok(found
            .into_iter()
            .map(|suggestion| SuggestionView { suggestion, at: now })
            .collect())
    }

    /// A campaign and its aftermath (sales staff: their own contacts' part).
    async fn campaign(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<CampaignView> {
        let principal = require(ctx, READERS, "read campaigns")?.clone();
        let state = state(ctx)?;
        let report = state
            .core
            .read_blocking(move |model| {
                rapport_app::aftermath::report(model, &principal, rapport_domain::CampaignId(id))
            })
            .await
            .or_refusal()?
            .or_refusal()?;
        Ok(CampaignView(report))
    }

    /// Campaigns in the order the ledger learned of them; `after` is the
    /// id of the last one seen (sales staff: their own contacts' part of each).
    #[graphql(complexity = "super::page_cost(first) * child_complexity")]
    async fn campaigns(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<Uuid>,
    ) -> async_graphql::Result<Connection<String, CampaignView>> {
        let principal = require(ctx, READERS, "read campaigns")?.clone();
        let first = page_size(first)?;
        let state = state(ctx)?;
        let (page, has_previous, has_next) = state
            .core
            .read_blocking(move |model| {
                rapport_app::aftermath::reports(model, &principal, after.map(rapport_domain::CampaignId), first)
            })
            .await
            .or_refusal()?
            .or_refusal()?;
        let mut connection = Connection::new(has_previous, has_next);
        connection.edges.extend(
            page.into_iter()
                .map(|report| Edge::new(report.record.id.to_string(), CampaignView(report))),
        );
        Ok(connection)
    }

    /// The ledger's head, size and digest (auditors, managers, admins: its
    /// size tells of every owner's activity).
    async fn ledger(&self, ctx: &Context<'_>) -> async_graphql::Result<LedgerInfo> {
        require(ctx, AUDITORS, "read the ledger head")?;
        let state = state(ctx)?;
        let head = state.core.store.head().await.map_err(from_store)?;
        Ok(LedgerInfo {
            head_position: head.last_position.map(|p| p.to_string()),
            event_count: head.event_count as i64,
            digest: head.digest.to_string(),
            projected_position: state.core.live.position().map(|p| p.to_string()),
        })
    }

    /// The ledger on two axes: as known at a position (`asOfPosition`, or
    /// `knownAt`: what had been recorded by that moment; default the head),
    /// seen at business moment `at` (default: when that position was
    /// recorded). Contacts, gates and scores count only the events known
    /// then that had occurred by `at`, under the policy in force at the position.
    #[graphql(complexity = "super::REPLAY_COST + child_complexity")]
    async fn replay(
        &self,
        ctx: &Context<'_>,
        at: Option<DateTime<Utc>>,
        as_of_position: Option<String>,
        known_at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<AuditView> {
        require(ctx, AUDITORS, "replay history")?;
        let state = state(ctx)?;
        let head = state.core.store.head().await.map_err(from_store)?.last_position;
        let position = match (as_of_position, known_at) {
            (Some(_), Some(_)) => return Err(bad_input("give asOfPosition or knownAt, not both")),
            (None, None) if at.is_none() => {
                return Err(bad_input(
                    "give at (a business moment), asOfPosition or knownAt (what the ledger knew)",
                ));
            }
            (None, None) => head,
            (Some(text), None) => {
                let position = parse_position(&text)?;
                if head.is_none_or(|head| position > head) {
                    return Err(bad_input(format!(
                        "position {position} is past the ledger's head ({})",
                        head.map_or("empty".to_owned(), |head| head.to_string())
                    )));
                }
                Some(position)
            }
            (None, Some(moment)) => state
                .core
                .store
                .position_at(timestamp(moment)?)
                .await
                .map_err(from_store)?,
        };
        let at = at.map(timestamp).transpose()?;
        let model = replayed(state, position).await?;
        let recorded_at = model.recorded_at;
        Ok(AuditView {
            model,
            position,
            recorded_at,
            default_at: match at.or(recorded_at) {
                Some(at) => at,
                None => now(ctx)?,
            },
        })
    }

    /// Everything held about a person, personal data decrypted: the answer
    /// to their access request (auditors and admins).
    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn person_record(&self, ctx: &Context<'_>, contact_id: Uuid) -> async_graphql::Result<PersonRecord> {
        let principal = require(ctx, ACCESS_REQUESTERS, "answer access requests")?;
        let state = state(ctx)?;
        let record = rapport_app::privacy::person_record(&state.core, principal, ContactId(contact_id))
            .await
            .or_refusal()?;
        Ok(record.into())
    }

    /// Walks every hash link; with `digest` (saved earlier) also detects
    /// truncation and rewritten history.
    #[graphql(complexity = "super::VERIFY_COST + child_complexity")]
    async fn verify_ledger(&self, ctx: &Context<'_>, digest: Option<String>) -> async_graphql::Result<Verification> {
        require(ctx, AUDITORS, "verify the ledger")?;
        let saved: Option<LedgerDigest> = digest
            .map(|text| text.parse())
            .transpose()
            .map_err(|e: rapport_domain::hashing::LedgerDigestError| bad_input(e.to_string()))?;
        let state = state(ctx)?;
        let _walk = state.ledger_walks.acquire().await.map_err(super::errors::internal)?;
        let report = verify(&state.core.store, saved).await.map_err(from_store)?;
        Ok(Verification {
            intact: report.is_intact(),
            events_checked: report.events_checked as i64,
            streams_checked: report.streams_checked as i64,
            digest: report.digest.to_string(),
            finding: report.finding.as_ref().map(|finding| Finding {
                position: finding.position.map(|p| p.to_string()),
                stream: finding.stream.clone(),
                problem: finding.to_string(),
            }),
        })
    }

    /// Touches recorded although the gate at their position would not have
    /// allowed them; the cursor is the position.
    #[graphql(
        complexity = "super::STORE_READ_COST + super::page_cost(first) * (super::STORE_READ_COST + child_complexity)"
    )]
    async fn violations(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, LedgerEvent>> {
        require(ctx, AUDITORS, "list violations")?;
        let first = page_size(first)?;
        let after = after.map(|text| parse_position(&text)).transpose()?;
        let state = state(ctx)?;
        let (page, has_next) = state.core.live.read(|model| {
            let violations = model.projection.violations();
            let start = after.map_or(0, |after| violations.partition_point(|v| v.position <= after));
            let page: Vec<_> = violations[start..].iter().take(first).cloned().collect();
            (page, violations.len() > start + first)
        });
        let mut connection = Connection::new(after.is_some(), has_next);
        for violation in page {
            let stream = rapport_domain::StreamName::Contact(violation.contact_id);
            let event = state
                .core
                .store
                .read_event(stream, violation.event_id)
                .await
                .map_err(from_store)?
                .ok_or_else(|| internal(format!("violation at {} has no event", violation.position)))?;
            connection.edges.push(Edge::new(violation.position.to_string(), {
                let info = ViolationInfo::of(&violation, &event.event);
                LedgerEvent::new(event, Some(info))
            }));
        }
        Ok(connection)
    }

    /// A policy by version (default: the one in force now).
    async fn policy(&self, ctx: &Context<'_>, version: Option<i32>) -> async_graphql::Result<Policy> {
        require(ctx, READERS, "read the policy")?;
        let state = state(ctx)?;
        state.core.live.read(|model| {
            let policies = model.projection.policies();
            let chosen = match version {
                None => policies.last(),
                Some(version) => policies.iter().find(|p| p.policy.version as i32 == version),
            };
            chosen
                .map(Policy::new)
                .unwrap_or_else(|| Err(not_found(format!("policy version {}", version.unwrap_or(-1)))))
        })
    }
}

/// The read model as known at `position`, from a one-entry cache.
async fn replayed(
    state: &Arc<AppState>,
    position: Option<Position>,
) -> async_graphql::Result<Arc<rapport_app::read_model::ReadModel>> {
    if let Ok(cache) = state.last_replay.lock()
        && let Some((cached_position, model)) = cache.as_ref()
        && *cached_position == position
    {
        return Ok(Arc::clone(model));
    }
    let _walk = state.ledger_walks.acquire().await.map_err(super::errors::internal)?;
    let model = match position {
        None => rapport_app::read_model::ReadModel::default(),
        Some(position) => rapport_app::read_model::rebuild_read_model(&state.core.store, Some(position))
            .await
            .map_err(from_store)?,
    };
    let model = Arc::new(model);
    if let Ok(mut cache) = state.last_replay.lock() {
        *cache = Some((position, Arc::clone(&model)));
    }
    Ok(model)
}
