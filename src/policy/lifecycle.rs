//! The lifecycle of an exception as a pure function: phase, conditions and
//! the next instant that matters, from the object, its verified approvals,
//! the state of its compensating controls, the configuration and the clock.
//!
//! Nothing here reads `status` to decide anything except when a condition
//! last changed: the phase is recomputed from scratch every time, so a
//! restarted controller reaches the same answer.

use std::collections::BTreeMap;

use k8s_openapi::jiff::{SignedDuration, Timestamp};

use crate::api::{CompensatingControl, Phase, SecurityException, conditions as condition_type};
use crate::config::Config;

/// What the approval core concluded about the current spec.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ApprovalState {
    /// Distinct, authorised approvers of the current spec, in approval order.
    pub approvers: Vec<String>,
    /// How many approvers the rating's rule requires.
    pub quorum: u32,
    /// When the quorum was reached (the time of the approval that completed it).
    pub approved_at: Option<Timestamp>,
    /// A sealed denial of the current spec: who and why.
    pub denial: Option<Decision>,
    /// A sealed revocation of the current spec: who and why.
    pub revocation: Option<Decision>,
}

impl ApprovalState {
    /// Whether the quorum of distinct approvers is met.
    pub fn quorum_met(&self) -> bool {
        self.quorum > 0 && self.approvers.len() >= self.quorum as usize
    }
}

/// A denial or revocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Decision {
    /// Who decided.
    pub by: String,
    /// Why.
    pub reason: String,
}

/// The state of one compensating control, as the controller observed it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ControlState {
    /// The control exists, its evidence is present and its review is current.
    Ready,
    /// The control exists but is not Ready; the message says why.
    NotReady(String),
    /// No CompensatingControl of that name exists in the namespace.
    Missing,
}

/// One condition to write, before transition times are merged in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConditionState {
    /// Condition type (see [`crate::api::conditions`]).
    pub type_: &'static str,
    /// `True` or `False`.
    pub status: bool,
    /// PascalCase reason.
    pub reason: String,
    /// Sentence for people.
    pub message: String,
}

/// Everything the controller writes and schedules for one exception.
#[derive(Clone, Debug, PartialEq)]
pub struct Evaluation {
    /// The phase now.
    pub phase: Phase,
    /// Conditions, `Ready` first.
    pub conditions: Vec<ConditionState>,
    /// The smallest expiry warning window the exception is inside, if any.
    pub expiring_within: Option<SignedDuration>,
    /// Whether the exception has outlived its expected resolution time.
    pub aging: bool,
    /// The next instant at which this evaluation would change by the clock alone.
    pub next_wakeup: Option<Timestamp>,
}

