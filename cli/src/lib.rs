//! The `rapport` command line: argument parsing (`cli`), the commands
//! (`commands`) and the demo data set (`demo`). The binary is `cli::main`;
//! the measurements are a binary of their own (`bench/`).

pub mod cli;
pub mod commands;
pub mod demo;

/// A command's answer: exit code 0 for yes, 1 for a "no" (a refused gate,
/// a failed verification); errors exit with 2.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Yes,
    No,
}
