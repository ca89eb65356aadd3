//! Certificates and keys for a throwaway control plane: one CA, the API server's serving certificate,
//! client certificates for the admin and the tier-2 components, and the service-account signing key.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

/// A PEM certificate and key written to disk.
#[derive(Debug, Clone)]
pub struct CertFiles {
    /// The certificate (PEM).
    pub cert: PathBuf,
    /// Its private key (PEM, PKCS#8).
    pub key: PathBuf,
}

/// Everything the control plane needs, written under one folder.
#[derive(Debug, Clone)]
pub struct Pki {
    /// The cluster CA (signs every other certificate; clients trust it).
    pub ca: CertFiles,
    /// The kube-apiserver serving certificate (127.0.0.1, localhost, the service IP).
    pub apiserver: CertFiles,
    /// `system:masters` client certificate for the admin kubeconfig.
    pub admin: CertFiles,
    /// Client certificate of `system:kube-controller-manager`.
    pub controller_manager: CertFiles,
    /// Client certificate of `system:kube-scheduler`.
    pub scheduler: CertFiles,
    /// The service-account token signing key (private, PKCS#8) and its public half.
    pub service_account_key: PathBuf,
    /// The public half of [`Pki::service_account_key`].
    pub service_account_pub: PathBuf,
}

impl Pki {
    /// Generates a fresh PKI into `dir`.
    pub fn generate(dir: &Path) -> Result<Self> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params.distinguished_name = name("ferroflux-local-ca", None);
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let ca_cert = ca_params.self_signed(&ca_key)?;
        let ca = write_pair(dir, "ca", &ca_cert.pem(), &ca_key.serialize_pem())?;
        let issuer = Issuer::new(ca_params, ca_key);

        let mut serving = CertificateParams::new(vec![
            "localhost".to_string(),
            "kubernetes".to_string(),
            "kubernetes.default".to_string(),
            "kubernetes.default.svc".to_string(),
            "kubernetes.default.svc.cluster.local".to_string(),
        ])?;
        serving
            .subject_alt_names
            .push(SanType::IpAddress("127.0.0.1".parse()?));
        serving
            .subject_alt_names
            .push(SanType::IpAddress("10.0.0.1".parse()?));
        serving.distinguished_name = name("kube-apiserver", None);
        serving.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        let apiserver = sign(dir, "apiserver", serving, &issuer)?;

        let client = |file: &str, user: &str, group: Option<&str>| -> Result<CertFiles> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name = name(user, group);
            params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
            sign(dir, file, params, &issuer)
        };
        let admin = client("admin", "ferroflux-admin", Some("system:masters"))?;
        let controller_manager = client(
            "kube-controller-manager",
            "system:kube-controller-manager",
            None,
        )?;
        let scheduler = client("kube-scheduler", "system:kube-scheduler", None)?;

        let sa_key = KeyPair::generate()?;
        let service_account_key = dir.join("sa.key");
        let service_account_pub = dir.join("sa.pub");
        std::fs::write(&service_account_key, sa_key.serialize_pem())?;
        std::fs::write(&service_account_pub, sa_key.public_key_pem())?;

        Ok(Self {
            ca,
            apiserver,
            admin,
            controller_manager,
            scheduler,
            service_account_key,
            service_account_pub,
        })
    }
}

fn name(common_name: &str, organization: Option<&str>) -> DistinguishedName {
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, common_name);
    if let Some(org) = organization {
        dn.push(DnType::OrganizationName, org);
    }
    dn
}

fn sign(
    dir: &Path,
    file: &str,
    params: CertificateParams,
    issuer: &Issuer<'_, KeyPair>,
) -> Result<CertFiles> {
    let key = KeyPair::generate()?;
    let cert = params
        .signed_by(&key, issuer)
        .with_context(|| format!("cannot sign the {file} certificate"))?;
    write_pair(dir, file, &cert.pem(), &key.serialize_pem())
}

fn write_pair(dir: &Path, file: &str, cert: &str, key: &str) -> Result<CertFiles> {
    let files = CertFiles {
        cert: dir.join(format!("{file}.crt")),
        key: dir.join(format!("{file}.key")),
    };
    std::fs::write(&files.cert, cert)?;
    std::fs::write(&files.key, key)?;
    Ok(files)
}
