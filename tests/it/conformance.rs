//! The store contract, checked the same way against every backend: each
//! scenario is generic over `Backend` and the macro at the bottom runs the
//! whole suite per backend (the KurrentDB backend runs it against the gRPC test double, and a real
//! server when one is named).

use std::collections::{HashMap, HashSet};

use futures::StreamExt;
use rapport_domain::{NewEvent, Position, StreamName};
use rapport_store::{
    APPEND_EVENTS_MAX, EVENT_BYTES_MAX, EventStore, ExpectedVersion, SqliteStore, StoreError, SubscriptionMessage,
    verify,
};
use uuid::Uuid;

use crate::support::{TempLedger, contact_stream, mass_touch, read_everything, registered, reply};

/// A backend under test: a fresh, empty ledger that can be closed and
/// reopened, whose recording clock the test moves on.
pub trait Backend: Sized {
    type Store: EventStore + Clone;
    fn create() -> Self;
    fn store(&self) -> Self::Store;
    fn reopen(&mut self);
    fn let_time_pass(&self, millis: i64);
    /// Whether this backend can run here; one that cannot says why.
    fn available() -> bool {
        true
    }
    /// Whether an event id is refused in a second stream. KurrentDB keeps
    /// ids per stream and has no index to look one up ledger-wide, so on a
    /// cluster an id is unique within its stream (and within the streams
    /// of one all-or-nothing batch) only.
    const IDS_UNIQUE_ACROSS_STREAMS: bool = true;
    /// The events of the large append that must land atomically: all an
    /// append may carry, or as many as the backend takes in one append
    /// (a KurrentDB server's `MaxAppendSize`, 1 MiB by default).
    const LARGE_APPEND_EVENTS: usize = APPEND_EVENTS_MAX;
}

impl Backend for TempLedger {
    type Store = SqliteStore;
    fn create() -> Self {
        TempLedger::new()
    }
    fn store(&self) -> SqliteStore {
        TempLedger::store(self)
    }
    fn reopen(&mut self) {
        TempLedger::reopen(self)
    }
    fn let_time_pass(&self, millis: i64) {
        self.clock.advance_millis(millis);
    }
}

fn ids(events: &[NewEvent]) -> Vec<Uuid> {
    events.iter().map(|e| e.event_id).collect()
}

pub async fn concurrent_exact_appends_win_each_version_once<B: Backend>() {
    const TASKS: usize = 32;
    const WINS_PER_TASK: usize = 5;
    let backend = B::create();
    let stream = contact_stream(1);
    let tasks: Vec<_> = (0..TASKS)
        .map(|_| {
            let store = backend.store();
            tokio::spawn(async move {
                let mut won = Vec::new();
                while won.len() < WINS_PER_TASK {
                    let current = store
                        .read_stream(stream, 0, 10_000)
                        .await
                        .expect("read")
                        .last()
                        .map(|e| e.version);
                    let expected = current.map_or(ExpectedVersion::NoStream, ExpectedVersion::Exact);
                    let event = reply(won.len() as i64);
                    let id = event.event_id;
                    match store.append(stream, expected, vec![event]).await {
                        Ok(result) => won.push((result.next_expected_version, id)),
                        Err(StoreError::WrongExpectedVersion { .. }) => {}
                        Err(other) => panic!("unexpected append error: {other}"),
                    }
                }
                won
            })
        })
        .collect();
    let mut won_versions = HashMap::new();
    for task in tasks {
        for (version, id) in task.await.expect("task") {
            assert!(
                won_versions.insert(version, id).is_none(),
                "version {version} was won twice"
            );
        }
    }
    let stored = backend.store().read_stream(stream, 0, 10_000).await.expect("read");
    assert_eq!(stored.len(), TASKS * WINS_PER_TASK, "events lost or duplicated");
    for event in &stored {
        assert_eq!(
            won_versions.get(&event.version),
            Some(&event.event_id),
            "version {} holds a stranger",
            event.version
        );
    }
}

