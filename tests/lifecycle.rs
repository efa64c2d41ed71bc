//! The governed lifecycle end to end, against a real API server and the real
//! operator binary: request, approval (identity and signature), voiding,
//! quorum, denial of forged identities, compensating-control suspension,
//! expiry to the second, and the Events that announce each step.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

mod support;

use std::{sync::OnceLock, time::Duration};

use k8s_openapi::{
    api::{events::v1::Event, networking::v1::NetworkPolicy},
    jiff::{SignedDuration, Timestamp},
};
use kube::{
    Api, Client,
    api::{DeleteParams, ListParams, Patch, PatchParams, PostParams},
};
use serde_json::{Value, json};
use support::{
    TestNamespace, eventually,
    operator::{Operator, cli, client_as, ssh_key},
};

use exception_operator::api::{Phase, SecurityException, annotations};

const APPROVERS: &str = "security-approvers";
const LEADS: &str = "security-leads";

struct World {
    _operator: Operator,
    carol_key: std::path::PathBuf,
}

/// One operator for the whole test binary (webhooks are cluster-wide), with
/// a configuration whose durations suit tests, and RBAC for the personas.
fn world() -> &'static World {
    static WORLD: OnceLock<Result<World, String>> = OnceLock::new();
    support::once(&WORLD, || {
        support::control_plane();
        let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("keys-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (carol_key, carol_public) = ssh_key(&dir, "carol");
        support::operator::grant_personas();
        let config = format!(
            r#"
approval:
  rules:
    - ratings: [Low, Medium]
      approvers: {{groups: [{APPROVERS}]}}
      quorum: 1
      maxDuration: 180d
    - ratings: [High]
      approvers: {{groups: [{LEADS}]}}
      quorum: 1
      maxDuration: 30d
      requireCompensatingControls: true
    - ratings: [Critical]
      approvers: {{groups: [{LEADS}]}}
      quorum: 2
      maxDuration: 30d
      requireCompensatingControls: true
  signers:
    - name: carol@example.com
      key: "{carol_public}"
      groups: [{APPROVERS}]
lifecycle:
  expiryWarnings: [30d, 7d, 1d]
  agingAfter: {{Low: 365d, Medium: 180d, High: 90d, Critical: 30d}}
enforcement:
  defaultLevel: baseline
  excludedNamespaces: [kube-system, exception-operator]
"#
        );
        World {
            _operator: Operator::start(&config),
            carol_key,
        }
    })
}

fn exception(name: &str, rating: &str, expires_in: SignedDuration, controls: &[&str]) -> Value {
    json!({
        "apiVersion": "exceptions.dev/v1alpha1",
        "kind": "SecurityException",
        "metadata": {"name": name},
        "spec": {
            "controls": [{"id": "privileged"}],
            "targets": {"kinds": ["Deployment"], "names": ["legacy-agent"]},
            "justification": "vendor agent needs privileged mode until v5",
            "risk": {"rating": rating},
            "compensatingControls": controls,
            "expiresAt": (Timestamp::now() + expires_in).round(k8s_openapi::jiff::Unit::Second).unwrap().to_string(),
        }
    })
}

async fn create_as(
    client: Client,
    namespace: &str,
    object: &Value,
) -> Result<SecurityException, kube::Error> {
    let api: Api<SecurityException> = Api::namespaced(client, namespace);
    api.create(
        &PostParams::default(),
        &serde_json::from_value(object.clone()).unwrap(),
    )
    .await
}

async fn alice() -> Client {
    client_as("alice@example.com", Some("uid-alice"), &["developers"]).await
}

fn approve_as(namespace: &str, name: &str, user: &str, group: &str) -> (bool, String, String) {
    cli(&[
        "approve",
        name,
        "-n",
        namespace,
        "--as",
        user,
        "--as-group",
        group,
    ])
}

async fn phase_becomes(
    namespace: &TestNamespace,
    name: &str,
    phase: Phase,
    within: Duration,
) -> SecurityException {
    let api: Api<SecurityException> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let last = std::sync::Mutex::new(None);
    let found = eventually(within, || async {
        let object = api.get(name).await.ok()?;
        let current = object.status.as_ref().and_then(|s| s.phase);
        *last.lock().unwrap() = Some(object.clone());
        (current == Some(phase)).then_some(object)
    })
    .await;
    let last = last.into_inner().unwrap();
    found.unwrap_or_else(|| {
        panic!(
            "{}/{name} did not become {phase:?} within {within:?}; last status: {:#?}",
            namespace.name,
            last.and_then(|o| o.status)
        )
    })
}

