//! rapport's domain: the events of the relationship ledger, the policy that
//! governs sends, the rules that score relationships and gate sends, and the
//! hashing rules that make the ledger tamper-evident.
//!
//! Pure by design: no I/O, no async runtime, and no clock. Every instant is
//! an argument, so the same events always mean the same thing.

pub mod audience;
pub mod channel;
pub mod decay;
pub mod decide;
pub mod envelope;
pub mod event;
pub mod gate;
pub mod group;
pub mod hashing;
pub mod hours;
pub mod ids;
pub mod plan;
pub mod policy;
pub mod reengage;
pub mod relationship;
pub mod strength;
pub mod symbols;
pub mod tags;
pub mod time;
pub mod words;

pub use envelope::{NewEvent, Position, PositionError, RecordedEvent};
pub use event::{
    AudienceRecord, CampaignHeldOut, CampaignStarted, Channel, ComplaintFiled, ConsentGranted, ConsentWithdrawn,
    ContactBlocked, ContactDeletedUs, ContactErased, ContactLeftGroup, ContactProfileChanged, ContactReadded,
    ContactRegistered, ContactSpokeInGroup, ContactTagged, ContactUnblocked, ContactUntagged, DecodeError,
    DeliveryFailed, Event, GroupArchived, GroupCreated, GroupMemberJoined, GroupMemberLeft, GroupMemberRemoved,
    GroupMemberSpoke, GroupPostRecorded, LinkClicked, MessageRead, Pii, PolicyChanged, PostKind, ReplyReceived,
    SendMode, StreamKind, TouchAuthorization, TouchRecorded, ValidationError, Verdict,
};
pub use gate::{CompiledPolicy, GateDecision, Reason, ReasonCode, ReasonSet, gate};
pub use hashing::{Hash, LedgerDigest};
pub use ids::{CampaignId, ContactId, GroupId, StreamName};
pub use policy::Policy;
pub use relationship::{Consent, Relationship};
pub use strength::{Band, ScoreComponent, Strength, strength};
pub use symbols::{SymbolId, Symbols};
pub use time::Timestamp;
pub use words::Language;
