//! Exact samplers of Canonne, Kamath and Steinke 2020 ("The Discrete Gaussian for Differential
//! Privacy", NeurIPS, arXiv:2004.00010), Section 5, in integer arithmetic only.
//!
//! * Algorithm 1, `Bernoulli(exp(-gamma))` for rational `gamma = n/d`: for `gamma <= 1`, draw
//!   `A_k ~ Bernoulli(gamma/k)` for `k = 1, 2, ...` until the first failure and return whether
//!   the number of successes is even (that probability is `sum_k (-gamma)^k / k! = e^-gamma`);
//!   for `gamma > 1`, `floor(gamma)` draws of `Bernoulli(e^-1)` must all succeed, then one of
//!   `Bernoulli(exp(-(gamma - floor(gamma))))`. `Bernoulli(n/(d k))` is drawn as the product of the
//!   independent `Bernoulli(n/d)` (a uniform integer below `d` compared with `n`) and
//!   `Bernoulli(1/k)`, so no product ever overflows.
//! * Algorithm 2, the discrete Laplace `Lap_Z(t/s)` with `P(x) ∝ exp(-|x| s/t)`: a geometric
//!   variable assembled from a uniform remainder `U < t` accepted with `Bernoulli(exp(-U/t))` and
//!   a count `V` of successes of `Bernoulli(e^-1)`, then `floor((U + tV)/s)` with a random sign
//!   (rejecting `-0`).
//! * Algorithm 3, the discrete Gaussian `N_Z(0, sigma^2)` with `P(x) ∝ exp(-x^2/(2 sigma^2))`:
//!   propose `Y ~ Lap_Z(t)` with `t = floor(sigma) + 1` and accept with probability
//!   `exp(-(|Y| - sigma^2/t)^2 / (2 sigma^2))`. With `sigma^2 = num/den` the exponent is the
//!   rational `(|Y| t den - num)^2 / (2 num den t^2)`, evaluated in 256-bit integers.
//!
//! Outputs are `i64`. A proposal of magnitude `2^63` or more is rejected and drawn again, so the
//! samplers are exact for the distributions conditioned on `|x| < 2^63`; for the parameter
//! ranges accepted here that conditioning changes no probability by more than `exp(-2^31)`.

use rand_core::{CryptoRng, RngCore};

use super::uniform::{U256, below_u64, below_u256};
use crate::error::{DpError, Result};

/// A positive rational `num / den` with `num, den >= 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ratio {
    num: u64,
    den: u64,
}

impl Ratio {
    /// `num / den`; both must be at least 1.
    pub fn new(num: u64, den: u64) -> Result<Self> {
        if num == 0 {
            return Err(DpError::invalid(
                "ratio numerator",
                "must be at least 1",
                num,
            ));
        }
        if den == 0 {
            return Err(DpError::invalid(
                "ratio denominator",
                "must be at least 1",
                den,
            ));
        }
        Ok(Self { num, den })
    }

    /// The numerator.
    pub fn num(self) -> u64 {
        self.num
    }

    /// The denominator.
    pub fn den(self) -> u64 {
        self.den
    }

    /// The value as a float (for reporting; never used while sampling).
    pub fn to_f64(self) -> f64 {
        self.num as f64 / self.den as f64
    }
}

/// `Bernoulli(1/2)`.
#[inline]
fn fair_coin<R: RngCore + ?Sized>(rng: &mut R) -> bool {
    rng.next_u32() & 1 == 1
}

/// `Bernoulli(exp(-1))` (Algorithm 1 with `gamma = 1`; the first trial always succeeds).
#[inline]
fn bernoulli_exp_minus_one<R: RngCore + ?Sized>(rng: &mut R) -> bool {
    let mut k: u64 = 2;
    while below_u64(rng, k) == 0 {
        k += 1;
    }
    // k - 1 successes; e^-1 is the probability that their number is even.
    k % 2 == 1
}

/// `Bernoulli(exp(-n/d))` for `n <= d`, 64-bit.
#[inline]
fn bernoulli_exp_frac_u64<R: RngCore + ?Sized>(rng: &mut R, n: u64, d: u64) -> bool {
    let mut k: u64 = 1;
    loop {
        let success = (k == 1 || below_u64(rng, k) == 0) && below_u64(rng, d) < n;
        if !success {
            break;
        }
        k += 1;
    }
    k % 2 == 1
}

