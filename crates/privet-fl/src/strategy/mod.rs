//! Aggregation strategies behind one trait.
//!
//! FedAvg-like strategies ([`FedAvg`], [`FedProx`], [`FedAvgM`], [`FedOpt`]) only need the
//! example-weighted sum of deltas ([`Requirement::Sum`]), so they work under secure aggregation.
//! Robust strategies ([`Median`], [`TrimmedMean`], [`Krum`], [`MultiKrum`]) look at individual
//! deltas ([`Requirement::Individual`]) and treat every client alike (unweighted), as in the
//! literature.

mod fedavg;
mod fedopt;
mod robust;

pub use fedavg::{FedAvg, FedAvgM, FedProx};
pub use fedopt::{FedOpt, FedOptKind, FedOptParams};
pub use robust::{Krum, Median, MultiKrum, TrimmedMean};

use crate::update::weighted_sum_with_len;
use crate::{AggregateInput, ClientUpdate, FlError};

/// What a strategy needs to see of a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Requirement {
    /// The weighted sum `Σ n_k Δ_k`, `Σ n_k` is enough (compatible with secure aggregation).
    Sum,
    /// Every client's delta individually.
    Individual,
}

/// Instructions for the clients' local training that come from the strategy.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ClientTrainConfig {
    /// FedProx: add `mu/2 ||w - w_global||^2` to the local objective.
    pub proximal_mu: Option<f32>,
}

/// A server-side aggregation rule.
pub trait Strategy: Send + std::fmt::Debug {
    /// Short lowercase name, e.g. `"fedavg"`.
    fn name(&self) -> &'static str;
    /// What the strategy needs to see.
    fn requirement(&self) -> Requirement;
    /// Configuration sent to clients with every training request.
    fn client_config(&self) -> ClientTrainConfig {
        ClientTrainConfig::default()
    }
    /// Updates `global` in place from one round's deltas.
    ///
    /// On error `global` and the strategy's state are left unchanged.
    fn aggregate(
        &mut self,
        round: u32,
        global: &mut [f32],
        input: AggregateInput<'_>,
    ) -> Result<(), FlError>;
    /// The strategy's state between rounds (server momentum, optimiser moments), as named
    /// vectors, so that a coordinator can persist it and resume after a restart. Stateless
    /// strategies return nothing.
    fn state(&self) -> Vec<(&'static str, Vec<f64>)> {
        Vec::new()
    }
    /// Restores what [`state`](Self::state) returned. Unknown names are an error; on error the
    /// strategy is unchanged.
    fn restore_state(&mut self, state: Vec<(String, Vec<f64>)>) -> Result<(), FlError> {
        match state.first() {
            None => Ok(()),
            Some((name, _)) => Err(FlError::InvalidConfig(format!(
                "strategy {} has no state named {name:?}",
                self.name()
            ))),
        }
    }
}

