//! A tight accountant for the Poisson-subsampled Gaussian mechanism built on its privacy loss
//! distribution (PLD).
//!
//! # Privacy loss distributions
//!
//! For output distributions `P` (on the data set with the record) and `Q` (without it), the
//! privacy loss of an outcome `o` is `L(o) = ln(P(o)/Q(o))` and the PLD is the law of `L(o)` for
//! `o ~ P`. The mechanism is (epsilon, delta)-DP exactly when the hockey-stick divergence
//! `delta(eps) = E_P[(1 - e^(eps - L))_+]` is at most `delta` (Sommer, Meiser and Mohammadi 2019;
//! Koskela, Jälkö and Honkela 2020). Composition of mechanisms is convolution of PLDs, so `T`
//! steps are the `T`-fold self-convolution.
//!
//! With Poisson subsampling at rate `q` and noise multiplier `sigma`, the add/remove relation
//! gives two different pairs (dp_accounting's `AdditiveNoisePrivacyLoss`), with `mu = N(0,
//! sigma^2)`:
//!
//! * remove: `P = (1-q) mu + q mu(. + 1)`, `Q = mu`; `L(x) = ln(1 - q + q e^((-1/2 - x)/sigma^2))`;
//! * add: `P = mu`, `Q = (1-q) mu + q mu(. - 1)`; `L_add(x) = -L_remove(-x)`.
//!
//! Both losses are monotone in `x`, so the hockey-stick divergence of one step is available in
//! closed form, `delta(eps) = P(X <= x_eps) - e^eps Q(X <= x_eps)` with `x_eps = L^-1(eps)`, and the
//! reported epsilon (delta) is the larger of the two relations', as dp_accounting's
//! `PLDAccountant` does.
//!
//! # Discretisation (pessimistic connect-the-dots)
//!
//! One step's PLD is discretised on the grid `k * d` (`d` = [`PldConfig::value_discretization_interval`],
//! default `1e-4`) by the pessimistic connect-the-dots algorithm of Doroshenko, Ghazi, Kamath,
//! Kumar and Manurangsi 2022 ("Connect the Dots: Tighter Discrete Approximations of Privacy Loss
//! Distributions", PETS, Algorithm 1), with the fixed-gap formulas of dp_accounting's
//! `create_pmf_pessimistic_connect_dots_fixed_gap`: with `delta_i = delta(eps_i)` on the grid
//! `eps_1 < ... < eps_n`,
//! `p_1 = 1 - delta_1 + (delta_2 - delta_1)/(e^d - 1)`,
//! `p_i = ((delta_(i+1) - delta_i) - e^d (delta_i - delta_(i-1)))/(e^d - 1)`,
//! `p_n = (delta_n - delta_(n-1))/(e^(-d) - 1)`, and mass `delta_n` at `+inf`. The grid spans the
//! losses of `x` within the `0.5 e^-50` quantiles of `mu` (log mass truncation bound -50), so the
//! result's hockey-stick divergence upper-bounds the true one at every grid point.
//!
//! # Composition
//!
//! `T` steps are composed by one FFT: the PMF is transformed, raised to the power `T` and
//! transformed back (dp_accounting's `common.self_convolve`). The output range is cut to
//! Chernoff bounds `(T ln M(t) + ln(2/tau))/t` over 40 values of `t`, where `M` is the PMF's
//! moment generating function and `tau` = [`PldConfig::tail_mass_truncation`] (default
//! `1e-15`); the cut mass `tau` is added to the mass at infinity, which keeps the result
//! pessimistic. Different events are composed by FFT linear convolution with the same tail
//! truncation (left tail folded into the first point, right tail to infinity).
//!
//! At `q = 1` the `T` steps are one Gaussian mechanism with noise multiplier `sigma / sqrt(T)`,
//! whose PLD is discretised directly, as dp_accounting does for a self-composed
//! `GaussianDpEvent`; its exact curve `delta(eps) = Phi(-eps/m + m/2) - e^eps Phi(-eps/m - m/2)`,
//! `m = sqrt(T)/sigma` (Balle and Wang 2018), is [`exact_gaussian_delta`].
//!
//! # Size
//!
//! A PMF never has more than [`PldConfig::max_points`] points (default `2^23`, about 250 MiB of
//! working memory at the peak). When a discretisation would exceed it (huge epsilons: `q = 1`
//! with thousands of steps at small `sigma`), the accountant doubles `d` until it fits and
//! reports the interval it used ([`Pld::discretization`]); the result is still an upper bound,
//! only a looser one.
//!
//! Fixed-size sampling has no PLD here (dp_accounting has none either); use the RDP accountant.

use std::sync::OnceLock;

use realfft::RealFftPlanner;
use realfft::num_complex::Complex;

