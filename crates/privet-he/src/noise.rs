//! A plaintext model of CKKS noise: what each operation does to the error, without any
//! ciphertext. Run a circuit on [`Estimate`]s alongside (or instead of) the ciphertexts to
//! predict the precision of its result.
//!
//! The model is the usual average-case one (central limit heuristic, as in Costache, Curtis,
//! Hales, Murphy, Ogilvie and Player, "On the precision loss in approximate homomorphic
//! encryption", 2022): errors are tracked as the variance `v` of the real part of one slot's
//! error, in units of the scaled message (so the error in the real value is sqrt(v)/scale).
//! A polynomial with independent coefficients of variance s^2 has slot variance N s^2 / 2.
//! Message bounds (largest |slot value|, in real units) enter the products; the model is a
//! bound when they are. [`NoiseModel::rms_error`] is the predicted root-mean-square slot error
//! (the tests find it within a few percent of the measured one). The bound on the largest slot
//! error is `tail * sqrt(v) / scale` with `tail = (ln(2 slots) + 20 ln 2) / sqrt(2)`, a Laplace
//! tail: most error terms are products of two random polynomials (r1 s after a rescale, digit
//! times key error after a key switch), whose slot values have the heavier tails of a product of
//! Gaussians, so a Gaussian tail bound is exceeded in practice. The Laplace bound is exceeded with
//! probability about 2^-20 per ciphertext; it is 1-2 bits pessimistic for Gaussian-like errors.

use std::sync::Arc;

use crate::context::CkksContext;
use crate::keys::ERROR_VARIANCE;

/// The modelled state of one ciphertext.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Estimate {
    /// Level.
    pub level: usize,
    /// Scale.
    pub scale: f64,
    /// Bound on |slot value| in real units.
    pub message_bound: f64,
    /// Variance of one slot's error (real part), in scaled units.
    pub variance: f64,
}

/// The noise model of a parameter set.
#[derive(Debug, Clone)]
pub struct NoiseModel {
    ctx: Arc<CkksContext>,
    n: f64,
    tail: f64,
}

impl NoiseModel {
    /// The model for a context.
    pub fn new(ctx: &Arc<CkksContext>) -> Self {
        let n = ctx.degree() as f64;
        let slots = ctx.slots() as f64;
        let tail = ((2.0 * slots).ln() + 20.0 * std::f64::consts::LN_2) / std::f64::consts::SQRT_2;
        Self {
            ctx: ctx.clone(),
            n,
            tail,
        }
    }

    /// Slot variance of a polynomial with independent coefficients of variance `coeff_var`.
    fn slot_var(&self, coeff_var: f64) -> f64 {
        self.n * coeff_var / 2.0
    }

    /// Rounding of an encoding (coefficients rounded to integers).
    fn encoding_var(&self) -> f64 {
        self.slot_var(1.0 / 12.0)
    }

    /// Rounding error of dividing by a modulus: r0 + r1 s with r uniform in [-1/2, 1/2].
    fn rounding_var(&self) -> f64 {
        self.slot_var((1.0 + self.n * 2.0 / 3.0) / 12.0)
    }

    /// The error that key switching adds at `level`.
    pub fn key_switch_variance(&self, level: usize) -> f64 {
        let ctx = &self.ctx;
        let p: f64 = ctx.params().p().iter().map(|&x| x as f64).product();
        let mut sum = 0.0;
        for d in &ctx.digits[level] {
            let dj: f64 = (d.start..d.end).map(|i| ctx.q_at(i) as f64).product();
            // Centered digits: a sum of (d.end - d.start) terms uniform in (-D/2, D/2].
            let w = (d.end - d.start) as f64;
            sum += self.n * ERROR_VARIANCE as f64 * w * dj * dj / 12.0;
        }
        // The approximate conversion of the P part adds a centered integer u (the rounding of
        // a sum of alpha uniforms; variance about (alpha - 1)/4) to both components: u0 + u1 s
        // on top of the rounding's r0 + r1 s (variance 1/12 each).
        let approx = (ctx.alpha as f64 - 1.0).max(0.0);
        self.slot_var(sum / (p * p)) + self.rounding_var() * (1.0 + 3.0 * approx)
    }

