//! Hybrid key switching: digit decomposition with basis extension to QP (ModUp), the inner
//! product with a key-switching key, and division by P (ModDown). All in the NTT domain.
//!
//! Rotations can be *hoisted*: the decomposition of c1 is computed once and permuted for each
//! Galois element (the automorphism commutes with the decomposition up to multiples of each
//! digit's modulus, which the gadget annihilates), so k rotations of one ciphertext cost one
//! ModUp and k inner products and ModDowns.

use rayon::prelude::*;

use crate::context::CkksContext;
use crate::keys::KeySwitchKey;
use crate::ring::{Prime, RnsPoly, for_each_row, scratch};

/// Coefficients per block of the lazy u128 inner product.
const BLOCK: usize = 64;

fn parallel(work: usize, tasks: usize) -> bool {
    work >= (1 << 13) && tasks > 1 && rayon::current_num_threads() > 1
}

/// A scratch buffer that goes back to the thread's pool when dropped.
pub(crate) struct Scratch(pub(crate) Vec<u64>);

impl Scratch {
    pub(crate) fn new(len: usize) -> Self {
        Self(scratch::take(len))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        scratch::give(std::mem::take(&mut self.0));
    }
}

/// The digits of a polynomial, each over the level+1+alpha rows of QP, in NTT form.
pub(crate) struct Digits {
    buf: Scratch,
    rows: usize,
    n: usize,
    count: usize,
}

impl Digits {
    fn row(&self, j: usize, r: usize) -> &[u64] {
        let o = (j * self.rows + r) * self.n;
        &self.buf.0[o..o + self.n]
    }
}

/// ModUp: the digits of `c` (NTT form, level+1 rows).
pub(crate) fn decompose(ctx: &CkksContext, c: &RnsPoly, level: usize) -> Digits {
    let n = ctx.n;
    let q_rows = level + 1;
    let qp = ctx.qp_primes(level);
    let rows = qp.len();
    let digits = &ctx.digits[level];
    // Coefficient form of c, times (D/q_s)^{-1} for digits of more than one prime.
    let mut y = Scratch::new(q_rows * n);
    y.0.copy_from_slice(&c.data[..q_rows * n]);
    let q_primes = &qp[..q_rows];
    for_each_row(&mut y.0, n, q_primes, |s, p, row| {
        p.backward(row);
        let d = digits.iter().find(|d| s >= d.start && s < d.end);
        if let Some(d) = d.filter(|d| d.end - d.start > 1) {
            let inv = d.inv_hat[s - d.start];
            for x in row.iter_mut() {
                *x = p.mul_shoup(*x, inv);
            }
        }
    });
    let y = &y.0;
    let count = digits.len();
    let mut buf = Scratch::new(count * rows * n);
    let work = |idx: usize, row: &mut [u64]| {
        let (j, r) = (idx / rows, idx % rows);
        let d = &digits[j];
        let p: &Prime = qp[r];
        if r >= d.start && r < d.end {
            row.copy_from_slice(c.row(r));
            return;
        }
        // Digits are taken centered, in (-q/2, q/2]: an uncentered digit has mean q/2, and
        // (q/2)(1 + X + ... + X^(N-1)) e_j is a large error on the slots near X = 1.
        if d.end - d.start == 1 {
            let qs = ctx.primes[d.start].q;
            let half = qs >> 1;
            let qs_mod = p.reduce(qs);
            let src = &y[d.start * n..(d.start + 1) * n];
            let fits = qs <= p.q;
            for (o, &x) in row.iter_mut().zip(src) {
                let v = if fits { x } else { p.reduce(x) };
                let mask = 0u64.wrapping_sub(half.wrapping_sub(x) >> 63);
                *o = p.sub(v, qs_mod & mask);
            }
        } else {
            let hat = &d.hat[r];
            let d_mod = d.d_mod[r];
            for (k, o) in row.iter_mut().enumerate() {
                let mut acc = 0u128;
                let mut above = 0u64;
                for (s, &h) in hat.iter().enumerate() {
                    let v = y[(d.start + s) * n + k];
                    acc += v as u128 * h as u128;
                    above += (d.halves[s].wrapping_sub(v) >> 63) & 1;
                }
                // Each centered y_s - q_s subtracts q_s (D/q_s) = D.
                *o = p.sub(p.reduce_u128(acc), p.mul(above, d_mod));
            }
        }
        p.forward(row);
    };
    if parallel(count * rows * n, count * rows) {
        buf.0
            .par_chunks_mut(n)
            .enumerate()
            .for_each(|(i, r)| work(i, r));
    } else {
        buf.0
            .chunks_mut(n)
            .enumerate()
            .for_each(|(i, r)| work(i, r));
    }
    Digits {
        buf,
        rows,
        n,
        count,
    }
}

