//! The ledger a `--store` names, on whichever backend it lives: one type
//! every layer above holds, so the use cases, the server and the commands
//! run unchanged on the embedded file and on a KurrentDB cluster.

use std::path::Path;

use async_trait::async_trait;
use futures::stream::BoxStream;
use rapport_domain::{NewEvent, Position, RecordedEvent, StreamName, Timestamp};

use crate::location::LedgerLocation;
use crate::sealing::{MasterKey, SealingKey};
use crate::{
    AppendResult, EventStore, ExpectedVersion, KurrentDbOptions, KurrentDbStore, LedgerHead, RawEvent, SharedClock,
    SqliteOptions, SqliteStore, StoreError, SubscriptionMessage, system_clock,
};

/// How to open a ledger, whatever its backend.
#[derive(Clone, Debug)]
pub struct OpenOptions {
    /// Refuses appends; takes no lock (an auditor beside a running server).
    pub read_only: bool,
    /// The clock each append's recorded time comes from.
    pub clock: SharedClock,
    /// The key sealing personal data, if given rather than found.
    pub master_key: Option<MasterKey>,
}

impl OpenOptions {
    pub fn read_only() -> Self {
        OpenOptions {
            read_only: true,
            clock: system_clock(),
            master_key: None,
        }
    }

    pub fn writing_on(clock: SharedClock) -> Self {
        OpenOptions {
            read_only: false,
            clock,
            master_key: None,
        }
    }
}

#[derive(Clone, Debug)]
pub enum Ledger {
    Sqlite(SqliteStore),
    KurrentDb(KurrentDbStore),
}

impl Ledger {
    pub async fn open(location: &LedgerLocation, options: OpenOptions) -> Result<Ledger, StoreError> {
        match location {
            LedgerLocation::File(path) => {
                let sqlite = SqliteOptions {
                    read_only: options.read_only,
                    clock: options.clock,
                    master_key: options.master_key,
                };
                SqliteStore::open_with(path, sqlite).map(Ledger::Sqlite)
            }
            LedgerLocation::KurrentDb(cluster) => {
                let kurrentdb = KurrentDbOptions {
                    read_only: options.read_only,
                    clock: options.clock,
                    master_key: options.master_key,
                };
                KurrentDbStore::open(cluster, kurrentdb).await.map(Ledger::KurrentDb)
            }
        }
    }

    /// The path this node's own files are named after (`<path>.snapshot`,
    /// `<path>.tokens`, `<path>.key`): the ledger file, or the cluster
    /// location's `local`.
    pub fn local_path(&self) -> &Path {
        match self {
            Ledger::Sqlite(store) => store.path(),
            Ledger::KurrentDb(store) => &store.location().local,
        }
    }

    /// The secret for ids derived from personal data; `None` without the
    /// master key.
    pub fn pseudonym_key(&self) -> Option<[u8; 32]> {
        match self {
            Ledger::Sqlite(store) => store.pseudonym_key(),
            Ledger::KurrentDb(store) => store.pseudonym_key(),
        }
    }

    /// The key sealing the read-model snapshot; `None` without the master key.
    pub fn snapshot_key(&self) -> Option<SealingKey> {
        match self {
            Ledger::Sqlite(store) => store.snapshot_key(),
            Ledger::KurrentDb(store) => store.snapshot_key(),
        }
    }

    /// Which backend, for people: `SQLite` or `KurrentDB`.
    pub fn backend_name(&self) -> &'static str {
        match self {
            Ledger::Sqlite(_) => "SQLite",
            Ledger::KurrentDb(_) => "KurrentDB",
        }
    }
}

/// Every method is the backend's own, overrides included.
macro_rules! each_backend {
    ($ledger:expr, $store:ident => $call:expr) => {
        match $ledger {
            Ledger::Sqlite($store) => $call,
            Ledger::KurrentDb($store) => $call,
        }
    };
}

#[async_trait]
impl EventStore for Ledger {
    async fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        each_backend!(self, store => store.append(stream, expected, events).await)
    }

    async fn append_batch(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<Result<AppendResult, StoreError>>, StoreError> {
        each_backend!(self, store => store.append_batch(appends).await)
    }

    async fn append_all_or_nothing(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        each_backend!(self, store => store.append_all_or_nothing(appends).await)
    }

    async fn read_stream_raw(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        each_backend!(self, store => store.read_stream_raw(stream, from_version, limit).await)
    }

    async fn read_all_raw(&self, after: Option<Position>, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        each_backend!(self, store => store.read_all_raw(after, limit).await)
    }

    fn read_all_pages(
        &self,
        after: Option<Position>,
        page_events: usize,
    ) -> BoxStream<'static, Result<Vec<RawEvent>, StoreError>> {
        each_backend!(self, store => store.read_all_pages(after, page_events))
    }

    fn subscribe_all(&self, after: Option<Position>) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
        each_backend!(self, store => store.subscribe_all(after))
    }

    async fn head(&self) -> Result<LedgerHead, StoreError> {
        each_backend!(self, store => store.head().await)
    }

    async fn digest_at(&self, position: Position) -> Result<Option<rapport_domain::LedgerDigest>, StoreError> {
        each_backend!(self, store => EventStore::digest_at(store, position).await)
    }

    fn recorded_at_skew_millis(&self) -> i64 {
        each_backend!(self, store => store.recorded_at_skew_millis())
    }

    async fn read_stream(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RecordedEvent>, StoreError> {
        each_backend!(self, store => store.read_stream(stream, from_version, limit).await)
    }

    async fn read_event(&self, stream: StreamName, event_id: uuid::Uuid) -> Result<Option<RecordedEvent>, StoreError> {
        each_backend!(self, store => store.read_event(stream, event_id).await)
    }

    async fn read_all(&self, after: Option<Position>, limit: usize) -> Result<Vec<RecordedEvent>, StoreError> {
        each_backend!(self, store => store.read_all(after, limit).await)
    }

    async fn position_at(&self, recorded_at: Timestamp) -> Result<Option<Position>, StoreError> {
        each_backend!(self, store => store.position_at(recorded_at).await)
    }
}
