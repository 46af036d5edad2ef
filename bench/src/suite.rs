//! Runs what was asked: one group of figures, or `all` of them in one run,
//! minutes apart at most, on one fixed-seed synthetic ledger, so each
//! stands beside its baseline.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::figures::{self, Bench, Scratch, Synthetic};

/// HTTP runs: the connections a busy console and a sending tool open.
const HTTP_CONNECTIONS: [usize; 2] = [32, 64];
const APPEND_WRITERS: usize = 64;
/// Gate decisions timed: every contact 20 times over at the default size.
const GATE_DECISIONS: usize = 2_000_000;
const PREFLIGHT_ROUNDS: usize = 7;
/// Groups folded (one a hundred contacts, at most 1,000) and group gate
/// decisions timed over them (two a contact, at most 200,000).
const GROUPS_MAX: usize = 1_000;
const GROUP_DECISIONS_MAX: usize = 200_000;

/// Runs one subcommand and prints its table.
pub async fn run(bench: Bench, scratch: &Scratch) -> anyhow::Result<()> {
    let measured = match bench {
        Bench::All {
            contacts,
            events,
            seed,
            seconds,
            json,
        } => return all(scratch, contacts, events, seed, seconds.clamp(1, 600), json.as_deref()).await,
        Bench::Append {
            writers,
            seconds,
            store,
        } => {
            let (writers, seconds) = (writers.clamp(1, 1_024), seconds.clamp(1, 600));
            match store {
                Some(rapport_store::LedgerLocation::KurrentDb(cluster)) => {
                    figures::append_cluster(scratch, &cluster, writers, seconds).await?
                }
                Some(rapport_store::LedgerLocation::File(_)) => {
                    anyhow::bail!("--store takes a KurrentDB connection string; the embedded ledger goes in --dir")
                }
                None => figures::append(scratch, writers, seconds).await?,
            }
        }
        Bench::Import {
            contacts,
            events_per_contact,
        } => {
            let synthetic = Synthetic::new(contacts, events_per_contact, 1);
            let (mut measured, _) = figures::import(scratch, &synthetic).await?;
            let bulk = measured.first().map_or(0.0, |figure| figure.value);
            measured.extend(realistic_import(scratch, &synthetic, bulk)?);
            measured
        }
        Bench::Rebuild {
            contacts,
            events_per_contact,
        } => {
            let (_, ledger) = figures::import(scratch, &Synthetic::new(contacts, events_per_contact, 1)).await?;
            figures::rebuild(&ledger).await?
        }
        Bench::Restart {
            contacts,
            events_per_contact,
        } => {
            let (_, ledger) = figures::import(scratch, &Synthetic::new(contacts, events_per_contact, 1)).await?;
            let ledger = ledger.close();
            tokio::task::block_in_place(|| figures::server_start(scratch, &ledger, contacts))?
        }
        Bench::Gate {
            contacts,
            events_per_contact,
            decisions,
        } => {
            let synthetic = Synthetic::new(contacts, events_per_contact, 1);
            let mut measured = figures::gate(&synthetic, decisions.max(1));
            measured.extend(figures::projection_memory(&synthetic, 1)?);
            measured
        }
        Bench::Groups { groups, decisions } => {
            crate::groups::group_gate(groups.clamp(1, 100_000), decisions.clamp(1, 100_000_000))
        }
        Bench::Launch {
            contacts,
            events_per_contact,
        } => figures::launch(scratch, &Synthetic::new(contacts, events_per_contact.max(4), 1)).await?,
        Bench::Preflight {
            contacts,
            events_per_contact,
            rounds,
        } => figures::preflight(&Synthetic::new(contacts, events_per_contact, 1), rounds.clamp(1, 100))?,
        Bench::Http {
            contacts,
            connections,
            seconds,
        } => {
            let synthetic = Synthetic::new(contacts, 25, 1);
            let ledger = scratch.ledger()?;
            synthetic.fill(&ledger.store).await?;
            figures::http(
                &ledger.close(),
                &synthetic,
                &[connections.clamp(1, 1_024)],
                seconds.clamp(1, 600),
            )
            .await?
        }
        Bench::Load {
            url,
            token,
            query,
            ids,
            connections,
            seconds,
        } => {
            return crate::probe::load(
                &url,
                &token,
                query,
                &ids,
                connections.clamp(1, 1_024),
                seconds.clamp(1, 600),
            )
            .await;
        }
        Bench::MemoryProbe {
            contacts,
            events_per_contact,
            seed,
        } => return figures::memory_probe(&Synthetic::new(contacts, events_per_contact, seed)),
        Bench::ServeProbe { store } => return crate::probe::serve_probe(&store).await,
    };
    crate::figure::print_table(&measured);
    Ok(())
}