/// `Bernoulli(exp(-n/d))` for `n <= d`, 256-bit.
fn bernoulli_exp_frac_u256<R: RngCore + ?Sized>(rng: &mut R, n: U256, d: U256) -> bool {
    let mut k: u64 = 1;
    loop {
        let success = (k == 1 || below_u64(rng, k) == 0) && below_u256(rng, d) < n;
        if !success {
            break;
        }
        k += 1;
    }
    k % 2 == 1
}

/// `Bernoulli(exp(-n/d))` for any `n >= 0`, `d >= 1` (Algorithm 1).
fn bernoulli_exp_u256<R: RngCore + ?Sized>(rng: &mut R, mut n: U256, d: U256) -> bool {
    while n >= d {
        if !bernoulli_exp_minus_one(rng) {
            return false;
        }
        n = n.sub(d);
    }
    match (n.to_u128(), d.to_u128()) {
        (Some(n128), Some(d128)) => match (u64::try_from(n128), u64::try_from(d128)) {
            (Ok(n64), Ok(d64)) => bernoulli_exp_frac_u64(rng, n64, d64),
            _ => bernoulli_exp_frac_u256(rng, n, d),
        },
        _ => bernoulli_exp_frac_u256(rng, n, d),
    }
}

/// An exact `Bernoulli(exp(-gamma))` draw for rational `gamma = num/den >= 0` (CKS Algorithm 1).
pub fn bernoulli_exp_neg<R: RngCore + CryptoRng + ?Sized>(
    rng: &mut R,
    num: u64,
    den: u64,
) -> Result<bool> {
    if den == 0 {
        return Err(DpError::invalid(
            "gamma denominator",
            "must be at least 1",
            den,
        ));
    }
    Ok(bernoulli_exp_u256(
        rng,
        U256::from_u128(u128::from(num)),
        U256::from_u128(u128::from(den)),
    ))
}

/// One draw of CKS Algorithm 2 with integer parameters `s, t >= 1` (scale `t/s`); `None` when
/// the proposal is rejected (a negative zero or a magnitude of `2^63` or more).
#[inline]
fn laplace_attempt<R: RngCore + ?Sized>(rng: &mut R, s: u64, t: u64) -> Option<i64> {
    let u = below_u64(rng, t);
    if !bernoulli_exp_frac_u64(rng, u, t) {
        return None;
    }
    let mut v: u64 = 0;
    while bernoulli_exp_minus_one(rng) {
        v += 1;
    }
    let x = u128::from(u) + u128::from(t) * u128::from(v);
    let y = x / u128::from(s);
    let negative = fair_coin(rng);
    if negative && y == 0 {
        return None;
    }
    let y = i64::try_from(y).ok()?;
    Some(if negative { -y } else { y })
}

/// The discrete Laplace distribution `P(x) ∝ exp(-|x| / scale)` on the integers, with a rational
/// scale (CKS Algorithm 2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscreteLaplace {
    scale: Ratio,
}

impl DiscreteLaplace {
    /// The largest scale accepted.
    pub const MAX_SCALE: u64 = 1 << 32;

    /// The discrete Laplace with scale `scale = t/s <= 2^32`.
    pub fn new(scale: Ratio) -> Result<Self> {
        if scale.num / scale.den >= Self::MAX_SCALE {
            return Err(DpError::invalid(
                "discrete Laplace scale",
                "must be below 2^32",
                scale.to_f64(),
            ));
        }
        Ok(Self { scale })
    }

    /// The scale.
    pub fn scale(&self) -> Ratio {
        self.scale
    }

    /// One exact sample.
    pub fn sample<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        loop {
            if let Some(x) = laplace_attempt(rng, self.scale.den, self.scale.num) {
                return x;
            }
        }
    }
}

/// The discrete Gaussian `P(x) ∝ exp(-x^2 / (2 sigma^2))` on the integers, with rational
/// `sigma^2 = num/den` (CKS Algorithm 3), `den <= 2^32` and `sigma < 2^32`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DiscreteGaussian {
    sigma_sq: Ratio,
    /// `floor(sigma) + 1`.
    t: u64,
    /// `t * den`.
    t_den: u128,
    /// `2 num den t^2`, the denominator of the acceptance exponent.
    accept_den: U256,
}

impl DiscreteGaussian {
    /// The largest denominator of `sigma^2` accepted.
    pub const MAX_DEN: u64 = 1 << 32;

