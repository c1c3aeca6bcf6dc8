//! # privet-dpfedavg: client-level differential privacy for federations
//!
//! DP-FedAvg (McMahan, Ramage, Talwar and
//! Zhang 2018) with fixed or adaptive clipping (Andrew, Thakkar, McMahan and Ramaswamy 2021),
//! central or distributed noise (Kairouz, Liu and Steinke 2021), accounting and budgets.
//!
//! A job turns it on with a `[privacy]` section (parsed by `privet-job` into a
//! [`PrivacyConfig`]); `privet-job` assembles the two plug-ins for every runtime: the
//! coordinator's [`DpAggregator`] (an [`AggregateTransform`]) and each client's [`DpClient`] (an
//! [`UpdateTransform`]). They talk only through the round engine's extension channels: the
//! round's clipping bound goes out as the client parameter [`CLIP_PARAM`], the distributed
//! noise a client asks its SecAgg+ client for is the local parameter
//! [`privet_secagg::NOISE_PARAM`], and each round's accounting comes back as the round detail
//! [`RoundPrivacy::NAME`]. What happens in a round `r`:
//!
//! 1. **Admission.** Once the engine has sampled `k` of the `N` available clients, the
//!    coordinator's [`DpAggregator`] computes what the round would cost and, with a budget,
//!    refuses the round if the total would exceed it: the job then stops *before* the round, with
//!    [`JobStatus::Stopped`](privet_fl::engine::JobStatus::Stopped) and the reason. It publishes
//!    the round's clipping bound `C_r` ([`CLIP_PARAM`]). Each client derives the rest of its
//!    [`ClientPlan`] (adaptive clipping's indicator scale, its distributed noise) from `C_r` and
//!    its own copy of the job, after checking `C_r` against it.
//! 2. **Clients** ([`DpClient`]) clip their delta to L2 norm `C_r` and count with weight 1
//!    (every client contributes at most `C_r`, whatever its data set size: the bounded
//!    contribution that DP-FedAvg needs; example-count weights would make the sensitivity
//!    depend on the data). With adaptive clipping a client appends one coordinate `+B` if its
//!    norm before clipping was at most `C_r`, else `-B`; the vector `(Δ, ±B)` then has norm at
//!    most `S = sqrt(C² + B²)`. In distributed mode the client adds discrete Gaussian noise to
//!    its quantized vector before SecAgg+ masks it (see below).
//! 3. **Coordinator.** The sum of the `n ≤ k` contributions gets Gaussian noise of standard
//!    deviation `σ = z S` per coordinate (central mode: added here, with
//!    [`privet_dp::noise::GriddedGaussian`], exact discrete Gaussian on a fine grid, from a
//!    ChaCha20 stream keyed by an OS-random key and the round; distributed mode: already in
//!    the sum). The indicator coordinate is taken off and gives the noisy fraction `b̃` of
//!    clients whose norm was at most `C_r`; the bound moves geometrically,
//!    `C_{r+1} = C_r · exp(-η (b̃ - γ))` towards the target quantile `γ` (Andrew et al.,
//!    Algorithm 1). The total weight is set to `k`, the planned number of clients, so
//!    FedAvg's mean is `(Σ clip(Δ) + noise) / k`: the fixed denominator of DP-FedAvg (dropouts
//!    shrink the step instead of changing the sensitivity).
//!
//! # Accounting
//!
//! Two sampling schemes, chosen by the job's `[federation] sampling` ([`DpSampling`]):
//!
//! - **Poisson** (the default under `[privacy]` unless `clients_per_round` is given): every
//!   available client takes part independently with probability `q` (privet-fl's
//!   [`SampleSize::Poisson`](privet_fl::SampleSize::Poisson)). The matching analysis is the
//!   Poisson-subsampled Gaussian under the *add/remove* relation (Mironov, Talwar and Zhang
//!   2019; Koskela et al. / dp_accounting for the PLD), the analysis of DP-SGD: adding or
//!   removing one client moves the sum by at most `S`, so the accountant's multiplier is `σ / S =
//!   z`. It is composed by the RDP accountant (reported as `cumulative_epsilon`, used for
//!   budgets and calibration) and by the PLD accountant (`cumulative_epsilon_pld`, tighter).
//!   The denominator is the expected round size `q N` (fixed, so the realised size is not in
//!   the output). The guarantee covers the released models; the round sizes that the run
//!   report and the coordinator see are not covered (as in DP-SGD analyses, which treat the
//!   data set size as public).
//! - **Fixed size**: `k` clients without replacement (privet-fl's count or fraction). The
//!   matching analysis is the subsampled Gaussian without replacement under the *replace-one*
//!   relation (Wang, Balle and Kasiviswanathan 2019; privet-dp's [`Sampling::FixedSize`], RDP
//!   with the improved conversion), with `q = k / N` for the clients available in that round.
//!   Replacing one client's data moves the sum by up to `2S`, so the accountant's noise
//!   multiplier is `σ / 2S = z / 2`: at the same noise, this costs much more epsilon (one round
//!   at `q = 0.2`, `z = 1` costs about 8.7, against 2.8 by RDP and 2.4 by PLD under Poisson
//!   sampling, at `δ = 10^-5`).
//!
//! Per-round and cumulative `(ε, δ)` are reported in every round's record; a budget is judged
//! at its own `δ`.
//!
//! **Skipped Poisson draws.** A Poisson draw can hold fewer than `[federation] min_clients`
//! clients (the engine needs at least that many, and SecAgg+ and distributed noise rely on it).
//! Such a round is skipped: nothing is released and the model stays as it was. Skipping depends
//! on the draw's size, which depends on whether a given client is in the federation, so it is
//! not a post-processing of the Gaussian mechanism. privet accounts for it by coupling: let `M`
//! be the ideal mechanism that releases a noised sum at every draw (whatever its size), and
//! `β_t` the largest probability, over this federation of `N_t` available clients and its
//! neighbours, that draw `t` is too small (`P(Binomial(N_t - 1, q) < m)`, exact). The run and
//! `M` differ only when some draw is too small, which has probability at most `B = Σ β_t` under
//! either neighbour, so if `M` is `(ε, δ)`-DP the run is `(ε, δ + (1 + e^ε) B)`-DP. Therefore
//! every draw, skipped or not, is charged as one step of `M`, `B` is accumulated
//! ([`DpState::skip_mass`]), each record reports `skip_delta = (1 + e^ε) B` (the guarantee is
//! `(ε, delta + skip_delta)`), and a budget `(ε_b, δ_b)` is checked at
//! `δ_b - (1 + e^ε_b) B`. With `q N` well above `m` the term is negligible (`N = 3000`,
//! `q = 0.1`, `m = 1`: `β ≈ 10^-137`); with few clients it is not, and the report shows it.
//!
//! Adaptive clipping spends no extra budget: the indicator is one more coordinate of a vector
//! of norm at most `S`, under the same isotropic noise. Choosing `B = σ / (2 σ_b)` makes the
//! noise on the count of "below" clients `σ_b` (default `k / 20`, as Andrew et al.; `q N / 20`
//! under Poisson sampling), and
//! `S = C / sqrt(1 - (z / 2σ_b)²)` (so `z < 2 σ_b` is required): this is Andrew et al.'s
//! `z_Δ = (z^-2 - (2σ_b)^-2)^-1/2`.
//!
//! **Central noise** is added on a grid of step `g ≈ σ 2^-30`: rounding the sum to it can grow
//! the sensitivity by `g √d` ([`GriddedGaussian::sensitivity_inflation`]), which the
//! accountant's multiplier includes: `σ_acc = σ_eff / (2S + g √d)` (`S + g √d` under Poisson
//! sampling).
//!
//! **Distributed noise.** Each client adds `N_Z(0, s²)` with `s = ⌈σ / (√m · step)⌉` grid
//! steps to every coordinate of its quantized update, where `m` is the job's
//! `[federation] min_clients`: the planned fewest contributors. The engine fails a round with
//! fewer than `min_clients` contributions at the end of SecAgg+'s masked-input stage, *before*
//! anything is unmasked, so an honest coordinator never decodes a sum with less than the planned
//! noise. The sum of `n ≥ m` discrete Gaussians is not exactly a discrete Gaussian; Kairouz et
//! al. (Theorem 1) show it satisfies `ε²/2`-concentrated DP with
//! `ε = Δ / (√n s) + τ √d`, `τ = 10 Σ_{j=1}^{n-1} exp(-2π² s² j/(j+1))`, which we use: the
//! accountant's multiplier is `1 / (1/z_grid + τ √d)` with
//! `z_grid = √n s / (2 (S/step + ρ √d))`, `ρ` the rounding error per coordinate (½ for nearest,
//! 1 for stochastic rounding), counted in the sensitivity. (`τ` underflows to 0 for `s ≥ 8`.)
//! Limits: the planned noise assumes the `m` contributors are honest (a client that skips its
//! noise lowers the total); a coordinator that deviates from SecAgg+ could unmask a sum of as
//! few contributors as the Shamir threshold allows, which the guarantee does not cover. The
//! training loss is not revealed in distributed mode (it carries no noise), and every
//! coordinate is clamped to `[-c, c]` (`clipping_range`), which the validation requires to hold
//! `C` and `B`.
//!
//! # What is persisted
//!
//! [`DpAggregator::state`] is a versioned JSON document ([`DpState`]): the accounting events,
//! the rounds accounted and the current adaptive bound. The engine stores it inside its
//! [`Checkpoint`](privet_fl::engine::Checkpoint), so a coordinator restarted from the checkpoint
//! continues with the same spent budget and bound (and refuses to resume without it). The noise
//! key is never persisted; a restarted coordinator draws a fresh one.

