//! Trust: nobody gets around the gate or sees another owner's contacts,
//! and business time cannot be bent. Each test is one class of hole, tried
//! against a real server the way an attacker or a careless client would,
//! and checks that the refusal has its code and wrote nothing.

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;

use crate::api::{REPLY, Socket, TestServer, next_payload};

const REGISTER_WITH_KEY: &str = "mutation($id: UUID, $owner: String, $key: UUID, $name: String) {
    registerContact(input: { id: $id, owner: $owner, primaryChannel: WECHAT, idempotencyKey: $key, displayName: $name }) {
        id displayName tags gate(mode: MASS) { verdict }
    }
}";

fn message_of(body: &Value) -> String {
    body["errors"][0]["message"].as_str().unwrap_or_default().to_owned()
}

#[tokio::test]
async fn a_retry_under_someone_elses_event_id_returns_nothing_of_theirs() {
    let server = TestServer::start().await;
    let key = uuid::Uuid::now_v7();
    let bobs = server
        .ok(
            "manager",
            REGISTER_WITH_KEY,
            json!({ "owner": "bob", "key": key, "name": "Han Meimei" }),
        )
        .await["registerContact"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let bobs_reply = server.ok("bob", REPLY, json!({ "id": bobs })).await["recordReply"]["eventId"].clone();
    let alices = server.register("alice", "alice", "Li Lei", &[]).await;
    let count = server.event_count().await;

    // Sales staff cannot name a contact id at all: imported ids can be computed.
    assert_eq!(
        server
            .code(
                "alice",
                REGISTER_WITH_KEY,
                json!({ "id": bobs, "key": key, "name": "anything" })
            )
            .await,
        "BAD_INPUT"
    );
    // A key is the caller's own: the manager's key, bob's event id or his
    // contact's id, used by alice, names her own new write, never theirs,
    // and tells her nothing.
    let own = server
        .ok("alice", REGISTER_WITH_KEY, json!({ "key": key, "name": "Wang Fang" }))
        .await;
    assert_ne!(own["registerContact"]["id"], bobs.as_str());
    assert_eq!(own["registerContact"]["displayName"], "Wang Fang");
    for (query, vars) in [
        (REPLY, json!({ "id": alices, "key": bobs_reply })),
        (
            "mutation($id: UUID!, $key: UUID) { recordTouch(input: { contactId: $id, mode: ONE_TO_ONE, idempotencyKey: $key }) { position } }",
            json!({ "id": alices, "key": bobs }),
        ),
    ] {
        let (_, body) = server.gql("alice", query, vars).await;
        assert!(body.get("errors").is_none(), "{body}");
        assert!(!body.to_string().contains(&bobs), "bob's stream leaked: {body}");
    }
    assert_eq!(server.event_count().await, count + 3, "alice's three writes, her own");

    // The same principal retrying with another payload is a CONFLICT...
    let count = server.event_count().await;
    assert_eq!(
        server
            .code(
                "alice",
                REGISTER_WITH_KEY,
                json!({ "key": key, "name": "Wang Fang (edited)" })
            )
            .await,
        "CONFLICT"
    );
    // ...while the true retry answers as the first time.
    let again = server
        .ok("alice", REGISTER_WITH_KEY, json!({ "key": key, "name": "Wang Fang" }))
        .await;
    assert_eq!(again, own);
    assert_eq!(server.event_count().await, count, "a refused retry wrote something");
}

#[tokio::test]
async fn another_owners_contact_answers_exactly_like_a_missing_one() {
    let server = TestServer::start().await;
    let bobs = server.register("manager", "bob", "Han Meimei", &[]).await;
    let missing = uuid::Uuid::now_v7().to_string();
    let count = server.event_count().await;
    let paths = [
        "query($id: UUID!) { contact(id: $id) { id } }",
        "query($id: UUID!) { gate(contactId: $id, mode: MASS) { verdict } }",
        REPLY,
        "mutation($id: UUID!) { recordTouch(input: { contactId: $id, mode: ONE_TO_ONE }) { position } }",
        "mutation($id: UUID!) { tagContact(input: { contactId: $id, tag: \"x\" }) { position } }",
        "mutation($id: UUID!) { setConsent(input: { contactId: $id, granted: false }) { position } }",
        "mutation($id: UUID!) { recordDeletion(input: { contactId: $id }) { position } }",
    ];
    for query in paths {
        let (_, owned_by_bob) = server.gql("alice", query, json!({ "id": bobs })).await;
        let (_, not_there) = server.gql("alice", query, json!({ "id": missing })).await;
        assert_eq!(
            owned_by_bob["errors"][0]["extensions"]["code"], "NOT_FOUND",
            "{query}: {owned_by_bob}"
        );
        assert_eq!(
            message_of(&owned_by_bob).replace(&bobs, "ID"),
            message_of(&not_there).replace(&missing, "ID"),
            "{query}: the answers differ"
        );
        assert_eq!(owned_by_bob["data"], not_there["data"], "{query}");
    }
    // The manager, who may see it, still does.
    server
        .ok(
            "manager",
            "query($id: UUID!) { contact(id: $id) { id } }",
            json!({ "id": bobs }),
        )
        .await;
    assert_eq!(server.event_count().await, count, "a refused request wrote something");
}

#[tokio::test]
async fn owners_are_trimmed_and_a_name_nobody_could_hold_is_refused() {
    let server = TestServer::start().await;
    let padded = server.register("manager", "  bob ", "Zhou Min", &[]).await;
    let seen = server
        .ok(
            "bob",
            "query($id: UUID!) { contact(id: $id) { owner } }",
            json!({ "id": padded }),
        )
        .await;
    assert_eq!(seen["contact"]["owner"], "bob");
    let count = server.event_count().await;
    let register = "mutation($owner: String) { registerContact(input: { owner: $owner, primaryChannel: SMS }) { id } }";
    for owner in ["   ", "bo\u{7}b", &"x".repeat(65)] {
        assert_eq!(
            server.code("manager", register, json!({ "owner": owner })).await,
            "BAD_INPUT",
            "{owner:?}"
        );
    }
    assert_eq!(server.event_count().await, count, "a refused owner wrote something");
}

#[tokio::test]
async fn a_contact_carries_at_most_fifty_tags_on_every_path() {
    let server = TestServer::start().await;
    let tags: Vec<String> = (0..49).map(|n| format!("t{n}")).collect();
    let tag_refs: Vec<&str> = tags.iter().map(String::as_str).collect();
    let id = server.register("alice", "alice", "Qian Wei", &tag_refs).await;
    let tag =
        "mutation($id: UUID!, $tag: String!) { tagContact(input: { contactId: $id, tag: $tag }) { contactVersion } }";
    server.ok("alice", tag, json!({ "id": id, "tag": "fiftieth" })).await;
    let count = server.event_count().await;
    assert_eq!(
        server
            .code("alice", tag, json!({ "id": id, "tag": "fifty-first" }))
            .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(server.event_count().await, count, "a refused tag wrote something");
    // A tag it already carries is no new tag.
    server.ok("alice", tag, json!({ "id": id, "tag": "t3" })).await;
    let carried = server
        .ok(
            "alice",
            "query($id: UUID!) { contact(id: $id) { tags } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(carried["contact"]["tags"].as_array().expect("tags").len(), 50);
    // Sales may not tag another owner's contact at all.
    let bobs = server.register("manager", "bob", "Sun Li", &[]).await;
    assert_eq!(
        server.code("alice", tag, json!({ "id": bobs, "tag": "x" })).await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn business_time_cannot_run_ahead_of_the_ledger_or_dodge_the_gate() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Wu Gang", &[]).await;
    let count = server.event_count().await;
    let dated = |field: &str| {
        format!(
            "mutation($id: UUID!, $at: DateTime!) {{ {field}(input: {{ contactId: $id, occurredAt: $at }}) {{ position }} }}"
        )
    };
    let far_future = "9999-01-01T00:00:00Z";
    for field in ["recordReply", "recordReadd", "recordUnblock"] {
        assert_eq!(
            server
                .code("alice", &dated(field), json!({ "id": id, "at": far_future }))
                .await,
            "BAD_INPUT",
            "{field}"
        );
    }
    let consent = "mutation($id: UUID!, $at: DateTime!) { setConsent(input: { contactId: $id, granted: true, occurredAt: $at }) { position } }";
    assert_eq!(
        server
            .code("alice", consent, json!({ "id": id, "at": far_future }))
            .await,
        "BAD_INPUT"
    );
    let register =
        "mutation($at: DateTime!) { registerContact(input: { primaryChannel: SMS, occurredAt: $at }) { id } }";
    assert_eq!(
        server.code("alice", register, json!({ "at": far_future })).await,
        "BAD_INPUT"
    );
    let ingest = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended } }";
    let (_, body) = server
        .gql(
            "ingest",
            ingest,
            json!({ "events": [
                { "eventId": uuid::Uuid::now_v7(), "contactId": id, "type": "REPLY", "occurredAt": server.at(-3_600) },
                { "eventId": uuid::Uuid::now_v7(), "contactId": id, "type": "REPLY", "occurredAt": "2100-01-01T00:00:00Z" },
            ] }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["index"], 1, "{body}");

    // A gated touch happens now: not tomorrow morning, not last week.
    let touch = "mutation($id: UUID!, $at: DateTime, $override: OverrideInput) {
        recordTouch(input: { contactId: $id, mode: ONE_TO_ONE, occurredAt: $at, override: $override }) { position eventId }
    }";
    for offset in [86_400, -7 * 86_400] {
        assert_eq!(
            server
                .code("alice", touch, json!({ "id": id, "at": server.at(offset) }))
                .await,
            "BAD_INPUT",
            "a touch dated {offset} s away"
        );
    }
    assert_eq!(server.event_count().await, count, "a refused write wrote something");

    // A manager may record a past send, and the event says it was an override.
    let past = server
        .ok(
            "manager",
            touch,
            json!({ "id": id, "at": server.at(-7 * 86_400), "override": { "reason": "sent from a phone last week" } }),
        )
        .await;
    let event_id = past["recordTouch"]["eventId"].clone();
    let timeline = server
        .ok(
            "manager",
            "query($id: UUID!) { contact(id: $id) { timeline { edges { node { eventId payload } } } } }",
            json!({ "id": id }),
        )
        .await;
    let recorded = timeline["contact"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|edge| edge["node"]["eventId"] == event_id)
        .expect("the past touch")
        .clone();
    assert_eq!(
        recorded["node"]["payload"]["authorization"]["override"]["reason"], "sent from a phone last week",
        "{recorded}"
    );
    // Even an override cannot date a send in the future.
    assert_eq!(
        server
            .code(
                "manager",
                touch,
                json!({ "id": id, "at": server.at(86_400), "override": { "reason": "tomorrow" } })
            )
            .await,
        "BAD_INPUT"
    );
}

#[tokio::test]
async fn a_touch_is_appended_against_the_version_the_gate_judged() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Zheng Hao", &[]).await;
    server.ok("alice", REPLY, json!({ "id": id })).await;
    let count = server.event_count().await;
    let touch = "mutation($id: UUID!, $expected: Int) {
        recordTouch(input: { contactId: $id, mode: ONE_TO_ONE, expectedVersion: $expected }) { contactVersion }
    }";
    for stale_or_ahead in [0, 2, 7] {
        assert_eq!(
            server
                .code("alice", touch, json!({ "id": id, "expected": stale_or_ahead }))
                .await,
            "CONFLICT",
            "expectedVersion {stale_or_ahead}"
        );
    }
    assert_eq!(server.event_count().await, count, "a conflicting touch wrote something");
    let sent = server.ok("alice", touch, json!({ "id": id, "expected": 1 })).await;
    assert_eq!(sent["recordTouch"]["contactVersion"], 2);
}

