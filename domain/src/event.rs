//! The event model: every fact rapport records, as past-tense payloads with a
//! schema version each. Decoding refuses unknown types and future versions
//! instead of guessing; older versions are upcast in `upcast` alone.

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

pub use crate::channel::Channel;
use crate::ids::{CampaignId, GroupId, StreamName};
use crate::policy::{Policy, PolicyError};
pub use crate::tags::{TAG_CHARS_MAX, check_tag};

/// How a touch was sent: the same content to many, or a personal chat.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum SendMode {
    Mass,
    OneToOne,
}

impl SendMode {
    pub const fn as_str(self) -> &'static str {
        match self {
            SendMode::Mass => "MASS",
            SendMode::OneToOne => "ONE_TO_ONE",
        }
    }
}

/// The gate's answer, weakest first so that `max` picks the strongest.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Verdict {
    Allow,
    Defer,
    RouteOneToOne,
    Deny,
}

impl Verdict {
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "ALLOW",
            Verdict::Defer => "DEFER",
            Verdict::RouteOneToOne => "ROUTE_ONE_TO_ONE",
            Verdict::Deny => "DENY",
        }
    }
}

/// Why a touch was sent: under a gate decision, or despite one. Externally
/// tagged (`{"override": {"reason": …}}`): unlike an internally tagged enum
/// it decodes without buffering, which matters when rebuilding.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub enum TouchAuthorization {
    /// The gate was asked and answered `verdict` under `policy_version`
    /// with the ledger at `position` (an opaque position string).
    #[serde(rename_all = "camelCase")]
    Gate {
        verdict: Verdict,
        policy_version: u32,
        position: String,
    },
    /// A manager sent it anyway, and said why.
    Override { reason: String },
    /// Sent by another tool and ingested afterwards; rapport was not asked.
    External { source: String },
}

/// Personal data. Kept apart from the relationship signals so that erasing
/// it leaves the ledger's history, hashes and scores intact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Pii {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub wechat_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactRegistered {
    pub owner: String,
    pub primary_channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tags: Vec<String>,
}

/// Only the fields present change; personal data changes through `pii`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactProfileChanged {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub primary_channel: Option<Channel>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactTagged {
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ContactUntagged {
    pub tag: String,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentGranted {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// The contact opted out of commercial messages.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsentWithdrawn {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct TouchRecorded {
    pub mode: SendMode,
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    /// Staff id of whoever sent it.
    pub sender: String,
    pub authorization: TouchAuthorization,
}

/// A contact-side event that happened on one channel.
macro_rules! channel_events {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub channel: Channel,
        }
    )*};
}

channel_events!(
    /// An inbound message from the contact.
    ReplyReceived,
    /// The contact blocked or muted us on this channel.
    ContactBlocked,
    ContactUnblocked,
    /// The contact removed us (deleted the friend).
    ContactDeletedUs,
    /// The contact added us again after deleting us.
    ContactReadded,
);

/// The person asked to be erased (PIPL Art. 47, GDPR Art. 17): their
/// contact key is destroyed with this event, so their personal data can
/// never be read again; their relationship signals stay. Carries no
/// personal data itself; who erased is the envelope's actor.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactErased {
    /// Why, in the operator's words (a legal basis, a ticket).
    pub reason: String,
    /// The erasure request this answers, as the requester can quote it.
    pub request_id: String,
}

/// The contact reported us: a spam report or a complaint to the platform.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ComplaintFiled {
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// What a sending tool reports about a message it delivered (or could
/// not): tied to the campaign it was part of, if any.
macro_rules! delivery_events {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields, rename_all = "camelCase")]
        pub struct $name {
            pub channel: Channel,
            #[serde(default, skip_serializing_if = "Option::is_none")]
            pub campaign_id: Option<CampaignId>,
        }
    )*};
}

delivery_events!(
    /// The channel reports the contact read the message.
    MessageRead,
    /// The contact followed a link in the message.
    LinkClicked,
);

/// The message did not reach the contact (unknown number, bounced mail,
/// not a friend any more).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct DeliveryFailed {
    pub channel: Channel,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub campaign_id: Option<CampaignId>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// A new policy document takes force; its version is its stream version + 1.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PolicyChanged {
    pub policy: Policy,
}

