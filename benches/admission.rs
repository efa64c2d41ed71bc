//! What one Pod admission costs, and what the exception index costs to hold.
//!
//! For indexes of 0, 1k, 10k and 100k exceptions spread over 1,000
//! namespaces (each with 1-3 controls and realistic targets), measures the
//! whole decision for one ~3 KB Pod AdmissionReview: parse the review, find
//! the pod template, evaluate the `restricted` controls, decide every
//! violation against the index, build the response and serialise it. The
//! stages are also measured one by one at 100k, and median / p99 latencies
//! are printed to compare with the field numbers (12 µs median, 17 µs p99 for
//! a bare parse-look-up-answer in Rust).
//!
//! The index's memory is estimated from the growth of the process's resident
//! set (`VmRSS` in `/proc/self/status`) while the 100k index is built, before
//! anything else is allocated: `unsafe` is forbidden in this package, which
//! rules out a counting global allocator. The figure includes allocator
//! overhead and fragmentation, which is what the operator's pod pays for.
//!
//! Run with `cargo bench --bench admission`.

#![allow(
    clippy::expect_used,
    reason = "benchmark fixtures are built from constants: a failure is a bug to see at once"
)]

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use exception_operator::api::SecurityExceptionSpec;
use exception_operator::policy::controls::{self, Extras, Level, Violation};
use exception_operator::policy::matching::{ExceptionIndex, HonouredException};
use exception_operator::policy::workload::{self, Workload};
use k8s_openapi::jiff::Timestamp;
use kube::core::DynamicObject;
use kube::core::admission::{AdmissionRequest, AdmissionResponse, AdmissionReview};
use serde_json::{Value, json};

/// Namespaces the exceptions are spread over.
const NAMESPACES: usize = 1_000;
/// Index sizes measured.
const SIZES: [usize; 4] = [0, 1_000, 10_000, 100_000];
/// The namespace of the admitted Pod.
const POD_NAMESPACE: usize = 42;

/// The controls exceptions are drawn from, with the values they narrow to.
const CONTROLS: &[(&str, &[&str])] = &[
    ("capabilities_baseline", &["NET_ADMIN"]),
    ("capabilities_restricted", &["ALL", "NET_ADMIN"]),
    ("hostPorts", &["8080"]),
    ("hostPathVolumes", &["/var/log"]),
    ("runAsNonRoot", &[]),
    ("allowPrivilegeEscalation", &[]),
    ("seccompProfile_restricted", &[]),
    ("privileged", &[]),
    ("hostNamespaces", &["hostNetwork"]),
    ("sysctls", &["net.core.somaxconn"]),
];

fn namespace(n: usize) -> String {
    format!("team-{n:04}")
}

/// A small deterministic mixer, so every run builds the same index.
fn mix(mut x: u64) -> u64 {
    x ^= x >> 33;
    x = x.wrapping_mul(0xff51_afd7_ed55_8ccd);
    x ^= x >> 33;
    x = x.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    x ^ (x >> 33)
}

