//! The command-line interface: the only module that prints.
//!
//! Each command parses its options, calls one library operation and maps
//! the result to an exit code. Errors are rendered once, here.

pub mod args;

use std::process::ExitCode;

use clap::Parser;

/// Run tg with the process's arguments; returns the exit code.
pub fn main() -> ExitCode {
    let argv = args::normalize_args(std::env::args());
    let cli = match args::Cli::try_parse_from(argv) {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 1 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    eprintln!("error: `{:?}` is not implemented yet", cli.command);
    ExitCode::from(1)
}