use privet_dp::noise::{GriddedGaussian, NoiseRng};
use privet_dp::rdp::{Conversion, RdpAccountant};
use privet_dp::{Delta, SampledGaussian, Sampling};
use privet_fl::{
    Admission, AggregateTransform, ClientParams, ClipL2, FlError, RoundDetails, SampleSize,
    UpdateContext, UpdateTransform,
};
use rand::SeedableRng;
use serde::{Deserialize, Serialize};

/// The client parameter that carries a round's clipping bound `C_r` (an `f64`).
pub const CLIP_PARAM: &str = "dp.clip";

/// What can be wrong with a job's privacy settings.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DpFedAvgError {
    /// The `[privacy]` section does not fit the federation.
    #[error("[privacy] {0}")]
    Config(String),
    /// The `[secure_aggregation]` settings that DP adjusts are invalid.
    #[error("[secure_aggregation] {0}")]
    SecureAggregation(String),
    /// The operating system gave no randomness for the noise key.
    #[error("cannot draw the noise key: {0}")]
    Randomness(String),
}

fn invalid(msg: impl Into<String>) -> DpFedAvgError {
    DpFedAvgError::Config(msg.into())
}

/// The shape of the federation a [`PrivacyConfig`] is resolved against.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Federation {
    /// Clients sampled per round.
    pub sample: SampleSize,
    /// Fewest contributions for a round to count (`[federation] min_clients`).
    pub min_clients: usize,
    /// Rounds the job plans.
    pub rounds: u32,
    /// Clients in the federation.
    pub num_clients: usize,
}

/// Where the noise is added.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PrivacyMode {
    /// The coordinator adds Gaussian noise to the sum (it is trusted with the un-noised sum).
    Central,
    /// Every client adds a share of discrete Gaussian noise before SecAgg+ masks its update, so
    /// no one, the coordinator included, sees an un-noised sum.
    Distributed,
}

/// How the per-client L2 bound is chosen.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum ClipPolicy {
    /// A fixed bound `C`.
    Fixed(f64),
    /// Andrew et al.'s adaptive bound, moved each round towards a quantile of the update norms.
    Adaptive {
        /// `C_1`.
        initial: f64,
        /// `γ`: the fraction of clients whose update should fall within the bound.
        target_quantile: f64,
        /// `η` of the geometric update.
        learning_rate: f64,
        /// `σ_b`: the noise standard deviation on the count of clients within the bound
        /// (default: a twentieth of the clients per round).
        count_noise: Option<f64>,
    },
}

/// How much noise.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum NoiseLevel {
    /// The noise multiplier `z`: noise standard deviation over the clipping bound.
    Multiplier(f64),
    /// Calibrate `z` so that all the job's rounds spend this epsilon at the job's delta.
    TargetEpsilon(f64),
}

/// The `[privacy]` section of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyConfig {
    /// Central or distributed noise.
    pub mode: PrivacyMode,
    /// The clipping bound.
    pub clip: ClipPolicy,
    /// The noise.
    pub noise: NoiseLevel,
    /// The delta at which epsilon is reported.
    pub delta: f64,
    /// `(epsilon, delta)`: the job stops before a round that would spend more.
    pub budget: Option<(f64, f64)>,
}

/// What a client does in one round, as the coordinator publishes it: a function of the job and
/// the round's clipping bound only ([`client_plan`]), so a networked coordinator needs to send
/// just `clip` with the training request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClientPlan {
    /// The round.
    pub round: u32,
    /// L2 bound `C_r` on the delta.
    pub clip: f64,
    /// Adaptive clipping's indicator scale `B` (`+B` if the norm was within `C_r`, else `-B`);
    /// `None` with a fixed bound.
    pub indicator: Option<f64>,
    /// Distributed mode: each client's noise standard deviation, in delta units.
    pub client_noise_std: Option<f64>,
}

