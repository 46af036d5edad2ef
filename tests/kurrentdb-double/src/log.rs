//! The in-memory transaction log: every record in one ordered list with sparse
//! positions, each stream an index of its revisions into that list, and the
//! rules the server's index writer applies before it writes (`decide`).
//!
//! Pure and synchronous: the gRPC layer holds it behind a mutex, for short
//! critical sections only, and never across an await.

use std::collections::{HashMap, HashSet};
use std::fmt;
use std::sync::Arc;

use bytes::Bytes;
use uuid::Uuid;

/// The most records the log holds; an append past it is refused.
pub(crate) const EVENTS_MAX: usize = 5_000_000;
/// The most payload bytes (data, custom metadata, names) the log holds.
pub(crate) const BYTES_MAX: u64 = 2 * 1024 * 1024 * 1024;
/// Where the first record starts, as on a real node, whose log opens with an
/// epoch record: position 0 is never an event.
pub(crate) const FIRST_POSITION: u64 = 1_536;
/// A record's fixed overhead in the log, roughly a LogV2 prepare record's
/// header and length fields: positions grow by this plus the record's bytes.
const RECORD_HEADER_BYTES: u64 = 88;
/// The revision of a tombstone, `EventNumber.DeletedStream` (long.MaxValue).
pub(crate) const TOMBSTONE_REVISION: u64 = i64::MAX as u64;
/// The `$tb` (truncate before) a soft delete writes: the whole stream.
const SOFT_DELETED: u64 = i64::MAX as u64;
/// The event type of a tombstone.
pub(crate) const TOMBSTONE_TYPE: &str = "$streamDeleted";
/// The event type of a stream metadata record.
pub(crate) const METADATA_TYPE: &str = "$metadata";

/// One record of the log: an event, a stream's metadata or a tombstone.
#[derive(Debug)]
pub(crate) struct Record {
    /// The record's pre-position; the server gives commit == prepare == this
    /// for events written without an explicit transaction.
    pub position: u64,
    /// Where the next record starts: a backward `$all` read from a position
    /// returns the records that end at or before it.
    pub post_position: u64,
    pub stream: Arc<str>,
    pub revision: u64,
    pub id: Uuid,
    /// Shared between the records of one type: most logs have few types.
    pub event_type: Arc<str>,
    pub is_json: bool,
    /// Ticks (100 ns) since the Unix epoch, as the server sends "created".
    pub created_ticks: i64,
    pub data: Bytes,
    pub custom_metadata: Bytes,
}

/// The bytes a record takes in the log, from which positions grow.
pub(crate) fn record_bytes(stream: &str, event_type: &str, data: &[u8], custom_metadata: &[u8]) -> u64 {
    let payload = stream.len() + event_type.len() + data.len() + custom_metadata.len();
    RECORD_HEADER_BYTES + payload as u64
}

/// The metadata stream of a stream, where soft deletes write.
pub(crate) fn metastream(stream: &str) -> String {
    format!("$${stream}")
}

/// What an append, delete or tombstone expects of the stream.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Expected {
    Any,
    NoStream,
    StreamExists,
    Revision(u64),
}

impl Expected {
    /// The server's `long` form, as it prints in a wrong-expected-version status.
    pub(crate) fn as_version(self) -> i64 {
        match self {
            Expected::Any => -2,
            Expected::NoStream => -1,
            Expected::StreamExists => -4,
            Expected::Revision(revision) => i64::try_from(revision).unwrap_or(i64::MAX),
        }
    }
}

/// An event the client proposes.
#[derive(Debug)]
pub(crate) struct Proposed {
    pub id: Uuid,
    pub event_type: String,
    pub is_json: bool,
    pub data: Bytes,
    pub custom_metadata: Bytes,
}

/// A successful append: the revision and position to answer with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Committed {
    /// The revision of the last event written (or found, for an idempotent
    /// retry); `None` for an empty append to a stream that does not exist.
    pub current_revision: Option<u64>,
    /// The position of that event; `None` when nothing was written.
    pub position: Option<u64>,
    /// Whether new records went into the log (not an idempotent retry).
    pub wrote: bool,
}

/// Why the log refuses a write.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// The stream is not where the caller expects; `current` is its last
    /// revision (`None`: no stream).
    WrongExpectedVersion { current: Option<u64> },
    /// The stream is tombstoned, or soft-deleted and `StreamExists` expected.
    StreamDeleted,
    /// The log is at `EVENTS_MAX` records or `BYTES_MAX` bytes.
    Full,
}

