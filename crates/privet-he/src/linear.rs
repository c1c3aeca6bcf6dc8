//! Plaintext matrix x encrypted vector.
//!
//! [`MatrixPlan`] is the diagonal method (Halevi and Shoup) with baby-step giant-step rotations
//! and hoisting, generalised to rectangular matrices: with the input of width `cols` replicated
//! with period ip = next_pow2(cols) over all slots and op = next_pow2(rows), d = max(ip, op)
//! and m = min(ip, op), the "diagonals" diag_i[j] = M[j mod op][(j + i) mod ip] (j < d, zero
//! outside M) give t = sum_{i < m} diag_i * rot_i(x); when ip > op the blocks of op slots of t
//! are folded with log2(ip / op) rotations. The result holds M x replicated with period op, so
//! layers chain. The sum over i is split as sum_k rot_{kb}(sum_j rot_{-kb}(diag_{kb+j}) *
//! rot_j(x)): b - 1 hoisted baby rotations of x and g - 1 giant rotations.
//!
//! [`batch_linear`] is the other packing: one ciphertext per input feature, each holding that
//! feature for many samples, so a layer is only constant products and additions.

use crate::cipher::Ciphertext;
use crate::encoding::{Encoder, Plaintext};
use crate::error::{HeError, Result};
use crate::evaluator::Evaluator;

/// A prepared plaintext matrix (diagonals encoded at one level with the exact scale q_level).
#[derive(Debug, Clone)]
pub struct MatrixPlan {
    rows: usize,
    cols: usize,
    in_period: usize,
    out_period: usize,
    baby: usize,
    giant: usize,
    /// Pre-rotated diagonals, index k * baby + j; None where all zero.
    diags: Vec<Option<Plaintext>>,
    bias: Option<Vec<f64>>,
    level: usize,
}

/// Smallest power of two at least x.
fn pow2(x: usize) -> usize {
    x.max(1).next_power_of_two()
}

impl MatrixPlan {
    /// Prepares `matrix` (row-major, rows x cols) and an optional bias, for inputs at `level`.
    pub fn new(
        ev: &Evaluator,
        matrix: &[f64],
        rows: usize,
        cols: usize,
        bias: Option<&[f64]>,
        level: usize,
    ) -> Result<Self> {
        let ctx = ev.context();
        let slots = ctx.slots();
        if rows == 0 || cols == 0 || matrix.len() != rows * cols {
            return Err(HeError::Shape(format!(
                "matrix of {} values is not {rows} x {cols}",
                matrix.len()
            )));
        }
        if let Some(b) = bias
            && b.len() != rows
        {
            return Err(HeError::Shape(format!(
                "bias of {} values for {rows} rows",
                b.len()
            )));
        }
        if matrix
            .iter()
            .chain(bias.unwrap_or(&[]))
            .any(|v| !v.is_finite())
        {
            return Err(HeError::ValueOutOfRange(
                "matrix or bias is not finite".into(),
            ));
        }
        if level == 0 {
            return Err(HeError::OutOfLevels(0));
        }
        ctx.check_level(level)?;
        let (ip, op) = (pow2(cols), pow2(rows));
        let d = ip.max(op);
        if d > slots {
            return Err(HeError::Shape(format!(
                "{rows} x {cols} needs {d} slots, {slots} available"
            )));
        }
        let m = ip.min(op);
        let baby = 1usize << (m.trailing_zeros().div_ceil(2));
        let giant = m.div_ceil(baby);
        let enc = Encoder::new(ctx);
        let scale = ev.exact_scale(level);
        let mut diags = Vec::with_capacity(m);
        for i in 0..m {
            let diag: Vec<f64> = (0..d)
                .map(|j| {
                    let (r, c) = (j % op, (j + i) % ip);
                    if r < rows && c < cols {
                        matrix[r * cols + c]
                    } else {
                        0.0
                    }
                })
                .collect();
            if diag.iter().all(|&v| v == 0.0) {
                diags.push(None);
                continue;
            }
            let shift = (i / baby) * baby;
            let v: Vec<f64> = (0..slots).map(|s| diag[(s + d - shift % d) % d]).collect();
            diags.push(Some(enc.encode(&v, level, scale)?));
        }
        Ok(Self {
            rows,
            cols,
            in_period: ip,
            out_period: op,
            baby,
            giant,
            diags,
            bias: bias.map(<[f64]>::to_vec),
            level,
        })
    }

    /// Rows (outputs).
    pub fn rows(&self) -> usize {
        self.rows
    }
    /// Columns (inputs).
    pub fn cols(&self) -> usize {
        self.cols
    }
    /// Period with which the input must be replicated over the slots.
    pub fn input_period(&self) -> usize {
        self.in_period
    }
    /// Period with which the output is replicated.
    pub fn output_period(&self) -> usize {
        self.out_period
    }
    /// Level the input must be at.
    pub fn level(&self) -> usize {
        self.level
    }

    /// The rotation steps whose Galois keys `apply` needs.
    pub fn rotations(&self) -> Vec<i64> {
        let mut r: Vec<i64> = (1..self.baby).map(|j| j as i64).collect();
        r.extend((1..self.giant).map(|k| (k * self.baby) as i64));
        let mut s = self.out_period;
        while s < self.in_period {
            r.push(s as i64);
            s <<= 1;
        }
        r.sort_unstable();
        r.dedup();
        r
    }

