//! The Pod Security Standards controls, evaluated on one pod (or pod template).
//!
//! "Why was my Pod denied?" Every [`Violation`] names the control that was
//! broken (its id, exactly as the upstream `pod-security-admission` project
//! names its checks), the full path of the offending field in the object you
//! submitted, and the offending value. [`lookup`] turns the id into a title and
//! a one-sentence remedy. The rule behind each control lives in one file, with
//! the text of the standard it implements:
//!
//! | Control id | Level | File |
//! | --- | --- | --- |
//! | `privileged` | baseline | `privileged.rs` |
//! | `hostNamespaces`, `hostPorts`, `hostPathVolumes`, `hostProbesAndHostLifecycle` | baseline | `host.rs` |
//! | `capabilities_baseline` / `capabilities_restricted` | baseline / restricted | `capabilities.rs` |
//! | `appArmorProfile`, `seLinuxOptions`, `seccompProfile_baseline`, `procMount` | baseline | `profiles.rs` |
//! | `seccompProfile_restricted`, `procMount_restricted` | restricted | `profiles.rs` |
//! | `sysctls` | baseline | `sysctls.rs` |
//! | `windowsHostProcess` | baseline | `windows.rs` |
//! | `restrictedVolumes` | restricted | `volumes.rs` |
//! | `allowPrivilegeEscalation`, `runAsNonRoot`, `runAsUser` | restricted | `users.rs` |
//! | `imageTagLatest`, `resourceLimits`, `imageRegistry` | opt-in extras | `extras.rs` |
//!
//! How levels combine:
//!
//! - `privileged` checks nothing (only the extras that are switched on).
//! - `baseline` runs every baseline control.
//! - `restricted` runs every baseline control *and* every restricted control
//!   ("everything from the baseline policy", says the standard). Where a
//!   restricted control tightens a baseline one (capabilities, seccomp, /proc
//!   mount, hostPath as a volume type) a field can break both; both are then
//!   reported, because each is a separate control that an exception has to
//!   name. (Upstream's admission plugin reports only the restricted one of
//!   such a pair; whether the pod is allowed is the same either way.)
//!
//! Every container counts: `containers`, `initContainers` (sidecars included)
//! and `ephemeralContainers`. Violations come back sorted by field path
//! (numerically within list indexes) and without duplicates.

mod capabilities;
mod extras;
mod host;
mod privileged;
mod profiles;
mod sysctls;
mod users;
mod volumes;
mod windows;

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use k8s_openapi::api::core::v1::{
    Container, ContainerPort, EphemeralContainer, Lifecycle, PodSecurityContext, PodSpec, Probe,
    ResourceRequirements, SecurityContext,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// Pod Security Standards level.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, serde::Serialize, serde::Deserialize,
)]
#[serde(rename_all = "lowercase")]
pub enum Level {
    /// Unrestricted: nothing is checked.
    Privileged,
    /// Prevents known privilege escalations; allows the default pod.
    Baseline,
    /// Current pod hardening best practice; includes every baseline control.
    Restricted,
}

impl Level {
    /// Every level, least restrictive first.
    pub const ALL: [Level; 3] = [Level::Privileged, Level::Baseline, Level::Restricted];

    /// The level as the Pod Security Admission labels spell it
    /// (`privileged`, `baseline`, `restricted`).
    pub fn as_str(self) -> &'static str {
        match self {
            Level::Privileged => "privileged",
            Level::Baseline => "baseline",
            Level::Restricted => "restricted",
        }
    }
}

impl fmt::Display for Level {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A string that is not a Pod Security Standards level.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "unknown Pod Security Standards level {0:?}: expected one of privileged, baseline, restricted"
)]
pub struct ParseLevelError(pub String);

impl FromStr for Level {
    type Err = ParseLevelError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Level::ALL
            .into_iter()
            .find(|level| level.as_str() == s)
            .ok_or_else(|| ParseLevelError(s.to_string()))
    }
}

