//! Given/when/then scenarios for the send gate: one rule per test, and the
//! stories from DOMAIN.md. Each builds a small ledger in memory, folds it,
//! and compares typed verdicts and reason codes.

use std::collections::HashMap;

use rapport_domain::Language;
use rapport_domain::gate::ReasonCode;
use rapport_domain::{
    Band, Channel, ComplaintFiled, ConsentWithdrawn, ContactBlocked, ContactDeletedUs, ContactId, ContactReadded,
    ContactRegistered, ContactTagged, Event, GateDecision, Policy, PolicyChanged, Position, RecordedEvent,
    ReplyReceived, SendMode, StreamName, Timestamp, TouchAuthorization, TouchRecorded, Verdict,
};
use uuid::Uuid;

use crate::Projection;

pub fn t(text: &str) -> Timestamp {
    text.parse().expect("a valid timestamp")
}

/// A ledger in memory: events get positions and stream versions as the
/// store would give them, and are folded as they are recorded.
pub struct Ledger {
    pub events: Vec<RecordedEvent>,
    pub projection: Projection,
    versions: HashMap<StreamName, u64>,
}

impl Ledger {
    /// A ledger whose first event is the default policy, as every new ledger's is.
    pub fn new() -> Self {
        let mut ledger = Ledger {
            events: Vec::new(),
            projection: Projection::new(),
            versions: HashMap::new(),
        };
        ledger.record(
            StreamName::Policy,
            "2025-01-01T00:00:00Z",
            PolicyChanged {
                policy: Policy::default(),
            },
        );
        ledger
    }

    pub fn record(&mut self, stream: StreamName, occurred_at: &str, event: impl Into<Event>) -> Position {
        let occurred_at = t(occurred_at);
        let recorded_at = self
            .events
            .last()
            .map_or(occurred_at, |last| last.recorded_at.max(occurred_at));
        self.record_late(stream, occurred_at, recorded_at, event)
    }

    /// Records a fact at ledger time `recorded_at` that occurred earlier.
    pub fn record_late(
        &mut self,
        stream: StreamName,
        occurred_at: Timestamp,
        recorded_at: Timestamp,
        event: impl Into<Event>,
    ) -> Position {
        let version = self.versions.entry(stream).or_insert(0);
        let position = Position::from_sequence(self.events.len() as u64 + 1);
        let event_id = Uuid::from_u128(self.events.len() as u128 + 1);
        let recorded = RecordedEvent {
            event_id,
            stream,
            version: *version,
            position,
            schema_version: 1,
            event: event.into(),
            pii: None,
            occurred_at,
            recorded_at,
            actor: "test".into(),
            correlation_id: event_id,
            causation_id: None,
        };
        *version += 1;
        self.projection.apply(&recorded);
        self.events.push(recorded);
        position
    }

    /// Rebuilds a projection from scratch from the events up to `position`.
    pub fn replay_to(&self, position: Position) -> Projection {
        let mut projection = Projection::new();
        for event in self.events.iter().filter(|event| event.position <= position) {
            projection.apply(event);
        }
        projection
    }
}

pub struct Contact {
    pub id: ContactId,
}

impl Contact {
    pub fn stream(&self) -> StreamName {
        StreamName::Contact(self.id)
    }
}

pub fn register(ledger: &mut Ledger, n: u128, at: &str, tags: &[&str]) -> Contact {
    let contact = Contact {
        id: ContactId(Uuid::from_u128(n)),
    };
    let registered = ContactRegistered {
        owner: "alice".into(),
        primary_channel: Channel::Wechat,
        time_zone: None,
        tags: tags.iter().map(|tag| (*tag).to_owned()).collect(),
    };
    ledger.record(contact.stream(), at, registered);
    contact
}

pub fn touch(mode: SendMode) -> TouchRecorded {
    TouchRecorded {
        mode,
        channel: Channel::Wechat,
        campaign_id: None,
        sender: "alice".into(),
        authorization: TouchAuthorization::External { source: "test".into() },
    }
}

pub fn reply() -> ReplyReceived {
    ReplyReceived {
        channel: Channel::Wechat,
    }
}

/// A contact who has chatted with us weekly since January: six personal
/// messages, each answered the same evening (replies at 20:xx Shanghai).
pub fn warm_contact(ledger: &mut Ledger, n: u128, tags: &[&str]) -> Contact {
    let contact = register(ledger, n, "2026-01-02T02:00:00Z", tags);
    weekly_chats(ledger, &contact, "2026-01-05T03:00:00Z", "2026-01-05T12:15:00Z");
    contact
}

