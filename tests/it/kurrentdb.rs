//! The KurrentDB backend through the official client: the store contract
//! (the conformance suite, run here against the gRPC test double and, when
//! `RAPPORT_KURRENTDB_URL` names one, a real server), and what only a
//! cluster brings: lost answers, dropped subscriptions, faults, several
//! rapport nodes and several ledgers on one cluster.

use std::sync::Arc;

use futures::StreamExt;
use rapport_domain::NewEvent;
use rapport_domain::time::Clock;
use rapport_kurrentdb_double::Double;
use rapport_store::sealing::MasterKey;
use rapport_store::{
    ClusterLocation, EventStore, ExpectedVersion, KurrentDbOptions, KurrentDbStore, LedgerLocation, ManualClock,
    SharedClock, StoreError, SubscriptionMessage, SystemClock, verify,
};
use tempfile::TempDir;

use crate::conformance::Backend;
use crate::support::{contact_stream, hang_guard, read_everything, registered, reply};

/// The variable naming a real server for the suite, e.g.
/// `kurrentdb://127.0.0.1:2113?tls=false`.
pub const SERVER_VARIABLE: &str = "RAPPORT_KURRENTDB_URL";

/// The client waits this long before its first connection unless told
/// otherwise; tests make many stores.
const QUICK_CONNECT: &str = "discoveryInterval=0";

fn block_on<T>(future: impl std::future::Future<Output = T>) -> T {
    tokio::task::block_in_place(|| tokio::runtime::Handle::current().block_on(future))
}

/// A location on `url` under a prefix no other test uses, the node's own
/// files in `dir`.
fn location(url: &str, dir: &TempDir) -> ClusterLocation {
    let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
    let separator = if url.contains('?') { '&' } else { '?' };
    let text = format!(
        "{url}{separator}{QUICK_CONNECT}&prefix={prefix}&local={}",
        dir.path().join("node").display()
    );
    match text.parse::<LedgerLocation>() {
        Ok(LedgerLocation::KurrentDb(cluster)) => cluster,
        other => panic!("{text} is not a cluster location: {other:?}"),
    }
}

async fn open(location: &ClusterLocation, clock: &Arc<ManualClock>) -> KurrentDbStore {
    let options = KurrentDbOptions {
        clock: Arc::clone(clock) as SharedClock,
        ..KurrentDbOptions::default()
    };
    KurrentDbStore::open(location, options)
        .await
        .expect("open the ledger on the cluster")
}

/// A fresh ledger on a fresh test double.
pub struct DoubleLedger {
    pub double: Arc<Double>,
    /// The node's own files (the master key), removed with the fixture.
    pub _files: TempDir,
    pub location: ClusterLocation,
    pub clock: Arc<ManualClock>,
    pub store: Option<KurrentDbStore>,
}

impl DoubleLedger {
    pub async fn start() -> Self {
        let double = Arc::new(Double::start().await);
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = location(&double.url(), &dir);
        let clock = ManualClock::starting_at(SystemClock.now());
        let store = open(&location, &clock).await;
        DoubleLedger {
            double,
            _files: dir,
            location,
            clock,
            store: Some(store),
        }
    }

    /// Another rapport node on the same cluster and ledger: its own
    /// client, its own files, the same master key.
    pub async fn second_node(&self) -> KurrentDbStore {
        let options = KurrentDbOptions {
            clock: Arc::clone(&self.clock) as SharedClock,
            master_key: Some(self.master_key()),
            ..KurrentDbOptions::default()
        };
        KurrentDbStore::open(&self.elsewhere(), options)
            .await
            .expect("a second node opens the ledger")
    }

    /// The same ledger, for a node whose own files are elsewhere.
    pub fn elsewhere(&self) -> ClusterLocation {
        ClusterLocation {
            local: self
                ._files
                .path()
                .join(format!("node-{}", uuid::Uuid::new_v4().simple())),
            ..self.location.clone()
        }
    }