    /// M x (+ bias): the input at the plan's level (or above), replicated with the input
    /// period; the output one level lower at the input's scale, replicated with the output
    /// period.
    pub fn apply(&self, ev: &Evaluator, x: &Ciphertext) -> Result<Ciphertext> {
        if x.level() < self.level {
            return Err(HeError::LevelMismatch {
                left: x.level(),
                right: self.level,
            });
        }
        let x = ev.mod_drop_to(x, self.level)?;
        let steps: Vec<i64> = (0..self.baby).map(|j| j as i64).collect();
        let rotated = ev.rotate_hoisted(&x, &steps)?;
        let mut total: Option<Ciphertext> = None;
        for k in 0..self.giant {
            let mut inner: Option<Ciphertext> = None;
            for (j, xr) in rotated.iter().enumerate() {
                let idx = k * self.baby + j;
                let Some(Some(pt)) = self.diags.get(idx) else {
                    continue;
                };
                let t = ev.mul_plain(xr, pt)?;
                match inner.as_mut() {
                    None => inner = Some(t),
                    Some(a) => ev.add_assign(a, &t)?,
                }
            }
            let Some(inner) = inner else { continue };
            let inner = if k == 0 {
                inner
            } else {
                ev.rotate(&inner, (k * self.baby) as i64)?
            };
            match total.as_mut() {
                None => total = Some(inner),
                Some(a) => ev.add_assign(a, &inner)?,
            }
        }
        let mut t = match total {
            Some(t) => t,
            // An all-zero matrix: x * 0.
            None => ev.mul_const(&x, 0.0, ev.exact_scale(self.level))?,
        };
        let mut s = self.out_period;
        while s < self.in_period {
            let r = ev.rotate(&t, s as i64)?;
            ev.add_assign(&mut t, &r)?;
            s <<= 1;
        }
        let mut out = ev.rescale(&t)?;
        out.set_scale(x.scale());
        if let Some(b) = &self.bias {
            out = add_periodic(ev, &out, b, self.out_period)?;
        }
        Ok(out)
    }
}

/// ct + v replicated with `period` over all slots (encoded at the ciphertext's scale).
pub fn add_periodic(
    ev: &Evaluator,
    ct: &Ciphertext,
    v: &[f64],
    period: usize,
) -> Result<Ciphertext> {
    let slots = ev.context().slots();
    let full: Vec<f64> = (0..slots)
        .map(|s| v.get(s % period).copied().unwrap_or(0.0))
        .collect();
    let pt = Encoder::new(ev.context()).encode(&full, ct.level(), ct.scale())?;
    ev.add_plain(ct, &pt)
}

/// Replicates `x` with period next_pow2(len) over `slots` slots (the input layout of
/// [`MatrixPlan::apply`]).
pub fn replicate(x: &[f64], slots: usize) -> Result<Vec<f64>> {
    let p = pow2(x.len());
    if p > slots {
        return Err(HeError::TooManyValues {
            given: x.len(),
            slots,
        });
    }
    Ok((0..slots)
        .map(|s| x.get(s % p).copied().unwrap_or(0.0))
        .collect())
}

/// The batch packing's layer: out_r = sum_c W[r][c] x_c + bias_r for ciphertexts x_c holding
/// feature c of many samples each. Constants are encoded at q_level so the output keeps the
/// input scale exactly, one level lower.
pub fn batch_linear(
    ev: &Evaluator,
    inputs: &[Ciphertext],
    matrix: &[f64],
    rows: usize,
    bias: Option<&[f64]>,
) -> Result<Vec<Ciphertext>> {
    let cols = inputs.len();
    if cols == 0 || matrix.len() != rows * cols {
        return Err(HeError::Shape(format!(
            "matrix of {} values is not {rows} x {cols}",
            matrix.len()
        )));
    }
    let level = inputs.iter().map(Ciphertext::level).min().unwrap_or(0);
    if level == 0 {
        return Err(HeError::OutOfLevels(0));
    }
    let scale = inputs[0].scale();
    let inputs: Vec<Ciphertext> = inputs
        .iter()
        .map(|c| ev.mod_drop_to(c, level))
        .collect::<Result<_>>()?;
    let q = ev.exact_scale(level);
    let row = |r: usize| -> Result<Ciphertext> {
        let mut acc: Option<Ciphertext> = None;
        for (c, x) in inputs.iter().enumerate() {
            let w = matrix[r * cols + c];
            if w == 0.0 {
                continue;
            }
            let mut t = ev.mul_const(x, w, q)?;
            t.set_scale(scale * q);
            match acc.as_mut() {
                None => acc = Some(t),
                Some(a) => ev.add_assign(a, &t)?,
            }
        }
        let acc = match acc {
            Some(a) => a,
            None => {
                let mut z = ev.mul_const(&inputs[0], 0.0, q)?;
                z.set_scale(scale * q);
                z
            }
        };
        let mut out = ev.rescale(&acc)?;
        out.set_scale(scale);
        match bias {
            Some(b) => ev.add_const(&out, b[r]),
            None => Ok(out),
        }
    };
    if let Some(b) = bias
        && b.len() != rows
    {
        return Err(HeError::Shape(format!(
            "bias of {} values for {rows} rows",
            b.len()
        )));
    }
    use rayon::prelude::*;
    if rayon::current_num_threads() > 1 && rows > 1 {
        (0..rows).into_par_iter().map(row).collect()
    } else {
        (0..rows).map(row).collect()
    }
}
