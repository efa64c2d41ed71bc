//! Controls on the kernel security profiles of a pod: `appArmorProfile`,
//! `seLinuxOptions`, `seccompProfile_baseline`, `seccompProfile_restricted`,
//! `procMount` and `procMount_restricted`.
//!
//! > **AppArmor (baseline).** On supported hosts, the `RuntimeDefault`
//! > AppArmor profile is applied by default. The baseline policy should
//! > prevent overriding or disabling the default AppArmor profile, or restrict
//! > overrides to an allowed set of profiles. Restricted fields:
//! > `spec.securityContext.appArmorProfile.type`,
//! > `spec.containers[*].securityContext.appArmorProfile.type` (and init and
//! > ephemeral containers), `metadata.annotations["container.apparmor.security.beta.kubernetes.io/*"]`.
//! > Allowed values: undefined/nil, `RuntimeDefault`, `Localhost`; for the
//! > annotations undefined, `runtime/default`, `localhost/*`.
//!
//! > **SELinux (baseline).** Setting the SELinux type is restricted, and
//! > setting a custom SELinux user or role option is forbidden. Restricted
//! > fields: `seLinuxOptions.type` of the pod and every container, allowed
//! > undefined/`""`, `container_t`, `container_init_t`, `container_kvm_t`,
//! > `container_engine_t`; `seLinuxOptions.user` and `.role`, allowed
//! > undefined/`""`.
//!
//! > **/proc Mount Type (baseline).** The default /proc masks are set up to
//! > reduce attack surface, and should be required. Restricted fields:
//! > `securityContext.procMount` of every container. Allowed values:
//! > undefined/nil, `Default`.
//!
//! Since standard v1.35 baseline accepts another `procMount` for a pod in its
//! own user namespace (`spec.hostUsers: false`), where an unmasked /proc
//! exposes only that namespace; restricted still requires `Default`
//! (`procMount_restricted`), so at restricted a pod on the host user namespace
//! breaks both.
//!
//! > **Seccomp (baseline).** Seccomp profile must not be explicitly set to
//! > `Unconfined`. Restricted fields: `seccompProfile.type` of the pod and
//! > every container. Allowed values: undefined/nil, `RuntimeDefault`,
//! > `Localhost`.
//!
//! > **Seccomp (restricted).** Seccomp profile must be explicitly set to one
//! > of the allowed values. Both the `Unconfined` profile and the absence of a
//! > profile are prohibited. This is a Linux-only policy. Allowed values:
//! > `RuntimeDefault`, `Localhost`. The container fields may be undefined/nil
//! > if the pod-level `spec.securityContext.seccompProfile.type` field is set
//! > appropriately. Conversely, the pod-level field may be undefined/nil if
//! > *all* container-level fields are set.

use super::{ContainerView, PodView, UNSET, Violation};

/// AppArmor profile types allowed on the pod and container fields.
const APPARMOR_ALLOWED_TYPES: &[&str] = &["RuntimeDefault", "Localhost"];
/// The prefix of the (deprecated) per-container AppArmor annotations.
const APPARMOR_ANNOTATION_PREFIX: &str = "container.apparmor.security.beta.kubernetes.io/";
/// SELinux types a pod or container may request.
const SELINUX_ALLOWED_TYPES: &[&str] = &[
    "",
    "container_t",
    "container_init_t",
    "container_kvm_t",
    "container_engine_t",
];
/// Seccomp profile types allowed wherever a profile is set.
const SECCOMP_ALLOWED_TYPES: &[&str] = &["RuntimeDefault", "Localhost"];
/// The only `procMount` allowed (besides leaving it unset).
const PROC_MOUNT_DEFAULT: &str = "Default";

