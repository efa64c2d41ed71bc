use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};
use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::validation::{duration_format, not_blank, object_name};

/// An alternative safeguard that reduces the risk of a SecurityException, such
/// as a NetworkPolicy isolating a privileged agent. Exceptions that reference
/// it are suspended while its evidence is missing or its review is overdue.
#[derive(CustomResource, KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq)]
// Every printcolumn(...) repeats the keys name, type_ and json_path.
#[allow(clippy::duplicated_attributes)]
#[kube(
    group = "exceptions.dev",
    version = "v1alpha1",
    kind = "CompensatingControl",
    plural = "compensatingcontrols",
    namespaced,
    status = "CompensatingControlStatus",
    shortname = "compctl",
    category = "exceptions",
    category = "security",
    doc = "An alternative safeguard, backed by live evidence objects, that reduces the risk of security exceptions in its namespace.",
    printcolumn(
        name = "Category",
        type_ = "string",
        json_path = ".spec.category",
        description = "Kind of safeguard"
    ),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status",
        description = "True while the evidence is present and the review is current"
    ),
    printcolumn(
        name = "Last Tested",
        type_ = "date",
        json_path = ".spec.lastTested",
        description = "When the owner last verified the control works"
    ),
    printcolumn(
        name = "Owner",
        type_ = "string",
        json_path = ".spec.owner",
        description = "Accountable team",
        priority = "1"
    ),
    printcolumn(
        name = "Age",
        type_ = "date",
        json_path = ".metadata.creationTimestamp"
    )
)]
#[serde(rename_all = "camelCase")]
pub struct CompensatingControlSpec {
    /// What the safeguard does and how it reduces the risk.
    #[schemars(length(max = 4096))]
    #[x_kube(validation = not_blank("description"))]
    pub description: String,

    /// The kind of safeguard: `NetworkIsolation`, `Monitoring`,
    /// `AccessRestriction`, `Authentication`, `Encryption` or `Other`.
    pub category: ControlCategory,

    /// The team that operates and tests the safeguard.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<String>,

    /// Live objects in this namespace that implement the safeguard (e.g. a
    /// NetworkPolicy). The operator checks that each exists; while one is
    /// missing the control is not Ready.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub evidence: Vec<EvidenceRef>,

    /// How often the owner must test that the safeguard works, e.g. `90d`.
    /// Past `lastTested` plus this interval the control is overdue and not Ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(max = 32))]
    #[x_kube(validation = duration_format())]
    pub review_interval: Option<String>,

    /// When the owner last verified the safeguard works (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_tested: Option<Time>,
}

/// The kind of safeguard a compensating control is.
#[derive(JsonSchema, Serialize, Deserialize, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum ControlCategory {
    /// Network segmentation, e.g. a NetworkPolicy.
    NetworkIsolation,
    /// Detection and alerting, e.g. runtime security monitoring.
    Monitoring,
    /// Restricted access, e.g. RBAC or node isolation.
    AccessRestriction,
    /// Stronger authentication.
    Authentication,
    /// Encryption in transit or at rest.
    Encryption,
    /// Anything else.
    Other,
}

/// A live object that implements a compensating control.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, PartialEq, Eq, Hash)]
#[serde(rename_all = "camelCase")]
pub struct EvidenceRef {
    /// API version of the object, e.g. `networking.k8s.io/v1`.
    #[schemars(length(max = 253))]
    #[x_kube(validation = Rule::new("self.matches('^([a-z0-9.-]+/)?v[0-9]+((alpha|beta)[0-9]+)?$')").message("apiVersion must look like v1 or networking.k8s.io/v1"))]
    pub api_version: String,
    /// Kind of the object, e.g. `NetworkPolicy`.
    #[schemars(length(max = 63))]
    #[x_kube(validation = Rule::new("self.matches('^[A-Z][A-Za-z0-9]*$')").message("kind must be a Kubernetes kind such as NetworkPolicy"))]
    pub kind: String,
    /// Name of the object, in the compensating control's namespace.
    #[schemars(length(max = 253))]
    #[x_kube(validation = object_name())]
    pub name: String,
}

/// Observed state, written only by the operator.
#[derive(KubeSchema, Serialize, Deserialize, Clone, Debug, Default, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct CompensatingControlStatus {
    /// The generation of the spec this status describes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,

    /// kstatus-compatible conditions: `Ready`, `EvidencePresent`, `ReviewCurrent`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[x_kube(merge_strategy = kube::core::ListMerge::Map(vec!["type".into()]))]
    pub conditions: Vec<Condition>,

    /// Evidence objects that could not be found.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    #[schemars(length(max = 16))]
    pub missing_evidence: Vec<EvidenceRef>,

    /// Names of the SecurityExceptions in this namespace that rely on the control.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub exceptions: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn cel_errors(object: &serde_json::Value) -> Vec<String> {
        crate::api::cel_errors::<CompensatingControl>(object)
    }

    fn control(evidence: serde_json::Value) -> serde_json::Value {
        json!({
            "apiVersion": "exceptions.dev/v1alpha1",
            "kind": "CompensatingControl",
            "metadata": {"name": "agent-netpol"},
            "spec": {
                "description": "egress of the agent limited to the log collector",
                "category": "NetworkIsolation",
                "evidence": evidence,
                "reviewInterval": "90d",
                "lastTested": "2026-11-20T10:00:00Z"
            }
        })
    }

    #[test]
    fn a_complete_control_passes_every_rule() {
        let object = control(
            json!([{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": "agent-egress"}]),
        );
        assert_eq!(cel_errors(&object), Vec::<String>::new());
    }

    #[test]
    fn malformed_evidence_is_rejected() {
        let errors = cel_errors(&control(
            json!([{"apiVersion": "networking", "kind": "networkpolicy", "name": "Agent Egress"}]),
        ));
        for message in [
            "apiVersion must look like",
            "kind must be",
            "name of an object",
        ] {
            assert!(
                errors.iter().any(|e| e.contains(message)),
                "{message}: {errors:?}"
            );
        }
    }

    #[test]
    fn blank_description_is_rejected() {
        let mut object = control(json!([]));
        object["spec"]["description"] = json!("");
        assert!(
            cel_errors(&object)
                .iter()
                .any(|e| e.contains("description must not be empty"))
        );
    }
}
