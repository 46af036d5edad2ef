//! Campaigns end to end over GraphQL: the preflight of an audience in which
//! some contacts are VIPs, some opted out, some deleted us, some were just
//! mass-messaged and some are asleep in their time zone. Its counts match
//! the gate contact by contact; each role sees its part; bad audiences
//! are refused with where they went wrong.

use serde_json::{Value, json};

use crate::api::TestServer;

const PREFLIGHT: &str =
    "query($audience: AudienceInput!, $mode: SendMode!, $verdict: Verdict!, $first: Int, $after: String) {
    preflight(audience: $audience, mode: $mode) {
        total unknownContacts policyVersion position
        verdicts { verdict count }
        reasons { code count }
        contacts(verdict: $verdict, first: $first, after: $after) {
            pageInfo { hasNextPage endCursor }
            edges { node { contactId verdict nextAllowedAt reasonCodes } }
        }
    }
}";

const GATE: &str = "query($id: UUID!) { gate(contactId: $id, mode: MASS) { verdict reasons { code blocking } } }";

/// A contact registered 60 days ago, in `zone`.
async fn contact(server: &TestServer, owner: &str, name: &str, tags: &[&str], zone: &str) -> String {
    let register = "mutation($owner: String, $name: String, $tags: [String!], $zone: String, $at: DateTime) {
        registerContact(input: { owner: $owner, primaryChannel: WECHAT, displayName: $name, tags: $tags, timeZone: $zone, occurredAt: $at }) { id }
    }";
    let variables = json!({ "owner": owner, "name": name, "tags": tags, "zone": zone, "at": server.at(-60 * 86_400) });
    server.ok("manager", register, variables).await["registerContact"]["id"]
        .as_str()
        .expect("id")
        .to_owned()
}

/// Facts other tools saw, `days_ago` days before now (`MASS`: a mass send).
async fn saw(server: &TestServer, id: &str, facts: &[(&str, i64)]) {
    let events: Vec<Value> = facts
        .iter()
        .map(|(kind, days_ago)| {
            let (kind, mode) = match *kind {
                "MASS" => ("TOUCH", Some("MASS")),
                "TOUCH" => ("TOUCH", Some("ONE_TO_ONE")),
                other => (other, None),
            };
            let mut event = json!({
                "eventId": uuid::Uuid::new_v4(), "contactId": id, "type": kind,
                "occurredAt": server.at(-days_ago * 86_400),
            });
            if let Some(mode) = mode {
                event["mode"] = json!(mode);
                event["sender"] = json!("alice");
            }
            event
        })
        .collect();
    let ingest = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended } }";
    server.ok("ingest", ingest, json!({ "events": events })).await;
}

/// The segment of the story: the owners' `promo` contacts.
struct Story {
    engaged: String,
    vip: String,
    opted_out: String,
    deleted_us: String,
    asleep: String,
    just_messaged: String,
    bobs: String,
}

async fn story(server: &TestServer) -> Story {
    let conversation = [
        ("TOUCH", 40),
        ("REPLY", 40),
        ("TOUCH", 30),
        ("REPLY", 30),
        ("TOUCH", 20),
        ("REPLY", 20),
        ("TOUCH", 10),
        ("REPLY", 10),
    ];
    let engaged = contact(server, "alice", "Wang Fang", &["promo"], "Asia/Shanghai").await;
    saw(server, &engaged, &conversation).await;
    let vip = contact(server, "alice", "Qian Wei", &["promo", "vip"], "Asia/Shanghai").await;
    saw(server, &vip, &conversation).await;
    let opted_out = contact(server, "alice", "Zhao Min", &["promo"], "Asia/Shanghai").await;
    saw(server, &opted_out, &conversation).await;
    saw(server, &opted_out, &[("CONSENT_WITHDRAWN", 2)]).await;
    let deleted_us = contact(server, "alice", "Sun Li", &["promo"], "Asia/Shanghai").await;
    saw(server, &deleted_us, &conversation).await;
    saw(server, &deleted_us, &[("DELETION", 1)]).await;
    // 11:00 in Shanghai is 03:00 in London.
    let asleep = contact(server, "alice", "Olivia Hart", &["promo"], "Europe/London").await;
    saw(server, &asleep, &conversation).await;
    let just_messaged = contact(server, "alice", "Zhou Jie", &["promo"], "Asia/Shanghai").await;
    saw(server, &just_messaged, &conversation).await;
    saw(server, &just_messaged, &[("MASS", 3)]).await;
    let bobs = contact(server, "bob", "Li Lei", &["promo"], "Asia/Shanghai").await;
    saw(server, &bobs, &conversation).await;
    Story {
        engaged,
        vip,
        opted_out,
        deleted_us,
        asleep,
        just_messaged,
        bobs,
    }
}

