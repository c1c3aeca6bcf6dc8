//! `privet stats`: differentially private statistics of one CSV column.
//!
//! ```text
//! privet stats --csv FILE --column COL [--count] [--sum] [--mean]
//!              [--histogram BINS | --categories A,B,C] [--quantiles 0.25,0.5,0.75]
//!              [--lower L --upper U] [--resolution G] --epsilon E [--delta D]
//!              [--max-contributions C] [--id COL] [--quantile-candidates M] [--json]
//! ```
//!
//! The work is done by [`privet_dp::stats`] (whose documentation gives the mechanisms, the
//! budget split and the accounting); this file reads the column, applies contribution bounding
//! by `--id`, and prints only the noisy releases, never an exact count or statistic. Noise is
//! drawn from ChaCha20 keyed by the operating system. Bad parameters exit with code 2, a bad CSV
//! with code 3.

use std::path::PathBuf;

use crate::out::outln;
use anyhow::Result;
use clap::Args;
use privet_data::{Column, CsvOptions, DataError, load_csv, read_header};
use privet_dp::DpError;
use privet_dp::noise::os_seeded_rng;
use privet_dp::stats::{
    ColumnValues, DEFAULT_QUANTILE_CANDIDATES, HistogramSpec, NoiseInfo, NumericDomain,
    QueryBudget, StatsBudget, StatsOptions, StatsQuery, StatsReport, bound_contributions, release,
};
use serde_json::{Value, json};

