//! Mutations: each resolver translates its input into a use case of
//! `rapport_app::write` and the answer back; the rules live there and in
//! the domain. Writes are idempotent by `idempotencyKey`, optimistic by
//! `expectedVersion`, and answered only once the read model has applied
//! them (read-your-writes).

use std::sync::Arc;

use async_graphql::{Context, Enum, InputObject, Json, Object};
use chrono::{DateTime, Utc};
use rapport_app::write::{self, Observed, RegisterContact, TouchRequest, WriteOptions, Written};
use rapport_domain::decide::{DeliveryOutcome, Fact};
use rapport_domain::{CampaignId, ContactId, Pii};
use uuid::Uuid;

use super::auth::{POLICY_WRITERS, WRITERS, principal, require};
use super::campaign::{LaunchCampaignInput, LaunchResult};
use super::errors::{OrRefusal, bad_input, internal};
use super::privacy::{EraseContactInput, ErasureReceipt};
use super::timestamp;
use super::types::{Channel, Contact, GateDecision, IngestResult, Policy, RecordResult, SendMode, View};
use crate::state::AppState;
use rapport_app::campaign::{LAUNCHERS, LaunchRequest};
use rapport_app::privacy::{self, EraseRequest};

#[derive(Debug, Default)]
pub struct LedgerMutation;

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
    /// The sending tool could not deliver a message (`reason` says why).
    DeliveryFailed,
    /// The channel reports the message read.
    MessageRead,
    /// The contact followed a link in the message.
    LinkClicked,
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
    /// For complaints and failed deliveries.
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

/// The write options of a contact input, checked and typed.
fn options(
    occurred_at: Option<DateTime<Utc>>,
    idempotency_key: Option<Uuid>,
    expected_version: Option<i64>,
) -> async_graphql::Result<WriteOptions> {
    let expected_version = match expected_version {
        None => None,
        Some(version) => Some(
            u64::try_from(version)
                .map_err(|_| bad_input(format!("expectedVersion must be 0 or more, got {version}")))?,
        ),
    };
    Ok(WriteOptions {
        occurred_at: occurred_at.map(timestamp).transpose()?,
        idempotency_key,
        expected_version,
    })
}

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

fn record_result(written: Written, decision: Option<GateDecision>) -> RecordResult {
    // The contact as it stands once the write is applied, at its moment.
    RecordResult {
        event_id: written.event_id,
        position: written.position.to_string(),
        contact_version: written.contact_version as i64,
        contact: Contact::new(written.contact_id, View::Live, written.at, written.at),
        decision,
    }
}

/// Records `fact` about the input's contact.
async fn record(
    ctx: &Context<'_>,
    contact_id: Uuid,
    fact: Fact,
    options: async_graphql::Result<WriteOptions>,
) -> async_graphql::Result<RecordResult> {
    // Whoever may not write learns nothing about their input's problems.
    let principal = require(ctx, WRITERS, "record contact events")?;
    let options = options?;
    let state = state(ctx)?;
    let written = write::record_fact(&state.core, principal, ContactId(contact_id), fact, &options)
        .await
        .or_refusal()?;
    state.metrics.record_appended(u64::from(written.appended));
    Ok(record_result(written, None))
}

/// The options of a contact input, by field name.
macro_rules! options_of {
    ($input:expr) => {
        options($input.occurred_at, $input.idempotency_key, $input.expected_version)
    };
}

fn channel(channel: Option<Channel>) -> Option<rapport_domain::Channel> {
    channel.map(Into::into)
}

#[Object]
impl LedgerMutation {
    async fn register_contact(&self, ctx: &Context<'_>, input: RegisterContactInput) -> async_graphql::Result<Contact> {
        let principal = require(ctx, WRITERS, "register contacts")?;
        let command = RegisterContact {
            id: input.id.map(ContactId),
            owner: input.owner,
            primary_channel: input.primary_channel.into(),
            time_zone: input.time_zone,
            tags: input.tags.unwrap_or_default(),
            pii: Pii {
                display_name: input.display_name,
                phone: input.phone,
                wechat_id: input.wechat_id,
                email: input.email,
            },
            occurred_at: input.occurred_at.map(timestamp).transpose()?,
            idempotency_key: input.idempotency_key,
        };
        let state = state(ctx)?;
        let written = write::register_contact(&state.core, principal, command)
            .await
            .or_refusal()?;
        state.metrics.record_appended(1);
        Ok(Contact::new(written.contact_id, View::Live, written.at, written.at))
    }

