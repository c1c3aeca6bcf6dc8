//! The configuration of secure aggregation, as a job file carries it.

use serde::Deserialize;

use crate::SecAggError;
use crate::prg::MaskPrg;

/// How real values are rounded onto the fixed-point grid.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Rounding {
    /// Round to the nearest grid point (deterministic, biased by at most half a step).
    #[default]
    Nearest,
    /// Round up or down at random with the probabilities that make the rounding unbiased
    /// (randomness from the client's CSPRNG).
    Stochastic,
}

/// Standard deviations of the summed noise kept clear of the modulus (see
/// [`SecAggConfig::distributed_dp_noise`]).
pub const NOISE_TAIL_SIGMAS: f64 = 12.0;

/// An explicit Shamir reconstruction threshold.
#[derive(Clone, Copy, Debug, PartialEq, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Threshold {
    /// A fraction of the degree `k`: `t = ⌈f k⌉`, in `(0, 1]`.
    Fraction(f64),
    /// An absolute number of shares (clamped to `k` when the graph is smaller).
    Absolute(u32),
}

/// Configuration of SecAgg+ (see the [crate documentation](crate) for the protocol).
///
/// Deserializes from a job file with unknown keys refused; every field has a default:
///
/// ```
/// let config: privet_secagg::SecAggConfig = toml::from_str(
///     "clipping_range = 4.0\nmodulus_bits = 40\nreconstruction_threshold = { fraction = 0.6 }",
/// ).unwrap();
/// config.validate().unwrap();
/// assert_eq!(config.max_clients, 1000);
/// ```
#[derive(Clone, Debug, PartialEq, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SecAggConfig {
    /// Each coordinate of a delta is clipped to `[-c, c]` before quantization (default 8.0, as
    /// Flower's SecAgg+).
    pub clipping_range: f64,
    /// Arithmetic is modulo `2^b` (default 32; 16 to 64).
    pub modulus_bits: u32,
    /// The most clients one round may have (default 1000). With `max_weight`, it fixes the
    /// quantization headroom, so that the sum cannot wrap around the modulus.
    pub max_clients: u32,
    /// Aggregation weights (example counts) are clipped to `1..=max_weight` (default 10,000).
    pub max_weight: u64,
    /// Reported training losses are clipped to `[-max_loss, max_loss]` (default 100).
    pub max_loss: f64,
    /// Rounding onto the fixed-point grid (default nearest).
    pub rounding: Rounding,
    /// The generator that expands mask keys (default `"aes128-ctr"`; `"chacha20"` is the
    /// generator of wire version 1, faster where the processor has no AES instructions). It
    /// is signed into every key advertisement, and a client or coordinator configured with
    /// another one refuses it (see [`crate::prg`]).
    pub mask_prg: MaskPrg,
    /// Overrides the graph degree `k` (an even number; `k ≥ n - 1` means the complete graph).
    pub degree: Option<u32>,
    /// Overrides the Shamir threshold `t`.
    pub reconstruction_threshold: Option<Threshold>,
    /// `γ`: the largest fraction of a round's clients assumed corrupted and colluding with the
    /// coordinator (default 0.05).
    pub corrupt_fraction: f64,
    /// `δ`: the largest fraction of a round's clients assumed to drop out after advertising
    /// their keys (default 0.05).
    pub dropout_fraction: f64,
    /// `σ`: security may fail with probability at most `2^-σ` per round (default 40).
    pub security_bits: u32,
    /// `η`: a round may abort for lack of shares with probability at most `2^-η` within the
    /// dropout budget (default 20).
    pub correctness_bits: u32,
    /// Distributed differential privacy on top of SecAgg+ (Kairouz, Liu and Steinke 2021, "The
    /// Distributed Discrete Gaussian Mechanism"): the largest per-client noise standard
    /// deviation, in delta units, that any round may ask for. Every client adds discrete
    /// Gaussian noise to its quantized update before masking, so the unmasked sum is already
    /// noised.
    ///
    /// Set by a job's `[privacy] mode = "distributed"`, never read from the
    /// `[secure_aggregation]` table. Its only effect here is to leave room in the modulus for
    /// the noise: the quantization levels `Q` satisfy
    /// `max_clients · Q + 12 · √max_clients · σ_max Q / (W c) ≤ 2^(b-1) - 1`, so a sum of
    /// `max_clients` updates plus their noise wraps only if the summed noise exceeds 12
    /// standard deviations (probability below `10^-32` per coordinate). The noise of a round
    /// comes from the client's own update transforms, as the local parameter
    /// [`NOISE_PARAM`](crate::NOISE_PARAM) (see [`UpdateContext`](privet_fl::UpdateContext)).
    #[serde(skip)]
    pub distributed_dp_noise: Option<f64>,
}

