//! The federation's certificates and TLS configurations.
//!
//! A federation has one certificate authority (`privet certs init`). Every peer (the coordinator,
//! each node, each operator) gets a certificate from it (`privet certs issue NAME`); the
//! certificate's common name is the peer's identity. Connections are TLS 1.3 only, both sides
//! authenticate: the coordinator requires a client certificate chaining to the CA (expired,
//! not-yet-valid and foreign certificates fail the handshake), and peers verify that the
//! coordinator's certificate chains to the CA and names the host they dialled.
//!
//! The CA's key is ECDSA P-256; peers' keys are Ed25519, so that a node's certificate also
//! certifies its long-term signing identity for secure aggregation (see [`crate::identity`]).
//! Keys come from `ring`'s CSPRNG through rcgen and are written with mode 0600.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{
    BasicConstraints, CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, IsCa,
    Issuer, KeyPair, KeyUsagePurpose,
};
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};

use crate::error::NetError;

/// Largest certificate or key file read.
const MAX_PEM_BYTES: u64 = 64 << 10;

/// What a certificate is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Role {
    /// The coordinator: a TLS server (and client, for symmetry).
    Coordinator,
    /// A data-owner node or an operator: a TLS client.
    Client,
}

/// Paths of one peer's TLS material.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The federation CA's certificate (PEM).
    pub ca: PathBuf,
    /// This peer's certificate (PEM).
    pub cert: PathBuf,
    /// This peer's private key (PEM).
    pub key: PathBuf,
}

impl TlsFiles {
    /// The files `privet certs` writes for `name` in `dir`: `ca.pem`, `NAME.pem`, `NAME.key`.
    pub fn in_dir(dir: &Path, name: &str) -> TlsFiles {
        TlsFiles {
            ca: dir.join("ca.pem"),
            cert: dir.join(format!("{name}.pem")),
            key: dir.join(format!("{name}.key")),
        }
    }
}

fn tls_err(what: impl Into<String>) -> NetError {
    NetError::Tls(what.into())
}

pub(crate) fn read_small(path: &Path) -> Result<Vec<u8>, NetError> {
    use std::io::Read;
    let file = std::fs::File::open(path).map_err(|source| NetError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut buf = Vec::new();
    file.take(MAX_PEM_BYTES + 1)
        .read_to_end(&mut buf)
        .map_err(|source| NetError::Io {
            path: path.to_path_buf(),
            source,
        })?;
    if buf.len() as u64 > MAX_PEM_BYTES {
        return Err(tls_err(format!(
            "{} is larger than {MAX_PEM_BYTES} bytes",
            path.display()
        )));
    }
    Ok(buf)
}

/// Writes a file atomically; `secret` files get mode 0600 from the start.
fn write_file(path: &Path, bytes: &[u8], secret: bool) -> Result<(), NetError> {
    let io = |source| NetError::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(if secret { 0o600 } else { 0o644 });
    }
    let mut file = options.open(&tmp).map_err(io)?;
    file.write_all(bytes).map_err(io)?;
    file.sync_all().map_err(io)?;
    std::fs::rename(&tmp, path).map_err(io)
}

fn refuse_overwrite(paths: &[&Path], force: bool) -> Result<(), NetError> {
    if force {
        return Ok(());
    }
    for path in paths {
        if path.exists() {
            return Err(NetError::Config(format!(
                "{} already exists (use --force to replace it)",
                path.display()
            )));
        }
    }
    Ok(())
}

/// Checks that a peer name is usable as a file name and a certificate name.
pub fn check_name(name: &str) -> Result<(), NetError> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(NetError::Config(format!(
            "invalid name {name:?}: use 1-64 ASCII letters, digits, '-', '_' or '.', not starting \
             with '.'"
        )))
    }
}

fn validity(params: &mut CertificateParams, days: u32) {
    let now = time::OffsetDateTime::now_utc();
    // A little slack for clocks that disagree by a few minutes.
    params.not_before = now - time::Duration::minutes(5);
    params.not_after = now + time::Duration::days(i64::from(days));
}

/// Creates the federation's CA in `dir` (`ca.pem`, `ca.key`), valid for `days`.
pub fn init_ca(dir: &Path, federation: &str, days: u32, force: bool) -> Result<PathBuf, NetError> {
    std::fs::create_dir_all(dir).map_err(|source| NetError::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let cert_path = dir.join("ca.pem");
    let key_path = dir.join("ca.key");
    refuse_overwrite(&[&cert_path, &key_path], force)?;
    let key = KeyPair::generate().map_err(|e| tls_err(format!("key generation: {e}")))?;
    let mut params = CertificateParams::default();
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, format!("{federation} federation CA"));
    dn.push(DnType::OrganizationName, federation);
    params.distinguished_name = dn;
    params.is_ca = IsCa::Ca(BasicConstraints::Constrained(0));
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    validity(&mut params, days);
    let cert = params
        .self_signed(&key)
        .map_err(|e| tls_err(format!("signing the CA: {e}")))?;
    write_file(&key_path, key.serialize_pem().as_bytes(), true)?;
    write_file(&cert_path, cert.pem().as_bytes(), false)?;
    Ok(cert_path)
}