/// Evaluates an exception at `now`.
pub fn evaluate(
    exception: &SecurityException,
    approval: &ApprovalState,
    controls: &BTreeMap<String, ControlState>,
    config: &Config,
    now: Timestamp,
) -> Evaluation {
    let spec = &exception.spec;
    let expires_at = spec.expires_at.0;
    let rule = config.rule_for(spec.risk.rating);
    let mut wakeups = Wakeups::after(now);
    wakeups.add(expires_at);

    let approved = approval_condition(exception, approval, config);
    let controls_verified = controls_condition(exception, controls, config);

    // Expiry warnings: the smallest window we are inside, and the next one to enter.
    let mut expiring_within = None;
    for window in &config.lifecycle.expiry_warnings {
        let window = window.get();
        let enters_at = expires_at - window;
        wakeups.add(enters_at);
        if now >= enters_at && now < expires_at {
            expiring_within = Some(match expiring_within {
                Some(smaller) if smaller < window => smaller,
                _ => window,
            });
        }
    }

    let (aging, aging_condition) = aging_condition(exception, approval, config, now, &mut wakeups);

    let expired = exception.is_expired(now);
    let exceeds_max_duration = match (rule.and_then(|r| r.max_duration), approval.approved_at) {
        (Some(max), Some(approved_at)) => expires_at.duration_since(approved_at) > max.get(),
        _ => false,
    };
    let (phase, ready_reason, ready_message) = if let Some(revocation) = &approval.revocation {
        (
            Phase::Revoked,
            "Revoked",
            format!("revoked by {}: {}", revocation.by, revocation.reason),
        )
    } else if let Some(denial) = &approval.denial {
        (
            Phase::Denied,
            "Denied",
            format!("denied by {}: {}", denial.by, denial.reason),
        )
    } else if expired {
        (
            Phase::Expired,
            "Expired",
            format!("expired at {expires_at}"),
        )
    } else if !approved.status {
        (
            Phase::Pending,
            approved.reason.as_str(),
            approved.message.clone(),
        )
    } else if exceeds_max_duration {
        (
            Phase::Pending,
            "ExceedsMaxDuration",
            format!(
                "expiresAt {expires_at} is further from the approval than the {} allowed for rating {:?}; shorten it and re-approve",
                rule.and_then(|r| r.max_duration)
                    .map(|d| d.to_string())
                    .unwrap_or_default(),
                spec.risk.rating
            ),
        )
    } else if !controls_verified.status {
        (
            Phase::Suspended,
            "Suspended",
            controls_verified.message.clone(),
        )
    } else {
        (
            Phase::Active,
            "Active",
            format!("in force until {expires_at}"),
        )
    };
    let ready_reason = ready_reason.to_string();

    let mut conditions = vec![
        ConditionState {
            type_: condition_type::READY,
            status: phase == Phase::Active,
            reason: ready_reason,
            message: ready_message,
        },
        approved,
        controls_verified,
        ConditionState {
            type_: condition_type::EXPIRING_SOON,
            status: expiring_within.is_some(),
            reason: match expiring_within {
                Some(window) => expiring_reason(window),
                None if expired => "Expired".into(),
                None => "NotExpiringSoon".into(),
            },
            message: match expiring_within {
                Some(window) => format!("expires at {expires_at}, within {}", human(window)),
                None => format!("expires at {expires_at}"),
            },
        },
    ];
    conditions.push(aging_condition);
    conditions.push(unused_condition(
        exception,
        phase,
        approval,
        now,
        &mut wakeups,
    ));

    Evaluation {
        phase,
        conditions,
        expiring_within,
        aging,
        next_wakeup: if expired {
            wakeups.first_after_expiry(expires_at)
        } else {
            wakeups.next
        },
    }
}

/// The PascalCase reason of the `ExpiringSoon` condition for a window, e.g.
/// `ExpiresWithin7d`. Also the key that keeps each warning Event to one.
pub fn expiring_reason(window: SignedDuration) -> String {
    format!("ExpiresWithin{}", human(window))
}

fn approval_condition(
    exception: &SecurityException,
    approval: &ApprovalState,
    config: &Config,
) -> ConditionState {
    let rating = exception.spec.risk.rating;
    let (status, reason, message) = if let Some(revocation) = &approval.revocation {
        (
            false,
            "Revoked",
            format!("revoked by {}: {}", revocation.by, revocation.reason),
        )
    } else if let Some(denial) = &approval.denial {
        (
            false,
            "Denied",
            format!("denied by {}: {}", denial.by, denial.reason),
        )
    } else if config.rule_for(rating).is_none() {
        (
            false,
            "NoApprovalRule",
            format!("no approval rule covers risk rating {rating:?}; it cannot be approved"),
        )
    } else if approval.quorum_met() {
        (
            true,
            "Approved",
            format!("approved by {}", approval.approvers.join(", ")),
        )
    } else {
        let missing =
            approval.quorum as usize - approval.approvers.len().min(approval.quorum as usize);
        (
            false,
            "AwaitingApproval",
            if approval.approvers.is_empty() {
                format!("awaiting {missing} approval(s) of the current spec (rating {rating:?})")
            } else {
                format!(
                    "approved by {}; awaiting {missing} more approval(s) of the current spec (rating {rating:?})",
                    approval.approvers.join(", ")
                )
            },
        )
    };
    ConditionState {
        type_: condition_type::APPROVED,
        status,
        reason: reason.into(),
        message,
    }
}

