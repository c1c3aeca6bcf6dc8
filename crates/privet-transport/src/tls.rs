//! TLS 1.3 configurations from the federation's certificates, and who is calling.

use std::sync::Arc;

use privet_identity::{CertIdentity, Role, TlsFiles, ca_roots, load_certs, load_private_key};
use rustls::{ClientConfig, ServerConfig};

use crate::TransportError;

/// How peers are authenticated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Security {
    /// Mutual TLS 1.3 with the federation's certificates.
    Tls(TlsFiles),
    /// Plain text, names unauthenticated: development only (`--insecure-dev`).
    InsecureDev,
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

fn tls_err(what: impl Into<String>) -> TransportError {
    TransportError::Tls(what.into())
}

/// A server's TLS 1.3 configuration: its certificate, and client certificates required to
/// chain to the CA (expired, not-yet-valid and foreign certificates fail the handshake).
pub fn server_config(files: &TlsFiles) -> Result<Arc<ServerConfig>, TransportError> {
    let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
        Arc::new(ca_roots(&files.ca)?),
        provider(),
    )
    .build()
    .map_err(|e| tls_err(format!("client verifier: {e}")))?;
    let mut config = ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?
        .with_client_cert_verifier(verifier)
        .with_single_cert(load_certs(&files.cert)?, load_private_key(&files.key)?)
        .map_err(|e| tls_err(format!("{}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// A client's TLS 1.3 configuration: the CA as the only root, and its own certificate for
/// client authentication.
pub fn client_config(files: &TlsFiles) -> Result<Arc<ClientConfig>, TransportError> {
    let mut config = ClientConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13])
        .map_err(|e| tls_err(e.to_string()))?
        .with_root_certificates(ca_roots(&files.ca)?)
        .with_client_auth_cert(load_certs(&files.cert)?, load_private_key(&files.key)?)
        .map_err(|e| tls_err(format!("{}: {e}", files.cert.display())))?;
    config.alpn_protocols = vec![b"h2".to_vec()];
    Ok(Arc::new(config))
}

/// The authenticated caller of a request: what its certificate (verified by the handshake)
/// says, and the certificate itself (DER).
#[derive(Clone, Debug)]
pub struct Caller {
    /// Name and role.
    pub identity: CertIdentity,
    /// The certificate, DER.
    pub cert: Arc<[u8]>,
}

impl Caller {
    /// Refuses the call unless the caller holds `role`.
    pub fn require(&self, role: Role) -> Result<&Self, tonic::Status> {
        if self.identity.role == role {
            Ok(self)
        } else {
            Err(tonic::Status::permission_denied(format!(
                "{} holds a {} certificate; this needs a {role}'s",
                self.identity.name, self.identity.role
            )))
        }
    }
}

/// The verified caller of `req` under `security` (`None` in insecure dev mode, where nobody is
/// authenticated).
pub fn caller<T>(
    security: &Security,
    req: &tonic::Request<T>,
) -> Result<Option<Caller>, tonic::Status> {
    match security {
        Security::InsecureDev => Ok(None),
        Security::Tls(_) => {
            let certs = req
                .peer_certs()
                .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
            let first = certs
                .first()
                .ok_or_else(|| tonic::Status::unauthenticated("no client certificate"))?;
            let identity = privet_identity::identity_of(first.as_ref())
                .map_err(|e| tonic::Status::unauthenticated(e.to_string()))?;
            Ok(Some(Caller {
                identity,
                cert: Arc::from(first.as_ref()),
            }))
        }
    }
}