/// What the index writer decides for a write, before writing anything.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Decision {
    /// Write at the end; `recreate` when the stream was soft-deleted, which
    /// first writes new metadata making the new events visible.
    Write {
        recreate: bool,
    },
    /// Every proposed event is already in the stream: answer as if written.
    Idempotent {
        last_index: usize,
    },
    Refuse(Refusal),
}

/// What a stream looks like to a reader.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StreamView {
    /// Tombstoned: reads and subscriptions answer "stream deleted".
    Deleted,
    /// Never written, or soft-deleted with nothing after.
    NotFound,
    /// Revisions `first..=last` can be read.
    Found { first: u64, last: u64 },
}

#[derive(Debug, Default)]
struct Stream {
    /// Log index of each revision: `revisions[r]` is revision `r`.
    revisions: Vec<usize>,
    /// The first revision readers see (`$tb`); `SOFT_DELETED` hides them all.
    truncate_before: u64,
    /// Log index of the tombstone, once hard-deleted.
    tombstone: Option<usize>,
}

impl Stream {
    fn last_revision(&self) -> Option<u64> {
        (self.revisions.len() as u64).checked_sub(1)
    }

    fn is_soft_deleted(&self) -> bool {
        self.truncate_before == SOFT_DELETED
    }

    fn next_revision(&self) -> u64 {
        self.revisions.len() as u64
    }
}

/// The whole store.
pub(crate) struct Log {
    records: Vec<Arc<Record>>,
    streams: HashMap<Arc<str>, Stream>,
    event_types: HashSet<Arc<str>>,
    /// Where each event id was last written, for idempotent retries.
    ids: HashMap<Uuid, usize>,
    next_position: u64,
    bytes: u64,
    events_max: usize,
    bytes_max: u64,
}

impl Default for Log {
    fn default() -> Self {
        Log::with_limits(EVENTS_MAX, BYTES_MAX)
    }
}

/// Counts only: the log may hold millions of records.
impl fmt::Debug for Log {
    fn fmt(&self, formatter: &mut fmt::Formatter<'_>) -> fmt::Result {
        formatter
            .debug_struct("Log")
            .field("records", &self.records.len())
            .field("streams", &self.streams.len())
            .field("next_position", &self.next_position)
            .field("bytes", &self.bytes)
            .finish_non_exhaustive()
    }
}

impl Log {
    fn with_limits(events_max: usize, bytes_max: u64) -> Self {
        Log {
            records: Vec::new(),
            streams: HashMap::new(),
            event_types: HashSet::new(),
            ids: HashMap::new(),
            next_position: FIRST_POSITION,
            bytes: 0,
            events_max,
            bytes_max,
        }
    }

    /// Records in the log, every kind.
    pub(crate) fn len(&self) -> usize {
        self.records.len()
    }

    /// Appends `proposed` to `stream` if `expected` holds, or answers as the
    /// first time for a retry of events already written.
    pub(crate) fn append(
        &mut self,
        stream: &str,
        expected: Expected,
        proposed: Vec<Proposed>,
        created_ticks: i64,
    ) -> Result<Committed, Refusal> {
        let ids: Vec<Uuid> = proposed.iter().map(|event| event.id).collect();
        match self.decide(stream, expected, &ids) {
            Decision::Refuse(refusal) => Err(refusal),
            Decision::Idempotent { last_index } => {
                let record = &self.records[last_index];
                Ok(Committed {
                    current_revision: Some(record.revision),
                    position: Some(record.position),
                    wrote: false,
                })
            }
            Decision::Write { recreate } => self.write(stream, proposed, recreate, created_ticks),
        }
    }

    /// Soft delete: hides the stream's events behind metadata (`$tb`), so it
    /// reads as not found until a new append recreates it.
    pub(crate) fn delete(&mut self, stream: &str, expected: Expected, created_ticks: i64) -> Result<u64, Refusal> {
        if let Decision::Refuse(refusal) = self.decide(stream, expected, &[]) {
            return Err(refusal);
        }
        self.ensure_room(1, metastream(stream).len() as u64 + 32)?;
        let data = Bytes::from(format!("{{\"$tb\":{SOFT_DELETED}}}"));
        let position = self.push_metadata(stream, data, created_ticks);
        self.streams.entry(Arc::from(stream)).or_default().truncate_before = SOFT_DELETED;
        Ok(position)
    }