fn counts(preflight: &Value) -> Vec<(String, i64)> {
    preflight["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|count| {
            (
                count["verdict"].as_str().expect("verdict").to_owned(),
                count["count"].as_i64().expect("count"),
            )
        })
        .collect()
}

async fn preflight(server: &TestServer, who: &str, audience: Value, verdict: &str) -> Value {
    let variables = json!({ "audience": audience, "mode": "MASS", "verdict": verdict, "first": 100 });
    server.ok(who, PREFLIGHT, variables).await["preflight"].clone()
}

#[tokio::test]
async fn a_preflight_answers_for_every_contact_exactly_as_the_gate_does() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let before = server.event_count().await;
    let audience = json!({ "tags": "promo" });
    let whole = preflight(&server, "manager", audience.clone(), "ALLOW").await;
    assert_eq!(whole["total"], 7, "{whole}");
    assert_eq!(whole["unknownContacts"], 0);
    // Contact by contact, the buckets hold what the gate answers.
    let mut listed = 0;
    for verdict in ["ALLOW", "ROUTE_ONE_TO_ONE", "DEFER", "DENY"] {
        let bucket = preflight(&server, "manager", audience.clone(), verdict).await;
        let edges = bucket["contacts"]["edges"].as_array().expect("edges");
        let counted = counts(&bucket).into_iter().find(|(v, _)| v == verdict).map(|(_, n)| n);
        assert_eq!(counted, Some(edges.len() as i64), "{verdict}: the count is the bucket");
        for edge in edges {
            let node = &edge["node"];
            let id = node["contactId"].as_str().expect("id");
            let gate = server.ok("manager", GATE, json!({ "id": id })).await["gate"].clone();
            assert_eq!(gate["verdict"], verdict, "contact {id}: {gate}");
            let blocking: Vec<&Value> = gate["reasons"]
                .as_array()
                .expect("reasons")
                .iter()
                .filter(|reason| reason["blocking"] == true)
                .map(|reason| &reason["code"])
                .collect();
            let codes: Vec<&Value> = node["reasonCodes"].as_array().expect("codes").iter().collect();
            let mut blocking_sorted: Vec<String> = blocking.iter().map(|c| c.to_string()).collect();
            let mut codes_sorted: Vec<String> = codes.iter().map(|c| c.to_string()).collect();
            blocking_sorted.sort();
            codes_sorted.sort();
            assert_eq!(codes_sorted, blocking_sorted, "contact {id}");
            listed += 1;
        }
    }
    assert_eq!(listed, 7, "every contact is in exactly one bucket");
    let verdict_of = |id: &str, bucket: &Value| {
        bucket["contacts"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .any(|edge| edge["node"]["contactId"] == id)
    };
    let deny = preflight(&server, "manager", audience.clone(), "DENY").await;
    assert!(
        verdict_of(&story.deleted_us, &deny) && verdict_of(&story.opted_out, &deny),
        "{deny}"
    );
    let defer = preflight(&server, "manager", audience.clone(), "DEFER").await;
    assert!(verdict_of(&story.asleep, &defer), "asleep in London: {defer}");
    assert!(
        verdict_of(&story.just_messaged, &defer),
        "mass-messaged 3 days ago: {defer}"
    );
    let asleep = defer["contacts"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .find(|edge| edge["node"]["contactId"] == story.asleep.as_str())
        .expect("listed");
    assert!(
        asleep["node"]["nextAllowedAt"].is_string(),
        "when she may be written to: {asleep}"
    );
    let routed = preflight(&server, "manager", audience.clone(), "ROUTE_ONE_TO_ONE").await;
    assert!(verdict_of(&story.vip, &routed), "a VIP gets a personal chat: {routed}");
    let allowed = preflight(&server, "manager", audience, "ALLOW").await;
    assert!(
        verdict_of(&story.engaged, &allowed) && verdict_of(&story.bobs, &allowed),
        "{allowed}"
    );
    let reasons = allowed["reasons"].to_string();
    for code in [
        "CONTACT_DELETED_US",
        "OPTED_OUT",
        "QUIET_HOURS",
        "HIGH_VALUE_CONTACT",
        "FREQUENCY_CAP",
    ] {
        assert!(reasons.contains(code), "{code} is counted: {reasons}");
    }
    assert_eq!(server.event_count().await, before, "a preflight writes nothing");
}

#[tokio::test]
async fn audiences_combine_tags_owners_bands_and_lists() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let total = |preflight: &Value| preflight["total"].as_i64().expect("total");
    let vips = preflight(&server, "manager", json!({ "tags": "promo AND vip" }), "ALLOW").await;
    assert_eq!(total(&vips), 1);
    let not_vips = preflight(&server, "manager", json!({ "tags": "promo AND NOT vip" }), "ALLOW").await;
    assert_eq!(total(&not_vips), 6);
    let bobs = preflight(&server, "manager", json!({ "owners": ["bob"] }), "ALLOW").await;
    assert_eq!(total(&bobs), 1);
    let listed = json!({ "contactIds": [story.engaged, story.vip, uuid::Uuid::new_v4()] });
    let by_list = preflight(&server, "manager", listed, "ALLOW").await;
    assert_eq!((total(&by_list), by_list["unknownContacts"].as_i64()), (2, Some(1)));
    let lost = preflight(&server, "manager", json!({ "bands": ["LOST"] }), "ALLOW").await;
    let all = preflight(&server, "manager", json!({}), "ALLOW").await;
    assert!(total(&lost) < total(&all), "a band filter narrows: {lost}");
    let page = server
        .ok(
            "manager",
            PREFLIGHT,
            json!({ "audience": { "tags": "promo" }, "mode": "MASS", "verdict": "DENY", "first": 1 }),
        )
        .await["preflight"]["contacts"]
        .clone();
    assert_eq!(page["pageInfo"]["hasNextPage"], true, "{page}");
    let next = server
        .ok(
            "manager",
            PREFLIGHT,
            json!({ "audience": { "tags": "promo" }, "mode": "MASS", "verdict": "DENY", "first": 1, "after": page["pageInfo"]["endCursor"] }),
        )
        .await["preflight"]["contacts"]
        .clone();
    assert_eq!(next["pageInfo"]["hasNextPage"], false, "{next}");
    assert_ne!(next["edges"][0], page["edges"][0]);
}