/// Six weekly personal messages from the given first one, each answered
/// at the same time of day as the given first reply.
pub fn weekly_chats(ledger: &mut Ledger, contact: &Contact, first_touch: &str, first_reply: &str) {
    const WEEK: i64 = 7 * 86_400_000;
    for week in 0..6 {
        ledger.record(
            contact.stream(),
            &t(first_touch).plus_millis(week * WEEK).to_rfc3339(),
            touch(SendMode::OneToOne),
        );
        ledger.record(
            contact.stream(),
            &t(first_reply).plus_millis(week * WEEK).to_rfc3339(),
            reply(),
        );
    }
}

impl Ledger {
    pub fn gate(&self, contact: &Contact, mode: SendMode, at: &str) -> GateDecision {
        self.projection
            .gate(contact.id, mode, None, t(at))
            .expect("a registered contact")
            .gate
    }
}

pub fn codes(decision: &GateDecision) -> Vec<ReasonCode> {
    decision
        .reasons
        .iter()
        .filter(|reason| reason.blocking)
        .map(|reason| reason.code)
        .collect()
}

pub fn warnings(decision: &GateDecision) -> Vec<ReasonCode> {
    decision
        .reasons
        .iter()
        .filter(|reason| !reason.blocking)
        .map(|reason| reason.code)
        .collect()
}

// Saturday 2026-02-14, 10:00 in Shanghai.
const SATURDAY_MORNING: &str = "2026-02-14T10:00:00+08:00";

#[test]
fn a_warm_contact_may_receive_a_mass_send() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::Allow, "{:?}", decision.reasons);
    assert!(decision.reasons.is_empty());
    assert!(decision.strength.score >= 50);
    assert_eq!(decision.policy_version, 1);
    assert_eq!(decision.next_allowed_at, None);
}

#[test]
fn a_contact_who_ignored_three_mass_sends_gets_a_personal_chat_instead() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    for day in ["2026-02-16", "2026-02-24", "2026-03-04"] {
        ledger.record(contact.stream(), &format!("{day}T02:00:00Z"), touch(SendMode::Mass));
    }
    let decision = ledger.gate(&contact, SendMode::Mass, "2026-03-12T10:00:00+08:00");
    assert_eq!(decision.verdict, Verdict::RouteOneToOne);
    assert!(
        codes(&decision).contains(&ReasonCode::NoRecentReplies),
        "{:?}",
        codes(&decision)
    );
    assert_eq!(
        ledger
            .gate(&contact, SendMode::OneToOne, "2026-03-12T10:00:00+08:00")
            .verdict,
        Verdict::Allow
    );
}

#[test]
fn the_elderly_customer_is_not_messaged_at_ten_at_night() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-01-02T02:00:00Z", &[]);
    // Replies come in the morning, around 09:00 in Shanghai.
    weekly_chats(&mut ledger, &contact, "2026-01-05T00:30:00Z", "2026-01-05T01:05:00Z");
    let decision = ledger.gate(&contact, SendMode::OneToOne, "2026-02-14T22:00:00+08:00");
    assert_eq!(decision.verdict, Verdict::Defer);
    assert_eq!(codes(&decision), vec![ReasonCode::QuietHours]);
    // Not at 08:00, the window's start, but at 09:00, when they answer.
    assert_eq!(decision.next_allowed_at, Some(t("2026-02-15T09:00:00+08:00")));
    assert_eq!(decision.best_send_hours, 1 << 9);
}

#[test]
fn without_known_reply_hours_the_next_send_is_the_window_opening() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-01-02T02:00:00Z", &[]);
    let decision = ledger.gate(&contact, SendMode::OneToOne, "2026-02-14T22:00:00+08:00");
    assert_eq!(decision.verdict, Verdict::Defer);
    assert_eq!(decision.next_allowed_at, Some(t("2026-02-15T08:00:00+08:00")));
}

#[test]
fn a_vip_gets_a_personal_chat_never_a_mass_send() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &["vip"]);
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::RouteOneToOne);
    assert_eq!(codes(&decision), vec![ReasonCode::HighValueContact]);
    let reason = decision.reasons[0];
    let message = Language::English.reason(&reason, reason.tag_name(ledger.projection.symbols()));
    assert!(message.contains("'vip'"), "{message}");
}

