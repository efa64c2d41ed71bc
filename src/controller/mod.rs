//! The controllers: translate between the cluster and [`crate::policy`].
//! They read objects, ask the pure core what the status should be and when
//! to look again, write status with server-side apply under one field
//! manager, and publish Events. They never write a spec.

pub mod compliance;
mod control;
mod exception;
mod status;

use std::{
    collections::{BTreeMap, HashMap},
    sync::{Arc, Mutex},
    time::Duration,
};

use futures::StreamExt;
use kube::{
    Api, Client, ResourceExt,
    runtime::{
        Controller,
        controller::Action,
        events::{Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use tracing::warn;

use crate::{
    api::{CompensatingControl, SecurityException},
    config::Config,
    metrics::{ErrorLabels, Metrics, ReconcileLabels},
    policy::{
        approval::SealKey,
        lifecycle::{ControlEvaluation, ControlState},
    },
};

/// What a reconcile can fail on. Each variant says which operation failed on
/// which object; the source says why.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Writing status failed.
    #[error("writing the status of {kind} {namespace}/{name}")]
    WriteStatus {
        /// Kind of the object.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// Looking up an evidence object failed (other than it not existing).
    #[error("looking up evidence {evidence} of CompensatingControl {namespace}/{name}")]
    Evidence {
        /// The evidence reference, `apiVersion/kind/name`.
        evidence: String,
        /// The control's namespace.
        namespace: String,
        /// The control's name.
        name: String,
        /// Why.
        #[source]
        source: kube::Error,
    },
    /// The object has no namespace (the CRDs are namespaced, so this is a bug
    /// upstream of us); reported rather than panicking.
    #[error("{kind} {name} has no namespace")]
    NoNamespace {
        /// Kind of the object.
        kind: &'static str,
        /// Its name.
        name: String,
    },
}

impl Error {
    /// A short label for the `reconcile_errors` metric.
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::WriteStatus { .. } => "write_status",
            Error::Evidence { .. } => "evidence_lookup",
            Error::NoNamespace { .. } => "no_namespace",
        }
    }
}

/// The latest evaluation of each CompensatingControl and the generation it
/// was made for.
type ControlStates = HashMap<ObjectRef<CompensatingControl>, (Option<i64>, ControlEvaluation)>;

/// The state of every CompensatingControl as the control reconciler last
/// evaluated it: read by the exception reconciler and by the workload
/// webhook's index (no API call needed to know whether a control holds).
#[derive(Default)]
pub struct ControlBoard {
    states: Mutex<ControlStates>,
    changes: tokio::sync::watch::Sender<u64>,
}

impl ControlBoard {
    /// Records the evaluation of `control` and tells the subscribers.
    pub fn record(&self, control: &CompensatingControl, evaluation: ControlEvaluation) {
        if let Ok(mut states) = self.states.lock() {
            states.insert(
                ObjectRef::from_obj(control),
                (control.metadata.generation, evaluation),
            );
        }
        self.changes
            .send_modify(|count| *count = count.wrapping_add(1));
    }

    /// A receiver that changes whenever a control is re-evaluated.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u64> {
        self.changes.subscribe()
    }

    /// The state of each control `exception` references (missing ones as
    /// [`ControlState::Missing`]), or `None` while one that exists in
    /// `controls` has not been evaluated for its current generation yet.
    pub fn states_for(
        &self,
        exception: &SecurityException,
        controls: &Store<CompensatingControl>,
    ) -> Option<BTreeMap<String, ControlState>> {
        let namespace = exception.namespace()?;
        let evaluated = self.states.lock().ok()?;
        let mut states = BTreeMap::new();
        for name in &exception.spec.compensating_controls {
            let key = ObjectRef::<CompensatingControl>::new(name).within(&namespace);
            let state = match controls.get(&key) {
                None => ControlState::Missing,
                Some(control) => match evaluated.get(&key) {
                    Some((generation, evaluation))
                        if *generation == control.metadata.generation =>
                    {
                        evaluation.state()
                    }
                    _ => return None,
                },
            };
            states.insert(name.clone(), state);
        }
        Some(states)
    }
}

/// Shared machinery, built once.
pub struct Context {
    /// Client acting as the operator.
    pub client: Client,
    /// The operator's configuration.
    pub config: Arc<Config>,
    /// The key approvals are sealed with.
    pub seal_key: Arc<SealKey>,
    /// Publishes Events.
    pub recorder: Recorder,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
    /// The SecurityExceptions, as the exception controller sees them.
    pub exceptions: Store<SecurityException>,
    /// The CompensatingControls, as their controller sees them.
    pub controls: Store<CompensatingControl>,
    /// The latest evaluation of each CompensatingControl.
    pub control_board: Arc<ControlBoard>,
    /// Exceptions by phase/rating/expiring/aging, for the metrics gauges.
    pub summaries: Mutex<HashMap<ObjectRef<SecurityException>, exception::Summary>>,
    /// Watches on evidence kinds, started as controls reference them.
    pub evidence: control::EvidenceWatches,
}

/// The reporter name on every Event.
pub const REPORTER: &str = "exception-operator";

