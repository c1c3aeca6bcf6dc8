//! Differentially private statistics over one column: count, bounded sum, mean, histogram and
//! quantiles, with contribution bounds, an explicit privacy budget split, and noise that is exact
//! integer noise from a cryptographically secure generator.
//!
//! # Example
//!
//! ```
//! use privet_dp::noise::os_seeded_rng;
//! use privet_dp::stats::{
//!     ColumnValues, NumericDomain, StatsBudget, StatsOptions, StatsQuery, release,
//! };
//!
//! let ages = [23.0, 35.0, 41.0, 52.0, 67.0, 29.0, 130.0];
//! let query = StatsQuery {
//!     count: true,
//!     mean: true,
//!     quantiles: vec![0.5],
//!     ..StatsQuery::default()
//! };
//! let options = StatsOptions {
//!     domain: Some(NumericDomain::new(18.0, 90.0, None)?), // 130 is clamped to 90
//!     ..StatsOptions::default()
//! };
//! let budget = StatsBudget::pure(1.0)?; // split: count, centred sum, median: 1/3 each
//! let report = release(
//!     &mut os_seeded_rng()?,
//!     ColumnValues::Numeric(&ages),
//!     &query,
//!     &options,
//!     &budget,
//! )?;
//! assert!(report.epsilon_spent <= 1.0);
//! let mean = report.mean.as_ref().map_or(f64::NAN, |m| m.value);
//! assert!((18.0..=90.0).contains(&mean));
//! # Ok::<(), privet_dp::DpError>(())
//! ```
//!
//! # Privacy unit and neighbouring relation
//!
//! Two data sets are neighbours when one is the other plus or minus all the rows of one
//! individual (add/remove one individual, "unbounded" DP, as OpenDP's symmetric distance and
//! Google's differential-privacy library use). An individual contributes at most
//! `max_contributions` rows (default 1: one row per person). With an identifier column the caller
//! enforces that bound with [`bound_contributions`], which keeps at most `max_contributions`
//! uniformly chosen rows per identifier; without one the bound is the data owner's *declaration*
//! that no person has more rows than that (with the default, that each row is a different
//! person), and the guarantee holds only if the declaration is true. Every sensitivity below is
//! multiplied by `max_contributions`.
//!
//! # Contribution bounds on values
//!
//! Numeric values are clamped to the public bounds `[lower, upper]` and put on the grid
//! `resolution * Z`: each value `x` becomes the integer `k = clamp(round(x / resolution), lo, hi)`
//! with `lo = round(lower / resolution)` and `hi = round(upper / resolution)`
//! ([`NumericDomain`]). Clamping happens on the integer, so no value, however large, moves a
//! statistic by more than the bound (NaN and infinities are refused). The default resolution is
//! the power of two `2^(ceil(log2 max(|lower|, |upper|)) - 20)`: about a millionth of the largest
//! bound, exact for values that are integers or short binary fractions, and small enough that
//! rounding is far below the noise; a power of two makes `x / resolution` exact.
//!
//! # Mechanisms: never floating-point noise
//!
//! Every noisy count and sum is an *integer* statistic plus an exact integer noise sample:
//!
//! * pure epsilon-DP: the discrete Laplace `P(z) ∝ exp(-|z| epsilon / Δ1)` (Canonne, Kamath and
//!   Steinke 2020, Algorithm 2; [`DiscreteLaplace`]), which is epsilon-DP for an integer query of
//!   L1 sensitivity `Δ1` (it is the geometric mechanism of Ghosh, Roughgarden and Sundararajan);
//! * with a `delta`: the discrete Gaussian `N_Z(0, sigma^2)` ([`DiscreteGaussian`], CKS 2020
//!   Algorithm 3), which is `Δ2^2 / (2 sigma^2)`-zCDP for an integer query of L2 sensitivity `Δ2`
//!   (CKS 2020, Theorem 4 and, for vectors, Theorem 14).
//!
//! The released value is `(statistic + noise) * resolution`, computed from the noisy integer
//! alone, so turning it into a float is post-processing: Mironov's 2012 attack on the low-order
//! bits of floating-point noise has nothing to work on. The noise parameters are rationals
//! rounded in the safe direction: epsilon and rho are rounded *down* to a multiple of `2^-24`
//! before the scale is computed, and `sigma^2` is rounded *up*, so the privacy actually spent
//! ([`QueryBudget`] in every release) never exceeds the share allotted.
//!
//! # The statistics
//!
//! * **count**: rows, sensitivity `c = max_contributions`.
//! * **sum**: `sum k_i` on the grid, sensitivity `c max(|lo|, |hi|)`.
//! * **mean**: Google's `BoundedMean` construction. Values are centred on the midpoint of the
//!   bounds, `y_i = 2 k_i - (lo + hi)` (half-grid units, so it stays an integer) with
//!   `|y_i| <= hi - lo`; a noisy centred sum (sensitivity `c (hi - lo)`) and a noisy count are
//!   released and the mean is `midpoint + noisy centred sum / max(noisy count, 1)`, clamped to the
//!   bounds. When the count is also requested the same noisy count serves both (no extra
//!   cost). Centring halves the sum's sensitivity for bounds like `[0, U]`.
//! * **histogram**: public bins (equal-width over the bounds, values clamped, so outliers land in
//!   the edge bins) or a public list of categories with an extra "other" count for every value
//!   not listed. Every bin is released, empty or not, so the bins themselves reveal nothing.
//!   One person changes at most `c` counts by one each: L1 sensitivity `c`, and L2 sensitivity at
//!   most `c` (all `c` rows in one bin), which is what the discrete Gaussian is calibrated to.
//!   Discovering the categories from the data (partition selection with a threshold) is **not**
//!   implemented: releasing the set of values present would not be private.
//! * **quantile** `q`: the exponential-mechanism family over `m` public candidates (grid points
//!   evenly spread over the bounds), with the score of OpenDP's `make_quantile_score_candidates`,
//!   `s(c) = |(1 - q) #{x < c} - q #{x > c}|`: adding or removing one row changes every score by at
//!   most `max(q, 1 - q)`, so one person changes it by at most `Δ = c max(q, 1 - q)`. The
//!   candidate is chosen by **permute-and-flip** (McKenna and Sheldon 2020): candidates are visited
//!   in a uniformly random order and the first one accepted with probability
//!   `exp(-epsilon (s(c) - s_min) / (2 Δ))` is released. It is epsilon-DP (their Theorem 1), and its
//!   expected error is never worse than the exponential mechanism's. With `q = n/10000` and all
//!   scores integers, each acceptance is an exact `Bernoulli(exp(-a/b))` for integers `a, b`
//!   ([`bernoulli_exp_neg`], CKS 2020 Algorithm 1), and the random order is drawn with exact
//!   uniform integers, so no floating point touches the sampling. Accuracy: a candidate whose
//!   score exceeds the best by `t` is accepted, when visited, with probability at most
//!   `exp(-epsilon t / (2 Δ))`, so by a union bound over the `m` candidates the released one is
//!   within `t = (2 Δ / epsilon) ln(m / 0.05)` rows of the best score with probability at least
//!   95% ([`QuantileRelease::score_error_95`]). The best candidate's own score depends on the
//!   data (ties, and the rows between two candidates), so it is not part of the statement.
//!
//! # Budget split
//!
//! The requested statistics become a list of noisy queries ([`plan`]): the count (when a count or
//! a mean is asked for), the sum, the mean's centred sum, the histogram, and one query per
//! quantile. [`StatsBudget::split_equal`] gives every query the same share: `epsilon / k` each
//! under pure DP (basic composition: the epsilons add up), `rho / k` each under zCDP (zCDP
//! composes additively; Bun and Steinke 2016, Lemma 2.3). With a `delta`, the total (epsilon,
//! delta) is first turned into the largest `rho` whose zCDP guarantee implies it, by the
//! conversion of Canonne, Kamath and Steinke 2020, Corollary 13 (the same formula as the improved
//! RDP conversion, Balle et al. 2020, minimised over a dense grid of orders; a grid can only
//! overstate epsilon, so the `rho` found is safe). Quantiles are epsilon-DP mechanisms; under zCDP
//! a share `rho_i` buys `epsilon_i = sqrt(2 rho_i)`, since epsilon-DP implies `epsilon^2 / 2`-zCDP
//! (Bun and Steinke 2016, Proposition 1.4; the tighter `epsilon^2 / 8` of Cesar and Rogers 2021
//! is not used). [`StatsReport::epsilon_spent`] adds up what was actually spent.
//!
//! # Accuracy statements
//!
//! Each count, sum and histogram bin carries its noise's scale (data units), its standard
//! deviation and a 95% interval that contains the exact statistic of the clamped, gridded data
//! with probability at least 95% (from the exact noise distribution: the discrete Laplace's
//! closed-form tail, the discrete Gaussian's summed probability mass). The mean's 95% interval is
//! a union bound over its two noises (97.5% each). None of these intervals include the bias from
//! clamping values to the bounds, which the mechanism cannot know.
//!
//! # What the caller must not print
//!
//! Nothing here reveals the exact number of rows or any exact statistic; a caller that prints
//! them, or that reports an error only for some data sets (other than the curator-side checks of
//! empty and non-finite data), spends privacy that is not accounted.
//!
//! # Not done
//!
//! Partition selection for unknown categories, joint quantile estimation (Gillenwater et al.
//! 2021; each quantile here is a separate query), the tighter zCDP bound for the exponential
//! mechanism, and per-partition contribution bounds for histograms (a person's rows are bounded
//! in total, not per bin).

