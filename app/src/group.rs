//! Customer groups: creating them, their membership and speech, posts
//! into them through the group gate, and what is read off them (health,
//! the gate, silent members with each linked contact's own gate). Roles as
//! for contacts: a group has an owner, and sales staff see and write only
//! their own groups; the ingest role hands in what group tools saw.

use rapport_domain::group::{GROUP_MEMBERS_MAX, Group, GroupDecision, GroupHealth, gate};
use rapport_domain::reengage::Nudge;
use rapport_domain::{
    ContactId, ContactLeftGroup, ContactSpokeInGroup, Event, GroupArchived, GroupCreated, GroupId, GroupMemberJoined,
    GroupMemberLeft, GroupMemberRemoved, GroupMemberSpoke, GroupPostRecorded, NewEvent, Position, PostKind, ReasonCode,
    SendMode, StreamName, Timestamp, TouchAuthorization, Verdict,
};
use rapport_store::{AppendResult, EventStore, ExpectedVersion, StoreError};
use uuid::Uuid;

use crate::access::{INGESTERS, OVERRIDERS, WRITERS, check_contact, may_access, require};
use crate::core::Core;
use crate::error::AppError;
use crate::gate::{Judged, judge};
use crate::read_model::ReadModel;
use crate::tokens::{Principal, Role};
use crate::write::own_event_id;

/// Roles that record membership and speech: staff, and the tools that run groups.
const MEMBER_WRITERS: &[Role] = &[Role::Sales, Role::Manager, Role::Admin, Role::Ingest];

/// The one answer for a group the caller may not see, whether it exists or not.
pub fn no_such_group(group_id: GroupId) -> AppError {
    AppError::NotFound(format!("group {group_id}"))
}

/// Whether `principal` may see or write this group: sales only their own.
pub fn may_access_group(principal: &Principal, group: &Group) -> bool {
    principal.role != Role::Sales || group.owner == principal.name
}

/// The group, if it exists and `principal` may see it; NOT_FOUND alike otherwise.
pub fn check_group<'a>(principal: &Principal, model: &'a ReadModel, group_id: GroupId) -> Result<&'a Group, AppError> {
    let group = model
        .projection
        .group(group_id)
        .ok_or_else(|| no_such_group(group_id))?;
    if !may_access_group(principal, group) {
        tracing::warn!(name = %principal.name, role = %principal.role, %group_id, "refused: a group owned by someone else (answered NOT_FOUND)");
        return Err(no_such_group(group_id));
    }
    Ok(group)
}

