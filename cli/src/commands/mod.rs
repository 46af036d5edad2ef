//! The commands: what they print and how they exit.

pub mod campaign;
pub mod group;
pub mod inspect;
pub mod lists;
pub mod privacy;
pub mod record;
pub mod transfer;

use std::path::Path;
use std::sync::Arc;

use rapport_app::clock::SharedClock;

use anyhow::Context;
use clap::Subcommand;
use rapport_domain::{Language, LedgerDigest};
use rapport_store::{
    EventStore, Finding, FindingKind, Ledger, LedgerLocation, OpenOptions, SqliteOptions, SqliteStore, StoreError,
    Verification, Verifier, verify as verify_ledger,
};

use crate::Outcome;

/// What every command is given: the ledger file, the output form, and the
/// one clock the whole process reads.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub store: LedgerLocation,
    pub json: bool,
    /// The language reasons and explanations are written in.
    pub language: Language,
    pub clock: SharedClock,
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once and never again.
    ///
    /// Example: rapport token create --role sales --name alice
    Create {
        /// sales, manager, auditor, admin or ingest.
        #[arg(long)]
        role: rapport_app::tokens::Role,
        /// Who holds it; for sales, the owner id of their contacts.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    ///
    /// Example: rapport token list --json
    List,
    /// Revoke every token with a name, or one token by its id.
    ///
    /// Example: rapport token revoke alice
    Revoke {
        /// Whose tokens (all of them).
        #[arg(required_unless_present = "id", conflicts_with = "id")]
        name: Option<String>,
        /// Only the token with this id (from `token list`).
        #[arg(long)]
        id: Option<i64>,
    },
}

pub async fn ledger(ctx: &Invocation) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    // Read-only: it answers while a server writes the ledger.
    let store = inspect::open_read_only(&ctx.store).await?;
    let head = store.head().await.context("reading the ledger head")?;
    let position = head.last_position.map(|p| p.to_string());
    if json {
        let report = serde_json::json!({
            "store": ctx.store.to_string(),
            "backend": store.backend_name(),
            "headPosition": position,
            "eventCount": head.event_count,
            "digest": head.digest.to_string(),
        });
        println!("{report}");
    } else {
        println!("ledger     {} ({})", ctx.store, store.backend_name());
        println!("head       {}", position.as_deref().unwrap_or("(empty)"));
        println!("events     {}", head.event_count);
        println!("digest     {}", head.digest);
    }
    Ok(Outcome::Yes)
}

pub async fn verify(ctx: &Invocation, digest: Option<&str>, export: Option<&str>) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    let saved: Option<LedgerDigest> = digest.map(str::parse).transpose().context("reading --digest")?;
    let report = match export {
        Some(file) => transfer::verify_export(file, saved)?,
        None => match &ctx.store {
            LedgerLocation::File(path) => verify_file(path, saved).await?,
            cluster => verify_cluster(cluster, saved).await?,
        },
    };
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

/// Verifies the ledger file; a file that is not a ledger at all (empty,
/// random, cut short) is a finding too, not an error: that is what
/// verification is for.
async fn verify_file(store_path: &Path, saved: Option<LedgerDigest>) -> anyhow::Result<Verification> {
    if !store_path.exists() {
        anyhow::bail!("there is no ledger at {}", store_path.display());
    }
    let unreadable = |error: StoreError| Verifier::new(saved).report(Some(unreadable_finding(error)));
    let store = match SqliteStore::open_with(store_path, SqliteOptions::read_only()) {
        Ok(store) => store,
        Err(error) if is_about_the_file(&error) => return Ok(unreadable(error)),
        Err(error) => return Err(error).with_context(|| format!("opening the ledger {}", store_path.display())),
    };
    match verify_ledger(&store, saved).await {
        Ok(report) => Ok(report),
        Err(error) if is_about_the_file(&error) => Ok(unreadable(error)),
        Err(error) => Err(error).context("verifying the ledger"),
    }
}

/// Verifies a ledger on a cluster: every link of every stream, the ledger
/// digest recomputed over the global order.
async fn verify_cluster(location: &LedgerLocation, saved: Option<LedgerDigest>) -> anyhow::Result<Verification> {
    let store = Ledger::open(location, OpenOptions::read_only())
        .await
        .with_context(|| format!("opening the ledger {location}"))?;
    match verify_ledger(&store, saved).await {
        Ok(report) => Ok(report),
        Err(error) if is_about_the_file(&error) => Ok(Verifier::new(saved).report(Some(unreadable_finding(error)))),
        Err(error) => Err(error).context("verifying the ledger"),
    }
}

/// Whether the error describes the file's contents, not the machine.
fn is_about_the_file(error: &StoreError) -> bool {
    matches!(
        error,
        StoreError::NotALedger { .. } | StoreError::Corrupt { .. } | StoreError::Decode { .. } | StoreError::Io(_)
    )
}

