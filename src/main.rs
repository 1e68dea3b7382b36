//! The `prsnl` binary: parse the command line and run it.

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    prsnl::cli::run(prsnl::cli::Cli::parse())
}
