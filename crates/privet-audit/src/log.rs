//! The audit log: typed entries, their canonical encoding, the append-only Merkle log and the
//! coordinator's signed tree heads.

use std::fmt;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use privet_identity::Name;

use crate::agreement::DpBudget;
use crate::canon::Canon;
use crate::check::{JobRequest, Refusal, Task};
use crate::duo::Purpose;
use crate::merkle::{self, ConsistencyProof, InclusionProof, MerkleTree};
use crate::{AuditError, Hash, Timestamp};

const TAG_ENTRY: &str = "privet-audit/v1/entry";
const TAG_HEAD: &str = "privet-audit/v1/tree-head";

/// Longest free-text reason in an entry, in characters.
pub const MAX_REASON_CHARS: usize = 1000;
/// Most participants named in one entry.
pub const MAX_PARTICIPANTS: usize = 100_000;

/// A job's id as the coordinator gives it: 1 to 128 ASCII letters, digits, `-`, `_`, `.` or
/// `:`.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct JobId(String);

impl JobId {
    /// Longest job id.
    pub const MAX_LEN: usize = 128;

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl FromStr for JobId {
    type Err = AuditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if !s.is_empty()
            && s.len() <= JobId::MAX_LEN
            && s.bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
        {
            Ok(JobId(s.to_string()))
        } else {
            Err(AuditError::Invalid(format!(
                "invalid job id {:?}: use 1-128 ASCII letters, digits, '-', '_', '.' or ':'",
                s.chars().take(40).collect::<String>()
            )))
        }
    }
}

impl fmt::Display for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for JobId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

/// A refusal as recorded: its stable code and its one-line reason.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecordedRefusal {
    code: String,
    reason: String,
}

impl RecordedRefusal {
    /// A recorded refusal; the code is 1-64 of `a-z`, `0-9`, `_`, the reason one line of at most
    /// [`MAX_REASON_CHARS`] characters.
    pub fn new(code: &str, reason: &str) -> Result<RecordedRefusal, AuditError> {
        if code.is_empty()
            || code.len() > 64
            || !code
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        {
            return Err(AuditError::Invalid(format!(
                "invalid refusal code {:?}",
                code.chars().take(40).collect::<String>()
            )));
        }
        Ok(RecordedRefusal {
            code: code.to_string(),
            reason: reason_text(reason)?,
        })
    }

    /// The stable code ([`Refusal::code`]).
    pub fn code(&self) -> &str {
        &self.code
    }

    /// The one-line reason.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl From<&Refusal> for RecordedRefusal {
    fn from(r: &Refusal) -> Self {
        let reason: String = r
            .to_string()
            .chars()
            .filter(|c| !c.is_control())
            .take(MAX_REASON_CHARS)
            .collect();
        RecordedRefusal {
            code: r.code().to_string(),
            reason,
        }
    }
}

fn reason_text(s: &str) -> Result<String, AuditError> {
    if s.chars().count() > MAX_REASON_CHARS {
        return Err(AuditError::Invalid(format!(
            "a reason is longer than {MAX_REASON_CHARS} characters"
        )));
    }
    if s.chars().any(char::is_control) {
        return Err(AuditError::Invalid(
            "a reason is one line without control characters".into(),
        ));
    }
    Ok(s.to_string())
}

/// A job's admission as recorded: the job, the agreement and what was checked.
#[derive(Clone, Debug, PartialEq)]
pub struct Admission {
    /// The job.
    pub job: JobId,
    /// The agreement (its hash) that covers it.
    pub agreement: Hash,
    /// Its purpose.
    pub purpose: Purpose,
    /// Its task.
    pub task: Task,
    /// The coordinator.
    pub coordinator: Name,
    /// The operator who submitted it.
    pub operator: Option<Name>,
    /// The data-owner nodes.
    pub nodes: Vec<Name>,
    /// Secure aggregation on.
    pub secure_aggregation: bool,
    /// Its DP budget.
    pub dp: Option<DpBudget>,
    /// The fewest client updates a round combines.
    pub min_clients_per_round: u32,
}

impl Admission {
    /// The admission of `job` under the agreement hashed `agreement`, as checked by
    /// [`Agreement::permits`](crate::Agreement::permits).
    pub fn new(job: JobId, agreement: Hash, request: &JobRequest) -> Admission {
        Admission {
            job,
            agreement,
            purpose: request.purpose.clone(),
            task: request.task,
            coordinator: request.coordinator.clone(),
            operator: request.operator.clone(),
            nodes: request.nodes.clone(),
            secure_aggregation: request.secure_aggregation,
            dp: request.dp,
            min_clients_per_round: request.min_clients_per_round,
        }
    }
}

