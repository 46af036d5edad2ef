//! The send policy: every threshold, cap, window, half-life and weight the
//! gate and the strength score use. It lives in the ledger (`PolicyChanged`
//! on the `policy` stream), so a replay uses the policy in force then.

use serde::{Deserialize, Serialize};

use crate::channel::Channel;
use crate::time::{MILLIS_PER_DAY, Timestamp};

/// A whole policy document. Its version is its position in the `policy`
/// stream (first policy = version 1), never a field that could disagree.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    pub mass: MassRules,
    pub one_to_one: OneToOneRules,
    pub active_hours: ActiveHours,
    pub scoring: Scoring,
    /// Absent from policies written before it existed: the default applies.
    #[serde(default)]
    pub clock: ClockRules,
    /// Per channel: how fast a campaign may send, and the platform's own
    /// cap on mass sends per contact. Absent from older policies.
    #[serde(default = "default_channel_rules")]
    pub channels: Vec<ChannelRules>,
    /// Campaign pacing, aftermath and re-engagement. Absent from older
    /// policies: the defaults apply.
    #[serde(default)]
    pub campaigns: CampaignRules,
    #[serde(default)]
    pub delivery: DeliveryRules,
    /// Who erases, and how long a silent contact is kept. Absent from older
    /// policies: admins alone erase and nobody is erased for silence.
    #[serde(default)]
    pub privacy: PrivacyRules,
    /// Posting into customer groups, their health and their silent
    /// members. Absent from older policies: the defaults apply.
    #[serde(default)]
    pub groups: GroupRules,
}

/// What a customer group takes, from the articles: at most 3 posts a day
/// while new and 5 to 8 once mature; more than 12 a day drives members out
/// (about 40 % more leave); a healthy group loses at most 5 % of its
/// members a month; about 10 % of posts may promote.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupRules {
    /// A group is new for this many days after it was created.
    pub new_group_days: u16,
    /// Posts a local day: while new, once mature, and the ceiling no
    /// override passes (`GROUP_POST_CEILING`).
    pub new_group_posts_per_day: u8,
    pub mature_group_posts_per_day: u8,
    pub posts_per_day_ceiling: u8,
    /// The least time between two posts.
    pub post_spacing_secs: u64,
    /// Promotions may be at most this share of the posts within the window.
    pub promotion_share_max_percent: u8,
    pub promotion_window_secs: u64,
    /// Posting is held while more than this share of the members left
    /// within the health window (the month).
    pub leave_rate_max_percent: u8,
    pub health_window_secs: u64,
    /// Posting window, minutes after local midnight in the group's zone
    /// (end exclusive); the next post goes at an active hour within it.
    pub start_minute: u16,
    pub end_minute: u16,
    /// Speech needed before a group's own active hours are trusted over
    /// the articles' peaks (08:00, 12:00, 19:00).
    pub active_hours_min_speech: u16,
    /// Members silent this many days get a personal greeting; this many,
    /// an invitation to an activity.
    pub greeting_after_days: u16,
    pub invitation_after_days: u16,
}

impl Default for GroupRules {
    fn default() -> Self {
        GroupRules {
            new_group_days: 30,
            new_group_posts_per_day: 3,
            mature_group_posts_per_day: 8,
            posts_per_day_ceiling: 12,
            post_spacing_secs: 30 * 60,
            promotion_share_max_percent: 10,
            promotion_window_secs: 7 * SECS_PER_DAY,
            leave_rate_max_percent: 5,
            health_window_secs: 30 * SECS_PER_DAY,
            start_minute: 8 * 60,
            end_minute: 22 * 60,
            active_hours_min_speech: 20,
            greeting_after_days: 7,
            invitation_after_days: 15,
        }
    }
}

/// The longest window a group rule may look back over: the projection
/// keeps a group's posts and daily counts this long.
pub const GROUP_WINDOW_SECS_MAX: u64 = 31 * SECS_PER_DAY;
/// No group takes more posts a day than this, whatever the policy says.
pub const GROUP_POSTS_PER_DAY_MAX: u8 = 100;

/// A person's data: who may erase it, and for how long it is kept.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct PrivacyRules {
    /// Managers may erase contacts too (admins always may).
    #[serde(default)]
    pub managers_may_erase: bool,
    /// Contacts with no event for this many years are erased by `rapport
    /// retention --apply`; nobody is, when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retention_years: Option<u16>,
}

