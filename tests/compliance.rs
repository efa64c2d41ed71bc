//! Background compliance against the real API server and the real operator:
//! each exception's `status.coverage` follows the live workloads that rely
//! on it, and a running workload that loses its cover gets a `LostCover`
//! Warning Event.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

mod support;

use std::time::Duration;

use k8s_openapi::{
    api::{apps::v1::Deployment, events::v1::Event},
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api,
    api::{DeleteParams, ListParams, PostParams},
};
use serde_json::{Value, json};
use support::{TestNamespace, eventually, operator::Operator};

use exception_operator::api::SecurityException;

fn operator() -> &'static Operator {
    support::operator::shared()
}

fn deployment(name: &str) -> Deployment {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "agent", "image": "registry.example.com/agent:4.2",
                    "securityContext": {"privileged": true}
                }]}
            }
        }
    }))
    .unwrap()
}

fn exception(name: &str, expires_in: SignedDuration) -> Value {
    json!({
        "apiVersion": "exceptions.dev/v1alpha1", "kind": "SecurityException",
        "metadata": {"name": name},
        "spec": {
            "controls": [{"id": "privileged"}],
            "targets": {"kinds": ["Deployment"], "names": ["legacy-agent*"]},
            "justification": "vendor agent",
            "risk": {"rating": "Medium"},
            "expiresAt": (Timestamp::now() + expires_in).round(k8s_openapi::jiff::Unit::Second).unwrap().to_string()
        }
    })
}

/// Creates the Deployment, retrying while the webhook's index catches up.
async fn create_covered(namespace: &TestNamespace, name: &str) {
    let api: Api<Deployment> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let created = eventually(Duration::from_secs(10), || async {
        api.create(&PostParams::default(), &deployment(name))
            .await
            .ok()
    })
    .await;
    assert!(created.is_some(), "the exception never admitted {name}");
}

async fn workloads(namespace: &TestNamespace, exception: &str) -> Option<i32> {
    let api: Api<SecurityException> = Api::namespaced(namespace.client.clone(), &namespace.name);
    Some(api.get(exception).await.ok()?.status?.coverage?.workloads)
}

#[tokio::test]
async fn coverage_counts_the_live_workloads_that_rely_on_an_exception() {
    operator();
    let namespace = TestNamespace::new("coverage").await;
    support::operator::approved_exception(
        &namespace,
        exception("privileged-agent", SignedDuration::from_hours(1)),
    )
    .await;
    // Evaluated, and nothing relies on it yet.
    eventually(Duration::from_secs(15), || async {
        (workloads(&namespace, "privileged-agent").await? == 0).then_some(())
    })
    .await
    .expect("coverage recorded as 0 before any workload");

    create_covered(&namespace, "legacy-agent").await;
    eventually(Duration::from_secs(15), || async {
        (workloads(&namespace, "privileged-agent").await? == 1).then_some(())
    })
    .await
    .unwrap_or_else(|| panic!("coverage never reached 1\n{}", operator().log_text()));
    let api: Api<SecurityException> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let object = api.get("privileged-agent").await.unwrap();
    // Coverage has a field manager of its own; the lifecycle's does not own it.
    let owns_coverage = |manager: &str| {
        object.metadata.managed_fields.iter().flatten().any(|m| {
            m.manager.as_deref() == Some(manager)
                && m.subresource.as_deref() == Some("status")
                && m.fields_v1
                    .as_ref()
                    .is_some_and(|f| f.0.to_string().contains("f:coverage"))
        })
    };
    assert!(owns_coverage("exception-operator-coverage"));
    assert!(!owns_coverage("exception-operator"));
    let status = object.status.unwrap();
    assert!(status.coverage.unwrap().last_used.is_some());
    // The lifecycle's own writes keep coverage, and see it.
    let unused = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Unused")
        .cloned();
    assert!(
        unused.is_none_or(|c| c.status == "False"),
        "an exception in use is not Unused"
    );

    Api::<Deployment>::namespaced(namespace.client.clone(), &namespace.name)
        .delete("legacy-agent", &DeleteParams::default())
        .await
        .unwrap();
    eventually(Duration::from_secs(15), || async {
        (workloads(&namespace, "privileged-agent").await? == 0).then_some(())
    })
    .await
    .expect("coverage went back to 0 once the Deployment was deleted");
    let status = api.get("privileged-agent").await.unwrap().status.unwrap();
    assert!(
        status.coverage.unwrap().last_used.is_some(),
        "lastUsed is kept"
    );
    eventually(Duration::from_secs(10), || async {
        let status = api.get("privileged-agent").await.ok()?.status?;
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Unused" && c.status == "False" && c.reason == "InUse")
            .then_some(())
    })
    .await
    .expect("within the grace period the lifecycle reports InUse");
}

#[tokio::test]
async fn a_running_workload_that_loses_its_cover_gets_a_warning_event() {
    operator();
    let namespace = TestNamespace::new("lost-cover").await;
    let expires_at = support::operator::approved_exception(
        &namespace,
        exception("short-lived", SignedDuration::from_secs(20)),
    )
    .await;
    create_covered(&namespace, "legacy-agent").await;
    eventually(Duration::from_secs(15), || async {
        (workloads(&namespace, "short-lived").await? == 1).then_some(())
    })
    .await
    .expect("the running Deployment relies on the exception");
    assert!(
        Timestamp::now() < expires_at,
        "the exception expired before the test could see it in use"
    );

    let events: Api<Event> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let wait = Duration::try_from(expires_at.duration_since(Timestamp::now())).unwrap_or_default();
    let event = eventually(wait + Duration::from_secs(20), || async {
        events
            .list(&ListParams::default())
            .await
            .ok()?
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("LostCover"))
    })
    .await
    .unwrap_or_else(|| panic!("no LostCover event\n{}", operator().log_text()));
    assert!(Timestamp::now() >= expires_at);
    assert_eq!(event.type_.as_deref(), Some("Warning"));
    let regarding = event.regarding.unwrap();
    assert_eq!(regarding.kind.as_deref(), Some("Deployment"));
    assert_eq!(regarding.name.as_deref(), Some("legacy-agent"));
    let note = event.note.unwrap_or_default();
    assert!(note.contains("short-lived"), "{note}");
    assert!(note.contains("privileged"), "{note}");
    assert!(note.contains("next rollout will be denied"), "{note}");
    // The Deployment itself is left alone.
    let deployment = Api::<Deployment>::namespaced(namespace.client.clone(), &namespace.name)
        .get("legacy-agent")
        .await
        .unwrap();
    assert!(deployment.metadata.deletion_timestamp.is_none());
    // Announced once per loss.
    tokio::time::sleep(Duration::from_secs(11)).await;
    let count = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .iter()
        .filter(|e| e.reason.as_deref() == Some("LostCover"))
        .map(|e| e.series.as_ref().map_or(1, |s| s.count))
        .sum::<i32>();
    assert_eq!(count, 1, "LostCover announced more than once");
}