#[test]
fn the_contact_who_deleted_us_after_a_saturday_promotion_cannot_be_messaged() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(contact.stream(), "2026-02-14T02:00:00Z", touch(SendMode::Mass));
    ledger.record(
        contact.stream(),
        "2026-02-14T11:00:00Z",
        ContactDeletedUs {
            channel: Channel::Wechat,
        },
    );
    for mode in [SendMode::Mass, SendMode::OneToOne] {
        let decision = ledger.gate(&contact, mode, "2026-02-16T10:00:00+08:00");
        assert_eq!(decision.verdict, Verdict::Deny, "{mode:?}");
        assert!(codes(&decision).contains(&ReasonCode::ContactDeletedUs));
        assert_eq!(decision.strength.band, Band::Lost);
    }
    ledger.record(
        contact.stream(),
        "2026-02-20T02:00:00Z",
        ContactReadded {
            channel: Channel::Wechat,
        },
    );
    let decision = ledger.gate(&contact, SendMode::OneToOne, "2026-02-21T10:00:00+08:00");
    assert_eq!(decision.verdict, Verdict::Allow);
}

#[test]
fn an_opted_out_contact_gets_no_mass_send_but_may_be_chatted_with_personally() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ConsentWithdrawn { source: None },
    );
    let mass = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(mass.verdict, Verdict::Deny);
    assert_eq!(codes(&mass), vec![ReasonCode::OptedOut]);
    let personal = ledger.gate(&contact, SendMode::OneToOne, SATURDAY_MORNING);
    assert_eq!(personal.verdict, Verdict::Allow);
    assert_eq!(warnings(&personal), vec![ReasonCode::OptedOut]);
}

#[test]
fn a_policy_change_does_not_change_yesterdays_replayed_decision() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    let yesterday = ledger.projection.position().expect("position");
    let at = SATURDAY_MORNING;
    let before = ledger.gate(&contact, SendMode::Mass, at);
    assert_eq!(before.verdict, Verdict::Allow);

    let mut stricter = Policy::default();
    stricter.mass.score_min = 95;
    ledger.record(
        StreamName::Policy,
        "2026-02-14T03:00:00Z",
        PolicyChanged { policy: stricter },
    );
    let now = ledger.gate(&contact, SendMode::Mass, at);
    assert_eq!(now.verdict, Verdict::RouteOneToOne);
    assert_eq!(now.policy_version, 2);

    let replayed = ledger
        .replay_to(yesterday)
        .gate(contact.id, SendMode::Mass, None, t(at))
        .expect("contact")
        .gate;
    assert_eq!(replayed, before);
    assert_eq!(replayed.policy_version, 1);
}

#[test]
fn a_block_denies_that_channel_and_leaves_the_others_open() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ContactBlocked {
            channel: Channel::Wechat,
        },
    );
    let on_wechat = ledger
        .projection
        .gate(contact.id, SendMode::OneToOne, None, t(SATURDAY_MORNING))
        .expect("contact");
    assert_eq!(on_wechat.gate.verdict, Verdict::Deny);
    assert_eq!(codes(&on_wechat.gate), vec![ReasonCode::Blocked]);
    let by_sms = ledger
        .projection
        .gate(contact.id, SendMode::OneToOne, Some(Channel::Sms), t(SATURDAY_MORNING));
    assert_eq!(by_sms.expect("contact").gate.verdict, Verdict::Allow);
}

#[test]
fn a_complaint_denies_mass_sends_for_ninety_days() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ComplaintFiled {
            channel: Channel::Wechat,
            reason: None,
        },
    );
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::Deny);
    assert!(codes(&decision).contains(&ReasonCode::RecentComplaint));
    let later = ledger.gate(&contact, SendMode::Mass, "2026-05-12T10:00:00+08:00");
    assert!(
        !codes(&later).contains(&ReasonCode::RecentComplaint),
        "{:?}",
        codes(&later)
    );
}

#[test]
fn a_relationship_too_weak_for_mass_sends_is_routed_to_a_personal_chat() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2025-06-01T02:00:00Z", &[]);
    ledger.record(contact.stream(), "2025-06-03T02:00:00Z", touch(SendMode::OneToOne));
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::RouteOneToOne);
    assert_eq!(codes(&decision), vec![ReasonCode::RelationshipTooWeak]);
    assert_eq!(decision.strength.band, Band::Cold);
}

#[test]
fn a_new_contact_who_has_not_replied_gets_a_personal_chat_first() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-02-12T02:00:00Z", &[]);
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert!(codes(&decision).contains(&ReasonCode::NewContact));
    let after_a_week = ledger.gate(&contact, SendMode::Mass, "2026-02-20T10:00:00+08:00");
    assert!(!codes(&after_a_week).contains(&ReasonCode::NewContact));
}

/// The default policy with no weekly cooldown and no fatigue, so that a
/// platform's own cap is the only rule left on repeated mass sends.
fn only_platform_caps() -> Policy {
    let mut policy = Policy::default();
    policy.mass.cooldown_secs = 0;
    policy.scoring.mass_fatigue_points = 0;
    policy
}