/// Issues a certificate for `name` signed by the CA in `dir` (`NAME.pem`, `NAME.key`).
///
/// `hosts` are the DNS names and IP addresses the certificate is valid for as a server
/// (the coordinator's); the name itself is always the common name.
pub fn issue(
    dir: &Path,
    name: &str,
    role: Role,
    hosts: &[String],
    days: u32,
    force: bool,
) -> Result<TlsFiles, NetError> {
    check_name(name)?;
    let files = TlsFiles::in_dir(dir, name);
    if name == "ca" {
        return Err(NetError::Config(
            "the name \"ca\" is reserved for the CA".into(),
        ));
    }
    refuse_overwrite(&[&files.cert, &files.key], force)?;
    let ca_key_pem = String::from_utf8(read_small(&dir.join("ca.key"))?)
        .map_err(|_| tls_err("ca.key is not text"))?;
    let ca_cert_pem =
        String::from_utf8(read_small(&files.ca)?).map_err(|_| tls_err("ca.pem is not text"))?;
    let ca_key = KeyPair::from_pem(&ca_key_pem)
        .map_err(|e| tls_err(format!("{}: {e}", dir.join("ca.key").display())))?;
    let issuer = Issuer::from_ca_cert_pem(&ca_cert_pem, ca_key)
        .map_err(|e| tls_err(format!("{}: {e}", files.ca.display())))?;
    let mut sans: Vec<String> = hosts.to_vec();
    if !sans.iter().any(|s| s == name) && role == Role::Client {
        sans.push(name.to_string());
    }
    let mut params = CertificateParams::new(sans)
        .map_err(|e| NetError::Config(format!("invalid host name: {e}")))?;
    let mut dn = DistinguishedName::new();
    dn.push(DnType::CommonName, name);
    params.distinguished_name = dn;
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = match role {
        Role::Coordinator => vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ],
        Role::Client => vec![ExtendedKeyUsagePurpose::ClientAuth],
    };
    params.use_authority_key_identifier_extension = true;
    validity(&mut params, days);
    let key = KeyPair::generate_for(&rcgen::PKCS_ED25519)
        .map_err(|e| tls_err(format!("key generation: {e}")))?;
    let cert = params
        .signed_by(&key, &issuer)
        .map_err(|e| tls_err(format!("signing {name}: {e}")))?;
    write_file(&files.key, key.serialize_pem().as_bytes(), true)?;
    write_file(&files.cert, cert.pem().as_bytes(), false)?;
    Ok(files)
}

pub(crate) fn load_certs(path: &Path) -> Result<Vec<CertificateDer<'static>>, NetError> {
    let pem = read_small(path)?;
    let certs: Vec<CertificateDer<'static>> = rustls_pemfile::certs(&mut pem.as_slice())
        .collect::<Result<_, _>>()
        .map_err(|e| tls_err(format!("{}: not a PEM certificate: {e}", path.display())))?;
    if certs.is_empty() {
        return Err(tls_err(format!("{}: no certificate found", path.display())));
    }
    Ok(certs)
}

fn load_key(path: &Path) -> Result<PrivateKeyDer<'static>, NetError> {
    let pem = read_small(path)?;
    rustls_pemfile::private_key(&mut pem.as_slice())
        .map_err(|e| tls_err(format!("{}: not a PEM private key: {e}", path.display())))?
        .ok_or_else(|| tls_err(format!("{}: no private key found", path.display())))
}

pub(crate) fn roots(path: &Path) -> Result<RootCertStore, NetError> {
    let mut roots = RootCertStore::empty();
    for cert in load_certs(path)? {
        roots
            .add(cert)
            .map_err(|e| tls_err(format!("{}: unusable CA certificate: {e}", path.display())))?;
    }
    Ok(roots)
}

pub(crate) fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The coordinator's TLS 1.3 configuration: its certificate, and client certificates required
/// to chain to the CA.
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, NetError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(roots(&files.ca)?),
        provider(),
    )
    .build()
    .map_err(|e| tls_err(format!("client verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| tls_err(format!("{}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A node's or operator's TLS 1.3 configuration: the CA as the only root, and its own
/// certificate for client authentication.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, NetError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(roots(&files.ca)?)
        .with_client_auth_cert(load_certs(&files.cert)?, load_key(&files.key)?)
        .map_err(|e| tls_err(format!("{}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The common name of a (verified) peer certificate: the peer's identity.
pub fn peer_name(cert: &CertificateDer<'_>) -> Result<String, NetError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| tls_err(format!("unparsable peer certificate: {e}")))?;
    let cn = parsed
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .ok_or_else(|| tls_err("peer certificate has no common name"))?;
    check_name(cn)?;
    Ok(cn.to_string())
}
