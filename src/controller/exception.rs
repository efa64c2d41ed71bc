//! Reconciling a SecurityException: verify approvals from annotations, read
//! the state of its compensating controls, evaluate the lifecycle, write
//! status, announce transitions, requeue at the next instant that matters.

use std::{sync::Arc, time::Duration};

use k8s_openapi::{apimachinery::pkg::apis::meta::v1::Time, jiff::Timestamp};
use kube::{
    Api, Resource, ResourceExt,
    runtime::{
        controller::Action,
        events::{Event, EventType},
        reflector::ObjectRef,
    },
};
use tracing::{info, warn};

use super::{Context, Error, requeue_until, status};
use crate::{
    api::{
        ApprovalRecord, HistoryEntry, Phase, RiskLevel, SecurityException, SecurityExceptionStatus,
        UserRef, conditions,
    },
    metrics::PhaseLabels,
    policy::{
        approval::{self, ApprovalMethod, Verdict},
        lifecycle::{self, ApprovalState, Evaluation},
    },
};

/// How many transitions `status.history` keeps.
pub const HISTORY_LIMIT: usize = 20;
/// The longest a reconcile waits before looking again, even with nothing due.
const RESYNC: Duration = Duration::from_secs(3600);
/// How soon to look again when a referenced control has not been evaluated yet
/// (right after start-up): never conclude Suspended from not knowing.
const CONTROLS_PENDING: Duration = Duration::from_secs(1);

/// What the metrics gauges count of one exception.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    phase: Phase,
    rating: RiskLevel,
    expiring: bool,
    aging: bool,
}

pub(super) async fn reconcile(
    exception: Arc<SecurityException>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    super::timed(
        &context,
        "SecurityException",
        reconcile_inner(&exception, &context),
    )
    .await
}