use std::collections::HashMap;
use std::hash::Hash;

use rand_core::{CryptoRng, RngCore};

use crate::error::{DpError, Result};
use crate::noise::{DiscreteGaussian, DiscreteLaplace, Ratio, bernoulli_exp_neg};
use crate::params::Delta;
use crate::rdp::{Conversion, epsilon_from_rdp};

/// Budgets are rounded down to multiples of `2^-FRAC_BITS` before noise is calibrated.
const FRAC_BITS: u32 = 24;
/// `2^FRAC_BITS`.
const FRAC_DEN: u64 = 1 << FRAC_BITS;
/// Quantile levels are represented as `num / QUANTILE_DEN`.
pub const QUANTILE_DEN: u64 = 10_000;
/// The largest `max_contributions` accepted.
pub const MAX_CONTRIBUTIONS: u32 = 1 << 16;
/// The largest number of histogram bins or categories accepted.
pub const MAX_BINS: usize = 100_000;
/// The default number of quantile candidates (1000 intervals over the bounds).
pub const DEFAULT_QUANTILE_CANDIDATES: usize = 1001;
/// The largest number of quantile candidates accepted.
pub const MAX_QUANTILE_CANDIDATES: usize = 1_000_000;
/// The confidence of every interval reported.
pub const CONFIDENCE: f64 = 0.95;

/// `floor(x 2^24)`, at least 1: `x` rounded down to the budget grid, as the numerator over
/// [`FRAC_DEN`].
fn budget_numerator(name: &'static str, x: f64) -> Result<u64> {
    if !(x > 0.0 && x.is_finite()) {
        return Err(DpError::invalid(name, "must be positive and finite", x));
    }
    let scaled = (x * FRAC_DEN as f64).floor();
    if scaled < 1.0 {
        return Err(DpError::invalid(
            name,
            "is too small: below 2^-24 once the budget is split",
            x,
        ));
    }
    if scaled > 2f64.powi(62) {
        return Err(DpError::invalid(name, "must be at most 2^38", x));
    }
    Ok(scaled as u64)
}

fn gcd(mut a: u128, mut b: u128) -> u128 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// The public domain of a numeric column: clamping bounds and the integer grid.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct NumericDomain {
    lower: f64,
    upper: f64,
    resolution: f64,
    lo: i64,
    hi: i64,
}

impl NumericDomain {
    /// Grid steps below the largest bound's magnitude in the default resolution.
    pub const DEFAULT_GRID_BITS: i32 = 20;
    /// The largest grid index accepted for a bound.
    pub const MAX_GRID_INDEX: f64 = 1099511627776.0; // 2^40

    /// Bounds `lower < upper` (finite) and an optional grid step (default: see the module docs).
    pub fn new(lower: f64, upper: f64, resolution: Option<f64>) -> Result<Self> {
        if !lower.is_finite() {
            return Err(DpError::invalid("lower bound", "must be finite", lower));
        }
        if !upper.is_finite() {
            return Err(DpError::invalid("upper bound", "must be finite", upper));
        }
        if lower >= upper {
            return Err(DpError::invalid(
                "bounds",
                "lower must be below upper",
                format!("[{lower}, {upper}]"),
            ));
        }
        let resolution = match resolution {
            Some(r) if r > 0.0 && r.is_finite() => r,
            Some(r) => {
                return Err(DpError::invalid(
                    "resolution",
                    "must be positive and finite",
                    r,
                ));
            }
            None => {
                let m = lower.abs().max(upper.abs());
                let e = m.log2().ceil() as i32;
                2f64.powi(e - Self::DEFAULT_GRID_BITS)
            }
        };
        let lo = (lower / resolution).round();
        let hi = (upper / resolution).round();
        if !(lo.abs() <= Self::MAX_GRID_INDEX && hi.abs() <= Self::MAX_GRID_INDEX) {
            return Err(DpError::invalid(
                "resolution",
                "is too fine for the bounds (a bound is more than 2^40 grid steps from zero); \
                 use a coarser one",
                resolution,
            ));
        }
        if lo >= hi {
            return Err(DpError::invalid(
                "resolution",
                "is too coarse: both bounds round to the same grid point",
                resolution,
            ));
        }
        Ok(Self {
            lower,
            upper,
            resolution,
            lo: lo as i64,
            hi: hi as i64,
        })
    }

    /// The lower bound as given.
    pub fn lower(&self) -> f64 {
        self.lower
    }

    /// The upper bound as given.
    pub fn upper(&self) -> f64 {
        self.upper
    }

    /// The grid step.
    pub fn resolution(&self) -> f64 {
        self.resolution
    }

    /// The bounds actually applied: `(lo * resolution, hi * resolution)`.
    pub fn effective_bounds(&self) -> (f64, f64) {
        (self.to_value(self.lo), self.to_value(self.hi))
    }

    /// The grid indices of the bounds, `(lo, hi)`.
    pub fn grid_bounds(&self) -> (i64, i64) {
        (self.lo, self.hi)
    }

    /// The clamped grid index of a finite value.
    pub fn index(&self, x: f64) -> i64 {
        (x / self.resolution)
            .round()
            .clamp(self.lo as f64, self.hi as f64) as i64
    }

    /// A grid index back in data units.
    pub fn to_value(&self, k: i64) -> f64 {
        k as f64 * self.resolution
    }

    /// `max(|lo|, |hi|)`: how far one clamped value moves a sum, in grid steps.
    pub fn max_abs_index(&self) -> u64 {
        self.lo.unsigned_abs().max(self.hi.unsigned_abs())
    }

    /// `hi - lo`.
    pub fn width(&self) -> u64 {
        self.hi.abs_diff(self.lo)
    }
}

/// The privacy loss allotted to (or spent by) one noisy query.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum QueryBudget {
    /// Pure epsilon-DP.
    Pure {
        /// Epsilon.
        epsilon: f64,
    },
    /// rho-zCDP (Bun and Steinke 2016).
    Zcdp {
        /// Rho.
        rho: f64,
    },
}

impl QueryBudget {
    /// The epsilon for a pure-DP mechanism (the exponential mechanism family): `epsilon`, or
    /// `sqrt(2 rho)` under zCDP.
    pub fn pure_epsilon(self) -> f64 {
        match self {
            QueryBudget::Pure { epsilon } => epsilon,
            QueryBudget::Zcdp { rho } => (2.0 * rho).sqrt(),
        }
    }
}

/// The total budget of one `stats` release: `epsilon` alone (pure DP, discrete Laplace noise) or
/// `(epsilon, delta)` (zCDP with discrete Gaussian noise, converted).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StatsBudget {
    epsilon: f64,
    delta: Option<Delta>,
    rho: Option<f64>,
}

/// Orders `alpha` of the zCDP to (epsilon, delta) conversion: `1 + 10^x` for 4,000 values of `x`
/// evenly spread over `[-3, 7]`.
fn conversion_orders() -> Vec<f64> {
    (0..4000)
        .map(|i| 1.0 + 10f64.powf(-3.0 + 10.0 * i as f64 / 3999.0))
        .collect()
}

/// The epsilon at `delta` implied by `rho`-zCDP (CKS 2020, Corollary 13).
pub fn zcdp_epsilon(rho: f64, delta: Delta) -> Result<f64> {
    if !(rho >= 0.0 && rho.is_finite()) {
        return Err(DpError::invalid(
            "rho",
            "must be non-negative and finite",
            rho,
        ));
    }
    let orders = conversion_orders();
    let rdp: Vec<f64> = orders.iter().map(|a| a * rho).collect();
    Ok(epsilon_from_rdp(&orders, &rdp, delta, Conversion::Improved)?.epsilon)
}

