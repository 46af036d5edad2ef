//! Customer groups end to end through the GraphQL API: the group gate on
//! posts (caps by age, spacing, promotions, health, quiet hours, and what
//! overrides may pass), membership and speech feeding the linked
//! contacts' scores, silent members under their own gates, health rebuilt
//! from the ledger, alerts, replay, and every role and bad input.

use rapport_domain::group::GROUP_MEMBERS_MAX;
use rapport_domain::time::Clock as _;
use rapport_domain::{Event, GroupId, GroupMemberJoined, NewEvent, StreamName, Timestamp};
use rapport_store::{EventStore, ExpectedVersion};
use serde_json::{Value, json};

use crate::api::TestServer;

const CREATE: &str = "mutation($name: String!, $owner: String, $zone: String, $key: UUID, $at: DateTime) {
    createGroup(input: { name: $name, owner: $owner, kind: \"customers\", timeZone: $zone, idempotencyKey: $key, occurredAt: $at }) {
        eventId appended group { id name owner }
    }
}";
const MEMBER: &str = "mutation($group: UUID!, $member: String!, $change: MemberChangeKind!, $contact: UUID, $at: DateTime) {
    recordGroupMember(input: { groupId: $group, member: $member, change: $change, contactId: $contact, occurredAt: $at }) {
        groupVersion
    }
}";
const POST: &str = "mutation($group: UUID!, $kind: PostKind!, $override: OverrideInput, $source: String, $key: UUID, $at: DateTime) {
    recordGroupPost(input: { groupId: $group, kind: $kind, override: $override, source: $source, idempotencyKey: $key, occurredAt: $at }) {
        eventId appended groupVersion decision { verdict reasons { code } }
    }
}";
const GATE: &str = "query($group: UUID!, $kind: PostKind!) {
    groupGate(groupId: $group, kind: $kind) {
        verdict allowed nextAllowedAt postsToday postsPerDayCap timeZone activeHours policyVersion
        reasons { code blocking message(lang: ZH) }
    }
}";
const HEALTH: &str = "query($id: UUID!) {
    group(id: $id) {
        name version
        health { members joined left windowDays leaveRatePerMille activeMembers postsToday postsPerDayCap
                 mix { content interaction promotion } alerts }
        posts { kind membersLeftWithinADay }
    }
}";

async fn create(server: &TestServer, who: &str, name: &str) -> String {
    let data = server
        .ok(who, CREATE, json!({ "name": name, "zone": "Asia/Shanghai" }))
        .await;
    data["createGroup"]["group"]["id"].as_str().expect("id").to_owned()
}

async fn member(server: &TestServer, who: &str, group: &str, member: &str, change: &str, contact: Option<&str>) {
    server
        .ok(
            who,
            MEMBER,
            json!({ "group": group, "member": member, "change": change, "contact": contact }),
        )
        .await;
}

async fn post(server: &TestServer, who: &str, group: &str, kind: &str) -> Value {
    server.ok(who, POST, json!({ "group": group, "kind": kind })).await["recordGroupPost"].clone()
}

fn store(server: &TestServer) -> rapport_store::Ledger {
    server.server.as_ref().expect("running").state.core.store.clone()
}

/// Midnight UTC today, which is 08:00 in Shanghai: the servers' clock
/// stands at 11:00 there.
fn shanghai_eight_tomorrow(server: &TestServer) -> Timestamp {
    use rapport_app::clock::Clock;
    let now = server.clock.now().as_millis();
    Timestamp::from_millis_unchecked(now.div_euclid(86_400_000) * 86_400_000 + 86_400_000)
}

fn instant(value: &Value) -> Timestamp {
    let text = value.as_str().unwrap_or_else(|| panic!("no moment in {value}"));
    text.parse().expect("RFC 3339")
}

