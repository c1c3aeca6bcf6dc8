//! Homomorphic operations on ciphertexts.
//!
//! Levels and scales are explicit: binary operations need operands at the same level (see
//! [`Evaluator::align`]) and additions need equal scales (relative difference at most
//! [`SCALE_TOLERANCE`]); products multiply scales, and [`Evaluator::rescale`] divides by the
//! prime it drops. Plaintexts and constants meant to be multiplied can be encoded at the scale
//! q_level (see [`Evaluator::exact_scale`]), so that the rescale after the product gives back
//! exactly the ciphertext's scale.

use std::sync::Arc;

use crate::cipher::Ciphertext;
use crate::context::CkksContext;
use crate::encoding::Plaintext;
use crate::error::{HeError, Result};
use crate::keys::{EvaluationKeys, GaloisKey};
use crate::keyswitch::{Digits, Scratch, decompose, key_switch, switch_digits};
use crate::ring::{Prime, RnsPoly, for_each_row, for_each_row_light};

/// Largest relative difference between two scales that additions accept.
pub const SCALE_TOLERANCE: f64 = 1e-9;

/// Evaluates operations with a context and a set of evaluation keys (never a secret key).
#[derive(Debug, Clone)]
pub struct Evaluator {
    ctx: Arc<CkksContext>,
    keys: Arc<EvaluationKeys>,
}

fn check_scales(a: f64, b: f64) -> Result<()> {
    if ((a / b) - 1.0).abs() > SCALE_TOLERANCE {
        return Err(HeError::ScaleMismatch {
            left: a.log2(),
            right: b.log2(),
        });
    }
    Ok(())
}

impl Evaluator {
    /// An evaluator with evaluation keys.
    pub fn new(ctx: &Arc<CkksContext>, keys: Arc<EvaluationKeys>) -> Result<Self> {
        if keys.ctx_id != ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        Ok(Self {
            ctx: ctx.clone(),
            keys,
        })
    }

    /// An evaluator without keys (additions, plaintext products, rescaling).
    pub fn without_keys(ctx: &Arc<CkksContext>) -> Self {
        Self {
            ctx: ctx.clone(),
            keys: Arc::new(EvaluationKeys::empty(ctx)),
        }
    }

    /// The context.
    pub fn context(&self) -> &Arc<CkksContext> {
        &self.ctx
    }

    /// The evaluation keys.
    pub fn keys(&self) -> &EvaluationKeys {
        &self.keys
    }

    /// The scale that makes a plaintext or constant product followed by a rescale keep a
    /// ciphertext's scale exactly: q_level.
    pub fn exact_scale(&self, level: usize) -> f64 {
        self.ctx.q_at(level) as f64
    }

    fn check_ct(&self, ct: &Ciphertext) -> Result<()> {
        if ct.ctx_id != self.ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        Ok(())
    }

    fn check_pair(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_ct(a)?;
        self.check_ct(b)?;
        if a.level != b.level {
            return Err(HeError::LevelMismatch {
                left: a.level,
                right: b.level,
            });
        }
        Ok(())
    }

    fn check_pt(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_ct(ct)?;
        if pt.ctx_id != self.ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        if pt.level < ct.level {
            return Err(HeError::LevelMismatch {
                left: ct.level,
                right: pt.level,
            });
        }
        Ok(())
    }