pub async fn a_retried_append_returns_the_original_result_and_writes_nothing<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let stream = contact_stream(2);
    let events = vec![registered(2), reply(1), reply(2)];
    let first = store
        .append(stream, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("first append");
    let head = store.head().await.expect("head");
    // The retry carries a stale expectation, as a client retrying after a timeout would.
    let retry = store
        .append(stream, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("retry");
    assert_eq!(retry, first);
    let retry_any = store
        .append(stream, ExpectedVersion::Any, events)
        .await
        .expect("retry with any");
    assert_eq!(retry_any, first);
    assert_eq!(store.head().await.expect("head"), head, "a retry wrote something");
}

pub async fn a_partly_matching_retry_is_refused_and_writes_nothing<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let stream = contact_stream(3);
    let written = vec![reply(1), reply(2)];
    store
        .append(stream, ExpectedVersion::Any, written.clone())
        .await
        .expect("append");
    let head = store.head().await.expect("head");
    let fresh = reply(3);
    for attempt in [
        vec![written[0].clone(), fresh.clone()],
        vec![fresh.clone(), written[1].clone()],
        vec![written[1].clone(), written[0].clone()],
    ] {
        let refused = store.append(stream, ExpectedVersion::Any, attempt).await;
        assert!(
            matches!(refused, Err(StoreError::IdempotencyConflict { .. })),
            "{refused:?}"
        );
    }
    if B::IDS_UNIQUE_ACROSS_STREAMS {
        let elsewhere = store
            .append(contact_stream(4), ExpectedVersion::Any, vec![written[0].clone()])
            .await;
        assert!(
            matches!(elsewhere, Err(StoreError::IdempotencyConflict { .. })),
            "{elsewhere:?}"
        );
    }
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a refused retry wrote something"
    );
}

pub async fn two_writers_racing_under_one_id_with_different_facts_never_both_succeed<B: Backend>() {
    const ROUNDS: u128 = 10;
    let backend = B::create();
    for round in 0..ROUNDS {
        let stream = contact_stream(200 + round);
        let store = backend.store();
        store
            .append(stream, ExpectedVersion::NoStream, vec![registered(200 + round)])
            .await
            .expect("register");
        let first = reply(1);
        let mut second = reply(2);
        second.event_id = first.event_id;
        second.actor = "another".into();
        let other = backend.store();
        let (a, b) = tokio::join!(
            store.append(stream, ExpectedVersion::Exact(0), vec![first]),
            other.append(stream, ExpectedVersion::Exact(0), vec![second])
        );
        match (&a, &b) {
            (Ok(_), Err(StoreError::IdempotencyConflict { .. } | StoreError::WrongExpectedVersion { .. }))
            | (Err(StoreError::IdempotencyConflict { .. } | StoreError::WrongExpectedVersion { .. }), Ok(_)) => {}
            other => panic!("round {round}: {other:?}"),
        }
        let stored = store.read_stream(stream, 0, 10).await.expect("read");
        assert_eq!(stored.len(), 2, "round {round}");
        let winner = if a.is_ok() { "test" } else { "another" };
        assert_eq!(
            stored[1].actor, winner,
            "round {round}: the answer names another write than the stored one"
        );
    }
}

pub async fn the_digest_at_a_position_is_the_head_the_ledger_had_there<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let mut heads = Vec::new();
    for round in 0..6u128 {
        store
            .append(
                contact_stream(300 + round % 2),
                ExpectedVersion::Any,
                vec![reply(1), reply(2)],
            )
            .await
            .expect("append");
        heads.push(store.head().await.expect("head"));
    }
    for head in &heads {
        let position = head.last_position.expect("a position");
        assert_eq!(store.digest_at(position).await.expect("digest"), Some(head.digest));
    }
    let all = read_everything(&store).await;
    let between = all[0].position;
    assert!(store.digest_at(between).await.expect("digest").is_some());
    let beyond = Position::new(u64::MAX - 1, u64::MAX - 1);
    assert_eq!(store.digest_at(beyond).await.expect("digest"), None);
}

