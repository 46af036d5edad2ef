// Appends through the real client: each expected revision, conflicts, idempotent and partial retries, positions and what an event keeps.

use bytes::Bytes;
use kurrentdb::{AppendToStreamOptions, CurrentRevision, Error, EventData, ReadStreamOptions, StreamState};
use uuid::Uuid;

use crate::support::{connected, event, events, read_stream};

fn expecting(state: StreamState) -> AppendToStreamOptions {
    AppendToStreamOptions::default().stream_state(state)
}

#[tokio::test]
async fn each_expected_revision_is_honoured() {
    let (_double, client) = connected().await;
    let first = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), events("Registered", 2))
        .await;
    assert_eq!(first.expect("no stream").next_expected_version, 1);
    let exists = client
        .append_to_stream("contact-1", &expecting(StreamState::StreamExists), event("Touched", 2))
        .await;
    assert_eq!(exists.expect("stream exists").next_expected_version, 2);
    let exact = client
        .append_to_stream(
            "contact-1",
            &expecting(StreamState::StreamRevision(2)),
            event("Touched", 3),
        )
        .await;
    assert_eq!(exact.expect("exact revision").next_expected_version, 3);
    let any = client
        .append_to_stream("contact-1", &expecting(StreamState::Any), event("Touched", 4))
        .await;
    assert_eq!(any.expect("any").next_expected_version, 4);
    let fresh = client
        .append_to_stream("contact-2", &expecting(StreamState::Any), event("Registered", 0))
        .await;
    assert_eq!(fresh.expect("any on a new stream").next_expected_version, 0);
}

#[tokio::test]
async fn a_conflict_answers_the_current_and_the_expected_revision() {
    let (_double, client) = connected().await;
    client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), events("Registered", 2))
        .await
        .expect("append");
    let cases = [
        ("contact-1", StreamState::StreamRevision(5), CurrentRevision::Current(1)),
        ("contact-1", StreamState::StreamRevision(0), CurrentRevision::Current(1)),
        ("contact-1", StreamState::NoStream, CurrentRevision::Current(1)),
        ("contact-9", StreamState::StreamExists, CurrentRevision::NoStream),
        ("contact-9", StreamState::StreamRevision(0), CurrentRevision::NoStream),
    ];
    for (stream, expected, current) in cases {
        let refused = client
            .append_to_stream(stream, &expecting(expected), event("Touched", 9))
            .await;
        match refused {
            Err(Error::WrongExpectedVersion {
                expected: answered,
                current: actual,
            }) => {
                assert_eq!(
                    (answered, actual),
                    (expected, current),
                    "{stream} expecting {expected:?}"
                );
            }
            other => panic!("{stream} expecting {expected:?}: {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_retry_with_the_same_ids_answers_the_first_revision_and_position_and_writes_nothing() {
    let (double, client) = connected().await;
    let batch = events("Registered", 3);
    let first = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), batch.clone())
        .await
        .expect("append");
    client
        .append_to_stream(
            "contact-1",
            &expecting(StreamState::StreamRevision(2)),
            event("Touched", 3),
        )
        .await
        .expect("append");
    let written = double.event_count();
    let retry = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), batch)
        .await
        .expect("retry");
    assert_eq!(retry.next_expected_version, first.next_expected_version);
    assert_eq!(retry.position, first.position);
    assert_eq!(double.event_count(), written);
}

#[tokio::test]
async fn a_retry_after_an_exact_revision_is_idempotent_too() {
    let (double, client) = connected().await;
    client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), event("Registered", 0))
        .await
        .expect("append");
    let batch = events("Touched", 2);
    let options = expecting(StreamState::StreamRevision(0));
    let first = client
        .append_to_stream("contact-1", &options, batch.clone())
        .await
        .expect("append");
    let retry = client
        .append_to_stream("contact-1", &options, batch)
        .await
        .expect("retry");
    assert_eq!(
        (retry.next_expected_version, retry.position),
        (first.next_expected_version, first.position)
    );
    assert_eq!(double.event_count(), 3);
}

