//! The single writer. It owns the write connection and turns every append
//! queued while the previous commit ran into one transaction (group commit):
//! one fsync acknowledges many appends.
//!
//! Every reason to refuse an append (expected version, event ids already
//! used) is checked before its first insert, so a refused append writes
//! nothing and its neighbours in the batch are untouched without the cost
//! of a savepoint per append. An insert that still fails is an I/O fault:
//! the whole batch rolls back and every append in it gets the error.

use std::collections::HashMap;

use rapport_domain::hashing::{GENESIS, Hash, HashedFields, event_hash, ledger_digest, pii_digest};
use rapport_domain::{Position, StreamName};
use rusqlite::{Connection, OptionalExtension, Transaction, TransactionBehavior, params};
use tokio::sync::{mpsc, oneshot, watch};
use uuid::Uuid;

use super::schema::{Tail, sqlite_error};
use crate::sealing::{ContactKey, MasterKey};
use crate::{AppendResult, ExpectedVersion, PreparedEvent, SharedClock, StoreError};

/// One transaction holds at most this many appends or events.
const BATCH_APPENDS_MAX: usize = 1_024;
const BATCH_EVENTS_MAX: usize = 50_000;
/// How often clearing an erasure's write-ahead log is tried again.
const WAL_CLEARING_RETRY: std::time::Duration = std::time::Duration::from_secs(1);
/// Stream heads remembered between transactions (about 120 bytes each).
const HEAD_CACHE_MAX: usize = 200_000;

const INSERT_EVENT: &str = "
INSERT INTO events (position, stream, version, event_id, event_type, schema_version,
                    occurred_at, recorded_at, actor, correlation_id, causation_id,
                    payload, pii_digest, hash, ledger_digest)
VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)";
const INSERT_PII: &str = "INSERT INTO pii (position, sealed, key_id) VALUES (?1, ?2, ?3)";
const CONTACT_KEY: &str = "
SELECT k.id, k.wrapped
FROM events e JOIN pii p ON p.position = e.position JOIN contact_keys k ON k.id = p.key_id
WHERE e.stream = ?1 LIMIT 1";
const INSERT_CONTACT_KEY: &str = "INSERT INTO contact_keys (id, stream, wrapped) VALUES (?1, ?2, ?3)";
const WAS_ERASED: &str = "SELECT 1 FROM events WHERE stream = ?1 AND event_type = 'ContactErased' LIMIT 1";
const DESTROY_CONTACT_KEY: &str = "
DELETE FROM contact_keys WHERE id IN (
    SELECT p.key_id FROM events e JOIN pii p ON p.position = e.position WHERE e.stream = ?1
)";
const DROP_SEALED_PII: &str = "DELETE FROM pii WHERE position IN (SELECT position FROM events WHERE stream = ?1)";
const FIND_EVENT: &str = "SELECT stream, version, position FROM events WHERE event_id = ?1";
/// Only for ids already in the ledger (a retry): what it recorded.
const RECORDED_CONTENT: &str = "
SELECT e.event_type, e.actor, e.payload, p.sealed, k.wrapped
FROM events e LEFT JOIN pii p ON p.position = e.position LEFT JOIN contact_keys k ON k.id = p.key_id
WHERE e.position = ?1";
const STREAM_HEAD: &str = "SELECT version, hash FROM events WHERE stream = ?1 ORDER BY version DESC LIMIT 1";

/// One atomic append: a stream, what the caller expects of it, its events.
#[derive(Debug)]
pub struct PendingAppend {
    pub stream: StreamName,
    pub expected: ExpectedVersion,
    pub events: Vec<PreparedEvent>,
}

/// Appends sent together and answered together, in order; each is atomic
/// and refused or written on its own.
#[derive(Debug)]
pub struct AppendRequest {
    pub appends: Vec<PendingAppend>,
    /// All appends or none: the first refusal undoes the others.
    pub all_or_nothing: bool,
    pub reply: oneshot::Sender<Vec<Result<AppendResult, StoreError>>>,
}

