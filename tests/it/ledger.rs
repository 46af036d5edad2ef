//! The ledger as the commands use it, on the real embedded store: a new
//! ledger's first event is the default policy, invalid policies are
//! refused, and the projection folded live equals a rebuild from the store
//! at every position, including "as of" a past moment.

use std::sync::Arc;

use futures::StreamExt;
use rapport_app::clock::{Clock, ManualClock, SystemClock};
use rapport_app::ledger::open_for_writing;
use rapport_app::read_model::rebuild;
use rapport_domain::{Event, NewEvent, Policy, PolicyChanged, SendMode, StreamName, ValidationError};
use rapport_projections::Projection;
use rapport_store::{EventStore, ExpectedVersion, StoreError, SubscriptionMessage};
use uuid::Uuid;

use crate::support::{at, contact_stream, mass_touch, registered, reply};

/// The ledger in `dir`, opened the way every command opens it.
async fn open_ledger(dir: &tempfile::TempDir) -> rapport_store::Ledger {
    open_for_writing(
        &dir.path().join("rapport.db"),
        "test",
        rapport_app::clock::system_clock(),
    )
    .await
    .expect("open the ledger")
}

#[tokio::test]
async fn a_new_ledger_starts_with_the_default_policy() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_ledger(&dir).await;
    let first = store.read_all(None, 10).await.expect("read");
    assert_eq!(first.len(), 1);
    assert_eq!(first[0].stream, StreamName::Policy);
    assert_eq!(
        first[0].event,
        Event::PolicyChanged(PolicyChanged {
            policy: Policy::default()
        })
    );
    drop(store);
    let reopened = open_ledger(&dir).await;
    assert_eq!(
        reopened.head().await.expect("head").event_count,
        1,
        "the policy was written twice"
    );
}

#[tokio::test]
async fn an_invalid_policy_is_refused_and_leaves_the_ledger_unchanged() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_ledger(&dir).await;
    let head = store.head().await.expect("head");
    let mut policy = Policy::default();
    policy.active_hours.end_minute = 25 * 60;
    let event = NewEvent::new(Uuid::now_v7(), PolicyChanged { policy }, at(0), "admin");
    let refused = store
        .append(StreamName::Policy, ExpectedVersion::Exact(0), vec![event])
        .await;
    match refused {
        Err(StoreError::InvalidEvent {
            index: 0,
            source: ValidationError::Policy(error),
        }) => {
            assert_eq!(error.field, "activeHours");
        }
        other => panic!("expected an invalid policy error, got {other:?}"),
    }
    assert_eq!(store.head().await.expect("head"), head);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_live_projection_equals_a_rebuild_from_the_store_at_every_position() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_ledger(&dir).await;
    let mut live = Projection::new();
    let mut subscription = store.subscribe_all(None);
    let mut snapshots = Vec::new();
    for n in 1..=6u128 {
        store
            .append(contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)])
            .await
            .expect("register");
    }
    let mut stricter = Policy::default();
    stricter.mass.score_min = 80;
    for round in 0..30i64 {
        let n = 1 + (round as u128 % 6);
        let event = if round % 3 == 0 {
            reply(round * 86_400_000)
        } else {
            mass_touch(round * 86_400_000)
        };
        store
            .append(contact_stream(n), ExpectedVersion::Any, vec![event])
            .await
            .expect("append");
        if round == 15 {
            let change = NewEvent::new(
                Uuid::now_v7(),
                PolicyChanged {
                    policy: stricter.clone(),
                },
                at(0),
                "admin",
            );
            store
                .append(StreamName::Policy, ExpectedVersion::Exact(0), vec![change])
                .await
                .expect("policy");
        }
    }
    let head = store.head().await.expect("head").last_position;
    crate::support::hang_guard("the live fold", async {
        while live.position() < head {
            match subscription.next().await.expect("subscription").expect("event") {
                SubscriptionMessage::Event(event) => {
                    live.apply(&event);
                    snapshots.push(live.clone());
                }
                SubscriptionMessage::CaughtUp => {}
            }
        }
    })
    .await;
    assert!(!live.violations().is_empty(), "the mass touches should break the gate");
    for snapshot in snapshots {
        let rebuilt = rebuild(&store, snapshot.position()).await.expect("rebuild");
        assert_eq!(rebuilt, snapshot, "rebuild differs at {:?}", snapshot.position());
    }
    let contact = rapport_domain::ContactId(Uuid::from_u128(1));
    let decision = live
        .gate(contact, SendMode::Mass, None, at(40 * 86_400_000))
        .expect("contact");
    assert_eq!(decision.gate.policy_version, 2);
}

