//! DP-SGD (Abadi et al. 2016) for local training: Poisson-sampled lots, per-example gradient
//! clipping by the ghost-norm trick, Gaussian noise from a cryptographically secure generator,
//! and the privacy spent by `privet-dp`'s accountants.
//!
//! One step, as in Opacus with `poisson_sampling=True` and mean loss reduction:
//!
//! 1. **Lot.** Every training row joins the lot independently with probability `q` (Poisson
//!    sampling, drawn from the caller's CSPRNG), so the lot size varies and may be zero.
//! 2. **Clipped sum.** Each example's gradient `g_i` is scaled by `min(1, C / (||g_i|| + 1e-6))`
//!    and the scaled gradients summed. The norms come from one forward and one backward pass
//!    (`||g_i||^2 = sum over layers of (||a_i||^2 + 1) ||delta_i||^2`, see `dense.rs`), and the
//!    sum is one matrix product per layer; no per-example gradient is materialised.
//! 3. **Noise.** Gaussian noise of standard deviation `sigma C` is added to every coordinate of
//!    the sum, on a grid `g = 2^(floor(log2(sigma C)) - 30)` so that Mironov's floating-point
//!    attack does not apply (see [`NoiseSampler`]), and the result is divided by the *expected*
//!    lot size `q N`.
//! 4. **Update.** The optimizer (SGD, momentum or Adam) takes the noisy mean as its gradient.
//!
//! An epoch is `ceil(N / L)` steps for a lot size `L`, and `q = 1 / ceil(N / L)` (Opacus's
//! `DPDataLoader` makes the same choice), so `steps = epochs * ceil(N / L)`. The whole run is
//! `steps` compositions of the Poisson-subsampled Gaussian mechanism with `(q, sigma)`, under
//! the add/remove-one neighbouring relation; [`privacy_spent`] reports its epsilon by RDP and by
//! PLD, and [`calibrate_noise`] finds the smallest `sigma` for a target.
//!
//! What the guarantee covers: the returned parameters (and every intermediate model). The
//! training loss in [`DpTrainStats`] is computed on the private rows without noise and is not
//! covered; evaluation on a held-out test set is not private data.
//!
//! Models: logistic regression (the fused kernel in plain Rust) and MLPs. The CNN's convolutions
//! need a different per-example norm and are refused.

use privet_data::Matrix;
use privet_dp::calibrate::{
    AccountantKind, CalibrationOptions, CalibrationTarget, calibrate_noise_multiplier,
};
use privet_dp::noise::GriddedGaussian;
use privet_dp::pld::PldAccountant;
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, DpError, Epsilon, SampledGaussian, Sampling, SamplingProbability};
use rand::{CryptoRng, Rng, RngCore};
use rand_distr::StandardNormal;

use crate::dense::DenseStack;
use crate::error::MlError;
use crate::linear;
use crate::network::{EpochCallback, Network, TrainStats};
use crate::optim::{Optimizer, OptimizerConfig};
use crate::spec::{Activation, ModelSpec, output_units};

/// Default per-example clipping norm `C`.
pub const DEFAULT_CLIP_NORM: f32 = 1.0;

/// Default expected lot size `L`.
pub const DEFAULT_LOT_SIZE: usize = 256;

/// How DP-SGD draws the Gaussian noise it adds to the clipped sum. Both work on the grid
/// `g = 2^(floor(log2 s) - 30)` for the standard deviation `s = sigma C`: every coordinate `x` of
/// the sum is rounded to `X = round(x / g)` and the output is `(X + K) g` for an integer noise
/// `K`, so the released value is a function of the integer `X + K` and the set of floats it can
/// take does not depend on `x` (Mironov 2012's attack on textbook floating-point noise). Rounding
/// the input moves the sum by at most `g sqrt(d) / 2`, about `2^-31 sqrt(d) s`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum NoiseSampler {
    /// `K = round(s Z / g)` with `Z` a standard normal drawn by the ziggurat method
    /// (`rand_distr`) from the CSPRNG. Since `X` is an integer, `X + K = round((X g + s Z) / g)`:
    /// the output is a rounding (post-processing) of the continuous Gaussian mechanism on the
    /// rounded input, so the accountants' analysis applies to the extent that the `f64` ziggurat
    /// sampler is a Gaussian (the same assumption as Opacus and TF Privacy, whose samplers are
    /// not even snapped). About 100 million coordinates per second on one core.
    #[default]
    Snapped,
    /// `K` from `privet-dp`'s exact discrete Gaussian (Canonne, Kamath and Steinke 2020) in
    /// integer arithmetic ([`GriddedGaussian`]): no floating-point sampler at all, at about 5
    /// million coordinates per second, which for models of a few thousand parameters costs more
    /// than the gradient itself.
    Exact,
}

