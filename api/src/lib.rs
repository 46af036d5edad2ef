//! rapport's outer layer: the only crate that knows the command line (and,
//! later, HTTP and GraphQL). The `rapport` binary is `cli::main`.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod demo;
pub mod graphql;
pub mod ledger;
pub mod live;
pub mod metrics;
pub mod server;
pub mod state;
pub mod tokens;

// Small, short-lived allocations dominate decoding and folding; mimalloc
// serves them faster than the system allocator. `Cap` counts live bytes,
// so the bench can report the memory a projection really holds
// (docs/performance.md).
#[global_allocator]
pub static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// A command's answer: exit code 0 for yes, 1 for a "no" (a refused gate,
/// a failed verification); errors exit with 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Yes,
    No,
}
