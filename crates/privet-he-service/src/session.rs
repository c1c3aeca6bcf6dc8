//! The protocol as plain functions of messages: no sockets, threads or clocks. The gRPC service
//! and the in-process runner drive the same [`ServerSession`].

use std::sync::Arc;

use privet_he::inference::{CircuitSpec, HeServer, Packing, PlainModel};
use privet_he::{Ciphertext, CkksContext, CkksParameters, DecodeOptions, EvaluationKeys, HeError};
use privet_ml::{ModelMeta, TrainedModel};

use crate::error::{HeServiceError, Result};
use crate::model::plain_model;
use crate::proto;
use crate::proto::client_message::Body as In;
use crate::proto::server_message::Body as Out;

/// Most ciphertexts in one request.
pub const MAX_CIPHERTEXTS_PER_REQUEST: usize = 4096;

/// What the server holds for every session: the model, its circuit and its public description.
#[derive(Debug)]
pub struct ServerCore {
    ctx: Arc<CkksContext>,
    model: PlainModel,
    spec: CircuitSpec,
    info: proto::ModelInfo,
    max_bytes: usize,
}

/// Server settings.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerSettings {
    /// The packing offered.
    pub packing: Packing,
    /// Most samples one session may have evaluated (0: no limit): a brake on model extraction.
    pub max_samples_per_session: u64,
    /// Largest message (keys included) accepted.
    pub max_message_bytes: usize,
}

impl ServerCore {
    /// Prepares a trained model for encrypted inference.
    pub fn new(model: &TrainedModel, settings: ServerSettings) -> Result<Self> {
        let plain = plain_model(model)?;
        let spec = CircuitSpec::for_model(&plain, settings.packing)?;
        let ctx = CkksContext::new(spec.params.clone())?;
        let meta_json = serde_json::to_string(&model.meta())
            .map_err(|e| HeServiceError::Model(format!("metadata: {e}")))?;
        let info = spec_to_info(&spec, meta_json, settings.max_samples_per_session);
        Ok(Self {
            ctx,
            model: plain,
            spec,
            info,
            max_bytes: settings.max_message_bytes,
        })
    }

    /// The circuit.
    pub fn spec(&self) -> &CircuitSpec {
        &self.spec
    }

    /// A new session (one per client stream).
    pub fn session(self: &Arc<Self>) -> ServerSession {
        ServerSession {
            core: Arc::clone(self),
            server: None,
            samples: 0,
        }
    }
}

/// The public description sent to clients.
pub fn spec_to_info(spec: &CircuitSpec, model_json: String, max_samples: u64) -> proto::ModelInfo {
    proto::ModelInfo {
        model_json,
        params: Some(proto::Parameters {
            log_n: spec.params.log_degree(),
            q: spec.params.q().to_vec(),
            p: spec.params.p().to_vec(),
            scale_bits: spec.params.scale_bits(),
        }),
        packing: match spec.packing {
            Packing::Single => proto::Packing::Single as i32,
            Packing::Batch => proto::Packing::Batch as i32,
        },
        input_dim: spec.input_dim as u32,
        output_dim: spec.output_dim as u32,
        input_level: spec.input_level as u32,
        rotations: spec.rotations.clone(),
        relinearization: spec.relinearization,
        max_samples,
    }
}

/// Checks a server's description: the parameters must pass the 128-bit security check (a
/// hostile server cannot talk a client into weak parameters), the shapes must agree with the
/// model metadata.
pub fn info_to_spec(info: &proto::ModelInfo) -> Result<(CircuitSpec, ModelMeta)> {
    let bad = |m: &str| HeServiceError::Protocol(format!("model description: {m}"));
    let p = info.params.as_ref().ok_or_else(|| bad("no parameters"))?;
    if p.q.len() > 64 || p.p.len() > 64 {
        return Err(bad("too many primes"));
    }
    let params = CkksParameters::from_primes(p.log_n, p.q.clone(), p.p.clone(), p.scale_bits)
        .map_err(|e| {
            HeServiceError::Protocol(format!("the server's parameters are refused: {e}"))
        })?;
    let packing = match proto::Packing::try_from(info.packing) {
        Ok(proto::Packing::Single) => Packing::Single,
        Ok(proto::Packing::Batch) => Packing::Batch,
        _ => return Err(bad("unknown packing")),
    };
    let meta = ModelMeta::parse(
        info.model_json.as_bytes(),
        std::path::Path::new("<server model.json>"),
    )?;
    if meta.input_dim != info.input_dim as usize {
        return Err(bad("input width differs from the model metadata"));
    }
    if (info.input_level as usize) > params.max_level() || info.rotations.len() > 256 {
        return Err(bad("input level or rotations out of range"));
    }
    let slots = params.slots() as i64;
    if info.rotations.iter().any(|r| r.abs() >= slots) {
        return Err(bad("rotation out of range"));
    }
    let spec = CircuitSpec {
        params,
        packing,
        input_dim: info.input_dim as usize,
        output_dim: info.output_dim as usize,
        input_level: info.input_level as usize,
        rotations: info.rotations.clone(),
        relinearization: info.relinearization,
    };
    Ok((spec, meta))
}

