//! A model architecture bound to its input and output sizes: forward pass, loss, training and
//! evaluation on candle tensors.

use candle_core::{D, DType, Device, Tensor, Var};
use privet_data::Matrix;
use rand::SeedableRng;
use rand::seq::SliceRandom;
use rand_chacha::ChaCha20Rng;

use crate::error::{MlError, shape_err};
use crate::linear;
use crate::metrics::{EvalMetrics, evaluate_scores};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::spec::{Activation, CNN_C1, CNN_C2, CNN_SIDE, ModelSpec, ParamLayout, output_units};

/// Rows per forward pass during evaluation and prediction.
const EVAL_CHUNK: usize = 4096;

/// Called after each epoch with the epoch number (from 1), the parameters and the statistics.
pub type EpochCallback<'a> = dyn FnMut(usize, &[f32], &TrainStats) -> Result<(), MlError> + 'a;

/// How one client (or a centralized baseline) trains locally.
#[derive(Debug, Clone, PartialEq)]
pub struct TrainConfig {
    /// Passes over the local data.
    pub epochs: usize,
    /// Minibatch size; the last batch of an epoch may be smaller.
    pub batch_size: usize,
    /// The optimizer and its learning rate.
    pub optimizer: OptimizerConfig,
    /// FedProx: adds `mu/2 * ||w - w_global||^2` to the local objective.
    pub proximal_mu: Option<f32>,
    /// Seed of the per-epoch shuffles.
    pub seed: u64,
}

impl TrainConfig {
    fn validate(&self) -> Result<(), MlError> {
        if self.epochs == 0 || self.batch_size == 0 {
            return Err(MlError::InvalidConfig(
                "epochs and batch_size must be at least 1".into(),
            ));
        }
        if let Some(mu) = self.proximal_mu
            && !(mu.is_finite() && mu >= 0.0)
        {
            return Err(MlError::InvalidConfig(format!(
                "proximal mu must be >= 0, got {mu}"
            )));
        }
        self.optimizer.validate()
    }
}

/// What local training reports back.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct TrainStats {
    /// Mean training loss over the last epoch (per example).
    pub loss: f32,
    /// Examples in the local data set.
    pub num_examples: u64,
    /// Optimizer steps taken.
    pub steps: u64,
}

/// An architecture for a fixed input width and number of classes.
#[derive(Debug, Clone)]
pub struct Network {
    spec: ModelSpec,
    layout: ParamLayout,
    input_dim: usize,
    num_classes: usize,
    device: Device,
}

/// Labels of one minibatch in the form the loss wants.
enum Targets {
    /// `[B]` f32 zeros and ones for a single-logit binary model.
    Binary(Tensor),
    /// `[B]` u32 class indices.
    Classes(Tensor),
}

impl Network {
    /// Builds the network for `input_dim` features and `num_classes` classes (on the CPU).
    pub fn new(spec: ModelSpec, input_dim: usize, num_classes: usize) -> Result<Self, MlError> {
        let layout = ParamLayout::new(&spec, input_dim, num_classes)?;
        Ok(Network {
            spec,
            layout,
            input_dim,
            num_classes,
            device: Device::Cpu,
        })
    }

    /// The architecture.
    pub fn spec(&self) -> &ModelSpec {
        &self.spec
    }

    /// The parameter layout.
    pub fn layout(&self) -> &ParamLayout {
        &self.layout
    }

    /// Number of input features.
    pub fn input_dim(&self) -> usize {
        self.input_dim
    }

    /// Number of classes.
    pub fn num_classes(&self) -> usize {
        self.num_classes
    }

    /// Number of parameters.
    pub fn num_params(&self) -> usize {
        self.layout.num_params()
    }

    /// Seeded initial parameters.
    pub fn init(&self, seed: u64) -> Vec<f32> {
        self.layout.init(&self.spec, seed)
    }

