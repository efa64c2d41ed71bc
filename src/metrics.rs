//! Prometheus metrics, served on `/metrics`. One registry, built once and
//! shared through the controller's and the webhook's contexts.

use std::sync::Arc;

use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};

/// Labels of the exceptions gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Lifecycle phase.
    pub phase: String,
    /// Risk rating.
    pub rating: String,
}

/// Labels of admission counters.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AdmissionLabels {
    /// Which webhook answered (`mutate-exceptions`, `validate-exceptions`, ...).
    pub webhook: String,
    /// `true` or `false`.
    pub allowed: String,
}

/// Labels of reconcile metrics.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReconcileLabels {
    /// `SecurityException` or `CompensatingControl`.
    pub kind: String,
}

/// Labels of reconcile errors.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ErrorLabels {
    /// `SecurityException` or `CompensatingControl`.
    pub kind: String,
    /// The error's metric label (see the controller's error enum).
    pub error: String,
}

/// Every metric the operator exports.
pub struct Metrics {
    registry: Registry,
    /// Exceptions by phase and risk rating, as last reconciled.
    pub exceptions: Family<PhaseLabels, Gauge>,
    /// Exceptions inside an expiry warning window.
    pub expiring: Gauge,
    /// Exceptions that are aging.
    pub aging: Gauge,
    /// Reconcile durations in seconds.
    pub reconcile_duration: Family<ReconcileLabels, Histogram>,
    /// Reconcile failures.
    pub reconcile_errors: Family<ErrorLabels, Counter>,
    /// Admission answers.
    pub admissions: Family<AdmissionLabels, Counter>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("exception_operator");
        let exceptions = Family::<PhaseLabels, Gauge>::default();
        registry.register(
            "exceptions",
            "SecurityExceptions by phase and risk rating",
            exceptions.clone(),
        );
        let expiring = Gauge::default();
        registry.register(
            "exceptions_expiring",
            "SecurityExceptions inside an expiry warning window",
            expiring.clone(),
        );
        let aging = Gauge::default();
        registry.register(
            "exceptions_aging",
            "SecurityExceptions that have outlived their expected resolution time",
            aging.clone(),
        );
        let reconcile_duration = Family::<ReconcileLabels, Histogram>::new_with_constructor(|| {
            Histogram::new([0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1.0, 5.0])
        });
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile durations",
            reconcile_duration.clone(),
        );
        let reconcile_errors = Family::<ErrorLabels, Counter>::default();
        registry.register(
            "reconcile_errors",
            "Failed reconciles",
            reconcile_errors.clone(),
        );
        let admissions = Family::<AdmissionLabels, Counter>::default();
        registry.register(
            "admission_reviews",
            "Admission reviews answered",
            admissions.clone(),
        );
        Self {
            registry,
            exceptions,
            expiring,
            aging,
            reconcile_duration,
            reconcile_errors,
            admissions,
        }
    }
}

impl Metrics {
    /// A shared registry.
    pub fn shared() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// The OpenMetrics text exposition.
    pub fn render(&self) -> String {
        let mut text = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut text, &self.registry);
        text
    }

    /// Counts one admission answer.
    pub fn count_admission(&self, webhook: &str, allowed: bool) {
        self.admissions
            .get_or_create(&AdmissionLabels {
                webhook: webhook.into(),
                allowed: allowed.to_string(),
            })
            .inc();
    }
}
