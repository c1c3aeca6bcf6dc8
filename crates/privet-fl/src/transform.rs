//! Transforms on updates: client-side before an update leaves the client (clipping, later local
//! DP noise), and server-side on the aggregate sum (later central DP noise).

use crate::{ClientId, FlError, WeightedSum};

/// A transform applied on the client to its delta before it is sent.
pub trait UpdateTransform: Send + Sync + std::fmt::Debug {
    /// Transforms `delta` in place.
    fn apply(&self, round: u32, client: ClientId, delta: &mut [f32]) -> Result<(), FlError>;
}

/// A transform applied by the coordinator to the weighted sum before a
/// [`Requirement::Sum`](crate::Requirement::Sum) strategy aggregates it.
pub trait AggregateTransform: Send + std::fmt::Debug {
    /// Transforms `sum` in place.
    fn apply(&mut self, round: u32, sum: &mut WeightedSum) -> Result<(), FlError>;
}

/// Scales a delta so that its L2 norm is at most `max_norm` (`delta * min(1, C / ||delta||)`).
///
/// The bound holds after rounding to `f32`: the norm of the result, computed in `f64`, never
/// exceeds `max_norm`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ClipL2 {
    /// Clipping bound `C > 0`.
    pub max_norm: f32,
}

/// L2 norm of `v`, accumulated in `f64`.
pub fn l2_norm(v: &[f32]) -> f64 {
    v.iter()
        .map(|&x| f64::from(x) * f64::from(x))
        .sum::<f64>()
        .sqrt()
}

impl UpdateTransform for ClipL2 {
    fn apply(&self, _round: u32, client: ClientId, delta: &mut [f32]) -> Result<(), FlError> {
        if !(self.max_norm.is_finite() && self.max_norm > 0.0) {
            return Err(FlError::InvalidConfig(format!(
                "clipping bound must be finite and > 0, got {}",
                self.max_norm
            )));
        }
        if delta.iter().any(|x| !x.is_finite()) {
            return Err(FlError::NonFinite { client });
        }
        let bound = f64::from(self.max_norm);
        let norm = l2_norm(delta);
        if norm <= bound {
            return Ok(());
        }
        scale(delta, bound / norm);
        // Rounding to f32 can leave the norm a hair above the bound: shrink by a few ulps until
        // it holds (one step in practice).
        for _ in 0..16 {
            if l2_norm(delta) <= bound {
                break;
            }
            scale(delta, 1.0 - 1e-6);
        }
        Ok(())
    }
}

fn scale(v: &mut [f32], factor: f64) {
    for x in v {
        *x = (f64::from(*x) * factor) as f32;
    }
}
