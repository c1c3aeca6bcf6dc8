//! Encrypted inference for models made of dense layers and square activations (logistic and
//! softmax regression, MLPs with x^2 activations), from plain f64 weights.
//!
//! The client encrypts features, the server evaluates the layers on ciphertexts with its
//! evaluation keys only, and the client decrypts the scores (logits) and applies sigmoid or
//! softmax itself. Two packings:
//!
//! - [`Packing::Single`] (latency): one sample per ciphertext, its features replicated over the
//!   slots; each dense layer is a [`MatrixPlan`] (diagonal method, BSGS, hoisted rotations).
//! - [`Packing::Batch`] (throughput): one ciphertext per feature, holding that feature for up to
//!   N/2 samples; a dense layer is constant products and sums ([`batch_linear`]), with no
//!   rotation at all.
//!
//! Each dense layer and each square uses one level, so the parameters are chosen from the
//! model's depth ([`CircuitSpec::for_model`]). What the server learns: the number of
//! ciphertexts (so the number of samples in single packing, at most N/2 per ciphertext in batch
//! packing) and nothing about the values. What the client learns: the scores, hence (by many
//! queries) possibly the model; rate-limit the service if that matters.

use std::sync::Arc;

use rand::{CryptoRng, RngCore};

use crate::cipher::Ciphertext;
use crate::context::CkksContext;
use crate::encoding::Encoder;
use crate::error::{HeError, Result};
use crate::evaluator::Evaluator;
use crate::keys::{EvaluationKeyConfig, EvaluationKeys, SecretKey};
use crate::linear::{MatrixPlan, batch_linear, replicate};
use crate::params::{CircuitRequirements, CkksParameters};

/// One layer of a plain model.
#[derive(Debug, Clone, PartialEq)]
pub enum Layer {
    /// y = W x + b, W row-major (rows x cols).
    Dense {
        /// Outputs.
        rows: usize,
        /// Inputs.
        cols: usize,
        /// rows * cols weights, row-major.
        weights: Vec<f64>,
        /// rows biases.
        bias: Vec<f64>,
    },
    /// y = x^2, element-wise.
    Square,
}

/// A model as plain f64 layers (no dependency on how it was trained).
#[derive(Debug, Clone, PartialEq)]
pub struct PlainModel {
    input_dim: usize,
    layers: Vec<Layer>,
}

/// Largest layer width accepted.
pub const MAX_WIDTH: usize = 1 << 14;

impl PlainModel {
    /// Checks the layers chain: dense layers' shapes match, squares sit between dense layers,
    /// and the model ends with a dense layer.
    pub fn new(input_dim: usize, layers: Vec<Layer>) -> Result<Self> {
        let mut width = input_dim;
        if width == 0 || width > MAX_WIDTH {
            return Err(HeError::Shape(format!("input width {width}")));
        }
        for (i, l) in layers.iter().enumerate() {
            match l {
                Layer::Dense {
                    rows,
                    cols,
                    weights,
                    bias,
                } => {
                    if *cols != width || *rows == 0 || *rows > MAX_WIDTH {
                        return Err(HeError::Shape(format!(
                            "layer {i}: {rows} x {cols} after width {width}"
                        )));
                    }
                    if weights.len() != rows * cols || bias.len() != *rows {
                        return Err(HeError::Shape(format!(
                            "layer {i}: weights or bias of the wrong length"
                        )));
                    }
                    if weights.iter().chain(bias).any(|v| !v.is_finite()) {
                        return Err(HeError::ValueOutOfRange(format!(
                            "layer {i}: weights not finite"
                        )));
                    }
                    width = *rows;
                }
                Layer::Square => {
                    if i == 0 || matches!(layers[i - 1], Layer::Square) {
                        return Err(HeError::Shape(format!(
                            "layer {i}: a square must follow a dense layer"
                        )));
                    }
                }
            }
        }
        if !matches!(layers.last(), Some(Layer::Dense { .. })) {
            return Err(HeError::Shape(
                "the model must end with a dense layer".into(),
            ));
        }
        Ok(Self { input_dim, layers })
    }

    /// Input width.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Output width (scores).
    pub fn output_dim(&self) -> usize {
        self.layers
            .iter()
            .rev()
            .find_map(|l| match l {
                Layer::Dense { rows, .. } => Some(*rows),
                Layer::Square => None,
            })
            .unwrap_or(0)
    }

