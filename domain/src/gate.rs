//! The send gate: for one contact, one mode and one moment, may we send,
//! should it be a personal chat instead, should it wait, or not at all;
//! and every reason why. The default rules come from DOMAIN.md; every
//! number comes from the policy in force.

use chrono_tz::Tz;

use crate::decay::half_life_millis;
use crate::event::{Channel, SendMode, Verdict};
use crate::hours::{HourSet, Window, local_hours_histogram, local_minute_of_day};
use crate::policy::Policy;
use crate::relationship::{Consent, Relationship};
use crate::strength::{Strength, strength};
use crate::symbols::{SymbolId, Symbols};
use crate::time::{MILLIS_PER_DAY, Timestamp};

/// A policy prepared for fast evaluation: tags resolved to symbols, the
/// default zone parsed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CompiledPolicy {
    pub version: u32,
    pub policy: Policy,
    high_value_tags: Vec<SymbolId>,
    default_time_zone: Tz,
    window: Window,
}

impl CompiledPolicy {
    /// `policy` must be valid (`Policy::validate`); an unparseable default
    /// zone falls back to UTC rather than failing a fold.
    pub fn new(version: u32, policy: Policy, symbols: &mut Symbols) -> Self {
        let high_value_tags = policy
            .mass
            .high_value_tags
            .iter()
            .map(|tag| symbols.intern(tag))
            .collect();
        let default_time_zone = policy.active_hours.default_time_zone.parse().unwrap_or(Tz::UTC);
        let window = Window {
            start_minute: policy.active_hours.start_minute,
            end_minute: policy.active_hours.end_minute,
        };
        CompiledPolicy {
            version,
            policy,
            high_value_tags,
            default_time_zone,
            window,
        }
    }

    pub fn window(&self) -> Window {
        self.window
    }

    /// The zone of contacts who have none of their own.
    pub fn default_time_zone(&self) -> Tz {
        self.default_time_zone
    }

    pub fn zone_of(&self, relationship: &Relationship) -> Tz {
        relationship.time_zone().unwrap_or(self.default_time_zone)
    }
}

/// Stable reason codes: clients and scripts match on these.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ReasonCode {
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
}

impl ReasonCode {
    pub const fn as_str(self) -> &'static str {
        match self {
            ReasonCode::ContactErased => "CONTACT_ERASED",
            ReasonCode::ContactDeletedUs => "CONTACT_DELETED_US",
            ReasonCode::Blocked => "BLOCKED",
            ReasonCode::OptedOut => "OPTED_OUT",
            ReasonCode::RecentComplaint => "RECENT_COMPLAINT",
            ReasonCode::HighValueContact => "HIGH_VALUE_CONTACT",
            ReasonCode::RelationshipTooWeak => "RELATIONSHIP_TOO_WEAK",
            ReasonCode::NoRecentReplies => "NO_RECENT_REPLIES",
            ReasonCode::NewContact => "NEW_CONTACT",
            ReasonCode::FrequencyCap => "FREQUENCY_CAP",
            ReasonCode::QuietHours => "QUIET_HOURS",
            ReasonCode::UnansweredChats => "UNANSWERED_CHATS",
            ReasonCode::PlatformCap => "PLATFORM_CAP",
            ReasonCode::Unreachable => "UNREACHABLE",
            ReasonCode::GroupArchived => "GROUP_ARCHIVED",
            ReasonCode::GroupPostCeiling => "GROUP_POST_CEILING",
            ReasonCode::NewGroupPostCap => "NEW_GROUP_POST_CAP",
            ReasonCode::GroupPostCap => "GROUP_POST_CAP",
            ReasonCode::PostSpacing => "POST_SPACING",
            ReasonCode::PromotionShare => "PROMOTION_SHARE",
            ReasonCode::MembersLeaving => "MEMBERS_LEAVING",
            ReasonCode::GroupQuietHours => "GROUP_QUIET_HOURS",
        }
    }
}

impl ReasonCode {
    pub const ALL: [ReasonCode; 22] = [
        ReasonCode::ContactErased,
        ReasonCode::ContactDeletedUs,
        ReasonCode::Blocked,
        ReasonCode::OptedOut,
        ReasonCode::RecentComplaint,
        ReasonCode::HighValueContact,
        ReasonCode::RelationshipTooWeak,
        ReasonCode::NoRecentReplies,
        ReasonCode::NewContact,
        ReasonCode::FrequencyCap,
        ReasonCode::QuietHours,
        ReasonCode::UnansweredChats,
        ReasonCode::PlatformCap,
        ReasonCode::Unreachable,
        ReasonCode::GroupArchived,
        ReasonCode::GroupPostCeiling,
        ReasonCode::NewGroupPostCap,
        ReasonCode::GroupPostCap,
        ReasonCode::PostSpacing,
        ReasonCode::PromotionShare,
        ReasonCode::MembersLeaving,
        ReasonCode::GroupQuietHours,
    ];
}

