//! Self-signed serving certificates for development mode (`run
//! --local-webhook`): a CA that the webhook configurations trust through
//! `caBundle`, and a leaf for the loopback address signed by it.

use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DistinguishedName, DnType,
    ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose,
};

/// A CA and a serving certificate signed by it, PEM-encoded.
pub struct ServingCertificate {
    /// The CA certificate: the `caBundle` of the webhook configurations.
    pub ca_pem: String,
    /// The serving certificate.
    pub cert_pem: String,
    /// The serving certificate's private key.
    pub key_pem: String,
}

/// Generates a CA and a serving certificate for `hosts` (IP addresses or DNS
/// names). Both use rcgen's default validity (until 4096): they live only as
/// long as the development process that made them, which registers a new CA
/// in the webhook configurations every time it starts.
pub fn self_signed(hosts: &[String]) -> Result<ServingCertificate, rcgen::Error> {
    let mut ca_params = CertificateParams::default();
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    ca_params.distinguished_name = name("exception-operator local CA");
    let ca = CertifiedIssuer::self_signed(ca_params, KeyPair::generate()?)?;

    let mut leaf_params = CertificateParams::new(hosts.to_vec())?;
    leaf_params.distinguished_name = name("exception-operator webhook");
    leaf_params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = KeyPair::generate()?;
    let leaf = leaf_params.signed_by(&leaf_key, &ca)?;
    Ok(ServingCertificate {
        ca_pem: ca.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    })
}

fn name(common_name: &str) -> DistinguishedName {
    let mut name = DistinguishedName::new();
    name.push(DnType::CommonName, common_name);
    name
}
