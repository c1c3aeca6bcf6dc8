//! # privet-audit: signed data-sharing agreements and a tamper-evident audit log
//!
//! A data-protection officer must be able to say, and prove later, what was shared, with whom,
//! for which purpose and under which guarantee. This crate gives privet two things for that:
//!
//! - **[`Agreement`]**: a TOML file (`format_version = 1`) naming the parties (name, role,
//!   Ed25519 key of their certificate), the data set each data owner contributes, the permitted
//!   purposes as GA4GH DUO terms ([`duo`]), the permitted tasks, the required protections
//!   (secure aggregation, a differential-privacy budget per job and in total, a minimum number
//!   of clients per round, who may export a model and whether only DP-trained ones), a
//!   validity window and a retention period. Parties sign a domain-separated hash of its
//!   [canonical encoding](canon) (Ed25519, verified with `verify_strict`), so signatures do not
//!   depend on layout or comments and live in the same file without changing what they sign.
//!   It is in force only when every party signed the same bytes ([`Agreement::fully_signed`]);
//!   an amendment is the next version naming the previous version's hash
//!   ([`Agreement::check_amends`]). [`Agreement::permits`] decides whether a [`JobRequest`] is
//!   covered and says why not with a typed [`Refusal`]; [`Agreement::permits_export`] does the
//!   same for taking a model out.
//! - **[`AuditLog`]**: an append-only Merkle log (RFC 9162 section 2.1, [`merkle`]) of typed
//!   [`Entry`]s (agreement recorded, job admitted or refused, node refusal, round completed,
//!   privacy spend, model export, cancellation), each hashed in a versioned canonical encoding.
//!   The coordinator signs [`SignedTreeHead`]s; inclusion and consistency proofs are generated
//!   and verified here. A node keeps a [`HeadWitness`]: the last head it saw, against which
//!   every new head must come with a valid consistency proof. A log exports to a versioned
//!   JSON-lines [`LogFile`] that anyone can verify offline.
//!
//! Nothing here opens a socket, starts a thread or reads a clock: times and budgets already
//! spent are passed in, and the log keeps only hashes (the caller stores the entries, e.g. in
//! SQLite, and rebuilds the log with [`AuditLog::restore`]). Files are read only by the
//! `load` helpers, through `privet-files` (size limits, strict TOML with line and column).
//!
//! ```
//! # fn main() -> Result<(), privet_audit::AuditError> {
//! use privet_audit::*;
//! use ed25519_dalek::SigningKey;
//!
//! let keys: Vec<SigningKey> = (1u8..=3).map(|i| SigningKey::from_bytes(&[i; 32])).collect();
//! let hex = |k: &SigningKey| hex::encode(k.verifying_key().as_bytes());
//! let text = format!(r#"
//! format_version = 1
//! id = "study"
//! version = 1
//! title = "A study"
//! not_before = "2026-01-01T00:00:00Z"
//! not_after = "2027-01-01T00:00:00Z"
//! retention_days = 365
//! [[parties]]
//! name = "coordinator"
//! role = "coordinator"
//! key = "{}"
//! [[parties]]
//! name = "hospital-a"
//! role = "data-owner"
//! key = "{}"
//! [[parties]]
//! name = "hospital-b"
//! role = "data-owner"
//! key = "{}"
//! [datasets]
//! hospital-a = "biopsies 2019-2024"
//! hospital-b = "biopsies 2020-2024"
//! [[purposes]]
//! term = "DUO:0000042"
//! [tasks]
//! models = ["logreg"]
//! strategies = ["fedavg"]
//! [protections]
//! secure_aggregation = true
//! min_clients_per_round = 2
//! [protections.dp]
//! epsilon_per_job = 3.0
//! delta_per_job = 1e-5
//! epsilon_total = 10.0
//! delta_total = 1e-4
//! [protections.export]
//! parties = ["hospital-a"]
//! dp_only = true
//! "#, hex(&keys[0]), hex(&keys[1]), hex(&keys[2]));
//! let mut agreement = Agreement::parse(&text, None)?;
//! for k in &keys {
//!     let signature = agreement.sign(k)?;
//!     agreement.add_signature(signature);
//! }
//! assert!(agreement.fully_signed());
//!
//! let name = |s: &str| s.parse::<privet_identity::Name>().unwrap();
//! let job = JobRequest {
//!     agreement: Some(agreement.hash()),
//!     purpose: Purpose::new("DUO:0000006".parse()?, None, [])?,
//!     task: Task::Train { model: ModelKind::Logreg, strategy: StrategyKind::FedAvg },
//!     coordinator: name("coordinator"),
//!     operator: None,
//!     nodes: vec![name("hospital-a"), name("hospital-b")],
//!     secure_aggregation: true,
//!     dp: Some(DpBudget::new(1.0, 1e-5)?),
//!     min_clients_per_round: 2,
//!     now: Timestamp::parse("2026-06-01T00:00:00Z").unwrap(),
//!     spent: DpBudget::new(9.5, 0.0)?,
//! };
//! // 9.5 already spent + 1.0 is over the total of 10.
//! assert_eq!(agreement.permits(&job).unwrap_err().code(), "over_total_budget");
//!
//! let mut log = AuditLog::new(name("coordinator"));
//! log.append(&Entry::new(job.now, Event::job_refused(
//!     "job-1".parse()?, Some(agreement.hash()), &agreement.permits(&job).unwrap_err())));
//! let head = log.sign_head(&keys[0], job.now);
//! let mut witness = HeadWitness::new(name("coordinator"), keys[0].verifying_key());
//! witness.observe(&head, &log.consistency_proof(0, log.len())?)?;
//! # Ok(())
//! # }
//! ```
//!
//! ## Security model
//!
//! **Parties and keys.** Each party's key is the Ed25519 key of its privet certificate. The
//! agreement binds names and roles to keys; whoever holds a party's private key can sign for
//! it. The same key also signs TLS handshakes, secure-aggregation keys and (for the
//! coordinator) tree heads; every signature made here is over a message that starts with its
//! own domain-separation tag (`privet-audit/v1/agreement-signature`, `privet-audit/v1/tree-head`),
//! so none can be replayed as another.
//!
//! **Agreements.** A changed byte of what the agreement says changes its canonical bytes and
//! hash, so every signature fails (`verify_strict` also refuses malleable and small-order
//! signatures and keys). The check is pure: callers pass the time, and the budget already
//! spent, which they must persist (privet's coordinator and nodes each keep their own count;
//! a node trusts its own). Retention is recorded and shown, not enforced: deleting outputs
//! after `retention_days` is the holder's duty. DUO matching is by the rules in [`duo`]: a
//! disease term matches itself only, and modifiers are declarations by the requester that
//! privet records but cannot verify (e.g. that the use is non-commercial).
//!
//! **The log is tamper-evident, not tamper-proof.** The coordinator holds the log and its
//! signing key; it can always refuse to log, stop, or lie in a *new* entry. What it cannot do
//! without being caught by anyone holding an earlier signed head is change, remove, reorder or
//! insert an entry that a signed head already covers: a head larger than the log shows
//! truncation, two signed heads of one size with different roots show a fork, and a new head
//! without a valid consistency proof from an old one shows a rewrite. Each of these errors
//! names the coordinator, and the signed heads are the evidence (a coordinator cannot
//! repudiate its own signature).
//!
//! **What nodes detect.** A node keeps the last head it accepted ([`HeadWitness`]) and, at
//! each connection, checks the coordinator's new head and consistency proof from it; it can
//! ask for an inclusion proof of an entry that concerns it (its round, its refusal) and check
//! it against its head. It detects any rewrite of history it has seen. It does **not** detect
//! a *split view*: a coordinator that shows different, internally consistent logs to
//! different nodes. Nodes in privet do not gossip heads with each other; a split view is
//! caught only when heads from different parties meet: `privet audit verify LOG --head
//! HEAD.json` with heads kept by several nodes, or a party comparing its head with another's.
//! Entries appended after the last signed head are not covered by any signature until the next
//! head. The time in an entry or head is the coordinator's clock and is not checked against
//! anything.
//!
//! **Out of scope.** A coordinator and all nodes colluding; a compromised party key (its
//! signatures are as good as the party's); the truthfulness of what the coordinator writes in
//! a new entry (the nodes' own checks at their egress chokepoint are what enforce the
//! agreement; the log records); availability (a coordinator can withhold its log).

