//! `rapport-bench`: measures rapport on a scratch ledger (see
//! docs/performance.md). `all` measures every figure beside its baseline;
//! each group of figures is also a subcommand of `figures::Bench`.

mod figure;
mod figures;
mod groups;
mod probe;
mod raw;
mod suite;

use std::process::ExitCode;

use clap::Parser;

// The allocator `rapport` runs on, so that the figures are the users'.
#[cfg(not(feature = "heap-accounting"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Counting live bytes costs a shared atomic on every allocation (about 5 %
// of append throughput), so only the memory measurement builds it in.
#[cfg(feature = "heap-accounting")]
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Live heap bytes, when built with the `heap-accounting` feature.
fn heap_bytes() -> Option<usize> {
    #[cfg(feature = "heap-accounting")]
    return Some(ALLOCATOR.allocated());
    #[cfg(not(feature = "heap-accounting"))]
    None
}

#[derive(Debug, Parser)]
#[command(name = "rapport-bench", version, about = "Measures rapport on a scratch ledger")]
struct Arguments {
    /// Where scratch ledgers go (removed afterwards): a directory on the disk
    /// to measure. Default: the working directory.
    #[arg(long, global = true, default_value = ".")]
    dir: std::path::PathBuf,
    #[command(subcommand)]
    figure: figures::Bench,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_env("RAPPORT_LOG").unwrap_or_else(|_| "warn".into()))
        .with_writer(std::io::stderr)
        .init();
    let arguments = Arguments::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            return ExitCode::from(2);
        }
    };
    let scratch = figures::Scratch { root: arguments.dir };
    match runtime.block_on(suite::run(arguments.figure, &scratch)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error:#}");
            ExitCode::from(2)
        }
    }
}