#[test]
fn a_wechat_follower_gets_at_most_four_mass_sends_in_thirty_days() {
    let mut ledger = Ledger::new();
    ledger.record(
        StreamName::Policy,
        "2026-01-01T00:00:00Z",
        PolicyChanged {
            policy: only_platform_caps(),
        },
    );
    let contact = warm_contact(&mut ledger, 1, &[]);
    for day in ["01", "04", "07", "10"] {
        ledger.record(
            contact.stream(),
            &format!("2026-02-{day}T03:00:00Z"),
            touch(SendMode::Mass),
        );
        ledger.record(contact.stream(), &format!("2026-02-{day}T12:15:00Z"), reply());
    }
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::Defer, "{:?}", decision.reasons);
    assert_eq!(codes(&decision), vec![ReasonCode::PlatformCap]);
    // The first of the four leaves the thirty days on 3 March at 11:00
    // their time; they reply around 20:00, so that is when.
    assert_eq!(decision.next_allowed_at, Some(t("2026-03-03T20:00:00+08:00")));
    let by_sms = ledger
        .projection
        .gate(contact.id, SendMode::Mass, Some(Channel::Sms), t(SATURDAY_MORNING))
        .expect("a contact")
        .gate;
    assert_eq!(
        by_sms.verdict,
        Verdict::Allow,
        "SMS has no platform cap: {:?}",
        by_sms.reasons
    );
}

#[test]
fn sends_on_another_channel_never_let_a_platform_cap_be_undercounted() {
    let mut ledger = Ledger::new();
    ledger.record(
        StreamName::Policy,
        "2026-01-01T00:00:00Z",
        PolicyChanged {
            policy: only_platform_caps(),
        },
    );
    let contact = warm_contact(&mut ledger, 1, &[]);
    let mut sms = touch(SendMode::Mass);
    sms.channel = Channel::Sms;
    let send = |ledger: &mut Ledger, day: &str, on_sms: bool| {
        let touch = if on_sms { sms.clone() } else { touch(SendMode::Mass) };
        ledger.record(contact.stream(), &format!("2026-02-{day}T03:00:00Z"), touch);
        ledger.record(contact.stream(), &format!("2026-02-{day}T12:15:00Z"), reply());
    };
    for (day, on_sms) in [("01", false), ("02", true), ("04", false), ("05", true)] {
        send(&mut ledger, day, on_sms);
    }
    // SMS sends are not WeChat's: two of four in the window, so more may go.
    assert_eq!(
        ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING).verdict,
        Verdict::Allow
    );
    for (day, on_sms) in [("07", false), ("08", true)] {
        send(&mut ledger, day, on_sms);
    }
    // Six sends, four remembered: the first WeChat send and the first SMS
    // one were let go while inside the thirty days. WeChat had three, or
    // four: the cap holds until the newest forgotten one leaves the window.
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(codes(&decision), vec![ReasonCode::PlatformCap]);
    assert_eq!(decision.next_allowed_at, Some(t("2026-03-04T20:00:00+08:00")));
    let reason = decision.reasons[0];
    assert!(reason.facts.at_least);
    let message = Language::English.reason(&reason, "");
    assert!(message.contains("at least 2"), "{message}");
}

#[test]
fn three_failed_deliveries_in_a_row_make_a_channel_unreachable_until_a_sign_of_life() {
    use rapport_domain::{DeliveryFailed, MessageRead};
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    let failed = || DeliveryFailed {
        channel: Channel::Wechat,
        campaign_id: None,
        reason: Some("not a friend".into()),
    };
    ledger.record(contact.stream(), "2026-02-10T03:00:00Z", touch(SendMode::OneToOne));
    ledger.record(contact.stream(), "2026-02-11T03:00:00Z", failed());
    ledger.record(contact.stream(), "2026-02-12T03:00:00Z", failed());
    assert_eq!(
        ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING).verdict,
        Verdict::Allow,
        "two failures are bad luck"
    );
    ledger.record(contact.stream(), "2026-02-13T03:00:00Z", failed());
    let mass = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(mass.verdict, Verdict::Deny);
    assert_eq!(codes(&mass), vec![ReasonCode::Unreachable]);
    let personal = ledger.gate(&contact, SendMode::OneToOne, SATURDAY_MORNING);
    assert_eq!(personal.verdict, Verdict::Allow);
    assert_eq!(warnings(&personal), vec![ReasonCode::Unreachable]);
    let by_sms = ledger
        .projection
        .gate(contact.id, SendMode::Mass, Some(Channel::Sms), t(SATURDAY_MORNING))
        .expect("a contact")
        .gate;
    assert!(!codes(&by_sms).contains(&ReasonCode::Unreachable), "another channel");

    // A read of an older message, dated before the last touch, proves
    // nothing about the messages that failed.
    ledger.record_late(
        contact.stream(),
        t("2026-02-09T04:00:00Z"),
        t("2026-02-13T05:00:00Z"),
        MessageRead {
            channel: Channel::Wechat,
            campaign_id: None,
        },
    );
    assert_eq!(
        ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING).verdict,
        Verdict::Deny
    );
    ledger.record(
        contact.stream(),
        "2026-02-13T06:00:00Z",
        MessageRead {
            channel: Channel::Wechat,
            campaign_id: None,
        },
    );
    assert_eq!(
        ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING).verdict,
        Verdict::Allow
    );
}