pub async fn expected_versions_are_enforced<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let stream = contact_stream(5);
    let missing = store
        .append(stream, ExpectedVersion::StreamExists, vec![reply(1)])
        .await;
    assert_eq!(
        missing,
        Err(StoreError::WrongExpectedVersion {
            stream: stream.to_string(),
            expected: ExpectedVersion::StreamExists,
            actual: None
        })
    );
    let created = store
        .append(stream, ExpectedVersion::NoStream, vec![registered(5)])
        .await
        .expect("create");
    assert_eq!(created.next_expected_version, 0);
    let again = store.append(stream, ExpectedVersion::NoStream, vec![reply(2)]).await;
    assert!(matches!(
        again,
        Err(StoreError::WrongExpectedVersion { actual: Some(0), .. })
    ));
    let stale = store.append(stream, ExpectedVersion::Exact(7), vec![reply(3)]).await;
    assert!(matches!(
        stale,
        Err(StoreError::WrongExpectedVersion { actual: Some(0), .. })
    ));
    let exact = store
        .append(stream, ExpectedVersion::Exact(0), vec![reply(4), reply(5)])
        .await
        .expect("exact");
    assert_eq!(exact.next_expected_version, 2);
    let any = store
        .append(stream, ExpectedVersion::StreamExists, vec![reply(6)])
        .await
        .expect("exists");
    assert_eq!(any.next_expected_version, 3);
}

