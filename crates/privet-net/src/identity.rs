//! Nodes' long-term signing identities for secure aggregation, taken from their certificates.
//!
//! SecAgg+ signs each client's round keys with a long-term Ed25519 key so that the coordinator
//! cannot substitute keys of its own and sit in the middle of two clients (Bell et al. 2020,
//! the "malicious key distribution" attack). Those keys must therefore be certified by someone
//! other than the coordinator. privet uses the federation CA that already certifies every
//! node's name: `privet certs issue` makes Ed25519 certificates, and the certificate's key *is*
//! the node's identity key.
//!
//! - A node signs with its own TLS private key ([`load_signing_key`]). Signed SecAgg+ messages
//!   start with `privet-secagg/v1/`, and TLS 1.3 signs only messages that start with 64 spaces,
//!   so one key cannot be tricked into signing for the other protocol.
//! - The coordinator relays the certificates of a round's participants (a `PeerCertificates`
//!   message). A node accepts a certificate only if it chains to its own CA, is valid now, is a
//!   client certificate, and names the node the job lists at that client index
//!   ([`PeerVerifier`]); only then does its key enter the node's [`PeerKeys`]. A coordinator
//!   that forges or swaps certificates is caught here.
//! - The coordinator takes keys from the certificates its TLS handshakes verified.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, RwLock};

use privet_fl::ClientId;
use privet_secagg::{KeyDirectory, SigningKey, VerifyingKey};
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;
use zeroize::Zeroizing;

use crate::error::NetError;
use crate::tls::{TlsFiles, load_certs, peer_name, provider, read_small, roots};

/// The object identifier of Ed25519 keys (RFC 8410).
const OID_ED25519: &str = "1.3.101.112";

fn tls_err(what: impl Into<String>) -> NetError {
    NetError::Tls(what.into())
}

/// The Ed25519 identity key a (parsed) certificate certifies.
pub fn certified_key(cert: &[u8]) -> Result<VerifyingKey, NetError> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert)
        .map_err(|e| tls_err(format!("unparsable certificate: {e}")))?;
    let spki = &parsed.tbs_certificate.subject_pki;
    if spki.algorithm.algorithm.to_id_string() != OID_ED25519 {
        return Err(tls_err(
            "the certificate's key is not Ed25519, so it cannot sign for secure aggregation \
             (certificates from privet before 0.1 were ECDSA: reissue it with \
             `privet certs issue NAME --force`)",
        ));
    }
    let bytes: [u8; 32] = spki
        .subject_public_key
        .data
        .as_ref()
        .try_into()
        .map_err(|_| tls_err("an Ed25519 key must be 32 bytes"))?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| tls_err("invalid Ed25519 public key"))
}

/// Loads a peer's own signing identity: the Ed25519 private key of its certificate, checked
/// against the certificate.
pub fn load_signing_key(files: &TlsFiles) -> Result<SigningKey, NetError> {
    use ed25519_dalek::pkcs8::DecodePrivateKey;
    let pem = Zeroizing::new(read_small(&files.key)?);
    let der = Zeroizing::new(
        match rustls_pemfile::read_one(&mut pem.as_slice())
            .map_err(|e| tls_err(format!("{}: not a PEM key: {e}", files.key.display())))?
        {
            Some(rustls_pemfile::Item::Pkcs8Key(k)) => k.secret_pkcs8_der().to_vec(),
            _ => {
                return Err(tls_err(format!(
                    "{}: not a PKCS#8 private key",
                    files.key.display()
                )));
            }
        },
    );
    let key = SigningKey::from_pkcs8_der(&der).map_err(|_| {
        tls_err(format!(
            "{}: not an Ed25519 key, so it cannot sign for secure aggregation (reissue the \
             certificate with `privet certs issue NAME --force`)",
            files.key.display()
        ))
    })?;
    let certs = load_certs(&files.cert)?;
    let leaf = certs
        .first()
        .ok_or_else(|| tls_err(format!("{}: no certificate", files.cert.display())))?;
    let own = certified_key(leaf.as_ref())?;
    if own != key.verifying_key() {
        return Err(tls_err(format!(
            "{} does not hold the key of {}",
            files.key.display(),
            files.cert.display()
        )));
    }
    Ok(key)
}