/// Every AppArmor profile type other than `RuntimeDefault`/`Localhost` (value
/// the type, e.g. `Unconfined`), and every AppArmor annotation other than
/// `runtime/default`/`localhost/*` (value the annotation's value).
pub(super) fn app_armor_profile(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const ID: &str = "appArmorProfile";
    if let Some(profile) = pod
        .security_context()
        .and_then(|sc| sc.app_armor_profile.as_ref())
        && !APPARMOR_ALLOWED_TYPES.contains(&profile.type_.as_str())
    {
        out.push(pod.pod_violation(
            ID,
            "securityContext.appArmorProfile.type",
            profile.type_.as_str(),
        ));
    }
    for c in &pod.containers {
        if let Some(profile) = c
            .security_context
            .and_then(|sc| sc.app_armor_profile.as_ref())
            && !APPARMOR_ALLOWED_TYPES.contains(&profile.type_.as_str())
        {
            out.push(pod.container_violation(
                ID,
                c,
                "securityContext.appArmorProfile.type",
                profile.type_.as_str(),
            ));
        }
    }
    for (key, value) in pod.metadata.annotations.iter().flatten() {
        let Some(container) = key.strip_prefix(APPARMOR_ANNOTATION_PREFIX) else {
            continue;
        };
        let allowed =
            value.is_empty() || value == "runtime/default" || value.starts_with("localhost/");
        if !allowed {
            out.push(Violation {
                control: ID,
                container: Some(container.to_string()),
                field: pod.metadata_field(&format!("annotations['{key}']")),
                value: value.clone(),
            });
        }
    }
}

/// Every SELinux type outside the allowed set (value the type), and every
/// SELinux user or role that is set (value `user` or `role`), on the pod and
/// every container.
pub(super) fn se_linux_options(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const ID: &str = "seLinuxOptions";
    let pod_options = pod
        .security_context()
        .and_then(|sc| sc.se_linux_options.as_ref());
    let containers = pod.containers.iter().map(|c| {
        (
            Some(c),
            c.security_context
                .and_then(|sc| sc.se_linux_options.as_ref()),
        )
    });
    for (container, options) in std::iter::once((None, pod_options)).chain(containers) {
        let Some(options) = options else { continue };
        let mut report = |relative: &str, value: &str| {
            let field = format!("securityContext.seLinuxOptions.{relative}");
            out.push(match container {
                Some(c) => pod.container_violation(ID, c, &field, value),
                None => pod.pod_violation(ID, &field, value),
            });
        };
        if let Some(type_) = options.type_.as_deref()
            && !SELINUX_ALLOWED_TYPES.contains(&type_)
        {
            report("type", type_);
        }
        if options.user.as_deref().is_some_and(|u| !u.is_empty()) {
            report("user", "user");
        }
        if options.role.as_deref().is_some_and(|r| !r.is_empty()) {
            report("role", "role");
        }
    }
}

/// Baseline `procMount`: every container whose `procMount` is set to anything
/// but `Default` (value the mount type), unless the pod has its own user
/// namespace (`hostUsers: false`).
pub(super) fn proc_mount_baseline(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    if pod.in_user_namespace() {
        return;
    }
    proc_mount("procMount", pod, out);
}

/// Restricted `procMount_restricted`: every container whose `procMount` is
/// set to anything but `Default` (value the mount type), user namespace or not.
pub(super) fn proc_mount_restricted(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    proc_mount("procMount_restricted", pod, out);
}

fn proc_mount(control: &'static str, pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for c in &pod.containers {
        if let Some(mount) = c.security_context.and_then(|sc| sc.proc_mount.as_deref())
            && mount != PROC_MOUNT_DEFAULT
        {
            out.push(pod.container_violation(control, c, "securityContext.procMount", mount));
        }
    }
}

/// Baseline `seccompProfile_baseline`: every seccomp profile type set to
/// anything but `RuntimeDefault`/`Localhost` (value the type, e.g.
/// `Unconfined`), on the pod and every container.
pub(super) fn seccomp_baseline(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    explicit_seccomp("seccompProfile_baseline", pod, out);
}