#[test]
fn a_second_mass_send_within_a_week_waits_until_the_week_is_over() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(contact.stream(), "2026-02-12T03:00:00Z", touch(SendMode::Mass));
    let decision = ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::Defer);
    assert_eq!(codes(&decision), vec![ReasonCode::FrequencyCap]);
    // The week ends at 11:00 local on the 19th; they reply around 20:00, so
    // the gate proposes 20:00 that day rather than the first open minute.
    assert_eq!(decision.next_allowed_at, Some(t("2026-02-19T20:00:00+08:00")));
}

#[test]
fn the_next_allowed_moment_satisfies_every_deferring_rule_at_once() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-01-02T02:00:00Z", &[]);
    ledger.record(contact.stream(), "2026-01-03T02:00:00Z", touch(SendMode::OneToOne));
    ledger.record(contact.stream(), "2026-01-03T03:00:00Z", reply());
    ledger.record(contact.stream(), "2026-02-10T02:00:00Z", touch(SendMode::OneToOne));
    ledger.record(contact.stream(), "2026-02-11T02:00:00Z", touch(SendMode::OneToOne));
    // The third unanswered chat is sent at 22:30 local; the pause ends a week later, at night.
    ledger.record(contact.stream(), "2026-02-12T14:30:00Z", touch(SendMode::OneToOne));
    let decision = ledger.gate(&contact, SendMode::OneToOne, SATURDAY_MORNING);
    assert_eq!(decision.verdict, Verdict::Defer);
    assert_eq!(codes(&decision), vec![ReasonCode::UnansweredChats]);
    // The oldest of the three leaves the 7-day window on 17 Feb at 10:00 local.
    assert_eq!(decision.next_allowed_at, Some(t("2026-02-17T02:00:00Z")));
    let at_night = ledger.gate(&contact, SendMode::OneToOne, "2026-02-16T23:00:00+08:00");
    assert_eq!(
        codes(&at_night),
        vec![ReasonCode::QuietHours, ReasonCode::UnansweredChats]
    );
    assert_eq!(at_night.next_allowed_at, Some(t("2026-02-17T10:00:00+08:00")));
}

#[test]
fn a_reply_lifts_the_pause_on_unanswered_chats() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-01-02T02:00:00Z", &[]);
    for day in 10..13 {
        ledger.record(
            contact.stream(),
            &format!("2026-02-{day}T02:00:00Z"),
            touch(SendMode::OneToOne),
        );
    }
    assert_eq!(
        ledger.gate(&contact, SendMode::OneToOne, SATURDAY_MORNING).verdict,
        Verdict::Defer
    );
    ledger.record(contact.stream(), "2026-02-13T02:00:00Z", reply());
    assert_eq!(
        ledger.gate(&contact, SendMode::OneToOne, SATURDAY_MORNING).verdict,
        Verdict::Allow
    );
}

#[test]
fn the_verdict_is_the_strongest_reason_and_every_reason_is_listed() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &["vip"]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ConsentWithdrawn { source: None },
    );
    let decision = ledger.gate(&contact, SendMode::Mass, "2026-02-14T23:00:00+08:00");
    assert_eq!(decision.verdict, Verdict::Deny);
    assert_eq!(
        codes(&decision),
        vec![
            ReasonCode::OptedOut,
            ReasonCode::HighValueContact,
            ReasonCode::QuietHours
        ]
    );
    assert_eq!(decision.next_allowed_at, None, "only a DEFER has a next allowed time");
}

