//! Snapshots of the read model: a start from one, with the events recorded
//! after it folded on, equals a rebuild from the whole ledger; a snapshot
//! that is torn, altered, written by another build or for another ledger
//! is set aside and the start rebuilds; the server writes one as it stops
//! and the follower as the ledger grows.

use std::path::Path;

use rapport_app::ledger::open_for_writing;
use rapport_app::live::{Live, Snapshots};
use rapport_app::read_model::{ReadModel, rebuild_read_model};
use rapport_app::snapshot::{self, Unusable};
use rapport_domain::{Policy, PolicyChanged, Timestamp};
use rapport_store::{EventStore, ExpectedVersion, Ledger};
use sha2::{Digest, Sha256};
use uuid::Uuid;

use crate::support::{contact_stream, hang_guard, mass_touch, registered, reply};

/// 11:00 in Shanghai, inside the demo's active hours.
const NOW: Timestamp = Timestamp::from_millis_unchecked(1_795_230_000_000);

/// A ledger with everything the read model holds: contacts with personal
/// data, tags and zones, touches, replies, losses, violations, campaigns.
async fn demo_ledger(dir: &Path, seed: u64) -> Ledger {
    let store = open_for_writing(&dir.join("rapport.db"), "test", rapport_app::clock::system_clock())
        .await
        .expect("open");
    rapport_cli::demo::populate(&store, 120, seed, NOW)
        .await
        .expect("demo")
        .expect("an empty ledger");
    store
}

async fn current(store: &Ledger) -> ReadModel {
    rebuild_read_model(store, None).await.expect("rebuild")
}

/// More history after the snapshot: a new contact, touches, a reply and a
/// policy change (which the fold compiles again).
async fn record_more(store: &Ledger) {
    store
        .append(
            contact_stream(7_001),
            ExpectedVersion::NoStream,
            vec![registered(7_001)],
        )
        .await
        .expect("register");
    for (offset, event) in [(1, mass_touch(3_600_000)), (2, reply(7_200_000))] {
        store
            .append(contact_stream(7_001), ExpectedVersion::Exact(offset - 1), vec![event])
            .await
            .expect("append");
    }
    let mut policy = Policy::default();
    policy.mass.high_value_tags = vec!["vip-after-snapshot".into()];
    store
        .append(
            rapport_domain::StreamName::Policy,
            ExpectedVersion::Any,
            vec![rapport_domain::NewEvent::new(
                Uuid::now_v7(),
                PolicyChanged { policy },
                NOW,
                "test",
            )],
        )
        .await
        .expect("policy");
}

fn beside(store: &Ledger) -> Snapshots {
    Snapshots {
        every_events: u64::MAX,
        ..Snapshots::beside(store).expect("the store has its master key")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_start_from_a_snapshot_and_the_events_after_it_equals_a_full_rebuild() {
    let dir = tempfile::tempdir().expect("dir");
    let store = demo_ledger(dir.path(), 20_261_121).await;
    // Enough contacts for several frames of relationships and of the directory.
    let many = (10_000..12_100u128)
        .map(|n| (contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)]))
        .collect();
    for written in store.append_batch(many).await.expect("register") {
        written.expect("registered");
    }
    let then = current(&store).await;
    let snapshots = beside(&store);
    // What a crash while writing leaves: removed by the next write.
    let leftover = dir.path().join(".rapport.db.snapshot.writing-crashed");
    std::fs::write(&leftover, b"personal data").expect("leftover");
    let saved = snapshot::save(&snapshots.path, &snapshots.key, &then)
        .expect("write")
        .expect("a model with events");
    assert_eq!(Some(saved.position), store.head().await.expect("head").last_position);
    assert!(!leftover.exists(), "a crashed write's file is left behind");
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&snapshots.path)
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the snapshot holds personal data: its owner's only, not {mode:o}"
        );
    }
    assert_eq!(
        snapshot::load(&store, &snapshots.path, &snapshots.key)
            .await
            .expect("usable"),
        then,
        "the snapshot does not give back the model it was written from"
    );

    record_more(&store).await;
    let live = Live::start(&store, Some(snapshots)).await.expect("start");
    assert_eq!(
        live.started_from_snapshot(),
        Some(saved.position),
        "the snapshot was not used"
    );
    let started = live.read(Clone::clone);
    let rebuilt = current(&store).await;
    assert_eq!(
        started.projection.events_applied(),
        then.projection.events_applied() + 4
    );
    assert_eq!(started, rebuilt, "a start from the snapshot and a full rebuild differ");
}

/// Writes the header frame's checksum again after changing it, as a
/// forger would: the frame (a kind, a 4-byte length, the payload, its
/// SHA-256) follows the one line of magic.
fn reseal_header(bytes: &mut [u8]) {
    let kind = bytes.iter().position(|b| *b == b'\n').expect("magic") + 1;
    let length = u32::from_le_bytes(bytes[kind + 1..kind + 5].try_into().expect("length")) as usize;
    let payload = kind + 5..kind + 5 + length;
    let checksum = Sha256::digest(&bytes[payload.clone()]);
    bytes[payload.end..payload.end + 32].copy_from_slice(&checksum);
}