/// The longest retention a policy may set.
pub const RETENTION_YEARS_MAX: u16 = 100;

/// What one channel allows.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ChannelRules {
    pub channel: Channel,
    /// A campaign's waves send at most this many messages a minute here.
    pub sends_per_minute: u32,
    /// The platform's cap: at most this many mass sends per contact within
    /// `mass_sends_window_secs` (`PLATFORM_CAP`); none when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mass_sends_max: Option<u8>,
    #[serde(default = "thirty_days")]
    pub mass_sends_window_secs: u64,
}

/// Policies written before groups existed gave them no points: read so,
/// their scores stay what they were.
fn group_speech_points() -> u8 {
    0
}

fn group_leave_penalty_points() -> u8 {
    0
}

fn group_leave_penalty_max() -> u8 {
    0
}

fn thirty_days() -> u64 {
    30 * SECS_PER_DAY
}

/// The articles': a WeChat service account may mass-send to a follower
/// four times a month; every channel sends at most 600 a minute.
fn default_channel_rules() -> Vec<ChannelRules> {
    Channel::ALL
        .into_iter()
        .map(|channel| ChannelRules {
            channel,
            sends_per_minute: 600,
            mass_sends_max: (channel == Channel::Wechat).then_some(4),
            mass_sends_window_secs: thirty_days(),
        })
        .collect()
}

/// How campaigns are paced and judged afterwards.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignRules {
    /// The pause between two waves of a send plan (the articles: 30 s at least).
    pub wave_pause_secs: u64,
    /// What a contact does this long after a send counts against the campaign.
    pub aftermath_window_secs: u64,
    /// Alerts, in percent of a campaign's group: failed deliveries,
    /// complaints, and deletions plus blocks.
    pub failed_delivery_alert_percent: u8,
    pub complaint_alert_percent: u8,
    pub loss_alert_percent: u8,
    /// Silent this many days: a personal greeting; this many: an invitation.
    pub greeting_after_days: u16,
    pub invitation_after_days: u16,
}

impl Default for CampaignRules {
    fn default() -> Self {
        CampaignRules {
            wave_pause_secs: 30,
            aftermath_window_secs: 7 * SECS_PER_DAY,
            failed_delivery_alert_percent: 5,
            complaint_alert_percent: 3,
            loss_alert_percent: 2,
            greeting_after_days: 7,
            invitation_after_days: 15,
        }
    }
}

/// When failed deliveries make a contact unreachable.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryRules {
    /// This many failed deliveries in a row on a channel, with no sign of
    /// life there since, deny mass sends on it (`UNREACHABLE`).
    pub unreachable_after_failures: u8,
}

impl Default for DeliveryRules {
    fn default() -> Self {
        DeliveryRules {
            unreachable_after_failures: 3,
        }
    }
}

/// How business time (`occurredAt`) may relate to the ledger clock.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ClockRules {
    /// A fact may be dated at most this far after the ledger clock, and a
    /// gated touch at most this far from it in either direction.
    pub skew_max_secs: u64,
}

impl Default for ClockRules {
    fn default() -> Self {
        ClockRules { skew_max_secs: 5 * 60 }
    }
}

/// Longest allowed `clock.skewMaxSecs`.
pub const CLOCK_SKEW_SECS_MAX: u64 = SECS_PER_DAY;

/// Why a fact's business time is refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BusinessTimeError {
    #[error(
        "occurredAt {occurred_at} is more than {skew_max_secs} s after the ledger clock ({now}): a fact cannot be recorded before it happens"
    )]
    InTheFuture {
        occurred_at: Timestamp,
        now: Timestamp,
        skew_max_secs: u64,
    },
    #[error(
        "occurredAt {occurred_at} is more than {skew_max_secs} s from the ledger clock ({now}): a gated touch happens now; record a past send with a manager's override or through ingestion"
    )]
    NotNow {
        occurred_at: Timestamp,
        now: Timestamp,
        skew_max_secs: u64,
    },
}

impl ClockRules {
    fn skew_millis(&self) -> i64 {
        i64::try_from(self.skew_max_secs.saturating_mul(1_000)).unwrap_or(i64::MAX)
    }

