//! The approval core: canonical spec hashes, sealed records, SSH approval
//! signatures, and the verdict on who approved what. No IO, no clock of its
//! own, no client: the webhook, the controller and the CLI all ask these
//! functions, with the object, the seal key and the configuration.
//!
//! How an approval comes to count (see [`crate::api::annotations`]):
//!
//! - **Identity mode.** A person adds a *request* annotation
//!   (`exceptions.dev/approve: sha256:…`, `deny: REASON`, `revoke: REASON`).
//!   The admission webhook checks it with [`authorize_request`], turns it
//!   into a [`SealedRecord`] with [`seal_request`] (an HMAC under the
//!   operator's [`SealKey`] over the action, the object's namespace and name,
//!   the spec hash and the authenticated user) and stores the record. A
//!   record written while the webhook was bypassed, edited, or copied from
//!   another exception does not verify and counts for nothing.
//! - **Signature mode** (GitOps). An approver signs
//!   [`approval_message`] with `ssh-keygen -Y sign -n exceptions.dev` (or
//!   [`sign_approval`]); the signature is verified against the key configured
//!   for that signer name (`approval.signers`).
//!
//! [`verify`] recomputes everything from the object alone: it never trusts
//! `status`.

use std::fmt;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use hmac::{Hmac, Mac};
use k8s_openapi::jiff::Timestamp;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use ssh_key::{HashAlg, LineEnding, PrivateKey, SshSig};

use crate::api::annotations;
use crate::api::{ApprovalRecord, RiskLevel, SecurityException, SecurityExceptionSpec};
use crate::config::{Approvers, Config, Signer};

/// The version tag at the start of every sealed message. Changing how seals
/// are computed means a new tag, so that old and new seals never collide.
const SEAL_VERSION: &str = "exceptions.dev/seal/v1";

/// The shortest seal key accepted, in bytes.
pub const SEAL_KEY_MIN_LEN: usize = 32;

// ---------------------------------------------------------------------------
// Spec hash

/// The canonical hash of a spec: `sha256:` and the lower-case hex SHA-256 of
/// its canonical JSON.
///
/// The canonical JSON is the spec as the operator's types serialize it
/// (`serde_json::to_value`), with every object's keys sorted and no
/// whitespace. Because the spec is first parsed into the typed struct:
///
/// - **defaults are materialised**: a spec applied with `type` omitted and
///   one with `type: Exception` hash the same; an empty list and an omitted
///   one hash the same;
/// - **representation does not matter**: key order, YAML vs JSON, and the
///   time zone offset of `expiresAt` (the same instant) hash the same;
/// - **every spec field is covered**: any change to any field's value
///   (controls, targets, justification, requester, owner, references,
///   remediation plan, risk, compensating controls, `expiresAt`,
///   `reviewInterval`, `type`) changes the hash.
///
/// Keys are sorted explicitly, so the hash does not depend on whether
/// serde_json's `preserve_order` feature is enabled anywhere in the build.
pub fn spec_hash(spec: &SecurityExceptionSpec) -> String {
    // Serializing the derived spec types cannot fail (every map is keyed by
    // strings); should it ever, the hash is still stable and matches no spec.
    let value = serde_json::to_value(spec)
        .unwrap_or_else(|error| serde_json::Value::String(format!("unserializable spec: {error}")));
    let mut canonical = String::new();
    write_canonical(&value, &mut canonical);
    format!("sha256:{}", hex(&Sha256::digest(canonical.as_bytes())))
}

/// Writes compact JSON with every object's keys in byte order.
fn write_canonical(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            let mut entries: Vec<(&String, &Value)> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(key.clone()).to_string());
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&scalar.to_string()),
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write as _;
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

// ---------------------------------------------------------------------------
// Records and seals

/// What a sealed record attests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// The authenticated creator of the exception (`exceptions.dev/requested-by`).
    Request,
    /// An approval of one spec (`exceptions.dev/approved-by`).
    Approve,
    /// A denial of one spec, with a reason (`exceptions.dev/denied-by`).
    Deny,
    /// A revocation of one spec, with a reason (`exceptions.dev/revoked-by`).
    Revoke,
}

impl Action {
    /// The action as sealed messages spell it: `request`, `approve`, `deny`, `revoke`.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Request => "request",
            Action::Approve => "approve",
            Action::Deny => "deny",
            Action::Revoke => "revoke",
        }
    }

    /// The annotation holding the sealed records of this action: a single
    /// record for [`Action::Request`], a JSON array for the others.
    pub fn record_annotation(self) -> &'static str {
        match self {
            Action::Request => annotations::REQUESTED_BY,
            Action::Approve => annotations::APPROVED_BY,
            Action::Deny => annotations::DENIED_BY,
            Action::Revoke => annotations::REVOKED_BY,
        }
    }

    /// The annotation a person sets to ask for this action (none for
    /// [`Action::Request`], which is the creation of the object itself).
    pub fn request_annotation(self) -> Option<&'static str> {
        match self {
            Action::Request => None,
            Action::Approve => Some(annotations::APPROVE),
            Action::Deny => Some(annotations::DENY),
            Action::Revoke => Some(annotations::REVOKE),
        }
    }

    /// The action as a noun in messages: `request`, `approval`, `denial`, `revocation`.
    pub fn noun(self) -> &'static str {
        match self {
            Action::Request => "request",
            Action::Approve => "approval",
            Action::Deny => "denial",
            Action::Revoke => "revocation",
        }
    }
}

impl fmt::Display for Action {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A record the admission webhook stores in an annotation after checking the
/// authenticated request: who did what, for which spec, when, and the seal
/// that proves the operator wrote it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SealedRecord {
    /// The authenticated user name.
    pub user: String,
    /// The authenticated user's uid, where the authenticator provides one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The user's groups at the time of the request (they decide whether an
    /// approver is authorised by a rule that names groups).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub groups: Vec<String>,
    /// The spec hash the record is bound to; empty for the requester record,
    /// which is bound to the object but not to one spec.
    #[serde(rename = "specHash", default, skip_serializing_if = "String::is_empty")]
    pub spec_hash: String,
    /// When the webhook admitted the request (whole seconds).
    pub at: Timestamp,
    /// The reason given, for denials and revocations.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Base64 HMAC-SHA256 under the operator's seal key over every field
    /// above plus the action, namespace and name.
    pub seal: String,
}

/// Errors of the approval helpers that can fail for reasons outside the
/// object: randomness, key material, signing.
#[derive(Debug, thiserror::Error)]
pub enum ApprovalError {
    /// The operating system's random number generator failed.
    #[error("cannot generate a seal key: the system random number generator failed: {0}")]
    Random(getrandom::Error),
    /// A seal key is too short to be secure.
    #[error("a seal key must be at least {SEAL_KEY_MIN_LEN} bytes, got {0}")]
    KeyTooShort(usize),
    /// The private key could not sign (e.g. it is encrypted, or its
    /// algorithm is not supported).
    #[error("cannot sign the approval with this key")]
    Sign(#[source] ssh_key::Error),
}

/// The operator's secret key for sealing records: at least
/// [`SEAL_KEY_MIN_LEN`] random bytes, shared by every webhook replica and the
/// controller (from a Secret). Its Debug form never shows the key.
#[derive(Clone)]
pub struct SealKey(Vec<u8>);

impl fmt::Debug for SealKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SealKey(<{} bytes, redacted>)", self.0.len())
    }
}

type HmacSha256 = Hmac<Sha256>;

impl SealKey {
    /// A fresh key of 32 random bytes from the operating system.
    pub fn generate() -> Result<SealKey, ApprovalError> {
        let mut bytes = vec![0u8; SEAL_KEY_MIN_LEN];
        getrandom::fill(&mut bytes).map_err(ApprovalError::Random)?;
        Ok(SealKey(bytes))
    }

    /// A key from stored bytes (at least [`SEAL_KEY_MIN_LEN`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<SealKey, ApprovalError> {
        if bytes.len() < SEAL_KEY_MIN_LEN {
            return Err(ApprovalError::KeyTooShort(bytes.len()));
        }
        Ok(SealKey(bytes.to_vec()))
    }

    /// The key bytes, to store in a Secret. Handle with care.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    fn mac(
        &self,
        action: Action,
        namespace: &str,
        name: &str,
        record: &SealedRecord,
    ) -> HmacSha256 {
        // HMAC accepts keys of any length, so this never fails.
        let Ok(mut mac) = HmacSha256::new_from_slice(&self.0) else {
            unreachable!("HMAC-SHA256 accepts keys of any length")
        };
        mac.update(seal_message(action, namespace, name, record).as_bytes());
        mac
    }

    /// The seal of a record (its `seal` field is ignored): base64 (standard)
    /// HMAC-SHA256 over the canonical message of the version tag, action,
    /// namespace, name, spec hash, user, uid, groups, `at` (RFC 3339) and
    /// reason.
    pub fn seal(
        &self,
        action: Action,
        namespace: &str,
        name: &str,
        record: &SealedRecord,
    ) -> String {
        BASE64.encode(
            self.mac(action, namespace, name, record)
                .finalize()
                .into_bytes(),
        )
    }

    /// Whether the record's `seal` is this key's seal of the record for this
    /// action and object (compared in constant time).
    pub fn verify(
        &self,
        action: Action,
        namespace: &str,
        name: &str,
        record: &SealedRecord,
    ) -> bool {
        let Ok(seal) = BASE64.decode(record.seal.trim()) else {
            return false;
        };
        self.mac(action, namespace, name, record)
            .verify_slice(&seal)
            .is_ok()
    }
}

/// The sealed message: a JSON array, so that no two different inputs give
/// the same text (every string is quoted and escaped, absent values are null).
fn seal_message(action: Action, namespace: &str, name: &str, record: &SealedRecord) -> String {
    serde_json::json!([
        SEAL_VERSION,
        action.as_str(),
        namespace,
        name,
        record.spec_hash,
        record.user,
        record.uid,
        record.groups,
        record.at.to_string(),
        record.reason,
    ])
    .to_string()
}

// ---------------------------------------------------------------------------
// Signatures (GitOps mode)

