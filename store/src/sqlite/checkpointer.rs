//! Checkpoints off the writer thread. SQLite's automatic checkpoint runs
//! on the connection that committed, so the writer would stop taking
//! appends while the write-ahead log is copied into the file (a quarter of
//! its time in a bulk import). Here the writer's commit hook only counts
//! the log's pages and wakes a thread of its own, which checkpoints
//! beside the next commits (a passive checkpoint never blocks the writer).
//!
//! The log starts over from its beginning only when a batch begins after
//! everything in it was copied, and under a writer that never pauses a
//! passive checkpoint never finishes first. So once the log holds
//! `RESTART_PAGES` the thread follows its passive checkpoint with a
//! restarting one, which holds the writer back only while it copies the
//! few pages committed meanwhile. Should that keep failing (a long read
//! holds the log), the writer restarts the log itself at `LOG_PAGES_MAX`.

use std::path::Path;
use std::sync::mpsc;
use std::thread::JoinHandle;

use rusqlite::Connection;
use rusqlite::wal::CheckpointMode;

use super::schema::{BUSY_TIMEOUT, sqlite_error};
use crate::StoreError;

/// Pages in the log (of 4 KiB) after which a checkpoint is started: SQLite's
/// automatic checkpoint was set to this too.
const CHECKPOINT_PAGES: i32 = 4_096;
/// Pages after which the checkpoint thread has the log start over (64 MiB).
const RESTART_PAGES: i32 = 16_384;
/// Pages after which the writer restarts the log itself, when the thread
/// could not (256 MiB).
const LOG_PAGES_MAX: i32 = 65_536;

/// Starts the checkpoint thread for the ledger at `path` and hands its
/// wake-up to `writer`'s commit hook. The thread stops once the writer's
/// connection is closed.
pub fn start(path: &Path, writer: &mut Connection) -> Result<JoinHandle<()>, StoreError> {
    let connection = Connection::open(path).map_err(|e| sqlite_error(e, None))?;
    connection
        .busy_timeout(BUSY_TIMEOUT)
        .map_err(|e| sqlite_error(e, None))?;
    // A connection checkpoints only once it has read the file and found
    // it in WAL mode.
    let mode: String = connection
        .query_row("PRAGMA journal_mode", [], |row| row.get(0))
        .map_err(|e| sqlite_error(e, None))?;
    if !mode.eq_ignore_ascii_case("wal") {
        return Err(StoreError::Io(format!(
            "the ledger is in {mode} journal mode, not WAL: its checkpoints cannot run beside the writer"
        )));
    }
    // One wake-up pending is enough: a checkpoint copies everything committed.
    let (wake, woken) = mpsc::sync_channel::<()>(1);
    writer
        .wal_hook(Some(move |wal: &mut rusqlite::hooks::Wal, pages: i32| {
            if pages >= LOG_PAGES_MAX {
                // Most pages are copied already; this bounds the log's size.
                if let Err(error) = wal.checkpoint_v2(CheckpointMode::RESTART) {
                    tracing::warn!(%error, pages, "restarting the write-ahead log failed; trying at a later commit");
                }
            } else if pages >= CHECKPOINT_PAGES {
                let _ = wake.try_send(());
            }
            Ok(())
        }))
        .map_err(|e| sqlite_error(e, None))?;
    std::thread::Builder::new()
        .name("rapport-checkpoint".to_owned())
        .spawn(move || {
            while woken.recv().is_ok() {
                match connection.wal_checkpoint_v2(None::<&str>, CheckpointMode::PASSIVE) {
                    Ok((pages, _)) if pages >= RESTART_PAGES => {
                        // Waits for the writer's current batch, copies what it
                        // added and has the next batch start the log over.
                        if let Err(error) = connection.wal_checkpoint_v2(None::<&str>, CheckpointMode::RESTART) {
                            tracing::warn!(%error, pages, "restarting the write-ahead log failed; trying after a later commit");
                        }
                    }
                    Ok(_) => {}
                    Err(error) => {
                        tracing::warn!(%error, "checkpointing the write-ahead log failed; trying after a later commit")
                    }
                }
            }
        })
        .map_err(|e| StoreError::Io(format!("starting the checkpoint thread: {e}")))
}
