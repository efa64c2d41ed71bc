//! The subcommands of the `exception-operator` binary.

mod crd;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Errors a subcommand reports to the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Serialising a generated CRD failed.
    #[error("could not render the CustomResourceDefinitions as YAML")]
    RenderCrd(#[source] serde_saphyr::ser_error::Error),
    /// Writing an output file failed.
    #[error("could not write {path}")]
    Write {
        /// The file that could not be written.
        path: std::path::PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
}

/// Governed security exceptions for Kubernetes.
#[derive(Debug, Parser)]
#[command(name = "exception-operator", version, about)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Print the CustomResourceDefinitions (the source of crds/*.yaml).
    Crd(crd::CrdArgs),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit status.
    pub fn run(self) -> Result<ExitCode, Error> {
        match self.command {
            Command::Crd(args) => args.run(),
        }
    }
}