/// The message an approver signs: `exceptions.dev/v1alpha1 approve
/// {namespace}/{name} {spec_hash}` and a newline, so that
/// `printf '...\n' | ssh-keygen -Y sign -n exceptions.dev -f KEY` signs it.
pub fn approval_message(namespace: &str, name: &str, spec_hash: &str) -> String {
    format!("exceptions.dev/v1alpha1 approve {namespace}/{name} {spec_hash}\n")
}

/// One element of the `exceptions.dev/approval-signatures` JSON array.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignatureEntry {
    /// The configured signer name (`approval.signers[].name`).
    pub signer: String,
    /// The armored SSH signature (`-----BEGIN SSH SIGNATURE-----`), as
    /// `ssh-keygen -Y sign -n exceptions.dev` writes it, over
    /// [`approval_message`].
    pub signature: String,
}

/// Signs the approval of one spec of one exception: an armored SSH signature
/// (SHA-512, namespace [`annotations::SIGNATURE_NAMESPACE`]) over
/// [`approval_message`], identical in format to `ssh-keygen -Y sign`.
pub fn sign_approval(
    private_key: &PrivateKey,
    namespace: &str,
    name: &str,
    spec_hash: &str,
) -> Result<String, ApprovalError> {
    let message = approval_message(namespace, name, spec_hash);
    let signature = private_key
        .sign(
            annotations::SIGNATURE_NAMESPACE,
            HashAlg::Sha512,
            message.as_bytes(),
        )
        .map_err(ApprovalError::Sign)?;
    signature
        .to_pem(LineEnding::LF)
        .map_err(ApprovalError::Sign)
}

/// Why a signature does not count.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum SignatureError {
    /// No signer of that name is configured.
    #[error("no signer named {signer} is configured (approval.signers)")]
    UnknownSigner {
        /// The name in the entry.
        signer: String,
    },
    /// The text is not an armored SSH signature.
    #[error("the signature of {signer} is not an armored SSH signature: {reason}")]
    Malformed {
        /// The signer name.
        signer: String,
        /// The parser's reason.
        reason: String,
    },
    /// The signature was made for another SSH signature namespace.
    #[error(
        "the signature of {signer} was made for namespace {found:?}, not {expected:?} (sign with ssh-keygen -Y sign -n {expected})",
        expected = annotations::SIGNATURE_NAMESPACE
    )]
    WrongNamespace {
        /// The signer name.
        signer: String,
        /// The namespace in the signature.
        found: String,
    },
    /// The signature was made by another key than the signer's configured key.
    #[error(
        "the signature of {signer} was made with another key than the one configured for {signer}"
    )]
    WrongKey {
        /// The signer name.
        signer: String,
    },
    /// The signature does not verify over this exception's approval message.
    #[error(
        "the signature of {signer} does not verify for {subject} at the current spec {spec_hash}: it was made for another spec or exception, or altered"
    )]
    Mismatch {
        /// The signer name.
        signer: String,
        /// `namespace/name`.
        subject: String,
        /// The current spec hash.
        spec_hash: String,
    },
}

/// Verifies one signature entry against the configured signers: the signer
/// must be configured, and the signature must be theirs, in namespace
/// [`annotations::SIGNATURE_NAMESPACE`], over the approval message of this
/// namespace, name and spec hash.
pub fn verify_signature<'c>(
    config: &'c Config,
    namespace: &str,
    name: &str,
    spec_hash: &str,
    entry: &SignatureEntry,
) -> Result<&'c Signer, SignatureError> {
    let signer_name = &entry.signer;
    let signer = config
        .signer(signer_name)
        .ok_or_else(|| SignatureError::UnknownSigner {
            signer: signer_name.clone(),
        })?;
    let signature =
        SshSig::from_pem(entry.signature.trim()).map_err(|e| SignatureError::Malformed {
            signer: signer_name.clone(),
            reason: e.to_string(),
        })?;
    if signature.namespace() != annotations::SIGNATURE_NAMESPACE {
        return Err(SignatureError::WrongNamespace {
            signer: signer_name.clone(),
            found: signature.namespace().to_string(),
        });
    }
    if signature.public_key() != signer.key.key_data() {
        return Err(SignatureError::WrongKey {
            signer: signer_name.clone(),
        });
    }
    let message = approval_message(namespace, name, spec_hash);
    signer
        .key
        .verify(
            annotations::SIGNATURE_NAMESPACE,
            message.as_bytes(),
            &signature,
        )
        .map_err(|_| SignatureError::Mismatch {
            signer: signer_name.clone(),
            subject: format!("{namespace}/{name}"),
            spec_hash: spec_hash.to_string(),
        })?;
    Ok(signer)
}

// ---------------------------------------------------------------------------
// The verdict

/// How an approver's identity was verified.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum ApprovalMethod {
    /// The authenticated request, sealed by the operator's webhook.
    Identity,
    /// An SSH signature by a configured signer key.
    Signature,
}

impl ApprovalMethod {
    /// `Identity` or `Signature`, as `status.approvals[].method` spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            ApprovalMethod::Identity => "Identity",
            ApprovalMethod::Signature => "Signature",
        }
    }
}

/// One approval that counts toward the quorum.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VerifiedApproval {
    /// The approver: the authenticated user name, or the signer name.
    pub approver: String,
    /// How the identity was verified.
    pub method: ApprovalMethod,
    /// When it was given (identity mode only: signatures carry no time).
    pub at: Option<Timestamp>,
    /// The spec hash it approves (always the current one).
    pub spec_hash: String,
}

impl From<&VerifiedApproval> for ApprovalRecord {
    fn from(approval: &VerifiedApproval) -> Self {
        ApprovalRecord {
            approver: approval.approver.clone(),
            approved_at: approval
                .at
                .map(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time),
            method: approval.method.as_str().to_string(),
            spec_hash: approval.spec_hash.clone(),
        }
    }
}

/// What the annotations of an exception prove, for its current spec.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The canonical hash of the current spec.
    pub spec_hash: String,
    /// The authenticated creator, only if its seal verifies.
    pub requester: Option<SealedRecord>,
    /// Distinct approvers of the current spec, authorised by the rule for the
    /// exception's rating, none of them the requester; identity approvals
    /// first, in annotation order, then signatures.
    pub approvals: Vec<VerifiedApproval>,
    /// How many distinct approvers the rule requires (1 when no rule covers
    /// the rating, in which case the quorum is never met).
    pub quorum: u32,
    /// Whether `approvals` reaches `quorum` under a rule for the rating.
    pub quorum_met: bool,
    /// The latest valid denial of the current spec.
    pub denial: Option<SealedRecord>,
    /// The latest valid revocation of the current spec.
    pub revocation: Option<SealedRecord>,
    /// One sentence per record or signature that did not count, and why.
    pub ignored: Vec<String>,
}

impl Verdict {
    /// Whether this person (user or signer name, compared case-insensitively)
    /// already has a counted approval.
    pub fn approved_by(&self, who: &str) -> bool {
        self.approvals
            .iter()
            .any(|a| a.approver.eq_ignore_ascii_case(who))
    }
}

/// The namespace and name of the object, which seals and signatures bind to.
fn subject(exception: &SecurityException) -> Option<(&str, &str)> {
    let namespace = exception
        .metadata
        .namespace
        .as_deref()
        .filter(|n| !n.is_empty())?;
    let name = exception
        .metadata
        .name
        .as_deref()
        .filter(|n| !n.is_empty())?;
    Some((namespace, name))
}

fn annotation<'a>(exception: &'a SecurityException, key: &str) -> Option<&'a str> {
    exception
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(key))
        .map(String::as_str)
}

/// The sealed records of an action stored on the exception (not verified).
/// A malformed annotation is an error naming it.
pub fn stored_records(
    exception: &SecurityException,
    action: Action,
) -> Result<Vec<SealedRecord>, String> {
    let key = action.record_annotation();
    let Some(text) = annotation(exception, key) else {
        return Ok(vec![]);
    };
    let parsed = if action == Action::Request {
        serde_json::from_str::<SealedRecord>(text).map(|r| vec![r])
    } else {
        serde_json::from_str::<Vec<SealedRecord>>(text)
    };
    parsed.map_err(|e| format!("annotation {key} is not valid ({e}); it counts for nothing"))
}

/// The new value of an action's record annotation with `record` added:
/// the record itself for [`Action::Request`] (replacing any value), else the
/// existing JSON array with the record appended (a malformed existing value,
/// which counts for nothing, is replaced).
pub fn with_record(
    existing: Option<&str>,
    action: Action,
    record: &SealedRecord,
) -> Result<String, serde_json::Error> {
    if action == Action::Request {
        return serde_json::to_string(record);
    }
    let mut records: Vec<SealedRecord> = existing
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or_default();
    records.push(record.clone());
    serde_json::to_string(&records)
}

fn same_name(a: &str, b: &str) -> bool {
    a.trim().eq_ignore_ascii_case(b.trim())
}

/// Whether a person (user name, uid) is the requester: the verified
/// requester record's user or uid, or the name in `spec.requester`.
fn is_requester(
    user: &str,
    uid: Option<&str>,
    requester: Option<&SealedRecord>,
    spec_requester: Option<&str>,
) -> bool {
    let by_record = requester.is_some_and(|r| {
        same_name(&r.user, user) || matches!((r.uid.as_deref(), uid), (Some(a), Some(b)) if a == b)
    });
    let by_spec =
        spec_requester.is_some_and(|name| !name.trim().is_empty() && same_name(name, user));
    by_record || by_spec
}

/// The approver identities already counted, to count each person once.
#[derive(Default)]
struct Counted(Vec<(String, Option<String>)>);

impl Counted {
    fn contains(&self, name: &str, uid: Option<&str>) -> bool {
        self.0.iter().any(|(n, u)| {
            same_name(n, name) || matches!((u.as_deref(), uid), (Some(a), Some(b)) if a == b)
        })
    }

    fn add(&mut self, name: &str, uid: Option<&str>) {
        self.0.push((name.to_string(), uid.map(str::to_string)));
    }
}

