// The double's fault injections seen through the real client: failed appends, a lost acknowledgement and its retry, dropped subscriptions, and stopping.

use std::time::Duration;

use kurrentdb::{
    AppendToStreamOptions, Error, ReadStreamOptions, RetryOptions, StreamPosition, StreamState,
    SubscribeToStreamOptions, SubscriptionEvent,
};

use crate::support::{connected, event, events, next, next_event, read_stream, until_caught_up};

#[tokio::test]
async fn failed_appends_write_nothing_and_the_next_one_succeeds() {
    let (double, client) = connected().await;
    double.fail_next_appends(2);
    for n in 0..2 {
        let failed = client
            .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", n))
            .await;
        assert!(matches!(failed, Err(Error::ServerError(_))), "{failed:?}");
    }
    assert_eq!(double.event_count(), 0);
    let written = client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 2))
        .await;
    assert_eq!(written.expect("append").next_expected_version, 0);
}

#[tokio::test]
async fn a_lost_answer_is_written_and_its_retry_answers_the_original_position() {
    let (double, client) = connected().await;
    let batch = events("Registered", 2);
    let options = AppendToStreamOptions::default().stream_state(StreamState::NoStream);
    double.lose_next_append_answer();
    let lost = client.append_to_stream("contact-1", &options, batch.clone()).await;
    assert!(matches!(lost, Err(Error::ServerError(_))), "{lost:?}");
    assert_eq!(double.event_count(), 2);
    let retry = client
        .append_to_stream("contact-1", &options, batch)
        .await
        .expect("retry");
    let read = read_stream(&client, "contact-1", &ReadStreamOptions::default())
        .await
        .expect("read");
    assert_eq!(read.len(), 2);
    assert_eq!((retry.next_expected_version, retry.position), (1, read[1].position));
    assert_eq!(double.event_count(), 2);
}

#[tokio::test]
async fn dropped_subscriptions_end_with_an_error_the_client_can_retry_after() {
    let (double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    let plain = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let retry = RetryOptions::default().retry_delay(Duration::from_millis(10));
    let mut without_retry = client.subscribe_to_stream("contact-1", &plain).await;
    let mut with_retry = client
        .subscribe_to_stream("contact-1", &plain.clone().retry_options(retry))
        .await;
    until_caught_up(&mut without_retry).await;
    until_caught_up(&mut with_retry).await;
    assert_eq!(double.subscription_count(), 2);
    double.drop_subscriptions();
    let ended = next(&mut without_retry).await;
    assert!(matches!(ended, Err(Error::ServerError(_))), "{ended:?}");
    // The retrying client resubscribes after the last event it saw, so the
    // next one it gets is the new one, not a repeat.
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Touched", 1))
        .await
        .expect("append");
    assert_eq!(next_event(&mut with_retry).await.revision, 1);
}

#[tokio::test]
async fn a_stopped_double_serves_nothing_more() {
    let (double, client) = connected().await;
    client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Registered", 0))
        .await
        .expect("append");
    let options = SubscribeToStreamOptions::default().start_from(StreamPosition::Start);
    let mut subscription = client.subscribe_to_stream("contact-1", &options).await;
    assert!(matches!(
        next(&mut subscription).await,
        Ok(SubscriptionEvent::Confirmed(_))
    ));
    double.stop().await;
    loop {
        match next(&mut subscription).await {
            Ok(_) => continue,
            Err(error) => {
                assert!(matches!(error, Error::ServerError(_)), "{error:?}");
                break;
            }
        }
    }
    let refused = client
        .append_to_stream("contact-1", &AppendToStreamOptions::default(), event("Touched", 1))
        .await;
    assert!(refused.is_err(), "{refused:?}");
    // Its listener is closed too: nothing is left accepting connections.
    let connected = tokio::net::TcpStream::connect(double.address()).await;
    assert!(connected.is_err(), "{connected:?}");
}