#[tokio::test]
async fn the_fourth_post_of_a_new_groups_day_waits_for_tomorrows_first_active_hour() {
    let server = TestServer::start().await;
    let group = create(&server, "alice", "Spring tea 春茶群").await;
    for _ in 0..3 {
        let posted = post(&server, "alice", &group, "CONTENT").await;
        assert_eq!(posted["decision"]["verdict"], "ALLOW", "{posted}");
        server.clock.advance_millis(31 * 60_000);
    }
    let gate = server
        .ok("alice", GATE, json!({ "group": group, "kind": "CONTENT" }))
        .await["groupGate"]
        .clone();
    assert_eq!(gate["verdict"], "DEFER", "{gate}");
    assert_eq!(gate["reasons"][0]["code"], "NEW_GROUP_POST_CAP");
    assert!(
        gate["reasons"][0]["message"].as_str().expect("words").contains("新群"),
        "{gate}"
    );
    assert_eq!(
        (gate["postsToday"].clone(), gate["postsPerDayCap"].clone()),
        (json!(3), json!(3))
    );
    assert_eq!(instant(&gate["nextAllowedAt"]), shanghai_eight_tomorrow(&server));
    assert_eq!(gate["activeHours"], json!([8, 12, 19]));

    // Refused, with the decision, and nothing written.
    let before = server.event_count().await;
    let (_, refused) = server
        .gql("alice", POST, json!({ "group": group, "kind": "CONTENT" }))
        .await;
    let extensions = &refused["errors"][0]["extensions"];
    assert_eq!(extensions["code"], "GATE_DENIED", "{refused}");
    assert_eq!(extensions["verdict"], "DEFER");
    assert_eq!(extensions["reasons"][0]["code"], "NEW_GROUP_POST_CAP");
    assert_eq!(instant(&extensions["nextAllowedAt"]), shanghai_eight_tomorrow(&server));
    assert_eq!(server.event_count().await, before);

    // A manager may post anyway, and says why.
    let forced = server
        .ok(
            "manager",
            POST,
            json!({ "group": group, "kind": "CONTENT", "override": { "reason": "store closing notice" } }),
        )
        .await;
    assert_eq!(forced["recordGroupPost"]["decision"]["verdict"], "DEFER");
    assert_eq!(server.event_count().await, before + 1);
    // The ledger keeps what it broke: the post, its override, and the rule.
    let posts = server
        .ok(
            "auditor",
            "query($id: UUID!) { group(id: $id) { posts(last: 2) { authorized brokeGate brokenRules } } }",
            json!({ "id": group }),
        )
        .await;
    assert_eq!(
        posts["group"]["posts"],
        json!([
            { "authorized": "OVERRIDE", "brokeGate": "DEFER", "brokenRules": ["NEW_GROUP_POST_CAP"] },
            { "authorized": "GATE", "brokeGate": null, "brokenRules": [] },
        ])
    );
}

#[tokio::test]
async fn no_override_passes_the_daily_ceiling_and_a_tools_posts_are_recorded_as_they_happened() {
    let server = TestServer::start().await;
    let group = create(&server, "manager", "Flash sales").await;
    // A robot already posted twelve times today.
    for minute in 0..12 {
        let at = server.at(-(minute + 1) * 60);
        server
            .ok(
                "ingest",
                POST,
                json!({ "group": group, "kind": "PROMOTION", "source": "group-robot", "at": at }),
            )
            .await;
    }
    let before = server.event_count().await;
    let (_, refused) = server
        .gql(
            "manager",
            POST,
            json!({ "group": group, "kind": "CONTENT", "override": { "reason": "one more" } }),
        )
        .await;
    assert_eq!(refused["errors"][0]["extensions"]["code"], "GATE_DENIED", "{refused}");
    assert_eq!(refused["errors"][0]["extensions"]["verdict"], "DENY");
    assert_eq!(
        refused["errors"][0]["extensions"]["reasons"][0]["code"],
        "GROUP_POST_CEILING"
    );
    assert_eq!(server.event_count().await, before);
    let health = server.ok("manager", HEALTH, json!({ "id": group })).await;
    assert_eq!(health["group"]["health"]["postsToday"], 12);
    assert_eq!(
        health["group"]["health"]["alerts"],
        json!(["PROMOTION_SHARE"]),
        "{health}"
    );
}