/// Exception `i`: in namespace `i % 1000`, for application `i / 1000`, with
/// one to three controls and one of a few realistic target shapes.
fn exception_spec(i: usize) -> (String, String, SecurityExceptionSpec) {
    let ns = namespace(i % NAMESPACES);
    let app = i / NAMESPACES;
    let h = mix(i as u64);
    let first = (h % CONTROLS.len() as u64) as usize;
    let count = 1 + (h >> 8) as usize % 3;
    let controls: Vec<Value> = (0..count)
        .map(|k| {
            let (id, values) = CONTROLS[(first + k * 3) % CONTROLS.len()];
            if (h >> (16 + k)) & 1 == 0 || values.is_empty() {
                json!({"id": id})
            } else {
                json!({"id": id, "values": values})
            }
        })
        .collect();
    let targets = match (h >> 24) % 4 {
        0 => json!({"kinds": ["Deployment"], "names": [format!("app-{app}")]}),
        1 => json!({
            "kinds": ["Deployment"],
            "names": [format!("app-{app}")],
            "containers": ["main", "sidecar-*"],
        }),
        2 => json!({
            "selector": {"matchLabels": {"app": format!("app-{app}")}},
            "images": [format!("registry.example.com/{ns}/app-{app}:*")],
        }),
        _ => json!({
            "names": [format!("app-{app}"), format!("app-{app}-canary")],
            "selector": {"matchExpressions": [{"key": "tier", "operator": "In", "values": ["web", "api"]}]},
            "containers": ["main"],
            "images": [format!("registry.example.com/{ns}/*")],
        }),
    };
    let spec = serde_json::from_value(json!({
        "controls": controls,
        "targets": targets,
        "justification": "vendor agent needs raw sockets until the 2027 rewrite",
        "risk": {"rating": "High"},
        "compensatingControls": ["netpol"],
        "expiresAt": "2030-01-01T00:00:00Z",
    }))
    .expect("a valid spec");
    (ns, format!("app-{app}-exception"), spec)
}

fn build_index(size: usize) -> ExceptionIndex {
    let mut index = ExceptionIndex::new();
    for i in 0..size {
        let (ns, name, spec) = exception_spec(i);
        index.upsert(HonouredException::new(ns, name, &spec).expect("compiles"));
    }
    index
}

/// The AdmissionReview of a Pod created by Deployment `app-0`'s ReplicaSet:
/// two containers and an init container, none hardened, one adding
/// `NET_ADMIN` and binding host port 8080.
fn pod_review() -> Vec<u8> {
    let ns = namespace(POD_NAMESPACE);
    let image = format!("registry.example.com/{ns}/app-0:1.14.2");
    let env: Vec<Value> = (0..6)
        .map(|i| json!({"name": format!("SETTING_{i}"), "value": format!("value-{i}")}))
        .collect();
    let review = json!({
        "apiVersion": "admission.k8s.io/v1",
        "kind": "AdmissionReview",
        "request": {
            "uid": "705ab4f5-6393-11e8-b7cc-42010a800002",
            "kind": {"group": "", "version": "v1", "kind": "Pod"},
            "resource": {"group": "", "version": "v1", "resource": "pods"},
            "requestKind": {"group": "", "version": "v1", "kind": "Pod"},
            "requestResource": {"group": "", "version": "v1", "resource": "pods"},
            "namespace": ns,
            "operation": "CREATE",
            "userInfo": {
                "username": "system:serviceaccount:kube-system:replicaset-controller",
                "uid": "b2a3c1d0-0000-4000-8000-000000000001",
                "groups": ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
            },
            "object": {
                "apiVersion": "v1",
                "kind": "Pod",
                "metadata": {
                    "generateName": "app-0-7d9f8b6c4-",
                    "namespace": ns,
                    "labels": {"app": "app-0", "tier": "web", "pod-template-hash": "7d9f8b6c4"},
                    "annotations": {"prometheus.io/scrape": "true", "prometheus.io/port": "9090"},
                    "ownerReferences": [{
                        "apiVersion": "apps/v1", "kind": "ReplicaSet", "name": "app-0-7d9f8b6c4",
                        "uid": "0d2f3c4b-5a69-4788-9e1f-2a3b4c5d6e7f", "controller": true, "blockOwnerDeletion": true
                    }]
                },
                "spec": {
                    "serviceAccountName": "app-0",
                    "initContainers": [{
                        "name": "migrate", "image": image, "command": ["/app", "migrate"],
                        "resources": {"limits": {"cpu": "200m", "memory": "128Mi"}}
                    }],
                    "containers": [
                        {
                            "name": "main", "image": image,
                            "args": ["--listen=:8080", "--metrics=:9090"],
                            "ports": [
                                {"name": "http", "containerPort": 8080, "hostPort": 8080, "protocol": "TCP"},
                                {"name": "metrics", "containerPort": 9090, "protocol": "TCP"}
                            ],
                            "env": env,
                            "resources": {"requests": {"cpu": "250m", "memory": "256Mi"}, "limits": {"cpu": "1", "memory": "512Mi"}},
                            "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 5},
                            "livenessProbe": {"httpGet": {"path": "/live", "port": 8080}, "periodSeconds": 10},
                            "volumeMounts": [{"name": "config", "mountPath": "/etc/app"}, {"name": "tmp", "mountPath": "/tmp"}],
                            "securityContext": {"capabilities": {"add": ["NET_ADMIN"]}}
                        },
                        {
                            "name": "sidecar-logs", "image": "registry.example.com/platform/fluent-bit:3.1.4",
                            "args": ["-c", "/fluent-bit/etc/fluent-bit.conf"],
                            "resources": {"limits": {"cpu": "100m", "memory": "64Mi"}},
                            "volumeMounts": [{"name": "tmp", "mountPath": "/var/log/app", "readOnly": true}]
                        }
                    ],
                    "volumes": [
                        {"name": "config", "configMap": {"name": "app-0-config"}},
                        {"name": "tmp", "emptyDir": {}}
                    ],
                    "tolerations": [{"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute", "tolerationSeconds": 300}],
                    "nodeSelector": {"kubernetes.io/os": "linux"},
                    "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst",
                    "restartPolicy": "Always",
                    "schedulerName": "default-scheduler"
                }
            },
            "oldObject": null,
            "dryRun": false,
            "options": {"apiVersion": "meta.k8s.io/v1", "kind": "CreateOptions"}
        }
    });
    serde_json::to_vec(&review).expect("serialises")
}

