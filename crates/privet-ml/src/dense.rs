//! Forward and backward passes of a stack of dense layers (logistic regression with no hidden
//! layer, an MLP with ReLU hidden layers) written out by hand, with per-example gradient norms.
//!
//! For a dense layer `z = W a + b`, the gradient of example `i`'s loss with respect to `W` is the
//! outer product `g_i a_i^T`, where `a_i` is the layer's input and `g_i = dL_i/dz_i` the gradient
//! with respect to its pre-activation output. Its squared Frobenius norm is therefore
//! `||a_i||^2 ||g_i||^2`, and the bias adds `||g_i||^2` (the "ghost norm": Goodfellow 2015, Li et
//! al. 2022). One forward pass gives every `a`, one backward pass of the summed loss gives every
//! `g` (example `i`'s loss depends only on row `i`, so the row of the summed loss's gradient is
//! the per-example gradient), and any per-example weighting `c` of the gradients is then
//! `sum_i c_i g_i a_i^T = G^T diag(c) A`: one matrix product per layer. No per-example gradient
//! is ever materialised and no per-example backward pass is run.
//!
//! The matrix products run on candle's CPU kernels (gemm); the element-wise work is plain Rust.

use candle_core::{Device, Tensor};

use crate::error::MlError;

/// What one pass reports besides the gradient.
#[derive(Debug, Clone, Default)]
pub(crate) struct PassOutput {
    /// Summed loss over the batch.
    pub loss_sum: f64,
    /// Per-example gradient L2 norms (before clipping).
    pub norms: Vec<f32>,
    /// Examples whose gradient was scaled down by clipping.
    pub clipped: usize,
}

/// Clip factor of Opacus (`opacus.optimizers.optimizer`): `min(1, C / (norm + 1e-6))`.
pub(crate) fn clip_factor(norm: f32, clip: f32) -> f32 {
    (clip / (norm + 1e-6)).min(1.0)
}

/// A stack of dense layers over a flat parameter vector laid out as `[W0, b0, W1, b1, ...]`,
/// `W_l` of shape `[out_l, in_l]` row-major (the [`ParamLayout`](crate::ParamLayout) of
/// logistic regression and of the MLP). Every layer but the last is followed by a ReLU.
#[derive(Debug, Clone)]
pub(crate) struct DenseStack {
    /// `(in, out)` of each layer.
    layers: Vec<(usize, usize)>,
    device: Device,
}

impl DenseStack {
    /// The stack for `input_dim` inputs, the given hidden widths and `out` output units.
    pub(crate) fn new(input_dim: usize, hidden: &[usize], out: usize) -> Self {
        let mut layers = Vec::with_capacity(hidden.len() + 1);
        let mut prev = input_dim;
        for &h in hidden {
            layers.push((prev, h));
            prev = h;
        }
        layers.push((prev, out));
        DenseStack {
            layers,
            device: Device::Cpu,
        }
    }

    fn out_units(&self) -> usize {
        self.layers.last().map(|l| l.1).unwrap_or(1)
    }

    /// `(weight, bias)` tensors of layer `l`, and the offsets of both in the flat vector.
    fn layer(&self, params: &[f32], l: usize) -> Result<(Tensor, Tensor, usize, usize), MlError> {
        let mut off = 0;
        for &(i, o) in &self.layers[..l] {
            off += i * o + o;
        }
        let (i, o) = self.layers[l];
        let w = Tensor::from_slice(&params[off..off + i * o], (o, i), &self.device)?;
        let b = Tensor::from_slice(&params[off + i * o..off + i * o + o], o, &self.device)?;
        Ok((w, b, off, off + i * o))
    }

