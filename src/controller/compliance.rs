//! Background compliance: the live workloads, evaluated with the same code
//! and the same exception index as admission.
//!
//! Every [`PERIOD`] (and a moment after the index of honoured exceptions
//! changes) every workload in every namespace is decided with
//! [`workload_admission::decide`] at its namespace's enforce level. From the
//! covered violations comes each exception's `status.coverage`: how many
//! distinct workloads rely on it, and when one last did. A workload is
//! counted once, as its top-most watched controller: Pods, ReplicaSets and
//! Jobs run by a watched controller are not evaluated on their own (a
//! Deployment with its ReplicaSets and Pods is one workload). Coverage is written with
//! server-side apply under a field manager of its own
//! ([`COVERAGE_FIELD_MANAGER`]), so the lifecycle reconciler's applies and
//! these never remove each other's fields.
//!
//! When a workload that an exception covered at the previous pass is no
//! longer covered by it and now has uncovered violations, a Warning Event
//! `LostCover` is published on the workload: it runs, but its next rollout
//! will be denied. Workloads are only read, never changed.

use std::{
    collections::{BTreeMap, BTreeSet, HashMap},
    sync::{Arc, RwLock},
    time::Duration,
};

use k8s_openapi::{
    api::{
        apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet},
        batch::v1::{CronJob, Job},
        core::v1::{Namespace, ObjectReference, Pod, ReplicationController},
    },
    apimachinery::pkg::apis::meta::v1::Time,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        events::{Event, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
    },
};
use serde_json::Value;
use tracing::{debug, info, warn};

use crate::{
    api::{Coverage, SecurityException},
    config::Config,
    policy::{
        controls::{Level, Violation},
        matching::ExceptionIndex,
        workload_admission::{self, NamespacePolicy, Operation, WorkloadRequest},
    },
};

/// The field manager that owns `status.coverage`, and nothing else.
pub const COVERAGE_FIELD_MANAGER: &str = "exception-operator-coverage";
/// How often every live workload is evaluated, even when nothing changed.
pub const PERIOD: Duration = Duration::from_secs(10);
/// How long after an index change the pass runs (changes come in bursts).
const SETTLE: Duration = Duration::from_millis(300);
/// `lastUsed` advances at most this often per exception (when the number of
/// workloads does not change), to keep writes rare.
const LAST_USED_EVERY: SignedDuration = SignedDuration::from_secs(60);

/// An exception, by namespace and name.
pub type ExceptionKey = (String, String);

/// One live object whose pod template is evaluated.
#[derive(Clone, Debug)]
pub struct Live {
    /// How Events refer to it (apiVersion, kind, namespace, name, uid).
    pub reference: ObjectReference,
    /// Its uid: the identity of a workload across passes.
    pub uid: String,
    /// The uid of its controller (`ownerReferences` with `controller: true`).
    pub controller: Option<String>,
    /// The object as JSON, as the admission code reads it.
    pub object: Value,
}

impl Live {
    fn of<K>(object: &K) -> Option<Live>
    where
        K: Resource<DynamicType = ()> + serde::Serialize,
    {
        let uid = object.meta().uid.clone()?;
        object.meta().namespace.as_ref()?;
        let controller = object
            .meta()
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
            .map(|o| o.uid.clone());
        Some(Live {
            reference: object.object_ref(&()),
            uid,
            controller,
            object: serde_json::to_value(object).ok()?,
        })
    }
}

/// What one pass found.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Pass {
    /// For each workload (by uid; objects run by a watched controller are
    /// that controller's), the exceptions it relies on.
    pub covers: BTreeMap<String, BTreeSet<ExceptionKey>>,
    /// For each workload, the violations at the enforce level that no
    /// exception covers.
    pub uncovered: BTreeMap<String, Vec<Violation>>,
    /// Every workload evaluated, by uid, and how to refer to it.
    pub workloads: BTreeMap<String, ObjectReference>,
}

