//! Fixed-point encoding of a weighted update modulo `2^b`.
//!
//! A client with weight `w = min(num_examples, max_weight)`, delta `Δ` and loss `ℓ` encodes the
//! vector `(w·Δ_1, …, w·Δ_d, w, w·ℓ)`:
//!
//! - each `Δ_i` is clipped to `[-c, c]` and `w·Δ_i ∈ [-W c, W c]` (`W = max_weight`) is mapped
//!   linearly onto the integers `[-Q, Q]`, `Q = ⌊(2^(b-1) - 1) / max_clients⌋`
//!   (at most `2^52`, [`SecAggConfig::levels`]), rounded to nearest (ties to even) or
//!   stochastically, and stored in two's complement modulo `2^b`;
//! - the weight is stored exactly as an integer;
//! - `ℓ` is clipped to `[-L, L]` (`L = max_loss`) and `w·ℓ` mapped like the deltas.
//!
//! A sum of at most `max_clients` such vectors cannot wrap: each signed slot stays within
//! `max_clients · Q < 2^(b-1)` in absolute value and the weight slot below
//! `max_clients · W < 2^b` (both checked by [`SecAggConfig::validate`]). Decoding reads the
//! signed slots back in two's complement and scales them by `W c / Q` (deltas) or `W L / Q`
//! (loss) into `f64`.

use privet_dp::noise::{DiscreteGaussian, NoiseRng};
use rand_core::Rng;

use crate::SecAggError;
use crate::config::{Rounding, SecAggConfig};
use crate::crypto::{SecretRng, fresh_rng, modulus_mask};

/// Encodes updates into and decodes sums out of vectors modulo `2^b` (see the
/// [module documentation](self)).
#[derive(Clone, Debug, PartialEq)]
pub struct Quantizer {
    bits: u32,
    mask: u64,
    levels: u64,
    clip: f64,
    max_weight: u64,
    max_loss: f64,
    max_clients: u64,
    rounding: Rounding,
}

/// A decoded sum of encoded updates.
#[derive(Clone, PartialEq)]
pub struct DecodedSum {
    /// `Σ w_k Δ_k` per parameter.
    pub sum: Vec<f64>,
    /// `Σ w_k` (exact).
    pub total_weight: u64,
    /// `Σ w_k ℓ_k`.
    pub loss_sum: f64,
}

impl std::fmt::Debug for DecodedSum {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodedSum")
            .field("sum_len", &self.sum.len())
            .field("total_weight", &self.total_weight)
            .field("loss_sum", &self.loss_sum)
            .finish()
    }
}

/// Largest level count for which [`round_half_even`] is exact on every scaled value.
const MAX_FAST_LEVELS: u64 = 1 << 51;

/// Rounds `x` to the nearest integer, ties to even, for `|x| <= 2^51`: adding and subtracting
/// `1.5 · 2^52` leaves no fractional bits (IEEE 754 round-to-nearest-even does the rounding).
/// Two additions instead of the libm call `f64::round` becomes on baseline x86-64.
#[inline]
fn round_half_even(x: f64) -> f64 {
    (x + ROUNDING_SHIFT) - ROUNDING_SHIFT
}

/// `1.5 · 2^52`: adding it to `|x| <= 2^51` leaves `x` rounded (ties to even) in the low bits.
const ROUNDING_SHIFT: f64 = 6_755_399_441_055_744.0;

/// `round_half_even(x)` as a 64-bit two's complement integer, for `|x| <= 2^51`, without a
/// float-to-integer conversion: `x + 1.5 · 2^52` has the exponent of `1.5 · 2^52` and the
/// mantissa `2^51 + round(x)`, so the difference of the two bit patterns is `round(x)`.
#[inline]
fn rounded_twos_complement(x: f64) -> u64 {
    (x + ROUNDING_SHIFT)
        .to_bits()
        .wrapping_sub(ROUNDING_SHIFT.to_bits())
}

impl Quantizer {
    /// The quantizer of a configuration (validated here).
    pub fn new(config: &SecAggConfig) -> Result<Self, SecAggError> {
        config.validate()?;
        Ok(Quantizer {
            bits: config.modulus_bits,
            mask: modulus_mask(config.modulus_bits),
            levels: config.levels(),
            clip: config.clipping_range,
            max_weight: config.max_weight,
            max_loss: config.max_loss,
            max_clients: u64::from(config.max_clients),
            rounding: config.rounding,
        })
    }

    /// The modulus exponent `b`.
    pub fn modulus_bits(&self) -> u32 {
        self.bits
    }

    /// Length of the encoded vector for a model of `model_len` parameters.
    pub fn vector_len(model_len: usize) -> usize {
        model_len.saturating_add(2)
    }