/// The largest `rho` whose zCDP implies `(epsilon, delta)`-DP (to within `1e-12` relative,
/// rounded down).
pub fn zcdp_rho_for(epsilon: f64, delta: Delta) -> Result<f64> {
    if !(epsilon > 0.0 && epsilon.is_finite()) {
        return Err(DpError::invalid(
            "epsilon",
            "must be positive and finite",
            epsilon,
        ));
    }
    // rho-zCDP implies (rho + 2 sqrt(rho ln(1/delta)), delta), so rho = epsilon always suffices
    // to bracket: epsilon(rho = epsilon) >= epsilon.
    let (mut lo, mut hi) = (0.0_f64, epsilon);
    if zcdp_epsilon(hi, delta)? <= epsilon {
        return Ok(hi);
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if zcdp_epsilon(mid, delta)? <= epsilon {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo <= 1e-12 * hi {
            break;
        }
    }
    if lo <= 0.0 {
        return Err(DpError::Numerical(format!(
            "no positive rho reaches epsilon {epsilon} at delta {}",
            delta.get()
        )));
    }
    Ok(lo)
}

impl StatsBudget {
    /// Pure `epsilon`-DP (discrete Laplace noise).
    pub fn pure(epsilon: f64) -> Result<Self> {
        if !(epsilon > 0.0 && epsilon.is_finite()) {
            return Err(DpError::invalid(
                "epsilon",
                "must be positive and finite",
                epsilon,
            ));
        }
        Ok(Self {
            epsilon,
            delta: None,
            rho: None,
        })
    }

    /// `(epsilon, delta)`-DP through zCDP (discrete Gaussian noise).
    pub fn approximate(epsilon: f64, delta: f64) -> Result<Self> {
        let delta = Delta::new(delta)?;
        let rho = zcdp_rho_for(epsilon, delta)?;
        Ok(Self {
            epsilon,
            delta: Some(delta),
            rho: Some(rho),
        })
    }

    /// The total epsilon.
    pub fn epsilon(&self) -> f64 {
        self.epsilon
    }

    /// The total delta (`None` under pure DP).
    pub fn delta(&self) -> Option<f64> {
        self.delta.map(Delta::get)
    }

    /// The total rho (`None` under pure DP).
    pub fn rho(&self) -> Option<f64> {
        self.rho
    }

    /// `k` equal shares (`epsilon / k` or `rho / k`); `k >= 1`.
    pub fn split_equal(&self, k: usize) -> Result<Vec<QueryBudget>> {
        if k == 0 {
            return Err(DpError::invalid(
                "number of queries",
                "must be at least 1",
                k,
            ));
        }
        let share = match self.rho {
            Some(rho) => QueryBudget::Zcdp {
                rho: rho / k as f64,
            },
            None => QueryBudget::Pure {
                epsilon: self.epsilon / k as f64,
            },
        };
        Ok(vec![share; k])
    }

    /// The total epsilon of queries that spent `spent`: their epsilons added up under pure DP, or
    /// their rhos added up and converted at this budget's delta.
    pub fn epsilon_of(&self, spent: &[QueryBudget]) -> Result<f64> {
        let mut eps = 0.0;
        let mut rho = 0.0;
        for s in spent {
            match *s {
                QueryBudget::Pure { epsilon } => eps += epsilon,
                QueryBudget::Zcdp { rho: r } => rho += r,
            }
        }
        match self.delta {
            Some(delta) => {
                if eps > 0.0 {
                    return Err(DpError::invalid(
                        "spent budget",
                        "mixes pure-DP and zCDP shares",
                        eps,
                    ));
                }
                zcdp_epsilon(rho, delta)
            }
            None => {
                if rho > 0.0 {
                    return Err(DpError::invalid(
                        "spent budget",
                        "has a zCDP share under a pure-DP budget",
                        rho,
                    ));
                }
                Ok(eps)
            }
        }
    }
}

/// The noise mechanism of a count or sum.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sampler {
    Laplace(DiscreteLaplace),
    Gaussian(DiscreteGaussian),
}

/// Exact integer noise calibrated to an integer sensitivity and a [`QueryBudget`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct IntegerNoise {
    sampler: Sampler,
    sensitivity: u64,
    spent: QueryBudget,
}

impl IntegerNoise {
    /// Discrete Laplace noise for L1 sensitivity `sensitivity` and the budget's epsilon, or
    /// discrete Gaussian noise for L2 sensitivity `sensitivity` and its rho.
    pub fn new(sensitivity: u64, budget: QueryBudget) -> Result<Self> {
        if sensitivity == 0 {
            return Err(DpError::invalid("sensitivity", "must be at least 1", 0));
        }
        match budget {
            QueryBudget::Pure { epsilon } => Self::laplace(sensitivity, epsilon),
            QueryBudget::Zcdp { rho } => Self::gaussian(sensitivity, rho),
        }
    }

    fn laplace(sensitivity: u64, epsilon: f64) -> Result<Self> {
        let e = budget_numerator("epsilon", epsilon)?;
        // scale = sensitivity / (e / 2^24), exactly, as a rational.
        let num = u128::from(sensitivity) << FRAC_BITS;
        let g = gcd(num, u128::from(e));
        let (num, den) = (num / g, u128::from(e) / g);
        let too_large = || {
            DpError::invalid(
                "noise scale",
                "is too large (sensitivity / epsilon must be below 2^32 grid steps); use a \
                 coarser resolution or a larger epsilon",
                sensitivity as f64 / epsilon,
            )
        };
        let num = u64::try_from(num).map_err(|_| too_large())?;
        let den = u64::try_from(den).map_err(|_| too_large())?;
        let laplace = DiscreteLaplace::new(Ratio::new(num, den)?).map_err(|_| too_large())?;
        Ok(Self {
            sampler: Sampler::Laplace(laplace),
            sensitivity,
            spent: QueryBudget::Pure {
                epsilon: e as f64 / FRAC_DEN as f64,
            },
        })
    }

    fn gaussian(sensitivity: u64, rho: f64) -> Result<Self> {
        let r = budget_numerator("rho", rho)?;
        // sigma^2 = sensitivity^2 / (2 r / 2^24), rounded up on the finest grid 2^-k (k <= 32)
        // whose numerator fits in 64 bits.
        let s2 = u128::from(sensitivity) * u128::from(sensitivity);
        let denom = 2 * u128::from(r);
        let too_large = || {
            DpError::invalid(
                "noise scale",
                "is too large (sigma must be below 2^32 grid steps); use a coarser resolution or \
                 a larger budget",
                sensitivity as f64 / (2.0 * rho).sqrt(),
            )
        };
        let mut chosen = None;
        for k in (0..=32u32).rev() {
            let Some(top) = s2.checked_mul(1u128 << (FRAC_BITS + k)) else {
                continue;
            };
            let num = top.div_ceil(denom);
            if let Ok(num) = u64::try_from(num) {
                chosen = Some((num, 1u64 << k));
                break;
            }
        }
        let (num, den) = chosen.ok_or_else(too_large)?;
        let g = gcd(u128::from(num), u128::from(den)) as u64;
        let sigma_sq = Ratio::new(num / g, den / g)?;
        let gaussian = DiscreteGaussian::new(sigma_sq).map_err(|_| too_large())?;
        Ok(Self {
            sampler: Sampler::Gaussian(gaussian),
            sensitivity,
            spent: QueryBudget::Zcdp {
                rho: (sensitivity as f64).powi(2) / (2.0 * sigma_sq.to_f64()),
            },
        })
    }

    /// One exact sample.
    pub fn sample<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        match &self.sampler {
            Sampler::Laplace(l) => l.sample(rng),
            Sampler::Gaussian(g) => g.sample(rng),
        }
    }

    /// `"discrete_laplace"` or `"discrete_gaussian"`.
    pub fn mechanism(&self) -> &'static str {
        match self.sampler {
            Sampler::Laplace(_) => "discrete_laplace",
            Sampler::Gaussian(_) => "discrete_gaussian",
        }
    }

    /// The integer sensitivity it is calibrated to.
    pub fn sensitivity(&self) -> u64 {
        self.sensitivity
    }

    /// The privacy this noise spends (at most the budget it was built for).
    pub fn spent(&self) -> QueryBudget {
        self.spent
    }

    /// The scale in grid steps: the Laplace `b` of `exp(-|z| / b)`, or the Gaussian `sigma`.
    pub fn scale(&self) -> f64 {
        match &self.sampler {
            Sampler::Laplace(l) => l.scale().to_f64(),
            Sampler::Gaussian(g) => g.sigma_squared().to_f64().sqrt(),
        }
    }

    /// The standard deviation in grid steps: `sqrt(2 p) / (1 - p)` with `p = exp(-1/b)` for the
    /// discrete Laplace, and `sigma` (an upper bound, tight for `sigma >= 1`) for the discrete
    /// Gaussian.
    pub fn std_dev(&self) -> f64 {
        match &self.sampler {
            Sampler::Laplace(_) => {
                let b = self.scale();
                let p = (-1.0 / b).exp();
                let one_minus_p = -(-1.0 / b).exp_m1();
                (2.0 * p).sqrt() / one_minus_p
            }
            Sampler::Gaussian(_) => self.scale(),
        }
    }

    /// The smallest `k >= 0` with `P(|Z| <= k) >= confidence` (`0 < confidence < 1`).
    pub fn half_width(&self, confidence: f64) -> u64 {
        let tail = 1.0 - confidence;
        match &self.sampler {
            Sampler::Laplace(_) => {
                // P(|Z| > k) = 2 p^(k+1) / (1 + p).
                let b = self.scale();
                let ln_p = -1.0 / b;
                let p = ln_p.exp();
                let need = ((tail * (1.0 + p) / 2.0).ln() / ln_p).ceil() - 1.0;
                need.max(0.0) as u64
            }
            Sampler::Gaussian(_) => {
                let sigma = self.scale();
                if sigma > 2.0e5 {
                    // P(|Z| <= k) is P(|X| <= k + 1/2) for the continuous Gaussian up to a
                    // relative exp(-2 pi^2 sigma^2): k = ceil(z sigma) is safe.
                    return (normal_quantile(1.0 - tail / 2.0) * sigma).ceil() as u64;
                }
                let two_s2 = 2.0 * sigma * sigma;
                // Mass beyond 12 sigma is below exp(-72): negligible in double precision.
                let limit = (12.0 * sigma).ceil() as u64 + 2;
                let mass = |x: u64| (-((x as f64).powi(2)) / two_s2).exp();
                let total: f64 = 1.0 + 2.0 * (1..=limit).map(mass).sum::<f64>();
                let mut inside = 1.0;
                let mut k = 0;
                while inside / total < confidence && k < limit {
                    k += 1;
                    inside += 2.0 * mass(k);
                }
                k
            }
        }
    }
}

/// The standard normal quantile for `p` in `(0, 1)`, for reporting (privet-dp's one normal
/// quantile, [`crate::special::norm_ppf_from_log`]).
fn normal_quantile(p: f64) -> f64 {
    crate::special::norm_ppf_from_log(p.ln())
}

