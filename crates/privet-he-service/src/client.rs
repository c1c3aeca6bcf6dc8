//! The client's side of a session, over any [`Channel`]: fetch the model description, upload
//! evaluation keys, encrypt, ask, decrypt.

use std::path::{Path, PathBuf};
use std::time::Instant;

use privet_data::Matrix;
use privet_he::inference::{CircuitSpec, HeClient, Packing};
use privet_he::{
    Ciphertext, CkksContext, DecodeOptions, EvaluationKeys, HeError, SecretKey, os_rng,
};
use privet_ml::ModelMeta;
use zeroize::Zeroizing;

use crate::error::{HeServiceError, Result};
use crate::model::Output;
use crate::proto;
use crate::proto::client_message::Body as In;
use crate::proto::server_message::Body as Out;
use crate::session::info_to_spec;

/// A request/response channel to a server (in-process or over the network).
pub trait Channel {
    /// Sends one message and waits for the answer.
    fn call(&mut self, msg: proto::ClientMessage) -> Result<proto::ServerMessage>;
    /// Bytes sent and received so far (on the wire for network channels, encoded messages for
    /// the in-process one).
    fn bytes(&self) -> (u64, u64);
}

fn expect(msg: proto::ServerMessage) -> Result<Out> {
    match msg.body {
        Some(Out::Error(e)) => Err(HeServiceError::Remote(
            e.message.chars().take(500).collect(),
        )),
        Some(b) => Ok(b),
        None => Err(HeServiceError::Protocol("empty answer".into())),
    }
}

/// Fetches the model's public description.
pub fn fetch_model(channel: &mut dyn Channel) -> Result<(CircuitSpec, ModelMeta, u64)> {
    match expect(channel.call(proto::ClientMessage {
        body: Some(In::GetModel(proto::GetModel {})),
    })?)? {
        Out::Model(info) => {
            let (spec, meta) = info_to_spec(&info)?;
            Ok((spec, meta, info.max_samples))
        }
        _ => Err(HeServiceError::Protocol(
            "expected the model description".into(),
        )),
    }
}

/// Key files in a directory.
#[derive(Debug, Clone)]
pub struct KeyDir {
    dir: PathBuf,
}

/// Largest key file read.
const MAX_KEY_FILE: u64 = 1 << 30;

impl KeyDir {
    /// Keys under `dir`.
    pub fn new(dir: &Path) -> Self {
        Self {
            dir: dir.to_path_buf(),
        }
    }
    /// The secret key file (mode 0600).
    pub fn secret_path(&self) -> PathBuf {
        self.dir.join("secret.key")
    }
    /// The evaluation keys file (public: what the server receives).
    pub fn evaluation_path(&self) -> PathBuf {
        self.dir.join("evaluation.keys")
    }

