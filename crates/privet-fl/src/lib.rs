//! # privet-fl: the federated-learning core
//!
//! Everything here is pure computation on flat `f32` parameter vectors: no I/O, threads, clocks
//! or tensors. Runtimes (the in-process simulation, the network service) drive it.
//!
//! - **Updates.** Clients send *deltas* `w_local - w_global` as [`ClientUpdate`]s, so clipping,
//!   noise and secure aggregation act on deltas. [`weighted_sum`] gives `Σ n_k Δ_k` and `Σ n_k`
//!   ([`WeightedSum`]), which is all that secure aggregation reveals.
//! - **Strategies** behind the [`Strategy`] trait, built from plain data by
//!   [`StrategyConfig::build`]: [`FedAvg`], [`FedProx`], [`FedAvgM`], [`FedOpt`]
//!   (FedAdam / FedYogi / FedAdagrad) need only the sum ([`Requirement::Sum`]); the robust
//!   [`Median`], [`TrimmedMean`], [`Krum`] and [`MultiKrum`] need individual deltas
//!   ([`Requirement::Individual`]).
//! - **Sampling.** [`ClientSampler`] picks each round's clients reproducibly from
//!   `(seed, round, available)`.
//! - **Transforms.** [`UpdateTransform`] runs on the client before an update leaves it
//!   ([`ClipL2`] here; DP-FedAvg's client in `privet-dpfedavg`); [`AggregateTransform`] runs on
//!   the coordinator's sum (DP-FedAvg's noise and accounting).
//! - **Extension channels** ([`extension`]): per-round [`ClientParams`] that the aggregate
//!   transform publishes to clients, [`UpdateContext`] for client transforms, and named
//!   [`RoundDetails`] that plug-ins report, so a plug-in needs no side channel through the
//!   runtime.
//! - **The round engine** ([`engine`]): the sans-IO [`engine::Coordinator`] state machine, with
//!   the message exchanges of a round behind [`engine::AggregationProtocol`]
//!   ([`engine::PlainAggregation`] here, SecAgg+ in `privet-secagg`), and the client side
//!   [`engine::client_respond`] around a [`engine::LocalTrainer`].
//!
//! ## Example: a two-round simulation
//!
//! ```
//! use privet_fl::engine::{
//!     Action, Coordinator, EngineConfig, Event, LocalTrainer, PlainAggregation, RoundOutcome,
//!     client_respond,
//! };
//! use privet_fl::{
//!     ClientId, ClientSampler, ClientTrainConfig, FlError, SampleSize, StrategyConfig,
//!     TrainMetrics, UpdateTransform,
//! };
//!
//! /// Local "training": move every parameter to the client's target value.
//! struct Target(f32, u64);
//! impl LocalTrainer for Target {
//!     fn fit(&mut self, _round: u32, params: &[f32], _config: &ClientTrainConfig)
//!         -> Result<(Vec<f32>, TrainMetrics), FlError> {
//!         let metrics = TrainMetrics { loss: 0.5, num_examples: self.1 };
//!         Ok((vec![self.0; params.len()], metrics))
//!     }
//! }
//!
//! # fn main() -> Result<(), FlError> {
//! let config = EngineConfig {
//!     rounds: 2,
//!     sampler: ClientSampler { size: SampleSize::Fraction(1.0), min_clients: 2, seed: 7 },
//!     min_clients: 2,
//!     max_retries: 0,
//! };
//! let strategy = StrategyConfig::FedAvg.build()?;
//! let mut coordinator =
//!     Coordinator::new(config, strategy, Box::new(PlainAggregation::new()), vec![0.0; 3])?;
//!
//! // Two clients: one with 1 example aiming at 1.0, one with 3 examples aiming at 5.0.
//! let clients = [ClientId(1), ClientId(2)];
//! let mut trainers = [Target(1.0, 1), Target(5.0, 3)];
//! let transforms: Vec<Box<dyn UpdateTransform>> = Vec::new();
//!
//! while !coordinator.is_finished() {
//!     let mut queue = coordinator.start_round(&clients)?;
//!     while let Some(action) = queue.pop() {
//!         match action {
//!             Action::Send { to, msg } => {
//!                 let trainer = &mut trainers[(to.0 - 1) as usize];
//!                 let answer = client_respond(to, &msg, trainer, &transforms)?;
//!                 queue.extend(coordinator.handle(Event::Received { from: to, msg: answer })?);
//!             }
//!             Action::RoundFinished(RoundOutcome::Completed(report)) => {
//!                 assert_eq!(report.completed, clients);
//!                 assert_eq!(report.num_examples, 4);
//!             }
//!             Action::RoundFinished(failed) => panic!("{failed:?}"),
//!             Action::StartDeadline { .. } | Action::Reject { .. } => {}
//!             _ => {}
//!         }
//!     }
//! }
//! // Example-weighted FedAvg: (1 * 1.0 + 3 * 5.0) / 4 = 4.0, a fixed point after round 1.
//! assert_eq!(coordinator.global(), &[4.0, 4.0, 4.0]);
//! assert_eq!(coordinator.completed_rounds(), 2);
//! # Ok(())
//! # }
//! ```

pub mod engine;
mod error;
pub mod extension;
#[cfg(feature = "harness")]
pub mod harness;
mod sampling;
mod strategy;
mod transform;
mod update;

pub use error::FlError;
pub use extension::{ClientParams, RoundDetails, UpdateContext};
pub use sampling::{ClientSampler, SampleSize};
pub use strategy::{
    ClientTrainConfig, FedAvg, FedAvgM, FedOpt, FedOptKind, FedOptParams, FedProx, Krum, Median,
    MultiKrum, Requirement, Strategy, StrategyConfig, TrimmedMean,
};
pub use transform::{Admission, AggregateTransform, ClipL2, UpdateTransform, l2_norm};
pub use update::{
    AggregateInput, ClientId, ClientUpdate, TrainMetrics, WeightedSum, validate_update,
    weighted_sum,
};
