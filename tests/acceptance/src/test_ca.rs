//! A throwaway certificate authority for the test servers that speak TLS (the HTTPS mirror,
//! Redis, PostgreSQL): a new CA and a server certificate it signed for `localhost` and
//! `127.0.0.1`.

use anyhow::Result;

/// A test CA and the server certificate it signed, all PEM except where said.
#[derive(Debug)]
pub struct TestCertificates {
    /// The CA's certificate, for clients to trust.
    pub ca_pem: String,
    /// The server's certificate.
    pub cert_pem: String,
    /// The certificate, DER.
    pub cert_der: Vec<u8>,
    /// The server's private key (PKCS#8).
    pub key_pem: String,
    /// The key, PKCS#8 DER.
    pub key_der: Vec<u8>,
}

/// A new CA named `ca_name` and a server certificate it signed for `localhost` and `127.0.0.1`.
pub fn issue(ca_name: &str) -> Result<TestCertificates> {
    let mut ca = rcgen::CertificateParams::new(Vec::<String>::new())?;
    ca.distinguished_name.push(rcgen::DnType::CommonName, ca_name);
    ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca.key_usages = vec![rcgen::KeyUsagePurpose::KeyCertSign, rcgen::KeyUsagePurpose::DigitalSignature];
    let ca_key = rcgen::KeyPair::generate()?;
    let ca_pem = ca.self_signed(&ca_key)?.pem();
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let mut leaf = rcgen::CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()])?;
    leaf.distinguished_name.push(rcgen::DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![rcgen::ExtendedKeyUsagePurpose::ServerAuth];
    let leaf_key = rcgen::KeyPair::generate()?;
    let cert = leaf.signed_by(&leaf_key, &issuer)?;
    Ok(TestCertificates {
        ca_pem,
        cert_pem: cert.pem(),
        cert_der: cert.der().to_vec(),
        key_pem: leaf_key.serialize_pem(),
        key_der: leaf_key.serialize_der(),
    })
}
