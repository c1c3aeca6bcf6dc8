//! `privet train`: the centralized baseline, optionally with DP-SGD.
//!
//! `privet train JOB.toml --dp-epsilon E --dp-delta D [--dp-clip C] [--dp-lot-size L]
//! [--dp-accountant pld|rdp] [--dp-noise snapped|exact]` calibrates the noise multiplier for
//! `(E, D)` over the job's epochs (`[train] epochs`, its optimizer and learning rate; the job's
//! batch size is not used: lots are Poisson-sampled with expected size L), trains with DP-SGD
//! and reports sigma, q, the steps, and the epsilon spent by both accountants, on the terminal
//! and in `metrics.json` (`summary.dp_sgd`). Defaults: C = 1, L = 256, PLD calibration, snapped
//! noise.

use std::path::{Path, PathBuf};

use crate::out::outln;
use anyhow::{Result, bail};
use clap::{Args, ValueEnum};
use privet_job::Job;
use privet_ml::{
    AccountantKind, DEFAULT_CLIP_NORM, DEFAULT_LOT_SIZE, DpReport, DpTarget, NoiseSampler,
};
use privet_sim::{Mode, RunOptions, run_job};

/// DP-SGD options of `privet train`.
#[derive(Debug, Clone, Args)]
pub struct DpArgs {
    /// Train with DP-SGD for this epsilon (the noise is calibrated to it over the job's epochs).
    #[arg(long, value_name = "E", requires = "dp_delta")]
    pub dp_epsilon: Option<f64>,
    /// DP-SGD's delta (needed with --dp-epsilon; below 1 / training rows is the usual choice).
    #[arg(long, value_name = "D", requires = "dp_epsilon")]
    pub dp_delta: Option<f64>,
    /// DP-SGD's per-example gradient clipping norm C [default: 1.0].
    #[arg(long, value_name = "C", requires = "dp_epsilon")]
    pub dp_clip: Option<f32>,
    /// DP-SGD's expected lot size L: each step samples every row with probability
    /// q = 1 / ceil(N / L) [default: 256].
    #[arg(long, value_name = "L", requires = "dp_epsilon")]
    pub dp_lot_size: Option<usize>,
    /// The accountant that calibrates the noise (both are reported) [default: pld].
    #[arg(long, value_enum, value_name = "KIND", requires = "dp_epsilon")]
    pub dp_accountant: Option<AccountantArg>,
    /// How the Gaussian noise is drawn [default: snapped].
    #[arg(long, value_enum, value_name = "SAMPLER", requires = "dp_epsilon")]
    pub dp_noise: Option<NoiseArg>,
}

/// DP-SGD's noise sampler (both snap the noisy sum to a 2^-30 sigma C grid, which defeats
/// floating-point attacks).
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum NoiseArg {
    /// A ziggurat normal from ChaCha12, scaled and rounded to the grid (fast).
    Snapped,
    /// privet-dp's exact discrete Gaussian in integer arithmetic (about 20 times slower).
    Exact,
}

/// Which accountant calibrates DP-SGD's noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccountantArg {
    /// Rényi DP, improved conversion (slightly pessimistic).
    Rdp,
    /// Privacy loss distribution (tight).
    Pld,
}

impl DpArgs {
    /// The target, or `None` without `--dp-epsilon`.
    fn target(&self) -> Result<Option<DpTarget>> {
        let (Some(epsilon), Some(delta)) = (self.dp_epsilon, self.dp_delta) else {
            return Ok(None);
        };
        let target = DpTarget {
            epsilon,
            delta,
            clip_norm: self.dp_clip.unwrap_or(DEFAULT_CLIP_NORM),
            lot_size: self.dp_lot_size.unwrap_or(DEFAULT_LOT_SIZE),
            accountant: match self.dp_accountant.unwrap_or(AccountantArg::Pld) {
                AccountantArg::Rdp => AccountantKind::Rdp,
                AccountantArg::Pld => AccountantKind::Pld,
            },
            noise: match self.dp_noise.unwrap_or(NoiseArg::Snapped) {
                NoiseArg::Snapped => NoiseSampler::Snapped,
                NoiseArg::Exact => NoiseSampler::Exact,
            },
        };
        target.validate()?;
        Ok(Some(target))
    }
}

/// Runs `privet train`.
pub fn run(job: &Path, out: Option<PathBuf>, quiet: bool, dp: &DpArgs) -> Result<()> {
    let target = dp.target()?;
    let parsed = Job::from_file(job)?;
    let suffix = if target.is_some() {
        "-dpsgd"
    } else {
        "-centralized"
    };
    let opts = RunOptions {
        out: out.unwrap_or_else(|| crate::default_out(job, suffix)),
        mode: Mode::Centralized,
        export_partitions: false,
        progress: !quiet,
    };
    let summary = match &target {
        Some(t) => opts.run_dp(&parsed, t)?,
        None => run_job(&parsed, &opts)?,
    };
    crate::print_summary(&summary)?;
    match (&target, &summary.dp) {
        (Some(_), Some(report)) => print_dp(report, summary.train_rows),
        (Some(_), None) => bail!("DP-SGD was asked for but the run reports no privacy spent"),
        _ => Ok(()),
    }
}

fn print_dp(r: &DpReport, train_rows: usize) -> anyhow::Result<()> {
    let s = &r.spent;
    outln!(
        "DP-SGD: noise multiplier {:.4} (calibrated by {} for epsilon {} at delta {:e}; {} \
         noise), clip {}, q {:.6} (expected lot {:.1} of {} rows), {} steps over {} epochs",
        s.noise_multiplier,
        r.target.accountant.name().to_uppercase(),
        r.target.epsilon,
        s.delta,
        r.config.noise.name(),
        r.config.clip_norm,
        s.sampling_probability,
        r.stats.schedule.expected_lot_size(),
        train_rows,
        s.steps,
        r.config.epochs,
    );
    outln!(
        "privacy spent: epsilon {:.4} (PLD), {:.4} (RDP, order {}) at delta {:e}; {:.1}% of \
         per-example gradients clipped",
        s.epsilon_pld,
        s.epsilon_rdp,
        s.rdp_order,
        s.delta,
        100.0 * r.stats.clipped_fraction,
    );
    if s.delta * train_rows as f64 > 1.0 {
        outln!(
            "warning: delta {:e} is above 1 / {train_rows} training rows; such a delta allows \
             releasing some rows outright",
            s.delta
        );
    }
    Ok(())
}