    /// The layers.
    pub fn layers(&self) -> &[Layer] {
        &self.layers
    }

    /// Levels consumed: one per layer.
    pub fn depth(&self) -> usize {
        self.layers.len()
    }

    /// The scores in f64 (the reference the encrypted result is compared with).
    pub fn eval_plain(&self, x: &[f64]) -> Vec<f64> {
        let mut h = x.to_vec();
        for l in &self.layers {
            h = match l {
                Layer::Dense {
                    rows,
                    cols,
                    weights,
                    bias,
                } => (0..*rows)
                    .map(|r| {
                        (0..*cols)
                            .map(|c| weights[r * cols + c] * h[c])
                            .sum::<f64>()
                            + bias[r]
                    })
                    .collect(),
                Layer::Square => h.iter().map(|v| v * v).collect(),
            };
        }
        h
    }
}

/// How samples are laid out in ciphertexts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Packing {
    /// One sample per ciphertext (latency).
    Single,
    /// One ciphertext per feature, up to N/2 samples each (throughput).
    Batch,
}

impl Packing {
    /// "single" or "batch".
    pub fn as_str(self) -> &'static str {
        match self {
            Packing::Single => "single",
            Packing::Batch => "batch",
        }
    }
}

/// What both sides must agree on: parameters, shapes, keys. Public.
#[derive(Debug, Clone, PartialEq)]
pub struct CircuitSpec {
    /// The CKKS parameters.
    pub params: CkksParameters,
    /// The packing.
    pub packing: Packing,
    /// Features per sample.
    pub input_dim: usize,
    /// Scores per sample.
    pub output_dim: usize,
    /// Level inputs are encrypted at (= the model's depth).
    pub input_level: usize,
    /// Rotation steps the server needs Galois keys for (single packing).
    pub rotations: Vec<i64>,
    /// Whether the server needs a relinearization key (square activations).
    pub relinearization: bool,
}

impl CircuitSpec {
    /// Parameters and keys for a model: the smallest secure ring that holds its depth, with the
    /// largest scale (40, 36, 33 or 30 bits, 20 bits above it for values) that fits N = 2^13.
    pub fn for_model(model: &PlainModel, packing: Packing) -> Result<Self> {
        let depth = model.depth() as u32;
        let mut params = None;
        for scale_bits in [40u32, 36, 33, 30] {
            let p = CkksParameters::for_circuit(CircuitRequirements {
                depth,
                scale_bits,
                integer_bits: 20,
            })?;
            if p.degree() == 8192 {
                params = Some(p);
                break;
            }
        }
        let params = match params {
            Some(p) => p,
            None => CkksParameters::for_circuit(CircuitRequirements {
                depth,
                scale_bits: 40,
                integer_bits: 20,
            })?,
        };
        Self::with_params(model, packing, params)
    }

    /// The spec for a model under given parameters.
    pub fn with_params(
        model: &PlainModel,
        packing: Packing,
        params: CkksParameters,
    ) -> Result<Self> {
        let depth = model.depth();
        if params.max_level() < depth {
            return Err(HeError::OutOfLevels(params.max_level()));
        }
        let relinearization = model.layers.iter().any(|l| matches!(l, Layer::Square));
        let mut rotations = Vec::new();
        if packing == Packing::Single {
            let ctx = CkksContext::new(params.clone())?;
            let ev = Evaluator::without_keys(&ctx);
            let mut level = depth;
            for l in &model.layers {
                if let Layer::Dense {
                    rows,
                    cols,
                    weights,
                    ..
                } = l
                {
                    // Shapes decide the rotations; a stand-in matrix avoids encoding the real one.
                    let plan =
                        MatrixPlan::new(&ev, &vec![1.0; weights.len()], *rows, *cols, None, level)?;
                    rotations.extend(plan.rotations());
                }
                level -= 1;
            }
            rotations.sort_unstable();
            rotations.dedup();
        }
        Ok(Self {
            params,
            packing,
            input_dim: model.input_dim,
            output_dim: model.output_dim(),
            input_level: depth,
            rotations,
            relinearization,
        })
    }

    /// The evaluation keys the client must generate for the server.
    pub fn key_config(&self) -> EvaluationKeyConfig {
        EvaluationKeyConfig {
            relinearization: self.relinearization,
            rotations: self.rotations.clone(),
            conjugation: false,
        }
    }