    /// The largest aggregation weight `W`.
    pub fn max_weight(&self) -> u64 {
        self.max_weight
    }

    /// The most clients a sum may have.
    pub fn max_clients(&self) -> u64 {
        self.max_clients
    }

    /// The aggregation weight of a client that trained on `num_examples` examples.
    pub fn weight(&self, num_examples: u64) -> u64 {
        num_examples.min(self.max_weight)
    }

    /// The value of one quantization step of a `w·Δ` slot.
    pub fn delta_step(&self) -> f64 {
        self.max_weight as f64 * self.clip / self.levels as f64
    }

    fn loss_step(&self) -> f64 {
        self.max_weight as f64 * self.max_loss / self.levels as f64
    }

    /// Encodes one client's update. Stochastic rounding draws from a fresh OS-seeded CSPRNG.
    ///
    /// Errors: zero examples, or a non-finite delta or loss.
    pub fn encode(
        &self,
        delta: &[f32],
        num_examples: u64,
        loss: f32,
    ) -> Result<Vec<u64>, SecAggError> {
        let mut rng = match self.rounding {
            Rounding::Nearest => None,
            Rounding::Stochastic => Some(fresh_rng()?),
        };
        self.encode_with(delta, num_examples, loss, rng.as_mut())
    }

    pub(crate) fn encode_with(
        &self,
        delta: &[f32],
        num_examples: u64,
        loss: f32,
        rng: Option<&mut SecretRng>,
    ) -> Result<Vec<u64>, SecAggError> {
        let mut out = Vec::new();
        self.encode_into(delta, num_examples, loss, rng, &mut out)?;
        Ok(out)
    }

    /// [`Self::encode_with`] into `out` (cleared first): a client reuses one buffer round
    /// after round, so the pages of an input of several megabytes are not faulted in anew.
    pub(crate) fn encode_into(
        &self,
        delta: &[f32],
        num_examples: u64,
        loss: f32,
        mut rng: Option<&mut SecretRng>,
        out: &mut Vec<u64>,
    ) -> Result<(), SecAggError> {
        out.clear();
        if num_examples == 0 {
            return Err(SecAggError::Training(
                "the update reports zero examples".into(),
            ));
        }
        if !loss.is_finite() || !privet_fl::engine::all_finite(delta) {
            return Err(SecAggError::Training("the update is not finite".into()));
        }
        let w = self.weight(num_examples);
        let q = self.levels as f64;
        let delta_scale = w as f64 * q / (self.max_weight as f64 * self.clip);
        let loss_scale = w as f64 * q / (self.max_weight as f64 * self.max_loss);
        out.reserve(Self::vector_len(delta.len()));
        if self.rounding == Rounding::Nearest && self.levels <= MAX_FAST_LEVELS {
            // The hot path (one word per model parameter): no branch and no libm call, so the
            // loop vectorizes. |x| <= levels <= 2^51, where `round_half_even` is exact.
            let (clip, mask) = (self.clip, self.mask);
            out.extend(delta.iter().map(|&d| {
                let x = (f64::from(d).max(-clip).min(clip) * delta_scale)
                    .max(-q)
                    .min(q);
                rounded_twos_complement(x) & mask
            }));
        } else {
            for &d in delta {
                let x = f64::from(d).clamp(-self.clip, self.clip) * delta_scale;
                out.push(self.to_word(self.round(x, rng.as_deref_mut())));
            }
        }
        out.push(w & self.mask);
        let l = f64::from(loss).clamp(-self.max_loss, self.max_loss) * loss_scale;
        out.push(self.to_word(self.round(l, rng)));
        Ok(())
    }

    /// Rounds `x ∈ [-Q, Q]` (up to floating error) to an integer in `[-Q, Q]`.
    fn round(&self, x: f64, rng: Option<&mut SecretRng>) -> i64 {
        let r = match (self.rounding, rng) {
            (Rounding::Stochastic, Some(rng)) => {
                let floor = x.floor();
                let u = (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64);
                if u < x - floor { floor + 1.0 } else { floor }
            }
            _ if self.levels <= MAX_FAST_LEVELS => round_half_even(x),
            _ => x.round_ties_even(),
        };
        let q = self.levels as f64;
        r.clamp(-q, q) as i64
    }

    fn to_word(&self, v: i64) -> u64 {
        (v as u64) & self.mask
    }

    fn to_signed(&self, w: u64) -> i128 {
        let w = w & self.mask;
        if w > self.mask / 2 {
            i128::from(w) - (i128::from(self.mask) + 1)
        } else {
            i128::from(w)
        }
    }

