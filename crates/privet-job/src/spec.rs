//! The job file: one TOML document that fully describes a federated (or centralized) run.
//!
//! Every section rejects keys it does not know, naming them, so a typo never silently falls back
//! to a default. See `examples/` at the repository root for complete files.
//!
//! # `[privacy]`: client-level differential privacy (DP-FedAvg)
//!
//! ```toml
//! [privacy]
//! mode = "central"            # or "distributed" (needs secure_aggregation = "secagg+")
//! clip = 1.0                  # per-client L2 bound C on the delta, or instead:
//! # adaptive_clip = { initial = 0.1, target_quantile = 0.5, learning_rate = 0.2 }
//! #                  (optional count_noise = σ_b, default clients per round / 20)
//! noise_multiplier = 1.0      # z: noise std / C on the sum, or instead:
//! # target_epsilon = 8.0      # calibrate z so all `rounds` spend this epsilon at `delta`
//! delta = 1e-5                # reporting delta (defaults to the budget's)
//! budget = { epsilon = 10.0, delta = 1e-5 }   # optional: stop before exceeding it
//! ```
//!
//! Rules, checked when the job is read: exactly one of `clip` / `adaptive_clip` and one of
//! `noise_multiplier` / `target_epsilon`; `delta` (or a budget) is required; `[federation]
//! clip_norm` must not be set as well (the privacy clip replaces it); robust strategies are
//! refused (they need individual updates, and DP-FedAvg noises only a sum); distributed mode
//! needs SecAgg+ and plans its noise for `[federation] min_clients` contributors (rounds with
//! fewer fail before anything is unmasked). Every client counts with weight 1 (bounded
//! contribution), and the sum is divided by a fixed denominator, not by the number that
//! answered. With `[privacy]` and SecAgg+, `[secure_aggregation] max_weight` is set to 1.
//!
//! # `[federation] sampling`: `"poisson"` or `"fixed"`
//!
//! - `"poisson"`: every available client takes part in a round independently with probability
//!   `q = fraction` (so a round's size is random; `clients_per_round` is refused). Accounted as
//!   the Poisson-subsampled Gaussian (add/remove one client; RDP and PLD), which spends much
//!   less epsilon than fixed-size sampling at the same noise. The default under `[privacy]`
//!   unless the job gives `clients_per_round`.
//! - `"fixed"`: `clients_per_round` (or `ceil(fraction · clients)`) clients without
//!   replacement, accounted with the replace-one analysis (`q = k / clients`). The default
//!   without `[privacy]`, or when `clients_per_round` is given.
//!
//! A Poisson draw with fewer than `min_clients` clients skips its round: it uses a round number
//! and counts as a failed round, so a simulation fails after `privet_sim::MAX_SKIPPED_DRAWS`
//! (100) of them in a row and the networked coordinator after `[deployment] max_retries`; see
//! `privet-dpfedavg` for how the accountant charges it, the distributed noise and what they
//! assume.

use std::path::{Path, PathBuf};

use privet_data::PartitionScheme;
use privet_dpfedavg::{ClipPolicy, NoiseLevel, PrivacyConfig, PrivacyMode};
use privet_fl::{SampleSize, StrategyConfig};
use privet_identity::Name;
use privet_ml::{Activation, ModelSpec, OptimizerConfig};
use serde::Deserialize;

use crate::error::JobError;
use crate::policy::FeaturePrivacy;

/// Largest job file read.
const MAX_JOB_BYTES: u64 = 1 << 20;

/// A parsed and validated job.
#[derive(Debug, Clone, PartialEq)]
pub struct Job {
    /// Where the data comes from.
    pub data: DataSource,
    /// How training rows are split over clients.
    pub partition: PartitionScheme,
    /// Number of clients (virtual devices for synthetic data).
    pub clients: usize,
    /// The model.
    pub model: ModelSpec,
    /// Local training.
    pub train: LocalTraining,
    /// The aggregation strategy.
    pub strategy: StrategyConfig,
    /// Rounds, sampling, dropouts and the seed.
    pub federation: Federation,
    /// The real nodes of a networked run (`privet submit`); ignored by `privet simulate`.
    pub deployment: Option<Deployment>,
    /// Secure aggregation (SecAgg+), when `[federation] secure_aggregation = "secagg+"`.
    pub secure_aggregation: Option<privet_secagg::SecAggConfig>,
    /// Client-level differential privacy (`[privacy]`), see the [module documentation](self).
    pub privacy: Option<PrivacyConfig>,
    /// How nodes release feature statistics under `[privacy]` (`[privacy.features]`; required
    /// for networked jobs with `[privacy]`, see [`crate::policy`]).
    pub feature_privacy: Option<FeaturePrivacy>,
    /// Which SecAgg+ quantization bounds the job left unset, so that the stack derives them
    /// from the federation (see [`crate::stack::secagg_config`]).
    pub derive_secagg: DeriveSecAgg,
    /// The signed data-sharing agreement a networked job runs under, and its purpose
    /// (`[agreement]`, see [`crate::agreement`]); ignored by `privet simulate`.
    pub agreement: Option<crate::agreement::AgreementRef>,
}

