//! The demo data set behind `rapport serve --demo`: about 2,000 contacts, 4
//! owners and six months of touches, replies, weekly mass campaigns,
//! blocks, deletions, opt-outs and complaints, generated from a fixed seed
//! and behaving as DOMAIN.md describes. Contacts reply in their own hours;
//! mass sends wear relationships down and make deletions likelier; a few
//! scripted contacts carry the README's tour.

use std::collections::HashMap;

use rapport_app::campaign::is_held_out;
use rapport_domain::event::{AudienceRecord, ResolvedAudience};
use rapport_domain::{
    CampaignHeldOut, CampaignId, CampaignStarted, Channel, ComplaintFiled, ConsentWithdrawn, ContactBlocked,
    ContactDeletedUs, ContactId, ContactLeftGroup, ContactReadded, ContactRegistered, ContactSpokeInGroup,
    DeliveryFailed, Event, GroupCreated, GroupId, GroupMemberJoined, GroupMemberLeft, GroupMemberSpoke,
    GroupPostRecorded, LinkClicked, MessageRead, NewEvent, Pii, Policy, PolicyChanged, Position, PostKind,
    RecordedEvent, ReplyReceived, SendMode, StreamName, Timestamp, TouchAuthorization, TouchRecorded, Verdict,
};
use rapport_projections::Projection;
use rapport_store::{EventStore, ExpectedVersion, Ledger, StoreError};
use uuid::Uuid;

const DAY: i64 = 86_400_000;
const HOUR: i64 = 3_600_000;
const DAYS: i64 = 182;
const OWNERS: [&str; 4] = ["alice", "bob", "chen", "dana"];
const SURNAMES: [&str; 20] = [
    "Wang", "Li", "Zhang", "Liu", "Chen", "Yang", "Huang", "Zhao", "Wu", "Zhou", "Xu", "Sun", "Ma", "Zhu", "Hu", "Guo",
    "He", "Lin", "Gao", "Luo",
];
/// Given names are two syllables: with the surnames, 4,000 distinct names.
const GIVEN_FIRST: [&str; 20] = [
    "Xiao", "Jian", "Yu", "Hao", "Zi", "Shu", "Mei", "Guang", "Wen", "Zhi", "Li", "Tian", "Jia", "Ruo", "Ming", "Xin",
    "Jun", "Qiu", "Bao", "Hong",
];
const GIVEN_SECOND: [&str; 10] = ["ming", "guo", "fei", "ran", "han", "xuan", "hua", "ling", "yu", "jing"];
const ZONES: [(&str, u32); 4] = [
    ("Asia/Hong_Kong", 5),
    ("Asia/Singapore", 4),
    ("Europe/London", 3),
    ("America/Los_Angeles", 3),
];

/// Contacts with a story, named in the README's tour.
pub const TOUR: [(&str, &str); 6] = [
    (
        "Zhao Min",
        "a warm contact who may receive a mass send (in the daytime)",
    ),
    ("Qian Wei", "a VIP: a personal chat, never a mass send"),
    ("Sun Li", "deleted us after the last Saturday promotion"),
    ("Li Na", "opted out: no mass sends, a personal chat is fine"),
    ("Zhou Jie", "ignored the last three mass sends"),
    ("Wu Gang", "replies in the morning: not at 22:00"),
];

#[derive(Clone, Copy, Debug, PartialEq)]
enum Habit {
    Mornings,
    Lunchtime,
    Evenings,
}

#[derive(Debug)]
struct Persona {
    id: ContactId,
    owner: &'static str,
    engagement: f64,
    habit: Habit,
    zone_offset_hours: i64,
    registered_day: i64,
    returning: bool,
    story: Option<usize>,
}

/// What the generator produced.
#[derive(Debug)]
pub struct DemoReport {
    pub contacts: usize,
    pub events: usize,
}

struct Generator {
    rng: fastrand::Rng,
    start: i64,
    events: Vec<(i64, StreamName, NewEvent)>,
}

impl Generator {
    fn push(&mut self, at: i64, stream: StreamName, event: impl Into<Event>, actor: &str) {
        let id = Uuid::from_u128(self.rng.u128(..));
        let occurred = Timestamp::from_millis_unchecked(self.start + at);
        self.events
            .push((at, stream, NewEvent::new(id, event, occurred, actor)));
    }