/// Restores named state vectors into `slots`; every name must be one of the slots'.
pub(crate) fn restore_named(
    strategy: &'static str,
    state: Vec<(String, Vec<f64>)>,
    slots: &mut [(&'static str, &mut Vec<f64>)],
) -> Result<(), FlError> {
    for (name, _) in &state {
        if !slots.iter().any(|(slot, _)| slot == name) {
            return Err(FlError::InvalidConfig(format!(
                "strategy {strategy} has no state named {name:?}"
            )));
        }
    }
    for (name, values) in state {
        if let Some((_, slot)) = slots.iter_mut().find(|(slot, _)| *slot == name) {
            **slot = values;
        }
    }
    Ok(())
}

/// Plain-data description of a strategy, e.g. from a configuration file.
#[derive(Clone, Debug, PartialEq)]
pub enum StrategyConfig {
    /// [`FedAvg`].
    FedAvg,
    /// [`FedProx`] with proximal term `mu >= 0`.
    FedProx {
        /// Proximal coefficient.
        mu: f32,
    },
    /// [`FedAvgM`]: server momentum.
    FedAvgM {
        /// Server learning rate (> 0).
        server_lr: f64,
        /// Momentum in `[0, 1)`.
        momentum: f64,
    },
    /// [`FedOpt`] with Adam.
    FedAdam {
        /// Server learning rate.
        eta: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment decay.
        beta2: f64,
        /// Adaptivity (> 0).
        tau: f64,
    },
    /// [`FedOpt`] with Yogi.
    FedYogi {
        /// Server learning rate.
        eta: f64,
        /// First-moment decay.
        beta1: f64,
        /// Second-moment rate.
        beta2: f64,
        /// Adaptivity (> 0).
        tau: f64,
    },
    /// [`FedOpt`] with Adagrad (no `beta2`).
    FedAdagrad {
        /// Server learning rate.
        eta: f64,
        /// First-moment decay (Flower fixes it to 0).
        beta1: f64,
        /// Adaptivity (> 0).
        tau: f64,
    },
    /// [`Median`].
    Median,
    /// [`TrimmedMean`] trimming `beta` from each end, `0 <= beta < 0.5`.
    TrimmedMean {
        /// Fraction trimmed from each end.
        beta: f64,
    },
    /// [`Krum`] tolerating `byzantine` clients.
    Krum {
        /// Assumed number of Byzantine clients `f`.
        byzantine: usize,
    },
    /// [`MultiKrum`].
    MultiKrum {
        /// Assumed number of Byzantine clients `f`.
        byzantine: usize,
        /// Number of updates averaged (default `n - f`).
        select: Option<usize>,
    },
}

impl StrategyConfig {
    /// FedAvgM with the defaults `server_lr = 1.0`, `momentum = 0.9`.
    pub fn fed_avgm() -> Self {
        StrategyConfig::FedAvgM {
            server_lr: FedAvgM::DEFAULT_SERVER_LR,
            momentum: FedAvgM::DEFAULT_MOMENTUM,
        }
    }

    /// FedAdam with Flower's defaults (see [`FedOptParams::flower_default`]).
    pub fn fed_adam() -> Self {
        let p = FedOptParams::flower_default(FedOptKind::Adam);
        StrategyConfig::FedAdam {
            eta: p.eta,
            beta1: p.beta1,
            beta2: p.beta2,
            tau: p.tau,
        }
    }

    /// FedYogi with Flower's defaults.
    pub fn fed_yogi() -> Self {
        let p = FedOptParams::flower_default(FedOptKind::Yogi);
        StrategyConfig::FedYogi {
            eta: p.eta,
            beta1: p.beta1,
            beta2: p.beta2,
            tau: p.tau,
        }
    }

    /// FedAdagrad with Flower's defaults.
    pub fn fed_adagrad() -> Self {
        let p = FedOptParams::flower_default(FedOptKind::Adagrad);
        StrategyConfig::FedAdagrad {
            eta: p.eta,
            beta1: p.beta1,
            tau: p.tau,
        }
    }

    /// Validates the parameters and builds the strategy.
    pub fn build(&self) -> Result<Box<dyn Strategy>, FlError> {
        Ok(match *self {
            StrategyConfig::FedAvg => Box::new(FedAvg),
            StrategyConfig::FedProx { mu } => Box::new(FedProx::new(mu)?),
            StrategyConfig::FedAvgM {
                server_lr,
                momentum,
            } => Box::new(FedAvgM::new(server_lr, momentum)?),
            StrategyConfig::FedAdam {
                eta,
                beta1,
                beta2,
                tau,
            } => Box::new(FedOpt::new(
                FedOptKind::Adam,
                FedOptParams {
                    eta,
                    beta1,
                    beta2,
                    tau,
                },
            )?),
            StrategyConfig::FedYogi {
                eta,
                beta1,
                beta2,
                tau,
            } => Box::new(FedOpt::new(
                FedOptKind::Yogi,
                FedOptParams {
                    eta,
                    beta1,
                    beta2,
                    tau,
                },
            )?),
            StrategyConfig::FedAdagrad { eta, beta1, tau } => Box::new(FedOpt::new(
                FedOptKind::Adagrad,
                FedOptParams {
                    eta,
                    beta1,
                    beta2: 0.0,
                    tau,
                },
            )?),
            StrategyConfig::Median => Box::new(Median),
            StrategyConfig::TrimmedMean { beta } => Box::new(TrimmedMean::new(beta)?),
            StrategyConfig::Krum { byzantine } => Box::new(Krum::new(byzantine)),
            StrategyConfig::MultiKrum { byzantine, select } => {
                Box::new(MultiKrum::new(byzantine, select)?)
            }
        })
    }
}

/// The weighted mean delta of `input`, checked against the global model's length.
pub(crate) fn mean_delta(
    global_len: usize,
    input: AggregateInput<'_>,
) -> Result<Vec<f64>, FlError> {
    match input {
        AggregateInput::Individual(updates) => weighted_sum_with_len(updates, global_len)?.mean(),
        AggregateInput::Sum(sum) => {
            if sum.sum.len() != global_len {
                return Err(FlError::LengthMismatch {
                    expected: global_len,
                    found: sum.sum.len(),
                });
            }
            if sum.num_clients == 0 {
                return Err(FlError::EmptyRound);
            }
            sum.mean()
        }
    }
}

/// The individual updates of `input`, validated against the global model's length.
pub(crate) fn individual_updates<'a>(
    strategy: &'static str,
    global_len: usize,
    input: AggregateInput<'a>,
) -> Result<&'a [ClientUpdate], FlError> {
    match input {
        AggregateInput::Sum(_) => Err(FlError::Unsupported(format!(
            "{strategy} needs individual updates but was given only their sum \
             (it cannot run behind secure aggregation)"
        ))),
        AggregateInput::Individual(updates) => {
            if updates.is_empty() {
                return Err(FlError::EmptyRound);
            }
            for update in updates {
                crate::validate_update(update, global_len)?;
            }
            Ok(updates)
        }
    }
}

/// `global[i] += step[i]`, computed in `f64` and rounded once to `f32`.
pub(crate) fn apply_step(global: &mut [f32], step: &[f64]) {
    for (g, s) in global.iter_mut().zip(step) {
        *g = (f64::from(*g) + s) as f32;
    }
}

/// Returns `Err(InvalidConfig)` unless `value` is finite and satisfies `ok`.
pub(crate) fn check_param(
    name: &str,
    value: f64,
    ok: impl Fn(f64) -> bool,
    expected: &str,
) -> Result<(), FlError> {
    if value.is_finite() && ok(value) {
        Ok(())
    } else {
        Err(FlError::InvalidConfig(format!(
            "{name} must be {expected}, got {value}"
        )))
    }
}
