//! The embedded backend, rapport's default: one SQLite file, no server.
//!
//! One writer thread commits appends in groups (see `writer`); readers use
//! their own connections from a small pool, so reads never wait for the
//! writer's fsync. A lock file beside the database keeps a second process
//! from writing to the same ledger.

mod checkpointer;
mod rows;
mod schema;
mod writer;

use std::ffi::OsString;
use std::fs::{File, TryLockError};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use async_trait::async_trait;
use futures::StreamExt;
use futures::stream::BoxStream;
use rapport_domain::{LedgerDigest, NewEvent, Position, RecordedEvent, StreamName, Timestamp};
use rusqlite::{Connection, OptionalExtension};
use tokio::sync::{mpsc, oneshot, watch};

use crate::sealing::{self, MasterKey};
use crate::{
    APPEND_BATCH_MAX, AppendResult, EventStore, ExpectedVersion, LedgerHead, READ_LIMIT_MAX, RawEvent, SharedClock,
    StoreError, SubscriptionMessage, catch_up_then_live, prepare_append, system_clock,
};
use writer::{AppendRequest, PendingAppend, Writer};

pub use schema::FORMAT_VERSION;

/// Appends waiting for the writer; callers wait (async) beyond this.
const WRITE_QUEUE_APPENDS_MAX: usize = 4_096;
/// Reads running at once (each holds a connection and a blocking thread);
/// further reads wait for a turn. Also the idle connections kept open.
const READERS_MAX: usize = 8;

/// How to open the ledger file.
#[derive(Clone, Debug)]
pub struct SqliteOptions {
    /// Open for reading only: no lock is taken and appends are refused, so
    /// an auditor can verify a ledger a running server is writing to.
    pub read_only: bool,
    /// Where the writer takes each commit's recorded time from.
    pub clock: SharedClock,
    /// The key sealing personal data; when absent it is found as
    /// `sealing::find_master_key` says, and a new ledger makes one.
    pub master_key: Option<MasterKey>,
}

impl Default for SqliteOptions {
    fn default() -> Self {
        SqliteOptions {
            read_only: false,
            clock: system_clock(),
            master_key: None,
        }
    }
}

impl SqliteOptions {
    /// For reading a ledger another process may be writing.
    pub fn read_only() -> Self {
        SqliteOptions {
            read_only: true,
            ..SqliteOptions::default()
        }
    }

    /// For writing, with commits recorded on `clock`.
    pub fn writing_on(clock: SharedClock) -> Self {
        SqliteOptions {
            clock,
            ..SqliteOptions::default()
        }
    }
}

/// The embedded ledger. Cheap to clone; the last clone closes it, after
/// the writer has committed every append already queued.
#[derive(Clone, Debug)]
pub struct SqliteStore {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    requests: Option<mpsc::Sender<AppendRequest>>,
    writer: Option<JoinHandle<()>>,
    /// Stops once the writer's connection is closed.
    checkpointer: Option<JoinHandle<()>>,
    idle_readers: Mutex<Vec<Connection>>,
    reader_turns: Arc<tokio::sync::Semaphore>,
    commits: Arc<watch::Sender<Option<Position>>>,
    /// Opens personal data as it is read; a read-only open without the
    /// key reads it as locked.
    master: Option<MasterKey>,
    // Held for its lock; released when the store closes.
    _lock: Option<File>,
}

impl Drop for Inner {
    fn drop(&mut self) {
        // Closing the queue lets the writer drain what is queued and stop.
        self.requests.take();
        if let Some(writer) = self.writer.take()
            && writer.join().is_err()
        {
            tracing::error!("the ledger writer thread panicked");
        }
        if let Some(checkpointer) = self.checkpointer.take()
            && checkpointer.join().is_err()
        {
            tracing::error!("the ledger checkpoint thread panicked");
        }
    }
}

fn lock_path(path: &Path) -> PathBuf {
    let mut name = OsString::from(path.as_os_str());
    name.push("-lock");
    PathBuf::from(name)
}

/// Takes the lock file `<path>-lock`, refusing while another process
/// holds it.
pub(crate) fn take_lock(path: &Path) -> Result<File, StoreError> {
    let lock_path = lock_path(path);
    let file = File::options()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock_path)
        .map_err(|e| StoreError::Io(format!("creating lock file {}: {e}", lock_path.display())))?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(StoreError::Unavailable(format!(
            "{} is open for writing by another rapport process",
            path.display()
        ))),
        Err(TryLockError::Error(e)) => Err(StoreError::Io(format!("locking {}: {e}", lock_path.display()))),
    }
}