impl NoiseSampler {
    /// The name the command line uses.
    pub fn name(self) -> &'static str {
        match self {
            NoiseSampler::Snapped => "snapped",
            NoiseSampler::Exact => "exact",
        }
    }
}

/// The snapped ziggurat Gaussian of [`NoiseSampler::Snapped`].
#[derive(Debug, Clone, Copy)]
struct SnappedGaussian {
    /// `2^-k` for the grid `g = 2^k`.
    inv_g: f64,
    g: f64,
    /// `s / g`, in `[2^30, 2^31)`.
    scale: f64,
}

impl SnappedGaussian {
    fn new(std: f64) -> Result<Self, MlError> {
        if !(std.is_finite() && std > 1e-200) {
            return Err(MlError::InvalidConfig(format!(
                "the noise standard deviation must be positive and finite, got {std}"
            )));
        }
        let k = std.log2().floor() as i32 - 30;
        let g = 2f64.powi(k);
        Ok(SnappedGaussian {
            inv_g: 2f64.powi(-k),
            g,
            scale: std / g,
        })
    }

    /// Adds noise in place; every value is checked before any is changed.
    fn add<R: RngCore + ?Sized>(&self, rng: &mut R, values: &mut [f32]) -> Result<(), MlError> {
        const LIMIT: f64 = 4_611_686_018_427_387_904.0; // 2^62 grid steps
        if values
            .iter()
            .any(|&v| !v.is_finite() || (f64::from(v) * self.inv_g).abs() >= LIMIT)
        {
            return Err(MlError::Diverged);
        }
        for v in values.iter_mut() {
            let x = (f64::from(*v) * self.inv_g).round() as i64;
            let z: f64 = rng.sample(StandardNormal);
            // |z| < 40 for any f64 the ziggurat returns, so |k| < 2^37.
            let k = (z * self.scale).round() as i64;
            *v = ((x + k) as f64 * self.g) as f32;
        }
        Ok(())
    }
}

/// The sampler in use for one run.
enum Noise {
    Snapped(SnappedGaussian),
    Exact(GriddedGaussian),
}

impl Noise {
    fn new(kind: NoiseSampler, std: f64) -> Result<Self, MlError> {
        Ok(match kind {
            NoiseSampler::Snapped => Noise::Snapped(SnappedGaussian::new(std)?),
            NoiseSampler::Exact => Noise::Exact(GriddedGaussian::new(std).map_err(dp_err)?),
        })
    }

    /// The standard deviation parameter actually used.
    fn std(&self) -> f64 {
        match self {
            Noise::Snapped(s) => s.scale * s.g,
            Noise::Exact(e) => e.effective_sigma(),
        }
    }

    fn add<R: RngCore + CryptoRng>(&self, rng: &mut R, values: &mut [f32]) -> Result<(), MlError> {
        match self {
            Noise::Snapped(s) => s.add(rng, values),
            Noise::Exact(e) => e.add_noise_f32(rng, values).map_err(dp_err),
        }
    }
}

/// DP-SGD hyperparameters.
#[derive(Debug, Clone, PartialEq)]
pub struct DpSgdConfig {
    /// Passes over the data: `ceil(N / lot_size)` steps each.
    pub epochs: usize,
    /// Expected lot size `L`; the sampling probability is `q = 1 / ceil(N / L)`.
    pub lot_size: usize,
    /// Per-example clipping norm `C` (> 0).
    pub clip_norm: f32,
    /// Noise multiplier `sigma` (> 0): the noise's standard deviation is `sigma * C`.
    pub noise_multiplier: f64,
    /// The optimizer and its learning rate.
    pub optimizer: OptimizerConfig,
    /// How the Gaussian noise is drawn.
    pub noise: NoiseSampler,
}

