//! The auditor's check: walk the whole ledger in global order, recompute
//! every hash link and the ledger digest, and report the first event that
//! does not match. Against a digest saved earlier, it also exposes
//! truncation and rewritten history, which no internal check can.

use std::collections::HashMap;
use std::fmt;

use rapport_domain::hashing::{GENESIS, Hash, event_hash, ledger_digest, pii_digest};
use rapport_domain::{LedgerDigest, Position};

use crate::{EventStore, Opened, RawEvent, StoreError};

const PAGE_EVENTS: usize = 4_096;

/// What the walk found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verification {
    pub events_checked: u64,
    pub streams_checked: u64,
    /// The recomputed digest up to the last event checked.
    pub digest: LedgerDigest,
    /// The first problem; `None` means every link holds.
    pub finding: Option<Finding>,
}

impl Verification {
    pub fn is_intact(&self) -> bool {
        self.finding.is_none()
    }
}

/// The first place where the ledger does not match its own evidence.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Finding {
    pub position: Option<Position>,
    pub stream: Option<String>,
    pub kind: FindingKind,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FindingKind {
    /// The event's stored hash is not the hash of its contents and predecessor.
    HashMismatch,
    /// The stream skips or repeats a version (an event was removed or inserted).
    StreamSequenceBroken { expected_version: u64, found_version: u64 },
    /// Positions do not increase.
    PositionOutOfOrder,
    /// The stored personal data is not what was hashed.
    PiiMismatch,
    /// Personal data the chain covers is gone, and the contact was never
    /// erased: removed by hand, or lost.
    PiiMissing,
    /// The digest stored beside the event disagrees with the recomputed one.
    LedgerDigestMismatch,
    /// `recorded_at` went backwards along the global order.
    RecordedAtWentBack,
    /// The row cannot be read at all.
    Unreadable(String),
    /// The saved digest names a position the ledger no longer reaches.
    Truncated { saved_position: Position },
    /// The ledger up to the saved digest's position hashes differently now.
    HistoryRewritten { saved: LedgerDigest },
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            FindingKind::HashMismatch => f.write_str("event hash does not match its contents")?,
            FindingKind::StreamSequenceBroken {
                expected_version,
                found_version,
            } => write!(f, "stream jumps from version {expected_version} to {found_version}")?,
            FindingKind::PositionOutOfOrder => f.write_str("position does not follow its predecessor")?,
            FindingKind::PiiMismatch => f.write_str("personal data does not match its digest")?,
            FindingKind::PiiMissing => f.write_str("personal data is gone though the contact was never erased")?,
            FindingKind::LedgerDigestMismatch => f.write_str("stored ledger digest does not match")?,
            FindingKind::RecordedAtWentBack => f.write_str("recorded_at is earlier than its predecessor's")?,
            FindingKind::Unreadable(detail) => write!(f, "unreadable: {detail}")?,
            FindingKind::Truncated { saved_position } => write!(
                f,
                "the ledger was truncated: the saved digest covers position {saved_position}, which is gone"
            )?,
            FindingKind::HistoryRewritten { saved } => write!(
                f,
                "history was rewritten: the ledger no longer matches the saved digest {saved}"
            )?,
        }
        if let Some(position) = self.position {
            write!(f, " at position {position}")?;
        }
        if let Some(stream) = &self.stream {
            write!(f, " in stream {stream}")?;
        }
        Ok(())
    }
}

struct Walk {
    streams: HashMap<String, (u64, Hash)>,
    previous_position: Option<Position>,
    previous_recorded_at: i64,
    /// How far recorded time may step back along the global order (0 for
    /// one writer; several writing nodes stamp on their own clocks).
    recorded_at_tolerance_millis: i64,
    digest: Hash,
    events_checked: u64,
    /// Streams whose personal data is gone, at the first such event, until
    /// their erasure is met.
    missing_pii: HashMap<String, Position>,
}

