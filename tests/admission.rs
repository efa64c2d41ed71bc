//! Workload admission against the real API server and the real operator:
//! upstream's Pod Security fixtures get the same verdicts as offline, an
//! approved exception admits exactly what it names for as long as it is in
//! force, and the enforcement modes behave as PSA's do.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

mod support;

use std::{path::Path, time::Duration};

use k8s_openapi::{
    api::{
        apps::v1::Deployment,
        batch::v1::CronJob,
        core::v1::{Namespace, Pod},
    },
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use support::{TestNamespace, eventually, operator::Operator};

fn operator() -> &'static Operator {
    support::operator::shared()
}

async fn labelled(prefix: &str, labels: Value) -> TestNamespace {
    operator();
    let namespace = TestNamespace::new(prefix).await;
    let api: Api<Namespace> = Api::all(namespace.client.clone());
    api.patch(
        &namespace.name,
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"labels": labels}})),
    )
    .await
    .unwrap();
    // The webhook reads labels from its watch: wait until a check sees them.
    tokio::time::sleep(Duration::from_millis(500)).await;
    namespace
}

fn deployment(name: &str, privileged: bool) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "labels": {"app": name}},
        "spec": {
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{
                    "name": "agent", "image": "registry.example.com/agent:4.2",
                    "securityContext": {"privileged": privileged}
                }]}
            }
        }
    })
}

async fn create<K>(client: &Client, namespace: &str, object: &Value) -> Result<K, kube::Error>
where
    K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>
        + Clone
        + serde::de::DeserializeOwned
        + serde::Serialize
        + std::fmt::Debug,
{
    let api: Api<K> = Api::namespaced(client.clone(), namespace);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object.clone()).unwrap(),
    )
    .await
}

fn exception(name: &str, controls: Value, targets: Value, expires_in: SignedDuration) -> Value {
    json!({
        "apiVersion": "exceptions.dev/v1alpha1", "kind": "SecurityException",
        "metadata": {"name": name},
        "spec": {
            "controls": controls,
            "targets": targets,
            "justification": "vendor agent",
            "risk": {"rating": "Medium"},
            "expiresAt": (Timestamp::now() + expires_in).round(k8s_openapi::jiff::Unit::Second).unwrap().to_string()
        }
    })
}

