//! Differentially private outcomes: exact integer noise on the intersection size and sum.
//!
//! # What is protected, and from whom
//!
//! Without noise the client learns the exact size and sum. That leaks membership: with a
//! small overlap, or one identifier whose value dwarfs the others, the client can tell whether
//! a particular person is in the server's set (run once with and once without a suspect, or
//! read an outlier's value off the sum). With noise the released size and sum are
//! `(epsilon, delta)`-differentially private with respect to adding or removing one identifier
//! in **either** set: the size moves by at most 1 and the sum by at most
//! `max(|lower|, |upper|)` because the client clamps each identifier's value (its total after
//! merging duplicates) to the bounds `[lower, upper]` before encrypting it.
//!
//! The server draws the noise (from a CSPRNG, through privet-dp's exact samplers) and adds it
//! to the size in the clear and to the sum under encryption, so the client never sees an
//! un-noised sum. The server itself still learns the **exact** intersection size: it is the
//! party that compares the doubly blinded identifiers, which no noise can hide from it. That is
//! inherent to this protocol (as in Google's Private Join and Compute) and stated in the crate
//! documentation.
//!
//! # Mechanisms and budget split
//!
//! * `epsilon` alone: the discrete Laplace mechanism (pure `epsilon`-DP).
//! * `epsilon` and `delta`: the discrete Gaussian mechanism, accounted in zCDP and converted to
//!   `(epsilon, delta)`.
//!
//! For a sum, the budget is split equally between the size and the sum
//! (`privet_dp::stats::StatsBudget::split_equal`); for a cardinality it all goes to the size.
//! Calibration, rounding in the safe direction and the samplers are privet-dp's
//! (`IntegerNoise`), the same as `privet stats` uses.
//!
//! # Guarantee's assumptions
//!
//! Semi-honest parties (the client clamps as told, the server adds the noise it announced);
//! one release per pair of sets (running again on the same data spends the budget again; the
//! parties must track that themselves).

use privet_dp::stats::{IntegerNoise, QueryBudget, StatsBudget};
use rand_core::{CryptoRng, RngCore};

use crate::error::{PsiError, Result};
use crate::input::MAX_ABS_VALUE;

/// Probability, at most, that noise leaves the range the client decrypts in.
pub const NOISE_TAIL: f64 = 1e-12;

/// The privacy parameters of a release.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct DpConfig {
    /// Total epsilon (size and sum together).
    pub epsilon: f64,
    /// Total delta; `None` for pure DP (discrete Laplace).
    pub delta: Option<f64>,
}

impl DpConfig {
    /// Pure `epsilon`-DP.
    pub fn pure(epsilon: f64) -> Self {
        DpConfig {
            epsilon,
            delta: None,
        }
    }

    /// `(epsilon, delta)`-DP with discrete Gaussian noise.
    pub fn approximate(epsilon: f64, delta: f64) -> Self {
        DpConfig {
            epsilon,
            delta: Some(delta),
        }
    }

    fn budget(&self) -> Result<StatsBudget> {
        Ok(match self.delta {
            None => StatsBudget::pure(self.epsilon)?,
            Some(d) => StatsBudget::approximate(self.epsilon, d)?,
        })
    }
}

/// Per-identifier bounds on values: each value is clamped to `[lower, upper]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueBounds {
    lower: i64,
    upper: i64,
}

impl ValueBounds {
    /// `[lower, upper]` with `lower <= upper`, both at most `2^40` in absolute value.
    pub fn new(lower: i64, upper: i64) -> Result<Self> {
        if lower > upper {
            return Err(PsiError::config("value bounds: lower is above upper"));
        }
        if lower.unsigned_abs() > MAX_ABS_VALUE as u64
            || upper.unsigned_abs() > MAX_ABS_VALUE as u64
        {
            return Err(PsiError::config(
                "value bounds must be at most 2^40 in absolute value",
            ));
        }
        Ok(ValueBounds { lower, upper })
    }

    /// The lower bound.
    pub fn lower(&self) -> i64 {
        self.lower
    }

    /// The upper bound.
    pub fn upper(&self) -> i64 {
        self.upper
    }

    /// `value` clamped to the bounds.
    pub fn clamp(&self, value: i64) -> i64 {
        value.clamp(self.lower, self.upper)
    }

    /// How much one identifier can move the sum: `max(|lower|, |upper|)`, at least 1.
    pub fn sensitivity(&self) -> u64 {
        self.lower
            .unsigned_abs()
            .max(self.upper.unsigned_abs())
            .max(1)
    }
}

