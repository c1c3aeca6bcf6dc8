//! Accountant timings for `bench/dp/accountant_speed.sh`: for each case, the median over runs of
//! building a fresh accountant, composing `steps` steps and asking for epsilon at delta 1e-5.
//!
//! `cargo run --release -p privet-dp --example accountant_speed [runs]`
//!
//! Prints one line per (accountant, case): `privet <accountant> q=<q> sigma=<s> steps=<T>
//! epsilon=<eps> median_ms=<ms>`.

use std::time::Instant;

use privet_dp::pld::PldAccountant;
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, SampledGaussian};

/// The cases timed on both sides; keep in step with `bench/dp/accountant_speed.py`.
const CASES: [(f64, f64, u64); 3] = [
    (0.01, 1.0, 10_000),
    (0.001, 0.8, 10_000),
    (0.1, 2.0, 10_000),
];

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() -> privet_dp::Result<()> {
    let runs: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(7)
        .max(1);
    let delta = Delta::new(1e-5)?;
    for (q, sigma, steps) in CASES {
        let event = SampledGaussian::poisson(q, sigma, steps)?;
        for name in ["rdp", "pld"] {
            let mut times = Vec::with_capacity(runs);
            let mut eps = f64::NAN;
            for _ in 0..runs {
                let t = Instant::now();
                eps = if name == "rdp" {
                    let mut acc = RdpAccountant::new();
                    acc.compose(&event)?;
                    acc.epsilon(delta, Conversion::Improved).epsilon
                } else {
                    let mut acc = PldAccountant::default();
                    acc.compose(&event)?;
                    acc.epsilon(delta)?
                };
                times.push(t.elapsed().as_secs_f64() * 1e3);
            }
            println!(
                "privet {name} q={q:?} sigma={sigma:?} steps={steps} epsilon={eps:.6} median_ms={:.3}",
                median(times)
            );
        }
    }
    Ok(())
}