#[tokio::test]
async fn a_retried_post_answers_with_the_first_even_after_the_gate_closed() {
    let server = TestServer::start().await;
    let group = create(&server, "alice", "Retries").await;
    let key = uuid::Uuid::new_v4();
    let first = server
        .ok("alice", POST, json!({ "group": group, "kind": "CONTENT", "key": key }))
        .await["recordGroupPost"]
        .clone();
    let again = server
        .ok("alice", POST, json!({ "group": group, "kind": "CONTENT", "key": key }))
        .await["recordGroupPost"]
        .clone();
    assert_eq!(
        (first["appended"].clone(), again["appended"].clone()),
        (json!(true), json!(false))
    );
    assert_eq!(first["eventId"], again["eventId"]);
    // The gate now sees the group with that post in it: a retry does not
    // pretend that is what it judged.
    assert_eq!(first["decision"]["verdict"], "ALLOW");
    assert_eq!(again["decision"], Value::Null, "{again}");
    // The same key for another kind of post is a conflict, not a second post.
    assert_eq!(
        server
            .code(
                "alice",
                POST,
                json!({ "group": group, "kind": "PROMOTION", "key": key })
            )
            .await,
        "CONFLICT"
    );
    // The next post keeps its spacing.
    let (_, spaced) = server
        .gql("alice", POST, json!({ "group": group, "kind": "CONTENT" }))
        .await;
    assert_eq!(
        spaced["errors"][0]["extensions"]["reasons"][0]["code"], "POST_SPACING",
        "{spaced}"
    );
}

#[tokio::test]
async fn speaking_in_a_group_raises_the_linked_contacts_score_and_leaving_after_a_post_lowers_it() {
    let server = TestServer::start().await;
    // Counts decay from the middle of their week: the test runs early in a
    // week (Thursday 11:00 in Shanghai), whatever day it is, so that three
    // fresh speeches count whole.
    const WEEK: i64 = 7 * 86_400_000;
    const THREE_HOURS: i64 = 3 * 3_600_000;
    let now = server.clock.now().as_millis();
    server
        .clock
        .advance_millis((now.div_euclid(WEEK) + 1) * WEEK + THREE_HOURS - now);
    let contact = server.register("alice", "alice", "Zhou Jie", &[]).await;
    let group = create(&server, "alice", "Tea lovers").await;
    member(&server, "alice", &group, "wx-member-1", "JOINED", Some(&contact)).await;
    let components = "query($id: UUID!) { contact(id: $id) {
        strength { score components { name points explanation } }
        timeline(first: 10) { edges { node { type } } } } }";
    let before = server.ok("alice", components, json!({ "id": contact })).await;
    for _ in 0..3 {
        member(&server, "ingest", &group, "wx-member-1", "SPOKE", None).await;
    }
    let after = server.ok("alice", components, json!({ "id": contact })).await;
    let points = |data: &Value, name: &str| {
        data["contact"]["strength"]["components"]
            .as_array()
            .expect("components")
            .iter()
            .find(|component| component["name"] == name)
            .map(|component| component["points"].as_i64().expect("points"))
            .expect("the component")
    };
    assert_eq!(points(&before, "groupSpeech"), 0);
    assert_eq!(
        points(&after, "groupSpeech"),
        5,
        "three speeches against a half at three: {after}"
    );
    assert!(after["contact"]["strength"]["score"].as_i64() > before["contact"]["strength"]["score"].as_i64());
    let explanation = after["contact"]["strength"]["components"]
        .as_array()
        .expect("components")
        .iter()
        .find(|component| component["name"] == "groupSpeech")
        .expect("component")["explanation"]
        .clone();
    assert_eq!(explanation, "how often they have spoken in our groups lately");
    assert!(
        after.to_string().contains("ContactSpokeInGroup"),
        "the timeline says so: {after}"
    );

    post(&server, "alice", &group, "CONTENT").await;
    server.clock.advance_millis(3_600_000);
    member(&server, "ingest", &group, "wx-member-1", "LEFT", None).await;
    let left = server.ok("alice", components, json!({ "id": contact })).await;
    assert_eq!(points(&left, "groupLeaves"), -10, "{left}");
    let health = server.ok("alice", HEALTH, json!({ "id": group })).await;
    assert_eq!(health["group"]["posts"][0]["membersLeftWithinADay"], 1, "{health}");
    assert_eq!(health["group"]["health"]["left"], 1);
}