#[tokio::test]
async fn a_partial_retry_is_refused() {
    let (double, client) = connected().await;
    let batch = events("Registered", 2);
    client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), batch.clone())
        .await
        .expect("append");
    let partial = vec![batch[0].clone(), event("Registered", 7)];
    let refused = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), partial)
        .await;
    assert!(
        matches!(
            refused,
            Err(Error::WrongExpectedVersion {
                current: CurrentRevision::Current(1),
                ..
            })
        ),
        "{refused:?}"
    );
    let longer = vec![batch[0].clone(), batch[1].clone(), event("Registered", 8)];
    let refused = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), longer)
        .await;
    assert!(
        matches!(refused, Err(Error::WrongExpectedVersion { .. })),
        "{refused:?}"
    );
    assert_eq!(double.event_count(), 2);
}

#[tokio::test]
async fn with_any_a_retry_is_recognised_by_its_ids() {
    let (double, client) = connected().await;
    let batch = events("Registered", 2);
    let any = expecting(StreamState::Any);
    let first = client
        .append_to_stream("contact-1", &any, batch.clone())
        .await
        .expect("append");
    client
        .append_to_stream("contact-1", &any, event("Touched", 2))
        .await
        .expect("append");
    let retry = client
        .append_to_stream("contact-1", &any, batch.clone())
        .await
        .expect("retry");
    assert_eq!(
        (retry.next_expected_version, retry.position),
        (first.next_expected_version, first.position)
    );
    let partial = vec![batch[0].clone(), event("Registered", 9)];
    let refused = client.append_to_stream("contact-1", &any, partial).await;
    assert!(
        matches!(refused, Err(Error::WrongExpectedVersion { .. })),
        "{refused:?}"
    );
    assert_eq!(double.event_count(), 3);
}

#[tokio::test]
async fn positions_are_sparse_increasing_and_commit_equals_prepare() {
    let (_double, client) = connected().await;
    let mut positions = Vec::new();
    for n in 0..5 {
        let written = client
            .append_to_stream(
                format!("contact-{n}"),
                &expecting(StreamState::Any),
                event("Registered", n),
            )
            .await;
        positions.push(written.expect("append").position);
    }
    for pair in positions.windows(2) {
        assert_eq!(pair[0].commit, pair[0].prepare);
        assert!(
            pair[1].commit > pair[0].commit + 1,
            "positions are not dense: {positions:?}"
        );
    }
    assert!(positions[0].commit > 0);
}

#[tokio::test]
async fn an_event_keeps_its_type_content_type_data_and_metadata_and_gets_a_created_time() {
    let (_double, client) = connected().await;
    let before = std::time::SystemTime::now();
    let id = Uuid::new_v4();
    let json = EventData::json("Registered", &serde_json::json!({ "name": "Ada" }))
        .expect("json")
        .id(id)
        .metadata(Bytes::from_static(b"{\"by\":\"test\"}"));
    let binary = EventData::binary("Blob", Bytes::from_static(&[0, 1, 2]));
    let written = client
        .append_to_stream("contact-1", &expecting(StreamState::NoStream), vec![json, binary])
        .await;
    let written = written.expect("append");
    let read = read_stream(&client, "contact-1", &ReadStreamOptions::default())
        .await
        .expect("read");
    assert_eq!(read.len(), 2);
    let (first, second) = (&read[0], &read[1]);
    assert_eq!(first.id, id);
    assert_eq!(first.event_type, "Registered");
    assert!(first.is_json);
    assert_eq!(
        first.as_json::<serde_json::Value>().expect("json"),
        serde_json::json!({ "name": "Ada" })
    );
    assert_eq!(&first.custom_metadata[..], b"{\"by\":\"test\"}");
    assert_eq!(first.stream_id(), "contact-1");
    assert_eq!(
        (second.event_type.as_str(), second.is_json, &second.data[..]),
        ("Blob", false, &[0, 1, 2][..])
    );
    assert_eq!(second.position, written.position);
    // The client reads "created" as ticks since the Unix epoch, to the second.
    let created = std::time::SystemTime::from(first.created);
    let floor = before - std::time::Duration::from_secs(1);
    assert!(created >= floor, "created {:?} is before the append", first.created);
    assert!(
        created <= std::time::SystemTime::now(),
        "created {:?} is in the future",
        first.created
    );
}