    /// Generates a secret key and the evaluation keys of `spec`, and writes both (the secret
    /// key readable by the owner only).
    pub fn generate(&self, spec: &CircuitSpec) -> Result<(SecretKey, EvaluationKeys)> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| HeServiceError::Keys(format!("{}: {e}", self.dir.display())))?;
        let ctx = CkksContext::new(spec.params.clone())?;
        let mut rng = os_rng();
        let sk = SecretKey::generate(&ctx, &mut rng);
        let keys = sk.evaluation_keys(&spec.key_config(), &mut rng)?;
        let secret = sk.to_bytes();
        privet_files::write_atomic(&self.secret_path(), &secret, privet_files::Mode::Secret)?;
        privet_files::write_atomic(
            &self.evaluation_path(),
            &keys.to_bytes(&ctx)?,
            privet_files::Mode::Public,
        )?;
        Ok((sk, keys))
    }

    /// Loads the secret key for `spec`'s parameters, and the evaluation keys if they are there
    /// and cover `spec` (otherwise they are made from the secret key).
    pub fn load(&self, spec: &CircuitSpec) -> Result<(SecretKey, EvaluationKeys)> {
        let ctx = CkksContext::new(spec.params.clone())?;
        let path = self.secret_path();
        let bytes = Zeroizing::new(privet_files::read_limited(&path, MAX_KEY_FILE)?);
        let opts = DecodeOptions {
            max_bytes: MAX_KEY_FILE as usize,
            level: None,
        };
        let sk = SecretKey::from_bytes(&ctx, &bytes, &opts).map_err(|e| match e {
            HeError::Decode(privet_he::DecodeError::WrongParameters) => HeServiceError::Keys(format!(
                "{} was made for other parameters than this model's; run `privet he keygen` for it",
                path.display()
            )),
            e => HeServiceError::Keys(format!("{}: {e}", path.display())),
        })?;
        let eval_path = self.evaluation_path();
        let keys = match privet_files::read_limited(&eval_path, MAX_KEY_FILE) {
            Ok(b) => match EvaluationKeys::from_bytes(&ctx, &b, &opts) {
                Ok(k) if covers(&ctx, &k, spec) => Some(k),
                Ok(_) => None,
                Err(HeError::Decode(privet_he::DecodeError::WrongParameters)) => None,
                Err(e) => {
                    return Err(HeServiceError::Keys(format!(
                        "{}: {e}",
                        eval_path.display()
                    )));
                }
            },
            Err(_) => None,
        };
        let keys = match keys {
            Some(k) => k,
            None => sk.evaluation_keys(&spec.key_config(), &mut os_rng())?,
        };
        Ok((sk, keys))
    }
}

fn covers(ctx: &CkksContext, keys: &EvaluationKeys, spec: &CircuitSpec) -> bool {
    (!spec.relinearization || keys.relin().is_some())
        && spec
            .rotations
            .iter()
            .all(|&r| keys.galois(ctx.galois_element(r)).is_some())
}

/// Where the client's keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Fresh keys for this run (kept in memory only).
    Fresh,
    /// Keys from `privet he keygen --out DIR`.
    Dir(KeyDir),
}

/// The result of an encrypted run.
#[derive(Debug, Clone)]
pub struct InferOutcome {
    /// Scores per sample.
    pub scores: Vec<Vec<f64>>,
    /// Probabilities per sample.
    pub probabilities: Vec<Vec<f64>>,
    /// Predicted class per sample.
    pub classes: Vec<u32>,
    /// The circuit used.
    pub spec: CircuitSpec,
    /// Model metadata from the server.
    pub meta: ModelMeta,
    /// Wall time per sample, milliseconds, one value per request (single packing: one sample,
    /// from encryption to decryption; batch: a request's time divided by its samples).
    pub latency_ms: Vec<f64>,
    /// Bytes of the evaluation keys uploaded (once per session).
    pub key_bytes: u64,
    /// Bytes sent and received for the samples (keys excluded).
    pub bytes_sent: u64,
    /// Bytes received for the samples.
    pub bytes_received: u64,
    /// Total wall time of the inference (keys excluded), seconds.
    pub seconds: f64,
}