#[tokio::test]
async fn each_role_preflights_its_part_and_bad_audiences_say_where() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let before = server.event_count().await;
    // Sales staff see their own contacts' part; bob's is unknown to alice.
    let alices = preflight(&server, "alice", json!({ "tags": "promo" }), "ALLOW").await;
    assert_eq!(alices["total"], 6, "{alices}");
    let everyone = preflight(&server, "alice", json!({}), "ALLOW").await;
    assert_eq!(
        everyone["unknownContacts"], 0,
        "others' contacts are left out, not counted: {everyone}"
    );
    let listed = json!({ "contactIds": [story.bobs, story.engaged] });
    let with_bobs = preflight(&server, "alice", listed, "ALLOW").await;
    assert_eq!(
        (with_bobs["total"].as_i64(), with_bobs["unknownContacts"].as_i64()),
        (Some(1), Some(1))
    );
    let audited = preflight(&server, "auditor", json!({ "tags": "promo" }), "ALLOW").await;
    assert_eq!(audited["total"], 7);
    let variables = |audience: Value| json!({ "audience": audience, "mode": "MASS", "verdict": "ALLOW" });
    assert_eq!(
        server.code("ingest", PREFLIGHT, variables(json!({}))).await,
        "FORBIDDEN"
    );

    let (_, body) = server
        .gql("manager", PREFLIGHT, variables(json!({ "tags": "promo AND" })))
        .await;
    let error = &body["errors"][0];
    assert_eq!(error["extensions"]["code"], "BAD_INPUT", "{body}");
    assert_eq!(error["extensions"]["position"], 10, "{body}");
    assert!(error["message"].as_str().expect("message").contains("character 10"));
    let past = "query($at: DateTime) { preflight(audience: {}, mode: MASS, at: $at) { total } }";
    assert_eq!(
        server.code("manager", past, json!({ "at": server.at(-86_400) })).await,
        "BAD_INPUT",
        "the live read model does not know the past"
    );
    let too_deep = format!("{}promo{}", "(".repeat(40), ")".repeat(40));
    assert_eq!(
        server
            .code("manager", PREFLIGHT, variables(json!({ "tags": too_deep })))
            .await,
        "BAD_INPUT"
    );
    assert_eq!(server.event_count().await, before, "nothing was written");
}

const LAUNCH: &str = "mutation($input: LaunchCampaignInput!) {
    launchCampaign(input: $input) {
        campaignId resumed position sent heldOut deferred denied changed withdrawn
        oneToOne { owner contactIds }
        deliveries(first: 100) { edges { node { contactId channel plannedAt } } }
    }
}";

/// A manager's launch, expected to succeed: what it answered.
async fn launch(server: &TestServer, input: Value) -> Value {
    server.ok("manager", LAUNCH, input).await["launchCampaign"].clone()
}

fn launch_input(name: &str, tags: &str, holdout: i32, key: &str) -> Value {
    json!({ "input": {
        "name": name, "audience": { "tags": tags }, "mode": "MASS", "channel": "WECHAT",
        "holdoutPercent": holdout, "idempotencyKey": key,
    } })
}

