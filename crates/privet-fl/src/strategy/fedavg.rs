//! FedAvg, FedProx and FedAvgM.

use super::{Requirement, Strategy, apply_step, check_param, mean_delta};
use crate::{AggregateInput, ClientTrainConfig, FlError};

/// Federated averaging (McMahan et al. 2017): `global += Σ n_k Δ_k / Σ n_k`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FedAvg;

impl Strategy for FedAvg {
    fn name(&self) -> &'static str {
        "fedavg"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Sum
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let mean = mean_delta(global.len(), input)?;
        apply_step(global, &mean);
        Ok(())
    }
}

/// FedProx (Li et al. 2020): FedAvg aggregation; clients add the proximal term
/// `mu/2 ||w - w_global||^2` to their objective ([`ClientTrainConfig::proximal_mu`]).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FedProx {
    mu: f32,
}

impl FedProx {
    /// FedProx with proximal coefficient `mu >= 0`.
    pub fn new(mu: f32) -> Result<Self, FlError> {
        check_param("FedProx mu", f64::from(mu), |m| m >= 0.0, ">= 0")?;
        Ok(FedProx { mu })
    }

    /// The proximal coefficient.
    pub fn mu(&self) -> f32 {
        self.mu
    }
}

impl Strategy for FedProx {
    fn name(&self) -> &'static str {
        "fedprox"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Sum
    }

    fn client_config(&self) -> ClientTrainConfig {
        ClientTrainConfig {
            proximal_mu: Some(self.mu),
        }
    }

    fn aggregate(
        &mut self,
        round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        FedAvg.aggregate(round, global, input)
    }
}

/// FedAvg with server momentum (Hsu et al. 2019, "Measuring the Effects of Non-Identical Data
/// Distribution for Federated Visual Classification"):
/// `v = momentum * v + mean_delta; global += server_lr * v`, with `v` starting at zero.
///
/// Same update as Flower's `FedAvgM` (which writes it with the pseudo-gradient `-mean_delta`).
/// Defaults: `server_lr = 1.0`, `momentum = 0.9` (Flower defaults to momentum 0, i.e. FedAvg).
/// The velocity is kept in `f64`.
#[derive(Clone, Debug, PartialEq)]
pub struct FedAvgM {
    server_lr: f64,
    momentum: f64,
    velocity: Vec<f64>,
}

impl FedAvgM {
    /// Default server learning rate.
    pub const DEFAULT_SERVER_LR: f64 = 1.0;
    /// Default momentum.
    pub const DEFAULT_MOMENTUM: f64 = 0.9;

    /// FedAvgM with `server_lr > 0` and `0 <= momentum < 1`.
    pub fn new(server_lr: f64, momentum: f64) -> Result<Self, FlError> {
        check_param("FedAvgM server_lr", server_lr, |x| x > 0.0, "> 0")?;
        check_param(
            "FedAvgM momentum",
            momentum,
            |x| (0.0..1.0).contains(&x),
            "in [0, 1)",
        )?;
        Ok(FedAvgM {
            server_lr,
            momentum,
            velocity: Vec::new(),
        })
    }

    /// The current velocity (empty before the first round).
    pub fn velocity(&self) -> &[f64] {
        &self.velocity
    }
}

impl Default for FedAvgM {
    fn default() -> Self {
        FedAvgM {
            server_lr: Self::DEFAULT_SERVER_LR,
            momentum: Self::DEFAULT_MOMENTUM,
            velocity: Vec::new(),
        }
    }
}

impl Strategy for FedAvgM {
    fn name(&self) -> &'static str {
        "fedavgm"
    }

    fn requirement(&self) -> Requirement {
        Requirement::Sum
    }

    fn state(&self) -> Vec<(&'static str, Vec<f64>)> {
        vec![("velocity", self.velocity.clone())]
    }

    fn restore_state(&mut self, state: Vec<(String, Vec<f64>)>) -> Result<(), FlError> {
        super::restore_named("fedavgm", state, &mut [("velocity", &mut self.velocity)])
    }

    fn aggregate(
        &mut self,
        _round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError> {
        let mean = mean_delta(global.len(), input)?;
        if self.velocity.is_empty() {
            self.velocity = vec![0.0; global.len()];
        } else if self.velocity.len() != global.len() {
            return Err(FlError::LengthMismatch {
                expected: self.velocity.len(),
                found: global.len(),
            });
        }
        for (v, d) in self.velocity.iter_mut().zip(&mean) {
            *v = self.momentum * *v + d;
        }
        let step: Vec<f64> = self.velocity.iter().map(|v| self.server_lr * v).collect();
        apply_step(global, &step);
        Ok(())
    }
}
