//! RNS polynomials in Z_Q[X]/(X^N + 1): one row of N residues per prime, stored flat, with the
//! per-prime kernels (add, multiply, NTT) that every higher operation is made of.
//!
//! Arithmetic modulo each prime is fhe-math's ([`Modulus`]: Barrett and Shoup reductions, all
//! constant time) and its NTT ([`NttOperator`], backed by tfhe-ntt's SIMD transform). What this
//! module adds is the storage (one allocation per polynomial, rows reused in place) and the
//! parallel loop over primes.

use fhe_math::ntt::NttOperator;
use fhe_math::zq::Modulus;
use rayon::prelude::*;

/// One prime with its arithmetic and NTT.
#[derive(Debug, Clone)]
pub(crate) struct Prime {
    pub(crate) m: Modulus,
    pub(crate) q: u64,
    pub(crate) ntt: NttOperator,
    /// floor(2^128 / q), high and low words (Barrett reduction of any u128).
    barrett_hi: u64,
    barrett_lo: u64,
}

impl Prime {
    pub(crate) fn new(q: u64, n: usize) -> Option<Self> {
        let m = Modulus::new(q).ok()?;
        let ntt = NttOperator::new(&m, n)?;
        // q is an odd prime, so floor((2^128 - 1)/q) = floor(2^128/q).
        let barrett = u128::MAX / q as u128;
        Some(Self {
            m,
            q,
            ntt,
            barrett_hi: (barrett >> 64) as u64,
            barrett_lo: barrett as u64,
        })
    }

    /// x mod q for x < 2q, without a branch.
    #[inline(always)]
    fn reduce1(&self, x: u64) -> u64 {
        x.min(x.wrapping_sub(self.q))
    }

    /// Barrett reduction of a u128 to [0, 2q) (fhe-math's, inlined here: its `Modulus`
    /// methods are not `#[inline]` and cost a call per coefficient across the crate boundary).
    #[inline(always)]
    fn lazy_reduce_u128(&self, a: u128) -> u64 {
        let a_lo = a as u64;
        let a_hi = (a >> 64) as u64;
        let p_lo_lo = ((a_lo as u128) * (self.barrett_lo as u128)) >> 64;
        let p_hi_lo = (a_hi as u128) * (self.barrett_lo as u128);
        let p_lo_hi = (a_lo as u128) * (self.barrett_hi as u128);
        let q = ((p_lo_hi + p_hi_lo + p_lo_lo) >> 64) + (a_hi as u128) * (self.barrett_hi as u128);
        (a.wrapping_sub(q.wrapping_mul(self.q as u128))) as u64
    }

    #[inline(always)]
    pub(crate) fn add(&self, a: u64, b: u64) -> u64 {
        let s = a + b;
        s.min(s.wrapping_sub(self.q))
    }

    #[inline(always)]
    pub(crate) fn sub(&self, a: u64, b: u64) -> u64 {
        let s = a.wrapping_sub(b);
        s.min(s.wrapping_add(self.q))
    }

    #[inline(always)]
    pub(crate) fn neg(&self, a: u64) -> u64 {
        let s = self.q - a;
        s.min(s.wrapping_sub(self.q))
    }

    #[inline(always)]
    pub(crate) fn mul(&self, a: u64, b: u64) -> u64 {
        self.reduce_u128(a as u128 * b as u128)
    }

    #[inline(always)]
    pub(crate) fn reduce_u128(&self, a: u128) -> u64 {
        self.reduce1(self.lazy_reduce_u128(a))
    }

    #[inline(always)]
    pub(crate) fn reduce(&self, a: u64) -> u64 {
        let q = (((a as u128) * (self.barrett_lo as u128)) >> 64)
            + (a as u128) * (self.barrett_hi as u128);
        let q = (q >> 64) as u64;
        self.reduce1(a.wrapping_sub(q.wrapping_mul(self.q)))
    }

    /// x mod q for a signed 64-bit x.
    #[inline(always)]
    pub(crate) fn reduce_i64(&self, x: i64) -> u64 {
        let r = self.reduce(x.unsigned_abs());
        if x < 0 { self.neg(r) } else { r }
    }

    /// x mod q for a signed 128-bit x.
    #[inline(always)]
    pub(crate) fn reduce_i128(&self, x: i128) -> u64 {
        let r = self.reduce_u128(x.unsigned_abs());
        if x < 0 { self.neg(r) } else { r }
    }

