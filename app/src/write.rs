//! The write use cases every adapter calls. Each one is: who asks may do
//! it → the contact as the read model has it → a pure decision in the
//! domain → one append → wait until the read model has applied it (so the
//! caller reads their own write). A refusal at any step writes nothing.

use std::collections::HashSet;

use rapport_domain::decide::{Fact, RecordTouch, TouchRejection, decide_fact, decide_registration, decide_touch};
use rapport_domain::policy::ClockRules;
use rapport_domain::{
    CampaignId, Channel, ContactId, ContactRegistered, NewEvent, Pii, Policy, PolicyChanged, Position, SendMode,
    StreamName, Timestamp,
};
use rapport_store::{AppendResult, EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

use crate::access::{
    INGESTERS, LAUNCHERS, OVERRIDERS, POLICY_WRITERS, WRITERS, check_contact, may_access, no_such_contact, require,
};
use crate::core::Core;
use crate::error::AppError;
use crate::gate::Judged;
use crate::read_model::ReadModel;
use crate::tokens::{Principal, Role};

/// Facts one ingestion may hand in.
pub const INGEST_BATCH_MAX: usize = 1_000;

/// Derives event ids from idempotency keys.
const IDEMPOTENCY_NAMESPACE: Uuid = Uuid::from_u128(0x7261_7070_6f72_745f_6964_656d_706f_7465);

/// The event id a caller's idempotency key stands for: derived from who
/// asks and the key, so a key is the caller's own and can neither name nor
/// probe an event someone else wrote.
pub fn own_event_id(principal: &Principal, key: Uuid) -> Uuid {
    let scoped = format!("{}:{}:{key}", principal.role, principal.name);
    Uuid::new_v5(&IDEMPOTENCY_NAMESPACE, scoped.as_bytes())
}

/// What every write about an existing contact may carry.
#[derive(Clone, Debug, Default)]
pub struct WriteOptions {
    /// Business time; now when absent.
    pub occurred_at: Option<Timestamp>,
    /// Makes a retry return the first write instead of writing again.
    pub idempotency_key: Option<Uuid>,
    /// The contact's version the caller read; CONFLICT if it moved on.
    pub expected_version: Option<u64>,
}

/// One write about an existing contact, resolved against the clock.
struct Write {
    now: Timestamp,
    contact_id: ContactId,
    occurred_at: Timestamp,
    event_id: Uuid,
    expected: ExpectedVersion,
}

impl Write {
    fn new(core: &Core, principal: &Principal, contact_id: ContactId, options: &WriteOptions) -> Write {
        let now = core.clock.now();
        Write {
            now,
            contact_id,
            occurred_at: options.occurred_at.unwrap_or(now),
            event_id: options
                .idempotency_key
                .map_or_else(Uuid::now_v7, |key| own_event_id(principal, key)),
            expected: options
                .expected_version
                .map_or(ExpectedVersion::StreamExists, ExpectedVersion::Exact),
        }
    }

    /// The version to append against when a decision was taken on the
    /// contact at `judged`: a client expecting another version is told at
    /// once, and an event appended since makes the append a CONFLICT.
    fn expected_at(&self, judged: u64) -> Result<ExpectedVersion, AppError> {
        match self.expected {
            ExpectedVersion::Exact(given) if given != judged => Err(AppError::Conflict(format!(
                "expectedVersion is {given}, but the contact was judged at version {judged}; read it again"
            ))),
            _ => Ok(ExpectedVersion::Exact(judged)),
        }
    }

    fn written(&self, result: AppendResult, appended: bool) -> Written {
        Written {
            event_id: self.event_id,
            contact_id: self.contact_id,
            position: result.position,
            contact_version: result.next_expected_version,
            at: self.now,
            appended,
        }
    }
}

/// A write the ledger holds and the read model has applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Written {
    pub event_id: Uuid,
    pub contact_id: ContactId,
    pub position: Position,
    /// The contact's version once the event is applied.
    pub contact_version: u64,
    /// When it was asked for, on the ledger's clock.
    pub at: Timestamp,
    /// False when a retry was answered with what the first try wrote.
    pub appended: bool,
}

