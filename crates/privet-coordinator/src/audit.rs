//! The coordinator's side of signed agreements and the audit log.
//!
//! - **Admission.** A job that names an `[agreement]` is admitted only if the newest fully
//!   signed version the coordinator holds (or the version the job pins by hash) covers its
//!   purpose, task, parties and protections, with the privacy budget already reserved by the
//!   agreement's earlier jobs counted ([`Audit::admit`]). The job's maximum budget is reserved
//!   with its admission, in the same transaction.
//! - **The log.** Admissions, refusals (the coordinator's and the nodes'), agreement versions,
//!   completed rounds, privacy spend, model exports and cancellations of jobs under an agreement
//!   are appended to privet-audit's Merkle log. Every append commits in one SQLite transaction
//!   with the state change it records and with a new tree head signed by the coordinator's
//!   certificate key ([`Audit::record`]).
//! - **Witnesses.** Every node's `Hello` says the size of the last head it kept; the
//!   `Welcome` carries the current signed head and a consistency proof from it
//!   ([`Audit::welcome`]), so a node detects a coordinator that rewrote, truncated or forked
//!   its history.
//!
//! The log exists only with certificates (the heads are signed with the coordinator's key);
//! under `--insecure-dev` a job that names an agreement is refused.

use privet_audit::{
    Agreement, AuditLog, DpBudget, Entry, Event, JobId, JobRequest, RecordedRefusal,
    SignedTreeHead, Timestamp, entry_from_json, entry_to_json, head_from_json, head_to_json,
};
use privet_identity::{Name, SigningKey};
use privet_job::{CheckContext, Job};
use tokio::sync::Mutex;

use crate::error::CoordinatorError;
use crate::store::{AuditRows, SpendRow, Store, StoreActor, StoreError};

/// The coordinator's agreements and audit log.
pub(crate) struct Audit {
    coordinator: Name,
    key: SigningKey,
    /// Each agreement version with its file's text.
    agreements: Vec<(Agreement, String)>,
    require: bool,
    log: Mutex<AuditLog>,
    /// Held from an admission's budget check until its job and reservation are stored, so two
    /// jobs submitted at once cannot both fit a budget that holds only one of them.
    admitting: Mutex<()>,
}

impl std::fmt::Debug for Audit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Audit")
            .field("coordinator", &self.coordinator)
            .field("agreements", &self.agreements.len())
            .field("require", &self.require)
            .finish_non_exhaustive()
    }
}

/// The current time as the log records it.
pub(crate) fn now() -> Timestamp {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0);
    Timestamp::from_unix(secs).unwrap_or(Timestamp::UNIX_EPOCH)
}

fn corrupt(what: impl std::fmt::Display) -> CoordinatorError {
    StoreError::Corrupt(format!("audit log: {what}")).into()
}

/// What [`Audit::admit`] decided.
pub(crate) enum Admitted {
    /// Not under an agreement, and none is required.
    Free,
    /// Admitted: append these with the job, and reserve this spend.
    Covered {
        events: Vec<Event>,
        spend: Option<SpendRow>,
    },
}

impl Audit {
    /// Restores the log from the store (checking it against the last signed head) and records
    /// every fully signed agreement version not seen before.
    pub(crate) async fn open(
        coordinator: Name,
        key: SigningKey,
        agreements: Vec<(Agreement, String)>,
        require: bool,
        store: &StoreActor,
    ) -> Result<Audit, CoordinatorError> {
        let (entries, heads) = store
            .call(|s| Ok((s.audit_entries()?, s.audit_heads()?)))
            .await?;
        let mut parsed = Vec::with_capacity(entries.len());
        for (i, text) in entries.iter().enumerate() {
            let (index, entry) = entry_from_json(text).map_err(corrupt)?;
            if index != i as u64 {
                return Err(corrupt(format!("entry {i} carries index {index}")));
            }
            parsed.push(entry);
        }
        let log = AuditLog::restore(coordinator.clone(), &parsed);
        if let Some(last) = heads.last() {
            let (head, signer) = head_from_json(last).map_err(corrupt)?;
            if signer != key.verifying_key() {
                // A new certificate key: heads signed before stay valid under the old key.
                tracing::warn!("the audit log's last head was signed with another key");
            }
            let root = log.tree().root_at(head.head.size).map_err(|_| {
                corrupt(format!(
                    "the last signed head covers {} entries and the database holds {}",
                    head.head.size,
                    log.len()
                ))
            })?;
            if root != head.head.root {
                return Err(corrupt(format!(
                    "the entries no longer match the signed head of size {}",
                    head.head.size
                )));
            }
        }
        let audit = Audit {
            coordinator,
            key,
            agreements,
            require,
            log: Mutex::new(log),
            admitting: Mutex::new(()),
        };
        for (a, text) in &audit.agreements {
            if !a.fully_signed() {
                tracing::warn!(agreement = %a.id(), version = a.version(), "agreement not signed by every party: jobs under it are refused");
                continue;
            }
            let (hash, id, version, text) = (
                a.hash().to_hex(),
                a.id().to_string(),
                a.version(),
                text.clone(),
            );
            let event = Event::AgreementRecorded {
                agreement: a.id().clone(),
                version: a.version(),
                hash: a.hash(),
            };
            audit
                .record(store, vec![event], move |s| {
                    Ok(s.record_agreement(&hash, &id, version, &text)?
                        .then_some(()))
                })
                .await?;
        }
        if heads.is_empty() {
            audit.record(store, Vec::new(), |_| Ok(Some(()))).await?;
        }
        Ok(audit)
    }