    /// Samples per ciphertext (batch packing: N/2; single: 1).
    pub fn samples_per_request(&self) -> usize {
        match self.packing {
            Packing::Single => 1,
            Packing::Batch => self.params.slots(),
        }
    }
}

/// The server side: evaluates the model on ciphertexts with evaluation keys only.
#[derive(Debug)]
pub struct HeServer {
    ev: Evaluator,
    model: PlainModel,
    spec: CircuitSpec,
    plans: Vec<Option<MatrixPlan>>,
}

impl HeServer {
    /// Prepares the model's layers for a context and the client's evaluation keys.
    pub fn new(
        ctx: &Arc<CkksContext>,
        keys: Arc<EvaluationKeys>,
        model: PlainModel,
        spec: CircuitSpec,
    ) -> Result<Self> {
        if ctx.params() != &spec.params {
            return Err(HeError::ParameterMismatch);
        }
        let ev = Evaluator::new(ctx, keys)?;
        if spec.relinearization && ev.keys().relin().is_none() {
            return Err(HeError::MissingKey(
                "relinearization (the model squares)".into(),
            ));
        }
        for &r in &spec.rotations {
            if ev.keys().galois(ctx.galois_element(r)).is_none() {
                return Err(HeError::MissingKey(format!("rotation by {r}")));
            }
        }
        let mut plans = Vec::with_capacity(model.layers.len());
        let mut level = spec.input_level;
        for l in &model.layers {
            plans.push(match (l, spec.packing) {
                (
                    Layer::Dense {
                        rows,
                        cols,
                        weights,
                        bias,
                    },
                    Packing::Single,
                ) => Some(MatrixPlan::new(
                    &ev,
                    weights,
                    *rows,
                    *cols,
                    Some(bias),
                    level,
                )?),
                _ => None,
            });
            level -= 1;
        }
        Ok(Self {
            ev,
            model,
            spec,
            plans,
        })
    }

    /// The circuit spec (what the client needs to know).
    pub fn spec(&self) -> &CircuitSpec {
        &self.spec
    }

    fn check_input(&self, ct: &Ciphertext) -> Result<()> {
        if ct.level() != self.spec.input_level {
            return Err(HeError::LevelMismatch {
                left: ct.level(),
                right: self.spec.input_level,
            });
        }
        if ct.size() != 2 {
            return Err(HeError::NotRelinearized(ct.size()));
        }
        Ok(())
    }

    fn square(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.ev.rescale(&self.ev.square(ct)?)
    }

    /// Single packing: one ciphertext per sample in, one per sample out (scores in the first
    /// output_dim slots). Samples run in parallel.
    pub fn evaluate_single(&self, inputs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        if self.spec.packing != Packing::Single {
            return Err(HeError::Shape(
                "this server evaluates batch-packed inputs".into(),
            ));
        }
        let one = |ct: &Ciphertext| -> Result<Ciphertext> {
            self.check_input(ct)?;
            let mut h = ct.clone();
            for (l, plan) in self.model.layers.iter().zip(&self.plans) {
                h = match (l, plan) {
                    (Layer::Square, _) => self.square(&h)?,
                    (_, Some(plan)) => plan.apply(&self.ev, &h)?,
                    (_, None) => return Err(HeError::Shape("layer without a plan".into())),
                };
            }
            Ok(h)
        };
        use rayon::prelude::*;
        if inputs.len() > 1 && rayon::current_num_threads() > 1 {
            inputs.par_iter().map(one).collect()
        } else {
            inputs.iter().map(one).collect()
        }
    }

    /// Batch packing: input_dim ciphertexts in (feature c of every sample), output_dim out.
    pub fn evaluate_batch(&self, inputs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        if self.spec.packing != Packing::Batch {
            return Err(HeError::Shape(
                "this server evaluates single-sample inputs".into(),
            ));
        }
        if inputs.len() != self.spec.input_dim {
            return Err(HeError::Shape(format!(
                "{} ciphertexts for {} features",
                inputs.len(),
                self.spec.input_dim
            )));
        }
        for ct in inputs {
            self.check_input(ct)?;
        }
        let mut h = inputs.to_vec();
        for l in &self.model.layers {
            h = match l {
                Layer::Dense {
                    rows,
                    weights,
                    bias,
                    ..
                } => batch_linear(&self.ev, &h, weights, *rows, Some(bias))?,
                Layer::Square => {
                    use rayon::prelude::*;
                    h.par_iter()
                        .map(|c| self.square(c))
                        .collect::<Result<Vec<_>>>()?
                }
            };
        }
        Ok(h)
    }

