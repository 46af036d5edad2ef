//! Shared fixtures: temporary ledgers and realistic events.

use rapport_domain::{
    Channel, ContactId, ContactRegistered, NewEvent, Pii, ReplyReceived, SendMode, StreamName, Timestamp,
    TouchAuthorization, TouchRecorded,
};
use std::sync::Arc;

use rapport_domain::time::Clock;
use rapport_store::{EventStore, ManualClock, SharedClock, SqliteOptions, SqliteStore, SystemClock};
use tempfile::TempDir;
use uuid::Uuid;

pub const T0_MILLIS: i64 = 1_767_225_600_000; // 2026-01-01T00:00:00Z

pub fn at(offset_millis: i64) -> Timestamp {
    Timestamp::from_millis_unchecked(T0_MILLIS + offset_millis)
}

pub fn contact_stream(n: u128) -> StreamName {
    StreamName::Contact(ContactId(Uuid::from_u128(n)))
}

pub fn registered(n: u128) -> NewEvent {
    NewEvent::new(
        Uuid::new_v4(),
        ContactRegistered {
            owner: "alice".into(),
            primary_channel: Channel::Wechat,
            time_zone: Some("Asia/Shanghai".into()),
            tags: vec!["new".into()],
        },
        at(0),
        "test",
    )
    .with_pii(Pii {
        display_name: Some(format!("Customer {n}")),
        phone: Some(format!("+86 138 0000 {n:04}")),
        ..Pii::default()
    })
}

pub fn reply(offset_millis: i64) -> NewEvent {
    NewEvent::new(
        Uuid::new_v4(),
        ReplyReceived {
            channel: Channel::Wechat,
        },
        at(offset_millis),
        "test",
    )
}

pub fn mass_touch(offset_millis: i64) -> NewEvent {
    NewEvent::new(
        Uuid::new_v4(),
        TouchRecorded {
            mode: SendMode::Mass,
            channel: Channel::Wechat,
            campaign_id: None,
            sender: "alice".into(),
            authorization: TouchAuthorization::External { source: "test".into() },
        },
        at(offset_millis),
        "test",
    )
}

/// A ledger in a temporary directory, removed with the fixture. Its
/// writer records commits on a manual clock, which tests move by hand.
pub struct TempLedger {
    pub dir: TempDir,
    pub store: Option<SqliteStore>,
    pub clock: Arc<ManualClock>,
}

impl TempLedger {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let clock = ManualClock::starting_at(SystemClock.now());
        let store = Self::open(&dir, &clock);
        TempLedger {
            dir,
            store: Some(store),
            clock,
        }
    }

    fn open(dir: &TempDir, clock: &Arc<ManualClock>) -> SqliteStore {
        let options = SqliteOptions::writing_on(Arc::clone(clock) as SharedClock);
        SqliteStore::open_with(dir.path().join("rapport.db"), options).expect("open the ledger")
    }

    pub fn path(&self) -> std::path::PathBuf {
        self.dir.path().join("rapport.db")
    }

    pub fn store(&self) -> SqliteStore {
        self.store.clone().expect("ledger is open")
    }

    /// Closes the ledger (waiting for the writer) and opens it again.
    pub fn reopen(&mut self) {
        self.store = None;
        self.store = Some(Self::open(&self.dir, &self.clock));
    }

    /// A copy of the ledger, for damaging; the original stays intact. The
    /// write-ahead log is copied too: recent commits live there until the
    /// next checkpoint.
    pub fn copy_to(&self, name: &str) -> std::path::PathBuf {
        let copy = self.dir.path().join(name);
        std::fs::copy(self.path(), &copy).expect("copy the ledger");
        copy_master_key(&self.path(), &copy);
        let wal = self.dir.path().join("rapport.db-wal");
        if wal.exists() {
            std::fs::copy(&wal, self.dir.path().join(format!("{name}-wal"))).expect("copy the log");
        }
        copy
    }
}

/// Puts the master key of the ledger at `from` beside the copy at `to`,
/// as an operator restoring a backup does.
pub fn copy_master_key(from: &std::path::Path, to: &std::path::Path) {
    let key = rapport_store::sealing::master_key_file(from);
    std::fs::copy(&key, rapport_store::sealing::master_key_file(to)).expect("copy the master key");
}

/// Every event in the ledger, in global order.
pub async fn read_everything(store: &dyn EventStore) -> Vec<rapport_domain::RecordedEvent> {
    let mut events = Vec::new();
    loop {
        let page = store
            .read_all(events.last().map(|e: &rapport_domain::RecordedEvent| e.position), 1_000)
            .await
            .expect("read");
        if page.is_empty() {
            return events;
        }
        events.extend(page);
    }
}

/// Runs a test body that waits on live events, failing clearly instead of
/// hanging CI if an event never comes. A guard, not a timing check: the
/// bound is far above any healthy run.
pub async fn hang_guard<T>(what: &str, body: impl std::future::Future<Output = T>) -> T {
    const BOUND: std::time::Duration = std::time::Duration::from_secs(120);
    match tokio::time::timeout(BOUND, body).await {
        Ok(value) => value,
        Err(_) => panic!(
            "{what} still waiting after {} s: an event never arrived",
            BOUND.as_secs()
        ),
    }
}