/// One violation of one control.
#[derive(Clone, Debug, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Violation {
    /// The control id exactly as upstream names it, e.g. `capabilities_baseline`.
    pub control: &'static str,
    /// The container's name when the violation is in a container (or in an
    /// annotation naming one); `None` for pod-level fields.
    pub container: Option<String>,
    /// The full path of the offending field in the submitted object, e.g.
    /// `spec.template.spec.containers[1].securityContext.capabilities.add[0]`.
    pub field: String,
    /// The offending value, e.g. `NET_ADMIN`, `8080`, `/var/log`,
    /// `hostNetwork`, `true`, `Unconfined`, `0`; `unset` when a required field
    /// is missing. For controls that take values this is what an exception's
    /// `values` list narrows to.
    pub value: String,
}

/// Options for the opt-in extra controls (all off by default).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Extras {
    /// Check `imageTagLatest`: images tagged `latest`, or neither tagged nor
    /// pinned by digest.
    pub image_tag_latest: bool,
    /// Check `resourceLimits`: containers without a cpu or memory limit.
    pub resource_limits: bool,
    /// Check `imageRegistry`: images pulled from a registry not in this list
    /// (host names such as `registry.example.com` or `docker.io`, compared
    /// case-insensitively). Empty switches the check off.
    pub allowed_registries: Vec<String>,
}

/// What the catalog knows about one control id.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ControlInfo {
    /// The control id (stable forever).
    pub id: &'static str,
    /// The Pod Security Standards level that introduces the control; `None`
    /// for the opt-in extras, which run at any level when switched on.
    pub level: Option<Level>,
    /// A short human title.
    pub title: &'static str,
    /// Whether violations carry a value that an exception may narrow to (a
    /// capability, a port, a path, ...). Other controls are all or nothing.
    pub takes_values: bool,
    /// One sentence: how to fix a violation.
    pub remedy: &'static str,
}