/// What a release's noise was, in data units.
#[derive(Debug, Clone, PartialEq)]
pub struct NoiseInfo {
    /// `"discrete_laplace"` or `"discrete_gaussian"`.
    pub mechanism: &'static str,
    /// The Laplace scale `b` or the Gaussian `sigma`, in data units (grid steps times the unit).
    pub scale: f64,
    /// The noise's standard deviation in data units.
    pub std_dev: f64,
    /// The sensitivity the noise is calibrated to, in data units.
    pub sensitivity: f64,
}

impl NoiseInfo {
    fn of(noise: &IntegerNoise, unit: f64) -> Self {
        Self {
            mechanism: noise.mechanism(),
            scale: noise.scale() * unit,
            std_dev: noise.std_dev() * unit,
            sensitivity: noise.sensitivity() as f64 * unit,
        }
    }
}

/// A noisy count or sum.
#[derive(Debug, Clone, PartialEq)]
pub struct ScalarRelease {
    /// The noisy value (a count is an integer, possibly negative: it is left unbiased).
    pub value: f64,
    /// The noise added.
    pub noise: NoiseInfo,
    /// The privacy spent.
    pub spent: QueryBudget,
    /// An interval that holds the exact statistic of the clamped data with probability >= 95%.
    pub ci95: (f64, f64),
}

/// A noisy mean.
#[derive(Debug, Clone, PartialEq)]
pub struct MeanRelease {
    /// `midpoint + noisy centred sum / max(noisy count, 1)`, clamped to the bounds.
    pub value: f64,
    /// The centred sum's noise (data units: half grid steps times the resolution).
    pub sum_noise: NoiseInfo,
    /// The privacy spent by the centred sum (the count is accounted separately).
    pub spent: QueryBudget,
    /// An interval that holds the exact mean of the clamped data with probability >= 95% (union
    /// bound over the sum's and the count's noise).
    pub ci95: (f64, f64),
}

/// One histogram bin.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramBin {
    /// The category, or `[lower, upper)` for a numeric bin (the last bin is closed).
    pub label: String,
    /// The numeric bin's lower edge.
    pub lower: Option<f64>,
    /// The numeric bin's upper edge.
    pub upper: Option<f64>,
    /// The noisy count.
    pub count: i64,
}

/// A noisy histogram.
#[derive(Debug, Clone, PartialEq)]
pub struct HistogramRelease {
    /// The bins, in order.
    pub bins: Vec<HistogramBin>,
    /// For a category histogram, the noisy count of values not in the list.
    pub other: Option<i64>,
    /// The noise added to every count.
    pub noise: NoiseInfo,
    /// The privacy spent.
    pub spent: QueryBudget,
    /// Each count is within this of its exact value with probability >= 95% (per bin).
    pub ci95_half_width: f64,
}

/// A noisy quantile.
#[derive(Debug, Clone, PartialEq)]
pub struct QuantileRelease {
    /// The level `q` in `[0, 1]` (after rounding to `1/10000`).
    pub q: f64,
    /// The chosen candidate.
    pub value: f64,
    /// The number of candidates.
    pub candidates: usize,
    /// The distance between neighbouring candidates.
    pub spacing: f64,
    /// With probability >= 95%, `|(1-q) #below - q #above|` at the released value exceeds its
    /// minimum over the candidates by at most this many rows.
    pub score_error_95: f64,
    /// The privacy spent (the epsilon of permute-and-flip, or its zCDP equivalent).
    pub spent: QueryBudget,
}

/// What a histogram counts.
#[derive(Debug, Clone, PartialEq)]
pub enum HistogramSpec {
    /// Equal-width bins over the numeric bounds.
    Bins(usize),
    /// A public list of categories (distinct); other values are counted together.
    Categories(Vec<String>),
}

/// The statistics requested.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct StatsQuery {
    /// The number of rows.
    pub count: bool,
    /// The sum of the clamped values.
    pub sum: bool,
    /// The mean of the clamped values.
    pub mean: bool,
    /// A histogram.
    pub histogram: Option<HistogramSpec>,
    /// Quantile levels in `[0, 1]`.
    pub quantiles: Vec<f64>,
}

/// One noisy query of a release plan.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// The count (also the mean's denominator).
    Count,
    /// The bounded sum.
    Sum,
    /// The mean's centred sum.
    MeanSum,
    /// The histogram.
    Histogram,
    /// The quantile at this level.
    Quantile(f64),
}

impl Query {
    /// A short name.
    pub fn name(&self) -> String {
        match self {
            Query::Count => "count".into(),
            Query::Sum => "sum".into(),
            Query::MeanSum => "mean (centred sum)".into(),
            Query::Histogram => "histogram".into(),
            Query::Quantile(q) => format!("quantile {q}"),
        }
    }
}

/// The noisy queries a request needs, in the order they are run (see the module docs).
pub fn plan(query: &StatsQuery) -> Vec<Query> {
    let mut out = Vec::new();
    if query.count || query.mean {
        out.push(Query::Count);
    }
    if query.sum {
        out.push(Query::Sum);
    }
    if query.mean {
        out.push(Query::MeanSum);
    }
    if query.histogram.is_some() {
        out.push(Query::Histogram);
    }
    out.extend(query.quantiles.iter().map(|&q| Query::Quantile(q)));
    out
}

/// The column the statistics are computed on.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ColumnValues<'a> {
    /// Numeric values (must be finite).
    Numeric(&'a [f64]),
    /// Text values (for a category histogram and the count).
    Text(&'a [String]),
}

impl ColumnValues<'_> {
    fn len(&self) -> usize {
        match self {
            ColumnValues::Numeric(v) => v.len(),
            ColumnValues::Text(v) => v.len(),
        }
    }

    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Public parameters of a release.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsOptions {
    /// The bounds and grid of a numeric column (required for sum, mean, quantiles and bins).
    pub domain: Option<NumericDomain>,
    /// The most rows one individual contributes (default 1).
    pub max_contributions: u32,
    /// The number of quantile candidates (default [`DEFAULT_QUANTILE_CANDIDATES`]), at most the
    /// number of grid points between the bounds.
    pub quantile_candidates: usize,
}

impl Default for StatsOptions {
    fn default() -> Self {
        Self {
            domain: None,
            max_contributions: 1,
            quantile_candidates: DEFAULT_QUANTILE_CANDIDATES,
        }
    }
}

/// Everything a release produced.
#[derive(Debug, Clone, PartialEq)]
pub struct StatsReport {
    /// The queries and the share of the budget each was given.
    pub allocation: Vec<(Query, QueryBudget)>,
    /// The noisy count (when a count was requested).
    pub count: Option<ScalarRelease>,
    /// The noisy sum.
    pub sum: Option<ScalarRelease>,
    /// The noisy mean.
    pub mean: Option<MeanRelease>,
    /// The noisy histogram.
    pub histogram: Option<HistogramRelease>,
    /// The noisy quantiles, in the order requested.
    pub quantiles: Vec<QuantileRelease>,
    /// The privacy actually spent by every query (at most each allotted share).
    pub spent: Vec<QueryBudget>,
    /// The total epsilon spent (at the budget's delta under zCDP); at most the budget's epsilon.
    pub epsilon_spent: f64,
}

/// Checks that every value is finite and that there is at least one.
fn check_numeric(values: &[f64]) -> Result<()> {
    if values.is_empty() {
        return Err(DpError::invalid(
            "data",
            "must have at least one row",
            "an empty column",
        ));
    }
    if let Some((i, v)) = values.iter().enumerate().find(|(_, v)| !v.is_finite()) {
        return Err(DpError::invalid(
            "value",
            "must be finite (NaN and infinities are not data)",
            format!("{v} in row {}", i + 1),
        ));
    }
    Ok(())
}

/// The noisy number of rows.
pub fn dp_count<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    rows: usize,
    max_contributions: u32,
    budget: QueryBudget,
) -> Result<ScalarRelease> {
    check_contributions(max_contributions)?;
    let noise = IntegerNoise::new(u64::from(max_contributions), budget)?;
    let value = rows as i64 + noise.sample(rng);
    let w = noise.half_width(CONFIDENCE) as i64;
    Ok(ScalarRelease {
        value: value as f64,
        noise: NoiseInfo::of(&noise, 1.0),
        spent: noise.spent(),
        ci95: ((value - w) as f64, (value + w) as f64),
    })
}

fn check_contributions(c: u32) -> Result<()> {
    if c == 0 || c > MAX_CONTRIBUTIONS {
        return Err(DpError::invalid(
            "max_contributions",
            "must be in [1, 65536]",
            c,
        ));
    }
    Ok(())
}

fn scaled_sensitivity(per_row: u64, c: u32) -> Result<u64> {
    per_row.checked_mul(u64::from(c)).ok_or_else(|| {
        DpError::invalid(
            "sensitivity",
            "overflows: use a coarser resolution",
            per_row,
        )
    })
}

/// The noisy sum of the values clamped to the domain.
pub fn dp_sum<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    values: &[f64],
    domain: &NumericDomain,
    max_contributions: u32,
    budget: QueryBudget,
) -> Result<ScalarRelease> {
    check_numeric(values)?;
    check_contributions(max_contributions)?;
    let sensitivity = scaled_sensitivity(domain.max_abs_index(), max_contributions)?;
    let noise = IntegerNoise::new(sensitivity, budget)?;
    let exact: i128 = values.iter().map(|&x| i128::from(domain.index(x))).sum();
    let noisy = exact + i128::from(noise.sample(rng));
    let w = i128::from(noise.half_width(CONFIDENCE));
    let g = domain.resolution();
    Ok(ScalarRelease {
        value: noisy as f64 * g,
        noise: NoiseInfo::of(&noise, g),
        spent: noise.spent(),
        ci95: ((noisy - w) as f64 * g, (noisy + w) as f64 * g),
    })
}

