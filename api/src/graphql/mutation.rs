//! Mutations: every write becomes one ledger event (or, for ingestion, a
//! validated batch). Writes are idempotent by `idempotencyKey`, optimistic
//! by `expectedVersion`, and answered only once the projection has applied
//! them (read-your-writes).

use std::collections::HashSet;
use std::sync::Arc;

use async_graphql::{Context, Enum, ErrorExtensions, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use rapport_domain::Relationship;
use rapport_domain::decide::{RecordTouch, TouchRejection, decide_touch};
use rapport_domain::event::TAGS_PER_CONTACT_MAX;
use rapport_domain::policy::{BusinessTimeError, ClockRules};
use rapport_domain::{
    ComplaintFiled, ConsentGranted, ConsentWithdrawn, ContactBlocked, ContactDeletedUs, ContactId, ContactReadded,
    ContactRegistered, ContactTagged, ContactUnblocked, ContactUntagged, Event, NewEvent, Pii, PolicyChanged,
    ReplyReceived, StreamName, Timestamp, TouchAuthorization, TouchRecorded,
};
use rapport_store::{AppendResult, EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

use super::auth::{INGESTERS, OVERRIDERS, POLICY_WRITERS, WRITERS, check_contact, may_access, require};
use super::errors::{Code, bad_input, error, from_store, internal};
use super::types::{Channel, Contact, GateDecision, IngestResult, Policy, RecordResult, SendMode, View};
use super::{INGEST_BATCH_MAX, now, timestamp};
use crate::state::AppState;
use rapport_app::read_model::ReadModel;
use rapport_app::tokens::{Principal, Role};

#[derive(Debug)]
pub struct Mutation;

#[derive(InputObject, Debug)]
pub struct RegisterContactInput {
    /// The contact's id; when absent, the idempotency key, else a new id.
    pub id: Option<Uuid>,
    /// Staff id of the owner; sales staff register contacts for themselves.
    pub owner: Option<String>,
    pub primary_channel: Channel,
    /// IANA zone such as Asia/Shanghai; the policy default when absent.
    pub time_zone: Option<String>,
    pub tags: Option<Vec<String>>,
    pub display_name: Option<String>,
    pub phone: Option<String>,
    pub wechat_id: Option<String>,
    pub email: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
}

#[derive(InputObject, Debug)]
pub struct OverrideInput {
    /// Why the gate is overridden; recorded on the event and shown in `violations`.
    pub reason: String,
}

#[derive(InputObject, Debug)]
pub struct RecordTouchInput {
    pub contact_id: Uuid,
    pub mode: SendMode,
    /// The contact's primary channel when absent.
    pub channel: Option<Channel>,
    pub campaign_id: Option<Uuid>,
    /// Managers only: send although the gate says no.
    #[graphql(name = "override")]
    pub override_: Option<OverrideInput>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
    pub expected_version: Option<i64>,
}

/// A fact about a contact on a channel: a reply, block, unblock, deletion or re-add.
#[derive(InputObject, Debug)]
pub struct ContactEventInput {
    pub contact_id: Uuid,
    /// The contact's primary channel when absent.
    pub channel: Option<Channel>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
    pub expected_version: Option<i64>,
}

#[derive(InputObject, Debug)]
pub struct RecordComplaintInput {
    pub contact_id: Uuid,
    pub channel: Option<Channel>,
    pub reason: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
    pub expected_version: Option<i64>,
}

#[derive(InputObject, Debug)]
pub struct SetConsentInput {
    pub contact_id: Uuid,
    /// False records an opt-out.
    pub granted: bool,
    pub source: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
    pub expected_version: Option<i64>,
}

#[derive(InputObject, Debug)]
pub struct TagInput {
    pub contact_id: Uuid,
    pub tag: String,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
    pub expected_version: Option<i64>,
}

#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum IngestType {
    Reply,
    Touch,
    Block,
    Unblock,
    Deletion,
    Readd,
    Complaint,
    ConsentGranted,
    ConsentWithdrawn,
}

/// A fact observed by another tool. `eventId` makes it idempotent.
#[derive(InputObject, Debug)]
pub struct IngestEventInput {
    pub event_id: Uuid,
    pub contact_id: Uuid,
    #[graphql(name = "type")]
    pub event_type: IngestType,
    pub occurred_at: DateTime<Utc>,
    pub channel: Option<Channel>,
    /// For touches.
    pub mode: Option<SendMode>,
    pub campaign_id: Option<Uuid>,
    /// For touches: the staff id that sent it.
    pub sender: Option<String>,
    /// For complaints.
    pub reason: Option<String>,
    /// The tool it came from.
    pub source: Option<String>,
}

#[derive(InputObject, Debug)]
pub struct PolicyInput {
    /// The whole policy document (see the `policy` query for its shape).
    pub document: Json<serde_json::Value>,
    /// The version this replaces; CONFLICT if another policy came first.
    pub expected_version: Option<i32>,
}

/// The write options every contact input carries (`contactId`,
/// `occurredAt`, `idempotencyKey`, `expectedVersion`).
macro_rules! write_of {
    ($ctx:expr, $input:expr) => {
        Write::new(
            now($ctx)?,
            super::auth::principal($ctx)?,
            $input.contact_id,
            $input.occurred_at,
            $input.idempotency_key,
            $input.expected_version,
        )?
    };
}

/// The options every contact write shares.
struct Write {
    /// When the request arrived, on the server's clock.
    now: Timestamp,
    contact_id: ContactId,
    occurred_at: Timestamp,
    event_id: Uuid,
    expected: ExpectedVersion,
}

impl Write {
    fn new(
        now: Timestamp,
        principal: &Principal,
        contact_id: Uuid,
        occurred_at: Option<DateTime<Utc>>,
        idempotency_key: Option<Uuid>,
        expected_version: Option<i64>,
    ) -> async_graphql::Result<Self> {
        let expected = match expected_version {
            None => ExpectedVersion::StreamExists,
            Some(version) if version >= 0 => ExpectedVersion::Exact(version as u64),
            Some(version) => return Err(bad_input(format!("expectedVersion must be 0 or more, got {version}"))),
        };
        Ok(Write {
            now,
            contact_id: ContactId(contact_id),
            occurred_at: occurred_at.map(timestamp).transpose()?.unwrap_or(now),
            event_id: idempotency_key.map_or_else(Uuid::now_v7, |key| own_event_id(principal, key)),
            expected,
        })
    }
}

/// Derives event ids from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x7261_7070_6f72_745f_6964_656d_706f_7465);

/// The event id a caller's idempotency key stands for: derived from who
/// asks and the key, so a key is the caller's own and can neither name nor
/// probe an event someone else wrote.
fn own_event_id(principal: &Principal, key: Uuid) -> Uuid {
    let scoped = format!("{}:{}:{key}", principal.role, principal.name);
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, scoped.as_bytes())
}

