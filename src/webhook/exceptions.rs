//! Translates AdmissionReviews of SecurityExceptions to and from
//! [`crate::policy::exception_admission`].

use k8s_openapi::jiff::Timestamp;
use kube::{
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, Operation},
    },
    runtime::reflector::ObjectRef,
};

use super::WebhookState;
use crate::{
    api::{CompensatingControl, SecurityException},
    policy::{
        approval::UserInfo,
        exception_admission::{self, Environment, ExceptionReview},
    },
};

pub(super) fn mutate(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    decide(state, request, |review, env| {
        let annotations = exception_admission::mutate(review, env)?;
        let patch: json_patch::Patch = serde_json::from_value(serde_json::json!([
            {"op": "add", "path": "/metadata/annotations", "value": annotations}
        ]))
        .map_err(|e| format!("could not build the annotation patch: {e}"))?;
        Ok((patch, Vec::new()))
    })
}

pub(super) fn validate(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
) -> AdmissionResponse {
    // CompensatingControls are registered here for their status only.
    if request.kind.kind == "CompensatingControl" {
        let response = AdmissionResponse::from(request);
        let user = UserInfo::from(&request.user_info);
        return match exception_admission::status_writer(
            "CompensatingControl",
            &user,
            &state.operator_username,
        ) {
            Ok(()) => response,
            Err(message) => response.deny(message),
        };
    }
    decide(state, request, |review, env| {
        let warnings = exception_admission::validate(review, env)?;
        Ok((json_patch::Patch(Vec::new()), warnings))
    })
}

type Decision = Result<(json_patch::Patch, Vec<String>), String>;

fn decide(
    state: &WebhookState,
    request: &AdmissionRequest<DynamicObject>,
    decide: impl FnOnce(&ExceptionReview<'_>, &Environment<'_>) -> Decision,
) -> AdmissionResponse {
    let response = AdmissionResponse::from(request);
    let create = match request.operation {
        Operation::Create => true,
        Operation::Update => false,
        // Only CREATE and UPDATE are registered; anything else is allowed
        // through unchanged, as the API server would without us.
        _ => return response,
    };
    let Some(object) = request.object.as_ref() else {
        return response.deny("the admission request carries no object");
    };
    let object = match to_exception(object, request.namespace.as_deref()) {
        Ok(object) => object,
        Err(message) => return response.deny(message),
    };
    if object
        .metadata
        .name
        .as_deref()
        .unwrap_or_default()
        .is_empty()
    {
        return response.deny(
            "a SecurityException needs metadata.name: generateName is not supported, because approvals are bound to the name",
        );
    }
    let old_object = match request
        .old_object
        .as_ref()
        .map(|old| to_exception(old, request.namespace.as_deref()))
    {
        Some(Err(message)) => return response.deny(message),
        Some(Ok(old)) => Some(old),
        None => None,
    };
    let user = UserInfo::from(&request.user_info);
    let namespace = object.metadata.namespace.clone().unwrap_or_default();
    let controls = &state.compensating_controls;
    let control_exists = |name: &str| {
        controls
            .get(&ObjectRef::<CompensatingControl>::new(name).within(&namespace))
            .is_some()
    };
    let review = ExceptionReview {
        create,
        subresource: request.sub_resource.as_deref(),
        user: &user,
        object: &object,
        old_object: old_object.as_ref(),
        now: Timestamp::now(),
    };
    let env = Environment {
        config: &state.config,
        key: &state.seal_key,
        operator_username: &state.operator_username,
        control_exists: &control_exists,
    };
    match decide(&review, &env) {
        Err(message) => response.deny(message),
        Ok((patch, warnings)) => {
            let mut response = if patch.0.is_empty() {
                response
            } else {
                match response.clone().with_patch(patch) {
                    Ok(patched) => patched,
                    Err(error) => {
                        return response.deny(format!("could not encode the patch: {error}"));
                    }
                }
            };
            if !warnings.is_empty() {
                response.warnings = Some(warnings);
            }
            response
        }
    }
}

/// Reads the submitted object as a SecurityException. The namespace comes
/// from the request when the body leaves it out.
fn to_exception(
    object: &DynamicObject,
    namespace: Option<&str>,
) -> Result<SecurityException, String> {
    let value = serde_json::to_value(object)
        .map_err(|e| format!("could not read the SecurityException: {e}"))?;
    let mut exception: SecurityException = serde_json::from_value(value)
        .map_err(|e| format!("could not read the SecurityException: {e}"))?;
    if exception.metadata.namespace.is_none() {
        exception.metadata.namespace = namespace.map(str::to_string);
    }
    Ok(exception)
}
