//! The `exception-operator` binary: parse arguments and dispatch.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use exception_operator::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.run() {
        Ok(code) => code,
        Err(error) => {
            eprintln!("exception-operator: {error}");
            let mut source = std::error::Error::source(&error);
            while let Some(cause) = source {
                eprintln!("  caused by: {cause}");
                source = cause.source();
            }
            ExitCode::from(2)
        }
    }
}