/// A set of reason codes in four bytes, for records kept per event.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct ReasonSet(u32);

impl ReasonSet {
    pub fn insert(&mut self, code: ReasonCode) {
        self.0 |= 1 << code as u32;
    }

    pub fn contains(self, code: ReasonCode) -> bool {
        self.0 & (1 << code as u32) != 0
    }

    pub fn iter(self) -> impl Iterator<Item = ReasonCode> {
        ReasonCode::ALL.into_iter().filter(move |code| self.contains(*code))
    }
}

impl GateDecision {
    /// The codes of the reasons that decided the verdict.
    pub fn blocking_reasons(&self) -> ReasonSet {
        let mut set = ReasonSet::default();
        self.reasons
            .iter()
            .filter(|reason| reason.blocking)
            .for_each(|reason| set.insert(reason.code));
        set
    }
}

/// The numbers behind a reason, kept as numbers so that deciding never
/// formats text; `Reason::message` writes it for people.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    pub count: u32,
    pub limit: u32,
    pub days_ago: i64,
    pub channel: Option<Channel>,
    pub tag: Option<SymbolId>,
    pub local_minute: u16,
    pub zone: Option<Tz>,
    pub window: Option<Window>,
    /// `count` is a floor: more happened than the projection keeps one by one.
    pub at_least: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reason {
    pub code: ReasonCode,
    /// A blocking reason decides the verdict; a warning only informs.
    pub blocking: bool,
    /// The verdict this reason calls for when blocking.
    pub verdict: Verdict,
    /// For deferring reasons: when this reason stops holding.
    pub until: Option<Timestamp>,
    pub facts: Facts,
}

impl Reason {
    /// The name of the tag this reason is about, or "" when it names none.
    pub fn tag_name<'a>(&self, symbols: &'a Symbols) -> &'a str {
        self.facts.tag.map_or("", |tag| symbols.name(tag))
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GateDecision {
    pub mode: SendMode,
    pub channel: Channel,
    pub verdict: Verdict,
    /// Every reason that fired, blocking ones first.
    pub reasons: Vec<Reason>,
    /// For `DEFER`: the earliest moment every deferring rule is satisfied.
    pub next_allowed_at: Option<Timestamp>,
    pub strength: Strength,
    /// Local hours they usually reply in (bit per hour), once known.
    pub best_send_hours: HourSet,
    pub policy_version: u32,
    pub at: Timestamp,
}

impl GateDecision {
    pub fn allowed(&self) -> bool {
        self.verdict == Verdict::Allow
    }
}

fn secs_to_millis(secs: u64) -> i64 {
    half_life_millis(secs)
}

fn days_between(earlier: Timestamp, later: Timestamp) -> i64 {
    (later.as_millis() - earlier.as_millis()).max(0) / MILLIS_PER_DAY
}

/// Local hours in which the contact has replied at least half as often as
/// in their busiest hour, once they have replied often enough to tell.
pub fn best_send_hours(relationship: &Relationship, policy: &CompiledPolicy, at: Timestamp) -> HourSet {
    if relationship.replies_total() < u32::from(policy.policy.active_hours.best_hours_min_replies) {
        return 0;
    }
    let local = local_hours_histogram(&relationship.reply_hours_utc(), policy.zone_of(relationship), at);
    let peak = local.iter().copied().max().unwrap_or(0);
    if peak == 0 {
        return 0;
    }
    local
        .iter()
        .enumerate()
        .filter(|(_, count)| **count * 2 >= peak)
        .fold(0, |set, (hour, _)| set | (1 << hour))
}

struct Decider<'a> {
    relationship: &'a Relationship,
    policy: &'a CompiledPolicy,
    channel: Channel,
    at: Timestamp,
    reasons: Vec<Reason>,
}

