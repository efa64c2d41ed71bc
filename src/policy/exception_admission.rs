//! Admission of SecurityExceptions themselves, as pure functions: who
//! created it (stamped, never taken from the body), approval, denial and
//! revocation requests turned into sealed records, sealed records protected,
//! status reserved to the operator, and the policy checks that need the
//! clock, the configuration or other objects.

use std::collections::BTreeMap;

use k8s_openapi::jiff::Timestamp;

use crate::{
    api::{SecurityException, annotations},
    config::Config,
    policy::{
        approval::{self, Action, SealKey, SealedRecord, UserInfo},
        controls,
    },
};

/// An admission request for a SecurityException, reduced to what decides it.
pub struct ExceptionReview<'a> {
    /// `true` for CREATE, `false` for UPDATE.
    pub create: bool,
    /// `Some("status")` for the status subresource.
    pub subresource: Option<&'a str>,
    /// The authenticated user making the request.
    pub user: &'a UserInfo,
    /// The object as submitted (for UPDATE: after earlier mutations).
    pub object: &'a SecurityException,
    /// The stored object (UPDATE only).
    pub old_object: Option<&'a SecurityException>,
    /// The decision's clock.
    pub now: Timestamp,
}

/// What the decisions depend on besides the request.
pub struct Environment<'a> {
    /// The operator's configuration.
    pub config: &'a Config,
    /// The key approvals are sealed with.
    pub key: &'a SealKey,
    /// The user the operator acts as: the only writer of status.
    pub operator_username: &'a str,
    /// Whether a CompensatingControl of that name exists in the namespace.
    pub control_exists: &'a dyn Fn(&str) -> bool,
}

/// The actions whose records only the operator's webhook writes.
const SEALED: [Action; 4] = [
    Action::Request,
    Action::Approve,
    Action::Deny,
    Action::Revoke,
];
/// The actions people request through annotations.
const REQUESTS: [Action; 3] = [Action::Approve, Action::Deny, Action::Revoke];

/// The mutating step: returns the annotations the object must carry, or a
/// denial. Stamps the authenticated creator, keeps the sealed annotations as
/// the operator last wrote them (dropping any record whose seal does not
/// verify), and turns an approve, deny or revoke request into a sealed record.
pub fn mutate(
    review: &ExceptionReview<'_>,
    env: &Environment<'_>,
) -> Result<BTreeMap<String, String>, String> {
    let (namespace, name) = identity(review.object)?;
    let mut working = review.object.clone();
    let mut annotations = working.metadata.annotations.take().unwrap_or_default();
    for action in SEALED {
        annotations.remove(action.record_annotation());
    }

    if review.create {
        if let Some(request) = REQUESTS
            .iter()
            .filter_map(|action| action.request_annotation())
            .find(|key| annotations.contains_key(*key))
        {
            return Err(format!(
                "annotation {request} cannot be set when the exception is created: it is requested by {} and must be approved afterwards by someone else (exception-operator approve {name} -n {namespace})",
                review.user.username
            ));
        }
        working.metadata.annotations = Some(annotations);
        let record = approval::seal_request(
            &working,
            Action::Request,
            review.user,
            review.now,
            env.key,
            env.config,
        )
        .map_err(|rejection| rejection.to_string())?;
        let mut annotations = working.metadata.annotations.take().unwrap_or_default();
        annotations.insert(annotations::REQUESTED_BY.into(), to_json(&record));
        return Ok(annotations);
    }

    // UPDATE: carry over what the operator sealed before, verified.
    if let Some(old) = review.old_object {
        for action in SEALED {
            let kept = sealed_records(old, action, env.key, namespace, name);
            if let Some(value) = match (action, kept.first()) {
                (_, None) => None,
                (Action::Request, Some(record)) => Some(to_json(record)),
                _ => Some(to_json(&kept)),
            } {
                annotations.insert(action.record_annotation().into(), value);
            }
        }
    }

    for action in REQUESTS {
        let Some(request) = action.request_annotation() else {
            continue;
        };
        if !annotations.contains_key(request) {
            continue;
        }
        working.metadata.annotations = Some(annotations.clone());
        let record = approval::seal_request(
            &working,
            action,
            review.user,
            review.now,
            env.key,
            env.config,
        )
        .map_err(|rejection| rejection.to_string())?;
        let stored = action.record_annotation();
        let value =
            approval::with_record(annotations.get(stored).map(String::as_str), action, &record)
                .map_err(|e| format!("could not record the {}: {e}", action.noun()))?;
        annotations.insert(stored.into(), value);
        annotations.remove(request);
    }
    Ok(annotations)
}

/// The records of `action` on `exception` whose seals verify for this object.
fn sealed_records(
    exception: &SecurityException,
    action: Action,
    key: &SealKey,
    namespace: &str,
    name: &str,
) -> Vec<SealedRecord> {
    approval::stored_records(exception, action)
        .unwrap_or_default()
        .into_iter()
        .filter(|record| key.verify(action, namespace, name, record))
        .collect()
}

