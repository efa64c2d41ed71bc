//! Baseline control `windowsHostProcess`.
//!
//! > **HostProcess.** Windows Pods offer the ability to run HostProcess
//! > containers which enables privileged access to the Windows host machine.
//! > Privileged access to the host is disallowed in the baseline policy.
//! > Restricted fields: `spec.securityContext.windowsOptions.hostProcess`,
//! > `spec.containers[*].securityContext.windowsOptions.hostProcess` (and init
//! > and ephemeral containers). Allowed values: undefined/nil, `false`.

use super::{PodView, Violation};

const ID: &str = "windowsHostProcess";

/// `windowsOptions.hostProcess: true` on the pod or any container (value
/// `true`).
pub(super) fn host_process(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const FIELD: &str = "securityContext.windowsOptions.hostProcess";
    let pod_level = pod
        .security_context()
        .and_then(|sc| sc.windows_options.as_ref())
        .and_then(|w| w.host_process);
    if pod_level == Some(true) {
        out.push(pod.pod_violation(ID, FIELD, "true"));
    }
    for c in &pod.containers {
        let container_level = c
            .security_context
            .and_then(|sc| sc.windows_options.as_ref())
            .and_then(|w| w.host_process);
        if container_level == Some(true) {
            out.push(pod.container_violation(ID, c, FIELD, "true"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn pod_and_container_host_process() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  os: {name: windows}
  hostNetwork: true
  securityContext:
    windowsOptions: {hostProcess: true}
  containers:
  - name: a
    securityContext: {windowsOptions: {hostProcess: false}}
  ephemeralContainers:
  - name: dbg
    securityContext: {windowsOptions: {hostProcess: true}}
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("windowsHostProcess", &found),
            pairs(&[
                (
                    "spec.ephemeralContainers[0].securityContext.windowsOptions.hostProcess",
                    "true"
                ),
                ("spec.securityContext.windowsOptions.hostProcess", "true"),
            ])
        );
    }
}