impl DpSgdConfig {
    /// Checks every value's domain.
    pub fn validate(&self) -> Result<(), MlError> {
        if self.epochs == 0 {
            return Err(MlError::InvalidConfig(
                "DP-SGD needs at least one epoch".into(),
            ));
        }
        if self.lot_size == 0 {
            return Err(MlError::InvalidConfig(
                "the DP-SGD lot size must be at least 1".into(),
            ));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "the DP-SGD clipping norm must be positive and finite, got {}",
                self.clip_norm
            )));
        }
        if !(self.noise_multiplier.is_finite() && self.noise_multiplier > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "the DP-SGD noise multiplier must be positive and finite, got {}",
                self.noise_multiplier
            )));
        }
        self.optimizer.validate()
    }
}

/// How many steps DP-SGD takes on `N` examples and with what sampling probability.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpSchedule {
    /// Training examples `N`.
    pub examples: usize,
    /// Steps per epoch, `ceil(N / L)`.
    pub steps_per_epoch: u64,
    /// Steps in all.
    pub steps: u64,
    /// Poisson sampling probability `q = 1 / steps_per_epoch`.
    pub sampling_probability: f64,
}

impl DpSchedule {
    /// The schedule for `examples` rows, expected lot size `lot_size` and `epochs` epochs.
    pub fn new(examples: usize, lot_size: usize, epochs: usize) -> Result<Self, MlError> {
        if examples == 0 {
            return Err(MlError::InvalidConfig(
                "DP-SGD needs at least one training example".into(),
            ));
        }
        if lot_size == 0 || epochs == 0 {
            return Err(MlError::InvalidConfig(
                "DP-SGD needs a lot size and a number of epochs of at least 1".into(),
            ));
        }
        let steps_per_epoch = examples.div_ceil(lot_size) as u64;
        let steps = steps_per_epoch
            .checked_mul(epochs as u64)
            .filter(|&s| s <= 1 << 40)
            .ok_or_else(|| MlError::InvalidConfig("too many DP-SGD steps".into()))?;
        Ok(DpSchedule {
            examples,
            steps_per_epoch,
            steps,
            sampling_probability: 1.0 / steps_per_epoch as f64,
        })
    }

    /// Expected lot size `q N`.
    pub fn expected_lot_size(&self) -> f64 {
        self.sampling_probability * self.examples as f64
    }
}

/// What DP-SGD training reports.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpTrainStats {
    /// Loss (mean over the examples of the last epoch's lots), steps, examples.
    pub train: TrainStats,
    /// The schedule that was run.
    pub schedule: DpSchedule,
    /// Examples drawn into lots over the whole run (each counted once per lot).
    pub examples_processed: u64,
    /// Fraction of those whose gradient was scaled down by clipping.
    pub clipped_fraction: f64,
    /// The noise's standard deviation parameter actually used: `sigma C` (the exact sampler's
    /// grid rounds it up by less than `2^-30` relative).
    pub noise_std: f64,
}

/// The privacy spent by `steps` steps of the Poisson-subsampled Gaussian mechanism.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PrivacySpent {
    /// Noise multiplier `sigma`.
    pub noise_multiplier: f64,
    /// Sampling probability `q`.
    pub sampling_probability: f64,
    /// Steps.
    pub steps: u64,
    /// The `delta` the epsilons are for.
    pub delta: f64,
    /// Epsilon by RDP with the improved conversion (Balle et al. 2020), default orders.
    pub epsilon_rdp: f64,
    /// The RDP order that gave it.
    pub rdp_order: f64,
    /// Epsilon by the PLD accountant (tight; default discretisation).
    pub epsilon_pld: f64,
}

/// Errors from `privet-dp`: a value out of its domain is a configuration error.
fn dp_err(e: DpError) -> MlError {
    match e {
        DpError::InvalidParameter { .. } | DpError::CalibrationOutOfRange { .. } => {
            MlError::InvalidConfig(e.to_string())
        }
        other => MlError::Privacy(other),
    }
}

/// The event that `schedule` with noise multiplier `sigma` is.
fn event(schedule: &DpSchedule, sigma: f64) -> Result<SampledGaussian, MlError> {
    SampledGaussian::poisson(schedule.sampling_probability, sigma, schedule.steps).map_err(dp_err)
}

