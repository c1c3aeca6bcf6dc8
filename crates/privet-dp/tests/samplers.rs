//! Goodness of fit of the exact samplers against their target distributions.
//!
//! Every test draws from ChaCha20 with a fixed seed, so it is deterministic; the chi-square tests
//! use significance 0.001 (a correct sampler fails one of these seeds with probability 0.1%,
//! and the seeds below are fixed, so a failure means the code changed).

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;

use privet_dp::noise::{
    DiscreteGaussian, DiscreteLaplace, GriddedGaussian, Ratio, bernoulli_exp_neg, os_seeded_rng,
};
use rand_chacha::ChaCha20Rng;
use rand_core::SeedableRng;

const SIGNIFICANCE: f64 = 1e-3;

/// `ln Gamma(x)` (Lanczos, g = 7, n = 9; relative error below 1e-14 for x > 0).
fn ln_gamma(x: f64) -> f64 {
    const C: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    let x = x - 1.0;
    let mut a = C[0];
    let t = x + 7.5;
    for (i, c) in C.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// The regularised upper incomplete gamma `Q(a, x)` (series below `a + 1`, continued fraction
/// above; Numerical Recipes 6.2).
fn gamma_q(a: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 1.0;
    }
    let gln = ln_gamma(a);
    if x < a + 1.0 {
        let (mut ap, mut sum, mut del) = (a, 1.0 / a, 1.0 / a);
        for _ in 0..10_000 {
            ap += 1.0;
            del *= x / ap;
            sum += del;
            if del.abs() < sum.abs() * 1e-15 {
                break;
            }
        }
        1.0 - sum * (-x + a * x.ln() - gln).exp()
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0 - a;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..10_000 {
            let an = -(i as f64) * (i as f64 - a);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let del = d * c;
            h *= del;
            if (del - 1.0).abs() < 1e-15 {
                break;
            }
        }
        (-x + a * x.ln() - gln).exp() * h
    }
}

/// The p-value of a chi-square statistic with `dof` degrees of freedom.
fn chi_square_p(stat: f64, dof: usize) -> f64 {
    gamma_q(dof as f64 / 2.0, stat / 2.0)
}

/// Pearson's chi-square test of integer samples against the unnormalised weights `weight(x)`
/// on `lo..=hi` (mass outside is negligible for the parameters used); cells with fewer than 5
/// expected counts are merged into their neighbours. Returns the p-value.
fn chi_square_pmf(samples: &[i64], weight: impl Fn(i64) -> f64, lo: i64, hi: i64) -> f64 {
    let total: f64 = (lo..=hi).map(&weight).sum();
    let n = samples.len() as f64;
    let mut observed: BTreeMap<i64, f64> = BTreeMap::new();
    for &s in samples {
        *observed.entry(s.clamp(lo, hi)).or_default() += 1.0;
    }
    let mut stat = 0.0;
    let mut cells = 0;
    let (mut exp_acc, mut obs_acc) = (0.0, 0.0);
    for x in lo..=hi {
        exp_acc += n * weight(x) / total;
        obs_acc += observed.get(&x).copied().unwrap_or(0.0);
        if exp_acc >= 5.0 {
            stat += (obs_acc - exp_acc) * (obs_acc - exp_acc) / exp_acc;
            cells += 1;
            exp_acc = 0.0;
            obs_acc = 0.0;
        }
    }
    if exp_acc > 0.0 {
        stat += (obs_acc - exp_acc) * (obs_acc - exp_acc) / exp_acc.max(1e-300);
        cells += 1;
    }
    chi_square_p(stat, cells - 1)
}

#[test]
fn chi_square_helper_matches_tables() {
    // Critical values from standard tables: P(chi2_k > c) for (k, c).
    for (k, c, p) in [
        (1, 10.828, 0.001),
        (10, 29.588, 0.001),
        (50, 67.505, 0.05),
        (3, 0.352, 0.95),
    ] {
        let got = chi_square_p(c, k);
        assert!((got - p).abs() < 2e-3 * p.max(0.01), "k {k}: {got} vs {p}");
    }
}

