//! The subcommands of the `exception-operator` binary.

mod approve;
mod check;
mod crd;
mod run;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Errors a subcommand reports to the person who ran it.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rendering YAML failed.
    #[error("could not render YAML")]
    RenderYaml(#[source] serde_saphyr::ser_error::Error),
    /// The configuration file is invalid.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The async runtime could not start.
    #[error("could not start the async runtime")]
    Runtime(#[source] std::io::Error),
    /// No cluster connection could be configured (KUBECONFIG or in-cluster).
    #[error("could not connect to the cluster (set KUBECONFIG, or run in a cluster)")]
    Connect(#[source] kube::Error),
    /// A call to the API server failed.
    #[error("{action}")]
    Kube {
        /// What the operator was doing.
        action: String,
        /// Why it failed.
        #[source]
        source: kube::Error,
    },
    /// Generating the development certificates failed.
    #[error("could not generate the webhook's serving certificate")]
    Certificate(#[source] rcgen::Error),
    /// The command cannot do what was asked; the message says why.
    #[error("{0}")]
    Usage(String),
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
    /// Run the controllers and the admission webhooks against the cluster in
    /// KUBECONFIG. Prints a line containing `ready` once caches are synced
    /// and the webhooks are registered.
    Run(run::RunArgs),
    /// Approve a SecurityException's current spec, as the current kubeconfig
    /// identity (impersonation honoured). The webhook verifies who you are.
    Approve(approve::ApproveArgs),
    /// Deny a SecurityException, with a reason.
    Deny(approve::DecideArgs),
    /// Revoke a SecurityException, with a reason.
    Revoke(approve::DecideArgs),
    /// Print the canonical spec hash of a manifest file's SecurityExceptions,
    /// or of one in the cluster.
    Hash(approve::HashArgs),
    /// Add a GitOps approval signature (SSH) to a manifest file.
    Sign(approve::SignArgs),
    /// Evaluate workload manifests offline against the SecurityExceptions
    /// and CompensatingControls in the same files (exit 0 compliant, 1 not,
    /// 2 bad input).
    Check(check::CheckArgs),
}

impl Cli {
    /// Runs the chosen subcommand and returns the process exit status.
    pub fn run(self) -> Result<ExitCode, Error> {
        match self.command {
            Command::Crd(args) => args.run(),
            Command::Run(args) => args.run(),
            Command::Approve(args) => args.run(),
            Command::Deny(args) => args.deny(),
            Command::Revoke(args) => args.revoke(),
            Command::Hash(args) => args.run(),
            Command::Sign(args) => args.run(),
            Command::Check(args) => args.run(),
        }
    }
}