/// What happened.
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Event {
    /// A (fully signed) agreement version was registered.
    AgreementRecorded {
        /// Its id.
        agreement: Name,
        /// Its version.
        version: u32,
        /// Its hash.
        hash: Hash,
    },
    /// A job was admitted.
    JobAdmitted(Admission),
    /// The coordinator refused a job.
    JobRefused {
        /// The job.
        job: JobId,
        /// The agreement it named, if any.
        agreement: Option<Hash>,
        /// Why.
        refusal: RecordedRefusal,
    },
    /// A node refused a job or one of its rounds (its own copy and policy have the last word).
    NodeRefused {
        /// The job.
        job: JobId,
        /// The node.
        node: Name,
        /// The round, if the refusal was of one round.
        round: Option<u64>,
        /// Why.
        refusal: RecordedRefusal,
    },
    /// A round completed.
    RoundCompleted {
        /// The job.
        job: JobId,
        /// The round number.
        round: u64,
        /// The nodes whose updates were combined.
        participants: Vec<Name>,
        /// Whether secure aggregation was on.
        secure_aggregation: bool,
        /// The job's cumulative (epsilon, delta) after this round, if DP.
        dp: Option<DpBudget>,
    },
    /// Privacy budget counted against the agreement.
    PrivacySpend {
        /// The job.
        job: JobId,
        /// The agreement.
        agreement: Hash,
        /// What the job spent (or reserved).
        spent: DpBudget,
        /// The agreement's total spent after it.
        total: DpBudget,
    },
    /// A model left the federation.
    ModelExport {
        /// The job.
        job: JobId,
        /// Who received it.
        party: Name,
        /// Whether it was trained with DP.
        dp_trained: bool,
    },
    /// A job was cancelled.
    Cancellation {
        /// The job.
        job: JobId,
        /// Who cancelled it, if a party.
        by: Option<Name>,
        /// Why.
        reason: String,
    },
}

impl Event {
    /// A refusal by the coordinator.
    pub fn job_refused(job: JobId, agreement: Option<Hash>, refusal: &Refusal) -> Event {
        Event::JobRefused {
            job,
            agreement,
            refusal: refusal.into(),
        }
    }

    /// A refusal by a node.
    pub fn node_refused(job: JobId, node: Name, round: Option<u64>, refusal: &Refusal) -> Event {
        Event::NodeRefused {
            job,
            node,
            round,
            refusal: refusal.into(),
        }
    }

    /// A cancellation; the reason must be one line of at most [`MAX_REASON_CHARS`].
    pub fn cancellation(job: JobId, by: Option<Name>, reason: &str) -> Result<Event, AuditError> {
        Ok(Event::Cancellation {
            job,
            by,
            reason: reason_text(reason)?,
        })
    }

