//! The operator's configuration: one YAML file (`--config FILE`, from Helm
//! values in a cluster), validated as a whole before anything runs.
//!
//! ```yaml
//! approval:
//!   rules:                      # first rule whose ratings include the exception's rating applies
//!     - ratings: [Low, Medium]
//!       approvers: {groups: [security-approvers], users: []}
//!       quorum: 1
//!       maxDuration: 180d
//!     - ratings: [High, Critical]
//!       approvers: {groups: [security-leads]}
//!       quorum: 2
//!       maxDuration: 30d
//!       requireCompensatingControls: true
//!   signers:                    # GitOps approvals: name -> OpenSSH public key
//!     - name: carol@example.com
//!       key: "ssh-ed25519 AAAA... carol@example.com"
//!       groups: [security-leads]
//! lifecycle:
//!   expiryWarnings: [30d, 7d, 1d]
//!   agingAfter: {Low: 365d, Medium: 180d, High: 90d, Critical: 30d}
//! enforcement:
//!   defaultLevel: baseline      # none | baseline | restricted
//!   excludedNamespaces: [kube-system, exception-operator]
//! ```
//!
//! That file without `signers` is [`Config::default`]. Every key is optional:
//! a key left out takes its default (a list given replaces the default list,
//! it is not merged with it). Unknown keys are errors, so typos are caught.
//! Validation reports every problem at once, each naming its key path
//! (`approval.rules[1].quorum: must be at least 1`).

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use k8s_openapi::jiff::SignedDuration;
use serde::{Deserialize, Serialize};
use ssh_key::{Algorithm, EcdsaCurve, PublicKey};

use crate::api::RiskLevel;
use crate::duration::HumanDuration;

/// Every risk rating, lowest first.
const RATINGS: [RiskLevel; 4] = [
    RiskLevel::Low,
    RiskLevel::Medium,
    RiskLevel::High,
    RiskLevel::Critical,
];

/// The operator's validated configuration.
///
/// Deserializing validates (through the same checks as [`Config::from_yaml`]);
/// serializing writes the YAML/JSON shape back, durations in canonical form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawConfig", into = "RawConfig")]
pub struct Config {
    /// Who may approve exceptions of each risk rating, and GitOps signers.
    pub approval: ApprovalConfig,
    /// Expiry warnings and aging thresholds.
    pub lifecycle: LifecycleConfig,
    /// Workload enforcement defaults.
    pub enforcement: EnforcementConfig,
}

/// `approval`: the approval policy.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalConfig {
    /// `approval.rules`: the first rule whose ratings include an exception's
    /// rating applies to it. Every rating is covered by exactly one rule.
    pub rules: Vec<ApprovalRule>,
    /// `approval.signers`: keys whose SSH signatures count as approvals
    /// (GitOps mode). Names and keys are unique.
    pub signers: Vec<Signer>,
}

/// One entry of `approval.rules`.
#[derive(Clone, Debug, PartialEq)]
pub struct ApprovalRule {
    /// `ratings`: the risk ratings the rule applies to (at least one).
    pub ratings: Vec<RiskLevel>,
    /// `approvers`: who may approve, deny or revoke (at least one group or user).
    pub approvers: Approvers,
    /// `quorum`: how many distinct approvers must approve the current spec
    /// (at least 1; default 1).
    pub quorum: u32,
    /// `maxDuration`: the longest an exception may last, from the moment it
    /// is requested to `expiresAt`. `None`: no limit.
    pub max_duration: Option<HumanDuration>,
    /// `requireCompensatingControls`: whether exceptions must name at least
    /// one CompensatingControl (default false).
    pub require_compensating_controls: bool,
}

/// `approvers` of a rule: an approver is authorised if their user name is in
/// `users` or one of their groups is in `groups`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Approvers {
    /// Kubernetes groups (as the authenticator reports them) whose members may approve.
    pub groups: Vec<String>,
    /// Kubernetes user names (or signer names) that may approve.
    pub users: Vec<String>,
}

impl Approvers {
    /// Whether a person with this user name and these groups may approve.
    pub fn authorise(&self, user: &str, groups: &[String]) -> bool {
        self.users.iter().any(|u| u == user) || groups.iter().any(|g| self.groups.contains(g))
    }

    /// The approvers as a person reads them after `from`:
    /// `group security-leads`, `groups a, b or user carol`.
    pub fn describe_from(&self) -> String {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            let noun = if self.groups.len() == 1 {
                "group"
            } else {
                "groups"
            };
            parts.push(format!("{noun} {}", self.groups.join(", ")));
        }
        if !self.users.is_empty() {
            let noun = if self.users.len() == 1 {
                "user"
            } else {
                "users"
            };
            parts.push(format!("{noun} {}", self.users.join(", ")));
        }
        if parts.is_empty() {
            "nobody".to_string()
        } else {
            parts.join(" or ")
        }
    }
}

impl fmt::Display for Approvers {
    /// `groups security-leads; users carol`, as in `(approvers: ...)`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut parts = Vec::new();
        if !self.groups.is_empty() {
            parts.push(format!("groups {}", self.groups.join(", ")));
        }
        if !self.users.is_empty() {
            parts.push(format!("users {}", self.users.join(", ")));
        }
        if parts.is_empty() {
            f.write_str("none")
        } else {
            f.write_str(&parts.join("; "))
        }
    }
}

/// One entry of `approval.signers`: a person who approves by SSH signature.
#[derive(Clone, Debug, PartialEq)]
pub struct Signer {
    /// `name`: the name signatures are made under (the `signer` of an
    /// `exceptions.dev/approval-signatures` entry); it counts for rules that
    /// list it in `approvers.users`.
    pub name: String,
    /// `key`: the OpenSSH public key (`ssh-ed25519` or `ecdsa-sha2-nistp256`).
    pub key: PublicKey,
    /// `groups`: lets the signer count for rules that list one of these
    /// groups in `approvers.groups`.
    pub groups: Vec<String>,
}

