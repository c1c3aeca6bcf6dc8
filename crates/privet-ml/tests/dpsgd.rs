//! DP-SGD: ghost norms against per-example autograd, the clipped sum, the noise's scale, the
//! accounting, and configuration errors.
#![allow(clippy::unwrap_used)]

use privet_data::Matrix;
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, SampledGaussian};
use privet_ml::{
    Activation, DpSchedule, DpSgdConfig, MlError, ModelSpec, Network, NoiseSampler,
    OptimizerConfig, calibrate_noise, privacy_spent,
};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// `n` rows of `d` features with labels from a noisy linear rule over `k` classes.
fn data(n: usize, d: usize, k: usize, seed: u64) -> (Matrix, Vec<u32>) {
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let centres: Vec<f32> = (0..k * d).map(|_| rng.random_range(-2.0..2.0)).collect();
    let mut xs = Vec::with_capacity(n * d);
    let mut ys = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % k;
        for j in 0..d {
            xs.push(centres[c * d + j] + rng.random_range(-1.5f32..1.5));
        }
        ys.push(c as u32);
    }
    (Matrix::new(n, d, xs).unwrap(), ys)
}

fn norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

fn models() -> Vec<(ModelSpec, usize)> {
    vec![
        (ModelSpec::Logreg, 2),
        (ModelSpec::Logreg, 4),
        (
            ModelSpec::Mlp {
                hidden: vec![16],
                activation: Activation::Relu,
            },
            2,
        ),
        (
            ModelSpec::Mlp {
                hidden: vec![12, 7],
                activation: Activation::Relu,
            },
            3,
        ),
    ]
}

#[test]
fn ghost_norms_and_clipped_sum_match_per_example_autograd() {
    for (spec, k) in models() {
        let (x, y) = data(40, 9, k, 1);
        let net = Network::new(spec.clone(), 9, k).unwrap();
        // Trained a little so the gradients are not all alike.
        let mut params = net.init(3);
        for (i, p) in params.iter_mut().enumerate() {
            *p += 0.05 * ((i * 7919 % 13) as f32 - 6.0) / 6.0;
        }
        let rows: Vec<u32> = (0..40).collect();
        // C = the median norm clips about half the rows.
        let (mut sorted, _) = net.clipped_grad_sum(&params, &x, &y, &rows, 1e9).unwrap();
        sorted.sort_by(f32::total_cmp);
        let clip = sorted[20];
        let (norms, sum) = net.clipped_grad_sum(&params, &x, &y, &rows, clip).unwrap();
        assert_eq!(norms.len(), rows.len());
        let mut explicit = vec![0f64; params.len()];
        let (mut clipped, mut unclipped) = (0, 0);
        for (&r, &ghost) in rows.iter().zip(&norms) {
            // One backward pass per example: the reference, in this test only.
            let (_, g) = net.loss_and_grad_autograd(&params, &x, &y, &[r]).unwrap();
            let reference = norm(&g);
            let rel = (f64::from(ghost) - reference).abs() / reference.max(1e-12);
            assert!(
                rel < 1e-4,
                "{spec:?}: row {r}: ghost norm {ghost}, autograd {reference}"
            );
            let c = (f64::from(clip) / (reference + 1e-6)).min(1.0);
            if c < 1.0 {
                clipped += 1;
            } else {
                unclipped += 1;
            }
            for (e, gi) in explicit.iter_mut().zip(&g) {
                *e += c * f64::from(*gi);
            }
        }
        assert!(
            clipped > 0 && unclipped > 0,
            "{spec:?}: the test should clip some rows and not others ({clipped}/{unclipped})"
        );
        let scale = explicit.iter().fold(1f64, |m, v| m.max(v.abs()));
        for (i, (a, b)) in sum.iter().zip(&explicit).enumerate() {
            assert!(
                (f64::from(*a) - b).abs() < 1e-4 * scale,
                "{spec:?}: coordinate {i}: ghost {a}, explicit {b}"
            );
        }
    }
}

#[test]
fn noise_has_standard_deviation_sigma_times_clip() {
    for sampler in [NoiseSampler::Snapped, NoiseSampler::Exact] {
        noise_scale(sampler);
    }
}

