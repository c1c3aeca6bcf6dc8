//! Encrypted inference against the plain model, in both packings.

use std::sync::Arc;

use privet_he::inference::{CircuitSpec, HeClient, HeServer, Layer, Packing, PlainModel};
use privet_he::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha20Rng;

fn dense(rng: &mut ChaCha20Rng, rows: usize, cols: usize, scale: f64) -> Layer {
    Layer::Dense {
        rows,
        cols,
        weights: (0..rows * cols)
            .map(|_| rng.random_range(-scale..scale))
            .collect(),
        bias: (0..rows).map(|_| rng.random_range(-0.5..0.5)).collect(),
    }
}

fn run(model: PlainModel, packing: Packing, samples: usize, tol: f64) {
    let mut rng = ChaCha20Rng::seed_from_u64(samples as u64);
    let spec = CircuitSpec::for_model(&model, packing).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(spec.params.degree(), 8192, "small models fit N = 2^13");
    let ctx = CkksContext::new(spec.params.clone()).unwrap_or_else(|e| panic!("{e}"));
    let sk = SecretKey::generate(&ctx, &mut rng);
    let client = HeClient::new(sk, spec.clone()).unwrap_or_else(|e| panic!("{e}"));
    let keys = client
        .evaluation_keys(&mut rng)
        .unwrap_or_else(|e| panic!("{e}"));
    // The keys travel as bytes: the server only ever sees what the wire carries.
    let keys = EvaluationKeys::from_bytes(
        &ctx,
        &keys.to_bytes(&ctx).unwrap_or_default(),
        &DecodeOptions::default(),
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let server = HeServer::new(&ctx, Arc::new(keys), model.clone(), spec.clone())
        .unwrap_or_else(|e| panic!("{e}"));
    let xs: Vec<Vec<f64>> = (0..samples)
        .map(|_| {
            (0..model.input_dim())
                .map(|_| rng.random_range(-2.0..2.0))
                .collect()
        })
        .collect();
    let got: Vec<Vec<f64>> = match packing {
        Packing::Single => {
            let cts: Vec<Ciphertext> = xs
                .iter()
                .map(|x| {
                    client
                        .encrypt_single(x, &mut rng)
                        .unwrap_or_else(|e| panic!("{e}"))
                })
                .collect();
            let out = server.evaluate(&cts).unwrap_or_else(|e| panic!("{e}"));
            out.iter()
                .map(|c| client.decrypt_single(c).unwrap_or_else(|e| panic!("{e}")))
                .collect()
        }
        Packing::Batch => {
            let cts = client
                .encrypt_batch(&xs, &mut rng)
                .unwrap_or_else(|e| panic!("{e}"));
            let out = server.evaluate(&cts).unwrap_or_else(|e| panic!("{e}"));
            client
                .decrypt_batch(&out, samples)
                .unwrap_or_else(|e| panic!("{e}"))
        }
    };
    for (x, g) in xs.iter().zip(&got) {
        let want = model.eval_plain(x);
        assert_eq!(g.len(), want.len());
        for (a, b) in g.iter().zip(&want) {
            assert!(
                (a - b).abs() < tol * (1.0 + b.abs()),
                "{packing:?}: {a} vs {b}"
            );
        }
    }
}

#[test]
fn logistic_regression_both_packings() {
    let mut rng = ChaCha20Rng::seed_from_u64(1);
    let m =
        PlainModel::new(30, vec![dense(&mut rng, 1, 30, 1.0)]).unwrap_or_else(|e| panic!("{e}"));
    run(m.clone(), Packing::Single, 3, 1e-5);
    run(m, Packing::Batch, 100, 1e-5);
}

#[test]
fn softmax_regression_both_packings() {
    let mut rng = ChaCha20Rng::seed_from_u64(2);
    let m =
        PlainModel::new(64, vec![dense(&mut rng, 10, 64, 0.5)]).unwrap_or_else(|e| panic!("{e}"));
    run(m.clone(), Packing::Single, 2, 1e-5);
    run(m, Packing::Batch, 50, 1e-5);
}

#[test]
fn mlp_with_square_activation_both_packings() {
    let mut rng = ChaCha20Rng::seed_from_u64(3);
    let m = PlainModel::new(
        64,
        vec![
            dense(&mut rng, 16, 64, 0.2),
            Layer::Square,
            dense(&mut rng, 10, 16, 0.5),
        ],
    )
    .unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(m.depth(), 3);
    run(m.clone(), Packing::Single, 2, 1e-3);
    run(m, Packing::Batch, 20, 1e-3);
}

#[test]
fn malformed_models_and_inputs_are_refused() {
    let mut rng = ChaCha20Rng::seed_from_u64(4);
    assert!(PlainModel::new(3, vec![dense(&mut rng, 2, 4, 1.0)]).is_err());
    assert!(PlainModel::new(3, vec![Layer::Square, dense(&mut rng, 2, 3, 1.0)]).is_err());
    assert!(PlainModel::new(3, vec![dense(&mut rng, 2, 3, 1.0), Layer::Square]).is_err());
    assert!(PlainModel::new(0, vec![]).is_err());
    let m = PlainModel::new(4, vec![dense(&mut rng, 2, 4, 1.0)]).unwrap_or_else(|e| panic!("{e}"));
    let spec = CircuitSpec::for_model(&m, Packing::Single).unwrap_or_else(|e| panic!("{e}"));
    let ctx = CkksContext::new(spec.params.clone()).unwrap_or_else(|e| panic!("{e}"));
    let sk = SecretKey::generate(&ctx, &mut rng);
    let client = HeClient::new(sk, spec.clone()).unwrap_or_else(|e| panic!("{e}"));
    assert!(client.encrypt_single(&[1.0, 2.0], &mut rng).is_err());
    assert!(
        client
            .encrypt_single(&[1.0, 2.0, f64::NAN, 0.0], &mut rng)
            .is_err()
    );
    // Keys without the rotations the plan needs are refused when the server starts.
    let empty = EvaluationKeys::empty(&ctx);
    assert!(matches!(
        HeServer::new(&ctx, Arc::new(empty), m.clone(), spec.clone()),
        Err(HeError::MissingKey(_))
    ));
    let keys = client
        .evaluation_keys(&mut rng)
        .unwrap_or_else(|e| panic!("{e}"));
    let server = HeServer::new(&ctx, Arc::new(keys), m, spec).unwrap_or_else(|e| panic!("{e}"));
    // An input at the wrong level.
    let ct = client
        .encrypt_single(&[1.0; 4], &mut rng)
        .unwrap_or_else(|e| panic!("{e}"));
    let ev = Evaluator::without_keys(&ctx);
    let low = ev.mod_drop_to(&ct, 0).unwrap_or_else(|e| panic!("{e}"));
    assert!(matches!(
        server.evaluate(&[low]),
        Err(HeError::LevelMismatch { .. })
    ));
    assert!(server.evaluate_batch(&[ct]).is_err());
}
