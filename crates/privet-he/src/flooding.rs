//! Noise flooding for decryptions that leave the secret-key holder.
//!
//! A CKKS decryption is m + e, and e is a function of the secret key: Li and Micciancio
//! (Eurocrypt 2021) recover the key from a few such decryptions together with their
//! ciphertexts. When a decrypted result is shared, exact discrete Gaussian noise of standard
//! deviation
//!
//! sigma = sqrt(64 * max_decryptions) * 2^(s/2) * B
//!
//! is added to every coefficient first, where B bounds the coefficient error (from the
//! [`crate::NoiseModel`]) and s is the statistical security parameter. This is the
//! conservative Renyi-divergence smudging bound that Li, Micciancio, Schultz and Sorrell
//! ("Securing approximate homomorphic encryption using differential privacy", CRYPTO 2022)
//! start from and later work tightens; we keep the conservative one. The result loses about
//! log2(sigma / B) bits of precision; [`Flooded::sigma`] states the amount added.
//! Samples come from privet-dp's exact sampler (Canonne, Kamath and Steinke), which takes a
//! `CryptoRng` only and supports sigma below 2^32.

use rand::{CryptoRng, RngCore};

use crate::cipher::Ciphertext;
use crate::encoding::Plaintext;
use crate::error::{HeError, Result};
use crate::keys::SecretKey;
use crate::ring::for_each_row;

/// How much flooding to add.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FloodingConfig {
    /// Statistical security parameter s (bits).
    pub statistical_security_bits: u32,
    /// How many flooded decryptions the adversary may see under one key.
    pub max_decryptions: u64,
}

impl Default for FloodingConfig {
    /// OpenFHE's defaults for its noise-flooding decryption mode: s = 30, one decryption.
    fn default() -> Self {
        Self {
            statistical_security_bits: 30,
            max_decryptions: 1,
        }
    }
}

impl FloodingConfig {
    /// The standard deviation for a coefficient error bound `bound` (scaled units).
    pub fn sigma(&self, bound: f64) -> f64 {
        (64.0 * self.max_decryptions as f64).sqrt()
            * (self.statistical_security_bits as f64 / 2.0).exp2()
            * bound.max(1.0)
    }
}

/// A flooded decryption.
#[derive(Debug, Clone)]
pub struct Flooded {
    /// The plaintext with flooding noise added.
    pub plaintext: Plaintext,
    /// Standard deviation of the noise added to each coefficient (scaled units).
    pub sigma: f64,
    /// The same in real units per slot: sigma * sqrt(N / 2) / scale.
    pub slot_sigma: f64,
}

impl SecretKey {
    /// Decrypts a result that will be shared, adding flooding noise sized for a coefficient
    /// error bound `error_bound` (e.g. [`crate::NoiseModel::coefficient_error_bound`]).
    pub fn decrypt_for_sharing<R: RngCore + CryptoRng>(
        &self,
        ct: &Ciphertext,
        error_bound: f64,
        config: &FloodingConfig,
        rng: &mut R,
    ) -> Result<Flooded> {
        if !(error_bound.is_finite() && error_bound >= 0.0) {
            return Err(HeError::ValueOutOfRange(format!(
                "error bound {error_bound}"
            )));
        }
        let sigma = config.sigma(error_bound).round();
        if sigma >= 4_294_967_296.0 {
            return Err(HeError::ValueOutOfRange(format!(
                "flooding sigma 2^{:.1} exceeds the sampler's 2^32; lower the scale or the noise",
                sigma.log2()
            )));
        }
        let sampler = privet_dp::noise::DiscreteGaussian::with_integer_sigma(sigma as u64)
            .map_err(|e| HeError::ValueOutOfRange(e.to_string()))?;
        let ctx = self.ctx.clone();
        let n = ctx.degree();
        let mut noise = vec![0i64; n];
        sampler.fill(rng, &mut noise);
        let mut pt = self.decrypt(ct)?;
        let primes = ctx.q_primes(pt.level);
        pt.poly.coeff_in_place(&primes);
        for_each_row(&mut pt.poly.data, n, &primes, |_, p, row| {
            for (o, &e) in row.iter_mut().zip(&noise) {
                *o = p.add(*o, p.reduce_i64(e));
            }
        });
        pt.poly.ntt_in_place(&primes);
        let slot_sigma = sigma * (n as f64 / 2.0).sqrt() / pt.scale;
        Ok(Flooded {
            plaintext: pt,
            sigma,
            slot_sigma,
        })
    }
}
