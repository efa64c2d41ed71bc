//! Baseline controls that keep a pod off its node: `hostNamespaces`,
//! `hostPathVolumes`, `hostPorts` and `hostProbesAndHostLifecycle`.
//!
//! > **Host Namespaces.** Sharing the host namespaces must be disallowed.
//! > Restricted fields: `spec.hostNetwork`, `spec.hostPID`, `spec.hostIPC`.
//! > Allowed values: undefined/nil, `false`.
//!
//! > **HostPath Volumes.** HostPath volumes must be forbidden.
//! > Restricted fields: `spec.volumes[*].hostPath`. Allowed values:
//! > undefined/nil.
//!
//! > **Host Ports.** HostPorts should be disallowed entirely (recommended) or
//! > restricted to a known list. Restricted fields:
//! > `spec.containers[*].ports[*].hostPort` (and init and ephemeral
//! > containers). Allowed values: undefined/nil, known list, `0`.
//!
//! The "known list" is what an exception narrowed to port numbers expresses;
//! the check itself allows no port.
//!
//! > **Host Probes / Lifecycle Hooks.** The Host field in probes and lifecycle
//! > hooks must be disallowed. Restricted fields: `host` of `httpGet` and
//! > `tcpSocket` in `livenessProbe`, `readinessProbe`, `startupProbe`,
//! > `lifecycle.postStart` and `lifecycle.preStop` of every container.
//! > Allowed values: undefined/nil, `""`.

use k8s_openapi::api::core::v1::{HTTPGetAction, TCPSocketAction};

use super::{ContainerView, PodView, Violation};

/// `spec.hostNetwork`, `spec.hostPID` or `spec.hostIPC` set to `true`; the
/// value is the field's name (`hostNetwork`, `hostPID`, `hostIPC`).
pub(super) fn host_namespaces(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    let spec = pod.spec;
    for (name, set) in [
        ("hostNetwork", spec.host_network),
        ("hostPID", spec.host_pid),
        ("hostIPC", spec.host_ipc),
    ] {
        if set == Some(true) {
            out.push(pod.pod_violation("hostNamespaces", name, name));
        }
    }
}

/// Every `hostPath` volume; the value is the host path.
pub(super) fn host_path_volumes(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for (i, volume) in pod.spec.volumes.iter().flatten().enumerate() {
        if let Some(host_path) = &volume.host_path {
            out.push(pod.pod_violation(
                "hostPathVolumes",
                &format!("volumes[{i}].hostPath.path"),
                host_path.path.as_str(),
            ));
        }
    }
}

/// Every container port with a non-zero `hostPort`; the value is the port.
pub(super) fn host_ports(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        for (i, port) in c.ports.iter().enumerate() {
            if let Some(host_port) = port.host_port.filter(|&p| p != 0) {
                out.push(pod.container_violation(
                    "hostPorts",
                    c,
                    &format!("ports[{i}].hostPort"),
                    host_port.to_string(),
                ));
            }
        }
    }
}

/// Every probe or lifecycle hook whose `httpGet.host` or `tcpSocket.host` is
/// set (and not empty); the value is that host.
pub(super) fn host_probes_and_lifecycle(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        let lifecycle = c.lifecycle;
        let handlers = [
            ("livenessProbe", probe_actions(c.liveness_probe)),
            ("readinessProbe", probe_actions(c.readiness_probe)),
            ("startupProbe", probe_actions(c.startup_probe)),
            (
                "lifecycle.postStart",
                lifecycle
                    .and_then(|l| l.post_start.as_ref())
                    .map(|h| (h.http_get.as_ref(), h.tcp_socket.as_ref())),
            ),
            (
                "lifecycle.preStop",
                lifecycle
                    .and_then(|l| l.pre_stop.as_ref())
                    .map(|h| (h.http_get.as_ref(), h.tcp_socket.as_ref())),
            ),
        ];
        for (path, actions) in handlers {
            if let Some((http_get, tcp_socket)) = actions {
                report_host(
                    pod,
                    c,
                    &format!("{path}.httpGet.host"),
                    http_get.and_then(|a| a.host.as_deref()),
                    out,
                );
                report_host(
                    pod,
                    c,
                    &format!("{path}.tcpSocket.host"),
                    tcp_socket.and_then(|a| a.host.as_deref()),
                    out,
                );
            }
        }
    }
}

type Actions<'a> = (Option<&'a HTTPGetAction>, Option<&'a TCPSocketAction>);

fn probe_actions(probe: Option<&k8s_openapi::api::core::v1::Probe>) -> Option<Actions<'_>> {
    probe.map(|p| (p.http_get.as_ref(), p.tcp_socket.as_ref()))
}

fn report_host(
    pod: &PodView<'_>,
    c: &ContainerView<'_>,
    field: &str,
    host: Option<&str>,
    out: &mut Vec<Violation>,
) {
    if let Some(host) = host.filter(|h| !h.is_empty()) {
        out.push(pod.container_violation("hostProbesAndHostLifecycle", c, field, host));
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn host_namespaces_value_is_the_namespace() {
        let found = violations(
            "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  hostNetwork: true\n  hostPID: false\n  hostIPC: true\n  containers: [{name: a}]\n",
            Level::Baseline,
        );
        assert_eq!(
            of("hostNamespaces", &found),
            pairs(&[
                ("spec.hostIPC", "hostIPC"),
                ("spec.hostNetwork", "hostNetwork")
            ])
        );
        assert!(found.iter().all(|v| v.container.is_none()));
    }

    #[test]
    fn host_paths_and_ports_report_their_values() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes:
  - {name: cache, emptyDir: {}}
  - {name: logs, hostPath: {path: /var/log}}
  containers:
  - name: a
    ports:
    - {containerPort: 80}
    - {containerPort: 8080, hostPort: 8080}
    - {containerPort: 9090, hostPort: 0}
  ephemeralContainers:
  - name: dbg
    ports: [{containerPort: 53, hostPort: 53}]
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("hostPathVolumes", &found),
            pairs(&[("spec.volumes[1].hostPath.path", "/var/log")])
        );
        assert_eq!(
            of("hostPorts", &found),
            pairs(&[
                ("spec.containers[0].ports[1].hostPort", "8080"),
                ("spec.ephemeralContainers[0].ports[0].hostPort", "53"),
            ])
        );
    }

    #[test]
    fn probe_and_hook_hosts() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  initContainers:
  - name: sidecar
    restartPolicy: Always
    startupProbe: {tcpSocket: {host: "10.0.0.1", port: 22}}
  containers:
  - name: a
    livenessProbe: {httpGet: {host: "", port: 8080}}
    readinessProbe: {httpGet: {port: 8080}}
    lifecycle:
      postStart: {httpGet: {host: metadata.internal, port: 80}}
      preStop: {tcpSocket: {host: "::1", port: 80}}
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("hostProbesAndHostLifecycle", &found),
            pairs(&[
                (
                    "spec.containers[0].lifecycle.postStart.httpGet.host",
                    "metadata.internal"
                ),
                ("spec.containers[0].lifecycle.preStop.tcpSocket.host", "::1"),
                (
                    "spec.initContainers[0].startupProbe.tcpSocket.host",
                    "10.0.0.1"
                ),
            ])
        );
    }
}
