//! Reading certificates and keys, and what a certificate says about its holder.

use std::path::{Path, PathBuf};

use ed25519_dalek::{SigningKey, VerifyingKey};
use rustls::RootCertStore;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use x509_parser::extensions::GeneralName;
use zeroize::Zeroizing;

use crate::{IdentityError, MAX_PEM_BYTES, Name, Role};

/// Paths of one party's certificate material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The federation CA's certificate (PEM).
    pub ca: PathBuf,
    /// This party's certificate (PEM).
    pub cert: PathBuf,
    /// This party's private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `privet certs` writes for `name` in `dir`: `ca.pem`, `NAME.pem`, `NAME.key`.
    pub fn in_dir(dir: &Path, name: &Name) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

fn file_err(path: &Path, reason: impl Into<String>) -> IdentityError {
    IdentityError::File {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The certificates of a PEM file (at least one).
pub fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, IdentityError> {
    let pem = privet_files::read_limited(path, MAX_PEM_BYTES)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| file_err(path, format!("not a PEM certificate: {e}")))?;
    if certs.is_empty() {
        return Err(file_err(path, "no certificate found"));
    }
    for cert in &certs {
        x509_parser::parse_x509_certificate(cert.as_ref())
            .map_err(|e| file_err(path, format!("unparsable certificate: {e}")))?;
    }
    Ok(certs)
}

/// The private key of a PEM file.
pub fn load_private_key(path: &Path) -> Result<PrivateKeyDer<'static>, IdentityError> {
    let pem = Zeroizing::new(privet_files::read_limited(path, MAX_PEM_BYTES)?);
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| file_err(path, format!("not a PEM private key: {e}")))?
        .ok_or_else(|| file_err(path, "no private key found"))
}

/// The CA certificates of a PEM file as a root store.
pub fn ca_roots(path: &Path) -> Result<RootCertStore, IdentityError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| file_err(path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

/// What a certificate says about its holder (no chain check: see
/// [`PeerVerifier`](crate::PeerVerifier) for certificates from others).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdentity {
    /// The common name.
    pub name: Name,
    /// The role its URI name gives.
    pub role: Role,
}

/// The object identifier of Ed25519 keys (RFC 8410).
const OID_ED25519: &str = "1.3.101.112";

const REISSUE: &str = "certificates issued by privet before December 2026 carry no role: \
                       reissue it with `privet certs issue NAME --role ROLE --force`";

/// The name and role of a DER certificate.
pub fn identity_of(cert: &[u8]) -> Result<CertIdentity, IdentityError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| IdentityError::Certificate(format!("unparsable certificate: {e}")))?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| IdentityError::Certificate("the certificate has no common name".into()))?;
    let name: Name = cn.parse()?;
    let mut role = None;
    if let Ok(Some(san)) = parsed.subject_alternative_name() {
        for general in &san.value.general_names {
            if let GeneralName::URI(uri) = general
                && let Some(parsed) = Role::from_uri(uri)
            {
                let (r, uri_name) = parsed?;
                if uri_name != name.as_str() {
                    return Err(IdentityError::Certificate(format!(
                        "the certificate of {name:?} carries a role for another name"
                    )));
                }
                if role.replace(r).is_some() {
                    return Err(IdentityError::Certificate(format!(
                        "the certificate of {name:?} carries more than one role"
                    )));
                }
            }
        }
    }
    let role = role.ok_or_else(|| {
        IdentityError::Certificate(format!(
            "the certificate of {name:?} names no privet role ({REISSUE})"
        ))
    })?;
    Ok(CertIdentity { name, role })
}

/// The name and role of this party's own certificate, after checking that its key file holds
/// the certificate's key (a mismatch would only show at the first handshake otherwise).
pub fn own_identity(files: &TlsFiles) -> Result<CertIdentity, IdentityError> {
    let certs = load_certs(&files.cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| file_err(&files.cert, "no certificate"))?;
    let identity = identity_of(leaf.as_ref()).map_err(|e| file_err(&files.cert, e.to_string()))?;
    // The CA must be readable too: it is what every peer is checked against.
    ca_roots(&files.ca)?;
    load_signing_key(files)?;
    Ok(identity)
}

/// The Ed25519 identity key a DER certificate certifies.
pub fn certified_key(cert: &[u8]) -> Result<VerifyingKey, IdentityError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| IdentityError::Certificate(format!("unparsable certificate: {e}")))?;
    let spki = &parsed.tbs_certificate.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != OID_ED25519 {
        return Err(IdentityError::Certificate(
            "the certificate's key is not Ed25519, so it cannot sign for secure aggregation \
             (certificates from privet before November 2026 were ECDSA: reissue it with \
             `privet certs issue NAME --force`)"
                .into(),
        ));
    }
    let bytes: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| IdentityError::Certificate("an Ed25519 key must be 32 bytes".into()))?;
    VerifyingKey::from_bytes(&bytes)
        .map_err(|_| IdentityError::Certificate("invalid Ed25519 public key".into()))
}

/// This party's own signing identity: the Ed25519 private key of its certificate, checked
/// against the certificate.
pub fn load_signing_key(files: &TlsFiles) -> Result<SigningKey, IdentityError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let pem = Zeroizing::new(privet_files::read_limited(&files.key, MAX_PEM_BYTES)?);
    let der = Zeroizing::new(
        match rustls_pemfile::read_one(&mut pem.as_slice())
            .map_err(|e| file_err(&files.key, format!("not a PEM key: {e}")))?
        {
            Some(rustls_pemfile::Item::Pkcs8Key(k)) => k.secret_pkcs8_der().to_vec(),
            _ => return Err(file_err(&files.key, "not a PKCS#8 private key")),
        },
    );
    let key = SigningKey::from_pkcs8_der(&der).map_err(|_| {
        file_err(
            &files.key,
            "not an Ed25519 key, so it cannot sign for secure aggregation (reissue the \
             certificate with `privet certs issue NAME --force`)",
        )
    })?;
    let certs = load_certs(&files.cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| file_err(&files.cert, "no certificate"))?;
    let own = certified_key(leaf.as_ref()).map_err(|e| file_err(&files.cert, e.to_string()))?;
    if own != key.verifying_key() {
        return Err(file_err(
            &files.key,
            format!("does not hold the key of {}", files.cert.display()),
        ));
    }
    Ok(key)
}
