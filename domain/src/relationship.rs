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

use crate::decay::DecayingCount;
use crate::event::{Channel, Event, SendMode};
use crate::symbols::{SymbolId, Symbols};
use crate::time::{MILLIS_PER_MINUTE, Timestamp};

/// Marks an instant that never happened.
const NEVER: i64 = i64::MIN;
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

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Consent {
    Unknown,
    Granted,
    Withdrawn,
}

/// Everything the score and the gate need about one contact (232 bytes
/// plus its tags).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Relationship {
    registered_at: i64,
    last_reply_at: i64,
    last_touch_at: i64,
    last_mass_at: i64,
    last_complaint_at: i64,
    /// Minutes of the last consent and deletion changes.
    consent_changed_minute: i32,
    deletion_changed_minute: i32,
    /// Minutes of unanswered one-to-one chats, newest kept; `NEVER_MINUTE` = empty.
    unanswered_chats: [i32; CHATS_TRACKED],
    /// Per channel, the minute its block state last changed.
    block_changed_minute: [i32; 6],
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
    tags: Box<[SymbolId]>,
    unanswered_mass: u16,
    unanswered_one_to_one: u16,
    time_zone: Option<Tz>,
    primary_channel: Channel,
    consent: Consent,
    blocked_channels: u8,
    deleted_us: bool,
}

fn when(millis: i64) -> Option<Timestamp> {
    (millis != NEVER).then_some(Timestamp::from_millis_unchecked(millis))
}

impl Default for Relationship {
    fn default() -> Self {
        Relationship {
            registered_at: NEVER,
            last_reply_at: NEVER,
            last_touch_at: NEVER,
            last_mass_at: NEVER,
            last_complaint_at: NEVER,
            consent_changed_minute: NEVER_MINUTE,
            deletion_changed_minute: NEVER_MINUTE,
            unanswered_chats: [NEVER_MINUTE; CHATS_TRACKED],
            block_changed_minute: [NEVER_MINUTE; 6],
            replies: DecayingCount::default(),
            mass_touches: DecayingCount::default(),
            complaints: DecayingCount::default(),
            reply_hours_utc: [0; 12],
            replies_total: 0,
            touches_total: 0,
            stream_version: 0,
            owner: SymbolId::MAX,
            tags: Box::new([]),
            unanswered_mass: 0,
            unanswered_one_to_one: 0,
            time_zone: None,
            primary_channel: Channel::Wechat,
            consent: Consent::Unknown,
            blocked_channels: 0,
            deleted_us: false,
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
                if self.registered_at == NEVER {
                    self.registered_at = at;
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
                    self.tags = self.tags.iter().copied().filter(|t| *t != tag).collect();
                }
            }
            Event::ConsentGranted(_) => self.set_consent(Consent::Granted, at),
            Event::ConsentWithdrawn(_) => self.set_consent(Consent::Withdrawn, at),
            Event::TouchRecorded(e) => self.touch(e.mode, at, occurred_at),
            Event::ReplyReceived(_) => self.reply(at, occurred_at),
            Event::ContactBlocked(e) => self.set_blocked(e.channel, true, at),
            Event::ContactUnblocked(e) => self.set_blocked(e.channel, false, at),
            Event::ContactDeletedUs(_) => self.set_deleted(true, at),
            Event::ContactReadded(_) => self.set_deleted(false, at),
            Event::ComplaintFiled(_) => {
                self.complaints.add(occurred_at);
                self.last_complaint_at = self.last_complaint_at.max(at);
            }
            Event::PolicyChanged(_) | Event::CampaignStarted(_) | Event::CampaignHeldOut(_) => {}
        }
    }

    fn add_tag(&mut self, tag: SymbolId) {
        if !self.tags.contains(&tag) {
            let mut tags = self.tags.to_vec();
            tags.push(tag);
            self.tags = tags.into_boxed_slice();
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
            self.deleted_us = deleted;
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
            self.last_mass_at = self.last_mass_at.max(at);
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
        self.registered_at != NEVER
    }

    pub fn registered_at(&self) -> Option<Timestamp> {
        when(self.registered_at)
    }

    pub fn last_reply_at(&self) -> Option<Timestamp> {
        when(self.last_reply_at)
    }

    pub fn last_touch_at(&self) -> Option<Timestamp> {
        when(self.last_touch_at)
    }

    pub fn last_mass_at(&self) -> Option<Timestamp> {
        when(self.last_mass_at)
    }

    pub fn last_complaint_at(&self) -> Option<Timestamp> {
        when(self.last_complaint_at)
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
        self.deleted_us
    }
}
