//! What may leave a node for a job: the policy that a node's egress chokepoint enforces.
//!
//! A node sends the coordinator a closed set of message kinds: its `Hello`, a summary of its
//! feature columns (once per job, to fit the shared feature encoding), the answers of the
//! job's aggregation protocol, and failures. [`EgressPolicy`] says, from the job, which answers
//! are allowed (plain updates, or only secure-aggregation messages) and how feature statistics
//! may be released: exactly, or under `[privacy]` with differential privacy
//! ([`release_dp_summary`]), so that a DP job reveals no exact per-node statistics either.
//!
//! # DP feature summaries (`[privacy.features]`)
//!
//! Standardizing features needs each numeric column's mean and variance over all nodes. Under
//! `[privacy]` a node releases, for its own rows, a noisy row count and, per numeric column, a
//! noisy clamped sum and a noisy clamped sum of squares, with exact discrete Laplace noise
//! (privet-dp) and a total of `epsilon` split equally over these queries; the coordinator
//! combines the noisy summaries as it would exact ones. Values are clamped to the job's public
//! `bounds` and put on a grid of 4,096 steps of the larger bound. Categorical columns and labels
//! release nothing: their categories are the job's public lists (`categories`, `labels`), and a
//! node whose data holds a value outside them fails without naming the value.
//!
//! The guarantee is record-level: `epsilon`-DP with respect to adding or removing one row of the
//! node's data (each row one person), spent once per job, separately from and in addition to
//! DP-FedAvg's client-level guarantee for the model.

use std::collections::BTreeMap;

use privet_data::{Column, ColumnSummary, DataSummary, Table};
use privet_dp::stats::{IntegerNoise, NumericDomain, QueryBudget};
use rand::{CryptoRng, RngCore};

use crate::{Job, JobError, Protocol};

/// Grid steps of the larger bound for DP feature sums: fine enough for standardization, coarse
/// enough that a sum of squares keeps its noise scale within privet-dp's limits.
const GRID_STEPS: f64 = 4096.0;

/// `[privacy.features]`: how a node releases feature statistics under `[privacy]`.
#[derive(Debug, Clone, PartialEq)]
pub struct FeaturePrivacy {
    /// Pure epsilon spent per node (record-level) on its summary.
    pub epsilon: f64,
    /// Public bounds of numeric columns, by name.
    pub bounds: BTreeMap<String, (f64, f64)>,
    /// Bounds of numeric columns not named in `bounds` (`"*"`), if any.
    pub default_bounds: Option<(f64, f64)>,
    /// Public categories of categorical columns, by name.
    pub categories: BTreeMap<String, Vec<String>>,
    /// The label's public classes.
    pub labels: Vec<String>,
}

impl FeaturePrivacy {
    fn bounds_of(&self, column: &str) -> Option<(f64, f64)> {
        self.bounds.get(column).copied().or(self.default_bounds)
    }
}

/// How a node may release its feature statistics.
#[derive(Debug, Clone, PartialEq)]
pub enum SummaryPolicy {
    /// Exact per-column count, mean, M2 and categories (no `[privacy]`).
    Exact,
    /// Differentially private ([`release_dp_summary`]).
    Dp(FeaturePrivacy),
}

/// Which protocol answers may leave a node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerPolicy {
    /// Plain updates (deltas in the clear, after the job's clipping and DP transforms).
    PlainUpdates,
    /// Only secure-aggregation messages: a plain update would reveal what masking hides.
    SecureAggregation,
}

/// What may leave a node for a job.
#[derive(Debug, Clone, PartialEq)]
pub struct EgressPolicy {
    /// Protocol answers.
    pub answers: AnswerPolicy,
    /// Feature statistics.
    pub summary: SummaryPolicy,
}

impl Job {
    /// The egress policy of this job.
    pub fn egress_policy(&self) -> EgressPolicy {
        let answers = if self.secure_aggregation.is_some() {
            AnswerPolicy::SecureAggregation
        } else {
            AnswerPolicy::PlainUpdates
        };
        let summary = match (&self.privacy, &self.feature_privacy) {
            (Some(_), Some(features)) => SummaryPolicy::Dp(features.clone()),
            // Validation refuses a networked [privacy] job without [privacy.features]; a
            // simulation never releases summaries.
            _ => SummaryPolicy::Exact,
        };
        EgressPolicy { answers, summary }
    }

