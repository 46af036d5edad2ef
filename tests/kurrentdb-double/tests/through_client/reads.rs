// Reads through the real client: a stream and $all in both directions with their start positions, counts, filters, not found, and what the client learns when it connects.

use kurrentdb::{
    AppendToStreamOptions, Error, PersistentSubscriptionOptions, Position, ReadAllOptions, ReadStreamOptions,
    StreamPosition, StreamState, SubscriptionFilter,
};

use crate::support::{connected, event, events, read_all, read_stream};

fn revisions(events: &[kurrentdb::RecordedEvent]) -> Vec<u64> {
    events.iter().map(|event| event.revision).collect()
}

#[tokio::test]
async fn a_stream_reads_both_ways_from_a_revision_which_it_includes() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), events("Touched", 5))
        .await
        .expect("append");
    let all = read_stream(&client, "contact-1", &ReadStreamOptions::default())
        .await
        .expect("read");
    assert_eq!(revisions(&all), vec![0, 1, 2, 3, 4]);
    let forwards = ReadStreamOptions::default()
        .position(StreamPosition::Position(2))
        .forwards();
    assert_eq!(
        revisions(&read_stream(&client, "contact-1", &forwards).await.expect("read")),
        vec![2, 3, 4]
    );
    let backwards = ReadStreamOptions::default()
        .position(StreamPosition::Position(2))
        .backwards();
    assert_eq!(
        revisions(&read_stream(&client, "contact-1", &backwards).await.expect("read")),
        vec![2, 1, 0]
    );
    let from_end = ReadStreamOptions::default().position(StreamPosition::End).max_count(2);
    assert_eq!(
        revisions(&read_stream(&client, "contact-1", &from_end).await.expect("read")),
        vec![4, 3]
    );
    let counted = ReadStreamOptions::default().max_count(3);
    assert_eq!(
        revisions(&read_stream(&client, "contact-1", &counted).await.expect("read")),
        vec![0, 1, 2]
    );
    let past_the_end = ReadStreamOptions::default()
        .position(StreamPosition::Position(9))
        .forwards();
    assert!(
        read_stream(&client, "contact-1", &past_the_end)
            .await
            .expect("read")
            .is_empty()
    );
}

#[tokio::test]
async fn a_missing_stream_reads_as_not_found() {
    let (_double, client) = connected().await;
    let read = read_stream(&client, "contact-404", &ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceNotFound)), "{read:?}");
}

#[tokio::test]
async fn all_reads_forwards_from_a_position_include_it_and_backwards_start_before_it() {
    let (_double, client) = connected().await;
    for n in 0..4 {
        client
            .append_to_stream(
                format!("contact-{n}"),
                &AppendToStreamOptions::default(),
                event("Registered", n),
            )
            .await
            .expect("append");
    }
    let everything = read_all(&client, &ReadAllOptions::default()).await;
    let positions: Vec<Position> = everything
        .iter()
        .map(|event| event.get_original_event().position)
        .collect();
    assert_eq!(positions.len(), 4);
    let third = positions[2];
    let forwards = read_all(
        &client,
        &ReadAllOptions::default()
            .position(StreamPosition::Position(third))
            .forwards(),
    )
    .await;
    let found: Vec<Position> = forwards
        .iter()
        .map(|event| event.get_original_event().position)
        .collect();
    assert_eq!(found, positions[2..].to_vec());
    let backwards = read_all(
        &client,
        &ReadAllOptions::default()
            .position(StreamPosition::Position(third))
            .backwards(),
    )
    .await;
    let found: Vec<Position> = backwards
        .iter()
        .map(|event| event.get_original_event().position)
        .collect();
    assert_eq!(found, vec![positions[1], positions[0]]);
    let from_end = read_all(
        &client,
        &ReadAllOptions::default().position(StreamPosition::End).max_count(3),
    )
    .await;
    let found: Vec<Position> = from_end
        .iter()
        .map(|event| event.get_original_event().position)
        .collect();
    assert_eq!(found, vec![positions[3], positions[2], positions[1]]);
    assert!(
        everything
            .iter()
            .all(|event| event.commit_position == Some(event.get_original_event().position.commit))
    );
}

#[tokio::test]
async fn a_filtered_all_read_keeps_what_matches_and_system_events_show_unless_excluded() {
    let (_double, client) = connected().await;
    let options = AppendToStreamOptions::default();
    client
        .append_to_stream("contact-1", &options, event("ContactRegistered", 0))
        .await
        .expect("append");
    client
        .append_to_stream("group-1", &options, event("GroupCreated", 1))
        .await
        .expect("append");
    client
        .append_to_stream("$settings", &options, event("$settings", 2))
        .await
        .expect("append");
    client
        .append_to_stream("contact-2", &options, event("ContactTouched", 3))
        .await
        .expect("append");
    let streams = |events: &[kurrentdb::ResolvedEvent]| -> Vec<String> {
        events
            .iter()
            .map(|event| event.get_original_stream_id().to_owned())
            .collect()
    };
    let unfiltered = read_all(&client, &ReadAllOptions::default()).await;
    assert_eq!(
        streams(&unfiltered),
        vec!["contact-1", "group-1", "$settings", "contact-2"]
    );
    let by_prefix = ReadAllOptions::default().filter(SubscriptionFilter::on_stream_name().add_prefix("contact-"));
    assert_eq!(
        streams(&read_all(&client, &by_prefix).await),
        vec!["contact-1", "contact-2"]
    );
    let by_type = ReadAllOptions::default().filter(SubscriptionFilter::on_event_type().regex("^Group"));
    assert_eq!(streams(&read_all(&client, &by_type).await), vec!["group-1"]);
    let without_system = ReadAllOptions::default().filter(SubscriptionFilter::on_stream_name().exclude_system_events());
    assert_eq!(
        streams(&read_all(&client, &without_system).await),
        vec!["contact-1", "group-1", "contact-2"]
    );
    let counted = ReadAllOptions::default()
        .filter(SubscriptionFilter::on_stream_name().add_prefix("contact-"))
        .max_count(1);
    assert_eq!(streams(&read_all(&client, &counted).await), vec!["contact-1"]);
}

#[tokio::test]
async fn the_client_learns_what_is_served_and_the_rest_is_unimplemented() {
    let (_double, client) = connected().await;
    let info = client.server_info().await.expect("server info");
    assert_eq!(info.version().major(), 25);
    let batch = client.batch_append(&Default::default()).await;
    assert!(matches!(batch, Err(Error::UnsupportedFeature)), "{:?}", batch.err());
    let written = client
        .append_to_stream(
            "contact-1",
            &AppendToStreamOptions::default().stream_state(StreamState::Any),
            event("Registered", 0),
        )
        .await;
    written.expect("append uses Streams.Append");
    // A service the double does not serve answers UNIMPLEMENTED.
    let persistent = client
        .create_persistent_subscription("contact-1", "group", &PersistentSubscriptionOptions::default())
        .await;
    assert!(matches!(persistent, Err(Error::UnsupportedFeature)), "{persistent:?}");
}
