//! `exception-operator check`: evaluate workload manifests offline, against
//! the SecurityExceptions and CompensatingControls found in the same files,
//! with the webhook's own decision ([`workload_admission::decide`]).
//!
//! Input: files and folders (searched recursively for `.yaml`, `.yml` and
//! `.json`, hidden entries skipped; `-` reads standard input), each holding
//! any number of YAML documents (`helm template` output included: empty and
//! comment-only documents are skipped) or JSON values; `kind: List` objects
//! are unpacked. Objects without a namespace are placed in `--namespace`
//! (default `default`).
//!
//! An exception is honoured only when the operator would honour it at that
//! instant: its phase, computed by the operator's lifecycle from its spec,
//! its annotations, its compensating controls and the clock, is `Active`.
//! Offline that means:
//!
//! - approvals count only as SSH signatures by `approval.signers` of the
//!   configuration (`--config`); identity-mode approvals are sealed with a
//!   key only the running operator holds, so they cannot be verified here
//!   (nor can sealed denials and revocations: the output says so);
//! - a named CompensatingControl must be in the input, and each of its
//!   evidence objects is present when an object with that apiVersion, kind
//!   and name is in the input, in the same namespace;
//! - `status` is never read.
//!
//! Namespaces enforce what their `exceptions.dev/enforce|warn|audit`
//! labels say when the Namespace object is in the input, else the
//! configuration's `enforcement.defaultLevel`; `--level` enforces one level
//! everywhere instead. Excluded namespaces are not evaluated.
//!
//! Exit status: 0 when every workload would be admitted, 1 when one would be
//! denied, 2 on bad input (unreadable file, invalid YAML, an invalid
//! SecurityException, CompensatingControl, workload or namespace label).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::Write as _;
use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use k8s_openapi::jiff::Timestamp;
use serde::Serialize;
use serde_json::Value;

use super::Error;
use crate::api::{CompensatingControl, GROUP, Phase, SecurityException, VERSION, annotations};
use crate::config::Config;
use crate::policy::approval::{self, Action, ApprovalMethod, SealKey};
use crate::policy::controls::{self, Level};
use crate::policy::lifecycle::{self, ControlState};
use crate::policy::matching::{ExceptionIndex, HonouredException};
use crate::policy::workload::workload_kind;
use crate::policy::workload_admission::{
    self, NamespacePolicy, Operation, Outcome, WorkloadRequest,
};

/// Arguments of `exception-operator check`.
#[derive(Debug, clap::Args)]
pub(super) struct CheckArgs {
    /// Manifest files or folders (searched recursively for .yaml, .yml and
    /// .json files); `-` reads standard input (e.g. `helm template ... |
    /// exception-operator check -`).
    #[arg(required = true, value_name = "PATH")]
    paths: Vec<PathBuf>,

    /// Enforce this Pod Security Standards level in every namespace, instead
    /// of the namespaces' exceptions.dev/enforce labels and the
    /// configuration's enforcement.defaultLevel.
    #[arg(long, value_enum, value_name = "LEVEL")]
    level: Option<CheckLevel>,

    /// The operator's configuration file: approval rules, the signers whose
    /// SSH signatures count, expiry warnings, enforcement defaults. Without
    /// it the documented defaults apply (no signers, so no exception can be
    /// honoured).
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Output format: a table for people, or a JSON document for machines.
    #[arg(short, long, value_enum, default_value_t = OutputFormat::Table)]
    output: OutputFormat,

    /// The namespace of objects that do not name one (as `kubectl apply -n`).
    #[arg(short, long, value_name = "NS", default_value = "default")]
    namespace: String,

    /// Decide as of this instant (RFC 3339, e.g. 2027-01-31T00:00:00Z)
    /// instead of now: what will be denied once exceptions expire?
    #[arg(long, value_name = "TIME")]
    at: Option<Timestamp>,
}

/// The levels `--level` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum CheckLevel {
    /// The Pod Security Standards baseline level.
    Baseline,
    /// The Pod Security Standards restricted level (includes baseline).
    Restricted,
}

impl From<CheckLevel> for Level {
    fn from(level: CheckLevel) -> Self {
        match level {
            CheckLevel::Baseline => Level::Baseline,
            CheckLevel::Restricted => Level::Restricted,
        }
    }
}

/// The formats `--output` accepts.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
enum OutputFormat {
    /// Aligned columns, one line per violation, and a summary.
    Table,
    /// One JSON document: compliant, workloads (with their violations),
    /// exceptions (with whether they are honoured and why), skipped documents.
    Json,
}

impl CheckArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        let report = self.check()?;
        let text = match self.output {
            OutputFormat::Table => render_table(&report),
            OutputFormat::Json => {
                let mut text = serde_json::to_string_pretty(&report)
                    .map_err(|e| Error::Usage(format!("could not render the JSON report: {e}")))?;
                text.push('\n');
                text
            }
        };
        let mut stdout = std::io::stdout().lock();
        // A closed pipe (`check ... | head`) is not an error of the check.
        let _ = stdout.write_all(text.as_bytes());
        let _ = stdout.flush();
        if self.output == OutputFormat::Table {
            for skipped in &report.skipped {
                eprintln!(
                    "note: {} document {}: skipped, {}",
                    skipped.file, skipped.document, skipped.reason
                );
            }
            if report.workloads.is_empty() {
                eprintln!("note: no workloads found in the input");
            }
        }
        Ok(if report.compliant {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(1)
        })
    }

    /// Reads the input and decides every workload.
    fn check(&self) -> Result<Report, Error> {
        let config = match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        };
        let now = self.at.unwrap_or_else(|| {
            // Whole seconds: the instant is printed, and nothing is finer.
            let now = Timestamp::now();
            Timestamp::from_second(now.as_second()).unwrap_or(now)
        });
        let mut manifests = Vec::new();
        let mut skipped = Vec::new();
        for path in &self.paths {
            read_path(path, &mut manifests, &mut skipped)?;
        }
        let input = Input::from_manifests(&manifests, &self.namespace)?;
        let (index, exceptions) = honour(&input, &config, now)?;
        let level = self.level.map(Level::from);
        let mut policies: HashMap<String, NamespacePolicy> = HashMap::new();
        let mut workloads = Vec::new();
        for manifest in &input.workloads {
            let namespace = &manifest.namespace;
            let policy = match policies.get(namespace) {
                Some(policy) => *policy,
                None => {
                    let policy = match level {
                        Some(_) if config.is_excluded_namespace(namespace) => {
                            NamespacePolicy::excluded()
                        }
                        Some(level) => NamespacePolicy::enforcing(level),
                        None => {
                            let labels = input.namespace_labels.get(namespace);
                            workload_admission::namespace_policy(
                                namespace,
                                labels.unwrap_or(&BTreeMap::new()),
                                &config,
                            )
                            .map_err(|e| {
                                Error::Usage(match input.namespace_files.get(namespace) {
                                    Some(file) => format!("{file}: {e}"),
                                    None => e,
                                })
                            })?
                        }
                    };
                    policies.insert(namespace.clone(), policy);
                    policy
                }
            };
            workloads.push(decide_workload(manifest, &policy, &index, &config, now)?);
        }
        Ok(Report {
            compliant: workloads.iter().all(|w| w.allowed),
            at: now.to_string(),
            level: level.map(Level::as_str),
            workloads,
            exceptions,
            skipped,
        })
    }
}

