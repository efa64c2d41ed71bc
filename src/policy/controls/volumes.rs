//! Restricted control `restrictedVolumes`.
//!
//! > **Volume Types.** The restricted policy only permits the following volume
//! > types. Restricted fields: `spec.volumes[*]`. Allowed values: every item
//! > in the `spec.volumes[*]` list must set one of `configMap`, `csi`,
//! > `downwardAPI`, `emptyDir`, `ephemeral`, `persistentVolumeClaim`,
//! > `projected`, `secret`.
//!
//! `image` volumes (read-only OCI artifacts) are allowed too, as they have
//! been since standard v1.33. A volume that sets no source at all is allowed:
//! the API server defaults it to `emptyDir`. A `hostPath` volume also breaks
//! the baseline control `hostPathVolumes`, so at level restricted it is
//! reported under both.

use k8s_openapi::api::core::v1::Volume;

use super::{PodView, Violation};

/// The volume sources allowed at level restricted.
const ALLOWED: &[&str] = &[
    "configMap",
    "csi",
    "downwardAPI",
    "emptyDir",
    "ephemeral",
    "image",
    "persistentVolumeClaim",
    "projected",
    "secret",
];

/// Every volume whose source is not in [`ALLOWED`]; the value is the volume
/// type as the API spells it (`hostPath`, `nfs`, `gcePersistentDisk`, ...).
pub(super) fn restricted_volumes(pod: &PodView<'_>, out: &mut Vec<Violation>) {
    for (i, volume) in pod.spec.volumes.iter().flatten().enumerate() {
        for source in sources(volume) {
            if !ALLOWED.contains(&source) {
                out.push(pod.pod_violation(
                    "restrictedVolumes",
                    &format!("volumes[{i}].{source}"),
                    source,
                ));
            }
        }
    }
}

/// The sources a volume sets, by their API names (one for a valid volume).
fn sources(v: &Volume) -> Vec<&'static str> {
    [
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("cinder", v.cinder.is_some()),
        ("configMap", v.config_map.is_some()),
        ("csi", v.csi.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("flocker", v.flocker.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("projected", v.projected.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("rbd", v.rbd.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("secret", v.secret.is_some()),
        ("storageos", v.storageos.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
    ]
    .into_iter()
    .filter_map(|(name, set)| set.then_some(name))
    .collect()
}

#[cfg(test)]
mod tests {
    use super::super::Level;
    use super::super::test_support::{of, pairs, violations};

    #[test]
    fn volume_types_outside_the_core_set() {
        let yaml = r#"
apiVersion: v1
kind: Pod
metadata: {name: p}
spec:
  volumes:
  - {name: defaulted}
  - {name: scratch, emptyDir: {}}
  - {name: data, persistentVolumeClaim: {claimName: data}}
  - {name: tools, image: {reference: "registry.example.com/tools:1"}}
  - {name: share, nfs: {server: nfs.example.com, path: /exports}}
  - {name: logs, hostPath: {path: /var/log}}
  containers: [{name: a}]
"#;
        let found = violations(yaml, Level::Restricted);
        assert_eq!(
            of("restrictedVolumes", &found),
            pairs(&[
                ("spec.volumes[4].nfs", "nfs"),
                ("spec.volumes[5].hostPath", "hostPath")
            ])
        );
        // The hostPath volume also breaks the baseline control, with its path.
        assert_eq!(
            of("hostPathVolumes", &found),
            pairs(&[("spec.volumes[5].hostPath.path", "/var/log")])
        );
        assert!(of("restrictedVolumes", &violations(yaml, Level::Baseline)).is_empty());
    }
}
