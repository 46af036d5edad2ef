//! The cluster backend: rapport's ledger on KurrentDB (EventStoreDB), for
//! a business that outgrows one machine. The server keeps the events and
//! their order; rapport keeps its own rules on top, exactly as the
//! embedded backend does, through the official client (`eventstore`, the
//! maintained `kurrentdb` crate).
//!
//! The mapping:
//! - streams 1:1 under the ledger's prefix (`rapport-contact-<uuid>`, …);
//!   rapport's own bookkeeping streams start with `<prefix>_` and are never
//!   read as ledger events: `_meta` (the master key's check value),
//!   `_digest` (ledger-digest checkpoints) and `_key-<stream>` (a contact's
//!   key, wrapped by the master key; erasure tombstones it);
//! - a stream version is the server's revision; an event id is the
//!   server's event id; a position is the `$all` commit/prepare position,
//!   opaque and sparse (never computed with);
//! - every append is judged on the stream's head and the events a retry of
//!   it could have written (recognised by content: type, payload, personal
//!   data, actor), then sent at the exact revision it was judged on, and
//!   what landed is read back: the server's own idempotency compares ids
//!   only, so a racing request under the same ids is told apart by content;
//! - the envelope rides in the event's custom metadata (`envelope.rs`);
//!   the recorded time is the writing node's clock, which the hash covers
//!   (the server's `created` is only known after the write);
//! - a missing stream reads as empty; reads retry transient faults with
//!   bounded back-off; appends are never retried blindly.
//!
//! What the server cannot give (see docs/operations.md): event ids unique
//! across streams (the server keeps them per stream), and one atomic
//! append across several streams: an all-or-nothing batch is checked
//! whole before its first write, then written stream by stream; a fault,
//! or another writer, in between leaves the first appends written, and
//! the error says how far it got.

mod envelope;

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use eventstore::{
    AppendToStreamOptions, Client, ClientSettings, CurrentRevision, EventData, ReadAllOptions, ReadStreamOptions,
    ResolvedEvent, RetryOptions, StreamPosition, StreamState, SubscribeToAllOptions, SubscriptionFilter,
    TombstoneStreamOptions,
};
use futures::stream::BoxStream;
use rapport_domain::hashing::{GENESIS, Hash, HashedFields, event_hash, ledger_digest, pii_digest};
use rapport_domain::{LedgerDigest, NewEvent, Position};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use uuid::Uuid;

pub use envelope::{Envelope, ServerEvent};

use crate::location::{ClusterLocation, masked};
use crate::sealing::{self, ContactKey, MasterKey};
use crate::{
    APPEND_BATCH_MAX, AppendResult, EventStore, ExpectedVersion, LedgerHead, Opened, PreparedEvent, READ_LIMIT_MAX,
    RawEvent, SharedClock, StoreError, StoredPii, SubscriptionMessage, prepare_append, system_clock,
};

/// The client is replaced at most this often.
const CLIENT_RENEWAL_INTERVAL: Duration = Duration::from_secs(1);
/// How far recorded time may step back along `$all`: nodes stamp their
/// appends before sending them, on clocks kept in step (NTP), so two
/// appends from two nodes can land in the other order. The hash chain
/// covers every stamp; this only bounds what `verify` takes for normal.
pub const RECORDED_AT_SKEW_MILLIS: i64 = 5_000;
/// A recorded time read from another node counts towards this node's
/// stamps only up to this far ahead of its own clock: one node's clock
/// running ahead must not drag every other's stamps along.
const SEEN_RECORDED_AHEAD_MAX_MILLIS: i64 = 1_000;
/// How far back in a stream an append expecting any version looks for an
/// earlier try of itself (and an all-or-nothing batch for ids in use).
const RETRY_SCAN_EVENTS_MAX: usize = 1_000;
/// How often an append whose stream moved under it (expecting any
/// version) is judged again before giving up.
const APPEND_RACE_ATTEMPTS_MAX: usize = 8;
/// Attempts of one read against transient faults, and their back-off.
const READ_ATTEMPTS_MAX: u32 = 5;
const READ_BACKOFF_FIRST: Duration = Duration::from_millis(50);
const READ_BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A follower re-reads at least this often even if no commit woke it, so
/// commits made while its wake-up subscription was down are not missed.
const FOLLOW_POLL_INTERVAL: Duration = Duration::from_secs(1);
/// Ledger events between two digest checkpoints written by `head`.
const DIGEST_CHECKPOINT_EVERY_EVENTS: u64 = 10_000;
/// What one proposed event costs on the wire besides its type, payload
/// and metadata (id, content type, framing), for the append size check.
const PROPOSED_EVENT_OVERHEAD_BYTES: usize = 64;
/// How long a contact key is used before it is read again, bounding how
/// long a node that has not yet followed another node's erasure opens data.
const KEY_CACHE_TTL: Duration = Duration::from_secs(30);
/// Contact keys remembered (about 100 bytes each); the cache is emptied
/// when full.
const KEY_CACHE_MAX: usize = 200_000;

const META_EVENT: &str = "RapportLedgerCreated";
const KEY_EVENT: &str = "RapportContactKey";
const DIGEST_EVENT: &str = "RapportDigestCheckpoint";
const ERASURE_EVENT: &str = "ContactErased";

/// How to open a ledger on a cluster.
#[derive(Clone, Debug)]
pub struct KurrentDbOptions {
    /// Refuses appends and writes no bookkeeping (a `verify`, an export).
    pub read_only: bool,
    /// The clock each append's recorded time comes from.
    pub clock: SharedClock,
    /// The key sealing personal data; when absent it is found as
    /// `sealing::find_master_key` says for the node's `local` path, and a
    /// new ledger makes one.
    pub master_key: Option<MasterKey>,
}

impl Default for KurrentDbOptions {
    fn default() -> Self {
        KurrentDbOptions {
            read_only: false,
            clock: system_clock(),
            master_key: None,
        }
    }
}

/// A rapport ledger on a KurrentDB cluster. Cheap to clone.
#[derive(Clone, Debug)]
pub struct KurrentDbStore {
    inner: Arc<Inner>,
}

struct Inner {
    location: ClusterLocation,
    settings: ClientSettings,
    /// Replaced when the client reports its connection closed for good.
    client: RwLock<Client>,
    read_only: bool,
    clock: SharedClock,
    master: Option<MasterKey>,
    /// One append sent at a time from this node, holding the last recorded
    /// time it stamped, so recorded times never go back along its writes.
    append_turn: tokio::sync::Mutex<i64>,
    /// The latest recorded time this node has read from the ledger.
    seen_recorded_at: AtomicI64,
    keys: Mutex<HashMap<String, KeyState>>,
    digest: tokio::sync::Mutex<DigestState>,
    commits: Arc<watch::Sender<Option<Position>>>,
    /// When the client was last replaced.
    renewed_at: Mutex<Option<Instant>>,
    /// The tasks waking followers: they live as long as the store.
    waker: Mutex<Vec<tokio::task::AbortHandle>>,
    // Held for its lock on `<local>-lock`; released when the store closes.
    _lock: Option<std::fs::File>,
}

impl std::fmt::Debug for Inner {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KurrentDbStore")
            .field("location", &self.location)
            .field("read_only", &self.read_only)
            .finish_non_exhaustive()
    }
}