impl Pass {
    /// How many distinct workloads rely on each exception.
    pub fn counts(&self) -> HashMap<ExceptionKey, i32> {
        let mut counts = HashMap::new();
        for exceptions in self.covers.values() {
            for key in exceptions {
                *counts.entry(key.clone()).or_insert(0) += 1;
            }
        }
        counts
    }
}

/// Evaluates every object in `live` at its namespace's enforce level
/// (`labels` gives a namespace's labels; excluded namespaces and namespaces
/// with an invalid level label are skipped). Objects whose controller is in
/// `live` are left to that controller, so each workload counts once.
pub fn evaluate(
    live: &[Live],
    labels: impl Fn(&str) -> BTreeMap<String, String>,
    index: &ExceptionIndex,
    config: &Config,
    now: Timestamp,
) -> Pass {
    let by_uid: HashMap<&str, &Live> = live.iter().map(|l| (l.uid.as_str(), l)).collect();
    let mut policies: HashMap<String, Option<NamespacePolicy>> = HashMap::new();
    let mut pass = Pass::default();
    for object in live {
        // A Pod (or ReplicaSet, or Job) run by a watched controller is that
        // controller's: evaluated and counted once, as the controller.
        let owned = object
            .controller
            .as_deref()
            .is_some_and(|uid| by_uid.contains_key(uid));
        let Some(namespace) = object.reference.namespace.clone().filter(|_| !owned) else {
            continue;
        };
        let policy = policies
            .entry(namespace.clone())
            .or_insert_with(|| {
                workload_admission::namespace_policy(&namespace, &labels(&namespace), config)
                    .ok()
                    .filter(|p| !p.excluded && p.enforce != Level::Privileged)
                    .map(|p| NamespacePolicy::enforcing(p.enforce))
            })
            .as_ref();
        let Some(policy) = policy else {
            continue;
        };
        let request = WorkloadRequest {
            namespace: namespace.clone(),
            object: (&object.object).into(),
            operation: Operation::Update,
            subresource: None,
        };
        let decision = workload_admission::decide(&request, policy, index, config, now);
        let uid = &object.uid;
        pass.workloads.insert(uid.clone(), object.reference.clone());
        let covers = pass.covers.entry(uid.clone()).or_default();
        for (exception, _) in &decision.covered {
            covers.insert((namespace.clone(), exception.clone()));
        }
        let uncovered = pass.uncovered.entry(uid.clone()).or_default();
        for finding in decision
            .findings
            .iter()
            .filter(|f| f.enforce && f.covered_by.is_none())
        {
            let v = &finding.violation;
            if !uncovered
                .iter()
                .any(|u| u.control == v.control && u.container == v.container && u.value == v.value)
            {
                uncovered.push(v.clone());
            }
        }
    }
    pass.covers.retain(|_, covers| !covers.is_empty());
    pass.uncovered.retain(|_, uncovered| !uncovered.is_empty());
    pass
}

/// A workload that lost the cover of an exception between two passes.
#[derive(Clone, Debug, PartialEq)]
pub struct Loss {
    /// The workload.
    pub workload: ObjectReference,
    /// The exception that no longer covers it.
    pub exception: ExceptionKey,
    /// Its violations that nothing covers now.
    pub violations: Vec<Violation>,
}

/// The workloads still running that `previous` found covered by an exception
/// that `current` no longer finds covering them, and that now have
/// uncovered violations.
pub fn losses(previous: &Pass, current: &Pass) -> Vec<Loss> {
    let mut out = Vec::new();
    for (uid, before) in &previous.covers {
        let (Some(workload), Some(violations)) =
            (current.workloads.get(uid), current.uncovered.get(uid))
        else {
            continue;
        };
        let now = current.covers.get(uid);
        for exception in before {
            if now.is_some_and(|n| n.contains(exception)) {
                continue;
            }
            out.push(Loss {
                workload: workload.clone(),
                exception: exception.clone(),
                violations: violations.clone(),
            });
        }
    }
    out
}

