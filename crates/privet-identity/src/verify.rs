//! Checking certificates that others offer.

use std::path::Path;
use std::sync::Arc;

use ed25519_dalek::VerifyingKey;
use rustls::pki_types::{CertificateDer, UnixTime};
use rustls::server::danger::ClientCertVerifier;

use crate::{CertIdentity, IdentityError, Role, ca_roots, certified_key, identity_of};

/// Checks peers' certificates against the federation CA: the chain, the validity period and
/// the client usage (as a TLS server would), then the role and the name.
#[derive(Debug, Clone)]
pub struct PeerVerifier {
    verifier: Arc<dyn ClientCertVerifier>,
}

impl PeerVerifier {
    /// A verifier trusting the CA certificate in `ca`.
    pub fn new(ca: &Path) -> Result<Self, IdentityError> {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let verifier = rustls::server::WebPkiClientVerifier::builder_with_provider(
            Arc::new(ca_roots(ca)?),
            provider,
        )
        .build()
        .map_err(|e| IdentityError::Certificate(format!("certificate verifier: {e}")))?;
        Ok(PeerVerifier { verifier })
    }

    /// The identity of `cert` if it chains to the CA and is valid now.
    pub fn identify(&self, cert: &[u8]) -> Result<CertIdentity, IdentityError> {
        let der = CertificateDer::from(cert);
        self.verifier
            .verify_client_cert(&der, &[], UnixTime::now())
            .map_err(|e| IdentityError::Certificate(format!("certificate refused: {e}")))?;
        identity_of(cert)
    }

    /// The signing key of `cert` if it chains to the CA, is valid now, is a node's, and names
    /// `expected`.
    pub fn verify_node(&self, cert: &[u8], expected: &str) -> Result<VerifyingKey, IdentityError> {
        let id = self.identify(cert).map_err(|e| {
            IdentityError::Certificate(format!("certificate for {expected:?} refused: {e}"))
        })?;
        if id.name != expected {
            return Err(IdentityError::Certificate(format!(
                "the certificate offered for {expected:?} names {:?}",
                id.name.as_str()
            )));
        }
        if id.role != Role::Node {
            return Err(IdentityError::Certificate(format!(
                "the certificate offered for {expected:?} is a {}'s, not a node's",
                id.role
            )));
        }
        certified_key(cert)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::{Name, init_ca, issue, load_certs, load_signing_key, own_identity};

    fn name(s: &str) -> Name {
        s.parse().unwrap()
    }

    #[test]
    fn a_node_certificate_certifies_its_signing_key_and_role() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let files = issue(dir.path(), &name("alice"), Role::Node, &[], 30, false).unwrap();
        let key = load_signing_key(&files).unwrap();
        let cert = load_certs(&files.cert).unwrap();
        let verifier = PeerVerifier::new(&files.ca).unwrap();
        assert_eq!(
            verifier.verify_node(cert[0].as_ref(), "alice").unwrap(),
            key.verifying_key()
        );
        // The right certificate offered under another node's name is refused.
        let err = verifier.verify_node(cert[0].as_ref(), "bob").unwrap_err();
        assert!(err.to_string().contains("names \"alice\""), "{err}");
        assert_eq!(own_identity(&files).unwrap().role, Role::Node);
    }

    #[test]
    fn a_coordinator_or_operator_certificate_is_not_a_node() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let verifier = PeerVerifier::new(&dir.path().join("ca.pem")).unwrap();
        let coord = issue(
            dir.path(),
            &name("coordinator"),
            Role::Coordinator,
            &["localhost".into()],
            30,
            false,
        )
        .unwrap();
        let op = issue(dir.path(), &name("admin"), Role::Operator, &[], 30, false).unwrap();
        for (files, n, role) in [
            (coord, "coordinator", "coordinator"),
            (op, "admin", "operator"),
        ] {
            let cert = load_certs(&files.cert).unwrap();
            let err = verifier.verify_node(cert[0].as_ref(), n).unwrap_err();
            assert!(err.to_string().contains(&format!("a {role}'s")), "{err}");
        }
    }

    #[test]
    fn a_certificate_from_another_ca_is_refused() {
        let ours = tempfile::tempdir().unwrap();
        let theirs = tempfile::tempdir().unwrap();
        init_ca(ours.path(), "ours", 30, false).unwrap();
        init_ca(theirs.path(), "theirs", 30, false).unwrap();
        let forged = issue(theirs.path(), &name("alice"), Role::Node, &[], 30, false).unwrap();
        let cert = load_certs(&forged.cert).unwrap();
        let verifier = PeerVerifier::new(&ours.path().join("ca.pem")).unwrap();
        let err = verifier.verify_node(cert[0].as_ref(), "alice").unwrap_err();
        assert!(err.to_string().contains("refused"), "{err}");
    }

    #[test]
    fn zero_days_and_hosts_on_a_node_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        assert!(init_ca(dir.path(), "test", 0, false).is_err());
        init_ca(dir.path(), "test", 30, false).unwrap();
        let err = issue(dir.path(), &name("a"), Role::Node, &[], 0, false).unwrap_err();
        assert!(err.to_string().contains("already expired"), "{err}");
        let err = issue(dir.path(), &name("a"), Role::Node, &["h".into()], 1, false).unwrap_err();
        assert!(err.to_string().contains("--host"), "{err}");
        assert!(issue(dir.path(), &name("ca"), Role::Node, &[], 1, false).is_err());
    }

    #[test]
    fn a_key_that_does_not_match_the_certificate_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let a = issue(dir.path(), &name("a"), Role::Node, &[], 30, false).unwrap();
        let b = issue(dir.path(), &name("b"), Role::Node, &[], 30, false).unwrap();
        let mixed = crate::TlsFiles { key: b.key, ..a };
        let err = own_identity(&mixed).unwrap_err();
        assert!(err.to_string().contains("does not hold the key"), "{err}");
    }

    #[test]
    fn garbage_files_are_clear_errors() {
        let dir = tempfile::tempdir().unwrap();
        init_ca(dir.path(), "test", 30, false).unwrap();
        let files = issue(dir.path(), &name("a"), Role::Node, &[], 30, false).unwrap();
        std::fs::write(&files.cert, "-----BEGIN CERTIFICATE-----\nnot base64!\n").unwrap();
        assert!(own_identity(&files).is_err());
        std::fs::write(&files.cert, b"\x00\x01garbage").unwrap();
        let err = own_identity(&files).unwrap_err();
        assert!(err.to_string().contains("a.pem"), "{err}");
        std::fs::remove_file(&files.key).unwrap();
        assert!(load_signing_key(&files).is_err());
    }
}
