//! A person's rights over their data: erasure that destroys their key and
//! keeps their relationship signals, and access requests. The disk scan
//! runs the real binary; the rules run on the in-process server.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use serde_json::{Value, json};

use crate::api::TestServer;

const ERASE: &str = "mutation($id: UUID!, $reason: String!, $request: String!) {
    eraseContact(input: { contactId: $id, reason: $reason, requestId: $request }) {
        contactId eventId requestId erasedBy position ledgerDigest alreadyErased
    }
}";

const CARD: &str = "query($id: UUID!) {
    contact(id: $id) {
        displayName status version
        gate(mode: MASS) { verdict reasons { code } }
        oneToOne: gate(mode: ONE_TO_ONE) { verdict reasons { code } }
        timeline(first: 100) { edges { node { type } } }
    }
}";

const RECORD: &str = "query($id: UUID!) {
    personRecord(contactId: $id) {
        contactId erased
        personalData { displayName phone wechatId email }
        events { type actor personalData { phone } }
    }
}";

async fn register_person(server: &TestServer, name: &str, phone: &str, wechat: &str, email: &str) -> String {
    let data = server
        .ok(
            "admin",
            "mutation($name: String, $phone: String, $wechat: String, $email: String) {
               registerContact(input: { owner: \"alice\", primaryChannel: WECHAT, displayName: $name,
                                        phone: $phone, wechatId: $wechat, email: $email }) { id }
             }",
            json!({ "name": name, "phone": phone, "wechat": wechat, "email": email }),
        )
        .await;
    data["registerContact"]["id"].as_str().expect("id").to_owned()
}

async fn event_count(server: &TestServer) -> i64 {
    server.ok("admin", "{ ledger { eventCount } }", json!({})).await["ledger"]["eventCount"]
        .as_i64()
        .expect("count")
}

