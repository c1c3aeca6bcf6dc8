//! Rényi differential privacy (RDP) of the subsampled Gaussian mechanism, composed over steps,
//! and its conversion to (epsilon, delta)-DP.
//!
//! # Poisson subsampling (add/remove-one)
//!
//! One step adds `N(0, sigma^2)` noise to a query of L2 sensitivity 1 over a batch in which each
//! record takes part with probability `q`. Its RDP at order `alpha` is `ln(A_alpha) / (alpha - 1)`
//! (Mironov, Talwar and Zhang 2019, "Rényi Differential Privacy of the Sampled Gaussian
//! Mechanism", arXiv:1908.10530), where `A_alpha = E_{z ~ mu_0} [((1-q) + q mu_1(z)/mu_0(z))^alpha]`,
//! `mu_0 = N(0, sigma^2)` and `mu_1 = N(1, sigma^2)`:
//!
//! * at integer `alpha` by the exact binomial expansion (their Section 3.3)
//!   `A_alpha = sum_{i=0}^{alpha} binom(alpha, i) (1-q)^(alpha-i) q^i exp((i^2 - i) / (2 sigma^2))`;
//! * at fractional `alpha` by their two series: with `z0 = sigma^2 ln(1/q - 1) + 1/2`,
//!   `A_alpha = sum_i binom(alpha, i) [ q^i (1-q)^(alpha-i) exp((i^2-i)/(2 sigma^2)) erfc((i-z0)/(sqrt 2 sigma))/2
//!   + q^(alpha-i) (1-q)^i exp(((alpha-i)^2-(alpha-i))/(2 sigma^2)) erfc((z0-(alpha-i))/(sqrt 2 sigma))/2 ]`,
//!   summed until both terms decrease and are `e^-30` below the total.
//!
//! Everything is computed in log space with log-sum-exp, as dp_accounting's
//! `rdp_privacy_accountant` does. At fractional orders the binomial coefficients alternate in sign
//! once `i > alpha + 1`; current dp_accounting (0.4 and later, checked against 0.6.0) adds the
//! *absolute values* of the terms, an upper bound, which is [`FractionalSeries::AbsoluteTerms`] and
//! the default here. TF Privacy before its move to dp_accounting and Opacus add the signed terms
//! (stopping when both terms are below `e^-30`), [`FractionalSeries::SignedTerms`]; Opacus's
//! published test value 7.32911117143 needs it. The two differ in the fifth significant digit
//! at small fractional orders; integer orders are unaffected. At `q = 1` the RDP is
//! `alpha / (2 sigma^2)`.
//!
//! # Fixed-size sampling without replacement (replace-one)
//!
//! [`fixed_size_gaussian_rdp`] is the bound of Wang, Balle and Kasiviswanathan 2019
//! ("Subsampled Rényi Differential Privacy and Analytical Moments Accountant", AISTATS,
//! arXiv:1808.00087), Theorem 9 with the Gaussian-specific strengthening of their Theorem 27, in
//! the form dp_accounting implements for `SampledWithoutReplacementDpEvent` under the
//! `REPLACE_ONE` relation: at integer `alpha <= 256` the forward differences of
//! `exp(cgf)` are evaluated exactly in log space with signs, above 256 the cheaper bound
//! `2 exp(cgf(i-1))` replaces them, and fractional orders interpolate the CGF linearly between
//! the neighbouring integers (their Corollary 10).
//!
//! # Composition and conversion
//!
//! RDP composes additively over steps at each order. An RDP curve `(alpha, r(alpha))` gives
//! (epsilon, delta)-DP with
//!
//! * [`Conversion::Classic`] (Mironov 2017, Proposition 3): `eps = r - ln(delta) / (alpha - 1)`;
//! * [`Conversion::Improved`] (Balle et al. 2020, "Hypothesis Testing Interpretations and Rényi
//!   Differential Privacy", Proposition 12; also Asoodeh et al. 2020):
//!   `eps = r + ln(1 - 1/alpha) - (ln(delta) + ln(alpha)) / (alpha - 1)`, used by Opacus and
//!   dp_accounting, together with dp_accounting's guard that returns 0 when the KL bound
//!   `delta >= sqrt(1 - exp(-r))` already holds and skips orders `alpha <= 1.01`;
//!
//! minimised over the orders. [`delta_from_rdp`] inverts both the same way.
//!
//! # Orders
//!
//! [`default_orders`] is dp_accounting's `DEFAULT_RDP_ORDERS`: `1 + x/10` for `x = 1..=99`
//! (1.1 to 10.9), the integers 11 to 63, and 128, 256, 512, 1024 (156 orders). Opacus uses
//! [`opacus_orders`]: `1 + x/10` for `x = 1..=99` and the integers 12 to 63.

