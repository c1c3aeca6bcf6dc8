//! Keys: the secret key (client side only), the public key, and the evaluation keys
//! (relinearization and Galois keys) that a server may hold.
//!
//! Secret and evaluation keys are different types: nothing that evaluates takes a
//! [`SecretKey`], and nothing in [`EvaluationKeys`] can decrypt. The secret key is zeroized on
//! drop and its `Debug` prints nothing of it. All randomness comes from a caller-supplied
//! `CryptoRng` (or the OS through [`os_rng`]).
//!
//! Key-switching keys use hybrid key switching (Han and Ki, CT-RSA 2020; SEAL's scheme when there
//! is one special prime): the ciphertext primes are cut into digits of `alpha` primes (alpha =
//! number of special primes P); the key for digit j encrypts P * [j-th CRT gadget] * s' under s
//! modulo QP, and the uniform half of each key row comes from a 32-byte seed.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use rand::{CryptoRng, RngCore, SeedableRng};
use rand_chacha::ChaCha20Rng;
use zeroize::{Zeroize, Zeroizing};

use crate::context::CkksContext;
use crate::error::{HeError, Result};
use crate::ring::{Prime, RnsPoly, for_each_row, galois_permutation};

/// Standard-deviation-3.16 centered binomial error (variance 10), as SEAL's default sampler.
pub(crate) const ERROR_VARIANCE: usize = 10;

/// A ChaCha20 generator seeded by the operating system.
pub fn os_rng() -> ChaCha20Rng {
    ChaCha20Rng::from_os_rng()
}

impl Zeroize for RnsPoly {
    fn zeroize(&mut self) {
        self.data.zeroize();
    }
}

/// Uniform ternary coefficients.
pub(crate) fn sample_ternary<R: RngCore + CryptoRng>(n: usize, rng: &mut R) -> Zeroizing<Vec<i8>> {
    let mut out = Zeroizing::new(Vec::with_capacity(n));
    let mut buf = Zeroizing::new([0u8; 64]);
    while out.len() < n {
        rng.fill_bytes(buf.as_mut());
        for &b in buf.iter() {
            // 255 = 3 * 85: bytes below it are uniform modulo 3.
            if b < 255 && out.len() < n {
                out.push((b % 3) as i8 - 1);
            }
        }
    }
    out
}

/// Centered binomial error with variance 10.
pub(crate) fn sample_error<R: RngCore + CryptoRng>(n: usize, rng: &mut R) -> Zeroizing<Vec<i64>> {
    // sample_vec_cbd only fails for a variance outside 1..=16.
    Zeroizing::new(fhe_util::sample_vec_cbd(n, ERROR_VARIANCE, rng).unwrap_or_else(|_| vec![0; n]))
}

/// A small signed polynomial over the given primes, in NTT form.
pub(crate) fn small_to_ntt<T: Copy + Into<i64> + Sync>(
    coeffs: &[T],
    n: usize,
    primes: &[&Prime],
) -> RnsPoly {
    let mut p = RnsPoly::zero(n, primes.len(), false);
    for_each_row(&mut p.data, n, primes, |_, pr, row| {
        for (o, &c) in row.iter_mut().zip(coeffs) {
            *o = pr.reduce_i64(c.into());
        }
        pr.forward(row);
    });
    p.ntt = true;
    p
}

/// Uniform polynomials in NTT form expanded from a seed: `count` polynomials over `primes`, in
/// order. (Uniform in the NTT domain is uniform, since the NTT is a bijection.)
pub(crate) fn expand_uniform(
    seed: &[u8; 32],
    count: usize,
    n: usize,
    primes: &[&Prime],
) -> Vec<RnsPoly> {
    let mut rng = ChaCha20Rng::from_seed(*seed);
    (0..count)
        .map(|_| {
            let mut p = RnsPoly::zero(n, primes.len(), true);
            for (row, pr) in p.data.chunks_mut(n).zip(primes) {
                let bits = 64 - pr.q.leading_zeros();
                let shift = 64 - bits;
                for o in row.iter_mut() {
                    loop {
                        let x = rng.next_u64() >> shift;
                        if x < pr.q {
                            *o = x;
                            break;
                        }
                    }
                }
            }
            p
        })
        .collect()
}

