//! A restarted operator recomputes everything from the cluster and announces
//! nothing twice. Its own test binary: stopping the operator removes the
//! cluster-wide webhooks, which other tests rely on.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

mod support;

use std::time::Duration;

use k8s_openapi::{
    api::events::v1::Event,
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api,
    api::{ListParams, PostParams},
};
use serde_json::json;
use support::{
    TestNamespace, eventually,
    operator::{Operator, cli},
};

use exception_operator::api::{Phase, SecurityException};

const CONFIG: &str = r#"
approval:
  rules:
    - ratings: [Low, Medium, High, Critical]
      approvers: {users: [bob@example.com]}
      quorum: 1
lifecycle:
  expiryWarnings: [30d, 7d, 1d]
"#;

async fn reasons(namespace: &TestNamespace) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let mut reasons: Vec<String> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter_map(|e| e.reason)
        .collect();
    reasons.sort();
    reasons
}

#[tokio::test]
async fn a_restarted_operator_emits_no_duplicate_events() {
    support::control_plane();
    support::operator::grant_personas();
    let operator = Operator::start(CONFIG);
    let namespace = TestNamespace::new("restart").await;
    let ns = namespace.name.clone();
    let api: Api<SecurityException> = Api::namespaced(namespace.client.clone(), &ns);
    // Expiring within a day: Approved and ExpiringSoon are both announced.
    let expires_at = (Timestamp::now() + SignedDuration::from_hours(12))
        .round(k8s_openapi::jiff::Unit::Second)
        .unwrap();
    let object: SecurityException = serde_json::from_value(json!({
        "apiVersion": "exceptions.dev/v1alpha1", "kind": "SecurityException",
        "metadata": {"name": "steady"},
        "spec": {
            "controls": [{"id": "hostPorts", "values": ["8080"]}],
            "targets": {"names": ["web"]},
            "justification": "legacy load balancer health check",
            "risk": {"rating": "Low"},
            "expiresAt": expires_at.to_string()
        }
    }))
    .unwrap();
    api.create(&PostParams::default(), &object).await.unwrap();
    let (ok, _, stderr) = cli(&["approve", "steady", "-n", &ns, "--as", "bob@example.com"]);
    assert!(ok, "{stderr}");
    let settled = eventually(Duration::from_secs(15), || async {
        let reasons = reasons(&namespace).await;
        (reasons.contains(&"Approved".to_string()) && reasons.contains(&"ExpiringSoon".to_string()))
            .then_some(reasons)
    })
    .await
    .unwrap_or_else(|| {
        panic!(
            "no Approved and ExpiringSoon events; operator log:\n{}",
            operator.log_text()
        )
    });

    operator.stop();
    let restarted = Operator::start(CONFIG);
    // Give the new process time to reconcile everything and (wrongly) announce.
    tokio::time::sleep(Duration::from_secs(5)).await;
    let phase = api
        .get("steady")
        .await
        .unwrap()
        .status
        .and_then(|s| s.phase);
    assert_eq!(phase, Some(Phase::Active));
    assert_eq!(
        reasons(&namespace).await,
        settled,
        "the restarted operator re-announced; log:\n{}",
        restarted.log_text()
    );
}