/// Groups the caller may read, in id order, after `after`.
pub fn groups<'a>(
    principal: &Principal,
    model: &'a ReadModel,
    after: Option<GroupId>,
) -> impl Iterator<Item = (GroupId, &'a Group)> + 'a {
    use std::ops::Bound;
    let start = after.map_or(Bound::Unbounded, Bound::Excluded);
    let principal = principal.clone();
    model
        .projection
        .groups()
        .range((start, Bound::Unbounded))
        .filter(move |(_, group)| group.created_at.is_some() && may_access_group(&principal, group))
        .map(|(id, group)| (*id, group))
}

/// The group gate for a post of `kind` at `at`, under the policy in force.
pub fn decide(model: &ReadModel, group: &Group, kind: PostKind, at: Timestamp) -> GroupDecision {
    let policy = model.projection.current_policy();
    gate(
        group,
        &policy.policy.groups,
        policy.version,
        policy.default_time_zone(),
        kind,
        at,
    )
}

/// The group's health at `at`, under the policy in force.
pub fn health(model: &ReadModel, group: &Group, at: Timestamp) -> GroupHealth {
    let policy = model.projection.current_policy();
    group.health(&policy.policy.groups, policy.default_time_zone(), at)
}

/// A member gone quiet, as an operator acts on them.
#[derive(Clone, Debug)]
pub struct Silent {
    pub member: String,
    pub silent_days: i64,
    pub spoke_ever: bool,
    pub nudge: Nudge,
    /// The linked contact, when the caller may see them.
    pub contact_id: Option<ContactId>,
    /// That contact's own one-to-one gate: greet only where it allows.
    pub contact_gate: Option<Judged>,
}

impl Silent {
    /// Whether the recommended personal word may go out now: never to a
    /// contact whose own gate refuses a personal chat (they deleted or
    /// blocked us, or we are chasing).
    pub fn may_be_greeted(&self) -> bool {
        self.contact_gate
            .as_ref()
            .is_some_and(|judged| judged.decision.verdict == Verdict::Allow)
    }
}

/// Members silent long enough for a greeting or an invitation, longest
/// silent first, at most `limit`; each linked contact the caller may see
/// comes with their one-to-one gate.
pub fn silent_members(
    principal: &Principal,
    model: &ReadModel,
    group: &Group,
    at: Timestamp,
    limit: usize,
) -> Vec<Silent> {
    let rules = &model.projection.current_policy().policy.groups;
    group
        .silent_members(rules, at)
        .into_iter()
        .take(limit)
        .map(|silent| {
            let contact_id = silent
                .contact_id
                .filter(|id| model.projection.relationship(*id).is_some() && may_access(principal, model, *id));
            Silent {
                member: silent.member.to_owned(),
                silent_days: silent.silent_days,
                spoke_ever: silent.spoke_ever,
                nudge: silent.nudge,
                contact_id,
                contact_gate: contact_id.and_then(|id| judge(model, id, SendMode::OneToOne, None, at)),
            }
        })
        .collect()
}

/// A write to a group the ledger holds and the read model has applied.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupWritten {
    pub event_id: Uuid,
    pub group_id: GroupId,
    pub position: Position,
    /// The group stream's version once the event is applied.
    pub group_version: u64,
    /// When it was asked for, on the ledger's clock.
    pub at: Timestamp,
    /// False when a retry was answered with what the first try wrote.
    pub appended: bool,
}

/// What every group write may carry.
#[derive(Clone, Debug, Default)]
pub struct GroupWriteOptions {
    /// Business time; now when absent.
    pub occurred_at: Option<Timestamp>,
    /// Makes a retry return the first write instead of writing again.
    pub idempotency_key: Option<Uuid>,
}

struct Write {
    now: Timestamp,
    occurred_at: Timestamp,
    event_id: Uuid,
}

impl Write {
    fn new(core: &Core, principal: &Principal, options: &GroupWriteOptions) -> Write {
        let now = core.clock.now();
        Write {
            now,
            occurred_at: options.occurred_at.unwrap_or(now),
            event_id: options
                .idempotency_key
                .map_or_else(Uuid::now_v7, |key| own_event_id(principal, key)),
        }
    }

    fn written(&self, group_id: GroupId, result: AppendResult, appended: bool) -> GroupWritten {
        GroupWritten {
            event_id: self.event_id,
            group_id,
            position: result.position,
            group_version: result.next_expected_version,
            at: self.now,
            appended,
        }
    }
}