// ---------------------------------------------------------------------------
// The report

/// What `check --output json` prints (field order is stable).
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct Report {
    /// Whether every workload would be admitted (exit status 0).
    compliant: bool,
    /// The instant decided at.
    at: String,
    /// The level `--level` enforced everywhere, if given.
    level: Option<&'static str>,
    /// Every workload, in input order.
    workloads: Vec<WorkloadReport>,
    /// Every SecurityException, in input order, and whether it is honoured.
    exceptions: Vec<ExceptionReport>,
    /// Documents that are not Kubernetes objects.
    skipped: Vec<Skipped>,
}

/// One workload's decision.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WorkloadReport {
    file: String,
    document: usize,
    kind: String,
    namespace: String,
    name: String,
    /// Whether the webhook would admit it.
    allowed: bool,
    /// Whether it was evaluated (not in an excluded namespace).
    evaluated: bool,
    /// The levels that applied.
    levels: Levels,
    /// Every violation found, covered or not.
    violations: Vec<ViolationReport>,
    /// The warnings kubectl would print.
    warnings: Vec<String>,
    /// The denial message, when denied.
    message: Option<String>,
}

/// The levels of one namespace.
#[derive(Debug, Serialize)]
struct Levels {
    enforce: Level,
    warn: Level,
    audit: Level,
}

/// One violation and what covers it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ViolationReport {
    control: &'static str,
    container: Option<String>,
    field: String,
    value: String,
    /// Counts at the enforce level (uncovered: denied).
    enforce: bool,
    /// Counts at the warn level (uncovered: warning).
    warn: bool,
    /// Counts at the audit level (uncovered: audit annotation).
    audit: bool,
    /// The exception covering it, if any.
    covered_by: Option<String>,
}

/// One SecurityException and whether the operator would honour it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct ExceptionReport {
    name: String,
    namespace: String,
    honoured: bool,
    why: String,
    phase: Phase,
    file: String,
    document: usize,
    controls: Vec<String>,
    expires_at: String,
    approvers: Vec<String>,
}

/// A document that is not a Kubernetes object.
#[derive(Debug, Serialize)]
struct Skipped {
    file: String,
    document: usize,
    reason: String,
}

// ---------------------------------------------------------------------------
// Reading the input

/// One Kubernetes object from the input, and where it was found.
#[derive(Debug)]
struct Manifest {
    /// The file, as given or found (`-` for standard input).
    file: String,
    /// The 1-based document (or JSON value) within the file.
    document: usize,
    /// The object.
    object: Value,
}

/// Reads one path argument: a file, a folder (recursively) or `-`.
fn read_path(
    path: &Path,
    manifests: &mut Vec<Manifest>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), Error> {
    if path == Path::new("-") {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .map_err(|e| Error::Usage(format!("could not read standard input: {e}")))?;
        return parse_file("-", &text, false, manifests, skipped);
    }
    let metadata = std::fs::metadata(path)
        .map_err(|e| Error::Usage(format!("could not read {}: {e}", path.display())))?;
    if metadata.is_dir() {
        let mut files = Vec::new();
        manifest_files(path, &mut files)?;
        for file in files {
            read_file(&file, manifests, skipped)?;
        }
        Ok(())
    } else {
        read_file(path, manifests, skipped)
    }
}

/// The manifest files under `dir`, recursively, sorted by path; hidden
/// entries (`.git`) are skipped, symbolic links to files followed.
fn manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> Result<(), Error> {
    let unreadable =
        |e: std::io::Error| Error::Usage(format!("could not read {}: {e}", dir.display()));
    let mut entries: Vec<_> = std::fs::read_dir(dir)
        .map_err(unreadable)?
        .collect::<Result<_, _>>()
        .map_err(unreadable)?;
    entries.sort_by_key(|entry| entry.file_name());
    for entry in entries {
        let path = entry.path();
        if entry.file_name().to_string_lossy().starts_with('.') {
            continue;
        }
        let file_type = entry.file_type().map_err(unreadable)?;
        if file_type.is_dir() {
            manifest_files(&path, out)?;
        } else if is_manifest(&path) && (file_type.is_file() || path.is_file()) {
            out.push(path);
        }
    }
    Ok(())
}

fn is_manifest(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e.to_ascii_lowercase().as_str(), "yaml" | "yml" | "json"))
}

fn read_file(
    path: &Path,
    manifests: &mut Vec<Manifest>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("could not read {}: {e}", path.display())))?;
    let json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    parse_file(&path.display().to_string(), &text, json, manifests, skipped)
}

