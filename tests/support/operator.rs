//! Running the real operator binary against the test control plane, and
//! acting as personas through impersonation.

use std::{
    io::{BufRead, BufReader},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    sync::Mutex,
    time::{Duration, Instant},
};

use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding};
use kube::{
    Api, Client, Config,
    api::{Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};
use serde_json::json;

use super::control_plane;

/// The operator binary under test.
pub fn binary() -> &'static str {
    env!("CARGO_BIN_EXE_exception-operator")
}

/// A running `exception-operator run --local-webhook`, stopped on drop and,
/// through a watchdog, when the test binary exits.
pub struct Operator {
    child: Mutex<Option<Child>>,
    /// Everything the operator logged, for failure messages.
    pub log: PathBuf,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

impl Operator {
    /// Starts the operator with `config` (YAML) and waits for its `ready` line.
    pub fn start(config: &str) -> Self {
        let control_plane = control_plane();
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!(
            "operator-{}-{}",
            std::process::id(),
            free_port()
        ));
        std::fs::create_dir_all(&dir).expect("a scratch directory");
        let config_path = dir.join("config.yaml");
        std::fs::write(&config_path, config).expect("the config file");
        let log = dir.join("operator.log");
        let port = free_port();
        // The watchdog ends the operator when the test binary exits, however it exits.
        let script = r#"
            "$1" run --local-webhook "127.0.0.1:$2" --config "$3" --namespace exception-operator 2>>"$4" &
            operator=$!
            trap 'kill $operator 2>/dev/null; wait $operator' EXIT TERM INT
            while kill -0 "$5" 2>/dev/null && kill -0 $operator 2>/dev/null; do sleep 0.5; done
        "#;
        let mut child = Command::new("bash")
            .arg("-c")
            .arg(script)
            .arg("operator-watchdog")
            .arg(binary())
            .arg(port.to_string())
            .arg(&config_path)
            .arg(&log)
            .arg(std::process::id().to_string())
            .env("KUBECONFIG", &control_plane.kubeconfig)
            .env("RUST_LOG", "info,exception_operator=debug")
            .stdout(Stdio::piped())
            .stdin(Stdio::null())
            .spawn()
            .expect("the operator starts");
        let stdout = child.stdout.take().expect("the operator's stdout");
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("ready") {
                    let _ = ready_tx.send(());
                }
            }
        });
        if ready_rx.recv_timeout(Duration::from_secs(60)).is_err() {
            // Through the watchdog, whose trap stops the operator too.
            Self {
                child: Mutex::new(Some(child)),
                log: log.clone(),
            }
            .stop();
            panic!(
                "the operator did not print 'ready' within 60s; its log:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        Self {
            child: Mutex::new(Some(child)),
            log,
        }
    }

    /// Stops the operator gracefully (SIGTERM to the watchdog, which stops it).
    pub fn stop(&self) {
        if let Some(mut child) = self.child.lock().expect("the child").take() {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
        }
    }

    /// The operator's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

impl Drop for Operator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A client acting as `user` in `groups` (with an optional uid), through
/// the admin's right to impersonate.
pub async fn client_as(user: &str, uid: Option<&str>, groups: &[&str]) -> Client {
    let kubeconfig = Kubeconfig::read_from(&control_plane().kubeconfig).expect("a kubeconfig");
    let mut config = Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .expect("a config");
    config.auth_info.impersonate = Some(user.into());
    config.auth_info.impersonate_uid = uid.map(str::to_string);
    config.auth_info.impersonate_groups = Some(groups.iter().map(|g| g.to_string()).collect());
    Client::try_from(config).expect("a client")
}

