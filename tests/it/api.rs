//! The GraphQL API end to end: a real server on 127.0.0.1:0 with a
//! temporary ledger, spoken to over HTTP and WebSocket with one token per
//! role. Each test covers one capability: roles, every mutation, gated
//! touches and overrides, idempotency, conflicts, pagination, live
//! subscriptions, and hostile requests.

use std::collections::HashMap;
use std::sync::Arc;

use futures::{SinkExt, StreamExt};
use rapport_api::server::{Server, open_state_on};
use rapport_app::clock::{Clock, ManualClock, SystemClock};
use rapport_app::tokens::Role;
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

pub type Socket = tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

pub struct TestServer {
    pub server: Option<Server>,
    /// The server's clock: it stands still unless a test moves it.
    pub clock: Arc<ManualClock>,
    pub _dir: tempfile::TempDir,
    pub client: reqwest::Client,
    pub tokens: HashMap<&'static str, String>,
}

impl TestServer {
    /// A server whose clock stands at 11:00 in Shanghai today (inside every
    /// contact's active hours), whatever time it is where the tests run:
    /// gated touches happen now, and now must not be a quiet hour.
    pub async fn start() -> Self {
        const DAY: i64 = 86_400_000;
        const SHANGHAI_11_AM_UTC: i64 = 3 * 3_600_000;
        let today = SystemClock.now().as_millis().div_euclid(DAY) * DAY;
        let clock = ManualClock::starting_at(rapport_domain::Timestamp::from_millis_unchecked(
            today + SHANGHAI_11_AM_UTC,
        ));
        let dir = tempfile::tempdir().expect("dir");
        let state = open_state_on(&dir.path().join("rapport.db"), Arc::clone(&clock) as _)
            .await
            .expect("open state");
        let mut tokens = HashMap::new();
        for (key, role, name) in [
            ("alice", Role::Sales, "alice"),
            ("bob", Role::Sales, "bob"),
            ("manager", Role::Manager, "mia"),
            ("auditor", Role::Auditor, "audrey"),
            ("admin", Role::Admin, "root"),
            ("ingest", Role::Ingest, "crm-sync"),
        ] {
            tokens.insert(
                key,
                state.tokens.create(role, name, "2026-01-01T00:00:00Z").expect("token"),
            );
        }
        let server = Server::start_with(state, "127.0.0.1:0".parse().expect("addr"))
            .await
            .expect("start");
        TestServer {
            server: Some(server),
            clock,
            _dir: dir,
            client: reqwest::Client::new(),
            tokens,
        }
    }

    /// RFC 3339 for `offset_secs` from now on the server's clock.
    pub fn at(&self, offset_secs: i64) -> String {
        let now = self.clock.now();
        now.plus_millis(offset_secs * 1_000).to_rfc3339()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.server.as_ref().expect("running").address)
    }

    /// Posts a query as `who` and returns the status and JSON body.
    pub async fn gql(&self, who: &str, query: &str, variables: Value) -> (StatusCode, Value) {
        let response = self
            .client
            .post(self.url("/graphql"))
            .bearer_auth(&self.tokens[who])
            .json(&json!({ "query": query, "variables": variables }))
            .send()
            .await
            .expect("request");
        let status = response.status();
        (status, response.json().await.expect("a JSON body"))
    }

    /// The data of a query that must succeed.
    pub async fn ok(&self, who: &str, query: &str, variables: Value) -> Value {
        let (status, body) = self.gql(who, query, variables).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert!(body.get("errors").is_none(), "unexpected errors: {body}");
        body["data"].clone()
    }

    /// The first error's code of a query that must fail.
    pub async fn code(&self, who: &str, query: &str, variables: Value) -> String {
        let (status, body) = self.gql(who, query, variables).await;
        assert!(!status.is_server_error(), "{status}: {body}");
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_else(|| panic!("no error code in {body}"))
            .to_owned()
    }

    pub async fn register(&self, who: &str, owner: &str, name: &str, tags: &[&str]) -> String {
        let data = self
            .ok(
                who,
                "mutation($owner: String, $name: String, $tags: [String!]) {
                   registerContact(input: { owner: $owner, primaryChannel: WECHAT, displayName: $name, tags: $tags }) { id }
                 }",
                json!({ "owner": owner, "name": name, "tags": tags }),
            )
            .await;
        data["registerContact"]["id"].as_str().expect("id").to_owned()
    }

    /// Opens a `graphql-transport-ws` connection as `who`, checks the ack,
    /// and starts one subscription.
    pub async fn subscribe(&self, who: &str, query: &str, variables: Value) -> Socket {
        let mut request = self
            .url("/graphql/ws")
            .replace("http://", "ws://")
            .into_client_request()
            .expect("request");
        request.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "graphql-transport-ws".parse().expect("header"),
        );
        let (mut socket, _) = tokio_tungstenite::connect_async(request).await.expect("connect");
        let init = json!({ "type": "connection_init", "payload": { "Authorization": format!("Bearer {}", self.tokens[who]) } });
        socket.send(Message::text(init.to_string())).await.expect("init");
        let ack = socket.next().await.expect("ack").expect("ack");
        assert!(ack.to_text().expect("text").contains("connection_ack"), "{ack:?}");
        let subscribe =
            json!({ "id": "1", "type": "subscribe", "payload": { "query": query, "variables": variables } });
        socket
            .send(Message::text(subscribe.to_string()))
            .await
            .expect("subscribe");
        socket
    }

    pub async fn event_count(&self) -> i64 {
        self.ok("admin", "{ ledger { eventCount } }", json!({})).await["ledger"]["eventCount"]
            .as_i64()
            .expect("count")
    }
}