impl Write {
    /// The version to append against when a decision was taken on the
    /// contact at `judged`: a client expecting another version is told at
    /// once, and an event appended since makes the append a CONFLICT.
    fn expected_at(&self, judged: u64) -> async_graphql::Result<ExpectedVersion> {
        match self.expected {
            ExpectedVersion::Exact(given) if given != judged => Err(error(
                Code::Conflict,
                format!("expectedVersion is {given}, but the contact was judged at version {judged}; read it again"),
            )),
            _ => Ok(ExpectedVersion::Exact(judged)),
        }
    }
}

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

fn business_time(refusal: BusinessTimeError) -> async_graphql::Error {
    bad_input(refusal.to_string())
}

/// The clock rules of the policy in force.
fn clock_rules(model: &ReadModel) -> ClockRules {
    model.projection.current_policy().policy.clock.clone()
}

/// Appends one event and waits until the projection has applied it.
async fn append_event(
    state: &AppState,
    stream: StreamName,
    expected: ExpectedVersion,
    event: NewEvent,
) -> Result<AppendResult, rapport_store::StoreError> {
    let result = state.store.append(stream, expected, vec![event]).await?;
    state.metrics.record_appended(1);
    state.live.wait_for(result.position).await?;
    Ok(result)
}

async fn append(
    state: &AppState,
    stream: StreamName,
    expected: ExpectedVersion,
    event: NewEvent,
) -> async_graphql::Result<AppendResult> {
    append_event(state, stream, expected, event).await.map_err(from_store)
}

fn result(write: &Write, appended: AppendResult, decision: Option<GateDecision>) -> RecordResult {
    // The contact as it stands once the write is applied, at its moment.
    let at = write.now;
    RecordResult {
        event_id: write.event_id,
        position: appended.position.to_string(),
        contact_version: appended.next_expected_version as i64,
        contact: Contact::new(write.contact_id, View::Live, at, at),
        decision,
    }
}

