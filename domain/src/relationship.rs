//! One contact's relationship, folded event by event in O(1) from the
//! ledger. The fold holds no policy: every threshold and half-life is
//! applied when the state is evaluated (`strength`, `gate`), so a policy
//! change never alters what the ledger says happened.
//!
//! Late facts are folded by their business time: a reply that occurred
//! before the last touch does not clear the unanswered streak, and a
//! toggle (consent, block, deletion) only overrides a later-dated one
//! when it is at least as recent.

use chrono::Timelike;
use chrono_tz::Tz;

use thin_vec::ThinVec;

use crate::decay::DecayingCount;
use crate::event::{Channel, Event, SendMode};
use crate::symbols::{SymbolId, Symbols};
use crate::time::{MILLIS_PER_MINUTE, Timestamp};

/// Marks an instant that never happened.
const NEVER: i64 = i64::MIN;
/// The bit of `blocked_channels` above every channel's: they deleted us.
const DELETED_US: u8 = 0x80;
/// Beside the channel bits: the person was erased (no way to reach them).
const ERASED: u8 = 0x40;
/// A 4-bit reply-hour counter's ceiling.
const REPLY_HOUR_COUNT_MAX: u8 = 15;
/// The same, for instants kept to the minute.
const NEVER_MINUTE: i32 = i32::MIN;

/// Minutes since the epoch: enough precision for week-long windows and
/// toggles, at half the size. Years 1..=9999 fit in an `i32`.
fn minute_of(millis: i64) -> i32 {
    i32::try_from(millis.div_euclid(MILLIS_PER_MINUTE)).unwrap_or(i32::MAX)
}
/// One-to-one chats remembered since the last reply; caps the policy's
/// `oneToOne.unansweredMax` (see `policy::UNANSWERED_CHATS_TRACKED_MAX`).
pub const CHATS_TRACKED: usize = crate::policy::UNANSWERED_CHATS_TRACKED_MAX as usize;
/// Mass sends remembered for platform caps (see `policy::MASS_SENDS_TRACKED_MAX`).
pub const MASS_TRACKED: usize = crate::policy::MASS_SENDS_TRACKED_MAX as usize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Consent {
    Unknown,
    Granted,
    Withdrawn,
}

/// Everything the score and the gate need about one contact (232 bytes
/// plus its tags; `tests::a_relationship_stays_within_its_memory_budget`).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Relationship {
    last_reply_at: i64,
    last_touch_at: i64,
    /// Minutes (rounded up, so that rules counting from them err on the
    /// side of the contact) of the registration and the last complaint.
    registered_minute: i32,
    last_complaint_minute: i32,
    /// Minutes of the last consent and deletion changes.
    consent_changed_minute: i32,
    deletion_changed_minute: i32,
    /// Minutes of unanswered one-to-one chats, newest kept; `NEVER_MINUTE` = empty.
    unanswered_chats: [i32; CHATS_TRACKED],
    /// Per channel, the minute its block state last changed.
    block_changed_minute: [i32; 6],
    /// Minutes (rounded up) of the newest mass sends, for the weekly
    /// cooldown and platform caps; `NEVER_MINUTE` = empty. Their channels
    /// are three bits each in `recent_mass_channels`.
    recent_mass: [i32; MASS_TRACKED],
    /// The newest send ever dropped from `recent_mass`: a cap whose window
    /// reaches it cannot count exactly, and holds until it leaves.
    dropped_mass_minute: i32,
    recent_mass_channels: u16,
    /// Failed deliveries in a row (low four bits) on one channel (the
    /// next three) with no sign of life there since.
    failures: u8,
    replies: DecayingCount<26>,
    mass_touches: DecayingCount<12>,
    complaints: DecayingCount<12>,
    /// Replies per UTC hour of day, two 4-bit counters a byte, halved
    /// together when one would overflow: only their proportions matter.
    reply_hours_utc: [u8; 12],
    replies_total: u32,
    touches_total: u32,
    /// The contact stream's version after the last event folded.
    stream_version: u32,
    owner: SymbolId,
    /// A thin vector: one pointer here (none allocated while empty), its
    /// length and capacity on the heap beside the tags.
    tags: ThinVec<SymbolId>,
    unanswered_mass: u16,
    unanswered_one_to_one: u16,
    #[serde(with = "zone_index")]
    time_zone: Option<Tz>,
    primary_channel: Channel,
    consent: Consent,
    /// A bit per channel blocked on (`Channel::bit`), and `DELETED_US`.
    blocked_channels: u8,
    /// Their part in our groups, for the few contacts who have one: boxed,
    /// so that everyone else pays a pointer for it.
    groups: Option<Box<GroupSignals>>,
}

