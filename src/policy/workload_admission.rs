//! The workload admission decision, as a pure function shared by the
//! admission webhook and `exception-operator check`.
//!
//! "Why was my Deployment denied?" Because its pod template violates a
//! control at the level its namespace enforces, and no SecurityException in
//! force covers that violation on its own. The denial lists every uncovered
//! violation (control, container, field, value) and says how to request an
//! exception.
//!
//! # Levels per namespace
//!
//! Like Pod Security Admission, a namespace chooses a level per mode with
//! labels ([`ENFORCE_LABEL`], [`WARN_LABEL`], [`AUDIT_LABEL`]), each
//! `privileged`, `baseline` or `restricted` (`none` is accepted as
//! `privileged`: nothing checked):
//!
//! - **enforce**: an uncovered violation denies the request. Without the
//!   label, the cluster default applies (`enforcement.defaultLevel`).
//! - **warn**: an uncovered violation becomes a warning that kubectl prints;
//!   the request is allowed. Without the label, nothing is warned.
//! - **audit**: uncovered violations are recorded in an audit annotation
//!   ([`AUDIT_VIOLATIONS_KEY`]). Without the label, nothing is audited.
//!
//! A label with any other value fails closed: every request in the
//! namespace is denied with a message naming the label and the valid values.
//! Namespaces listed in `enforcement.excludedNamespaces` are never evaluated.
//!
//! # One evaluation
//!
//! The pod template is evaluated once, at the highest of the three levels;
//! each violation then counts in every mode whose level includes its
//! control (a `restricted` control counts in a `restricted` mode only). Each
//! violation is covered, or not, by one exception on its own
//! ([`ExceptionIndex::decide`]): two exceptions never combine.
//!
//! # What is evaluated
//!
//! Pods and every pod template owner, on CREATE and UPDATE, including
//! objects being deleted (`deletionTimestamp` set: Kyverno CVE-2023-34091)
//! and the `pods/ephemeralcontainers` subresource (the object is the Pod,
//! with its ephemeral containers). Other subresources (`status`, `scale`)
//! cannot change a pod spec and are allowed without evaluation. An object
//! that is not a readable workload is denied with the reason (fail closed).

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::jiff::{SignedDuration, Timestamp};
use kube::core::DynamicObject;
use serde_json::Value;

use super::controls::{self, Extras, Level, Violation};
use super::matching::ExceptionIndex;
use super::workload::{self, Workload, WorkloadError};
use crate::config::Config;

/// Namespace label: the level whose uncovered violations deny requests
/// (`privileged`, `baseline`, `restricted`; `none` = `privileged`). Without
/// it, the configuration's `enforcement.defaultLevel` applies.
pub const ENFORCE_LABEL: &str = "exceptions.dev/enforce";
/// Namespace label: the level whose uncovered violations become kubectl
/// warnings (same values as [`ENFORCE_LABEL`]). Without it, none.
pub const WARN_LABEL: &str = "exceptions.dev/warn";
/// Namespace label: the level whose uncovered violations are recorded in
/// the audit log (same values as [`ENFORCE_LABEL`]). Without it, none.
pub const AUDIT_LABEL: &str = "exceptions.dev/audit";

/// The key of the audit annotation listing the uncovered violations at the
/// audit level, as a compact JSON array of `{control, container, field,
/// value}`. The API server prefixes audit annotation keys with the webhook's
/// name (which is why this key has no `exceptions.dev/` prefix of its own:
/// a key with a `/` would be dropped), so the audit log shows it as
/// `<webhook name>/audit-violations`, e.g.
/// `workloads.exceptions.dev/audit-violations`.
pub const AUDIT_VIOLATIONS_KEY: &str = "audit-violations";

/// The subresource through which ephemeral (debug) containers are added to
/// a Pod; evaluated like the Pod itself.
pub const EPHEMERAL_CONTAINERS_SUBRESOURCE: &str = "ephemeralcontainers";

/// The values the level labels accept, as error messages list them.
const VALID_LEVELS: &str = "privileged, baseline, restricted (or none, the same as privileged)";

/// The largest warning kubectl is sure to show whole (the API server may
/// truncate longer ones).
const MAX_WARNING_LEN: usize = 256;
/// The most warning text one response carries (the API server ignores
/// warnings beyond 4096 characters in total).
const MAX_WARNINGS_LEN: usize = 4000;

/// The levels that apply in one namespace.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NamespacePolicy {
    /// The namespace is in `enforcement.excludedNamespaces`: nothing is
    /// evaluated there, whatever the levels say.
    pub excluded: bool,
    /// Uncovered violations at this level deny the request.
    pub enforce: Level,
    /// Uncovered violations at this level are returned as warnings.
    pub warn: Level,
    /// Uncovered violations at this level are recorded as an audit annotation.
    pub audit: Level,
}

impl NamespacePolicy {
    /// The policy of an excluded namespace: nothing evaluated.
    pub fn excluded() -> Self {
        NamespacePolicy {
            excluded: true,
            enforce: Level::Privileged,
            warn: Level::Privileged,
            audit: Level::Privileged,
        }
    }

    /// Enforce `level`; no warnings, no audit annotations (what `check
    /// --level` asks for).
    pub fn enforcing(level: Level) -> Self {
        NamespacePolicy {
            excluded: false,
            enforce: level,
            warn: Level::Privileged,
            audit: Level::Privileged,
        }
    }

    /// The highest of the three levels: the one the pod template is
    /// evaluated at.
    pub fn highest(&self) -> Level {
        self.enforce.max(self.warn).max(self.audit)
    }
}