impl Drop for Inner {
    fn drop(&mut self) {
        let wakers = self.waker.get_mut().unwrap_or_else(std::sync::PoisonError::into_inner);
        for waker in wakers.drain(..) {
            waker.abort();
        }
    }
}

#[derive(Clone, Debug)]
enum KeyState {
    /// The key, and when it was read: another node's erasure is seen by
    /// the time it is read again.
    Key(ContactKey, Instant),
    /// Tombstoned by an erasure: never made again.
    Destroyed,
}

/// The ledger digest as far as this node has folded it.
#[derive(Clone, Copy, Debug, Default)]
struct DigestState {
    loaded: bool,
    position: Option<Position>,
    count: u64,
    digest: Hash,
    /// The digest stream's last revision, for the next checkpoint's
    /// exact expected version.
    checkpoint_revision: Option<u64>,
    folded_since_checkpoint: u64,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct LedgerMeta {
    master_key_check: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct DigestCheckpoint {
    commit: u64,
    prepare: u64,
    count: u64,
    digest: String,
}

/// The rustls provider the client's TLS runs on, installed explicitly:
/// its dependency tree enables two, and rustls refuses to guess.
pub fn install_crypto_provider() {
    // Already installed (by us or the host program) is fine.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// A fault worth another read: the connection, the leader, a deadline.
fn transient(error: &eventstore::Error) -> bool {
    use eventstore::Error as E;
    match error {
        E::ServerError(_) | E::NotLeaderException(_) | E::ConnectionClosed | E::GrpcConnectionError(_) => true,
        E::DeadlineExceeded => true,
        E::Grpc { code, .. } => matches!(
            code,
            tonic::Code::Unavailable | tonic::Code::ResourceExhausted | tonic::Code::Aborted
        ),
        _ => false,
    }
}

/// A client message with the connection string, and any password in it,
/// taken out.
fn scrubbed(message: &str, connection: &str) -> String {
    let mut message = message.replace(connection, &masked(connection));
    if let Some((credentials, _)) = connection.split_once("://").and_then(|(_, rest)| rest.rsplit_once('@'))
        && let Some((_, password)) = credentials.split_once(':')
        && !password.is_empty()
    {
        message = message.replace(password, "***");
    }
    message
}

fn unavailable(doing: &str, error: &eventstore::Error) -> StoreError {
    StoreError::Unavailable(format!("{doing} on the KurrentDB cluster: {error}"))
}

fn server_position(position: Position) -> eventstore::Position {
    eventstore::Position {
        commit: position.commit,
        prepare: position.prepare,
    }
}

fn our_position(position: eventstore::Position) -> Position {
    Position::new(position.commit, position.prepare)
}

fn expected_state(head: Option<u64>) -> StreamState {
    head.map_or(StreamState::NoStream, StreamState::StreamRevision)
}

fn current_version(current: CurrentRevision) -> Option<u64> {
    match current {
        CurrentRevision::Current(version) => Some(version),
        CurrentRevision::NoStream => None,
    }
}

/// Reads one page of a stream; a missing stream is an empty page.
async fn read_stream_page(
    client: Client,
    name: String,
    from: StreamPosition<u64>,
    count: usize,
    backwards: bool,
) -> eventstore::Result<Vec<ResolvedEvent>> {
    let options = ReadStreamOptions::default().position(from).max_count(count);
    let options = if backwards {
        options.backwards()
    } else {
        options.forwards()
    };
    let mut events = Vec::new();
    let mut reading = match client.read_stream(name.as_str(), &options).await {
        Ok(reading) => reading,
        Err(eventstore::Error::ResourceNotFound) => return Ok(events),
        Err(error) => return Err(error),
    };
    loop {
        match reading.next().await {
            Ok(Some(event)) => events.push(event),
            Ok(None) => return Ok(events),
            Err(eventstore::Error::ResourceNotFound) => return Ok(Vec::new()),
            Err(error) => return Err(error),
        }
    }
}

/// Reads `$all` forwards from `after` (the server includes the event at
/// the start position; it is dropped here), at most `count` events of
/// the ledger's streams.
async fn read_all_page(
    client: Client,
    filter: SubscriptionFilter,
    after: Option<Position>,
    count: usize,
) -> eventstore::Result<Vec<ResolvedEvent>> {
    let start = after.map_or(StreamPosition::Start, |after| {
        StreamPosition::Position(server_position(after))
    });
    let options = ReadAllOptions::default()
        .position(start)
        .forwards()
        .max_count(count.saturating_add(1))
        .filter(filter);
    let mut reading = client.read_all(&options).await?;
    let mut events = Vec::with_capacity(count.min(READ_LIMIT_MAX));
    while let Some(event) = reading.next().await? {
        let position = our_position(event.get_original_event().position);
        if after.is_none_or(|after| position > after) && events.len() < count {
            events.push(event);
        }
    }
    Ok(events)
}

/// The master key checked against the one the ledger records; a writer on
/// a new ledger records it (making one if none is found).
async fn checked_master_key(
    client: &Client,
    location: &ClusterLocation,
    mut found: Option<MasterKey>,
    read_only: bool,
) -> Result<Option<MasterKey>, StoreError> {
    let meta_stream = format!("{}_meta", location.prefix);
    for _ in 0..2 {
        let first = read_stream_page(client.clone(), meta_stream.clone(), StreamPosition::Start, 1, false)
            .await
            .map_err(|error| unavailable("reading the ledger's master key check", &error))?;
        if let Some(event) = first.first() {
            let meta: LedgerMeta =
                serde_json::from_slice(&event.get_original_event().data).map_err(|error| StoreError::Corrupt {
                    position: None,
                    detail: format!("{meta_stream} does not parse: {error}"),
                })?;
            return match found {
                Some(key) if hex::encode(key.check_value()) != meta.master_key_check => {
                    Err(StoreError::MasterKey(format!(
                        "the master key found is not the one the ledger under prefix {} is sealed with: give every \
                         rapport node the same {} (or {})",
                        location.prefix,
                        sealing::MASTER_KEY_VARIABLE,
                        sealing::master_key_file(&location.local).display()
                    )))
                }
                Some(key) => Ok(Some(key)),
                None if read_only => Ok(None),
                None => Err(StoreError::MasterKey(format!(
                    "the ledger under prefix {} seals personal data with a master key and none was found: set {} or \
                     restore {}",
                    location.prefix,
                    sealing::MASTER_KEY_VARIABLE,
                    sealing::master_key_file(&location.local).display()
                ))),
            };
        }
        if read_only {
            return Err(StoreError::NotALedger {
                path: masked(&location.connection),
                detail: format!(
                    "no rapport ledger under prefix {}: nothing was written there yet, or the prefix is mistyped",
                    location.prefix
                ),
            });
        }
        let made_here = found.is_none();
        let key = match &found {
            Some(key) => key.clone(),
            None => sealing::create_master_key(&location.local)?,
        };
        let meta = LedgerMeta {
            master_key_check: hex::encode(key.check_value()),
        };
        let event = EventData::json(META_EVENT, &meta)
            .map_err(|error| StoreError::Io(format!("encoding the ledger's master key check: {error}")))?
            .id(Uuid::now_v7());
        let options = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
        match client.append_to_stream(meta_stream.as_str(), &options, event).await {
            Ok(_) => return Ok(Some(key)),
            // Another node created the ledger first: check against theirs,
            // and leave no key file behind that nothing was sealed with.
            Err(eventstore::Error::WrongExpectedVersion { .. }) => {
                if made_here {
                    let _ = std::fs::remove_file(sealing::master_key_file(&location.local));
                    found = None;
                } else {
                    found = Some(key);
                }
                continue;
            }
            Err(error) => return Err(unavailable("recording the ledger's master key check", &error)),
        }
    }
    Err(StoreError::Unavailable(format!(
        "{meta_stream} was created and then read back empty"
    )))
}

impl KurrentDbStore {
    /// Connects to the cluster, checks the master key against the ledger's
    /// and, writing to a new ledger, records it.
    pub async fn open(location: &ClusterLocation, options: KurrentDbOptions) -> Result<Self, StoreError> {
        install_crypto_provider();
        let not_a_ledger = |detail: String| StoreError::NotALedger {
            path: masked(&location.connection),
            detail,
        };
        let settings: ClientSettings = location
            .connection
            .parse()
            // The client's message quotes the whole string, password and all.
            .map_err(|error: eventstore::ClientSettingsParseError| {
                not_a_ledger(format!(
                    "the connection string does not parse: {}",
                    scrubbed(&error.to_string(), &location.connection)
                ))
            })?;
        let client = Client::new(settings.clone()).map_err(|error| {
            not_a_ledger(format!(
                "the KurrentDB client refused the settings: {}",
                scrubbed(&error.to_string(), &location.connection)
            ))
        })?;
        // One writing node per `local`: its snapshot and tokens are its own.
        let lock = match options.read_only {
            true => None,
            false => Some(crate::sqlite::take_lock(&location.local)?),
        };
        let found = match options.master_key {
            Some(key) => Some(key),
            None => sealing::find_master_key(&location.local)?,
        };
        let master = checked_master_key(&client, location, found, options.read_only).await?;
        let (commits, _) = watch::channel(None);
        Ok(KurrentDbStore {
            inner: Arc::new(Inner {
                location: location.clone(),
                settings,
                client: RwLock::new(client),
                read_only: options.read_only,
                clock: options.clock,
                master,
                append_turn: tokio::sync::Mutex::new(i64::MIN),
                seen_recorded_at: AtomicI64::new(i64::MIN),
                keys: Mutex::new(HashMap::new()),
                digest: tokio::sync::Mutex::new(DigestState::default()),
                commits: Arc::new(commits),
                renewed_at: Mutex::new(None),
                waker: Mutex::new(Vec::new()),
                _lock: lock,
            }),
        })
    }

    pub fn location(&self) -> &ClusterLocation {
        &self.inner.location
    }

    /// The secret for ids derived from personal data; `None` without the
    /// master key.
    pub fn pseudonym_key(&self) -> Option<[u8; 32]> {
        self.inner.master.as_ref().map(MasterKey::pseudonym_key)
    }

    /// The key sealing this node's read-model snapshot; `None` without the
    /// master key.
    pub fn snapshot_key(&self) -> Option<sealing::SealingKey> {
        self.inner.master.as_ref().map(MasterKey::snapshot_key)
    }

    fn client(&self) -> Client {
        self.inner
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }

    /// A client whose connection failed for good is replaced: the client
    /// never reconnects once its first connection attempt failed. At most
    /// one a second: each client keeps a task of its own alive.
    fn renew_client_after(&self, error: &eventstore::Error) {
        if !matches!(
            error,
            eventstore::Error::ConnectionClosed | eventstore::Error::GrpcConnectionError(_)
        ) {
            return;
        }
        {
            let mut renewed = self
                .inner
                .renewed_at
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if renewed.is_some_and(|at| at.elapsed() < CLIENT_RENEWAL_INTERVAL) {
                return;
            }
            *renewed = Some(Instant::now());
        }
        match Client::new(self.inner.settings.clone()) {
            Ok(client) => {
                *self
                    .inner
                    .client
                    .write()
                    .unwrap_or_else(std::sync::PoisonError::into_inner) = client
            }
            Err(error) => tracing::warn!(%error, "making a new KurrentDB client failed; keeping the old one"),
        }
    }

    /// Runs a read, again after transient faults with growing pauses.
    async fn with_retries<T, F, Fut>(&self, doing: &str, read: F) -> Result<T, StoreError>
    where
        F: Fn(Client) -> Fut,
        Fut: Future<Output = eventstore::Result<T>>,
    {
        let mut pause = READ_BACKOFF_FIRST;
        let mut attempt = 1;
        loop {
            match read(self.client()).await {
                Ok(value) => return Ok(value),
                Err(error) if transient(&error) && attempt < READ_ATTEMPTS_MAX => {
                    tracing::debug!(%error, attempt, "{doing}: trying again");
                    self.renew_client_after(&error);
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(READ_BACKOFF_MAX);
                    attempt += 1;
                }
                Err(error) => {
                    self.renew_client_after(&error);
                    return Err(unavailable(doing, &error));
                }
            }
        }
    }

    fn prefix(&self) -> &str {
        &self.inner.location.prefix
    }

    fn server_stream(&self, stream: &str) -> String {
        format!("{}{stream}", self.prefix())
    }

    fn key_stream(&self, stream: &str) -> String {
        format!("{}_key-{stream}", self.prefix())
    }

    fn digest_stream(&self) -> String {
        format!("{}_digest", self.prefix())
    }

    /// The ledger's own streams, filtered by the server: whole names, the
    /// prefix then exactly a stream name of ours, so another ledger whose
    /// prefix starts with ours (`shop-` and `shop-contact-`) never matches.
    /// The prefix is letters, digits and dashes: it needs no escaping.
    fn ledger_filter(&self) -> SubscriptionFilter {
        const UUID: &str = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}";
        SubscriptionFilter::on_stream_name()
            .regex(format!("^{}((contact|campaign|group)-{UUID}|policy)$", self.prefix()))
    }

    /// The ledger stream a server stream is, if it is one of ours: checked
    /// here too, whatever the server's filter let through.
    fn ledger_stream<'a>(&self, server_stream: &'a str) -> Option<&'a str> {
        let stream = server_stream.strip_prefix(self.prefix())?;
        let parsed: rapport_domain::StreamName = stream.parse().ok()?;
        // Only the canonical spelling: another spelling is another stream.
        (parsed.to_string() == stream).then_some(stream)
    }