/// What a contact did in our groups, as their score counts it.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct GroupSignals {
    /// Times they wrote in one of our groups.
    pub speech: DecayingCount<12>,
    /// Times they left one of our groups within a day of a post.
    pub leaves_after_posts: DecayingCount<12>,
}

/// A zone as its index among chrono-tz's zones: a snapshot loads a million
/// of them, and parsing names would cost more than the rest of the
/// relationship. The index depends on the chrono-tz release, which the
/// snapshot's fold fingerprint covers (it hashes `Cargo.lock`).
pub(crate) mod zone_index {
    use chrono_tz::{TZ_VARIANTS, Tz};
    use serde::de::Error;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};

    pub fn serialize<S: Serializer>(zone: &Option<Tz>, serializer: S) -> Result<S::Ok, S::Error> {
        zone.map(|zone| zone as u16).serialize(serializer)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<Tz>, D::Error> {
        Option::<u16>::deserialize(deserializer)?
            .map(|index| {
                TZ_VARIANTS
                    .get(usize::from(index))
                    .copied()
                    .ok_or_else(|| D::Error::custom(format!("no time zone has the index {index}")))
            })
            .transpose()
    }
}

fn when(millis: i64) -> Option<Timestamp> {
    (millis != NEVER).then_some(Timestamp::from_millis_unchecked(millis))
}

fn at_minute(minute: i32) -> Option<Timestamp> {
    (minute != NEVER_MINUTE).then(|| Timestamp::from_millis_unchecked(i64::from(minute) * MILLIS_PER_MINUTE))
}

/// The minute at or after `millis`.
fn minute_rounded_up(millis: i64) -> i32 {
    minute_of(millis.saturating_add(MILLIS_PER_MINUTE - 1))
}

impl Default for Relationship {
    fn default() -> Self {
        Relationship {
            last_reply_at: NEVER,
            last_touch_at: NEVER,
            registered_minute: NEVER_MINUTE,
            last_complaint_minute: NEVER_MINUTE,
            consent_changed_minute: NEVER_MINUTE,
            deletion_changed_minute: NEVER_MINUTE,
            unanswered_chats: [NEVER_MINUTE; CHATS_TRACKED],
            block_changed_minute: [NEVER_MINUTE; 6],
            recent_mass: [NEVER_MINUTE; MASS_TRACKED],
            dropped_mass_minute: NEVER_MINUTE,
            recent_mass_channels: 0,
            failures: 0,
            replies: DecayingCount::default(),
            mass_touches: DecayingCount::default(),
            complaints: DecayingCount::default(),
            reply_hours_utc: [0; 12],
            replies_total: 0,
            touches_total: 0,
            stream_version: 0,
            owner: SymbolId::MAX,
            tags: ThinVec::new(),
            unanswered_mass: 0,
            unanswered_one_to_one: 0,
            time_zone: None,
            primary_channel: Channel::Wechat,
            consent: Consent::Unknown,
            blocked_channels: 0,
            groups: None,
        }
    }
}