    /// A local time on `day` at about `hour`, as an offset from `start`.
    fn local(&mut self, day: i64, hour: i64, persona: &Persona) -> i64 {
        day * DAY + (hour - persona.zone_offset_hours) * HOUR + self.rng.i64(0..50) * 60_000
    }

    /// Records the contact's answer to a message sent at `sent`.
    fn answer(&mut self, sent: i64, stream: StreamName, persona: &Persona) {
        let at = self.reply_after(sent, persona);
        self.push(
            at,
            stream,
            ReplyReceived {
                channel: Channel::Wechat,
            },
            "wechat-sync",
        );
    }

    /// When a contact answers a message sent at `sent`: at their usual
    /// hour, that day if it is still ahead, else the next day.
    fn reply_after(&mut self, sent: i64, persona: &Persona) -> i64 {
        let hour = match persona.habit {
            Habit::Mornings => self.rng.i64(7..10),
            Habit::Lunchtime => self.rng.i64(12..14),
            Habit::Evenings => self.rng.i64(19..21),
        };
        let day = sent.div_euclid(DAY);
        let same_day = self.local(day, hour, persona);
        if same_day > sent {
            same_day
        } else {
            self.local(day + 1, hour, persona)
        }
    }
}

/// Who is still with us and what they asked for, as the generator goes.
#[derive(Default)]
struct Standing {
    gone: HashMap<ContactId, bool>,
    opted_out: HashMap<ContactId, bool>,
    recent_mass: HashMap<ContactId, u32>,
}

impl Standing {
    fn is_gone(&self, id: ContactId) -> bool {
        self.gone.get(&id).copied().unwrap_or(false)
    }

    fn has_opted_out(&self, id: ContactId) -> bool {
        self.opted_out.get(&id).copied().unwrap_or(false)
    }
}

/// The two campaigns `rapport campaign report` tells the story of: one
/// sent the way rapport would, one the way a bulk tool does.
pub const CAREFUL_NAME: &str = "Member day invitation (through the gate, 10% holdout)";
pub const RECKLESS_NAME: &str = "Flash sale blast (bulk tool, 22:30, everyone)";
const CAREFUL_HOLDOUT_PERCENT: u8 = 10;

impl Generator {
    /// The gate as the ledger will have it at `at`: everything generated so
    /// far that happened by then, folded in business order after the
    /// ledger's first policy. Only each contact's own order matters to
    /// their gate, and that is the order the ledger keeps.
    fn projection_at(&self, at: i64) -> Projection {
        let mut past: Vec<&(i64, StreamName, NewEvent)> =
            self.events.iter().filter(|(when, _, _)| *when <= at).collect();
        past.sort_by_key(|(when, _, _)| *when);
        let mut projection = Projection::new();
        let mut versions: HashMap<StreamName, u64> = HashMap::new();
        let policy = NewEvent::new(
            Uuid::nil(),
            PolicyChanged {
                policy: Policy::default(),
            },
            Timestamp::from_millis_unchecked(self.start),
            "demo",
        );
        let first = (0, StreamName::Policy, policy);
        for (sequence, (_, stream, event)) in std::iter::once(&first).chain(past).enumerate() {
            let version = versions.entry(*stream).or_insert(0);
            projection.apply(&RecordedEvent {
                event_id: event.event_id,
                stream: *stream,
                version: *version,
                position: Position::from_sequence(sequence as u64 + 1),
                schema_version: event.event.schema_version(),
                event: event.event.clone(),
                pii: None,
                occurred_at: event.occurred_at,
                recorded_at: event.occurred_at,
                actor: event.actor.clone(),
                correlation_id: event.correlation_id,
                causation_id: None,
            });
            *version += 1;
        }
        projection
    }