    /// Records a touch the gate allows at its moment; anything else is
    /// GATE_DENIED (with the decision) unless a manager overrides it.
    async fn record_touch(&self, ctx: &Context<'_>, input: RecordTouchInput) -> async_graphql::Result<RecordResult> {
        let principal = require(ctx, WRITERS, "record touches")?;
        let request = TouchRequest {
            contact_id: ContactId(input.contact_id),
            mode: input.mode.into(),
            channel: channel(input.channel),
            campaign_id: input.campaign_id.map(CampaignId),
            override_reason: input.override_.map(|override_| override_.reason),
            options: options_of!(input)?,
        };
        let state = state(ctx)?;
        let touched = write::record_touch(&state.core, principal, request).await;
        if let Err(rapport_app::AppError::GateDenied(judged)) = &touched {
            state.metrics.record_verdict(judged.decision.verdict);
        }
        let touched = touched.or_refusal()?;
        state.metrics.record_verdict(touched.judged.decision.verdict);
        state.metrics.record_appended(u64::from(touched.written.appended));
        let decision = GateDecision::new(&touched.judged);
        Ok(record_result(touched.written, Some(decision)))
    }

    async fn record_reply(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let fact = Fact::Replied {
            channel: channel(input.channel),
        };
        record(ctx, input.contact_id, fact, options_of!(input)).await
    }

    async fn record_block(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let fact = Fact::Blocked {
            channel: channel(input.channel),
        };
        record(ctx, input.contact_id, fact, options_of!(input)).await
    }

    async fn record_unblock(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let fact = Fact::Unblocked {
            channel: channel(input.channel),
        };
        record(ctx, input.contact_id, fact, options_of!(input)).await
    }

    /// The contact deleted us (removed the friend).
    async fn record_deletion(
        &self,
        ctx: &Context<'_>,
        input: ContactEventInput,
    ) -> async_graphql::Result<RecordResult> {
        let fact = Fact::DeletedUs {
            channel: channel(input.channel),
        };
        record(ctx, input.contact_id, fact, options_of!(input)).await
    }

    /// The contact added us again.
    async fn record_readd(&self, ctx: &Context<'_>, input: ContactEventInput) -> async_graphql::Result<RecordResult> {
        let fact = Fact::Readded {
            channel: channel(input.channel),
        };
        record(ctx, input.contact_id, fact, options_of!(input)).await
    }

    async fn record_complaint(
        &self,
        ctx: &Context<'_>,
        input: RecordComplaintInput,
    ) -> async_graphql::Result<RecordResult> {
        let options = options_of!(input);
        let fact = Fact::Complained {
            channel: channel(input.channel),
            reason: input.reason,
        };
        record(ctx, input.contact_id, fact, options).await
    }

    async fn set_consent(&self, ctx: &Context<'_>, input: SetConsentInput) -> async_graphql::Result<RecordResult> {
        let options = options_of!(input);
        let fact = Fact::Consented {
            granted: input.granted,
            source: input.source,
        };
        record(ctx, input.contact_id, fact, options).await
    }

    async fn tag_contact(&self, ctx: &Context<'_>, input: TagInput) -> async_graphql::Result<RecordResult> {
        let options = options_of!(input);
        record(ctx, input.contact_id, Fact::Tagged { tag: input.tag }, options).await
    }

    async fn untag_contact(&self, ctx: &Context<'_>, input: TagInput) -> async_graphql::Result<RecordResult> {
        let options = options_of!(input);
        record(ctx, input.contact_id, Fact::Untagged { tag: input.tag }, options).await
    }

    /// Appends facts observed elsewhere. Every item is checked first: one
    /// bad item rejects the batch (with its index) and nothing is written.
    /// Items already in the ledger (by `eventId`) count as duplicates.
    async fn ingest_events(
        &self,
        ctx: &Context<'_>,
        events: Vec<IngestEventInput>,
    ) -> async_graphql::Result<IngestResult> {
        let principal = principal(ctx)?;
        write::may_ingest(principal, events.len()).or_refusal()?;
        let observed = events
            .into_iter()
            .enumerate()
            .map(|(index, input)| observed(principal, input).map_err(|problem| in_batch(index, problem)))
            .collect::<async_graphql::Result<Vec<_>>>()?;
        let state = state(ctx)?;
        let ingested = write::ingest(&state.core, principal, observed).await.or_refusal()?;
        state.metrics.record_appended(ingested.appended as u64);
        Ok(IngestResult {
            appended: ingested.appended as i32,
            duplicates: ingested.duplicates as i32,
            position: ingested.position.map(|p| p.to_string()),
        })
    }

