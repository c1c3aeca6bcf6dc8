//! Certificates and keys (privet-net identity and tls). The first byte picks a mode:
//! - even: the rest is a DER certificate, parsed for the peer name and the Ed25519 identity
//!   key and verified against a federation CA made once per process (as a node checks the
//!   certificates the coordinator relays);
//! - odd: the rest is split at its first `\0` into a certificate PEM file and a key PEM file,
//!   loaded as a node loads its own (`load_signing_key`, `client_config`).
#![no_main]

use std::path::PathBuf;
use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use privet_net::identity::{PeerVerifier, certified_key, load_signing_key};
use privet_net::tls::{TlsFiles, client_config, init_ca, peer_name};
use rustls_pki_types::CertificateDer;

fn setup() -> &'static (PathBuf, PeerVerifier) {
    static V: OnceLock<(PathBuf, PeerVerifier)> = OnceLock::new();
    V.get_or_init(|| {
        let dir: PathBuf =
            std::env::temp_dir().join(format!("privet-fuzz-ca-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let ca = init_ca(&dir, "fuzz", 30, true).expect("CA");
        let verifier = PeerVerifier::new(&ca).expect("verifier");
        (dir, verifier)
    })
}

fuzz_target!(|data: &[u8]| {
    let Some((&mode, rest)) = data.split_first() else {
        return;
    };
    let (dir, verifier) = setup();
    if mode % 2 == 0 {
        let _ = peer_name(&CertificateDer::from(rest));
        let _ = certified_key(rest);
        let _ = verifier.verify(rest, "node-1");
    } else {
        let split = rest.iter().position(|&b| b == 0).unwrap_or(rest.len());
        let (cert, key) = rest.split_at(split);
        let files = TlsFiles::in_dir(dir, "node-1");
        if std::fs::write(&files.cert, cert).is_err()
            || std::fs::write(&files.key, key.get(1..).unwrap_or_default()).is_err()
        {
            return;
        }
        let _ = load_signing_key(&files);
        let _ = client_config(&files);
    }
});