    /// Appends `events` and a new signed head, in one transaction with `with`'s changes. If
    /// `with` returns `Ok(None)`, nothing is written or appended.
    pub(crate) async fn record<T: Send + 'static>(
        &self,
        store: &StoreActor,
        events: Vec<Event>,
        with: impl FnOnce(&mut Store) -> Result<Option<T>, StoreError> + Send + 'static,
    ) -> Result<Option<T>, CoordinatorError> {
        let mut log = self.log.lock().await;
        let mut next = log.clone();
        let time = now();
        let mut rows = AuditRows::default();
        for event in events {
            let entry = Entry::new(time, event);
            let at = next.append(&entry);
            rows.entries
                .push((at.index, entry_to_json(at.index, &entry)));
        }
        let head = next.sign_head(&self.key, time);
        rows.head = Some((
            head.head.size,
            head_to_json(&head, &self.key.verifying_key()),
        ));
        let done = store
            .call(move |s| {
                s.atomically(|s| match with(s)? {
                    Some(v) => {
                        s.append_audit(&rows)?;
                        Ok(Some(v))
                    }
                    None => Ok(None),
                })
            })
            .await?;
        if done.is_some() {
            *log = next;
        }
        Ok(done)
    }

    /// Serializes admissions: hold the guard from [`Audit::admit`] until the admitted job and
    /// its reservation are stored.
    pub(crate) async fn admitting(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.admitting.lock().await
    }

    /// Decides a job's admission. A refusal is recorded in the log here and returned as one
    /// line for the operator; an admission returns the events to append with the job.
    pub(crate) async fn admit(
        &self,
        store: &StoreActor,
        job_id: &str,
        job: &Job,
        operator: Option<Name>,
    ) -> Result<Result<Admitted, String>, CoordinatorError> {
        let id: JobId = job_id.parse().map_err(corrupt)?;
        let Some(wanted) = &job.agreement else {
            if !self.require {
                return Ok(Ok(Admitted::Free));
            }
            let refusal = recorded(
                "no_agreement",
                "this coordinator runs only jobs under a signed data-sharing agreement: add an \
                 [agreement] section naming it and the purpose",
            )?;
            return self.refuse(store, id, None, refusal).await;
        };
        let Some(agreement) = wanted.select(self.agreements.iter().map(|(a, _)| a)) else {
            let what = match wanted.hash {
                Some(h) => format!("version {h} of agreement {}", wanted.id),
                None => format!("agreement {}", wanted.id),
            };
            let refusal = recorded(
                "unknown_agreement",
                &format!("this coordinator does not hold {what} (see [audit] agreements)"),
            )?;
            return self.refuse(store, id, wanted.hash, refusal).await;
        };
        let agreement_id = agreement.id().to_string();
        let spent = store
            .call(move |s| s.agreement_spent(&agreement_id))
            .await?;
        // Deltas add up across jobs too; a total under the limit is what the check needs.
        let spent = DpBudget::new(spent.0, spent.1.min(1.0)).map_err(corrupt)?;
        let ctx = CheckContext {
            coordinator: self.coordinator.clone(),
            operator,
            now: now(),
            spent,
        };
        let request: JobRequest = match job.agreement_request(&ctx) {
            Ok(Some(r)) => r,
            Ok(None) => return Ok(Ok(Admitted::Free)),
            Err(e) => {
                let refusal = recorded("invalid_job", &e.to_string())?;
                return self
                    .refuse(store, id, Some(agreement.hash()), refusal)
                    .await;
            }
        };
        if let Err(refusal) = agreement.permits(&request) {
            let r = RecordedRefusal::from(&refusal);
            return self.refuse(store, id, Some(agreement.hash()), r).await;
        }
        let mut events = vec![Event::JobAdmitted(privet_audit::Admission::new(
            id.clone(),
            agreement.hash(),
            &request,
        ))];
        let spend = request.dp.map(|dp| {
            events.push(Event::PrivacySpend {
                job: id.clone(),
                agreement: agreement.hash(),
                spent: dp,
                total: request.spent.plus(dp),
            });
            SpendRow {
                job_id: job_id.to_string(),
                agreement_id: agreement.id().to_string(),
                agreement_hash: agreement.hash().to_hex(),
                epsilon: dp.epsilon(),
                delta: dp.delta(),
            }
        });
        Ok(Ok(Admitted::Covered { events, spend }))
    }

    async fn refuse(
        &self,
        store: &StoreActor,
        job: JobId,
        agreement: Option<privet_audit::Hash>,
        refusal: RecordedRefusal,
    ) -> Result<Result<Admitted, String>, CoordinatorError> {
        let line = format!(
            "the job's data-sharing agreement does not allow it ({}): {}",
            refusal.code(),
            refusal.reason()
        );
        tracing::warn!(job = %job, code = refusal.code(), "job refused: {}", refusal.reason());
        let event = Event::JobRefused {
            job,
            agreement,
            refusal,
        };
        self.record(store, vec![event], |_| Ok(Some(()))).await?;
        Ok(Err(line))
    }

    /// Checks a model export of a job under `agreement` (its hash) to `party`; records the
    /// export, or the refusal, and returns the refusal's line.
    pub(crate) async fn export(
        &self,
        store: &StoreActor,
        job_id: &str,
        agreement: &str,
        party: Name,
        dp_trained: bool,
    ) -> Result<Result<(), String>, CoordinatorError> {
        let job: JobId = job_id.parse().map_err(corrupt)?;
        let hash: privet_audit::Hash = agreement.parse().map_err(corrupt)?;
        let Some((a, _)) = self.agreements.iter().find(|(a, _)| a.hash() == hash) else {
            let r = recorded(
                "unknown_agreement",
                "this coordinator no longer holds the agreement the job ran under",
            )?;
            return self
                .refuse(store, job, Some(hash), r)
                .await
                .map(|r| r.map(|_| ()));
        };
        let request = privet_audit::ExportRequest {
            party: party.clone(),
            dp_trained,
            now: now(),
        };
        if let Err(refusal) = a.permits_export(&request) {
            let r = RecordedRefusal::from(&refusal);
            return self
                .refuse(store, job, Some(hash), r)
                .await
                .map(|r| r.map(|_| ()));
        }
        let event = Event::ModelExport {
            job,
            party,
            dp_trained,
        };
        self.record(store, vec![event], |_| Ok(Some(()))).await?;
        Ok(Ok(()))
    }

    /// The current signed head (JSON) and a consistency proof from a node's last head size.
    /// A size beyond the log gets no proof: the node then sees the truncation itself.
    pub(crate) async fn welcome(&self, from: Option<u64>) -> (String, Vec<bytes::Bytes>) {
        let log = self.log.lock().await;
        let head: SignedTreeHead = log.sign_head(&self.key, now());
        let proof = match from {
            Some(from) if from <= log.len() => log
                .consistency_proof(from, log.len())
                .map(|p| {
                    p.path
                        .iter()
                        .map(|h| bytes::Bytes::copy_from_slice(h.as_bytes()))
                        .collect()
                })
                .unwrap_or_default(),
            _ => Vec::new(),
        };
        (head_to_json(&head, &self.key.verifying_key()), proof)
    }

    /// The log as a privet-audit log file (entries and every signed head).
    pub(crate) async fn export_log(&self, store: &StoreActor) -> Result<String, CoordinatorError> {
        let _held = self.log.lock().await;
        let (entries, heads) = store
            .call(|s| Ok((s.audit_entries()?, s.audit_heads()?)))
            .await?;
        let entries = entries
            .iter()
            .map(|t| entry_from_json(t).map(|(_, e)| e))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        let heads = heads
            .iter()
            .map(|t| head_from_json(t).map(|(h, _)| h))
            .collect::<Result<Vec<_>, _>>()
            .map_err(corrupt)?;
        Ok(privet_audit::LogFile::new(
            self.coordinator.clone(),
            self.key.verifying_key(),
            entries,
            heads,
        )
        .to_text())
    }
}

/// Longest reason recorded, in characters (privet-audit's limit).
const MAX_REASON: usize = 1000;

fn one_line(text: &str) -> String {
    text.chars()
        .filter(|c| !c.is_control())
        .take(MAX_REASON)
        .collect()
}

/// A refusal the coordinator decides without the agreement's check (codes are fixed here).
fn recorded(code: &str, reason: &str) -> Result<RecordedRefusal, CoordinatorError> {
    RecordedRefusal::new(code, &one_line(reason)).map_err(corrupt)
}

/// A node's refusal as the log records it: the node's code and text, bounded here; a code that
/// is not one becomes `node_refused`.
pub(crate) fn node_refusal(code: &str, message: &str) -> Result<RecordedRefusal, CoordinatorError> {
    let message = one_line(message);
    RecordedRefusal::new(code, &message).or_else(|_| recorded("node_refused", &message))
}