/// Epsilon spent at `delta` by `schedule` with noise multiplier `sigma`, by RDP and PLD.
pub fn privacy_spent(
    schedule: &DpSchedule,
    sigma: f64,
    delta: f64,
) -> Result<PrivacySpent, MlError> {
    let ev = event(schedule, sigma)?;
    let d = Delta::new(delta).map_err(dp_err)?;
    let mut rdp = RdpAccountant::new();
    rdp.compose(&ev).map_err(dp_err)?;
    let at = rdp.epsilon(d, Conversion::Improved);
    let mut pld = PldAccountant::default();
    pld.compose(&ev).map_err(dp_err)?;
    let epsilon_pld = pld.epsilon(d).map_err(dp_err)?;
    Ok(PrivacySpent {
        noise_multiplier: sigma,
        sampling_probability: schedule.sampling_probability,
        steps: schedule.steps,
        delta,
        epsilon_rdp: at.epsilon,
        rdp_order: at.order,
        epsilon_pld,
    })
}

/// The smallest noise multiplier (to 1e-4 relative, rounded up) with which `schedule` stays
/// within `(epsilon, delta)` under `accountant`.
pub fn calibrate_noise(
    schedule: &DpSchedule,
    epsilon: f64,
    delta: f64,
    accountant: AccountantKind,
) -> Result<f64, MlError> {
    let target = CalibrationTarget {
        epsilon: Epsilon::positive(epsilon).map_err(dp_err)?,
        delta: Delta::new(delta).map_err(dp_err)?,
        q: SamplingProbability::new(schedule.sampling_probability).map_err(dp_err)?,
        steps: schedule.steps,
        sampling: Sampling::Poisson,
    };
    calibrate_noise_multiplier(&target, accountant, &CalibrationOptions::default()).map_err(dp_err)
}

/// Draws a Poisson lot: each of `rows` independently with probability `q`.
///
/// A row is kept when a uniform 64-bit integer `U` is below `t = q 2^64` (exact: `q 2^64` is a
/// power-of-two scaling of `q`, an integer below `2^64`), so with probability exactly `q` as a
/// `f64`. `U` is compared with `t` a byte at a time from the most significant end and only as
/// far as needed (the next byte is drawn only when all before it tie, probability 1/256), which
/// decides the same event as comparing all 64 bits but uses about one random byte per row
/// instead of eight: the generator's output, not the comparison, is what a lot costs.
pub(crate) fn poisson_lot<R: RngCore + ?Sized>(
    rows: &[u32],
    q: f64,
    rng: &mut R,
    lot: &mut Vec<u32>,
) {
    lot.clear();
    if q >= 1.0 {
        lot.extend_from_slice(rows);
        return;
    }
    let t = ((q * 18_446_744_073_709_551_616.0) as u64).to_be_bytes();
    let mut bytes = RandomBytes::default();
    for &r in rows {
        let mut keep = false;
        for &tk in &t {
            let u = bytes.next(rng);
            if u != tk {
                keep = u < tk;
                break;
            }
        }
        if keep {
            lot.push(r);
        }
    }
}

/// Random bytes from a generator, eight per `next_u64`.
#[derive(Default)]
struct RandomBytes {
    word: u64,
    left: u32,
}

impl RandomBytes {
    fn next<R: RngCore + ?Sized>(&mut self, rng: &mut R) -> u8 {
        if self.left == 0 {
            self.word = rng.next_u64();
            self.left = 8;
        }
        let b = (self.word >> 56) as u8;
        self.word <<= 8;
        self.left -= 1;
        b
    }
}

/// The per-model part of a DP-SGD step.
enum Kernel {
    Linear { out: usize, logits: Vec<f32> },
    Dense(DenseStack),
}

impl Kernel {
    fn new(net: &Network) -> Result<Self, MlError> {
        let out = output_units(net.num_classes());
        match net.spec() {
            ModelSpec::Logreg => Ok(Kernel::Linear {
                out,
                logits: vec![0.0; out],
            }),
            ModelSpec::Mlp {
                hidden,
                activation: Activation::Relu,
            } => Ok(Kernel::Dense(DenseStack::new(net.input_dim(), hidden, out))),
            ModelSpec::Mlp { activation, .. } => Err(MlError::InvalidConfig(format!(
                "DP-SGD supports MLPs with ReLU activations, not {}",
                activation.as_str()
            ))),
            ModelSpec::Cnn => Err(MlError::InvalidConfig(
                "DP-SGD supports logistic regression and MLPs; the CNN's convolutions need a \
                 per-example norm that is not implemented"
                    .into(),
            )),
        }
    }