    /// Any fact: it may not be dated after `now` by more than the skew, or
    /// a date in the far future would pin a contact's state forever.
    pub fn check_fact(&self, occurred_at: Timestamp, now: Timestamp) -> Result<(), BusinessTimeError> {
        if occurred_at.as_millis() > now.as_millis().saturating_add(self.skew_millis()) {
            return Err(BusinessTimeError::InTheFuture {
                occurred_at,
                now,
                skew_max_secs: self.skew_max_secs,
            });
        }
        Ok(())
    }

    /// A touch the gate decides: it happens now, so quiet hours and caps
    /// cannot be dodged by dating it elsewhere.
    pub fn check_gated_touch(&self, occurred_at: Timestamp, now: Timestamp) -> Result<(), BusinessTimeError> {
        if occurred_at.as_millis().abs_diff(now.as_millis()) > self.skew_millis().unsigned_abs() {
            return Err(BusinessTimeError::NotNow {
                occurred_at,
                now,
                skew_max_secs: self.skew_max_secs,
            });
        }
        Ok(())
    }
}

/// When a mass send may go out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct MassRules {
    /// Below this score a mass send is routed to a one-to-one chat.
    pub score_min: u8,
    /// At most one mass send per contact in this window (`FREQUENCY_CAP`).
    pub cooldown_secs: u64,
    /// A complaint within this window denies mass sends (`RECENT_COMPLAINT`).
    pub complaint_lookback_secs: u64,
    /// This many touches in a row without a reply route to one-to-one.
    pub unanswered_streak_max: u16,
    /// A contact registered more recently than this who never replied is new.
    pub new_contact_secs: u64,
    /// Contacts carrying any of these tags always get a personal chat.
    pub high_value_tags: Vec<String>,
}

/// When a one-to-one chat should wait.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct OneToOneRules {
    /// After this many unanswered chats within the window, stop chasing.
    pub unanswered_max: u8,
    pub unanswered_window_secs: u64,
}

/// The local hours in which a contact may be messaged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ActiveHours {
    /// IANA zone for contacts who have none of their own.
    pub default_time_zone: String,
    /// Window start and end, minutes after local midnight (end exclusive).
    pub start_minute: u16,
    pub end_minute: u16,
    /// Replies needed before a contact's own reply hours are trusted.
    pub best_hours_min_replies: u16,
}

/// Weights and half-lives of the strength score (see docs/scoring.md).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Scoring {
    pub reply_half_life_secs: u64,
    pub touch_half_life_secs: u64,
    pub mass_half_life_secs: u64,
    pub complaint_half_life_secs: u64,
    /// Points for a reply right now, halving every `recency_half_life_secs`.
    pub recency_points: u8,
    pub recency_half_life_secs: u64,
    /// Points when every touch is answered.
    pub reciprocity_points: u8,
    /// Points for two-way frequency; half of them at `frequency_half_replies`.
    pub frequency_points: u8,
    pub frequency_half_replies: u16,
    /// Points lost per unanswered touch beyond the first, up to the cap.
    pub unanswered_penalty_points: u8,
    pub unanswered_penalty_max: u8,
    /// Points lost per recent mass send beyond `mass_fatigue_free`, up to the cap.
    pub mass_fatigue_free: u8,
    pub mass_fatigue_points: u8,
    pub mass_fatigue_max: u8,
    /// Points lost per (decayed) complaint, up to the cap.
    pub complaint_penalty_points: u8,
    pub complaint_penalty_max: u8,
    /// Points for speaking in our groups; half of them at
    /// `frequency_half_replies` (decayed like replies).
    #[serde(default = "group_speech_points")]
    pub group_speech_points: u8,
    /// Points lost per (decayed) leave from one of our groups within a day
    /// of a post, up to the cap.
    #[serde(default = "group_leave_penalty_points")]
    pub group_leave_penalty_points: u8,
    #[serde(default = "group_leave_penalty_max")]
    pub group_leave_penalty_max: u8,
    /// Band floors: STRONG ≥ strong_min > WARM ≥ warm_min > COOL ≥ cool_min > COLD.
    pub strong_min: u8,
    pub warm_min: u8,
    pub cool_min: u8,
}

const SECS_PER_DAY: u64 = (MILLIS_PER_DAY / 1000) as u64;

