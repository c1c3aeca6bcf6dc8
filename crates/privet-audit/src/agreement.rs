//! Data-sharing agreements: the file, its canonical bytes, signatures and amendments.
//!
//! An agreement is a TOML file (`format_version = 1`) that every party signs. What is signed is
//! not the text but the [canonical encoding](crate::canon) of what the text says, so comments,
//! layout and key order do not matter, and signatures live in the same file
//! (`[[signatures]]`) without changing what they sign. See `Agreement::template` for a
//! commented example of every field.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::path::Path;
use std::str::FromStr;

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use privet_identity::{Name, Role};
use serde::Deserialize;
use toml::Spanned;

use crate::canon::Canon;
use crate::duo::{Disease, DuoId, Purpose};
use crate::{AuditError, Hash, Timestamp};

/// The agreement file format this crate reads and writes.
pub const FORMAT_VERSION: u32 = 1;
/// Largest agreement file read.
pub const MAX_AGREEMENT_BYTES: u64 = 256 << 10;
/// Most parties in one agreement.
pub const MAX_PARTIES: usize = 256;
/// Most purposes in one agreement.
pub const MAX_PURPOSES: usize = 64;
/// Longest title, in characters.
pub const MAX_TITLE_CHARS: usize = 200;
/// Longest data set description, in characters.
pub const MAX_DESCRIPTION_CHARS: usize = 2000;
/// Longest retention period, in days (100 years).
pub const MAX_RETENTION_DAYS: u32 = 36_500;

const TAG_BODY: &str = "privet-audit/v1/agreement";
const TAG_SIGNATURE: &str = "privet-audit/v1/agreement-signature";

/// What a party does under the agreement.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum PartyRole {
    /// Contributes a data set through its node (a node certificate).
    DataOwner,
    /// Runs the coordinator (a coordinator certificate).
    Coordinator,
    /// Submits jobs and fetches models (an operator certificate).
    Operator,
}

impl PartyRole {
    /// Every role.
    pub const ALL: [PartyRole; 3] = [
        PartyRole::DataOwner,
        PartyRole::Coordinator,
        PartyRole::Operator,
    ];

    /// The role's name in agreement files.
    pub fn as_str(self) -> &'static str {
        match self {
            PartyRole::DataOwner => "data-owner",
            PartyRole::Coordinator => "coordinator",
            PartyRole::Operator => "operator",
        }
    }

    /// The certificate role that goes with this party role.
    pub fn certificate_role(self) -> Role {
        match self {
            PartyRole::DataOwner => Role::Node,
            PartyRole::Coordinator => Role::Coordinator,
            PartyRole::Operator => Role::Operator,
        }
    }

    /// The party role of a certificate role.
    pub fn of_certificate(role: Role) -> PartyRole {
        match role {
            Role::Node => PartyRole::DataOwner,
            Role::Coordinator => PartyRole::Coordinator,
            Role::Operator => PartyRole::Operator,
        }
    }
}

impl FromStr for PartyRole {
    type Err = AuditError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        PartyRole::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| {
                AuditError::Invalid(format!(
                    "unknown role {:?} (data-owner, coordinator or operator)",
                    s.chars().take(40).collect::<String>()
                ))
            })
    }
}