impl Relationship {
    /// Folds one event of the contact's stream (`stream_version` is its
    /// version). Holds no business rule and cannot fail; events of other
    /// streams (policy, campaigns) leave it unchanged.
    pub fn apply(&mut self, event: &Event, stream_version: u64, occurred_at: Timestamp, symbols: &mut Symbols) {
        self.stream_version = u32::try_from(stream_version).unwrap_or(u32::MAX);
        let at = occurred_at.as_millis();
        match event {
            Event::ContactRegistered(e) => {
                if self.registered_minute == NEVER_MINUTE {
                    self.registered_minute = minute_rounded_up(at);
                }
                self.owner = symbols.intern(&e.owner);
                self.primary_channel = e.primary_channel;
                self.time_zone = e.time_zone.as_deref().and_then(|zone| zone.parse().ok());
                for tag in &e.tags {
                    self.add_tag(symbols.intern(tag));
                }
            }
            Event::ContactProfileChanged(e) => {
                if let Some(owner) = &e.owner {
                    self.owner = symbols.intern(owner);
                }
                if let Some(channel) = e.primary_channel {
                    self.primary_channel = channel;
                }
                if let Some(zone) = &e.time_zone {
                    self.time_zone = zone.parse().ok();
                }
            }
            Event::ContactTagged(e) => self.add_tag(symbols.intern(&e.tag)),
            Event::ContactUntagged(e) => {
                if let Some(tag) = symbols.lookup(&e.tag) {
                    self.tags.retain(|t| *t != tag);
                    self.tags.shrink_to_fit();
                }
            }
            Event::ConsentGranted(_) => self.set_consent(Consent::Granted, at),
            Event::ConsentWithdrawn(_) => self.set_consent(Consent::Withdrawn, at),
            Event::TouchRecorded(e) => {
                self.touch(e.mode, at, occurred_at);
                if e.mode == SendMode::Mass {
                    self.remember_mass(e.channel, at);
                }
            }
            Event::ReplyReceived(e) => {
                self.reply(at, occurred_at);
                self.signs_of_life(e.channel, at);
            }
            Event::DeliveryFailed(e) => self.delivery_failed(e.channel),
            Event::MessageRead(e) => self.signs_of_life(e.channel, at),
            Event::LinkClicked(e) => self.signs_of_life(e.channel, at),
            Event::ContactBlocked(e) => self.set_blocked(e.channel, true, at),
            Event::ContactUnblocked(e) => self.set_blocked(e.channel, false, at),
            Event::ContactDeletedUs(_) => self.set_deleted(true, at),
            Event::ContactReadded(_) => self.set_deleted(false, at),
            // Known from the moment it is recorded, whatever moment is asked
            // about: there is nobody left to write to.
            Event::ContactErased(_) => self.blocked_channels |= ERASED,
            Event::ComplaintFiled(_) => {
                self.complaints.add(occurred_at);
                self.last_complaint_minute = self.last_complaint_minute.max(minute_rounded_up(at));
            }
            Event::ContactSpokeInGroup(_) => self.groups.get_or_insert_default().speech.add(occurred_at),
            Event::ContactLeftGroup(e) => {
                if e.after_post {
                    self.groups.get_or_insert_default().leaves_after_posts.add(occurred_at);
                }
            }
            Event::PolicyChanged(_)
            | Event::CampaignStarted(_)
            | Event::CampaignHeldOut(_)
            | Event::GroupCreated(_)
            | Event::GroupMemberJoined(_)
            | Event::GroupMemberLeft(_)
            | Event::GroupMemberRemoved(_)
            | Event::GroupMemberSpoke(_)
            | Event::GroupPostRecorded(_)
            | Event::GroupArchived(_) => {}
        }
    }

    fn add_tag(&mut self, tag: SymbolId) {
        if !self.tags.contains(&tag) {
            // Exactly as long as the tags: contacts keep few, a million times over.
            self.tags.reserve_exact(1);
            self.tags.push(tag);
        }
    }

    fn set_consent(&mut self, consent: Consent, at: i64) {
        let minute = minute_of(at);
        if minute >= self.consent_changed_minute {
            self.consent = consent;
            self.consent_changed_minute = minute;
        }
    }

    fn set_deleted(&mut self, deleted: bool, at: i64) {
        let minute = minute_of(at);
        if minute >= self.deletion_changed_minute {
            if deleted {
                self.blocked_channels |= DELETED_US;
            } else {
                self.blocked_channels &= !DELETED_US;
            }
            self.deletion_changed_minute = minute;
        }
    }

    fn set_blocked(&mut self, channel: Channel, blocked: bool, at: i64) {
        let minute = minute_of(at);
        let index = channel as usize;
        if minute >= self.block_changed_minute[index] {
            self.block_changed_minute[index] = minute;
            if blocked {
                self.blocked_channels |= channel.bit();
            } else {
                self.blocked_channels &= !channel.bit();
            }
        }
    }

    fn touch(&mut self, mode: SendMode, at: i64, occurred_at: Timestamp) {
        self.touches_total = self.touches_total.saturating_add(1);
        self.last_touch_at = self.last_touch_at.max(at);
        if mode == SendMode::Mass {
            self.mass_touches.add(occurred_at);
        }
        if at <= self.last_reply_at {
            return; // sent before a reply we already know of: answered
        }
        match mode {
            SendMode::Mass => self.unanswered_mass = self.unanswered_mass.saturating_add(1),
            SendMode::OneToOne => {
                self.unanswered_one_to_one = self.unanswered_one_to_one.saturating_add(1);
                // Keep the newest chats: replace the oldest remembered one.
                let minute = minute_of(at);
                let oldest = self.unanswered_chats.iter_mut().min_by_key(|t| **t);
                if let Some(oldest) = oldest
                    && *oldest < minute
                {
                    *oldest = minute;
                }
            }
        }
    }