    /// Hard delete: writes a tombstone; the stream can never be read or
    /// written again.
    pub(crate) fn tombstone(&mut self, stream: &str, expected: Expected, created_ticks: i64) -> Result<u64, Refusal> {
        if let Decision::Refuse(refusal) = self.decide(stream, expected, &[]) {
            return Err(refusal);
        }
        self.ensure_room(1, stream.len() as u64)?;
        let name = self.stream_key(stream);
        let event_type = self.event_type(TOMBSTONE_TYPE);
        let index = self.push(Record {
            position: 0,
            post_position: 0,
            stream: name.clone(),
            revision: TOMBSTONE_REVISION,
            id: Uuid::new_v4(),
            event_type,
            is_json: false,
            created_ticks,
            data: Bytes::new(),
            custom_metadata: Bytes::new(),
        });
        self.streams.entry(name).or_default().tombstone = Some(index);
        Ok(self.records[index].position)
    }

    /// The rules of the server's `IndexWriter.CheckCommit`, for one stream.
    fn decide(&self, stream: &str, expected: Expected, ids: &[Uuid]) -> Decision {
        let state = self.streams.get(stream);
        if state.is_some_and(|state| state.tombstone.is_some()) {
            return Decision::Refuse(Refusal::StreamDeleted);
        }
        let current = state.and_then(Stream::last_revision);
        let soft_deleted = state.is_some_and(Stream::is_soft_deleted);
        match expected {
            Expected::StreamExists => {
                if soft_deleted {
                    return Decision::Refuse(Refusal::StreamDeleted);
                }
                // A stream with only metadata exists too, as on the server.
                if current.is_none() && self.stream_last(&metastream(stream)).is_none() {
                    return Decision::Refuse(Refusal::WrongExpectedVersion { current });
                }
                self.decide_by_ids(stream, ids, soft_deleted)
            }
            Expected::Any => self.decide_by_ids(stream, ids, soft_deleted),
            Expected::NoStream => self.decide_at(state, None, current, ids, true),
            Expected::Revision(revision) => self.decide_at(state, Some(revision), current, ids, false),
        }
    }

    /// `Any` and `StreamExists`: a retry is recognised by its ids alone,
    /// wherever they are in the stream. When the first id is unknown the
    /// events are new; when only some are known it is a partial retry.
    fn decide_by_ids(&self, stream: &str, ids: &[Uuid], soft_deleted: bool) -> Decision {
        let mut last_index = None;
        for (offset, id) in ids.iter().enumerate() {
            let found = self
                .ids
                .get(id)
                .copied()
                .filter(|&index| &*self.records[index].stream == stream);
            match found {
                Some(index) => last_index = Some(index),
                None if offset == 0 => return Decision::Write { recreate: soft_deleted },
                None => {
                    let current = self.stream_last(stream);
                    return Decision::Refuse(Refusal::WrongExpectedVersion { current });
                }
            }
        }
        match last_index {
            Some(last_index) => Decision::Idempotent { last_index },
            None => Decision::Write { recreate: soft_deleted },
        }
    }

    /// `NoStream` (expected `None`) and an exact revision: a retry carries the
    /// same ids, in order, at the revisions right after the expected one.
    fn decide_at(
        &self,
        state: Option<&Stream>,
        expected: Option<u64>,
        current: Option<u64>,
        ids: &[Uuid],
        no_stream: bool,
    ) -> Decision {
        let soft_deleted = state.is_some_and(Stream::is_soft_deleted);
        let refuse = Decision::Refuse(Refusal::WrongExpectedVersion { current });
        // Versions as the server counts them: -1 is "no stream".
        let expected_version = expected.map_or(-1, i128::from);
        let current_version = current.map_or(-1, i128::from);
        if expected_version > current_version {
            return refuse;
        }
        if expected_version == current_version {
            return Decision::Write { recreate: soft_deleted };
        }
        let first_revision = expected.map_or(0, |revision| revision + 1);
        let mut last_index = None;
        for (offset, id) in ids.iter().enumerate() {
            let revision = first_revision + offset as u64;
            let index = state.and_then(|state| state.revisions.get(revision as usize)).copied();
            match index.filter(|&index| self.records[index].id == *id) {
                Some(index) => last_index = Some(index),
                None if offset == 0 && no_stream && soft_deleted => return Decision::Write { recreate: true },
                None => return refuse,
            }
        }
        match last_index {
            Some(last_index) => Decision::Idempotent { last_index },
            None if no_stream && soft_deleted => Decision::Write { recreate: true },
            None => refuse,
        }
    }

