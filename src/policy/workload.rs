//! From an admitted object to the pod template the controls check.
//!
//! The admission webhook receives Pods and every kind that owns a pod
//! template. [`pod_templates`] finds the template in the raw object, reads
//! only the parts the checks and the exception targets need (the metadata
//! and the PodSpec), and says where they sit in the submitted object, so a
//! [`Violation`](super::controls::Violation) names the field as the user
//! wrote it:
//!
//! | Kind | PodSpec | Template metadata |
//! | --- | --- | --- |
//! | `v1` Pod | `spec` | `metadata` |
//! | `apps/v1` Deployment, ReplicaSet, StatefulSet, DaemonSet; `batch/v1` Job; `v1` ReplicationController | `spec.template.spec` | `spec.template.metadata` |
//! | `batch/v1` CronJob | `spec.jobTemplate.spec.template.spec` | `spec.jobTemplate.spec.template.metadata` |
//!
//! Anything else, and any object whose template is missing or malformed, is
//! an error: the webhook fails closed on it.
//!
//! # Identities
//!
//! An exception's `targets` name workloads by kind and name. Controllers
//! create the Pods (and ReplicaSets, and Jobs) that actually run, under names
//! of their own, so a workload is identified by its own kind and name *and*
//! by the controllers that own it ([`Workload::identities`]): an exception for
//! `kinds: [Deployment], names: [web]` covers the ReplicaSets and Pods that
//! Deployment `web` creates.
//!
//! Names are not a security boundary inside a namespace. Anyone who may
//! create workloads in a namespace may choose their names, their labels and
//! their `ownerReferences`, and so may claim to be Deployment `web` (or its
//! Pod). An exception scoped by name or label is scoped to "whatever the
//! people who can create workloads in this namespace call `web`"; that is the
//! namespace's trust boundary, and the reason an exception can never reach
//! another namespace. Where that is too coarse, `targets.images` scopes an
//! exception to what actually runs.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::PodSpec;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube::core::DynamicObject;
use serde::Deserialize;
use serde_json::Value;

use crate::api::WorkloadKind;

/// The label the Deployment controller puts on the ReplicaSets it creates,
/// and on their Pods: the hash that ends the ReplicaSet's name.
pub const POD_TEMPLATE_HASH_LABEL: &str = "pod-template-hash";

/// One workload as the controls and the exception index see it: who it is,
/// and the pod template it runs.
#[derive(Clone, Debug, PartialEq)]
pub struct Workload {
    /// The kind of the admitted object.
    pub kind: WorkloadKind,
    /// The object's name; empty when the API server has not generated it yet
    /// (`generateName`, as for the Pods a ReplicaSet creates).
    pub name: String,
    /// The object's namespace as written in its metadata. It may be absent
    /// on CREATE: the webhook takes the namespace from the admission request.
    pub namespace: Option<String>,
    /// The object's own labels (for a Pod, the Pod's labels).
    pub labels: BTreeMap<String, String>,
    /// The metadata of the pod template (for a Pod, the Pod's metadata),
    /// whose annotations some controls read.
    pub template_metadata: ObjectMeta,
    /// The pod template's spec (for a Pod, the Pod's spec).
    pub pod_spec: PodSpec,
    /// Where [`Workload::pod_spec`] sits in the submitted object
    /// (`spec`, `spec.template.spec`, `spec.jobTemplate.spec.template.spec`).
    pub field_prefix: &'static str,
    /// Where [`Workload::template_metadata`] sits in the submitted object
    /// (`metadata`, `spec.template.metadata`,
    /// `spec.jobTemplate.spec.template.metadata`).
    pub metadata_prefix: &'static str,
    /// The object's controller (its `ownerReference` with `controller:
    /// true`), when that controller is itself a workload kind. Owners of
    /// other kinds (custom resources) are not identities an exception can
    /// target, and are left out.
    pub owner: Option<(WorkloadKind, String)>,
}