impl Default for SecAggConfig {
    fn default() -> Self {
        SecAggConfig {
            clipping_range: 8.0,
            modulus_bits: 32,
            max_clients: 1000,
            max_weight: 10_000,
            max_loss: 100.0,
            rounding: Rounding::Nearest,
            mask_prg: MaskPrg::Aes128Ctr,
            degree: None,
            reconstruction_threshold: None,
            corrupt_fraction: 0.05,
            dropout_fraction: 0.05,
            security_bits: 40,
            correctness_bits: 20,
            distributed_dp_noise: None,
        }
    }
}

/// The fewest quantization levels per client value that validation accepts (`2^8`).
pub const MIN_LEVELS: u64 = 1 << 8;

impl SecAggConfig {
    /// Checks every field and their combination; see [`SecAggError::InvalidConfig`].
    pub fn validate(&self) -> Result<(), SecAggError> {
        let bad = |msg: String| Err(SecAggError::InvalidConfig(msg));
        if !(self.clipping_range.is_finite() && self.clipping_range > 0.0) {
            return bad(format!(
                "clipping_range must be positive and finite, got {}",
                self.clipping_range
            ));
        }
        if !(self.max_loss.is_finite() && self.max_loss > 0.0) {
            return bad(format!(
                "max_loss must be positive and finite, got {}",
                self.max_loss
            ));
        }
        if !(16..=64).contains(&self.modulus_bits) {
            return bad(format!(
                "modulus_bits must be between 16 and 64, got {}",
                self.modulus_bits
            ));
        }
        if !(3..=1_000_000).contains(&self.max_clients) {
            return bad(format!(
                "max_clients must be between 3 and 1000000, got {}",
                self.max_clients
            ));
        }
        if self.max_weight == 0 || self.max_weight > 1 << 32 {
            return bad(format!(
                "max_weight must be between 1 and 2^32, got {}",
                self.max_weight
            ));
        }
        // The weight slot adds up to max_clients * max_weight, unsigned, exactly.
        let weight_bound = u128::from(self.max_clients) * u128::from(self.max_weight);
        if weight_bound >= 1u128 << self.modulus_bits.min(53) {
            return bad(format!(
                "max_clients * max_weight = {weight_bound} does not fit in {} bits",
                self.modulus_bits.min(53)
            ));
        }
        if let Some(std) = self.distributed_dp_noise
            && !(std.is_finite() && std > 0.0)
        {
            return bad(format!(
                "distributed DP noise must be positive and finite, got {std}"
            ));
        }
        let levels = self.levels();
        if levels < MIN_LEVELS {
            return bad(format!(
                "{} bits leave only {levels} quantization levels per client value for {} \
                 clients (at least {MIN_LEVELS} needed): raise modulus_bits or lower max_clients",
                self.modulus_bits, self.max_clients
            ));
        }
        for (name, f) in [
            ("corrupt_fraction", self.corrupt_fraction),
            ("dropout_fraction", self.dropout_fraction),
        ] {
            if !(0.0..0.5).contains(&f) {
                return bad(format!("{name} must be in [0, 0.5), got {f}"));
            }
        }
        if !(1..=128).contains(&self.security_bits) {
            return bad(format!(
                "security_bits must be between 1 and 128, got {}",
                self.security_bits
            ));
        }
        if !(1..=64).contains(&self.correctness_bits) {
            return bad(format!(
                "correctness_bits must be between 1 and 64, got {}",
                self.correctness_bits
            ));
        }
        if let Some(k) = self.degree
            && (k < 2 || !k.is_multiple_of(2))
        {
            return bad(format!(
                "degree must be an even number of at least 2, got {k}"
            ));
        }
        match self.reconstruction_threshold {
            Some(Threshold::Fraction(f)) if !(f > 0.0 && f <= 1.0) => bad(format!(
                "reconstruction_threshold fraction must be in (0, 1], got {f}"
            )),
            Some(Threshold::Absolute(t)) if t < 2 => bad(format!(
                "reconstruction_threshold must be at least 2 shares, got {t}"
            )),
            _ => Ok(()),
        }
    }

    /// Quantization levels on each side of zero for one client's value: `Q` with
    /// `max_clients * Q < 2^(b-1)`, so that a sum of signed values cannot wrap, and at most
    /// `2^52`, so that every grid point is exact in `f64`. With [`Self::distributed_dp_noise`], `Q`
    /// also leaves room for the noise (see there).
    pub fn levels(&self) -> u64 {
        let half = (1u128 << (self.modulus_bits.clamp(2, 64) - 1)) - 1;
        let clients = u128::from(self.max_clients.max(1));
        let q = match self.distributed_dp_noise {
            None => half / clients,
            Some(max_noise_std) => {
                // Noise in grid units is sigma * Q / (W c): the summed noise's reserve scales
                // with Q like the values do, so it counts as extra clients.
                let m = clients as f64;
                let reserve = NOISE_TAIL_SIGMAS * m.sqrt() * max_noise_std
                    / (self.max_weight.max(1) as f64 * self.clipping_range);
                let q = (half as f64 / (m + reserve.max(0.0))).floor();
                if q.is_finite() && q >= 0.0 {
                    q as u128
                } else {
                    0
                }
            }
        };
        u64::try_from(q.min(1 << 52)).unwrap_or(1 << 52)
    }
}
