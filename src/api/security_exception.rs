use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, LabelSelector, Time};
use k8s_openapi::jiff::Timestamp;
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{control_id_format, duration_format, not_blank, values_only_where_taken};

/// A formally requested deviation from one or more security controls, for
/// workloads in this namespace only. It is honoured at admission only while it
/// is approved (for exactly this spec), backed by working compensating
/// controls, and unexpired.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
// Every printcolumn(...) repeats the keys name, type_ and json_path.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "exceptions.dev",
    version = "v1alpha1",
    kind = "SecurityException",
    plural = "securityexceptions",
    namespaced,
    status = "SecurityExceptionStatus",
    shortname = "secex",
    category = "exceptions",
    category = "security",
    doc = "A formally requested, approved, risk-rated and expiring deviation from security controls for workloads in its own namespace.",
    printcolumn(
        name = "Phase",
        type_ = "string",
        json_path = ".status.phase",
        description = "Lifecycle phase: Pending, Active, Denied, Suspended, Expired or Revoked"
    ),
    printcolumn(
        name = "Risk",
        type_ = "string",
        json_path = ".spec.risk.rating",
        description = "Risk rating"
    ),
    printcolumn(
        name = "Controls",
        type_ = "string",
        json_path = ".spec.controls[*].id",
        description = "Controls deviated from"
    ),
    printcolumn(
        name = "Expires",
        type_ = "string",
        json_path = ".spec.expiresAt",
        description = "When the exception stops being honoured"
    ),
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        description = "Accountable team",
        priority = "1"
    ),
    printcolumn(
        name = "Type",
        type_ = "string",
        json_path = ".spec.type",
        description = "Exception or RiskAcceptance",
        priority = "1"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "True while the exception is in force",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct SecurityExceptionSpec {
    /// `Exception` (temporary, while remediation is under way; the default) or
    /// `RiskAcceptance` (a long-term decision to live with the risk).
    #[serde(default)]
    pub r#type: ExceptionType,

    /// The security controls deviated from, each id once. A workload's
    /// violation is covered only if its control id, and its value where
    /// `values` narrows the control, are listed here.
    #[schemars(length(max = 32))]
    #[x_kube(validation = Rule::new("size(self) > 0").message("at least one control must be listed"))]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["id".into()]))]
    pub controls: Vec<ControlRef>,

    /// Which workloads in this namespace the exception covers. A workload
    /// matches when it satisfies every criterion given. At least one of
    /// `names`, `selector` or `images` must be set: an empty target means
    /// nothing, never everything.
    pub targets: Targets,

    /// Why the deviation is needed and why remediation cannot happen now.
    #[schemars(length(max = 4096))]
    #[x_kube(validation = not_blank("justification"))]
    pub justification: String,

    /// Who asks for the exception, as they would be contacted (free text). The
    /// authenticated creator is recorded separately, in `status.requestedBy`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requester: Option<String>,

    /// The team accountable for the exception and its remediation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,

    /// Links to tickets, risk register entries or advisories.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub references: Vec<String>,

    /// How and when the deviation will be remediated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub remediation_plan: Option<String>,

    /// The assessed risk of the deviation. The rating selects the approval
    /// rule (approvers, quorum, maximum duration, compensating controls).
    pub risk: Risk,

    /// Names of CompensatingControls in this namespace that reduce the risk.
    /// While any of them is missing, not Ready or overdue for testing, the
    /// exception is Suspended.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$'))").message("each entry must be the name of a CompensatingControl in this namespace"))]
    pub compensating_controls: Vec<String>,

    /// When the exception stops being honoured, as an RFC 3339 timestamp
    /// (e.g. `2027-03-31T00:00:00Z`). Extending it changes the spec and so
    /// requires a new approval.
    pub expires_at: Time,

    /// How often the exception must be reviewed while it is active, e.g. `30d`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = duration_format())]
    pub review_interval: Option<String>,
}

/// The kind of deviation.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ExceptionType {
    /// A temporary deviation while remediation is under way.
    #[default]
    Exception,
    /// A long-term, deliberate acceptance of the risk.
    RiskAcceptance,
}

/// One control deviated from.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[x_kube(validation = values_only_where_taken())]
pub struct ControlRef {
    /// The control id: a Pod Security Standards check as upstream names it
    /// (`privileged`, `hostNamespaces`, `capabilities_baseline`, `runAsNonRoot`,
    /// ...), an opt-in extra (`imageTagLatest`, `resourceLimits`,
    /// `imageRegistry`), or a vulnerability id (`CVE-2024-3094`,
    /// `GHSA-xxxx-xxxx-xxxx`) for a known vulnerability deliberately left
    /// unremediated in the targeted images.
    #[schemars(length(max = 64))]
    #[x_kube(validation = control_id_format())]
    pub id: String,

    /// Narrows the control to these values only: capabilities (`NET_ADMIN`),
    /// host ports (`8080`), host paths (`/var/log`), sysctl names, host
    /// namespaces (`hostNetwork`, `hostPID`, `hostIPC`), volume types, profile
    /// types. Empty means every value of the control. Only controls that take
    /// values accept this field.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(v, v.matches('[^[:space:]]'))").message("values must not be empty strings"))]
    pub values: Vec<String>,
}