impl Workload {
    /// Every kind and name this workload answers to in an exception's
    /// `targets`: the workload itself first, then its controller
    /// ([`Workload::owner`]), then the controller's own controller where its
    /// name reveals it:
    ///
    /// - a ReplicaSet named `<deployment>-<hash>`, where this workload carries
    ///   the label `pod-template-hash: <hash>`, belongs to Deployment
    ///   `<deployment>`;
    /// - a Job named `<cronjob>-<digits>` may belong to CronJob `<cronjob>`
    ///   (the CronJob controller names its Jobs after the scheduled minute).
    ///
    /// These are claims the workload makes about itself: see the
    /// [module documentation](self) on why names are not a security boundary.
    pub fn identities(&self) -> Vec<(WorkloadKind, &str)> {
        let mut out = vec![(self.kind, self.name.as_str())];
        let Some((owner_kind, owner_name)) = &self.owner else {
            return out;
        };
        out.push((*owner_kind, owner_name.as_str()));
        match owner_kind {
            WorkloadKind::ReplicaSet => {
                let deployment = self
                    .labels
                    .get(POD_TEMPLATE_HASH_LABEL)
                    .filter(|hash| !hash.is_empty())
                    .and_then(|hash| owner_name.strip_suffix(hash.as_str()))
                    .and_then(|rest| rest.strip_suffix('-'))
                    .filter(|name| !name.is_empty());
                if let Some(deployment) = deployment {
                    out.push((WorkloadKind::Deployment, deployment));
                }
            }
            WorkloadKind::Job => {
                let cron_job = owner_name.rsplit_once('-').and_then(|(prefix, digits)| {
                    let numeric = !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit());
                    (numeric && !prefix.is_empty()).then_some(prefix)
                });
                if let Some(cron_job) = cron_job {
                    out.push((WorkloadKind::CronJob, cron_job));
                }
            }
            _ => {}
        }
        out
    }

    /// The image of the container named `container`, searched in
    /// `containers`, `initContainers` and `ephemeralContainers`; `None` when
    /// no such container exists or it names no image.
    pub fn image_of(&self, container: &str) -> Option<&str> {
        self.container_images()
            .find(|(name, _)| *name == container)
            .and_then(|(_, image)| image)
    }

    /// Every container of the pod template (init, regular, then ephemeral)
    /// as `(name, image)`.
    pub fn container_images(&self) -> impl Iterator<Item = (&str, Option<&str>)> {
        let spec = &self.pod_spec;
        let init = spec.init_containers.iter().flatten();
        let regular = spec.containers.iter();
        let ephemeral = spec
            .ephemeral_containers
            .iter()
            .flatten()
            .map(|c| (c.name.as_str(), c.image.as_deref()));
        init.chain(regular)
            .map(|c| (c.name.as_str(), c.image.as_deref()))
            .chain(ephemeral)
    }
}

/// Why an admitted object could not be turned into a [`Workload`]. The
/// webhook fails closed on every one of these.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    /// The object is not a JSON object.
    #[error("the object is not a JSON object")]
    NotAnObject,
    /// A field the object must have is absent (or null).
    #[error("{0}: missing")]
    Missing(&'static str),
    /// The object's `apiVersion` and `kind` name no workload kind.
    #[error("not a workload kind: {kind} (apiVersion {api_version})")]
    NotAWorkload {
        /// The object's `apiVersion`.
        api_version: String,
        /// The object's `kind`.
        kind: String,
    },
    /// A field is present but does not have the shape Kubernetes defines.
    #[error("{path}: malformed")]
    Malformed {
        /// The path of the field in the object, e.g. `spec.template.spec`.
        path: &'static str,
        /// What is wrong with it.
        #[source]
        source: serde_json::Error,
    },
}

/// The workload kind of `kind` in API group `api_group` (`""` for the core
/// group; the version does not matter), if it is one whose pod template the
/// webhook checks.
pub fn workload_kind(api_group: &str, kind: &str) -> Option<WorkloadKind> {
    match (api_group, kind) {
        ("", "Pod") => Some(WorkloadKind::Pod),
        ("", "ReplicationController") => Some(WorkloadKind::ReplicationController),
        ("apps", "Deployment") => Some(WorkloadKind::Deployment),
        ("apps", "ReplicaSet") => Some(WorkloadKind::ReplicaSet),
        ("apps", "StatefulSet") => Some(WorkloadKind::StatefulSet),
        ("apps", "DaemonSet") => Some(WorkloadKind::DaemonSet),
        ("batch", "Job") => Some(WorkloadKind::Job),
        ("batch", "CronJob") => Some(WorkloadKind::CronJob),
        _ => None,
    }
}