    /// The careful campaign, launched as `rapport campaign launch --tags
    /// returning --holdout 10` would launch it: the gate judges every
    /// returning customer at 11:00 in Shanghai, the allowed get the
    /// invitation (less a holdout chosen from the campaign id), the rest are
    /// left alone. Those who hear from us mostly read and many answer.
    fn careful_campaign(&mut self, day: i64, personas: &[Persona], standing: &mut Standing) {
        let at = day * DAY + 3 * HOUR;
        let when = Timestamp::from_millis_unchecked(self.start + at);
        let projection = self.projection_at(at);
        let campaign = CampaignId(Uuid::from_u128(self.rng.u128(..)));
        let mut resolved = ResolvedAudience::default();
        let mut members = Vec::new();
        for persona in personas.iter().filter(|persona| persona.returning) {
            let Some(decision) = projection.gate(persona.id, SendMode::Mass, Some(Channel::Wechat), when) else {
                continue;
            };
            match decision.gate.verdict {
                Verdict::Allow => {
                    let held_out = is_held_out(campaign, persona.id, CAREFUL_HOLDOUT_PERCENT);
                    if held_out {
                        resolved.held_out += 1;
                    } else {
                        resolved.sent += 1;
                    }
                    members.push((persona, held_out));
                }
                Verdict::RouteOneToOne => resolved.routed_one_to_one += 1,
                Verdict::Defer => resolved.deferred += 1,
                Verdict::Deny => resolved.denied += 1,
            }
        }
        let started = CampaignStarted {
            name: CAREFUL_NAME.to_owned(),
            channel: Channel::Wechat,
            mode: SendMode::Mass,
            audience: Some(AudienceRecord {
                tags: Some("returning".to_owned()),
                ..AudienceRecord::default()
            }),
            policy_version: Some(1),
            holdout_percent: CAREFUL_HOLDOUT_PERCENT,
            resolved: Some(resolved),
        };
        self.push(at, StreamName::Campaign(campaign), started, "marketing");
        let judged_at = projection.position().map(|p| p.to_string()).unwrap_or_default();
        for (persona, held_out) in members {
            let stream = StreamName::Contact(persona.id);
            if held_out {
                self.push(at, stream, CampaignHeldOut { campaign_id: campaign }, "marketing");
            } else {
                let authorization = TouchAuthorization::Gate {
                    verdict: Verdict::Allow,
                    policy_version: 1,
                    position: judged_at.clone(),
                };
                self.push(
                    at,
                    stream,
                    touch(SendMode::Mass, "marketing", Some(campaign), authorization),
                    "marketing",
                );
                *standing.recent_mass.entry(persona.id).or_insert(0) += 1;
                if self.rng.f64() < 0.5 + 0.4 * persona.engagement {
                    let read = at + self.rng.i64(5..240) * 60_000;
                    let channel = Channel::Wechat;
                    let campaign_id = Some(campaign);
                    self.push(read, stream, MessageRead { channel, campaign_id }, "wechat-sync");
                    if self.rng.f64() < 0.3 {
                        self.push(
                            read + 60_000,
                            stream,
                            LinkClicked { channel, campaign_id },
                            "wechat-sync",
                        );
                    }
                }
                if self.rng.f64() < persona.engagement * 0.4 {
                    self.answer(at, stream, persona);
                }
            }
        }
    }

    /// The reckless campaign: a bulk tool sends the flash sale to everyone
    /// still with us at 22:30 in Shanghai, opted out or asleep or not. The
    /// platform throttles part of it, and that evening and the days after
    /// the cold and the annoyed delete, block and complain.
    fn reckless_campaign(&mut self, day: i64, personas: &[Persona], standing: &mut Standing) {
        let at = day * DAY + 14 * HOUR + 30 * 60_000;
        let campaign = CampaignId(Uuid::from_u128(self.rng.u128(..)));
        let started = CampaignStarted {
            name: RECKLESS_NAME.to_owned(),
            channel: Channel::Wechat,
            mode: SendMode::Mass,
            audience: None,
            policy_version: None,
            holdout_percent: 0,
            resolved: None,
        };
        self.push(at, StreamName::Campaign(campaign), started, "marketing");
        for persona in personas {
            let in_ledger = self.local(persona.registered_day, 11, persona) < at;
            if persona.story.is_some() || !in_ledger || standing.is_gone(persona.id) {
                continue;
            }
            let stream = StreamName::Contact(persona.id);
            let authorization = TouchAuthorization::External {
                source: "bulk-sender".to_owned(),
            };
            self.push(
                at,
                stream,
                touch(SendMode::Mass, "marketing", Some(campaign), authorization),
                "marketing",
            );
            *standing.recent_mass.entry(persona.id).or_insert(0) += 1;
            if self.rng.f64() < 0.07 {
                self.push(
                    at + 60_000,
                    stream,
                    DeliveryFailed {
                        channel: Channel::Wechat,
                        campaign_id: Some(campaign),
                        reason: Some("frequency limit reached".to_owned()),
                    },
                    "bulk-sender",
                );
                continue;
            }
            let annoyance = if standing.has_opted_out(persona.id) { 0.3 } else { 0.0 };
            let roll = self.rng.f64();
            // Within two days: before the next Saturday's promotion.
            let later = at + self.rng.i64(10..(2 * 24 * 60)) * 60_000;
            let deletes = 0.03 + 0.06 * (1.0 - persona.engagement) + annoyance;
            if roll < deletes {
                self.push(
                    later,
                    stream,
                    ContactDeletedUs {
                        channel: Channel::Wechat,
                    },
                    "wechat-sync",
                );
                standing.gone.insert(persona.id, true);
            } else if roll < deletes + 0.012 {
                self.push(
                    later,
                    stream,
                    ContactBlocked {
                        channel: Channel::Wechat,
                    },
                    "wechat-sync",
                );
            } else if roll < deletes + 0.03 {
                self.push(
                    later,
                    stream,
                    ComplaintFiled {
                        channel: Channel::Wechat,
                        reason: Some("sent at night".to_owned()),
                    },
                    "wechat-sync",
                );
            } else if self.rng.f64() < persona.engagement * 0.1 {
                self.answer(at, stream, persona);
            }
        }
    }
}