    fn mass_channel(&self, slot: usize) -> Channel {
        Channel::ALL[usize::from((self.recent_mass_channels >> (3 * slot)) & 0b111)]
    }

    /// Keeps the newest mass sends, dropping the oldest of the channel that
    /// holds the most of them.
    fn remember_mass(&mut self, channel: Channel, at: i64) {
        let minute = minute_rounded_up(at);
        let held = |this: &Self, channel: Channel| {
            (0..MASS_TRACKED)
                .filter(|slot| this.recent_mass[*slot] != NEVER_MINUTE && this.mass_channel(*slot) == channel)
                .count()
        };
        let victim = (0..MASS_TRACKED).max_by_key(|slot| match self.recent_mass[*slot] {
            NEVER_MINUTE => (usize::MAX, i64::MAX),
            taken => (held(self, self.mass_channel(*slot)), -i64::from(taken)),
        });
        let Some(victim) = victim else { return };
        let dropped = if self.recent_mass[victim] < minute {
            let dropped = self.recent_mass[victim];
            self.recent_mass[victim] = minute;
            let shift = 3 * victim;
            self.recent_mass_channels =
                (self.recent_mass_channels & !(0b111 << shift)) | (u16::from(channel as u8) << shift);
            dropped
        } else {
            minute
        };
        self.dropped_mass_minute = self.dropped_mass_minute.max(dropped);
    }

    fn delivery_failed(&mut self, channel: Channel) {
        let (failing, count) = self.failing().unwrap_or((channel, 0));
        let count = if failing == channel { count } else { 0 };
        let count = count.saturating_add(1).min(crate::policy::FAILURES_TRACKED_MAX);
        self.failures = count | ((channel as u8) << 4);
    }

    /// A reply, a read or a click on the failing channel, dated no earlier
    /// than the last touch (the messages that failed), proves it reaches them.
    fn signs_of_life(&mut self, channel: Channel, at: i64) {
        if self.failing().is_some_and(|(failing, _)| failing == channel) && at >= self.last_touch_at {
            self.failures = 0;
        }
    }

    fn reply(&mut self, at: i64, occurred_at: Timestamp) {
        self.replies_total = self.replies_total.saturating_add(1);
        self.replies.add(occurred_at);
        let hour = occurred_at.to_datetime().hour() as usize;
        if self.reply_hour_count(hour) == REPLY_HOUR_COUNT_MAX {
            for each in 0..24 {
                self.set_reply_hour_count(each, self.reply_hour_count(each) / 2);
            }
        }
        self.set_reply_hour_count(hour, self.reply_hour_count(hour) + 1);
        self.last_reply_at = self.last_reply_at.max(at);
        if at >= self.last_touch_at {
            self.unanswered_mass = 0;
            self.unanswered_one_to_one = 0;
        }
        let minute = minute_of(at);
        for chat in &mut self.unanswered_chats {
            if *chat <= minute {
                *chat = NEVER_MINUTE;
            }
        }
    }

    /// The contact stream's version (0 = registration only): what a writer
    /// passes as its expected version.
    pub fn stream_version(&self) -> u64 {
        u64::from(self.stream_version)
    }

    pub fn is_registered(&self) -> bool {
        self.registered_minute != NEVER_MINUTE
    }

    /// When they were first registered, to the minute (rounded up).
    pub fn registered_at(&self) -> Option<Timestamp> {
        at_minute(self.registered_minute)
    }

    pub fn last_reply_at(&self) -> Option<Timestamp> {
        when(self.last_reply_at)
    }

    pub fn last_touch_at(&self) -> Option<Timestamp> {
        when(self.last_touch_at)
    }

    /// The newest mass send, to the minute (rounded up).
    pub fn last_mass_at(&self) -> Option<Timestamp> {
        at_minute(self.recent_mass.into_iter().max().unwrap_or(NEVER_MINUTE))
    }

    /// The last complaint, to the minute (rounded up).
    pub fn last_complaint_at(&self) -> Option<Timestamp> {
        at_minute(self.last_complaint_minute)
    }

    /// The newest mass send no longer remembered one by one.
    pub fn dropped_mass_at(&self) -> Option<Timestamp> {
        at_minute(self.dropped_mass_minute)
    }

