//! Hybrid key switching: digit decomposition with basis extension to QP (ModUp), the inner
//! product with a key-switching key, and division by P (ModDown). All in the NTT domain.
//!
//! Rotations can be *hoisted*: the decomposition of c1 is computed once and permuted for each
//! Galois element (the automorphism commutes with the decomposition up to multiples of each
//! digit's modulus, which the gadget annihilates), so k rotations of one ciphertext cost one
//! ModUp and k inner products and ModDowns.

use crate::context::CkksContext;
use crate::keys::KeySwitchKey;
use crate::ring::{Prime, RnsPoly, for_each_row};

/// Coefficients per block of the lazy u128 inner product.
const BLOCK: usize = 128;

/// ModUp: the digits of `c` (NTT form, level+1 rows), each extended to the level+1+alpha rows of
/// QP and in NTT form.
pub(crate) fn decompose(ctx: &CkksContext, c: &RnsPoly, level: usize) -> Vec<RnsPoly> {
    let n = ctx.n;
    let qp = ctx.qp_primes(level);
    let rows = qp.len();
    let mut coeff = c.clone();
    coeff.to_coeff(&ctx.q_primes(level));
    ctx.digits[level]
        .iter()
        .map(|d| {
            let w = d.end - d.start;
            // y_s = x_s (D/q_s)^{-1} mod q_s (for a one-prime digit, y = x).
            let mut y = coeff.data[d.start * n..d.end * n].to_vec();
            if w > 1 {
                for (s, row) in y.chunks_mut(n).enumerate() {
                    let p = &ctx.primes[d.start + s];
                    let inv = d.inv_hat[s];
                    for x in row.iter_mut() {
                        *x = p.mul_shoup(*x, inv);
                    }
                }
            }
            let mut out = RnsPoly::zero(n, rows, true);
            for_each_row(&mut out.data, n, &qp, |r, p, row| {
                if r >= d.start && r < d.end {
                    row.copy_from_slice(c.row(r));
                    return;
                }
                if w == 1 {
                    for (o, &x) in row.iter_mut().zip(&y) {
                        *o = p.reduce(x);
                    }
                } else {
                    let hat = &d.hat[r];
                    for (k, o) in row.iter_mut().enumerate() {
                        let mut acc = 0u128;
                        for (s, &h) in hat.iter().enumerate() {
                            acc += y[s * n + k] as u128 * h as u128;
                        }
                        *o = p.reduce_u128(acc);
                    }
                }
                p.forward(row);
            });
            out
        })
        .collect()
}

/// Runs `f(row, prime, out0_row, out1_row)` over the rows of two polynomials, in parallel when
/// worthwhile.
fn for_each_row_pair<F>(a: &mut [u64], b: &mut [u64], n: usize, primes: &[&Prime], f: F)
where
    F: Fn(usize, &Prime, &mut [u64], &mut [u64]) + Sync + Send,
{
    use rayon::prelude::*;
    if a.len() >= (1 << 13) && primes.len() > 1 && rayon::current_num_threads() > 1 {
        a.par_chunks_mut(n)
            .zip(b.par_chunks_mut(n))
            .zip(primes.par_iter())
            .enumerate()
            .for_each(|(i, ((ra, rb), p))| f(i, p, ra, rb));
    } else {
        a.chunks_mut(n)
            .zip(b.chunks_mut(n))
            .zip(primes)
            .enumerate()
            .for_each(|(i, ((ra, rb), p))| f(i, p, ra, rb));
    }
}