    /// (w, w') for Shoup multiplication by a constant w.
    pub(crate) fn shoup(&self, w: u64) -> (u64, u64) {
        (w, self.m.shoup(w))
    }

    #[inline(always)]
    pub(crate) fn mul_shoup(&self, a: u64, w: (u64, u64)) -> u64 {
        let q = ((a as u128 * w.1 as u128) >> 64) as u64;
        self.reduce1(a.wrapping_mul(w.0).wrapping_sub(q.wrapping_mul(self.q)))
    }

    pub(crate) fn pow(&self, a: u64, e: u64) -> u64 {
        let mut r = 1u64;
        let mut b = self.m.reduce(a);
        let mut e = e;
        while e > 0 {
            if e & 1 == 1 {
                r = self.m.mul(r, b);
            }
            b = self.m.mul(b, b);
            e >>= 1;
        }
        r
    }

    pub(crate) fn inv(&self, a: u64) -> u64 {
        self.pow(a, self.q - 2)
    }

    pub(crate) fn forward(&self, a: &mut [u64]) {
        self.ntt.forward(a);
    }

    pub(crate) fn backward(&self, a: &mut [u64]) {
        self.ntt.backward(a);
    }
}

/// Work below this many coefficients runs on the calling thread.
const PAR_THRESHOLD: usize = 1 << 13;

/// The same for a few operations per coefficient (additions, products): below about 512 KiB
/// per operand, forking costs more than it saves (add at N = 2^13 was slower on 2 threads).
const PAR_THRESHOLD_LIGHT: usize = 1 << 16;

/// Runs `f(prime, row)` over the rows of `data`, in parallel when worthwhile.
pub(crate) fn for_each_row<F>(data: &mut [u64], n: usize, primes: &[&Prime], f: F)
where
    F: Fn(usize, &Prime, &mut [u64]) + Sync + Send,
{
    for_each_row_above(PAR_THRESHOLD, data, n, primes, f);
}

/// `for_each_row` for element-wise work of a few operations per coefficient.
pub(crate) fn for_each_row_light<F>(data: &mut [u64], n: usize, primes: &[&Prime], f: F)
where
    F: Fn(usize, &Prime, &mut [u64]) + Sync + Send,
{
    for_each_row_above(PAR_THRESHOLD_LIGHT, data, n, primes, f);
}

fn for_each_row_above<F>(threshold: usize, data: &mut [u64], n: usize, primes: &[&Prime], f: F)
where
    F: Fn(usize, &Prime, &mut [u64]) + Sync + Send,
{
    debug_assert_eq!(data.len(), n * primes.len());
    if data.len() >= threshold && primes.len() > 1 && rayon::current_num_threads() > 1 {
        data.par_chunks_mut(n)
            .zip(primes.par_iter())
            .enumerate()
            .for_each(|(i, (row, p))| f(i, p, row));
    } else {
        data.chunks_mut(n)
            .zip(primes)
            .enumerate()
            .for_each(|(i, (row, p))| f(i, p, row));
    }
}

/// A polynomial in RNS form: `limbs` rows of `n` residues, either coefficients or NTT values.
/// Which prime a row belongs to is decided by whoever holds it (a ciphertext at level l uses
/// q_0..q_l; key-switching temporaries append the special primes).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct RnsPoly {
    pub(crate) data: Vec<u64>,
    pub(crate) n: usize,
    pub(crate) ntt: bool,
}

impl std::fmt::Debug for RnsPoly {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RnsPoly")
            .field("n", &self.n)
            .field("limbs", &self.limbs())
            .field("ntt", &self.ntt)
            .finish_non_exhaustive()
    }
}

impl RnsPoly {
    pub(crate) fn zero(n: usize, limbs: usize, ntt: bool) -> Self {
        Self {
            data: vec![0; n * limbs],
            n,
            ntt,
        }
    }

    /// A polynomial whose storage comes from the thread's scratch pool, with unspecified
    /// contents: the caller overwrites every row. For public data only (ciphertexts and
    /// key-switching temporaries), like the pool itself.
    pub(crate) fn pooled(n: usize, limbs: usize, ntt: bool) -> Self {
        Self {
            data: scratch::take(n * limbs),
            n,
            ntt,
        }
    }

