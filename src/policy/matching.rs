//! Which exception covers which violation: the in-memory index the webhook
//! consults on every admission.
//!
//! "Why was my Pod allowed despite a violation?" Because exactly one
//! exception in the Pod's own namespace, in force at that instant, lists the
//! violated control (and its value, where the exception narrows it) and
//! targets the workload and the container at fault. [`ExceptionIndex::decide`]
//! answers that for every violation separately and names the exception.
//!
//! Three rules hold by construction, each the lesson of a published bypass:
//!
//! - **An exception never reaches another namespace** (Kyverno
//!   CVE-2024-48921). The index is keyed by namespace first, and every
//!   exception checks its own namespace again.
//! - **Exceptions never combine** (Kyverno GHSA-gg4x-fgg2-h9w9). Each
//!   violation is covered by *one* exception whose controls, values and
//!   targets all include it. Exception A allowing `privileged` in container
//!   `a` and exception B allowing `NET_ADMIN` in container `b` do not allow
//!   a privileged container `b`.
//! - **Expiry is decided at admission time**, against the clock the caller
//!   passes, not when the index was last fed: an exception stops covering at
//!   the instant of its `expiresAt`, even if nothing has removed it yet.
//!
//! The caller (the controller feeding the index from a watch) is trusted to
//! insert only exceptions that are otherwise in force: approved for their
//! current spec, not denied, revoked or suspended. Everything else is
//! decided here.
//!
//! A look-up costs a hash of the namespace, a hash of the control id, then a
//! scan of the exceptions of that namespace that name that control: it does
//! not grow with exceptions elsewhere.
//!
//! # Targets
//!
//! A target matches a violation of a workload when every criterion it gives
//! matches ([`Targets`] documents them for users):
//!
//! - `kinds` and `names` are matched together, against one of the workload's
//!   [identities](Workload::identities) (itself, then its controllers): some
//!   identity must have one of the `kinds` (any kind, when empty) *and* a
//!   name matching one of the `names` globs (any name, when empty).
//! - `selector` (`matchLabels`, and `matchExpressions` with `In`, `NotIn`,
//!   `Exists`, `DoesNotExist`) must select the workload's own labels or, for
//!   a template owner, its pod template's labels (each set on its own).
//! - `containers` globs must match the violation's container. A pod-level
//!   violation (no container) matches only a target without `containers`.
//! - `images` globs must match the image of the violation's container (in
//!   `containers`, `initContainers` or `ephemeralContainers`). A pod-level
//!   violation matches `images` only if *every* container's image does: a
//!   pod-level deviation (a host namespace, a hostPath volume, a pod
//!   security context) affects every container of the pod, so an exception
//!   scoped to some images must not extend to a pod that also runs others.
//! - A target naming neither `names`, `selector` nor `images` matches
//!   nothing (the CRD forbids it; [`HonouredException::new`] rejects it too).
//!
//! Globs are those of [`globset`]. In `names` and `containers` `*` matches
//! any characters; in `images` `*` stops at `/` and `**` crosses it, so
//! `registry.example.com/agent:*` cannot match an image from another path.
//! Images compare as written in the pod spec: `nginx` is not normalised to
//! `docker.io/library/nginx:latest`.
//!
//! Values compare exactly, except capabilities (`capabilities_baseline`,
//! `capabilities_restricted`), which compare case-insensitively with or
//! without a `CAP_` prefix as container runtimes read them, and host ports,
//! which compare as numbers.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use globset::{Candidate, GlobBuilder, GlobMatcher};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::LabelSelector;
use k8s_openapi::jiff::Timestamp;

use super::controls::Violation;
use super::workload::Workload;
use crate::api::{ControlRef, SecurityExceptionSpec, Targets, WorkloadKind};

/// An exception the caller has already verified is in force apart from the
/// clock: approved for its current spec, not denied, revoked or suspended.
#[derive(Clone, Debug)]
pub struct HonouredException {
    /// The exception's namespace: the only namespace it covers.
    pub namespace: String,
    /// The exception's name.
    pub name: String,
    /// The controls it deviates from, as in its spec.
    pub controls: Vec<ControlRef>,
    /// Its targets, with globs compiled.
    pub targets: CompiledTargets,
    /// The instant it stops covering (that instant included).
    pub expires_at: Timestamp,
}

impl HonouredException {
    /// Compiles the exception `namespace/name` from its spec. A target the
    /// CRD would reject (a bad glob, a bare wildcard, an empty selector, no
    /// names, selector or images) is an error naming the field: such an
    /// exception must not be honoured at all.
    pub fn new(
        namespace: impl Into<String>,
        name: impl Into<String>,
        spec: &SecurityExceptionSpec,
    ) -> Result<Self, MatchingError> {
        Ok(HonouredException {
            namespace: namespace.into(),
            name: name.into(),
            controls: spec.controls.clone(),
            targets: CompiledTargets::compile(&spec.targets)?,
            expires_at: spec.expires_at.0,
        })
    }

    /// Whether the exception has expired at `now` (its `expiresAt` instant
    /// included).
    pub fn is_expired(&self, now: Timestamp) -> bool {
        now >= self.expires_at
    }

    /// Whether this exception, on its own, covers `violation` of `workload`
    /// in `namespace` at `now`.
    pub fn covers(
        &self,
        namespace: &str,
        workload: &Workload,
        violation: &Violation,
        now: Timestamp,
    ) -> bool {
        Subject::new(namespace, workload)
            .is_some_and(|subject| self.covers_subject(&subject, violation, now))
    }

    fn covers_subject(&self, subject: &Subject<'_>, violation: &Violation, now: Timestamp) -> bool {
        self.namespace == subject.namespace
            && !self.is_expired(now)
            && self.allows(violation)
            && self
                .targets
                .matches(subject, violation.container.as_deref())
    }

    /// Whether a listed control has the violation's id and, where it narrows
    /// to values, the violation's value.
    fn allows(&self, violation: &Violation) -> bool {
        self.controls.iter().any(|c| {
            c.id == violation.control
                && (c.values.is_empty()
                    || c.values
                        .iter()
                        .any(|listed| same_value(violation.control, listed, &violation.value)))
        })
    }
}

/// Whether an exception's listed value names a violation's value.
fn same_value(control: &str, listed: &str, actual: &str) -> bool {
    match control {
        "capabilities_baseline" | "capabilities_restricted" => {
            /// `CAP_NET_ADMIN`, `cap_net_admin` and `NET_ADMIN` are one capability.
            fn bare(cap: &str) -> &str {
                match cap.get(..4) {
                    Some(prefix) if prefix.eq_ignore_ascii_case("CAP_") => &cap[4..],
                    _ => cap,
                }
            }
            bare(listed).eq_ignore_ascii_case(bare(actual))
        }
        "hostPorts" => matches!(
            (listed.parse::<u32>(), actual.parse::<u32>()),
            (Ok(a), Ok(b)) if a == b
        ),
        _ => listed == actual,
    }
}

/// Why an exception cannot be honoured as written.
#[derive(Debug, thiserror::Error)]
pub enum MatchingError {
    /// A glob does not parse.
    #[error("{field}: {pattern:?} is not a valid glob")]
    Glob {
        /// The field, e.g. `spec.targets.names[1]`.
        field: String,
        /// The pattern as written.
        pattern: String,
        /// Why it does not parse.
        #[source]
        source: globset::Error,
    },
    /// A target the CRD forbids: it would match too much, or nothing sensible.
    #[error("{field}: {reason}")]
    Invalid {
        /// The field, e.g. `spec.targets.selector`.
        field: String,
        /// What is wrong with it.
        reason: &'static str,
    },
}