/// Limits on policy values, so that no policy can overflow the fixed-point
/// arithmetic or make the gate search unbounded.
pub const HALF_LIFE_SECS_MAX: u64 = 10 * 365 * SECS_PER_DAY;
pub const WINDOW_SECS_MAX: u64 = 365 * SECS_PER_DAY;
pub const HIGH_VALUE_TAGS_MAX: usize = 50;
/// The projection remembers this many recent one-to-one chats.
pub const UNANSWERED_CHATS_TRACKED_MAX: u8 = 4;
/// The projection remembers this many recent mass sends per contact: a
/// platform cap counts at most this many.
pub const MASS_SENDS_TRACKED_MAX: u8 = 4;
/// Fastest pace a channel's rule may set, in sends a minute.
pub const SENDS_PER_MINUTE_MAX: u32 = 1_000_000;
/// The projection counts failed deliveries up to this.
pub const FAILURES_TRACKED_MAX: u8 = 15;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid policy: {field} {problem}")]
pub struct PolicyError {
    pub field: &'static str,
    pub problem: String,
}

impl Default for Policy {
    /// The defaults distilled in DOMAIN.md.
    fn default() -> Self {
        Policy {
            mass: MassRules {
                score_min: 50,
                cooldown_secs: 7 * SECS_PER_DAY,
                complaint_lookback_secs: 90 * SECS_PER_DAY,
                unanswered_streak_max: 3,
                new_contact_secs: 7 * SECS_PER_DAY,
                high_value_tags: vec!["vip".to_owned()],
            },
            one_to_one: OneToOneRules {
                unanswered_max: 3,
                unanswered_window_secs: 7 * SECS_PER_DAY,
            },
            active_hours: ActiveHours {
                default_time_zone: "Asia/Shanghai".to_owned(),
                start_minute: 8 * 60,
                end_minute: 21 * 60,
                best_hours_min_replies: 5,
            },
            scoring: Scoring {
                reply_half_life_secs: 90 * SECS_PER_DAY,
                touch_half_life_secs: 90 * SECS_PER_DAY,
                mass_half_life_secs: 14 * SECS_PER_DAY,
                complaint_half_life_secs: 180 * SECS_PER_DAY,
                recency_points: 35,
                recency_half_life_secs: 21 * SECS_PER_DAY,
                reciprocity_points: 30,
                frequency_points: 20,
                frequency_half_replies: 3,
                unanswered_penalty_points: 6,
                unanswered_penalty_max: 30,
                mass_fatigue_free: 1,
                mass_fatigue_points: 8,
                mass_fatigue_max: 24,
                complaint_penalty_points: 30,
                complaint_penalty_max: 60,
                group_speech_points: 10,
                group_leave_penalty_points: 10,
                group_leave_penalty_max: 20,
                strong_min: 75,
                warm_min: 50,
                cool_min: 25,
            },
            clock: ClockRules::default(),
            channels: default_channel_rules(),
            campaigns: CampaignRules::default(),
            delivery: DeliveryRules::default(),
            privacy: PrivacyRules::default(),
            groups: GroupRules::default(),
        }
    }
}

impl Policy {
    /// Checks every value against its limit; the first problem is returned.
    pub fn validate(&self) -> Result<(), PolicyError> {
        let fail = |field: &'static str, problem: String| Err(PolicyError { field, problem });
        let mass = &self.mass;
        if mass.score_min > 100 {
            return fail("mass.scoreMin", format!("is {}, must be 0 to 100", mass.score_min));
        }
        for (field, secs) in [
            ("mass.cooldownSecs", mass.cooldown_secs),
            ("mass.complaintLookbackSecs", mass.complaint_lookback_secs),
            ("mass.newContactSecs", mass.new_contact_secs),
            ("oneToOne.unansweredWindowSecs", self.one_to_one.unanswered_window_secs),
        ] {
            if secs > WINDOW_SECS_MAX {
                return fail(field, format!("is {secs}, at most {WINDOW_SECS_MAX} (one year)"));
            }
        }
        if mass.unanswered_streak_max == 0 {
            return fail("mass.unansweredStreakMax", "must be at least 1".to_owned());
        }
        if mass.high_value_tags.len() > HIGH_VALUE_TAGS_MAX {
            return fail(
                "mass.highValueTags",
                format!("has more than {HIGH_VALUE_TAGS_MAX} tags"),
            );
        }
        for tag in &mass.high_value_tags {
            if let Err(problem) = crate::tags::check_tag(tag) {
                return fail("mass.highValueTags", problem);
            }
        }
        let chats = self.one_to_one.unanswered_max;
        if !(1..=UNANSWERED_CHATS_TRACKED_MAX).contains(&chats) {
            return fail(
                "oneToOne.unansweredMax",
                format!("is {chats}, must be 1 to {UNANSWERED_CHATS_TRACKED_MAX}"),
            );
        }
        if !(1..=CLOCK_SKEW_SECS_MAX).contains(&self.clock.skew_max_secs) {
            return fail(
                "clock.skewMaxSecs",
                format!(
                    "is {}, must be 1 to {CLOCK_SKEW_SECS_MAX} (one day)",
                    self.clock.skew_max_secs
                ),
            );
        }
        self.validate_active_hours()?;
        self.validate_channels()?;
        self.validate_campaigns()?;
        self.validate_groups()?;
        self.validate_scoring()
    }