use crate::error::{DpError, Result};
use crate::params::{
    Delta, Epsilon, NoiseMultiplier, SampledGaussian, Sampling, SamplingProbability,
};
use crate::special::{log_add, log_comb, log_erfc, log_sub, log_sub_sign};

/// dp_accounting's default orders (156 of them): `1.1, 1.2, ..., 10.9, 11, ..., 63, 128, 256, 512,
/// 1024`.
pub fn default_orders() -> Vec<f64> {
    let mut v: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
    v.extend((11..64).map(f64::from));
    v.extend([128.0, 256.0, 512.0, 1024.0]);
    v
}

/// Opacus's default orders (151): `1.1, ..., 10.9, 12, ..., 63`.
pub fn opacus_orders() -> Vec<f64> {
    let mut v: Vec<f64> = (1..100).map(|x| 1.0 + f64::from(x) / 10.0).collect();
    v.extend((12..64).map(f64::from));
    v
}

/// How the series for fractional orders treats terms with negative binomial coefficients.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum FractionalSeries {
    /// Add absolute values (an upper bound; dp_accounting 0.4+). The default.
    #[default]
    AbsoluteTerms,
    /// Add signed terms (TF Privacy's original code, Opacus).
    SignedTerms,
}

/// RDP-to-DP conversion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conversion {
    /// Balle et al. 2020, Proposition 12 (tighter). The default.
    #[default]
    Improved,
    /// Mironov 2017, Proposition 3.
    Classic,
}

/// An epsilon and the order that attains it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EpsilonAtOrder {
    /// The smallest epsilon over the orders (may be `+inf` if every order is infinite).
    pub epsilon: f64,
    /// The order that attains it.
    pub order: f64,
}

/// A delta and the order that attains it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DeltaAtOrder {
    /// The smallest delta over the orders, at most 1.
    pub delta: f64,
    /// The order that attains it.
    pub order: f64,
}

const MAX_STEPS_LOG_A_FRAC: usize = 1000;

/// The largest order accepted (the integer series costs one term per unit of order).
pub const MAX_ORDER: f64 = 100_000.0;

fn is_integer(x: f64) -> bool {
    x.fract() == 0.0
}

/// `ln A_alpha` at integer `alpha`, `0 < q < 1`.
fn log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    let mut log_a = f64::NEG_INFINITY;
    let log1mq = (-q).ln_1p();
    let logq = q.ln();
    let a = alpha as f64;
    let two_s2 = 2.0 * sigma * sigma;
    for i in 0..=alpha {
        let fi = i as f64;
        let log_coef = log_comb(a, fi) + fi * logq + (a - fi) * log1mq;
        log_a = log_add(log_a, log_coef + (fi * fi - fi) / two_s2);
    }
    log_a
}