/// The coverage to write, given what is recorded, how many workloads rely
/// on the exception now, and the clock; `None` when nothing needs writing.
/// While workloads rely on it, `lastUsed` is now, advanced at most once per
/// [`LAST_USED_EVERY`] unless the count changes.
pub fn next_coverage(
    recorded: Option<&Coverage>,
    workloads: i32,
    now: Timestamp,
) -> Option<Coverage> {
    let last_used = recorded.and_then(|c| c.last_used.as_ref()).map(|t| t.0);
    let same_count = recorded.is_some_and(|c| c.workloads == workloads);
    if workloads > 0 {
        let fresh = last_used.is_some_and(|at| now.duration_since(at) < LAST_USED_EVERY);
        (!(same_count && fresh)).then_some(Coverage {
            workloads,
            last_used: Some(Time(now)),
        })
    } else {
        (!same_count).then_some(Coverage {
            workloads: 0,
            last_used: last_used.map(Time),
        })
    }
}

/// The live workloads, each kind from a watch of its own.
struct Workloads {
    pods: Store<Pod>,
    deployments: Store<Deployment>,
    replica_sets: Store<ReplicaSet>,
    stateful_sets: Store<StatefulSet>,
    daemon_sets: Store<DaemonSet>,
    jobs: Store<Job>,
    cron_jobs: Store<CronJob>,
    replication_controllers: Store<ReplicationController>,
}

impl Workloads {
    fn watch(client: &Client) -> Self {
        Workloads {
            pods: super::watched_store(client.clone(), |o| o.status = None),
            deployments: super::watched_store(client.clone(), |o| o.status = None),
            replica_sets: super::watched_store(client.clone(), |o| o.status = None),
            stateful_sets: super::watched_store(client.clone(), |o| o.status = None),
            daemon_sets: super::watched_store(client.clone(), |o| o.status = None),
            jobs: super::watched_store(client.clone(), |o| o.status = None),
            cron_jobs: super::watched_store(client.clone(), |o| o.status = None),
            replication_controllers: super::watched_store(client.clone(), |o| o.status = None),
        }
    }

    async fn wait_until_ready(&self) {
        let _ = futures::join!(
            self.pods.wait_until_ready(),
            self.deployments.wait_until_ready(),
            self.replica_sets.wait_until_ready(),
            self.stateful_sets.wait_until_ready(),
            self.daemon_sets.wait_until_ready(),
            self.jobs.wait_until_ready(),
            self.cron_jobs.wait_until_ready(),
            self.replication_controllers.wait_until_ready(),
        );
    }

    fn snapshot(&self) -> Vec<Live> {
        fn add<K>(store: &Store<K>, out: &mut Vec<Live>)
        where
            K: Resource<DynamicType = ()> + serde::Serialize + Clone,
        {
            out.extend(store.state().iter().filter_map(|o| Live::of(o.as_ref())));
        }
        let mut out = Vec::new();
        add(&self.pods, &mut out);
        add(&self.deployments, &mut out);
        add(&self.replica_sets, &mut out);
        add(&self.stateful_sets, &mut out);
        add(&self.daemon_sets, &mut out);
        add(&self.jobs, &mut out);
        add(&self.cron_jobs, &mut out);
        add(&self.replication_controllers, &mut out);
        out
    }
}

/// Runs background compliance until the task is dropped: evaluates every
/// live workload against `index` (the webhook's own) every [`PERIOD`] and
/// shortly after `index_changes` changes.
pub async fn run(
    client: Client,
    config: Arc<Config>,
    index: Arc<RwLock<ExceptionIndex>>,
    index_changes: tokio::sync::watch::Receiver<u64>,
    namespaces: Store<Namespace>,
) {
    let workloads = Workloads::watch(&client);
    let exceptions: Store<SecurityException> = super::watched_store(client.clone(), |_| {});
    workloads.wait_until_ready().await;
    let _ = exceptions.wait_until_ready().await;
    let _ = namespaces.wait_until_ready().await;
    info!("background compliance started");
    let recorder = Recorder::new(
        client.clone(),
        Reporter {
            controller: super::REPORTER.into(),
            instance: std::env::var("POD_NAME").ok(),
        },
    );
    let mut state = State {
        client,
        config,
        index,
        namespaces,
        exceptions,
        recorder,
        previous: None,
        recorded: HashMap::new(),
    };
    let mut changes = Some(index_changes);
    let mut ticker = tokio::time::interval(PERIOD);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = ticker.tick() => {}
            changed = next_change(&mut changes) => {
                if changed {
                    tokio::time::sleep(SETTLE).await;
                    if let Some(changes) = changes.as_mut() {
                        changes.borrow_and_update();
                    }
                }
            }
        }
        state.pass(&workloads).await;
    }
}