/// Checks other nodes' certificates against the federation CA.
#[derive(Debug, Clone)]
pub struct PeerVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl PeerVerifier {
    /// A verifier trusting the CA certificate in `ca`.
    pub fn new(ca: &Path) -> Result<Self, NetError> {
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(roots(ca)?),
            provider(),
        )
        .build()
        .map_err(|e| tls_err(format!("certificate verifier: {e}")))?;
        Ok(PeerVerifier { verifier })
    }

    /// The identity key of `cert` if it chains to the CA, is valid now, is a client
    /// certificate and names `expected`.
    pub fn verify(&self, cert: &[u8], expected: &str) -> Result<VerifyingKey, NetError> {
        let der = CertificateDer::from(cert);
        self.verifier
            .verify_client_cert(&der, &[], UnixTime::now())
            .map_err(|e| tls_err(format!("certificate for {expected:?} refused: {e}")))?;
        let name = peer_name(&der)?;
        if name != expected {
            return Err(tls_err(format!(
                "the certificate offered for {expected:?} names {name:?}"
            )));
        }
        certified_key(cert)
    }
}

/// A key directory that fills as certificates arrive, shared by a protocol and its I/O.
#[derive(Debug, Clone, Default)]
pub struct PeerKeys(Arc<RwLock<BTreeMap<ClientId, VerifyingKey>>>);

impl PeerKeys {
    /// Enrols (or replaces, after a certificate renewal) `client`'s key.
    pub fn insert(&self, client: ClientId, key: VerifyingKey) {
        self.0
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(client, key);
    }

    /// Whether `client` is enrolled with exactly `key`.
    pub fn has(&self, client: ClientId, key: &VerifyingKey) -> bool {
        self.verifying_key(client).as_ref() == Some(key)
    }
}

impl KeyDirectory for PeerKeys {
    fn verifying_key(&self, client: ClientId) -> Option<VerifyingKey> {
        self.0
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .get(&client)
            .copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tls::{Role, init_ca, issue};

    #[test]
    fn a_node_certificate_certifies_its_signing_key() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let files = issue(dir.path(), "alice", Role::Client, &[], 30, false).unwrap();
        let key = load_signing_key(&files).unwrap();
        let cert = load_certs(&files.cert).unwrap();
        let verifier = PeerVerifier::new(&files.ca).unwrap();
        assert_eq!(
            verifier.verify(cert[0].as_ref(), "alice").unwrap(),
            key.verifying_key()
        );
        // The right certificate offered under another node's name is refused.
        let err = verifier.verify(cert[0].as_ref(), "bob").unwrap_err();
        assert!(err.to_string().contains("names \"alice\""), "{err}");
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        init_ca(ours.path(), "ours", 30, false).unwrap();
        init_ca(theirs.path(), "theirs", 30, false).unwrap();
        let forged = issue(theirs.path(), "alice", Role::Client, &[], 30, false).unwrap();
        let cert = load_certs(&forged.cert).unwrap();
        let verifier = PeerVerifier::new(&ours.path().join("ca.pem")).unwrap();
        let err = verifier.verify(cert[0].as_ref(), "alice").unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
        assert!(PeerVerifier::new(&ours.path().join("ca.pem")).is_ok());
    }

    #[test]
    fn a_key_that_is_not_the_certificates_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let alice = issue(dir.path(), "alice", Role::Client, &[], 30, false).unwrap();
        let bob = issue(dir.path(), "bob", Role::Client, &[], 30, false).unwrap();
        let mixed = TlsFiles {
            key: bob.key.clone(),
            ..alice
        };
        let err = load_signing_key(&mixed).unwrap_err();
        assert!(err.to_string().contains("does not hold the key"), "{err}");
        // An ECDSA key (the CA's) cannot be an identity.
        let ca_as_peer = TlsFiles {
            key: dir.path().join("ca.key"),
            cert: dir.path().join("ca.pem"),
            ca: dir.path().join("ca.pem"),
        };
        let err = load_signing_key(&ca_as_peer).unwrap_err();
        assert!(err.to_string().contains("not an Ed25519 key"), "{err}");
        let ca_cert = load_certs(&dir.path().join("ca.pem")).unwrap();
        assert!(certified_key(ca_cert[0].as_ref()).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_panic() {
        assert!(certified_key(b"not a certificate").is_err());
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let verifier = PeerVerifier::new(&dir.path().join("ca.pem")).unwrap();
        assert!(verifier.verify(&[0u8; 10], "alice").is_err());
        assert!(verifier.verify(&[], "alice").is_err());
    }
}