#[tokio::test]
async fn a_launch_touches_only_the_allowed_and_a_relaunch_adds_nothing() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let before = server.event_count().await;
    let key = uuid::Uuid::new_v4().to_string();
    let first = launch(&server, launch_input("Double 11", "promo", 0, &key)).await;
    assert_eq!(first["resumed"], false);
    assert_eq!(
        (first["sent"].as_i64(), first["heldOut"].as_i64()),
        (Some(2), Some(0)),
        "{first}"
    );
    assert_eq!(
        (first["deferred"].as_i64(), first["denied"].as_i64()),
        (Some(2), Some(2)),
        "{first}"
    );
    assert_eq!(
        first["oneToOne"],
        json!([{ "owner": "alice", "contactIds": [story.vip] }])
    );
    let delivered: Vec<&str> = first["deliveries"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| edge["node"]["contactId"].as_str().expect("id"))
        .collect();
    let mut expected = [story.engaged.as_str(), story.bobs.as_str()];
    expected.sort_unstable();
    assert_eq!(delivered, expected, "deliveries in contact id order");
    assert_eq!(
        server.event_count().await,
        before + 1 + 2,
        "the campaign, then a touch for each allowed contact"
    );
    // The touch carries the decision it went out under and the campaign.
    let timeline =
        "query($id: UUID!) { contact(id: $id) { timeline(first: 100) { edges { node { type payload } } } } }";
    let events = server.ok("manager", timeline, json!({ "id": story.engaged })).await;
    let touch = events["contact"]["timeline"]["edges"]
        .as_array()
        .expect("edges")
        .iter()
        .map(|edge| &edge["node"])
        .rfind(|node| node["type"] == "TouchRecorded")
        .expect("a touch")
        .clone();
    assert_eq!(touch["payload"]["campaignId"], first["campaignId"], "{touch}");
    assert_eq!(touch["payload"]["authorization"]["gate"]["verdict"], "ALLOW", "{touch}");

    let again = launch(&server, launch_input("Double 11", "promo", 0, &key)).await;
    assert_eq!(again["resumed"], true);
    assert_eq!(again["campaignId"], first["campaignId"]);
    assert_eq!(
        again["sent"], 2,
        "the touches of the first launch, not new ones: {again}"
    );
    assert_eq!(server.event_count().await, before + 3, "a relaunch adds nothing");
    let other = launch_input("Another campaign", "promo", 0, &key);
    assert_eq!(server.code("manager", LAUNCH, other).await, "CONFLICT");
    assert_eq!(server.event_count().await, before + 3);

    // Wang Fang deletes us before a relaunch: not to be delivered to any more.
    server.clock.advance_millis(3_600_000);
    saw(&server, &story.engaged, &[("DELETION", 0)]).await;
    let resumed = launch(&server, launch_input("Double 11", "promo", 0, &key)).await;
    assert_eq!(
        (resumed["sent"].as_i64(), resumed["withdrawn"].as_i64()),
        (Some(1), Some(1)),
        "{resumed}"
    );
}

#[tokio::test]
async fn a_relaunch_reads_the_audience_in_any_order_and_touches_join_campaigns_only_as_launched() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let key = uuid::Uuid::new_v4().to_string();
    let input = |owners: [&str; 2]| {
        json!({ "input": {
            "name": "By owner", "audience": { "owners": owners }, "mode": "MASS", "channel": "WECHAT",
            "idempotencyKey": key,
        } })
    };
    let first = server.ok("manager", LAUNCH, input(["alice", "bob"])).await["launchCampaign"].clone();
    let again = server.ok("manager", LAUNCH, input(["bob", "alice"])).await["launchCampaign"].clone();
    assert_eq!(again["resumed"], true, "the same audience, in another order: {again}");
    assert_eq!(again["sent"], first["sent"]);

    let touch = "mutation($id: UUID!, $campaign: UUID) { recordTouch(input: { contactId: $id, mode: ONE_TO_ONE, campaignId: $campaign }) { position } }";
    let into_campaign = json!({ "id": story.engaged, "campaign": first["campaignId"] });
    assert_eq!(server.code("alice", touch, into_campaign).await, "FORBIDDEN");
    let unknown = json!({ "id": story.engaged, "campaign": uuid::Uuid::new_v4() });
    assert_eq!(server.code("manager", touch, unknown).await, "NOT_FOUND");
}