pub async fn streams_read_from_a_version_and_missing_streams_are_empty<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    assert!(
        store
            .read_stream(contact_stream(99), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let events = vec![registered(6), reply(1), reply(2), reply(3)];
    store
        .append(contact_stream(6), ExpectedVersion::Any, events.clone())
        .await
        .expect("append");
    let tail = store.read_stream(contact_stream(6), 2, 10).await.expect("read");
    assert_eq!(tail.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids(&events[2..]));
    assert_eq!(tail.iter().map(|e| e.version).collect::<Vec<_>>(), vec![2, 3]);
    let limited = store.read_stream(contact_stream(6), 0, 1).await.expect("read");
    assert_eq!(limited.len(), 1);
    assert_eq!(
        limited[0].pii.as_ref().and_then(|p| p.display_name.as_deref()),
        Some("Customer 6")
    );
}

pub async fn the_global_order_is_commit_order_across_streams<B: Backend>() {
    let backend = B::create();
    let tasks: Vec<_> = (0..8u128)
        .map(|n| {
            let store = backend.store();
            tokio::spawn(async move {
                for i in 0..25 {
                    store
                        .append(
                            contact_stream(10 + n),
                            ExpectedVersion::Any,
                            vec![reply(i), mass_touch(i)],
                        )
                        .await
                        .expect("append");
                }
            })
        })
        .collect();
    for task in tasks {
        task.await.expect("task");
    }
    let store = backend.store();
    let all = read_everything(&store).await;
    assert_eq!(all.len(), 8 * 25 * 2);
    let mut next_version: HashMap<StreamName, u64> = HashMap::new();
    for pair in all.windows(2) {
        assert!(pair[0].position < pair[1].position, "positions out of order");
        assert!(pair[0].recorded_at <= pair[1].recorded_at, "recorded_at went back");
    }
    for event in &all {
        let expected = next_version.entry(event.stream).or_insert(0);
        assert_eq!(event.version, *expected, "stream {} out of order", event.stream);
        *expected += 1;
    }
    let head = store.head().await.expect("head");
    assert_eq!(head.event_count, 400);
    assert_eq!(head.last_position, all.last().map(|e| e.position));
    let paged = store.read_all(Some(all[99].position), 50).await.expect("page");
    assert_eq!(paged.first().map(|e| e.position), Some(all[100].position));
    assert_eq!(paged.len(), 50);
}

pub async fn a_subscription_crosses_from_catch_up_to_live_without_gap_or_duplicate<B: Backend>() {
    crate::support::hang_guard("the subscription", subscription_scenario::<B>()).await
}

async fn subscription_scenario<B: Backend>() {
    const BEFORE: usize = 300;
    const DURING: usize = 500;
    let backend = B::create();
    let store = backend.store();
    let mut expected_ids = Vec::new();
    for i in 0..BEFORE / 3 {
        let events = vec![reply(i as i64), reply(i as i64), reply(i as i64)];
        expected_ids.extend(ids(&events));
        store
            .append(contact_stream(20 + (i % 7) as u128), ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
    let mut subscription = store.subscribe_all(None);
    let writers: Vec<_> = (0..4u128)
        .map(|w| {
            let store = backend.store();
            tokio::spawn(async move {
                let mut written = Vec::new();
                for i in 0..DURING / 4 {
                    let event = reply(i as i64);
                    written.push(event.event_id);
                    store
                        .append(contact_stream(30 + w), ExpectedVersion::Any, vec![event])
                        .await
                        .expect("append");
                }
                written
            })
        })
        .collect();
    let mut received = Vec::new();
    let mut caught_up_markers = 0;
    let mut last_position: Option<Position> = None;
    while received.len() < BEFORE + DURING {
        match subscription
            .next()
            .await
            .expect("subscription ended early")
            .expect("subscription error")
        {
            SubscriptionMessage::Event(event) => {
                assert!(
                    last_position < Some(event.position),
                    "out of order or duplicate at {}",
                    event.position
                );
                last_position = Some(event.position);
                received.push(event.event_id);
            }
            SubscriptionMessage::CaughtUp => {
                caught_up_markers += 1;
                assert!(received.len() >= BEFORE, "caught up before the backlog was delivered");
            }
        }
    }
    for writer in writers {
        expected_ids.extend(writer.await.expect("writer"));
    }
    assert!(caught_up_markers <= 1, "caught up announced {caught_up_markers} times");
    let received_set: HashSet<_> = received.iter().collect();
    assert_eq!(received_set.len(), received.len(), "duplicates delivered");
    assert_eq!(
        received_set,
        expected_ids.iter().collect::<HashSet<_>>(),
        "events missing"
    );
    // A subscription from a position starts right after it.
    let all = read_everything(&store).await;
    let mut from_middle = store.subscribe_all(Some(all[409].position));
    match from_middle.next().await.expect("item").expect("event") {
        SubscriptionMessage::Event(event) => assert_eq!(event.position, all[410].position),
        SubscriptionMessage::CaughtUp => panic!("caught up too early"),
    }
}

pub async fn a_large_batch_is_atomic_and_an_oversized_one_is_refused<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let stream = contact_stream(40);
    let events: Vec<_> = (0..B::LARGE_APPEND_EVENTS as i64).map(reply).collect();
    let result = store
        .append(stream, ExpectedVersion::NoStream, events.clone())
        .await
        .expect("large append");
    assert_eq!(result.next_expected_version, B::LARGE_APPEND_EVENTS as u64 - 1);
    let stored = store.read_stream(stream, 0, APPEND_EVENTS_MAX).await.expect("read");
    assert_eq!(stored.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids(&events));
    let head = store.head().await.expect("head");
    let too_many: Vec<_> = (0..=APPEND_EVENTS_MAX as i64).map(reply).collect();
    let refused = store.append(contact_stream(41), ExpectedVersion::Any, too_many).await;
    assert_eq!(
        refused,
        Err(StoreError::TooManyEvents {
            count: APPEND_EVENTS_MAX + 1,
            limit: APPEND_EVENTS_MAX
        })
    );
    let valid = registered(41);
    let mut oversized = reply(1);
    oversized.event = rapport_domain::ComplaintFiled {
        channel: rapport_domain::Channel::Sms,
        reason: Some("y".repeat(EVENT_BYTES_MAX)),
    }
    .into();
    let refused = store
        .append(contact_stream(41), ExpectedVersion::Any, vec![valid, oversized])
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidEvent { index: 1, .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a refused append wrote something"
    );
}

pub async fn an_invalid_event_refuses_the_whole_append<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let mut bad = reply(2);
    bad.pii = Some(rapport_domain::Pii {
        email: Some("a@b.c".into()),
        ..Default::default()
    });
    let refused = store
        .append(contact_stream(42), ExpectedVersion::Any, vec![reply(1), bad])
        .await;
    assert!(
        matches!(refused, Err(StoreError::InvalidEvent { index: 1, .. })),
        "{refused:?}"
    );
    let wrong_stream = store
        .append(StreamName::Policy, ExpectedVersion::Any, vec![reply(1)])
        .await;
    assert!(
        matches!(wrong_stream, Err(StoreError::InvalidEvent { index: 0, .. })),
        "{wrong_stream:?}"
    );
    assert_eq!(
        store.append(contact_stream(42), ExpectedVersion::Any, vec![]).await,
        Err(StoreError::EmptyAppend)
    );
    assert_eq!(store.head().await.expect("head").event_count, 0);
}

pub async fn a_reopened_ledger_continues_where_it_stopped<B: Backend>() {
    let mut backend = B::create();
    let stream = contact_stream(50);
    let first = vec![registered(50), reply(1)];
    backend
        .store()
        .append(stream, ExpectedVersion::NoStream, first.clone())
        .await
        .expect("append");
    let head_before = backend.store().head().await.expect("head");
    backend.reopen();
    let store = backend.store();
    assert_eq!(store.head().await.expect("head"), head_before);
    let stored = store.read_stream(stream, 0, 10).await.expect("read");
    assert_eq!(stored.iter().map(|e| e.event_id).collect::<Vec<_>>(), ids(&first));
    let next = store
        .append(stream, ExpectedVersion::Exact(1), vec![reply(2)])
        .await
        .expect("append after reopen");
    assert_eq!(next.next_expected_version, 2);
    assert!(Some(next.position) > head_before.last_position);
    // The retry rule survives the restart too.
    let retry = store
        .append(stream, ExpectedVersion::NoStream, first)
        .await
        .expect("retry after reopen");
    assert_eq!(Some(retry.position), head_before.last_position);
    let report = verify(&store, Some(head_before.digest)).await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!(report.digest, store.head().await.expect("head").digest);
}

pub async fn the_position_at_a_moment_is_the_last_event_recorded_by_then<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let before_anything = rapport_domain::Timestamp::from_millis_unchecked(0);
    assert_eq!(store.position_at(before_anything).await.expect("position"), None);
    let mut moments = Vec::new();
    for round in 0..5 {
        store
            .append(
                contact_stream(60),
                ExpectedVersion::Any,
                vec![reply(round), reply(round)],
            )
            .await
            .expect("append");
        let head = store.head().await.expect("head");
        let last = store
            .read_all(None, 1_000)
            .await
            .expect("read")
            .last()
            .cloned()
            .expect("an event");
        moments.push((last.recorded_at, head.last_position));
        // Each round is recorded a second after the last.
        backend.let_time_pass(1_000);
    }
    for (recorded_at, expected) in moments {
        assert_eq!(store.position_at(recorded_at).await.expect("position"), expected);
    }
    let far_future = rapport_domain::Timestamp::from_millis_unchecked(i64::MAX / 4);
    assert_eq!(
        store.position_at(far_future).await.expect("position"),
        store.head().await.expect("head").last_position
    );
}

