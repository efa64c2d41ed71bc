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
//! - [`workload`]: from an admitted object to the pod template to check, and
//!   the kinds and names (its own, its controllers') the workload answers to.
//! - [`matching`]: which exception covers which violation, as an in-memory
//!   index; each violation is covered by one exception on its own.
//! - [`approval`]: canonical spec hashes, sealed records, SSH signatures,
//!   and what an exception's annotations prove (the verdict).
//! - [`lifecycle`]: phase, conditions and the next instant that matters.
//! - [`exception_admission`]: admission of SecurityExceptions themselves.
//! - [`workload_admission`]: admission of workloads: namespace levels
//!   (enforce, warn, audit), denials, warnings and audit annotations; shared
//!   by the webhook and `exception-operator check`.

pub mod approval;
pub mod controls;
pub mod exception_admission;
pub mod lifecycle;
pub mod matching;
pub mod workload;
pub mod workload_admission;
