//! The command line: argument parsing, dispatch, and exit codes.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::{bench, commands};

#[derive(Debug, Parser)]
#[command(
    name = "rapport",
    version,
    about = "An event-sourced relationship ledger that gates mass sends",
    long_about = "rapport records every touch, reply, block, opt-out, complaint and deletion as an event in an \
                  append-only, tamper-evident ledger, and derives from it whether a contact may be messaged."
)]
pub struct Cli {
    /// The ledger file (created if missing, except where a command only reads).
    #[arg(long, global = true, env = "RAPPORT_STORE", default_value = "rapport.db")]
    pub store: PathBuf,
    /// Print JSON instead of a table.
    #[arg(long, global = true)]
    pub json: bool,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
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
    /// Serve the GraphQL API (and GraphiQL) over HTTP.
    ///
    /// Example: rapport serve --listen 127.0.0.1:8080
    Serve {
        /// Address to listen on.
        #[arg(long, env = "RAPPORT_LISTEN", default_value = "127.0.0.1:8080")]
        listen: std::net::SocketAddr,
    },
    /// Print the GraphQL schema (SDL); `api/schema.graphql` is its output.
    ///
    /// Example: rapport schema > api/schema.graphql
    Schema,
    /// Create, list or revoke API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Measure throughput on a scratch ledger (see docs/performance.md).
    #[command(subcommand)]
    Bench(bench::Bench),
}

#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once and never again.
    ///
    /// Example: rapport token create --role sales --name alice
    Create {
        /// sales, manager, auditor, admin or ingest.
        #[arg(long)]
        role: crate::tokens::Role,
        /// Who holds it; for sales, the owner id of their contacts.
        #[arg(long)]
        name: String,
    },
    /// List tokens (never their secrets).
    ///
    /// Example: rapport token list --json
    List,
    /// Revoke a token by id, or every token with a name.
    ///
    /// Example: rapport token revoke alice
    Revoke {
        /// A token id from `token list`, or a name.
        token: String,
    },
}

/// Parses the process arguments, runs the command, and returns its exit code.
pub fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG").unwrap_or_else(|_| "warn".into()))
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
        Ok(crate::Outcome::Yes) => ExitCode::SUCCESS,
        Ok(crate::Outcome::No) => ExitCode::from(1),
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}

pub async fn run(cli: Cli) -> anyhow::Result<crate::Outcome> {
    match cli.command {
        Command::Ledger => commands::ledger(&cli.store, cli.json).await,
        Command::Verify { digest } => commands::verify(&cli.store, digest.as_deref(), cli.json).await,
        Command::Bench(bench) => bench::run(bench).await,
        Command::Serve { listen } => commands::serve(&cli.store, listen).await,
        Command::Token(command) => commands::token(&cli.store, command, cli.json),
        Command::Schema => {
            print!("{}", crate::graphql::sdl());
            Ok(crate::Outcome::Yes)
        }
    }
}