/// Every control id an exception may name (besides vulnerability ids): the
/// baseline controls, the restricted controls, then the opt-in extras.
pub const CATALOG: &[ControlInfo] = &[
    // Baseline.
    ControlInfo {
        id: "privileged",
        level: Some(Level::Baseline),
        title: "Privileged containers",
        takes_values: false,
        remedy: "Remove securityContext.privileged, or set it to false, on every container.",
    },
    ControlInfo {
        id: "hostNamespaces",
        level: Some(Level::Baseline),
        title: "Host namespaces",
        takes_values: true,
        remedy: "Remove hostNetwork, hostPID and hostIPC from the pod spec, or set them to false.",
    },
    ControlInfo {
        id: "hostPathVolumes",
        level: Some(Level::Baseline),
        title: "HostPath volumes",
        takes_values: true,
        remedy: "Replace hostPath volumes with emptyDir, configMap, secret or persistentVolumeClaim volumes.",
    },
    ControlInfo {
        id: "hostPorts",
        level: Some(Level::Baseline),
        title: "Host ports",
        takes_values: true,
        remedy: "Remove hostPort from container ports (or set it to 0) and expose the port through a Service.",
    },
    ControlInfo {
        id: "capabilities_baseline",
        level: Some(Level::Baseline),
        title: "Capabilities beyond the default set",
        takes_values: true,
        remedy: "Add only default capabilities (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, \
                 MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT) in capabilities.add.",
    },
    ControlInfo {
        id: "appArmorProfile",
        level: Some(Level::Baseline),
        title: "AppArmor profile overridden or disabled",
        takes_values: true,
        remedy: "Set appArmorProfile.type to RuntimeDefault or Localhost (or leave it unset), and AppArmor \
                 annotations only to runtime/default or localhost/<profile>.",
    },
    ControlInfo {
        id: "seLinuxOptions",
        level: Some(Level::Baseline),
        title: "Custom SELinux options",
        takes_values: true,
        remedy: "Leave seLinuxOptions.user and .role unset, and set .type only to container_t, \
                 container_init_t, container_kvm_t or container_engine_t.",
    },
    ControlInfo {
        id: "procMount",
        level: Some(Level::Baseline),
        title: "Unmasked /proc mount",
        takes_values: false,
        remedy: "Remove securityContext.procMount or set it to Default (baseline allows Unmasked only for \
                 pods with hostUsers: false).",
    },
    ControlInfo {
        id: "seccompProfile_baseline",
        level: Some(Level::Baseline),
        title: "Seccomp disabled",
        takes_values: false,
        remedy: "Set seccompProfile.type to RuntimeDefault or Localhost, or leave it unset; never Unconfined.",
    },
    ControlInfo {
        id: "sysctls",
        level: Some(Level::Baseline),
        title: "Unsafe sysctls",
        takes_values: true,
        remedy: "Set only the standard's safe, namespaced sysctls (such as net.ipv4.ip_local_port_range or \
                 net.ipv4.tcp_keepalive_time) in securityContext.sysctls.",
    },
    ControlInfo {
        id: "windowsHostProcess",
        level: Some(Level::Baseline),
        title: "Windows HostProcess containers",
        takes_values: false,
        remedy: "Remove windowsOptions.hostProcess, or set it to false, on the pod and every container.",
    },
    ControlInfo {
        id: "hostProbesAndHostLifecycle",
        level: Some(Level::Baseline),
        title: "Probes and lifecycle hooks aimed at another host",
        takes_values: true,
        remedy: "Remove the host field from httpGet and tcpSocket probes and lifecycle hooks, so they \
                 target the pod itself.",
    },
    // Restricted.
    ControlInfo {
        id: "restrictedVolumes",
        level: Some(Level::Restricted),
        title: "Volume types outside the core set",
        takes_values: true,
        remedy: "Use only configMap, csi, downwardAPI, emptyDir, ephemeral, image, persistentVolumeClaim, \
                 projected or secret volumes; reach other storage through a PersistentVolumeClaim.",
    },
    ControlInfo {
        id: "allowPrivilegeEscalation",
        level: Some(Level::Restricted),
        title: "Privilege escalation allowed",
        takes_values: false,
        remedy: "Set securityContext.allowPrivilegeEscalation: false on every container.",
    },
    ControlInfo {
        id: "runAsNonRoot",
        level: Some(Level::Restricted),
        title: "Not required to run as non-root",
        takes_values: false,
        remedy: "Set securityContext.runAsNonRoot: true on the pod (or on every container), and never false.",
    },
    ControlInfo {
        id: "runAsUser",
        level: Some(Level::Restricted),
        title: "Running as UID 0",
        takes_values: false,
        remedy: "Remove runAsUser: 0 from the pod and its containers; run as a non-zero UID.",
    },
    ControlInfo {
        id: "seccompProfile_restricted",
        level: Some(Level::Restricted),
        title: "Seccomp profile not required",
        takes_values: false,
        remedy: "Set securityContext.seccompProfile.type to RuntimeDefault or Localhost on the pod (or on \
                 every container).",
    },
    ControlInfo {
        id: "capabilities_restricted",
        level: Some(Level::Restricted),
        title: "Capabilities not dropped",
        takes_values: true,
        remedy: "Drop ALL capabilities (capabilities.drop: [ALL]) and add back at most NET_BIND_SERVICE.",
    },
    ControlInfo {
        id: "procMount_restricted",
        level: Some(Level::Restricted),
        title: "Unmasked /proc mount (even in a user namespace)",
        takes_values: false,
        remedy: "Remove securityContext.procMount or set it to Default, even for pods with hostUsers: false.",
    },
    // Opt-in extras.
    ControlInfo {
        id: "imageTagLatest",
        level: None,
        title: "Image not pinned (tag latest or no tag)",
        takes_values: false,
        remedy: "Pin the image to a specific version tag or, better, a digest (name@sha256:...).",
    },
    ControlInfo {
        id: "resourceLimits",
        level: None,
        title: "Missing cpu or memory limit",
        takes_values: true,
        remedy: "Set resources.limits.cpu and resources.limits.memory on every container (or pod-level \
                 resource limits).",
    },
    ControlInfo {
        id: "imageRegistry",
        level: None,
        title: "Image from a registry outside the allow-list",
        takes_values: true,
        remedy: "Pull the image from one of the allowed registries (mirror it there if needed).",
    },
];

