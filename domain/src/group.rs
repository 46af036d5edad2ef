//! One customer group, folded event by event from its stream, and what the
//! articles' operators read off it: its health (members, leaves, who still
//! speaks, the content mix, which posts cost members) and the gate on
//! posting into it (`gate`). As with contacts the fold holds no policy:
//! every cap and threshold is applied at evaluation.

use std::collections::{BTreeMap, VecDeque};

use chrono::{Datelike, Duration};
use chrono_tz::Tz;

use crate::event::{Event, PostKind, TouchAuthorization, Verdict};
use crate::gate::{CompiledPolicy, Facts, Reason, ReasonCode, ReasonSet};
use crate::hours::{HourSet, Window, instant_of, local_date, local_minute_of_day};
use crate::ids::ContactId;
use crate::policy::{GROUP_WINDOW_SECS_MAX, GroupRules};
use crate::time::{MILLIS_PER_DAY, MILLIS_PER_MINUTE, Timestamp};

/// The most members a group holds (WeChat's own limit is 500; WeCom
/// customer groups reach 2,000): a join beyond it is refused.
pub const GROUP_MEMBERS_MAX: usize = 2_000;
/// Posts a group remembers one by one: a month of posts at the hard
/// ceiling and then some. Older ones are dropped first.
pub const POSTS_KEPT_MAX: usize = 1_024;
/// Days of joins and leaves a group remembers: two health windows.
const DAYS_KEPT: usize = 2 * (GROUP_WINDOW_SECS_MAX as usize / 86_400);
/// Calendar months of joins and leaves a group remembers: two years.
pub const MONTHS_KEPT: usize = 24;
/// A leave this soon after a post counts against the post.
pub const LEAVE_AFTER_POST_MILLIS: i64 = MILLIS_PER_DAY;
/// Members who spoke this recently count as active.
pub const ACTIVE_MEMBER_DAYS: i64 = 7;
/// The articles' peaks of activity (08:00, 12:00, 19:00), used until a
/// group has spoken enough for its own hours to show.
const PEAK_HOURS: HourSet = (1 << 8) | (1 << 12) | (1 << 19);
/// Hours a group's own activity peaks at, once known.
const LEARNED_PEAKS: usize = 3;
/// Rounds of "defer until, then check again" the gate takes to find the
/// next allowed moment.
const NEXT_ALLOWED_ROUNDS: usize = 16;

/// One member as the group knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Member {
    pub contact_id: Option<ContactId>,
    pub joined_at: Timestamp,
    pub last_spoke_at: Option<Timestamp>,
}

/// One post, the members who left within a day of it, and whether the
/// group gate, as it stood just before, would have let it go out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Post {
    pub at: Timestamp,
    pub kind: PostKind,
    pub leaves_after: u16,
    pub authorized: Authorized,
    /// The verdict the post broke, and its blocking reasons; `None` when
    /// the gate allowed it.
    pub broke: Option<Verdict>,
    pub reasons: ReasonSet,
}

/// On whose word a post went out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Authorized {
    /// The group gate allowed it.
    Gate,
    /// A manager overrode the gate, and said why (on the event).
    Override,
    /// The group's own tool posted it; rapport was not asked.
    Tool,
}

/// A change of membership, as the day and month counts keep them.
#[derive(Clone, Copy, Debug)]
enum Move {
    Joined,
    Left,
    Removed,
}

/// Joins and leaves of one UTC day.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DayCounts {
    /// Days since the epoch.
    pub day: i32,
    pub joined: u16,
    pub left: u16,
    pub removed: u16,
}

/// Joins and leaves of one calendar month, in the group's zone.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct MonthCounts {
    pub joined: u32,
    pub left: u32,
    pub removed: u32,
}

/// Everything the group gate and the health report need about one group.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Group {
    pub name: String,
    pub owner: String,
    pub kind: String,
    #[serde(with = "crate::relationship::zone_index")]
    pub time_zone: Option<Tz>,
    pub created_at: Option<Timestamp>,
    pub archived_at: Option<Timestamp>,
    /// Members now, by the key the group's tool knows them by.
    pub members: BTreeMap<Box<str>, Member>,
    /// When members who are gone left or were removed (the latest
    /// `GROUP_MEMBERS_MAX`): a join reported late, dated before the
    /// leave, does not bring them back.
    pub departed: BTreeMap<Box<str>, Timestamp>,
    /// Posts in business-time order, the newest `POSTS_KEPT_MAX` within
    /// the longest window a rule may look back over.
    pub posts: VecDeque<Post>,
    /// Posts dropped from `posts` before their window closed: the counts
    /// that reach back to it are floors.
    pub posts_dropped: u32,
    pub days: VecDeque<DayCounts>,
    /// By (year, month) in the group's zone, the latest `MONTHS_KEPT`.
    pub months: BTreeMap<(i32, u8), MonthCounts>,
    /// Speech per local hour of day, halved together before one overflows.
    pub speech_hours: [u16; 24],
    pub speech_total: u32,
    /// The group stream's version after the last event folded.
    pub stream_version: u64,
}

fn day_of(at: Timestamp) -> i32 {
    i32::try_from(at.as_millis().div_euclid(MILLIS_PER_DAY)).unwrap_or(i32::MAX)
}

