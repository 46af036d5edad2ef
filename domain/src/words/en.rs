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
        _ => "",
    }
}
