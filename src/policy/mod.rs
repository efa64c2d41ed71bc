//! The pure core of the operator: what a workload violates, and why.
//!
//! Nothing here performs IO, talks to a cluster or needs a runtime: every
//! function takes Kubernetes objects by reference and returns plain values, so
//! the admission webhook, the CLI and the tests all ask the same question the
//! same way.
//!
//! - [`controls`]: the Pod Security Standards controls (levels `baseline` and
//!   `restricted`, version `latest`), the opt-in extra controls, and the
//!   catalog describing every control id an exception may name.

pub mod controls;