/// The clock rules of the policy in force.
fn clock_rules(model: &ReadModel) -> ClockRules {
    model.projection.current_policy().policy.clock.clone()
}

/// Appends one event and waits until the read model has applied it.
async fn append(
    core: &Core,
    stream: StreamName,
    expected: ExpectedVersion,
    event: NewEvent,
) -> Result<AppendResult, StoreError> {
    let result = core.store.append(stream, expected, vec![event]).await?;
    applied(core, result.position).await?;
    Ok(result)
}

/// How often a gated write is judged again when another node wrote to the
/// contact first.
const GATED_WRITE_ATTEMPTS_MAX: u32 = 3;

/// Waits until the read model has applied everything the ledger holds now.
async fn catch_up(core: &Core) -> Result<(), StoreError> {
    match core.store.head().await?.last_position {
        Some(head) => applied(core, head).await,
        None => Ok(()),
    }
}

/// Waits until the read model has applied `position`. The write stands
/// whether or not it has: the caller is told so, and how to retry safely.
async fn applied(core: &Core, position: Position) -> Result<(), StoreError> {
    core.live.wait_for(position).await.map_err(|cause| {
        tracing::warn!(%position, %cause, "a write was recorded but not yet applied to the read model");
        StoreError::Unavailable(format!(
            "the write was recorded at position {position}, but the read model has not applied it yet \
             ({cause}); retry only with the same idempotency key, or it is recorded twice"
        ))
    })
}

/// A new contact, as someone registers them.
#[derive(Clone, Debug)]
pub struct RegisterContact {
    /// The contact's id; when absent, the idempotency key's event id, else a new id.
    pub id: Option<ContactId>,
    /// Staff id of the owner; whoever registers when absent.
    pub owner: Option<String>,
    pub primary_channel: Channel,
    /// IANA zone; the policy default when absent.
    pub time_zone: Option<String>,
    pub tags: Vec<String>,
    pub pii: Pii,
    pub occurred_at: Option<Timestamp>,
    pub idempotency_key: Option<Uuid>,
}

/// Registers a contact. Sales staff register contacts for themselves and
/// cannot pick ids (imported contacts' ids can be computed, and "already
/// registered" would tell them who exists).
pub async fn register_contact(
    core: &Core,
    principal: &Principal,
    command: RegisterContact,
) -> Result<Written, AppError> {
    require(principal, WRITERS, "register contacts")?;
    // Owners are compared by exact name: trim what was typed.
    let owner = match (principal.role, command.owner.as_deref().map(str::trim)) {
        (Role::Sales, Some(owner)) if owner != principal.name => {
            tracing::warn!(name = %principal.name, owner, "refused: registering for someone else");
            return Err(AppError::Forbidden {
                role: principal.role.as_str(),
                action: "register contacts for anyone but themselves".to_owned(),
            });
        }
        (_, Some(owner)) => owner.to_owned(),
        (_, None) => principal.name.clone(),
    };
    if principal.role == Role::Sales && command.id.is_some() {
        return Err(AppError::bad_input(
            "sales staff cannot choose a contact's id: leave id out, and use idempotencyKey to retry",
        ));
    }
    // A retry with the same key must land on the same stream: without an
    // explicit id, the contact's id is the key's event id.
    let event_id = command
        .idempotency_key
        .map_or_else(Uuid::now_v7, |key| own_event_id(principal, key));
    let contact_id = command.id.unwrap_or(ContactId(event_id));
    let stream = StreamName::Contact(contact_id);
    let now = core.clock.now();
    let occurred_at = command.occurred_at.unwrap_or(now);
    let pii = (command.pii != Pii::default()).then_some(command.pii);
    let registration = ContactRegistered {
        owner,
        primary_channel: command.primary_channel,
        time_zone: command.time_zone,
        tags: command.tags,
    };
    let clock = core.live.read(clock_rules);
    let event = decide_registration(registration, pii.as_ref(), &stream, &clock, occurred_at, now)?;
    let mut new_event = NewEvent::new(event_id, event, occurred_at, principal.name.clone());
    if let Some(pii) = pii {
        new_event = new_event.with_pii(pii);
    }
    let appended = append(core, stream, ExpectedVersion::NoStream, new_event)
        .await
        .map_err(|refusal| match refusal {
            StoreError::WrongExpectedVersion { .. } => {
                AppError::Conflict(format!("contact {contact_id} is already registered"))
            }
            other => other.into(),
        })?;
    // A retry answers with what it wrote first: only to whoever may see it now.
    if !core.live.read(|model| may_access(principal, model, contact_id)) {
        return Err(no_such_contact(contact_id));
    }
    Ok(Written {
        event_id,
        contact_id,
        position: appended.position,
        contact_version: appended.next_expected_version,
        at: now,
        appended: true,
    })
}