    /// Server events of the ledger's streams as stored events, personal
    /// data opened where the key is at hand.
    async fn raw_events(&self, events: Vec<ResolvedEvent>, open_pii: bool) -> Result<Vec<RawEvent>, StoreError> {
        // An erasure anywhere in the page closes its contact's data before
        // any event of the page is opened.
        for resolved in &events {
            let recorded = resolved.get_original_event();
            if recorded.event_type == ERASURE_EVENT
                && let Some(stream) = self.ledger_stream(recorded.stream_id())
            {
                self.remember_key(stream, KeyState::Destroyed);
            }
        }
        let mut raws = Vec::with_capacity(events.len());
        for resolved in &events {
            let recorded = resolved.get_original_event();
            let Some(stream) = self.ledger_stream(recorded.stream_id()) else {
                continue;
            };
            let (mut raw, sealed) = Envelope::unpack(&ServerEvent {
                stream,
                revision: recorded.revision,
                event_id: recorded.id,
                event_type: &recorded.event_type,
                position: our_position(recorded.position),
                data: &recorded.data,
                custom_metadata: &recorded.custom_metadata,
            })?;
            self.inner
                .seen_recorded_at
                .fetch_max(raw.recorded_at_millis, Ordering::Relaxed);
            raw.pii = match (sealed, open_pii) {
                (Some(sealed), true) => {
                    let opened = match self.contact_key(stream).await? {
                        Some(key) => match key.open(raw.event_id, &sealed) {
                            Some(json) => Opened::Plain {
                                json,
                                digest_key: key.digest_key(),
                            },
                            None => Opened::Damaged,
                        },
                        None => Opened::Locked,
                    };
                    Some(StoredPii { sealed, opened })
                }
                (Some(sealed), false) => Some(StoredPii {
                    sealed,
                    opened: Opened::Locked,
                }),
                (None, _) => None,
            };
            raws.push(raw);
        }
        Ok(raws)
    }