/// The catalog entry of a control id, if it is one.
pub fn lookup(id: &str) -> Option<&'static ControlInfo> {
    CATALOG.iter().find(|info| info.id == id)
}

/// Whether `id` is a vulnerability id rather than a catalog control:
/// `CVE-YYYY-NNNN` (four or more digits after the year) or a GitHub advisory
/// id `GHSA-xxxx-xxxx-xxxx` (each group four characters of
/// `23456789cfghjmpqrvwx`).
pub fn is_vulnerability_id(id: &str) -> bool {
    fn digits(s: &str) -> bool {
        !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
    }
    if let Some(rest) = id.strip_prefix("CVE-") {
        return match rest.split_once('-') {
            Some((year, number)) => {
                year.len() == 4 && digits(year) && number.len() >= 4 && digits(number)
            }
            None => false,
        };
    }
    if let Some(rest) = id.strip_prefix("GHSA-") {
        const ALPHABET: &[u8] = b"23456789cfghjmpqrvwx";
        let groups: Vec<&str> = rest.split('-').collect();
        return groups.len() == 3
            && groups
                .iter()
                .all(|g| g.len() == 4 && g.bytes().all(|b| ALPHABET.contains(&b)));
    }
    false
}

/// Evaluate one pod (or pod template).
///
/// `metadata` is the pod's (or template's) metadata and `spec` its PodSpec.
/// `field_prefix` is the path to the PodSpec in the submitted object (`spec`
/// for a Pod, `spec.template.spec` for a Deployment,
/// `spec.jobTemplate.spec.template.spec` for a CronJob) and `metadata_prefix`
/// likewise for the metadata (`metadata`, `spec.template.metadata`); they only
/// shape [`Violation::field`].
///
/// Returns every violation at `level` plus those of the enabled `extras`,
/// sorted by field path, without duplicates. Empty means allowed.
pub fn evaluate(
    metadata: &ObjectMeta,
    spec: &PodSpec,
    level: Level,
    extras: &Extras,
    field_prefix: &str,
    metadata_prefix: &str,
) -> Vec<Violation> {
    let pod = PodView::new(metadata, spec, field_prefix, metadata_prefix);
    let mut out = Vec::new();
    // Every check belongs to baseline or restricted, so `privileged` runs none.
    for (id, control_level, check) in CHECKS {
        if level >= *control_level {
            let before = out.len();
            check(&pod, &mut out);
            debug_assert!(out[before..].iter().all(|v| v.control == *id));
        }
    }
    if extras.image_tag_latest {
        extras::image_tag_latest(&pod, &mut out);
    }
    if extras.resource_limits {
        extras::resource_limits(&pod, &mut out);
    }
    if !extras.allowed_registries.is_empty() {
        extras::image_registry(&pod, &extras.allowed_registries, &mut out);
    }
    out.sort_by(|a, b| {
        natural_cmp(&a.field, &b.field)
            .then_with(|| a.control.cmp(b.control))
            .then_with(|| a.value.cmp(&b.value))
            .then_with(|| a.container.cmp(&b.container))
    });
    out.dedup();
    out
}

