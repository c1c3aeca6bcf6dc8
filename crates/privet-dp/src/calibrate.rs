//! Noise calibration: the smallest noise multiplier that meets a target (epsilon, delta) for a
//! given sampling probability and number of steps.
//!
//! Epsilon decreases as `sigma` grows, so the search brackets the answer by doubling and halving
//! from `sigma = 1` inside [`CalibrationOptions::min_sigma`, `max_sigma`] and then bisects in
//! log space until the bracket's ratio is below `1 + relative_tolerance`. The returned `sigma`
//! is the bracket's upper end, whose epsilon was computed and is at most the target, so the
//! answer is conservative for the chosen accountant. (The PLD accountant's discretisation makes
//! epsilon only approximately monotone in `sigma`; the guarantee that the returned value meets the
//! target still holds because it is checked.)

use crate::error::{DpError, Result};
use crate::params::{
    Delta, Epsilon, NoiseMultiplier, SampledGaussian, Sampling, SamplingProbability,
};
use crate::pld::{PldAccountant, PldConfig};
use crate::rdp::{Conversion, RdpAccountant};

/// Which accountant judges a candidate noise multiplier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum AccountantKind {
    /// RDP with the improved conversion at the default orders.
    Rdp,
    /// PLD with the default discretisation (tighter; Poisson sampling only).
    #[default]
    Pld,
}

impl AccountantKind {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            AccountantKind::Rdp => "rdp",
            AccountantKind::Pld => "pld",
        }
    }
}

/// Search settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationOptions {
    /// Smallest noise multiplier considered (default 0.05).
    pub min_sigma: f64,
    /// Largest noise multiplier considered (default 1000).
    pub max_sigma: f64,
    /// Stop when `upper / lower - 1` is below this (default `1e-4`).
    pub relative_tolerance: f64,
    /// PLD settings when the PLD accountant is used.
    pub pld: PldConfig,
}

impl Default for CalibrationOptions {
    fn default() -> Self {
        Self {
            min_sigma: 0.05,
            max_sigma: 1000.0,
            relative_tolerance: 1e-4,
            pld: PldConfig::default(),
        }
    }
}

/// What to calibrate for: `steps` steps at sampling probability `q` must stay within
/// `(epsilon, delta)`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CalibrationTarget {
    /// The target epsilon (positive).
    pub epsilon: Epsilon,
    /// The target delta.
    pub delta: Delta,
    /// The sampling probability.
    pub q: SamplingProbability,
    /// The number of steps (at least 1).
    pub steps: u64,
    /// The sampling scheme.
    pub sampling: Sampling,
}

/// The epsilon `kind` reports for `event` at `delta`.
pub fn epsilon_for(
    kind: AccountantKind,
    event: &SampledGaussian,
    delta: Delta,
    pld: &PldConfig,
) -> Result<f64> {
    match kind {
        AccountantKind::Rdp => {
            let mut acc = RdpAccountant::new();
            acc.compose(event)?;
            Ok(acc.epsilon(delta, Conversion::Improved).epsilon)
        }
        AccountantKind::Pld => {
            let mut acc = PldAccountant::new(*pld)?;
            acc.compose(event)?;
            acc.epsilon(delta)
        }
    }
}

