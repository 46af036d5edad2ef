//! `rapport-bench all`: every figure in one run, minutes apart at most, on
//! one fixed-seed synthetic ledger, so each stands beside its baseline.

use std::path::Path;

use anyhow::Context;
use serde_json::json;

use crate::figures::{Scratch, Synthetic};

/// HTTP runs: the connections a busy console and a sending tool open.
const HTTP_CONNECTIONS: [usize; 2] = [32, 64];
const APPEND_WRITERS: usize = 64;
/// Gate decisions timed: enough to cycle every contact twice at the default size.
const GATE_DECISIONS: usize = 2_000_000;
const PREFLIGHT_ROUNDS: usize = 7;

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
    let mut figures = Vec::new();
    progress("durable appends");
    figures.extend(crate::figures::append(scratch, APPEND_WRITERS, seconds).await?);
    progress("bulk import");
    let (imported, ledger) = crate::figures::import(scratch, &synthetic).await?;
    let bulk = imported.first().map_or(0.0, |figure| figure.value);
    figures.extend(imported);
    progress("rapport import of a realistic file");
    figures.extend(tokio::task::block_in_place(|| {
        crate::figures::realistic_import(scratch, &synthetic, bulk)
    })?);
    progress("rebuild");
    figures.extend(crate::figures::rebuild(&ledger).await?);
    let ledger = ledger.close();
    progress("server start");
    figures.extend(tokio::task::block_in_place(|| {
        crate::figures::server_start(scratch, &ledger, contacts)
    })?);
    progress("the gate query over HTTP");
    figures.extend(crate::figures::http(&ledger, &synthetic, &HTTP_CONNECTIONS, seconds).await?);
    drop(ledger);
    progress("gate decisions");
    figures.extend(crate::figures::gate(&synthetic, GATE_DECISIONS.max(contacts)));
    progress("projection memory");
    figures.extend(crate::figures::projection_memory(&synthetic, seed)?);
    progress("campaign preflight");
    figures.extend(crate::figures::preflight(&synthetic, PREFLIGHT_ROUNDS)?);

    println!(
        "rapport-bench all: {} contacts, {} events, seed {seed}, {} cores",
        synthetic.contacts(),
        synthetic.events(),
        cores()
    );
    crate::figure::print_table(&figures);
    if let Some(path) = json_path {
        let document = json!({
            "contacts": synthetic.contacts(),
            "events": synthetic.events(),
            "seed": seed,
            "cores": cores(),
            "figures": figures.iter().map(crate::figure::Figure::to_json).collect::<Vec<_>>(),
        });
        std::fs::write(path, serde_json::to_vec_pretty(&document)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZero::get)
}