async fn event_reasons(namespace: &TestNamespace, name: &str) -> Vec<String> {
    let events: Api<Event> = Api::namespaced(namespace.client.clone(), &namespace.name);
    let mut reasons: Vec<(Option<Timestamp>, String)> = events
        .list(&ListParams::default())
        .await
        .unwrap()
        .items
        .into_iter()
        .filter(|e| e.regarding.as_ref().and_then(|r| r.name.as_deref()) == Some(name))
        .map(|e| (e.event_time.map(|t| t.0), e.reason.unwrap_or_default()))
        .collect();
    reasons.sort();
    reasons.into_iter().map(|(_, reason)| reason).collect()
}

async fn has_event(namespace: &TestNamespace, name: &str, reason: &str) -> bool {
    eventually(Duration::from_secs(10), || async {
        event_reasons(namespace, name)
            .await
            .iter()
            .any(|r| r == reason)
            .then_some(())
    })
    .await
    .is_some()
}

#[tokio::test]
async fn request_approve_void_reapprove_and_expire_to_the_second() {
    world();
    let namespace = TestNamespace::new("lifecycle").await;
    let ns = namespace.name.as_str();
    let expires_in = SignedDuration::from_secs(30);
    let created = create_as(
        alice().await,
        ns,
        &exception("agent", "Medium", expires_in, &[]),
    )
    .await
    .unwrap();
    let expires_at = created.spec.expires_at.0;

    let pending = phase_becomes(&namespace, "agent", Phase::Pending, Duration::from_secs(10)).await;
    let status = pending.status.unwrap();
    assert_eq!(
        status.requested_by.map(|r| r.username),
        Some("alice@example.com".into())
    );
    assert!(
        status
            .conditions
            .iter()
            .any(|c| c.type_ == "Ready" && c.status == "False")
    );

    let (ok, _, stderr) = approve_as(ns, "agent", "bob@example.com", APPROVERS);
    assert!(ok, "bob's approval failed: {stderr}");
    let active = phase_becomes(&namespace, "agent", Phase::Active, Duration::from_secs(10)).await;
    let status = active.status.unwrap();
    assert_eq!(status.approvals.len(), 1);
    assert_eq!(status.approvals[0].approver, "bob@example.com");
    let ready = status
        .conditions
        .iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert_eq!(
        (ready.status.as_str(), ready.observed_generation),
        ("True", active.metadata.generation)
    );
    assert!(has_event(&namespace, "agent", "Approved").await);

    // Any spec change voids the approval: renewal is re-approval.
    let api: Api<SecurityException> = Api::namespaced(alice().await, ns);
    api.patch(
        "agent",
        &PatchParams::default(),
        &Patch::Merge(
            json!({"spec": {"justification": "vendor agent needs privileged mode until v5.1"}}),
        ),
    )
    .await
    .unwrap();
    phase_becomes(&namespace, "agent", Phase::Pending, Duration::from_secs(10)).await;
    assert!(has_event(&namespace, "agent", "ApprovalVoided").await);

    let (ok, _, stderr) = approve_as(ns, "agent", "bob@example.com", APPROVERS);
    assert!(ok, "re-approval failed: {stderr}");
    phase_becomes(&namespace, "agent", Phase::Active, Duration::from_secs(10)).await;

    // Expiry at the instant, not at the next poll.
    let wait = Duration::try_from(expires_at.duration_since(Timestamp::now())).unwrap_or_default();
    let expired = phase_becomes(
        &namespace,
        "agent",
        Phase::Expired,
        wait + Duration::from_secs(5),
    )
    .await;
    let flipped = expired.status.unwrap().history.last().unwrap().time.0;
    let late = flipped.duration_since(expires_at);
    assert!(
        late >= SignedDuration::ZERO && late < SignedDuration::from_secs(2),
        "flipped to Expired {late:#} after expiresAt"
    );
    assert!(has_event(&namespace, "agent", "Expired").await);
}