impl fmt::Display for PartyRole {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A party: its name (its certificate's name), role and Ed25519 key (its certificate's key).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Party {
    /// The name.
    pub name: Name,
    /// The role.
    pub role: PartyRole,
    /// The key it signs with.
    pub key: VerifyingKey,
}

macro_rules! named_enum {
    ($(#[$meta:meta])* $name:ident, $what:literal, { $($(#[$vmeta:meta])* $variant:ident => $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The name used in job and agreement files.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }
        }

        impl FromStr for $name {
            type Err = AuditError;

            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s).ok_or_else(|| {
                    AuditError::Invalid(format!(
                        "unknown {} {:?} (one of {})",
                        $what,
                        s.chars().take(40).collect::<String>(),
                        $name::ALL.iter().map(|v| v.as_str()).collect::<Vec<_>>().join(", ")
                    ))
                })
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

named_enum!(
    /// A model kind a job may train (privet-job's `[model] kind`).
    ModelKind, "model kind", {
        /// Logistic regression.
        Logreg => "logreg",
        /// Multi-layer perceptron.
        Mlp => "mlp",
        /// Small convolutional network.
        Cnn => "cnn",
    }
);

named_enum!(
    /// An aggregation strategy a job may use (privet-job's `[strategy] kind`).
    StrategyKind, "strategy", {
        /// FedAvg.
        FedAvg => "fedavg",
        /// FedProx.
        FedProx => "fedprox",
        /// FedAvg with server momentum.
        FedAvgM => "fedavgm",
        /// FedOpt with Adam.
        FedAdam => "fedadam",
        /// FedOpt with Yogi.
        FedYogi => "fedyogi",
        /// FedOpt with Adagrad.
        FedAdagrad => "fedadagrad",
        /// Coordinate-wise median.
        Median => "median",
        /// Trimmed mean.
        TrimmedMean => "trimmed_mean",
        /// Krum.
        Krum => "krum",
        /// Multi-Krum.
        MultiKrum => "multikrum",
    }
);

/// A differential-privacy budget: epsilon and delta. Both finite, epsilon at least 0, delta in
/// [0, 1).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpBudget {
    epsilon: f64,
    delta: f64,
}

impl DpBudget {
    /// Nothing spent.
    pub const ZERO: DpBudget = DpBudget {
        epsilon: 0.0,
        delta: 0.0,
    };

    /// A budget; refuses NaN, infinities, negative values and delta >= 1.
    pub fn new(epsilon: f64, delta: f64) -> Result<DpBudget, AuditError> {
        if !(epsilon.is_finite() && epsilon >= 0.0) {
            return Err(AuditError::Invalid(format!(
                "epsilon must be a finite number >= 0, got {epsilon}"
            )));
        }
        if !(delta.is_finite() && (0.0..1.0).contains(&delta)) {
            return Err(AuditError::Invalid(format!(
                "delta must be in [0, 1), got {delta}"
            )));
        }
        // +0.0 and -0.0 compare equal but encode differently: keep one.
        Ok(DpBudget {
            epsilon: epsilon + 0.0,
            delta: delta + 0.0,
        })
    }

    /// Epsilon.
    pub fn epsilon(self) -> f64 {
        self.epsilon
    }

    /// Delta.
    pub fn delta(self) -> f64 {
        self.delta
    }

    /// The sum of two budgets (basic composition).
    pub fn plus(self, other: DpBudget) -> DpBudget {
        DpBudget {
            epsilon: self.epsilon + other.epsilon,
            delta: self.delta + other.delta,
        }
    }

    /// Whether this budget fits within `limit` (a relative slack of 1e-9 absorbs rounding in
    /// sums such as 0.1 + 0.2).
    pub fn within(self, limit: DpBudget) -> bool {
        const SLACK: f64 = 1e-9;
        self.epsilon <= limit.epsilon * (1.0 + SLACK) && self.delta <= limit.delta * (1.0 + SLACK)
    }

    pub(crate) fn encode(self, c: &mut Canon) {
        c.f64(self.epsilon).f64(self.delta);
    }
}

impl fmt::Display for DpBudget {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(epsilon {}, delta {:e})", self.epsilon, self.delta)
    }
}

/// What jobs under the agreement may do.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct PermittedTasks {
    /// Model kinds that may be trained (empty: no training).
    pub models: BTreeSet<ModelKind>,
    /// Strategies they may be trained with.
    pub strategies: BTreeSet<StrategyKind>,
    /// Differentially private statistics (`privet stats`).
    pub statistics: bool,
    /// Private set intersection.
    pub psi: bool,
    /// Private join and compute.
    pub pjc: bool,
}

/// Limits on differential privacy: every job must be DP within `per_job`, and all jobs
/// together within `total`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpLimits {
    /// The most one job may spend.
    pub per_job: DpBudget,
    /// The most all jobs under the agreement may spend together.
    pub total: DpBudget,
}

/// Who may take a trained model out of the federation.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct ExportRule {
    /// The parties that may export (fetch) a model; empty: nobody.
    pub parties: BTreeSet<Name>,
    /// Whether only models trained with differential privacy may leave.
    pub dp_only: bool,
}

/// The protections every job must have.
#[derive(Clone, Debug, PartialEq)]
pub struct Protections {
    /// Secure aggregation must be on.
    pub secure_aggregation: bool,
    /// The fewest clients whose updates a round may combine.
    pub min_clients_per_round: u32,
    /// Differential privacy, if required.
    pub dp: Option<DpLimits>,
    /// Model export.
    pub export: ExportRule,
}

