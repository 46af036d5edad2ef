//! The command line end to end: the real binary on temporary ledgers,
//! checking what it prints (tables and `--json`) and its exit codes (0 yes,
//! 1 no, 2 error): check, timeline, replay, verify (on a tampered copy),
//! import (good, duplicate and malformed lines), export and round trip,
//! tokens, help; and the demo's stories.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use serde_json::Value;

struct Cli {
    dir: tempfile::TempDir,
}

impl Cli {
    fn new() -> Self {
        Cli {
            dir: tempfile::tempdir().expect("dir"),
        }
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("rapport.db")
    }

    fn file(&self, name: &str, content: &str) -> PathBuf {
        let path = self.dir.path().join(name);
        std::fs::write(&path, content).expect("write");
        path
    }

    fn run_on(&self, ledger: &Path, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
            // The words are English unless a test asks for another language.
            .env_remove("LC_ALL")
            .env_remove("LC_MESSAGES")
            .env_remove("LANG")
            .arg("--store")
            .arg(ledger)
            .args(args)
            .output()
            .expect("run rapport")
    }

    fn run(&self, args: &[&str]) -> Output {
        self.run_on(&self.ledger(), args)
    }

    fn json(&self, args: &[&str], code: i32) -> Value {
        let mut with_json = vec!["--json"];
        with_json.extend_from_slice(args);
        let output = self.run(&with_json);
        assert_eq!(
            output.status.code(),
            Some(code),
            "{args:?}: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        serde_json::from_slice(&output.stdout)
            .unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {}", text(&output)))
    }
}

fn text(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The stable code of the JSON error a `--json` run printed on stderr.
fn error_code(output: &Output) -> String {
    let error: Value = serde_json::from_slice(&output.stderr).unwrap_or_else(|e| {
        panic!(
            "stderr is not one JSON document ({e}): {}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    error["error"]["code"].as_str().expect("a code").to_owned()
}

/// Three contacts with a week of history around 2026-03-02 (a Monday):
/// Wang Fang chats and replies; Qian Wei is a VIP; Sun Li deleted us.
const HISTORY: &str = r#"{"kind":"contact","id":"00000000-0000-0000-0000-00000000000a","displayName":"Wang Fang","phone":"+86 138 0000 0001","owner":"alice","primaryChannel":"WECHAT","registeredAt":"2026-01-05T02:00:00Z"}
{"kind":"contact","id":"00000000-0000-0000-0000-00000000000b","displayName":"Qian Wei","wechatId":"wx_qian","owner":"bob","tags":["vip"],"registeredAt":"2026-01-05T02:00:00Z"}
{"kind":"contact","id":"00000000-0000-0000-0000-00000000000c","displayName":"Sun Li","email":"sun@example.com","owner":"alice","registeredAt":"2026-01-05T02:00:00Z"}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"TouchRecorded","occurredAt":"2026-02-23T03:00:00Z","payload":{"mode":"ONE_TO_ONE","channel":"WECHAT","sender":"alice","authorization":{"external":{"source":"test"}}}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ReplyReceived","occurredAt":"2026-02-23T12:00:00Z","payload":{"channel":"WECHAT"}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"TouchRecorded","occurredAt":"2026-02-26T03:00:00Z","payload":{"mode":"ONE_TO_ONE","channel":"WECHAT","sender":"alice","authorization":{"external":{"source":"test"}}}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ReplyReceived","occurredAt":"2026-02-26T12:00:00Z","payload":{"channel":"WECHAT"}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000b","type":"ReplyReceived","occurredAt":"2026-02-24T12:00:00Z","payload":{"channel":"WECHAT"}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000c","type":"TouchRecorded","occurredAt":"2026-02-28T02:00:00Z","payload":{"mode":"MASS","channel":"WECHAT","sender":"marketing","authorization":{"external":{"source":"bulk"}}}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000c","type":"ContactDeletedUs","occurredAt":"2026-02-28T13:00:00Z","payload":{"channel":"WECHAT"}}
"#;
const MONDAY_MORNING: &str = "2026-03-02T10:00:00+08:00";

fn with_history() -> Cli {
    let cli = Cli::new();
    let file = cli.file("history.jsonl", HISTORY);
    let summary = cli.json(&["import", file.to_str().expect("path")], 0);
    assert_eq!(summary["imported"], 10, "{summary}");
    assert_eq!(
        cli.json(&["ledger"], 0)["eventCount"],
        11,
        "the default policy comes first, then the ten lines"
    );
    cli
}

#[test]
fn check_answers_yes_no_and_refuses_to_guess() {
    let cli = with_history();
    let allowed = cli.json(
        &["check", "Wang Fang", "--mode", "one-to-one", "--at", MONDAY_MORNING],
        0,
    );
    assert_eq!(allowed["verdict"], "ALLOW");
    assert_eq!(allowed["components"].as_array().expect("components").len(), 8);
    let vip = cli.json(&["check", "wx_qian", "--mode", "mass", "--at", MONDAY_MORNING], 1);
    assert_eq!(vip["verdict"], "ROUTE_ONE_TO_ONE");
    assert!(vip["reasons"].to_string().contains("HIGH_VALUE_CONTACT"), "{vip}");
    let deleted = cli.json(&["check", "sun@example.com", "--at", MONDAY_MORNING], 1);
    assert_eq!(deleted["verdict"], "DENY");
    assert_eq!(deleted["band"], "LOST");

    let table = cli.run(&["check", "00000000-0000-0000-0000-00000000000b", "--at", MONDAY_MORNING]);
    assert_eq!(table.status.code(), Some(1));
    assert!(text(&table).contains("HIGH_VALUE_CONTACT"), "{}", text(&table));

    let ambiguous = cli.run(&["check", "an"]);
    assert_eq!(ambiguous.status.code(), Some(2));
    let unknown = cli.run(&["check", "Nobody At All"]);
    assert_eq!(unknown.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&unknown.stderr).contains("a contact matching 'Nobody At All' was not found"));
    let bad_time = cli.run(&["check", "Wang Fang", "--at", "tomorrow-ish"]);
    assert_eq!(bad_time.status.code(), Some(2));
}

#[test]
fn timeline_prints_each_event_with_the_score_after_it() {
    let cli = with_history();
    let timeline = cli.json(&["timeline", "Wang Fang"], 0);
    let lines = timeline["events"].as_array().expect("events");
    assert_eq!(timeline["timeZone"], "Asia/Shanghai");
    assert_eq!(timeline["nextAfter"], Value::Null, "one page holds them all");
    let types: Vec<&str> = lines.iter().map(|line| line["type"].as_str().expect("type")).collect();
    assert_eq!(
        types,
        [
            "ContactRegistered",
            "TouchRecorded",
            "ReplyReceived",
            "TouchRecorded",
            "ReplyReceived"
        ]
    );
    assert_eq!(lines[0]["score"], 0);
    assert!(
        lines[2]["score"].as_i64() > lines[1]["score"].as_i64(),
        "a reply raises the score"
    );
    let table = text(&cli.run(&["timeline", "Wang Fang"]));
    assert_eq!(table.lines().count(), 2 + 5, "{table}");
    assert!(
        table.contains("2026-02-23 11:00  2026-02-23T03:00:00Z"),
        "local time beside UTC: {table}"
    );
}

#[test]
fn timeline_pages_after_a_version_and_from_a_moment() {
    let cli = with_history();
    let first = cli.json(&["timeline", "Wang Fang", "--limit", "2"], 0);
    let versions = |page: &Value| -> Vec<i64> {
        page["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|event| event["version"].as_i64().expect("version"))
            .collect()
    };
    assert_eq!(versions(&first), [0, 1]);
    assert_eq!(first["nextAfter"], 1);
    let second = cli.json(&["timeline", "Wang Fang", "--after", "1", "--limit", "2"], 0);
    assert_eq!(versions(&second), [2, 3]);
    let last = cli.json(&["timeline", "Wang Fang", "--after", "3"], 0);
    assert_eq!(versions(&last), [4]);
    assert_eq!(last["nextAfter"], Value::Null);
    // A local date is midnight on the contact's clock (UTC+8).
    let from_moment = cli.json(&["timeline", "Wang Fang", "--since", "2026-02-26"], 0);
    assert_eq!(versions(&from_moment), [3, 4]);
    let table = text(&cli.run(&["timeline", "Wang Fang", "--limit", "2"]));
    assert!(table.ends_with("--after 1\n"), "the page says how to go on: {table}");
    // A reply recorded late but dated in January stays off a page that
    // starts in February, on the second page too.
    let manager = cli.token("manager", "mia");
    let late = cli.record(&manager, &["reply", "Wang Fang", "--at", "2026-01-10T10:00"]);
    assert_eq!(late.status.code(), Some(0));
    let page_one = cli.json(&["timeline", "Wang Fang", "--since", "2026-02-26", "--limit", "1"], 0);
    assert_eq!(versions(&page_one), [3]);
    let page_two = cli.json(&["timeline", "Wang Fang", "--since", "2026-02-26", "--after", "3"], 0);
    assert_eq!(versions(&page_two), [4], "the backdated version 5 is not shown");
    let table = text(&cli.run(&["timeline", "Wang Fang", "--since", "2026-02-26", "--limit", "1"]));
    assert!(table.ends_with("--since 2026-02-26 --after 3\n"), "{table}");
    let too_many = cli.run(&["--json", "timeline", "Wang Fang", "--limit", "20000"]);
    assert_eq!(too_many.status.code(), Some(2));
    assert_eq!(error_code(&too_many), "LIMIT_EXCEEDED");
}

#[test]
fn replay_shows_what_was_known_before_a_deletion_and_the_difference() {
    let cli = with_history();
    let timeline = cli.json(&["timeline", "Sun Li"], 0);
    let deletion = timeline["events"]
        .as_array()
        .and_then(|events| events.last())
        .expect("events")
        .clone();
    assert_eq!(deletion["type"], "ContactDeletedUs");
    let deleted_at: u64 = deletion["position"]
        .as_str()
        .expect("position")
        .parse()
        .expect("number");
    let before = (deleted_at - 1).to_string();
    let report = cli.json(
        &[
            "replay",
            "--position",
            &before,
            "Sun Li",
            "--diff",
            &deleted_at.to_string(),
        ],
        0,
    );
    assert_eq!(report["asOf"]["position"], before.as_str());
    assert_eq!(report["asOf"]["summary"]["policyVersion"], 1);
    assert_ne!(report["asOf"]["contact"]["oneToOne"]["verdict"], "DENY");
    assert_eq!(report["other"]["contact"]["oneToOne"]["verdict"], "DENY");
    let table = text(&cli.run(&["replay", "--position", &before, "--diff", &deleted_at.to_string()]));
    assert!(table.contains("mass verdicts that changed: 1"), "{table}");
    // Business time: nothing had happened by 2000, although all of it is known.
    let early = cli.json(&["replay", "--as-of", "2000-01-01"], 0);
    assert_eq!(early["asOf"]["summary"]["contacts"], 0, "{early}");
    assert_eq!(early["asOf"]["position"], "11", "{early}");
    // Knowledge: nothing had been recorded by 2000.
    let unknown = cli.json(&["replay", "--known-at", "2000-01-01T00:00:00Z"], 0);
    assert_eq!(unknown["asOf"]["position"], Value::Null, "{unknown}");
    assert_eq!(cli.run(&["replay"]).status.code(), Some(2));
    assert_eq!(cli.run(&["replay", "--position", "999"]).status.code(), Some(2));
}

#[test]
fn check_at_a_past_moment_counts_only_what_had_happened_by_then() {
    let cli = with_history();
    // Sun Li deleted us on 28 February at 21:00 their time (13:00 UTC).
    let before = cli.json(
        &["check", "Sun Li", "--mode", "one-to-one", "--at", "2026-02-27T11:00"],
        0,
    );
    assert_eq!(before["verdict"], "ALLOW", "{before}");
    assert!(
        before["atNote"]
            .as_str()
            .expect("note")
            .contains("their local time (Asia/Shanghai)"),
        "{before}"
    );
    assert_eq!(before["at"], "2026-02-27T03:00:00.000Z", "{before}");
    let after = cli.json(
        &[
            "check",
            "Sun Li",
            "--mode",
            "one-to-one",
            "--at",
            "2026-03-01T11:00:00+08:00",
        ],
        1,
    );
    assert_eq!(after["verdict"], "DENY", "{after}");
    // Knowledge and business time combine: before the deletion was recorded.
    let timeline = cli.json(&["timeline", "Sun Li"], 0);
    let deletion = timeline["events"]
        .as_array()
        .and_then(|events| events.last())
        .expect("events")
        .clone();
    let recorded: u64 = deletion["position"]
        .as_str()
        .expect("position")
        .parse()
        .expect("number");
    let not_known = cli.json(
        &[
            "check",
            "Sun Li",
            "--mode",
            "one-to-one",
            "--at",
            "2026-03-01T11:00:00+08:00",
            "--position",
            &(recorded - 1).to_string(),
        ],
        0,
    );
    assert_eq!(not_known["verdict"], "ALLOW", "{not_known}");
}

#[test]
fn verify_passes_then_catches_a_tampered_copy_and_truncation() {
    let cli = with_history();
    let intact = cli.json(&["verify"], 0);
    assert_eq!(intact["intact"], true);
    let digest = intact["digest"].as_str().expect("digest").to_owned();
    let copy = cli.dir.path().join("tampered.db");
    std::fs::copy(cli.ledger(), &copy).expect("copy");
    let connection = rusqlite::Connection::open(&copy).expect("open");
    connection
        .execute_batch("DROP TRIGGER events_are_never_updated")
        .expect("drop guard");
    let edited = connection
        .execute("UPDATE events SET payload = CAST('{\"channel\":\"SMS\"}' AS BLOB) WHERE event_type = 'ReplyReceived' AND position = 6", [])
        .expect("tamper");
    assert_eq!(edited, 1, "the test must tamper with a reply");
    drop(connection);
    let tampered = cli.run_on(&copy, &["verify"]);
    assert_eq!(tampered.status.code(), Some(1));
    assert!(
        text(&tampered).contains("TAMPERED") && text(&tampered).contains("position 6"),
        "{}",
        text(&tampered)
    );

    let truncated = cli.dir.path().join("truncated.db");
    std::fs::copy(cli.ledger(), &truncated).expect("copy");
    let connection = rusqlite::Connection::open(&truncated).expect("open");
    connection
        .execute_batch("DROP TRIGGER events_are_never_deleted; DELETE FROM events WHERE position > 8")
        .expect("truncate");
    drop(connection);
    assert_eq!(
        cli.run_on(&truncated, &["verify"]).status.code(),
        Some(0),
        "a clean cut leaves no inner trace"
    );
    let exposed = cli.run_on(&truncated, &["verify", "--digest", &digest]);
    assert_eq!(exposed.status.code(), Some(1));
    assert!(text(&exposed).contains("truncated"), "{}", text(&exposed));
}

#[test]
fn import_keeps_good_lines_skips_duplicates_and_reports_bad_ones() {
    let cli = Cli::new();
    let csv = cli.file(
        "contacts.csv",
        "display_name,phone,owner,primary_channel,tags\n\
         Ma Yun,+86 138 1111 2222,alice,WECHAT,vip;returning\n\
         Ma Yun,+86 138 1111 2222,alice,WECHAT,vip;returning\n\
         Lei Jun,+86 138 3333 4444,bob,PIGEON,\n\
         \"Dong Mingzhu,+86 138 5555 6666,alice\n\
         ,,alice,SMS,\n\
         Zhang Yong,+86 138 7777 8888,dana,SMS,\n",
    );
    let path = csv.to_str().expect("path");
    let first = cli.json(&["import", path], 1);
    assert_eq!(first["imported"], 2, "{first}");
    assert_eq!(first["duplicates"], 1, "{first}");
    let rejected: Vec<i64> = first["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["line"].as_i64().expect("line"))
        .collect();
    assert_eq!(rejected, [4, 5, 6]);
    assert!(
        first["rejected"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("PIGEON")
    );
    let again = cli.json(&["import", path], 1);
    assert_eq!(
        (again["imported"].as_i64(), again["duplicates"].as_i64()),
        (Some(0), Some(3))
    );
    let table = text(&cli.run(&["ledger"]));
    assert!(table.contains("events     3"), "policy + two contacts: {table}");
    let bad_format = cli.run(&["import", cli.file("contacts.txt", "x").to_str().expect("path")]);
    assert_eq!(bad_format.status.code(), Some(2));
}

#[test]
fn an_import_larger_than_a_chunk_counts_every_line_once_across_chunks() {
    const CONTACTS: usize = 9_000;
    let cli = Cli::new();
    let mut csv = String::from("display_name,phone,owner,primary_channel,tags\n");
    for n in 0..CONTACTS {
        csv.push_str(&format!(
            "Customer {n},+86 138 {:04} {:04},alice,WECHAT,\n",
            n / 10_000,
            n % 10_000
        ));
    }
    // In a later chunk than its twin, which is still being written as
    // this one is read.
    csv.push_str("Customer 0,+86 138 0000 0000,alice,WECHAT,\n");
    csv.push_str(",,alice,SMS,\n");
    let path = cli.file("many.csv", &csv);
    let summary = cli.json(&["import", path.to_str().expect("path")], 1);
    assert_eq!(summary["imported"], CONTACTS, "{summary}");
    assert_eq!(summary["duplicates"], 1, "{summary}");
    assert_eq!(summary["rejected"].as_array().map(Vec::len), Some(1), "{summary}");
    assert_eq!(summary["rejected"][0]["line"], CONTACTS + 3, "{summary}");
    assert_eq!(
        cli.event_count(),
        CONTACTS as i64 + 1,
        "the policy and each contact once"
    );
}

#[test]
fn import_rejects_facts_for_contacts_never_registered_and_dates_in_the_future() {
    let cli = Cli::new();
    let file = cli.file(
        "orphans.jsonl",
        r#"{"kind":"contact","id":"00000000-0000-0000-0000-00000000000a","displayName":"Wang Fang","owner":"alice","registeredAt":"2026-01-05T02:00:00Z"}
{"kind":"event","contactId":"00000000-0000-0000-0000-0000000000ff","type":"ReplyReceived","occurredAt":"2026-02-23T12:00:00Z","payload":{"channel":"WECHAT"}}
{"kind":"event","contactId":"00000000-0000-0000-0000-0000000000fe","version":0,"type":"ConsentGranted","occurredAt":"2026-02-23T12:00:00Z","payload":{}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ConsentGranted","occurredAt":"9999-01-01T00:00:00Z","payload":{}}
{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ReplyReceived","occurredAt":"2026-02-23T12:00:00Z","payload":{"channel":"WECHAT"}}
"#,
    );
    let summary = cli.json(&["import", file.to_str().expect("path")], 1);
    assert_eq!(summary["imported"], 2, "{summary}");
    let rejected: Vec<i64> = summary["rejected"]
        .as_array()
        .expect("rejected")
        .iter()
        .map(|r| r["line"].as_i64().expect("line"))
        .collect();
    assert_eq!(rejected, [2, 3, 4], "{summary}");
    assert!(
        summary["rejected"][0]["reason"]
            .as_str()
            .expect("reason")
            .contains("never registered"),
        "{summary}"
    );
    // The policy, the contact and its reply: no orphan stream.
    assert_eq!(cli.json(&["ledger"], 0)["eventCount"], 3);
    assert_eq!(cli.run(&["verify"]).status.code(), Some(0));
}

#[test]
fn an_export_is_verified_against_a_digest_saved_earlier() {
    let cli = with_history();
    let saved = cli.json(&["verify"], 0)["digest"].as_str().expect("digest").to_owned();
    // More history after the digest was saved: the export still reaches it.
    let more = cli.file(
        "more.jsonl",
        r#"{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ReplyReceived","occurredAt":"2026-03-03T12:00:00Z","payload":{"channel":"WECHAT"}}
"#,
    );
    cli.json(&["import", more.to_str().expect("path")], 0);
    let export = cli.run(&["export"]);
    assert_eq!(export.status.code(), Some(0));
    let file = cli.file("ledger.jsonl", &text(&export));
    let path = file.to_str().expect("path");
    let checked = cli.json(&["verify", "--export", path, "--digest", &saved], 0);
    assert_eq!(checked["intact"], true, "{checked}");
    assert_eq!(checked["eventsChecked"], 12, "{checked}");

    // An edited actor, a dropped line, a cut-off file: each is found.
    let original = text(&export);
    let edited = original.replacen("\"actor\":\"rapport-import\"", "\"actor\":\"mallory\"", 1);
    assert_ne!(edited, original, "the test must edit a line");
    let lines: Vec<&str> = original.lines().collect();
    let dropped = [&lines[..4], &lines[5..]].concat().join("\n");
    let cut = lines[..3].join("\n");
    for (name, content) in [("edited", edited), ("dropped", dropped), ("cut", cut)] {
        let damaged = cli.file(&format!("{name}.jsonl"), &content);
        let report = cli.json(
            &[
                "verify",
                "--export",
                damaged.to_str().expect("path"),
                "--digest",
                &saved,
            ],
            1,
        );
        assert_eq!(report["intact"], false, "{name}: {report}");
    }
    let garbage = cli.file("garbage.jsonl", "not json at all\n");
    let report = cli.json(&["verify", "--export", garbage.to_str().expect("path")], 1);
    assert!(
        report["finding"]["problem"]
            .as_str()
            .expect("problem")
            .contains("line 1"),
        "{report}"
    );
}

#[test]
fn verify_on_an_empty_random_or_cut_file_answers_no_with_what_it_found() {
    let cli = with_history();
    let empty = cli.file("empty.db", "");
    let random = cli.dir.path().join("random.db");
    std::fs::write(&random, (0..8_192).map(|n| (n * 7919 % 251) as u8).collect::<Vec<u8>>()).expect("write");
    let cut = cli.dir.path().join("cut.db");
    let whole = std::fs::read(cli.ledger()).expect("read");
    std::fs::write(&cut, &whole[..whole.len().min(4_096 + 100)]).expect("write");
    for file in [&empty, &random, &cut] {
        let output = cli.run_on(file, &["--json", "verify"]);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{}: {}",
            file.display(),
            String::from_utf8_lossy(&output.stderr)
        );
        let report: Value = serde_json::from_slice(&output.stdout).expect("json");
        assert_eq!(report["intact"], false, "{report}");
        assert!(
            report["finding"]["problem"].as_str().is_some_and(|p| !p.is_empty()),
            "{report}"
        );
    }
    let missing = cli.run_on(&cli.dir.path().join("missing.db"), &["verify"]);
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn read_only_commands_answer_while_a_server_writes_and_import_says_what_to_do() {
    let cli = with_history();
    // The lock a running server holds.
    let writer = rapport_store::SqliteStore::open(cli.ledger()).expect("open for writing");
    assert_eq!(cli.json(&["ledger"], 0)["eventCount"], 11);
    let file = cli.file("one.jsonl", HISTORY.lines().next().expect("line"));
    let import = cli.run(&["import", file.to_str().expect("path")]);
    assert_eq!(import.status.code(), Some(2));
    let message = String::from_utf8_lossy(&import.stderr);
    assert!(
        message.contains("stop `rapport serve`") && message.contains("ingestEvents"),
        "{message}"
    );
    drop(writer);
}

#[test]
fn a_closed_pipe_ends_the_output_quietly() {
    let cli = Cli::new();
    let lines: String = (0..3_000)
        .map(|n| format!("{{\"kind\":\"contact\",\"displayName\":\"Customer {n}\",\"phone\":\"+86 139 {n:08}\",\"owner\":\"alice\"}}\n"))
        .collect();
    let file = cli.file("many.jsonl", &lines);
    cli.json(&["import", file.to_str().expect("path")], 0);
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
        .arg("--store")
        .arg(cli.ledger())
        .arg("export")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let mut stdout = child.stdout.take().expect("stdout");
    let mut first = [0u8; 64];
    std::io::Read::read_exact(&mut stdout, &mut first).expect("the first bytes");
    drop(stdout);
    let output = child.wait_with_output().expect("wait");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("panicked") && !stderr.contains("Broken pipe"),
        "{stderr}"
    );
}

#[test]
fn a_phone_number_is_found_in_any_format() {
    let cli = with_history();
    for written in ["+8613800000001", "+86 138-0000-0001", "138 0000 0001"] {
        let answer = cli.json(
            &["check", written, "--mode", "one-to-one", "--at", "2026-03-02T10:00"],
            0,
        );
        assert_eq!(answer["name"], "Wang Fang", "{written}: {answer}");
    }
}

#[test]
fn export_then_import_rebuilds_an_identical_ledger() {
    let cli = with_history();
    let sealed = text(&cli.run(&["export"]));
    assert!(sealed.contains("\"sealedPii\""), "{sealed}");
    assert!(
        !sealed.contains("+86 138 0000 0001") && !sealed.contains("Wang Fang"),
        "an export keeps personal data sealed unless asked"
    );
    let sealed_file = cli.file("sealed.jsonl", &sealed);
    let elsewhere = cli.dir.path().join("elsewhere.db");
    let refused = cli.run_on(&elsewhere, &["--json", "import", sealed_file.to_str().expect("path")]);
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("--with-personal-data"),
        "sealed personal data is refused with the way to move it, never dropped in silence"
    );

    let exported = cli.run(&["export", "--with-personal-data"]);
    assert_eq!(exported.status.code(), Some(0));
    let file = cli.file("export.jsonl", &text(&exported));
    let copy = cli.dir.path().join("copy.db");
    let imported = cli.run_on(&copy, &["--json", "import", file.to_str().expect("path")]);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );
    let again = cli.run_on(&copy, &["export", "--with-personal-data"]);
    let strip = |output: &str| -> Vec<Value> {
        output
            .lines()
            .map(|line| {
                let mut event: Value = serde_json::from_str(line).expect("json");
                // The copy recorded everything anew: its times, and so its
                // hashes and digests (the salt of personal data too), differ.
                let fields = event.as_object_mut().expect("object");
                for recorded in ["recordedAt", "hash", "ledgerDigest", "piiDigest"] {
                    fields.remove(recorded);
                }
                event
            })
            .collect()
    };
    assert_eq!(strip(&text(&again)), strip(&text(&exported)));
    let one = text(&cli.run(&["export", "Wang Fang"]));
    assert_eq!(one.lines().count(), 5);
    assert!(
        one.contains("+86 138 0000 0001"),
        "a data-access export carries the personal data"
    );
    assert!(!one.contains("Qian Wei"));
}

#[test]
fn tokens_are_created_listed_and_revoked() {
    let cli = Cli::new();
    let created = cli.json(&["token", "create", "--role", "sales", "--name", "alice"], 0);
    assert!(created["token"].as_str().expect("token").starts_with("rpt_"));
    let listed = cli.json(&["token", "list"], 0);
    assert_eq!(listed[0]["name"], "alice");
    assert!(
        !listed.to_string().contains(created["token"].as_str().expect("token")),
        "list shows a secret"
    );
    assert_eq!(cli.json(&["token", "revoke", "alice"], 0)["revoked"], 1);
    assert_eq!(cli.json(&["token", "revoke", "alice"], 1)["revoked"], 0);
    // A name of digits is a name; an id is given as --id.
    cli.json(&["token", "create", "--role", "sales", "--name", "1001"], 0);
    let listed = cli.json(&["token", "list"], 0);
    let id = listed
        .as_array()
        .and_then(|tokens| tokens.iter().find(|t| t["name"] == "1001"))
        .map(|token| token["id"].to_string())
        .expect("listed");
    assert_eq!(cli.json(&["token", "revoke", "1001"], 0)["revoked"], 1);
    assert_eq!(
        cli.json(&["token", "revoke", "--id", &id], 1)["revoked"],
        0,
        "already revoked"
    );
    assert_eq!(
        cli.run(&["token", "create", "--role", "emperor", "--name", "x"])
            .status
            .code(),
        Some(2)
    );
}

#[test]
fn every_command_explains_itself_with_an_example() {
    let cli = Cli::new();
    let help = text(&cli.run(&["--help"]));
    let commands = [
        "serve",
        "check",
        "timeline",
        "replay",
        "verify",
        "import",
        "export",
        "token",
        "ledger",
        "contacts",
        "violations",
        "record",
        "erase",
        "retention",
    ];
    for command in commands {
        assert!(help.contains(command), "--help does not list {command}");
        let own = text(&cli.run(&[command, "--help"]));
        assert!(own.contains("Example:"), "{command} --help has no example:\n{own}");
    }
    for command in ["create", "list", "revoke"] {
        assert!(text(&cli.run(&["token", command, "--help"])).contains("Example:"));
    }
}

/// The tour runs on whatever day the reader clones: each story must hold
/// on every day of the week.
#[tokio::test]
async fn the_demo_tells_the_stories_of_the_readme_tour_on_any_day() {
    use rapport_domain::{SendMode, Timestamp, Verdict};
    for day in 0..7 {
        // 03:00 UTC is 11:00 in Shanghai: inside the active hours.
        let now = Timestamp::from_millis_unchecked(1_795_230_000_000 + day * 86_400_000);
        let dir = tempfile::tempdir().expect("dir");
        let store = rapport_app::ledger::open_for_writing(
            &dir.path().join("rapport.db"),
            "test",
            rapport_app::clock::system_clock(),
        )
        .await
        .expect("open");
        let report = rapport_cli::demo::populate(&store, 60, 20_261_121, now)
            .await
            .expect("demo")
            .expect("empty ledger");
        assert_eq!(report.contacts, 60);
        assert!(
            rapport_cli::demo::populate(&store, 60, 20_261_121, now)
                .await
                .expect("again")
                .is_none(),
            "reused"
        );
        let model = rapport_app::read_model::rebuild_read_model(&store, None)
            .await
            .expect("rebuild");
        let verdict = |name: &str, mode, at| {
            let id = rapport_cli::commands::inspect::resolve(&model, name).expect("a story contact");
            model.projection.gate(id, mode, None, at).expect("contact").gate.verdict
        };
        let late = now.plus_millis(11 * 3_600_000); // 22:00 in Shanghai
        assert_eq!(verdict("Zhao Min", SendMode::Mass, now), Verdict::Allow, "{now}");
        assert_eq!(
            verdict("Qian Wei", SendMode::Mass, now),
            Verdict::RouteOneToOne,
            "{now}"
        );
        assert_eq!(verdict("Sun Li", SendMode::Mass, now), Verdict::Deny, "{now}");
        assert_eq!(verdict("Li Na", SendMode::Mass, now), Verdict::Deny, "{now}");
        assert_eq!(verdict("Li Na", SendMode::OneToOne, now), Verdict::Allow, "{now}");
        assert_eq!(
            verdict("Zhou Jie", SendMode::Mass, now),
            Verdict::RouteOneToOne,
            "{now}"
        );
        assert_eq!(verdict("Wu Gang", SendMode::OneToOne, late), Verdict::Defer, "{now}");
        assert!(
            !model.projection.violations().is_empty(),
            "the bulk tool's sends show as violations"
        );
        demo_history_matches_its_stories(&store, &model, now).await;
        demo_groups_tell_their_stories(&model, now);
    }
}

/// The README's groups: the calm one takes a post now, the new one's
/// fourth post of the day waits, the flooded one alerts and is held.
fn demo_groups_tell_their_stories(model: &rapport_app::read_model::ReadModel, now: rapport_domain::Timestamp) {
    use rapport_app::group::{decide, health};
    use rapport_domain::{PostKind, ReasonCode, Verdict};
    let group = |n| {
        model
            .projection
            .group(rapport_cli::demo::demo_group_id(n))
            .expect("a demo group")
    };
    let calm = decide(model, group(0), PostKind::Content, now);
    assert_eq!(calm.verdict, Verdict::Allow, "{now}: {calm:?}");
    let calm_health = health(model, group(0), now);
    assert!(
        !calm_health.leave_rate_alert && !calm_health.promotion_share_alert,
        "{calm_health:?}"
    );
    assert!(calm_health.active_members > 0);
    let fourth = decide(model, group(1), PostKind::Content, now);
    assert_eq!(fourth.verdict, Verdict::Defer, "{now}");
    assert_eq!(fourth.reasons[0].code, ReasonCode::NewGroupPostCap);
    assert_eq!(fourth.posts_today, 3);
    let flooded = health(model, group(2), now);
    assert!(
        flooded.leave_rate_alert && flooded.promotion_share_alert,
        "{now}: {flooded:?}"
    );
    let held = decide(model, group(2), PostKind::Content, now);
    assert!(
        held.reasons
            .iter()
            .any(|reason| reason.code == ReasonCode::MembersLeaving),
        "{held:?}"
    );
}

/// The README's campaign pages: the invitation sent through the gate
/// broke no rule and cost nobody more than its holdout lost; the bulk
/// tool's blast broke the gate nearly everywhere and raised the loss alert.
#[tokio::test]
async fn the_demo_campaigns_show_a_send_through_the_gate_beside_a_blast() {
    for day in 0..7 {
        let now = rapport_domain::Timestamp::from_millis_unchecked(1_795_230_000_000 + day * 86_400_000);
        demo_campaigns_tell_their_story(now).await;
    }
}

async fn demo_campaigns_tell_their_story(now: rapport_domain::Timestamp) {
    use rapport_domain::Event;
    use rapport_projections::campaigns::Alert;
    use rapport_store::EventStore;
    let dir = tempfile::tempdir().expect("dir");
    let store = rapport_app::ledger::open_for_writing(
        &dir.path().join("rapport.db"),
        "test",
        rapport_app::clock::system_clock(),
    )
    .await
    .expect("open");
    // As many contacts as `rapport serve --demo` writes.
    rapport_cli::demo::populate(&store, 2_000, 20_261_121, now)
        .await
        .expect("demo")
        .expect("empty ledger");
    let model = rapport_app::read_model::rebuild_read_model(&store, None)
        .await
        .expect("rebuild");
    let campaigns = model.projection.campaigns();
    let named = |name: &str| {
        campaigns
            .all()
            .iter()
            .find(|record| record.name.as_deref() == Some(name))
            .unwrap_or_else(|| panic!("no campaign {name} ({now})"))
            .clone()
    };
    let careful = named(rapport_cli::demo::CAREFUL_NAME);
    let reckless = named(rapport_cli::demo::RECKLESS_NAME);

    let judged = careful.at_launch.expect("the gate's judgment is recorded");
    assert!(judged.sent > 0 && judged.held_out > 0, "{judged:?} ({now})");
    assert!(judged.routed_one_to_one > 0 && judged.denied > 0, "{judged:?} ({now})");
    assert_eq!(careful.sent.contacts, judged.sent, "{now}");
    assert_eq!(careful.holdout.contacts, judged.held_out, "{now}");
    let loss_alert = |alerts: Vec<Alert>| alerts.iter().any(|alert| matches!(alert, Alert::Losses { .. }));
    assert!(
        !loss_alert(careful.sent.alerts(&careful.rules)),
        "{:?} ({now})",
        careful.sent
    );
    assert!(reckless.at_launch.is_none(), "another tool sent it");
    assert!(
        loss_alert(reckless.sent.alerts(&reckless.rules)),
        "{:?} ({now})",
        reckless.sent
    );
    assert!(reckless.sent.loss_rate() > careful.sent.loss_rate() + 0.05, "{now}");

    let mut broken = HashMap::new();
    let mut touched = HashMap::new();
    let mut after = None;
    loop {
        let page = store.read_all(after, 10_000).await.expect("read");
        let Some(last) = page.last() else { break };
        after = Some(last.position);
        for event in &page {
            if let Event::TouchRecorded(touch) = &event.event
                && let Some(campaign) = touch.campaign_id
            {
                *touched.entry(campaign).or_insert(0_u32) += 1;
                if model.projection.violation_at(event.position).is_some() {
                    *broken.entry(campaign).or_insert(0_u32) += 1;
                }
            }
        }
    }
    assert_eq!(touched.get(&careful.id), Some(&judged.sent), "{now}");
    assert_eq!(
        broken.get(&careful.id),
        None,
        "a send through the gate broke it ({now})"
    );
    let blast = touched[&reckless.id];
    let blast_broke = broken[&reckless.id];
    assert!(blast_broke * 10 >= blast * 9, "{blast_broke} of {blast} ({now})");
}

/// What the banner and the README say of the demo is what its events hold.
async fn demo_history_matches_its_stories(
    store: &rapport_store::Ledger,
    model: &rapport_app::read_model::ReadModel,
    now: rapport_domain::Timestamp,
) {
    use rapport_domain::{Event, RecordedEvent, SendMode, StreamName, Verdict};
    use rapport_store::EventStore;
    const SHANGHAI_MILLIS: i64 = 8 * 3_600_000;
    let saturday =
        |event: &RecordedEvent| ((event.occurred_at.as_millis() + SHANGHAI_MILLIS) / 86_400_000 + 4) % 7 == 6;
    let history = |name: &str| {
        let id = rapport_cli::commands::inspect::resolve(model, name).expect("a story contact");
        async move {
            let events = store
                .read_stream(StreamName::Contact(id), 0, 10_000)
                .await
                .expect("read");
            (id, events)
        }
    };
    let is_promotion = |event: &RecordedEvent| matches!(&event.event, Event::TouchRecorded(touch) if touch.mode == SendMode::Mass && touch.campaign_id.is_some());
    // Promotions go out on Saturdays, on the contacts' own clock.
    for name in ["Sun Li", "Zhou Jie", "Qian Wei"] {
        let (_, events) = history(name).await;
        let promotions: Vec<&RecordedEvent> = events.iter().filter(|e| is_promotion(e)).collect();
        assert!(!promotions.is_empty(), "{name} got no promotion");
        assert!(
            promotions.iter().all(|e| saturday(e)),
            "{name}: a promotion not on a Saturday ({now})"
        );
    }
    // Zhou Jie ignored exactly the last three mass sends.
    let (_, events) = history("Zhou Jie").await;
    let since_reply: Vec<&RecordedEvent> = events
        .iter()
        .rev()
        .take_while(|e| !matches!(e.event, Event::ReplyReceived(_)))
        .filter(|e| is_promotion(e))
        .collect();
    assert_eq!(since_reply.len(), 3, "Zhou Jie's unanswered mass sends ({now})");
    // Sun Li deleted us after the last Saturday promotion, that same day;
    // just before, the gate was open to a personal chat.
    let (sun_li, events) = history("Sun Li").await;
    let deletion = events.last().expect("events");
    assert!(matches!(deletion.event, Event::ContactDeletedUs(_)), "{now}");
    let promotion = events.iter().rev().find(|e| is_promotion(e)).expect("a promotion");
    assert_eq!(
        (promotion.occurred_at.as_millis() + SHANGHAI_MILLIS) / 86_400_000,
        (deletion.occurred_at.as_millis() + SHANGHAI_MILLIS) / 86_400_000,
        "the deletion follows the promotion the same day"
    );
    // ...and it was the last promotion: Zhou Jie, who gets them all, got none after it.
    let (_, zhou_jie) = history("Zhou Jie").await;
    let last = zhou_jie.iter().rev().find(|e| is_promotion(e)).expect("a promotion");
    assert_eq!(
        (last.occurred_at.as_millis() + SHANGHAI_MILLIS) / 86_400_000,
        (promotion.occurred_at.as_millis() + SHANGHAI_MILLIS) / 86_400_000,
        "Sun Li's was the last promotion ({now})"
    );
    let before = deletion.occurred_at.plus_millis(-60_000);
    let horizon = rapport_projections::Horizon {
        known_at: None,
        occurred_by: Some(before),
    };
    let then = rapport_app::read_model::ReadModel::for_contact(model, &events, horizon);
    let gate = then
        .projection
        .gate(sun_li, SendMode::OneToOne, None, before)
        .expect("registered");
    assert_ne!(gate.gate.verdict, Verdict::Deny, "before the deletion: {:?}", gate.gate);
}

impl Cli {
    /// A token for `name` in `role`, as `rapport token create` prints it.
    fn token(&self, role: &str, name: &str) -> String {
        let created = self.json(&["token", "create", "--role", role, "--name", name], 0);
        created["token"].as_str().expect("token").to_owned()
    }

    fn event_count(&self) -> i64 {
        self.json(&["ledger"], 0)["eventCount"].as_i64().expect("count")
    }

    /// `rapport --json record …` as the holder of `token`.
    fn record(&self, token: &str, args: &[&str]) -> Output {
        let mut all = vec!["--json", "record", "--token", token];
        all.extend_from_slice(args);
        self.run(&all)
    }

    /// `record`, expected to succeed: what it wrote.
    fn recorded(&self, token: &str, args: &[&str]) -> Value {
        let output = self.record(token, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(0), "{args:?}: {stderr}");
        serde_json::from_slice(&output.stdout).expect("one JSON document")
    }
}

#[test]
fn a_salesperson_records_what_happened_in_their_own_chats() {
    let cli = with_history();
    let alice = cli.token("sales", "alice");
    let written = cli.recorded(&alice, &["reply", "Wang Fang", "--at", "2026-03-02T09:30"]);
    assert_eq!(written["contactVersion"], 5);
    assert_eq!(written["position"], "12");
    let timeline = cli.json(&["timeline", "Wang Fang", "--after", "4"], 0);
    let event = &timeline["events"][0];
    assert_eq!(event["type"], "ReplyReceived");
    assert_eq!(event["actor"], "alice", "the write is the token holder's");
    assert_eq!(
        event["occurredAt"], "2026-03-02T01:30:00.000Z",
        "a local time is read on the contact's clock"
    );
    let key = "0190a5f0-0000-7000-8000-000000000001";
    for _ in 0..2 {
        let tagged = cli.record(&alice, &["tag", "Wang Fang", "renewal", "--idempotency-key", key]);
        assert_eq!(tagged.status.code(), Some(0));
    }
    assert_eq!(cli.event_count(), 13, "a retry with the same key records nothing more");
}

#[test]
fn record_refuses_whoever_may_not_write_and_writes_nothing() {
    let cli = with_history();
    let before = cli.event_count();
    let alice = cli.token("sales", "alice");
    // Qian Wei is bob's: to alice it does not exist, by name or by id.
    for contact in ["Qian Wei", "00000000-0000-0000-0000-00000000000b"] {
        let refused = cli.record(&alice, &["reply", contact]);
        assert_eq!(refused.status.code(), Some(2));
        assert_eq!(error_code(&refused), "NOT_FOUND", "{contact}");
    }
    let auditor = cli.token("auditor", "audrey");
    let refused = cli.record(&auditor, &["reply", "Wang Fang"]);
    assert_eq!(error_code(&refused), "FORBIDDEN");
    // Refused for the role before any contact is looked up: no candidates.
    let ambiguous = cli.record(&auditor, &["reply", "an"]);
    assert_eq!(error_code(&ambiguous), "FORBIDDEN");
    let override_by_sales = cli.record(
        &alice,
        &["touch", "Sun Li", "--mode", "mass", "--override", "I know better"],
    );
    assert_eq!(error_code(&override_by_sales), "FORBIDDEN");
    let unknown = cli.record("not-a-token", &["reply", "Wang Fang"]);
    assert_eq!(error_code(&unknown), "UNAUTHENTICATED");
    assert_eq!(cli.event_count(), before, "nothing was written");
}

#[test]
fn a_touch_recorded_by_hand_is_gated_like_the_api_and_an_override_is_a_violation() {
    let cli = with_history();
    let before = cli.event_count();
    let alice = cli.token("sales", "alice");
    // Sun Li deleted us: no send gets through, at any hour.
    let denied = cli.record(&alice, &["touch", "Sun Li", "--mode", "one-to-one"]);
    assert_eq!(denied.status.code(), Some(2));
    assert_eq!(error_code(&denied), "GATE_DENIED");
    assert!(
        String::from_utf8_lossy(&denied.stderr).contains("deleted"),
        "the refusal says why: {}",
        String::from_utf8_lossy(&denied.stderr)
    );
    assert_eq!(cli.event_count(), before, "a refused touch writes nothing");

    let manager = cli.token("manager", "mia");
    let written = cli.recorded(
        &manager,
        &[
            "touch",
            "Sun Li",
            "--mode",
            "one-to-one",
            "--override",
            "she asked us to call",
        ],
    );
    assert_eq!(written["verdict"], "DENY", "the decision it overrode");
    let violations = cli.json(&["violations"], 0);
    let listed = violations["violations"].as_array().expect("violations");
    let overrides: Vec<&Value> = listed.iter().filter(|v| v["overrideReason"] != Value::Null).collect();
    assert_eq!(overrides.len(), 1, "{violations}");
    assert_eq!(overrides[0]["name"], "Sun Li");
    assert_eq!(overrides[0]["overrideReason"], "she asked us to call");
    assert_eq!(overrides[0]["position"], written["position"]);
    let table = text(&cli.run(&["violations", "--contact", "Sun Li"]));
    assert!(table.contains("override: she asked us to call"), "{table}");
}

#[test]
fn record_refuses_bad_input_and_the_tag_limit_with_clear_codes() {
    let cli = Cli::new();
    let tags: Vec<String> = (0..50).map(|n| format!("\"t{n}\"")).collect();
    let file = cli.file(
        "tagged.jsonl",
        &format!(
            "{{\"kind\":\"contact\",\"id\":\"00000000-0000-0000-0000-00000000000d\",\"displayName\":\"Zhou Jie\",\"owner\":\"alice\",\"tags\":[{}],\"registeredAt\":\"2026-01-05T02:00:00Z\"}}\n",
            tags.join(",")
        ),
    );
    cli.json(&["import", file.to_str().expect("path")], 0);
    let before = cli.event_count();
    let alice = cli.token("sales", "alice");
    let full = cli.record(&alice, &["tag", "Zhou Jie", "one-more"]);
    assert_eq!(error_code(&full), "LIMIT_EXCEEDED");
    let channel = cli.record(&alice, &["reply", "Zhou Jie", "--channel", "pigeon"]);
    assert_eq!(error_code(&channel), "BAD_INPUT");
    assert!(String::from_utf8_lossy(&channel.stderr).contains("unknown channel 'pigeon'"));
    let future = cli.record(&alice, &["reply", "Zhou Jie", "--at", "2999-01-01T00:00:00Z"]);
    assert_eq!(error_code(&future), "BAD_INPUT");
    let nobody = cli.record(&alice, &["reply", "Nobody At All"]);
    assert_eq!(error_code(&nobody), "NOT_FOUND");
    assert_eq!(cli.event_count(), before, "nothing was written");
}

#[test]
fn contacts_are_found_by_any_field_filtered_and_paged() {
    let cli = with_history();
    let all = cli.json(&["contacts"], 0);
    let names = |page: &Value| -> Vec<String> {
        page["contacts"]
            .as_array()
            .expect("contacts")
            .iter()
            .map(|contact| contact["name"].as_str().expect("name").to_owned())
            .collect()
    };
    assert_eq!(names(&all), ["Wang Fang", "Qian Wei", "Sun Li"]);
    assert_eq!(
        names(&cli.json(&["contacts", "--owner", "alice"], 0)),
        ["Wang Fang", "Sun Li"]
    );
    assert_eq!(
        names(&cli.json(&["contacts", "138 0000"], 0)),
        ["Wang Fang"],
        "a phone in another format"
    );
    assert_eq!(names(&cli.json(&["contacts", "wx_qian"], 0)), ["Qian Wei"]);
    let first = cli.json(&["contacts", "--limit", "2"], 0);
    assert_eq!(names(&first), ["Wang Fang", "Qian Wei"]);
    let after = first["nextAfter"].as_str().expect("a next page").to_owned();
    let second = cli.json(&["contacts", "--limit", "2", "--after", &after], 0);
    assert_eq!(names(&second), ["Sun Li"]);
    assert_eq!(second["nextAfter"], Value::Null);
    let table = text(&cli.run(&["contacts", "--limit", "2"]));
    assert!(table.contains(&format!("more: add --after {after}")), "{table}");

    let bad_band = cli.run(&["--json", "contacts", "--band", "lukewarm"]);
    assert_eq!(bad_band.status.code(), Some(2));
    assert_eq!(error_code(&bad_band), "BAD_INPUT");
    let too_many = cli.run(&["--json", "contacts", "--limit", "5000"]);
    assert_eq!(error_code(&too_many), "LIMIT_EXCEEDED");
}

#[test]
fn check_shows_the_score_breakdown_only_when_asked_and_no_colour_in_a_pipe() {
    let cli = with_history();
    let plain = text(&cli.run(&["check", "Wang Fang", "--at", MONDAY_MORNING]));
    let verbose = text(&cli.run(&["check", "Wang Fang", "--at", MONDAY_MORNING, "-v"]));
    assert!(verbose.contains("reciprocity"), "-v shows the components: {verbose}");
    assert!(!plain.contains("reciprocity"), "without -v, no breakdown: {plain}");
    assert!(plain.lines().any(|line| line.starts_with("verdict ")), "{plain}");
    assert!(
        !plain.contains('\u{1b}'),
        "no escape codes when stdout is not a terminal"
    );
}

#[test]
fn errors_are_one_json_document_on_stderr_with_a_stable_code() {
    let cli = with_history();
    let missing = cli.run(&["--json", "check", "Nobody At All"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(missing.stdout.is_empty(), "nothing on stdout");
    assert_eq!(error_code(&missing), "NOT_FOUND");
    let plain = cli.run(&["check", "Nobody At All"]);
    assert!(String::from_utf8_lossy(&plain.stderr).starts_with("error: "));
}

#[test]
fn a_campaign_preflight_counts_an_audience_by_verdict_and_lists_one() {
    let cli = with_history();
    let all = cli.json(&["campaign", "preflight"], 0);
    assert_eq!(all["total"], 3, "{all}");
    let sum: i64 = all["verdicts"]
        .as_array()
        .expect("verdicts")
        .iter()
        .map(|count| count["count"].as_i64().expect("count"))
        .sum();
    assert_eq!(sum, 3);
    let denied = cli.json(&["campaign", "preflight", "--show", "deny"], 0);
    let listed = denied["contacts"].as_array().expect("contacts");
    let sun_li = listed.iter().find(|c| c["name"] == "Sun Li").expect("Sun Li is denied");
    assert!(
        sun_li["reasonCodes"].to_string().contains("CONTACT_DELETED_US"),
        "{sun_li}"
    );
    let vips = cli.json(
        &["campaign", "preflight", "--tags", "vip", "--show", "route-one-to-one"],
        0,
    );
    assert_eq!(vips["total"], 1);
    assert_eq!(
        vips["contacts"][0]["name"], "Qian Wei",
        "a VIP gets a personal chat: {vips}"
    );
    let alices = cli.json(&["campaign", "preflight", "--owner", "alice"], 0);
    assert_eq!(alices["total"], 2);

    let file = cli.file(
        "audience.csv",
        "contact\n+86 138-0000-0001\n00000000-0000-0000-0000-00000000000b\n+86 139 9999 9999\n",
    );
    let listed = cli.json(
        &["campaign", "preflight", "--contacts", file.to_str().expect("path")],
        0,
    );
    assert_eq!(
        (listed["total"].as_i64(), listed["unknownContacts"].as_i64()),
        (Some(2), Some(1)),
        "{listed}"
    );
    let table = text(&cli.run(&["campaign", "preflight", "--show", "deny"]));
    assert!(table.contains("DENY") && table.contains("Sun Li"), "{table}");

    let bad_tags = cli.run(&["--json", "campaign", "preflight", "--tags", "vip AND"]);
    assert_eq!(error_code(&bad_tags), "BAD_INPUT");
    assert!(String::from_utf8_lossy(&bad_tags.stderr).contains("character 8"));
    let bad_verdict = cli.run(&["--json", "campaign", "preflight", "--show", "sideways"]);
    assert_eq!(error_code(&bad_verdict), "BAD_INPUT");
    let past = cli.run(&["--json", "campaign", "preflight", "--at", "2020-01-01T00:00:00Z"]);
    assert_eq!(error_code(&past), "BAD_INPUT");
}

/// The `Etc/GMT` zone in which it is about 13:00 now, so that a launch
/// run now falls inside everyone's active hours whenever the tests run.
fn zone_at_lunchtime() -> String {
    use rapport_app::clock::{Clock, SystemClock};
    let utc_hour = SystemClock.now().as_millis().div_euclid(3_600_000).rem_euclid(24);
    let offset = (13 - utc_hour + 36).rem_euclid(24) - 12; // -12..=11 hours east of UTC
    match offset {
        0 => "Etc/UTC".to_owned(),
        // Etc zones count the other way: UTC+5 is Etc/GMT-5.
        east if east > 0 => format!("Etc/GMT-{east}"),
        west => format!("Etc/GMT+{}", -west),
    }
}

/// `contacts` contacts tagged `bulk` who have chatted and replied for six
/// weeks: every one of them may receive a mass send now.
fn engaged_audience(cli: &Cli, contacts: usize) {
    use rapport_app::clock::{Clock, SystemClock};
    let now = SystemClock.now();
    let days_ago = |days: i64| now.plus_millis(-days * 86_400_000).to_rfc3339();
    let zone = zone_at_lunchtime();
    let mut lines = String::new();
    for n in 0..contacts {
        let id = uuid::Uuid::from_u128(0xB000_0000 + n as u128);
        lines.push_str(&format!(
            "{{\"kind\":\"contact\",\"id\":\"{id}\",\"displayName\":\"Customer {n}\",\"owner\":\"alice\",\"tags\":[\"bulk\"],\"timeZone\":\"{zone}\",\"registeredAt\":\"{}\"}}\n",
            days_ago(60)
        ));
        for days in [40, 30, 20, 10] {
            lines.push_str(&format!(
                "{{\"kind\":\"event\",\"contactId\":\"{id}\",\"type\":\"TouchRecorded\",\"occurredAt\":\"{}\",\"payload\":{{\"mode\":\"ONE_TO_ONE\",\"channel\":\"WECHAT\",\"sender\":\"alice\",\"authorization\":{{\"external\":{{\"source\":\"test\"}}}}}}}}\n",
                days_ago(days)
            ));
            lines.push_str(&format!(
                "{{\"kind\":\"event\",\"contactId\":\"{id}\",\"type\":\"ReplyReceived\",\"occurredAt\":\"{}\",\"payload\":{{\"channel\":\"WECHAT\"}}}}\n",
                days_ago(days - 1)
            ));
        }
    }
    let file = cli.file("audience.jsonl", &lines);
    let imported = cli.json(&["import", file.to_str().expect("path")], 0);
    assert_eq!(imported["imported"], contacts * 9, "{imported}");
}

/// How many touches and holdout marks campaign `campaign` holds, by contact stream.
fn campaign_marks(ledger: &Path, campaign: &str) -> HashMap<String, usize> {
    let export = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
        .arg("--store")
        .arg(ledger)
        .arg("export")
        .output()
        .expect("export");
    let mut marks = HashMap::new();
    for line in String::from_utf8_lossy(&export.stdout).lines() {
        let event: Value = serde_json::from_str(line).expect("an export line");
        if event["payload"]["campaignId"] == campaign {
            *marks
                .entry(event["stream"].as_str().unwrap_or_default().to_owned())
                .or_insert(0) += 1;
        }
    }
    marks
}

#[test]
fn a_launch_killed_midway_and_run_again_touches_every_allowed_contact_exactly_once() {
    const CONTACTS: usize = 4_000;
    for attempt in 0..3 {
        let cli = Cli::new();
        engaged_audience(&cli, CONTACTS);
        let preflight = cli.json(&["campaign", "preflight", "--tags", "bulk"], 0);
        assert_eq!(preflight["verdicts"][0]["count"], CONTACTS, "all allowed: {preflight}");
        let manager = cli.token("manager", "mia");
        let key = uuid::Uuid::new_v4().to_string();
        let args = [
            "--json",
            "campaign",
            "launch",
            "--token",
            &manager,
            "--name",
            "Double 11",
            "--tags",
            "bulk",
            "--channel",
            "wechat",
            "--holdout",
            "10",
            "--idempotency-key",
            &key,
        ];
        let before = cli.json(&["ledger"], 0)["eventCount"].as_i64().expect("count");
        let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
            .arg("--store")
            .arg(cli.ledger())
            .args(args)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("launch");
        // Kill it as soon as a chunk of touches has been committed.
        let watcher = rapport_store::SqliteStore::open_with(cli.ledger(), rapport_store::SqliteOptions::read_only())
            .expect("watch the ledger");
        let runtime = tokio::runtime::Runtime::new().expect("runtime");
        let mut finished = false;
        loop {
            let count = runtime
                .block_on(rapport_store::EventStore::head(&watcher))
                .expect("head")
                .event_count as i64;
            if count > before + 1 {
                break;
            }
            if child.try_wait().expect("poll").is_some() {
                finished = true;
                break;
            }
            std::thread::yield_now();
        }
        child.kill().ok();
        child.wait().expect("reap");
        let partial = runtime
            .block_on(rapport_store::EventStore::head(&watcher))
            .expect("head")
            .event_count as i64
            - before;
        drop(watcher);

        let launch = cli.json(&args[1..], 0);
        let campaign = launch["campaignId"].as_str().expect("id").to_owned();
        assert_eq!(
            launch["sent"].as_i64().expect("sent") + launch["heldOut"].as_i64().expect("held"),
            CONTACTS as i64,
            "{launch}"
        );
        let marks = campaign_marks(&cli.ledger(), &campaign);
        assert_eq!(marks.len(), CONTACTS, "nobody is missed");
        assert!(marks.values().all(|count| *count == 1), "nobody is touched twice");
        assert_eq!(
            cli.json(&["ledger"], 0)["eventCount"].as_i64(),
            Some(before + 1 + CONTACTS as i64),
            "the campaign, and one mark per contact"
        );
        let midway = !finished && partial > 1 && partial < 1 + CONTACTS as i64;
        if midway {
            return;
        }
        eprintln!("attempt {attempt}: the launch was not caught midway ({partial} events written); again");
    }
}

#[test]
fn campaign_launch_is_for_managers_and_refuses_bad_input_writing_nothing() {
    let cli = with_history();
    let before = cli.event_count();
    let alice = cli.token("sales", "alice");
    let manager = cli.token("manager", "mia");
    let key = uuid::Uuid::new_v4().to_string();
    let launch = |token: &str, holdout: &str, tags: &str| {
        cli.run(&[
            "--json",
            "campaign",
            "launch",
            "--token",
            token,
            "--name",
            "Spring",
            "--tags",
            tags,
            "--channel",
            "wechat",
            "--holdout",
            holdout,
            "--idempotency-key",
            &key,
        ])
    };
    assert_eq!(error_code(&launch(&alice, "0", "vip")), "FORBIDDEN");
    assert_eq!(error_code(&launch("nobody", "0", "vip")), "UNAUTHENTICATED");
    assert_eq!(error_code(&launch(&manager, "60", "vip")), "BAD_INPUT");
    assert_eq!(error_code(&launch(&manager, "0", "vip AND")), "BAD_INPUT");
    assert_eq!(cli.event_count(), before, "nothing was written");
    let launched = launch(&manager, "0", "vip");
    assert_eq!(
        launched.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&launched.stderr)
    );
    let answer: Value = serde_json::from_slice(&launched.stdout).expect("json");
    assert_eq!(
        answer["oneToOne"][0]["owner"], "bob",
        "the VIP is bob's to write to: {answer}"
    );
    assert_eq!(answer["sent"], 0);
}

#[test]
fn a_campaign_report_says_who_deleted_us_after_the_send() {
    let cli = Cli::new();
    engaged_audience(&cli, 3);
    let manager = cli.token("manager", "mia");
    let key = uuid::Uuid::new_v4().to_string();
    let launched = cli.json(
        &[
            "campaign",
            "launch",
            "--token",
            &manager,
            "--name",
            "Autumn",
            "--tags",
            "bulk",
            "--channel",
            "wechat",
            "--idempotency-key",
            &key,
        ],
        0,
    );
    assert_eq!(launched["sent"], 3, "{launched}");
    let campaign = launched["campaignId"].as_str().expect("id").to_owned();
    let deleted = cli.recorded(&manager, &["deletion", "Customer 0"]);
    assert_eq!(deleted["contactVersion"], 10);

    let report = cli.json(&["campaign", "report", &campaign], 0);
    assert_eq!(report["sent"]["deletedUs"], 1, "{report}");
    assert_eq!(report["atLaunch"]["sent"], 3, "{report}");
    assert_eq!(report["deletedAfter"][0]["name"], "Customer 0");
    assert!(
        report["alerts"][0].as_str().expect("an alert").starts_with("ALERT"),
        "{report}"
    );
    let table = text(&cli.run(&["campaign", "report", &campaign]));
    assert!(
        table.contains("who we lost after it") && table.contains("Customer 0"),
        "{table}"
    );
    assert!(
        table.contains("at launch  the gate allowed 3 (3 sent, 0 held out)"),
        "{table}"
    );
    let all = cli.json(&["campaign", "report"], 0);
    assert_eq!(all["campaigns"][0]["campaignId"], campaign.as_str());
    let missing = cli.run(&["--json", "campaign", "report", &uuid::Uuid::new_v4().to_string()]);
    assert_eq!(error_code(&missing), "NOT_FOUND");
}

#[test]
fn suggest_names_who_went_quiet_and_never_who_deleted_us() {
    let cli = with_history();
    // In December, everyone's last reply is months old.
    let suggested = cli.json(&["suggest"], 0);
    let names: Vec<&str> = suggested["suggestions"]
        .as_array()
        .expect("suggestions")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    assert!(names.contains(&"Wang Fang"), "{suggested}");
    assert!(
        !names.contains(&"Sun Li"),
        "the gate refuses whoever deleted us: {suggested}"
    );
    assert!(
        suggested["suggestions"]
            .as_array()
            .expect("list")
            .iter()
            .all(|s| s["kind"] == "INVITATION")
    );
    let alices = cli.json(&["suggest", "--owner", "alice"], 0);
    assert!(
        alices["suggestions"]
            .as_array()
            .expect("list")
            .iter()
            .all(|s| s["name"] != "Qian Wei")
    );
    let table = text(&cli.run(&["suggest"]));
    assert!(table.contains("INVITATION") && table.contains("Wang Fang"), "{table}");
    let too_many = cli.run(&["--json", "suggest", "--limit", "500"]);
    assert_eq!(error_code(&too_many), "LIMIT_EXCEEDED");
}

/// Commands read the snapshot the server keeps beside the ledger, fold on
/// what was recorded after it, and answer as a rebuild would; a damaged
/// snapshot changes no answer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn commands_answer_from_the_snapshot_and_what_came_after_it() {
    let cli = with_history();
    let check = |extra: &[&str]| {
        let mut args = vec![
            "--json",
            "check",
            "Wang Fang",
            "--mode",
            "one-to-one",
            "--at",
            MONDAY_MORNING,
        ];
        args.extend_from_slice(extra);
        let output = cli.run(&args);
        let answer: Value = serde_json::from_slice(&output.stdout).expect("one JSON document");
        answer["verdict"].as_str().expect("a verdict").to_owned()
    };
    let early = check(&["--position", "5"]);
    let logged = || {
        let output = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
            .env("RAPPORT_LOG", "info")
            .arg("--store")
            .arg(cli.ledger())
            .args(["check", "Wang Fang"])
            .output()
            .expect("run rapport");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let snapshot = rapport_app::snapshot::snapshot_path(&cli.ledger());
    {
        let store = rapport_store::SqliteStore::open_with(cli.ledger(), rapport_store::SqliteOptions::read_only())
            .expect("open");
        let model = rapport_app::read_model::rebuild_read_model(&store, None)
            .await
            .expect("rebuild");
        let key = store.snapshot_key().expect("the master key beside the ledger");
        rapport_app::snapshot::save(&snapshot, &key, &model)
            .expect("write")
            .expect("saved");
    }
    let deleted = cli.file(
        "deleted.jsonl",
        r#"{"kind":"event","contactId":"00000000-0000-0000-0000-00000000000a","type":"ContactDeletedUs","occurredAt":"2026-03-01T13:00:00Z","payload":{"channel":"WECHAT"}}
"#,
    );
    assert_eq!(cli.json(&["import", deleted.to_str().expect("path")], 0)["imported"], 1);
    for damaged in [false, true] {
        let log = logged();
        if damaged {
            assert!(
                log.contains("set aside") && !log.contains("read model from its snapshot"),
                "{log}"
            );
        } else {
            assert!(
                log.contains("read model from its snapshot"),
                "the snapshot was not used: {log}"
            );
        }
        assert_eq!(
            check(&[]),
            "DENY",
            "the deletion after the snapshot (damaged: {damaged})"
        );
        assert_eq!(check(&["--position", "11"]), "ALLOW", "as known at the snapshot");
        assert_eq!(check(&["--position", "5"]), early, "before the snapshot: a rebuild");
        let mut bytes = std::fs::read(&snapshot).expect("read");
        let middle = bytes.len() / 2;
        bytes[middle] ^= 0x10;
        std::fs::write(&snapshot, bytes).expect("damage");
    }
}

#[test]
fn erase_takes_an_admin_token_answers_with_a_receipt_and_is_the_same_erasure_twice() {
    let cli = with_history();
    let sales = cli.token("sales", "alice");
    let manager = cli.token("manager", "mia");
    let admin = cli.token("admin", "root");
    let count = cli.event_count();
    let erase = |token: &str, reason: &str| {
        cli.run(&[
            "--json",
            "erase",
            "Wang Fang",
            "--reason",
            reason,
            "--request-id",
            "REQ-17",
            "--token",
            token,
        ])
    };
    for token in [&sales, &manager] {
        let refused = erase(token, "PIPL Art. 47");
        assert_eq!(refused.status.code(), Some(2));
        assert_eq!(error_code(&refused), "FORBIDDEN");
    }
    let blank = erase(&admin, " ");
    assert_eq!(blank.status.code(), Some(2));
    assert_eq!(error_code(&blank), "BAD_INPUT");
    assert_eq!(cli.event_count(), count, "a refused erasure writes nothing");

    let receipt: Value = serde_json::from_slice(&erase(&admin, "PIPL Art. 47").stdout).expect("receipt");
    assert_eq!(receipt["alreadyErased"], false, "{receipt}");
    assert_eq!(receipt["contactId"], "00000000-0000-0000-0000-00000000000a");
    assert_eq!(receipt["erasedBy"], "root");
    assert_eq!(cli.event_count(), count + 1);
    // Found by the name it had no more: by id, the gate refuses them.
    assert_eq!(error_code(&cli.run(&["--json", "check", "Wang Fang"])), "NOT_FOUND");
    let checked = cli.json(
        &["check", "00000000-0000-0000-0000-00000000000a", "--mode", "one-to-one"],
        1,
    );
    assert_eq!(checked["verdict"], "DENY", "{checked}");
    assert!(checked.to_string().contains("CONTACT_ERASED"), "{checked}");
    let shown = text(&cli.run(&["check", "00000000-0000-0000-0000-00000000000a", "--mode", "mass"]));
    assert!(shown.contains("erased") && !shown.contains("Wang Fang"), "{shown}");
    let digest = receipt["ledgerDigest"].as_str().expect("digest");
    assert_eq!(cli.json(&["verify", "--digest", digest], 0)["intact"], true);

    let again: Value = serde_json::from_slice(
        &cli.run(&[
            "--json",
            "erase",
            "00000000-0000-0000-0000-00000000000a",
            "--reason",
            "asked twice",
            "--request-id",
            "REQ-18",
            "--token",
            &admin,
        ])
        .stdout,
    )
    .expect("receipt");
    assert_eq!(again["alreadyErased"], true);
    assert_eq!(again["ledgerDigest"], receipt["ledgerDigest"]);
    assert_eq!(cli.event_count(), count + 1, "erasing twice writes once");
    let access = text(&cli.run(&["export", "00000000-0000-0000-0000-00000000000a"]));
    assert!(!access.contains("+86 138 0000 0001"), "{access}");
    assert!(access.contains("ContactErased"), "the history stays: {access}");
}

#[test]
fn retention_lists_then_erases_the_contacts_silent_longer_than_the_policy_keeps_them() {
    let cli = with_history();
    let old = cli.file(
        "old.jsonl",
        r#"{"kind":"contact","id":"00000000-0000-0000-0000-0000000000ee","displayName":"Old Friend","phone":"+86 138 0000 0099","owner":"alice","registeredAt":"1970-01-05T02:00:00Z"}
{"kind":"contact","id":"00000000-0000-0000-0000-0000000000ef","displayName":"Old But Active","owner":"alice","registeredAt":"1970-01-05T02:00:00Z"}
{"kind":"event","contactId":"00000000-0000-0000-0000-0000000000ef","type":"ReplyReceived","occurredAt":"2026-11-01T12:00:00Z","payload":{"channel":"WECHAT"}}
{"kind":"event","contactId":"00000000-0000-0000-0000-0000000000ef","type":"MessageRead","occurredAt":"1971-01-01T12:00:00Z","payload":{"channel":"WECHAT"}}
"#,
    );
    assert_eq!(cli.json(&["import", old.to_str().expect("path")], 0)["imported"], 4);
    let sales = cli.token("sales", "alice");
    let manager = cli.token("manager", "mia");
    let listed = |token: &str| cli.run(&["--json", "retention", "--token", token]);
    // No retention in the policy: nobody is past it, and managers may not erase.
    assert_eq!(error_code(&listed(&manager)), "FORBIDDEN");

    let export = text(&cli.run(&["export"]));
    let mut policy: Value = serde_json::from_str(export.lines().next().expect("the policy first")).expect("json");
    // Fifty years: only the contacts from 1970 are past it (until 2076).
    policy["payload"]["policy"]["privacy"] = serde_json::json!({ "retentionYears": 50, "managersMayErase": true });
    let fields = policy.as_object_mut().expect("object");
    for recorded in [
        "eventId",
        "version",
        "position",
        "recordedAt",
        "hash",
        "ledgerDigest",
        "correlationId",
    ] {
        fields.remove(recorded);
    }
    let changed = cli.file("policy.jsonl", &format!("{policy}\n"));
    assert_eq!(cli.json(&["import", changed.to_str().expect("path")], 0)["imported"], 1);

    assert_eq!(error_code(&listed(&sales)), "FORBIDDEN");
    // The latest business time counts, not the last event appended.
    let expired = text(&listed(&manager));
    assert_eq!(expired.lines().count(), 1, "{expired}");
    assert!(expired.contains("00000000-0000-0000-0000-0000000000ee"), "{expired}");
    let count = cli.event_count();
    let applied = text(&cli.run(&["--json", "retention", "--apply", "--token", &manager]));
    let receipt: Value = serde_json::from_str(applied.trim()).expect("one receipt");
    assert_eq!(receipt["contactId"], "00000000-0000-0000-0000-0000000000ee");
    assert_eq!(receipt["erasedBy"], "mia");
    assert!(receipt["requestId"].as_str().expect("id").starts_with("retention-"));
    assert_eq!(cli.event_count(), count + 1);
    assert_eq!(text(&listed(&manager)), "", "nobody is left past the retention");
    let checked = cli.json(&["check", "00000000-0000-0000-0000-0000000000ee", "--mode", "mass"], 1);
    assert!(checked.to_string().contains("CONTACT_ERASED"), "{checked}");
    assert_eq!(cli.json(&["verify"], 0)["intact"], true);
}

#[test]
fn check_speaks_the_language_asked_for_or_the_locale_s() {
    let cli = with_history();
    let vip = [
        "check",
        "wx_qian",
        "--mode",
        "mass",
        "--at",
        MONDAY_MORNING,
        "--verbose",
    ];
    let chinese = cli.run(&[&["--lang", "zh"][..], &vip[..]].concat());
    assert_eq!(chinese.status.code(), Some(1));
    assert!(text(&chinese).contains("重要客户（标签“vip”）"), "{}", text(&chinese));
    assert!(text(&chinese).contains("对方上次回复距今多久"), "{}", text(&chinese));

    let output = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env("LANG", "zh_CN.UTF-8")
        .arg("--store")
        .arg(cli.ledger())
        .args(vip)
        .output()
        .expect("run rapport");
    assert!(text(&output).contains("重要客户"), "{}", text(&output));

    let english = cli.run(&vip);
    assert!(text(&english).contains("A high-value contact"), "{}", text(&english));

    let unknown = cli.run(&[&["--lang", "fr"][..], &vip[..]].concat());
    assert_eq!(unknown.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&unknown.stderr).contains("'fr' is not a language rapport speaks: use en or zh"),
        "{}",
        String::from_utf8_lossy(&unknown.stderr)
    );
}

/// A new group with three posts on Monday 2 March 2026 (Shanghai) and two
/// members, one of them the contact Lin Tao.
const GROUP_HISTORY: &str = r#"{"kind":"contact","id":"00000000-0000-0000-0000-00000000000d","displayName":"Lin Tao","owner":"alice","primaryChannel":"WECHAT","registeredAt":"2026-01-05T02:00:00Z"}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupCreated","occurredAt":"2026-03-01T01:00:00Z","payload":{"name":"Spring tea","owner":"alice","kind":"customers","timeZone":"Asia/Shanghai"}}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupMemberJoined","occurredAt":"2026-03-01T02:00:00Z","payload":{"member":"m1","contactId":"00000000-0000-0000-0000-00000000000d"}}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupMemberJoined","occurredAt":"2026-03-01T02:00:00Z","payload":{"member":"m2"}}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupPostRecorded","occurredAt":"2026-03-02T00:00:00Z","payload":{"kind":"CONTENT","sender":"robot","authorization":{"external":{"source":"robot"}}}}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupPostRecorded","occurredAt":"2026-03-02T04:00:00Z","payload":{"kind":"INTERACTION","sender":"robot","authorization":{"external":{"source":"robot"}}}}
{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupPostRecorded","occurredAt":"2026-03-02T11:00:00Z","payload":{"kind":"CONTENT","sender":"robot","authorization":{"external":{"source":"robot"}}}}
"#;

#[test]
fn group_check_report_and_silent_read_a_group_off_the_ledger() {
    let cli = Cli::new();
    let history = cli.file("groups.jsonl", GROUP_HISTORY);
    let history = history.to_str().expect("path");
    assert_eq!(cli.json(&["import", history], 0)["imported"], 7);

    let fourth = cli.json(
        &["group", "check", "Spring tea", "--at", "2026-03-02T20:30:00+08:00"],
        1,
    );
    assert_eq!(fourth["verdict"], "DEFER", "{fourth}");
    assert_eq!(fourth["reasons"][0]["code"], "NEW_GROUP_POST_CAP");
    assert_eq!(fourth["postsToday"], 3);
    assert_eq!(
        fourth["nextAllowedAt"], "2026-03-03T00:00:00.000Z",
        "08:00 the next day in Shanghai"
    );
    let sunday = cli.json(
        &[
            "group",
            "check",
            "00000000-0000-0000-0000-0000000000f1",
            "--at",
            "2026-03-01T12:00",
        ],
        0,
    );
    assert_eq!(sunday["verdict"], "ALLOW", "{sunday}");
    let chinese = cli.run(&[
        "--lang",
        "zh",
        "group",
        "check",
        "Spring tea",
        "--at",
        "2026-03-02T20:30:00+08:00",
    ]);
    assert!(text(&chinese).contains("新群每天最多3条"), "{}", text(&chinese));

    // A group is created once: an import naming it again moves nothing.
    let again = cli.file(
        "again.jsonl",
        r#"{"kind":"event","stream":"group-00000000-0000-0000-0000-0000000000f1","type":"GroupCreated","occurredAt":"2026-03-05T01:00:00Z","payload":{"name":"Spring tea","owner":"bob","kind":"customers"}}
"#,
    );
    let refused = cli.json(&["import", again.to_str().expect("path")], 1);
    assert_eq!(refused["imported"], 0, "{refused}");

    let listed = cli.json(&["group", "report"], 0);
    assert_eq!(listed["groups"][0]["name"], "Spring tea");
    assert_eq!(listed["groups"][0]["members"], 2);
    let report = cli.json(&["group", "report", "Spring tea"], 0);
    assert_eq!(report["mix"]["content"], 0, "the posts are months old now: {report}");
    assert_eq!(report["owner"], "alice");

    let silent = cli.json(&["group", "silent", "Spring tea"], 0);
    let rows = silent["silent"].as_array().expect("rows");
    assert_eq!(rows.len(), 2, "{silent}");
    let linked = rows.iter().find(|row| row["member"] == "m1").expect("m1");
    assert_eq!(linked["nudge"], "INVITATION");
    assert_eq!(linked["name"], "Lin Tao");
    assert_eq!(linked["contactVerdict"], "ALLOW");
    assert_eq!(linked["mayBeGreeted"], true);

    for (args, code) in [
        (vec!["--json", "group", "check", "No such group"], "NOT_FOUND"),
        (
            vec!["--json", "group", "check", "Spring tea", "--kind", "gossip"],
            "BAD_INPUT",
        ),
        (
            vec!["--json", "group", "silent", "Spring tea", "--limit", "0"],
            "BAD_INPUT",
        ),
        (
            vec!["--json", "group", "check", "Spring tea", "--at", "yesterday"],
            "BAD_INPUT",
        ),
    ] {
        let output = cli.run(&args);
        assert_eq!(error_code(&output), code, "{args:?}");
    }
}

/// Runs rapport on `store` (a path or a connection string) with `input`
/// on its standard input.
fn run_with_input(store: &str, args: &[&str], input: &[u8]) -> Output {
    use std::io::Write as _;
    let mut child = Command::new(env!("CARGO_BIN_EXE_rapport-under-test"))
        .env_remove("LC_ALL")
        .env_remove("LC_MESSAGES")
        .env_remove("LANG")
        .arg("--store")
        .arg(store)
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run rapport");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(input)
        .expect("write the input");
    child.wait_with_output().expect("rapport ends")
}

/// An export's lines without what each ledger records on its own
/// (positions, recorded times, hashes and digests).
fn as_moved(export: &[u8]) -> Vec<Value> {
    String::from_utf8_lossy(export)
        .lines()
        .map(|line| {
            let mut value: Value = serde_json::from_str(line).expect("an export line");
            if let Some(fields) = value.as_object_mut() {
                for recorded in ["position", "recordedAt", "hash", "ledgerDigest", "piiDigest"] {
                    fields.remove(recorded);
                }
            }
            value
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_ledger_moves_to_a_kurrentdb_cluster_and_back_keeping_ids_times_and_a_verifiable_chain() {
    let double = rapport_kurrentdb_double::Double::start().await;
    let cli = with_history();
    let cluster = format!(
        "{}&discoveryInterval=0&prefix=moved-&local={}",
        double.url(),
        cli.dir.path().join("node").display()
    );
    let file = cli.ledger().display().to_string();
    let source = run_with_input(&file, &["export", "--with-personal-data"], b"");
    assert_eq!(
        source.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&source.stderr)
    );
    let imported = run_with_input(&cluster, &["--json", "import", "-"], &source.stdout);
    assert_eq!(
        imported.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&imported.stderr)
    );

    // On the cluster: every link holds, the gate answers as it did.
    let verified = cli.run_on(Path::new(&cluster), &["--json", "verify"]);
    let report: Value = serde_json::from_slice(&verified.stdout).expect("json");
    assert_eq!(report["intact"], true, "{report}");
    assert_eq!(report["eventsChecked"], 11, "{report}");
    for store in [file.as_str(), cluster.as_str()] {
        let checked = cli.run_on(
            Path::new(store),
            &[
                "--json",
                "check",
                "Wang Fang",
                "--mode",
                "one-to-one",
                "--at",
                MONDAY_MORNING,
            ],
        );
        assert_eq!(checked.status.code(), Some(0), "{store}");
        let checked: Value = serde_json::from_slice(&checked.stdout).expect("json");
        assert_eq!(checked["verdict"], "ALLOW", "{store}: {checked}");
    }
    let ledger = cli.run_on(Path::new(&cluster), &["--json", "ledger"]);
    let ledger: Value = serde_json::from_slice(&ledger.stdout).expect("json");
    assert_eq!(ledger["backend"], "KurrentDB", "{ledger}");
    assert!(!ledger["store"].as_str().expect("store").contains("local="), "{ledger}");

    // And back into a new file.
    let on_cluster = run_with_input(&cluster, &["export", "--with-personal-data"], b"");
    assert_eq!(
        on_cluster.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&on_cluster.stderr)
    );
    let back = cli.dir.path().join("back.db").display().to_string();
    let returned = run_with_input(&back, &["--json", "import", "-"], &on_cluster.stdout);
    assert_eq!(
        returned.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&returned.stderr)
    );
    let back_again = run_with_input(&back, &["export", "--with-personal-data"], b"");
    assert_eq!(
        as_moved(&on_cluster.stdout),
        as_moved(&source.stdout),
        "the cluster changed the history"
    );
    assert_eq!(
        as_moved(&back_again.stdout),
        as_moved(&source.stdout),
        "the way back changed the history"
    );
    let verified = cli.run_on(Path::new(&back), &["--json", "verify"]);
    let report: Value = serde_json::from_slice(&verified.stdout).expect("json");
    assert_eq!(report["intact"], true, "{report}");
}