fn controls_condition(
    exception: &SecurityException,
    controls: &BTreeMap<String, ControlState>,
    config: &Config,
) -> ConditionState {
    let names = &exception.spec.compensating_controls;
    let required = config
        .rule_for(exception.spec.risk.rating)
        .is_some_and(|rule| rule.require_compensating_controls);
    let failing: Vec<String> = names
        .iter()
        .filter_map(
            |name| match controls.get(name).unwrap_or(&ControlState::Missing) {
                ControlState::Ready => None,
                ControlState::Missing => Some(format!("{name} does not exist")),
                ControlState::NotReady(why) => Some(format!("{name} is not Ready: {why}")),
            },
        )
        .collect();
    let (status, reason, message) = if names.is_empty() && required {
        (
            false,
            "CompensatingControlsRequired",
            format!(
                "risk rating {:?} requires at least one compensating control",
                exception.spec.risk.rating
            ),
        )
    } else if !failing.is_empty() {
        (false, "ControlFailing", failing.join("; "))
    } else if names.is_empty() {
        (
            true,
            "NoneRequired",
            "no compensating controls referenced or required".into(),
        )
    } else {
        (true, "Verified", format!("{} Ready", names.join(", ")))
    };
    ConditionState {
        type_: condition_type::CONTROLS_VERIFIED,
        status,
        reason: reason.into(),
        message,
    }
}

/// Aging: the exception has existed longer than its rating's expected
/// resolution time (renewals keep the same object, so the clock runs across
/// them), or its review is overdue (`reviewInterval` after the approval).
fn aging_condition(
    exception: &SecurityException,
    approval: &ApprovalState,
    config: &Config,
    now: Timestamp,
    wakeups: &mut Wakeups,
) -> (bool, ConditionState) {
    let spec = &exception.spec;
    let created = exception.metadata.creation_timestamp.as_ref().map(|t| t.0);
    let outlived = config
        .aging_after(spec.risk.rating)
        .zip(created)
        .map(|(after, created)| {
            let at = created + after;
            wakeups.add(at);
            (now >= at, after)
        });
    let review_due = spec
        .review_interval
        .as_deref()
        .and_then(|text| crate::duration::parse(text).ok())
        .zip(approval.approved_at)
        .map(|(interval, approved_at)| {
            let due = approved_at + interval;
            wakeups.add(due);
            due
        });
    let (status, reason, message) = match (outlived, review_due) {
        (Some((true, after)), _) => (
            true,
            "OutlivedExpectedResolution",
            format!(
                "open for longer than the {} expected for rating {:?}; remediate or accept the risk formally",
                human(after),
                spec.risk.rating
            ),
        ),
        (_, Some(due)) if now >= due => (
            true,
            "ReviewOverdue",
            format!("review was due at {due}; review it and re-approve"),
        ),
        _ => (
            false,
            "WithinExpectations",
            "within its expected resolution time".into(),
        ),
    };
    (
        status,
        ConditionState {
            type_: condition_type::AGING,
            status,
            reason: reason.into(),
            message,
        },
    )
}

/// How long an Active exception must go without any live workload relying
/// on it before it is `Unused`: counted from the last use, or from when it
/// became Active if that is later.
pub const UNUSED_GRACE: SignedDuration = SignedDuration::from_mins(10);