fn persona(rng: &mut fastrand::Rng, index: usize, story: Option<usize>) -> (Persona, ContactRegistered, Pii) {
    let id = ContactId(Uuid::from_u64_pair(0x6465_6d6f, index as u64));
    let name = match story {
        Some(story) => TOUR[story].0.to_owned(),
        None => format!(
            "{} {}{}",
            SURNAMES[index % 20],
            GIVEN_FIRST[(index / 20) % 20],
            GIVEN_SECOND[(index / 400) % 10]
        ),
    };
    let zone = {
        let roll = rng.u32(0..100);
        let mut threshold = 0;
        ZONES.iter().find(|(_, share)| {
            threshold += share;
            roll < threshold
        })
    };
    let zone_offset_hours = match zone.map(|(zone, _)| *zone) {
        Some("Europe/London") => 0,
        Some("America/Los_Angeles") => -8,
        _ => 8,
    };
    let habit = match story {
        Some(5) => Habit::Mornings,
        Some(_) => Habit::Evenings,
        None => [Habit::Mornings, Habit::Lunchtime, Habit::Evenings, Habit::Evenings][rng.usize(0..4)],
    };
    let engagement = match story {
        Some(0 | 1 | 3 | 5) => 0.9,
        Some(_) => 0.5,
        None => rng.f64().powf(1.5),
    };
    let vip = story == Some(1) || (story.is_none() && rng.u32(0..100) < 5);
    // The tour's contacts are new customers: the member-day campaign, which
    // speaks to returning ones, leaves their stories as the README tells them.
    let segment = rng.usize(0..3);
    let returning = story.is_none() && segment == 1;
    let mut tags = vec![["new", "returning", "price-sensitive"][if story.is_some() { 0 } else { segment }].to_owned()];
    if vip {
        tags.push("vip".to_owned());
    }
    let channel = match rng.u32(0..100) {
        0..70 => Channel::Wechat,
        70..85 => Channel::Wecom,
        85..95 => Channel::Sms,
        _ => Channel::Email,
    };
    let owner = OWNERS[index % OWNERS.len()];
    let registered = ContactRegistered {
        owner: owner.to_owned(),
        primary_channel: if story.is_some() { Channel::Wechat } else { channel },
        time_zone: if story.is_some() {
            None
        } else {
            zone.map(|(zone, _)| (*zone).to_owned())
        },
        tags,
    };
    let pii = Pii {
        display_name: Some(name),
        phone: Some(format!("+86 139 {:04} {:04}", index / 10_000, index % 10_000)),
        wechat_id: Some(format!("wx_demo_{index:05}")),
        email: None,
    };
    let registered_day = if story.is_some() {
        rng.i64(0..20)
    } else {
        rng.i64(0..DAYS - 10)
    };
    let persona = Persona {
        id,
        owner,
        engagement,
        habit,
        zone_offset_hours: if story.is_some() { 8 } else { zone_offset_hours },
        registered_day,
        returning,
        story,
    };
    (persona, registered, pii)
}

fn touch(
    mode: SendMode,
    sender: &str,
    campaign: Option<CampaignId>,
    authorization: TouchAuthorization,
) -> TouchRecorded {
    TouchRecorded {
        mode,
        channel: Channel::Wechat,
        campaign_id: campaign,
        sender: sender.to_owned(),
        authorization,
    }
}