fn unreadable_finding(error: StoreError) -> Finding {
    let position = match &error {
        StoreError::Corrupt { position, .. } => *position,
        _ => None,
    };
    Finding {
        position,
        stream: None,
        kind: FindingKind::Unreadable(error.to_string()),
    }
}

/// The demo data set's seed: every `--demo` ledger tells the same story.
const DEMO_SEED: u64 = 20_261_121;

pub async fn serve(ctx: &Invocation, listen: std::net::SocketAddr, demo: Option<usize>) -> anyhow::Result<Outcome> {
    let started = std::time::Instant::now();
    let state = rapport_api::server::open_state_on(&ctx.store, Arc::clone(&ctx.clock)).await?;
    if let Some(contacts) = demo {
        let report = crate::demo::populate(&state.core.store, contacts, DEMO_SEED, ctx.clock.now())
            .await
            .context("writing the demo data set")?;
        match report {
            Some(report) => eprintln!("wrote the demo: {} contacts, {} events", report.contacts, report.events),
            None => eprintln!("{} already holds a ledger: reusing it", ctx.store),
        }
        let head = state.core.store.head().await?.last_position;
        if let Some(head) = head {
            state.core.live.wait_for(head).await.context("applying the demo")?;
        }
    }
    let server = rapport_api::server::Server::start_with(std::sync::Arc::clone(&state), listen).await?;
    let console = format!("http://{}/", server.address);
    let url = format!("{console}graphql");
    if demo.is_some() {
        print_demo_banner(ctx, &state, &console, started.elapsed())?;
    } else {
        eprintln!(
            "rapport is serving {} on {console} (the console; GraphQL and GraphiQL at {url})",
            ctx.store
        );
    }
    rapport_api::server::run_until_signal(server).await?;
    Ok(Outcome::Yes)
}

fn print_demo_banner(
    ctx: &Invocation,
    state: &rapport_api::state::AppState,
    console: &str,
    elapsed: std::time::Duration,
) -> anyhow::Result<()> {
    let url = format!("{console}graphql");
    use rapport_app::tokens::Role;
    let now = ctx.clock.now().to_rfc3339();
    let people = [
        (Role::Sales, "alice"),
        (Role::Manager, "mia"),
        (Role::Auditor, "audrey"),
        (Role::Admin, "root"),
        (Role::Ingest, "crm-sync"),
    ];
    let mut tokens = Vec::new();
    for (role, name) in people {
        tokens.push((role, name, state.tokens.create(role, name, &now)?));
    }
    let example = state.core.live.read(|model| {
        model.directory.ids_after(None).find(|id| {
            model
                .directory
                .pii(*id)
                .is_some_and(|pii| pii.display_name.as_deref() == Some(crate::demo::TOUR[0].0))
        })
    });
    let contacts = state.core.live.read(|model| model.projection.contact_count());
    println!();
    println!(
        "rapport demo ready in {:.1} s: {contacts} contacts",
        elapsed.as_secs_f64()
    );
    println!();
    println!("console    {console}   (open it in a browser and sign in with a token below)");
    println!("GraphiQL   {url}   (after signing in on the console, or paste a token as the header)");
    println!();
    println!("tokens (shown once):");
    for (role, name, token) in &tokens {
        println!("  {:<8} {:<9} {token}", role.as_str(), name);
    }
    if let Some(id) = example {
        let manager = &tokens[1].2;
        println!();
        println!("try:");
        println!(
            "  curl -s {url} -H 'Authorization: Bearer {manager}' -H 'content-type: application/json' \\\n    -d '{{\"query\":\"{{ gate(contactId: \\\"{id}\\\", mode: MASS) {{ verdict reasons {{ code message }} score band nextAllowedAt }} }}\"}}'"
        );
    }
    println!();
    println!("contacts with a story (try `rapport check NAME --mode mass` in another terminal):");
    for (name, story) in crate::demo::TOUR {
        println!("  {name:<9} {story}");
    }
    println!();
    Ok(())
}

pub fn token(ctx: &Invocation, command: TokenCommand) -> anyhow::Result<Outcome> {
    let json = ctx.json;
    let now_text = || ctx.clock.now().to_rfc3339();
    let tokens = rapport_app::tokens::TokenStore::open(ctx.store.local_path())?;
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
        TokenCommand::Revoke { name, id } => {
            let which = match (id, name) {
                (Some(id), _) => rapport_app::tokens::Revoke::Id(id),
                (None, Some(name)) => rapport_app::tokens::Revoke::Named(name),
                (None, None) => anyhow::bail!("name whose tokens to revoke, or give --id"),
            };
            let revoked = tokens.revoke(&which, &now_text())?;
            if json {
                println!("{}", serde_json::json!({ "revoked": revoked }));
            } else {
                println!("revoked {revoked} token(s)");
            }
            Ok(if revoked > 0 { Outcome::Yes } else { Outcome::No })
        }
    }
}