/// Waits for the next change of the index; `false` (once) when its sender
/// is gone, after which it waits forever.
async fn next_change(changes: &mut Option<tokio::sync::watch::Receiver<u64>>) -> bool {
    match changes {
        Some(rx) => {
            if rx.changed().await.is_ok() {
                true
            } else {
                *changes = None;
                false
            }
        }
        None => std::future::pending().await,
    }
}

struct State {
    client: Client,
    config: Arc<Config>,
    index: Arc<RwLock<ExceptionIndex>>,
    namespaces: Store<Namespace>,
    exceptions: Store<SecurityException>,
    recorder: Recorder,
    /// The previous pass; `None` before the first (a restart announces no
    /// loss it did not see happen).
    previous: Option<Pass>,
    /// The coverage last written, by exception uid (the store may lag).
    recorded: HashMap<String, Coverage>,
}

impl State {
    async fn pass(&mut self, workloads: &Workloads) {
        let now = Timestamp::now();
        let live = workloads.snapshot();
        let labels = |namespace: &str| {
            self.namespaces
                .get(&ObjectRef::<Namespace>::new(namespace))
                .and_then(|ns| ns.metadata.labels.clone())
                .unwrap_or_default()
        };
        let pass = {
            let Ok(index) = self.index.read() else {
                warn!("the exception index is unavailable; compliance pass skipped");
                return;
            };
            evaluate(&live, labels, &index, &self.config, now)
        };
        debug!(
            workloads = pass.workloads.len(),
            covered = pass.covers.len(),
            "compliance pass"
        );
        self.write_coverage(&pass, now).await;
        if let Some(previous) = &self.previous {
            for loss in losses(previous, &pass) {
                self.announce(&loss, now).await;
            }
        }
        self.previous = Some(pass);
    }

    async fn write_coverage(&mut self, pass: &Pass, now: Timestamp) {
        let counts = pass.counts();
        let exceptions = self.exceptions.state();
        self.recorded.retain(|uid, _| {
            exceptions
                .iter()
                .any(|e| e.metadata.uid.as_deref() == Some(uid))
        });
        for exception in exceptions {
            let (Some(namespace), Some(uid)) = (exception.namespace(), exception.uid()) else {
                continue;
            };
            let name = exception.name_any();
            let workloads = counts
                .get(&(namespace.clone(), name.clone()))
                .copied()
                .unwrap_or(0);
            let recorded = self
                .recorded
                .get(&uid)
                .or_else(|| exception.status.as_ref()?.coverage.as_ref());
            let Some(coverage) = next_coverage(recorded, workloads, now) else {
                continue;
            };
            let api: Api<SecurityException> = Api::namespaced(self.client.clone(), &namespace);
            let patch = serde_json::json!({
                "apiVersion": SecurityException::api_version(&()),
                "kind": SecurityException::kind(&()),
                "status": {"coverage": coverage},
            });
            match api
                .patch_status(
                    &name,
                    &PatchParams::apply(COVERAGE_FIELD_MANAGER).force(),
                    &Patch::Apply(&patch),
                )
                .await
            {
                Ok(_) => {
                    debug!(%namespace, %name, workloads, "coverage recorded");
                    self.recorded.insert(uid, coverage);
                }
                Err(error) => {
                    warn!(%namespace, %name, %error, "could not record coverage");
                }
            }
        }
    }

