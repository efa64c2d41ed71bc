//! Baseline control `sysctls`.
//!
//! > **Sysctls.** Sysctls can disable security mechanisms or affect all
//! > containers on a host, and should be disallowed except for an allowed
//! > "safe" subset. A sysctl is considered safe if it is namespaced in the
//! > container or the Pod, and it is isolated from other Pods or processes on
//! > the same Node. Restricted fields: `spec.securityContext.sysctls[*].name`.
//!
//! Sysctls can only be set for the whole pod, so this is a pod-level control.

use super::{PodView, Violation};

/// The safe sysctls of the standard (version `latest`), with the version that
/// added each group.
const SAFE_SYSCTLS: &[&str] = &[
    // v1.0
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    // v1.27
    "net.ipv4.ip_local_reserved_ports",
    // v1.29
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
    // v1.32
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    // v1.37
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_notsent_lowat",
];

/// Every sysctl outside [`SAFE_SYSCTLS`]; the value is the sysctl's name.
pub(super) fn sysctls(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    let sysctls = pod.security_context().and_then(|sc| sc.sysctls.as_ref());
    for (i, sysctl) in sysctls.into_iter().flatten().enumerate() {
        if !SAFE_SYSCTLS.contains(&sysctl.name.as_str()) {
            out.push(pod.pod_violation(
                "sysctls",
                &format!("securityContext.sysctls[{i}].name"),
                sysctl.name.as_str(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn unsafe_sysctls_are_reported_by_name() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext:
    sysctls:
    - {name: net.ipv4.ip_local_port_range, value: "1024 65535"}
    - {name: kernel.msgmax, value: "65536"}
    - {name: net.ipv4.tcp_keepalive_time, value: "600"}
    - {name: net.core.somaxconn, value: "1024"}
  containers: [{name: a}]
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("sysctls", &found),
            pairs(&[
                ("spec.securityContext.sysctls[1].name", "kernel.msgmax"),
                ("spec.securityContext.sysctls[3].name", "net.core.somaxconn"),
            ])
        );
        assert!(found.iter().all(|v| v.container.is_none()));
    }
}
