//! The custom resources of `exceptions.dev/v1alpha1` and every string the
//! cluster sees. Types, documentation, CEL rules and pure helpers only: nothing
//! here touches a client.

pub mod annotations;
mod compensating_control;
pub mod conditions;
mod security_exception;
mod validation;

pub use compensating_control::{
    CompensatingControl, CompensatingControlSpec, CompensatingControlStatus, ControlCategory,
    EvidenceRef,
};
pub use security_exception::{
    ApprovalRecord, ControlRef, Coverage, ExceptionType, HistoryEntry, Phase, Risk, RiskLevel,
    SecurityException, SecurityExceptionSpec, SecurityExceptionStatus, Targets, UserRef,
    WorkloadKind,
};
pub use validation::{CONTROL_ID_PATTERN, CONTROLS_TAKING_VALUES, DURATION_PATTERN};

/// The API group of both custom resources.
pub const GROUP: &str = "exceptions.dev";
/// The served and stored version of both custom resources.
pub const VERSION: &str = "v1alpha1";
/// The field manager of every write the operator makes (status only, by server-side apply).
pub const FIELD_MANAGER: &str = "exception-operator";

/// Every CustomResourceDefinition the operator serves, in installation order.
pub fn crds()
-> Vec<k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition>
{
    use kube::CustomResourceExt;
    vec![SecurityException::crd(), CompensatingControl::crd()]
}

/// The messages of every CEL rule of `K`'s schema that `object` breaks,
/// evaluated client-side as the API server would.
#[cfg(test)]
pub(crate) fn cel_errors<K: kube::CustomResourceExt>(object: &serde_json::Value) -> Vec<String> {
    let crd = K::crd();
    let schema = crd.spec.versions[0]
        .schema
        .as_ref()
        .and_then(|s| s.open_api_v3_schema.as_ref())
        .map(serde_json::to_value)
        .expect("a derived CRD has a schema")
        .expect("a schema serialises");
    match kube::core::cel::Validator::new().validate(&schema, object, None) {
        Ok(()) => vec![],
        Err(errors) => errors.iter().map(|e| e.to_string()).collect(),
    }
}
