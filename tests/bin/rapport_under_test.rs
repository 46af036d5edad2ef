//! The `rapport` command line, built inside the test crate so that the CLI
//! tests can run it as a process (cargo hands tests only their own
//! package's binaries).

fn main() -> std::process::ExitCode {
    rapport_cli::cli::main()
}
