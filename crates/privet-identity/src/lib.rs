//! # privet-identity: who is who in a federation
//!
//! Every party of a privet federation (the coordinator, each data-owner node, each operator who
//! submits jobs) holds a certificate from the federation's own certificate authority
//! (`privet certs init`, `privet certs issue`). The certificate carries three facts, all signed
//! by the CA:
//!
//! - the party's **name** ([`Name`]): its common name, validated once here and used as a node's
//!   identity everywhere (job files, logs, the store);
//! - its **role** ([`Role`]): coordinator, node or operator, as a URI in the certificate's
//!   subject alternative names, `spiffe://privet/ROLE/NAME` (the SPIFFE ID form), so a node
//!   certificate cannot run a coordinator and a coordinator's certificate cannot join as a node;
//! - its **signing identity**: peers' keys are Ed25519, so the certificate also certifies the key
//!   a node signs its secure-aggregation keys with ([`certified_key`], [`load_signing_key`]).
//!
//! [`PeerVerifier`] checks a certificate offered by someone else (relayed by the coordinator)
//! against the CA: chain, validity period, role and name. Nothing here does network I/O; the
//! TLS configurations that use these files are in `privet-transport`.
//!
//! ```
//! # fn main() -> Result<(), privet_identity::IdentityError> {
//! use privet_identity::{Name, Role, init_ca, issue, load_signing_key};
//! let dir = tempfile::tempdir().unwrap();
//! init_ca(dir.path(), "hospitals", 365, false)?;
//! let alice: Name = "hospital-a".parse()?;
//! let files = issue(dir.path(), &alice, Role::Node, &[], 30, false)?;
//! let identity = privet_identity::own_identity(&files)?;
//! assert_eq!((identity.name.as_str(), identity.role), ("hospital-a", Role::Node));
//! let key = load_signing_key(&files)?; // the Ed25519 key the certificate certifies
//! # let _ = key;
//! # Ok(())
//! # }
//! ```

mod ca;
mod cert;
mod error;
mod name;
mod verify;

pub use ca::{init_ca, issue};
pub use cert::{
    CertIdentity, TlsFiles, ca_roots, certified_key, identity_of, load_certs, load_private_key,
    load_signing_key, own_identity,
};
pub use ed25519_dalek::{SigningKey, VerifyingKey};
pub use error::IdentityError;
pub use name::{Name, Role};
pub use verify::PeerVerifier;

/// Largest certificate or key file read.
pub const MAX_PEM_BYTES: u64 = 64 << 10;