    fn tensors(&self, params: &[f32]) -> Result<Vec<Tensor>, MlError> {
        self.layout
            .entries()
            .iter()
            .map(|e| {
                Tensor::from_slice(
                    &params[e.offset..e.offset + e.len()],
                    e.shape.as_slice(),
                    &self.device,
                )
                .map_err(MlError::from)
            })
            .collect()
    }

    /// Logits `[B, out]` for a `[B, input_dim]` batch.
    fn forward(&self, p: &[Tensor], x: &Tensor) -> Result<Tensor, MlError> {
        let linear = |x: &Tensor, w: &Tensor, b: &Tensor| -> candle_core::Result<Tensor> {
            x.matmul(&w.t()?)?.broadcast_add(b)
        };
        let out = match &self.spec {
            ModelSpec::Logreg => linear(x, &p[0], &p[1])?,
            ModelSpec::Mlp { hidden, activation } => {
                let mut h = x.clone();
                for i in 0..hidden.len() {
                    let z = linear(&h, &p[2 * i], &p[2 * i + 1])?;
                    h = match activation {
                        Activation::Relu => z.relu()?,
                        Activation::Square => z.sqr()?,
                    };
                }
                let k = hidden.len();
                linear(&h, &p[2 * k], &p[2 * k + 1])?
            }
            ModelSpec::Cnn => {
                let b = x.dim(0)?;
                let img = x.reshape((b, 1, CNN_SIDE, CNN_SIDE))?;
                let conv = |x: &Tensor, w: &Tensor, bias: &Tensor| -> candle_core::Result<Tensor> {
                    let c = bias.dim(0)?;
                    x.conv2d(w, 1, 1, 1, 1)?
                        .broadcast_add(&bias.reshape((1, c, 1, 1))?)
                };
                let h = conv(&img, &p[0], &p[1])?.relu()?.max_pool2d(2)?;
                debug_assert_eq!(h.dims()[1], CNN_C1);
                let h = conv(&h, &p[2], &p[3])?.relu()?.max_pool2d(2)?;
                let h = h.reshape((b, CNN_C2 * 4))?;
                linear(&h, &p[4], &p[5])?
            }
        };
        Ok(out)
    }

    /// Mean loss of logits against targets (numerically stable forms).
    fn loss(&self, logits: &Tensor, targets: &Targets) -> Result<Tensor, MlError> {
        Ok(match targets {
            Targets::Binary(y) => {
                // softplus(z) - y z, with softplus(z) = max(z, 0) + ln(1 + e^-|z|)
                let z = logits.squeeze(1)?;
                let softplus = (z.relu()? + (z.abs()?.neg()?.exp()? + 1.0)?.log()?)?;
                (softplus - (z * y)?)?.mean_all()?
            }
            Targets::Classes(y) => candle_nn::loss::cross_entropy(logits, y)?,
        })
    }

    fn batch(&self, x: &Matrix, y: &[u32], rows: &[u32]) -> Result<(Tensor, Targets), MlError> {
        let d = self.input_dim;
        let mut xs = Vec::with_capacity(rows.len() * d);
        for &r in rows {
            xs.extend_from_slice(x.row(r as usize));
        }
        let xt = Tensor::from_vec(xs, (rows.len(), d), &self.device)?;
        let targets = if self.num_classes == 2 {
            let ys: Vec<f32> = rows.iter().map(|&r| y[r as usize] as f32).collect();
            Targets::Binary(Tensor::from_vec(ys, rows.len(), &self.device)?)
        } else {
            let ys: Vec<u32> = rows.iter().map(|&r| y[r as usize]).collect();
            Targets::Classes(Tensor::from_vec(ys, rows.len(), &self.device)?)
        };
        Ok((xt, targets))
    }