/// Generates the data set for `contacts` contacts ending on `today`.
fn generate(contacts: usize, seed: u64, today: Timestamp) -> (Vec<(i64, StreamName, NewEvent)>, usize) {
    let start = today.as_millis().div_euclid(DAY) * DAY - DAYS * DAY;
    let mut generator = Generator {
        rng: fastrand::Rng::with_seed(seed),
        start,
        events: Vec::new(),
    };
    let mut personas = Vec::with_capacity(contacts);
    for index in 0..contacts {
        let story = (index < TOUR.len()).then_some(index);
        let (persona, registered, pii) = persona(&mut generator.rng, index, story);
        let at = generator.local(persona.registered_day, 11, &persona);
        let stream = StreamName::Contact(persona.id);
        let id = Uuid::from_u128(generator.rng.u128(..));
        let occurred = Timestamp::from_millis_unchecked(start + at);
        generator.events.push((
            at,
            stream,
            NewEvent::new(id, registered, occurred, persona.owner).with_pii(pii),
        ));
        personas.push(persona);
    }
    let mut standing = Standing::default();
    // Saturdays are promotion days. Day 0 of the Unix epoch was a Thursday,
    // so (days + 4) mod 7 counts from Sunday = 0 and Saturday = 6.
    let saturday_offset = (6 - (start / DAY + 4).rem_euclid(7)).rem_euclid(7);
    let is_saturday = |day: i64| (day - saturday_offset).rem_euclid(7) == 0;
    let promotions: Vec<i64> = (0..DAYS).filter(|day| is_saturday(*day)).collect();
    // The tour's stories are about the last promotions before today.
    let last_promotion = promotions.last().copied().unwrap_or(DAYS);
    let ignored_from = promotions.iter().rev().nth(2).copied().unwrap_or(0);
    // Two weeks' promotions give way to the campaigns of the report: the
    // reckless blast on a Wednesday about six weeks back, the careful
    // invitation in place of a Saturday promotion about three weeks back.
    // Neither follows another mass send within a week, and what the next
    // promotion costs comes after the invitation's week is over, so its
    // aftermath is its own.
    let replaced = [
        promotions.iter().rev().nth(6).copied(),
        promotions.iter().rev().nth(3).copied(),
    ];
    let reckless_day = replaced[0].map(|day| day + 4);
    let careful_day = replaced[1];
    for day in 0..DAYS {
        let is_saturday = is_saturday(day);
        let campaign = (is_saturday && !replaced.contains(&Some(day)))
            .then(|| CampaignId(Uuid::from_u128(generator.rng.u128(..))));
        if let Some(campaign) = campaign {
            let at = day * DAY + 2 * HOUR;
            let started = CampaignStarted {
                name: format!("Saturday promotion, day {day}"),
                channel: Channel::Wechat,
                mode: SendMode::Mass,
                audience: None,
                policy_version: None,
                holdout_percent: 0,
                resolved: None,
            };
            generator.push(at, StreamName::Campaign(campaign), started, "marketing");
        }
        // Promotions alternate between two mass-send tools.
        let by_bulk_tool = (day / 7) % 2 == 0;
        for persona in &personas {
            if day < persona.registered_day || standing.is_gone(persona.id) {
                continue;
            }
            let stream = StreamName::Contact(persona.id);
            let fatigue = standing.recent_mass.entry(persona.id).or_insert(0);
            if day % 14 == 0 {
                *fatigue = 0;
            }
            if let Some(campaign) = campaign.filter(|_| !standing.opted_out.get(&persona.id).copied().unwrap_or(false))
            {
                // The warm contact of the tour sat out the last promotion, so
                // the weekly cap lets a mass send reach them today.
                let audience = match persona.story {
                    None => generator.rng.f64() < 0.6,
                    Some(0) => day < DAYS - 9,
                    Some(story) => story != 3,
                };
                if audience {
                    *fatigue += 1;
                    let fatigue = *fatigue;
                    let at = generator.local(day, 10, persona);
                    // Promotions go out through mass-send tools that never
                    // ask the gate: the violations list shows what they broke.
                    let source = if by_bulk_tool { "bulk-sender" } else { "wecom-mass-send" };
                    let authorization = TouchAuthorization::External {
                        source: source.to_owned(),
                    };
                    generator.push(
                        at,
                        stream,
                        touch(SendMode::Mass, "marketing", Some(campaign), authorization),
                        "marketing",
                    );
                    // The tour's silent contact answered every promotion
                    // until the last three.
                    let answers = match persona.story {
                        Some(4) => day < ignored_from,
                        _ => generator.rng.f64() < persona.engagement * 0.35 / f64::from(fatigue),
                    };
                    if answers {
                        generator.answer(at, stream, persona);
                    }
                    let deletes = if persona.story == Some(2) {
                        day == last_promotion
                    } else {
                        persona.story.is_none()
                            && generator.rng.f64() < (1.0 - persona.engagement) * 0.012 * f64::from(fatigue)
                    };
                    if deletes {
                        let at = generator.local(day, 21, persona);
                        generator.push(
                            at,
                            stream,
                            ContactDeletedUs {
                                channel: Channel::Wechat,
                            },
                            "wechat-sync",
                        );
                        standing.gone.insert(persona.id, true);
                        continue;
                    }
                    if persona.story.is_none() {
                        let roll = generator.rng.f64();
                        let at = generator.local(day, 20, persona);
                        if roll < 0.002 {
                            generator.push(
                                at,
                                stream,
                                ComplaintFiled {
                                    channel: Channel::Wechat,
                                    reason: Some("spam".to_owned()),
                                },
                                "wechat-sync",
                            );
                        } else if roll < 0.006 {
                            generator.push(
                                at,
                                stream,
                                ConsentWithdrawn {
                                    source: Some("unsubscribe link".to_owned()),
                                },
                                "wechat-sync",
                            );
                            standing.opted_out.insert(persona.id, true);
                        } else if roll < 0.009 {
                            generator.push(
                                at,
                                stream,
                                ContactBlocked {
                                    channel: Channel::Wechat,
                                },
                                "wechat-sync",
                            );
                        }
                    }
                }
            }
            if persona.story == Some(3) && day == persona.registered_day + 30 {
                let at = generator.local(day, 12, persona);
                generator.push(
                    at,
                    stream,
                    ConsentWithdrawn {
                        source: Some("asked in chat".to_owned()),
                    },
                    persona.owner,
                );
                standing.opted_out.insert(persona.id, true);
            }
            // Personal chats on weekdays, more with engaged contacts.
            let weekday = !is_saturday && (day - saturday_offset - 1).rem_euclid(7) != 0;
            // The tour's warm contact chats most weekdays and always answers.
            let chats = match persona.story {
                None => persona.engagement * 0.12,
                Some(0) => 0.6,
                Some(4) => 0.0,
                Some(_) => 0.2,
            };
            if weekday && generator.rng.f64() < chats {
                let hour = generator.rng.i64(10..18);
                let at = generator.local(day, hour, persona);
                let authorization = TouchAuthorization::Gate {
                    verdict: Verdict::Allow,
                    policy_version: 1,
                    position: "0".to_owned(),
                };
                generator.push(
                    at,
                    stream,
                    touch(SendMode::OneToOne, persona.owner, None, authorization),
                    persona.owner,
                );
                if persona.story == Some(0) || generator.rng.f64() < 0.3 + 0.6 * persona.engagement {
                    generator.answer(at, stream, persona);
                }
            }
        }
        if Some(day) == careful_day {
            generator.careful_campaign(day, &personas, &mut standing);
        }
        if Some(day) == reckless_day {
            generator.reckless_campaign(day, &personas, &mut standing);
        }
        // Some who deleted us come back.
        for persona in &personas {
            if standing.is_gone(persona.id) && persona.story.is_none() && generator.rng.f64() < 0.004 {
                let at = generator.local(day, 15, persona);
                generator.push(
                    at,
                    StreamName::Contact(persona.id),
                    ContactReadded {
                        channel: Channel::Wechat,
                    },
                    "wechat-sync",
                );
                standing.gone.insert(persona.id, false);
            }
        }
    }
    // The groups draw on their own seed, so the contacts' stories above
    // stay as they are whatever the groups hold.
    generator.rng = fastrand::Rng::with_seed(seed ^ 0x6772_6f75_7073);
    let now_offset = today.as_millis() - start;
    generator.groups(&personas, &standing, now_offset);
    let mut events = generator.events;
    // Only the past: the demo ends now.
    events.retain(|(at, _, _)| *at <= now_offset);
    events.sort_by_key(|(at, _, _)| *at);
    (events, contacts)
}