    fn remember_key(&self, stream: &str, state: KeyState) {
        let mut keys = self
            .inner
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if keys.len() >= KEY_CACHE_MAX {
            keys.clear();
        }
        keys.insert(stream.to_owned(), state);
    }

    /// The contact's key if it is at hand: `None` without the master key,
    /// or once an erasure destroyed it.
    async fn contact_key(&self, stream: &str) -> Result<Option<ContactKey>, StoreError> {
        let Some(master) = &self.inner.master else {
            return Ok(None);
        };
        match self.cached_key(stream) {
            Some(KeyState::Key(key, fetched)) if fetched.elapsed() < KEY_CACHE_TTL => return Ok(Some(key)),
            Some(KeyState::Destroyed) => return Ok(None),
            Some(KeyState::Key(..)) | None => {}
        }
        match self.stored_key(master, stream).await? {
            StoredKey::Found(key) => {
                self.remember_key(stream, KeyState::Key(key.clone(), Instant::now()));
                Ok(Some(key))
            }
            StoredKey::Destroyed => {
                self.remember_key(stream, KeyState::Destroyed);
                Ok(None)
            }
            StoredKey::Missing => Ok(None),
        }
    }

    /// The first event of a contact's key stream; `None` once it is
    /// tombstoned.
    async fn key_record(&self, stream: &str) -> Result<Option<Vec<ResolvedEvent>>, StoreError> {
        let key_stream = self.key_stream(stream);
        self.with_retries("reading a contact key", |client| {
            let key_stream = key_stream.clone();
            async move {
                match read_stream_page(client, key_stream, StreamPosition::Start, 1, false).await {
                    Err(eventstore::Error::ResourceDeleted) => Ok(None),
                    Err(error) => Err(error),
                    Ok(events) => Ok(Some(events)),
                }
            }
        })
        .await
    }

    fn cached_key(&self, stream: &str) -> Option<KeyState> {
        self.inner
            .keys
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(stream)
            .cloned()
    }

    async fn stored_key(&self, master: &MasterKey, stream: &str) -> Result<StoredKey, StoreError> {
        let Some(events) = self.key_record(stream).await? else {
            return Ok(StoredKey::Destroyed);
        };
        let Some(event) = events.first() else {
            return Ok(StoredKey::Missing);
        };
        master
            .unwrap(stream, &event.get_original_event().data)
            .map(StoredKey::Found)
            .ok_or_else(|| StoreError::Corrupt {
                position: None,
                detail: format!("the contact key of {stream} does not open under the master key"),
            })
    }

    /// The contact's key for sealing new personal data: theirs, or a new
    /// one recorded before the events it seals. An erased contact never
    /// gets one again.
    async fn key_for_writing(&self, stream: &str, erased: bool) -> Result<ContactKey, StoreError> {
        let erased_error = || StoreError::Erased {
            stream: stream.to_owned(),
        };
        if erased {
            return Err(erased_error());
        }
        let master =
            self.inner.master.as_ref().ok_or_else(|| {
                StoreError::MasterKey("personal data cannot be sealed without the master key".to_owned())
            })?;
        for _ in 0..2 {
            match self.stored_key(master, stream).await? {
                StoredKey::Found(key) => return Ok(key),
                StoredKey::Destroyed => return Err(erased_error()),
                StoredKey::Missing => {}
            }
            let key = ContactKey::generate();
            let event = EventData::binary(KEY_EVENT, Bytes::from(master.wrap(stream, &key))).id(Uuid::now_v7());
            let options = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
            match self
                .client()
                .append_to_stream(self.key_stream(stream), &options, event)
                .await
            {
                Ok(_) => {
                    self.remember_key(stream, KeyState::Key(key.clone(), Instant::now()));
                    return Ok(key);
                }
                // Another node made it first: use theirs.
                Err(eventstore::Error::WrongExpectedVersion { .. }) => continue,
                Err(eventstore::Error::ResourceDeleted) => return Err(erased_error()),
                Err(error) => return Err(unavailable("recording a contact key", &error)),
            }
        }
        Err(StoreError::Unavailable(format!(
            "the contact key of {stream} was made elsewhere and then not found"
        )))
    }

    /// Tombstones the contact's key stream, before the erasure is
    /// appended: the server forgets it for good (its scavenge removes it
    /// from disk), and an erasure on the ledger always has its key gone.
    async fn destroy_key(&self, stream: &str) -> Result<(), StoreError> {
        let options = TombstoneStreamOptions::default().stream_state(StreamState::Any);
        match self.client().tombstone_stream(self.key_stream(stream), &options).await {
            Ok(_) | Err(eventstore::Error::ResourceDeleted) | Err(eventstore::Error::ResourceNotFound) => {
                self.remember_key(stream, KeyState::Destroyed);
                Ok(())
            }
            Err(error) => Err(StoreError::Unavailable(format!(
                "the key of {stream} could not be destroyed ({error}); nothing was erased: retry the erasure"
            ))),
        }
    }

    /// Whether the contact was erased: their key stream is tombstoned.
    async fn is_erased(&self, stream: &str) -> Result<bool, StoreError> {
        if matches!(self.cached_key(stream), Some(KeyState::Destroyed)) {
            return Ok(true);
        }
        let deleted = self.key_record(stream).await?.is_none();
        if deleted {
            self.remember_key(stream, KeyState::Destroyed);
        }
        Ok(deleted)
    }

    /// Whether the contact's stream holds an erasure among its last
    /// `RETRY_SCAN_EVENTS_MAX` events (an erased contact takes few after).
    async fn erasure_recorded(&self, stream: &str) -> Result<bool, StoreError> {
        let tail = self.read_stream_tail(stream, RETRY_SCAN_EVENTS_MAX).await?;
        Ok(tail.iter().any(|event| event.event_type == ERASURE_EVENT))
    }

    /// The stream's last version and hash.
    async fn stream_head(&self, stream: &str) -> Result<Option<(u64, Hash)>, StoreError> {
        let name = self.server_stream(stream);
        let last = self
            .with_retries("reading a stream's head", |client| {
                read_stream_page(client, name.clone(), StreamPosition::End, 1, true)
            })
            .await?;
        Ok(self
            .raw_events(last, false)
            .await?
            .last()
            .map(|event| (event.version, event.hash)))
    }

