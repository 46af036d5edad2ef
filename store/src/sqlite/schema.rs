//! The on-disk format: tables, pragmas, and the checks that refuse files
//! that are not rapport ledgers or come from a newer rapport.

use std::io::Read;
use std::path::Path;

use rapport_domain::Position;
use rapport_domain::hashing::{GENESIS, Hash};
use rusqlite::{Connection, OpenFlags, OptionalExtension};

use crate::StoreError;

/// Bumped on every incompatible change of the tables below.
pub const FORMAT_VERSION: i64 = 3;
/// How long a connection waits for a lock another holds.
pub const BUSY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);
/// "RAPP": marks the SQLite file as a rapport ledger.
const APPLICATION_ID: i64 = 0x5241_5050;
const SQLITE_HEADER: &[u8; 16] = b"SQLite format 3\0";
/// Address space a reader may map (not memory it uses).
const MMAP_BYTES_MAX: i64 = 64 << 30;

/// Append-only by construction: the triggers refuse updates and deletes, so
/// only someone who drops them on purpose can rewrite history, and the hash
/// chain exposes that. Personal data sits in its own table, sealed with its
/// contact's key; `contact_keys` (each wrapped by the master key) is the one
/// table rows leave: destroying a key erases the data it sealed.
const CREATE_TABLES: &str = "
CREATE TABLE events (
    position       INTEGER PRIMARY KEY,
    stream         TEXT    NOT NULL,
    version        INTEGER NOT NULL,
    event_id       BLOB    NOT NULL UNIQUE,
    event_type     TEXT    NOT NULL,
    schema_version INTEGER NOT NULL,
    occurred_at    INTEGER NOT NULL,
    recorded_at    INTEGER NOT NULL,
    actor          TEXT    NOT NULL,
    correlation_id BLOB    NOT NULL,
    causation_id   BLOB,
    payload        BLOB    NOT NULL,
    pii_digest     BLOB,
    hash           BLOB    NOT NULL,
    ledger_digest  BLOB    NOT NULL,
    UNIQUE (stream, version)
) STRICT;
CREATE TABLE pii (
    position INTEGER PRIMARY KEY,
    sealed   BLOB    NOT NULL,
    key_id   INTEGER NOT NULL
) STRICT;
-- A key's id is the position of the first event sealed with it, so keys
-- are appended in order like events, never inserted at random.
CREATE TABLE contact_keys (
    id      INTEGER PRIMARY KEY,
    stream  TEXT NOT NULL,
    wrapped BLOB NOT NULL
) STRICT;
CREATE TABLE meta (
    name  TEXT PRIMARY KEY,
    value BLOB NOT NULL
) STRICT;
CREATE TRIGGER events_are_never_updated BEFORE UPDATE ON events
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
CREATE TRIGGER events_are_never_deleted BEFORE DELETE ON events
BEGIN SELECT RAISE(ABORT, 'the ledger is append-only'); END;
";

fn path_text(path: &Path) -> String {
    path.display().to_string()
}

/// Maps an SQLite failure to the store's errors; `position` is the last
/// place known to be good, for the message.
pub fn sqlite_error(error: rusqlite::Error, position: Option<Position>) -> StoreError {
    use rusqlite::ErrorCode;
    match &error {
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == ErrorCode::DatabaseCorrupt => {
            StoreError::Corrupt {
                position,
                detail: format!("the database file is damaged ({error})"),
            }
        }
        rusqlite::Error::SqliteFailure(failure, _) if failure.code == ErrorCode::NotADatabase => StoreError::Corrupt {
            position,
            detail: format!("the file is not a readable database ({error})"),
        },
        rusqlite::Error::FromSqlConversionFailure(..)
        | rusqlite::Error::InvalidColumnType(..)
        | rusqlite::Error::IntegralValueOutOfRange(..) => StoreError::Corrupt {
            position,
            detail: format!("a stored value has the wrong type ({error})"),
        },
        _ => StoreError::Io(error.to_string()),
    }
}