pub async fn a_batch_applies_its_appends_in_order_each_on_its_own<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    store
        .append(contact_stream(70), ExpectedVersion::NoStream, vec![registered(70)])
        .await
        .expect("register");
    let batch = vec![
        (contact_stream(70), ExpectedVersion::Exact(0), vec![reply(1)]),
        (contact_stream(71), ExpectedVersion::Exact(5), vec![reply(2)]),
        (contact_stream(70), ExpectedVersion::Exact(1), vec![reply(3)]),
        (
            contact_stream(72),
            ExpectedVersion::NoStream,
            vec![registered(72), reply(4)],
        ),
        (contact_stream(73), ExpectedVersion::Any, vec![]),
    ];
    let results = store.append_batch(batch.clone()).await.expect("batch");
    assert!(
        matches!(results[1], Err(StoreError::WrongExpectedVersion { .. })),
        "{:?}",
        results[1]
    );
    assert_eq!(results[4], Err(StoreError::EmptyAppend));
    let positions: Vec<Position> = [0, 2, 3]
        .iter()
        .map(|i| results[*i].as_ref().expect("written").position)
        .collect();
    assert!(
        positions.windows(2).all(|pair| pair[0] < pair[1]),
        "positions do not follow the batch: {positions:?}"
    );
    assert_eq!(results[2].as_ref().expect("written").next_expected_version, 2);
    assert!(
        store
            .read_stream(contact_stream(71), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    let head = store.head().await.expect("head");
    let again = store.append_batch(batch).await.expect("retry");
    assert_eq!(again[0], results[0]);
    assert_eq!(again[3], results[3]);
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a retried batch wrote something"
    );
}