/// Unused: Active, and no live workload has relied on it for
/// [`UNUSED_GRACE`]. Reads `status.coverage` (and `status.activeSince`),
/// which only the operator writes and which decide this condition alone,
/// never the phase or admission.
fn unused_condition(
    exception: &SecurityException,
    phase: Phase,
    approval: &ApprovalState,
    now: Timestamp,
    wakeups: &mut Wakeups,
) -> ConditionState {
    let status = exception.status.as_ref();
    let coverage = status.and_then(|s| s.coverage.as_ref());
    let (unused, reason, message) = match coverage {
        _ if phase != Phase::Active => (
            false,
            "NotInForce",
            "not in force, so no workload can rely on it".to_string(),
        ),
        None => (
            false,
            "CoverageUnknown",
            "no live workload has been evaluated against it yet".to_string(),
        ),
        Some(coverage) if coverage.workloads > 0 => (
            false,
            "InUse",
            format!("{} live workload(s) rely on it", coverage.workloads),
        ),
        Some(coverage) => {
            let active_since = status
                .filter(|s| s.phase == Some(Phase::Active))
                .and_then(|s| s.active_since.as_ref())
                .map(|t| t.0);
            let since = [
                coverage.last_used.as_ref().map(|t| t.0),
                active_since,
                approval.approved_at,
            ]
            .into_iter()
            .flatten()
            .max()
            .unwrap_or(now);
            let unused_at = since + UNUSED_GRACE;
            if now >= unused_at {
                let used = match &coverage.last_used {
                    Some(last) => format!("last used at {}", last.0),
                    None => "never used".to_string(),
                };
                (
                    true,
                    "NoWorkloadRelies",
                    format!(
                        "no live workload relies on it ({used}); if none needs it, revoke it or let it expire"
                    ),
                )
            } else {
                wakeups.add(unused_at);
                (
                    false,
                    "InUse",
                    format!(
                        "no live workload relies on it now; Unused from {unused_at} if none does"
                    ),
                )
            }
        }
    };
    ConditionState {
        type_: condition_type::UNUSED,
        status: unused,
        reason: reason.into(),
        message,
    }
}

/// Readiness of a compensating control at `now`, given which of its evidence
/// objects the controller could not find.
#[derive(Clone, Debug, PartialEq)]
pub struct ControlEvaluation {
    /// Conditions: `Ready`, `EvidencePresent`, `ReviewCurrent`.
    pub conditions: Vec<ConditionState>,
    /// When the review becomes overdue, if it is not yet.
    pub next_wakeup: Option<Timestamp>,
}

impl ControlEvaluation {
    /// The state exceptions see.
    pub fn state(&self) -> ControlState {
        let failing: Vec<&str> = self
            .conditions
            .iter()
            .skip(1)
            .filter(|c| !c.status)
            .map(|c| c.message.as_str())
            .collect();
        if failing.is_empty() {
            ControlState::Ready
        } else {
            ControlState::NotReady(failing.join("; "))
        }
    }
}

/// Evaluates a compensating control.
pub fn evaluate_control(
    control: &CompensatingControl,
    missing_evidence: &[String],
    now: Timestamp,
) -> ControlEvaluation {
    let spec = &control.spec;
    let evidence = if missing_evidence.is_empty() {
        ConditionState {
            type_: condition_type::EVIDENCE_PRESENT,
            status: true,
            reason: "EvidencePresent".into(),
            message: if spec.evidence.is_empty() {
                "no evidence objects are named".into()
            } else {
                format!("all {} evidence object(s) exist", spec.evidence.len())
            },
        }
    } else {
        ConditionState {
            type_: condition_type::EVIDENCE_PRESENT,
            status: false,
            reason: "EvidenceMissing".into(),
            message: format!("evidence missing: {}", missing_evidence.join(", ")),
        }
    };
    let interval = spec
        .review_interval
        .as_deref()
        .and_then(|t| crate::duration::parse(t).ok());
    let mut next_wakeup = None;
    let review = match (interval, spec.last_tested.as_ref().map(|t| t.0)) {
        (None, _) => ConditionState {
            type_: condition_type::REVIEW_CURRENT,
            status: true,
            reason: "NoReviewInterval".into(),
            message: "no review interval is set".into(),
        },
        (Some(_), None) => ConditionState {
            type_: condition_type::REVIEW_CURRENT,
            status: false,
            reason: "NeverTested".into(),
            message:
                "a review interval is set but lastTested is not: test the control and record when"
                    .into(),
        },
        (Some(interval), Some(tested)) => {
            let due = tested + interval;
            if now >= due {
                ConditionState {
                    type_: condition_type::REVIEW_CURRENT,
                    status: false,
                    reason: "ReviewOverdue".into(),
                    message: format!("last tested {tested}, review was due at {due}"),
                }
            } else {
                next_wakeup = Some(due);
                ConditionState {
                    type_: condition_type::REVIEW_CURRENT,
                    status: true,
                    reason: "ReviewCurrent".into(),
                    message: format!("last tested {tested}, next review due at {due}"),
                }
            }
        }
    };
    let ready = evidence.status && review.status;
    let ready = ConditionState {
        type_: condition_type::READY,
        status: ready,
        reason: if ready {
            "Ready".into()
        } else {
            "NotReady".into()
        },
        message: if ready {
            "evidence present and review current".into()
        } else {
            [&evidence, &review]
                .iter()
                .filter(|c| !c.status)
                .map(|c| c.message.as_str())
                .collect::<Vec<_>>()
                .join("; ")
        },
    };
    ControlEvaluation {
        conditions: vec![ready, evidence, review],
        next_wakeup,
    }
}

