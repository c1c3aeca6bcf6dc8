//! The canonical-embedding encoder: N/2 complex slots <-> a real polynomial of degree < N.
//!
//! Slot j holds the value of the plaintext polynomial m at zeta^(5^j), zeta = exp(i pi / N), so
//! the automorphism X -> X^(5^k) rotates the slots left by k and X -> X^(2N-1) conjugates them.
//! Writing u_k = m_k + i m_(k+N/2) (k < N/2), m(zeta^(5^j)) = sum_k u_k zeta^k w^(t k) with
//! w = exp(2 pi i / (N/2)) and 4t + 1 = 5^j mod 2N (because zeta^(N/2) = i and 5^j = 1 mod 4).
//! Decoding is therefore a twist by zeta^k, one complex FFT of size N/2 and a permutation;
//! encoding is the inverse. Values are multiplied by the scale and rounded to integers, which are
//! reduced modulo each prime and moved to the NTT domain.

use std::sync::Arc;

use crate::context::CkksContext;
use crate::error::{HeError, Result};
use crate::ring::{RnsPoly, bit_reverse};

/// A complex number (the slots of CKKS are complex).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Complex {
    /// Real part.
    pub re: f64,
    /// Imaginary part.
    pub im: f64,
}

impl Complex {
    /// re + i im.
    pub const fn new(re: f64, im: f64) -> Self {
        Self { re, im }
    }
    #[inline(always)]
    fn mul(self, o: Complex) -> Complex {
        Complex::new(
            self.re * o.re - self.im * o.im,
            self.re * o.im + self.im * o.re,
        )
    }
    #[inline(always)]
    fn add(self, o: Complex) -> Complex {
        Complex::new(self.re + o.re, self.im + o.im)
    }
    #[inline(always)]
    fn sub(self, o: Complex) -> Complex {
        Complex::new(self.re - o.re, self.im - o.im)
    }
    fn conj(self) -> Complex {
        Complex::new(self.re, -self.im)
    }
    fn cis(theta: f64) -> Complex {
        Complex::new(theta.cos(), theta.sin())
    }
}

/// FFT tables for N/2 slots.
#[derive(Debug)]
pub(crate) struct FftTables {
    slots: usize,
    /// zeta^k, k < N/2.
    twist: Vec<Complex>,
    /// w^j = exp(2 pi i j / slots), j < slots/2.
    roots: Vec<Complex>,
    /// Bit reversal of log2(slots) bits.
    bitrev: Vec<u32>,
    /// slot j <-> FFT output t(j).
    slot_to_fft: Vec<u32>,
}

impl FftTables {
    pub(crate) fn new(n: usize) -> Self {
        let slots = n / 2;
        let two_n = 2 * n;
        let twist = (0..slots)
            .map(|k| Complex::cis(std::f64::consts::PI * k as f64 / n as f64))
            .collect();
        let roots = (0..slots / 2)
            .map(|j| Complex::cis(2.0 * std::f64::consts::PI * j as f64 / slots as f64))
            .collect();
        let log_slots = slots.trailing_zeros();
        let bitrev = (0..slots)
            .map(|j| bit_reverse(j, log_slots) as u32)
            .collect();
        let mut slot_to_fft = Vec::with_capacity(slots);
        let mut g = 1usize;
        for _ in 0..slots {
            slot_to_fft.push(((g - 1) / 4) as u32);
            g = g * 5 % two_n;
        }
        Self {
            slots,
            twist,
            roots,
            bitrev,
            slot_to_fft,
        }
    }

    /// In-place radix-2 FFT: a_t <- sum_k a_k w^(+-t k).
    fn fft(&self, a: &mut [Complex], inverse: bool) {
        let n = self.slots;
        for i in 0..n {
            let j = self.bitrev[i] as usize;
            if i < j {
                a.swap(i, j);
            }
        }
        let mut len = 2;
        while len <= n {
            let half = len / 2;
            let step = n / len;
            for start in (0..n).step_by(len) {
                for j in 0..half {
                    let w = self.roots[j * step];
                    let w = if inverse { w.conj() } else { w };
                    let u = a[start + j];
                    let v = a[start + j + half].mul(w);
                    a[start + j] = u.add(v);
                    a[start + j + half] = u.sub(v);
                }
            }
            len <<= 1;
        }
    }

