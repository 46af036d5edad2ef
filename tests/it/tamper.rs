//! Tamper evidence and damage: we alter copies of a real ledger the way an
//! attacker or a failing disk would (through SQLite with the guard triggers
//! dropped, or by flipping bytes) and check that verification names the
//! first bad position and stream, that a digest saved earlier exposes
//! truncation and rewritten history, and that nothing panics.

use std::path::Path;

use rapport_domain::LedgerDigest;
use rapport_domain::hashing::{GENESIS, event_hash, ledger_digest};
use rapport_store::{EventStore, ExpectedVersion, FindingKind, SqliteOptions, SqliteStore, StoreError, verify};
use rusqlite::Connection;

use crate::support::{TempLedger, contact_stream, copy_master_key, mass_touch, read_everything, registered, reply};

/// A ledger of 5 contacts with 8 events each (40 events), and its digest.
async fn sample_ledger() -> (TempLedger, LedgerDigest) {
    let ledger = TempLedger::new();
    let store = ledger.store();
    for n in 1..=5u128 {
        store
            .append(contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)])
            .await
            .expect("register");
    }
    for round in 0..7 {
        for n in 1..=5u128 {
            let event = if round % 2 == 0 {
                mass_touch(round)
            } else {
                reply(round)
            };
            store
                .append(contact_stream(n), ExpectedVersion::Any, vec![event])
                .await
                .expect("append");
        }
    }
    let head = store.head().await.expect("head");
    (ledger, head.digest)
}

/// Opens a copy with plain SQLite and removes the append-only guards, as an
/// attacker with file access would.
fn attacker(path: &Path) -> Connection {
    let connection = Connection::open(path).expect("open the copy");
    connection
        .execute_batch("DROP TRIGGER events_are_never_updated; DROP TRIGGER events_are_never_deleted;")
        .expect("drop the guards");
    connection
}

async fn verify_copy(path: &Path, saved: Option<LedgerDigest>) -> rapport_store::Verification {
    let store = SqliteStore::open_with(path, SqliteOptions::read_only()).expect("open the copy");
    verify(&store, saved).await.expect("verification runs")
}

#[tokio::test]
async fn an_intact_ledger_verifies_and_its_digest_matches_the_head() {
    let (ledger, digest) = sample_ledger().await;
    let report = verify(&ledger.store(), Some(digest)).await.expect("verify");
    assert!(report.is_intact(), "{:?}", report.finding);
    assert_eq!(report.events_checked, 40);
    assert_eq!(report.streams_checked, 5);
    assert_eq!(report.digest, digest);
}

#[tokio::test]
async fn the_ledger_refuses_updates_and_deletes_through_sqlite() {
    let (ledger, _) = sample_ledger().await;
    let connection = Connection::open(ledger.path()).expect("open");
    assert!(
        connection
            .execute("UPDATE events SET actor = 'mallory' WHERE position = 3", [])
            .is_err()
    );
    assert!(connection.execute("DELETE FROM events WHERE position = 3", []).is_err());
}

#[tokio::test]
async fn an_edited_payload_is_reported_at_its_position_and_stream() {
    let (ledger, _) = sample_ledger().await;
    let copy = ledger.copy_to("edited.db");
    let stream: String = {
        let connection = attacker(&copy);
        connection
            .execute(
                "UPDATE events SET payload = CAST('{\"channel\":\"SMS\"}' AS BLOB) WHERE position = 17",
                [],
            )
            .expect("edit");
        connection
            .query_row("SELECT stream FROM events WHERE position = 17", [], |row| row.get(0))
            .expect("stream")
    };
    let finding = verify_copy(&copy, None).await.finding.expect("tampering found");
    assert_eq!(finding.kind, FindingKind::HashMismatch);
    assert_eq!(finding.position.map(|p| p.to_string()), Some("17".into()));
    assert_eq!(finding.stream, Some(stream));
}

#[tokio::test]
async fn a_removed_event_breaks_its_stream_or_the_ledger_digest() {
    let (ledger, _) = sample_ledger().await;
    let copy = ledger.copy_to("removed.db");
    attacker(&copy)
        .execute("DELETE FROM events WHERE position = 12", [])
        .expect("delete");
    let finding = verify_copy(&copy, None).await.finding.expect("tampering found");
    assert_eq!(finding.position.map(|p| p.to_string()), Some("13".into()));
    assert!(
        matches!(
            finding.kind,
            FindingKind::LedgerDigestMismatch | FindingKind::StreamSequenceBroken { .. }
        ),
        "{finding:?}"
    );
}

