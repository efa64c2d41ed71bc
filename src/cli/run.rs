//! `exception-operator run`: the controllers and the webhook server in one
//! process, against the cluster in `KUBECONFIG` (or in-cluster config).

use std::{net::SocketAddr, path::PathBuf, process::ExitCode, sync::Arc, time::Duration};

use k8s_openapi::{
    ByteString,
    api::{
        admissionregistration::v1::{
            MutatingWebhook, MutatingWebhookConfiguration, RuleWithOperations, ValidatingWebhook,
            ValidatingWebhookConfiguration, WebhookClientConfig,
        },
        authentication::v1::SelfSubjectReview,
        core::v1::{Namespace, Secret},
    },
    apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition,
    apimachinery::pkg::apis::meta::v1::{LabelSelector, LabelSelectorRequirement},
};
use kube::{
    Api, Client, ResourceExt,
    api::{DeleteParams, Patch, PatchParams, PostParams},
    runtime::wait::{await_condition, conditions},
};
use tracing::info;

use super::Error;
use crate::{
    api::{self, FIELD_MANAGER},
    config::Config,
    controller::{self, ControlBoard},
    metrics::Metrics,
    policy::{approval::SealKey, matching::ExceptionIndex},
    webhook::{
        self, Readiness, WebhookState,
        honoured::{self, Honour},
    },
};

/// Name of both webhook configurations the operator registers.
pub const WEBHOOK_CONFIGURATION: &str = "exception-operator";
/// The Secret (in the operator's namespace) holding the approval seal key.
pub const SEAL_KEY_SECRET: &str = "exception-operator-seal-key";
const SEAL_KEY_FIELD: &str = "key";

/// Arguments of `exception-operator run`.
#[derive(Debug, clap::Args)]
pub(super) struct RunArgs {
    /// The operator's configuration file (approval rules, signers, lifecycle,
    /// enforcement). Without it the documented defaults apply.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,

    /// Development mode: install or update the CRDs, generate a self-signed
    /// CA and serving certificate, serve the webhooks on this loopback
    /// address and register webhook configurations pointing at it.
    #[arg(long, value_name = "ADDRESS")]
    local_webhook: Option<SocketAddr>,

    /// The namespace the operator runs in (it keeps its seal key there).
    #[arg(long, env = "POD_NAMESPACE", default_value = "exception-operator")]
    namespace: String,
}

