//! Adaptive federated optimisation: FedAdam, FedYogi, FedAdagrad.
//!
//! Reddi et al. 2021, "Adaptive Federated Optimization" (ICLR), Algorithm 2, applied to the
//! example-weighted mean delta `Δ_t` (weighted as in Flower, so it runs on a secure-aggregation sum):
//!
//! ```text
//! m_t = β1 m_{t-1} + (1 - β1) Δ_t
//! v_t = v_{t-1} + Δ_t²                                   (Adagrad)
//! v_t = v_{t-1} - (1 - β2) Δ_t² sign(v_{t-1} - Δ_t²)     (Yogi)
//! v_t = β2 v_{t-1} + (1 - β2) Δ_t²                       (Adam)
//! x_{t+1} = x_t + η m_t / (sqrt(v_t) + τ)
//! ```
//!
//! Choices, checked against Flower's `flwr/server/strategy/fed{adam,yogi,adagrad}.py`:
//! - `m` and `v` start at **zero**, as in Flower (the paper initialises `v_{-1} >= τ²`; with
//!   `τ > 0` required here, zero is safe: `m/(sqrt(0)+τ)` is finite). `sign(0) = 0` as in numpy.
//! - **No bias correction**, as in the paper's Algorithm 2 and Flower's FedYogi/FedAdagrad.
//!   (Flower's FedAdam scales η by `sqrt(1-β2^(t+1)) / (1-β1^(t+1))`; privet does not.)
//! - Defaults are Flower's ([`FedOptParams::flower_default`]): FedAdam η=0.1, β1=0.9, β2=0.99,
//!   τ=1e-9; FedYogi η=0.01, β1=0.9, β2=0.99, τ=1e-3; FedAdagrad η=0.1, τ=1e-9 and β1=0
//!   (Flower's FedAdagrad passes `beta_1=0.0`: no server momentum).
//! - State is kept in `f64`.

use super::{Requirement, Strategy, apply_step, check_param, mean_delta};
use crate::{AggregateInput, FlError};

/// Which adaptive optimiser the server runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum FedOptKind {
    /// FedAdam.
    Adam,
    /// FedYogi.
    Yogi,
    /// FedAdagrad.
    Adagrad,
}

/// Hyper-parameters of [`FedOpt`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FedOptParams {
    /// Server learning rate η (> 0).
    pub eta: f64,
    /// First-moment decay β1 in `[0, 1)`.
    pub beta1: f64,
    /// Second-moment decay β2 in `[0, 1)` (ignored by Adagrad).
    pub beta2: f64,
    /// Degree of adaptivity τ (> 0).
    pub tau: f64,
}

impl FedOptParams {
    /// Flower's defaults for `kind` (see the module documentation).
    pub fn flower_default(kind: FedOptKind) -> Self {
        match kind {
            FedOptKind::Adam => FedOptParams {
                eta: 1e-1,
                beta1: 0.9,
                beta2: 0.99,
                tau: 1e-9,
            },
            FedOptKind::Yogi => FedOptParams {
                eta: 1e-2,
                beta1: 0.9,
                beta2: 0.99,
                tau: 1e-3,
            },
            FedOptKind::Adagrad => FedOptParams {
                eta: 1e-1,
                beta1: 0.0,
                beta2: 0.0,
                tau: 1e-9,
            },
        }
    }
}

/// Server-side adaptive optimiser on the mean delta (see the module documentation).
#[derive(Clone, Debug, PartialEq)]
pub struct FedOpt {
    kind: FedOptKind,
    params: FedOptParams,
    m: Vec<f64>,
    v: Vec<f64>,
}