    /// Launches a campaign now: a touch for every contact the gate allows
    /// (less the holdout), the rest reported by verdict. Managers and
    /// admins; the same `idempotencyKey` resumes it.
    #[graphql(complexity = "super::PREFLIGHT_COST + child_complexity")]
    async fn launch_campaign(
        &self,
        ctx: &Context<'_>,
        input: LaunchCampaignInput,
    ) -> async_graphql::Result<LaunchResult> {
        let principal = require(ctx, LAUNCHERS, "launch campaigns")?;
        let holdout_percent = match input.holdout_percent {
            None => 0,
            Some(percent) => {
                u8::try_from(percent).map_err(|_| bad_input(format!("holdoutPercent is 0 to 50, got {percent}")))?
            }
        };
        let request = LaunchRequest {
            name: input.name,
            audience: input.audience.into_audience()?,
            mode: input.mode.into(),
            channel: input.channel.into(),
            holdout_percent,
            idempotency_key: input.idempotency_key,
        };
        let state = state(ctx)?;
        // A launch judges a whole audience: two at once at most.
        let _turn = state.ledger_walks.acquire().await.map_err(internal)?;
        let launched = rapport_app::campaign::launch(&state.core, principal, request)
            .await
            .or_refusal()?;
        state.metrics.record_appended(launched.appended as u64);
        Ok(LaunchResult(Arc::new(launched)))
    }

    /// Erases a person's personal data for good, at their request (admins,
    /// and managers if the policy's `privacy.managersMayErase`): their key is destroyed, their relationship signals stay, the
    /// gate refuses them; erasing again answers with the first receipt.
    async fn erase_contact(
        &self,
        ctx: &Context<'_>,
        input: EraseContactInput,
    ) -> async_graphql::Result<ErasureReceipt> {
        // Who may erase depends on the policy: the use case checks it first.
        let principal = principal(ctx)?;
        let state = state(ctx)?;
        let receipt = privacy::erase_contact(
            &state.core,
            principal,
            EraseRequest {
                contact_id: ContactId(input.contact_id),
                reason: input.reason,
                request_id: input.request_id,
            },
        )
        .await
        .or_refusal()?;
        state.metrics.record_appended(u64::from(!receipt.already_erased));
        Ok(receipt.into())
    }

    /// Puts a new policy in force (admins only).
    async fn set_policy(&self, ctx: &Context<'_>, input: PolicyInput) -> async_graphql::Result<Policy> {
        // The role before the input: nobody but an admin learns how it would parse.
        let principal = require(ctx, POLICY_WRITERS, "change the policy")?;
        let expected_version = match input.expected_version {
            None => None,
            Some(version) => Some(
                u32::try_from(version)
                    .ok()
                    .filter(|version| *version >= 1)
                    .ok_or_else(|| bad_input(format!("expectedVersion must be 1 or more, got {version}")))?,
            ),
        };
        let policy: rapport_domain::Policy = serde_json::from_value(input.document.0)
            .map_err(|e| bad_input(format!("the policy document does not parse: {e}")))?;
        let state = state(ctx)?;
        let version = write::set_policy(&state.core, principal, policy, expected_version)
            .await
            .or_refusal()?;
        state.metrics.record_appended(1);
        state.core.live.read(|model| {
            let in_force = model
                .projection
                .policies()
                .iter()
                .find(|in_force| in_force.policy.version == version)
                .ok_or_else(|| internal(format!("policy version {version} is not in the read model")))?;
            Policy::new(in_force)
        })
    }
}

fn in_batch(index: usize, problem: impl std::fmt::Display) -> async_graphql::Error {
    super::errors::from_app(rapport_app::AppError::in_batch(index, problem))
}

/// An ingested item as the fact it reports.
fn observed(principal: &rapport_app::tokens::Principal, input: IngestEventInput) -> Result<Observed, String> {
    let channel = channel(input.channel);
    let campaign_id = input.campaign_id.map(CampaignId);
    let delivery = |outcome| Fact::Delivery {
        outcome,
        channel,
        campaign_id,
    };
    let fact = match input.event_type {
        IngestType::Reply => Fact::Replied { channel },
        IngestType::Touch => Fact::SeenElsewhere {
            mode: input.mode.ok_or("a touch needs a mode")?.into(),
            channel,
            campaign_id,
            sender: input.sender.ok_or("a touch needs its sender")?,
            source: input.source.unwrap_or_else(|| principal.name.clone()),
        },
        IngestType::Block => Fact::Blocked { channel },
        IngestType::Unblock => Fact::Unblocked { channel },
        IngestType::Deletion => Fact::DeletedUs { channel },
        IngestType::Readd => Fact::Readded { channel },
        IngestType::Complaint => Fact::Complained {
            channel,
            reason: input.reason,
        },
        IngestType::ConsentGranted => Fact::Consented {
            granted: true,
            source: input.source,
        },
        IngestType::ConsentWithdrawn => Fact::Consented {
            granted: false,
            source: input.source,
        },
        IngestType::DeliveryFailed => delivery(DeliveryOutcome::Failed { reason: input.reason }),
        IngestType::MessageRead => delivery(DeliveryOutcome::Read),
        IngestType::LinkClicked => delivery(DeliveryOutcome::Clicked),
    };
    Ok(Observed {
        event_id: input.event_id,
        contact_id: ContactId(input.contact_id),
        fact,
        occurred_at: timestamp(input.occurred_at).map_err(|e| e.message)?,
    })
}
