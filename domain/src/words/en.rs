//! The English catalogue: every reason and score component in words.

use std::fmt::Write;

use super::QuietHours;
use crate::event::Channel;
use crate::gate::{Reason, ReasonCode};

pub fn reason(reason: &Reason, tag_name: &str) -> String {
    let f = &reason.facts;
    let channel = f.channel.map_or("this channel", Channel::as_str);
    let mut text = String::new();
    let _ = match (reason.code, reason.blocking) {
        (ReasonCode::ContactErased, _) => write!(
            text,
            "Their personal data was erased at their request: there is nobody left to write to."
        ),
        (ReasonCode::ContactDeletedUs, _) => write!(
            text,
            "They deleted you as a contact; nothing will reach them unless they add you again."
        ),
        (ReasonCode::Blocked, _) => write!(text, "They blocked you on {channel}."),
        (ReasonCode::OptedOut, true) => write!(text, "They opted out of commercial messages: no mass sends."),
        (ReasonCode::OptedOut, false) => write!(
            text,
            "They opted out of commercial messages: keep this chat personal, no promotions."
        ),
        (ReasonCode::RecentComplaint, true) => write!(
            text,
            "They complained {} day(s) ago; no mass sends for {} days after a complaint.",
            f.days_ago, f.limit
        ),
        (ReasonCode::RecentComplaint, false) => write!(
            text,
            "They complained {} day(s) ago: be careful what you send.",
            f.days_ago
        ),
        (ReasonCode::HighValueContact, _) => write!(
            text,
            "A high-value contact (tag '{}'): big customers deserve a personal chat, not a mass send.",
            tag_name
        ),
        (ReasonCode::RelationshipTooWeak, _) => write!(
            text,
            "Relationship score {} is below {}, the minimum for mass sends: write to them personally.",
            f.count, f.limit
        ),
        (ReasonCode::NoRecentReplies, true) => write!(
            text,
            "Your last {} messages went unanswered: a mass send now risks being muted or deleted.",
            f.count
        ),
        (ReasonCode::NoRecentReplies, false) => {
            write!(text, "Your last {} messages went unanswered.", f.count)
        }
        (ReasonCode::NewContact, _) => write!(
            text,
            "A new contact who has not replied yet: start with a personal chat."
        ),
        (ReasonCode::FrequencyCap, _) => write!(
            text,
            "They received a mass send {} day(s) ago; at most one per {} days.",
            f.days_ago, f.limit
        ),
        (ReasonCode::QuietHours, _) => {
            let hours = QuietHours::of(f);
            write!(
                text,
                "It is {} for them ({}); message them between {} and {} their time.",
                hours.now, hours.zone, hours.from, hours.until
            )
        }
        (ReasonCode::PlatformCap, _) => write!(
            text,
            "{channel} allows {} mass sends per contact in {} days, and they had {}{}: wait for the platform's limit.",
            f.limit,
            f.days_ago,
            if f.at_least { "at least " } else { "" },
            f.count
        ),
        (ReasonCode::Unreachable, true) => write!(
            text,
            "The last {} messages on {channel} could not be delivered: check their contact details before sending again.",
            f.count
        ),
        (ReasonCode::Unreachable, false) => write!(
            text,
            "The last {} messages on {channel} could not be delivered: the chat may not reach them.",
            f.count
        ),
        (ReasonCode::GroupArchived, _) => write!(text, "This group was archived: nothing more is posted into it."),
        (ReasonCode::GroupPostCeiling, _) => write!(
            text,
            "This group had {} posts today; no group takes more than {} a day: beyond that members leave (about 40% more).",
            f.count, f.limit
        ),
        (ReasonCode::NewGroupPostCap, _) => write!(
            text,
            "This group is {} day(s) old and had {} posts today; a new group takes at most {} a day.",
            f.days_ago, f.count, f.limit
        ),
        (ReasonCode::GroupPostCap, _) => write!(
            text,
            "This group had {} posts today; it takes at most {} a day.",
            f.count, f.limit
        ),
        (ReasonCode::PostSpacing, _) => write!(
            text,
            "The nearest post is {} minute(s) away; leave at least {} minutes between posts.",
            f.count, f.limit
        ),
        (ReasonCode::PromotionShare, _) => write!(
            text,
            "Promotions would be {}% of this group's posts over {} days, above {}%: post something useful first.",
            f.count, f.days_ago, f.limit
        ),
        (ReasonCode::MembersLeaving, _) => write!(
            text,
            "{}% of the members left over the last {} days, above {}%: posting is held until the group recovers.",
            f.count, f.days_ago, f.limit
        ),
        (ReasonCode::GroupQuietHours, _) => {
            let hours = QuietHours::of(f);
            write!(
                text,
                "It is {} in the group ({}); post between {} and {}, group time.",
                hours.now, hours.zone, hours.from, hours.until
            )
        }
        (ReasonCode::UnansweredChats, _) => write!(
            text,
            "{} personal messages unanswered in the last {} days: stop chasing and give them time.",
            f.count, f.limit
        ),
    };
    text
}

pub fn component(name: &str) -> &'static str {
    match name {
        "replyRecency" => "how recently they last replied",
        "reciprocity" => "replies against touches, over the whole relationship",
        "twoWayFrequency" => "how often they have replied lately",
        "unansweredStreak" => "messages since their last reply",
        "massFatigue" => "mass sends they received lately",
        "complaints" => "complaints they filed lately",
        "groupSpeech" => "how often they have spoken in our groups lately",
        "groupLeaves" => "our groups they left soon after a post",
        _ => "",
    }
}