/// Runs encrypted inference for every row of `x` over `channel`.
pub fn infer(channel: &mut dyn Channel, x: &Matrix, keys: &KeySource) -> Result<InferOutcome> {
    let (spec, meta, max_samples) = fetch_model(channel)?;
    if x.cols != spec.input_dim {
        return Err(HeServiceError::Config(format!(
            "the data has {} encoded features, the model takes {}",
            x.cols, spec.input_dim
        )));
    }
    if max_samples > 0 && x.rows as u64 > max_samples {
        return Err(HeServiceError::Config(format!(
            "{} rows, but the server evaluates at most {max_samples} per session",
            x.rows
        )));
    }
    let (sk, eval_keys) = match keys {
        KeySource::Fresh => {
            let ctx = CkksContext::new(spec.params.clone())?;
            let mut rng = os_rng();
            let sk = SecretKey::generate(&ctx, &mut rng);
            let k = sk.evaluation_keys(&spec.key_config(), &mut rng)?;
            (sk, k)
        }
        KeySource::Dir(d) => d.load(&spec)?,
    };
    let client = HeClient::new(sk, spec.clone())?;
    let ctx = client.context().clone();
    let key_bytes = eval_keys.to_bytes(&ctx)?;
    let before = channel.bytes();
    match expect(channel.call(proto::ClientMessage {
        body: Some(In::UploadKeys(proto::UploadKeys {
            evaluation_keys: key_bytes.into(),
        })),
    })?)? {
        Out::KeysAccepted(_) => {}
        _ => {
            return Err(HeServiceError::Protocol(
                "expected the keys to be accepted".into(),
            ));
        }
    }
    let after_keys = channel.bytes();
    let output = Output::for_classes(meta.num_classes);
    let mut rng = os_rng();
    let rows: Vec<Vec<f64>> = (0..x.rows)
        .map(|r| {
            x.data[r * x.cols..(r + 1) * x.cols]
                .iter()
                .map(|&v| v as f64)
                .collect()
        })
        .collect();
    let opts = DecodeOptions {
        max_bytes: 1 << 30,
        level: None,
    };
    let decode = |b: &[u8]| Ciphertext::from_bytes(&ctx, b, &opts).map_err(HeServiceError::from);
    let start = Instant::now();
    let mut scores = Vec::with_capacity(x.rows);
    let mut latency_ms = Vec::new();
    match spec.packing {
        Packing::Single => {
            for row in &rows {
                let t = Instant::now();
                let ct = client.encrypt_single(row, &mut rng)?;
                let out = ask(channel, vec![ct.to_bytes(&ctx)?], 1)?;
                if out.len() != 1 {
                    return Err(HeServiceError::Protocol(
                        "expected one ciphertext back".into(),
                    ));
                }
                scores.push(client.decrypt_single(&decode(&out[0])?)?);
                latency_ms.push(t.elapsed().as_secs_f64() * 1e3);
            }
        }
        Packing::Batch => {
            for chunk in rows.chunks(spec.params.slots()) {
                let t = Instant::now();
                let cts = client.encrypt_batch(chunk, &mut rng)?;
                let bytes = cts
                    .iter()
                    .map(|c| c.to_bytes(&ctx))
                    .collect::<std::result::Result<Vec<_>, _>>()?;
                let out = ask(channel, bytes, chunk.len())?;
                let cts = out.iter().map(|b| decode(b)).collect::<Result<Vec<_>>>()?;
                scores.extend(client.decrypt_batch(&cts, chunk.len())?);
                latency_ms.push(t.elapsed().as_secs_f64() * 1e3 / chunk.len() as f64);
            }
        }
    }
    let seconds = start.elapsed().as_secs_f64();
    let end = channel.bytes();
    let probabilities = scores.iter().map(|s| output.probabilities(s)).collect();
    let classes = scores.iter().map(|s| output.class(s)).collect();
    Ok(InferOutcome {
        scores,
        probabilities,
        classes,
        spec,
        meta,
        latency_ms,
        key_bytes: (after_keys.0 - before.0),
        bytes_sent: end.0 - after_keys.0,
        bytes_received: end.1 - after_keys.1,
        seconds,
    })
}

fn ask(channel: &mut dyn Channel, cts: Vec<Vec<u8>>, samples: usize) -> Result<Vec<bytes::Bytes>> {
    let msg = proto::ClientMessage {
        body: Some(In::Infer(proto::InferRequest {
            ciphertexts: cts.into_iter().map(bytes::Bytes::from).collect(),
            samples: samples as u32,
        })),
    };
    match expect(channel.call(msg)?)? {
        Out::Infer(r) => Ok(r.ciphertexts),
        _ => Err(HeServiceError::Protocol(
            "expected an inference answer".into(),
        )),
    }
}
