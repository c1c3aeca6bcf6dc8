//! Exported logs and head files: versioned JSON for offline verification.
//!
//! A log file is JSON lines:
//!
//! ```text
//! {"format":"privet-audit-log","version":1,"coordinator":"coordinator","key":"<64 hex>"}
//! {"entry":{"index":0,"time":"2026-01-31T12:00:00Z","event":{"agreement_recorded":{...}}}}
//! {"head":{"size":1,"root":"<64 hex>","time":"2026-01-31T12:00:00Z","signature":"<128 hex>"}}
//! ...
//! ```
//!
//! Entries are stored as typed JSON, not as their canonical bytes: the verifier re-encodes what
//! it parsed, so what a reader sees is exactly what was hashed. Numbers that must survive
//! exactly (epsilon, delta) are strings in Rust's shortest round-trip form. A head file holds
//! one signed head (what a node keeps, or what a party saved earlier) with its coordinator and
//! key.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use ed25519_dalek::{Signature, VerifyingKey};
use privet_identity::Name;
use serde::{Deserialize, Serialize};

use crate::agreement::{DpBudget, ModelKind, StrategyKind};
use crate::check::Task;
use crate::duo::{Disease, DuoId, Purpose};
use crate::log::{Admission, Entry, Event, JobId, RecordedRefusal, SignedTreeHead, TreeHead};
use crate::merkle::MerkleTree;
use crate::{AuditError, Hash, Timestamp};

