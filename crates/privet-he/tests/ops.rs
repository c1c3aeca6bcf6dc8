//! Each operation against f64 arithmetic on the slots.

use std::sync::Arc;

use privet_he::*;
use rand::SeedableRng;
use rand_chacha::ChaCha20Rng;

struct Fixture {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
    pk: PublicKey,
    enc: Encoder,
    ev: Evaluator,
    rng: ChaCha20Rng,
}

fn fixture(params: CkksParameters, rotations: Vec<i64>) -> Fixture {
    let ctx = CkksContext::new(params).unwrap_or_else(|e| panic!("{e}"));
    let mut rng = ChaCha20Rng::seed_from_u64(42);
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
    let enc = Encoder::new(&ctx);
    let ev = Evaluator::new(&ctx, Arc::new(keys)).unwrap_or_else(|e| panic!("{e}"));
    Fixture {
        ctx,
        sk,
        pk,
        enc,
        ev,
        rng,
    }
}

fn values(n: usize, seed: u64) -> Vec<f64> {
    (0..n)
        .map(|i| ((i as f64 + seed as f64) * 0.731).sin() * 2.0)
        .collect()
}

fn max_err(a: &[f64], b: &[f64]) -> f64 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f64::max)
}

impl Fixture {
    fn encrypt(&mut self, v: &[f64]) -> Ciphertext {
        let pt = self
            .enc
            .encode(v, self.ctx.max_level(), self.ctx.params().default_scale())
            .unwrap_or_else(|e| panic!("{e}"));
        self.sk
            .encrypt(&pt, &mut self.rng)
            .unwrap_or_else(|e| panic!("{e}"))
    }
    fn decrypt(&self, ct: &Ciphertext) -> Vec<f64> {
        self.enc
            .decode(&self.sk.decrypt(ct).unwrap_or_else(|e| panic!("{e}")))
            .unwrap_or_else(|e| panic!("{e}"))
    }
}

#[test]
fn basic_ops_n13() {
    let mut f = fixture(
        CkksParameters::named(ParameterSetName::N13Depth2),
        vec![1, -3, 7],
    );
    let n = f.ctx.slots();
    let a = values(n, 1);
    let b = values(n, 2);
    let ca = f.encrypt(&a);
    let cb = f.encrypt(&b);
    assert!(max_err(&f.decrypt(&ca), &a) < 1e-8);

    let pt = f
        .enc
        .encode(&a, f.ctx.max_level(), f.ctx.params().default_scale())
        .unwrap_or_else(|e| panic!("{e}"));
    let cpk =
        f.pk.encrypt(&pt, &mut f.rng)
            .unwrap_or_else(|e| panic!("{e}"));
    assert!(max_err(&f.decrypt(&cpk), &a) < 1e-7);

    let sum = f.ev.add(&ca, &cb).unwrap_or_else(|e| panic!("{e}"));
    let expect: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x + y).collect();
    assert!(max_err(&f.decrypt(&sum), &expect) < 1e-8);

    let prod = f.ev.mul(&ca, &cb).unwrap_or_else(|e| panic!("{e}"));
    let prod = f.ev.rescale(&prod).unwrap_or_else(|e| panic!("{e}"));
    let expect: Vec<f64> = a.iter().zip(&b).map(|(x, y)| x * y).collect();
    let e = max_err(&f.decrypt(&prod), &expect);
    assert!(e < 1e-6, "mul err {e}");

    for steps in [1i64, -3, 7] {
        let r = f.ev.rotate(&ca, steps).unwrap_or_else(|e| panic!("{e}"));
        let expect: Vec<f64> = (0..n)
            .map(|j| a[(j as i64 + steps).rem_euclid(n as i64) as usize])
            .collect();
        let e = max_err(&f.decrypt(&r), &expect);
        assert!(e < 1e-6, "rotate {steps} err {e}");
    }
}