fn erase_vars(id: &str, request: &str) -> Value {
    json!({ "id": id, "reason": "PIPL Art. 47: the person asked", "request": request })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_erased_contact_keeps_their_signals_loses_their_identity_and_cannot_be_written_to() {
    let server = TestServer::start().await;
    let id = register_person(
        &server,
        "庄晓宇",
        "+86 139 8765 4321",
        "wx_zhuang_erase",
        "zhuang@example.cn",
    )
    .await;
    let keep = register_person(
        &server,
        "Lin Kept",
        "+86 139 1111 0000",
        "wx_lin_kept",
        "lin@example.cn",
    )
    .await;
    server
        .ok(
            "alice",
            "mutation($id: UUID!) { recordReply(input: { contactId: $id }) { position } }",
            json!({ "id": id }),
        )
        .await;
    let before = server.ok("manager", CARD, json!({ "id": id })).await;
    let events_before = before["contact"]["timeline"]["edges"]
        .as_array()
        .expect("timeline")
        .len();

    let receipt = server.ok("admin", ERASE, erase_vars(&id, "REQ-17")).await["eraseContact"].clone();
    assert_eq!(receipt["contactId"], id.as_str());
    assert_eq!(receipt["requestId"], "REQ-17");
    assert_eq!(receipt["erasedBy"], "root");
    assert_eq!(receipt["alreadyErased"], false);
    let digest = receipt["ledgerDigest"].as_str().expect("digest").to_owned();
    assert!(digest.ends_with(&format!("@{}", receipt["position"].as_str().expect("position"))));

    // Erasing again is the same erasure: the same receipt, nothing written.
    let count = event_count(&server).await;
    let again = server.ok("admin", ERASE, erase_vars(&id, "REQ-18")).await["eraseContact"].clone();
    assert_eq!(again["alreadyErased"], true);
    assert_eq!(again["eventId"], receipt["eventId"]);
    assert_eq!(again["ledgerDigest"], receipt["ledgerDigest"]);
    assert_eq!(again["requestId"], "REQ-17", "the receipt is the first erasure's");
    assert_eq!(event_count(&server).await, count);

    let after = server.ok("manager", CARD, json!({ "id": id })).await["contact"].clone();
    assert_eq!(after["displayName"], "erased");
    assert_eq!(after["status"], "ERASED");
    for gate in [&after["gate"], &after["oneToOne"]] {
        assert_eq!(gate["verdict"], "DENY", "{gate}");
        assert!(gate["reasons"].to_string().contains("CONTACT_ERASED"), "{gate}");
    }
    let timeline: Vec<String> = after["timeline"]["edges"]
        .as_array()
        .expect("timeline")
        .iter()
        .map(|edge| edge["node"]["type"].as_str().expect("type").to_owned())
        .collect();
    assert_eq!(timeline.len(), events_before + 1, "every event stays: {timeline:?}");
    assert_eq!(timeline.last().map(String::as_str), Some("ContactErased"));

    for search in [
        "庄晓宇",
        "+86 139 8765 4321",
        "13987654321",
        "wx_zhuang_erase",
        "zhuang@example.cn",
    ] {
        let found = server
            .ok(
                "manager",
                "query($q: String) { contacts(search: $q) { edges { node { id } } } }",
                json!({ "q": search }),
            )
            .await;
        assert_eq!(
            found["contacts"]["edges"],
            json!([]),
            "'{search}' still finds the erased contact"
        );
    }

    // Nobody reaches them: not a gated send, not a manager's override.
    let code = server
        .code(
            "manager",
            "mutation($id: UUID!) {
               recordTouch(input: { contactId: $id, mode: ONE_TO_ONE, override: { reason: \"urgent\" } }) { position }
             }",
            json!({ "id": id }),
        )
        .await;
    assert_eq!(code, "GATE_DENIED");
    assert_eq!(event_count(&server).await, count, "a refused write writes nothing");

    // The same person registered again is someone new, linked to nothing.
    let again = register_person(
        &server,
        "庄晓宇",
        "+86 139 8765 4321",
        "wx_zhuang_erase",
        "zhuang@example.cn",
    )
    .await;
    assert_ne!(again, id);
    let record = server.ok("auditor", RECORD, json!({ "id": again })).await["personRecord"].clone();
    assert_eq!(record["events"].as_array().expect("events").len(), 1, "{record}");

    // The access request: everything about a person, decrypted; nothing once erased.
    let kept = server.ok("auditor", RECORD, json!({ "id": keep })).await["personRecord"].clone();
    assert_eq!(kept["erased"], false);
    assert_eq!(kept["personalData"]["phone"], "+86 139 1111 0000");
    assert_eq!(kept["personalData"]["wechatId"], "wx_lin_kept");
    assert_eq!(kept["events"][0]["personalData"]["phone"], "+86 139 1111 0000");
    let gone = server.ok("admin", RECORD, json!({ "id": id })).await["personRecord"].clone();
    assert_eq!(gone["erased"], true);
    assert_eq!(gone["personalData"], Value::Null);
    assert!(
        gone["events"]
            .as_array()
            .expect("events")
            .iter()
            .all(|e| e["personalData"].is_null()),
        "{gone}"
    );
    assert_eq!(gone["events"].as_array().expect("events").len(), events_before + 1);

    let verified = server.ok("auditor", "{ verifyLedger { intact } }", json!({})).await;
    assert_eq!(verified["verifyLedger"]["intact"], true, "{verified}");
    let checked = server
        .ok(
            "auditor",
            "query($d: String) { verifyLedger(digest: $d) { intact } }",
            json!({ "d": digest }),
        )
        .await;
    assert_eq!(checked["verifyLedger"]["intact"], true, "the receipt's digest holds");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_admins_erase_only_auditors_and_admins_read_a_person_record_and_bad_input_writes_nothing() {
    let server = TestServer::start().await;
    let id = register_person(&server, "Role Test", "+86 139 2222 3333", "wx_role", "role@example.cn").await;
    let count = event_count(&server).await;
    for who in ["alice", "bob", "manager", "auditor", "ingest"] {
        let code = server.code(who, ERASE, erase_vars(&id, "REQ-1")).await;
        assert_eq!(code, "FORBIDDEN", "{who} may not erase");
    }
    for who in ["alice", "bob", "manager", "ingest"] {
        let code = server.code(who, RECORD, json!({ "id": id })).await;
        assert_eq!(code, "FORBIDDEN", "{who} may not read a person's whole record");
    }
    let unknown = uuid::Uuid::now_v7().to_string();
    assert_eq!(
        server.code("admin", ERASE, erase_vars(&unknown, "REQ-1")).await,
        "NOT_FOUND"
    );
    assert_eq!(
        server.code("auditor", RECORD, json!({ "id": unknown })).await,
        "NOT_FOUND"
    );
    let long_request = "R".repeat(200);
    for (reason, request) in [
        ("", "REQ-1"),
        ("   ", "REQ-1"),
        ("why", ""),
        ("why", long_request.as_str()),
    ] {
        let code = server
            .code(
                "admin",
                ERASE,
                json!({ "id": id, "reason": reason, "request": request }),
            )
            .await;
        assert_eq!(code, "BAD_INPUT", "reason {reason:?}, request {request:?}");
    }
    // The erasure stays in the ledger for good: it may not name the person.
    for (reason, request) in [
        ("Role Test asked by phone", "REQ-2"),
        ("asked", "call back 139-2222-3333"),
        ("mail from ROLE@example.cn", "REQ-3"),
        ("asked", "wx_role"),
    ] {
        let code = server
            .code(
                "admin",
                ERASE,
                json!({ "id": id, "reason": reason, "request": request }),
            )
            .await;
        assert_eq!(code, "BAD_INPUT", "reason {reason:?}, request {request:?}");
    }
    assert_eq!(event_count(&server).await, count, "no refusal wrote anything");
    let card = server.ok("manager", CARD, json!({ "id": id })).await;
    assert_eq!(card["contact"]["displayName"], "Role Test");
}

/// The forms a value could take on disk, in a log or in an export.
fn encodings(value: &str) -> Vec<Vec<u8>> {
    let mut forms = vec![
        value.to_owned(),
        value.to_uppercase(),
        value.to_lowercase(),
        serde_json::to_string(value).expect("json")[1..]
            .trim_end_matches('"')
            .to_owned(),
        value.escape_unicode().to_string(),
        hex::encode(value),
    ];
    let ascii_escaped: String = value
        .chars()
        .map(|c| {
            if c.is_ascii() {
                c.to_string()
            } else {
                format!("\\u{:04x}", c as u32)
            }
        })
        .collect();
    forms.push(ascii_escaped);
    let digits: String = value.chars().filter(char::is_ascii_digit).collect();
    if digits.len() >= 8 {
        forms.push(digits.trim_start_matches("86").to_owned());
        forms.push(digits);
    }
    let mut bytes: Vec<Vec<u8>> = forms.into_iter().map(String::into_bytes).collect();
    bytes.push(value.encode_utf16().flat_map(u16::to_le_bytes).collect());
    bytes
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|window| window == needle)
}

struct Served {
    child: Child,
    address: String,
}

impl Served {
    fn start(ledger: &Path, log: &Path) -> Served {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|listener| listener.local_addr())
            .expect("a free port")
            .port();
        let address = format!("127.0.0.1:{port}");
        let child = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
            .arg("--store")
            .arg(ledger)
            .args(["serve", "--listen", &address])
            .env("RAPPORT_LOG", "debug")
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(log).expect("log file"))
            .spawn()
            .expect("serve");
        Served { child, address }
    }

    async fn ready(&self, client: &reqwest::Client) {
        for _ in 0..600 {
            if let Ok(response) = client.get(format!("http://{}/readyz", self.address)).send().await
                && response.status().is_success()
            {
                return;
            }
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        }
        panic!("the server did not become ready");
    }

    fn stop(mut self) {
        let stopped = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .expect("kill");
        assert!(stopped.success());
        self.child.wait().expect("the server stops");
    }
}

fn rapport(ledger: &Path, args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
        .arg("--store")
        .arg(ledger)
        .args(args)
        .output()
        .expect("run rapport")
}

fn ok(output: std::process::Output) -> String {
    assert!(output.status.success(), "{}", String::from_utf8_lossy(&output.stderr));
    String::from_utf8(output.stdout).expect("utf-8")
}

async fn gql(client: &reqwest::Client, address: &str, token: &str, query: &str, variables: Value) -> Value {
    let body: Value = client
        .post(format!("http://{address}/graphql"))
        .bearer_auth(token)
        .json(&json!({ "query": query, "variables": variables }))
        .send()
        .await
        .expect("request")
        .json()
        .await
        .expect("json");
    assert!(body.get("errors").is_none(), "{body}");
    body["data"].clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn personal_data_never_reaches_the_disk_and_an_erasure_leaves_no_key_that_opens_it() {
    let dir = tempfile::tempdir().expect("dir");
    let ledger = dir.path().join("rapport.db");
    let person = [
        "庄晓宇",
        "+86 139 8765 4321",
        "wx_zhuang_erase",
        "zhuang.xiaoyu@example.cn",
    ];
    let imported = [
        "Gao Imported",
        "+86 137 5555 6666",
        "wx_gao_imported",
        "gao.imported@example.cn",
    ];
    let line = json!({ "kind": "contact", "owner": "alice", "displayName": imported[0], "phone": imported[1],
                       "wechatId": imported[2], "email": imported[3] });
    let file = dir.path().join("crm.jsonl");
    std::fs::write(&file, format!("{line}\n")).expect("write");
    ok(rapport(&ledger, &["import", file.to_str().expect("path")]));
    std::fs::remove_file(&file).expect("the import file is the operator's own");
    let admin = ok(rapport(
        &ledger,
        &["--json", "token", "create", "--role", "admin", "--name", "root"],
    ));
    let admin: Value = serde_json::from_str(&admin).expect("json");
    let admin = admin["token"].as_str().expect("token").to_owned();

    let log = dir.path().join("server.log");
    let server = Served::start(&ledger, &log);
    let client = reqwest::Client::new();
    server.ready(&client).await;
    let registered = gql(
        &client,
        &server.address,
        &admin,
        "mutation($name: String, $phone: String, $wechat: String, $email: String) {
           registerContact(input: { owner: \"alice\", primaryChannel: WECHAT, displayName: $name,
                                    phone: $phone, wechatId: $wechat, email: $email }) { id }
         }",
        json!({ "name": person[0], "phone": person[1], "wechat": person[2], "email": person[3] }),
    )
    .await;
    let id = registered["registerContact"]["id"].as_str().expect("id").to_owned();
    let found = gql(
        &client,
        &server.address,
        &admin,
        "query($q: String) { contacts(search: $q) { edges { node { id } } } }",
        json!({ "q": imported[1] }),
    )
    .await;
    let imported_id = found["contacts"]["edges"][0]["node"]["id"]
        .as_str()
        .expect("the imported contact, found by phone")
        .to_owned();
    let export_before = ok(rapport(&ledger, &["export"]));
    for contact in [&id, &imported_id] {
        gql(&client, &server.address, &admin, ERASE, erase_vars(contact, "REQ-9")).await;
    }
    let export_after = ok(rapport(&ledger, &["export"]));
    server.stop();

    let verified: Value = serde_json::from_str(&ok(rapport(&ledger, &["--json", "verify"]))).expect("json");
    assert_eq!(verified["intact"], true, "{verified}");

    let mut files: Vec<(String, Vec<u8>)> = vec![
        ("the export before".into(), export_before.clone().into_bytes()),
        ("the export after".into(), export_after.into_bytes()),
    ];
    for entry in std::fs::read_dir(dir.path()).expect("dir").flatten() {
        let path: PathBuf = entry.path();
        files.push((path.display().to_string(), std::fs::read(&path).expect("read")));
    }
    let names: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for expected in ["rapport.db", "rapport.db.tokens", "rapport.db.snapshot", "server.log"] {
        assert!(
            names.iter().any(|name| name.ends_with(expected)),
            "{expected} is missing from {names:?}"
        );
    }
    for value in person.iter().chain(imported.iter()) {
        for form in encodings(value) {
            for (name, bytes) in &files {
                assert!(
                    !contains(bytes, &form),
                    "{name} holds {value} as {:?}",
                    String::from_utf8_lossy(&form)
                );
            }
        }
    }

    // The export made before holds their sealed data; nothing the ledger
    // still holds opens it.
    let master = rapport_store::sealing::find_master_key(&ledger)
        .expect("read the key")
        .expect("a master key");
    let connection = rusqlite::Connection::open(&ledger).expect("open");
    let mut keys = connection
        .prepare("SELECT stream, wrapped FROM contact_keys")
        .expect("keys");
    let keys: Vec<rapport_store::sealing::ContactKey> = keys
        .query_map([], |row| Ok((row.get::<_, String>(0)?, row.get::<_, Vec<u8>>(1)?)))
        .expect("rows")
        .map(|row| {
            let (stream, wrapped) = row.expect("row");
            master.unwrap(&stream, &wrapped).expect("every remaining key unwraps")
        })
        .collect();
    let mut sealed_seen = 0;
    for line in export_before.lines() {
        let event: Value = serde_json::from_str(line).expect("json");
        let stream = event["stream"].as_str().expect("stream");
        let Some(sealed) = event["sealedPii"].as_str() else {
            continue;
        };
        if ![&id, &imported_id]
            .iter()
            .any(|contact| stream.ends_with(contact.as_str()))
        {
            continue;
        }
        sealed_seen += 1;
        let sealed = hex::decode(sealed).expect("hex");
        let event_id: uuid::Uuid = event["eventId"].as_str().expect("id").parse().expect("uuid");
        assert!(
            keys.iter().all(|key| key.open(event_id, &sealed).is_none()),
            "a key the ledger still holds opens {stream}'s data"
        );
        let rows: i64 = connection
            .query_row("SELECT count(*) FROM contact_keys WHERE stream = ?1", [stream], |row| {
                row.get(0)
            })
            .expect("count");
        assert_eq!(rows, 0, "{stream}'s key is still there");
    }
    assert_eq!(
        sealed_seen, 2,
        "both erased contacts had sealed data in the export before"
    );
}

#[tokio::test]
async fn the_store_takes_one_erasure_per_contact_and_no_personal_data_after_it() {
    use rapport_domain::{ContactErased, NewEvent, Pii};
    use rapport_store::{EventStore, ExpectedVersion, StoreError};
    let ledger = crate::support::TempLedger::new();
    let store = ledger.store();
    let stream = crate::support::contact_stream(1);
    store
        .append(stream, ExpectedVersion::NoStream, vec![crate::support::registered(1)])
        .await
        .expect("register");
    let erasure = |id: u128| {
        NewEvent::new(
            uuid::Uuid::from_u128(id),
            ContactErased {
                reason: "asked".into(),
                request_id: "REQ-1".into(),
            },
            crate::support::at(1),
            "root",
        )
    };
    let first = store
        .append(stream, ExpectedVersion::Any, vec![erasure(900)])
        .await
        .expect("erased");
    // The same append again is a retry; any other erasure is refused.
    let retried = store
        .append(stream, ExpectedVersion::Any, vec![erasure(900)])
        .await
        .expect("a retry");
    assert_eq!(retried, first);
    let head = store.head().await.expect("head");
    let second = store.append(stream, ExpectedVersion::Any, vec![erasure(901)]).await;
    assert!(matches!(second, Err(StoreError::Erased { .. })), "{second:?}");
    assert_eq!(second.expect_err("refused").code(), "ERASED");
    let profile = NewEvent::new(
        uuid::Uuid::from_u128(902),
        rapport_domain::ContactProfileChanged {
            owner: None,
            primary_channel: None,
            time_zone: None,
        },
        crate::support::at(2),
        "root",
    )
    .with_pii(Pii {
        display_name: Some("Back again".into()),
        ..Pii::default()
    });
    let refused = store.append(stream, ExpectedVersion::Any, vec![profile]).await;
    assert!(matches!(refused, Err(StoreError::Erased { .. })), "{refused:?}");
    assert_eq!(store.head().await.expect("head"), head, "nothing was written");
}