/// The levels of `namespace`, from its labels and the configuration:
/// excluded namespaces evaluate nothing; a namespace without
/// [`ENFORCE_LABEL`] enforces `enforcement.defaultLevel`; warn and audit
/// default to nothing. A label with a value other than `privileged`,
/// `baseline`, `restricted` or `none` is an error naming the label and the
/// valid values (the webhook denies, failing closed).
pub fn namespace_policy(
    namespace: &str,
    labels: &BTreeMap<String, String>,
    config: &Config,
) -> Result<NamespacePolicy, String> {
    if config.is_excluded_namespace(namespace) {
        return Ok(NamespacePolicy::excluded());
    }
    let default_enforce = config
        .enforcement
        .default_level
        .pss_level()
        .unwrap_or(Level::Privileged);
    let level = |label: &str, default: Level| -> Result<Level, String> {
        match labels.get(label).map(String::as_str) {
            None => Ok(default),
            Some("none") => Ok(Level::Privileged),
            Some(value) => value.parse::<Level>().map_err(|_| {
                format!(
                    "namespace {namespace}: label {label} has value {value:?}, which is not a level; valid values are {VALID_LEVELS}. \
                     Every workload in this namespace is denied until the label is fixed"
                )
            }),
        }
    };
    Ok(NamespacePolicy {
        excluded: false,
        enforce: level(ENFORCE_LABEL, default_enforce)?,
        warn: level(WARN_LABEL, Level::Privileged)?,
        audit: level(AUDIT_LABEL, Level::Privileged)?,
    })
}

/// The admission operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Operation {
    /// CREATE.
    Create,
    /// UPDATE (also of objects being deleted, and of subresources).
    Update,
}

impl Operation {
    /// `creating` or `updating`, for messages.
    fn gerund(self) -> &'static str {
        match self {
            Operation::Create => "creating",
            Operation::Update => "updating",
        }
    }
}

/// The submitted object, as the caller has it.
#[derive(Clone, Copy, Debug)]
pub enum WorkloadObject<'a> {
    /// Decoded by kube (`AdmissionReview<DynamicObject>`), as the webhook has it.
    Dynamic(&'a DynamicObject),
    /// Raw JSON, as `check` reads it from manifests.
    Json(&'a Value),
}

impl<'a> From<&'a DynamicObject> for WorkloadObject<'a> {
    fn from(object: &'a DynamicObject) -> Self {
        WorkloadObject::Dynamic(object)
    }
}

impl<'a> From<&'a Value> for WorkloadObject<'a> {
    fn from(object: &'a Value) -> Self {
        WorkloadObject::Json(object)
    }
}

impl WorkloadObject<'_> {
    /// The workload the object describes.
    pub fn workload(&self) -> Result<Workload, WorkloadError> {
        match self {
            WorkloadObject::Dynamic(object) => workload::pod_templates_of(object),
            WorkloadObject::Json(object) => workload::pod_templates(object),
        }
    }
}

/// One workload admission request, reduced to what decides it.
#[derive(Clone, Debug)]
pub struct WorkloadRequest<'a> {
    /// The namespace of the request (from the AdmissionReview, not the
    /// object: the object may not say on CREATE).
    pub namespace: String,
    /// The object as submitted (for UPDATE, the new object).
    pub object: WorkloadObject<'a>,
    /// CREATE or UPDATE.
    pub operation: Operation,
    /// The subresource, if any: `ephemeralcontainers` is evaluated like the
    /// Pod; any other is allowed without evaluation.
    pub subresource: Option<String>,
}

/// Whether and how the object was evaluated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Evaluated at this level (the highest of enforce, warn and audit).
    Evaluated(Level),
    /// The namespace is in `enforcement.excludedNamespaces`: allowed
    /// without evaluation.
    ExcludedNamespace,
    /// A subresource that cannot change the pod spec (`status`, `scale`):
    /// allowed without evaluation.
    IgnoredSubresource(String),
    /// The object is not a workload whose pod template can be read: denied
    /// (fail closed). The text is the error and its causes.
    Malformed(String),
}

/// One violation found, and what became of it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Finding {
    /// The violation.
    pub violation: Violation,
    /// The exception that covers it on its own, if any.
    pub covered_by: Option<String>,
    /// Whether it counts at the enforce level (uncovered: denied).
    pub enforce: bool,
    /// Whether it counts at the warn level (uncovered: a warning).
    pub warn: bool,
    /// Whether it counts at the audit level (uncovered: audit annotation).
    pub audit: bool,
}

/// The decision on one workload admission request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WorkloadDecision {
    /// Whether the request is allowed.
    pub allowed: bool,
    /// Whether and how the object was evaluated.
    pub outcome: Outcome,
    /// Why the request is denied (one message listing every uncovered
    /// violation at the enforce level and how to request an exception);
    /// `None` when allowed.
    pub message: Option<String>,
    /// Warnings for kubectl (allowed requests only, as Pod Security
    /// Admission does): one per uncovered violation at the warn level, and
    /// one per covering exception that expires within the largest expiry
    /// warning window (`lifecycle.expiryWarnings`).
    pub warnings: Vec<String>,
    /// Audit annotations: [`AUDIT_VIOLATIONS_KEY`] when uncovered
    /// violations count at the audit level (also on denied requests).
    pub audit_annotations: BTreeMap<String, String>,
    /// Every violation found at the highest level, in field order.
    pub findings: Vec<Finding>,
    /// The covered violations (at any level) and the exception covering
    /// each, for coverage tracking; also reported when the request is denied
    /// for other violations.
    pub covered: Vec<(String, Violation)>,
}

impl WorkloadDecision {
    fn allowed(outcome: Outcome) -> Self {
        WorkloadDecision {
            allowed: true,
            outcome,
            message: None,
            warnings: Vec::new(),
            audit_annotations: BTreeMap::new(),
            findings: Vec::new(),
            covered: Vec::new(),
        }
    }
}

/// The extra controls switched on in `enforcement.extras` (all off by
/// default): checked in every evaluated namespace, whatever its level.
fn extras(config: &Config) -> Extras {
    config.enforcement.extras.clone()
}