    /// The event's name in log files (`job_admitted`...).
    pub fn kind(&self) -> &'static str {
        match self {
            Event::AgreementRecorded { .. } => "agreement_recorded",
            Event::JobAdmitted(_) => "job_admitted",
            Event::JobRefused { .. } => "job_refused",
            Event::NodeRefused { .. } => "node_refused",
            Event::RoundCompleted { .. } => "round_completed",
            Event::PrivacySpend { .. } => "privacy_spend",
            Event::ModelExport { .. } => "model_export",
            Event::Cancellation { .. } => "cancellation",
        }
    }

    /// The job the event is about, if any.
    pub fn job(&self) -> Option<&JobId> {
        match self {
            Event::AgreementRecorded { .. } => None,
            Event::JobAdmitted(a) => Some(&a.job),
            Event::JobRefused { job, .. }
            | Event::NodeRefused { job, .. }
            | Event::RoundCompleted { job, .. }
            | Event::PrivacySpend { job, .. }
            | Event::ModelExport { job, .. }
            | Event::Cancellation { job, .. } => Some(job),
        }
    }

    /// One line for people.
    pub fn describe(&self) -> String {
        let names = |v: &[Name]| v.iter().map(Name::as_str).collect::<Vec<_>>().join(", ");
        let dp = |d: &Option<DpBudget>| d.map_or("no DP".to_string(), |b| format!("DP {b}"));
        match self {
            Event::AgreementRecorded {
                agreement,
                version,
                hash,
            } => format!("agreement {agreement} version {version} recorded ({hash})"),
            Event::JobAdmitted(a) => format!(
                "job {} admitted under agreement {}: {}, purpose {}, nodes {}, secure aggregation {}, {}, at least {} clients per round",
                a.job,
                a.agreement,
                a.task,
                a.purpose,
                names(&a.nodes),
                on_off(a.secure_aggregation),
                dp(&a.dp),
                a.min_clients_per_round
            ),
            Event::JobRefused { job, refusal, .. } => {
                format!("job {job} refused: {}", refusal.reason)
            }
            Event::NodeRefused {
                job,
                node,
                round,
                refusal,
            } => format!(
                "{node} refused {}job {job}: {}",
                round.map(|r| format!("round {r} of ")).unwrap_or_default(),
                refusal.reason
            ),
            Event::RoundCompleted {
                job,
                round,
                participants,
                secure_aggregation,
                dp: budget,
            } => format!(
                "job {job} round {round} completed with {} ({}), secure aggregation {}, {}",
                participants.len(),
                names(participants),
                on_off(*secure_aggregation),
                dp(budget)
            ),
            Event::PrivacySpend {
                job, spent, total, ..
            } => format!("job {job} spent {spent}; the agreement's total is now {total}"),
            Event::ModelExport {
                job,
                party,
                dp_trained,
            } => format!(
                "the model of job {job} was exported to {party} ({})",
                if *dp_trained {
                    "DP-trained"
                } else {
                    "not DP-trained"
                }
            ),
            Event::Cancellation { job, by, reason } => format!(
                "job {job} cancelled{}: {reason}",
                by.as_ref().map(|b| format!(" by {b}")).unwrap_or_default()
            ),
        }
    }

    fn encode(&self, c: &mut Canon) {
        let names = |c: &mut Canon, v: &[Name]| {
            c.list(v.iter(), |c, n| {
                c.str(n.as_str());
            });
        };
        let name = |c: &mut Canon, n: &Option<Name>| {
            c.opt(n.as_ref(), |c, n| {
                c.str(n.as_str());
            });
        };
        let budget = |c: &mut Canon, b: Option<DpBudget>| {
            c.opt(b, |c, b| b.encode(c));
        };
        let refusal = |c: &mut Canon, r: &RecordedRefusal| {
            c.str(&r.code).str(&r.reason);
        };
        c.str(self.kind());
        match self {
            Event::AgreementRecorded {
                agreement,
                version,
                hash,
            } => {
                c.str(agreement.as_str()).u32(*version).fixed(&hash.0);
            }
            Event::JobAdmitted(a) => {
                c.str(a.job.as_str()).fixed(&a.agreement.0);
                a.purpose.encode(c);
                encode_task(c, a.task);
                c.str(a.coordinator.as_str());
                name(c, &a.operator);
                names(c, &a.nodes);
                c.bool(a.secure_aggregation);
                budget(c, a.dp);
                c.u32(a.min_clients_per_round);
            }
            Event::JobRefused {
                job,
                agreement,
                refusal: r,
            } => {
                c.str(job.as_str()).opt(*agreement, |c, h| {
                    c.fixed(&h.0);
                });
                refusal(c, r);
            }
            Event::NodeRefused {
                job,
                node,
                round,
                refusal: r,
            } => {
                c.str(job.as_str()).str(node.as_str()).opt(*round, |c, r| {
                    c.u64(r);
                });
                refusal(c, r);
            }
            Event::RoundCompleted {
                job,
                round,
                participants,
                secure_aggregation,
                dp,
            } => {
                c.str(job.as_str()).u64(*round);
                names(c, participants);
                c.bool(*secure_aggregation);
                budget(c, *dp);
            }
            Event::PrivacySpend {
                job,
                agreement,
                spent,
                total,
            } => {
                c.str(job.as_str()).fixed(&agreement.0);
                spent.encode(c);
                total.encode(c);
            }
            Event::ModelExport {
                job,
                party,
                dp_trained,
            } => {
                c.str(job.as_str()).str(party.as_str()).bool(*dp_trained);
            }
            Event::Cancellation { job, by, reason } => {
                c.str(job.as_str());
                name(c, by);
                c.str(reason);
            }
        }
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn encode_task(c: &mut Canon, t: Task) {
    match t {
        Task::Train { model, strategy } => {
            c.str("train").str(model.as_str()).str(strategy.as_str());
        }
        Task::Statistics => {
            c.str("statistics");
        }
        Task::Psi => {
            c.str("psi");
        }
        Task::Pjc => {
            c.str("pjc");
        }
    }
}

/// One log entry: when, and what happened.
#[derive(Clone, Debug, PartialEq)]
pub struct Entry {
    /// When it happened (the coordinator's clock).
    pub time: Timestamp,
    /// What happened.
    pub event: Event,
}

impl Entry {
    /// An entry.
    pub fn new(time: Timestamp, event: Event) -> Entry {
        Entry { time, event }
    }

    /// The canonical bytes: the Merkle leaf's data.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(TAG_ENTRY);
        c.i64(self.time.unix());
        self.event.encode(&mut c);
        c.finish()
    }

    /// The entry's leaf hash, `SHA-256(0x00 || canonical bytes)`.
    pub fn leaf_hash(&self) -> Hash {
        merkle::leaf_hash(&self.canonical_bytes())
    }
}