    /// The integer standard deviation, in grid steps of a `w·Δ` slot, of the discrete Gaussian
    /// noise that stands for noise of standard deviation `std` in delta units (weight 1): `⌈std
    /// / step⌉`. Rounding up never gives less noise than asked for.
    ///
    /// Errors if it is below 2 steps (the grid is too coarse for the discrete noise to behave
    /// like the Gaussian the accounting assumes) or not below `2^32`.
    pub fn noise_sigma_steps(&self, std: f64) -> Result<u64, SecAggError> {
        let steps = (std / self.delta_step()).ceil();
        if !(steps.is_finite() && (2.0..4294967296.0).contains(&steps)) {
            return Err(SecAggError::InvalidConfig(format!(
                "distributed DP noise of standard deviation {std} is {steps} grid steps of \
                 {}; it must be 2 to 2^32 steps (change clipping_range or modulus_bits)",
                self.delta_step()
            )));
        }
        Ok(steps as u64)
    }

    /// Adds discrete Gaussian noise with standard deviation `std` (delta units, see
    /// [`Self::noise_sigma_steps`]) to the `slots` delta words of an encoded vector (not to the
    /// weight or loss), modulo `2^b`. Exact sampler (Canonne, Kamath and Steinke 2020) on a
    /// CSPRNG.
    pub fn add_discrete_noise(
        &self,
        words: &mut [u64],
        slots: usize,
        std: f64,
        rng: &mut NoiseRng,
    ) -> Result<(), SecAggError> {
        if slots > words.len().saturating_sub(2) {
            return Err(SecAggError::Malformed(format!(
                "{slots} noise slots in a vector of {} words",
                words.len()
            )));
        }
        let sigma = self.noise_sigma_steps(std)?;
        let sampler = DiscreteGaussian::with_integer_sigma(sigma)
            .map_err(|e| SecAggError::InvalidConfig(e.to_string()))?;
        for w in &mut words[..slots] {
            let z = sampler.sample(rng);
            *w = w.wrapping_add(z as u64) & self.mask;
        }
        Ok(())
    }