/// Decides one workload admission request at `now`: see the
/// [module documentation](self). `policy` is the namespace's
/// ([`namespace_policy`]); `index` holds the exceptions in force (the
/// index itself checks namespace, expiry, controls, values and targets).
pub fn decide(
    request: &WorkloadRequest<'_>,
    policy: &NamespacePolicy,
    index: &ExceptionIndex,
    config: &Config,
    now: Timestamp,
) -> WorkloadDecision {
    if policy.excluded {
        return WorkloadDecision::allowed(Outcome::ExcludedNamespace);
    }
    match request.subresource.as_deref() {
        None | Some(EPHEMERAL_CONTAINERS_SUBRESOURCE) => {}
        Some(other) => return WorkloadDecision::allowed(Outcome::IgnoredSubresource(other.into())),
    }
    let workload = match request.object.workload() {
        Ok(workload) => workload,
        Err(error) => {
            let chain = error_chain(&error);
            let mut decision = WorkloadDecision::allowed(Outcome::Malformed(chain.clone()));
            decision.allowed = false;
            decision.message = Some(format!(
                "{} this object in namespace {} is denied: its pod template cannot be read ({chain}); \
                 exception-operator denies what it cannot check",
                request.operation.gerund(),
                request.namespace
            ));
            return decision;
        }
    };

    let level = policy.highest();
    let extras = extras(config);
    let violations = controls::evaluate(
        &workload.template_metadata,
        &workload.pod_spec,
        level,
        &extras,
        workload.field_prefix,
        workload.metadata_prefix,
    );
    let coverage = index.decide(&request.namespace, &workload, &violations, now);
    let findings: Vec<Finding> = coverage
        .iter()
        .map(|c| {
            let counts = |mode: Level| counts_at(c.violation, mode);
            Finding {
                violation: c.violation.clone(),
                covered_by: c.by.as_ref().map(|e| e.name.clone()),
                enforce: counts(policy.enforce),
                warn: counts(policy.warn),
                audit: counts(policy.audit),
            }
        })
        .collect();

    let mut decision = WorkloadDecision::allowed(Outcome::Evaluated(level));
    decision.covered = findings
        .iter()
        .filter_map(|f| Some((f.covered_by.clone()?, f.violation.clone())))
        .collect();

    let denied: Vec<&Violation> = findings
        .iter()
        .filter(|f| f.enforce && f.covered_by.is_none())
        .map(|f| &f.violation)
        .collect();
    if !denied.is_empty() {
        decision.allowed = false;
        decision.message = Some(denial_message(request, &workload, policy.enforce, &denied));
    }

    let audited: Vec<&Violation> = findings
        .iter()
        .filter(|f| f.audit && f.covered_by.is_none())
        .map(|f| &f.violation)
        .collect();
    if !audited.is_empty() {
        // Serializing plain strings cannot fail; should it, the annotation
        // still says that violations were found.
        let list = serde_json::to_string(&audited)
            .unwrap_or_else(|_| format!("[{} violations]", audited.len()));
        decision
            .audit_annotations
            .insert(AUDIT_VIOLATIONS_KEY.to_string(), list);
    }

    if decision.allowed {
        let mut warnings: Vec<String> = findings
            .iter()
            .filter(|f| f.warn && !f.enforce && f.covered_by.is_none())
            .map(|f| warning(policy.warn, &f.violation))
            .collect();
        warnings.extend(expiry_warnings(&coverage, config, now));
        decision.warnings = bounded(warnings);
    }
    decision.findings = findings;
    decision
}

/// Whether `violation` counts at `mode`: whether evaluating at that level
/// alone would report it. The opt-in extras count at every level.
fn counts_at(violation: &Violation, mode: Level) -> bool {
    match controls::lookup(violation.control).and_then(|c| c.level) {
        Some(level) => mode != Level::Privileged && level <= mode,
        None => true,
    }
}

/// An error and its causes, `: `-separated.
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// How a workload is named in messages: `Deployment web`, `Pod of
/// ReplicaSet web-7d9f8b6c4` (a Pod whose name the API server has not
/// generated yet).
fn describe(workload: &Workload) -> String {
    let kind = kind_name(workload.kind);
    match (&workload.name, &workload.owner) {
        (name, _) if !name.is_empty() => format!("{kind} {name}"),
        (_, Some((owner_kind, owner))) => format!("{kind} of {} {owner}", kind_name(*owner_kind)),
        _ => format!("{kind} (name not generated yet)"),
    }
}

fn kind_name(kind: crate::api::WorkloadKind) -> String {
    format!("{kind:?}")
}

/// One violation in a list: `privileged, container app:
/// spec.containers[0].securityContext.privileged=true`.
fn describe_violation(v: &Violation) -> String {
    match &v.container {
        Some(container) => format!(
            "{}, container {container}: {}={}",
            v.control, v.field, v.value
        ),
        None => format!("{}: {}={}", v.control, v.field, v.value),
    }
}

/// The denial: every uncovered violation, and the exception that would
/// cover them.
fn denial_message(
    request: &WorkloadRequest<'_>,
    workload: &Workload,
    level: Level,
    denied: &[&Violation],
) -> String {
    let namespace = &request.namespace;
    let mut message = format!(
        "{} {} in namespace {namespace} is denied: {} violation(s) of the {level} level that no active SecurityException covers:",
        request.operation.gerund(),
        describe(workload),
        denied.len(),
    );
    for v in denied {
        message.push_str("\n- ");
        message.push_str(&describe_violation(v));
    }
    message.push_str(&format!(
        "\nTo request an exception: kubectl apply a SecurityException in namespace {namespace} with controls {} targeting this workload ({}); see kubectl explain securityexception.spec",
        suggested_controls(denied),
        suggested_targets(workload),
    ));
    message
}

