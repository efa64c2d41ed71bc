//! Schema-level (CEL) validation shared by both custom resources. These rules
//! hold for a single object; anything that needs identity, the clock or other
//! objects is checked by the admission webhook instead.

use kube::core::{Message, Rule};

/// Control ids: a catalog id (`privileged`, `capabilities_baseline`,
/// `imageTagLatest`), a CVE id or a GitHub advisory id.
pub const CONTROL_ID_PATTERN: &str =
    "^([a-z][A-Za-z0-9_]*|CVE-[0-9]{4}-[0-9]{4,}|GHSA(-[23456789cfghjmpqrvwx]{4}){3})$";

/// Durations as people write them in reviews: a number and a unit, `s`, `m`,
/// `h`, `d` or `w`, optionally combined (`30d`, `1w`, `36h`, `1d12h`).
pub const DURATION_PATTERN: &str = "^([0-9]+(w|d|h|m|s))+$";

/// Controls whose violations carry a value that an exception may narrow to
/// (a capability, a host port, a host path, a sysctl name, ...). Every other
/// control is all-or-nothing, so `values` on it would be meaningless.
pub const CONTROLS_TAKING_VALUES: &[&str] = &[
    "hostNamespaces",
    "hostPathVolumes",
    "hostPorts",
    "capabilities_baseline",
    "capabilities_restricted",
    "appArmorProfile",
    "seLinuxOptions",
    "sysctls",
    "hostProbesAndHostLifecycle",
    "restrictedVolumes",
    "imageRegistry",
    "resourceLimits",
];

pub(crate) fn control_id_format() -> Rule {
    Rule::new(format!("self.matches('{CONTROL_ID_PATTERN}')")).message(
        "must be a control id from the catalog (e.g. privileged, capabilities_baseline, hostPorts), \
         a CVE id (CVE-2024-3094) or a GitHub advisory id (GHSA-xxxx-xxxx-xxxx)",
    )
}

pub(crate) fn values_only_where_taken() -> Rule {
    let list = CONTROLS_TAKING_VALUES
        .iter()
        .map(|id| format!("'{id}'"))
        .collect::<Vec<_>>()
        .join(", ");
    Rule::new(format!(
        "!has(self.values) || size(self.values) == 0 || self.id in [{list}]"
    ))
    .message(Message::Expression(format!(
        "'control ' + self.id + ' takes no values (it is all or nothing); remove values, \
         or narrow one of: {}'",
        CONTROLS_TAKING_VALUES.join(", ")
    )))
}

pub(crate) fn duration_format() -> Rule {
    Rule::new(format!("self.matches('{DURATION_PATTERN}')"))
        .message("must be a duration such as 30d, 2w, 36h or 1d12h (units w, d, h, m, s)")
}

pub(crate) fn not_blank(what: &str) -> Rule {
    Rule::new("self.matches('[^[:space:]]')")
        .message(Message::Message(format!("{what} must not be empty")))
}

/// A Kubernetes object name (RFC 1123 subdomain), for references to objects in
/// the same namespace.
pub(crate) fn object_name() -> Rule {
    Rule::new("self.matches('^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$')").message(
        "must be the name of an object in this namespace (lower-case letters, digits, '-' and '.')",
    )
}
