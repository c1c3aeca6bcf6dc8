//! Special functions in log space: log-sum-exp, the log binomial coefficient, the standard
//! normal CDF and its logarithm accurate far into the tails, and the normal quantile.
//!
//! `erf`, `erfc` and `lgamma` come from `libm` (a port of musl/FreeBSD msun, accurate to about
//! one ulp). The structure of [`log_ndtr`] follows SciPy's `special.log_ndtr` (direct logarithm
//! in the bulk, `log1p` in the upper tail, the asymptotic series below -20), so the accountants
//! see the same values as dp_accounting, which calls SciPy.

use std::f64::consts::{FRAC_1_SQRT_2, LN_2, PI};

/// `ln(exp(a) + exp(b))` without overflow; `-inf` is the log of zero.
pub(crate) fn log_add(a: f64, b: f64) -> f64 {
    let (lo, hi) = if a < b { (a, b) } else { (b, a) };
    if lo == f64::NEG_INFINITY {
        return hi;
    }
    (lo - hi).exp().ln_1p() + hi
}

/// `ln(exp(a) - exp(b))` and its sign (`true` for non-negative), as dp_accounting's
/// `_log_sub_sign`.
pub(crate) fn log_sub_sign(a: f64, b: f64) -> (bool, f64) {
    if a > b {
        (true, a + (-(b - a).exp()).ln_1p())
    } else if a < b {
        (false, b + (-(a - b).exp()).ln_1p())
    } else {
        (true, f64::NEG_INFINITY)
    }
}

/// `ln(exp(a) - exp(b))` for `a >= b`; `None` if the difference would be negative (the
/// TF Privacy / Opacus `_log_sub`).
pub(crate) fn log_sub(a: f64, b: f64) -> Option<f64> {
    if a < b {
        return None;
    }
    if b == f64::NEG_INFINITY {
        return Some(a);
    }
    if a == b {
        return Some(f64::NEG_INFINITY);
    }
    let d = (a - b).exp_m1();
    if d.is_finite() {
        Some(d.ln() + b)
    } else {
        Some(a)
    }
}

/// `ln |Gamma(x)|`.
pub(crate) fn ln_gamma(x: f64) -> f64 {
    libm::lgamma_r(x).0
}

/// `ln |binom(n, k)|` through the gamma function, for real `n` (dp_accounting's `_log_comb`).
pub(crate) fn log_comb(n: f64, k: f64) -> f64 {
    ln_gamma(n + 1.0) - ln_gamma(k + 1.0) - ln_gamma(n - k + 1.0)
}

/// The standard normal CDF `Phi(x)`, computed as SciPy's `ndtr`.
pub(crate) fn ndtr(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    let x = a * FRAC_1_SQRT_2;
    let z = x.abs();
    if z < FRAC_1_SQRT_2 {
        0.5 + 0.5 * libm::erf(x)
    } else {
        let y = 0.5 * libm::erfc(z);
        if x > 0.0 { 1.0 - y } else { y }
    }
}

/// `ln Phi(x)`, accurate in both tails.
pub(crate) fn log_ndtr(a: f64) -> f64 {
    if a.is_nan() {
        return f64::NAN;
    }
    if a == f64::INFINITY {
        return 0.0;
    }
    if a > 6.0 {
        // Phi(a) = 1 - Phi(-a) with Phi(-a) < 1e-9.
        return (-ndtr(-a)).ln_1p();
    }
    if a > -20.0 {
        return ndtr(a).ln();
    }
    if a == f64::NEG_INFINITY {
        return f64::NEG_INFINITY;
    }
    // ln Phi(a) = -a^2/2 - ln(-a) - ln(2 pi)/2 + ln(1 + sum_k (-1)^k (2k-1)!! / a^(2k)).
    let a2 = a * a;
    let mut term = 1.0;
    let mut sum = 1.0;
    for k in 1..=16 {
        term *= -((2 * k - 1) as f64) / a2;
        sum += term;
    }
    -0.5 * a2 - (-a).ln() - 0.5 * (2.0 * PI).ln() + sum.ln()
}