/// The secret key: a uniform ternary polynomial. Zeroized on drop; never printed.
pub struct SecretKey {
    pub(crate) ctx: Arc<CkksContext>,
    pub(crate) coeffs: Zeroizing<Vec<i8>>,
    /// NTT form over every prime (q then p).
    pub(crate) ntt: RnsPoly,
}

impl Drop for SecretKey {
    fn drop(&mut self) {
        self.ntt.zeroize();
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(<redacted>)")
    }
}

/// A public key (b, a) = (-a s + e, a) modulo Q_L; a comes from a seed.
#[derive(Clone)]
pub struct PublicKey {
    pub(crate) ctx: Arc<CkksContext>,
    pub(crate) b: RnsPoly,
    pub(crate) a: RnsPoly,
    pub(crate) seed: [u8; 32],
}

impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PublicKey")
            .field("n", &self.ctx.n)
            .finish_non_exhaustive()
    }
}

/// A key-switching key from some s' to s: one (b_j, a_j) pair per digit, over all primes.
#[derive(Clone, PartialEq)]
pub(crate) struct KeySwitchKey {
    pub(crate) b: Vec<RnsPoly>,
    pub(crate) a: Vec<RnsPoly>,
    pub(crate) seed: [u8; 32],
}

impl fmt::Debug for KeySwitchKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySwitchKey")
            .field("digits", &self.b.len())
            .finish_non_exhaustive()
    }
}

/// Relinearization key: switches s^2 to s.
#[derive(Debug, Clone, PartialEq)]
pub struct RelinKey {
    pub(crate) ctx_id: [u8; 16],
    pub(crate) key: KeySwitchKey,
}

/// A Galois key for X -> X^g: switches s(X^g) to s, with its NTT-slot permutation.
#[derive(Clone, PartialEq)]
pub struct GaloisKey {
    pub(crate) ctx_id: [u8; 16],
    pub(crate) galois_element: usize,
    pub(crate) key: KeySwitchKey,
    pub(crate) perm: Arc<Vec<u32>>,
}

impl fmt::Debug for GaloisKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GaloisKey")
            .field("galois_element", &self.galois_element)
            .finish_non_exhaustive()
    }
}

impl GaloisKey {
    /// The Galois element g of X -> X^g.
    pub fn galois_element(&self) -> usize {
        self.galois_element
    }
}

/// Which evaluation keys to generate.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EvaluationKeyConfig {
    /// Generate the relinearization key (needed by ciphertext x ciphertext products).
    pub relinearization: bool,
    /// Rotation steps (left positive) to generate Galois keys for.
    pub rotations: Vec<i64>,
    /// Generate the conjugation key.
    pub conjugation: bool,
}

/// The keys a server evaluates with. Holds nothing that can decrypt.
#[derive(Debug, Clone, PartialEq)]
pub struct EvaluationKeys {
    pub(crate) ctx_id: [u8; 16],
    pub(crate) relin: Option<RelinKey>,
    pub(crate) galois: BTreeMap<usize, GaloisKey>,
}

impl EvaluationKeys {
    /// An empty set (additions and plaintext products only).
    pub fn empty(ctx: &CkksContext) -> Self {
        Self {
            ctx_id: ctx.id,
            relin: None,
            galois: BTreeMap::new(),
        }
    }
    /// The relinearization key, if present.
    pub fn relin(&self) -> Option<&RelinKey> {
        self.relin.as_ref()
    }
    /// The Galois key for element g, if present.
    pub fn galois(&self, g: usize) -> Option<&GaloisKey> {
        self.galois.get(&g)
    }
    /// Galois elements present.
    pub fn galois_elements(&self) -> Vec<usize> {
        self.galois.keys().copied().collect()
    }
    /// Adds or replaces a Galois key.
    pub fn insert_galois(&mut self, key: GaloisKey) -> Result<()> {
        if key.ctx_id != self.ctx_id {
            return Err(HeError::ParameterMismatch);
        }
        self.galois.insert(key.galois_element, key);
        Ok(())
    }
    /// Sets the relinearization key.
    pub fn set_relin(&mut self, key: RelinKey) -> Result<()> {
        if key.ctx_id != self.ctx_id {
            return Err(HeError::ParameterMismatch);
        }
        self.relin = Some(key);
        Ok(())
    }
}