pub async fn a_retry_carrying_another_fact_or_actor_under_the_same_id_is_refused<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let stream = contact_stream(5);
    let original = registered(5);
    store
        .append(stream, ExpectedVersion::NoStream, vec![original.clone()])
        .await
        .expect("register");
    let head = store.head().await.expect("head");
    let mut other_actor = original.clone();
    other_actor.actor = "mallory".into();
    let mut other_pii = original.clone();
    if let Some(pii) = other_pii.pii.as_mut() {
        pii.display_name = Some("Someone else".into());
    }
    let mut other_fact = reply(1);
    other_fact.event_id = original.event_id;
    for attempt in [other_actor, other_pii, other_fact] {
        let refused = store.append(stream, ExpectedVersion::Any, vec![attempt]).await;
        match refused {
            Err(error @ StoreError::IdempotencyConflict { .. }) => {
                let message = error.to_string();
                assert_eq!(message.matches("contact-").count(), 1, "{message}");
                assert!(message.contains(&stream.to_string()), "{message}");
            }
            other => panic!("a retry with another fact was answered {other:?}"),
        }
    }
    if B::IDS_UNIQUE_ACROSS_STREAMS {
        let elsewhere = store
            .append(contact_stream(6), ExpectedVersion::Any, vec![original])
            .await;
        match elsewhere {
            Err(error @ StoreError::IdempotencyConflict { .. }) => assert!(
                !error.to_string().contains(&stream.to_string()),
                "the refusal names the other stream: {error}"
            ),
            other => panic!("an id reused in another stream was answered {other:?}"),
        }
    }
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a refused retry wrote something"
    );
}

