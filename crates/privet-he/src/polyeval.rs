//! Polynomial evaluation by baby steps and giant steps (Paterson-Stockmeyer style) in the
//! power basis.
//!
//! p(x) = sum c_i x^i of degree d < 2^k is cut at the giant powers G_i = x^(b 2^i) (b a power
//! of two): p = low + G * high, recursively, down to "baby" polynomials of degree below b,
//! which are constant combinations of x, ..., x^(b-1). Up to degree 15 b = 2, which gives the
//! optimal depth ceil(log2(d + 1)); above, b = 2^ceil(k/2) saves products at one more level
//! (see [`polynomial_depth`]). Scales are fixed top-down: each
//! constant is encoded at the scale that makes its term land exactly on the scale its sum
//! needs after the rescale (as Lattigo does), so every addition is between equal scales.

use crate::cipher::Ciphertext;
use crate::error::{HeError, Result};
use crate::evaluator::Evaluator;

/// k = ceil(log2(d + 1)) and the baby-step size b for degree d.
fn plan(d: usize) -> (usize, usize) {
    let k = (usize::BITS - d.leading_zeros()) as usize;
    let b = if k <= 4 { 2 } else { 1usize << k.div_ceil(2) };
    (k, b)
}

/// The depth (levels consumed) of evaluating a polynomial of degree `d`: ceil(log2(d + 1)) up
/// to degree 15, one more above.
pub fn polynomial_depth(d: usize) -> usize {
    if d == 0 {
        return 0;
    }
    let (k, b) = plan(d);
    let m = k - b.trailing_zeros() as usize;
    if m == 0 {
        // Only baby steps: the highest power plus the constant product.
        (usize::BITS - (d - 1).leading_zeros()) as usize + 1
    } else {
        (usize::BITS - (b - 2).leading_zeros()) as usize + 1 + m
    }
}

enum Term {
    Const(f64),
    Ct(Ciphertext),
}

struct Powers {
    /// baby[j] = x^j for j in 1..b (index 0 unused).
    baby: Vec<Option<Ciphertext>>,
    /// giant[i] = x^(b 2^i).
    giant: Vec<Ciphertext>,
    b: usize,
}

fn product(ev: &Evaluator, a: &Ciphertext, c: &Ciphertext) -> Result<Ciphertext> {
    let (a, c) = ev.align(a, c)?;
    ev.rescale(&ev.mul(&a, &c)?)
}

/// Evaluates `coeffs[0] + coeffs[1] x + ...` on every slot of `x`. The result has scale
/// `target_scale` exactly and level `x.level() - polynomial_depth(d)`.
pub fn evaluate_polynomial(
    ev: &Evaluator,
    x: &Ciphertext,
    coeffs: &[f64],
    target_scale: f64,
) -> Result<Ciphertext> {
    let mut d = coeffs.len();
    while d > 0 && coeffs[d - 1] == 0.0 {
        d -= 1;
    }
    if d <= 1 {
        return Err(HeError::Shape(
            "the polynomial must have degree at least 1".into(),
        ));
    }
    if let Some(c) = coeffs.iter().find(|c| !c.is_finite()) {
        return Err(HeError::ValueOutOfRange(format!("coefficient {c}")));
    }
    let coeffs = &coeffs[..d];
    let degree = d - 1;
    let depth = polynomial_depth(degree);
    if x.level() < depth {
        return Err(HeError::OutOfLevels(x.level()));
    }
    let (k, b) = plan(degree);
    let m = k - b.trailing_zeros() as usize;
    let mut baby: Vec<Option<Ciphertext>> = vec![None; b];
    baby[1] = Some(x.clone());
    for j in 2usize..b.min(degree + 1) {
        let hi = 1usize << (usize::BITS - 1 - j.leading_zeros());
        let next = if hi == j {
            let h = baby[j / 2]
                .as_ref()
                .ok_or_else(|| HeError::Shape("power".into()))?;
            product(ev, h, h)?
        } else {
            let a = baby[hi]
                .as_ref()
                .ok_or_else(|| HeError::Shape("power".into()))?;
            let c = baby[j - hi]
                .as_ref()
                .ok_or_else(|| HeError::Shape("power".into()))?;
            product(ev, a, c)?
        };
        baby[j] = Some(next);
    }
    let mut giant = Vec::with_capacity(m);
    if m > 0 {
        let half = baby[b / 2]
            .as_ref()
            .ok_or_else(|| HeError::Shape("power".into()))?;
        giant.push(product(ev, half, half)?);
        for i in 1..m {
            let g = &giant[i - 1];
            giant.push(product(ev, g, g)?);
        }
    }
    let powers = Powers { baby, giant, b };
    let target_level = x.level() - depth;
    match eval(ev, &powers, coeffs, target_level, target_scale)? {
        Term::Ct(ct) => Ok(ct),
        Term::Const(_) => Err(HeError::Shape("polynomial reduced to a constant".into())),
    }
}