impl AppendRequest {
    fn event_count(&self) -> usize {
        self.appends.iter().map(|append| append.events.len()).sum()
    }
}

#[derive(Clone, Copy, Debug)]
struct StreamHead {
    version: u64,
    hash: Hash,
}

/// Why an append was not applied: refused before writing anything, or a
/// fault in the middle of writing.
enum Refusal {
    Refused(StoreError),
    Fault(StoreError),
}

impl From<StoreError> for Refusal {
    /// Errors from the checks before the first insert are refusals.
    fn from(error: StoreError) -> Self {
        Refusal::Refused(error)
    }
}

/// What one append changed, to be kept only if its transaction commits.
enum Applied {
    Written {
        stream: String,
        head: StreamHead,
        tail: Tail,
        result: AppendResult,
    },
    AlreadyWritten(AppendResult),
}

#[derive(Debug)]
pub struct Writer {
    connection: Connection,
    heads: HashMap<String, StreamHead>,
    tail: Tail,
    commits: std::sync::Arc<watch::Sender<Option<Position>>>,
    clock: SharedClock,
    master: MasterKey,
    /// Since when an erasure's write-ahead log is still to be cleared.
    clearing_pending_since: Option<std::time::Instant>,
}

impl Writer {
    pub fn new(
        connection: Connection,
        tail: Tail,
        commits: std::sync::Arc<watch::Sender<Option<Position>>>,
        clock: SharedClock,
        master: MasterKey,
    ) -> Self {
        Writer {
            connection,
            heads: HashMap::new(),
            tail,
            commits,
            clock,
            master,
            clearing_pending_since: None,
        }
    }

    /// Serves appends until every sender is gone, then returns; appends
    /// already queued are still written (graceful shutdown).
    pub fn run(mut self, mut requests: mpsc::Receiver<AppendRequest>) {
        let mut batch = Vec::with_capacity(BATCH_APPENDS_MAX);
        while let Some(first) = requests.blocking_recv() {
            let mut events = first.event_count();
            batch.push(first);
            while batch.len() < BATCH_APPENDS_MAX && events < BATCH_EVENTS_MAX {
                match requests.try_recv() {
                    Ok(next) => {
                        events += next.event_count();
                        batch.push(next);
                    }
                    Err(_) => break,
                }
            }
            self.commit_batch(&mut batch);
        }
    }

    fn commit_batch(&mut self, batch: &mut Vec<AppendRequest>) {
        // Ledger time never goes backwards, so "as of" an instant is a prefix.
        let recorded_at_millis = self.clock.now().as_millis().max(self.tail.recorded_at_millis);
        let mut tail = Tail {
            recorded_at_millis,
            ..self.tail
        };
        let mut written_heads = HashMap::new();
        let outcome = write_batch(
            &mut self.connection,
            &self.master,
            &self.heads,
            &mut written_heads,
            &mut tail,
            batch,
        );
        let erasing = batch
            .iter()
            .flat_map(|request| &request.appends)
            .any(|append| append.events.iter().any(|event| event.erases_personal_data));
        match outcome {
            Ok(results) => {
                if self.heads.len() + written_heads.len() > HEAD_CACHE_MAX {
                    self.heads.clear();
                }
                self.heads.extend(written_heads);
                let moved = tail.position != self.tail.position;
                self.tail = tail;
                if moved {
                    self.commits
                        .send_replace(Some(Position::from_sequence(tail.position as u64)));
                }
                for (request, results) in batch.drain(..).zip(results) {
                    // The caller may have gone away; its appends stand regardless.
                    let _ = request.reply.send(results);
                }
                // After the answers: the log is cleared on the writer's time,
                // not its callers'.
                if erasing || self.clearing_due() {
                    self.clear_write_ahead_log();
                }
            }
            Err(error) => {
                tracing::error!(%error, "ledger commit failed; the batch was rolled back");
                for request in batch.drain(..) {
                    let failed = request.appends.iter().map(|_| Err(error.clone())).collect();
                    let _ = request.reply.send(failed);
                }
            }
        }
    }
}