/// A job's privacy settings resolved against the federation: sample sizes and the noise
/// multiplier (calibrated for `target_epsilon`).
#[derive(Debug, Clone, PartialEq)]
pub struct PrivacyPlan {
    /// The section it comes from.
    pub config: PrivacyConfig,
    /// Clients per round `k`.
    pub clients_per_round: usize,
    /// Clients in the federation `N`.
    pub num_clients: usize,
    /// `z`: noise standard deviation over the sensitivity `S` (add/remove one client).
    pub noise_multiplier: f64,
    /// Distributed mode: the planned fewest contributors `m` (`[federation] min_clients`).
    pub min_contributors: usize,
    /// Adaptive clipping: `σ_b`.
    pub count_noise: Option<f64>,
    /// Largest bound `C` (distributed mode: `clipping_range`; otherwise unbounded).
    pub clip_cap: f64,
    /// Rounds the job plans.
    pub rounds: u32,
    /// How clients are sampled, hence how rounds are accounted.
    pub sampling: DpSampling,
}

/// How a DP job samples its clients, and so which analysis accounts its rounds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum DpSampling {
    /// Poisson sampling at rate `q`: the Poisson-subsampled Gaussian under add/remove of one
    /// client (sensitivity `S`), in RDP and PLD.
    Poisson {
        /// Each client's probability of taking part in a round.
        q: f64,
    },
    /// Fixed-size sampling without replacement: the replace-one analysis (sensitivity `2S`),
    /// RDP only, `q = k / N` per round.
    FixedSize,
}

impl DpSampling {
    /// privet-dp's name for it.
    pub fn kind(self) -> Sampling {
        match self {
            DpSampling::Poisson { .. } => Sampling::Poisson,
            DpSampling::FixedSize => Sampling::FixedSize,
        }
    }

    /// How far one client moves the sum, in units of `S`: 1 (add/remove) or 2 (replace-one).
    pub fn sensitivity_factor(self) -> f64 {
        match self {
            DpSampling::Poisson { .. } => 1.0,
            DpSampling::FixedSize => 2.0,
        }
    }
}

impl PrivacyPlan {
    /// `(S, B)` for a bound `C`: the sensitivity of the clipped vector with its indicator, and
    /// the indicator's scale.
    pub fn sensitivity(&self, clip: f64) -> (f64, Option<f64>) {
        match self.count_noise {
            None => (clip, None),
            Some(sigma_b) => {
                let ratio = self.noise_multiplier / (2.0 * sigma_b);
                let s = clip / (1.0 - ratio * ratio).sqrt();
                (s, Some(self.noise_multiplier * s / (2.0 * sigma_b)))
            }
        }
    }

    /// The bound of the first round.
    pub fn initial_clip(&self) -> f64 {
        match self.config.clip {
            ClipPolicy::Fixed(c) => c,
            ClipPolicy::Adaptive { initial, .. } => initial.min(self.clip_cap),
        }
    }

    /// The client plan of `round` under bound `clip`.
    pub fn client_plan(&self, round: u32, clip: f64) -> ClientPlan {
        let (s, indicator) = self.sensitivity(clip);
        let client_noise_std = (self.config.mode == PrivacyMode::Distributed)
            .then(|| self.noise_multiplier * s / (self.min_contributors as f64).sqrt());
        ClientPlan {
            round,
            clip,
            indicator,
            client_noise_std,
        }
    }
}

/// Epsilon of subsampled-Gaussian `events` (either sampling) at `delta` (RDP, improved
/// conversion), as privet-dp's [`BudgetTracker`](privet_dp::BudgetTracker) computes it.
pub fn epsilon_of(events: &[SampledGaussian], delta: f64) -> Result<f64, FlError> {
    if events.is_empty() {
        return Ok(0.0);
    }
    let delta = Delta::new(delta).map_err(dp_err)?;
    let mut acc = RdpAccountant::new();
    for e in events {
        acc.compose(e).map_err(dp_err)?;
    }
    Ok(acc.epsilon(delta, Conversion::Improved).epsilon)
}

/// Epsilon of `events` at `delta` by the PLD accountant (privet-dp's defaults, as
/// dp_accounting's); `None` unless every event is Poisson-subsampled (the PLD accountant does
/// not model fixed-size sampling).
pub fn pld_epsilon_of(events: &[SampledGaussian], delta: f64) -> Result<Option<f64>, FlError> {
    if events.is_empty() || events.iter().any(|e| e.sampling() != Sampling::Poisson) {
        return Ok(None);
    }
    let delta = Delta::new(delta).map_err(dp_err)?;
    let mut acc =
        privet_dp::pld::PldAccountant::new(privet_dp::pld::PldConfig::default()).map_err(dp_err)?;
    for e in events {
        acc.compose(e).map_err(dp_err)?;
    }
    acc.epsilon(delta).map(Some).map_err(dp_err)
}

/// `P(Binomial(n, q) < m)`, in log space (exact up to floating point for any `n`).
pub fn binomial_below(n: usize, q: f64, m: usize) -> f64 {
    if m == 0 {
        return 0.0;
    }
    if m > n {
        return 1.0;
    }
    if q >= 1.0 {
        return 0.0;
    }
    let (ln_q, ln_1q) = (q.ln(), (-q).ln_1p());
    // ln C(n, j) by the running product C(n, j) = C(n, j-1) (n - j + 1) / j.
    let mut ln_c = 0.0f64;
    let mut total = 0.0f64;
    for j in 0..m {
        if j > 0 {
            ln_c += ((n - j + 1) as f64).ln() - (j as f64).ln();
        }
        total += (ln_c + j as f64 * ln_q + (n - j) as f64 * ln_1q).exp();
    }
    total.min(1.0)
}

fn dp_err(e: privet_dp::DpError) -> FlError {
    FlError::InvalidConfig(format!("privacy accounting: {e}"))
}