/// Whether a fact needs the contact as it was judged (a rule looked at
/// its state) or may land on whatever version the contact has by then.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Pinned {
    ToJudgedVersion,
    No,
}

/// Records a fact about an existing contact the caller may write. `rule`
/// sees the contact first and may refuse the fact.
async fn record(
    ctx: &Context<'_>,
    write: Write,
    event: impl FnOnce(rapport_domain::Channel) -> Event,
    channel: Option<Channel>,
    pinned: Pinned,
    rule: impl FnOnce(&ReadModel, &Relationship) -> async_graphql::Result<()>,
) -> async_graphql::Result<RecordResult> {
    let principal = require(ctx, WRITERS, "record contact events")?;
    let state = state(ctx)?;
    let (primary, judged, clock) = state.live.read(|model| {
        check_contact(principal, model, write.contact_id)?;
        let relationship = model
            .projection
            .relationship(write.contact_id)
            .ok_or_else(|| internal("contact vanished"))?;
        rule(model, relationship)?;
        Ok::<_, async_graphql::Error>((
            relationship.primary_channel(),
            relationship.stream_version(),
            clock_rules(model),
        ))
    })?;
    clock.check_fact(write.occurred_at, write.now).map_err(business_time)?;
    let expected = match pinned {
        Pinned::ToJudgedVersion => write.expected_at(judged)?,
        Pinned::No => write.expected,
    };
    let channel = channel.map(Into::into).unwrap_or(primary);
    let new_event = NewEvent::new(
        write.event_id,
        event(channel),
        write.occurred_at,
        principal.name.clone(),
    );
    let appended = append(state, StreamName::Contact(write.contact_id), expected, new_event).await?;
    Ok(result(&write, appended, None))
}

fn no_rule(_: &ReadModel, _: &Relationship) -> async_graphql::Result<()> {
    Ok(())
}

/// A retried touch: the event with this id in the contact's stream, if it
/// is there. It must be the same touch by the same caller; any other use
/// of the key is a CONFLICT.
async fn already_recorded(
    state: &AppState,
    principal: &Principal,
    write: &Write,
    touch: &RecordTouch,
    channel: rapport_domain::Channel,
) -> async_graphql::Result<Option<AppendResult>> {
    let Some(event) = state
        .store
        .read_event(StreamName::Contact(write.contact_id), write.event_id)
        .await
        .map_err(from_store)?
    else {
        return Ok(None);
    };
    let same_touch = event.actor == principal.name
        && matches!(&event.event, Event::TouchRecorded(earlier)
            if earlier.mode == touch.mode
                && earlier.channel == channel
                && earlier.campaign_id == touch.campaign_id
                && earlier.sender == touch.sender);
    if !same_touch {
        return Err(error(
            Code::Conflict,
            format!(
                "idempotencyKey {} was already used for a different write",
                write.event_id
            ),
        ));
    }
    Ok(Some(AppendResult {
        next_expected_version: event.version,
        position: event.position,
    }))
}

fn gate_denied(decision: &GateDecision) -> async_graphql::Error {
    let verdict = rapport_domain::Verdict::from(decision.verdict).as_str();
    let reasons: Vec<async_graphql::Value> = decision
        .reasons
        .iter()
        .map(|reason| {
            async_graphql::value!({
                "code": rapport_domain::ReasonCode::from(reason.code).as_str(),
                "message": reason.message.clone(),
                "blocking": reason.blocking,
            })
        })
        .collect();
    let next = decision.next_allowed_at.map(|at| at.to_rfc3339());
    let summary = decision
        .reasons
        .iter()
        .filter(|r| r.blocking)
        .map(|r| r.message.as_str())
        .collect::<Vec<_>>()
        .join(" ");
    error(Code::GateDenied, format!("the gate says {verdict}: {summary}")).extend_with(move |_, extensions| {
        extensions.set("verdict", verdict);
        extensions.set("reasons", async_graphql::Value::List(reasons.clone()));
        if let Some(next) = &next {
            extensions.set("nextAllowedAt", next.clone());
        }
    })
}

fn ingest_error(index: usize, problem: impl std::fmt::Display) -> async_graphql::Error {
    bad_input(format!("event {index}: {problem}; nothing was written"))
        .extend_with(|_, extensions| extensions.set("index", index as i32))
}

