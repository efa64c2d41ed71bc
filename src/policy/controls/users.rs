//! Restricted controls on who a container runs as: `allowPrivilegeEscalation`,
//! `runAsNonRoot` and `runAsUser`.
//!
//! > **Privilege Escalation.** Privilege escalation (such as via set-user-ID or
//! > set-group-ID file mode) should not be allowed. This is a Linux-only
//! > policy. Restricted fields: `securityContext.allowPrivilegeEscalation` of
//! > every container. Allowed values: `false`.
//!
//! > **Running as Non-root.** Containers must be required to run as non-root
//! > users. Restricted fields: `spec.securityContext.runAsNonRoot`,
//! > `securityContext.runAsNonRoot` of every container. Allowed values:
//! > `true`. The container fields may be undefined/nil if the pod-level
//! > `spec.securityContext.runAsNonRoot` is set to `true`.
//!
//! > **Running as Non-root user.** Containers must not set `runAsUser` to 0.
//! > Restricted fields: `spec.securityContext.runAsUser`,
//! > `securityContext.runAsUser` of every container. Allowed values: any
//! > non-zero value, undefined/null.
//!
//! A pod in its own user namespace (`spec.hostUsers: false`) is exempt from
//! `runAsNonRoot` and `runAsUser` (standard v1.35 and later): UID 0 inside the
//! pod maps to an unprivileged UID on the node. `allowPrivilegeEscalation`
//! does not apply to Windows pods (`spec.os.name: windows`).

use super::{PodView, UNSET, Violation};

/// Every container whose `allowPrivilegeEscalation` is not `false` (value
/// `true`, or `unset`). Windows pods are exempt.
pub(super) fn allow_privilege_escalation(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    if pod.is_windows() {
        return;
    }
    for c in &pod.containers {
        let value = match c
            .security_context
            .and_then(|sc| sc.allow_privilege_escalation)
        {
            Some(false) => continue,
            Some(true) => "true",
            None => UNSET,
        };
        out.push(pod.container_violation(
            "allowPrivilegeEscalation",
            c,
            "securityContext.allowPrivilegeEscalation",
            value,
        ));
    }
}

/// `runAsNonRoot: false` on the pod or a container (value `false`), and every
/// container that leaves it unset while the pod does too (value `unset`). A
/// container that inherits the pod's `false` is covered by the pod's
/// violation.
pub(super) fn run_as_non_root(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const ID: &str = "runAsNonRoot";
    const FIELD: &str = "securityContext.runAsNonRoot";
    if pod.in_user_namespace() {
        return;
    }
    let pod_level = pod.security_context().and_then(|sc| sc.run_as_non_root);
    if pod_level == Some(false) {
        out.push(pod.pod_violation(ID, FIELD, "false"));
    }
    for c in &pod.containers {
        match (
            c.security_context.and_then(|sc| sc.run_as_non_root),
            pod_level,
        ) {
            (Some(false), _) => out.push(pod.container_violation(ID, c, FIELD, "false")),
            (None, None) => out.push(pod.container_violation(ID, c, FIELD, UNSET)),
            (Some(true), _) | (None, Some(_)) => {}
        }
    }
}