impl Decider<'_> {
    fn fire(&mut self, code: ReasonCode, verdict: Verdict, until: Option<Timestamp>, facts: Facts) {
        self.reasons.push(Reason {
            code,
            blocking: true,
            verdict,
            until,
            facts,
        });
    }

    fn warn(&mut self, code: ReasonCode, facts: Facts) {
        self.reasons.push(Reason {
            code,
            blocking: false,
            verdict: Verdict::Allow,
            until: None,
            facts,
        });
    }

    fn recent_complaint(&self) -> Option<Facts> {
        let lookback = secs_to_millis(self.policy.policy.mass.complaint_lookback_secs);
        let last = self.relationship.last_complaint_at()?;
        (last.as_millis() > self.at.as_millis() - lookback).then(|| Facts {
            days_ago: days_between(last, self.at),
            limit: (lookback / MILLIS_PER_DAY) as u32,
            ..Facts::default()
        })
    }

    fn unanswered_streak(&self) -> u32 {
        let (mass, one_to_one) = self.relationship.unanswered_streak();
        u32::from(mass) + u32::from(one_to_one)
    }

    fn quiet_hours(&mut self) {
        let zone = self.policy.zone_of(self.relationship);
        let window = self.policy.window();
        if !window.contains(zone, self.at) {
            let facts = Facts {
                local_minute: local_minute_of_day(zone, self.at),
                zone: Some(zone),
                window: Some(window),
                ..Facts::default()
            };
            self.fire(ReasonCode::QuietHours, Verdict::Defer, None, facts);
        }
    }

    fn mass_rules(&mut self, strength: &Strength) {
        let rules = &self.policy.policy.mass;
        let relationship = self.relationship;
        if relationship.consent() == Consent::Withdrawn {
            self.fire(ReasonCode::OptedOut, Verdict::Deny, None, Facts::default());
        }
        if let Some(facts) = self.recent_complaint() {
            self.fire(ReasonCode::RecentComplaint, Verdict::Deny, None, facts);
        }
        if let Some(tag) = relationship
            .tags()
            .iter()
            .find(|tag| self.policy.high_value_tags.contains(tag))
        {
            let facts = Facts {
                tag: Some(*tag),
                ..Facts::default()
            };
            self.fire(ReasonCode::HighValueContact, Verdict::RouteOneToOne, None, facts);
        }
        if strength.score < rules.score_min {
            let facts = Facts {
                count: u32::from(strength.score),
                limit: u32::from(rules.score_min),
                ..Facts::default()
            };
            self.fire(ReasonCode::RelationshipTooWeak, Verdict::RouteOneToOne, None, facts);
        }
        let streak = self.unanswered_streak();
        if streak >= u32::from(rules.unanswered_streak_max) {
            let facts = Facts {
                count: streak,
                limit: u32::from(rules.unanswered_streak_max),
                ..Facts::default()
            };
            self.fire(ReasonCode::NoRecentReplies, Verdict::RouteOneToOne, None, facts);
        }
        let new_since = self.at.as_millis() - secs_to_millis(rules.new_contact_secs);
        if relationship.replies_total() == 0
            && relationship
                .registered_at()
                .is_some_and(|at| at.as_millis() > new_since)
        {
            self.fire(ReasonCode::NewContact, Verdict::RouteOneToOne, None, Facts::default());
        }
        let cooldown = secs_to_millis(rules.cooldown_secs);
        if let Some(last) = relationship.last_mass_at()
            && last.as_millis() > self.at.as_millis() - cooldown
        {
            let facts = Facts {
                days_ago: days_between(last, self.at),
                limit: (cooldown / MILLIS_PER_DAY) as u32,
                ..Facts::default()
            };
            self.fire(
                ReasonCode::FrequencyCap,
                Verdict::Defer,
                Some(last.plus_millis(cooldown)),
                facts,
            );
        }
        self.platform_cap();
        self.quiet_hours();
    }

    /// The channel's own cap on mass sends per contact (a WeChat service
    /// account: four a month), deferred until the oldest counted leaves it.
    fn platform_cap(&mut self) {
        let Some(rules) = self.policy.policy.channel_rules(self.channel) else {
            return;
        };
        let Some(max) = rules.mass_sends_max else { return };
        let window = secs_to_millis(rules.mass_sends_window_secs);
        let since = self.at.as_millis() - window;
        let mut count = 0;
        let mut pivot = None;
        for send in self
            .relationship
            .recent_mass_sends_on(self.channel)
            .take_while(|send| send.as_millis() > since)
        {
            count += 1;
            if count == u32::from(max) {
                pivot = Some(send);
            }
        }
        // Sends on several channels may have pushed older ones of this
        // channel out of memory: while the newest of those is inside the
        // window, the count cannot be exact, and the cap holds until it leaves.
        let dropped = self
            .relationship
            .dropped_mass_at()
            .filter(|dropped| dropped.as_millis() > since);
        let at_least = pivot.is_none() && dropped.is_some();
        if let Some(pivot) = pivot.or(dropped) {
            let facts = Facts {
                count,
                limit: u32::from(max),
                days_ago: window / MILLIS_PER_DAY,
                channel: Some(self.channel),
                at_least,
                ..Facts::default()
            };
            self.fire(
                ReasonCode::PlatformCap,
                Verdict::Defer,
                Some(pivot.plus_millis(window)),
                facts,
            );
        }
    }

    /// Failed deliveries in a row on this channel: a mass send is refused,
    /// a personal chat warned.
    fn unreachable(&mut self, mode: SendMode) {
        let Some((failing, count)) = self.relationship.failing() else {
            return;
        };
        if failing != self.channel || count < self.policy.policy.delivery.unreachable_after_failures {
            return;
        }
        let facts = Facts {
            count: u32::from(count),
            channel: Some(failing),
            ..Facts::default()
        };
        match mode {
            SendMode::Mass => self.fire(ReasonCode::Unreachable, Verdict::Deny, None, facts),
            SendMode::OneToOne => self.warn(ReasonCode::Unreachable, facts),
        }
    }

    fn one_to_one_rules(&mut self) {
        self.quiet_hours();
        let rules = &self.policy.policy.one_to_one;
        let window = secs_to_millis(rules.unanswered_window_secs);
        let since = self.at.as_millis() - window;
        let max = usize::from(rules.unanswered_max);
        // Newest first: the max-th newest leaving the window ends the pause.
        let recent: Vec<Timestamp> = self
            .relationship
            .unanswered_chats()
            .take_while(|chat| chat.as_millis() > since)
            .collect();
        if recent.len() >= max
            && let Some(pivot) = recent.get(max - 1)
        {
            let facts = Facts {
                count: recent.len() as u32,
                limit: (window / MILLIS_PER_DAY) as u32,
                ..Facts::default()
            };
            self.fire(
                ReasonCode::UnansweredChats,
                Verdict::Defer,
                Some(pivot.plus_millis(window)),
                facts,
            );
        }
        if self.relationship.consent() == Consent::Withdrawn {
            self.warn(ReasonCode::OptedOut, Facts::default());
        }
        if let Some(facts) = self.recent_complaint() {
            self.warn(ReasonCode::RecentComplaint, facts);
        }
        let streak = self.unanswered_streak();
        let streak_max = u32::from(self.policy.policy.mass.unanswered_streak_max);
        if streak >= streak_max {
            self.warn(
                ReasonCode::NoRecentReplies,
                Facts {
                    count: streak,
                    limit: streak_max,
                    ..Facts::default()
                },
            );
        }
    }
}

