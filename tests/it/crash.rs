//! Durability under SIGKILL: a child process appends batches and prints
//! every acknowledgement; we kill it at random moments over several rounds
//! and check after each that every acknowledged batch is there, whole, that
//! no batch is there in part, and that the hash chain still verifies.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use rapport_store::{SqliteStore, verify};
use uuid::Uuid;

use crate::support::read_everything;

const ROUNDS: usize = 6;

struct Ack {
    batch_id: Uuid,
    size: usize,
}

fn parse_ack(line: &str) -> Option<Ack> {
    let mut words = line.split_whitespace();
    (words.next()? == "ack").then_some(())?;
    let batch_id = words.next()?.parse().ok()?;
    let size = words.next()?.parse().ok()?;
    Some(Ack { batch_id, size })
}

/// Runs the appender until it has acknowledged at least one batch and a
/// random while longer, kills it, and returns every acknowledgement it printed.
fn run_and_kill(ledger: &std::path::Path, rng: &mut fastrand::Rng) -> Vec<Ack> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_crash-appender"))
        .arg(ledger)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the appender");
    let stdout = child.stdout.take().expect("piped stdout");
    let (lines_sender, lines) = mpsc::channel();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if lines_sender.send(line).is_err() {
                break;
            }
        }
    });
    let mut acks = Vec::new();
    let first = lines
        .recv_timeout(Duration::from_secs(60))
        .expect("the appender acknowledged nothing");
    acks.extend(parse_ack(&first));
    std::thread::sleep(Duration::from_millis(rng.u64(20..400)));
    child.kill().expect("SIGKILL the appender");
    child.wait().expect("reap the appender");
    reader.join().expect("reader thread");
    // Only complete lines reach us: a line cut by the kill fails to parse
    // and was never a whole acknowledgement.
    acks.extend(lines.try_iter().filter_map(|line| parse_ack(&line)));
    acks
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_appends_survive_sigkill_and_no_batch_is_partial() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let ledger = dir.path().join("rapport.db");
    let mut rng = fastrand::Rng::with_seed(0x5eed);
    let mut acknowledged: HashMap<Uuid, usize> = HashMap::new();
    for round in 0..ROUNDS {
        let acks = run_and_kill(&ledger, &mut rng);
        assert!(!acks.is_empty(), "round {round}: no acknowledgements");
        acknowledged.extend(acks.into_iter().map(|ack| (ack.batch_id, ack.size)));

        let store = SqliteStore::open(&ledger).expect("reopen after the crash");
        let mut found: HashMap<Uuid, (usize, usize)> = HashMap::new();
        for event in read_everything(&store).await {
            let size: usize = event
                .actor
                .strip_prefix("crash-appender/")
                .and_then(|size| size.parse().ok())
                .expect("actor names the batch size");
            let entry = found.entry(event.correlation_id).or_insert((0, size));
            entry.0 += 1;
        }
        for (batch_id, size) in &acknowledged {
            assert_eq!(
                found.get(batch_id).map(|(count, _)| *count),
                Some(*size),
                "round {round}: acknowledged batch {batch_id} lost"
            );
        }
        for (batch_id, (count, size)) in &found {
            assert_eq!(count, size, "round {round}: batch {batch_id} is partial");
        }
        let report = verify(&store, None).await.expect("verify");
        assert!(report.is_intact(), "round {round}: {:?}", report.finding);
    }
}