/// `[{id: privileged}, {id: hostPorts, values: ["8080"]}]`: the controls (and
/// values, for controls that take them) an exception would have to list.
fn suggested_controls(denied: &[&Violation]) -> String {
    let mut order: Vec<&str> = Vec::new();
    let mut values: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for v in denied {
        if !order.contains(&v.control) {
            order.push(v.control);
        }
        if controls::lookup(v.control).is_some_and(|c| c.takes_values) {
            values.entry(v.control).or_default().insert(&v.value);
        }
    }
    let items: Vec<String> = order
        .iter()
        .map(|id| match values.get(id) {
            Some(values) => format!(
                "{{id: {id}, values: [{}]}}",
                values
                    .iter()
                    .map(|v| yaml_scalar(v))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => format!("{{id: {id}}}"),
        })
        .collect();
    format!("[{}]", items.join(", "))
}

/// `targets: {kinds: [Deployment], names: [web]}`, naming the outermost
/// controller the workload reveals (for a Deployment's Pod, the Deployment).
fn suggested_targets(workload: &Workload) -> String {
    match workload
        .identities()
        .into_iter()
        .rev()
        .find(|(_, name)| !name.is_empty())
    {
        Some((kind, name)) => format!(
            "targets: {{kinds: [{}], names: [{}]}}",
            kind_name(kind),
            yaml_scalar(name)
        ),
        None => "targets: names, selector or images".to_string(),
    }
}

/// A YAML flow scalar: plain when safe, else JSON-quoted (JSON strings are
/// YAML).
fn yaml_scalar(text: &str) -> String {
    let plain = !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '/'))
        && text
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '/')
        && !matches!(
            text.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "y" | "n"
        );
    if plain {
        text.to_string()
    } else {
        Value::String(text.to_string()).to_string()
    }
}

/// One warn-level violation, short enough for kubectl.
fn warning(level: Level, v: &Violation) -> String {
    truncate(format!(
        "would violate the {level} level ({WARN_LABEL}): {}",
        describe_violation(v)
    ))
}