/// An exception's [`Targets`], compiled for matching. See the
/// [module documentation](self) for what each criterion matches.
#[derive(Clone, Debug)]
pub struct CompiledTargets {
    kinds: Vec<WorkloadKind>,
    names: Vec<Pattern>,
    selector: Option<Selector>,
    containers: Vec<Pattern>,
    images: Vec<Pattern>,
}

impl CompiledTargets {
    /// Compiles `targets`, rejecting what the CRD's schema rejects.
    pub fn compile(targets: &Targets) -> Result<Self, MatchingError> {
        let compiled = CompiledTargets {
            kinds: targets.kinds.clone(),
            names: compile_all(&targets.names, "spec.targets.names", false, true)?,
            selector: targets
                .selector
                .as_ref()
                .map(Selector::compile)
                .transpose()?,
            containers: compile_all(&targets.containers, "spec.targets.containers", false, false)?,
            images: compile_all(&targets.images, "spec.targets.images", true, true)?,
        };
        if compiled.names_nothing() {
            return Err(MatchingError::Invalid {
                field: "spec.targets".to_string(),
                reason: "names no workload: set names, selector or images (an empty target never means every workload)",
            });
        }
        Ok(compiled)
    }

    /// Neither names, selector nor images: a target that would otherwise
    /// match every workload.
    fn names_nothing(&self) -> bool {
        self.names.is_empty() && self.selector.is_none() && self.images.is_empty()
    }

    /// Whether every criterion matches `container` (`None` for a pod-level
    /// violation) of the subject.
    fn matches(&self, subject: &Subject<'_>, container: Option<&str>) -> bool {
        if self.names_nothing() {
            return false;
        }
        let identified = (self.kinds.is_empty() && self.names.is_empty())
            || subject.identities.iter().any(|(kind, name)| {
                (self.kinds.is_empty() || self.kinds.contains(kind))
                    && (self.names.is_empty() || any_match(&self.names, name))
            });
        if !identified {
            return false;
        }
        if let Some(selector) = &self.selector {
            let selected = selector.matches(&subject.workload.labels)
                || subject
                    .template_labels
                    .is_some_and(|labels| selector.matches(labels));
            if !selected {
                return false;
            }
        }
        match container {
            Some(container) => {
                (self.containers.is_empty() || any_match(&self.containers, container))
                    && (self.images.is_empty()
                        || subject
                            .workload
                            .image_of(container)
                            .is_some_and(|image| any_match(&self.images, image)))
            }
            None => {
                self.containers.is_empty()
                    && (self.images.is_empty() || {
                        let mut images = subject.workload.container_images().peekable();
                        images.peek().is_some()
                            && images.all(|(_, image)| {
                                image.is_some_and(|image| any_match(&self.images, image))
                            })
                    })
            }
        }
    }
}

/// One name, container or image pattern, matched exactly as [`globset`]
/// matches it. Compiling a glob builds a regular expression of several
/// kilobytes, which 100k exceptions cannot afford, so the two shapes nearly
/// every target uses skip it: plain names compare as strings, and patterns
/// whose only wildcards are `*` and `?` are matched directly. Everything
/// else (`[...]`, `{a,b}`, `**`, escapes) goes to globset.
#[derive(Clone)]
enum Pattern {
    /// No wildcard at all.
    Literal(Box<str>),
    /// Only `*` and `?` wildcards (and no `**`).
    Wildcard { pattern: Box<str>, path_like: bool },
    /// Anything else.
    Glob(GlobMatcher),
}

impl fmt::Debug for Pattern {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Pattern::Literal(s) | Pattern::Wildcard { pattern: s, .. } => write!(f, "{s:?}"),
            Pattern::Glob(g) => write!(f, "{:?}", g.glob().glob()),
        }
    }
}

impl Pattern {
    /// Compiles `pattern`; `path_like` makes `*` and `?` never match `/`
    /// (globset's `literal_separator`).
    fn compile(pattern: &str, path_like: bool) -> Result<Self, globset::Error> {
        if !pattern.contains(['*', '?', '[', ']', '{', '}', '\\']) {
            return Ok(Pattern::Literal(pattern.into()));
        }
        if !pattern.contains(['[', ']', '{', '}', '\\']) && !pattern.contains("**") {
            return Ok(Pattern::Wildcard {
                pattern: pattern.into(),
                path_like,
            });
        }
        let glob = GlobBuilder::new(pattern)
            .literal_separator(path_like)
            .build()?;
        Ok(Pattern::Glob(glob.compile_matcher()))
    }

    fn is_match(&self, candidate: &str) -> bool {
        match self {
            Pattern::Literal(s) => **s == *candidate,
            Pattern::Wildcard { pattern, path_like } => {
                wildcard_match(pattern.as_bytes(), candidate.as_bytes(), *path_like)
            }
            Pattern::Glob(g) => g.is_match_candidate(&Candidate::from_bytes(candidate)),
        }
    }
}

/// `pattern` (literal bytes, `*` for any bytes, `?` for one byte) against
/// `text`, as globset's byte-oriented regular expressions match it. With
/// `path_like`, no wildcard matches `/`, so pattern and text must have the
/// same `/`-separated segments, each matching on its own.
fn wildcard_match(pattern: &[u8], text: &[u8], path_like: bool) -> bool {
    if !path_like {
        return segment_match(pattern, text);
    }
    let mut patterns = pattern.split(|&b| b == b'/');
    let mut texts = text.split(|&b| b == b'/');
    loop {
        match (patterns.next(), texts.next()) {
            (None, None) => return true,
            (Some(p), Some(t)) if segment_match(p, t) => {}
            _ => return false,
        }
    }
}

/// The classic greedy match with one back-tracking point: on a mismatch,
/// the most recent `*` absorbs one more byte. Linear in practice, and never
/// worse than pattern length times text length.
fn segment_match(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    // After the last `*` seen: where the pattern resumes, and the first text
    // byte the star has not absorbed.
    let mut backtrack: Option<(usize, usize)> = None;
    while t < text.len() {
        match pattern.get(p) {
            Some(b'*') => {
                p += 1;
                backtrack = Some((p, t));
            }
            Some(&c) if c == b'?' || c == text[t] => {
                p += 1;
                t += 1;
            }
            _ => match backtrack {
                Some((resume, absorbed)) => {
                    p = resume;
                    t = absorbed + 1;
                    backtrack = Some((resume, t));
                }
                None => return false,
            },
        }
    }
    pattern[p..].iter().all(|&c| c == b'*')
}

fn any_match(patterns: &[Pattern], candidate: &str) -> bool {
    patterns.iter().any(|p| p.is_match(candidate))
}

/// Compiles the globs of field `field`; `path_like` makes `*` stop at `/`,
/// `named` rejects bare wildcards (which the CRD rejects for names and images).
fn compile_all(
    patterns: &[String],
    field: &str,
    path_like: bool,
    named: bool,
) -> Result<Vec<Pattern>, MatchingError> {
    patterns
        .iter()
        .enumerate()
        .map(|(i, pattern)| {
            let field = || format!("{field}[{i}]");
            if named && pattern.chars().all(|c| c == '*') {
                return Err(MatchingError::Invalid {
                    field: field(),
                    reason: "must not be empty or a bare wildcard",
                });
            }
            Pattern::compile(pattern, path_like).map_err(|source| MatchingError::Glob {
                field: field(),
                pattern: pattern.clone(),
                source,
            })
        })
        .collect()
}