    fn write(
        &mut self,
        stream: &str,
        proposed: Vec<Proposed>,
        recreate: bool,
        created_ticks: i64,
    ) -> Result<Committed, Refusal> {
        let current = self.stream_last(stream);
        if proposed.is_empty() {
            return Ok(Committed {
                current_revision: current,
                position: None,
                wrote: false,
            });
        }
        let bytes: u64 = proposed
            .iter()
            .map(|event| record_bytes(stream, &event.event_type, &event.data, &event.custom_metadata))
            .sum();
        self.ensure_room(proposed.len() + usize::from(recreate), bytes)?;
        let name = self.stream_key(stream);
        if recreate {
            // The server rewrites `$tb` to the first new revision, so the new
            // events are visible and the old ones stay hidden.
            let first = current.map_or(0, |revision| revision + 1);
            self.push_metadata(stream, Bytes::from(format!("{{\"$tb\":{first}}}")), created_ticks);
            self.streams.entry(name.clone()).or_default().truncate_before = first;
        }
        let mut last = None;
        for event in proposed {
            let revision = self.streams.get(stream).map_or(0, Stream::next_revision);
            let event_type = self.event_type(&event.event_type);
            let index = self.push(Record {
                position: 0,
                post_position: 0,
                stream: name.clone(),
                revision,
                id: event.id,
                event_type,
                is_json: event.is_json,
                created_ticks,
                data: event.data,
                custom_metadata: event.custom_metadata,
            });
            self.streams.entry(name.clone()).or_default().revisions.push(index);
            self.ids.insert(self.records[index].id, index);
            last = Some(index);
        }
        let last = last.map(|index| &self.records[index]);
        Ok(Committed {
            current_revision: last.map(|record| record.revision),
            position: last.map(|record| record.position),
            wrote: true,
        })
    }

    fn ensure_room(&self, records: usize, bytes: u64) -> Result<(), Refusal> {
        let records_after = self.records.len().saturating_add(records);
        let bytes_after = self.bytes.saturating_add(bytes);
        if records_after > self.events_max || bytes_after > self.bytes_max {
            return Err(Refusal::Full);
        }
        Ok(())
    }

    /// Writes a `$metadata` record to the stream's metastream.
    fn push_metadata(&mut self, stream: &str, data: Bytes, created_ticks: i64) -> u64 {
        let meta = metastream(stream);
        let name = self.stream_key(&meta);
        let revision = self.streams.get(meta.as_str()).map_or(0, Stream::next_revision);
        let event_type = self.event_type(METADATA_TYPE);
        let index = self.push(Record {
            position: 0,
            post_position: 0,
            stream: name.clone(),
            revision,
            id: Uuid::new_v4(),
            event_type,
            is_json: true,
            created_ticks,
            data,
            custom_metadata: Bytes::new(),
        });
        self.streams.entry(name).or_default().revisions.push(index);
        self.records[index].position
    }

    /// The name a stream's records share.
    fn stream_key(&self, stream: &str) -> Arc<str> {
        match self.streams.get_key_value(stream) {
            Some((name, _)) => name.clone(),
            None => Arc::from(stream),
        }
    }

    /// The shared name of an event type.
    fn event_type(&mut self, name: &str) -> Arc<str> {
        if let Some(shared) = self.event_types.get(name) {
            return shared.clone();
        }
        let shared: Arc<str> = Arc::from(name);
        self.event_types.insert(shared.clone());
        shared
    }

    /// Places a record at the end of the log, giving it its position.
    fn push(&mut self, mut record: Record) -> usize {
        let size = record_bytes(
            &record.stream,
            &record.event_type,
            &record.data,
            &record.custom_metadata,
        );
        record.position = self.next_position;
        record.post_position = self.next_position + size;
        self.next_position = record.post_position;
        self.bytes += size - RECORD_HEADER_BYTES;
        self.records.push(Arc::new(record));
        self.records.len() - 1
    }

    fn stream_last(&self, stream: &str) -> Option<u64> {
        self.streams.get(stream).and_then(Stream::last_revision)
    }

    /// How a stream reads now.
    pub(crate) fn stream_view(&self, stream: &str) -> StreamView {
        let Some(state) = self.streams.get(stream) else {
            return StreamView::NotFound;
        };
        if state.tombstone.is_some() {
            return StreamView::Deleted;
        }
        match state.last_revision() {
            Some(last) if last >= state.truncate_before => StreamView::Found {
                first: state.truncate_before,
                last,
            },
            _ => StreamView::NotFound,
        }
    }

