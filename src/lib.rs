//! exception-operator: governed security exceptions for Kubernetes.
//!
//! A `SecurityException` is a documented, risk-rated deviation from security
//! controls, approved by someone other than its requester, backed by
//! `CompensatingControl`s, enforced at admission and gone when it expires.
//!
//! - [`api`]: the custom resources and every cluster-visible string; no IO.
//! - [`policy`]: the pure core: control checks, matching, approvals, the
//!   lifecycle and the admission decisions; no IO.
//! - [`config`], [`duration`]: the operator's configuration, validated.
//! - [`controller`]: the controllers, translating cluster <-> policy.
//! - [`webhook`]: the admission webhook server, translating HTTP <-> policy.
//! - [`metrics`]: the Prometheus registry.
//! - [`cli`]: the subcommands of the `exception-operator` binary.
#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod duration;
pub mod metrics;
pub mod policy;
pub mod webhook;