/// `lifecycle`: monitoring of active exceptions.
#[derive(Clone, Debug, PartialEq)]
pub struct LifecycleConfig {
    /// `expiryWarnings`: how long before `expiresAt` an `ExpiringSoon` event
    /// is emitted, one per threshold (each longer than 0s, no duplicates).
    pub expiry_warnings: Vec<HumanDuration>,
    /// `agingAfter`: per rating, the total active time after which an
    /// exception is `Aging`. A rating left out never ages by time.
    pub aging_after: BTreeMap<RiskLevel, HumanDuration>,
}

/// `enforcement`: workload admission defaults.
#[derive(Clone, Debug, PartialEq)]
pub struct EnforcementConfig {
    /// `defaultLevel`: the enforcement level of namespaces without an
    /// `exceptions.dev/enforce` label.
    pub default_level: EnforcementLevel,
    /// `excludedNamespaces`: namespaces the workload webhook never evaluates.
    pub excluded_namespaces: Vec<String>,
    /// `extras`: the opt-in controls beyond the Pod Security Standards
    /// (`imageTagLatest`, `resourceLimits`, `allowedRegistries`), checked in
    /// every evaluated namespace; all off by default.
    pub extras: crate::policy::controls::Extras,
}

/// A cluster-wide enforcement level: `none`, `baseline` or `restricted`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EnforcementLevel {
    /// Nothing is enforced by default.
    None,
    /// The Pod Security Standards baseline level.
    Baseline,
    /// The Pod Security Standards restricted level.
    Restricted,
}

impl EnforcementLevel {
    /// The level as the configuration spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            EnforcementLevel::None => "none",
            EnforcementLevel::Baseline => "baseline",
            EnforcementLevel::Restricted => "restricted",
        }
    }

    /// The Pod Security Standards level to check, if any.
    pub fn pss_level(self) -> Option<crate::policy::controls::Level> {
        use crate::policy::controls::Level;
        match self {
            EnforcementLevel::None => None,
            EnforcementLevel::Baseline => Some(Level::Baseline),
            EnforcementLevel::Restricted => Some(Level::Restricted),
        }
    }
}

impl fmt::Display for EnforcementLevel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for EnforcementLevel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "none" => Ok(EnforcementLevel::None),
            "baseline" => Ok(EnforcementLevel::Baseline),
            "restricted" => Ok(EnforcementLevel::Restricted),
            "privileged" => Err(format!(
                "{text} is not a level (none, baseline, restricted); use none to enforce nothing"
            )),
            _ => Err(format!(
                "{text} is not a level (none, baseline, restricted)"
            )),
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("cannot read configuration file {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        #[source]
        source: std::io::Error,
    },
    /// The text is not YAML of the configuration's shape (syntax, an unknown
    /// key, a value of the wrong type).
    #[error("{}invalid configuration: {message}", origin(file))]
    Parse {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// Where (1-based line and column), when known.
        location: Option<(u64, u64)>,
        /// The YAML parser's message, which names the line and column.
        message: String,
    },
    /// The configuration parsed but breaks rules; one line per problem, each
    /// starting with its key path.
    #[error("{}invalid configuration:{}", origin(file), list(problems))]
    Invalid {
        /// The file, when read from one.
        file: Option<PathBuf>,
        /// Every problem found, `key.path: what is wrong and what is valid`.
        problems: Vec<String>,
    },
}

/// One problem inline; several as an indented list, one per line.
fn list(problems: &[String]) -> String {
    match problems {
        [one] => format!(" {one}"),
        many => many
            .iter()
            .map(|p| format!("\n  - {p}"))
            .collect::<String>(),
    }
}

fn origin(file: &Option<PathBuf>) -> String {
    match file {
        Some(path) => format!("configuration file {}: ", path.display()),
        None => String::new(),
    }
}

impl ConfigError {
    /// The validation problems, each `key.path: message` (empty for read and
    /// parse errors).
    pub fn problems(&self) -> &[String] {
        match self {
            ConfigError::Invalid { problems, .. } => problems,
            _ => &[],
        }
    }

    fn in_file(self, path: &Path) -> Self {
        match self {
            ConfigError::Parse {
                location, message, ..
            } => ConfigError::Parse {
                file: Some(path.to_path_buf()),
                location,
                message,
            },
            ConfigError::Invalid { problems, .. } => ConfigError::Invalid {
                file: Some(path.to_path_buf()),
                problems,
            },
            read => read,
        }
    }
}

impl Config {
    /// Parses and validates a configuration. Keys left out take their defaults.
    pub fn from_yaml(text: &str) -> Result<Config, ConfigError> {
        // An empty file (or one holding only comments) is the default configuration.
        if text
            .lines()
            .all(|line| line.trim().is_empty() || line.trim_start().starts_with('#'))
        {
            return Ok(Config::default());
        }
        let raw: RawConfig = serde_saphyr::from_str(text).map_err(|error| {
            let location = error.location().map(|l| (l.line(), l.column()));
            let rendered = error.to_string();
            let message = rendered
                .strip_prefix("error: ")
                .unwrap_or(&rendered)
                .to_string();
            ConfigError::Parse {
                file: None,
                location,
                message: if message.contains("line") {
                    message
                } else if let Some((line, column)) = location {
                    format!("line {line} column {column}: {message}")
                } else {
                    message
                },
            }
        })?;
        Config::try_from(raw)
    }