    /// Whether [`Protocol::of`] and the egress policy agree (both come from this job).
    pub fn answers_match(&self, protocol: &Protocol) -> bool {
        matches!(
            (self.egress_policy().answers, protocol),
            (AnswerPolicy::PlainUpdates, Protocol::Plain)
                | (AnswerPolicy::SecureAggregation, Protocol::SecAggPlus(_))
        )
    }
}

fn refuse(why: impl Into<String>) -> JobError {
    JobError::Config(format!("[privacy.features] {}", why.into()))
}

/// The DP summary of `table` under `features` (see the [module documentation](self)). Errors
/// name columns, never values.
pub fn release_dp_summary<R: RngCore + CryptoRng + ?Sized>(
    table: &Table,
    features: &FeaturePrivacy,
    rng: &mut R,
) -> Result<DataSummary, JobError> {
    let numeric: Vec<(&str, &[f64])> = table
        .columns
        .iter()
        .filter_map(|c| match c {
            Column::Numeric { name, values } => Some((name.as_str(), values.as_slice())),
            _ => None,
        })
        .collect();
    let queries = 1 + 2 * numeric.len();
    let budget = QueryBudget::Pure {
        epsilon: features.epsilon / queries as f64,
    };
    let dp = |e: privet_dp::DpError| refuse(e.to_string());
    let rows = table.num_rows() as i64;
    let count = IntegerNoise::new(1, budget).map_err(dp)?;
    let noisy_rows = (rows + count.sample(rng)).max(1) as f64;
    let mut columns = Vec::with_capacity(table.columns.len());
    for column in &table.columns {
        match column {
            Column::Numeric { name, values } => {
                let (lo, hi) = features.bounds_of(name).ok_or_else(|| {
                    refuse(format!(
                        "no `bounds` for numeric column `{name}` (nor \"*\")"
                    ))
                })?;
                let resolution = lo.abs().max(hi.abs()) / GRID_STEPS;
                let domain = NumericDomain::new(lo, hi, Some(resolution)).map_err(dp)?;
                let max = domain.max_abs_index();
                let mut sum = 0i64;
                let mut squares = 0i64;
                for &v in values.iter() {
                    let k = domain.index(v);
                    sum = sum.saturating_add(k);
                    squares = squares.saturating_add(k.saturating_mul(k));
                }
                let sum_noise = IntegerNoise::new(max.max(1), budget).map_err(dp)?;
                let sq_noise = IntegerNoise::new((max * max).max(1), budget).map_err(dp)?;
                let noisy_sum = sum.saturating_add(sum_noise.sample(rng)) as f64 * resolution;
                let noisy_sq =
                    squares.saturating_add(sq_noise.sample(rng)) as f64 * resolution * resolution;
                let mean = (noisy_sum / noisy_rows).clamp(lo, hi);
                let variance = (noisy_sq / noisy_rows - mean * mean).max(0.0);
                columns.push(ColumnSummary::Numeric {
                    name: name.clone(),
                    count: noisy_rows as u64,
                    mean,
                    m2: variance * noisy_rows,
                });
            }
            Column::Categorical { name, values } => {
                let declared = features.categories.get(name).ok_or_else(|| {
                    refuse(format!("no `categories` for categorical column `{name}`"))
                })?;
                if let Some(row) = values.iter().position(|v| !declared.contains(v)) {
                    return Err(refuse(format!(
                        "{}: line {}, column `{name}`: a category not in the job's list",
                        table.source.display(),
                        table.line_of(row)
                    )));
                }
                let mut categories = declared.clone();
                categories.sort();
                columns.push(ColumnSummary::Categorical {
                    name: name.clone(),
                    categories,
                });
            }
        }
    }
    if let Some(labels) = &table.labels
        && let Some(row) = labels.iter().position(|l| !features.labels.contains(l))
    {
        return Err(refuse(format!(
            "{}: line {}: a label not in the job's `labels`",
            table.source.display(),
            table.line_of(row)
        )));
    }
    let labels = privet_data::sort_labels(features.labels.clone());
    Ok(DataSummary {
        rows: noisy_rows as u64,
        columns,
        labels,
    })
}