/// How the workload is obtained from the decoded object.
#[derive(Clone, Copy)]
enum Extract {
    /// `pod_templates_of(&DynamicObject)`, reading the decoded object in place.
    Dynamic,
    /// `pod_templates(&serde_json::to_value(object))`, re-encoding it first.
    Value,
}

fn workload_of(object: &DynamicObject, how: Extract) -> Workload {
    match how {
        Extract::Dynamic => workload::pod_templates_of(object).expect("a Pod"),
        Extract::Value => {
            let value = serde_json::to_value(object).expect("encodes");
            workload::pod_templates(&value).expect("a Pod")
        }
    }
}

fn parse(body: &[u8]) -> AdmissionRequest<DynamicObject> {
    let review: AdmissionReview<DynamicObject> = serde_json::from_slice(body).expect("a review");
    review.try_into().expect("a request")
}

fn evaluate(w: &Workload) -> Vec<Violation> {
    controls::evaluate(
        &w.template_metadata,
        &w.pod_spec,
        Level::Restricted,
        &Extras::default(),
        w.field_prefix,
        w.metadata_prefix,
    )
}

/// The response: allowed when every violation is covered, otherwise denied
/// with every uncovered violation named.
fn respond(
    request: &AdmissionRequest<DynamicObject>,
    index: &ExceptionIndex,
    namespace: &str,
    w: &Workload,
    violations: &[Violation],
    now: Timestamp,
) -> Vec<u8> {
    let decided = index.decide(namespace, w, violations, now);
    let uncovered: Vec<String> = decided
        .iter()
        .filter(|c| c.by.is_none())
        .map(|c| {
            format!(
                "{} at {} ({})",
                c.violation.control, c.violation.field, c.violation.value
            )
        })
        .collect();
    let response = AdmissionResponse::from(request);
    let response = if uncovered.is_empty() {
        response
    } else {
        response.deny(format!(
            "violates {} control(s) with no exception covering them: {}. Request a SecurityException in namespace {namespace}.",
            uncovered.len(),
            uncovered.join("; ")
        ))
    };
    serde_json::to_vec(&response.into_review()).expect("serialises")
}

/// The whole decision, from request bytes to response bytes.
fn admit(body: &[u8], index: &ExceptionIndex, how: Extract, now: Timestamp) -> Vec<u8> {
    let request = parse(body);
    let object = request.object.as_ref().expect("CREATE has an object");
    let w = workload_of(object, how);
    let violations = evaluate(&w);
    let namespace = request.namespace.as_deref().unwrap_or_default();
    respond(&request, index, namespace, &w, &violations, now)
}

