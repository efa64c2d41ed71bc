//! Condition types written to `status.conditions`, kstatus-compatible: `Ready`
//! is the summary that Argo CD, Flux and `kubectl wait` read.

/// True only while the object is in force (an exception honoured at admission,
/// a compensating control whose evidence is present and whose review is current).
pub const READY: &str = "Ready";
/// The exception's current spec carries a verified quorum of approvals.
pub const APPROVED: &str = "Approved";
/// Every compensating control the exception references exists and is Ready.
pub const CONTROLS_VERIFIED: &str = "ControlsVerified";
/// The exception expires within the first configured warning window.
pub const EXPIRING_SOON: &str = "ExpiringSoon";
/// The exception has outlived its expected resolution time or review date.
pub const AGING: &str = "Aging";
/// No live workload relies on the exception any more.
pub const UNUSED: &str = "Unused";
/// Every evidence object a compensating control names exists.
pub const EVIDENCE_PRESENT: &str = "EvidencePresent";
/// A compensating control was tested within its review interval.
pub const REVIEW_CURRENT: &str = "ReviewCurrent";