/// Runs both controllers until `shutdown` resolves.
pub async fn run(
    client: Client,
    config: Arc<Config>,
    seal_key: Arc<SealKey>,
    metrics: Arc<Metrics>,
    control_board: Arc<ControlBoard>,
    shutdown: impl std::future::Future<Output = ()> + Send + Sync + 'static,
) {
    let exceptions_api: Api<SecurityException> = Api::all(client.clone());
    let controls_api: Api<CompensatingControl> = Api::all(client.clone());
    let (evidence, evidence_triggers) = control::EvidenceWatches::new(client.clone());

    let exception_controller = Controller::new(exceptions_api, watcher::Config::default());
    let control_controller = Controller::new(controls_api.clone(), watcher::Config::default())
        .reconcile_on(evidence_triggers);
    let exceptions = exception_controller.store();
    let controls = control_controller.store();

    let context = Arc::new(Context {
        recorder: Recorder::new(
            client.clone(),
            Reporter {
                controller: REPORTER.into(),
                instance: std::env::var("POD_NAME").ok(),
            },
        ),
        client,
        config,
        seal_key,
        metrics,
        exceptions: exceptions.clone(),
        controls,
        control_board,
        summaries: Mutex::default(),
        evidence,
    });

    // A control's change re-evaluates the exceptions that reference it.
    let referencing = exceptions.clone();
    let exception_controller = exception_controller.watches(
        controls_api,
        watcher::Config::default(),
        move |control: CompensatingControl| {
            let namespace = control.namespace().unwrap_or_default();
            let name = control.name_any();
            referencing
                .state()
                .into_iter()
                .filter(|e| {
                    e.namespace().as_deref() == Some(namespace.as_str())
                        && e.spec.compensating_controls.contains(&name)
                })
                .map(|e| ObjectRef::from_obj(&*e))
                .collect::<Vec<_>>()
        },
    );

    let (shutdown_tx, shutdown_rx) = tokio::sync::watch::channel(false);
    tokio::spawn(async move {
        shutdown.await;
        let _ = shutdown_tx.send(true);
    });
    let signal = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|stopped| *stopped).await;
    };

    let exceptions_run = exception_controller
        .graceful_shutdown_on(signal(shutdown_rx.clone()))
        .run(
            exception::reconcile,
            error_policy::<SecurityException>,
            context.clone(),
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "exception reconcile failed");
            }
        });
    let controls_run = control_controller
        .graceful_shutdown_on(signal(shutdown_rx))
        .run(
            control::reconcile,
            error_policy::<CompensatingControl>,
            context,
        )
        .for_each(|result| async move {
            if let Err(error) = result {
                warn!(%error, "compensating control reconcile failed");
            }
        });
    futures::join!(exceptions_run, controls_run);
}

/// Runs a reconcile and records how long it took.
async fn timed(
    context: &Context,
    kind: &str,
    reconcile: impl std::future::Future<Output = Result<Action, Error>>,
) -> Result<Action, Error> {
    let started = std::time::Instant::now();
    let result = reconcile.await;
    context
        .metrics
        .reconcile_duration
        .get_or_create(&ReconcileLabels { kind: kind.into() })
        .observe(started.elapsed().as_secs_f64());
    result
}

fn error_policy<K: kube::Resource<DynamicType = ()>>(
    object: Arc<K>,
    error: &Error,
    context: Arc<Context>,
) -> Action {
    warn!(kind = %K::kind(&()), name = %object.name_any(), %error, "reconcile failed; retrying");
    context
        .metrics
        .reconcile_errors
        .get_or_create(&ErrorLabels {
            kind: K::kind(&()).into_owned(),
            error: error.metric_label().into(),
        })
        .inc();
    Action::requeue(Duration::from_secs(5))
}

/// How long to wait until `at`, rounded up so that the reconcile runs at or
/// after the instant (expiry is inclusive), and at most `cap`.
pub(crate) fn requeue_until(
    at: Option<k8s_openapi::jiff::Timestamp>,
    now: k8s_openapi::jiff::Timestamp,
    cap: Duration,
) -> Action {
    let wait = at
        .map(|at| at.duration_since(now))
        .and_then(|d| Duration::try_from(d).ok())
        .map(|d| d + Duration::from_millis(1))
        .unwrap_or(cap);
    Action::requeue(wait.min(cap))
}

/// A cache of every `K`, fed by a watch that runs until the process ends.
/// What no decision reads is dropped to keep memory down: managed
/// fields, the last-applied annotation, and whatever `strip` removes (the
/// status of workloads).
pub fn watched_store<K>(client: Client, strip: fn(&mut K)) -> Store<K>
where
    K: kube::Resource<DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + std::fmt::Debug
        + Send
        + Sync
        + 'static,
{
    use kube::runtime::{WatchStreamExt, reflector, watcher};
    let (reader, writer) = reflector::store();
    let stream = reflector::reflector(
        writer,
        watcher::watcher(Api::<K>::all(client), watcher::Config::default())
            .default_backoff()
            .modify(move |object: &mut K| {
                object.managed_fields_mut().clear();
                object
                    .annotations_mut()
                    .remove("kubectl.kubernetes.io/last-applied-configuration");
                strip(object);
            }),
    )
    .touched_objects();
    tokio::spawn(async move {
        futures::pin_mut!(stream);
        while let Some(event) = stream.next().await {
            if let Err(error) = event {
                warn!(kind = %K::kind(&()), %error, "watch error; retrying");
            }
        }
    });
    reader
}