impl RunArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        let runtime = tokio::runtime::Runtime::new().map_err(Error::Runtime)?;
        runtime.block_on(self.run_async())
    }

    async fn run_async(self) -> Result<ExitCode, Error> {
        let config = Arc::new(match &self.config {
            Some(path) => Config::load(path)?,
            None => Config::default(),
        });
        let client = Client::try_default().await.map_err(Error::Connect)?;
        let Some(address) = self.local_webhook else {
            return Err(Error::Usage(
                "only development mode is available: pass --local-webhook 127.0.0.1:PORT".into(),
            ));
        };

        install_crds(&client).await?;
        ensure_namespace(&client, &self.namespace).await?;
        let seal_key = Arc::new(seal_key(&client, &self.namespace).await?);
        let operator_username = whoami(&client).await?;
        info!(username = %operator_username, "operator identity");

        let metrics = Metrics::shared();
        let control_board = Arc::new(ControlBoard::default());
        let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
        let controllers = tokio::spawn(controller::run(
            client.clone(),
            config.clone(),
            seal_key.clone(),
            metrics.clone(),
            control_board.clone(),
            async move {
                let _ = stop_rx.await;
            },
        ));
        // The webhook decides from a cache of its own: it waits for that cache
        // alone to sync (the controllers' caches are theirs to wait on).
        let controls =
            controller::watched_store::<api::CompensatingControl>(client.clone(), |_| {});
        let namespaces = controller::watched_store::<Namespace>(client.clone(), |_| {});
        info!("waiting for the caches to sync");
        controls
            .wait_until_ready()
            .await
            .map_err(|_| Error::Usage("the CompensatingControl cache never synced".into()))?;
        namespaces
            .wait_until_ready()
            .await
            .map_err(|_| Error::Usage("the Namespace cache never synced".into()))?;
        let exceptions = Arc::new(std::sync::RwLock::new(ExceptionIndex::new()));
        let honour = Honour {
            config: config.clone(),
            seal_key: seal_key.clone(),
            control_board,
            controls: controls.clone(),
        };
        let index_changes = honoured::maintain(client.clone(), honour, exceptions.clone()).await;
        info!("caches synced");
        // Background compliance reads the webhook's own index.
        let compliance = tokio::spawn(controller::compliance::run(
            client.clone(),
            config.clone(),
            exceptions.clone(),
            index_changes,
            namespaces.clone(),
        ));
        let readiness = Readiness::default();
        readiness.set_ready();
        let state_config = config.clone();
        let state = WebhookState {
            config,
            seal_key,
            operator_username: operator_username.into(),
            compensating_controls: controls,
            namespaces,
            exceptions,
            readiness,
            metrics,
        };
        let certificate =
            webhook::tls::self_signed(&[address.ip().to_string(), "localhost".into()])
                .map_err(Error::Certificate)?;
        let ca_bundle = certificate.ca_pem.clone();
        let server = tokio::spawn(async move {
            webhook::serve(address, &certificate, webhook::router(state)).await
        });
        wait_for_listener(address).await?;
        info!(%address, "webhook server listening");
        register_webhooks(
            &client,
            address,
            &ca_bundle,
            &state_config.enforcement.excluded_namespaces,
        )
        .await?;
        println!(
            "exception-operator ready: webhooks at https://{address}, seal key in {}/{SEAL_KEY_SECRET}",
            self.namespace
        );

        shutdown_signal().await;
        info!("shutting down: removing the webhook configurations this process registered");
        unregister_webhooks(&client).await;
        let _ = stop_tx.send(());
        server.abort();
        compliance.abort();
        let _ = tokio::time::timeout(Duration::from_secs(5), controllers).await;
        Ok(ExitCode::SUCCESS)
    }
}

async fn shutdown_signal() {
    let interrupt = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let terminate = async {
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(mut signal) => {
                    signal.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            _ = interrupt => {},
            _ = terminate => {},
        }
    }
    #[cfg(not(unix))]
    let _ = interrupt.await;
}

async fn install_crds(client: &Client) -> Result<(), Error> {
    let crds: Api<CustomResourceDefinition> = Api::all(client.clone());
    for crd in api::crds() {
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&crd),
        )
        .await
        .map_err(|source| Error::Kube {
            action: format!("installing CRD {name}"),
            source,
        })?;
        tokio::time::timeout(
            Duration::from_secs(30),
            await_condition(crds.clone(), &name, conditions::is_crd_established()),
        )
        .await
        .map_err(|_| Error::Usage(format!("CRD {name} was not Established within 30s")))?
        .map_err(|e| Error::Usage(format!("waiting for CRD {name}: {e}")))?;
    }
    Ok(())
}

async fn ensure_namespace(client: &Client, namespace: &str) -> Result<(), Error> {
    let namespaces: Api<Namespace> = Api::all(client.clone());
    if namespaces
        .get_opt(namespace)
        .await
        .map_err(|source| Error::Kube {
            action: format!("reading namespace {namespace}"),
            source,
        })?
        .is_some()
    {
        return Ok(());
    }
    let object = Namespace {
        metadata: kube::api::ObjectMeta {
            name: Some(namespace.into()),
            ..Default::default()
        },
        ..Default::default()
    };
    match namespaces.create(&PostParams::default(), &object).await {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
        Err(source) => Err(Error::Kube {
            action: format!("creating namespace {namespace}"),
            source,
        }),
    }
}