/// The noisy mean of the clamped values, from a noisy count already released (with its noise,
/// for the interval) and a noisy centred sum drawn here with `budget`.
pub fn dp_mean<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    values: &[f64],
    domain: &NumericDomain,
    max_contributions: u32,
    noisy_count: i64,
    count_noise: &IntegerNoise,
    budget: QueryBudget,
) -> Result<MeanRelease> {
    check_numeric(values)?;
    check_contributions(max_contributions)?;
    let (lo, hi) = domain.grid_bounds();
    let sensitivity = scaled_sensitivity(domain.width(), max_contributions)?;
    let noise = IntegerNoise::new(sensitivity, budget)?;
    let centre = i128::from(lo) + i128::from(hi);
    let exact: i128 = values
        .iter()
        .map(|&x| 2 * i128::from(domain.index(x)) - centre)
        .sum();
    let noisy = exact + i128::from(noise.sample(rng));
    let half = domain.resolution() / 2.0;
    let mid = centre as f64 * half;
    let (lower, upper) = domain.effective_bounds();
    let mean_of = |t: f64, n: f64| (mid + t * half / n).clamp(lower, upper);
    let value = mean_of(noisy as f64, noisy_count.max(1) as f64);

    // 97.5% for each noise: both hold together with probability >= 95%.
    let each = 1.0 - (1.0 - CONFIDENCE) / 2.0;
    let a = noise.half_width(each) as f64;
    let b = count_noise.half_width(each) as f64;
    let (t1, t2) = (noisy as f64 - a, noisy as f64 + a);
    let n_hi = noisy_count as f64 + b;
    let ci95 = if n_hi < 1.0 {
        (lower, upper)
    } else {
        let n_lo = (noisy_count as f64 - b).max(1.0);
        // T / n is monotone in each argument, so its extremes are at the corners.
        (
            mean_of(t1, n_lo).min(mean_of(t1, n_hi)),
            mean_of(t2, n_lo).max(mean_of(t2, n_hi)),
        )
    };
    Ok(MeanRelease {
        value,
        sum_noise: NoiseInfo::of(&noise, half),
        spent: noise.spent(),
        ci95,
    })
}

/// A noisy histogram: numeric bins over the domain, or counts of public categories.
pub fn dp_histogram<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    values: ColumnValues<'_>,
    spec: &HistogramSpec,
    domain: Option<&NumericDomain>,
    max_contributions: u32,
    budget: QueryBudget,
) -> Result<HistogramRelease> {
    check_contributions(max_contributions)?;
    let noise = IntegerNoise::new(u64::from(max_contributions), budget)?;
    let (labels, edges, exact, other) = match (spec, values) {
        (HistogramSpec::Bins(bins), ColumnValues::Numeric(v)) => {
            check_numeric(v)?;
            let bins = *bins;
            if bins == 0 || bins > MAX_BINS {
                return Err(DpError::invalid("bins", "must be in [1, 100000]", bins));
            }
            let domain = domain.ok_or(DpError::invalid(
                "bounds",
                "are required for a numeric histogram",
                "none",
            ))?;
            let (lower, upper) = domain.effective_bounds();
            let width = upper - lower;
            let mut counts = vec![0i64; bins];
            for &x in v {
                let x = domain.to_value(domain.index(x));
                let b = (((x - lower) / width) * bins as f64).floor();
                let b = (b.max(0.0) as usize).min(bins - 1);
                counts[b] += 1;
            }
            let edge = |i: usize| lower + width * i as f64 / bins as f64;
            let edges: Vec<(f64, f64)> = (0..bins)
                .map(|i| (edge(i), if i + 1 == bins { upper } else { edge(i + 1) }))
                .collect();
            let labels = edges
                .iter()
                .enumerate()
                .map(|(i, (a, b))| {
                    let close = if i + 1 == bins { ']' } else { ')' };
                    format!("[{a}, {b}{close}")
                })
                .collect();
            (labels, Some(edges), counts, None)
        }
        (HistogramSpec::Categories(cats), values) => {
            if cats.is_empty() || cats.len() > MAX_BINS {
                return Err(DpError::invalid(
                    "categories",
                    "must list between 1 and 100000 values",
                    cats.len(),
                ));
            }
            let mut index = HashMap::with_capacity(cats.len());
            for (i, c) in cats.iter().enumerate() {
                if index.insert(c.as_str(), i).is_some() {
                    return Err(DpError::invalid(
                        "categories",
                        "must be distinct",
                        c.clone(),
                    ));
                }
            }
            let mut counts = vec![0i64; cats.len()];
            let mut other = 0i64;
            let mut tally = |key: &str| match index.get(key) {
                Some(&i) => counts[i] += 1,
                None => other += 1,
            };
            match values {
                ColumnValues::Text(v) => {
                    if v.is_empty() {
                        return Err(DpError::invalid(
                            "data",
                            "must have at least one row",
                            "an empty column",
                        ));
                    }
                    v.iter().for_each(|s| tally(s));
                }
                ColumnValues::Numeric(v) => {
                    check_numeric(v)?;
                    v.iter().for_each(|x| tally(&x.to_string()));
                }
            }
            (cats.clone(), None, counts, Some(other))
        }
        (HistogramSpec::Bins(_), ColumnValues::Text(_)) => {
            return Err(DpError::invalid(
                "histogram",
                "needs a numeric column for bins (list categories for text)",
                "text column",
            ));
        }
    };
    let bins = labels
        .into_iter()
        .zip(exact)
        .enumerate()
        .map(|(i, (label, n))| HistogramBin {
            label,
            lower: edges.as_ref().map(|e| e[i].0),
            upper: edges.as_ref().map(|e| e[i].1),
            count: n + noise.sample(rng),
        })
        .collect();
    let other = other.map(|n| n + noise.sample(rng));
    Ok(HistogramRelease {
        bins,
        other,
        noise: NoiseInfo::of(&noise, 1.0),
        spent: noise.spent(),
        ci95_half_width: noise.half_width(CONFIDENCE) as f64,
    })
}

/// An exact `Bernoulli(exp(-num / den))` for a 128-bit numerator: the product of independent
/// draws for 64-bit pieces of the exponent.
fn bernoulli_exp_neg_wide<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    mut num: u128,
    den: u64,
) -> Result<bool> {
    while num > u128::from(u64::MAX) {
        if !bernoulli_exp_neg(rng, u64::MAX, den)? {
            return Ok(false);
        }
        num -= u128::from(u64::MAX);
    }
    bernoulli_exp_neg(rng, num as u64, den)
}

/// Permute-and-flip (McKenna and Sheldon 2020) over integer scores (lower is better): visits
/// the candidates in a uniformly random order and returns the first accepted with probability
/// `exp(-(epsilon_num / 2^24) (s - s_min) / (2 sensitivity))`, exactly.
fn permute_and_flip<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    scores: &[u64],
    epsilon_num: u64,
    sensitivity: u64,
) -> Result<usize> {
    let best = scores.iter().copied().min().ok_or(DpError::invalid(
        "candidates",
        "must not be empty",
        0,
    ))?;
    let den = sensitivity
        .checked_mul(2 * FRAC_DEN)
        .ok_or(DpError::invalid(
            "quantile sensitivity",
            "overflows",
            sensitivity,
        ))?;
    let mut remaining: Vec<usize> = (0..scores.len()).collect();
    while !remaining.is_empty() {
        let j = crate::noise::uniform::below_u64(rng, remaining.len() as u64) as usize;
        let r = remaining.swap_remove(j);
        let gap = u128::from(scores[r] - best) * u128::from(epsilon_num);
        if bernoulli_exp_neg_wide(rng, gap, den)? {
            return Ok(r);
        }
    }
    // The best candidate is always accepted (gap 0), so this is unreachable.
    Err(DpError::Numerical(
        "permute-and-flip accepted no candidate".into(),
    ))
}

/// The candidates' grid indices: all grid points when there are at most `m`, otherwise `m`
/// points evenly spread from `lo` to `hi`.
fn quantile_candidates(domain: &NumericDomain, m: usize) -> Vec<i64> {
    let (lo, hi) = domain.grid_bounds();
    let width = u128::from(domain.width());
    if width < m as u128 {
        return (lo..=hi).collect();
    }
    let intervals = (m - 1) as u128;
    let mut out: Vec<i64> = (0..m as u128)
        .map(|j| lo + ((j * width + intervals / 2) / intervals) as i64)
        .collect();
    out.dedup();
    out
}

/// A noisy `q`-quantile of the clamped values by permute-and-flip over public candidates.
pub fn dp_quantile<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    values: &[f64],
    domain: &NumericDomain,
    q: f64,
    candidates: usize,
    max_contributions: u32,
    budget: QueryBudget,
) -> Result<QuantileRelease> {
    check_numeric(values)?;
    check_contributions(max_contributions)?;
    let mut sorted: Vec<i64> = values.iter().map(|&x| domain.index(x)).collect();
    sorted.sort_unstable();
    dp_quantile_sorted(
        rng,
        &sorted,
        domain,
        q,
        candidates,
        max_contributions,
        budget,
    )
}

fn check_quantile(q: f64) -> Result<u64> {
    if !(0.0..=1.0).contains(&q) {
        return Err(DpError::invalid("quantile", "must be in [0, 1]", q));
    }
    Ok((q * QUANTILE_DEN as f64).round() as u64)
}