/// One step of the fractional-order series: `(log |s0|, log |s1|, sign of binom(alpha, i))`.
fn frac_terms(q: f64, sigma: f64, alpha: f64, i: usize, z0: f64) -> (f64, f64, bool) {
    let fi = i as f64;
    let log_coef = log_comb(alpha, fi);
    let j = alpha - fi;
    let (logq, log1mq) = (q.ln(), (-q).ln_1p());
    let log_t0 = log_coef + fi * logq + j * log1mq;
    let log_t1 = log_coef + j * logq + fi * log1mq;
    let s2 = std::f64::consts::SQRT_2 * sigma;
    let log_e0 = 0.5_f64.ln() + log_erfc((fi - z0) / s2);
    let log_e1 = 0.5_f64.ln() + log_erfc((z0 - j) / s2);
    let two_s2 = 2.0 * sigma * sigma;
    let log_s0 = log_t0 + (fi * fi - fi) / two_s2 + log_e0;
    let log_s1 = log_t1 + (j * j - j) / two_s2 + log_e1;
    // binom(alpha, i) = alpha (alpha - 1) ... (alpha - i + 1) / i! has one negative factor for
    // each k < i with k > alpha.
    let negatives = (fi - alpha.floor() - 1.0).max(0.0);
    let positive = negatives % 2.0 == 0.0;
    (log_s0, log_s1, positive)
}