#[tokio::test]
async fn a_holdout_is_withheld_deterministically_and_stays_sendable() {
    let server = TestServer::start().await;
    let conversation = [
        ("TOUCH", 30),
        ("REPLY", 30),
        ("TOUCH", 20),
        ("REPLY", 20),
        ("TOUCH", 10),
        ("REPLY", 10),
    ];
    for n in 0..24 {
        let id = contact(&server, "alice", &format!("Customer {n}"), &["autumn"], "Asia/Shanghai").await;
        saw(&server, &id, &conversation).await;
    }
    let allowed_before = preflight(&server, "manager", json!({ "tags": "autumn" }), "ALLOW").await;
    assert_eq!(counts(&allowed_before)[0], ("ALLOW".to_owned(), 24), "{allowed_before}");
    let key = uuid::Uuid::new_v4().to_string();
    let launched = launch(&server, launch_input("Autumn", "autumn", 50, &key)).await;
    let (sent, held) = (
        launched["sent"].as_i64().expect("sent"),
        launched["heldOut"].as_i64().expect("held"),
    );
    assert_eq!(sent + held, 24, "{launched}");
    assert!(sent > 0 && held > 0, "both groups are kept: {launched}");
    // The held-out were not touched: the gate still allows them, and only them.
    let after = preflight(&server, "manager", json!({ "tags": "autumn" }), "ALLOW").await;
    assert_eq!(counts(&after)[0], ("ALLOW".to_owned(), held), "{after}");
    let again = launch(&server, launch_input("Autumn", "autumn", 50, &key)).await;
    assert_eq!(
        (again["sent"].as_i64(), again["heldOut"].as_i64()),
        (Some(sent), Some(held)),
        "the same split"
    );
    // The campaign keeps what the gate made of its audience at launch,
    // for those who read whole campaigns; a salesperson sees only their part.
    let judged = "query($id: UUID!) { campaign(id: $id) {
        atLaunch { sent heldOut routedOneToOne deferred denied }
    } }";
    let id = json!({ "id": launched["campaignId"] });
    let at_launch = server.ok("manager", judged, id.clone()).await["campaign"]["atLaunch"].clone();
    assert_eq!(
        at_launch,
        json!({ "sent": sent, "heldOut": held, "routedOneToOne": 0, "deferred": 0, "denied": 0 })
    );
    assert_eq!(
        server.ok("auditor", judged, id.clone()).await["campaign"]["atLaunch"],
        at_launch
    );
    assert_eq!(
        server.ok("alice", judged, id).await["campaign"]["atLaunch"],
        Value::Null
    );
}

#[tokio::test]
async fn only_managers_and_admins_launch_and_bad_launches_write_nothing() {
    let server = TestServer::start().await;
    story(&server).await;
    let before = server.event_count().await;
    let key = || uuid::Uuid::new_v4().to_string();
    for who in ["alice", "auditor", "ingest"] {
        assert_eq!(
            server.code(who, LAUNCH, launch_input("Mine", "promo", 0, &key())).await,
            "FORBIDDEN",
            "{who}"
        );
    }
    assert_eq!(
        server
            .code(
                "manager",
                LAUNCH,
                launch_input("Too many withheld", "promo", 80, &key())
            )
            .await,
        "BAD_INPUT"
    );
    assert_eq!(
        server
            .code("manager", LAUNCH, launch_input("Bad audience", "promo AND", 0, &key()))
            .await,
        "BAD_INPUT"
    );
    assert_eq!(
        server
            .code("manager", LAUNCH, launch_input("", "promo", 0, &key()))
            .await,
        "BAD_INPUT",
        "a campaign has a name"
    );
    let mut personal_blast = launch_input("Personal to all", "promo", 0, &key());
    personal_blast["input"]["mode"] = json!("ONE_TO_ONE");
    assert_eq!(
        server.code("manager", LAUNCH, personal_blast).await,
        "BAD_INPUT",
        "a campaign is a mass send: no dodging the mass rules"
    );
    assert_eq!(server.event_count().await, before, "nothing was written");
    let admin = server
        .ok("admin", LAUNCH, launch_input("By the admin", "promo", 0, &key()))
        .await;
    assert_eq!(admin["launchCampaign"]["sent"], 2);
}

const AFTERMATH: &str = "query($id: UUID!) { campaign(id: $id) {
    name holdoutPercent lossRateDifference
    sent { contacts deletedUs blocked replied lossRate }
    holdout { contacts deletedUs lossRate }
    alerts { kind rate threshold }
    deletedAfter { contactId displayName loss heldOut scoreBefore bandBefore }
} }";

