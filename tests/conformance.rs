//! Conformance with the upstream Pod Security Standards fixtures.
//!
//! Runs every fixture of `../shared/conformance/pod-security-admission/`
//! (Pod manifests from the Kubernetes `pod-security-admission` project,
//! standard version v1.37):
//!
//! - `LEVEL/pass/*.yaml` must give no violation at `LEVEL`;
//! - `LEVEL/fail/*.yaml` must give at least one violation at `LEVEL` whose
//!   control id, lower-cased, is the file name without its trailing digits and
//!   `.yaml` (`hostprobesandhostlifecycle3.yaml` → `hostProbesAndHostLifecycle`).
//!
//! Every mismatch is collected and reported at once, with the score.
#![allow(clippy::unwrap_used, clippy::expect_used)] // a failed test should panic

use std::path::{Path, PathBuf};

use exception_operator::policy::controls::{Extras, Level, Violation, evaluate};
use k8s_openapi::api::core::v1::Pod;

/// Where the fixtures live, relative to this crate.
fn fixtures_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/conformance/pod-security-admission")
}

/// The YAML files of one directory, sorted by name.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let entries =
        std::fs::read_dir(dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "yaml"))
        .collect();
    files.sort();
    files
}

/// The check a fail fixture exercises: its file name, lower-cased upstream,
/// without trailing digits and `.yaml`.
fn expected_check(path: &Path) -> String {
    let stem = path.file_stem().unwrap().to_string_lossy();
    stem.trim_end_matches(|c: char| c.is_ascii_digit())
        .to_string()
}

fn evaluate_fixture(path: &Path, level: Level) -> Result<Vec<Violation>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("cannot read: {e}"))?;
    let pod: Pod =
        serde_saphyr::from_str(&text).map_err(|e| format!("cannot parse as a Pod: {e}"))?;
    let spec = pod.spec.as_ref().ok_or("the Pod has no spec")?;
    Ok(evaluate(
        &pod.metadata,
        spec,
        level,
        &Extras::default(),
        "spec",
        "metadata",
    ))
}

fn describe(violations: &[Violation]) -> String {
    if violations.is_empty() {
        return "none".to_string();
    }
    violations
        .iter()
        .map(|v| format!("{} {}={}", v.control, v.field, v.value))
        .collect::<Vec<_>>()
        .join("; ")
}

#[test]
fn upstream_fixtures_agree() {
    let root = fixtures_dir();
    let mut total = 0usize;
    let mut mismatches = Vec::new();

    for level in [Level::Baseline, Level::Restricted] {
        for outcome in ["pass", "fail"] {
            let dir = root.join(level.to_string()).join(outcome);
            for path in yaml_files(&dir) {
                total += 1;
                let name = format!(
                    "{level}/{outcome}/{}",
                    path.file_name().unwrap().to_string_lossy()
                );
                let violations = match evaluate_fixture(&path, level) {
                    Ok(violations) => violations,
                    Err(e) => {
                        mismatches.push(format!("{name}: {e}"));
                        continue;
                    }
                };
                if outcome == "pass" {
                    if !violations.is_empty() {
                        mismatches.push(format!(
                            "{name}: expected no violation, got {}",
                            describe(&violations)
                        ));
                    }
                } else {
                    let check = expected_check(&path);
                    if !violations.iter().any(|v| v.control.to_lowercase() == check) {
                        mismatches.push(format!(
                            "{name}: expected a violation of {check}, got {}",
                            describe(&violations)
                        ));
                    }
                }
            }
        }
    }

    let agree = total - mismatches.len();
    let score = format!("{agree}/{total} fixtures agree");
    println!("Pod Security Standards conformance: {score}");
    assert!(
        total > 100,
        "only {total} fixtures found under {}: is ../shared present?",
        root.display()
    );
    assert!(
        mismatches.is_empty(),
        "{score}; {} mismatches:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}
