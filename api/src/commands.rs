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

pub async fn serve(store_path: &Path, listen: std::net::SocketAddr) -> anyhow::Result<Outcome> {
    let settings = crate::server::Settings {
        store: store_path.to_path_buf(),
        listen,
    };
    let server = crate::server::Server::start(&settings).await?;
    eprintln!(
        "rapport is serving {} on http://{}/graphql (GraphiQL in a browser)",
        store_path.display(),
        server.address
    );
    crate::server::run_until_signal(server).await?;
    Ok(Outcome::Yes)
}

fn now_text() -> String {
    crate::graphql::now().to_rfc3339()
}

pub fn token(store_path: &Path, command: crate::cli::TokenCommand, json: bool) -> anyhow::Result<Outcome> {
    use crate::cli::TokenCommand;
    let tokens = crate::tokens::TokenStore::open(store_path)?;
    match command {
        TokenCommand::Create { role, name } => {
            let secret = tokens.create(role, &name, &now_text())?;
            if json {
                println!(
                    "{}",
                    serde_json::json!({ "name": name.trim(), "role": role.as_str(), "token": secret })
                );
            } else {
                println!("{secret}");
                eprintln!("a {role} token for {}: keep it now, it is not shown again", name.trim());
            }
            Ok(Outcome::Yes)
        }
        TokenCommand::List => {
            let list = tokens.list()?;
            if json {
                let rows: Vec<_> = list
                    .iter()
                    .map(|t| serde_json::json!({ "id": t.id, "name": t.name, "role": t.role.as_str(), "createdAt": t.created_at, "revoked": t.revoked }))
                    .collect();
                println!("{}", serde_json::Value::Array(rows));
            } else {
                println!("{:>4}  {:<24} {:<8} {:<25} status", "id", "name", "role", "created");
                for t in list {
                    let status = if t.revoked { "revoked" } else { "active" };
                    println!(
                        "{:>4}  {:<24} {:<8} {:<25} {status}",
                        t.id,
                        t.name,
                        t.role.as_str(),
                        t.created_at
                    );
                }
            }
            Ok(Outcome::Yes)
        }
        TokenCommand::Revoke { token } => {
            let revoked = tokens.revoke(&token, &now_text())?;
            if json {
                println!("{}", serde_json::json!({ "revoked": revoked }));
            } else {
                println!("revoked {revoked} token(s)");
            }
            Ok(if revoked > 0 { Outcome::Yes } else { Outcome::No })
        }
    }
}