/// What an agreement says (everything that is signed).
#[derive(Clone, Debug, PartialEq)]
pub struct AgreementBody {
    /// The agreement's id (same rules as party names); stays the same across amendments.
    pub id: Name,
    /// Its version: 1, then one more for each amendment.
    pub version: u32,
    /// The hash of the version it amends (versions after 1).
    pub previous: Option<Hash>,
    /// A human title.
    pub title: String,
    /// The parties, sorted by name.
    pub parties: Vec<Party>,
    /// What each data owner contributes, by node name.
    pub datasets: BTreeMap<Name, String>,
    /// The permitted purposes.
    pub purposes: BTreeSet<Purpose>,
    /// The permitted tasks.
    pub tasks: PermittedTasks,
    /// The required protections.
    pub protections: Protections,
    /// Valid from this time on.
    pub not_before: Timestamp,
    /// Valid until (excluding) this time.
    pub not_after: Timestamp,
    /// How long outputs (models, statistics, reports) may be kept, in days.
    pub retention_days: u32,
}

impl AgreementBody {
    /// The party named `name`.
    pub fn party(&self, name: &str) -> Option<&Party> {
        self.parties.iter().find(|p| p.name == *name)
    }

    /// The canonical bytes that are hashed and signed.
    pub fn canonical_bytes(&self) -> Vec<u8> {
        let mut c = Canon::new(TAG_BODY);
        c.u32(FORMAT_VERSION)
            .str(self.id.as_str())
            .u32(self.version)
            .opt(self.previous, |c, h| {
                c.fixed(&h.0);
            })
            .str(&self.title)
            .i64(self.not_before.unix())
            .i64(self.not_after.unix())
            .u32(self.retention_days);
        // Sorted here too, so a body built by hand encodes like a parsed one.
        let mut parties: Vec<&Party> = self.parties.iter().collect();
        parties.sort_by(|a, b| a.name.cmp(&b.name));
        c.list(parties.into_iter(), |c, p| {
            c.str(p.name.as_str())
                .str(p.role.as_str())
                .fixed(p.key.as_bytes());
        });
        c.list(self.datasets.iter(), |c, (node, description)| {
            c.str(node.as_str()).str(description);
        });
        c.list(self.purposes.iter(), |c, p| p.encode(c));
        let t = &self.tasks;
        c.list(t.models.iter(), |c, m| {
            c.str(m.as_str());
        });
        c.list(t.strategies.iter(), |c, s| {
            c.str(s.as_str());
        });
        c.bool(t.statistics).bool(t.psi).bool(t.pjc);
        let p = &self.protections;
        c.bool(p.secure_aggregation)
            .u32(p.min_clients_per_round)
            .opt(p.dp, |c, dp| {
                dp.per_job.encode(c);
                dp.total.encode(c);
            });
        c.list(p.export.parties.iter(), |c, n| {
            c.str(n.as_str());
        });
        c.bool(p.export.dp_only);
        c.finish()
    }
}

/// One party's signature over an agreement's hash.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PartySignature {
    /// The party.
    pub party: Name,
    /// Ed25519 over `signature_message(hash)`.
    pub signature: Signature,
}

impl PartySignature {
    /// The `[[signatures]]` block that records this signature in an agreement file.
    pub fn toml_block(&self) -> String {
        format!(
            "\n[[signatures]]\nparty = \"{}\"\nsignature = \"{}\"\n",
            self.party,
            hex::encode(self.signature.to_bytes())
        )
    }
}

/// The message a party signs: a domain-separation tag and the agreement's hash. The tag keeps
/// an agreement signature from ever passing for another signature made with the same
/// certificate key (TLS handshakes, secure-aggregation keys, tree heads).
pub fn signature_message(hash: &Hash) -> Vec<u8> {
    let mut c = Canon::new(TAG_SIGNATURE);
    c.fixed(&hash.0);
    c.finish()
}

/// Who signed an agreement.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SignatureStatus {
    /// Parties whose signature verifies.
    pub signed: Vec<Name>,
    /// Parties with no signature.
    pub missing: Vec<Name>,
    /// Parties whose signature does not verify (tampered text, or signed another version).
    pub invalid: Vec<Name>,
}

impl SignatureStatus {
    /// Whether every party signed these bytes.
    pub fn complete(&self) -> bool {
        self.missing.is_empty() && self.invalid.is_empty()
    }
}

/// A parsed agreement: its body, canonical bytes, hash and the signatures found with it.
#[derive(Clone, Debug)]
pub struct Agreement {
    body: AgreementBody,
    canonical: Vec<u8>,
    hash: Hash,
    signatures: Vec<PartySignature>,
}

impl Agreement {
    /// An agreement from its body, unsigned.
    pub fn from_body(body: AgreementBody) -> Agreement {
        let canonical = body.canonical_bytes();
        let hash = Hash::of(&[&canonical]);
        Agreement {
            body,
            canonical,
            hash,
            signatures: Vec::new(),
        }
    }

