//! The `rapport` command line: argument parsing (`cli`), the commands
//! (`commands`), the demo data set (`demo`) and the measurements (`bench`).
//! The binary is `cli::main`.

pub mod bench;
pub mod cli;
pub mod commands;
pub mod demo;

// Declared here rather than in `main.rs` so that every binary built from
// this crate, the test suite's `rapport-under-test` included, runs on the
// allocator users run. Small, short-lived allocations dominate decoding
// and folding; mimalloc serves them faster than the system allocator
// (docs/performance.md).
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