fn dp_quantile_sorted<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    sorted: &[i64],
    domain: &NumericDomain,
    q: f64,
    candidates: usize,
    max_contributions: u32,
    budget: QueryBudget,
) -> Result<QuantileRelease> {
    let q_num = check_quantile(q)?;
    if !(2..=MAX_QUANTILE_CANDIDATES).contains(&candidates) {
        return Err(DpError::invalid(
            "quantile candidates",
            "must be in [2, 1000000]",
            candidates,
        ));
    }
    let epsilon = budget.pure_epsilon();
    let e = budget_numerator("epsilon", epsilon)?;
    let per_row = q_num.max(QUANTILE_DEN - q_num);
    let sensitivity = per_row * u64::from(max_contributions);
    let points = quantile_candidates(domain, candidates);
    let n = sorted.len() as u64;
    let scores: Vec<u64> = points
        .iter()
        .map(|&c| {
            let below = sorted.partition_point(|&k| k < c) as u64;
            let above = n - sorted.partition_point(|&k| k <= c) as u64;
            ((QUANTILE_DEN - q_num) * below).abs_diff(q_num * above)
        })
        .collect();
    let chosen = permute_and_flip(rng, &scores, e, sensitivity)?;
    let spent_eps = e as f64 / FRAC_DEN as f64;
    let m = points.len();
    let (lower, upper) = domain.effective_bounds();
    Ok(QuantileRelease {
        q: q_num as f64 / QUANTILE_DEN as f64,
        value: domain.to_value(points[chosen]),
        candidates: m,
        spacing: (upper - lower) / (m - 1) as f64,
        score_error_95: 2.0 * sensitivity as f64 / QUANTILE_DEN as f64 / spent_eps
            * (m as f64 / (1.0 - CONFIDENCE)).ln(),
        spent: match budget {
            QueryBudget::Pure { .. } => QueryBudget::Pure { epsilon: spent_eps },
            QueryBudget::Zcdp { .. } => QueryBudget::Zcdp {
                rho: spent_eps * spent_eps / 2.0,
            },
        },
    })
}

/// Keeps at most `max_contributions` rows per identifier, chosen uniformly at random; returns the
/// kept row indices in increasing order. Removing one identifier's rows then changes the kept
/// rows of no other identifier, which is what makes the sensitivities above hold.
pub fn bound_contributions<R, K>(
    rng: &mut R,
    ids: &[K],
    max_contributions: u32,
) -> Result<Vec<usize>>
where
    R: RngCore + CryptoRng + ?Sized,
    K: Hash + Eq,
{
    check_contributions(max_contributions)?;
    let mut order: Vec<usize> = (0..ids.len()).collect();
    for i in (1..order.len()).rev() {
        let j = crate::noise::uniform::below_u64(rng, i as u64 + 1) as usize;
        order.swap(i, j);
    }
    let mut seen: HashMap<&K, u32> = HashMap::new();
    let mut kept: Vec<usize> = order
        .into_iter()
        .filter(|&i| {
            let n = seen.entry(&ids[i]).or_insert(0);
            *n += 1;
            *n <= max_contributions
        })
        .collect();
    kept.sort_unstable();
    Ok(kept)
}