    /// Summed loss, per-example norms and clipped count; the clipped sum into `grad`.
    #[allow(clippy::too_many_arguments)]
    fn clipped_sum(
        &mut self,
        d: usize,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        lot: &[u32],
        clip: f32,
        grad: &mut [f32],
    ) -> Result<(f64, Vec<f32>, usize), MlError> {
        match self {
            Kernel::Linear { out, logits } => {
                let rows = lot.iter().map(|&r| (x.row(r as usize), y[r as usize]));
                Ok(linear::clipped_grad_sum(
                    params, *out, d, rows, clip, grad, logits,
                ))
            }
            Kernel::Dense(stack) => {
                let mut xs = Vec::with_capacity(lot.len() * d);
                for &r in lot {
                    xs.extend_from_slice(x.row(r as usize));
                }
                let ys: Vec<u32> = lot.iter().map(|&r| y[r as usize]).collect();
                let out = stack.clipped_sum(params, xs, &ys, clip, grad)?;
                Ok((out.loss_sum, out.norms, out.clipped))
            }
        }
    }
}

impl Network {
    /// Per-example gradient L2 norms of the loss on `rows` (ghost norms: one forward and one
    /// backward pass), and the sum of the gradients clipped to `clip`, as DP-SGD computes them.
    /// Logistic regression and MLPs only.
    pub fn clipped_grad_sum(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
        clip: f32,
    ) -> Result<(Vec<f32>, Vec<f32>), MlError> {
        if !(clip.is_finite() && clip > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "the clipping norm must be positive and finite, got {clip}"
            )));
        }
        self.layout().check(params)?;
        self.check_data(x, y, rows)?;
        let mut kernel = Kernel::new(self)?;
        let mut grad = vec![0f32; params.len()];
        let (_, norms, _) =
            kernel.clipped_sum(self.input_dim(), params, x, y, rows, clip, &mut grad)?;
        Ok((norms, grad))
    }

    /// Trains with DP-SGD from `params` on the rows `rows` of `(x, y)`; lots and noise are drawn
    /// from `rng`, which must be a CSPRNG (use
    /// [`privet_dp::noise::os_seeded_rng`] outside tests: the guarantee assumes the lots and the
    /// noise are secret). Calls `on_epoch(epoch, params, stats)` after each epoch.
    #[allow(clippy::too_many_arguments)]
    pub fn train_dp<R: RngCore + CryptoRng>(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
        cfg: &DpSgdConfig,
        rng: &mut R,
        on_epoch: &mut EpochCallback<'_>,
    ) -> Result<(Vec<f32>, DpTrainStats), MlError> {
        cfg.validate()?;
        self.layout().check(params)?;
        self.check_data(x, y, rows)?;
        let schedule = DpSchedule::new(rows.len(), cfg.lot_size, cfg.epochs)?;
        let mut kernel = Kernel::new(self)?;
        let noise = Noise::new(cfg.noise, cfg.noise_multiplier * f64::from(cfg.clip_norm))?;
        let expected = schedule.expected_lot_size() as f32;
        let mut w = params.to_vec();
        let mut grad = vec![0f32; w.len()];
        let mut opt = Optimizer::new(cfg.optimizer.clone())?;
        let mut lot = Vec::with_capacity(cfg.lot_size * 2);
        let mut stats = DpTrainStats {
            train: TrainStats {
                num_examples: rows.len() as u64,
                ..Default::default()
            },
            schedule,
            examples_processed: 0,
            clipped_fraction: 0.0,
            noise_std: noise.std(),
        };
        let mut clipped_total = 0u64;
        for epoch in 1..=cfg.epochs {
            let mut epoch_loss = 0f64;
            let mut epoch_examples = 0u64;
            for _ in 0..schedule.steps_per_epoch {
                poisson_lot(rows, schedule.sampling_probability, rng, &mut lot);
                let (loss, _, clipped) = kernel.clipped_sum(
                    self.input_dim(),
                    &w,
                    x,
                    y,
                    &lot,
                    cfg.clip_norm,
                    &mut grad,
                )?;
                if !loss.is_finite() {
                    return Err(MlError::Diverged);
                }
                epoch_loss += loss;
                epoch_examples += lot.len() as u64;
                clipped_total += clipped as u64;
                if grad.iter().any(|g| !g.is_finite()) {
                    return Err(MlError::Diverged);
                }
                noise.add(rng, &mut grad)?;
                grad.iter_mut().for_each(|g| *g /= expected);
                opt.step(&mut w, &grad);
                stats.train.steps += 1;
            }
            stats.examples_processed += epoch_examples;
            stats.train.loss = (epoch_loss / epoch_examples.max(1) as f64) as f32;
            if w.iter().any(|p| !p.is_finite()) {
                return Err(MlError::Diverged);
            }
            on_epoch(epoch, &w, &stats.train)?;
        }
        stats.clipped_fraction = clipped_total as f64 / stats.examples_processed.max(1) as f64;
        Ok((w, stats))
    }
}