impl Writer {
    /// Whether an erasure's log is still to be cleared and a second has
    /// passed since the last try.
    fn clearing_due(&self) -> bool {
        self.clearing_pending_since
            .is_some_and(|tried| tried.elapsed() >= WAL_CLEARING_RETRY)
    }

    /// After an erasure the destroyed key's old pages may still sit in the
    /// write-ahead log: copy it into the file (where `secure_delete` zeroed
    /// them) and truncate it. A reader in the middle of a scan can keep it
    /// from finishing; the writer never waits for one (no busy wait), and
    /// tries again after a later commit, at most once a second, until done.
    fn clear_write_ahead_log(&mut self) {
        let _ = self.connection.busy_timeout(std::time::Duration::ZERO);
        let outcome = self
            .connection
            .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| row.get::<_, i64>(0));
        let _ = self.connection.busy_timeout(super::schema::BUSY_TIMEOUT);
        self.clearing_pending_since = (!matches!(outcome, Ok(0))).then(std::time::Instant::now);
        match outcome {
            Ok(0) => {}
            Ok(_) => {
                tracing::warn!("a reader kept the write-ahead log from being cleared after an erasure; trying again")
            }
            Err(error) => tracing::warn!(%error, "clearing the write-ahead log after an erasure failed; trying again"),
        }
    }
}

fn write_batch(
    connection: &mut Connection,
    master: &MasterKey,
    cached_heads: &HashMap<String, StreamHead>,
    written_heads: &mut HashMap<String, StreamHead>,
    tail: &mut Tail,
    batch: &[AppendRequest],
) -> Result<Vec<Vec<Result<AppendResult, StoreError>>>, StoreError> {
    let io = |e| sqlite_error(e, None);
    let transaction = connection
        .transaction_with_behavior(TransactionBehavior::Immediate)
        .map_err(io)?;
    let mut results = Vec::with_capacity(batch.len());
    for request in batch {
        results.push(write_request(
            &transaction,
            master,
            cached_heads,
            written_heads,
            tail,
            request,
        )?);
    }
    transaction.commit().map_err(io)?;
    Ok(results)
}

type Answers = Vec<Result<AppendResult, StoreError>>;

/// Writes one request's appends. Each on its own, a refused one leaves
/// the others in place. All or nothing, a savepoint undoes the rows of the
/// earlier ones when a later one is refused, the heads and tail they moved
/// are put back, and every answer is the refusal, with its append's index.
fn write_request(
    transaction: &Transaction<'_>,
    master: &MasterKey,
    cached_heads: &HashMap<String, StreamHead>,
    written_heads: &mut HashMap<String, StreamHead>,
    tail: &mut Tail,
    request: &AppendRequest,
) -> Result<Answers, StoreError> {
    let io = |e| sqlite_error(e, None);
    let all_or_nothing = request.all_or_nothing;
    if all_or_nothing {
        transaction.execute_batch("SAVEPOINT all_or_nothing").map_err(io)?;
    }
    let tail_before = *tail;
    let mut moved_heads: Vec<(String, Option<StreamHead>)> = Vec::new();
    let mut answers = Vec::with_capacity(request.appends.len());
    for (index, append) in request.appends.iter().enumerate() {
        match append_one(transaction, master, cached_heads, written_heads, *tail, append) {
            Ok(Applied::Written {
                stream,
                head,
                tail: new_tail,
                result,
            }) => {
                if all_or_nothing {
                    moved_heads.push((stream.clone(), written_heads.insert(stream, head)));
                } else {
                    written_heads.insert(stream, head);
                }
                *tail = new_tail;
                answers.push(Ok(result));
            }
            Ok(Applied::AlreadyWritten(result)) => answers.push(Ok(result)),
            Err(Refusal::Refused(error)) if all_or_nothing => {
                transaction
                    .execute_batch("ROLLBACK TO all_or_nothing; RELEASE all_or_nothing")
                    .map_err(io)?;
                *tail = tail_before;
                for (stream, before) in moved_heads.into_iter().rev() {
                    match before {
                        Some(head) => written_heads.insert(stream, head),
                        None => written_heads.remove(&stream),
                    };
                }
                let refusal = StoreError::InBatch {
                    index,
                    source: Box::new(error),
                };
                return Ok(request.appends.iter().map(|_| Err(refusal.clone())).collect());
            }
            Err(Refusal::Refused(error)) => answers.push(Err(error)),
            // Part of this append may be written: only a rollback of the
            // whole transaction undoes it.
            Err(Refusal::Fault(error)) => return Err(error),
        }
    }
    if all_or_nothing {
        transaction.execute_batch("RELEASE all_or_nothing").map_err(io)?;
    }
    Ok(answers)
}