/// A retried write: the event this id names in the group's stream, if the
/// same caller wrote the same kind of event under it; any other use of
/// the key is a CONFLICT.
async fn already_written(
    core: &Core,
    principal: &Principal,
    group_id: GroupId,
    write: &Write,
    same: impl Fn(&Event) -> bool,
) -> Result<Option<AppendResult>, AppError> {
    let Some(event) = core
        .store
        .read_event(StreamName::Group(group_id), write.event_id)
        .await?
    else {
        return Ok(None);
    };
    if event.actor != principal.name || !same(&event.event) {
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

/// Refuses a moment further from now than the clock's skew, saying what
/// happens now and where the past comes in instead.
fn happens_now(clock: &rapport_domain::policy::ClockRules, write: &Write, what: &str) -> Result<(), AppError> {
    clock.check_gated_touch(write.occurred_at, write.now).map_err(|_| {
        AppError::bad_input(format!(
            "occurredAt {} is more than {} s from the server clock ({}): {what}",
            write.occurred_at, clock.skew_max_secs, write.now
        ))
    })
}

/// The clock rules of the policy in force: how far business time may stray.
fn clock(model: &ReadModel) -> &rapport_domain::policy::ClockRules {
    &model.projection.current_policy().policy.clock
}

/// Checks an event against its limits before anything is written.
fn valid(event: &Event, stream: &StreamName) -> Result<(), AppError> {
    event
        .validate(stream, None)
        .map_err(|problem| AppError::bad_input(problem.to_string()))
}

/// Appends the events as one and waits until the read model has applied them.
async fn append_all(
    core: &Core,
    appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
) -> Result<AppendResult, AppError> {
    append_all_or(core, appends, AppError::from).await
}

/// As `append_all`, with the store's refusal (of the append it names)
/// turned into an error by `refused`.
async fn append_all_or(
    core: &Core,
    appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    refused: impl FnOnce(StoreError) -> AppError,
) -> Result<AppendResult, AppError> {
    let results = core
        .store
        .append_all_or_nothing(appends)
        .await
        .map_err(|refusal| match refusal {
            StoreError::InBatch { source, .. } => refused(*source),
            other => refused(other),
        })?;
    let first = *results
        .first()
        .ok_or_else(|| AppError::internal("an append of one group event returned nothing"))?;
    let last = results
        .iter()
        .map(|result| result.position)
        .max()
        .unwrap_or(first.position);
    core.live.wait_for(last).await.map_err(|cause| {
        AppError::Unavailable(format!(
            "the write was recorded at position {last}, but the read model has not applied it yet ({cause}); \
             retry only with the same idempotency key, or it is recorded twice"
        ))
    })?;
    Ok(first)
}

/// A new group, as staff create it.
#[derive(Clone, Debug)]
pub struct CreateGroup {
    /// The group's id; when absent, the idempotency key's event id, else a new id.
    pub id: Option<GroupId>,
    pub name: String,
    /// Staff id of the owner; whoever creates when absent.
    pub owner: Option<String>,
    pub kind: String,
    /// IANA zone; the policy default when absent.
    pub time_zone: Option<String>,
    pub options: GroupWriteOptions,
}

/// Creates a group. Sales staff create groups for themselves and cannot
/// pick ids, as with contacts.
pub async fn create_group(core: &Core, principal: &Principal, command: CreateGroup) -> Result<GroupWritten, AppError> {
    require(principal, WRITERS, "create groups")?;
    let owner = match (principal.role, command.owner.as_deref().map(str::trim)) {
        (Role::Sales, Some(owner)) if owner != principal.name => {
            return Err(AppError::Forbidden {
                role: principal.role.as_str(),
                action: "create groups for anyone but themselves".to_owned(),
            });
        }
        (_, Some(owner)) => owner.to_owned(),
        (_, None) => principal.name.clone(),
    };
    if principal.role == Role::Sales && command.id.is_some() {
        return Err(AppError::bad_input(
            "sales staff cannot choose a group's id: leave id out, and use idempotencyKey to retry",
        ));
    }
    let write = Write::new(core, principal, &command.options);
    let group_id = command.id.unwrap_or(GroupId(write.event_id));
    let stream = StreamName::Group(group_id);
    let event: Event = GroupCreated {
        name: command.name.trim().to_owned(),
        owner,
        kind: command.kind.trim().to_owned(),
        time_zone: command.time_zone,
    }
    .into();
    valid(&event, &stream)?;
    if command.options.idempotency_key.is_some()
        && let Some(earlier) = already_written(core, principal, group_id, &write, |e| e == &event).await?
    {
        return Ok(write.written(group_id, earlier, false));
    }
    // A group is new for its first weeks, and takes fewer posts then: it
    // is created now (within the clock's skew), so that a date in the past
    // cannot make it mature. Older groups come in through `import`.
    core.live.read(|model| {
        happens_now(
            clock(model),
            &write,
            "a group is created now; a group with a past comes in through `rapport import`",
        )
    })?;
    let new_event = NewEvent::new(write.event_id, event, write.occurred_at, principal.name.clone());
    let appended = append_all_or(
        core,
        vec![(stream, ExpectedVersion::NoStream, vec![new_event])],
        |refusal| match refusal {
            StoreError::WrongExpectedVersion { .. } => AppError::Conflict(format!("group {group_id} already exists")),
            other => other.into(),
        },
    )
    .await?;
    Ok(write.written(group_id, appended, true))
}

/// What happened to one member.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MemberChange {
    /// Joined, linked to a contact when we know who they are.
    Joined {
        contact_id: Option<ContactId>,
    },
    Left,
    Removed,
    Spoke,
}

/// Records a member's joining, leaving, removal or speech. A linked
/// contact's part goes onto their own stream in the same append: speaking
/// is a two-way signal for their score, and leaving within a day of a
/// post a negative one.
pub async fn record_member(
    core: &Core,
    principal: &Principal,
    group_id: GroupId,
    member: &str,
    change: MemberChange,
    options: &GroupWriteOptions,
) -> Result<GroupWritten, AppError> {
    require(principal, MEMBER_WRITERS, "record group members")?;
    let write = Write::new(core, principal, options);
    let stream = StreamName::Group(group_id);
    // Keys are compared exactly: a padded one is refused, not trimmed
    // into someone else's.
    let member = member.to_owned();
    let event: Event = match change {
        MemberChange::Joined { contact_id } => GroupMemberJoined {
            member: member.clone(),
            contact_id,
        }
        .into(),
        MemberChange::Left => GroupMemberLeft { member: member.clone() }.into(),
        MemberChange::Removed => GroupMemberRemoved { member: member.clone() }.into(),
        MemberChange::Spoke => GroupMemberSpoke { member: member.clone() }.into(),
    };
    valid(&event, &stream)?;
    // Who asks may write to the group, retry or not.
    core.live
        .read(|model| member_writer_access(principal, model, group_id).map(|_| ()))?;
    if options.idempotency_key.is_some()
        && let Some(earlier) = already_written(core, principal, group_id, &write, |e| e == &event).await?
    {
        return Ok(write.written(group_id, earlier, false));
    }
    let (version, contact_event) = core.live.read(|model| {
        let group = check_member_writer(principal, model, group_id)?;
        clock(model).check_fact(write.occurred_at, write.now)?;
        let known = group.members.get(member.as_str());
        let linked = known.and_then(|known| known.contact_id);
        let contact_event: Option<(ContactId, Event)> = match change {
            MemberChange::Joined { .. } if known.is_some() => {
                return Err(AppError::Conflict(format!(
                    "'{member}' is already a member of group {group_id}"
                )));
            }
            MemberChange::Joined { .. }
                if group
                    .departed
                    .get(member.as_str())
                    .is_some_and(|left| *left >= write.occurred_at) =>
            {
                return Err(AppError::bad_input(format!(
                    "'{member}' left group {group_id} after {}: a join cannot come before the leave",
                    write.occurred_at
                )));
            }
            MemberChange::Joined { contact_id } => {
                if group.members.len() >= GROUP_MEMBERS_MAX {
                    return Err(AppError::LimitExceeded(format!(
                        "group {group_id} has {GROUP_MEMBERS_MAX} members, the most a group holds"
                    )));
                }
                if let Some(contact_id) = contact_id {
                    check_linkable(principal, model, contact_id)?;
                }
                None
            }
            MemberChange::Left | MemberChange::Removed | MemberChange::Spoke if known.is_none() => {
                return Err(AppError::bad_input(format!(
                    "'{member}' is not a member of group {group_id}: record them joining first"
                )));
            }
            MemberChange::Left | MemberChange::Removed | MemberChange::Spoke
                if known.is_some_and(|known| known.joined_at > write.occurred_at) =>
            {
                return Err(AppError::bad_input(format!(
                    "'{member}' joined group {group_id} after {}: nothing of theirs comes before the join",
                    write.occurred_at
                )));
            }
            MemberChange::Left => linked.map(|contact_id| {
                let after_post = group.post_before(write.occurred_at).is_some();
                (contact_id, ContactLeftGroup { group_id, after_post }.into())
            }),
            MemberChange::Spoke => linked.map(|contact_id| (contact_id, ContactSpokeInGroup { group_id }.into())),
            MemberChange::Removed => None,
        };
        // A contact erased since the link takes no signal, and nobody
        // writes onto a contact they may not see (a sales member of a
        // group with another owner's contact in it).
        let contact_event = contact_event.filter(|(contact_id, _)| {
            model
                .projection
                .relationship(*contact_id)
                .is_some_and(|relationship| !relationship.erased())
                && may_access(principal, model, *contact_id)
        });
        Ok::<_, AppError>((group.stream_version, contact_event))
    })?;
    let mut appends = vec![(
        stream,
        ExpectedVersion::Exact(version),
        vec![NewEvent::new(
            write.event_id,
            event,
            write.occurred_at,
            principal.name.clone(),
        )],
    )];
    if let Some((contact_id, contact_event)) = contact_event {
        // Derived from the group event's id, so that a retry writes it once.
        let event_id = Uuid::new_v5(&write.event_id, b"contact");
        let mut signal = NewEvent::new(event_id, contact_event, write.occurred_at, principal.name.clone());
        signal.causation_id = Some(write.event_id);
        signal.correlation_id = write.event_id;
        appends.push((
            StreamName::Contact(contact_id),
            ExpectedVersion::StreamExists,
            vec![signal],
        ));
    }
    let appended = append_all(core, appends).await?;
    Ok(write.written(group_id, appended, true))
}

/// The group, for a caller who records its members: staff for the groups
/// they may see, the ingest role for any.
fn member_writer_access<'a>(
    principal: &Principal,
    model: &'a ReadModel,
    group_id: GroupId,
) -> Result<&'a Group, AppError> {
    if INGESTERS.contains(&principal.role) {
        model.projection.group(group_id).ok_or_else(|| no_such_group(group_id))
    } else {
        check_group(principal, model, group_id)
    }
}