/// SecAgg+ quantization bounds left to the stack: `max_clients` from the clients per round,
/// `max_weight` from the largest client's example count. A bound set in `[secure_aggregation]`
/// (or by `[privacy]`, which fixes `max_weight = 1`) is kept as it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct DeriveSecAgg {
    /// Derive `max_clients`.
    pub max_clients: bool,
    /// Derive `max_weight`.
    pub max_weight: bool,
}

/// Which keys `[secure_aggregation]` sets (read beside the typed parse).
#[derive(Deserialize)]
struct ExplicitKeys {
    #[serde(default)]
    secure_aggregation: Option<ExplicitSecAggKeys>,
}

#[derive(Deserialize)]
struct ExplicitSecAggKeys {
    max_clients: Option<serde::de::IgnoredAny>,
    max_weight: Option<serde::de::IgnoredAny>,
}

/// The `[deployment]` section: who takes part in a networked run, and its timeouts.
#[derive(Debug, Clone, PartialEq)]
pub struct Deployment {
    /// Expected node names (their certificates' names); node `i` is client `i`.
    pub nodes: Vec<Name>,
    /// Seconds a node has to answer each stage of a round.
    pub round_timeout_secs: f64,
    /// Seconds to wait for every expected node before starting with those connected (at least
    /// `min_clients`).
    pub start_timeout_secs: f64,
    /// Consecutive failed rounds retried before the job fails.
    pub max_retries: u32,
    /// An evaluation set the coordinator holds (named in its `[evaluation]` section): each
    /// completed round's model is evaluated on it and its test accuracy reported.
    pub evaluation: Option<Name>,
}

/// The data of a job.
#[derive(Debug, Clone, PartialEq)]
pub enum DataSource {
    /// A CSV file with a header.
    Csv {
        /// Path, relative to the current directory.
        path: PathBuf,
        /// Label column.
        label: String,
        /// Categorical (one-hot encoded) columns; every other column is numeric.
        categorical: Vec<String>,
        /// Columns ignored as features (a partition column may be one of them).
        drop: Vec<String>,
        /// Fraction of rows held out for the centralized test set.
        test_fraction: f64,
    },
    /// FedProx's Synthetic(alpha, beta), generated per client on demand.
    Synthetic {
        alpha: f64,
        beta: f64,
        rows_per_client: usize,
    },
}

/// Local training settings (the same for every client).
#[derive(Debug, Clone, PartialEq)]
pub struct LocalTraining {
    /// Local epochs per round.
    pub epochs: usize,
    /// Minibatch size.
    pub batch_size: usize,
    /// Optimizer and learning rate.
    pub optimizer: OptimizerConfig,
}