/// A duration as people write it (`7d`, `1d12h`).
fn human(duration: SignedDuration) -> String {
    crate::duration::HumanDuration::new(duration)
        .map(|d| d.to_string())
        .unwrap_or_else(|_| format!("{duration:#}"))
}

/// The earliest future instant among those added.
struct Wakeups {
    now: Timestamp,
    next: Option<Timestamp>,
    all: Vec<Timestamp>,
}

impl Wakeups {
    fn after(now: Timestamp) -> Self {
        Self {
            now,
            next: None,
            all: Vec::new(),
        }
    }

    fn add(&mut self, at: Timestamp) {
        self.all.push(at);
        if at > self.now && self.next.is_none_or(|next| at < next) {
            self.next = Some(at);
        }
    }

    /// Once expired, only instants after the expiry still matter (aging of an
    /// expired exception does not).
    fn first_after_expiry(&self, expires_at: Timestamp) -> Option<Timestamp> {
        self.all
            .iter()
            .copied()
            .filter(|at| *at > self.now && *at > expires_at)
            .min()
    }
}

/// The approval facts the lifecycle needs, from a verified
/// [`Verdict`](crate::policy::approval::Verdict): the counted approvers, the
/// quorum, when the quorum was reached (the time of the approval that
/// completed it, in time order; `None` when it is not met or the approvals
/// carry no time, as signatures do), and the latest valid denial and
/// revocation.
pub fn approval_state(verdict: &crate::policy::approval::Verdict) -> ApprovalState {
    let mut times: Vec<Timestamp> = verdict.approvals.iter().filter_map(|a| a.at).collect();
    times.sort();
    let decision = |record: &crate::policy::approval::SealedRecord| Decision {
        by: record.user.clone(),
        reason: record.reason.clone().unwrap_or_default(),
    };
    ApprovalState {
        approvers: verdict
            .approvals
            .iter()
            .map(|a| a.approver.clone())
            .collect(),
        quorum: verdict.quorum,
        approved_at: verdict
            .quorum_met
            .then(|| {
                times
                    .get((verdict.quorum as usize).saturating_sub(1))
                    .copied()
            })
            .flatten(),
        denial: verdict.denial.as_ref().map(decision),
        revocation: verdict.revocation.as_ref().map(decision),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::api::{RiskLevel, SecurityExceptionSpec};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Time;

    fn at(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn exception(rating: RiskLevel, expires: &str, controls: &[&str]) -> SecurityException {
        let spec: SecurityExceptionSpec = serde_json::from_value(serde_json::json!({
            "controls": [{"id": "privileged"}],
            "targets": {"names": ["agent"]},
            "justification": "needed",
            "risk": {"rating": rating},
            "compensatingControls": controls,
            "expiresAt": expires,
        }))
        .unwrap();
        let mut exception = SecurityException::new("agent", spec);
        exception.metadata.namespace = Some("team".into());
        exception.metadata.generation = Some(1);
        exception.metadata.creation_timestamp = Some(Time(at("2026-12-01T00:00:00Z")));
        exception
    }

    fn approved(by: &[&str], quorum: u32, when: &str) -> ApprovalState {
        ApprovalState {
            approvers: by.iter().map(|s| s.to_string()).collect(),
            quorum,
            approved_at: (by.len() as u32 >= quorum).then(|| at(when)),
            ..Default::default()
        }
    }

    fn condition<'a>(evaluation: &'a Evaluation, type_: &str) -> &'a ConditionState {
        evaluation
            .conditions
            .iter()
            .find(|c| c.type_ == type_)
            .unwrap()
    }

    const NOW: &str = "2026-12-04T12:00:00Z";

    fn with_coverage(
        mut e: SecurityException,
        workloads: i32,
        last_used: Option<&str>,
        active_since: Option<&str>,
    ) -> SecurityException {
        e.status = Some(crate::api::SecurityExceptionStatus {
            phase: Some(Phase::Active),
            active_since: active_since.map(|t| Time(at(t))),
            coverage: Some(crate::api::Coverage {
                workloads,
                last_used: last_used.map(|t| Time(at(t))),
            }),
            ..Default::default()
        });
        e
    }

    #[test]
    fn unused_needs_an_active_exception_no_workload_and_the_grace_period() {
        let approval = approved(&["bob"], 1, "2026-12-02T00:00:00Z");
        let base = || exception(RiskLevel::Medium, "2026-12-20T00:00:00Z", &[]);
        let unused = |e: &SecurityException, now: &str| {
            let eval = evaluate(e, &approval, &BTreeMap::new(), &Config::default(), at(now));
            let c = condition(&eval, condition_type::UNUSED).clone();
            (c.status, c.reason, eval.next_wakeup)
        };

        // No coverage recorded yet: unknown, never Unused.
        let (status, reason, _) = unused(&base(), NOW);
        assert!(!status);
        assert_eq!(reason, "CoverageUnknown");

        // Workloads rely on it.
        let e = with_coverage(base(), 2, Some("2026-12-04T11:59:00Z"), None);
        let (status, reason, _) = unused(&e, NOW);
        assert!(!status);
        assert_eq!(reason, "InUse");

        // None now, last used 5 minutes ago: not yet; wakes up at the end of the grace.
        let e = with_coverage(
            base(),
            0,
            Some("2026-12-04T11:55:00Z"),
            Some("2026-12-03T00:00:00Z"),
        );
        let (status, reason, wakeup) = unused(&e, NOW);
        assert!(!status);
        assert_eq!(reason, "InUse");
        assert_eq!(wakeup, Some(at("2026-12-04T12:05:00Z")));
        // ... and Unused from then on.
        let (status, reason, _) = unused(&e, "2026-12-04T12:05:00Z");
        assert!(status);
        assert_eq!(reason, "NoWorkloadRelies");

        // Never used: the grace runs from when it became Active.
        let e = with_coverage(base(), 0, None, Some("2026-12-04T11:58:00Z"));
        assert!(!unused(&e, NOW).0);
        assert!(unused(&e, "2026-12-04T12:08:00Z").0);

        // Not in force: never Unused.
        let e = with_coverage(
            exception(RiskLevel::Medium, "2026-12-04T00:00:00Z", &[]),
            0,
            None,
            Some("2026-12-02T00:00:00Z"),
        );
        let (status, reason, _) = unused(&e, NOW);
        assert!(!status);
        assert_eq!(reason, "NotInForce");
    }

    #[test]
    fn approved_unexpired_and_controlled_is_active_until_the_next_instant() {
        let e = exception(RiskLevel::Medium, "2026-12-20T00:00:00Z", &[]);
        let eval = evaluate(
            &e,
            &approved(&["bob"], 1, "2026-12-02T00:00:00Z"),
            &BTreeMap::new(),
            &Config::default(),
            at(NOW),
        );
        assert_eq!(eval.phase, Phase::Active);
        assert!(condition(&eval, condition_type::READY).status);
        // Next: entering the 7d window before the expiry.
        assert_eq!(eval.next_wakeup, Some(at("2026-12-13T00:00:00Z")));
        assert_eq!(
            eval.expiring_within,
            Some(SignedDuration::from_hours(24 * 30))
        );
    }

    #[test]
    fn expiry_is_the_instant_of_expires_at() {
        let e = exception(RiskLevel::Medium, "2026-12-04T12:00:00Z", &[]);
        let approval = approved(&["bob"], 1, "2026-12-02T00:00:00Z");
        let before = evaluate(
            &e,
            &approval,
            &BTreeMap::new(),
            &Config::default(),
            at("2026-12-04T11:59:59Z"),
        );
        assert_eq!(before.phase, Phase::Active);
        assert_eq!(before.next_wakeup, Some(at("2026-12-04T12:00:00Z")));
        let exactly = evaluate(&e, &approval, &BTreeMap::new(), &Config::default(), at(NOW));
        assert_eq!(exactly.phase, Phase::Expired);
        assert!(!condition(&exactly, condition_type::READY).status);
    }

    #[test]
    fn the_smallest_expiry_window_entered_is_reported() {
        let e = exception(RiskLevel::Medium, "2026-12-06T00:00:00Z", &[]);
        let eval = evaluate(
            &e,
            &approved(&["bob"], 1, "2026-12-02T00:00:00Z"),
            &BTreeMap::new(),
            &Config::default(),
            at(NOW),
        );
        assert_eq!(
            eval.expiring_within,
            Some(SignedDuration::from_hours(24 * 7))
        );
        assert_eq!(
            condition(&eval, condition_type::EXPIRING_SOON).reason,
            "ExpiresWithin7d"
        );
        assert_eq!(
            eval.next_wakeup,
            Some(at("2026-12-05T00:00:00Z")),
            "the 1d window is next"
        );
    }

    #[test]
    fn a_missing_quorum_is_pending_and_says_how_many_more() {
        let e = exception(RiskLevel::Critical, "2026-12-20T00:00:00Z", &["watch"]);
        let controls = BTreeMap::from([("watch".to_string(), ControlState::Ready)]);
        let eval = evaluate(
            &e,
            &approved(&["bob"], 2, NOW),
            &controls,
            &Config::default(),
            at(NOW),
        );
        assert_eq!(eval.phase, Phase::Pending);
        let approved = condition(&eval, condition_type::APPROVED);
        assert!(
            approved.message.contains("awaiting 1 more"),
            "{}",
            approved.message
        );
    }

    #[test]
    fn a_failing_or_missing_control_suspends() {
        let e = exception(
            RiskLevel::High,
            "2026-12-20T00:00:00Z",
            &["netpol", "ghost"],
        );
        let controls = BTreeMap::from([(
            "netpol".to_string(),
            ControlState::NotReady("evidence missing: NetworkPolicy x".into()),
        )]);
        let eval = evaluate(
            &e,
            &approved(&["bob", "erin"], 2, "2026-12-02T00:00:00Z"),
            &controls,
            &Config::default(),
            at(NOW),
        );
        assert_eq!(eval.phase, Phase::Suspended);
        let verified = condition(&eval, condition_type::CONTROLS_VERIFIED);
        assert!(
            verified
                .message
                .contains("netpol is not Ready: evidence missing"),
            "{}",
            verified.message
        );
        assert!(
            verified.message.contains("ghost does not exist"),
            "{}",
            verified.message
        );
    }

    #[test]
    fn a_rating_that_requires_controls_is_never_active_without_one() {
        let e = exception(RiskLevel::High, "2026-12-20T00:00:00Z", &[]);
        let eval = evaluate(
            &e,
            &approved(&["bob", "erin"], 2, "2026-12-02T00:00:00Z"),
            &BTreeMap::new(),
            &Config::default(),
            at(NOW),
        );
        assert_ne!(eval.phase, Phase::Active);
        assert_eq!(
            condition(&eval, condition_type::CONTROLS_VERIFIED).reason,
            "CompensatingControlsRequired"
        );
    }

    #[test]
    fn revocation_and_denial_outrank_everything() {
        let e = exception(RiskLevel::Medium, "2026-12-20T00:00:00Z", &[]);
        let mut approval = approved(&["bob"], 1, "2026-12-02T00:00:00Z");
        approval.denial = Some(Decision {
            by: "erin".into(),
            reason: "no".into(),
        });
        assert_eq!(
            evaluate(&e, &approval, &BTreeMap::new(), &Config::default(), at(NOW)).phase,
            Phase::Denied
        );
        approval.revocation = Some(Decision {
            by: "erin".into(),
            reason: "fixed".into(),
        });
        assert_eq!(
            evaluate(&e, &approval, &BTreeMap::new(), &Config::default(), at(NOW)).phase,
            Phase::Revoked
        );
    }

    #[test]
    fn an_expiry_further_than_the_rule_allows_from_the_approval_is_not_honoured() {
        // Medium allows 180d by default; approved 2026-12-02, expiring 2027-12-01.
        let e = exception(RiskLevel::Medium, "2027-12-01T00:00:00Z", &[]);
        let eval = evaluate(
            &e,
            &approved(&["bob"], 1, "2026-12-02T00:00:00Z"),
            &BTreeMap::new(),
            &Config::default(),
            at(NOW),
        );
        assert_eq!(eval.phase, Phase::Pending);
        assert_eq!(
            condition(&eval, condition_type::READY).reason,
            "ExceedsMaxDuration"
        );
    }

    #[test]
    fn aging_follows_the_rating_and_the_review_interval() {
        // Critical ages after 30d by default: created 2026-12-01, so on 2026-12-31.
        let e = exception(RiskLevel::Critical, "2026-12-30T00:00:00Z", &["watch"]);
        let controls = BTreeMap::from([("watch".to_string(), ControlState::Ready)]);
        let approval = approved(&["bob", "erin"], 2, "2026-12-02T00:00:00Z");
        let young = evaluate(&e, &approval, &controls, &Config::default(), at(NOW));
        assert!(!young.aging);
        let mut reviewed = e.clone();
        reviewed.spec.review_interval = Some("1d".into());
        let overdue = evaluate(&reviewed, &approval, &controls, &Config::default(), at(NOW));
        assert!(overdue.aging);
        assert_eq!(
            condition(&overdue, condition_type::AGING).reason,
            "ReviewOverdue"
        );
    }

    #[test]
    fn a_control_is_ready_only_with_its_evidence_and_a_current_review() {
        let control: CompensatingControl = serde_json::from_value(serde_json::json!({
            "apiVersion": "exceptions.dev/v1alpha1", "kind": "CompensatingControl",
            "metadata": {"name": "netpol", "namespace": "team"},
            "spec": {"description": "d", "category": "NetworkIsolation", "reviewInterval": "30d", "lastTested": "2026-11-20T00:00:00Z"}
        }))
        .unwrap();
        let fine = evaluate_control(&control, &[], at(NOW));
        assert_eq!(fine.state(), ControlState::Ready);
        assert_eq!(fine.next_wakeup, Some(at("2026-12-20T00:00:00Z")));
        let missing = evaluate_control(&control, &["NetworkPolicy egress".into()], at(NOW));
        assert!(
            matches!(missing.state(), ControlState::NotReady(why) if why.contains("NetworkPolicy egress"))
        );
        let overdue = evaluate_control(&control, &[], at("2026-12-21T00:00:00Z"));
        assert!(
            matches!(overdue.state(), ControlState::NotReady(why) if why.contains("review was due"))
        );
    }
}