/// A compiled label selector: every requirement must hold.
#[derive(Clone, Debug)]
struct Selector {
    requirements: Vec<(String, Requirement)>,
}

#[derive(Clone, Debug)]
enum Requirement {
    In(Vec<String>),
    NotIn(Vec<String>),
    Exists,
    DoesNotExist,
}

impl Selector {
    /// Compiles a selector, rejecting one that selects everything or that
    /// Kubernetes would reject.
    fn compile(selector: &LabelSelector) -> Result<Self, MatchingError> {
        let invalid = |field: String, reason| MatchingError::Invalid { field, reason };
        let mut requirements: Vec<(String, Requirement)> = selector
            .match_labels
            .iter()
            .flatten()
            .map(|(k, v)| (k.clone(), Requirement::In(vec![v.clone()])))
            .collect();
        for (i, e) in selector.match_expressions.iter().flatten().enumerate() {
            let field = || format!("spec.targets.selector.matchExpressions[{i}]");
            let values = e.values.clone().unwrap_or_default();
            let requirement = match (e.operator.as_str(), values.is_empty()) {
                ("In", false) => Requirement::In(values),
                ("NotIn", false) => Requirement::NotIn(values),
                ("Exists", true) => Requirement::Exists,
                ("DoesNotExist", true) => Requirement::DoesNotExist,
                ("In" | "NotIn", true) => {
                    return Err(invalid(field(), "operators In and NotIn need values"));
                }
                ("Exists" | "DoesNotExist", false) => {
                    return Err(invalid(
                        field(),
                        "operators Exists and DoesNotExist take no values",
                    ));
                }
                _ => {
                    return Err(invalid(
                        field(),
                        "operator must be In, NotIn, Exists or DoesNotExist",
                    ));
                }
            };
            requirements.push((e.key.clone(), requirement));
        }
        if requirements.is_empty() {
            return Err(invalid(
                "spec.targets.selector".to_string(),
                "an empty selector would match every workload",
            ));
        }
        Ok(Selector { requirements })
    }

    fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.requirements
            .iter()
            .all(|(key, requirement)| match (requirement, labels.get(key)) {
                (Requirement::In(values), Some(v)) => values.contains(v),
                (Requirement::In(_), None) => false,
                (Requirement::NotIn(values), Some(v)) => !values.contains(v),
                (Requirement::NotIn(_), None) => true,
                (Requirement::Exists, found) => found.is_some(),
                (Requirement::DoesNotExist, found) => found.is_none(),
            })
    }
}

/// What the targets of every candidate exception are matched against,
/// computed once per workload.
struct Subject<'w> {
    namespace: &'w str,
    workload: &'w Workload,
    identities: Vec<(WorkloadKind, &'w str)>,
    /// The pod template's labels, for template owners (a Pod's labels are
    /// its own).
    template_labels: Option<&'w BTreeMap<String, String>>,
}

impl<'w> Subject<'w> {
    /// `None` when the workload says it lives in another namespace than the
    /// one being decided: nothing covers it then.
    fn new(namespace: &'w str, workload: &'w Workload) -> Option<Self> {
        if workload
            .namespace
            .as_deref()
            .is_some_and(|own| own != namespace)
        {
            return None;
        }
        let template_labels = match workload.kind {
            WorkloadKind::Pod => None,
            _ => workload.template_metadata.labels.as_ref(),
        };
        Some(Subject {
            namespace,
            workload,
            identities: workload.identities(),
            template_labels,
        })
    }
}

/// The decision for one violation.
#[derive(Clone, Debug)]
pub struct Coverage<'v> {
    /// The violation.
    pub violation: &'v Violation,
    /// The exception that covers it on its own, or `None`: the violation
    /// stands.
    pub by: Option<Arc<HonouredException>>,
}

/// The exceptions in force, by namespace, then by control id.
#[derive(Debug, Default)]
pub struct ExceptionIndex {
    namespaces: HashMap<String, NamespaceIndex>,
    len: usize,
}

#[derive(Debug, Default)]
struct NamespaceIndex {
    by_name: HashMap<String, Arc<HonouredException>>,
    /// Each list sorted by exception name, so the covering exception named
    /// in a decision is the same on every replica.
    by_control: HashMap<String, Vec<Arc<HonouredException>>>,
}

impl ExceptionIndex {
    /// An empty index.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds an exception, replacing any of the same namespace and name.
    pub fn upsert(&mut self, exception: HonouredException) {
        self.remove(&exception.namespace, &exception.name);
        let exception = Arc::new(exception);
        let namespace = self
            .namespaces
            .entry(exception.namespace.clone())
            .or_default();
        for (i, control) in exception.controls.iter().enumerate() {
            if exception.controls[..i].iter().any(|c| c.id == control.id) {
                continue;
            }
            let list = namespace.by_control.entry(control.id.clone()).or_default();
            let at = list.partition_point(|e| e.name < exception.name);
            list.insert(at, Arc::clone(&exception));
        }
        namespace.by_name.insert(exception.name.clone(), exception);
        self.len += 1;
    }

    /// Removes the exception `namespace/name`, if present.
    pub fn remove(&mut self, namespace: &str, name: &str) {
        let Some(index) = self.namespaces.get_mut(namespace) else {
            return;
        };
        let Some(old) = index.by_name.remove(name) else {
            return;
        };
        for control in &old.controls {
            if let Some(list) = index.by_control.get_mut(&control.id) {
                list.retain(|e| !Arc::ptr_eq(e, &old));
                if list.is_empty() {
                    index.by_control.remove(&control.id);
                }
            }
        }
        if index.by_name.is_empty() {
            self.namespaces.remove(namespace);
        }
        self.len -= 1;
    }

    /// How many exceptions the index holds.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the index holds no exception.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The exception covering one violation at `now`, if any: same namespace,
    /// unexpired at `now` (`expiresAt` itself is expired), a listed control
    /// with the violation's id whose `values` is empty or contains the
    /// violation's value, and targets that match the workload and the
    /// violation's container (and that container's image). When several
    /// exceptions cover it, the first by name.
    pub fn cover(
        &self,
        namespace: &str,
        workload: &Workload,
        violation: &Violation,
        now: Timestamp,
    ) -> Option<&HonouredException> {
        let subject = Subject::new(namespace, workload)?;
        self.cover_subject(&subject, violation, now)
            .map(|e| e.as_ref())
    }