#[Object]
impl Mutation {
    async fn register_contact(&self, ctx: &Context<'_>, input: RegisterContactInput) -> async_graphql::Result<Contact> {
        let principal = require(ctx, WRITERS, "register contacts")?;
        // Owners are compared by exact name: trim what was typed.
        let owner = input.owner.as_deref().map(str::trim);
        let owner = match (principal.role, owner) {
            (Role::Sales, Some(owner)) if owner != principal.name => {
                return Err(error(
                    Code::Forbidden,
                    "sales staff register contacts for themselves only",
                ));
            }
            (_, Some(owner)) => owner.to_owned(),
            (_, None) => principal.name.clone(),
        };
        // Sales staff may not pick ids: imported contacts' ids can be
        // computed, and "already registered" would tell them who exists.
        if principal.role == Role::Sales && input.id.is_some() {
            return Err(bad_input(
                "sales staff cannot choose a contact's id: leave id out, and use idempotencyKey to retry",
            ));
        }
        // A retry with the same key must land on the same stream: without an
        // explicit id, the contact's id is the key's event id.
        let event_id = input
            .idempotency_key
            .map_or_else(Uuid::now_v7, |key| own_event_id(principal, key));
        let contact_id = ContactId(input.id.unwrap_or(event_id));
        let event = ContactRegistered {
            owner,
            primary_channel: input.primary_channel.into(),
            time_zone: input.time_zone,
            tags: input.tags.unwrap_or_default(),
        };
        let pii = Pii {
            display_name: input.display_name,
            phone: input.phone,
            wechat_id: input.wechat_id,
            email: input.email,
        };
        let now = now(ctx)?;
        let occurred_at = input.occurred_at.map(timestamp).transpose()?.unwrap_or(now);
        let state = state(ctx)?;
        state
            .live
            .read(clock_rules)
            .check_fact(occurred_at, now)
            .map_err(business_time)?;
        let mut new_event = NewEvent::new(event_id, event, occurred_at, principal.name.clone());
        if pii != Pii::default() {
            new_event = new_event.with_pii(pii);
        }
        append_event(
            state,
            StreamName::Contact(contact_id),
            ExpectedVersion::NoStream,
            new_event,
        )
        .await
        .map_err(|e| match e {
            rapport_store::StoreError::WrongExpectedVersion { .. } => {
                error(Code::Conflict, format!("contact {contact_id} is already registered"))
            }
            other => from_store(other),
        })?;
        // A retry answers with what it wrote first: only to whoever may see it now.
        if !state.live.read(|model| may_access(principal, model, contact_id)) {
            return Err(super::errors::not_found(format!("contact {contact_id}")));
        }
        Ok(Contact::new(contact_id, View::Live, now, now))
    }

    /// Records a touch the gate allows at its moment; anything else is
    /// GATE_DENIED (with the decision) unless a manager overrides it.
    async fn record_touch(&self, ctx: &Context<'_>, input: RecordTouchInput) -> async_graphql::Result<RecordResult> {
        let principal = require(ctx, WRITERS, "record touches")?;
        if input.override_.is_some() {
            require(ctx, OVERRIDERS, "override the gate")?;
        }
        let write = write_of!(ctx, input);
        let state = state(ctx)?;
        let command = RecordTouch {
            mode: input.mode.into(),
            channel: input.channel.map(Into::into),
            campaign_id: input.campaign_id.map(rapport_domain::CampaignId),
            sender: principal.name.clone(),
            occurred_at: write.occurred_at,
            override_reason: input.override_.map(|override_| override_.reason),
        };
        let (decided, view, judged) = state.live.read(|model| {
            check_contact(principal, model, write.contact_id)?;
            let relationship = model
                .projection
                .relationship(write.contact_id)
                .ok_or_else(|| internal("contact vanished"))?;
            let position = model.projection.position().map(|p| p.to_string()).unwrap_or_default();
            let decided = decide_touch(
                relationship,
                model.projection.current_policy(),
                &command,
                &position,
                write.now,
            );
            state.metrics.record_verdict(decided.gate.verdict);
            let view = GateDecision::new(
                write.contact_id,
                &decided.gate,
                model.projection.position(),
                model.projection.symbols(),
            );
            Ok::<_, async_graphql::Error>((decided, view, relationship.stream_version()))
        })?;
        // A retry answers with the touch it recorded first, even when the
        // gate has closed since (that touch closed it).
        if input.idempotency_key.is_some()
            && let Some(earlier) = already_recorded(state, principal, &write, &command, decided.gate.channel).await?
        {
            return Ok(result(&write, earlier, Some(view)));
        }
        let touch = match decided.outcome {
            Ok(touch) => touch,
            Err(TouchRejection::GateDenied) => return Err(gate_denied(&view)),
            Err(TouchRejection::BusinessTime(refusal)) => return Err(business_time(refusal)),
        };
        // The decision holds for the contact as it was: any event since
        // (a block, a reply) makes this a CONFLICT to retry, not a send the
        // gate never saw.
        let expected = write.expected_at(judged)?;
        let new_event = NewEvent::new(write.event_id, touch, write.occurred_at, principal.name.clone());
        let appended = append(state, StreamName::Contact(write.contact_id), expected, new_event).await?;
        Ok(result(&write, appended, Some(view)))
    }

