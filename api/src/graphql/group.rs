//! Customer groups in the API: `group`, `groups` with their health,
//! `groupGate`, `silentMembers`, the writes (`createGroup`,
//! `recordGroupMember`, `recordGroupPost` gated like `recordTouch`,
//! `archiveGroup`) and `groupAlerts`. The rules live in
//! `rapport_app::group` and the domain's group gate.

use std::sync::Arc;

use async_graphql::connection::{Connection, Edge};
use async_graphql::{Context, Enum, InputObject, Object, SimpleObject};
use chrono::{DateTime, Utc};
use rapport_app::group::{self as groups, CreateGroup, GroupWriteOptions, GroupWritten, MemberChange, PostRequest};
use rapport_app::read_model::ReadModel;
use rapport_domain::group::{Authorized, Group as DomainGroup, GroupDecision};
use rapport_domain::reengage::Nudge;
use rapport_domain::{ContactId, GroupId, Timestamp};
use uuid::Uuid;

use super::auth::{READERS, require};
use super::campaign::NudgeKind;
use super::errors::{OrRefusal, bad_input};
use super::types::{Contact, GateDecision, PostKind, Reason, Verdict, View, hours};
use super::{FOLD_COST, now, page_cost, page_size, timestamp, to_datetime};
use crate::state::AppState;

/// Silent members one answer lists at most.
pub const SILENT_MEMBERS_MAX: usize = 500;
/// Posts and days one answer lists at most.
pub const HISTORY_MAX: usize = 62;

/// What happened to a member.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChangeKind {
    Joined,
    /// Left of their own accord (counts in the leave rate).
    Left,
    /// Removed by the group's staff.
    Removed,
    /// Wrote in the group (activity only, never what they wrote).
    Spoke,
}

/// Which of a group's alerts is up.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum GroupAlertKind {
    /// More members left within the month than the policy allows.
    LeaveRate,
    /// Promotions are more of the recent posts than the policy allows.
    PromotionShare,
}

fn state<'a>(ctx: &Context<'a>) -> async_graphql::Result<&'a Arc<AppState>> {
    ctx.data::<Arc<AppState>>()
}

/// A group seen through a `View` at a business moment.
#[derive(Clone, Debug)]
pub struct GroupView {
    pub id: GroupId,
    pub view: View,
    /// The moment health, gate and silent members default to.
    pub default_at: Timestamp,
    /// When the request arrived: a moment at or after it needs no fold,
    /// every event the view holds had happened by then.
    now: Timestamp,
}

impl GroupView {
    pub fn new(id: GroupId, view: View, default_at: Timestamp, now: Timestamp) -> Self {
        GroupView {
            id,
            view,
            default_at,
            now,
        }
    }

    /// Reads the group as the view holds it, for a caller who may read it:
    /// a write's answer carries the group, and not every writer reads.
    fn read<R>(&self, ctx: &Context<'_>, read: impl FnOnce(&ReadModel, &DomainGroup) -> R) -> async_graphql::Result<R> {
        let principal = require(ctx, READERS, "read groups")?;
        let id = self.id;
        self.view
            .read(ctx, |model| {
                groups::check_group(principal, model, id).map(|group| read(model, group))
            })?
            .or_refusal()
    }

    /// Reads the group as it stood at `at`: folded again from its own
    /// events when `at` is in the past, as the view knew them.
    async fn read_at<R>(
        &self,
        ctx: &Context<'_>,
        at: Timestamp,
        read: impl FnOnce(&ReadModel, &DomainGroup) -> R,
    ) -> async_graphql::Result<R> {
        if at >= self.now {
            return self.read(ctx, read);
        }
        // The group as it is now decides who may see it then.
        self.read(ctx, |_, _| ())?;
        let state = state(ctx)?;
        let (known_at, policies) = self.view.read(ctx, |model| {
            (model.projection.position(), model.projection.policies().to_vec())
        })?;
        let group = groups::group_at(&state.core.store, known_at, &policies, self.id, at)
            .await
            .or_refusal()?;
        if group.created_at.is_none() {
            return Err(super::errors::not_found(format!("group {} created by {at}", self.id)));
        }
        self.view.read(ctx, |model| read(model, &group))
    }

    fn moment(&self, at: Option<DateTime<Utc>>) -> async_graphql::Result<Timestamp> {
        Ok(at.map(timestamp).transpose()?.unwrap_or(self.default_at))
    }
}