    /// Up to `count` readable events of `stream` from revision `from` up.
    pub(crate) fn stream_forward(&self, stream: &str, from: u64, count: usize) -> Vec<Arc<Record>> {
        let Some(state) = self.streams.get(stream) else {
            return Vec::new();
        };
        let start = from.max(state.truncate_before).min(state.next_revision()) as usize;
        let end = start.saturating_add(count).min(state.revisions.len());
        state.revisions[start..end]
            .iter()
            .map(|&index| self.records[index].clone())
            .collect()
    }

    /// Up to `count` readable events of `stream` from revision `from` down.
    pub(crate) fn stream_backward(&self, stream: &str, from: u64, count: usize) -> Vec<Arc<Record>> {
        let Some(state) = self.streams.get(stream) else {
            return Vec::new();
        };
        let Some(last) = state.last_revision() else {
            return Vec::new();
        };
        let top = from.min(last);
        if top < state.truncate_before {
            return Vec::new();
        }
        let bottom = state.truncate_before.max((top + 1).saturating_sub(count as u64));
        (bottom..=top)
            .rev()
            .map(|revision| self.records[state.revisions[revision as usize]].clone())
            .collect()
    }

    /// The stream's tombstone, if it has one.
    pub(crate) fn tombstone_of(&self, stream: &str) -> Option<Arc<Record>> {
        let index = self.streams.get(stream)?.tombstone?;
        Some(self.records[index].clone())
    }

    /// The last revision written to the stream, hidden or not.
    pub(crate) fn last_revision(&self, stream: &str) -> Option<u64> {
        self.stream_last(stream)
    }

    /// Up to `count` records from log index `from` on.
    pub(crate) fn records_from(&self, from: usize, count: usize) -> Vec<Arc<Record>> {
        let start = from.min(self.records.len());
        let end = start.saturating_add(count).min(self.records.len());
        self.records[start..end].to_vec()
    }

    /// Up to `count` records just before log index `before`, newest first.
    pub(crate) fn records_before(&self, before: usize, count: usize) -> Vec<Arc<Record>> {
        let end = before.min(self.records.len());
        let start = end.saturating_sub(count);
        self.records[start..end].iter().rev().cloned().collect()
    }

    /// The index of the first record at or after `(commit, prepare)`:
    /// forward reads include the record at their start position.
    pub(crate) fn index_at_or_after(&self, commit: u64, prepare: u64) -> usize {
        self.records
            .partition_point(|record| (record.position, record.position) < (commit, prepare))
    }

    /// The index of the first record strictly after `(commit, prepare)`:
    /// subscriptions start after their checkpoint.
    pub(crate) fn index_after(&self, commit: u64, prepare: u64) -> usize {
        self.records
            .partition_point(|record| (record.position, record.position) <= (commit, prepare))
    }

    /// How many records end at or before `(commit, prepare)`: a backward read
    /// from an event's position starts with the event before it.
    pub(crate) fn count_ending_by(&self, commit: u64, prepare: u64) -> usize {
        self.records
            .partition_point(|record| (record.post_position, record.post_position) <= (commit, prepare))
    }