    /// Slots -> real coefficients (not yet scaled): the inverse canonical embedding.
    pub(crate) fn slots_to_coeffs(&self, values: &[Complex]) -> Vec<f64> {
        let n = self.slots;
        let mut a = vec![Complex::default(); n];
        for (j, v) in values.iter().enumerate() {
            a[self.slot_to_fft[j] as usize] = *v;
        }
        self.fft(&mut a, true);
        let inv_n = 1.0 / n as f64;
        let mut out = vec![0f64; 2 * n];
        for k in 0..n {
            let u = a[k].mul(self.twist[k].conj());
            out[k] = u.re * inv_n;
            out[k + n] = u.im * inv_n;
        }
        out
    }

    /// Real coefficients -> slots: the canonical embedding.
    pub(crate) fn coeffs_to_slots(&self, coeffs: &[f64]) -> Vec<Complex> {
        let n = self.slots;
        let mut a: Vec<Complex> = (0..n)
            .map(|k| Complex::new(coeffs[k], coeffs[k + n]).mul(self.twist[k]))
            .collect();
        self.fft(&mut a, false);
        (0..n).map(|j| a[self.slot_to_fft[j] as usize]).collect()
    }
}

/// An encoded plaintext: a polynomial in NTT form at some level, with its scale.
#[derive(Clone, PartialEq)]
pub struct Plaintext {
    pub(crate) poly: RnsPoly,
    pub(crate) level: usize,
    pub(crate) scale: f64,
    pub(crate) ctx_id: [u8; 16],
}

impl std::fmt::Debug for Plaintext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plaintext")
            .field("level", &self.level)
            .field("log2_scale", &self.scale.log2())
            .finish_non_exhaustive()
    }
}

impl Plaintext {
    /// Level (primes q_0..q_level).
    pub fn level(&self) -> usize {
        self.level
    }
    /// Scale.
    pub fn scale(&self) -> f64 {
        self.scale
    }
}

/// Encodes vectors of reals or complex numbers into plaintexts and back.
#[derive(Debug, Clone)]
pub struct Encoder {
    ctx: Arc<CkksContext>,
}

impl Encoder {
    /// An encoder for a context.
    pub fn new(ctx: &Arc<CkksContext>) -> Self {
        Self { ctx: ctx.clone() }
    }

    /// Encodes real values into the first slots (the rest are zero) at `level` and `scale`.
    pub fn encode(&self, values: &[f64], level: usize, scale: f64) -> Result<Plaintext> {
        let c: Vec<Complex> = values.iter().map(|&v| Complex::new(v, 0.0)).collect();
        self.encode_complex(&c, level, scale)
    }

    /// Encodes complex values.
    pub fn encode_complex(
        &self,
        values: &[Complex],
        level: usize,
        scale: f64,
    ) -> Result<Plaintext> {
        let ctx = &self.ctx;
        ctx.check_level(level)?;
        if values.len() > ctx.slots() {
            return Err(HeError::TooManyValues {
                given: values.len(),
                slots: ctx.slots(),
            });
        }
        if !(scale.is_finite() && scale >= 1.0) {
            return Err(HeError::ValueOutOfRange(format!("scale {scale}")));
        }
        if let Some(v) = values
            .iter()
            .find(|v| !(v.re.is_finite() && v.im.is_finite()))
        {
            return Err(HeError::ValueOutOfRange(format!("{v:?} is not finite")));
        }
        let coeffs = ctx.fft.slots_to_coeffs(values);
        let poly = coeffs_to_poly(ctx, &coeffs, scale, level)?;
        Ok(Plaintext {
            poly,
            level,
            scale,
            ctx_id: ctx.id,
        })
    }

    /// Decodes the real parts of all slots.
    pub fn decode(&self, pt: &Plaintext) -> Result<Vec<f64>> {
        Ok(self.decode_complex(pt)?.into_iter().map(|c| c.re).collect())
    }

    /// Decodes all slots.
    pub fn decode_complex(&self, pt: &Plaintext) -> Result<Vec<Complex>> {
        if pt.ctx_id != self.ctx.id {
            return Err(HeError::ParameterMismatch);
        }
        let mut poly = pt.poly.clone();
        poly.coeff_in_place(&self.ctx.q_primes(pt.level));
        let coeffs = poly_to_f64(&self.ctx, &poly, pt.level, pt.scale);
        Ok(self.ctx.fft.coeffs_to_slots(&coeffs))
    }
}