/// Parses one file's documents: YAML (multi-document; empty and
/// comment-only documents skipped) or, for `.json` files, one or more JSON
/// values. `kind: List` objects are unpacked into their items.
fn parse_file(
    file: &str,
    text: &str,
    json: bool,
    manifests: &mut Vec<Manifest>,
    skipped: &mut Vec<Skipped>,
) -> Result<(), Error> {
    let documents: Vec<Value> = if json {
        serde_json::Deserializer::from_str(text)
            .into_iter::<Value>()
            .collect::<Result<_, _>>()
            .map_err(|e| Error::Usage(format!("{file} is not valid JSON: {e}")))?
    } else {
        serde_saphyr::from_multiple(text)
            .map_err(|e| Error::Usage(format!("{file} is not valid YAML: {e}")))?
    };
    for (index, document) in documents.into_iter().enumerate() {
        let document_number = index + 1;
        unpack(file, document_number, document, manifests, skipped);
    }
    Ok(())
}

/// Adds one document: an object, the items of a List, or nothing.
fn unpack(
    file: &str,
    document: usize,
    value: Value,
    manifests: &mut Vec<Manifest>,
    skipped: &mut Vec<Skipped>,
) {
    let skip = |reason: &str, skipped: &mut Vec<Skipped>| {
        skipped.push(Skipped {
            file: file.to_string(),
            document,
            reason: reason.to_string(),
        })
    };
    match &value {
        Value::Null => {}
        Value::Object(fields) => {
            let kind = fields.get("kind").and_then(Value::as_str).unwrap_or("");
            let api_version = fields
                .get("apiVersion")
                .and_then(Value::as_str)
                .unwrap_or("");
            if kind.is_empty() || api_version.is_empty() {
                skip("not a Kubernetes object (no apiVersion and kind)", skipped);
            } else if kind.ends_with("List")
                && let Some(Value::Array(items)) = fields.get("items")
            {
                for item in items.clone() {
                    unpack(file, document, item, manifests, skipped);
                }
            } else {
                manifests.push(Manifest {
                    file: file.to_string(),
                    document,
                    object: value,
                });
            }
        }
        _ => skip("not a Kubernetes object (not a mapping)", skipped),
    }
}

/// An object placed in its namespace.
#[derive(Debug)]
struct Placed<'m> {
    manifest: &'m Manifest,
    namespace: String,
}

/// The input, sorted into what `check` needs.
struct Input<'m> {
    exceptions: Vec<(Placed<'m>, SecurityException)>,
    controls: BTreeMap<(String, String), CompensatingControl>,
    workloads: Vec<PlacedWorkload<'m>>,
    /// `(namespace, apiVersion, kind, name)` of every namespaced object.
    objects: BTreeSet<(String, String, String, String)>,
    namespace_labels: HashMap<String, BTreeMap<String, String>>,
    namespace_files: HashMap<String, String>,
}

/// A workload, with its namespace resolved.
struct PlacedWorkload<'m> {
    manifest: &'m Manifest,
    namespace: String,
    kind: String,
    name: String,
}

