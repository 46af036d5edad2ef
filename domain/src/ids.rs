//! Identifiers of contacts, campaigns and streams.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(text).map($name)
            }
        }
    };
}

uuid_id!(
    /// One customer as the business sees them.
    ContactId
);
uuid_id!(
    /// One mass send to an audience.
    CampaignId
);
uuid_id!(
    /// One customer group (a WeChat or WeCom group chat) the business runs.
    GroupId
);

/// The ledger's streams: one per contact, campaign and group, and the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum StreamName {
    Contact(ContactId),
    Campaign(CampaignId),
    Group(GroupId),
    Policy,
}

const CONTACT_PREFIX: &str = "contact-";
const CAMPAIGN_PREFIX: &str = "campaign-";
const GROUP_PREFIX: &str = "group-";
const POLICY_STREAM: &str = "policy";

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a stream name: expected 'policy', 'contact-<uuid>', 'campaign-<uuid>' or 'group-<uuid>'")]
pub struct StreamNameError(pub String);

impl FromStr for StreamName {
    type Err = StreamNameError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || StreamNameError(text.chars().take(80).collect());
        if text == POLICY_STREAM {
            return Ok(StreamName::Policy);
        }
        if let Some(id) = text.strip_prefix(CONTACT_PREFIX) {
            return id.parse().map(StreamName::Contact).map_err(|_| refuse());
        }
        if let Some(id) = text.strip_prefix(CAMPAIGN_PREFIX) {
            return id.parse().map(StreamName::Campaign).map_err(|_| refuse());
        }
        if let Some(id) = text.strip_prefix(GROUP_PREFIX) {
            return id.parse().map(StreamName::Group).map_err(|_| refuse());
        }
        Err(refuse())
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamName::Contact(id) => write!(f, "{CONTACT_PREFIX}{}", id.0.hyphenated()),
            StreamName::Campaign(id) => write!(f, "{CAMPAIGN_PREFIX}{}", id.0.hyphenated()),
            StreamName::Group(id) => write!(f, "{GROUP_PREFIX}{}", id.0.hyphenated()),
            StreamName::Policy => f.write_str(POLICY_STREAM),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip_through_text() {
        let contact = StreamName::Contact(ContactId(Uuid::from_u128(7)));
        for stream in [
            contact,
            StreamName::Policy,
            StreamName::Campaign(CampaignId(Uuid::from_u128(9))),
            StreamName::Group(GroupId(Uuid::from_u128(11))),
        ] {
            assert_eq!(stream.to_string().parse(), Ok(stream));
        }
        assert_eq!(contact.to_string(), "contact-00000000-0000-0000-0000-000000000007");
    }

    #[test]
    fn unknown_stream_names_are_refused() {
        for bad in [
            "",
            "contact-",
            "contact-xyz",
            "policy2",
            "campaigns-1",
            "group-",
            "groups-1",
        ] {
            assert!(bad.parse::<StreamName>().is_err(), "{bad} was accepted");
        }
    }
}