/// One control's check: appends its violations (and only its own) to `out`.
type CheckFn = fn(&PodView<'_>, &mut Vec<Violation>);

/// The Pod Security Standards checks, in catalog order, with the level that
/// introduces each.
const CHECKS: &[(&str, Level, CheckFn)] = &[
    ("privileged", Level::Baseline, privileged::privileged),
    ("hostNamespaces", Level::Baseline, host::host_namespaces),
    ("hostPathVolumes", Level::Baseline, host::host_path_volumes),
    ("hostPorts", Level::Baseline, host::host_ports),
    (
        "capabilities_baseline",
        Level::Baseline,
        capabilities::baseline,
    ),
    (
        "appArmorProfile",
        Level::Baseline,
        profiles::app_armor_profile,
    ),
    (
        "seLinuxOptions",
        Level::Baseline,
        profiles::se_linux_options,
    ),
    ("procMount", Level::Baseline, profiles::proc_mount_baseline),
    (
        "seccompProfile_baseline",
        Level::Baseline,
        profiles::seccomp_baseline,
    ),
    ("sysctls", Level::Baseline, sysctls::sysctls),
    ("windowsHostProcess", Level::Baseline, windows::host_process),
    (
        "hostProbesAndHostLifecycle",
        Level::Baseline,
        host::host_probes_and_lifecycle,
    ),
    (
        "restrictedVolumes",
        Level::Restricted,
        volumes::restricted_volumes,
    ),
    (
        "allowPrivilegeEscalation",
        Level::Restricted,
        users::allow_privilege_escalation,
    ),
    ("runAsNonRoot", Level::Restricted, users::run_as_non_root),
    ("runAsUser", Level::Restricted, users::run_as_user),
    (
        "seccompProfile_restricted",
        Level::Restricted,
        profiles::seccomp_restricted,
    ),
    (
        "capabilities_restricted",
        Level::Restricted,
        capabilities::restricted,
    ),
    (
        "procMount_restricted",
        Level::Restricted,
        profiles::proc_mount_restricted,
    ),
];

/// The value reported when a field the standard requires is missing.
const UNSET: &str = "unset";

/// A pod as the checks see it: its metadata and spec, where they sit in the
/// submitted object, and every container of every kind.
struct PodView<'a> {
    metadata: &'a ObjectMeta,
    spec: &'a PodSpec,
    field_prefix: &'a str,
    metadata_prefix: &'a str,
    containers: Vec<ContainerView<'a>>,
}

impl<'a> PodView<'a> {
    fn new(
        metadata: &'a ObjectMeta,
        spec: &'a PodSpec,
        field_prefix: &'a str,
        metadata_prefix: &'a str,
    ) -> Self {
        let init = spec.init_containers.iter().flatten().enumerate();
        let regular = spec.containers.iter().enumerate();
        let ephemeral = spec.ephemeral_containers.iter().flatten().enumerate();
        let containers = init
            .map(|(i, c)| ContainerView::from_container(ContainerKind::Init, i, c))
            .chain(
                regular.map(|(i, c)| ContainerView::from_container(ContainerKind::Regular, i, c)),
            )
            .chain(ephemeral.map(|(i, c)| ContainerView::from_ephemeral(i, c)))
            .collect();
        PodView {
            metadata,
            spec,
            field_prefix,
            metadata_prefix,
            containers,
        }
    }

    /// The pod-level security context, if any.
    fn security_context(&self) -> Option<&'a PodSecurityContext> {
        self.spec.security_context.as_ref()
    }

    /// Whether the pod declares itself a Windows pod (`spec.os.name:
    /// windows`); the standard exempts those from its Linux-only controls.
    fn is_windows(&self) -> bool {
        self.spec.os.as_ref().is_some_and(|os| os.name == "windows")
    }

    /// Whether the pod runs in its own user namespace (`spec.hostUsers:
    /// false`); some controls relax for those.
    fn in_user_namespace(&self) -> bool {
        self.spec.host_users == Some(false)
    }

    /// The full path of a pod-spec field, e.g. `hostNetwork` →
    /// `spec.template.spec.hostNetwork`.
    fn spec_field(&self, relative: &str) -> String {
        join_path(self.field_prefix, relative)
    }

    /// The full path of a metadata field, e.g. `annotations['x']`.
    fn metadata_field(&self, relative: &str) -> String {
        join_path(self.metadata_prefix, relative)
    }

    /// A violation of a pod-level field.
    fn pod_violation(
        &self,
        control: &'static str,
        relative: &str,
        value: impl Into<String>,
    ) -> Violation {
        Violation {
            control,
            container: None,
            field: self.spec_field(relative),
            value: value.into(),
        }
    }

    /// A violation of a field of container `c`.
    fn container_violation(
        &self,
        control: &'static str,
        c: &ContainerView<'_>,
        relative: &str,
        value: impl Into<String>,
    ) -> Violation {
        Violation {
            control,
            container: Some(c.name.to_string()),
            field: self.spec_field(&format!("{}[{}].{relative}", c.kind.list_name(), c.index)),
            value: value.into(),
        }
    }
}