    /// The discrete Gaussian with variance parameter `sigma_sq` (`sigma^2 = num/den`).
    pub fn new(sigma_sq: Ratio) -> Result<Self> {
        if sigma_sq.den > Self::MAX_DEN {
            return Err(DpError::invalid(
                "discrete Gaussian sigma^2 denominator",
                "must be at most 2^32",
                sigma_sq.den,
            ));
        }
        // floor(sqrt(num/den)) = isqrt(floor(num/den)).
        let floor_sigma = (sigma_sq.num / sigma_sq.den).isqrt();
        let t = floor_sigma + 1;
        if t > 1 << 32 {
            return Err(DpError::invalid(
                "discrete Gaussian sigma",
                "must be below 2^32",
                sigma_sq.to_f64().sqrt(),
            ));
        }
        let t_den = u128::from(t) * u128::from(sigma_sq.den);
        let accept_den = U256::mul(
            u128::from(sigma_sq.num) * u128::from(sigma_sq.den),
            2 * u128::from(t) * u128::from(t),
        );
        Ok(Self {
            sigma_sq,
            t,
            t_den,
            accept_den,
        })
    }

    /// The discrete Gaussian with integer `sigma` (`sigma^2 = sigma * sigma`), `1 <= sigma < 2^32`.
    pub fn with_integer_sigma(sigma: u64) -> Result<Self> {
        if sigma == 0 || sigma >= 1 << 32 {
            return Err(DpError::invalid(
                "discrete Gaussian sigma",
                "must be in [1, 2^32)",
                sigma,
            ));
        }
        Self::new(Ratio::new(sigma * sigma, 1)?)
    }

    /// `sigma^2`.
    pub fn sigma_squared(&self) -> Ratio {
        self.sigma_sq
    }

    /// One exact sample.
    pub fn sample<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R) -> i64 {
        loop {
            let Some(y) = laplace_attempt(rng, 1, self.t) else {
                continue;
            };
            // |y| t den - num, in absolute value (|y| < 2^63 and t den <= 2^64: below 2^127).
            let scaled = u128::from(y.unsigned_abs()) * self.t_den;
            let num = u128::from(self.sigma_sq.num);
            let a = scaled.abs_diff(num);
            if bernoulli_exp_u256(rng, U256::mul(a, a), self.accept_den) {
                return y;
            }
        }
    }

    /// Fills `out` with independent samples.
    pub fn fill<R: RngCore + CryptoRng + ?Sized>(&self, rng: &mut R, out: &mut [i64]) {
        for x in out {
            *x = self.sample(rng);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand_chacha::ChaCha20Rng;
    use rand_core::SeedableRng;

    #[test]
    fn parameters_are_checked() {
        assert!(Ratio::new(0, 1).is_err());
        assert!(Ratio::new(1, 0).is_err());
        assert!(DiscreteGaussian::new(Ratio::new(1, (1 << 32) + 1).unwrap()).is_err());
        assert!(DiscreteGaussian::new(Ratio::new(u64::MAX, 1).unwrap()).is_ok());
        assert!(DiscreteGaussian::with_integer_sigma(0).is_err());
        assert!(DiscreteGaussian::with_integer_sigma((1 << 32) - 1).is_ok());
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        assert!(bernoulli_exp_neg(&mut rng, 1, 0).is_err());
    }

    #[test]
    fn t_is_floor_sigma_plus_one() {
        let g = DiscreteGaussian::new(Ratio::new(9, 4).unwrap()).unwrap(); // sigma = 1.5
        assert_eq!(g.t, 2);
        let g = DiscreteGaussian::new(Ratio::new(4, 1).unwrap()).unwrap(); // sigma = 2
        assert_eq!(g.t, 3);
        let g = DiscreteGaussian::new(Ratio::new(1, 4).unwrap()).unwrap(); // sigma = 0.5
        assert_eq!(g.t, 1);
    }

    #[test]
    fn huge_sigma_samples_stay_in_range() {
        let g = DiscreteGaussian::with_integer_sigma((1 << 32) - 1).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(3);
        let sigma = ((1u64 << 32) - 1) as f64;
        let n = 2000;
        let mut sum_sq = 0.0;
        for _ in 0..n {
            let x = g.sample(&mut rng) as f64;
            sum_sq += x * x;
        }
        let sd = (sum_sq / n as f64).sqrt();
        assert!((sd / sigma - 1.0).abs() < 0.1, "sd {sd}");
    }
}