/// Reads the seal key from its Secret, creating it (once, race-safe) if absent.
async fn seal_key(client: &Client, namespace: &str) -> Result<SealKey, Error> {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), namespace);
    let read = |secret: Secret| -> Result<SealKey, Error> {
        let bytes = secret
            .data
            .and_then(|mut data| data.remove(SEAL_KEY_FIELD))
            .ok_or_else(|| {
                Error::Usage(format!(
                    "Secret {namespace}/{SEAL_KEY_SECRET} has no '{SEAL_KEY_FIELD}'"
                ))
            })?;
        SealKey::from_bytes(&bytes.0)
            .map_err(|e| Error::Usage(format!("Secret {namespace}/{SEAL_KEY_SECRET}: {e}")))
    };
    let action = || format!("reading Secret {namespace}/{SEAL_KEY_SECRET}");
    if let Some(secret) = secrets
        .get_opt(SEAL_KEY_SECRET)
        .await
        .map_err(|source| Error::Kube {
            action: action(),
            source,
        })?
    {
        return read(secret);
    }
    let key =
        SealKey::generate().map_err(|e| Error::Usage(format!("generating a seal key: {e}")))?;
    let secret = Secret {
        metadata: kube::api::ObjectMeta {
            name: Some(SEAL_KEY_SECRET.into()),
            labels: Some(
                [(
                    "app.kubernetes.io/managed-by".to_string(),
                    "exception-operator".to_string(),
                )]
                .into(),
            ),
            ..Default::default()
        },
        data: Some(
            [(
                SEAL_KEY_FIELD.to_string(),
                ByteString(key.as_bytes().to_vec()),
            )]
            .into(),
        ),
        type_: Some("Opaque".into()),
        ..Default::default()
    };
    match secrets.create(&PostParams::default(), &secret).await {
        Ok(_) => Ok(key),
        // Another replica created it first: use theirs.
        Err(kube::Error::Api(status)) if status.code == 409 => {
            let secret = secrets
                .get(SEAL_KEY_SECRET)
                .await
                .map_err(|source| Error::Kube {
                    action: action(),
                    source,
                })?;
            read(secret)
        }
        Err(source) => Err(Error::Kube {
            action: format!("creating Secret {namespace}/{SEAL_KEY_SECRET}"),
            source,
        }),
    }
}

/// The username the API server authenticates this process as.
async fn whoami(client: &Client) -> Result<String, Error> {
    let reviews: Api<SelfSubjectReview> = Api::all(client.clone());
    let review = reviews
        .create(&PostParams::default(), &SelfSubjectReview::default())
        .await
        .map_err(|source| Error::Kube {
            action: "asking the API server who the operator is (SelfSubjectReview)".into(),
            source,
        })?;
    review
        .status
        .and_then(|s| s.user_info)
        .and_then(|u| u.username)
        .ok_or_else(|| Error::Usage("the API server did not say who the operator is".into()))
}