pub const REPLY: &str = "mutation($id: UUID!, $key: UUID, $expected: Int) {
    recordReply(input: { contactId: $id, idempotencyKey: $key, expectedVersion: $expected }) { eventId position contactVersion }
}";
pub const TOUCH: &str = "mutation($id: UUID!, $mode: SendMode!, $override: OverrideInput) {
    recordTouch(input: { contactId: $id, mode: $mode, override: $override }) {
        position decision { verdict reasons { code blocking } }
    }
}";

#[tokio::test]
async fn the_schema_file_is_the_served_schema() {
    let file = include_str!("../../api/schema.graphql");
    // Not assert_eq: the two documents are long; the diff is what matters.
    assert!(
        rapport_api::graphql::sdl() == file,
        "the served schema differs from api/schema.graphql: run `rapport schema > api/schema.graphql` and review the diff"
    );
}

#[test]
fn every_reason_code_is_a_value_of_the_schemas_enum() {
    let sdl = rapport_api::graphql::sdl();
    let start = sdl.find("enum ReasonCode {").expect("the ReasonCode enum");
    let body = &sdl[start..start + sdl[start..].find('}').expect("its end")];
    for code in rapport_domain::ReasonCode::ALL {
        assert!(
            body.lines().any(|line| line.trim() == code.as_str()),
            "{} is not in the schema's ReasonCode",
            code.as_str()
        );
    }
}

#[tokio::test]
async fn requests_without_a_valid_token_are_unauthenticated() {
    let server = TestServer::start().await;
    let query = json!({ "query": "{ me { name } }" });
    let missing = server
        .client
        .post(server.url("/graphql"))
        .json(&query)
        .send()
        .await
        .expect("request");
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let body: Value = missing.json().await.expect("json");
    assert_eq!(body["errors"][0]["extensions"]["code"], "UNAUTHENTICATED");
    let wrong = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth("rpt_nope")
        .json(&query)
        .send()
        .await
        .expect("request");
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let state = Arc::clone(&server.server.as_ref().expect("running").state);
    assert_eq!(
        state
            .tokens
            .revoke(
                &rapport_app::tokens::Revoke::Named("bob".into()),
                "2026-01-02T00:00:00Z"
            )
            .expect("revoke"),
        1
    );
    let revoked = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&server.tokens["bob"])
        .json(&query)
        .send()
        .await
        .expect("request");
    assert_eq!(revoked.status(), StatusCode::UNAUTHORIZED);
}