#[tokio::test]
async fn an_ingested_batch_with_an_event_id_used_elsewhere_writes_nothing() {
    let server = TestServer::start().await;
    let first = server.register("manager", "alice", "Zhou Min", &[]).await;
    let second = server.register("manager", "alice", "Lin Tao", &[]).await;
    let used = server.ok("manager", REPLY, json!({ "id": first })).await["recordReply"]["eventId"].clone();
    let count = server.event_count().await;
    let ingest = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended duplicates } }";
    let (_, body) = server
        .gql(
            "ingest",
            ingest,
            json!({ "events": [
                { "eventId": uuid::Uuid::now_v7(), "contactId": second, "type": "REPLY", "occurredAt": server.at(-60) },
                { "eventId": used, "contactId": second, "type": "BLOCK", "occurredAt": server.at(-30) },
            ] }),
        )
        .await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_INPUT", "{body}");
    assert_eq!(body["errors"][0]["extensions"]["index"], 1, "{body}");
    assert!(
        !message_of(&body).contains(&first),
        "the refusal names the other stream: {body}"
    );
    assert_eq!(
        server.event_count().await,
        count,
        "a rejected batch wrote its first item"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sales_subscription_receives_every_event_of_their_new_contacts() {
    crate::support::hang_guard("the ledgerEvents subscription", every_event_scenario()).await
}

async fn every_event_scenario() {
    const CONTACTS: usize = 40;
    let server = TestServer::start().await;
    let mut socket = server
        .subscribe(
            "alice",
            "subscription { ledgerEvents { type stream version } }",
            json!({}),
        )
        .await;
    let mut expected = Vec::new();
    for n in 0..CONTACTS {
        let id = server.register("alice", "alice", &format!("Customer {n}"), &[]).await;
        server.ok("alice", REPLY, json!({ "id": id })).await;
        // Another owner's contacts in between must not arrive.
        server.register("manager", "bob", &format!("Other {n}"), &[]).await;
        expected.push((format!("contact-{id}"), 0));
        expected.push((format!("contact-{id}"), 1));
    }
    let mut received = Vec::new();
    while received.len() < expected.len() {
        let event = next_payload(&mut socket).await["ledgerEvents"].clone();
        if event["stream"] == "policy" {
            continue;
        }
        received.push((
            event["stream"].as_str().expect("stream").to_owned(),
            event["version"].as_i64().expect("version"),
        ));
    }
    assert_eq!(received, expected);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_token_closes_its_websocket() {
    crate::support::hang_guard("the revoked WebSocket", revocation_scenario()).await
}

async fn close_code(socket: &mut Socket) -> Option<u16> {
    while let Some(message) = socket.next().await {
        match message {
            Ok(Message::Close(frame)) => return frame.map(|frame| u16::from(frame.code)),
            Ok(_) => continue,
            Err(_) => return None,
        }
    }
    None
}

async fn revocation_scenario() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Ma Li", &[]).await;
    let mut socket = server
        .subscribe(
            "alice",
            "subscription($id: UUID!) { gateChanged(contactId: $id, mode: ONE_TO_ONE) { verdict } }",
            json!({ "id": id }),
        )
        .await;
    next_payload(&mut socket).await;
    let state = &server.server.as_ref().expect("running").state;
    assert_eq!(
        state
            .tokens
            .revoke(
                &rapport_app::tokens::Revoke::Named("alice".into()),
                "2026-01-02T00:00:00Z"
            )
            .expect("revoke"),
        1
    );
    assert_eq!(close_code(&mut socket).await, Some(4403));
    // And a new connection with it is not accepted.
    let refused = tokio_tungstenite::connect_async(server.url("/graphql/ws").replace("http://", "ws://")).await;
    if let Ok((mut fresh, _)) = refused {
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", server.tokens["alice"]) } });
        fresh.send(Message::text(init.to_string())).await.expect("init");
        let answer = fresh.next().await;
        assert!(
            !matches!(&answer, Some(Ok(Message::Text(text))) if text.contains("connection_ack")),
            "a revoked token was acknowledged: {answer:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_token_revoked_by_another_process_stops_working_in_a_running_server() {
    crate::support::hang_guard("the revocation from elsewhere", revoked_elsewhere_scenario()).await
}

async fn revoked_elsewhere_scenario() {
    let mut server = TestServer::start().await;
    let ledger = server._dir.path().join("rapport.db");
    let secret = server
        .server
        .as_ref()
        .expect("running")
        .state
        .tokens
        .create(rapport_app::tokens::Role::Sales, "carol", "2026-01-01T00:00:00Z")
        .expect("token");
    server.tokens.insert("carol", secret);
    server.ok("carol", "{ me { name } }", json!({})).await;
    // `rapport token revoke carol`, as another process runs it.
    let elsewhere = rapport_app::tokens::TokenStore::open(&ledger).expect("open the token file");
    assert_eq!(
        elsewhere
            .revoke(
                &rapport_app::tokens::Revoke::Named("carol".into()),
                "2026-01-02T00:00:00Z"
            )
            .expect("revoke"),
        1
    );
    loop {
        let (status, _) = server.gql("carol", "{ me { name } }", json!({})).await;
        if status == reqwest::StatusCode::UNAUTHORIZED {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn subscriptions_per_connection_are_capped() {
    crate::support::hang_guard("the subscription cap", subscription_cap_scenario()).await
}

async fn subscription_cap_scenario() {
    use rapport_api::graphql::SUBSCRIPTIONS_PER_CONNECTION_MAX;
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Guo Jing", &[]).await;
    let query = "subscription($id: UUID!) { gateChanged(contactId: $id, mode: MASS) { verdict } }";
    let mut socket = server.subscribe("alice", query, json!({ "id": id })).await;
    next_payload(&mut socket).await;
    for n in 2..=SUBSCRIPTIONS_PER_CONNECTION_MAX + 1 {
        let subscribe = json!({ "id": n.to_string(), "type": "subscribe", "payload": { "query": query, "variables": { "id": id } } });
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .expect("subscribe");
    }
    // They start concurrently: any one of them is the one past the cap,
    // and every other one answers.
    let mut answered = 1;
    let mut refused = false;
    while answered < SUBSCRIPTIONS_PER_CONNECTION_MAX || !refused {
        let message = socket.next().await.expect("message").expect("message");
        let Ok(text) = message.to_text() else { continue };
        let value: Value = serde_json::from_str(text).expect("json");
        match value["type"].as_str() {
            Some("next") if value["payload"]["errors"].is_null() => answered += 1,
            Some("next") | Some("error") => {
                let errors = if value["type"] == "error" {
                    &value["payload"]
                } else {
                    &value["payload"]["errors"]
                };
                assert_eq!(errors[0]["extensions"]["code"], "LIMIT_EXCEEDED", "{value}");
                assert!(!refused, "more than one subscription was refused: {value}");
                refused = true;
            }
            _ => continue,
        }
    }
    assert_eq!(answered, SUBSCRIPTIONS_PER_CONNECTION_MAX);
}

#[tokio::test]
async fn business_time_and_knowledge_are_separate_axes_that_combine() {
    let server = TestServer::start().await;
    let id = server
        .ok(
            "manager",
            "mutation { registerContact(input: { owner: \"alice\", primaryChannel: WECHAT, occurredAt: \"2026-01-05T02:00:00Z\" }) { id } }",
            json!({}),
        )
        .await["registerContact"]["id"]
        .as_str()
        .expect("id")
        .to_owned();
    let ingest = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { position } }";
    let fact = |kind: &str, at: &str| json!({ "eventId": uuid::Uuid::now_v7(), "contactId": id, "type": kind, "occurredAt": at });
    let reply_known = server
        .ok(
            "ingest",
            ingest,
            json!({ "events": [fact("REPLY", "2026-02-01T04:00:00Z")] }),
        )
        .await["ingestEvents"]["position"]
        .clone();
    // The deletion happened on 1 March but reached the ledger later.
    server
        .ok(
            "ingest",
            ingest,
            json!({ "events": [fact("DELETION", "2026-03-01T12:00:00Z")] }),
        )
        .await;

    let gate = "query($id: UUID!, $at: DateTime) { gate(contactId: $id, mode: ONE_TO_ONE, at: $at) { verdict reasons { code } } }";
    let before = server
        .ok("alice", gate, json!({ "id": id, "at": "2026-02-15T03:00:00Z" }))
        .await;
    assert!(
        !before["gate"]["reasons"].to_string().contains("CONTACT_DELETED_US"),
        "on 15 February they had not deleted us yet: {before}"
    );
    let after = server
        .ok("alice", gate, json!({ "id": id, "at": "2026-03-02T03:00:00Z" }))
        .await;
    assert_eq!(after["gate"]["verdict"], "DENY", "{after}");
    let now = server.ok("alice", gate, json!({ "id": id })).await;
    assert_eq!(now["gate"]["verdict"], "DENY", "{now}");

    let replay = "query($id: UUID!, $at: DateTime, $p: String) {
        replay(at: $at, asOfPosition: $p) { position contact(id: $id) { status } gate(contactId: $id, mode: ONE_TO_ONE) { verdict } }
    }";
    let on_business_time = server
        .ok("auditor", replay, json!({ "id": id, "at": "2026-02-15T03:00:00Z" }))
        .await;
    assert_eq!(
        on_business_time["replay"]["contact"]["status"], "ACTIVE",
        "{on_business_time}"
    );
    let later = server
        .ok("auditor", replay, json!({ "id": id, "at": "2026-03-02T03:00:00Z" }))
        .await;
    assert_eq!(later["replay"]["contact"]["status"], "DELETED_US", "{later}");
    // At 2 March as the ledger knew it before the deletion was recorded.
    let not_yet_known = server
        .ok(
            "auditor",
            replay,
            json!({ "id": id, "at": "2026-03-02T03:00:00Z", "p": reply_known }),
        )
        .await;
    assert_eq!(
        not_yet_known["replay"]["contact"]["status"], "ACTIVE",
        "{not_yet_known}"
    );
    assert_ne!(not_yet_known["replay"]["gate"]["verdict"], "DENY", "{not_yet_known}");

    assert_eq!(
        server.code("auditor", replay, json!({ "id": id, "p": "999999" })).await,
        "BAD_INPUT",
        "a position past the head"
    );
    let timeline =
        "query($id: UUID!, $after: String) { contact(id: $id) { timeline(after: $after) { edges { cursor } } } }";
    for cursor in ["99", "-1", "x"] {
        assert_eq!(
            server
                .code("alice", timeline, json!({ "id": id, "after": cursor }))
                .await,
            "BAD_INPUT",
            "cursor {cursor}"
        );
    }
}

#[tokio::test]
async fn the_timeline_marks_a_touch_sent_against_the_gate() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Chen Jie", &["vip"]).await;
    server
        .ok(
            "manager",
            "mutation($id: UUID!) { recordTouch(input: { contactId: $id, mode: MASS, override: { reason: \"renewal\" } }) { position } }",
            json!({ "id": id }),
        )
        .await;
    let timeline = server
        .ok(
            "alice",
            "query($id: UUID!) { contact(id: $id) { timeline { edges { node { type violation { verdict overrideReason } } } } } }",
            json!({ "id": id }),
        )
        .await;
    let edges = timeline["contact"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .clone();
    assert_eq!(
        edges[0]["node"]["violation"],
        Value::Null,
        "the registration broke nothing"
    );
    assert_eq!(edges[1]["node"]["type"], "TouchRecorded");
    assert_eq!(
        edges[1]["node"]["violation"]["verdict"], "ROUTE_ONE_TO_ONE",
        "{timeline}"
    );
    assert_eq!(edges[1]["node"]["violation"]["overrideReason"], "renewal");
}

#[tokio::test]
async fn aliases_cannot_multiply_the_work_of_one_request() {
    let server = TestServer::start().await;
    server.register("alice", "alice", "Li Lei", &[]).await;
    let page = "contacts { edges { node { timeline { edges { node { type } } } } } }";
    server.ok("alice", &format!("{{ {page} }}"), json!({})).await;
    let many: String = (0..250).map(|n| format!("a{n}: {page} ")).collect();
    assert_eq!(
        server.code("alice", &format!("{{ {many} }}"), json!({})).await,
        "LIMIT_EXCEEDED"
    );
    let verifications = "{ a: verifyLedger { intact } b: verifyLedger { intact } }";
    assert_eq!(server.code("auditor", verifications, json!({})).await, "LIMIT_EXCEEDED");
    let replays: String = (0..4)
        .map(|n| format!("r{n}: replay(asOfPosition: \"1\") {{ position }} "))
        .collect();
    assert_eq!(
        server.code("auditor", &format!("{{ {replays} }}"), json!({})).await,
        "LIMIT_EXCEEDED"
    );
    server
        .ok(
            "auditor",
            "{ verifyLedger { intact } replay(asOfPosition: \"1\") { position } }",
            json!({}),
        )
        .await;
}

#[tokio::test]
async fn violations_page_through_a_contact_with_a_long_history() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Qian Wei", &["vip"]).await;
    let ingest = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended } }";
    for batch in 0..10 {
        let events: Vec<Value> = (0..1_000)
            .map(|n| json!({ "eventId": uuid::Uuid::now_v7(), "contactId": id, "type": "REPLY", "occurredAt": server.at(-86_400 + batch * 1_000 + n) }))
            .collect();
        server.ok("ingest", ingest, json!({ "events": events })).await;
    }
    server
        .ok(
            "manager",
            "mutation($id: UUID!) { recordTouch(input: { contactId: $id, mode: MASS, override: { reason: \"renewal\" } }) { contactVersion } }",
            json!({ "id": id }),
        )
        .await;
    let page = server
        .ok(
            "auditor",
            "{ violations(first: 1) { edges { cursor node { version } } pageInfo { hasNextPage endCursor } } }",
            json!({}),
        )
        .await;
    let connection = &page["violations"];
    assert_eq!(connection["edges"][0]["node"]["version"], 10_001, "{page}");
    assert_eq!(connection["pageInfo"]["hasNextPage"], false, "{page}");
    assert_eq!(connection["pageInfo"]["endCursor"], connection["edges"][0]["cursor"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_half_sent_connections_close_and_never_hold_up_a_stop() {
    crate::support::hang_guard("the half-sent connections", half_sent_scenario()).await
}

async fn half_sent_scenario() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut server = TestServer::start().await;
    let address = server.server.as_ref().expect("running").address;
    // One connection that never sends a byte, one that stops mid-headers.
    let mut idle = tokio::net::TcpStream::connect(address).await.expect("connect");
    let mut half = tokio::net::TcpStream::connect(address).await.expect("connect");
    half.write_all(b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Le")
        .await
        .expect("write");
    let mut buffer = [0u8; 256];
    // The server closes the idle one by itself.
    let read = idle.read(&mut buffer).await;
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "the idle connection stayed open: {read:?}"
    );
    // And a stop with the half-sent request open still finishes.
    server.server.take().expect("running").stop().await.expect("stop");
    drop(half);
}
