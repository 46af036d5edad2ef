//! Re-engagement: a contact who has gone quiet gets a personal word before
//! the relationship cools for good. The practice our users follow: silent
//! for a week, a personal greeting; silent for two weeks and more, an
//! invitation to an activity.

use crate::relationship::Relationship;
use crate::time::{MILLIS_PER_DAY, Timestamp};

/// Days without a reply after which a personal greeting is due.
pub const GREETING_AFTER_DAYS: i64 = 7;
/// Days without a reply after which an invitation to an activity is due.
pub const INVITATION_AFTER_DAYS: i64 = 15;

/// What to write to a contact gone quiet.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Nudge {
    Greeting,
    Invitation,
}

/// The nudge a contact is due at `now`, with the whole days since their
/// last reply; none for a contact who replied lately or never has (there
/// is no conversation to pick up).
pub fn nudge(relationship: &Relationship, now: Timestamp) -> Option<(Nudge, i64)> {
    let last_reply = relationship.last_reply_at()?;
    let silent_days = (now.as_millis() - last_reply.as_millis()).div_euclid(MILLIS_PER_DAY);
    let kind = if silent_days >= INVITATION_AFTER_DAYS {
        Nudge::Invitation
    } else if silent_days >= GREETING_AFTER_DAYS {
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
        assert_eq!(nudge(&replied_days_ago(Some(3)), now), None);
        assert_eq!(nudge(&replied_days_ago(Some(7)), now), Some((Nudge::Greeting, 7)));
        assert_eq!(nudge(&replied_days_ago(Some(14)), now), Some((Nudge::Greeting, 14)));
        assert_eq!(nudge(&replied_days_ago(Some(15)), now), Some((Nudge::Invitation, 15)));
        assert_eq!(nudge(&replied_days_ago(None), now), None, "no conversation to pick up");
    }
}