impl Group {
    /// Folds one event of the group's stream. Cannot fail: the write paths
    /// refuse what does not fit (a join beyond the member limit).
    pub fn apply(&mut self, event: &Event, stream_version: u64, occurred_at: Timestamp, default_zone: Tz) {
        self.stream_version = stream_version;
        match event {
            // A group is created once: another GroupCreated (an import
            // naming an existing id) changes neither its owner nor its name.
            Event::GroupCreated(_) if self.created_at.is_some() => {}
            Event::GroupCreated(e) => {
                self.name.clone_from(&e.name);
                self.owner.clone_from(&e.owner);
                self.kind.clone_from(&e.kind);
                self.time_zone = e.time_zone.as_deref().and_then(|zone| zone.parse().ok());
                self.created_at.get_or_insert(occurred_at);
            }
            Event::GroupMemberJoined(e) => {
                // A tool syncing again reports members it reported before:
                // they keep their history and are not counted twice.
                if let Some(member) = self.members.get_mut(e.member.as_str()) {
                    member.contact_id = e.contact_id.or(member.contact_id);
                    return;
                }
                if self
                    .departed
                    .get(e.member.as_str())
                    .is_some_and(|left| *left >= occurred_at)
                {
                    return;
                }
                self.departed.remove(e.member.as_str());
                if self.members.len() < GROUP_MEMBERS_MAX {
                    self.members.insert(
                        e.member.as_str().into(),
                        Member {
                            contact_id: e.contact_id,
                            joined_at: occurred_at,
                            last_spoke_at: None,
                        },
                    );
                }
                self.count(occurred_at, default_zone, Move::Joined);
            }
            Event::GroupMemberLeft(e) => {
                if !self.depart(&e.member, occurred_at) {
                    return;
                }
                if let Some(index) = self.post_before(occurred_at) {
                    self.posts[index].leaves_after = self.posts[index].leaves_after.saturating_add(1);
                }
                self.count(occurred_at, default_zone, Move::Left);
            }
            Event::GroupMemberRemoved(e) => {
                if !self.depart(&e.member, occurred_at) {
                    return;
                }
                self.count(occurred_at, default_zone, Move::Removed);
            }
            Event::GroupMemberSpoke(e) => {
                // Speech from before they joined (reported late) is not theirs to count.
                if let Some(member) = self.members.get_mut(e.member.as_str())
                    && occurred_at >= member.joined_at
                {
                    member.last_spoke_at = member.last_spoke_at.max(Some(occurred_at));
                }
                let zone = self.zone(default_zone);
                let hour = (local_minute_of_day(zone, occurred_at) / 60) as usize;
                if self.speech_hours[hour] == u16::MAX {
                    self.speech_hours.iter_mut().for_each(|count| *count /= 2);
                }
                self.speech_hours[hour] += 1;
                self.speech_total = self.speech_total.saturating_add(1);
            }
            Event::GroupPostRecorded(e) => {
                let authorized = match e.authorization {
                    TouchAuthorization::Gate { .. } => Authorized::Gate,
                    TouchAuthorization::Override { .. } => Authorized::Override,
                    TouchAuthorization::External { .. } => Authorized::Tool,
                };
                self.remember_post(occurred_at, e.kind, authorized);
            }
            Event::GroupArchived(_) => {
                self.archived_at.get_or_insert(occurred_at);
            }
            _ => {}
        }
    }

    /// Takes a member out at `at`; false (and nothing changes) for one
    /// who is not in, or who joined after `at` (a leave reported late,
    /// from before they came back).
    fn depart(&mut self, member: &str, at: Timestamp) -> bool {
        if self.members.get(member).is_none_or(|present| present.joined_at > at) {
            return false;
        }
        self.members.remove(member);
        self.departed.insert(member.into(), at);
        if self.departed.len() > GROUP_MEMBERS_MAX
            && let Some(oldest) = self
                .departed
                .iter()
                .min_by_key(|(_, left)| **left)
                .map(|(key, _)| key.clone())
        {
            self.departed.remove(&oldest);
        }
        true
    }

    /// Folds one event under `policy`, the policy in force when it was
    /// recorded: a post is also judged by the gate as the group stood just
    /// before it, and marked when the gate would not have let it go out.
    pub fn apply_under(&mut self, event: &Event, stream_version: u64, occurred_at: Timestamp, policy: &CompiledPolicy) {
        let zone = policy.default_time_zone();
        // Only the verdict and its reasons: not when it would have been allowed.
        let judged = match event {
            Event::GroupPostRecorded(post) if self.created_at.is_some() => Some(judge(
                self,
                &policy.policy.groups,
                self.zone(zone),
                post.kind,
                occurred_at,
            )),
            _ => None,
        };
        self.apply(event, stream_version, occurred_at, zone);
        if let Some(reasons) = judged {
            self.mark_broken(occurred_at, &reasons);
        }
    }

    /// Marks the post just folded at `at` as one the gate, asked just
    /// before it, would not have allowed: `reasons` is its answer.
    fn mark_broken(&mut self, at: Timestamp, reasons: &[Reason]) {
        let verdict = verdict_of(reasons);
        if verdict == Verdict::Allow {
            return;
        }
        let index = self.posts.partition_point(|post| post.at <= at);
        if let Some(post) = index.checked_sub(1).and_then(|index| self.posts.get_mut(index))
            && post.at == at
        {
            post.broke = Some(verdict);
            for reason in reasons.iter().filter(|reason| reason.blocking) {
                post.reasons.insert(reason.code);
            }
        }
    }