#[tokio::test]
async fn the_requester_cannot_approve_their_own_exception_under_any_name() {
    world();
    let namespace = TestNamespace::new("self-approval").await;
    let ns = namespace.name.as_str();
    let mut object = exception("own", "Medium", SignedDuration::from_hours(24), &[]);
    object["spec"]["requester"] = json!("mallory.alt@example.com");
    create_as(alice().await, ns, &object).await.unwrap();
    phase_becomes(&namespace, "own", Phase::Pending, Duration::from_secs(10)).await;

    // Alice herself, even in the approvers' group.
    let (ok, _, stderr) = approve_as(ns, "own", "alice@example.com", APPROVERS);
    assert!(!ok, "self-approval was accepted");
    assert!(
        stderr.contains("alice@example.com requested this exception"),
        "{stderr}"
    );

    // Alice through a second account that carries her uid.
    let (ok, _, stderr) = cli(&[
        "approve",
        "own",
        "-n",
        ns,
        "--as",
        "alice.admin@example.com",
        "--as-uid",
        "uid-alice",
        "--as-group",
        APPROVERS,
    ]);
    assert!(
        !ok,
        "approval by the requester's second identity was accepted"
    );
    assert!(stderr.contains("rejected"), "{stderr}");

    // The person named as requester in the spec.
    let (ok, _, stderr) = approve_as(ns, "own", "mallory.alt@example.com", APPROVERS);
    assert!(!ok, "approval by spec.requester was accepted");
    assert!(stderr.contains("rejected"), "{stderr}");

    // Someone outside the approvers' groups.
    let (ok, _, stderr) = approve_as(ns, "own", "dave@example.com", "developers");
    assert!(!ok, "approval by a non-approver was accepted");
    assert!(stderr.contains("not an approver"), "{stderr}");

    let still = phase_becomes(&namespace, "own", Phase::Pending, Duration::from_secs(5)).await;
    assert!(still.status.unwrap().approvals.is_empty());
}

#[tokio::test]
async fn identity_and_approvals_cannot_be_forged_in_the_object() {
    world();
    let namespace = TestNamespace::new("forgery").await;
    let ns = namespace.name.as_str();

    // A forged requested-by annotation and a forged sealed approval at CREATE.
    let mut object = exception("forged", "Medium", SignedDuration::from_hours(24), &[]);
    object["metadata"]["annotations"] = json!({
        annotations::REQUESTED_BY: r#"{"user":"ceo@example.com","at":"2026-01-01T00:00:00Z","seal":"AAAA"}"#,
        annotations::APPROVED_BY: r#"[{"user":"bob@example.com","groups":["security-approvers"],"specHash":"sha256:00","at":"2026-01-01T00:00:00Z","seal":"AAAA"}]"#,
    });
    let created = create_as(alice().await, ns, &object).await.unwrap();
    let kept = created.metadata.annotations.unwrap_or_default();
    assert!(
        !kept.contains_key(annotations::APPROVED_BY),
        "a forged approval survived creation"
    );
    let pending = phase_becomes(
        &namespace,
        "forged",
        Phase::Pending,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(
        pending.status.unwrap().requested_by.map(|r| r.username),
        Some("alice@example.com".into())
    );

    // An approve request at creation is refused: approvals come afterwards.
    let mut object = exception(
        "pre-approved",
        "Medium",
        SignedDuration::from_hours(24),
        &[],
    );
    object["metadata"]["annotations"] = json!({annotations::APPROVE: "sha256:00"});
    let error = create_as(alice().await, ns, &object).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("cannot be set when the exception is created"),
        "{error}"
    );

    // A real approval copied from another exception counts for nothing.
    create_as(
        alice().await,
        ns,
        &exception("original", "Medium", SignedDuration::from_hours(24), &[]),
    )
    .await
    .unwrap();
    let (ok, _, stderr) = approve_as(ns, "original", "bob@example.com", APPROVERS);
    assert!(ok, "{stderr}");
    let original = phase_becomes(
        &namespace,
        "original",
        Phase::Active,
        Duration::from_secs(10),
    )
    .await;
    let sealed = original.metadata.annotations.unwrap()[annotations::APPROVED_BY].clone();
    let api: Api<SecurityException> = Api::namespaced(alice().await, ns);
    api.patch(
        "forged",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"annotations": {annotations::APPROVED_BY: sealed}}})),
    )
    .await
    .unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let forged = phase_becomes(&namespace, "forged", Phase::Pending, Duration::from_secs(5)).await;
    assert!(
        forged.status.unwrap().approvals.is_empty(),
        "a copied approval counted"
    );

    // Status belongs to the operator.
    let error = api
        .patch_status(
            "forged",
            &PatchParams::default(),
            &Patch::Merge(json!({"status": {"phase": "Active"}})),
        )
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("written only by exception-operator"),
        "{error}"
    );

    // So does a compensating control's: a forged Ready would lift suspensions.
    let controls =
        Api::<exception_operator::api::CompensatingControl>::namespaced(alice().await, ns);
    let control = json!({
        "apiVersion": "exceptions.dev/v1alpha1", "kind": "CompensatingControl",
        "metadata": {"name": "firewall"},
        "spec": {"description": "egress filtered", "category": "NetworkIsolation"}
    });
    controls
        .create(
            &PostParams::default(),
            &serde_json::from_value(control).unwrap(),
        )
        .await
        .unwrap();
    let status = json!({"status": {"conditions": []}});
    let error = controls
        .patch_status("firewall", &PatchParams::default(), &Patch::Merge(status))
        .await
        .unwrap_err();
    assert!(
        error
            .to_string()
            .contains("CompensatingControl is written only by exception-operator"),
        "{error}"
    );
}

