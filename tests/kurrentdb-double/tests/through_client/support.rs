// Helpers for the client-driven tests: a client connected to a fresh double, events, and bounded waits.

use std::time::Duration;

use kurrentdb::{
    Client, ClientSettings, EventData, ReadAllOptions, ReadStreamOptions, RecordedEvent, ResolvedEvent, Subscription,
    SubscriptionEvent,
};
use rapport_kurrentdb_double::Double;
use uuid::Uuid;

/// A guard against a test hanging on a message that never comes: not a
/// timing assertion, a limit.
const WAIT_MAX: Duration = Duration::from_secs(20);

/// A fresh double and a client connected to it.
pub async fn connected() -> (Double, Client) {
    let double = Double::start().await;
    let client = client_of(&double);
    (double, client)
}

pub fn client_of(double: &Double) -> Client {
    // The client sleeps `discoveryInterval` (500 ms by default) before it
    // first connects; a shorter one keeps each test quick.
    let url = format!("{}&discoveryInterval=10", double.url());
    let settings: ClientSettings = url.parse().expect("the double's url is a connection string");
    Client::new(settings).expect("client")
}

/// A JSON event of `event_type` with a fresh id.
pub fn event(event_type: &str, n: u64) -> EventData {
    EventData::json(event_type, &serde_json::json!({ "n": n }))
        .expect("json")
        .id(Uuid::new_v4())
}

/// `count` fresh events.
pub fn events(event_type: &str, count: u64) -> Vec<EventData> {
    (0..count).map(|n| event(event_type, n)).collect()
}

/// Every event a stream read gives, or its error.
pub async fn read_stream(
    client: &Client,
    stream: &str,
    options: &ReadStreamOptions,
) -> Result<Vec<RecordedEvent>, kurrentdb::Error> {
    let mut read = client.read_stream(stream, options).await?;
    let mut found = Vec::new();
    while let Some(event) = bounded(read.next()).await? {
        found.push(event.event.expect("a recorded event"));
    }
    Ok(found)
}

/// Every event a `$all` read gives.
pub async fn read_all(client: &Client, options: &ReadAllOptions) -> Vec<ResolvedEvent> {
    let mut read = client.read_all(options).await.expect("read $all");
    let mut found = Vec::new();
    while let Some(event) = bounded(read.next()).await.expect("read $all") {
        found.push(event);
    }
    found
}

/// The next message of a subscription.
pub async fn next(subscription: &mut Subscription) -> Result<SubscriptionEvent, kurrentdb::Error> {
    bounded(subscription.next_subscription_event()).await
}

/// The next event of a subscription, skipping checkpoints and the like.
pub async fn next_event(subscription: &mut Subscription) -> RecordedEvent {
    loop {
        if let SubscriptionEvent::EventAppeared(event) = next(subscription).await.expect("subscription") {
            return event.event.expect("a recorded event");
        }
    }
}

/// Messages until `caught_up` (included).
pub async fn until_caught_up(subscription: &mut Subscription) -> Vec<SubscriptionEvent> {
    let mut seen = Vec::new();
    loop {
        let message = next(subscription).await.expect("subscription");
        let caught_up = matches!(message, SubscriptionEvent::CaughtUp(_));
        seen.push(message);
        if caught_up {
            return seen;
        }
    }
}

/// The events among subscription messages.
pub fn appeared(messages: &[SubscriptionEvent]) -> Vec<&RecordedEvent> {
    messages
        .iter()
        .filter_map(|message| match message {
            SubscriptionEvent::EventAppeared(event) => event.event.as_ref(),
            _ => None,
        })
        .collect()
}

pub async fn bounded<T>(future: impl Future<Output = T>) -> T {
    tokio::time::timeout(WAIT_MAX, future)
        .await
        .expect("the double answered within the wait limit")
}
