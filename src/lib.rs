//! exception-operator: governed security exceptions for Kubernetes.
//!
//! A `SecurityException` is a documented, risk-rated deviation from security
//! controls, approved by someone other than its requester, backed by
//! `CompensatingControl`s, enforced at admission and gone when it expires.
//!
//! - [`api`]: the custom resources and every cluster-visible string; no IO.
//! - [`cli`]: the subcommands of the `exception-operator` binary.
//! - [`policy`]: the pure core: control checks.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod policy;