#[tokio::test]
async fn critical_needs_two_distinct_approvers() {
    world();
    let namespace = TestNamespace::new("quorum").await;
    let ns = namespace.name.as_str();
    let controls = Api::<exception_operator::api::CompensatingControl>::namespaced(
        namespace.client.clone(),
        ns,
    );
    controls
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({
                "apiVersion": "exceptions.dev/v1alpha1", "kind": "CompensatingControl",
                "metadata": {"name": "watchers"},
                "spec": {"description": "runtime monitoring of the agent", "category": "Monitoring"}
            }))
            .unwrap(),
        )
        .await
        .unwrap();
    create_as(
        alice().await,
        ns,
        &exception(
            "critical",
            "Critical",
            SignedDuration::from_hours(24),
            &["watchers"],
        ),
    )
    .await
    .unwrap();

    let (ok, _, stderr) = approve_as(ns, "critical", "bob@example.com", LEADS);
    assert!(ok, "{stderr}");
    let (ok, _, stderr) = approve_as(ns, "critical", "bob@example.com", LEADS);
    assert!(
        !ok && stderr.contains("already approved"),
        "a second approval by bob: {stderr}"
    );
    tokio::time::sleep(Duration::from_secs(2)).await;
    let one = phase_becomes(
        &namespace,
        "critical",
        Phase::Pending,
        Duration::from_secs(5),
    )
    .await;
    assert_eq!(one.status.unwrap().approvals.len(), 1);

    let (ok, _, stderr) = approve_as(ns, "critical", "erin@example.com", LEADS);
    assert!(ok, "{stderr}");
    let active = phase_becomes(
        &namespace,
        "critical",
        Phase::Active,
        Duration::from_secs(10),
    )
    .await;
    assert_eq!(active.status.unwrap().approvals.len(), 2);
}