/// A mass send to an audience begins (the first event of a campaign
/// stream): what it is, who it was for as given, and what the gate made of
/// that audience when it was launched. Version 1 carried only the name and
/// the channel.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignStarted {
    pub name: String,
    pub channel: Channel,
    pub mode: SendMode,
    /// The audience as given; absent for campaigns recorded by other tools.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audience: Option<AudienceRecord>,
    /// The policy the gate judged the audience under.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy_version: Option<u32>,
    /// The share of the allowed audience withheld as a control group.
    #[serde(default)]
    pub holdout_percent: u8,
    /// What the gate made of the audience at launch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resolved: Option<ResolvedAudience>,
}

/// An audience as its campaign was given it. An explicit list is kept as
/// its size and a digest of its sorted ids (it may be far larger than an
/// event): the touches and holdouts name every contact.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct AudienceRecord {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tags: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub owners: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub bands: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts_listed: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts_digest: Option<String>,
}

/// How many contacts of the audience got each answer at launch.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ResolvedAudience {
    pub sent: u32,
    pub held_out: u32,
    pub routed_one_to_one: u32,
    pub deferred: u32,
    pub denied: u32,
}

/// The contact was allowed a campaign's send but withheld from it, as the
/// control group its aftermath is compared with.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct CampaignHeldOut {
    pub campaign_id: CampaignId,
}

/// What a group post is for, as operators count a group's content mix
/// (about 70 % useful content, 20 % interaction, 10 % promotion).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum PostKind {
    Content,
    Interaction,
    Promotion,
}

impl PostKind {
    pub const ALL: [PostKind; 3] = [PostKind::Content, PostKind::Interaction, PostKind::Promotion];

    pub const fn as_str(self) -> &'static str {
        match self {
            PostKind::Content => "CONTENT",
            PostKind::Interaction => "INTERACTION",
            PostKind::Promotion => "PROMOTION",
        }
    }
}

/// A customer group begins (the first event of a group stream). Its owner
/// is a staff member's token name, as a contact's is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupCreated {
    pub name: String,
    pub owner: String,
    /// What the group is for, in the operator's words ("customers", "VIP").
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
}

/// A member joined. `member` is the key the group's tool knows them by,
/// opaque to rapport (never a name or a WeChat id: personal data lives on
/// contacts); `contactId` links them to a contact when we know who they are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupMemberJoined {
    pub member: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<crate::ids::ContactId>,
}

/// A group-side event about one member.
macro_rules! member_events {
    ($($(#[$doc:meta])* $name:ident),* $(,)?) => {$(
        $(#[$doc])*
        #[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(deny_unknown_fields)]
        pub struct $name {
            pub member: String,
        }
    )*};
}

member_events!(
    /// The member left the group of their own accord.
    GroupMemberLeft,
    /// The group's staff removed the member (not counted as a leave).
    GroupMemberRemoved,
    /// The member wrote in the group: activity only, never what they wrote.
    GroupMemberSpoke,
);

/// Staff posted into the group: a mass send to every member.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct GroupPostRecorded {
    pub kind: PostKind,
    /// Staff id of whoever posted (or the robot's name).
    pub sender: String,
    pub authorization: TouchAuthorization,
}

/// The group is closed: nothing more is posted into it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GroupArchived {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

/// The contact wrote in one of our groups: a two-way signal for their
/// score, recorded beside the group's own `GroupMemberSpoke`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactSpokeInGroup {
    pub group_id: GroupId,
}

/// The contact left one of our groups; `afterPost` when within a day of a
/// post, a sign the posting drove them out.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct ContactLeftGroup {
    pub group_id: GroupId,
    pub after_post: bool,
}

/// Which kind of stream an event belongs on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StreamKind {
    Contact,
    Campaign,
    Group,
    Policy,
}