/// The API group of an `apiVersion` (`apps/v1` → `apps`, `v1` → `""`).
fn api_group(api_version: &str) -> &str {
    api_version
        .split_once('/')
        .map_or("", |(group, _version)| group)
}

/// The workload an admitted object describes, as the API server sends it in
/// an AdmissionReview (`request.object` or `request.oldObject`). The kind
/// comes from the object's own `apiVersion` and `kind`.
pub fn pod_templates(object: &Value) -> Result<Workload, WorkloadError> {
    let fields = object.as_object().ok_or(WorkloadError::NotAnObject)?;
    let api_version = required_str(fields.get("apiVersion"), "apiVersion")?;
    let kind = required_str(fields.get("kind"), "kind")?;
    let metadata = present(fields.get("metadata"), "metadata")?;
    let metadata = parse::<ObjectMeta>(metadata, "metadata")?;
    build(api_version, kind, metadata, fields.get("spec"))
}

/// [`pod_templates`] for an object already decoded as a
/// [`DynamicObject`] (as in `AdmissionReview<DynamicObject>`), without
/// re-encoding it.
pub fn pod_templates_of(object: &DynamicObject) -> Result<Workload, WorkloadError> {
    let types = object
        .types
        .as_ref()
        .ok_or(WorkloadError::Missing("kind"))?;
    if types.api_version.is_empty() {
        return Err(WorkloadError::Missing("apiVersion"));
    }
    if types.kind.is_empty() {
        return Err(WorkloadError::Missing("kind"));
    }
    build(
        &types.api_version,
        &types.kind,
        object.metadata.clone(),
        object.data.get("spec"),
    )
}

/// Finds the pod template of an object of `api_version`/`kind` in its `spec`.
fn build(
    api_version: &str,
    kind: &str,
    metadata: ObjectMeta,
    spec: Option<&Value>,
) -> Result<Workload, WorkloadError> {
    let workload_kind =
        workload_kind(api_group(api_version), kind).ok_or_else(|| WorkloadError::NotAWorkload {
            api_version: api_version.to_string(),
            kind: kind.to_string(),
        })?;
    let spec = present(spec, "spec")?;
    let (template_metadata, pod_spec, field_prefix, metadata_prefix) = match workload_kind {
        WorkloadKind::Pod => (
            metadata.clone(),
            parse::<PodSpec>(spec, "spec")?,
            "spec",
            "metadata",
        ),
        WorkloadKind::CronJob => {
            let job_template = present(spec.get("jobTemplate"), "spec.jobTemplate")?;
            let job_spec = present(job_template.get("spec"), "spec.jobTemplate.spec")?;
            let template = present(job_spec.get("template"), "spec.jobTemplate.spec.template")?;
            let (meta, pod_spec) = template_parts(
                template,
                "spec.jobTemplate.spec.template.metadata",
                "spec.jobTemplate.spec.template.spec",
            )?;
            (
                meta,
                pod_spec,
                "spec.jobTemplate.spec.template.spec",
                "spec.jobTemplate.spec.template.metadata",
            )
        }
        _ => {
            let template = present(spec.get("template"), "spec.template")?;
            let (meta, pod_spec) =
                template_parts(template, "spec.template.metadata", "spec.template.spec")?;
            (
                meta,
                pod_spec,
                "spec.template.spec",
                "spec.template.metadata",
            )
        }
    };
    let owner = controller_owner(&metadata);
    Ok(Workload {
        kind: workload_kind,
        name: metadata.name.unwrap_or_default(),
        namespace: metadata.namespace,
        labels: metadata.labels.unwrap_or_default(),
        template_metadata,
        pod_spec,
        field_prefix,
        metadata_prefix,
        owner,
    })
}

