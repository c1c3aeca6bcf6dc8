//! Models on real data, the fused linear kernel against candle's autograd, and model files.
#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions

use std::path::{Path, PathBuf};

use privet_data::{CsvOptions, Dataset, Encoder, Matrix, load_csv, train_test_split};
use privet_ml::{
    Activation, MlError, ModelSpec, Network, OptimizerConfig, TrainConfig, TrainedModel,
};
use proptest::prelude::*;

fn data_file(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(name)
}

/// Train and test sets of a shipped CSV, encoded with an encoder fitted on the training rows.
fn load(name: &str, label: &str) -> (Dataset, Dataset, Encoder) {
    let table = load_csv(&data_file(name), &CsvOptions::new(label)).unwrap();
    let (train, test) = train_test_split(table.num_rows(), 0.2, 0).unwrap();
    let enc = Encoder::fit(&table, &train).unwrap();
    let all = enc.dataset(&table).unwrap();
    let idx = |v: &[usize]| v.iter().map(|&r| r as u32).collect::<Vec<_>>();
    (all.gather(&idx(&train)), all.gather(&idx(&test)), enc)
}

fn cfg(epochs: usize, batch: usize, optimizer: OptimizerConfig) -> TrainConfig {
    TrainConfig {
        epochs,
        batch_size: batch,
        optimizer,
        proximal_mu: None,
        seed: 1,
    }
}

fn all_rows(d: &Dataset) -> Vec<u32> {
    (0..d.len() as u32).collect()
}

/// Trains `spec` on a shipped data set and checks the test accuracy reaches `min_accuracy`.
fn check_reaches(name: &str, label: &str, spec: ModelSpec, c: TrainConfig, min_accuracy: f64) {
    let (train, test, _) = load(name, label);
    let net = Network::new(spec.clone(), train.x.cols, train.num_classes).unwrap();
    let (params, stats) = net
        .train(&net.init(3), &train.x, &train.y, &all_rows(&train), &c)
        .unwrap();
    let m = net.evaluate(&params, &test.x, &test.y).unwrap();
    assert!(
        m.accuracy >= min_accuracy,
        "{name} {spec:?}: accuracy {} < {min_accuracy}",
        m.accuracy
    );
    assert!(stats.loss.is_finite() && stats.steps > 0);
}

#[test]
fn models_learn_real_data() {
    check_reaches(
        "breast_cancer.csv",
        "benign",
        ModelSpec::Logreg,
        cfg(10, 16, OptimizerConfig::sgd(0.1)),
        0.95,
    );
    check_reaches(
        "wine.csv",
        "cultivar",
        ModelSpec::Logreg,
        cfg(20, 8, OptimizerConfig::sgd(0.1)),
        0.94,
    );
    check_reaches(
        "wine.csv",
        "cultivar",
        ModelSpec::Mlp {
            hidden: vec![16],
            activation: Activation::Relu,
        },
        cfg(30, 8, OptimizerConfig::adam(0.01)),
        0.94,
    );
    check_reaches(
        "digits.csv",
        "digit",
        ModelSpec::Mlp {
            hidden: vec![64],
            activation: Activation::Relu,
        },
        cfg(
            10,
            32,
            OptimizerConfig::Sgd {
                lr: 0.05,
                momentum: 0.9,
            },
        ),
        0.95,
    );
    // The polynomial activation (for encrypted inference) trains as well on digits.
    check_reaches(
        "digits.csv",
        "digit",
        ModelSpec::Mlp {
            hidden: vec![32],
            activation: Activation::Square,
        },
        cfg(20, 32, OptimizerConfig::adam(0.002)),
        0.95,
    );
    check_reaches(
        "digits.csv",
        "digit",
        ModelSpec::Cnn,
        cfg(8, 32, OptimizerConfig::adam(0.005)),
        0.95,
    );
}

