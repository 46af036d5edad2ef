//! Decisions that produce events: the contact's state, the policy, the
//! command and the moment in; the event to append, or a typed rejection,
//! out. The rules live here and nowhere else; adapters translate commands
//! in and rejections out.

use crate::event::{
    Channel, ComplaintFiled, ConsentGranted, ConsentWithdrawn, ContactBlocked, ContactDeletedUs, ContactReadded,
    ContactRegistered, ContactTagged, ContactUnblocked, ContactUntagged, DeliveryFailed, Event, LinkClicked,
    MessageRead, Pii, ReplyReceived, SendMode, TAGS_PER_CONTACT_MAX, TouchAuthorization, TouchRecorded,
    ValidationError, Verdict,
};
use crate::gate::{CompiledPolicy, GateDecision, gate};
use crate::ids::{CampaignId, StreamName};
use crate::policy::{BusinessTimeError, ClockRules};
use crate::relationship::Relationship;
use crate::symbols::Symbols;
use crate::time::Timestamp;

/// Record a send to one contact, as someone asked for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordTouch {
    pub mode: SendMode,
    /// The contact's primary channel when absent.
    pub channel: Option<Channel>,
    pub campaign_id: Option<CampaignId>,
    /// Staff id of whoever sends it.
    pub sender: String,
    /// Business time of the send.
    pub occurred_at: Timestamp,
    /// A manager's reason to send although the gate says no. Who may give
    /// one is the caller's to check; what it allows is decided here.
    pub override_reason: Option<String>,
}

/// Why a touch is not recorded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TouchRejection {
    /// The gate does not allow it, and nobody overrode it.
    GateDenied,
    /// Its business time is out of bounds.
    BusinessTime(BusinessTimeError),
}

/// The gate's answer at the touch's moment, and what follows from it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TouchDecision {
    pub gate: GateDecision,
    pub outcome: Result<TouchRecorded, TouchRejection>,
}

/// Decides a touch. Without an override it happens now (within the
/// policy's clock skew) and only if the gate allows it; it then carries
/// the decision it went out under, at `position` (the ledger position the
/// state was read at). An override may be dated in the past, never in the
/// future, and says so on the event.
pub fn decide_touch(
    relationship: &Relationship,
    policy: &CompiledPolicy,
    command: &RecordTouch,
    position: &str,
    now: Timestamp,
) -> TouchDecision {
    let decision = gate(relationship, policy, command.mode, command.channel, command.occurred_at);
    let clock = &policy.policy.clock;
    let authorization = match &command.override_reason {
        Some(reason) => clock
            .check_fact(command.occurred_at, now)
            .map(|()| TouchAuthorization::Override { reason: reason.clone() }),
        None => clock
            .check_gated_touch(command.occurred_at, now)
            .map(|()| TouchAuthorization::Gate {
                verdict: decision.verdict,
                policy_version: decision.policy_version,
                position: position.to_owned(),
            }),
    };
    // A gated touch must be allowed at its moment and now: the skew may not
    // carry it past the start of quiet hours or a cap.
    let allowed_now = || gate(relationship, policy, command.mode, command.channel, now).verdict == Verdict::Allow;
    let outcome = match authorization {
        Err(refusal) => Err(TouchRejection::BusinessTime(refusal)),
        Ok(TouchAuthorization::Gate { .. }) if decision.verdict != Verdict::Allow || !allowed_now() => {
            Err(TouchRejection::GateDenied)
        }
        // No override reaches someone erased: there is nobody to write to.
        Ok(_) if relationship.erased() => Err(TouchRejection::GateDenied),
        Ok(authorization) => Ok(TouchRecorded {
            mode: command.mode,
            channel: decision.channel,
            campaign_id: command.campaign_id,
            sender: command.sender.clone(),
            authorization,
        }),
    };
    TouchDecision {
        gate: decision,
        outcome,
    }
}

