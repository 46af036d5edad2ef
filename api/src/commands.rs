//! The commands that read the ledger: what they print and how they exit.

use std::path::Path;

use anyhow::Context;
use rapport_domain::LedgerDigest;
use rapport_store::{EventStore, SqliteOptions, SqliteStore, verify as verify_ledger};

use crate::Outcome;

pub async fn ledger(store_path: &Path, json: bool) -> anyhow::Result<Outcome> {
    let store =
        SqliteStore::open(store_path).with_context(|| format!("opening the ledger {}", store_path.display()))?;
    let head = store.head().await.context("reading the ledger head")?;
    let position = head.last_position.map(|p| p.to_string());
    if json {
        let report = serde_json::json!({
            "store": store_path.display().to_string(),
            "headPosition": position,
            "eventCount": head.event_count,
            "digest": head.digest.to_string(),
        });
        println!("{report}");
    } else {
        println!("ledger     {}", store_path.display());
        println!("head       {}", position.as_deref().unwrap_or("(empty)"));
        println!("events     {}", head.event_count);
        println!("digest     {}", head.digest);
    }
    Ok(Outcome::Yes)
}

pub async fn verify(store_path: &Path, digest: Option<&str>, json: bool) -> anyhow::Result<Outcome> {
    let saved: Option<LedgerDigest> = digest.map(str::parse).transpose().context("reading --digest")?;
    let store = SqliteStore::open_with(store_path, SqliteOptions { read_only: true })
        .with_context(|| format!("opening the ledger {}", store_path.display()))?;
    let report = verify_ledger(&store, saved).await.context("verifying the ledger")?;
    if json {
        let finding = report.finding.as_ref().map(|finding| {
            serde_json::json!({
                "position": finding.position.map(|p| p.to_string()),
                "stream": finding.stream,
                "problem": finding.to_string(),
            })
        });
        let output = serde_json::json!({
            "intact": report.is_intact(),
            "eventsChecked": report.events_checked,
            "streamsChecked": report.streams_checked,
            "digest": report.digest.to_string(),
            "finding": finding,
        });
        println!("{output}");
    } else {
        println!("events checked   {}", report.events_checked);
        println!("streams checked  {}", report.streams_checked);
        match &report.finding {
            None => {
                println!("digest           {}", report.digest);
                println!("result           intact: every hash link holds");
            }
            Some(finding) => {
                println!("verified up to   {}", report.digest);
                println!("result           TAMPERED: {finding}");
            }
        }
    }
    Ok(if report.is_intact() { Outcome::Yes } else { Outcome::No })
}
