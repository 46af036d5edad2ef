//! Opening the ledger the way every command does: a new ledger gets the
//! default policy as its first event, and projections are rebuilt by
//! folding the ledger from its start.

use std::path::Path;

use rapport_domain::policy::ClockRules;
use rapport_domain::{Event, NewEvent, Policy, PolicyChanged, Position, StreamName, Timestamp};
use rapport_projections::{Horizon, Projection};

use crate::live::ReadModel;
use rapport_store::{EventStore, ExpectedVersion, SqliteStore, StoreError};
use uuid::Uuid;

/// Events read per page while rebuilding, and pages read ahead of the fold.
const REBUILD_PAGE_EVENTS: usize = 4_096;
const REBUILD_PAGES_QUEUED: usize = 4;

/// Opens (creating if need be) the ledger at `path` for writing, and makes
/// sure its policy stream starts with the default policy.
pub async fn open_for_writing(path: &Path, actor: &str) -> Result<SqliteStore, StoreError> {
    let store = SqliteStore::open(path)?;
    ensure_policy(&store, actor).await?;
    Ok(store)
}

/// Writes the default policy if the ledger has none. Safe to race: only
/// the first writer of the policy stream succeeds.
pub async fn ensure_policy(store: &dyn EventStore, actor: &str) -> Result<(), StoreError> {
    if !store.read_stream_raw(StreamName::Policy, 0, 1).await?.is_empty() {
        return Ok(());
    }
    let now = Timestamp::from_millis_unchecked(wall_clock_millis());
    let event = NewEvent::new(
        Uuid::now_v7(),
        PolicyChanged {
            policy: Policy::default(),
        },
        now,
        actor,
    );
    match store
        .append(StreamName::Policy, ExpectedVersion::NoStream, vec![event])
        .await
    {
        Ok(_) | Err(StoreError::WrongExpectedVersion { .. }) => Ok(()),
        Err(other) => Err(other),
    }
}

/// The clock rules of the policy in force (the default on a new ledger).
/// The policy stream is short: a handful of changes in a ledger's life.
pub async fn clock_rules(store: &dyn EventStore) -> Result<ClockRules, StoreError> {
    let mut rules = ClockRules::default();
    let mut from_version = 0;
    loop {
        let page = store
            .read_stream(StreamName::Policy, from_version, rapport_store::READ_LIMIT_MAX)
            .await?;
        let Some(last) = page.last() else {
            return Ok(rules);
        };
        from_version = last.version + 1;
        if let Some(Event::PolicyChanged(changed)) = page.into_iter().last().map(|event| event.event) {
            rules = changed.policy.clock;
        }
    }
}

fn wall_clock_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
}

/// Folds the ledger from its start up to and including `until` (everything
/// if `None`): the state "as known at" that position.
///
/// One task reads raw pages while this one decodes and folds them, so on
/// two cores the two halves overlap; the queue between them holds a few
/// pages at most.
pub async fn rebuild(store: &(impl EventStore + Clone), until: Option<Position>) -> Result<Projection, StoreError> {
    Ok(rebuild_read_model(store, until).await?.projection)
}

/// As `rebuild`, with the contact directory (personal data) beside the projection.
pub async fn rebuild_read_model(
    store: &(impl EventStore + Clone),
    until: Option<Position>,
) -> Result<ReadModel, StoreError> {
    rebuild_within(
        store,
        Horizon {
            known_at: until,
            occurred_by: None,
        },
    )
    .await
}

/// The read model within `horizon`: the events recorded by its position
/// that had occurred by its moment.
pub async fn rebuild_within(store: &(impl EventStore + Clone), horizon: Horizon) -> Result<ReadModel, StoreError> {
    let until = horizon.known_at;
    let (pages, mut queue) = tokio::sync::mpsc::channel(REBUILD_PAGES_QUEUED);
    let reader = store.clone();
    let reading = tokio::spawn(async move {
        let mut after = None;
        loop {
            let page = reader.read_all_raw(after, REBUILD_PAGE_EVENTS).await?;
            let Some(last) = page.last().map(|event| event.position) else {
                return Ok(());
            };
            after = Some(last);
            let done = until.is_some_and(|until| last >= until);
            if pages.send(page).await.is_err() || done {
                return Ok(());
            }
        }
    });
    let mut model = ReadModel::default();
    while let Some(page) = queue.recv().await {
        for raw in page.into_iter().take_while(|event| horizon.knows(event.position)) {
            let event = raw.decode()?;
            if horizon.counts(&event) {
                model.apply(&event);
            }
        }
    }
    reading
        .await
        .map_err(|e| StoreError::Unavailable(format!("the ledger reader stopped: {e}")))??;
    Ok(model)
}