/// The demo's customer groups, by the README's names.
pub const GROUPS: [(&str, &str); 3] = [
    (
        "Tea club 老客户茶话会",
        "a calm, mature group: posts go in at its members' own hours",
    ),
    (
        "New tasting 新品体验群",
        "a new group posted into three times today: a fourth waits for tomorrow",
    ),
    (
        "Clearance deals 清仓特卖群",
        "flooded with promotions: members leave and the leave rate alerts",
    ),
];

/// The id of the demo's group `n` (0 to 2): `00000000-6465-6d6f-6772-00000000000n`.
pub fn demo_group_id(n: u64) -> GroupId {
    GroupId(Uuid::from_u64_pair(0x6465_6d6f, 0x6772_0000_0000_0000 | n))
}

/// An offset from the demo's start at a Shanghai wall-clock time on `day`.
fn shanghai(day: i64, hour: i64, minute: i64) -> i64 {
    day * DAY + (hour - 8) * HOUR + minute * 60_000
}

impl Generator {
    fn in_group(&mut self, group: GroupId, at: i64, event: impl Into<Event>, actor: &str) {
        self.push(at, StreamName::Group(group), event, actor);
    }

    fn join(&mut self, group: GroupId, at: i64, member: &str, contact_id: Option<ContactId>) {
        let joined = GroupMemberJoined {
            member: member.to_owned(),
            contact_id,
        };
        self.in_group(group, at, joined, "group-robot");
    }