/// The metadata (optional in a template) and spec (required) of a pod
/// template.
fn template_parts(
    template: &Value,
    metadata_path: &'static str,
    spec_path: &'static str,
) -> Result<(ObjectMeta, PodSpec), WorkloadError> {
    let metadata = match template.get("metadata") {
        None | Some(Value::Null) => ObjectMeta::default(),
        Some(value) => parse::<ObjectMeta>(value, metadata_path)?,
    };
    let spec = parse::<PodSpec>(present(template.get("spec"), spec_path)?, spec_path)?;
    Ok((metadata, spec))
}

/// The object's controller, if it has exactly one and that one is a
/// workload kind. Several controllers (which the API server rejects) count
/// as none: fewer identities can only cover less.
fn controller_owner(metadata: &ObjectMeta) -> Option<(WorkloadKind, String)> {
    let mut controllers = metadata
        .owner_references
        .iter()
        .flatten()
        .filter(|r| r.controller == Some(true));
    let controller = controllers.next()?;
    if controllers.next().is_some() || controller.name.is_empty() {
        return None;
    }
    let kind = workload_kind(api_group(&controller.api_version), &controller.kind)?;
    Some((kind, controller.name.clone()))
}

/// `value` unless it is absent or null.
fn present<'v>(value: Option<&'v Value>, path: &'static str) -> Result<&'v Value, WorkloadError> {
    match value {
        None | Some(Value::Null) => Err(WorkloadError::Missing(path)),
        Some(value) => Ok(value),
    }
}

/// A non-empty string field.
fn required_str<'v>(
    value: Option<&'v Value>,
    path: &'static str,
) -> Result<&'v str, WorkloadError> {
    match present(value, path)? {
        Value::String(s) if !s.is_empty() => Ok(s),
        Value::String(_) => Err(WorkloadError::Missing(path)),
        other => Err(WorkloadError::Malformed {
            path,
            source: <serde_json::Error as serde::de::Error>::invalid_type(
                unexpected(other),
                &"a string",
            ),
        }),
    }
}

/// How serde describes a JSON value that has the wrong type.
fn unexpected(value: &Value) -> serde::de::Unexpected<'_> {
    use serde::de::Unexpected;
    match value {
        Value::Null => Unexpected::Unit,
        Value::Bool(b) => Unexpected::Bool(*b),
        Value::Number(_) => Unexpected::Other("a number"),
        Value::String(s) => Unexpected::Str(s),
        Value::Array(_) => Unexpected::Seq,
        Value::Object(_) => Unexpected::Map,
    }
}

/// Deserializes one part of the object, without copying the JSON.
fn parse<'v, T: Deserialize<'v>>(value: &'v Value, path: &'static str) -> Result<T, WorkloadError> {
    T::deserialize(value).map_err(|source| WorkloadError::Malformed { path, source })
}

#[cfg(test)]
mod tests {
    use std::error::Error as _;

    use serde_json::json;

    use super::*;

    fn pod_spec() -> Value {
        json!({"containers": [{"name": "app", "image": "nginx:1.27"}]})
    }

    fn template() -> Value {
        json!({"metadata": {"labels": {"app": "web"}}, "spec": pod_spec()})
    }

    fn object(api_version: &str, kind: &str, spec: Value) -> Value {
        json!({
            "apiVersion": api_version,
            "kind": kind,
            "metadata": {"name": "web", "namespace": "shop", "labels": {"tier": "front"}},
            "spec": spec,
        })
    }

    fn error(object: &Value) -> String {
        let err = pod_templates(object).unwrap_err();
        let mut message = err.to_string();
        let mut source = err.source();
        while let Some(s) = source {
            message.push_str(&format!(": {s}"));
            source = s.source();
        }
        message
    }

    #[test]
    fn a_pod_is_its_own_template() {
        let w = pod_templates(&object("v1", "Pod", pod_spec())).unwrap();
        assert_eq!(w.kind, WorkloadKind::Pod);
        assert_eq!(w.name, "web");
        assert_eq!(w.namespace.as_deref(), Some("shop"));
        assert_eq!(w.labels, BTreeMap::from([("tier".into(), "front".into())]));
        assert_eq!(w.template_metadata.name.as_deref(), Some("web"));
        assert_eq!(w.pod_spec.containers[0].name, "app");
        assert_eq!((w.field_prefix, w.metadata_prefix), ("spec", "metadata"));
        assert_eq!(w.owner, None);
        assert_eq!(w.identities(), [(WorkloadKind::Pod, "web")]);
    }