/// Restricted `seccompProfile_restricted`: as the baseline control, plus every
/// container that has no seccomp profile while the pod has none either
/// (value `unset`). Windows pods are exempt.
pub(super) fn seccomp_restricted(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    const ID: &str = "seccompProfile_restricted";
    if pod.is_windows() {
        return;
    }
    explicit_seccomp(ID, pod, out);
    let pod_has_profile = pod
        .security_context()
        .is_some_and(|sc| sc.seccomp_profile.is_some());
    if !pod_has_profile {
        for c in pod.containers.iter().filter(|c| seccomp_type(c).is_none()) {
            out.push(pod.container_violation(ID, c, "securityContext.seccompProfile.type", UNSET));
        }
    }
}

fn seccomp_type<'a>(c: &ContainerView<'a>) -> Option<&'a str> {
    c.security_context
        .and_then(|sc| sc.seccomp_profile.as_ref())
        .map(|p| p.type_.as_str())
}

fn explicit_seccomp(control: &'static str, pod: &PodView<'_>, out: &mut Vec<Violation>) {
    if let Some(profile) = pod
        .security_context()
        .and_then(|sc| sc.seccomp_profile.as_ref())
        && !SECCOMP_ALLOWED_TYPES.contains(&profile.type_.as_str())
    {
        out.push(pod.pod_violation(
            control,
            "securityContext.seccompProfile.type",
            profile.type_.as_str(),
        ));
    }
    for c in &pod.containers {
        if let Some(type_) = seccomp_type(c)
            && !SECCOMP_ALLOWED_TYPES.contains(&type_)
        {
            out.push(pod.container_violation(
                control,
                c,
                "securityContext.seccompProfile.type",
                type_,
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn app_armor_fields_and_annotations() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations:
    container.apparmor.security.beta.kubernetes.io/a: unconfined
    container.apparmor.security.beta.kubernetes.io/b: localhost/my-profile
    container.apparmor.security.beta.kubernetes.io/c: runtime/default
    unrelated.example.com/a: unconfined
spec:
  securityContext:
    appArmorProfile: {type: Unconfined}
  containers:
  - name: a
    securityContext: {appArmorProfile: {type: Localhost, localhostProfile: p}}
  - name: b
    securityContext: {appArmorProfile: {type: Unconfined}}
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("appArmorProfile", &found),
            pairs(&[
                (
                    "metadata.annotations['container.apparmor.security.beta.kubernetes.io/a']",
                    "unconfined"
                ),
                (
                    "spec.containers[1].securityContext.appArmorProfile.type",
                    "Unconfined"
                ),
                ("spec.securityContext.appArmorProfile.type", "Unconfined"),
            ])
        );
        let annotation = found
            .iter()
            .find(|v| v.field.starts_with("metadata"))
            .unwrap();
        assert_eq!(annotation.container.as_deref(), Some("a"));
    }

    #[test]
    fn app_armor_annotation_path_follows_the_template_prefix() {
        let pod = super::super::test_support::pod(
            "apiVersion: v1\nkind: Pod\nmetadata:\n  annotations: {container.apparmor.security.beta.kubernetes.io/a: unconfined}\nspec:\n  containers: [{name: a}]\n",
        );
        let found = super::super::evaluate(
            &pod.metadata,
            pod.spec.as_ref().unwrap(),
            Level::Baseline,
            &Default::default(),
            "spec.template.spec",
            "spec.template.metadata",
        );
        assert_eq!(
            found[0].field,
            "spec.template.metadata.annotations['container.apparmor.security.beta.kubernetes.io/a']"
        );
    }

    #[test]
    fn se_linux_types_users_and_roles() {
        let found = violations(
            r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  securityContext:
    seLinuxOptions: {type: spc_t, level: "s0:c1,c2"}
  initContainers:
  - name: i
    securityContext: {seLinuxOptions: {type: container_engine_t, user: system_u, role: ""}}
  containers:
  - name: a
    securityContext: {seLinuxOptions: {role: sysadm_r, level: s0}}
"#,
            Level::Baseline,
        );
        assert_eq!(
            of("seLinuxOptions", &found),
            pairs(&[
                (
                    "spec.containers[0].securityContext.seLinuxOptions.role",
                    "role"
                ),
                (
                    "spec.initContainers[0].securityContext.seLinuxOptions.user",
                    "user"
                ),
                ("spec.securityContext.seLinuxOptions.type", "spc_t"),
            ])
        );
    }

    const UNMASKED: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  containers:
  - name: a
    securityContext: {procMount: Unmasked}
  - name: b
    securityContext: {procMount: Default}
"#;

    #[test]
    fn proc_mount_relaxes_for_user_namespaces_at_baseline_only() {
        let host = violations(UNMASKED, Level::Baseline);
        assert_eq!(
            of("procMount", &host),
            pairs(&[("spec.containers[0].securityContext.procMount", "Unmasked")])
        );
        let userns = UNMASKED.replace("spec:\n", "spec:\n  hostUsers: false\n");
        assert!(violations(&userns, Level::Baseline).is_empty());

        let restricted = violations(&userns, Level::Restricted);
        assert!(of("procMount", &restricted).is_empty());
        assert_eq!(
            of("procMount_restricted", &restricted),
            pairs(&[("spec.containers[0].securityContext.procMount", "Unmasked")])
        );
        let restricted_host = violations(UNMASKED, Level::Restricted);
        assert_eq!(of("procMount", &restricted_host).len(), 1);
        assert_eq!(of("procMount_restricted", &restricted_host).len(), 1);
    }

    const SECCOMP: &str = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  SECURITY_CONTEXT
  initContainers:
  - name: i
    securityContext: {seccompProfile: {type: Localhost, localhostProfile: x.json}}
  containers:
  - name: a
  - name: b
    securityContext: {seccompProfile: {type: Unconfined}}
  ephemeralContainers:
  - name: dbg
"#;

    #[test]
    fn seccomp_pod_level_covers_containers_that_do_not_override() {
        let yaml = SECCOMP.replace(
            "SECURITY_CONTEXT",
            "securityContext: {seccompProfile: {type: RuntimeDefault}}",
        );
        let baseline = violations(&yaml, Level::Baseline);
        assert_eq!(
            of("seccompProfile_baseline", &baseline),
            pairs(&[(
                "spec.containers[1].securityContext.seccompProfile.type",
                "Unconfined"
            )])
        );
        let restricted = violations(&yaml, Level::Restricted);
        assert_eq!(
            of("seccompProfile_restricted", &restricted),
            pairs(&[(
                "spec.containers[1].securityContext.seccompProfile.type",
                "Unconfined"
            )])
        );
    }

    #[test]
    fn seccomp_without_pod_level_needs_every_container() {
        let yaml = SECCOMP.replace("SECURITY_CONTEXT", "securityContext: {}");
        let restricted = violations(&yaml, Level::Restricted);
        assert_eq!(
            of("seccompProfile_restricted", &restricted),
            pairs(&[
                (
                    "spec.containers[0].securityContext.seccompProfile.type",
                    "unset"
                ),
                (
                    "spec.containers[1].securityContext.seccompProfile.type",
                    "Unconfined"
                ),
                (
                    "spec.ephemeralContainers[0].securityContext.seccompProfile.type",
                    "unset"
                ),
            ])
        );
        // Baseline accepts an unset profile.
        assert_eq!(of("seccompProfile_baseline", &restricted).len(), 1);
    }

    #[test]
    fn seccomp_unconfined_pod_level_is_reported_once_at_the_pod() {
        let yaml = SECCOMP.replace(
            "SECURITY_CONTEXT",
            "securityContext: {seccompProfile: {type: Unconfined}}",
        );
        let restricted = violations(&yaml, Level::Restricted);
        assert_eq!(
            of("seccompProfile_restricted", &restricted),
            pairs(&[
                (
                    "spec.containers[1].securityContext.seccompProfile.type",
                    "Unconfined"
                ),
                ("spec.securityContext.seccompProfile.type", "Unconfined"),
            ])
        );
        let windows = yaml.replace("spec:\n", "spec:\n  os: {name: windows}\n");
        let restricted = violations(&windows, Level::Restricted);
        assert!(of("seccompProfile_restricted", &restricted).is_empty());
        assert_eq!(of("seccompProfile_baseline", &restricted).len(), 2);
    }
}