    pub fn master_key(&self) -> MasterKey {
        rapport_store::sealing::find_master_key(&self.location.local)
            .expect("read the master key")
            .expect("the first open made a master key")
    }
}

impl Backend for DoubleLedger {
    type Store = KurrentDbStore;
    const IDS_UNIQUE_ACROSS_STREAMS: bool = false;
    const LARGE_APPEND_EVENTS: usize = 1_000;
    fn create() -> Self {
        block_on(DoubleLedger::start())
    }
    fn store(&self) -> KurrentDbStore {
        self.store.clone().expect("ledger is open")
    }
    fn reopen(&mut self) {
        self.store = None;
        self.store = Some(block_on(open(&self.location, &self.clock)));
    }
    fn let_time_pass(&self, millis: i64) {
        self.clock.advance_millis(millis);
    }
}

/// A fresh ledger (a prefix of its own) on the server `RAPPORT_KURRENTDB_URL`
/// names; the suite is skipped, visibly, when it names none.
pub struct ServerLedger {
    /// The node's own files (the master key), removed with the fixture.
    pub _files: TempDir,
    pub location: ClusterLocation,
    pub clock: Arc<ManualClock>,
    pub store: Option<KurrentDbStore>,
}

impl Backend for ServerLedger {
    type Store = KurrentDbStore;
    const IDS_UNIQUE_ACROSS_STREAMS: bool = false;
    const LARGE_APPEND_EVENTS: usize = 1_000;
    fn available() -> bool {
        if std::env::var_os(SERVER_VARIABLE).is_some() {
            return true;
        }
        eprintln!("skipped: {SERVER_VARIABLE} names no KurrentDB server (the suite ran against the test double)");
        false
    }
    fn create() -> Self {
        let url = std::env::var(SERVER_VARIABLE).expect("checked by available()");
        let dir = tempfile::tempdir().expect("temporary directory");
        let location = location(&url, &dir);
        let clock = ManualClock::starting_at(SystemClock.now());
        let store = block_on(open(&location, &clock));
        ServerLedger {
            _files: dir,
            location,
            clock,
            store: Some(store),
        }
    }
    fn store(&self) -> KurrentDbStore {
        self.store.clone().expect("ledger is open")
    }
    fn reopen(&mut self) {
        self.store = None;
        self.store = Some(block_on(open(&self.location, &self.clock)));
    }
    fn let_time_pass(&self, millis: i64) {
        self.clock.advance_millis(millis);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_retry_after_a_lost_answer_is_answered_with_the_first_write_and_writes_nothing() {
    let ledger = DoubleLedger::start().await;
    let store = ledger.store.clone().expect("open");
    let stream = contact_stream(1);
    let events = vec![reply(1), reply(2)];
    ledger.double.lose_next_append_answer();
    let lost = store.append(stream, ExpectedVersion::NoStream, events.clone()).await;
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    let head = store.head().await.expect("head");
    assert_eq!(head.event_count, 2, "the append landed though its answer was lost");
    // The caller retries exactly what it sent, expectation and all.
    let retry = store
        .append(stream, ExpectedVersion::NoStream, events)
        .await
        .expect("the retry is answered");
    assert_eq!(retry.next_expected_version, 1);
    assert_eq!(Some(retry.position), head.last_position);
    assert_eq!(store.head().await.expect("head"), head, "the retry wrote again");
    // A registration first records the contact's key: losing that answer
    // leaves a key the retry finds and uses.
    let registration = vec![registered(2)];
    ledger.double.lose_next_append_answer();
    let lost = store
        .append(contact_stream(2), ExpectedVersion::NoStream, registration.clone())
        .await;
    assert!(matches!(lost, Err(StoreError::Unavailable(_))), "{lost:?}");
    store
        .append(contact_stream(2), ExpectedVersion::NoStream, registration)
        .await
        .expect("the retry registers");
    let read = store.read_stream(contact_stream(2), 0, 10).await.expect("read");
    assert_eq!(
        read[0].pii.as_ref().and_then(|pii| pii.display_name.as_deref()),
        Some("Customer 2")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_the_cluster_refuses_is_reported_not_retried_and_writes_nothing() {
    let ledger = DoubleLedger::start().await;
    let store = ledger.store.clone().expect("open");
    let before = ledger.double.event_count();
    ledger.double.fail_next_appends(1);
    let refused = store
        .append(contact_stream(2), ExpectedVersion::Any, vec![reply(1)])
        .await;
    match refused {
        Err(error @ StoreError::Unavailable(_)) => assert_eq!(error.code(), "UNAVAILABLE"),
        other => panic!("{other:?}"),
    }
    assert_eq!(ledger.double.event_count(), before, "a refused append wrote something");
    assert_eq!(store.head().await.expect("head").event_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_follower_resumes_after_dropped_subscriptions_without_gap_or_duplicate() {
    hang_guard("the resumed subscription", async {
        const ROUNDS: usize = 5;
        const PER_ROUND: usize = 40;
        let ledger = DoubleLedger::start().await;
        let store = ledger.store.clone().expect("open");
        let mut subscription = store.subscribe_all(None);
        let mut written = Vec::new();
        let mut received = Vec::new();
        for round in 0..ROUNDS {
            for i in 0..PER_ROUND {
                let event = reply(i as i64);
                written.push(event.event_id);
                store
                    .append(contact_stream(10 + round as u128), ExpectedVersion::Any, vec![event])
                    .await
                    .expect("append");
            }
            // Half-way through reading, every connection's subscription drops.
            while received.len() < written.len() - PER_ROUND / 2 {
                if let SubscriptionMessage::Event(event) = subscription.next().await.expect("open").expect("event") {
                    received.push(event.event_id);
                }
            }
            ledger.double.drop_subscriptions();
        }
        while received.len() < written.len() {
            if let SubscriptionMessage::Event(event) = subscription.next().await.expect("open").expect("event") {
                received.push(event.event_id);
            }
        }
        assert_eq!(received, written, "events lost, repeated or out of order");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rapport_nodes_share_one_ledger_and_a_stale_decision_loses() {
    hang_guard("the second node's follower", async {
        let ledger = DoubleLedger::start().await;
        let first = ledger.store.clone().expect("open");
        let second = ledger.second_node().await;
        let stream = contact_stream(3);
        first
            .append(stream, ExpectedVersion::NoStream, vec![registered(3)])
            .await
            .expect("the first node registers");
        // Each node reads the contact at version 0, then both decide.
        let from_first = first.append(stream, ExpectedVersion::Exact(0), vec![reply(1)]);
        let from_second = second.append(stream, ExpectedVersion::Exact(0), vec![reply(2)]);
        let (a, b) = tokio::join!(from_first, from_second);
        let outcomes = [a.is_ok(), b.is_ok()];
        assert_eq!(outcomes.iter().filter(|won| **won).count(), 1, "{a:?} {b:?}");
        let loser = if a.is_ok() { b } else { a };
        assert!(
            matches!(loser, Err(StoreError::WrongExpectedVersion { actual: Some(1), .. })),
            "{loser:?}"
        );
        // The second node sees the first node's writes, personal data opened.
        let mut following = second.subscribe_all(None);
        let mut seen = Vec::new();
        while seen.len() < 2 {
            if let SubscriptionMessage::Event(event) = following.next().await.expect("open").expect("event") {
                seen.push(*event);
            }
        }
        assert_eq!(
            seen[0].pii.as_ref().and_then(|pii| pii.display_name.as_deref()),
            Some("Customer 3")
        );
        first
            .append(contact_stream(4), ExpectedVersion::Any, vec![reply(3)])
            .await
            .expect("a later write on the first node");
        loop {
            if let SubscriptionMessage::Event(event) = following.next().await.expect("open").expect("event") {
                assert_eq!(event.stream, contact_stream(4));
                break;
            }
        }
        assert_eq!(
            first.head().await.expect("head"),
            second.head().await.expect("head"),
            "the nodes disagree on the ledger digest"
        );
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn ledgers_under_different_prefixes_share_a_cluster_without_seeing_each_other() {
    let double = Double::start().await;
    let clock = ManualClock::starting_at(SystemClock.now());
    let (dir_a, dir_b) = (tempfile::tempdir().expect("dir"), tempfile::tempdir().expect("dir"));
    let at = |prefix: &str, dir: &TempDir| -> ClusterLocation {
        let text = format!(
            "{}&{QUICK_CONNECT}&prefix={prefix}&local={}",
            double.url(),
            dir.path().join("node").display()
        );
        match text.parse() {
            Ok(LedgerLocation::KurrentDb(cluster)) => cluster,
            other => panic!("{other:?}"),
        }
    };
    // One prefix starts with the other, or with the other and a stream
    // kind: the filter must still tell them apart.
    let dir_c = tempfile::tempdir().expect("dir");
    let shop = open(&at("shop-", &dir_a), &clock).await;
    let shop_eu = open(&at("shop-eu-", &dir_b), &clock).await;
    let shop_contact = open(&at("shop-contact-", &dir_c), &clock).await;
    shop_contact
        .append(
            contact_stream(5),
            ExpectedVersion::NoStream,
            vec![registered(7), reply(2), reply(3)],
        )
        .await
        .expect("a ledger whose prefix looks like a stream of another");
    shop.append(contact_stream(5), ExpectedVersion::NoStream, vec![registered(5)])
        .await
        .expect("append");
    shop_eu
        .append(
            contact_stream(5),
            ExpectedVersion::NoStream,
            vec![registered(6), reply(1)],
        )
        .await
        .expect("the same stream name under another prefix is another stream");
    assert_eq!(read_everything(&shop).await.len(), 1);
    assert_eq!(read_everything(&shop_eu).await.len(), 2);
    assert_eq!(read_everything(&shop_contact).await.len(), 3);
    assert_eq!(shop.head().await.expect("head").event_count, 1);
    for store in [&shop, &shop_eu, &shop_contact] {
        let report = verify(store, None).await.expect("verify");
        assert!(report.is_intact(), "{:?}", report.finding);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn personal_data_is_sealed_on_the_cluster_and_an_erasure_destroys_its_key() {
    let ledger = DoubleLedger::start().await;
    let store = ledger.store.clone().expect("open");
    let stream = contact_stream(7);
    store
        .append(stream, ExpectedVersion::NoStream, vec![registered(7)])
        .await
        .expect("register");
    // A second node reads the contact (and keeps their key) before the erasure.
    let cached_before_erasure = ledger.second_node().await;
    assert!(
        cached_before_erasure.read_stream(stream, 0, 10).await.expect("read")[0]
            .pii
            .is_some()
    );
    let erased = NewEvent::new(
        uuid::Uuid::new_v4(),
        rapport_domain::ContactErased {
            reason: "the contact asked".into(),
            request_id: "req-7".into(),
        },
        crate::support::at(1),
        "admin",
    );
    // Nothing readable of the person reaches the server.
    let everything = read_everything(&store).await;
    assert_eq!(
        everything[0].pii.as_ref().and_then(|pii| pii.phone.as_deref()),
        Some("+86 138 0000 0007")
    );
    store
        .append(stream, ExpectedVersion::Exact(0), vec![erased.clone()])
        .await
        .expect("erase");
    let after = store.read_stream(stream, 0, 10).await.expect("read");
    assert_eq!(after[0].pii, None, "personal data still opens after the erasure");
    let fresh_node = ledger.second_node().await;
    let elsewhere = fresh_node.read_stream(stream, 0, 10).await.expect("read");
    assert_eq!(elsewhere[0].pii, None, "another node still opens it");
    assert_eq!(
        cached_before_erasure.read_stream(stream, 0, 10).await.expect("read")[0].pii,
        None,
        "a node that held the key before the erasure still opens it"
    );
    let again = store.append(stream, ExpectedVersion::Any, vec![registered(7)]).await;
    assert!(matches!(again, Err(StoreError::Erased { .. })), "{again:?}");
    let second_erasure = store
        .append(
            stream,
            ExpectedVersion::Any,
            vec![NewEvent::new(
                uuid::Uuid::new_v4(),
                rapport_domain::ContactErased {
                    reason: "asked again".into(),
                    request_id: "req-8".into(),
                },
                crate::support::at(2),
                "admin",
            )],
        )
        .await;
    assert!(
        matches!(second_erasure, Err(StoreError::Erased { .. })),
        "{second_erasure:?}"
    );
    let report = verify(&store, None).await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.finding);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_append_over_the_servers_size_is_refused_whole_with_its_code() {
    let ledger = DoubleLedger::start().await;
    let store = ledger.store.clone().expect("open");
    let events: Vec<_> = (0..rapport_store::APPEND_EVENTS_MAX as i64).map(reply).collect();
    let refused = store.append(contact_stream(8), ExpectedVersion::Any, events).await;
    match refused {
        Err(error @ StoreError::AppendTooLarge { .. }) => {
            assert_eq!(error.code(), "APPEND_TOO_LARGE");
            assert!(error.is_caller_error());
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(store.head().await.expect("head").event_count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_node_with_another_master_key_is_refused() {
    let ledger = DoubleLedger::start().await;
    let options = KurrentDbOptions {
        master_key: Some(MasterKey::generate()),
        ..KurrentDbOptions::default()
    };
    let refused = KurrentDbStore::open(&ledger.elsewhere(), options).await;
    assert!(matches!(refused, Err(StoreError::MasterKey(_))), "{refused:?}");
    // A second writing process on the same node's files is refused too.
    let same_files = KurrentDbStore::open(&ledger.location, KurrentDbOptions::default()).await;
    assert!(matches!(same_files, Err(StoreError::Unavailable(_))), "{same_files:?}");
    // And a mistyped prefix is no ledger at all, not an empty one.
    let mistyped = ClusterLocation {
        prefix: "nothing-here-".into(),
        ..ledger.elsewhere()
    };
    let read_only = KurrentDbOptions {
        read_only: true,
        ..KurrentDbOptions::default()
    };
    let opened = KurrentDbStore::open(&mistyped, read_only).await;
    assert!(matches!(opened, Err(StoreError::NotALedger { .. })), "{opened:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_password_never_shows_in_what_rapport_says_about_a_bad_connection_string() {
    for text in [
        "kurrentdb://admin:pa#ss@h:2113?tls=false",
        "kurrentdb://admin:pa/ss@h:notaport?tls=false",
        "kurrentdb://admin:pa?ss@h:2113?tls=maybe",
    ] {
        let shown = match text.parse::<LedgerLocation>() {
            Ok(LedgerLocation::KurrentDb(cluster)) => {
                let opened = KurrentDbStore::open(&cluster, KurrentDbOptions::default()).await;
                format!(
                    "{cluster:?} {}",
                    opened.map(|_| String::new()).unwrap_or_else(|error| error.to_string())
                )
            }
            Ok(other) => format!("{other}"),
            Err(error) => error.to_string(),
        };
        assert!(
            !shown.contains("pa#ss") && !shown.contains("pa/ss") && !shown.contains("pa?ss"),
            "{shown}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn an_unreachable_cluster_is_unavailable_with_its_cause() {
    let dir = tempfile::tempdir().expect("dir");
    // A port nothing listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port();
    let location = location(
        &format!("kurrentdb://127.0.0.1:{port}?tls=false&maxDiscoverAttempts=2"),
        &dir,
    );
    let clock = ManualClock::starting_at(SystemClock.now());
    let options = KurrentDbOptions {
        clock: clock as SharedClock,
        ..KurrentDbOptions::default()
    };
    match KurrentDbStore::open(&location, options).await {
        Err(error @ StoreError::Unavailable(_)) => assert!(error.to_string().contains("KurrentDB"), "{error}"),
        other => panic!("{other:?}"),
    }
}

/// Posts a GraphQL query to a server as the bearer of `token`.
async fn graphql(
    client: &reqwest::Client,
    server: &rapport_api::server::Server,
    token: &str,
    query: &str,
    variables: serde_json::Value,
) -> serde_json::Value {
    client
        .post(format!("http://{}/graphql", server.address))
        .bearer_auth(token)
        .json(&serde_json::json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("a JSON body")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_rapport_servers_on_one_cluster_serve_the_same_ledger_and_judge_on_fresh_state() {
    use rapport_api::server::{Server, open_state_on};
    hang_guard("the second server", async {
        const DAY: i64 = 86_400_000;
        const SHANGHAI_11_AM_UTC: i64 = 3 * 3_600_000;
        let today = SystemClock.now().as_millis().div_euclid(DAY) * DAY;
        let clock = ManualClock::starting_at(rapport_domain::Timestamp::from_millis_unchecked(
            today + SHANGHAI_11_AM_UTC,
        ));
        let double = Double::start().await;
        let dir = tempfile::tempdir().expect("dir");
        let prefix = format!("t{}-", &uuid::Uuid::new_v4().simple().to_string()[..12]);
        let node = |name: &str| -> LedgerLocation {
            format!(
                "{}&{QUICK_CONNECT}&prefix={prefix}&local={}",
                double.url(),
                dir.path().join(name).display()
            )
            .parse()
            .expect("a cluster location")
        };
        let state_a = open_state_on(node("a"), Arc::clone(&clock) as SharedClock)
            .await
            .expect("the first node opens");
        let token = state_a
            .tokens
            .create(rapport_app::tokens::Role::Manager, "mia", "2026-01-01T00:00:00Z")
            .expect("token");
        let admin = state_a
            .tokens
            .create(rapport_app::tokens::Role::Admin, "root", "2026-01-01T00:00:00Z")
            .expect("token");
        // The operator gives the second node the same master key and tokens.
        for file in ["key", "tokens"] {
            std::fs::copy(dir.path().join(format!("a.{file}")), dir.path().join(format!("b.{file}")))
                .expect("copy the node's file");
        }
        let state_b = open_state_on(node("b"), Arc::clone(&clock) as SharedClock)
            .await
            .expect("the second node opens");
        let listen = "127.0.0.1:0".parse().expect("address");
        let a = Server::start_with(state_a, listen).await.expect("start a");
        let b = Server::start_with(state_b, listen).await.expect("start b");
        let client = reqwest::Client::new();
        let registered = graphql(
            &client,
            &a,
            &token,
            "mutation { registerContact(input: { owner: \"alice\", primaryChannel: WECHAT, displayName: \"Gao Yan\" }) { id } }",
            serde_json::json!({}),
        )
        .await;
        let id = registered["data"]["registerContact"]["id"]
            .as_str()
            .unwrap_or_else(|| panic!("{registered}"))
            .to_owned();
        let contact = "query($id: UUID!) { contact(id: $id) { displayName version gate(mode: ONE_TO_ONE) { verdict } } }";
        let seen_on_b = loop {
            let body = graphql(&client, &b, &token, contact, serde_json::json!({ "id": id })).await;
            if !body["data"]["contact"].is_null() {
                break body;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        };
        assert_eq!(seen_on_b["data"]["contact"]["displayName"], "Gao Yan", "{seen_on_b}");
        // A personal chat sent through each node at once: the node that
        // judged on a stale contact judges again, and neither is refused.
        let touch = "mutation($id: UUID!) { recordTouch(input: { contactId: $id, mode: ONE_TO_ONE }) { contactVersion } }";
        let variables = serde_json::json!({ "id": id });
        let (on_a, on_b) = tokio::join!(
            graphql(&client, &a, &token, touch, variables.clone()),
            graphql(&client, &b, &token, touch, variables.clone())
        );
        let mut versions = [&on_a, &on_b].map(|body| {
            body["data"]["recordTouch"]["contactVersion"]
                .as_i64()
                .unwrap_or_else(|| panic!("a touch was refused: {body}"))
        });
        versions.sort_unstable();
        assert_eq!(versions, [1, 2], "{on_a} {on_b}");
        for server in [&a, &b] {
            let body = loop {
                let body = graphql(&client, server, &token, contact, variables.clone()).await;
                if body["data"]["contact"]["version"] == 2 {
                    break body;
                }
                tokio::time::sleep(std::time::Duration::from_millis(20)).await;
            };
            assert!(body["data"]["contact"]["gate"]["verdict"].is_string(), "{body}");
            let ready = client
                .get(format!("http://{}/readyz", server.address))
                .send()
                .await
                .expect("readyz");
            assert_eq!(ready.status(), reqwest::StatusCode::OK);
        }
        // An erasure through one node answers with its receipt, digest and
        // all; the other node answers the same erasure with the same receipt.
        let erase = "mutation($id: UUID!, $request: String!) {
            eraseContact(input: { contactId: $id, reason: \"the person asked\", requestId: $request }) {
                eventId ledgerDigest alreadyErased
            }
        }";
        let first = graphql(&client, &b, &admin, erase, serde_json::json!({ "id": id, "request": "REQ-1" })).await;
        let receipt = &first["data"]["eraseContact"];
        assert_eq!(receipt["alreadyErased"], false, "{first}");
        assert!(
            receipt["ledgerDigest"].as_str().is_some_and(|digest| digest.starts_with("sha256:")),
            "{first}"
        );
        let again = graphql(&client, &a, &admin, erase, serde_json::json!({ "id": id, "request": "REQ-2" })).await;
        assert_eq!(again["data"]["eraseContact"]["alreadyErased"], true, "{again}");
        assert_eq!(again["data"]["eraseContact"]["eventId"], receipt["eventId"], "{again}");
        assert_eq!(again["data"]["eraseContact"]["ledgerDigest"], receipt["ledgerDigest"], "{again}");
        a.stop().await.expect("stop a");
        b.stop().await.expect("stop b");
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn digest_checkpoints_leave_the_digest_what_a_walk_from_the_start_finds() {
    const APPENDS: usize = 11;
    const EVENTS_PER_APPEND: usize = 1_000;
    let mut ledger = DoubleLedger::start().await;
    let store = ledger.store.clone().expect("open");
    let mut positions = Vec::new();
    for round in 0..APPENDS {
        let events: Vec<_> = (0..EVENTS_PER_APPEND as i64).map(reply).collect();
        let written = store
            .append(contact_stream(400 + round as u128), ExpectedVersion::NoStream, events)
            .await
            .expect("append");
        positions.push(written.position);
    }
    // Past 10,000 events, `head` records a checkpoint.
    let head = store.head().await.expect("head");
    assert_eq!(head.event_count, (APPENDS * EVENTS_PER_APPEND) as u64);
    let walked = verify(&store, Some(head.digest)).await.expect("verify");
    assert!(walked.is_intact(), "{:?}", walked.finding);
    assert_eq!(walked.digest, head.digest);
    // A node started afresh begins from the checkpoint and agrees.
    drop(store);
    ledger.reopen();
    let reopened = ledger.store.clone().expect("open");
    assert_eq!(reopened.head().await.expect("head"), head);
    // Digests at positions before and after the checkpoint are the walk's.
    for position in [positions[0], positions[9], positions[10]] {
        let at = reopened.digest_at(position).await.expect("digest").expect("a digest");
        assert_eq!(at, walked_digest_at(&reopened, position).await);
    }
}

/// The ledger digest at `position`, folded from the first event.
async fn walked_digest_at(store: &KurrentDbStore, position: rapport_domain::Position) -> rapport_domain::LedgerDigest {
    let mut verifier = rapport_store::Verifier::new(None);
    let mut after = None;
    'pages: loop {
        let page = store
            .read_all_raw(after, rapport_store::READ_LIMIT_MAX)
            .await
            .expect("read");
        let Some(last) = page.last().map(|event| event.position) else {
            break;
        };
        for event in &page {
            if event.position > position {
                break 'pages;
            }
            verifier.check(event).expect("intact");
        }
        after = Some(last);
    }
    verifier.report(None).digest
}