    /// A copy in pooled storage (public data only, see [`RnsPoly::pooled`]).
    pub(crate) fn pooled_copy(&self) -> Self {
        let mut data = scratch::take(self.data.len());
        data.copy_from_slice(&self.data);
        Self {
            data,
            n: self.n,
            ntt: self.ntt,
        }
    }

    pub(crate) fn limbs(&self) -> usize {
        self.data.len() / self.n
    }

    pub(crate) fn row(&self, i: usize) -> &[u64] {
        &self.data[i * self.n..(i + 1) * self.n]
    }

    pub(crate) fn row_mut(&mut self, i: usize) -> &mut [u64] {
        &mut self.data[i * self.n..(i + 1) * self.n]
    }

    /// Drops rows beyond `limbs` (a modulus drop: exact, keeps the value modulo the rest).
    pub(crate) fn truncate(&mut self, limbs: usize) {
        self.data.truncate(limbs * self.n);
    }

    pub(crate) fn ntt_in_place(&mut self, primes: &[&Prime]) {
        if !self.ntt {
            for_each_row(&mut self.data, self.n, primes, |_, p, r| p.forward(r));
            self.ntt = true;
        }
    }

    pub(crate) fn coeff_in_place(&mut self, primes: &[&Prime]) {
        if self.ntt {
            for_each_row(&mut self.data, self.n, primes, |_, p, r| p.backward(r));
            self.ntt = false;
        }
    }

    pub(crate) fn add_assign(&mut self, other: &RnsPoly, primes: &[&Prime]) {
        debug_assert_eq!(self.ntt, other.ntt);
        let n = self.n;
        let o = &other.data;
        for_each_row_light(&mut self.data, n, primes, |i, p, r| {
            for (a, &b) in r.iter_mut().zip(&o[i * n..(i + 1) * n]) {
                *a = p.add(*a, b);
            }
        });
    }

    pub(crate) fn sub_assign(&mut self, other: &RnsPoly, primes: &[&Prime]) {
        debug_assert_eq!(self.ntt, other.ntt);
        let n = self.n;
        let o = &other.data;
        for_each_row_light(&mut self.data, n, primes, |i, p, r| {
            for (a, &b) in r.iter_mut().zip(&o[i * n..(i + 1) * n]) {
                *a = p.sub(*a, b);
            }
        });
    }

    pub(crate) fn neg_assign(&mut self, primes: &[&Prime]) {
        for_each_row_light(&mut self.data, self.n, primes, |_, p, r| {
            for a in r.iter_mut() {
                *a = p.neg(*a);
            }
        });
    }

    /// Pointwise product (both in NTT form).
    pub(crate) fn mul_assign(&mut self, other: &RnsPoly, primes: &[&Prime]) {
        debug_assert!(self.ntt && other.ntt);
        let n = self.n;
        let o = &other.data;
        for_each_row_light(&mut self.data, n, primes, |i, p, r| {
            for (a, &b) in r.iter_mut().zip(&o[i * n..(i + 1) * n]) {
                *a = p.mul(*a, b);
            }
        });
    }

    /// self += a * b pointwise (all in NTT form).
    pub(crate) fn add_mul_assign(&mut self, a: &RnsPoly, b: &RnsPoly, primes: &[&Prime]) {
        let n = self.n;
        let (ad, bd) = (&a.data, &b.data);
        for_each_row_light(&mut self.data, n, primes, |i, p, r| {
            let ar = &ad[i * n..(i + 1) * n];
            let br = &bd[i * n..(i + 1) * n];
            for ((c, &x), &y) in r.iter_mut().zip(ar).zip(br) {
                *c = p.add(*c, p.mul(x, y));
            }
        });
    }

    /// Multiplies row i by the constant `w[i]` (Shoup form).
    pub(crate) fn mul_const_rows(&mut self, w: &[(u64, u64)], primes: &[&Prime]) {
        for_each_row_light(&mut self.data, self.n, primes, |i, p, r| {
            let wi = w[i];
            for a in r.iter_mut() {
                *a = p.mul_shoup(*a, wi);
            }
        });
    }

    /// self += other read through an NTT-slot permutation: self[j] += other[perm[j]].
    pub(crate) fn add_permuted(&mut self, other: &RnsPoly, perm: &[u32], primes: &[&Prime]) {
        let n = self.n;
        let src = &other.data;
        for_each_row_light(&mut self.data, n, primes, |i, p, r| {
            let s = &src[i * n..(i + 1) * n];
            for (o, &k) in r.iter_mut().zip(perm) {
                *o = p.add(*o, s[k as usize]);
            }
        });
    }