async fn reconcile_inner(
    exception: &SecurityException,
    context: &Context,
) -> Result<Action, Error> {
    let name = exception.name_any();
    let namespace = exception.namespace().ok_or_else(|| Error::NoNamespace {
        kind: "SecurityException",
        name: name.clone(),
    })?;
    let now = Timestamp::now();

    let Some(controls) = context
        .control_board
        .states_for(exception, &context.controls)
    else {
        return Ok(Action::requeue(CONTROLS_PENDING));
    };
    let verdict = approval::verify(exception, &context.seal_key, &context.config);
    let approval = lifecycle::approval_state(&verdict);
    let evaluation = lifecycle::evaluate(exception, &approval, &controls, &context.config, now);

    let previous = exception.status.clone().unwrap_or_default();
    let status = next_status(exception, &previous, &verdict, &approval, &evaluation, now);
    let api: Api<SecurityException> = Api::namespaced(context.client.clone(), &namespace);
    status::apply(&api, &name, &status)
        .await
        .map_err(|source| Error::WriteStatus {
            kind: "SecurityException",
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;
    // Events after the status write: a failed write retries the whole
    // reconcile, and the persisted status is what keeps each Event to one.
    for event in events(&previous, &status, &approval) {
        if let Err(error) = context
            .recorder
            .publish(&event, &exception.object_ref(&()))
            .await
        {
            warn!(%namespace, %name, %error, reason = %event.reason, "could not publish event");
        }
    }
    if previous.phase != status.phase {
        info!(%namespace, %name, phase = ?status.phase, "transition");
    }
    record_summary(context, exception, &evaluation);
    Ok(requeue_until(evaluation.next_wakeup, now, RESYNC))
}

fn next_status(
    exception: &SecurityException,
    previous: &SecurityExceptionStatus,
    verdict: &Verdict,
    approval: &ApprovalState,
    evaluation: &Evaluation,
    now: Timestamp,
) -> SecurityExceptionStatus {
    let generation = exception.metadata.generation;
    let mut history = previous.history.clone();
    if previous.phase != Some(evaluation.phase) {
        let ready = evaluation.conditions.first();
        history.push(HistoryEntry {
            time: Time(now),
            phase: evaluation.phase,
            reason: ready.map(|c| c.reason.clone()).unwrap_or_default(),
            actor: transition_actor(evaluation.phase, approval),
        });
        let overflow = history.len().saturating_sub(HISTORY_LIMIT);
        history.drain(..overflow);
    }
    let active_since = match (evaluation.phase, previous.phase) {
        (Phase::Active, Some(Phase::Active)) => previous.active_since.clone().or(Some(Time(now))),
        (Phase::Active, _) => Some(Time(now)),
        _ => previous.active_since.clone(),
    };
    SecurityExceptionStatus {
        phase: Some(evaluation.phase),
        observed_generation: generation,
        conditions: status::conditions(
            &evaluation.conditions,
            &previous.conditions,
            generation,
            now,
        ),
        approvals: verdict
            .approvals
            .iter()
            .map(|a| ApprovalRecord {
                approver: a.approver.clone(),
                approved_at: a.at.map(Time),
                method: match a.method {
                    ApprovalMethod::Identity => "Identity".into(),
                    ApprovalMethod::Signature => "Signature".into(),
                },
                spec_hash: a.spec_hash.clone(),
            })
            .collect(),
        spec_hash: Some(verdict.spec_hash.clone()),
        requested_by: verdict.requester.as_ref().map(|r| UserRef {
            username: r.user.clone(),
            uid: r.uid.clone(),
        }),
        active_since,
        expires_at: Some(exception.spec.expires_at.clone()),
        // Owned by the compliance pass's own field manager: leaving it out
        // of this apply keeps the lifecycle from co-owning (or removing) it.
        coverage: None,
        history,
    }
}

fn transition_actor(phase: Phase, approval: &ApprovalState) -> Option<String> {
    match phase {
        Phase::Active => Some(approval.approvers.join(", ")).filter(|a| !a.is_empty()),
        Phase::Denied => approval.denial.as_ref().map(|d| d.by.clone()),
        Phase::Revoked => approval.revocation.as_ref().map(|d| d.by.clone()),
        _ => None,
    }
}

/// The Events a transition from `previous` to `next` deserves. Derived from
/// the persisted status, so a restarted controller announces nothing twice.
fn events(
    previous: &SecurityExceptionStatus,
    next: &SecurityExceptionStatus,
    approval: &ApprovalState,
) -> Vec<Event> {
    let mut events = Vec::new();
    let ready_message = status::find(&next.conditions, conditions::READY)
        .map(|c| c.message.clone())
        .unwrap_or_default();
    if previous.phase != next.phase {
        let (type_, reason) = match (previous.phase, next.phase) {
            (_, Some(Phase::Active)) if previous.phase == Some(Phase::Suspended) => {
                (EventType::Normal, "Reactivated")
            }
            (_, Some(Phase::Active)) => (EventType::Normal, "Approved"),
            (Some(Phase::Active | Phase::Suspended), Some(Phase::Pending)) => {
                (EventType::Warning, "ApprovalVoided")
            }
            (_, Some(Phase::Pending)) => (EventType::Normal, "Pending"),
            (_, Some(Phase::Denied)) => (EventType::Warning, "Denied"),
            (_, Some(Phase::Revoked)) => (EventType::Warning, "Revoked"),
            (_, Some(Phase::Expired)) => (EventType::Warning, "Expired"),
            (_, Some(Phase::Suspended)) => (EventType::Warning, "Suspended"),
            (_, None) => return events,
        };
        let note = match next.phase {
            Some(Phase::Active) if reason == "Approved" => {
                format!(
                    "approved by {}; {ready_message}",
                    approval.approvers.join(", ")
                )
            }
            Some(Phase::Pending) if reason == "ApprovalVoided" => format!(
                "the spec changed, so earlier approvals no longer apply; {}",
                status::find(&next.conditions, conditions::APPROVED)
                    .map(|c| c.message.as_str())
                    .unwrap_or_default()
            ),
            _ => ready_message.clone(),
        };
        events.push(event(type_, reason, note));
    }
    let expiring = |s: &SecurityExceptionStatus| {
        status::find(&s.conditions, conditions::EXPIRING_SOON)
            .filter(|c| c.status == "True")
            .map(|c| (c.reason.clone(), c.message.clone()))
    };
    // Announced while in force: on entering each window, and on becoming
    // Active inside one.
    let was_active = previous.phase == Some(Phase::Active);
    if let Some((reason, message)) = expiring(next)
        && next.phase == Some(Phase::Active)
        && (!was_active || expiring(previous).map(|(r, _)| r) != Some(reason))
    {
        events.push(event(EventType::Warning, "ExpiringSoon", message));
    }
    let aging = |s: &SecurityExceptionStatus| {
        status::find(&s.conditions, conditions::AGING).is_some_and(|c| c.status == "True")
    };
    if aging(next) && !aging(previous) {
        let message = status::find(&next.conditions, conditions::AGING)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        events.push(event(EventType::Warning, "Aging", message));
    }
    let unused = |s: &SecurityExceptionStatus| {
        status::find(&s.conditions, conditions::UNUSED).is_some_and(|c| c.status == "True")
    };
    if unused(next) && !unused(previous) {
        let message = status::find(&next.conditions, conditions::UNUSED)
            .map(|c| c.message.clone())
            .unwrap_or_default();
        events.push(event(EventType::Normal, "Unused", message));
    }
    events
}

fn event(type_: EventType, reason: &str, note: String) -> Event {
    Event {
        type_,
        reason: reason.into(),
        // The Events API caps notes at 1 kB.
        note: Some(note.chars().take(1000).collect()),
        action: "Reconcile".into(),
        secondary: None,
    }
}

fn record_summary(context: &Context, exception: &SecurityException, evaluation: &Evaluation) {
    let Ok(mut summaries) = context.summaries.lock() else {
        return;
    };
    summaries.insert(
        ObjectRef::from_obj(exception),
        Summary {
            phase: evaluation.phase,
            rating: exception.spec.risk.rating,
            expiring: evaluation.expiring_within.is_some(),
            aging: evaluation.aging,
        },
    );
    // Deleted exceptions leave the store; drop them from the gauges too.
    summaries.retain(|key, _| {
        context.exceptions.get(key).is_some() || key == &ObjectRef::from_obj(exception)
    });
    let metrics = &context.metrics;
    metrics.exceptions.clear();
    let (mut expiring, mut aging) = (0, 0);
    for summary in summaries.values() {
        metrics
            .exceptions
            .get_or_create(&PhaseLabels {
                phase: format!("{:?}", summary.phase),
                rating: format!("{:?}", summary.rating),
            })
            .inc();
        expiring += i64::from(summary.expiring);
        aging += i64::from(summary.aging);
    }
    metrics.expiring.set(expiring);
    metrics.aging.set(aging);
}

#[cfg(test)]
mod tests {
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition;

    use super::*;

    fn with_unused(status: &str) -> SecurityExceptionStatus {
        SecurityExceptionStatus {
            phase: Some(Phase::Active),
            conditions: vec![Condition {
                type_: conditions::UNUSED.into(),
                status: status.into(),
                reason: "NoWorkloadRelies".into(),
                message: "no live workload relies on it".into(),
                observed_generation: Some(1),
                last_transition_time: Time(Timestamp::UNIX_EPOCH),
            }],
            ..Default::default()
        }
    }

    #[test]
    fn unused_is_announced_once_when_it_turns_true() {
        let approval = ApprovalState::default();
        let reasons = |previous: &SecurityExceptionStatus, next: &SecurityExceptionStatus| {
            events(previous, next, &approval)
                .into_iter()
                .map(|e| (e.type_, e.reason))
                .collect::<Vec<_>>()
        };
        assert_eq!(
            reasons(&with_unused("False"), &with_unused("True")),
            vec![(EventType::Normal, "Unused".to_string())]
        );
        assert!(reasons(&with_unused("True"), &with_unused("True")).is_empty());
        assert!(reasons(&with_unused("True"), &with_unused("False")).is_empty());
    }
}