impl StreamKind {
    pub fn of(stream: &StreamName) -> Self {
        match stream {
            StreamName::Contact(_) => StreamKind::Contact,
            StreamName::Campaign(_) => StreamKind::Campaign,
            StreamName::Group(_) => StreamKind::Group,
            StreamName::Policy => StreamKind::Policy,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("unknown event type '{0}': written by a newer rapport?")]
    UnknownEventType(String),
    #[error("{event_type} schema version {found} is newer than this rapport reads (up to {supported})")]
    FutureSchemaVersion {
        event_type: &'static str,
        found: u16,
        supported: u16,
    },
    #[error("{event_type} schema version {found} is not a version rapport ever wrote")]
    UnknownSchemaVersion { event_type: &'static str, found: u16 },
    #[error("{event_type} payload does not match its schema: {detail}")]
    Payload { event_type: &'static str, detail: String },
}

/// Declares the event enum and its type names and schema versions in one
/// table, so that adding an event cannot forget one of them.
macro_rules! events {
    ($($variant:ident = version $version:literal on $kind:ident),* $(,)?) => {
        /// Every fact the ledger records.
        #[derive(Clone, Debug, PartialEq)]
        pub enum Event {
            $($variant($variant)),*
        }

        $(impl From<$variant> for Event {
            fn from(event: $variant) -> Self {
                Event::$variant(event)
            }
        })*

        impl Event {
            /// Every event type name this build knows.
            pub const TYPES: &'static [&'static str] = &[$(stringify!($variant)),*];

            pub fn event_type(&self) -> &'static str {
                match self {
                    $(Event::$variant(_) => stringify!($variant)),*
                }
            }

            /// The schema version this build writes for the event's type.
            pub fn schema_version(&self) -> u16 {
                match self {
                    $(Event::$variant(_) => $version),*
                }
            }

            /// The stream kind the event must be appended to.
            pub fn stream_kind(&self) -> StreamKind {
                match self {
                    $(Event::$variant(_) => StreamKind::$kind),*
                }
            }

            /// The payload's JSON bytes, as stored and hashed.
            pub fn encode(&self) -> Vec<u8> {
                let encoded = match self {
                    $(Event::$variant(payload) => serde_json::to_vec(payload)),*
                };
                // Payloads are plain structs of strings, numbers and enums:
                // serialising them cannot fail.
                encoded.unwrap_or_default()
            }

            /// Reads a stored payload, upcasting older schema versions.
            pub fn decode(event_type: &str, schema_version: u16, payload: &[u8]) -> Result<Event, DecodeError> {
                match event_type {
                    $(stringify!($variant) => {
                        let name = stringify!($variant);
                        let current = upcast(name, schema_version, $version, payload)?;
                        serde_json::from_slice(&current)
                            .map(Event::$variant)
                            .map_err(|error| DecodeError::Payload { event_type: name, detail: error.to_string() })
                    })*
                    other => Err(DecodeError::UnknownEventType(other.chars().take(64).collect())),
                }
            }
        }
    };
}

events! {
    ContactRegistered = version 1 on Contact,
    ContactProfileChanged = version 1 on Contact,
    ContactTagged = version 1 on Contact,
    ContactUntagged = version 1 on Contact,
    ConsentGranted = version 1 on Contact,
    ConsentWithdrawn = version 1 on Contact,
    TouchRecorded = version 1 on Contact,
    ReplyReceived = version 1 on Contact,
    ContactBlocked = version 1 on Contact,
    ContactUnblocked = version 1 on Contact,
    ContactDeletedUs = version 1 on Contact,
    ContactReadded = version 1 on Contact,
    ComplaintFiled = version 1 on Contact,
    PolicyChanged = version 1 on Policy,
    CampaignStarted = version 2 on Campaign,
    CampaignHeldOut = version 1 on Contact,
    DeliveryFailed = version 1 on Contact,
    MessageRead = version 1 on Contact,
    LinkClicked = version 1 on Contact,
    ContactErased = version 1 on Contact,
    GroupCreated = version 1 on Group,
    GroupMemberJoined = version 1 on Group,
    GroupMemberLeft = version 1 on Group,
    GroupMemberRemoved = version 1 on Group,
    GroupMemberSpoke = version 1 on Group,
    GroupPostRecorded = version 1 on Group,
    GroupArchived = version 1 on Group,
    ContactSpokeInGroup = version 1 on Contact,
    ContactLeftGroup = version 1 on Contact,
}

/// One step that rewrites a payload of `event_type` from `from_version` to
/// `from_version + 1`.
type Upcaster = fn(serde_json::Value) -> serde_json::Value;

/// The one place where old payload shapes become current ones. Every schema
/// bump adds a row here and a test that reads the old shape.
const UPCASTERS: &[(&str, u16, Upcaster)] = &[("CampaignStarted", 1, campaign_started_v1_to_v2)];

/// Version 1 campaigns were mass sends, recorded with a name and a channel.
fn campaign_started_v1_to_v2(mut payload: serde_json::Value) -> serde_json::Value {
    if let Some(fields) = payload.as_object_mut() {
        fields.insert("mode".to_owned(), serde_json::Value::from("MASS"));
    }
    payload
}

fn upcast<'a>(
    event_type: &'static str,
    found: u16,
    current: u16,
    payload: &'a [u8],
) -> Result<Cow<'a, [u8]>, DecodeError> {
    if found == current {
        return Ok(Cow::Borrowed(payload));
    }
    if found > current {
        return Err(DecodeError::FutureSchemaVersion {
            event_type,
            found,
            supported: current,
        });
    }
    let unknown = || DecodeError::UnknownSchemaVersion { event_type, found };
    let mut value: serde_json::Value = serde_json::from_slice(payload).map_err(|error| DecodeError::Payload {
        event_type,
        detail: error.to_string(),
    })?;
    for version in found..current {
        let step = UPCASTERS
            .iter()
            .find(|(name, from, _)| *name == event_type && *from == version)
            .ok_or_else(unknown)?;
        value = (step.2)(value);
    }
    Ok(Cow::Owned(serde_json::to_vec(&value).unwrap_or_default()))
}