    /// Applies a permutation of NTT slots (an automorphism X -> X^g in NTT form):
    /// out[j] = in[perm[j]] on every row.
    pub(crate) fn permuted(&self, perm: &[u32], primes: &[&Prime]) -> RnsPoly {
        debug_assert!(self.ntt);
        let mut out = RnsPoly::zero(self.n, self.limbs(), true);
        let n = self.n;
        let src = &self.data;
        for_each_row_light(&mut out.data, n, primes, |i, _, r| {
            let s = &src[i * n..(i + 1) * n];
            for (o, &k) in r.iter_mut().zip(perm) {
                *o = s[k as usize];
            }
        });
        out
    }
}

/// log2(n)-bit reversal of `j`.
pub(crate) fn bit_reverse(j: usize, log_n: u32) -> usize {
    if log_n == 0 {
        0
    } else {
        j.reverse_bits() >> (usize::BITS - log_n)
    }
}

/// The NTT-domain permutation of the automorphism X -> X^g (g odd): fhe-math's forward NTT puts
/// the evaluation at psi^(2k+1) in position bitrev(k), and (p o X^g)(psi^(2k+1)) =
/// p(psi^(2(gk + (g-1)/2) + 1)).
pub(crate) fn galois_permutation(n: usize, g: usize) -> Vec<u32> {
    let log_n = n.trailing_zeros();
    let mut perm = vec![0u32; n];
    let mask = n - 1;
    for k in 0..n {
        let src = (g.wrapping_mul(k).wrapping_add((g - 1) / 2)) & mask;
        perm[bit_reverse(k, log_n)] = bit_reverse(src, log_n) as u32;
    }
    perm
}

#[cfg(test)]
mod tests {
    use super::*;
    use fhe_math::rq::traits::TryConvertFrom;
    use fhe_math::rq::{Context, Poly, Representation, SubstitutionExponent};
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;
    use std::sync::Arc;

    // Checks the NTT-domain permutation against fhe-math's own substitution, in power basis
    // (where it is a signed coefficient permutation) and after an NTT round trip.
    #[test]
    fn galois_permutation_matches_fhe_math_substitute() {
        let n = 64;
        let q = crate::params::generate_primes(n, &[60]).unwrap_or_else(|e| panic!("{e}"))[0];
        let prime = Prime::new(q, n).unwrap_or_else(|| panic!("prime"));
        let ctx = Arc::new(Context::new(&[q], n).unwrap_or_else(|e| panic!("{e}")));
        let mut rng = ChaCha8Rng::seed_from_u64(1);
        let coeffs: Vec<u64> = (0..n).map(|_| rng.random_range(0..q)).collect();
        for g in [5usize, 25, 2 * n - 1, 3] {
            let poly =
                Poly::try_convert_from(coeffs.as_slice(), &ctx, false, Representation::PowerBasis)
                    .unwrap_or_else(|e| panic!("{e}"));
            let e = SubstitutionExponent::new(&ctx, g).unwrap_or_else(|e| panic!("{e}"));
            let expect = Vec::<u64>::from(&poly.substitute(&e).unwrap_or_else(|e| panic!("{e}")));
            let mut mine = RnsPoly {
                data: coeffs.clone(),
                n,
                ntt: false,
            };
            mine.ntt_in_place(&[&prime]);
            let perm = galois_permutation(n, g);
            let mut out = mine.permuted(&perm, &[&prime]);
            out.coeff_in_place(&[&prime]);
            assert_eq!(out.data, expect, "g = {g}");
        }
    }

    #[test]
    fn kernels_agree_with_u128_arithmetic() {
        let q = crate::params::generate_primes(16, &[40]).unwrap_or_else(|e| panic!("{e}"))[0];
        let p = Prime::new(q, 16).unwrap_or_else(|| panic!("prime"));
        let mut rng = ChaCha8Rng::seed_from_u64(2);
        for _ in 0..1000 {
            let a = rng.random_range(0..q);
            let b = rng.random_range(0..q);
            assert_eq!(p.add(a, b) as u128, (a as u128 + b as u128) % q as u128);
            assert_eq!(
                p.sub(a, b) as u128,
                (a as u128 + q as u128 - b as u128) % q as u128
            );
            assert_eq!(p.neg(a) as u128, (q as u128 - a as u128) % q as u128);
            assert_eq!(p.mul(a, b) as u128, (a as u128 * b as u128) % q as u128);
            assert_eq!(p.mul_shoup(a, p.shoup(b)), p.mul(a, b));
            let x: i64 = rng.random();
            assert_eq!(p.reduce_i64(x) as i128, (x as i128).rem_euclid(q as i128));
        }
        assert_eq!(p.mul(p.inv(12345), 12345), 1);
    }

