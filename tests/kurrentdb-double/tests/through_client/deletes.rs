// Soft deletes and tombstones through the real client: how the stream reads and takes appends afterwards, the errors, and what $all shows.

use kurrentdb::{
    AppendToStreamOptions, DeleteStreamOptions, Error, ReadAllOptions, ReadStreamOptions, StreamState,
    TombstoneStreamOptions,
};

use crate::support::{connected, event, events, read_all, read_stream};

#[tokio::test]
async fn a_soft_deleted_stream_reads_as_not_found_and_is_recreated_from_the_next_revision() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), events("Touched", 3))
        .await
        .expect("append");
    let deleted = client
        .delete_stream(
            "contact-1",
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(2)),
        )
        .await;
    assert!(deleted.expect("delete").is_some());
    let read = read_stream(&client, "contact-1", &ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceNotFound)), "{read:?}");
    let exists = client
        .append_to_stream(
            "contact-1",
            &AppendToStreamOptions::default().stream_state(StreamState::StreamExists),
            event("Touched", 3),
        )
        .await;
    assert!(matches!(exists, Err(Error::ResourceDeleted)), "{exists:?}");
    let recreated = client
        .append_to_stream(
            "contact-1",
            &AppendToStreamOptions::default().stream_state(StreamState::NoStream),
            event("Touched", 3),
        )
        .await;
    assert_eq!(recreated.expect("recreate").next_expected_version, 3);
    let read = read_stream(&client, "contact-1", &ReadStreamOptions::default())
        .await
        .expect("read");
    assert_eq!(read.iter().map(|event| event.revision).collect::<Vec<_>>(), vec![3]);
}

#[tokio::test]
async fn a_delete_with_the_wrong_expected_revision_fails_with_failed_precondition() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), events("Touched", 2))
        .await
        .expect("append");
    let refused = client
        .delete_stream(
            "contact-1",
            &DeleteStreamOptions::default().stream_state(StreamState::StreamRevision(0)),
        )
        .await;
    match refused {
        Err(Error::Grpc { code, message }) => {
            assert_eq!(code, tonic::Code::FailedPrecondition);
            assert!(message.contains("WrongExpectedVersion"), "{message}");
        }
        other => panic!("expected a failed precondition, got {other:?}"),
    }
}

#[tokio::test]
async fn a_tombstoned_stream_refuses_reads_appends_and_deletes() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    let tombstoned = client
        .tombstone_stream("contact-1", &TombstoneStreamOptions::default())
        .await;
    assert!(tombstoned.expect("tombstone").is_some());
    let read = client.read_stream("contact-1", &ReadStreamOptions::default()).await;
    assert!(matches!(read, Err(Error::ResourceDeleted)), "{:?}", read.err());
    for state in [StreamState::Any, StreamState::NoStream, StreamState::StreamRevision(0)] {
        let options = AppendToStreamOptions::default().stream_state(state);
        let append = client
            .append_to_stream("contact-1", &options, event("Touched", 1))
            .await;
        assert!(matches!(append, Err(Error::ResourceDeleted)), "{state:?}: {append:?}");
    }
    let delete = client.delete_stream("contact-1", &DeleteStreamOptions::default()).await;
    assert!(matches!(delete, Err(Error::ResourceDeleted)), "{delete:?}");
}

#[tokio::test]
async fn all_shows_the_metadata_of_a_soft_delete_and_the_tombstone() {
    let (double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    client
        .append_to_stream("contact-2", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    client
        .delete_stream("contact-1", &DeleteStreamOptions::default())
        .await
        .expect("delete");
    client
        .tombstone_stream("contact-2", &TombstoneStreamOptions::default())
        .await
        .expect("tombstone");
    let everything = read_all(&client, &ReadAllOptions::default()).await;
    let seen: Vec<(String, String)> = everything
        .iter()
        .map(|event| {
            let original = event.get_original_event();
            (original.stream_id().to_owned(), original.event_type.clone())
        })
        .collect();
    let expected = [
        ("contact-1", "Registered"),
        ("contact-2", "Registered"),
        ("$$contact-1", "$metadata"),
        ("contact-2", "$streamDeleted"),
    ];
    let expected: Vec<(String, String)> = expected
        .iter()
        .map(|(stream, event_type)| ((*stream).to_owned(), (*event_type).to_owned()))
        .collect();
    assert_eq!(seen, expected);
    assert_eq!(double.event_count(), 4);
}
