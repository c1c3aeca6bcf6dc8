//! Certificates and keys (privet-identity, privet-transport). The first byte picks a mode:
//! - even: the rest is a DER certificate, parsed for its identity (name, role) and Ed25519 key
//!   and checked against a federation CA made once per process (as a node checks the
//!   certificates the coordinator relays);
//! - odd: the rest is split at its first `\0` into a certificate PEM file and a key PEM file,
//!   loaded as a node loads its own (`load_signing_key`, `own_identity`, `client_config`).

use std::path::PathBuf;
use std::sync::OnceLock;

use privet_identity::{
    Name, PeerVerifier, TlsFiles, certified_key, identity_of, init_ca, load_signing_key,
    own_identity,
};

fn setup() -> &'static (PathBuf, PeerVerifier) {
    static V: OnceLock<(PathBuf, PeerVerifier)> = OnceLock::new();
    V.get_or_init(|| {
        let dir: PathBuf = crate::scratch_dir("certificate");
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = init_ca(&dir, "fuzz", 30, true).expect("CA");
        let verifier = PeerVerifier::new(&ca).expect("verifier");
        (dir, verifier)
    })
}

/// One fuzz input (see the module docs).
pub fn run(data: &[u8]) {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (dir, verifier) = setup();
    if mode % 2 == 0 {
        let _ = identity_of(rest);
        let _ = certified_key(rest);
        let _ = verifier.identify(rest);
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let (cert, key) = rest.split_at(split);
        let Ok(name) = "node-1".parse::<Name>() else {
            return;
        };
        let files = TlsFiles::in_dir(dir, &name);
        if std::fs::write(&files.cert, cert).is_err()
            || std::fs::write(&files.key, key.get(1..).unwrap_or_default()).is_err()
        {
            return;
        }
        let _ = load_signing_key(&files);
        let _ = own_identity(&files);
        let _ = privet_transport::client_config(&files);
    }
}
