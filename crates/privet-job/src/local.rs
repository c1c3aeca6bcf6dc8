//! Local training: the one place a job becomes a client's training run, for virtual clients
//! and real nodes alike.

use privet_data::Matrix;
use privet_fl::{ClientTrainConfig, FlError, TrainMetrics};
use privet_ml::{Network, TrainConfig};

use crate::{Job, client_shuffle_seed};

/// The local training settings of `client` in `round`: the job's, FedProx's `mu` from the
/// strategy, and the client's minibatch-shuffle seed. A networked node uses the same, so a
/// federation of real nodes reproduces the simulation of the same job.
pub fn local_train_config(
    job: &Job,
    round: u32,
    client: u32,
    config: &ClientTrainConfig,
) -> TrainConfig {
    TrainConfig {
        epochs: job.train.epochs,
        batch_size: job.train.batch_size,
        optimizer: job.train.optimizer.clone(),
        proximal_mu: config.proximal_mu,
        seed: client_shuffle_seed(job, round, client),
    }
}

/// A client's training rows: row indices into `(x, y)`.
#[derive(Debug, Clone, Copy)]
pub struct LocalRows<'a> {
    /// Encoded features.
    pub x: &'a Matrix,
    /// Labels.
    pub y: &'a [u32],
    /// The client's rows, in the order its minibatch shuffles start from.
    pub rows: &'a [u32],
}

/// Trains `client`'s local model for `round` from the global `params`, with the job's local
/// settings ([`local_train_config`]).
pub fn train_locally(
    job: &Job,
    network: &Network,
    client: u32,
    round: u32,
    params: &[f32],
    config: &ClientTrainConfig,
    data: LocalRows<'_>,
) -> Result<(Vec<f32>, TrainMetrics), FlError> {
    let cfg = local_train_config(job, round, client, config);
    let (new, stats) = network
        .train(params, data.x, data.y, data.rows, &cfg)
        .map_err(|e| FlError::Training(e.to_string()))?;
    Ok((
        new,
        TrainMetrics {
            loss: stats.loss,
            num_examples: stats.num_examples,
        },
    ))
}