#[tokio::test]
async fn silent_members_come_with_their_own_gates_so_nobody_who_deleted_us_is_greeted() {
    let server = TestServer::start().await;
    let kept = server.register("alice", "alice", "Kept", &[]).await;
    let gone = server.register("alice", "alice", "Gone", &[]).await;
    let group = create(&server, "alice", "Quiet ones").await;
    member(&server, "alice", &group, "kept", "JOINED", Some(&kept)).await;
    member(&server, "alice", &group, "gone", "JOINED", Some(&gone)).await;
    member(&server, "alice", &group, "stranger", "JOINED", None).await;
    member(&server, "alice", &group, "talker", "JOINED", None).await;
    server
        .ok(
            "alice",
            "mutation($id: UUID!) { recordDeletion(input: { contactId: $id }) { position } }",
            json!({ "id": gone }),
        )
        .await;
    server.clock.advance_millis(16 * 86_400_000);
    member(&server, "alice", &group, "talker", "SPOKE", None).await;
    let silent = server
        .ok(
            "alice",
            "query($id: UUID!) { silentMembers(groupId: $id) {
                member silentDays nudge mayBeGreeted contact { id } contactGate { verdict reasons { code } } } }",
            json!({ "id": group }),
        )
        .await["silentMembers"]
        .clone();
    let rows = silent.as_array().expect("rows");
    assert_eq!(rows.len(), 3, "the talker spoke today: {silent}");
    let row = |key: &str| rows.iter().find(|row| row["member"] == key).expect(key).clone();
    assert_eq!(row("kept")["nudge"], "INVITATION");
    assert_eq!(row("kept")["silentDays"], 16);
    assert_eq!(row("kept")["mayBeGreeted"], true, "{silent}");
    assert_eq!(row("gone")["contactGate"]["verdict"], "DENY");
    assert_eq!(row("gone")["contactGate"]["reasons"][0]["code"], "CONTACT_DELETED_US");
    assert_eq!(row("gone")["mayBeGreeted"], false);
    assert_eq!(row("stranger")["contact"], Value::Null);
    assert_eq!(row("stranger")["mayBeGreeted"], false, "nobody to write to personally");
}

#[tokio::test]
async fn group_health_rebuilt_from_the_ledger_equals_the_live_one() {
    let server = TestServer::start().await;
    let contact = server.register("alice", "alice", "Lin", &[]).await;
    let group = create(&server, "alice", "Rebuilt").await;
    for n in 0..6 {
        let contact = (n == 0).then_some(contact.as_str());
        member(&server, "ingest", &group, &format!("m{n}"), "JOINED", contact).await;
    }
    post(&server, "alice", &group, "CONTENT").await;
    member(&server, "ingest", &group, "m0", "SPOKE", None).await;
    member(&server, "ingest", &group, "m1", "LEFT", None).await;
    member(&server, "alice", &group, "m2", "REMOVED", None).await;
    let state = &server.server.as_ref().expect("running").state;
    let rebuilt = rapport_app::read_model::rebuild_read_model(&state.core.store, None)
        .await
        .expect("rebuild");
    let live = state.core.live.read(|model| model.projection.groups().clone());
    assert_eq!(rebuilt.projection.groups(), &live);
    let id: GroupId = GroupId(group.parse().expect("uuid"));
    let folded = live.get(&id).expect("the group");
    assert_eq!((folded.members.len(), folded.speech_total), (4, 1));
}

#[tokio::test]
async fn a_group_whose_members_leave_is_held_and_its_alert_is_pushed() {
    let server = TestServer::start().await;
    let group = create(&server, "manager", "Promo dump").await;
    for n in 0..40 {
        member(&server, "ingest", &group, &format!("m{n}"), "JOINED", None).await;
    }
    let follow = "subscription($id: UUID!) { groupAlerts(groupId: $id) { id health { left alerts } } }";
    let mut socket = server.subscribe("auditor", follow, json!({ "id": group })).await;
    crate::support::hang_guard("the group alerts", async {
        let first = crate::api::next_payload(&mut socket).await;
        assert_eq!(first["groupAlerts"]["health"]["alerts"], json!([]), "{first}");
        // 2 of 40 is 5 %, within the policy; the third leave crosses it.
        for n in 0..3 {
            member(&server, "ingest", &group, &format!("m{n}"), "LEFT", None).await;
        }
        let alert = crate::api::next_payload(&mut socket).await;
        assert_eq!(
            alert["groupAlerts"]["health"]["alerts"],
            json!(["LEAVE_RATE"]),
            "{alert}"
        );
        assert_eq!(alert["groupAlerts"]["health"]["left"], 3);
    })
    .await;
    let gate = server
        .ok("manager", GATE, json!({ "group": group, "kind": "CONTENT" }))
        .await;
    assert_eq!(gate["groupGate"]["verdict"], "DEFER");
    assert_eq!(gate["groupGate"]["reasons"][0]["code"], "MEMBERS_LEAVING", "{gate}");
    let mut ingest = server.subscribe("ingest", follow, json!({ "id": group })).await;
    let refused = crate::support::hang_guard("a refusal", crate::api::next_error(&mut ingest)).await;
    assert_eq!(refused["extensions"]["code"], "FORBIDDEN", "{refused}");
}

