//! `rapport`: the relationship ledger's command line (see `cli`).

// Small, short-lived allocations dominate decoding and folding; mimalloc
// serves them faster than the system allocator (docs/performance.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    rapport_cli::cli::main()
}