    /// The rules of `channel`, if the policy names it.
    pub fn channel_rules(&self, channel: Channel) -> Option<&ChannelRules> {
        self.channels.iter().find(|rules| rules.channel == channel)
    }

    fn validate_channels(&self) -> Result<(), PolicyError> {
        let fail = |field: &'static str, problem: String| Err(PolicyError { field, problem });
        for (index, rules) in self.channels.iter().enumerate() {
            if self.channels[..index]
                .iter()
                .any(|earlier| earlier.channel == rules.channel)
            {
                return fail("channels", format!("names {} twice", rules.channel.as_str()));
            }
            if !(1..=SENDS_PER_MINUTE_MAX).contains(&rules.sends_per_minute) {
                return fail(
                    "channels.sendsPerMinute",
                    format!("is {}, must be 1 to {SENDS_PER_MINUTE_MAX}", rules.sends_per_minute),
                );
            }
            if let Some(max) = rules.mass_sends_max
                && !(1..=MASS_SENDS_TRACKED_MAX).contains(&max)
            {
                return fail(
                    "channels.massSendsMax",
                    format!("is {max}, must be 1 to {MASS_SENDS_TRACKED_MAX}"),
                );
            }
            if !(1..=WINDOW_SECS_MAX).contains(&rules.mass_sends_window_secs) {
                return fail(
                    "channels.massSendsWindowSecs",
                    format!(
                        "is {}, must be 1 to {WINDOW_SECS_MAX} (one year)",
                        rules.mass_sends_window_secs
                    ),
                );
            }
        }
        Ok(())
    }

    fn validate_campaigns(&self) -> Result<(), PolicyError> {
        let fail = |field: &'static str, problem: String| Err(PolicyError { field, problem });
        let rules = &self.campaigns;
        if rules.wave_pause_secs > SECS_PER_DAY {
            return fail(
                "campaigns.wavePauseSecs",
                format!("is {}, at most {SECS_PER_DAY} (one day)", rules.wave_pause_secs),
            );
        }
        if !(1..=WINDOW_SECS_MAX).contains(&rules.aftermath_window_secs) {
            return fail(
                "campaigns.aftermathWindowSecs",
                format!("is {}, must be 1 to {WINDOW_SECS_MAX}", rules.aftermath_window_secs),
            );
        }
        for (field, percent) in [
            (
                "campaigns.failedDeliveryAlertPercent",
                rules.failed_delivery_alert_percent,
            ),
            ("campaigns.complaintAlertPercent", rules.complaint_alert_percent),
            ("campaigns.lossAlertPercent", rules.loss_alert_percent),
        ] {
            if percent > 100 {
                return fail(field, format!("is {percent}, must be 0 to 100"));
            }
        }
        if rules.greeting_after_days == 0 || rules.invitation_after_days <= rules.greeting_after_days {
            return fail(
                "campaigns",
                format!(
                    "needs 0 < greetingAfterDays < invitationAfterDays, got {} and {}",
                    rules.greeting_after_days, rules.invitation_after_days
                ),
            );
        }
        if rules.invitation_after_days > 365 {
            return fail(
                "campaigns.invitationAfterDays",
                format!("is {}, at most 365", rules.invitation_after_days),
            );
        }
        let failures = self.delivery.unreachable_after_failures;
        if !(1..=FAILURES_TRACKED_MAX).contains(&failures) {
            return fail(
                "delivery.unreachableAfterFailures",
                format!("is {failures}, must be 1 to {FAILURES_TRACKED_MAX}"),
            );
        }
        if let Some(years) = self.privacy.retention_years
            && !(1..=RETENTION_YEARS_MAX).contains(&years)
        {
            return fail(
                "privacy.retentionYears",
                format!("is {years}, must be 1 to {RETENTION_YEARS_MAX}"),
            );
        }
        Ok(())
    }

