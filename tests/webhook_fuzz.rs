//! Hostile and malformed AdmissionReviews thrown at the real router, in
//! process: whatever arrives, the answer is HTTP 200 with a well-formed
//! AdmissionReview, never a panic. proptest generates the shapes; a few
//! extreme cases (10k containers, deep nesting, oversized bodies) are fixed.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

use std::sync::Arc;

use axum::{body::Body, http::Request};
use exception_operator::{
    config::Config,
    metrics::Metrics,
    policy::approval::SealKey,
    webhook::{
        MAX_REVIEW_BYTES, MUTATE_EXCEPTIONS_PATH, Readiness, VALIDATE_EXCEPTIONS_PATH,
        VALIDATE_WORKLOADS_PATH, WebhookState, router,
    },
};
use kube::runtime::reflector;
use proptest::prelude::*;
use serde_json::{Value, json};
use tower::ServiceExt;

const PATHS: [&str; 3] = [
    MUTATE_EXCEPTIONS_PATH,
    VALIDATE_EXCEPTIONS_PATH,
    VALIDATE_WORKLOADS_PATH,
];

fn state() -> WebhookState {
    let (controls, _) = reflector::store();
    let (namespaces, _) = reflector::store();
    let readiness = Readiness::default();
    readiness.set_ready();
    WebhookState {
        config: Arc::new(Config::default()),
        seal_key: Arc::new(SealKey::generate().unwrap()),
        operator_username: "exception-operator".into(),
        compensating_controls: controls,
        namespaces,
        exceptions: Arc::default(),
        readiness,
        metrics: Metrics::shared(),
    }
}

/// Posts `body` to `path` and checks the answer is a well-formed review.
fn answers_with_a_review(runtime: &tokio::runtime::Runtime, path: &str, body: Vec<u8>) -> Value {
    runtime.block_on(async {
        let response = router(state())
            .oneshot(Request::post(path).body(Body::from(body)).unwrap())
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{path}");
        let bytes = axum::body::to_bytes(response.into_body(), usize::MAX)
            .await
            .unwrap();
        let review: Value = serde_json::from_slice(&bytes).expect("the answer is JSON");
        assert_eq!(review["kind"], "AdmissionReview", "{review}");
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1", "{review}");
        assert!(review["response"]["allowed"].is_boolean(), "{review}");
        review
    })
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Any JSON value, nested a few levels.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(|n| json!(n)),
        "[a-zA-Z0-9_./:-]{0,20}".prop_map(Value::String),
    ];
    leaf.prop_recursive(4, 32, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
            prop::collection::btree_map("[a-zA-Z]{1,12}", inner, 0..6)
                .prop_map(|m| Value::Object(m.into_iter().collect())),
        ]
    })
}

/// A review whose request is partly right and partly arbitrary.
fn review() -> impl Strategy<Value = Value> {
    let kinds = prop_oneof![
        Just(("", "v1", "Pod", "pods")),
        Just(("apps", "v1", "Deployment", "deployments")),
        Just(("batch", "v1", "CronJob", "cronjobs")),
        Just((
            "exceptions.dev",
            "v1alpha1",
            "SecurityException",
            "securityexceptions"
        )),
        Just((
            "exceptions.dev",
            "v1alpha1",
            "CompensatingControl",
            "compensatingcontrols"
        )),
        Just(("", "v1", "ConfigMap", "configmaps")),
    ];
    let operations = prop_oneof![
        Just("CREATE"),
        Just("UPDATE"),
        Just("DELETE"),
        Just("CONNECT"),
        Just("BOGUS")
    ];
    (kinds, operations, json_value(), json_value(), prop::option::of(prop_oneof![Just("status"), Just("ephemeralcontainers"), Just("scale")]), any::<bool>())
        .prop_map(|((group, version, kind, resource), operation, object, old, subresource, typed)| {
            // Half the time the object at least claims the right kind.
            let object = if typed {
                let mut object = json!({"apiVersion": if group.is_empty() { version.to_string() } else { format!("{group}/{version}") }, "kind": kind, "metadata": {"name": "x", "namespace": "ns"}});
                if let Value::Object(extra) = object_or_empty(object_field(&old)) {
                    object["spec"] = Value::Object(extra);
                }
                object
            } else {
                object
            };
            json!({
                "apiVersion": "admission.k8s.io/v1",
                "kind": "AdmissionReview",
                "request": {
                    "uid": "fuzz",
                    "kind": {"group": group, "version": version, "kind": kind},
                    "resource": {"group": group, "version": version, "resource": resource},
                    "subResource": subresource,
                    "name": "x",
                    "namespace": "ns",
                    "operation": operation,
                    "userInfo": {"username": "fuzzer"},
                    "object": object,
                    "oldObject": old,
                    "dryRun": false
                }
            })
        })
}

fn object_field(value: &Value) -> Value {
    value.get("spec").cloned().unwrap_or_else(|| value.clone())
}

fn object_or_empty(value: Value) -> Value {
    if value.is_object() { value } else { json!({}) }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_bytes_get_a_review(body in prop::collection::vec(any::<u8>(), 0..512), path in 0..3usize) {
        answers_with_a_review(&runtime(), PATHS[path], body);
    }

    #[test]
    fn arbitrary_reviews_get_a_review_for_their_uid(review in review(), path in 0..3usize) {
        let answer = answers_with_a_review(&runtime(), PATHS[path], review.to_string().into_bytes());
        // A decodable request is answered for its own uid.
        if answer["response"]["uid"] != "" {
            prop_assert_eq!(&answer["response"]["uid"], "fuzz");
        }
    }
}

#[test]
fn extreme_shapes_get_a_review() {
    let runtime = runtime();
    let container = |i: usize| json!({"name": format!("c{i}"), "image": "registry.example.com/app:1", "securityContext": {"privileged": true}});
    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "wide", "namespace": "ns"},
        "spec": {"containers": (0..10_000).map(container).collect::<Vec<_>>()}});
    let wide = json!({
        "apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview",
        "request": {"uid": "wide", "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"}, "name": "wide", "namespace": "ns",
            "operation": "CREATE", "userInfo": {"username": "fuzzer"}, "object": pod, "dryRun": false}
    });
    let answer = answers_with_a_review(
        &runtime,
        VALIDATE_WORKLOADS_PATH,
        wide.to_string().into_bytes(),
    );
    assert_eq!(
        answer["response"]["allowed"], false,
        "10k privileged containers were admitted"
    );
    assert_eq!(answer["response"]["uid"], "wide");

    let deep = format!(
        r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{}{}}}"#,
        "[".repeat(50_000),
        "]".repeat(50_000)
    );
    for path in PATHS {
        answers_with_a_review(&runtime, path, deep.clone().into_bytes());
        answers_with_a_review(&runtime, path, vec![b'{'; MAX_REVIEW_BYTES + 10]);
    }
}