/// Which workloads an exception covers. Every criterion given must match.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[x_kube(validation = Rule::new("(has(self.names) && size(self.names) > 0) || has(self.selector) || (has(self.images) && size(self.images) > 0)").message("targets must name something: set names, selector or images (an empty target never means every workload)"))]
pub struct Targets {
    /// Workload kinds covered (`Pod`, `Deployment`, `ReplicaSet`,
    /// `StatefulSet`, `DaemonSet`, `Job`, `CronJob`, `ReplicationController`).
    /// Empty means any of them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 8))]
    pub kinds: Vec<WorkloadKind>,

    /// Workload names, as globs (`log-agent`, `log-agent-*`). A bare `*` is not
    /// accepted: name the workloads.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    #[x_kube(validation = Rule::new("self.all(n, n.matches('[^*]'))").message("names must not be a bare wildcard: name the workloads, or use a selector"))]
    pub names: Vec<String>,

    /// Label selector of the workloads (on the workload's own labels). It must
    /// select something: an empty selector would match every workload.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[x_kube(validation = Rule::new("(has(self.matchLabels) && size(self.matchLabels) > 0) || (has(self.matchExpressions) && size(self.matchExpressions) > 0)").message("selector must have matchLabels or matchExpressions: an empty selector would match every workload"))]
    pub selector: Option<LabelSelector>,

    /// Container names within the workloads, as globs. Empty means every
    /// container (including init and ephemeral containers).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 253)))]
    pub containers: Vec<String>,

    /// Container images, as globs (`registry.example.com/agent:*`). A bare `*`
    /// is not accepted.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 64), inner(length(max = 512)))]
    #[x_kube(validation = Rule::new("self.all(i, i.matches('[^*]'))").message("images must not be a bare wildcard: name the images"))]
    pub images: Vec<String>,
}

/// A workload kind whose pod template is evaluated at admission.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum WorkloadKind {
    /// A bare Pod (including Pods created by the controllers below).
    Pod,
    /// apps/v1 Deployment.
    Deployment,
    /// apps/v1 ReplicaSet.
    ReplicaSet,
    /// apps/v1 StatefulSet.
    StatefulSet,
    /// apps/v1 DaemonSet.
    DaemonSet,
    /// batch/v1 Job.
    Job,
    /// batch/v1 CronJob.
    CronJob,
    /// v1 ReplicationController.
    ReplicationController,
}

/// The assessed risk of a deviation.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
pub struct Risk {
    /// Overall rating: `Low`, `Medium`, `High` or `Critical`. It selects the
    /// approval rule that applies.
    pub rating: RiskLevel,
    /// How likely exploitation is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub likelihood: Option<RiskLevel>,
    /// How bad exploitation would be.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub impact: Option<RiskLevel>,
    /// Free-text risk assessment.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assessment: Option<String>,
}

/// A level on the risk scale, lowest first.
#[derive(
    JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash,
)]
pub enum RiskLevel {
    /// Low.
    Low,
    /// Medium.
    Medium,
    /// High.
    High,
    /// Critical.
    Critical,
}

/// Observed state, written only by the operator. Nothing that decides
/// admission trusts it: it is recomputed from spec, annotations, controls and
/// the clock.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct SecurityExceptionStatus {
    /// Lifecycle phase: `Pending`, `Active`, `Denied`, `Suspended`, `Expired`
    /// or `Revoked`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phase: Option<Phase>,

    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// kstatus-compatible conditions: `Ready` (in force), `Approved`,
    /// `ControlsVerified`, `ExpiringSoon`, `Aging`, `Unused`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// The verified approvals of the current spec.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,

    /// Canonical hash of the current spec; approvals must name it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spec_hash: Option<String>,

    /// The authenticated identity that created the exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub requested_by: Option<UserRef>,

    /// When the exception last became Active.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active_since: Option<Time>,

    /// When the exception expires (copied from the spec for columns and tools).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<Time>,

    /// How many live workloads rely on the exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub coverage: Option<Coverage>,

    /// The most recent phase transitions, newest last (bounded).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub history: Vec<HistoryEntry>,
}

/// Lifecycle phase of a SecurityException.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Requested, awaiting a quorum of approvals for the current spec.
    Pending,
    /// Approved, unexpired and backed by working controls: honoured at admission.
    Active,
    /// An approver denied it.
    Denied,
    /// A referenced compensating control is missing, not Ready or overdue.
    Suspended,
    /// Past `expiresAt`.
    Expired,
    /// An approver revoked it.
    Revoked,
}

/// An authenticated Kubernetes identity.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
pub struct UserRef {
    /// The user name from the authenticated request.
    pub username: String,
    /// The user's uid, where the authenticator provides one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
}