    fn validate_active_hours(&self) -> Result<(), PolicyError> {
        let hours = &self.active_hours;
        if hours.default_time_zone.parse::<chrono_tz::Tz>().is_err() {
            return Err(PolicyError {
                field: "activeHours.defaultTimeZone",
                problem: format!("'{}' is not an IANA time zone", hours.default_time_zone),
            });
        }
        if hours.start_minute >= hours.end_minute || hours.end_minute > 24 * 60 {
            return Err(PolicyError {
                field: "activeHours",
                problem: format!(
                    "window {}..{} must satisfy start < end <= 1440 minutes",
                    hours.start_minute, hours.end_minute
                ),
            });
        }
        Ok(())
    }

    fn validate_groups(&self) -> Result<(), PolicyError> {
        let fail = |field: &'static str, problem: String| Err(PolicyError { field, problem });
        let g = &self.groups;
        if !(1..=365).contains(&g.new_group_days) {
            return fail(
                "groups.newGroupDays",
                format!("is {}, must be 1 to 365", g.new_group_days),
            );
        }
        let caps = [
            g.new_group_posts_per_day,
            g.mature_group_posts_per_day,
            g.posts_per_day_ceiling,
        ];
        if caps.contains(&0)
            || g.new_group_posts_per_day > g.posts_per_day_ceiling
            || g.mature_group_posts_per_day > g.posts_per_day_ceiling
            || g.posts_per_day_ceiling > GROUP_POSTS_PER_DAY_MAX
        {
            return fail(
                "groups",
                format!(
                    "needs 0 < newGroupPostsPerDay, matureGroupPostsPerDay <= postsPerDayCeiling <= \
                     {GROUP_POSTS_PER_DAY_MAX}, got {}, {} and {}",
                    caps[0], caps[1], caps[2]
                ),
            );
        }
        if g.post_spacing_secs > SECS_PER_DAY {
            return fail(
                "groups.postSpacingSecs",
                format!("is {}, at most {SECS_PER_DAY} (one day)", g.post_spacing_secs),
            );
        }
        for (field, secs) in [
            ("groups.promotionWindowSecs", g.promotion_window_secs),
            ("groups.healthWindowSecs", g.health_window_secs),
        ] {
            if !(SECS_PER_DAY..=GROUP_WINDOW_SECS_MAX).contains(&secs) {
                return fail(
                    field,
                    format!("is {secs}, must be one day to {GROUP_WINDOW_SECS_MAX} seconds (31 days)"),
                );
            }
        }
        for (field, percent) in [
            ("groups.promotionShareMaxPercent", g.promotion_share_max_percent),
            ("groups.leaveRateMaxPercent", g.leave_rate_max_percent),
        ] {
            if percent > 100 {
                return fail(field, format!("is {percent}, must be 0 to 100"));
            }
        }
        if g.start_minute >= g.end_minute || g.end_minute > 24 * 60 {
            return fail(
                "groups",
                format!(
                    "needs startMinute < endMinute <= 1440, got {} and {}",
                    g.start_minute, g.end_minute
                ),
            );
        }
        if g.greeting_after_days == 0
            || g.invitation_after_days <= g.greeting_after_days
            || g.invitation_after_days > 365
        {
            return fail(
                "groups",
                format!(
                    "needs 0 < greetingAfterDays < invitationAfterDays <= 365, got {} and {}",
                    g.greeting_after_days, g.invitation_after_days
                ),
            );
        }
        Ok(())
    }

