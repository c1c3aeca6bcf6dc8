//! The session core in process: a full run, and every refusal.

#![allow(clippy::unwrap_used)] // test code: a failed unwrap is a failed test

use std::path::Path;
use std::sync::Arc;

use privet_data::{CsvOptions, Encoder, load_csv};
use privet_he::inference::Packing;
use privet_he::{CkksContext, EvaluationKeyConfig, Evaluator, SecretKey, os_rng};
use privet_he_service::proto::client_message::Body as In;
use privet_he_service::proto::server_message::Body as Out;
use privet_he_service::session::info_to_spec;
use privet_he_service::*;
use privet_ml::{Activation, ModelSpec, Network, OptimizerConfig, TrainConfig, TrainedModel};

fn trained(spec: ModelSpec, csv: &str, label: &str) -> TrainedModel {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(csv);
    let table = load_csv(&path, &CsvOptions::new(label)).unwrap();
    let rows: Vec<usize> = (0..table.num_rows()).collect();
    let encoder = Encoder::fit(&table, &rows).unwrap();
    let data = encoder.dataset(&table).unwrap();
    let network = Network::new(spec, data.x.cols, data.num_classes).unwrap();
    let all: Vec<u32> = (0..data.len() as u32).collect();
    let cfg = TrainConfig {
        epochs: 3,
        batch_size: 16,
        optimizer: OptimizerConfig::sgd(0.05),
        proximal_mu: None,
        seed: 1,
    };
    let (params, _) = network
        .train(&network.init(1), &data.x, &data.y, &all, &cfg)
        .unwrap();
    TrainedModel {
        network,
        params,
        encoder,
        label: label.into(),
        categorical: vec![],
    }
}

fn settings(packing: Packing, max: u64) -> ServerSettings {
    ServerSettings {
        packing,
        max_samples_per_session: max,
        max_message_bytes: 1 << 30,
    }
}

fn data_matrix(model: &TrainedModel, csv: &str) -> privet_data::Matrix {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../data")
        .join(csv);
    model.meta().encode_csv(&path).unwrap().0
}

#[test]
fn local_runs_match_the_plaintext_model() {
    let model = trained(ModelSpec::Logreg, "wine.csv", "cultivar");
    let x = data_matrix(&model, "wine.csv");
    let probs = model.predict_matrix(&x).unwrap();
    let k = model.network.num_classes();
    let plain: Vec<u32> = probs
        .chunks_exact(k)
        .map(|r| {
            r.iter()
                .enumerate()
                .fold(0, |b, (i, &p)| if p > r[b] { i } else { b }) as u32
        })
        .collect();
    for packing in [Packing::Single, Packing::Batch] {
        let core = Arc::new(ServerCore::new(&model, settings(packing, 0)).unwrap());
        let mut ch = LocalChannel::new(core.session());
        let o = infer(&mut ch, &x, &KeySource::Fresh).unwrap();
        assert_eq!(o.classes, plain, "{packing:?}");
        for (p, q) in o.probabilities.iter().zip(probs.chunks_exact(k)) {
            for (a, b) in p.iter().zip(q) {
                assert!((a - *b as f64).abs() < 1e-4);
            }
        }
        assert!(o.bytes_sent > 0 && o.bytes_received > 0 && o.key_bytes > 0);
        assert!(ch.server_time().as_nanos() > 0);
    }
}

fn call(s: &mut ServerSession, body: In) -> Out {
    s.handle(proto::ClientMessage { body: Some(body) })
        .body
        .unwrap()
}