fn noise_scale(sampler: NoiseSampler) {
    // One step of plain SGD with lr 1 on a lot that is every row (lot size >= N, so q = 1):
    // w1 = w0 - (clipped sum + noise) / N, so the noise is recoverable exactly.
    let (x, y) = data(20, 30, 3, 2);
    let net = Network::new(
        ModelSpec::Mlp {
            hidden: vec![64],
            activation: Activation::Relu,
        },
        30,
        3,
    )
    .unwrap();
    let w0 = net.init(1);
    let rows: Vec<u32> = (0..20).collect();
    let (sigma, clip) = (1.7f64, 2.5f32);
    let cfg = DpSgdConfig {
        epochs: 1,
        lot_size: 20,
        clip_norm: clip,
        noise_multiplier: sigma,
        optimizer: OptimizerConfig::sgd(1.0),
        noise: sampler,
    };
    let (_, sum) = net.clipped_grad_sum(&w0, &x, &y, &rows, clip).unwrap();
    let mut rng = ChaCha20Rng::seed_from_u64(11);
    let (w1, stats) = net
        .train_dp(&w0, &x, &y, &rows, &cfg, &mut rng, &mut |_, _, _| Ok(()))
        .unwrap();
    assert_eq!(stats.train.steps, 1);
    assert_eq!(stats.schedule.sampling_probability, 1.0);
    let noise: Vec<f64> = w0
        .iter()
        .zip(&w1)
        .zip(&sum)
        .map(|((a, b), s)| f64::from(a - b) * 20.0 - f64::from(*s))
        .collect();
    let n = noise.len() as f64; // 30*64 + 64 + 64*3 + 3 = 2179
    let mean = noise.iter().sum::<f64>() / n;
    let sd = (noise.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1.0)).sqrt();
    let want = sigma * f64::from(clip);
    // The sample sd of 2179 normals is within 3% of the truth with probability > 0.999; a
    // noise scaled by sigma alone (C = 2.5) or by sqrt(2) would be far outside.
    assert!(
        (sd / want - 1.0).abs() < 0.05,
        "{sampler:?}: sd {sd}, want {want}"
    );
    assert!(mean.abs() < 4.0 * want / n.sqrt(), "mean {mean}");
    assert!(stats.noise_std >= want && stats.noise_std < want * (1.0 + 1e-8));
}

#[test]
fn reported_epsilon_is_the_accountants_for_the_steps_taken() {
    let (x, y) = data(300, 5, 2, 3);
    let net = Network::new(
        ModelSpec::Mlp {
            hidden: vec![8],
            activation: Activation::Relu,
        },
        5,
        2,
    )
    .unwrap();
    let rows: Vec<u32> = (0..300).collect();
    let schedule = DpSchedule::new(300, 32, 3).unwrap();
    assert_eq!(schedule.steps_per_epoch, 10); // ceil(300 / 32)
    assert_eq!(schedule.steps, 30);
    let sigma = calibrate_noise(&schedule, 3.0, 1e-5, privet_dp::AccountantKind::Rdp).unwrap();
    let cfg = DpSgdConfig {
        epochs: 3,
        lot_size: 32,
        clip_norm: 1.0,
        noise_multiplier: sigma,
        optimizer: OptimizerConfig::sgd(0.1),
        noise: NoiseSampler::Snapped,
    };
    let mut rng = ChaCha20Rng::seed_from_u64(5);
    let (_, stats) = net
        .train_dp(
            &net.init(0),
            &x,
            &y,
            &rows,
            &cfg,
            &mut rng,
            &mut |_, _, _| Ok(()),
        )
        .unwrap();
    assert_eq!(stats.train.steps, 30);
    let spent = privacy_spent(&stats.schedule, sigma, 1e-5).unwrap();
    // Independently: the accountant on (q, sigma, steps taken, delta).
    let mut acc = RdpAccountant::new();
    acc.compose(&SampledGaussian::poisson(0.1, sigma, stats.train.steps).unwrap())
        .unwrap();
    let direct = acc.epsilon(Delta::new(1e-5).unwrap(), Conversion::Improved);
    assert_eq!(spent.epsilon_rdp, direct.epsilon);
    assert_eq!(spent.steps, 30);
    assert_eq!(spent.sampling_probability, 0.1);
    // Calibrated by RDP: at most the target and within the calibration tolerance of it.
    assert!(
        spent.epsilon_rdp <= 3.0 && spent.epsilon_rdp > 2.99,
        "{spent:?}"
    );
    // PLD is tighter than RDP.
    assert!(spent.epsilon_pld < spent.epsilon_rdp, "{spent:?}");
    // About q N examples per lot.
    let per_lot = stats.examples_processed as f64 / 30.0;
    assert!((per_lot - 30.0).abs() < 4.0, "{per_lot}");
}