    #[test]
    fn every_template_owner_reads_spec_template() {
        for (api_version, kind, expected) in [
            ("apps/v1", "Deployment", WorkloadKind::Deployment),
            ("apps/v1", "ReplicaSet", WorkloadKind::ReplicaSet),
            ("apps/v1", "StatefulSet", WorkloadKind::StatefulSet),
            ("apps/v1", "DaemonSet", WorkloadKind::DaemonSet),
            ("batch/v1", "Job", WorkloadKind::Job),
            (
                "v1",
                "ReplicationController",
                WorkloadKind::ReplicationController,
            ),
        ] {
            let w =
                pod_templates(&object(api_version, kind, json!({"template": template()}))).unwrap();
            assert_eq!(w.kind, expected);
            assert_eq!(w.field_prefix, "spec.template.spec");
            assert_eq!(w.metadata_prefix, "spec.template.metadata");
            assert_eq!(
                w.labels["tier"], "front",
                "{kind}: the workload's own labels"
            );
            assert_eq!(
                w.template_metadata.labels.as_ref().unwrap()["app"],
                "web",
                "{kind}: the template's labels"
            );
            assert_eq!(
                w.pod_spec.containers[0].image.as_deref(),
                Some("nginx:1.27")
            );
        }
    }

    #[test]
    fn a_cron_job_reads_its_job_template() {
        let spec =
            json!({"schedule": "* * * * *", "jobTemplate": {"spec": {"template": template()}}});
        let w = pod_templates(&object("batch/v1", "CronJob", spec)).unwrap();
        assert_eq!(w.kind, WorkloadKind::CronJob);
        assert_eq!(w.field_prefix, "spec.jobTemplate.spec.template.spec");
        assert_eq!(w.metadata_prefix, "spec.jobTemplate.spec.template.metadata");
        assert_eq!(w.pod_spec.containers.len(), 1);
    }

    #[test]
    fn template_metadata_is_optional() {
        let w = pod_templates(&object(
            "apps/v1",
            "Deployment",
            json!({"template": {"spec": pod_spec()}}),
        ))
        .unwrap();
        assert_eq!(w.template_metadata, ObjectMeta::default());
    }

    #[test]
    fn violations_name_fields_where_the_user_wrote_them() {
        use crate::policy::controls::{Extras, Level, evaluate};
        let spec = json!({"jobTemplate": {"spec": {"template": {"spec": {
            "containers": [{"name": "app", "image": "a:1", "securityContext": {"privileged": true}}]
        }}}}});
        let w = pod_templates(&object("batch/v1", "CronJob", spec)).unwrap();
        let found = evaluate(
            &w.template_metadata,
            &w.pod_spec,
            Level::Baseline,
            &Extras::default(),
            w.field_prefix,
            w.metadata_prefix,
        );
        assert_eq!(
            found[0].field,
            "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
        );
    }

    #[test]
    fn missing_parts_are_errors_naming_the_field() {
        let cases = [
            (object("v1", "Pod", Value::Null), "spec: missing"),
            (
                object("v1", "ReplicationController", json!({"replicas": 1})),
                "spec.template: missing",
            ),
            (
                object(
                    "apps/v1",
                    "Deployment",
                    json!({"template": {"metadata": {}}}),
                ),
                "spec.template.spec: missing",
            ),
            (
                object("batch/v1", "CronJob", json!({"jobTemplate": {"spec": {}}})),
                "spec.jobTemplate.spec.template: missing",
            ),
            (
                object("batch/v1", "CronJob", json!({"schedule": "@daily"})),
                "spec.jobTemplate: missing",
            ),
            (
                json!({"kind": "Pod", "metadata": {}, "spec": {}}),
                "apiVersion: missing",
            ),
            (json!({"apiVersion": "v1", "spec": {}}), "kind: missing"),
            (
                json!({"apiVersion": "v1", "kind": "Pod", "spec": {}}),
                "metadata: missing",
            ),
        ];
        for (object, expected) in cases {
            assert_eq!(error(&object), expected);
        }
    }