/// Computes what the exception's annotations prove, from the object alone,
/// the seal key and the configuration.
///
/// - Namespace and name come from `metadata`; without both nothing verifies.
/// - A record counts only if its seal verifies for this namespace, name and
///   action; approvals, denials and revocations only for the current spec hash.
/// - The requester (by user name, by uid when both have one, or by the name in
///   `spec.requester`) never counts as an approver. Without a verified
///   requester record, identity approvals do not count (fail closed), but
///   signatures can, unless the signer's name is `spec.requester`.
/// - An approver counts if authorised by the rule for the rating (user in
///   `approvers.users`, or one of the record's groups / the signer's
///   configured groups in `approvers.groups`), once per person (by name,
///   case-insensitively, or uid), whether by identity, signature or both.
/// - Denials and revocations are not re-authorised against the current
///   configuration: the webhook authorised them when it sealed them, and
///   honouring them can only keep an exception out of force.
pub fn verify(exception: &SecurityException, key: &SealKey, config: &Config) -> Verdict {
    let spec = &exception.spec;
    let hash = spec_hash(spec);
    let rating = spec.risk.rating;
    let rule = config.rule_for(rating);
    let mut verdict = Verdict {
        spec_hash: hash.clone(),
        requester: None,
        approvals: vec![],
        quorum: rule.map_or(1, |r| r.quorum.max(1)),
        quorum_met: false,
        denial: None,
        revocation: None,
        ignored: vec![],
    };
    let Some((namespace, name)) = subject(exception) else {
        verdict.ignored.push(
            "the exception has no namespace or name, so no record or signature can be verified"
                .into(),
        );
        return verdict;
    };
    if rule.is_none() {
        verdict.ignored.push(format!(
            "no approval rule covers risk rating {rating:?}, so no approval is authorised"
        ));
    }
    let records =
        |action: Action, ignored: &mut Vec<String>| match stored_records(exception, action) {
            Ok(records) => records,
            Err(message) => {
                ignored.push(message);
                vec![]
            }
        };

    // The requester.
    if let Some(record) = records(Action::Request, &mut verdict.ignored).pop() {
        if key.verify(Action::Request, namespace, name, &record) {
            verdict.requester = Some(record);
        } else {
            verdict.ignored.push(format!(
                "the requester record of {} has no valid seal (written while the admission webhook was not running, edited, or copied from another exception); the requester is not verified",
                record.user
            ));
        }
    }
    let spec_requester = spec.requester.as_deref();
    let mut counted = Counted::default();

    // Identity-mode approvals.
    for record in records(Action::Approve, &mut verdict.ignored) {
        let who = &record.user;
        let why_not = if !key.verify(Action::Approve, namespace, name, &record) {
            Some("its seal does not verify (written while the admission webhook was not running, edited, or copied from another exception)".to_string())
        } else if record.spec_hash != hash {
            Some(format!(
                "it approves spec {} but the current spec is {hash}; the spec changed since, so it must be approved again",
                record.spec_hash
            ))
        } else if verdict.requester.is_none() {
            Some("the requester of this exception is not verified, so self-approval cannot be ruled out".to_string())
        } else if is_requester(
            who,
            record.uid.as_deref(),
            verdict.requester.as_ref(),
            spec_requester,
        ) {
            Some(format!("{who} requested this exception"))
        } else if let Some(rule) = rule.filter(|r| !r.approvers.authorise(who, &record.groups)) {
            Some(not_an_approver(who, rating, &rule.approvers))
        } else if rule.is_none() {
            Some(format!("no approval rule covers risk rating {rating:?}"))
        } else if counted.contains(who, record.uid.as_deref()) {
            Some(format!("{who} already approved; each approver counts once"))
        } else {
            None
        };
        match why_not {
            Some(reason) => verdict
                .ignored
                .push(format!("approval by {who} does not count: {reason}")),
            None => {
                counted.add(who, record.uid.as_deref());
                verdict.approvals.push(VerifiedApproval {
                    approver: who.clone(),
                    method: ApprovalMethod::Identity,
                    at: Some(record.at),
                    spec_hash: hash.clone(),
                });
            }
        }
    }

    // Signature-mode approvals.
    if let Some(text) = annotation(exception, annotations::APPROVAL_SIGNATURES) {
        match serde_json::from_str::<Vec<SignatureEntry>>(text) {
            Err(e) => verdict.ignored.push(format!(
                "annotation {} is not a JSON array of {{\"signer\", \"signature\"}} ({e}); it counts for nothing",
                annotations::APPROVAL_SIGNATURES
            )),
            Ok(entries) => {
                for entry in entries {
                    let who = &entry.signer;
                    let why_not = match verify_signature(config, namespace, name, &hash, &entry) {
                        Err(error) => Some(error.to_string()),
                        Ok(signer) => {
                            if is_requester(&signer.name, None, verdict.requester.as_ref(), spec_requester) {
                                Some(format!("{who} requested this exception"))
                            } else if let Some(rule) =
                                rule.filter(|r| !r.approvers.authorise(&signer.name, &signer.groups))
                            {
                                Some(not_an_approver(who, rating, &rule.approvers))
                            } else if rule.is_none() {
                                Some(format!("no approval rule covers risk rating {rating:?}"))
                            } else if counted.contains(&signer.name, None) {
                                Some(format!("{who} already approved; each approver counts once"))
                            } else {
                                None
                            }
                        }
                    };
                    match why_not {
                        Some(reason) => verdict
                            .ignored
                            .push(format!("signature by {who} does not count: {reason}")),
                        None => {
                            counted.add(who, None);
                            verdict.approvals.push(VerifiedApproval {
                                approver: who.clone(),
                                method: ApprovalMethod::Signature,
                                at: None,
                                spec_hash: hash.clone(),
                            });
                        }
                    }
                }
            }
        }
    }

    // Denials and revocations: the latest valid one for the current spec.
    for (action, slot) in [
        (Action::Deny, &mut verdict.denial),
        (Action::Revoke, &mut verdict.revocation),
    ] {
        for record in records(action, &mut verdict.ignored) {
            let who = &record.user;
            let why_not = if !key.verify(action, namespace, name, &record) {
                Some("its seal does not verify (written while the admission webhook was not running, edited, or copied from another exception)".to_string())
            } else if record.spec_hash != hash {
                Some(format!(
                    "it concerns spec {} but the current spec is {hash}",
                    record.spec_hash
                ))
            } else {
                None
            };
            match why_not {
                Some(reason) => verdict.ignored.push(format!(
                    "{} by {who} does not count: {reason}",
                    action.noun()
                )),
                None => {
                    if slot.as_ref().is_none_or(|latest| record.at >= latest.at) {
                        *slot = Some(record);
                    }
                }
            }
        }
    }

    verdict.quorum_met = rule.is_some() && verdict.approvals.len() >= verdict.quorum as usize;
    verdict
}

fn not_an_approver(who: &str, rating: RiskLevel, approvers: &Approvers) -> String {
    format!("{who} is not an approver for risk rating {rating:?} (approvers: {approvers})")
}

// ---------------------------------------------------------------------------
// Admission: authorising and sealing requests

/// The authenticated user of an admission request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UserInfo {
    /// The user name.
    pub username: String,
    /// The uid, where the authenticator provides one.
    pub uid: Option<String>,
    /// The groups.
    pub groups: Vec<String>,
}

impl From<&k8s_openapi::api::authentication::v1::UserInfo> for UserInfo {
    fn from(user: &k8s_openapi::api::authentication::v1::UserInfo) -> Self {
        UserInfo {
            username: user.username.clone().unwrap_or_default(),
            uid: user.uid.clone().filter(|uid| !uid.is_empty()),
            groups: user.groups.clone().unwrap_or_default(),
        }
    }
}

/// Why the webhook refuses an approve, deny or revoke request. The Display
/// text is meant for the person who made the request.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Rejection {
    /// The object has no namespace or name to bind records to.
    #[error(
        "{} rejected: the exception has no namespace or name yet (generateName is not supported for SecurityExceptions; give metadata.name)",
        action.noun()
    )]
    NoName {
        /// The action requested.
        action: Action,
    },
    /// An approve request without a value, or a deny/revoke request without a reason.
    #[error("{}", missing_value(*action))]
    MissingValue {
        /// The action requested.
        action: Action,
    },
    /// The approval names another spec than the current one.
    #[error(
        "approval rejected: the approval names spec {named} but the current spec is {current}; re-read the exception and approve again"
    )]
    StaleSpec {
        /// The hash the approval names.
        named: String,
        /// The current spec hash.
        current: String,
    },
    /// No rule covers the rating, so nobody may decide.
    #[error(
        "{} rejected: no approval rule covers risk rating {rating:?}; the operator's configuration (approval.rules) must cover it",
        action.noun()
    )]
    NoRule {
        /// The action requested.
        action: Action,
        /// The exception's rating.
        rating: RiskLevel,
    },
    /// The requester record is missing or its seal does not verify.
    #[error(
        "approval rejected: the requester of this exception is not verified (it was created while the admission webhook was not running); re-create it"
    )]
    RequesterUnverified,
    /// The requester tried to approve their own exception.
    #[error(
        "approval by {user} rejected: {user} requested this exception; a different approver from {approvers} must approve"
    )]
    SelfApproval {
        /// The user.
        user: String,
        /// Who may approve instead (`group security-approvers`).
        approvers: String,
    },
    /// The user is not an approver for the rating.
    #[error(
        "{} by {user} rejected: {user} is not an approver for risk rating {rating:?} (approvers: {approvers})",
        action.noun()
    )]
    NotAuthorised {
        /// The action requested.
        action: Action,
        /// The user.
        user: String,
        /// The exception's rating.
        rating: RiskLevel,
        /// The rule's approvers (`groups security-leads`).
        approvers: String,
    },
    /// The user already has a counted approval of this spec.
    #[error("{user} already approved this spec")]
    AlreadyApproved {
        /// The user.
        user: String,
    },
    /// The current spec was denied or revoked.
    #[error(
        "approval rejected: this spec was {} by {by} ({reason}); change the spec to ask for approval again",
        if *action == Action::Deny { "denied" } else { "revoked" }
    )]
    Decided {
        /// [`Action::Deny`] or [`Action::Revoke`].
        action: Action,
        /// Who decided.
        by: String,
        /// Their reason.
        reason: String,
    },
}