    /// Decodes a sum of encoded vectors (of `model_len + 2` words).
    ///
    /// Errors: a vector shorter than 2 words, a zero or impossible total weight.
    pub fn decode(&self, words: &[u64]) -> Result<DecodedSum, SecAggError> {
        let (body, tail) = words
            .split_at_checked(words.len().saturating_sub(2))
            .ok_or_else(|| SecAggError::Malformed("sum vector too short".into()))?;
        let [weight, loss] = tail else {
            return Err(SecAggError::Malformed("sum vector too short".into()));
        };
        let total_weight = weight & self.mask;
        if total_weight == 0 || total_weight > self.max_clients.saturating_mul(self.max_weight) {
            return Err(SecAggError::Protocol(format!(
                "the unmasked total weight {total_weight} is impossible"
            )));
        }
        let step = self.delta_step();
        let sum = body
            .iter()
            .map(|&w| self.to_signed(w) as f64 * step)
            .collect();
        Ok(DecodedSum {
            sum,
            total_weight,
            loss_sum: self.to_signed(*loss) as f64 * self.loss_step(),
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use proptest::prelude::*;

    use super::*;

    fn quantizer(config: SecAggConfig) -> Quantizer {
        Quantizer::new(&config).unwrap()
    }

    /// The two-addition rounding agrees with `f64::round_ties_even` on ties, near-ties, large
    /// values up to 2^51 and random values.
    #[test]
    fn fast_rounding_is_round_ties_even() {
        let big = (1u64 << 51) as f64;
        let mut cases = vec![
            0.0,
            -0.0,
            0.5,
            -0.5,
            1.5,
            -1.5,
            2.5,
            -2.5,
            0.49999999999999994,
        ];
        cases.extend([
            big,
            -big,
            big - 0.5,
            -(big - 0.5),
            big - 1.5,
            1e15 + 0.5,
            -1e15 - 0.5,
        ]);
        for x in cases {
            assert_eq!(round_half_even(x), x.round_ties_even(), "{x}");
            assert_eq!(
                rounded_twos_complement(x),
                x.round_ties_even() as i64 as u64,
                "{x}"
            );
        }
    }

    proptest! {
        #[test]
        fn fast_rounding_matches_std(x in -2_251_799_813_685_248.0f64..2_251_799_813_685_248.0) {
            prop_assert_eq!(round_half_even(x), x.round_ties_even());
            prop_assert_eq!(rounded_twos_complement(x), x.round_ties_even() as i64 as u64);
        }

        #[test]
        fn fast_rounding_matches_std_near_zero(x in -1.0e6f64..1.0e6) {
            prop_assert_eq!(rounded_twos_complement(x), x.round_ties_even() as i64 as u64);
        }
    }

    fn add(a: &mut [u64], b: &[u64], mask: u64) {
        for (x, y) in a.iter_mut().zip(b) {
            *x = x.wrapping_add(*y) & mask;
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        /// The decoded sum of encoded updates is within half a step per client of the true
        /// clipped weighted sum, for any number of clients up to max_clients at extreme values.
        #[test]
        fn sums_decode_within_rounding_error(
            bits in prop::sample::select(vec![24u32, 32, 48, 64]),
            updates in prop::collection::vec(
                (prop::collection::vec(-20.0f32..20.0, 3), 1u64..30_000, -5.0f32..5.0),
                1..12,
            ),
        ) {
            let config = SecAggConfig { modulus_bits: bits, max_clients: 12, ..Default::default() };
            let q = quantizer(config.clone());
            let mask = modulus_mask(bits);
            let mut acc = vec![0u64; 5];
            let mut expect = [0f64; 3];
            let (mut weight, mut loss) = (0u64, 0f64);
            for (delta, n, l) in &updates {
                add(&mut acc, &q.encode(delta, *n, *l).unwrap(), mask);
                let w = (*n).min(config.max_weight);
                for (e, d) in expect.iter_mut().zip(delta) {
                    *e += w as f64 * f64::from(*d).clamp(-8.0, 8.0);
                }
                weight += w;
                loss += w as f64 * f64::from(*l);
            }
            let got = q.decode(&acc).unwrap();
            prop_assert_eq!(got.total_weight, weight);
            // Half a step of rounding per client, plus f64 error in scaling (at most one step
            // when Q is near 2^52) and in decoding.
            let n = updates.len() as f64;
            for (g, e) in got.sum.iter().zip(expect) {
                let tol = n * q.delta_step() * 1.5 + e.abs() * 1e-12;
                prop_assert!((g - e).abs() <= tol, "{} vs {} (tol {})", g, e, tol);
            }
            let tol = n * q.loss_step() * 1.5 + loss.abs() * 1e-12;
            prop_assert!((got.loss_sum - loss).abs() <= tol);
        }
    }

    #[test]
    fn extreme_values_at_max_clients_do_not_wrap() {
        for bits in [16u32, 32, 64] {
            let config = SecAggConfig {
                modulus_bits: bits,
                max_clients: 3,
                max_weight: 100,
                ..Default::default()
            };
            let q = quantizer(config);
            let mask = modulus_mask(bits);
            for sign in [1.0f32, -1.0] {
                let mut acc = vec![0u64; 3];
                for _ in 0..3 {
                    add(
                        &mut acc,
                        &q.encode(&[sign * 1e6], 1000, sign * 1e9).unwrap(),
                        mask,
                    );
                }
                let got = q.decode(&acc).unwrap();
                assert_eq!(got.total_weight, 300);
                let want = f64::from(sign) * 300.0 * 8.0;
                let tol = 3.0 * q.delta_step() + want.abs() * 1e-12;
                assert!((got.sum[0] - want).abs() <= tol, "{bits}: {got:?}");
                assert!((got.loss_sum - f64::from(sign) * 300.0 * 100.0).abs() < 1.0);
            }
        }
    }

    #[test]
    fn stochastic_rounding_is_unbiased() {
        let config = SecAggConfig {
            modulus_bits: 16,
            max_clients: 3,
            max_weight: 1,
            rounding: Rounding::Stochastic,
            ..Default::default()
        };
        let q = quantizer(config);
        // A value a third of the way between two grid points.
        let x = (q.delta_step() * (100.0 + 1.0 / 3.0)) as f32;
        let trials = 20_000;
        let total: f64 = (0..trials)
            .map(|_| q.decode(&q.encode(&[x], 1, 0.0).unwrap()).unwrap().sum[0])
            .sum();
        let mean = total / f64::from(trials);
        // Standard error ~ step * 0.47 / sqrt(trials); allow 6 of them.
        let tol = 6.0 * q.delta_step() * 0.5 / f64::from(trials).sqrt();
        assert!((mean - f64::from(x)).abs() < tol, "{mean} vs {x}");
    }

    #[test]
    fn bad_updates_are_refused() {
        let q = quantizer(SecAggConfig::default());
        assert!(q.encode(&[1.0], 0, 0.0).is_err());
        assert!(q.encode(&[f32::NAN], 1, 0.0).is_err());
        assert!(q.encode(&[1.0], 1, f32::INFINITY).is_err());
        assert!(q.decode(&[1]).is_err());
        assert!(q.decode(&[0, 0, 0]).is_err());
    }
}