/// The discrete Gaussian with `sigma^2 = num/den` must fit `exp(-x^2/(2 sigma^2))`.
fn check_discrete_gaussian(num: u64, den: u64, seed: u64, n: usize) {
    let g = DiscreteGaussian::new(Ratio::new(num, den).unwrap()).unwrap();
    let s2 = num as f64 / den as f64;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let mut samples = vec![0i64; n];
    g.fill(&mut rng, &mut samples);
    let w = |x: i64| (-(x * x) as f64 / (2.0 * s2)).exp();
    let r = (12.0 * s2.sqrt()).ceil() as i64 + 2;
    let p = chi_square_pmf(&samples, w, -r, r);
    assert!(
        p > SIGNIFICANCE,
        "sigma^2 = {num}/{den}: chi-square p = {p}"
    );

    // Mean 0 and the exact variance sum x^2 w(x) / sum w(x), within 5 standard errors.
    let total: f64 = (-r..=r).map(w).sum();
    let var: f64 = (-r..=r).map(|x| (x * x) as f64 * w(x)).sum::<f64>() / total;
    let m4: f64 = (-r..=r)
        .map(|x| ((x * x) as f64).powi(2) * w(x))
        .sum::<f64>()
        / total;
    let mean = samples.iter().map(|&x| x as f64).sum::<f64>() / n as f64;
    let sample_var = samples
        .iter()
        .map(|&x| (x as f64 - mean).powi(2))
        .sum::<f64>()
        / n as f64;
    assert!(
        mean.abs() < 5.0 * (var / n as f64).sqrt(),
        "sigma^2 {num}/{den}: mean {mean}"
    );
    let se_var = ((m4 - var * var) / n as f64).sqrt();
    assert!(
        (sample_var - var).abs() < 5.0 * se_var,
        "variance {sample_var} vs {var}"
    );
}

#[test]
fn discrete_gaussian_fits_its_pmf() {
    for (i, (num, den)) in [
        (1, 4),
        (1, 1),
        (9, 4),
        (7, 3),
        (100, 1),
        (12345, 10),
        (1, 100),
    ]
    .into_iter()
    .enumerate()
    {
        check_discrete_gaussian(num, den, 100 + i as u64, 200_000);
    }
}

/// The discrete Laplace with scale `num/den` must fit `exp(-|x| den/num)`.
fn check_discrete_laplace(num: u64, den: u64, seed: u64, n: usize) {
    let l = DiscreteLaplace::new(Ratio::new(num, den).unwrap()).unwrap();
    let scale = num as f64 / den as f64;
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let samples: Vec<i64> = (0..n).map(|_| l.sample(&mut rng)).collect();
    let w = |x: i64| (-(x.abs() as f64) / scale).exp();
    let r = (40.0 * scale).ceil() as i64 + 2;
    let p = chi_square_pmf(&samples, w, -r, r);
    assert!(p > SIGNIFICANCE, "scale {num}/{den}: chi-square p = {p}");
    // Variance of Lap_Z(b): 2 e^(-1/b) / (1 - e^(-1/b))^2.
    let e = (-1.0 / scale).exp();
    let var = 2.0 * e / (1.0 - e).powi(2);
    let sample_var = samples.iter().map(|&x| (x as f64).powi(2)).sum::<f64>() / n as f64;
    assert!(
        (sample_var / var - 1.0).abs() < 0.03,
        "scale {scale}: {sample_var} vs {var}"
    );
}

#[test]
fn discrete_laplace_fits_its_pmf() {
    for (i, (num, den)) in [(1, 2), (1, 1), (10, 3), (25, 1)].into_iter().enumerate() {
        check_discrete_laplace(num, den, 200 + i as u64, 200_000);
    }
}