/// One verified approval.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct ApprovalRecord {
    /// Who approved.
    pub approver: String,
    /// When the approval was given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub approved_at: Option<Time>,
    /// How the approver's identity was verified: `Identity` (the authenticated
    /// request, sealed by the operator) or `Signature` (a signing key).
    pub method: String,
    /// The spec hash the approval is bound to.
    pub spec_hash: String,
}

/// How many workloads rely on an exception.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Coverage {
    /// Live workloads currently admitted only because of this exception.
    pub workloads: i32,
    /// The last time a workload relied on the exception.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used: Option<Time>,
}

/// One phase transition.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
pub struct HistoryEntry {
    /// When it happened.
    pub time: Time,
    /// The phase entered.
    pub phase: Phase,
    /// Why, as a PascalCase reason (`Approved`, `Expired`, `ApprovalVoided`, ...).
    pub reason: String,
    /// Who caused it, where a person did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
}

impl SecurityException {
    /// Whether `now` is at or past the exception's expiry. The instant of
    /// `expiresAt` itself is already expired.
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.spec.expires_at.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn valid() -> serde_json::Value {
        json!({
            "apiVersion": "exceptions.dev/v1alpha1",
            "kind": "SecurityException",
            "metadata": {"name": "agent"},
            "spec": {
                "controls": [{"id": "capabilities_baseline", "values": ["NET_ADMIN"]}],
                "targets": {"kinds": ["DaemonSet"], "names": ["log-agent"]},
                "justification": "vendor agent needs raw sockets",
                "risk": {"rating": "High"},
                "compensatingControls": ["agent-netpol"],
                "expiresAt": "2027-01-31T00:00:00Z",
                "reviewInterval": "30d"
            }
        })
    }

    fn cel_errors(object: &serde_json::Value) -> Vec<String> {
        crate::api::cel_errors::<SecurityException>(object)
    }

    fn rejects(patch: impl FnOnce(&mut serde_json::Value), message: &str) {
        let mut object = valid();
        patch(&mut object);
        let errors = cel_errors(&object);
        assert!(
            errors.iter().any(|e| e.contains(message)),
            "expected an error containing {message:?}, got {errors:?}"
        );
    }

    #[test]
    fn a_complete_exception_passes_every_rule() {
        assert_eq!(cel_errors(&valid()), Vec::<String>::new());
    }

    #[test]
    fn blank_justification_is_rejected() {
        rejects(
            |o| o["spec"]["justification"] = json!("   "),
            "justification must not be empty",
        );
    }

    #[test]
    fn empty_controls_are_rejected() {
        rejects(
            |o| o["spec"]["controls"] = json!([]),
            "at least one control must be listed",
        );
    }

    #[test]
    fn malformed_control_ids_are_rejected() {
        for id in ["", "Privileged!", "CVE-24-1", "GHSA-1234"] {
            rejects(
                |o| o["spec"]["controls"] = json!([{"id": id}]),
                "must be a control id",
            );
        }
    }

    #[test]
    fn vulnerability_ids_are_accepted() {
        for id in ["CVE-2024-3094", "GHSA-mjmj-j48q-9wg2"] {
            let mut object = valid();
            object["spec"]["controls"] = json!([{"id": id}]);
            assert_eq!(cel_errors(&object), Vec::<String>::new(), "{id}");
        }
    }

    #[test]
    fn values_on_an_all_or_nothing_control_are_rejected() {
        rejects(
            |o| o["spec"]["controls"] = json!([{"id": "privileged", "values": ["true"]}]),
            "control privileged takes no values",
        );
    }

    #[test]
    fn empty_targets_are_rejected() {
        rejects(
            |o| o["spec"]["targets"] = json!({}),
            "targets must name something",
        );
        rejects(
            |o| o["spec"]["targets"] = json!({"kinds": ["Pod"], "containers": ["app"]}),
            "targets must name something",
        );
    }

    #[test]
    fn wildcard_targets_are_rejected() {
        rejects(
            |o| o["spec"]["targets"] = json!({"names": ["*"]}),
            "bare wildcard",
        );
        rejects(
            |o| o["spec"]["targets"] = json!({"images": ["**"]}),
            "bare wildcard",
        );
        rejects(
            |o| o["spec"]["targets"] = json!({"selector": {}}),
            "an empty selector would match every workload",
        );
    }

    #[test]
    fn malformed_review_interval_is_rejected() {
        rejects(
            |o| o["spec"]["reviewInterval"] = json!("monthly"),
            "must be a duration",
        );
    }

    #[test]
    fn malformed_compensating_control_names_are_rejected() {
        rejects(
            |o| o["spec"]["compensatingControls"] = json!(["Not A Name"]),
            "name of a CompensatingControl",
        );
    }

    #[test]
    fn expiry_is_inclusive() {
        let mut exception: SecurityException = serde_json::from_value(valid()).unwrap();
        let at: Timestamp = "2027-01-31T00:00:00Z".parse().unwrap();
        exception.spec.expires_at = Time(at);
        assert!(!exception.is_expired(at - k8s_openapi::jiff::SignedDuration::from_secs(1)));
        assert!(exception.is_expired(at));
    }
}