/// Resident set size in bytes, from `/proc/self/status`.
fn rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Median and 99th percentile of `runs` timed calls.
fn percentiles(runs: usize, mut f: impl FnMut()) -> (Duration, Duration) {
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed()
        })
        .collect();
    times.sort();
    (times[runs / 2], times[runs * 99 / 100])
}

fn bench(c: &mut Criterion) {
    let now: Timestamp = "2027-06-01T00:00:00Z".parse().expect("a timestamp");
    let body = pod_review();

    // Memory first, while the heap holds nothing else of note.
    let before = rss_bytes();
    let start = Instant::now();
    let largest = build_index(100_000);
    let build_time = start.elapsed();
    let after = rss_bytes();
    match (before, after) {
        (Some(before), Some(after)) => println!(
            "index memory (VmRSS growth while building): {:.1} MiB for {} exceptions, {} bytes per exception; built in {:.2?}",
            after.saturating_sub(before) as f64 / (1024.0 * 1024.0),
            largest.len(),
            after.saturating_sub(before) / largest.len() as u64,
            build_time,
        ),
        _ => println!("index memory: /proc/self/status unavailable"),
    }

    {
        let request = parse(&body);
        let w = workload_of(request.object.as_ref().expect("object"), Extract::Dynamic);
        let violations = evaluate(&w);
        println!(
            "review: {} bytes; {} violations at restricted",
            body.len(),
            violations.len()
        );
    }

    let mut indexes: Vec<(usize, ExceptionIndex)> = SIZES[..3]
        .iter()
        .map(|&size| (size, build_index(size)))
        .collect();
    indexes.push((100_000, largest));

    let mut group = c.benchmark_group("admission");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    for (size, index) in &indexes {
        let request = parse(&body);
        let w = workload_of(request.object.as_ref().expect("object"), Extract::Dynamic);
        let violations = evaluate(&w);
        let covered = index
            .decide(&namespace(POD_NAMESPACE), &w, &violations, now)
            .iter()
            .filter(|c| c.by.is_some())
            .count();
        let (p50, p99) = percentiles(20_000, || {
            black_box(admit(black_box(&body), index, Extract::Dynamic, now));
        });
        println!(
            "{size} exceptions: {covered}/{} violations covered; whole decision p50 {p50:.2?}, p99 {p99:.2?}",
            violations.len()
        );
        for (name, how) in [("dynamic", Extract::Dynamic), ("to_value", Extract::Value)] {
            group.bench_with_input(BenchmarkId::new(name, size), &(), |b, ()| {
                b.iter(|| admit(black_box(&body), index, how, now))
            });
        }
    }
    group.finish();

    // The stages, one by one, at the largest index.
    let index = &indexes[3].1;
    let request = parse(&body);
    let object = request.object.as_ref().expect("object");
    let w = workload_of(object, Extract::Dynamic);
    let violations = evaluate(&w);
    let namespace = namespace(POD_NAMESPACE);
    let mut group = c.benchmark_group("stages-100k");
    group
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(2));
    group.bench_function("parse", |b| b.iter(|| parse(black_box(&body))));
    group.bench_function("pod_templates_of", |b| {
        b.iter(|| workload_of(black_box(object), Extract::Dynamic))
    });
    group.bench_function("to_value+pod_templates", |b| {
        b.iter(|| workload_of(black_box(object), Extract::Value))
    });
    group.bench_function("evaluate", |b| b.iter(|| evaluate(black_box(&w))));
    group.bench_function("decide", |b| {
        b.iter(|| {
            index
                .decide(&namespace, black_box(&w), &violations, now)
                .len()
        })
    });
    group.bench_function("decide+respond", |b| {
        b.iter(|| respond(&request, index, &namespace, black_box(&w), &violations, now))
    });
    group.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