impl FedOpt {
    /// A FedOpt strategy with validated parameters.
    pub fn new(kind: FedOptKind, params: FedOptParams) -> Result<Self, FlError> {
        check_param("FedOpt eta", params.eta, |x| x > 0.0, "> 0")?;
        check_param(
            "FedOpt beta1",
            params.beta1,
            |x| (0.0..1.0).contains(&x),
            "in [0, 1)",
        )?;
        if kind != FedOptKind::Adagrad {
            check_param(
                "FedOpt beta2",
                params.beta2,
                |x| (0.0..1.0).contains(&x),
                "in [0, 1)",
            )?;
        }
        check_param("FedOpt tau", params.tau, |x| x > 0.0, "> 0")?;
        Ok(FedOpt {
            kind,
            params,
            m: Vec::new(),
            v: Vec::new(),
        })
    }

    /// FedAdam with Flower's defaults.
    pub fn adam() -> Self {
        Self::with_defaults(FedOptKind::Adam)
    }

    /// FedYogi with Flower's defaults.
    pub fn yogi() -> Self {
        Self::with_defaults(FedOptKind::Yogi)
    }

    /// FedAdagrad with Flower's defaults.
    pub fn adagrad() -> Self {
        Self::with_defaults(FedOptKind::Adagrad)
    }

    fn with_defaults(kind: FedOptKind) -> Self {
        FedOpt {
            kind,
            params: FedOptParams::flower_default(kind),
            m: Vec::new(),
            v: Vec::new(),
        }
    }

    /// The optimiser.
    pub fn kind(&self) -> FedOptKind {
        self.kind
    }

    /// The hyper-parameters.
    pub fn params(&self) -> FedOptParams {
        self.params
    }

    /// First moment `m_t` (empty before the first round).
    pub fn first_moment(&self) -> &[f64] {
        &self.m
    }

    /// Second moment `v_t` (empty before the first round).
    pub fn second_moment(&self) -> &[f64] {
        &self.v
    }
}

/// numpy's sign: 0 for 0.
fn sign(x: f64) -> f64 {
    if x > 0.0 {
        1.0
    } else if x < 0.0 {
        -1.0
    } else {
        0.0
    }
}

impl Strategy for FedOpt {
    fn name(&self) -> &'static str {
        match self.kind {
            FedOptKind::Adam => "fedadam",
            FedOptKind::Yogi => "fedyogi",
            FedOptKind::Adagrad => "fedadagrad",
        }
    }

    fn requirement(&self) -> Requirement {
        Requirement::Sum
    }

    fn state(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![("m", self.m.clone()), ("v", self.v.clone())]
    }

    fn restore_state(&mut self, state: Vec<(String, Vec<f64>)>) -> Result<(), FlError> {
        let name = self.name();
        let (m, v) = (&mut self.m, &mut self.v);
        super::restore_named(name, state, &mut [("m", m), ("v", v)])
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let delta = mean_delta(global.len(), input)?;
        if self.m.is_empty() {
            self.m = vec![0.0; global.len()];
            self.v = vec![0.0; global.len()];
        } else if self.m.len() != global.len() {
            return Err(FlError::LengthMismatch {
                expected: self.m.len(),
                found: global.len(),
            });
        }
        let FedOptParams {
            eta,
            beta1,
            beta2,
            tau,
        } = self.params;
        let mut step = vec![0.0; global.len()];
        for (((m, v), d), s) in self
            .m
            .iter_mut()
            .zip(&mut self.v)
            .zip(&delta)
            .zip(&mut step)
        {
            *m = beta1 * *m + (1.0 - beta1) * d;
            let d2 = d * d;
            *v = match self.kind {
                FedOptKind::Adagrad => *v + d2,
                FedOptKind::Yogi => *v - (1.0 - beta2) * d2 * sign(*v - d2),
                FedOptKind::Adam => beta2 * *v + (1.0 - beta2) * d2,
            };
            *s = eta * *m / (v.sqrt() + tau);
        }
        apply_step(global, &step);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sign_is_zero_at_zero() {
        assert_eq!(sign(0.0), 0.0);
        assert_eq!(sign(-0.0), 0.0);
        assert_eq!(sign(2.0), 1.0);
        assert_eq!(sign(-1e-300), -1.0);
    }
}
