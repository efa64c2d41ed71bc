//! The admission webhook server: HTTPS (rustls), one path per concern, an
//! AdmissionReview in every answer. Decisions come from [`crate::policy`];
//! this module only translates HTTP and AdmissionReviews.

mod exceptions;
pub mod honoured;
pub mod tls;
mod workloads;

use std::{
    net::SocketAddr,
    sync::{
        Arc, RwLock,
        atomic::{AtomicBool, Ordering},
    },
};

use k8s_openapi::api::core::v1::Namespace;

use axum::{
    Json, Router,
    body::Body,
    extract::State,
    http::StatusCode,
    response::IntoResponse,
    routing::{get, post},
};
use kube::{
    core::{
        DynamicObject,
        admission::{AdmissionRequest, AdmissionResponse, AdmissionReview},
    },
    runtime::reflector::Store,
};
use tracing::{Instrument, field::Empty, info_span, warn};

use crate::{
    api::CompensatingControl,
    config::Config,
    metrics::Metrics,
    policy::{approval::SealKey, matching::ExceptionIndex},
};

/// Path of the mutating webhook for SecurityExceptions (stamps identity, seals requests).
pub const MUTATE_EXCEPTIONS_PATH: &str = "/mutate/securityexceptions";
/// Path of the validating webhook for SecurityExceptions and their status.
pub const VALIDATE_EXCEPTIONS_PATH: &str = "/validate/securityexceptions";
/// Path of the validating webhook for workloads (Pods, ephemeral containers,
/// pod-template owners).
pub const VALIDATE_WORKLOADS_PATH: &str = "/validate/workloads";
/// The largest AdmissionReview accepted. The API server caps objects at 3 MiB;
/// a review carries the object and the old object.
pub const MAX_REVIEW_BYTES: usize = 8 * 1024 * 1024;

/// Whether every cache the webhook decides from is synced.
#[derive(Clone, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the caches synced.
    pub fn set_ready(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether the caches are synced.
    pub fn is_ready(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

/// What the webhook decides from: built once at start-up, read on every
/// request, never a call to the API server.
#[derive(Clone)]
pub struct WebhookState {
    /// The operator's configuration.
    pub config: Arc<Config>,
    /// The key that seals approvals.
    pub seal_key: Arc<SealKey>,
    /// The username the operator itself acts as (the only writer of status).
    pub operator_username: Arc<str>,
    /// CompensatingControls, from a watch.
    pub compensating_controls: Store<CompensatingControl>,
    /// Namespaces (for their enforcement labels), from a watch.
    pub namespaces: Store<Namespace>,
    /// The exceptions in force, kept current by [`honoured::maintain`].
    pub exceptions: Arc<RwLock<ExceptionIndex>>,
    /// Set once the stores are synced.
    pub readiness: Readiness,
    /// Metrics registry.
    pub metrics: Arc<Metrics>,
}

/// The router: health, readiness, metrics and the admission paths.
pub fn router(state: WebhookState) -> Router {
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .route(MUTATE_EXCEPTIONS_PATH, post(mutate_exceptions))
        .route(VALIDATE_EXCEPTIONS_PATH, post(validate_exceptions))
        .route(VALIDATE_WORKLOADS_PATH, post(validate_workloads))
        .with_state(state)
}

/// Serves `router` over TLS on `address` until the process ends.
pub async fn serve(
    address: SocketAddr,
    certificate: &tls::ServingCertificate,
    router: Router,
) -> std::io::Result<()> {
    let tls = axum_server::tls_rustls::RustlsConfig::from_pem(
        certificate.cert_pem.clone().into_bytes(),
        certificate.key_pem.clone().into_bytes(),
    )
    .await?;
    axum_server::bind_rustls(address, tls)
        .serve(router.into_make_service())
        .await
}

async fn readyz(State(state): State<WebhookState>) -> impl IntoResponse {
    if state.readiness.is_ready() {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "caches not synced yet")
    }
}

async fn metrics(State(state): State<WebhookState>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        state.metrics.render(),
    )
}

async fn mutate_exceptions(State(state): State<WebhookState>, body: Body) -> impl IntoResponse {
    answer(&state, "mutate-exceptions", body, exceptions::mutate).await
}

async fn validate_exceptions(State(state): State<WebhookState>, body: Body) -> impl IntoResponse {
    answer(&state, "validate-exceptions", body, exceptions::validate).await
}

async fn validate_workloads(State(state): State<WebhookState>, body: Body) -> impl IntoResponse {
    answer(&state, "validate-workloads", body, workloads::validate).await
}