#[test]
fn an_overridden_touch_is_a_violation_that_names_the_decision_it_broke() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ConsentWithdrawn { source: None },
    );
    let mut overridden = touch(SendMode::Mass);
    overridden.authorization = TouchAuthorization::Override {
        reason: "contract renewal notice".into(),
    };
    let position = ledger.record(contact.stream(), "2026-02-14T02:00:00Z", overridden);
    let violations = ledger.projection.violations();
    assert_eq!(violations.len(), 1);
    assert_eq!(violations[0].position, position);
    assert_eq!(violations[0].verdict, Verdict::Deny);
    assert_eq!(
        violations[0].reasons.iter().collect::<Vec<_>>(),
        vec![ReasonCode::OptedOut]
    );
    assert_eq!(violations[0].policy_version, 1);
    assert!(violations[0].overridden, "sent under an override");
}

#[test]
fn a_touch_the_gate_allowed_is_no_violation() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(contact.stream(), "2026-02-14T02:00:00Z", touch(SendMode::Mass));
    assert!(ledger.projection.violations().is_empty());
}

#[test]
fn a_late_reply_changes_todays_knowledge_but_not_yesterdays_replay() {
    let mut ledger = Ledger::new();
    let contact = register(&mut ledger, 1, "2026-01-02T02:00:00Z", &[]);
    for day in 10..13 {
        ledger.record(
            contact.stream(),
            &format!("2026-02-{day}T02:00:00Z"),
            touch(SendMode::OneToOne),
        );
    }
    let yesterday = ledger.projection.position().expect("position");
    let at = SATURDAY_MORNING;
    assert_eq!(ledger.gate(&contact, SendMode::OneToOne, at).verdict, Verdict::Defer);
    // Today we learn they replied on the 12th, after our last chat.
    ledger.record_late(
        contact.stream(),
        t("2026-02-12T05:00:00Z"),
        t("2026-02-15T02:00:00Z"),
        reply(),
    );
    assert_eq!(ledger.gate(&contact, SendMode::OneToOne, at).verdict, Verdict::Allow);
    let replayed = ledger
        .replay_to(yesterday)
        .gate(contact.id, SendMode::OneToOne, None, t(at))
        .expect("contact");
    assert_eq!(replayed.gate.verdict, Verdict::Defer);
    assert_eq!(replayed.position, Some(yesterday));
}

#[test]
fn tags_added_later_count_for_the_high_value_rule() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(
        contact.stream(),
        "2026-02-10T02:00:00Z",
        ContactTagged { tag: "vip".into() },
    );
    assert_eq!(
        codes(&ledger.gate(&contact, SendMode::Mass, SATURDAY_MORNING)),
        vec![ReasonCode::HighValueContact]
    );
}

#[test]
fn the_worked_example_in_the_scoring_doc_holds() {
    let mut ledger = Ledger::new();
    let contact = warm_contact(&mut ledger, 1, &[]);
    ledger.record(contact.stream(), "2026-02-12T02:00:00Z", touch(SendMode::Mass));
    ledger.record(contact.stream(), "2026-02-13T02:00:00Z", touch(SendMode::Mass));
    let strength = ledger
        .projection
        .strength(contact.id, t(SATURDAY_MORNING))
        .expect("contact");
    let points: Vec<(&str, i32)> = strength.components.iter().map(|c| (c.name, c.points)).collect();
    assert_eq!(
        points,
        vec![
            ("replyRecency", 30),
            ("reciprocity", 22),
            ("twoWayFrequency", 12),
            ("unansweredStreak", -6),
            ("massFatigue", -8),
            ("complaints", 0),
            ("groupSpeech", 0),
            ("groupLeaves", 0),
        ]
    );
    assert_eq!((strength.score, strength.band), (50, Band::Warm));
}

#[test]
fn events_of_unknown_contacts_answer_nothing() {
    let ledger = Ledger::new();
    assert!(
        ledger
            .projection
            .gate(ContactId(Uuid::from_u128(9)), SendMode::Mass, None, t(SATURDAY_MORNING))
            .is_none()
    );
}

mod aftermath {
    use super::*;
    use crate::campaigns::{Loss, Outcomes};
    use rapport_domain::{CampaignHeldOut, CampaignId, CampaignStarted};

    const CAMPAIGN: CampaignId = CampaignId(Uuid::from_u128(0xCA));

    fn launched(ledger: &mut Ledger, at: &str) {
        let started = CampaignStarted {
            name: "Double 11".into(),
            channel: Channel::Wechat,
            mode: SendMode::Mass,
            audience: None,
            policy_version: Some(1),
            holdout_percent: 20,
            resolved: None,
        };
        ledger.record(StreamName::Campaign(CAMPAIGN), at, started);
    }

    fn sent(ledger: &mut Ledger, contact: &Contact, at: &str) {
        let mut touch = touch(SendMode::Mass);
        touch.campaign_id = Some(CAMPAIGN);
        ledger.record(contact.stream(), at, touch);
    }