/// sum_j digit_j * (b_j, a_j) over QP at `level`, optionally reading each digit through an NTT
/// permutation (a hoisted automorphism). Products are accumulated in u128 and reduced once.
pub(crate) fn inner_product(
    ctx: &CkksContext,
    digits: &Digits,
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let n = ctx.n;
    let qp = ctx.qp_primes(level);
    let rows = qp.len();
    let mut out0 = RnsPoly::zero(n, rows, true);
    let mut out1 = RnsPoly::zero(n, rows, true);
    let work = |r: usize, o0: &mut [u64], o1: &mut [u64]| {
        let p = qp[r];
        let ki = ctx.qp_index(level, r);
        let mut acc0 = [0u128; BLOCK];
        let mut acc1 = [0u128; BLOCK];
        for start in (0..n).step_by(BLOCK) {
            let end = (start + BLOCK).min(n);
            let len = end - start;
            let (acc0, acc1) = (&mut acc0[..len], &mut acc1[..len]);
            acc0.fill(0);
            acc1.fill(0);
            for j in 0..digits.count {
                let drow = digits.row(j, r);
                let brow = &key.b[j].row(ki)[start..end];
                let arow = &key.a[j].row(ki)[start..end];
                match perm {
                    Some(perm) => {
                        for ((((a0, a1), &b), &a), &k) in acc0
                            .iter_mut()
                            .zip(acc1.iter_mut())
                            .zip(brow)
                            .zip(arow)
                            .zip(&perm[start..end])
                        {
                            let x = drow[k as usize] as u128;
                            *a0 += x * b as u128;
                            *a1 += x * a as u128;
                        }
                    }
                    None => {
                        for ((((a0, a1), &b), &a), &x) in acc0
                            .iter_mut()
                            .zip(acc1.iter_mut())
                            .zip(brow)
                            .zip(arow)
                            .zip(&drow[start..end])
                        {
                            let x = x as u128;
                            *a0 += x * b as u128;
                            *a1 += x * a as u128;
                        }
                    }
                }
            }
            for (o, &a) in o0[start..end].iter_mut().zip(acc0.iter()) {
                *o = p.reduce_u128(a);
            }
            for (o, &a) in o1[start..end].iter_mut().zip(acc1.iter()) {
                *o = p.reduce_u128(a);
            }
        }
    };
    if parallel(rows * n, rows) {
        out0.data
            .par_chunks_mut(n)
            .zip(out1.data.par_chunks_mut(n))
            .enumerate()
            .for_each(|(r, (a, b))| work(r, a, b));
    } else {
        for (r, (a, b)) in out0
            .data
            .chunks_mut(n)
            .zip(out1.data.chunks_mut(n))
            .enumerate()
        {
            work(r, a, b);
        }
    }
    (out0, out1)
}

/// ModDown in place: x over QP at `level` (NTT form) becomes round(x / P) over q_0..q_level.
pub(crate) fn mod_down(ctx: &CkksContext, x: &mut RnsPoly, level: usize) {
    let n = ctx.n;
    let q_rows = level + 1;
    let alpha = ctx.alpha;
    // The P rows in coefficient form. With one special prime, (P-1)/2 is added so that the
    // exact conversion below gives the centered remainder (x - [x]_P)/P = round(x/P); with
    // several, the conversion itself is centered (see below), which rounds too.
    let mut pt = Scratch::new(alpha * n);
    pt.0.copy_from_slice(&x.data[q_rows * n..(q_rows + alpha) * n]);
    for (k, row) in pt.0.chunks_mut(n).enumerate() {
        let p = &ctx.primes[ctx.q_count + k];
        p.backward(row);
        if alpha > 1 {
            let inv = ctx.p_inv_hat[k];
            for v in row.iter_mut() {
                *v = p.mul_shoup(*v, inv);
            }
        } else {
            let h = ctx.p_half_mod_p[k];
            for v in row.iter_mut() {
                *v = p.add(*v, h);
            }
        }
    }
    let pt = &pt.0;
    x.truncate(q_rows);
    let primes = ctx.q_primes(level);
    for_each_row(&mut x.data, n, &primes, |i, p, row| {
        let mut conv = Scratch::new(n);
        if alpha == 1 {
            let h = ctx.p_half_mod_q[i];
            for (o, &v) in conv.0.iter_mut().zip(pt.iter()) {
                *o = p.sub(p.reduce(v), h);
            }
        } else {
            // Centered y_k as in `decompose`, so the approximate conversion's error is
            // centered too.
            let hat = &ctx.p_hat_mod_q[i];
            let p_mod = ctx.p_mod_q[i];
            for (k, o) in conv.0.iter_mut().enumerate() {
                let mut acc = 0u128;
                let mut above = 0u64;
                for (s, &hh) in hat.iter().enumerate() {
                    let v = pt[s * n + k];
                    acc += v as u128 * hh as u128;
                    above += (ctx.p_half_mod_p[s].wrapping_sub(v) >> 63) & 1;
                }
                *o = p.sub(p.reduce_u128(acc), p.mul(above, p_mod));
            }
        }
        // conv = the centered remainder of x modulo P (up to a centered multiple of P when
        // alpha > 1), modulo q_i.
        p.forward(&mut conv.0);
        let pinv = ctx.p_inv_mod_q[i];
        for (o, &c) in row.iter_mut().zip(conv.0.iter()) {
            *o = p.mul_shoup(p.sub(*o, c), pinv);
        }
    });
}

/// Key switch from precomputed digits: (d0, d1) with d0 + d1 s = c s' (+ small noise), where s'
/// is the key's source secret (permuted by `perm` if given).
pub(crate) fn switch_digits(
    ctx: &CkksContext,
    digits: &Digits,
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let (mut u0, mut u1) = inner_product(ctx, digits, key, perm, level);
    if parallel(2 * ctx.n, 2) {
        rayon::join(
            || mod_down(ctx, &mut u0, level),
            || mod_down(ctx, &mut u1, level),
        );
    } else {
        mod_down(ctx, &mut u0, level);
        mod_down(ctx, &mut u1, level);
    }
    (u0, u1)
}

/// Key-switches `c` (level+1 rows, NTT).
pub(crate) fn key_switch(
    ctx: &CkksContext,
    c: &RnsPoly,
    key: &KeySwitchKey,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let digits = decompose(ctx, c, level);
    switch_digits(ctx, &digits, key, None, level)
}