impl Walk {
    /// Checks one event; on success folds it into the running state.
    fn check(&mut self, event: &RawEvent) -> Result<(), FindingKind> {
        if self
            .previous_position
            .is_some_and(|previous| event.position <= previous)
        {
            return Err(FindingKind::PositionOutOfOrder);
        }
        let (expected_version, previous_hash) = match self.streams.get(&event.stream) {
            Some((last_version, hash)) => (last_version + 1, *hash),
            None => (0, GENESIS),
        };
        if event.version != expected_version {
            return Err(FindingKind::StreamSequenceBroken {
                expected_version,
                found_version: event.version,
            });
        }
        if event.recorded_at_millis
            < self
                .previous_recorded_at
                .saturating_sub(self.recorded_at_tolerance_millis)
        {
            return Err(FindingKind::RecordedAtWentBack);
        }
        match event.pii.as_ref().map(|stored| &stored.opened) {
            Some(Opened::Plain { json, digest_key }) if event.pii_digest != Some(pii_digest(digest_key, json)) => {
                return Err(FindingKind::PiiMismatch);
            }
            Some(Opened::Damaged) => return Err(FindingKind::PiiMismatch),
            // Data nobody can open any more proves nothing either way: its
            // digest is still covered by the chain.
            _ => {}
        }
        let hash = event_hash(&previous_hash, &event.hashed_fields());
        if hash != event.hash {
            return Err(FindingKind::HashMismatch);
        }
        let digest = ledger_digest(&self.digest, event.position, &hash);
        if event.ledger_digest.is_some_and(|stored| stored != digest) {
            return Err(FindingKind::LedgerDigestMismatch);
        }
        if event.pii_digest.is_some() && event.pii.is_none() {
            self.missing_pii.entry(event.stream.clone()).or_insert(event.position);
        }
        if event.event_type == "ContactErased" {
            self.missing_pii.remove(&event.stream);
        }
        self.streams.insert(event.stream.clone(), (event.version, hash));
        self.previous_position = Some(event.position);
        // The latest so far: steps back never add up past the tolerance.
        self.previous_recorded_at = self.previous_recorded_at.max(event.recorded_at_millis);
        self.digest = digest;
        self.events_checked += 1;
        Ok(())
    }

    fn report(self, finding: Option<Finding>) -> Verification {
        Verification {
            events_checked: self.events_checked,
            streams_checked: self.streams.len() as u64,
            digest: LedgerDigest {
                position: self.previous_position,
                digest: self.digest,
            },
            finding,
        }
    }
}

/// Checks a ledger's events fed in order, from any source: the store, or
/// an export file. `saved` is a digest recorded earlier, outside the
/// ledger; the events must still reach and match it.
#[derive(Debug)]
pub struct Verifier {
    walk: Walk,
    saved: Option<LedgerDigest>,
    saved_reached: bool,
}

impl fmt::Debug for Walk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Walk")
            .field("events_checked", &self.events_checked)
            .field("previous_position", &self.previous_position)
            .finish_non_exhaustive()
    }
}

impl Verifier {
    pub fn new(saved: Option<LedgerDigest>) -> Self {
        Verifier {
            walk: Walk {
                streams: HashMap::new(),
                previous_position: None,
                previous_recorded_at: i64::MIN,
                recorded_at_tolerance_millis: 0,
                digest: GENESIS,
                events_checked: 0,
                missing_pii: HashMap::new(),
            },
            saved,
            saved_reached: false,
        }
    }

    /// Lets recorded time step back this far along the global order.
    pub fn tolerating_recorded_at_skew(mut self, millis: i64) -> Self {
        self.walk.recorded_at_tolerance_millis = millis.max(0);
        self
    }

    /// The last position checked, from which to read on.
    pub fn position(&self) -> Option<Position> {
        self.walk.previous_position
    }

    /// Checks the next event; the first contradiction ends the walk.
    pub fn check(&mut self, event: &RawEvent) -> Result<(), Finding> {
        if let Err(kind) = self.walk.check(event) {
            return Err(Finding {
                position: Some(event.position),
                stream: Some(event.stream.clone()),
                kind,
            });
        }
        if let Some(saved) = self.saved
            && let Some(saved_position) = saved.position
            && !self.saved_reached
            && event.position >= saved_position
        {
            self.saved_reached = true;
            // Past the saved position without meeting it: it was removed.
            if event.position != saved_position || saved.digest != self.walk.digest {
                return Err(Finding {
                    position: Some(event.position),
                    stream: None,
                    kind: FindingKind::HistoryRewritten { saved },
                });
            }
        }
        Ok(())
    }

