//! `rapport`: the relationship ledger's command line (see `cli`).

fn main() -> std::process::ExitCode {
    rapport_cli::cli::main()
}
