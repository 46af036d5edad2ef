//! 简体中文：门槛的每条原因和关系分的每个组成部分，用运营同事的说法写。

use std::fmt::Write;

use super::QuietHours;
use crate::event::Channel;
use crate::gate::{Reason, ReasonCode};

fn channel_name(channel: Option<Channel>) -> &'static str {
    match channel {
        Some(Channel::Wechat) => "微信",
        Some(Channel::Wecom) => "企业微信",
        Some(Channel::Sms) => "短信",
        Some(Channel::Email) => "邮件",
        Some(Channel::Phone) => "电话",
        Some(Channel::Other) | None => "这个渠道",
    }
}

/// 0 天前说“今天”，1 天前说“昨天”。
fn days_ago(days: i64) -> String {
    match days {
        0 => "今天".to_owned(),
        1 => "昨天".to_owned(),
        n => format!("{n}天前"),
    }
}

pub fn reason(reason: &Reason, tag_name: &str) -> String {
    let f = &reason.facts;
    let channel = channel_name(f.channel);
    let mut text = String::new();
    let _ = match (reason.code, reason.blocking) {
        (ReasonCode::ContactErased, _) => write!(text, "对方的个人信息已应本人要求删除：已无法再联系对方。"),
        (ReasonCode::ContactDeletedUs, _) => {
            write!(text, "对方已经把你删了；除非对方重新加你，否则消息发不过去。")
        }
        (ReasonCode::Blocked, _) => write!(text, "对方在{channel}上把你拉黑了。"),
        (ReasonCode::OptedOut, true) => write!(text, "对方已退订营销消息：不能群发。"),
        (ReasonCode::OptedOut, false) => write!(text, "对方已退订营销消息：私聊就好，别发广告。"),
        (ReasonCode::RecentComplaint, true) => {
            write!(
                text,
                "对方{}投诉过；投诉后{}天内不能群发。",
                days_ago(f.days_ago),
                f.limit
            )
        }
        (ReasonCode::RecentComplaint, false) => {
            write!(text, "对方{}投诉过：发什么都要谨慎。", days_ago(f.days_ago))
        }
        (ReasonCode::HighValueContact, _) => write!(text, "重要客户（标签“{tag_name}”）：大客户要一对一私聊，别群发。"),
        (ReasonCode::RelationshipTooWeak, _) => {
            write!(text, "关系分{}，低于群发要求的{}分：请私聊。", f.count, f.limit)
        }
        (ReasonCode::NoRecentReplies, true) => write!(
            text,
            "你最近发的{}条消息对方都没回：现在群发很容易被屏蔽或删除。",
            f.count
        ),
        (ReasonCode::NoRecentReplies, false) => write!(text, "你最近发的{}条消息对方都没回。", f.count),
        (ReasonCode::NewContact, _) => write!(text, "刚加的好友，还没回过消息：先私聊打个招呼。"),
        (ReasonCode::FrequencyCap, _) => write!(
            text,
            "对方{}刚收到过群发；每{}天最多群发一次。",
            days_ago(f.days_ago),
            f.limit
        ),
        (ReasonCode::QuietHours, _) => {
            let hours = QuietHours::of(f);
            write!(
                text,
                "对方那边现在是{}（{}）；请在对方时间{}到{}之间发。",
                hours.now, hours.zone, hours.from, hours.until
            )
        }
        (ReasonCode::PlatformCap, _) => write!(
            text,
            "{channel}规定每位客户{}天内最多收{}次群发，对方已经收到{}{}次：等平台额度恢复再发。",
            f.days_ago,
            f.limit,
            if f.at_least { "至少" } else { "" },
            f.count
        ),
        (ReasonCode::Unreachable, true) => {
            write!(text, "最近{}条{channel}消息都发送失败：先核对联系方式再发。", f.count)
        }
        (ReasonCode::Unreachable, false) => {
            write!(text, "最近{}条{channel}消息都发送失败：私聊也可能收不到。", f.count)
        }
        (ReasonCode::GroupArchived, _) => write!(text, "这个群已归档，不再往里发消息。"),
        (ReasonCode::GroupPostCeiling, _) => write!(
            text,
            "这个群今天已经发了{}条；任何群每天都不要超过{}条，再多退群率会上升约40%。",
            f.count, f.limit
        ),
        (ReasonCode::NewGroupPostCap, _) => write!(
            text,
            "这是建群{}天的新群，今天已经发了{}条；新群每天最多{}条。",
            f.days_ago, f.count, f.limit
        ),
        (ReasonCode::GroupPostCap, _) => write!(text, "这个群今天已经发了{}条；每天最多{}条。", f.count, f.limit),
        (ReasonCode::PostSpacing, _) => {
            write!(text, "离最近的一条只隔{}分钟；两条之间至少隔{}分钟。", f.count, f.limit)
        }
        (ReasonCode::PromotionShare, _) => write!(
            text,
            "发了这条，{}天内促销就占这个群消息的{}%，超过{}%：先发点有用的内容。",
            f.days_ago, f.count, f.limit
        ),
        (ReasonCode::MembersLeaving, _) => write!(
            text,
            "最近{}天有{}%的成员退群，超过{}%：先暂停发消息，等群恢复。",
            f.days_ago, f.count, f.limit
        ),
        (ReasonCode::GroupQuietHours, _) => {
            let hours = QuietHours::of(f);
            write!(
                text,
                "群里现在是{}（{}）；请在群所在时区的{}到{}之间发。",
                hours.now, hours.zone, hours.from, hours.until
            )
        }
        (ReasonCode::UnansweredChats, _) => write!(
            text,
            "最近{}天你私聊了{}条，对方都没回：别再追着发了，给对方一点时间。",
            f.limit, f.count
        ),
    };
    text
}

pub fn component(name: &str) -> &'static str {
    match name {
        "replyRecency" => "对方上次回复距今多久",
        "reciprocity" => "整段关系里回复和触达的比例",
        "twoWayFrequency" => "对方最近回复的频率",
        "unansweredStreak" => "对方上次回复后你又发了几条",
        "massFatigue" => "最近收到的群发次数",
        "complaints" => "最近的投诉次数",
        "groupSpeech" => "最近在我们群里发言的频率",
        "groupLeaves" => "在群发后不久退出我们的群",
        _ => "",
    }
}