/// The validating step: `Ok` with warnings, or a denial naming the problem.
pub fn validate(
    review: &ExceptionReview<'_>,
    env: &Environment<'_>,
) -> Result<Vec<String>, String> {
    if review.subresource == Some("status") {
        return status_writer("SecurityException", review.user, env.operator_username)
            .map(|()| vec![]);
    }
    let object = review.object;
    let (namespace, name) = identity(object)?;
    let annotations = object.metadata.annotations.clone().unwrap_or_default();

    // Defence in depth: the mutating step must have run and sealed everything.
    for request in REQUESTS
        .iter()
        .filter_map(|action| action.request_annotation())
    {
        if annotations.contains_key(request) {
            return Err(format!(
                "annotation {request} was not processed by the exception-operator mutating webhook; is it registered?"
            ));
        }
    }
    for action in SEALED {
        let stored = approval::stored_records(object, action)?;
        if stored
            .iter()
            .any(|record| !env.key.verify(action, namespace, name, record))
        {
            return Err(format!(
                "annotation {} holds a record the operator did not seal; approvals, denials and revocations are added through exception-operator approve|deny|revoke",
                action.record_annotation()
            ));
        }
    }
    if review.create && !annotations.contains_key(annotations::REQUESTED_BY) {
        return Err(format!(
            "annotation {} is missing: the exception-operator mutating webhook did not run",
            annotations::REQUESTED_BY
        ));
    }

    let spec_changed = review.old_object.is_none_or(|old| old.spec != object.spec);
    let mut warnings = Vec::new();
    if spec_changed {
        check_spec(object, review.now, env, &mut warnings)?;
    }
    Ok(warnings)
}

/// Status subresources of the operator's kinds are written by the operator
/// alone: anyone else's write is refused, whatever RBAC allows.
pub fn status_writer(kind: &str, user: &UserInfo, operator_username: &str) -> Result<(), String> {
    if user.username == operator_username {
        Ok(())
    } else {
        Err(format!(
            "the status of a {kind} is written only by exception-operator ({operator_username}); {} may not change it",
            user.username
        ))
    }
}

/// The policy checks of a new or changed spec.
fn check_spec(
    object: &SecurityException,
    now: Timestamp,
    env: &Environment<'_>,
    warnings: &mut Vec<String>,
) -> Result<(), String> {
    let spec = &object.spec;
    let mut problems = Vec::new();
    let expires_at = spec.expires_at.0;
    if expires_at <= now {
        problems.push(format!("spec.expiresAt: {expires_at} is not in the future"));
    }
    let rating = spec.risk.rating;
    match env.config.rule_for(rating) {
        None => problems.push(format!(
            "spec.risk.rating: no approval rule covers rating {rating:?}, so it could never be approved"
        )),
        Some(rule) => {
            if let Some(max) = rule.max_duration
                && expires_at > now + max.get()
            {
                problems.push(format!(
                    "spec.expiresAt: risk rating {rating:?} allows at most {max} from now, so expiresAt must be at or before {}; request a shorter exception and renew it if needed",
                    now + max.get()
                ));
            }
            if rule.require_compensating_controls && spec.compensating_controls.is_empty() {
                problems.push(format!(
                    "spec.compensatingControls: risk rating {rating:?} requires at least one CompensatingControl in this namespace"
                ));
            }
        }
    }
    for (index, control) in spec.controls.iter().enumerate() {
        if controls::lookup(&control.id).is_none() && !controls::is_vulnerability_id(&control.id) {
            problems.push(format!(
                "spec.controls[{index}].id: unknown control {:?}; use a control from the catalog ({}) or a CVE/GHSA id",
                control.id,
                controls::CATALOG.iter().map(|c| c.id).collect::<Vec<_>>().join(", ")
            ));
        }
    }
    for (index, name) in spec.compensating_controls.iter().enumerate() {
        if !(env.control_exists)(name) {
            problems.push(format!(
                "spec.compensatingControls[{index}]: CompensatingControl {name} does not exist in this namespace; create it first"
            ));
        }
    }
    if spec
        .controls
        .iter()
        .any(|c| controls::is_vulnerability_id(&c.id))
    {
        warnings.push(
            "vulnerability exceptions are tracked through the lifecycle but not yet matched against scanner reports".into(),
        );
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

fn identity(object: &SecurityException) -> Result<(&str, &str), String> {
    match (
        object.metadata.namespace.as_deref(),
        object.metadata.name.as_deref(),
    ) {
        (Some(namespace), Some(name)) => Ok((namespace, name)),
        _ => Err("the SecurityException has no namespace or name".into()),
    }
}

fn to_json(value: &impl serde::Serialize) -> String {
    serde_json::to_string(value).unwrap_or_default()
}