    /// Reads, parses and validates a configuration file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::from_yaml(&text).map_err(|error| error.in_file(path))
    }

    /// The approval rule for a risk rating: the first whose ratings include it.
    pub fn rule_for(&self, rating: RiskLevel) -> Option<&ApprovalRule> {
        self.approval
            .rules
            .iter()
            .find(|rule| rule.ratings.contains(&rating))
    }

    /// The total active time after which an exception of this rating is Aging.
    pub fn aging_after(&self, rating: RiskLevel) -> Option<SignedDuration> {
        self.lifecycle.aging_after.get(&rating).map(|d| d.get())
    }

    /// The configured signer of this name.
    pub fn signer(&self, name: &str) -> Option<&Signer> {
        self.approval.signers.iter().find(|s| s.name == name)
    }

    /// Whether the workload webhook leaves this namespace alone.
    pub fn is_excluded_namespace(&self, namespace: &str) -> bool {
        self.enforcement
            .excluded_namespaces
            .iter()
            .any(|n| n == namespace)
    }
}

impl Default for Config {
    /// The documented default: two rules (`Low`/`Medium` approved by one of
    /// `security-approvers` within 180d; `High`/`Critical` by two of
    /// `security-leads` within 30d with compensating controls), no signers,
    /// warnings at 30d, 7d and 1d, aging after 365d/180d/90d/30d, baseline
    /// enforcement outside `kube-system` and `exception-operator`.
    fn default() -> Self {
        let days = HumanDuration::trusted_days;
        Config {
            approval: ApprovalConfig {
                rules: vec![
                    ApprovalRule {
                        ratings: vec![RiskLevel::Low, RiskLevel::Medium],
                        approvers: Approvers {
                            groups: vec!["security-approvers".to_string()],
                            users: vec![],
                        },
                        quorum: 1,
                        max_duration: Some(days(180)),
                        require_compensating_controls: false,
                    },
                    ApprovalRule {
                        ratings: vec![RiskLevel::High, RiskLevel::Critical],
                        approvers: Approvers {
                            groups: vec!["security-leads".to_string()],
                            users: vec![],
                        },
                        quorum: 2,
                        max_duration: Some(days(30)),
                        require_compensating_controls: true,
                    },
                ],
                signers: vec![],
            },
            lifecycle: LifecycleConfig {
                expiry_warnings: vec![days(30), days(7), days(1)],
                aging_after: BTreeMap::from([
                    (RiskLevel::Low, days(365)),
                    (RiskLevel::Medium, days(180)),
                    (RiskLevel::High, days(90)),
                    (RiskLevel::Critical, days(30)),
                ]),
            },
            enforcement: EnforcementConfig {
                default_level: EnforcementLevel::Baseline,
                excluded_namespaces: vec![
                    "kube-system".to_string(),
                    "exception-operator".to_string(),
                ],
                extras: crate::policy::controls::Extras::default(),
            },
        }
    }
}

