//! The CRDs against a real API server: they install, the examples apply the
//! way a GitOps tool applies them, invalid objects are rejected with our
//! messages, and kubectl shows the columns and the field docs.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

mod support;

use std::{path::Path, time::Duration};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::{
    Api, Client, ResourceExt,
    api::{DynamicObject, Patch, PatchParams, PostParams},
    core::GroupVersionKind,
    discovery::{ApiResource, pinned_kind},
};
use support::{TestNamespace, eventually, kubectl};

/// Every YAML document in `path`, as JSON values.
fn documents(path: &Path) -> Vec<serde_json::Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_saphyr::from_multiple::<serde_json::Value>(&text)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .into_iter()
        .filter(|d| !d.is_null())
        .collect()
}

fn yaml_files(dir: &str) -> Vec<std::path::PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("a directory entry").path())
        .filter(|path| path.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    files
}

async fn api_for(
    client: &Client,
    namespace: &str,
    document: &serde_json::Value,
) -> (Api<DynamicObject>, ApiResource) {
    let api_version = document["apiVersion"].as_str().expect("apiVersion");
    let kind = document["kind"].as_str().expect("kind");
    let (group, version) = api_version.rsplit_once('/').unwrap_or(("", api_version));
    let gvk = GroupVersionKind::gvk(group, version, kind);
    let (resource, _) = pinned_kind(client, &gvk)
        .await
        .unwrap_or_else(|e| panic!("discovering {gvk:?}: {e}"));
    (
        Api::namespaced_with(client.clone(), namespace, &resource),
        resource,
    )
}

#[tokio::test]
async fn both_crds_are_established_with_their_names() {
    let client = support::client().await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    for (name, short, kind) in [
        (
            "securityexceptions.exceptions.dev",
            "secex",
            "SecurityException",
        ),
        (
            "compensatingcontrols.exceptions.dev",
            "compctl",
            "CompensatingControl",
        ),
    ] {
        let crd = crds
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let status = crd.status.expect("a CRD status");
        for condition in ["Established", "NamesAccepted"] {
            assert!(
                status
                    .conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == condition && c.status == "True"),
                "{name} is not {condition}"
            );
        }
        let names = status.accepted_names.expect("accepted names");
        assert_eq!(names.kind, kind);
        assert_eq!(names.short_names, Some(vec![short.to_string()]));
        assert_eq!(
            names.categories,
            Some(vec!["exceptions".to_string(), "security".to_string()])
        );
    }
}

/// What Argo CD and Flux do: server-side apply every example, then apply it
/// again, which must change nothing.
#[tokio::test]
async fn examples_apply_cleanly_and_reapplying_changes_nothing() {
    let namespace = TestNamespace::new("examples").await;
    let params = PatchParams::apply("gitops-tool");
    let files = yaml_files("examples");
    assert!(files.len() >= 3, "expected the examples, found {files:?}");
    let mut applied = 0;
    for file in &files {
        // examples/config.yaml is the operator's configuration, not an
        // object; a unit test of the config module loads it.
        for document in documents(file)
            .into_iter()
            .filter(|d| d.get("kind").is_some())
        {
            assert!(
                document["metadata"].get("namespace").is_none(),
                "{}: examples leave metadata.namespace out so that kubectl apply -n works",
                file.display()
            );
            let (api, _) = api_for(&namespace.client, &namespace.name, &document).await;
            let name = document["metadata"]["name"]
                .as_str()
                .expect("a name")
                .to_string();
            let first = api
                .patch(&name, &params, &Patch::Apply(&document))
                .await
                .unwrap_or_else(|e| panic!("{}: applying {name}: {e}", file.display()));
            let second = api
                .patch(&name, &params, &Patch::Apply(&document))
                .await
                .unwrap_or_else(|e| panic!("{}: re-applying {name}: {e}", file.display()));
            assert_eq!(
                first.resource_version(),
                second.resource_version(),
                "{}: re-applying {name} changed it",
                file.display()
            );
            assert_eq!(first.metadata.generation, Some(1), "{name}");
            applied += 1;
        }
    }
    assert!(applied >= 5, "applied only {applied} objects");
}

