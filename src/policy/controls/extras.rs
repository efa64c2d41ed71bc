//! The opt-in extra controls, outside the Pod Security Standards:
//! `imageTagLatest`, `resourceLimits` and `imageRegistry`. Each runs at any
//! level (even `privileged`) when switched on in [`Extras`](super::Extras).
//!
//! - `imageTagLatest`: an image must be pinned, by a version tag or a digest.
//!   `nginx`, `nginx:latest` and `registry.example.com:5000/app` are not;
//!   `nginx:1.27` and `nginx@sha256:...` (whatever the tag) are.
//! - `resourceLimits`: every container and init container must have a cpu and
//!   a memory limit, its own or the pod's (pod-level `spec.resources`).
//!   Ephemeral containers are not checked: the API forbids resources on them.
//! - `imageRegistry`: every image must come from an allowed registry. An image
//!   without a registry host comes from `docker.io` (as the container runtime
//!   resolves it); `index.docker.io` and `registry-1.docker.io` are
//!   `docker.io` too. Hosts compare case-insensitively, with the port.

use super::{ContainerKind, PodView, Violation};

/// Docker Hub, where an image without a registry host is pulled from.
const DOCKER_HUB: &str = "docker.io";

/// Every container image that is not pinned; the value is the image.
pub(super) fn image_tag_latest(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        let Some(image) = c.image.filter(|i| !i.is_empty()) else {
            continue;
        };
        let reference = ImageRef::parse(image);
        let unpinned = !reference.has_digest && matches!(reference.tag, None | Some("latest"));
        if unpinned {
            out.push(pod.container_violation("imageTagLatest", c, "image", image));
        }
    }
}

/// Every container or init container without a cpu or memory limit (its own
/// or the pod's); the value is the missing resource (`cpu` or `memory`).
pub(super) fn resource_limits(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    let pod_limits = pod.spec.resources.as_ref().and_then(|r| r.limits.as_ref());
    for c in pod
        .containers
        .iter()
        .filter(|c| c.kind != ContainerKind::Ephemeral)
    {
        let limits = c.resources.and_then(|r| r.limits.as_ref());
        for resource in ["cpu", "memory"] {
            let limited = [limits, pod_limits]
                .into_iter()
                .flatten()
                .any(|l| l.contains_key(resource));
            if !limited {
                out.push(pod.container_violation(
                    "resourceLimits",
                    c,
                    &format!("resources.limits.{resource}"),
                    resource,
                ));
            }
        }
    }
}

/// Every container image whose registry is not in `allowed`; the value is the
/// registry host.
pub(super) fn image_registry(pod: &PodView<'_>, allowed: &[String], out: &mut Vec<Violation>) {
    let allowed: Vec<String> = allowed
        .iter()
        .map(|r| normalize_registry(r.trim().trim_end_matches('/')))
        .collect();
    for c in &pod.containers {
        let Some(image) = c.image.filter(|i| !i.is_empty()) else {
            continue;
        };
        let registry = ImageRef::parse(image).registry;
        if !allowed.contains(&registry) {
            out.push(pod.container_violation("imageRegistry", c, "image", registry));
        }
    }
}

/// The parts of an image reference (`[registry/]repository[:tag][@digest]`)
/// the extras need.
#[derive(Debug, PartialEq, Eq)]
struct ImageRef<'a> {
    /// The registry host (with port), normalized; `docker.io` when the
    /// reference names none.
    registry: String,
    /// The tag, if any.
    tag: Option<&'a str>,
    /// Whether the reference is pinned by digest (`@sha256:...`).
    has_digest: bool,
}

impl<'a> ImageRef<'a> {
    fn parse(image: &'a str) -> Self {
        let (name, has_digest) = match image.split_once('@') {
            Some((name, _digest)) => (name, true),
            None => (image, false),
        };
        // The first path component is a registry host only if it looks like
        // one: it has a dot or a port, or is `localhost`.
        let (registry, repository) = match name.split_once('/') {
            Some((first, rest))
                if first.contains('.') || first.contains(':') || first == "localhost" =>
            {
                (normalize_registry(first), rest)
            }
            _ => (DOCKER_HUB.to_string(), name),
        };
        let last_component = repository.rsplit('/').next().unwrap_or(repository);
        let tag = last_component.split_once(':').map(|(_, tag)| tag);
        ImageRef {
            registry,
            tag,
            has_digest,
        }
    }
}