#[test]
fn dp_sgd_learns_a_separable_problem() {
    for (spec, k) in [
        (ModelSpec::Logreg, 3),
        (
            ModelSpec::Mlp {
                hidden: vec![16],
                activation: Activation::Relu,
            },
            3,
        ),
    ] {
        let (x, y) = data(3000, 6, k, 4);
        let net = Network::new(spec.clone(), 6, k).unwrap();
        let rows: Vec<u32> = (0..3000).collect();
        let schedule = DpSchedule::new(3000, 100, 5).unwrap();
        let sigma = calibrate_noise(&schedule, 3.0, 1e-5, privet_dp::AccountantKind::Pld).unwrap();
        let cfg = DpSgdConfig {
            epochs: 5,
            lot_size: 100,
            clip_norm: 1.0,
            noise_multiplier: sigma,
            optimizer: OptimizerConfig::sgd(0.5),
            noise: NoiseSampler::Snapped,
        };
        let mut rng = ChaCha20Rng::seed_from_u64(6);
        let mut epochs = 0;
        let (params, stats) = net
            .train_dp(
                &net.init(0),
                &x,
                &y,
                &rows,
                &cfg,
                &mut rng,
                &mut |_, _, _| {
                    epochs += 1;
                    Ok(())
                },
            )
            .unwrap();
        assert_eq!(epochs, 5);
        assert!(stats.clipped_fraction > 0.0 && stats.clipped_fraction <= 1.0);
        let acc = net.evaluate(&params, &x, &y).unwrap().accuracy;
        assert!(acc > 0.9, "{spec:?}: accuracy {acc}");
    }
}

#[test]
fn bad_configurations_are_refused_with_a_clear_error() {
    let (x, y) = data(10, 4, 2, 5);
    let rows: Vec<u32> = (0..10).collect();
    let good = DpSgdConfig {
        epochs: 1,
        lot_size: 4,
        clip_norm: 1.0,
        noise_multiplier: 1.0,
        optimizer: OptimizerConfig::sgd(0.1),
        noise: NoiseSampler::Snapped,
    };
    let net = Network::new(ModelSpec::Logreg, 4, 2).unwrap();
    let cases: Vec<(DpSgdConfig, &str)> = vec![
        (
            DpSgdConfig {
                clip_norm: 0.0,
                ..good.clone()
            },
            "clipping norm",
        ),
        (
            DpSgdConfig {
                clip_norm: f32::NAN,
                ..good.clone()
            },
            "clipping norm",
        ),
        (
            DpSgdConfig {
                noise_multiplier: 0.0,
                ..good.clone()
            },
            "noise multiplier",
        ),
        (
            DpSgdConfig {
                lot_size: 0,
                ..good.clone()
            },
            "lot size",
        ),
        (
            DpSgdConfig {
                epochs: 0,
                ..good.clone()
            },
            "epoch",
        ),
        (
            DpSgdConfig {
                optimizer: OptimizerConfig::sgd(-1.0),
                ..good.clone()
            },
            "learning rate",
        ),
    ];
    for (cfg, needle) in cases {
        let mut rng = ChaCha20Rng::seed_from_u64(0);
        let err = net
            .train_dp(
                &net.init(0),
                &x,
                &y,
                &rows,
                &cfg,
                &mut rng,
                &mut |_, _, _| Ok(()),
            )
            .unwrap_err();
        assert!(
            matches!(err, MlError::InvalidConfig(_)) && err.to_string().contains(needle),
            "{cfg:?}: {err}"
        );
    }
    let cnn = Network::new(ModelSpec::Cnn, 64, 2).unwrap();
    let (x64, y64) = data(10, 64, 2, 6);
    let mut rng = ChaCha20Rng::seed_from_u64(0);
    let err = cnn
        .train_dp(
            &cnn.init(0),
            &x64,
            &y64,
            &rows,
            &good,
            &mut rng,
            &mut |_, _, _| Ok(()),
        )
        .unwrap_err();
    assert!(err.to_string().contains("CNN"), "{err}");
    assert!(DpSchedule::new(0, 4, 1).is_err());
    let s = DpSchedule::new(10, 4, 1).unwrap();
    assert!(calibrate_noise(&s, 0.0, 1e-5, privet_dp::AccountantKind::Rdp).is_err());
    assert!(calibrate_noise(&s, 1.0, 1.5, privet_dp::AccountantKind::Rdp).is_err());
    assert!(privacy_spent(&s, -1.0, 1e-5).is_err());
}