impl SqliteStore {
    /// Opens the ledger at `path` for reading and writing, creating it if
    /// it does not exist.
    pub fn open(path: impl AsRef<Path>) -> Result<Self, StoreError> {
        Self::open_with(path, SqliteOptions::default())
    }

    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Self, StoreError> {
        let path = path.as_ref().to_path_buf();
        let (commits, _) = watch::channel(None);
        let commits = Arc::new(commits);
        if options.read_only {
            let reader = schema::open_reader(&path)?;
            let master = match options.master_key {
                Some(key) => Some(key),
                None => sealing::find_master_key(&path)?,
            };
            let master = master.map(|key| check_master_key(&path, &reader, key)).transpose()?;
            return Ok(SqliteStore {
                inner: Arc::new(Inner {
                    path,
                    requests: None,
                    writer: None,
                    checkpointer: None,
                    idle_readers: Mutex::new(vec![reader]),
                    reader_turns: Arc::new(tokio::sync::Semaphore::new(READERS_MAX)),
                    commits,
                    master,
                    _lock: None,
                }),
            });
        }
        // Refuse a foreign file before leaving a lock file beside it.
        schema::check_header(&path)?;
        let lock = take_lock(&path)?;
        let mut connection = schema::open_writer(&path)?;
        let checkpointer = checkpointer::start(&path, &mut connection)?;
        let master = writer_master_key(&path, &connection, options.master_key)?;
        let tail = schema::load_tail(&connection)?;
        if tail.position > 0 {
            commits.send_replace(Some(Position::from_sequence(tail.position as u64)));
        }
        let (requests, queue) = mpsc::channel(WRITE_QUEUE_APPENDS_MAX);
        let writer = Writer::new(connection, tail, Arc::clone(&commits), options.clock, master.clone());
        let writer = std::thread::Builder::new()
            .name("rapport-writer".to_owned())
            .spawn(move || writer.run(queue))
            .map_err(|e| StoreError::Io(format!("starting the writer thread: {e}")))?;
        Ok(SqliteStore {
            inner: Arc::new(Inner {
                path,
                requests: Some(requests),
                writer: Some(writer),
                checkpointer: Some(checkpointer),
                idle_readers: Mutex::new(Vec::new()),
                reader_turns: Arc::new(tokio::sync::Semaphore::new(READERS_MAX)),
                commits,
                master: Some(master),
                _lock: Some(lock),
            }),
        })
    }

    /// Hands prepared appends to the writer and waits for their answers.
    async fn submit(
        &self,
        appends: Vec<PendingAppend>,
        all_or_nothing: bool,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        let Some(requests) = &self.inner.requests else {
            return Err(StoreError::Unavailable("the ledger was opened read-only".to_owned()));
        };
        let (reply, acknowledged) = oneshot::channel();
        let gone = || StoreError::Unavailable("the ledger writer has stopped".to_owned());
        requests
            .send(AppendRequest {
                appends,
                all_or_nothing,
                reply,
            })
            .await
            .map_err(|_| gone())?;
        acknowledged.await.map_err(|_| gone())
    }

    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The secret for ids derived from personal data (see
    /// `MasterKey::pseudonym_key`); `None` without the master key.
    pub fn pseudonym_key(&self) -> Option<[u8; 32]> {
        self.inner.master.as_ref().map(MasterKey::pseudonym_key)
    }

    /// The key sealing the read-model snapshot's personal data; `None`
    /// without the master key.
    pub fn snapshot_key(&self) -> Option<sealing::SealingKey> {
        self.inner.master.as_ref().map(MasterKey::snapshot_key)
    }

    /// Runs `read` on a pooled reader connection, off the async runtime.
    async fn read<T, F>(&self, read: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Connection) -> Result<T, StoreError> + Send + 'static,
    {
        // The turn moves into the blocking task: a cancelled request must
        // not free it while its read still runs.
        let turn = Arc::clone(&self.inner.reader_turns)
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Unavailable("the ledger is closing".to_owned()))?;
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || {
            let _turn = turn;
            let pooled = inner.idle_readers.lock().map_err(|_| poisoned())?.pop();
            let connection = match pooled {
                Some(connection) => connection,
                None => schema::open_reader(&inner.path)?,
            };
            let result = read(&connection);
            let mut idle = inner.idle_readers.lock().map_err(|_| poisoned())?;
            if idle.len() < READERS_MAX {
                idle.push(connection);
            }
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("a ledger read was cancelled: {e}")))?
    }

    /// The ledger digest up to `position` (`None` if there is no such event).
    pub async fn digest_at(&self, position: Position) -> Result<Option<LedgerDigest>, StoreError> {
        let sequence = rows::sequence_of(Some(position));
        let digest: Option<Vec<u8>> = self
            .read(move |connection| {
                connection
                    .query_row(
                        "SELECT ledger_digest FROM events WHERE position = ?1",
                        [sequence],
                        |row| row.get(0),
                    )
                    .optional()
                    .map_err(|e| schema::sqlite_error(e, Some(position)))
            })
            .await?;
        digest
            .map(|bytes| {
                let digest = bytes.try_into().map_err(|_| StoreError::Corrupt {
                    position: Some(position),
                    detail: "the stored ledger digest is not 32 bytes".to_owned(),
                })?;
                Ok(LedgerDigest {
                    position: Some(position),
                    digest,
                })
            })
            .transpose()
    }
}

