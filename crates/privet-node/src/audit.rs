//! A node's own check of data-sharing agreements, and its memory of the coordinator's log.
//!
//! With an `[audit]` section in `node.toml`, the node holds its own copies of the agreements it
//! signed and, before anything leaves it for a job (its feature summary, every round's answer),
//! checks the job against them at the egress chokepoint: the coordinator admitted the job, but
//! the node's copy and its stricter local policy have the last word ([`NodeAudit::check_job`],
//! [`NodeAudit::check_round`]). The privacy budget each admitted job may spend is reserved in
//! the node's own ledger (`ledger.json` in the audit directory), so the agreement's total
//! counts across jobs and restarts as this node sees it.
//!
//! The node also keeps the last signed tree head of the coordinator's audit log
//! (`coordinator-head.json`). Every `Welcome` must carry a newer head with a consistency proof
//! from it ([`NodeAudit::witness`]); a coordinator that truncated, forked or rewrote its log
//! is named and the node stops. The first head is trusted on first use, unless the node's
//! agreements name a coordinator, whose key must then sign it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use privet_audit::{
    Agreement, ConsistencyProof, DpBudget, Hash, HeadWitness, RecordedRefusal, Refusal, Timestamp,
    head_from_json, head_to_json, load_head,
};
use privet_identity::{Name, VerifyingKey};
use privet_job::{CheckContext, Job};
use serde::{Deserialize, Serialize};

use crate::error::NodeError;

const LEDGER_FORMAT: &str = "privet-node-ledger";
const LEDGER_VERSION: u32 = 1;
const MAX_LEDGER_BYTES: u64 = 16 << 20;
const MAX_PROOF_HASHES: usize = 64;

/// `[audit]` in `node.toml`.
#[derive(Clone, Debug, PartialEq)]
pub struct AuditConfig {
    /// The node's own copies of the agreements it takes part in.
    pub agreements: Vec<PathBuf>,
    /// Directory of the privacy ledger and the coordinator's last signed head.
    pub dir: PathBuf,
    /// Refuse jobs that name no agreement (default: true).
    pub require_agreement: bool,
    /// Local policy stricter than any agreement: refuse jobs without secure aggregation.
    pub require_secure_aggregation: bool,
    /// Local policy: refuse jobs whose DP budget is over this epsilon (or that have none).
    pub max_epsilon_per_job: Option<f64>,
}

/// Why the node refuses a job or a round: a stable code and one line (no data).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRefusal {
    /// `expired`, `secagg_required`, `local_policy`...
    pub code: String,
    /// One line for the coordinator's log and this node's.
    pub reason: String,
}

impl NodeRefusal {
    fn local(reason: String) -> NodeRefusal {
        NodeRefusal {
            code: "local_policy".into(),
            reason: format!("this node's policy: {reason}"),
        }
    }
}

impl From<&Refusal> for NodeRefusal {
    fn from(r: &Refusal) -> Self {
        let recorded = RecordedRefusal::from(r);
        NodeRefusal {
            code: recorded.code().to_string(),
            reason: recorded.reason().to_string(),
        }
    }
}

impl std::fmt::Display for NodeRefusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "refused under the data-sharing agreement ({}): {}",
            self.code, self.reason
        )
    }
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct LedgerFile {
    format: String,
    format_version: u32,
    jobs: Vec<Reserved>,
}

/// A job's reserved budget under an agreement.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Reserved {
    job: String,
    agreement: String,
    hash: String,
    epsilon: f64,
    delta: f64,
}

/// A node's agreements, policy, ledger and head witness.
#[derive(Debug)]
pub struct NodeAudit {
    config: AuditConfig,
    agreements: Vec<Agreement>,
    ledger: Vec<Reserved>,
    witness: Option<HeadWitness>,
    /// The agreement (hash) each checked job runs under.
    jobs: BTreeMap<String, Hash>,
}

fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Timestamp::from_unix(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

impl NodeAudit {
    fn ledger_path(&self) -> PathBuf {
        self.config.dir.join("ledger.json")
    }

    fn head_path(dir: &Path) -> PathBuf {
        dir.join("coordinator-head.json")
    }

    /// Loads the agreements (each must parse), the ledger and the last head kept.
    pub fn load(config: AuditConfig) -> Result<NodeAudit, NodeError> {
        let agreements = config
            .agreements
            .iter()
            .map(|p| Agreement::load(p))
            .collect::<Result<Vec<_>, _>>()?;
        std::fs::create_dir_all(&config.dir).map_err(|e| {
            NodeError::Config(format!(
                "[audit] dir {}: cannot create it: {e}",
                config.dir.display()
            ))
        })?;
        let mut audit = NodeAudit {
            config,
            agreements,
            ledger: Vec::new(),
            witness: None,
            jobs: BTreeMap::new(),
        };
        let ledger = audit.ledger_path();
        if ledger.exists() {
            let text = privet_files::read_text(&ledger, MAX_LEDGER_BYTES)?;
            let file: LedgerFile = serde_json::from_str(&text).map_err(|e| {
                NodeError::Config(format!("{}: not a privacy ledger: {e}", ledger.display()))
            })?;
            if file.format != LEDGER_FORMAT || file.format_version != LEDGER_VERSION {
                return Err(NodeError::Config(format!(
                    "{}: format {:?} version {} (this privet reads {LEDGER_FORMAT} version {LEDGER_VERSION})",
                    ledger.display(),
                    file.format,
                    file.format_version
                )));
            }
            audit.ledger = file.jobs;
        }
        let head = Self::head_path(&audit.config.dir);
        if head.exists() {
            let (last, key) = load_head(&head)?;
            audit.witness = Some(HeadWitness::resume(
                last.head.coordinator.clone(),
                key,
                last,
            )?);
        }
        Ok(audit)
    }

    /// The size of the coordinator's log under the last head kept (`None`: none kept yet).
    pub fn audit_from(&self) -> Option<u64> {
        self.witness
            .as_ref()
            .and_then(|w| w.last().map(|h| h.head.size))
    }

    /// Checks the coordinator's head and consistency proof from a `Welcome` and keeps the
    /// head. Any inconsistency is an error naming the coordinator: the node must stop.
    pub fn witness(&mut self, head_json: &str, proof: &[bytes::Bytes]) -> Result<(), NodeError> {
        if head_json.is_empty() {
            return match &self.witness {
                Some(w) => Err(NodeError::Audit(format!(
                    "coordinator {} no longer shows its audit log (this node kept a signed head \
                     of {} entries)",
                    w.coordinator(),
                    w.proof_from()
                ))),
                None => Ok(()),
            };
        }
        let (head, key) = head_from_json(head_json).map_err(|e| NodeError::Audit(e.to_string()))?;
        self.check_coordinator_key(&head.head.coordinator, &key)?;
        let mut witness = match self.witness.take() {
            Some(w) => w,
            None => HeadWitness::new(head.head.coordinator.clone(), key),
        };
        if proof.len() > MAX_PROOF_HASHES {
            self.witness = Some(witness);
            return Err(NodeError::Audit(
                "a consistency proof longer than 64 hashes".into(),
            ));
        }
        let path = proof
            .iter()
            .map(|b| <[u8; 32]>::try_from(b.as_ref()).map(Hash))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| NodeError::Audit("a consistency-proof hash is not 32 bytes".into()));
        let result = path.and_then(|path| {
            let proof = ConsistencyProof {
                old_size: witness.proof_from(),
                new_size: head.head.size,
                path,
            };
            witness
                .observe(&head, &proof)
                .map_err(|e| NodeError::Audit(e.to_string()))
        });
        let kept = witness.last().cloned();
        self.witness = Some(witness);
        result?;
        if let Some(last) = kept {
            privet_files::write_atomic(
                &Self::head_path(&self.config.dir),
                head_to_json(&last, &key).as_bytes(),
                privet_files::Mode::Public,
            )?;
        }
        Ok(())
    }

    /// If this node's agreements name a coordinator, its log must be signed with that key.
    fn check_coordinator_key(&self, name: &Name, key: &VerifyingKey) -> Result<(), NodeError> {
        let named: Vec<&privet_audit::Party> = self
            .agreements
            .iter()
            .flat_map(|a| a.body().parties.iter())
            .filter(|p| p.role == privet_audit::PartyRole::Coordinator)
            .collect();
        if named.is_empty() || named.iter().any(|p| p.name == *name && p.key == *key) {
            return Ok(());
        }
        Err(NodeError::Audit(format!(
            "coordinator {name} signs its audit log with a key that no agreement of this node \
             gives it"
        )))
    }

    fn spent_by_others(&self, agreement: &Name, job_id: &str) -> Result<DpBudget, NodeError> {
        let (e, d) = self
            .ledger
            .iter()
            .filter(|r| r.agreement == agreement.as_str() && r.job != job_id)
            .fold((0.0, 0.0), |(e, d), r| (e + r.epsilon, d + r.delta));
        DpBudget::new(e, d.min(1.0)).map_err(NodeError::from)
    }

    /// The coordinator as this node knows it: from the last head it kept, else the agreement's.
    fn coordinator(&self, agreement: &Agreement) -> Option<Name> {
        self.witness
            .as_ref()
            .map(|w| w.coordinator().clone())
            .or_else(|| {
                agreement
                    .body()
                    .parties
                    .iter()
                    .find(|p| p.role == privet_audit::PartyRole::Coordinator)
                    .map(|p| p.name.clone())
            })
    }

    /// Checks a job against this node's copy of its agreement and its local policy, and
    /// reserves its DP budget in the ledger. `Ok(Err(..))` is a refusal to send to the
    /// coordinator; `Err` is a local failure (the ledger cannot be written).
    pub fn check_job(
        &mut self,
        job_id: &str,
        job: &Job,
    ) -> Result<Result<(), NodeRefusal>, NodeError> {
        if self.config.require_secure_aggregation && job.secure_aggregation.is_none() {
            return Ok(Err(NodeRefusal::local(
                "jobs must use secure aggregation".into(),
            )));
        }
        if let Some(max) = self.config.max_epsilon_per_job {
            let over = match job.dp_maximum() {
                Ok(Some(dp)) => dp.epsilon() > max,
                _ => true,
            };
            if over {
                return Ok(Err(NodeRefusal::local(format!(
                    "a job may spend at most epsilon {max}, and this one declares more (or no \
                     maximum)"
                ))));
            }
        }
        let Some(wanted) = &job.agreement else {
            if self.config.require_agreement {
                return Ok(Err(NodeRefusal {
                    code: "no_agreement".into(),
                    reason: "this node takes part only in jobs under a signed data-sharing \
                             agreement"
                        .into(),
                }));
            }
            return Ok(Ok(()));
        };
        let Some(agreement) = wanted.select(&self.agreements) else {
            return Ok(Err(NodeRefusal {
                code: "unknown_agreement".into(),
                reason: format!("this node holds no copy of agreement {}", wanted.id),
            }));
        };
        let Some(coordinator) = self.coordinator(agreement) else {
            return Ok(Err(NodeRefusal {
                code: "not_a_party".into(),
                reason: "the agreement names no coordinator".into(),
            }));
        };
        let ctx = CheckContext {
            coordinator,
            operator: None,
            now: now(),
            spent: self.spent_by_others(agreement.id(), job_id)?,
        };
        let request = match job.agreement_request(&ctx) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Ok(())),
            Err(e) => {
                return Ok(Err(NodeRefusal {
                    code: "invalid_job".into(),
                    reason: e.to_string(),
                }));
            }
        };
        if let Err(refusal) = agreement.permits(&request) {
            return Ok(Err(NodeRefusal::from(&refusal)));
        }
        let hash = agreement.hash();
        if let Some(dp) = request.dp
            && !self.ledger.iter().any(|r| r.job == job_id)
        {
            self.ledger.push(Reserved {
                job: job_id.to_string(),
                agreement: agreement.id().to_string(),
                hash: hash.to_hex(),
                epsilon: dp.epsilon(),
                delta: dp.delta(),
            });
            if let Err(e) = self.save_ledger() {
                self.ledger.pop();
                return Err(e);
            }
        }
        self.jobs.insert(job_id.to_string(), hash);
        Ok(Ok(()))
    }

    /// Before each round's answer: the agreement the job was admitted under must still be in
    /// force (signed, not expired).
    pub fn check_round(&self, job_id: &str) -> Result<(), NodeRefusal> {
        let Some(hash) = self.jobs.get(job_id) else {
            return Ok(());
        };
        match self.agreements.iter().find(|a| a.hash() == *hash) {
            Some(a) => a.in_force(now()).map_err(|r| NodeRefusal::from(&r)),
            None => Ok(()),
        }
    }

    fn save_ledger(&self) -> Result<(), NodeError> {
        let file = LedgerFile {
            format: LEDGER_FORMAT.into(),
            format_version: LEDGER_VERSION,
            jobs: self.ledger.clone(),
        };
        let text = serde_json::to_string_pretty(&file)
            .map_err(|e| NodeError::Config(format!("privacy ledger: {e}")))?;
        privet_files::write_atomic(
            &self.ledger_path(),
            text.as_bytes(),
            privet_files::Mode::Public,
        )?;
        Ok(())
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test
mod tests {
    use super::*;
    use privet_audit::{AuditLog, Entry, Event};
    use privet_identity::SigningKey;

    fn config(dir: &Path) -> AuditConfig {
        AuditConfig {
            agreements: Vec::new(),
            dir: dir.to_path_buf(),
            require_agreement: true,
            require_secure_aggregation: true,
            max_epsilon_per_job: Some(2.0),
        }
    }

    fn coordinator_log(entries: u64, salt: &str) -> AuditLog {
        let mut log = AuditLog::new("coordinator".parse().unwrap());
        for i in 0..entries {
            let event =
                Event::cancellation("job-1".parse().unwrap(), None, &format!("{salt}{i}")).unwrap();
            log.append(&Entry::new(Timestamp::from_unix(i as i64).unwrap(), event));
        }
        log
    }

    /// What a `Welcome` carries: the signed head and a proof from `from`.
    fn welcome(log: &AuditLog, key: &SigningKey, from: Option<u64>) -> (String, Vec<bytes::Bytes>) {
        let head = log.sign_head(key, Timestamp::from_unix(1_000).unwrap());
        let proof = match from {
            Some(from) if from <= log.len() => log
                .consistency_proof(from, log.len())
                .unwrap()
                .path
                .iter()
                .map(|h| bytes::Bytes::copy_from_slice(h.as_bytes()))
                .collect(),
            _ => Vec::new(),
        };
        (head_to_json(&head, &key.verifying_key()), proof)
    }

    #[test]
    fn a_node_keeps_the_coordinators_head_and_catches_a_truncated_forked_or_rewritten_log() {
        let dir = tempfile::tempdir().unwrap();
        let key = SigningKey::from_bytes(&[7; 32]);
        let mut audit = NodeAudit::load(config(dir.path())).unwrap();
        assert_eq!(audit.audit_from(), None);
        let (head, proof) = welcome(&coordinator_log(5, "a"), &key, None);
        audit.witness(&head, &proof).unwrap();
        assert_eq!(audit.audit_from(), Some(5));
        // The head survives a restart, and an honest extension is accepted.
        let mut audit = NodeAudit::load(config(dir.path())).unwrap();
        assert_eq!(audit.audit_from(), Some(5));
        let (head, proof) = welcome(&coordinator_log(9, "a"), &key, audit.audit_from());
        audit.witness(&head, &proof).unwrap();
        assert_eq!(audit.audit_from(), Some(9));

        let (head, proof) = welcome(&coordinator_log(6, "a"), &key, audit.audit_from());
        let err = audit.witness(&head, &proof).unwrap_err().to_string();
        assert!(
            err.contains("coordinator coordinator truncated its log"),
            "{err}"
        );
        let (head, proof) = welcome(&coordinator_log(9, "b"), &key, audit.audit_from());
        let err = audit.witness(&head, &proof).unwrap_err().to_string();
        assert!(err.contains("forked its log"), "{err}");
        let (head, proof) = welcome(&coordinator_log(12, "b"), &key, audit.audit_from());
        let err = audit.witness(&head, &proof).unwrap_err().to_string();
        assert!(err.contains("rewrote its log"), "{err}");
        // Hostile proofs: a hash of the wrong length, or more hashes than any log needs.
        let (head, mut proof) = welcome(&coordinator_log(12, "a"), &key, audit.audit_from());
        proof[0] = bytes::Bytes::from_static(&[0; 31]);
        let err = audit.witness(&head, &proof).unwrap_err().to_string();
        assert!(err.contains("not 32 bytes"), "{err}");
        let long = vec![bytes::Bytes::from_static(&[0; 32]); 65];
        let err = audit.witness(&head, &long).unwrap_err().to_string();
        assert!(err.contains("longer than 64"), "{err}");
        assert!(audit.witness("{not a head", &[]).is_err());
        // Another key, or no head at all, after one was kept.
        let (head, proof) = welcome(
            &coordinator_log(12, "a"),
            &SigningKey::from_bytes(&[8; 32]),
            audit.audit_from(),
        );
        assert!(audit.witness(&head, &proof).is_err());
        assert!(audit.witness("", &[]).is_err());
        // None of it moved the head kept on disk.
        let audit = NodeAudit::load(config(dir.path())).unwrap();
        assert_eq!(audit.audit_from(), Some(9));
    }

    #[test]
    fn a_corrupt_or_foreign_ledger_is_refused_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = dir.path().join("ledger.json");
        for text in [
            "{",
            r#"{"format":"privet-node-ledger","format_version":2,"jobs":[]}"#,
            r#"{"format":"other","format_version":1,"jobs":[]}"#,
        ] {
            std::fs::write(&ledger, text).unwrap();
            let err = NodeAudit::load(config(dir.path())).unwrap_err().to_string();
            assert!(err.contains("ledger.json"), "{err}");
        }
        std::fs::write(
            &ledger,
            r#"{"format":"privet-node-ledger","format_version":1,"jobs":[]}"#,
        )
        .unwrap();
        NodeAudit::load(config(dir.path())).unwrap();
    }
}
