//! Published values, each checked at its source:
//!
//! * TF Privacy, `compute_dp_sgd_privacy_lib_test.py` (tensorflow/privacy): `(n, batch, sigma,
//!   epochs, delta) -> (epsilon, order)`: `(60000, 150, 1.3, 15, 1e-5) -> (0.7242234026109595,
//!   19)`, `(100000, 100, 1.0, 30, 1e-7) -> (1.4154988495444845, 13)`, with `q = batch / n` and
//!   `steps = ceil(epochs * n / batch)`, orders `[1.25, 1.5, 1.75, 2, 2.25, 2.5, 3, 3.5, 4, 4.5]
//!   + 5..=63 + [128, 256, 512]`.
//! * Opacus, `opacus/tests/accountants_test.py::test_rdp_accountant`: sigma 1.5, q 0.04,
//!   `int(90 / 0.04) = 2250` steps, delta 1e-5 -> 7.32911117143 (Opacus orders, signed series).
//! * dp_accounting, `rdp_privacy_accountant_test.py::test_compute_rdp_poisson_sampled_gaussian`:
//!   sigma 2.5, q 0.01, 50 steps, RDP at orders [1.5, 2.5, 5, 50, 100] = [6.70579741e-04,
//!   1.08548710e-03, 2.18075656e-03, 2.38460375e-02, 1.67416308e+02] (the test's own tolerance is
//!   1e-4; these are the values of the current absolute-terms series).
//! * The Gaussian mechanism's exact curve (Balle and Wang 2018): `delta(eps) = Phi(-eps/mu + mu/2)
//!   - e^eps Phi(-eps/mu - mu/2)`, `mu = sqrt(T) / sigma`.

#![allow(clippy::unwrap_used)]

use privet_dp::pld::{PldAccountant, exact_gaussian_delta, exact_gaussian_epsilon};
use privet_dp::rdp::{Conversion, FractionalSeries, RdpAccountant, default_orders, opacus_orders};
use privet_dp::{Delta, Epsilon, SampledGaussian};

fn rel(a: f64, b: f64) -> f64 {
    (a - b).abs() / b.abs()
}

fn tf_privacy_orders() -> Vec<f64> {
    let mut o = vec![1.25, 1.5, 1.75, 2., 2.25, 2.5, 3., 3.5, 4., 4.5];
    o.extend((5..64).map(f64::from));
    o.extend([128.0, 256.0, 512.0]);
    o
}

/// `(n, batch, sigma, epochs, delta)` through `orders` must give `(epsilon, order)`.
fn check_tf_privacy(case: (u64, u64, f64, u64, f64), orders: Vec<f64>, want: (f64, f64)) {
    let (n, batch, sigma, epochs, delta) = case;
    let q = batch as f64 / n as f64;
    let steps = (epochs * n).div_ceil(batch);
    let mut acc = RdpAccountant::with_orders(orders).unwrap();
    acc.compose(&SampledGaussian::poisson(q, sigma, steps).unwrap())
        .unwrap();
    let got = acc.epsilon(Delta::new(delta).unwrap(), Conversion::Improved);
    assert!(
        rel(got.epsilon, want.0) < 1e-6,
        "{case:?}: {} vs {}",
        got.epsilon,
        want.0
    );
    assert_eq!(got.order, want.1, "{case:?}");
}

#[test]
fn tf_privacy_compute_dp_sgd_privacy() {
    let cases = [
        ((60000, 150, 1.3, 15, 1e-5), (0.7242234026109595, 19.0)),
        ((100000, 100, 1.0, 30, 1e-7), (1.4154988495444845, 13.0)),
    ];
    for (case, want) in cases {
        check_tf_privacy(case, tf_privacy_orders(), want);
        // dp_accounting's default grid contains both optimal orders and nothing better.
        check_tf_privacy(case, default_orders(), want);
    }
}

