//! The `exception-operator` binary: parse arguments, set up logging and TLS,
//! dispatch.
#![forbid(unsafe_code)]

use std::process::ExitCode;

use clap::Parser;
use exception_operator::cli::Cli;

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    // kube and the webhook server both use rustls; one process-wide provider.
    let _ = rustls::crypto::ring::default_provider().install_default();
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