fn missing_value(action: Action) -> String {
    match action {
        Action::Approve => format!(
            "approval rejected: set {} to the spec hash you approve (exception-operator hash prints it)",
            annotations::APPROVE
        ),
        other => format!(
            "{} rejected: a reason is required as the value of {}",
            other.noun(),
            other.request_annotation().unwrap_or_default()
        ),
    }
}

/// Checks that `user` may make the request `action` on `exception` (the
/// object as it will be stored, carrying the request annotation):
///
/// - [`Action::Request`] (creation) is always allowed: the webhook records
///   the creator.
/// - [`Action::Approve`]: the annotation must name the current spec hash; a
///   rule must cover the rating; the requester must be verified; the user
///   must not be the requester (user name, uid or `spec.requester`), must be
///   an approver for the rating, must not have approved this spec already;
///   the spec must not be denied or revoked.
/// - [`Action::Deny`], [`Action::Revoke`]: a non-empty reason, and the user
///   is an approver for the rating; the verified requester may also revoke
///   (withdraw) their own exception.
pub fn authorize_request(
    exception: &SecurityException,
    action: Action,
    user: &UserInfo,
    key: &SealKey,
    config: &Config,
) -> Result<(), Rejection> {
    let Some(request_annotation) = action.request_annotation() else {
        return Ok(());
    };
    subject(exception).ok_or(Rejection::NoName { action })?;
    let value = annotation(exception, request_annotation)
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .ok_or(Rejection::MissingValue { action })?;
    let rating = exception.spec.risk.rating;
    let verdict = verify(exception, key, config);
    let rule = config.rule_for(rating);
    let who = &user.username;
    let uid = user.uid.as_deref();
    let not_authorised = |approvers: &Approvers| Rejection::NotAuthorised {
        action,
        user: who.clone(),
        rating,
        approvers: approvers.to_string(),
    };

    if action == Action::Approve {
        if value != verdict.spec_hash {
            return Err(Rejection::StaleSpec {
                named: value.to_string(),
                current: verdict.spec_hash,
            });
        }
        let rule = rule.ok_or(Rejection::NoRule { action, rating })?;
        let requester = verdict
            .requester
            .as_ref()
            .ok_or(Rejection::RequesterUnverified)?;
        if is_requester(
            who,
            uid,
            Some(requester),
            exception.spec.requester.as_deref(),
        ) {
            return Err(Rejection::SelfApproval {
                user: who.clone(),
                approvers: rule.approvers.describe_from(),
            });
        }
        if !rule.approvers.authorise(who, &user.groups) {
            return Err(not_authorised(&rule.approvers));
        }
        if verdict.approved_by(who) {
            return Err(Rejection::AlreadyApproved { user: who.clone() });
        }
        for (decided, record) in [
            (Action::Revoke, &verdict.revocation),
            (Action::Deny, &verdict.denial),
        ] {
            if let Some(record) = record {
                return Err(Rejection::Decided {
                    action: decided,
                    by: record.user.clone(),
                    reason: record.reason.clone().unwrap_or_default(),
                });
            }
        }
        return Ok(());
    }

    // Deny or revoke.
    let withdrawing = action == Action::Revoke
        && verdict.requester.as_ref().is_some_and(|r| {
            r.user == *who || matches!((r.uid.as_deref(), uid), (Some(a), Some(b)) if a == b)
        });
    if withdrawing {
        return Ok(());
    }
    let rule = rule.ok_or(Rejection::NoRule { action, rating })?;
    if !rule.approvers.authorise(who, &user.groups) {
        return Err(not_authorised(&rule.approvers));
    }
    Ok(())
}