/// Reads and decodes a review, decides, and always answers with a review:
/// `invalid` for anything undecodable, a denial until the caches are synced.
async fn answer(
    state: &WebhookState,
    webhook: &'static str,
    body: Body,
    decide: fn(&WebhookState, &AdmissionRequest<DynamicObject>) -> AdmissionResponse,
) -> Json<AdmissionReview<DynamicObject>> {
    let span = info_span!(
        "admission",
        webhook,
        uid = Empty,
        kind = Empty,
        operation = Empty,
        user = Empty,
        allowed = Empty
    );
    async move {
        let response = match decode(body).await {
            Err(message) => {
                warn!(%message, "undecodable admission review");
                AdmissionResponse::invalid(message)
            }
            Ok(request) => {
                let span = tracing::Span::current();
                span.record("uid", request.uid.as_str());
                span.record("kind", request.kind.kind.as_str());
                span.record("operation", format!("{:?}", request.operation));
                span.record("user", request.user_info.username.as_deref().unwrap_or(""));
                if state.readiness.is_ready() {
                    decide(state, &request)
                } else {
                    AdmissionResponse::from(&request).deny(
                        "exception-operator is starting and its caches are not synced yet; retry in a few seconds",
                    )
                }
            }
        };
        tracing::Span::current().record("allowed", response.allowed);
        state.metrics.count_admission(webhook, response.allowed);
        tracing::info!("answered");
        Json(response.into_review())
    }
    .instrument(span)
    .await
}

async fn decode(body: Body) -> Result<AdmissionRequest<DynamicObject>, String> {
    let bytes = axum::body::to_bytes(body, MAX_REVIEW_BYTES)
        .await
        .map_err(|e| {
            format!("could not read the request body (limit {MAX_REVIEW_BYTES} bytes): {e}")
        })?;
    decode_review(&bytes)
}