/// Decides whether `mode` may go to the contact on `channel` (their
/// primary channel if `None`) at `at`. The verdict is the strongest any
/// blocking reason calls for: DENY over ROUTE_ONE_TO_ONE over DEFER over ALLOW.
pub fn gate(
    relationship: &Relationship,
    policy: &CompiledPolicy,
    mode: SendMode,
    channel: Option<Channel>,
    at: Timestamp,
) -> GateDecision {
    let channel = channel.unwrap_or(relationship.primary_channel());
    let strength = strength(relationship, &policy.policy.scoring, at);
    let mut decider = Decider {
        relationship,
        policy,
        channel,
        at,
        reasons: Vec::with_capacity(4),
    };
    if relationship.erased() {
        decider.fire(ReasonCode::ContactErased, Verdict::Deny, None, Facts::default());
    }
    if relationship.deleted_us() {
        decider.fire(ReasonCode::ContactDeletedUs, Verdict::Deny, None, Facts::default());
    }
    if relationship.is_blocked_on(channel) {
        decider.fire(
            ReasonCode::Blocked,
            Verdict::Deny,
            None,
            Facts {
                channel: Some(channel),
                ..Facts::default()
            },
        );
    }
    decider.unreachable(mode);
    match mode {
        SendMode::Mass => decider.mass_rules(&strength),
        SendMode::OneToOne => decider.one_to_one_rules(),
    }
    let mut reasons = decider.reasons;
    let verdict = reasons
        .iter()
        .filter(|r| r.blocking)
        .map(|r| r.verdict)
        .max()
        .unwrap_or(Verdict::Allow);
    reasons.sort_by_key(|reason| !reason.blocking);
    let best_send_hours = best_send_hours(relationship, policy, at);
    let next_allowed_at = (verdict == Verdict::Defer).then(|| {
        // Every deferring rule but quiet hours holds until a fixed moment;
        // from the latest of those, find the next open (preferably best) hour.
        let earliest = reasons
            .iter()
            .filter_map(|reason| reason.until)
            .fold(at, Timestamp::max);
        policy
            .window()
            .next_open(policy.zone_of(relationship), earliest, best_send_hours)
    });
    GateDecision {
        mode,
        channel,
        verdict,
        reasons,
        next_allowed_at,
        strength,
        best_send_hours,
        policy_version: policy.version,
        at,
    }
}