    /// Mass sends on `channel` remembered (to the minute), newest first.
    pub fn recent_mass_sends_on(&self, channel: Channel) -> impl Iterator<Item = Timestamp> + '_ {
        let mut sends = self.recent_mass;
        for (slot, send) in sends.iter_mut().enumerate() {
            if self.mass_channel(slot) != channel {
                *send = NEVER_MINUTE;
            }
        }
        sends.sort_unstable_by(|a, b| b.cmp(a));
        sends.into_iter().filter_map(at_minute)
    }

    /// Failed deliveries in a row on the channel that fails, if any.
    pub fn failing(&self) -> Option<(Channel, u8)> {
        let count = self.failures & 0b1111;
        (count > 0).then(|| (Channel::ALL[usize::from((self.failures >> 4) & 0b111)], count))
    }

    /// Unanswered one-to-one chats remembered (to the minute), newest first.
    pub fn unanswered_chats(&self) -> impl Iterator<Item = Timestamp> + '_ {
        let mut chats = self.unanswered_chats;
        chats.sort_unstable_by(|a, b| b.cmp(a));
        chats
            .into_iter()
            .filter(|minute| *minute != NEVER_MINUTE)
            .map(|minute| Timestamp::from_millis_unchecked(i64::from(minute) * MILLIS_PER_MINUTE))
    }

    pub fn replies(&self) -> &DecayingCount<26> {
        &self.replies
    }

    pub fn mass_touches(&self) -> &DecayingCount<12> {
        &self.mass_touches
    }

    pub fn complaints(&self) -> &DecayingCount<12> {
        &self.complaints
    }

    /// Their part in our groups, if they ever had one.
    pub fn group_signals(&self) -> Option<&GroupSignals> {
        self.groups.as_deref()
    }

    fn reply_hour_count(&self, hour: usize) -> u8 {
        let byte = self.reply_hours_utc[hour / 2];
        if hour.is_multiple_of(2) { byte & 0x0f } else { byte >> 4 }
    }

    fn set_reply_hour_count(&mut self, hour: usize, count: u8) {
        let byte = &mut self.reply_hours_utc[hour / 2];
        *byte = if hour.is_multiple_of(2) {
            (*byte & 0xf0) | count
        } else {
            (*byte & 0x0f) | (count << 4)
        };
    }

    /// Replies per UTC hour, in proportion (each count at most 15).
    pub fn reply_hours_utc(&self) -> [u8; 24] {
        std::array::from_fn(|hour| self.reply_hour_count(hour))
    }

    pub fn replies_total(&self) -> u32 {
        self.replies_total
    }

    pub fn touches_total(&self) -> u32 {
        self.touches_total
    }

    /// Touches since the last reply, mass and one-to-one.
    pub fn unanswered_streak(&self) -> (u16, u16) {
        (self.unanswered_mass, self.unanswered_one_to_one)
    }

    pub fn owner(&self) -> SymbolId {
        self.owner
    }

    pub fn tags(&self) -> &[SymbolId] {
        &self.tags
    }

    pub fn time_zone(&self) -> Option<Tz> {
        self.time_zone
    }

    pub fn primary_channel(&self) -> Channel {
        self.primary_channel
    }

    pub fn consent(&self) -> Consent {
        self.consent
    }

    pub fn is_blocked_on(&self, channel: Channel) -> bool {
        self.blocked_channels & channel.bit() != 0
    }

    pub fn blocked_channels(&self) -> impl Iterator<Item = Channel> + '_ {
        Channel::ALL.into_iter().filter(|channel| self.is_blocked_on(*channel))
    }

    pub fn deleted_us(&self) -> bool {
        self.blocked_channels & DELETED_US != 0
    }

    pub fn erased(&self) -> bool {
        self.blocked_channels & ERASED != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_zone_is_saved_as_an_index_that_finds_it_again() {
        for (index, zone) in chrono_tz::TZ_VARIANTS.iter().enumerate() {
            assert_eq!(*zone as usize, index, "{zone:?}");
        }
        assert!(chrono_tz::TZ_VARIANTS.len() <= usize::from(u16::MAX));
    }

    #[test]
    fn a_relationship_stays_within_its_memory_budget() {
        // The projection's budget is 300 bytes per contact, map and tags
        // included: every byte added here is a byte taken from them.
        assert_eq!(std::mem::size_of::<Relationship>(), 232);
    }
}
