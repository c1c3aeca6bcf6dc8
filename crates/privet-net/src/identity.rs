//! The key directory that secure aggregation reads its participants' identity keys from.
//!
//! Where those keys come from is `privet-identity`'s business: the coordinator takes them from
//! the certificates its TLS handshakes verified, and a node from the certificates the
//! coordinator relays, after checking each against its own CA and the job's node list
//! ([`privet_identity::PeerVerifier`]).

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use privet_fl::ClientId;
use privet_secagg::{KeyDirectory, VerifyingKey};

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
