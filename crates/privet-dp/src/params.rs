//! Validated privacy parameters and the mechanism the accountants analyse.
//!
//! Each parameter is a newtype whose constructor checks its domain, so an accountant never sees
//! a NaN noise multiplier or a sampling probability of 1.5, and a function's signature says which
//! quantity it expects.

use crate::error::{DpError, Result};

/// The probability `q` with which each record (or client) takes part in a step, in `(0, 1]`.
///
/// For fixed-size sampling it is the ratio `batch size / data set size`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct SamplingProbability(f64);

impl SamplingProbability {
    /// Checks that `q` is in `(0, 1]`.
    pub fn new(q: f64) -> Result<Self> {
        if q > 0.0 && q <= 1.0 {
            Ok(Self(q))
        } else {
            Err(DpError::invalid(
                "sampling probability q",
                "must be in (0, 1]",
                q,
            ))
        }
    }

    /// The probability.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The noise multiplier `sigma`: the Gaussian noise's standard deviation divided by the L2
/// sensitivity of the query. Positive and finite.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct NoiseMultiplier(f64);

impl NoiseMultiplier {
    /// Checks that `sigma` is positive and finite.
    pub fn new(sigma: f64) -> Result<Self> {
        if sigma > 0.0 && sigma.is_finite() {
            Ok(Self(sigma))
        } else {
            Err(DpError::invalid(
                "noise multiplier sigma",
                "must be positive and finite",
                sigma,
            ))
        }
    }

    /// The multiplier.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The `delta` of (epsilon, delta)-DP, in `(0, 1)`.
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Delta(f64);

impl Delta {
    /// Checks that `delta` is in `(0, 1)`.
    pub fn new(delta: f64) -> Result<Self> {
        if delta > 0.0 && delta < 1.0 {
            Ok(Self(delta))
        } else {
            Err(DpError::invalid("delta", "must be in (0, 1)", delta))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// The `epsilon` of (epsilon, delta)-DP: non-negative and finite.
///
/// Budgets and calibration targets must be positive: see [`Epsilon::positive`].
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd)]
pub struct Epsilon(f64);

impl Epsilon {
    /// Checks that `epsilon` is non-negative and finite (zero is a valid query point).
    pub fn new(epsilon: f64) -> Result<Self> {
        if epsilon >= 0.0 && epsilon.is_finite() {
            Ok(Self(epsilon))
        } else {
            Err(DpError::invalid(
                "epsilon",
                "must be non-negative and finite",
                epsilon,
            ))
        }
    }

    /// Checks that `epsilon` is positive and finite, as a budget or a target must be.
    pub fn positive(epsilon: f64) -> Result<Self> {
        if epsilon > 0.0 && epsilon.is_finite() {
            Ok(Self(epsilon))
        } else {
            Err(DpError::invalid(
                "epsilon",
                "must be positive and finite",
                epsilon,
            ))
        }
    }

    /// The value.
    pub fn get(self) -> f64 {
        self.0
    }
}

/// How the records of a step are chosen, which fixes the neighbouring relation of the analysis.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Sampling {
    /// Each record takes part independently with probability `q` (the batch size varies).
    /// Analysed under the add/remove-one relation, as in Abadi et al. 2016, Mironov, Talwar and
    /// Zhang 2019, and dp_accounting's `PoissonSampledDpEvent`.
    Poisson,
    /// A uniformly random subset of fixed size `m = q n` is drawn without replacement. Analysed
    /// under the replace-one relation (the data set size `n` is public), as in Wang, Balle and
    /// Kasiviswanathan 2019 and dp_accounting's `SampledWithoutReplacementDpEvent`; `sigma` is
    /// then relative to the query's sensitivity under replacement of one record.
    FixedSize,
}

impl Sampling {
    /// The scheme's name, as the command line spells it.
    pub fn name(self) -> &'static str {
        match self {
            Sampling::Poisson => "poisson",
            Sampling::FixedSize => "fixed",
        }
    }
}

/// `steps` applications of the subsampled Gaussian mechanism with the same parameters: the unit
/// that every accountant composes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampledGaussian {
    q: SamplingProbability,
    sigma: NoiseMultiplier,
    steps: u64,
    sampling: Sampling,
}

impl SampledGaussian {
    /// `steps` (at least 1) steps with sampling probability `q` and noise multiplier `sigma`.
    pub fn new(q: f64, sigma: f64, steps: u64, sampling: Sampling) -> Result<Self> {
        let q = SamplingProbability::new(q)?;
        let sigma = NoiseMultiplier::new(sigma)?;
        Self::from_parts(q, sigma, steps, sampling)
    }

    /// Poisson-subsampled Gaussian steps (see [`Sampling::Poisson`]).
    pub fn poisson(q: f64, sigma: f64, steps: u64) -> Result<Self> {
        Self::new(q, sigma, steps, Sampling::Poisson)
    }

    /// Fixed-size (without replacement) subsampled Gaussian steps (see [`Sampling::FixedSize`]).
    pub fn fixed_size(q: f64, sigma: f64, steps: u64) -> Result<Self> {
        Self::new(q, sigma, steps, Sampling::FixedSize)
    }

    /// From already-validated parts; only `steps` is checked here.
    pub fn from_parts(
        q: SamplingProbability,
        sigma: NoiseMultiplier,
        steps: u64,
        sampling: Sampling,
    ) -> Result<Self> {
        if steps == 0 {
            return Err(DpError::invalid("steps", "must be at least 1", steps));
        }
        Ok(Self {
            q,
            sigma,
            steps,
            sampling,
        })
    }

    /// The sampling probability `q`.
    pub fn q(&self) -> f64 {
        self.q.get()
    }

    /// The noise multiplier `sigma`.
    pub fn sigma(&self) -> f64 {
        self.sigma.get()
    }

    /// The number of steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }

    /// The sampling scheme.
    pub fn sampling(&self) -> Sampling {
        self.sampling
    }

    /// The same event with `steps` replaced (at least 1).
    pub fn with_steps(&self, steps: u64) -> Result<Self> {
        Self::from_parts(self.q, self.sigma, steps, self.sampling)
    }

    /// Whether `other` is the same mechanism (so the two can be merged by adding steps).
    pub(crate) fn same_mechanism(&self, other: &Self) -> bool {
        self.q == other.q && self.sigma == other.sigma && self.sampling == other.sampling
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn domains_are_enforced() {
        for q in [0.0, -0.1, 1.0000001, f64::NAN, f64::INFINITY] {
            assert!(SamplingProbability::new(q).is_err(), "q = {q}");
        }
        assert!(SamplingProbability::new(1.0).is_ok());
        for s in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(NoiseMultiplier::new(s).is_err(), "sigma = {s}");
        }
        for d in [0.0, 1.0, -1e-5, f64::NAN] {
            assert!(Delta::new(d).is_err(), "delta = {d}");
        }
        assert!(Epsilon::new(0.0).is_ok());
        assert!(Epsilon::positive(0.0).is_err());
        assert!(Epsilon::new(f64::INFINITY).is_err());
        assert!(SampledGaussian::poisson(0.1, 1.0, 0).is_err());
        let err = SampledGaussian::poisson(1.5, 1.0, 1).unwrap_err();
        assert_eq!(
            err.to_string(),
            "invalid sampling probability q: must be in (0, 1] (got 1.5)"
        );
    }
}