/// A send to one contact, as staff ask to record it.
#[derive(Clone, Debug)]
pub struct TouchRequest {
    pub contact_id: ContactId,
    pub mode: SendMode,
    /// The contact's primary channel when absent.
    pub channel: Option<Channel>,
    pub campaign_id: Option<CampaignId>,
    /// Managers only: why to send although the gate says no.
    pub override_reason: Option<String>,
    pub options: WriteOptions,
}

/// A recorded touch and the gate's decision it was taken under.
#[derive(Clone, Debug)]
pub struct Touched {
    pub written: Written,
    pub judged: Judged,
}

/// Records a touch the gate allows at its moment; anything else is
/// GATE_DENIED (with the decision) unless a manager overrides it.
pub async fn record_touch(core: &Core, principal: &Principal, request: TouchRequest) -> Result<Touched, AppError> {
    require(principal, WRITERS, "record touches")?;
    if request.override_reason.is_some() {
        require(principal, OVERRIDERS, "override the gate")?;
    }
    // A touch joins a campaign only as the campaign's launchers send it:
    // anyone else's would count in its aftermath and skew its holdout.
    if let Some(campaign_id) = request.campaign_id {
        require(principal, LAUNCHERS, "send as part of a campaign")?;
        let started = core.live.read(|model| {
            model
                .projection
                .campaigns()
                .get(campaign_id)
                .is_some_and(|record| record.started_at.is_some())
        });
        if !started {
            return Err(AppError::NotFound(format!("campaign {campaign_id}")));
        }
    }
    let write = Write::new(core, principal, request.contact_id, &request.options);
    let command = RecordTouch {
        mode: request.mode,
        channel: request.channel,
        campaign_id: request.campaign_id,
        sender: principal.name.clone(),
        occurred_at: write.occurred_at,
        override_reason: request.override_reason,
    };
    let mut attempt = 0;
    loop {
        attempt += 1;
        let (outcome, judged, version) = core.live.read(|model| {
            check_contact(principal, model, write.contact_id)?;
            let relationship = model
                .projection
                .relationship(write.contact_id)
                .ok_or_else(|| no_such_contact(write.contact_id))?;
            let position = model.projection.position().map(|p| p.to_string()).unwrap_or_default();
            let decided = decide_touch(
                relationship,
                model.projection.current_policy(),
                &command,
                &position,
                write.now,
            );
            let judged = Judged::new(model, write.contact_id, decided.gate);
            Ok::<_, AppError>((decided.outcome, judged, relationship.stream_version()))
        })?;
        // A retry answers with the touch it recorded first, even when the gate
        // has closed since (that touch closed it).
        if request.options.idempotency_key.is_some()
            && let Some(earlier) = already_recorded(core, principal, &write, &command, judged.decision.channel).await?
        {
            return Ok(Touched {
                written: write.written(earlier, false),
                judged,
            });
        }
        let touch = match outcome {
            Ok(touch) => touch,
            Err(TouchRejection::GateDenied) => return Err(AppError::GateDenied(Box::new(judged))),
            Err(TouchRejection::BusinessTime(refusal)) => return Err(refusal.into()),
        };
        // The decision holds for the contact as it was: any event since (a
        // block, a reply) makes this a CONFLICT to retry, not a send the gate
        // never saw.
        let expected = write.expected_at(version)?;
        let new_event = NewEvent::new(write.event_id, touch, write.occurred_at, principal.name.clone());
        match append(core, StreamName::Contact(write.contact_id), expected, new_event).await {
            Ok(appended) => {
                return Ok(Touched {
                    written: write.written(appended, true),
                    judged,
                });
            }
            // Judged on a read model behind the ledger (another rapport node
            // wrote first): catch up and judge again, never send on the stale
            // decision. A version the caller gave is the caller's to retry.
            Err(StoreError::WrongExpectedVersion { .. })
                if write.expected == ExpectedVersion::StreamExists && attempt < GATED_WRITE_ATTEMPTS_MAX =>
            {
                catch_up(core).await?;
            }
            Err(error) => return Err(error.into()),
        }
    }
}