impl PrivacyPlan {
    /// Resolves a job's `[privacy]` section for `federation`, whose secure aggregation (if any)
    /// is `secagg`. Calibrates `z` for `target_epsilon` (RDP, fixed-size sampling, `q = k/N`,
    /// the job's rounds; the accountant's multiplier is `z/2`, see the
    /// [crate documentation](crate)).
    pub fn resolve(
        config: &PrivacyConfig,
        federation: &Federation,
        secagg: Option<&privet_secagg::SecAggConfig>,
    ) -> Result<PrivacyPlan, DpFedAvgError> {
        let config = config.clone();
        let num_clients = federation.num_clients;
        if num_clients == 0 {
            return Err(invalid("the federation has no clients"));
        }
        let sampler = privet_fl::ClientSampler {
            size: federation.sample,
            min_clients: federation.min_clients,
            seed: 0,
        };
        // Poisson: k is the expected size (rounded up), q the configured rate.
        let k = sampler.target_size(num_clients);
        let (sampling, q) = match federation.sample {
            SampleSize::Poisson(q) => (DpSampling::Poisson { q }, q),
            _ => (DpSampling::FixedSize, k as f64 / num_clients as f64),
        };
        let clip_cap = match (&config.mode, secagg) {
            (PrivacyMode::Distributed, Some(sa)) => sa.clipping_range,
            (PrivacyMode::Distributed, None) => {
                return Err(invalid(
                    "distributed mode needs secure_aggregation = \"secagg+\"",
                ));
            }
            (PrivacyMode::Central, _) => f64::INFINITY,
        };
        let count_noise = match config.clip {
            ClipPolicy::Fixed(_) => None,
            ClipPolicy::Adaptive { count_noise, .. } => {
                Some(count_noise.unwrap_or(q * num_clients as f64 / 20.0))
            }
        };
        let noise_multiplier = match config.noise {
            NoiseLevel::Multiplier(z) => z,
            NoiseLevel::TargetEpsilon(eps) => {
                use privet_dp::calibrate::{
                    AccountantKind, CalibrationOptions, CalibrationTarget,
                    calibrate_noise_multiplier,
                };
                let target = CalibrationTarget {
                    epsilon: privet_dp::Epsilon::positive(eps)
                        .map_err(|e| invalid(e.to_string()))?,
                    delta: Delta::new(config.delta).map_err(|e| invalid(e.to_string()))?,
                    q: privet_dp::SamplingProbability::new(q)
                        .map_err(|e| invalid(e.to_string()))?,
                    steps: u64::from(federation.rounds),
                    sampling: sampling.kind(),
                };
                let sigma = calibrate_noise_multiplier(
                    &target,
                    AccountantKind::Rdp,
                    &CalibrationOptions::default(),
                )
                .map_err(|e| invalid(format!("cannot calibrate the noise: {e}")))?;
                // The accountant's multiplier is z/2 (replace-one) or z (add/remove, Poisson);
                // a hair more noise absorbs the grid inflation of the central noise.
                sampling.sensitivity_factor() * sigma * (1.0 + 1e-6)
            }
        };
        if let Some(sigma_b) = count_noise
            && noise_multiplier >= 2.0 * sigma_b
        {
            return Err(invalid(format!(
                "adaptive clipping needs noise_multiplier < 2 * count_noise, but z = \
             {noise_multiplier:.4} and count_noise = {sigma_b} (raise count_noise or the \
             clients per round)"
            )));
        }
        let plan = PrivacyPlan {
            min_contributors: federation.min_clients.max(1),
            clients_per_round: k,
            num_clients,
            noise_multiplier,
            count_noise,
            clip_cap,
            rounds: federation.rounds,
            sampling,
            config,
        };
        if plan.config.mode == PrivacyMode::Distributed {
            let cap = match plan.config.clip {
                ClipPolicy::Fixed(c) => c,
                ClipPolicy::Adaptive { .. } => clip_cap,
            };
            if cap > clip_cap {
                return Err(invalid(format!(
                    "distributed mode needs clip <= [secure_aggregation] clipping_range ({clip_cap}), \
                 got {cap}"
                )));
            }
            if let (_, Some(b)) = plan.sensitivity(cap)
                && b > clip_cap
            {
                return Err(invalid(format!(
                    "the adaptive clipping indicator ({b:.4}) exceeds [secure_aggregation] \
                 clipping_range ({clip_cap}): raise clipping_range or count_noise"
                )));
            }
            if plan.min_contributors > k {
                return Err(invalid(format!(
                    "distributed noise is planned for [federation] min_clients = {} contributors, \
                 more than the {k} clients per round",
                    plan.min_contributors
                )));
            }
        }
        Ok(plan)
    }
}

/// The SecAgg+ configuration a DP job runs with: `cfg` (the job's `[secure_aggregation]`)
/// adjusted for `plan`: unit weights (`max_weight = 1`), and in distributed mode room for the
/// noise. Coordinator and clients must use the same.
pub fn adjust_secagg(
    plan: &PrivacyPlan,
    cfg: &mut privet_secagg::SecAggConfig,
) -> Result<(), DpFedAvgError> {
    cfg.max_weight = 1;
    if plan.config.mode == PrivacyMode::Distributed {
        let cap = match plan.config.clip {
            ClipPolicy::Fixed(c) => c,
            ClipPolicy::Adaptive { .. } => plan.clip_cap,
        };
        cfg.distributed_dp_noise = plan.client_plan(0, cap).client_noise_std;
    }
    cfg.validate()
        .map_err(|e| DpFedAvgError::SecureAggregation(e.to_string()))
}

/// One accounting event as persisted.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EventRecord {
    /// Sampling probability `q`.
    pub q: f64,
    /// The accountant's noise multiplier.
    pub sigma: f64,
    /// Rounds with these parameters.
    pub steps: u64,
    /// `"poisson"` or `"fixed"` (absent in version 1: fixed size).
    #[serde(default = "fixed_size_name")]
    pub sampling: String,
}

fn fixed_size_name() -> String {
    Sampling::FixedSize.name().to_string()
}

/// The persistent state of a [`DpAggregator`] (JSON, [`DpState::VERSION`]).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DpState {
    /// Format version.
    pub version: u32,
    /// The clipping bound of the next round.
    pub clip: f64,
    /// Rounds accounted: noised sums released, and Poisson draws that skipped their round.
    pub rounds: u32,
    /// Accounting events, oldest first.
    pub events: Vec<EventRecord>,
    /// Poisson sampling: `Σ β_t` over every draw, `β_t` the largest probability, over the
    /// federation and its neighbours, that draw `t` skips its round (absent in version 1: 0).
    #[serde(default)]
    pub skip_mass: f64,
}

impl DpState {
    /// The format this build writes (it reads 1 too: fixed-size events, no skip mass).
    pub const VERSION: u32 = 2;

    fn events(&self) -> Result<Vec<SampledGaussian>, FlError> {
        self.events
            .iter()
            .map(|e| {
                let sampling = match e.sampling.as_str() {
                    "poisson" => Sampling::Poisson,
                    "fixed" => Sampling::FixedSize,
                    other => {
                        return Err(FlError::InvalidConfig(format!(
                            "privacy state: unknown sampling {:?}",
                            other.chars().take(40).collect::<String>()
                        )));
                    }
                };
                SampledGaussian::new(e.q, e.sigma, e.steps, sampling).map_err(dp_err)
            })
            .collect()
    }