    /// The plaintext's rows for a ciphertext level (a plaintext may sit higher).
    fn pt_rows<'a>(&self, pt: &'a Plaintext, level: usize) -> std::borrow::Cow<'a, RnsPoly> {
        if pt.level == level {
            std::borrow::Cow::Borrowed(&pt.poly)
        } else {
            let n = self.ctx.n;
            std::borrow::Cow::Owned(RnsPoly {
                data: pt.poly.data[..(level + 1) * n].to_vec(),
                n,
                ntt: true,
            })
        }
    }

    /// a + b.
    pub fn add(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        if a.c.len() != b.c.len() {
            let mut out = a.clone();
            self.add_assign(&mut out, b)?;
            return Ok(out);
        }
        self.check_pair(a, b)?;
        check_scales(a.scale, b.scale)?;
        let primes = self.ctx.q_primes(a.level);
        let c =
            a.c.iter()
                .zip(&b.c)
                .map(|(x, y)| binary_op(x, y, &primes, |p, u, v| p.add(u, v)))
                .collect();
        Ok(Ciphertext {
            c,
            level: a.level,
            scale: a.scale,
            ctx_id: a.ctx_id,
            seed: None,
        })
    }

    /// a += b.
    pub fn add_assign(&self, a: &mut Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_pair(a, b)?;
        check_scales(a.scale, b.scale)?;
        let primes = self.ctx.q_primes(a.level);
        while a.c.len() < b.c.len() {
            a.c.push(RnsPoly::zero(self.ctx.n, a.level + 1, true));
        }
        for (x, y) in a.c.iter_mut().zip(&b.c) {
            x.add_assign(y, &primes);
        }
        a.seed = None;
        Ok(())
    }

    /// a - b.
    pub fn sub(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_pair(a, b)?;
        check_scales(a.scale, b.scale)?;
        let primes = self.ctx.q_primes(a.level);
        let mut out = a.clone();
        while out.c.len() < b.c.len() {
            out.c.push(RnsPoly::zero(self.ctx.n, a.level + 1, true));
        }
        for (x, y) in out.c.iter_mut().zip(&b.c) {
            x.sub_assign(y, &primes);
        }
        out.seed = None;
        Ok(out)
    }

    /// -a.
    pub fn neg(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(a)?;
        let primes = self.ctx.q_primes(a.level);
        let mut out = a.clone();
        for x in out.c.iter_mut() {
            x.neg_assign(&primes);
        }
        out.seed = None;
        Ok(out)
    }

    /// ct + pt (equal scales).
    pub fn add_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_pt(ct, pt)?;
        check_scales(ct.scale, pt.scale)?;
        let mut out = ct.clone();
        let rows = self.pt_rows(pt, ct.level);
        out.c[0].add_assign(&rows, &self.ctx.q_primes(ct.level));
        Ok(out)
    }

    /// ct - pt (equal scales).
    pub fn sub_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_pt(ct, pt)?;
        check_scales(ct.scale, pt.scale)?;
        let mut out = ct.clone();
        let rows = self.pt_rows(pt, ct.level);
        out.c[0].sub_assign(&rows, &self.ctx.q_primes(ct.level));
        Ok(out)
    }

    /// Adds the real constant c to every slot (encoded at the ciphertext's scale).
    pub fn add_const(&self, ct: &Ciphertext, c: f64) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        let v = self.round_const(c, ct.scale, ct.level)?;
        let mut out = ct.clone();
        // A constant polynomial is the same value in every NTT slot.
        for_each_row_light(
            &mut out.c[0].data,
            self.ctx.n,
            &self.ctx.q_primes(ct.level),
            |i, p, row| {
                let x = p.reduce_i128(v[i]);
                for o in row.iter_mut() {
                    *o = p.add(*o, x);
                }
            },
        );
        Ok(out)
    }

    fn round_const(&self, c: f64, scale: f64, level: usize) -> Result<Vec<i128>> {
        let x = c * scale;
        if !x.is_finite() || x.abs() >= 1.0e37 {
            return Err(HeError::ValueOutOfRange(format!(
                "constant {c} at scale 2^{:.1}",
                scale.log2()
            )));
        }
        let log_q: f64 = (0..=level).map(|i| (self.ctx.q_at(i) as f64).log2()).sum();
        if x.abs() >= 1.0 && x.abs().log2() >= log_q - 1.0 {
            return Err(HeError::ValueOutOfRange(format!(
                "constant {c} does not fit at level {level}"
            )));
        }
        Ok(vec![x.round() as i128; level + 1])
    }

    /// ct * pt (no rescale; the scales multiply).
    pub fn mul_plain(&self, ct: &Ciphertext, pt: &Plaintext) -> Result<Ciphertext> {
        self.check_pt(ct, pt)?;
        let primes = self.ctx.q_primes(ct.level);
        // The plaintext may sit at a higher level: its first level+1 rows are used.
        let c =
            ct.c.iter()
                .map(|x| binary_op(x, &pt.poly, &primes, |p, u, v| p.mul(u, v)))
                .collect();
        Ok(Ciphertext {
            c,
            level: ct.level,
            scale: ct.scale * pt.scale,
            ctx_id: ct.ctx_id,
            seed: None,
        })
    }

    /// ct *= pt (no rescale).
    pub fn mul_plain_assign(&self, ct: &mut Ciphertext, pt: &Plaintext) -> Result<()> {
        self.check_pt(ct, pt)?;
        let rows = self.pt_rows(pt, ct.level);
        let primes = self.ctx.q_primes(ct.level);
        for x in ct.c.iter_mut() {
            x.mul_assign(&rows, &primes);
        }
        ct.scale *= pt.scale;
        ct.seed = None;
        Ok(())
    }

    /// ct * c for a real constant c encoded at `const_scale` (no rescale; the scale is
    /// multiplied by `const_scale`). Use [`Evaluator::exact_scale`] to keep the scale across
    /// the following rescale.
    pub fn mul_const(&self, ct: &Ciphertext, c: f64, const_scale: f64) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        let v = self.round_const(c, const_scale, ct.level)?;
        let primes = self.ctx.q_primes(ct.level);
        let w: Vec<(u64, u64)> = primes
            .iter()
            .zip(&v)
            .map(|(p, &x)| p.shoup(p.reduce_i128(x)))
            .collect();
        let mut out = ct.clone();
        for x in out.c.iter_mut() {
            x.mul_const_rows(&w, &primes);
        }
        out.scale *= const_scale;
        out.seed = None;
        Ok(out)
    }

    /// ct * k for an integer k (the scale is unchanged, no level used).
    pub fn mul_integer(&self, ct: &Ciphertext, k: i64) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        let primes = self.ctx.q_primes(ct.level);
        let w: Vec<(u64, u64)> = primes.iter().map(|p| p.shoup(p.reduce_i64(k))).collect();
        let mut out = ct.clone();
        for x in out.c.iter_mut() {
            x.mul_const_rows(&w, &primes);
        }
        out.seed = None;
        Ok(out)
    }

    fn check_mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<()> {
        self.check_pair(a, b)?;
        if a.c.len() != 2 {
            return Err(HeError::NotRelinearized(a.c.len()));
        }
        if b.c.len() != 2 {
            return Err(HeError::NotRelinearized(b.c.len()));
        }
        Ok(())
    }

    /// The tensor product of two 2-component ciphertexts (checked by `check_mul`), row by row
    /// into `d0`, `d1`, `d2` (level+1 rows each).
    fn tensor(
        &self,
        a: &Ciphertext,
        b: &Ciphertext,
        d0: &mut [u64],
        d1: &mut [u64],
        d2: &mut [u64],
    ) {
        let n = self.ctx.n;
        let primes = self.ctx.q_primes(a.level);
        let rows = a.level + 1;
        let (a0, a1, b0, b1) = (&a.c[0].data, &a.c[1].data, &b.c[0].data, &b.c[1].data);
        let work = |i: usize, r0: &mut [u64], r1: &mut [u64], r2: &mut [u64]| {
            let p = primes[i];
            let s = i * n..(i + 1) * n;
            let (x0, x1, y0, y1) = (&a0[s.clone()], &a1[s.clone()], &b0[s.clone()], &b1[s]);
            for k in 0..n {
                let (u0, u1, v0, v1) = (x0[k] as u128, x1[k] as u128, y0[k] as u128, y1[k] as u128);
                r0[k] = p.reduce_u128(u0 * v0);
                // Two products below 2^120 (primes of at most 60 bits): one reduction of the sum.
                r1[k] = p.reduce_u128(u0 * v1 + u1 * v0);
                r2[k] = p.reduce_u128(u1 * v1);
            }
        };
        let (d0, d1, d2) = (
            &mut d0[..rows * n],
            &mut d1[..rows * n],
            &mut d2[..rows * n],
        );
        // Three outputs per row: run rows in parallel over d0, then d1 and d2 in the same pass.
        if rows > 1 && rows * n >= (1 << 13) && rayon::current_num_threads() > 1 {
            use rayon::prelude::*;
            d0.par_chunks_mut(n)
                .zip(d1.par_chunks_mut(n))
                .zip(d2.par_chunks_mut(n))
                .enumerate()
                .for_each(|(i, ((r0, r1), r2))| work(i, r0, r1, r2));
        } else {
            for (i, ((r0, r1), r2)) in d0
                .chunks_mut(n)
                .zip(d1.chunks_mut(n))
                .zip(d2.chunks_mut(n))
                .enumerate()
            {
                work(i, r0, r1, r2);
            }
        }
    }

    /// a * b without relinearization (a 3-component ciphertext; the scales multiply).
    pub fn mul_no_relin(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_mul(a, b)?;
        let n = self.ctx.n;
        let rows = a.level + 1;
        let mut d0 = RnsPoly::pooled(n, rows, true);
        let mut d1 = RnsPoly::pooled(n, rows, true);
        let mut d2 = RnsPoly::pooled(n, rows, true);
        self.tensor(a, b, &mut d0.data, &mut d1.data, &mut d2.data);
        Ok(Ciphertext {
            c: vec![d0, d1, d2],
            level: a.level,
            scale: a.scale * b.scale,
            ctx_id: self.ctx.id,
            seed: None,
        })
    }

    fn relin_key(&self) -> Result<&crate::keys::KeySwitchKey> {
        self.keys
            .relin
            .as_ref()
            .map(|rk| &rk.key)
            .ok_or_else(|| HeError::MissingKey("relinearization".into()))
    }

    /// Relinearizes a 3-component ciphertext back to 2 components.
    pub fn relinearize(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        if ct.c.len() == 2 {
            return Ok(ct.clone());
        }
        let key = self.relin_key()?;
        let (c0, c1) = key_switch(
            &self.ctx,
            &ct.c[2].data,
            key,
            None,
            ct.level,
            Some(&ct.c[0].data),
            Some(&ct.c[1].data),
        );
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: ct.level,
            scale: ct.scale,
            ctx_id: ct.ctx_id,
            seed: None,
        })
    }

    /// a * b, relinearized (no rescale). The same result as `relinearize(mul_no_relin(a, b))`,
    /// without building the 3-component ciphertext.
    pub fn mul(&self, a: &Ciphertext, b: &Ciphertext) -> Result<Ciphertext> {
        self.check_mul(a, b)?;
        let key = self.relin_key()?;
        let n = self.ctx.n;
        let len = (a.level + 1) * n;
        let (mut d0, mut d1, mut d2) = (Scratch::new(len), Scratch::new(len), Scratch::new(len));
        self.tensor(a, b, &mut d0.0, &mut d1.0, &mut d2.0);
        let (c0, c1) = key_switch(
            &self.ctx,
            &d2.0,
            key,
            None,
            a.level,
            Some(&d0.0),
            Some(&d1.0),
        );
        Ok(Ciphertext {
            c: vec![c0, c1],
            level: a.level,
            scale: a.scale * b.scale,
            ctx_id: self.ctx.id,
            seed: None,
        })
    }

    /// a^2, relinearized (no rescale).
    pub fn square(&self, a: &Ciphertext) -> Result<Ciphertext> {
        self.mul(a, a)
    }

    /// Divides by the last prime q_level and drops it (rounding), in the NTT domain: the scale
    /// is divided by q_level.
    pub fn rescale(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        if ct.level == 0 {
            return Err(HeError::OutOfLevels(0));
        }
        let l = ct.level;
        let n = self.ctx.n;
        let ql = &self.ctx.primes[l];
        let half = ql.q >> 1;
        let tables = &self.ctx.rescale[l];
        let primes = self.ctx.q_primes(l - 1);
        let c =
            ct.c.iter()
                .map(|x| {
                    let mut last = Scratch::new(n);
                    last.0.copy_from_slice(x.row(l));
                    ql.backward(&mut last.0);
                    for v in last.0.iter_mut() {
                        *v = ql.add(*v, half);
                    }
                    let last = &last.0;
                    let src = &x.data;
                    let mut out = RnsPoly::pooled(n, l, true);
                    for_each_row(&mut out.data, n, &primes, |i, p, row| {
                        let (inv, h) = tables[i];
                        let mut t = Scratch::new(n);
                        for (o, &v) in t.0.iter_mut().zip(last.iter()) {
                            *o = p.sub(p.reduce(v), h);
                        }
                        p.forward(&mut t.0);
                        let xi = &src[i * n..(i + 1) * n];
                        for ((o, &v), &c) in row.iter_mut().zip(t.0.iter()).zip(xi) {
                            *o = p.mul_shoup(p.sub(c, v), inv);
                        }
                    });
                    out
                })
                .collect();
        Ok(Ciphertext {
            c,
            level: l - 1,
            scale: ct.scale / ql.q as f64,
            ctx_id: ct.ctx_id,
            seed: None,
        })
    }

    /// Drops primes down to `level` without dividing (exact; the scale is unchanged).
    pub fn mod_drop_to(&self, ct: &Ciphertext, level: usize) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        if level > ct.level {
            return Err(HeError::LevelMismatch {
                left: ct.level,
                right: level,
            });
        }
        let mut out = ct.clone();
        for x in out.c.iter_mut() {
            x.truncate(level + 1);
        }
        out.level = level;
        Ok(out)
    }

    /// Brings two ciphertexts to the lower of their levels.
    pub fn align(&self, a: &Ciphertext, b: &Ciphertext) -> Result<(Ciphertext, Ciphertext)> {
        let l = a.level.min(b.level);
        Ok((self.mod_drop_to(a, l)?, self.mod_drop_to(b, l)?))
    }

    fn galois_key(&self, g: usize, what: impl Fn() -> String) -> Result<&GaloisKey> {
        self.keys
            .galois
            .get(&g)
            .ok_or_else(|| HeError::MissingKey(what()))
    }

    /// Applies X -> X^g with its key.
    pub fn apply_galois(&self, ct: &Ciphertext, g: usize) -> Result<Ciphertext> {
        self.check_ct(ct)?;
        if ct.c.len() != 2 {
            return Err(HeError::NotRelinearized(ct.c.len()));
        }
        let key = self.galois_key(g, || format!("Galois element {g}"))?;
        Ok(self.galois_one(ct, key))
    }

    /// One automorphism with its key, without keeping the digits.
    fn galois_one(&self, ct: &Ciphertext, key: &GaloisKey) -> Ciphertext {
        let (d0, d1) = key_switch(
            &self.ctx,
            &ct.c[1].data,
            &key.key,
            Some(&key.perm),
            ct.level,
            None,
            None,
        );
        self.galois_finish(ct, d0, d1, key)
    }

    fn galois_from_digits(&self, ct: &Ciphertext, digits: &Digits, key: &GaloisKey) -> Ciphertext {
        let (d0, d1) = switch_digits(&self.ctx, digits, &key.key, Some(&key.perm), ct.level);
        self.galois_finish(ct, d0, d1, key)
    }

    /// The automorphism of `ct` from its key-switched c1 (`d0`, `d1`): c0 permuted into d0.
    fn galois_finish(
        &self,
        ct: &Ciphertext,
        mut d0: RnsPoly,
        d1: RnsPoly,
        key: &GaloisKey,
    ) -> Ciphertext {
        d0.add_permuted(&ct.c[0], &key.perm, &self.ctx.q_primes(ct.level));
        Ciphertext {
            c: vec![d0, d1],
            level: ct.level,
            scale: ct.scale,
            ctx_id: ct.ctx_id,
            seed: None,
        }
    }

    /// Rotates the slots left by `steps` (right when negative).
    pub fn rotate(&self, ct: &Ciphertext, steps: i64) -> Result<Ciphertext> {
        let g = self.ctx.galois_element(steps);
        if g == 1 {
            self.check_ct(ct)?;
            return Ok(ct.clone());
        }
        self.check_ct(ct)?;
        if ct.c.len() != 2 {
            return Err(HeError::NotRelinearized(ct.c.len()));
        }
        let key = self.galois_key(g, || format!("rotation by {steps}"))?;
        Ok(self.galois_one(ct, key))
    }

    /// Several rotations of one ciphertext sharing one decomposition (hoisting).
    pub fn rotate_hoisted(&self, ct: &Ciphertext, steps: &[i64]) -> Result<Vec<Ciphertext>> {
        self.check_ct(ct)?;
        if ct.c.len() != 2 {
            return Err(HeError::NotRelinearized(ct.c.len()));
        }
        let mut keys = Vec::with_capacity(steps.len());
        for &s in steps {
            let g = self.ctx.galois_element(s);
            keys.push(if g == 1 {
                None
            } else {
                Some(self.galois_key(g, || format!("rotation by {s}"))?)
            });
        }
        if keys.iter().all(Option::is_none) {
            return Ok(vec![ct.clone(); steps.len()]);
        }
        let digits = decompose(&self.ctx, &ct.c[1], ct.level);
        let work = |k: &Option<&GaloisKey>| match k {
            None => ct.clone(),
            Some(key) => self.galois_from_digits(ct, &digits, key),
        };
        use rayon::prelude::*;
        if rayon::current_num_threads() > 1 && keys.len() > 1 {
            Ok(keys.par_iter().map(work).collect())
        } else {
            Ok(keys.iter().map(work).collect())
        }
    }

    /// Complex conjugation of every slot.
    pub fn conjugate(&self, ct: &Ciphertext) -> Result<Ciphertext> {
        self.apply_galois(ct, self.ctx.conjugation_element())
    }

    /// Sums slots in blocks of `width` (a power of two): afterwards every slot holds the sum of
    /// the `width` slots starting at it (cyclically), so slot 0 of each block holds the block's
    /// sum. Needs rotation keys for 1, 2, 4, ..., width/2.
    pub fn sum_slots(&self, ct: &Ciphertext, width: usize) -> Result<Ciphertext> {
        if !width.is_power_of_two() || width > self.ctx.slots() {
            return Err(HeError::Shape(format!(
                "sum width {width} must be a power of two up to the slot count"
            )));
        }
        let mut acc = ct.clone();
        let mut s = 1;
        while s < width {
            let r = self.rotate(&acc, s as i64)?;
            self.add_assign(&mut acc, &r)?;
            s <<= 1;
        }
        Ok(acc)
    }
}

/// out = f(x, y) row by row over `primes` (x's rows; y may have more), in pooled storage.
fn binary_op(
    x: &RnsPoly,
    y: &RnsPoly,
    primes: &[&Prime],
    f: impl Fn(&Prime, u64, u64) -> u64 + Sync + Send,
) -> RnsPoly {
    let n = x.n;
    let mut out = RnsPoly::pooled(n, primes.len(), x.ntt);
    let (xd, yd) = (&x.data, &y.data);
    for_each_row_light(&mut out.data, n, primes, |i, p, row| {
        let s = i * n..(i + 1) * n;
        for ((o, &u), &v) in row.iter_mut().zip(&xd[s.clone()]).zip(&yd[s]) {
            *o = f(p, u, v);
        }
    });
    out
}