/// A retried touch: the event with this id in the contact's stream, if it
/// is there. It must be the same touch by the same caller; any other use of
/// the key is a CONFLICT.
async fn already_recorded(
    core: &Core,
    principal: &Principal,
    write: &Write,
    touch: &RecordTouch,
    channel: Channel,
) -> Result<Option<AppendResult>, AppError> {
    let Some(event) = core
        .store
        .read_event(StreamName::Contact(write.contact_id), write.event_id)
        .await?
    else {
        return Ok(None);
    };
    let same_touch = event.actor == principal.name
        && matches!(&event.event, rapport_domain::Event::TouchRecorded(earlier)
            if earlier.mode == touch.mode
                && earlier.channel == channel
                && earlier.campaign_id == touch.campaign_id
                && earlier.sender == touch.sender);
    if !same_touch {
        return Err(AppError::Conflict(format!(
            "idempotencyKey {} was already used for a different write",
            write.event_id
        )));
    }
    Ok(Some(AppendResult {
        next_expected_version: event.version,
        position: event.position,
    }))
}

/// Records a fact about an existing contact the caller may write: a reply,
/// block, deletion, complaint, consent or tag. Touches go through
/// [`record_touch`]; touches seen elsewhere through [`ingest`].
pub async fn record_fact(
    core: &Core,
    principal: &Principal,
    contact_id: ContactId,
    fact: Fact,
    options: &WriteOptions,
) -> Result<Written, AppError> {
    require(principal, WRITERS, "record contact events")?;
    if fact.is_reported_by_a_sending_tool() {
        return Err(AppError::bad_input(
            "touches seen elsewhere and delivery outcomes are the sending tool's to report (ingestEvents); \
             a touch of yours goes through the gate (recordTouch)",
        ));
    }
    let write = Write::new(core, principal, contact_id, options);
    let pins_version = fact.pins_version();
    let (event, judged) = core.live.read(|model| {
        check_contact(principal, model, contact_id)?;
        let relationship = model
            .projection
            .relationship(contact_id)
            .ok_or_else(|| no_such_contact(contact_id))?;
        let event = decide_fact(
            relationship,
            model.projection.symbols(),
            &clock_rules(model),
            fact,
            write.occurred_at,
            write.now,
        )?;
        Ok::<_, AppError>((event, relationship.stream_version()))
    })?;
    let expected = if pins_version {
        write.expected_at(judged)?
    } else {
        write.expected
    };
    let new_event = NewEvent::new(write.event_id, event, write.occurred_at, principal.name.clone());
    let appended = append(core, StreamName::Contact(contact_id), expected, new_event).await?;
    Ok(write.written(appended, true))
}

/// One fact another tool saw, to be ingested under its own id.
#[derive(Clone, Debug)]
pub struct Observed {
    pub event_id: Uuid,
    pub contact_id: ContactId,
    pub fact: Fact,
    pub occurred_at: Timestamp,
}

/// What an ingestion wrote.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ingested {
    pub appended: usize,
    /// Facts the ledger already held under their ids.
    pub duplicates: usize,
    /// The highest position of the batch's facts, new or already held:
    /// the read model has applied everything up to it.
    pub position: Option<Position>,
}