/// Which list of the PodSpec a container comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum ContainerKind {
    Init,
    Regular,
    Ephemeral,
}

impl ContainerKind {
    /// The PodSpec field holding containers of this kind.
    fn list_name(self) -> &'static str {
        match self {
            ContainerKind::Init => "initContainers",
            ContainerKind::Regular => "containers",
            ContainerKind::Ephemeral => "ephemeralContainers",
        }
    }
}

/// The fields the checks read from any kind of container (`Container` and
/// `EphemeralContainer` are distinct types with the same fields).
struct ContainerView<'a> {
    kind: ContainerKind,
    index: usize,
    name: &'a str,
    image: Option<&'a str>,
    security_context: Option<&'a SecurityContext>,
    ports: &'a [ContainerPort],
    liveness_probe: Option<&'a Probe>,
    readiness_probe: Option<&'a Probe>,
    startup_probe: Option<&'a Probe>,
    lifecycle: Option<&'a Lifecycle>,
    resources: Option<&'a ResourceRequirements>,
}

impl<'a> ContainerView<'a> {
    fn from_container(kind: ContainerKind, index: usize, c: &'a Container) -> Self {
        ContainerView {
            kind,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
            resources: c.resources.as_ref(),
        }
    }

    fn from_ephemeral(index: usize, c: &'a EphemeralContainer) -> Self {
        ContainerView {
            kind: ContainerKind::Ephemeral,
            index,
            name: &c.name,
            image: c.image.as_deref(),
            security_context: c.security_context.as_ref(),
            ports: c.ports.as_deref().unwrap_or_default(),
            liveness_probe: c.liveness_probe.as_ref(),
            readiness_probe: c.readiness_probe.as_ref(),
            startup_probe: c.startup_probe.as_ref(),
            lifecycle: c.lifecycle.as_ref(),
            resources: c.resources.as_ref(),
        }
    }
}

/// `prefix.relative`, or just `relative` when there is no prefix.
fn join_path(prefix: &str, relative: &str) -> String {
    if prefix.is_empty() {
        relative.to_string()
    } else {
        format!("{prefix}.{relative}")
    }
}

/// Compares field paths so that list indexes sort numerically
/// (`containers[2]` before `containers[10]`).
fn natural_cmp(a: &str, b: &str) -> Ordering {
    let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
    loop {
        match (a.first(), b.first()) {
            (None, None) => return Ordering::Equal,
            (None, Some(_)) => return Ordering::Less,
            (Some(_), None) => return Ordering::Greater,
            (Some(x), Some(y)) if x.is_ascii_digit() && y.is_ascii_digit() => {
                let a_len = a.iter().take_while(|c| c.is_ascii_digit()).count();
                let b_len = b.iter().take_while(|c| c.is_ascii_digit()).count();
                let (a_num, b_num) = (trim_zeros(&a[..a_len]), trim_zeros(&b[..b_len]));
                let order = a_num.len().cmp(&b_num.len()).then_with(|| a_num.cmp(b_num));
                if order != Ordering::Equal {
                    return order;
                }
                a = &a[a_len..];
                b = &b[b_len..];
            }
            (Some(x), Some(y)) => {
                if x != y {
                    return x.cmp(y);
                }
                a = &a[1..];
                b = &b[1..];
            }
        }
    }
}

fn trim_zeros(digits: &[u8]) -> &[u8] {
    let zeros = digits.iter().take_while(|&&d| d == b'0').count();
    &digits[zeros..]
}

#[cfg(test)]
pub(crate) mod test_support {
    //! Helpers for the unit tests of every check family.

    use k8s_openapi::api::core::v1::Pod;

    use super::{Extras, Level, Violation, evaluate};

    /// A Pod from a YAML manifest.
    pub fn pod(yaml: &str) -> Pod {
        serde_saphyr::from_str(yaml).unwrap()
    }