/// The statement a coordinator signs: its log had `size` entries with root `root` at `time`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TreeHead {
    /// The coordinator (its certificate's name).
    pub coordinator: Name,
    /// The number of entries.
    pub size: u64,
    /// The Merkle root of those entries.
    pub root: Hash,
    /// When it was signed.
    pub time: Timestamp,
}

impl TreeHead {
    /// The signed message (domain-separated from every other use of the key).
    pub fn message(&self) -> Vec<u8> {
        let mut c = Canon::new(TAG_HEAD);
        c.str(self.coordinator.as_str())
            .u64(self.size)
            .fixed(&self.root.0)
            .i64(self.time.unix());
        c.finish()
    }

    /// Signs the head with the coordinator's key.
    pub fn sign(self, key: &SigningKey) -> SignedTreeHead {
        let signature = key.sign(&self.message());
        SignedTreeHead {
            head: self,
            signature,
        }
    }
}

/// A tree head with the coordinator's Ed25519 signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedTreeHead {
    /// The head.
    pub head: TreeHead,
    /// The signature over [`TreeHead::message`].
    pub signature: Signature,
}

impl SignedTreeHead {
    /// Checks the signature (`verify_strict`) under the coordinator's key.
    pub fn verify(&self, key: &VerifyingKey) -> Result<(), AuditError> {
        key.verify_strict(&self.head.message(), &self.signature)
            .map_err(|_| AuditError::BadHeadSignature {
                coordinator: self.head.coordinator.clone(),
            })
    }

    /// Checks that `entry` is entry `proof.index` of the log this head signs.
    pub fn verify_inclusion(
        &self,
        entry: &Entry,
        proof: &InclusionProof,
    ) -> Result<(), AuditError> {
        if proof.size != self.head.size {
            return Err(AuditError::Proof(format!(
                "the inclusion proof is for a log of {} entries, the head signs {}",
                proof.size, self.head.size
            )));
        }
        proof.verify(&entry.leaf_hash(), &self.head.root)
    }
}

/// Where an appended entry went.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Appended {
    /// Its index (0-based).
    pub index: u64,
    /// Its leaf hash.
    pub leaf_hash: Hash,
}

/// A coordinator's audit log: an append-only Merkle tree of entries. It keeps only hashes; the
/// caller stores the entries (in order) and can rebuild the log from them with
/// [`AuditLog::restore`].
#[derive(Clone, Debug)]
pub struct AuditLog {
    coordinator: Name,
    tree: MerkleTree,
}

impl AuditLog {
    /// An empty log kept by `coordinator`.
    pub fn new(coordinator: Name) -> AuditLog {
        AuditLog {
            coordinator,
            tree: MerkleTree::new(),
        }
    }

    /// The log of these entries, in order.
    pub fn restore<'a>(
        coordinator: Name,
        entries: impl IntoIterator<Item = &'a Entry>,
    ) -> AuditLog {
        AuditLog {
            coordinator,
            tree: MerkleTree::from_leaf_hashes(entries.into_iter().map(Entry::leaf_hash)),
        }
    }

    /// Appends an entry.
    pub fn append(&mut self, entry: &Entry) -> Appended {
        let leaf_hash = entry.leaf_hash();
        let index = self.tree.push(leaf_hash);
        Appended { index, leaf_hash }
    }

    /// The coordinator.
    pub fn coordinator(&self) -> &Name {
        &self.coordinator
    }

    /// The number of entries.
    pub fn len(&self) -> u64 {
        self.tree.len()
    }

    /// Whether the log has no entry.
    pub fn is_empty(&self) -> bool {
        self.tree.is_empty()
    }

    /// The Merkle root of all entries.
    pub fn root(&self) -> Hash {
        self.tree.root()
    }

    /// The tree.
    pub fn tree(&self) -> &MerkleTree {
        &self.tree
    }

    /// The unsigned head of the log as it is now.
    pub fn head(&self, time: Timestamp) -> TreeHead {
        TreeHead {
            coordinator: self.coordinator.clone(),
            size: self.len(),
            root: self.root(),
            time,
        }
    }

    /// Signs the head of the log as it is now.
    pub fn sign_head(&self, key: &SigningKey, time: Timestamp) -> SignedTreeHead {
        self.head(time).sign(key)
    }

    /// The inclusion proof of entry `index` in the log's first `size` entries.
    pub fn inclusion_proof(&self, index: u64, size: u64) -> Result<InclusionProof, AuditError> {
        self.tree.inclusion_proof(index, size)
    }

    /// The consistency proof between the log's first `old_size` and `new_size` entries.
    pub fn consistency_proof(
        &self,
        old_size: u64,
        new_size: u64,
    ) -> Result<ConsistencyProof, AuditError> {
        self.tree.consistency_proof(old_size, new_size)
    }
}