/// The generator DP-SGD draws its lots and noise from: ChaCha12 (the algorithm of rand's
/// `StdRng`, a CSPRNG; ChaCha reduced to 12 rounds keeps a wide margin over the best known
/// attack, on 7 rounds) keyed by the operating system. DP-SGD draws one 64-bit word per
/// parameter per step, and the keystream is most of a step's cost for small models: 12 rounds
/// instead of 20 cut it by 40%.
pub fn noise_rng() -> Result<rand_chacha::ChaCha12Rng, MlError> {
    use rand::SeedableRng;
    rand_chacha::ChaCha12Rng::try_from_os_rng()
        .map_err(|e| MlError::Privacy(privet_dp::DpError::Randomness(e.to_string())))
}

/// A DP-SGD run asked for by its privacy target (what `privet train --dp-epsilon` takes): the
/// noise multiplier is calibrated from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct DpTarget {
    /// Target epsilon (> 0).
    pub epsilon: f64,
    /// Target delta, in (0, 1).
    pub delta: f64,
    /// Per-example clipping norm `C` (> 0).
    pub clip_norm: f32,
    /// Expected lot size `L` (>= 1).
    pub lot_size: usize,
    /// The accountant that calibrates `sigma` (both are reported).
    pub accountant: AccountantKind,
    /// How the noise is drawn.
    pub noise: NoiseSampler,
}

impl DpTarget {
    /// Checks every value's domain (the accountants check them again).
    pub fn validate(&self) -> Result<(), MlError> {
        if !(self.epsilon.is_finite() && self.epsilon > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "the target epsilon must be positive and finite, got {}",
                self.epsilon
            )));
        }
        if !(self.delta > 0.0 && self.delta < 1.0) {
            return Err(MlError::InvalidConfig(format!(
                "the target delta must be in (0, 1), got {}",
                self.delta
            )));
        }
        if !(self.clip_norm.is_finite() && self.clip_norm > 0.0) {
            return Err(MlError::InvalidConfig(format!(
                "the DP-SGD clipping norm must be positive and finite, got {}",
                self.clip_norm
            )));
        }
        if self.lot_size == 0 {
            return Err(MlError::InvalidConfig(
                "the DP-SGD lot size must be at least 1".into(),
            ));
        }
        Ok(())
    }
}

/// What a DP-SGD run for a target reports.
#[derive(Debug, Clone, PartialEq)]
pub struct DpReport {
    /// What was asked for.
    pub target: DpTarget,
    /// The hyperparameters run, with the calibrated noise multiplier.
    pub config: DpSgdConfig,
    /// Training statistics.
    pub stats: DpTrainStats,
    /// Epsilon spent by the steps taken, by RDP and PLD.
    pub spent: PrivacySpent,
}

impl DpReport {
    /// The report as JSON (for `metrics.json`).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "mechanism": "dp-sgd",
            "sampling": "poisson",
            "neighbouring": "add/remove one example",
            "target_epsilon": self.target.epsilon,
            "delta": self.spent.delta,
            "calibrated_by": self.target.accountant.name(),
            "noise_multiplier": self.spent.noise_multiplier,
            "noise_std": self.stats.noise_std,
            "noise_sampler": self.config.noise.name(),
            "clip_norm": self.config.clip_norm,
            "lot_size": self.config.lot_size,
            "expected_lot_size": self.stats.schedule.expected_lot_size(),
            "sampling_probability": self.spent.sampling_probability,
            "steps": self.spent.steps,
            "epochs": self.config.epochs,
            "epsilon_pld": self.spent.epsilon_pld,
            "epsilon_rdp": self.spent.epsilon_rdp,
            "rdp_order": self.spent.rdp_order,
            "examples_processed": self.stats.examples_processed,
            "clipped_fraction": self.stats.clipped_fraction,
        })
    }
}

