//! Reading stored rows back into `RawEvent`s, checking every value's shape
//! on the way: a damaged row is an error naming its position, not a panic.

use rapport_domain::Position;
use rusqlite::{Connection, Row, params};
use uuid::Uuid;

use super::schema::sqlite_error;
use crate::sealing::MasterKey;
use crate::{Opened, RawEvent, StoreError, StoredPii};

/// Personal data and its key are found by integer keys, only for the rows
/// that have any.
const SELECT_EVENTS: &str = "
SELECT e.position, e.stream, e.version, e.event_id, e.event_type, e.schema_version,
       e.occurred_at, e.recorded_at, e.actor, e.correlation_id, e.causation_id,
       e.payload, e.pii_digest, e.hash, e.ledger_digest, p.sealed, k.wrapped
FROM events e LEFT JOIN pii p ON p.position = e.position LEFT JOIN contact_keys k ON k.id = p.key_id";

fn corrupt(position: Position, detail: String) -> StoreError {
    StoreError::Corrupt {
        position: Some(position),
        detail,
    }
}

/// A fixed-size blob, borrowed from the row and copied without allocating.
fn bytes_at<const N: usize>(
    row: &Row<'_>,
    index: usize,
    position: Position,
    column: &str,
) -> Result<[u8; N], StoreError> {
    let value = row.get_ref(index).map_err(|e| sqlite_error(e, Some(position)))?;
    value
        .as_blob()
        .ok()
        .and_then(|bytes| bytes.try_into().ok())
        .ok_or_else(|| corrupt(position, format!("{column} is not a {N}-byte value")))
}

fn optional_bytes_at<const N: usize>(
    row: &Row<'_>,
    index: usize,
    position: Position,
    column: &str,
) -> Result<Option<[u8; N]>, StoreError> {
    let value = row.get_ref(index).map_err(|e| sqlite_error(e, Some(position)))?;
    match value {
        rusqlite::types::ValueRef::Null => Ok(None),
        _ => bytes_at(row, index, position, column).map(Some),
    }
}

/// Opens sealed personal data with the contact's key, unwrapped by the
/// master key; without the master key it stays locked. A key and its data
/// leave together (an erasure), so data without its key is damage.
pub fn open_pii(
    master: Option<&MasterKey>,
    stream: &str,
    event_id: Uuid,
    sealed: Vec<u8>,
    wrapped: Option<&[u8]>,
) -> StoredPii {
    let opened = match (master, wrapped) {
        (Some(master), Some(wrapped)) => match master.unwrap(stream, wrapped) {
            Some(key) => match key.open(event_id, &sealed) {
                Some(json) => Opened::Plain {
                    json,
                    digest_key: key.digest_key(),
                },
                None => Opened::Damaged,
            },
            None => Opened::Damaged,
        },
        (Some(_), None) => Opened::Damaged,
        (None, _) => Opened::Locked,
    };
    StoredPii { sealed, opened }
}

fn decode_row(row: &Row<'_>, master: Option<&MasterKey>) -> Result<RawEvent, StoreError> {
    let raw_position: i64 = row.get(0).map_err(|e| sqlite_error(e, None))?;
    if raw_position < 1 {
        return Err(StoreError::Corrupt {
            position: None,
            detail: format!("position {raw_position} is not valid"),
        });
    }
    let position = Position::from_sequence(raw_position as u64);
    let at = |e: rusqlite::Error| sqlite_error(e, Some(position));
    let version: i64 = row.get(2).map_err(at)?;
    let schema_version: i64 = row.get(5).map_err(at)?;
    let stream: String = row.get(1).map_err(at)?;
    let event_id = Uuid::from_bytes(bytes_at(row, 3, position, "event_id")?);
    let pii = match row.get::<_, Option<Vec<u8>>>(15).map_err(at)? {
        Some(sealed) => {
            let wrapped: Option<Vec<u8>> = row.get(16).map_err(at)?;
            Some(open_pii(master, &stream, event_id, sealed, wrapped.as_deref()))
        }
        None => None,
    };
    Ok(RawEvent {
        position,
        stream,
        version: u64::try_from(version).map_err(|_| corrupt(position, format!("version {version} is negative")))?,
        event_id,
        event_type: row.get(4).map_err(at)?,
        schema_version: u16::try_from(schema_version)
            .map_err(|_| corrupt(position, format!("schema version {schema_version} is out of range")))?,
        occurred_at_millis: row.get(6).map_err(at)?,
        recorded_at_millis: row.get(7).map_err(at)?,
        actor: row.get(8).map_err(at)?,
        correlation_id: Uuid::from_bytes(bytes_at(row, 9, position, "correlation_id")?),
        causation_id: optional_bytes_at(row, 10, position, "causation_id")?.map(Uuid::from_bytes),
        payload: row.get(11).map_err(at)?,
        pii_digest: optional_bytes_at::<32>(row, 12, position, "pii_digest")?,
        pii,
        hash: bytes_at(row, 13, position, "hash")?,
        ledger_digest: Some(bytes_at(row, 14, position, "ledger_digest")?),
    })
}

