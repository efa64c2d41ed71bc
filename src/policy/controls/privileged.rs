//! Baseline control `privileged`.
//!
//! > **Privileged Containers.** Privileged Pods disable most security
//! > mechanisms and must be disallowed.
//! >
//! > Restricted fields: `spec.containers[*].securityContext.privileged`,
//! > `spec.initContainers[*].securityContext.privileged`,
//! > `spec.ephemeralContainers[*].securityContext.privileged`.
//! > Allowed values: undefined/nil, `false`.

use super::{PodView, Violation};

const ID: &str = "privileged";

/// Every container with `securityContext.privileged: true` (value `true`).
pub(super) fn privileged(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        if c.security_context.and_then(|sc| sc.privileged) == Some(true) {
            out.push(pod.container_violation(ID, c, "securityContext.privileged", "true"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn every_kind_of_container_with_its_list_and_index() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - {name: init, securityContext: {privileged: false}}
  - {name: init2, securityContext: {privileged: true}}
  containers:
  - {name: app}
  - {name: app2, securityContext: {privileged: true}}
  ephemeralContainers:
  - {name: debugger, securityContext: {privileged: true}}
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("privileged", &found),
            pairs(&[
                ("spec.containers[1].securityContext.privileged", "true"),
                (
                    "spec.ephemeralContainers[0].securityContext.privileged",
                    "true"
                ),
                ("spec.initContainers[1].securityContext.privileged", "true"),
            ])
        );
        let names: Vec<_> = found
            .iter()
            .filter_map(|v| v.container.as_deref())
            .collect();
        assert_eq!(names, ["app2", "debugger", "init2"]);
    }

    #[test]
    fn template_prefix_shapes_the_path() {
        let pod: k8s_openapi::api::core::v1::Pod = super::super::test_support::pod(
            "apiVersion: v1\nkind: Pod\nmetadata: {}\nspec:\n  containers:\n  - {name: a, securityContext: {privileged: true}}\n",
        );
        let found = super::super::evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            Level::Baseline,
            &Default::default(),
            "spec.jobTemplate.spec.template.spec",
            "spec.jobTemplate.spec.template.metadata",
        );
        assert_eq!(
            found[0].field,
            "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
        );
    }
}