    /// The events a retry of this append could have written before: those
    /// after the version it expected, or, expecting any version, the
    /// stream's last `RETRY_SCAN_EVENTS_MAX`.
    async fn retry_window(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        head: Option<u64>,
        count: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let Some(head) = head else { return Ok(Vec::new()) };
        let from = match expected {
            ExpectedVersion::Exact(version) if version >= head => return Ok(Vec::new()),
            ExpectedVersion::Exact(version) => version + 1,
            ExpectedVersion::NoStream => 0,
            ExpectedVersion::Any | ExpectedVersion::StreamExists => {
                return self.read_stream_tail(stream, RETRY_SCAN_EVENTS_MAX).await;
            }
        };
        self.read_stream_raw_named(stream, from, count).await
    }

    /// A stream's last `count` events at most, in order, personal data left
    /// sealed (see `open_retried`).
    async fn read_stream_tail(&self, stream: &str, count: usize) -> Result<Vec<RawEvent>, StoreError> {
        let name = self.server_stream(stream);
        let count = count.clamp(1, READ_LIMIT_MAX);
        let mut events = self
            .with_retries("reading a stream", |client| {
                read_stream_page(client, name.clone(), StreamPosition::End, count, true)
            })
            .await?;
        events.reverse();
        self.raw_events(events, false).await
    }

    /// Opens the personal data of the stored events an append's ids name:
    /// only those are compared with a retry, so the rest stay sealed.
    async fn open_retried(
        &self,
        stream: &str,
        stored: &mut [RawEvent],
        events: &[PreparedEvent],
    ) -> Result<(), StoreError> {
        let ids: HashSet<Uuid> = events.iter().map(|event| event.event_id).collect();
        for raw in stored.iter_mut().filter(|raw| ids.contains(&raw.event_id)) {
            let Some(stored_pii) = raw.pii.as_mut() else { continue };
            if let Some(key) = self.contact_key(stream).await? {
                stored_pii.opened = match key.open(raw.event_id, &stored_pii.sealed) {
                    Some(json) => Opened::Plain {
                        json,
                        digest_key: key.digest_key(),
                    },
                    None => Opened::Damaged,
                };
            }
        }
        Ok(())
    }

    async fn read_stream_raw_named(
        &self,
        stream: &str,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let limit = limit.clamp(1, READ_LIMIT_MAX);
        let name = self.server_stream(stream);
        let events = self
            .with_retries("reading a stream", |client| {
                read_stream_page(
                    client,
                    name.clone(),
                    StreamPosition::Position(from_version),
                    limit,
                    false,
                )
            })
            .await?;
        self.raw_events(events, true).await
    }

    async fn read_all_with(
        &self,
        after: Option<Position>,
        limit: usize,
        open_pii: bool,
    ) -> Result<Vec<RawEvent>, StoreError> {
        let limit = limit.clamp(1, READ_LIMIT_MAX);
        let filter = self.ledger_filter();
        let events = self
            .with_retries("reading the ledger", |client| {
                read_all_page(client, filter.clone(), after, limit)
            })
            .await?;
        self.raw_events(events, open_pii).await
    }

    /// Judges and writes one append, again (with fresh state) while its
    /// stream moves under an append that expects any version.
    async fn append_one(
        &self,
        stream: &str,
        expected: ExpectedVersion,
        events: &[PreparedEvent],
    ) -> Result<AppendResult, StoreError> {
        if self.inner.read_only {
            return Err(StoreError::Unavailable("the ledger was opened read-only".to_owned()));
        }
        let erases = events.iter().any(|event| event.erases_personal_data);
        let seals = events.iter().any(|event| event.pii.is_some());
        for _ in 0..APPEND_RACE_ATTEMPTS_MAX {
            let head = self.stream_head(stream).await?;
            let mut window = self
                .retry_window(stream, expected, head.map(|(version, _)| version), events.len())
                .await?;
            self.open_retried(stream, &mut window, events).await?;
            if let Some(result) = earlier_result(stream, events, &window, &[])? {
                return Ok(result);
            }
            let current = head.map(|(version, _)| version);
            if !expected.admits(current) {
                return Err(StoreError::WrongExpectedVersion {
                    stream: stream.to_owned(),
                    expected,
                    actual: current,
                });
            }
            if seals {
                // Before the contact's key is made, should it be new.
                self.check_size(stream, head, events)?;
            }
            // One erasure per contact: refused only when one is recorded. A
            // key already gone without one (an erasure cut short after its
            // first step) lets the erasure through.
            if erases && self.erasure_recorded(stream).await? {
                return Err(StoreError::Erased {
                    stream: stream.to_owned(),
                });
            }
            let key = match seals {
                true => Some(self.key_for_writing(stream, self.is_erased(stream).await?).await?),
                false => None,
            };
            if erases {
                // The key goes first: an erasure on the ledger never leaves
                // a key that opens what it erased.
                self.destroy_key(stream).await?;
            }
            // Stamped and sent one at a time, so this node's recorded times
            // follow the order the server gives its appends; never below a
            // time this node has seen recorded by another.
            let mut last_recorded = self.inner.append_turn.lock().await;
            let recorded_at = self.inner.clock.now().as_millis().max(*last_recorded).max(
                self.inner
                    .seen_recorded_at
                    .load(Ordering::Relaxed)
                    .min(self.inner.clock.now().as_millis() + SEEN_RECORDED_AHEAD_MAX_MILLIS),
            );
            *last_recorded = recorded_at;
            let (proposed, hashes, bytes) = proposed_events(stream, head, recorded_at, events, key.as_ref())?;
            let limit = self.inner.location.append_bytes_max;
            if bytes > limit {
                return Err(StoreError::AppendTooLarge { bytes, limit });
            }
            let options = AppendToStreamOptions::default().stream_state(expected_state(current));
            let outcome = self
                .client()
                .append_to_stream(self.server_stream(stream), &options, proposed)
                .await;
            drop(last_recorded);
            match outcome {
                Ok(_) => {
                    let result = self.landed(stream, current, events, &hashes).await?;
                    self.inner.commits.send_if_modified(|last| {
                        let moved = *last < Some(result.position);
                        if moved {
                            *last = Some(result.position);
                        }
                        moved
                    });
                    return Ok(result);
                }
                Err(eventstore::Error::WrongExpectedVersion { current, .. }) => {
                    let actual = current_version(current);
                    if !expected.admits(actual) {
                        return Err(StoreError::WrongExpectedVersion {
                            stream: stream.to_owned(),
                            expected,
                            actual,
                        });
                    }
                    // Judged again below on what the stream holds now.
                }
                Err(eventstore::Error::Grpc {
                    code: tonic::Code::InvalidArgument,
                    ..
                }) => {
                    // The server's own size limit is below what rapport was told.
                    return Err(StoreError::AppendTooLarge {
                        bytes,
                        limit: self.inner.location.append_bytes_max,
                    });
                }
                Err(error) => {
                    self.renew_client_after(&error);
                    return Err(unavailable("appending", &error));
                }
            }
        }
        Err(StoreError::Unavailable(format!(
            "{stream} kept moving under this append ({APPEND_RACE_ATTEMPTS_MAX} attempts)"
        )))
    }

    /// Refuses an append over the server's `MaxAppendSize` before anything
    /// (a contact key included) is written; sealed data has a fixed
    /// overhead, so a stand-in key gives the exact size.
    fn check_size(&self, stream: &str, head: Option<(u64, Hash)>, events: &[PreparedEvent]) -> Result<(), StoreError> {
        let stand_in = ContactKey::generate();
        let (_, _, bytes) = proposed_events(stream, head, i64::MAX, events, Some(&stand_in))?;
        let limit = self.inner.location.append_bytes_max;
        if bytes > limit {
            return Err(StoreError::AppendTooLarge { bytes, limit });
        }
        Ok(())
    }

