//! Test support for cluster tests: one real control plane per test binary
//! (or the one named by `EXOP_TEST_KUBECONFIG`), the operator's CRDs installed
//! and Established, one namespace per test, and kubectl at the built version.
#![allow(dead_code)] // each test binary uses a different part of the support

pub mod operator;

use std::{
    path::{Path, PathBuf},
    process::Command,
    sync::OnceLock,
    time::Duration,
};

use k8s_openapi::{
    api::core::v1::Namespace,
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
};
use kube::{
    Api, Client, Config, ResourceExt,
    api::{Patch, PatchParams, PostParams},
    config::{KubeConfigOptions, Kubeconfig},
};

/// The control plane this test binary talks to.
pub struct ControlPlane {
    /// Admin kubeconfig (client certificate in `system:masters`).
    pub kubeconfig: PathBuf,
    /// Directory holding kube-apiserver, etcd and kubectl.
    pub bin_dir: PathBuf,
}

/// The control plane, or why it could not be started: a failed start is
/// remembered, so the other tests fail with the same message instead of
/// starting more servers.
static CONTROL_PLANE: OnceLock<Result<ControlPlane, String>> = OnceLock::new();

fn repo_root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

fn run_checked(command: &mut Command) -> String {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("could not run {command:?}: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed ({}):\n{}\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Starts (once per test binary) or reuses the control plane, with the CRDs
/// installed and Established.
pub fn control_plane() -> &'static ControlPlane {
    once(&CONTROL_PLANE, start_control_plane)
}

/// Initialises `cell` once with `init`. A panic in `init` is remembered, so
/// every test fails with the first message instead of trying again.
pub fn once<T>(cell: &'static OnceLock<Result<T, String>>, init: impl FnOnce() -> T) -> &'static T {
    cell.get_or_init(|| {
        std::panic::catch_unwind(std::panic::AssertUnwindSafe(init)).map_err(|panic| {
            panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default()
        })
    })
    .as_ref()
    .unwrap_or_else(|message| panic!("set-up failed in an earlier test: {message}"))
}

fn start_control_plane() -> ControlPlane {
    {
        let controlplane = repo_root().join("tests/controlplane");
        let bin_dir =
            PathBuf::from(run_checked(&mut Command::new(controlplane.join("build"))).trim());
        let kubeconfig = match std::env::var_os("EXOP_TEST_KUBECONFIG") {
            Some(path) => PathBuf::from(path),
            None => {
                let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
                    .join(format!("controlplane-{}", std::process::id()));
                run_checked(
                    Command::new(controlplane.join("up"))
                        .arg(&dir)
                        .arg("--owner-pid")
                        .arg(std::process::id().to_string()),
                );
                dir.join("kubeconfig")
            }
        };
        let control_plane = ControlPlane {
            kubeconfig,
            bin_dir,
        };
        // The caller may be inside a single-threaded test runtime: install the
        // CRDs from a runtime of their own on a separate thread.
        let kubeconfig = control_plane.kubeconfig.clone();
        let installed = std::thread::spawn(move || {
            tokio::runtime::Runtime::new()
                .expect("a tokio runtime")
                .block_on(install_crds(&kubeconfig))
        })
        .join();
        if let Err(panic) = installed {
            std::panic::resume_unwind(panic);
        }
        control_plane
    }
}

/// A client for the admin user of the control plane.
pub async fn client() -> Client {
    client_for(&control_plane().kubeconfig).await
}

async fn client_for(kubeconfig: &Path) -> Client {
    let kubeconfig = Kubeconfig::read_from(kubeconfig).expect("a readable kubeconfig");
    let config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a valid kubeconfig");
    Client::try_from(config).expect("a client")
}

async fn install_crds(kubeconfig: &Path) {
    let client = client_for(kubeconfig).await;
    let crds: Api<CustomResourceDefinition> = Api::all(client);
    let params = PatchParams::apply("exception-operator-tests").force();
    for crd in exception_operator::api::crds() {
        let name = crd.name_any();
        crds.patch(&name, &params, &Patch::Apply(&crd))
            .await
            .unwrap_or_else(|e| panic!("installing CRD {name}: {e}"));
    }
    for crd in exception_operator::api::crds() {
        let name = crd.name_any();
        eventually(Duration::from_secs(30), || async {
            let crd = crds.get(&name).await.ok()?;
            let established = crd
                .status?
                .conditions?
                .iter()
                .any(|c| c.type_ == "Established" && c.status == "True");
            established.then_some(())
        })
        .await
        .unwrap_or_else(|| panic!("CRD {name} was not Established within 30s"));
    }
}

/// Polls `probe` until it returns `Some`, or gives up after `timeout`.
pub async fn eventually<T, F, Fut>(timeout: Duration, mut probe: F) -> Option<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return Some(value);
        }
        if tokio::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// A namespace of a test's own, so tests never see each other's objects.
pub struct TestNamespace {
    /// The namespace name.
    pub name: String,
    /// An admin client.
    pub client: Client,
}

impl TestNamespace {
    /// Creates a fresh namespace whose name starts with `prefix`.
    pub async fn new(prefix: &str) -> Self {
        let client = client().await;
        let suffix = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .expect("a clock after 1970")
            .subsec_nanos();
        let name = format!("{prefix}-{suffix:x}");
        let namespace: Namespace = serde_json::from_value(serde_json::json!({
            "metadata": {"name": name, "labels": {"exceptions.dev/test": "true"}}
        }))
        .expect("a namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &namespace)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        Self { name, client }
    }
}

/// Runs the built kubectl as the admin user of the control plane.
pub fn kubectl(args: &[&str]) -> std::process::Output {
    let control_plane = control_plane();
    Command::new(control_plane.bin_dir.join("kubectl"))
        .arg("--kubeconfig")
        .arg(&control_plane.kubeconfig)
        .args(args)
        .output()
        .expect("kubectl runs")
}