// ---- validation -----------------------------------------------------------

/// Limits on what one event may carry.
pub const NAME_CHARS_MAX: usize = 128;
/// An owner is a token name, and token names are at most this long.
pub const OWNER_CHARS_MAX: usize = 64;
pub const TEXT_CHARS_MAX: usize = 1_000;
/// The largest control group a campaign may keep back, in percent.
pub const HOLDOUT_PERCENT_MAX: u8 = 50;
pub const TAGS_PER_CONTACT_MAX: usize = 50;
pub const TIME_ZONE_CHARS_MAX: usize = 64;
/// A member key, as group tools hand them out.
pub const MEMBER_CHARS_MAX: usize = 64;
/// A group's kind, a short label.
pub const GROUP_KIND_CHARS_MAX: usize = 32;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    #[error("{event_type} belongs on a {expected:?} stream, not on '{stream}'")]
    WrongStream {
        event_type: &'static str,
        expected: StreamKind,
        stream: String,
    },
    #[error("{event_type} cannot carry personal data; only ContactRegistered and ContactProfileChanged do")]
    PiiNotAllowed { event_type: &'static str },
    #[error("{field}: {problem}")]
    Field { field: &'static str, problem: String },
    #[error(transparent)]
    Policy(#[from] PolicyError),
}

fn check_text(field: &'static str, text: &str, chars_max: usize, required: bool) -> Result<(), ValidationError> {
    let problem = if required && text.trim().is_empty() {
        Some("must not be empty".to_owned())
    } else if text.chars().count() > chars_max {
        Some(format!("is longer than {chars_max} characters"))
    } else if text.chars().any(char::is_control) {
        Some("contains control characters".to_owned())
    } else {
        None
    };
    problem.map_or(Ok(()), |problem| Err(ValidationError::Field { field, problem }))
}

/// An owner is a staff member's token name: sales staff see the contacts
/// whose owner equals their name exactly, so a padded name would hide a
/// contact from its owner for good.
fn check_owner(owner: &str) -> Result<(), ValidationError> {
    check_text("owner", owner, OWNER_CHARS_MAX, true)?;
    if owner.trim() != owner {
        return Err(ValidationError::Field {
            field: "owner",
            problem: "must not start or end with spaces".to_owned(),
        });
    }
    Ok(())
}

fn check_authorization(authorization: &TouchAuthorization) -> Result<(), ValidationError> {
    match authorization {
        TouchAuthorization::Gate { position, .. } => {
            check_text("authorization.position", position, NAME_CHARS_MAX, true)
        }
        TouchAuthorization::Override { reason } => check_text("authorization.reason", reason, TEXT_CHARS_MAX, true),
        TouchAuthorization::External { source } => check_text("authorization.source", source, NAME_CHARS_MAX, true),
    }
}

/// A member key is matched exactly, so padding would make two members of one.
pub fn check_member(member: &str) -> Result<(), ValidationError> {
    check_text("member", member, MEMBER_CHARS_MAX, true)?;
    if member.trim() != member {
        return Err(ValidationError::Field {
            field: "member",
            problem: "must not start or end with spaces".to_owned(),
        });
    }
    Ok(())
}

fn check_tag_field(tag: &str) -> Result<(), ValidationError> {
    check_tag(tag).map_err(|problem| ValidationError::Field { field: "tag", problem })
}

pub fn check_time_zone(zone: &str) -> Result<(), ValidationError> {
    if zone.len() <= TIME_ZONE_CHARS_MAX && zone.parse::<chrono_tz::Tz>().is_ok() {
        Ok(())
    } else {
        Err(ValidationError::Field {
            field: "timeZone",
            problem: format!(
                "'{}' is not an IANA time zone such as Asia/Shanghai",
                zone.chars().take(64).collect::<String>()
            ),
        })
    }
}

impl Pii {
    pub fn validate(&self) -> Result<(), ValidationError> {
        for (field, value) in [
            ("pii.displayName", &self.display_name),
            ("pii.phone", &self.phone),
            ("pii.wechatId", &self.wechat_id),
            ("pii.email", &self.email),
        ] {
            if let Some(text) = value {
                check_text(field, text, NAME_CHARS_MAX, true)?;
            }
        }
        Ok(())
    }
}

impl Event {
    /// The reason a manager gave for overriding the gate, for a touch sent
    /// under an override.
    pub fn override_reason(&self) -> Option<&str> {
        match self {
            Event::TouchRecorded(TouchRecorded {
                authorization: TouchAuthorization::Override { reason },
                ..
            }) => Some(reason),
            _ => None,
        }
    }

    /// Checks the payload against its limits and its stream. Runs before
    /// anything is written.
    pub fn validate(&self, stream: &StreamName, pii: Option<&Pii>) -> Result<(), ValidationError> {
        let event_type = self.event_type();
        if self.stream_kind() != StreamKind::of(stream) {
            return Err(ValidationError::WrongStream {
                event_type,
                expected: self.stream_kind(),
                stream: stream.to_string(),
            });
        }
        match (self, pii) {
            (Event::ContactRegistered(_) | Event::ContactProfileChanged(_), Some(pii)) => pii.validate()?,
            (_, Some(_)) => return Err(ValidationError::PiiNotAllowed { event_type }),
            (_, None) => {}
        }
        match self {
            Event::ContactRegistered(e) => {
                check_owner(&e.owner)?;
                if let Some(zone) = &e.time_zone {
                    check_time_zone(zone)?;
                }
                if e.tags.len() > TAGS_PER_CONTACT_MAX {
                    return Err(ValidationError::Field {
                        field: "tags",
                        problem: format!("at most {TAGS_PER_CONTACT_MAX} tags per contact"),
                    });
                }
                e.tags.iter().try_for_each(|tag| check_tag_field(tag))
            }
            Event::ContactProfileChanged(e) => {
                if let Some(owner) = &e.owner {
                    check_owner(owner)?;
                }
                e.time_zone.as_deref().map_or(Ok(()), check_time_zone)
            }
            Event::ContactTagged(ContactTagged { tag }) | Event::ContactUntagged(ContactUntagged { tag }) => {
                check_tag_field(tag)
            }
            Event::ConsentGranted(ConsentGranted { source }) | Event::ConsentWithdrawn(ConsentWithdrawn { source }) => {
                source
                    .as_deref()
                    .map_or(Ok(()), |s| check_text("source", s, TEXT_CHARS_MAX, false))
            }
            Event::TouchRecorded(e) => {
                check_text("sender", &e.sender, NAME_CHARS_MAX, true)?;
                check_authorization(&e.authorization)
            }
            Event::GroupPostRecorded(e) => {
                check_text("sender", &e.sender, NAME_CHARS_MAX, true)?;
                check_authorization(&e.authorization)
            }
            Event::GroupCreated(e) => {
                check_text("name", &e.name, NAME_CHARS_MAX, true)?;
                check_owner(&e.owner)?;
                check_text("kind", &e.kind, GROUP_KIND_CHARS_MAX, true)?;
                e.time_zone.as_deref().map_or(Ok(()), check_time_zone)
            }
            Event::GroupMemberJoined(GroupMemberJoined { member, .. })
            | Event::GroupMemberLeft(GroupMemberLeft { member })
            | Event::GroupMemberRemoved(GroupMemberRemoved { member })
            | Event::GroupMemberSpoke(GroupMemberSpoke { member }) => check_member(member),
            Event::GroupArchived(e) => e
                .reason
                .as_deref()
                .map_or(Ok(()), |r| check_text("reason", r, TEXT_CHARS_MAX, false)),
            Event::ContactSpokeInGroup(_) | Event::ContactLeftGroup(_) => Ok(()),
            Event::ComplaintFiled(e) => e
                .reason
                .as_deref()
                .map_or(Ok(()), |r| check_text("reason", r, TEXT_CHARS_MAX, false)),
            Event::PolicyChanged(e) => Ok(e.policy.validate()?),
            Event::CampaignStarted(e) => {
                check_text("name", &e.name, NAME_CHARS_MAX, true)?;
                if e.holdout_percent > HOLDOUT_PERCENT_MAX {
                    return Err(ValidationError::Field {
                        field: "holdoutPercent",
                        problem: format!("at most {HOLDOUT_PERCENT_MAX}"),
                    });
                }
                e.audience.as_ref().map_or(Ok(()), |audience| {
                    audience
                        .tags
                        .as_deref()
                        // Written back with spaces, an expression of the
                        // longest kind may run to twice its typed length.
                        .map_or(Ok(()), |tags| {
                            check_text("audience.tags", tags, 2 * TEXT_CHARS_MAX, false)
                        })?;
                    audience
                        .owners
                        .iter()
                        .try_for_each(|owner| check_text("audience.owners", owner, OWNER_CHARS_MAX, false))
                })
            }
            Event::DeliveryFailed(e) => e
                .reason
                .as_deref()
                .map_or(Ok(()), |r| check_text("reason", r, TEXT_CHARS_MAX, false)),
            Event::ContactErased(e) => {
                check_text("reason", &e.reason, TEXT_CHARS_MAX, true)?;
                check_text("requestId", &e.request_id, NAME_CHARS_MAX, true)
            }
            Event::CampaignHeldOut(_) | Event::MessageRead(_) | Event::LinkClicked(_) => Ok(()),
            Event::ReplyReceived(_)
            | Event::ContactBlocked(_)
            | Event::ContactUnblocked(_)
            | Event::ContactDeletedUs(_)
            | Event::ContactReadded(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::*;
    use crate::ids::ContactId;

    fn contact_stream() -> StreamName {
        StreamName::Contact(ContactId(Uuid::from_u128(1)))
    }

    #[test]
    fn every_event_round_trips_through_its_stored_bytes() {
        let events: Vec<Event> = vec![
            ContactRegistered {
                owner: "alice".into(),
                primary_channel: Channel::Wechat,
                time_zone: Some("Asia/Shanghai".into()),
                tags: vec!["vip".into()],
            }
            .into(),
            TouchRecorded {
                mode: SendMode::Mass,
                channel: Channel::Wecom,
                campaign_id: Some(CampaignId(Uuid::from_u128(5))),
                sender: "bob".into(),
                authorization: TouchAuthorization::Gate {
                    verdict: Verdict::Allow,
                    policy_version: 1,
                    position: "42".into(),
                },
            }
            .into(),
            PolicyChanged {
                policy: Policy::default(),
            }
            .into(),
            ReplyReceived { channel: Channel::Sms }.into(),
            CampaignStarted {
                name: "Double 11".into(),
                channel: Channel::Wechat,
                mode: SendMode::Mass,
                audience: Some(AudienceRecord {
                    tags: Some("vip OR new".into()),
                    owners: vec!["alice".into()],
                    ..AudienceRecord::default()
                }),
                policy_version: Some(3),
                holdout_percent: 10,
                resolved: Some(ResolvedAudience {
                    sent: 90,
                    held_out: 10,
                    ..ResolvedAudience::default()
                }),
            }
            .into(),
            CampaignHeldOut {
                campaign_id: CampaignId(Uuid::from_u128(5)),
            }
            .into(),
            DeliveryFailed {
                channel: Channel::Sms,
                campaign_id: Some(CampaignId(Uuid::from_u128(5))),
                reason: Some("number not in service".into()),
            }
            .into(),
            MessageRead {
                channel: Channel::Wechat,
                campaign_id: None,
            }
            .into(),
            LinkClicked {
                channel: Channel::Email,
                campaign_id: Some(CampaignId(Uuid::from_u128(5))),
            }
            .into(),
        ];
        for event in events {
            let bytes = event.encode();
            let decoded = Event::decode(event.event_type(), event.schema_version(), &bytes);
            assert_eq!(decoded, Ok(event));
        }
    }

    #[test]
    fn a_version_1_campaign_reads_as_a_mass_send_with_nothing_else_known() {
        let stored = br#"{"name":"Saturday promotion","channel":"WECHAT"}"#;
        let decoded = Event::decode("CampaignStarted", 1, stored);
        assert_eq!(
            decoded,
            Ok(CampaignStarted {
                name: "Saturday promotion".into(),
                channel: Channel::Wechat,
                mode: SendMode::Mass,
                audience: None,
                policy_version: None,
                holdout_percent: 0,
                resolved: None,
            }
            .into())
        );
    }

    #[test]
    fn an_unknown_event_type_is_refused_not_misread() {
        assert_eq!(
            Event::decode("ContactTeleported", 1, b"{}"),
            Err(DecodeError::UnknownEventType("ContactTeleported".into()))
        );
    }

    #[test]
    fn a_future_schema_version_is_refused() {
        let bytes = ReplyReceived { channel: Channel::Sms }.into_event_bytes();
        assert_eq!(
            Event::decode("ReplyReceived", 2, &bytes),
            Err(DecodeError::FutureSchemaVersion {
                event_type: "ReplyReceived",
                found: 2,
                supported: 1
            })
        );
    }

    #[test]
    fn a_schema_version_never_written_is_refused() {
        let bytes = ReplyReceived { channel: Channel::Sms }.into_event_bytes();
        assert!(matches!(
            Event::decode("ReplyReceived", 0, &bytes),
            Err(DecodeError::UnknownSchemaVersion { .. })
        ));
    }

    #[test]
    fn a_payload_with_fields_this_version_does_not_know_is_refused() {
        let decoded = Event::decode("ReplyReceived", 1, br#"{"channel":"SMS","mood":"happy"}"#);
        assert!(matches!(decoded, Err(DecodeError::Payload { .. })));
    }

    #[test]
    fn personal_data_is_only_accepted_on_profile_events() {
        let pii = Pii {
            phone: Some("+86 138 0000 0000".into()),
            ..Pii::default()
        };
        let reply: Event = ReplyReceived {
            channel: Channel::Wechat,
        }
        .into();
        assert_eq!(
            reply.validate(&contact_stream(), Some(&pii)),
            Err(ValidationError::PiiNotAllowed {
                event_type: "ReplyReceived"
            })
        );
    }

    #[test]
    fn events_are_refused_on_the_wrong_kind_of_stream() {
        let reply: Event = ReplyReceived {
            channel: Channel::Wechat,
        }
        .into();
        assert!(matches!(
            reply.validate(&StreamName::Policy, None),
            Err(ValidationError::WrongStream { .. })
        ));
    }

    #[test]
    fn oversized_and_malformed_fields_are_refused() {
        let tagged: Event = ContactTagged {
            tag: "has space".into(),
        }
        .into();
        assert!(tagged.validate(&contact_stream(), None).is_err());
        let registered: Event = ContactRegistered {
            owner: "x".repeat(NAME_CHARS_MAX + 1),
            primary_channel: Channel::Sms,
            time_zone: None,
            tags: vec![],
        }
        .into();
        assert!(matches!(
            registered.validate(&contact_stream(), None),
            Err(ValidationError::Field { field: "owner", .. })
        ));
    }

    impl ReplyReceived {
        fn into_event_bytes(self) -> Vec<u8> {
            Event::from(self).encode()
        }
    }
}
