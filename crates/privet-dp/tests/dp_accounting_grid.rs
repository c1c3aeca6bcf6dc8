//! Agreement with Google's dp_accounting 0.6.0 over a grid of (q, sigma, steps, delta).
//!
//! The fixture `tests/data/dp_accounting_grid.json` is written by
//! `bench/dp/make_reference_grid.sh` (which runs `bench/dp/reference_grid.py` against
//! dp-accounting==0.6.0). privet's RDP must match to 1e-6 relative at the same orders (and
//! pick the same optimal order), and its PLD epsilon and delta(epsilon = 1) to 1%.

#![allow(clippy::unwrap_used)]

use privet_dp::pld::PldAccountant;
use privet_dp::rdp::{Conversion, FractionalSeries, RdpAccountant, single_step_rdp};
use privet_dp::{Delta, Epsilon, SampledGaussian, Sampling};
use serde::Deserialize;

#[derive(Deserialize)]
struct Grid {
    dp_accounting_version: String,
    rdp_orders: Vec<f64>,
    rdp_poisson: Vec<Curve>,
    rdp_fixed: Vec<Curve>,
    points: Vec<Point>,
}

#[derive(Deserialize)]
struct Curve {
    q: f64,
    sigma: f64,
    rdp: Vec<Option<f64>>,
}

#[derive(Deserialize)]
struct Point {
    q: f64,
    sigma: f64,
    steps: u64,
    delta: f64,
    rdp_epsilon: Option<f64>,
    rdp_order: f64,
    pld_epsilon: Option<f64>,
    pld_delta_at_epsilon_1: Option<f64>,
}

fn grid() -> Grid {
    let text = include_str!("data/dp_accounting_grid.json");
    let g: Grid = serde_json::from_str(text).unwrap();
    assert_eq!(g.dp_accounting_version, "0.6.0");
    g
}

fn rel(a: f64, b: f64) -> f64 {
    if a == b { 0.0 } else { (a - b).abs() / b.abs() }
}

/// One step's RDP curve must match dp_accounting's at every order.
fn check_curve(orders: &[f64], curve: &Curve, sampling: Sampling) -> f64 {
    let event = SampledGaussian::new(curve.q, curve.sigma, 1, sampling).unwrap();
    let ours = single_step_rdp(&event, orders, FractionalSeries::AbsoluteTerms);
    let mut worst: f64 = 0.0;
    for ((a, got), want) in orders.iter().zip(&ours).zip(&curve.rdp) {
        match want {
            Some(w) => {
                let e = rel(*got, *w);
                assert!(
                    e < 1e-6,
                    "{sampling:?} q {} sigma {} order {a}: {got} vs {w}",
                    curve.q,
                    curve.sigma
                );
                worst = worst.max(e);
            }
            None => assert!(got.is_infinite(), "order {a}: {got} should be infinite"),
        }
    }
    worst
}

#[test]
fn rdp_curves_match() {
    let g = grid();
    let mut worst: f64 = 0.0;
    for c in &g.rdp_poisson {
        worst = worst.max(check_curve(&g.rdp_orders, c, Sampling::Poisson));
    }
    for c in &g.rdp_fixed {
        worst = worst.max(check_curve(&g.rdp_orders, c, Sampling::FixedSize));
    }
    eprintln!(
        "RDP curves: max relative error {worst:.3e} over {} curves",
        g.rdp_poisson.len() + g.rdp_fixed.len()
    );
}

#[test]
fn rdp_epsilons_match() {
    let g = grid();
    let mut worst: f64 = 0.0;
    for p in &g.points {
        let mut acc = RdpAccountant::with_orders(g.rdp_orders.clone()).unwrap();
        acc.compose(&SampledGaussian::poisson(p.q, p.sigma, p.steps).unwrap())
            .unwrap();
        let got = acc.epsilon(Delta::new(p.delta).unwrap(), Conversion::Improved);
        let want = p.rdp_epsilon.unwrap();
        let e = rel(got.epsilon, want);
        assert!(
            e < 1e-6,
            "q {} sigma {} T {} delta {}: {} vs {want}",
            p.q,
            p.sigma,
            p.steps,
            p.delta,
            got.epsilon
        );
        assert_eq!(
            got.order, p.rdp_order,
            "q {} sigma {} T {}",
            p.q, p.sigma, p.steps
        );
        worst = worst.max(e);
    }
    eprintln!(
        "RDP epsilons: max relative error {worst:.3e} over {} points",
        g.points.len()
    );
}

#[test]
fn pld_epsilons_match_within_one_percent() {
    let g = grid();
    let mut worst: f64 = 0.0;
    let mut worst_delta: f64 = 0.0;
    let mut checked = 0;
    // Both deltas of a (q, sigma, steps) share one accountant.
    for pair in g.points.chunks(2) {
        let p = &pair[0];
        if p.pld_epsilon.is_none() {
            continue;
        }
        let mut acc = PldAccountant::default();
        acc.compose(&SampledGaussian::poisson(p.q, p.sigma, p.steps).unwrap())
            .unwrap();
        for p in pair {
            let want = p.pld_epsilon.unwrap();
            let got = acc.epsilon(Delta::new(p.delta).unwrap()).unwrap();
            let e = rel(got, want);
            assert!(
                e < 0.01,
                "q {} sigma {} T {} delta {}: {got} vs {want}",
                p.q,
                p.sigma,
                p.steps,
                p.delta
            );
            worst = worst.max(e);
            checked += 1;
        }
        let want = p.pld_delta_at_epsilon_1.unwrap();
        let got = acc.delta(Epsilon::new(1.0).unwrap()).unwrap();
        // Below 1e-9 both sides are at the FFT's rounding floor; dp_accounting does not clip its
        // delta to 1, privet does.
        if want > 1e-9 && want < 1.0 {
            let e = rel(got, want);
            eprintln!(
                "q {} sigma {} T {} delta(1): {got:.6e} vs {want:.6e} rel {e:.2e}",
                p.q, p.sigma, p.steps
            );
            worst_delta = worst_delta.max(e);
        }
    }
    eprintln!(
        "PLD: max relative error {worst:.3e} in epsilon over {checked} points, {worst_delta:.3e} in delta(1)"
    );
}
