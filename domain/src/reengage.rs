//! Re-engagement: a contact who has gone quiet gets a personal word before
//! the relationship cools for good. The practice our users follow: silent
//! for a week, a personal greeting; silent for two weeks and more, an
//! invitation to an activity.

use crate::policy::CampaignRules;
use crate::relationship::Relationship;
use crate::time::{MILLIS_PER_DAY, Timestamp};

/// What to write to a contact gone quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nudge {
    Greeting,
    Invitation,
}

/// The nudge a contact is due at `now` under the policy's days (a
/// greeting after 7 silent days, an invitation after 15), with the whole
/// days since their last reply; none for a contact who replied lately or
/// never has (there is no conversation to pick up).
pub fn nudge(relationship: &Relationship, rules: &CampaignRules, now: Timestamp) -> Option<(Nudge, i64)> {
    let last_reply = relationship.last_reply_at()?;
    let silent_days = (now.as_millis() - last_reply.as_millis()).div_euclid(MILLIS_PER_DAY);
    let kind = if silent_days >= i64::from(rules.invitation_after_days) {
        Nudge::Invitation
    } else if silent_days >= i64::from(rules.greeting_after_days) {
        Nudge::Greeting
    } else {
        return None;
    };
    Some((kind, silent_days))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Channel, ContactRegistered, Event, ReplyReceived};
    use crate::symbols::Symbols;

    const NOW: i64 = 1_772_420_400_000;

    fn replied_days_ago(days: Option<i64>) -> Relationship {
        let mut symbols = Symbols::default();
        let mut relationship = Relationship::default();
        let registered = Event::from(ContactRegistered {
            owner: "alice".into(),
            primary_channel: Channel::Wechat,
            time_zone: None,
            tags: vec![],
        });
        relationship.apply(
            &registered,
            0,
            Timestamp::from_millis_unchecked(NOW - 90 * MILLIS_PER_DAY),
            &mut symbols,
        );
        if let Some(days) = days {
            let reply = Event::from(ReplyReceived {
                channel: Channel::Wechat,
            });
            let at = Timestamp::from_millis_unchecked(NOW - days * MILLIS_PER_DAY);
            relationship.apply(&reply, 1, at, &mut symbols);
        }
        relationship
    }

    #[test]
    fn a_week_of_silence_calls_for_a_greeting_and_two_weeks_for_an_invitation() {
        let now = Timestamp::from_millis_unchecked(NOW);
        let rules = CampaignRules::default();
        let due = |days| nudge(&replied_days_ago(days), &rules, now);
        assert_eq!(due(Some(3)), None);
        assert_eq!(due(Some(7)), Some((Nudge::Greeting, 7)));
        assert_eq!(due(Some(14)), Some((Nudge::Greeting, 14)));
        assert_eq!(due(Some(15)), Some((Nudge::Invitation, 15)));
        assert_eq!(due(None), None, "no conversation to pick up");
    }

    #[test]
    fn the_policy_sets_the_days_of_silence() {
        let now = Timestamp::from_millis_unchecked(NOW);
        let rules = CampaignRules {
            greeting_after_days: 3,
            invitation_after_days: 10,
            ..CampaignRules::default()
        };
        assert_eq!(
            nudge(&replied_days_ago(Some(3)), &rules, now),
            Some((Nudge::Greeting, 3))
        );
        assert_eq!(
            nudge(&replied_days_ago(Some(10)), &rules, now),
            Some((Nudge::Invitation, 10))
        );
    }
}