#[tokio::test]
async fn the_aftermath_counts_who_deleted_us_within_the_window_and_raises_the_alert() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let key = uuid::Uuid::new_v4().to_string();
    let launched = launch(&server, launch_input("Double 11", "promo", 0, &key)).await;
    let campaign = launched["campaignId"].clone();
    // Two days later Wang Fang deletes us; ten days later Li Lei does, too late to count.
    server.clock.advance_millis(2 * 86_400_000);
    saw(&server, &story.engaged, &[("DELETION", 0)]).await;
    server.clock.advance_millis(8 * 86_400_000);
    saw(&server, &story.bobs, &[("DELETION", 0)]).await;

    let report = server.ok("auditor", AFTERMATH, json!({ "id": campaign })).await["campaign"].clone();
    assert_eq!(report["name"], "Double 11");
    assert_eq!(report["sent"]["contacts"], 2, "{report}");
    assert_eq!(
        report["sent"]["deletedUs"], 1,
        "the late deletion is not the campaign's: {report}"
    );
    assert_eq!(report["sent"]["lossRate"], 0.5);
    assert_eq!(report["holdout"]["contacts"], 0);
    assert_eq!(report["lossRateDifference"], 0.5);
    assert_eq!(
        report["alerts"],
        json!([{ "kind": "LOSSES", "rate": 0.5, "threshold": 0.02 }])
    );
    let lost = &report["deletedAfter"][0];
    assert_eq!(lost["contactId"], story.engaged.as_str());
    assert_eq!(lost["displayName"], "Wang Fang", "who, by name");
    assert_eq!(
        (lost["loss"].as_str(), lost["heldOut"].as_bool()),
        (Some("DELETED_US"), Some(false))
    );
    assert!(
        lost["scoreBefore"].as_i64() > Some(0),
        "as they stood before the send: {lost}"
    );

    let listed = server
        .ok("manager", "{ campaigns { edges { node { id name } } } }", json!({}))
        .await;
    assert_eq!(listed["campaigns"]["edges"][0]["node"]["id"], campaign);
    // Alice sees her own contacts' part: Wang Fang is hers, Li Lei is Bob's.
    let hers = server.ok("alice", AFTERMATH, json!({ "id": campaign })).await["campaign"].clone();
    assert_eq!(hers["sent"]["contacts"], 1, "{hers}");
    assert_eq!(hers["sent"]["deletedUs"], 1);
    assert_eq!(hers["deletedAfter"].as_array().map(Vec::len), Some(1));
    assert_eq!(hers["deletedAfter"][0]["contactId"], story.engaged.as_str());
    let bobs = server.ok("bob", AFTERMATH, json!({ "id": campaign })).await["campaign"].clone();
    assert_eq!(bobs["sent"]["contacts"], 1, "{bobs}");
    assert_eq!(bobs["sent"]["deletedUs"], 0, "his contact's deletion came too late");
    assert_eq!(bobs["deletedAfter"], json!([]));
    assert_eq!(
        server.code("ingest", AFTERMATH, json!({ "id": campaign })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code("auditor", AFTERMATH, json!({ "id": uuid::Uuid::new_v4() }))
            .await,
        "NOT_FOUND"
    );
}

const SUGGESTIONS: &str = "query($owner: String, $first: Int) { suggestions(owner: $owner, first: $first) {
    kind silentDays score band verdict nextAllowedAt bestSendHours contact { id displayName }
} }";

#[tokio::test]
async fn suggestions_name_who_went_quiet_most_valuable_first_and_never_one_the_gate_refuses() {
    let server = TestServer::start().await;
    let chatty = [("TOUCH", 40), ("REPLY", 40), ("TOUCH", 30), ("REPLY", 30)];
    let quiet_a_week = contact(&server, "alice", "Wang Fang", &[], "Asia/Shanghai").await;
    saw(&server, &quiet_a_week, &chatty).await;
    saw(&server, &quiet_a_week, &[("TOUCH", 9), ("REPLY", 9)]).await;
    let quiet_long = contact(&server, "alice", "Zhou Jie", &[], "Asia/Shanghai").await;
    saw(&server, &quiet_long, &chatty).await;
    let talking = contact(&server, "alice", "Li Na", &[], "Asia/Shanghai").await;
    saw(&server, &talking, &chatty).await;
    saw(&server, &talking, &[("TOUCH", 2), ("REPLY", 2)]).await;
    let gone = contact(&server, "alice", "Sun Li", &[], "Asia/Shanghai").await;
    saw(&server, &gone, &chatty).await;
    saw(&server, &gone, &[("DELETION", 20)]).await;
    let bobs = contact(&server, "bob", "Li Lei", &[], "Asia/Shanghai").await;
    saw(&server, &bobs, &chatty).await;

    let alices = server.ok("alice", SUGGESTIONS, json!({})).await["suggestions"].clone();
    let named: Vec<(&str, &str)> = alices
        .as_array()
        .expect("suggestions")
        .iter()
        .map(|s| {
            (
                s["contact"]["displayName"].as_str().expect("name"),
                s["kind"].as_str().expect("kind"),
            )
        })
        .collect();
    assert_eq!(
        named,
        [("Wang Fang", "GREETING"), ("Zhou Jie", "INVITATION")],
        "the warmer relationship first; Li Na is talking; Sun Li deleted us; Li Lei is bob's: {alices}"
    );
    assert_eq!(alices[0]["silentDays"], 9);
    assert!(alices[0]["score"].as_i64() >= alices[1]["score"].as_i64());
    assert_eq!(alices[0]["verdict"], "ALLOW", "11:00 in Shanghai: write now");

    let managers = server.ok("manager", SUGGESTIONS, json!({ "owner": "bob" })).await["suggestions"].clone();
    assert_eq!(managers.as_array().map(Vec::len), Some(1), "{managers}");
    assert_eq!(
        server.code("alice", SUGGESTIONS, json!({ "owner": "bob" })).await,
        "FORBIDDEN"
    );
    assert_eq!(server.code("ingest", SUGGESTIONS, json!({})).await, "FORBIDDEN");
    assert_eq!(
        server.code("alice", SUGGESTIONS, json!({ "first": 0 })).await,
        "BAD_INPUT"
    );
    assert_eq!(
        server.code("alice", SUGGESTIONS, json!({ "first": 1000 })).await,
        "LIMIT_EXCEEDED"
    );
}

