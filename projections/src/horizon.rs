//! The two time axes of every view. Knowledge: what the ledger had
//! recorded by a position. Business time: of that, the facts that had
//! occurred by a moment. A contact "at T as known at P" counts exactly the
//! events that pass both.

use rapport_domain::{Position, RecordedEvent, StreamName, Timestamp};

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Horizon {
    /// Events recorded at or before this position (all, if `None`).
    pub known_at: Option<Position>,
    /// Facts that occurred at or before this moment (all, if `None`).
    pub occurred_by: Option<Timestamp>,
}

impl Horizon {
    pub fn knows(&self, position: Position) -> bool {
        self.known_at.is_none_or(|known_at| position <= known_at)
    }

    /// Whether a view bounded by this horizon counts `event`. Policy changes
    /// count by knowledge alone: a gate asked at (T, P) judges under the
    /// policy in force at P, whatever moment T it is asked about.
    pub fn counts(&self, event: &RecordedEvent) -> bool {
        self.knows(event.position)
            && (event.stream == StreamName::Policy
                || self
                    .occurred_by
                    .is_none_or(|occurred_by| event.occurred_at <= occurred_by))
    }
}
