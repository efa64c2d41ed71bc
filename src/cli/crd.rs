//! `exception-operator crd`: the generated CustomResourceDefinitions.

use std::{io::Write, path::PathBuf, process::ExitCode};

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;

use super::Error;
use crate::api;

/// Arguments of `exception-operator crd`.
#[derive(Debug, clap::Args)]
pub(super) struct CrdArgs {
    /// Write one file per CRD (`<plural>.<group>.yaml`) into this directory
    /// instead of printing them all to standard output.
    #[arg(long, value_name = "DIR")]
    output_dir: Option<PathBuf>,
}

impl CrdArgs {
    pub(super) fn run(self) -> Result<ExitCode, Error> {
        let crds = api::crds();
        match self.output_dir {
            Some(dir) => {
                for crd in &crds {
                    let path = dir.join(file_name(crd));
                    std::fs::write(&path, render(crd)?)
                        .map_err(|source| Error::Write { path, source })?;
                }
            }
            None => {
                let documents = crds.iter().map(render).collect::<Result<Vec<_>, _>>()?;
                let mut stdout = std::io::stdout().lock();
                stdout
                    .write_all(documents.join("---\n").as_bytes())
                    .map_err(|source| Error::Write {
                        path: "<stdout>".into(),
                        source,
                    })?;
            }
        }
        Ok(ExitCode::SUCCESS)
    }
}

/// The file under `crds/` that holds `crd`.
pub(crate) fn file_name(crd: &CustomResourceDefinition) -> String {
    format!("{}.yaml", crd.metadata.name.as_deref().unwrap_or("crd"))
}

/// One CRD as a YAML document.
pub(crate) fn render(crd: &CustomResourceDefinition) -> Result<String, Error> {
    serde_saphyr::to_string(crd).map_err(Error::RenderYaml)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `crds/` is generated; this fails when the code and the files disagree.
    #[test]
    fn committed_crds_match_the_code() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("crds");
        for crd in api::crds() {
            let path = dir.join(file_name(&crd));
            let committed = std::fs::read_to_string(&path).unwrap_or_default();
            assert!(
                committed == render(&crd).unwrap(),
                "{} is out of date with the code; regenerate it with:\n    \
                 cargo run -- crd --output-dir crds",
                path.display()
            );
        }
    }
}
