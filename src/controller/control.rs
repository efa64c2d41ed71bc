//! Reconciling a CompensatingControl: check that its evidence objects exist,
//! that its review is current, record which exceptions rely on it, and watch
//! the evidence kinds so that deleting a NetworkPolicy suspends the exceptions
//! it backs within seconds.

use std::{
    collections::{HashMap, HashSet},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::{StreamExt, channel::mpsc};
use k8s_openapi::jiff::Timestamp;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{DynamicObject, PartialObjectMeta},
    core::GroupVersionKind,
    discovery::{ApiResource, pinned_kind},
    runtime::{
        WatchStreamExt,
        controller::Action,
        events::{Event, EventType},
        reflector::{ObjectRef, Store},
        watcher::{self, watcher},
    },
};
use serde::Serialize;
use tracing::{debug, warn};

use super::{Context, Error, requeue_until, status};
use crate::{
    api::{CompensatingControl, EvidenceRef, conditions},
    policy::lifecycle,
};

const RESYNC: Duration = Duration::from_secs(3600);

/// Watches on the kinds that evidence names, started on first use.
pub struct EvidenceWatches {
    client: Client,
    /// Discovered resources, so a kind is looked up once, not per reconcile.
    resources: Mutex<HashMap<GroupVersionKind, ApiResource>>,
    watched: Mutex<HashSet<GroupVersionKind>>,
    triggers: mpsc::UnboundedSender<ObjectRef<CompensatingControl>>,
}

impl EvidenceWatches {
    /// The watch set and the stream of controls its watches trigger.
    pub fn new(
        client: Client,
    ) -> (
        Self,
        mpsc::UnboundedReceiver<ObjectRef<CompensatingControl>>,
    ) {
        let (triggers, receiver) = mpsc::unbounded();
        (
            Self {
                client,
                resources: Mutex::default(),
                watched: Mutex::default(),
                triggers,
            },
            receiver,
        )
    }

    /// Starts a metadata watch on `resource` unless one runs: every change to
    /// an object of that kind re-evaluates the controls that name it.
    fn ensure(
        &self,
        gvk: &GroupVersionKind,
        resource: &ApiResource,
        controls: Store<CompensatingControl>,
    ) {
        let Ok(mut watched) = self.watched.lock() else {
            return;
        };
        if !watched.insert(gvk.clone()) {
            return;
        }
        let api: Api<PartialObjectMeta<DynamicObject>> =
            Api::all_with(self.client.clone(), resource);
        let triggers = self.triggers.clone();
        let kind = gvk.kind.clone();
        let group = gvk.group.clone();
        tokio::spawn(async move {
            let mut changes = watcher(api, watcher::Config::default())
                .default_backoff()
                .touched_objects()
                .boxed();
            while let Some(change) = changes.next().await {
                let object = match change {
                    Ok(object) => object,
                    Err(error) => {
                        warn!(%kind, %error, "evidence watch error; retrying");
                        continue;
                    }
                };
                let namespace = object.namespace();
                let name = object.name_any();
                for control in controls.state() {
                    let names_it = control.namespace() == namespace
                        && control.spec.evidence.iter().any(|e| {
                            e.kind == kind && e.name == name && api_group(&e.api_version) == group
                        });
                    if names_it {
                        debug!(%kind, %name, control = %control.name_any(), "evidence changed");
                        let _ = triggers.unbounded_send(ObjectRef::from_obj(&*control));
                    }
                }
            }
        });
    }
}

fn api_group(api_version: &str) -> &str {
    api_version.rsplit_once('/').map_or("", |(group, _)| group)
}

fn gvk_of(evidence: &EvidenceRef) -> GroupVersionKind {
    let (group, version) = evidence
        .api_version
        .rsplit_once('/')
        .unwrap_or(("", &evidence.api_version));
    GroupVersionKind::gvk(group, version, &evidence.kind)
}

/// The status the operator owns.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ControlStatus {
    observed_generation: Option<i64>,
    conditions: Vec<k8s_openapi::apimachinery::pkg::apis::meta::v1::Condition>,
    missing_evidence: Vec<EvidenceRef>,
    exceptions: Vec<String>,
}

pub(super) async fn reconcile(
    control: Arc<CompensatingControl>,
    context: Arc<Context>,
) -> Result<Action, Error> {
    super::timed(
        &context,
        "CompensatingControl",
        reconcile_inner(&control, &context),
    )
    .await
}