    pub fn zone(&self, default_zone: Tz) -> Tz {
        self.time_zone.unwrap_or(default_zone)
    }

    /// The post a leave at `at` counts against: the latest before it,
    /// if within a day.
    pub fn post_before(&self, at: Timestamp) -> Option<usize> {
        let after = self.posts.partition_point(|post| post.at <= at);
        let index = after.checked_sub(1)?;
        (at.as_millis() - self.posts[index].at.as_millis() <= LEAVE_AFTER_POST_MILLIS).then_some(index)
    }

    fn remember_post(&mut self, at: Timestamp, kind: PostKind, authorized: Authorized) {
        let index = self.posts.partition_point(|post| post.at <= at);
        self.posts.insert(
            index,
            Post {
                at,
                kind,
                leaves_after: 0,
                authorized,
                broke: None,
                reasons: ReasonSet::default(),
            },
        );
        let newest = self.posts.back().map_or(at, |post| post.at);
        let oldest_kept = newest.as_millis() - (GROUP_WINDOW_SECS_MAX as i64) * 1000;
        while self.posts.front().is_some_and(|post| post.at.as_millis() < oldest_kept) {
            self.posts.pop_front();
        }
        while self.posts.len() > POSTS_KEPT_MAX {
            self.posts.pop_front();
            self.posts_dropped = self.posts_dropped.saturating_add(1);
        }
    }

    fn count(&mut self, at: Timestamp, default_zone: Tz, moved: Move) {
        let day = day_of(at);
        let index = self.days.partition_point(|counts| counts.day < day);
        if self.days.get(index).is_none_or(|counts| counts.day != day) {
            self.days.insert(
                index,
                DayCounts {
                    day,
                    ..DayCounts::default()
                },
            );
        }
        if let Some(counts) = self.days.get_mut(index) {
            let counter = match moved {
                Move::Joined => &mut counts.joined,
                Move::Left => &mut counts.left,
                Move::Removed => &mut counts.removed,
            };
            *counter = counter.saturating_add(1);
        }
        while self.days.len() > DAYS_KEPT {
            self.days.pop_front();
        }
        let date = local_date(self.zone(default_zone), at);
        let month = self.months.entry((date.year(), date.month() as u8)).or_default();
        let counter = match moved {
            Move::Joined => &mut month.joined,
            Move::Left => &mut month.left,
            Move::Removed => &mut month.removed,
        };
        *counter = counter.saturating_add(1);
        while self.months.len() > MONTHS_KEPT {
            self.months.pop_first();
        }
    }

    /// Posts on the local day of `at` (before and after it: a backdated
    /// post counts against the day like any other).
    fn posts_on_day_of(&self, zone: Tz, at: Timestamp) -> u32 {
        let date = local_date(zone, at);
        let (Some(start), Some(end)) = (instant_of(zone, date, 0), instant_of(zone, date + Duration::days(1), 0))
        else {
            return 0;
        };
        let first = self.posts.partition_point(|post| post.at < start);
        let after = self.posts.partition_point(|post| post.at < end);
        after.saturating_sub(first) as u32
    }

    /// Members who left within the health window up to `at`, and all who
    /// were members within it (those here now and those who left or were
    /// removed, so that a group filled this month is measured against all
    /// who came).
    fn leaves(&self, rules: &GroupRules, at: Timestamp) -> (MonthCounts, u32) {
        let window_days = (rules.health_window_secs / 86_400) as i32;
        let moves = self.moves_within(at, window_days);
        let members = self.members.len() as u32;
        let everyone = members.saturating_add(moves.left).saturating_add(moves.removed).max(1);
        (moves, everyone)
    }

    /// Posts within `(at - window, at]`, and how many of them promoted.
    fn mix_within(&self, at: Timestamp, window_millis: i64) -> [u32; 3] {
        let from = at.as_millis() - window_millis;
        let start = self.posts.partition_point(|post| post.at.as_millis() <= from);
        let mut mix = [0; 3];
        for post in self.posts.range(start..).take_while(|post| post.at <= at) {
            mix[post.kind as usize] += 1;
        }
        mix
    }

    /// Joins, leaves and removals on the days within `window_days` up to `at`.
    fn moves_within(&self, at: Timestamp, window_days: i32) -> MonthCounts {
        let last = day_of(at);
        let first = last - window_days + 1;
        self.days
            .iter()
            .filter(|counts| (first..=last).contains(&counts.day))
            .fold(MonthCounts::default(), |sum, day| MonthCounts {
                joined: sum.joined.saturating_add(u32::from(day.joined)),
                left: sum.left.saturating_add(u32::from(day.left)),
                removed: sum.removed.saturating_add(u32::from(day.removed)),
            })
    }