fn append_one(
    transaction: &Transaction<'_>,
    master: &MasterKey,
    cached_heads: &HashMap<String, StreamHead>,
    written_heads: &HashMap<String, StreamHead>,
    mut tail: Tail,
    request: &PendingAppend,
) -> Result<Applied, Refusal> {
    let fault = |e| Refusal::Fault(sqlite_error(e, None));
    let stream = request.stream.to_string();
    if let Some(result) = earlier_result(transaction, master, &stream, &request.events)? {
        return Ok(Applied::AlreadyWritten(result));
    }
    let current = match written_heads.get(&stream).or_else(|| cached_heads.get(&stream)) {
        Some(head) => Some(*head),
        None => stored_head(transaction, &stream)?,
    };
    if !request.expected.admits(current.map(|head| head.version)) {
        return Err(Refusal::Refused(StoreError::WrongExpectedVersion {
            stream,
            expected: request.expected,
            actual: current.map(|head| head.version),
        }));
    }
    // One erasure per contact: a second would answer for nothing (and an id
    // taken ahead of the real one could otherwise block it).
    if current.is_some()
        && request.events.iter().any(|event| event.erases_personal_data)
        && was_erased(transaction, &stream)?
    {
        return Err(Refusal::Refused(StoreError::Erased { stream }));
    }
    let first_sealed = request.events.iter().position(|event| event.pii.is_some());
    let contact_key = match first_sealed {
        Some(index) => {
            let new_id = tail.position + 1 + index as i64;
            Some(contact_key(transaction, master, &stream, current.is_some(), new_id)?)
        }
        None => None,
    };
    if let Some(StreamKey { key, id, new: true }) = &contact_key {
        transaction
            .prepare_cached(INSERT_CONTACT_KEY)
            .and_then(|mut insert| insert.execute(params![id, stream, master.wrap(&stream, key)]))
            .map_err(fault)?;
    }
    let mut version = current.map_or(0, |head| head.version + 1);
    let mut previous_hash = current.map_or(GENESIS, |head| head.hash);
    let mut insert_event = transaction.prepare_cached(INSERT_EVENT).map_err(fault)?;
    let mut insert_pii = transaction.prepare_cached(INSERT_PII).map_err(fault)?;
    for event in &request.events {
        let position = tail.position + 1;
        let sealed = match (&event.pii, &contact_key) {
            (Some(json), Some(StreamKey { key, id, .. })) => {
                Some((key.seal(event.event_id, json), pii_digest(&key.digest_key(), json), *id))
            }
            _ => None,
        };
        let pii_digest = sealed.as_ref().map(|(_, digest, _)| digest);
        let fields = HashedFields {
            event_id: event.event_id,
            stream: &stream,
            version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at_millis: event.occurred_at_millis,
            recorded_at_millis: tail.recorded_at_millis,
            actor: &event.actor,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            payload: &event.payload,
            pii_digest,
        };
        let hash = event_hash(&previous_hash, &fields);
        let digest = ledger_digest(&tail.digest, Position::from_sequence(position as u64), &hash);
        insert_event
            .execute(params![
                position,
                stream,
                version as i64,
                event.event_id.as_bytes(),
                event.event_type,
                event.schema_version,
                event.occurred_at_millis,
                tail.recorded_at_millis,
                event.actor,
                event.correlation_id.as_bytes(),
                event.causation_id.as_ref().map(Uuid::as_bytes),
                event.payload,
                pii_digest,
                hash,
                digest,
            ])
            .map_err(fault)?;
        if let Some((sealed, _, key_id)) = &sealed {
            insert_pii.execute(params![position, sealed, key_id]).map_err(fault)?;
        }
        tail.position = position;
        tail.digest = digest;
        previous_hash = hash;
        version += 1;
    }
    if request.events.iter().any(|event| event.erases_personal_data) {
        // The destroyed key is overwritten with zeros in its page, not merely
        // unlinked; only here, since zeroing every freed cell slows appends.
        transaction.pragma_update(None, "secure_delete", true).map_err(fault)?;
        for statement in [DESTROY_CONTACT_KEY, DROP_SEALED_PII] {
            transaction
                .prepare_cached(statement)
                .and_then(|mut erase| erase.execute([&stream]))
                .map_err(fault)?;
        }
        transaction.pragma_update(None, "secure_delete", false).map_err(fault)?;
    }
    let last_version = version - 1;
    Ok(Applied::Written {
        stream,
        head: StreamHead {
            version: last_version,
            hash: previous_hash,
        },
        tail,
        result: AppendResult {
            next_expected_version: last_version,
            position: Position::from_sequence(tail.position as u64),
        },
    })
}