impl<'m> Input<'m> {
    fn from_manifests(manifests: &'m [Manifest], default_namespace: &str) -> Result<Self, Error> {
        let mut input = Input {
            exceptions: Vec::new(),
            controls: BTreeMap::new(),
            workloads: Vec::new(),
            objects: BTreeSet::new(),
            namespace_labels: HashMap::new(),
            namespace_files: HashMap::new(),
        };
        let mut exception_names: HashMap<(String, String), String> = HashMap::new();
        for manifest in manifests {
            let object = &manifest.object;
            let where_ = format!("{} document {}", manifest.file, manifest.document);
            let api_version = object["apiVersion"].as_str().unwrap_or_default();
            let kind = object["kind"].as_str().unwrap_or_default();
            let (group, version) = api_version.split_once('/').unwrap_or(("", api_version));
            let name = object["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let namespace = object["metadata"]["namespace"]
                .as_str()
                .filter(|n| !n.is_empty())
                .unwrap_or(default_namespace)
                .to_string();
            input.objects.insert((
                namespace.clone(),
                api_version.to_string(),
                kind.to_string(),
                name.clone(),
            ));

            if group == GROUP && matches!(kind, "SecurityException" | "CompensatingControl") {
                if version != VERSION {
                    return Err(Error::Usage(format!(
                        "{where_}: {kind} {name}: apiVersion {api_version} is not served; use {GROUP}/{VERSION}"
                    )));
                }
                if name.is_empty() {
                    return Err(Error::Usage(format!(
                        "{where_}: {kind} has no metadata.name (generateName is not supported)"
                    )));
                }
                // Status is never trusted, so never read: a stale or
                // hand-written status cannot make the object invalid either.
                let mut object = object.clone();
                if let Some(fields) = object.as_object_mut() {
                    fields.remove("status");
                    if let Some(Value::Object(metadata)) = fields.get_mut("metadata") {
                        metadata.insert("namespace".into(), Value::String(namespace.clone()));
                    }
                }
                let key = (namespace.clone(), name.clone());
                if kind == "SecurityException" {
                    let exception: SecurityException =
                        serde_json::from_value(object).map_err(|e| {
                            Error::Usage(format!("{where_}: not a valid SecurityException: {e}"))
                        })?;
                    validate_exception(&exception, &namespace, &name)
                        .map_err(|e| Error::Usage(format!("{where_}: {e}")))?;
                    if let Some(first) = exception_names.insert(key, where_.clone()) {
                        return Err(Error::Usage(format!(
                            "{where_}: SecurityException {namespace}/{name} is also defined in {first}; which one applies would depend on the order of apply"
                        )));
                    }
                    input.exceptions.push((
                        Placed {
                            manifest,
                            namespace,
                        },
                        exception,
                    ));
                } else {
                    let control: CompensatingControl =
                        serde_json::from_value(object).map_err(|e| {
                            Error::Usage(format!("{where_}: not a valid CompensatingControl: {e}"))
                        })?;
                    if input.controls.insert(key, control).is_some() {
                        return Err(Error::Usage(format!(
                            "{where_}: CompensatingControl {namespace}/{name} is defined twice"
                        )));
                    }
                }
            } else if group.is_empty() && kind == "Namespace" {
                let labels = object["metadata"]["labels"]
                    .as_object()
                    .map(|labels| {
                        labels
                            .iter()
                            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
                            .collect()
                    })
                    .unwrap_or_default();
                input.namespace_labels.insert(name.clone(), labels);
                input.namespace_files.insert(name, where_);
            } else if workload_kind(group, kind).is_some() {
                let name = if name.is_empty() {
                    object["metadata"]["generateName"]
                        .as_str()
                        .unwrap_or_default()
                        .to_string()
                } else {
                    name
                };
                input.workloads.push(PlacedWorkload {
                    manifest,
                    namespace,
                    kind: kind.to_string(),
                    name,
                });
            }
        }
        Ok(input)
    }
}

/// What the cluster would reject in an exception that deserializes: targets
/// the CRD forbids, control ids outside the catalog.
fn validate_exception(
    exception: &SecurityException,
    namespace: &str,
    name: &str,
) -> Result<(), String> {
    HonouredException::new(namespace, name, &exception.spec)
        .map_err(|e| format!("SecurityException {namespace}/{name}: {e}"))?;
    for (index, control) in exception.spec.controls.iter().enumerate() {
        if controls::lookup(&control.id).is_none() && !controls::is_vulnerability_id(&control.id) {
            return Err(format!(
                "SecurityException {namespace}/{name}: spec.controls[{index}].id: unknown control {:?}; use a control from the catalog ({}) or a CVE/GHSA id",
                control.id,
                controls::CATALOG
                    .iter()
                    .map(|c| c.id)
                    .collect::<Vec<_>>()
                    .join(", ")
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Deciding

/// Evaluates every exception's lifecycle as the operator would, and indexes
/// the Active ones.
fn honour(
    input: &Input<'_>,
    config: &Config,
    now: Timestamp,
) -> Result<(ExceptionIndex, Vec<ExceptionReport>), Error> {
    // Identity-mode seals need the operator's key, which stays in the
    // cluster; a random key makes sure that no seal verifies here.
    let key = SealKey::generate()
        .map_err(|e| Error::Usage(format!("could not generate a random key: {e}")))?;
    let mut index = ExceptionIndex::new();
    let mut reports = Vec::new();
    for (placed, exception) in &input.exceptions {
        let namespace = &placed.namespace;
        let name = exception.metadata.name.clone().unwrap_or_default();
        let verdict = approval::verify(exception, &key, config);
        let approval_state = lifecycle::approval_state(&verdict);
        let controls = control_states(exception, namespace, input, now);
        let evaluation = lifecycle::evaluate(exception, &approval_state, &controls, config, now);
        let honoured = evaluation.phase == Phase::Active;
        if honoured {
            let compiled =
                HonouredException::new(namespace.as_str(), name.as_str(), &exception.spec)
                    .map_err(|e| {
                        Error::Usage(format!("SecurityException {namespace}/{name}: {e}"))
                    })?;
            index.upsert(compiled);
        }
        reports.push(ExceptionReport {
            why: why(exception, &verdict, &evaluation, config, honoured),
            name,
            namespace: namespace.clone(),
            honoured,
            phase: evaluation.phase,
            file: placed.manifest.file.clone(),
            document: placed.manifest.document,
            controls: exception
                .spec
                .controls
                .iter()
                .map(|c| c.id.clone())
                .collect(),
            expires_at: exception.spec.expires_at.0.to_string(),
            approvers: approval_state.approvers.clone(),
        });
    }
    Ok((index, reports))
}

/// The state of each compensating control the exception names, from the
/// input alone.
fn control_states(
    exception: &SecurityException,
    namespace: &str,
    input: &Input<'_>,
    now: Timestamp,
) -> BTreeMap<String, ControlState> {
    exception
        .spec
        .compensating_controls
        .iter()
        .map(|name| {
            let state = match input.controls.get(&(namespace.to_string(), name.clone())) {
                None => ControlState::Missing,
                Some(control) => {
                    let missing: Vec<String> = control
                        .spec
                        .evidence
                        .iter()
                        .filter(|e| {
                            !input.objects.contains(&(
                                namespace.to_string(),
                                e.api_version.clone(),
                                e.kind.clone(),
                                e.name.clone(),
                            ))
                        })
                        .map(|e| format!("{} {} (not in the input)", e.kind, e.name))
                        .collect();
                    lifecycle::evaluate_control(control, &missing, now).state()
                }
            };
            (name.clone(), state)
        })
        .collect()
}

/// Why an exception is, or is not, honoured, including what cannot be
/// verified offline.
fn why(
    exception: &SecurityException,
    verdict: &approval::Verdict,
    evaluation: &lifecycle::Evaluation,
    config: &Config,
    honoured: bool,
) -> String {
    let ready = evaluation
        .conditions
        .first()
        .map(|c| c.message.clone())
        .unwrap_or_default();
    let records = |action: Action| approval::stored_records(exception, action).unwrap_or_default();
    let mut parts = Vec::new();
    if honoured {
        parts.push(format!(
            "{:?}: approved by {}; {ready}",
            evaluation.phase,
            verdict
                .approvals
                .iter()
                .map(|a| format!("{} ({})", a.approver, a.method.as_str().to_lowercase()))
                .collect::<Vec<_>>()
                .join(", ")
        ));
        let sealed_decisions = records(Action::Deny).len() + records(Action::Revoke).len();
        if sealed_decisions > 0 {
            parts.push(
                "it carries sealed denial or revocation records, which cannot be verified offline: the cluster may not honour it"
                    .to_string(),
            );
        }
    } else {
        parts.push(format!("{:?}: {ready}", evaluation.phase));
        let signed = verdict
            .approvals
            .iter()
            .any(|a| a.method == ApprovalMethod::Signature);
        if !records(Action::Approve).is_empty() && !signed {
            parts.push(
                "its approvals are identity-mode records sealed by the operator's webhook, which cannot be verified offline; for check to honour it, approve it with an SSH signature (exception-operator sign) by a signer in approval.signers"
                    .to_string(),
            );
        }
        parts.extend(
            verdict
                .ignored
                .iter()
                .filter(|reason| {
                    reason.starts_with("signature by ")
                        || reason.contains(annotations::APPROVAL_SIGNATURES)
                })
                .cloned(),
        );
        if config.approval.signers.is_empty() {
            parts.push(
                "no approval.signers are configured, so no signature can count (pass --config with the operator's configuration)"
                    .to_string(),
            );
        }
    }
    parts.join("; ")
}

/// The webhook's decision on one workload, as a report.
fn decide_workload(
    workload: &PlacedWorkload<'_>,
    policy: &NamespacePolicy,
    index: &ExceptionIndex,
    config: &Config,
    now: Timestamp,
) -> Result<WorkloadReport, Error> {
    let manifest = workload.manifest;
    let request = WorkloadRequest {
        namespace: workload.namespace.clone(),
        object: (&manifest.object).into(),
        operation: Operation::Create,
        subresource: None,
    };
    let decision = workload_admission::decide(&request, policy, index, config, now);
    if let Outcome::Malformed(error) = &decision.outcome {
        return Err(Error::Usage(format!(
            "{} document {}: {} {}/{} is not a valid workload: {error}",
            manifest.file, manifest.document, workload.kind, workload.namespace, workload.name
        )));
    }
    Ok(WorkloadReport {
        file: manifest.file.clone(),
        document: manifest.document,
        kind: workload.kind.clone(),
        namespace: workload.namespace.clone(),
        name: workload.name.clone(),
        allowed: decision.allowed,
        evaluated: matches!(decision.outcome, Outcome::Evaluated(_)),
        levels: Levels {
            enforce: policy.enforce,
            warn: policy.warn,
            audit: policy.audit,
        },
        violations: decision
            .findings
            .into_iter()
            .map(|f| ViolationReport {
                control: f.violation.control,
                container: f.violation.container,
                field: f.violation.field,
                value: f.violation.value,
                enforce: f.enforce,
                warn: f.warn,
                audit: f.audit,
                covered_by: f.covered_by,
            })
            .collect(),
        warnings: decision.warnings,
        message: decision.message,
    })
}

// ---------------------------------------------------------------------------
// The table

/// Aligned columns: violations, then exceptions, then one summary line.
fn render_table(report: &Report) -> String {
    let mut out = String::new();
    let mut rows = vec![
        [
            "FILE",
            "WORKLOAD",
            "CONTROL",
            "CONTAINER",
            "FIELD",
            "VALUE",
            "RESULT",
        ]
        .map(String::from)
        .to_vec(),
    ];
    for w in &report.workloads {
        let workload = format!("{}/{}/{}", w.namespace, w.kind, w.name);
        if !w.evaluated {
            rows.push(vec![
                w.file.clone(),
                workload.clone(),
                "-".into(),
                "-".into(),
                "-".into(),
                "-".into(),
                format!("NOT EVALUATED (namespace {} is excluded)", w.namespace),
            ]);
        }
        for v in &w.violations {
            let result = match (&v.covered_by, v.enforce, v.warn) {
                (Some(by), _, _) => format!("COVERED BY {by}"),
                (None, true, _) => "UNCOVERED".to_string(),
                (None, false, true) => "UNCOVERED (warn only)".to_string(),
                (None, false, false) => "UNCOVERED (audit only)".to_string(),
            };
            rows.push(vec![
                w.file.clone(),
                workload.clone(),
                v.control.to_string(),
                v.container.clone().unwrap_or_else(|| "-".into()),
                v.field.clone(),
                v.value.clone(),
                result,
            ]);
        }
    }
    if rows.len() > 1 {
        write_rows(&mut out, &rows);
    }

    if !report.exceptions.is_empty() {
        if !out.is_empty() {
            out.push('\n');
        }
        let mut rows = vec![["EXCEPTION", "HONOURED", "WHY"].map(String::from).to_vec()];
        for e in &report.exceptions {
            rows.push(vec![
                format!("{}/{}", e.namespace, e.name),
                if e.honoured { "yes" } else { "no" }.to_string(),
                e.why.clone(),
            ]);
        }
        write_rows(&mut out, &rows);
    }

    if !out.is_empty() {
        out.push('\n');
    }
    let violations: usize = report.workloads.iter().map(|w| w.violations.len()).sum();
    let covered: usize = report
        .workloads
        .iter()
        .flat_map(|w| &w.violations)
        .filter(|v| v.covered_by.is_some())
        .count();
    let denied = report.workloads.iter().filter(|w| !w.allowed).count();
    let honoured = report.exceptions.iter().filter(|e| e.honoured).count();
    let level = match report.level {
        Some(level) => format!("level {level}"),
        None => "namespace levels".to_string(),
    };
    let _ = writeln!(
        out,
        "{} workload(s), {violations} violation(s): {covered} covered, {} uncovered; {honoured} of {} exception(s) honoured; {level}, at {}: {}",
        report.workloads.len(),
        violations - covered,
        report.exceptions.len(),
        report.at,
        if report.compliant {
            "COMPLIANT".to_string()
        } else {
            format!("NOT COMPLIANT ({denied} workload(s) would be denied)")
        }
    );
    out
}

/// Writes rows as columns separated by two spaces; the last column is not
/// padded.
fn write_rows(out: &mut String, rows: &[Vec<String>]) {
    let columns = rows.first().map_or(0, Vec::len);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().map(|r| r[c].chars().count()).max().unwrap_or(0))
        .collect();
    for row in rows {
        let mut line = String::new();
        for (c, cell) in row.iter().enumerate() {
            if c + 1 == columns {
                line.push_str(cell);
            } else {
                let _ = write!(line, "{cell:<width$}  ", width = widths[c]);
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str, json: bool) -> (Vec<Manifest>, Vec<Skipped>) {
        let (mut manifests, mut skipped) = (Vec::new(), Vec::new());
        parse_file("input.yaml", text, json, &mut manifests, &mut skipped).unwrap();
        (manifests, skipped)
    }

    fn kinds(manifests: &[Manifest]) -> Vec<(usize, &str)> {
        manifests
            .iter()
            .map(|m| (m.document, m.object["kind"].as_str().unwrap()))
            .collect()
    }

    #[test]
    fn multi_document_yaml_with_empty_and_comment_only_documents() {
        // As `helm template` renders a chart: a leading separator, comment-only
        // documents for templates that rendered nothing, empty documents.
        let text = "---\n# Source: chart/templates/empty.yaml\n---\n# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata: {name: a}\nspec: {containers: []}\n---\n---\n\n---\napiVersion: v1\nkind: ConfigMap\nmetadata: {name: b}\n...\n";
        let (manifests, skipped) = parse(text, false);
        let kinds: Vec<&str> = manifests
            .iter()
            .map(|m| m.object["kind"].as_str().unwrap())
            .collect();
        assert_eq!(kinds, ["Pod", "ConfigMap"]);
        assert!(skipped.is_empty(), "{skipped:?}");
        assert!(manifests[0].document < manifests[1].document);
    }

    #[test]
    fn lists_are_unpacked() {
        let text = r#"
apiVersion: v1
kind: List
items:
- apiVersion: apps/v1
  kind: Deployment
  metadata: {name: a}
- apiVersion: v1
  kind: List
  items:
  - {apiVersion: v1, kind: Pod, metadata: {name: b}}
---
apiVersion: apps/v1
kind: DeploymentList
items:
- {apiVersion: apps/v1, kind: Deployment, metadata: {name: c}}
"#;
        let (manifests, _) = parse(text, false);
        assert_eq!(
            kinds(&manifests),
            [(1, "Deployment"), (1, "Pod"), (2, "Deployment")]
        );
    }

    #[test]
    fn json_files_hold_one_or_more_values() {
        let text = "{\"apiVersion\": \"v1\", \"kind\": \"Pod\", \"metadata\": {\"name\": \"a\"}}\n\t{\"apiVersion\": \"v1\", \"kind\": \"List\", \"items\": [{\"apiVersion\": \"v1\", \"kind\": \"Service\", \"metadata\": {\"name\": \"s\"}}]}";
        let (manifests, _) = parse(text, true);
        assert_eq!(kinds(&manifests), [(1, "Pod"), (2, "Service")]);
        // JSON read as YAML works too (standard input).
        let (manifests, _) = parse("{\"apiVersion\": \"v1\", \"kind\": \"Pod\"}", false);
        assert_eq!(kinds(&manifests), [(1, "Pod")]);
    }

    #[test]
    fn documents_that_are_not_objects_are_skipped_with_a_reason() {
        let (manifests, skipped) = parse("replicaCount: 3\n---\njust text\n---\n- a\n", false);
        assert!(manifests.is_empty());
        assert_eq!(
            skipped
                .iter()
                .map(|s| (s.document, s.reason.as_str()))
                .collect::<Vec<_>>(),
            [
                (1, "not a Kubernetes object (no apiVersion and kind)"),
                (2, "not a Kubernetes object (not a mapping)"),
                (3, "not a Kubernetes object (not a mapping)"),
            ]
        );
    }

    #[test]
    fn invalid_yaml_and_json_are_errors_naming_the_file() {
        let (mut manifests, mut skipped) = (Vec::new(), Vec::new());
        let error = parse_file(
            "bad.yaml",
            "a: [1, 2\nb: {",
            false,
            &mut manifests,
            &mut skipped,
        )
        .unwrap_err()
        .to_string();
        assert!(error.starts_with("bad.yaml is not valid YAML: "), "{error}");
        let error = parse_file("bad.json", "{\"a\": ", true, &mut manifests, &mut skipped)
            .unwrap_err()
            .to_string();
        assert!(error.starts_with("bad.json is not valid JSON: "), "{error}");
    }

    // -- run() on folders ---------------------------------------------------

    /// A scratch folder, removed on drop.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir = std::env::temp_dir().join(format!(
                "exop-check-{}-{name}-{}",
                std::process::id(),
                Timestamp::now().as_nanosecond()
            ));
            std::fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn write(&self, name: &str, text: &str) -> PathBuf {
            let path = self.0.join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(&path, text).unwrap();
            path
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn at() -> Timestamp {
        "2027-01-01T00:00:00Z".parse().unwrap()
    }

    fn args(paths: Vec<PathBuf>) -> CheckArgs {
        CheckArgs {
            paths,
            level: None,
            config: None,
            output: OutputFormat::Table,
            namespace: "default".into(),
            at: Some(at()),
        }
    }

    const PRIVILEGED: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata:
  name: agent
  namespace: shop
spec:
  selector: {matchLabels: {app: agent}}
  template:
    metadata: {labels: {app: agent}}
    spec:
      containers:
      - name: agent
        image: registry.example.com/agent:4.1
        securityContext: {privileged: true}
"#;

    const COMPLIANT: &str = r#"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web}
spec:
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers:
      - {name: web, image: "nginx:1.27"}
"#;

    const EXCEPTION: &str = r#"
apiVersion: exceptions.dev/v1alpha1
kind: SecurityException
metadata:
  name: agent-privileged
  namespace: shop
spec:
  controls: [{id: privileged}]
  targets: {kinds: [Deployment], names: [agent], containers: [agent]}
  justification: The vendor agent needs it until v5.
  requester: jane@example.com
  risk: {rating: Low}
  expiresAt: "2027-03-01T00:00:00Z"
"#;

    fn private_key() -> ssh_key::PrivateKey {
        ssh_key::PrivateKey::from(ssh_key::private::Ed25519Keypair::from_seed(&[7; 32]))
    }

    fn signer_config(scratch: &Scratch) -> PathBuf {
        let public = private_key().public_key().to_openssh().unwrap();
        scratch.write(
            "config/config.yaml",
            &format!(
                "approval:\n  signers:\n    - name: carol@example.com\n      key: \"{public}\"\n      groups: [security-approvers]\n"
            ),
        )
    }

    /// The exception manifest with carol's signature over its current spec.
    fn signed_exception(text: &str) -> String {
        let exception: SecurityException = serde_saphyr::from_str(text).unwrap();
        let hash = approval::spec_hash(&exception.spec);
        let signature =
            approval::sign_approval(&private_key(), "shop", "agent-privileged", &hash).unwrap();
        let entries = serde_json::to_string(&[approval::SignatureEntry {
            signer: "carol@example.com".into(),
            signature,
        }])
        .unwrap();
        let mut value: Value = serde_saphyr::from_str(text).unwrap();
        value["metadata"]["annotations"] =
            serde_json::json!({annotations::APPROVAL_SIGNATURES: entries});
        serde_json::to_string(&value).unwrap()
    }

    #[test]
    fn a_compliant_folder_passes() {
        let scratch = Scratch::new("compliant");
        scratch.write("app/web.yaml", COMPLIANT);
        scratch.write("app/README.md", "not a manifest: {{");
        scratch.write(".git/config.yaml", "{{ not read");
        let report = args(vec![scratch.0.clone()]).check().unwrap();
        assert!(report.compliant);
        assert_eq!(report.workloads.len(), 1);
        assert_eq!(report.workloads[0].namespace, "default");
        assert!(report.workloads[0].violations.is_empty());
        let table = render_table(&report);
        assert!(table.ends_with(": COMPLIANT\n"), "{table}");
        assert_eq!(
            args(vec![scratch.0.clone()]).run().unwrap(),
            ExitCode::SUCCESS
        );
    }

    #[test]
    fn a_privileged_deployment_fails_naming_the_field() {
        let scratch = Scratch::new("privileged");
        let file = scratch.write("agent.yaml", PRIVILEGED);
        let report = args(vec![scratch.0.clone()]).check().unwrap();
        assert!(!report.compliant);
        let w = &report.workloads[0];
        assert_eq!(
            (w.kind.as_str(), w.namespace.as_str(), w.name.as_str()),
            ("Deployment", "shop", "agent")
        );
        assert!(!w.allowed);
        assert_eq!(w.violations.len(), 1);
        assert_eq!(
            w.violations[0].field,
            "spec.template.spec.containers[0].securityContext.privileged"
        );
        let table = render_table(&report);
        let line = table.lines().nth(1).unwrap();
        for cell in [
            file.display().to_string().as_str(),
            "shop/Deployment/agent",
            "privileged",
            "spec.template.spec.containers[0].securityContext.privileged",
            "true",
            "UNCOVERED",
        ] {
            assert!(line.contains(cell), "{cell} in {line}");
        }
        assert!(
            table.contains("NOT COMPLIANT (1 workload(s) would be denied)"),
            "{table}"
        );
        assert_eq!(
            args(vec![scratch.0.clone()]).run().unwrap(),
            ExitCode::from(1)
        );
    }

    #[test]
    fn a_signed_active_exception_covers() {
        let scratch = Scratch::new("covered");
        scratch.write("manifests/agent.yaml", PRIVILEGED);
        scratch.write("manifests/exception.json", &signed_exception(EXCEPTION));
        let mut check = args(vec![scratch.0.join("manifests")]);
        check.config = Some(signer_config(&scratch));
        let report = check.check().unwrap();
        assert!(report.compliant, "{}", render_table(&report));
        assert_eq!(report.exceptions.len(), 1);
        let e = &report.exceptions[0];
        assert!(e.honoured, "{}", e.why);
        assert_eq!(e.phase, Phase::Active);
        assert!(
            e.why
                .starts_with("Active: approved by carol@example.com (signature)"),
            "{}",
            e.why
        );
        assert_eq!(
            report.workloads[0].violations[0].covered_by.as_deref(),
            Some("agent-privileged")
        );
        let table = render_table(&report);
        assert!(table.contains("COVERED BY agent-privileged"), "{table}");

        // The same exception after its expiry: not honoured, denied again.
        check.at = Some("2027-03-01T00:00:00Z".parse().unwrap());
        let report = check.check().unwrap();
        assert!(!report.compliant);
        assert!(!report.exceptions[0].honoured);
        assert_eq!(report.exceptions[0].phase, Phase::Expired);

        // Without the configuration listing carol, the signature counts for nothing.
        check.at = Some(at());
        check.config = None;
        let report = check.check().unwrap();
        assert!(!report.compliant);
        let why = &report.exceptions[0].why;
        assert!(why.starts_with("Pending: "), "{why}");
        assert!(
            why.contains("no signer named carol@example.com is configured"),
            "{why}"
        );
        assert!(why.contains("no approval.signers are configured"), "{why}");
    }

    #[test]
    fn an_exception_in_another_namespace_does_not_cover() {
        let scratch = Scratch::new("other-namespace");
        scratch.write("agent.yaml", PRIVILEGED);
        // Signed for namespace shop, but placed in namespace other.
        let moved = signed_exception(EXCEPTION)
            .replace("\"namespace\":\"shop\"", "\"namespace\":\"other\"");
        assert!(moved.contains("\"other\""));
        scratch.write("exception.json", &moved);
        let mut check = args(vec![scratch.0.clone()]);
        check.config = Some(signer_config(&scratch));
        let report = check.check().unwrap();
        assert!(!report.compliant);
        // The signature is bound to shop/agent-privileged: not valid in other.
        assert!(!report.exceptions[0].honoured);
    }

    #[test]
    fn identity_mode_approvals_are_reported_as_unverifiable_offline() {
        let scratch = Scratch::new("identity");
        scratch.write("agent.yaml", PRIVILEGED);
        let mut value: Value = serde_saphyr::from_str(EXCEPTION).unwrap();
        value["metadata"]["annotations"] = serde_json::json!({
            annotations::APPROVED_BY: serde_json::json!([{
                "user": "bob", "groups": ["security-approvers"], "specHash": "sha256:00",
                "at": "2026-12-01T00:00:00Z", "seal": "AAAA"
            }]).to_string()
        });
        scratch.write("exception.json", &value.to_string());
        let report = args(vec![scratch.0.clone()]).check().unwrap();
        assert!(!report.compliant);
        let why = &report.exceptions[0].why;
        assert!(why.contains("cannot be verified offline"), "{why}");
    }

    #[test]
    fn compensating_controls_and_evidence_come_from_the_input() {
        let scratch = Scratch::new("controls");
        scratch.write("agent.yaml", PRIVILEGED);
        let with_control = EXCEPTION.replace(
            "  risk: {rating: Low}",
            "  risk: {rating: Low}\n  compensatingControls: [agent-isolation]",
        );
        scratch.write("exception.json", &signed_exception(&with_control));
        let control = r#"
apiVersion: exceptions.dev/v1alpha1
kind: CompensatingControl
metadata: {name: agent-isolation, namespace: shop}
spec:
  description: Egress limited to the collector.
  category: NetworkIsolation
  evidence:
  - {apiVersion: networking.k8s.io/v1, kind: NetworkPolicy, name: agent-egress}
"#;
        let mut check = args(vec![scratch.0.clone()]);
        check.config = Some(signer_config(&scratch));

        // The control is missing: Suspended.
        let report = check.check().unwrap();
        assert_eq!(
            report.exceptions[0].phase,
            Phase::Suspended,
            "{}",
            report.exceptions[0].why
        );
        assert!(!report.compliant);

        // The control is there but its evidence is not: Suspended.
        scratch.write("control.yaml", control);
        let report = check.check().unwrap();
        assert_eq!(report.exceptions[0].phase, Phase::Suspended);
        assert!(
            report.exceptions[0]
                .why
                .contains("NetworkPolicy agent-egress"),
            "{}",
            report.exceptions[0].why
        );

        // With the evidence: Active, and the workload is covered.
        scratch.write(
            "netpol.yaml",
            "apiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata: {name: agent-egress, namespace: shop}\nspec: {podSelector: {}}\n",
        );
        let report = check.check().unwrap();
        assert_eq!(
            report.exceptions[0].phase,
            Phase::Active,
            "{}",
            report.exceptions[0].why
        );
        assert!(report.compliant);
    }

    #[test]
    fn level_and_namespace_labels() {
        let scratch = Scratch::new("levels");
        scratch.write("web.yaml", COMPLIANT);
        // Compliant at baseline, not at restricted.
        let mut check = args(vec![scratch.0.clone()]);
        check.level = Some(CheckLevel::Restricted);
        let report = check.check().unwrap();
        assert!(!report.compliant);
        assert_eq!(report.level, Some("restricted"));

        // A Namespace in the input sets its levels: warn only, still compliant.
        scratch.write(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {exceptions.dev/warn: restricted}\n",
        );
        let report = args(vec![scratch.0.clone()]).check().unwrap();
        assert!(report.compliant);
        assert!(!report.workloads[0].warnings.is_empty());
        let table = render_table(&report);
        assert!(table.contains("UNCOVERED (warn only)"), "{table}");

        // --namespace places unnamespaced objects; excluded namespaces are skipped.
        let mut check = args(vec![scratch.0.join("web.yaml")]);
        check.namespace = "kube-system".into();
        check.level = Some(CheckLevel::Restricted);
        let report = check.check().unwrap();
        assert!(report.compliant);
        assert!(!report.workloads[0].evaluated);

        // An invalid label is bad input.
        scratch.write(
            "ns.yaml",
            "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: default\n  labels: {exceptions.dev/enforce: strict}\n",
        );
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("label exceptions.dev/enforce has value \"strict\""),
            "{error}"
        );
    }

    #[test]
    fn bad_input_is_an_error() {
        let scratch = Scratch::new("bad");
        let missing = scratch.0.join("absent.yaml");
        let error = args(vec![missing]).check().unwrap_err().to_string();
        assert!(error.starts_with("could not read "), "{error}");

        scratch.write(
            "broken.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: [\n",
        );
        assert!(matches!(
            args(vec![scratch.0.clone()]).run(),
            Err(Error::Usage(_))
        ));
        std::fs::remove_file(scratch.0.join("broken.yaml")).unwrap();

        let invalid = EXCEPTION.replace("  risk: {rating: Low}\n", "");
        scratch.write("exception.yaml", &invalid);
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(error.contains("not a valid SecurityException: "), "{error}");
        assert!(error.contains("risk"), "{error}");

        let wildcard = EXCEPTION.replace("names: [agent]", "names: [\"*\"]");
        scratch.write("exception.yaml", &wildcard);
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(error.contains("spec.targets.names"), "{error}");

        let unknown = EXCEPTION.replace("{id: privileged}", "{id: privileges}");
        scratch.write("exception.yaml", &unknown);
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(error.contains("unknown control \"privileges\""), "{error}");

        scratch.write("exception.yaml", EXCEPTION);
        scratch.write("copy.yaml", EXCEPTION);
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(error.contains("is also defined in"), "{error}");
        std::fs::remove_file(scratch.0.join("copy.yaml")).unwrap();

        scratch.write(
            "bad-pod.yaml",
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec: {containers: nope}\n",
        );
        let error = args(vec![scratch.0.clone()])
            .check()
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("Pod default/p is not a valid workload: spec: malformed"),
            "{error}"
        );
    }

    #[test]
    fn json_output_is_a_stable_document() {
        let scratch = Scratch::new("json");
        scratch.write("agent.yaml", PRIVILEGED);
        scratch.write("exception.yaml", EXCEPTION);
        let report = args(vec![scratch.0.clone()]).check().unwrap();
        let json = serde_json::to_value(&report).unwrap();
        let keys: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        for key in ["compliant", "workloads", "exceptions"] {
            assert!(keys.contains(&key), "{keys:?}");
        }
        assert_eq!(json["compliant"], false);
        assert_eq!(json["exceptions"][0]["name"], "agent-privileged");
        assert_eq!(json["exceptions"][0]["namespace"], "shop");
        assert_eq!(json["exceptions"][0]["honoured"], false);
        assert!(
            json["exceptions"][0]["why"]
                .as_str()
                .unwrap()
                .starts_with("Pending")
        );
        let violation = &json["workloads"][0]["violations"][0];
        assert_eq!(violation["control"], "privileged");
        assert_eq!(violation["container"], "agent");
        assert_eq!(violation["coveredBy"], Value::Null);
        assert_eq!(json["workloads"][0]["levels"]["enforce"], "baseline");
    }
}