    /// The group's health at `at` under `rules`.
    pub fn health(&self, rules: &GroupRules, default_zone: Tz, at: Timestamp) -> GroupHealth {
        let zone = self.zone(default_zone);
        let window_days = (rules.health_window_secs / 86_400) as i32;
        let (moves, members_before) = self.leaves(rules, at);
        let members = self.members.len() as u32;
        let active_since = at.as_millis() - ACTIVE_MEMBER_DAYS * MILLIS_PER_DAY;
        let active = self
            .members
            .values()
            .filter(|member| {
                member
                    .last_spoke_at
                    .is_some_and(|spoke| spoke.as_millis() > active_since)
            })
            .count() as u32;
        let mix = self.mix_within(at, secs_millis(rules.promotion_window_secs));
        let posts_in_window: u32 = mix.iter().sum();
        GroupHealth {
            members,
            joined: moves.joined,
            left: moves.left,
            removed: moves.removed,
            leave_rate_per_mille: (u64::from(moves.left) * 1000 / u64::from(members_before)) as u32,
            leave_rate_alert: u64::from(moves.left) * 100
                > u64::from(rules.leave_rate_max_percent) * u64::from(members_before),
            active_members: active,
            posts_today: self.posts_on_day_of(zone, at),
            posts_per_day_cap: u32::from(self.posts_per_day_cap(rules, at)),
            mix,
            promotion_share_alert: u64::from(mix[PostKind::Promotion as usize]) * 100
                > u64::from(rules.promotion_share_max_percent) * u64::from(posts_in_window),
            window_days: window_days as u32,
        }
    }

    fn age_days(&self, at: Timestamp) -> i64 {
        self.created_at.map_or(0, |created| {
            (at.as_millis() - created.as_millis()).div_euclid(MILLIS_PER_DAY)
        })
    }

    fn is_new(&self, rules: &GroupRules, at: Timestamp) -> bool {
        self.age_days(at) < i64::from(rules.new_group_days)
    }

    fn posts_per_day_cap(&self, rules: &GroupRules, at: Timestamp) -> u8 {
        if self.is_new(rules, at) {
            rules.new_group_posts_per_day
        } else {
            rules.mature_group_posts_per_day
        }
    }

    /// The local hours the group's members speak in most, once they have
    /// spoken enough; the articles' peaks until then.
    pub fn active_hours(&self, rules: &GroupRules) -> HourSet {
        if self.speech_total < u32::from(rules.active_hours_min_speech) {
            return PEAK_HOURS;
        }
        let mut hours: Vec<usize> = (0..24).collect();
        hours.sort_by_key(|hour| std::cmp::Reverse(self.speech_hours[*hour]));
        hours
            .into_iter()
            .take(LEARNED_PEAKS)
            .filter(|hour| self.speech_hours[*hour] > 0)
            .fold(0, |set, hour| set | (1 << hour))
    }

    /// Members silent at least `greeting_after_days`, with the days since
    /// they last spoke (or joined, for those who never have), longest first.
    pub fn silent_members(&self, rules: &GroupRules, at: Timestamp) -> Vec<SilentMember<'_>> {
        let mut silent: Vec<SilentMember<'_>> = self
            .members
            .iter()
            .filter_map(|(key, member)| {
                let since = member.last_spoke_at.unwrap_or(member.joined_at);
                let days = (at.as_millis() - since.as_millis()).div_euclid(MILLIS_PER_DAY);
                let nudge = if days >= i64::from(rules.invitation_after_days) {
                    crate::reengage::Nudge::Invitation
                } else if days >= i64::from(rules.greeting_after_days) {
                    crate::reengage::Nudge::Greeting
                } else {
                    return None;
                };
                Some(SilentMember {
                    member: key,
                    contact_id: member.contact_id,
                    silent_days: days,
                    spoke_ever: member.last_spoke_at.is_some(),
                    nudge,
                })
            })
            .collect();
        silent.sort_by(|a, b| b.silent_days.cmp(&a.silent_days).then(a.member.cmp(b.member)));
        silent
    }
}

fn secs_millis(secs: u64) -> i64 {
    i64::try_from(secs.saturating_mul(1000)).unwrap_or(i64::MAX)
}

/// A member gone quiet, and the word the articles say they are due.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SilentMember<'a> {
    pub member: &'a str,
    pub contact_id: Option<ContactId>,
    pub silent_days: i64,
    pub spoke_ever: bool,
    pub nudge: crate::reengage::Nudge,
}

/// A group's health at one moment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct GroupHealth {
    pub members: u32,
    /// Within the health window (a month by default).
    pub joined: u32,
    pub left: u32,
    pub removed: u32,
    /// Members who left within the window, per thousand of all who were
    /// members within it.
    pub leave_rate_per_mille: u32,
    pub leave_rate_alert: bool,
    /// Members who spoke within the last `ACTIVE_MEMBER_DAYS` days.
    pub active_members: u32,
    pub posts_today: u32,
    pub posts_per_day_cap: u32,
    /// Posts within the promotion window by kind (`PostKind as usize`).
    pub mix: [u32; 3],
    pub promotion_share_alert: bool,
    pub window_days: u32,
}

/// The group gate's answer for one post.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GroupDecision {
    pub kind: PostKind,
    pub verdict: Verdict,
    /// Every reason that fired, blocking ones first.
    pub reasons: Vec<Reason>,
    /// For `DEFER`: the earliest moment, at one of the group's active
    /// hours, every rule allows the post.
    pub next_allowed_at: Option<Timestamp>,
    pub posts_today: u32,
    pub posts_per_day_cap: u32,
    pub zone: Tz,
    pub active_hours: HourSet,
    pub policy_version: u32,
    pub at: Timestamp,
}