    /// A member speaks; a linked contact's speech is theirs too.
    fn speak(&mut self, group: GroupId, at: i64, member: &str, contact_id: Option<ContactId>) {
        let spoke = GroupMemberSpoke {
            member: member.to_owned(),
        };
        self.in_group(group, at, spoke, "group-robot");
        if let Some(contact_id) = contact_id {
            let signal = ContactSpokeInGroup { group_id: group };
            self.push(at, StreamName::Contact(contact_id), signal, "group-robot");
        }
    }

    fn leave(&mut self, group: GroupId, at: i64, member: &str, contact_id: Option<ContactId>, after_post: bool) {
        let left = GroupMemberLeft {
            member: member.to_owned(),
        };
        self.in_group(group, at, left, "group-robot");
        if let Some(contact_id) = contact_id {
            let signal = ContactLeftGroup {
                group_id: group,
                after_post,
            };
            self.push(at, StreamName::Contact(contact_id), signal, "group-robot");
        }
    }

    fn group_post(&mut self, group: GroupId, at: i64, kind: PostKind) {
        let post = GroupPostRecorded {
            kind,
            sender: "group-robot".to_owned(),
            authorization: TouchAuthorization::External {
                source: "group-robot".to_owned(),
            },
        };
        self.in_group(group, at, post, "group-robot");
    }

    fn create_group(&mut self, group: GroupId, at: i64, name: &str, owner: &str, kind: &str) {
        let created = GroupCreated {
            name: name.to_owned(),
            owner: owner.to_owned(),
            kind: kind.to_owned(),
            time_zone: Some("Asia/Shanghai".to_owned()),
        };
        self.in_group(group, at, created, owner);
    }