/// The log file format's name.
pub const LOG_FORMAT: &str = "privet-audit-log";
/// The head file format's name.
pub const HEAD_FORMAT: &str = "privet-audit-head";
/// The version of both formats.
pub const LOG_FORMAT_VERSION: u32 = 1;
/// Largest log file read.
pub const MAX_LOG_BYTES: u64 = 256 << 20;
/// Longest line of a log file.
pub const MAX_LINE_BYTES: usize = 1 << 20;
/// Largest head file read.
pub const MAX_HEAD_BYTES: u64 = 16 << 10;

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeaderV1 {
    format: String,
    version: u32,
    coordinator: String,
    key: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum LineV1 {
    Entry(Box<EntryV1>),
    Head(HeadV1),
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct EntryV1 {
    index: u64,
    time: String,
    event: EventV1,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadV1 {
    size: u64,
    root: String,
    time: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadFileV1 {
    format: String,
    version: u32,
    coordinator: String,
    key: String,
    size: u64,
    root: String,
    time: String,
    signature: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct BudgetV1 {
    epsilon: String,
    delta: String,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeV1 {
    permission: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disease: Option<String>,
    #[serde(default)]
    modifiers: Vec<String>,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
enum TaskV1 {
    Train { model: String, strategy: String },
    Statistics,
    Psi,
    Pjc,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RefusalV1 {
    code: String,
    reason: String,
}

#[derive(Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
enum EventV1 {
    AgreementRecorded {
        agreement: String,
        version: u32,
        hash: String,
    },
    JobAdmitted {
        job: String,
        agreement: String,
        purpose: PurposeV1,
        task: TaskV1,
        coordinator: String,
        operator: Option<String>,
        nodes: Vec<String>,
        secure_aggregation: bool,
        dp: Option<BudgetV1>,
        min_clients_per_round: u32,
    },
    JobRefused {
        job: String,
        agreement: Option<String>,
        refusal: RefusalV1,
    },
    NodeRefused {
        job: String,
        node: String,
        round: Option<u64>,
        refusal: RefusalV1,
    },
    RoundCompleted {
        job: String,
        round: u64,
        participants: Vec<String>,
        secure_aggregation: bool,
        dp: Option<BudgetV1>,
    },
    PrivacySpend {
        job: String,
        agreement: String,
        spent: BudgetV1,
        total: BudgetV1,
    },
    ModelExport {
        job: String,
        party: String,
        dp_trained: bool,
    },
    Cancellation {
        job: String,
        by: Option<String>,
        reason: String,
    },
}

// ---- typed values to wire values ----

fn budget_v1(b: DpBudget) -> BudgetV1 {
    // `{:?}` is Rust's shortest representation that parses back to the same f64.
    BudgetV1 {
        epsilon: format!("{:?}", b.epsilon()),
        delta: format!("{:?}", b.delta()),
    }
}

fn purpose_v1(p: &Purpose) -> PurposeV1 {
    PurposeV1 {
        permission: p.permission().to_string(),
        disease: p.disease().map(ToString::to_string),
        modifiers: p.modifiers().map(|m| m.to_string()).collect(),
    }
}

fn task_v1(t: Task) -> TaskV1 {
    match t {
        Task::Train { model, strategy } => TaskV1::Train {
            model: model.as_str().into(),
            strategy: strategy.as_str().into(),
        },
        Task::Statistics => TaskV1::Statistics,
        Task::Psi => TaskV1::Psi,
        Task::Pjc => TaskV1::Pjc,
    }
}

fn names_v1(v: &[Name]) -> Vec<String> {
    v.iter().map(ToString::to_string).collect()
}

fn refusal_v1(r: &RecordedRefusal) -> RefusalV1 {
    RefusalV1 {
        code: r.code().into(),
        reason: r.reason().into(),
    }
}

fn event_v1(e: &Event) -> EventV1 {
    match e {
        Event::AgreementRecorded {
            agreement,
            version,
            hash,
        } => EventV1::AgreementRecorded {
            agreement: agreement.to_string(),
            version: *version,
            hash: hash.to_hex(),
        },
        Event::JobAdmitted(a) => EventV1::JobAdmitted {
            job: a.job.to_string(),
            agreement: a.agreement.to_hex(),
            purpose: purpose_v1(&a.purpose),
            task: task_v1(a.task),
            coordinator: a.coordinator.to_string(),
            operator: a.operator.as_ref().map(ToString::to_string),
            nodes: names_v1(&a.nodes),
            secure_aggregation: a.secure_aggregation,
            dp: a.dp.map(budget_v1),
            min_clients_per_round: a.min_clients_per_round,
        },
        Event::JobRefused {
            job,
            agreement,
            refusal,
        } => EventV1::JobRefused {
            job: job.to_string(),
            agreement: agreement.map(|h| h.to_hex()),
            refusal: refusal_v1(refusal),
        },
        Event::NodeRefused {
            job,
            node,
            round,
            refusal,
        } => EventV1::NodeRefused {
            job: job.to_string(),
            node: node.to_string(),
            round: *round,
            refusal: refusal_v1(refusal),
        },
        Event::RoundCompleted {
            job,
            round,
            participants,
            secure_aggregation,
            dp,
        } => EventV1::RoundCompleted {
            job: job.to_string(),
            round: *round,
            participants: names_v1(participants),
            secure_aggregation: *secure_aggregation,
            dp: dp.map(budget_v1),
        },
        Event::PrivacySpend {
            job,
            agreement,
            spent,
            total,
        } => EventV1::PrivacySpend {
            job: job.to_string(),
            agreement: agreement.to_hex(),
            spent: budget_v1(*spent),
            total: budget_v1(*total),
        },
        Event::ModelExport {
            job,
            party,
            dp_trained,
        } => EventV1::ModelExport {
            job: job.to_string(),
            party: party.to_string(),
            dp_trained: *dp_trained,
        },
        Event::Cancellation { job, by, reason } => EventV1::Cancellation {
            job: job.to_string(),
            by: by.as_ref().map(ToString::to_string),
            reason: reason.clone(),
        },
    }
}

// ---- wire values to typed values ----

type R<T> = Result<T, String>;

fn name(s: &str) -> R<Name> {
    s.parse::<Name>().map_err(|e| e.to_string())
}

fn names(v: &[String]) -> R<Vec<Name>> {
    if v.len() > crate::log::MAX_PARTICIPANTS {
        return Err(format!("more than {} names", crate::log::MAX_PARTICIPANTS));
    }
    v.iter().map(|s| name(s)).collect()
}

fn job(s: &str) -> R<JobId> {
    s.parse::<JobId>().map_err(|e| e.to_string())
}

fn hash(s: &str) -> R<Hash> {
    Hash::from_hex(s)
}

fn float(s: &str, what: &str) -> R<f64> {
    if s.len() > 64 {
        return Err(format!("{what} is too long"));
    }
    s.parse::<f64>()
        .map_err(|_| format!("{what} {:?} is not a number", s))
}

fn budget(b: &BudgetV1) -> R<DpBudget> {
    DpBudget::new(float(&b.epsilon, "epsilon")?, float(&b.delta, "delta")?)
        .map_err(|e| e.to_string())
}

fn purpose(p: &PurposeV1) -> R<Purpose> {
    let permission: DuoId = p
        .permission
        .parse()
        .map_err(|e: AuditError| e.to_string())?;
    let disease = match &p.disease {
        Some(d) => Some(d.parse::<Disease>().map_err(|e| e.to_string())?),
        None => None,
    };
    if p.modifiers.len() > crate::duo::MAX_MODIFIERS {
        return Err("too many modifiers".into());
    }
    let modifiers = p
        .modifiers
        .iter()
        .map(|m| m.parse::<DuoId>().map_err(|e| e.to_string()))
        .collect::<R<Vec<_>>>()?;
    Purpose::new(permission, disease, modifiers).map_err(|e| e.to_string())
}

fn task(t: &TaskV1) -> R<Task> {
    Ok(match t {
        TaskV1::Train { model, strategy } => Task::Train {
            model: model.parse::<ModelKind>().map_err(|e| e.to_string())?,
            strategy: strategy
                .parse::<StrategyKind>()
                .map_err(|e| e.to_string())?,
        },
        TaskV1::Statistics => Task::Statistics,
        TaskV1::Psi => Task::Psi,
        TaskV1::Pjc => Task::Pjc,
    })
}

fn refusal(r: &RefusalV1) -> R<RecordedRefusal> {
    RecordedRefusal::new(&r.code, &r.reason).map_err(|e| e.to_string())
}

fn event(e: &EventV1) -> R<Event> {
    Ok(match e {
        EventV1::AgreementRecorded {
            agreement,
            version,
            hash: h,
        } => Event::AgreementRecorded {
            agreement: name(agreement)?,
            version: *version,
            hash: hash(h)?,
        },
        EventV1::JobAdmitted {
            job: j,
            agreement,
            purpose: p,
            task: t,
            coordinator,
            operator,
            nodes,
            secure_aggregation,
            dp,
            min_clients_per_round,
        } => Event::JobAdmitted(Admission {
            job: job(j)?,
            agreement: hash(agreement)?,
            purpose: purpose(p)?,
            task: task(t)?,
            coordinator: name(coordinator)?,
            operator: operator.as_deref().map(name).transpose()?,
            nodes: names(nodes)?,
            secure_aggregation: *secure_aggregation,
            dp: dp.as_ref().map(budget).transpose()?,
            min_clients_per_round: *min_clients_per_round,
        }),
        EventV1::JobRefused {
            job: j,
            agreement,
            refusal: r,
        } => Event::JobRefused {
            job: job(j)?,
            agreement: agreement.as_deref().map(hash).transpose()?,
            refusal: refusal(r)?,
        },
        EventV1::NodeRefused {
            job: j,
            node,
            round,
            refusal: r,
        } => Event::NodeRefused {
            job: job(j)?,
            node: name(node)?,
            round: *round,
            refusal: refusal(r)?,
        },
        EventV1::RoundCompleted {
            job: j,
            round,
            participants,
            secure_aggregation,
            dp,
        } => Event::RoundCompleted {
            job: job(j)?,
            round: *round,
            participants: names(participants)?,
            secure_aggregation: *secure_aggregation,
            dp: dp.as_ref().map(budget).transpose()?,
        },
        EventV1::PrivacySpend {
            job: j,
            agreement,
            spent,
            total,
        } => Event::PrivacySpend {
            job: job(j)?,
            agreement: hash(agreement)?,
            spent: budget(spent)?,
            total: budget(total)?,
        },
        EventV1::ModelExport {
            job: j,
            party,
            dp_trained,
        } => Event::ModelExport {
            job: job(j)?,
            party: name(party)?,
            dp_trained: *dp_trained,
        },
        EventV1::Cancellation { job: j, by, reason } => {
            Event::cancellation(job(j)?, by.as_deref().map(name).transpose()?, reason)
                .map_err(|e| e.to_string())?
        }
    })
}

fn key(s: &str) -> R<VerifyingKey> {
    let bytes: [u8; 32] = crate::hash::hex_array(s, "the coordinator's key")?;
    VerifyingKey::from_bytes(&bytes).map_err(|_| "not an Ed25519 public key".to_string())
}

fn signature(s: &str) -> R<Signature> {
    let bytes: [u8; 64] = crate::hash::hex_array(s, "a signature")?;
    Ok(Signature::from_bytes(&bytes))
}

fn time(s: &str) -> R<Timestamp> {
    Timestamp::parse(s)
}

fn head_v1(h: &SignedTreeHead) -> HeadV1 {
    HeadV1 {
        size: h.head.size,
        root: h.head.root.to_hex(),
        time: h.head.time.to_string(),
        signature: hex::encode(h.signature.to_bytes()),
    }
}

fn head(coordinator: &Name, h: &HeadV1) -> R<SignedTreeHead> {
    Ok(SignedTreeHead {
        head: TreeHead {
            coordinator: coordinator.clone(),
            size: h.size,
            root: hash(&h.root)?,
            time: time(&h.time)?,
        },
        signature: signature(&h.signature)?,
    })
}

/// An entry as one line of JSON (the form a coordinator can store, e.g. in SQLite, and
/// [`entry_from_json`] reads back).
pub fn entry_to_json(index: u64, entry: &Entry) -> String {
    let line = EntryV1 {
        index,
        time: entry.time.to_string(),
        event: event_v1(&entry.event),
    };
    serde_json::to_string(&line).unwrap_or_default()
}

/// Reads what [`entry_to_json`] wrote: the entry and its index.
pub fn entry_from_json(text: &str) -> Result<(u64, Entry), AuditError> {
    let v: EntryV1 =
        serde_json::from_str(text).map_err(|e| AuditError::Invalid(format!("log entry: {e}")))?;
    let entry = Entry::new(
        time(&v.time).map_err(|e| AuditError::Invalid(format!("log entry: {e}")))?,
        event(&v.event).map_err(|e| AuditError::Invalid(format!("log entry: {e}")))?,
    );
    Ok((v.index, entry))
}

/// A signed head as a head file (JSON), with the coordinator's key.
pub fn head_to_json(head: &SignedTreeHead, key: &VerifyingKey) -> String {
    let v = HeadFileV1 {
        format: HEAD_FORMAT.into(),
        version: LOG_FORMAT_VERSION,
        coordinator: head.head.coordinator.to_string(),
        key: hex::encode(key.as_bytes()),
        size: head.head.size,
        root: head.head.root.to_hex(),
        time: head.head.time.to_string(),
        signature: hex::encode(head.signature.to_bytes()),
    };
    let mut s = serde_json::to_string_pretty(&v).unwrap_or_default();
    s.push('\n');
    s
}

/// Reads a head file: the signed head and the key it claims (its signature is checked against
/// that key here; whether the key is the coordinator's is for the caller to establish).
pub fn head_from_json(text: &str) -> Result<(SignedTreeHead, VerifyingKey), AuditError> {
    let bad = |m: String| AuditError::HeadFile {
        path: None,
        message: m,
    };
    if text.len() as u64 > MAX_HEAD_BYTES {
        return Err(bad(format!("larger than {MAX_HEAD_BYTES} bytes")));
    }
    let v: HeadFileV1 =
        serde_json::from_str(text).map_err(|e| bad(format!("not a privet head file: {e}")))?;
    if v.format != HEAD_FORMAT {
        return Err(bad(format!(
            "not a privet head file (format {:?})",
            v.format
        )));
    }
    if v.version != LOG_FORMAT_VERSION {
        return Err(bad(format!(
            "head file version {} is not supported (this privet reads {LOG_FORMAT_VERSION})",
            v.version
        )));
    }
    let coordinator = name(&v.coordinator).map_err(bad)?;
    let key = key(&v.key).map_err(bad)?;
    let h = head(
        &coordinator,
        &HeadV1 {
            size: v.size,
            root: v.root,
            time: v.time,
            signature: v.signature,
        },
    )
    .map_err(bad)?;
    h.verify(&key)?;
    Ok((h, key))
}

/// Reads a head file (see [`head_from_json`]).
pub fn load_head(path: &Path) -> Result<(SignedTreeHead, VerifyingKey), AuditError> {
    let text = privet_files::read_text(path, MAX_HEAD_BYTES)?;
    head_from_json(&text).map_err(|e| e.with_path(path))
}

/// An exported log: the coordinator, its key, the entries with the index each carries, and the
/// signed heads.
#[derive(Clone, Debug)]
pub struct LogFile {
    /// The coordinator.
    pub coordinator: Name,
    /// The key the file says the coordinator signs with (check it against the agreement or
    /// the coordinator's certificate).
    pub key: VerifyingKey,
    /// The entries, in file order, with the index each carries.
    pub entries: Vec<(u64, Entry)>,
    /// The signed heads, in file order.
    pub heads: Vec<SignedTreeHead>,
}

/// What a verified log is.
#[derive(Clone, Debug)]
pub struct Verified {
    /// Its entries.
    pub size: u64,
    /// The root of all its entries.
    pub root: Hash,
    /// The largest signed head (latest among equals).
    pub latest: SignedTreeHead,
    /// Signed heads checked (the file's and the given ones).
    pub heads_checked: usize,
    /// Entries after the largest signed head: not yet covered by any signature.
    pub unsigned_tail: u64,
}

impl LogFile {
    /// A log file of these entries and heads.
    pub fn new(
        coordinator: Name,
        key: VerifyingKey,
        entries: Vec<Entry>,
        heads: Vec<SignedTreeHead>,
    ) -> LogFile {
        LogFile {
            coordinator,
            key,
            entries: entries
                .into_iter()
                .enumerate()
                .map(|(i, e)| (i as u64, e))
                .collect(),
            heads,
        }
    }

    /// Reads a log file (at most [`MAX_LOG_BYTES`]).
    pub fn load(path: &Path) -> Result<LogFile, AuditError> {
        let text = privet_files::read_text(path, MAX_LOG_BYTES)?;
        LogFile::parse(&text).map_err(|e| e.with_path(path))
    }

    /// Parses log-file text.
    pub fn parse(text: &str) -> Result<LogFile, AuditError> {
        let bad = |line: usize, message: String| AuditError::LogFile {
            path: None,
            line,
            message,
        };
        let mut lines = text.split('\n').enumerate().map(|(i, l)| (i + 1, l));
        let (_, first) = lines.next().ok_or_else(|| bad(1, "empty file".into()))?;
        if first.len() > MAX_LINE_BYTES {
            return Err(bad(1, format!("longer than {MAX_LINE_BYTES} bytes")));
        }
        let header: HeaderV1 = serde_json::from_str(first)
            .map_err(|e| bad(1, format!("not a privet audit log header: {e}")))?;
        if header.format != LOG_FORMAT {
            return Err(bad(
                1,
                format!("not a privet audit log (format {:?})", header.format),
            ));
        }
        if header.version != LOG_FORMAT_VERSION {
            return Err(bad(
                1,
                format!(
                    "log format version {} is not supported (this privet reads {LOG_FORMAT_VERSION})",
                    header.version
                ),
            ));
        }
        let coordinator = name(&header.coordinator).map_err(|e| bad(1, e))?;
        let key = key(&header.key).map_err(|e| bad(1, e))?;
        let mut entries = Vec::new();
        let mut heads = Vec::new();
        for (n, line) in lines {
            if line.trim().is_empty() {
                continue;
            }
            if line.len() > MAX_LINE_BYTES {
                return Err(bad(n, format!("longer than {MAX_LINE_BYTES} bytes")));
            }
            let parsed: LineV1 = serde_json::from_str(line)
                .map_err(|e| bad(n, format!("not a log entry or head: {e}")))?;
            match parsed {
                LineV1::Entry(v) => {
                    let t = time(&v.time).map_err(|e| bad(n, e))?;
                    let ev = event(&v.event).map_err(|e| bad(n, e))?;
                    entries.push((v.index, Entry::new(t, ev)));
                }
                LineV1::Head(h) => heads.push(head(&coordinator, &h).map_err(|e| bad(n, e))?),
            }
        }
        Ok(LogFile {
            coordinator,
            key,
            entries,
            heads,
        })
    }

    /// The file's text: the header, then the entries, each head right after the entry that
    /// completes it (heads larger than the log at the end).
    pub fn to_text(&self) -> String {
        let header = HeaderV1 {
            format: LOG_FORMAT.into(),
            version: LOG_FORMAT_VERSION,
            coordinator: self.coordinator.to_string(),
            key: hex::encode(self.key.as_bytes()),
        };
        let mut out = serde_json::to_string(&header).unwrap_or_default();
        out.push('\n');
        let mut by_size: BTreeMap<u64, Vec<&SignedTreeHead>> = BTreeMap::new();
        for h in &self.heads {
            by_size.entry(h.head.size).or_default().push(h);
        }
        let mut emit_heads = |out: &mut String, size: u64| {
            if let Some(hs) = by_size.remove(&size) {
                for h in hs {
                    let line = serde_json::to_string(&LineV1::Head(head_v1(h))).unwrap_or_default();
                    let _ = writeln!(out, "{line}");
                }
            }
        };
        emit_heads(&mut out, 0);
        for (i, (index, entry)) in self.entries.iter().enumerate() {
            let line = serde_json::to_string(&LineV1::Entry(Box::new(EntryV1 {
                index: *index,
                time: entry.time.to_string(),
                event: event_v1(&entry.event),
            })))
            .unwrap_or_default();
            let _ = writeln!(out, "{line}");
            emit_heads(&mut out, i as u64 + 1);
        }
        for hs in by_size.into_values() {
            for h in hs {
                let line = serde_json::to_string(&LineV1::Head(head_v1(h))).unwrap_or_default();
                let _ = writeln!(out, "{line}");
            }
        }
        out
    }

    /// Writes the file atomically.
    pub fn write(&self, path: &Path) -> Result<(), AuditError> {
        privet_files::write_atomic(path, self.to_text().as_bytes(), privet_files::Mode::Public)?;
        Ok(())
    }

    /// The Merkle tree of the entries, in file order.
    pub fn tree(&self) -> MerkleTree {
        MerkleTree::from_leaf_hashes(self.entries.iter().map(|(_, e)| e.leaf_hash()))
    }

    /// Verifies the log: `trusted_key`, when given, must be the key the file names (take it
    /// from the agreement or the coordinator's certificate; without it the file's own claim is
    /// all there is); entries carry consecutive indexes; every signed head in the file and in
    /// `witnessed` (heads kept by nodes or parties) is signed by the key and matches the
    /// entries it covers. A head larger than the log means the log was truncated; two heads of
    /// one size with different roots mean a fork; a head whose root differs from the entries
    /// means they were changed, reordered, inserted or removed.
    pub fn verify(
        &self,
        trusted_key: Option<&VerifyingKey>,
        witnessed: &[SignedTreeHead],
    ) -> Result<Verified, AuditError> {
        if let Some(k) = trusted_key
            && k != &self.key
        {
            return Err(AuditError::UntrustedKey {
                coordinator: self.coordinator.clone(),
                claimed: hex::encode(&self.key.as_bytes()[..8]),
                trusted: hex::encode(&k.as_bytes()[..8]),
            });
        }
        for (position, (index, _)) in self.entries.iter().enumerate() {
            if *index != position as u64 {
                return Err(AuditError::OutOfOrder {
                    coordinator: self.coordinator.clone(),
                    position: position as u64,
                    index: *index,
                });
            }
        }
        let tree = self.tree();
        let size = tree.len();
        let all: Vec<&SignedTreeHead> = self.heads.iter().chain(witnessed).collect();
        if all.is_empty() {
            return Err(AuditError::NoHead {
                coordinator: self.coordinator.clone(),
            });
        }
        for h in &all {
            if h.head.coordinator != self.coordinator {
                return Err(AuditError::WrongCoordinator {
                    expected: self.coordinator.clone(),
                    got: h.head.coordinator.clone(),
                });
            }
            h.verify(&self.key)?;
        }
        // Two signed heads of one size must agree: otherwise the coordinator signed two
        // histories (a fork, or a split view shown to different parties).
        let mut by_size: BTreeMap<u64, Hash> = BTreeMap::new();
        for h in &all {
            match by_size.get(&h.head.size) {
                Some(root) if *root != h.head.root => {
                    return Err(AuditError::Forked {
                        coordinator: self.coordinator.clone(),
                        size: h.head.size,
                        a: root.to_hex(),
                        b: h.head.root.to_hex(),
                    });
                }
                _ => {
                    by_size.insert(h.head.size, h.head.root);
                }
            }
        }
        if let Some(largest) = all.iter().map(|h| h.head.size).max()
            && largest > size
        {
            return Err(AuditError::Truncated {
                coordinator: self.coordinator.clone(),
                signed: largest,
                now: size,
            });
        }
        for h in &all {
            let root = tree.root_at(h.head.size)?;
            if root != h.head.root {
                return Err(AuditError::HeadMismatch {
                    coordinator: self.coordinator.clone(),
                    size: h.head.size,
                });
            }
        }
        let latest = all
            .iter()
            .max_by_key(|h| (h.head.size, h.head.time))
            .map(|h| (*h).clone())
            .ok_or_else(|| AuditError::NoHead {
                coordinator: self.coordinator.clone(),
            })?;
        Ok(Verified {
            size,
            root: tree.root(),
            unsigned_tail: size - latest.head.size,
            heads_checked: all.len(),
            latest,
        })
    }
}