/// Rows made room for before the first is read when a read may find
/// fewer than its limit (a follower's, a stream's): the rest by growing.
const EXPECTED_ROWS_UNKNOWN: usize = 64;

fn collect(
    connection: &Connection,
    master: Option<&MasterKey>,
    sql: &str,
    parameters: impl rusqlite::Params,
    after: Option<Position>,
    expected_rows: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let mut statement = connection.prepare_cached(sql).map_err(|e| sqlite_error(e, after))?;
    let mut rows = statement.query(parameters).map_err(|e| sqlite_error(e, after))?;
    let mut events = Vec::with_capacity(expected_rows);
    loop {
        let last_good = events.last().map(|event: &RawEvent| event.position).or(after);
        match rows.next().map_err(|e| sqlite_error(e, last_good))? {
            Some(row) => events.push(decode_row(row, master)?),
            None => return Ok(events),
        }
    }
}

/// Positions are plain sequence numbers in this backend; a position from
/// another backend is out of its range and simply reads as "the start".
pub fn sequence_of(position: Option<Position>) -> i64 {
    position.map_or(0, |p| i64::try_from(p.commit).unwrap_or(i64::MAX))
}

pub fn read_all(
    connection: &Connection,
    master: Option<&MasterKey>,
    after: Option<Position>,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!("{SELECT_EVENTS} WHERE e.position > ?1 ORDER BY e.position LIMIT ?2");
    collect(
        connection,
        master,
        &sql,
        params![sequence_of(after), limit as i64],
        after,
        limit.min(EXPECTED_ROWS_UNKNOWN),
    )
}

/// The events at positions `after` (excluded) to `through` (included).
pub fn read_range(
    connection: &Connection,
    master: Option<&MasterKey>,
    after: i64,
    through: i64,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!("{SELECT_EVENTS} WHERE e.position > ?1 AND e.position <= ?2 ORDER BY e.position");
    let from = (after > 0).then(|| Position::from_sequence(after as u64));
    // A rebuild's page: full but for the ledger's last.
    let rows = usize::try_from(through.saturating_sub(after))
        .unwrap_or(0)
        .min(crate::READ_LIMIT_MAX);
    collect(connection, master, &sql, params![after, through], from, rows)
}

pub fn read_event(
    connection: &Connection,
    master: Option<&MasterKey>,
    stream: &str,
    event_id: Uuid,
) -> Result<Option<RawEvent>, StoreError> {
    let sql = format!("{SELECT_EVENTS} WHERE e.event_id = ?1 AND e.stream = ?2");
    Ok(collect(connection, master, &sql, params![event_id.as_bytes(), stream], None, 1)?.pop())
}

pub fn read_stream(
    connection: &Connection,
    master: Option<&MasterKey>,
    stream: &str,
    from_version: u64,
    limit: usize,
) -> Result<Vec<RawEvent>, StoreError> {
    let sql = format!("{SELECT_EVENTS} WHERE e.stream = ?1 AND e.version >= ?2 ORDER BY e.version LIMIT ?3");
    let from = i64::try_from(from_version).unwrap_or(i64::MAX);
    collect(
        connection,
        master,
        &sql,
        params![stream, from, limit as i64],
        None,
        limit.min(EXPECTED_ROWS_UNKNOWN),
    )
}