mod agreement;
pub mod canon;
mod check;
pub mod duo;
mod error;
mod hash;
mod log;
mod logfile;
pub mod merkle;
mod template;
mod timestamp;
mod witness;

pub use agreement::{
    Agreement, AgreementBody, DpBudget, DpLimits, ExportRule, FORMAT_VERSION, MAX_AGREEMENT_BYTES,
    MAX_PARTIES, MAX_PURPOSES, ModelKind, Party, PartyRole, PartySignature, PermittedTasks,
    Protections, SignatureStatus, StrategyKind, signature_message,
};
pub use check::{ExportRequest, JobRequest, Refusal, Task};
pub use duo::{Disease, DuoId, DuoKind, DuoTerm, Purpose};
pub use error::AuditError;
pub use hash::Hash;
pub use log::{
    Admission, Appended, AuditLog, Entry, Event, JobId, RecordedRefusal, SignedTreeHead, TreeHead,
};
pub use logfile::{
    HEAD_FORMAT, LOG_FORMAT, LOG_FORMAT_VERSION, LogFile, MAX_LOG_BYTES, Verified, entry_from_json,
    entry_to_json, head_from_json, head_to_json, load_head,
};
pub use merkle::{ConsistencyProof, InclusionProof, MerkleTree};
pub use timestamp::Timestamp;
pub use witness::HeadWitness;
