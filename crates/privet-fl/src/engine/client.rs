//! The client side of a plain round: train, compute the delta, transform it, answer.

use crate::engine::{FromClient, ToClient};
use crate::{
    ClientId, ClientParams, ClientTrainConfig, ClientUpdate, FlError, TrainMetrics, UpdateContext,
    UpdateTransform,
};

/// Local training on a client's private data.
pub trait LocalTrainer {
    /// Trains from the global `params` and returns the new local parameters and metrics.
    fn fit(
        &mut self,
        round: u32,
        params: &[f32],
        config: &ClientTrainConfig,
    ) -> Result<(Vec<f32>, TrainMetrics), FlError>;
}

/// Builds a client's update: `delta = local - global`, then `transforms` in order
/// ([`UpdateTransform::apply`], which may append coordinates), with the round's `published`
/// parameters. The update's weight is its example count, or 1 if any transform asks for
/// [`UpdateTransform::unit_weight`] (DP-FedAvg). Returns the update and the local parameters
/// the transforms left for the client's aggregation protocol.
///
/// Checks that `local` has the global model's length and is finite, and that the transformed
/// delta is still finite.
pub fn compute_update(
    client: ClientId,
    round: u32,
    global: &[f32],
    local: &[f32],
    metrics: TrainMetrics,
    transforms: &[Box<dyn UpdateTransform>],
    published: &ClientParams,
) -> Result<(ClientUpdate, ClientParams), FlError> {
    if local.len() != global.len() {
        return Err(FlError::ShapeMismatch {
            client,
            expected: global.len(),
            found: local.len(),
        });
    }
    let mut delta: Vec<f32> = local.iter().zip(global).map(|(l, g)| l - g).collect();
    if !all_finite(&delta) {
        return Err(FlError::NonFinite { client });
    }
    let mut ctx = UpdateContext::new(round, client, published);
    for transform in transforms {
        transform.apply(&mut ctx, &mut delta)?;
    }
    if !transforms.is_empty() && !all_finite(&delta) {
        return Err(FlError::NonFinite { client });
    }
    let num_examples = if transforms.iter().any(|t| t.unit_weight()) {
        1
    } else {
        metrics.num_examples
    };
    let update = ClientUpdate {
        client,
        delta,
        num_examples,
        metrics,
    };
    Ok((update, ctx.local))
}

/// Whether every value is finite (without an early exit, so that the loop vectorizes: one pass
/// over a model of millions of parameters costs a fraction of a millisecond).
pub fn all_finite(values: &[f32]) -> bool {
    values.iter().fold(true, |ok, x| ok & x.is_finite())
}

/// Answers a [`ToClient::Fit`] with a [`FromClient::Update`]: trains, computes the delta, applies
/// `transforms` (e.g. [`ClipL2`](crate::ClipL2)).
///
/// Multi-stage protocol messages ([`ToClient::Protocol`]) need the protocol's own client side
/// and give [`FlError::Unsupported`] here.
pub fn client_respond(
    client: ClientId,
    msg: &ToClient,
    trainer: &mut dyn LocalTrainer,
    transforms: &[Box<dyn UpdateTransform>],
) -> Result<FromClient, FlError> {
    match msg {
        ToClient::Fit {
            round,
            params,
            config,
            extensions,
        } => {
            let (local, metrics) = trainer.fit(*round, params, config)?;
            let (update, _) = compute_update(
                client, *round, params, &local, metrics, transforms, extensions,
            )?;
            Ok(FromClient::Update {
                round: *round,
                update,
            })
        }
        ToClient::Protocol { .. } => Err(FlError::Unsupported(
            "client_respond handles plain Fit messages only; multi-stage protocols need their \
             own client"
                .into(),
        )),
    }
}

/// The client side of an [`AggregationProtocol`](crate::engine::AggregationProtocol): one
/// instance per client, kept by the runtime across the stages of a round (a multi-stage protocol
/// holds per-round secrets here between stages).
///
/// A runtime creates one per client (per round or for the whole job; the protocol starts afresh
/// on a stage-0 message) and hands it every [`ToClient`] addressed to that client.
pub trait ClientProtocol: Send + std::fmt::Debug {
    /// Answers `msg`, training with `trainer` when the protocol asks for local training.
    fn respond(
        &mut self,
        msg: &ToClient,
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
    ) -> Result<FromClient, FlError>;
}

/// The client side of [`PlainAggregation`](crate::engine::PlainAggregation): train and send the
/// update in the clear ([`client_respond`]).
#[derive(Clone, Copy, Debug)]
pub struct PlainClient {
    /// The client this instance answers for.
    pub id: ClientId,
}

impl ClientProtocol for PlainClient {
    fn respond(
        &mut self,
        msg: &ToClient,
        trainer: &mut dyn LocalTrainer,
        transforms: &[Box<dyn UpdateTransform>],
    ) -> Result<FromClient, FlError> {
        client_respond(self.id, msg, trainer, transforms)
    }
}