#[tokio::test]
async fn campaign_alerts_arrive_when_losses_cross_the_line() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let key = uuid::Uuid::new_v4().to_string();
    let launched = launch(&server, launch_input("Double 11", "promo", 0, &key)).await;
    let campaign = launched["campaignId"].clone();
    let follow =
        "subscription($id: UUID!) { campaignAlerts(campaignId: $id) { id alerts { kind rate } sent { deletedUs } } }";
    let mut socket = server.subscribe("auditor", follow, json!({ "id": campaign })).await;
    crate::support::hang_guard("the campaign alerts", async {
        let first = crate::api::next_payload(&mut socket).await;
        assert_eq!(first["campaignAlerts"]["alerts"], json!([]), "as it stands: {first}");
        server.clock.advance_millis(86_400_000);
        saw(&server, &story.engaged, &[("DELETION", 0)]).await;
        let alert = crate::api::next_payload(&mut socket).await;
        assert_eq!(alert["campaignAlerts"]["id"], campaign);
        assert_eq!(alert["campaignAlerts"]["alerts"][0]["kind"], "LOSSES", "{alert}");
        assert_eq!(alert["campaignAlerts"]["sent"]["deletedUs"], 1);
    })
    .await;
    let mut sales = server.subscribe("alice", follow, json!({ "id": campaign })).await;
    let refused = crate::support::hang_guard("a refusal", crate::api::next_error(&mut sales)).await;
    assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{refused}");
}

const INGEST: &str = "mutation($events: [IngestEventInput!]!) { ingestEvents(events: $events) { appended } }";

/// What the sending tool reports about one message of `campaign`.
fn delivery(server: &TestServer, contact_id: &str, kind: &str, campaign: &Value, reason: Option<&str>) -> Value {
    json!({
        "eventId": uuid::Uuid::new_v4(), "contactId": contact_id, "type": kind,
        "occurredAt": server.at(0), "campaignId": campaign, "reason": reason,
    })
}