#[tokio::test]
async fn an_auditor_replays_a_group_as_the_ledger_knew_it() {
    let server = TestServer::start().await;
    let group = create(&server, "alice", "History").await;
    member(&server, "alice", &group, "m1", "JOINED", None).await;
    let position = server.ok("admin", "{ ledger { headPosition } }", json!({})).await["ledger"]["headPosition"].clone();
    member(&server, "alice", &group, "m2", "JOINED", None).await;
    let replayed = server
        .ok(
            "auditor",
            "query($p: String, $id: UUID!) { replay(asOfPosition: $p) { group(id: $id) { health { members } } } }",
            json!({ "p": position, "id": group }),
        )
        .await;
    assert_eq!(replayed["replay"]["group"]["health"]["members"], 1, "{replayed}");
    let now = server.ok("auditor", HEALTH, json!({ "id": group })).await;
    assert_eq!(now["group"]["health"]["members"], 2);
}

#[tokio::test]
async fn every_role_gets_what_it_may_and_nothing_else() {
    let server = TestServer::start().await;
    let alices = create(&server, "alice", "Alice's").await;
    // Sales see and write their own groups only; others' answer as missing.
    assert_eq!(server.code("bob", HEALTH, json!({ "id": alices })).await, "NOT_FOUND");
    assert_eq!(
        server
            .code("bob", GATE, json!({ "group": alices, "kind": "CONTENT" }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .code("bob", POST, json!({ "group": alices, "kind": "CONTENT" }))
            .await,
        "NOT_FOUND"
    );
    assert_eq!(
        server
            .code(
                "bob",
                MEMBER,
                json!({ "group": alices, "member": "x", "change": "JOINED" })
            )
            .await,
        "NOT_FOUND"
    );
    let listed = "{ groups { edges { node { name } } } }";
    assert_eq!(server.ok("bob", listed, json!({})).await["groups"]["edges"], json!([]));
    assert_eq!(
        server.ok("manager", listed, json!({})).await["groups"]["edges"][0]["node"]["name"],
        "Alice's"
    );
    assert_eq!(
        server
            .code("alice", CREATE, json!({ "name": "for bob", "owner": "bob" }))
            .await,
        "FORBIDDEN"
    );
    // Auditors read and never write; only managers override; only the
    // ingest role says a tool posted, and it reads nothing.
    assert_eq!(
        server.ok("auditor", HEALTH, json!({ "id": alices })).await["group"]["name"],
        "Alice's"
    );
    assert_eq!(
        server.code("auditor", CREATE, json!({ "name": "x" })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code("auditor", POST, json!({ "group": alices, "kind": "CONTENT" }))
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code(
                "alice",
                POST,
                json!({ "group": alices, "kind": "CONTENT", "override": { "reason": "because" } })
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code(
                "alice",
                POST,
                json!({ "group": alices, "kind": "CONTENT", "source": "robot" })
            )
            .await,
        "FORBIDDEN"
    );
    assert_eq!(
        server.code("ingest", HEALTH, json!({ "id": alices })).await,
        "FORBIDDEN"
    );
    assert_eq!(
        server
            .code("ingest", POST, json!({ "group": alices, "kind": "CONTENT" }))
            .await,
        "FORBIDDEN"
    );
    member(&server, "ingest", &alices, "from-the-robot", "JOINED", None).await;
    server
        .ok(
            "ingest",
            POST,
            json!({ "group": alices, "kind": "CONTENT", "source": "robot" }),
        )
        .await;
    // Archived, a group takes nothing more.
    server
        .ok(
            "alice",
            "mutation($id: UUID!) { archiveGroup(input: { groupId: $id, reason: \"merged\" }) { groupVersion } }",
            json!({ "id": alices }),
        )
        .await;
    assert_eq!(
        server
            .code(
                "ingest",
                MEMBER,
                json!({ "group": alices, "member": "late", "change": "JOINED" })
            )
            .await,
        "CONFLICT"
    );
}

#[tokio::test]
async fn bad_input_is_refused_with_its_code_and_writes_nothing() {
    let server = TestServer::start().await;
    let group = create(&server, "alice", "Careful").await;
    member(&server, "alice", &group, "joined-now", "JOINED", None).await;
    member(&server, "alice", &group, "gone", "JOINED", None).await;
    member(&server, "alice", &group, "gone", "LEFT", None).await;
    let before = server.event_count().await;
    for (index, (query, variables)) in [
        (CREATE, json!({ "name": "  " })),
        (CREATE, json!({ "name": "x", "zone": "Mars/Olympus" })),
        (CREATE, json!({ "name": "x".repeat(129) })),
        (
            MEMBER,
            json!({ "group": group, "member": " padded", "change": "JOINED" }),
        ),
        (MEMBER, json!({ "group": group, "member": "", "change": "JOINED" })),
        (
            MEMBER,
            json!({ "group": group, "member": "never-joined", "change": "LEFT" }),
        ),
        (
            MEMBER,
            json!({ "group": group, "member": "m", "change": "SPOKE", "contact": uuid::Uuid::nil() }),
        ),
        // A leave cannot come before the join.
        (
            MEMBER,
            json!({ "group": group, "member": "joined-now", "change": "LEFT", "at": server.at(-3_600) }),
        ),
        // Nor speech before the join, nor a join before a recorded leave.
        (
            MEMBER,
            json!({ "group": group, "member": "joined-now", "change": "SPOKE", "at": server.at(-3_600) }),
        ),
        (
            MEMBER,
            json!({ "group": group, "member": "gone", "change": "JOINED", "at": server.at(-60) }),
        ),
        // Business time cannot move a post to a day with room left.
        (
            POST,
            json!({ "group": group, "kind": "CONTENT", "at": server.at(-86_400) }),
        ),
        (
            "query($id: UUID!) { group(id: $id) { posts(last: 100) { kind } } }",
            json!({ "id": group }),
        ),
        (
            "query($id: UUID!) { silentMembers(groupId: $id, first: 1000) { member } }",
            json!({ "id": group }),
        ),
    ]
    .into_iter()
    .enumerate()
    {
        let (_, body) = server.gql("alice", query, variables).await;
        assert_eq!(
            body["errors"][0]["extensions"]["code"], "BAD_INPUT",
            "case {index}: {body}"
        );
    }
    assert_eq!(
        server
            .code(
                "alice",
                MEMBER,
                json!({ "group": group, "member": "m", "change": "JOINED", "contact": uuid::Uuid::nil() })
            )
            .await,
        "NOT_FOUND"
    );
    assert_eq!(server.event_count().await, before);
}

#[tokio::test]
async fn a_group_holds_at_most_its_member_limit() {
    let server = TestServer::start().await;
    let group = create(&server, "manager", "Full house").await;
    let id = GroupId(group.parse().expect("uuid"));
    let now = rapport_app::clock::Clock::now(server.clock.as_ref());
    let joins: Vec<NewEvent> = (0..GROUP_MEMBERS_MAX)
        .map(|n| {
            let joined: Event = GroupMemberJoined {
                member: format!("m{n}"),
                contact_id: None,
            }
            .into();
            NewEvent::new(uuid::Uuid::now_v7(), joined, now, "robot")
        })
        .collect();
    let written = store(&server)
        .append(StreamName::Group(id), ExpectedVersion::Exact(0), joins)
        .await
        .expect("append");
    server
        .server
        .as_ref()
        .expect("running")
        .state
        .core
        .live
        .wait_for(written.position)
        .await
        .expect("applied");
    let before = server.event_count().await;
    assert_eq!(
        server
            .code(
                "ingest",
                MEMBER,
                json!({ "group": group, "member": "one more", "change": "JOINED" })
            )
            .await,
        "LIMIT_EXCEEDED"
    );
    assert_eq!(server.event_count().await, before);
}

#[tokio::test]
async fn the_holes_stay_shut_tools_read_nothing_and_nobody_dates_around_a_rule() {
    let server = TestServer::start().await;
    let alices = create(&server, "alice", "Alice's").await;
    let bobs_contact = server.register("bob", "bob", "Bob's customer", &[]).await;

    // A write's answer carries no group to a role that reads none.
    let (_, answered) = server
        .gql(
            "ingest",
            "mutation($group: UUID!) {
                recordGroupMember(input: { groupId: $group, member: \"m1\", change: JOINED }) {
                    groupVersion group { name silentMembers { member } } } }",
            json!({ "group": alices }),
        )
        .await;
    assert_eq!(answered["errors"][0]["extensions"]["code"], "FORBIDDEN", "{answered}");
    let posted = server
        .ok(
            "ingest",
            POST,
            json!({ "group": alices, "kind": "CONTENT", "source": "robot" }),
        )
        .await;
    assert_eq!(posted["recordGroupPost"]["decision"], Value::Null, "{posted}");

    // Nobody links a member to a contact they may not see.
    assert_eq!(
        server
            .code(
                "alice",
                MEMBER,
                json!({ "group": alices, "member": "m2", "change": "JOINED", "contact": bobs_contact })
            )
            .await,
        "NOT_FOUND"
    );
    // A member joins once; a group is archived once.
    assert_eq!(
        server
            .code(
                "alice",
                MEMBER,
                json!({ "group": alices, "member": "m1", "change": "JOINED" })
            )
            .await,
        "CONFLICT"
    );

    // A group is created now: dated in the past it would be mature at once.
    assert_eq!(
        server
            .code(
                "manager",
                CREATE,
                json!({ "name": "Old at birth", "at": server.at(-400 * 86_400) })
            )
            .await,
        "BAD_INPUT"
    );
    // Only the tools' own role speaks for a tool, not an admin.
    assert_eq!(
        server
            .code(
                "admin",
                POST,
                json!({ "group": alices, "kind": "CONTENT", "source": "robot" })
            )
            .await,
        "FORBIDDEN"
    );

    let archive =
        "mutation($id: UUID!, $key: UUID) { archiveGroup(input: { groupId: $id, idempotencyKey: $key }) { appended } }";
    let key = uuid::Uuid::new_v4();
    let first = server.ok("alice", archive, json!({ "id": alices, "key": key })).await;
    let retried = server.ok("alice", archive, json!({ "id": alices, "key": key })).await;
    assert_eq!(
        (
            first["archiveGroup"]["appended"].clone(),
            retried["archiveGroup"]["appended"].clone()
        ),
        (json!(true), json!(false))
    );
    let before = server.event_count().await;
    assert_eq!(
        server
            .code("alice", archive, json!({ "id": alices, "key": uuid::Uuid::new_v4() }))
            .await,
        "CONFLICT"
    );
    assert_eq!(server.event_count().await, before);
}

#[tokio::test]
async fn a_retried_leave_answers_with_the_first_and_a_tools_posts_pass_the_ceiling() {
    let server = TestServer::start().await;
    let group = create(&server, "manager", "Busy").await;
    member(&server, "ingest", &group, "m1", "JOINED", None).await;
    let leave = "mutation($group: UUID!, $key: UUID) {
        recordGroupMember(input: { groupId: $group, member: \"m1\", change: LEFT, idempotencyKey: $key }) { groupVersion } }";
    let key = uuid::Uuid::new_v4();
    let first = server.ok("ingest", leave, json!({ "group": group, "key": key })).await;
    let again = server.ok("ingest", leave, json!({ "group": group, "key": key })).await;
    assert_eq!(first, again, "the answer a lost response would have carried");
    for minute in 0..13 {
        server
            .ok(
                "ingest",
                POST,
                json!({ "group": group, "kind": "CONTENT", "source": "robot", "at": server.at(-(minute + 1) * 60) }),
            )
            .await;
    }
    let health = server.ok("manager", HEALTH, json!({ "id": group })).await;
    assert_eq!(
        health["group"]["health"]["postsToday"], 13,
        "recorded as it happened: {health}"
    );
}

#[tokio::test]
async fn the_ledger_feed_shows_sales_staff_their_own_groups_only() {
    let server = TestServer::start().await;
    let follow = "subscription { ledgerEvents { stream type payload } }";
    let head = server.event_count().await;
    let mut bobs = server.subscribe("bob", follow, json!({})).await;
    let alices = create(&server, "alice", "Alice's").await;
    member(&server, "alice", &alices, "m1", "JOINED", None).await;
    let bobs_group = create(&server, "bob", "Bob's").await;
    // A tool links a member of bob's group to alice's contact.
    let alices_contact = server.register("alice", "alice", "Alice's customer", &[]).await;
    member(&server, "ingest", &bobs_group, "m2", "JOINED", Some(&alices_contact)).await;
    crate::support::hang_guard("bob's feed", async {
        // Bob's feed starts at the ledger's beginning: the policy first.
        for _ in 0..head {
            let event = crate::api::next_payload(&mut bobs).await;
            assert_eq!(event["ledgerEvents"]["type"], "PolicyChanged", "{event}");
        }
        let next = crate::api::next_payload(&mut bobs).await;
        assert_eq!(next["ledgerEvents"]["stream"], format!("group-{bobs_group}"), "{next}");
        assert_eq!(next["ledgerEvents"]["type"], "GroupCreated");
        let joined = crate::api::next_payload(&mut bobs).await;
        assert_eq!(joined["ledgerEvents"]["type"], "GroupMemberJoined", "{joined}");
        assert_eq!(
            joined["ledgerEvents"]["payload"],
            json!({ "member": "m2" }),
            "alice's contact stays hers"
        );
    })
    .await;
}

#[tokio::test]
async fn a_group_at_a_past_moment_is_folded_again_from_its_own_events() {
    let server = TestServer::start().await;
    let group = create(&server, "alice", "Then and now").await;
    member(&server, "alice", &group, "m1", "JOINED", None).await;
    let then = server.at(60);
    server.clock.advance_millis(3_600_000);
    member(&server, "alice", &group, "m2", "JOINED", None).await;
    post(&server, "alice", &group, "CONTENT").await;
    let seen = server
        .ok(
            "alice",
            "query($id: UUID!, $then: DateTime) { group(id: $id) {
                then: health(at: $then) { members postsToday }
                now: health { members postsToday } } }",
            json!({ "id": group, "then": then }),
        )
        .await;
    assert_eq!(
        seen["group"]["then"],
        json!({ "members": 1, "postsToday": 0 }),
        "{seen}"
    );
    assert_eq!(seen["group"]["now"], json!({ "members": 2, "postsToday": 1 }));
    // Another owner's group is not there at any moment.
    assert_eq!(
        server
            .code(
                "bob",
                "query($id: UUID!, $then: DateTime) { group(id: $id) { health(at: $then) { members } } }",
                json!({ "id": group, "then": then }),
            )
            .await,
        "NOT_FOUND"
    );
}

#[tokio::test]
async fn a_contacts_history_names_only_the_groups_its_reader_may_see() {
    let server = TestServer::start().await;
    let alices_contact = server.register("alice", "alice", "Alice's customer", &[]).await;
    let bobs_group = create(&server, "bob", "Bob's").await;
    // A tool links a member of bob's group to alice's contact.
    member(&server, "ingest", &bobs_group, "m1", "JOINED", Some(&alices_contact)).await;
    member(&server, "ingest", &bobs_group, "m1", "SPOKE", None).await;
    member(&server, "ingest", &bobs_group, "m1", "LEFT", None).await;
    let history = "query($id: UUID!) { contact(id: $id) { timeline(first: 10) { edges { node { type payload } } } } }";
    let signals = |data: &Value| -> Vec<Value> {
        data["contact"]["timeline"]["edges"]
            .as_array()
            .expect("edges")
            .iter()
            .map(|edge| edge["node"].clone())
            .filter(|node| node["type"].as_str().is_some_and(|kind| kind.contains("Group")))
            .collect()
    };
    let alices = signals(&server.ok("alice", history, json!({ "id": alices_contact })).await);
    assert_eq!(
        alices,
        [
            json!({ "type": "ContactSpokeInGroup", "payload": {} }),
            json!({ "type": "ContactLeftGroup", "payload": { "afterPost": false } }),
        ],
        "bob's group stays his"
    );
    let managers = signals(&server.ok("manager", history, json!({ "id": alices_contact })).await);
    assert_eq!(managers.len(), 2);
    assert!(
        managers
            .iter()
            .all(|node| node["payload"]["groupId"] == json!(bobs_group)),
        "a manager sees every group: {managers:?}"
    );

    let follow = "subscription($id: UUID!) { ledgerEvents(contactId: $id) { type payload } }";
    let mut feed = server.subscribe("alice", follow, json!({ "id": alices_contact })).await;
    crate::support::hang_guard("alice's feed", async {
        loop {
            let event = crate::api::next_payload(&mut feed).await;
            if event["ledgerEvents"]["type"] == "ContactSpokeInGroup" {
                assert_eq!(event["ledgerEvents"]["payload"], json!({}), "{event}");
                break;
            }
        }
    })
    .await;
}