#[tokio::test]
async fn each_role_may_do_its_part_and_nothing_more() {
    let server = TestServer::start().await;
    let me = server.ok("alice", "{ me { name role } }", json!({})).await;
    assert_eq!(me["me"], json!({ "name": "alice", "role": "SALES" }));
    let alices = server.register("alice", "alice", "Li Lei", &[]).await;
    let bobs = server.register("manager", "bob", "Han Meimei", &[]).await;
    let count = server.event_count().await;

    // Sales: own contacts only, and nothing of the ledger as a whole.
    assert_eq!(
        server.code("alice", "{ ledger { eventCount } }", json!({})).await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code(
                "alice",
                "mutation { registerContact(input: { owner: \"bob\", primaryChannel: SMS }) { id } }",
                json!({})
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code(
                "alice",
                "query($id: UUID!) { contact(id: $id) { id } }",
                json!({ "id": bobs })
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(server.code("alice", REPLY, json!({ "id": bobs })).await, "NOT_FOUND");
    let listed = server
        .ok("alice", "{ contacts { edges { node { id owner } } } }", json!({}))
        .await;
    assert_eq!(listed["contacts"]["edges"].as_array().expect("edges").len(), 1);
    assert_eq!(
        server.code("alice", "{ verifyLedger { intact } }", json!({})).await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code("alice", "{ violations { edges { cursor } } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    server.ok("alice", REPLY, json!({ "id": alices })).await;

    // Auditor: reads, replays and verifies; writes nothing.
    assert_eq!(
        server.code("auditor", REPLY, json!({ "id": alices })).await,
        "FORBIDDEN"
    );
    let audit = server
        .ok(
            "auditor",
            "{ verifyLedger { intact eventsChecked } ledger { eventCount } }",
            json!({}),
        )
        .await;
    assert_eq!(audit["verifyLedger"]["intact"], true);
    server
        .ok(
            "auditor",
            "query($id: UUID!) { contact(id: $id) { owner } }",
            json!({ "id": bobs }),
        )
        .await;

    // Ingest: only ingestEvents.
    assert_eq!(
        server
            .code("ingest", "{ contacts { edges { cursor } } }", json!({}))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(server.code("ingest", REPLY, json!({ "id": alices })).await, "FORBIDDEN");

    // Policy: admins only.
    let set_policy = "mutation($doc: JSON!) { setPolicy(input: { document: $doc }) { version } }";
    let policy = server.ok("admin", "{ policy { document } }", json!({})).await["policy"]["document"].clone();
    assert_eq!(
        server.code("manager", set_policy, json!({ "doc": policy })).await,
        "FORBIDDEN"
    );
    let changed = server.ok("admin", set_policy, json!({ "doc": policy })).await;
    assert_eq!(changed["setPolicy"]["version"], 2);

    // Refusals wrote nothing: only alice's reply and the policy were added.
    assert_eq!(server.event_count().await, count + 2);
}

#[tokio::test]
async fn every_mutation_records_its_event_and_answers_after_applying_it() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Zhang Wei", &[]).await;
    let calls = [
        ("recordReply", "ContactEventInput", "{ contactId: $id }"),
        ("recordBlock", "ContactEventInput", "{ contactId: $id, channel: SMS }"),
        ("recordUnblock", "ContactEventInput", "{ contactId: $id, channel: SMS }"),
        (
            "recordComplaint",
            "RecordComplaintInput",
            "{ contactId: $id, reason: \"spam\" }",
        ),
        ("setConsent", "SetConsentInput", "{ contactId: $id, granted: false }"),
        ("setConsent", "SetConsentInput", "{ contactId: $id, granted: true }"),
        ("tagContact", "TagInput", "{ contactId: $id, tag: \"vip\" }"),
        ("untagContact", "TagInput", "{ contactId: $id, tag: \"vip\" }"),
        ("recordDeletion", "ContactEventInput", "{ contactId: $id }"),
        ("recordReadd", "ContactEventInput", "{ contactId: $id }"),
    ];
    for (version, (mutation, _, input)) in calls.iter().enumerate() {
        let query = format!(
            "mutation($id: UUID!) {{ {mutation}(input: {input}) {{ contactVersion contact {{ version status }} }} }}"
        );
        let data = server.ok("alice", &query, json!({ "id": id })).await;
        // Read-your-writes: the contact in the answer already includes the event.
        assert_eq!(data[mutation]["contactVersion"], version as i64 + 1, "{mutation}");
        assert_eq!(data[mutation]["contact"]["version"], version as i64 + 1, "{mutation}");
    }
    let touch = server
        .ok("manager", TOUCH, json!({ "id": id, "mode": "ONE_TO_ONE" }))
        .await;
    assert!(touch["recordTouch"]["position"].is_string());
    let timeline = server
        .ok(
            "alice",
            "query($id: UUID!) { contact(id: $id) { timeline(first: 50) { edges { node { type } } } } }",
            json!({ "id": id }),
        )
        .await;
    let types: Vec<&str> = timeline["contact"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["type"].as_str().expect("type"))
        .collect();
    assert_eq!(
        types,
        [
            "ContactRegistered",
            "ReplyReceived",
            "ContactBlocked",
            "ContactUnblocked",
            "ComplaintFiled",
            "ConsentWithdrawn",
            "ConsentGranted",
            "ContactTagged",
            "ContactUntagged",
            "ContactDeletedUs",
            "ContactReadded",
            "TouchRecorded"
        ]
    );
}

#[tokio::test]
async fn a_gated_touch_is_refused_then_overridden_by_a_manager_and_listed_as_a_violation() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Chen Jie", &["vip"]).await;
    let before = server.event_count().await;
    let (status, body) = server.gql("alice", TOUCH, json!({ "id": id, "mode": "MASS" })).await;
    assert_eq!(status, StatusCode::OK);
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "GATE_DENIED");
    assert_eq!(error["extensions"]["verdict"], "ROUTE_ONE_TO_ONE");
    let codes: Vec<&str> = error["extensions"]["reasons"]
        .as_array()
        .expect("reasons")
        .iter()
        .map(|r| r["code"].as_str().expect("code"))
        .collect();
    assert!(codes.contains(&"HIGH_VALUE_CONTACT"), "{codes:?}");
    assert_eq!(server.event_count().await, before, "a refused touch was appended");

    let with_override = json!({ "id": id, "mode": "MASS", "override": { "reason": "contract renewal notice" } });
    assert_eq!(server.code("alice", TOUCH, with_override.clone()).await, "FORBIDDEN");
    let sent = server.ok("manager", TOUCH, with_override).await;
    assert_eq!(sent["recordTouch"]["decision"]["verdict"], "ROUTE_ONE_TO_ONE");

    let violations = server
        .ok(
            "auditor",
            "{ violations { edges { node { type contactId violation { verdict reasonCodes overrideReason } } } } }",
            json!({}),
        )
        .await;
    let node = &violations["violations"]["edges"][0]["node"];
    assert_eq!(node["type"], "TouchRecorded");
    assert_eq!(node["contactId"], id.as_str());
    assert_eq!(node["violation"]["overrideReason"], "contract renewal notice");
    assert_eq!(node["violation"]["verdict"], "ROUTE_ONE_TO_ONE");
}

#[tokio::test]
async fn a_retried_write_returns_the_original_result_and_appends_nothing() {
    let server = TestServer::start().await;
    let key = uuid::Uuid::now_v7().to_string();
    let register = "mutation($key: UUID!) { registerContact(input: { primaryChannel: EMAIL, idempotencyKey: $key }) { id version } }";
    let first = server.ok("alice", register, json!({ "key": key })).await;
    let count = server.event_count().await;
    let again = server.ok("alice", register, json!({ "key": key })).await;
    assert_eq!(first, again);
    assert_eq!(server.event_count().await, count);

    let id = first["registerContact"]["id"].as_str().expect("id");
    let reply_key = uuid::Uuid::now_v7().to_string();
    let reply = server.ok("alice", REPLY, json!({ "id": id, "key": reply_key })).await;
    let count = server.event_count().await;
    let retried = server
        .ok("alice", REPLY, json!({ "id": id, "key": reply_key, "expected": 0 }))
        .await;
    assert_eq!(
        reply, retried,
        "a retry with a now-stale expectedVersion still returns the original"
    );
    assert_eq!(server.event_count().await, count);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_writers_with_the_same_expected_version_conflict_but_one() {
    let server = Arc::new(TestServer::start().await);
    let id = server.register("manager", "alice", "Sun Li", &[]).await;
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let server = Arc::clone(&server);
            let id = id.clone();
            tokio::spawn(async move { server.gql("alice", REPLY, json!({ "id": id, "expected": 0 })).await })
        })
        .collect();
    let mut won = 0;
    let mut conflicts = 0;
    for task in tasks {
        let (_, body) = task.await.expect("task");
        match body["errors"][0]["extensions"]["code"].as_str() {
            None => won += 1,
            Some("CONFLICT") => conflicts += 1,
            Some(other) => panic!("unexpected {other}: {body}"),
        }
    }
    assert_eq!((won, conflicts), (1, 7));
}

#[tokio::test]
async fn contacts_page_through_with_cursors_and_limits() {
    let server = TestServer::start().await;
    for n in 0..25 {
        server
            .register(
                "manager",
                "bob",
                &format!("Customer {n}"),
                if n % 5 == 0 { &["vip"] } else { &[] },
            )
            .await;
    }
    let page = "query($after: String) { contacts(first: 10, after: $after) { edges { cursor node { id } } pageInfo { hasNextPage endCursor } } }";
    let mut seen = std::collections::HashSet::new();
    let mut after = Value::Null;
    let mut pages = 0;
    loop {
        let data = server.ok("manager", page, json!({ "after": after })).await;
        let connection = &data["contacts"];
        for edge in connection["edges"].as_array().expect("edges") {
            assert!(
                seen.insert(edge["node"]["id"].as_str().expect("id").to_owned()),
                "a contact appeared twice"
            );
        }
        pages += 1;
        if connection["pageInfo"]["hasNextPage"] != true {
            break;
        }
        after = connection["pageInfo"]["endCursor"].clone();
    }
    assert_eq!((seen.len(), pages), (25, 3));
    let vips = server
        .ok(
            "manager",
            "{ contacts(tag: \"vip\", first: 100) { edges { cursor } } }",
            json!({}),
        )
        .await;
    assert_eq!(vips["contacts"]["edges"].as_array().expect("edges").len(), 5);
    let found = server
        .ok(
            "manager",
            "{ contacts(search: \"customer 17\") { edges { node { displayName } } } }",
            json!({}),
        )
        .await;
    assert_eq!(found["contacts"]["edges"][0]["node"]["displayName"], "Customer 17");
    assert_eq!(
        server
            .code("manager", "{ contacts(first: 101) { edges { cursor } } }", json!({}))
            .await,
        "LIMIT_EXCEEDED"
    );
}

#[tokio::test]
async fn ingesting_a_batch_is_all_or_nothing_and_idempotent() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Zhou Min", &[]).await;
    let ingest =
        "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended duplicates position } }";
    let item = |kind: &str| json!({ "eventId": uuid::Uuid::now_v7(), "contactId": id, "type": kind, "occurredAt": "2026-03-01T10:00:00Z" });
    let mut touch = item("TOUCH");
    touch["mode"] = json!("MASS");
    touch["sender"] = json!("other-tool");
    let batch = json!([item("REPLY"), touch, item("COMPLAINT")]);
    let count = server.event_count().await;
    let mut bad = batch.clone();
    bad.as_array_mut().expect("array").push(json!({ "eventId": uuid::Uuid::now_v7(), "contactId": uuid::Uuid::now_v7(), "type": "REPLY", "occurredAt": "2026-03-01T10:00:00Z" }));
    let (_, body) = server.gql("ingest", ingest, json!({ "events": bad })).await;
    assert_eq!(body["errors"][0]["extensions"]["code"], "BAD_INPUT");
    assert_eq!(body["errors"][0]["extensions"]["index"], 3);
    assert_eq!(server.event_count().await, count, "a rejected batch wrote something");
    let first = server.ok("ingest", ingest, json!({ "events": batch })).await;
    let position = first["ingestEvents"]["position"].clone();
    assert!(position.is_string(), "{first}");
    assert_eq!(
        first["ingestEvents"],
        json!({ "appended": 3, "duplicates": 0, "position": position })
    );
    let again = server.ok("ingest", ingest, json!({ "events": batch })).await;
    assert_eq!(
        again["ingestEvents"],
        json!({ "appended": 0, "duplicates": 3, "position": position }),
        "a retry answers where the batch stands, applied"
    );
    assert_eq!(server.event_count().await, count + 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_receives_events_appended_by_another_client_in_order() {
    crate::support::hang_guard("the WebSocket subscription", websocket_scenario()).await
}

async fn websocket_scenario() {
    let server = TestServer::start().await;
    let id = server.register("alice", "alice", "Wu Hao", &[]).await;
    let query = "subscription($id: UUID!) { ledgerEvents(contactId: $id) { type version position } }";
    let mut socket = server.subscribe("alice", query, json!({ "id": id })).await;
    // The backlog (the registration) arrives first...
    let mut versions = vec![next_version(&mut socket).await];
    // ...then replies another client records.
    for _ in 0..3 {
        server.ok("manager", REPLY, json!({ "id": id })).await;
    }
    for _ in 0..3 {
        versions.push(next_version(&mut socket).await);
    }
    assert_eq!(versions, [0, 1, 2, 3]);
}

/// The stream version of the next `ledgerEvents` item on the socket.
async fn next_version(socket: &mut Socket) -> i64 {
    next_payload(socket).await["ledgerEvents"]["version"]
        .as_i64()
        .expect("version")
}

#[tokio::test]
async fn hostile_and_malformed_requests_get_clear_codes_and_never_a_5xx() {
    let server = TestServer::start().await;
    let post = |body: reqwest::Body| {
        server
            .client
            .post(server.url("/graphql"))
            .bearer_auth(&server.tokens["admin"])
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let code_of = |body: &Value| {
        body["errors"][0]["extensions"]["code"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    };

    let malformed = post("{not json".into()).await.expect("request");
    assert_eq!(malformed.status(), StatusCode::BAD_REQUEST);
    assert_eq!(code_of(&malformed.json().await.expect("json")), "BAD_INPUT");

    let oversized = post(vec![b' '; 2 << 20].into()).await.expect("request");
    assert_eq!(oversized.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(code_of(&oversized.json().await.expect("json")), "LIMIT_EXCEEDED");

    assert_eq!(server.code("admin", "{ me { nme } }", json!({})).await, "BAD_INPUT");
    assert_eq!(
        server
            .code(
                "admin",
                "query($id: UUID!) { contact(id: $id) { id } }",
                json!({ "id": 42 })
            )
            .await,
        "BAD_INPUT"
    );
    // Real nesting is fine; introspection nested past the depth limit is not.
    server
        .ok(
            "admin",
            "{ contacts { edges { node { timeline { edges { node { type } } } } } } }",
            json!({}),
        )
        .await;
    let too_deep = format!(
        "{{ __schema {{ types {{ fields {{ type {{ {} name {} }} }} }} }} }}",
        "ofType { ".repeat(12),
        "} ".repeat(12)
    );
    assert_eq!(server.code("admin", &too_deep, json!({})).await, "LIMIT_EXCEEDED");
    let aliases: String = (0..3_000).map(|i| format!("a{i}: me {{ name }} ")).collect();
    assert_eq!(
        server.code("admin", &format!("{{ {aliases} }}"), json!({})).await,
        "LIMIT_EXCEEDED"
    );
    let huge_owner = "x".repeat(10_000);
    let register = "mutation($owner: String) { registerContact(input: { owner: $owner, primaryChannel: SMS }) { id } }";
    assert_eq!(
        server.code("admin", register, json!({ "owner": huge_owner })).await,
        "BAD_INPUT"
    );
    let bad_zone = "mutation { registerContact(input: { primaryChannel: SMS, timeZone: \"Mars/Base\" }) { id } }";
    assert_eq!(server.code("admin", bad_zone, json!({})).await, "BAD_INPUT");
    let unknown = "query($id: UUID!) { gate(contactId: $id, mode: MASS) { verdict } }";
    assert_eq!(
        server
            .code("admin", unknown, json!({ "id": uuid::Uuid::now_v7() }))
            .await,
        "NOT_FOUND"
    );

    let get_mutation = server
        .client
        .get(server.url("/graphql"))
        .query(&[("query", "mutation { setConsent(input: { contactId: \"00000000-0000-0000-0000-000000000000\", granted: true }) { position } }")])
        .bearer_auth(&server.tokens["admin"])
        .send()
        .await
        .expect("request");
    assert_eq!(get_mutation.status(), StatusCode::METHOD_NOT_ALLOWED);

    let graphql_json = server
        .client
        .post(server.url("/graphql"))
        .bearer_auth(&server.tokens["admin"])
        .header("accept", "application/graphql-response+json")
        .json(&json!({ "query": "{ me { nme } }" }))
        .send()
        .await
        .expect("request");
    assert_eq!(graphql_json.status(), StatusCode::BAD_REQUEST);
    assert!(
        graphql_json.headers()["content-type"]
            .to_str()
            .expect("type")
            .starts_with("application/graphql-response+json")
    );
    assert_eq!(
        server.event_count().await,
        1,
        "only the default policy is in the ledger"
    );
}

#[tokio::test]
async fn health_readiness_metrics_and_get_queries_answer() {
    let server = TestServer::start().await;
    let get = |path: &str| server.client.get(server.url(path)).send();
    assert_eq!(get("/healthz").await.expect("healthz").status(), StatusCode::OK);
    assert_eq!(
        get("/readyz").await.expect("readyz").text().await.expect("text"),
        "ready\n"
    );
    server.ok("admin", "{ me { name } }", json!({})).await;
    let metrics = get("/metrics").await.expect("metrics").text().await.expect("text");
    assert!(
        metrics.contains("rapport_http_requests_total{status=\"2xx\"}"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rapport_gate_verdicts_total{verdict=\"ALLOW\"}"),
        "{metrics}"
    );
    let graphiql = server
        .client
        .get(server.url("/graphql"))
        .header("accept", "text/html")
        .send()
        .await
        .expect("graphiql");
    assert!(graphiql.text().await.expect("html").contains("graphiql"));
    let by_get = server
        .client
        .get(server.url("/graphql"))
        .query(&[("query", "{ me { role } }")])
        .bearer_auth(&server.tokens["auditor"])
        .send()
        .await
        .expect("get");
    assert_eq!(
        by_get.json::<Value>().await.expect("json")["data"]["me"]["role"],
        "AUDITOR"
    );
    assert_eq!(get("/nowhere").await.expect("404").status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn a_replay_shows_the_gate_as_it_stood_before_a_deletion() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Ma Lin", &[]).await;
    let before = server.ok("auditor", "{ ledger { headPosition } }", json!({})).await["ledger"]["headPosition"].clone();
    server
        .ok(
            "manager",
            "mutation($id: UUID!) { recordDeletion(input: { contactId: $id }) { position } }",
            json!({ "id": id }),
        )
        .await;
    let gate = "query($id: UUID!, $p: String) { replay(asOfPosition: $p) { position policyVersion gate(contactId: $id, mode: ONE_TO_ONE) { reasons { code } } } }";
    let then = server.ok("auditor", gate, json!({ "id": id, "p": before })).await;
    let codes = then["replay"]["gate"]["reasons"].to_string();
    assert!(!codes.contains("CONTACT_DELETED_US"), "{codes}");
    let now = server
        .ok(
            "auditor",
            "query($id: UUID!) { gate(contactId: $id, mode: ONE_TO_ONE) { verdict } }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(now["gate"]["verdict"], "DENY");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gate_changed_delivers_the_current_decision_then_each_change() {
    crate::support::hang_guard("the gateChanged subscription", gate_changed_scenario()).await
}

async fn gate_changed_scenario() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Zheng Hui", &[]).await;
    let query = "subscription($id: UUID!) { gateChanged(contactId: $id, mode: ONE_TO_ONE) { reasons { code } } }";
    let mut socket = server.subscribe("alice", query, json!({ "id": id })).await;
    let first = next_payload(&mut socket).await;
    assert!(!first.to_string().contains("BLOCKED"), "{first}");
    server
        .ok(
            "manager",
            "mutation($id: UUID!) { recordBlock(input: { contactId: $id }) { position } }",
            json!({ "id": id }),
        )
        .await;
    let changed = next_payload(&mut socket).await;
    assert!(changed.to_string().contains("BLOCKED"), "{changed}");
}

/// The first error of the next refused operation on the socket.
pub async fn next_error(socket: &mut Socket) -> Value {
    loop {
        let message = socket.next().await.expect("message").expect("message");
        let Ok(text) = message.to_text() else { continue };
        let value: Value = serde_json::from_str(text).expect("json");
        match value["type"].as_str() {
            Some("error") => return value["payload"][0].clone(),
            Some("next") if !value["payload"]["errors"].is_null() => return value["payload"]["errors"][0].clone(),
            Some("next") => panic!("answered, not refused: {value}"),
            _ => continue,
        }
    }
}

/// The data of the next `next` message on the socket.
pub async fn next_payload(socket: &mut Socket) -> Value {
    loop {
        let message = socket.next().await.expect("message").expect("message");
        let Ok(text) = message.to_text() else { continue };
        let value: Value = serde_json::from_str(text).expect("json");
        assert_ne!(value["type"], "error", "{value}");
        if value["type"] == "next" {
            return value["payload"]["data"].clone();
        }
    }
}

#[tokio::test]
async fn an_auditor_replays_by_moment_and_verifies_against_a_saved_digest() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Feng Lan", &[]).await;
    let saved = server.ok("auditor", "{ ledger { digest } }", json!({})).await["ledger"]["digest"].clone();
    let moment = server
        .ok(
            "auditor",
            "query($id: UUID!) { contact(id: $id) { timeline { edges { node { recordedAt } } } } }",
            json!({ "id": id }),
        )
        .await["contact"]["timeline"]["edges"][0]["node"]["recordedAt"]
        .clone();
    // The reply is recorded a second later.
    server.clock.advance_millis(1_000);
    server.ok("manager", REPLY, json!({ "id": id })).await;

    let replay = "query($at: DateTime!, $id: UUID!) { replay(knownAt: $at) { position recordedAt contact(id: $id) { version } } }";
    let then = server.ok("auditor", replay, json!({ "at": moment, "id": id })).await;
    assert_eq!(
        then["replay"]["contact"]["version"], 0,
        "the reply was not known then: {then}"
    );
    assert_eq!(then["replay"]["position"], "2");

    let verify =
        "query($digest: String) { verifyLedger(digest: $digest) { intact eventsChecked finding { problem } } }";
    let report = server.ok("auditor", verify, json!({ "digest": saved })).await;
    assert_eq!(report["verifyLedger"]["intact"], true, "{report}");
    assert_eq!(report["verifyLedger"]["eventsChecked"], 3);
    assert_eq!(
        server
            .code("auditor", verify, json!({ "digest": "sha256:nothex@1" }))
            .await,
        "BAD_INPUT"
    );
    assert_eq!(
        server.code("auditor", "{ replay { position } }", json!({})).await,
        "BAD_INPUT"
    );
}

#[tokio::test]
async fn reasons_and_explanations_come_in_the_asked_language() {
    let server = TestServer::start().await;
    let id = server.register("manager", "alice", "Ma Lin", &[]).await;
    server
        .ok(
            "manager",
            "mutation($id: UUID!) { recordDeletion(input: { contactId: $id }) { position } }",
            json!({ "id": id }),
        )
        .await;
    let asked = "query($id: UUID!) {
        gate(contactId: $id, mode: MASS) { reasons { code zh: message(lang: ZH) en: message(lang: EN) } }
        contact(id: $id) { strength { components { name explanation(lang: ZH) } } } }";
    let data = server.ok("alice", asked, json!({ "id": id })).await;
    let deleted = &data["gate"]["reasons"][0];
    assert_eq!(deleted["code"], "CONTACT_DELETED_US");
    assert_eq!(deleted["zh"], "对方已经把你删了；除非对方重新加你，否则消息发不过去。");
    assert!(
        deleted["en"].as_str().expect("words").starts_with("They deleted you"),
        "{deleted}"
    );
    let components = data["contact"]["strength"]["components"].to_string();
    assert!(components.contains("对方上次回复距今多久"), "{components}");

    // Without the argument the request's Accept-Language decides.
    let plain = json!({ "query": "query($id: UUID!) { gate(contactId: $id, mode: MASS) { reasons { message } } }", "variables": { "id": id } });
    for (header, expected) in [
        ("zh-CN,zh;q=0.9,en;q=0.8", "对方已经把你删了"),
        ("en-GB,en;q=0.9", "They deleted you"),
        ("fr-FR", "They deleted you"),
    ] {
        let body: Value = server
            .client
            .post(server.url("/graphql"))
            .bearer_auth(&server.tokens["alice"])
            .header("Accept-Language", header)
            .json(&plain)
            .send()
            .await
            .expect("request")
            .json()
            .await
            .expect("json");
        let message = body["data"]["gate"]["reasons"][0]["message"]
            .as_str()
            .unwrap_or_default();
        assert!(message.starts_with(expected), "{header}: {body}");
    }

    let bad = "query($id: UUID!) { gate(contactId: $id, mode: MASS) { reasons { message(lang: FR) } } }";
    assert_eq!(server.code("alice", bad, json!({ "id": id })).await, "BAD_INPUT");
}

#[tokio::test]
async fn score_history_shows_the_score_after_each_event_to_whoever_may_see_the_contact() {
    let server = TestServer::start().await;
    let alices = server.register("alice", "alice", "Li Lei", &[]).await;
    server
        .ok("alice", TOUCH, json!({ "id": alices, "mode": "ONE_TO_ONE" }))
        .await;
    server.ok("alice", REPLY, json!({ "id": alices })).await;
    let history = "query($id: UUID!, $last: Int) { contact(id: $id) { version strength { score }
        scoreHistory(last: $last) { eventType sendMode score band violation position } } }";
    let count = server.event_count().await;

    let data = server.ok("alice", history, json!({ "id": alices })).await;
    let points = data["contact"]["scoreHistory"].as_array().expect("points");
    let types: Vec<&str> = points.iter().map(|p| p["eventType"].as_str().expect("type")).collect();
    assert_eq!(types, ["ContactRegistered", "TouchRecorded", "ReplyReceived"]);
    assert_eq!(points[1]["sendMode"], "ONE_TO_ONE");
    assert!(
        points[2]["score"].as_i64() > points[1]["score"].as_i64(),
        "a reply raises the score: {points:?}"
    );
    // The last `last` events, oldest first.
    let last_two = server.ok("alice", history, json!({ "id": alices, "last": 2 })).await;
    let types: Vec<Value> = last_two["contact"]["scoreHistory"]
        .as_array()
        .expect("points")
        .iter()
        .map(|p| p["eventType"].clone())
        .collect();
    assert_eq!(types, [json!("TouchRecorded"), json!("ReplyReceived")]);

    // Who may see the contact sees its history; nobody else learns it exists.
    for who in ["manager", "auditor", "admin"] {
        let data = server.ok(who, history, json!({ "id": alices })).await;
        assert_eq!(
            data["contact"]["scoreHistory"].as_array().map(Vec::len),
            Some(3),
            "{who}"
        );
    }
    assert_eq!(server.code("bob", history, json!({ "id": alices })).await, "NOT_FOUND");
    assert_eq!(
        server.code("ingest", history, json!({ "id": alices })).await,
        "FORBIDDEN"
    );

    // Bad input and the limit, each with its code; nothing is written.
    assert_eq!(
        server.code("alice", history, json!({ "id": alices, "last": 0 })).await,
        "BAD_INPUT"
    );
    assert_eq!(
        server
            .code("alice", history, json!({ "id": alices, "last": 501 }))
            .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(server.event_count().await, count);
}