/// An event already recorded under an id the append carries.
struct Recorded {
    stream: String,
    version: i64,
    position: i64,
    /// Whether it is the same fact by the same actor as the retried one.
    same_event: bool,
}

/// EventStoreDB's idempotency rule, made stricter: if every id of this
/// append is already in the stream, in this order, each with the same
/// type, payload, personal data and actor, the append happened before and
/// its result is returned again. Any other reuse of an id is refused, so a
/// caller cannot obtain another's event by guessing its id. Every id is
/// looked up, so no insert can later fail on a duplicate id.
fn earlier_result(
    transaction: &Transaction<'_>,
    master: &MasterKey,
    stream: &str,
    events: &[PreparedEvent],
) -> Result<Option<AppendResult>, StoreError> {
    let mut find = transaction
        .prepare_cached(FIND_EVENT)
        .map_err(|e| sqlite_error(e, None))?;
    let mut content = transaction
        .prepare_cached(RECORDED_CONTENT)
        .map_err(|e| sqlite_error(e, None))?;
    let mut found = Vec::with_capacity(events.len());
    for event in events {
        // The common case, a new id, costs one index look-up.
        let row = find
            .query_row([event.event_id.as_bytes()], |row| {
                Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?, row.get::<_, i64>(2)?))
            })
            .optional()
            .map_err(|e| sqlite_error(e, None))?;
        let recorded = match row {
            None => None,
            Some((stream, version, position)) => {
                let same_event = content
                    .query_row([position], |row| {
                        let recorded_pii = match (
                            row.get_ref(3)?.as_blob_or_null().ok().flatten(),
                            row.get_ref(4)?.as_blob_or_null().ok().flatten(),
                        ) {
                            (Some(sealed), Some(wrapped)) => master
                                .unwrap(&stream, wrapped)
                                .and_then(|key| key.open(event.event_id, sealed)),
                            _ => None,
                        };
                        Ok(row.get_ref(0)?.as_str().ok() == Some(event.event_type)
                            && row.get_ref(1)?.as_str().ok() == Some(event.actor.as_str())
                            && row.get_ref(2)?.as_blob().ok() == Some(event.payload.as_slice())
                            && recorded_pii == event.pii)
                    })
                    .map_err(|e| sqlite_error(e, None))?;
                Some(Recorded {
                    stream,
                    version,
                    position,
                    same_event,
                })
            }
        };
        found.push((event.event_id, recorded));
    }
    let conflict = |event_id: Uuid, detail: &str| StoreError::IdempotencyConflict {
        stream: stream.to_owned(),
        event_id,
        detail: detail.to_owned(),
    };
    if found.iter().all(|(_, row)| row.is_none()) {
        return Ok(None);
    }
    // The other stream is never named: it may belong to someone the caller
    // may not see.
    if let Some((event_id, _)) = found
        .iter()
        .find(|(_, row)| row.as_ref().is_some_and(|recorded| recorded.stream != stream))
    {
        return Err(conflict(*event_id, "the event id is already used by another event"));
    }
    if let Some((event_id, _)) = found
        .iter()
        .find(|(_, row)| row.as_ref().is_some_and(|recorded| !recorded.same_event))
    {
        return Err(conflict(
            *event_id,
            "the event recorded under this id differs from the retried one (type, payload, personal data or actor)",
        ));
    }
    let first_version = found
        .first()
        .and_then(|(_, row)| row.as_ref())
        .map(|recorded| recorded.version);
    let mut last = None;
    for (offset, (event_id, row)) in found.iter().enumerate() {
        match (row, first_version) {
            (Some(recorded), Some(first)) if recorded.version == first + offset as i64 => {
                last = Some((recorded.version, recorded.position));
            }
            _ => {
                return Err(conflict(
                    *event_id,
                    "only part of this append was recorded before; retry with exactly the original events",
                ));
            }
        }
    }
    Ok(last.map(|(version, position)| AppendResult {
        next_expected_version: version as u64,
        position: Position::from_sequence(position as u64),
    }))
}