/// As `member_writer_access`, for a group still open.
fn check_member_writer<'a>(
    principal: &Principal,
    model: &'a ReadModel,
    group_id: GroupId,
) -> Result<&'a Group, AppError> {
    let group = member_writer_access(principal, model, group_id)?;
    if group.archived_at.is_some() {
        return Err(AppError::Conflict(format!("group {group_id} is archived")));
    }
    Ok(group)
}

/// A member may be linked to a contact the caller may see (any contact,
/// for the ingest role).
fn check_linkable(principal: &Principal, model: &ReadModel, contact_id: ContactId) -> Result<(), AppError> {
    if principal.role == Role::Ingest {
        return model
            .projection
            .relationship(contact_id)
            .map(|_| ())
            .ok_or_else(|| crate::access::no_such_contact(contact_id));
    }
    check_contact(principal, model, contact_id)
}

/// A post into a group, as staff (or the tool that posted) ask to record it.
#[derive(Clone, Debug)]
pub struct PostRequest {
    pub group_id: GroupId,
    pub kind: PostKind,
    /// Managers only: why to post although the gate says no. No override
    /// passes an archived group or the daily ceiling.
    pub override_reason: Option<String>,
    /// The ingest role only: the tool that already posted it.
    pub source: Option<String>,
    pub options: GroupWriteOptions,
}