#[tokio::test]
async fn a_signed_gitops_approval_is_honoured_and_a_tampered_one_is_not() {
    let world = world();
    let namespace = TestNamespace::new("gitops").await;
    let ns = namespace.name.as_str();
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("gitops-{ns}"));
    std::fs::create_dir_all(&dir).unwrap();
    let manifest = dir.join("exception.yaml");
    let object = exception("synced", "Medium", SignedDuration::from_hours(24), &[]);
    std::fs::write(&manifest, serde_saphyr::to_string(&object).unwrap()).unwrap();
    let (ok, stdout, stderr) = cli(&[
        "sign",
        manifest.to_str().unwrap(),
        "--key",
        world.carol_key.to_str().unwrap(),
        "--signer",
        "carol@example.com",
        "--namespace",
        ns,
    ]);
    assert!(ok, "sign failed: {stdout}{stderr}");
    let signed: Value =
        serde_saphyr::from_str(&std::fs::read_to_string(&manifest).unwrap()).unwrap();
    assert!(signed["metadata"]["annotations"][annotations::APPROVAL_SIGNATURES].is_string());

    // A GitOps controller's service account applies what Git holds.
    let argo = client_as(
        "system:serviceaccount:argocd:argocd-application-controller",
        None,
        &["system:serviceaccounts"],
    )
    .await;
    let api: Api<SecurityException> = Api::namespaced(argo.clone(), ns);
    api.patch(
        "synced",
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&signed),
    )
    .await
    .unwrap();
    let active = phase_becomes(&namespace, "synced", Phase::Active, Duration::from_secs(10)).await;
    let approvals = active.status.unwrap().approvals;
    assert_eq!(
        (approvals[0].approver.as_str(), approvals[0].method.as_str()),
        ("carol@example.com", "Signature")
    );

    // The same signature on a changed spec (a longer expiry, say) counts for nothing.
    let mut tampered = signed.clone();
    tampered["metadata"]["name"] = json!("tampered");
    create_as(argo.clone(), ns, &tampered).await.unwrap();
    let mut extended = signed.clone();
    extended["spec"]["justification"] = json!("edited after signing");
    api.patch(
        "synced",
        &PatchParams::apply("argocd-controller"),
        &Patch::Apply(&extended),
    )
    .await
    .unwrap();
    phase_becomes(
        &namespace,
        "synced",
        Phase::Pending,
        Duration::from_secs(10),
    )
    .await;
    let other = phase_becomes(
        &namespace,
        "tampered",
        Phase::Pending,
        Duration::from_secs(10),
    )
    .await;
    assert!(
        other.status.unwrap().approvals.is_empty(),
        "a signature for another exception counted"
    );
}