    /// The report after the last event, or after `finding` stopped the walk.
    pub fn report(self, finding: Option<Finding>) -> Verification {
        // Every ledger was once empty, so an empty ledger's digest always holds.
        let finding = finding.or_else(|| {
            self.saved
                .and_then(|saved| saved.position)
                .filter(|_| !self.saved_reached)
                .map(|saved_position| Finding {
                    position: self.walk.previous_position,
                    stream: None,
                    kind: FindingKind::Truncated { saved_position },
                })
        });
        let finding = finding.or_else(|| {
            self.walk
                .missing_pii
                .iter()
                .min_by_key(|(_, position)| **position)
                .map(|(stream, position)| Finding {
                    position: Some(*position),
                    stream: Some(stream.clone()),
                    kind: FindingKind::PiiMissing,
                })
        });
        self.walk.report(finding)
    }
}

/// Walks every event of `store`.
///
/// Operating failures (I/O) are errors; anything the ledger's own evidence
/// contradicts is a `Finding` in the returned report.
pub async fn verify(store: &dyn EventStore, saved: Option<LedgerDigest>) -> Result<Verification, StoreError> {
    let mut verifier = Verifier::new(saved).tolerating_recorded_at_skew(store.recorded_at_skew_millis());
    loop {
        let page = match store.read_all_raw(verifier.position(), PAGE_EVENTS).await {
            Ok(page) => page,
            Err(StoreError::Corrupt { position, detail }) => {
                let finding = Finding {
                    position,
                    stream: None,
                    kind: FindingKind::Unreadable(detail),
                };
                return Ok(verifier.report(Some(finding)));
            }
            Err(other) => return Err(other),
        };
        if page.is_empty() {
            return Ok(verifier.report(None));
        }
        for event in &page {
            if let Err(finding) = verifier.check(event) {
                return Ok(verifier.report(Some(finding)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use rapport_domain::hashing::HashedFields;
    use uuid::Uuid;

    use super::*;

    /// A stream's first event, hashed as a writer would, recorded at `recorded_at_millis`.
    fn first_event(stream: &str, position: u64, recorded_at_millis: i64) -> RawEvent {
        let mut event = RawEvent {
            position: Position::from_sequence(position),
            stream: stream.to_owned(),
            version: 0,
            event_id: Uuid::from_u128(u128::from(position)),
            event_type: "ReplyReceived".to_owned(),
            schema_version: 1,
            occurred_at_millis: 0,
            recorded_at_millis,
            actor: "test".to_owned(),
            correlation_id: Uuid::from_u128(1),
            causation_id: None,
            payload: br#"{"channel":"WECHAT"}"#.to_vec(),
            pii_digest: None,
            pii: None,
            hash: GENESIS,
            ledger_digest: None,
        };
        let fields: HashedFields<'_> = event.hashed_fields();
        event.hash = event_hash(&GENESIS, &fields);
        event
    }

    fn walk(verifier: Verifier, events: &[RawEvent]) -> Option<FindingKind> {
        let mut verifier = verifier;
        events
            .iter()
            .find_map(|event| verifier.check(event).err())
            .map(|finding| finding.kind)
    }

    #[test]
    fn recorded_time_may_step_back_only_as_far_as_the_store_allows() {
        let three_seconds_back = [
            first_event("contact-00000000-0000-0000-0000-000000000001", 1, 10_000),
            first_event("contact-00000000-0000-0000-0000-000000000002", 2, 7_000),
        ];
        assert_eq!(
            walk(Verifier::new(None), &three_seconds_back),
            Some(FindingKind::RecordedAtWentBack)
        );
        assert_eq!(
            walk(
                Verifier::new(None).tolerating_recorded_at_skew(5_000),
                &three_seconds_back
            ),
            None
        );
        assert_eq!(
            walk(
                Verifier::new(None).tolerating_recorded_at_skew(1_000),
                &three_seconds_back
            ),
            Some(FindingKind::RecordedAtWentBack)
        );
        // Steps back within the tolerance never add up past it.
        let drifting = [
            first_event("contact-00000000-0000-0000-0000-000000000001", 1, 10_000),
            first_event("contact-00000000-0000-0000-0000-000000000002", 2, 6_000),
            first_event("contact-00000000-0000-0000-0000-000000000003", 3, 2_000),
        ];
        assert_eq!(
            walk(Verifier::new(None).tolerating_recorded_at_skew(5_000), &drifting),
            Some(FindingKind::RecordedAtWentBack)
        );
    }
}