/// Warnings for the exceptions this admission relies on (those covering any
/// violation found) that expire within the largest expiry warning window.
fn expiry_warnings(
    coverage: &[super::matching::Coverage<'_>],
    config: &Config,
    now: Timestamp,
) -> Vec<String> {
    let Some(window) = config
        .lifecycle
        .expiry_warnings
        .iter()
        .map(|d| d.get())
        .max()
    else {
        return Vec::new();
    };
    let mut seen = BTreeSet::new();
    coverage
        .iter()
        .filter_map(|c| c.by.as_ref())
        .filter(|e| seen.insert(e.name.clone()))
        .filter_map(|e| {
            let left = e.expires_at.duration_since(now);
            (left <= window).then(|| {
                truncate(format!(
                    "admitted under SecurityException {}, which expires at {} (in {}); renew it (new spec, new approval) or remediate before then",
                    e.name,
                    e.expires_at,
                    remaining(left)
                ))
            })
        })
        .collect()
}

/// `12d 3h`, `5h 20m`, `14m`: how long until an expiry.
fn remaining(left: SignedDuration) -> String {
    let secs = left.as_secs().max(0);
    let (days, hours, minutes) = (secs / 86_400, secs % 86_400 / 3600, secs % 3600 / 60);
    if days > 0 {
        format!("{days}d {hours}h")
    } else if hours > 0 {
        format!("{hours}h {minutes}m")
    } else {
        format!("{}m", minutes.max(1))
    }
}

/// Cuts a warning to [`MAX_WARNING_LEN`] bytes, at a character boundary.
fn truncate(mut text: String) -> String {
    if text.len() > MAX_WARNING_LEN {
        let mut end = MAX_WARNING_LEN - 3;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
        text.push_str("...");
    }
    text
}

/// Keeps warnings within [`MAX_WARNINGS_LEN`] in total, saying how many
/// were left out.
fn bounded(warnings: Vec<String>) -> Vec<String> {
    let total = warnings.len();
    let mut used = 0;
    let mut out = Vec::new();
    for warning in warnings {
        // Leave room for the closing "N more" line.
        if used + warning.len() > MAX_WARNINGS_LEN - 80 {
            break;
        }
        used += warning.len();
        out.push(warning);
    }
    if out.len() < total {
        out.push(format!(
            "{} more warning(s) not shown; run exception-operator check on the manifest for the full list",
            total - out.len()
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use k8s_openapi::jiff::SignedDuration;
    use serde_json::json;

    use super::*;
    use crate::api::SecurityExceptionSpec;
    use crate::config::EnforcementLevel;
    use crate::policy::matching::HonouredException;

    fn now() -> Timestamp {
        "2027-01-01T00:00:00Z".parse().unwrap()
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    fn container(name: &str, security_context: Value) -> Value {
        json!({"name": name, "image": "registry.example.com/app:1.0", "securityContext": security_context})
    }

    fn deployment(namespace: &str, name: &str, containers: Value) -> Value {
        json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": name, "namespace": namespace},
            "spec": {
                "selector": {"matchLabels": {"app": name}},
                "template": {
                    "metadata": {"labels": {"app": name}},
                    "spec": {"containers": containers}
                }
            }
        })
    }

    fn privileged_deployment(namespace: &str) -> Value {
        deployment(
            namespace,
            "web",
            json!([container("app", json!({"privileged": true}))]),
        )
    }

    /// A restricted-compliant container.
    fn hardened() -> Value {
        json!({
            "allowPrivilegeEscalation": false,
            "runAsNonRoot": true,
            "seccompProfile": {"type": "RuntimeDefault"},
            "capabilities": {"drop": ["ALL"]}
        })
    }

    fn spec(controls: Value, targets: Value, expires_at: Timestamp) -> SecurityExceptionSpec {
        serde_json::from_value(json!({
            "controls": controls,
            "targets": targets,
            "justification": "vendor agent",
            "risk": {"rating": "Low"},
            "expiresAt": expires_at.to_string(),
        }))
        .unwrap()
    }

    fn index(exceptions: &[(&str, &str, Value, Value, Timestamp)]) -> ExceptionIndex {
        let mut index = ExceptionIndex::new();
        for (namespace, name, controls, targets, expires_at) in exceptions {
            index.upsert(
                HonouredException::new(
                    *namespace,
                    *name,
                    &spec(controls.clone(), targets.clone(), *expires_at),
                )
                .unwrap(),
            );
        }
        index
    }

    fn request<'a>(namespace: &str, object: &'a Value) -> WorkloadRequest<'a> {
        WorkloadRequest {
            namespace: namespace.to_string(),
            object: object.into(),
            operation: Operation::Create,
            subresource: None,
        }
    }

    fn baseline() -> NamespacePolicy {
        NamespacePolicy::enforcing(Level::Baseline)
    }

    fn decide_simple(
        namespace: &str,
        object: &Value,
        policy: NamespacePolicy,
        index: &ExceptionIndex,
    ) -> WorkloadDecision {
        decide(
            &request(namespace, object),
            &policy,
            index,
            &Config::default(),
            now(),
        )
    }

    fn labels(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn configured_extras_are_enforced_and_can_be_covered() {
        let mut config = Config::default();
        config.enforcement.extras.image_tag_latest = true;
        let object = deployment(
            "shop",
            "web",
            json!([{"name": "app", "image": "nginx:latest", "securityContext": hardened()}]),
        );
        let decision = decide(
            &request("shop", &object),
            &baseline(),
            &ExceptionIndex::new(),
            &config,
            now(),
        );
        assert!(!decision.allowed);
        assert!(
            decision
                .message
                .as_deref()
                .unwrap_or_default()
                .contains("imageTagLatest"),
            "{:?}",
            decision.message
        );
        // Off by default.
        assert!(decide_simple("shop", &object, baseline(), &ExceptionIndex::new()).allowed);
        // And covered like any other control.
        let index = index(&[(
            "shop",
            "latest-ok",
            json!([{"id": "imageTagLatest"}]),
            json!({"names": ["web"]}),
            now() + days(1),
        )]);
        assert!(
            decide(
                &request("shop", &object),
                &baseline(),
                &index,
                &config,
                now()
            )
            .allowed
        );
    }

    #[test]
    fn a_privileged_deployment_is_denied_at_baseline_naming_the_field() {
        let object = privileged_deployment("shop");
        let decision = decide_simple("shop", &object, baseline(), &ExceptionIndex::new());
        assert!(!decision.allowed);
        assert_eq!(decision.outcome, Outcome::Evaluated(Level::Baseline));
        let message = decision.message.unwrap();
        assert!(
            message.contains("spec.template.spec.containers[0].securityContext.privileged=true"),
            "{message}"
        );
        assert!(
            message.contains("creating Deployment web in namespace shop"),
            "{message}"
        );
        assert!(message.contains("privileged, container app"), "{message}");
        assert!(
            message.contains(
                "To request an exception: kubectl apply a SecurityException in namespace shop with controls [{id: privileged}] targeting this workload (targets: {kinds: [Deployment], names: [web]}); see kubectl explain securityexception.spec"
            ),
            "{message}"
        );
        assert!(decision.warnings.is_empty());
        assert!(decision.covered.is_empty());
        assert_eq!(decision.findings.len(), 1);
        assert!(decision.findings[0].enforce && decision.findings[0].covered_by.is_none());
    }

    #[test]
    fn one_message_lists_every_uncovered_violation_with_values_to_request() {
        let mut object = deployment(
            "shop",
            "web",
            json!([
                container("app", json!({"privileged": true})),
                container(
                    "sidecar",
                    json!({"capabilities": {"add": ["NET_ADMIN", "SYS_TIME"]}})
                ),
            ]),
        );
        object["spec"]["template"]["spec"]["hostNetwork"] = json!(true);
        let decision = decide_simple("shop", &object, baseline(), &ExceptionIndex::new());
        let message = decision.message.unwrap();
        assert_eq!(message.matches("\n- ").count(), 4, "{message}");
        assert!(
            message.contains("hostNamespaces: spec.template.spec.hostNetwork=hostNetwork"),
            "{message}"
        );
        assert!(
            message.contains("{id: capabilities_baseline, values: [NET_ADMIN, SYS_TIME]}"),
            "{message}"
        );
        assert!(
            message.contains("{id: hostNamespaces, values: [hostNetwork]}"),
            "{message}"
        );
    }

    #[test]
    fn a_covering_exception_admits_and_is_reported() {
        let object = privileged_deployment("shop");
        let index = index(&[(
            "shop",
            "allow-priv",
            json!([{"id": "privileged"}]),
            json!({"kinds": ["Deployment"], "names": ["web"]}),
            now() + days(90),
        )]);
        let decision = decide_simple("shop", &object, baseline(), &index);
        assert!(decision.allowed, "{:?}", decision.message);
        assert_eq!(decision.message, None);
        assert_eq!(decision.covered.len(), 1);
        assert_eq!(decision.covered[0].0, "allow-priv");
        assert_eq!(decision.covered[0].1.control, "privileged");
        assert_eq!(
            decision.findings[0].covered_by.as_deref(),
            Some("allow-priv")
        );
        // Far from expiry: no warning.
        assert!(decision.warnings.is_empty(), "{:?}", decision.warnings);
    }

    #[test]
    fn a_second_exception_for_another_control_does_not_widen_the_first() {
        // allow-priv covers `privileged` in container app only; allow-caps
        // covers NET_ADMIN anywhere. A privileged sidecar is covered by neither.
        let object = deployment(
            "shop",
            "web",
            json!([
                container("app", json!({"privileged": true})),
                container(
                    "sidecar",
                    json!({"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}})
                ),
            ]),
        );
        let index = index(&[
            (
                "shop",
                "allow-priv",
                json!([{"id": "privileged"}]),
                json!({"names": ["web"], "containers": ["app"]}),
                now() + days(90),
            ),
            (
                "shop",
                "allow-caps",
                json!([{"id": "capabilities_baseline", "values": ["NET_ADMIN"]}]),
                json!({"names": ["web"]}),
                now() + days(90),
            ),
        ]);
        let decision = decide_simple("shop", &object, baseline(), &index);
        assert!(!decision.allowed);
        let message = decision.message.unwrap();
        assert!(message.contains("1 violation(s)"), "{message}");
        assert!(
            message.contains("privileged, container sidecar: spec.template.spec.containers[1].securityContext.privileged=true"),
            "{message}"
        );
        let mut covered: Vec<(&str, &str)> = decision
            .covered
            .iter()
            .map(|(name, v)| (name.as_str(), v.control))
            .collect();
        covered.sort();
        assert_eq!(
            covered,
            [
                ("allow-caps", "capabilities_baseline"),
                ("allow-priv", "privileged")
            ]
        );
    }

    #[test]
    fn an_exception_in_another_namespace_never_admits() {
        let index = index(&[(
            "team-a",
            "allow-priv",
            json!([{"id": "privileged"}]),
            json!({"names": ["web"]}),
            now() + days(90),
        )]);
        // The object claims nothing; the request is in team-b.
        let mut object = privileged_deployment("team-b");
        let decision = decide_simple("team-b", &object, baseline(), &index);
        assert!(!decision.allowed);
        assert!(decision.covered.is_empty());
        // Nor does an object that claims namespace team-a in a team-b request.
        object["metadata"]["namespace"] = json!("team-a");
        let decision = decide_simple("team-b", &object, baseline(), &index);
        assert!(!decision.allowed);
        // In team-a, it does.
        let decision = decide_simple("team-a", &object, baseline(), &index);
        assert!(decision.allowed);
    }

    #[test]
    fn an_expired_exception_does_not_admit() {
        let object = privileged_deployment("shop");
        let index = index(&[(
            "shop",
            "allow-priv",
            json!([{"id": "privileged"}]),
            json!({"names": ["web"]}),
            now(),
        )]);
        assert!(!decide_simple("shop", &object, baseline(), &index).allowed);
    }

    #[test]
    fn warn_mode_warns_and_allows() {
        let object = deployment("shop", "web", json!([container("app", json!({}))]));
        let policy = NamespacePolicy {
            excluded: false,
            enforce: Level::Baseline,
            warn: Level::Restricted,
            audit: Level::Privileged,
        };
        let decision = decide_simple("shop", &object, policy, &ExceptionIndex::new());
        assert!(decision.allowed);
        assert_eq!(decision.outcome, Outcome::Evaluated(Level::Restricted));
        assert_eq!(decision.warnings.len(), 4, "{:?}", decision.warnings);
        for warning in &decision.warnings {
            assert!(
                warning.starts_with("would violate the restricted level (exceptions.dev/warn): "),
                "{warning}"
            );
            assert!(warning.len() <= MAX_WARNING_LEN);
        }
        assert!(decision.warnings.iter().any(|w| w.contains(
            "runAsNonRoot, container app: spec.template.spec.containers[0].securityContext.runAsNonRoot=unset"
        )));
        assert!(decision.audit_annotations.is_empty());
        assert!(
            decision
                .findings
                .iter()
                .all(|f| f.warn && !f.enforce && !f.audit)
        );
    }

    #[test]
    fn a_covered_warn_violation_is_not_warned() {
        let object = deployment("shop", "web", json!([container("app", json!({}))]));
        let policy = NamespacePolicy {
            excluded: false,
            enforce: Level::Privileged,
            warn: Level::Restricted,
            audit: Level::Privileged,
        };
        let index = index(&[(
            "shop",
            "root-ok",
            json!([{"id": "runAsNonRoot"}]),
            json!({"names": ["web"]}),
            now() + days(90),
        )]);
        let decision = decide_simple("shop", &object, policy, &index);
        assert!(decision.allowed);
        assert_eq!(decision.warnings.len(), 3, "{:?}", decision.warnings);
        assert!(!decision.warnings.iter().any(|w| w.contains("runAsNonRoot")));
        assert_eq!(decision.covered.len(), 1);
    }

    #[test]
    fn audit_mode_annotates() {
        let object = privileged_deployment("shop");
        let policy = NamespacePolicy {
            excluded: false,
            enforce: Level::Privileged,
            warn: Level::Privileged,
            audit: Level::Baseline,
        };
        let decision = decide_simple("shop", &object, policy, &ExceptionIndex::new());
        assert!(decision.allowed);
        assert!(decision.warnings.is_empty());
        let annotation = &decision.audit_annotations[AUDIT_VIOLATIONS_KEY];
        let parsed: Value = serde_json::from_str(annotation).unwrap();
        assert_eq!(
            parsed,
            json!([{
                "control": "privileged",
                "container": "app",
                "field": "spec.template.spec.containers[0].securityContext.privileged",
                "value": "true"
            }])
        );
        assert!(!annotation.contains(' '), "compact JSON: {annotation}");
        assert!(!AUDIT_VIOLATIONS_KEY.contains('/'));
    }

    #[test]
    fn audit_annotations_are_kept_on_denials() {
        let object = privileged_deployment("shop");
        let policy = NamespacePolicy {
            excluded: false,
            enforce: Level::Baseline,
            warn: Level::Restricted,
            audit: Level::Restricted,
        };
        let decision = decide_simple("shop", &object, policy, &ExceptionIndex::new());
        assert!(!decision.allowed);
        assert!(decision.warnings.is_empty(), "no warnings on a denial");
        let parsed: Vec<Value> =
            serde_json::from_str(&decision.audit_annotations[AUDIT_VIOLATIONS_KEY]).unwrap();
        assert!(parsed.len() > 1);
        // The denial lists only the enforce level's violations.
        let message = decision.message.unwrap();
        assert!(
            message.contains("1 violation(s) of the baseline level"),
            "{message}"
        );
        assert!(!message.contains("runAsNonRoot"), "{message}");
    }

    #[test]
    fn one_evaluation_equals_one_per_level() {
        let object = deployment(
            "shop",
            "web",
            json!([container(
                "app",
                json!({"privileged": true, "capabilities": {"add": ["NET_ADMIN"]}})
            )]),
        );
        let workload = workload::pod_templates(&object).unwrap();
        for (enforce, warn) in [
            (Level::Baseline, Level::Restricted),
            (Level::Restricted, Level::Baseline),
            (Level::Privileged, Level::Baseline),
        ] {
            let policy = NamespacePolicy {
                excluded: false,
                enforce,
                warn,
                audit: Level::Privileged,
            };
            let decision = decide_simple("shop", &object, policy, &ExceptionIndex::new());
            let alone = |level| {
                controls::evaluate(
                    &workload.template_metadata,
                    &workload.pod_spec,
                    level,
                    &Extras::default(),
                    workload.field_prefix,
                    workload.metadata_prefix,
                )
            };
            let at = |pick: fn(&Finding) -> bool| -> Vec<Violation> {
                decision
                    .findings
                    .iter()
                    .filter(|f| pick(f))
                    .map(|f| f.violation.clone())
                    .collect()
            };
            assert_eq!(at(|f| f.enforce), alone(enforce), "{enforce} / {warn}");
            assert_eq!(at(|f| f.warn), alone(warn), "{enforce} / {warn}");
        }
    }

    #[test]
    fn excluded_namespaces_are_not_evaluated() {
        let config = Config::default();
        let policy = namespace_policy(
            "kube-system",
            &labels(&[(ENFORCE_LABEL, "nonsense")]),
            &config,
        )
        .unwrap();
        assert_eq!(policy, NamespacePolicy::excluded());
        // Not even a malformed object is looked at.
        let object = json!({"apiVersion": "v1", "kind": "Pod"});
        let decision = decide(
            &request("kube-system", &object),
            &policy,
            &ExceptionIndex::new(),
            &config,
            now(),
        );
        assert!(decision.allowed);
        assert_eq!(decision.outcome, Outcome::ExcludedNamespace);
        assert!(decision.findings.is_empty());
    }

    #[test]
    fn namespace_levels_come_from_labels_and_the_default() {
        let mut config = Config::default();
        let none = labels(&[]);
        assert_eq!(
            namespace_policy("shop", &none, &config).unwrap(),
            NamespacePolicy::enforcing(Level::Baseline)
        );
        let all = labels(&[
            (ENFORCE_LABEL, "restricted"),
            (WARN_LABEL, "baseline"),
            (AUDIT_LABEL, "none"),
        ]);
        assert_eq!(
            namespace_policy("shop", &all, &config).unwrap(),
            NamespacePolicy {
                excluded: false,
                enforce: Level::Restricted,
                warn: Level::Baseline,
                audit: Level::Privileged
            }
        );
        let privileged = labels(&[(ENFORCE_LABEL, "privileged")]);
        assert_eq!(
            namespace_policy("shop", &privileged, &config)
                .unwrap()
                .enforce,
            Level::Privileged
        );
        config.enforcement.default_level = EnforcementLevel::None;
        assert_eq!(
            namespace_policy("shop", &none, &config).unwrap().enforce,
            Level::Privileged
        );
        config.enforcement.default_level = EnforcementLevel::Restricted;
        assert_eq!(
            namespace_policy("shop", &none, &config).unwrap().enforce,
            Level::Restricted
        );
        assert_eq!(
            namespace_policy("shop", &none, &config).unwrap().highest(),
            Level::Restricted
        );
    }

    #[test]
    fn an_invalid_label_is_an_error_naming_it() {
        let config = Config::default();
        for (label, value) in [
            (ENFORCE_LABEL, "strict"),
            (WARN_LABEL, "Baseline"),
            (AUDIT_LABEL, ""),
        ] {
            let error = namespace_policy("shop", &labels(&[(label, value)]), &config).unwrap_err();
            assert!(
                error.contains(&format!("label {label} has value {value:?}")),
                "{error}"
            );
            assert!(
                error.contains("valid values are privileged, baseline, restricted (or none"),
                "{error}"
            );
        }
    }

    #[test]
    fn an_exception_expiring_soon_is_warned_about() {
        let object = privileged_deployment("shop");
        let index = index(&[(
            "shop",
            "allow-priv",
            json!([{"id": "privileged"}]),
            json!({"names": ["web"]}),
            now() + days(5) + SignedDuration::from_hours(3),
        )]);
        let decision = decide_simple("shop", &object, baseline(), &index);
        assert!(decision.allowed);
        assert_eq!(
            decision.warnings,
            [
                "admitted under SecurityException allow-priv, which expires at 2027-01-06T03:00:00Z (in 5d 3h); renew it (new spec, new approval) or remediate before then"
            ]
        );
        // The largest window (30d by default) counts: 29 days out warns too,
        // 31 days out does not.
        for (left, warned) in [(29, true), (31, false)] {
            let index = self::index(&[(
                "shop",
                "allow-priv",
                json!([{"id": "privileged"}]),
                json!({"names": ["web"]}),
                now() + days(left),
            )]);
            let decision = decide_simple("shop", &object, baseline(), &index);
            assert_eq!(!decision.warnings.is_empty(), warned, "{left}d");
        }
    }

    #[test]
    fn ephemeral_containers_are_checked() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {"name": "web-1", "namespace": "shop"},
            "spec": {
                "containers": [{"name": "app", "image": "app:1"}],
                "ephemeralContainers": [{"name": "debug", "image": "busybox:1", "securityContext": {"privileged": true}}]
            }
        });
        let mut request = request("shop", &pod);
        request.operation = Operation::Update;
        request.subresource = Some(EPHEMERAL_CONTAINERS_SUBRESOURCE.into());
        let decision = decide(
            &request,
            &baseline(),
            &ExceptionIndex::new(),
            &Config::default(),
            now(),
        );
        assert!(!decision.allowed);
        let message = decision.message.unwrap();
        assert!(message.starts_with("updating Pod web-1"), "{message}");
        assert!(
            message.contains("privileged, container debug: spec.ephemeralContainers[0].securityContext.privileged=true"),
            "{message}"
        );
    }

    #[test]
    fn other_subresources_are_not_evaluated() {
        let object = privileged_deployment("shop");
        for subresource in ["status", "scale"] {
            let mut request = request("shop", &object);
            request.operation = Operation::Update;
            request.subresource = Some(subresource.into());
            let decision = decide(
                &request,
                &baseline(),
                &ExceptionIndex::new(),
                &Config::default(),
                now(),
            );
            assert!(decision.allowed);
            assert_eq!(
                decision.outcome,
                Outcome::IgnoredSubresource(subresource.into())
            );
        }
    }

    #[test]
    fn a_cron_job_template_is_checked() {
        let cron_job = json!({
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "metadata": {"name": "backup", "namespace": "shop"},
            "spec": {
                "schedule": "@daily",
                "jobTemplate": {"spec": {"template": {"spec": {
                    "restartPolicy": "OnFailure",
                    "containers": [{"name": "backup", "image": "backup:1"}],
                    "volumes": [{"name": "host", "hostPath": {"path": "/var/lib"}}]
                }}}}
            }
        });
        let decision = decide_simple("shop", &cron_job, baseline(), &ExceptionIndex::new());
        assert!(!decision.allowed);
        let message = decision.message.unwrap();
        assert!(
            message.contains("hostPathVolumes: spec.jobTemplate.spec.template.spec.volumes[0].hostPath.path=/var/lib"),
            "{message}"
        );
        assert!(
            message.contains("{id: hostPathVolumes, values: [/var/lib]}"),
            "{message}"
        );
        assert!(
            message.contains("targets: {kinds: [CronJob], names: [backup]}"),
            "{message}"
        );
    }

    #[test]
    fn an_object_being_deleted_is_still_evaluated() {
        let mut object = privileged_deployment("shop");
        object["metadata"]["deletionTimestamp"] = json!("2026-12-31T00:00:00Z");
        object["metadata"]["finalizers"] = json!(["example.com/cleanup"]);
        let mut request = request("shop", &object);
        request.operation = Operation::Update;
        let decision = decide(
            &request,
            &baseline(),
            &ExceptionIndex::new(),
            &Config::default(),
            now(),
        );
        assert!(!decision.allowed);
        assert_eq!(decision.outcome, Outcome::Evaluated(Level::Baseline));
    }

    #[test]
    fn a_malformed_object_is_denied_with_the_error_chain() {
        let object = json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web"},
            "spec": {"template": {"spec": {"containers": "app"}}}
        });
        let decision = decide_simple("shop", &object, baseline(), &ExceptionIndex::new());
        assert!(!decision.allowed);
        let Outcome::Malformed(chain) = &decision.outcome else {
            panic!("{:?}", decision.outcome)
        };
        assert!(
            chain.starts_with("spec.template.spec: malformed: invalid type"),
            "{chain}"
        );
        let message = decision.message.unwrap();
        assert!(message.contains(chain.as_str()), "{message}");
        // Even where nothing is enforced.
        let decision = decide_simple(
            "shop",
            &object,
            NamespacePolicy::enforcing(Level::Privileged),
            &ExceptionIndex::new(),
        );
        assert!(!decision.allowed);
    }

    #[test]
    fn a_dynamic_object_decides_the_same() {
        let object = privileged_deployment("shop");
        let dynamic: DynamicObject = serde_json::from_value(object.clone()).unwrap();
        let from_json = decide_simple("shop", &object, baseline(), &ExceptionIndex::new());
        let request = WorkloadRequest {
            namespace: "shop".into(),
            object: (&dynamic).into(),
            operation: Operation::Create,
            subresource: None,
        };
        let from_dynamic = decide(
            &request,
            &baseline(),
            &ExceptionIndex::new(),
            &Config::default(),
            now(),
        );
        assert_eq!(from_json, from_dynamic);
    }

    #[test]
    fn a_compliant_workload_is_allowed_silently() {
        let object = deployment("shop", "web", json!([container("app", hardened())]));
        let policy = NamespacePolicy {
            excluded: false,
            enforce: Level::Restricted,
            warn: Level::Restricted,
            audit: Level::Restricted,
        };
        let decision = decide_simple("shop", &object, policy, &ExceptionIndex::new());
        assert!(decision.allowed);
        assert!(decision.findings.is_empty());
        assert!(decision.warnings.is_empty());
        assert!(decision.audit_annotations.is_empty());
    }

    #[test]
    fn a_generated_pod_names_its_deployment_in_the_suggestion() {
        let pod = json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "web-7d9f8b6c4-",
                "labels": {"pod-template-hash": "7d9f8b6c4"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "web-7d9f8b6c4", "uid": "1", "controller": true}]
            },
            "spec": {"containers": [{"name": "app", "image": "a:1", "securityContext": {"privileged": true}}]}
        });
        let message = decide_simple("shop", &pod, baseline(), &ExceptionIndex::new())
            .message
            .unwrap();
        assert!(
            message.starts_with("creating Pod of ReplicaSet web-7d9f8b6c4 in namespace shop"),
            "{message}"
        );
        assert!(
            message.contains("targets: {kinds: [Deployment], names: [web]}"),
            "{message}"
        );
    }

    #[test]
    fn warnings_stay_within_the_api_servers_limits() {
        let long = "x".repeat(400);
        assert_eq!(truncate(long).len(), MAX_WARNING_LEN);
        assert_eq!(truncate("é".repeat(200)).chars().last(), Some('.'));
        let many: Vec<String> = (0..100).map(|i| format!("{i:0>200}")).collect();
        let kept = bounded(many);
        assert!(kept.iter().map(String::len).sum::<usize>() <= 4096);
        assert!(kept.last().unwrap().contains("more warning(s) not shown"));
    }

    #[test]
    fn scalars_are_quoted_when_needed() {
        assert_eq!(yaml_scalar("NET_ADMIN"), "NET_ADMIN");
        assert_eq!(yaml_scalar("/var/log"), "/var/log");
        assert_eq!(yaml_scalar("8080"), "\"8080\"");
        assert_eq!(yaml_scalar("a: b"), "\"a: b\"");
        assert_eq!(yaml_scalar(""), "\"\"");
        assert_eq!(yaml_scalar("true"), "\"true\"");
        assert_eq!(remaining(SignedDuration::from_secs(30)), "1m");
        assert_eq!(remaining(SignedDuration::from_mins(150)), "2h 30m");
    }
}