/// A fact about an existing contact: something they did, or a change to
/// how we file them. Touches sent through rapport go through
/// [`decide_touch`]; `SeenElsewhere` is a touch another tool saw go out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Fact {
    Replied {
        channel: Option<Channel>,
    },
    Blocked {
        channel: Option<Channel>,
    },
    Unblocked {
        channel: Option<Channel>,
    },
    DeletedUs {
        channel: Option<Channel>,
    },
    Readded {
        channel: Option<Channel>,
    },
    Complained {
        channel: Option<Channel>,
        reason: Option<String>,
    },
    Consented {
        granted: bool,
        source: Option<String>,
    },
    Tagged {
        tag: String,
    },
    Untagged {
        tag: String,
    },
    SeenElsewhere {
        mode: SendMode,
        channel: Option<Channel>,
        campaign_id: Option<CampaignId>,
        sender: String,
        source: String,
    },
    /// What the sending tool reports about a delivery.
    Delivery {
        outcome: DeliveryOutcome,
        channel: Option<Channel>,
        campaign_id: Option<CampaignId>,
    },
}

/// What became of a message the sending tool delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DeliveryOutcome {
    Failed { reason: Option<String> },
    Read,
    Clicked,
}

impl Fact {
    /// Whether the fact was judged against the contact's state (a limit
    /// looked at it) and must land on the version it was judged at, so that
    /// two such facts at once cannot both pass.
    pub fn pins_version(&self) -> bool {
        matches!(self, Fact::Tagged { .. })
    }

    /// Whether only the sending tool's ingestion reports the fact: touches
    /// it saw and what became of them.
    pub fn is_reported_by_a_sending_tool(&self) -> bool {
        matches!(self, Fact::SeenElsewhere { .. } | Fact::Delivery { .. })
    }
}