/// Rounds scaled coefficients to integers and reduces them modulo q_0..q_level, in NTT form.
pub(crate) fn coeffs_to_poly(
    ctx: &CkksContext,
    coeffs: &[f64],
    scale: f64,
    level: usize,
) -> Result<RnsPoly> {
    let n = ctx.n;
    let primes = ctx.q_primes(level);
    let mut poly = RnsPoly::zero(n, level + 1, false);
    let max = coeffs.iter().fold(0f64, |m, &c| m.max((c * scale).abs()));
    if !max.is_finite() {
        return Err(HeError::ValueOutOfRange(
            "scaled value is not finite".into(),
        ));
    }
    // The value must be representable modulo Q_level (and leave room for noise).
    let log_q: f64 = primes.iter().map(|p| (p.q as f64).log2()).sum();
    if max >= 1.0 && max.log2() >= log_q - 1.0 {
        return Err(HeError::ValueOutOfRange(format!(
            "a scaled coefficient of 2^{:.1} does not fit the modulus of 2^{log_q:.1} at level {level}",
            max.log2()
        )));
    }
    if max < 9.0e18 {
        let ints: Vec<i64> = coeffs.iter().map(|&c| (c * scale).round() as i64).collect();
        crate::ring::for_each_row(&mut poly.data, n, &primes, |_, p, r| {
            for (o, &x) in r.iter_mut().zip(&ints) {
                *o = p.reduce_i64(x);
            }
        });
    } else if max < 1.0e38 {
        let ints: Vec<i128> = coeffs
            .iter()
            .map(|&c| (c * scale).round() as i128)
            .collect();
        crate::ring::for_each_row(&mut poly.data, n, &primes, |_, p, r| {
            for (o, &x) in r.iter_mut().zip(&ints) {
                *o = p.reduce_i128(x);
            }
        });
    } else {
        return Err(HeError::ValueOutOfRange(format!(
            "scaled coefficient 2^{:.1} exceeds 2^126",
            max.log2()
        )));
    }
    poly.ntt_in_place(&primes);
    Ok(poly)
}

/// Centered lift of a coefficient-form polynomial modulo Q_level to f64, divided by `scale`.
/// Exact mixed-radix conversion, then one rounding to f64.
pub(crate) fn poly_to_f64(ctx: &CkksContext, poly: &RnsPoly, level: usize, scale: f64) -> Vec<f64> {
    debug_assert!(!poly.ntt);
    let n = ctx.n;
    let primes = &ctx.primes[..=level];
    let inv_scale = 1.0 / scale;
    let mut out = vec![0f64; n];
    if level == 0 {
        let q = primes[0].q;
        let half = q >> 1;
        for (o, &x) in out.iter_mut().zip(poly.row(0)) {
            *o = if x > half {
                -((q - x) as f64)
            } else {
                x as f64
            } * inv_scale;
        }
        return out;
    }
    let rows = level + 1;
    let mut digits = vec![0u64; rows];
    let mut neg = vec![0u64; rows];
    for (k, o) in out.iter_mut().enumerate() {
        for (i, d) in neg.iter_mut().enumerate() {
            *d = poly.data[i * n + k];
        }
        mixed_radix(ctx, primes, &neg, &mut digits);
        // Compare with (Q-1)/2, whose mixed-radix digits are (q_i - 1)/2.
        let mut negative = false;
        for i in (0..rows).rev() {
            let h = primes[i].q >> 1;
            if digits[i] != h {
                negative = digits[i] > h;
                break;
            }
        }
        if negative {
            for (i, d) in neg.iter_mut().enumerate() {
                *d = primes[i].neg(poly.data[i * n + k]);
            }
            mixed_radix(ctx, primes, &neg, &mut digits);
        }
        let mut v = 0f64;
        for i in (0..rows).rev() {
            v += digits[i] as f64 * ctx.mrc_weight[i];
        }
        *o = if negative { -v } else { v } * inv_scale;
    }
    out
}