/// A recorded post and the group gate's decision it was taken under;
/// `None` for a retry answered with the first write (the gate now sees
/// the group with that post in it, which is not what it judged then).
#[derive(Clone, Debug)]
pub struct Posted {
    pub written: GroupWritten,
    pub decision: Option<GroupDecision>,
}

/// Records a post the group gate allows at its moment; anything else is
/// GATE_DENIED (with the decision) unless a manager overrides it. A post
/// another tool made is recorded as it happened, the ceiling aside.
pub async fn record_post(core: &Core, principal: &Principal, request: PostRequest) -> Result<Posted, AppError> {
    let external = request.source.is_some();
    if external {
        // The ingest role alone speaks for the tools: a post marked as a
        // tool's passes the ceiling, which no person's may.
        require(principal, &[Role::Ingest], "record posts other tools made")?;
        if request.override_reason.is_some() {
            return Err(AppError::bad_input(
                "a post another tool made has a source, not an override",
            ));
        }
    } else {
        require(principal, WRITERS, "post into groups")?;
        if request.override_reason.is_some() {
            require(principal, OVERRIDERS, "override the group gate")?;
        }
    }
    let write = Write::new(core, principal, &request.options);
    let group_id = request.group_id;
    let stream = StreamName::Group(group_id);
    // A retry answers with the post it recorded first, even when the gate
    // has closed since (that post closed it) or its moment has passed.
    let source = request.source.as_deref().map(str::trim);
    let reason = request.override_reason.as_deref().map(str::trim);
    let earlier = match request.options.idempotency_key {
        Some(_) => {
            already_written(core, principal, group_id, &write, |e| {
                matches!(e, Event::GroupPostRecorded(post)
                if post.kind == request.kind
                    && post.sender == principal.name
                    && match &post.authorization {
                        TouchAuthorization::External { source: earlier } => source == Some(earlier.as_str()),
                        TouchAuthorization::Override { reason: earlier } => {
                            source.is_none() && reason == Some(earlier.as_str())
                        }
                        TouchAuthorization::Gate { .. } => source.is_none() && reason.is_none(),
                    })
            })
            .await?
        }
        None => None,
    };
    let (decision, version, position) = core.live.read(|model| {
        let group = if external {
            model
                .projection
                .group(group_id)
                .ok_or_else(|| no_such_group(group_id))?
        } else {
            check_group(principal, model, group_id)?
        };
        let clock = clock(model);
        // A retry is judged again only to answer with; nothing is written.
        match (earlier.is_some(), external) {
            (true, _) => {}
            (false, true) => clock.check_fact(write.occurred_at, write.now)?,
            // A post the gate judges is dated close to now: business time
            // cannot move it to a day with room left.
            (false, false) => happens_now(
                clock,
                &write,
                "a post the group gate judges happens now, an override too; one a group's tool already \
                 made comes in through the ingest role with its source",
            )?,
        }
        let position = model.projection.position().map(|p| p.to_string()).unwrap_or_default();
        Ok::<_, AppError>((
            decide(model, group, request.kind, write.occurred_at),
            group.stream_version,
            position,
        ))
    })?;
    if let Some(earlier) = earlier {
        return Ok(Posted {
            written: write.written(group_id, earlier, false),
            decision: None,
        });
    }
    let authorization = match (source, reason) {
        (Some(source), _) => TouchAuthorization::External {
            source: source.to_owned(),
        },
        (None, Some(reason)) => TouchAuthorization::Override {
            reason: reason.to_owned(),
        },
        (None, None) => TouchAuthorization::Gate {
            verdict: decision.verdict,
            policy_version: decision.policy_version,
            position,
        },
    };
    let event: Event = GroupPostRecorded {
        kind: request.kind,
        sender: principal.name.clone(),
        authorization,
    }
    .into();
    valid(&event, &stream)?;
    let holds = |code: ReasonCode| decision.reasons.iter().any(|r| r.blocking && r.code == code);
    let passes = match (external, request.override_reason.is_some()) {
        // What a tool already posted is a fact, recorded even past the
        // ceiling (that is what the health report is for), but an
        // archived group takes nothing more.
        (true, _) => !holds(ReasonCode::GroupArchived),
        (false, true) => !holds(ReasonCode::GroupArchived) && !holds(ReasonCode::GroupPostCeiling),
        (false, false) => decision.allowed(),
    };
    if !passes {
        return Err(AppError::GroupGateDenied(Box::new(decision)));
    }
    // The decision holds for the group as it was: any event since makes
    // this a CONFLICT to retry, not a post the gate never saw.
    let new_event = NewEvent::new(write.event_id, event, write.occurred_at, principal.name.clone());
    let appended = append_all(core, vec![(stream, ExpectedVersion::Exact(version), vec![new_event])]).await?;
    Ok(Posted {
        written: write.written(group_id, appended, true),
        decision: Some(decision),
    })
}