    /// The position of the last record, if any.
    pub(crate) fn last_position(&self) -> Option<u64> {
        self.records.last().map(|record| record.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: Uuid) -> Proposed {
        Proposed {
            id,
            event_type: "ContactRegistered".to_owned(),
            is_json: true,
            data: Bytes::from_static(b"{}"),
            custom_metadata: Bytes::new(),
        }
    }

    fn ids(count: usize) -> Vec<Uuid> {
        (0..count).map(|_| Uuid::new_v4()).collect()
    }

    fn append(log: &mut Log, stream: &str, expected: Expected, ids: &[Uuid]) -> Result<Committed, Refusal> {
        log.append(stream, expected, ids.iter().copied().map(event).collect(), 0)
    }

    #[test]
    fn positions_are_sparse_and_grow_with_the_records_size() {
        let mut log = Log::default();
        let first = append(&mut log, "a", Expected::Any, &ids(1)).expect("append");
        let second = append(&mut log, "a", Expected::Any, &ids(1)).expect("append");
        let (first, second) = (first.position.expect("position"), second.position.expect("position"));
        assert_eq!(first, FIRST_POSITION);
        assert_eq!(second - first, record_bytes("a", "ContactRegistered", b"{}", b""));
        assert!(second - first > 1);
    }

    #[test]
    fn an_exact_retry_answers_the_first_revision_and_position_and_writes_nothing() {
        let mut log = Log::default();
        let batch = ids(3);
        let first = append(&mut log, "a", Expected::NoStream, &batch).expect("append");
        append(&mut log, "a", Expected::Revision(2), &ids(1)).expect("append");
        let retry = append(&mut log, "a", Expected::NoStream, &batch).expect("retry");
        assert_eq!(retry.current_revision, first.current_revision);
        assert_eq!(retry.position, first.position);
        assert!(!retry.wrote);
        assert_eq!(log.len(), 4);
    }

    #[test]
    fn a_partial_retry_is_a_wrong_expected_version() {
        let mut log = Log::default();
        let batch = ids(2);
        append(&mut log, "a", Expected::NoStream, &batch).expect("append");
        let partial = [batch[0], Uuid::new_v4()];
        let refused = append(&mut log, "a", Expected::NoStream, &partial);
        assert_eq!(refused, Err(Refusal::WrongExpectedVersion { current: Some(1) }));
        let longer = [batch[0], batch[1], Uuid::new_v4()];
        let refused = append(&mut log, "a", Expected::NoStream, &longer);
        assert_eq!(refused, Err(Refusal::WrongExpectedVersion { current: Some(1) }));
    }

    #[test]
    fn with_any_a_retry_is_recognised_by_its_ids() {
        let mut log = Log::default();
        let batch = ids(2);
        let first = append(&mut log, "a", Expected::Any, &batch).expect("append");
        append(&mut log, "a", Expected::Any, &ids(1)).expect("append");
        let retry = append(&mut log, "a", Expected::Any, &batch).expect("retry");
        assert_eq!(
            (retry.current_revision, retry.position),
            (first.current_revision, first.position)
        );
        let partial = [batch[0], Uuid::new_v4()];
        let refused = append(&mut log, "a", Expected::Any, &partial);
        assert_eq!(refused, Err(Refusal::WrongExpectedVersion { current: Some(2) }));
    }

    #[test]
    fn a_soft_deleted_stream_reads_as_not_found_and_is_recreated_from_the_next_revision() {
        let mut log = Log::default();
        append(&mut log, "a", Expected::Any, &ids(2)).expect("append");
        log.delete("a", Expected::Revision(1), 0).expect("delete");
        assert_eq!(log.stream_view("a"), StreamView::NotFound);
        assert_eq!(
            append(&mut log, "a", Expected::StreamExists, &ids(1)),
            Err(Refusal::StreamDeleted)
        );
        let recreated = append(&mut log, "a", Expected::NoStream, &ids(1)).expect("recreate");
        assert_eq!(recreated.current_revision, Some(2));
        assert_eq!(log.stream_view("a"), StreamView::Found { first: 2, last: 2 });
        assert_eq!(log.stream_forward("a", 0, 10).len(), 1);
    }

    #[test]
    fn a_tombstoned_stream_refuses_every_write() {
        let mut log = Log::default();
        append(&mut log, "a", Expected::Any, &ids(1)).expect("append");
        log.tombstone("a", Expected::Any, 0).expect("tombstone");
        assert_eq!(log.stream_view("a"), StreamView::Deleted);
        for expected in [
            Expected::Any,
            Expected::NoStream,
            Expected::StreamExists,
            Expected::Revision(0),
        ] {
            assert_eq!(append(&mut log, "a", expected, &ids(1)), Err(Refusal::StreamDeleted));
        }
        assert_eq!(log.delete("a", Expected::Any, 0), Err(Refusal::StreamDeleted));
    }

    #[test]
    fn a_full_log_refuses_an_append_and_writes_none_of_it() {
        let mut log = Log::with_limits(3, BYTES_MAX);
        append(&mut log, "a", Expected::Any, &ids(2)).expect("append");
        assert_eq!(append(&mut log, "a", Expected::Any, &ids(2)), Err(Refusal::Full));
        assert_eq!(log.len(), 2);
        assert_eq!(log.stream_view("a"), StreamView::Found { first: 0, last: 1 });
        append(&mut log, "a", Expected::Any, &ids(1)).expect("the last place");
    }

    #[test]
    fn backward_reads_from_a_position_start_with_the_record_before_it() {
        let mut log = Log::default();
        append(&mut log, "a", Expected::Any, &ids(3)).expect("append");
        let second = log.records_from(1, 1)[0].position;
        assert_eq!(log.index_at_or_after(second, second), 1);
        assert_eq!(log.index_after(second, second), 2);
        assert_eq!(log.count_ending_by(second, second), 1);
    }
}