    fn held_out(ledger: &mut Ledger, contact: &Contact, at: &str) {
        ledger.record(contact.stream(), at, CampaignHeldOut { campaign_id: CAMPAIGN });
    }

    fn deleted(ledger: &mut Ledger, contact: &Contact, at: &str) {
        ledger.record(
            contact.stream(),
            at,
            ContactDeletedUs {
                channel: Channel::Wechat,
            },
        );
    }

    #[test]
    fn who_deleted_us_within_the_window_counts_and_is_listed_with_their_band_before() {
        let mut ledger = Ledger::new();
        let contacts: Vec<Contact> = (1..=5)
            .map(|n| register(&mut ledger, n, "2026-10-01T02:00:00Z", &[]))
            .collect();
        for contact in &contacts {
            ledger.record(contact.stream(), "2026-10-20T02:00:00Z", reply());
        }
        launched(&mut ledger, "2026-11-11T02:00:00Z");
        for contact in &contacts[..4] {
            sent(&mut ledger, contact, "2026-11-11T02:00:00Z");
        }
        held_out(&mut ledger, &contacts[4], "2026-11-11T02:00:00Z");
        deleted(&mut ledger, &contacts[0], "2026-11-12T13:00:00Z");
        ledger.record(contacts[1].stream(), "2026-11-11T09:00:00Z", reply());
        ledger.record(contacts[1].stream(), "2026-11-12T09:00:00Z", reply());
        // After the seven days, a deletion is not the campaign's.
        deleted(&mut ledger, &contacts[2], "2026-11-19T03:00:00Z");
        deleted(&mut ledger, &contacts[4], "2026-11-13T03:00:00Z");

        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("the campaign");
        assert_eq!(record.name.as_deref(), Some("Double 11"));
        assert_eq!(record.holdout_percent, 20);
        assert_eq!(
            record.sent,
            Outcomes {
                contacts: 4,
                replied: 1,
                deleted_us: 1,
                lost: 1,
                ..Outcomes::default()
            },
            "a contact who replied twice is one who replied"
        );
        assert_eq!(
            record.holdout,
            Outcomes {
                contacts: 1,
                deleted_us: 1,
                lost: 1,
                ..Outcomes::default()
            }
        );
        let lost: Vec<(ContactId, Loss, bool)> =
            record.lost.iter().map(|l| (l.contact_id, l.loss, l.held_out)).collect();
        assert_eq!(
            lost,
            [
                (contacts[0].id, Loss::DeletedUs, false),
                (contacts[4].id, Loss::DeletedUs, true)
            ]
        );
        assert_ne!(record.lost[0].band_before, Band::Lost, "as they stood before the send");
        // One deletion in four sent is a 25 % loss: far over the 2 % alert.
        assert_eq!(record.sent.loss_rate(), 0.25);
        assert_eq!(
            record.sent.alerts(&record.rules),
            [crate::campaigns::Alert::Losses {
                rate: 0.25,
                threshold: 0.02
            }]
        );
        assert_eq!(
            Outcomes::default().alerts(&record.rules),
            [],
            "an empty group alerts nobody"
        );
    }

    #[test]
    fn failed_deliveries_count_for_the_campaign_they_name_and_raise_its_alert() {
        use rapport_domain::{DeliveryFailed, LinkClicked, MessageRead};
        let mut ledger = Ledger::new();
        let contacts: Vec<Contact> = (1..=10)
            .map(|n| register(&mut ledger, n, "2026-10-01T02:00:00Z", &[]))
            .collect();
        launched(&mut ledger, "2026-11-11T02:00:00Z");
        for contact in &contacts {
            sent(&mut ledger, contact, "2026-11-11T02:00:00Z");
        }
        let failed = |campaign_id| DeliveryFailed {
            channel: Channel::Wechat,
            campaign_id,
            reason: None,
        };
        ledger.record(contacts[0].stream(), "2026-11-11T02:01:00Z", failed(Some(CAMPAIGN)));
        ledger.record(contacts[0].stream(), "2026-11-11T02:02:00Z", failed(Some(CAMPAIGN)));
        // A failure of another campaign's message, or of none, is not this one's.
        let other = CampaignId(Uuid::from_u128(0xCB));
        ledger.record(contacts[1].stream(), "2026-11-11T02:01:00Z", failed(Some(other)));
        ledger.record(contacts[2].stream(), "2026-11-11T02:01:00Z", failed(None));
        ledger.record(
            contacts[3].stream(),
            "2026-11-11T03:00:00Z",
            MessageRead {
                channel: Channel::Wechat,
                campaign_id: Some(CAMPAIGN),
            },
        );
        ledger.record(
            contacts[3].stream(),
            "2026-11-11T03:01:00Z",
            LinkClicked {
                channel: Channel::Wechat,
                campaign_id: Some(CAMPAIGN),
            },
        );
        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("the campaign");
        assert_eq!(
            (record.sent.failed, record.sent.read, record.sent.clicked),
            (1, 1, 1),
            "a contact counted once"
        );
        assert_eq!(record.sent.failed_rate(), 0.1);
        assert_eq!(
            record.sent.alerts(&record.rules),
            [crate::campaigns::Alert::FailedDeliveries {
                rate: 0.1,
                threshold: 0.05
            }]
        );
    }