    /// What the server holds at the versions an append that succeeded was
    /// sent for. The server's idempotency compares ids only: when another
    /// request under the same ids got there first, the answer is that one's
    /// result if it was the same events, and a refusal if it was not.
    async fn landed(
        &self,
        stream: &str,
        before: Option<u64>,
        events: &[PreparedEvent],
        hashes: &[Hash],
    ) -> Result<AppendResult, StoreError> {
        let from = before.map_or(0, |version| version + 1);
        let stored = self.read_stream_raw_named(stream, from, events.len()).await?;
        let ours = stored.len() == events.len() && stored.iter().zip(hashes).all(|(event, hash)| event.hash == *hash);
        if ours && let Some(last) = stored.last() {
            return Ok(AppendResult {
                next_expected_version: last.version,
                position: last.position,
            });
        }
        match earlier_result(stream, events, &stored, &[])? {
            Some(result) => Ok(result),
            None => Err(StoreError::Unavailable(format!(
                "{stream} does not hold at versions {from} on what the server acknowledged; read it again"
            ))),
        }
    }

    /// Folds the ledger digest on from where this node left it, from the
    /// last checkpoint on a fresh start, and records a checkpoint every
    /// `DIGEST_CHECKPOINT_EVERY_EVENTS`.
    async fn fold_digest(&self) -> Result<DigestState, StoreError> {
        let mut state = self.inner.digest.lock().await;
        if !state.loaded {
            *state = self.last_checkpoint().await?;
        }
        loop {
            let page = self.read_all_with(state.position, READ_LIMIT_MAX, false).await?;
            if page.is_empty() {
                break;
            }
            for event in &page {
                state.digest = ledger_digest(&state.digest, event.position, &event.hash);
                state.position = Some(event.position);
                state.count += 1;
                state.folded_since_checkpoint += 1;
            }
        }
        if state.folded_since_checkpoint >= DIGEST_CHECKPOINT_EVERY_EVENTS && !self.inner.read_only {
            self.record_checkpoint(&mut state).await;
        }
        Ok(*state)
    }

    async fn last_checkpoint(&self) -> Result<DigestState, StoreError> {
        let name = self.digest_stream();
        let last = self
            .with_retries("reading the digest checkpoints", |client| {
                read_stream_page(client, name.clone(), StreamPosition::End, 1, true)
            })
            .await?;
        let Some(event) = last.first().map(ResolvedEvent::get_original_event) else {
            return Ok(DigestState {
                loaded: true,
                ..DigestState::default()
            });
        };
        let (position, count, digest) = parse_checkpoint(&event.data)?;
        Ok(DigestState {
            loaded: true,
            position: Some(position),
            count,
            digest,
            checkpoint_revision: Some(event.revision),
            folded_since_checkpoint: 0,
        })
    }

    /// The last checkpoint at or before `position`, found walking the
    /// checkpoints back (one every `DIGEST_CHECKPOINT_EVERY_EVENTS`).
    async fn checkpoint_before(&self, position: Position) -> Result<(Option<Position>, Hash), StoreError> {
        const PAGE: usize = 256;
        let name = self.digest_stream();
        let mut from = StreamPosition::End;
        loop {
            let page = self
                .with_retries("reading the digest checkpoints", |client| {
                    read_stream_page(client, name.clone(), from, PAGE, true)
                })
                .await?;
            for event in page.iter().map(ResolvedEvent::get_original_event) {
                let (at, _, digest) = parse_checkpoint(&event.data)?;
                if at <= position {
                    return Ok((Some(at), digest));
                }
            }
            match page.last().map(|event| event.get_original_event().revision) {
                Some(revision) if page.len() == PAGE && revision > 0 => from = StreamPosition::Position(revision - 1),
                _ => return Ok((None, GENESIS)),
            }
        }
    }

    /// Appends a checkpoint expecting exactly the last one this node read:
    /// if another node wrote one meanwhile, theirs stands (the digest is
    /// the same on every node) and this one is read again next time.
    async fn record_checkpoint(&self, state: &mut DigestState) {
        let Some(position) = state.position else { return };
        let checkpoint = DigestCheckpoint {
            commit: position.commit,
            prepare: position.prepare,
            count: state.count,
            digest: hex::encode(state.digest),
        };
        let event = match EventData::json(DIGEST_EVENT, &checkpoint) {
            Ok(event) => event.id(Uuid::now_v7()),
            Err(error) => {
                tracing::warn!(%error, "encoding a digest checkpoint failed");
                return;
            }
        };
        let options = AppendToStreamOptions::default().stream_state(expected_state(state.checkpoint_revision));
        match self
            .client()
            .append_to_stream(self.digest_stream(), &options, event)
            .await
        {
            Ok(written) => {
                state.checkpoint_revision = Some(written.next_expected_version);
                state.folded_since_checkpoint = 0;
            }
            Err(eventstore::Error::WrongExpectedVersion { .. }) => state.loaded = false,
            Err(error) => tracing::warn!(%error, "recording a digest checkpoint failed; trying again later"),
        }
    }

    /// Starts the task that wakes followers when the ledger moves: a live
    /// subscription to `$all`, resubscribed after a drop, and a poll.
    fn ensure_waker(&self) {
        let mut waker = self
            .inner
            .waker
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if !waker.is_empty() {
            return;
        }
        let on_commits = tokio::spawn(wake_on_commits(Arc::downgrade(&self.inner), self.ledger_filter()));
        let periodically = tokio::spawn(wake_periodically(Arc::downgrade(&self.inner)));
        *waker = vec![on_commits.abort_handle(), periodically.abort_handle()];
    }
}

enum StoredKey {
    Found(ContactKey),
    Destroyed,
    Missing,
}

/// Wakes followers on every commit the cluster reports; the followers read
/// the ledger themselves, by position, so a wake-up missed or doubled
/// loses and repeats nothing. The subscription is never cancelled between
/// events (the client would drop it): the poll is a task of its own.
async fn wake_on_commits(inner: Weak<Inner>, filter: SubscriptionFilter) {
    let subscribe = |client: Client| {
        let options = SubscribeToAllOptions::default()
            .position(StreamPosition::End)
            .filter(filter.clone())
            .retry_options(RetryOptions::default().retry_forever());
        async move { client.subscribe_to_all(&options).await }
    };
    let client = match inner.upgrade() {
        Some(inner) => inner
            .client
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone(),
        None => return,
    };
    let mut subscription = subscribe(client).await;
    loop {
        let event = subscription.next().await;
        let Some(inner) = inner.upgrade() else { return };
        match event {
            Ok(event) => {
                let position = our_position(event.get_original_event().position);
                inner.commits.send_if_modified(|last| {
                    let moved = *last < Some(position);
                    if moved {
                        *last = Some(position);
                    }
                    moved
                });
            }
            Err(error) => {
                tracing::warn!(%error, "the KurrentDB subscription dropped; subscribing again");
                let client = inner
                    .client
                    .read()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .clone();
                drop(inner);
                tokio::time::sleep(READ_BACKOFF_MAX).await;
                subscription = subscribe(client).await;
            }
        }
    }
}