/// A stream's contact key, its id, and whether it is new (to be stored
/// with the append).
struct StreamKey {
    key: ContactKey,
    id: i64,
    new: bool,
}

/// The stream's contact key, or a new one under `new_id`. A new stream has
/// none yet; a contact who was erased never gets one again.
fn contact_key(
    transaction: &Transaction<'_>,
    master: &MasterKey,
    stream: &str,
    stream_exists: bool,
    new_id: i64,
) -> Result<StreamKey, Refusal> {
    let fault = |e| Refusal::Fault(sqlite_error(e, None));
    let fresh = || StreamKey {
        key: ContactKey::generate(),
        id: new_id,
        new: true,
    };
    if !stream_exists {
        return Ok(fresh());
    }
    let stored: Option<(i64, Vec<u8>)> = transaction
        .prepare_cached(CONTACT_KEY)
        .and_then(|mut find| {
            find.query_row([stream], |row| Ok((row.get(0)?, row.get(1)?)))
                .optional()
        })
        .map_err(fault)?;
    if let Some((id, wrapped)) = stored {
        let key = master.unwrap(stream, &wrapped).ok_or_else(|| {
            Refusal::Fault(StoreError::Corrupt {
                position: None,
                detail: format!("the contact key of {stream} does not open under the master key"),
            })
        })?;
        return Ok(StreamKey { key, id, new: false });
    }
    if was_erased(transaction, stream)? {
        return Err(Refusal::Refused(StoreError::Erased {
            stream: stream.to_owned(),
        }));
    }
    Ok(fresh())
}

fn was_erased(transaction: &Transaction<'_>, stream: &str) -> Result<bool, Refusal> {
    transaction
        .prepare_cached(WAS_ERASED)
        .and_then(|mut find| find.exists([stream]))
        .map_err(|e| Refusal::Fault(sqlite_error(e, None)))
}

fn stored_head(transaction: &Transaction<'_>, stream: &str) -> Result<Option<StreamHead>, StoreError> {
    let mut statement = transaction
        .prepare_cached(STREAM_HEAD)
        .map_err(|e| sqlite_error(e, None))?;
    let row = statement
        .query_row([stream], |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?)))
        .optional()
        .map_err(|e| sqlite_error(e, None))?;
    let Some((version, hash)) = row else {
        return Ok(None);
    };
    let hash = hash.try_into().map_err(|_| StoreError::Corrupt {
        position: None,
        detail: format!("the last hash of stream {stream} is not 32 bytes"),
    })?;
    Ok(Some(StreamHead {
        version: version as u64,
        hash,
    }))
}
