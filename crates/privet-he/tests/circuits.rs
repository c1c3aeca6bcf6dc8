//! Polynomials, matrix products (both packings), noise flooding and property tests against f64.

use std::sync::{Arc, OnceLock};

use privet_he::*;
use proptest::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

struct Kit {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
    enc: Encoder,
    ev: Evaluator,
}

fn kit(name: ParameterSetName, rotations: Vec<i64>, seed: u64) -> Kit {
    let ctx = CkksContext::new(CkksParameters::named(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha20Rng::seed_from_u64(seed);
    let sk = SecretKey::generate(&ctx, &mut rng);
    let keys = sk
        .evaluation_keys(
            &EvaluationKeyConfig {
                relinearization: true,
                rotations,
                conjugation: false,
            },
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = Evaluator::new(&ctx, Arc::new(keys)).unwrap_or_else(|e| panic!("{e}"));
    Kit {
        enc: Encoder::new(&ctx),
        ctx,
        sk,
        ev,
    }
}

impl Kit {
    fn encrypt(&self, v: &[f64], rng: &mut ChaCha20Rng) -> Ciphertext {
        let pt = self
            .enc
            .encode(v, self.ctx.max_level(), self.ctx.params().default_scale())
            .unwrap_or_else(|e| panic!("{e}"));
        self.sk.encrypt(&pt, rng).unwrap_or_else(|e| panic!("{e}"))
    }
    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.enc
            .decode(&self.sk.decrypt(ct).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

#[test]
fn polynomials_of_degree_1_to_7_at_optimal_depth() {
    let k = kit(ParameterSetName::N13Depth3, vec![], 1);
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let x: Vec<f64> = (0..k.ctx.slots())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let ct = k.encrypt(&x, &mut rng);
    let scale = k.ctx.params().default_scale();
    // Includes the degree-3 sigmoid approximation TenSEAL's tutorial uses.
    let polys: Vec<Vec<f64>> = vec![
        vec![0.5, 2.0],
        vec![0.1, -0.3, 0.7],
        vec![0.5, 0.197, 0.0, -0.004],
        vec![0.0, 1.0, 0.0, 0.0, 0.5],
        vec![1.0, -1.0, 0.5, -0.25, 0.125, -0.0625],
        vec![0.3, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2],
        vec![0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8],
    ];
    for c in &polys {
        let d = c.len() - 1;
        let out =
            evaluate_polynomial(&k.ev, &ct, c, scale).unwrap_or_else(|e| panic!("degree {d}: {e}"));
        assert_eq!(out.level(), ct.level() - polynomial_depth(d), "degree {d}");
        // Optimal depth up to degree 15.
        assert_eq!(
            polynomial_depth(d),
            (usize::BITS - d.leading_zeros()) as usize
        );
        assert_eq!(out.scale(), scale);
        let expect: Vec<f64> = x
            .iter()
            .map(|&v| c.iter().rev().fold(0.0, |acc, &ci| acc * v + ci))
            .collect();
        let e = max_err(&k.decrypt(&out), &expect);
        assert!(e < 1e-3, "degree {d}: error {e}");
    }
    // Depth 4 does not fit a depth-3 parameter set.
    assert!(matches!(
        evaluate_polynomial(
            &k.ev,
            &ct,
            &[0.0; 9].iter().chain(&[1.0]).copied().collect::<Vec<_>>(),
            scale
        ),
        Err(HeError::OutOfLevels(_))
    ));
    assert!(matches!(
        evaluate_polynomial(&k.ev, &ct, &[1.0], scale),
        Err(HeError::Shape(_))
    ));
}

fn check_matrix(k: &Kit, rows: usize, cols: usize, rng: &mut ChaCha20Rng) {
    let m: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let b: Vec<f64> = (0..rows).map(|_| rng.random_range(-1.0..1.0)).collect();
    let x: Vec<f64> = (0..cols).map(|_| rng.random_range(-1.0..1.0)).collect();
    let level = k.ctx.max_level();
    let plan =
        MatrixPlan::new(&k.ev, &m, rows, cols, Some(&b), level).unwrap_or_else(|e| panic!("{e}"));
    let ct = k.encrypt(
        &replicate(&x, k.ctx.slots()).unwrap_or_else(|e| panic!("{e}")),
        rng,
    );
    let out = plan
        .apply(&k.ev, &ct)
        .unwrap_or_else(|e| panic!("{rows}x{cols}: {e}"));
    assert_eq!(out.level(), level - 1);
    assert_eq!(out.scale(), ct.scale());
    let got = k.decrypt(&out);
    let p = plan.output_period();
    for (s, &slot) in got.iter().enumerate().take(k.ctx.slots()) {
        let r = s % p;
        let want = if r < rows {
            (0..cols).map(|c| m[r * cols + c] * x[c]).sum::<f64>() + b[r]
        } else {
            0.0
        };
        assert!(
            (slot - want).abs() < 1e-4,
            "{rows}x{cols} slot {s}: {slot} vs {want}"
        );
    }
}

#[test]
fn matrix_plans_of_every_shape() {
    let shapes = [
        (1, 30),
        (10, 64),
        (64, 30),
        (32, 32),
        (3, 5),
        (16, 1),
        (2, 2),
    ];
    let ev0 = kit(ParameterSetName::N13Depth2, vec![], 3);
    let mut rotations = Vec::new();
    for (r, c) in shapes {
        let m = vec![1.0; r * c];
        let plan = MatrixPlan::new(&ev0.ev, &m, r, c, None, 1).unwrap_or_else(|e| panic!("{e}"));
        rotations.extend(plan.rotations());
    }
    let k = kit(ParameterSetName::N13Depth2, rotations, 3);
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    for (r, c) in shapes {
        check_matrix(&k, r, c, &mut rng);
    }
    // A missing rotation key is a clear error.
    let plan =
        MatrixPlan::new(&ev0.ev, &vec![1.0; 64], 8, 8, None, 2).unwrap_or_else(|e| panic!("{e}"));
    let ct = ev0.encrypt(&[1.0; 8], &mut rng);
    assert!(matches!(
        plan.apply(&ev0.ev, &ct),
        Err(HeError::MissingKey(_))
    ));
    assert!(MatrixPlan::new(&ev0.ev, &[1.0; 5], 2, 3, None, 1).is_err());
}

#[test]
fn batch_layers_need_no_rotation() {
    let k = kit(ParameterSetName::N13Depth2, vec![], 5);
    let mut rng = ChaCha20Rng::seed_from_u64(6);
    let (rows, cols) = (3, 4);
    let samples = k.ctx.slots();
    let feats: Vec<Vec<f64>> = (0..cols)
        .map(|_| (0..samples).map(|_| rng.random_range(-1.0..1.0)).collect())
        .collect();
    let w: Vec<f64> = (0..rows * cols)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let b = [0.5, -0.25, 0.0];
    let cts: Vec<Ciphertext> = feats.iter().map(|f| k.encrypt(f, &mut rng)).collect();
    let out = batch_linear(&k.ev, &cts, &w, rows, Some(&b)).unwrap_or_else(|e| panic!("{e}"));
    for (r, ct) in out.iter().enumerate() {
        let got = k.decrypt(ct);
        let want: Vec<f64> = (0..samples)
            .map(|s| {
                (0..cols)
                    .map(|c| w[r * cols + c] * feats[c][s])
                    .sum::<f64>()
                    + b[r]
            })
            .collect();
        assert!(max_err(&got, &want) < 1e-5);
        assert_eq!(ct.scale(), cts[0].scale());
    }
}

#[test]
fn flooding_adds_the_stated_noise() {
    let k = kit(ParameterSetName::N13Depth2, vec![], 7);
    let mut rng = ChaCha20Rng::seed_from_u64(8);
    let x: Vec<f64> = (0..k.ctx.slots())
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    let ct = k.encrypt(&x, &mut rng);
    let model = NoiseModel::new(&k.ctx);
    let est = model.fresh_secret(k.ctx.max_level(), k.ctx.params().default_scale(), 1.0);
    let bound = model.coefficient_error_bound(&est);
    let cfg = FloodingConfig::default();
    let f =
        k.sk.decrypt_for_sharing(&ct, bound, &cfg, &mut rng)
            .unwrap_or_else(|e| panic!("{e}"));
    let expected_sigma = (64.0f64).sqrt() * 2f64.powi(15) * bound;
    assert!((f.sigma - expected_sigma.round()).abs() <= 1.0);
    let out = k.enc.decode(&f.plaintext).unwrap_or_else(|e| panic!("{e}"));
    let rms = (out
        .iter()
        .zip(&x)
        .map(|(a, b)| (a - b) * (a - b))
        .sum::<f64>()
        / x.len() as f64)
        .sqrt();
    // The slot error is now the flooding noise: sigma sqrt(N/2) / scale, within 10%.
    assert!(
        (rms / f.slot_sigma - 1.0).abs() < 0.1,
        "rms {rms} vs stated {}",
        f.slot_sigma
    );
    // Unflooded decryption is far more precise.
    assert!(max_err(&k.decrypt(&ct), &x) < f.slot_sigma / 100.0);
    assert!(
        k.sk.decrypt_for_sharing(&ct, f64::NAN, &cfg, &mut rng)
            .is_err()
    );
}

struct Shared {
    k: Kit,
}

fn shared() -> &'static Shared {
    static S: OnceLock<Shared> = OnceLock::new();
    S.get_or_init(|| Shared {
        k: kit(ParameterSetName::N13Depth2, vec![1, 2, 3, 5, -1, -7], 9),
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn arithmetic_matches_f64(
        a in prop::collection::vec(-10.0f64..10.0, 1..64),
        b in prop::collection::vec(-10.0f64..10.0, 1..64),
        c in -5.0f64..5.0,
        step in prop::sample::select(vec![1i64, 2, 3, 5, -1, -7]),
        seed in any::<u64>(),
    ) {
        let k = &shared().k;
        let mut rng = ChaCha20Rng::seed_from_u64(seed);
        let n = a.len().max(b.len());
        let pad = |v: &[f64]| { let mut v = v.to_vec(); v.resize(n, 0.0); v };
        let (a, b) = (pad(&a), pad(&b));
        let (ca, cb) = (k.encrypt(&a, &mut rng), k.encrypt(&b, &mut rng));
        let slots = k.ctx.slots();
        let full = |v: &[f64]| { let mut v = v.to_vec(); v.resize(slots, 0.0); v };
        let (fa, fb) = (full(&a), full(&b));

        let sum = k.decrypt(&k.ev.add(&ca, &cb).unwrap_or_else(|e| panic!("{e}")));
        prop_assert!(max_err(&sum, &fa.iter().zip(&fb).map(|(x, y)| x + y).collect::<Vec<_>>()) < 1e-6);
        let diff = k.decrypt(&k.ev.sub(&ca, &cb).unwrap_or_else(|e| panic!("{e}")));
        prop_assert!(max_err(&diff, &fa.iter().zip(&fb).map(|(x, y)| x - y).collect::<Vec<_>>()) < 1e-6);
        let prod = k.ev.rescale(&k.ev.mul(&ca, &cb).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!(max_err(&k.decrypt(&prod), &fa.iter().zip(&fb).map(|(x, y)| x * y).collect::<Vec<_>>()) < 1e-4);
        let q = k.ev.exact_scale(ca.level());
        let mut sc = k.ev.rescale(&k.ev.mul_const(&ca, c, q).unwrap_or_else(|e| panic!("{e}"))).unwrap_or_else(|e| panic!("{e}"));
        prop_assert!((sc.scale() / ca.scale() - 1.0).abs() < 1e-9);
        sc.set_scale(ca.scale());
        prop_assert!(max_err(&k.decrypt(&sc), &fa.iter().map(|x| x * c).collect::<Vec<_>>()) < 1e-5);
        let plus = k.decrypt(&k.ev.add_const(&ca, c).unwrap_or_else(|e| panic!("{e}")));
        prop_assert!(max_err(&plus, &fa.iter().map(|x| x + c).collect::<Vec<_>>()) < 1e-6);
        let rot = k.decrypt(&k.ev.rotate(&ca, step).unwrap_or_else(|e| panic!("{e}")));
        let want: Vec<f64> = (0..slots as i64).map(|j| fa[(j + step).rem_euclid(slots as i64) as usize]).collect();
        prop_assert!(max_err(&rot, &want) < 1e-5);
    }
}

#[test]
fn misuse_is_an_error_not_a_panic() {
    let k = kit(ParameterSetName::N13Depth2, vec![], 10);
    let other = kit(ParameterSetName::N13Depth3, vec![], 11);
    let mut rng = ChaCha20Rng::seed_from_u64(12);
    let a = k.encrypt(&[1.0], &mut rng);
    let b = other.encrypt(&[1.0], &mut rng);
    assert_eq!(k.ev.add(&a, &b).err(), Some(HeError::ParameterMismatch));
    assert!(other.sk.decrypt(&a).is_err());
    let low = k.ev.mod_drop_to(&a, 0).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        k.ev.add(&a, &low),
        Err(HeError::LevelMismatch { .. })
    ));
    assert!(matches!(k.ev.rescale(&low), Err(HeError::OutOfLevels(0))));
    let sq = k.ev.mul(&a, &a).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        k.ev.add(&a, &sq),
        Err(HeError::ScaleMismatch { .. })
    ));
    assert!(matches!(k.ev.rotate(&a, 1), Err(HeError::MissingKey(_))));
    let nk = Evaluator::without_keys(&k.ctx);
    assert!(matches!(nk.mul(&a, &a), Err(HeError::MissingKey(_))));
    let c3 = nk.mul_no_relin(&a, &a).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        nk.mul_no_relin(&c3, &a),
        Err(HeError::NotRelinearized(3))
    ));
    // A size-3 ciphertext still decrypts.
    let d = k.decrypt(&c3);
    assert!((d[0] - 1.0).abs() < 1e-6);
}