impl GroupDecision {
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

/// May a post of `kind` go into `group` at `at`? The rules, strongest
/// first: an archived group takes nothing; no day takes more than the
/// ceiling; a new group takes fewer posts a day than a mature one; posts
/// keep their spacing; promotions keep within their share; posting is
/// held while members leave faster than the policy allows; and posts go
/// within the posting window, in the group's zone.
pub fn gate(
    group: &Group,
    rules: &GroupRules,
    policy_version: u32,
    default_zone: Tz,
    kind: PostKind,
    at: Timestamp,
) -> GroupDecision {
    let zone = group.zone(default_zone);
    let reasons = judge(group, rules, zone, kind, at);
    let verdict = verdict_of(&reasons);
    let active_hours = group.active_hours(rules);
    let next_allowed_at = (verdict == Verdict::Defer)
        .then(|| next_allowed(group, rules, zone, kind, &reasons, active_hours))
        .flatten();
    GroupDecision {
        kind,
        verdict,
        reasons,
        next_allowed_at,
        posts_today: group.posts_on_day_of(zone, at),
        posts_per_day_cap: u32::from(group.posts_per_day_cap(rules, at)),
        zone,
        active_hours,
        policy_version,
        at,
    }
}

fn verdict_of(reasons: &[Reason]) -> Verdict {
    reasons
        .iter()
        .filter(|reason| reason.blocking)
        .map(|reason| reason.verdict)
        .max()
        .unwrap_or(Verdict::Allow)
}

/// Moves on from the latest moment a deferring reason names, to the next
/// active hour within the window, until every rule allows the post.
fn next_allowed(
    group: &Group,
    rules: &GroupRules,
    zone: Tz,
    kind: PostKind,
    first: &[Reason],
    active_hours: HourSet,
) -> Option<Timestamp> {
    let window = posting_window(rules);
    let mut reasons = first.to_vec();
    let mut from: Option<Timestamp> = None;
    for _ in 0..NEXT_ALLOWED_ROUNDS {
        // A reason that cannot say when it stops holding (a promotion
        // share with no promotion to age out) leaves the moment unknown.
        let untils: Option<Vec<Timestamp>> = reasons
            .iter()
            .filter(|reason| reason.blocking)
            .map(|reason| reason.until)
            .collect();
        let until = untils?.into_iter().max()?;
        let start = from.map_or(until, |from| from.max(until));
        let candidate = window.next_open(zone, start, active_hours);
        reasons = judge(group, rules, zone, kind, candidate);
        match verdict_of(&reasons) {
            Verdict::Allow => return Some(candidate),
            Verdict::Defer => from = Some(candidate.plus_millis(MILLIS_PER_MINUTE)),
            Verdict::RouteOneToOne | Verdict::Deny => return None,
        }
    }
    None
}

fn posting_window(rules: &GroupRules) -> Window {
    Window {
        start_minute: rules.start_minute,
        end_minute: rules.end_minute,
    }
}

fn blocking(code: ReasonCode, verdict: Verdict, until: Option<Timestamp>, facts: Facts) -> Reason {
    Reason {
        code,
        blocking: true,
        verdict,
        until,
        facts,
    }
}

/// Every rule that holds against the post, without looking ahead.
fn judge(group: &Group, rules: &GroupRules, zone: Tz, kind: PostKind, at: Timestamp) -> Vec<Reason> {
    let mut reasons = Vec::new();
    if group.archived_at.is_some() {
        reasons.push(blocking(
            ReasonCode::GroupArchived,
            Verdict::Deny,
            None,
            Facts::default(),
        ));
        return reasons;
    }
    let posts_today = group.posts_on_day_of(zone, at);
    let next_day = instant_of(zone, local_date(zone, at) + Duration::days(1), 0);
    if posts_today >= u32::from(rules.posts_per_day_ceiling) {
        reasons.push(blocking(
            ReasonCode::GroupPostCeiling,
            Verdict::Deny,
            None,
            Facts {
                count: posts_today,
                limit: u32::from(rules.posts_per_day_ceiling),
                ..Facts::default()
            },
        ));
        return reasons;
    }
    let cap = group.posts_per_day_cap(rules, at);
    if posts_today >= u32::from(cap) {
        let code = if group.is_new(rules, at) {
            ReasonCode::NewGroupPostCap
        } else {
            ReasonCode::GroupPostCap
        };
        reasons.push(blocking(
            code,
            Verdict::Defer,
            next_day,
            Facts {
                count: posts_today,
                limit: u32::from(cap),
                days_ago: group.age_days(at),
                ..Facts::default()
            },
        ));
    }
    let spacing = secs_millis(rules.post_spacing_secs);
    let first = group
        .posts
        .partition_point(|post| post.at.as_millis() <= at.as_millis() - spacing);
    let after = group
        .posts
        .partition_point(|post| post.at.as_millis() < at.as_millis() + spacing);
    let near = group.posts.range(first..after.max(first)).map(|post| post.at);
    let nearest = near.clone().map(|post| (post.as_millis() - at.as_millis()).abs()).min();
    if let (Some(nearest), Some(latest)) = (nearest, near.max()) {
        reasons.push(blocking(
            ReasonCode::PostSpacing,
            Verdict::Defer,
            Some(latest.plus_millis(spacing)),
            Facts {
                count: (nearest / MILLIS_PER_MINUTE) as u32,
                limit: (spacing / MILLIS_PER_MINUTE) as u32,
                ..Facts::default()
            },
        ));
    }
    if kind == PostKind::Promotion {
        let window = secs_millis(rules.promotion_window_secs);
        let mix = group.mix_within(at, window);
        let promotions = mix[PostKind::Promotion as usize] + 1;
        let posts = mix.iter().sum::<u32>() + 1;
        if u64::from(promotions) * 100 > u64::from(rules.promotion_share_max_percent) * u64::from(posts) {
            // The share falls when the oldest promotion in the window leaves it.
            let from = at.as_millis() - window;
            let oldest = group
                .posts
                .iter()
                .find(|post| post.kind == PostKind::Promotion && post.at.as_millis() > from && post.at <= at);
            reasons.push(blocking(
                ReasonCode::PromotionShare,
                Verdict::Defer,
                oldest.map(|post| post.at.plus_millis(window + 1)),
                Facts {
                    count: promotions * 100 / posts,
                    limit: u32::from(rules.promotion_share_max_percent),
                    days_ago: window / MILLIS_PER_DAY,
                    ..Facts::default()
                },
            ));
        }
    }
    let (moves, everyone) = group.leaves(rules, at);
    if u64::from(moves.left) * 100 > u64::from(rules.leave_rate_max_percent) * u64::from(everyone) {
        // The rate falls as the days with leaves pass out of the window.
        let window_days = (rules.health_window_secs / 86_400) as i64;
        let first_leave_day = group
            .days
            .iter()
            .find(|day| day.left > 0 && i64::from(day.day) > i64::from(day_of(at)) - window_days)
            .map(|day| i64::from(day.day));
        reasons.push(blocking(
            ReasonCode::MembersLeaving,
            Verdict::Defer,
            first_leave_day.map(|day| Timestamp::from_millis_unchecked((day + window_days) * MILLIS_PER_DAY)),
            Facts {
                count: (u64::from(moves.left) * 100).div_ceil(u64::from(everyone)) as u32,
                limit: u32::from(rules.leave_rate_max_percent),
                days_ago: window_days,
                ..Facts::default()
            },
        ));
    }
    let window = posting_window(rules);
    if !window.contains(zone, at) {
        reasons.push(blocking(
            ReasonCode::GroupQuietHours,
            Verdict::Defer,
            Some(window.next_open(zone, at, 0)),
            Facts {
                local_minute: local_minute_of_day(zone, at),
                zone: Some(zone),
                window: Some(window),
                ..Facts::default()
            },
        ));
    }
    reasons
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use chrono_tz::Asia::Shanghai;

    use super::*;
    use crate::event::{
        GroupArchived, GroupCreated, GroupMemberJoined, GroupMemberLeft, GroupMemberSpoke, GroupPostRecorded,
        TouchAuthorization,
    };

    /// A local moment in Shanghai, where the groups live.
    fn at(day: u32, hour: u32, minute: u32) -> Timestamp {
        let local = Shanghai
            .with_ymd_and_hms(2026, 3, day, hour, minute, 0)
            .single()
            .expect("a moment of March 2026");
        Timestamp::from_millis(local.timestamp_millis()).expect("in range")
    }

    struct Given {
        group: Group,
        version: u64,
    }

    impl Given {
        /// A group created at `created`, with `members` members who joined then.
        fn group(created: Timestamp, members: usize) -> Given {
            let mut given = Given {
                group: Group::default(),
                version: 0,
            };
            given.record(
                created,
                GroupCreated {
                    name: "Spring tea".into(),
                    owner: "alice".into(),
                    kind: "customers".into(),
                    time_zone: Some("Asia/Shanghai".into()),
                },
            );
            for member in 0..members {
                given.record(
                    created,
                    GroupMemberJoined {
                        member: format!("m{member}"),
                        contact_id: None,
                    },
                );
            }
            given
        }

        fn record(&mut self, at: Timestamp, event: impl Into<Event>) -> &mut Self {
            self.group.apply(&event.into(), self.version, at, Tz::UTC);
            self.version += 1;
            self
        }

        fn posted(&mut self, at: Timestamp, kind: PostKind) -> &mut Self {
            self.record(
                at,
                GroupPostRecorded {
                    kind,
                    sender: "alice".into(),
                    authorization: TouchAuthorization::External { source: "robot".into() },
                },
            )
        }

        fn gate(&self, kind: PostKind, at: Timestamp) -> GroupDecision {
            gate(&self.group, &GroupRules::default(), 1, Tz::UTC, kind, at)
        }
    }

    fn codes(decision: &GroupDecision) -> Vec<ReasonCode> {
        decision.reasons.iter().map(|reason| reason.code).collect()
    }

    #[test]
    fn the_fourth_post_of_a_new_groups_day_is_deferred_to_tomorrows_first_active_hour() {
        let mut given = Given::group(at(1, 9, 0), 40);
        for hour in [8, 12, 19] {
            given.posted(at(2, hour, 0), PostKind::Content);
        }
        let decision = given.gate(PostKind::Content, at(2, 20, 30));
        assert_eq!(decision.verdict, Verdict::Defer);
        assert_eq!(codes(&decision), [ReasonCode::NewGroupPostCap]);
        assert_eq!(decision.reasons[0].facts.count, 3);
        assert_eq!(decision.reasons[0].facts.limit, 3);
        assert_eq!(decision.next_allowed_at, Some(at(3, 8, 0)));
        // The third of the day was still allowed.
        let mut earlier = Given::group(at(1, 9, 0), 40);
        earlier
            .posted(at(2, 8, 0), PostKind::Content)
            .posted(at(2, 12, 0), PostKind::Content);
        assert!(earlier.gate(PostKind::Content, at(2, 19, 0)).allowed());
    }

    #[test]
    fn the_thirteenth_post_of_a_mature_groups_day_is_refused() {
        let mut given = Given::group(at(1, 9, 0).plus_millis(-60 * MILLIS_PER_DAY), 100);
        for post in 0..12 {
            given.posted(
                at(2, 8, 0).plus_millis(post * 40 * MILLIS_PER_MINUTE),
                PostKind::Content,
            );
        }
        let decision = given.gate(PostKind::Content, at(2, 21, 0));
        assert_eq!(decision.verdict, Verdict::Deny);
        assert_eq!(codes(&decision), [ReasonCode::GroupPostCeiling]);
        assert_eq!(decision.next_allowed_at, None);
    }

    #[test]
    fn a_mature_group_takes_eight_posts_a_day_and_the_ninth_waits() {
        let mut given = Given::group(at(1, 9, 0).plus_millis(-60 * MILLIS_PER_DAY), 100);
        for post in 0..8 {
            given.posted(
                at(2, 8, 0).plus_millis(post * 60 * MILLIS_PER_MINUTE),
                PostKind::Content,
            );
        }
        let decision = given.gate(PostKind::Content, at(2, 18, 0));
        assert_eq!(codes(&decision), [ReasonCode::GroupPostCap]);
        assert_eq!(decision.verdict, Verdict::Defer);
    }

    #[test]
    fn a_promotion_over_the_share_is_deferred_and_content_is_not() {
        let mut given = Given::group(at(1, 9, 0).plus_millis(-60 * MILLIS_PER_DAY), 100);
        for day in 1..=3 {
            given.posted(at(day, 9, 0), PostKind::Content);
            given.posted(at(day, 13, 0), PostKind::Interaction);
        }
        given.posted(at(3, 19, 0), PostKind::Promotion);
        let decision = given.gate(PostKind::Promotion, at(4, 12, 0));
        assert_eq!(decision.verdict, Verdict::Defer);
        assert_eq!(codes(&decision), [ReasonCode::PromotionShare]);
        // With this one, two promotions in eight posts: 25 %, against 10 %.
        assert_eq!(decision.reasons[0].facts.count, 25);
        assert_eq!(decision.reasons[0].facts.limit, 10);
        assert!(given.gate(PostKind::Content, at(4, 12, 0)).allowed());
    }

    #[test]
    fn a_group_losing_six_percent_of_its_members_this_month_is_held() {
        let mut given = Given::group(at(1, 9, 0).plus_millis(-60 * MILLIS_PER_DAY), 50);
        for member in 0..3 {
            given.record(
                at(2, 10, member),
                GroupMemberLeft {
                    member: format!("m{member}"),
                },
            );
        }
        let health = given.group.health(&GroupRules::default(), Tz::UTC, at(5, 12, 0));
        assert_eq!((health.members, health.left, health.leave_rate_per_mille), (47, 3, 60));
        assert!(health.leave_rate_alert);
        let decision = given.gate(PostKind::Content, at(5, 12, 0));
        assert_eq!(decision.verdict, Verdict::Defer);
        assert_eq!(codes(&decision), [ReasonCode::MembersLeaving]);
        assert_eq!(decision.reasons[0].facts.count, 6);
        // Held until the leaves pass out of the month's window.
        let next = decision.next_allowed_at.expect("a moment the hold ends");
        assert!(next > at(31, 0, 0), "{next}");

        let mut two = Given::group(at(1, 9, 0).plus_millis(-60 * MILLIS_PER_DAY), 50);
        for member in 0..2 {
            two.record(
                at(2, 10, member),
                GroupMemberLeft {
                    member: format!("m{member}"),
                },
            );
        }
        assert!(two.gate(PostKind::Content, at(5, 12, 0)).allowed(), "4 % is within 5 %");
    }

    #[test]
    fn posts_keep_their_spacing_and_the_next_one_waits_for_it() {
        let mut given = Given::group(at(1, 9, 0), 10);
        given.posted(at(2, 12, 0), PostKind::Content);
        let decision = given.gate(PostKind::Content, at(2, 12, 10));
        assert_eq!(codes(&decision), [ReasonCode::PostSpacing]);
        assert_eq!(decision.reasons[0].facts.count, 10);
        assert_eq!(decision.next_allowed_at, Some(at(2, 12, 30)));
    }

    #[test]
    fn a_post_at_night_waits_for_the_morning_in_the_groups_zone() {
        let given = Given::group(at(1, 9, 0), 10);
        let decision = given.gate(PostKind::Content, at(2, 23, 15));
        assert_eq!(codes(&decision), [ReasonCode::GroupQuietHours]);
        assert_eq!(decision.reasons[0].facts.local_minute, 23 * 60 + 15);
        assert_eq!(decision.next_allowed_at, Some(at(3, 8, 0)));
    }

    #[test]
    fn a_group_that_speaks_at_its_own_hours_is_posted_into_then() {
        let mut given = Given::group(at(1, 9, 0), 10);
        for day in 1..=25 {
            given.record(at(day.min(28), 21, 5), GroupMemberSpoke { member: "m1".into() });
        }
        assert_eq!(given.group.active_hours(&GroupRules::default()), 1 << 21);
        let decision = given.gate(PostKind::Content, at(26, 23, 0));
        assert_eq!(decision.next_allowed_at, Some(at(27, 21, 0)));
    }

    #[test]
    fn an_archived_group_takes_no_post() {
        let mut given = Given::group(at(1, 9, 0), 10);
        given.record(at(2, 9, 0), GroupArchived { reason: None });
        let decision = given.gate(PostKind::Content, at(2, 12, 0));
        assert_eq!(
            (decision.verdict, codes(&decision)),
            (Verdict::Deny, vec![ReasonCode::GroupArchived])
        );
    }

    #[test]
    fn leaves_soon_after_a_post_count_against_it() {
        let mut given = Given::group(at(1, 9, 0), 10);
        given.posted(at(2, 12, 0), PostKind::Promotion);
        given.record(at(2, 13, 0), GroupMemberLeft { member: "m1".into() });
        given.record(at(3, 13, 0), GroupMemberLeft { member: "m2".into() });
        assert_eq!(
            given.group.posts[0].leaves_after, 1,
            "the second leave came more than a day later"
        );
    }

    #[test]
    fn members_silent_a_week_are_greeted_and_after_two_weeks_invited() {
        let mut given = Given::group(at(1, 9, 0), 3);
        given.record(at(10, 9, 0), GroupMemberSpoke { member: "m0".into() });
        given.record(at(20, 9, 0), GroupMemberSpoke { member: "m1".into() });
        let silent = given.group.silent_members(&GroupRules::default(), at(22, 9, 0));
        let found: Vec<_> = silent.iter().map(|s| (s.member, s.silent_days, s.nudge)).collect();
        assert_eq!(
            found,
            [
                ("m2", 21, crate::reengage::Nudge::Invitation),
                ("m0", 12, crate::reengage::Nudge::Greeting)
            ]
        );
    }

    #[test]
    fn a_member_reported_again_keeps_their_history_and_is_counted_once() {
        let mut given = Given::group(at(1, 9, 0), 2);
        given.record(at(3, 20, 0), GroupMemberSpoke { member: "m1".into() });
        given.record(
            at(4, 9, 0),
            GroupMemberJoined {
                member: "m1".into(),
                contact_id: None,
            },
        );
        let member = given.group.members["m1"];
        assert_eq!(
            (member.joined_at, member.last_spoke_at),
            (at(1, 9, 0), Some(at(3, 20, 0)))
        );
        assert_eq!(
            given.group.health(&GroupRules::default(), Tz::UTC, at(5, 9, 0)).joined,
            2
        );
    }

    #[test]
    fn membership_reported_late_is_folded_by_when_it_happened() {
        let mut given = Given::group(at(1, 9, 0), 2);
        given.record(at(5, 9, 0), GroupMemberLeft { member: "m0".into() });
        // The tool reports, late, that m0 had joined on the 3rd: they left since.
        given.record(
            at(3, 9, 0),
            GroupMemberJoined {
                member: "m0".into(),
                contact_id: None,
            },
        );
        assert!(!given.group.members.contains_key("m0"));
        // m1 left on the 2nd and came back on the 6th; a leave from the 4th
        // reported late does not take them out again.
        given.record(at(2, 9, 0), GroupMemberLeft { member: "m1".into() });
        given.record(
            at(6, 9, 0),
            GroupMemberJoined {
                member: "m1".into(),
                contact_id: None,
            },
        );
        given.record(at(4, 9, 0), GroupMemberLeft { member: "m1".into() });
        assert!(given.group.members.contains_key("m1"));
        let health = given.group.health(&GroupRules::default(), Tz::UTC, at(7, 9, 0));
        assert_eq!((health.members, health.left), (1, 2), "two leaves counted, not three");
    }

    #[test]
    fn a_post_the_gate_would_not_have_allowed_is_marked_with_what_it_broke() {
        let mut given = Given::group(at(1, 9, 0), 10);
        let mut symbols = crate::symbols::Symbols::default();
        let policy = CompiledPolicy::new(1, crate::policy::Policy::default(), &mut symbols);
        for (version, hour) in [(20, 8), (21, 12), (22, 19), (23, 20)] {
            let post: Event = GroupPostRecorded {
                kind: PostKind::Content,
                sender: "mia".into(),
                authorization: TouchAuthorization::Override {
                    reason: "store closing".into(),
                },
            }
            .into();
            given.group.apply_under(&post, version, at(2, hour, 0), &policy);
        }
        let posts: Vec<_> = given
            .group
            .posts
            .iter()
            .map(|post| (post.broke, post.authorized))
            .collect();
        assert_eq!(
            posts,
            [
                (None, Authorized::Override),
                (None, Authorized::Override),
                (None, Authorized::Override),
                (Some(Verdict::Defer), Authorized::Override)
            ],
            "only the fourth of the day broke the gate"
        );
        let broken: Vec<_> = given.group.posts[3].reasons.iter().collect();
        assert_eq!(broken, [ReasonCode::NewGroupPostCap]);
    }

    #[test]
    fn a_group_holds_at_most_its_member_limit() {
        let mut given = Given::group(at(1, 9, 0), GROUP_MEMBERS_MAX);
        given.record(
            at(2, 9, 0),
            GroupMemberJoined {
                member: "one too many".into(),
                contact_id: None,
            },
        );
        assert_eq!(given.group.members.len(), GROUP_MEMBERS_MAX);
    }
}