/// Runs the operator CLI with the admin kubeconfig; returns (success, stdout, stderr).
pub fn cli(args: &[&str]) -> (bool, String, String) {
    let output = Command::new(binary())
        .args(args)
        .env("KUBECONFIG", &control_plane().kubeconfig)
        .output()
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// Generates a throwaway ed25519 SSH key pair in `dir` with ssh-keygen;
/// returns (private key path, public key text).
pub fn ssh_key(dir: &Path, name: &str) -> (PathBuf, String) {
    let path = dir.join(name);
    let _ = std::fs::remove_file(&path);
    let _ = std::fs::remove_file(path.with_extension("pub"));
    let status = Command::new("ssh-keygen")
        .args(["-q", "-t", "ed25519", "-N", "", "-C", name, "-f"])
        .arg(&path)
        .status()
        .expect("ssh-keygen runs");
    assert!(status.success(), "ssh-keygen failed");
    let public =
        std::fs::read_to_string(format!("{}.pub", path.display())).expect("the public key");
    (path, public.trim().to_string())
}

/// Everyone authenticated may edit exceptions (and try to write their
/// status): in these tests the webhook, not RBAC, is what says no.
pub fn grant_personas() {
    std::thread::spawn(|| {
        tokio::runtime::Runtime::new().expect("a runtime").block_on(async {
            let client = super::client().await;
            let role: ClusterRole = serde_json::from_value(json!({
                "metadata": {"name": "exceptions-test-editor"},
                "rules": [
                    {"apiGroups": ["exceptions.dev"], "resources": ["securityexceptions", "securityexceptions/status", "compensatingcontrols", "compensatingcontrols/status"], "verbs": ["*"]},
                    {"apiGroups": ["networking.k8s.io"], "resources": ["networkpolicies"], "verbs": ["*"]},
                    {"apiGroups": ["events.k8s.io"], "resources": ["events"], "verbs": ["get", "list", "watch"]}
                ]
            }))
            .expect("a role");
            let binding: ClusterRoleBinding = serde_json::from_value(json!({
                "metadata": {"name": "exceptions-test-editor"},
                "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "exceptions-test-editor"},
                "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": "system:authenticated"}]
            }))
            .expect("a binding");
            let params = PatchParams::apply("exception-operator-tests").force();
            Api::<ClusterRole>::all(client.clone())
                .patch("exceptions-test-editor", &params, &Patch::Apply(&role))
                .await
                .expect("the role applies");
            Api::<ClusterRoleBinding>::all(client)
                .patch("exceptions-test-editor", &params, &Patch::Apply(&binding))
                .await
                .expect("the binding applies");
        })
    })
    .join()
    .expect("granting the personas");
}

/// The configuration of the admission and compliance tests: any rating is
/// approved by one member of `security-approvers`; baseline by default.
pub const SIMPLE_CONFIG: &str = r#"
approval:
  rules:
    - ratings: [Low, Medium, High, Critical]
      approvers: {groups: [security-approvers]}
      quorum: 1
enforcement:
  defaultLevel: baseline
  excludedNamespaces: [kube-system, exception-operator]
"#;

/// One operator with [`SIMPLE_CONFIG`] for the whole test binary (webhooks
/// are cluster-wide), with RBAC for the personas.
pub fn shared() -> &'static Operator {
    static OPERATOR: std::sync::OnceLock<Result<Operator, String>> = std::sync::OnceLock::new();
    super::once(&OPERATOR, || {
        super::control_plane();
        grant_personas();
        Operator::start(SIMPLE_CONFIG)
    })
}

/// Creates `object` (a SecurityException) as alice, has bob of
/// `security-approvers` approve it, waits until it is Active and returns
/// its expiry.
pub async fn approved_exception(
    namespace: &super::TestNamespace,
    object: serde_json::Value,
) -> k8s_openapi::jiff::Timestamp {
    use exception_operator::api::{Phase, SecurityException};
    let alice = client_as("alice@example.com", None, &["developers"]).await;
    let api: Api<SecurityException> = Api::namespaced(alice, &namespace.name);
    let created = api
        .create(
            &Default::default(),
            &serde_json::from_value(object).expect("a SecurityException"),
        )
        .await
        .expect("alice creates the exception");
    let name = created.metadata.name.clone().expect("a name");
    let (ok, _, stderr) = cli(&[
        "approve",
        &name,
        "-n",
        &namespace.name,
        "--as",
        "bob@example.com",
        "--as-group",
        "security-approvers",
    ]);
    assert!(ok, "{stderr}");
    let api: Api<SecurityException> = Api::namespaced(namespace.client.clone(), &namespace.name);
    super::eventually(Duration::from_secs(10), || async {
        let phase = api.get(&name).await.ok()?.status?.phase?;
        (phase == Phase::Active).then_some(())
    })
    .await
    .expect("the exception became Active");
    created.spec.expires_at.0
}