#[test]
fn opacus_rdp_accountant() {
    let event = SampledGaussian::poisson(0.04, 1.5, 2250).unwrap();
    let delta = Delta::new(1e-5).unwrap();
    let mut acc = RdpAccountant::with_orders(opacus_orders())
        .unwrap()
        .with_fractional_series(FractionalSeries::SignedTerms);
    acc.compose(&event).unwrap();
    let got = acc.epsilon(delta, Conversion::Improved);
    assert!(rel(got.epsilon, 7.32911117143) < 1e-6, "{}", got.epsilon);

    // The optimum is at the fractional order 3.9, where dp_accounting's absolute-terms series
    // gives a slightly larger (still valid) bound.
    let mut abs = RdpAccountant::with_orders(opacus_orders()).unwrap();
    abs.compose(&event).unwrap();
    let upper = abs.epsilon(delta, Conversion::Improved);
    assert_eq!(upper.order, 3.9);
    assert!(upper.epsilon > got.epsilon && rel(upper.epsilon, got.epsilon) < 1e-4);
}

#[test]
fn dp_accounting_rdp_at_orders() {
    let orders = vec![1.5, 2.5, 5.0, 50.0, 100.0];
    let want = [
        6.70579741e-04,
        1.08548710e-03,
        2.18075656e-03,
        2.38460375e-02,
        1.67416308e+02,
    ];
    let mut acc = RdpAccountant::with_orders(orders).unwrap();
    acc.compose(&SampledGaussian::poisson(0.01, 2.5, 50).unwrap())
        .unwrap();
    for (got, want) in acc.rdp().iter().zip(want) {
        // The published values have nine significant digits.
        assert!(rel(*got, want) < 1e-6, "{got} vs {want}");
    }
}

#[test]
fn classic_conversion_is_mironovs_bound() {
    let mut acc = RdpAccountant::new();
    acc.compose(&SampledGaussian::poisson(0.04, 1.5, 2250).unwrap())
        .unwrap();
    let delta = 1e-5_f64;
    let got = acc.epsilon(Delta::new(delta).unwrap(), Conversion::Classic);
    let manual = acc
        .orders()
        .iter()
        .zip(acc.rdp())
        .map(|(a, r)| r - delta.ln() / (a - 1.0))
        .fold(f64::INFINITY, f64::min);
    assert_eq!(got.epsilon, manual);
    let improved = acc.epsilon(Delta::new(delta).unwrap(), Conversion::Improved);
    assert!(improved.epsilon < got.epsilon);
}

/// At `q = 1` the PLD accountant must reproduce the exact Gaussian curve.
fn check_exact_gaussian(sigma: f64, steps: u64) {
    let mu = (steps as f64).sqrt() / sigma;
    let mut acc = PldAccountant::default();
    acc.compose(&SampledGaussian::poisson(1.0, sigma, steps).unwrap())
        .unwrap();
    for eps in [0.1, 0.5, 1.0, 2.0, 4.0] {
        let exact = exact_gaussian_delta(mu, eps);
        if exact < 1e-12 {
            continue;
        }
        let got = acc.delta(Epsilon::new(eps).unwrap()).unwrap();
        // Pessimistic: never below the exact value, and within 0.1%.
        assert!(
            got >= exact * (1.0 - 1e-12),
            "sigma {sigma} T {steps} eps {eps}"
        );
        assert!(
            rel(got, exact) < 1e-3,
            "sigma {sigma} T {steps} eps {eps}: {got} vs {exact}"
        );
    }
    for delta in [1e-5, 1e-7] {
        let exact = exact_gaussian_epsilon(mu, delta);
        let got = acc.epsilon(Delta::new(delta).unwrap()).unwrap();
        assert!(
            got >= exact - 1e-12,
            "sigma {sigma} T {steps} delta {delta}"
        );
        assert!(
            got - exact < 2e-4 + 1e-4 * exact,
            "sigma {sigma} T {steps}: {got} vs {exact}"
        );
    }
}

#[test]
fn pld_matches_the_exact_gaussian_at_full_sampling() {
    for (sigma, steps) in [(1.0, 1), (2.0, 10), (5.0, 100), (10.0, 30), (0.8, 1)] {
        check_exact_gaussian(sigma, steps);
    }
}

#[test]
fn exact_gaussian_formula_matches_mpmath() {
    // mpmath at 30 digits: mu = 1, eps = 1: Phi(-1/2) - e Phi(-3/2).
    let want = 0.126_936_737_506_643_95;
    assert!(rel(exact_gaussian_delta(1.0, 1.0), want) < 1e-13);
    let eps = exact_gaussian_epsilon(1.0, want);
    assert!((eps - 1.0).abs() < 1e-9, "{eps}");
}