/// Authorises the request (as [`authorize_request`]) and produces the
/// sealed record the webhook stores under [`Action::record_annotation`]
/// (see [`with_record`]), after which it removes the request annotation.
///
/// The record carries the authenticated user, uid and groups; the current
/// spec hash (empty for [`Action::Request`]); `at` (the caller's clock,
/// truncated to whole seconds); and for deny and revoke the trimmed reason
/// from the request annotation.
pub fn seal_request(
    exception: &SecurityException,
    action: Action,
    user: &UserInfo,
    at: Timestamp,
    key: &SealKey,
    config: &Config,
) -> Result<SealedRecord, Rejection> {
    authorize_request(exception, action, user, key, config)?;
    let (namespace, name) = subject(exception).ok_or(Rejection::NoName { action })?;
    let spec_hash = match action {
        Action::Request => String::new(),
        _ => spec_hash(&exception.spec),
    };
    let reason = match action {
        Action::Deny | Action::Revoke => action
            .request_annotation()
            .and_then(|key| annotation(exception, key))
            .map(|reason| reason.trim().to_string()),
        Action::Request | Action::Approve => None,
    };
    let mut record = SealedRecord {
        user: user.username.clone(),
        uid: user.uid.clone(),
        groups: user.groups.clone(),
        spec_hash,
        at: Timestamp::from_second(at.as_second()).unwrap_or(at),
        reason,
        seal: String::new(),
    };
    record.seal = key.seal(action, namespace, name, &record);
    Ok(record)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::RiskLevel::{Critical, High, Low};
    use std::collections::BTreeMap;
    use std::path::{Path, PathBuf};
    use std::process::Command;

    // -- builders -----------------------------------------------------------

    fn seal_key() -> SealKey {
        SealKey::from_bytes(&[7u8; 32]).unwrap()
    }

    fn other_key() -> SealKey {
        SealKey::from_bytes(&[8u8; 32]).unwrap()
    }

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn user(name: &str) -> UserInfo {
        UserInfo {
            username: name.into(),
            uid: None,
            groups: vec![],
        }
    }

    trait UserExt {
        fn in_group(self, group: &str) -> Self;
        fn with_uid(self, uid: &str) -> Self;
    }

    impl UserExt for UserInfo {
        fn in_group(mut self, group: &str) -> Self {
            self.groups.push(group.into());
            self
        }
        fn with_uid(mut self, uid: &str) -> Self {
            self.uid = Some(uid.into());
            self
        }
    }

    /// Carol's and Dave's signing keys (deterministic, for signature tests).
    fn private_key(seed: u8) -> PrivateKey {
        PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[seed; 32]))
    }

    fn public_key_line(seed: u8) -> String {
        private_key(seed).public_key().to_openssh().unwrap()
    }

    const CAROL: u8 = 1;
    const DAVE: u8 = 2;
    const MALLORY: u8 = 3;

    /// The default rules plus signers carol (security-leads), dave
    /// (security-approvers) and alice (the usual requester, security-leads).
    fn config() -> Config {
        let yaml = format!(
            "approval:\n  signers:\n    - {{name: carol@example.com, key: \"{}\", groups: [security-leads]}}\n    - {{name: dave@example.com, key: \"{}\", groups: [security-approvers]}}\n    - {{name: alice, key: \"{}\", groups: [security-leads]}}\n",
            public_key_line(CAROL),
            public_key_line(DAVE),
            public_key_line(MALLORY),
        );
        Config::from_yaml(&yaml).unwrap()
    }

    struct Builder {
        exception: SecurityException,
        key: SealKey,
        clock: Timestamp,
    }

    fn exception() -> Builder {
        let exception: SecurityException = serde_json::from_value(serde_json::json!({
            "apiVersion": "exceptions.dev/v1alpha1",
            "kind": "SecurityException",
            "metadata": {"name": "agent", "namespace": "team-a"},
            "spec": {
                "controls": [{"id": "capabilities_baseline", "values": ["NET_ADMIN"]}],
                "targets": {"kinds": ["DaemonSet"], "names": ["log-agent"]},
                "justification": "vendor agent needs raw sockets",
                "risk": {"rating": "Low"},
                "compensatingControls": ["agent-netpol"],
                "expiresAt": "2027-01-31T00:00:00Z"
            }
        }))
        .unwrap();
        Builder {
            exception,
            key: seal_key(),
            clock: at("2026-12-01T10:00:00Z"),
        }
    }

    impl Builder {
        fn rated(mut self, rating: RiskLevel) -> Self {
            self.exception.spec.risk.rating = rating;
            self
        }

        fn named(mut self, namespace: &str, name: &str) -> Self {
            self.exception.metadata.namespace = Some(namespace.into());
            self.exception.metadata.name = Some(name.into());
            self
        }

        fn naming_requester(mut self, name: &str) -> Self {
            self.exception.spec.requester = Some(name.into());
            self
        }

        fn annotations(&mut self) -> &mut BTreeMap<String, String> {
            self.exception
                .metadata
                .annotations
                .get_or_insert_with(BTreeMap::new)
        }

        fn tick(&mut self) -> Timestamp {
            self.clock += k8s_openapi::jiff::SignedDuration::from_mins(1);
            self.clock
        }

        /// Stores a record as the webhook would (without authorising it).
        fn store(mut self, action: Action, user: &UserInfo, reason: Option<&str>) -> Self {
            if let (Some(request), Some(value)) = (action.request_annotation(), reason) {
                self.annotations().insert(request.into(), value.into());
            }
            let (namespace, name) = {
                let (n, m) = subject(&self.exception).unwrap();
                (n.to_string(), m.to_string())
            };
            let mut record = SealedRecord {
                user: user.username.clone(),
                uid: user.uid.clone(),
                groups: user.groups.clone(),
                spec_hash: if action == Action::Request {
                    String::new()
                } else {
                    spec_hash(&self.exception.spec)
                },
                at: self.tick(),
                reason: reason.map(str::to_string),
                seal: String::new(),
            };
            record.seal = self.key.seal(action, &namespace, &name, &record);
            if let Some(request) = action.request_annotation() {
                self.annotations().remove(request);
            }
            let existing = self.annotations().get(action.record_annotation()).cloned();
            let value = with_record(existing.as_deref(), action, &record).unwrap();
            self.annotations()
                .insert(action.record_annotation().into(), value);
            self
        }

        fn requested_by(self, user: &UserInfo) -> Self {
            self.store(Action::Request, user, None)
        }

        fn approved_by(self, user: &UserInfo) -> Self {
            self.store(Action::Approve, user, None)
        }

        fn denied_by(self, user: &UserInfo, reason: &str) -> Self {
            self.store(Action::Deny, user, Some(reason))
        }

        fn revoked_by(self, user: &UserInfo, reason: &str) -> Self {
            self.store(Action::Revoke, user, Some(reason))
        }

        fn signed_by(self, signer: &str, seed: u8) -> Self {
            let (namespace, name) = subject(&self.exception).unwrap();
            let hash = spec_hash(&self.exception.spec);
            let signature = sign_approval(&private_key(seed), namespace, name, &hash).unwrap();
            self.add_signature(signer, &signature)
        }

        fn add_signature(mut self, signer: &str, signature: &str) -> Self {
            let mut entries: Vec<SignatureEntry> = self
                .annotations()
                .get(annotations::APPROVAL_SIGNATURES)
                .map(|t| serde_json::from_str(t).unwrap())
                .unwrap_or_default();
            entries.push(SignatureEntry {
                signer: signer.into(),
                signature: signature.into(),
            });
            let value = serde_json::to_string(&entries).unwrap();
            self.annotations()
                .insert(annotations::APPROVAL_SIGNATURES.into(), value);
            self
        }

        /// Changes the spec after the fact (as a later `kubectl apply` would).
        fn extended(mut self) -> Self {
            self.exception.spec.expires_at.0 += k8s_openapi::jiff::SignedDuration::from_hours(24);
            self
        }

        fn requesting(mut self, action: Action, value: &str) -> Self {
            let request = action.request_annotation().unwrap();
            self.annotations().insert(request.into(), value.into());
            self
        }

        fn requesting_approval(self) -> Self {
            let hash = self.hash();
            self.requesting(Action::Approve, &hash)
        }

        fn hash(&self) -> String {
            spec_hash(&self.exception.spec)
        }

        fn build(self) -> SecurityException {
            self.exception
        }

        fn verdict(&self) -> Verdict {
            verify(&self.exception, &seal_key(), &config())
        }
    }

    fn alice() -> UserInfo {
        user("alice").in_group("developers").with_uid("uid-alice")
    }
    fn bob() -> UserInfo {
        user("bob")
            .in_group("security-approvers")
            .in_group("security-leads")
    }
    fn erin() -> UserInfo {
        user("erin").in_group("security-leads")
    }
    fn frank() -> UserInfo {
        user("frank").in_group("developers")
    }

    fn approvers(verdict: &Verdict) -> Vec<(&str, ApprovalMethod)> {
        verdict
            .approvals
            .iter()
            .map(|a| (a.approver.as_str(), a.method))
            .collect()
    }

    fn ignored_mentions(verdict: &Verdict, text: &str) -> bool {
        verdict
            .ignored
            .iter()
            .any(|sentence| sentence.contains(text))
    }

    // -- spec hash ----------------------------------------------------------

    fn spec_from(json: serde_json::Value) -> SecurityExceptionSpec {
        serde_json::from_value(json).unwrap()
    }

    fn base_spec() -> serde_json::Value {
        serde_json::json!({
            "controls": [{"id": "hostPorts", "values": ["8080"]}],
            "targets": {"names": ["web"]},
            "justification": "legacy",
            "risk": {"rating": "Medium"},
            "expiresAt": "2027-01-31T00:00:00Z"
        })
    }

    #[test]
    fn spec_hash_has_the_documented_form() {
        let hash = spec_hash(&spec_from(base_spec()));
        assert!(hash.starts_with("sha256:"), "{hash}");
        assert_eq!(hash.len(), "sha256:".len() + 64);
        assert!(
            hash[7..]
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert_eq!(hash, spec_hash(&spec_from(base_spec())), "stable");
    }

    #[test]
    fn spec_hash_is_the_sha256_of_sorted_compact_json() {
        let spec = spec_from(base_spec());
        let compact = serde_json::to_string(&serde_json::to_value(&spec).unwrap()).unwrap();
        // Without preserve_order, serde_json writes sorted keys: the documented recipe.
        assert_eq!(
            spec_hash(&spec),
            format!("sha256:{}", hex(&Sha256::digest(compact.as_bytes())))
        );
        assert!(compact.starts_with("{\"controls\":"), "{compact}");
    }

    #[test]
    fn field_order_and_time_zone_do_not_matter() {
        let reordered: serde_json::Value = serde_json::from_str(
            r#"{"expiresAt": "2027-01-31T01:00:00+01:00", "risk": {"rating": "Medium"},
                "justification": "legacy", "targets": {"names": ["web"]},
                "controls": [{"values": ["8080"], "id": "hostPorts"}]}"#,
        )
        .unwrap();
        assert_eq!(
            spec_hash(&spec_from(reordered)),
            spec_hash(&spec_from(base_spec()))
        );
    }

    #[test]
    fn defaults_are_materialised() {
        let mut explicit = base_spec();
        explicit["type"] = "Exception".into();
        explicit["references"] = serde_json::json!([]);
        explicit["compensatingControls"] = serde_json::json!([]);
        assert_eq!(
            spec_hash(&spec_from(explicit)),
            spec_hash(&spec_from(base_spec()))
        );
    }

    #[test]
    fn any_field_change_changes_the_hash() {
        let original = spec_hash(&spec_from(base_spec()));
        let changes: Vec<(&str, serde_json::Value)> = vec![
            ("/type", "RiskAcceptance".into()),
            ("/controls/0/values/0", "8081".into()),
            ("/controls/0/id", "hostNamespaces".into()),
            ("/targets/names/0", "web-2".into()),
            ("/justification", "legacy!".into()),
            ("/risk/rating", "High".into()),
            ("/expiresAt", "2027-01-31T00:00:01Z".into()),
        ];
        for (pointer, value) in changes {
            let mut changed = base_spec();
            if pointer == "/type" {
                changed["type"] = value;
            } else {
                *changed.pointer_mut(pointer).unwrap() = value;
            }
            assert_ne!(spec_hash(&spec_from(changed)), original, "{pointer}");
        }
        for (field, value) in [
            ("requester", serde_json::json!("alice")),
            ("owner", serde_json::json!("team-a")),
            ("references", serde_json::json!(["JIRA-1"])),
            ("remediationPlan", serde_json::json!("upgrade")),
            ("compensatingControls", serde_json::json!(["netpol"])),
            ("reviewInterval", serde_json::json!("30d")),
        ] {
            let mut changed = base_spec();
            changed[field] = value;
            assert_ne!(spec_hash(&spec_from(changed)), original, "{field}");
        }
        let mut changed = base_spec();
        changed["risk"]["assessment"] = "reachable from the internet".into();
        assert_ne!(spec_hash(&spec_from(changed)), original, "risk.assessment");
        let mut changed = base_spec();
        changed["targets"]["selector"] = serde_json::json!({"matchLabels": {"app": "web"}});
        assert_ne!(spec_hash(&spec_from(changed)), original, "targets.selector");
    }

    // -- seals --------------------------------------------------------------

    fn record() -> SealedRecord {
        SealedRecord {
            user: "bob".into(),
            uid: Some("uid-bob".into()),
            groups: vec!["security-leads".into()],
            spec_hash: "sha256:aaaa".into(),
            at: at("2026-12-01T10:00:00Z"),
            reason: None,
            seal: String::new(),
        }
    }

    fn sealed(record: SealedRecord) -> SealedRecord {
        let seal = seal_key().seal(Action::Approve, "team-a", "agent", &record);
        SealedRecord { seal, ..record }
    }

    #[test]
    fn a_seal_verifies_for_its_action_and_object_only() {
        let key = seal_key();
        let record = sealed(record());
        assert!(key.verify(Action::Approve, "team-a", "agent", &record));
        assert!(
            !key.verify(Action::Approve, "team-b", "agent", &record),
            "other namespace"
        );
        assert!(
            !key.verify(Action::Approve, "team-a", "agent-2", &record),
            "other name"
        );
        assert!(
            !key.verify(Action::Deny, "team-a", "agent", &record),
            "other action"
        );
        assert!(
            !other_key().verify(Action::Approve, "team-a", "agent", &record),
            "other key"
        );
    }

    #[test]
    fn a_seal_breaks_when_any_field_is_edited() {
        let key = seal_key();
        let original = sealed(record());
        type Edit = Box<dyn Fn(&mut SealedRecord)>;
        let edits: Vec<(&str, Edit)> = vec![
            (
                "spec hash",
                Box::new(|r| r.spec_hash = "sha256:bbbb".into()),
            ),
            ("user", Box::new(|r| r.user = "mallory".into())),
            ("uid", Box::new(|r| r.uid = None)),
            ("groups", Box::new(|r| r.groups.push("admins".into()))),
            ("at", Box::new(|r| r.at = at("2026-12-01T10:00:01Z"))),
            ("reason", Box::new(|r| r.reason = Some("edited".into()))),
            ("seal", Box::new(|r| r.seal = BASE64.encode([0u8; 32]))),
            ("garbage seal", Box::new(|r| r.seal = "not base64!".into())),
        ];
        for (what, edit) in edits {
            let mut tampered = original.clone();
            edit(&mut tampered);
            assert!(
                !key.verify(Action::Approve, "team-a", "agent", &tampered),
                "{what}"
            );
        }
    }

    #[test]
    fn sealed_fields_cannot_be_shifted_between_each_other() {
        // Length-ambiguous concatenations must not collide.
        let key = seal_key();
        let a = key.seal(Action::Approve, "team-a", "b-c", &record());
        let b = key.seal(Action::Approve, "team-a-b", "c", &record());
        assert_ne!(a, b);
        let mut r1 = record();
        r1.groups = vec!["a,b".into()];
        let mut r2 = record();
        r2.groups = vec!["a".into(), "b".into()];
        assert_ne!(
            key.seal(Action::Approve, "ns", "n", &r1),
            key.seal(Action::Approve, "ns", "n", &r2)
        );
        let mut r3 = record();
        r3.reason = Some(String::new());
        assert_ne!(
            key.seal(Action::Approve, "ns", "n", &record()),
            key.seal(Action::Approve, "ns", "n", &r3)
        );
    }

    #[test]
    fn records_round_trip_through_json() {
        let record = sealed(SealedRecord {
            at: at("2026-12-01T10:00:00.123456789Z"),
            ..record()
        });
        let json = serde_json::to_string(&record).unwrap();
        assert!(json.contains("\"specHash\""), "{json}");
        let back: SealedRecord = serde_json::from_str(&json).unwrap();
        assert!(seal_key().verify(Action::Approve, "team-a", "agent", &back));
        let requester = SealedRecord {
            spec_hash: String::new(),
            uid: None,
            groups: vec![],
            ..record
        };
        let json = serde_json::to_value(&requester).unwrap();
        assert_eq!(
            json.as_object().unwrap().keys().collect::<Vec<_>>(),
            ["at", "seal", "user"]
        );
    }

    #[test]
    fn seal_keys_are_random_long_and_never_printed() {
        let a = SealKey::generate().unwrap();
        let b = SealKey::generate().unwrap();
        assert_ne!(a.as_bytes(), b.as_bytes());
        assert_eq!(a.as_bytes().len(), SEAL_KEY_MIN_LEN);
        assert!(SealKey::from_bytes(&[1u8; 31]).is_err());
        let debug = format!("{:?}", SealKey::from_bytes(&[0xab; 32]).unwrap());
        assert!(
            !debug.contains("171") && !debug.to_lowercase().contains("ab, "),
            "{debug}"
        );
        assert!(debug.contains("redacted"));
    }

    // -- verify: identity mode ---------------------------------------------

    #[test]
    fn one_authorised_approver_meets_the_low_quorum() {
        let verdict = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .verdict();
        assert_eq!(verdict.requester.as_ref().unwrap().user, "alice");
        assert_eq!(approvers(&verdict), [("bob", ApprovalMethod::Identity)]);
        assert_eq!(verdict.quorum, 1);
        assert!(verdict.quorum_met, "{:?}", verdict.ignored);
        assert!(verdict.ignored.is_empty(), "{:?}", verdict.ignored);
        assert_eq!(verdict.approvals[0].spec_hash, verdict.spec_hash);
        assert!(verdict.approvals[0].at.is_some());
    }

    #[test]
    fn critical_needs_two_distinct_approvers() {
        let one = exception()
            .rated(Critical)
            .requested_by(&alice())
            .approved_by(&bob());
        let verdict = one.verdict();
        assert_eq!(verdict.quorum, 2);
        assert!(!verdict.quorum_met);
        let verdict = one.approved_by(&erin()).verdict();
        assert_eq!(approvers(&verdict).len(), 2);
        assert!(verdict.quorum_met);
    }

    #[test]
    fn the_same_approver_twice_counts_once() {
        let verdict = exception()
            .rated(Critical)
            .requested_by(&alice())
            .approved_by(&bob())
            .approved_by(&bob())
            .verdict();
        assert_eq!(verdict.approvals.len(), 1);
        assert!(!verdict.quorum_met);
        assert!(
            ignored_mentions(&verdict, "bob already approved"),
            "{:?}",
            verdict.ignored
        );
    }

    #[test]
    fn the_same_uid_under_another_name_counts_once() {
        let verdict = exception()
            .rated(Critical)
            .requested_by(&alice())
            .approved_by(&bob().with_uid("uid-7"))
            .approved_by(&erin().with_uid("uid-7"))
            .verdict();
        assert_eq!(verdict.approvals.len(), 1);
        assert!(!verdict.quorum_met);
    }

    #[test]
    fn the_requester_cannot_approve_by_username() {
        let alice_lead = user("alice").in_group("security-approvers");
        let verdict = exception()
            .requested_by(&alice_lead)
            .approved_by(&alice_lead)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "approval by alice does not count: alice requested this exception"
        ));
    }

    #[test]
    fn the_requester_cannot_approve_by_uid() {
        let verdict = exception()
            .requested_by(&alice())
            .approved_by(
                &user("alice-admin")
                    .in_group("security-approvers")
                    .with_uid("uid-alice"),
            )
            .verdict();
        assert!(verdict.approvals.is_empty(), "{:?}", verdict.approvals);
        assert!(ignored_mentions(
            &verdict,
            "alice-admin requested this exception"
        ));
    }

    #[test]
    fn the_requester_named_in_the_spec_cannot_approve() {
        let verdict = exception()
            .naming_requester("Bob")
            .requested_by(&user("ci-bot"))
            .approved_by(&bob())
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(&verdict, "bob requested this exception"));
    }

    #[test]
    fn an_approver_outside_the_groups_does_not_count() {
        let verdict = exception()
            .rated(High)
            .requested_by(&alice())
            .approved_by(&frank())
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(
            ignored_mentions(
                &verdict,
                "frank is not an approver for risk rating High (approvers: groups security-leads)"
            ),
            "{:?}",
            verdict.ignored
        );
        // security-approvers approve Low and Medium, not High.
        let verdict = exception()
            .rated(High)
            .requested_by(&alice())
            .approved_by(&user("gina").in_group("security-approvers"))
            .verdict();
        assert!(verdict.approvals.is_empty());
    }

    #[test]
    fn a_spec_change_voids_approvals() {
        let approved = exception().requested_by(&alice()).approved_by(&bob());
        assert!(approved.verdict().quorum_met);
        let verdict = approved.extended().verdict();
        assert!(verdict.approvals.is_empty());
        assert!(!verdict.quorum_met);
        assert!(
            verdict.requester.is_some(),
            "the requester survives a spec change"
        );
        assert!(
            ignored_mentions(&verdict, "the spec changed since"),
            "{:?}",
            verdict.ignored
        );
    }

    #[test]
    fn without_a_verified_requester_identity_approvals_do_not_count() {
        let verdict = exception().approved_by(&bob()).verdict();
        assert!(verdict.requester.is_none());
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "the requester of this exception is not verified"
        ));
    }

    #[test]
    fn a_forged_requester_record_is_ignored() {
        let mut forged = exception();
        forged.key = other_key();
        let verdict = forged.requested_by(&alice()).approved_by(&bob()).verdict();
        assert!(verdict.requester.is_none());
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "requester record of alice has no valid seal"
        ));
    }

    #[test]
    fn records_copied_from_another_exception_do_not_count() {
        let source = exception()
            .named("team-a", "other")
            .requested_by(&alice())
            .approved_by(&bob())
            .build();
        let mut copy = exception();
        copy.exception.metadata.annotations = source.metadata.annotations.clone();
        let verdict = copy.verdict();
        assert!(verdict.requester.is_none());
        assert!(verdict.approvals.is_empty());

        let mut other_namespace = exception().named("team-b", "agent");
        other_namespace.exception.metadata.annotations = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .build()
            .metadata
            .annotations;
        assert!(other_namespace.verdict().approvals.is_empty());
    }

    #[test]
    fn an_edited_approval_does_not_count() {
        let mut approved = exception().requested_by(&alice()).approved_by(&frank());
        let text = approved.annotations()[annotations::APPROVED_BY]
            .replace("developers", "security-approvers");
        approved
            .annotations()
            .insert(annotations::APPROVED_BY.into(), text);
        let verdict = approved.verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(&verdict, "its seal does not verify"));
    }

    #[test]
    fn nothing_verifies_without_namespace_and_name() {
        let mut approved = exception().requested_by(&alice()).approved_by(&bob());
        approved.exception.metadata.namespace = None;
        let verdict = approved.verdict();
        assert!(verdict.requester.is_none() && verdict.approvals.is_empty());
        assert!(!verdict.quorum_met);
    }

    #[test]
    fn malformed_annotations_count_for_nothing_and_say_so() {
        let mut broken = exception().requested_by(&alice());
        broken
            .annotations()
            .insert(annotations::APPROVED_BY.into(), "bob".into());
        broken
            .annotations()
            .insert(annotations::APPROVAL_SIGNATURES.into(), "{}".into());
        let verdict = broken.verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(&verdict, annotations::APPROVED_BY));
        assert!(ignored_mentions(&verdict, annotations::APPROVAL_SIGNATURES));
    }

    #[test]
    fn no_rule_for_the_rating_authorises_nobody() {
        let mut config = config();
        config.approval.rules.retain(|r| !r.ratings.contains(&Low));
        let approved = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .signed_by("dave@example.com", DAVE);
        let verdict = verify(&approved.exception, &seal_key(), &config);
        assert!(verdict.approvals.is_empty());
        assert!(!verdict.quorum_met);
        assert!(ignored_mentions(
            &verdict,
            "no approval rule covers risk rating Low"
        ));
    }

    // -- verify: denial and revocation --------------------------------------

    #[test]
    fn denial_and_revocation_are_bound_to_the_spec() {
        let denied = exception()
            .requested_by(&alice())
            .denied_by(&bob(), "too broad");
        let verdict = denied.verdict();
        let denial = verdict.denial.unwrap();
        assert_eq!(
            (denial.user.as_str(), denial.reason.as_deref()),
            ("bob", Some("too broad"))
        );
        assert!(
            denied.extended().verdict().denial.is_none(),
            "a new spec is a new request"
        );

        let revoked = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .revoked_by(&erin(), "incident 42");
        let verdict = revoked.verdict();
        assert_eq!(
            verdict.revocation.unwrap().reason.as_deref(),
            Some("incident 42")
        );
        assert!(
            verdict.quorum_met,
            "the verdict reports approvals; the lifecycle ranks revocation above them"
        );
        let verdict = revoked.extended().verdict();
        assert!(verdict.revocation.is_none());
        assert!(verdict.approvals.is_empty());
    }

    #[test]
    fn unsealed_denials_and_revocations_do_not_count() {
        let mut forged = exception().requested_by(&alice());
        forged.key = other_key();
        let verdict = forged
            .denied_by(&bob(), "no")
            .revoked_by(&bob(), "no")
            .verdict();
        assert!(verdict.denial.is_none() && verdict.revocation.is_none());
        assert!(ignored_mentions(&verdict, "denial by bob does not count"));
        assert!(ignored_mentions(
            &verdict,
            "revocation by bob does not count"
        ));
    }

    #[test]
    fn the_latest_denial_is_reported() {
        let verdict = exception()
            .requested_by(&alice())
            .denied_by(&bob(), "first")
            .denied_by(&erin(), "second")
            .verdict();
        assert_eq!(verdict.denial.unwrap().reason.as_deref(), Some("second"));
    }

    // -- verify: signature mode ---------------------------------------------

    #[test]
    fn a_configured_signer_approves_by_signature() {
        let verdict = exception()
            .requested_by(&alice())
            .signed_by("dave@example.com", DAVE)
            .verdict();
        assert_eq!(
            approvers(&verdict),
            [("dave@example.com", ApprovalMethod::Signature)]
        );
        assert!(verdict.quorum_met);
        assert_eq!(verdict.approvals[0].at, None);
    }

    #[test]
    fn signatures_count_without_a_verified_requester() {
        // GitOps: a bot applies the exception while the webhook is bypassed.
        let verdict = exception().signed_by("dave@example.com", DAVE).verdict();
        assert!(verdict.requester.is_none());
        assert!(verdict.quorum_met, "{:?}", verdict.ignored);
    }

    #[test]
    fn a_signer_named_as_requester_does_not_count() {
        let verdict = exception()
            .rated(High)
            .naming_requester("carol@example.com")
            .signed_by("carol@example.com", CAROL)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "carol@example.com requested this exception"
        ));
        // Nor the verified requester signing under their own name.
        let verdict = exception()
            .rated(High)
            .requested_by(&alice())
            .signed_by("alice", MALLORY)
            .verdict();
        assert!(verdict.approvals.is_empty());
    }

    #[test]
    fn critical_by_one_identity_and_one_signature() {
        let verdict = exception()
            .rated(Critical)
            .requested_by(&alice())
            .approved_by(&erin())
            .signed_by("carol@example.com", CAROL)
            .verdict();
        assert_eq!(
            approvers(&verdict),
            [
                ("erin", ApprovalMethod::Identity),
                ("carol@example.com", ApprovalMethod::Signature)
            ]
        );
        assert!(verdict.quorum_met);
    }

    #[test]
    fn identity_and_signature_under_the_same_name_count_once() {
        let carol = user("carol@example.com").in_group("security-leads");
        let verdict = exception()
            .rated(Critical)
            .requested_by(&alice())
            .approved_by(&carol)
            .signed_by("carol@example.com", CAROL)
            .signed_by("carol@example.com", CAROL)
            .verdict();
        assert_eq!(verdict.approvals.len(), 1);
        assert!(!verdict.quorum_met);
    }

    #[test]
    fn a_signer_outside_the_rule_does_not_count() {
        // dave is in security-approvers: Low and Medium only.
        let verdict = exception()
            .rated(High)
            .requested_by(&alice())
            .signed_by("dave@example.com", DAVE)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "dave@example.com is not an approver for risk rating High"
        ));
    }

    #[test]
    fn an_unknown_signer_does_not_count() {
        let verdict = exception()
            .requested_by(&alice())
            .signed_by("mallory@example.com", MALLORY)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(ignored_mentions(
            &verdict,
            "no signer named mallory@example.com is configured"
        ));
    }

    #[test]
    fn a_signature_by_another_key_does_not_count() {
        let verdict = exception()
            .requested_by(&alice())
            .signed_by("dave@example.com", MALLORY)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(
            ignored_mentions(&verdict, "made with another key"),
            "{:?}",
            verdict.ignored
        );
    }

    #[test]
    fn a_tampered_signature_does_not_count() {
        let signed = exception().signed_by("dave@example.com", DAVE);
        let entries: Vec<SignatureEntry> = serde_json::from_str(
            &signed.exception.metadata.annotations.as_ref().unwrap()
                [annotations::APPROVAL_SIGNATURES],
        )
        .unwrap();
        // Flip one base64 character in the middle of the armored body.
        let mut lines: Vec<String> = entries[0].signature.lines().map(str::to_string).collect();
        let last_body = lines.len() - 2;
        let flipped: String = lines[last_body]
            .chars()
            .enumerate()
            .map(|(i, c)| {
                if i == 5 {
                    if c == 'A' { 'B' } else { 'A' }
                } else {
                    c
                }
            })
            .collect();
        lines[last_body] = flipped;
        let tampered = lines.join("\n");
        let verdict = exception()
            .add_signature("dave@example.com", &tampered)
            .verdict();
        assert!(verdict.approvals.is_empty(), "{:?}", verdict.approvals);
        assert_eq!(verdict.ignored.len(), 1, "{:?}", verdict.ignored);

        let verdict = exception()
            .add_signature("dave@example.com", "not a signature")
            .verdict();
        assert!(ignored_mentions(&verdict, "not an armored SSH signature"));
    }

    #[test]
    fn a_signature_for_another_exception_or_spec_does_not_count() {
        let other = exception()
            .named("team-a", "other")
            .signed_by("dave@example.com", DAVE)
            .build();
        let mut copy = exception();
        copy.exception.metadata.annotations = other.metadata.annotations;
        let verdict = copy.verdict();
        assert!(verdict.approvals.is_empty());
        assert!(
            ignored_mentions(&verdict, "does not verify for team-a/agent"),
            "{:?}",
            verdict.ignored
        );

        let verdict = exception()
            .signed_by("dave@example.com", DAVE)
            .extended()
            .verdict();
        assert!(verdict.approvals.is_empty());
    }

    #[test]
    fn a_signature_in_another_ssh_namespace_does_not_count() {
        let hash = exception().hash();
        let message = approval_message("team-a", "agent", &hash);
        let git = private_key(DAVE)
            .sign("git", HashAlg::Sha512, message.as_bytes())
            .unwrap()
            .to_pem(LineEnding::LF)
            .unwrap();
        let verdict = exception()
            .add_signature("dave@example.com", &git)
            .verdict();
        assert!(verdict.approvals.is_empty());
        assert!(
            ignored_mentions(&verdict, "made for namespace \"git\""),
            "{:?}",
            verdict.ignored
        );
    }

    #[test]
    fn the_approval_message_is_documented() {
        assert_eq!(
            approval_message("team-a", "agent", "sha256:abc"),
            "exceptions.dev/v1alpha1 approve team-a/agent sha256:abc\n"
        );
    }

    // -- admission: authorize_request and seal_request ----------------------

    fn authorize(builder: &Builder, action: Action, user: &UserInfo) -> Result<(), Rejection> {
        authorize_request(&builder.exception, action, user, &seal_key(), &config())
    }

    fn rejection(builder: &Builder, action: Action, user: &UserInfo) -> String {
        authorize(builder, action, user)
            .expect_err("should be rejected")
            .to_string()
    }

    #[test]
    fn an_approver_may_approve_the_current_spec() {
        let pending = exception().requested_by(&alice()).requesting_approval();
        assert_eq!(authorize(&pending, Action::Approve, &bob()), Ok(()));
    }

    #[test]
    fn creation_is_always_authorised() {
        assert_eq!(authorize(&exception(), Action::Request, &frank()), Ok(()));
    }

    #[test]
    fn self_approval_is_rejected_with_who_may_approve_instead() {
        let alice = user("alice@example.com").in_group("security-approvers");
        let pending = exception().requested_by(&alice).requesting_approval();
        assert_eq!(
            rejection(&pending, Action::Approve, &alice),
            "approval by alice@example.com rejected: alice@example.com requested this exception; a different approver from group security-approvers must approve"
        );
        let by_uid = exception()
            .requested_by(&alice.clone().with_uid("u1"))
            .requesting_approval();
        let other_name = user("alice-sa")
            .in_group("security-approvers")
            .with_uid("u1");
        assert!(
            rejection(&by_uid, Action::Approve, &other_name).contains("requested this exception")
        );
        let by_spec = exception()
            .naming_requester("bob")
            .requested_by(&user("ci-bot"))
            .requesting_approval();
        assert!(
            rejection(&by_spec, Action::Approve, &bob()).contains("bob requested this exception")
        );
    }

    #[test]
    fn an_unauthorised_approver_is_told_who_may_approve() {
        let pending = exception()
            .rated(High)
            .requested_by(&alice())
            .requesting_approval();
        assert_eq!(
            rejection(&pending, Action::Approve, &user("dave")),
            "approval by dave rejected: dave is not an approver for risk rating High (approvers: groups security-leads)"
        );
    }

    #[test]
    fn an_approval_of_another_spec_is_rejected() {
        let stale = exception()
            .requested_by(&alice())
            .requesting(Action::Approve, "sha256:aaa");
        let current = stale.hash();
        assert_eq!(
            rejection(&stale, Action::Approve, &bob()),
            format!(
                "approval rejected: the approval names spec sha256:aaa but the current spec is {current}; re-read the exception and approve again"
            )
        );
        let empty = exception()
            .requested_by(&alice())
            .requesting(Action::Approve, " ");
        assert!(rejection(&empty, Action::Approve, &bob()).contains("exception-operator hash"));
    }

    #[test]
    fn approving_twice_is_rejected() {
        let again = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .requesting_approval();
        assert_eq!(
            rejection(&again, Action::Approve, &bob()),
            "bob already approved this spec"
        );
    }

    #[test]
    fn approval_needs_a_verified_requester() {
        let unverified = exception().requesting_approval();
        assert_eq!(
            rejection(&unverified, Action::Approve, &bob()),
            "approval rejected: the requester of this exception is not verified (it was created while the admission webhook was not running); re-create it"
        );
    }

    #[test]
    fn a_denied_spec_cannot_be_approved() {
        let denied = exception()
            .requested_by(&alice())
            .denied_by(&erin(), "too broad")
            .requesting_approval();
        assert!(rejection(&denied, Action::Approve, &bob()).contains("denied by erin (too broad)"));
    }

    #[test]
    fn deny_and_revoke_need_an_approver_and_a_reason() {
        let pending = exception().rated(High).requested_by(&alice());
        let deny = pending.requesting(Action::Deny, "blast radius too large");
        assert_eq!(authorize(&deny, Action::Deny, &erin()), Ok(()));
        assert_eq!(
            rejection(&deny, Action::Deny, &frank()),
            "denial by frank rejected: frank is not an approver for risk rating High (approvers: groups security-leads)"
        );
        let no_reason = exception()
            .requested_by(&alice())
            .requesting(Action::Revoke, "  ");
        assert_eq!(
            rejection(&no_reason, Action::Revoke, &bob()),
            "revocation rejected: a reason is required as the value of exceptions.dev/revoke"
        );
    }

    #[test]
    fn the_requester_may_withdraw_their_exception() {
        let withdraw = exception()
            .rated(Critical)
            .requested_by(&alice())
            .requesting(Action::Revoke, "no longer needed");
        assert_eq!(authorize(&withdraw, Action::Revoke, &alice()), Ok(()));
        assert!(rejection(&withdraw, Action::Revoke, &frank()).contains("not an approver"));
    }

    #[test]
    fn seal_request_produces_a_record_that_counts() {
        let mut pending = exception()
            .rated(Critical)
            .requested_by(&alice())
            .requesting_approval();
        let record = seal_request(
            &pending.exception,
            Action::Approve,
            &bob().with_uid("uid-bob"),
            at("2026-12-02T09:30:15.75Z"),
            &seal_key(),
            &config(),
        )
        .unwrap();
        assert_eq!(record.user, "bob");
        assert_eq!(record.uid.as_deref(), Some("uid-bob"));
        assert_eq!(record.spec_hash, pending.hash());
        assert_eq!(record.at, at("2026-12-02T09:30:15Z"), "whole seconds");
        assert_eq!(record.reason, None);

        pending.annotations().remove(annotations::APPROVE);
        let existing = pending.annotations().get(annotations::APPROVED_BY).cloned();
        let value = with_record(existing.as_deref(), Action::Approve, &record).unwrap();
        pending
            .annotations()
            .insert(annotations::APPROVED_BY.into(), value);
        assert_eq!(
            approvers(&pending.verdict()),
            [("bob", ApprovalMethod::Identity)]
        );
    }

    #[test]
    fn seal_request_refuses_what_authorize_refuses() {
        let pending = exception().requested_by(&alice()).requesting_approval();
        let refused = seal_request(
            &pending.exception,
            Action::Approve,
            &alice(),
            at("2026-12-02T09:30:15Z"),
            &seal_key(),
            &config(),
        );
        assert!(
            matches!(refused, Err(Rejection::SelfApproval { .. })),
            "{refused:?}"
        );
    }

    #[test]
    fn seal_request_records_the_requester_and_reasons() {
        let created = exception().build();
        let record = seal_request(
            &created,
            Action::Request,
            &alice(),
            at("2026-12-01T00:00:00Z"),
            &seal_key(),
            &config(),
        )
        .unwrap();
        assert_eq!(
            record.spec_hash, "",
            "the requester is not bound to one spec"
        );
        assert!(seal_key().verify(Action::Request, "team-a", "agent", &record));

        let deny = exception()
            .requested_by(&alice())
            .requesting(Action::Deny, "  too broad \n");
        let record = seal_request(
            &deny.exception,
            Action::Deny,
            &bob(),
            at("2026-12-01T00:00:00Z"),
            &seal_key(),
            &config(),
        )
        .unwrap();
        assert_eq!(record.reason.as_deref(), Some("too broad"));
    }

    #[test]
    fn generated_names_are_rejected() {
        let mut unnamed = exception().requesting_approval();
        unnamed.exception.metadata.name = None;
        assert!(
            rejection(&unnamed, Action::Approve, &bob()).contains("generateName is not supported")
        );
        let refused = seal_request(
            &unnamed.exception,
            Action::Request,
            &alice(),
            at("2026-12-01T00:00:00Z"),
            &seal_key(),
            &config(),
        );
        assert_eq!(
            refused,
            Err(Rejection::NoName {
                action: Action::Request
            })
        );
    }

    #[test]
    fn user_info_comes_from_the_admission_request() {
        let k8s = k8s_openapi::api::authentication::v1::UserInfo {
            username: Some("bob".into()),
            uid: Some(String::new()),
            groups: Some(vec!["security-leads".into()]),
            extra: None,
        };
        assert_eq!(
            UserInfo::from(&k8s),
            UserInfo {
                username: "bob".into(),
                uid: None,
                groups: vec!["security-leads".into()]
            }
        );
    }

    #[test]
    fn verified_approvals_become_status_records() {
        let verdict = exception()
            .requested_by(&alice())
            .approved_by(&bob())
            .verdict();
        let record = ApprovalRecord::from(&verdict.approvals[0]);
        assert_eq!(record.approver, "bob");
        assert_eq!(record.method, "Identity");
        assert_eq!(record.spec_hash, verdict.spec_hash);
        assert!(record.approved_at.is_some());
    }

    // -- ssh-keygen interoperability ----------------------------------------

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(label: &str) -> Scratch {
            let nanos = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos();
            let dir = std::env::temp_dir().join(format!(
                "exception-operator-{label}-{}-{nanos}",
                std::process::id()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self, name: &str) -> PathBuf {
            self.0.join(name)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    /// Runs ssh-keygen, failing the test with a clear message if it is missing.
    fn ssh_keygen(args: &[&str], stdin: Option<&Path>) -> std::process::Output {
        let mut command = Command::new("ssh-keygen");
        command.args(args);
        if let Some(path) = stdin {
            command.stdin(std::fs::File::open(path).unwrap());
        }
        match command.output() {
            Ok(output) => output,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => panic!(
                "ssh-keygen is not on PATH: the SSH signature interoperability tests need OpenSSH's ssh-keygen (apt-get install openssh-client)"
            ),
            Err(e) => panic!("cannot run ssh-keygen: {e}"),
        }
    }

    fn generate_key(scratch: &Scratch, name: &str, kind: &[&str]) -> PathBuf {
        let path = scratch.path(name);
        let mut args = vec!["-q"];
        args.extend_from_slice(kind);
        args.extend_from_slice(&["-N", "", "-C", name, "-f", path.to_str().unwrap()]);
        let output = ssh_keygen(&args, None);
        assert!(
            output.status.success(),
            "ssh-keygen -t: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        path
    }

    fn signer_config(name: &str, public_key: &str) -> Config {
        Config::from_yaml(&format!(
            "approval:\n  signers:\n    - {{name: {name}, key: \"{}\", groups: [security-approvers]}}\n",
            public_key.trim()
        ))
        .unwrap()
    }

    fn ssh_keygen_signature_verifies(kind: &[&str]) {
        let scratch = Scratch::new("sshsig");
        let key = generate_key(&scratch, "dave", kind);
        let public_key = std::fs::read_to_string(key.with_extension("pub")).unwrap();
        let builder = exception();
        let hash = builder.hash();
        let message = scratch.path("message");
        std::fs::write(&message, approval_message("team-a", "agent", &hash)).unwrap();
        let output = ssh_keygen(
            &[
                "-Y",
                "sign",
                "-n",
                "exceptions.dev",
                "-f",
                key.to_str().unwrap(),
                message.to_str().unwrap(),
            ],
            None,
        );
        assert!(
            output.status.success(),
            "ssh-keygen -Y sign: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        let signature = std::fs::read_to_string(scratch.path("message.sig")).unwrap();

        let config = signer_config("dave@example.com", &public_key);
        let entry = SignatureEntry {
            signer: "dave@example.com".into(),
            signature: signature.clone(),
        };
        verify_signature(&config, "team-a", "agent", &hash, &entry).unwrap();
        assert!(verify_signature(&config, "team-a", "other", &hash, &entry).is_err());

        let signed = builder
            .requested_by(&alice())
            .add_signature("dave@example.com", &signature);
        let verdict = verify(&signed.exception, &seal_key(), &config);
        assert!(verdict.quorum_met, "{:?}", verdict.ignored);
    }

    #[test]
    fn ssh_keygen_ed25519_signatures_verify() {
        ssh_keygen_signature_verifies(&["-t", "ed25519"]);
    }

    #[test]
    fn ssh_keygen_ecdsa_p256_signatures_verify() {
        ssh_keygen_signature_verifies(&["-t", "ecdsa", "-b", "256"]);
    }

    #[test]
    fn our_signatures_verify_with_ssh_keygen() {
        let scratch = Scratch::new("sshsig");
        let key_path = generate_key(&scratch, "carol", &["-t", "ed25519"]);
        let private_key = PrivateKey::read_openssh_file(&key_path).unwrap();
        let public_key = std::fs::read_to_string(key_path.with_extension("pub")).unwrap();
        let hash = exception().hash();
        let signature = sign_approval(&private_key, "team-a", "agent", &hash).unwrap();
        assert!(
            signature.starts_with("-----BEGIN SSH SIGNATURE-----"),
            "{signature}"
        );

        let allowed = scratch.path("allowed_signers");
        std::fs::write(
            &allowed,
            format!(
                "carol@example.com namespaces=\"exceptions.dev\" {}",
                public_key.trim()
            ),
        )
        .unwrap();
        let sig = scratch.path("approval.sig");
        std::fs::write(&sig, &signature).unwrap();
        let message = scratch.path("message");
        std::fs::write(&message, approval_message("team-a", "agent", &hash)).unwrap();
        let verify_with = |namespace: &str, message: &Path| {
            ssh_keygen(
                &[
                    "-Y",
                    "verify",
                    "-f",
                    allowed.to_str().unwrap(),
                    "-I",
                    "carol@example.com",
                    "-n",
                    namespace,
                    "-s",
                    sig.to_str().unwrap(),
                ],
                Some(message),
            )
        };
        let output = verify_with("exceptions.dev", &message);
        assert!(
            output.status.success(),
            "ssh-keygen -Y verify: {}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        // And ssh-keygen agrees that it covers exactly this exception.
        let other = scratch.path("other");
        std::fs::write(&other, approval_message("team-a", "other", &hash)).unwrap();
        assert!(!verify_with("exceptions.dev", &other).status.success());
        assert!(!verify_with("git", &message).status.success());

        // Our own verification of our signature, through the configuration.
        let config = signer_config("carol@example.com", &public_key);
        let entry = SignatureEntry {
            signer: "carol@example.com".into(),
            signature,
        };
        verify_signature(&config, "team-a", "agent", &hash, &entry).unwrap();
    }
}
