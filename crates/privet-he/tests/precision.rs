//! Precision after each operation and after depth-2/3/4 circuits, at every named parameter
//! set: measured against f64 arithmetic, checked against the noise model (which must bound
//! the measured error and not be vacuous), and against the precision stated in the tables.

use std::sync::Arc;

use privet_he::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

/// The model must be within this many bits of the measured error (it is a bound, so it may
/// only be pessimistic).
const MODEL_SLACK_BITS: f64 = 12.0;

struct H {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
    pk: PublicKey,
    enc: Encoder,
    ev: Evaluator,
    model: NoiseModel,
    rng: ChaCha20Rng,
}

fn harness(name: ParameterSetName, rotations: Vec<i64>) -> H {
    let ctx = CkksContext::new(CkksParameters::named(name)).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha20Rng::seed_from_u64(name as u64 + 1);
    let sk = SecretKey::generate(&ctx, &mut rng);
    let pk = sk.public_key(&mut rng);
    let keys = sk
        .evaluation_keys(
            &EvaluationKeyConfig {
                relinearization: true,
                rotations,
                conjugation: true,
            },
            &mut rng,
        )
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = Evaluator::new(&ctx, Arc::new(keys)).unwrap_or_else(|e| panic!("{e}"));
    H {
        enc: Encoder::new(&ctx),
        model: NoiseModel::new(&ctx),
        ctx,
        sk,
        pk,
        ev,
        rng,
    }
}

/// A ciphertext with its plaintext twin and its modelled noise.
#[derive(Clone)]
struct T {
    ct: Ciphertext,
    v: Vec<f64>,
    e: Estimate,
}

impl H {
    fn random(&mut self) -> Vec<f64> {
        (0..self.ctx.slots())
            .map(|_| self.rng.random_range(-1.0..1.0))
            .collect()
    }
    fn fresh(&mut self) -> T {
        let v = self.random();
        let (l, s) = (self.ctx.max_level(), self.ctx.params().default_scale());
        let pt = self.enc.encode(&v, l, s).unwrap_or_else(|e| panic!("{e}"));
        let ct = self
            .sk
            .encrypt(&pt, &mut self.rng)
            .unwrap_or_else(|e| panic!("{e}"));
        T {
            ct,
            v,
            e: self.model.fresh_secret(l, s, 1.0),
        }
    }
    fn fresh_public(&mut self) -> T {
        let v = self.random();
        let (l, s) = (self.ctx.max_level(), self.ctx.params().default_scale());
        let pt = self.enc.encode(&v, l, s).unwrap_or_else(|e| panic!("{e}"));
        let ct = self
            .pk
            .encrypt(&pt, &mut self.rng)
            .unwrap_or_else(|e| panic!("{e}"));
        T {
            ct,
            v,
            e: self.model.fresh_public(l, s, 1.0),
        }
    }
    /// (measured precision bits, modelled precision bits); asserts the model bounds it.
    fn precision(&self, t: &T, what: &str) -> (f64, f64) {
        let out = self
            .enc
            .decode(&self.sk.decrypt(&t.ct).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let err = out
            .iter()
            .zip(&t.v)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0, f64::max);
        let bound = self.model.error_bound(&t.e);
        // The predicted rms error must match the measured one (within a factor 1.5 either way).
        let rms = (out
            .iter()
            .zip(&t.v)
            .map(|(a, b)| (a - b) * (a - b))
            .sum::<f64>()
            / out.len() as f64)
            .sqrt();
        let predicted = self.model.rms_error(&t.e);
        assert!(
            rms <= 1.5 * predicted,
            "{what}: rms error 2^{:.2} above the predicted 2^{:.2}",
            rms.log2(),
            predicted.log2()
        );
        let measured = -err.log2();
        let modelled = -bound.log2();
        assert!(
            err <= bound,
            "{what}: measured error 2^{:.1} above the model's bound 2^{:.1}",
            err.log2(),
            bound.log2()
        );
        assert!(
            measured - modelled <= MODEL_SLACK_BITS,
            "{what}: model too pessimistic ({modelled:.1} vs measured {measured:.1} bits)"
        );
        assert_eq!(t.ct.level(), t.e.level, "{what}: level");
        (measured, modelled)
    }