#[tokio::test]
async fn a_replay_as_of_a_moment_sees_only_what_the_ledger_knew_then() {
    let dir = tempfile::tempdir().expect("dir");
    let clock = ManualClock::starting_at(SystemClock.now());
    let store = open_for_writing(&dir.path().join("rapport.db"), "test", Arc::clone(&clock) as _)
        .await
        .expect("open");
    store
        .append(contact_stream(1), ExpectedVersion::NoStream, vec![registered(1)])
        .await
        .expect("register");
    let known_then = store.head().await.expect("head").last_position;
    let moment = store
        .read_all(None, 10)
        .await
        .expect("read")
        .last()
        .expect("event")
        .recorded_at;
    // The reply is recorded a second later.
    clock.advance_millis(1_000);
    store
        .append(contact_stream(1), ExpectedVersion::Any, vec![reply(1)])
        .await
        .expect("reply");
    let position = store.position_at(moment).await.expect("position");
    assert_eq!(position, known_then);
    let then = rebuild(&store, position).await.expect("rebuild");
    let contact = rapport_domain::ContactId(Uuid::from_u128(1));
    assert_eq!(then.relationship(contact).expect("contact").replies_total(), 0);
    let now = rebuild(&store, None).await.expect("rebuild");
    assert_eq!(now.relationship(contact).expect("contact").replies_total(), 1);
}

/// The follower a server runs (`Live`), not a fold written for the test:
/// writes land while it follows, and what it holds then is what a rebuild
/// from the store finds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_real_live_follower_equals_a_rebuild_from_the_store() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_ledger(&dir).await;
    for n in 1..=3u128 {
        store
            .append(contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)])
            .await
            .expect("register");
    }
    let live = rapport_app::live::Live::start(&store, None).await.expect("follow");
    let mut writers = Vec::new();
    for n in 1..=3u128 {
        let store = store.clone();
        writers.push(tokio::spawn(async move {
            for round in 0..20i64 {
                let event = if round % 4 == 0 {
                    reply(round * 3_600_000)
                } else {
                    mass_touch(round * 3_600_000)
                };
                store
                    .append(contact_stream(n), ExpectedVersion::Any, vec![event])
                    .await
                    .expect("append");
            }
        }));
    }
    for writer in writers {
        writer.await.expect("writer");
    }
    let head = store.head().await.expect("head").last_position.expect("events");
    live.wait_for(head).await.expect("the follower reaches the head");
    let followed = live.read(Clone::clone);
    let rebuilt = rapport_app::read_model::rebuild_read_model(&store, Some(head))
        .await
        .expect("rebuild");
    assert_eq!(followed.projection.events_applied(), 1 + 3 + 60);
    assert_eq!(followed, rebuilt, "the follower and a rebuild differ");
}

#[tokio::test]
async fn the_write_ahead_log_is_copied_into_the_ledger_file_while_the_store_stays_open() {
    const ROUNDS_MAX: u128 = 40;
    let ledger = crate::support::TempLedger::new();
    let store = ledger.store();
    let file_length = || std::fs::metadata(ledger.path()).expect("ledger file").len();
    let empty_length = file_length();
    let mut rounds = 0;
    // Checkpoints run beside the writer, so the file grows only some time
    // after the log passed its threshold: append until it has.
    while file_length() == empty_length {
        assert!(
            rounds < ROUNDS_MAX,
            "{} events in, the ledger file still had only its first pages: nothing was checkpointed",
            rounds * 10_000
        );
        let appends = (0..1_000)
            .map(|n| {
                let stream = contact_stream(rounds * 1_000 + n);
                (stream, ExpectedVersion::Any, (0..10).map(reply).collect())
            })
            .collect();
        for result in store.append_batch(appends).await.expect("batch") {
            result.expect("append");
        }
        rounds += 1;
        tokio::task::yield_now().await;
    }
    // The writer bounds the log at 256 MiB itself; the checkpoint thread
    // copies it long before.
    let log_length = std::fs::metadata(ledger.dir.path().join("rapport.db-wal"))
        .expect("write-ahead log")
        .len();
    assert!(
        log_length < 128 << 20,
        "the log had grown to {log_length} bytes before the file took its pages"
    );
    drop(store);
    let mut ledger = ledger;
    ledger.reopen();
    assert_eq!(
        ledger.store().head().await.expect("head").event_count,
        u64::try_from(rounds).expect("rounds") * 10_000
    );
}