    /// Loss and clipped gradient sum of a batch: `xs` is `[b, in]` row-major, `ys` the labels.
    /// Each example's gradient is scaled by `min(1, clip / (norm + 1e-6))` (as Opacus does) and
    /// the scaled gradients summed into `grad` (the length of the parameter vector).
    pub(crate) fn clipped_sum(
        &self,
        params: &[f32],
        xs: Vec<f32>,
        ys: &[u32],
        clip: f32,
        grad: &mut [f32],
    ) -> Result<PassOutput, MlError> {
        let b = ys.len();
        grad.iter_mut().for_each(|g| *g = 0.0);
        if b == 0 {
            return Ok(PassOutput::default());
        }
        let depth = self.layers.len();
        let weights: Vec<(Tensor, Tensor, usize, usize)> = (0..depth)
            .map(|l| self.layer(params, l))
            .collect::<Result<_, _>>()?;

        // Forward: inputs of every layer, logits.
        let mut acts: Vec<Tensor> = Vec::with_capacity(depth);
        acts.push(Tensor::from_vec(xs, (b, self.layers[0].0), &self.device)?);
        let mut logits = None;
        for (l, (w, bias, _, _)) in weights.iter().enumerate() {
            let z = acts[l].matmul(&w.t()?)?.broadcast_add(bias)?;
            if l + 1 < depth {
                acts.push(z.relu()?);
            } else {
                logits = Some(z);
            }
        }
        let logits = match logits {
            Some(z) => z.flatten_all()?.to_vec1::<f32>()?,
            None => return Err(MlError::Shape("a dense stack has no layers".into())),
        };

        // Loss and per-example gradient of the loss with respect to the logits.
        let out = self.out_units();
        let mut g_out = vec![0f32; b * out];
        let loss_sum = output_grad(&logits, ys, out, &mut g_out);

        // Backward: per-example output gradients of every layer (of the summed loss).
        let mut gs: Vec<Tensor> = Vec::with_capacity(depth);
        gs.push(Tensor::from_vec(g_out, (b, out), &self.device)?);
        for l in (1..depth).rev() {
            let g = gs.last().map(|g| g.matmul(&weights[l].0));
            let g = match g {
                Some(g) => g?,
                None => return Err(MlError::Shape("empty backward pass".into())),
            };
            let mask = acts[l].gt(0f32)?.to_dtype(candle_core::DType::F32)?;
            gs.push((g * mask)?);
        }
        gs.reverse();

        // Ghost norms: ||grad_i||^2 = sum over layers of (||a_i||^2 + 1) ||g_i||^2.
        let mut sq = vec![0f32; b];
        for l in 0..depth {
            let a2 = acts[l].sqr()?.sum(1)?.to_vec1::<f32>()?;
            let g2 = gs[l].sqr()?.sum(1)?.to_vec1::<f32>()?;
            for ((s, a), g) in sq.iter_mut().zip(&a2).zip(&g2) {
                *s += (a + 1.0) * g;
            }
        }
        let norms: Vec<f32> = sq.iter().map(|s| s.sqrt()).collect();
        let scale: Vec<f32> = norms.iter().map(|&n| clip_factor(n, clip)).collect();
        let clipped = scale.iter().filter(|&&c| c < 1.0).count();
        let c = Tensor::from_vec(scale, (b, 1), &self.device)?;

        // Clipped sums: W_l gets (c . G_l)^T A_l, b_l gets sum_i c_i g_i.
        for l in 0..depth {
            let (i, o) = self.layers[l];
            let (_, _, w_off, b_off) = weights[l];
            let cg = gs[l].broadcast_mul(&c)?;
            let gw = cg.t()?.matmul(&acts[l])?.flatten_all()?.to_vec1::<f32>()?;
            let gb = cg.sum(0)?.to_vec1::<f32>()?;
            grad[w_off..w_off + i * o].copy_from_slice(&gw);
            grad[b_off..b_off + o].copy_from_slice(&gb);
        }
        Ok(PassOutput {
            loss_sum,
            norms,
            clipped,
        })
    }
}

/// Summed loss of `logits` (`[b, out]`) against `ys`, and the per-example gradients of the loss
/// with respect to the logits: `sigmoid(z) - y` for one output unit, `softmax(z) - onehot(y)`
/// otherwise.
fn output_grad(logits: &[f32], ys: &[u32], out: usize, g: &mut [f32]) -> f64 {
    let mut loss = 0f64;
    for ((z, &y), gi) in logits
        .chunks_exact(out)
        .zip(ys)
        .zip(g.chunks_exact_mut(out))
    {
        if out == 1 {
            let (z, t) = (z[0], y as f32);
            loss += f64::from(z.max(0.0) + (-z.abs()).exp().ln_1p() - t * z);
            gi[0] = sigmoid(z) - t;
        } else {
            let zmax = z.iter().copied().fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0f32;
            for (gk, &zk) in gi.iter_mut().zip(z) {
                *gk = (zk - zmax).exp();
                sum += *gk;
            }
            loss += f64::from(sum.ln() + zmax - z[y as usize]);
            for gk in gi.iter_mut() {
                *gk /= sum;
            }
            gi[y as usize] -= 1.0;
        }
    }
    loss
}

pub(crate) fn sigmoid(z: f32) -> f32 {
    if z >= 0.0 {
        1.0 / (1.0 + (-z).exp())
    } else {
        let e = z.exp();
        e / (1.0 + e)
    }
}