/// `runAsUser: 0` on the pod or a container (value `0`).
pub(super) fn run_as_user(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const ID: &str = "runAsUser";
    const FIELD: &str = "securityContext.runAsUser";
    if pod.in_user_namespace() {
        return;
    }
    if pod.security_context().and_then(|sc| sc.run_as_user) == Some(0) {
        out.push(pod.pod_violation(ID, FIELD, "0"));
    }
    for c in &pod.containers {
        if c.security_context.and_then(|sc| sc.run_as_user) == Some(0) {
            out.push(pod.container_violation(ID, c, FIELD, "0"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    fn pod(pod_context: &str, a: &str, b: &str) -> String {
        format!(
            "apiVersion: v1\nkind: Pod\nmetadata: {{name: p}}\nspec:\n  securityContext: {pod_context}\n  \
             containers:\n  - {{name: a, securityContext: {a}}}\n  ephemeralContainers:\n  - {{name: b, securityContext: {b}}}\n"
        )
    }

    #[test]
    fn run_as_non_root_pod_level_true_covers_containers_that_do_not_override() {
        let found = violations(
            &pod("{runAsNonRoot: true}", "{}", "{runAsNonRoot: false}"),
            Level::Restricted,
        );
        assert_eq!(
            of("runAsNonRoot", &found),
            pairs(&[(
                "spec.ephemeralContainers[0].securityContext.runAsNonRoot",
                "false"
            )])
        );
        let b = found.iter().find(|v| v.control == "runAsNonRoot").unwrap();
        assert_eq!(b.container.as_deref(), Some("b"));
    }

    #[test]
    fn run_as_non_root_without_pod_level_needs_every_container() {
        let found = violations(&pod("{}", "{runAsNonRoot: true}", "{}"), Level::Restricted);
        assert_eq!(
            of("runAsNonRoot", &found),
            pairs(&[(
                "spec.ephemeralContainers[0].securityContext.runAsNonRoot",
                "unset"
            )])
        );
        assert!(
            of(
                "runAsNonRoot",
                &violations(
                    &pod("{}", "{runAsNonRoot: true}", "{runAsNonRoot: true}"),
                    Level::Restricted
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn run_as_non_root_pod_level_false_is_reported_at_the_pod_even_when_containers_override() {
        let found = violations(
            &pod("{runAsNonRoot: false}", "{runAsNonRoot: true}", "{}"),
            Level::Restricted,
        );
        assert_eq!(
            of("runAsNonRoot", &found),
            pairs(&[("spec.securityContext.runAsNonRoot", "false")])
        );
    }

    #[test]
    fn run_as_user_zero_anywhere() {
        let found = violations(
            &pod(
                "{runAsNonRoot: true, runAsUser: 0}",
                "{runAsUser: 1000}",
                "{runAsUser: 0}",
            ),
            Level::Restricted,
        );
        assert_eq!(
            of("runAsUser", &found),
            pairs(&[
                ("spec.ephemeralContainers[0].securityContext.runAsUser", "0"),
                ("spec.securityContext.runAsUser", "0"),
            ])
        );
        assert!(
            of(
                "runAsUser",
                &violations(
                    &pod("{runAsNonRoot: true, runAsUser: 0}", "{}", "{}"),
                    Level::Baseline
                )
            )
            .is_empty()
        );
    }

    #[test]
    fn user_namespaces_exempt_run_as_checks() {
        let yaml = pod("{runAsUser: 0}", "{runAsNonRoot: false}", "{}")
            .replace("spec:\n", "spec:\n  hostUsers: false\n");
        let found = violations(&yaml, Level::Restricted);
        assert!(of("runAsNonRoot", &found).is_empty());
        assert!(of("runAsUser", &found).is_empty());
    }

    #[test]
    fn allow_privilege_escalation_must_be_false() {
        let yaml = pod("{}", "{allowPrivilegeEscalation: true}", "{}").replace(
            "  containers:\n",
            "  initContainers:\n  - {name: i, securityContext: {allowPrivilegeEscalation: false}}\n  containers:\n",
        );
        let found = violations(&yaml, Level::Restricted);
        assert_eq!(
            of("allowPrivilegeEscalation", &found),
            pairs(&[
                (
                    "spec.containers[0].securityContext.allowPrivilegeEscalation",
                    "true"
                ),
                (
                    "spec.ephemeralContainers[0].securityContext.allowPrivilegeEscalation",
                    "unset"
                ),
            ])
        );
        let windows = yaml.replace("spec:\n", "spec:\n  os: {name: windows}\n");
        assert!(
            of(
                "allowPrivilegeEscalation",
                &violations(&windows, Level::Restricted)
            )
            .is_empty()
        );
    }
}