    // The inlined Barrett and Shoup reductions against u128 arithmetic, for the prime sizes of
    // the parameter sets (20 to 60 bits) and the operand ranges they are used on: products of
    // two residues, sums of up to 64 such products (the key-switching inner product), any u64.
    #[test]
    fn barrett_and_shoup_reductions_agree_with_u128_arithmetic() {
        let mut rng = ChaCha8Rng::seed_from_u64(3);
        for bits in [20u32, 30, 40, 50, 60] {
            let q = crate::params::generate_primes(1 << 12, &[bits])
                .unwrap_or_else(|e| panic!("{e}"))[0];
            let p = Prime::new(q, 1 << 12).unwrap_or_else(|| panic!("prime"));
            for _ in 0..2000 {
                let a = rng.random_range(0..q);
                let b = rng.random_range(0..q);
                assert_eq!(p.mul(a, b) as u128, (a as u128 * b as u128) % q as u128);
                assert_eq!(p.mul_shoup(a, p.shoup(b)), p.mul(a, b));
                let x: u64 = rng.random();
                assert_eq!(
                    p.mul_shoup(x, p.shoup(b)) as u128,
                    (x as u128 * b as u128) % q as u128
                );
                assert_eq!(p.reduce(x), x % q);
                let terms = rng.random_range(1..=64u32);
                let s: u128 = (0..terms)
                    .map(|_| rng.random_range(0..q) as u128 * rng.random_range(0..q) as u128)
                    .sum();
                assert_eq!(p.reduce_u128(s) as u128, s % q as u128);
            }
            for x in [0u64, 1, q - 1, q, q + 1, 2 * q - 1, u64::MAX] {
                assert_eq!(p.reduce(x), x % q);
            }
            let max = 64 * (q as u128 - 1) * (q as u128 - 1);
            assert_eq!(p.reduce_u128(max) as u128, max % q as u128);
        }
    }
}

/// Per-thread pool of scratch buffers for the evaluator's temporaries (public data only: never
/// used on paths that touch the secret key). Reusing them avoids the page faults and heap
/// trimming that fresh multi-hundred-kilobyte allocations cost on every operation.
pub(crate) mod scratch {
    use std::cell::RefCell;

    /// At most this many buffers, and this many u64 words in all (256 MiB), per thread.
    const KEEP: usize = 24;
    const KEEP_WORDS: usize = 32 << 20;

    thread_local! {
        static POOL: RefCell<Vec<Vec<u64>>> = const { RefCell::new(Vec::new()) };
    }

    /// A buffer of `len` elements with unspecified contents: the caller overwrites all of it.
    /// The smallest pooled buffer that fits is reused, unless it is more than 4 times larger
    /// than asked (buffers also become ciphertexts' storage, which may live long).
    pub(crate) fn take(len: usize) -> Vec<u64> {
        let v = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            let i = p
                .iter()
                .enumerate()
                .filter(|(_, v)| v.capacity() >= len && v.capacity() / 4 <= len)
                .min_by_key(|(_, v)| v.capacity())
                .map(|(i, _)| i);
            i.map(|i| p.swap_remove(i))
        });
        match v.ok().flatten() {
            Some(mut v) => {
                if v.len() >= len {
                    v.truncate(len);
                } else {
                    v.resize(len, 0);
                }
                v
            }
            None => vec![0; len],
        }
    }

    /// Returns a buffer to the pool (or frees it when the pool is full).
    pub(crate) fn give(v: Vec<u64>) {
        if v.capacity() == 0 {
            return;
        }
        // During thread teardown the pool may be gone: the buffer is then simply freed.
        let _ = POOL.try_with(|p| {
            let mut p = p.borrow_mut();
            let words: usize = p.iter().map(Vec::capacity).sum();
            if p.len() < KEEP && words + v.capacity() <= KEEP_WORDS {
                p.push(v);
            }
        });
    }
}