    /// Evaluates a request in the spec's packing.
    pub fn evaluate(&self, inputs: &[Ciphertext]) -> Result<Vec<Ciphertext>> {
        match self.spec.packing {
            Packing::Single => self.evaluate_single(inputs),
            Packing::Batch => self.evaluate_batch(inputs),
        }
    }
}

/// The client side: holds the secret key, encrypts features, decrypts scores.
#[derive(Debug)]
pub struct HeClient {
    ctx: Arc<CkksContext>,
    sk: SecretKey,
    enc: Encoder,
    spec: CircuitSpec,
}

impl HeClient {
    /// A client for a spec with its secret key (the key must belong to the spec's parameters).
    pub fn new(sk: SecretKey, spec: CircuitSpec) -> Result<Self> {
        let ctx = sk.context().clone();
        if ctx.params() != &spec.params {
            return Err(HeError::ParameterMismatch);
        }
        Ok(Self {
            enc: Encoder::new(&ctx),
            ctx,
            sk,
            spec,
        })
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The spec.
    pub fn spec(&self) -> &CircuitSpec {
        &self.spec
    }

    /// The evaluation keys to send to the server.
    pub fn evaluation_keys<R: RngCore + CryptoRng>(&self, rng: &mut R) -> Result<EvaluationKeys> {
        self.sk.evaluation_keys(&self.spec.key_config(), rng)
    }

    fn check_row(&self, x: &[f64]) -> Result<()> {
        if x.len() != self.spec.input_dim {
            return Err(HeError::Shape(format!(
                "{} features, the model takes {}",
                x.len(),
                self.spec.input_dim
            )));
        }
        if x.iter().any(|v| !v.is_finite()) {
            return Err(HeError::ValueOutOfRange("a feature is not finite".into()));
        }
        Ok(())
    }

    /// Single packing: one sample, replicated over the slots, encrypted with the secret key
    /// (seeded, so it travels at half size).
    pub fn encrypt_single<R: RngCore + CryptoRng>(
        &self,
        x: &[f64],
        rng: &mut R,
    ) -> Result<Ciphertext> {
        self.check_row(x)?;
        let v = replicate(x, self.ctx.slots())?;
        let pt = self
            .enc
            .encode(&v, self.spec.input_level, self.ctx.params().default_scale())?;
        self.sk.encrypt(&pt, rng)
    }

    /// Batch packing: up to N/2 samples, one ciphertext per feature.
    pub fn encrypt_batch<R: RngCore + CryptoRng>(
        &self,
        rows: &[Vec<f64>],
        rng: &mut R,
    ) -> Result<Vec<Ciphertext>> {
        if rows.is_empty() || rows.len() > self.ctx.slots() {
            return Err(HeError::TooManyValues {
                given: rows.len(),
                slots: self.ctx.slots(),
            });
        }
        for r in rows {
            self.check_row(r)?;
        }
        let scale = self.ctx.params().default_scale();
        (0..self.spec.input_dim)
            .map(|c| {
                let col: Vec<f64> = rows.iter().map(|r| r[c]).collect();
                let pt = self.enc.encode(&col, self.spec.input_level, scale)?;
                self.sk.encrypt(&pt, rng)
            })
            .collect()
    }

    /// Single packing: the scores of one sample.
    pub fn decrypt_single(&self, ct: &Ciphertext) -> Result<Vec<f64>> {
        let v = self.enc.decode(&self.sk.decrypt(ct)?)?;
        Ok(v[..self.spec.output_dim].to_vec())
    }

    /// Batch packing: the scores of `samples` samples from output_dim ciphertexts.
    pub fn decrypt_batch(&self, cts: &[Ciphertext], samples: usize) -> Result<Vec<Vec<f64>>> {
        if cts.len() != self.spec.output_dim || samples > self.ctx.slots() {
            return Err(HeError::Shape(format!(
                "{} ciphertexts for {} scores",
                cts.len(),
                self.spec.output_dim
            )));
        }
        let cols = cts
            .iter()
            .map(|c| self.enc.decode(&self.sk.decrypt(c)?))
            .collect::<Result<Vec<_>>>()?;
        Ok((0..samples)
            .map(|s| cols.iter().map(|c| c[s]).collect())
            .collect())
    }
}
