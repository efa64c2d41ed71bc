//! Annotations on a SecurityException: the public approval API.
//!
//! People and tools write *requests* (`approve`, `deny`, `revoke`) and, for
//! GitOps, *signatures*. The operator's admission webhook turns each request
//! into a *sealed record* (a MAC only the operator can compute, over the
//! object, the spec hash and the authenticated user) and removes the request.
//! Nothing unsealed, copied or stale counts.

/// Request: approve the spec whose canonical hash is the value
/// (`sha256:<hex>`, as `exception-operator hash` prints it). The authenticated
/// user making the change is the approver.
pub const APPROVE: &str = "exceptions.dev/approve";
/// Request: deny the exception; the value is the reason.
pub const DENY: &str = "exceptions.dev/deny";
/// Request: revoke the exception; the value is the reason.
pub const REVOKE: &str = "exceptions.dev/revoke";

/// Sealed record of the authenticated creator (JSON `SealedRecord`), stamped
/// at creation; any value supplied by a user is replaced.
pub const REQUESTED_BY: &str = "exceptions.dev/requested-by";
/// Sealed identity-mode approvals (JSON array of `SealedRecord`).
pub const APPROVED_BY: &str = "exceptions.dev/approved-by";
/// Sealed denials (JSON array of `SealedRecord`, each with a reason).
pub const DENIED_BY: &str = "exceptions.dev/denied-by";
/// Sealed revocations (JSON array of `SealedRecord`, each with a reason).
pub const REVOKED_BY: &str = "exceptions.dev/revoked-by";
/// GitOps approvals: JSON array of `{"signer": NAME, "signature": SSHSIG}`,
/// each an SSH signature (namespace [`SIGNATURE_NAMESPACE`]) over the
/// approval message of the exception's namespace, name and spec hash.
pub const APPROVAL_SIGNATURES: &str = "exceptions.dev/approval-signatures";

/// The SSH signature namespace (`ssh-keygen -Y sign -n`) of approval signatures.
pub const SIGNATURE_NAMESPACE: &str = "exceptions.dev";