    /// Reads and checks an agreement file (at most [`MAX_AGREEMENT_BYTES`]); certificate paths
    /// in it are relative to the file's directory.
    pub fn load(path: &Path) -> Result<Agreement, AuditError> {
        let text = privet_files::read_text(path, MAX_AGREEMENT_BYTES)?;
        let base = path.parent().unwrap_or(Path::new("."));
        Agreement::parse(&text, Some(base)).map_err(|e| e.with_path(path))
    }

    /// Parses and checks agreement text. `base` is the directory that `certificate` paths are
    /// relative to; without it, parties must give their `key`.
    pub fn parse(text: &str, base: Option<&Path>) -> Result<Agreement, AuditError> {
        if text.len() as u64 > MAX_AGREEMENT_BYTES {
            return Err(AuditError::agreement(format!(
                "larger than the {MAX_AGREEMENT_BYTES}-byte limit"
            )));
        }
        let probe: Probe = privet_files::parse_toml(text).map_err(file_err)?;
        match probe.format_version {
            None => {
                return Err(AuditError::agreement(format!(
                    "no format_version: an agreement file starts with `format_version = {FORMAT_VERSION}`"
                )));
            }
            Some(v) if v != i64::from(FORMAT_VERSION) => {
                return Err(AuditError::agreement(format!(
                    "format_version {v} is not supported (this privet reads version {FORMAT_VERSION})"
                )));
            }
            Some(_) => {}
        }
        let file: FileV1 = privet_files::parse_toml(text).map_err(file_err)?;
        Checker { text, base }.agreement(file)
    }

    /// What the agreement says.
    pub fn body(&self) -> &AgreementBody {
        &self.body
    }

    /// The agreement's id.
    pub fn id(&self) -> &Name {
        &self.body.id
    }

    /// Its version.
    pub fn version(&self) -> u32 {
        self.body.version
    }

    /// SHA-256 of the canonical bytes: what parties sign, what amendments and jobs refer to.
    pub fn hash(&self) -> Hash {
        self.hash
    }

    /// The canonical bytes.
    pub fn canonical_bytes(&self) -> &[u8] {
        &self.canonical
    }

    /// The signatures found with the agreement (checked by [`Agreement::signature_status`]).
    pub fn signatures(&self) -> &[PartySignature] {
        &self.signatures
    }

    /// Signs the agreement with `key`, which must be a party's key.
    pub fn sign(&self, key: &SigningKey) -> Result<PartySignature, AuditError> {
        let public = key.verifying_key();
        let party = self
            .body
            .parties
            .iter()
            .find(|p| p.key == public)
            .ok_or_else(|| AuditError::NotAParty {
                agreement: self.body.id.clone(),
                key: hex::encode(&public.as_bytes()[..8]),
            })?;
        Ok(PartySignature {
            party: party.name.clone(),
            signature: key.sign(&signature_message(&self.hash)),
        })
    }

    /// Adds a signature (replacing an earlier one by the same party). Not checked here: see
    /// [`Agreement::signature_status`].
    pub fn add_signature(&mut self, signature: PartySignature) {
        self.signatures.retain(|s| s.party != signature.party);
        self.signatures.push(signature);
    }

    /// Checks every party's signature (Ed25519 `verify_strict`).
    pub fn signature_status(&self) -> SignatureStatus {
        let message = signature_message(&self.hash);
        let mut status = SignatureStatus::default();
        for party in &self.body.parties {
            match self.signatures.iter().find(|s| s.party == party.name) {
                None => status.missing.push(party.name.clone()),
                Some(s) => {
                    if party.key.verify_strict(&message, &s.signature).is_ok() {
                        status.signed.push(party.name.clone());
                    } else {
                        status.invalid.push(party.name.clone());
                    }
                }
            }
        }
        status
    }

    /// Whether every party signed these canonical bytes.
    pub fn fully_signed(&self) -> bool {
        self.signature_status().complete()
    }

    /// An error naming who has not signed (or whose signature fails) unless every party signed.
    pub fn require_fully_signed(&self) -> Result<(), AuditError> {
        let status = self.signature_status();
        if status.complete() {
            return Ok(());
        }
        let names = |v: &[Name]| v.iter().map(Name::as_str).collect::<Vec<_>>().join(", ");
        let mut parts = Vec::new();
        if !status.invalid.is_empty() {
            parts.push(format!(
                "the signature of {} does not match this text (it was changed after signing, or signed another version)",
                names(&status.invalid)
            ));
        }
        if !status.missing.is_empty() {
            parts.push(format!("not signed by {}", names(&status.missing)));
        }
        Err(AuditError::NotFullySigned(format!(
            "agreement {} version {} is not in force: {}",
            self.body.id,
            self.body.version,
            parts.join("; ")
        )))
    }