    fn push(&mut self, q: f64, sigma: f64, sampling: Sampling) {
        let name = sampling.name();
        match self.events.last_mut() {
            Some(last) if last.q == q && last.sigma == sigma && last.sampling == name => {
                last.steps += 1;
            }
            _ => self.events.push(EventRecord {
                q,
                sigma,
                steps: 1,
                sampling: name.to_string(),
            }),
        }
        self.rounds += 1;
    }

    /// The extra delta of skipped Poisson draws at cumulative epsilon `eps`:
    /// `(1 + e^ε) Σ β_t` (see the [module documentation](self)).
    pub fn skip_delta(&self, eps: f64) -> f64 {
        if self.skip_mass == 0.0 {
            0.0
        } else {
            (1.0 + eps.exp()) * self.skip_mass
        }
    }
}

/// What one round spent: the round detail [`RoundPrivacy::NAME`] of every round that released
/// a noised sum.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RoundPrivacy {
    /// Central or distributed.
    pub mode: String,
    /// Epsilon of this round alone, at `delta`.
    pub epsilon: f64,
    /// Epsilon of all rounds so far, at `delta` (RDP).
    pub cumulative_epsilon: f64,
    /// The same by the PLD accountant (Poisson sampling only; tighter).
    #[serde(default)]
    pub cumulative_epsilon_pld: Option<f64>,
    /// Poisson sampling: the extra delta of draws that could skip their round,
    /// `(1 + e^ε) Σ β_t`; the guarantee is `(ε, delta + skip_delta)`. 0 under fixed sampling.
    #[serde(default)]
    pub skip_delta: f64,
    /// The reporting delta.
    pub delta: f64,
    /// `z`: noise standard deviation over the sensitivity `S` (add/remove one client).
    pub noise_multiplier: f64,
    /// The multiplier the accountant composed.
    pub accountant_sigma: f64,
    /// `"poisson"` (add/remove) or `"fixed"` (replace-one).
    #[serde(default)]
    pub sampling: String,
    /// Sampling probability `q` (Poisson: the rate; fixed: `k / N`).
    pub sampling_probability: f64,
    /// The clipping bound `C` of the round.
    pub clip: f64,
    /// Standard deviation of the noise on the sum (per coordinate, delta units).
    pub noise_std: f64,
    /// Contributions in the sum.
    pub contributors: usize,
    /// A Poisson draw with too few clients: the round was skipped (charged, nothing released).
    #[serde(default)]
    pub skipped: bool,
    /// Adaptive clipping: the noisy fraction of clients within the bound.
    pub below_clip_fraction: Option<f64>,
    /// Adaptive clipping: the bound of the next round.
    pub next_clip: Option<f64>,
    /// Set on the last round when the job then stopped for its budget: why (the runtime sets
    /// it from the job's stopped status).
    #[serde(default)]
    pub budget_stop: Option<String>,
}

impl RoundPrivacy {
    /// The round detail's name.
    pub const NAME: &'static str = "privacy";
}

/// The client side of DP-FedAvg: clip to the round's bound, append the adaptive-clipping
/// indicator, count with weight 1, and (distributed mode) ask the client's SecAgg+ client for
/// noise.
///
/// The round's bound comes from the coordinator ([`CLIP_PARAM`]) and is checked against the
/// client's own copy of the job before use: with a fixed bound it must be that bound; with
/// adaptive clipping it must be finite, positive and at most the plan's cap. Everything else
/// (the indicator's scale, the noise) the client derives itself, so a coordinator cannot make a
/// client clip loosely or skip its noise.
#[derive(Debug, Clone)]
pub struct DpClient {
    plan: PrivacyPlan,
}

impl DpClient {
    /// The client transform of `plan` (the client's own resolution of the job).
    pub fn new(plan: PrivacyPlan) -> Self {
        DpClient { plan }
    }

    /// The round's plan from the coordinator's published bound, after checking it.
    pub fn round_plan(&self, round: u32, published: &ClientParams) -> Result<ClientPlan, FlError> {
        let clip = published.f64(CLIP_PARAM)?.ok_or_else(|| {
            FlError::Protocol(format!(
                "the training request for round {round} has no clipping bound"
            ))
        })?;
        let acceptable = match self.plan.config.clip {
            ClipPolicy::Fixed(c) => clip == c,
            ClipPolicy::Adaptive { .. } => {
                clip.is_finite() && clip > 0.0 && clip <= self.plan.clip_cap
            }
        };
        if !acceptable {
            return Err(FlError::Protocol(match self.plan.config.clip {
                ClipPolicy::Fixed(c) => {
                    format!("clipping bound {clip} is not the job's fixed bound {c}")
                }
                ClipPolicy::Adaptive { .. } => {
                    format!(
                        "clipping bound {clip} is not in (0, {}]",
                        self.plan.clip_cap
                    )
                }
            }));
        }
        Ok(self.plan.client_plan(round, clip))
    }
}

impl UpdateTransform for DpClient {
    fn apply(&self, ctx: &mut UpdateContext<'_>, delta: &mut Vec<f32>) -> Result<(), FlError> {
        let plan = self.round_plan(ctx.round, ctx.published)?;
        let norm = privet_fl::l2_norm(delta);
        ClipL2 {
            max_norm: plan.clip as f32,
        }
        .clip(ctx.client, delta)?;
        if let Some(b) = plan.indicator {
            let within = norm <= plan.clip;
            delta.push(if within { b as f32 } else { -b as f32 });
        }
        if let Some(std) = plan.client_noise_std {
            ctx.local.set_f64(privet_secagg::NOISE_PARAM, std)?;
        }
        Ok(())
    }

    fn unit_weight(&self) -> bool {
        true
    }
}

/// The grid of distributed mode, as the clients' quantizer has it.
#[derive(Debug, Clone)]
struct Grid {
    quantizer: privet_secagg::Quantizer,
    /// Rounding error per coordinate, in steps.
    rounding: f64,
}

/// The plan of the round in progress.
#[derive(Debug, Clone, Copy)]
struct RoundPlan {
    round: u32,
    q: f64,
    /// The fixed denominator: the clients sampled (fixed size) or expected (Poisson, `q N`).
    denominator: f64,
    client: ClientPlan,
    sensitivity: f64,
}

/// A round as admission would plan it.
#[derive(Debug, Clone, Copy)]
struct Draft {
    round: RoundPlan,
    planned_sigma: f64,
    /// Poisson: the probability `β` that this draw skips its round (worst neighbour).
    skip_probability: Option<f64>,
}