    /// Every violation decided on its own, in order.
    pub fn decide<'v>(
        &self,
        namespace: &str,
        workload: &Workload,
        violations: &'v [Violation],
        now: Timestamp,
    ) -> Vec<Coverage<'v>> {
        let subject = Subject::new(namespace, workload);
        violations
            .iter()
            .map(|violation| Coverage {
                violation,
                by: subject
                    .as_ref()
                    .and_then(|s| self.cover_subject(s, violation, now))
                    .cloned(),
            })
            .collect()
    }

    fn cover_subject(
        &self,
        subject: &Subject<'_>,
        violation: &Violation,
        now: Timestamp,
    ) -> Option<&Arc<HonouredException>> {
        self.candidates(subject.namespace, violation.control)
            .iter()
            .find(|e| e.covers_subject(subject, violation, now))
    }

    /// The exceptions of `namespace` that list `control`: all a decision
    /// ever looks at.
    fn candidates(&self, namespace: &str, control: &str) -> &[Arc<HonouredException>] {
        self.namespaces
            .get(namespace)
            .and_then(|index| index.by_control.get(control))
            .map_or(&[], Vec::as_slice)
    }
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;
    use k8s_openapi::jiff::SignedDuration;
    use serde_json::{Value, json};

    use super::*;
    use crate::api::{ExceptionType, Risk, RiskLevel};
    use crate::policy::workload::pod_templates;

    fn now() -> Timestamp {
        "2027-01-01T00:00:00Z".parse().unwrap()
    }

    fn days(n: i64) -> SignedDuration {
        SignedDuration::from_hours(24 * n)
    }

    fn control(id: &str, values: &[&str]) -> ControlRef {
        ControlRef {
            id: id.to_string(),
            values: values.iter().map(|v| v.to_string()).collect(),
        }
    }

    fn spec(controls: Vec<ControlRef>, targets: Value) -> SecurityExceptionSpec {
        SecurityExceptionSpec {
            r#type: ExceptionType::Exception,
            controls,
            targets: serde_json::from_value(targets).unwrap(),
            justification: "test".into(),
            requester: None,
            owner: None,
            references: vec![],
            remediation_plan: None,
            risk: Risk {
                rating: RiskLevel::Low,
                likelihood: None,
                impact: None,
                assessment: None,
            },
            compensating_controls: vec![],
            expires_at: Time(now() + days(30)),
            review_interval: None,
        }
    }

    fn exception(
        namespace: &str,
        name: &str,
        controls: Vec<ControlRef>,
        targets: Value,
    ) -> HonouredException {
        HonouredException::new(namespace, name, &spec(controls, targets)).unwrap()
    }

    fn index(exceptions: impl IntoIterator<Item = HonouredException>) -> ExceptionIndex {
        let mut index = ExceptionIndex::new();
        for e in exceptions {
            index.upsert(e);
        }
        index
    }

    /// A Deployment `web` in `shop`, labelled `tier: front` with template
    /// labels `app: web`, running `a` (`registry.example.com/a:1`), `b`
    /// (`registry.example.com/b:1`) and init container `init` (`busybox:1`).
    fn deployment() -> Workload {
        pod_templates(&json!({
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}},
            "spec": {"template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {
                    "initContainers": [{"name": "init", "image": "busybox:1"}],
                    "containers": [
                        {"name": "a", "image": "registry.example.com/a:1"},
                        {"name": "b", "image": "registry.example.com/b:1"}
                    ]
                }
            }}
        }))
        .unwrap()
    }

    /// A Pod of Deployment `web`, created by its ReplicaSet.
    fn deployment_pod() -> Workload {
        pod_templates(&json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": "web-5d8f7c9b-",
                "namespace": "shop",
                "labels": {"app": "web", "pod-template-hash": "5d8f7c9b"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b", "uid": "1", "controller": true}]
            },
            "spec": {"containers": [{"name": "a", "image": "registry.example.com/a:1"}]}
        }))
        .unwrap()
    }

    fn violation(control: &'static str, container: Option<&str>, value: &str) -> Violation {
        Violation {
            control,
            container: container.map(str::to_string),
            field: "spec.template.spec.x".into(),
            value: value.into(),
        }
    }

    fn covered_by<'i>(
        index: &'i ExceptionIndex,
        workload: &Workload,
        v: &Violation,
    ) -> Option<&'i str> {
        index
            .cover("shop", workload, v, now())
            .map(|e| e.name.as_str())
    }

    // --- The published bypasses, one test each. ---

    /// Kyverno CVE-2024-48921: exceptions were accepted from any namespace.
    #[test]
    fn an_exception_never_covers_another_namespace() {
        let idx = index([exception(
            "tenant-a",
            "broad",
            vec![control("privileged", &[])],
            json!({"names": ["web"]}),
        )]);
        let v = violation("privileged", Some("a"), "true");
        let mut w = deployment();
        w.namespace = None;
        assert!(idx.cover("tenant-a", &w, &v, now()).is_some());
        assert!(idx.cover("shop", &w, &v, now()).is_none());
        // A workload claiming the exception's namespace while being admitted
        // in another is not covered either.
        w.namespace = Some("tenant-a".into());
        assert!(idx.cover("shop", &w, &v, now()).is_none());
        assert!(
            idx.decide("shop", &w, std::slice::from_ref(&v), now())[0]
                .by
                .is_none()
        );
        // Nor does the single-exception check bend.
        let e = exception(
            "tenant-a",
            "broad",
            vec![control("privileged", &[])],
            json!({"names": ["web"]}),
        );
        assert!(!e.covers("shop", &deployment(), &v, now()));
    }

    /// Kyverno GHSA-gg4x-fgg2-h9w9: two overlapping exceptions combined into
    /// more than either granted.
    #[test]
    fn two_exceptions_never_combine() {
        let idx = index([
            exception(
                "shop",
                "a-privileged",
                vec![control("privileged", &[])],
                json!({"names": ["web"], "containers": ["a"]}),
            ),
            exception(
                "shop",
                "b-net-admin",
                vec![control("capabilities_baseline", &["NET_ADMIN"])],
                json!({"names": ["web"], "containers": ["b"]}),
            ),
        ]);
        let w = deployment();
        // Each grants what it says.
        assert_eq!(
            covered_by(&idx, &w, &violation("privileged", Some("a"), "true")),
            Some("a-privileged")
        );
        assert_eq!(
            covered_by(
                &idx,
                &w,
                &violation("capabilities_baseline", Some("b"), "NET_ADMIN")
            ),
            Some("b-net-admin")
        );
        // Neither grants privileged in b, nor NET_ADMIN in a.
        assert_eq!(
            covered_by(&idx, &w, &violation("privileged", Some("b"), "true")),
            None
        );
        assert_eq!(
            covered_by(
                &idx,
                &w,
                &violation("capabilities_baseline", Some("a"), "NET_ADMIN")
            ),
            None
        );
    }

    #[test]
    fn values_and_targets_of_two_exceptions_never_combine() {
        // Same control, different values and different workloads.
        let idx = index([
            exception(
                "shop",
                "web-net-admin",
                vec![control("capabilities_baseline", &["NET_ADMIN"])],
                json!({"names": ["web"]}),
            ),
            exception(
                "shop",
                "db-sys-admin",
                vec![control("capabilities_baseline", &["SYS_ADMIN"])],
                json!({"names": ["db"]}),
            ),
        ]);
        let w = deployment();
        let sys_admin = violation("capabilities_baseline", Some("a"), "SYS_ADMIN");
        assert_eq!(covered_by(&idx, &w, &sys_admin), None);
        // Images of one and containers of another do not combine either.
        let idx = index([
            exception(
                "shop",
                "image-a",
                vec![control("privileged", &[])],
                json!({"images": ["registry.example.com/a:*"]}),
            ),
            exception(
                "shop",
                "container-b",
                vec![control("privileged", &[])],
                json!({"names": ["db"], "containers": ["b"]}),
            ),
        ]);
        assert_eq!(
            covered_by(&idx, &w, &violation("privileged", Some("b"), "true")),
            None
        );
    }

    #[test]
    fn expiry_is_decided_at_the_instant_given() {
        let mut e = exception(
            "shop",
            "short",
            vec![control("privileged", &[])],
            json!({"names": ["web"]}),
        );
        let expires = now() + days(1);
        e.expires_at = expires;
        let idx = index([e]);
        let w = deployment();
        let v = violation("privileged", Some("a"), "true");
        let one_second = SignedDuration::from_secs(1);
        assert!(idx.cover("shop", &w, &v, expires - one_second).is_some());
        assert!(idx.cover("shop", &w, &v, expires).is_none());
        assert!(idx.cover("shop", &w, &v, expires + one_second).is_none());
        assert!(
            idx.decide("shop", &w, std::slice::from_ref(&v), expires)[0]
                .by
                .is_none()
        );
    }

    // --- Controls and values. ---

    #[test]
    fn a_violation_needs_its_control_listed() {
        let idx = index([exception(
            "shop",
            "e",
            vec![control("hostNamespaces", &[])],
            json!({"names": ["web"]}),
        )]);
        let w = deployment();
        assert!(covered_by(&idx, &w, &violation("hostNamespaces", None, "hostPID")).is_some());
        assert!(covered_by(&idx, &w, &violation("privileged", Some("a"), "true")).is_none());
    }

    #[test]
    fn values_narrow_a_control() {
        let idx = index([exception(
            "shop",
            "e",
            vec![
                control("hostNamespaces", &["hostNetwork"]),
                control("hostPathVolumes", &["/var/log"]),
            ],
            json!({"names": ["web"]}),
        )]);
        let w = deployment();
        assert!(covered_by(&idx, &w, &violation("hostNamespaces", None, "hostNetwork")).is_some());
        assert!(covered_by(&idx, &w, &violation("hostNamespaces", None, "hostPID")).is_none());
        assert!(covered_by(&idx, &w, &violation("hostPathVolumes", None, "/var/log")).is_some());
        assert!(covered_by(&idx, &w, &violation("hostPathVolumes", None, "/var/log/")).is_none());
        assert!(covered_by(&idx, &w, &violation("hostPathVolumes", None, "/")).is_none());
    }

    #[test]
    fn capabilities_compare_as_the_runtime_reads_them() {
        let idx = index([exception(
            "shop",
            "e",
            vec![control("capabilities_baseline", &["NET_ADMIN"])],
            json!({"names": ["web"]}),
        )]);
        let w = deployment();
        for written in ["NET_ADMIN", "net_admin", "CAP_NET_ADMIN", "cap_Net_Admin"] {
            let v = violation("capabilities_baseline", Some("a"), written);
            assert!(covered_by(&idx, &w, &v).is_some(), "{written}");
        }
        for other in ["NET_RAW", "NET_ADMINX", "CAPNET_ADMIN", "CAP_CAP_NET_ADMIN"] {
            let v = violation("capabilities_baseline", Some("a"), other);
            assert!(covered_by(&idx, &w, &v).is_none(), "{other}");
        }
        assert!(same_value(
            "capabilities_restricted",
            "cap_sys_time",
            "SYS_TIME"
        ));
        // Only capabilities are case-insensitive.
        assert!(!same_value("hostPathVolumes", "/Var", "/var"));
    }

    #[test]
    fn host_ports_compare_as_numbers() {
        assert!(same_value("hostPorts", "8080", "8080"));
        assert!(same_value("hostPorts", "08080", "8080"));
        assert!(!same_value("hostPorts", "8080", "80"));
        assert!(!same_value("hostPorts", "http", "http"));
        assert!(!same_value("hostPorts", "", "0"));
    }

    // --- Targets. ---

    #[test]
    fn kinds_and_names_match_the_same_identity() {
        let pod = deployment_pod();
        let v = violation("privileged", Some("a"), "true");
        let covers = |targets: Value| {
            let idx = index([exception(
                "shop",
                "e",
                vec![control("privileged", &[])],
                targets,
            )]);
            covered_by(&idx, &pod, &v).is_some()
        };
        // The Deployment's Pods are the Deployment's.
        assert!(covers(json!({"kinds": ["Deployment"], "names": ["web"]})));
        assert!(covers(json!({"kinds": ["ReplicaSet"], "names": ["web-*"]})));
        assert!(covers(json!({"names": ["web"]})));
        // But kind and name must belong to the same identity.
        assert!(!covers(json!({"kinds": ["ReplicaSet"], "names": ["web"]})));
        assert!(!covers(
            json!({"kinds": ["Deployment"], "names": ["web-5d8f7c9b"]})
        ));
        assert!(!covers(json!({"kinds": ["StatefulSet"], "names": ["web"]})));
        assert!(!covers(json!({"names": ["db"]})));
        // A kind with a selector: the kind must be one of the identities.
        assert!(covers(
            json!({"kinds": ["Deployment"], "selector": {"matchLabels": {"app": "web"}}})
        ));
        assert!(!covers(
            json!({"kinds": ["Job"], "selector": {"matchLabels": {"app": "web"}}})
        ));
    }

    #[test]
    fn name_globs() {
        let w = deployment();
        let v = violation("privileged", Some("a"), "true");
        for (glob, expected) in [
            ("web", true),
            ("we?", true),
            ("w*", true),
            ("{db,web}", true),
            ("[a-w]eb", true),
            ("web-*", false),
            ("Web", false),
            ("*b*x", false),
        ] {
            let idx = index([exception(
                "shop",
                "e",
                vec![control("privileged", &[])],
                json!({"names": [glob]}),
            )]);
            assert_eq!(covered_by(&idx, &w, &v).is_some(), expected, "{glob}");
        }
    }

    #[test]
    fn patterns_take_the_cheapest_exact_matcher() {
        let shape = |p: &str| match Pattern::compile(p, true).unwrap() {
            Pattern::Literal(_) => "literal",
            Pattern::Wildcard { .. } => "wildcard",
            Pattern::Glob(_) => "glob",
        };
        assert_eq!(shape("web"), "literal");
        assert_eq!(shape("registry.example.com/team/*"), "wildcard");
        assert_eq!(shape("web-?"), "wildcard");
        assert_eq!(shape("registry.example.com/**"), "glob");
        assert_eq!(shape("web-[0-9]"), "glob");
        assert_eq!(shape("{web,db}"), "glob");
        assert_eq!(shape("we\\*"), "glob");
        assert!(wildcard_match(b"a*b*c", b"aXbYbZc", false));
        assert!(!wildcard_match(b"a*b*c", b"aXbYbZ", false));
        assert!(wildcard_match(b"r/*:*", b"r/app:1", true));
        assert!(!wildcard_match(b"r/*:*", b"r/x/app:1", true));
        assert!(wildcard_match(b"r/*:*", b"r/x/app:1", false));
        assert!(!wildcard_match(b"r/?", b"r//", true));
    }

    #[test]
    fn selectors_match_own_or_template_labels() {
        let w = deployment();
        let v = violation("privileged", Some("a"), "true");
        for (selector, expected) in [
            (json!({"matchLabels": {"tier": "front"}}), true),
            (json!({"matchLabels": {"app": "web"}}), true),
            // Each label set on its own, never mixed.
            (
                json!({"matchLabels": {"tier": "front", "app": "web"}}),
                false,
            ),
            (json!({"matchLabels": {"app": "db"}}), false),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["db", "web"]}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
                true,
            ), // own labels lack app
            (
                json!({"matchExpressions": [{"key": "app", "operator": "Exists"}]}),
                true,
            ),
            (
                json!({"matchExpressions": [{"key": "env", "operator": "Exists"}]}),
                false,
            ),
            (
                json!({"matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}),
                true,
            ), // template lacks tier
            (
                json!({"matchExpressions": [
                    {"key": "tier", "operator": "In", "values": ["front"]},
                    {"key": "tier", "operator": "NotIn", "values": ["front"]}
                ]}),
                false,
            ),
        ] {
            let idx = index([exception(
                "shop",
                "e",
                vec![control("privileged", &[])],
                json!({"selector": selector.clone()}),
            )]);
            assert_eq!(covered_by(&idx, &w, &v).is_some(), expected, "{selector}");
        }
        // A Pod is matched on its own labels only.
        let pod = deployment_pod();
        let idx = index([exception(
            "shop",
            "e",
            vec![control("privileged", &[])],
            json!({"selector": {"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}}),
        )]);
        assert!(covered_by(&idx, &pod, &v).is_none());
    }

    #[test]
    fn containers_narrow_to_container_violations() {
        let w = deployment();
        let idx = index([exception(
            "shop",
            "e",
            vec![control("privileged", &[]), control("hostNamespaces", &[])],
            json!({"names": ["web"], "containers": ["a", "in*"]}),
        )]);
        assert!(covered_by(&idx, &w, &violation("privileged", Some("a"), "true")).is_some());
        assert!(covered_by(&idx, &w, &violation("privileged", Some("init"), "true")).is_some());
        assert!(covered_by(&idx, &w, &violation("privileged", Some("b"), "true")).is_none());
        // A pod-level violation is no container's: a container-scoped
        // exception does not cover it.
        assert!(covered_by(&idx, &w, &violation("hostNamespaces", None, "hostPID")).is_none());
    }

    #[test]
    fn images_match_the_violating_container() {
        let w = deployment();
        let idx = index([exception(
            "shop",
            "e",
            vec![control("privileged", &[])],
            json!({"images": ["registry.example.com/a:*"]}),
        )]);
        assert!(covered_by(&idx, &w, &violation("privileged", Some("a"), "true")).is_some());
        assert!(covered_by(&idx, &w, &violation("privileged", Some("b"), "true")).is_none());
        // A container not in the spec (an annotation naming one) has no image.
        assert!(covered_by(&idx, &w, &violation("privileged", Some("ghost"), "true")).is_none());
    }

    #[test]
    fn image_stars_stop_at_slashes() {
        let mut w = deployment();
        w.pod_spec.containers[0].image = Some("registry.example.com/a:1/../../evil/x".into());
        let v = violation("privileged", Some("a"), "true");
        let covers = |glob: &str| {
            let idx = index([exception(
                "shop",
                "e",
                vec![control("privileged", &[])],
                json!({"images": [glob]}),
            )]);
            covered_by(&idx, &w, &v).is_some()
        };
        assert!(!covers("registry.example.com/a:*"));
        assert!(!covers("registry.example.com*"));
        assert!(covers("registry.example.com/**"));
    }

    #[test]
    fn a_pod_level_violation_needs_every_image_to_match() {
        let w = deployment();
        let v = violation("hostNamespaces", None, "hostNetwork");
        let covers = |images: Value| {
            let idx = index([exception(
                "shop",
                "e",
                vec![control("hostNamespaces", &[])],
                json!({"images": images}),
            )]);
            covered_by(&idx, &w, &v).is_some()
        };
        assert!(!covers(json!(["registry.example.com/a:*"])));
        assert!(
            !covers(json!(["registry.example.com/*"])),
            "init container busybox"
        );
        assert!(covers(json!(["registry.example.com/*", "busybox:*"])));
        // A container without an image fails closed.
        let mut no_image = deployment();
        no_image.pod_spec.containers[1].image = None;
        let idx = index([exception(
            "shop",
            "e",
            vec![control("hostNamespaces", &[])],
            json!({"images": ["registry.example.com/*", "busybox:*"]}),
        )]);
        assert!(idx.cover("shop", &no_image, &v, now()).is_none());
        // So does a pod with no container at all.
        let mut empty = deployment();
        empty.pod_spec.containers.clear();
        empty.pod_spec.init_containers = None;
        assert!(idx.cover("shop", &empty, &v, now()).is_none());
    }

    #[test]
    fn targets_that_name_nothing_are_rejected() {
        for targets in [
            json!({}),
            json!({"kinds": ["Pod"]}),
            json!({"kinds": ["Pod"], "containers": ["app"]}),
        ] {
            let err = HonouredException::new(
                "shop",
                "e",
                &spec(vec![control("privileged", &[])], targets.clone()),
            )
            .unwrap_err();
            assert!(
                err.to_string()
                    .starts_with("spec.targets: names no workload"),
                "{targets}: {err}"
            );
        }
    }

    #[test]
    fn targets_the_crd_forbids_are_rejected_naming_the_field() {
        for (targets, expected) in [
            (
                json!({"names": ["web", "*"]}),
                "spec.targets.names[1]: must not be empty or a bare wildcard",
            ),
            (
                json!({"names": [""]}),
                "spec.targets.names[0]: must not be empty",
            ),
            (
                json!({"images": ["**"]}),
                "spec.targets.images[0]: must not be empty or a bare wildcard",
            ),
            (
                json!({"names": ["web["]}),
                "spec.targets.names[0]: \"web[\" is not a valid glob",
            ),
            (
                json!({"names": ["web"], "containers": ["{a"]}),
                "spec.targets.containers[0]: \"{a\" is not a valid glob",
            ),
            (
                json!({"selector": {}}),
                "spec.targets.selector: an empty selector would match every workload",
            ),
            (
                json!({"selector": {"matchLabels": {}}}),
                "spec.targets.selector: an empty selector",
            ),
            (
                json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Gt", "values": ["1"]}]}}),
                "spec.targets.selector.matchExpressions[0]: operator must be In, NotIn, Exists or DoesNotExist",
            ),
            (
                json!({"selector": {"matchExpressions": [{"key": "a", "operator": "NotIn", "values": []}]}}),
                "spec.targets.selector.matchExpressions[0]: operators In and NotIn need values",
            ),
            (
                json!({"selector": {"matchExpressions": [{"key": "a", "operator": "Exists", "values": ["x"]}]}}),
                "spec.targets.selector.matchExpressions[0]: operators Exists and DoesNotExist take no values",
            ),
        ] {
            let err = HonouredException::new(
                "shop",
                "e",
                &spec(vec![control("privileged", &[])], targets.clone()),
            )
            .unwrap_err();
            assert!(err.to_string().starts_with(expected), "{targets}: {err}");
        }
        // A bare wildcard is fine for containers: every container.
        assert!(
            HonouredException::new(
                "shop",
                "e",
                &spec(
                    vec![control("privileged", &[])],
                    json!({"names": ["web"], "containers": ["*"]})
                )
            )
            .is_ok()
        );
    }

    // --- The index. ---

    #[test]
    fn upsert_replaces_and_remove_forgets() {
        let mut idx = ExceptionIndex::new();
        assert!(idx.is_empty());
        let w = deployment();
        let privileged = violation("privileged", Some("a"), "true");
        let host = violation("hostNamespaces", None, "hostPID");
        idx.upsert(exception(
            "shop",
            "e",
            vec![control("privileged", &[])],
            json!({"names": ["web"]}),
        ));
        assert_eq!(idx.len(), 1);
        assert!(covered_by(&idx, &w, &privileged).is_some());
        // The new version replaces the old one entirely.
        idx.upsert(exception(
            "shop",
            "e",
            vec![control("hostNamespaces", &[])],
            json!({"names": ["web"]}),
        ));
        assert_eq!(idx.len(), 1);
        assert!(covered_by(&idx, &w, &privileged).is_none());
        assert!(covered_by(&idx, &w, &host).is_some());
        // Same name in another namespace is another exception.
        idx.upsert(exception(
            "other",
            "e",
            vec![control("privileged", &[])],
            json!({"names": ["web"]}),
        ));
        assert_eq!(idx.len(), 2);
        idx.remove("shop", "e");
        idx.remove("shop", "e");
        idx.remove("nowhere", "e");
        assert_eq!(idx.len(), 1);
        assert!(covered_by(&idx, &w, &host).is_none());
        idx.remove("other", "e");
        assert!(idx.is_empty());
        assert!(
            idx.namespaces.is_empty(),
            "no empty namespace entries linger"
        );
    }

    #[test]
    fn the_first_covering_exception_by_name_is_named() {
        let e = |name: &str| {
            exception(
                "shop",
                name,
                vec![control("privileged", &[])],
                json!({"names": ["web"]}),
            )
        };
        let w = deployment();
        let v = violation("privileged", Some("a"), "true");
        let forwards = index([e("b"), e("a"), e("c")]);
        let backwards = index([e("c"), e("a"), e("b")]);
        assert_eq!(covered_by(&forwards, &w, &v), Some("a"));
        assert_eq!(covered_by(&backwards, &w, &v), Some("a"));
    }

    #[test]
    fn a_decision_looks_only_at_its_namespace_and_control() {
        let mut idx = ExceptionIndex::new();
        for i in 0..2_000 {
            idx.upsert(exception(
                &format!("ns-{}", i % 100),
                &format!("e-{i}"),
                vec![control(
                    if i % 2 == 0 {
                        "privileged"
                    } else {
                        "hostPorts"
                    },
                    &[],
                )],
                json!({"names": [format!("w-{i}")]}),
            ));
        }
        // 2,000 exceptions: ns-8 holds 20, all for privileged; ns-7 none for it.
        assert_eq!(idx.candidates("ns-7", "privileged").len(), 0);
        assert_eq!(idx.candidates("ns-8", "privileged").len(), 20);
        assert_eq!(idx.candidates("ns-8", "runAsUser").len(), 0);
        assert_eq!(idx.candidates("shop", "privileged").len(), 0);
    }

    #[test]
    fn an_exception_listing_a_control_twice_is_indexed_once() {
        let mut idx = index([exception(
            "shop",
            "e",
            vec![
                control("hostPorts", &["80"]),
                control("hostPorts", &["443"]),
            ],
            json!({"names": ["web"]}),
        )]);
        assert_eq!(idx.candidates("shop", "hostPorts").len(), 1);
        assert!(
            covered_by(
                &idx,
                &deployment(),
                &violation("hostPorts", Some("a"), "443")
            )
            .is_some()
        );
        idx.remove("shop", "e");
        assert!(idx.is_empty() && idx.namespaces.is_empty());
    }

    #[test]
    fn decide_answers_every_violation_separately() {
        let idx = index([exception(
            "shop",
            "e",
            vec![control("privileged", &[])],
            json!({"names": ["web"], "containers": ["a"]}),
        )]);
        let violations = [
            violation("privileged", Some("a"), "true"),
            violation("privileged", Some("b"), "true"),
            violation("runAsNonRoot", Some("a"), "unset"),
        ];
        let decided = idx.decide("shop", &deployment(), &violations, now());
        assert_eq!(decided.len(), 3);
        assert_eq!(decided[0].by.as_ref().map(|e| e.name.as_str()), Some("e"));
        assert!(decided[1].by.is_none());
        assert!(decided[2].by.is_none());
        assert!(std::ptr::eq(decided[1].violation, &violations[1]));
    }

    // --- Properties of the composition. ---

    mod properties {
        use proptest::prelude::*;

        use super::*;

        const NAMESPACES: &[&str] = &["a", "b"];
        const CONTROLS: &[&str] = &[
            "privileged",
            "capabilities_baseline",
            "hostPorts",
            "hostNamespaces",
        ];

        fn values_of(control: &str) -> &'static [&'static str] {
            match control {
                "capabilities_baseline" => &["NET_ADMIN", "cap_net_admin", "SYS_ADMIN"],
                "hostPorts" => &["80", "080", "8080"],
                "hostNamespaces" => &["hostPID", "hostNetwork"],
                _ => &["true"],
            }
        }

        /// Up to `max` of `items`: empty half of the time, so that random
        /// exceptions cover often enough to test something.
        fn subset(
            items: &'static [&'static str],
            max: usize,
        ) -> impl Strategy<Value = Vec<String>> {
            proptest::sample::subsequence(items, 0..=max.min(items.len()))
                .prop_map(|v| v.into_iter().map(str::to_string).collect())
        }

        fn control_ref() -> impl Strategy<Value = ControlRef> {
            proptest::sample::select(CONTROLS).prop_flat_map(|id| {
                let values = if id == "privileged" {
                    subset(&[], 0)
                } else {
                    subset(values_of(id), 1)
                };
                values.prop_map(move |values| ControlRef {
                    id: id.to_string(),
                    values,
                })
            })
        }

        /// Each criterion is given only some of the time, so that random
        /// exceptions cover often enough to test something.
        fn targets() -> impl Strategy<Value = Value> {
            use proptest::option::weighted;
            use proptest::sample::select;
            (
                weighted(0.3, select(vec!["Pod", "Deployment", "ReplicaSet"])),
                weighted(0.6, subset(&["web", "web-*", "db", "?b"], 2)),
                weighted(
                    0.3,
                    select(vec![
                        json!({"matchLabels": {"app": "web"}}),
                        json!({"matchExpressions": [{"key": "app", "operator": "NotIn", "values": ["web"]}]}),
                        json!({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}),
                    ]),
                ),
                weighted(0.3, subset(&["app", "side*", "init"], 2)),
                weighted(0.3, subset(&["nginx:*", "busybox:1", "reg/**"], 3)),
            )
                .prop_map(|(kind, names, selector, containers, images)| {
                    let mut t = json!({
                        "kinds": Vec::from_iter(kind),
                        "names": names.unwrap_or_default(),
                        "containers": containers.unwrap_or_default(),
                        "images": images.unwrap_or_default(),
                    });
                    if let Some(selector) = selector {
                        t["selector"] = selector;
                    }
                    t
                })
        }

        prop_compose! {
            fn honoured()(
                namespace in proptest::sample::select(NAMESPACES),
                name in proptest::sample::select(vec!["x", "y", "z", "w"]),
                controls in proptest::collection::vec(control_ref(), 1..4),
                targets in targets(),
                expires_in_hours in -2i64..48,
            ) -> Option<HonouredException> {
                let mut s = spec(controls, targets);
                s.expires_at = Time(now() + SignedDuration::from_hours(expires_in_hours));
                HonouredException::new(namespace, name, &s).ok()
            }
        }

        prop_compose! {
            fn workload()(
                kind in proptest::sample::select(vec!["Pod", "Deployment"]),
                name in proptest::sample::select(vec!["web", "db", "web-1", ""]),
                app in proptest::option::of(proptest::sample::select(vec!["web", "db"])),
                tier in any::<bool>(),
                owned in any::<bool>(),
                namespace in proptest::option::weighted(0.3, proptest::sample::select(NAMESPACES)),
                side_image in proptest::sample::select(vec!["reg/side:2", "nginx:1"]),
            ) -> Workload {
                let mut labels = serde_json::Map::new();
                if let Some(app) = app { labels.insert("app".into(), json!(app)); }
                if tier { labels.insert("tier".into(), json!("front")); }
                labels.insert("pod-template-hash".into(), json!("abc"));
                let pod_spec = json!({
                    "initContainers": [{"name": "init", "image": "busybox:1"}],
                    "containers": [{"name": "app", "image": "nginx:1"}, {"name": "sidecar", "image": side_image}]
                });
                let mut metadata = json!({"name": name, "labels": labels});
                if let Some(ns) = namespace { metadata["namespace"] = json!(ns); }
                if owned {
                    metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
                        "name": "web-abc", "uid": "1", "controller": true}]);
                }
                let spec = if kind == "Pod" {
                    pod_spec
                } else {
                    json!({"template": {"metadata": {"labels": {"app": "web"}}, "spec": pod_spec}})
                };
                let api_version = if kind == "Pod" { "v1" } else { "apps/v1" };
                pod_templates(&json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec})).unwrap()
            }
        }

        fn violations() -> impl Strategy<Value = Vec<Violation>> {
            let one = (
                proptest::sample::select(CONTROLS),
                proptest::sample::select(vec![
                    None,
                    Some("app"),
                    Some("sidecar"),
                    Some("init"),
                    Some("ghost"),
                ]),
                0usize..3,
            )
                .prop_map(|(control, container, i)| {
                    let values = values_of(control);
                    violation(control, container, values[i % values.len()])
                });
            proptest::collection::vec(one, 1..8)
        }

        /// The exceptions an index fed `upserts` then `removals` holds.
        fn survivors(
            upserts: &[HonouredException],
            removals: &[(usize, usize)],
        ) -> Vec<HonouredException> {
            let mut live: Vec<HonouredException> = Vec::new();
            for e in upserts {
                live.retain(|l| !(l.namespace == e.namespace && l.name == e.name));
                live.push(e.clone());
            }
            for (ns, name) in removals {
                let (ns, name) = (
                    NAMESPACES[ns % NAMESPACES.len()],
                    ["x", "y", "z", "w"][name % 4],
                );
                live.retain(|l| !(l.namespace == ns && l.name == name));
            }
            live
        }

        fn decisions(
            idx: &ExceptionIndex,
            ns: &str,
            w: &Workload,
            vs: &[Violation],
            at: Timestamp,
        ) -> Vec<Option<(String, String)>> {
            idx.decide(ns, w, vs, at)
                .into_iter()
                .map(|c| c.by.map(|e| (e.namespace.clone(), e.name.clone())))
                .collect()
        }

        proptest! {
            #![proptest_config(ProptestConfig { cases: 192, ..ProptestConfig::default() })]

            /// A violation is covered exactly when one exception of the set,
            /// alone, covers it, and the exception named is such a one.
            #[test]
            fn decide_agrees_with_brute_force(
                upserts in proptest::collection::vec(honoured(), 0..16),
                removals in proptest::collection::vec((0usize..2, 0usize..4), 0..3),
                w in workload(),
                vs in violations(),
                ns in proptest::sample::select(NAMESPACES),
                at_hours in 0i64..24,
            ) {
                let upserts: Vec<HonouredException> = upserts.into_iter().flatten().collect();
                let mut idx = ExceptionIndex::new();
                for e in &upserts { idx.upsert(e.clone()); }
                for (n, name) in &removals {
                    idx.remove(NAMESPACES[n % NAMESPACES.len()], ["x", "y", "z", "w"][name % 4]);
                }
                let live = survivors(&upserts, &removals);
                prop_assert_eq!(idx.len(), live.len());
                let at = now() + SignedDuration::from_hours(at_hours);
                for c in idx.decide(ns, &w, &vs, at) {
                    let alone: Vec<&HonouredException> =
                        live.iter().filter(|e| e.covers(ns, &w, c.violation, at)).collect();
                    match &c.by {
                        Some(by) => {
                            prop_assert!(by.covers(ns, &w, c.violation, at));
                            prop_assert_eq!(&by.namespace, ns);
                            prop_assert!(alone.iter().any(|e| e.name == by.name));
                        }
                        None => prop_assert!(alone.is_empty(), "{:?} covers {:?}", alone, c.violation),
                    }
                    prop_assert_eq!(
                        idx.cover(ns, &w, c.violation, at).map(|e| &e.name),
                        c.by.as_ref().map(|e| &e.name)
                    );
                }
            }

            /// Patterns matched without globset match exactly as globset
            /// would, with and without `literal_separator`.
            #[test]
            fn patterns_match_as_globset_does(
                pattern in "[ab/*?.]{0,8}",
                fills in proptest::collection::vec("[ab/]{0,3}", 8),
                random in "[ab/.]{0,10}",
                path_like in any::<bool>(),
            ) {
                // A text made from the pattern (so that many cases match),
                // and a random one.
                let mut fills = fills.into_iter();
                let derived: String = pattern
                    .chars()
                    .map(|c| match c {
                        '*' => fills.next().unwrap_or_default(),
                        '?' => fills.next().and_then(|f| f.chars().next()).unwrap_or('b').to_string(),
                        c => c.to_string(),
                    })
                    .collect();
                let Ok(glob) = GlobBuilder::new(&pattern).literal_separator(path_like).build() else {
                    return Ok(());
                };
                let glob = glob.compile_matcher();
                let ours = Pattern::compile(&pattern, path_like).unwrap();
                for text in [&derived, &random] {
                    prop_assert_eq!(
                        ours.is_match(text),
                        glob.is_match_candidate(&Candidate::from_bytes(text.as_str())),
                        "{:?} on {:?}", ours, text
                    );
                }
            }

            /// Exceptions of another namespace, or for controls no violation
            /// names, change no decision.
            #[test]
            fn unrelated_exceptions_change_nothing(
                base in proptest::collection::vec(honoured(), 0..8),
                extra in proptest::collection::vec(honoured(), 1..6),
                other_control in any::<bool>(),
                w in workload(),
                vs in violations(),
                ns in proptest::sample::select(NAMESPACES),
            ) {
                let mut idx = index(base.into_iter().flatten());
                let before = decisions(&idx, ns, &w, &vs, now());
                for (i, e) in extra.into_iter().flatten().enumerate() {
                    let mut e = e;
                    e.name = format!("extra-{i}");
                    if other_control {
                        e.controls = vec![control("sysctls", &[]), control("runAsUser", &[])];
                    } else {
                        e.namespace = "elsewhere".into();
                    }
                    idx.upsert(e);
                }
                prop_assert_eq!(before, decisions(&idx, ns, &w, &vs, now()));
            }
        }
    }
}