/// Wakes followers once every `FOLLOW_POLL_INTERVAL`, so that commits made
/// while the subscription was down are read all the same.
async fn wake_periodically(inner: Weak<Inner>) {
    let mut poll = tokio::time::interval(FOLLOW_POLL_INTERVAL);
    loop {
        poll.tick().await;
        let Some(inner) = inner.upgrade() else { return };
        inner.commits.send_modify(|_| {});
    }
}

/// The server's events for an append: hashes chained on from the stream's
/// head, personal data sealed with the contact's key.
fn proposed_events(
    stream: &str,
    head: Option<(u64, Hash)>,
    recorded_at: i64,
    events: &[PreparedEvent],
    key: Option<&ContactKey>,
) -> Result<(Vec<EventData>, Vec<Hash>, usize), StoreError> {
    let first_version = head.map_or(0, |(version, _)| version + 1);
    let mut previous_hash = head.map_or(GENESIS, |(_, hash)| hash);
    let mut proposed = Vec::with_capacity(events.len());
    let mut hashes = Vec::with_capacity(events.len());
    let mut bytes = 0;
    for (version, event) in (first_version..).zip(events) {
        let sealed = match (&event.pii, key) {
            (Some(json), Some(key)) => Some((key.seal(event.event_id, json), pii_digest(&key.digest_key(), json))),
            _ => None,
        };
        let fields = HashedFields {
            event_id: event.event_id,
            stream,
            version,
            event_type: event.event_type,
            schema_version: event.schema_version,
            occurred_at_millis: event.occurred_at_millis,
            recorded_at_millis: recorded_at,
            actor: &event.actor,
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            payload: &event.payload,
            pii_digest: sealed.as_ref().map(|(_, digest)| digest),
        };
        let hash = event_hash(&previous_hash, &fields);
        let envelope = Envelope {
            schema_version: event.schema_version,
            occurred_at: event.occurred_at_millis,
            recorded_at,
            actor: event.actor.clone(),
            correlation_id: event.correlation_id,
            causation_id: event.causation_id,
            hash: hex::encode(hash),
            pii_digest: sealed.as_ref().map(|(_, digest)| hex::encode(digest)),
            pii: sealed.as_ref().map(|(sealed, _)| hex::encode(sealed)),
        };
        // The payload is this crate's own JSON encoding; anything else would
        // be stored other than hashed, so it is refused, never repaired.
        let payload = String::from_utf8(event.payload.clone())
            .ok()
            .and_then(|text| serde_json::value::RawValue::from_string(text).ok())
            .ok_or_else(|| StoreError::Io(format!("the payload of event {} is not JSON", event.event_id)))?;
        let metadata = envelope.encode();
        bytes += PROPOSED_EVENT_OVERHEAD_BYTES + event.event_type.len() + event.payload.len() + metadata.len();
        let data = EventData::json(event.event_type, &payload)
            .map_err(|error| StoreError::Io(format!("encoding a payload: {error}")))?
            .id(event.event_id)
            .metadata(Bytes::from(metadata));
        proposed.push(data);
        hashes.push(hash);
        previous_hash = hash;
    }
    Ok((proposed, hashes, bytes))
}

/// The same rule as the embedded backend's: if every id of this append is
/// already in the stream, in this order, each the same fact by the same
/// actor, the append happened before and its result is answered again;
/// any other reuse of an id (in this stream, or in `elsewhere`, the other
/// streams an all-or-nothing batch touches) is refused without naming
/// another stream.
fn earlier_result(
    stream: &str,
    events: &[PreparedEvent],
    history: &[RawEvent],
    elsewhere: &[&HashSet<Uuid>],
) -> Result<Option<AppendResult>, StoreError> {
    let conflict = |event_id: Uuid, detail: &str| StoreError::IdempotencyConflict {
        stream: stream.to_owned(),
        event_id,
        detail: detail.to_owned(),
    };
    if let Some(event) = events
        .iter()
        .find(|event| elsewhere.iter().any(|ids| ids.contains(&event.event_id)))
    {
        return Err(conflict(
            event.event_id,
            "the event id is already used by another event",
        ));
    }
    let by_id: HashMap<Uuid, &RawEvent> = history.iter().map(|event| (event.event_id, event)).collect();
    let found: Vec<Option<&RawEvent>> = events.iter().map(|event| by_id.get(&event.event_id).copied()).collect();
    if found.iter().all(Option::is_none) {
        return Ok(None);
    }
    for (event, recorded) in events.iter().zip(&found) {
        let Some(recorded) = recorded else { continue };
        let recorded_pii = match recorded.pii.as_ref().map(|stored| &stored.opened) {
            Some(Opened::Plain { json, .. }) => Some(Some(json.as_slice())),
            None => Some(None),
            // Sealed data nobody can open now cannot be the same as a retry's.
            Some(Opened::Locked | Opened::Damaged) => None,
        };
        let same = recorded.event_type == event.event_type
            && recorded.actor == event.actor
            && recorded.payload == event.payload
            && recorded_pii == Some(event.pii.as_deref());
        if !same {
            return Err(conflict(
                event.event_id,
                "the event recorded under this id differs from the retried one (type, payload, personal data or actor)",
            ));
        }
    }
    let first_version = found.first().copied().flatten().map(|recorded| recorded.version);
    let mut last = None;
    for (offset, (event, recorded)) in events.iter().zip(&found).enumerate() {
        match (recorded, first_version) {
            (Some(recorded), Some(first)) if recorded.version == first + offset as u64 => last = Some(*recorded),
            _ => {
                return Err(conflict(
                    event.event_id,
                    "only part of this append was recorded before; retry with exactly the original events",
                ));
            }
        }
    }
    Ok(last.map(|recorded| AppendResult {
        next_expected_version: recorded.version,
        position: recorded.position,
    }))
}

/// An append of an all-or-nothing batch, as planned before the first write.
enum Planned {
    AlreadyWritten(AppendResult),
    Write,
}

/// A stream as a batch's earlier appends would leave it.
#[derive(Default)]
struct Simulated {
    head: Option<(u64, Hash)>,
    erasure_recorded: bool,
    /// The contact's key is tombstoned: no personal data any more.
    key_gone: bool,
    /// Ids of the stream's recent events.
    ids: HashSet<Uuid>,
    /// Ids the batch's appends to it so far carry.
    ids_in_batch: HashSet<Uuid>,
}

