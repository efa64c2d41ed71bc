//! Translates AdmissionReviews of workloads (Pods, ephemeral containers and
//! every pod-template owner) to and from
//! [`crate::policy::workload_admission`].

use std::collections::BTreeMap;

use k8s_openapi::{api::core::v1::Namespace, jiff::Timestamp};
use kube::{
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, Operation as AdmissionOperation},
    },
    runtime::reflector::ObjectRef,
};

use super::WebhookState;
use crate::policy::workload_admission::{self, Operation, WorkloadRequest};

pub(super) fn validate(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let operation = match request.operation {
        AdmissionOperation::Create => Operation::Create,
        AdmissionOperation::Update => Operation::Update,
        // DELETE and CONNECT carry no pod template to check.
        _ => return response,
    };
    let Some(object) = request.object.as_ref() else {
        return response.deny("the admission request carries no object to check");
    };
    let namespace = request.namespace.clone().unwrap_or_default();
    // The namespace's labels come from the watch; a namespace not seen yet
    // (created a moment ago) counts as unlabelled: the cluster default applies.
    let labels: BTreeMap<String, String> = state
        .namespaces
        .get(&ObjectRef::<Namespace>::new(&namespace))
        .and_then(|ns| ns.metadata.labels.clone())
        .unwrap_or_default();
    let policy = match workload_admission::namespace_policy(&namespace, &labels, &state.config) {
        Ok(policy) => policy,
        Err(message) => return response.deny(message),
    };
    let workload = WorkloadRequest {
        namespace,
        object: object.into(),
        operation,
        subresource: request.sub_resource.clone(),
    };
    let decision = {
        let Ok(index) = state.exceptions.read() else {
            return response.deny(
                "exception-operator's exception index is unavailable; denying what it cannot check",
            );
        };
        workload_admission::decide(&workload, &policy, &index, &state.config, Timestamp::now())
    };
    let mut response = if decision.allowed {
        response
    } else {
        response.deny(
            decision
                .message
                .unwrap_or_else(|| "denied by exception-operator".into()),
        )
    };
    if !decision.warnings.is_empty() {
        response.warnings = Some(decision.warnings);
    }
    response.audit_annotations = decision.audit_annotations.into_iter().collect();
    response
}