async fn wait_for_listener(address: SocketAddr) -> Result<(), Error> {
    for _ in 0..100 {
        if tokio::net::TcpStream::connect(address).await.is_ok() {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(Error::Usage(format!(
        "the webhook server did not start listening on {address}"
    )))
}

fn rule(operations: &[&str], resources: &[&str]) -> RuleWithOperations {
    rule_in(api::GROUP, operations, resources)
}

fn rule_in(group: &str, operations: &[&str], resources: &[&str]) -> RuleWithOperations {
    RuleWithOperations {
        api_groups: Some(vec![group.into()]),
        api_versions: Some(vec!["*".into()]),
        operations: Some(operations.iter().map(|o| o.to_string()).collect()),
        resources: Some(resources.iter().map(|r| r.to_string()).collect()),
        scope: Some("Namespaced".into()),
    }
}

fn client_config(address: SocketAddr, path: &str, ca_bundle: &str) -> WebhookClientConfig {
    WebhookClientConfig {
        url: Some(format!("https://{address}{path}")),
        ca_bundle: Some(ByteString(ca_bundle.as_bytes().to_vec())),
        service: None,
    }
}

async fn register_webhooks(
    client: &Client,
    address: SocketAddr,
    ca_bundle: &str,
    excluded_namespaces: &[String],
) -> Result<(), Error> {
    let params = PatchParams::apply(FIELD_MANAGER).force();
    let mutating = MutatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(WEBHOOK_CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(vec![MutatingWebhook {
            name: "securityexceptions.mutate.exceptions.dev".into(),
            client_config: client_config(address, webhook::MUTATE_EXCEPTIONS_PATH, ca_bundle),
            rules: Some(vec![rule(&["CREATE", "UPDATE"], &["securityexceptions"])]),
            admission_review_versions: vec!["v1".into()],
            side_effects: "None".into(),
            failure_policy: Some("Fail".into()),
            match_policy: Some("Equivalent".into()),
            reinvocation_policy: Some("Never".into()),
            timeout_seconds: Some(10),
            ..Default::default()
        }]),
    };
    let validating = ValidatingWebhookConfiguration {
        metadata: kube::api::ObjectMeta {
            name: Some(WEBHOOK_CONFIGURATION.into()),
            ..Default::default()
        },
        webhooks: Some(vec![
            validating_webhook(
                "securityexceptions.validate.exceptions.dev",
                client_config(address, webhook::VALIDATE_EXCEPTIONS_PATH, ca_bundle),
                vec![rule(
                    &["CREATE", "UPDATE"],
                    &[
                        "securityexceptions",
                        "securityexceptions/status",
                        "compensatingcontrols/status",
                    ],
                )],
            ),
            workload_webhook(address, ca_bundle, excluded_namespaces),
        ]),
    };
    Api::<MutatingWebhookConfiguration>::all(client.clone())
        .patch(WEBHOOK_CONFIGURATION, &params, &Patch::Apply(&mutating))
        .await
        .map_err(|source| Error::Kube {
            action: "registering the mutating webhook".into(),
            source,
        })?;
    Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .patch(WEBHOOK_CONFIGURATION, &params, &Patch::Apply(&validating))
        .await
        .map_err(|source| Error::Kube {
            action: "registering the validating webhook".into(),
            source,
        })?;
    Ok(())
}

/// The workload webhook: Pods (and their ephemeral containers) and every
/// pod-template owner, every served version (matchPolicy Equivalent), never
/// in the excluded namespaces (the operator's own and kube-system by
/// default, so the webhook cannot deadlock the cluster).
fn workload_webhook(
    address: SocketAddr,
    ca_bundle: &str,
    excluded_namespaces: &[String],
) -> ValidatingWebhook {
    let write = ["CREATE", "UPDATE"];
    ValidatingWebhook {
        namespace_selector: Some(LabelSelector {
            match_expressions: Some(vec![LabelSelectorRequirement {
                key: "kubernetes.io/metadata.name".into(),
                operator: "NotIn".into(),
                values: Some(excluded_namespaces.to_vec()),
            }]),
            ..Default::default()
        }),
        ..validating_webhook(
            "workloads.validate.exceptions.dev",
            client_config(address, webhook::VALIDATE_WORKLOADS_PATH, ca_bundle),
            vec![
                rule_in("", &write, &["pods", "replicationcontrollers"]),
                rule_in("", &["UPDATE"], &["pods/ephemeralcontainers"]),
                rule_in(
                    "apps",
                    &write,
                    &["deployments", "replicasets", "statefulsets", "daemonsets"],
                ),
                rule_in("batch", &write, &["jobs", "cronjobs"]),
            ],
        )
    }
}

/// A validating webhook with the settings every one of ours shares: v1
/// reviews, no side effects, failure policy Fail (nothing is admitted
/// unchecked), every served version, a 10 s timeout.
fn validating_webhook(
    name: &str,
    client_config: WebhookClientConfig,
    rules: Vec<RuleWithOperations>,
) -> ValidatingWebhook {
    ValidatingWebhook {
        name: name.into(),
        client_config,
        rules: Some(rules),
        admission_review_versions: vec!["v1".into()],
        side_effects: "None".into(),
        failure_policy: Some("Fail".into()),
        match_policy: Some("Equivalent".into()),
        timeout_seconds: Some(10),
        ..Default::default()
    }
}

/// Removes what [`register_webhooks`] created, so a stopped development
/// process never leaves a failing webhook behind (best effort).
async fn unregister_webhooks(client: &Client) {
    let params = DeleteParams::default();
    if let Err(error) = Api::<MutatingWebhookConfiguration>::all(client.clone())
        .delete(WEBHOOK_CONFIGURATION, &params)
        .await
    {
        tracing::warn!(%error, "could not remove the mutating webhook configuration");
    }
    if let Err(error) = Api::<ValidatingWebhookConfiguration>::all(client.clone())
        .delete(WEBHOOK_CONFIGURATION, &params)
        .await
    {
        tracing::warn!(%error, "could not remove the validating webhook configuration");
    }
}