#[tokio::test]
async fn personal_data_changed_or_removed_by_hand_is_detected() {
    let (ledger, digest) = sample_ledger().await;
    let changed = ledger.copy_to("changed-pii.db");
    Connection::open(&changed)
        .expect("open")
        .execute(
            "UPDATE pii SET sealed = CAST('{\"displayName\":\"Someone else\"}' AS BLOB) WHERE position = 2",
            [],
        )
        .expect("edit");
    let finding = verify_copy(&changed, None).await.finding.expect("tampering found");
    assert_eq!(finding.kind, FindingKind::PiiMismatch);
    assert_eq!(finding.position.map(|p| p.to_string()), Some("2".into()));

    let keyless = ledger.copy_to("keyless-pii.db");
    Connection::open(&keyless)
        .expect("open")
        .execute("DELETE FROM contact_keys", [])
        .expect("drop the keys");
    let finding = verify_copy(&keyless, None).await.finding.expect("lost keys found");
    assert_eq!(
        finding.kind,
        FindingKind::PiiMismatch,
        "data whose key is gone without an erasure"
    );

    // Erasure is an event (see privacy.rs); a row removed by hand is a loss.
    let removed = ledger.copy_to("removed-pii.db");
    Connection::open(&removed)
        .expect("open")
        .execute("DELETE FROM pii WHERE position = 2", [])
        .expect("remove");
    let finding = verify_copy(&removed, Some(digest)).await.finding.expect("loss found");
    assert_eq!(finding.kind, FindingKind::PiiMissing);
    assert_eq!(finding.position.map(|p| p.to_string()), Some("2".into()));
    let store = SqliteStore::open_with(&removed, SqliteOptions::read_only()).expect("open");
    let events = read_everything(&store).await;
    assert!(
        matches!(events[1].event, rapport_domain::Event::ContactRegistered(_)),
        "the relationship signal stays"
    );
}

#[tokio::test]
async fn truncation_is_invisible_inside_but_exposed_by_a_saved_digest() {
    let (ledger, digest) = sample_ledger().await;
    let copy = ledger.copy_to("truncated.db");
    attacker(&copy)
        .execute("DELETE FROM events WHERE position > 35", [])
        .expect("truncate");
    assert!(
        verify_copy(&copy, None).await.is_intact(),
        "a clean cut leaves no internal trace"
    );
    let finding = verify_copy(&copy, Some(digest))
        .await
        .finding
        .expect("truncation found");
    assert!(matches!(finding.kind, FindingKind::Truncated { .. }), "{finding:?}");
}

#[tokio::test]
async fn history_rewritten_with_recomputed_hashes_is_exposed_by_a_saved_digest() {
    let (ledger, digest) = sample_ledger().await;
    let copy = ledger.copy_to("rewritten.db");
    let connection = attacker(&copy);
    // Turn the reply at position 12 into a block (same payload shape), then
    // recompute every hash and digest so the ledger is consistent again.
    connection
        .execute(
            "UPDATE events SET event_type = 'ContactBlocked' WHERE position = 12 AND event_type = 'ReplyReceived'",
            [],
        )
        .expect("edit");
    let store = SqliteStore::open_with(&copy, SqliteOptions::read_only()).expect("open");
    let raws = store.read_all_raw(None, 1_000).await.expect("read");
    drop(store);
    let mut stream_hashes = std::collections::HashMap::new();
    let mut running = GENESIS;
    for raw in raws {
        let previous = stream_hashes.get(&raw.stream).copied().unwrap_or(GENESIS);
        let hash = event_hash(&previous, &raw.hashed_fields());
        running = ledger_digest(&running, raw.position, &hash);
        stream_hashes.insert(raw.stream.clone(), hash);
        connection
            .execute(
                "UPDATE events SET hash = ?1, ledger_digest = ?2 WHERE position = ?3",
                rusqlite::params![
                    hash,
                    running,
                    raw.position.to_string().parse::<i64>().expect("dense position")
                ],
            )
            .expect("rewrite");
    }
    drop(connection);
    assert!(
        verify_copy(&copy, None).await.is_intact(),
        "a full rewrite is consistent inside"
    );
    let finding = verify_copy(&copy, Some(digest)).await.finding.expect("rewrite found");
    assert!(
        matches!(finding.kind, FindingKind::HistoryRewritten { .. }),
        "{finding:?}"
    );
}