fn refused(out: Out, needle: &str) {
    match out {
        Out::Error(e) => assert!(
            e.message.contains(needle),
            "{} does not contain {needle}",
            e.message
        ),
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn every_bad_request_is_refused_and_the_session_goes_on() {
    let model = trained(ModelSpec::Logreg, "breast_cancer.csv", "benign");
    let core = Arc::new(ServerCore::new(&model, settings(Packing::Single, 3)).unwrap());
    let mut s = core.session();
    assert!(
        s.handle(proto::ClientMessage { body: None })
            .body
            .is_some_and(|b| matches!(b, Out::Error(_)))
    );
    let info = match call(&mut s, In::GetModel(proto::GetModel {})) {
        Out::Model(m) => m,
        other => panic!("{other:?}"),
    };
    let (spec, _) = info_to_spec(&info).unwrap();
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: vec![vec![1u8].into()],
                samples: 1,
            }),
        ),
        "upload evaluation keys first",
    );
    refused(
        call(
            &mut s,
            In::UploadKeys(proto::UploadKeys {
                evaluation_keys: b"garbage".to_vec().into(),
            }),
        ),
        "decode",
    );
    let ctx = CkksContext::new(spec.params.clone()).unwrap();
    let mut rng = os_rng();
    let sk = SecretKey::generate(&ctx, &mut rng);
    // Keys without the needed rotations.
    let few = sk
        .evaluation_keys(&EvaluationKeyConfig::default(), &mut rng)
        .unwrap();
    refused(
        call(
            &mut s,
            In::UploadKeys(proto::UploadKeys {
                evaluation_keys: few.to_bytes(&ctx).unwrap().into(),
            }),
        ),
        "missing evaluation key",
    );
    let keys = sk.evaluation_keys(&spec.key_config(), &mut rng).unwrap();
    let kb = keys.to_bytes(&ctx).unwrap();
    assert!(matches!(
        call(
            &mut s,
            In::UploadKeys(proto::UploadKeys {
                evaluation_keys: kb.clone().into()
            })
        ),
        Out::KeysAccepted(_)
    ));
    refused(
        call(
            &mut s,
            In::UploadKeys(proto::UploadKeys {
                evaluation_keys: kb.into(),
            }),
        ),
        "already uploaded",
    );
    let client = privet_he::inference::HeClient::new(sk, spec.clone()).unwrap();
    let x = vec![0.5; spec.input_dim];
    let ct = client.encrypt_single(&x, &mut rng).unwrap();
    let good = ct.to_bytes(&ctx).unwrap();
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: vec![],
                samples: 0,
            }),
        ),
        "0 ciphertexts",
    );
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: vec![good[..100].to_vec().into()],
                samples: 1,
            }),
        ),
        "truncated",
    );
    let low = Evaluator::without_keys(&ctx)
        .mod_drop_to(&ct, 0)
        .unwrap()
        .to_bytes(&ctx)
        .unwrap();
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: vec![low.into()],
                samples: 1,
            }),
        ),
        "invalid level",
    );
    let other = CkksContext::new(privet_he::CkksParameters::named(
        privet_he::ParameterSetName::N13Depth3,
    ))
    .unwrap();
    let foreign = SecretKey::generate(&other, &mut rng);
    let pt = privet_he::Encoder::new(&other)
        .encode(&[1.0], 1, 1e9)
        .unwrap();
    let fct = foreign
        .encrypt(&pt, &mut rng)
        .unwrap()
        .to_bytes(&other)
        .unwrap();
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: vec![fct.into()],
                samples: 1,
            }),
        ),
        "other parameters",
    );
    // After all that, real requests work, up to the cap of 3 samples.
    let two: Vec<bytes::Bytes> = vec![good.clone().into(), good.clone().into()];
    match call(
        &mut s,
        In::Infer(proto::InferRequest {
            ciphertexts: two,
            samples: 2,
        }),
    ) {
        Out::Infer(r) => assert_eq!(r.ciphertexts.len(), 2),
        other => panic!("{other:?}"),
    }
    let two: Vec<bytes::Bytes> = vec![good.clone().into(), good.into()];
    refused(
        call(
            &mut s,
            In::Infer(proto::InferRequest {
                ciphertexts: two,
                samples: 2,
            }),
        ),
        "at most 3 samples",
    );
    assert_eq!(s.samples(), 2);
}

#[test]
fn clients_refuse_weak_or_inconsistent_descriptions() {
    let model = trained(ModelSpec::Logreg, "breast_cancer.csv", "benign");
    let core = Arc::new(ServerCore::new(&model, settings(Packing::Batch, 0)).unwrap());
    let info = match call(&mut core.session(), In::GetModel(proto::GetModel {})) {
        Out::Model(m) => m,
        other => panic!("{other:?}"),
    };
    assert!(info_to_spec(&info).is_ok());
    // Parameters above the 128-bit table.
    let mut weak = info.clone();
    let p = weak.params.as_mut().unwrap();
    let primes = privet_he::params::generate_primes(8192, &[60, 60, 60, 60, 60]).unwrap();
    p.q = primes[..4].to_vec();
    p.p = primes[4..].to_vec();
    let e = info_to_spec(&weak).unwrap_err().to_string();
    assert!(e.contains("128-bit"), "{e}");
    let mut bad = info.clone();
    bad.packing = 9;
    assert!(info_to_spec(&bad).is_err());
    let mut bad = info.clone();
    bad.input_dim += 1;
    assert!(info_to_spec(&bad).is_err());
    let mut bad = info;
    bad.model_json = "{}".into();
    assert!(info_to_spec(&bad).is_err());
}

#[test]
fn relu_and_cnn_models_are_refused_with_a_hint() {
    let relu = trained(
        ModelSpec::Mlp {
            hidden: vec![4],
            activation: Activation::Relu,
        },
        "wine.csv",
        "cultivar",
    );
    let e = ServerCore::new(&relu, settings(Packing::Single, 0))
        .unwrap_err()
        .to_string();
    assert!(e.contains("activation = \"square\""), "{e}");
    let sq = trained(
        ModelSpec::Mlp {
            hidden: vec![4],
            activation: Activation::Square,
        },
        "wine.csv",
        "cultivar",
    );
    let core = ServerCore::new(&sq, settings(Packing::Single, 0)).unwrap();
    assert!(core.spec().relinearization);
    assert_eq!(core.spec().input_level, 3);
}
