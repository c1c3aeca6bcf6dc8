//! `privet dp`: differential-privacy accounting from the command line.
//!
//! * `privet dp epsilon --q Q --sigma S --steps T --delta D [--sampling poisson|fixed] [--json]`
//!   prints the epsilon of `T` steps of the subsampled Gaussian mechanism by RDP (improved and
//!   classic conversions, with the optimal order) and by PLD (Poisson sampling only).
//! * `privet dp noise --epsilon E --delta D --q Q --steps T [--accountant rdp|pld]
//!   [--sampling poisson|fixed] [--json]` prints the smallest noise multiplier that stays within
//!   `(E, D)`.
//!
//! All inputs are validated by `privet-dp`'s typed parameters, whose errors name the parameter,
//! its domain and the value given.

use crate::out::outln;
use anyhow::Result;
use clap::{Args, Subcommand, ValueEnum};
use privet_dp::calibrate::{
    AccountantKind, CalibrationOptions, CalibrationTarget, calibrate_noise_multiplier,
};
use privet_dp::pld::PldAccountant;
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, Epsilon, SampledGaussian, Sampling, SamplingProbability};
use serde_json::json;

/// Privacy accounting for the subsampled Gaussian mechanism (DP-SGD, DP-FedAvg).
#[derive(Debug, Subcommand)]
pub enum DpCommand {
    /// Epsilon spent by STEPS steps with sampling probability Q and noise multiplier SIGMA.
    Epsilon(EpsilonArgs),
    /// The smallest noise multiplier for STEPS steps at sampling probability Q within
    /// (EPSILON, DELTA).
    Noise(NoiseArgs),
}

/// How each step's batch is drawn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SamplingArg {
    /// Each record independently with probability Q (add/remove-one relation).
    Poisson,
    /// A fixed-size batch without replacement, Q = batch / data set size (replace-one
    /// relation; RDP only).
    Fixed,
}

impl From<SamplingArg> for Sampling {
    fn from(s: SamplingArg) -> Self {
        match s {
            SamplingArg::Poisson => Sampling::Poisson,
            SamplingArg::Fixed => Sampling::FixedSize,
        }
    }
}

/// Which accountant calibrates the noise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum AccountantArg {
    /// Rényi DP, improved conversion (fast, slightly pessimistic).
    Rdp,
    /// Privacy loss distribution (tight; Poisson sampling only).
    Pld,
}

impl From<AccountantArg> for AccountantKind {
    fn from(a: AccountantArg) -> Self {
        match a {
            AccountantArg::Rdp => AccountantKind::Rdp,
            AccountantArg::Pld => AccountantKind::Pld,
        }
    }
}