#[tokio::test]
async fn delivery_outcomes_come_from_the_sending_tool_and_feed_the_aftermath_and_the_gate() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let key = uuid::Uuid::new_v4().to_string();
    let campaign = launch(&server, launch_input("Double 11", "promo", 0, &key)).await["campaignId"].clone();
    server.clock.advance_millis(60_000);
    let failed = delivery(
        &server,
        &story.engaged,
        "DELIVERY_FAILED",
        &campaign,
        Some("not a friend"),
    );
    let read = delivery(&server, &story.bobs, "MESSAGE_READ", &campaign, None);
    let clicked = delivery(&server, &story.bobs, "LINK_CLICKED", &campaign, None);

    // Only the sending tool's ingestion reports them, and a bad one writes nothing.
    let before = server.event_count().await;
    for who in ["alice", "manager", "auditor"] {
        assert_eq!(
            server.code(who, INGEST, json!({ "events": [failed.clone()] })).await,
            "FORBIDDEN",
            "{who}"
        );
    }
    let mut too_long = failed.clone();
    too_long["reason"] = json!("x".repeat(1_001));
    assert_eq!(
        server
            .code("ingest", INGEST, json!({ "events": [read.clone(), too_long] }))
            .await,
        "BAD_INPUT"
    );
    assert_eq!(server.event_count().await, before, "nothing was written");

    server
        .ok("ingest", INGEST, json!({ "events": [failed, read, clicked] }))
        .await;
    let query = "query($id: UUID!) { campaign(id: $id) {
        sent { contacts failed read clicked failedRate readRate }
        alerts { kind rate threshold }
        breakdown { byOwner { key sent { contacts failed } } byTag { key sent { contacts } } }
    } }";
    let report = server.ok("auditor", query, json!({ "id": campaign })).await["campaign"].clone();
    assert_eq!(
        report["sent"],
        json!({ "contacts": 2, "failed": 1, "read": 1, "clicked": 1, "failedRate": 0.5, "readRate": 0.5 })
    );
    assert_eq!(
        report["alerts"],
        json!([{ "kind": "FAILED_DELIVERIES", "rate": 0.5, "threshold": 0.05 }])
    );
    assert_eq!(
        report["breakdown"]["byOwner"],
        json!([
            { "key": "alice", "sent": { "contacts": 1, "failed": 1 } },
            { "key": "bob", "sent": { "contacts": 1, "failed": 0 } },
        ])
    );
    assert_eq!(
        report["breakdown"]["byTag"],
        json!([{ "key": "promo", "sent": { "contacts": 2 } }])
    );
    let bobs_part = server.ok("bob", query, json!({ "id": campaign })).await["campaign"].clone();
    assert_eq!(
        bobs_part["breakdown"]["byOwner"],
        json!([{ "key": "bob", "sent": { "contacts": 1, "failed": 0 } }]),
        "sales see their own contacts' part"
    );
    assert_eq!(bobs_part["alerts"], json!([]));

    // Two more failures in a row and a mass send is refused as unreachable.
    let more: Vec<Value> = (0..2)
        .map(|_| delivery(&server, &story.engaged, "DELIVERY_FAILED", &Value::Null, None))
        .collect();
    server.ok("ingest", INGEST, json!({ "events": more })).await;
    let gate = server.ok("alice", GATE, json!({ "id": story.engaged })).await;
    assert_eq!(gate["gate"]["verdict"], "DENY", "{gate}");
    let codes: Vec<&str> = gate["gate"]["reasons"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|reason| reason["code"].as_str())
        .collect();
    assert!(codes.contains(&"UNREACHABLE"), "{codes:?}");
}

#[tokio::test]
async fn a_launch_plans_its_deliveries_in_waves_no_faster_than_the_channel_allows() {
    let server = TestServer::start().await;
    let story = story(&server).await;
    let set_policy = "mutation($doc: JSON!) { setPolicy(input: { document: $doc }) { version } }";
    let mut policy = server.ok("admin", "{ policy { document } }", json!({})).await["policy"]["document"].clone();
    let wechat = policy["channels"]
        .as_array()
        .and_then(|channels| channels.iter().position(|rules| rules["channel"] == "WECHAT"))
        .expect("the default policy paces WeChat");
    let before = server.event_count().await;
    policy["channels"][wechat]["sendsPerMinute"] = json!(0);
    assert_eq!(
        server.code("admin", set_policy, json!({ "doc": policy.clone() })).await,
        "BAD_INPUT"
    );
    assert_eq!(server.event_count().await, before, "a bad policy writes nothing");
    policy["channels"][wechat]["sendsPerMinute"] = json!(1);
    policy["campaigns"]["wavePauseSecs"] = json!(30);
    server.ok("admin", set_policy, json!({ "doc": policy })).await;

    let query = "mutation($input: LaunchCampaignInput!) { launchCampaign(input: $input) {
        deliveries(first: 10) { edges { node { contactId plannedAt wave } } }
    } }";
    let key = uuid::Uuid::new_v4().to_string();
    let launched = server
        .ok("manager", query, launch_input("Paced", "promo", 0, &key))
        .await;
    let mut plan: Vec<(i64, String)> = launched["launchCampaign"]["deliveries"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|edge| {
            let node = &edge["node"];
            (
                node["wave"].as_i64().unwrap_or(-1),
                node["plannedAt"].as_str().unwrap_or("").to_owned(),
            )
        })
        .collect();
    plan.sort();
    let ids: Vec<&str> = launched["launchCampaign"]["deliveries"]["edges"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|edge| edge["node"]["contactId"].as_str())
        .collect();
    assert_eq!(ids.len(), 2, "{launched}");
    assert!(ids.contains(&story.engaged.as_str()) && ids.contains(&story.bobs.as_str()));
    assert_eq!(
        plan.iter().map(|(wave, _)| *wave).collect::<Vec<_>>(),
        [0, 1],
        "one a minute: {plan:?}"
    );
    let millis = |text: &str| text.parse::<rapport_domain::Timestamp>().expect("a moment").as_millis();
    assert_eq!(millis(&plan[0].1), millis(&server.at(0)), "the first wave goes at once");
    assert_eq!(
        millis(&plan[1].1) - millis(&plan[0].1),
        90_000,
        "a minute's wave and the thirty seconds' pause"
    );
}