#[test]
fn bernoulli_exp_has_the_right_rate() {
    let mut rng = ChaCha20Rng::seed_from_u64(300);
    let n = 200_000;
    for (num, den) in [(0, 1), (1, 3), (1, 1), (5, 2), (7, 1), (u64::MAX, u64::MAX)] {
        let p = (-(num as f64) / den as f64).exp();
        let hits = (0..n)
            .filter(|_| bernoulli_exp_neg(&mut rng, num, den).unwrap())
            .count() as f64;
        if p == 1.0 {
            assert_eq!(hits, n as f64);
            continue;
        }
        // Chi-square with one degree of freedom on (hits, misses).
        let e1 = n as f64 * p;
        let e0 = n as f64 - e1;
        let stat = (hits - e1).powi(2) / e1 + (n as f64 - hits - e0).powi(2) / e0;
        let pv = chi_square_p(stat, 1);
        assert!(
            pv > SIGNIFICANCE,
            "gamma {num}/{den}: {hits} hits, expected {e1}, p = {pv}"
        );
    }
}

#[test]
fn gridded_gaussian_has_the_requested_moments() {
    let mut rng = ChaCha20Rng::seed_from_u64(400);
    for (sigma, x) in [(1.0, 0.3_f64), (0.05, -2.0), (37.5, 1e3)] {
        let g = GriddedGaussian::new(sigma).unwrap();
        let n = 100_000;
        let mut v = vec![x; n];
        g.add_noise_f64(&mut rng, &mut v).unwrap();
        let mean = v.iter().sum::<f64>() / n as f64;
        let var = v.iter().map(|y| (y - mean).powi(2)).sum::<f64>() / n as f64;
        let se = sigma / (n as f64).sqrt();
        assert!(
            (mean - x).abs() < 5.0 * se,
            "sigma {sigma}: mean {mean} vs {x}"
        );
        let se_var = sigma * sigma * (2.0 / n as f64).sqrt();
        assert!(
            (var - sigma * sigma).abs() < 5.0 * se_var,
            "sigma {sigma}: var {var}"
        );
        // Standardised noise must look normal: chi-square on 20 equiprobable-ish bins.
        let z: Vec<i64> = v
            .iter()
            .map(|y| ((y - x) / sigma * 4.0).round() as i64)
            .collect();
        let w = |k: i64| {
            // Mass of N(0,1) in [(k - 1/2)/4, (k + 1/2)/4).
            let a = (k as f64 - 0.5) / 4.0;
            let b = (k as f64 + 0.5) / 4.0;
            normal_cdf(b) - normal_cdf(a)
        };
        let p = chi_square_pmf(&z, w, -24, 24);
        assert!(p > SIGNIFICANCE, "sigma {sigma}: chi-square p = {p}");
    }

    let g = GriddedGaussian::new(0.5).unwrap();
    let mut v = vec![0.1_f32; 50_000];
    g.add_noise_f32(&mut rng, &mut v).unwrap();
    let var = v.iter().map(|y| (f64::from(*y) - 0.1).powi(2)).sum::<f64>() / v.len() as f64;
    assert!((var / 0.25 - 1.0).abs() < 0.03, "f32 variance {var}");
}

/// `Phi(x)` via the complementary error function (Abramowitz-Stegun 7.1.26 is too coarse; use
/// the continued fraction through `gamma_q`: `erfc(t) = Q(1/2, t^2)`).
fn normal_cdf(x: f64) -> f64 {
    let t = x / std::f64::consts::SQRT_2;
    let erfc_abs = gamma_q(0.5, t * t);
    if x >= 0.0 {
        1.0 - 0.5 * erfc_abs
    } else {
        0.5 * erfc_abs
    }
}

#[test]
fn os_seeded_generator_works() {
    let mut rng = os_seeded_rng().unwrap();
    let g = DiscreteGaussian::with_integer_sigma(10).unwrap();
    let s: Vec<i64> = (0..1000).map(|_| g.sample(&mut rng)).collect();
    assert!(s.iter().any(|&x| x != s[0]));
}