async fn reconcile_inner(
    control: &CompensatingControl,
    context: &Context,
) -> Result<Action, Error> {
    let name = control.name_any();
    let namespace = control.namespace().ok_or_else(|| Error::NoNamespace {
        kind: "CompensatingControl",
        name: name.clone(),
    })?;
    let now = Timestamp::now();

    let mut missing = Vec::new();
    for evidence in &control.spec.evidence {
        if !evidence_exists(evidence, &namespace, &name, context).await? {
            missing.push(evidence.clone());
        }
    }
    let missing_names: Vec<String> = missing
        .iter()
        .map(|e| format!("{} {}", e.kind, e.name))
        .collect();
    let evaluation = lifecycle::evaluate_control(control, &missing_names, now);

    let exceptions: Vec<String> = {
        let mut names: Vec<String> = context
            .exceptions
            .state()
            .iter()
            .filter(|e| {
                e.namespace().as_deref() == Some(namespace.as_str())
                    && e.spec.compensating_controls.contains(&name)
            })
            .map(|e| e.name_any())
            .collect();
        names.sort();
        names
    };
    let previous = control.status.clone().unwrap_or_default();
    let generation = control.metadata.generation;
    let status = ControlStatus {
        observed_generation: generation,
        conditions: status::conditions(
            &evaluation.conditions,
            &previous.conditions,
            generation,
            now,
        ),
        missing_evidence: missing,
        exceptions,
    };
    // Record the evaluation before writing: the status write triggers the
    // exceptions that reference this control, and they read this map.
    context.control_board.record(control, evaluation.clone());
    let api: Api<CompensatingControl> = Api::namespaced(context.client.clone(), &namespace);
    status::apply(&api, &name, &status)
        .await
        .map_err(|source| Error::WriteStatus {
            kind: "CompensatingControl",
            namespace: namespace.clone(),
            name: name.clone(),
            source,
        })?;

    let was_ready =
        status::find(&previous.conditions, conditions::READY).map(|c| c.status == "True");
    let ready = status::find(&status.conditions, conditions::READY);
    if let Some(ready) = ready {
        let now_ready = ready.status == "True";
        if was_ready != Some(now_ready) && (was_ready.is_some() || !now_ready) {
            let (type_, reason) = if now_ready {
                (EventType::Normal, "Ready")
            } else if !status.missing_evidence.is_empty() {
                (EventType::Warning, "EvidenceMissing")
            } else {
                (EventType::Warning, "ReviewOverdue")
            };
            let event = Event {
                type_,
                reason: reason.into(),
                note: Some(ready.message.chars().take(1000).collect()),
                action: "Reconcile".into(),
                secondary: None,
            };
            if let Err(error) = context
                .recorder
                .publish(&event, &control.object_ref(&()))
                .await
            {
                warn!(%namespace, %name, %error, "could not publish event");
            }
        }
    }
    Ok(requeue_until(evaluation.next_wakeup, now, RESYNC))
}

/// Whether an evidence object exists. A kind the API server does not serve
/// counts as missing (the control cannot be backed by it); other failures
/// are errors, so a flaky API never suspends an exception.
async fn evidence_exists(
    evidence: &EvidenceRef,
    namespace: &str,
    control: &str,
    context: &Context,
) -> Result<bool, Error> {
    let gvk = gvk_of(evidence);
    let failed = |source| Error::Evidence {
        evidence: format!(
            "{}/{}/{}",
            evidence.api_version, evidence.kind, evidence.name
        ),
        namespace: namespace.to_string(),
        name: control.to_string(),
        source,
    };
    let cached = context
        .evidence
        .resources
        .lock()
        .ok()
        .and_then(|r| r.get(&gvk).cloned());
    let resource = match cached {
        Some(resource) => resource,
        None => match pinned_kind(&context.client, &gvk).await {
            Ok((resource, _)) => {
                if let Ok(mut resources) = context.evidence.resources.lock() {
                    resources.insert(gvk.clone(), resource.clone());
                }
                resource
            }
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(false),
            Err(kube::Error::Discovery(_)) => return Ok(false),
            Err(source) => return Err(failed(source)),
        },
    };
    context
        .evidence
        .ensure(&gvk, &resource, context.controls.clone());
    let api: Api<DynamicObject> =
        Api::namespaced_with(context.client.clone(), namespace, &resource);
    api.get_metadata_opt(&evidence.name)
        .await
        .map(|found| found.is_some_and(|o| o.metadata.deletion_timestamp.is_none()))
        .map_err(failed)
}