impl Network {
    /// DP-SGD for a privacy target: calibrates `sigma` for `epochs` epochs over `rows` with
    /// `target.accountant`, trains with lots and noise from a ChaCha12 generator keyed by the
    /// operating system ([`noise_rng`]), and reports the epsilon the steps taken spent (by both
    /// accountants).
    #[allow(clippy::too_many_arguments)]
    pub fn train_dp_for_target(
        &self,
        params: &[f32],
        x: &Matrix,
        y: &[u32],
        rows: &[u32],
        target: &DpTarget,
        epochs: usize,
        optimizer: OptimizerConfig,
        on_epoch: &mut EpochCallback<'_>,
    ) -> Result<(Vec<f32>, DpReport), MlError> {
        target.validate()?;
        let schedule = DpSchedule::new(rows.len(), target.lot_size, epochs)?;
        let sigma = calibrate_noise(&schedule, target.epsilon, target.delta, target.accountant)?;
        let config = DpSgdConfig {
            epochs,
            lot_size: target.lot_size,
            clip_norm: target.clip_norm,
            noise_multiplier: sigma,
            optimizer,
            noise: target.noise,
        };
        let mut rng = noise_rng()?;
        let (w, stats) = self.train_dp(params, x, y, rows, &config, &mut rng, on_epoch)?;
        let spent = privacy_spent(&stats.schedule, sigma, target.delta)?;
        Ok((
            w,
            DpReport {
                target: *target,
                config,
                stats,
                spent,
            },
        ))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use rand::SeedableRng;
    use rand_chacha::ChaCha20Rng;

    #[test]
    fn poisson_lots_have_rate_q() {
        let rows: Vec<u32> = (0..10_000).collect();
        let mut rng = ChaCha20Rng::seed_from_u64(1);
        let mut lot = Vec::new();
        for q in [0.5, 0.1, 1.0 / 23.0, 0.003_9, 0.001] {
            let (mut total, draws) = (0usize, 50);
            for _ in 0..draws {
                poisson_lot(&rows, q, &mut rng, &mut lot);
                assert!(lot.windows(2).all(|w| w[0] < w[1]));
                total += lot.len();
            }
            // Binomial(500,000, q): the mean count is within 5 standard deviations.
            let n = (rows.len() * draws) as f64;
            let sd = (n * q * (1.0 - q)).sqrt();
            assert!(
                (total as f64 - n * q).abs() < 5.0 * sd,
                "q {q}: {total} of {n}"
            );
        }
        poisson_lot(&rows, 1.0, &mut rng, &mut lot);
        assert_eq!(lot, rows);
        // q = 2^-8 exactly: the first byte ties with t's with probability 1/256 and the
        // comparison must go on to the next byte (t = 0x01 00 .. 00, so keep iff U < t).
        let (mut total, draws) = (0usize, 200);
        for _ in 0..draws {
            poisson_lot(&rows, 1.0 / 256.0, &mut rng, &mut lot);
            total += lot.len();
        }
        let n = (rows.len() * draws) as f64;
        let sd = (n / 256.0 * (255.0 / 256.0)).sqrt();
        assert!((total as f64 - n / 256.0).abs() < 5.0 * sd, "{total}");
    }

    #[test]
    fn snapped_noise_lands_on_the_grid() {
        let noise = SnappedGaussian::new(3.0).unwrap();
        let mut rng = ChaCha20Rng::seed_from_u64(2);
        let mut v = vec![0.1f32, -7.25, 1e-3, 0.0];
        noise.add(&mut rng, &mut v).unwrap();
        for x in &v {
            let k = f64::from(*x) * noise.inv_g;
            assert_eq!(k, k.round(), "{x} is off the grid");
        }
        let mut bad = vec![1.0f32, f32::NAN];
        assert!(noise.add(&mut rng, &mut bad).is_err());
        assert_eq!(bad[0], 1.0, "nothing changes when an input is bad");
        assert!(SnappedGaussian::new(0.0).is_err());
        assert!(SnappedGaussian::new(f64::INFINITY).is_err());
    }
}