fn eval(ev: &Evaluator, pw: &Powers, coeffs: &[f64], level: usize, scale: f64) -> Result<Term> {
    if coeffs.len() <= pw.b {
        return baby(ev, pw, coeffs, level, scale);
    }
    // Smallest i with len <= b 2^(i+1): split at b 2^i with G = giant[i].
    let mut i = 0;
    while pw.b << (i + 1) < coeffs.len() {
        i += 1;
    }
    let half = pw.b << i;
    let (low, high) = coeffs.split_at(half);
    let g = &pw.giant[i];
    let q = ev.exact_scale(level + 1);
    let high_scale = scale * q / g.scale();
    let g_at = ev.mod_drop_to(g, level + 1)?;
    let prod = if high.iter().all(|&c| c == 0.0) {
        None
    } else {
        let mut p = match eval(ev, pw, high, level + 1, high_scale)? {
            Term::Const(c) => ev.mul_const(&g_at, c, high_scale)?,
            Term::Ct(h) => ev.mul(&g_at, &ev.mod_drop_to(&h, level + 1)?)?,
        };
        p.set_scale(scale * q);
        Some(ev.rescale(&p)?)
    };
    let low = eval(ev, pw, low, level, scale)?;
    Ok(match (prod, low) {
        (None, low) => low,
        (Some(mut p), Term::Const(c)) => {
            p.set_scale(scale);
            Term::Ct(if c == 0.0 { p } else { ev.add_const(&p, c)? })
        }
        (Some(mut p), Term::Ct(l)) => {
            p.set_scale(scale);
            let l = ev.mod_drop_to(&l, p.level().min(l.level()))?;
            let p = ev.mod_drop_to(&p, l.level())?;
            let mut l = l;
            l.set_scale(scale);
            Term::Ct(ev.add(&p, &l)?)
        }
    })
}

/// c_0 + sum_{j >= 1} c_j x^j with all terms landing at (level, scale).
fn baby(ev: &Evaluator, pw: &Powers, coeffs: &[f64], level: usize, scale: f64) -> Result<Term> {
    let q = ev.exact_scale(level + 1);
    let mut acc: Option<Ciphertext> = None;
    for (j, &c) in coeffs.iter().enumerate().skip(1) {
        if c == 0.0 {
            continue;
        }
        let xj = pw.baby[j]
            .as_ref()
            .ok_or_else(|| HeError::Shape("missing power".into()))?;
        let xj = ev.mod_drop_to(xj, level + 1)?;
        let mut t = ev.mul_const(&xj, c, scale * q / xj.scale())?;
        t.set_scale(scale * q);
        acc = Some(match acc {
            None => t,
            Some(a) => ev.add(&a, &t)?,
        });
    }
    let c0 = coeffs.first().copied().unwrap_or(0.0);
    match acc {
        None => Ok(Term::Const(c0)),
        Some(a) => {
            let mut r = ev.rescale(&a)?;
            r.set_scale(scale);
            Ok(Term::Ct(if c0 == 0.0 { r } else { ev.add_const(&r, c0)? }))
        }
    }
}
