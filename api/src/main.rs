//! `rapport`: the relationship ledger's command line.

mod bench;
mod commands;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "An event-sourced relationship ledger that gates mass sends",
    long_about = "rapport records every touch, reply, block, opt-out, complaint and deletion as an event in an \
                  append-only, tamper-evident ledger, and derives from it whether a contact may be messaged."
)]
struct Cli {
    /// The ledger file (created if missing, except where a command only reads).
    #[arg(
        long,
        global = true,
        env = "RAPPORT_STORE",
        default_value = "rapport.db"
    )]
    store: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Show the ledger's head position, event count and digest.
    ///
    /// Example: rapport ledger --store ./rapport.db
    Ledger,
    /// Walk every hash link and print the ledger digest; exit 1 on tampering.
    ///
    /// Save the digest somewhere outside the ledger; passing it back later
    /// also detects truncated or rewritten history.
    ///
    /// Example: rapport verify --digest sha256:3f…@1200
    Verify {
        /// A digest printed earlier by `rapport verify` or `rapport ledger`.
        #[arg(long)]
        digest: Option<String>,
    },
    /// Measure throughput on a scratch ledger (see docs/performance.md).
    #[command(subcommand)]
    Bench(bench::Bench),
}

/// Exit codes: 0 yes, 1 a "no" answer (tampering found), 2 an error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Yes,
    No,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(Outcome::Yes) => ExitCode::SUCCESS,
        Ok(Outcome::No) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

async fn run(cli: Cli) -> anyhow::Result<Outcome> {
    match cli.command {
        Command::Ledger => commands::ledger(&cli.store, cli.json).await,
        Command::Verify { digest } => {
            commands::verify(&cli.store, digest.as_deref(), cli.json).await
        }
        Command::Bench(bench) => bench::run(bench).await,
    }
}