/// Refuses a file that exists but is no SQLite database, before SQLite
/// would happily treat it as one it may overwrite.
pub fn check_header(path: &Path) -> Result<(), StoreError> {
    let mut header = [0u8; 16];
    let read = match std::fs::File::open(path) {
        Ok(mut file) => file
            .read(&mut header)
            .map_err(|e| StoreError::Io(format!("reading {}: {e}", path_text(path))))?,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(error) => {
            return Err(StoreError::Io(format!("opening {}: {error}", path_text(path))));
        }
    };
    if read == 0 || &header == SQLITE_HEADER {
        Ok(())
    } else {
        Err(StoreError::NotALedger {
            path: path_text(path),
            detail: "it is not an SQLite database".to_owned(),
        })
    }
}

fn apply_pragmas(connection: &Connection, writer: bool) -> rusqlite::Result<()> {
    connection.busy_timeout(BUSY_TIMEOUT)?;
    if writer {
        // WAL lets readers run beside the writer; FULL syncs the WAL on every
        // commit, so an acknowledged append survives power loss.
        connection.pragma_update(None, "journal_mode", "WAL")?;
        connection.pragma_update(None, "synchronous", "FULL")?;
        // SQLite walks the whole page cache at every commit, so a large
        // cache slows group commit down; 4 MiB measured best (see
        // docs/performance.md).
        connection.pragma_update(None, "cache_size", -4_096)?;
        // Checkpoints run on a thread of their own (see `checkpointer`).
        connection.pragma_update(None, "wal_autocheckpoint", 0)?;
    } else {
        connection.pragma_update(None, "query_only", true)?;
        connection.pragma_update(None, "cache_size", -16_384)?;
        // Readers map the file instead of copying every page out of the OS
        // cache: scans (rebuilds, verification) read about a third faster.
        connection.pragma_update(None, "mmap_size", MMAP_BYTES_MAX)?;
    }
    Ok(())
}

/// Opens (creating if need be) the writer's connection and checks the format.
pub fn open_writer(path: &Path) -> Result<Connection, StoreError> {
    check_header(path)?;
    let mut connection = Connection::open(path).map_err(|e| sqlite_error(e, None))?;
    check_or_initialise(&mut connection, path)?;
    apply_pragmas(&connection, true).map_err(|e| sqlite_error(e, None))?;
    Ok(connection)
}

/// Opens a reader; the file must already be a ledger of a format we read.
pub fn open_reader(path: &Path) -> Result<Connection, StoreError> {
    if !path.exists() {
        return Err(StoreError::NotALedger {
            path: path_text(path),
            detail: "no such file".to_owned(),
        });
    }
    check_header(path)?;
    // Read-write flags with `query_only`: a read-only open of a WAL database
    // fails while no writer has created its shared-memory file.
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX | OpenFlags::SQLITE_OPEN_URI;
    let connection = Connection::open_with_flags(path, flags).map_err(|e| sqlite_error(e, None))?;
    apply_pragmas(&connection, false).map_err(|e| sqlite_error(e, None))?;
    check_format(&connection, path)?;
    Ok(connection)
}

