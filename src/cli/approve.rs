//! `exception-operator approve|deny|revoke|hash|sign`: the approval helpers.
//!
//! `approve`, `deny` and `revoke` write a request annotation as the current
//! kubeconfig identity; the operator's webhook checks who is asking and seals
//! the record. `hash` prints the canonical spec hash an approval is bound to.
//! `sign` adds a GitOps approval signature to a manifest file.

use std::{path::PathBuf, process::ExitCode};

use kube::{
    Api, Client, Config,
    api::{Patch, PatchParams},
    config::{KubeConfigOptions, Kubeconfig},
};

use super::Error;
use crate::{
    api::{SecurityException, annotations},
    policy::approval::{self, SignatureEntry},
};

/// Which identity to act as, like kubectl's flags of the same names.
#[derive(Debug, clap::Args)]
pub(super) struct Identity {
    /// Namespace of the SecurityException.
    #[arg(short, long)]
    namespace: Option<String>,
    /// Impersonate this user (as `kubectl --as`).
    #[arg(long = "as", value_name = "USER")]
    as_user: Option<String>,
    /// Impersonate this group; repeat for several (as `kubectl --as-group`).
    #[arg(long = "as-group", value_name = "GROUP")]
    as_groups: Vec<String>,
    /// Impersonate this uid (as `kubectl --as-uid`).
    #[arg(long = "as-uid", value_name = "UID")]
    as_uid: Option<String>,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config).
    #[arg(long, value_name = "FILE")]
    kubeconfig: Option<PathBuf>,
}

impl Identity {
    async fn client(&self) -> Result<(Client, String), Error> {
        let options = KubeConfigOptions::default();
        let mut config = match &self.kubeconfig {
            Some(path) => {
                let kubeconfig = Kubeconfig::read_from(path).map_err(|e| {
                    Error::Usage(format!("could not read kubeconfig {}: {e}", path.display()))
                })?;
                Config::from_custom_kubeconfig(kubeconfig, &options)
                    .await
                    .map_err(|e| {
                        Error::Usage(format!("invalid kubeconfig {}: {e}", path.display()))
                    })?
            }
            None => Config::infer()
                .await
                .map_err(|e| Error::Usage(format!("could not load a kubeconfig: {e}")))?,
        };
        if let Some(user) = &self.as_user {
            config.auth_info.impersonate = Some(user.clone());
        }
        if !self.as_groups.is_empty() {
            config.auth_info.impersonate_groups = Some(self.as_groups.clone());
        }
        if let Some(uid) = &self.as_uid {
            config.auth_info.impersonate_uid = Some(uid.clone());
        }
        let namespace = self
            .namespace
            .clone()
            .unwrap_or_else(|| config.default_namespace.clone());
        let client = Client::try_from(config).map_err(Error::Connect)?;
        Ok((client, namespace))
    }
}

/// Arguments of `approve`.
#[derive(Debug, clap::Args)]
pub(super) struct ApproveArgs {
    /// Name of the SecurityException.
    name: String,
    #[command(flatten)]
    identity: Identity,
    /// The spec hash you reviewed (as `exception-operator hash` printed it).
    /// Without it, the hash of the spec as read now is approved.
    #[arg(long, value_name = "HASH")]
    spec_hash: Option<String>,
}

/// Arguments of `deny` and `revoke`.
#[derive(Debug, clap::Args)]
pub(super) struct DecideArgs {
    /// Name of the SecurityException.
    name: String,
    #[command(flatten)]
    identity: Identity,
    /// Why; recorded with the decision and shown in Events and status.
    #[arg(long)]
    reason: String,
}

/// Arguments of `hash`.
#[derive(Debug, clap::Args)]
pub(super) struct HashArgs {
    /// A manifest file (every SecurityException in it is hashed), or the name
    /// of a SecurityException in the cluster.
    target: String,
    #[command(flatten)]
    identity: Identity,
}

/// Arguments of `sign`.
#[derive(Debug, clap::Args)]
pub(super) struct SignArgs {
    /// The manifest file holding the SecurityException(s) to approve; the
    /// signature annotation is added in place.
    file: PathBuf,
    /// The signer's OpenSSH private key (ed25519 or ecdsa-p256, unencrypted).
    #[arg(long, value_name = "FILE")]
    key: PathBuf,
    /// The signer name, as configured in `approval.signers` of the operator.
    #[arg(long)]
    signer: String,
    /// The namespace the manifest is applied to, when it does not say.
    /// Signatures are bound to namespace and name.
    #[arg(short, long)]
    namespace: Option<String>,
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(Error::Runtime)
}

async fn fetch(
    api: &Api<SecurityException>,
    name: &str,
    namespace: &str,
) -> Result<SecurityException, Error> {
    api.get(name).await.map_err(|source| Error::Kube {
        action: format!("reading SecurityException {namespace}/{name}"),
        source,
    })
}