/// Closes a group: nothing more is posted into it or joins it.
pub async fn archive_group(
    core: &Core,
    principal: &Principal,
    group_id: GroupId,
    reason: Option<String>,
    options: &GroupWriteOptions,
) -> Result<GroupWritten, AppError> {
    require(principal, WRITERS, "archive groups")?;
    let write = Write::new(core, principal, options);
    let stream = StreamName::Group(group_id);
    let event: Event = GroupArchived {
        reason: reason.map(|reason| reason.trim().to_owned()),
    }
    .into();
    valid(&event, &stream)?;
    core.live
        .read(|model| check_group(principal, model, group_id).map(|_| ()))?;
    if options.idempotency_key.is_some()
        && let Some(earlier) = already_written(core, principal, group_id, &write, |e| e == &event).await?
    {
        return Ok(write.written(group_id, earlier, false));
    }
    let version = core.live.read(|model| {
        let group = check_group(principal, model, group_id)?;
        clock(model).check_fact(write.occurred_at, write.now)?;
        if group.archived_at.is_some() {
            return Err(AppError::Conflict(format!("group {group_id} is already archived")));
        }
        Ok::<_, AppError>(group.stream_version)
    })?;
    let new_event = NewEvent::new(write.event_id, event, write.occurred_at, principal.name.clone());
    let appended = append_all(core, vec![(stream, ExpectedVersion::Exact(version), vec![new_event])]).await?;
    Ok(write.written(group_id, appended, true))
}