/// Runs every requested statistic with an equal share of `budget` (see the module docs).
pub fn release<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    values: ColumnValues<'_>,
    query: &StatsQuery,
    options: &StatsOptions,
    budget: &StatsBudget,
) -> Result<StatsReport> {
    check_contributions(options.max_contributions)?;
    let queries = plan(query);
    if queries.is_empty() {
        return Err(DpError::invalid(
            "statistics",
            "request at least one (count, sum, mean, histogram or quantiles)",
            "none",
        ));
    }
    if values.is_empty() {
        return Err(DpError::invalid(
            "data",
            "must have at least one row",
            "an empty column",
        ));
    }
    for &q in &query.quantiles {
        check_quantile(q)?;
    }
    let needs_numbers = query.sum
        || query.mean
        || !query.quantiles.is_empty()
        || matches!(query.histogram, Some(HistogramSpec::Bins(_)));
    let numeric = match values {
        ColumnValues::Numeric(v) => {
            check_numeric(v)?;
            Some(v)
        }
        ColumnValues::Text(_) => None,
    };
    let numbers_and_domain = if needs_numbers {
        let v = numeric.ok_or(DpError::invalid(
            "column",
            "must be numeric for a sum, mean, quantile or binned histogram",
            "text",
        ))?;
        let d = options.domain.as_ref().ok_or(DpError::invalid(
            "bounds",
            "are required for a sum, mean, quantile or binned histogram",
            "none",
        ))?;
        Some((v, d))
    } else {
        None
    };
    let shares = budget.split_equal(queries.len())?;
    let c = options.max_contributions;

    let mut report = StatsReport {
        allocation: queries
            .iter()
            .cloned()
            .zip(shares.iter().copied())
            .collect(),
        count: None,
        sum: None,
        mean: None,
        histogram: None,
        quantiles: Vec::new(),
        spent: Vec::new(),
        epsilon_spent: 0.0,
    };
    let mut count_for_mean = None;
    let mut sorted: Option<Vec<i64>> = None;
    for (query_item, share) in queries.iter().zip(shares) {
        match query_item {
            Query::Count => {
                let noise = IntegerNoise::new(u64::from(c), share)?;
                let released = dp_count(rng, values.len(), c, share)?;
                count_for_mean = Some((released.value as i64, noise));
                report.spent.push(released.spent);
                if query.count {
                    report.count = Some(released);
                }
            }
            Query::Sum => {
                if let Some((v, d)) = numbers_and_domain {
                    let r = dp_sum(rng, v, d, c, share)?;
                    report.spent.push(r.spent);
                    report.sum = Some(r);
                }
            }
            Query::MeanSum => {
                if let (Some((v, d)), Some((n, noise))) = (numbers_and_domain, &count_for_mean) {
                    let r = dp_mean(rng, v, d, c, *n, noise, share)?;
                    report.spent.push(r.spent);
                    report.mean = Some(r);
                }
            }
            Query::Histogram => {
                if let Some(spec) = &query.histogram {
                    let r = dp_histogram(rng, values, spec, options.domain.as_ref(), c, share)?;
                    report.spent.push(r.spent);
                    report.histogram = Some(r);
                }
            }
            Query::Quantile(q) => {
                if let Some((v, d)) = numbers_and_domain {
                    let s = sorted.get_or_insert_with(|| {
                        let mut s: Vec<i64> = v.iter().map(|&x| d.index(x)).collect();
                        s.sort_unstable();
                        s
                    });
                    let r =
                        dp_quantile_sorted(rng, s, d, *q, options.quantile_candidates, c, share)?;
                    report.spent.push(r.spent);
                    report.quantiles.push(r);
                }
            }
        }
    }
    report.epsilon_spent = budget.epsilon_of(&report.spent)?;
    Ok(report)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    fn rng(seed: u64) -> ChaCha20Rng {
        ChaCha20Rng::seed_from_u64(seed)
    }

    #[test]
    fn domain_validation_and_grid() {
        assert!(NumericDomain::new(1.0, 1.0, None).is_err());
        assert!(NumericDomain::new(2.0, 1.0, None).is_err());
        assert!(NumericDomain::new(f64::NAN, 1.0, None).is_err());
        assert!(NumericDomain::new(0.0, f64::INFINITY, None).is_err());
        assert!(NumericDomain::new(0.0, 1.0, Some(0.0)).is_err());
        assert!(NumericDomain::new(0.0, 1.0, Some(-1.0)).is_err());
        assert!(NumericDomain::new(0.0, 1.0, Some(3.0)).is_err()); // both round to 0
        assert!(NumericDomain::new(0.0, 1e9, Some(1e-9)).is_err()); // too fine
        let d = NumericDomain::new(0.0, 100.0, None).unwrap();
        assert_eq!(d.resolution(), 2f64.powi(7 - 20));
        assert_eq!(d.effective_bounds(), (0.0, 100.0));
        assert_eq!(d.index(1e300), d.grid_bounds().1);
        assert_eq!(d.index(-5.0), 0);
        let d = NumericDomain::new(-10.0, 100.0, Some(0.5)).unwrap();
        assert_eq!(d.grid_bounds(), (-20, 200));
        assert_eq!(d.max_abs_index(), 200);
        assert_eq!(d.index(3.3), 7);
    }

    #[test]
    fn laplace_calibration_is_exact_and_safe() {
        let n = IntegerNoise::new(3, QueryBudget::Pure { epsilon: 0.5 }).unwrap();
        assert_eq!(n.scale(), 6.0);
        assert_eq!(n.spent(), QueryBudget::Pure { epsilon: 0.5 });
        // 1/3 is not a multiple of 2^-24: it is rounded down, the scale up.
        let n = IntegerNoise::new(1, QueryBudget::Pure { epsilon: 1.0 / 3.0 }).unwrap();
        let QueryBudget::Pure { epsilon } = n.spent() else {
            panic!()
        };
        assert!(epsilon <= 1.0 / 3.0 && epsilon > 1.0 / 3.0 - 1e-7);
        assert!(n.scale() >= 3.0);
        assert!(IntegerNoise::new(0, QueryBudget::Pure { epsilon: 1.0 }).is_err());
        assert!(IntegerNoise::new(1, QueryBudget::Pure { epsilon: 0.0 }).is_err());
        assert!(IntegerNoise::new(1, QueryBudget::Pure { epsilon: f64::NAN }).is_err());
        assert!(IntegerNoise::new(1, QueryBudget::Pure { epsilon: 1e-9 }).is_err());
        assert!(IntegerNoise::new(1 << 31, QueryBudget::Pure { epsilon: 0.1 }).is_err());
    }

    #[test]
    fn gaussian_calibration_rounds_sigma_up() {
        for (sens, rho) in [(1u64, 0.5), (7, 0.01), (1 << 20, 0.3), (3, 1.0 / 7.0)] {
            let n = IntegerNoise::new(sens, QueryBudget::Zcdp { rho }).unwrap();
            let want = sens as f64 / (2.0 * rho).sqrt();
            assert!(n.scale() >= want * (1.0 - 1e-12), "{sens} {rho}");
            assert!(n.scale() <= want * (1.0 + 1e-6), "{sens} {rho}");
            let QueryBudget::Zcdp { rho: spent } = n.spent() else {
                panic!()
            };
            assert!(spent <= rho && spent > rho * (1.0 - 1e-6));
        }
    }

    #[test]
    fn half_widths_match_the_distributions() {
        // Discrete Laplace with b = 2: P(|Z| > k) = 2 p^(k+1) / (1 + p), p = e^-1/2.
        let n = IntegerNoise::new(1, QueryBudget::Pure { epsilon: 0.5 }).unwrap();
        let k = n.half_width(0.95);
        let p = (-0.5f64).exp();
        let tail = |k: u64| 2.0 * p.powi(k as i32 + 1) / (1.0 + p);
        assert!(tail(k) <= 0.05 && tail(k - 1) > 0.05, "k = {k}");
        // Discrete Gaussian with a large sigma: close to 1.96 sigma.
        let g = IntegerNoise::new(100, QueryBudget::Zcdp { rho: 0.5 }).unwrap();
        let w = g.half_width(0.95) as f64;
        assert!((w / 100.0 - 1.96).abs() < 0.02, "{w}");
        assert!((normal_quantile(0.975) - 1.959_963_985).abs() < 1e-8);
    }

    #[test]
    fn budget_split_adds_up() {
        let b = StatsBudget::pure(1.0).unwrap();
        let shares = b.split_equal(3).unwrap();
        let total: f64 = shares.iter().map(|s| s.pure_epsilon()).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!(b.split_equal(0).is_err());

        let b = StatsBudget::approximate(1.0, 1e-6).unwrap();
        let rho = b.rho().unwrap();
        // The conversion is tight: rho gives epsilon 1 at delta 1e-6, a larger rho does not.
        let d = Delta::new(1e-6).unwrap();
        assert!(zcdp_epsilon(rho, d).unwrap() <= 1.0);
        assert!(zcdp_epsilon(rho * 1.001, d).unwrap() > 1.0);
        // Looser than the classic rho + 2 sqrt(rho ln(1/delta)) bound.
        let classic = rho + 2.0 * (rho * (1e6f64).ln()).sqrt();
        assert!(classic > 1.0);
        let shares = b.split_equal(4).unwrap();
        assert!(b.epsilon_of(&shares).unwrap() <= 1.0);
        assert!(b.epsilon_of(&shares).unwrap() > 0.999);
        assert!(b.epsilon_of(&[QueryBudget::Pure { epsilon: 0.1 }]).is_err());

        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(StatsBudget::pure(bad).is_err(), "{bad}");
            assert!(StatsBudget::approximate(bad, 1e-6).is_err(), "{bad}");
        }
        assert!(StatsBudget::approximate(1.0, 0.0).is_err());
        assert!(StatsBudget::approximate(1.0, 1.0).is_err());
    }

    #[test]
    fn report_spends_at_most_the_budget() {
        let values: Vec<f64> = (0..1000).map(|i| (i % 100) as f64).collect();
        let query = StatsQuery {
            count: true,
            sum: true,
            mean: true,
            histogram: Some(HistogramSpec::Bins(10)),
            quantiles: vec![0.25, 0.5, 0.75],
        };
        let options = StatsOptions {
            domain: Some(NumericDomain::new(0.0, 100.0, None).unwrap()),
            ..StatsOptions::default()
        };
        for budget in [
            StatsBudget::pure(1.0 / 3.0).unwrap(),
            StatsBudget::approximate(2.0, 1e-7).unwrap(),
        ] {
            let r = release(
                &mut rng(1),
                ColumnValues::Numeric(&values),
                &query,
                &options,
                &budget,
            )
            .unwrap();
            assert_eq!(r.allocation.len(), 7);
            assert_eq!(r.spent.len(), 7);
            assert!(r.epsilon_spent <= budget.epsilon());
            assert!(r.epsilon_spent > budget.epsilon() * 0.999);
            assert_eq!(r.quantiles.len(), 3);
            assert!(r.count.is_some() && r.sum.is_some() && r.mean.is_some());
            assert_eq!(r.histogram.unwrap().bins.len(), 10);
        }
    }

    #[test]
    fn permute_and_flip_prefers_low_scores() {
        let scores = [100, 0, 100, 100];
        let mut r = rng(5);
        let mut hits = 0;
        for _ in 0..1000 {
            if permute_and_flip(&mut r, &scores, FRAC_DEN, 1).unwrap() == 1 {
                hits += 1;
            }
        }
        // Every other candidate is accepted with probability e^-50 when visited.
        assert_eq!(hits, 1000);
        // With equal scores the choice is uniform.
        let mut counts = [0u32; 4];
        for _ in 0..4000 {
            counts[permute_and_flip(&mut r, &[7, 7, 7, 7], FRAC_DEN, 1).unwrap()] += 1;
        }
        assert!(
            counts.iter().all(|&c| (900..1100).contains(&c)),
            "{counts:?}"
        );
    }

    #[test]
    fn wide_exponent_bernoulli_is_exact_in_law() {
        // exp(-(2^64 + 2^63)/2^64) = exp(-1.5).
        let mut r = rng(11);
        let n = 20_000;
        let num = (1u128 << 64) + (1u128 << 63);
        let hits = (0..n)
            .filter(|_| bernoulli_exp_neg_wide(&mut r, num, 1 << 63).unwrap())
            .count();
        // exp(-3) under den 2^63: num / den = 3.
        let p = (-3.0f64).exp();
        let sd = (p * (1.0 - p) / n as f64).sqrt();
        assert!((hits as f64 / n as f64 - p).abs() < 5.0 * sd, "{hits}");
    }

    #[test]
    fn candidates_cover_the_bounds() {
        let d = NumericDomain::new(0.0, 10.0, Some(1.0)).unwrap();
        assert_eq!(quantile_candidates(&d, 1001), (0..=10).collect::<Vec<_>>());
        let d = NumericDomain::new(0.0, 100.0, Some(0.01)).unwrap();
        let c = quantile_candidates(&d, 11);
        assert_eq!(c, (0..=10).map(|i| i * 1000).collect::<Vec<_>>());
    }

    #[test]
    fn contribution_bounding_keeps_at_most_c_per_id() {
        let ids: Vec<u32> = (0..1000).map(|i| i % 7).collect();
        let kept = bound_contributions(&mut rng(2), &ids, 3).unwrap();
        assert_eq!(kept.len(), 21);
        let mut per = [0; 7];
        for &i in &kept {
            per[ids[i] as usize] += 1;
        }
        assert_eq!(per, [3; 7]);
        assert!(kept.windows(2).all(|w| w[0] < w[1]));
        assert!(bound_contributions(&mut rng(2), &ids, 0).is_err());
    }

    /// Clamping bounds the influence of one row exactly: with the same generator state (so the
    /// same noise), adding an arbitrarily large or small row moves the released sum by exactly the
    /// bound, and the mean by at most the bound's share.
    #[test]
    fn one_row_outside_the_bounds_moves_the_sum_by_at_most_the_bound() {
        let d = NumericDomain::new(-10.0, 50.0, Some(0.25)).unwrap();
        let base: Vec<f64> = (0..200).map(|i| (i % 37) as f64 - 5.0).collect();
        let budget = QueryBudget::Pure { epsilon: 1.0 };
        let released = |v: &[f64], seed| dp_sum(&mut rng(seed), v, &d, 1, budget).unwrap().value;
        for (outlier, moved) in [(1e15, 50.0), (-1e300, -10.0), (51.0, 50.0), (3.1, 3.0)] {
            let mut with = base.clone();
            with.push(outlier);
            for seed in 0..20 {
                let delta = released(&with, seed) - released(&base, seed);
                assert_eq!(delta, moved, "outlier {outlier}");
                assert!(delta.abs() <= d.max_abs_index() as f64 * d.resolution());
            }
        }
        // The declared sensitivity is the largest such move, times max_contributions.
        let r = dp_sum(&mut rng(0), &base, &d, 3, budget).unwrap();
        assert_eq!(r.noise.sensitivity, 150.0);
        // Released values lie on the grid: they are (integer) * resolution.
        assert_eq!((r.value / 0.25).fract(), 0.0);

        // The mean's centred sum: one row moves it by at most (upper - lower) half-grid steps.
        let count_noise = IntegerNoise::new(1, budget).unwrap();
        let mean = |v: &[f64], seed| {
            dp_mean(&mut rng(seed), v, &d, 1, 200, &count_noise, budget)
                .unwrap()
                .value
        };
        let mut with = base.clone();
        with.push(1e15);
        for seed in 0..20 {
            let moved = mean(&with, seed) - mean(&base, seed);
            // The row adds at most (50 - 20) to the centred sum, divided by the same count.
            assert!(moved > 0.0 && moved <= 30.0 / 200.0 + 1e-12, "{moved}");
        }
    }

    /// Sample variance of `(release - exact)` over many releases, against the variance computed
    /// here independently from the textbook scale `sensitivity / epsilon` (discrete Laplace) or
    /// `sensitivity / sqrt(2 rho)` (discrete Gaussian). A scale off by even 10% fails.
    #[test]
    fn noise_variance_matches_the_declared_scale() {
        let d = NumericDomain::new(0.0, 10.0, Some(1.0)).unwrap();
        let values: Vec<f64> = (0..50).map(|i| (i % 11) as f64).collect();
        let exact: f64 = values.iter().sum();
        let n = 40_000;
        let mut r = rng(21);
        for budget in [
            QueryBudget::Pure { epsilon: 2.0 },
            QueryBudget::Pure { epsilon: 0.3 },
            QueryBudget::Zcdp { rho: 0.5 },
            QueryBudget::Zcdp { rho: 0.02 },
        ] {
            let mut sum_sq = 0.0;
            let mut declared = 0.0;
            for _ in 0..n {
                let rel = dp_sum(&mut r, &values, &d, 1, budget).unwrap();
                sum_sq += (rel.value - exact).powi(2);
                declared = rel.noise.std_dev;
            }
            let var = sum_sq / n as f64;
            let want = match budget {
                QueryBudget::Pure { epsilon } => {
                    let p = (-epsilon / 10.0f64).exp();
                    2.0 * p / (1.0 - p).powi(2)
                }
                // The discrete Gaussian's variance is within 1e-8 of sigma^2 for sigma >= 1.
                QueryBudget::Zcdp { rho } => 100.0 / (2.0 * rho),
            };
            // Relative standard error of the sample variance: sqrt((kurtosis - 1) / n), at most
            // sqrt(5 / n) = 1.1%; allow 5%.
            assert!(
                (var / want - 1.0).abs() < 0.05,
                "{budget:?}: {var} vs {want}"
            );
            assert!((declared.powi(2) / want - 1.0).abs() < 1e-6, "{budget:?}");
        }
    }

    /// 95% intervals of counts cover the truth about 95% of the time (and not 99.9%).
    #[test]
    fn count_intervals_have_their_coverage() {
        let mut r = rng(8);
        let trials = 4000;
        for budget in [
            QueryBudget::Pure { epsilon: 0.5 },
            QueryBudget::Zcdp { rho: 0.1 },
        ] {
            let covered = (0..trials)
                .filter(|_| {
                    let c = dp_count(&mut r, 1234, 1, budget).unwrap();
                    c.ci95.0 <= 1234.0 && 1234.0 <= c.ci95.1
                })
                .count() as f64
                / trials as f64;
            assert!((0.94..0.975).contains(&covered), "{budget:?}: {covered}");
        }
    }

    /// On a known distribution the quantiles land within the stated accuracy: the released
    /// value's score is within `score_error_95` of the best candidate's (the stated 95% guarantee,
    /// which holds in practice far more often), and the value is near the true quantile.
    #[test]
    fn quantiles_of_a_known_distribution_are_accurate() {
        // 5000 rows: exact quantiles of the exponential distribution with mean 10.
        let n = 5000;
        let values: Vec<f64> = (0..n)
            .map(|i| -10.0 * (1.0 - (i as f64 + 0.5) / n as f64).ln())
            .collect();
        let d = NumericDomain::new(0.0, 100.0, None).unwrap();
        let mut sorted: Vec<i64> = values.iter().map(|&x| d.index(x)).collect();
        sorted.sort_unstable();
        let score = |c: f64, q: f64| {
            let k = d.index(c);
            let below = sorted.partition_point(|&x| x < k) as f64;
            let above = (n - sorted.partition_point(|&x| x <= k)) as f64;
            ((1.0 - q) * below - q * above).abs()
        };
        let mut r = rng(99);
        for q in [0.1, 0.5, 0.9] {
            let candidates = quantile_candidates(&d, DEFAULT_QUANTILE_CANDIDATES);
            let best = candidates
                .iter()
                .map(|&k| score(d.to_value(k), q))
                .fold(f64::INFINITY, f64::min);
            let truth = -10.0 * (1.0 - q).ln();
            let trials = 100;
            let mut within = 0;
            for _ in 0..trials {
                let rel = dp_quantile(
                    &mut r,
                    &values,
                    &d,
                    q,
                    DEFAULT_QUANTILE_CANDIDATES,
                    1,
                    QueryBudget::Pure { epsilon: 0.5 },
                )
                .unwrap();
                if score(rel.value, q) <= best + rel.score_error_95 {
                    within += 1;
                }
                // Within 1.5 (15 candidate steps) of the truth: a rank error of at most
                // ~0.05 n near the median.
                assert!(
                    (rel.value - truth).abs() < 1.5,
                    "q {q}: {} vs {truth}",
                    rel.value
                );
                assert_eq!(rel.candidates, 1001);
            }
            assert!(within >= 95, "q {q}: {within}");
        }
        // A wrong sign in the score would pick the bounds: check the guarantee's direction.
        let rel = dp_quantile(
            &mut r,
            &values,
            &d,
            0.5,
            101,
            1,
            QueryBudget::Pure { epsilon: 5.0 },
        )
        .unwrap();
        assert!((rel.value - 10.0 * 2f64.ln()).abs() <= 1.0, "{}", rel.value);
    }

    #[test]
    fn histograms_count_bins_and_categories() {
        let d = NumericDomain::new(0.0, 10.0, None).unwrap();
        let values = [0.0, 0.5, 1.0, 4.9, 5.0, 9.99, 10.0, 1e9, -3.0];
        let big = QueryBudget::Pure { epsilon: 1000.0 }; // noise almost surely 0
        let h = dp_histogram(
            &mut rng(1),
            ColumnValues::Numeric(&values),
            &HistogramSpec::Bins(2),
            Some(&d),
            1,
            big,
        )
        .unwrap();
        let counts: Vec<i64> = h.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![5, 4]);
        assert_eq!(h.bins[1].lower, Some(5.0));
        assert_eq!(h.bins[1].label, "[5, 10]");
        assert!(h.other.is_none());
        let text: Vec<String> = ["a", "b", "a", "zz", "a"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let h = dp_histogram(
            &mut rng(1),
            ColumnValues::Text(&text),
            &HistogramSpec::Categories(vec!["a".into(), "b".into(), "c".into()]),
            None,
            1,
            big,
        )
        .unwrap();
        let counts: Vec<i64> = h.bins.iter().map(|b| b.count).collect();
        assert_eq!(counts, vec![3, 1, 0]);
        assert_eq!(h.other, Some(1));
    }

    #[test]
    fn bad_inputs_are_typed_errors() {
        let d = NumericDomain::new(0.0, 1.0, None).unwrap();
        let b = QueryBudget::Pure { epsilon: 1.0 };
        let name = |e: DpError| match e {
            DpError::InvalidParameter { name, .. } => name,
            other => panic!("{other:?}"),
        };
        let e = dp_sum(&mut rng(1), &[0.5, f64::NAN], &d, 1, b).unwrap_err();
        assert_eq!(name(e.clone()), "value");
        assert!(e.to_string().contains("NaN in row 2"), "{e}");
        assert_eq!(
            name(dp_sum(&mut rng(1), &[], &d, 1, b).unwrap_err()),
            "data"
        );
        assert_eq!(
            name(dp_sum(&mut rng(1), &[0.5], &d, 0, b).unwrap_err()),
            "max_contributions"
        );
        assert_eq!(
            name(dp_quantile(&mut rng(1), &[0.5], &d, 1.5, 11, 1, b).unwrap_err()),
            "quantile"
        );
        assert_eq!(
            name(dp_quantile(&mut rng(1), &[0.5], &d, 0.5, 1, 1, b).unwrap_err()),
            "quantile candidates"
        );
        assert_eq!(
            name(
                dp_sum(
                    &mut rng(1),
                    &[0.5],
                    &d,
                    1,
                    QueryBudget::Pure { epsilon: -1.0 }
                )
                .unwrap_err()
            ),
            "epsilon"
        );
        let text = vec!["x".to_string()];
        let budget = StatsBudget::pure(1.0).unwrap();
        let opts = StatsOptions {
            domain: Some(d),
            ..StatsOptions::default()
        };
        let sum = StatsQuery {
            sum: true,
            ..StatsQuery::default()
        };
        let e = release(&mut rng(1), ColumnValues::Text(&text), &sum, &opts, &budget);
        assert_eq!(name(e.unwrap_err()), "column");
        let e = release(
            &mut rng(1),
            ColumnValues::Numeric(&[1.0]),
            &sum,
            &StatsOptions::default(),
            &budget,
        );
        assert_eq!(name(e.unwrap_err()), "bounds");
        let e = release(
            &mut rng(1),
            ColumnValues::Numeric(&[1.0]),
            &StatsQuery::default(),
            &opts,
            &budget,
        );
        assert_eq!(name(e.unwrap_err()), "statistics");
        let dup = StatsQuery {
            histogram: Some(HistogramSpec::Categories(vec!["x".into(), "x".into()])),
            ..StatsQuery::default()
        };
        let e = release(&mut rng(1), ColumnValues::Text(&text), &dup, &opts, &budget);
        assert_eq!(name(e.unwrap_err()), "categories");
    }
}