/// The coordinator side of DP-FedAvg (see the [module documentation](self)).
pub struct DpAggregator {
    plan: PrivacyPlan,
    model_len: usize,
    grid: Option<Grid>,
    state: DpState,
    noise_key: [u8; 32],
    current: Option<RoundPlan>,
    /// The accounting of the last round that released a noised sum.
    last: Option<(u32, RoundPrivacy)>,
}

impl std::fmt::Debug for DpAggregator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The noise key stays out of logs.
        f.debug_struct("DpAggregator")
            .field("plan", &self.plan)
            .field("model_len", &self.model_len)
            .field("state", &self.state)
            .finish_non_exhaustive()
    }
}

impl DpAggregator {
    /// The aggregator of `plan` for a model of `model_len` parameters; `secagg` is the SecAgg+
    /// configuration the clients quantize with ([`adjust_secagg`]; required in distributed
    /// mode). The central noise key is drawn from the operating system.
    pub fn new(
        plan: PrivacyPlan,
        model_len: usize,
        secagg: Option<&privet_secagg::SecAggConfig>,
    ) -> Result<Self, DpFedAvgError> {
        let mut key = [0u8; 32];
        rand::TryRngCore::try_fill_bytes(&mut rand::rngs::OsRng, &mut key)
            .map_err(|e| DpFedAvgError::Randomness(e.to_string()))?;
        Self::with_noise_key(plan, model_len, secagg, key)
    }

    /// As [`new`](Self::new) with a given noise key. The noise is a function of the key and the
    /// round, so a known key makes it known: for reproducible tests only.
    pub fn with_noise_key(
        plan: PrivacyPlan,
        model_len: usize,
        secagg: Option<&privet_secagg::SecAggConfig>,
        noise_key: [u8; 32],
    ) -> Result<Self, DpFedAvgError> {
        let grid = match plan.config.mode {
            PrivacyMode::Central => None,
            PrivacyMode::Distributed => {
                let cfg = secagg.ok_or_else(|| {
                    invalid("distributed mode needs the secure aggregation configuration")
                })?;
                if cfg.max_weight != 1 || cfg.distributed_dp_noise.is_none() {
                    return Err(invalid(
                        "the secure aggregation configuration was not prepared for distributed \
                         DP (use adjust_secagg)",
                    ));
                }
                let quantizer = privet_secagg::Quantizer::new(cfg)
                    .map_err(|e| DpFedAvgError::SecureAggregation(e.to_string()))?;
                let rounding = match cfg.rounding {
                    privet_secagg::Rounding::Nearest => 0.5,
                    privet_secagg::Rounding::Stochastic => 1.0,
                };
                Some(Grid {
                    quantizer,
                    rounding,
                })
            }
        };
        let state = DpState {
            version: DpState::VERSION,
            clip: plan.initial_clip(),
            rounds: 0,
            events: Vec::new(),
            skip_mass: 0.0,
        };
        Ok(DpAggregator {
            plan,
            model_len,
            grid,
            state,
            noise_key,
            current: None,
            last: None,
        })
    }

    /// The accounting of `round`, if it released a noised sum (the round detail
    /// [`RoundPrivacy::NAME`] reports the same).
    pub fn round_record(&self, round: u32) -> Option<&RoundPrivacy> {
        self.last
            .as_ref()
            .filter(|(r, _)| *r == round)
            .map(|(_, p)| p)
    }

    /// The resolved plan.
    pub fn plan(&self) -> &PrivacyPlan {
        &self.plan
    }

    /// The persistent state.
    pub fn dp_state(&self) -> &DpState {
        &self.state
    }

    /// Epsilon spent so far at `delta`.
    pub fn spent_epsilon(&self, delta: f64) -> Result<f64, FlError> {
        epsilon_of(&self.state.events()?, delta)
    }

    fn dim(&self) -> usize {
        self.model_len + self.extra_coordinates()
    }

    /// Central mode: the noise and the accountant's multiplier for sensitivity `s`.
    fn central_noise(&self, s: f64) -> Result<(GriddedGaussian, f64), FlError> {
        let sigma = self.plan.noise_multiplier * s;
        let noise = GriddedGaussian::new(sigma).map_err(dp_err)?;
        let factor = self.plan.sampling.sensitivity_factor();
        let acc = noise.effective_sigma() / (factor * s + noise.sensitivity_inflation(self.dim()));
        Ok((noise, acc))
    }

    /// Distributed mode: the accountant's multiplier for `n` contributions and the noise std on
    /// the sum (delta units).
    fn distributed_sigma(
        &self,
        grid: &Grid,
        plan: &ClientPlan,
        s: f64,
        n: usize,
    ) -> Result<(f64, f64), FlError> {
        let std = plan.client_noise_std.ok_or_else(|| {
            FlError::InvalidState("distributed round without client noise".into())
        })?;
        let steps = grid
            .quantizer
            .noise_sigma_steps(std)
            .map_err(|e| FlError::InvalidConfig(e.to_string()))? as f64;
        let step = grid.quantizer.delta_step();
        let d = self.dim() as f64;
        let total = (n as f64).sqrt() * steps;
        let factor = self.plan.sampling.sensitivity_factor();
        let z_grid = total / (factor * (s / step + grid.rounding * d.sqrt()));
        let tau: f64 = 10.0
            * (1..n)
                .map(|j| {
                    let j = j as f64;
                    (-2.0 * std::f64::consts::PI.powi(2) * steps * steps * j / (j + 1.0)).exp()
                })
                .sum::<f64>();
        let acc = 1.0 / (1.0 / z_grid + tau * d.sqrt());
        Ok((acc, total * step))
    }

    fn noise_rng(&self, round: u32) -> NoiseRng {
        let mut rng = NoiseRng::from_seed(self.noise_key);
        rng.set_stream(u64::from(round));
        rng
    }