fn check_master_key(path: &Path, connection: &Connection, key: MasterKey) -> Result<MasterKey, StoreError> {
    match schema::master_key_check(connection)? {
        Some(check) if check != key.check_value() => Err(StoreError::MasterKey(format!(
            "the master key found for {} is not the one its personal data is sealed with ({} or {})",
            path.display(),
            sealing::MASTER_KEY_VARIABLE,
            sealing::master_key_file(path).display()
        ))),
        _ => Ok(key),
    }
}

/// The writer's master key: the one given or found, checked against the
/// ledger; a new ledger without one gets one made.
fn writer_master_key(path: &Path, connection: &Connection, given: Option<MasterKey>) -> Result<MasterKey, StoreError> {
    let found = match given {
        Some(key) => Some(key),
        None => sealing::find_master_key(path)?,
    };
    match (schema::master_key_check(connection)?, found) {
        (Some(_), Some(key)) => check_master_key(path, connection, key),
        (Some(_), None) => Err(StoreError::MasterKey(format!(
            "{} seals personal data with a master key and none was found: set {} or restore {}",
            path.display(),
            sealing::MASTER_KEY_VARIABLE,
            sealing::master_key_file(path).display()
        ))),
        (None, found) => {
            let key = match found {
                Some(key) => key,
                None => sealing::create_master_key(path)?,
            };
            schema::record_master_key_check(connection, &key.check_value())?;
            Ok(key)
        }
    }
}

fn poisoned() -> StoreError {
    StoreError::Unavailable("the reader pool is unusable after a panic".to_owned())
}