#[test]
fn activation_is_recorded_in_the_spec_and_defaults_to_relu() {
    let square = ModelSpec::Mlp {
        hidden: vec![4],
        activation: Activation::Square,
    };
    let json = serde_json::to_string(&square).unwrap();
    assert_eq!(json, r#"{"kind":"mlp","hidden":[4],"activation":"square"}"#);
    assert_eq!(serde_json::from_str::<ModelSpec>(&json).unwrap(), square);
    // Model files written before the field existed (and ReLU models now) carry no activation.
    let old: ModelSpec = serde_json::from_str(r#"{"kind":"mlp","hidden":[4]}"#).unwrap();
    assert_eq!(
        old,
        ModelSpec::Mlp {
            hidden: vec![4],
            activation: Activation::Relu
        }
    );
    assert_eq!(
        serde_json::to_string(&old).unwrap(),
        r#"{"kind":"mlp","hidden":[4]}"#
    );
    assert!(
        serde_json::from_str::<ModelSpec>(r#"{"kind":"mlp","hidden":[4],"activation":"tanh"}"#)
            .is_err()
    );
    assert_eq!(square.describe(), "MLP [4] (square)");
}

#[test]
fn binary_auc_is_reported() {
    let (train, test, _) = load("breast_cancer.csv", "benign");
    let net = Network::new(ModelSpec::Logreg, train.x.cols, 2).unwrap();
    let (p, _) = net
        .train(
            &net.init(0),
            &train.x,
            &train.y,
            &all_rows(&train),
            &cfg(5, 16, OptimizerConfig::sgd(0.1)),
        )
        .unwrap();
    let m = net.evaluate(&p, &test.x, &test.y).unwrap();
    assert!(m.auc.unwrap() > 0.98, "{m:?}");
}

fn random_problem(rows: usize, d: usize, classes: u32, seed: u64) -> (Matrix, Vec<u32>, Vec<f32>) {
    use rand::{Rng, SeedableRng};
    let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
    let x: Vec<f32> = (0..rows * d).map(|_| rng.random_range(-2.0..2.0)).collect();
    let y: Vec<u32> = (0..rows).map(|_| rng.random_range(0..classes)).collect();
    let out = if classes == 2 { 1 } else { classes as usize };
    let p: Vec<f32> = (0..out * d + out)
        .map(|_| rng.random_range(-1.0..1.0))
        .collect();
    (Matrix::new(rows, d, x).unwrap(), y, p)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]
    /// The fused linear kernel computes the same loss and gradient as candle's autograd.
    #[test]
    fn linear_kernel_matches_candle_autograd(rows in 1usize..40, d in 1usize..20, classes in 2u32..5, seed in 0u64..1000) {
        let (x, y, p) = random_problem(rows, d, classes, seed);
        let net = Network::new(ModelSpec::Logreg, d, classes as usize).unwrap();
        let idx: Vec<u32> = (0..rows as u32).collect();
        let (l1, g1) = net.loss_and_grad(&p, &x, &y, &idx).unwrap();
        let (l2, g2) = net.loss_and_grad_autograd(&p, &x, &y, &idx).unwrap();
        prop_assert!((l1 - l2).abs() < 1e-4 * (1.0 + l2.abs()), "loss {} vs {}", l1, l2);
        for (a, b) in g1.iter().zip(&g2) {
            prop_assert!((a - b).abs() < 1e-4, "grad {} vs {}", a, b);
        }
    }
}

#[test]
fn proximal_term_pulls_towards_the_global_model() {
    let (train, _, _) = load("breast_cancer.csv", "benign");
    let net = Network::new(ModelSpec::Logreg, train.x.cols, 2).unwrap();
    let start = net.init(0);
    let dist = |p: &[f32]| {
        p.iter()
            .zip(&start)
            .map(|(a, b)| (a - b).powi(2))
            .sum::<f32>()
            .sqrt()
    };
    let mut c = cfg(5, 16, OptimizerConfig::sgd(0.1));
    let (free, _) = net
        .train(&start, &train.x, &train.y, &all_rows(&train), &c)
        .unwrap();
    c.proximal_mu = Some(1.0);
    let (prox, _) = net
        .train(&start, &train.x, &train.y, &all_rows(&train), &c)
        .unwrap();
    assert!(
        dist(&prox) < 0.8 * dist(&free),
        "{} vs {}",
        dist(&prox),
        dist(&free)
    );
}

#[test]
fn training_is_deterministic_for_a_seed() {
    let (train, _, _) = load("wine.csv", "cultivar");
    let net = Network::new(
        ModelSpec::Mlp {
            hidden: vec![8],
            activation: Activation::Relu,
        },
        train.x.cols,
        3,
    )
    .unwrap();
    let c = cfg(2, 8, OptimizerConfig::adam(0.01));
    let a = net
        .train(&net.init(5), &train.x, &train.y, &all_rows(&train), &c)
        .unwrap()
        .0;
    let b = net
        .train(&net.init(5), &train.x, &train.y, &all_rows(&train), &c)
        .unwrap()
        .0;
    assert_eq!(a, b);
}

#[test]
fn bad_training_input_is_an_error() {
    let (x, y, _) = random_problem(10, 3, 2, 0);
    let net = Network::new(ModelSpec::Logreg, 3, 2).unwrap();
    let p = net.init(0);
    let c = cfg(1, 4, OptimizerConfig::sgd(0.1));
    assert!(matches!(
        net.train(&p[..2], &x, &y, &[0], &c),
        Err(MlError::Shape(_))
    ));
    assert!(matches!(
        net.train(&p, &x, &y, &[10], &c),
        Err(MlError::Shape(_))
    ));
    assert!(matches!(
        net.train(&p, &x, &[0, 5, 0, 0, 0, 0, 0, 0, 0, 0], &[1], &c),
        Err(MlError::Shape(_))
    ));
    let mut nan = p.clone();
    nan[0] = f32::NAN;
    assert!(matches!(
        net.train(&nan, &x, &y, &[0], &c),
        Err(MlError::Shape(_))
    ));
    assert!(matches!(
        net.train(&p, &x, &y, &[0], &cfg(0, 4, OptimizerConfig::sgd(0.1))),
        Err(MlError::InvalidConfig(_))
    ));
    assert!(matches!(
        Network::new(ModelSpec::Cnn, 10, 3),
        Err(MlError::InvalidConfig(_))
    ));
    assert!(matches!(
        Network::new(
            ModelSpec::Mlp {
                hidden: vec![],
                activation: Activation::Relu
            },
            10,
            3
        ),
        Err(MlError::InvalidConfig(_))
    ));
    assert!(matches!(
        Network::new(ModelSpec::Logreg, 10, 1),
        Err(MlError::InvalidConfig(_))
    ));
    // A learning rate that blows up is reported as divergence, not returned as NaN weights.
    let big = TrainConfig {
        epochs: 50,
        batch_size: 2,
        optimizer: OptimizerConfig::sgd(3e38),
        proximal_mu: None,
        seed: 0,
    };
    let rows: Vec<u32> = (0..10).collect();
    assert!(matches!(
        net.train(&p, &x, &y, &rows, &big),
        Err(MlError::Diverged)
    ));
}

fn trained_wine(dir: &Path) -> (TrainedModel, PathBuf) {
    let (train, _, enc) = load("wine.csv", "cultivar");
    let net = Network::new(
        ModelSpec::Mlp {
            hidden: vec![8],
            activation: Activation::Relu,
        },
        train.x.cols,
        3,
    )
    .unwrap();
    let (params, _) = net
        .train(
            &net.init(1),
            &train.x,
            &train.y,
            &all_rows(&train),
            &cfg(20, 8, OptimizerConfig::adam(0.02)),
        )
        .unwrap();
    let model = TrainedModel {
        network: net,
        params,
        encoder: enc,
        label: "cultivar".into(),
        categorical: vec![],
    };
    let path = dir.join("model.safetensors");
    model.save(&path).unwrap();
    (model, path)
}

#[test]
fn model_files_round_trip_and_predict() {
    let dir = tempfile::tempdir().unwrap();
    let (model, path) = trained_wine(dir.path());
    let mut files: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    files.sort();
    assert_eq!(
        files,
        ["model.json", "model.safetensors"],
        "a temporary file was left behind"
    );
    let loaded = TrainedModel::load(&path).unwrap();
    assert_eq!(loaded.params, model.params);
    assert_eq!(loaded.network.spec(), model.network.spec());
    let preds = loaded.predict_csv(&data_file("wine.csv")).unwrap();
    assert_eq!(preds.classes.len(), 178);
    let truth = preds.truth.as_ref().unwrap();
    let acc = truth
        .iter()
        .zip(&preds.classes)
        .filter(|(a, b)| a == b)
        .count() as f64
        / 178.0;
    assert!(acc > 0.9, "{acc}");
    // The label column is optional at prediction time.
    let text = std::fs::read_to_string(data_file("wine.csv")).unwrap();
    let no_label: String = text
        .lines()
        .map(|l| l.rsplit_once(',').unwrap().0.to_string() + "\n")
        .collect();
    let unlabelled = dir.path().join("unlabelled.csv");
    std::fs::write(&unlabelled, no_label).unwrap();
    let p2 = loaded.predict_csv(&unlabelled).unwrap();
    assert_eq!(p2.classes, preds.classes);
    assert!(p2.truth.is_none());
}

/// Corrupts a saved model with `corrupt` and checks that loading fails with a message containing
/// `fragment`.
fn check_corrupt(corrupt: impl FnOnce(&Path, &Path), fragment: &str) {
    let dir = tempfile::tempdir().unwrap();
    let (_, path) = trained_wine(dir.path());
    corrupt(&path, &privet_ml::meta_path(&path));
    let err = TrainedModel::load(&path).expect_err("corrupt model must not load");
    assert!(
        err.to_string().contains(fragment),
        "`{fragment}` not in: {err}"
    );
}

#[test]
fn corrupt_model_files_are_refused() {
    check_corrupt(
        |w, _| std::fs::write(w, b"not safetensors").unwrap(),
        "not a safetensors file",
    );
    check_corrupt(
        |w, _| {
            let b = std::fs::read(w).unwrap();
            std::fs::write(w, &b[..b.len() / 2]).unwrap()
        },
        "model.safetensors",
    );
    check_corrupt(
        |_, m| {
            let t = std::fs::read_to_string(m)
                .unwrap()
                .replace("\"format_version\": 1", "\"format_version\": 99");
            std::fs::write(m, t).unwrap()
        },
        "format version 99",
    );
    check_corrupt(
        |_, m| {
            let t = std::fs::read_to_string(m).unwrap().replace(
                "\"hidden\": [\n      8\n    ]",
                "\"hidden\": [\n      9\n    ]",
            );
            std::fs::write(m, t).unwrap()
        },
        "expected F32 [9",
    );
    check_corrupt(|_, m| std::fs::write(m, b"{}").unwrap(), "model.json");
    check_corrupt(|_, m| std::fs::remove_file(m).unwrap(), "model.json");
}