#[tokio::test]
async fn flipped_bytes_never_panic_and_never_pass_as_the_original() {
    let (mut ledger, digest) = sample_ledger().await;
    let original = read_everything(&ledger.store()).await;
    // Closing checkpoints the log into the main file, which we then damage.
    ledger.store = None;
    let bytes = std::fs::read(ledger.path()).expect("read file");
    let mut rng = fastrand::Rng::with_seed(7);
    let mut caught = 0;
    for trial in 0..40 {
        let copy = ledger.dir.path().join(format!("flipped-{trial}.db"));
        let mut damaged = bytes.clone();
        for _ in 0..4 {
            let at = rng.usize(100..damaged.len());
            damaged[at] ^= 1 << rng.u8(0..8);
        }
        std::fs::write(&copy, &damaged).expect("write copy");
        copy_master_key(&ledger.path(), &copy);
        let Ok(store) = SqliteStore::open_with(&copy, SqliteOptions::read_only()) else {
            caught += 1;
            continue;
        };
        let Ok(report) = verify(&store, Some(digest)).await else {
            caught += 1;
            continue;
        };
        if !report.is_intact() {
            caught += 1;
        } else {
            // Only damage to unused space may pass, and then every event must read as before.
            let mut events = Vec::new();
            let mut after = None;
            loop {
                match store.read_all(after, 1_000).await {
                    Ok(page) if page.is_empty() => break,
                    Ok(page) => {
                        after = page.last().map(|e| e.position);
                        events.extend(page);
                    }
                    Err(_) => break,
                }
            }
            assert_eq!(events, original, "trial {trial}: damage passed verification unnoticed");
        }
    }
    assert!(
        caught > 0,
        "no damage was noticed at all: the trials did not reach the data"
    );
}

#[tokio::test]
async fn an_unknown_event_type_is_an_error_naming_its_position() {
    let (ledger, _) = sample_ledger().await;
    let copy = ledger.copy_to("future.db");
    attacker(&copy)
        .execute(
            "UPDATE events SET event_type = 'ContactTeleported' WHERE position = 9",
            [],
        )
        .expect("edit");
    let store = SqliteStore::open_with(&copy, SqliteOptions::read_only()).expect("open");
    let read = store.read_all(None, 100).await;
    match read {
        Err(StoreError::Decode { position, .. }) => assert_eq!(position.to_string(), "9"),
        other => panic!("expected a decode error at 9, got {other:?}"),
    }
}

#[tokio::test]
async fn a_ledger_from_a_newer_rapport_is_refused() {
    let (ledger, _) = sample_ledger().await;
    let copy = ledger.copy_to("newer.db");
    Connection::open(&copy)
        .expect("open")
        .pragma_update(None, "user_version", 99)
        .expect("bump");
    for read_only in [false, true] {
        let opened = SqliteStore::open_with(
            &copy,
            SqliteOptions {
                read_only,
                ..SqliteOptions::default()
            },
        );
        assert!(
            matches!(opened, Err(StoreError::NewerFormat { found: 99, .. })),
            "{opened:?}"
        );
    }
}

#[tokio::test]
async fn files_that_are_not_ledgers_are_refused_and_left_alone() {
    let dir = tempfile::tempdir().expect("dir");
    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "customer list, do not lose\n").expect("write");
    assert!(matches!(SqliteStore::open(&text), Err(StoreError::NotALedger { .. })));
    assert_eq!(
        std::fs::read_to_string(&text).expect("read"),
        "customer list, do not lose\n"
    );
    let beside: Vec<_> = std::fs::read_dir(dir.path()).expect("list").collect();
    assert_eq!(beside.len(), 1, "files were left beside it: {beside:?}");

    let other = dir.path().join("other.db");
    Connection::open(&other)
        .expect("open")
        .execute_batch("CREATE TABLE t (x INTEGER)")
        .expect("create");
    assert!(matches!(SqliteStore::open(&other), Err(StoreError::NotALedger { .. })));
    let missing = SqliteStore::open_with(dir.path().join("missing.db"), SqliteOptions::read_only());
    assert!(matches!(missing, Err(StoreError::NotALedger { .. })));
}

#[tokio::test]
async fn a_second_writer_on_the_same_file_is_refused() {
    let ledger = TempLedger::new();
    let second = SqliteStore::open(ledger.path());
    assert!(matches!(second, Err(StoreError::Unavailable(_))), "{second:?}");
    let reader = SqliteStore::open_with(ledger.path(), SqliteOptions::read_only()).expect("readers are welcome");
    let refused = reader
        .append(contact_stream(1), ExpectedVersion::Any, vec![reply(1)])
        .await;
    assert!(matches!(refused, Err(StoreError::Unavailable(_))));
}