    #[test]
    fn other_kinds_are_not_workloads() {
        assert_eq!(
            error(&object("v1", "ConfigMap", json!({}))),
            "not a workload kind: ConfigMap (apiVersion v1)"
        );
        // The group matters: a custom resource called Deployment is not one.
        assert!(
            error(&object("example.com/v1", "Deployment", json!({})))
                .starts_with("not a workload kind: Deployment")
        );
        assert!(error(&object("v1", "Deployment", json!({}))).starts_with("not a workload kind"));
        assert_eq!(error(&json!([1])), "the object is not a JSON object");
    }

    #[test]
    fn malformed_parts_are_serde_errors_with_their_path() {
        let bad_spec = object("v1", "Pod", json!({"containers": "app"}));
        let message = error(&bad_spec);
        assert!(
            message.starts_with("spec: malformed: invalid type"),
            "{message}"
        );

        let bad_template = object(
            "apps/v1",
            "Deployment",
            json!({"template": {"metadata": {"labels": ["a"]}, "spec": pod_spec()}}),
        );
        let message = error(&bad_template);
        assert!(
            message.starts_with("spec.template.metadata: malformed: invalid type"),
            "{message}"
        );

        let bad_kind = json!({"apiVersion": "v1", "kind": 7, "metadata": {}, "spec": {}});
        assert!(error(&bad_kind).starts_with("kind: malformed: invalid type"));
    }

    #[test]
    fn workload_kinds_by_group() {
        assert_eq!(workload_kind("", "Pod"), Some(WorkloadKind::Pod));
        assert_eq!(workload_kind("apps", "Pod"), None);
        assert_eq!(
            workload_kind("batch", "CronJob"),
            Some(WorkloadKind::CronJob)
        );
        assert_eq!(workload_kind("apps", "deployment"), None);
        assert_eq!(workload_kind("", "Service"), None);
    }

    fn owned_pod(owner_api: &str, owner_kind: &str, owner_name: &str, labels: Value) -> Workload {
        pod_templates(&json!({
            "apiVersion": "v1",
            "kind": "Pod",
            "metadata": {
                "generateName": format!("{owner_name}-"),
                "labels": labels,
                "ownerReferences": [
                    {"apiVersion": "v1", "kind": "ConfigMap", "name": "other", "uid": "1"},
                    {"apiVersion": owner_api, "kind": owner_kind, "name": owner_name, "uid": "2", "controller": true}
                ]
            },
            "spec": pod_spec()
        }))
        .unwrap()
    }

    #[test]
    fn a_deployments_pod_is_also_the_deployment() {
        let w = owned_pod(
            "apps/v1",
            "ReplicaSet",
            "web-7d9f8b6c4",
            json!({"app": "web", "pod-template-hash": "7d9f8b6c4"}),
        );
        assert_eq!(w.name, "", "generated names are not known at admission");
        assert_eq!(
            w.identities(),
            [
                (WorkloadKind::Pod, ""),
                (WorkloadKind::ReplicaSet, "web-7d9f8b6c4"),
                (WorkloadKind::Deployment, "web"),
            ]
        );
    }

    #[test]
    fn a_replica_set_without_the_matching_hash_is_only_itself() {
        for labels in [
            json!({"pod-template-hash": "other"}),
            json!({}),
            json!({"pod-template-hash": ""}),
        ] {
            let w = owned_pod("apps/v1", "ReplicaSet", "web-7d9f8b6c4", labels);
            assert_eq!(
                w.identities(),
                [
                    (WorkloadKind::Pod, ""),
                    (WorkloadKind::ReplicaSet, "web-7d9f8b6c4")
                ]
            );
        }
        // The hash must be a whole suffix after a dash, with a name before it.
        let w = owned_pod(
            "apps/v1",
            "ReplicaSet",
            "-abc",
            json!({"pod-template-hash": "abc"}),
        );
        assert_eq!(w.identities().len(), 2);
        let w = owned_pod(
            "apps/v1",
            "ReplicaSet",
            "webabc",
            json!({"pod-template-hash": "abc"}),
        );
        assert_eq!(w.identities().len(), 2);
    }