#[tokio::test]
async fn deleting_the_evidence_suspends_and_restoring_it_reactivates() {
    world();
    let namespace = TestNamespace::new("evidence").await;
    let ns = namespace.name.as_str();
    let policies: Api<NetworkPolicy> = Api::namespaced(namespace.client.clone(), ns);
    let policy: NetworkPolicy = serde_json::from_value(json!({
        "metadata": {"name": "agent-egress"},
        "spec": {"podSelector": {"matchLabels": {"app": "agent"}}, "policyTypes": ["Egress"]}
    }))
    .unwrap();
    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    let controls = Api::<exception_operator::api::CompensatingControl>::namespaced(
        namespace.client.clone(),
        ns,
    );
    controls
        .create(&PostParams::default(), &serde_json::from_value(json!({
            "apiVersion": "exceptions.dev/v1alpha1", "kind": "CompensatingControl",
            "metadata": {"name": "isolation"},
            "spec": {
                "description": "the agent may not talk to anything",
                "category": "NetworkIsolation",
                "evidence": [{"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "name": "agent-egress"}]
            }
        })).unwrap())
        .await
        .unwrap();
    create_as(
        alice().await,
        ns,
        &exception(
            "isolated",
            "High",
            SignedDuration::from_hours(24),
            &["isolation"],
        ),
    )
    .await
    .unwrap();
    let (ok, _, stderr) = approve_as(ns, "isolated", "bob@example.com", LEADS);
    assert!(ok, "{stderr}");
    phase_becomes(
        &namespace,
        "isolated",
        Phase::Active,
        Duration::from_secs(10),
    )
    .await;

    policies
        .delete("agent-egress", &DeleteParams::default())
        .await
        .unwrap();
    let suspended = phase_becomes(
        &namespace,
        "isolated",
        Phase::Suspended,
        Duration::from_secs(10),
    )
    .await;
    let verified = suspended
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "ControlsVerified")
        .unwrap();
    assert!(
        verified.message.contains("NetworkPolicy agent-egress"),
        "{}",
        verified.message
    );
    assert!(has_event(&namespace, "isolated", "Suspended").await);

    policies
        .create(&PostParams::default(), &policy)
        .await
        .unwrap();
    phase_becomes(
        &namespace,
        "isolated",
        Phase::Active,
        Duration::from_secs(10),
    )
    .await;
    assert!(has_event(&namespace, "isolated", "Reactivated").await);
}

#[tokio::test]
async fn policy_is_checked_when_an_exception_is_requested() {
    world();
    let namespace = TestNamespace::new("policy").await;
    let ns = namespace.name.as_str();
    let cases = [
        (
            exception(
                "too-long",
                "High",
                SignedDuration::from_hours(24 * 60),
                &["missing"],
            ),
            "allows at most 30d",
        ),
        (
            exception("no-controls", "High", SignedDuration::from_hours(24), &[]),
            "requires at least one CompensatingControl",
        ),
        (
            exception(
                "ghost-control",
                "Medium",
                SignedDuration::from_hours(24),
                &["ghost"],
            ),
            "CompensatingControl ghost does not exist",
        ),
        (
            exception("past", "Medium", SignedDuration::from_secs(-60), &[]),
            "is not in the future",
        ),
    ];
    for (object, message) in cases {
        let error = create_as(alice().await, ns, &object).await.unwrap_err();
        assert!(
            error.to_string().contains(message),
            "{}: expected {message:?}, got {error}",
            object["metadata"]["name"]
        );
    }
    let mut unknown = exception(
        "unknown-control",
        "Medium",
        SignedDuration::from_hours(24),
        &[],
    );
    unknown["spec"]["controls"] = json!([{"id": "notAControl"}]);
    let error = create_as(alice().await, ns, &unknown).await.unwrap_err();
    assert!(
        error
            .to_string()
            .contains("unknown control \"notAControl\""),
        "{error}"
    );
}

#[tokio::test]
async fn denial_and_revocation_take_the_exception_out_of_force_with_a_reason() {
    world();
    let namespace = TestNamespace::new("decisions").await;
    let ns = namespace.name.as_str();
    for name in ["denied", "revoked"] {
        create_as(
            alice().await,
            ns,
            &exception(name, "Medium", SignedDuration::from_hours(24), &[]),
        )
        .await
        .unwrap();
    }
    // A reason is required, and only approvers may decide.
    let (ok, _, stderr) = cli(&[
        "deny",
        "denied",
        "-n",
        ns,
        "--reason",
        "",
        "--as",
        "bob@example.com",
        "--as-group",
        APPROVERS,
    ]);
    assert!(!ok && stderr.contains("reason"), "{stderr}");
    let (ok, _, stderr) = cli(&[
        "deny",
        "denied",
        "-n",
        ns,
        "--reason",
        "no",
        "--as",
        "dave@example.com",
        "--as-group",
        "developers",
    ]);
    assert!(!ok && stderr.contains("not an approver"), "{stderr}");

    let (ok, _, stderr) = cli(&[
        "deny",
        "denied",
        "-n",
        ns,
        "--reason",
        "fix the agent instead",
        "--as",
        "bob@example.com",
        "--as-group",
        APPROVERS,
    ]);
    assert!(ok, "{stderr}");
    let denied = phase_becomes(&namespace, "denied", Phase::Denied, Duration::from_secs(10)).await;
    let ready = denied
        .status
        .unwrap()
        .conditions
        .into_iter()
        .find(|c| c.type_ == "Ready")
        .unwrap();
    assert!(
        ready
            .message
            .contains("denied by bob@example.com: fix the agent instead"),
        "{}",
        ready.message
    );
    assert!(has_event(&namespace, "denied", "Denied").await);
    // A denied spec cannot be approved.
    let (ok, _, stderr) = approve_as(ns, "denied", "erin@example.com", APPROVERS);
    assert!(
        !ok && stderr.contains("denied by bob@example.com"),
        "{stderr}"
    );

    let (ok, _, stderr) = approve_as(ns, "revoked", "bob@example.com", APPROVERS);
    assert!(ok, "{stderr}");
    phase_becomes(
        &namespace,
        "revoked",
        Phase::Active,
        Duration::from_secs(10),
    )
    .await;
    let (ok, _, stderr) = cli(&[
        "revoke",
        "revoked",
        "-n",
        ns,
        "--reason",
        "agent upgraded",
        "--as",
        "erin@example.com",
        "--as-group",
        APPROVERS,
    ]);
    assert!(ok, "{stderr}");
    phase_becomes(
        &namespace,
        "revoked",
        Phase::Revoked,
        Duration::from_secs(10),
    )
    .await;
    assert!(has_event(&namespace, "revoked", "Revoked").await);
}