// ---------------------------------------------------------------------------
// The file as written: strings where a typo must be reported with its key path.

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawConfig {
    #[serde(default)]
    approval: RawApproval,
    #[serde(default)]
    lifecycle: RawLifecycle,
    #[serde(default)]
    enforcement: RawEnforcement,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawApproval {
    #[serde(default = "RawApproval::default_rules")]
    rules: Vec<RawRule>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    signers: Vec<RawSigner>,
}

impl RawApproval {
    fn default_rules() -> Vec<RawRule> {
        RawConfig::from(Config::default()).approval.rules
    }
}

impl Default for RawApproval {
    fn default() -> Self {
        RawConfig::from(Config::default()).approval
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawRule {
    #[serde(default)]
    ratings: Vec<String>,
    #[serde(default)]
    approvers: RawApprovers,
    #[serde(default = "one")]
    quorum: i64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_duration: Option<String>,
    #[serde(default)]
    require_compensating_controls: bool,
}

fn one() -> i64 {
    1
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawApprovers {
    #[serde(default)]
    groups: Vec<String>,
    #[serde(default)]
    users: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSigner {
    #[serde(default)]
    name: String,
    #[serde(default)]
    key: String,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    groups: Vec<String>,
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawLifecycle {
    #[serde(default = "RawLifecycle::default_warnings")]
    expiry_warnings: Vec<String>,
    #[serde(default = "RawLifecycle::default_aging")]
    aging_after: BTreeMap<String, String>,
}

impl RawLifecycle {
    fn default_warnings() -> Vec<String> {
        RawLifecycle::default().expiry_warnings
    }

    fn default_aging() -> BTreeMap<String, String> {
        RawLifecycle::default().aging_after
    }
}

impl Default for RawLifecycle {
    fn default() -> Self {
        RawConfig::from(Config::default()).lifecycle
    }
}

#[derive(Clone, Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawEnforcement {
    #[serde(default = "RawEnforcement::default_level")]
    default_level: String,
    #[serde(default = "RawEnforcement::default_excluded")]
    excluded_namespaces: Vec<String>,
    #[serde(default)]
    extras: RawExtras,
}

#[derive(Clone, Debug, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct RawExtras {
    #[serde(default)]
    image_tag_latest: bool,
    #[serde(default)]
    resource_limits: bool,
    #[serde(default)]
    allowed_registries: Vec<String>,
}

impl RawEnforcement {
    fn default_level() -> String {
        RawEnforcement::default().default_level
    }

    fn default_excluded() -> Vec<String> {
        RawEnforcement::default().excluded_namespaces
    }
}

impl Default for RawEnforcement {
    fn default() -> Self {
        RawConfig::from(Config::default()).enforcement
    }
}

impl From<Config> for RawConfig {
    fn from(config: Config) -> Self {
        let text = |d: HumanDuration| d.to_string();
        RawConfig {
            approval: RawApproval {
                rules: config
                    .approval
                    .rules
                    .into_iter()
                    .map(|rule| RawRule {
                        ratings: rule.ratings.iter().map(|r| format!("{r:?}")).collect(),
                        approvers: RawApprovers {
                            groups: rule.approvers.groups,
                            users: rule.approvers.users,
                        },
                        quorum: i64::from(rule.quorum),
                        max_duration: rule.max_duration.map(text),
                        require_compensating_controls: rule.require_compensating_controls,
                    })
                    .collect(),
                signers: config
                    .approval
                    .signers
                    .into_iter()
                    .map(|signer| RawSigner {
                        name: signer.name,
                        // A key that parsed always encodes.
                        key: signer.key.to_openssh().unwrap_or_default(),
                        groups: signer.groups,
                    })
                    .collect(),
            },
            lifecycle: RawLifecycle {
                expiry_warnings: config
                    .lifecycle
                    .expiry_warnings
                    .into_iter()
                    .map(text)
                    .collect(),
                aging_after: config
                    .lifecycle
                    .aging_after
                    .into_iter()
                    .map(|(rating, d)| (format!("{rating:?}"), text(d)))
                    .collect(),
            },
            enforcement: RawEnforcement {
                default_level: config.enforcement.default_level.as_str().to_string(),
                excluded_namespaces: config.enforcement.excluded_namespaces,
                extras: RawExtras {
                    image_tag_latest: config.enforcement.extras.image_tag_latest,
                    resource_limits: config.enforcement.extras.resource_limits,
                    allowed_registries: config.enforcement.extras.allowed_registries,
                },
            },
        }
    }
}

// ---------------------------------------------------------------------------
// Validation: every problem, with its key path.

/// Collects problems while converting the raw file.
#[derive(Default)]
struct Problems(Vec<String>);

impl Problems {
    fn add(&mut self, path: impl fmt::Display, message: impl fmt::Display) {
        self.0.push(format!("{path}: {message}"));
    }
}

fn rating_list() -> String {
    RATINGS
        .iter()
        .map(|r| format!("{r:?}"))
        .collect::<Vec<_>>()
        .join(", ")
}

fn parse_rating(text: &str) -> Result<RiskLevel, String> {
    if let Some(rating) = RATINGS.iter().find(|r| format!("{r:?}") == text) {
        return Ok(*rating);
    }
    let hint = RATINGS
        .iter()
        .find(|r| format!("{r:?}").eq_ignore_ascii_case(text))
        .map(|r| format!("; did you mean {r:?}?"))
        .unwrap_or_default();
    Err(format!(
        "{text} is not a risk rating ({}){hint}",
        rating_list()
    ))
}

/// A positive human duration.
fn parse_positive(text: &str) -> Result<HumanDuration, String> {
    let duration: HumanDuration = text.parse().map_err(|e| format!("{e}"))?;
    if duration.get().is_zero() {
        return Err(format!(
            "{text} is not longer than 0s; give a positive duration such as 7d"
        ));
    }
    Ok(duration)
}

/// Whether `name` is a Kubernetes namespace name (an RFC 1123 label).
fn is_dns_label(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 63
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

fn check_names(problems: &mut Problems, path: &str, names: &[String], what: &str) {
    let mut seen = BTreeSet::new();
    for (i, name) in names.iter().enumerate() {
        if name.trim().is_empty() {
            problems.add(
                format_args!("{path}[{i}]"),
                format_args!("{what} must not be empty"),
            );
        } else if name.trim() != name {
            problems.add(
                format_args!("{path}[{i}]"),
                format_args!("{name:?} has leading or trailing spaces, which would never match"),
            );
        } else if !seen.insert(name.as_str()) {
            problems.add(
                format_args!("{path}[{i}]"),
                format_args!("{name} is listed twice"),
            );
        }
    }
}

fn parse_signer_key(text: &str) -> Result<PublicKey, String> {
    let key = PublicKey::from_openssh(text.trim()).map_err(|e| e.to_string())?;
    match key.algorithm() {
        Algorithm::Ed25519
        | Algorithm::Ecdsa {
            curve: EcdsaCurve::NistP256,
        } => Ok(key),
        other => Err(format!("{} keys are not supported", other.as_str())),
    }
}

impl TryFrom<RawConfig> for Config {
    type Error = ConfigError;

    fn try_from(raw: RawConfig) -> Result<Self, Self::Error> {
        let mut problems = Problems::default();

        // approval.rules
        let mut rules = Vec::new();
        let mut covered: BTreeMap<RiskLevel, usize> = BTreeMap::new();
        for (i, rule) in raw.approval.rules.into_iter().enumerate() {
            let path = format!("approval.rules[{i}]");
            let mut ratings = Vec::new();
            if rule.ratings.is_empty() {
                problems.add(
                    format_args!("{path}.ratings"),
                    format_args!("must list at least one risk rating ({})", rating_list()),
                );
            }
            for text in &rule.ratings {
                match parse_rating(text) {
                    Err(message) => problems.add(format_args!("{path}.ratings"), message),
                    Ok(rating) => match covered.get(&rating) {
                        Some(&earlier) if earlier == i => problems.add(
                            format_args!("{path}.ratings"),
                            format_args!("{rating:?} is listed twice"),
                        ),
                        Some(&earlier) => problems.add(
                            format_args!("{path}.ratings"),
                            format_args!(
                                "{rating:?} is already covered by approval.rules[{earlier}]; \
                                 the first matching rule applies, so this would never be used"
                            ),
                        ),
                        None => {
                            covered.insert(rating, i);
                            ratings.push(rating);
                        }
                    },
                }
            }

            check_names(
                &mut problems,
                &format!("{path}.approvers.groups"),
                &rule.approvers.groups,
                "a group name",
            );
            check_names(
                &mut problems,
                &format!("{path}.approvers.users"),
                &rule.approvers.users,
                "a user name",
            );
            if rule.approvers.groups.is_empty() && rule.approvers.users.is_empty() {
                problems.add(
                    format_args!("{path}.approvers"),
                    "name at least one group or user; otherwise nobody could approve these exceptions",
                );
            }

            let quorum = if rule.quorum < 1 {
                problems.add(format_args!("{path}.quorum"), "must be at least 1");
                1
            } else {
                match u32::try_from(rule.quorum) {
                    Ok(quorum) => quorum,
                    Err(_) => {
                        problems.add(
                            format_args!("{path}.quorum"),
                            format_args!("{} is far too large", rule.quorum),
                        );
                        1
                    }
                }
            };
            let distinct_users = rule.approvers.users.iter().collect::<BTreeSet<_>>().len();
            if rule.approvers.groups.is_empty()
                && !rule.approvers.users.is_empty()
                && quorum as usize > distinct_users
            {
                problems.add(
                    format_args!("{path}.quorum"),
                    format_args!(
                        "{quorum} distinct approvers are required but only {distinct_users} \
                         user(s) are named and no groups; name more users, add groups, or lower the quorum"
                    ),
                );
            }

            let max_duration = match &rule.max_duration {
                None => None,
                Some(text) => match parse_positive(text) {
                    Ok(d) => Some(d),
                    Err(message) => {
                        problems.add(format_args!("{path}.maxDuration"), message);
                        None
                    }
                },
            };

            rules.push(ApprovalRule {
                ratings,
                approvers: Approvers {
                    groups: rule.approvers.groups,
                    users: rule.approvers.users,
                },
                quorum,
                max_duration,
                require_compensating_controls: rule.require_compensating_controls,
            });
        }
        for rating in RATINGS {
            if !covered.contains_key(&rating) {
                problems.add(
                    "approval.rules",
                    format_args!(
                        "no rule covers rating {rating:?}; exceptions rated {rating:?} could never be approved"
                    ),
                );
            }
        }

        // approval.signers
        let mut signers: Vec<Signer> = Vec::new();
        let mut names: BTreeMap<String, usize> = BTreeMap::new();
        let mut keys: Vec<(usize, PublicKey)> = Vec::new();
        for (i, signer) in raw.approval.signers.into_iter().enumerate() {
            let path = format!("approval.signers[{i}]");
            let mut ok = true;
            if signer.name.trim().is_empty() {
                problems.add(
                    format_args!("{path}.name"),
                    "must not be empty: it is the name signatures are made under",
                );
                ok = false;
            } else if let Some(earlier) = names.get(&signer.name.to_lowercase()) {
                problems.add(
                    format_args!("{path}.name"),
                    format_args!(
                        "{} is already the name of approval.signers[{earlier}]; signer names must be unique",
                        signer.name
                    ),
                );
                ok = false;
            } else {
                names.insert(signer.name.to_lowercase(), i);
            }
            check_names(
                &mut problems,
                &format!("{path}.groups"),
                &signer.groups,
                "a group name",
            );
            match parse_signer_key(&signer.key) {
                Err(reason) => {
                    problems.add(
                        format_args!("{path}.key"),
                        format_args!(
                            "not an OpenSSH public key (ssh-ed25519 or ecdsa-sha2-nistp256): {reason}"
                        ),
                    );
                }
                Ok(key) => {
                    if let Some((earlier, _)) =
                        keys.iter().find(|(_, k)| k.key_data() == key.key_data())
                    {
                        problems.add(
                            format_args!("{path}.key"),
                            format_args!(
                                "the same key as approval.signers[{earlier}]; one key is one \
                                 person and must not count as two approvers"
                            ),
                        );
                    } else {
                        keys.push((i, key.clone()));
                        if ok {
                            signers.push(Signer {
                                name: signer.name,
                                key,
                                groups: signer.groups,
                            });
                        }
                    }
                }
            }
        }

        // lifecycle
        let mut expiry_warnings: Vec<HumanDuration> = Vec::new();
        for (i, text) in raw.lifecycle.expiry_warnings.iter().enumerate() {
            match parse_positive(text) {
                Err(message) => {
                    problems.add(format_args!("lifecycle.expiryWarnings[{i}]"), message)
                }
                Ok(d) if expiry_warnings.contains(&d) => problems.add(
                    format_args!("lifecycle.expiryWarnings[{i}]"),
                    format_args!("{text} is listed twice"),
                ),
                Ok(d) => expiry_warnings.push(d),
            }
        }
        let mut aging_after = BTreeMap::new();
        for (key, text) in &raw.lifecycle.aging_after {
            match parse_rating(key) {
                Err(message) => problems.add("lifecycle.agingAfter", message),
                Ok(rating) => match parse_positive(text) {
                    Err(message) => {
                        problems.add(format_args!("lifecycle.agingAfter.{key}"), message)
                    }
                    Ok(d) => {
                        aging_after.insert(rating, d);
                    }
                },
            }
        }

        // enforcement
        let default_level = match raw.enforcement.default_level.parse() {
            Ok(level) => level,
            Err(message) => {
                problems.add("enforcement.defaultLevel", message);
                EnforcementLevel::Baseline
            }
        };
        for (i, name) in raw.enforcement.excluded_namespaces.iter().enumerate() {
            if !is_dns_label(name) {
                problems.add(
                    format_args!("enforcement.excludedNamespaces[{i}]"),
                    format_args!(
                        "{name:?} is not a namespace name (lower-case letters, digits and '-', at most 63)"
                    ),
                );
            }
        }

        for (i, registry) in raw.enforcement.extras.allowed_registries.iter().enumerate() {
            if registry.is_empty()
                || registry.contains('/')
                || registry.contains(char::is_whitespace)
            {
                problems.add(
                    format_args!("enforcement.extras.allowedRegistries[{i}]"),
                    format_args!(
                        "{registry:?} is not a registry host (such as registry.example.com, ghcr.io or docker.io; no path)"
                    ),
                );
            }
        }

        if !problems.0.is_empty() {
            return Err(ConfigError::Invalid {
                file: None,
                problems: problems.0,
            });
        }
        Ok(Config {
            approval: ApprovalConfig { rules, signers },
            lifecycle: LifecycleConfig {
                expiry_warnings,
                aging_after,
            },
            enforcement: EnforcementConfig {
                default_level,
                excluded_namespaces: raw.enforcement.excluded_namespaces,
                extras: crate::policy::controls::Extras {
                    image_tag_latest: raw.enforcement.extras.image_tag_latest,
                    resource_limits: raw.enforcement.extras.resource_limits,
                    allowed_registries: raw.enforcement.extras.allowed_registries,
                },
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The documented default, verbatim from the design (without signers).
    const DOCUMENTED_DEFAULT: &str = r#"
approval:
  rules:                      # first rule whose ratings include the exception's rating applies
    - ratings: [Low, Medium]
      approvers: {groups: [security-approvers], users: []}
      quorum: 1
      maxDuration: 180d
    - ratings: [High, Critical]
      approvers: {groups: [security-leads]}
      quorum: 2
      maxDuration: 30d
      requireCompensatingControls: true
lifecycle:
  expiryWarnings: [30d, 7d, 1d]
  agingAfter: {Low: 365d, Medium: 180d, High: 90d, Critical: 30d}
enforcement:
  defaultLevel: baseline      # none | baseline | restricted
  excludedNamespaces: [kube-system, exception-operator]
"#;

    const CAROL: &str = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIFCI6J0pTRtSyMkURGFyD6cfYuL/lpNF/v+SUGG4Opu9 carol@example.com";
    const DAVE: &str = "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBNaYuSiUvAyq88hlFVHw5SXDxzx4/o7wjcwZt9AUYnkt7VSj3GbVVoDQVJPVlkRiDu3ZGJm1B0WdKIRkRM3gc70= dave@example.com";

    fn config(yaml: &str) -> Config {
        Config::from_yaml(yaml).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Asserts that `yaml` is rejected with a problem containing `expected`.
    fn rejects(yaml: &str, expected: &str) {
        match Config::from_yaml(yaml) {
            Ok(_) => panic!("accepted, expected {expected:?}:\n{yaml}"),
            Err(error) => {
                let message = error.to_string();
                assert!(
                    message.contains(expected),
                    "expected {expected:?} in:\n{message}"
                );
            }
        }
    }

    /// The default with one rule replaced by `rule` (a YAML flow mapping).
    fn with_rules(rules: &str) -> String {
        format!("approval:\n  rules: {rules}\n")
    }

    #[test]
    fn the_default_is_the_documented_file() {
        assert_eq!(config(DOCUMENTED_DEFAULT), Config::default());
        assert_eq!(config(""), Config::default());
        assert_eq!(config("# nothing configured\n"), Config::default());
        assert_eq!(config("approval: {}\nlifecycle: {}\n"), Config::default());
    }

    #[test]
    fn the_default_reads_as_documented() {
        let config = Config::default();
        let low = config.rule_for(RiskLevel::Low).unwrap();
        assert_eq!(low.quorum, 1);
        assert_eq!(low.approvers.groups, ["security-approvers"]);
        assert_eq!(low.max_duration.unwrap().to_string(), "180d");
        assert!(!low.require_compensating_controls);
        let critical = config.rule_for(RiskLevel::Critical).unwrap();
        assert_eq!(critical.quorum, 2);
        assert!(critical.require_compensating_controls);
        assert_eq!(
            config.aging_after(RiskLevel::High),
            Some(SignedDuration::from_hours(90 * 24))
        );
        assert_eq!(config.enforcement.default_level, EnforcementLevel::Baseline);
        assert!(config.is_excluded_namespace("kube-system"));
        assert!(!config.is_excluded_namespace("team-a"));
        assert!(config.approval.signers.is_empty());
    }

    #[test]
    fn the_example_file_parses() {
        let config = config(include_str!("../examples/config.yaml"));
        assert!(
            !config.approval.signers.is_empty(),
            "the example shows signers"
        );
        for rating in RATINGS {
            assert!(config.rule_for(rating).is_some());
        }
    }

    #[test]
    fn keys_left_out_take_their_defaults() {
        let config = config("enforcement:\n  defaultLevel: restricted\n");
        assert_eq!(
            config.enforcement.default_level,
            EnforcementLevel::Restricted
        );
        assert_eq!(
            config.enforcement.excluded_namespaces,
            Config::default().enforcement.excluded_namespaces
        );
        assert_eq!(config.approval, Config::default().approval);
        let rule = self::config(&with_rules(
            "[{ratings: [Low, Medium, High, Critical], approvers: {users: [bob]}}]",
        ));
        let rule = &rule.approval.rules[0];
        assert_eq!(rule.quorum, 1);
        assert_eq!(rule.max_duration, None);
        assert!(!rule.require_compensating_controls);
    }

    #[test]
    fn the_first_matching_rule_applies() {
        let config = config(&with_rules(
            "[{ratings: [Critical], approvers: {groups: [ciso]}, quorum: 1}, \
              {ratings: [Low, Medium, High], approvers: {groups: [sec]}}]",
        ));
        assert_eq!(
            config
                .rule_for(RiskLevel::Critical)
                .unwrap()
                .approvers
                .groups,
            ["ciso"]
        );
        assert_eq!(
            config.rule_for(RiskLevel::Low).unwrap().approvers.groups,
            ["sec"]
        );
    }

    #[test]
    fn signers_parse_ed25519_and_p256_keys() {
        let config = config(&format!(
            "approval:\n  signers:\n    - name: carol@example.com\n      key: \"{CAROL}\"\n      groups: [security-leads]\n    - name: dave@example.com\n      key: \"{DAVE}\"\n"
        ));
        let carol = config.signer("carol@example.com").unwrap();
        assert_eq!(carol.key.algorithm(), Algorithm::Ed25519);
        assert_eq!(carol.groups, ["security-leads"]);
        assert!(config.signer("dave@example.com").is_some());
        assert!(config.signer("mallory").is_none());
    }

    #[test]
    fn serializing_round_trips() {
        let original = config(&format!(
            "approval:\n  signers:\n    - name: carol@example.com\n      key: \"{CAROL}\"\nlifecycle:\n  expiryWarnings: [2w, 36h]\n"
        ));
        let json = serde_json::to_value(&original).unwrap();
        assert_eq!(
            json["lifecycle"]["expiryWarnings"],
            serde_json::json!(["14d", "1d12h"])
        );
        assert_eq!(json["approval"]["rules"][1]["maxDuration"], "30d");
        let back: Config = serde_json::from_value(json).unwrap();
        assert_eq!(back, original);
    }

    #[test]
    fn deserializing_validates() {
        let error = serde_json::from_value::<Config>(serde_json::json!({
            "enforcement": {"defaultLevel": "strict"}
        }))
        .unwrap_err();
        assert!(
            error.to_string().contains("enforcement.defaultLevel"),
            "{error}"
        );
    }

    #[test]
    fn unknown_keys_are_caught_with_their_location() {
        let error =
            Config::from_yaml("approval:\n  rules:\n    - ratings: [Low]\n      quorom: 2\n")
                .unwrap_err();
        let message = error.to_string();
        assert!(message.contains("quorom"), "{message}");
        assert!(message.contains("line 4"), "{message}");
        assert!(matches!(
            error,
            ConfigError::Parse {
                location: Some((4, _)),
                ..
            }
        ));
        rejects("lifecycle:\n  expiryWarning: [1d]\n", "expiryWarning");
        rejects("approvals: {}\n", "approvals");
    }

    #[test]
    fn yaml_syntax_errors_name_where() {
        let error = Config::from_yaml("approval:\n  rules: [\n").unwrap_err();
        assert!(
            matches!(
                error,
                ConfigError::Parse {
                    location: Some(_),
                    ..
                }
            ),
            "{error}"
        );
        let error = Config::from_yaml("approval:\n  rules:\n    - quorum: two\n").unwrap_err();
        assert!(error.to_string().contains("line 3"), "{error}");
    }

    #[test]
    fn quorum_must_be_at_least_one() {
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium], approvers: {groups: [a]}}, \
                  {ratings: [High, Critical], approvers: {groups: [b]}, quorum: 0}]",
            ),
            "approval.rules[1].quorum: must be at least 1",
        );
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {groups: [a]}, quorum: -3}]",
            ),
            "approval.rules[0].quorum: must be at least 1",
        );
    }

    #[test]
    fn quorum_cannot_exceed_the_named_users_without_groups() {
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {users: [bob, carol]}, quorum: 3}]",
            ),
            "approval.rules[0].quorum: 3 distinct approvers are required but only 2 user(s) are named",
        );
        // With a group, the group may be large enough.
        config(&with_rules(
            "[{ratings: [Low, Medium, High, Critical], approvers: {users: [bob], groups: [sec]}, quorum: 3}]",
        ));
    }

    #[test]
    fn ratings_must_be_risk_ratings() {
        rejects(
            &with_rules("[{ratings: [Severe], approvers: {groups: [a]}}]"),
            "approval.rules[0].ratings: Severe is not a risk rating (Low, Medium, High, Critical)",
        );
        rejects(
            &with_rules("[{ratings: [high], approvers: {groups: [a]}}]"),
            "high is not a risk rating (Low, Medium, High, Critical); did you mean High?",
        );
        rejects(
            &with_rules("[{ratings: [], approvers: {groups: [a]}}]"),
            "approval.rules[0].ratings: must list at least one risk rating",
        );
    }

    #[test]
    fn every_rating_needs_a_rule() {
        rejects(
            &with_rules("[{ratings: [Low, Medium, High], approvers: {groups: [a]}}]"),
            "approval.rules: no rule covers rating Critical; exceptions rated Critical could never be approved",
        );
        let error = Config::from_yaml("approval:\n  rules: []\n").unwrap_err();
        assert_eq!(error.problems().len(), 4, "{error}");
    }

    #[test]
    fn a_rating_in_two_rules_is_dead_configuration() {
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {groups: [a]}}, \
                  {ratings: [Critical], approvers: {groups: [b]}}]",
            ),
            "approval.rules[1].ratings: Critical is already covered by approval.rules[0]",
        );
    }

    #[test]
    fn a_rule_needs_approvers() {
        rejects(
            &with_rules("[{ratings: [Low, Medium, High, Critical]}]"),
            "approval.rules[0].approvers: name at least one group or user",
        );
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {groups: [a, ''], users: [bob, bob]}}]",
            ),
            "approval.rules[0].approvers.groups[1]: a group name must not be empty",
        );
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {users: [bob, bob]}}]",
            ),
            "approval.rules[0].approvers.users[1]: bob is listed twice",
        );
    }

    #[test]
    fn max_duration_must_be_a_positive_duration() {
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {groups: [a]}, maxDuration: 6 months}]",
            ),
            "approval.rules[0].maxDuration: invalid duration \"6 months\"",
        );
        rejects(
            &with_rules(
                "[{ratings: [Low, Medium, High, Critical], approvers: {groups: [a]}, maxDuration: 0d}]",
            ),
            "approval.rules[0].maxDuration: 0d is not longer than 0s",
        );
    }

    #[test]
    fn signer_keys_must_be_supported_openssh_keys() {
        rejects(
            "approval:\n  signers:\n    - name: carol\n      key: \"ssh-ed25519 AAAA... carol\"\n",
            "approval.signers[0].key: not an OpenSSH public key (ssh-ed25519 or ecdsa-sha2-nistp256): ",
        );
        rejects(
            "approval:\n  signers:\n    - name: carol\n",
            "approval.signers[0].key: not an OpenSSH public key",
        );
        let rsa = "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAAAgQC1SFFUv8lQ8KNZqlwavMFo+t76tQSSiQYJ2vr7nm3kiewsVNQZLq53DjXLLLDwTADetXLXfcp9Bd2T4xdMgctIlmbQ/t+MirCsgU+0yWZCEllL5wCjhCRjAnwSqazOTtB656+fcNfaOibwBgLF8BXh7hbrdl95c0XeRVjv6phoRQ== rsa";
        rejects(
            &format!("approval:\n  signers:\n    - name: rsa\n      key: \"{rsa}\"\n"),
            "approval.signers[0].key: not an OpenSSH public key (ssh-ed25519 or ecdsa-sha2-nistp256): ssh-rsa keys are not supported",
        );
    }

    #[test]
    fn signer_names_and_keys_are_unique() {
        rejects(
            &format!(
                "approval:\n  signers:\n    - {{name: carol, key: \"{CAROL}\"}}\n    - {{name: Carol, key: \"{DAVE}\"}}\n"
            ),
            "approval.signers[1].name: Carol is already the name of approval.signers[0]",
        );
        rejects(
            &format!(
                "approval:\n  signers:\n    - {{name: carol, key: \"{CAROL}\"}}\n    - {{name: carol2, key: \"{CAROL}\"}}\n"
            ),
            "approval.signers[1].key: the same key as approval.signers[0]",
        );
        rejects(
            &format!("approval:\n  signers:\n    - {{name: ' ', key: \"{CAROL}\"}}\n"),
            "approval.signers[0].name: must not be empty",
        );
    }

    #[test]
    fn expiry_warnings_must_be_positive_distinct_durations() {
        rejects(
            "lifecycle:\n  expiryWarnings: [30d, 7d, 1 day]\n",
            "lifecycle.expiryWarnings[2]: invalid duration \"1 day\"",
        );
        rejects(
            "lifecycle:\n  expiryWarnings: [0s]\n",
            "lifecycle.expiryWarnings[0]: 0s is not longer than 0s",
        );
        rejects(
            "lifecycle:\n  expiryWarnings: [7d, 1w]\n",
            "lifecycle.expiryWarnings[1]: 1w is listed twice",
        );
    }

    #[test]
    fn aging_thresholds_are_keyed_by_rating() {
        rejects(
            "lifecycle:\n  agingAfter: {Severe: 30d}\n",
            "lifecycle.agingAfter: Severe is not a risk rating",
        );
        rejects(
            "lifecycle:\n  agingAfter: {High: soon}\n",
            "lifecycle.agingAfter.High: invalid duration \"soon\"",
        );
        let config = config("lifecycle:\n  agingAfter: {Critical: 2w}\n");
        assert_eq!(config.aging_after(RiskLevel::Low), None);
        assert_eq!(
            config.aging_after(RiskLevel::Critical),
            Some(SignedDuration::from_hours(14 * 24))
        );
    }

    #[test]
    fn the_default_level_is_none_baseline_or_restricted() {
        rejects(
            "enforcement:\n  defaultLevel: strict\n",
            "enforcement.defaultLevel: strict is not a level (none, baseline, restricted)",
        );
        rejects(
            "enforcement:\n  defaultLevel: privileged\n",
            "use none to enforce nothing",
        );
        let none = config("enforcement:\n  defaultLevel: none\n");
        assert_eq!(none.enforcement.default_level.pss_level(), None);
    }

    #[test]
    fn extras_are_off_by_default_and_read_from_enforcement_extras() {
        assert_eq!(
            Config::default().enforcement.extras,
            crate::policy::controls::Extras::default()
        );
        let config = Config::from_yaml(
            "enforcement:\n  extras:\n    imageTagLatest: true\n    allowedRegistries: [registry.example.com, ghcr.io]\n",
        )
        .unwrap();
        assert!(config.enforcement.extras.image_tag_latest);
        assert!(!config.enforcement.extras.resource_limits);
        assert_eq!(
            config.enforcement.extras.allowed_registries,
            ["registry.example.com", "ghcr.io"]
        );
        let error =
            Config::from_yaml("enforcement:\n  extras:\n    allowedRegistries: [ghcr.io/org]\n")
                .unwrap_err();
        assert!(
            error
                .to_string()
                .contains("enforcement.extras.allowedRegistries[0]"),
            "{error}"
        );
        let error = Config::from_yaml("enforcement:\n  extras:\n    latest: true\n").unwrap_err();
        assert!(error.to_string().contains("latest"), "{error}");
    }

    #[test]
    fn excluded_namespaces_must_be_namespace_names() {
        rejects(
            "enforcement:\n  excludedNamespaces: [kube-system, Team_A]\n",
            "enforcement.excludedNamespaces[1]: \"Team_A\" is not a namespace name",
        );
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let error = Config::from_yaml(
            "approval:\n  rules: [{ratings: [Low, Medium, High, Critical], approvers: {groups: [a]}, quorum: 0}]\nenforcement:\n  defaultLevel: strict\n",
        )
        .unwrap_err();
        assert_eq!(error.problems().len(), 2, "{error}");
    }

    #[test]
    fn load_names_the_file() {
        let dir =
            std::env::temp_dir().join(format!("exception-operator-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("config.yaml");
        std::fs::write(&path, "enforcement:\n  defaultLevel: strict\n").unwrap();
        let error = Config::load(&path).unwrap_err();
        assert!(
            error.to_string().contains(&path.display().to_string()),
            "{error}"
        );
        std::fs::write(&path, DOCUMENTED_DEFAULT).unwrap();
        assert_eq!(Config::load(&path).unwrap(), Config::default());
        std::fs::remove_dir_all(&dir).unwrap();

        let missing = Config::load(Path::new("/nonexistent/config.yaml")).unwrap_err();
        assert!(matches!(missing, ConfigError::Read { .. }));
        assert!(missing.to_string().contains("/nonexistent/config.yaml"));
    }
}