    #[test]
    fn a_cron_jobs_pod_is_also_the_cron_job() {
        let w = owned_pod("batch/v1", "Job", "backup-28901234", json!({}));
        assert_eq!(
            w.identities(),
            [
                (WorkloadKind::Pod, ""),
                (WorkloadKind::Job, "backup-28901234"),
                (WorkloadKind::CronJob, "backup"),
            ]
        );
        let w = owned_pod("batch/v1", "Job", "migrate-v2", json!({}));
        assert_eq!(
            w.identities(),
            [(WorkloadKind::Pod, ""), (WorkloadKind::Job, "migrate-v2")]
        );
    }

    #[test]
    fn other_controllers_identify_directly() {
        let w = owned_pod("apps/v1", "StatefulSet", "db", json!({}));
        assert_eq!(w.owner, Some((WorkloadKind::StatefulSet, "db".to_string())));
        assert_eq!(w.identities()[1], (WorkloadKind::StatefulSet, "db"));
        // A custom controller is not a kind an exception can name.
        let w = owned_pod("argoproj.io/v1alpha1", "Rollout", "web", json!({}));
        assert_eq!(w.owner, None);
    }

    #[test]
    fn template_owners_have_owners_too() {
        let mut rs = object("apps/v1", "ReplicaSet", json!({"template": template()}));
        rs["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web", "uid": "1", "controller": true}
        ]);
        let w = pod_templates(&rs).unwrap();
        assert_eq!(
            w.identities(),
            [
                (WorkloadKind::ReplicaSet, "web"),
                (WorkloadKind::Deployment, "web")
            ]
        );
    }

    #[test]
    fn non_controller_and_ambiguous_owners_are_ignored() {
        let mut pod = object("v1", "Pod", pod_spec());
        pod["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1"}
        ]);
        assert_eq!(pod_templates(&pod).unwrap().owner, None);
        pod["metadata"]["ownerReferences"] = json!([
            {"apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "a", "uid": "1", "controller": true},
            {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "b", "uid": "2", "controller": true}
        ]);
        assert_eq!(pod_templates(&pod).unwrap().owner, None);
    }

    #[test]
    fn images_are_found_in_every_container_list() {
        let w = pod_templates(&object(
            "v1",
            "Pod",
            json!({
                "initContainers": [{"name": "init", "image": "busybox:1"}],
                "containers": [{"name": "app", "image": "nginx:1.27"}, {"name": "noimage"}],
                "ephemeralContainers": [{"name": "debug", "image": "debian:12"}]
            }),
        ))
        .unwrap();
        assert_eq!(w.image_of("init"), Some("busybox:1"));
        assert_eq!(w.image_of("app"), Some("nginx:1.27"));
        assert_eq!(w.image_of("debug"), Some("debian:12"));
        assert_eq!(w.image_of("noimage"), None);
        assert_eq!(w.image_of("absent"), None);
        assert_eq!(w.container_images().count(), 4);
    }

    #[test]
    fn a_dynamic_object_gives_the_same_workload() {
        let mut raw = object("apps/v1", "Deployment", json!({"template": template()}));
        raw["metadata"]["ownerReferences"] = json!([]);
        let dynamic: DynamicObject = serde_json::from_value(raw.clone()).unwrap();
        assert_eq!(
            pod_templates_of(&dynamic).unwrap(),
            pod_templates(&raw).unwrap()
        );

        let no_template: DynamicObject =
            serde_json::from_value(object("apps/v1", "StatefulSet", json!({}))).unwrap();
        assert_eq!(
            pod_templates_of(&no_template).unwrap_err().to_string(),
            "spec.template: missing"
        );
        let untyped: DynamicObject = serde_json::from_value(json!({"metadata": {}})).unwrap();
        assert!(pod_templates_of(&untyped).is_err());
    }
}