pub async fn an_all_or_nothing_batch_writes_nothing_when_one_append_is_refused<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    store
        .append(contact_stream(80), ExpectedVersion::NoStream, vec![registered(80)])
        .await
        .expect("register");
    let used_elsewhere = reply(1);
    store
        .append(
            contact_stream(80),
            ExpectedVersion::Exact(0),
            vec![used_elsewhere.clone()],
        )
        .await
        .expect("reply");
    let head = store.head().await.expect("head");
    let refused = store
        .append_all_or_nothing(vec![
            (contact_stream(80), ExpectedVersion::Exact(1), vec![reply(2)]),
            (contact_stream(81), ExpectedVersion::NoStream, vec![registered(81)]),
            (contact_stream(81), ExpectedVersion::Exact(0), vec![used_elsewhere]),
        ])
        .await;
    assert!(
        matches!(&refused, Err(StoreError::InBatch { index: 2, source }) if matches!(**source, StoreError::IdempotencyConflict { .. })),
        "{refused:?}"
    );
    assert_eq!(
        store.head().await.expect("head"),
        head,
        "a refused batch wrote something"
    );
    assert!(
        store
            .read_stream(contact_stream(81), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
    // The streams the refused batch touched carry on from where they were.
    let written = store
        .append_all_or_nothing(vec![
            (contact_stream(80), ExpectedVersion::Exact(1), vec![reply(3)]),
            (contact_stream(81), ExpectedVersion::NoStream, vec![registered(81)]),
        ])
        .await
        .expect("a valid batch");
    assert_eq!(written.len(), 2);
    assert_eq!(written[0].next_expected_version, 2);
    assert_eq!(written[1].next_expected_version, 0);
    let invalid = store
        .append_all_or_nothing(vec![
            (contact_stream(82), ExpectedVersion::NoStream, vec![registered(82)]),
            (contact_stream(82), ExpectedVersion::Any, vec![]),
        ])
        .await;
    assert!(
        matches!(&invalid, Err(StoreError::InBatch { index: 1, source }) if **source == StoreError::EmptyAppend),
        "{invalid:?}"
    );
    assert!(
        store
            .read_stream(contact_stream(82), 0, 10)
            .await
            .expect("read")
            .is_empty()
    );
}

pub async fn an_event_is_found_by_its_id_in_its_stream_only<B: Backend>() {
    let backend = B::create();
    let store = backend.store();
    let events = vec![registered(90), reply(1), reply(2)];
    store
        .append(contact_stream(90), ExpectedVersion::NoStream, events.clone())
        .await
        .expect("append");
    let found = store
        .read_event(contact_stream(90), events[2].event_id)
        .await
        .expect("read")
        .expect("found");
    assert_eq!((found.event_id, found.version), (events[2].event_id, 2));
    assert_eq!(
        store
            .read_event(contact_stream(91), events[2].event_id)
            .await
            .expect("read"),
        None
    );
    assert_eq!(
        store
            .read_event(contact_stream(90), Uuid::new_v4())
            .await
            .expect("read"),
        None
    );
}

/// The SQLite store with the trait's defaults for `position_at` (a walk),
/// `read_event` (a walk) and `append_batch` (one append after another), so the defaults are held
/// to the same contract as the overrides.
#[derive(Clone)]
pub struct WalkingStore(SqliteStore);

#[async_trait::async_trait]
impl EventStore for WalkingStore {
    async fn append(
        &self,
        stream: StreamName,
        expected: ExpectedVersion,
        events: Vec<NewEvent>,
    ) -> Result<rapport_store::AppendResult, StoreError> {
        self.0.append(stream, expected, events).await
    }
    async fn append_all_or_nothing(
        &self,
        appends: Vec<(StreamName, ExpectedVersion, Vec<NewEvent>)>,
    ) -> Result<Vec<rapport_store::AppendResult>, StoreError> {
        self.0.append_all_or_nothing(appends).await
    }
    async fn read_stream_raw(
        &self,
        stream: StreamName,
        from_version: u64,
        limit: usize,
    ) -> Result<Vec<rapport_store::RawEvent>, StoreError> {
        self.0.read_stream_raw(stream, from_version, limit).await
    }
    async fn read_all_raw(
        &self,
        after: Option<Position>,
        limit: usize,
    ) -> Result<Vec<rapport_store::RawEvent>, StoreError> {
        self.0.read_all_raw(after, limit).await
    }
    fn subscribe_all(
        &self,
        after: Option<Position>,
    ) -> futures::stream::BoxStream<'static, Result<SubscriptionMessage, StoreError>> {
        self.0.subscribe_all(after)
    }
    async fn head(&self) -> Result<rapport_store::LedgerHead, StoreError> {
        self.0.head().await
    }
}

pub struct WalkingLedger(TempLedger);

impl Backend for WalkingLedger {
    type Store = WalkingStore;
    fn create() -> Self {
        WalkingLedger(TempLedger::new())
    }
    fn store(&self) -> WalkingStore {
        WalkingStore(self.0.store())
    }
    fn reopen(&mut self) {
        self.0.reopen()
    }
    fn let_time_pass(&self, millis: i64) {
        self.0.clock.advance_millis(millis);
    }
}

