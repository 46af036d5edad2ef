//! Events as they are offered to the ledger (`NewEvent`) and as the ledger
//! hands them back (`RecordedEvent`), with their metadata.

use std::fmt;
use std::str::FromStr;

use uuid::Uuid;

use crate::event::{Event, Pii, ValidationError};
use crate::ids::StreamName;
use crate::time::Timestamp;

/// A place in the ledger's global order. Opaque and ordered: backends may
/// leave gaps (EventStoreDB's positions are sparse), so never do arithmetic
/// on it. Text form: `commit` when both parts agree, else `commit.prepare`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize)]
pub struct Position {
    pub commit: u64,
    pub prepare: u64,
}

impl Position {
    pub const fn new(commit: u64, prepare: u64) -> Self {
        Position { commit, prepare }
    }

    /// A position for backends whose positions are one number.
    pub const fn from_sequence(sequence: u64) -> Self {
        Position {
            commit: sequence,
            prepare: sequence,
        }
    }
}

impl fmt::Display for Position {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.commit == self.prepare {
            write!(f, "{}", self.commit)
        } else {
            write!(f, "{}.{}", self.commit, self.prepare)
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("'{0}' is not a ledger position (positions look like 1234)")]
pub struct PositionError(pub String);

impl FromStr for Position {
    type Err = PositionError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let refuse = || PositionError(text.chars().take(40).collect());
        let parse = |part: &str| part.parse::<u64>().map_err(|_| refuse());
        match text.split_once('.') {
            Some((commit, prepare)) => Ok(Position::new(parse(commit)?, parse(prepare)?)),
            None => parse(text).map(Position::from_sequence),
        }
    }
}

/// An event offered for appending. `event_id` is also the idempotency key.
#[derive(Clone, Debug, PartialEq)]
pub struct NewEvent {
    pub event_id: Uuid,
    pub event: Event,
    pub pii: Option<Pii>,
    /// When it happened in the world, as the caller says.
    pub occurred_at: Timestamp,
    /// Who recorded it: a staff id, a token name, or an importer.
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

impl NewEvent {
    /// An event with a fresh id that correlates with itself.
    pub fn new(event_id: Uuid, event: impl Into<Event>, occurred_at: Timestamp, actor: impl Into<String>) -> Self {
        NewEvent {
            event_id,
            event: event.into(),
            pii: None,
            occurred_at,
            actor: actor.into(),
            correlation_id: event_id,
            causation_id: None,
        }
    }

    pub fn with_pii(mut self, pii: Pii) -> Self {
        self.pii = Some(pii);
        self
    }

    pub fn validate(&self, stream: &StreamName) -> Result<(), ValidationError> {
        if self.actor.trim().is_empty() || self.actor.chars().count() > crate::event::NAME_CHARS_MAX {
            return Err(ValidationError::Field {
                field: "actor",
                problem: format!("must be 1 to {} characters", crate::event::NAME_CHARS_MAX),
            });
        }
        self.event.validate(stream, self.pii.as_ref())
    }
}

/// An event as the ledger holds it.
#[derive(Clone, Debug, PartialEq)]
pub struct RecordedEvent {
    pub event_id: Uuid,
    pub stream: StreamName,
    /// 0 for a stream's first event.
    pub version: u64,
    pub position: Position,
    pub schema_version: u16,
    pub event: Event,
    /// `None` when never given, or erased.
    pub pii: Option<Pii>,
    pub occurred_at: Timestamp,
    /// When the ledger accepted it; never decreases along the global order.
    pub recorded_at: Timestamp,
    pub actor: String,
    pub correlation_id: Uuid,
    pub causation_id: Option<Uuid>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_order_and_round_trip_through_text() {
        let dense = Position::from_sequence(42);
        let sparse = Position::new(100, 90);
        assert_eq!(dense.to_string(), "42");
        assert_eq!(sparse.to_string(), "100.90");
        assert_eq!("42".parse(), Ok(dense));
        assert_eq!("100.90".parse(), Ok(sparse));
        assert!(dense < sparse);
        assert!("4x".parse::<Position>().is_err());
    }
}
