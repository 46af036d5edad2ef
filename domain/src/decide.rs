//! Decisions that produce events: the contact's state, the policy, the
//! command and the moment in; the event to append, or a typed rejection,
//! out. The rules live here and nowhere else; adapters translate commands
//! in and rejections out.

use crate::event::{Channel, SendMode, TouchAuthorization, TouchRecorded, Verdict};
use crate::gate::{CompiledPolicy, GateDecision, gate};
use crate::ids::CampaignId;
use crate::policy::BusinessTimeError;
use crate::relationship::Relationship;
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
}