    fn validate_scoring(&self) -> Result<(), PolicyError> {
        let s = &self.scoring;
        for (field, secs) in [
            ("scoring.replyHalfLifeSecs", s.reply_half_life_secs),
            ("scoring.touchHalfLifeSecs", s.touch_half_life_secs),
            ("scoring.massHalfLifeSecs", s.mass_half_life_secs),
            ("scoring.complaintHalfLifeSecs", s.complaint_half_life_secs),
            ("scoring.recencyHalfLifeSecs", s.recency_half_life_secs),
        ] {
            if secs == 0 || secs > HALF_LIFE_SECS_MAX {
                return Err(PolicyError {
                    field,
                    problem: format!("is {secs}, must be 1 to {HALF_LIFE_SECS_MAX} seconds"),
                });
            }
        }
        let positive = u16::from(s.recency_points)
            + u16::from(s.reciprocity_points)
            + u16::from(s.frequency_points)
            + u16::from(s.group_speech_points);
        if positive > 100 {
            return Err(PolicyError {
                field: "scoring",
                problem: format!("recency + reciprocity + frequency + group speech points is {positive}, at most 100"),
            });
        }
        if s.frequency_half_replies == 0 {
            return Err(PolicyError {
                field: "scoring.frequencyHalfReplies",
                problem: "must be at least 1".to_owned(),
            });
        }
        if !(s.strong_min > s.warm_min && s.warm_min > s.cool_min && s.strong_min <= 100) {
            return Err(PolicyError {
                field: "scoring",
                problem: format!(
                    "bands need 100 >= strongMin > warmMin > coolMin, got {} > {} > {}",
                    s.strong_min, s.warm_min, s.cool_min
                ),
            });
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_policy_is_valid() {
        assert_eq!(Policy::default().validate(), Ok(()));
    }

    #[test]
    fn a_policy_with_an_unknown_time_zone_is_refused() {
        let mut policy = Policy::default();
        policy.active_hours.default_time_zone = "Mars/Olympus".to_owned();
        assert_eq!(
            policy.validate().map_err(|e| e.field),
            Err("activeHours.defaultTimeZone")
        );
    }

    #[test]
    fn a_policy_with_an_empty_active_window_is_refused() {
        let mut policy = Policy::default();
        policy.active_hours.start_minute = 21 * 60;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("activeHours"));
    }

    #[test]
    fn a_policy_whose_points_exceed_one_hundred_is_refused() {
        let mut policy = Policy::default();
        policy.scoring.frequency_points = 90;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("scoring"));
    }

    #[test]
    fn a_policy_written_before_channels_and_campaigns_existed_reads_with_their_defaults() {
        let mut document = serde_json::to_value(Policy::default()).expect("a policy is JSON");
        let fields = document.as_object_mut().expect("an object");
        for newer in ["channels", "campaigns", "delivery", "privacy"] {
            fields.remove(newer);
        }
        let read: Policy = serde_json::from_value(document).expect("an older policy reads");
        assert_eq!(read, Policy::default());
        assert_eq!(
            read.channel_rules(Channel::Wechat)
                .expect("WeChat's rules")
                .mass_sends_max,
            Some(4)
        );
    }

    #[test]
    fn a_retention_of_no_years_or_of_centuries_is_refused() {
        for years in [0, RETENTION_YEARS_MAX + 1] {
            let mut policy = Policy::default();
            policy.privacy.retention_years = Some(years);
            assert_eq!(policy.validate().map_err(|e| e.field), Err("privacy.retentionYears"));
        }
        let mut policy = Policy::default();
        policy.privacy.retention_years = Some(3);
        assert_eq!(policy.validate(), Ok(()));
    }

    #[test]
    fn a_platform_cap_beyond_what_the_projection_tracks_is_refused() {
        let mut policy = Policy::default();
        policy.channels[0].mass_sends_max = Some(MASS_SENDS_TRACKED_MAX + 1);
        assert_eq!(policy.validate().map_err(|e| e.field), Err("channels.massSendsMax"));
        let mut policy = Policy::default();
        policy.channels[1].channel = policy.channels[0].channel;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("channels"));
        let mut policy = Policy::default();
        policy.channels[2].sends_per_minute = 0;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("channels.sendsPerMinute"));
    }

    #[test]
    fn campaign_rules_out_of_range_are_refused() {
        let mut policy = Policy::default();
        policy.campaigns.invitation_after_days = policy.campaigns.greeting_after_days;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("campaigns"));
        let mut policy = Policy::default();
        policy.campaigns.loss_alert_percent = 101;
        assert_eq!(
            policy.validate().map_err(|e| e.field),
            Err("campaigns.lossAlertPercent")
        );
        let mut policy = Policy::default();
        policy.delivery.unreachable_after_failures = 0;
        assert_eq!(
            policy.validate().map_err(|e| e.field),
            Err("delivery.unreachableAfterFailures")
        );
    }

    #[test]
    fn a_policy_with_a_zero_half_life_is_refused() {
        let mut policy = Policy::default();
        policy.scoring.reply_half_life_secs = 0;
        assert_eq!(policy.validate().map_err(|e| e.field), Err("scoring.replyHalfLifeSecs"));
    }
}