    fn mode_name(&self) -> &'static str {
        match self.plan.config.mode {
            PrivacyMode::Central => "central",
            PrivacyMode::Distributed => "distributed",
        }
    }

    /// One round's accounting event.
    fn event(&self, q: f64, sigma: f64) -> Result<SampledGaussian, FlError> {
        SampledGaussian::new(q, sigma, 1, self.plan.sampling.kind()).map_err(dp_err)
    }

    /// What a round with `selected` of `available` clients would be and cost.
    fn draft(&self, round: u32, selected: usize, available: usize) -> Result<Draft, FlError> {
        let (q, denominator, skip_probability) = match self.plan.sampling {
            DpSampling::FixedSize => (selected as f64 / available as f64, selected as f64, None),
            // The largest skip probability over this federation and its neighbours (one
            // client fewer is the worst: the tail shrinks as the population grows).
            DpSampling::Poisson { q } => (
                q,
                q * available as f64,
                Some(binomial_below(
                    available.saturating_sub(1),
                    q,
                    self.plan.min_contributors,
                )),
            ),
        };
        let clip = self.state.clip.min(self.plan.clip_cap);
        let client = self.plan.client_plan(round, clip);
        let (s, _) = self.plan.sensitivity(clip);
        let planned_sigma = match &self.grid {
            None => self.central_noise(s)?.1,
            Some(grid) => {
                self.distributed_sigma(grid, &client, s, self.plan.min_contributors)?
                    .0
            }
        };
        Ok(Draft {
            round: RoundPlan {
                round,
                q,
                denominator,
                client,
                sensitivity: s,
            },
            planned_sigma,
            skip_probability,
        })
    }

    /// Why the job must stop before `draft`'s round, if it must: the budget's epsilon at the
    /// budget's delta less the skipped draws' share `(1 + e^ε_budget) Σ β`.
    fn over_budget(&self, round: u32, draft: &Draft) -> Result<Option<String>, FlError> {
        let Some((budget_eps, budget_delta)) = self.plan.config.budget else {
            return Ok(None);
        };
        let mut events = self.state.events()?;
        events.push(self.event(draft.round.q, draft.planned_sigma)?);
        let skip = self.state.skip_mass + draft.skip_probability.unwrap_or(0.0);
        let accountant_delta = budget_delta - (1.0 + budget_eps.exp()) * skip;
        let after = if accountant_delta > 0.0 {
            epsilon_of(&events, accountant_delta)?
        } else {
            f64::INFINITY
        };
        if after <= budget_eps {
            return Ok(None);
        }
        let spent = if accountant_delta > 0.0 {
            epsilon_of(&events[..events.len() - 1], accountant_delta)?
        } else {
            f64::INFINITY
        };
        Ok(Some(format!(
            "privacy budget exhausted: round {round} would bring epsilon from {spent:.4} to \
             {after:.4}, above the budget of {budget_eps} at delta {budget_delta:e} ({} round(s) \
             accounted)",
            self.state.rounds
        )))
    }
}

impl AggregateTransform for DpAggregator {
    fn extra_coordinates(&self) -> usize {
        usize::from(self.plan.count_noise.is_some())
    }

    fn unit_weights(&self) -> bool {
        true
    }

    fn admit_round(
        &mut self,
        round: u32,
        selected: usize,
        available: usize,
        params: &mut ClientParams,
    ) -> Result<Admission, FlError> {
        if selected == 0 || available < selected {
            return Err(FlError::InvalidState(format!(
                "{selected} of {available} clients selected"
            )));
        }
        let draft = self.draft(round, selected, available)?;
        if let Some(reason) = self.over_budget(round, &draft)? {
            return Ok(Admission::Stop(reason));
        }
        if let Some(beta) = draft.skip_probability {
            self.state.skip_mass += beta;
        }
        let client = draft.round.client;
        self.current = Some(draft.round);
        params.set_f64(CLIP_PARAM, client.clip)?;
        Ok(Admission::Admit)
    }

    fn skip_round(
        &mut self,
        round: u32,
        selected: usize,
        available: usize,
    ) -> Result<Admission, FlError> {
        if self.plan.sampling == DpSampling::FixedSize {
            return Err(FlError::InvalidState(
                "a skipped round under fixed-size sampling".into(),
            ));
        }
        let draft = self.draft(round, selected.max(1), available.max(1))?;
        if let Some(reason) = self.over_budget(round, &draft)? {
            return Ok(Admission::Stop(reason));
        }
        // The draw is charged as if its noised sum had been released (see the module docs).
        self.state.skip_mass += draft.skip_probability.unwrap_or(0.0);
        self.state
            .push(draft.round.q, draft.planned_sigma, Sampling::Poisson);
        self.current = None;
        let events = self.state.events()?;
        let delta = self.plan.config.delta;
        let cumulative = epsilon_of(&events, delta)?;
        let record = RoundPrivacy {
            mode: self.mode_name().to_string(),
            epsilon: epsilon_of(&[self.event(draft.round.q, draft.planned_sigma)?], delta)?,
            cumulative_epsilon: cumulative,
            cumulative_epsilon_pld: pld_epsilon_of(&events, delta)?,
            skip_delta: self.state.skip_delta(cumulative),
            delta,
            noise_multiplier: self.plan.noise_multiplier,
            accountant_sigma: draft.planned_sigma,
            sampling: Sampling::Poisson.name().to_string(),
            sampling_probability: draft.round.q,
            clip: draft.round.client.clip,
            noise_std: 0.0,
            contributors: 0,
            skipped: true,
            below_clip_fraction: None,
            next_clip: None,
            budget_stop: None,
        };
        self.last = Some((round, record));
        Ok(Admission::Admit)
    }

    fn apply(&mut self, round: u32, sum: &mut privet_fl::WeightedSum) -> Result<(), FlError> {
        let plan = match self.current {
            Some(p) if p.round == round => p,
            _ => {
                return Err(FlError::InvalidState(format!(
                    "round {round} was not admitted by the privacy accountant"
                )));
            }
        };
        if sum.sum.len() != self.dim() {
            return Err(FlError::LengthMismatch {
                expected: self.dim(),
                found: sum.sum.len(),
            });
        }
        let n = sum.num_clients;
        let (accountant_sigma, noise_std) = match &self.grid {
            None => {
                let (noise, acc) = self.central_noise(plan.sensitivity)?;
                let mut rng = self.noise_rng(round);
                noise
                    .add_noise_f64(&mut rng, &mut sum.sum)
                    .map_err(dp_err)?;
                (acc, noise.effective_sigma())
            }
            Some(grid) => {
                if n < self.plan.min_contributors {
                    return Err(FlError::InvalidState(format!(
                        "{n} contribution(s), fewer than the {} the distributed noise is planned \
                         for",
                        self.plan.min_contributors
                    )));
                }
                self.distributed_sigma(grid, &plan.client, plan.sensitivity, n)?
            }
        };
        // Accounted as soon as the noised sum exists, whatever happens next.
        self.state
            .push(plan.q, accountant_sigma, self.plan.sampling.kind());
        let (mut below, mut next_clip) = (None, None);
        if let (
            Some(b),
            ClipPolicy::Adaptive {
                target_quantile,
                learning_rate,
                ..
            },
        ) = (plan.client.indicator, self.plan.config.clip)
        {
            let indicator = sum.sum.pop().unwrap_or(0.0);
            let n = n.max(1) as f64;
            let fraction = (indicator / b + n) / (2.0 * n);
            let updated = plan.client.clip * (-learning_rate * (fraction - target_quantile)).exp();
            self.state.clip = updated.clamp(1e-12, self.plan.clip_cap);
            below = Some(fraction);
            next_clip = Some(self.state.clip);
        }
        sum.total_weight = plan.denominator;
        let events = self.state.events()?;
        let delta = self.plan.config.delta;
        let cumulative = epsilon_of(&events, delta)?;
        let record = RoundPrivacy {
            mode: self.mode_name().to_string(),
            epsilon: epsilon_of(&[self.event(plan.q, accountant_sigma)?], delta)?,
            cumulative_epsilon: cumulative,
            cumulative_epsilon_pld: pld_epsilon_of(&events, delta)?,
            skip_delta: self.state.skip_delta(cumulative),
            delta,
            noise_multiplier: self.plan.noise_multiplier,
            accountant_sigma,
            sampling: self.plan.sampling.kind().name().to_string(),
            sampling_probability: plan.q,
            clip: plan.client.clip,
            noise_std,
            contributors: n,
            skipped: false,
            below_clip_fraction: below,
            next_clip,
            budget_stop: None,
        };
        self.last = Some((round, record));
        Ok(())
    }

