//! rapport's outer layer: the only crate that knows the command line (and,
//! later, HTTP and GraphQL). The `rapport` binary is `cli::main`.

pub mod bench;
pub mod cli;
pub mod clock;
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
// serves them faster than the system allocator (docs/performance.md).
#[cfg(not(feature = "heap-accounting"))]
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

// Counting live bytes costs a shared atomic on every allocation (about 5 %
// of append throughput), so only the memory measurement builds it in.
#[cfg(feature = "heap-accounting")]
#[global_allocator]
static ALLOCATOR: cap::Cap<mimalloc::MiMalloc> = cap::Cap::new(mimalloc::MiMalloc, usize::MAX);

/// Live heap bytes, when built with the `heap-accounting` feature.
pub fn heap_bytes() -> Option<usize> {
    #[cfg(feature = "heap-accounting")]
    return Some(ALLOCATOR.allocated());
    #[cfg(not(feature = "heap-accounting"))]
    None
}

/// A command's answer: exit code 0 for yes, 1 for a "no" (a refused gate,
/// a failed verification); errors exit with 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Yes,
    No,
}