/// sum_j digit_j * (b_j, a_j) over QP at `level`, optionally reading each digit through an NTT
/// permutation (a hoisted automorphism). Products are accumulated in u128 and reduced once.
pub(crate) fn inner_product(
    ctx: &CkksContext,
    digits: &[RnsPoly],
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let n = ctx.n;
    let qp = ctx.qp_primes(level);
    let rows = qp.len();
    let mut out0 = RnsPoly::zero(n, rows, true);
    let mut out1 = RnsPoly::zero(n, rows, true);
    for_each_row_pair(&mut out0.data, &mut out1.data, n, &qp, |r, p, o0, o1| {
        let ki = ctx.qp_index(level, r);
        let mut acc0 = [0u128; BLOCK];
        let mut acc1 = [0u128; BLOCK];
        let mut start = 0;
        while start < n {
            let len = BLOCK.min(n - start);
            acc0[..len].fill(0);
            acc1[..len].fill(0);
            for (j, d) in digits.iter().enumerate() {
                let drow = d.row(r);
                let brow = &key.b[j].row(ki)[start..start + len];
                let arow = &key.a[j].row(ki)[start..start + len];
                match perm {
                    Some(perm) => {
                        let prow = &perm[start..start + len];
                        for t in 0..len {
                            let x = drow[prow[t] as usize] as u128;
                            acc0[t] += x * brow[t] as u128;
                            acc1[t] += x * arow[t] as u128;
                        }
                    }
                    None => {
                        let drow = &drow[start..start + len];
                        for t in 0..len {
                            let x = drow[t] as u128;
                            acc0[t] += x * brow[t] as u128;
                            acc1[t] += x * arow[t] as u128;
                        }
                    }
                }
            }
            for t in 0..len {
                o0[start + t] = p.reduce_u128(acc0[t]);
                o1[start + t] = p.reduce_u128(acc1[t]);
            }
            start += len;
        }
    });
    (out0, out1)
}

/// ModDown: round(x / P) for x over QP at `level` (NTT form), returned over q_0..q_level.
pub(crate) fn mod_down(ctx: &CkksContext, x: &RnsPoly, level: usize) -> RnsPoly {
    let n = ctx.n;
    let q_rows = level + 1;
    let alpha = ctx.alpha;
    // The P rows in coefficient form, plus (P-1)/2 so that the division rounds.
    let mut pt = x.data[q_rows * n..].to_vec();
    for (k, row) in pt.chunks_mut(n).enumerate() {
        let p = &ctx.primes[ctx.q_count + k];
        p.backward(row);
        let h = ctx.p_half_mod_p[k];
        for v in row.iter_mut() {
            *v = p.add(*v, h);
        }
        if alpha > 1 {
            let inv = ctx.p_inv_hat[k];
            for v in row.iter_mut() {
                *v = p.mul_shoup(*v, inv);
            }
        }
    }
    let mut out = RnsPoly {
        data: x.data[..q_rows * n].to_vec(),
        n,
        ntt: true,
    };
    let primes = ctx.q_primes(level);
    for_each_row(&mut out.data, n, &primes, |i, p, row| {
        let mut conv = vec![0u64; n];
        if alpha == 1 {
            for (o, &v) in conv.iter_mut().zip(&pt) {
                *o = p.reduce(v);
            }
        } else {
            let hat = &ctx.p_hat_mod_q[i];
            for (k, o) in conv.iter_mut().enumerate() {
                let mut acc = 0u128;
                for (s, &h) in hat.iter().enumerate() {
                    acc += pt[s * n + k] as u128 * h as u128;
                }
                *o = p.reduce_u128(acc);
            }
        }
        // conv holds [x + (P-1)/2]_P; remove the (P-1)/2 added mod q_i too.
        let h = ctx.p_half_mod_q[i];
        for v in conv.iter_mut() {
            *v = p.sub(*v, h);
        }
        p.forward(&mut conv);
        let pinv = ctx.p_inv_mod_q[i];
        for (o, &c) in row.iter_mut().zip(&conv) {
            *o = p.mul_shoup(p.sub(*o, c), pinv);
        }
    });
    out
}

/// Key-switches `c` (level+1 rows, NTT): returns (d0, d1) with d0 + d1 s = c s' (+ small noise).
pub(crate) fn key_switch(
    ctx: &CkksContext,
    c: &RnsPoly,
    key: &KeySwitchKey,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let digits = decompose(ctx, c, level);
    let (u0, u1) = inner_product(ctx, &digits, key, None, level);
    let (d0, d1) = rayon::join(|| mod_down(ctx, &u0, level), || mod_down(ctx, &u1, level));
    (d0, d1)
}