#[async_trait]
impl EventStore for SqliteStore {
    async fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let events = prepare_append(&stream, events)?;
        let mut results = self
            .submit(
                vec![PendingAppend {
                    stream,
                    expected,
                    events,
                }],
                false,
            )
            .await?;
        results
            .pop()
            .unwrap_or_else(|| Err(StoreError::Unavailable("the writer answered nothing".to_owned())))
    }

    async fn append_batch(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        if self.inner.requests.is_none() {
            return Err(StoreError::Unavailable("the ledger was opened read-only".to_owned()));
        }
        if appends.len() > APPEND_BATCH_MAX {
            return Err(StoreError::TooManyEvents {
                count: appends.len(),
                limit: APPEND_BATCH_MAX,
            });
        }
        // Each append is checked on its own; one that fails its checks is
        // answered here and never reaches the writer.
        let mut answers: Vec<Option<Result<AppendResult, StoreError>>> = Vec::with_capacity(appends.len());
        let mut pending = Vec::with_capacity(appends.len());
        for (stream, expected, events) in appends {
            match prepare_append(&stream, events) {
                Ok(events) => {
                    answers.push(None);
                    pending.push(PendingAppend {
                        stream,
                        expected,
                        events,
                    });
                }
                Err(error) => answers.push(Some(Err(error))),
            }
        }
        let mut written = if pending.is_empty() {
            Vec::new()
        } else {
            self.submit(pending, false).await?
        }
        .into_iter();
        Ok(answers
            .into_iter()
            .map(|answer| {
                answer.unwrap_or_else(|| {
                    written
                        .next()
                        .unwrap_or_else(|| Err(StoreError::Unavailable("the writer answered too little".to_owned())))
                })
            })
            .collect())
    }

    async fn append_all_or_nothing(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if appends.len() > APPEND_BATCH_MAX {
            return Err(StoreError::TooManyEvents {
                count: appends.len(),
                limit: APPEND_BATCH_MAX,
            });
        }
        let pending = appends
            .into_iter()
            .enumerate()
            .map(|(index, (stream, expected, events))| {
                let events = prepare_append(&stream, events).map_err(|error| StoreError::InBatch {
                    index,
                    source: Box::new(error),
                })?;
                Ok(PendingAppend {
                    stream,
                    expected,
                    events,
                })
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        self.submit(pending, true).await?.into_iter().collect()
    }

    async fn read_event(&self, stream: StreamName, event_id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        let stream = stream.to_string();
        let master = self.inner.master.clone();
        let raw = self
            .read(move |connection| rows::read_event(connection, master.as_ref(), &stream, event_id))
            .await?;
        raw.map(RawEvent::decode).transpose()
    }

    async fn read_stream_raw(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        let stream = stream.to_string();
        let master = self.inner.master.clone();
        self.read(move |connection| rows::read_stream(connection, master.as_ref(), &stream, from_version, limit))
            .await
    }

    async fn read_all_raw(&self, after: Option<Position>, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        let limit = limit.min(READ_LIMIT_MAX);
        let master = self.inner.master.clone();
        self.read(move |connection| rows::read_all(connection, master.as_ref(), after, limit))
            .await
    }

    /// Positions here are dense (1, 2, 3, …), so the page after one being
    /// read is known before it ends: two are read at once, on two reader
    /// connections, and handed over in order. The first page that is not
    /// full is the ledger's end; anything read beyond it (appended since)
    /// is dropped, so the pages never skip a position.
    fn read_all_pages(
        &self,
        after: Option<Position>,
        page_events: usize,
    ) -> BoxStream<'static, Result<Vec<RawEvent>, StoreError>> {
        const PAGES_IN_FLIGHT: usize = 2;
        let page_events = page_events.clamp(1, READ_LIMIT_MAX);
        let first = rows::sequence_of(after);
        let store = self.clone();
        futures::stream::iter(0i64..)
            .map(move |page| {
                let store = store.clone();
                let master = store.inner.master.clone();
                let from = first.saturating_add(page.saturating_mul(page_events as i64));
                async move {
                    store
                        .read(move |connection| {
                            rows::read_range(
                                connection,
                                master.as_ref(),
                                from,
                                from.saturating_add(page_events as i64),
                            )
                        })
                        .await
                }
            })
            .buffered(PAGES_IN_FLIGHT)
            .scan(true, move |more, page| {
                let taken = (*more).then(|| {
                    *more = page.as_ref().is_ok_and(|page| page.len() == page_events);
                    page
                });
                futures::future::ready(taken)
            })
            .filter(|page| futures::future::ready(!page.as_ref().is_ok_and(Vec::is_empty)))
            .boxed()
    }

    fn subscribe_all(&self, after: Option<Position>) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
        catch_up_then_live(self.clone(), after, self.inner.commits.subscribe())
    }

    /// Binary search: `recorded_at` never decreases along positions, which
    /// are dense from 1 here.
    async fn position_at(&self, recorded_at: Timestamp) -> Result<Option<Position>, StoreError> {
        self.read(move |connection| {
            let last = schema::load_tail(connection)?.position;
            let mut statement = connection
                .prepare_cached("SELECT recorded_at FROM events WHERE position = ?1")
                .map_err(|e| schema::sqlite_error(e, None))?;
            let mut recorded_at_of = |position: i64| -> Result<i64, StoreError> {
                statement
                    .query_row([position], |row| row.get(0))
                    .map_err(|e| schema::sqlite_error(e, Some(Position::from_sequence(position as u64))))
            };
            // Invariant: positions <= known were recorded by then; > beyond were not.
            let (mut known, mut beyond) = (0, last + 1);
            while beyond - known > 1 {
                let middle = known + (beyond - known) / 2;
                if recorded_at_of(middle)? <= recorded_at.as_millis() {
                    known = middle;
                } else {
                    beyond = middle;
                }
            }
            Ok((known > 0).then(|| Position::from_sequence(known as u64)))
        })
        .await
    }

    async fn digest_at(&self, position: Position) -> Result<Option<LedgerDigest>, StoreError> {
        SqliteStore::digest_at(self, position).await
    }

    async fn head(&self) -> Result<LedgerHead, StoreError> {
        self.read(|connection| {
            let tail = schema::load_tail(connection)?;
            let last_position = (tail.position > 0).then(|| Position::from_sequence(tail.position as u64));
            Ok(LedgerHead {
                last_position,
                // Positions are dense from 1 in this backend: the last is the count.
                event_count: tail.position as u64,
                digest: LedgerDigest {
                    position: last_position,
                    digest: tail.digest,
                },
            })
        })
        .await
    }
}