    #[test]
    fn the_aftermath_window_is_the_policys_when_the_campaign_started() {
        let mut ledger = Ledger::new();
        let mut two_days = Policy::default();
        two_days.campaigns.aftermath_window_secs = 2 * 86_400;
        ledger.record(
            StreamName::Policy,
            "2026-11-01T00:00:00Z",
            PolicyChanged { policy: two_days },
        );
        let contacts: Vec<Contact> = (1..=2)
            .map(|n| register(&mut ledger, n, "2026-10-01T02:00:00Z", &[]))
            .collect();
        launched(&mut ledger, "2026-11-11T02:00:00Z");
        for contact in &contacts {
            sent(&mut ledger, contact, "2026-11-11T02:00:00Z");
        }
        // A later policy does not move the window of a campaign already out.
        ledger.record(
            StreamName::Policy,
            "2026-11-11T05:00:00Z",
            PolicyChanged {
                policy: Policy::default(),
            },
        );
        deleted(&mut ledger, &contacts[0], "2026-11-12T13:00:00Z");
        deleted(&mut ledger, &contacts[1], "2026-11-14T13:00:00Z");
        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("the campaign");
        assert_eq!(record.rules.window_millis, 2 * 86_400_000);
        assert_eq!(record.sent.deleted_us, 1, "the second deletion came after two days");
    }

    #[test]
    fn a_contact_who_deletes_and_blocks_us_is_lost_once() {
        let mut ledger = Ledger::new();
        let contacts: Vec<Contact> = (1..=2)
            .map(|n| register(&mut ledger, n, "2026-10-01T02:00:00Z", &[]))
            .collect();
        launched(&mut ledger, "2026-11-11T02:00:00Z");
        for contact in &contacts {
            sent(&mut ledger, contact, "2026-11-11T02:00:00Z");
        }
        deleted(&mut ledger, &contacts[0], "2026-11-12T13:00:00Z");
        ledger.record(
            contacts[0].stream(),
            "2026-11-12T14:00:00Z",
            ContactBlocked {
                channel: Channel::Wechat,
            },
        );
        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("a record");
        assert_eq!(
            (record.sent.deleted_us, record.sent.blocked, record.sent.lost),
            (1, 1, 1)
        );
        assert_eq!(record.sent.loss_rate(), 0.5);
        assert_eq!(record.lost.len(), 1);
        let members = ledger.projection.campaigns().members(CAMPAIGN);
        assert_eq!(members.iter().filter(|member| member.turned_away).count(), 1);
    }

    #[test]
    fn a_touch_naming_a_campaign_the_ledger_never_started_still_has_its_aftermath() {
        let mut ledger = Ledger::new();
        let contact = register(&mut ledger, 1, "2026-10-01T02:00:00Z", &[]);
        sent(&mut ledger, &contact, "2026-11-11T02:00:00Z");
        ledger.record(
            contact.stream(),
            "2026-11-12T02:00:00Z",
            ContactBlocked {
                channel: Channel::Wechat,
            },
        );
        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("a record");
        assert_eq!(record.name, None);
        assert_eq!((record.sent.contacts, record.sent.blocked), (1, 1));
    }

    #[test]
    fn a_fact_dated_before_the_touch_is_not_its_aftermath_even_if_recorded_after() {
        let mut ledger = Ledger::new();
        let contact = register(&mut ledger, 1, "2026-10-01T02:00:00Z", &[]);
        launched(&mut ledger, "2026-11-11T02:00:00Z");
        sent(&mut ledger, &contact, "2026-11-11T02:00:00Z");
        ledger.record_late(
            contact.stream(),
            t("2026-11-10T02:00:00Z"),
            t("2026-11-12T02:00:00Z"),
            ComplaintFiled {
                channel: Channel::Wechat,
                reason: None,
            },
        );
        let record = ledger.projection.campaigns().get(CAMPAIGN).expect("a record");
        assert_eq!(record.sent.complained, 0);
    }
}