    async fn record_reply(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        record(
            ctx,
            write,
            |channel| ReplyReceived { channel }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    async fn record_block(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        record(
            ctx,
            write,
            |channel| ContactBlocked { channel }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    async fn record_unblock(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        record(
            ctx,
            write,
            |channel| ContactUnblocked { channel }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    /// The contact deleted us (removed the friend).
    async fn record_deletion(
        &self,
        ctx: &Context<'_>,
        input: ContactEventInput,
    ) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        record(
            ctx,
            write,
            |channel| ContactDeletedUs { channel }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    /// The contact added us again.
    async fn record_readd(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        record(
            ctx,
            write,
            |channel| ContactReadded { channel }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    async fn record_complaint(
        &self,
        ctx: &Context<'_>,
        input: RecordComplaintInput,
    ) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        let reason = input.reason;
        record(
            ctx,
            write,
            move |channel| ComplaintFiled { channel, reason }.into(),
            input.channel,
            Pinned::No,
            no_rule,
        )
        .await
    }

    async fn set_consent(&self, ctx: &Context<'_>, input: SetConsentInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        let (granted, source) = (input.granted, input.source);
        let event = move |_| {
            if granted {
                ConsentGranted { source }.into()
            } else {
                ConsentWithdrawn { source }.into()
            }
        };
        record(ctx, write, event, None, Pinned::No, no_rule).await
    }

    async fn tag_contact(&self, ctx: &Context<'_>, input: TagInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        let tag = input.tag;
        let limit = |model: &ReadModel, relationship: &Relationship| {
            let known = model.projection.symbols().lookup(&tag);
            let has_it = known.is_some_and(|symbol| relationship.tags().contains(&symbol));
            if !has_it && relationship.tags().len() >= TAGS_PER_CONTACT_MAX {
                return Err(error(
                    Code::LimitExceeded,
                    format!("a contact carries at most {TAGS_PER_CONTACT_MAX} tags; remove one first"),
                ));
            }
            Ok(())
        };
        // Pinned, so that two taggings at once cannot both pass the limit.
        let event = {
            let tag = tag.clone();
            move |_| ContactTagged { tag }.into()
        };
        record(ctx, write, event, None, Pinned::ToJudgedVersion, limit).await
    }

    async fn untag_contact(&self, ctx: &Context<'_>, input: TagInput) -> async_graphql::Result<RecordResult> {
        let write = write_of!(ctx, input);
        let tag = input.tag;
        record(
            ctx,
            write,
            move |_| ContactUntagged { tag }.into(),
            None,
            Pinned::No,
            no_rule,
        )
        .await
    }

    /// Appends facts observed elsewhere. Every item is checked first: one
    /// bad item rejects the batch (with its index) and nothing is written.
    /// Items already in the ledger (by `eventId`) count as duplicates.
    async fn ingest_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<IngestEventInput>,
    ) -> async_graphql::Result<IngestResult> {
        let principal = require(ctx, INGESTERS, "ingest events")?;
        if events.len() > INGEST_BATCH_MAX {
            return Err(error(
                Code::LimitExceeded,
                format!("at most {INGEST_BATCH_MAX} events per batch, got {}", events.len()),
            ));
        }
        let state = state(ctx)?;
        let prepared = prepare_ingest(state, principal, events, now(ctx)?)?;
        let head_before = state.store.head().await.map_err(from_store)?.last_position;
        // In the given order, each event an append of its own (so each is
        // idempotent on its own id), all of them or none.
        let appends = prepared
            .into_iter()
            .map(|(stream, event)| (stream, ExpectedVersion::StreamExists, vec![event]))
            .collect();
        let results = state
            .store
            .append_all_or_nothing(appends)
            .await
            .map_err(|refusal| match refusal {
                StoreError::InBatch { index, source } if source.is_caller_error() => ingest_error(index, source),
                other => from_store(other),
            })?;
        let mut appended = 0;
        let mut duplicates = 0;
        let mut last = head_before;
        for result in results {
            if Some(result.position) <= head_before {
                duplicates += 1;
            } else {
                appended += 1;
                last = last.max(Some(result.position));
            }
        }
        state.metrics.record_appended(appended as u64);
        if let Some(position) = last {
            state.live.wait_for(position).await.map_err(from_store)?;
        }
        Ok(IngestResult {
            appended,
            duplicates,
            position: last.map(|p| p.to_string()),
        })
    }

    /// Puts a new policy in force (admins only).
    async fn set_policy(&self, ctx: &Context<'_>, input: PolicyInput) -> async_graphql::Result<Policy> {
        let principal = require(ctx, POLICY_WRITERS, "change the policy")?;
        let policy: rapport_domain::Policy = serde_json::from_value(input.document.0)
            .map_err(|e| bad_input(format!("the policy document does not parse: {e}")))?;
        policy.validate().map_err(|e| bad_input(e.to_string()))?;
        let expected = match input.expected_version {
            Some(version) if version >= 1 => ExpectedVersion::Exact(version as u64 - 1),
            Some(version) => return Err(bad_input(format!("expectedVersion must be 1 or more, got {version}"))),
            None => ExpectedVersion::Any,
        };
        let state = state(ctx)?;
        let event = NewEvent::new(
            Uuid::now_v7(),
            PolicyChanged { policy },
            now(ctx)?,
            principal.name.clone(),
        );
        append(state, StreamName::Policy, expected, event).await?;
        state
            .live
            .read(|model| model.projection.policies().last().map(Policy::new))
            .unwrap_or_else(|| Err(internal("no policy after a policy change")))
    }
}

fn prepare_ingest(
    state: &AppState,
    principal: &Principal,
    events: Vec<IngestEventInput>,
    now: Timestamp,
) -> async_graphql::Result<Vec<(StreamName, NewEvent)>> {
    let mut seen = HashSet::new();
    state.live.read(|model| {
        let clock = clock_rules(model);
        events
            .into_iter()
            .enumerate()
            .map(|(index, input)| {
                let contact_id = ContactId(input.contact_id);
                let Some(relationship) = model.projection.relationship(contact_id) else {
                    return Err(ingest_error(index, format!("contact {contact_id} is not registered")));
                };
                if !seen.insert(input.event_id) {
                    return Err(ingest_error(
                        index,
                        format!("event id {} appears twice", input.event_id),
                    ));
                }
                let channel = input.channel.map(Into::into).unwrap_or(relationship.primary_channel());
                let event: Event = match input.event_type {
                    IngestType::Reply => ReplyReceived { channel }.into(),
                    IngestType::Touch => TouchRecorded {
                        mode: input
                            .mode
                            .ok_or_else(|| ingest_error(index, "a touch needs a mode"))?
                            .into(),
                        channel,
                        campaign_id: input.campaign_id.map(rapport_domain::CampaignId),
                        sender: input
                            .sender
                            .ok_or_else(|| ingest_error(index, "a touch needs its sender"))?,
                        authorization: TouchAuthorization::External {
                            source: input.source.clone().unwrap_or_else(|| principal.name.clone()),
                        },
                    }
                    .into(),
                    IngestType::Block => ContactBlocked { channel }.into(),
                    IngestType::Unblock => ContactUnblocked { channel }.into(),
                    IngestType::Deletion => ContactDeletedUs { channel }.into(),
                    IngestType::Readd => ContactReadded { channel }.into(),
                    IngestType::Complaint => ComplaintFiled {
                        channel,
                        reason: input.reason,
                    }
                    .into(),
                    IngestType::ConsentGranted => ConsentGranted { source: input.source }.into(),
                    IngestType::ConsentWithdrawn => ConsentWithdrawn { source: input.source }.into(),
                };
                let occurred_at = timestamp(input.occurred_at).map_err(|e| ingest_error(index, e.message))?;
                clock
                    .check_fact(occurred_at, now)
                    .map_err(|refusal| ingest_error(index, refusal))?;
                let stream = StreamName::Contact(contact_id);
                let new_event = NewEvent::new(input.event_id, event, occurred_at, principal.name.clone());
                new_event.validate(&stream).map_err(|e| ingest_error(index, e))?;
                Ok((stream, new_event))
            })
            .collect()
    })
}