/// `ln A_alpha` at fractional `alpha`, `0 < q < 1`; `+inf` if the series does not converge.
fn log_a_frac(q: f64, sigma: f64, alpha: f64, series: FractionalSeries) -> f64 {
    let z0 = sigma * sigma * (1.0 / q - 1.0).ln() + 0.5;
    let (mut log_a0, mut log_a1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
    match series {
        FractionalSeries::AbsoluteTerms => {
            let (mut last_s0, mut last_s1) = (f64::NEG_INFINITY, f64::NEG_INFINITY);
            for i in 0..MAX_STEPS_LOG_A_FRAC {
                let (log_s0, log_s1, _) = frac_terms(q, sigma, alpha, i, z0);
                log_a0 = log_add(log_a0, log_s0);
                log_a1 = log_add(log_a1, log_s1);
                let total = log_add(log_a0, log_a1);
                if log_s0 < last_s0 && log_s1 < last_s1 && log_s0.max(log_s1) < total - 30.0 {
                    return total;
                }
                last_s0 = log_s0;
                last_s1 = log_s1;
            }
            f64::INFINITY
        }
        FractionalSeries::SignedTerms => {
            for i in 0..MAX_STEPS_LOG_A_FRAC {
                let (log_s0, log_s1, positive) = frac_terms(q, sigma, alpha, i, z0);
                if positive {
                    log_a0 = log_add(log_a0, log_s0);
                    log_a1 = log_add(log_a1, log_s1);
                } else {
                    match (log_sub(log_a0, log_s0), log_sub(log_a1, log_s1)) {
                        (Some(a0), Some(a1)) => {
                            log_a0 = a0;
                            log_a1 = a1;
                        }
                        _ => return f64::INFINITY,
                    }
                }
                if log_s0.max(log_s1) < -30.0 {
                    return log_add(log_a0, log_a1);
                }
            }
            f64::INFINITY
        }
    }
}

/// RDP at `order` of one step of the Poisson-subsampled Gaussian mechanism (add/remove-one).
/// `order` must exceed 1; the result may be `+inf` where the fractional series fails to converge
/// (dp_accounting then drops the order, and so does the minimum in [`epsilon_from_rdp`]).
pub fn poisson_gaussian_rdp(
    q: SamplingProbability,
    sigma: NoiseMultiplier,
    order: f64,
    series: FractionalSeries,
) -> f64 {
    let (q, sigma) = (q.get(), sigma.get());
    if order.is_infinite() {
        return f64::INFINITY;
    }
    if q == 1.0 {
        return order / (2.0 * sigma * sigma);
    }
    let log_a = if is_integer(order) {
        log_a_int(q, sigma, order as u64)
    } else {
        log_a_frac(q, sigma, order, series)
    };
    log_a / (order - 1.0)
}

/// `vec[j] <- ln |vec[j+1] - vec[j]|` (with signs) for `j < n`, dp_accounting's
/// `_stable_inplace_diff_in_log`.
fn diff_in_log(vec: &mut [f64], signs: &mut [bool], n: usize) {
    for j in 0..n {
        if signs[j] == signs[j + 1] {
            let (s, v) = log_sub_sign(vec[j + 1], vec[j]);
            signs[j] = s;
            vec[j] = v;
            if !signs[j + 1] {
                signs[j] = !signs[j];
            }
        } else {
            vec[j] = log_add(vec[j], vec[j + 1]);
            signs[j] = signs[j + 1];
        }
    }
}

/// Log magnitudes of the forward differences of `exp(fun)` at 0 up to order `n + 1`
/// (Wang et al. 2019, Theorem 27; dp_accounting's `_get_forward_diffs`).
fn forward_diffs(fun: impl Fn(f64) -> f64, n: usize) -> Vec<f64> {
    let mut func_vec = vec![0.0; n + 3];
    let mut signs = vec![true; n + 3];
    for (i, f) in func_vec.iter_mut().enumerate().skip(1) {
        *f = fun((i - 1) as f64);
    }
    let mut deltas = vec![0.0; n + 2];
    for (i, d) in deltas.iter_mut().enumerate() {
        diff_in_log(&mut func_vec, &mut signs, n + 2 - i);
        *d = func_vec[0];
    }
    deltas
}

/// `ln A_alpha` of Wang et al.'s bound at integer `alpha`, fixed-size sampling.
fn wor_log_a_int(q: f64, sigma: f64, alpha: u64) -> f64 {
    const MAX_ALPHA: u64 = 256;
    if alpha <= 1 {
        return 0.0;
    }
    let s2 = sigma * sigma;
    let cgf = |x: f64| x * (x + 1.0) / (2.0 * s2);
    let func = |x: f64| x / (2.0 * s2);
    let (ln2, ln4, logq) = (2.0_f64.ln(), 4.0_f64.ln(), q.ln());
    let a = alpha as f64;
    let log_f2m1 = func(2.0) + (-(-func(2.0)).exp()).ln_1p();
    let term2 = 2.0 * logq + log_comb(a, 2.0) + (ln4 + log_f2m1).min(func(2.0) + ln2);
    let mut log_a = 0.0;
    if alpha <= MAX_ALPHA {
        let deltas = forward_diffs(cgf, alpha as usize);
        for i in 2..=alpha {
            let s = if i == 2 {
                term2
            } else {
                let lo = deltas[(2 * (i / 2) - 1) as usize];
                let hi = deltas[(2 * i.div_ceil(2) - 1) as usize];
                let fi = i as f64;
                let s = (ln4 + 0.5 * (lo + hi)).min(ln2 + cgf(fi - 1.0));
                s + fi * logq + log_comb(a, fi)
            };
            log_a = log_add(log_a, s);
        }
    } else {
        for i in 2..=alpha {
            let fi = i as f64;
            let s = if i == 2 {
                term2
            } else {
                ln2 + cgf(fi - 1.0) + fi * logq + log_comb(a, fi)
            };
            log_a = log_add(log_a, s);
        }
    }
    log_a
}

/// RDP at `order` (> 1) of one step of the Gaussian mechanism with fixed-size sampling without
/// replacement, `q = batch / n`, under the replace-one relation (Wang, Balle and Kasiviswanathan
/// 2019; see the module docs).
pub fn fixed_size_gaussian_rdp(q: SamplingProbability, sigma: NoiseMultiplier, order: f64) -> f64 {
    let (q, sigma) = (q.get(), sigma.get());
    if q == 1.0 {
        return order / (2.0 * sigma * sigma);
    }
    if order.is_infinite() {
        return f64::INFINITY;
    }
    if is_integer(order) {
        wor_log_a_int(q, sigma, order as u64) / (order - 1.0)
    } else {
        let (lo, hi) = (order.floor(), order.ceil());
        let x = wor_log_a_int(q, sigma, lo as u64);
        let y = wor_log_a_int(q, sigma, hi as u64);
        let t = order - lo;
        ((1.0 - t) * x + t * y) / (order - 1.0)
    }
}

fn check_curve(orders: &[f64], rdp: &[f64]) -> Result<()> {
    if orders.len() != rdp.len() || orders.is_empty() {
        return Err(DpError::invalid(
            "RDP curve",
            "orders and values must be non-empty and of equal length",
            format!("{} orders, {} values", orders.len(), rdp.len()),
        ));
    }
    if let Some(a) = orders.iter().find(|a| a.is_nan() || **a <= 1.0) {
        return Err(DpError::invalid("RDP order", "must exceed 1", a));
    }
    if let Some(r) = rdp.iter().find(|r| r.is_nan()) {
        return Err(DpError::invalid("RDP value", "must not be NaN", r));
    }
    Ok(())
}

fn argmin(values: &[f64]) -> usize {
    let mut best = 0;
    for (i, v) in values.iter().enumerate() {
        if *v < values[best] {
            best = i;
        }
    }
    best
}

/// The smallest epsilon for `delta` over an RDP curve (see the module docs for both conversions).
pub fn epsilon_from_rdp(
    orders: &[f64],
    rdp: &[f64],
    delta: Delta,
    conversion: Conversion,
) -> Result<EpsilonAtOrder> {
    check_curve(orders, rdp)?;
    let d = delta.get();
    let eps: Vec<f64> = orders
        .iter()
        .zip(rdp)
        .map(|(&a, &r)| match conversion {
            Conversion::Classic => {
                if r < 0.0 {
                    0.0
                } else {
                    r - d.ln() / (a - 1.0)
                }
            }
            Conversion::Improved => {
                if r < 0.0 || d * d + (-r).exp_m1() > 0.0 {
                    // KL bound: delta <= sqrt(1 - exp(-r)) already holds at epsilon 0.
                    0.0
                } else if a > 1.01 {
                    r + (-1.0 / a).ln_1p() - (d * a).ln() / (a - 1.0)
                } else {
                    f64::INFINITY
                }
            }
        })
        .collect();
    let i = argmin(&eps);
    Ok(EpsilonAtOrder {
        epsilon: eps[i].max(0.0),
        order: orders[i],
    })
}

/// The smallest delta for `epsilon` over an RDP curve.
pub fn delta_from_rdp(
    orders: &[f64],
    rdp: &[f64],
    epsilon: Epsilon,
    conversion: Conversion,
) -> Result<DeltaAtOrder> {
    check_curve(orders, rdp)?;
    let e = epsilon.get();
    let log_deltas: Vec<f64> = orders
        .iter()
        .zip(rdp)
        .map(|(&a, &r)| match conversion {
            Conversion::Classic => (a - 1.0) * (r - e),
            Conversion::Improved => {
                let mut ld = if r <= 0.0 {
                    f64::NEG_INFINITY
                } else {
                    0.5 * (-(-r).exp()).ln_1p()
                };
                if a > 1.01 {
                    ld = ld.min((a - 1.0) * (r - e + (-1.0 / a).ln_1p()) - a.ln());
                }
                ld
            }
        })
        .collect();
    let i = argmin(&log_deltas);
    Ok(DeltaAtOrder {
        delta: log_deltas[i].exp().min(1.0),
        order: orders[i],
    })
}

/// An RDP accountant: a curve of RDP values at fixed orders, summed over composed events.
///
/// ```
/// use privet_dp::{Delta, SampledGaussian};
/// use privet_dp::rdp::{Conversion, RdpAccountant};
///
/// let mut acc = RdpAccountant::new();
/// acc.compose(&SampledGaussian::poisson(0.0025, 1.3, 6000)?)?;
/// let e = acc.epsilon(Delta::new(1e-5)?, Conversion::Improved);
/// assert!((e.epsilon - 0.7242234026109595).abs() < 1e-9);
/// # Ok::<(), privet_dp::DpError>(())
/// ```
#[derive(Debug, Clone)]
pub struct RdpAccountant {
    orders: Vec<f64>,
    rdp: Vec<f64>,
    series: FractionalSeries,
    sampling: Option<Sampling>,
}

impl Default for RdpAccountant {
    fn default() -> Self {
        Self::new()
    }
}

impl RdpAccountant {
    /// An empty accountant at [`default_orders`].
    pub fn new() -> Self {
        let orders = default_orders();
        let rdp = vec![0.0; orders.len()];
        Self {
            orders,
            rdp,
            series: FractionalSeries::default(),
            sampling: None,
        }
    }

    /// An empty accountant at the given orders (each in `(1, MAX_ORDER]`).
    pub fn with_orders(orders: Vec<f64>) -> Result<Self> {
        if orders.is_empty() {
            return Err(DpError::invalid("RDP orders", "must not be empty", "[]"));
        }
        if let Some(a) = orders.iter().find(|a| !(**a > 1.0 && **a <= MAX_ORDER)) {
            return Err(DpError::invalid("RDP order", "must be in (1, 100000]", a));
        }
        let rdp = vec![0.0; orders.len()];
        Ok(Self {
            orders,
            rdp,
            series: FractionalSeries::default(),
            sampling: None,
        })
    }

    /// Uses `series` at fractional orders for events composed from now on.
    pub fn with_fractional_series(mut self, series: FractionalSeries) -> Self {
        self.series = series;
        self
    }

    /// Adds `event.steps()` steps of `event`. Refuses to mix Poisson and fixed-size events,
    /// whose analyses use different neighbouring relations.
    pub fn compose(&mut self, event: &SampledGaussian) -> Result<()> {
        if let Some(existing) = self.sampling
            && existing != event.sampling()
        {
            return Err(DpError::MixedNeighbouringRelations {
                existing: existing.name(),
                new: event.sampling().name(),
            });
        }
        let single = single_step_rdp(event, &self.orders, self.series);
        let steps = event.steps() as f64;
        for (r, s) in self.rdp.iter_mut().zip(single) {
            *r += steps * s;
        }
        self.sampling = Some(event.sampling());
        Ok(())
    }

    /// The orders.
    pub fn orders(&self) -> &[f64] {
        &self.orders
    }

    /// The composed RDP at each order.
    pub fn rdp(&self) -> &[f64] {
        &self.rdp
    }

    /// The smallest epsilon for `delta` and the order attaining it.
    pub fn epsilon(&self, delta: Delta, conversion: Conversion) -> EpsilonAtOrder {
        match epsilon_from_rdp(&self.orders, &self.rdp, delta, conversion) {
            Ok(e) => e,
            // The curve is valid by construction; an infinite epsilon is the safe answer.
            Err(_) => EpsilonAtOrder {
                epsilon: f64::INFINITY,
                order: f64::NAN,
            },
        }
    }

    /// The smallest delta for `epsilon` and the order attaining it.
    pub fn delta(&self, epsilon: Epsilon, conversion: Conversion) -> DeltaAtOrder {
        match delta_from_rdp(&self.orders, &self.rdp, epsilon, conversion) {
            Ok(d) => d,
            Err(_) => DeltaAtOrder {
                delta: 1.0,
                order: f64::NAN,
            },
        }
    }
}

/// One step's RDP of `event` at each order.
pub fn single_step_rdp(
    event: &SampledGaussian,
    orders: &[f64],
    series: FractionalSeries,
) -> Vec<f64> {
    let q = SamplingProbability::new(event.q());
    let sigma = NoiseMultiplier::new(event.sigma());
    let (Ok(q), Ok(sigma)) = (q, sigma) else {
        return vec![f64::INFINITY; orders.len()];
    };
    orders
        .iter()
        .map(|&a| match event.sampling() {
            Sampling::Poisson => poisson_gaussian_rdp(q, sigma, a, series),
            Sampling::FixedSize => fixed_size_gaussian_rdp(q, sigma, a),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn orders_match_dp_accounting_layout() {
        let o = default_orders();
        assert_eq!(o.len(), 99 + 53 + 4);
        assert_eq!(o[0], 1.1);
        assert_eq!(o[98], 10.9);
        assert_eq!(o[99], 11.0);
        assert_eq!(*o.last().unwrap(), 1024.0);
        assert_eq!(opacus_orders().len(), 99 + 52);
    }

    #[test]
    fn full_sampling_is_the_gaussian_rdp() {
        let q = SamplingProbability::new(1.0).unwrap();
        let s = NoiseMultiplier::new(2.0).unwrap();
        assert_eq!(
            poisson_gaussian_rdp(q, s, 3.0, FractionalSeries::default()),
            3.0 / 8.0
        );
        assert_eq!(fixed_size_gaussian_rdp(q, s, 3.5), 3.5 / 8.0);
    }

    #[test]
    fn integer_and_fractional_series_agree_near_integers() {
        // The fractional series at alpha = 3 + 1e-9 must approach the exact value at 3.
        let q = SamplingProbability::new(0.05).unwrap();
        let s = NoiseMultiplier::new(1.1).unwrap();
        let exact = poisson_gaussian_rdp(q, s, 3.0, FractionalSeries::default());
        for series in [
            FractionalSeries::AbsoluteTerms,
            FractionalSeries::SignedTerms,
        ] {
            let near = poisson_gaussian_rdp(q, s, 3.0 + 1e-9, series);
            assert!(
                (near - exact).abs() < 1e-6 * exact,
                "{series:?}: {near} vs {exact}"
            );
        }
    }

    #[test]
    fn conversions_are_consistent() {
        let mut acc = RdpAccountant::new();
        acc.compose(&SampledGaussian::poisson(0.01, 1.0, 1000).unwrap())
            .unwrap();
        let delta = Delta::new(1e-5).unwrap();
        let imp = acc.epsilon(delta, Conversion::Improved);
        let cls = acc.epsilon(delta, Conversion::Classic);
        assert!(imp.epsilon < cls.epsilon);
        // delta(eps(delta)) <= delta, for both conversions.
        for (c, e) in [(Conversion::Improved, imp), (Conversion::Classic, cls)] {
            let back = acc.delta(Epsilon::new(e.epsilon).unwrap(), c);
            assert!(back.delta <= 1e-5 * (1.0 + 1e-9), "{c:?}: {}", back.delta);
            assert!(back.delta > 0.9e-5, "{c:?}: {}", back.delta);
        }
    }

    #[test]
    fn mixing_relations_is_refused() {
        let mut acc = RdpAccountant::new();
        acc.compose(&SampledGaussian::poisson(0.01, 1.0, 10).unwrap())
            .unwrap();
        let err = acc
            .compose(&SampledGaussian::fixed_size(0.01, 1.0, 10).unwrap())
            .unwrap_err();
        assert!(matches!(err, DpError::MixedNeighbouringRelations { .. }));
    }

    #[test]
    fn bad_orders_are_refused() {
        assert!(RdpAccountant::with_orders(vec![]).is_err());
        assert!(RdpAccountant::with_orders(vec![1.0, 2.0]).is_err());
        assert!(RdpAccountant::with_orders(vec![f64::NAN]).is_err());
        assert!(
            epsilon_from_rdp(
                &[2.0],
                &[1.0, 2.0],
                Delta::new(0.1).unwrap(),
                Conversion::Improved
            )
            .is_err()
        );
    }
}