    fn round_details(&mut self, round: u32, details: &mut RoundDetails) -> Result<(), FlError> {
        let Some(record) = self.round_record(round) else {
            return Ok(());
        };
        let value = serde_json::to_value(record)
            .map_err(|e| FlError::InvalidState(format!("privacy details: {e}")))?;
        details.insert(RoundPrivacy::NAME, value)
    }

    fn state(&self) -> Option<String> {
        // Plain numbers and strings: serialising cannot fail.
        serde_json::to_string(&self.state).ok()
    }

    fn restore_state(&mut self, state: &str) -> Result<(), FlError> {
        if state.len() > 1 << 20 {
            return Err(FlError::InvalidConfig(
                "privacy state larger than 1 MiB".into(),
            ));
        }
        let parsed: DpState = serde_json::from_str(state)
            .map_err(|e| FlError::InvalidConfig(format!("privacy state: {e}")))?;
        if !(1..=DpState::VERSION).contains(&parsed.version) {
            return Err(FlError::InvalidConfig(format!(
                "privacy state version {} (this build reads {})",
                parsed.version,
                DpState::VERSION
            )));
        }
        if !(parsed.clip.is_finite() && parsed.clip > 0.0) {
            return Err(FlError::InvalidConfig(format!(
                "privacy state: clipping bound {}",
                parsed.clip
            )));
        }
        parsed.events()?;
        if !(parsed.skip_mass.is_finite() && parsed.skip_mass >= 0.0) {
            return Err(FlError::InvalidConfig(format!(
                "privacy state: skip mass {}",
                parsed.skip_mass
            )));
        }
        let steps: u64 = parsed.events.iter().map(|e| e.steps).sum();
        if steps != u64::from(parsed.rounds) {
            return Err(FlError::InvalidConfig(format!(
                "privacy state: {} rounds but {steps} accounted steps",
                parsed.rounds
            )));
        }
        self.state = DpState {
            version: DpState::VERSION,
            ..parsed
        };
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    fn adaptive_plan(distributed: bool) -> PrivacyPlan {
        let config = PrivacyConfig {
            mode: if distributed {
                PrivacyMode::Distributed
            } else {
                PrivacyMode::Central
            },
            clip: ClipPolicy::Adaptive {
                initial: 0.1,
                target_quantile: 0.5,
                learning_rate: 0.2,
                count_noise: Some(2.0),
            },
            noise: NoiseLevel::Multiplier(1.0),
            delta: 1e-5,
            budget: None,
        };
        let federation = Federation {
            sample: SampleSize::Count(4),
            min_clients: 4,
            rounds: 3,
            num_clients: 4,
        };
        let secagg = distributed.then(privet_secagg::SecAggConfig::default);
        PrivacyPlan::resolve(&config, &federation, secagg.as_ref()).unwrap()
    }

    fn published(clip: Option<f64>) -> ClientParams {
        let mut p = ClientParams::new();
        if let Some(c) = clip {
            p.set_f64(CLIP_PARAM, c).unwrap();
        }
        p
    }

    /// The coordinator's clipping bound is taken only if it is a usable bound for the job.
    #[test]
    fn a_bad_clipping_bound_from_the_coordinator_is_refused() {
        let client = DpClient::new(adaptive_plan(false));
        let err = client.round_plan(1, &published(None)).unwrap_err();
        assert!(err.to_string().contains("no clipping bound"), "{err}");
        for bad in [0.0, -1.0, f64::NAN, f64::INFINITY] {
            assert!(
                client.round_plan(1, &published(Some(bad))).is_err(),
                "{bad}"
            );
        }
        let plan = client.round_plan(2, &published(Some(0.25))).unwrap();
        assert_eq!((plan.round, plan.clip), (2, 0.25));
        // Distributed noise caps the bound at the quantizer's clipping range.
        let d = DpClient::new(adaptive_plan(true));
        let cap = d.plan.clip_cap;
        assert!(cap.is_finite());
        assert!(d.round_plan(1, &published(Some(cap * 2.0))).is_err());
        d.round_plan(1, &published(Some(cap))).unwrap();
    }

    #[test]
    fn a_fixed_bound_cannot_be_changed_by_the_coordinator() {
        let mut plan = adaptive_plan(false);
        plan.config.clip = ClipPolicy::Fixed(1.0);
        plan.count_noise = None;
        let client = DpClient::new(plan);
        assert!(client.round_plan(1, &published(Some(1.0))).is_ok());
        let err = client.round_plan(1, &published(Some(100.0))).unwrap_err();
        assert!(err.to_string().contains("fixed bound"), "{err}");
    }

    #[test]
    fn the_client_asks_its_secagg_client_for_its_own_noise() {
        let client = DpClient::new(adaptive_plan(true));
        let cap = client.plan.clip_cap;
        let mut p = published(Some(cap));
        // A coordinator cannot set the noise: local parameters are the client's own.
        p.set_f64(privet_secagg::NOISE_PARAM, 0.0).unwrap();
        let mut ctx = UpdateContext::new(1, privet_fl::ClientId(0), &p);
        let mut delta = vec![0.5f32, -0.5];
        client.apply(&mut ctx, &mut delta).unwrap();
        assert_eq!(delta.len(), 3, "the adaptive indicator is appended");
        let std = ctx.local.f64(privet_secagg::NOISE_PARAM).unwrap().unwrap();
        let expected = client.plan.client_plan(1, cap).client_noise_std.unwrap();
        assert_eq!(std, expected);
        assert!(std > 0.0);
    }
}