#[Object(name = "Group")]
impl GroupView {
    async fn id(&self) -> Uuid {
        self.id.0
    }

    async fn name(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |_, group| group.name.clone())
    }

    /// Staff id of the owner: sales staff see their own groups only.
    async fn owner(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |_, group| group.owner.clone())
    }

    async fn kind(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |_, group| group.kind.clone())
    }

    /// The group's IANA zone, else the policy's default.
    async fn time_zone(&self, ctx: &Context<'_>) -> async_graphql::Result<String> {
        self.read(ctx, |model, group| {
            group
                .zone(model.projection.current_policy().default_time_zone())
                .name()
                .to_owned()
        })
    }

    async fn created_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        self.read(ctx, |_, group| group.created_at.map(to_datetime))
    }

    async fn archived_at(&self, ctx: &Context<'_>) -> async_graphql::Result<Option<DateTime<Utc>>> {
        self.read(ctx, |_, group| group.archived_at.map(to_datetime))
    }

    /// The group stream's version: what the next write builds on.
    async fn version(&self, ctx: &Context<'_>) -> async_graphql::Result<i64> {
        self.read(ctx, |_, group| group.stream_version as i64)
    }

    /// Members, joins and leaves, who still speaks, posts against the cap
    /// and the content mix, at `at` (default now).
    #[graphql(complexity = "FOLD_COST + child_complexity")]
    async fn health(&self, ctx: &Context<'_>, at: Option<DateTime<Utc>>) -> async_graphql::Result<GroupHealth> {
        let at = self.moment(at)?;
        self.read_at(ctx, at, |model, group| {
            GroupHealth::new(&groups::health(model, group, at))
        })
        .await
    }

    /// May a post of `kind` go in at `at` (default now)?
    #[graphql(complexity = "FOLD_COST + child_complexity")]
    async fn gate(
        &self,
        ctx: &Context<'_>,
        kind: PostKind,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<GroupGateDecision> {
        let at = self.moment(at)?;
        let id = self.id;
        self.read_at(ctx, at, |model, group| {
            GroupGateDecision::new(id, &groups::decide(model, group, kind.into(), at), model)
        })
        .await
    }

    /// Members silent a week (a personal greeting) or two (an invitation),
    /// longest silent first, each linked contact with their own gate (at
    /// most 500, default 100).
    #[graphql(complexity = "FOLD_COST + silent_cost(first) * child_complexity")]
    async fn silent_members(
        &self,
        ctx: &Context<'_>,
        at: Option<DateTime<Utc>>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<SilentMember>> {
        let principal = super::auth::principal(ctx)?.clone();
        let first = silent_page(first)?;
        let at = self.moment(at)?;
        self.read_at(ctx, at, |model, group| {
            groups::silent_members(&principal, model, group, at, first)
                .into_iter()
                .map(|silent| SilentMember { silent, at })
                .collect()
        })
        .await
    }

    /// The latest posts (at most 62), newest first, with the members who
    /// left within a day of each: which posts cost members.
    async fn posts(&self, ctx: &Context<'_>, last: Option<i32>) -> async_graphql::Result<Vec<GroupPost>> {
        let last = history(last)?;
        self.read(ctx, |_, group| {
            group
                .posts
                .iter()
                .rev()
                .take(last)
                .map(|post| GroupPost {
                    at: to_datetime(post.at),
                    kind: post.kind.into(),
                    members_left_within_a_day: i32::from(post.leaves_after),
                    authorized: match post.authorized {
                        Authorized::Gate => PostAuthorization::Gate,
                        Authorized::Override => PostAuthorization::Override,
                        Authorized::Tool => PostAuthorization::Tool,
                    },
                    broke_gate: post.broke.map(Into::into),
                    broken_rules: post.reasons.iter().map(Into::into).collect(),
                })
                .collect()
        })
    }

    /// Joins, leaves and removals per UTC day (the latest, at most 62), newest first.
    async fn days(&self, ctx: &Context<'_>, last: Option<i32>) -> async_graphql::Result<Vec<GroupDay>> {
        let last = history(last)?;
        self.read(ctx, |_, group| {
            group
                .days
                .iter()
                .rev()
                .take(last)
                .map(|day| GroupDay {
                    day: chrono::NaiveDate::from_num_days_from_ce_opt(day.day + 719_163)
                        .map_or_else(String::new, |date| date.to_string()),
                    joined: i32::from(day.joined),
                    left: i32::from(day.left),
                    removed: i32::from(day.removed),
                })
                .collect()
        })
    }

    /// Joins, leaves and removals per calendar month in the group's zone
    /// (the latest, at most 24), newest first.
    async fn months(&self, ctx: &Context<'_>) -> async_graphql::Result<Vec<GroupMonth>> {
        self.read(ctx, |_, group| {
            group
                .months
                .iter()
                .rev()
                .take(rapport_domain::group::MONTHS_KEPT)
                .map(|((year, month), counts)| GroupMonth {
                    month: format!("{year:04}-{month:02}"),
                    joined: counts.joined as i32,
                    left: counts.left as i32,
                    removed: counts.removed as i32,
                })
                .collect()
        })
    }
}

fn history(last: Option<i32>) -> async_graphql::Result<usize> {
    match last {
        None => Ok(HISTORY_MAX),
        Some(n) if (1..=HISTORY_MAX as i32).contains(&n) => Ok(n as usize),
        Some(n) => Err(bad_input(format!("last must be 1 to {HISTORY_MAX}, got {n}"))),
    }
}

/// What a page of silent members counts: each row judges its contact.
fn silent_cost(first: Option<i32>) -> usize {
    first.map_or(super::PAGE_SIZE_MAX, |n| n.clamp(1, SILENT_MEMBERS_MAX as i32) as usize)
}

fn silent_page(first: Option<i32>) -> async_graphql::Result<usize> {
    match first {
        None => Ok(super::PAGE_SIZE_MAX),
        Some(n) if (1..=SILENT_MEMBERS_MAX as i32).contains(&n) => Ok(n as usize),
        Some(n) => Err(bad_input(format!("first must be 1 to {SILENT_MEMBERS_MAX}, got {n}"))),
    }
}

#[derive(SimpleObject, Clone, Debug)]
pub struct GroupPost {
    pub at: DateTime<Utc>,
    pub kind: PostKind,
    pub members_left_within_a_day: i32,
    pub authorized: PostAuthorization,
    /// The verdict the post broke, when the group gate as it stood just
    /// before it would not have let it go out (an override, or a tool's
    /// post); null when the gate allowed it.
    pub broke_gate: Option<Verdict>,
    /// The rules it broke.
    pub broken_rules: Vec<super::types::ReasonCode>,
}

/// On whose word a post went out.
#[derive(Enum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum PostAuthorization {
    /// The group gate allowed it.
    Gate,
    /// A manager overrode the gate and said why.
    Override,
    /// The group's own tool posted it; rapport was not asked.
    Tool,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct GroupDay {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub joined: i32,
    pub left: i32,
    pub removed: i32,
}

#[derive(SimpleObject, Clone, Debug)]
pub struct GroupMonth {
    /// `YYYY-MM`, in the group's zone.
    pub month: String,
    pub joined: i32,
    pub left: i32,
    pub removed: i32,
}

/// Posts by kind within the promotion window.
#[derive(SimpleObject, Clone, Debug)]
pub struct ContentMix {
    pub content: i32,
    pub interaction: i32,
    pub promotion: i32,
}

/// A group's health at one moment.
#[derive(SimpleObject, Clone, Debug)]
pub struct GroupHealth {
    pub members: i32,
    /// The health window in days (a month by default), which the counts below cover.
    pub window_days: i32,
    pub joined: i32,
    pub left: i32,
    pub removed: i32,
    /// Members who left within the window per thousand of all who were members within it.
    pub leave_rate_per_mille: i32,
    /// Members who spoke within the last 7 days.
    pub active_members: i32,
    pub posts_today: i32,
    pub posts_per_day_cap: i32,
    pub mix: ContentMix,
    pub alerts: Vec<GroupAlertKind>,
}

impl GroupHealth {
    fn new(health: &rapport_domain::group::GroupHealth) -> Self {
        let alerts = [
            (health.leave_rate_alert, GroupAlertKind::LeaveRate),
            (health.promotion_share_alert, GroupAlertKind::PromotionShare),
        ]
        .into_iter()
        .filter_map(|(up, kind)| up.then_some(kind))
        .collect();
        GroupHealth {
            members: health.members as i32,
            window_days: health.window_days as i32,
            joined: health.joined as i32,
            left: health.left as i32,
            removed: health.removed as i32,
            leave_rate_per_mille: health.leave_rate_per_mille as i32,
            active_members: health.active_members as i32,
            posts_today: health.posts_today as i32,
            posts_per_day_cap: health.posts_per_day_cap as i32,
            mix: ContentMix {
                content: health.mix[0] as i32,
                interaction: health.mix[1] as i32,
                promotion: health.mix[2] as i32,
            },
            alerts,
        }
    }
}

/// Whether a post may go into a group, and why.
#[derive(SimpleObject, Clone, Debug)]
pub struct GroupGateDecision {
    pub group_id: Uuid,
    pub kind: PostKind,
    pub verdict: Verdict,
    pub allowed: bool,
    pub reasons: Vec<Reason>,
    /// For `DEFER`: the earliest moment, at one of the group's active hours, every rule allows it.
    pub next_allowed_at: Option<DateTime<Utc>>,
    pub posts_today: i32,
    pub posts_per_day_cap: i32,
    /// Local hours (0 to 23) the group is posted into by preference: its
    /// members' own once they have spoken enough, else the articles' peaks.
    pub active_hours: Vec<i32>,
    pub time_zone: String,
    pub policy_version: i32,
    /// The ledger position the decision was computed at.
    pub position: Option<String>,
    pub at: DateTime<Utc>,
}

impl GroupGateDecision {
    pub fn new(group_id: GroupId, decision: &GroupDecision, model: &ReadModel) -> Self {
        GroupGateDecision {
            group_id: group_id.0,
            kind: decision.kind.into(),
            verdict: decision.verdict.into(),
            allowed: decision.allowed(),
            reasons: decision
                .reasons
                .iter()
                .map(|reason| Reason {
                    code: reason.code.into(),
                    blocking: reason.blocking,
                    reason: *reason,
                    tag_name: String::new(),
                })
                .collect(),
            next_allowed_at: decision.next_allowed_at.map(to_datetime),
            posts_today: decision.posts_today as i32,
            posts_per_day_cap: decision.posts_per_day_cap as i32,
            active_hours: hours(decision.active_hours),
            time_zone: decision.zone.name().to_owned(),
            policy_version: decision.policy_version as i32,
            position: model.projection.position().map(|p| p.to_string()),
            at: to_datetime(decision.at),
        }
    }
}

/// A member gone quiet, and what the articles say they are due.
#[derive(Clone, Debug)]
pub struct SilentMember {
    silent: groups::Silent,
    at: Timestamp,
}

#[Object]
impl SilentMember {
    /// The key the group's tool knows them by.
    async fn member(&self) -> &str {
        &self.silent.member
    }

    /// Days since they last spoke, or since they joined if they never have.
    async fn silent_days(&self) -> i32 {
        i32::try_from(self.silent.silent_days).unwrap_or(i32::MAX)
    }

    async fn spoke_ever(&self) -> bool {
        self.silent.spoke_ever
    }

    /// A personal greeting after a silent week, an invitation after two.
    async fn nudge(&self) -> NudgeKind {
        match self.silent.nudge {
            Nudge::Greeting => NudgeKind::Greeting,
            Nudge::Invitation => NudgeKind::Invitation,
        }
    }

    /// The linked contact, when you may see them.
    async fn contact(&self) -> Option<Contact> {
        self.silent
            .contact_id
            .map(|id| Contact::new(id, View::Live, self.at, self.at))
    }

    /// The linked contact's own gate for a personal chat: never greet
    /// someone it refuses (they deleted or blocked us).
    async fn contact_gate(&self) -> Option<GateDecision> {
        self.silent.contact_gate.as_ref().map(GateDecision::new)
    }

    /// Whether the personal word may go out now: a linked contact whose
    /// one-to-one gate allows it.
    async fn may_be_greeted(&self) -> bool {
        self.silent.may_be_greeted()
    }
}

#[derive(Default, Debug)]
pub struct GroupQuery;

#[Object]
impl GroupQuery {
    /// One group; NOT_FOUND when it does not exist or is not yours to see.
    async fn group(&self, ctx: &Context<'_>, id: Uuid) -> async_graphql::Result<Option<GroupView>> {
        let principal = require(ctx, READERS, "read groups")?;
        let group_id = GroupId(id);
        state(ctx)?
            .core
            .live
            .read(|model| groups::check_group(principal, model, group_id).map(|_| ()))
            .or_refusal()?;
        let now = now(ctx)?;
        Ok(Some(GroupView::new(group_id, View::Live, now, now)))
    }

    /// Groups in id order (sales staff see their own); the cursor is the last group id seen.
    #[graphql(complexity = "page_cost(first) * child_complexity")]
    async fn groups(
        &self,
        ctx: &Context<'_>,
        first: Option<i32>,
        after: Option<String>,
    ) -> async_graphql::Result<Connection<String, GroupView>> {
        let principal = require(ctx, READERS, "list groups")?;
        let first = page_size(first)?;
        let after = after
            .map(|cursor| {
                cursor
                    .parse::<Uuid>()
                    .map(GroupId)
                    .map_err(|_| bad_input(format!("after: '{cursor}' is not a cursor this API gave")))
            })
            .transpose()?;
        let now = now(ctx)?;
        let (ids, more) = state(ctx)?.core.live.read(|model| {
            let mut listed = groups::groups(principal, model, after).map(|(id, _)| id);
            let ids: Vec<GroupId> = listed.by_ref().take(first).collect();
            (ids, listed.next().is_some())
        });
        let mut connection = Connection::new(after.is_some(), more);
        connection.edges.extend(
            ids.into_iter()
                .map(|id| Edge::new(id.0.to_string(), GroupView::new(id, View::Live, now, now))),
        );
        Ok(connection)
    }

    /// May a post of `kind` go into the group at `at` (default now)?
    #[graphql(complexity = "FOLD_COST + child_complexity")]
    async fn group_gate(
        &self,
        ctx: &Context<'_>,
        group_id: Uuid,
        kind: PostKind,
        at: Option<DateTime<Utc>>,
    ) -> async_graphql::Result<GroupGateDecision> {
        let principal = require(ctx, READERS, "ask the group gate")?;
        let group_id = GroupId(group_id);
        state(ctx)?
            .core
            .live
            .read(|model| groups::check_group(principal, model, group_id).map(|_| ()))
            .or_refusal()?;
        let at = at.map(timestamp).transpose()?;
        let now = now(ctx)?;
        GroupView::new(group_id, View::Live, now, now)
            .gate(ctx, kind, at.map(to_datetime))
            .await
    }

    /// The group's silent members at `at` (default now); see `Group.silentMembers`.
    #[graphql(complexity = "FOLD_COST + silent_cost(first) * child_complexity")]
    async fn silent_members(
        &self,
        ctx: &Context<'_>,
        group_id: Uuid,
        at: Option<DateTime<Utc>>,
        first: Option<i32>,
    ) -> async_graphql::Result<Vec<SilentMember>> {
        let principal = require(ctx, READERS, "list silent members")?;
        let group_id = GroupId(group_id);
        state(ctx)?
            .core
            .live
            .read(|model| groups::check_group(principal, model, group_id).map(|_| ()))
            .or_refusal()?;
        let now = now(ctx)?;
        GroupView::new(group_id, View::Live, now, now)
            .silent_members(ctx, at, first)
            .await
    }
}

#[derive(InputObject, Debug)]
pub struct CreateGroupInput {
    /// The group's id; when absent, the idempotency key, else a new id.
    pub id: Option<Uuid>,
    pub name: String,
    /// Staff id of the owner; sales staff create groups for themselves.
    pub owner: Option<String>,
    /// What the group is for, in your words ("customers", "VIP").
    pub kind: String,
    /// IANA zone such as Asia/Shanghai; the policy default when absent.
    pub time_zone: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
}

#[derive(InputObject, Debug)]
pub struct RecordGroupMemberInput {
    pub group_id: Uuid,
    /// The key the group's tool knows the member by (not a name or a WeChat id).
    pub member: String,
    pub change: MemberChangeKind,
    /// For `JOINED`: the contact this member is, when known.
    pub contact_id: Option<Uuid>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
}

#[derive(InputObject, Debug)]
pub struct RecordGroupPostInput {
    pub group_id: Uuid,
    pub kind: PostKind,
    /// Managers only: post although the gate says no (never past the
    /// daily ceiling or into an archived group).
    #[graphql(name = "override")]
    pub override_: Option<super::mutation::OverrideInput>,
    /// The ingest role only: the tool that already posted it.
    pub source: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
}

#[derive(InputObject, Debug)]
pub struct ArchiveGroupInput {
    pub group_id: Uuid,
    pub reason: Option<String>,
    pub occurred_at: Option<DateTime<Utc>>,
    pub idempotency_key: Option<Uuid>,
}

/// A group write the ledger holds and the read model has applied.
#[derive(SimpleObject, Clone, Debug)]
pub struct GroupRecordResult {
    pub event_id: Uuid,
    pub position: String,
    pub group_version: i64,
    /// False when a retry was answered with what the first try wrote.
    pub appended: bool,
    pub group: GroupView,
    /// For posts: the decision it went out under (or overrode); null on a
    /// retry answered with the first write, and for the ingest role.
    pub decision: Option<GroupGateDecision>,
}

fn group_result(written: GroupWritten, decision: Option<GroupGateDecision>) -> GroupRecordResult {
    GroupRecordResult {
        event_id: written.event_id,
        position: written.position.to_string(),
        group_version: written.group_version as i64,
        appended: written.appended,
        group: GroupView::new(written.group_id, View::Live, written.at, written.at),
        decision,
    }
}

fn options(
    occurred_at: Option<DateTime<Utc>>,
    idempotency_key: Option<Uuid>,
) -> async_graphql::Result<GroupWriteOptions> {
    Ok(GroupWriteOptions {
        occurred_at: occurred_at.map(timestamp).transpose()?,
        idempotency_key,
    })
}

#[derive(Default, Debug)]
pub struct GroupMutation;

#[Object]
impl GroupMutation {
    async fn create_group(
        &self,
        ctx: &Context<'_>,
        input: CreateGroupInput,
    ) -> async_graphql::Result<GroupRecordResult> {
        let principal = super::auth::principal(ctx)?;
        let command = CreateGroup {
            id: input.id.map(GroupId),
            name: input.name,
            owner: input.owner,
            kind: input.kind,
            time_zone: input.time_zone,
            options: options(input.occurred_at, input.idempotency_key)?,
        };
        let written = groups::create_group(&state(ctx)?.core, principal, command)
            .await
            .or_refusal()?;
        Ok(group_result(written, None))
    }

    /// A member joined, left, was removed or spoke. A linked contact's
    /// speech and leaving count in their own score.
    async fn record_group_member(
        &self,
        ctx: &Context<'_>,
        input: RecordGroupMemberInput,
    ) -> async_graphql::Result<GroupRecordResult> {
        let principal = super::auth::principal(ctx)?;
        let change = match (input.change, input.contact_id) {
            (MemberChangeKind::Joined, contact_id) => MemberChange::Joined {
                contact_id: contact_id.map(ContactId),
            },
            (_, Some(_)) => return Err(bad_input("contactId links a member when they join, not later")),
            (MemberChangeKind::Left, None) => MemberChange::Left,
            (MemberChangeKind::Removed, None) => MemberChange::Removed,
            (MemberChangeKind::Spoke, None) => MemberChange::Spoke,
        };
        let options = options(input.occurred_at, input.idempotency_key)?;
        let written = groups::record_member(
            &state(ctx)?.core,
            principal,
            GroupId(input.group_id),
            &input.member,
            change,
            &options,
        )
        .await
        .or_refusal()?;
        Ok(group_result(written, None))
    }

    /// A post into a group: recorded only when the group gate allows it
    /// (GATE_DENIED otherwise, with the decision), unless a manager overrides.
    async fn record_group_post(
        &self,
        ctx: &Context<'_>,
        input: RecordGroupPostInput,
    ) -> async_graphql::Result<GroupRecordResult> {
        let principal = super::auth::principal(ctx)?;
        let request = PostRequest {
            group_id: GroupId(input.group_id),
            kind: input.kind.into(),
            override_reason: input.override_.map(|override_| override_.reason),
            source: input.source,
            options: options(input.occurred_at, input.idempotency_key)?,
        };
        let state = state(ctx)?;
        let posted = groups::record_post(&state.core, principal, request)
            .await
            .or_refusal()?;
        // The group's tool hears that its post is recorded, not what the
        // gate makes of the group: it reads nothing.
        let decision = posted
            .decision
            .filter(|_| READERS.contains(&principal.role))
            .map(|decision| {
                state
                    .core
                    .live
                    .read(|model| GroupGateDecision::new(posted.written.group_id, &decision, model))
            });
        Ok(group_result(posted.written, decision))
    }

    /// Closes a group: nothing more is posted into it or joins it.
    async fn archive_group(
        &self,
        ctx: &Context<'_>,
        input: ArchiveGroupInput,
    ) -> async_graphql::Result<GroupRecordResult> {
        let principal = super::auth::principal(ctx)?;
        let options = options(input.occurred_at, input.idempotency_key)?;
        let written = groups::archive_group(
            &state(ctx)?.core,
            principal,
            GroupId(input.group_id),
            input.reason,
            &options,
        )
        .await
        .or_refusal()?;
        Ok(group_result(written, None))
    }
}