use crate::error::{DpError, Result};
use crate::params::{Delta, Epsilon, SampledGaussian, Sampling};
use crate::special::{log_a_times_exp_b_plus_c, log_add, log_ndtr, ndtr, norm_ppf_from_log};

/// Discretisation and truncation settings, with dp_accounting's defaults.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PldConfig {
    /// Grid step of the privacy-loss values (default `1e-4`). Smaller is tighter and slower.
    pub value_discretization_interval: f64,
    /// Probability mass that composition may cut from the tails and move to infinity
    /// (default `1e-15`).
    pub tail_mass_truncation: f64,
    /// `ln` of the noise mass left outside the discretised range of one step (default `-50`).
    pub log_mass_truncation_bound: f64,
    /// Largest PMF (and FFT) length before the interval is coarsened (default `2^23`).
    pub max_points: usize,
}

impl Default for PldConfig {
    fn default() -> Self {
        Self {
            value_discretization_interval: 1e-4,
            tail_mass_truncation: 1e-15,
            log_mass_truncation_bound: -50.0,
            max_points: 1 << 23,
        }
    }
}

impl PldConfig {
    /// Checks every field's domain.
    pub fn validate(&self) -> Result<()> {
        let d = self.value_discretization_interval;
        if !(d > 0.0 && d.is_finite()) {
            return Err(DpError::invalid(
                "value discretization interval",
                "must be positive and finite",
                d,
            ));
        }
        let t = self.tail_mass_truncation;
        if !(0.0..1e-3).contains(&t) {
            return Err(DpError::invalid(
                "tail mass truncation",
                "must be in [0, 1e-3)",
                t,
            ));
        }
        let b = self.log_mass_truncation_bound;
        if !(-700.0..0.0).contains(&b) {
            return Err(DpError::invalid(
                "log mass truncation bound",
                "must be in [-700, 0)",
                b,
            ));
        }
        if self.max_points < 1024 {
            return Err(DpError::invalid(
                "max points",
                "must be at least 1024",
                self.max_points,
            ));
        }
        Ok(())
    }
}

/// The exact `delta(eps)` of the Gaussian mechanism with `mu = sensitivity / sigma` (for `T`
/// composed steps at `q = 1`, `mu = sqrt(T) / sigma`): `Phi(-eps/mu + mu/2) - e^eps
/// Phi(-eps/mu - mu/2)` (Balle and Wang 2018, Theorem 8).
pub fn exact_gaussian_delta(mu: f64, epsilon: f64) -> f64 {
    let a = ndtr(-epsilon / mu + mu / 2.0);
    let b = (epsilon + log_ndtr(-epsilon / mu - mu / 2.0)).exp();
    (a - b).clamp(0.0, 1.0)
}