    /// Checks that this agreement is the amendment that directly follows `previous`: the same
    /// id, the next version number, and `previous` naming that version's hash.
    pub fn check_amends(&self, previous: &Agreement) -> Result<(), AuditError> {
        let (b, p) = (&self.body, &previous.body);
        if b.id != p.id {
            return Err(AuditError::BadAmendment(format!(
                "agreement {} cannot amend agreement {}: the ids differ",
                b.id, p.id
            )));
        }
        if Some(b.version) != p.version.checked_add(1) {
            return Err(AuditError::BadAmendment(format!(
                "version {} of agreement {} cannot amend version {}: amendments go one version at a time",
                b.version, b.id, p.version
            )));
        }
        match b.previous {
            Some(h) if h == previous.hash => Ok(()),
            Some(h) => Err(AuditError::BadAmendment(format!(
                "version {} of agreement {} names previous {}, but version {} hashes to {}",
                b.version,
                b.id,
                h,
                p.version,
                previous.hash()
            ))),
            None => Err(AuditError::BadAmendment(format!(
                "version {} of agreement {} does not name the hash of version {}",
                b.version, b.id, p.version
            ))),
        }
    }

    /// A commented agreement file for these parties (or, without parties, for example parties
    /// whose keys come from `certs/NAME.pem`), valid from `not_before` for `days` days.
    pub fn template(parties: &[Party], not_before: Timestamp, days: u32) -> String {
        crate::template::render(parties, not_before, days)
    }
}

fn file_err(e: privet_files::FileError) -> AuditError {
    match e {
        privet_files::FileError::Toml { message, .. } => AuditError::agreement(message),
        other => AuditError::Files(other),
    }
}

/// Reads only the format version, before the full parse.
#[derive(Deserialize)]
struct Probe {
    format_version: Option<i64>,
}