impl KurrentDbStore {
    /// Checks a whole batch against the streams it touches, each append
    /// against the state the earlier ones would leave, before anything is
    /// written.
    async fn plan_batch(
        &self,
        batch: &[(String, ExpectedVersion, Vec<PreparedEvent>)],
    ) -> Result<Vec<Planned>, StoreError> {
        let mut tails: HashMap<&str, Vec<RawEvent>> = HashMap::new();
        let mut simulated: HashMap<&str, Simulated> = HashMap::new();
        for (stream, _, _) in batch {
            if tails.contains_key(stream.as_str()) {
                continue;
            }
            let tail = self.read_stream_tail(stream, RETRY_SCAN_EVENTS_MAX).await?;
            let seals = batch
                .iter()
                .filter(|(other, _, _)| other == stream)
                .any(|(_, _, events)| events.iter().any(|event| event.pii.is_some()));
            let state = Simulated {
                head: tail.last().map(|event| (event.version, event.hash)),
                erasure_recorded: tail.iter().any(|event| event.event_type == ERASURE_EVENT),
                key_gone: seals && self.is_erased(stream).await?,
                ids: tail.iter().map(|event| event.event_id).collect(),
                ids_in_batch: HashSet::new(),
            };
            simulated.insert(stream, state);
            tails.insert(stream, tail);
        }
        let mut plans = Vec::with_capacity(batch.len());
        for (index, (stream, expected, events)) in batch.iter().enumerate() {
            let in_batch = |source: StoreError| StoreError::InBatch {
                index,
                source: Box::new(source),
            };
            // Ids stored in the batch's other streams, and ids an earlier
            // append of this batch carries, whatever its stream.
            let elsewhere: Vec<&HashSet<Uuid>> = simulated
                .iter()
                .filter(|(other, _)| **other != stream.as_str())
                .map(|(_, state)| &state.ids)
                .chain(simulated.values().map(|state| &state.ids_in_batch))
                .collect();
            if let Some(tail) = tails.get_mut(stream.as_str()) {
                self.open_retried(stream, tail, events).await.map_err(in_batch)?;
            }
            let tail = tails.get(stream.as_str()).map_or(&[][..], Vec::as_slice);
            if let Some(result) = earlier_result(stream, events, tail, &elsewhere).map_err(in_batch)? {
                plans.push(Planned::AlreadyWritten(result));
                continue;
            }
            let state = simulated.entry(stream).or_default();
            let current = state.head.map(|(version, _)| version);
            if !expected.admits(current) {
                return Err(in_batch(StoreError::WrongExpectedVersion {
                    stream: stream.clone(),
                    expected: *expected,
                    actual: current,
                }));
            }
            let erases = events.iter().any(|event| event.erases_personal_data);
            let seals = events.iter().any(|event| event.pii.is_some());
            if (erases && state.erasure_recorded) || (seals && (state.key_gone || state.erasure_recorded)) {
                return Err(in_batch(StoreError::Erased { stream: stream.clone() }));
            }
            if events.iter().any(|event| event.pii.is_some()) && self.inner.master.is_none() {
                return Err(in_batch(StoreError::MasterKey(
                    "personal data cannot be sealed without the master key".to_owned(),
                )));
            }
            self.check_size(stream, state.head, events).map_err(in_batch)?;
            let next = current.map_or(events.len() as u64 - 1, |head| head + events.len() as u64);
            // The hash is only a stand-in: the write computes the real one.
            state.head = Some((next, GENESIS));
            state.erasure_recorded |= erases;
            state.ids_in_batch.extend(events.iter().map(|event| event.event_id));
            plans.push(Planned::Write);
        }
        Ok(plans)
    }
}

/// A digest checkpoint's position, event count and digest.
fn parse_checkpoint(data: &[u8]) -> Result<(Position, u64, Hash), StoreError> {
    let corrupt = |detail: String| StoreError::Corrupt { position: None, detail };
    let checkpoint: DigestCheckpoint = serde_json::from_slice(data)
        .map_err(|error| corrupt(format!("a digest checkpoint does not parse: {error}")))?;
    let mut digest = GENESIS;
    hex::decode_to_slice(&checkpoint.digest, &mut digest)
        .map_err(|_| corrupt("a digest checkpoint's digest is not 64 hex digits".to_owned()))?;
    Ok((
        Position::new(checkpoint.commit, checkpoint.prepare),
        checkpoint.count,
        digest,
    ))
}

#[async_trait]
impl EventStore for KurrentDbStore {
    /// Folded on from the last checkpoint at or before `position`.
    async fn digest_at(&self, position: Position) -> Result<Option<LedgerDigest>, StoreError> {
        let (mut after, mut digest) = self.checkpoint_before(position).await?;
        if after == Some(position) {
            return Ok(Some(LedgerDigest {
                position: after,
                digest,
            }));
        }
        loop {
            let page = self.read_all_with(after, READ_LIMIT_MAX, false).await?;
            if page.is_empty() {
                return Ok(None);
            }
            for event in &page {
                if event.position > position {
                    return Ok(None);
                }
                digest = ledger_digest(&digest, event.position, &event.hash);
                if event.position == position {
                    return Ok(Some(LedgerDigest {
                        position: Some(position),
                        digest,
                    }));
                }
            }
            after = page.last().map(|event| event.position);
        }
    }

    async fn append(
        &self,
        stream: rapport_domain::StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<AppendResult, StoreError> {
        let events = prepare_append(&stream, events)?;
        self.append_one(&stream.to_string(), expected, &events).await
    }

    async fn append_all_or_nothing(
        &self,
        appends: Vec<(rapport_domain::StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<AppendResult>, StoreError> {
        if appends.len() > APPEND_BATCH_MAX {
            return Err(StoreError::TooManyEvents {
                count: appends.len(),
                limit: APPEND_BATCH_MAX,
            });
        }
        let batch = appends
            .into_iter()
            .enumerate()
            .map(|(index, (stream, expected, events))| {
                let events = prepare_append(&stream, events).map_err(|source| StoreError::InBatch {
                    index,
                    source: Box::new(source),
                })?;
                Ok((stream.to_string(), expected, events))
            })
            .collect::<Result<Vec<_>, StoreError>>()?;
        if batch.is_empty() {
            return Ok(Vec::new());
        }
        if self.inner.read_only {
            return Err(StoreError::Unavailable("the ledger was opened read-only".to_owned()));
        }
        let plans = self.plan_batch(&batch).await?;
        let mut results = Vec::with_capacity(batch.len());
        let mut written = 0;
        for (index, ((stream, expected, events), plan)) in batch.iter().zip(plans).enumerate() {
            match plan {
                Planned::AlreadyWritten(result) => results.push(result),
                Planned::Write => match self.append_one(stream, *expected, events).await {
                    Ok(result) => {
                        written += 1;
                        results.push(result);
                    }
                    Err(source) if written == 0 => {
                        return Err(StoreError::InBatch {
                            index,
                            source: Box::new(source),
                        });
                    }
                    Err(source) => {
                        tracing::error!(%source, index, written, "an all-or-nothing batch was cut short on the cluster");
                        return Err(StoreError::Unavailable(format!(
                            "an all-or-nothing batch was cut short on the cluster: its first {written} of {} appends \
                             stand, append {index} was not written ({source}); the same request sent again finds \
                             the written ones by their ids and goes on from there",
                            batch.len()
                        )));
                    }
                },
            }
        }
        Ok(results)
    }

    async fn read_stream_raw(
        &self,
        stream: rapport_domain::StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<RawEvent>, StoreError> {
        self.read_stream_raw_named(&stream.to_string(), from_version, limit)
            .await
    }

    async fn read_all_raw(&self, after: Option<Position>, limit: usize) -> Result<Vec<RawEvent>, StoreError> {
        self.read_all_with(after, limit, true).await
    }

    fn recorded_at_skew_millis(&self) -> i64 {
        RECORDED_AT_SKEW_MILLIS
    }

    fn subscribe_all(&self, after: Option<Position>) -> BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
        self.ensure_waker();
        crate::subscription::catch_up_then_live_patiently(self.clone(), after, self.inner.commits.subscribe())
    }

    async fn head(&self) -> Result<LedgerHead, StoreError> {
        let state = self.fold_digest().await?;
        Ok(LedgerHead {
            last_position: state.position,
            event_count: state.count,
            digest: LedgerDigest {
                position: state.position,
                digest: state.digest,
            },
        })
    }
}