fn mixed_radix(ctx: &CkksContext, primes: &[crate::ring::Prime], x: &[u64], v: &mut [u64]) {
    for i in 0..x.len() {
        let p = &primes[i];
        let mut t = x[i];
        for j in 0..i {
            t = p.mul_shoup(p.sub(t, p.reduce(v[j])), ctx.mrc_inv[i][j]);
        }
        v[i] = t;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::params::{CkksParameters, Hazmat};

    fn ctx(log_n: u32) -> Arc<CkksContext> {
        let p = CkksParameters::hazmat_unchecked(
            log_n,
            &[50, 40, 40],
            &[50],
            30,
            Hazmat::InsecureForTestingOnly,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        CkksContext::new(p).unwrap_or_else(|e| panic!("{e}"))
    }

    /// Evaluates m at zeta^(5^j) directly.
    fn naive_embedding(coeffs: &[f64]) -> Vec<Complex> {
        let n = coeffs.len();
        let two_n = 2 * n;
        let mut out = Vec::new();
        let mut g = 1usize;
        for _ in 0..n / 2 {
            let mut acc = Complex::default();
            for (k, &c) in coeffs.iter().enumerate() {
                let e = (g * k) % two_n;
                let z = Complex::cis(std::f64::consts::PI * e as f64 / n as f64);
                acc = acc.add(Complex::new(c * z.re, c * z.im));
            }
            out.push(acc);
            g = g * 5 % two_n;
        }
        out
    }

    #[test]
    fn fft_matches_the_definition_of_the_embedding() {
        let t = FftTables::new(32);
        let coeffs: Vec<f64> = (0..32).map(|i| ((i * 7919) % 13) as f64 - 6.0).collect();
        let fast = t.coeffs_to_slots(&coeffs);
        let slow = naive_embedding(&coeffs);
        for (a, b) in fast.iter().zip(&slow) {
            assert!(
                (a.re - b.re).abs() < 1e-9 && (a.im - b.im).abs() < 1e-9,
                "{a:?} vs {b:?}"
            );
        }
        let back = t.slots_to_coeffs(&fast);
        for (a, b) in back.iter().zip(&coeffs) {
            assert!((a - b).abs() < 1e-9);
        }
    }

    #[test]
    fn encode_decode_round_trip_at_every_level() {
        let c = ctx(10);
        let enc = Encoder::new(&c);
        let vals: Vec<f64> = (0..c.slots())
            .map(|i| ((i as f64) * 0.37).sin() * 100.0)
            .collect();
        for level in 0..=c.max_level() {
            for scale in [2f64.powi(30), 2f64.powi(70)] {
                if level == 0 && scale > 2f64.powi(40) {
                    continue;
                }
                let pt = enc
                    .encode(&vals, level, scale)
                    .unwrap_or_else(|e| panic!("{e}"));
                let out = enc.decode(&pt).unwrap_or_else(|e| panic!("{e}"));
                let err = vals
                    .iter()
                    .zip(&out)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0f64, f64::max);
                assert!(
                    err < 1e-6,
                    "level {level} scale 2^{}: err {err}",
                    scale.log2()
                );
            }
        }
        let neg: Vec<f64> = vals.iter().map(|v| -v).collect();
        let pt = enc
            .encode(&neg, 2, 2f64.powi(60))
            .unwrap_or_else(|e| panic!("{e}"));
        let out = enc.decode(&pt).unwrap_or_else(|e| panic!("{e}"));
        assert!(neg.iter().zip(&out).all(|(a, b)| (a - b).abs() < 1e-9));
    }

    #[test]
    fn encoding_refuses_what_does_not_fit() {
        let c = ctx(10);
        let enc = Encoder::new(&c);
        assert!(matches!(
            enc.encode(&vec![1.0; 513], 0, 1e9),
            Err(HeError::TooManyValues { .. })
        ));
        assert!(matches!(
            enc.encode(&[f64::NAN], 0, 1e9),
            Err(HeError::ValueOutOfRange(_))
        ));
        assert!(matches!(
            enc.encode(&[1e6], 0, 2f64.powi(45)),
            Err(HeError::ValueOutOfRange(_))
        ));
        assert!(matches!(
            enc.encode(&[1.0], 9, 1e9),
            Err(HeError::OutOfLevels(9))
        ));
    }
}
