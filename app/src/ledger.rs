//! Opening the ledger the way every command does: a new ledger gets the
//! default policy as its first event; and the policy's clock rules.

use rapport_domain::policy::ClockRules;
use rapport_domain::{Event, NewEvent, Policy, PolicyChanged, StreamName, Timestamp};
use rapport_store::{EventStore, ExpectedVersion, Ledger, LedgerLocation, OpenOptions, SharedClock, StoreError};
use uuid::Uuid;

/// Opens (creating if need be) the ledger at `location` for writing, and
/// makes sure its policy stream starts with the default policy.
/// Commits are recorded on `clock`.
pub async fn open_for_writing(
    location: impl Into<LedgerLocation>,
    actor: &str,
    clock: SharedClock,
) -> Result<Ledger, StoreError> {
    let now = clock.now();
    let store = Ledger::open(&location.into(), OpenOptions::writing_on(clock)).await?;
    ensure_policy(&store, actor, now).await?;
    Ok(store)
}

/// Writes the default policy if the ledger has none. Safe to race: only
/// the first writer of the policy stream succeeds.
pub async fn ensure_policy(store: &dyn EventStore, actor: &str, now: Timestamp) -> Result<(), StoreError> {
    if !store.read_stream_raw(StreamName::Policy, 0, 1).await?.is_empty() {
        return Ok(());
    }
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
