//! Ciphertexts, encryption (public key and secret key) and decryption.

use std::fmt;
use std::sync::Arc;

use rand::{CryptoRng, RngCore};

use crate::context::CkksContext;
use crate::encoding::Plaintext;
use crate::error::{HeError, Result};
use crate::keys::{
    PublicKey, SecretKey, expand_uniform, sample_error, sample_ternary, small_to_ntt,
};
use crate::ring::{RnsPoly, scratch};

/// A CKKS ciphertext: 2 polynomials (3 after a product, before relinearization) in NTT form
/// modulo q_0..q_level, with the scale of the message it holds.
///
/// Its storage comes from, and goes back to on drop, the thread's pool of scratch buffers, so
/// that a loop of operations reuses memory instead of faulting in fresh pages each time.
#[derive(PartialEq)]
pub struct Ciphertext {
    pub(crate) c: Vec<RnsPoly>,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) ctx_id: [u8; 16],
    /// Set on fresh secret-key ciphertexts: c[1] is expanded from it, so only the seed travels.
    pub(crate) seed: Option<[u8; 32]>,
}

impl Clone for Ciphertext {
    fn clone(&self) -> Self {
        Self {
            c: self.c.iter().map(RnsPoly::pooled_copy).collect(),
            level: self.level,
            scale: self.scale,
            ctx_id: self.ctx_id,
            seed: self.seed,
        }
    }
}

impl Drop for Ciphertext {
    fn drop(&mut self) {
        for p in self.c.drain(..) {
            scratch::give(p.data);
        }
    }
}

impl fmt::Debug for Ciphertext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ciphertext")
            .field("size", &self.c.len())
            .field("level", &self.level)
            .field("log2_scale", &self.scale.log2())
            .field("seeded", &self.seed.is_some())
            .finish_non_exhaustive()
    }
}

impl Ciphertext {
    /// Level (primes q_0..q_level).
    pub fn level(&self) -> usize {
        self.level
    }
    /// Scale of the encrypted message.
    pub fn scale(&self) -> f64 {
        self.scale
    }
    /// Number of polynomials (2, or 3 before relinearization).
    pub fn size(&self) -> usize {
        self.c.len()
    }
    /// Whether the second polynomial is still the expansion of a seed (a fresh secret-key
    /// ciphertext, serialized at half size).
    pub fn is_seeded(&self) -> bool {
        self.seed.is_some()
    }
    /// Overrides the recorded scale (the message is reinterpreted, nothing is computed).
    pub fn set_scale(&mut self, scale: f64) {
        self.scale = scale;
    }
}

impl PublicKey {
    /// Encrypts a plaintext: (u b + e0 + m, u a + e1) with ternary u.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let ctx = &self.ctx;
        if pt.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let n = ctx.n;
        let rows = pt.level + 1;
        let primes = ctx.q_primes(pt.level);
        let u = sample_ternary(n, rng);
        let mut u = small_to_ntt(&u, n, &primes);
        let e0 = sample_error(n, rng);
        let e1 = sample_error(n, rng);
        let mut c0 = small_to_ntt(&e0, n, &primes);
        let mut c1 = small_to_ntt(&e1, n, &primes);
        let b = RnsPoly {
            data: self.b.data[..rows * n].to_vec(),
            n,
            ntt: true,
        };
        let a = RnsPoly {
            data: self.a.data[..rows * n].to_vec(),
            n,
            ntt: true,
        };
        c0.add_mul_assign(&u, &b, &primes);
        c0.add_assign(&pt.poly, &primes);
        c1.add_mul_assign(&u, &a, &primes);
        zeroize::Zeroize::zeroize(&mut u);
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: pt.level,
            scale: pt.scale,
            ctx_id: ctx.id,
            seed: None,
        })
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }
}

impl SecretKey {
    /// Secret-key encryption: (-a s + e + m, a) with a expanded from a fresh seed, so the
    /// ciphertext serializes at about half size.
    pub fn encrypt<R: RngCore + CryptoRng>(
        &self,
        pt: &Plaintext,
        rng: &mut R,
    ) -> Result<Ciphertext> {
        let ctx = &self.ctx;
        if pt.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let n = ctx.n;
        let primes = ctx.q_primes(pt.level);
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = expand_uniform(&seed, 1, n, &primes).remove(0);
        let e = sample_error(n, rng);
        let mut c0 = small_to_ntt(&e, n, &primes);
        c0.add_assign(&pt.poly, &primes);
        let s = self.rows(pt.level + 1);
        // c0 -= a s
        let n_rows = primes.len();
        crate::ring::for_each_row(&mut c0.data, n, &primes, |i, p, r| {
            let ar = &a.data[i * n..(i + 1) * n];
            let sr = &s.data[i * n..(i + 1) * n];
            for ((o, &x), &y) in r.iter_mut().zip(ar).zip(sr) {
                *o = p.sub(*o, p.mul(x, y));
            }
        });
        debug_assert_eq!(c0.limbs(), n_rows);
        Ok(Ciphertext {
            c: vec![c0, a],
            level: pt.level,
            scale: pt.scale,
            ctx_id: ctx.id,
            seed: Some(seed),
        })
    }

    /// Decrypts to a plaintext (decode it with an [`crate::Encoder`]).
    pub fn decrypt(&self, ct: &Ciphertext) -> Result<Plaintext> {
        let ctx = &self.ctx;
        if ct.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let primes = ctx.q_primes(ct.level);
        let s = self.rows(ct.level + 1);
        let mut m = ct.c[0].clone();
        if ct.c.len() == 3 {
            // c0 + s (c1 + s c2)
            let mut t = ct.c[2].clone();
            t.mul_assign(&s, &primes);
            t.add_assign(&ct.c[1], &primes);
            t.mul_assign(&s, &primes);
            m.add_assign(&t, &primes);
        } else {
            m.add_mul_assign(&ct.c[1], &s, &primes);
        }
        drop(s);
        Ok(Plaintext {
            poly: m,
            level: ct.level,
            scale: ct.scale,
            ctx_id: ctx.id,
        })
    }
}