impl SecretKey {
    /// A fresh uniform ternary secret key.
    pub fn generate<R: RngCore + CryptoRng>(ctx: &Arc<CkksContext>, rng: &mut R) -> Self {
        let coeffs = sample_ternary(ctx.n, rng);
        Self::from_ternary(ctx, coeffs)
    }

    pub(crate) fn from_ternary(ctx: &Arc<CkksContext>, coeffs: Zeroizing<Vec<i8>>) -> Self {
        let ntt = small_to_ntt(&coeffs, ctx.n, &ctx.all_primes());
        Self {
            ctx: ctx.clone(),
            coeffs,
            ntt,
        }
    }

    /// The context this key belongs to.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// A public key.
    pub fn public_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> PublicKey {
        let ctx = &self.ctx;
        let n = ctx.n;
        let primes = ctx.q_primes(ctx.max_level());
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = expand_uniform(&seed, 1, n, &primes).remove(0);
        let e = sample_error(n, rng);
        let mut b = small_to_ntt(&e, n, &primes);
        // b = e - a s
        let s = self.rows(primes.len());
        let mut as_ = a.clone();
        as_.mul_assign(&s, &primes);
        b.sub_assign(&as_, &primes);
        PublicKey {
            ctx: ctx.clone(),
            b,
            a,
            seed,
        }
    }

    /// The first `rows` rows of s in NTT form (q_0..).
    pub(crate) fn rows(&self, rows: usize) -> Zeroizing<RnsPoly> {
        Zeroizing::new(RnsPoly {
            data: self.ntt.data[..rows * self.ctx.n].to_vec(),
            n: self.ctx.n,
            ntt: true,
        })
    }

    /// A key-switching key from `target` (NTT over all primes) to s.
    fn key_switch_key<R: RngCore + CryptoRng>(
        &self,
        target: &RnsPoly,
        rng: &mut R,
    ) -> KeySwitchKey {
        let ctx = &self.ctx;
        let n = ctx.n;
        let all = ctx.all_primes();
        let digits = &ctx.digits[ctx.max_level()];
        let mut seed = [0u8; 32];
        rng.fill_bytes(&mut seed);
        let a = expand_uniform(&seed, digits.len(), n, &all);
        let mut b = Vec::with_capacity(digits.len());
        for (d, aj) in digits.iter().zip(&a) {
            let e = sample_error(n, rng);
            let mut bj = small_to_ntt(&e, n, &all);
            let mut as_ = aj.clone();
            as_.mul_assign(&self.ntt, &all);
            bj.sub_assign(&as_, &all);
            // + P * s' on the digit's own primes (P * gadget is P there and 0 elsewhere).
            for i in d.start..d.end {
                let p = &all[i];
                let pm = p.shoup(ctx.p_mod_q[i]);
                let t = target.row(i);
                for (o, &x) in bj.row_mut(i).iter_mut().zip(t) {
                    *o = p.add(*o, p.mul_shoup(x, pm));
                }
            }
            b.push(bj);
        }
        KeySwitchKey { b, a, seed }
    }

    /// The relinearization key (s^2 -> s).
    pub fn relin_key<R: RngCore + CryptoRng>(&self, rng: &mut R) -> RelinKey {
        let all = self.ctx.all_primes();
        let mut s2 = self.ntt.clone();
        s2.mul_assign(&self.ntt, &all);
        let key = self.key_switch_key(&s2, rng);
        s2.zeroize();
        RelinKey {
            ctx_id: self.ctx.id,
            key,
        }
    }