/// Whether `principal` may ingest a batch of `count` facts: adapters ask
/// before they read the items, so that nobody learns what an item would
/// be refused for before they may ingest at all.
pub fn may_ingest(principal: &Principal, count: usize) -> Result<(), AppError> {
    require(principal, INGESTERS, "ingest events")?;
    if count > INGEST_BATCH_MAX {
        return Err(AppError::LimitExceeded(format!(
            "at most {INGEST_BATCH_MAX} events per batch, got {count}"
        )));
    }
    Ok(())
}

/// Appends facts observed elsewhere. Every item is checked first: one bad
/// item rejects the batch (with its index) and nothing is written. Items
/// already in the ledger (by id) count as duplicates.
pub async fn ingest(core: &Core, principal: &Principal, observed: Vec<Observed>) -> Result<Ingested, AppError> {
    may_ingest(principal, observed.len())?;
    let now = core.clock.now();
    let mut seen = HashSet::new();
    let prepared = core.live.read(|model| {
        let clock = clock_rules(model);
        observed
            .into_iter()
            .enumerate()
            .map(|(index, item)| {
                let Some(relationship) = model.projection.relationship(item.contact_id) else {
                    return Err(AppError::in_batch(
                        index,
                        format!("contact {} is not registered", item.contact_id),
                    ));
                };
                if !seen.insert(item.event_id) {
                    return Err(AppError::in_batch(
                        index,
                        format!("event id {} appears twice", item.event_id),
                    ));
                }
                let event = decide_fact(
                    relationship,
                    model.projection.symbols(),
                    &clock,
                    item.fact,
                    item.occurred_at,
                    now,
                )
                .map_err(|rejection| AppError::in_batch(index, rejection))?;
                let stream = StreamName::Contact(item.contact_id);
                let new_event = NewEvent::new(item.event_id, event, item.occurred_at, principal.name.clone());
                new_event
                    .validate(&stream)
                    .map_err(|invalid| AppError::in_batch(index, invalid))?;
                Ok((stream, new_event))
            })
            .collect::<Result<Vec<_>, AppError>>()
    })?;
    let head_before = core.store.head().await?.last_position;
    // In the given order, each event an append of its own (so each is
    // idempotent on its own id), all of them or none.
    let appends = prepared
        .into_iter()
        .map(|(stream, event)| (stream, ExpectedVersion::StreamExists, vec![event]))
        .collect();
    let results = core
        .store
        .append_all_or_nothing(appends)
        .await
        .map_err(|refusal| match refusal {
            StoreError::InBatch { index, source } if source.is_caller_error() => AppError::in_batch(index, source),
            other => other.into(),
        })?;
    let mut ingested = Ingested {
        appended: 0,
        duplicates: 0,
        position: None,
    };
    for result in results {
        if Some(result.position) <= head_before {
            ingested.duplicates += 1;
        } else {
            ingested.appended += 1;
        }
        ingested.position = ingested.position.max(Some(result.position));
    }
    // A retry of a batch already written reads its own writes too.
    if let Some(position) = ingested.position {
        applied(core, position).await?;
    }
    Ok(ingested)
}

/// Puts a new policy in force (admins only); returns its version.
/// `expected_version`: the version it replaces, CONFLICT if another came first.
pub async fn set_policy(
    core: &Core,
    principal: &Principal,
    policy: Policy,
    expected_version: Option<u32>,
) -> Result<u32, AppError> {
    require(principal, POLICY_WRITERS, "change the policy")?;
    policy
        .validate()
        .map_err(|invalid| AppError::bad_input(invalid.to_string()))?;
    let expected = match expected_version {
        Some(0) => return Err(AppError::bad_input("expectedVersion must be 1 or more, got 0")),
        Some(version) => ExpectedVersion::Exact(u64::from(version) - 1),
        None => ExpectedVersion::Any,
    };
    let event = NewEvent::new(
        Uuid::now_v7(),
        PolicyChanged { policy },
        core.clock.now(),
        principal.name.clone(),
    );
    let appended = append(core, StreamName::Policy, expected, event).await?;
    u32::try_from(appended.next_expected_version + 1).map_err(AppError::internal)
}