/// What noise was added to one released number.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct NoiseInfo {
    /// `"discrete_laplace"` or `"discrete_gaussian"`.
    pub mechanism: &'static str,
    /// The noise's scale: the Laplace `b` or the Gaussian `sigma`.
    pub scale: f64,
    /// The half-width of a 95% interval around the released value.
    pub ci95_half_width: u64,
    /// The sensitivity it is calibrated to.
    pub sensitivity: u64,
    /// The epsilon this number spends (pure DP), or its zCDP rho.
    pub spent: QueryBudget,
}

/// The calibrated noise of one session.
#[derive(Clone, Debug, PartialEq)]
pub struct NoisePlan {
    config: DpConfig,
    size: IntegerNoise,
    sum: Option<IntegerNoise>,
}

impl NoisePlan {
    /// Noise for the size, and for the sum when `sum_bounds` is given (then the budget is
    /// split equally between them).
    pub fn new(config: DpConfig, sum_bounds: Option<ValueBounds>) -> Result<Self> {
        let budget = config.budget()?;
        let shares = budget.split_equal(if sum_bounds.is_some() { 2 } else { 1 })?;
        let size = IntegerNoise::new(1, shares[0])?;
        let sum = sum_bounds
            .map(|b| IntegerNoise::new(b.sensitivity(), shares[1]))
            .transpose()?;
        Ok(NoisePlan { config, size, sum })
    }

    /// The configuration.
    pub fn config(&self) -> DpConfig {
        self.config
    }

    /// A noise draw for the size.
    pub fn sample_size<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        self.size.sample(rng)
    }

    /// A noise draw for the sum (zero when the plan has no sum).
    pub fn sample_sum<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        self.sum.as_ref().map_or(0, |s| s.sample(rng))
    }

    /// A bound the sum's noise exceeds with probability at most [`NOISE_TAIL`].
    pub fn sum_tail(&self) -> u64 {
        self.sum
            .as_ref()
            .map_or(0, |s| s.half_width(1.0 - NOISE_TAIL))
    }

    /// What the size's noise is.
    pub fn size_info(&self) -> NoiseInfo {
        info(&self.size)
    }

    /// What the sum's noise is.
    pub fn sum_info(&self) -> Option<NoiseInfo> {
        self.sum.as_ref().map(info)
    }
}

fn info(n: &IntegerNoise) -> NoiseInfo {
    NoiseInfo {
        mechanism: n.mechanism(),
        scale: n.scale(),
        ci95_half_width: n.half_width(0.95),
        sensitivity: n.sensitivity(),
        spent: n.spent(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn laplace_plan_splits_epsilon_and_scales_with_the_bounds() {
        let b = ValueBounds::new(-50, 200).unwrap();
        assert_eq!(b.sensitivity(), 200);
        assert_eq!(b.clamp(1000), 200);
        assert_eq!(b.clamp(-1000), -50);
        let plan = NoisePlan::new(DpConfig::pure(1.0), Some(b)).unwrap();
        let size = plan.size_info();
        let sum = plan.sum_info().unwrap();
        assert_eq!(size.mechanism, "discrete_laplace");
        // epsilon 1/2 each: scale = sensitivity / 0.5.
        assert!((size.scale - 2.0).abs() < 1e-6, "{}", size.scale);
        assert!((sum.scale - 400.0).abs() < 1e-3, "{}", sum.scale);
        assert!(plan.sum_tail() > 400 * 20);
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let draws: Vec<i64> = (0..2000).map(|_| plan.sample_size(&mut rng)).collect();
        let mean_abs = draws.iter().map(|d| d.abs() as f64).sum::<f64>() / 2000.0;
        assert!(mean_abs > 1.0 && mean_abs < 3.0, "{mean_abs}");
    }

    #[test]
    fn gaussian_plan_with_delta() {
        let plan = NoisePlan::new(DpConfig::approximate(1.0, 1e-6), None).unwrap();
        assert_eq!(plan.size_info().mechanism, "discrete_gaussian");
        assert!(plan.sum_info().is_none());
        assert_eq!(plan.sum_tail(), 0);
    }

    #[test]
    fn bad_parameters_are_refused() {
        assert!(ValueBounds::new(5, 4).is_err());
        assert!(ValueBounds::new(0, i64::MAX).is_err());
        assert!(NoisePlan::new(DpConfig::pure(0.0), None).is_err());
        assert!(NoisePlan::new(DpConfig::pure(f64::NAN), None).is_err());
        assert!(NoisePlan::new(DpConfig::approximate(1.0, 2.0), None).is_err());
    }
}