    fn mul(&self, a: &T, b: &T) -> T {
        let (x, y) = self
            .ev
            .align(&a.ct, &b.ct)
            .unwrap_or_else(|e| panic!("{e}"));
        let ct = self
            .ev
            .rescale(&self.ev.mul(&x, &y).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
        let l = x.level();
        let e = self.model.rescale(
            &self
                .model
                .mul(&self.model.mod_drop(&a.e, l), &self.model.mod_drop(&b.e, l)),
        );
        T {
            ct,
            v: a.v.iter().zip(&b.v).map(|(p, q)| p * q).collect(),
            e,
        }
    }
    fn rotate(&self, a: &T, k: i64) -> T {
        let ct = self.ev.rotate(&a.ct, k).unwrap_or_else(|e| panic!("{e}"));
        let n = a.v.len() as i64;
        let v = (0..n)
            .map(|j| a.v[(j + k).rem_euclid(n) as usize])
            .collect();
        T {
            ct,
            v,
            e: self.model.rotate(&a.e),
        }
    }
    fn add_plain(&mut self, a: &T) -> T {
        let w = self.random();
        let pt = self
            .enc
            .encode(&w, a.ct.level(), a.ct.scale())
            .unwrap_or_else(|e| panic!("{e}"));
        let ct = self
            .ev
            .add_plain(&a.ct, &pt)
            .unwrap_or_else(|e| panic!("{e}"));
        T {
            ct,
            v: a.v.iter().zip(&w).map(|(p, q)| p + q).collect(),
            e: self.model.add_plain(&a.e, 1.0),
        }
    }
}

/// Minimum measured precision (bits) per operation and parameter set, as stated in the README.
fn check(name: ParameterSetName, table: &[(&str, f64)], rotations: Vec<i64>) {
    let mut h = harness(name, rotations);
    let a = h.fresh();
    let b = h.fresh();
    let mut results: Vec<(&str, (f64, f64))> = Vec::new();
    results.push(("encrypt (secret key)", h.precision(&a, "encrypt")));
    let p = h.fresh_public();
    results.push(("encrypt (public key)", h.precision(&p, "encrypt public")));
    let sum = T {
        ct: h.ev.add(&a.ct, &b.ct).unwrap_or_else(|e| panic!("{e}")),
        v: a.v.iter().zip(&b.v).map(|(x, y)| x + y).collect(),
        e: h.model.add(&a.e, &b.e),
    };
    results.push(("add", h.precision(&sum, "add")));
    // Plaintext product at the exact scale, then rescale.
    let w = h.random();
    let l = a.ct.level();
    let q = h.ev.exact_scale(l);
    let pt = h.enc.encode(&w, l, q).unwrap_or_else(|e| panic!("{e}"));
    let mut ct =
        h.ev.rescale(&h.ev.mul_plain(&a.ct, &pt).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"));
    ct.set_scale(a.ct.scale());
    let mp = T {
        ct,
        v: a.v.iter().zip(&w).map(|(x, y)| x * y).collect(),
        e: h.model.rescale(&h.model.mul_plain(&a.e, 1.0, q)),
    };
    assert!((mp.e.scale / a.ct.scale() - 1.0).abs() < 1e-9);
    results.push(("ct x pt + rescale", h.precision(&mp, "mul_plain")));
    let m = h.mul(&a, &b);
    results.push(("ct x ct + relin + rescale", h.precision(&m, "mul")));
    let r = h.rotate(&a, 1);
    results.push(("rotate", h.precision(&r, "rotate")));
    let c = T {
        ct: h.ev.conjugate(&a.ct).unwrap_or_else(|e| panic!("{e}")),
        v: a.v.clone(),
        e: h.model.rotate(&a.e),
    };
    results.push(("conjugate", h.precision(&c, "conjugate")));
    // Circuits of depth 2, 3, 4 (as far as the set allows): multiply by a fresh input,
    // rescale, rotate every other level, add a plaintext.
    for depth in 2..=4usize {
        if depth > h.ctx.max_level() {
            continue;
        }
        let mut t = h.fresh();
        for i in 0..depth {
            let y = h.fresh();
            t = h.mul(&t, &y);
            if i % 2 == 0 {
                t = h.rotate(&t, 1);
            }
            t = h.add_plain(&t);
        }
        let label = [
            "",
            "",
            "depth-2 circuit",
            "depth-3 circuit",
            "depth-4 circuit",
        ][depth];
        results.push((label, h.precision(&t, label)));
    }
    for (op, (measured, modelled)) in &results {
        eprintln!("{name}: {op:<28} measured {measured:5.1} bits, model {modelled:5.1} bits");
    }
    for (op, stated) in table {
        let (measured, _) = results
            .iter()
            .find(|(o, _)| o == op)
            .map(|x| x.1)
            .unwrap_or_else(|| panic!("{name}: no result for {op}"));
        assert!(
            measured >= *stated,
            "{name}: {op} gave {measured:.1} bits, stated {stated}"
        );
    }
}

// Stated precision in bits (the noise model's bound, rounded down; the measured precision is
// printed with --nocapture and is 1-3 bits better). Inputs uniform in [-1, 1], default scale.

#[test]
fn precision_n13_depth2() {
    check(
        ParameterSetName::N13Depth2,
        &[
            ("encrypt (secret key)", 28.0),
            ("encrypt (public key)", 21.0),
            ("add", 27.0),
            ("ct x pt + rescale", 25.0),
            ("ct x ct + relin + rescale", 25.0),
            ("rotate", 23.0),
            ("conjugate", 23.0),
            ("depth-2 circuit", 23.0),
        ],
        vec![1],
    );
}

#[test]
fn precision_n13_depth3() {
    check(
        ParameterSetName::N13Depth3,
        &[
            ("encrypt (secret key)", 22.0),
            ("encrypt (public key)", 15.0),
            ("add", 21.0),
            ("ct x pt + rescale", 19.0),
            ("ct x ct + relin + rescale", 19.0),
            ("rotate", 17.0),
            ("conjugate", 17.0),
            ("depth-2 circuit", 17.0),
            ("depth-3 circuit", 17.0),
        ],
        vec![1],
    );
}

#[test]
fn precision_n14_depth6() {
    check(
        ParameterSetName::N14Depth6,
        &[
            ("encrypt (secret key)", 27.0),
            ("encrypt (public key)", 20.0),
            ("add", 27.0),
            ("ct x pt + rescale", 24.0),
            ("ct x ct + relin + rescale", 24.0),
            ("rotate", 23.0),
            ("conjugate", 23.0),
            ("depth-2 circuit", 23.0),
            ("depth-3 circuit", 22.0),
            ("depth-4 circuit", 22.0),
        ],
        vec![1],
    );
}

#[test]
fn precision_n15_depth15() {
    check(
        ParameterSetName::N15Depth15,
        &[
            ("encrypt (secret key)", 27.0),
            ("encrypt (public key)", 19.0),
            ("add", 26.0),
            ("ct x pt + rescale", 23.0),
            ("ct x ct + relin + rescale", 23.0),
            ("rotate", 22.0),
            ("conjugate", 22.0),
            ("depth-2 circuit", 21.0),
            ("depth-3 circuit", 21.0),
            ("depth-4 circuit", 21.0),
        ],
        vec![1],
    );
}