/// Each fixture in tests/fixtures/invalid names, in its first line
/// (`# expect: ...`), the message the API server must answer with.
#[tokio::test]
async fn invalid_objects_are_rejected_with_a_message_naming_the_problem() {
    let namespace = TestNamespace::new("invalid").await;
    let files = yaml_files("tests/fixtures/invalid");
    assert!(
        files.len() >= 6,
        "expected at least six invalid fixtures, found {}",
        files.len()
    );
    let mut failures = Vec::new();
    for file in &files {
        let text = std::fs::read_to_string(file).expect("a fixture");
        let expected = text
            .lines()
            .next()
            .and_then(|line| line.strip_prefix("# expect: "))
            .unwrap_or_else(|| {
                panic!("{}: first line must be '# expect: MESSAGE'", file.display())
            });
        let document = documents(file).remove(0);
        let (api, resource) = api_for(&namespace.client, &namespace.name, &document).await;
        let object: DynamicObject = serde_json::from_value(document).expect("an object");
        match api.create(&PostParams::default(), &object).await {
            Ok(_) => failures.push(format!(
                "{}: {} was accepted",
                file.display(),
                resource.kind
            )),
            Err(kube::Error::Api(status)) if status.message.contains(expected) => {}
            Err(other) => failures.push(format!(
                "{}: expected a rejection containing {expected:?}, got: {other}",
                file.display()
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

fn stdout_of(args: &[&str]) -> String {
    let output = kubectl(args);
    assert!(
        output.status.success(),
        "kubectl {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

#[tokio::test]
async fn kubectl_get_shows_the_columns_a_person_scans_for() {
    let namespace = TestNamespace::new("columns").await;
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/privileged-agent.yaml");
    let path = path.to_str().expect("a UTF-8 path");
    stdout_of(&["apply", "--server-side", "-n", &namespace.name, "-f", path]);

    for args in [
        ["get", "secex", "-A"],
        ["get", "exceptions", "-A"],
        ["get", "security", "-A"],
    ] {
        let output = stdout_of(&args);
        // A category lists one table per kind, separated by blank lines.
        let table = output
            .split("\n\n")
            .find(|table| table.contains("log-agent-privileged"))
            .unwrap_or_else(|| panic!("kubectl {args:?} does not list the exception:\n{output}"));
        let header = table.lines().next().unwrap_or_default();
        for column in [
            "NAMESPACE",
            "NAME",
            "PHASE",
            "RISK",
            "CONTROLS",
            "EXPIRES",
            "AGE",
        ] {
            assert!(
                header.contains(column),
                "kubectl {args:?} lacks column {column}:\n{table}"
            );
        }
        let row = table
            .lines()
            .find(|line| line.contains(&namespace.name) && line.contains("log-agent-privileged"))
            .unwrap_or_else(|| panic!("kubectl {args:?} does not list the exception:\n{table}"));
        // The API server prints the first match of a printer column's JSONPath,
        // so the column shows the first control id.
        for cell in ["High", "privileged", "2027-06-30T00:00:00Z"] {
            assert!(
                row.contains(cell),
                "kubectl {args:?} row lacks {cell:?}: {row}"
            );
        }
    }

    let wide = stdout_of(&["get", "secex", "-n", &namespace.name, "-o", "wide"]);
    for column in ["OWNER", "TYPE", "READY"] {
        assert!(
            wide.lines().next().unwrap_or_default().contains(column),
            "-o wide lacks {column}:\n{wide}"
        );
    }
    assert!(wide.contains("platform-team"), "{wide}");

    // The category lists the compensating controls too.
    let all = stdout_of(&["get", "exceptions", "-n", &namespace.name]);
    assert!(
        all.contains("compensatingcontrol.exceptions.dev/log-agent-isolation"),
        "{all}"
    );
    let controls = stdout_of(&["get", "compctl", "-n", &namespace.name]);
    assert!(
        controls
            .lines()
            .next()
            .unwrap_or_default()
            .contains("CATEGORY"),
        "{controls}"
    );
    assert!(controls.contains("NetworkIsolation"), "{controls}");
}

#[tokio::test]
async fn kubectl_explain_teaches_the_fields() {
    support::control_plane();
    for (path, taught) in [
        (
            "securityexception.spec.controls",
            "A workload's violation is covered",
        ),
        (
            "securityexception.spec.controls.values",
            "Narrows the control to these values only",
        ),
        ("securityexception.spec.targets", "an empty target means"),
        ("securityexception.spec.expiresAt", "RFC 3339"),
        ("securityexception.status.phase", "Pending"),
        (
            "compensatingcontrol.spec.evidence",
            "Live objects in this namespace",
        ),
    ] {
        // The API server publishes a new CRD's OpenAPI a moment after it is Established.
        let found = eventually(Duration::from_secs(30), || async {
            let output = kubectl(&["explain", path]);
            // kubectl wraps the docs; compare with whitespace collapsed.
            let text = String::from_utf8_lossy(&output.stdout)
                .split_whitespace()
                .collect::<Vec<_>>()
                .join(" ");
            text.contains(taught).then_some(text)
        })
        .await;
        assert!(
            found.is_some(),
            "kubectl explain {path} does not say {taught:?}"
        );
    }
}