/// Arguments of `privet dp epsilon`.
#[derive(Debug, Args)]
pub struct EpsilonArgs {
    /// Sampling probability per step (batch size / data set size), in (0, 1].
    #[arg(long)]
    pub q: f64,
    /// Noise multiplier: noise standard deviation divided by the L2 sensitivity (clip norm).
    #[arg(long)]
    pub sigma: f64,
    /// Number of steps (at least 1).
    #[arg(long)]
    pub steps: u64,
    /// Delta, in (0, 1).
    #[arg(long)]
    pub delta: f64,
    /// How batches are drawn.
    #[arg(long, value_enum, default_value_t = SamplingArg::Poisson)]
    pub sampling: SamplingArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Arguments of `privet dp noise`.
#[derive(Debug, Args)]
pub struct NoiseArgs {
    /// Target epsilon (positive).
    #[arg(long)]
    pub epsilon: f64,
    /// Target delta, in (0, 1).
    #[arg(long)]
    pub delta: f64,
    /// Sampling probability per step, in (0, 1].
    #[arg(long)]
    pub q: f64,
    /// Number of steps (at least 1).
    #[arg(long)]
    pub steps: u64,
    /// The accountant that judges a candidate noise multiplier.
    #[arg(long, value_enum, default_value_t = AccountantArg::Pld)]
    pub accountant: AccountantArg,
    /// How batches are drawn.
    #[arg(long, value_enum, default_value_t = SamplingArg::Poisson)]
    pub sampling: SamplingArg,
    /// Print one JSON object instead of text.
    #[arg(long)]
    pub json: bool,
}

/// Runs a `privet dp` command, printing its result on standard output.
pub fn run(cmd: DpCommand) -> Result<()> {
    match cmd {
        DpCommand::Epsilon(args) => epsilon(&args),
        DpCommand::Noise(args) => noise(&args),
    }
}

/// A finite number as JSON, anything else as `null`.
fn num(x: f64) -> serde_json::Value {
    if x.is_finite() {
        json!(x)
    } else {
        serde_json::Value::Null
    }
}

fn epsilon(args: &EpsilonArgs) -> Result<()> {
    let sampling = Sampling::from(args.sampling);
    let event = SampledGaussian::new(args.q, args.sigma, args.steps, sampling)?;
    let delta = Delta::new(args.delta)?;

    let mut rdp = RdpAccountant::new();
    rdp.compose(&event)?;
    let improved = rdp.epsilon(delta, Conversion::Improved);
    let classic = rdp.epsilon(delta, Conversion::Classic);
    let pld = match sampling {
        Sampling::Poisson => {
            let mut acc = PldAccountant::default();
            acc.compose(&event)?;
            let eps = acc.epsilon(delta)?;
            Some((eps, acc.pld()?.discretization()))
        }
        _ => None,
    };

    if args.json {
        let out = json!({
            "q": args.q,
            "sigma": args.sigma,
            "steps": args.steps,
            "delta": args.delta,
            "sampling": sampling.name(),
            "rdp": {
                "epsilon": num(improved.epsilon),
                "order": num(improved.order),
                "conversion": "improved",
            },
            "rdp_classic": {
                "epsilon": num(classic.epsilon),
                "order": num(classic.order),
            },
            "pld": pld.map(|(eps, d)| json!({
                "epsilon": num(eps),
                "value_discretization_interval": d,
            })),
        });
        outln!("{out}");
        return Ok(());
    }

    let relation = match sampling {
        Sampling::Poisson => "Poisson sampling, add/remove-one",
        _ => "fixed-size sampling, replace-one",
    };
    outln!(
        "{} steps, q = {}, sigma = {}, delta = {} ({relation})",
        args.steps,
        args.q,
        args.sigma,
        args.delta
    );
    outln!(
        "RDP, improved conversion: epsilon = {:.6} (order {})",
        improved.epsilon,
        improved.order
    );
    outln!(
        "RDP, classic conversion:  epsilon = {:.6} (order {})",
        classic.epsilon,
        classic.order
    );
    match pld {
        Some((eps, d)) => outln!("PLD:                       epsilon = {eps:.6} (grid {d:e})"),
        None => {
            outln!("PLD:                       n/a (no PLD analysis for fixed-size sampling)")
        }
    }
    Ok(())
}

fn noise(args: &NoiseArgs) -> Result<()> {
    let sampling = Sampling::from(args.sampling);
    let kind = AccountantKind::from(args.accountant);
    if sampling == Sampling::FixedSize && kind == AccountantKind::Pld {
        anyhow::bail!("--accountant pld does not support --sampling fixed; use --accountant rdp");
    }
    if args.steps == 0 {
        anyhow::bail!("invalid steps: must be at least 1 (got 0)");
    }
    let target = CalibrationTarget {
        epsilon: Epsilon::positive(args.epsilon)?,
        delta: Delta::new(args.delta)?,
        q: SamplingProbability::new(args.q)?,
        steps: args.steps,
        sampling,
    };
    let sigma = calibrate_noise_multiplier(&target, kind, &CalibrationOptions::default())?;
    if args.json {
        let out = json!({
            "epsilon": args.epsilon,
            "delta": args.delta,
            "q": args.q,
            "steps": args.steps,
            "sampling": sampling.name(),
            "accountant": kind.name(),
            "noise_multiplier": sigma,
        });
        outln!("{out}");
    } else {
        // Rounded up, so that the printed value is never less noise than calibrated.
        let shown = (sigma * 1e4).ceil() / 1e4;
        outln!(
            "noise multiplier {shown:.4} keeps {} steps at q = {} within epsilon = {}, delta = {} \
             ({} accountant)",
            args.steps,
            args.q,
            args.epsilon,
            args.delta,
            kind.name()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Debug, Parser)]
    struct Wrapper {
        #[command(subcommand)]
        cmd: DpCommand,
    }

    fn run_args(args: &str) -> Result<()> {
        let argv = std::iter::once("dp").chain(args.split_whitespace());
        run(Wrapper::try_parse_from(argv)?.cmd)
    }

    #[test]
    fn valid_commands_run() {
        for args in [
            "epsilon --q 0.01 --sigma 1.1 --steps 100 --delta 1e-5",
            "epsilon --q 0.01 --sigma 1.1 --steps 100 --delta 1e-5 --json --sampling fixed",
            "noise --epsilon 2 --delta 1e-5 --q 0.01 --steps 100 --accountant rdp --json",
        ] {
            run_args(args).unwrap();
        }
    }

    #[test]
    fn bad_inputs_name_the_parameter() {
        for (args, needle) in [
            (
                "epsilon --q 1.5 --sigma 1 --steps 10 --delta 1e-5",
                "sampling probability q",
            ),
            (
                "epsilon --q 0.1 --sigma=-1 --steps 10 --delta 1e-5",
                "noise multiplier sigma",
            ),
            ("epsilon --q 0.1 --sigma 1 --steps 0 --delta 1e-5", "steps"),
            ("epsilon --q 0.1 --sigma 1 --steps 10 --delta 0", "delta"),
            (
                "noise --epsilon 0 --delta 1e-5 --q 0.1 --steps 10",
                "epsilon",
            ),
            ("noise --epsilon 1 --delta 1e-5 --q 0.1 --steps 0", "steps"),
            (
                "noise --epsilon 1 --delta 1e-5 --q 0.1 --steps 10 --sampling fixed",
                "--accountant rdp",
            ),
        ] {
            let err = run_args(args).unwrap_err().to_string();
            assert!(err.contains(needle), "{args}: {err}");
        }
    }
}
