// Subscriptions through the real client: confirmation, catch-up exclusive of the start, caught-up, live events, filtered checkpoints and a tombstone while live.

use kurrentdb::{
    AppendToStreamOptions, Error, Position, StreamPosition, SubscribeToAllOptions, SubscribeToStreamOptions,
    SubscriptionEvent, SubscriptionFilter, TombstoneStreamOptions,
};

use crate::support::{appeared, connected, event, events, next, next_event, until_caught_up};

#[tokio::test]
async fn a_stream_subscription_catches_up_then_goes_live() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), events("Touched", 3))
        .await
        .expect("append");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    let messages = until_caught_up(&mut subscription).await;
    assert!(
        matches!(&messages[0], SubscriptionEvent::Confirmed(id) if !id.is_empty()),
        "{messages:?}"
    );
    let revisions: Vec<u64> = appeared(&messages).iter().map(|event| event.revision).collect();
    assert_eq!(revisions, vec![0, 1, 2]);
    match messages.last() {
        Some(SubscriptionEvent::CaughtUp(Some(caught_up))) => assert_eq!(caught_up.stream_revision, Some(2)),
        other => panic!("expected caught up, got {other:?}"),
    }
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Touched", 3))
        .await
        .expect("append");
    client
        .append_to_stream("contact-2", &AppendToStreamOptions::default(), event("Touched", 0))
        .await
        .expect("append");
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Touched", 4))
        .await
        .expect("append");
    assert_eq!(next_event(&mut subscription).await.revision, 3);
    assert_eq!(next_event(&mut subscription).await.revision, 4);
}

#[tokio::test]
async fn a_stream_subscription_from_a_revision_starts_after_it() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), events("Touched", 4))
        .await
        .expect("append");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Position(1));
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    let messages = until_caught_up(&mut subscription).await;
    let revisions: Vec<u64> = appeared(&messages).iter().map(|event| event.revision).collect();
    assert_eq!(revisions, vec![2, 3]);
}

#[tokio::test]
async fn a_subscription_to_a_stream_not_yet_written_waits_for_it() {
    let (_double, client) = connected().await;
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    let messages = until_caught_up(&mut subscription).await;
    assert!(
        matches!(messages.last(), Some(SubscriptionEvent::CaughtUp(Some(caught_up))) if caught_up.stream_revision.is_none())
    );
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    assert_eq!(next_event(&mut subscription).await.revision, 0);
}

#[tokio::test]
async fn an_all_subscription_from_a_position_starts_after_it_and_goes_live() {
    let (_double, client) = connected().await;
    let mut written = Vec::new();
    for n in 0..3 {
        let result = client
            .append_to_stream(
                format!("contact-{n}"),
                &AppendToStreamOptions::default(),
                event("Registered", n),
            )
            .await;
        written.push(result.expect("append").position);
    }
    let options = SubscribeToAllOptions::default().position(StreamPosition::Position(written[0]));
    let mut subscription = client.subscribe_to_all(&options).await;
    let messages = until_caught_up(&mut subscription).await;
    let positions: Vec<Position> = appeared(&messages).iter().map(|event| event.position).collect();
    assert_eq!(positions, written[1..].to_vec());
    match messages.last() {
        Some(SubscriptionEvent::CaughtUp(Some(caught_up))) => assert_eq!(caught_up.position, Some(written[2])),
        other => panic!("expected caught up, got {other:?}"),
    }
    let live = client
        .append_to_stream("contact-9", &AppendToStreamOptions::default(), event("Registered", 9))
        .await;
    let live = live.expect("append").position;
    assert_eq!(next_event(&mut subscription).await.position, live);
}

#[tokio::test]
async fn a_filtered_all_subscription_sends_checkpoints_for_what_it_passes_over() {
    let (_double, client) = connected().await;
    // Twelve events, of which only the wanted ones pass; a window of 4 and the
    // client's multiplier of 1 give a checkpoint every 4 records considered.
    for n in 0..12 {
        let stream = if n % 6 == 0 {
            format!("wanted-{n}")
        } else {
            format!("other-{n}")
        };
        client
            .append_to_stream(stream, &AppendToStreamOptions::default(), event("Registered", n))
            .await
            .expect("append");
    }
    let filter = SubscriptionFilter::on_stream_name().add_prefix("wanted-").max(4);
    let mut subscription = client
        .subscribe_to_all(&SubscribeToAllOptions::default().filter(filter))
        .await;
    let messages = until_caught_up(&mut subscription).await;
    let streams: Vec<&str> = appeared(&messages).iter().map(|event| event.stream_id()).collect();
    assert_eq!(streams, vec!["wanted-0", "wanted-6"]);
    let checkpoints: Vec<Position> = messages
        .iter()
        .filter_map(|message| match message {
            SubscriptionEvent::Checkpoint(position) => Some(*position),
            _ => None,
        })
        .collect();
    assert_eq!(checkpoints.len(), 3, "{messages:?}");
    assert!(checkpoints.windows(2).all(|pair| pair[0].commit < pair[1].commit));
    // Live: four more records considered make one more checkpoint.
    for n in 12..16 {
        client
            .append_to_stream(
                format!("other-{n}"),
                &AppendToStreamOptions::default(),
                event("Registered", n),
            )
            .await
            .expect("append");
    }
    let live_checkpoint = loop {
        if let SubscriptionEvent::Checkpoint(position) = next(&mut subscription).await.expect("subscription") {
            break position;
        }
    };
    assert!(live_checkpoint.commit > checkpoints[2].commit);
}

#[tokio::test]
async fn a_live_stream_subscription_sees_the_tombstone_then_stream_deleted() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    until_caught_up(&mut subscription).await;
    client
        .tombstone_stream("contact-1", &TombstoneStreamOptions::default())
        .await
        .expect("tombstone");
    let tombstone = next_event(&mut subscription).await;
    assert_eq!(
        (tombstone.event_type.as_str(), tombstone.revision),
        ("$streamDeleted", i64::MAX as u64)
    );
    let ended = next(&mut subscription).await;
    assert!(matches!(ended, Err(Error::ResourceDeleted)), "{ended:?}");
}

#[tokio::test]
async fn a_subscription_to_a_tombstoned_stream_is_confirmed_then_fails() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    client
        .tombstone_stream("contact-1", &TombstoneStreamOptions::default())
        .await
        .expect("tombstone");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    assert!(matches!(
        next(&mut subscription).await,
        Ok(SubscriptionEvent::Confirmed(_))
    ));
    let ended = next(&mut subscription).await;
    assert!(matches!(ended, Err(Error::ResourceDeleted)), "{ended:?}");
}