/// The smallest noise multiplier (to `relative_tolerance`, rounded up) whose epsilon under `kind`
/// is at most the target.
///
/// ```
/// use privet_dp::{Delta, Epsilon, SampledGaussian, Sampling, SamplingProbability};
/// use privet_dp::calibrate::{
///     AccountantKind, CalibrationOptions, CalibrationTarget, calibrate_noise_multiplier, epsilon_for,
/// };
///
/// let target = CalibrationTarget {
///     epsilon: Epsilon::positive(8.0)?,
///     delta: Delta::new(1e-5)?,
///     q: SamplingProbability::new(0.04)?,
///     steps: 2250,
///     sampling: Sampling::Poisson,
/// };
/// let options = CalibrationOptions::default();
/// let sigma = calibrate_noise_multiplier(&target, AccountantKind::Rdp, &options)?;
///
/// // The target is met, and 0.1% less noise would miss it.
/// let at = |s: f64| -> privet_dp::Result<f64> {
///     let e = SampledGaussian::poisson(0.04, s, 2250)?;
///     epsilon_for(AccountantKind::Rdp, &e, target.delta, &options.pld)
/// };
/// assert!(at(sigma)? <= 8.0 && at(sigma * 0.999)? > 8.0);
/// # Ok::<(), privet_dp::DpError>(())
/// ```
pub fn calibrate_noise_multiplier(
    target: &CalibrationTarget,
    kind: AccountantKind,
    options: &CalibrationOptions,
) -> Result<f64> {
    let (min_s, max_s) = (options.min_sigma, options.max_sigma);
    if !(min_s > 0.0 && max_s > min_s && max_s.is_finite()) {
        return Err(DpError::invalid(
            "calibration range",
            "needs 0 < min_sigma < max_sigma < inf",
            format!("[{min_s}, {max_s}]"),
        ));
    }
    let tol = options.relative_tolerance;
    if !(tol > 0.0 && tol < 1.0) {
        return Err(DpError::invalid(
            "relative tolerance",
            "must be in (0, 1)",
            tol,
        ));
    }
    if target.epsilon.get() <= 0.0 {
        return Err(DpError::invalid(
            "epsilon",
            "must be positive and finite",
            target.epsilon.get(),
        ));
    }
    let eps_at = |sigma: f64| -> Result<f64> {
        let event = SampledGaussian::from_parts(
            target.q,
            NoiseMultiplier::new(sigma)?,
            target.steps,
            target.sampling,
        )?;
        epsilon_for(kind, &event, target.delta, &options.pld)
    };
    let ok = |sigma: f64| -> Result<bool> { Ok(eps_at(sigma)? <= target.epsilon.get()) };
    let out_of_range = || DpError::CalibrationOutOfRange {
        epsilon: target.epsilon.get(),
        delta: target.delta.get(),
        lower: min_s,
        upper: max_s,
    };

    // Bracket: ok(hi) and !ok(lo).
    let start = 1.0_f64.clamp(min_s, max_s);
    let (mut lo, mut hi);
    if ok(start)? {
        hi = start;
        lo = start;
        loop {
            if lo <= min_s {
                // Even the smallest multiplier meets the target.
                return Ok(min_s);
            }
            lo = (lo / 2.0).max(min_s);
            if !ok(lo)? {
                break;
            }
            hi = lo;
        }
    } else {
        lo = start;
        hi = start;
        loop {
            if hi >= max_s {
                return Err(out_of_range());
            }
            hi = (hi * 2.0).min(max_s);
            if ok(hi)? {
                break;
            }
            lo = hi;
        }
    }
    while hi / lo - 1.0 > tol {
        let mid = (lo * hi).sqrt();
        if ok(mid)? {
            hi = mid;
        } else {
            lo = mid;
        }
    }
    Ok(hi)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn target(eps: f64, q: f64, steps: u64) -> CalibrationTarget {
        CalibrationTarget {
            epsilon: Epsilon::positive(eps).unwrap(),
            delta: Delta::new(1e-5).unwrap(),
            q: SamplingProbability::new(q).unwrap(),
            steps,
            sampling: Sampling::Poisson,
        }
    }

    #[test]
    fn calibrated_sigma_meets_the_target_tightly() {
        // A coarser PLD grid keeps the unoptimised test build fast.
        let opts = CalibrationOptions {
            pld: PldConfig {
                value_discretization_interval: 1e-3,
                ..PldConfig::default()
            },
            ..CalibrationOptions::default()
        };
        for kind in [AccountantKind::Rdp, AccountantKind::Pld] {
            let t = target(2.0, 0.01, 500);
            let sigma = calibrate_noise_multiplier(&t, kind, &opts).unwrap();
            let ev = |s| SampledGaussian::poisson(0.01, s, 500).unwrap();
            let at = epsilon_for(kind, &ev(sigma), t.delta, &opts.pld).unwrap();
            let below = epsilon_for(kind, &ev(sigma * (1.0 - 2e-3)), t.delta, &opts.pld).unwrap();
            assert!(at <= 2.0, "{kind:?}: {at}");
            assert!(below > 2.0 - 1e-9, "{kind:?}: {below}");
        }
    }

    #[test]
    fn unreachable_targets_are_errors() {
        let opts = CalibrationOptions {
            max_sigma: 2.0,
            ..CalibrationOptions::default()
        };
        let err = calibrate_noise_multiplier(&target(0.01, 1.0, 1000), AccountantKind::Rdp, &opts);
        assert!(matches!(err, Err(DpError::CalibrationOutOfRange { .. })));
    }
}