/// Decodes an AdmissionReview request body.
pub fn decode_review(bytes: &[u8]) -> Result<AdmissionRequest<DynamicObject>, String> {
    if bytes.is_empty() {
        return Err("empty body: expected an admission.k8s.io/v1 AdmissionReview".into());
    }
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(bytes)
        .map_err(|e| format!("not an admission.k8s.io/v1 AdmissionReview: {e}"))?;
    review
        .try_into()
        .map_err(|_| "the AdmissionReview has no request".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;
    use kube::runtime::reflector;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    fn state(ready: bool) -> WebhookState {
        let (controls, _writer) = reflector::store();
        let (namespaces, _writer) = reflector::store();
        let readiness = Readiness::default();
        if ready {
            readiness.set_ready();
        }
        WebhookState {
            config: Arc::new(Config::default()),
            seal_key: Arc::new(SealKey::generate().unwrap()),
            operator_username: "system:serviceaccount:exception-operator:exception-operator".into(),
            compensating_controls: controls,
            namespaces,
            exceptions: Arc::default(),
            readiness,
            metrics: Metrics::shared(),
        }
    }

    async fn post(state: WebhookState, path: &str, body: impl Into<Body>) -> (StatusCode, Value) {
        let response = router(state)
            .oneshot(
                Request::post(path)
                    .header("content-type", "application/json")
                    .body(body.into())
                    .unwrap(),
            )
            .await
            .unwrap();
        let status = response.status();
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    fn review(
        operation: &str,
        user: &str,
        object: Value,
        old: Option<Value>,
        subresource: Option<&str>,
    ) -> Value {
        json!({
            "apiVersion": "admission.k8s.io/v1",
            "kind": "AdmissionReview",
            "request": {
                "uid": "0f7a9a43-2c7e-4b8a-9d0e-8c1b7d6b1a11",
                "kind": {"group": "exceptions.dev", "version": "v1alpha1", "kind": "SecurityException"},
                "resource": {"group": "exceptions.dev", "version": "v1alpha1", "resource": "securityexceptions"},
                "subResource": subresource,
                "name": "agent",
                "namespace": "team-a",
                "operation": operation,
                "userInfo": {"username": user, "uid": format!("uid-{user}"), "groups": ["developers"]},
                "object": object,
                "oldObject": old,
                "dryRun": false
            }
        })
    }

    fn exception() -> Value {
        json!({
            "apiVersion": "exceptions.dev/v1alpha1",
            "kind": "SecurityException",
            "metadata": {"name": "agent", "namespace": "team-a"},
            "spec": {
                "controls": [{"id": "privileged"}],
                "targets": {"names": ["agent"]},
                "justification": "vendor agent",
                "risk": {"rating": "Low"},
                "expiresAt": (k8s_openapi::jiff::Timestamp::now() + k8s_openapi::jiff::SignedDuration::from_hours(24)).to_string()
            }
        })
    }

    fn response(review: &Value) -> &Value {
        &review["response"]
    }

    #[tokio::test]
    async fn undecodable_input_gets_an_invalid_review_not_an_error_page() {
        let deep = format!("{}{}", "[".repeat(100_000), "]".repeat(100_000));
        for body in [
            String::new(),
            "{".into(),
            "not json".into(),
            "{}".into(),
            r#"{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview"}"#.into(),
            deep,
        ] {
            for path in [MUTATE_EXCEPTIONS_PATH, VALIDATE_EXCEPTIONS_PATH] {
                let (status, answer) = post(state(true), path, body.clone()).await;
                assert_eq!(status, StatusCode::OK, "{path} {body:.40}");
                assert_eq!(
                    answer["kind"], "AdmissionReview",
                    "{path} {body:.40}: {answer}"
                );
                assert_eq!(response(&answer)["allowed"], false, "{path} {body:.40}");
            }
        }
    }

    #[tokio::test]
    async fn an_oversized_body_is_answered_with_an_invalid_review() {
        let body = vec![b' '; MAX_REVIEW_BYTES + 1];
        let (status, answer) = post(state(true), VALIDATE_EXCEPTIONS_PATH, body).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(response(&answer)["allowed"], false);
    }

    #[tokio::test]
    async fn nothing_is_decided_before_the_caches_are_synced() {
        let body = review("CREATE", "alice", exception(), None, None).to_string();
        let (_, answer) = post(state(false), MUTATE_EXCEPTIONS_PATH, body).await;
        assert_eq!(response(&answer)["allowed"], false);
        assert!(
            response(&answer)["status"]["message"]
                .as_str()
                .unwrap()
                .contains("not synced")
        );
        let app = router(state(false));
        let ready = app
            .oneshot(Request::get("/readyz").body(Body::empty()).unwrap())
            .await
            .unwrap();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
    }

    #[tokio::test]
    async fn creation_stamps_the_authenticated_requester_over_any_forgery() {
        let mut object = exception();
        object["metadata"]["annotations"] =
            json!({"exceptions.dev/requested-by": "{\"user\":\"ceo\"}"});
        let body = review("CREATE", "alice", object, None, None).to_string();
        let (_, answer) = post(state(true), MUTATE_EXCEPTIONS_PATH, body).await;
        let response = response(&answer);
        assert_eq!(response["allowed"], true, "{answer}");
        assert_eq!(response["uid"], "0f7a9a43-2c7e-4b8a-9d0e-8c1b7d6b1a11");
        // kube serialises the patch bytes as a JSON array, which the API server reads as []byte.
        let bytes: Vec<u8> = serde_json::from_value(response["patch"].clone()).unwrap();
        let patch: Value = serde_json::from_slice(&bytes).unwrap();
        let stamped: Value = serde_json::from_str(
            patch[0]["value"]["exceptions.dev/requested-by"]
                .as_str()
                .unwrap(),
        )
        .unwrap();
        assert_eq!(stamped["user"], "alice");
        assert_eq!(stamped["uid"], "uid-alice");
    }

    #[tokio::test]
    async fn only_the_operator_writes_status() {
        let state = state(true);
        let operator = state.operator_username.to_string();
        let body = |user: &str| {
            review(
                "UPDATE",
                user,
                exception(),
                Some(exception()),
                Some("status"),
            )
            .to_string()
        };
        let (_, answer) = post(state.clone(), VALIDATE_EXCEPTIONS_PATH, body("alice")).await;
        assert_eq!(response(&answer)["allowed"], false);
        assert!(
            response(&answer)["status"]["message"]
                .as_str()
                .unwrap()
                .contains("written only by exception-operator")
        );
        let (_, answer) = post(state, VALIDATE_EXCEPTIONS_PATH, body(&operator)).await;
        assert_eq!(response(&answer)["allowed"], true, "{answer}");
    }

    #[tokio::test]
    async fn health_and_metrics_answer() {
        let app = router(state(true));
        for path in ["/healthz", "/readyz", "/metrics"] {
            let answer = app
                .clone()
                .oneshot(Request::get(path).body(Body::empty()).unwrap())
                .await
                .unwrap();
            assert_eq!(answer.status(), StatusCode::OK, "{path}");
        }
    }
}
