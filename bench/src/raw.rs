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

/// An empty file with rapport's tables (created by rapport itself, so the
/// shape, indexes and triggers are the same), opened raw.
fn empty_ledger(path: &Path) -> anyhow::Result<rusqlite::Connection> {
    drop(rapport_store::SqliteStore::open(path).context("creating the baseline's ledger")?);
    let connection = rusqlite::Connection::open(path)?;
    // The settings of rapport's writer (store/src/sqlite/schema.rs), so
    // that only the work per row differs.
    connection.pragma_update(None, "journal_mode", "WAL")?;
    connection.pragma_update(None, "synchronous", "FULL")?;
    connection.pragma_update(None, "cache_size", -4_096)?;
    connection.pragma_update(None, "wal_autocheckpoint", 4_096)?;
    Ok(connection)
}

/// Rows per second inserted into a fresh ledger at `target`: the first
/// `limit` event rows of the ledger at `source`, `rows_per_commit` to a
/// transaction (1: a durable commit per row). Rows are read a chunk at a
/// time, so memory stays bounded at any ledger size, and only the inserts
/// and commits are timed.
pub fn copy(source: &Path, target: &Path, rows_per_commit: usize, limit: usize) -> anyhow::Result<f64> {
    let rows_per_commit = rows_per_commit.max(1);
    anyhow::ensure!(limit > 0, "nothing to copy: the limit is 0 rows");
    let reader = rusqlite::Connection::open(source).context("opening the ledger to copy its rows")?;
    let mut select = reader.prepare(&format!(
        "SELECT {COLUMNS} FROM events WHERE position > ?1 ORDER BY position LIMIT ?2"
    ))?;
    let mut writer = empty_ledger(target)?;
    let insert_sql = format!(
        "INSERT INTO events ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)"
    );
    // Whole commits to a chunk, so every transaction holds `rows_per_commit`.
    let chunk_rows = rows_per_commit * 1_000usize.div_ceil(rows_per_commit);
    let (mut after, mut copied, mut busy) = (0i64, 0usize, std::time::Duration::ZERO);
    while copied < limit {
        let wanted = chunk_rows.min(limit - copied);
        let rows: Vec<Vec<Value>> = select
            .query_map(
                rusqlite::params![after, i64::try_from(wanted).unwrap_or(i64::MAX)],
                |row| (0..COLUMN_COUNT).map(|index| row.get::<_, Value>(index)).collect(),
            )?
            .collect::<Result<_, _>>()?;
        let Some(Value::Integer(last)) = rows.last().and_then(|row| row.first()).cloned() else {
            break;
        };
        let started = Instant::now();
        for commit in rows.chunks(rows_per_commit) {
            let transaction = writer.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
            {
                let mut insert = transaction.prepare_cached(&insert_sql)?;
                for row in commit {
                    insert.execute(rusqlite::params_from_iter(row.iter()))?;
                }
            }
            transaction.commit()?;
        }
        busy += started.elapsed();
        copied += rows.len();
        after = last;
    }
    anyhow::ensure!(copied > 0, "the ledger to copy has no events");
    Ok(copied as f64 / busy.as_secs_f64())
}

/// Rows per second read back in position order, every column touched and
/// none decoded: the floor under any rebuild.
pub fn read(ledger: &Path) -> anyhow::Result<(u64, f64)> {
    let connection = rusqlite::Connection::open(ledger)?;
    // The settings of rapport's readers (store/src/sqlite/schema.rs).
    connection.pragma_update(None, "query_only", true)?;
    connection.pragma_update(None, "cache_size", -16_384)?;
    connection.pragma_update(None, "mmap_size", 64_i64 << 30)?;
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