/// Round structure of a federation.
#[derive(Debug, Clone, PartialEq)]
pub struct Federation {
    /// Number of rounds.
    pub rounds: u32,
    /// Clients sampled per round.
    pub sample: SampleSize,
    /// Fewest completed updates for a round to count.
    pub min_clients: usize,
    /// Probability that a sampled client drops out of a round (simulated failures).
    pub dropout: f64,
    /// Seed of everything random: split, partition, initialisation, sampling, shuffles.
    pub seed: u64,
    /// Clip every client's delta to this L2 norm before it leaves the client.
    pub clip_norm: Option<f32>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawJob {
    data: RawData,
    #[serde(default)]
    partition: RawPartition,
    model: RawModel,
    #[serde(default)]
    train: RawTrain,
    #[serde(default)]
    strategy: RawStrategy,
    federation: RawFederation,
    deployment: Option<RawDeployment>,
    secure_aggregation: Option<privet_secagg::SecAggConfig>,
    privacy: Option<RawPrivacy>,
    agreement: Option<crate::agreement::RawAgreementRef>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPrivacy {
    mode: Option<String>,
    clip: Option<f64>,
    adaptive_clip: Option<RawAdaptiveClip>,
    noise_multiplier: Option<f64>,
    target_epsilon: Option<f64>,
    delta: Option<f64>,
    budget: Option<RawBudget>,
    features: Option<RawFeatures>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFeatures {
    epsilon: f64,
    #[serde(default)]
    bounds: std::collections::BTreeMap<String, [f64; 2]>,
    #[serde(default)]
    categories: std::collections::BTreeMap<String, Vec<String>>,
    labels: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawAdaptiveClip {
    initial: f64,
    target_quantile: f64,
    learning_rate: f64,
    count_noise: Option<f64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawBudget {
    epsilon: f64,
    delta: f64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawDeployment {
    nodes: Vec<String>,
    round_timeout_secs: Option<f64>,
    start_timeout_secs: Option<f64>,
    max_retries: Option<u32>,
    evaluation: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawData {
    #[serde(default = "default_source")]
    source: String,
    path: Option<PathBuf>,
    label: Option<String>,
    #[serde(default)]
    categorical: Vec<String>,
    #[serde(default)]
    drop: Vec<String>,
    test_fraction: Option<f64>,
    alpha: Option<f64>,
    beta: Option<f64>,
    rows_per_client: Option<usize>,
}

fn default_source() -> String {
    "csv".into()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawPartition {
    scheme: Option<String>,
    clients: Option<usize>,
    alpha: Option<f64>,
    min_rows: Option<usize>,
    column: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    kind: String,
    hidden: Option<Vec<usize>>,
    activation: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTrain {
    epochs: Option<usize>,
    batch_size: Option<usize>,
    lr: Option<f32>,
    optimizer: Option<String>,
    momentum: Option<f32>,
    beta1: Option<f32>,
    beta2: Option<f32>,
    eps: Option<f32>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStrategy {
    kind: Option<String>,
    mu: Option<f32>,
    server_lr: Option<f64>,
    momentum: Option<f64>,
    eta: Option<f64>,
    beta1: Option<f64>,
    beta2: Option<f64>,
    tau: Option<f64>,
    beta: Option<f64>,
    byzantine: Option<usize>,
    select: Option<usize>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFederation {
    rounds: u32,
    clients_per_round: Option<usize>,
    fraction: Option<f64>,
    sampling: Option<String>,
    min_clients: Option<usize>,
    dropout: Option<f64>,
    #[serde(default)]
    seed: u64,
    clip_norm: Option<f32>,
    secure_aggregation: Option<String>,
}

fn invalid(msg: impl Into<String>) -> JobError {
    JobError::Config(msg.into())
}

/// Fails if a key that the chosen variant does not use was given.
fn reject_unused(section: &str, context: &str, keys: &[(&str, bool)]) -> Result<(), JobError> {
    match keys.iter().find(|(_, present)| *present) {
        Some((key, _)) => Err(invalid(format!(
            "[{section}] `{key}` does not apply to {context}"
        ))),
        None => Ok(()),
    }
}

impl Job {
    /// Reads and validates a job file.
    pub fn from_file(path: &Path) -> Result<Job, JobError> {
        let text = privet_files::read_text(path, MAX_JOB_BYTES).map_err(|e| match e {
            privet_files::FileError::Io { path, source } => JobError::Io { path, source },
            other => JobError::JobFile {
                path: path.into(),
                message: match other {
                    privet_files::FileError::TooLarge { limit, .. } => {
                        format!("larger than {limit} bytes")
                    }
                    other => other.to_string(),
                },
            },
        })?;
        Job::from_toml(&text).map_err(|e| match e {
            JobError::Config(message) => JobError::JobFile {
                path: path.into(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates a job from TOML text.
    pub fn from_toml(text: &str) -> Result<Job, JobError> {
        let raw: RawJob = privet_files::parse_toml(text).map_err(|e| match e {
            privet_files::FileError::Toml { message, .. } => invalid(message),
            other => invalid(other.to_string()),
        })?;
        let keys: ExplicitKeys =
            privet_files::parse_toml(text).map_err(|e| invalid(e.to_string()))?;
        let set = keys.secure_aggregation;
        let derive = DeriveSecAgg {
            max_clients: set.as_ref().is_none_or(|k| k.max_clients.is_none()),
            max_weight: set.as_ref().is_none_or(|k| k.max_weight.is_none()),
        };
        raw.validate(derive)
    }
}

impl RawJob {
    fn validate(self, mut derive_secagg: DeriveSecAgg) -> Result<Job, JobError> {
        let data = self.data.validate()?;
        let (partition, clients) = self.partition.validate(&data)?;
        let model = self.model.validate()?;
        let train = self.train.validate()?;
        let strategy = parse_strategy(self.strategy)?;
        // Building the strategy validates its parameters now rather than mid-run.
        strategy
            .build()
            .map_err(|e| invalid(format!("[strategy] {e}")))?;
        let (federation, secagg_choice) = self.federation.validate(self.privacy.is_some())?;
        let mut secure_aggregation =
            secure_aggregation(secagg_choice.as_deref(), self.secure_aggregation, &strategy)?;
        let deployment = self
            .deployment
            .map(|d| d.validate(federation.min_clients))
            .transpose()?;
        let (privacy, feature_privacy) = match self.privacy {
            Some(p) => {
                let (config, features) = p.validate()?;
                (Some(config), features)
            }
            None => (None, None),
        };
        let agreement = self.agreement.map(|a| a.validate()).transpose()?;
        if agreement.is_some() && deployment.is_none() {
            return Err(invalid(
                "[agreement] applies to networked jobs: add [deployment] with the job's `nodes`",
            ));
        }
        if let (Some(_), Some(d)) = (&secure_aggregation, &deployment)
            && d.nodes.len() < privet_secagg::MIN_CLIENTS
        {
            return Err(invalid(format!(
                "[deployment] secure aggregation needs at least {} nodes per round, and the job \
                 lists {}",
                privet_secagg::MIN_CLIENTS,
                d.nodes.len()
            )));
        }
        if let Some(p) = &privacy {
            check_privacy(p, &federation, &strategy, secure_aggregation.as_mut())?;
            // DP-FedAvg weighs every client 1: max_weight is fixed, not derived.
            derive_secagg.max_weight = false;
            if deployment.is_some() && feature_privacy.is_none() {
                return Err(invalid(
                    "[privacy] a networked job needs [privacy.features] (epsilon, public `bounds` \
                     of numeric columns, `categories` of categorical ones, `labels`): nodes \
                     release their feature statistics with differential privacy, never exactly",
                ));
            }
        }
        Ok(Job {
            data,
            partition,
            clients,
            model,
            train,
            strategy,
            federation,
            deployment,
            secure_aggregation,
            privacy,
            feature_privacy,
            derive_secagg,
            agreement,
        })
    }
}

impl RawData {
    /// `[data]`.
    fn validate(self) -> Result<DataSource, JobError> {
        let d = self;
        let data = match d.source.as_str() {
            "csv" => {
                reject_unused(
                    "data",
                    "CSV data",
                    &[
                        ("alpha", d.alpha.is_some()),
                        ("beta", d.beta.is_some()),
                        ("rows_per_client", d.rows_per_client.is_some()),
                    ],
                )?;
                let path = d
                    .path
                    .ok_or_else(|| invalid("[data] `path` is required for CSV data"))?;
                let label = d
                    .label
                    .ok_or_else(|| invalid("[data] `label` is required for CSV data"))?;
                let test_fraction = d.test_fraction.unwrap_or(0.2);
                if !(0.0..1.0).contains(&test_fraction) {
                    return Err(invalid(format!(
                        "[data] `test_fraction` must be in [0, 1), got {test_fraction}"
                    )));
                }
                DataSource::Csv {
                    path,
                    label,
                    categorical: d.categorical,
                    drop: d.drop,
                    test_fraction,
                }
            }
            "synthetic" => {
                reject_unused(
                    "data",
                    "synthetic data",
                    &[
                        ("path", d.path.is_some()),
                        ("label", d.label.is_some()),
                        ("categorical", !d.categorical.is_empty()),
                        ("drop", !d.drop.is_empty()),
                        ("test_fraction", d.test_fraction.is_some()),
                    ],
                )?;
                let alpha = d.alpha.unwrap_or(1.0);
                let beta = d.beta.unwrap_or(1.0);
                if !(alpha >= 0.0 && beta >= 0.0 && alpha.is_finite() && beta.is_finite()) {
                    return Err(invalid(
                        "[data] synthetic `alpha` and `beta` must be finite and >= 0",
                    ));
                }
                let rows_per_client = d.rows_per_client.unwrap_or(50);
                if rows_per_client == 0 || rows_per_client > 1_000_000 {
                    return Err(invalid("[data] `rows_per_client` must be 1 to 1,000,000"));
                }
                DataSource::Synthetic {
                    alpha,
                    beta,
                    rows_per_client,
                }
            }
            other => {
                return Err(invalid(format!(
                    "[data] `source` must be \"csv\" or \"synthetic\", got \"{other}\""
                )));
            }
        };
        Ok(data)
    }
}

impl RawPartition {
    /// `[partition]`: the scheme and the number of clients.
    fn validate(self, data: &DataSource) -> Result<(PartitionScheme, usize), JobError> {
        let p = self;
        let natural = matches!(p.scheme.as_deref(), Some("natural"));
        // Natural partitions default to one client per distinct key (0 means "as many as keys").
        let clients = p.clients.unwrap_or(if natural { 0 } else { 10 });
        if clients == 0 && !natural {
            return Err(invalid("[partition] `clients` must be at least 1"));
        }
        if clients > 10_000_000 {
            return Err(invalid(
                "[partition] `clients` is above the limit of 10,000,000",
            ));
        }
        let is_synthetic = matches!(data, DataSource::Synthetic { .. });
        let scheme = p
            .scheme
            .as_deref()
            .unwrap_or(if is_synthetic { "natural" } else { "iid" });
        let check_alpha = |a: Option<f64>| -> Result<f64, JobError> {
            let a = a.ok_or_else(|| {
                invalid(format!(
                    "[partition] `alpha` is required for the {scheme} scheme"
                ))
            })?;
            if a.is_finite() && a > 0.0 {
                Ok(a)
            } else {
                Err(invalid(format!("[partition] `alpha` must be > 0, got {a}")))
            }
        };
        let partition = if is_synthetic {
            if scheme != "natural"
                || p.alpha.is_some()
                || p.min_rows.is_some()
                || p.column.is_some()
            {
                return Err(invalid(
                    "[partition] synthetic data is partitioned by device: give only `clients`",
                ));
            }
            PartitionScheme::Natural {
                column: "device".into(),
            }
        } else {
            match scheme {
                "iid" => {
                    reject_unused(
                        "partition",
                        "the iid scheme",
                        &[
                            ("alpha", p.alpha.is_some()),
                            ("min_rows", p.min_rows.is_some()),
                            ("column", p.column.is_some()),
                        ],
                    )?;
                    PartitionScheme::Iid
                }
                "dirichlet" => {
                    reject_unused(
                        "partition",
                        "the dirichlet scheme",
                        &[("column", p.column.is_some())],
                    )?;
                    PartitionScheme::Dirichlet {
                        alpha: check_alpha(p.alpha)?,
                        min_rows: p.min_rows.unwrap_or(1),
                    }
                }
                "quantity" => {
                    reject_unused(
                        "partition",
                        "the quantity scheme",
                        &[("column", p.column.is_some())],
                    )?;
                    PartitionScheme::QuantitySkew {
                        alpha: check_alpha(p.alpha)?,
                        min_rows: p.min_rows.unwrap_or(1),
                    }
                }
                "natural" => {
                    reject_unused(
                        "partition",
                        "the natural scheme",
                        &[
                            ("alpha", p.alpha.is_some()),
                            ("min_rows", p.min_rows.is_some()),
                        ],
                    )?;
                    let column = p.column.ok_or_else(|| {
                        invalid("[partition] `column` is required for the natural scheme")
                    })?;
                    PartitionScheme::Natural { column }
                }
                other => {
                    return Err(invalid(format!(
                        "[partition] `scheme` must be one of iid, dirichlet, quantity, natural; got \"{other}\""
                    )));
                }
            }
        };
        Ok((partition, clients))
    }
}

impl RawModel {
    /// `[model]`.
    fn validate(self) -> Result<ModelSpec, JobError> {
        let m = self;
        let model = match m.kind.as_str() {
            "logreg" => {
                reject_unused(
                    "model",
                    "logreg",
                    &[
                        ("hidden", m.hidden.is_some()),
                        ("activation", m.activation.is_some()),
                    ],
                )?;
                ModelSpec::Logreg
            }
            "mlp" => ModelSpec::Mlp {
                hidden: m.hidden.unwrap_or_else(|| vec![64]),
                activation: match m.activation.as_deref() {
                    None | Some("relu") => Activation::Relu,
                    Some("square") => Activation::Square,
                    Some(other) => {
                        return Err(invalid(format!(
                            "[model] `activation` must be relu or square; got \"{other}\""
                        )));
                    }
                },
            },
            "cnn" => {
                reject_unused(
                    "model",
                    "cnn",
                    &[
                        ("hidden", m.hidden.is_some()),
                        ("activation", m.activation.is_some()),
                    ],
                )?;
                ModelSpec::Cnn
            }
            other => {
                return Err(invalid(format!(
                    "[model] `kind` must be logreg, mlp or cnn; got \"{other}\""
                )));
            }
        };
        Ok(model)
    }
}

impl RawTrain {
    /// `[train]`.
    fn validate(self) -> Result<LocalTraining, JobError> {
        let t = self;
        let lr = t.lr.unwrap_or(0.1);
        let optimizer = match t.optimizer.as_deref().unwrap_or("sgd") {
            "sgd" => {
                reject_unused(
                    "train",
                    "sgd",
                    &[
                        ("beta1", t.beta1.is_some()),
                        ("beta2", t.beta2.is_some()),
                        ("eps", t.eps.is_some()),
                    ],
                )?;
                OptimizerConfig::Sgd {
                    lr,
                    momentum: t.momentum.unwrap_or(0.0),
                }
            }
            "adam" => {
                reject_unused("train", "adam", &[("momentum", t.momentum.is_some())])?;
                OptimizerConfig::Adam {
                    lr,
                    beta1: t.beta1.unwrap_or(0.9),
                    beta2: t.beta2.unwrap_or(0.999),
                    eps: t.eps.unwrap_or(1e-8),
                }
            }
            other => {
                return Err(invalid(format!(
                    "[train] `optimizer` must be sgd or adam; got \"{other}\""
                )));
            }
        };
        let train = LocalTraining {
            epochs: t.epochs.unwrap_or(1),
            batch_size: t.batch_size.unwrap_or(32),
            optimizer,
        };
        if train.epochs == 0 || train.epochs > 10_000 || train.batch_size == 0 {
            return Err(invalid(
                "[train] `epochs` must be 1 to 10,000 and `batch_size` at least 1",
            ));
        }
        if !(lr.is_finite() && lr > 0.0) {
            return Err(invalid(format!("[train] `lr` must be > 0, got {lr}")));
        }
        Ok(train)
    }
}

impl RawFederation {
    /// `[federation]`, and its `secure_aggregation` choice (checked with its table).
    /// `private`: the job has a `[privacy]` section (Poisson sampling is then the default).
    fn validate(self, private: bool) -> Result<(Federation, Option<String>), JobError> {
        let f = self;
        let secagg_choice = f.secure_aggregation.clone();
        let sample = match (f.clients_per_round, f.fraction) {
            (Some(_), Some(_)) => {
                return Err(invalid(
                    "[federation] give `clients_per_round` or `fraction`, not both",
                ));
            }
            (Some(0), None) => {
                return Err(invalid(
                    "[federation] `clients_per_round` must be at least 1",
                ));
            }
            (Some(n), None) => SampleSize::Count(n),
            (None, Some(fr)) if fr > 0.0 && fr <= 1.0 => SampleSize::Fraction(fr),
            (None, Some(fr)) => {
                return Err(invalid(format!(
                    "[federation] `fraction` must be in (0, 1], got {fr}"
                )));
            }
            (None, None) => SampleSize::Fraction(1.0),
        };
        let poisson = match f.sampling.as_deref() {
            Some("poisson") => true,
            Some("fixed") => false,
            // Under [privacy], Poisson unless the job fixed the count.
            None => private && f.clients_per_round.is_none(),
            Some(other) => {
                return Err(invalid(format!(
                    "[federation] `sampling` must be \"poisson\" or \"fixed\", got {:?}",
                    other.chars().take(40).collect::<String>()
                )));
            }
        };
        let sample = match (poisson, sample) {
            (true, SampleSize::Fraction(q)) => SampleSize::Poisson(q),
            (true, _) => {
                return Err(invalid(
                    "[federation] Poisson sampling takes `fraction` (each client's probability \
                     of taking part in a round), not `clients_per_round`",
                ));
            }
            (false, size) => size,
        };
        if f.rounds == 0 || f.rounds > 100_000 {
            return Err(invalid("[federation] `rounds` must be 1 to 100,000"));
        }
        let dropout = f.dropout.unwrap_or(0.0);
        if !(0.0..1.0).contains(&dropout) {
            return Err(invalid(format!(
                "[federation] `dropout` must be in [0, 1), got {dropout}"
            )));
        }
        if let Some(c) = f.clip_norm
            && !(c.is_finite() && c > 0.0)
        {
            return Err(invalid(format!(
                "[federation] `clip_norm` must be > 0, got {c}"
            )));
        }
        let federation = Federation {
            rounds: f.rounds,
            sample,
            min_clients: f.min_clients.unwrap_or(1).max(1),
            dropout,
            seed: f.seed,
            clip_norm: f.clip_norm,
        };
        Ok((federation, secagg_choice))
    }
}

/// `[federation] secure_aggregation` and the `[secure_aggregation]` table.
fn secure_aggregation(
    choice: Option<&str>,
    table: Option<privet_secagg::SecAggConfig>,
    strategy: &StrategyConfig,
) -> Result<Option<privet_secagg::SecAggConfig>, JobError> {
    let secure_aggregation = match choice {
        None | Some("none") => {
            if table.is_some() {
                return Err(invalid(
                    "[secure_aggregation] is set but [federation] `secure_aggregation` is not \
                     \"secagg+\"",
                ));
            }
            None
        }
        Some("secagg+") => {
            let cfg = table.unwrap_or_default();
            cfg.validate()
                .map_err(|e| invalid(format!("[secure_aggregation] {e}")))?;
            if strategy_needs_individual(strategy) {
                return Err(invalid(
                    "[strategy] robust strategies need individual updates, which secure \
                     aggregation hides",
                ));
            }
            Some(cfg)
        }
        Some(other) => {
            return Err(invalid(format!(
                "[federation] `secure_aggregation` must be \"none\" or \"secagg+\", got \
                 \"{other}\""
            )));
        }
    };
    Ok(secure_aggregation)
}

/// `[privacy]` against the other sections; with SecAgg+, sets its `max_weight` to 1.
fn check_privacy(
    p: &PrivacyConfig,
    federation: &Federation,
    strategy: &StrategyConfig,
    secure_aggregation: Option<&mut privet_secagg::SecAggConfig>,
) -> Result<(), JobError> {
    if federation.clip_norm.is_some() {
        return Err(invalid(
            "[federation] `clip_norm` cannot be combined with [privacy]: its `clip` or \
             `adaptive_clip` bounds the updates",
        ));
    }
    if strategy_needs_individual(strategy) {
        return Err(invalid(
            "[privacy] robust strategies need individual updates; DP-FedAvg noises only \
             their sum (use fedavg, fedprox, fedavgm or fedadam/fedyogi/fedadagrad)",
        ));
    }
    match (p.mode, secure_aggregation) {
        (PrivacyMode::Distributed, None) => {
            return Err(invalid(
                "[privacy] mode = \"distributed\" needs [federation] secure_aggregation \
                 = \"secagg+\" (each client's noise is only private under masking)",
            ));
        }
        (PrivacyMode::Distributed, Some(_)) if federation.min_clients < 2 => {
            return Err(invalid(
                "[privacy] distributed noise is planned for [federation] min_clients \
                 contributors: set min_clients to at least 2",
            ));
        }
        (_, Some(sa)) => sa.max_weight = 1,
        (PrivacyMode::Central, None) => {}
    }
    Ok(())
}

impl RawFeatures {
    /// `[privacy.features]`.
    fn validate(self) -> Result<FeaturePrivacy, JobError> {
        let bad = |m: String| invalid(format!("[privacy.features] {m}"));
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(bad(format!(
                "`epsilon` must be finite and > 0, got {}",
                self.epsilon
            )));
        }
        let mut bounds = std::collections::BTreeMap::new();
        let mut default_bounds = None;
        for (column, [lo, hi]) in self.bounds {
            if !(lo.is_finite() && hi.is_finite() && lo < hi) {
                return Err(bad(format!(
                    "`bounds.{column}` must be [lower, upper] with lower < upper, got [{lo}, {hi}]"
                )));
            }
            if column == "*" {
                default_bounds = Some((lo, hi));
            } else {
                bounds.insert(column, (lo, hi));
            }
        }
        if self.labels.is_empty() {
            return Err(bad("`labels` must list the label's classes".into()));
        }
        Ok(FeaturePrivacy {
            epsilon: self.epsilon,
            bounds,
            default_bounds,
            categories: self.categories,
            labels: self.labels,
        })
    }
}

impl RawPrivacy {
    fn validate(self) -> Result<(PrivacyConfig, Option<FeaturePrivacy>), JobError> {
        let features = self.features.map(RawFeatures::validate).transpose()?;
        let bad = |m: String| invalid(format!("[privacy] {m}"));
        let positive = |key: &str, v: f64| -> Result<f64, JobError> {
            if v.is_finite() && v > 0.0 {
                Ok(v)
            } else {
                Err(bad(format!("`{key}` must be finite and > 0, got {v}")))
            }
        };
        let unit = |key: &str, v: f64| -> Result<f64, JobError> {
            if v > 0.0 && v < 1.0 {
                Ok(v)
            } else {
                Err(bad(format!("`{key}` must be in (0, 1), got {v}")))
            }
        };
        let mode = match self.mode.as_deref().unwrap_or("central") {
            "central" => PrivacyMode::Central,
            "distributed" => PrivacyMode::Distributed,
            other => {
                return Err(bad(format!(
                    "`mode` must be \"central\" or \"distributed\", got \"{other}\""
                )));
            }
        };
        let clip = match (self.clip, self.adaptive_clip) {
            (Some(c), None) => ClipPolicy::Fixed(positive("clip", c)?),
            (None, Some(a)) => ClipPolicy::Adaptive {
                initial: positive("adaptive_clip.initial", a.initial)?,
                target_quantile: unit("adaptive_clip.target_quantile", a.target_quantile)?,
                learning_rate: positive("adaptive_clip.learning_rate", a.learning_rate)?,
                count_noise: a
                    .count_noise
                    .map(|s| positive("adaptive_clip.count_noise", s))
                    .transpose()?,
            },
            _ => return Err(bad("give exactly one of `clip` and `adaptive_clip`".into())),
        };
        let noise = match (self.noise_multiplier, self.target_epsilon) {
            (Some(z), None) => NoiseLevel::Multiplier(positive("noise_multiplier", z)?),
            (None, Some(e)) => NoiseLevel::TargetEpsilon(positive("target_epsilon", e)?),
            _ => {
                return Err(bad(
                    "give exactly one of `noise_multiplier` and `target_epsilon`".into(),
                ));
            }
        };
        let budget = self
            .budget
            .map(|b| -> Result<(f64, f64), JobError> {
                Ok((
                    positive("budget.epsilon", b.epsilon)?,
                    unit("budget.delta", b.delta)?,
                ))
            })
            .transpose()?;
        let delta = match (self.delta, budget) {
            (Some(d), _) => unit("delta", d)?,
            (None, Some((_, d))) => d,
            (None, None) => return Err(bad("`delta` is required (or a `budget`)".into())),
        };
        let config = PrivacyConfig {
            mode,
            clip,
            noise,
            delta,
            budget,
        };
        Ok((config, features))
    }
}

fn strategy_needs_individual(strategy: &StrategyConfig) -> bool {
    strategy
        .build()
        .map(|s| s.requirement() == privet_fl::Requirement::Individual)
        .unwrap_or(false)
}

impl RawDeployment {
    fn validate(self, min_clients: usize) -> Result<Deployment, JobError> {
        if self.nodes.is_empty() || self.nodes.len() > 10_000 {
            return Err(invalid(
                "[deployment] `nodes` must list 1 to 10,000 node names",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        let mut nodes = Vec::with_capacity(self.nodes.len());
        for name in &self.nodes {
            let parsed: Name = name.parse().map_err(|_| {
                invalid(format!(
                    "[deployment] invalid node name {:?} (1-64 ASCII letters, digits, '-', '_' \
                     or '.')",
                    name.chars().take(80).collect::<String>()
                ))
            })?;
            nodes.push(parsed);
            if !seen.insert(name) {
                return Err(invalid(format!(
                    "[deployment] node {name:?} is listed twice"
                )));
            }
        }
        if min_clients > self.nodes.len() {
            return Err(invalid(format!(
                "[federation] `min_clients` is {min_clients} but [deployment] lists only {} nodes",
                self.nodes.len()
            )));
        }
        let secs = |key: &str, v: Option<f64>, default: f64| -> Result<f64, JobError> {
            let v = v.unwrap_or(default);
            if v.is_finite() && v > 0.0 && v <= 86_400.0 {
                Ok(v)
            } else {
                Err(invalid(format!(
                    "[deployment] `{key}` must be in (0, 86400] seconds, got {v}"
                )))
            }
        };
        Ok(Deployment {
            round_timeout_secs: secs("round_timeout_secs", self.round_timeout_secs, 60.0)?,
            start_timeout_secs: secs("start_timeout_secs", self.start_timeout_secs, 30.0)?,
            max_retries: self.max_retries.unwrap_or(3),
            evaluation: self
                .evaluation
                .map(|e| {
                    e.parse().map_err(|_| {
                        invalid(format!(
                            "[deployment] invalid evaluation set name {:?} (1-64 ASCII letters, \
                             digits, '-', '_' or '.')",
                            e.chars().take(80).collect::<String>()
                        ))
                    })
                })
                .transpose()?,
            nodes,
        })
    }
}

fn parse_strategy(s: RawStrategy) -> Result<StrategyConfig, JobError> {
    let kind = s.kind.clone().unwrap_or_else(|| "fedavg".into());
    let given = [
        ("mu", s.mu.is_some()),
        ("server_lr", s.server_lr.is_some()),
        ("momentum", s.momentum.is_some()),
        ("eta", s.eta.is_some()),
        ("beta1", s.beta1.is_some()),
        ("beta2", s.beta2.is_some()),
        ("tau", s.tau.is_some()),
        ("beta", s.beta.is_some()),
        ("byzantine", s.byzantine.is_some()),
        ("select", s.select.is_some()),
    ];
    let allow = |allowed: &[&str]| -> Result<(), JobError> {
        let unused: Vec<(&str, bool)> = given
            .iter()
            .map(|&(k, present)| (k, present && !allowed.contains(&k)))
            .collect();
        reject_unused("strategy", &kind, &unused)
    };
    let cfg = match kind.as_str() {
        "fedavg" => {
            allow(&[])?;
            StrategyConfig::FedAvg
        }
        "fedprox" => {
            allow(&["mu"])?;
            StrategyConfig::FedProx {
                mu: s.mu.unwrap_or(0.01),
            }
        }
        "fedavgm" => {
            allow(&["server_lr", "momentum"])?;
            match StrategyConfig::fed_avgm() {
                StrategyConfig::FedAvgM {
                    server_lr,
                    momentum,
                } => StrategyConfig::FedAvgM {
                    server_lr: s.server_lr.unwrap_or(server_lr),
                    momentum: s.momentum.unwrap_or(momentum),
                },
                other => other,
            }
        }
        "fedadam" => {
            allow(&["eta", "beta1", "beta2", "tau"])?;
            match StrategyConfig::fed_adam() {
                StrategyConfig::FedAdam {
                    eta,
                    beta1,
                    beta2,
                    tau,
                } => StrategyConfig::FedAdam {
                    eta: s.eta.unwrap_or(eta),
                    beta1: s.beta1.unwrap_or(beta1),
                    beta2: s.beta2.unwrap_or(beta2),
                    tau: s.tau.unwrap_or(tau),
                },
                other => other,
            }
        }
        "fedyogi" => {
            allow(&["eta", "beta1", "beta2", "tau"])?;
            match StrategyConfig::fed_yogi() {
                StrategyConfig::FedYogi {
                    eta,
                    beta1,
                    beta2,
                    tau,
                } => StrategyConfig::FedYogi {
                    eta: s.eta.unwrap_or(eta),
                    beta1: s.beta1.unwrap_or(beta1),
                    beta2: s.beta2.unwrap_or(beta2),
                    tau: s.tau.unwrap_or(tau),
                },
                other => other,
            }
        }
        "fedadagrad" => {
            allow(&["eta", "beta1", "tau"])?;
            match StrategyConfig::fed_adagrad() {
                StrategyConfig::FedAdagrad { eta, beta1, tau } => StrategyConfig::FedAdagrad {
                    eta: s.eta.unwrap_or(eta),
                    beta1: s.beta1.unwrap_or(beta1),
                    tau: s.tau.unwrap_or(tau),
                },
                other => other,
            }
        }
        "median" => {
            allow(&[])?;
            StrategyConfig::Median
        }
        "trimmed_mean" => {
            allow(&["beta"])?;
            StrategyConfig::TrimmedMean {
                beta: s.beta.unwrap_or(0.1),
            }
        }
        "krum" => {
            allow(&["byzantine"])?;
            StrategyConfig::Krum {
                byzantine: s.byzantine.unwrap_or(0),
            }
        }
        "multikrum" => {
            allow(&["byzantine", "select"])?;
            StrategyConfig::MultiKrum {
                byzantine: s.byzantine.unwrap_or(0),
                select: s.select,
            }
        }
        other => {
            return Err(invalid(format!(
                "[strategy] `kind` must be one of fedavg, fedprox, fedavgm, fedadam, fedyogi, fedadagrad, median, trimmed_mean, krum, multikrum; got \"{other}\""
            )));
        }
    };
    Ok(cfg)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn job(deployment_extra: &str) -> Result<Job, JobError> {
        Job::from_toml(&format!(
            "[data]\npath = \"d.csv\"\nlabel = \"y\"\n\n[model]\nkind = \"logreg\"\n\n[federation]\nrounds = 2\n\
             clients_per_round = 2\nmin_clients = 2\n\n[deployment]\nnodes = [\"a\", \"b\"]\n\
             {deployment_extra}"
        ))
    }

    #[test]
    fn a_deployment_names_an_evaluation_set_or_none() {
        let d = job("").unwrap().deployment.unwrap();
        assert_eq!(d.evaluation, None);
        let d = job("evaluation = \"held-out.v2\"\n")
            .unwrap()
            .deployment
            .unwrap();
        assert_eq!(d.evaluation.unwrap().as_str(), "held-out.v2");
        let e = job("evaluation = \"../etc/passwd\"\n").unwrap_err();
        assert!(e.to_string().contains("invalid evaluation set name"), "{e}");
        let e = job("evaluation = \"\"\n").unwrap_err();
        assert!(e.to_string().contains("invalid evaluation set name"), "{e}");
    }
}