/// Why a fact is not recorded.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FactRejection {
    #[error(transparent)]
    BusinessTime(#[from] BusinessTimeError),
    #[error("a contact carries at most {TAGS_PER_CONTACT_MAX} tags; remove one first")]
    TooManyTags,
    #[error(transparent)]
    Invalid(#[from] ValidationError),
}

/// Decides a fact about a contact at `occurred_at`: within the clock rules,
/// on the contact's primary channel unless another is named, and within
/// the contact's limits.
pub fn decide_fact(
    relationship: &Relationship,
    symbols: &Symbols,
    clock: &ClockRules,
    fact: Fact,
    occurred_at: Timestamp,
    now: Timestamp,
) -> Result<Event, FactRejection> {
    clock.check_fact(occurred_at, now)?;
    let on = |channel: Option<Channel>| channel.unwrap_or(relationship.primary_channel());
    let event = match fact {
        Fact::Replied { channel } => ReplyReceived { channel: on(channel) }.into(),
        Fact::Blocked { channel } => ContactBlocked { channel: on(channel) }.into(),
        Fact::Unblocked { channel } => ContactUnblocked { channel: on(channel) }.into(),
        Fact::DeletedUs { channel } => ContactDeletedUs { channel: on(channel) }.into(),
        Fact::Readded { channel } => ContactReadded { channel: on(channel) }.into(),
        Fact::Complained { channel, reason } => ComplaintFiled {
            channel: on(channel),
            reason,
        }
        .into(),
        Fact::Consented { granted: true, source } => ConsentGranted { source }.into(),
        Fact::Consented { granted: false, source } => ConsentWithdrawn { source }.into(),
        Fact::Tagged { tag } => {
            let has_it = symbols
                .lookup(&tag)
                .is_some_and(|symbol| relationship.tags().contains(&symbol));
            if !has_it && relationship.tags().len() >= TAGS_PER_CONTACT_MAX {
                return Err(FactRejection::TooManyTags);
            }
            ContactTagged { tag }.into()
        }
        Fact::Untagged { tag } => ContactUntagged { tag }.into(),
        Fact::SeenElsewhere {
            mode,
            channel,
            campaign_id,
            sender,
            source,
        } => TouchRecorded {
            mode,
            channel: on(channel),
            campaign_id,
            sender,
            authorization: TouchAuthorization::External { source },
        }
        .into(),
        Fact::Delivery {
            outcome,
            channel,
            campaign_id,
        } => {
            let channel = on(channel);
            match outcome {
                DeliveryOutcome::Failed { reason } => DeliveryFailed {
                    channel,
                    campaign_id,
                    reason,
                }
                .into(),
                DeliveryOutcome::Read => MessageRead { channel, campaign_id }.into(),
                DeliveryOutcome::Clicked => LinkClicked { channel, campaign_id }.into(),
            }
        }
    };
    Ok(event)
}

/// Decides a new contact's first event: dated within the clock rules, and
/// valid as a registration (owner, zone, tags and personal data within
/// their limits).
pub fn decide_registration(
    registration: ContactRegistered,
    pii: Option<&Pii>,
    stream: &StreamName,
    clock: &ClockRules,
    occurred_at: Timestamp,
    now: Timestamp,
) -> Result<Event, FactRejection> {
    clock.check_fact(occurred_at, now)?;
    let event = Event::from(registration);
    event.validate(stream, pii)?;
    Ok(event)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{ContactDeletedUs, ContactRegistered, Event};
    use crate::policy::Policy;
    use crate::symbols::Symbols;

    /// 2026-03-02T03:00:00Z: 11:00 in Shanghai, inside the active hours.
    const MONDAY_11_AM: i64 = 1_772_420_400_000;
    const MINUTE: i64 = 60_000;
    const DAY: i64 = 86_400_000;

    fn at(offset_millis: i64) -> Timestamp {
        Timestamp::from_millis_unchecked(MONDAY_11_AM + offset_millis)
    }

    /// A contact registered a month ago, then `events`.
    fn contact(events: Vec<Event>) -> (Relationship, CompiledPolicy) {
        let mut symbols = Symbols::default();
        let policy = CompiledPolicy::new(1, Policy::default(), &mut symbols);
        let mut relationship = Relationship::default();
        let registered = Event::from(ContactRegistered {
            owner: "alice".into(),
            primary_channel: Channel::Wechat,
            time_zone: Some("Asia/Shanghai".into()),
            tags: vec![],
        });
        relationship.apply(&registered, 0, at(-30 * DAY), &mut symbols);
        for (version, event) in events.iter().enumerate() {
            relationship.apply(event, version as u64 + 1, at(-DAY), &mut symbols);
        }
        (relationship, policy)
    }

    fn chat(occurred_at: Timestamp, override_reason: Option<&str>) -> RecordTouch {
        RecordTouch {
            mode: SendMode::OneToOne,
            channel: None,
            campaign_id: None,
            sender: "alice".into(),
            occurred_at,
            override_reason: override_reason.map(str::to_owned),
        }
    }

    fn deleted_us() -> Event {
        ContactDeletedUs {
            channel: Channel::Wechat,
        }
        .into()
    }

    #[test]
    fn a_touch_the_gate_allows_carries_the_decision_it_went_out_under() {
        let (relationship, policy) = contact(vec![]);
        let decided = decide_touch(&relationship, &policy, &chat(at(0), None), "42", at(0));
        let touch = decided.outcome.expect("allowed");
        assert_eq!(
            touch.authorization,
            TouchAuthorization::Gate {
                verdict: Verdict::Allow,
                policy_version: 1,
                position: "42".into(),
            }
        );
        assert_eq!(touch.channel, Channel::Wechat, "the primary channel when none is given");
    }

    #[test]
    fn a_touch_the_gate_refuses_is_rejected_with_the_decision() {
        let (relationship, policy) = contact(vec![deleted_us()]);
        let decided = decide_touch(&relationship, &policy, &chat(at(0), None), "42", at(0));
        assert_eq!(decided.outcome, Err(TouchRejection::GateDenied));
        assert_eq!(decided.gate.verdict, Verdict::Deny);
    }

    #[test]
    fn an_override_records_a_refused_touch_and_says_so() {
        let (relationship, policy) = contact(vec![deleted_us()]);
        let decided = decide_touch(&relationship, &policy, &chat(at(0), Some("renewal")), "42", at(0));
        let touch = decided.outcome.expect("overridden");
        assert_eq!(
            touch.authorization,
            TouchAuthorization::Override {
                reason: "renewal".into()
            }
        );
    }

    #[test]
    fn a_gated_touch_happens_now_not_tomorrow_and_not_last_week() {
        let (relationship, policy) = contact(vec![]);
        for dated in [at(DAY), at(-7 * DAY), at(6 * MINUTE), at(-6 * MINUTE)] {
            let decided = decide_touch(&relationship, &policy, &chat(dated, None), "42", at(0));
            assert!(
                matches!(
                    decided.outcome,
                    Err(TouchRejection::BusinessTime(BusinessTimeError::NotNow { .. }))
                ),
                "a gated touch dated {dated}: {:?}",
                decided.outcome
            );
        }
        let within_skew = decide_touch(&relationship, &policy, &chat(at(4 * MINUTE), None), "42", at(0));
        assert!(within_skew.outcome.is_ok(), "{:?}", within_skew.outcome);
    }

    #[test]
    fn the_skew_cannot_carry_a_touch_into_quiet_hours() {
        // 21:02 in Shanghai, dated two minutes back, before quiet hours began.
        let (relationship, policy) = contact(vec![]);
        let now = at(10 * 60 * MINUTE + 2 * MINUTE);
        let dated_before = at(10 * 60 * MINUTE - 2 * MINUTE);
        let decided = decide_touch(&relationship, &policy, &chat(dated_before, None), "42", now);
        assert_eq!(decided.outcome, Err(TouchRejection::GateDenied));
    }

    #[test]
    fn an_override_may_be_dated_in_the_past_but_never_in_the_future() {
        let (relationship, policy) = contact(vec![]);
        let last_week = decide_touch(
            &relationship,
            &policy,
            &chat(at(-7 * DAY), Some("sent from a phone")),
            "42",
            at(0),
        );
        assert!(last_week.outcome.is_ok(), "{:?}", last_week.outcome);
        let tomorrow = decide_touch(&relationship, &policy, &chat(at(DAY), Some("tomorrow")), "42", at(0));
        assert!(
            matches!(
                tomorrow.outcome,
                Err(TouchRejection::BusinessTime(BusinessTimeError::InTheFuture { .. }))
            ),
            "{:?}",
            tomorrow.outcome
        );
    }

    fn tagged(relationship: &Relationship, tag: &str, symbols: &Symbols) -> Result<Event, FactRejection> {
        let fact = Fact::Tagged { tag: tag.into() };
        decide_fact(relationship, symbols, &ClockRules::default(), fact, at(0), at(0))
    }

    /// A contact carrying `count` tags `t0`, `t1`, ...
    fn carrying_tags(count: usize) -> (Relationship, Symbols) {
        let mut symbols = Symbols::default();
        let mut relationship = Relationship::default();
        let registered = Event::from(ContactRegistered {
            owner: "alice".into(),
            primary_channel: Channel::Wechat,
            time_zone: None,
            tags: (0..count).map(|n| format!("t{n}")).collect(),
        });
        relationship.apply(&registered, 0, at(-DAY), &mut symbols);
        (relationship, symbols)
    }

    #[test]
    fn a_fact_lands_on_the_primary_channel_unless_another_is_named() {
        let (relationship, policy) = contact(vec![]);
        let symbols = Symbols::default();
        let clock = &policy.policy.clock;
        let on_primary = decide_fact(
            &relationship,
            &symbols,
            clock,
            Fact::Replied { channel: None },
            at(0),
            at(0),
        );
        assert_eq!(
            on_primary,
            Ok(ReplyReceived {
                channel: Channel::Wechat
            }
            .into())
        );
        let named = Fact::Blocked {
            channel: Some(Channel::Email),
        };
        let on_email = decide_fact(&relationship, &symbols, clock, named, at(0), at(0));
        assert_eq!(
            on_email,
            Ok(ContactBlocked {
                channel: Channel::Email
            }
            .into())
        );
    }

    #[test]
    fn a_fact_may_be_dated_in_the_past_but_not_beyond_the_skew_into_the_future() {
        let (relationship, policy) = contact(vec![]);
        let symbols = Symbols::default();
        let clock = &policy.policy.clock;
        let reply = || Fact::Replied { channel: None };
        assert!(decide_fact(&relationship, &symbols, clock, reply(), at(-300 * DAY), at(0)).is_ok());
        assert!(decide_fact(&relationship, &symbols, clock, reply(), at(4 * MINUTE), at(0)).is_ok());
        assert!(matches!(
            decide_fact(&relationship, &symbols, clock, reply(), at(6 * MINUTE), at(0)),
            Err(FactRejection::BusinessTime(BusinessTimeError::InTheFuture { .. }))
        ));
    }

    #[test]
    fn a_contact_at_the_tag_limit_takes_no_new_tag_but_may_be_tagged_again_with_one_it_has() {
        let (relationship, symbols) = carrying_tags(TAGS_PER_CONTACT_MAX);
        assert_eq!(
            tagged(&relationship, "one-more", &symbols),
            Err(FactRejection::TooManyTags)
        );
        assert!(
            tagged(&relationship, "t0", &symbols).is_ok(),
            "a tag it already carries"
        );
        let (below, symbols) = carrying_tags(TAGS_PER_CONTACT_MAX - 1);
        assert!(tagged(&below, "one-more", &symbols).is_ok());
    }

    #[test]
    fn only_facts_judged_against_a_limit_pin_the_version() {
        assert!(Fact::Tagged { tag: "vip".into() }.pins_version());
        assert!(!Fact::Untagged { tag: "vip".into() }.pins_version());
        assert!(!Fact::Replied { channel: None }.pins_version());
    }

    #[test]
    fn a_touch_seen_elsewhere_is_recorded_as_external_with_its_source() {
        let (relationship, policy) = contact(vec![deleted_us()]);
        let seen = Fact::SeenElsewhere {
            mode: SendMode::Mass,
            channel: None,
            campaign_id: None,
            sender: "bob".into(),
            source: "old-crm".into(),
        };
        let event = decide_fact(
            &relationship,
            &Symbols::default(),
            &policy.policy.clock,
            seen,
            at(0),
            at(0),
        );
        let Ok(Event::TouchRecorded(touch)) = event else {
            panic!("a touch: {event:?}");
        };
        assert_eq!(
            touch.authorization,
            TouchAuthorization::External {
                source: "old-crm".into()
            }
        );
    }

    #[test]
    fn a_registration_is_refused_when_dated_in_the_future_or_invalid() {
        let stream = StreamName::Contact(crate::ids::ContactId(uuid::Uuid::from_u128(7)));
        let clock = ClockRules::default();
        let registration = |owner: &str| ContactRegistered {
            owner: owner.into(),
            primary_channel: Channel::Wechat,
            time_zone: Some("Asia/Shanghai".into()),
            tags: vec![],
        };
        assert!(decide_registration(registration("alice"), None, &stream, &clock, at(0), at(0)).is_ok());
        assert!(matches!(
            decide_registration(registration("alice"), None, &stream, &clock, at(DAY), at(0)),
            Err(FactRejection::BusinessTime(_))
        ));
        assert!(matches!(
            decide_registration(registration(" alice"), None, &stream, &clock, at(0), at(0)),
            Err(FactRejection::Invalid(_))
        ));
    }
}