fn check_format(connection: &Connection, path: &Path) -> Result<(), StoreError> {
    let read = |pragma: &str| -> Result<i64, StoreError> {
        connection
            .pragma_query_value(None, pragma, |row| row.get(0))
            .map_err(|e| match e {
                rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::NotADatabase => {
                    StoreError::NotALedger {
                        path: path_text(path),
                        detail: "it is not an SQLite database".to_owned(),
                    }
                }
                other => sqlite_error(other, None),
            })
    };
    let application_id = read("application_id")?;
    let format = read("user_version")?;
    if application_id != APPLICATION_ID {
        return Err(StoreError::NotALedger {
            path: path_text(path),
            detail: "it is an SQLite database of another program".to_owned(),
        });
    }
    if format > FORMAT_VERSION {
        return Err(StoreError::NewerFormat {
            path: path_text(path),
            found: format,
            supported: FORMAT_VERSION,
        });
    }
    if format < 1 {
        return Err(StoreError::Corrupt {
            position: None,
            detail: format!("ledger format {format} is not valid"),
        });
    }
    if format < FORMAT_VERSION {
        return Err(StoreError::NotALedger {
            path: path_text(path),
            detail: format!(
                "it is ledger format {format}, older than this build's {FORMAT_VERSION} (which seals personal \
                 data with a key per contact); export it with the rapport that wrote it and import the export here"
            ),
        });
    }
    Ok(())
}

fn check_or_initialise(connection: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let tables: i64 = connection
        .query_row("SELECT count(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(|e| match e {
            rusqlite::Error::SqliteFailure(failure, _) if failure.code == rusqlite::ErrorCode::NotADatabase => {
                StoreError::NotALedger {
                    path: path_text(path),
                    detail: "it is not an SQLite database".to_owned(),
                }
            }
            other => sqlite_error(other, None),
        })?;
    if tables > 0 {
        return check_format(connection, path);
    }
    let transaction = connection.transaction().map_err(|e| sqlite_error(e, None))?;
    transaction
        .execute_batch(CREATE_TABLES)
        .map_err(|e| sqlite_error(e, None))?;
    transaction
        .pragma_update(None, "application_id", APPLICATION_ID)
        .map_err(|e| sqlite_error(e, None))?;
    transaction
        .pragma_update(None, "user_version", FORMAT_VERSION)
        .map_err(|e| sqlite_error(e, None))?;
    transaction.commit().map_err(|e| sqlite_error(e, None))
}

/// The end of the ledger as the writer continues from it.
#[derive(Clone, Copy, Debug)]
pub struct Tail {
    /// 0 for an empty ledger; positions are dense from 1 in this backend.
    pub position: i64,
    pub digest: Hash,
    pub recorded_at_millis: i64,
}

pub fn load_tail(connection: &Connection) -> Result<Tail, StoreError> {
    let row = connection
        .query_row(
            "SELECT position, ledger_digest, recorded_at FROM events ORDER BY position DESC LIMIT 1",
            [],
            |row| Ok((row.get::<_, i64>(0)?, row.get::<_, Vec<u8>>(1)?, row.get::<_, i64>(2)?)),
        )
        .optional()
        .map_err(|e| sqlite_error(e, None))?;
    let Some((position, digest, recorded_at_millis)) = row else {
        return Ok(Tail {
            position: 0,
            digest: GENESIS,
            recorded_at_millis: i64::MIN,
        });
    };
    let digest = digest.try_into().map_err(|_| StoreError::Corrupt {
        position: Some(Position::from_sequence(position as u64)),
        detail: "the stored ledger digest is not 32 bytes".to_owned(),
    })?;
    Ok(Tail {
        position,
        digest,
        recorded_at_millis,
    })
}

const MASTER_KEY_CHECK: &str = "master_key_check";

/// The check value of the master key the ledger was sealed with, if any.
pub fn master_key_check(connection: &Connection) -> Result<Option<Vec<u8>>, StoreError> {
    connection
        .query_row("SELECT value FROM meta WHERE name = ?1", [MASTER_KEY_CHECK], |row| {
            row.get(0)
        })
        .optional()
        .map_err(|e| sqlite_error(e, None))
}

/// Records which master key seals this ledger (a new ledger's first open).
pub fn record_master_key_check(connection: &Connection, check: &[u8]) -> Result<(), StoreError> {
    connection
        .execute(
            "INSERT INTO meta (name, value) VALUES (?1, ?2)",
            rusqlite::params![MASTER_KEY_CHECK, check],
        )
        .map(|_| ())
        .map_err(|e| sqlite_error(e, None))
}