    async fn announce(&self, loss: &Loss, now: Timestamp) {
        let (namespace, name) = &loss.exception;
        let exception = self
            .exceptions
            .get(&ObjectRef::<SecurityException>::new(name).within(namespace));
        let why = match &exception {
            None => "was deleted".to_string(),
            Some(e) if e.is_expired(now) => format!("expired at {}", e.spec.expires_at.0),
            Some(_) => "expired or was suspended (it is no longer in force)".to_string(),
        };
        let violations = loss
            .violations
            .iter()
            .map(|v| match &v.container {
                Some(container) => format!(
                    "{} (container {container}: {}={})",
                    v.control, v.field, v.value
                ),
                None => format!("{} ({}={})", v.control, v.field, v.value),
            })
            .collect::<Vec<_>>()
            .join(", ");
        let note = format!(
            "running workload is no longer covered: exception {name} {why}; its next rollout will be denied. Uncovered violations: {violations}"
        );
        let event = Event {
            type_: EventType::Warning,
            reason: "LostCover".into(),
            // The Events API caps notes at 1 kB.
            note: Some(note.chars().take(1000).collect()),
            action: "Evaluate".into(),
            secondary: exception.map(|e| e.object_ref(&())),
        };
        info!(
            namespace = loss.workload.namespace.as_deref().unwrap_or_default(),
            workload = loss.workload.name.as_deref().unwrap_or_default(),
            exception = %name,
            "running workload lost its cover"
        );
        if let Err(error) = self.recorder.publish(&event, &loss.workload).await {
            warn!(%error, exception = %name, "could not publish LostCover event");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use serde_json::json;

    use super::*;
    use crate::{api::SecurityExceptionSpec, policy::matching::HonouredException};

    fn now() -> Timestamp {
        "2026-12-04T12:00:00Z".parse().unwrap()
    }

    fn index(expires: &str) -> ExceptionIndex {
        let spec: SecurityExceptionSpec = serde_json::from_value(json!({
            "controls": [{"id": "privileged"}],
            "targets": {"kinds": ["Deployment"], "names": ["agent"]},
            "justification": "vendor agent",
            "risk": {"rating": "Medium"},
            "expiresAt": expires,
        }))
        .unwrap();
        let mut index = ExceptionIndex::new();
        index.upsert(HonouredException::new("team", "agent", &spec).unwrap());
        index
    }

    fn template(privileged: bool) -> Value {
        json!({"containers": [{"name": "agent", "image": "registry.example.com/agent:1",
                               "securityContext": {"privileged": privileged}}]})
    }

    fn live(
        api_version: &str,
        kind: &str,
        name: &str,
        uid: &str,
        owner: Option<(&str, &str, &str)>,
        spec: Value,
    ) -> Live {
        let mut metadata =
            json!({"name": name, "namespace": "team", "uid": uid, "labels": {"app": "agent"}});
        if let Some((kind, name, uid)) = owner {
            metadata["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": name, "uid": uid, "controller": true}]);
            metadata["labels"]["pod-template-hash"] = json!("abc");
        }
        let object =
            json!({"apiVersion": api_version, "kind": kind, "metadata": metadata, "spec": spec});
        Live {
            reference: ObjectReference {
                api_version: Some(api_version.into()),
                kind: Some(kind.into()),
                name: Some(name.into()),
                namespace: Some("team".into()),
                uid: Some(uid.into()),
                ..Default::default()
            },
            uid: uid.into(),
            controller: owner.map(|(_, _, uid)| uid.to_string()),
            object,
        }
    }

    /// A Deployment `agent`, its ReplicaSet and two Pods, all privileged.
    fn deployment_tree() -> Vec<Live> {
        let pod_spec = template(true);
        let with_template = json!({"selector": {"matchLabels": {"app": "agent"}},
                                   "template": {"metadata": {"labels": {"app": "agent"}}, "spec": pod_spec}});
        vec![
            live(
                "apps/v1",
                "Deployment",
                "agent",
                "d",
                None,
                with_template.clone(),
            ),
            live(
                "apps/v1",
                "ReplicaSet",
                "agent-abc",
                "rs",
                Some(("Deployment", "agent", "d")),
                with_template,
            ),
            live(
                "v1",
                "Pod",
                "agent-abc-1",
                "p1",
                Some(("ReplicaSet", "agent-abc", "rs")),
                pod_spec.clone(),
            ),
            live(
                "v1",
                "Pod",
                "agent-abc-2",
                "p2",
                Some(("ReplicaSet", "agent-abc", "rs")),
                pod_spec,
            ),
        ]
    }

