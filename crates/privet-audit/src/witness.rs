//! What a node keeps of the coordinator's log: the last signed head it saw.

use ed25519_dalek::VerifyingKey;
use privet_identity::Name;

use crate::AuditError;
use crate::log::{Entry, SignedTreeHead};
use crate::merkle::{ConsistencyProof, InclusionProof};

/// A node's memory of one coordinator's log. On every new head the coordinator shows it (at
/// every connection), the node checks the signature and a consistency proof from the last head
/// it kept; a coordinator that truncated, forked or rewrote its log is caught and named.
/// The node persists [`HeadWitness::last`] (e.g. as a head file, see
/// [`head_to_json`](crate::head_to_json)) and resumes from it.
#[derive(Clone, Debug)]
pub struct HeadWitness {
    coordinator: Name,
    key: VerifyingKey,
    last: Option<SignedTreeHead>,
}

impl HeadWitness {
    /// A witness that has seen nothing yet of `coordinator`, whose key (from its certificate or
    /// the agreement) is `key`.
    pub fn new(coordinator: Name, key: VerifyingKey) -> HeadWitness {
        HeadWitness {
            coordinator,
            key,
            last: None,
        }
    }

    /// A witness resuming from the head it kept (checked again).
    pub fn resume(
        coordinator: Name,
        key: VerifyingKey,
        last: SignedTreeHead,
    ) -> Result<HeadWitness, AuditError> {
        let mut w = HeadWitness::new(coordinator, key);
        w.check_signed(&last)?;
        w.last = Some(last);
        Ok(w)
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &Name {
        &self.coordinator
    }

    /// The last head accepted.
    pub fn last(&self) -> Option<&SignedTreeHead> {
        self.last.as_ref()
    }

    /// The size the coordinator must prove consistency from: the last head's (0 before any).
    pub fn proof_from(&self) -> u64 {
        self.last.as_ref().map_or(0, |h| h.head.size)
    }

    fn check_signed(&self, head: &SignedTreeHead) -> Result<(), AuditError> {
        if head.head.coordinator != self.coordinator {
            return Err(AuditError::WrongCoordinator {
                expected: self.coordinator.clone(),
                got: head.head.coordinator.clone(),
            });
        }
        head.verify(&self.key)
    }

    /// Checks a new head and the proof that it extends the last one (from
    /// [`HeadWitness::proof_from`] to the new head's size); keeps it if both hold. Nothing
    /// changes on an error.
    pub fn observe(
        &mut self,
        head: &SignedTreeHead,
        proof: &ConsistencyProof,
    ) -> Result<(), AuditError> {
        self.check_signed(head)?;
        if let Some(old) = &self.last {
            let (o, n) = (&old.head, &head.head);
            if n.size < o.size {
                return Err(AuditError::Truncated {
                    coordinator: self.coordinator.clone(),
                    signed: o.size,
                    now: n.size,
                });
            }
            if n.size == o.size {
                if n.root != o.root {
                    return Err(AuditError::Forked {
                        coordinator: self.coordinator.clone(),
                        size: n.size,
                        a: o.root.to_hex(),
                        b: n.root.to_hex(),
                    });
                }
                // The same tree, perhaps signed again later: keep the later signature.
                if n.time >= o.time {
                    self.last = Some(head.clone());
                }
                return Ok(());
            }
            if proof.old_size != o.size || proof.new_size != n.size {
                return Err(AuditError::Proof(format!(
                    "coordinator {} sent a consistency proof from {} to {} entries, but this node needs one from {} to {}",
                    self.coordinator, proof.old_size, proof.new_size, o.size, n.size
                )));
            }
            proof
                .verify(&o.root, &n.root)
                .map_err(|_| AuditError::Rewritten {
                    coordinator: self.coordinator.clone(),
                    old_size: o.size,
                    new_size: n.size,
                })?;
        }
        self.last = Some(head.clone());
        Ok(())
    }

    /// Checks that `entry` is in the log under the last head kept (e.g. a receipt for a round
    /// this node took part in).
    pub fn check_inclusion(&self, entry: &Entry, proof: &InclusionProof) -> Result<(), AuditError> {
        let last = self.last.as_ref().ok_or_else(|| {
            AuditError::Proof(format!(
                "no signed head of coordinator {} seen yet",
                self.coordinator
            ))
        })?;
        last.verify_inclusion(entry, proof)
    }
}
