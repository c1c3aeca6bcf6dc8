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

fn parallel(work: usize, tasks: usize) -> bool {
    work >= (1 << 13) && tasks > 1 && rayon::current_num_threads() > 1
}

/// Runs `work(r, row r of out0, row r of out1)` for every row of n coefficients, across
/// threads when `parallel` says so.
fn each_row_pair(
    out0: &mut RnsPoly,
    out1: &mut RnsPoly,
    n: usize,
    parallel: bool,
    work: impl Fn(usize, &mut [u64], &mut [u64]) + Sync,
) {
    if parallel {
        out0.data
            .par_chunks_mut(n)
            .zip(out1.data.par_chunks_mut(n))
            .enumerate()
            .for_each(|(r, (a, b))| work(r, a, b));
    } else {
        let rows = out0.data.chunks_mut(n).zip(out1.data.chunks_mut(n));
        for (r, (a, b)) in rows.enumerate() {
            work(r, a, b);
        }
    }
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

/// The input of every digit conversion: the coefficient form of `c` (NTT form, level+1 rows),
/// times (D/q_s)^{-1} for digits of more than one prime.
fn digit_inputs(ctx: &CkksContext, c: &[u64], level: usize) -> Scratch {
    let n = ctx.n;
    let q_rows = level + 1;
    let digits = &ctx.digits[level];
    let mut y = Scratch::new(q_rows * n);
    y.0.copy_from_slice(&c[..q_rows * n]);
    let q_primes = ctx.q_primes(level);
    for_each_row(&mut y.0, n, &q_primes, |s, p, row| {
        p.backward(row);
        let d = digits.iter().find(|d| s >= d.start && s < d.end);
        if let Some(d) = d.filter(|d| d.end - d.start > 1) {
            let inv = d.inv_hat[s - d.start];
            for x in row.iter_mut() {
                *x = p.mul_shoup(*x, inv);
            }
        }
    });
    y
}

/// Row `r` of QP (at `level`) of digit `j` of `c`, in NTT form, from `y = digit_inputs(c)`.
fn digit_row(
    ctx: &CkksContext,
    c: &[u64],
    y: &[u64],
    level: usize,
    j: usize,
    r: usize,
    row: &mut [u64],
) {
    let n = ctx.n;
    let d = &ctx.digits[level][j];
    let p: &Prime = &ctx.primes[ctx.qp_index(level, r)];
    if r >= d.start && r < d.end {
        row.copy_from_slice(&c[r * n..(r + 1) * n]);
        return;
    }
    // Digits are taken centered, in (-q/2, q/2]: an uncentered digit has mean q/2, and
    // (q/2)(1 + X + ... + X^(N-1)) e_j is a large error on the slots near X = 1.
    if d.end - d.start == 1 {
        let qs = ctx.primes[d.start].q;
        let half = qs >> 1;
        let qs_mod = p.reduce(qs);
        let src = &y[d.start * n..(d.start + 1) * n];
        if qs <= p.q {
            for (o, &x) in row.iter_mut().zip(src) {
                let mask = 0u64.wrapping_sub(half.wrapping_sub(x) >> 63);
                *o = p.sub(x, qs_mod & mask);
            }
        } else {
            for (o, &x) in row.iter_mut().zip(src) {
                let mask = 0u64.wrapping_sub(half.wrapping_sub(x) >> 63);
                *o = p.sub(p.reduce(x), qs_mod & mask);
            }
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
}

/// ModUp: the digits of `c` (NTT form, level+1 rows), kept for several inner products
/// (hoisted rotations).
pub(crate) fn decompose(ctx: &CkksContext, c: &RnsPoly, level: usize) -> Digits {
    let n = ctx.n;
    let rows = level + 1 + ctx.alpha;
    let y = digit_inputs(ctx, &c.data, level);
    let count = ctx.digits[level].len();
    let mut buf = Scratch::new(count * rows * n);
    let work = |idx: usize, row: &mut [u64]| {
        digit_row(ctx, &c.data, &y.0, level, idx / rows, idx % rows, row);
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

/// The lazy sums of one row of the inner product: for each coefficient, the two u128 sums
/// sum_j d_j b_j and sum_j d_j a_j as (lo, hi, lo, hi) words. Each is a sum of at most 64
/// products below 2^120, reduced once at the end. Digits are accumulated one at a time over
/// the whole row (sequential reads of the digit and key rows, as SEAL does).
struct RowSums(Scratch);

impl RowSums {
    fn new(n: usize) -> Self {
        Self(Scratch::new(4 * n))
    }

    /// Adds d * (b, a) (d read through `perm` if given); `first` overwrites instead.
    fn add(&mut self, first: bool, d: &[u64], b: &[u64], a: &[u64], perm: Option<&[u32]>) {
        let acc = self.0.0.chunks_exact_mut(4);
        #[inline(always)]
        fn step(s: &mut [u64], first: bool, x: u64, b: u64, a: u64) {
            let x = x as u128;
            let mut s0 = x * b as u128;
            let mut s1 = x * a as u128;
            if !first {
                s0 += s[0] as u128 | (s[1] as u128) << 64;
                s1 += s[2] as u128 | (s[3] as u128) << 64;
            }
            s[0] = s0 as u64;
            s[1] = (s0 >> 64) as u64;
            s[2] = s1 as u64;
            s[3] = (s1 >> 64) as u64;
        }
        match (perm, first) {
            (None, true) => {
                for (((s, &x), &b), &a) in acc.zip(d).zip(b).zip(a) {
                    step(s, true, x, b, a);
                }
            }
            (None, false) => {
                for (((s, &x), &b), &a) in acc.zip(d).zip(b).zip(a) {
                    step(s, false, x, b, a);
                }
            }
            (Some(perm), first) => {
                for (((s, &k), &b), &a) in acc.zip(perm).zip(b).zip(a) {
                    step(s, first, d[k as usize], b, a);
                }
            }
        }
    }

    fn reduce(&self, p: &Prime, o0: &mut [u64], o1: &mut [u64]) {
        for ((s, o0), o1) in self.0.0.chunks_exact(4).zip(o0).zip(o1) {
            *o0 = p.reduce_u128(s[0] as u128 | (s[1] as u128) << 64);
            *o1 = p.reduce_u128(s[2] as u128 | (s[3] as u128) << 64);
        }
    }
}

/// sum_j digit_j * (b_j, a_j) over QP at `level`, optionally reading each digit through an NTT
/// permutation (a hoisted automorphism).
pub(crate) fn inner_product(
    ctx: &CkksContext,
    digits: &Digits,
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let n = ctx.n;
    let rows = level + 1 + ctx.alpha;
    let mut out0 = RnsPoly::pooled(n, rows, true);
    let mut out1 = RnsPoly::pooled(n, rows, true);
    let work = |r: usize, o0: &mut [u64], o1: &mut [u64]| {
        let ki = ctx.qp_index(level, r);
        let mut sums = RowSums::new(n);
        for j in 0..digits.count {
            sums.add(
                j == 0,
                digits.row(j, r),
                key.b[j].row(ki),
                key.a[j].row(ki),
                perm,
            );
        }
        sums.reduce(&ctx.primes[ki], o0, o1);
    };
    each_row_pair(&mut out0, &mut out1, n, parallel(rows * n, rows), work);
    (out0, out1)
}

/// ModUp and the inner product without keeping the digits: row by row of QP, the digits' rows
/// for that prime are computed into a small buffer and consumed at once (while still in cache).
/// Same values as `decompose` followed by `inner_product`.
fn mod_up_inner_product(
    ctx: &CkksContext,
    c: &[u64],
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
) -> (RnsPoly, RnsPoly) {
    let n = ctx.n;
    let rows = level + 1 + ctx.alpha;
    let count = ctx.digits[level].len();
    debug_assert!(count <= 64, "the u128 sums hold at most 64 products");
    let y = digit_inputs(ctx, c, level);
    let y = &y.0;
    let mut out0 = RnsPoly::pooled(n, rows, true);
    let mut out1 = RnsPoly::pooled(n, rows, true);
    let work = |r: usize, o0: &mut [u64], o1: &mut [u64]| {
        let ki = ctx.qp_index(level, r);
        let mut sums = RowSums::new(n);
        let mut d = Scratch::new(n);
        for (j, dig) in ctx.digits[level].iter().enumerate() {
            // Row r of the digit holding q_r is c's own row (NTT form).
            let row = if r >= dig.start && r < dig.end {
                &c[r * n..(r + 1) * n]
            } else {
                digit_row(ctx, c, y, level, j, r, &mut d.0);
                &d.0
            };
            sums.add(j == 0, row, key.b[j].row(ki), key.a[j].row(ki), perm);
        }
        sums.reduce(&ctx.primes[ki], o0, o1);
    };
    each_row_pair(
        &mut out0,
        &mut out1,
        n,
        parallel(count * rows * n, rows),
        work,
    );
    (out0, out1)
}

/// ModDown in place: x over QP at `level` (NTT form) becomes round(x / P) over q_0..q_level,
/// plus `add` (q_0..q_level, NTT form) if given.
pub(crate) fn mod_down(ctx: &CkksContext, x: &mut RnsPoly, level: usize, add: Option<&[u64]>) {
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
            if ctx.primes[ctx.q_count].q <= p.q {
                for (o, &v) in conv.0.iter_mut().zip(pt.iter()) {
                    *o = p.sub(v, h);
                }
            } else {
                for (o, &v) in conv.0.iter_mut().zip(pt.iter()) {
                    *o = p.sub(p.reduce(v), h);
                }
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
        match add {
            None => {
                for (o, &c) in row.iter_mut().zip(conv.0.iter()) {
                    *o = p.mul_shoup(p.sub(*o, c), pinv);
                }
            }
            Some(add) => {
                let add = &add[i * n..(i + 1) * n];
                for ((o, &c), &e) in row.iter_mut().zip(conv.0.iter()).zip(add) {
                    *o = p.add(p.mul_shoup(p.sub(*o, c), pinv), e);
                }
            }
        }
    });
}

/// ModDown of both halves of an inner product, adding `add0` and `add1` if given.
fn mod_down_pair(
    ctx: &CkksContext,
    u: (RnsPoly, RnsPoly),
    level: usize,
    add0: Option<&[u64]>,
    add1: Option<&[u64]>,
) -> (RnsPoly, RnsPoly) {
    let (mut u0, mut u1) = u;
    if parallel(2 * ctx.n, 2) {
        rayon::join(
            || mod_down(ctx, &mut u0, level, add0),
            || mod_down(ctx, &mut u1, level, add1),
        );
    } else {
        mod_down(ctx, &mut u0, level, add0);
        mod_down(ctx, &mut u1, level, add1);
    }
    (u0, u1)
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
    let u = inner_product(ctx, digits, key, perm, level);
    mod_down_pair(ctx, u, level, None, None)
}

/// Key-switches `c` (level+1 rows of n values, NTT form), reading its digits through `perm` if
/// given, and adds `add0` and `add1` (level+1 rows, NTT form) to the two results if given.
pub(crate) fn key_switch(
    ctx: &CkksContext,
    c: &[u64],
    key: &KeySwitchKey,
    perm: Option<&[u32]>,
    level: usize,
    add0: Option<&[u64]>,
    add1: Option<&[u64]>,
) -> (RnsPoly, RnsPoly) {
    let u = mod_up_inner_product(ctx, c, key, perm, level);
    mod_down_pair(ctx, u, level, add0, add1)
}