    /// The Galois key for X -> X^g (g odd, below 2N).
    pub fn galois_key<R: RngCore + CryptoRng>(
        &self,
        galois_element: usize,
        rng: &mut R,
    ) -> Result<GaloisKey> {
        let ctx = &self.ctx;
        if galois_element.is_multiple_of(2) || galois_element >= 2 * ctx.n {
            return Err(HeError::InvalidParameters(format!(
                "Galois element {galois_element} is not odd below 2N"
            )));
        }
        let perm = galois_permutation(ctx.n, galois_element);
        let all = ctx.all_primes();
        let mut sg = self.ntt.permuted(&perm, &all);
        let key = self.key_switch_key(&sg, rng);
        sg.zeroize();
        Ok(GaloisKey {
            ctx_id: ctx.id,
            galois_element,
            key,
            perm: Arc::new(perm),
        })
    }

    /// The evaluation keys asked for.
    pub fn evaluation_keys<R: RngCore + CryptoRng>(
        &self,
        config: &EvaluationKeyConfig,
        rng: &mut R,
    ) -> Result<EvaluationKeys> {
        let mut keys = EvaluationKeys::empty(&self.ctx);
        if config.relinearization {
            keys.relin = Some(self.relin_key(rng));
        }
        let mut elements: Vec<usize> = config
            .rotations
            .iter()
            .map(|&r| self.ctx.galois_element(r))
            .filter(|&g| g != 1)
            .collect();
        if config.conjugation {
            elements.push(self.ctx.conjugation_element());
        }
        elements.sort_unstable();
        elements.dedup();
        for g in elements {
            keys.galois.insert(g, self.galois_key(g, rng)?);
        }
        Ok(keys)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{CkksParameters, Hazmat};

    #[test]
    fn ternary_and_error_distributions() {
        let mut rng = ChaCha20Rng::seed_from_u64(7);
        let t = sample_ternary(30000, &mut rng);
        let counts = [-1i8, 0, 1].map(|v| t.iter().filter(|&&x| x == v).count());
        for c in counts {
            assert!((9400..10600).contains(&c), "{counts:?}");
        }
        let e = sample_error(30000, &mut rng);
        let var = e.iter().map(|&x| (x * x) as f64).sum::<f64>() / e.len() as f64;
        assert!((var - 10.0).abs() < 0.6, "variance {var}");
        assert!(e.iter().all(|x| x.abs() <= 20));
    }

    #[test]
    fn secret_key_debug_prints_nothing() {
        let p =
            CkksParameters::hazmat_unchecked(6, &[40], &[40], 20, Hazmat::InsecureForTestingOnly)
                .unwrap_or_else(|e| panic!("{e}"));
        let ctx = CkksContext::new(p).unwrap_or_else(|e| panic!("{e}"));
        let sk = SecretKey::generate(&ctx, &mut ChaCha20Rng::seed_from_u64(1));
        assert_eq!(format!("{sk:?}"), "SecretKey(<redacted>)");
    }

    #[test]
    fn seed_expansion_is_deterministic_and_in_range() {
        let p = CkksParameters::hazmat_unchecked(
            6,
            &[40, 30],
            &[40],
            20,
            Hazmat::InsecureForTestingOnly,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let ctx = CkksContext::new(p).unwrap_or_else(|e| panic!("{e}"));
        let all = ctx.all_primes();
        let a = expand_uniform(&[3; 32], 2, ctx.n, &all);
        let b = expand_uniform(&[3; 32], 2, ctx.n, &all);
        let c = expand_uniform(&[4; 32], 2, ctx.n, &all);
        assert_eq!(a[0].data, b[0].data);
        assert_eq!(a[1].data, b[1].data);
        assert_ne!(a[0].data, c[0].data);
        assert_ne!(a[0].data, a[1].data);
        for (row, p) in a[0].data.chunks(ctx.n).zip(&all) {
            assert!(row.iter().all(|&x| x < p.q));
        }
    }
}