/// Events of one group read to fold it again at a past moment.
pub const GROUP_EVENTS_FOLDED_MAX: usize = 100_000;

/// The group as it stood at business moment `at`, as the ledger knew it
/// at `known_at`: folded again from its events that pass both, each under
/// the policy of `policies` in force when it was recorded.
pub async fn group_at(
    store: &dyn EventStore,
    known_at: Option<Position>,
    policies: &[rapport_projections::PolicyInForce],
    group_id: GroupId,
    at: Timestamp,
) -> Result<Group, AppError> {
    let horizon = rapport_projections::Horizon {
        known_at,
        occurred_by: Some(at),
    };
    let mut group = Group::default();
    let mut folded = 0;
    let mut from_version = 0;
    loop {
        let page = store
            .read_stream(StreamName::Group(group_id), from_version, rapport_store::READ_LIMIT_MAX)
            .await?;
        let Some(last) = page.last().map(|event| event.version) else {
            return Ok(group);
        };
        from_version = last + 1;
        // Counted as read, not as folded: a moment long past still reads
        // every event to find the few it keeps.
        folded += page.len();
        for event in page.iter().filter(|event| horizon.counts(event)) {
            // The policy in force when the event was recorded, as the live fold has it.
            let Some(in_force) = policies
                .iter()
                .rev()
                .find(|policy| policy.since.is_none_or(|since| since < event.position))
            else {
                continue;
            };
            group.apply_under(&event.event, event.version, event.occurred_at, &in_force.policy);
        }
        if folded > GROUP_EVENTS_FOLDED_MAX {
            return Err(AppError::LimitExceeded(format!(
                "group {group_id} has over {GROUP_EVENTS_FOLDED_MAX} events, more than one request folds again"
            )));
        }
    }
}