    pub(crate) fn check_data(&self, x: &Matrix, y: &[u32], rows: &[u32]) -> Result<(), MlError> {
        if x.cols != self.input_dim {
            return Err(shape_err(format!(
                "the model takes {} features, the data has {}",
                self.input_dim, x.cols
            )));
        }
        if y.len() != x.rows {
            return Err(shape_err(format!("{} labels for {} rows", y.len(), x.rows)));
        }
        if let Some(&r) = rows.iter().find(|&&r| r as usize >= x.rows) {
            return Err(shape_err(format!(
                "row {r} is out of range ({} rows)",
                x.rows
            )));
        }
        if let Some(&c) = rows
            .iter()
            .map(|&r| &y[r as usize])
            .find(|&&c| c as usize >= self.num_classes)
        {
            return Err(shape_err(format!(
                "label {c} is out of range ({} classes)",
                self.num_classes
            )));
        }
        Ok(())
    }

    /// Trains from `params` on the rows `rows` of `(x, y)` (an index view: rows are not copied
    /// beyond one minibatch) and returns the new parameters.
    pub fn train(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
        cfg: &TrainConfig,
    ) -> Result<(Vec<f32>, TrainStats), MlError> {
        self.train_with(params, x, y, rows, cfg, &mut |_, _, _| Ok(()))
    }

    /// [`Network::train`], calling `on_epoch(epoch, params, stats)` after each epoch (from 1).
    pub fn train_with(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
        cfg: &TrainConfig,
        on_epoch: &mut EpochCallback<'_>,
    ) -> Result<(Vec<f32>, TrainStats), MlError> {
        cfg.validate()?;
        self.layout.check(params)?;
        self.check_data(x, y, rows)?;
        if rows.is_empty() {
            return Ok((params.to_vec(), TrainStats::default()));
        }
        let mut w = params.to_vec();
        let mut grad = vec![0f32; w.len()];
        let mut opt = Optimizer::new(cfg.optimizer.clone())?;
        let mut order: Vec<u32> = rows.to_vec();
        let mut rng = ChaCha20Rng::seed_from_u64(cfg.seed);
        let mut stats = TrainStats {
            num_examples: rows.len() as u64,
            ..Default::default()
        };
        let out_units = output_units(self.num_classes);
        let mut logits = vec![0f32; out_units];
        let mu = cfg.proximal_mu.filter(|&mu| mu > 0.0);
        for epoch in 1..=cfg.epochs {
            order.shuffle(&mut rng);
            let mut epoch_loss = 0f64;
            for chunk in order.chunks(cfg.batch_size) {
                let batch_loss = if self.spec == ModelSpec::Logreg {
                    let batch = chunk.iter().map(|&r| (x.row(r as usize), y[r as usize]));
                    let (sum, _) = linear::loss_and_grad(
                        &w,
                        out_units,
                        self.input_dim,
                        batch,
                        &mut grad,
                        &mut logits,
                    );
                    sum
                } else {
                    self.candle_loss_and_grad(&w, x, y, chunk, &mut grad)? * chunk.len() as f64
                };
                if !batch_loss.is_finite() {
                    return Err(MlError::Diverged);
                }
                epoch_loss += batch_loss;
                if let Some(mu) = mu {
                    // FedProx: d/dw mu/2 ||w - w_global||^2 = mu (w - w_global)
                    for ((g, wi), w0) in grad.iter_mut().zip(&w).zip(params) {
                        *g += mu * (wi - w0);
                    }
                }
                opt.step(&mut w, &grad);
                stats.steps += 1;
            }
            stats.loss = (epoch_loss / rows.len() as f64) as f32;
            if w.iter().any(|p| !p.is_finite()) {
                return Err(MlError::Diverged);
            }
            on_epoch(epoch, &w, &stats)?;
        }
        Ok((w, stats))
    }

