//! The pluggable part of a round: the message exchanges between "clients selected" and
//! "aggregate available".

use std::sync::Arc;

use crate::engine::{FromClient, RejectReason, ToClient};
use crate::{
    ClientId, ClientParams, ClientTrainConfig, ClientUpdate, FlError, Requirement, RoundDetails,
    TrainMetrics, WeightedSum,
};

/// What a protocol sees of the round it runs in.
#[derive(Clone, Copy, Debug)]
pub struct StageContext<'a> {
    /// Round number.
    pub round: u32,
    /// Current stage (0-based).
    pub stage: u8,
    /// Length of the global model.
    pub model_len: usize,
    /// Clients selected for the round, sorted ascending.
    pub selected: &'a [ClientId],
    /// Clients taking part in the current stage, sorted ascending: the selected clients at
    /// stage 0, the previous stage's survivors afterwards.
    pub participants: &'a [ClientId],
}

/// The outcome of a stage.
#[derive(Debug)]
pub enum StageOutcome {
    /// Start the next stage: one message for **every** survivor of this stage, no one else.
    Next(Vec<(ClientId, ToClient)>),
    /// The round's contributions are available.
    Done(ProtocolOutput),
    /// The round cannot complete (e.g. too few survivors to unmask); the global model is kept.
    Abort(String),
}

/// What a protocol reveals to the coordinator at the end of a round.
#[derive(Debug)]
pub enum ProtocolOutput {
    /// Every contributor's update in the clear, sorted by client.
    Individual(Vec<ClientUpdate>),
    /// Only the weighted sum (secure aggregation).
    Sum(SumOutput),
}

/// A protocol's summed result.
#[derive(Debug)]
pub struct SumOutput {
    /// `Σ n_k Δ_k` and `Σ n_k` over `contributors`.
    pub sum: WeightedSum,
    /// The clients whose contributions are in `sum`, sorted ascending.
    pub contributors: Vec<ClientId>,
    /// Round metrics: total examples and example-weighted mean loss, as far as the protocol
    /// reveals them.
    pub metrics: TrainMetrics,
}

/// The message exchanges of one round, driven by the [`Coordinator`](crate::engine::Coordinator).
///
/// The coordinator owns selection, deadlines, dropouts, duplicate and round/stage checks, and
/// the validation of plain [`FromClient::Update`]s; the protocol owns the content of its stages.
/// A protocol instance is reused across rounds: [`begin`](Self::begin) starts afresh.
pub trait AggregationProtocol: Send + std::fmt::Debug {
    /// Short name, e.g. `"plain"`.
    fn name(&self) -> &'static str;
    /// Number of stages (message exchanges) per round, at least 1.
    fn stages(&self) -> u8;
    /// What the protocol reveals: [`Requirement::Individual`] (plain updates) or
    /// [`Requirement::Sum`] (only their sum). A strategy that needs individual updates cannot run
    /// behind a protocol that reveals only the sum.
    fn reveals(&self) -> Requirement;
    /// Starts stage 0 of a round: returns one message for each selected client
    /// (`ctx.participants`).
    fn begin(
        &mut self,
        ctx: &StageContext<'_>,
        params: &Arc<[f32]>,
        config: &ClientTrainConfig,
        extensions: &Arc<ClientParams>,
    ) -> Result<Vec<(ClientId, ToClient)>, FlError>;
    /// A message for the current stage from a participant who has not answered it yet, already
    /// checked for round, stage (for [`FromClient::Protocol`]) and, for [`FromClient::Update`],
    /// length, finiteness and sender. `Err` refuses it and excludes the client from the round.
    fn receive(
        &mut self,
        ctx: &StageContext<'_>,
        from: ClientId,
        msg: FromClient,
    ) -> Result<(), RejectReason>;
    /// Ends the current stage. `survivors` (sorted) answered it and have neither dropped nor been
    /// refused since; everything received from anyone else must be discarded.
    fn end_stage(
        &mut self,
        ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, FlError>;
    /// The round failed or was abandoned: drop per-round state (e.g. secrets).
    fn abort_round(&mut self) {}
    /// Reports what the protocol did in `round` (called when the round ends, completed or
    /// failed, before [`abort_round`](Self::abort_round)), e.g. secure aggregation's graph.
    fn round_details(&self, _round: u32, _details: &mut RoundDetails) -> Result<(), FlError> {
        Ok(())
    }
}

/// Plain aggregation: one stage. The coordinator sends [`ToClient::Fit`] and collects
/// [`FromClient::Update`]s in the clear.
#[derive(Debug, Default)]
pub struct PlainAggregation {
    updates: Vec<ClientUpdate>,
}

impl PlainAggregation {
    /// A plain aggregation protocol.
    pub fn new() -> Self {
        Self::default()
    }
}

impl AggregationProtocol for PlainAggregation {
    fn name(&self) -> &'static str {
        "plain"
    }

    fn stages(&self) -> u8 {
        1
    }

    fn reveals(&self) -> Requirement {
        Requirement::Individual
    }

    fn begin(
        &mut self,
        ctx: &StageContext<'_>,
        params: &Arc<[f32]>,
        config: &ClientTrainConfig,
        extensions: &Arc<ClientParams>,
    ) -> Result<Vec<(ClientId, ToClient)>, FlError> {
        self.updates.clear();
        Ok(ctx
            .participants
            .iter()
            .map(|&client| {
                let msg = ToClient::Fit {
                    round: ctx.round,
                    params: Arc::clone(params),
                    config: config.clone(),
                    extensions: Arc::clone(extensions),
                };
                (client, msg)
            })
            .collect())
    }

    fn receive(
        &mut self,
        _ctx: &StageContext<'_>,
        _from: ClientId,
        msg: FromClient,
    ) -> Result<(), RejectReason> {
        match msg {
            FromClient::Update { update, .. } => {
                self.updates.push(update);
                Ok(())
            }
            FromClient::Protocol { .. } => Err(RejectReason::UnexpectedMessage),
        }
    }

    fn end_stage(
        &mut self,
        _ctx: &StageContext<'_>,
        survivors: &[ClientId],
    ) -> Result<StageOutcome, FlError> {
        let mut updates = std::mem::take(&mut self.updates);
        updates.retain(|u| survivors.binary_search(&u.client).is_ok());
        updates.sort_by_key(|u| u.client);
        Ok(StageOutcome::Done(ProtocolOutput::Individual(updates)))
    }

    fn abort_round(&mut self) {
        self.updates.clear();
    }
}
