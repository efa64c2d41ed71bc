//! Controls `capabilities_baseline` and `capabilities_restricted`.
//!
//! > **Capabilities (baseline).** Adding additional capabilities beyond those
//! > listed below must be disallowed. Restricted fields:
//! > `spec.containers[*].securityContext.capabilities.add` (and init and
//! > ephemeral containers). Allowed values: undefined/nil, `AUDIT_WRITE`,
//! > `CHOWN`, `DAC_OVERRIDE`, `FOWNER`, `FSETID`, `KILL`, `MKNOD`,
//! > `NET_BIND_SERVICE`, `SETFCAP`, `SETGID`, `SETPCAP`, `SETUID`,
//! > `SYS_CHROOT`.
//!
//! > **Capabilities (restricted).** Containers must drop `ALL` capabilities,
//! > and are only permitted to add back the `NET_BIND_SERVICE` capability.
//! > This is a Linux-only policy (`spec.os.name != windows`).
//!
//! Capability names are compared exactly as written: `chown` and
//! `CAP_CHOWN` are not `CHOWN`. An added capability outside the baseline list
//! breaks both controls at level restricted, and is reported under both.

use super::{PodView, Violation};

/// The capabilities a container may add at level baseline (the container
/// runtime's default set).
const BASELINE_ALLOWED: &[&str] = &[
    "AUDIT_WRITE",
    "CHOWN",
    "DAC_OVERRIDE",
    "FOWNER",
    "FSETID",
    "KILL",
    "MKNOD",
    "NET_BIND_SERVICE",
    "SETFCAP",
    "SETGID",
    "SETPCAP",
    "SETUID",
    "SYS_CHROOT",
];

/// The only capability a container may add back at level restricted.
const RESTRICTED_ALLOWED: &str = "NET_BIND_SERVICE";

/// Every added capability outside [`BASELINE_ALLOWED`]; the value is the
/// capability as written.
pub(super) fn baseline(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        let added = c
            .security_context
            .and_then(|sc| sc.capabilities.as_ref())
            .and_then(|caps| caps.add.as_ref());
        for (i, cap) in added.into_iter().flatten().enumerate() {
            if !BASELINE_ALLOWED.contains(&cap.as_str()) {
                out.push(pod.container_violation(
                    "capabilities_baseline",
                    c,
                    &format!("securityContext.capabilities.add[{i}]"),
                    cap.as_str(),
                ));
            }
        }
    }
}

/// Every container that does not drop `ALL` (value `ALL`, at
/// `capabilities.drop`), and every added capability other than
/// `NET_BIND_SERVICE` (value the capability). Windows pods are exempt.
pub(super) fn restricted(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    if pod.is_windows() {
        return;
    }
    for c in &pod.containers {
        let caps = c.security_context.and_then(|sc| sc.capabilities.as_ref());
        let drops_all = caps
            .and_then(|caps| caps.drop.as_ref())
            .is_some_and(|drop| drop.iter().any(|d| d == "ALL"));
        if !drops_all {
            out.push(pod.container_violation(
                "capabilities_restricted",
                c,
                "securityContext.capabilities.drop",
                "ALL",
            ));
        }
        let added = caps.and_then(|caps| caps.add.as_ref());
        for (i, cap) in added.into_iter().flatten().enumerate() {
            if cap != RESTRICTED_ALLOWED {
                out.push(pod.container_violation(
                    "capabilities_restricted",
                    c,
                    &format!("securityContext.capabilities.add[{i}]"),
                    cap.as_str(),
                ));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    const POD: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    securityContext:
      capabilities:
        add: [NET_BIND_SERVICE, CHOWN, NET_ADMIN, chown]
        drop: [ALL]
  - name: b
    securityContext:
      capabilities: {drop: [NET_RAW]}
  ephemeralContainers:
  - name: dbg
    securityContext:
      capabilities: {add: [SYS_PTRACE]}
"#;

    #[test]
    fn baseline_reports_caps_outside_the_default_set_as_written() {
        let found = violations(POD, Level::Baseline);
        assert_eq!(
            of("capabilities_baseline", &found),
            pairs(&[
                (
                    "spec.containers[0].securityContext.capabilities.add[2]",
                    "NET_ADMIN"
                ),
                (
                    "spec.containers[0].securityContext.capabilities.add[3]",
                    "chown"
                ),
                (
                    "spec.ephemeralContainers[0].securityContext.capabilities.add[0]",
                    "SYS_PTRACE"
                ),
            ])
        );
        assert!(of("capabilities_restricted", &found).is_empty());
    }

    #[test]
    fn restricted_requires_drop_all_and_only_net_bind_service() {
        let found = violations(POD, Level::Restricted);
        assert_eq!(
            of("capabilities_restricted", &found),
            pairs(&[
                (
                    "spec.containers[0].securityContext.capabilities.add[1]",
                    "CHOWN"
                ),
                (
                    "spec.containers[0].securityContext.capabilities.add[2]",
                    "NET_ADMIN"
                ),
                (
                    "spec.containers[0].securityContext.capabilities.add[3]",
                    "chown"
                ),
                (
                    "spec.containers[1].securityContext.capabilities.drop",
                    "ALL"
                ),
                (
                    "spec.ephemeralContainers[0].securityContext.capabilities.add[0]",
                    "SYS_PTRACE"
                ),
                (
                    "spec.ephemeralContainers[0].securityContext.capabilities.drop",
                    "ALL"
                ),
            ])
        );
        // The baseline control still runs at restricted.
        assert_eq!(of("capabilities_baseline", &found).len(), 3);
    }

    #[test]
    fn windows_pods_are_exempt_from_the_restricted_control_only() {
        let windows = POD.replace("spec:\n", "spec:\n  os: {name: windows}\n");
        let found = violations(&windows, Level::Restricted);
        assert!(of("capabilities_restricted", &found).is_empty());
        assert_eq!(of("capabilities_baseline", &found).len(), 3);
    }
}