/// Arguments of `privet stats`.
#[derive(Debug, Args)]
pub struct StatsArgs {
    /// The CSV file (a header row, then one row per record).
    #[arg(long)]
    pub csv: PathBuf,
    /// The column to describe.
    #[arg(long)]
    pub column: String,
    /// Release the number of rows.
    #[arg(long)]
    pub count: bool,
    /// Release the sum of the values clamped to [LOWER, UPPER].
    #[arg(long)]
    pub sum: bool,
    /// Release the mean of the clamped values.
    #[arg(long)]
    pub mean: bool,
    /// Release a histogram with BINS equal-width bins over [LOWER, UPPER].
    #[arg(long, value_name = "BINS", conflicts_with = "categories")]
    pub histogram: Option<usize>,
    /// Release a histogram of these public categories (comma-separated), plus one count of all
    /// other values. They must be listed: taking them from the data would not be private.
    #[arg(long, value_delimiter = ',', num_args = 0..)]
    pub categories: Option<Vec<String>>,
    /// Release these quantiles (comma-separated levels in [0, 1]).
    #[arg(long, value_delimiter = ',')]
    pub quantiles: Vec<f64>,
    /// Public lower bound: smaller values are clamped to it.
    #[arg(long, allow_negative_numbers = true)]
    pub lower: Option<f64>,
    /// Public upper bound: larger values are clamped to it.
    #[arg(long, allow_negative_numbers = true)]
    pub upper: Option<f64>,
    /// Grid step values are rounded to [default: 2^(ceil(log2 max(|L|,|U|)) - 20)].
    #[arg(long)]
    pub resolution: Option<f64>,
    /// Total epsilon, split equally over the noisy queries.
    #[arg(long)]
    pub epsilon: f64,
    /// Total delta: use discrete Gaussian noise (zCDP) instead of discrete Laplace (pure DP).
    #[arg(long)]
    pub delta: Option<f64>,
    /// The most rows one person contributes. Enforced with --id; otherwise declared by you.
    #[arg(long, default_value_t = 1)]
    pub max_contributions: u32,
    /// A column identifying the person of each row: at most MAX_CONTRIBUTIONS random rows per
    /// person are kept.
    #[arg(long)]
    pub id: Option<String>,
    /// Candidate values for each quantile, evenly spread over [LOWER, UPPER].
    #[arg(long, default_value_t = DEFAULT_QUANTILE_CANDIDATES)]
    pub quantile_candidates: usize,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// The column's values as read: numbers or text.
enum Values {
    Numeric(Vec<f64>),
    Text(Vec<String>),
}

fn invalid(name: &'static str, reason: &'static str, value: impl ToString) -> anyhow::Error {
    DpError::InvalidParameter {
        name,
        reason,
        value: value.to_string(),
    }
    .into()
}

/// Runs `privet stats`, printing the noisy statistics on standard output.
pub fn run(args: &StatsArgs) -> Result<()> {
    let histogram = match (&args.histogram, &args.categories) {
        (Some(bins), _) => Some(HistogramSpec::Bins(*bins)),
        (None, Some(cats)) if cats.is_empty() => {
            return Err(invalid(
                "categories",
                "must be listed (--categories A,B,C): taking them from the data would reveal \
                 which values occur, and private partition selection is not implemented",
                "none",
            ));
        }
        (None, Some(cats)) => Some(HistogramSpec::Categories(cats.clone())),
        (None, None) => None,
    };
    let query = StatsQuery {
        count: args.count,
        sum: args.sum,
        mean: args.mean,
        histogram,
        quantiles: args.quantiles.clone(),
    };
    let numeric = query.sum
        || query.mean
        || !query.quantiles.is_empty()
        || matches!(query.histogram, Some(HistogramSpec::Bins(_)));

    // Everything that does not depend on the data is checked before the file is read.
    let domain = match (args.lower, args.upper) {
        (Some(l), Some(u)) => Some(NumericDomain::new(l, u, args.resolution)?),
        (None, None) if !numeric => None,
        (None, None) => {
            return Err(invalid(
                "bounds",
                "are required for a sum, mean, quantile or binned histogram (--lower and \
                 --upper: public values, never computed from the data)",
                "none",
            ));
        }
        _ => {
            return Err(invalid(
                "bounds",
                "need both --lower and --upper",
                "one of them",
            ));
        }
    };
    let budget = match args.delta {
        Some(d) => StatsBudget::approximate(args.epsilon, d)?,
        None => StatsBudget::pure(args.epsilon)?,
    };
    if args.id.as_deref() == Some(args.column.as_str()) {
        return Err(invalid(
            "id",
            "must be a different column from --column",
            &args.column,
        ));
    }
    let options = StatsOptions {
        domain,
        max_contributions: args.max_contributions,
        quantile_candidates: args.quantile_candidates,
    };

    let (values, ids) = read_column(args, numeric)?;
    let mut rng = os_seeded_rng()?;
    let values = match ids {
        Some(ids) => {
            let kept = bound_contributions(&mut rng, &ids, args.max_contributions)?;
            match values {
                Values::Numeric(v) => Values::Numeric(kept.iter().map(|&i| v[i]).collect()),
                Values::Text(v) => Values::Text(kept.iter().map(|&i| v[i].clone()).collect()),
            }
        }
        None => values,
    };
    let column = match &values {
        Values::Numeric(v) => ColumnValues::Numeric(v),
        Values::Text(v) => ColumnValues::Text(v),
    };
    let report = release(&mut rng, column, &query, &options, &budget)?;
    if args.json {
        outln!("{}", to_json(args, &options, &budget, &report));
    } else {
        print_text(args, &options, &budget, &report)?;
    }
    Ok(())
}

/// Reads the column (as numbers when `numeric`) and the id column's text, if any.
fn read_column(args: &StatsArgs, numeric: bool) -> Result<(Values, Option<Vec<String>>)> {
    let header = read_header(&args.csv)?;
    for name in std::iter::once(&args.column).chain(args.id.as_ref()) {
        if !header.iter().any(|h| h == name) {
            return Err(DataError::UnknownColumn {
                path: args.csv.clone(),
                column: name.clone(),
            }
            .into());
        }
    }
    // Only the column is parsed; every other column (the id included) is kept as raw text.
    let mut opts = CsvOptions::default().with_drop(header.iter().filter(|h| **h != args.column));
    if !numeric {
        opts = opts.with_categorical([args.column.as_str()]);
    }
    let table = load_csv(&args.csv, &opts)?;
    let values = match table.column(&args.column) {
        Some(Column::Numeric { values, .. }) => Values::Numeric(values.clone()),
        Some(Column::Categorical { values, .. }) => Values::Text(values.clone()),
        None => {
            return Err(DataError::UnknownColumn {
                path: args.csv.clone(),
                column: args.column.clone(),
            }
            .into());
        }
    };
    let ids = match &args.id {
        Some(id) => Some(table.require_raw_column(id)?),
        None => None,
    };
    Ok((values, ids))
}

/// A finite number as JSON, anything else as `null`.
fn num(x: f64) -> Value {
    if x.is_finite() { json!(x) } else { Value::Null }
}

fn spent_json(s: QueryBudget) -> Value {
    match s {
        QueryBudget::Pure { epsilon } => json!({ "epsilon": num(epsilon) }),
        QueryBudget::Zcdp { rho } => json!({ "rho": num(rho) }),
    }
}

fn noise_json(n: &NoiseInfo) -> Value {
    json!({
        "mechanism": n.mechanism,
        "scale": num(n.scale),
        "std_dev": num(n.std_dev),
        "sensitivity": num(n.sensitivity),
    })
}

fn to_json(
    args: &StatsArgs,
    options: &StatsOptions,
    budget: &StatsBudget,
    r: &StatsReport,
) -> Value {
    let domain = options.domain.map(|d| {
        let (l, u) = d.effective_bounds();
        json!({ "lower": num(l), "upper": num(u), "resolution": num(d.resolution()) })
    });
    let scalar = |s: &privet_dp::stats::ScalarRelease| {
        json!({
            "value": num(s.value),
            "ci95": [num(s.ci95.0), num(s.ci95.1)],
            "noise": noise_json(&s.noise),
            "spent": spent_json(s.spent),
        })
    };
    json!({
        "column": args.column,
        "domain": domain,
        "max_contributions": options.max_contributions,
        "contributions_enforced_by": args.id,
        "privacy": {
            "epsilon": num(budget.epsilon()),
            "delta": budget.delta().map(num),
            "rho": budget.rho().map(num),
            "model": if budget.rho().is_some() { "zCDP (discrete Gaussian)" } else { "pure DP (discrete Laplace)" },
            "split": "equal",
            "allocation": r.allocation.iter().map(|(q, s)| json!({
                "query": q.name(),
                "share": spent_json(*s),
            })).collect::<Vec<_>>(),
            "epsilon_spent": num(r.epsilon_spent),
        },
        "count": r.count.as_ref().map(scalar),
        "sum": r.sum.as_ref().map(scalar),
        "mean": r.mean.as_ref().map(|m| json!({
            "value": num(m.value),
            "ci95": [num(m.ci95.0), num(m.ci95.1)],
            "sum_noise": noise_json(&m.sum_noise),
            "spent": spent_json(m.spent),
        })),
        "histogram": r.histogram.as_ref().map(|h| json!({
            "bins": h.bins.iter().map(|b| json!({
                "label": b.label,
                "lower": b.lower.map(num),
                "upper": b.upper.map(num),
                "count": b.count,
            })).collect::<Vec<_>>(),
            "other": h.other,
            "ci95_half_width": num(h.ci95_half_width),
            "noise": noise_json(&h.noise),
            "spent": spent_json(h.spent),
        })),
        "quantiles": r.quantiles.iter().map(|q| json!({
            "q": num(q.q),
            "value": num(q.value),
            "candidates": q.candidates,
            "spacing": num(q.spacing),
            "score_error_95": num(q.score_error_95),
            "mechanism": "permute_and_flip",
            "spent": spent_json(q.spent),
        })).collect::<Vec<_>>(),
    })
}

/// Decimal places that show the grid: enough for the resolution, at most 6.
fn decimals(options: &StatsOptions) -> usize {
    options
        .domain
        .map(|d| (-d.resolution().log10()).ceil().clamp(0.0, 6.0) as usize)
        .unwrap_or(0)
}

/// A mechanism's name in words.
fn words(mechanism: &str) -> &str {
    match mechanism {
        "discrete_laplace" => "discrete Laplace",
        "discrete_gaussian" => "discrete Gaussian",
        other => other,
    }
}

fn share_text(s: QueryBudget) -> String {
    match s {
        QueryBudget::Pure { epsilon } => format!("epsilon {epsilon:.6}"),
        QueryBudget::Zcdp { rho } => format!("rho {rho:.6}"),
    }
}

fn print_text(
    args: &StatsArgs,
    options: &StatsOptions,
    budget: &StatsBudget,
    r: &StatsReport,
) -> anyhow::Result<()> {
    let p = decimals(options);
    let contributions = match &args.id {
        Some(id) => format!(
            "at most {} row(s) per `{id}` (enforced)",
            options.max_contributions
        ),
        None => format!(
            "at most {} row(s) per person (declared, not enforced: use --id to enforce)",
            options.max_contributions
        ),
    };
    match options.domain {
        Some(d) => {
            let (l, u) = d.effective_bounds();
            outln!(
                "column `{}` of {}: values clamped to [{l}, {u}] on a grid of {}; {contributions}",
                args.column,
                args.csv.display(),
                d.resolution()
            );
        }
        None => outln!(
            "column `{}` of {}: {contributions}",
            args.column,
            args.csv.display()
        ),
    }
    let model = match (budget.delta(), budget.rho()) {
        (Some(d), Some(rho)) => format!(
            "(epsilon {}, delta {d}) via {rho:.6}-zCDP, discrete Gaussian noise",
            budget.epsilon()
        ),
        _ => format!("pure epsilon {}, discrete Laplace noise", budget.epsilon()),
    };
    let share = r
        .allocation
        .first()
        .map(|(_, s)| share_text(*s))
        .unwrap_or_default();
    outln!(
        "privacy: {model}; split equally over {} queries ({share} each); epsilon spent {:.6}",
        r.allocation.len(),
        r.epsilon_spent
    );
    if let Some(c) = &r.count {
        outln!(
            "count     {:.0}   95% CI [{:.0}, {:.0}]   ({} noise, scale {:.3})",
            c.value,
            c.ci95.0,
            c.ci95.1,
            words(c.noise.mechanism),
            c.noise.scale
        );
    }
    if let Some(s) = &r.sum {
        outln!(
            "sum       {:.p$}   95% CI [{:.p$}, {:.p$}]   ({} noise, scale {:.3})",
            s.value,
            s.ci95.0,
            s.ci95.1,
            words(s.noise.mechanism),
            s.noise.scale
        );
    }
    if let Some(m) = &r.mean {
        outln!(
            "mean      {:.p$}   95% CI [{:.p$}, {:.p$}]   (noisy centred sum / noisy count)",
            m.value,
            m.ci95.0,
            m.ci95.1
        );
    }
    for q in &r.quantiles {
        outln!(
            "quantile {}   {:.p$}   (permute-and-flip over {} candidates {:.p$} apart; with 95% \
             probability its rank score is within {:.1} rows of the best candidate's)",
            q.q,
            q.value,
            q.candidates,
            q.spacing,
            q.score_error_95
        );
    }
    if let Some(h) = &r.histogram {
        outln!(
            "histogram ({} bins; each count within ±{:.0} of its exact value with 95% probability, \
             {} noise, scale {:.3}):",
            h.bins.len(),
            h.ci95_half_width,
            words(h.noise.mechanism),
            h.noise.scale
        );
        for b in &h.bins {
            outln!("  {:<24} {}", b.label, b.count);
        }
        if let Some(o) = h.other {
            outln!("  {:<24} {o}", "(other values)");
        }
    }
    Ok(())
}