    /// The violations of a Pod manifest at `level`, without extras.
    pub fn violations(yaml: &str, level: Level) -> Vec<Violation> {
        let pod = pod(yaml);
        evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            level,
            &Extras::default(),
            "spec",
            "metadata",
        )
    }

    /// The violations of one control, as `(field, value)` pairs.
    pub fn of(control: &str, violations: &[Violation]) -> Vec<(String, String)> {
        violations
            .iter()
            .filter(|v| v.control == control)
            .map(|v| (v.field.clone(), v.value.clone()))
            .collect()
    }

    /// `(field, value)` pairs from string literals.
    pub fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
        expected
            .iter()
            .map(|(f, v)| (f.to_string(), v.to_string()))
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::test_support::{pairs, pod, violations};
    use super::*;

    #[test]
    fn takes_values_is_exactly_the_api_list() {
        let catalog: BTreeSet<&str> = CATALOG
            .iter()
            .filter(|c| c.takes_values)
            .map(|c| c.id)
            .collect();
        let api: BTreeSet<&str> = crate::api::CONTROLS_TAKING_VALUES.iter().copied().collect();
        assert_eq!(catalog, api);
    }

    #[test]
    fn catalog_ids_are_unique_and_match_the_api_pattern() {
        let ids: BTreeSet<&str> = CATALOG.iter().map(|c| c.id).collect();
        assert_eq!(ids.len(), CATALOG.len());
        for id in ids {
            assert!(
                id.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                    && id.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
                "{id} does not fit CONTROL_ID_PATTERN"
            );
            assert!(!is_vulnerability_id(id));
        }
    }

    #[test]
    fn every_standard_control_has_exactly_one_check() {
        let standard: Vec<(&str, Level)> = CATALOG
            .iter()
            .filter_map(|c| c.level.map(|level| (c.id, level)))
            .collect();
        let checks: Vec<(&str, Level)> =
            CHECKS.iter().map(|(id, level, _)| (*id, *level)).collect();
        assert_eq!(standard, checks);
        assert_eq!(
            CATALOG
                .iter()
                .filter(|c| c.level.is_none())
                .map(|c| c.id)
                .collect::<Vec<_>>(),
            ["imageTagLatest", "resourceLimits", "imageRegistry"]
        );
    }

    #[test]
    fn remedies_are_one_sentence() {
        for c in CATALOG {
            assert!(c.remedy.ends_with('.'), "{}", c.id);
            assert!(!c.remedy.contains("  "), "{}: {:?}", c.id, c.remedy);
            assert!(!c.title.is_empty());
        }
    }

    #[test]
    fn lookup_finds_catalog_ids_only() {
        assert_eq!(
            lookup("hostPorts").map(|c| c.level),
            Some(Some(Level::Baseline))
        );
        assert_eq!(
            lookup("runAsNonRoot").map(|c| c.level),
            Some(Some(Level::Restricted))
        );
        assert_eq!(lookup("imageRegistry").map(|c| c.level), Some(None));
        assert!(lookup("hostports").is_none());
        assert!(lookup("CVE-2024-3094").is_none());
    }

    #[test]
    fn vulnerability_ids() {
        for id in [
            "CVE-2024-3094",
            "CVE-2021-44228",
            "CVE-2024-1234567",
            "GHSA-jfh8-c2jp-5v3q",
            "GHSA-2345-6789-wxcf",
        ] {
            assert!(is_vulnerability_id(id), "{id}");
        }
        for id in [
            "CVE-2024-123",
            "CVE-24-1234",
            "cve-2024-3094",
            "CVE-2024-3094a",
            "CVE-2024",
            "GHSA-jfh8-c2jp",
            "GHSA-jfh8-c2jp-5v3q-aaaa",
            "GHSA-JFH8-C2JP-5V3Q",
            "GHSA-abcd-c2jp-5v3q",
            "GHSA-1fh8-c2jp-5v3q",
            "privileged",
        ] {
            assert!(!is_vulnerability_id(id), "{id}");
        }
    }

    #[test]
    fn level_parses_and_prints_lower_case() {
        for level in Level::ALL {
            assert_eq!(level.to_string().parse::<Level>(), Ok(level));
            assert_eq!(
                serde_json::to_value(level).unwrap(),
                serde_json::json!(level.as_str())
            );
        }
        let err = "Baseline".parse::<Level>().unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("privileged, baseline, restricted"),
            "{message}"
        );
        assert!(Level::Privileged < Level::Baseline && Level::Baseline < Level::Restricted);
        assert_eq!(
            serde_json::from_value::<Level>(serde_json::json!("restricted")).unwrap(),
            Level::Restricted
        );
    }

    const EVERYTHING_WRONG: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  hostNetwork: true
  containers:
  - name: app
    image: nginx
    securityContext: {privileged: true}