/// The build's fold fingerprint inside the file: 64 hex digits after their length.
fn fingerprint_range(bytes: &[u8]) -> std::ops::Range<usize> {
    let start = bytes
        .windows(65)
        .position(|window| window[0] == 64 && window[1..].iter().all(|b| b.is_ascii_hexdigit()))
        .expect("a fingerprint in the header")
        + 1;
    start..start + 64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_snapshot_that_does_not_belong_is_set_aside_and_the_start_rebuilds() {
    let dir = tempfile::tempdir().expect("dir");
    let store = demo_ledger(dir.path(), 20_261_121).await;
    let snapshots = beside(&store);
    snapshot::save(&snapshots.path, &snapshots.key, &current(&store).await)
        .expect("write")
        .expect("saved");
    let good = std::fs::read(&snapshots.path).expect("read");

    let other_dir = tempfile::tempdir().expect("dir");
    let other = demo_ledger(other_dir.path(), 7).await;
    let others = beside(&other);
    snapshot::save(&others.path, &others.key, &current(&other).await)
        .expect("write")
        .expect("saved");
    // Another ledger sharing this one's master key: only the ledger itself
    // can tell the snapshot is not its own.
    let same_key = other_dir.path().join("same-key.snapshot");
    snapshot::save(&same_key, &snapshots.key, &current(&other).await)
        .expect("write")
        .expect("saved");

    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x01;
    let truncated = good[..good.len() - 1000].to_vec();
    let mut another_build = good.clone();
    let fingerprint = fingerprint_range(&another_build);
    another_build[fingerprint.start] = if another_build[fingerprint.start] == b'0' {
        b'1'
    } else {
        b'0'
    };
    reseal_header(&mut another_build);
    let cases: [(&str, Vec<u8>, &str); 6] = [
        ("a flipped bit", flipped, "frame"),
        ("a torn write", truncated, "torn"),
        ("another build's", another_build, "another build"),
        (
            "another ledger's",
            std::fs::read(&others.path).expect("read"),
            "does not open under this ledger's key",
        ),
        (
            "another ledger's under the same master key",
            std::fs::read(&same_key).expect("read"),
            "does not hold",
        ),
        ("not a snapshot", b"hello".to_vec(), "not a rapport snapshot"),
    ];
    record_more(&store).await;
    let head = store.head().await.expect("head");
    let rebuilt = current(&store).await;
    for (case, bytes, why) in cases {
        std::fs::write(&snapshots.path, &bytes).expect("write");
        match snapshot::load(&store, &snapshots.path, &snapshots.key).await {
            Err(Unusable::SetAside { why: said, .. }) => assert!(said.contains(why), "{case}: {said}"),
            Err(other) => panic!("{case}: {other}"),
            Ok(_) => panic!("{case}: the snapshot was used"),
        }
        let live = Live::start(&store, Some(snapshots.clone())).await.expect("start");
        assert_eq!(live.started_from_snapshot(), None, "{case}");
        assert_eq!(live.read(Clone::clone), rebuilt, "{case}: the rebuild differs");
        assert_eq!(store.head().await.expect("head"), head, "{case}: the ledger changed");
    }
    std::fs::remove_file(&snapshots.path).expect("remove");
    assert!(matches!(
        snapshot::load(&store, &snapshots.path, &snapshots.key).await,
        Err(Unusable::Missing(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_follower_writes_a_snapshot_as_the_ledger_grows() {
    let dir = tempfile::tempdir().expect("dir");
    let store = open_for_writing(
        &dir.path().join("rapport.db"),
        "test",
        rapport_app::clock::system_clock(),
    )
    .await
    .expect("open");
    let snapshots = Snapshots {
        every_events: 10,
        ..beside(&store)
    };
    let live = Live::start(&store, Some(snapshots.clone())).await.expect("start");
    assert!(!snapshots.path.exists(), "one event is not yet due");
    for n in 1..=30u128 {
        store
            .append(contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)])
            .await
            .expect("register");
    }
    hang_guard("a snapshot from the follower", async {
        while !snapshots.path.exists() {
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    })
    .await;
    let written = snapshot::load(&store, &snapshots.path, &snapshots.key)
        .await
        .expect("usable");
    assert!(
        written.projection.events_applied() >= snapshots.every_events,
        "written before it was due"
    );
    let head = store.head().await.expect("head").last_position.expect("events");
    live.wait_for(head).await.expect("caught up");
    // Written now, or already by the follower: either way it covers the head.
    live.save_snapshot().await.expect("write");
    let last = snapshot::load(&store, &snapshots.path, &snapshots.key)
        .await
        .expect("usable");
    assert_eq!(
        last.projection.position(),
        Some(head),
        "the final snapshot does not cover the head"
    );
    assert_eq!(last, live.read(Clone::clone));
    assert_eq!(live.save_snapshot().await.expect("again"), None, "nothing new to write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_that_stops_leaves_a_snapshot_its_next_start_uses() {
    let dir = tempfile::tempdir().expect("dir");
    let ledger = dir.path().join("rapport.db");
    let state = rapport_api::server::open_state(&ledger).await.expect("open");
    for n in 1..=3u128 {
        state
            .core
            .store
            .append(contact_stream(n), ExpectedVersion::NoStream, vec![registered(n)])
            .await
            .expect("register");
    }
    let head = state.core.store.head().await.expect("head").last_position;
    state.core.live.wait_for(head.expect("events")).await.expect("applied");
    let before = state.core.live.read(Clone::clone);
    let server = rapport_api::server::Server::start_with(state, "127.0.0.1:0".parse().expect("address"))
        .await
        .expect("serve");
    server.stop().await.expect("stop");

    // The stopped server's tasks let go of the ledger as they are dropped.
    let state = hang_guard("the stopped server releasing the ledger", async {
        loop {
            match rapport_api::server::open_state(&ledger).await {
                Ok(state) => return state,
                Err(_) => tokio::time::sleep(std::time::Duration::from_millis(20)).await,
            }
        }
    })
    .await;
    assert_eq!(state.core.live.started_from_snapshot(), head);
    assert_eq!(state.core.live.read(Clone::clone), before);
}