/// `rapport import` of a realistic file, when the `rapport` binary is at hand.
fn realistic_import(scratch: &Scratch, synthetic: &Synthetic, bulk: f64) -> anyhow::Result<Vec<crate::figure::Figure>> {
    match crate::probe::rapport_binary() {
        Some(rapport) => tokio::task::block_in_place(|| figures::realistic_import(scratch, synthetic, bulk, &rapport)),
        None => {
            eprintln!(
                "skipping `rapport import` of a realistic file: no rapport binary beside rapport-bench \
                 (run `cargo build --release` first, or set RAPPORT_BIN)"
            );
            Ok(Vec::new())
        }
    }
}

pub async fn all(
    scratch: &Scratch,
    contacts: usize,
    events: usize,
    seed: u64,
    seconds: u64,
    json_path: Option<&Path>,
) -> anyhow::Result<()> {
    let contacts = contacts.max(1);
    let synthetic = Synthetic::new(contacts, events.div_ceil(contacts).max(2), seed);
    let progress = |what: &str| eprintln!("measuring {what}…");
    let mut measured = Vec::new();
    progress("durable appends");
    measured.extend(figures::append(scratch, APPEND_WRITERS, seconds).await?);
    progress("bulk import");
    let (imported, ledger) = figures::import(scratch, &synthetic).await?;
    let bulk = imported.first().map_or(0.0, |figure| figure.value);
    measured.extend(imported);
    progress("rapport import of a realistic file");
    measured.extend(realistic_import(scratch, &synthetic, bulk)?);
    progress("rebuild");
    measured.extend(figures::rebuild(&ledger).await?);
    let ledger = ledger.close();
    progress("server start");
    measured.extend(tokio::task::block_in_place(|| {
        figures::server_start(scratch, &ledger, contacts)
    })?);
    progress("the gate query over HTTP");
    measured.extend(figures::http(&ledger, &synthetic, &HTTP_CONNECTIONS, seconds).await?);
    drop(ledger);
    progress("gate decisions");
    measured.extend(figures::gate(&synthetic, GATE_DECISIONS.max(contacts)));
    progress("projection memory");
    measured.extend(figures::projection_memory(&synthetic, seed)?);
    progress("campaign preflight");
    measured.extend(figures::preflight(&synthetic, PREFLIGHT_ROUNDS)?);
    progress("the group gate");
    measured.extend(crate::groups::group_gate(
        (contacts / 100).clamp(1, GROUPS_MAX),
        (2 * contacts).clamp(1, GROUP_DECISIONS_MAX),
    ));

    println!(
        "rapport-bench all: {} contacts, {} events, seed {seed}, {} cores",
        synthetic.contacts(),
        synthetic.events(),
        cores()
    );
    crate::figure::print_table(&measured);
    if let Some(path) = json_path {
        let document = json!({
            "contacts": synthetic.contacts(),
            "events": synthetic.events(),
            "seed": seed,
            "cores": cores(),
            "figures": measured.iter().map(crate::figure::Figure::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