"#;

    #[test]
    fn privileged_level_checks_nothing_but_extras() {
        assert!(violations(EVERYTHING_WRONG, Level::Privileged).is_empty());
        let pod = pod(EVERYTHING_WRONG);
        let extras = Extras {
            image_tag_latest: true,
            ..Extras::default()
        };
        let found = evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            Level::Privileged,
            &extras,
            "spec",
            "metadata",
        );
        assert_eq!(
            found.iter().map(|v| v.control).collect::<Vec<_>>(),
            ["imageTagLatest"]
        );
    }

    #[test]
    fn restricted_includes_baseline() {
        let baseline = violations(EVERYTHING_WRONG, Level::Baseline);
        let restricted = violations(EVERYTHING_WRONG, Level::Restricted);
        assert!(!baseline.is_empty());
        for v in &baseline {
            assert!(restricted.contains(v), "{v:?} missing at restricted");
        }
        assert!(restricted.len() > baseline.len());
        assert!(restricted.iter().any(|v| v.control == "runAsNonRoot"));
    }

    #[test]
    fn sorted_by_field_path_with_numeric_indexes() {
        let mut yaml =
            String::from("apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n");
        for i in 0..12 {
            yaml.push_str(&format!(
                "  - name: c{i}\n    securityContext: {{privileged: true}}\n"
            ));
        }
        let found = violations(&yaml, Level::Baseline);
        let names: Vec<String> = found.iter().filter_map(|v| v.container.clone()).collect();
        let expected: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        assert_eq!(names, expected);
        assert_eq!(
            found[10].field,
            "spec.containers[10].securityContext.privileged"
        );
    }

    #[test]
    fn natural_order() {
        assert_eq!(natural_cmp("a[2]", "a[10]"), Ordering::Less);
        assert_eq!(natural_cmp("a[10].b", "a[10].c"), Ordering::Less);
        assert_eq!(natural_cmp("a[007]", "a[7]"), Ordering::Equal);
        assert_eq!(natural_cmp("a", "a[0]"), Ordering::Less);
        assert_eq!(natural_cmp("metadata.x", "spec.x"), Ordering::Less);
    }

    #[test]
    fn empty_prefixes_give_relative_paths() {
        let pod = pod(EVERYTHING_WRONG);
        let found = evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            Level::Baseline,
            &Extras::default(),
            "",
            "",
        );
        assert_eq!(
            found
                .iter()
                .map(|v| (v.field.as_str(), v.value.as_str()))
                .collect::<Vec<_>>(),
            [
                ("containers[0].securityContext.privileged", "true"),
                ("hostNetwork", "hostNetwork")
            ]
        );
    }

    #[test]
    fn default_pod_is_baseline_but_not_restricted() {
        let yaml = "apiVersion: v1\nkind: Pod\nmetadata: {name: p}\nspec:\n  containers:\n  - {name: app, image: nginx:1.27}\n";
        assert!(violations(yaml, Level::Baseline).is_empty());
        let restricted = violations(yaml, Level::Restricted);
        let controls: BTreeSet<&str> = restricted.iter().map(|v| v.control).collect();
        assert_eq!(
            controls,
            BTreeSet::from([
                "allowPrivilegeEscalation",
                "capabilities_restricted",
                "runAsNonRoot",
                "seccompProfile_restricted"
            ])
        );
        assert_eq!(
            super::test_support::of("runAsNonRoot", &restricted),
            pairs(&[("spec.containers[0].securityContext.runAsNonRoot", "unset")])
        );
    }
}
