//! Events exactly as stored: the bytes the hash chain covers. Decoding into
//! domain types happens here, in one place for every backend.

use rapport_domain::hashing::{Hash, HashedFields};
use rapport_domain::{Event, Pii, Position, RecordedEvent, StreamName, Timestamp};
use uuid::Uuid;

use crate::StoreError;

/// Personal data as stored: sealed with the contact's key (see `sealing`),
/// and opened when the key is at hand.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StoredPii {
    pub sealed: Vec<u8>,
    pub opened: Opened,
}

/// What opening sealed personal data gave.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Opened {
    /// The JSON, and the key its digest in the chain is keyed with.
    Plain { json: Vec<u8>, digest_key: [u8; 32] },
    /// No key to open it with: the reader has no master key, or the
    /// contact's key was destroyed.
    Locked,
    /// The key is at hand but the bytes do not open under it: altered.
    Damaged,
}

/// One stored event, undecoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawEvent {
    pub position: Position,
    pub stream: String,
    pub version: u64,
    pub event_id: Uuid,
    pub event_type: String,
    pub schema_version: u16,
    pub occurred_at_millis: i64,
    pub recorded_at_millis: i64,
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
    pub payload: Vec<u8>,
    pub pii_digest: Option<Hash>,
    /// `None` when none was given or it was erased.
    pub pii: Option<StoredPii>,
    pub hash: Hash,
    /// The ledger digest up to this event, where the backend stores it.
    pub ledger_digest: Option<Hash>,
}

impl RawEvent {
    pub fn hashed_fields(&self) -> HashedFields<'_> {
        HashedFields {
            event_id: self.event_id,
            stream: &self.stream,
            version: self.version,
            event_type: &self.event_type,
            schema_version: self.schema_version,
            occurred_at_millis: self.occurred_at_millis,
            recorded_at_millis: self.recorded_at_millis,
            actor: &self.actor,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
            payload: &self.payload,
            pii_digest: self.pii_digest.as_ref(),
        }
    }

    /// Decodes the payload, upcasting old schema versions; an unknown type or
    /// a future version is an error naming the position, never a guess.
    pub fn decode(self) -> Result<RecordedEvent, StoreError> {
        let position = self.position;
        let corrupt = |detail: String| StoreError::Corrupt {
            position: Some(position),
            detail,
        };
        let stream: StreamName = self.stream.parse().map_err(|e| corrupt(format!("{e}")))?;
        let event = Event::decode(&self.event_type, self.schema_version, &self.payload)
            .map_err(|source| StoreError::Decode { position, source })?;
        let pii = match self.pii.as_ref().map(|stored| &stored.opened) {
            Some(Opened::Plain { json, .. }) => Some(
                serde_json::from_slice::<Pii>(json)
                    .map_err(|e| corrupt(format!("personal data does not parse: {e}")))?,
            ),
            Some(Opened::Damaged) => {
                return Err(corrupt(
                    "personal data does not open under its contact's key".to_owned(),
                ));
            }
            Some(Opened::Locked) | None => None,
        };
        let timestamp =
            |millis: i64, what: &str| Timestamp::from_millis(millis).map_err(|e| corrupt(format!("{what}: {e}")));
        Ok(RecordedEvent {
            event_id: self.event_id,
            stream,
            version: self.version,
            position,
            schema_version: self.schema_version,
            event,
            pii,
            occurred_at: timestamp(self.occurred_at_millis, "occurred_at")?,
            recorded_at: timestamp(self.recorded_at_millis, "recorded_at")?,
            actor: self.actor,
            correlation_id: self.correlation_id,
            causation_id: self.causation_id,
        })
    }
}