    fn labels(_: &str) -> BTreeMap<String, String> {
        BTreeMap::new()
    }

    fn key() -> ExceptionKey {
        ("team".into(), "agent".into())
    }

    #[test]
    fn a_deployment_with_its_replica_set_and_pods_counts_once() {
        let pass = evaluate(
            &deployment_tree(),
            labels,
            &index("2026-12-20T00:00:00Z"),
            &Config::default(),
            now(),
        );
        assert_eq!(pass.counts().get(&key()), Some(&1));
        assert_eq!(pass.workloads.len(), 1);
        assert!(pass.uncovered.is_empty());
    }

    #[test]
    fn pods_whose_controller_is_not_watched_count_on_their_own() {
        let pods: Vec<Live> = deployment_tree().into_iter().skip(2).collect();
        let pass = evaluate(
            &pods,
            labels,
            &index("2026-12-20T00:00:00Z"),
            &Config::default(),
            now(),
        );
        assert_eq!(pass.counts().get(&key()), Some(&2));
    }

    #[test]
    fn excluded_and_unenforced_namespaces_are_not_evaluated() {
        let index = index("2026-12-20T00:00:00Z");
        let privileged = |_: &str| {
            BTreeMap::from([(
                workload_admission::ENFORCE_LABEL.to_string(),
                "privileged".to_string(),
            )])
        };
        let pass = evaluate(
            &deployment_tree(),
            privileged,
            &index,
            &Config::default(),
            now(),
        );
        assert!(pass.counts().is_empty());
        let mut config = Config::default();
        config.enforcement.excluded_namespaces.push("team".into());
        let pass = evaluate(&deployment_tree(), labels, &index, &config, now());
        assert!(pass.workloads.is_empty());
    }

    #[test]
    fn an_expired_exception_loses_the_workloads_it_covered() {
        let index = index("2026-12-04T12:00:05Z");
        let before = evaluate(
            &deployment_tree(),
            labels,
            &index,
            &Config::default(),
            now(),
        );
        let after = evaluate(
            &deployment_tree(),
            labels,
            &index,
            &Config::default(),
            now() + SignedDuration::from_secs(5),
        );
        assert!(after.counts().is_empty());
        let lost = losses(&before, &after);
        assert_eq!(lost.len(), 1);
        assert_eq!(lost[0].exception, key());
        assert_eq!(lost[0].workload.kind.as_deref(), Some("Deployment"));
        assert_eq!(lost[0].violations.len(), 1);
        assert_eq!(lost[0].violations[0].control, "privileged");
        // Once: the next pass has nothing more to announce.
        assert!(losses(&after, &after).is_empty());
        // A workload that is gone, or that no longer violates, loses nothing.
        assert!(losses(&before, &Pass::default()).is_empty());
    }

    #[test]
    fn coverage_is_written_when_the_count_changes_and_last_used_at_most_once_a_minute() {
        let at = |s: i64| now() + SignedDuration::from_secs(s);
        let first = next_coverage(None, 1, now()).unwrap();
        assert_eq!(
            first,
            Coverage {
                workloads: 1,
                last_used: Some(Time(now()))
            }
        );
        assert_eq!(next_coverage(Some(&first), 1, at(30)), None);
        assert_eq!(
            next_coverage(Some(&first), 1, at(60)).unwrap().last_used,
            Some(Time(at(60)))
        );
        assert_eq!(next_coverage(Some(&first), 2, at(10)).unwrap().workloads, 2);
        let zero = next_coverage(Some(&first), 0, at(10)).unwrap();
        assert_eq!(
            zero,
            Coverage {
                workloads: 0,
                last_used: Some(Time(now()))
            }
        );
        assert_eq!(next_coverage(Some(&zero), 0, at(600)), None);
        assert_eq!(
            next_coverage(None, 0, now()),
            Some(Coverage {
                workloads: 0,
                last_used: None
            })
        );
    }
}