/// Retries a create until it is allowed: the webhook's index follows the
/// exception a moment after its approval.
async fn allowed_within(namespace: &TestNamespace, object: &Value) -> Result<(), String> {
    let mut last = String::new();
    for _ in 0..50 {
        let mut attempt = object.clone();
        attempt["metadata"]["name"] = json!(format!(
            "{}-{}",
            object["metadata"]["name"].as_str().unwrap(),
            Timestamp::now().as_millisecond() % 100_000
        ));
        match create::<Deployment>(&namespace.client, &namespace.name, &attempt).await {
            Ok(_) => return Ok(()),
            Err(error) => last = error.to_string(),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    Err(last)
}

#[tokio::test]
async fn upstream_fixtures_get_the_same_verdicts_through_the_api_server() {
    let root =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/pod-security-admission");
    let mut disagreements = Vec::new();
    let mut unreachable_fixtures = Vec::new();
    let mut checked = 0;
    for level in ["baseline", "restricted"] {
        let namespace = labelled(
            &format!("psa-{level}"),
            json!({"exceptions.dev/enforce": level}),
        )
        .await;
        let pods: Api<Pod> = Api::namespaced(namespace.client.clone(), &namespace.name);
        for verdict in ["pass", "fail"] {
            let mut files: Vec<_> = std::fs::read_dir(root.join(level).join(verdict))
                .unwrap()
                .map(|e| e.unwrap().path())
                .collect();
            files.sort();
            for file in files {
                let mut pod: Pod =
                    serde_saphyr::from_str(&std::fs::read_to_string(&file).unwrap()).unwrap();
                // Fixture names carry underscores, which Pod names may not.
                pod.metadata.name = pod.metadata.name.map(|n| n.replace('_', "-"));
                let dry_run = PostParams {
                    dry_run: true,
                    ..Default::default()
                };
                let result = pods.create(&dry_run, &pod).await;
                let by_webhook =
                    |status: &kube::core::Status| status.message.contains("denied the request");
                match (verdict, result) {
                    // The API server's own validation runs before admission: a
                    // fixture it rejects (procMount Unmasked without hostUsers:
                    // false, say) never reaches the webhook; conformance.rs
                    // checks those offline.
                    (_, Err(kube::Error::Api(status))) if !by_webhook(&status) => {
                        unreachable_fixtures.push(format!("{level}/{verdict}/{}", file.display()));
                        continue;
                    }
                    ("pass", Err(error)) => disagreements
                        .push(format!("{level}/pass/{}: denied: {error}", file.display())),
                    ("fail", Ok(_)) => {
                        disagreements.push(format!("{level}/fail/{}: allowed", file.display()))
                    }
                    _ => {}
                }
                checked += 1;
            }
        }
    }
    println!(
        "{checked} fixtures checked through the API server; {} rejected by its own validation first: {unreachable_fixtures:?}",
        unreachable_fixtures.len()
    );
    assert!(
        unreachable_fixtures.len() < 15,
        "too many fixtures never reached the webhook: {unreachable_fixtures:?}"
    );
    assert!(checked > 100, "only {checked} fixtures found");
    assert!(
        disagreements.is_empty(),
        "{}/{checked} fixtures disagree:\n{}",
        disagreements.len(),
        disagreements.join("\n")
    );
}

#[tokio::test]
async fn an_exception_admits_exactly_what_it_covers_while_it_is_in_force() {
    let namespace = labelled("covered", json!({})).await; // the cluster default: baseline
    let denied = create::<Deployment>(
        &namespace.client,
        &namespace.name,
        &deployment("legacy-agent", true),
    )
    .await
    .unwrap_err();
    let message = denied.to_string();
    assert!(message.contains("privileged"), "{message}");
    assert!(
        message.contains("spec.template.spec.containers[0].securityContext.privileged"),
        "{message}"
    );

    // An exception for another control does not widen anything.
    support::operator::approved_exception(
        &namespace,
        exception(
            "ports",
            json!([{"id": "hostPorts", "values": ["8080"]}]),
            json!({"names": ["legacy-agent*"]}),
            SignedDuration::from_hours(1),
        ),
    )
    .await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert!(
        create::<Deployment>(
            &namespace.client,
            &namespace.name,
            &deployment("legacy-agent", true)
        )
        .await
        .is_err(),
        "hostPorts exception admitted a privileged workload"
    );

    // The right control, for a while.
    let expires_at = support::operator::approved_exception(
        &namespace,
        exception(
            "privileged-agent",
            json!([{"id": "privileged"}]),
            json!({"kinds": ["Deployment"], "names": ["legacy-agent*"]}),
            SignedDuration::from_secs(25),
        ),
    )
    .await;
    allowed_within(&namespace, &deployment("legacy-agent", true))
        .await
        .expect("the approved exception admits the Deployment");
    // It admits nothing it does not name.
    assert!(
        create::<Deployment>(
            &namespace.client,
            &namespace.name,
            &deployment("other-agent", true)
        )
        .await
        .is_err()
    );

    // Expired: the next rollout is denied, to the second.
    let wait = Duration::try_from(expires_at.duration_since(Timestamp::now())).unwrap_or_default();
    tokio::time::sleep(wait).await;
    let after = create::<Deployment>(
        &namespace.client,
        &namespace.name,
        &deployment("legacy-agent-late", true),
    )
    .await;
    assert!(after.is_err(), "admitted after the exception expired");
}

#[tokio::test]
async fn an_exception_never_reaches_another_namespace() {
    let home = labelled("home", json!({})).await;
    support::operator::approved_exception(
        &home,
        exception(
            "agent",
            json!([{"id": "privileged"}]),
            json!({"names": ["agent*"]}),
            SignedDuration::from_hours(1),
        ),
    )
    .await;
    allowed_within(&home, &deployment("agent", true))
        .await
        .expect("admitted at home");
    let away = labelled("away", json!({})).await;
    assert!(
        create::<Deployment>(&away.client, &away.name, &deployment("agent", true))
            .await
            .is_err(),
        "an exception crossed namespaces"
    );
}

#[tokio::test]
async fn warn_and_audit_modes_admit_with_warnings_and_audit_annotations() {
    let namespace = labelled(
        "modes",
        json!({
            "exceptions.dev/enforce": "privileged",
            "exceptions.dev/warn": "restricted",
            "exceptions.dev/audit": "restricted"
        }),
    )
    .await;
    let output = support::kubectl(&[
        "create",
        "deployment",
        "plain",
        "--image",
        "registry.example.com/app:1",
        "-n",
        &namespace.name,
    ]);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Warning:") && stderr.contains("runAsNonRoot"),
        "no warnings: {stderr}"
    );

    // The audit annotation lands in the API server's audit log.
    let audit_log = support::control_plane()
        .kubeconfig
        .with_file_name("audit.log");
    let found = eventually(Duration::from_secs(10), || async {
        let log = std::fs::read_to_string(&audit_log).ok()?;
        log.lines()
            .find(|line| {
                line.contains(&namespace.name)
                    && line.contains("audit-violations")
                    && line.contains("\"plain\"")
            })
            .map(str::to_string)
    })
    .await;
    let line = found.unwrap_or_else(|| {
        panic!(
            "no audit annotation for the deployment in {}",
            audit_log.display()
        )
    });
    assert!(line.contains("runAsNonRoot"), "{line}");
}

#[tokio::test]
async fn ephemeral_containers_cronjobs_and_bad_labels_are_checked() {
    let namespace = labelled("shapes", json!({})).await;
    let cronjob = json!({
        "apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": "nightly"},
        "spec": {"schedule": "0 3 * * *", "jobTemplate": {"spec": {"template": {"spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "job", "image": "registry.example.com/job:1", "securityContext": {"privileged": true}}]
        }}}}}
    });
    let error = create::<CronJob>(&namespace.client, &namespace.name, &cronjob)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains(
            "spec.jobTemplate.spec.template.spec.containers[0].securityContext.privileged"
        ),
        "{error}"
    );

    let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "app"},
        "spec": {"containers": [{"name": "app", "image": "registry.example.com/app:1"}]}});
    create::<Pod>(&namespace.client, &namespace.name, &pod)
        .await
        .unwrap();
    let debug = json!({"spec": {"ephemeralContainers": [{
        "name": "debugger", "image": "registry.example.com/debug:1", "securityContext": {"privileged": true}
    }]}});
    let pods: Api<Pod> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let error = pods
        .patch_subresource(
            "ephemeralcontainers",
            "app",
            &PatchParams::default(),
            &Patch::Strategic(debug),
        )
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("ephemeralContainers[0]"),
        "{error}"
    );

    let bad = labelled("bad-label", json!({"exceptions.dev/enforce": "strict"})).await;
    let error = create::<Pod>(&bad.client, &bad.name, &pod)
        .await
        .unwrap_err();
    assert!(
        error.to_string().contains("exceptions.dev/enforce"),
        "{error}"
    );
}
