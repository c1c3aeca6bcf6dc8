//! The federation's certificate authority and the certificates it issues.
//!
//! The CA's key is ECDSA P-256; peers' keys are Ed25519, so that a node's certificate also
//! certifies its long-term signing identity. Keys come from `ring`'s CSPRNG through rcgen and
//! are written with mode 0600. Certificates are TLS 1.3 material: the coordinator's has the
//! server and client EKUs and the hosts it serves as DNS/IP names; nodes' and operators' have
//! the client EKU. Every peer certificate carries its role as a URI name
//! (`spiffe://privet/ROLE/NAME`).

use std::path::{Path, PathBuf};

use privet_files::{Mode, write_atomic};
use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose, SanType,
};

use crate::{IdentityError, MAX_PEM_BYTES, Name, Role, TlsFiles};

fn cert_err(path: &Path, reason: impl Into<String>) -> IdentityError {
    IdentityError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

fn refuse_overwrite(paths: &[&Path], force: bool) -> Result<(), IdentityError> {
    if force {
        return Ok(());
    }
    for path in paths {
        if path.exists() {
            return Err(IdentityError::Invalid(format!(
                "{} already exists (use --force to replace it)",
                path.display()
            )));
        }
    }
    Ok(())
}

fn validity(params: &mut CertificateParams, days: u32) -> Result<(), IdentityError> {
    if days == 0 || days > 36_500 {
        return Err(IdentityError::Invalid(format!(
            "a certificate must be valid for 1 to 36,500 days, not {days} (0 would issue an \
             already expired certificate)"
        )));
    }
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree by a few minutes.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
    Ok(())
}

/// Creates the federation's CA in `dir` (`ca.pem`, `ca.key`), valid for `days`.
pub fn init_ca(
    dir: &Path,
    federation: &str,
    days: u32,
    force: bool,
) -> Result<PathBuf, IdentityError> {
    if federation.is_empty() || federation.len() > 64 || federation.chars().any(char::is_control) {
        return Err(IdentityError::Invalid(
            "the federation name must be 1 to 64 printable characters".into(),
        ));
    }
    std::fs::create_dir_all(dir).map_err(|e| cert_err(dir, e.to_string()))?;
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca.key");
    refuse_overwrite(&[&cert_path, &key_path], force)?;
    let key =
        KeyPair::generate().map_err(|e| IdentityError::Invalid(format!("key generation: {e}")))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{federation} federation CA"));
    dn.push(DnType::OrganizationName, federation);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days)?;
    let cert = params
        .self_signed(&key)
        .map_err(|e| IdentityError::Invalid(format!("signing the CA: {e}")))?;
    write_atomic(&key_path, key.serialize_pem().as_bytes(), Mode::Secret)?;
    write_atomic(&cert_path, cert.pem().as_bytes(), Mode::Public)?;
    Ok(cert_path)
}

/// Issues a certificate for `name` in `role`, signed by the CA in `dir` (`NAME.pem`,
/// `NAME.key`), valid for `days` (1 to 36,500).
///
/// `hosts` are the DNS names and IP addresses a coordinator serves under; they are refused for
/// other roles.
pub fn issue(
    dir: &Path,
    name: &Name,
    role: Role,
    hosts: &[String],
    days: u32,
    force: bool,
) -> Result<TlsFiles, IdentityError> {
    if name.as_str() == "ca" {
        return Err(IdentityError::Invalid(
            "the name \"ca\" is reserved for the CA".into(),
        ));
    }
    if role != Role::Coordinator && !hosts.is_empty() {
        return Err(IdentityError::Invalid(format!(
            "--host is for the coordinator's certificate, not a {role}'s"
        )));
    }
    let files = TlsFiles::in_dir(dir, name);
    refuse_overwrite(&[&files.cert, &files.key], force)?;
    let ca_key_path = dir.join("ca.key");
    let ca_key_pem = privet_files::read_text(&ca_key_path, MAX_PEM_BYTES)?;
    let ca_cert_pem = privet_files::read_text(&files.ca, MAX_PEM_BYTES)?;
    let ca_key =
        KeyPair::from_pem(&ca_key_pem).map_err(|e| cert_err(&ca_key_path, e.to_string()))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)
        .map_err(|e| cert_err(&files.ca, e.to_string()))?;
    let mut params = CertificateParams::new(hosts.to_vec())
        .map_err(|e| IdentityError::Invalid(format!("invalid host name: {e}")))?;
    if role != Role::Coordinator {
        params.subject_alt_names.push(SanType::DnsName(
            name.as_str()
                .try_into()
                .map_err(|e| IdentityError::Invalid(format!("{name}: {e}")))?,
        ));
    }
    params.subject_alt_names.push(SanType::URI(
        role.uri(name)
            .try_into()
            .map_err(|e| IdentityError::Invalid(format!("{name}: {e}")))?,
    ));
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name.as_str());
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Coordinator => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Node | Role::Operator => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days)?;
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .map_err(|e| IdentityError::Invalid(format!("key generation: {e}")))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| IdentityError::Invalid(format!("signing {name}: {e}")))?;
    write_atomic(&files.key, key.serialize_pem().as_bytes(), Mode::Secret)?;
    write_atomic(&files.cert, cert.pem().as_bytes(), Mode::Public)?;
    Ok(files)
}
