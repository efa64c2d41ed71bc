//! `exception-operator check` as CI runs it: the binary on fixture folders
//! (`tests/fixtures/check/`), its exit status and its output.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The instant every check decides at, so that the fixtures' expiry dates
/// do not age.
const AT: &str = "2027-01-01T00:00:00Z";

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/check")
        .join(name)
}

fn operator(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_exception-operator"))
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("could not run exception-operator {args:?}: {e}"))
}

fn check(args: &[&str]) -> (i32, String, String) {
    let mut all = vec!["check", "--at", AT];
    all.extend_from_slice(args);
    let output = operator(&all);
    (
        output.status.code().expect("exited with a status"),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A scratch folder, removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!(
            "exop-check-it-{}-{name}-{:?}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_nanos()
        ));
        std::fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

#[test]
fn a_compliant_folder_exits_0() {
    let (code, stdout, stderr) = check(&[path(&fixture("compliant"))]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("2 workload(s), 0 violation(s)"), "{stdout}");
    assert!(stdout.trim_end().ends_with("COMPLIANT"), "{stdout}");
}

#[test]
fn a_privileged_deployment_exits_1_naming_the_field() {
    let (code, stdout, stderr) = check(&[path(&fixture("privileged"))]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find(|l| l.contains("shop/Deployment/agent"))
        .unwrap_or_else(|| panic!("no line for the agent:\n{stdout}"));
    for cell in [
        "agent.yaml",
        "privileged",
        "spec.template.spec.containers[0].securityContext.privileged",
        "true",
        "UNCOVERED",
    ] {
        assert!(line.contains(cell), "{cell} missing in {line}");
    }
    assert!(stdout.contains("NOT COMPLIANT"), "{stdout}");

    // The same as JSON.
    let (code, stdout, _) = check(&["--output", "json", path(&fixture("privileged"))]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(report["compliant"], false);
    assert_eq!(
        report["workloads"][0]["violations"][0]["field"],
        "spec.template.spec.containers[0].securityContext.privileged"
    );
    assert_eq!(report["workloads"][0]["allowed"], false);
}

#[test]
fn a_signed_active_exception_makes_it_compliant() {
    let scratch = Scratch::new("covered");
    let dir = scratch.0.join("manifests");
    std::fs::create_dir_all(&dir).unwrap();
    for file in ["agent.yaml", "exception.yaml"] {
        std::fs::copy(fixture("covered").join(file), dir.join(file)).unwrap();
    }

    // Carol's key, as she would make it.
    let key = scratch.0.join("carol");
    let keygen = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "carol@example.com",
            "-f",
        ])
        .arg(&key)
        .output()
        .expect("ssh-keygen must be on PATH (apt-get install openssh-client)");
    assert!(keygen.status.success(), "{keygen:?}");
    let public = std::fs::read_to_string(key.with_extension("pub")).unwrap();
    let config = scratch.0.join("config.yaml");
    std::fs::write(
        &config,
        format!(
            "approval:\n  signers:\n    - name: carol@example.com\n      key: \"{}\"\n      groups: [security-approvers]\n",
            public.trim()
        ),
    )
    .unwrap();

    // Unsigned: the exception is Pending, the agent is not covered.
    let (code, stdout, stderr) = check(&["--config", path(&config), path(&dir)]);
    assert_eq!(code, 1, "{stdout}\n{stderr}");
    assert!(stdout.contains("shop/agent-privileged  no"), "{stdout}");

    // Carol signs it.
    let signed = operator(&[
        "sign",
        path(&dir.join("exception.yaml")),
        "--key",
        path(&key),
        "--signer",
        "carol@example.com",
    ]);
    assert!(signed.status.success(), "{signed:?}");

    let (code, stdout, stderr) = check(&["--config", path(&config), path(&dir)]);
    assert_eq!(code, 0, "{stdout}\n{stderr}");
    assert!(stdout.contains("COVERED BY agent-privileged"), "{stdout}");
    assert!(
        stdout.contains(
            "shop/agent-privileged  yes       Active: approved by carol@example.com (signature)"
        ),
        "{stdout}"
    );

    // Without the configuration that lists carol, nothing counts.
    let (code, stdout, _) = check(&[path(&dir)]);
    assert_eq!(code, 1, "{stdout}");

    // Once it has expired, the agent is denied again.
    let output = operator(&[
        "check",
        "--at",
        "2027-03-01T00:00:00Z",
        "--config",
        path(&config),
        "--output",
        "json",
        path(&dir),
    ]);
    assert_eq!(output.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(report["exceptions"][0]["honoured"], false);
    assert_eq!(report["exceptions"][0]["phase"], "Expired");
}

#[test]
fn invalid_yaml_exits_2() {
    let (code, stdout, stderr) = check(&[path(&fixture("invalid"))]);
    assert_eq!(code, 2, "{stdout}\n{stderr}");
    assert!(stderr.contains("broken.yaml is not valid YAML"), "{stderr}");

    let (code, _, stderr) = check(&[path(&fixture("absent"))]);
    assert_eq!(code, 2);
    assert!(stderr.contains("could not read"), "{stderr}");
}

#[test]
fn level_restricted_is_stricter() {
    let (code, stdout, _) = check(&["--level", "restricted", path(&fixture("compliant"))]);
    assert_eq!(code, 1, "{stdout}");
    assert!(stdout.contains("runAsNonRoot"), "{stdout}");
    assert!(stdout.contains("level restricted"), "{stdout}");
}