/// `ln erfc(x)` accurate for large `x` (dp_accounting's `_log_erfc`).
pub(crate) fn log_erfc(x: f64) -> f64 {
    LN_2 + log_ndtr(-x * std::f64::consts::SQRT_2)
}

/// The standard normal quantile at a probability given by its logarithm, by bisection on
/// [`log_ndtr`] (used once per PLD for the tail truncation point, so speed does not matter).
pub(crate) fn norm_ppf_from_log(log_p: f64) -> f64 {
    let (mut lo, mut hi) = (-40.0_f64, 40.0_f64);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if mid == lo || mid == hi {
            break;
        }
        if log_ndtr(mid) < log_p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// `ln(a exp(b) + c)`, as dp_accounting's `common.log_a_times_exp_b_plus_c`. Returns NaN where
/// the argument of the logarithm is negative.
pub(crate) fn log_a_times_exp_b_plus_c(a: f64, b: f64, c: f64) -> f64 {
    if a == 0.0 {
        return c.ln();
    }
    if a < 0.0 {
        if c <= 0.0 {
            return f64::NAN;
        }
        return log_sub_strict(c.ln(), (-a).ln() + b);
    }
    if b == 0.0 {
        return (a + c).ln();
    }
    let d = b + a.ln();
    if c == 0.0 {
        d
    } else if c < 0.0 {
        log_sub_strict(d, (-c).ln())
    } else {
        log_add(d, c.ln())
    }
}

/// `ln(exp(a) - exp(b))`, NaN unless `a > b`.
fn log_sub_strict(a: f64, b: f64) -> f64 {
    if b >= a {
        return f64::NAN;
    }
    a + (-(b - a).exp()).ln_1p()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn normal_cdf_matches_known_values() {
        // Reference values from mpmath at 30 digits.
        let cases = [
            (0.0, 0.5_f64.ln()),
            (-1.0, -1.841_021_645_009_263_5),
            (-10.0, -53.231_285_150_512_47),
            (-19.9, -201.917_167_707_332_6),
            (-20.1, -205.927_118_401_948_25),
            (-40.0, -804.608_442_013_753_8),
            (7.0, -1.279_812_543_886_654e-12),
        ];
        for (x, want) in cases {
            let got = log_ndtr(x);
            assert!(
                close(got, want, 1e-13),
                "log_ndtr({x}) = {got}, want {want}"
            );
        }
        assert!(close(ndtr(1.0), 0.841_344_746_068_542_9, 1e-15));
    }

    #[test]
    fn quantile_inverts_cdf() {
        let lp = 0.5_f64.ln() - 50.0;
        let z = norm_ppf_from_log(lp);
        assert!(close(log_ndtr(z), lp, 1e-13));
        // SciPy: norm.ppf(0.5 * exp(-50)) = -9.745474864965935.
        assert!((z - -9.745_474_864_965_935).abs() < 1e-12, "{z}");
    }

    #[test]
    fn log_space_arithmetic() {
        assert!(close(
            log_add(2.0_f64.ln(), 3.0_f64.ln()),
            5.0_f64.ln(),
            1e-15
        ));
        assert_eq!(log_add(f64::NEG_INFINITY, 1.0), 1.0);
        let (s, m) = log_sub_sign(2.0_f64.ln(), 3.0_f64.ln());
        assert!(!s && m.abs() < 1e-15, "{s} {m}");
        assert_eq!(log_sub(1.0, 2.0), None);
        assert!(close(log_comb(10.0, 3.0), 120.0_f64.ln(), 1e-14));
        assert!(close(
            log_a_times_exp_b_plus_c(0.5, 1.0, 0.5),
            (0.5 * 1f64.exp() + 0.5).ln(),
            1e-15
        ));
        assert!(close(
            log_a_times_exp_b_plus_c(2.0, 1.0, -1.0),
            (2.0 * 1f64.exp() - 1.0).ln(),
            1e-15
        ));
    }
}