/// Writes one request annotation; the webhook's answer is the verdict.
async fn request(
    identity: &Identity,
    name: &str,
    key: &str,
    value: String,
    verb: &str,
) -> Result<ExitCode, Error> {
    let (client, namespace) = identity.client().await?;
    let api: Api<SecurityException> = Api::namespaced(client, &namespace);
    let patch = serde_json::json!({"metadata": {"annotations": {key: value}}});
    api.patch(name, &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .map_err(|source| match source {
            // The webhook's answer is the sentence to show.
            kube::Error::Api(status) => Error::Usage(status.message),
            source => Error::Kube {
                action: format!("{verb} SecurityException {namespace}/{name}"),
                source,
            },
        })?;
    println!("securityexception.exceptions.dev/{name} {verb} in namespace {namespace}");
    Ok(ExitCode::SUCCESS)
}

impl ApproveArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        runtime()?.block_on(async {
            let hash = match self.spec_hash.clone() {
                Some(hash) => hash,
                None => {
                    let (client, namespace) = self.identity.client().await?;
                    let api: Api<SecurityException> = Api::namespaced(client, &namespace);
                    approval::spec_hash(&fetch(&api, &self.name, &namespace).await?.spec)
                }
            };
            request(
                &self.identity,
                &self.name,
                annotations::APPROVE,
                hash,
                "approved",
            )
            .await
        })
    }
}

impl DecideArgs {
    pub(super) fn deny(self) -> Result<ExitCode, Error> {
        runtime()?.block_on(request(
            &self.identity,
            &self.name,
            annotations::DENY,
            self.reason.clone(),
            "denied",
        ))
    }

    pub(super) fn revoke(self) -> Result<ExitCode, Error> {
        runtime()?.block_on(request(
            &self.identity,
            &self.name,
            annotations::REVOKE,
            self.reason.clone(),
            "revoked",
        ))
    }
}

impl HashArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        let path = PathBuf::from(&self.target);
        if path.is_file() {
            for (index, document) in read_manifest(&path)?.iter().enumerate() {
                if let Some(exception) = as_exception(document, &path, index)? {
                    println!(
                        "{}  {}",
                        approval::spec_hash(&exception.spec),
                        exception.metadata.name.as_deref().unwrap_or("-")
                    );
                }
            }
            return Ok(ExitCode::SUCCESS);
        }
        runtime()?.block_on(async {
            let (client, namespace) = self.identity.client().await?;
            let api: Api<SecurityException> = Api::namespaced(client, &namespace);
            let exception = fetch(&api, &self.target, &namespace).await?;
            println!("{}", approval::spec_hash(&exception.spec));
            Ok(ExitCode::SUCCESS)
        })
    }
}

impl SignArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        let key = ssh_key::PrivateKey::read_openssh_file(&self.key).map_err(|e| {
            Error::Usage(format!(
                "could not read the private key {}: {e}",
                self.key.display()
            ))
        })?;
        let mut documents = read_manifest(&self.file)?;
        let mut signed = 0;
        for (index, document) in documents.iter_mut().enumerate() {
            let Some(exception) = as_exception(document, &self.file, index)? else {
                continue;
            };
            let name = exception.metadata.name.clone().unwrap_or_default();
            let namespace = exception
                .metadata
                .namespace
                .clone()
                .or_else(|| self.namespace.clone())
                .ok_or_else(|| {
                    Error::Usage(format!(
                        "{}: SecurityException {name} has no metadata.namespace; pass --namespace (signatures are bound to namespace and name)",
                        self.file.display()
                    ))
                })?;
            let hash = approval::spec_hash(&exception.spec);
            let signature = approval::sign_approval(&key, &namespace, &name, &hash)
                .map_err(|e| Error::Usage(format!("signing {namespace}/{name}: {e}")))?;
            let annotations = &mut document["metadata"]["annotations"];
            if annotations.is_null() {
                *annotations = serde_json::json!({});
            }
            let mut entries: Vec<SignatureEntry> = annotations
                .get(annotations::APPROVAL_SIGNATURES)
                .and_then(|v| v.as_str())
                .and_then(|text| serde_json::from_str(text).ok())
                .unwrap_or_default();
            entries.retain(|entry| entry.signer != self.signer);
            entries.push(SignatureEntry {
                signer: self.signer.clone(),
                signature,
            });
            annotations[annotations::APPROVAL_SIGNATURES] =
                serde_json::Value::String(serde_json::to_string(&entries).unwrap_or_default());
            println!("signed {namespace}/{name} ({hash}) as {}", self.signer);
            signed += 1;
        }
        if signed == 0 {
            return Err(Error::Usage(format!(
                "{}: no SecurityException found",
                self.file.display()
            )));
        }
        let text = documents
            .iter()
            .map(serde_saphyr::to_string)
            .collect::<Result<Vec<_>, _>>()
            .map_err(Error::RenderYaml)?
            .join("---\n");
        std::fs::write(&self.file, text).map_err(|source| Error::Write {
            path: self.file.clone(),
            source,
        })?;
        Ok(ExitCode::SUCCESS)
    }
}

fn read_manifest(path: &PathBuf) -> Result<Vec<serde_json::Value>, Error> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Usage(format!("could not read {}: {e}", path.display())))?;
    let documents: Vec<serde_json::Value> = serde_saphyr::from_multiple(&text)
        .map_err(|e| Error::Usage(format!("{} is not valid YAML: {e}", path.display())))?;
    Ok(documents.into_iter().filter(|d| !d.is_null()).collect())
}

fn as_exception(
    document: &serde_json::Value,
    path: &std::path::Path,
    index: usize,
) -> Result<Option<SecurityException>, Error> {
    let is_exception = document["kind"] == "SecurityException"
        && document["apiVersion"]
            .as_str()
            .is_some_and(|v| v.starts_with("exceptions.dev/"));
    if !is_exception {
        return Ok(None);
    }
    serde_json::from_value(document.clone())
        .map(Some)
        .map_err(|e| {
            Error::Usage(format!(
                "{} document {}: not a valid SecurityException: {e}",
                path.display(),
                index + 1
            ))
        })
}
