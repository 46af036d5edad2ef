//! GraphQL output types and the mirrors of domain enums (the domain knows
//! nothing of GraphQL).

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{ComplexObject, Context, Enum, Json, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rapport_domain::{ContactId, RecordedEvent, StreamName, Timestamp};
use rapport_projections::Violation;
use rapport_store::EventStore;
use uuid::Uuid;

use super::errors::{OrRefusal, bad_input, from_store, internal, not_found};
use super::{page_size, timestamp, to_datetime};
use crate::state::AppState;
use rapport_app::gate::{Judged, judge};
use rapport_app::read::events_at;
use rapport_app::read_model::ReadModel;

macro_rules! mirror_enum {
    ($(#[$meta:meta])* $name:ident, $domain:path, { $($(#[$variant_meta:meta])* $variant:ident),* $(,)? }) => {
        $(#[$meta])*
        #[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
        pub enum $name { $($(#[$variant_meta])* $variant),* }

        impl From<$name> for $domain {
            fn from(value: $name) -> Self {
                match value { $($name::$variant => <$domain>::$variant),* }
            }
        }

        impl From<$domain> for $name {
            fn from(value: $domain) -> Self {
                match value { $(<$domain>::$variant => $name::$variant),* }
            }
        }
    };
}

mirror_enum!(SendMode, rapport_domain::SendMode, { Mass, OneToOne });
mirror_enum!(Channel, rapport_domain::Channel, { Wechat, Wecom, Sms, Email, Phone, Other });
mirror_enum!(Verdict, rapport_domain::Verdict, { Allow, Defer, RouteOneToOne, Deny });
mirror_enum!(Band, rapport_domain::Band, { Strong, Warm, Cool, Cold, Lost });
mirror_enum!(
    /// What a group post is for; a healthy mix is about 70 % content,
    /// 20 % interaction, 10 % promotion.
    PostKind, rapport_domain::PostKind, { Content, Interaction, Promotion });

/// A language rapport writes reasons and explanations in.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Language {
    /// English.
    En,
    /// Simplified Chinese.
    Zh,
}

impl From<Language> for rapport_domain::Language {
    fn from(value: Language) -> Self {
        match value {
            Language::En => rapport_domain::Language::English,
            Language::Zh => rapport_domain::Language::Chinese,
        }
    }
}

/// The language words are written in: the field's `lang` argument, else
/// the request's `Accept-Language`, else English.
fn language_of(ctx: &Context<'_>, asked: Option<Language>) -> rapport_domain::Language {
    asked.map_or_else(
        || ctx.data_opt::<rapport_domain::Language>().copied().unwrap_or_default(),
        Into::into,
    )
}
mirror_enum!(
    /// Why the gate answered as it did: stable codes clients match on
    /// (docs/scoring.md explains each).
    ReasonCode, rapport_domain::ReasonCode, {
    ContactErased,
    ContactDeletedUs,
    Blocked,
    OptedOut,
    RecentComplaint,
    HighValueContact,
    RelationshipTooWeak,
    NoRecentReplies,
    NewContact,
    FrequencyCap,
    QuietHours,
    UnansweredChats,
    PlatformCap,
    Unreachable,
    GroupArchived,
    GroupPostCeiling,
    NewGroupPostCap,
    GroupPostCap,
    PostSpacing,
    PromotionShare,
    MembersLeaving,
    GroupQuietHours,
});
mirror_enum!(
    /// What a token's holder may do (see docs/api.md).
    Role, rapport_app::tokens::Role, {
    /// Sees and writes only the contacts they own.
    Sales,
    /// All contacts, and overrides of the gate.
    Manager,
    /// Reads everything, replays and verifies; writes nothing.
    Auditor,
    /// The policy, and everything else.
    Admin,
    /// Only `ingestEvents`.
    Ingest,
});

/// Where a contact is in the relationship, most severe first.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum ContactStatus {
    /// Their personal data was erased at their request: nobody to write to.
    Erased,
    DeletedUs,
    Blocked,
    OptedOut,
    Active,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Principal {
    pub name: String,
    pub role: Role,
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct ScoreComponent {
    pub name: String,
    pub points: i32,
    #[graphql(skip)]
    pub component: rapport_domain::ScoreComponent,
}

#[ComplexObject]
impl ScoreComponent {
    /// What the points are based on, in `lang` (default: the request's
    /// Accept-Language, else English).
    async fn explanation(&self, ctx: &Context<'_>, lang: Option<Language>) -> &'static str {
        language_of(ctx, lang).explanation(&self.component)
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Strength {
    pub score: i32,
    pub band: Band,
    pub components: Vec<ScoreComponent>,
    pub at: DateTime<Utc>,
}

impl From<rapport_domain::Strength> for Strength {
    fn from(strength: rapport_domain::Strength) -> Self {
        Strength {
            score: i32::from(strength.score),
            band: strength.band.into(),
            components: strength
                .components
                .iter()
                .map(|component| ScoreComponent {
                    name: component.name.to_owned(),
                    points: component.points,
                    component: *component,
                })
                .collect(),
            at: to_datetime(strength.at),
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct Reason {
    pub code: ReasonCode,
    pub blocking: bool,
    #[graphql(skip)]
    pub reason: rapport_domain::Reason,
    #[graphql(skip)]
    pub tag_name: String,
}

#[ComplexObject]
impl Reason {
    /// The reason in words a salesperson understands, in `lang` (default:
    /// the request's Accept-Language, else English).
    async fn message(&self, ctx: &Context<'_>, lang: Option<Language>) -> String {
        language_of(ctx, lang).reason(&self.reason, &self.tag_name)
    }
}

/// Whether a send may go out, and why.
#[derive(SimpleObject, Clone, Debug)]
pub struct GateDecision {
    pub contact_id: Uuid,
    pub mode: SendMode,
    pub channel: Channel,
    pub verdict: Verdict,
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    pub next_allowed_at: Option<DateTime<Utc>>,
    pub score: i32,
    pub band: Band,
    pub best_send_hours: Vec<i32>,
    pub policy_version: i32,
    /// The ledger position the decision was computed at.
    pub position: Option<String>,
    pub at: DateTime<Utc>,
}

pub fn hours(set: u32) -> Vec<i32> {
    rapport_domain::hours::hours_in(set)
        .into_iter()
        .map(i32::from)
        .collect()
}

impl GateDecision {
    pub fn new(judged: &Judged) -> Self {
        let decision = &judged.decision;
        GateDecision {
            contact_id: judged.contact_id.0,
            mode: decision.mode.into(),
            channel: decision.channel.into(),
            verdict: decision.verdict.into(),
            allowed: decision.allowed(),
            reasons: decision
                .reasons
                .iter()
                .zip(judged.tag_names())
                .map(|(reason, tag_name)| Reason {
                    code: reason.code.into(),
                    blocking: reason.blocking,
                    reason: *reason,
                    tag_name: tag_name.clone(),
                })
                .collect(),
            next_allowed_at: decision.next_allowed_at.map(to_datetime),
            score: i32::from(decision.strength.score),
            band: decision.strength.band.into(),
            best_send_hours: hours(decision.best_send_hours),
            policy_version: decision.policy_version as i32,
            position: judged.position.map(|p| p.to_string()),
            at: to_datetime(decision.at),
        }
    }
}

/// Which read model a contact is seen through: now, or as known at a past position.
#[derive(Clone, Debug)]
pub enum View {
    Live,
    Replay(Arc<ReadModel>),
}

impl View {
    pub fn read<R>(&self, ctx: &Context<'_>, read: impl FnOnce(&ReadModel) -> R) -> async_graphql::Result<R> {
        match self {
            View::Live => Ok(ctx.data::<Arc<AppState>>()?.core.live.read(read)),
            View::Replay(model) => Ok(read(model)),
        }
    }
}

/// A contact, seen through a `View` at a business moment.
#[derive(Clone, Debug)]
pub struct Contact {
    pub id: ContactId,
    pub view: View,
    /// The moment `strength`, `gate` and the state default to.
    pub default_at: Timestamp,
    /// When the request arrived: a moment at or after it needs no fold,
    /// every event the view holds had happened by then.
    now: Timestamp,
    /// The view at `default_at`, folded at most once per contact and request.
    at_default: Arc<tokio::sync::OnceCell<View>>,
}

impl Contact {
    pub fn new(id: ContactId, view: View, default_at: Timestamp, now: Timestamp) -> Self {
        Contact {
            id,
            view,
            default_at,
            now,
            at_default: Arc::default(),
        }
    }

    /// The view in which the contact stands at business moment `at`: the
    /// view itself when `at` is not in the past (every event it knows has
    /// happened), else the contact folded again from the events of theirs
    /// that the view knows and that had occurred by `at`.
    async fn view_at(&self, ctx: &Context<'_>, at: Timestamp) -> async_graphql::Result<View> {
        if at == self.default_at {
            return self.at_default.get_or_try_init(|| self.fold_at(ctx, at)).await.cloned();
        }
        self.fold_at(ctx, at).await
    }

    async fn fold_at(&self, ctx: &Context<'_>, at: Timestamp) -> async_graphql::Result<View> {
        if at >= self.now {
            return Ok(self.view.clone());
        }
        let state = ctx.data::<Arc<AppState>>()?;
        let known_at = self.view.read(ctx, |model| model.projection.position())?;
        let (events, horizon) = events_at(&state.core.store, known_at, self.id, at).await.or_refusal()?;
        let folded = self
            .view
            .read(ctx, |model| ReadModel::for_contact(model, &events, horizon))?;
        Ok(View::Replay(Arc::new(folded)))
    }

    /// Reads the contact as it stood at `at`.
    async fn read_at<R>(
        &self,
        ctx: &Context<'_>,
        at: Timestamp,
        read: impl FnOnce(&ReadModel, &rapport_domain::Relationship) -> R,
    ) -> async_graphql::Result<R> {
        self.view_at(ctx, at)
            .await?
            .read(ctx, |model| {
                model
                    .projection
                    .relationship(self.id)
                    .map(|relationship| read(model, relationship))
            })?
            .ok_or_else(|| not_found(format!("contact {} at {at}", self.id)))
    }

    async fn read<R>(
        &self,
        ctx: &Context<'_>,
        read: impl FnOnce(&ReadModel, &rapport_domain::Relationship) -> R,
    ) -> async_graphql::Result<R> {
        self.read_at(ctx, self.default_at, read).await
    }

    /// The gate at `at`, in this contact's view.
    pub async fn decide(
        &self,
        ctx: &Context<'_>,
        mode: SendMode,
        channel: Option<Channel>,
        at: Timestamp,
    ) -> async_graphql::Result<GateDecision> {
        let state = ctx.data::<Arc<AppState>>()?;
        self.read_at(ctx, at, |model, _| {
            let judged = judge(model, self.id, mode.into(), channel.map(Into::into), at)?;
            state.metrics.record_verdict(judged.decision.verdict);
            Some(GateDecision::new(&judged))
        })
        .await?
        .ok_or_else(|| not_found(format!("contact {}", self.id)))
    }
}

#[Object]
impl Contact {
    async fn id(&self) -> Uuid {
        self.id.0
    }

    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |model, r| model.projection.symbols().name(r.owner()).to_owned())
            .await
    }

    async fn tags(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<String>> {
        self.read(ctx, |model, r| {
            r.tags()
                .iter()
                .map(|tag| model.projection.symbols().name(*tag).to_owned())
                .collect()
        })
        .await
    }

    /// Their IANA time zone, or the policy's default when they have none.
    async fn time_zone(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |model, r| {
            model.projection.current_policy().zone_of(r).name().to_owned()
        })
        .await
    }

    async fn primary_channel(&self, ctx: &Context<'_>) -> async_graphql::Result<Channel> {
        self.read(ctx, |_, r| r.primary_channel().into()).await
    }

    /// Personal data, as the ledger holds it now: absent if never given,
    /// "erased" once erased.
    async fn display_name(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<String>> {
        let state = ctx.data::<Arc<AppState>>()?;
        Ok(state.core.live.read(|model| model.display_name(self.id)))
    }

    async fn status(&self, ctx: &Context<'_>) -> async_graphql::Result<ContactStatus> {
        self.read(ctx, |_, r| {
            if r.erased() {
                ContactStatus::Erased
            } else if r.deleted_us() {
                ContactStatus::DeletedUs
            } else if r.is_blocked_on(r.primary_channel()) {
                ContactStatus::Blocked
            } else if r.consent() == rapport_domain::Consent::Withdrawn {
                ContactStatus::OptedOut
            } else {
                ContactStatus::Active
            }
        })
        .await
    }

    /// The contact stream's version the view knows: pass it as
    /// `expectedVersion` to write.
    async fn version(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        self.view
            .read(ctx, |model| {
                model
                    .projection
                    .relationship(self.id)
                    .map(|r| r.stream_version() as i64)
            })?
            .ok_or_else(|| not_found(format!("contact {}", self.id)))
    }

    /// The score at business moment `at` (default: the view's moment).
    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn strength(&self, ctx: &Context<'_>, at: Option<DateTime<Utc>>) -> async_graphql::Result<Strength> {
        let at = at.map(timestamp).transpose()?.unwrap_or(self.default_at);
        self.read_at(ctx, at, |model, r| {
            rapport_domain::strength(r, &model.projection.current_policy().policy.scoring, at).into()
        })
        .await
    }

    /// The gate at business moment `at` (default: the view's moment): only
    /// events that had occurred by then count.
    #[graphql(complexity = "super::FOLD_COST + child_complexity")]
    async fn gate(
        &self,
        ctx: &Context<'_>,
        mode: SendMode,
        at: Option<DateTime<Utc>>,
        channel: Option<Channel>,
    ) -> async_graphql::Result<GateDecision> {
        let at = at.map(timestamp).transpose()?.unwrap_or(self.default_at);
        self.decide(ctx, mode, channel, at).await
    }

    /// Local hours they usually reply in, once they have replied often enough.
    async fn best_send_hours(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<i32>> {
        self.read(ctx, |model, r| {
            hours(rapport_domain::gate::best_send_hours(
                r,
                model.projection.current_policy(),
                self.default_at,
            ))
        })
        .await
    }

    /// The score after each of their last `last` events (default 100, at
    /// most 500) as the view knows them, oldest first: what a chart of the
    /// relationship draws.
    // The contact's events are read and folded whole; every fifth point
    // counts as an item of a page.
    #[graphql(
        complexity = "super::STORE_READ_COST + super::FOLD_COST + super::page_cost(last.map(|n| n / 5)) * child_complexity"
    )]
    async fn score_history(&self, ctx: &Context<'_>, last: Option<i32>) -> async_graphql::Result<Vec<ScorePoint>> {
        let last = match last {
            None => SCORE_HISTORY_DEFAULT,
            Some(n) if (1..=SCORE_HISTORY_MAX as i32).contains(&n) => n as usize,
            Some(n) if n < 1 => return Err(bad_input(format!("last must be at least 1, got {n}"))),
            Some(n) => {
                return Err(super::errors::error(
                    super::errors::Code::LimitExceeded,
                    format!("last is at most {SCORE_HISTORY_MAX}, got {n}"),
                ));
            }
        };
        let (known_at, version) = self.view.read(ctx, |model| {
            let version = model.projection.relationship(self.id).map(|r| r.stream_version());
            (model.projection.position(), version)
        })?;
        let version = version.ok_or_else(|| not_found(format!("contact {}", self.id)))?;
        let state = ctx.data::<Arc<AppState>>()?;
        let horizon = rapport_projections::Horizon {
            known_at,
            occurred_by: None,
        };
        let events = rapport_app::read::contact_events(&state.core.store, self.id, horizon)
            .await
            .or_refusal()?;
        let window = rapport_app::read::TimelineWindow {
            since: None,
            after: version.checked_sub(last as u64),
            limit: Some(last),
        };
        let page = self
            .view
            .read(ctx, |model| rapport_app::read::timeline_of(events, model, window, last))?;
        Ok(page
            .entries
            .into_iter()
            .map(|entry| ScorePoint {
                position: entry.event.position.to_string(),
                occurred_at: to_datetime(entry.event.occurred_at),
                event_type: entry.event.event.event_type().to_owned(),
                score: i32::from(entry.score.score),
                band: entry.score.band.into(),
                send_mode: match &entry.event.event {
                    rapport_domain::Event::TouchRecorded(touch) => Some(touch.mode.into()),
                    _ => None,
                },
                violation: entry.violation.is_some(),
            })
            .collect())
    }

    /// The contact's events as the view knows them, oldest first, each touch
    /// with the decision it was sent under and, when it broke the gate as
    /// it stood then, the violation; the cursor is the stream version.
    #[graphql(complexity = "super::STORE_READ_COST + super::page_cost(first) * child_complexity")]
    async fn timeline(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, LedgerEvent>> {
        let first = page_size(first)?;
        let visible_until = self
            .view
            .read(ctx, |model| {
                model.projection.relationship(self.id).map(|r| r.stream_version())
            })?
            .ok_or_else(|| not_found(format!("contact {}", self.id)))?;
        let from = match after {
            Some(cursor) => match cursor.parse::<u64>() {
                Ok(version) if version <= visible_until => version + 1,
                _ => {
                    return Err(bad_input(format!(
                        "'{cursor}' is not a cursor of this timeline (versions 0 to {visible_until})"
                    )));
                }
            },
            None => 0,
        };
        let state = ctx.data::<Arc<AppState>>()?;
        let mut events = state
            .core
            .store
            .read_stream(StreamName::Contact(self.id), from, first + 1)
            .await
            .map_err(from_store)?;
        events.retain(|event| event.version <= visible_until);
        let has_next = events.len() > first;
        events.truncate(first);
        let principal = super::auth::principal(ctx)?;
        let shown: Vec<(Option<ViolationInfo>, bool)> = self.view.read(ctx, |model| {
            events
                .iter()
                .map(|event| {
                    (
                        model
                            .projection
                            .violation_at(event.position)
                            .map(|violation| ViolationInfo::of(violation, &event.event)),
                        hides_group(principal, model, &event.event),
                    )
                })
                .collect()
        })?;
        let mut connection = Connection::new(from > 0, has_next);
        connection
            .edges
            .extend(events.into_iter().zip(shown).map(|(event, (violation, hides))| {
                Edge::new(
                    event.version.to_string(),
                    LedgerEvent::shown_to(event, violation, hides),
                )
            }));
        Ok(connection)
    }
}

/// Whether `event`, on a contact's stream, names a group `principal` may
/// not see (a group that is not in the model counts as one).
pub fn hides_group(
    principal: &rapport_app::tokens::Principal,
    model: &ReadModel,
    event: &rapport_domain::Event,
) -> bool {
    let group_id = match event {
        rapport_domain::Event::ContactSpokeInGroup(spoke) => spoke.group_id,
        rapport_domain::Event::ContactLeftGroup(left) => left.group_id,
        _ => return false,
    };
    !model
        .projection
        .group(group_id)
        .is_some_and(|group| rapport_app::group::may_access_group(principal, group))
}

/// What a violation broke.
#[derive(SimpleObject, Clone, Debug)]
pub struct ViolationInfo {
    pub verdict: Verdict,
    pub reason_codes: Vec<ReasonCode>,
    pub policy_version: i32,
    pub override_reason: Option<String>,
}

impl ViolationInfo {
    /// The violation `event` is, with the override reason it carries.
    pub fn of(violation: &Violation, event: &rapport_domain::Event) -> Self {
        ViolationInfo {
            verdict: violation.verdict.into(),
            reason_codes: violation.reasons.iter().map(ReasonCode::from).collect(),
            policy_version: violation.policy_version as i32,
            override_reason: violation
                .overridden
                .then(|| event.override_reason().map(str::to_owned))
                .flatten(),
        }
    }
}

/// Points a score history holds by default, and at most.
const SCORE_HISTORY_DEFAULT: usize = 100;
const SCORE_HISTORY_MAX: usize = 500;

/// The score right after one of the contact's events.
#[derive(SimpleObject, Clone, Debug)]
pub struct ScorePoint {
    pub position: String,
    pub occurred_at: DateTime<Utc>,
    /// The event's type, as `LedgerEvent.type` names it.
    pub event_type: String,
    pub score: i32,
    pub band: Band,
    /// For touches: how they were sent.
    pub send_mode: Option<SendMode>,
    /// The event was a touch the gate would not have allowed.
    pub violation: bool,
}

/// One ledger event. Personal data is never part of it.
#[derive(SimpleObject, Clone, Debug)]
#[graphql(complex)]
pub struct LedgerEvent {
    pub position: String,
    pub stream: String,
    pub version: i64,
    pub event_id: Uuid,
    #[graphql(name = "type")]
    pub event_type: String,
    pub schema_version: i32,
    pub occurred_at: DateTime<Utc>,
    pub recorded_at: DateTime<Utc>,
    pub actor: String,
    pub contact_id: Option<Uuid>,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    /// Set when this touch broke the gate as it stood then.
    pub violation: Option<ViolationInfo>,
    #[graphql(skip)]
    pub payload_json: serde_json::Value,
}

#[ComplexObject]
impl LedgerEvent {
    async fn payload(&self) -> Json<serde_json::Value> {
        Json(self.payload_json.clone())
    }
}

impl LedgerEvent {
    /// The event without the contact a group member is linked to: for a
    /// reader who may not see that contact (a tool linked another owner's).
    /// Leaves out the group a contact's group signal came from, for a
    /// reader who may not see that group (its id would tell them of it).
    pub fn without_group_link(mut self) -> Self {
        if let Some(fields) = self.payload_json.as_object_mut() {
            fields.remove("groupId");
        }
        self
    }

    /// The event as `principal` may see it, once the contact's stream is
    /// theirs to read: the group of a group signal only if the group is too.
    pub fn shown_to(event: RecordedEvent, violation: Option<ViolationInfo>, hides_group: bool) -> Self {
        let shown = LedgerEvent::new(event, violation);
        if hides_group { shown.without_group_link() } else { shown }
    }

    pub fn without_member_link(mut self) -> Self {
        if let Some(fields) = self.payload_json.as_object_mut() {
            fields.remove("contactId");
        }
        self
    }

    pub fn new(event: RecordedEvent, violation: Option<ViolationInfo>) -> Self {
        LedgerEvent {
            position: event.position.to_string(),
            stream: event.stream.to_string(),
            version: event.version as i64,
            event_id: event.event_id,
            event_type: event.event.event_type().to_owned(),
            schema_version: i32::from(event.schema_version),
            occurred_at: to_datetime(event.occurred_at),
            recorded_at: to_datetime(event.recorded_at),
            actor: event.actor,
            contact_id: match event.stream {
                StreamName::Contact(id) => Some(id.0),
                _ => None,
            },
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            violation,
            payload_json: serde_json::from_slice(&event.event.encode()).unwrap_or(serde_json::Value::Null),
        }
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct LedgerInfo {
    pub head_position: Option<String>,
    pub event_count: i64,
    /// Record it outside the ledger; `verifyLedger(digest:)` checks against it later.
    pub digest: String,
    /// The position the projections have applied.
    pub projected_position: Option<String>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Finding {
    pub position: Option<String>,
    pub stream: Option<String>,
    pub problem: String,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Verification {
    pub intact: bool,
    pub events_checked: i64,
    pub streams_checked: i64,
    pub digest: String,
    pub finding: Option<Finding>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct Policy {
    pub version: i32,
    /// The position from which it was in force (none for the built-in default).
    pub since: Option<String>,
    pub document: Json<serde_json::Value>,
}

impl Policy {
    pub fn new(in_force: &rapport_projections::PolicyInForce) -> async_graphql::Result<Self> {
        Ok(Policy {
            version: in_force.policy.version as i32,
            since: in_force.since.map(|p| p.to_string()),
            document: Json(serde_json::to_value(&in_force.policy.policy).map_err(internal)?),
        })
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct RecordResult {
    pub event_id: Uuid,
    pub position: String,
    pub contact_version: i64,
    pub contact: Contact,
    /// For touches: the decision it was sent under (or overrode).
    pub decision: Option<GateDecision>,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct IngestResult {
    pub appended: i32,
    pub duplicates: i32,
    pub position: Option<String>,
}
