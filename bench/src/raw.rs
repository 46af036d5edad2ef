//! The baselines: what plain `rusqlite` does with the very rows rapport
//! wrote, in a table of the same shape, with no hashing, no checks and no
//! decoding; and what the disk itself allows.

use std::io::{Seek, SeekFrom, Write};
use std::path::Path;
use std::time::Instant;

use anyhow::Context;
use rusqlite::types::Value;

const COLUMNS: &str = "position, stream, version, event_id, event_type, schema_version, occurred_at, recorded_at, \
                       actor, correlation_id, causation_id, payload, pii_digest, hash, ledger_digest";
const COLUMN_COUNT: usize = 15;

/// One stored event row, every column as SQLite holds it.
pub type Row = Vec<Value>;

/// The first `limit` event rows of a ledger, in position order.
pub fn rows_of(ledger: &Path, limit: usize) -> anyhow::Result<Vec<Row>> {
    let connection = rusqlite::Connection::open(ledger).context("opening the ledger to copy its rows")?;
    let mut statement = connection.prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY position LIMIT ?1"))?;
    let rows = statement
        .query_map([i64::try_from(limit).unwrap_or(i64::MAX)], |row| {
            (0..COLUMN_COUNT).map(|index| row.get::<_, Value>(index)).collect()
        })?
        .collect::<Result<Vec<Row>, _>>()?;
    Ok(rows)
}

/// An empty file with rapport's tables (created by rapport itself, so the
/// shape, indexes and triggers are the same), opened raw: WAL and
/// `synchronous=FULL`, as rapport runs.
fn empty_ledger(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    drop(rapport_store::SqliteStore::open(path).context("creating the baseline's ledger")?);
    let connection = rusqlite::Connection::open(path)?;
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    Ok(connection)
}

fn insert_statement(connection: &rusqlite::Connection) -> rusqlite::Result<rusqlite::CachedStatement<'_>> {
    connection.prepare_cached(&format!(
        "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    ))
}

/// Rows per second inserted into a fresh ledger at `path`, `rows_per_commit`
/// rows to a transaction (1: a durable commit per row).
pub fn insert(path: &Path, rows: &[Row], rows_per_commit: usize) -> anyhow::Result<f64> {
    let mut connection = empty_ledger(path)?;
    let started = Instant::now();
    for chunk in rows.chunks(rows_per_commit.max(1)) {
        let transaction = connection.transaction()?;
        {
            let mut statement = insert_statement(&transaction)?;
            for row in chunk {
                statement.execute(rusqlite::params_from_iter(row.iter()))?;
            }
        }
        transaction.commit()?;
    }
    Ok(rows.len() as f64 / started.elapsed().as_secs_f64())
}

/// Rows per second read back in position order, every column touched and
/// none decoded: the floor under any rebuild.
pub fn read(ledger: &Path) -> anyhow::Result<(u64, f64)> {
    let connection = rusqlite::Connection::open(ledger)?;
    let started = Instant::now();
    let mut statement = connection.prepare(&format!("SELECT {COLUMNS} FROM events ORDER BY position"))?;
    let mut rows = statement.query([])?;
    let (mut count, mut bytes) = (0u64, 0usize);
    while let Some(row) = rows.next()? {
        for index in 0..COLUMN_COUNT {
            bytes += match row.get_ref(index)? {
                rusqlite::types::ValueRef::Blob(blob) | rusqlite::types::ValueRef::Text(blob) => blob.len(),
                _ => 8,
            };
        }
        count += 1;
    }
    std::hint::black_box(bytes);
    Ok((count, count as f64 / started.elapsed().as_secs_f64()))
}

/// Durable writes per second the disk under `dir` allows: an 8-byte write
/// and `fdatasync`, one after the other, for about a second. No commit of
/// one writer can be faster.
pub fn fsync_rate(dir: &Path) -> anyhow::Result<f64> {
    let path = dir.join("fsync-probe");
    let mut file = std::fs::File::create(&path).context("creating the fsync probe")?;
    let started = Instant::now();
    let mut syncs = 0u64;
    while started.elapsed().as_secs_f64() < 1.0 {
        file.seek(SeekFrom::Start(0))?;
        file.write_all(&syncs.to_le_bytes())?;
        file.sync_data()?;
        syncs += 1;
    }
    let rate = syncs as f64 / started.elapsed().as_secs_f64();
    drop(file);
    std::fs::remove_file(&path)?;
    Ok(rate)
}

/// This process's anonymous resident memory in bytes (Linux), the part of
/// RSS that is the program's own and not the mapped ledger file.
pub fn anonymous_rss() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|line| line.starts_with("RssAnon:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1_024)
}