/// A registry host, lower-cased, with Docker Hub's aliases folded into
/// `docker.io`.
fn normalize_registry(host: &str) -> String {
    let host = host.to_ascii_lowercase();
    match host.as_str() {
        "index.docker.io" | "registry-1.docker.io" => DOCKER_HUB.to_string(),
        _ => host,
    }
}

#[cfg(test)]
mod tests {
    use super::super::test_support::{of, pairs, pod};
    use super::super::{Extras, Level, evaluate};
    use super::*;

    #[test]
    fn image_references() {
        let cases = [
            ("nginx", "docker.io", None, false),
            ("nginx:latest", "docker.io", Some("latest"), false),
            ("library/nginx:1.27", "docker.io", Some("1.27"), false),
            (
                "docker.io/library/nginx:1.27",
                "docker.io",
                Some("1.27"),
                false,
            ),
            ("Index.Docker.io/library/nginx", "docker.io", None, false),
            (
                "registry.example.com:5000/team/app",
                "registry.example.com:5000",
                None,
                false,
            ),
            ("localhost/app:dev", "localhost", Some("dev"), false),
            ("ghcr.io/org/app@sha256:abcd", "ghcr.io", None, true),
            (
                "ghcr.io/org/app:1.0@sha256:abcd",
                "ghcr.io",
                Some("1.0"),
                true,
            ),
            ("quay.io/org/app:v2", "quay.io", Some("v2"), false),
        ];
        for (image, registry, tag, has_digest) in cases {
            assert_eq!(
                ImageRef::parse(image),
                ImageRef {
                    registry: registry.to_string(),
                    tag,
                    has_digest
                },
                "{image}"
            );
        }
    }

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: init
    image: busybox
    resources: {limits: {cpu: 100m, memory: 64Mi}}
  containers:
  - name: app
    image: registry.example.com/team/app:1.4.2
    resources: {limits: {memory: 128Mi}}
  - name: pinned
    image: quay.io/org/tool:latest@sha256:0000
  ephemeralContainers:
  - name: dbg
    image: nicolaka/netshoot:latest
"#;

    fn run(extras: &Extras, yaml: &str) -> Vec<Violation> {
        let pod = pod(yaml);
        evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            Level::Privileged,
            extras,
            "spec.template.spec",
            "spec.template.metadata",
        )
    }

    #[test]
    fn image_tag_latest() {
        let extras = Extras {
            image_tag_latest: true,
            ..Extras::default()
        };
        assert_eq!(
            of("imageTagLatest", &run(&extras, POD)),
            pairs(&[
                (
                    "spec.template.spec.ephemeralContainers[0].image",
                    "nicolaka/netshoot:latest"
                ),
                ("spec.template.spec.initContainers[0].image", "busybox"),
            ])
        );
    }

    #[test]
    fn resource_limits_skip_ephemeral_containers_and_accept_pod_level_limits() {
        let extras = Extras {
            resource_limits: true,
            ..Extras::default()
        };
        assert_eq!(
            of("resourceLimits", &run(&extras, POD)),
            pairs(&[
                (
                    "spec.template.spec.containers[0].resources.limits.cpu",
                    "cpu"
                ),
                (
                    "spec.template.spec.containers[1].resources.limits.cpu",
                    "cpu"
                ),
                (
                    "spec.template.spec.containers[1].resources.limits.memory",
                    "memory"
                ),
            ])
        );
        let pod_level = POD.replace("spec:\n", "spec:\n  resources: {limits: {cpu: \"2\"}}\n");
        assert_eq!(
            of("resourceLimits", &run(&extras, &pod_level)),
            pairs(&[(
                "spec.template.spec.containers[1].resources.limits.memory",
                "memory"
            )])
        );
    }

    #[test]
    fn image_registry_allow_list() {
        let extras = Extras {
            allowed_registries: vec![
                "Registry.Example.com/".to_string(),
                "index.docker.io".to_string(),
            ],
            ..Extras::default()
        };
        let found = run(&extras, POD);
        assert_eq!(
            of("imageRegistry", &found),
            pairs(&[("spec.template.spec.containers[1].image", "quay.io")])
        );
        assert_eq!(found[0].container.as_deref(), Some("pinned"));
        assert!(run(&Extras::default(), POD).is_empty());
    }
}