/// The smallest epsilon with [`exact_gaussian_delta`]`(mu, eps) <= delta`, by bisection.
pub fn exact_gaussian_epsilon(mu: f64, delta: f64) -> f64 {
    if exact_gaussian_delta(mu, 0.0) <= delta {
        return 0.0;
    }
    let mut hi = 1.0;
    while exact_gaussian_delta(mu, hi) > delta {
        hi *= 2.0;
        if hi > 1e12 {
            return f64::INFINITY;
        }
    }
    let mut lo = 0.0;
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid <= lo || mid >= hi {
            break;
        }
        if exact_gaussian_delta(mu, mid) > delta {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    hi
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Adjacency {
    Add,
    Remove,
}

/// The privacy loss of one step of the subsampled Gaussian (sensitivity 1).
#[derive(Debug, Clone, Copy)]
struct GaussianLoss {
    sigma: f64,
    q: f64,
    adjacency: Adjacency,
}

fn isclose(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * a.abs().max(b.abs())
}

impl GaussianLoss {
    fn loss_without_sampling_remove(&self, x: f64) -> f64 {
        (-0.5 - x) / (self.sigma * self.sigma)
    }

    fn inverse_without_sampling_remove(&self, loss: f64) -> f64 {
        -0.5 - loss * self.sigma * self.sigma
    }

    fn loss_remove(&self, x: f64) -> f64 {
        let l = self.loss_without_sampling_remove(x);
        if self.q == 1.0 {
            l
        } else {
            log_a_times_exp_b_plus_c(self.q, l, 1.0 - self.q)
        }
    }

    fn loss(&self, x: f64) -> f64 {
        match self.adjacency {
            Adjacency::Remove => self.loss_remove(x),
            Adjacency::Add => -self.loss_remove(-x),
        }
    }

    /// The largest `x` whose loss is at least `loss`.
    fn inverse(&self, loss: f64) -> f64 {
        let q = self.q;
        match self.adjacency {
            Adjacency::Remove => {
                if q == 1.0 {
                    return self.inverse_without_sampling_remove(loss);
                }
                if isclose(loss, (1.0 - q).ln()) || loss <= (-q).ln_1p() {
                    return f64::INFINITY;
                }
                let l = log_a_times_exp_b_plus_c(1.0 / q, loss, 1.0 - 1.0 / q);
                self.inverse_without_sampling_remove(l)
            }
            Adjacency::Add => {
                if q == 1.0 {
                    return 1.0 + self.inverse_without_sampling_remove(loss);
                }
                if isclose(loss, -(1.0 - q).ln()) || loss >= -(-q).ln_1p() {
                    return f64::NEG_INFINITY;
                }
                let l = -log_a_times_exp_b_plus_c(1.0 / q, -loss, 1.0 - 1.0 / q);
                1.0 + self.inverse_without_sampling_remove(l)
            }
        }
    }

    fn upper_cdf(&self, x: f64) -> f64 {
        let s = self.sigma;
        match self.adjacency {
            Adjacency::Add => ndtr(x / s),
            Adjacency::Remove => {
                if self.q == 1.0 {
                    ndtr((x + 1.0) / s)
                } else {
                    (1.0 - self.q) * ndtr(x / s) + self.q * ndtr((x + 1.0) / s)
                }
            }
        }
    }

    fn lower_log_cdf(&self, x: f64) -> f64 {
        let s = self.sigma;
        match self.adjacency {
            Adjacency::Remove => log_ndtr(x / s),
            Adjacency::Add => {
                if self.q == 1.0 {
                    log_ndtr((x - 1.0) / s)
                } else {
                    log_add(
                        (-self.q).ln_1p() + log_ndtr(x / s),
                        self.q.ln() + log_ndtr((x - 1.0) / s),
                    )
                }
            }
        }
    }

    /// The exact hockey-stick divergence of one step at `eps`.
    fn delta_for_epsilon(&self, eps: f64) -> f64 {
        let q = self.q;
        let on_curve = q == 1.0
            || match self.adjacency {
                Adjacency::Add => eps < -(-q).ln_1p(),
                Adjacency::Remove => eps > (-q).ln_1p(),
            };
        let d = if on_curve {
            let x = self.inverse(eps);
            self.upper_cdf(x) - (eps + self.lower_log_cdf(x)).exp()
        } else {
            match self.adjacency {
                Adjacency::Add => 0.0,
                Adjacency::Remove => -eps.exp_m1(),
            }
        };
        if d.is_nan() { 1.0 } else { d.clamp(0.0, 1.0) }
    }

    /// The range of `x` kept by the tail truncation.
    fn truncation(&self, log_mass_truncation_bound: f64) -> (f64, f64) {
        let z = norm_ppf_from_log(0.5_f64.ln() + log_mass_truncation_bound);
        let mut lower = self.sigma * z;
        let mut upper = -lower;
        match self.adjacency {
            Adjacency::Add => upper += 1.0,
            Adjacency::Remove => lower -= 1.0,
        }
        (lower, upper)
    }
}

/// A discretised privacy loss distribution: mass `probs[k]` at loss `(lower_loss + k) * d`, plus
/// `infinity_mass` at `+inf`.
#[derive(Debug, Clone)]
pub struct PldPmf {
    discretization: f64,
    lower_loss: i64,
    probs: Vec<f64>,
    infinity_mass: f64,
}

/// Why building a PMF stopped.
#[derive(Debug)]
enum BuildError {
    /// It would exceed the size limit; the caller coarsens the grid.
    TooLarge,
    /// The FFT library refused its buffers (a bug, never seen).
    Fft(String),
}

/// `ifft(fft(x)^times)` for real `x` of length `n` (cyclic): the `times`-fold cyclic
/// self-convolution, by a real-to-complex transform of even length `n`.
fn cyclic_power(x: &[f64], n: usize, times: u64) -> std::result::Result<Vec<f64>, BuildError> {
    let fft_err = |e: realfft::FftError| BuildError::Fft(e.to_string());
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let mut input = forward.make_input_vec();
    input[..x.len()].copy_from_slice(x);
    let mut spectrum = forward.make_output_vec();
    forward
        .process(&mut input, &mut spectrum)
        .map_err(fft_err)?;
    for z in &mut spectrum {
        *z = complex_powu(*z, times);
    }
    real_inverse(&mut planner, n, spectrum)
}

/// The linear convolution of real `a` and `b` through transforms of even length `n`
/// (`n >= a.len() + b.len() - 1`); returns the first `a.len() + b.len() - 1` values.
fn linear_convolution(a: &[f64], b: &[f64], n: usize) -> std::result::Result<Vec<f64>, BuildError> {
    let fft_err = |e: realfft::FftError| BuildError::Fft(e.to_string());
    let mut planner = RealFftPlanner::<f64>::new();
    let forward = planner.plan_fft_forward(n);
    let mut input = forward.make_input_vec();
    input[..a.len()].copy_from_slice(a);
    let mut sa = forward.make_output_vec();
    forward.process(&mut input, &mut sa).map_err(fft_err)?;
    let mut input = forward.make_input_vec();
    input[..b.len()].copy_from_slice(b);
    let mut sb = forward.make_output_vec();
    forward.process(&mut input, &mut sb).map_err(fft_err)?;
    for (x, y) in sa.iter_mut().zip(&sb) {
        *x *= *y;
    }
    let mut out = real_inverse(&mut planner, n, sa)?;
    out.truncate((a.len() + b.len()).saturating_sub(1));
    Ok(out)
}

/// The normalised inverse of a real signal's half spectrum.
fn real_inverse(
    planner: &mut RealFftPlanner<f64>,
    n: usize,
    mut spectrum: Vec<Complex<f64>>,
) -> std::result::Result<Vec<f64>, BuildError> {
    // The first (and, for even n, last) bins of a real signal are real; rounding may leave a
    // harmless imaginary residue, which the inverse would reject.
    if let Some(z) = spectrum.first_mut() {
        z.im = 0.0;
    }
    if let Some(z) = spectrum.last_mut() {
        z.im = 0.0;
    }
    let inverse = planner.plan_fft_inverse(n);
    let mut out = inverse.make_output_vec();
    inverse
        .process(&mut spectrum, &mut out)
        .map_err(|e| BuildError::Fft(e.to_string()))?;
    let scale = 1.0 / n as f64;
    for v in &mut out {
        *v *= scale;
    }
    Ok(out)
}

impl PldPmf {
    /// The grid step.
    pub fn discretization(&self) -> f64 {
        self.discretization
    }

    /// The number of finite grid points.
    pub fn len(&self) -> usize {
        self.probs.len()
    }

    /// Whether the PMF has no finite points.
    pub fn is_empty(&self) -> bool {
        self.probs.is_empty()
    }

    /// The mass at `+inf` (a lower bound on every delta).
    pub fn infinity_mass(&self) -> f64 {
        self.infinity_mass
    }

    fn loss(&self, k: usize) -> f64 {
        (self.lower_loss + k as i64) as f64 * self.discretization
    }

    /// The hockey-stick divergence at `eps`: `inf_mass + sum_{L > eps} (1 - e^(eps - L)) p_L`.
    pub fn delta_for_epsilon(&self, eps: f64) -> f64 {
        let mut delta = self.infinity_mass;
        for (k, &p) in self.probs.iter().enumerate().rev() {
            let loss = self.loss(k);
            if loss <= eps {
                break;
            }
            delta += -(eps - loss).exp_m1() * p;
        }
        delta
    }

    /// The smallest non-negative epsilon whose divergence is at most `delta` (`+inf` if the
    /// mass at infinity exceeds `delta`); dp_accounting's `_get_epsilon_for_delta`.
    pub fn epsilon_for_delta(&self, delta: f64) -> f64 {
        if self.infinity_mass > delta {
            return f64::INFINITY;
        }
        let mut mass_upper = self.infinity_mass;
        let mut mass_lower = 0.0;
        for (k, &p) in self.probs.iter().enumerate().rev() {
            let loss = self.loss(k);
            if mass_upper > delta
                && mass_lower > 0.0
                && ((mass_upper - delta) / mass_lower).ln() >= loss
            {
                break;
            }
            mass_upper += p;
            mass_lower += (-loss).exp() * p;
            if mass_upper >= delta && mass_lower == 0.0 {
                return loss.max(0.0);
            }
        }
        if mass_upper <= mass_lower + delta {
            0.0
        } else {
            ((mass_upper - delta) / mass_lower).ln()
        }
    }

    /// One step's PMF by pessimistic connect-the-dots.
    fn connect_dots(
        loss: &GaussianLoss,
        config: &PldConfig,
        d: f64,
    ) -> std::result::Result<Self, BuildError> {
        let (lower_x, upper_x) = loss.truncation(config.log_mass_truncation_bound);
        let eps_upper = loss.loss(lower_x);
        let eps_lower = loss.loss(upper_x);
        let r_up = (eps_upper / d).ceil();
        let r_lo = (eps_lower / d).floor();
        let n = r_up - r_lo + 1.0;
        if !(n >= 1.0 && n <= config.max_points as f64) {
            return Err(BuildError::TooLarge);
        }
        let (r_lo, n) = (r_lo as i64, n as usize);
        let mut deltas: Vec<f64> = (0..n)
            .map(|i| loss.delta_for_epsilon((r_lo + i as i64) as f64 * d))
            .collect();
        if n == 1 {
            return Ok(Self {
                discretization: d,
                lower_loss: r_lo,
                probs: vec![1.0 - deltas[0]],
                infinity_mass: deltas[0],
            });
        }
        // Hockey-stick divergences are non-increasing; enforce it against rounding.
        for i in 1..n {
            deltas[i] = deltas[i].min(deltas[i - 1]);
        }
        let em1 = d.exp_m1();
        let ed = d.exp();
        let diff = |i: usize| deltas[i + 1] - deltas[i];
        let mut probs = vec![0.0; n];
        probs[0] = 1.0 - deltas[0] + diff(0) / em1;
        for (i, p) in probs.iter_mut().enumerate().take(n - 1).skip(1) {
            *p = (diff(i) - diff(i - 1) * ed) / em1;
        }
        probs[n - 1] = diff(n - 2) / (-d).exp_m1();
        for p in &mut probs {
            *p = p.max(0.0);
        }
        Ok(Self {
            discretization: d,
            lower_loss: r_lo,
            probs,
            infinity_mass: deltas[n - 1],
        })
    }

    /// Chernoff bounds on the index range of the `times`-fold self-convolution that carries all
    /// but `tail` of the mass (dp_accounting's `compute_self_convolve_bounds`).
    fn self_convolve_bounds(&self, times: u64, tail: f64) -> (f64, f64) {
        let len = self.probs.len();
        let mut upper = (len as f64 - 1.0) * times as f64;
        let mut lower = 0.0_f64;
        if tail == 0.0 {
            return (lower, upper);
        }
        // The orders are k / len with |k| <= 20, so every exponent i * order lies in (-20, 20)
        // and the moment generating function can be summed directly (no log-sum-exp needed),
        // with exp(i * order) built up by repeated multiplication.
        for k in (-20..0).chain(1..21) {
            let order = f64::from(k) / len as f64;
            let ratio = order.exp();
            let mut power = 1.0;
            let mut mgf = 0.0;
            for &p in &self.probs {
                if p > 0.0 {
                    mgf += p * power;
                }
                power *= ratio;
            }
            let log_mgf = mgf.ln();
            let bound = (times as f64 * log_mgf + (2.0 / tail).ln()) / order;
            if !bound.is_finite() {
                continue;
            }
            if order > 0.0 {
                upper = upper.min(bound.ceil());
            } else {
                lower = lower.max(bound.floor());
            }
        }
        (lower, upper)
    }

    /// The `times`-fold composition with itself by one FFT.
    fn self_compose(
        &self,
        times: u64,
        config: &PldConfig,
    ) -> std::result::Result<Self, BuildError> {
        if times == 1 {
            return Ok(self.clone());
        }
        let tail = config.tail_mass_truncation;
        let (lo, hi) = self.self_convolve_bounds(times, tail);
        let out_len_f = hi - lo + 1.0;
        if !(out_len_f >= 1.0 && out_len_f <= config.max_points as f64) {
            return Err(BuildError::TooLarge);
        }
        let out_len = out_len_f as usize;
        let lo = lo as i64;
        let n = next_fast_even_len(out_len.max(self.probs.len()));
        if n > config.max_points {
            return Err(BuildError::TooLarge);
        }
        let cyclic = cyclic_power(&self.probs, n, times)?;
        let start = lo.rem_euclid(n as i64) as usize;
        let probs: Vec<f64> = (0..out_len).map(|k| cyclic[(start + k) % n]).collect();
        let lower_loss = i64::try_from(times)
            .ok()
            .and_then(|t| self.lower_loss.checked_mul(t))
            .and_then(|l| l.checked_add(lo))
            .ok_or(BuildError::TooLarge)?;
        let infinity_mass = tail - (times as f64 * (-self.infinity_mass).ln_1p()).exp_m1();
        Ok(Self {
            discretization: self.discretization,
            lower_loss,
            probs,
            infinity_mass: infinity_mass.min(1.0),
        })
    }

    /// The composition with `other` (same grid) by FFT linear convolution, tails truncated.
    fn compose(&self, other: &Self, config: &PldConfig) -> std::result::Result<Self, BuildError> {
        if self.probs.is_empty() || other.probs.is_empty() {
            return Err(BuildError::Fft("empty PMF".into()));
        }
        let full = self.probs.len() + other.probs.len() - 1;
        let n = next_fast_even_len(full);
        if n > config.max_points {
            return Err(BuildError::TooLarge);
        }
        let probs = linear_convolution(&self.probs, &other.probs, n)?;
        let (offset, probs, right) = truncate_tails(probs, config.tail_mass_truncation);
        let (ia, ib) = (self.infinity_mass, other.infinity_mass);
        Ok(Self {
            discretization: self.discretization,
            lower_loss: self
                .lower_loss
                .checked_add(other.lower_loss)
                .and_then(|l| l.checked_add(offset as i64))
                .ok_or(BuildError::TooLarge)?,
            probs,
            infinity_mass: (ia + ib - ia * ib + right).min(1.0),
        })
    }
}

/// Cuts the longest prefix and suffix of mass at most `tail / 2` each; the prefix mass is added
/// to the first kept point and the suffix mass returned (it goes to infinity).
fn truncate_tails(probs: Vec<f64>, tail: f64) -> (usize, Vec<f64>, f64) {
    if tail == 0.0 || probs.is_empty() {
        return (0, probs, 0.0);
    }
    let prefix = |it: &mut dyn Iterator<Item = &f64>| {
        let mut s = 0.0;
        let mut count = 0;
        for v in it {
            s += v;
            if s > tail / 2.0 {
                break;
            }
            count += 1;
        }
        count
    };
    let left = prefix(&mut probs.iter());
    let right_len = prefix(&mut probs.iter().rev());
    let right = (probs.len() - right_len).max(left + 1).min(probs.len());
    let left = left.min(right - 1);
    let left_mass: f64 = probs[..left].iter().sum();
    let right_mass: f64 = probs[right..].iter().sum();
    let mut kept = probs[left..right].to_vec();
    kept[0] += left_mass;
    (left, kept, right_mass)
}

/// `z^n` by binary exponentiation.
fn complex_powu(mut z: Complex<f64>, mut n: u64) -> Complex<f64> {
    let mut acc = Complex::new(1.0, 0.0);
    while n > 0 {
        if n & 1 == 1 {
            acc *= z;
        }
        z *= z;
        n >>= 1;
    }
    acc
}

/// The smallest even 5-smooth integer at least `n` (and at least 2): real FFT lengths that
/// rustfft transforms fastest.
fn next_fast_even_len(n: usize) -> usize {
    2 * next_fast_len(n.div_ceil(2).max(1))
}

/// The smallest 5-smooth integer (factors 2, 3, 5 only) at least `n`: lengths rustfft transforms
/// fastest.
fn next_fast_len(n: usize) -> usize {
    let mut best = n.next_power_of_two();
    let mut p5 = 1usize;
    while p5 < best {
        let mut p35 = p5;
        while p35 < best {
            let mut m = p35;
            while m < n {
                m *= 2;
            }
            best = best.min(m);
            p35 *= 3;
        }
        p5 *= 5;
    }
    best
}

/// The composed PLD of an accountant: one PMF per adjacency (`add` is `None` when both are the
/// same, as at `q = 1`).
#[derive(Debug, Clone)]
pub struct Pld {
    remove: PldPmf,
    add: Option<PldPmf>,
}

impl Pld {
    /// The smallest epsilon for `delta`: the larger over the add and remove relations.
    pub fn epsilon_for_delta(&self, delta: Delta) -> f64 {
        let r = self.remove.epsilon_for_delta(delta.get());
        match &self.add {
            Some(a) => r.max(a.epsilon_for_delta(delta.get())),
            None => r,
        }
    }

    /// The delta at `epsilon`: the larger over the add and remove relations.
    pub fn delta_for_epsilon(&self, epsilon: Epsilon) -> f64 {
        let r = self.remove.delta_for_epsilon(epsilon.get());
        match &self.add {
            Some(a) => r.max(a.delta_for_epsilon(epsilon.get())),
            None => r,
        }
        .min(1.0)
    }

    /// The grid step actually used (larger than configured only if the size limit forced it).
    pub fn discretization(&self) -> f64 {
        self.remove.discretization
    }

    /// The PMF for the remove relation.
    pub fn remove_pmf(&self) -> &PldPmf {
        &self.remove
    }

    /// The PMF for the add relation (`None` when it equals the remove PMF).
    pub fn add_pmf(&self) -> Option<&PldPmf> {
        self.add.as_ref()
    }

    fn identity(d: f64) -> Self {
        Self {
            remove: PldPmf {
                discretization: d,
                lower_loss: 0,
                probs: vec![1.0],
                infinity_mass: 0.0,
            },
            add: None,
        }
    }

    fn for_event(
        event: &SampledGaussian,
        config: &PldConfig,
        d: f64,
    ) -> std::result::Result<Self, BuildError> {
        let (q, sigma, steps) = (event.q(), event.sigma(), event.steps());
        if q == 1.0 {
            let loss = GaussianLoss {
                sigma: sigma / (steps as f64).sqrt(),
                q: 1.0,
                adjacency: Adjacency::Remove,
            };
            return Ok(Self {
                remove: PldPmf::connect_dots(&loss, config, d)?,
                add: None,
            });
        }
        let one = |adjacency| -> std::result::Result<PldPmf, BuildError> {
            let loss = GaussianLoss {
                sigma,
                q,
                adjacency,
            };
            PldPmf::connect_dots(&loss, config, d)?.self_compose(steps, config)
        };
        Ok(Self {
            remove: one(Adjacency::Remove)?,
            add: Some(one(Adjacency::Add)?),
        })
    }

    fn compose(&self, other: &Self, config: &PldConfig) -> std::result::Result<Self, BuildError> {
        let remove = self.remove.compose(&other.remove, config)?;
        let add = match (&self.add, &other.add) {
            (None, None) => None,
            (a, b) => {
                let a = a.as_ref().unwrap_or(&self.remove);
                let b = b.as_ref().unwrap_or(&other.remove);
                Some(a.compose(b, config)?)
            }
        };
        Ok(Self { remove, add })
    }

    /// The PLD of all `events` composed, coarsening the grid while a PMF would be too large.
    fn build(events: &[SampledGaussian], config: &PldConfig) -> Result<Self> {
        let mut d = config.value_discretization_interval;
        for _ in 0..64 {
            match Self::try_build(events, config, d) {
                Ok(p) => return Ok(p),
                Err(BuildError::TooLarge) => d *= 2.0,
                Err(BuildError::Fft(e)) => return Err(DpError::Numerical(e)),
            }
        }
        Err(DpError::invalid(
            "PLD event",
            "no discretisation interval keeps the PLD within max_points",
            format!("{events:?}"),
        ))
    }

    fn try_build(
        events: &[SampledGaussian],
        config: &PldConfig,
        d: f64,
    ) -> std::result::Result<Self, BuildError> {
        let mut acc: Option<Self> = None;
        for e in events {
            let p = Self::for_event(e, config, d)?;
            acc = Some(match acc {
                None => p,
                Some(a) => a.compose(&p, config)?,
            });
        }
        Ok(acc.unwrap_or_else(|| Self::identity(d)))
    }
}

/// A PLD accountant for Poisson-subsampled Gaussian events (add/remove-one relation).
///
/// Events are recorded by [`PldAccountant::compose`]; the composed PLD is built on the first
/// query and cached until the next event.
///
/// ```
/// use privet_dp::{Delta, SampledGaussian};
/// use privet_dp::pld::PldAccountant;
///
/// let mut acc = PldAccountant::default();
/// acc.compose(&SampledGaussian::poisson(0.01, 1.0, 100)?)?;
/// let eps = acc.epsilon(Delta::new(1e-5)?)?;
/// assert!(eps > 0.7 && eps < 0.75);
/// # Ok::<(), privet_dp::DpError>(())
/// ```
#[derive(Debug, Clone, Default)]
pub struct PldAccountant {
    config: PldConfig,
    events: Vec<SampledGaussian>,
    cache: OnceLock<Pld>,
}

impl PldAccountant {
    /// An empty accountant with `config`.
    pub fn new(config: PldConfig) -> Result<Self> {
        config.validate()?;
        Ok(Self {
            config,
            events: Vec::new(),
            cache: OnceLock::new(),
        })
    }

    /// The settings.
    pub fn config(&self) -> &PldConfig {
        &self.config
    }

    /// Records `event` (Poisson sampling only). Consecutive events of the same mechanism are
    /// merged into one with the steps added.
    pub fn compose(&mut self, event: &SampledGaussian) -> Result<()> {
        if event.sampling() != Sampling::Poisson {
            return Err(DpError::UnsupportedByPld("fixed-size sampling"));
        }
        self.cache = OnceLock::new();
        if let Some(last) = self.events.last_mut()
            && last.same_mechanism(event)
        {
            *last = last.with_steps(last.steps().saturating_add(event.steps()))?;
            return Ok(());
        }
        self.events.push(*event);
        Ok(())
    }

    /// The recorded events.
    pub fn events(&self) -> &[SampledGaussian] {
        &self.events
    }

    /// The composed PLD (built now if not cached).
    pub fn pld(&self) -> Result<&Pld> {
        if let Some(p) = self.cache.get() {
            return Ok(p);
        }
        let built = Pld::build(&self.events, &self.config)?;
        Ok(self.cache.get_or_init(|| built))
    }

    /// The smallest epsilon for `delta`.
    pub fn epsilon(&self, delta: Delta) -> Result<f64> {
        Ok(self.pld()?.epsilon_for_delta(delta))
    }

    /// The delta at `epsilon`.
    pub fn delta(&self, epsilon: Epsilon) -> Result<f64> {
        Ok(self.pld()?.delta_for_epsilon(epsilon))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn fast_lengths_are_smooth_and_minimal() {
        for (n, want) in [
            (1, 1),
            (7, 8),
            (11, 12),
            (17, 18),
            (1001, 1024),
            (100_001, 100_000 + 352),
        ] {
            let got = next_fast_len(n);
            let mut m = got;
            for p in [2, 3, 5] {
                while m.is_multiple_of(p) {
                    m /= p;
                }
            }
            assert_eq!(m, 1, "{got} is not 5-smooth");
            assert!(got >= n);
            if n < 100_000 {
                assert_eq!(got, want, "n = {n}");
            }
        }
    }

    #[test]
    fn one_step_hockey_stick_matches_closed_form_at_full_sampling() {
        let loss = GaussianLoss {
            sigma: 1.3,
            q: 1.0,
            adjacency: Adjacency::Remove,
        };
        for eps in [0.0, 0.5, 1.0, 3.0] {
            let got = loss.delta_for_epsilon(eps);
            let want = exact_gaussian_delta(1.0 / 1.3, eps);
            assert!((got - want).abs() < 1e-14, "eps {eps}: {got} vs {want}");
        }
    }

    #[test]
    fn losses_invert() {
        for adjacency in [Adjacency::Add, Adjacency::Remove] {
            let loss = GaussianLoss {
                sigma: 0.9,
                q: 0.05,
                adjacency,
            };
            for x in [-3.0, -0.5, 0.0, 0.7, 2.0] {
                let l = loss.loss(x);
                let back = loss.inverse(l);
                assert!((back - x).abs() < 1e-8, "{adjacency:?} x {x}: {back}");
            }
        }
    }

    #[test]
    fn discretisation_is_pessimistic() {
        let loss = GaussianLoss {
            sigma: 1.0,
            q: 0.1,
            adjacency: Adjacency::Remove,
        };
        let pmf = PldPmf::connect_dots(&loss, &PldConfig::default(), 1e-3).unwrap();
        let total: f64 = pmf.probs.iter().sum::<f64>() + pmf.infinity_mass;
        assert!((total - 1.0).abs() < 1e-9, "mass {total}");
        for eps in [0.0, 0.2, 0.5, 1.0] {
            let exact = loss.delta_for_epsilon(eps);
            let disc = pmf.delta_for_epsilon(eps);
            assert!(disc >= exact - 1e-12, "eps {eps}: {disc} < {exact}");
            assert!(disc <= exact + 1e-3, "eps {eps}: {disc} vs {exact}");
        }
    }

    #[test]
    fn self_composition_matches_repeated_convolution() {
        let loss = GaussianLoss {
            sigma: 2.0,
            q: 0.2,
            adjacency: Adjacency::Add,
        };
        let config = PldConfig::default();
        let one = PldPmf::connect_dots(&loss, &config, 1e-2).unwrap();
        let fft = one.self_compose(3, &config).unwrap();
        let two = one.compose(&one, &config).unwrap();
        let three = two.compose(&one, &config).unwrap();
        for eps in [0.0, 0.3, 0.8] {
            let (a, b) = (fft.delta_for_epsilon(eps), three.delta_for_epsilon(eps));
            assert!((a - b).abs() < 1e-12, "eps {eps}: {a} vs {b}");
        }
    }

    #[test]
    fn oversized_grids_are_coarsened() {
        let config = PldConfig {
            max_points: 4096,
            ..PldConfig::default()
        };
        let mut acc = PldAccountant::new(config).unwrap();
        acc.compose(&SampledGaussian::poisson(0.1, 1.0, 100).unwrap())
            .unwrap();
        let pld = acc.pld().unwrap();
        assert!(pld.discretization() > 1e-4);
        assert!(pld.remove_pmf().len() <= 4096);
        let eps = acc.epsilon(Delta::new(1e-5).unwrap()).unwrap();
        let fine = {
            let mut a = PldAccountant::default();
            a.compose(&SampledGaussian::poisson(0.1, 1.0, 100).unwrap())
                .unwrap();
            a.epsilon(Delta::new(1e-5).unwrap()).unwrap()
        };
        assert!(eps >= fine && eps < fine * 1.2, "{eps} vs {fine}");
    }

    #[test]
    fn empty_accountant_spends_nothing() {
        let acc = PldAccountant::default();
        assert_eq!(acc.epsilon(Delta::new(1e-5).unwrap()).unwrap(), 0.0);
        assert_eq!(acc.delta(Epsilon::new(0.0).unwrap()).unwrap(), 0.0);
    }

    #[test]
    fn fixed_size_is_refused() {
        let mut acc = PldAccountant::default();
        let e = SampledGaussian::fixed_size(0.1, 1.0, 10).unwrap();
        assert!(matches!(acc.compose(&e), Err(DpError::UnsupportedByPld(_))));
    }
}