/// A time written as a string or as a TOML datetime.
#[derive(Deserialize)]
#[serde(untagged)]
enum TimeV1 {
    Text(String),
    Toml(toml::value::Datetime),
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct FileV1 {
    #[allow(dead_code)]
    format_version: u32,
    id: Spanned<String>,
    version: Spanned<u32>,
    previous: Option<Spanned<String>>,
    title: Spanned<String>,
    not_before: Spanned<TimeV1>,
    not_after: Spanned<TimeV1>,
    retention_days: Spanned<u32>,
    parties: Spanned<Vec<PartyV1>>,
    datasets: Spanned<BTreeMap<String, Spanned<String>>>,
    purposes: Spanned<Vec<PurposeV1>>,
    tasks: Spanned<TasksV1>,
    protections: ProtectionsV1,
    #[serde(default)]
    signatures: Vec<SignatureV1>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PartyV1 {
    name: Spanned<String>,
    role: Spanned<String>,
    key: Option<Spanned<String>>,
    certificate: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PurposeV1 {
    term: Spanned<String>,
    disease: Option<Spanned<String>>,
    #[serde(default)]
    modifiers: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TasksV1 {
    #[serde(default)]
    models: Vec<Spanned<String>>,
    #[serde(default)]
    strategies: Vec<Spanned<String>>,
    #[serde(default)]
    statistics: bool,
    #[serde(default)]
    psi: bool,
    #[serde(default)]
    pjc: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProtectionsV1 {
    secure_aggregation: bool,
    min_clients_per_round: Spanned<u32>,
    dp: Option<Spanned<DpV1>>,
    export: ExportV1,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct DpV1 {
    epsilon_per_job: f64,
    delta_per_job: f64,
    epsilon_total: f64,
    delta_total: f64,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ExportV1 {
    parties: Vec<Spanned<String>>,
    dp_only: bool,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct SignatureV1 {
    party: Spanned<String>,
    signature: Spanned<String>,
}

/// Turns a file's values into typed ones, with the line and column of anything wrong.
struct Checker<'a> {
    text: &'a str,
    base: Option<&'a Path>,
}

type Span = std::ops::Range<usize>;

impl Checker<'_> {
    fn err(&self, span: Span, message: impl fmt::Display) -> AuditError {
        let start = span.start.min(self.text.len());
        let before = self.text.get(..start).unwrap_or("");
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
        AuditError::agreement(format!("line {line}, column {column}: {message}"))
    }

    fn at<T>(&self, v: &Spanned<T>, message: impl fmt::Display) -> AuditError {
        self.err(v.span(), message)
    }

    fn name(&self, v: &Spanned<String>, what: &str) -> Result<Name, AuditError> {
        v.get_ref()
            .parse::<Name>()
            .map_err(|e| self.at(v, format!("{what}: {e}")))
    }

    fn text_field(
        &self,
        v: &Spanned<String>,
        what: &str,
        max: usize,
    ) -> Result<String, AuditError> {
        let s = v.get_ref();
        if s.trim().is_empty() {
            return Err(self.at(v, format!("{what} is empty")));
        }
        if s.chars().count() > max {
            return Err(self.at(v, format!("{what} is longer than {max} characters")));
        }
        if s.chars().any(|c| c.is_control() && c != '\n' && c != '\t') {
            return Err(self.at(v, format!("{what} contains control characters")));
        }
        Ok(s.clone())
    }

    fn time(&self, v: &Spanned<TimeV1>, what: &str) -> Result<Timestamp, AuditError> {
        let text = match v.get_ref() {
            TimeV1::Text(s) => s.clone(),
            TimeV1::Toml(d) => d.to_string(),
        };
        Timestamp::parse(&text).map_err(|e| self.at(v, format!("{what}: {e}")))
    }

    fn agreement(&self, f: FileV1) -> Result<Agreement, AuditError> {
        let id = self.name(&f.id, "id")?;
        let version = *f.version.get_ref();
        if version == 0 {
            return Err(self.at(&f.version, "version starts at 1"));
        }
        let previous = match (&f.previous, version) {
            (None, 1) => None,
            (Some(p), 1) => {
                return Err(self.at(p, "version 1 amends nothing: remove `previous`"));
            }
            (None, v) => {
                return Err(self.at(
                    &f.version,
                    format!(
                        "version {v} is an amendment: give `previous`, the hash of version {} (`privet agreement show` prints it)",
                        v - 1
                    ),
                ));
            }
            (Some(p), _) => Some(
                Hash::from_hex(p.get_ref()).map_err(|e| self.at(p, format!("previous: {e}")))?,
            ),
        };
        let title = self.text_field(&f.title, "title", MAX_TITLE_CHARS)?;
        let not_before = self.time(&f.not_before, "not_before")?;
        let not_after = self.time(&f.not_after, "not_after")?;
        if not_after <= not_before {
            return Err(self.at(&f.not_after, "not_after must be later than not_before"));
        }
        let retention_days = *f.retention_days.get_ref();
        if !(1..=MAX_RETENTION_DAYS).contains(&retention_days) {
            return Err(self.at(
                &f.retention_days,
                format!("retention_days must be 1 to {MAX_RETENTION_DAYS}"),
            ));
        }

        let parties = self.parties(&f.parties)?;
        let party = |n: &Name| parties.iter().find(|p| p.name == *n);

        let mut datasets = BTreeMap::new();
        if f.datasets.get_ref().len() > MAX_PARTIES {
            return Err(self.at(&f.datasets, format!("more than {MAX_PARTIES} data sets")));
        }
        for (node, description) in f.datasets.get_ref() {
            let name: Name = node.parse().map_err(|e| {
                self.at(
                    description,
                    format!(
                        "data set {:?}: {e}",
                        node.chars().take(70).collect::<String>()
                    ),
                )
            })?;
            match party(&name) {
                Some(p) if p.role == PartyRole::DataOwner => {}
                Some(p) => {
                    return Err(self.at(
                        description,
                        format!(
                            "data set of {name}: {name} is the {}, not a data owner",
                            p.role
                        ),
                    ));
                }
                None => {
                    return Err(self.at(
                        description,
                        format!("data set of {name}: {name} is not a party"),
                    ));
                }
            }
            let text =
                self.text_field(description, "a data set description", MAX_DESCRIPTION_CHARS)?;
            datasets.insert(name, text);
        }
        for p in &parties {
            if p.role == PartyRole::DataOwner && !datasets.contains_key(&p.name) {
                return Err(self.at(
                    &f.datasets,
                    format!(
                        "data owner {} has no entry under [datasets]: say what it contributes",
                        p.name
                    ),
                ));
            }
        }

        let purposes = self.purposes(&f.purposes)?;
        let tasks = self.tasks(&f.tasks)?;
        let protections = self.protections(&f.protections, &parties)?;

        let body = AgreementBody {
            id,
            version,
            previous,
            title,
            parties,
            datasets,
            purposes,
            tasks,
            protections,
            not_before,
            not_after,
            retention_days,
        };
        let mut agreement = Agreement::from_body(body);
        let mut seen = BTreeSet::new();
        for s in &f.signatures {
            let name = self.name(&s.party, "signatures: party")?;
            if agreement.body.party(name.as_str()).is_none() {
                return Err(self.at(
                    &s.party,
                    format!("a signature by {name}, who is not a party"),
                ));
            }
            if !seen.insert(name.clone()) {
                return Err(self.at(
                    &s.party,
                    format!("{name} has signed twice: keep one signature"),
                ));
            }
            let bytes: [u8; 64] = crate::hash::hex_array(s.signature.get_ref(), "a signature")
                .map_err(|e| self.at(&s.signature, e))?;
            agreement.signatures.push(PartySignature {
                party: name,
                signature: Signature::from_bytes(&bytes),
            });
        }
        Ok(agreement)
    }

    fn parties(&self, list: &Spanned<Vec<PartyV1>>) -> Result<Vec<Party>, AuditError> {
        if list.get_ref().is_empty() {
            return Err(self.at(list, "an agreement needs parties"));
        }
        if list.get_ref().len() > MAX_PARTIES {
            return Err(self.at(list, format!("more than {MAX_PARTIES} parties")));
        }
        let mut parties: Vec<Party> = Vec::new();
        for p in list.get_ref() {
            let name = self.name(&p.name, "party name")?;
            let role: PartyRole = p.role.get_ref().parse().map_err(|e| self.at(&p.role, e))?;
            let key = match (&p.key, &p.certificate) {
                (Some(k), None) => {
                    let bytes: [u8; 32] = crate::hash::hex_array(k.get_ref(), "key")
                        .map_err(|e| self.at(k, format!("party {name}: {e}")))?;
                    VerifyingKey::from_bytes(&bytes).map_err(|_| {
                        self.at(k, format!("party {name}: not an Ed25519 public key"))
                    })?
                }
                (None, Some(c)) => self.certificate_key(c, &name, role)?,
                (Some(k), Some(_)) => {
                    return Err(self.at(
                        k,
                        format!("party {name}: give `key` or `certificate`, not both"),
                    ));
                }
                (None, None) => {
                    return Err(self.at(
                        &p.name,
                        format!("party {name}: give its Ed25519 `key` (64 hex characters) or its `certificate` (a PEM file)"),
                    ));
                }
            };
            if parties.iter().any(|q| q.name == name) {
                return Err(self.at(&p.name, format!("party {name} is listed twice")));
            }
            if let Some(q) = parties.iter().find(|q| q.key == key) {
                return Err(self.at(
                    &p.name,
                    format!(
                        "parties {} and {name} have the same key: each party signs with its own",
                        q.name
                    ),
                ));
            }
            parties.push(Party { name, role, key });
        }
        for role in [PartyRole::DataOwner, PartyRole::Coordinator] {
            if !parties.iter().any(|p| p.role == role) {
                return Err(self.at(
                    list,
                    format!("an agreement needs at least one {role} party"),
                ));
            }
        }
        parties.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(parties)
    }

    fn certificate_key(
        &self,
        c: &Spanned<String>,
        name: &Name,
        role: PartyRole,
    ) -> Result<VerifyingKey, AuditError> {
        let Some(base) = self.base else {
            return Err(self.at(
                c,
                format!("party {name}: a certificate path needs the agreement's directory; give `key` instead"),
            ));
        };
        let path = base.join(c.get_ref());
        let certs = privet_identity::load_certs(&path)
            .map_err(|e| self.at(c, format!("party {name}: {e}")))?;
        let leaf = certs
            .first()
            .ok_or_else(|| self.at(c, format!("party {name}: no certificate")))?;
        let id = privet_identity::identity_of(leaf.as_ref())
            .map_err(|e| self.at(c, format!("party {name}: {e}")))?;
        if id.name != *name {
            return Err(self.at(
                c,
                format!(
                    "party {name}: {} is the certificate of {}",
                    path.display(),
                    id.name
                ),
            ));
        }
        if id.role != role.certificate_role() {
            return Err(self.at(
                c,
                format!(
                    "party {name}: a {role} needs a {} certificate, {} is a {} certificate",
                    role.certificate_role(),
                    path.display(),
                    id.role
                ),
            ));
        }
        privet_identity::certified_key(leaf.as_ref())
            .map_err(|e| self.at(c, format!("party {name}: {e}")))
    }

    fn purposes(&self, list: &Spanned<Vec<PurposeV1>>) -> Result<BTreeSet<Purpose>, AuditError> {
        if list.get_ref().is_empty() {
            return Err(self.at(
                list,
                "an agreement needs at least one purpose ([[purposes]] with a DUO term)",
            ));
        }
        if list.get_ref().len() > MAX_PURPOSES {
            return Err(self.at(list, format!("more than {MAX_PURPOSES} purposes")));
        }
        let mut out = BTreeSet::new();
        for p in list.get_ref() {
            let term: DuoId = p.term.get_ref().parse().map_err(|e| self.at(&p.term, e))?;
            let disease = match &p.disease {
                Some(d) => Some(d.get_ref().parse::<Disease>().map_err(|e| self.at(d, e))?),
                None => None,
            };
            let mut modifiers = Vec::new();
            for m in &p.modifiers {
                modifiers.push(m.get_ref().parse::<DuoId>().map_err(|e| self.at(m, e))?);
            }
            let purpose =
                Purpose::new(term, disease, modifiers).map_err(|e| self.at(&p.term, e))?;
            if !out.insert(purpose) {
                return Err(self.at(&p.term, "this purpose is listed twice"));
            }
        }
        Ok(out)
    }

    fn tasks(&self, t: &Spanned<TasksV1>) -> Result<PermittedTasks, AuditError> {
        let v = t.get_ref();
        let mut tasks = PermittedTasks {
            statistics: v.statistics,
            psi: v.psi,
            pjc: v.pjc,
            ..PermittedTasks::default()
        };
        for m in &v.models {
            let kind: ModelKind = m.get_ref().parse().map_err(|e| self.at(m, e))?;
            if !tasks.models.insert(kind) {
                return Err(self.at(m, format!("model {kind} is listed twice")));
            }
        }
        for s in &v.strategies {
            let kind: StrategyKind = s.get_ref().parse().map_err(|e| self.at(s, e))?;
            if !tasks.strategies.insert(kind) {
                return Err(self.at(s, format!("strategy {kind} is listed twice")));
            }
        }
        if tasks.models.is_empty() != tasks.strategies.is_empty() {
            return Err(self.at(
                t,
                "[tasks] lists models and strategies together (both, or neither for no training)",
            ));
        }
        if tasks.models.is_empty() && !tasks.statistics && !tasks.psi && !tasks.pjc {
            return Err(self.at(t, "[tasks] permits nothing: list models and strategies, or set statistics, psi or pjc"));
        }
        Ok(tasks)
    }

    fn protections(&self, p: &ProtectionsV1, parties: &[Party]) -> Result<Protections, AuditError> {
        let min_clients = *p.min_clients_per_round.get_ref();
        if min_clients == 0 {
            return Err(self.at(
                &p.min_clients_per_round,
                "min_clients_per_round must be at least 1",
            ));
        }
        let owners = parties
            .iter()
            .filter(|q| q.role == PartyRole::DataOwner)
            .count();
        if min_clients as usize > owners {
            return Err(self.at(
                &p.min_clients_per_round,
                format!("min_clients_per_round is {min_clients} but the agreement has only {owners} data owners"),
            ));
        }
        let dp = match &p.dp {
            None => None,
            Some(d) => {
                let v = d.get_ref();
                let budget = |eps: f64, delta: f64, what: &str| {
                    DpBudget::new(eps, delta)
                        .map_err(|e| self.at(d, format!("[protections.dp] {what}: {e}")))
                };
                let per_job = budget(v.epsilon_per_job, v.delta_per_job, "per job")?;
                let total = budget(v.epsilon_total, v.delta_total, "total")?;
                if per_job.epsilon() <= 0.0 {
                    return Err(self.at(d, "[protections.dp] epsilon_per_job must be more than 0"));
                }
                if !per_job.within(total) {
                    return Err(
                        self.at(d, "[protections.dp] a job's budget cannot exceed the total")
                    );
                }
                Some(DpLimits { per_job, total })
            }
        };
        let mut export = ExportRule {
            parties: BTreeSet::new(),
            dp_only: p.export.dp_only,
        };
        for n in &p.export.parties {
            let name = self.name(n, "export")?;
            if !parties.iter().any(|q| q.name == name) {
                return Err(self.at(n, format!("export: {name} is not a party")));
            }
            if !export.parties.insert(name.clone()) {
                return Err(self.at(n, format!("export: {name} is listed twice")));
            }
        }
        if let (true, None, Some(first)) = (export.dp_only, &dp, p.export.parties.first()) {
            return Err(self.at(
                first,
                "[protections.export] dp_only = true but no [protections.dp]: no model could be exported",
            ));
        }
        Ok(Protections {
            secure_aggregation: p.secure_aggregation,
            min_clients_per_round: min_clients,
            dp,
            export,
        })
    }
}
