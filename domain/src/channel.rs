//! The channels a message travels on.

use serde::{Deserialize, Serialize};

/// Where a message travels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Channel {
    Wechat,
    Wecom,
    Sms,
    Email,
    Phone,
    Other,
}

impl Channel {
    pub const ALL: [Channel; 6] = [
        Channel::Wechat,
        Channel::Wecom,
        Channel::Sms,
        Channel::Email,
        Channel::Phone,
        Channel::Other,
    ];

    /// A bit per channel, for compact channel sets.
    pub const fn bit(self) -> u8 {
        1 << (self as u8)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            Channel::Wechat => "WECHAT",
            Channel::Wecom => "WECOM",
            Channel::Sms => "SMS",
            Channel::Email => "EMAIL",
            Channel::Phone => "PHONE",
            Channel::Other => "OTHER",
        }
    }
}
