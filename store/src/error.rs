//! What can go wrong with the ledger, as values with stable codes.

use rapport_domain::{DecodeError, Position, ValidationError};
use uuid::Uuid;

use crate::ExpectedVersion;

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StoreError {
    #[error("stream {stream} is not at the expected version: expected {expected}, found {}", describe_version(.actual))]
    WrongExpectedVersion {
        stream: String,
        expected: ExpectedVersion,
        actual: Option<u64>,
    },
    #[error("retry of an append to {stream} does not match what was written: {detail} (event {event_id})")]
    IdempotencyConflict {
        stream: String,
        event_id: Uuid,
        detail: String,
    },
    #[error("event {index} of the append is invalid: {source}")]
    InvalidEvent { index: usize, source: ValidationError },
    #[error("event {index} is {bytes} bytes once encoded, over the limit of {limit} bytes")]
    EventTooLarge { index: usize, bytes: usize, limit: usize },
    /// The whole append is over what the backend takes at once (a
    /// KurrentDB server's `MaxAppendSize`).
    #[error("the append is {bytes} bytes once encoded, over the limit of {limit} bytes for one append on this ledger")]
    AppendTooLarge { bytes: usize, limit: usize },
    #[error("an append carries {count} events, over the limit of {limit}")]
    TooManyEvents { count: usize, limit: usize },
    #[error("append {index} of an all-or-nothing batch was refused, so nothing was written: {source}")]
    InBatch { index: usize, source: Box<StoreError> },
    #[error("an append must carry at least one event")]
    EmptyAppend,
    #[error("the ledger is corrupt {}: {detail}", describe_position(.position))]
    Corrupt { position: Option<Position>, detail: String },
    #[error("the event at position {position} cannot be read: {source}")]
    Decode { position: Position, source: DecodeError },
    #[error("{path} was written by a newer rapport (ledger format {found}; this build reads up to {supported})")]
    NewerFormat { path: String, found: i64, supported: i64 },
    #[error("{path} is not a rapport ledger: {detail}")]
    NotALedger { path: String, detail: String },
    #[error("the ledger is unavailable: {0}")]
    Unavailable(String),
    #[error("ledger storage failed: {0}")]
    Io(String),
    /// Personal data for a contact who was erased: their key is gone and
    /// is never made again (a new registration makes a new contact).
    #[error("{stream} was erased: it takes no personal data and no second erasure; register a new contact")]
    Erased { stream: String },
    /// The master key that seals personal data is missing, malformed or
    /// not the one this ledger was sealed with.
    #[error("{0}")]
    MasterKey(String),
}

fn describe_version(version: &Option<u64>) -> String {
    version.map_or_else(|| "no stream".to_owned(), |v| format!("version {v}"))
}

fn describe_position(position: &Option<Position>) -> String {
    position.map_or_else(|| "(position unknown)".to_owned(), |p| format!("at position {p}"))
}

impl StoreError {
    /// A stable code for scripts and API clients.
    pub fn code(&self) -> &'static str {
        match self {
            StoreError::WrongExpectedVersion { .. } => "WRONG_EXPECTED_VERSION",
            StoreError::IdempotencyConflict { .. } => "IDEMPOTENCY_CONFLICT",
            StoreError::InvalidEvent { .. } => "INVALID_EVENT",
            StoreError::EventTooLarge { .. } => "EVENT_TOO_LARGE",
            StoreError::TooManyEvents { .. } => "TOO_MANY_EVENTS",
            StoreError::AppendTooLarge { .. } => "APPEND_TOO_LARGE",
            StoreError::InBatch { source, .. } => source.code(),
            StoreError::EmptyAppend => "EMPTY_APPEND",
            StoreError::Corrupt { .. } => "CORRUPT",
            StoreError::Decode { .. } => "UNREADABLE_EVENT",
            StoreError::NewerFormat { .. } => "NEWER_FORMAT",
            StoreError::NotALedger { .. } => "NOT_A_LEDGER",
            StoreError::Unavailable(_) => "UNAVAILABLE",
            StoreError::Io(_) => "IO",
            StoreError::MasterKey(_) => "MASTER_KEY",
            StoreError::Erased { .. } => "ERASED",
        }
    }

    /// Whether the caller's input caused it (as opposed to the ledger or the machine).
    pub fn is_caller_error(&self) -> bool {
        if let StoreError::InBatch { source, .. } = self {
            return source.is_caller_error();
        }
        matches!(
            self,
            StoreError::WrongExpectedVersion { .. }
                | StoreError::IdempotencyConflict { .. }
                | StoreError::InvalidEvent { .. }
                | StoreError::EventTooLarge { .. }
                | StoreError::TooManyEvents { .. }
                | StoreError::AppendTooLarge { .. }
                | StoreError::EmptyAppend
                | StoreError::Erased { .. }
        )
    }
}