    /// A fresh secret-key encryption of values bounded by `bound`.
    pub fn fresh_secret(&self, level: usize, scale: f64, bound: f64) -> Estimate {
        let v = self.slot_var(ERROR_VARIANCE as f64) + self.encoding_var();
        Estimate {
            level,
            scale,
            message_bound: bound,
            variance: v,
        }
    }

    /// A fresh public-key encryption of values bounded by `bound`.
    pub fn fresh_public(&self, level: usize, scale: f64, bound: f64) -> Estimate {
        let e = ERROR_VARIANCE as f64;
        let coeff = e + 2.0 * self.n * (2.0 / 3.0) * e;
        Estimate {
            level,
            scale,
            message_bound: bound,
            variance: self.slot_var(coeff) + self.encoding_var(),
        }
    }

    /// a + b.
    pub fn add(&self, a: &Estimate, b: &Estimate) -> Estimate {
        Estimate {
            level: a.level.min(b.level),
            scale: a.scale,
            message_bound: a.message_bound + b.message_bound,
            variance: a.variance + b.variance,
        }
    }

    /// a + plaintext or constant bounded by `bound` (encoded at a's scale).
    pub fn add_plain(&self, a: &Estimate, bound: f64) -> Estimate {
        Estimate {
            message_bound: a.message_bound + bound,
            variance: a.variance + self.encoding_var(),
            ..*a
        }
    }

    /// a * plaintext whose slots are bounded by `bound`, encoded at `pt_scale` (no rescale).
    pub fn mul_plain(&self, a: &Estimate, bound: f64, pt_scale: f64) -> Estimate {
        let p = bound * pt_scale;
        let m = a.message_bound * a.scale;
        Estimate {
            level: a.level,
            scale: a.scale * pt_scale,
            message_bound: a.message_bound * bound,
            variance: a.variance * p * p + m * m * self.encoding_var(),
        }
    }

    /// a * constant c encoded at `c_scale` (no rescale).
    pub fn mul_const(&self, a: &Estimate, c: f64, c_scale: f64) -> Estimate {
        let k = (c * c_scale).round();
        let m = a.message_bound * a.scale;
        Estimate {
            level: a.level,
            scale: a.scale * c_scale,
            message_bound: a.message_bound * c.abs(),
            variance: a.variance * k * k + m * m / 12.0,
        }
    }

    /// a * b with relinearization (no rescale).
    pub fn mul(&self, a: &Estimate, b: &Estimate) -> Estimate {
        let ma = a.message_bound * a.scale;
        let mb = b.message_bound * b.scale;
        let level = a.level.min(b.level);
        Estimate {
            level,
            scale: a.scale * b.scale,
            message_bound: a.message_bound * b.message_bound,
            variance: ma * ma * b.variance
                + mb * mb * a.variance
                + self.n * a.variance * b.variance
                + self.key_switch_variance(level),
        }
    }

    /// Rescale by q_level.
    pub fn rescale(&self, a: &Estimate) -> Estimate {
        let q = self.ctx.q_at(a.level) as f64;
        Estimate {
            level: a.level.saturating_sub(1),
            scale: a.scale / q,
            message_bound: a.message_bound,
            variance: a.variance / (q * q) + self.rounding_var(),
        }
    }

    /// A rotation or conjugation.
    pub fn rotate(&self, a: &Estimate) -> Estimate {
        Estimate {
            variance: a.variance + self.key_switch_variance(a.level),
            ..*a
        }
    }

    /// A modulus drop (exact).
    pub fn mod_drop(&self, a: &Estimate, level: usize) -> Estimate {
        Estimate { level, ..*a }
    }

    /// The predicted root-mean-square slot error, in real units.
    pub fn rms_error(&self, a: &Estimate) -> f64 {
        a.variance.sqrt() / a.scale
    }

    /// The modelled bound on the largest slot error, in real units.
    pub fn error_bound(&self, a: &Estimate) -> f64 {
        self.tail * a.variance.sqrt() / a.scale
    }

    /// Bits of precision: -log2(error bound).
    pub fn precision_bits(&self, a: &Estimate) -> f64 {
        -self.error_bound(a).log2()
    }

    /// The bound on the largest coefficient error of the decrypted polynomial (scaled units):
    /// what noise flooding must hide: `tail * sqrt(2 v / N)`, since coefficients have
    /// variance 2v/N when slots have v.
    pub fn coefficient_error_bound(&self, a: &Estimate) -> f64 {
        self.tail * (2.0 * a.variance / self.n).sqrt()
    }
}