/// One client's session on the server.
#[derive(Debug)]
pub struct ServerSession {
    core: Arc<ServerCore>,
    server: Option<HeServer>,
    samples: u64,
}

fn refusal(message: impl Into<String>) -> proto::ServerMessage {
    proto::ServerMessage {
        body: Some(Out::Error(proto::Error {
            message: message.into(),
        })),
    }
}

impl ServerSession {
    /// Answers one message. Every refusal is decided here and says what was wrong with the
    /// request, nothing about the server's internals.
    pub fn handle(&mut self, msg: proto::ClientMessage) -> proto::ServerMessage {
        match self.try_handle(msg) {
            Ok(m) => m,
            Err(e) => refusal(match e {
                HeServiceError::He(h) => h.to_string(),
                HeServiceError::Protocol(m) => m,
                _ => "request refused".to_string(),
            }),
        }
    }

    /// Samples evaluated so far.
    pub fn samples(&self) -> u64 {
        self.samples
    }

    fn try_handle(&mut self, msg: proto::ClientMessage) -> Result<proto::ServerMessage> {
        let core = &self.core;
        let body = msg
            .body
            .ok_or_else(|| HeServiceError::Protocol("empty message".into()))?;
        let out = match body {
            In::GetModel(_) => Out::Model(core.info.clone()),
            In::UploadKeys(k) => {
                if self.server.is_some() {
                    return Err(HeServiceError::Protocol(
                        "evaluation keys were already uploaded".into(),
                    ));
                }
                let opts = DecodeOptions {
                    max_bytes: core.max_bytes,
                    level: None,
                };
                let keys = EvaluationKeys::from_bytes(&core.ctx, &k.evaluation_keys, &opts)?;
                let server = HeServer::new(
                    &core.ctx,
                    Arc::new(keys),
                    core.model.clone(),
                    core.spec.clone(),
                )?;
                self.server = Some(server);
                Out::KeysAccepted(proto::KeysAccepted {})
            }
            In::Infer(req) => {
                let server = self.server.as_ref().ok_or_else(|| {
                    HeServiceError::Protocol("upload evaluation keys first".into())
                })?;
                let n = req.ciphertexts.len();
                if n == 0 || n > MAX_CIPHERTEXTS_PER_REQUEST {
                    return Err(HeServiceError::Protocol(format!(
                        "{n} ciphertexts (1 to {MAX_CIPHERTEXTS_PER_REQUEST} per request)"
                    )));
                }
                let samples = match core.spec.packing {
                    Packing::Single => n as u64,
                    Packing::Batch => {
                        if req.samples == 0 || req.samples as usize > core.spec.params.slots() {
                            return Err(HeServiceError::Protocol(
                                "sample count out of range".into(),
                            ));
                        }
                        req.samples as u64
                    }
                };
                let max = core.info.max_samples;
                if max > 0 && self.samples + samples > max {
                    return Err(HeServiceError::Protocol(format!(
                        "this session may evaluate at most {max} samples"
                    )));
                }
                let opts = DecodeOptions {
                    max_bytes: core.max_bytes,
                    level: Some(core.spec.input_level),
                };
                let cts = req
                    .ciphertexts
                    .iter()
                    .map(|b| Ciphertext::from_bytes(&core.ctx, b, &opts))
                    .collect::<std::result::Result<Vec<_>, HeError>>()?;
                let out = server.evaluate(&cts)?;
                self.samples += samples;
                let ciphertexts = out
                    .iter()
                    .map(|c| c.to_bytes(&core.ctx).map(bytes::Bytes::from))
                    .collect::<std::result::Result<Vec<_>, HeError>>()?;
                Out::Infer(proto::InferResponse {
                    ciphertexts,
                    eval_micros: 0,
                })
            }
        };
        Ok(proto::ServerMessage { body: Some(out) })
    }
}