    /// Mean loss of one minibatch by candle's autograd; writes the flat gradient into `grad`.
    fn candle_loss_and_grad(
        &self,
        w: &[f32],
        x: &Matrix,
        y: &[u32],
        chunk: &[u32],
        grad: &mut [f32],
    ) -> Result<f64, MlError> {
        let vars: Vec<Var> = self
            .tensors(w)?
            .into_iter()
            .map(|t| Var::from_tensor(&t))
            .collect::<candle_core::Result<_>>()?;
        let tensors: Vec<Tensor> = vars.iter().map(|v| v.as_tensor().clone()).collect();
        let (xb, yb) = self.batch(x, y, chunk)?;
        let loss = self.loss(&self.forward(&tensors, &xb)?, &yb)?;
        let value = f64::from(loss.to_scalar::<f32>()?);
        let grads = loss.backward()?;
        for (e, v) in self.layout.entries().iter().zip(&vars) {
            let dst = &mut grad[e.offset..e.offset + e.len()];
            match grads.get(v) {
                Some(g) => dst.copy_from_slice(&g.flatten_all()?.to_vec1::<f32>()?),
                None => dst.iter_mut().for_each(|g| *g = 0.0),
            }
        }
        Ok(value)
    }

    /// Mean loss and flat gradient of one minibatch by candle's autograd, for any architecture
    /// (tests compare the fused linear kernel against it).
    pub fn loss_and_grad_autograd(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
    ) -> Result<(f64, Vec<f32>), MlError> {
        self.layout.check(params)?;
        self.check_data(x, y, rows)?;
        let mut grad = vec![0f32; params.len()];
        let loss = self.candle_loss_and_grad(params, x, y, rows, &mut grad)?;
        Ok((loss, grad))
    }

    /// Mean loss and flat gradient of one minibatch by the path training uses (the fused kernel
    /// for logistic regression, autograd otherwise).
    pub fn loss_and_grad(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
    ) -> Result<(f64, Vec<f32>), MlError> {
        if self.spec != ModelSpec::Logreg {
            return self.loss_and_grad_autograd(params, x, y, rows);
        }
        self.layout.check(params)?;
        self.check_data(x, y, rows)?;
        let mut grad = vec![0f32; params.len()];
        let mut logits = vec![0f32; output_units(self.num_classes)];
        let batch = rows.iter().map(|&r| (x.row(r as usize), y[r as usize]));
        let (sum, n) = linear::loss_and_grad(
            params,
            logits.len(),
            self.input_dim,
            batch,
            &mut grad,
            &mut logits,
        );
        Ok((sum / n.max(1) as f64, grad))
    }

    /// Class probabilities, row-major `[rows, num_classes]`.
    pub fn predict_proba(&self, params: &[f32], x: &Matrix) -> Result<Vec<f32>, MlError> {
        self.layout.check(params)?;
        if x.cols != self.input_dim {
            return Err(shape_err(format!(
                "the model takes {} features, the data has {}",
                self.input_dim, x.cols
            )));
        }
        let mut out = Vec::with_capacity(x.rows * self.num_classes);
        if self.spec == ModelSpec::Logreg {
            linear::predict_proba(
                params,
                output_units(self.num_classes),
                self.input_dim,
                &x.data,
                &mut out,
            );
            return Ok(out);
        }
        let p = self.tensors(params)?;
        for start in (0..x.rows).step_by(EVAL_CHUNK) {
            let end = (start + EVAL_CHUNK).min(x.rows);
            let xs = Tensor::from_slice(
                &x.data[start * x.cols..end * x.cols],
                (end - start, x.cols),
                &self.device,
            )?;
            let logits = self.forward(&p, &xs)?;
            if output_units(self.num_classes) == 1 {
                let p1 = candle_nn::ops::sigmoid(&logits.squeeze(1)?)?.to_vec1::<f32>()?;
                for q in p1 {
                    out.push(1.0 - q);
                    out.push(q);
                }
            } else {
                let probs = candle_nn::ops::softmax(&logits, D::Minus1)?.to_dtype(DType::F32)?;
                out.extend(probs.flatten_all()?.to_vec1::<f32>()?);
            }
        }
        Ok(out)
    }

    /// Loss, accuracy and (binary) ROC AUC on a labelled data set.
    pub fn evaluate(&self, params: &[f32], x: &Matrix, y: &[u32]) -> Result<EvalMetrics, MlError> {
        self.check_data(x, y, &[])?;
        let probs = self.predict_proba(params, x)?;
        evaluate_scores(&probs, y, self.num_classes)
    }
}