    /// Three groups as `rapport group report` tells them: a calm one, a
    /// new one at its daily cap, and one flooded with promotions.
    fn groups(&mut self, personas: &[Persona], standing: &Standing, now: i64) {
        let today = now.div_euclid(DAY);
        // Members we know: contacts registered before the group, beyond the
        // tour's (whose stories stay as the README tells them).
        let linkable = |owner: &str, before_day: i64| -> Vec<ContactId> {
            personas
                .iter()
                .filter(|p| p.story.is_none() && p.owner == owner && p.registered_day < before_day)
                .map(|p| p.id)
                .collect()
        };

        // The calm group: a few posts a day, members who speak in the
        // evening, a leave now and then.
        let calm = demo_group_id(0);
        let created = today - 120;
        self.create_group(calm, shanghai(created, 10, 0), GROUPS[0].0, "alice", "customers");
        let known = linkable("alice", created);
        let members: Vec<(String, Option<ContactId>)> = (0..80)
            .map(|n| (format!("tea-{n:03}"), known.get(n).copied()))
            .collect();
        for (n, (member, contact)) in members.iter().enumerate() {
            let at = shanghai(created + (n as i64 % 10), 11, n as i64 % 50);
            self.join(calm, at, member, *contact);
        }
        // The last ten never speak: the silent list's greetings and
        // invitations; the four before them leave, one a month.
        let speakers = members.len() - 14;
        for day in created + 10..=today {
            self.group_post(calm, shanghai(day, 8, 30), PostKind::Content);
            if day % 2 == 0 {
                self.group_post(calm, shanghai(day, 20, 0), PostKind::Interaction);
            }
            if day % 7 == 0 {
                self.group_post(calm, shanghai(day, 12, 15), PostKind::Promotion);
            }
            for speech in 0..6 {
                let (member, contact) = members[self.rng.usize(0..speakers)].clone();
                let hour = [12, 20, 20, 21, 20, 8][speech];
                let at = shanghai(day, hour, self.rng.i64(5..55));
                self.speak(calm, at, &member, contact);
            }
        }
        for month in 0..4 {
            let (member, contact) = members[speakers + month].clone();
            // The group is posted into every morning: a leave in the
            // afternoon comes within a day of a post.
            let at = shanghai(created + 20 + 30 * month as i64, 15, 0);
            self.leave(calm, at, &member, contact, true);
        }

        // The new group: three posts already today; a fourth waits.
        let new = demo_group_id(1);
        self.create_group(new, shanghai(today - 3, 9, 0), GROUPS[1].0, "alice", "launch");
        for n in 0..30 {
            self.join(new, shanghai(today - 3, 9, 10 + n), &format!("new-{n:02}"), None);
        }
        let shanghai_midnight = (now + 8 * HOUR).div_euclid(DAY) * DAY - 8 * HOUR;
        for k in 1..=3 {
            let kind = [PostKind::Content, PostKind::Interaction, PostKind::Content][k as usize - 1];
            self.group_post(new, shanghai_midnight + (now - shanghai_midnight) * k / 4, kind);
        }

        // The flooded group: ten robot posts a day, seven of them
        // promotions, and members leaving within hours of them.
        let flooded = demo_group_id(2);
        let created = today - 60;
        self.create_group(flooded, shanghai(created, 10, 0), GROUPS[2].0, "bob", "deals");
        let known: Vec<ContactId> = linkable("bob", created)
            .into_iter()
            .filter(|id| !standing.is_gone(*id))
            .collect();
        let members: Vec<(String, Option<ContactId>)> = (0..150)
            .map(|n| (format!("deal-{n:03}"), known.get(n % 40).filter(|_| n < 40).copied()))
            .collect();
        for (n, (member, contact)) in members.iter().enumerate() {
            self.join(flooded, shanghai(created, 11, n as i64 % 59), member, *contact);
        }
        let mut leaving = members.iter().rev().cloned().collect::<Vec<_>>();
        for day in created + 1..=today {
            for post in 0..10 {
                let kind = if post < 3 {
                    PostKind::Content
                } else {
                    PostKind::Promotion
                };
                self.group_post(flooded, shanghai(day, 9 + post, 0), kind);
            }
            // Over the last month, one member in three days leaves after the posts.
            if day > today - 30
                && day % 3 == 0
                && let Some((member, contact)) = leaving.pop()
            {
                self.leave(flooded, shanghai(day, 21, 30), &member, contact, true);
            }
        }
    }
}

/// Writes the demo into an empty ledger (one holding at most its policy);
/// a ledger with contacts is left as it is and `None` returned.
pub async fn populate(
    store: &Ledger,
    contacts: usize,
    seed: u64,
    now: Timestamp,
) -> Result<Option<DemoReport>, StoreError> {
    if store.head().await?.event_count > 1 {
        return Ok(None);
    }
    let (events, contacts) = generate(contacts, seed, now);
    let total = events.len();
    // Day by day, in business order: each day's appends run concurrently
    // (one per stream, in order) and share commits.
    let mut day_start = 0;
    while day_start < events.len() {
        let day = events[day_start].0.div_euclid(DAY);
        let day_end = events[day_start..]
            .iter()
            .position(|(at, _, _)| at.div_euclid(DAY) != day)
            .map_or(events.len(), |n| day_start + n);
        let mut by_stream: HashMap<StreamName, Vec<NewEvent>> = HashMap::new();
        for (_, stream, event) in &events[day_start..day_end] {
            by_stream.entry(*stream).or_default().push(event.clone());
        }
        let appends = by_stream
            .into_iter()
            .map(|(stream, events)| store.append(stream, ExpectedVersion::Any, events));
        for result in futures::future::join_all(appends).await {
            result?;
        }
        day_start = day_end;
    }
    Ok(Some(DemoReport {
        contacts,
        events: total,
    }))
}