pub async fn pages_of_the_whole_ledger_come_in_order_without_gap_while_it_grows<B: Backend>() {
    const PAGE: usize = 100;
    let backend = B::create();
    let store = backend.store();
    for n in 0..10u128 {
        let events = (0..250).map(reply).collect();
        store
            .append(contact_stream(200 + n), ExpectedVersion::Any, events)
            .await
            .expect("append");
    }
    let writer = {
        let store = backend.store();
        tokio::spawn(async move {
            for i in 0..50 {
                store
                    .append(contact_stream(300), ExpectedVersion::Any, vec![reply(i)])
                    .await
                    .expect("append");
            }
        })
    };
    let mut read = Vec::new();
    let mut pages = store.read_all_pages(None, PAGE);
    while let Some(page) = pages.next().await {
        let page = page.expect("page");
        assert!(!page.is_empty() && page.len() <= PAGE, "a page of {}", page.len());
        read.extend(page);
    }
    writer.await.expect("writer");
    let everything = read_everything(&store).await;
    assert!(
        read.len() >= 2_500,
        "only {} events of the 2,500 there before",
        read.len()
    );
    let positions = |events: &[rapport_store::RawEvent]| events.iter().map(|e| e.position).collect::<Vec<_>>();
    let expected: Vec<Position> = everything.iter().map(|e| e.position).take(read.len()).collect();
    assert_eq!(
        positions(&read),
        expected,
        "the pages are not the ledger's first events in order"
    );
    let from_the_middle: Vec<Position> = {
        let mut later = Vec::new();
        let mut pages = store.read_all_pages(Some(everything[999].position), PAGE);
        while let Some(page) = pages.next().await {
            later.extend(page.expect("page").into_iter().map(|e| e.position));
        }
        later
    };
    assert_eq!(
        from_the_middle,
        everything[1_000..].iter().map(|e| e.position).collect::<Vec<_>>()
    );
}

macro_rules! conformance_suite {
    ($module:ident, $backend:ty) => {
        mod $module {
            use super::*;

            macro_rules! scenario {
                ($name:ident) => {
                    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                    async fn $name() {
                        if <$backend as Backend>::available() {
                            super::$name::<$backend>().await
                        }
                    }
                };
            }

            scenario!(concurrent_exact_appends_win_each_version_once);
            scenario!(a_retried_append_returns_the_original_result_and_writes_nothing);
            scenario!(a_partly_matching_retry_is_refused_and_writes_nothing);
            scenario!(expected_versions_are_enforced);
            scenario!(the_digest_at_a_position_is_the_head_the_ledger_had_there);
            scenario!(two_writers_racing_under_one_id_with_different_facts_never_both_succeed);
            scenario!(streams_read_from_a_version_and_missing_streams_are_empty);
            scenario!(the_global_order_is_commit_order_across_streams);
            scenario!(a_subscription_crosses_from_catch_up_to_live_without_gap_or_duplicate);
            scenario!(a_large_batch_is_atomic_and_an_oversized_one_is_refused);
            scenario!(an_invalid_event_refuses_the_whole_append);
            scenario!(a_reopened_ledger_continues_where_it_stopped);
            scenario!(the_position_at_a_moment_is_the_last_event_recorded_by_then);
            scenario!(a_batch_applies_its_appends_in_order_each_on_its_own);
            scenario!(a_retry_carrying_another_fact_or_actor_under_the_same_id_is_refused);
            scenario!(an_all_or_nothing_batch_writes_nothing_when_one_append_is_refused);
            scenario!(an_event_is_found_by_its_id_in_its_stream_only);
            scenario!(pages_of_the_whole_ledger_come_in_order_without_gap_while_it_grows);
        }
    };
}

conformance_suite!(sqlite, TempLedger);
conformance_suite!(sqlite_with_default_walks, WalkingLedger);
conformance_suite!(kurrentdb_double, crate::kurrentdb::DoubleLedger);
conformance_suite!(kurrentdb_server, crate::kurrentdb::ServerLedger);
